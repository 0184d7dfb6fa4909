"""exclusive-sane: the anon-exclusive era's invariants (reference §5.2, §7).

Stated so that they mean something in every era, which shows *where* earlier eras break
the ownership rules 5.19 made explicit:

- a writable PTE of a private mapping maps a page no other process can observe (no other
  mapping, no GUP reference held for another process, no other swap entry for its slot);
  shared mappings are shared by design and not judged;
- a FOLL_PIN-pinned anonymous page is mapped by at most one process;
- with PageAnonExclusive (5.19+): a writable anon PTE maps an exclusive page (I1), a
  pinned anon page is exclusive (I2), an exclusive page is mapped at most once, and an
  exclusive swap PTE is the only user of its slot.
"""

from __future__ import annotations

from ..model import codec
from ..model.codec import PG_ANON_EXCLUSIVE, PG_FILE
from ..model.kernel.common import F_FLAGS, F_SLOT, P_STATUS, RUNNING, S_COUNT, T_CURSOR, T_STEP
from ..model.state import getter
from ..model.steps import FORK_WRPROTECT
from .base import Property, register


@register
class ExclusiveSane(Property):
    name = "exclusive-sane"
    description = ("a writable or pinned anon page belongs to one process; with "
                   "PageAnonExclusive the flag agrees (I1, I2)")
    catches = "exclusivity violation (the root of missed and wrong COWs)"

    def compile(self, m):
        where = [(p, v) for p in range(len(m.procs)) for v in range(m.n_vpages)]
        get_ptes = m.ptes
        get_refs = getter(m.refix)
        get_steps = getter([m.th[t] + T_STEP for t in range(m.n_program_threads)])
        pv_index = {pv: i for i, pv in enumerate(where)}
        pins = [r for r in range(len(m.refs)) if m.ref_pin[r]]
        # writable PTEs of shared mappings are not judged (folded into `busy` below)
        shared = frozenset(i for i, (p, v) in enumerate(where) if m.vpage_shared[v])
        ae = m.ae

        def name(i):
            p, v = where[i]
            return f"{m.procs[p]}:{m.vpages[v]}"

        targets_of, cache = m.pte_targets, m.pte_cache

        def check(s):
            ptes = get_ptes(s)
            # frame + 1 of each present PTE, -(slot + 1) of each swap entry, else 0
            targets = cache[1] if cache[0] is s else targets_of(s)
            mapped = [x for x in targets if x > 0]
            held = get_refs(s)
            busy = shared
            steps = get_steps(s)
            if FORK_WRPROTECT in steps:
                # the PTE copy_present_pte is working on, under the PT lock, is between its
                # page_try_dup_anon_rmap and its write-protect: not a state anyone sees
                busy = shared | {pv_index[m.t_proc[t], s[m.th[t] + T_CURSOR]]
                                 for t, st in enumerate(steps) if st == FORK_WRPROTECT}
            if ae and len(mapped) < len(targets) and min(targets) < 0:
                for i, x in enumerate(targets):
                    if x < 0 and codec.exclusive(ptes[i]) and s[m.sl[-x - 1] + S_COUNT] != 1:
                        return f"{name(i)} is an exclusive swap entry but its slot has other users"
            for i in cache[2]:
                if i in busy:
                    continue
                f1 = targets[i]
                b = m.fr[f1 - 1]
                if mapped.count(f1) > 1:
                    other = next(j for j, g in enumerate(targets) if j != i and g == f1)
                    return f"{name(i)} is writable but the page is also mapped at {name(other)}"
                if f1 in held:
                    p = where[i][0]
                    for r, h in enumerate(held):
                        o = m.ref_owner[r]
                        if h == f1 and o != p and s[m.proc[o] + P_STATUS] == RUNNING:
                            return (f"{name(i)} is writable but {m.procs[o]} holds reference "
                                    f"{m.refs[r]} on the page")
                slot = s[b + F_SLOT]
                if slot and s[m.sl[slot - 1] + S_COUNT]:
                    return f"{name(i)} is writable but swap entries still use its swapcache slot"
                if ae and not s[b + F_FLAGS] & (PG_ANON_EXCLUSIVE | PG_FILE):
                    return f"{name(i)} is writable but its page is not PageAnonExclusive (I1)"
            for r in pins:
                h = held[r]
                if h <= 0 or s[m.fr[h - 1] + F_FLAGS] & PG_FILE:
                    continue
                if mapped.count(h) > 1:
                    procs = sorted({m.procs[where[j][0]] for j, g in enumerate(targets)
                                    if g == h})
                    if len(procs) > 1:
                        return f"pinned page of reference {m.refs[r]} is mapped by {', '.join(procs)}"
                if ae and not s[m.fr[h - 1] + F_FLAGS] & PG_ANON_EXCLUSIVE:
                    return f"reference {m.refs[r]} pins a page that is not PageAnonExclusive (I2)"
            if ae and len(mapped) != len(set(mapped)):
                for f1 in set(mapped):
                    if mapped.count(f1) > 1 and s[m.fr[f1 - 1] + F_FLAGS] & PG_ANON_EXCLUSIVE:
                        return f"f{f1 - 1} is PageAnonExclusive but mapped {mapped.count(f1)} times"
            return None

        return check
