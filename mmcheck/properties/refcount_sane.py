"""refcount-sane: every page's counters match what references it.

page_count = mappings + FOLL_GET refs + GUP_PIN_COUNTING_BIAS * pins + the swapcache's
reference + the LRU add batch's reference + references held by threads (and background
actors) in the middle of an operation; page_mapcount = PTEs mapping it; a swap slot's count
is the number of swap PTEs using it and SWAP_HAS_CACHE says a swapcache page uses it; a free page is
referenced by nothing (a reference to a freed page is a use-after-free); no counter goes
negative.
"""

from __future__ import annotations

from ..state import (FL_LRU_BATCH, FR_SLOT, SL_CACHE, SL_SIZE, SL_SWC, FL_ALLOC, FR_FLAGS, FR_MAP, FR_REF, FR_SIZE, PTE_MARKER, PTE_SHIFT, PTE_SWAP,
                     PTE_ZERO, PV_PTE, TH_FA, TH_FB, TH_FM, TH_PHASE, _getter)
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
        L = m.L
        skip = PTE_ZERO | PTE_SWAP | PTE_MARKER
        get_ptes = _getter([m.pv[p][v] + PV_PTE for p in range(len(m.procs))
                            for v in range(m.n_vpages)])
        get_refs = _getter(m.refix)
        get_phases = _getter([b + TH_PHASE for b in m.th])
        biases = m.ref_bias
        ref_slice = slice(L.fr_base + FR_REF, L.fr_end, FR_SIZE)
        map_slice = slice(L.fr_base + FR_MAP, L.fr_end, FR_SIZE)
        flag_slice = slice(L.fr_base + FR_FLAGS, L.fr_end, FR_SIZE)
        slot_slice = slice(L.fr_base + FR_SLOT, L.fr_end, FR_SIZE)
        S = m.n_slots
        swc_slice = slice(L.sl_base + SL_SWC, L.ref_base, SL_SIZE)
        cache_slice = slice(L.sl_base + SL_CACHE, L.ref_base, SL_SIZE)

        base_refs = [0] * F
        for v in m.file_vpages:
            base_refs[m.vpage_file[v]] += 1  # the pagecache's reference
        fa_ix = [b + TH_FA for b in m.th]
        fb_ix = [b + TH_FB for b in m.th]

        def expected(s):
            maps = [0] * F
            refs = list(base_refs)
            swcs = [0] * S
            for pte in get_ptes(s):
                if pte and not pte & skip:
                    f = (pte >> PTE_SHIFT) - 1
                    maps[f] += 1
                    refs[f] += 1
                elif pte & PTE_SWAP:
                    swcs[(pte >> PTE_SHIFT) - 1] += 1
            if S:
                for f, slot in enumerate(s[slot_slice]):
                    if slot:
                        refs[f] += 1  # the swapcache's reference
            if m.lru_batch:
                for f, flags in enumerate(s[flag_slice]):
                    if flags & FL_LRU_BATCH:
                        refs[f] += 1  # the LRU add batch's reference
            for r, held in enumerate(get_refs(s)):
                if held > 0:
                    refs[held - 1] += biases[r]
            phases = get_phases(s)
            if any(phases):
                for t, phase in enumerate(phases):
                    held = PHASE_REFS.get(phase)
                    if held is None:
                        continue
                    na, nb, nm = held
                    if na.__class__ is int and not nm:  # the common case, inline
                        if na and s[fa_ix[t]] > 0:
                            refs[s[fa_ix[t]] - 1] += na
                        if nb and s[fb_ix[t]] > 0:
                            refs[s[fb_ix[t]] - 1] += nb
                    else:
                        _in_flight(m, s, t, held, refs, maps)
            return refs, maps, swcs

        def check(s):
            refs, maps, swcs = expected(s)
            actual_refs = s[ref_slice]
            flags = s[flag_slice]
            if not (list(actual_refs) == refs and list(s[map_slice]) == maps
                    and flags.count(0) == actual_refs.count(0)):
                return _explain(m, s, refs, maps)
            if S:
                if list(s[swc_slice]) != swcs:
                    i = next(i for i in range(S) if s[m.sl[i] + SL_SWC] != swcs[i])
                    return (f"swap slot s{i} has swap count {s[m.sl[i] + SL_SWC]} but "
                            f"{swcs[i]} swap PTEs use it")
                cached = [0] * S
                for slot in s[slot_slice]:
                    if slot:
                        cached[slot - 1] += 1
                if list(s[cache_slice]) != cached:
                    i = next(i for i in range(S) if s[m.sl[i] + SL_CACHE] != cached[i])
                    return (f"swap slot s{i}: SWAP_HAS_CACHE is {s[m.sl[i] + SL_CACHE]} but "
                            f"{cached[i]} swapcache pages use it")
            return None

        return check


def _in_flight(m, s, t, held, refs, maps):
    """References (and a pending mapping) held by thread t in the middle of an operation."""
    b = m.th[t]
    na, nb, nm = held
    if na == "fork_dup":
        # copy_present_pte: get_page + page_dup_rmap done, the child's PTE not yet set
        f = s[b + TH_FA] - 1
        refs[f] += 1
        maps[f] += 1
        return
    if na == "bias":
        na = m.programs[t][s[b]].bias
    if na and s[b + TH_FA] > 0:
        refs[s[b + TH_FA] - 1] += na
    if nb and s[b + TH_FB] > 0:
        refs[s[b + TH_FB] - 1] += nb
    if nm:
        mask = s[b + TH_FM]
        for f in range(m.n_frames):
            if mask >> f & 1:
                refs[f] += nm


def _explain(m, s, refs, maps):
    for f in range(m.n_frames):
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
    return "frame flags inconsistent with page counts"
