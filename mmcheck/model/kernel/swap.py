"""Swap: reclaim of an anonymous or shmem page (mm/vmscan.c shrink_page_list) and swap-in
of an anonymous page (mm/memory.c do_swap_page; shmem pages come back through the page
cache: mmcheck.model.kernel.fault.do_fault).

Reclaim is the reference's P10 as separate steps: isolate and lock the page, add it to the
swapcache (5.11: not if it may be pinned), unmap it one mapping at a time (5.19: not if it
is exclusive and may be pinned), then write it out and free it, which fails (the page stays
in the swapcache, unmapped) when anybody else still holds a reference.  A shmem page is
unmapped (its PTEs become none: the page cache still has it), then pageout keeps it if
anybody else holds a reference, or shmem_writepage moves it to a swap slot: the page
cache entry becomes a swap entry and the page is freed.  Swap-in is P11: look
the slot up in the swapcache (or read it into a new swapcache page) and lock the page, then
under the PT lock decide by the era's rule whether it comes back exclusive and writable.

Simplification: the swap device is not SWP_SYNCHRONOUS_IO, so swap-in always goes through
the swapcache (no "fresh page" case), and writeback is synchronous (no PG_writeback).
"""

from __future__ import annotations

from .. import codec, ghost
from ..codec import (EXCLUSIVE, NONE, PG_ALLOC, PG_ANON_EXCLUSIVE, PG_FILE, PG_HUGETLB,
                     PG_LOCKED, PG_LRU_BATCH, PG_SHMEM, VM_HUGETLB, VM_WRITE)
from ..steps import (DO_SWAP_PAGE, MADV_PAGEOUT, RECLAIM_ADD, RECLAIM_FREE, RECLAIM_UNMAP,
                     REMOVE_MAPPING, SHMEM_WRITEPAGE, SHRINK, SWAPIN_MAP, TRY_TO_UNMAP,
                     implements, starts)
from .common import (
    F_CONTENT, F_FLAGS, F_MAP, F_REF, F_SLOT, LK_READ, O_ENTRY, S_CACHE, S_CONTENT, S_COUNT,
    T_ISOLATED, T_LOCK, T_ORIG_PTE, T_STEP, T_SWAPCACHE_PAGE, T_WRITE_FAULT, V_PTE, V_VMA,
    alloc, drain_lru_batches, fault_done, lru_cache_add, mmap_lock_available, op_done,
    page_maybe_dma_pinned, pt_locked_by_other, put, release_slot_if_unused, swapcache_page,
    where,
)
from .userfaultfd import keeps_wp_on_zap


# ----------------------------------------------------------------------------- reclaim
def reclaimable(m, l, f) -> bool:
    """A page shrink_page_list can take: anonymous or shmem, on the LRU (not in an LRU add
    batch), not locked, not hugetlb (not swappable).  Other page cache pages (a disk
    file's: written back and dropped) are not reclaimed by the model."""
    flags = l[m.fr[f] + F_FLAGS]
    return (flags & PG_ALLOC and not flags & (PG_LOCKED | PG_LRU_BATCH | PG_HUGETLB)
            and (not flags & PG_FILE or flags & PG_SHMEM) and l[m.fr[f] + F_REF] > 0)


def get_swap_page(m, l) -> int:
    """get_swap_page / folio_alloc_swap: a free slot (no swap entry, no swapcache page), or
    -1 when the swap device is full.  The model's device has `n_slots` slots; pages left in
    the swapcache after a COW or a failed freeze hold theirs until freed, so an unbounded
    menu can fill it."""
    for i, sb in enumerate(m.sl):
        if not l[sb + S_COUNT] and not l[sb + S_CACHE]:
            return i
    return -1


def isolate_and_lock(m, l, t, f):
    """isolate_lru_page (+1) and trylock_page; then add_to_swap for an anonymous page,
    try_to_unmap for a shmem page (it is in the page cache already)."""
    b = m.fr[f]
    l[b + F_REF] += 1
    l[b + F_FLAGS] |= PG_LOCKED
    tb = m.th[t]
    l[tb + T_ISOLATED] = f + 1
    l[tb + T_STEP] = RECLAIM_UNMAP if l[b + F_FLAGS] & PG_FILE else RECLAIM_ADD


