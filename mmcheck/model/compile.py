"""A scenario compiled to indices: processes, virtual pages, threads, GUP references, the
values pages can hold, and every program step resolved to what its kernel steps need.

`CompiledScenario` is what the model (mmcheck.model.model.MMModel) builds on; it knows
nothing of policies or of the state layout beyond the sizes it asks for.
"""

from __future__ import annotations

from ..scenario import menu as menu_mod
from ..scenario.spec import Loc, Op, ThreadSpec
from .codec import PG_FILE, PG_HUGETLB, PG_PTE_THP, PG_SHMEM, PG_THP, UFFD_FEATURES

PAGE_CLASS = {"small": 0, "thp": PG_THP, "pte_thp": PG_PTE_THP, "hugetlb": PG_HUGETLB}
# page flags of an object type's page cache pages
OBJECT_PAGE_FLAGS = {"memfd": PG_FILE | PG_SHMEM, "shmem": PG_FILE | PG_SHMEM, "file": PG_FILE,
                     "memfd_hugetlb": PG_FILE | PG_HUGETLB}
NO_OBJECT = -1
# op fields that state an expected result (checked by the op-expectations property)
EXPECT_FIELDS = ("result", "soft_dirty", "uffd_wp", "present", "swapped")
# ops that need the write-tracking ghost state (mmcheck.model.ghost)
TRACKING_OPS = frozenset({"uffd_register", "uffd_unregister", "uffd_wp", "uffd_unwp",
                          "uffd_read", "uffd_wake", "pagemap_read", "uffd_monitor"})
BACKGROUND_ACTORS = (  # (thread name, op kind, scenario setting)
    ("reclaim", "reclaim", "reclaim"),
    ("speculative", "speculative_ref", "speculative_refs"),
    ("lru", "lru_drain", "lru_batch"),
    ("uffd_monitor", "uffd_monitor", "uffd_monitor"),
)


