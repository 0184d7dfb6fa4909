"""The policy-dependent decisions, one function per knob value.

`bind(policy)` returns the functions and flags the transitions call, chosen once per
policy, so the hot path never branches on knob names.  Each rule names the kernel code
it mirrors (see also mmcheck.model.policy.KNOBS for the commits).

Reuse rules take `(m, l, f)` (the model, the successor state as a list, the frame) and
return True (reuse), False (copy) or None (the page lock is held by someone else and this
era sleeps on it: the fault waits).  Like the kernel code they mirror, some have side
effects on `l` (draining the LRU batch, freeing the swapcache) whichever way they decide.
"""

from __future__ import annotations

from . import codec
from .codec import (PG_ANON_EXCLUSIVE, PG_CLASS, PG_FILE, PG_HUGETLB, PG_LOCKED, PG_LRU_BATCH,
                    PG_PTE_THP, PG_THP)
from .kernel.common import (
    F_FLAGS, F_MAP, F_REF, F_SLOT, GUP_PIN_COUNTING_BIAS, P_HAS_PINNED, delete_from_swap_cache,
    drain_lru_batches, page_maybe_dma_pinned, swap_free, swapcount, try_to_free_swap,
)

__all__ = ["GUP_PIN_COUNTING_BIAS", "bind"]


# ---- do_wp_page reuse: may the faulting process keep this (not exclusive-marked) page?
def reuse_if_mapcount_one(m, l, f):
    """<= 5.8 do_wp_page -> lock_page (sleeping) -> reuse_swap_page(): page_mapcount +
    swapcount <= 1; at exactly 1 a swapcache page leaves the swapcache.  GUP references
    are invisible to this decision.  (THP <= 5.17: do_huge_pmd_wp_page, same test.)"""
    if l[m.fr[f] + F_FLAGS] & PG_LOCKED:
        return None
    return reuse_swap_page(m, l, f)


def reuse_swap_page(m, l, f) -> bool:
    """mm/swapfile.c reuse_swap_page (<= 5.17, page locked by the caller): mapcount +
    swapcount <= 1; at exactly 1 a swapcache page is deleted from the swapcache."""
    b = m.fr[f]
    count = l[b + F_MAP] + swapcount(m, l, b)
    if count == 1 and l[b + F_SLOT]:
        delete_from_swap_cache(m, l, f)
    return count <= 1


def reuse_if_page_count_one(m, l, f):
    """5.9-5.17 do_wp_page (09854ba94c6a): page_count == 1, trylock_page (failure: copy),
    re-checked with page_mapcount == 1 under the page lock."""
    b = m.fr[f]
    return (l[b + F_REF] == 1 and not l[b + F_FLAGS] & PG_LOCKED
            and l[b + F_MAP] == 1)


def reuse_if_page_count_one_after_drain(m, l, f):
    """5.18+ do_wp_page (53a05ad9f21d, d4c470970d45): page_count > 3 -> copy; a page not
    yet on the LRU drains the LRU batch; page_count > 1 + PageSwapCache -> copy;
    trylock_page (failure: copy); try_to_free_swap; page_count == 1."""
    b = m.fr[f]
    if l[b + F_REF] > 3:
        return False
    if l[b + F_FLAGS] & PG_LRU_BATCH:
        drain_lru_batches(m, l)
    if l[b + F_REF] > 1 + (1 if l[b + F_SLOT] else 0):
        return False
    if l[b + F_FLAGS] & PG_LOCKED:
        return False
    if l[b + F_SLOT]:
        try_to_free_swap(m, l, f)
    return l[b + F_REF] == 1


def reuse_thp_if_page_count_one(m, l, f):
    """5.18 do_huge_pmd_wp_page (3bff7e3f1f16): trylock_page, try_to_free_swap, then
    page_count == 1; otherwise split the PMD and copy the one subpage."""
    b = m.fr[f]
    if l[b + F_FLAGS] & PG_LOCKED:
        return False
    if l[b + F_SLOT]:
        try_to_free_swap(m, l, f)
    return l[b + F_REF] == 1


