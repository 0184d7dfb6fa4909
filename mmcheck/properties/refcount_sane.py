"""refcount-sane: every page's counters match what references it.

What references a frame comes from the declarations, not from a list kept here: every
state field that points at frames declares what it holds (mmcheck.model.state
`Field.holds` / `Field.maps`): a PTE maps its page and holds a reference, a GUP reference
holds 1 (FOLL_GET) or GUP_PIN_COUNTING_BIAS (FOLL_PIN), and a thread's fields hold what
the step table (mmcheck.model.steps `Step.holds`) says for the step the thread is in.
A memory object's page cache entry is such a field too (it holds the page cache's reference,
maps nothing).  Besides the pointers, a frame owes one reference to each of: the swapcache
(while it has a slot), the LRU add batch (while it sits in one).

page_count = all of those; page_mapcount = the mapping pointers; a swap slot's count is
the number of swap entries (PTEs, and a shmem page cache's) using it and SWAP_HAS_CACHE
says a swapcache page uses it; a free page is referenced by nothing (a reference to a freed
page is a use-after-free); no counter goes negative.
"""

from __future__ import annotations

from ..model import codec
from ..model.codec import PG_ALLOC, PG_LRU_BATCH
from ..model.kernel.common import F_FLAGS, F_MAP, F_REF, F_SLOT, S_CACHE, S_COUNT
from ..model.state import FRAME, FRAME_MASK, PTE, THREAD_REC, getter
from ..model.steps import STEPS
from .base import Property, register


