"""Generate scenarios/cow/: the COW test sequences of the kernel's selftest
tools/testing/selftests/mm/cow.c with expected verdicts for every preset: the anonymous
tests, each on a base page, a swapped-out page, a PMD-mapped THP, a PTE-mapped THP and a
hugetlb page; and the non-anonymous tests (run_non_anon_test_case: "Basic COW", "R/O
longterm GUP pin", "R/O longterm GUP-fast pin"), each on the shared zero page, a memfd, a
tmpfile, the huge zero page and a hugetlb memfd, with cow.c's `smem`: a second mapping of
the same memory (MAP_SHARED of the same file; another private anonymous mapping for the
zero pages) through which the test checks that the private write did not leak.

The expected verdicts are DERIVED HERE FROM THE REFERENCE RULES, never from mmcheck's
output: `violated_in()` below says, per test and page variant, under which eras the test's
property breaks, and each entry carries the reason.  Eras:

  E1  = v4.9-pv, v5.7   do_wp_page / do_swap_page / THP: mapcount (+ swapcount) <= 1
  F   = v5.8            E1 + every GUP on a COW mapping write-faults first (17839856fd58)
  E2  = v5.9, v5.11     do_wp_page: page_count == 1; THP (do_huge_pmd_wp_page) and swap-in
                        (reuse_swap_page) still mapcount-based; early COW of pinned pages
  P18 = v5.18           page_count for THP and swap-in too (3bff7e3f1f16, c145e0b47c77)
  E3  = v5.19 .. v6.18  PageAnonExclusive, exclusive swap PTEs, R/O pins unshare (the later
                        presets differ in write tracking only)

Class rules used (reference §3-5, docs/kernel-notes.md): a PTE-mapped THP subpage is never
reused once do_wp_page counts references (the folio's count includes its other subpages);
hugetlb reuse is page_mapcount == 1 in every era (hugetlb_wp), so FOLL_GET (vmsplice) stays
invisible there (reference T3.5: cow.c lists every hugetlb vmsplice case as a known failure),
while R/O pins of hugetlb pages unshare in the anon-exclusive era (cow.c expects them to pass).

Run: `python tools/gen_cow_scenarios.py` (rewrites scenarios/cow/); the test suite checks
the files are up to date.
"""

from __future__ import annotations

import os
import sys

E1, F, E2, P18, E3 = (("v4.9-pv", "v5.7"), ("v5.8",), ("v5.9", "v5.11"), ("v5.18",),
                      ("v5.19", "v6.2", "v6.4", "v6.18"))
PRESETS = E1 + F + E2 + P18 + E3
VARIANTS = {
    "base": ("small page", {"state": "present"}, False),
    "swapped": ("swapped-out page (MADV_PAGEOUT first)", {"state": "present"}, True),
    "thp": ("PMD-mapped THP", {"state": "present", "kind": "thp"}, False),
    "pte-thp": ("PTE-mapped THP", {"state": "present", "kind": "pte_thp"}, False),
    "hugetlb": ("hugetlb page", {"state": "present", "kind": "hugetlb"}, False),
}
PROPERTIES = ("no-leak", "pin-coherent", "no-lost-write", "refcount-sane")

IDLE_CHILD = ["- fork: B"]
# cow.c child_memcmp_fn / child_vmsplice_memcmp_fn and do_test_vmsplice_in_parent start with
# memcpy(old, mem, size): a read of the page (which swaps a swapped-out page back in)
READING_CHILD = ["- fork:", "    child: B", "    program:", "      - read: X"]
EXITED_CHILD = ["- fork:", "    child: B", "    program:", "      - exit", "- wait: B"]
MPROTECT_DANCE = ["- mprotect: {page: X, prot: r}", "- mprotect: {page: X, prot: rw}"]
SOFTDIRTY_DANCE = ["- mprotect: {page: X, prot: r}", "- clear_refs",
                   "- mprotect: {page: X, prot: rw}"]


def vmsplice_child(extra=()):
    return ["- fork:", "    child: B", "    program:", "      - read: X",
            "      - vmsplice: {page: X, as: pipe}", "      - munmap: X",
            "      - device_read: pipe", *extra]