def never_reuse(m, l, f):
    """Copy: a pagecache page in a private mapping (do_wp_page: not PageAnon), or a
    PTE-mapped THP once reuse is decided by page_count (the folio's count includes its
    other subpages' mappings; 6.x wp_can_reuse_anon_folio declines large folios)."""
    return False


def reuse_hugetlb_if_mapcount_one(m, l, f):
    """hugetlb_wp (hugetlb_cow): page_mapcount == 1 && PageAnon in every era, so GUP
    references stay invisible (vmsplice on hugetlb still leaks: reference T3.5)."""
    return l[m.fr[f] + F_MAP] == 1


WP_REUSE = {
    "mapcount": reuse_if_mapcount_one,
    "page_count": reuse_if_page_count_one,
    "page_count_drain": reuse_if_page_count_one_after_drain,
}
THP_REUSE = {"mapcount": reuse_if_mapcount_one, "page_count": reuse_thp_if_page_count_one}


def _with_anon_exclusive(rule):
    def reuse(m, l, f):
        # 5.19 do_wp_page: "if (PageAnonExclusive(page)) reuse" before any counting
        return True if l[m.fr[f] + F_FLAGS] & PG_ANON_EXCLUSIVE else rule(m, l, f)
    reuse.__doc__ = "PageAnonExclusive, else " + (rule.__doc__ or "")
    return reuse


def _by_page_class(small, thp, pte_thp, hugetlb):
    table = {0: small, PG_THP: thp, PG_PTE_THP: pte_thp, PG_HUGETLB: hugetlb}

    def reuse(m, l, f):
        flags = l[m.fr[f] + F_FLAGS]
        if flags & PG_FILE:
            return False
        return table[flags & PG_CLASS](m, l, f)
    return reuse


# ---- do_swap_page: is the swapped-in page exclusive (mapped writable on a write fault)?
# Each takes (m, l, f, slot, write, swx) at the PT-locked step and returns whether the
# page is exclusive; it also does swap_free() and the era's swapcache freeing.
def swapin_reuse_swap_page(m, l, f, slot, write, swx):
    """<= 5.17 do_swap_page: reuse_swap_page() before swap_free(): page_mapcount +
    swapcount (this PTE still counted) <= 1 on a write fault; at exactly 1 the page leaves
    the swapcache.  Then swap_free()."""
    exclusive = reuse_swap_page(m, l, f) if write else False
    swap_free(m, l, slot)
    return exclusive


def swapin_page_count(m, l, f, slot, write, swx):
    """5.18 do_swap_page (c145e0b47c77): swap_free(); should_try_to_free_swap (write
    fault, page_count == 2: our lookup + swapcache) -> try_to_free_swap(); exclusive if a
    write fault and page_count == 1."""
    swap_free(m, l, slot)
    b = m.fr[f]
    if write and l[b + F_REF] == 2 and l[b + F_SLOT]:
        try_to_free_swap(m, l, f)
    return write and l[b + F_REF] == 1


def swapin_exclusive_bit(m, l, f, slot, write, swx):
    """5.19 do_swap_page (1493a1913e34): exclusive if the swap PTE carried the exclusive
    bit; then swap_free(), should_try_to_free_swap, and page_count == 1 also counts as
    exclusive (on read faults too: RMAP_EXCLUSIVE)."""
    swap_free(m, l, slot)
    b = m.fr[f]
    if write and l[b + F_REF] == 2 and l[b + F_SLOT]:
        try_to_free_swap(m, l, f)
    return bool(swx) or l[b + F_REF] == 1


SWAPIN = {"reuse_swap_page": swapin_reuse_swap_page, "page_count": swapin_page_count,
          "exclusive_bit": swapin_exclusive_bit}


# ---- gup_must_unshare: must a read-only GUP break COW (FAULT_FLAG_UNSHARE) first?
def _anon_frame(l, m, pte):
    """The frame record of the anonymous page a present PTE maps, else None (the zero
    page, a pagecache page)."""
    if not codec.is_present(pte):
        return None
    b = m.fr[codec.frame(pte)]
    return None if l[b + F_FLAGS] & PG_FILE else b


