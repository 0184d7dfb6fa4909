"""Property kinds of the generic engine: always (invariants), step (over a transition),
final (final states), sometimes (reachability, by state or by label); the one-process and
the parallel search evaluate them identically."""

from __future__ import annotations

import pytest

from mmcheck.engine.explorer import Sometimes, explore


class Walk:
    """States (a, b); a step adds 1 to a or to b (up to 3 each).  Labels "a" / "b"."""

    def __init__(self, steps=(), finals=(), sometimes=()):
        self._steps, self._finals, self._sometimes = list(steps), list(finals), list(sometimes)

    def initial_states(self):
        return [(0, 0)]

    def successors(self, s):
        a, b = s
        out = []
        if a < 3:
            out.append(("a", (a + 1, b)))
        if b < 3:
            out.append(("b", (a, b + 1)))
        return out

    def canonical(self, s):
        return s

    def is_final(self, s):
        return s == (3, 3)

    def invariants(self):
        return [("small", lambda s: None if s[0] + s[1] < 6 else "too big")]

    def step_checks(self):
        return self._steps

    def final_checks(self):
        return self._finals

    def sometimes(self):
        return self._sometimes


def test_a_step_property_sees_every_transition_and_its_trace_ends_with_it():
    # "b may not move while a == 2" -- a history fact no single state shows
    m = Walk(steps=[("b-frozen", lambda s, lab, t: "b moved at a=2" if lab == "b" and s[0] == 2
                     else None)])
    r = explore(m)
    cex = r.violations["b-frozen"]
    assert cex.depth == 3 and cex.labels[-1] == "b" and cex.states[-2][0] == 2
    assert cex.states[-1] == (2, 1)
    assert r.violations["small"].depth == 6


def test_a_final_property_is_judged_only_on_final_states():
    m = Walk(finals=[("ends-even", lambda s: "odd" if (s[0] + s[1]) % 2 else None),
                     ("ends-at-zero", lambda s: "not zero" if s != (0, 0) else None)])
    r = explore(m)
    assert "ends-even" not in r.violations
    assert r.violations["ends-at-zero"].states[-1] == (3, 3)


def test_sometimes_goals_by_state_and_by_label():
    m = Walk(sometimes=[
        Sometimes("corners", ((3, 0), (0, 3), (4, 4)), lambda s: [s], on="state"),
        Sometimes("moves", ("a", "b", "c"), lambda label: [label], on="label")])
    r = explore(m)
    assert r.unreached == {"corners": [(4, 4)], "moves": ["c"]}


@pytest.mark.parametrize("workers", [2, 3])
def test_the_parallel_search_evaluates_every_kind_the_same(workers):
    def model():
        return Walk(
            steps=[("b-frozen", lambda s, lab, t: "b moved at a=2"
                    if lab == "b" and s[0] == 2 else None)],
            finals=[("ends-at-zero", lambda s: "not zero" if s != (0, 0) else None)],
            sometimes=[Sometimes("corners", ((3, 0), (4, 4)), lambda s: [s]),
                       Sometimes("moves", ("a", "c"), lambda lab: [lab], on="label")])
    one = explore(model())
    many = explore(model(), workers=workers)
    assert one.unreached == many.unreached == {"corners": [(4, 4)], "moves": ["c"]}
    assert {n: t.depth for n, t in one.violations.items()} == \
        {n: t.depth for n, t in many.violations.items()}
    assert many.violations["b-frozen"].labels[-1] == "b"
    assert one.states == many.states and one.transitions == many.transitions


# ------------------------------------------------------------------ in the MM model
from mmcheck import properties as props  # noqa: E402
from mmcheck.model.model import MMModel  # noqa: E402
from mmcheck.model.policy import resolve  # noqa: E402
from mmcheck.model.steps import DUP_MMAP  # noqa: E402
from mmcheck.report.runner import run_policy  # noqa: E402
from mmcheck.report.trace import check_trace  # noqa: E402
from mmcheck.scenario.loader import load_scenario  # noqa: E402


class NeverFork(props.Property):
    """A test-only step property: no transition starts a fork."""
    name, kind = "test-never-fork", "step"

    def compile(self, m):
        def check(s, label, t):
            if m.label_parts(label)[2] == DUP_MMAP.start:
                return "a fork started"
            return None
        return check


class EveryoneExited(props.Property):
    """A test-only final property: at the end, no process is still running."""
    name, kind = "test-everyone-exited", "final"

    def compile(self, m):
        def check(s):
            alive = [m.procs[p] for p in range(len(m.procs)) if m.view(s).proc(p).status == 1]
            return f"{', '.join(alive)} still running at the end" if alive else None
        return check


@pytest.fixture
def test_properties(monkeypatch):
    monkeypatch.setitem(props.REGISTRY, NeverFork.name, NeverFork)
    monkeypatch.setitem(props.REGISTRY, EveryoneExited.name, EveryoneExited)
    return [NeverFork.name, EveryoneExited.name, "no-leak"]


@pytest.mark.parametrize("workers", [1, 2])
def test_step_and_final_plugins_in_the_mm_model(test_properties, workers):
    """Plug-ins of the step and final kinds are routed by the model and judged the same by
    the one-process and the parallel search; their traces replay and still violate."""
    sc = load_scenario("scenarios/shared/shared_anon_fork.yaml")
    run = run_policy(sc, "v5.19", properties=test_properties, workers=workers)
    got = {v.name: (v.verdict, v.depth) for v in run.verdicts}
    # the fork is A's second op: write X (1 step), then dup_mmap starts: depth 2
    assert got[NeverFork.name] == ("violated", 2)
    assert got[EveryoneExited.name][0] == "violated"  # nobody exits in this scenario
    assert got["no-leak"] == ("holds", None)
    m = MMModel(sc, resolve("v5.19"), test_properties)
    for v in run.verdicts:
        if v.trace is not None:
            ok, reason = check_trace(m, v.trace)
            assert ok and reason == v.reason
    # the final property's counterexample ends in a final state
    fin = next(v for v in run.verdicts if v.name == EveryoneExited.name)
    assert fin.reason == "A, B still running at the end"


def test_op_started_is_a_sometimes_property():
    """The vacuity report ("never enabled") is the model's sometimes property op-started."""
    sc = load_scenario("scenarios/shared/shared_anon_fork.yaml")
    m = MMModel(sc, resolve("v5.19"))
    (sm,) = m.sometimes()
    assert sm.name == "op-started" and sm.on == "label"
    assert len(sm.goals) == sum(len(t.program) for t in sc.threads())
    result = explore(m)
    assert result.unreached == {"op-started": []}


@pytest.mark.parametrize("workers", [1, 2])
def test_op_started_reports_the_same_goals_with_workers(workers):
    from mmcheck.scenario.loader import load_scenario_text

    sc = load_scenario_text(
        "name: t\npages: {X: present}\nprocesses:\n  A:\n    threads:\n"
        "      one: [{await: b}, {signal: a}]\n      two: [{await: a}, {signal: b}, {write: X}]\n",
        "t.yaml")
    run = run_policy(sc, "v5.19", workers=workers)
    assert [g.split(" ")[0] for g in run.never_started] == [
        "A.one[1]", "A.one[2]", "A.two[1]", "A.two[2]", "A.two[3]"]
