"""Which executions of a scenario a program should run on the kernel.

For a property the model finds violated under the policy, its shortest counterexample.
For one that holds, the execution that would break it in another era (the shortest
counterexample under the first preset that violates it): running it on a fixed kernel
shows the fix.  A property no era violates gets the plain sequential execution (program
order, one operation at a time).  Executions are cut at the counterexample's last step
and completed: an operation the trace started runs to its end, as a system call does.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model.model import MMModel
from ..model.policy import PRESETS, resolve
from ..report.runner import policy_defs, run_policy
from ..report.trace import ReplayError, _follow
from ..scenario.spec import Scenario
from . import schedule as schedule_mod


@dataclass
class Witness:
    """One execution to run: its model (policy), labels, and what it is evidence of."""

    model: MMModel
    labels: list
    why: str  # e.g. "no-leak: counterexample under v5.7"
    properties: list  # the properties whose evidence it is

    @property
    def label(self) -> str:
        """Short: `v5.7 counterexample` or `sequential execution`."""
        if self.why.startswith("sequential"):
            return "sequential execution"
        return f"{self.model.policy.name} counterexample"

    def schedule(self) -> schedule_mod.Schedule:
        return schedule_mod.build(self.model, self.labels)

    def key(self) -> tuple:
        """The policy, the operations' order and overlaps: executions with the same key
        make the same program (another era's may expect other results on the way)."""
        s = self.schedule()
        return (self.model.policy.name, tuple((r.thread, r.pc) for r in s.runs),
                tuple(tuple((s.runs[j].thread, s.runs[j].pc) for j in p.runs) for p in s.points))


def complete(m: MMModel, labels: list) -> list:
    """`labels` extended until every operation it started has finished (the thread moved
    past it), taking that thread's first enabled step each time."""
    state = m.initial_states()[0]
    for lab in labels:
        state = next(nxt for l2, nxt in m.successors(state) if l2 == lab)
    labels = list(labels)
    started = {}
    for lab in labels:
        t, pc = m.label_parts(lab)[:2]
        started[t] = pc
    for _ in range(1000):
        # an op is open while its thread's pc still points at it (a menu thread: until
        # it is idle again, pc 0)
        open_threads = [t for t, pc in started.items()
                        if m.threads[t].process != "kernel" and m.decode(state)[m.th[t]] == pc
                        and not (m.is_menu[t] and pc == 0)]
        if not open_threads:
            break
        moves = [(lab, nxt) for lab, nxt in m.successors(state)
                 if m.label_parts(lab)[0] in open_threads]
        if not moves:
            break  # blocked (e.g. waiting for a monitor that the execution never ran)
        lab, state = moves[0]
        labels.append(lab)
    return labels


def sequentialize(m: MMModel, labels: list, prop: str, limit: int = 20_000) -> list | None:
    """An execution that runs the operations of `labels` in the order they started there,
    each to its end before the next, and still violates `prop` (None if there is none).
    Shortest counterexamples often interleave steps that need not interleave (a zap
    finishing after the write that leaks): user space can replay the sequential one."""
    order = [(r.thread, r.pc) for r in schedule_mod.build(m, labels).runs]
    budget = [limit]

    def search(state, k, started, states, path):
        budget[0] -= 1
        if budget[0] < 0:
            return None
        if path and m.judge(prop, states, path) is not None:
            return list(path)
        if k == len(order):
            return None
        t, pc = order[k]
        if started and m.decode(state)[m.th[t]] != pc:  # the op has finished: on to the next
            return search(state, k + 1, False, states, path)
        for lab, nxt in m.successors(state):
            if m.label_parts(lab)[:2] == (t, pc):
                found = search(nxt, k, True, states + [nxt], path + [lab])
                if found is not None:
                    return found
        return None

    start = m.initial_states()[0]
    return search(start, 0, False, [start], [])


def _sequential_if_possible(m: MMModel, labels: list, prop: str | None) -> list:
    if prop and prop in m.property_kind:
        seq = sequentialize(m, labels, prop)
        if seq is not None:
            return seq
    return labels


def from_trace(m: MMModel, trace: dict) -> Witness:
    """The execution a saved trace records (completed; run one operation at a time when
    that violates the property as well)."""
    prop = trace.get("property")
    if prop is not None and prop not in m.property_kind:
        raise ReplayError(f"property '{prop}' is not checked by this scenario")
    _states, labels = _follow(m, trace["labels"], trace.get("format", "mmcheck-trace/2"))
    labels = _sequential_if_possible(m, labels, prop)
    return Witness(m, complete(m, labels),
                   f"{prop}: counterexample under {m.policy.name}" if prop else "trace",
                   [prop] if prop else [])


def for_scenario(sc: Scenario, policy_name: str, extra_defs=(),
                 max_states: int | None = None) -> tuple[dict, list[Witness]]:
    """(the model's verdicts under the policy, the executions that test them);
    `max_states` bounds every search (default: the scenario's bound)."""
    defs = policy_defs(sc, extra_defs)
    run = run_policy(sc, policy_name, defs=defs, max_states=max_states)
    verdicts = {v.name: v.verdict for v in run.verdicts}
    witnesses: list[Witness] = []
    pending = []
    for v in run.verdicts:
        if v.trace is not None:
            witnesses.append(_from_run_trace(sc, policy_name, defs, v.trace,
                                             f"{v.name}: counterexample under {policy_name}",
                                             v.name))
        else:
            pending.append(v.name)
    for era in PRESETS:
        if not pending or era == policy_name:
            continue
        other = run_policy(sc, era, defs=defs, max_states=max_states)
        for v in other.verdicts:
            if v.name in pending and v.trace is not None:
                witnesses.append(_from_run_trace(sc, era, defs, v.trace,
                                                 f"{v.name}: counterexample under {era}",
                                                 v.name))
                pending.remove(v.name)
    own = any(w.model.policy.name == policy_name for w in witnesses)
    if pending or not own:
        # also when every witness came from another era: the policy's own execution shows
        # whether the kernel takes the policy's path at all
        m = MMModel(sc, resolve(policy_name, defs))
        witnesses.append(Witness(m, schedule_mod.sequential_execution(m),
                                 "sequential execution (no era violates "
                                 + (", ".join(pending) or "anything") + ")", pending))
    merged: dict = {}
    for w in witnesses:
        if w.key() in merged:
            merged[w.key()].properties += w.properties
            merged[w.key()].why += "; " + w.why
        else:
            merged[w.key()] = w
    return verdicts, list(merged.values())


def _from_run_trace(sc, policy_name, defs, trace, why, prop) -> Witness:
    m = MMModel(sc, resolve(policy_name, defs))
    _states, labels = _follow(m, trace["labels"], trace["format"])
    return Witness(m, complete(m, _sequential_if_possible(m, labels, prop)), why, [prop])
