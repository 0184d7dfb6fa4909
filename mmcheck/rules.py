"""The policy-dependent decisions, one function per knob value.

`bind(policy)` returns the functions and flags the transitions call, chosen once per
policy, so the hot path never branches on knob names.  Each rule names the kernel code
it mirrors (see also mmcheck.policy.KNOBS for the commits).

Reuse rules take `(m, l, f)` (the model, the successor state as a list, the frame) and
return True (reuse), False (copy) or None (the page lock is held by someone else and this
era sleeps on it: the fault waits).  Like the kernel code they mirror, some have side
effects on `l` (draining the LRU batch, freeing the swapcache) whichever way they decide.
"""

from __future__ import annotations

from .kernel import (_delete_from_swap_cache, _drain_lru_batches, _release_slot_if_unused,
                     _try_to_free_swap)
from .state import (
    FL_AE, FL_CLASS, FL_FILE, FL_HUGETLB, FL_LOCKED, FL_LRU_BATCH, FL_PTE_THP, FL_THP, FR_FLAGS,
    FR_MAP, FR_REF, FR_SLOT, PROC_HAS_PINNED, PTE_SHIFT, PTE_ZERO, SL_SWC,
)

GUP_PIN_COUNTING_BIAS = 1024  # include/linux/mm.h


def page_maybe_dma_pinned(l, fb) -> bool:
    """include/linux/mm.h: for a small page, page_count >= GUP_PIN_COUNTING_BIAS."""
    return l[fb + FR_REF] >= GUP_PIN_COUNTING_BIAS


def _swapcount(m, l, fb) -> int:
    slot = l[fb + FR_SLOT]
    return l[m.sl[slot - 1] + SL_SWC] if slot else 0


# ---- do_wp_page reuse: may the faulting process keep this (not exclusive-marked) page?
def reuse_if_mapcount_one(m, l, f):
    """<= 5.8 do_wp_page -> lock_page (sleeping) -> reuse_swap_page(): page_mapcount +
    swapcount <= 1; at exactly 1 a swapcache page leaves the swapcache.  GUP references
    are invisible to this decision.  (THP <= 5.17: do_huge_pmd_wp_page, same test.)"""
    if l[m.fr[f] + FR_FLAGS] & FL_LOCKED:
        return None
    return reuse_swap_page(m, l, f)


def reuse_swap_page(m, l, f) -> bool:
    """mm/swapfile.c reuse_swap_page (<= 5.17, page locked by the caller): mapcount +
    swapcount <= 1; at exactly 1 a swapcache page is deleted from the swapcache."""
    b = m.fr[f]
    count = l[b + FR_MAP] + _swapcount(m, l, b)
    if count == 1 and l[b + FR_SLOT]:
        _delete_from_swap_cache(m, l, f)
    return count <= 1


def reuse_if_page_count_one(m, l, f):
    """5.9-5.17 do_wp_page (09854ba94c6a): page_count == 1, trylock_page (failure: copy),
    re-checked with page_mapcount == 1 under the page lock."""
    b = m.fr[f]
    return (l[b + FR_REF] == 1 and not l[b + FR_FLAGS] & FL_LOCKED
            and l[b + FR_MAP] == 1)


def reuse_if_page_count_one_after_drain(m, l, f):
    """5.18+ do_wp_page (53a05ad9f21d, d4c470970d45): page_count > 3 -> copy; a page not
    yet on the LRU drains the LRU batch; page_count > 1 + PageSwapCache -> copy;
    trylock_page (failure: copy); try_to_free_swap; page_count == 1."""
    b = m.fr[f]
    if l[b + FR_REF] > 3:
        return False
    if l[b + FR_FLAGS] & FL_LRU_BATCH:
        _drain_lru_batches(m, l)
    if l[b + FR_REF] > 1 + (1 if l[b + FR_SLOT] else 0):
        return False
    if l[b + FR_FLAGS] & FL_LOCKED:
        return False
    if l[b + FR_SLOT]:
        _try_to_free_swap(m, l, f)
    return l[b + FR_REF] == 1


def reuse_thp_if_page_count_one(m, l, f):
    """5.18 do_huge_pmd_wp_page (3bff7e3f1f16): trylock_page, try_to_free_swap, then
    page_count == 1; otherwise split the PMD and copy the one subpage."""
    b = m.fr[f]
    if l[b + FR_FLAGS] & FL_LOCKED:
        return False
    if l[b + FR_SLOT]:
        _try_to_free_swap(m, l, f)
    return l[b + FR_REF] == 1


def never_reuse(m, l, f):
    """Copy: a pagecache page in a private mapping (do_wp_page: not PageAnon), or a
    PTE-mapped THP once reuse is decided by page_count (the folio's count includes its
    other subpages' mappings; 6.x wp_can_reuse_anon_folio declines large folios)."""
    return False


def reuse_hugetlb_if_mapcount_one(m, l, f):
    """hugetlb_wp (hugetlb_cow): page_mapcount == 1 && PageAnon in every era, so GUP
    references stay invisible (vmsplice on hugetlb still leaks: reference T3.5)."""
    return l[m.fr[f] + FR_MAP] == 1


WP_REUSE = {
    "mapcount": reuse_if_mapcount_one,
    "page_count": reuse_if_page_count_one,
    "page_count_drain": reuse_if_page_count_one_after_drain,
}
THP_REUSE = {"mapcount": reuse_if_mapcount_one, "page_count": reuse_thp_if_page_count_one}


def _with_anon_exclusive(rule):
    def reuse(m, l, f):
        # 5.19 do_wp_page: "if (PageAnonExclusive(page)) reuse" before any counting
        return True if l[m.fr[f] + FR_FLAGS] & FL_AE else rule(m, l, f)
    reuse.__doc__ = "PageAnonExclusive, else " + (rule.__doc__ or "")
    return reuse