# test id -> (cow.c name, property, parent program, why)
TESTS = {
    "basic": ("Basic COW after fork()", "no-leak", [*READING_CHILD, "- write: X"]),
    "basic-mprotect": ("Basic COW after fork() with mprotect() optimization", "no-leak",
                       [*READING_CHILD, *MPROTECT_DANCE, "- write: X"]),
    "vmsplice-unmap-child": ("vmsplice() + unmap in child", "no-leak",
                             [*vmsplice_child(), "- write: X"]),
    "vmsplice-unmap-child-mprotect": (
        "vmsplice() + unmap in child with mprotect() optimization", "no-leak",
        [*vmsplice_child(), *MPROTECT_DANCE, "- write: X"]),
    "vmsplice-before-fork-unmap-parent": (
        "vmsplice() before fork(), unmap in parent after fork()", "no-leak",
        ["- read: X", "- vmsplice: {page: X, as: pipe}", "- fork:", "    child: B",
         "    program:", "      - write: X", "- munmap: X", "- device_read: pipe"]),
    "vmsplice-unmap-parent": (
        "vmsplice() + unmap in parent after fork()", "no-leak",
        ["- read: X", "- fork:", "    child: B", "    program:", "      - write: X",
         "- vmsplice: {page: X, as: pipe}", "- munmap: X", "- device_read: pipe"]),
    "iouring-ro-mapping": (
        "R/O-mapping a page registered as iouring fixed buffer", "pin-coherent",
        ["- pin: {page: X, as: R, access: write}", *SOFTDIRTY_DANCE, "- write: X",
         "- device_read: R"]),
    "iouring-fork": ("fork() with an iouring fixed buffer", "pin-coherent",
                     ["- pin: {page: X, as: R, access: write}", *IDLE_CHILD, "- write: X",
                      "- device_read: R"]),
    "ro-pin-shared": ("R/O GUP pin on R/O-mapped shared page", "pin-coherent",
                      [*IDLE_CHILD, "- pin: {page: X, as: R, access: read}", "- write: X",
                       "- device_read: R"]),
    "ro-pin-fast-shared": ("R/O GUP-fast pin on R/O-mapped shared page", "pin-coherent",
                           [*IDLE_CHILD, "- pin: {page: X, as: R, access: read, fast: true}",
                            "- write: X", "- device_read: R"]),
    "ro-pin-previously-shared": (
        "R/O GUP pin on R/O-mapped previously-shared page", "pin-coherent",
        [*EXITED_CHILD, "- pin: {page: X, as: R, access: read}", "- write: X",
         "- device_read: R"]),
    "ro-pin-fast-previously-shared": (
        "R/O GUP-fast pin on R/O-mapped previously-shared page", "pin-coherent",
        [*EXITED_CHILD, "- pin: {page: X, as: R, access: read, fast: true}", "- write: X",
         "- device_read: R"]),
    "ro-pin-exclusive": ("R/O GUP pin on R/O-mapped exclusive page", "pin-coherent",
                         [*SOFTDIRTY_DANCE, "- pin: {page: X, as: R, access: read}",
                          "- write: X", "- device_read: R"]),
    "ro-pin-fast-exclusive": (
        "R/O GUP-fast pin on R/O-mapped exclusive page", "pin-coherent",
        [*SOFTDIRTY_DANCE, "- pin: {page: X, as: R, access: read, fast: true}", "- write: X",
         "- device_read: R"]),
}


