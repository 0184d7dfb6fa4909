"""The MM model: a scenario compiled under one policy into something the explorer can run.

`MMModel` implements the explorer's model protocol (initial_states, successors,
canonical, invariants, is_final) over the states laid out by the state schema
(mmcheck.model.state): stored as bytes, read and written through their decoded arrays.
Transition labels are `(thread, pc, outcome id, argument)` (mmcheck.model.steps); traces,
copy counts and coverage read the step table, never text.
"""

from __future__ import annotations

from array import array

from .. import properties as props
from ..engine.explorer import Sometimes
from . import codec, interpreter, kernel, reduction, rules, snapshot as snapshot_mod, steps
from .canonical import Canonicalizer
from .compile import CompiledScenario
from .kernel.common import (
    F_CONTENT, F_FLAGS, F_MAP, F_REF, GUP_PIN_COUNTING_BIAS, O_ENTRY, O_IDEAL, O_LEGIT,
    P_STATUS, RUNNING, T_PC, T_STEP, V_IDEAL, V_LEGIT, V_PTE, V_VMA, ZERO_VALUE,
    vm_page_prot_writable,
)
from .state import HEADER, SCHEMA, THREAD_REC, Layout, getter
from .symmetry import Symmetry

_ = kernel  # the kernel step modules register their steps on import


