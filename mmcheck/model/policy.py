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
_knob("mprotect_writable", ("never", "exclusive_dirty_sd_inverted", "exclusive_dirty",
                           "exclusive"),
      "change_pte_range (mprotect PROT_WRITE): when can_change_pte_writable() maps a R/O private "
      "PTE writable at once instead of leaving it to the next write fault",
      {"never": "(before 6.0): the PTE stays R/O",
       "exclusive_dirty_sd_inverted": "64fe24a3e05e as first merged (6.0-rc1): as "
                                      "exclusive_dirty, but the soft-dirty test inverted "
                                      "(pte_soft_dirty || VM_SOFTDIRTY set), so with tracking "
                                      "on a clean-SD PTE is made writable (reference SD2/B7; "
                                      "fixed by 76aefad628aa)",
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

# ----------------------------------------------------------------------------- write tracking
_knob("uffd_wp", ("none", "anon", "no_markers", "markers"),
      "UFFDIO_REGISTER_MODE_WP: which memory can be write-protected, and how a zapped PTE of "
      "shmem/hugetlb memory keeps its protection",
      {"none": "(before 5.7): no uffd-wp, registration in WP mode is EINVAL",
       "anon": "63b2d4174c4a userfaultfd: wp: add the writeprotect API to userfaultfd ioctl "
               "(5.7): private anonymous memory only; shmem/hugetlb EINVAL",
       "no_markers": "a design without PTE markers (reference B0'): shmem/hugetlb accepted, "
                     "but a zapped or reclaimed PTE forgets its WP bit and the next fault "
                     "rebuilds it from the page cache unprotected - why the shmem series "
                     "introduced markers",
       "markers": "userfaultfd-wp: Support shmem and hugetlbfs (Peter Xu, 5.19: 679d10331910 "
                  "PTE_MARKER, 999dad824c39 persist uffd-wp across zapping, b1f9e876862d "
                  "enable for shmem & hugetlbfs): PTE markers keep WP across zap and "
                  "reclaim"})
_knob("uffd_wp_unpopulated", (False, True),
      "UFFD_FEATURE_WP_UNPOPULATED is offered: protecting a none anonymous PTE installs a marker",
      {False: "(before 6.4): UFFDIO_WRITEPROTECT silently skips none anon PTEs (reference B0)",
       True: "2bad466cc9d9 mm/uffd: UFFD_FEATURE_WP_UNPOPULATED (Peter Xu, 6.4)"})
_knob("pagemap_uffd_wp", (False, True),
      "/proc/pid/pagemap reports the uffd-wp bit (bit 57)",
      {False: "(before 5.14)", True: "fb8e37f35a2f mm/pagemap: export uffd-wp protection "
                                            "information (5.14)"})
_knob("uffd_wp_writenotify", (False, True),
      "a shared mapping registered for uffd-wp wants write notification (vm_page_prot R/O), so "
      "paths that map pages from vm_page_prot (mprotect, faults, migration) do not grant write",
      {False: "(5.19-6.1): vm_page_prot stays writable: mprotect(PROT_WRITE) on a protected "
              "shmem page makes it writable while WP is set",
       True: "51d3d5eb74ff mm/userfaultfd: enable writenotify while userfaultfd-wp is enabled "
             "for a VMA (6.2, also 6.1.y)"})
_knob("uffd_unprotect_writable", ("vm_flags", "try_change_writable"),
      "UFFDIO_WRITEPROTECT clearing WP: when the PTE becomes writable at once",
      {"vm_flags": "(5.7-6.2) uffd_wp_range: pte_modify(vm_get_page_prot(vm_flags)): a shared "
                   "writable mapping's PTE becomes writable, a private one stays R/O",
       "try_change_writable": "931298e103c2 mm/userfaultfd: rely on vma->vm_page_prot in "
                              "uffd_wp_range() (6.3): vma->vm_page_prot, then "
                              "can_change_pte_writable() like mprotect"})
_knob("fork_uffd_marker", ("copied", "dropped"),
      "fork without UFFD_FEATURE_EVENT_FORK: does the child get the parent's uffd-wp markers",
      {"copied": "(5.19-6.1): copy_nonpresent_pte copies the marker into a child VMA without "
                 "VM_UFFD_WP (reference B2: a kernel WARN on the child's fault)",
       "dropped": "49d6d7fb6313 mm/uffd: fix pte marker when fork() without fork event "
                  "(Peter Xu, 6.2 and stable)"})
_knob("mkuffd_wp_wrprotects", (False, True),
      "pte_mkuffd_wp() also write-protects: what remove_migration_pte (mk_pte(new, "
      "vma->vm_page_prot), then the uffd-wp bit) gives where vm_page_prot is writable",
      {False: "(5.7-6.2) x86 pte_mkuffd_wp only sets _PAGE_UFFD_WP: a shared mapping whose "
              "vm_page_prot is writable gets a writable uffd-wp PTE back from migration "
              "(reference B4; from 6.2 51d3d5eb74ff's writenotify keeps vm_page_prot R/O "
              "in uffd-wp VMAs; the Nov 2022 migrate fix the reference cites was dropped "
              "from -mm, never merged)",
       True: "mm/uffd: always wr-protect pte in pte|pmd_mkuffd_wp() (Peter Xu, 6.3)"})
_knob("thp_migration_uffd_wp", ("dropped", "kept"),
      "migrating a PMD-mapped anonymous THP keeps its uffd-wp bit",
      {"dropped": "(5.7-6.3) the PMD migration entry loses the WP bit (reference B5)",
       "kept": "mm/userfaultfd: fix uffd-wp handling for THP migration entries (David "
               "Hildenbrand, 24bf08c4376b, 6.3 and stable)"})
_knob("hugetlb_unshare_uffd_wp", ("dropped", "kept"),
      "hugetlb_wp with FAULT_FLAG_UNSHARE (a R/O pin breaking COW) keeps the uffd-wp bit",
      {"dropped": "(5.19-6.3) the unshared copy is mapped without WP (reference B6)",
       "kept": "mm/hugetlb: fix uffd-wp bit lost when unsharing happens (Peter Xu, Apr 2023, "
               "0f230bc24b6e, 6.4)"})
_knob("mremap_clears_uffd_wp", (False, True),
      "mremap of a uffd-wp range without UFFD_FEATURE_EVENT_REMAP clears the moved WP bits",
      {False: "(before 2025) stale WP bits and markers stay in the unregistered VMA "
              "(reference B3)",
       True: "0cef0bb836e3 mm: clear uffd-wp PTE/PMD state on mremap() (Ryan Roberts, "
             "6.13; 6.12.11 stable)"})
_knob("vma_merge_softdirty", ("lost", "propagated"),
      "a VMA merge keeps VM_SOFTDIRTY if either VMA had it",
      {"lost": "34228d473efe mm: ignore VM_SOFTDIRTY on VMA merging (3.14) until 2025: the "
               "merged VMA takes the surviving VMA's flags (reference SD3/B8)",
       "propagated": "6707915e030a mm: propagate VM_SOFTDIRTY on merge (Lorenzo Stoakes, "
                     "Nov 2025, 6.19; backported to 6.18.y)"})
_knob("softdirty_writenotify", (False, True),
      "clearing VM_SOFTDIRTY makes a shared mapping want write notification",
      {False: "(before 3.18) a read fault after clear_refs maps a shared page writable and "
              "the store sets no soft-dirty bit (reference SD1/B9)",
       True: "64e455079e1b mm: softdirty: enable write notifications on VMAs after "
             "VM_SOFTDIRTY cleared (3.18)"})


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
             mprotect_shared_writable="softdirty_inverted", fork_copies_hugetlb=True,
             uffd_wp="anon", uffd_wp_unpopulated=False, pagemap_uffd_wp=False,
             uffd_wp_writenotify=False, uffd_unprotect_writable="vm_flags",
             fork_uffd_marker="copied", mkuffd_wp_wrprotects=False,
             thp_migration_uffd_wp="dropped", hugetlb_unshare_uffd_wp="dropped",
             mremap_clears_uffd_wp=False, vma_merge_softdirty="lost",
             softdirty_writenotify=True)
# 5.11: the pinned-page rules of "rule 3" (reference §4.2)
_ERA2_511 = dict(_ERA1, wp_reuse="page_count", track_has_pinned=True, fork_pinned="early_copy",
                 gup_fast_seqcount=True, swapout_skip_pinned=True, clear_refs_skip_pinned=True,
                 clear_refs_mmap_write=True)
_ERA2_518 = dict(_ERA2_511, wp_reuse="page_count_drain", thp_reuse="page_count",
                 swapin_reuse="page_count", hugetlb_fork_pinned="early_copy",
                 pagemap_uffd_wp=True)
_ERA3 = dict(_ERA2_518, anon_exclusive=True, ro_gup_unshare="pin_anon",
             swapin_reuse="exclusive_bit", uffd_wp="markers")
_V62 = dict(_ERA3, ro_gup_unshare="pin_anon_or_longterm_cow", mprotect_writable="exclusive",
            mprotect_shared_writable="softdirty_checked", fork_copies_hugetlb=False,
            uffd_wp_writenotify=True, fork_uffd_marker="dropped")
_V64 = dict(_V62, uffd_wp_unpopulated=True, uffd_unprotect_writable="try_change_writable",
            mkuffd_wp_wrprotects=True,
            thp_migration_uffd_wp="kept", hugetlb_unshare_uffd_wp="kept")


def _preset(name, description, base, **changes):
    knobs = dict(base)
    knobs.update(changes)
    assert set(knobs) == set(KNOBS), (name, set(KNOBS) ^ set(knobs))
    return Policy(name, description, tuple((k, knobs[k]) for k in KNOBS))


PRESETS: dict[str, Policy] = {}
for _p in (
    _preset("v4.9-pv", "x86 GUP-fast of 4.9 before the stable fix, in a paravirt guest whose "
                       "TLB flush does not IPI; otherwise the mapcount era (no uffd-wp yet)",
            _ERA1, gup_fast_recheck=False, uffd_wp="none"),
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
                    "copies at fork (bcd51a3c679d) + the late-2022 uffd-wp fixes (writenotify "
                    "for uffd-wp VMAs, 51d3d5eb74ff, which also keeps migration from "
                    "restoring a protected shmem PTE writable; markers not copied to "
                    "unregistered children, 49d6d7fb6313)", _V62),
    _preset("v6.4", "v6.2 + the 6.3 changes (unprotect through can_change_pte_writable, "
                    "931298e103c2; pte_mkuffd_wp write-protects; uffd-wp kept on THP "
                    "migration, 24bf08c4376b) + 6.4's UFFD_FEATURE_WP_UNPOPULATED "
                    "(2bad466cc9d9) and uffd-wp kept on hugetlb unshare (0f230bc24b6e)", _V64),
    _preset("v6.18", "v6.4 + mremap clears uffd-wp without EVENT_REMAP (0cef0bb836e3, "
                     "6.13) + VM_SOFTDIRTY propagated on VMA merge (6707915e030a, 6.19, "
                     "backported to 6.18.y)", _V64, mremap_clears_uffd_wp=True,
            vma_merge_softdirty="propagated"),
):
    PRESETS[_p.name] = _p

ALIASES: dict[str, str] = {
    "v4.19": "v5.7",  # same COW/GUP rules for everything modelled (FOLL_PIN arrived in 5.6/5.7)
    "mapcount": "v5.7",
    "page_count": "v5.18",
    "anon_exclusive": "v5.19",
    "latest": "v6.18",  # later COW changes (PTE-mapped THP reuse, 2025) only avoid copies
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