class CompiledOp:
    """A program step with everything its steps need, resolved to indices."""

    __slots__ = ("kind", "start", "spec", "v", "val", "bit", "ref", "pin", "write",
                 "longterm", "fast", "bias", "child", "target", "prot_write", "is_gup",
                 "epoch_ix", "counter_ix", "max_uses", "features", "dontwake", "to",
                 "expect", "uffd_proc")

    def __init__(self, kind, spec, start):
        self.kind = kind
        self.spec = spec
        self.start = start
        self.v = self.val = self.bit = self.ref = self.bias = self.child = self.target = 0
        self.pin = self.write = self.longterm = self.fast = self.prot_write = False
        self.is_gup = kind == "gup"
        self.features = 0  # uffd_register: UFFD_* feature bits
        self.dontwake = False
        self.to = 0  # mremap: the destination vpage
        self.expect = ()  # (field, value) pairs the op's result must match
        self.uffd_proc = None  # uffd_read: whose uffd (None: the thread's process)
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
        self._compile_objects(scenario)
        self._compile_values(scenario)
        self._compile_refs(scenario, pin_bias)
        self._compile_programs(scenario)
        self._compile_background(scenario)
        P, V, T, R = len(self.procs), len(self.vpages), len(self.threads), len(self.refs)
        self.n_vpages = V
        O = len(self.objects)
        uses_swap = bool(scenario.background_setting("reclaim", 0)) or any(
            op.kind == "pageout" for th in self.threads for op in th.program)
        # swap slots in use at once: one per swap PTE, and swapcache pages whose PTEs are
        # gone (at most one per process and vpage too), plus one being added; more and
        # the swap device is full (mmcheck.model.kernel.swap.add_to_swap); a shmem object's
        # page cache may hold one too
        self.n_slots = P * V + 1 + sum(self.obj_shmem) if uses_swap else 0
        # The LRU add batch may hold pages nothing else does (mapped, then zapped): at most
        # its capacity (mmcheck.model.kernel.common.lru_cache_add).
        self.lru_batch_capacity = P * V + 1 if self.lru_batch else 0
        # frames alive at once: each process maps at most one per vpage, a reference may
        # keep one nobody maps, a thread or actor inside an operation holds at most one
        # page that is neither mapped nor referenced (wp_page_copy's new or old page, a
        # zap, a speculative reference), a swap slot may keep one in the swapcache, every
        # object has its page cache page, and the LRU batch may hold some
        self.n_frames = (P * V + R + T + self.n_slots + O + self.lru_batch_capacity)
        self.tracking = any(op.kind in TRACKING_OPS for th in self.threads for op in th.program)
        self.sizes = {"proc": P, "vpage": V, "thread": T, "frame": self.n_frames,
                      "slot": self.n_slots, "ref": R, "counter": self.n_counters, "object": O,
                      "tracking": 1 if self.tracking else 0}

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
        self.vpage_shared = [bool(pg.get("shared")) for pg in sc.pages]
        self.vpage_writable = [pg.get("prot", "rw") == "rw" for pg in sc.pages]
        # adjacent pages (`after:`): their VMAs may merge (mmcheck.model.kernel.mremap)
        self.vpage_neighbours = [[] for _ in sc.pages]
        index = {pg.name: v for v, pg in enumerate(sc.pages)}
        for v, pg in enumerate(sc.pages):
            if pg.get("after") is not None:
                u = index[pg.get("after")]
                self.vpage_neighbours[v].append(u)
                self.vpage_neighbours[u].append(v)
        self.n_program_threads = len(self.threads)
        self.is_menu = [self.menu_instances is not None] * len(self.threads)

    # ------------------------------------------------------------------ objects
    def _compile_objects(self, sc):
        """Memory objects, and which one each process maps at each virtual page
        (`pv_object[p][v]`, NO_OBJECT for anonymous memory).  A declared object, or a
        page's `backing:` object, is the same object in every process; a MAP_SHARED|
        MAP_ANONYMOUS page is one object per initial process, which its children share."""
        self.objects, self.obj_type, self.obj_present = [], [], []
        by_name = {}
        per_root = []  # (object spec, page index) of shared anonymous pages
        for ob in sc.objects:
            if ob.implicit == "shared_anon":
                per_root.append(ob)
                continue
            by_name[ob.name] = len(self.objects)
            self.objects.append(ob.name)
            self.obj_type.append(ob.type)
            self.obj_present.append(ob.state == "present")
        root_of = []
        for p, ps in enumerate(self.sc_processes):
            q = ps
            while q.parent is not None:
                q = next(x for x in self.sc_processes if x.name == q.parent)
            root_of.append(self.proc_index[q.name])
        shared_anon = {}  # (root, object name) -> index
        for r in self.roots:
            for ob in per_root:
                shared_anon[r, ob.name] = len(self.objects)
                name = ob.name if len(self.roots) == 1 else f"{self.procs[r]}:{ob.name}"
                self.objects.append(name)
                self.obj_type.append(ob.type)
                self.obj_present.append(ob.state == "present")
        self.pv_object = []
        for p in range(len(self.procs)):
            row = []
            for pg in sc.pages:
                name = pg.get("object")
                if name is None:
                    row.append(NO_OBJECT)
                elif name in by_name:
                    row.append(by_name[name])
                else:
                    row.append(shared_anon[root_of[p], name])
            self.pv_object.append(row)
        self.obj_flags = [OBJECT_PAGE_FLAGS[t] for t in self.obj_type]
        self.obj_shmem = [bool(f & PG_SHMEM) for f in self.obj_flags]

    # ------------------------------------------------------------------ values
    def _compile_values(self, sc):
        """Every value a page can hold gets an id; writes produce distinct values so that
        what a process observes says exactly where it came from.  FOLLOW is the ideal of a
        private mapping of an object the process has not written: it reads the object's
        data (whatever the object holds, or held since)."""
        self.values = ["zero"]
        self.follow_value = None
        if self.objects:
            self.follow_value = len(self.values)
            self.values.append("(the object's data)")
        self.obj_initial = []
        names = {ob.name: ob for ob in sc.objects}
        for o, name in enumerate(self.objects):
            if not self.obj_present[o]:
                self.obj_initial.append(0)
                continue
            self.obj_initial.append(len(self.values))
            spec = names.get(name) or names[name.split(":", 1)[1]]
            if spec.implicit == "backing":  # the name trace format 1 knew: X@memfd
                self.values.append(name)
            else:
                self.values.append(f"{name}@0")
        self.init_value = {}
        for p in self.roots:
            for v, pg in enumerate(sc.pages):
                if pg.state == "present" and self.pv_object[p][v] == NO_OBJECT:
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
                if op.kind in ("mprotect", "mmap"):
                    c.prot_write = op.get("prot", "rw") == "rw"
                if op.kind == "uffd_register":
                    for name in op.get("features") or ():
                        c.features |= UFFD_FEATURES[name]
                if op.kind == "uffd_unwp":
                    c.dontwake = bool(op.get("dontwake"))
                if op.kind == "mremap":
                    c.to = self.vpage_index[op.get("to")]
                if op.kind == "uffd_read" and op.get("process") is not None:
                    c.uffd_proc = self.proc_index[op.get("process")]
                c.expect = tuple((name, op.get(name)) for name in EXPECT_FIELDS
                                 if op.get(name) is not None)
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
