"""no-lost-write: what a process reads at an address is its own latest write there (or
what a device wrote for it through one of its references, or zeroes after DONTNEED)."""

from __future__ import annotations

from ..model import codec
from ..model.kernel.common import F_CONTENT, P_STATUS, RUNNING, V_IDEAL, V_VMA, ZERO_VALUE
from .observe import pte_value
from .base import Property, register


@register
class NoLostWrite(Property):
    name = "no-lost-write"
    description = ("a process reading its page sees its own latest write, or what a device "
                   "wrote through its reference")
    catches = "lost write (e.g. DMA into a page COW replaced)"

    def compile(self, m):
        # per process: its status field; per vpage its vma, pte and ideal field indexes
        V = m.n_vpages
        table = [(m.proc[p] + P_STATUS, p,
                  [(p * V + v, v, m.pv[p][v] + V_VMA, m.pv[p][v] + V_IDEAL) for v in range(V)])
                 for p in range(len(m.procs))]
        targets_of, cache = m.pte_targets, m.pte_cache
        content = [b + F_CONTENT for b in m.fr]
        initial = m.vpage_initial

        def check(s):
            targets = cache[1] if cache[0] is s else targets_of(s)
            for status_ix, p, pages in table:
                if s[status_ix] != RUNNING:
                    continue
                for i, v, vma_ix, ideal_ix in pages:
                    if not s[vma_ix]:
                        continue
                    target = targets[i]
                    if target > 0:
                        seen = s[content[target - 1]]
                    elif target < 0:
                        seen = pte_value(m, s, m.ptes(s)[i])
                    elif codec.is_zero(m.ptes(s)[i]):
                        seen = ZERO_VALUE
                    else:  # none: a fault maps zeroes or the file page
                        seen = initial[v]
                    if seen != s[ideal_ix]:
                        return (f"{m.procs[p]} reads {m.value_name(seen)} at {m.vpages[v]} but "
                                f"its latest data there is {m.value_name(s[ideal_ix])}")
            return None

        return check
