"""Unmapping (mm/memory.c zap_pte_range, via munmap and MADV_DONTNEED) and process exit
(exit_mmap): the PTE is cleared and the rmap dropped under the PT lock; the page
reference goes only after the TLB flush (tlb_finish_mmu)."""

from __future__ import annotations

from .. import codec, ghost
from ..codec import MARKER, NONE, PRESENT, SWAP, ZERO
from ..steps import EXIT_FREE, EXIT_MMAP, IDLE, KILLED, ZAP, ZAP_FLUSH, implements, starts
from .common import (
    EXITED, F_MAP, LK_READ, LK_WRITE, P_STATUS, R_DETACHED, T_LOCK, T_PAGES, T_PC, T_STEP, T_ZAP_PAGE,
    V_PTE, V_VMA, mmap_lock_available, op_done, put,
)
from .swap import free_swap_and_cache
from .userfaultfd import keeps_wp_on_zap


@starts("munmap", "dontneed")
def zap_pte_range(m, s, t, op):
    """munmap (mmap_lock write) / MADV_DONTNEED (mmap_lock read), P5 first half: under the
    PT lock clear the PTE and page_remove_rmap; the page reference waits for the flush."""
    munmap = op.kind == "munmap"
    if not mmap_lock_available(m, s, t, write=munmap):
        return None
    p, v = m.t_proc[t], op.v
    base = m.pv[p][v]
    l = s[:]
    if not l[base + V_VMA]:
        op_done(m, l, t)
        return (ZAP.munmap_nothing if munmap else ZAP.madvise_enomem), l
    pte = l[base + V_PTE]
    vma = l[base + V_VMA]
    # MADV_DONTNEED of a uffd-wp shmem/hugetlb PTE leaves a marker
    # (zap_install_uffd_wp_if_needed); munmap drops markers (ZAP_FLAG_DROP_MARKER)
    keep_wp = not munmap and m.tracking and keeps_wp_on_zap(m, l, p, v, vma, pte)
    l[base + V_PTE] = codec.marker() if keep_wp else NONE
    if munmap:
        l[base + V_VMA] = 0
        ghost.unmapped(m, l, p, v)
    else:
        ghost.discard(m, l, p, v)
        if vma & codec.VM_SHARED or m.pv_object[p][v] >= 0:
            ghost.zapped(m, l, p, v)
    k = codec.kind(pte)
    if k == NONE or k == ZERO or k == MARKER:
        op_done(m, l, t)
        return ZAP.none, l
    if k == SWAP:
        free_swap_and_cache(m, l, codec.slot(pte))
        op_done(m, l, t)
        return ZAP.swap, l
    if k != PRESENT:
        raise codec.unhandled(pte, "zap_pte_range")
    f = codec.frame(pte)
    l[m.fr[f] + F_MAP] -= 1
    b = m.th[t]
    l[b + T_ZAP_PAGE] = f + 1
    l[b + T_LOCK] = LK_WRITE if munmap else LK_READ
    l[b + T_STEP] = ZAP_FLUSH
    return ZAP.clear, l


@implements(ZAP_FLUSH)
def zap_tlb_flush_put(m, s, t, op):
    """tlb_finish_mmu: after the TLB flush, free_pages_and_swap_cache drops the reference."""
    l = s[:]
    put(m, l, l[m.th[t] + T_ZAP_PAGE] - 1, 1)
    op_done(m, l, t)
    return ZAP.put, l


@starts("exit")
def exit_mmap_unmap(m, s, t, op):
    """do_exit -> exit_mmap: unmap_vmas clears every PTE (page_remove_rmap); the other
    threads are gone (exit_group).  Waits until no thread of the mm is inside an op."""
    p = m.t_proc[t]
    for u in m.proc_threads[p]:
        if s[m.th[u] + T_LOCK] or (u != t and s[m.th[u] + T_STEP] not in (IDLE, KILLED)):
            return None
    l = s[:]
    mask = 0
    for v in range(m.n_vpages):
        base = m.pv[p][v]
        pte = l[base + V_PTE]
        l[base + V_PTE] = NONE
        l[base + V_VMA] = 0
        k = codec.kind(pte)
        if k == SWAP:
            free_swap_and_cache(m, l, codec.slot(pte))
        elif k == PRESENT:
            f = codec.frame(pte)
            l[m.fr[f] + F_MAP] -= 1
            mask |= 1 << f
        elif k != NONE and k != ZERO and k != MARKER:
            raise codec.unhandled(pte, "exit_mmap")
    for u in m.proc_threads[p]:
        if u != t:
            l[m.th[u] + T_PC] = m.t_len[u]
    b = m.th[t]
    l[b + T_PAGES] = mask
    l[b + T_LOCK] = LK_WRITE
    l[b + T_STEP] = EXIT_FREE
    return EXIT_MMAP.unmap, l


@implements(EXIT_FREE)
def exit_mmap_free(m, s, t, op):
    """exit_mmap: tlb_finish_mmu frees the pages; closing files releases the process's
    GUP references."""
    p = m.t_proc[t]
    l = s[:]
    b = m.th[t]
    mask = l[b + T_PAGES]
    for f in range(m.n_frames):
        if mask >> f & 1:
            put(m, l, f, 1)
    for r, ix in enumerate(m.refix):
        if m.ref_owner[r] == p and l[ix]:
            if l[ix] > 0:
                put(m, l, l[ix] - 1, m.ref_bias[r])
            l[ix] = l[ix + R_DETACHED] = 0
    l[m.proc[p] + P_STATUS] = EXITED
    op_done(m, l, t)
    l[b + T_PC] = m.t_len[t]
    return EXIT_MMAP.free, l
