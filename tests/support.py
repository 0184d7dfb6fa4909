"""Helpers shared by the model tests."""

from __future__ import annotations

from collections import deque

from mmcheck.loader import load_scenario
from mmcheck.model import MMModel
from mmcheck.policy import resolve
from mmcheck.runner import policy_defs


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
