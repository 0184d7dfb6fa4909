"""no-leak: no process can observe data another process wrote after they were split.

Ideal memory: each process carries, per virtual page, the set of values it may
legitimately see there (its own writes, what it inherited when fork copied that page,
what its devices wrote through its references).  Anything else it can read, through its
page table or through a GUP reference it holds, is a missed COW (a data leak).
"""

from __future__ import annotations

from ..state import (FR_CONTENT, PROC_STATUS, PTE_SHIFT, PTE_ZERO, PV_LEGIT, PV_PTE,
                     RUNNING)
from .base import Property, register


@register
class NoLeak(Property):
    name = "no-leak"
    description = ("no process can observe, through its mappings or its references, data "
                   "written by another process after they were split by fork")
    catches = "missed COW (e.g. CVE-2020-29374)"

    def compile(self, m):
        procs = range(len(m.procs))
        vpages = range(m.n_vpages)
        refs_of = [[r for r in range(len(m.refs)) if m.ref_owner[r] == p] for p in procs]

        def check(s):
            for p in procs:
                if s[m.proc[p] + PROC_STATUS] != RUNNING:
                    continue
                for v in vpages:
                    base = m.pv[p][v]
                    pte = s[base + PV_PTE]
                    if pte and not pte & PTE_ZERO:
                        value = s[m.fr[(pte >> PTE_SHIFT) - 1] + FR_CONTENT]
                        if not s[base + PV_LEGIT] >> value & 1:
                            return (f"{m.procs[p]} can observe {m.value_name(value)} at "
                                    f"{m.vpages[v]} through its page table, but that is not "
                                    f"its data")
                for r in refs_of[p]:
                    held = s[m.refix[r]]
                    if held > 0:
                        value = s[m.fr[held - 1] + FR_CONTENT]
                        legit = s[m.pv[p][m.ref_vpage[r]] + PV_LEGIT]
                        if not legit >> value & 1:
                            return (f"{m.procs[p]} can observe {m.value_name(value)} through "
                                    f"reference {m.refs[r]}, but that is not its data")
            return None

        return check
