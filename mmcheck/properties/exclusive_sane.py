"""exclusive-sane: the anon-exclusive era's invariants (reference §5.2, §7).

Stated so that they mean something in every era, which shows *where* earlier eras break
the ownership rules 5.19 made explicit:

- a writable PTE maps a page no other process can observe (no other mapping, no GUP
  reference held for another process, no other swap entry for its slot);
- a FOLL_PIN-pinned anonymous page is mapped by at most one process;
- with PageAnonExclusive (5.19+): a writable anon PTE maps an exclusive page (I1), a
  pinned anon page is exclusive (I2), an exclusive page is mapped at most once, and an
  exclusive swap PTE is the only user of its slot.
"""

from __future__ import annotations

from ..state import (FL_AE, FL_FILE, FR_FLAGS, FR_SLOT, PROC_STATUS, PTE_SHIFT,
                     PTE_SWAP, PTE_SWX, PTE_W, PTE_ZERO, PV_PTE, RUNNING, SL_SWC)
from ..kernel import FORK_WRPROTECT
from ..state import TH_PHASE, TH_X, _getter
from .base import Property, register


@register
class ExclusiveSane(Property):
    name = "exclusive-sane"
    description = ("a writable or pinned anon page belongs to one process; with "
                   "PageAnonExclusive the flag agrees (I1, I2)")
    catches = "exclusivity violation (the root of missed and wrong COWs)"

    def compile(self, m):
        where = [(p, v) for p in range(len(m.procs)) for v in range(m.n_vpages)]
        get_ptes = _getter([m.pv[p][v] + PV_PTE for p, v in where])
        get_refs = _getter(m.refix)
        get_phases = _getter([m.th[t] + TH_PHASE for t in range(m.n_program_threads)])
        pv_index = {pv: i for i, pv in enumerate(where)}
        pins = [r for r in range(len(m.refs)) if m.ref_pin[r]]
        ae = m.ae
        special = PTE_ZERO | PTE_SWAP

        def name(i):
            p, v = where[i]
            return f"{m.procs[p]}:{m.vpages[v]}"

        def check(s):
            ptes = get_ptes(s)
            mapped = [pte >> PTE_SHIFT for pte in ptes if pte and not pte & special]
            held = get_refs(s)
            busy = ()
            phases = get_phases(s)
            if FORK_WRPROTECT in phases:
                # the PTE copy_present_pte is working on, under the PT lock, is between its
                # page_try_dup_anon_rmap and its write-protect: not a state anyone sees
                busy = {pv_index[m.t_proc[t], s[m.th[t] + TH_X]]
                        for t, ph in enumerate(phases) if ph == FORK_WRPROTECT}
            for i, pte in enumerate(ptes):
                if pte & PTE_SWAP:
                    if ae and pte & PTE_SWX and s[m.sl[(pte >> PTE_SHIFT) - 1] + SL_SWC] != 1:
                        return f"{name(i)} is an exclusive swap entry but its slot has other users"
                    continue
                if not pte & PTE_W or i in busy:
                    continue
                f1 = pte >> PTE_SHIFT
                b = m.fr[f1 - 1]
                if mapped.count(f1) > 1:
                    other = next(j for j, q in enumerate(ptes) if j != i and q >> PTE_SHIFT == f1
                                 and q and not q & special)
                    return f"{name(i)} is writable but the page is also mapped at {name(other)}"
                if f1 in held:
                    p = where[i][0]
                    for r, h in enumerate(held):
                        o = m.ref_owner[r]
                        if h == f1 and o != p and s[m.proc[o] + PROC_STATUS] == RUNNING:
                            return (f"{name(i)} is writable but {m.procs[o]} holds reference "
                                    f"{m.refs[r]} on the page")
                slot = s[b + FR_SLOT]
                if slot and s[m.sl[slot - 1] + SL_SWC]:
                    return f"{name(i)} is writable but swap entries still use its swapcache slot"
                if ae and not s[b + FR_FLAGS] & (FL_AE | FL_FILE):
                    return f"{name(i)} is writable but its page is not PageAnonExclusive (I1)"
            for r in pins:
                h = held[r]
                if h <= 0 or s[m.fr[h - 1] + FR_FLAGS] & FL_FILE:
                    continue
                if mapped.count(h) > 1:
                    procs = sorted({m.procs[where[j][0]] for j, q in enumerate(ptes)
                                    if q and not q & special and q >> PTE_SHIFT == h})
                    if len(procs) > 1:
                        return f"pinned page of reference {m.refs[r]} is mapped by {', '.join(procs)}"
                if ae and not s[m.fr[h - 1] + FR_FLAGS] & FL_AE:
                    return f"reference {m.refs[r]} pins a page that is not PageAnonExclusive (I2)"
            if ae and len(mapped) != len(set(mapped)):
                for f1 in set(mapped):
                    if mapped.count(f1) > 1 and s[m.fr[f1 - 1] + FR_FLAGS] & FL_AE:
                        return f"f{f1 - 1} is PageAnonExclusive but mapped {mapped.count(f1)} times"
            return None

        return check