class MMModel(CompiledScenario):
    def __init__(self, scenario, policy, properties=None, symmetry=True, schema=None):
        """`schema`: the state schema (mmcheck.model.state.SCHEMA unless a test model
        declares more fields)."""
        super().__init__(scenario, steps.STARTS, GUP_PIN_COUNTING_BIAS)
        self.policy = policy
        for name, value in rules.bind(policy).items():
            setattr(self, name, value)
        # a field is an int32 unless some mask (one bit per value, frame or event) needs
        # more than its 31 bits (array assignments raise OverflowError, never wrap)
        widest = max(len(self.values), self.n_frames, len(self.event_bit))
        self.L = L = Layout(self.sizes, schema if schema is not None else SCHEMA,
                            "i" if widest <= 31 else "q")
        self._decoded = [None, None]  # the last stored state decoded, and its array
        self.cleared_thread = array(L.typecode, [0] * (THREAD_REC.size - 1))  # op_done
        self.proc = L.base["proc"]
        self.pv = L.base["pv"]
        self.th = L.base["thread"]
        self.fr = L.base["frame"]
        self.sl = L.base["slot"]
        self.refix = L.base["ref"]
        self.counter_base = L.start["counter"]
        header = L.base["header"]
        self.events_ix, self.kernel_ix = (header + i for i in HEADER.offsets("events", "kernel"))
        self.ob = L.base["object"]
        self.uffd = L.base["uffd"]  # [tracking][process] (empty without write tracking)
        self.wt = L.base["wt"]  # [tracking][process][vpage]
        self.frames = Canonicalizer(L)
        # the explorer's canonical(): bound directly, it is called per successor
        self.canonical = self.frames.canonical
        self.status_ix = [self.proc[self.t_proc[t]] + P_STATUS if self.t_proc[t] >= 0
                          else self.kernel_ix for t in range(len(self.threads))]
        self._thread_table = [(t, self.th[t], self.t_len[t], self.status_ix[t], self.programs[t],
                               self.is_menu[t]) for t in range(len(self.threads))]
        self._step_fns = [s.fn for s in steps.STEPS]
        # a transition label is one int (cheap to hash and count): thread, program counter,
        # outcome id and argument packed; `label_parts` unpacks it
        n_threads = len(self.threads)
        self.label_pc = n_threads
        self.label_arg = n_threads * (max(self.t_len, default=0) + 2)
        self.label_oid = self.label_arg * (len(self.procs) * self.n_vpages
                                           + len(self.objects) + 1)
        # the threads and program steps partial-order reduction may take alone
        self.reduction_table = reduction.compile_reduction(self)
        self.symmetry = None
        if self.menu_instances is not None:
            self.compile_menu(self.counter_base)
            self.menu_table = interpreter.compile_menu_table(self)
            if symmetry:
                # interchangeable menu processes and pages (mmcheck.model.symmetry)
                self.symmetry = Symmetry(self)
                if not self.symmetry.trivial:
                    self.canonical = self.symmetry.canonical
        # the parallel search's partition key (mmcheck.engine.parallel.owner_of): the
        # pages' contents, the processes' records and the menu counters.  Few transitions
        # change them (writes, DMA, COW copies, fork, exit, a counted menu op), so 80-90%
        # of the successors stay with their parent's worker, and the work is spread
        # within 2-10% of evenly over two workers on the menus and the benchmark.
        key = getter(L.positions(record="frame", name="content")
                     + L.positions(record="proc") + L.positions(record="counter"))
        decode = L.decode
        self.partition_key = lambda state: key(decode(state))
        # every PTE of every process, in (process, virtual page) order (a C-level getter)
        self.ptes = self._all_ptes = getter([self.pv[p][v] + V_PTE for p in range(len(self.procs))
                                             for v in range(self.n_vpages)])
        # (state, signed targets, writable indices) of the last state the properties saw
        self.pte_cache = [None, None, None]
        self.property_names = tuple(properties or scenario.properties)
        by_kind: dict = {kind: [] for kind in props.KINDS}
        self.not_applicable = set()  # properties with nothing to judge in this scenario
        for name in self.property_names:
            prop = props.REGISTRY[name]()
            check = prop.compile(self)
            if check is None:
                self.not_applicable.add(name)
                continue
            by_kind[prop.kind].append((name, self._decoding(check, prop.kind)))
        self.property_kind = {name: props.REGISTRY[name].kind for name in self.property_names}
        self._checks, self._step_checks, self._final_checks = (
            by_kind["always"], by_kind["step"], by_kind["final"])

    # ------------------------------------------------------------------ explorer protocol
    def initial_states(self):
        s = [0] * self.L.size
        s[self.kernel_ix] = RUNNING
        # objects first: their page cache pages take the lowest frames
        next_frame = 0
        for o, ob in enumerate(self.ob):
            s[ob + O_IDEAL] = self.obj_initial[o]
            s[ob + O_LEGIT] = 1 << ZERO_VALUE | 1 << self.obj_initial[o]
            if self.obj_present[o]:
                f = next_frame
                next_frame += 1
                fb = self.fr[f]
                s[fb + F_REF] = 1  # the page cache's reference
                s[fb + F_FLAGS] = codec.PG_ALLOC | self.obj_flags[o]
                s[fb + F_CONTENT] = self.obj_initial[o]
                s[ob + O_ENTRY] = codec.present(f)
        for p in self.roots:
            s[self.proc[p] + P_STATUS] = RUNNING
            for v, pg in enumerate(self.scenario.pages):
                base = self.pv[p][v]
                o = self.pv_object[p][v]
                s[base + V_VMA] = vm_flags = self.initial_vm_flags(p, v)
                s[base + V_LEGIT] = 1 << ZERO_VALUE
                s[base + V_IDEAL] = ZERO_VALUE if o < 0 else self.follow_value
                if pg.state == "zero":
                    s[base + V_PTE] = codec.zero_page()
                elif pg.state == "present" and o >= 0:
                    # read-faulted (do_read_fault): the page cache page, R/O unless a
                    # shared writable mapping wants no write notification (vm_page_prot)
                    f = codec.frame(s[self.ob[o] + O_ENTRY])
                    fb = self.fr[f]
                    s[fb + F_REF] += 1
                    s[fb + F_MAP] += 1
                    s[base + V_PTE] = codec.present(
                        f, codec.WRITE if vm_page_prot_writable(self, vm_flags) else 0)
                elif pg.state == "present":
                    f = next_frame
                    next_frame += 1
                    value = self.init_value[p, pg.name]
                    fb = self.fr[f]
                    s[fb + F_REF] = 1
                    s[fb + F_MAP] = 1
                    s[fb + F_FLAGS] = (codec.PG_ALLOC | self.vpage_class[v]
                                       | (codec.PG_ANON_EXCLUSIVE if self.ae else 0))
                    s[fb + F_CONTENT] = value
                    # written by a write fault: maybe_mkwrite(pte_mkdirty()), soft-dirty
                    # too (with PROT_READ: written, then mprotect(PROT_READ))
                    s[base + V_PTE] = codec.present(f, codec.DIRTY | codec.SOFT_DIRTY | (
                        codec.WRITE if self.vpage_writable[v] else 0))
                    s[base + V_IDEAL] = value
                    s[base + V_LEGIT] |= 1 << value
        for p in range(len(self.procs)):
            if p not in self.roots:
                for v in range(self.n_vpages):
                    s[self.pv[p][v] + V_LEGIT] = 1 << ZERO_VALUE
        return [self.L.encode(s)]

    def initial_vm_flags(self, p, v) -> int:
        """vm_flags of a new VMA (mmap_region): VM_READ, VM_WRITE unless PROT_READ,
        VM_SHARED for MAP_SHARED, VM_SOFTDIRTY (soft-dirty tracking starts with clear_refs),
        VM_HUGETLB for hugetlbfs; VM_ANON_VMA once an anonymous page was faulted in (the
        scenario's present anonymous pages, a THP's huge zero page: do_huge_pmd_anonymous_page
        calls anon_vma_prepare before choosing the huge zero page; not the small zero page)."""
        pg = self.scenario.pages[v]
        o = self.pv_object[p][v]
        flags = codec.VM_READ | codec.VM_SOFTDIRTY
        if self.vpage_writable[v]:
            flags |= codec.VM_WRITE
        if self.vpage_class[v] & codec.PG_HUGETLB:
            flags |= codec.VM_HUGETLB
        if self.vpage_shared[v]:
            flags |= codec.VM_SHARED
        if o >= 0 and self.obj_type[o] == "file":
            flags |= codec.VM_WRITENOTIFY_FS
        if o < 0 and (pg.state == "present" or (pg.state == "zero"
                                                and self.vpage_class[v] & codec.PG_THP)):
            flags |= codec.VM_ANON_VMA
        return flags

    def decode(self, state):
        """The fields of a stored state (an array, not to be written: steps copy it).
        The last one is kept: the explorer hands the same state to successors() or to
        every property in turn."""
        last = self._decoded
        if state is last[0]:
            return last[1]
        if type(state) is not bytes:
            if type(state) is array:  # decoded already
                return state
            raise TypeError(f"a stored state is bytes, not {type(state).__name__}")
        a = self.L.decode(state)
        last[0], last[1] = state, a
        return a

    def _decoding(self, check, kind):
        """A property check over decoded states, called with stored ones."""
        decode, fresh = self.decode, self.L.decode
        if kind == "step":
            return lambda s, label, t: check(decode(s), label, fresh(t))
        return lambda s: check(decode(s))

    def fingerprint(self, state) -> int:
        """The fingerprint store's 64-bit hash of a stored state (mmcheck.engine.fingerprints):
        hash() of its fields as a tuple of ints, the same in every process and run (hash()
        of bytes is salted per process, and checkpoints and worker processes need one
        function)."""
        return hash(tuple(self.L.decode(state)))

    def successors(self, state):
        s = self.decode(state)
        out = []
        append = out.append
        step_fns = self._step_fns
        lpc, larg, loid = self.label_pc, self.label_arg, self.label_oid
        for t, b, length, status_ix, prog, menu in self._thread_table:
            pc = s[b + T_PC]
            if pc >= length or s[status_ix] != RUNNING:
                continue
            step = s[b + T_STEP]
            if not pc and not step and menu:
                out.extend(interpreter.menu_choose(self, s, t))
                continue
            op = prog[pc]
            r = step_fns[step](self, s, t, op) if step else op.start(self, s, t, op)
            if r is None:
                continue
            if type(r) is list:  # a choice (which mapping, which page)
                for (oid, arg), l in r:
                    append((t + lpc * pc + larg * arg + loid * oid, l.tobytes()))
            else:
                append((t + lpc * pc + loid * r[0], r[1].tobytes()))
        return out

    # an ample step advances a scripted thread's program counter, which no step ever
    # lowers (op_done, exit, SIGSEGV only raise it): no cycle contains one (C3)
    ample_progress = True

    def ample_sets(self, s, transitions):
        """Partial-order reduction's candidate ample sets (mmcheck.model.reduction)."""
        return reduction.ample_sets(self, self.reduction_table, self.decode(s), transitions)

    def label(self, t, pc, oid, arg=0) -> int:
        """The label of thread t's transition at program counter pc with an outcome."""
        return t + self.label_pc * pc + self.label_arg * arg + self.label_oid * oid

    def label_parts(self, label) -> tuple:
        """(thread, pc, outcome id, argument) of a label."""
        rest, t = divmod(label, self.label_pc)
        rest, pc = divmod(rest, self.label_arg // self.label_pc)
        oid, arg = divmod(rest, self.label_oid // self.label_arg)
        return t, pc, oid, arg

    def invariants(self):
        return self._checks

    def step_checks(self):
        return self._step_checks

    def final_checks(self):
        return self._final_checks

    def judge(self, prop, states, labels):
        """What property `prop` says of the execution `states` (connected by `labels`): the
        reason it is violated at its end, or None (a step property judges the last
        transition, a final one the last state if it is final)."""
        kind = self.property_kind[prop]
        if prop in self.not_applicable:
            return None
        if kind == "step":
            if not labels:
                return None
            return dict(self._step_checks)[prop](states[-2], labels[-1], states[-1])
        if kind == "final":
            if not self.is_final(states[-1]):
                return None
            return dict(self._final_checks)[prop](states[-1])
        return dict(self._checks)[prop](states[-1])

    def pte_targets(self, s):
        """`codec.signed_targets` of `ptes(s)`, computed once per state for all the
        properties that look at every PTE (the explorer checks them one after another).
        Properties read `pte_cache` directly when it already holds `s`."""
        cache = self.pte_cache
        if s is not cache[0]:
            cache[1], cache[2] = codec.scan(self._all_ptes(s))
            cache[0] = s
        return cache[1]

    def pte_writable(self, s):
        """`codec.writable_indices` of `ptes(s)` (cached like `pte_targets`)."""
        if s is not self.pte_cache[0]:
            self.pte_targets(s)
        return self.pte_cache[2]

    def is_final(self, s):
        return interpreter.is_final(self, self.decode(s))

    # ------------------------------------------------------------------ presentation
    def view(self, s):
        """Named access to a state's fields (mmcheck.model.state.StateView)."""
        return self.L.view(s)

    def value_name(self, value: int) -> str:
        return self.values[value]

    def legit_values(self, mask: int) -> list[str]:
        return [self.values[i] for i in range(len(self.values)) if mask >> i & 1]

    def frame_name(self, f: int) -> str:
        return f"f{f}"

    def where_name(self, arg: int) -> str:
        """The process:page a label's argument names."""
        if not arg:
            return ""
        if arg > len(self.procs) * self.n_vpages:
            return f"object {self.objects[arg - 1 - len(self.procs) * self.n_vpages]}"
        p, v = divmod(arg - 1, self.n_vpages)
        return f"{self.procs[p]}:{self.vpages[v]}"

    def snapshot(self, s) -> dict:
        return snapshot_mod.snapshot(self, self.decode(s))

    def enabled(self, s, t) -> bool:
        s = self.decode(s)
        b = self.th[t]
        pc, step = s[b + T_PC], s[b + T_STEP]
        if not pc and not step and self.is_menu[t]:
            return bool(interpreter.menu_choose(self, s, t))
        op = self.programs[t][pc]
        r = self._step_fns[step](self, s, t, op) if step else op.start(self, s, t, op)
        return r is not None

    def describe_label(self, label) -> dict:
        """Thread, op, outcome and kernel function of a transition label."""
        t, pc, oid, arg = self.label_parts(label)
        out = steps.outcome(oid)
        fn = steps.FUNCTIONS[out.function]
        th = self.threads[t]
        return {"thread": th.qualname, "op": th.program[pc].describe(),
                "action": out.text.format(where=self.where_name(arg)),
                "kernel": f"{fn.name} ({fn.source})", "pc": pc,
                "function": out.function, "outcome": out.name,
                "where": self.where_name(arg) or None}

    def legacy_texts(self, label) -> tuple:
        """The action texts trace format 1 recorded for this label."""
        _t, _pc, oid, arg = self.label_parts(label)
        where = self.where_name(arg)
        return tuple(text.format(where=where) for text in steps.outcome(oid).legacy)

    # ------------------------------------------------------------------ metrics
    def outcome_counts(self, label_counts) -> dict:
        """Transitions per outcome id."""
        out: dict = {}
        loid = self.label_oid
        for label, n in label_counts.items():
            oid = label // loid
            out[oid] = out.get(oid, 0) + n
        return out

    def copy_counts(self, label_counts) -> dict:
        """COW copies over the explored transitions, by the step table's tags: all copies,
        the unnecessary ones, the ones that lose the process's own pin."""
        counts = self.outcome_counts(label_counts)
        total = {tag: 0 for tag in (steps.COPY, steps.UNNECESSARY, steps.PIN_LOST)}
        for oid, n in counts.items():
            tags = steps.outcome(oid).tags
            for tag in total:
                if tag in tags:
                    total[tag] += n
        return total

    # ------------------------------------------------------------------ other property kinds
    def sometimes(self):
        """Reachability (vacuity): every program step of the scenario is started by some
        explored execution (menus: every template is used).  The explorer reports the
        goals no transition reached; `mmcheck run` prints them as "never enabled"."""
        if self.menu_instances is not None:
            goals = tuple(range(len(self.scenario.menu.templates)))
            n, inst = self.n_program_threads, self.menu_instances

            def cover(label):
                t, pc, _oid, _arg = self.label_parts(label)
                return (inst[t][pc].template,) if t < n and pc else ()
        else:
            goals = tuple((t, pc) for t in range(self.n_program_threads)
                          for pc in range(self.t_len[t]))
            goal_set = frozenset(goals)

            def cover(label):
                key = self.label_parts(label)[:2]
                return (key,) if key in goal_set else ()
        out = [Sometimes("op-started", goals, cover, on="label")]
        if self.tracking:
            out.append(self._exemptions_used())
        return out

    def _exemptions_used(self):
        """Which documented exemptions of wp-reported a landed store (or a device write)
        used (mmcheck.model.ghost HIT bits), so the verdict can say so."""
        from . import ghost
        from .kernel.common import W_WP
        names = {bit << ghost.HIT_SHIFT: text for bit, text in ghost.EXEMPTIONS.items()}
        fields = [w + W_WP for row in self.wt[0] for w in row]

        def cover(state):
            hits = 0
            for i in fields:
                hits |= state[i]
            return [text for bit, text in names.items() if hits & bit]
        return Sometimes("wp-exemptions", tuple(names.values()), cover, on="state")

    def describe_goal(self, goal) -> str:
        """An op-started goal for people."""
        if self.menu_instances is not None:
            tpl = self.scenario.menu.templates[goal]
            return f"menu template {tpl.written} ({tpl.loc})"
        t, pc = goal
        th = self.threads[t]
        op = th.program[pc]
        return f"{th.qualname}[{pc + 1}] {op.describe()} ({op.loc})"

    def bound_notes(self, label_counts) -> list[str]:
        """Where an execution reached one of the model's finite resources."""
        counts = self.outcome_counts(label_counts)
        if counts.get(steps.SHRINK.swap_full):
            return [f"the model's swap device ({self.n_slots} slots) filled up in some "
                    f"executions: add_to_swap failed there, as on a full swap device"]
        return []

