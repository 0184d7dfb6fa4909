"""no-lost-write: what a process reads at an address is the latest data there.

- private anonymous memory: its own latest write (or what a device wrote for it through
  one of its references, or zeroes after DONTNEED);
- a shared mapping: the object's latest data, whoever stored it (any process's shared
  mapping, a device through a pin);
- a private mapping of an object: its own latest write there; before it wrote, any data
  the object held (POSIX leaves open whether later changes of the file show through);
- the object itself holds its latest data, mapped or not (reclaim must not lose it).
"""

from __future__ import annotations

from ..model import codec
from ..model.kernel.common import (F_CONTENT, O_IDEAL, O_LEGIT, P_STATUS, RUNNING, V_IDEAL,
                                   V_VMA, ZERO_VALUE)
from .base import Property, register
from .observe import object_value, pte_value


@register
class NoLostWrite(Property):
    name = "no-lost-write"
    description = ("a process reading its page sees its own latest write, or what a device "
                   "wrote through its reference; a shared mapping sees the object's latest data")
    catches = "lost write (e.g. DMA into a page COW replaced)"

    def compile(self, m):
        V = m.n_vpages
        follow = m.follow_value
        # per process: its status field; per vpage: pte index, vpage, vma field, ideal field
        # (a shared mapping: its object's), object or -1, shared
        table = [(m.proc[p] + P_STATUS, p,
                  [(p * V + v, v, m.pv[p][v] + V_VMA,
                    m.ob[m.pv_object[p][v]] + O_IDEAL if m.vpage_shared[v]
                    else m.pv[p][v] + V_IDEAL, m.pv_object[p][v])
                   for v in range(V)])
                 for p in range(len(m.procs))]
        targets_of, cache = m.pte_targets, m.pte_cache
        content = [b + F_CONTENT for b in m.fr]
        objects = [(o, m.ob[o] + O_IDEAL) for o in range(len(m.objects))]

        def check(s):
            for o, ideal_ix in objects:
                held = object_value(m, s, o)
                if held != s[ideal_ix]:
                    return (f"{m.objects[o]} holds {m.value_name(held)} but its latest data "
                            f"is {m.value_name(s[ideal_ix])}")
            targets = cache[1] if cache[0] is s else targets_of(s)
            for status_ix, p, pages in table:
                if s[status_ix] != RUNNING:
                    continue
                for i, v, vma_ix, ideal_ix, o in pages:
                    if not s[vma_ix]:
                        continue
                    target = targets[i]
                    if target > 0:
                        seen = s[content[target - 1]]
                    elif target < 0:
                        seen = pte_value(m, s, m.ptes(s)[i])
                    elif codec.is_zero(m.ptes(s)[i]):
                        seen = ZERO_VALUE
                    else:  # none: a fault maps zeroes or the object's page
                        seen = ZERO_VALUE if o < 0 else object_value(m, s, o)
                    want = s[ideal_ix]
                    if seen == want:
                        continue
                    if want == follow:  # a private mapping of an object it has not written
                        if s[m.ob[o] + O_LEGIT] >> seen & 1:
                            continue
                        return (f"{m.procs[p]} reads {m.value_name(seen)} at {m.vpages[v]}, "
                                f"which {m.objects[o]} never held, but it has not written "
                                f"there")
                    return (f"{m.procs[p]} reads {m.value_name(seen)} at {m.vpages[v]} but "
                            f"its latest data there is {m.value_name(want)}")
            return None

        return check