@starts("pageout")
def madvise_pageout(m, s, t, op):
    """madvise(MADV_PAGEOUT) under mmap_lock (read): lru_add_drain, then reclaim the page
    if this is its only mapping (madvise_cold_or_pageout_pte_range skips shared pages).
    A hugetlb VMA is refused with -EINVAL (can_madv_lru_vma)."""
    if not mmap_lock_available(m, s, t, write=False):
        return None
    p, v = m.t_proc[t], op.v
    base = m.pv[p][v]
    pte = s[base + V_PTE]
    l = s[:]
    if s[base + V_VMA] & VM_HUGETLB:
        op_done(m, l, t)  # madvise_pageout: !can_madv_lru_vma(vma) -> -EINVAL
        return MADV_PAGEOUT.einval, l
    if m.lru_batch:
        drain_lru_batches(m, l)
    if not s[base + V_VMA] or not codec.is_present(pte):
        op_done(m, l, t)
        return MADV_PAGEOUT.nothing, l
    f = codec.frame(pte)
    if l[m.fr[f] + F_MAP] != 1 or not reclaimable(m, l, f):
        op_done(m, l, t)
        return MADV_PAGEOUT.skipped, l
    l[m.th[t] + T_LOCK] = LK_READ
    isolate_and_lock(m, l, t, f)
    return MADV_PAGEOUT.isolate, l


def _end_reclaim(m, l, t):
    """Give up or finish: unlock the page and drop the isolation reference."""
    f = l[m.th[t] + T_ISOLATED] - 1
    if f >= 0 and l[m.fr[f] + F_FLAGS] & PG_ALLOC:
        l[m.fr[f] + F_FLAGS] &= ~PG_LOCKED
        put(m, l, f, 1)
    op_done(m, l, t)


@implements(RECLAIM_ADD)
def add_to_swap(m, s, t, op):
    """shrink_page_list: a page not yet in the swapcache gets a swap slot (SWAP_HAS_CACHE,
    +1 for the swapcache); 5.11 (feb889fb40fa) keeps maybe-pinned pages instead."""
    l = s[:]
    f = l[m.th[t] + T_ISOLATED] - 1
    b = m.fr[f]
    if not l[b + F_SLOT]:
        if m.swapout_skip_pinned and page_maybe_dma_pinned(l, b):
            _end_reclaim(m, l, t)
            return SHRINK.keep_pinned, l
        i = get_swap_page(m, l)
        if i < 0:
            # add_to_swap fails, the page is kept (activate_locked)
            _end_reclaim(m, l, t)
            return SHRINK.swap_full, l
        sb = m.sl[i]
        l[sb + S_CACHE] = 1
        l[b + F_SLOT] = i + 1
        l[b + F_REF] += 1
        outcome = SHRINK.add_to_swap
    else:
        outcome = SHRINK.in_swapcache
    l[m.th[t] + T_STEP] = RECLAIM_UNMAP
    return outcome, l


@implements(RECLAIM_UNMAP)
def try_to_unmap_one(m, s, t, op):
    """try_to_unmap, one mapping per step under its PT lock: the PTE becomes a swap entry
    (swap_duplicate).  5.19: an exclusive page that may be pinned is not unmapped (the
    PTE is restored and reclaim gives up); otherwise PageAnonExclusive moves into the swap
    PTE's exclusive bit (page_try_share_anon_rmap, 1493a1913e34).

    rmap_walk_anon visits the mappings in anon_vma interval-tree order, which follows
    the history of VMA creation, not anything the model keeps; so the next mapping
    unmapped is any remaining one (one successor each), which also keeps the step
    symmetric under renaming interchangeable processes (mmcheck.model.symmetry).
    page_vma_mapped_walk takes the mapping's PT lock: a PTE fork holds locked across its
    copy_present_pte halves is waited for (another mapping may go first)."""
    f = s[m.th[t] + T_ISOLATED] - 1
    b = m.fr[f]
    out = []
    locked = False
    for p, p_row in enumerate(m.pv):
        for v, base in enumerate(p_row):
            pte = s[base + V_PTE]
            if codec.frame_or_none(pte) == f:
                if pt_locked_by_other(m, s, t, p, v):
                    locked = True
                    continue
                out.append(_unmap_one(m, s, t, b, f, p, v, base, pte))
    if not out and locked:
        return None
    if not out:
        l = s[:]
        l[m.th[t] + T_STEP] = RECLAIM_FREE
        return TRY_TO_UNMAP.done, l
    return out


