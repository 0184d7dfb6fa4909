"""Counterexample traces: from the explorer's canonical path to a replayable trace document.

The explorer returns canonical states (frames renamed at every step).  For people, the
trace is re-executed from the real initial state by following the labels, so frame names
stay stable along the trace; the result is the JSON document of docs/trace-format.md.
"""

from __future__ import annotations

from .errors import ModelError
from .model import MMModel

FORMAT = "mmcheck-trace/1"


class ReplayError(Exception):
    pass


def replay(model: MMModel, labels) -> list[tuple]:
    """States visited when following `labels` from the initial state (raw, not canonical)."""
    state = model.initial_states()[0]
    states = [state]
    for i, label in enumerate(labels):
        label = tuple(label)
        for lab, nxt in model.successors(state):
            if lab == label:
                state = nxt
                break
        else:
            thread = model.thread_names[label[0]] if label and label[0] < len(
                model.thread_names) else label[0]
            raise ReplayError(f"step {i + 1}: {thread} cannot do '{label[-1]}' here "
                              f"(the scenario or policy no longer allows this trace)")
        states.append(state)
    return states


def build_trace(model: MMModel, labels, prop: str | None, reason: str | None) -> dict:
    """The trace document for the execution `labels` of `model`.  The reason is recomputed
    on the replayed final state, whose frame names are the ones the trace shows."""
    states = replay(model, labels)
    if prop is not None:
        check = dict(model.invariants()).get(prop)
        found = check(states[-1]) if check else None
        if found is None:
            raise ModelError(f"a trace of {prop} does not violate it when replayed")
        reason = found
    steps = [{"index": 0, "thread": None, "action": "initial", "op": None, "kernel": None,
              "state": model.snapshot(states[0])}]
    for i, (label, state) in enumerate(zip(labels, states[1:]), start=1):
        d = model.describe_label(tuple(label))
        steps.append({"index": i, "thread": d["thread"], "action": d["action"], "op": d["op"],
                      "kernel": d["kernel"], "state": model.snapshot(state)})
    sc = model.scenario
    return {
        "format": FORMAT,
        "scenario": sc.path,
        "scenario_name": sc.name,
        "policy": {"name": model.policy.name, "base": model.policy.base,
                   "knobs": model.policy.as_dict()},
        "property": prop,
        "reason": reason,
        "labels": [list(label) for label in labels],
        "steps": steps,
    }


def check_trace(model: MMModel, trace: dict) -> tuple[bool, str]:
    """Re-execute a saved trace; (True, reason) if its final state still violates the
    trace's property, else (False, what happened instead)."""
    states = replay(model, trace["labels"])
    prop = trace.get("property")
    if prop is None:
        return True, "trace replays (no property recorded)"
    checks = dict(model.invariants())
    if prop not in checks:
        raise ReplayError(f"property '{prop}' is not checked by this scenario")
    reason = checks[prop](states[-1])
    if reason is None:
        return False, f"the final state no longer violates {prop}"
    return True, reason
