"""Soft-dirty (reference write-tracking.md §2, P3, P3').

soft-dirty-sane (always, kernel state only): while soft-dirty tracking is on for a VMA
(clear_refs cleared VM_SOFTDIRTY), a writable present PTE is soft-dirty - otherwise a
store can land without setting the bit (catches SD1, SD2 and the like before any read).

soft-dirty-complete (step, at a pagemap read): a page a CPU store landed on since the
last clear_refs reads soft-dirty (false positives allowed), unless the store's data was
discarded (anonymous MADV_DONTNEED: SD5) or the PTE of shared/file memory was zapped since
(SD4, the separate property below).

soft-dirty-zap (step, at a pagemap read): the documented limitation SD4 - a stored-to
shared or file page whose PTE was zapped (DONTNEED, reclaim) reads clean.
"""

from __future__ import annotations

from ..model import codec, ghost
from ..model.kernel.common import V_VMA, W_PAGEMAP, W_SD
from ..model.steps import PAGEMAP
from .base import Property, register


@register
class SoftDirtySane(Property):
    name = "soft-dirty-sane"
    description = ("with soft-dirty tracking on, a writable present PTE is soft-dirty")
    catches = "soft-dirty escape in the making (a writable PTE that will not record stores)"

    def compile(self, m):
        # tracking starts only with clear_refs (new VMAs have VM_SOFTDIRTY)
        if not any(op.kind == "clear_refs" for prog in m.programs for op in prog):
            return None
        where = [(p, v, m.pv[p][v]) for p in range(len(m.procs)) for v in range(m.n_vpages)]
        writable_of, ptes_of = m.pte_writable, m.ptes

        def check(s):
            ptes = ptes_of(s)
            for i in writable_of(s):
                p, v, base = where[i]
                if codec.soft_dirty(ptes[i]) or not codec.is_present(ptes[i]):
                    continue
                vma = s[base + V_VMA]
                if codec.vma_soft_dirty_enabled(vma) and not vma & codec.VM_HUGETLB:
                    return (f"{m.procs[p]}:{m.vpages[v]} is writable but not soft-dirty while "
                            f"soft-dirty tracking is on: a store there will not be reported")
            return None

        return check


def _at_pagemap_read(m, missed):
    """A step check that runs at each pagemap_read op: `missed(sd, p, v)` gets the page's
    soft-dirty tracker bits (ghost.SD_*) and returns the message when the read, which saw
    the page clean, should have seen it soft-dirty."""
    read = PAGEMAP.read

    def check(s, label, t):
        th, pc, oid, _arg = m.label_parts(label)
        if oid != read:
            return None
        p, v = m.t_proc[th], m.programs[th][pc].v
        w = m.wt[0][p][v]
        if t[w + W_PAGEMAP] & ghost.PM_SOFT_DIRTY:
            return None
        return missed(s[w + W_SD], p, v)
    return check


@register
class SoftDirtyComplete(Property):
    name = "soft-dirty-complete"
    kind = "step"
    description = ("a page stored to since clear_refs reads soft-dirty in pagemap (except "
                   "discarded data and the shared/file zap limitation)")
    catches = "soft-dirty escape (a write the next incremental dump misses)"

    def compile(self, m):
        if not m.tracking:
            return None

        def missed(sd, p, v):
            if sd & (ghost.SD_WRITTEN | ghost.SD_ZAPPED) == ghost.SD_WRITTEN:
                return (f"{m.vpages[v]} changed in {m.procs[p]} after clear_refs (a store "
                        f"landed, or new memory was mapped there), but pagemap reads it clean")
            return None
        return _at_pagemap_read(m, missed)


@register
class SoftDirtyZap(Property):
    name = "soft-dirty-zap"
    kind = "step"
    description = ("a shared/file page stored to since clear_refs reads soft-dirty even "
                   "after its PTE was zapped (documented limitation SD4)")
    catches = "soft-dirty lost with a zapped PTE (shmem/file)"

    def compile(self, m):
        if not m.tracking:
            return None
        both = ghost.SD_WRITTEN | ghost.SD_ZAPPED

        def missed(sd, p, v):
            if sd & both == both:
                return (f"{m.procs[p]} stored to {m.vpages[v]} after clear_refs; its PTE was "
                        f"zapped since and pagemap reads it clean")
            return None
        return _at_pagemap_read(m, missed)