def violated_in(test: str, variant: str):
    """(presets where the test's property is violated, why), derived from the rules."""
    base = test.replace("-mprotect", "").replace("-fast", "")
    if base == "basic":
        return (), "every era copies on the first write to a shared page"
    if base == "vmsplice-unmap-parent" and variant == "swapped":
        return (E1, "cow.c's memcpy before fork swaps the page back in read-only (it stays in "
                "the swapcache); the child's write then faults on a present R/O page: "
                "do_wp_page counts the pipe's and the swapcache's references from 5.9 and "
                "copies, mapcount-based reuse (<= 5.8) reuses once the parent unmapped "
                "(reference T1.2, S1)")
    if base in ("vmsplice-unmap-child", "vmsplice-unmap-parent"):
        if variant == "hugetlb":
            return (E1 + E2 + P18 + E3, "hugetlb_wp reuses at page_mapcount == 1 in every era; "
                    "5.8's forced COW is the exception (reference T3.5)")
        if variant in ("swapped", "thp"):
            return (E1 + E2, "mapcount-based reuse up to 5.17 for swap-in (reuse_swap_page) "
                    "and THPs (reference T2.6, S1s, S1t); 5.8 breaks COW at GUP time")
        return E1, "mapcount-based reuse (reference T1.2, S1); 5.9+ count the pipe's reference"
    if base == "vmsplice-before-fork-unmap-parent":
        if variant == "hugetlb":
            return (E1 + F + E2 + P18 + E3, "hugetlb_wp: page_mapcount == 1 in every era; 5.8's "
                    "forced COW found the page exclusive before fork (reference T1.3, T3.5)")
        if variant == "thp":
            return (E1 + F + E2, "THP reuse by mapcount up to 5.17; 5.8's forced COW ran on a then "
                    "exclusive page (reference T1.3, S2)")
        return (E1 + F, "mapcount-based reuse; 5.8's forced COW ran before fork on a then "
                "exclusive page, so it does not help (reference T1.3, S2)")
    if base == "iouring-ro-mapping":
        if variant == "hugetlb":
            return (), "hugetlb_wp reuses at page_mapcount == 1: the pin is not counted"
        if variant == "thp":
            return (P18, "do_huge_pmd_wp_page reused by mapcount up to 5.17; 5.18 counts the pin "
                    "(reference T2.3 on a THP)")
        return (E2 + P18, "page_count reuse counts the pin and copies (reference T2.3, S4); "
                "mapcount and PageAnonExclusive reuse")
    if base == "iouring-fork":
        if variant == "hugetlb":
            return (E1 + F + E2, "copy_hugetlb_page_range shares pinned hugetlb pages until "
                    "the early COW of 4eae4efa2c29 (5.12)")
        return (E1 + F, "fork shares the pinned page up to 5.8; early COW of pinned pages "
                "from 5.9 (reference T1.4, S5)")
    if base == "ro-pin-shared":
        return (E1 + E2 + P18, "the R/O pin sits on a still-shared page and the write copies "
                "(reference T2.2, S3); 5.8 breaks COW at pin time; 5.19 unshares")
    if base == "ro-pin-previously-shared":
        if variant == "hugetlb":
            return (), "hugetlb_wp: page_mapcount == 1 -> reuse in every era"
        if variant == "thp":
            return (P18, "THP reuse by mapcount up to 5.17; page_count from 5.18 (S3p on a THP)")
        return (E2 + P18, "page_count reuse counts the pin (reference S3p); mapcount 1 reuses; "
                "5.19 unshares to an exclusive page")
    if base == "ro-pin-exclusive":
        if variant == "hugetlb":
            return (), "hugetlb_wp: page_mapcount == 1 -> reuse in every era"
        if variant == "thp":
            return (P18, "THP reuse by mapcount up to 5.17; page_count from 5.18")
        return (E2 + P18, "page_count reuse counts the pin and copies; mapcount and "
                "PageAnonExclusive reuse")
    raise KeyError(test)


# ---------------------------------------------------------------------------- non-anonymous
# variant -> (description, objects: lines, X (mem, PROT_READ|PROT_WRITE MAP_PRIVATE),
# S (smem, PROT_READ)); every page starts unpopulated: cow.c's `tmp = *mem + *smem` faults
# both in (run_with_zeropage, run_with_memfd, run_with_tmpfile, run_with_huge_zeropage,
# run_with_memfd_hugetlb)
NONANON_VARIANTS = {
    "zeropage": ("the shared zero page", [],
                 "{state: none}", "{state: none, prot: r}"),
    "memfd": ("a memfd page (fallocated)", ["  F: {type: memfd, state: present}"],
              "{state: none, object: F}", "{state: none, object: F, shared: true, prot: r}"),
    "tmpfile": ("a tmpfile page (fallocated; /tmp on a disk filesystem: the page cache of "
                "an ext4 file)", ["  F: {type: file, state: present}"],
                "{state: none, object: F}", "{state: none, object: F, shared: true, prot: r}"),
    "huge-zeropage": ("the huge zero page (MADV_HUGEPAGE, read-faulted)", [],
                      "{state: none, kind: thp}", "{state: none, kind: thp, prot: r}"),
    "memfd-hugetlb": ("a hugetlb memfd page (fallocated)",
                      ["  F: {type: memfd_hugetlb, state: present}"],
                      "{state: none, object: F}",
                      "{state: none, object: F, shared: true, prot: r}"),
}
NONANON_SETUP = ["- read: X", "- read: S"]
NONANON_TESTS = {
    # test_cow: memcpy(old, smem); memset(mem, 0xff); memcmp(smem, old)
    "basic": ("Basic COW", "no-leak", ["- read: S", "- write: X", "- read: S"]),
    # do_test_ro_pin(mem, RO_PIN_TEST, fast): R/O long-term pin, memset(mem), read the pin
    "ro-pin": ("R/O longterm GUP pin", "pin-coherent",
               ["- pin: {page: X, as: R, access: read}", "- write: X", "- device_read: R"]),
    "ro-pin-fast": ("R/O longterm GUP-fast pin", "pin-coherent",
                    ["- pin: {page: X, as: R, access: read, fast: true}", "- write: X",
                     "- device_read: R"]),
}


