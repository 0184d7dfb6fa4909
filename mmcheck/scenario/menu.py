"""Menus: bug discovery without a script.

A menu scenario names at most N processes (P0 exists at the start, the others are created
by `fork` templates), how many GUP references each may hold, and operation templates.  It
is expanded here into ordinary compiled pieces: every process gets one *menu thread* whose
program is the list of every instantiation of every template for that process (per page,
per reference slot, per fork child); index 0 is "idle".  When idle, the thread may start
any instantiation whose guard holds (uses left, a free reference slot, the next unborn
child); the op then runs through its kernel steps like any other and the thread returns to
idle.  Template use counters are state fields.

Writes are distinguished per process, page and *fork epoch* (how many forks have happened),
so a write after a fork never looks like one before it: leaks stay exactly detectable
while the value space stays finite.
"""

from __future__ import annotations

from .spec import Op, ProcessSpec, RefSpec, ThreadSpec

PAGE_KINDS = ("read", "write", "munmap", "dontneed", "mprotect", "pageout", "gup",
              "uffd_register", "uffd_unregister", "uffd_wp", "uffd_unwp", "uffd_wake",
              "pagemap_read", "migrate", "mmap")
REF_KINDS = ("put", "device_read", "device_write")


class Instance:
    """What the model needs to know about one instantiation, beyond its Op."""

    __slots__ = ("template", "page", "ref", "child")

    def __init__(self, template, page=None, ref=None, child=None):
        self.template, self.page, self.ref, self.child = template, page, ref, child


def expand(scenario):
    """(processes, refs, instances): processes P0..Pn-1 with one menu thread each whose
    program is [idle, instantiations...]; reference slots; per thread the Instance list
    aligned with its program."""
    menu = scenario.menu
    names = [f"P{i}" for i in range(menu.processes)]
    pages = [pg.name for pg in scenario.pages]
    refs, ref_slots = [], {}
    for p, pname in enumerate(names):
        for g, tpl in enumerate(menu.templates):
            if tpl.kind != "gup":
                continue
            for page in pages:
                name = f"{pname}.{tpl.written}{g}.{page}"
                ref_slots[p, g, page] = name
                refs.append(RefSpec(name, pname, page, tpl.get("type"),
                                    tpl.get("access") == "write", bool(tpl.get("longterm")),
                                    bool(tpl.get("fast")), bool(tpl.get("coherent")), tpl.loc))
    processes, instances = [], []
    for p, pname in enumerate(names):
        program = [Op("menu_idle", (), menu.loc, "idle")]
        inst = [None]
        for g, tpl in enumerate(menu.templates):
            base = list(tpl.args)
            if tpl.kind in PAGE_KINDS:
                for page in pages:
                    args = [("page", page)] + base
                    if tpl.kind == "gup":
                        args.insert(1, ("as", ref_slots[p, g, page]))
                    program.append(Op(tpl.kind, tuple(args), tpl.loc, tpl.written))
                    inst.append(Instance(g, page=page,
                                         ref=ref_slots.get((p, g, page)) if tpl.kind == "gup"
                                         else None))
            elif tpl.kind in REF_KINDS:
                for (q, h, page), rname in ref_slots.items():
                    if q != p:
                        continue
                    if tpl.kind == "device_write" and menu.templates[h].get("access") != "write":
                        continue
                    program.append(Op(tpl.kind, (("ref", rname),), tpl.loc, tpl.written))
                    inst.append(Instance(g, ref=rname))
            elif tpl.kind == "fork":
                for c in range(1, len(names)):
                    program.append(Op("fork", (("child", names[c]),
                                               ("threads", (f"{names[c]}.menu",))),
                                      tpl.loc, tpl.written))
                    inst.append(Instance(g, child=names[c]))
            else:  # exit, clear_refs, uffd_read
                program.append(Op(tpl.kind, base and tuple(base) or (), tpl.loc, tpl.written))
                inst.append(Instance(g))
        thread = ThreadSpec(pname, "menu", tuple(program), menu.loc)
        processes.append(ProcessSpec(pname, None if p == 0 else names[0], (thread,), menu.loc))
        instances.append(inst)
    return tuple(processes), tuple(refs), instances


def fork_epochs(menu) -> int:
    """How many fork epochs writes are told apart by (forks that can happen, plus one)."""
    forks = 0
    for tpl in menu.templates:
        if tpl.kind == "fork":
            forks += tpl.max if tpl.max is not None else menu.processes - 1
    return min(forks, menu.processes - 1) + 1