def _unmap_one(m, s, t, b, f, p, v, base, pte):
    l = s[:]
    at = where(m, p, v)
    if l[b + F_FLAGS] & PG_FILE:
        # a page cache page: the PTE is cleared (the next fault finds the page in the page
        # cache, or its swap entry there); pte_dirty moves to the page; a uffd-wp PTE
        # leaves a marker (pte_install_uffd_wp_if_needed, 5.19); soft-dirty is lost (SD4)
        vma = l[base + V_VMA]
        l[base + V_PTE] = (codec.marker() if m.tracking and keeps_wp_on_zap(m, l, p, v, vma, pte)
                           else NONE)
        ghost.zapped(m, l, p, v)
        l[b + F_MAP] -= 1
        put(m, l, f, 1)
        return (TRY_TO_UNMAP.file_one, at), l
    exclusive = False
    if m.ae and l[b + F_FLAGS] & PG_ANON_EXCLUSIVE:
        if page_maybe_dma_pinned(l, b):
            _end_reclaim(m, l, t)
            return (TRY_TO_UNMAP.exclusive_pinned, at), l
        l[b + F_FLAGS] &= ~PG_ANON_EXCLUSIVE
        exclusive = m.swap_pte_exclusive
    slot = l[b + F_SLOT] - 1
    l[m.sl[slot] + S_COUNT] += 1
    # the swap entry keeps soft-dirty and uffd-wp (pte_swp_mksoft_dirty, pte_swp_mkuffd_wp)
    l[base + V_PTE] = codec.swap_entry(slot, codec.tracking_bits(pte)
                                       | (EXCLUSIVE if exclusive else 0))
    l[b + F_MAP] -= 1
    put(m, l, f, 1)
    return (TRY_TO_UNMAP.one, at), l


@implements(RECLAIM_FREE)
def pageout_remove_mapping(m, s, t, op):
    """pageout (synchronous write to the slot) + __remove_mapping: freeze page_count at 2
    (isolation + swapcache); extra references (GUP, speculative) make the freeze fail and
    the page stays in the swapcache, unmapped."""
    l = s[:]
    f = l[m.th[t] + T_ISOLATED] - 1
    b = m.fr[f]
    if l[b + F_MAP] > 0:
        _end_reclaim(m, l, t)
        return SHRINK.still_mapped, l
    if l[b + F_FLAGS] & PG_FILE:
        return shmem_writepage(m, l, t, f)
    slot = l[b + F_SLOT] - 1
    sb = m.sl[slot]
    if l[b + F_REF] != 2:
        l[sb + S_CONTENT] = l[b + F_CONTENT]
        _end_reclaim(m, l, t)
        return REMOVE_MAPPING.freeze_failed, l
    l[sb + S_CONTENT] = l[b + F_CONTENT]
    l[sb + S_CACHE] = 0
    release_slot_if_unused(m, l, slot)
    l[b + F_SLOT] = 0
    l[b + F_FLAGS] &= ~PG_LOCKED
    put(m, l, f, 2)
    op_done(m, l, t)
    return REMOVE_MAPPING.freed, l


def shmem_writepage(m, l, t, f):
    """pageout of an unmapped shmem page: is_page_cache_freeable (page_count == isolation +
    page cache; 6.4 d824ec2a1546 also skips folio_maybe_dma_pinned pages, with the same
    effect) or keep the page; shmem_writepage: a swap slot (none free: redirty and keep),
    add_to_swap_cache, the page cache entry becomes the swap entry (swap_shmem_alloc: one
    swap count), the page is written (synchronously); __remove_mapping then frees it."""
    b = m.fr[f]
    if l[b + F_REF] != 2:
        _end_reclaim(m, l, t)
        return SHMEM_WRITEPAGE.keep, l
    i = get_swap_page(m, l)
    if i < 0:
        _end_reclaim(m, l, t)
        return SHMEM_WRITEPAGE.swap_full, l
    sb = m.sl[i]
    want = codec.present(f)
    ob = next(ob for ob in m.ob if l[ob + O_ENTRY] == want)
    l[ob + O_ENTRY] = codec.swap_entry(i)
    l[sb + S_COUNT] = 1
    l[sb + S_CONTENT] = l[b + F_CONTENT]
    l[b + F_FLAGS] &= ~PG_LOCKED
    put(m, l, f, 2)  # the isolation's and the page cache's references: freed
    op_done(m, l, t)
    return SHMEM_WRITEPAGE.freed, l