# Each takes (m, l, pte, op, vm_flags): vm_flags is None in GUP-fast, which has no VMA.
def never_unshare(m, l, pte, op, vm_flags) -> bool:
    """<= 5.18: read GUP takes whatever page is mapped (a308c71bf1e6 removed 5.8's
    forced COW break)."""
    return False


def unshare_pin_of_shared_anon(m, l, pte, op, vm_flags) -> bool:
    """5.19 gup_must_unshare (a7f226604170): FOLL_PIN without FOLL_WRITE on an anon page
    that is not PageAnonExclusive (not the zero page or pagecache pages)."""
    if not op.pin or op.write:
        return False
    b = _anon_frame(l, m, pte)
    return b is not None and not l[b + F_FLAGS] & PG_ANON_EXCLUSIVE


def unshare_pin_anon_or_longterm_cow(m, l, pte, op, vm_flags) -> bool:
    """6.2 gup_must_unshare (84209e87c696): as 5.19, plus FOLL_LONGTERM R/O pins of
    non-anon pages (the shared zero page, pagecache pages) in a COW mapping
    (is_cow_mapping); GUP-fast, without the VMA, assumes one."""
    if not op.pin or op.write:
        return False
    b = _anon_frame(l, m, pte)
    if b is None:
        return op.longterm and (vm_flags is None or codec.is_cow_mapping(vm_flags))
    return not l[b + F_FLAGS] & PG_ANON_EXCLUSIVE


def unshare_if_mapcount_shared(m, l, pte, op, vm_flags) -> bool:
    """Precise-mapcount proposal (COW fixes part 1 v1, Dec 2021, not merged): any R/O GUP
    of an anon page mapped more than once unshares it."""
    if op.write:
        return False
    b = _anon_frame(l, m, pte)
    return b is not None and l[b + F_MAP] > 1


RO_GUP_UNSHARE = {
    "none": never_unshare,
    "pin_anon": unshare_pin_of_shared_anon,
    "pin_anon_or_longterm_cow": unshare_pin_anon_or_longterm_cow,
    "mapcount": unshare_if_mapcount_shared,
}


# ---- fork: must copy_present_pte copy this page for the child right away?
def fork_never_copies(m, l, p, f) -> bool:
    """<= 5.8 copy_one_pte: every page is shared R/O; GUP references are not looked at."""
    return False


def fork_copies_maybe_pinned(m, l, p, f) -> bool:
    """5.9 copy_present_page (70e806e4e645): COW mapping && mm->has_pinned &&
    page_maybe_dma_pinned(page) -> copy now (no PageAnon test: pinned pagecache pages of
    private file mappings are copied too; page_needs_cow_for_dma in 5.12+)."""
    return bool(l[m.proc[p] + P_HAS_PINNED]) and page_maybe_dma_pinned(l, m.fr[f])


def fork_copies_pinned_exclusive(m, l, p, f) -> bool:
    """5.19 page_try_dup_anon_rmap: only a PageAnonExclusive page can fail duplication
    (-EBUSY when page_needs_cow_for_dma); a shared page cannot be pinned (invariant I2);
    pagecache pages go through page_dup_file_rmap and are shared."""
    return bool(l[m.fr[f] + F_FLAGS] & PG_ANON_EXCLUSIVE) and fork_copies_maybe_pinned(m, l, p, f)


def _fork_by_page_class(pages, hugetlb):
    """copy_present_pte's rule for ordinary pages, copy_hugetlb_page_range's for hugetlb."""
    def must_copy(m, l, p, f):
        rule = hugetlb if l[m.fr[f] + F_FLAGS] & PG_HUGETLB else pages
        return rule(m, l, p, f)
    return must_copy


# ---- change_pte_range: may mprotect(PROT_WRITE) map this R/O present PTE writable?
def never_writable(m, l, vm_flags, pte) -> bool:
    """(before 6.0): a private mapping's PTE stays R/O; the next write faults."""
    return False


