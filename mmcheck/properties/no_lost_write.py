"""no-lost-write: what a process reads at an address is its own latest write there (or
what a device wrote for it through one of its references, or zeroes after DONTNEED)."""

from __future__ import annotations

from .observe import pte_value
from ..state import (PTE_SWAP, FR_CONTENT, PROC_STATUS, PTE_SHIFT, PTE_ZERO, PV_IDEAL, PV_PTE,
                     PV_VMA, RUNNING, VMA_NONE)
from .base import Property, register


@register
class NoLostWrite(Property):
    name = "no-lost-write"
    description = ("a process reading its page sees its own latest write, or what a device "
                   "wrote through its reference")
    catches = "lost write (e.g. DMA into a page COW replaced)"

    def compile(self, m):
        # per process: its status field and, per vpage, (vma, pte, ideal) field indexes
        table = [(m.proc[p] + PROC_STATUS, p,
                  [(v, m.pv[p][v] + PV_VMA, m.pv[p][v] + PV_PTE, m.pv[p][v] + PV_IDEAL)
                   for v in range(m.n_vpages)])
                 for p in range(len(m.procs))]
        content = [b + FR_CONTENT for b in m.fr]

        def check(s):
            for status_ix, p, pages in table:
                if s[status_ix] != RUNNING:
                    continue
                for v, vma_ix, pte_ix, ideal_ix in pages:
                    if s[vma_ix] == VMA_NONE:
                        continue
                    pte = s[pte_ix]
                    if pte == 0:
                        seen = m.vpage_initial[v]  # a fault maps zeroes or the file page
                    elif pte & (PTE_ZERO | PTE_SWAP):
                        seen = pte_value(m, s, pte)
                    else:
                        seen = s[content[(pte >> PTE_SHIFT) - 1]]
                    if seen != s[ideal_ix]:
                        return (f"{m.procs[p]} reads {m.value_name(seen)} at {m.vpages[v]} but "
                                f"its latest data there is {m.value_name(s[ideal_ix])}")
            return None

        return check