@register
class RefcountSane(Property):
    name = "refcount-sane"
    description = ("page_count and page_mapcount match the mappings, references and "
                   "in-flight operations; nothing is freed while referenced")
    catches = "refcount bug (use-after-free, leak, underflow)"

    def compile(self, m):
        F, S, L = m.n_frames, m.n_slots, m.L
        # entries (PTE-kind fields): what each maps and holds.  The page tables come
        # through the model's per-state scan (`pte_targets`, in (process, vpage) order);
        # every other entry field (page cache entries) is read here.
        pte_pos = [m.pv[p][v] + L.schema["pv"].offset["pte"]
                   for p in range(len(m.procs)) for v in range(m.n_vpages)]
        pv_pte = L.schema["pv"].field("pte")
        assert (pv_pte.holds, pv_pte.maps) == (1, 1)
        others = [(b + i, f.holds or 0, f.maps) for rec, f, i in L.fields_of_kind(PTE)
                  for _ix, b in L.instances(rec.name) if b + i not in set(pte_pos)]
        get_others = getter([pos for pos, _h, _m in others])
        other_holds = [(h, mp) for _pos, h, mp in others]
        # frame pointers outside threads: GUP references (their bias)
        ptr_fields = [(rec, f, i) for rec, f, i in L.fields_of_kind(FRAME)
                      if rec is not THREAD_REC]
        pointers = []
        for rec, f, i in ptr_fields:
            if not f.holds:
                continue  # a pointer that holds no reference (a record of a page, a hint)
            assert f.holds == "bias" and rec.index == ("ref",), (rec.name, f.name)
            pointers.extend((b + i, m.ref_bias[ix[0]]) for ix, b in L.instances(rec.name))
        get_pointers = getter([pos for pos, _n in pointers])
        biases = [n for _pos, n in pointers]
        # thread fields by step: [(offset in the thread record, refs, maps, is a mask)]
        held_by_step = {}
        for st in STEPS:
            if st.holds:
                held_by_step[st.id] = [
                    (THREAD_REC.offset[alias], refs, maps,
                     THREAD_REC.field(alias).kind == FRAME_MASK)
                    for alias, (refs, maps) in st.holds.items()]
                for alias in st.holds:
                    assert THREAD_REC.field(alias).kind in (FRAME, FRAME_MASK), (st.name, alias)
        step_of = getter([b + THREAD_REC.offset["step"] for b in m.th])
        pc_off = THREAD_REC.offset["pc"]
        fr0, fr1 = L.span("frame")
        fsize = L.schema["frame"].size
        ref_slice = slice(fr0 + F_REF, fr1, fsize)
        map_slice = slice(fr0 + F_MAP, fr1, fsize)
        flag_slice = slice(fr0 + F_FLAGS, fr1, fsize)
        slot_slice = slice(fr0 + F_SLOT, fr1, fsize)
        sl0, sl1 = L.span("slot")
        ssize = L.schema["slot"].size
        swc_slice = slice(sl0 + S_COUNT, sl1, ssize)
        cache_slice = slice(sl0 + S_CACHE, sl1, ssize)
        targets_of, cache = m.pte_targets, m.pte_cache

        def expected(s):
            maps = [0] * F
            swcs = [0] * S
            # every PTE maps its page and holds one reference
            for x in (cache[1] if cache[0] is s else targets_of(s)):
                if x > 0:
                    maps[x - 1] += 1
                elif x < 0:
                    swcs[-x - 1] += 1
            refs = maps[:]
            if others:
                for x, (h, mp) in zip(codec.signed_targets(get_others(s)), other_holds):
                    if x > 0:
                        maps[x - 1] += mp
                        refs[x - 1] += h
                    elif x < 0:
                        swcs[-x - 1] += 1
            if S:
                for f, slot in enumerate(s[slot_slice]):
                    if slot:
                        refs[f] += 1  # the swapcache's reference
            if m.lru_batch:
                for f, flags in enumerate(s[flag_slice]):
                    if flags & PG_LRU_BATCH:
                        refs[f] += 1  # the LRU add batch's reference
            for held, bias in zip(get_pointers(s), biases):
                if held > 0:
                    refs[held - 1] += bias
            thread_steps = step_of(s)
            for t, st in enumerate(thread_steps) if any(thread_steps) else ():
                held = held_by_step.get(st)
                if held is None:
                    continue
                b = m.th[t]
                for off, nref, nmap, is_mask in held:
                    value = s[b + off]
                    if nref == "bias":
                        nref = m.programs[t][s[b + pc_off]].bias
                    if is_mask:
                        for f in range(F):
                            if value >> f & 1:
                                refs[f] += nref
                                maps[f] += nmap
                    elif value > 0:
                        refs[value - 1] += nref
                        maps[value - 1] += nmap
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
                    i = next(i for i in range(S) if s[m.sl[i] + S_COUNT] != swcs[i])
                    return (f"swap slot s{i} has swap count {s[m.sl[i] + S_COUNT]} but "
                            f"{swcs[i]} swap PTEs use it")
                cached = [0] * S
                for slot in s[slot_slice]:
                    if slot:
                        cached[slot - 1] += 1
                if list(s[cache_slice]) != cached:
                    i = next(i for i in range(S) if s[m.sl[i] + S_CACHE] != cached[i])
                    return (f"swap slot s{i}: SWAP_HAS_CACHE is {s[m.sl[i] + S_CACHE]} but "
                            f"{cached[i]} swapcache pages use it")
            return None

        return check


def _explain(m, s, refs, maps):
    for f in range(m.n_frames):
        fb = m.fr[f]
        ref, mapc = s[fb + F_REF], s[fb + F_MAP]
        if ref < 0 or mapc < 0:
            return f"f{f} counter underflow: page_count {ref}, mapcount {mapc}"
        if not s[fb + F_FLAGS] & PG_ALLOC and (ref or mapc or refs[f]):
            return (f"f{f} was freed but is still referenced (use-after-free: "
                    f"page_count {ref}, {refs[f]} references)")
        if ref != refs[f]:
            return f"f{f} page_count is {ref} but {refs[f]} references exist"
        if mapc != maps[f]:
            return f"f{f} mapcount is {mapc} but {maps[f]} PTEs map it"
    return "frame flags inconsistent with page counts"