def _by_page_class(small, thp, pte_thp, hugetlb):
    table = {0: small, FL_THP: thp, FL_PTE_THP: pte_thp, FL_HUGETLB: hugetlb}

    def reuse(m, l, f):
        flags = l[m.fr[f] + FR_FLAGS]
        if flags & FL_FILE:
            return False
        return table[flags & FL_CLASS](m, l, f)
    return reuse


# ---- do_swap_page: is the swapped-in page exclusive (mapped writable on a write fault)?
# Each takes (m, l, f, slot, write, swx) at the PT-locked step and returns whether the
# page is exclusive; it also does swap_free() and the era's swapcache freeing.
def swapin_reuse_swap_page(m, l, f, slot, write, swx):
    """<= 5.17 do_swap_page: reuse_swap_page() before swap_free(): page_mapcount +
    swapcount (this PTE still counted) <= 1 on a write fault; at exactly 1 the page leaves
    the swapcache.  Then swap_free()."""
    exclusive = reuse_swap_page(m, l, f) if write else False
    _swap_free(m, l, slot)
    return exclusive


def swapin_page_count(m, l, f, slot, write, swx):
    """5.18 do_swap_page (c145e0b47c77): swap_free(); should_try_to_free_swap (write
    fault, page_count == 2: our lookup + swapcache) -> try_to_free_swap(); exclusive if a
    write fault and page_count == 1."""
    _swap_free(m, l, slot)
    b = m.fr[f]
    if write and l[b + FR_REF] == 2 and l[b + FR_SLOT]:
        _try_to_free_swap(m, l, f)
    return write and l[b + FR_REF] == 1


def swapin_exclusive_bit(m, l, f, slot, write, swx):
    """5.19 do_swap_page (1493a1913e34): exclusive if the swap PTE carried the exclusive
    bit; then swap_free(), should_try_to_free_swap, and page_count == 1 also counts as
    exclusive (on read faults too: RMAP_EXCLUSIVE)."""
    _swap_free(m, l, slot)
    b = m.fr[f]
    if write and l[b + FR_REF] == 2 and l[b + FR_SLOT]:
        _try_to_free_swap(m, l, f)
    return bool(swx) or l[b + FR_REF] == 1


def _swap_free(m, l, slot):
    """swap_free: this PTE's swap reference goes."""
    l[m.sl[slot] + SL_SWC] -= 1
    _release_slot_if_unused(m, l, slot)


SWAPIN = {"reuse_swap_page": swapin_reuse_swap_page, "page_count": swapin_page_count,
          "exclusive_bit": swapin_exclusive_bit}


# ---- gup_must_unshare: must a read-only GUP break COW (FAULT_FLAG_UNSHARE) first?
def _anon_frame(l, m, pte):
    if pte & PTE_ZERO:
        return None
    b = m.fr[(pte >> PTE_SHIFT) - 1]
    return None if l[b + FR_FLAGS] & FL_FILE else b


def never_unshare(m, l, pte, op) -> bool:
    """<= 5.18: read GUP takes whatever page is mapped (a308c71bf1e6 removed 5.8's
    forced COW break)."""
    return False


def unshare_pin_of_shared_anon(m, l, pte, op) -> bool:
    """5.19 gup_must_unshare (a7f226604170): FOLL_PIN without FOLL_WRITE on an anon page
    that is not PageAnonExclusive (not the zero page or pagecache pages)."""
    if not op.pin or op.write:
        return False
    b = _anon_frame(l, m, pte)
    return b is not None and not l[b + FR_FLAGS] & FL_AE


def unshare_pin_anon_or_longterm_cow(m, l, pte, op) -> bool:
    """6.2 gup_must_unshare (84209e87c696): as 5.19, plus FOLL_LONGTERM R/O pins of
    non-anon pages (the shared zero page, pagecache pages) in a COW mapping."""
    if not op.pin or op.write:
        return False
    b = _anon_frame(l, m, pte)
    if b is None:
        return op.longterm
    return not l[b + FR_FLAGS] & FL_AE


def unshare_if_mapcount_shared(m, l, pte, op) -> bool:
    """Precise-mapcount proposal (COW fixes part 1 v1, Dec 2021, not merged): any R/O GUP
    of an anon page mapped more than once unshares it."""
    if op.write:
        return False
    b = _anon_frame(l, m, pte)
    return b is not None and l[b + FR_MAP] > 1


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
    return bool(l[m.proc[p] + PROC_HAS_PINNED]) and page_maybe_dma_pinned(l, m.fr[f])


def fork_copies_pinned_exclusive(m, l, p, f) -> bool:
    """5.19 page_try_dup_anon_rmap: only a PageAnonExclusive page can fail duplication
    (-EBUSY when page_needs_cow_for_dma); a shared page cannot be pinned (invariant I2);
    pagecache pages go through page_dup_file_rmap and are shared."""
    return bool(l[m.fr[f] + FR_FLAGS] & FL_AE) and fork_copies_maybe_pinned(m, l, p, f)


def _fork_by_page_class(pages, hugetlb):
    """copy_present_pte's rule for ordinary pages, copy_hugetlb_page_range's for hugetlb."""
    def must_copy(m, l, p, f):
        rule = hugetlb if l[m.fr[f] + FR_FLAGS] & FL_HUGETLB else pages
        return rule(m, l, p, f)
    return must_copy


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
        mprotect_writable_if_exclusive=policy.mprotect_writable_if_exclusive,
        swapout_skip_pinned=policy.swapout_skip_pinned,
        clear_refs_skip_pinned=policy.clear_refs_skip_pinned,
        clear_refs_mmap_write=policy.clear_refs_mmap_write,
    )
