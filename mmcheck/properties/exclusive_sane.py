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

from ..state import (FL_AE, FL_FILE, FR_FLAGS, FR_MAP, FR_SLOT, PROC_STATUS, PTE_SHIFT,
                     PTE_SWAP, PTE_SWX, PTE_W, PTE_ZERO, PV_PTE, RUNNING, SL_SWC)
from ..kernel import FORK_WRPROTECT
from ..state import TH_PHASE, TH_X
from .base import Property, register


@register
class ExclusiveSane(Property):
    name = "exclusive-sane"
    description = ("a writable or pinned anon page belongs to one process; with "
                   "PageAnonExclusive the flag agrees (I1, I2)")
    catches = "exclusivity violation (the root of missed and wrong COWs)"

    def compile(self, m):
        ptes = [(p, v, m.pv[p][v] + PV_PTE) for p in range(len(m.procs))
                for v in range(m.n_vpages)]
        pins = [r for r in range(len(m.refs)) if m.ref_pin[r]]
        ae = m.ae
        forkers = [(t, m.th[t], m.t_proc[t]) for t in range(m.n_program_threads)]

        def check(s):
            # the PTE copy_present_pte is working on, under the PT lock, is between its
            # page_try_dup_anon_rmap and its write-protect: not a state anyone can see
            busy = {(p, s[b + TH_X]) for t, b, p in forkers if s[b + TH_PHASE] == FORK_WRPROTECT}
            mappers = {}
            for p, v, ix in ptes:
                pte = s[ix]
                if pte and not pte & (PTE_ZERO | PTE_SWAP):
                    mappers.setdefault((pte >> PTE_SHIFT) - 1, []).append((p, v))
            for p, v, ix in ptes:
                pte = s[ix]
                if pte & PTE_SWAP:
                    if ae and pte & PTE_SWX and s[m.sl[(pte >> PTE_SHIFT) - 1] + SL_SWC] != 1:
                        return (f"{m.procs[p]}:{m.vpages[v]} is an exclusive swap entry but "
                                f"its slot has other users")
                    continue
                if not pte & PTE_W or pte & PTE_ZERO or not pte or (p, v) in busy:
                    continue
                f = (pte >> PTE_SHIFT) - 1
                b = m.fr[f]
                where = f"{m.procs[p]}:{m.vpages[v]}"
                if len(mappers[f]) > 1:
                    q, w = mappers[f][0] if mappers[f][0] != (p, v) else mappers[f][1]
                    return (f"{where} is writable but the page is also mapped at "
                            f"{m.procs[q]}:{m.vpages[w]}")
                for r, ix_r in enumerate(m.refix):
                    if s[ix_r] == f + 1 and m.ref_owner[r] != p and \
                            s[m.proc[m.ref_owner[r]] + PROC_STATUS] == RUNNING:
                        return (f"{where} is writable but {m.procs[m.ref_owner[r]]} holds "
                                f"reference {m.refs[r]} on the page")
                slot = s[b + FR_SLOT]
                if slot and s[m.sl[slot - 1] + SL_SWC]:
                    return f"{where} is writable but swap entries still use its swapcache slot"
                if ae and not s[b + FR_FLAGS] & FL_AE and not s[b + FR_FLAGS] & FL_FILE:
                    return f"{where} is writable but its page is not PageAnonExclusive (I1)"
            for r in pins:
                held = s[m.refix[r]]
                if held <= 0:
                    continue
                b = m.fr[held - 1]
                if s[b + FR_FLAGS] & FL_FILE:
                    continue
                procs = {p for p, _v in mappers.get(held - 1, ())}
                if len(procs) > 1:
                    return (f"pinned page of reference {m.refs[r]} is mapped by "
                            f"{', '.join(m.procs[p] for p in sorted(procs))}")
                if ae and not s[b + FR_FLAGS] & FL_AE:
                    return (f"reference {m.refs[r]} pins a page that is not "
                            f"PageAnonExclusive (I2)")
            if ae:
                for f, who in mappers.items():
                    if len(who) > 1 and s[m.fr[f] + FR_FLAGS] & FL_AE:
                        return f"f{f} is PageAnonExclusive but mapped {len(who)} times"
            return None

        return check