def writable_if_exclusive(m, l, vm_flags, pte) -> bool:
    """6.2+ can_change_pte_writable (mm/mprotect.c): no soft-dirty tracking needs a write
    fault (pte_needs_soft_dirty_wp: VM_SOFTDIRTY cleared by clear_refs and the PTE not
    soft-dirty), no uffd-wp (userfaultfd_pte_wp), and the page is an exclusive anonymous
    page (a private mapping)."""
    if codec.vma_soft_dirty_enabled(vm_flags) and not codec.soft_dirty(pte):
        return False
    if codec.uffd_pte_wp(vm_flags, pte):
        return False
    b = m.fr[codec.frame(pte)]
    return bool(l[b + F_FLAGS] & PG_ANON_EXCLUSIVE) and not l[b + F_FLAGS] & PG_FILE


def writable_if_exclusive_and_dirty(m, l, vm_flags, pte) -> bool:
    """6.0-6.1 can_change_pte_writable (64fe24a3e05e; the soft-dirty test as fixed by
    76aefad628aa): also `!pte_dirty(pte) -> false` (cow.c's clear_softdirty() defeats the
    optimisation through the soft-dirty test)."""
    return codec.dirty(pte) and writable_if_exclusive(m, l, vm_flags, pte)


def writable_if_exclusive_dirty_sd_inverted(m, l, vm_flags, pte) -> bool:
    """64fe24a3e05e as first merged (6.0-rc1): the soft-dirty test inverted - `VM_SOFTDIRTY
    set` read as "tracking on" - so with tracking on a PTE that is not soft-dirty is made
    writable and the next store sets no soft-dirty bit (reference SD2)."""
    if not codec.dirty(pte) or codec.uffd_pte_wp(vm_flags, pte):
        return False
    if not codec.vma_soft_dirty_enabled(vm_flags) and not codec.soft_dirty(pte):
        return False
    b = m.fr[codec.frame(pte)]
    return bool(l[b + F_FLAGS] & PG_ANON_EXCLUSIVE) and not l[b + F_FLAGS] & PG_FILE


MPROTECT_WRITABLE = {"never": never_writable, "exclusive_dirty": writable_if_exclusive_and_dirty,
                     "exclusive": writable_if_exclusive,
                     "exclusive_dirty_sd_inverted": writable_if_exclusive_dirty_sd_inverted}


# ---- change_pte_range on a write-notified shared mapping: may a R/O PTE become writable?
# Each takes (m, l, vm_flags, pte) for a present PTE of a shared writable mapping whose
# vm_page_prot is R/O (vma_wants_writenotify: dirty accounting or soft-dirty tracking).
def shared_dirty_softdirty_inverted(m, l, vm_flags, pte) -> bool:
    """(3.18-5.19) change_pte_range, dirty_accountable: "Avoid taking write faults for known
    dirty pages": pte_dirty && (pte_soft_dirty || !(vm_flags & VM_SOFTDIRTY)) - the test is
    inverted (VM_SOFTDIRTY clear means tracking is on), so with tracking on every dirty PTE
    is made writable and the next store sets no soft-dirty bit (reference SD2)."""
    return codec.dirty(pte) and (codec.soft_dirty(pte) or codec.vma_soft_dirty_enabled(vm_flags))


def shared_dirty_softdirty_checked(m, l, vm_flags, pte) -> bool:
    """76aefad628aa mm/mprotect: fix soft-dirty check in can_change_pte_writable() (6.0):
    a dirty PTE becomes writable unless soft-dirty or uffd-wp tracking needs the write fault
    (can_change_pte_writable's VM_SHARED case)."""
    return (codec.dirty(pte) and not codec.uffd_pte_wp(vm_flags, pte)
            and (codec.soft_dirty(pte) or not codec.vma_soft_dirty_enabled(vm_flags)))


MPROTECT_SHARED_WRITABLE = {"softdirty_inverted": shared_dirty_softdirty_inverted,
                            "softdirty_checked": shared_dirty_softdirty_checked}


