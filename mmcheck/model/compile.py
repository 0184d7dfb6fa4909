"""A scenario compiled to indices: processes, virtual pages, threads, GUP references, the
values pages can hold, and every program step resolved to what its kernel steps need.

`CompiledScenario` is what the model (mmcheck.model.model.MMModel) builds on; it knows
nothing of policies or of the state layout beyond the sizes it asks for.
"""

from __future__ import annotations

from ..scenario import menu as menu_mod
from ..scenario.spec import Loc, Op, ThreadSpec
from .codec import PG_HUGETLB, PG_PTE_THP, PG_THP

PAGE_CLASS = {"small": 0, "thp": PG_THP, "pte_thp": PG_PTE_THP, "hugetlb": PG_HUGETLB}
BACKGROUND_ACTORS = (  # (thread name, op kind, scenario setting)
    ("reclaim", "reclaim", "reclaim"),
    ("speculative", "speculative_ref", "speculative_refs"),
    ("lru", "lru_drain", "lru_batch"),
)


class CompiledOp:
    """A program step with everything its steps need, resolved to indices."""

    __slots__ = ("kind", "start", "spec", "v", "val", "bit", "ref", "pin", "write",
                 "longterm", "fast", "bias", "child", "target", "prot_write", "is_gup",
                 "epoch_ix", "counter_ix", "max_uses")

    def __init__(self, kind, spec, start):
        self.kind = kind
        self.spec = spec
        self.start = start
        self.v = self.val = self.bit = self.ref = self.bias = self.child = self.target = 0
        self.pin = self.write = self.longterm = self.fast = self.prot_write = False
        self.is_gup = kind == "gup"
        self.epoch_ix = None  # menu writes: value = val + the fork epoch in this field
        self.counter_ix = None  # menu: the template's use counter
        self.max_uses = None


class CompiledScenario:
    """The scenario's names and programs as indices (no policy, no state layout)."""

    def __init__(self, scenario, starts: dict, pin_bias: int):
        self.scenario = scenario
        self._starts = starts
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
        self._compile_refs(scenario, pin_bias)
        self._compile_programs(scenario)
        self._compile_background(scenario)
        P, V, T, R = len(self.procs), len(self.vpages), len(self.threads), len(self.refs)
        self.n_vpages = V
        uses_swap = bool(scenario.background_setting("reclaim", 0)) or any(
            op.kind == "pageout" for th in self.threads for op in th.program)
        # swap slots in use at once: one per swap PTE, and swapcache pages whose PTEs are
        # gone (at most one per process and vpage too), plus one being added; more and
        # the swap device is full (mmcheck.model.kernel.swap.add_to_swap)
        self.n_slots = P * V + 1 if uses_swap else 0
        # The LRU add batch may hold pages nothing else does (mapped, then zapped): at most
        # its capacity (mmcheck.model.kernel.common.lru_cache_add).
        self.lru_batch_capacity = P * V + 1 if self.lru_batch else 0
        # frames alive at once: each process maps at most one per vpage, a reference may
        # keep one nobody maps, a thread or actor inside an operation holds at most one
        # page that is neither mapped nor referenced (wp_page_copy's new or old page, a
        # zap, a speculative reference), a swap slot may keep one in the swapcache, every
        # file page has its pagecache page, and the LRU batch may hold some
        self.n_frames = (P * V + R + T + self.n_slots + len(self.file_vpages)
                         + self.lru_batch_capacity)
        self.sizes = {"proc": P, "vpage": V, "thread": T, "frame": self.n_frames,
                      "slot": self.n_slots, "ref": R, "counter": self.n_counters}

    # ------------------------------------------------------------------ names
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
        self.vpage_class = [PAGE_CLASS[pg.get("kind", "small")] for pg in sc.pages]
        self.file_vpages = [v for v, pg in enumerate(sc.pages)
                            if pg.get("backing", "anon") != "anon"]
        # the pagecache page of a file vpage is frame number i for the i-th file vpage
        self.vpage_file = [None] * len(sc.pages)
        for i, v in enumerate(self.file_vpages):
            self.vpage_file[v] = i
        self.n_program_threads = len(self.threads)
        self.is_menu = [self.menu_instances is not None] * len(self.threads)

    # ------------------------------------------------------------------ values
    def _compile_values(self, sc):
        """Every value a page can hold gets an id; writes produce distinct values so that
        what a process observes says exactly where it came from."""
        self.values = ["zero"]
        self.file_value = {}
        for v in self.file_vpages:
            self.file_value[v] = len(self.values)
            self.values.append(f"{sc.pages[v].name}@{sc.pages[v].get('backing')}")
        self.vpage_initial = [self.file_value.get(v, 0) for v in range(len(sc.pages))]
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
                if sc.menu is not None:  # one value per fork epoch (see scenario.menu)
                    what = (f"{th.process}:{op.get('page')}" if op.kind == "write"
                            else f"dev:{op.get('ref')}")
                    self.values.extend(f"{what}/e{e}" for e in range(epochs))
                elif op.kind == "write":
                    self.values.append(f"{th.qualname}#{pc + 1}")
                else:
                    self.values.append(f"dev:{op.get('ref')}@{th.qualname}#{pc + 1}")

    # ------------------------------------------------------------------ references
    def _compile_refs(self, sc, pin_bias):
        self.refs = [r.name for r in self.sc_refs]
        self.ref_index = {n: i for i, n in enumerate(self.refs)}
        self.ref_owner = [self.proc_index[r.owner] for r in self.sc_refs]
        self.ref_vpage = [self.vpage_index[r.page] for r in self.sc_refs]
        self.ref_pin = [r.type == "pin" for r in self.sc_refs]
        self.ref_bias = [pin_bias if r.type == "pin" else 1 for r in self.sc_refs]
        self.ref_coherent = [r.coherent for r in self.sc_refs]
        self.ref_site = [None] * len(self.sc_refs)
        for t, th in enumerate(self.threads):
            for pc, op in enumerate(th.program):
                if op.kind == "gup":
                    self.ref_site[self.ref_index[op.get("as")]] = (t, pc)

    # ------------------------------------------------------------------ programs
    def _compile_programs(self, sc):
        self.programs = []
        for t, th in enumerate(self.threads):
            prog = []
            for pc, op in enumerate(th.program):
                c = CompiledOp(op.kind, op, self._starts.get(op.kind))
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

    def _compile_background(self, sc):
        """Background actors become threads of no process (status: the kernel's)."""
        for name, kind, setting in BACKGROUND_ACTORS:
            value = sc.background_setting(setting, 0)
            count = (1 if value else 0) if isinstance(value, bool) else value
            if not count:
                continue
            program = tuple(Op(kind, (), Loc(sc.path, 0), kind) for _ in range(count))
            self.threads.append(ThreadSpec("kernel", name, program, Loc(sc.path, 0)))
            self.thread_names.append(f"kernel.{name}")
            self.t_proc.append(-1)
            self.t_len.append(count)
            self.is_menu.append(False)
            self.programs.append([CompiledOp(kind, op, self._starts[kind]) for op in program])

    def compile_menu(self, counter_base):
        """Guards and counters of menu instances (mmcheck.scenario.menu)."""
        sc = self.scenario
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
