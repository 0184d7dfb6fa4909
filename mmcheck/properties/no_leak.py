"""no-leak: no process can observe data it has no right to see.

Ideal memory (mmcheck.model.ghost): each process carries, per virtual page, the set of
values it may legitimately see there (its own writes, what it inherited when fork copied
that page, what its devices wrote through its references); each memory object carries the
values that were ever its data (its initial data, every store through a shared mapping).
What a process may observe at a page:

- private anonymous memory: its own set;
- a shared mapping: the object's set;
- a private mapping of an object: its own set and the object's (it sees the object's data
  until it writes there itself).

Anything else it can read, through its page table or through a GUP reference it holds, is
a missed COW (a data leak); and an object holding a value outside its set means a private
write reached the file.
"""

from __future__ import annotations

from ..model.kernel.common import F_CONTENT, O_LEGIT, P_STATUS, RUNNING, V_LEGIT
from .base import Property, register
from .observe import object_value, pte_value


@register
class NoLeak(Property):
    name = "no-leak"
    description = ("no process can observe, through its mappings or its references, data "
                   "written by another process after they were split by fork, and no "
                   "private write reaches a file")
    catches = "missed COW (e.g. CVE-2020-29374)"

    def compile(self, m):
        V = m.n_vpages

        def legit_of(p, v):
            """(own legit field or None, object legit field or None) of process p's page v."""
            o = m.pv_object[p][v]
            own = None if m.vpage_shared[v] else m.pv[p][v] + V_LEGIT
            return own, (m.ob[o] + O_LEGIT if o >= 0 else None)

        # per process: status field, per vpage (pte index, legit fields), per owned
        # reference (reference field, legit fields of its vpage)
        table = [(m.proc[p] + P_STATUS, p,
                  [(p * V + v, *legit_of(p, v)) for v in range(V)],
                  [(r, m.refix[r], *legit_of(p, m.ref_vpage[r]))
                   for r in range(len(m.refs)) if m.ref_owner[r] == p])
                 for p in range(len(m.procs))]
        content = [b + F_CONTENT for b in m.fr]
        targets_of, cache = m.pte_targets, m.pte_cache
        objects = [(o, m.ob[o] + O_LEGIT) for o in range(len(m.objects))]

        def check(s):
            for o, legit_ix in objects:
                value = object_value(m, s, o)
                if not s[legit_ix] >> value & 1:
                    return (f"{m.objects[o]} now holds {m.value_name(value)}, which no "
                            f"shared mapping wrote: a private write reached the object")
            targets = cache[1] if cache[0] is s else targets_of(s)
            for status_ix, p, pages, refs in table:
                if s[status_ix] != RUNNING:
                    continue
                for i, own, obj in pages:
                    target = targets[i]
                    if target:
                        value = (s[content[target - 1]] if target > 0
                                 else pte_value(m, s, m.ptes(s)[i]))
                        allowed = (s[own] if obj is None else s[obj] if own is None
                                   else s[own] | s[obj])
                        if not allowed >> value & 1:
                            return (f"{m.procs[p]} can observe {m.value_name(value)} at "
                                    f"{m.vpages[i % V]} through its page table, but that is "
                                    f"not its data")
                for r, ref_ix, own, obj in refs:
                    held = s[ref_ix]
                    if held > 0:
                        value = s[content[held - 1]]
                        allowed = (s[own] if obj is None else s[obj] if own is None
                                   else s[own] | s[obj])
                        if not allowed >> value & 1:
                            return (f"{m.procs[p]} can observe {m.value_name(value)} through "
                                    f"reference {m.refs[r]}, but that is not its data")
            return None

        return check
