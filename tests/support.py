"""Helpers shared by the model tests."""

from __future__ import annotations

from collections import deque

from mmcheck.scenario.loader import load_scenario
from mmcheck.model.model import MMModel
from mmcheck.model.policy import resolve
from mmcheck.report.runner import policy_defs


def model_for(path, policy, **kw):
    """The compiled model of a scenario file under a policy."""
    sc = load_scenario(path)
    return MMModel(sc, resolve(policy, policy_defs(sc)), **kw)


def reachable_raw(model):
    """Every reachable state without any reduction (a plain BFS written for the tests)."""
    init = model.initial_states()
    seen = set(init)
    queue = deque(init)
    while queue:
        s = queue.popleft()
        for _label, nxt in model.successors(s):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def reachable_within(model, depth):
    """{state: its BFS depth} for every state within `depth` steps, no reduction at all."""
    seen = {s: 0 for s in model.initial_states()}
    queue = deque(seen)
    while queue:
        s = queue.popleft()
        if seen[s] == depth:
            continue
        for _label, t in model.successors(s):
            if t not in seen:
                seen[t] = seen[s] + 1
                queue.append(t)
    return seen
