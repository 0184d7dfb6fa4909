"""/proc/<pid>/clear_refs (fs/proc/task_mmu.c clear_refs_write)."""

from __future__ import annotations

from .. import codec, ghost
from ..codec import VM_HUGETLB, VM_SOFTDIRTY
from ..steps import CLEAR_REFS, starts
from .common import F_REF, P_HAS_PINNED, V_PTE, V_VMA, mmap_lock_available, op_done


@starts("clear_refs")
def clear_soft_dirty(m, s, t, op):
    """clear_refs_write(CLEAR_REFS_SOFT_DIRTY) -> clear_soft_dirty, one PT-lock pass over
    the process: every VMA loses VM_SOFTDIRTY (tracking starts; vma_set_page_prot: a
    shared mapping now wants write notification) and every present PTE is write-protected
    and loses soft-dirty, except (5.11, 9348b73c2e1b pte_is_pinned) a writable PTE of a
    maybe-pinned page in a COW mapping of an mm that has pinned pages.  hugetlb VMAs are
    not walked (clear_refs_walk_ops has no hugetlb_entry).  mmap_lock read before 5.11,
    write after ("fix clear_refs_write locking")."""
    if not mmap_lock_available(m, s, t, write=m.clear_refs_mmap_write):
        return None
    p = m.t_proc[t]
    l = s[:]
    pinned_mm = l[m.proc[p] + P_HAS_PINNED]
    if m.tracking:
        ghost.soft_dirty_cleared(m, l, p)
    for base in m.pv[p]:
        # clear_refs_write: vm_flags_clear(vma, VM_SOFTDIRTY): soft-dirty is tracked now
        vma = l[base + V_VMA] = l[base + V_VMA] & ~VM_SOFTDIRTY
        pte = l[base + V_PTE]
        if vma & VM_HUGETLB:
            continue
        if codec.is_swap(pte):
            l[base + V_PTE] = codec.clear_soft_dirty(pte)  # pte_swp_clear_soft_dirty
            continue
        if not codec.maps_memory(pte):
            continue
        if (m.clear_refs_skip_pinned and codec.write(pte) and pinned_mm
                and codec.is_cow_mapping(vma) and codec.is_present(pte)
                and l[m.fr[codec.frame(pte)] + F_REF] >= 1024):
            continue  # page_maybe_dma_pinned: leave it writable
        l[base + V_PTE] = codec.clear_soft_dirty(codec.wrprotect(pte))
    op_done(m, l, t)
    return CLEAR_REFS.soft_dirty, l
