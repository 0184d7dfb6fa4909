"""mprotect (mm/mprotect.c mprotect_fixup -> change_protection -> change_pte_range), one
step under mmap_lock (write)."""

from __future__ import annotations

from .. import codec
from ..codec import VM_READ, VM_WRITE
from ..steps import MPROTECT, starts
from .common import V_PTE, V_VMA, mmap_lock_available, op_done


@starts("mprotect")
def change_pte_range(m, s, t, op):
    """PROT_READ write-protects the PTE; PROT_WRITE leaves it R/O (the next write faults)
    unless the era's can_change_pte_writable() lets it map the page writable at once
    (mmcheck.model.rules)."""
    if not mmap_lock_available(m, s, t, write=True):
        return None
    p, v = m.t_proc[t], op.v
    base = m.pv[p][v]
    l = list(s)
    vma = l[base + V_VMA]
    if not vma:
        op_done(m, l, t)
        return MPROTECT.enomem, l
    pte = l[base + V_PTE]
    if op.prot_write:
        l[base + V_VMA] = vma | VM_READ | VM_WRITE
        if codec.write(pte):
            outcome = MPROTECT.keep
        elif (codec.is_present(pte)
                and m.can_change_pte_writable(m, l, l[base + V_VMA], pte)):
            l[base + V_PTE] = codec.mkwrite(pte)
            outcome = MPROTECT.mkwrite
        else:
            outcome = MPROTECT.stays_ro
    else:
        l[base + V_VMA] = (vma | VM_READ) & ~VM_WRITE
        l[base + V_PTE] = codec.wrprotect(pte)
        outcome = MPROTECT.wrprotect
    op_done(m, l, t)
    return outcome, l
