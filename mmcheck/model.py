"""The MM model: a scenario compiled under one policy into something the explorer can run.

`MMModel` implements the explorer's model protocol (initial_states, successors,
canonical, invariants, is_final) over the flat state tuples of `mmcheck.state`, and turns
states and labels back into readable snapshots for traces.
"""

from __future__ import annotations

from . import menu as menu_mod
from . import properties as props
from . import rules
from .ops import OPS
from .policy import Policy
from .spec import Loc, Op, Scenario, ThreadSpec
from .symmetry import Symmetry
from .state import (
    FL_FILE, FL_HUGETLB, FL_LOCKED, FL_LRU_BATCH, FL_PTE_THP, FL_THP, FR_SLOT, KERNEL, PTE_SWAP,
    PTE_SWX, SL_CACHE, SL_CONTENT, SL_SWC,
    FL_AE, FL_ALLOC, FORKING, FR_CONTENT, FR_FLAGS, FR_MAP, FR_REF, LK_READ, LK_WRITE,
    PROC_HAS_PINNED, PROC_STATUS, PROC_WP_SEQ, PTE_D, PTE_SHIFT, PTE_W, PTE_ZERO, PV_IDEAL,
    PV_LEGIT, PV_PTE, PV_VMA, RUNNING, STATUS_NAMES, TH_LOCK, TH_PC, TH_PHASE, UNBORN,
    VMA_NONE, VMA_R, VMA_RW, ZERO_PTE, ZERO_REF, ZERO_VALUE, Layout,
)
from .transitions import OP_START, PHASE_NAMES, PHASE_STEP, SEGV


class CompiledOp:
    """A program step with everything its transitions need, resolved to indices."""

    __slots__ = ("kind", "start", "spec", "v", "val", "bit", "ref", "pin", "write",
                 "longterm", "fast", "bias", "child", "target", "prot_write", "is_gup",
                 "epoch_ix", "counter_ix", "max_uses")

    def __init__(self, kind, spec):
        self.kind = kind
        self.spec = spec
        self.start = OP_START[kind]
        self.v = self.val = self.bit = self.ref = self.bias = self.child = self.target = 0
        self.pin = self.write = self.longterm = self.fast = self.prot_write = False
        self.is_gup = kind == "gup"
        self.epoch_ix = None  # menu writes: value = val + the fork epoch in this field
        self.counter_ix = None  # menu: the template's use counter
        self.max_uses = None


