"""Swap: reclaim of an anonymous page (shrink_page_list) and swap-in (do_swap_page).

Reclaim is the reference's P10 as separate steps: isolate and lock the page, add it to the
swapcache (5.11: not if it may be pinned), unmap it one mapping at a time (5.19: not if it
is exclusive and may be pinned), then write it out and free it, which fails (the page stays
in the swapcache, unmapped) when anybody else still holds a reference.  Swap-in is P11: look
the slot up in the swapcache (or read it into a new swapcache page) and lock the page, then
under the PT lock decide by the era's rule whether it comes back exclusive and writable.

Simplification: the swap device is not SWP_SYNCHRONOUS_IO, so swap-in always goes through
the swapcache (no "fresh page" case), and writeback is synchronous (no PG_writeback).
"""

from __future__ import annotations

from .kernel import (
    RECLAIM_ADD, RECLAIM_FREE, RECLAIM_UNMAP, SWAPIN_MAP, _alloc, _drain_lru_batches,
    _fault_done, _mmap_lock_available, _next_pc, _put, _release_slot_if_unused, _swapcache_page,
    lru_cache_add, pt_locked_by_other,
)
from .rules import page_maybe_dma_pinned
from .state import (
    FL_AE, FL_ALLOC, FL_FILE, FL_HUGETLB, FL_LOCKED, FL_LRU_BATCH, FR_CONTENT, FR_FLAGS, FR_MAP,
    FR_REF, FR_SLOT, LK_READ, PTE_D, PTE_FLAGS, PTE_SD, PTE_SHIFT, PTE_SWAP, PTE_SWX, PTE_W,
    PTE_ZERO, PV_PTE, PV_VMA, SL_CACHE, SL_CONTENT, SL_SWC, TH_FA, TH_LOCK, TH_PHASE, TH_X, TH_Y,
    VMA_NONE, VMA_RW, swap_pte,
)


SWAP_FULL = "add_to_swap: swap device full, keep page"


# ----------------------------------------------------------------------------- reclaim
def reclaimable(m, l, f) -> bool:
    """An anonymous page shrink_page_list can take: on the LRU (not in an LRU add batch),
    not locked, not hugetlb (not swappable), not a pagecache page (not modelled)."""
    flags = l[m.fr[f] + FR_FLAGS]
    return (flags & FL_ALLOC and not flags & (FL_LOCKED | FL_LRU_BATCH | FL_FILE | FL_HUGETLB)
            and l[m.fr[f] + FR_REF] > 0)


def isolate_and_lock(m, l, t, f):
    """isolate_lru_page (+1) and trylock_page, then add_to_swap is next."""
    b = m.fr[f]
    l[b + FR_REF] += 1
    l[b + FR_FLAGS] |= FL_LOCKED
    tb = m.th[t]
    l[tb + TH_FA] = f + 1
    l[tb + TH_PHASE] = RECLAIM_ADD


def madvise_pageout(m, s, t, op):
    """madvise(MADV_PAGEOUT) under mmap_lock (read): lru_add_drain, then reclaim the page
    if this is its only mapping (madvise_cold_or_pageout_pte_range skips shared pages)."""
    if not _mmap_lock_available(m, s, t, write=False):
        return None
    p, v = m.t_proc[t], op.v
    pte = s[m.pv[p][v] + PV_PTE]
    l = list(s)
    if m.lru_batch:
        _drain_lru_batches(m, l)
    if (s[m.pv[p][v] + PV_VMA] == VMA_NONE or not pte or pte & (PTE_ZERO | PTE_SWAP)):
        _next_pc(m, l, t)
        return "madvise_pageout: nothing to reclaim", l
    f = (pte >> PTE_SHIFT) - 1
    if l[m.fr[f] + FR_MAP] != 1 or not reclaimable(m, l, f):
        _next_pc(m, l, t)
        return "madvise_pageout: page skipped (shared, locked or not swappable)", l
    l[m.th[t] + TH_LOCK] = LK_READ
    isolate_and_lock(m, l, t, f)
    return "madvise_pageout -> shrink_page_list: isolate, lock page", l


def _end_reclaim(m, l, t, keep_slot=True):
    """Give up or finish: unlock the page and drop the isolation reference."""
    f = l[m.th[t] + TH_FA] - 1
    if f >= 0 and l[m.fr[f] + FR_FLAGS] & FL_ALLOC:
        l[m.fr[f] + FR_FLAGS] &= ~FL_LOCKED
        _put(m, l, f, 1)
    _next_pc(m, l, t)


