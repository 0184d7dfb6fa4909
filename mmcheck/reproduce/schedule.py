"""From an execution of the model to a schedule a user-space program can follow.

A trace orders kernel *steps*; user space can only order whole *operations* (system calls
and memory accesses).  An operation run (one op of one thread, from its first step to its
last) is ordered when no other operation's step falls inside it, or when the only steps
inside it happen while it is blocked in `handle_userfault` (the kernel itself orders those:
the monitor's read waits for the message).  Runs that overlap otherwise race: a program
can only start them together and repeat the attempt (`--attempts`); the steps that made
them overlap are listed.  Background activity the scenario declares (reclaim, speculative
references, LRU batches) has no user-space trigger at a chosen moment and is listed as
not driven; a background uffd monitor is a real monitor thread, ordered by the kernel.

Expectations: at every point where the program observes memory (a `read`, a `device_read`,
and the final observation of every live process), the checker's ideal memory
(mmcheck.model.ghost) in the replayed model state says what may be seen there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model import codec
from ..model.kernel.common import (O_IDEAL, O_LEGIT, P_STATUS, R_DETACHED, RUNNING, V_IDEAL,
                                   V_LEGIT, V_PTE, V_VMA)
from ..model.model import MMModel
from ..model.steps import outcome

# background actors a program cannot trigger at the trace's moment
UNDRIVEN = {"reclaim": "reclaim (shrink_page_list) at a chosen moment",
            "speculative_refs": "a speculative page reference (folio_try_get_rcu)",
            "lru_batch": "a per-CPU LRU add batch holding or dropping its reference"}
# the background actor a program runs as a thread of its own (kernel-ordered)
MONITOR = "uffd_monitor"
BLOCKING = ("handle_userfault", "wp")  # the thread sleeps until the monitor wakes it


@dataclass
class Expect:
    """What an observation of process p at page v may see: `ideal` (a value id, or None
    when any of `legit` is right: a private mapping of an object before its own write) and
    `legit` (bit mask of value ids)."""

    ideal: int | None
    legit: int


@dataclass
class Run:
    """One operation of one thread, as the execution ran it."""

    thread: int
    pc: int
    steps: list[int]  # positions in the execution (0-based label indices)
    blocked_after: int | None = None  # position of the step that blocked it (uffd-wp)
    expect: Expect | None = None  # for read / device_read: what the observation may see
    owner_maps: bool = True  # device_read of a coherent reference: the owner maps the page

    @property
    def first(self) -> int:
        return self.steps[0]


@dataclass
class Point:
    """A place in the global order: these runs start (`resume`: a blocked run continues)."""

    runs: list[int]  # indices into Schedule.runs
    resume: bool = False


@dataclass
class Schedule:
    model: MMModel
    labels: list
    states: list  # the fields of each state of the execution (arrays)
    runs: list[Run]
    points: list[Point]
    races: list[list[int]]  # groups of run indices that overlap inside the kernel
    race_steps: list[str]  # the trace's steps that user space cannot order, as text
    undriven: list[str]  # background steps with no user-space trigger
    final: dict = field(default_factory=dict)  # (process, vpage) -> Expect, live mappings
    held: dict = field(default_factory=dict)  # reference -> Expect at the end (held refs)
    monitor: set = field(default_factory=set)  # processes whose uffd a background monitor serves

    @property
    def sequential(self) -> bool:
        """Every operation ordered from user space (no race, nothing undriven)."""
        return not self.races and not self.undriven

    def thread_runs(self, t: int) -> list[int]:
        return [i for i, r in enumerate(self.runs) if r.thread == t]


def expect_at(m: MMModel, s, p: int, v: int) -> Expect:
    """The ideal memory (mmcheck.model.ghost) of process p at page v in state s, as the
    properties read it (no-leak: legit; no-lost-write: ideal)."""
    o = m.pv_object[p][v]
    if m.vpage_shared[v]:
        return Expect(s[m.ob[o] + O_IDEAL], s[m.ob[o] + O_LEGIT])
    own_ideal, own_legit = s[m.pv[p][v] + V_IDEAL], s[m.pv[p][v] + V_LEGIT]
    if o < 0:
        return Expect(own_ideal, own_legit)
    legit = own_legit | s[m.ob[o] + O_LEGIT]
    return Expect(None if own_ideal == m.follow_value else own_ideal, legit)


def _union(groups: list[set]) -> list[set]:
    merged: list[set] = []
    for g in groups:
        for other in [x for x in merged if x & g]:
            merged.remove(other)
            g = g | other
        merged.append(g)
    return merged


def build(m: MMModel, labels: list) -> Schedule:
    """The schedule of the execution `labels` (the model's own labels, from its initial
    state)."""
    state = m.initial_states()[0]
    states = [m.L.decode(state)]  # the fields of each state, read below and by cgen
    for label in labels:
        state = next(nxt for lab, nxt in m.successors(state) if lab == label)
        states.append(m.L.decode(state))
    by_key: dict = {}
    current: dict = {}
    runs: list[Run] = []
    undriven, monitor = [], set()
    parts = [m.label_parts(lab) for lab in labels]
    for i, (t, pc, oid, arg) in enumerate(parts):
        th = m.threads[t]
        if th.process == "kernel":
            if th.name == MONITOR:
                monitor.add(m.where_name(arg).split(":")[0])
            elif th.name in UNDRIVEN:
                text = m.describe_label(labels[i])
                undriven.append(f"step {i + 1}: {UNDRIVEN[th.name]}: {text['action']}")
            continue
        if m.is_menu[t]:
            # a menu thread runs instance `pc` from idle (pc 0) back to idle: every start
            # is a new run, even of the same instance
            if states[i][m.th[t]] == 0:
                current[t] = (t, pc, i)
            key = current[t]
        else:
            key = (t, pc)
        if key not in by_key:
            by_key[key] = len(runs)
            runs.append(Run(t, pc, []))
        run = runs[by_key[key]]
        run.steps.append(i)
        out = outcome(oid)
        if (out.function, out.name) == BLOCKING:
            run.blocked_after = i
    # overlaps: another run's step inside a run's span, outside a uffd-wp sleep
    position_run = {}
    for k, run in enumerate(runs):
        for i in run.steps:
            position_run[i] = k
    groups, race_steps = [], []
    for k, run in enumerate(runs):
        for a, b in zip(run.steps, run.steps[1:]):
            inside = {position_run[i] for i in range(a + 1, b) if i in position_run}
            if not inside:
                continue
            if run.blocked_after == a:
                continue  # asleep in handle_userfault: the kernel orders the others
            groups.append({k} | inside)
            for i in range(a + 1, b):
                if i in position_run:
                    race_steps.append(_step_text(m, labels, i))
    races = [sorted(g) for g in _union(groups)]
    in_race = {k: g for g in races for k in g}
    # points: every run starts at its first step; a blocked run resumes after its sleep;
    # the runs of a race start together
    points: list[tuple[int, Point]] = []
    seen_groups = set()
    for k, run in enumerate(runs):
        g = in_race.get(k)
        if g is not None:
            if id(g) in seen_groups:
                continue
            seen_groups.add(id(g))
            points.append((min(runs[j].first for j in g), Point(list(g))))
        else:
            points.append((run.first, Point([k])))
        if run.blocked_after is not None:
            later = [i for i in run.steps if i > run.blocked_after]
            if later:
                points.append((later[0], Point([k], resume=True)))
    points.sort(key=lambda x: x[0])
    sched = Schedule(m, list(labels), states, runs, [p for _, p in points], races,
                     sorted(set(race_steps)), undriven, monitor=monitor)
    _expectations(sched)
    return sched


def _step_text(m, labels, i) -> str:
    d = m.describe_label(labels[i])
    return f"step {i + 1}: {d['thread']} {d['action']} (in {d['op']})"


def _expectations(sched: Schedule) -> None:
    m, states = sched.model, sched.states
    for run in sched.runs:
        op = m.programs[run.thread][run.pc]  # compiled: page .v, reference .ref
        p = m.t_proc[run.thread]
        at = states[run.steps[-1]]  # the state before the run's last step
        if op.kind == "read":
            run.expect = expect_at(m, at, p, op.v)
        elif op.kind == "device_read":
            r = op.ref
            owner, v = m.ref_owner[r], m.ref_vpage[r]
            run.expect = expect_at(m, at, owner, v)
            run.owner_maps = bool(at[m.pv[owner][v] + V_VMA]) and not at[m.refix[r] + R_DETACHED]
    last = states[-1]
    for p in range(len(m.procs)):
        if last[m.proc[p] + P_STATUS] != RUNNING:
            continue
        for v in range(m.n_vpages):
            base = m.pv[p][v]
            if last[base + V_VMA] and codec.kind(last[base + V_PTE]) != codec.NONE:
                sched.final[p, v] = expect_at(m, last, p, v)
    for r in range(len(m.refs)):
        if last[m.refix[r]] and last[m.proc[m.ref_owner[r]] + P_STATUS] == RUNNING:
            sched.held[r] = expect_at(m, last, m.ref_owner[r], m.ref_vpage[r])


def sequential_execution(m: MMModel, limit: int = 10_000) -> list:
    """One complete execution that runs every operation to its end before the next starts
    (program order, the lowest thread first; background actors only where nothing else
    can move, a uffd monitor among them): the labels."""
    state = m.initial_states()[0]
    labels: list = []
    current = None
    for _ in range(limit):
        succ = m.successors(state)
        if not succ:
            break
        def rank(item):
            t = m.label_parts(item[0])[0]
            kernel = m.threads[t].process == "kernel"
            return (kernel and m.threads[t].name != MONITOR, kernel, t != current, t)
        succ = [x for x in succ
                if not (m.threads[m.label_parts(x[0])[0]].process == "kernel"
                        and m.threads[m.label_parts(x[0])[0]].name in UNDRIVEN)]
        if not succ:
            break
        label, state = min(succ, key=rank)
        current = m.label_parts(label)[0]
        labels.append(label)
    return labels