class MMModel:
    def __init__(self, scenario: Scenario, policy: Policy, properties=None, symmetry=True):
        self.scenario = scenario
        self.policy = policy
        for name, value in rules.bind(policy).items():
            setattr(self, name, value)
        self.lru_batch = bool(scenario.background_setting("lru_batch", False))
        if scenario.menu is not None:
            self.sc_processes, self.sc_refs, self.menu_instances = menu_mod.expand(scenario)
            self.n_counters = len(scenario.menu.templates)
        else:
            self.sc_processes, self.sc_refs, self.menu_instances = (
                scenario.processes, scenario.refs, None)
            self.n_counters = 0
        self._compile_names(scenario)
        self._compile_values(scenario)
        self._compile_refs(scenario)
        self._compile_programs(scenario)
        self._compile_background(scenario)
        P, V, T, R = len(self.procs), len(self.vpages), len(self.threads), len(self.refs)
        self.n_vpages = V
        uses_swap = bool(scenario.background_setting("reclaim", 0)) or any(
            op.kind == "pageout" for th in self.threads for op in th.program)
        # swap slots in use at once: one per swap PTE, and swapcache pages whose PTEs are
        # gone (at most one per process and vpage too), plus one being added
        self.n_slots = P * V + 1 if uses_swap else 0
        # frames alive at once: each process maps at most one per vpage, a reference may
        # keep one nobody maps, a thread or actor inside an operation holds at most one
        # page that is neither mapped nor referenced (wp_page_copy's new or old page, a
        # zap, a speculative reference), a swap slot may keep one in the swapcache, and
        # every file page has its pagecache page
        # The LRU add batch may hold pages nothing else does (mapped, then zapped): at most
        # its capacity (mmcheck.kernel.lru_cache_add).
        self.lru_batch_capacity = P * V + 1 if self.lru_batch else 0
        self.n_frames = (P * V + R + T + self.n_slots + len(self.file_vpages)
                         + self.lru_batch_capacity)
        self.L = Layout(P, V, T, self.n_frames, R, self.n_slots, len(self.file_vpages),
                        self.n_counters)
        L = self.L
        self.proc, self.pv, self.th, self.fr, self.refix = L.proc, L.pv, L.th, L.fr, L.ref
        self.sl = L.sl
        # the explorer's canonical(): bound directly, it is called per successor
        self.canonical = L.canonical
        self._status_ix = [self.proc[self.t_proc[t]] + PROC_STATUS if self.t_proc[t] >= 0
                           else KERNEL for t in range(T)]
        self._thread_table = [(t, self.th[t], self.t_len[t], self._status_ix[t], self.programs[t])
                              for t in range(T)]
        self.is_menu = [t < self.n_program_threads and self.menu_instances is not None
                        for t in range(T)]
        self.symmetry = None
        if self.menu_instances is not None:
            self._compile_menu(scenario)
            if symmetry:
                # interchangeable menu processes and pages (mmcheck.symmetry)
                self.symmetry = Symmetry(self)
                if not self.symmetry.trivial:
                    self.canonical = self.symmetry.canonical
        self.property_names = tuple(properties or scenario.properties)
        self._checks = [(name, props.REGISTRY[name]().compile(self))
                        for name in self.property_names]

    # ------------------------------------------------------------------ compilation
    def _compile_names(self, sc):
        self.procs = [p.name for p in self.sc_processes]
        self.proc_index = {n: i for i, n in enumerate(self.procs)}
        self.vpages = [pg.name for pg in sc.pages]
        self.vpage_index = {n: i for i, n in enumerate(self.vpages)}
        self.threads = [t for p in self.sc_processes for t in p.threads]
        self.thread_names = [t.qualname for t in self.threads]
        self.t_proc = [self.proc_index[t.process] for t in self.threads]
        self.t_len = [len(t.program) for t in self.threads]
        self.proc_threads = [[i for i, tp in enumerate(self.t_proc) if tp == p]
                             for p in range(len(self.procs))]
        self.roots = [i for i, p in enumerate(self.sc_processes) if p.parent is None]
        self.event_bit = {e: 1 << i for i, e in enumerate(sc.events)}
        self.vpage_class = [_PAGE_CLASS[pg.get("kind", "small")] for pg in sc.pages]
        self.file_vpages = [v for v, pg in enumerate(sc.pages)
                            if pg.get("backing", "anon") != "anon"]
        # the pagecache page of a file vpage is frame number i for the i-th file vpage
        self.vpage_file = [None] * len(sc.pages)
        for i, v in enumerate(self.file_vpages):
            self.vpage_file[v] = i
        self.n_program_threads = len(self.threads)

    def _compile_menu(self, sc):
        """Guards and counters of menu instances (mmcheck.menu)."""
        counter_base = self.L.counter_base
        fork_templates = [g for g, tpl in enumerate(sc.menu.templates) if tpl.kind == "fork"]
        epoch_ix = counter_base + fork_templates[0] if fork_templates else None
        for t in range(self.n_program_threads):
            for i, inst in enumerate(self.menu_instances[t]):
                if inst is None:
                    continue
                op = self.programs[t][i]
                tpl = sc.menu.templates[inst.template]
                op.counter_ix = counter_base + inst.template
                op.max_uses = tpl.max
                if op.kind in ("write", "device_write") and epoch_ix is not None:
                    op.epoch_ix = epoch_ix
        self.menu_refs_of = [[r for r in range(len(self.refs)) if self.ref_owner[r] == p]
                             for p in range(len(self.procs))]
        self.menu_ref_limit = sc.menu.references

    def menu_choose(self, s, t):
        """An idle menu thread starts any enabled instantiation (its first step runs now)."""
        out = []
        b = self.th[t]
        p = self.t_proc[t]
        refix = self.refix
        held = sum(1 for r in self.menu_refs_of[p] if s[refix[r]])
        prog = self.programs[t]
        for i in range(1, len(prog)):
            op = prog[i]
            if op.max_uses is not None and s[op.counter_ix] >= op.max_uses:
                continue
            kind = op.kind
            if kind == "gup":
                if s[refix[op.ref]] or held >= self.menu_ref_limit:
                    continue
            elif kind in ("put", "device_read", "device_write"):
                if not s[refix[op.ref]]:
                    continue
            elif kind == "fork":
                # the lowest unborn process slot is the child (the others are the same)
                if s[self.proc[op.child] + PROC_STATUS] != UNBORN or any(
                        s[self.proc[c] + PROC_STATUS] == UNBORN for c in range(1, op.child)):
                    continue
            l0 = list(s)
            l0[b + TH_PC] = i
            if op.max_uses is not None or kind == "fork":  # unbounded ones are not counted
                l0[op.counter_ix] += 1
            r = op.start(self, tuple(l0), t, op)
            if r is None:
                continue
            if type(r) is list:
                out.extend(((t, i, action), tuple(l)) for action, l in r)
            else:
                out.append(((t, i, r[0]), tuple(r[1])))
        return out

    def _compile_background(self, sc):
        """Background actors become threads of no process (status: the kernel's)."""
        actors = [("reclaim", "reclaim", sc.background_setting("reclaim", 0)),
                  ("speculative", "speculative_ref", sc.background_setting("speculative_refs", 0)),
                  ("lru", "lru_drain", 1 if self.lru_batch else 0)]
        for name, kind, count in actors:
            if not count:
                continue
            program = tuple(Op(kind, (), Loc(sc.path, 0), kind) for _ in range(count))
            self.threads.append(ThreadSpec("kernel", name, program, Loc(sc.path, 0)))
            self.thread_names.append(f"kernel.{name}")
            self.t_proc.append(-1)
            self.t_len.append(count)
            self.programs.append([CompiledOp(kind, op) for op in program])

    def _compile_values(self, sc):
        """Every value a page can hold gets an id; writes produce distinct values so that
        what a process observes says exactly where it came from."""
        self.values = ["zero"]
        self.file_value = {}
        for v in self.file_vpages:
            self.file_value[v] = len(self.values)
            self.values.append(f"{sc.pages[v].name}@{sc.pages[v].get('backing')}")
        self.vpage_initial = [self.file_value.get(v, ZERO_VALUE) for v in range(len(sc.pages))]
        self.init_value = {}
        for p in self.roots:
            for pg in sc.pages:
                if pg.state == "present":
                    prefix = "" if len(self.roots) == 1 else f"{self.procs[p]}:"
                    self.init_value[p, pg.name] = len(self.values)
                    self.values.append(f"{prefix}{pg.name}@0")
        self.op_value = {}
        epochs = menu_mod.fork_epochs(sc.menu) if sc.menu is not None else 1
        for t, th in enumerate(self.threads):
            for pc, op in enumerate(th.program):
                if op.kind not in ("write", "device_write"):
                    continue
                self.op_value[t, pc] = len(self.values)
                if sc.menu is not None:  # one value per fork epoch (see mmcheck.menu)
                    what = (f"{th.process}:{op.get('page')}" if op.kind == "write"
                            else f"dev:{op.get('ref')}")
                    self.values.extend(f"{what}/e{e}" for e in range(epochs))
                elif op.kind == "write":
                    self.values.append(f"{th.qualname}#{pc + 1}")
                else:
                    self.values.append(f"dev:{op.get('ref')}@{th.qualname}#{pc + 1}")

    def _compile_refs(self, sc):
        self.refs = [r.name for r in self.sc_refs]
        self.ref_index = {n: i for i, n in enumerate(self.refs)}
        self.ref_owner = [self.proc_index[r.owner] for r in self.sc_refs]
        self.ref_vpage = [self.vpage_index[r.page] for r in self.sc_refs]
        self.ref_pin = [r.type == "pin" for r in self.sc_refs]
        self.ref_bias = [rules.GUP_PIN_COUNTING_BIAS if r.type == "pin" else 1 for r in self.sc_refs]
        self.ref_coherent = [r.coherent for r in self.sc_refs]
        self.ref_site = [None] * len(self.sc_refs)
        for t, th in enumerate(self.threads):
            for pc, op in enumerate(th.program):
                if op.kind == "gup":
                    self.ref_site[self.ref_index[op.get("as")]] = (t, pc)

    def _compile_programs(self, sc):
        self.programs = []
        for t, th in enumerate(self.threads):
            prog = []
            for pc, op in enumerate(th.program):
                c = CompiledOp(op.kind, op)
                if op.get("page") is not None:
                    c.v = self.vpage_index[op.get("page")]
                if (t, pc) in self.op_value:
                    c.val = self.op_value[t, pc]
                    c.bit = 1 << c.val
                if op.kind == "gup":
                    c.ref = self.ref_index[op.get("as")]
                    c.pin = op.get("type") == "pin"
                    c.write = op.get("access") == "write"
                    c.longterm = bool(op.get("longterm"))
                    c.fast = bool(op.get("fast"))
                    c.bias = self.ref_bias[c.ref]
                elif op.get("ref") is not None:
                    c.ref = self.ref_index[op.get("ref")]
                if op.kind == "fork":
                    c.child = self.proc_index[op.get("child")]
                if op.kind == "wait":
                    c.target = self.proc_index[op.get("process")]
                if op.kind in ("signal", "await"):
                    c.bit = self.event_bit[op.get("event")]
                if op.kind == "mprotect":
                    c.prot_write = op.get("prot") == "rw"
                prog.append(c)
            self.programs.append(prog)

    # ------------------------------------------------------------------ explorer protocol
    def initial_states(self):
        L = self.L
        s = [0] * L.size
        s[KERNEL] = RUNNING
        for v in self.file_vpages:
            fb = self.fr[self.vpage_file[v]]
            s[fb + FR_REF] = 1  # the pagecache's reference
            s[fb + FR_FLAGS] = FL_ALLOC | FL_FILE
            s[fb + FR_CONTENT] = self.file_value[v]
        next_frame = len(self.file_vpages)
        for p in self.roots:
            s[self.proc[p] + PROC_STATUS] = RUNNING
            for v, pg in enumerate(self.scenario.pages):
                base = self.pv[p][v]
                s[base + PV_VMA] = VMA_RW
                s[base + PV_LEGIT] = 1 << ZERO_VALUE
                s[base + PV_IDEAL] = self.vpage_initial[v]
                if v in self.file_value:
                    s[base + PV_LEGIT] |= 1 << self.file_value[v]
                    if pg.state == "present":
                        fb = self.fr[self.vpage_file[v]]
                        s[fb + FR_REF] += 1
                        s[fb + FR_MAP] += 1
                        s[base + PV_PTE] = (self.vpage_file[v] + 1) << PTE_SHIFT
                elif pg.state == "zero":
                    s[base + PV_PTE] = ZERO_PTE
                elif pg.state == "present":
                    f = next_frame
                    next_frame += 1
                    value = self.init_value[p, pg.name]
                    fb = self.fr[f]
                    s[fb + FR_REF] = 1
                    s[fb + FR_MAP] = 1
                    s[fb + FR_FLAGS] = FL_ALLOC | self.vpage_class[v] | (FL_AE if self.ae else 0)
                    s[fb + FR_CONTENT] = value
                    s[base + PV_PTE] = ((f + 1) << PTE_SHIFT) | PTE_W | PTE_D
                    s[base + PV_IDEAL] = value
                    s[base + PV_LEGIT] |= 1 << value
        for p in range(len(self.procs)):
            if p not in self.roots:
                for v in range(self.n_vpages):
                    s[self.pv[p][v] + PV_LEGIT] = 1 << ZERO_VALUE
        return [tuple(s)]

    def successors(self, s):
        out = []
        append = out.append
        phase_step = PHASE_STEP
        for t, b, length, status_ix, prog in self._thread_table:
            pc = s[b]
            if pc >= length or s[status_ix] != RUNNING:
                continue
            phase = s[b + 1]
            if not pc and not phase and self.is_menu[t]:
                out.extend(self.menu_choose(s, t))
                continue
            op = prog[pc]
            r = phase_step[phase](self, s, t, op) if phase else op.start(self, s, t, op)
            if r is None:
                continue
            if type(r) is list:  # a choice (background actors pick a target page)
                for action, l in r:
                    append(((t, pc, action), tuple(l)))
            else:
                append(((t, pc, r[0]), tuple(r[1])))
        return out

    def invariants(self):
        return self._checks

    def is_final(self, s):
        """Every thread of every live process has finished its program (background actors
        need not have used up their budget)."""
        for t in range(self.n_program_threads):
            status = s[self._status_ix[t]]
            if self.is_menu[t] and status == RUNNING:
                if s[self.th[t] + TH_PC] and s[self.th[t] + TH_PC] < self.t_len[t]:
                    return False  # inside an op
                continue
            if status == FORKING or (status == RUNNING and s[self.th[t] + TH_PC] < self.t_len[t]):
                return False
        return True

    # ------------------------------------------------------------------ presentation
    def value_name(self, value: int) -> str:
        return self.values[value]

    def legit_values(self, mask: int) -> list[str]:
        return [self.values[i] for i in range(len(self.values)) if mask >> i & 1]

    def frame_name(self, f: int) -> str:
        return f"f{f}"

    def pte_dict(self, pte: int) -> dict:
        if pte == 0:
            return {"kind": "none"}
        if pte & PTE_ZERO:
            return {"kind": "zero", "writable": False}
        if pte & PTE_SWAP:
            return {"kind": "swap", "slot": f"s{(pte >> PTE_SHIFT) - 1}",
                    "exclusive": bool(pte & PTE_SWX)}
        return {"kind": "present", "frame": self.frame_name((pte >> PTE_SHIFT) - 1),
                "writable": bool(pte & PTE_W), "dirty": bool(pte & PTE_D)}

    def ref_target(self, s, r):
        held = s[self.refix[r]]
        if held == ZERO_REF:
            return "zero", ZERO_VALUE
        if held > 0:
            return self.frame_name(held - 1), s[self.fr[held - 1] + FR_CONTENT]
        return None, None

    def snapshot(self, s) -> dict:
        """The layout-independent picture of a state (docs/trace-format.md)."""
        procs = []
        for p, name in enumerate(self.procs):
            pb = self.proc[p]
            locks = [s[self.th[t] + TH_LOCK] for t in self.proc_threads[p]]
            lock = ("write" if LK_WRITE in locks else
                    f"read x{locks.count(LK_READ)}" if LK_READ in locks else "free")
            vpages = []
            legit = set()
            for v, vname in enumerate(self.vpages):
                base = self.pv[p][v]
                vma = s[base + PV_VMA]
                vpages.append({
                    "page": vname,
                    "vma": {VMA_NONE: "unmapped", VMA_R: "r", VMA_RW: "rw"}[vma],
                    "pte": self.pte_dict(s[base + PV_PTE]),
                    "ideal": self.value_name(s[base + PV_IDEAL]),
                })
                legit.update(self.legit_values(s[base + PV_LEGIT]))
            threads = [self._thread_snapshot(s, t, s[pb + PROC_STATUS] == RUNNING)
                       for t in self.proc_threads[p]]
            procs.append({
                "name": name, "status": STATUS_NAMES[s[pb + PROC_STATUS]],
                "mm": {"has_pinned": bool(s[pb + PROC_HAS_PINNED]),
                       "write_protect_seq": s[pb + PROC_WP_SEQ], "mmap_lock": lock},
                "vpages": vpages, "threads": threads,
                "legit": sorted(legit, key=self.values.index),
            })
        actors = list(range(self.n_program_threads, len(self.threads)))
        if actors:
            procs.append({
                "name": "kernel", "status": "running",
                "mm": {"has_pinned": False, "write_protect_seq": 0, "mmap_lock": "free"},
                "vpages": [], "legit": [],
                "threads": [self._thread_snapshot(s, t, True) for t in actors]})
        frames = []
        for f in range(self.n_frames):
            fb = self.fr[f]
            flags = s[fb + FR_FLAGS]
            if not (flags or s[fb + FR_REF] or s[fb + FR_MAP]):
                continue
            pins = sum(1 for r in range(len(self.refs))
                       if self.ref_pin[r] and s[self.refix[r]] == f + 1)
            kind = ("file" if flags & FL_FILE else "thp" if flags & FL_THP else
                    "pte-mapped thp" if flags & FL_PTE_THP else
                    "hugetlb" if flags & FL_HUGETLB else "anon")
            names = [name for bit, name in _FLAG_NAMES if flags & bit]
            if s[fb + FR_SLOT]:
                names.append(f"SwapCache s{s[fb + FR_SLOT] - 1}")
            if not flags & FL_ALLOC:
                names.append("FREED")
            frames.append({
                "id": self.frame_name(f), "kind": kind, "ref": s[fb + FR_REF],
                "map": s[fb + FR_MAP], "pins": pins, "flags": names,
                "content": self.value_name(s[fb + FR_CONTENT]),
            })
        slots = [{"id": f"s{i}", "swap_count": s[b + SL_SWC], "swapcache": bool(s[b + SL_CACHE]),
                  "content": self.value_name(s[b + SL_CONTENT])}
                 for i, b in enumerate(self.sl) if s[b + SL_SWC] or s[b + SL_CACHE]]
        refs = []
        for r, spec in enumerate(self.sc_refs):
            frame, content = self.ref_target(s, r)
            refs.append({
                "name": spec.name, "owner": spec.owner, "page": spec.page, "type": spec.type,
                "access": "write" if spec.write else "read", "longterm": spec.longterm,
                "coherent": spec.coherent, "frame": frame,
                "sees": None if content is None else self.value_name(content),
            })
        snap = {"processes": procs, "frames": frames, "refs": refs}
        if self.n_slots:
            snap["swap_slots"] = slots
        return snap

    def _thread_snapshot(self, s, t, running) -> dict:
        b = self.th[t]
        pc, phase = s[b + TH_PC], s[b + TH_PHASE]
        prog = self.threads[t].program
        if self.is_menu[t] and not pc and not phase:
            pc = len(prog)  # idle: show no current op
        status = ("idle" if self.is_menu[t] and pc == len(prog) and phase != SEGV else
                  "done" if pc >= len(prog) else
                  "blocked" if running and not self._enabled(s, t) else "running")
        if phase == SEGV:
            status = "killed (SIGSEGV)"
        return {"name": self.thread_names[t], "pc": pc,
                "op": prog[pc].describe() if pc < len(prog) else None,
                "step": PHASE_NAMES.get(phase, "") if phase != SEGV else "", "status": status}

    def _enabled(self, s, t) -> bool:
        b = self.th[t]
        pc, phase = s[b + TH_PC], s[b + TH_PHASE]
        if not pc and not phase and self.is_menu[t]:
            return bool(self.menu_choose(s, t))
        op = self.programs[t][pc]
        r = PHASE_STEP[phase](self, s, t, op) if phase else op.start(self, s, t, op)
        return r is not None

    def describe_label(self, label) -> dict:
        t, pc, action = label
        th = self.threads[t]
        op = th.program[pc]
        spec = OPS.get(op.written or op.kind)
        kernel = spec.kernel if spec else BACKGROUND_KERNEL[op.kind]
        return {"thread": th.qualname, "op": op.describe(), "action": action,
                "kernel": kernel, "pc": pc}

    # ------------------------------------------------------------------ metrics
    @staticmethod
    def copy_counts(label_counts) -> tuple[int, int]:
        """(COW copies, unnecessary COW copies) over the explored transitions."""
        copies = unnecessary = 0
        for (_t, _pc, action), n in label_counts.items():
            if action.startswith("wp_page_copy: install") or action.startswith("copy_present_page"):
                copies += n
                if "unnecessary" in action:
                    unnecessary += n
        return copies, unnecessary

    def bound_notes(self, label_counts) -> list[str]:
        """Where an execution reached one of the model's finite resources."""
        from .swap import SWAP_FULL

        if any(action == SWAP_FULL for (_t, _pc, action) in label_counts):
            return [f"the model's swap device ({self.n_slots} slots) filled up in some "
                    f"executions: add_to_swap failed there, as on a full swap device"]
        return []

    def never_started(self, label_counts) -> list[str]:
        """Program steps no explored execution ever started (vacuity report)."""
        started = {(t, pc) for (t, pc, _a) in label_counts}
        missing = []
        if self.menu_instances is not None:  # menus: templates no process ever started
            used = {self.menu_instances[t][pc].template for t, pc in started
                    if t < self.n_program_threads and pc}
            return [f"menu template {tpl.written} ({tpl.loc})"
                    for g, tpl in enumerate(self.scenario.menu.templates) if g not in used]
        for t, th in enumerate(self.threads[:self.n_program_threads]):
            for pc, op in enumerate(th.program):
                if (t, pc) not in started:
                    missing.append(f"{th.qualname}[{pc + 1}] {op.describe()} ({op.loc})")
        return missing


_FLAG_NAMES = ((FL_AE, "AnonExclusive"), (FL_LOCKED, "Locked"), (FL_LRU_BATCH, "LRU batch"))
_PAGE_CLASS = {"small": 0, "thp": FL_THP, "pte_thp": FL_PTE_THP, "hugetlb": FL_HUGETLB}
BACKGROUND_KERNEL = {
    "reclaim": "kswapd / direct reclaim -> shrink_page_list",
    "speculative_ref": "folio_try_get_rcu (pagecache lookup, GUP-fast, compaction)",
    "lru_drain": "lru_add_drain",
}
