"""The MM model: a scenario compiled under one policy into something the explorer can run.

`MMModel` implements the explorer's model protocol (initial_states, successors,
canonical, invariants, is_final) over the flat state tuples laid out by the state schema
(mmcheck.model.state).  Transition labels are `(thread, pc, outcome id, argument)`
(mmcheck.model.steps); traces, copy counts and coverage read the step table, never text.
"""

from __future__ import annotations

from .. import properties as props
from . import codec, interpreter, kernel, rules, snapshot as snapshot_mod, steps
from .canonical import Canonicalizer
from .compile import CompiledScenario
from .kernel.common import (
    F_CONTENT, F_FLAGS, F_MAP, F_REF, GUP_PIN_COUNTING_BIAS, P_STATUS, RUNNING, T_PC, T_STEP,
    V_IDEAL, V_LEGIT, V_PTE, V_VMA, ZERO_VALUE,
)
from .state import HEADER, Layout, getter
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
        self.L = L = Layout(self.sizes, schema) if schema is not None else Layout(self.sizes)
        self.proc = L.base["proc"]
        self.pv = L.base["pv"]
        self.th = L.base["thread"]
        self.fr = L.base["frame"]
        self.sl = L.base["slot"]
        self.refix = L.base["ref"]
        self.counter_base = L.start["counter"]
        header = L.base["header"]
        self.events_ix, self.kernel_ix = (header + i for i in HEADER.offsets("events", "kernel"))
        self.frames = Canonicalizer(L, len(self.file_vpages))
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
        self.label_oid = self.label_arg * (len(self.procs) * self.n_vpages + 1)
        self.symmetry = None
        if self.menu_instances is not None:
            self.compile_menu(self.counter_base)
            if symmetry:
                # interchangeable menu processes and pages (mmcheck.model.symmetry)
                self.symmetry = Symmetry(self)
                if not self.symmetry.trivial:
                    self.canonical = self.symmetry.canonical
        # every PTE of every process, in (process, virtual page) order (a C-level getter)
        self.ptes = self._all_ptes = getter([self.pv[p][v] + V_PTE for p in range(len(self.procs))
                                             for v in range(self.n_vpages)])
        # (state, signed targets, writable indices) of the last state the properties saw
        self.pte_cache = [None, None, None]
        self.property_names = tuple(properties or scenario.properties)
        self._checks = [(name, props.REGISTRY[name]().compile(self))
                        for name in self.property_names]

    # ------------------------------------------------------------------ explorer protocol
    def initial_states(self):
        s = [0] * self.L.size
        s[self.kernel_ix] = RUNNING
        for v in self.file_vpages:
            fb = self.fr[self.vpage_file[v]]
            s[fb + F_REF] = 1  # the pagecache's reference
            s[fb + F_FLAGS] = codec.PG_ALLOC | codec.PG_FILE
            s[fb + F_CONTENT] = self.file_value[v]
        next_frame = len(self.file_vpages)
        # a new VMA (mmap_region): readable, writable, VM_SOFTDIRTY (soft-dirty tracking
        # starts with clear_refs), VM_HUGETLB for a hugetlbfs mapping
        rw = codec.VM_READ | codec.VM_WRITE | codec.VM_SOFTDIRTY
        for p in self.roots:
            s[self.proc[p] + P_STATUS] = RUNNING
            for v, pg in enumerate(self.scenario.pages):
                base = self.pv[p][v]
                s[base + V_VMA] = rw | (codec.VM_HUGETLB if self.vpage_class[v] & codec.PG_HUGETLB
                                        else 0)
                s[base + V_LEGIT] = 1 << ZERO_VALUE
                s[base + V_IDEAL] = self.vpage_initial[v]
                if v in self.file_value:
                    s[base + V_LEGIT] |= 1 << self.file_value[v]
                    if pg.state == "present":
                        f = self.vpage_file[v]
                        fb = self.fr[f]
                        s[fb + F_REF] += 1
                        s[fb + F_MAP] += 1
                        s[base + V_PTE] = codec.present(f)
                elif pg.state == "zero":
                    s[base + V_PTE] = codec.zero_page()
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
                    # written by a write fault: maybe_mkwrite(pte_mkdirty()), soft-dirty too
                    s[base + V_PTE] = codec.present(f, codec.dirty_bits(True))
                    s[base + V_IDEAL] = value
                    s[base + V_LEGIT] |= 1 << value
        for p in range(len(self.procs)):
            if p not in self.roots:
                for v in range(self.n_vpages):
                    s[self.pv[p][v] + V_LEGIT] = 1 << ZERO_VALUE
        return [tuple(s)]

    def successors(self, s):
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
                    append((t + lpc * pc + larg * arg + loid * oid, tuple(l)))
            else:
                append((t + lpc * pc + loid * r[0], tuple(r[1])))
        return out

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
        return interpreter.is_final(self, s)

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
        p, v = divmod(arg - 1, self.n_vpages)
        return f"{self.procs[p]}:{self.vpages[v]}"

    def snapshot(self, s) -> dict:
        return snapshot_mod.snapshot(self, s)

    def enabled(self, s, t) -> bool:
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

    def never_started(self, label_counts) -> list[str]:
        """Program steps no explored execution ever started (vacuity report)."""
        started = {self.label_parts(label)[:2] for label in label_counts}
        if self.menu_instances is not None:  # menus: templates no process ever started
            used = {self.menu_instances[t][pc].template for t, pc in started
                    if t < self.n_program_threads and pc}
            return [f"menu template {tpl.written} ({tpl.loc})"
                    for g, tpl in enumerate(self.scenario.menu.templates) if g not in used]
        missing = []
        for t, th in enumerate(self.threads[:self.n_program_threads]):
            for pc, op in enumerate(th.program):
                if (t, pc) not in started:
                    missing.append(f"{th.qualname}[{pc + 1}] {op.describe()} ({op.loc})")
        return missing

    def bound_notes(self, label_counts) -> list[str]:
        """Where an execution reached one of the model's finite resources."""
        counts = self.outcome_counts(label_counts)
        if counts.get(steps.SHRINK.swap_full):
            return [f"the model's swap device ({self.n_slots} slots) filled up in some "
                    f"executions: add_to_swap failed there, as on a full swap device"]
        return []