# ----------------------------------------------------------------------------- swap-in
def do_swap_page(m, l, t, op, write):
    """do_swap_page P11.1-2 (mmap_lock read held): find the slot's page in the swapcache
    (taking a reference) or read it into a new swapcache page, and lock it.  Returns
    None (and changes nothing) while another path holds the page lock."""
    p, v = m.t_proc[t], op.v
    pte = l[m.pv[p][v] + V_PTE]
    slot = codec.slot(pte)
    f = swapcache_page(m, l, slot)
    if f >= 0:
        b = m.fr[f]
        if l[b + F_FLAGS] & PG_LOCKED:
            return None  # lock_page sleeps until reclaim or another swap-in is done
        l[b + F_REF] += 1
        l[b + F_FLAGS] |= PG_LOCKED
        outcome = DO_SWAP_PAGE.hit
    else:
        sb = m.sl[slot]
        f = alloc(m, l, l[sb + S_CONTENT], PG_LOCKED)
        b = m.fr[f]
        l[b + F_REF] = 2  # ours + the swapcache's
        if m.lru_batch:
            lru_cache_add(m, l, f)
        l[b + F_SLOT] = slot + 1
        l[sb + S_CACHE] = 1
        outcome = DO_SWAP_PAGE.read
    tb = m.th[t]
    l[tb + T_SWAPCACHE_PAGE] = f + 1
    l[tb + T_ORIG_PTE] = codec.flags(pte)
    l[tb + T_WRITE_FAULT] = 1 if write else 0
    l[tb + T_STEP] = SWAPIN_MAP
    return outcome, l


@implements(SWAPIN_MAP)
def do_swap_page_map(m, s, t, op):
    """do_swap_page P11.3-7 under the PT lock: back out if the swap PTE changed; else the
    era decides whether the page is exclusive (swap_free and swapcache freeing included),
    rmap-add (PageAnonExclusive when exclusive), map it (writable + dirty on an exclusive
    write fault), unlock the page.  A write fault left R/O continues in do_wp_page."""
    p, v = m.t_proc[t], op.v
    base = m.pv[p][v]
    l = s[:]
    tb = m.th[t]
    f = l[tb + T_SWAPCACHE_PAGE] - 1
    b = m.fr[f]
    slot = l[b + F_SLOT] - 1
    orig = l[tb + T_ORIG_PTE]
    if not codec.same(l[base + V_PTE], slot + 1, orig):
        l[b + F_FLAGS] &= ~PG_LOCKED
        put(m, l, f, 1)
        fault_done(m, l, t, op, wrote=False)
        return DO_SWAP_PAGE.back_out, l
    write = l[tb + T_WRITE_FAULT]
    exclusive = m.swapin_exclusive(m, l, f, slot, write, codec.exclusive(orig))
    l[b + F_MAP] += 1
    if exclusive and m.ae:
        l[b + F_FLAGS] |= PG_ANON_EXCLUSIVE
    # a swap entry with uffd-wp comes back R/O with WP (pte_mkuffd_wp + pte_wrprotect)
    writable = exclusive and write and l[base + V_VMA] & VM_WRITE and not codec.uffd_wp(orig)
    # maybe_mkwrite(pte_mkdirty(pte)) on an exclusive write fault; pte_swp_soft_dirty
    # carries over (mm/memory.c do_swap_page)
    l[base + V_PTE] = codec.present(f, (codec.dirty_bits(True) if writable else 0)
                                    | codec.tracking_bits(orig))
    l[b + F_FLAGS] &= ~PG_LOCKED
    fault_done(m, l, t, op, wrote=bool(writable))
    return (DO_SWAP_PAGE.map_writable if writable else DO_SWAP_PAGE.map_ro), l


# ----------------------------------------------------------------------------- zap, fork
def free_swap_and_cache(m, l, slot):
    """zap of a swap PTE: swap_free, and if that was the last user of the slot, drop an
    unused swapcache page too (best effort: only if nobody else holds it)."""
    sb = m.sl[slot]
    l[sb + S_COUNT] -= 1
    if not l[sb + S_COUNT] and l[sb + S_CACHE]:
        f = swapcache_page(m, l, slot)
        b = m.fr[f]
        if l[b + F_REF] == 1 and not l[b + F_FLAGS] & PG_LOCKED:
            l[b + F_SLOT] = 0
            l[sb + S_CACHE] = 0
            put(m, l, f, 1)
    release_slot_if_unused(m, l, slot)


def copy_nonpresent_pte(m, l, pb, cb):
    """fork of a swap PTE: swap_duplicate; the child's entry is not exclusive and 5.19
    clears the parent's exclusive bit too (1493a1913e34)."""
    pte = l[pb + V_PTE]
    l[m.sl[codec.slot(pte)] + S_COUNT] += 1
    pte = codec.clear_exclusive(pte)
    l[pb + V_PTE] = pte
    l[cb + V_PTE] = pte
