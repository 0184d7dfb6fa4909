"""no-leak: no process can observe data another process wrote after they were split.

Ideal memory: each process carries, per virtual page, the set of values it may
legitimately see there (its own writes, what it inherited when fork copied that page,
what its devices wrote through its references).  Anything else it can read, through its
page table or through a GUP reference it holds, is a missed COW (a data leak).
"""

from __future__ import annotations

from ..model.kernel.common import F_CONTENT, P_STATUS, RUNNING, V_LEGIT
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
        V = m.n_vpages
        table = [(m.proc[p] + P_STATUS, p,
                  [(p * V + v, m.pv[p][v] + V_LEGIT) for v in range(V)],
                  [(r, m.refix[r], m.pv[p][m.ref_vpage[r]] + V_LEGIT)
                   for r in range(len(m.refs)) if m.ref_owner[r] == p])
                 for p in range(len(m.procs))]
        content = [b + F_CONTENT for b in m.fr]
        targets_of, cache = m.pte_targets, m.pte_cache
        # a private mapping must never write into the file: its pagecache page keeps the
        # file's data (there are no shared writable mappings in the model)
        files = [(m.fr[m.vpage_file[v]] + F_CONTENT, m.file_value[v], m.vpages[v])
                 for v in m.file_vpages]

        def check(s):
            for ix, value, vname in files:
                if s[ix] != value:
                    return (f"the file page behind {vname} now holds {m.value_name(s[ix])}: a "
                            f"private write reached the file")
            targets = cache[1] if cache[0] is s else targets_of(s)
            for status_ix, p, pages, refs in table:
                if s[status_ix] != RUNNING:
                    continue
                for i, legit_ix in pages:
                    target = targets[i]
                    if target:
                        value = (s[content[target - 1]] if target > 0
                                 else pte_value(m, s, m.ptes(s)[i]))
                        if not s[legit_ix] >> value & 1:
                            return (f"{m.procs[p]} can observe {m.value_name(value)} at "
                                    f"{m.vpages[i % V]} through its page table, but that is "
                                    f"not its data")
                for r, ref_ix, legit_ix in refs:
                    held = s[ref_ix]
                    if held > 0:
                        value = s[content[held - 1]]
                        if not s[legit_ix] >> value & 1:
                            return (f"{m.procs[p]} can observe {m.value_name(value)} through "
                                    f"reference {m.refs[r]}, but that is not its data")
            return None

        return check