# ---- fork: does copy_page_range copy this VMA's page tables?
def needs_copy_if_anon_vma(vm_flags) -> bool:
    """vma_needs_copy (6.0+; the same test inline in copy_page_range before): only a VMA
    with an anon_vma (or uffd-wp, VM_PFNMAP/VM_MIXEDMAP, not modelled); "Don't copy ptes
    where a page fault will fill them correctly": shared mappings and private ones nothing
    was COWed in yet are faulted in by the child."""
    return bool(vm_flags & codec.VM_ANON_VMA)


def needs_copy_if_anon_vma_or_hugetlb(vm_flags) -> bool:
    """copy_page_range before 6.0: `!(vm_flags & (VM_HUGETLB | VM_PFNMAP | VM_MIXEDMAP)) &&
    !anon_vma` skips: hugetlb VMAs were always copied (until bcd51a3c679d)."""
    return bool(vm_flags & (codec.VM_ANON_VMA | codec.VM_HUGETLB))


def bind(policy) -> dict:
    """The rule functions and flags the transitions use under `policy`."""
    ae = policy.anon_exclusive
    small = WP_REUSE[policy.wp_reuse]
    thp = THP_REUSE[policy.thp_reuse]
    # a PTE-mapped THP subpage: mapcount-based reuse while do_wp_page used mapcounts, never
    # once it used page_count (the folio's count includes its other subpages)
    pte_thp = reuse_if_mapcount_one if policy.wp_reuse == "mapcount" else never_reuse
    if ae:
        small, thp, pte_thp = (_with_anon_exclusive(small), _with_anon_exclusive(thp),
                               _with_anon_exclusive(pte_thp))
    fork_rules = {"share": fork_never_copies,
                  "early_copy": fork_copies_pinned_exclusive if ae else fork_copies_maybe_pinned}
    fork_rule = _fork_by_page_class(fork_rules[policy.fork_pinned],
                                    fork_rules[policy.hugetlb_fork_pinned])
    return dict(
        ae=ae,
        can_reuse=_by_page_class(small, thp, pte_thp, reuse_hugetlb_if_mapcount_one),
        swapin_exclusive=SWAPIN[policy.swapin_reuse],
        swap_pte_exclusive=policy.swapin_reuse == "exclusive_bit",
        must_unshare=RO_GUP_UNSHARE[policy.ro_gup_unshare],
        fork_must_copy=fork_rule,
        gup_read_breaks_cow=policy.gup_read_breaks_cow,
        track_has_pinned=policy.track_has_pinned,
        gup_fast_seqcount=policy.gup_fast_seqcount,
        gup_fast_recheck=policy.gup_fast_recheck,
        can_change_pte_writable=MPROTECT_WRITABLE[policy.mprotect_writable],
        shared_dirty_writable=MPROTECT_SHARED_WRITABLE[policy.mprotect_shared_writable],
        vma_needs_copy=(needs_copy_if_anon_vma_or_hugetlb if policy.fork_copies_hugetlb
                        else needs_copy_if_anon_vma),
        swapout_skip_pinned=policy.swapout_skip_pinned,
        clear_refs_skip_pinned=policy.clear_refs_skip_pinned,
        clear_refs_mmap_write=policy.clear_refs_mmap_write,
        uffd_wp=policy.uffd_wp,
        uffd_wp_unpopulated=policy.uffd_wp_unpopulated,
        pagemap_uffd_wp=policy.pagemap_uffd_wp,
        uffd_wp_writenotify=policy.uffd_wp_writenotify,
        uffd_unprotect_try_writable=policy.uffd_unprotect_writable == "try_change_writable",
        fork_uffd_marker_dropped=policy.fork_uffd_marker == "dropped",
        mkuffd_wp_wrprotects=policy.mkuffd_wp_wrprotects,
        thp_migration_keeps_wp=policy.thp_migration_uffd_wp == "kept",
        hugetlb_unshare_keeps_wp=policy.hugetlb_unshare_uffd_wp == "kept",
        mremap_clears_wp=policy.mremap_clears_uffd_wp,
        vma_merge_propagates_sd=policy.vma_merge_softdirty == "propagated",
        softdirty_writenotify=policy.softdirty_writenotify,
    )
