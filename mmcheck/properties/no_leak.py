"""no-leak: no process can observe data another process wrote after they were split.

Ideal memory: each process carries, per virtual page, the set of values it may
legitimately see there (its own writes, what it inherited when fork copied that page,
what its devices wrote through its references).  Anything else it can read, through its
page table or through a GUP reference it holds, is a missed COW (a data leak).
"""

from __future__ import annotations

from ..state import (FR_CONTENT, PROC_STATUS, PTE_SHIFT, PTE_SWAP, PTE_ZERO, PV_LEGIT, PV_PTE,
                     RUNNING)
from .observe import pte_value
from .base import Property, register


@register
class NoLeak(Property):
    name = "no-leak"
    description = ("no process can observe, through its mappings or its references, data "
                   "written by another process after they were split by fork")
    catches = "missed COW (e.g. CVE-2020-29374)"

    def compile(self, m):
        # per process: status field, per vpage (pte, legit) fields, per owned reference
        # (reference field, legit field of its vpage)
        table = [(m.proc[p] + PROC_STATUS, p,
                  [(v, m.pv[p][v] + PV_PTE, m.pv[p][v] + PV_LEGIT) for v in range(m.n_vpages)],
                  [(r, m.refix[r], m.pv[p][m.ref_vpage[r]] + PV_LEGIT)
                   for r in range(len(m.refs)) if m.ref_owner[r] == p])
                 for p in range(len(m.procs))]
        content = [b + FR_CONTENT for b in m.fr]
        # a private mapping must never write into the file: its pagecache page keeps the
        # file's data (there are no shared writable mappings in the model)
        files = [(m.fr[m.vpage_file[v]] + FR_CONTENT, m.file_value[v], m.vpages[v])
                 for v in m.file_vpages]

        def check(s):
            for ix, value, vname in files:
                if s[ix] != value:
                    return (f"the file page behind {vname} now holds {m.value_name(s[ix])}: a "
                            f"private write reached the file")
            for status_ix, p, pages, refs in table:
                if s[status_ix] != RUNNING:
                    continue
                for v, pte_ix, legit_ix in pages:
                    pte = s[pte_ix]
                    if pte and not pte & PTE_ZERO:
                        value = (pte_value(m, s, pte) if pte & PTE_SWAP
                                 else s[content[(pte >> PTE_SHIFT) - 1]])
                        if not s[legit_ix] >> value & 1:
                            return (f"{m.procs[p]} can observe {m.value_name(value)} at "
                                    f"{m.vpages[v]} through its page table, but that is not "
                                    f"its data")
                for r, ref_ix, legit_ix in refs:
                    held = s[ref_ix]
                    if held > 0:
                        value = s[content[held - 1]]
                        if not s[legit_ix] >> value & 1:
                            return (f"{m.procs[p]} can observe {m.value_name(value)} through "
                                    f"reference {m.refs[r]}, but that is not its data")
            return None

        return check
