"""The layout-independent picture of a state that traces carry (docs/trace-format.md):
processes with their VMAs, PTEs, ideal memory and threads; frames in use; swap slots;
GUP references.  Built through the state schema's accessors and the codecs."""

from __future__ import annotations

from . import codec, ghost
from .kernel.common import (LK_READ, LK_WRITE, RUNNING, STATUS_NAMES, U_CTX, W_PAGEMAP, W_SD,
                            W_WP, ZERO_REF, ZERO_VALUE)
from .steps import KILLED, STEPS


def snapshot(m, s) -> dict:
    view = m.view(s)
    frame_name, slot_name = m.frame_name, (lambda i: f"s{i}")
    procs = []
    for p, name in enumerate(m.procs):
        proc = view.proc(p)
        locks = [view.thread(t).mmap_lock for t in m.proc_threads[p]]
        lock = ("write" if LK_WRITE in locks else
                f"read x{locks.count(LK_READ)}" if LK_READ in locks else "free")
        vpages = []
        legit = set()
        for v, vname in enumerate(m.vpages):
            pv = view.pv(p, v)
            o = m.pv_object[p][v]
            vpages.append({
                "page": vname,
                "vma": codec.vma_prot(pv.vma),
                "mapping": ("anonymous" if o < 0 and not m.vpage_shared[v] else
                            f"{'shared' if m.vpage_shared[v] else 'private'} {m.objects[o]}"),
                "pte": codec.as_dict(pv.pte, frame_name, slot_name),
                "ideal": m.value_name(pv.ideal),
            })
            if m.tracking:  # write-tracking scenarios: the VMA's flags and the trackers
                w = m.wt[0][p][v]
                vpages[-1]["tracking"] = {
                    "vma": codec.vma_tracking(pv.vma), "wp": ghost.describe_wp(s[w + W_WP]),
                    "soft_dirty": ghost.describe_sd(s[w + W_SD]),
                    "pagemap": ghost.describe_pagemap(s[w + W_PAGEMAP])}
            legit.update(m.legit_values(pv.legit))
        threads = [thread_snapshot(m, s, t, proc.status == RUNNING) for t in m.proc_threads[p]]
        procs.append({
            "name": name, "status": STATUS_NAMES[proc.status],
            "mm": {"has_pinned": bool(proc.has_pinned),
                   "write_protect_seq": proc.write_protect_seq, "mmap_lock": lock},
            "vpages": vpages, "threads": threads,
            "legit": sorted(legit, key=m.values.index),
        })
        if m.tracking:
            procs[-1]["uffd"] = codec.uffd_describe(s[m.uffd[0][p] + U_CTX])
    actors = list(range(m.n_program_threads, len(m.threads)))
    if actors:
        procs.append({
            "name": "kernel", "status": "running",
            "mm": {"has_pinned": False, "write_protect_seq": 0, "mmap_lock": "free"},
            "vpages": [], "legit": [],
            "threads": [thread_snapshot(m, s, t, True) for t in actors]})
    frames = []
    for f in range(m.n_frames):
        fr = view.frame(f)
        flags = fr.flags
        if not (flags or fr.ref or fr.map):
            continue
        pins = sum(1 for r in range(len(m.refs)) if m.ref_pin[r] and view.ref(r) == f + 1)
        names = [name for bit, name in codec.PAGE_FLAG_NAMES if flags & bit]
        if fr.slot:
            names.append(f"SwapCache s{fr.slot - 1}")
        if not flags & codec.PG_ALLOC:
            names.append("FREED")
        frames.append({
            "id": frame_name(f), "kind": codec.page_kind(flags), "ref": fr.ref,
            "map": fr.map, "pins": pins, "flags": names,
            "content": m.value_name(fr.content),
        })
    slots = []
    for i in range(m.n_slots):
        sl = view.slot(i)
        if sl.swap_count or sl.cache:
            slots.append({"id": f"s{i}", "swap_count": sl.swap_count,
                          "swapcache": bool(sl.cache), "content": m.value_name(sl.content)})
    refs = []
    for r, spec in enumerate(m.sc_refs):
        held = view.ref(r)
        if held == ZERO_REF:
            frame, content = "zero", ZERO_VALUE
        elif held > 0:
            frame, content = frame_name(held - 1), view.frame(held - 1).content
        else:
            frame, content = None, None
        refs.append({
            "name": spec.name, "owner": spec.owner, "page": spec.page, "type": spec.type,
            "access": "write" if spec.write else "read", "longterm": spec.longterm,
            "coherent": spec.coherent, "frame": frame,
            "sees": None if content is None else m.value_name(content),
        })
    snap = {"processes": procs, "frames": frames, "refs": refs}
    if m.n_slots:
        snap["swap_slots"] = slots
    if m.objects:
        snap["objects"] = [
            {"name": name, "type": m.obj_type[o],
             "entry": codec.as_dict(view.object(o).entry, frame_name, slot_name),
             "ideal": m.value_name(view.object(o).ideal),
             "legit": m.legit_values(view.object(o).legit)}
            for o, name in enumerate(m.objects)]
    return snap


def thread_snapshot(m, s, t, running) -> dict:
    th = m.view(s).thread(t)
    pc, step = th.pc, th.step
    prog = m.threads[t].program
    if m.is_menu[t] and not pc and not step:
        pc = len(prog)  # idle: show no current op
    status = ("idle" if m.is_menu[t] and pc == len(prog) and step != KILLED else
              "done" if pc >= len(prog) else
              "blocked" if running and not m.enabled(s, t) else "running")
    if step == KILLED:
        status = "killed (SIGSEGV)"
    out = {"name": m.thread_names[t], "pc": pc,
           "op": prog[pc].describe() if pc < len(prog) else None,
           "step": STEPS[step].name if step != KILLED else "", "status": status}
    fields = {}
    for name in STEPS[step].uses:
        value = getattr(th, name)
        if value:
            fields[name] = register_text(m, name, value)
    if fields:
        out["fields"] = fields
    return out


def register_text(m, name, value) -> str:
    """A thread field for display: pages as frame names, PTE flag bits decoded."""
    from .state import FRAME, FRAME_MASK, THREAD_REC

    kind = THREAD_REC.field(name).kind
    if kind == FRAME:
        return "zero page" if value == ZERO_REF else m.frame_name(value - 1)
    if kind == FRAME_MASK:
        return ", ".join(m.frame_name(f) for f in range(m.n_frames) if value >> f & 1)
    if name == "orig_pte":
        return codec.describe(value)
    if name == "cursor":
        return m.vpages[value] if value < len(m.vpages) else str(value)
    return str(value)
