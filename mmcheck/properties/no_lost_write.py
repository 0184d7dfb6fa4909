"""no-lost-write: what a process reads at an address is its own latest write there (or
what a device wrote for it through one of its references, or zeroes after DONTNEED)."""

from __future__ import annotations

from ..state import (FR_CONTENT, PROC_STATUS, PTE_SHIFT, PTE_ZERO, PV_IDEAL, PV_PTE,
                     PV_VMA, RUNNING, VMA_NONE, ZERO_VALUE)
from .base import Property, register


@register
class NoLostWrite(Property):
    name = "no-lost-write"
    description = ("a process reading its page sees its own latest write, or what a device "
                   "wrote through its reference")
    catches = "lost write (e.g. DMA into a page COW replaced)"

    def compile(self, m):
        procs = range(len(m.procs))
        vpages = range(m.n_vpages)

        def check(s):
            for p in procs:
                if s[m.proc[p] + PROC_STATUS] != RUNNING:
                    continue
                for v in vpages:
                    base = m.pv[p][v]
                    if s[base + PV_VMA] == VMA_NONE:
                        continue
                    pte = s[base + PV_PTE]
                    seen = (ZERO_VALUE if pte == 0 or pte & PTE_ZERO
                            else s[m.fr[(pte >> PTE_SHIFT) - 1] + FR_CONTENT])
                    ideal = s[base + PV_IDEAL]
                    if seen != ideal:
                        return (f"{m.procs[p]} reads {m.value_name(seen)} at {m.vpages[v]} but "
                                f"its latest data there is {m.value_name(ideal)}")
            return None

        return check
