"""Counterexample traces: from the explorer's canonical path to a replayable trace document.

The explorer returns canonical states (frames renamed at every step).  For people, the
trace is re-executed from the real initial state by following the labels, so frame names
stay stable along the trace; the result is the JSON document of docs/trace-format.md.

Format 2 (`mmcheck-trace/2`, written now) records each step as the thread, the program
counter, the kernel function and outcome of the step table (mmcheck.model.steps) and the
outcome's argument (the process:page a choice picked).  Format 1 recorded the action text
instead; `replay` reads both (format 1 through each outcome's `legacy` texts).
"""

from __future__ import annotations

from ..errors import ModelError
from ..model import steps
from ..model.model import MMModel

FORMAT = "mmcheck-trace/2"
FORMATS = ("mmcheck-trace/1", FORMAT)


class ReplayError(Exception):
    pass


def label_to_json(model: MMModel, label) -> list:
    """[thread, pc, function, outcome, where]: names, not ids, so the file outlives a
    renumbering of the step table."""
    t, pc, oid, arg = model.label_parts(label)
    out = steps.outcome(oid)
    return [t, pc, out.function, out.name, model.where_name(arg) or None]


def _matches(model, label, saved, fmt) -> bool:
    if list(model.label_parts(label)[:2]) != saved[:2]:
        return False
    if fmt == "mmcheck-trace/1":
        return saved[2] in model.legacy_texts(label)
    return label_to_json(model, label)[2:] == list(saved[2:])


def replay(model: MMModel, labels, fmt: str = FORMAT) -> list[tuple]:
    """States visited when following saved `labels` from the initial state (raw, not
    canonical)."""
    return _follow(model, labels, fmt)[0]


def _follow(model: MMModel, labels, fmt: str):
    """(states, the model's own labels) of a saved execution."""
    state = model.initial_states()[0]
    states, taken = [state], []
    for i, saved in enumerate(labels):
        saved = list(saved)
        for lab, nxt in model.successors(state):
            if _matches(model, lab, saved, fmt):
                state = nxt
                taken.append(lab)
                break
        else:
            thread = model.thread_names[saved[0]] if 0 <= saved[0] < len(
                model.thread_names) else saved[0]
            what = saved[2] if fmt == "mmcheck-trace/1" else ".".join(map(str, saved[2:4]))
            raise ReplayError(f"step {i + 1}: {thread} cannot do '{what}' here "
                              f"(the scenario or policy no longer allows this trace)")
        states.append(state)
    return states, taken


def _replay_labels(model, labels):
    """States following in-memory labels (tuples of ids)."""
    state = model.initial_states()[0]
    states = [state]
    for label in labels:
        state = next(nxt for lab, nxt in model.successors(state) if lab == label)
        states.append(state)
    return states


def build_trace(model: MMModel, labels, prop: str | None, reason: str | None) -> dict:
    """The trace document for the execution `labels` (the model's own label tuples).  The
    reason is recomputed on the replayed final state, whose frame names are the ones the
    trace shows."""
    states = _replay_labels(model, labels)
    if prop is not None:
        found = model.judge(prop, states, labels) if prop in model.property_kind else None
        if found is None:
            raise ModelError(f"a trace of {prop} does not violate it when replayed")
        reason = found
    out_steps = [{"index": 0, "thread": None, "action": "initial", "op": None, "kernel": None,
                  "state": model.snapshot(states[0])}]
    for i, (label, state) in enumerate(zip(labels, states[1:]), start=1):
        d = model.describe_label(label)
        out_steps.append({"index": i, "thread": d["thread"], "action": d["action"],
                          "op": d["op"], "kernel": d["kernel"], "function": d["function"],
                          "outcome": d["outcome"], "state": model.snapshot(state)})
    sc = model.scenario
    return {
        "format": FORMAT,
        "scenario": sc.path,
        "scenario_name": sc.name,
        "policy": {"name": model.policy.name, "base": model.policy.base,
                   "knobs": model.policy.as_dict()},
        "property": prop,
        "reason": reason,
        "labels": [label_to_json(model, label) for label in labels],
        "steps": out_steps,
    }


def check_trace(model: MMModel, trace: dict) -> tuple[bool, str]:
    """Re-execute a saved trace; (True, reason) if its final state still violates the
    trace's property, else (False, what happened instead)."""
    states, taken = _follow(model, trace["labels"], trace.get("format", FORMAT))
    prop = trace.get("property")
    if prop is None:
        return True, "trace replays (no property recorded)"
    if prop not in model.property_kind:
        raise ReplayError(f"property '{prop}' is not checked by this scenario")
    reason = model.judge(prop, states, taken)
    if reason is None:
        return False, f"the final state no longer violates {prop}"
    return True, reason
