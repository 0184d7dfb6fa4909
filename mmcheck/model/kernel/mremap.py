"""mremap (mm/mremap.c) moving a private anonymous page's VMA to another address, and mmap
(mm/mmap.c) of new private anonymous memory; both under mmap_lock for write, one step.

Only private anonymous memory moves or is newly mapped here (a mapping's object is fixed
per page in the model); the destination must be an unmapped page of the scenario."""

from __future__ import annotations

from .. import codec, ghost
from ..codec import (MARKER, PRESENT, SWAP, UFFD_EVENT_REMAP, VM_HUGETLB, VM_READ,
                     VM_SOFTDIRTY, VM_UFFD_WP, VM_WRITE, ZERO)
from ..steps import MMAP, MREMAP, starts
from .common import (U_CTX, V_IDEAL, V_LEGIT, V_PTE, V_VMA, ZERO_VALUE, enter_page_syscall,
                     mmap_lock_available, op_done)


def _anonymous(m, p, v) -> bool:
    return m.pv_object[p][v] < 0 and not m.vpage_shared[v]


@starts("mremap")
def move_vma(m, s, t, op):
    """move_vma -> move_page_tables -> move_ptes: the VMA and its PTE move to the
    destination; move_soft_dirty_pte marks the moved entry soft-dirty (the memory changed
    at its new address).  Without UFFD_FEATURE_EVENT_REMAP the new VMA loses its uffd
    registration (mremap_userfaultfd_prep) and, since 2025, the moved entries lose their
    uffd-wp bits and markers (before: reference B3)."""
    if not mmap_lock_available(m, s, t, write=True):
        return None
    p, src, dst = m.t_proc[t], op.v, op.to
    sb, db = m.pv[p][src], m.pv[p][dst]
    l = s[:]
    op_done(m, l, t)
    if (not l[sb + V_VMA] or l[db + V_VMA] or src == dst or not _anonymous(m, p, src)
            or not _anonymous(m, p, dst) or m.vpage_class[src] != m.vpage_class[dst]):
        return MREMAP.einval, l
    vma, pte = l[sb + V_VMA], l[sb + V_PTE]
    keep = m.tracking and bool(l[m.uffd[0][p] + U_CTX] & UFFD_EVENT_REMAP)
    if not keep:
        vma &= ~VM_UFFD_WP
    k = codec.kind(pte)
    if k == PRESENT or k == SWAP or k == ZERO:
        pte = codec.with_bits(pte, codec.SOFT_DIRTY)  # move_soft_dirty_pte
        if not keep and m.mremap_clears_wp:
            pte = codec.clear_uffd_wp(pte)
    elif k == MARKER:
        pte = (codec.NONE if not keep and m.mremap_clears_wp
               else codec.with_bits(pte, codec.SOFT_DIRTY))  # pte_swp_mksoft_dirty
    l[db + V_VMA], l[db + V_PTE] = vma, pte
    l[db + V_IDEAL], l[db + V_LEGIT] = l[sb + V_IDEAL], l[sb + V_LEGIT]
    l[sb + V_VMA] = l[sb + V_PTE] = 0
    l[sb + V_IDEAL], l[sb + V_LEGIT] = ZERO_VALUE, 1 << ZERO_VALUE
    if m.tracking:
        ghost.moved(m, l, p, src, dst, keep)
        if k != codec.NONE:  # moved entries read soft-dirty: userspace notices the move
            ghost.new_memory(m, l, p, dst)
    vma_merge(m, l, p, dst)
    return MREMAP.moved, l


@starts("mmap")
def mmap_region(m, s, t, op):
    """mmap(MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED) at an unmapped page: a new VMA, readable
    and writable, with VM_SOFTDIRTY (new memory counts as soft-dirty)."""
    entered = enter_page_syscall(m, s, t, op, write=True)
    if entered is None:
        return None
    p, v, base, l = entered
    if l[base + V_VMA] or not _anonymous(m, p, v):
        return MMAP.einval, l
    l[base + V_VMA] = (VM_READ | VM_SOFTDIRTY | (VM_WRITE if op.prot_write else 0)
                       | (VM_HUGETLB if m.vpage_class[v] & codec.PG_HUGETLB else 0))
    l[base + V_PTE] = codec.NONE
    l[base + V_IDEAL] = ZERO_VALUE
    l[base + V_LEGIT] |= 1 << ZERO_VALUE
    if m.tracking:
        ghost.new_memory(m, l, p, v)
    return (MMAP.merged if vma_merge(m, l, p, v) else MMAP.new), l


_MERGE_IGNORES = codec.VM_SOFTDIRTY | codec.VM_ANON_VMA


def vma_merge(m, l, p, v) -> bool:
    """vma_merge / vma_merge_existing_range after mmap, mremap or mprotect at (p, v): an
    adjacent VMA (a page declared `after:` the other) of the same private anonymous kind
    with the same flags merges with it.  VM_SOFTDIRTY is ignored when deciding (34228d473efe)
    and two VMAs that both have an anon_vma do not merge (is_mergeable_anon_vma).  The
    merged VMA had the surviving (lower) VMA's VM_SOFTDIRTY until 2025 (reference SD3: the
    other VMA's never-faulted memory then reads clean); since 6707915e030a (6.19, 6.18.y)
    it is set if either had it."""
    merged = False
    for u in m.vpage_neighbours[v]:
        a, b = m.pv[p][v] + V_VMA, m.pv[p][u] + V_VMA
        fa, fb = l[a], l[b]
        if (not fa or not fb or not _anonymous(m, p, u) or not _anonymous(m, p, v)
                or (fa ^ fb) & ~_MERGE_IGNORES or fa & fb & codec.VM_ANON_VMA):
            continue
        low = fa if v < u else fb
        softdirty = ((fa | fb) if m.vma_merge_propagates_sd else low) & codec.VM_SOFTDIRTY
        anon = (fa | fb) & codec.VM_ANON_VMA
        for ix in (a, b):
            l[ix] = (l[ix] & ~_MERGE_IGNORES) | softdirty | anon
        merged = True
    return merged