def nonanon_violated_in(test: str, variant: str):
    """(presets where the test's property is violated, why), from the rules."""
    if test == "basic":
        return ((), "a write to a private mapping of the zero page or of a page cache page "
                "always copies (do_wp_page / hugetlb_wp never reuse a page that is not "
                "anonymous; do_cow_fault copies at once), so smem keeps the file's data")
    return (E1 + E2 + P18 + ("v5.19",),
            "the R/O pin takes the zero page / the page cache page itself and the write then "
            "copies, so the pin keeps the old page (wrong COW); 5.8 write-faults first "
            "(17839856fd58: the pin is on the private copy); 6.2 unshares R/O FOLL_LONGTERM "
            "pins in COW mappings first (84209e87c696, 8d6a0ac09a16; GUP-fast without a VMA "
            "backs off to the slow path)")


def render_nonanon(test: str, variant: str) -> str:
    title, prop, program = NONANON_TESTS[test]
    vdesc, objects, mem, smem = NONANON_VARIANTS[variant]
    bad, why = nonanon_violated_in(test, variant)
    lines = ["# generated by tools/gen_cow_scenarios.py from the rules it cites; do not edit",
             f"name: cow-nonanon-{test}-{variant}",
             "description: >",
             f"  cow.c non-anonymous \"{title}\" on {vdesc}, mapped MAP_PRIVATE at X, with "
             f"smem (S) mapping the same memory read-only.  Property {prop}: violated under "
             f"{', '.join(bad) if bad else 'no preset'}: {why}."]
    if objects:
        lines += ["objects:", *objects]
    lines += ["pages:", f"  X: {mem}", f"  S: {smem}", "processes:", "  A:", "    program:"]
    lines += [f"      {line}" for line in NONANON_SETUP + program]
    return "\n".join(lines + expectations(prop, bad)) + "\n"


def expectations(prop: str, bad) -> list[str]:
    """The properties list and every preset's expected verdicts: `prop` violated under the
    presets in `bad`, everything else holds."""
    lines = [f"properties: [{', '.join(PROPERTIES)}]", "expect:"]
    for preset in PRESETS:
        verdicts = ", ".join(
            f"{p}: {'violated' if p == prop and preset in bad else 'holds'}" for p in PROPERTIES)
        lines.append(f"  {preset}: {{{verdicts}}}")
    return lines


def skip(test: str, variant: str) -> str | None:
    """A combination left out (with the reason); none at the moment."""
    return None


def render(test: str, variant: str) -> str:
    title, prop, program = TESTS[test]
    vdesc, page, swapped = VARIANTS[variant]
    bad, why = violated_in(test, variant)
    lines = ["# generated by tools/gen_cow_scenarios.py from the rules it cites; do not edit",
             f"name: cow-{test}-{variant}",
             "description: >",
             f"  cow.c \"{title}\" on a {vdesc}.  Property {prop}: violated under "
             f"{', '.join(bad) if bad else 'no preset'}: {why}.",
             "pages:",
             "  X: {" + ", ".join(f"{k}: {v}" for k, v in page.items()) + "}",
             "processes:", "  A:", "    program:"]
    body = (["- pageout: X"] if swapped else []) + program
    lines += [f"      {line}" for line in body]
    return "\n".join(lines + expectations(prop, bad)) + "\n"


def generate(out_dir: str) -> dict[str, str]:
    files = {}
    for test in TESTS:
        for variant in VARIANTS:
            if skip(test, variant):
                continue
            files[os.path.join(out_dir, f"{test}--{variant}.yaml")] = render(test, variant)
    for test in NONANON_TESTS:
        for variant in NONANON_VARIANTS:
            files[os.path.join(out_dir, f"nonanon-{test}--{variant}.yaml")] = \
                render_nonanon(test, variant)
    return files


def main(argv) -> int:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out_dir = os.path.join(root, "scenarios", "cow")
    files = generate(out_dir)
    if "--check" in argv:
        stale = [f for f, text in files.items()
                 if not os.path.exists(f) or open(f).read() != text]
        extra = [os.path.join(out_dir, f) for f in os.listdir(out_dir)
                 if os.path.join(out_dir, f) not in files] if os.path.isdir(out_dir) else []
        if stale or extra:
            print("scenarios/cow is out of date: run python tools/gen_cow_scenarios.py")
            return 1
        return 0
    os.makedirs(out_dir, exist_ok=True)
    for f in os.listdir(out_dir):
        if f.endswith(".yaml"):
            os.remove(os.path.join(out_dir, f))
    for f, text in files.items():
        with open(f, "w") as fh:
            fh.write(text)
    print(f"wrote {len(files)} scenarios to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