def add_to_swap(m, s, t, op):
    """shrink_page_list: a page not yet in the swapcache gets a swap slot (SWAP_HAS_CACHE,
    +1 for the swapcache); 5.11 (feb889fb40fa) keeps maybe-pinned pages instead."""
    l = list(s)
    f = l[m.th[t] + TH_FA] - 1
    b = m.fr[f]
    if not l[b + FR_SLOT]:
        if m.swapout_skip_pinned and page_maybe_dma_pinned(l, b):
            _end_reclaim(m, l, t)
            return "shrink_page_list: maybe pinned, keep", l
        for i, sb in enumerate(m.sl):
            if not l[sb + SL_SWC] and not l[sb + SL_CACHE]:
                break
        else:
            # get_swap_page found no free slot: add_to_swap fails, the page is kept
            # (activate_locked).  The model's swap device has `n_slots` slots; pages
            # left in the swapcache after a COW or a failed freeze hold theirs until
            # freed, so an unbounded menu can fill it.
            _end_reclaim(m, l, t)
            return SWAP_FULL, l
        l[sb + SL_CACHE] = 1
        l[b + FR_SLOT] = i + 1
        l[b + FR_REF] += 1
        action = "add_to_swap"
    else:
        action = "shrink_page_list: already in the swapcache"
    l[m.th[t] + TH_PHASE] = RECLAIM_UNMAP
    return action, l


def try_to_unmap_one(m, s, t, op):
    """try_to_unmap, one mapping per step under its PT lock: the PTE becomes a swap entry
    (swap_duplicate).  5.19: an exclusive page that may be pinned is not unmapped (the
    PTE is restored and reclaim gives up); otherwise PageAnonExclusive moves into the swap
    PTE's exclusive bit (page_try_share_anon_rmap, 1493a1913e34).

    rmap_walk_anon visits the mappings in anon_vma interval-tree order, which follows
    the history of VMA creation, not anything the model keeps; so the next mapping
    unmapped is any remaining one (one successor each), which also keeps the step
    symmetric under renaming interchangeable processes (mmcheck.symmetry)."""
    f = s[m.th[t] + TH_FA] - 1
    b = m.fr[f]
    want = f + 1
    out = []
    locked = False
    for p, p_row in enumerate(m.pv):
        for v, base in enumerate(p_row):
            pte = s[base + PV_PTE]
            if pte and not pte & (PTE_ZERO | PTE_SWAP) and (pte >> PTE_SHIFT) == want:
                if pt_locked_by_other(m, s, t, p, v):
                    # page_vma_mapped_walk takes this PT lock: it spins until fork's
                    # copy_pte_range releases it (another mapping may go first)
                    locked = True
                    continue
                out.append(_unmap_one(m, s, t, b, f, base, pte, f"{m.procs[p]}:{m.vpages[v]}"))
    if not out and locked:
        return None
    if not out:
        l = list(s)
        l[m.th[t] + TH_PHASE] = RECLAIM_FREE
        return "try_to_unmap: no mapping left", l
    return out[0] if len(out) == 1 else out


def _unmap_one(m, s, t, b, f, base, pte, where):
    l = list(s)
    exclusive = False
    if m.ae and l[b + FR_FLAGS] & FL_AE:
        if page_maybe_dma_pinned(l, b):
            _end_reclaim(m, l, t)
            return "try_to_unmap: exclusive and maybe pinned, restore PTE, give up", l
        l[b + FR_FLAGS] &= ~FL_AE
        exclusive = m.swap_pte_exclusive
    slot = l[b + FR_SLOT] - 1
    l[m.sl[slot] + SL_SWC] += 1
    l[base + PV_PTE] = swap_pte(slot, exclusive) | (pte & PTE_SD)
    l[b + FR_MAP] -= 1
    _put(m, l, f, 1)
    return "try_to_unmap_one: swap entry installed" + (f" at {where}" if where else ""), l


def pageout_remove_mapping(m, s, t, op):
    """pageout (synchronous write to the slot) + __remove_mapping: freeze page_count at 2
    (isolation + swapcache); extra references (GUP, speculative) make the freeze fail and
    the page stays in the swapcache, unmapped."""
    l = list(s)
    f = l[m.th[t] + TH_FA] - 1
    b = m.fr[f]
    if l[b + FR_MAP] > 0:
        _end_reclaim(m, l, t)
        return "shrink_page_list: still mapped, keep", l
    slot = l[b + FR_SLOT] - 1
    sb = m.sl[slot]
    if l[b + FR_REF] != 2:
        l[sb + SL_CONTENT] = l[b + FR_CONTENT]
        _end_reclaim(m, l, t)
        return "__remove_mapping: page_count frozen failed, page stays in swapcache", l
    l[sb + SL_CONTENT] = l[b + FR_CONTENT]
    l[sb + SL_CACHE] = 0
    _release_slot_if_unused(m, l, slot)
    l[b + FR_SLOT] = 0
    l[b + FR_FLAGS] &= ~FL_LOCKED
    _put(m, l, f, 2)
    _next_pc(m, l, t)
    return "__remove_mapping: page written to swap and freed", l


