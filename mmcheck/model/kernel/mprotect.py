"""mprotect (mm/mprotect.c mprotect_fixup -> change_protection -> change_pte_range), one
step under mmap_lock (write)."""

from __future__ import annotations

from .. import codec
from ..codec import VM_HUGETLB, VM_READ, VM_SHARED, VM_WRITE
from ..steps import MPROTECT, starts
from .common import V_PTE, V_VMA, mmap_lock_available, op_done, vm_page_prot_writable
from .mremap import vma_merge


@starts("mprotect")
def change_pte_range(m, s, t, op):
    """PROT_READ write-protects the PTE; PROT_WRITE leaves it R/O (the next write faults)
    unless it may be made writable at once: a shared mapping whose new vm_page_prot is
    writable (pte_modify), a write-notified shared mapping's dirty PTE (the era's rule), a
    private mapping's PTE the era's can_change_pte_writable() allows (mmcheck.model.rules).
    hugetlb_change_protection only applies vm_page_prot (huge_pte_modify): a private
    hugetlb PTE stays R/O."""
    if not mmap_lock_available(m, s, t, write=True):
        return None
    p, v = m.t_proc[t], op.v
    base = m.pv[p][v]
    l = s[:]
    vma = l[base + V_VMA]
    if not vma:
        op_done(m, l, t)
        return MPROTECT.enomem, l
    pte = l[base + V_PTE]
    if op.prot_write:
        l[base + V_VMA] = vma | VM_READ | VM_WRITE
        vma = l[base + V_VMA]
        if codec.write(pte):
            outcome = MPROTECT.keep
        elif not codec.is_present(pte):
            outcome = MPROTECT.stays_ro  # none, the zero page, a swap entry, a marker
        elif vma & VM_SHARED:
            if vm_page_prot_writable(m, vma):
                l[base + V_PTE] = codec.mkwrite(pte)
                outcome = MPROTECT.shared_prot
            elif not vma & VM_HUGETLB and m.shared_dirty_writable(m, l, vma, pte):
                l[base + V_PTE] = codec.mkwrite(pte)
                outcome = MPROTECT.dirty_writable
            else:
                outcome = MPROTECT.stays_ro
        elif not vma & VM_HUGETLB and m.can_change_pte_writable(m, l, vma, pte):
            l[base + V_PTE] = codec.mkwrite(pte)
            outcome = MPROTECT.mkwrite
        else:
            outcome = MPROTECT.stays_ro
    else:
        l[base + V_VMA] = (vma | VM_READ) & ~VM_WRITE
        l[base + V_PTE] = codec.wrprotect(pte)  # a no-op on non-present entries
        outcome = MPROTECT.wrprotect
    vma_merge(m, l, p, v)
    op_done(m, l, t)
    return outcome, l
