"""Policies: the COW/GUP rules of one kernel era (or a proposal), as a named set of knobs.

A policy is data.  Each knob selects one rule; the model binds the rule's implementation
once, when it compiles a scenario, so the hot path never branches on policy names.
Era presets are below; users define their own as `base preset + knob overrides` in a
scenario's `define_policies:` or in a separate policy file (see docs/policies.md).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Knob:
    name: str
    values: tuple  # allowed values (bools are (False, True))
    doc: str
    sources: dict  # value -> kernel function / commit it mirrors


KNOBS: dict[str, Knob] = {}


def _knob(name, values, doc, sources):
    KNOBS[name] = Knob(name, tuple(values), doc, dict(sources))


_knob("wp_reuse", ("mapcount", "page_count", "page_count_drain"),
      "do_wp_page: when may a write fault on a R/O anon PTE reuse the page instead of copying",
      {"mapcount": "reuse_swap_page(): page_mapcount + swapcount <= 1 (<= 5.8)",
       "page_count": "09854ba94c6a do_wp_page simplification: page_count == 1 (5.9-5.17)",
       "page_count_drain": "53a05ad9f21d/d4c470970d45: drain LRU batch, free swapcache, then "
                           "page_count == 1 (5.18+)"})
_knob("thp_reuse", ("mapcount", "page_count"),
      "do_huge_pmd_wp_page: when may a write fault reuse a PMD-mapped THP",
      {"mapcount": "page_trans_huge_mapcount() (+ swapcount) <= 1 (<= 5.17)",
       "page_count": "3bff7e3f1f16 mm/huge_memory: streamline COW logic in "
                     "do_huge_pmd_wp_page(): page_count == 1, else split and copy (5.18)"})
_knob("swapin_reuse", ("reuse_swap_page", "page_count", "exclusive_bit"),
      "do_swap_page: when a write fault maps the swapped-in page writable (exclusive)",
      {"reuse_swap_page": "reuse_swap_page(): page_mapcount + swapcount <= 1, before "
                          "swap_free (<= 5.17)",
       "page_count": "c145e0b47c77 mm: streamline COW logic in do_swap_page(): swap_free, "
                     "try_to_free_swap, then page_count == 1 (5.18)",
       "exclusive_bit": "1493a1913e34 mm/swap: remember PG_anon_exclusive via a swp pte bit: "
                        "the swap PTE's exclusive bit, else page_count == 1 (5.19)"})
_knob("swapout_skip_pinned", (False, True),
      "reclaim does not add maybe-pinned pages to the swapcache",
      {True: "feb889fb40fa mm: don't put pinned pages into the swap cache (5.11)",
       False: "(before 5.11)"})
_knob("clear_refs_skip_pinned", (False, True),
      "clear_refs soft-dirty leaves writable PTEs of maybe-pinned pages alone",
      {True: "9348b73c2e1b mm: don't play games with pinned pages in clear_page_refs (5.11)",
       False: "(before 5.11): every PTE is write-protected"})
_knob("clear_refs_mmap_write", (False, True),
      "clear_refs takes mmap_lock for write (else for read: faults run concurrently)",
      {True: "mm: fix clear_refs_write locking (5.11, with 9348b73c2e1b)",
       False: "(before 5.11): mmap_read_lock"})
_knob("anon_exclusive", (False, True),
      "PG_anon_exclusive is maintained; an exclusive page is reused without looking at counters, "
      "pins are only taken on exclusive pages, GUP-fast backs off on non-exclusive R/O pages",
      {True: "6c287605fd56 mm: remember exclusively mapped anonymous pages with "
             "PG_anon_exclusive (5.19)", False: "(before 5.19)"})
_knob("gup_read_breaks_cow", (False, True),
      "read GUP (FOLL_GET or FOLL_PIN) on a COW mapping write-faults first (forced COW break)",
      {True: "17839856fd58 gup: document and work around 'COW can break either way' (5.8)",
       False: "a308c71bf1e6 mm/gup: Remove enfornced COW mechanism (5.9)"})
_knob("track_has_pinned", (False, True),
      "FOLL_PIN GUP sets mm->has_pinned (read by fork's early-COW check)",
      {True: "008cfe4418b3 mm: Introduce mm_struct.has_pinned (5.9)", False: "(before 5.9)"})
_knob("fork_pinned", ("share", "early_copy"),
      "copy_present_pte: what fork does with a page that may be DMA-pinned "
      "(has_pinned && page_maybe_dma_pinned); with anon_exclusive this is page_try_dup_anon_rmap",
      {"share": "copy_one_pte: share it R/O like any other page (<= 5.8)",
       "early_copy": "70e806e4e645 mm: Do early cow for pinned pages during fork() (5.9); "
                     "5.19 page_try_dup_anon_rmap fails -> copy_present_page"})
_knob("hugetlb_fork_pinned", ("share", "early_copy"),
      "copy_hugetlb_page_range: what fork does with a maybe-pinned hugetlb page",
      {"share": "(before 5.12) shared like any other hugetlb page",
       "early_copy": "4eae4efa2c29 hugetlb: do early cow when page pinned on src mm (5.12, "
                     "posted Feb 2021 next to 97a7e4733b9b page_needs_cow_for_dma)"})
_knob("gup_fast_seqcount", (False, True),
      "FOLL_PIN GUP-fast samples mm->write_protect_seq and backs off if fork ran meanwhile",
      {True: "57efa1fe5957 mm/gup: prevent gup_fast from racing with COW during fork (5.11)",
       False: "(before 5.11)"})
_knob("gup_fast_recheck", (False, True),
      "GUP-fast takes its reference speculatively (fails on a freed page) and re-checks the PTE",
      {True: "2667f50e8b81 mm: introduce a general RCU get_user_pages_fast() (x86 switched to it "
             "in e585513b76f7, 4.13)",
       False: "x86 gup_pte_range before 4.13: get_page() without re-check, relying on IRQs-off "
              "to hold off the TLB-flush IPI; wrong where the flush does not IPI (paravirt "
              "guests: 4.9-stable 'x86/mm/gup: prevent get_page() race with munmap in "
              "paravirt guest')"})
_knob("ro_gup_unshare", ("none", "pin_anon", "pin_anon_or_longterm_cow", "mapcount"),
      "gup_must_unshare: which read-only GUP triggers FAULT_FLAG_UNSHARE before taking the reference",
      {"none": "no unsharing (<= 5.18)",
       "pin_anon": "a7f226604170 mm/gup: trigger FAULT_FLAG_UNSHARE when R/O-pinning a "
                   "possibly shared anonymous page (5.19)",
       "pin_anon_or_longterm_cow": "84209e87c696 mm/gup: reliable R/O long-term pinning in COW "
                                   "mappings (6.2): also the zero page / pagecache pages",
       "mapcount": "precise-mapcount proposal (COW fixes part 1 v1, Dec 2021): any R/O GUP of an "
                   "anon page with mapcount > 1 unshares"})
_knob("mprotect_writable", ("never", "exclusive_dirty", "exclusive"),
      "change_pte_range (mprotect PROT_WRITE): when can_change_pte_writable() maps a R/O private "
      "PTE writable at once instead of leaving it to the next write fault",
      {"never": "(before 6.0): the PTE stays R/O",
       "exclusive_dirty": "64fe24a3e05e mm/mprotect: try avoiding write faults for exclusive "
                          "anonymous pages when changing protection (6.0; soft-dirty check as "
                          "fixed by 76aefad628aa, as in 6.1): the PTE is dirty, soft-dirty "
                          "tracking needs no fault, the page is PageAnonExclusive",
       "exclusive": "mm/mprotect: allow clean exclusive anon pages to be writable (Nadav Amit, "
                    "6.2; <20221108174652.198904-2-david@redhat.com>): as exclusive_dirty "
                    "without the dirty requirement"})
_knob("mprotect_shared_writable", ("softdirty_inverted", "softdirty_checked"),
      "change_pte_range (mprotect PROT_WRITE) on a shared mapping that wants write notification "
      "(dirty accounting, soft-dirty tracking): which dirty R/O PTEs are made writable at once",
      {"softdirty_inverted": "64e455079e1b mm: softdirty: enable write notifications on VMAs "
                             "after VM_SOFTDIRTY cleared (3.18): pte_dirty && (pte_soft_dirty "
                             "|| !VM_SOFTDIRTY), inverted: with tracking on every dirty PTE",
       "softdirty_checked": "76aefad628aa mm/mprotect: fix soft-dirty check in "
                            "can_change_pte_writable() (6.0)"})
_knob("fork_copies_hugetlb", (False, True),
      "copy_page_range copies a hugetlb VMA's page tables at fork even without an anon_vma "
      "(a shared hugetlb mapping's PTEs are copied as they are)",
      {True: "(before 6.0): !(vm_flags & (VM_HUGETLB|VM_PFNMAP|VM_MIXEDMAP)) && !anon_vma skips",
       False: "bcd51a3c679d hugetlb: lazy page table copies in fork() (6.0): vma_needs_copy"})


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    knobs: tuple[tuple[str, object], ...]
    base: str | None = None  # the preset a user-defined policy starts from

    def __getattr__(self, item):
        for key, value in object.__getattribute__(self, "knobs"):
            if key == item:
                return value
        raise AttributeError(item)

    def as_dict(self) -> dict:
        return dict(self.knobs)


_ERA1 = dict(wp_reuse="mapcount", anon_exclusive=False, gup_read_breaks_cow=False,
             track_has_pinned=False, fork_pinned="share", gup_fast_seqcount=False,
             ro_gup_unshare="none", mprotect_writable="never",
             gup_fast_recheck=True, thp_reuse="mapcount", swapin_reuse="reuse_swap_page",
             swapout_skip_pinned=False, clear_refs_skip_pinned=False,
             clear_refs_mmap_write=False, hugetlb_fork_pinned="share",
             mprotect_shared_writable="softdirty_inverted", fork_copies_hugetlb=True)
# 5.11: the pinned-page rules of "rule 3" (reference §4.2)
_ERA2_511 = dict(_ERA1, wp_reuse="page_count", track_has_pinned=True, fork_pinned="early_copy",
                 gup_fast_seqcount=True, swapout_skip_pinned=True, clear_refs_skip_pinned=True,
                 clear_refs_mmap_write=True)
_ERA2_518 = dict(_ERA2_511, wp_reuse="page_count_drain", thp_reuse="page_count",
                 swapin_reuse="page_count", hugetlb_fork_pinned="early_copy")
_ERA3 = dict(_ERA2_518, anon_exclusive=True, ro_gup_unshare="pin_anon",
             swapin_reuse="exclusive_bit")


def _preset(name, description, base, **changes):
    knobs = dict(base)
    knobs.update(changes)
    assert set(knobs) == set(KNOBS), (name, set(KNOBS) ^ set(knobs))
    return Policy(name, description, tuple((k, knobs[k]) for k in KNOBS))


PRESETS: dict[str, Policy] = {}
for _p in (
    _preset("v4.9-pv", "x86 GUP-fast of 4.9 before the stable fix, in a paravirt guest whose "
                       "TLB flush does not IPI; otherwise the mapcount era", _ERA1,
            gup_fast_recheck=False),
    _preset("v5.7", "mapcount era: reuse when page_mapcount() == 1 (4.x .. 5.7)", _ERA1),
    _preset("v5.8", "v5.7 + GUP breaks COW even for reads (17839856fd58)", _ERA1,
            gup_read_breaks_cow=True),
    _preset("v5.9", "page_count era: reuse only when page_count() == 1; early COW of pinned "
                    "pages at fork", _ERA1, wp_reuse="page_count", track_has_pinned=True,
            fork_pinned="early_copy"),
    _preset("v5.11", "v5.9 + write_protect_seq between fork and GUP-fast (57efa1fe5957), "
                     "pinned pages kept out of the swapcache and clear_refs", _ERA2_511),
    _preset("v5.18", "page_count era after COW fixes part 1: LRU drain and swapcache freeing "
                     "before the page_count check; page_count-based THP and swap-in reuse",
            _ERA2_518),
    _preset("v5.19", "anon-exclusive era: PageAnonExclusive, exclusive swap PTEs, "
                     "FAULT_FLAG_UNSHARE for R/O pins", _ERA3),
    _preset("v6.2", "v5.19 + reliable R/O long-term pins in COW mappings (84209e87c696: zero "
                    "page, pagecache) + mprotect maps exclusive pages writable (64fe24a3e05e) "
                    "with the soft-dirty test fixed (76aefad628aa) + lazy hugetlb page table "
                    "copies at fork (bcd51a3c679d)",
            _ERA3, ro_gup_unshare="pin_anon_or_longterm_cow",
            mprotect_writable="exclusive", mprotect_shared_writable="softdirty_checked",
            fork_copies_hugetlb=False),
):
    PRESETS[_p.name] = _p

ALIASES: dict[str, str] = {
    "v4.19": "v5.7",  # same COW/GUP rules for everything modelled (FOLL_PIN arrived in 5.6/5.7)
    "mapcount": "v5.7",
    "page_count": "v5.18",
    "anon_exclusive": "v5.19",
    "latest": "v6.2",  # later changes (PTE-mapped THP reuse, 2025) only avoid copies
}

DEFAULT_POLICIES: tuple[str, ...] = tuple(PRESETS)


def check_knob(name: str, value: object) -> str | None:
    """None if `name: value` is a valid knob setting, else a one-line reason."""
    knob = KNOBS.get(name)
    if knob is None:
        return f"unknown knob '{name}' (known: {', '.join(KNOBS)})"
    if value not in knob.values or (isinstance(value, bool) != isinstance(knob.values[0], bool)):
        shown = ", ".join(str(v).lower() if isinstance(v, bool) else str(v) for v in knob.values)
        return f"knob '{name}' cannot be {value!r} (allowed: {shown})"
    return None


def known(name: str, defs: dict | None = None) -> bool:
    return name in PRESETS or name in ALIASES or bool(defs and name in defs)


def resolve(name: str, defs: dict | None = None) -> Policy:
    """The Policy called `name`: a preset, an alias of one, or a user definition
    (`defs`: name -> mmcheck.scenario.spec.PolicyDef) built on a preset or another definition."""
    if name in PRESETS:
        return PRESETS[name]
    if name in ALIASES:
        base = PRESETS[ALIASES[name]]
        return Policy(name, f"alias of {base.name}: {base.description}", base.knobs, base.name)
    if defs and name in defs:
        d = defs[name]
        base = resolve(d.base, {k: v for k, v in defs.items() if k != name})
        knobs = dict(base.knobs)
        knobs.update(dict(d.knobs))
        return Policy(name, d.description or f"{d.base} with {dict(d.knobs)}",
                      tuple((k, knobs[k]) for k in KNOBS), d.base)
    raise KeyError(name)