# ----------------------------------------------------------------------------- swap-in
def do_swap_page(m, l, t, op, write):
    """do_swap_page P11.1-2 (mmap_lock read held): find the slot's page in the swapcache
    (taking a reference) or read it into a new swapcache page, and lock it.  Returns
    None (and changes nothing) while another path holds the page lock."""
    p, v = m.t_proc[t], op.v
    pte = l[m.pv[p][v] + PV_PTE]
    slot = (pte >> PTE_SHIFT) - 1
    f = _swapcache_page(m, l, slot)
    if f >= 0:
        b = m.fr[f]
        if l[b + FR_FLAGS] & FL_LOCKED:
            return None  # lock_page sleeps until reclaim or another swap-in is done
        l[b + FR_REF] += 1
        l[b + FR_FLAGS] |= FL_LOCKED
        action = "do_swap_page: swapcache hit, lock page"
    else:
        sb = m.sl[slot]
        f = _alloc(m, l, l[sb + SL_CONTENT], FL_LOCKED)
        b = m.fr[f]
        l[b + FR_REF] = 2  # ours + the swapcache's
        if m.lru_batch:
            lru_cache_add(m, l, f)
        l[b + FR_SLOT] = slot + 1
        l[sb + SL_CACHE] = 1
        action = "do_swap_page: read into swapcache, lock page"
    tb = m.th[t]
    l[tb + TH_FA] = f + 1
    l[tb + TH_X] = pte & PTE_FLAGS
    l[tb + TH_Y] = 1 if write else 0
    l[tb + TH_PHASE] = SWAPIN_MAP
    return action, l


def do_swap_page_map(m, s, t, op):
    """do_swap_page P11.3-7 under the PT lock: back out if the swap PTE changed; else the
    era decides whether the page is exclusive (swap_free and swapcache freeing included),
    rmap-add (PageAnonExclusive when exclusive), map it (writable + dirty on an exclusive
    write fault), unlock the page.  A write fault left R/O continues in do_wp_page."""
    p, v = m.t_proc[t], op.v
    base = m.pv[p][v]
    l = list(s)
    tb = m.th[t]
    f = l[tb + TH_FA] - 1
    b = m.fr[f]
    slot = l[b + FR_SLOT] - 1
    pte = l[base + PV_PTE]
    flags = l[tb + TH_X]
    if not (pte & PTE_SWAP and pte & PTE_FLAGS == flags and (pte >> PTE_SHIFT) == slot + 1):
        l[b + FR_FLAGS] &= ~FL_LOCKED
        _put(m, l, f, 1)
        _fault_done(m, l, t, op, wrote=False)
        return "do_swap_page: pte changed, back out", l
    write = l[tb + TH_Y]
    exclusive = m.swapin_exclusive(m, l, f, slot, write, flags & PTE_SWX)
    l[b + FR_MAP] += 1
    if exclusive and m.ae:
        l[b + FR_FLAGS] |= FL_AE
    writable = exclusive and write and l[base + PV_VMA] == VMA_RW
    l[base + PV_PTE] = ((f + 1) << PTE_SHIFT) | (PTE_W | PTE_D if writable else 0) | (
        flags & PTE_SD)
    l[b + FR_FLAGS] &= ~FL_LOCKED
    _fault_done(m, l, t, op, wrote=bool(writable))
    return "do_swap_page: map " + ("writable" if writable else "read-only"), l


# ----------------------------------------------------------------------------- zap, fork
def free_swap_and_cache(m, l, slot):
    """zap of a swap PTE: swap_free, and if that was the last user of the slot, drop an
    unused swapcache page too (best effort: only if nobody else holds it)."""
    sb = m.sl[slot]
    l[sb + SL_SWC] -= 1
    if not l[sb + SL_SWC] and l[sb + SL_CACHE]:
        f = _swapcache_page(m, l, slot)
        b = m.fr[f]
        if l[b + FR_REF] == 1 and not l[b + FR_FLAGS] & FL_LOCKED:
            l[b + FR_SLOT] = 0
            l[sb + SL_CACHE] = 0
            _put(m, l, f, 1)
    _release_slot_if_unused(m, l, slot)


def copy_nonpresent_pte(m, l, pb, cb):
    """fork of a swap PTE: swap_duplicate; the child's entry is not exclusive and 5.19
    clears the parent's exclusive bit too (1493a1913e34)."""
    pte = l[pb + PV_PTE]
    slot = (pte >> PTE_SHIFT) - 1
    l[m.sl[slot] + SL_SWC] += 1
    pte &= ~PTE_SWX
    l[pb + PV_PTE] = pte
    l[cb + PV_PTE] = pte
