"""The policy-dependent decisions, one function per knob value.

`bind(policy)` returns the functions and flags the transitions call, chosen once per
policy, so the hot path never branches on knob names.  Each rule names the kernel code
it mirrors (see also mmcheck.policy.KNOBS for the commits).
"""

from __future__ import annotations

from .state import FL_AE, FR_FLAGS, FR_MAP, FR_REF, PROC_HAS_PINNED, PTE_SHIFT, PTE_ZERO

GUP_PIN_COUNTING_BIAS = 1024  # include/linux/mm.h


def page_maybe_dma_pinned(l, fb) -> bool:
    """include/linux/mm.h: for a small page, page_count >= GUP_PIN_COUNTING_BIAS."""
    return l[fb + FR_REF] >= GUP_PIN_COUNTING_BIAS


# ---- do_wp_page reuse: may the faulting process keep this (not exclusive-marked) page?
def reuse_if_mapcount_one(m, l, f) -> bool:
    """<= 5.8 do_wp_page -> reuse_swap_page(): page_mapcount (+ swapcount) <= 1.
    GUP references are invisible to this decision."""
    return l[m.fr[f] + FR_MAP] <= 1


def reuse_if_page_count_one(m, l, f) -> bool:
    """5.9-5.17 do_wp_page (09854ba94c6a): page_count == 1, re-checked with
    page_mapcount == 1 under the page lock (nobody else holds it in this model)."""
    b = m.fr[f]
    return l[b + FR_REF] == 1 and l[b + FR_MAP] == 1


def reuse_if_page_count_one_after_drain(m, l, f) -> bool:
    """5.18+ do_wp_page (53a05ad9f21d, d4c470970d45): `page_count > 3` -> copy, drain the
    LRU batch, try_to_free_swap, then page_count == 1.  Without LRU batches and the
    swapcache in the model this is the page_count == 1 test."""
    b = m.fr[f]
    return l[b + FR_REF] == 1


WP_REUSE = {
    "mapcount": reuse_if_mapcount_one,
    "page_count": reuse_if_page_count_one,
    "page_count_drain": reuse_if_page_count_one_after_drain,
}


def _with_anon_exclusive(rule):
    def reuse(m, l, f):
        # 5.19 do_wp_page: "if (PageAnonExclusive(page)) reuse" before any counting
        return bool(l[m.fr[f] + FR_FLAGS] & FL_AE) or rule(m, l, f)
    reuse.__doc__ = "PageAnonExclusive, else " + (rule.__doc__ or "")
    return reuse


# ---- gup_must_unshare: must a read-only GUP break COW (FAULT_FLAG_UNSHARE) first?
def never_unshare(m, l, pte, op) -> bool:
    """<= 5.18: read GUP takes whatever page is mapped (a308c71bf1e6 removed 5.8's
    forced COW break)."""
    return False


def unshare_pin_of_shared_anon(m, l, pte, op) -> bool:
    """5.19 gup_must_unshare (a7f226604170): FOLL_PIN without FOLL_WRITE on an anon page
    that is not PageAnonExclusive."""
    if not op.pin or op.write or pte & PTE_ZERO:
        return False
    return not l[m.fr[(pte >> PTE_SHIFT) - 1] + FR_FLAGS] & FL_AE


def unshare_pin_anon_or_longterm_cow(m, l, pte, op) -> bool:
    """6.2 gup_must_unshare (84209e87c696): as 5.19, plus FOLL_LONGTERM R/O pins of
    non-anon pages (the shared zero page here) in a COW mapping."""
    if not op.pin or op.write:
        return False
    if pte & PTE_ZERO:
        return op.longterm
    return not l[m.fr[(pte >> PTE_SHIFT) - 1] + FR_FLAGS] & FL_AE


def unshare_if_mapcount_shared(m, l, pte, op) -> bool:
    """Precise-mapcount proposal (COW fixes part 1 v1, Dec 2021, not merged): any R/O GUP
    of an anon page mapped more than once unshares it."""
    if op.write or pte & PTE_ZERO:
        return False
    return l[m.fr[(pte >> PTE_SHIFT) - 1] + FR_MAP] > 1


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
    page_maybe_dma_pinned(page) -> copy now (page_needs_cow_for_dma in 5.12+)."""
    return bool(l[m.proc[p] + PROC_HAS_PINNED]) and page_maybe_dma_pinned(l, m.fr[f])


def fork_copies_pinned_exclusive(m, l, p, f) -> bool:
    """5.19 page_try_dup_anon_rmap: only a PageAnonExclusive page can fail duplication
    (-EBUSY when page_needs_cow_for_dma); a shared page cannot be pinned (invariant I2)."""
    return bool(l[m.fr[f] + FR_FLAGS] & FL_AE) and fork_copies_maybe_pinned(m, l, p, f)


def bind(policy) -> dict:
    """The rule functions and flags the transitions use under `policy`."""
    ae = policy.anon_exclusive
    reuse = WP_REUSE[policy.wp_reuse]
    if policy.fork_pinned == "share":
        fork_rule = fork_never_copies
    elif ae:
        fork_rule = fork_copies_pinned_exclusive
    else:
        fork_rule = fork_copies_maybe_pinned
    return dict(
        ae=ae,
        can_reuse=_with_anon_exclusive(reuse) if ae else reuse,
        must_unshare=RO_GUP_UNSHARE[policy.ro_gup_unshare],
        fork_must_copy=fork_rule,
        gup_read_breaks_cow=policy.gup_read_breaks_cow,
        track_has_pinned=policy.track_has_pinned,
        gup_fast_seqcount=policy.gup_fast_seqcount,
        mprotect_writable_if_exclusive=policy.mprotect_writable_if_exclusive,
        gup_fast_recheck=policy.gup_fast_recheck,
    )
