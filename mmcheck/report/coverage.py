"""Per-step coverage, like TLC's action coverage: how often the search took each outcome of
each kernel step (mmcheck.model.steps), and which declared outcomes it never took.

A kernel reviewer's first question of a "holds" is whether the search reached the window
at all: an outcome never taken in a function the search did enter (a back-out, a
fall-back, an early COW) says which branch no interleaving exercised.
"""

from __future__ import annotations

from ..model import steps


def by_key(coverage: dict) -> dict:
    """{"function.outcome": transitions} for the outcomes taken."""
    return {steps.outcome(oid).key: n for oid, n in sorted(coverage.items())}


def entered(coverage: dict) -> list[str]:
    """Kernel functions (and pseudo-functions: cpu, scenario, device) the search entered."""
    names = {steps.outcome(oid).function for oid, n in coverage.items() if n}
    return [f for f in steps.FUNCTIONS if f in names]


def never_taken(coverage: dict) -> list[str]:
    """Outcomes of entered functions that no explored transition took."""
    fns = set(entered(coverage))
    return [o.key for o in steps.OUTCOMES if o.function in fns and not coverage.get(o.id)]


def not_entered(coverage: dict) -> list[str]:
    fns = set(entered(coverage))
    return [f for f in steps.FUNCTIONS if f not in fns]


def as_json(coverage: dict) -> dict:
    return {"taken": by_key(coverage), "never_taken": never_taken(coverage),
            "functions_not_entered": not_entered(coverage)}


def rows(runs) -> list[tuple]:
    """(function, outcome, display text, tags, [count per run]) for every outcome of a
    function any of the runs entered, in step-table order."""
    fns = set()
    for r in runs:
        fns.update(entered(r.coverage))
    out = []
    for o in steps.OUTCOMES:
        if o.function in fns:
            out.append((o.function, o.name, o.text, sorted(o.tags),
                        [r.coverage.get(o.id, 0) for r in runs]))
    return out
