"""refcount-sane: every page's counters match what references it.

page_count = mappings + FOLL_GET refs + GUP_PIN_COUNTING_BIAS * pins + references held by
threads in the middle of an operation; page_mapcount = PTEs mapping it; a free page is
referenced by nothing (a reference to a freed page is a use-after-free); no counter goes
negative.
"""

from __future__ import annotations

from ..state import (FL_ALLOC, FR_FLAGS, FR_CONTENT, FR_MAP, FR_REF, PTE_SHIFT, PTE_SWAP, PTE_ZERO,
                     PTE_MARKER, PV_PTE, TH_FA, TH_FB, TH_FM, TH_PHASE, TH_X)
from ..transitions import PHASE_REFS
from .base import Property, register


@register
class RefcountSane(Property):
    name = "refcount-sane"
    description = ("page_count and page_mapcount match the mappings, references and "
                   "in-flight operations; nothing is freed while referenced")
    catches = "refcount bug (use-after-free, leak, underflow)"

    def compile(self, m):
        F = m.n_frames
        pte_slots = [m.pv[p][v] + 1 for p in range(len(m.procs)) for v in range(m.n_vpages)]
        skip = PTE_ZERO | PTE_SWAP | PTE_MARKER

        def check(s):
            maps = [0] * F
            refs = [0] * F
            for i in pte_slots:
                pte = s[i]
                if pte and not pte & skip:
                    f = (pte >> PTE_SHIFT) - 1
                    maps[f] += 1
                    refs[f] += 1
            for r, ix in enumerate(m.refix):
                if s[ix] > 0:
                    refs[s[ix] - 1] += m.ref_bias[r]
            for t, b in enumerate(m.th):
                held = PHASE_REFS.get(s[b + TH_PHASE])
                if held is None:
                    continue
                na, nb, nm = held
                if na == "fork_dup":
                    # copy_present_pte: get_page + page_dup_rmap done, child PTE not yet set
                    pte = s[m.pv[m.t_proc[t]][s[b + TH_X]] + PV_PTE]
                    f = (pte >> PTE_SHIFT) - 1
                    refs[f] += 1
                    maps[f] += 1
                    continue
                if na == "bias":
                    na = m.programs[t][s[b]].bias
                if na and s[b + TH_FA] > 0:
                    refs[s[b + TH_FA] - 1] += na
                if nb and s[b + TH_FB] > 0:
                    refs[s[b + TH_FB] - 1] += nb
                if nm:
                    mask = s[b + TH_FM]
                    for f in range(F):
                        if mask >> f & 1:
                            refs[f] += nm
            for f in range(F):
                fb = m.fr[f]
                ref, mapc = s[fb + FR_REF], s[fb + FR_MAP]
                if ref < 0 or mapc < 0:
                    return f"f{f} counter underflow: page_count {ref}, mapcount {mapc}"
                if not s[fb + FR_FLAGS] & FL_ALLOC and (ref or mapc or refs[f]):
                    return (f"f{f} was freed but is still referenced (use-after-free: "
                            f"page_count {ref}, {refs[f]} references)")
                if ref != refs[f]:
                    return f"f{f} page_count is {ref} but {refs[f]} references exist"
                if mapc != maps[f]:
                    return f"f{f} mapcount is {mapc} but {maps[f]} PTEs map it"
            return None

        return check
