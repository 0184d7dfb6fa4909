"""Tests of the generic explorer on toy models that have nothing to do with memory management."""

from __future__ import annotations

import itertools
from math import comb

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmcheck.engine.explorer import ExplorationProgress, Result, Trace, concretize, explore


# ----------------------------------------------------------------------------- toy models


class Counters:
    """N independent counters, each 0..K; action ("inc", i) increments counter i.

    With ``symmetric=True`` the counters are interchangeable and ``canonical`` sorts them.
    ``bad`` maps invariant names to predicates; a state satisfying one violates it.
    """

    def __init__(self, n, k, symmetric=False, bad=None):
        self.n = n
        self.k = k
        self.symmetric = symmetric
        self.bad = bad or {}

    def initial_states(self):
        return [(0,) * self.n]

    def successors(self, state):
        for i, value in enumerate(state):
            if value < self.k:
                yield ("inc", i), state[:i] + (value + 1,) + state[i + 1 :]

    def canonical(self, state):
        return tuple(sorted(state)) if self.symmetric else state

    def is_final(self, state):
        return all(value == self.k for value in state)

    def invariants(self):
        def make_check(name, predicate):
            return lambda state: f"{name} holds at {state}" if predicate(state) else None

        return [(name, make_check(name, predicate)) for name, predicate in self.bad.items()]


class Graph:
    """An explicit graph: ints as states, ``edges[s]`` its successors, label = target."""

    def __init__(self, edges, initial, bad=(), final=None, canonical_map=None):
        self.edges = edges
        self.initial = list(initial)
        self.bad = set(bad)
        self.final = final
        self.canonical_map = canonical_map or {}
        if final is not None:
            self.is_final = lambda state: state in self.final

    def initial_states(self):
        return self.initial

    def successors(self, state):
        return [(target, target) for target in self.edges.get(state, ())]

    def canonical(self, state):
        return self.canonical_map.get(state, state)

    def invariants(self):
        return [("good", lambda state: f"bad state {state}" if state in self.bad else None)]


def same_outcome(first: Result, second: Result) -> bool:
    """Results are equal apart from timing."""
    fields = [
        "complete", "bounded_by", "states", "transitions", "max_depth", "label_counts",
        "final_states", "stuck_states", "stuck_trace", "violations", "level_sizes",
    ]
    return all(getattr(first, name) == getattr(second, name) for name in fields)


def assert_trace_replays(model, trace: Trace, canonicalize=True):
    """Each step of the trace is a successor of the previous state under its label."""
    canonical = model.canonical if canonicalize else (lambda state: state)
    assert len(trace.labels) == len(trace.states) - 1 == trace.depth
    initial = {canonical(state) for state in model.initial_states()}
    assert trace.states[0] in initial
    for source, label, target in zip(trace.states, trace.labels, trace.states[1:]):
        successors = {lab: canonical(succ) for lab, succ in model.successors(source)}
        assert successors[label] == target


def naive_distances(model, canonicalize=True):
    """Shortest distance to every reachable (canonical) state by repeated relaxation."""
    canonical = model.canonical if canonicalize else (lambda state: state)
    distance = {canonical(state): 0 for state in model.initial_states()}
    changed = True
    while changed:
        changed = False
        for state, dist in list(distance.items()):
            for _, successor in model.successors(state):
                successor = canonical(successor)
                if distance.get(successor, dist + 2) > dist + 1:
                    distance[successor] = dist + 1
                    changed = True
    return distance


# ------------------------------------------------------------------------------- counting


@pytest.mark.parametrize("n,k", [(1, 5), (2, 3), (3, 4), (4, 2)])
def test_counters_state_and_transition_counts(n, k):
    result = explore(Counters(n, k), canonicalize=False)
    assert result.complete and result.bounded_by is None
    assert result.states == (k + 1) ** n
    assert result.max_depth == n * k
    # Counter i can be incremented in every state where it is < K: K * (K+1)^(N-1) states.
    per_counter = k * (k + 1) ** (n - 1)
    assert result.transitions == n * per_counter
    assert result.label_counts == {("inc", i): per_counter for i in range(n)}
    # Level d holds the tuples whose counters sum to d.
    expected_levels = [0] * (n * k + 1)
    for state in itertools.product(range(k + 1), repeat=n):
        expected_levels[sum(state)] += 1
    assert result.level_sizes == expected_levels
    assert result.final_states == 1 and result.stuck_states == 0 and result.stuck_trace is None
    assert result.violations == {} and result.ok


@pytest.mark.parametrize("n,k", [(2, 3), (3, 4), (4, 3), (5, 2)])
def test_counters_with_symmetry_reduction(n, k):
    result = explore(Counters(n, k, symmetric=True))
    assert result.complete
    assert result.states == comb(n + k, n)  # multisets of size N over K+1 values
    assert result.max_depth == n * k
    # Every stored state is a sorted multiset; each entry < K gives one transition. Summed
    # over all multisets, the entries equal to K number sum_j C(N-j+K, K) (at least j of them).
    entries_at_k = sum(comb(n - j + k, k) for j in range(1, n + 1))
    assert result.transitions == n * comb(n + k, n) - entries_at_k
    enumerated = sum(
        sum(1 for value in multiset if value < k)
        for multiset in itertools.combinations_with_replacement(range(k + 1), n)
    )
    assert result.transitions == enumerated


def test_canonicalize_false_never_calls_canonical():
    class NoCanonical(Counters):
        def canonical(self, state):
            raise AssertionError("canonical() must not be called")

    result = explore(NoCanonical(3, 2), canonicalize=False)
    assert result.states == 27


def test_invariants_checked_once_per_distinct_state():
    calls = []

    class Counted(Counters):
        def invariants(self):
            return [("never", lambda state: calls.append(state))]

    result = explore(Counted(3, 3))
    assert len(calls) == result.states == 64
    assert len(set(calls)) == len(calls)


def test_violated_invariant_is_no_longer_checked():
    calls = []

    def check(state):
        calls.append(state)
        return "first state is bad"

    class AlwaysBad(Counters):
        def invariants(self):
            return [("bad", check)]

    result = explore(AlwaysBad(3, 3))
    assert calls == [(0, 0, 0)]
    assert result.violations["bad"].depth == 0
    assert result.violations["bad"].states == [(0, 0, 0)]
    assert result.violations["bad"].labels == []
    assert result.states == 64  # the search went on after the violation


# ------------------------------------------------------------------------------ violations


def test_shortest_counterexample_and_reason():
    model = Counters(3, 4, bad={"target": lambda s: s == (2, 3, 1), "c0-max": lambda s: s[0] == 4})
    result = explore(model)
    assert set(result.violations) == {"target", "c0-max"}
    distances = naive_distances(model)

    target = result.violations["target"]
    assert target.states[-1] == (2, 3, 1)
    assert target.depth == distances[(2, 3, 1)] == 6
    assert target.reason == "target holds at (2, 3, 1)"
    assert_trace_replays(model, target)

    c0_max = result.violations["c0-max"]
    assert c0_max.depth == 4
    assert c0_max.labels == [("inc", 0)] * 4
    assert c0_max.reason == "c0-max holds at (4, 0, 0)"
    assert_trace_replays(model, c0_max)
    assert result.complete


def test_counterexample_with_symmetry_replays_after_canonicalisation():
    model = Counters(4, 3, symmetric=True, bad={"two-maxed": lambda s: s.count(3) >= 2})
    result = explore(model)
    trace = result.violations["two-maxed"]
    assert trace.depth == min(
        dist for state, dist in naive_distances(model).items() if state.count(3) >= 2
    )
    assert trace.depth == 6
    assert all(state == tuple(sorted(state)) for state in trace.states)
    assert_trace_replays(model, trace)


def test_concretize_turns_a_canonical_path_into_a_replayable_execution():
    """With symmetry, the labels of a canonical path name positions of *sorted* states; the
    concrete trace re-executes from the real initial state and its labels replay there."""
    model = Counters(3, 3, symmetric=True, bad={"spread": lambda s: sorted(s) == [1, 2, 3]})
    trace = explore(model).violations["spread"]
    concrete = concretize(model, trace)
    assert concrete.depth == trace.depth == 6 and concrete.reason == trace.reason
    assert [model.canonical(s) for s in concrete.states] == trace.states
    assert_trace_replays(model, concrete, canonicalize=False)
    assert concrete.states[0] == model.initial_states()[0]
    assert concrete.labels != trace.labels  # the canonical labels name other counters


def test_concretize_reports_a_canonical_form_that_is_not_a_symmetry():
    # 0 -> 1 -> 2 with 2 "canonicalised" to 5, which 1 cannot reach: a broken canonical()
    model = Graph({0: [1], 1: [2]}, initial=[0], bad={5}, canonical_map={2: 5})
    trace = Trace(states=[0, 1, 3], labels=[1, 3], reason="x", depth=2)
    with pytest.raises(RuntimeError, match="not a symmetry"):
        concretize(model, trace)


def test_violations_are_ordered_like_the_invariants():
    model = Counters(2, 3, bad={"late": lambda s: sum(s) == 3, "early": lambda s: sum(s) == 1})
    result = explore(model)
    assert list(result.violations) == ["late", "early"]


def test_stop_when_all_violated():
    model = Counters(3, 5, bad={"a": lambda s: s[0] == 1, "b": lambda s: s[1] == 2})
    full = explore(model)
    stopped = explore(model, stop_when_all_violated=True)
    assert stopped.bounded_by == "violations" and not stopped.complete
    assert stopped.states < full.states
    assert stopped.violations == full.violations


def test_stop_when_all_violated_without_invariants_explores_everything():
    result = explore(Counters(2, 2), stop_when_all_violated=True)
    assert result.complete and result.states == 9


# -------------------------------------------------------------------------------- bounds


def test_max_depth_bound():
    result = explore(Counters(3, 4), max_depth=2)
    assert not result.complete and result.bounded_by == "depth"
    assert result.states == 1 + 3 + 6  # states whose counters sum to 0, 1 or 2
    assert result.max_depth == 2
    # Only levels 0 and 1 were expanded.
    assert result.transitions == 3 + 3 * 3


def test_max_depth_states_are_checked_but_not_expanded():
    model = Counters(2, 5, bad={"deep": lambda s: sum(s) == 3})
    result = explore(model, max_depth=3)
    assert result.violations["deep"].depth == 3
    assert explore(model, max_depth=2).violations == {}


def test_max_depth_beyond_the_graph_is_complete():
    result = explore(Counters(2, 2), max_depth=5)
    assert result.complete and result.bounded_by is None and result.states == 9


def test_max_states_bound():
    result = explore(Counters(3, 4), max_states=10)
    assert not result.complete and result.bounded_by == "states"
    assert result.states == 10


def test_max_states_equal_to_the_space_is_complete():
    result = explore(Counters(3, 2), max_states=27)
    assert result.complete and result.states == 27


def test_max_states_smaller_than_initial_states():
    model = Graph({}, initial=[1, 2, 3])
    result = explore(model, max_states=2)
    assert result.bounded_by == "states" and result.states == 2


# ------------------------------------------------------------------ determinism, vacuity


def test_runs_are_deterministic():
    model = Counters(4, 3, symmetric=True, bad={"x": lambda s: s[-1] == 3, "y": lambda s: s == (1, 1, 2, 2)})
    first = explore(model)
    second = explore(model)
    assert same_outcome(first, second)
    assert list(first.label_counts) == list(second.label_counts)
    bounded = [explore(model, max_states=20), explore(model, max_states=20)]
    assert same_outcome(*bounded)


def test_stuck_states_are_detected_with_is_final():
    # 0 -> 1 -> 2 -> 3 (final); 0 -> 4 -> 5 -> 6 (stuck, depth 3); 1 -> 7 (stuck, depth 2).
    edges = {0: [1, 4], 1: [2, 7], 2: [3], 4: [5], 5: [6]}
    result = explore(Graph(edges, initial=[0], final={3}))
    assert result.final_states == 1
    assert result.stuck_states == 2
    trace = result.stuck_trace
    assert trace.states == [0, 1, 7] and trace.labels == [1, 7] and trace.depth == 2
    assert trace.reason.startswith("stuck")


def test_without_is_final_every_dead_end_is_final():
    edges = {0: [1, 4], 1: [2, 7], 2: [3], 4: [5], 5: [6]}
    result = explore(Graph(edges, initial=[0]))
    assert result.final_states == 3 and result.stuck_states == 0 and result.stuck_trace is None


def test_progress_callback():
    reports = []
    result = explore(Counters(3, 9), progress=reports.append, progress_every=100)
    assert all(isinstance(report, ExplorationProgress) for report in reports)
    # One report per expanded level plus one about every 100 new states.
    assert len(reports) >= result.max_depth + result.states // 100
    states = [report.states for report in reports]
    assert states == sorted(states)
    depths = [report.depth for report in reports]
    assert depths == sorted(depths) and depths[-1] == result.max_depth
    assert all(report.transitions <= result.transitions for report in reports)
    assert all(report.elapsed >= 0 and report.rate >= 0 for report in reports)


def test_keyboard_interrupt_returns_partial_result():
    class Interrupted(Counters):
        calls = 0

        def successors(self, state):
            Interrupted.calls += 1
            if Interrupted.calls == 40:  # a single Ctrl-C during the search
                raise KeyboardInterrupt
            return super().successors(state)

    model = Interrupted(3, 5, bad={"early": lambda s: s == (1, 1, 0)})
    result = explore(model)
    assert result.bounded_by == "interrupted" and not result.complete
    assert 40 <= result.states < 216
    assert result.violations["early"].depth == 2
    assert_trace_replays(model, result.violations["early"])
    assert result.max_depth >= 2


def test_invalid_bounds_are_rejected():
    with pytest.raises(ValueError):
        explore(Counters(1, 1), max_depth=-1)
    with pytest.raises(ValueError):
        explore(Counters(1, 1), max_states=-1)


# -------------------------------------------------------------------- property-based test


@st.composite
def random_graphs(draw):
    size = draw(st.integers(min_value=1, max_value=25))
    node = st.integers(min_value=0, max_value=size - 1)
    edges = {
        state: draw(st.lists(node, unique=True, max_size=4)) for state in range(size)
    }
    initial = draw(st.lists(node, min_size=1, max_size=3))
    bad = draw(st.sets(node, max_size=4))
    final = draw(st.sets(node, max_size=size))
    # A random symmetry: each node's class representative is the smallest node in its class.
    classes = draw(st.lists(st.integers(min_value=0, max_value=size - 1), min_size=size, max_size=size))
    representative = {}
    for state, cls in enumerate(classes):
        representative.setdefault(cls, state)
    canonical_map = {state: representative[cls] for state, cls in enumerate(classes)}
    return Graph(edges, initial, bad, final, canonical_map)


def naive_reachable(model, canonicalize):
    """Reachable (canonical) states by depth-first search."""
    canonical = model.canonical if canonicalize else (lambda state: state)
    seen = set()
    stack = [canonical(state) for state in model.initial_states()]
    while stack:
        state = stack.pop()
        if state in seen:
            continue
        seen.add(state)
        stack.extend(canonical(successor) for _, successor in model.successors(state))
    return seen


@settings(max_examples=300, deadline=None)
@given(model=random_graphs(), canonicalize=st.booleans())
def test_random_graphs_match_naive_search(model, canonicalize):
    result = explore(model, canonicalize=canonicalize)
    reachable = naive_reachable(model, canonicalize)
    assert result.complete
    assert result.states == len(reachable)
    assert result.transitions == sum(len(model.edges.get(state, ())) for state in reachable)
    assert sum(result.level_sizes) == result.states

    distances = naive_distances(model, canonicalize)
    assert set(distances) == reachable
    assert result.max_depth == max(distances.values())
    bad_distances = [distances[state] for state in reachable if state in model.bad]
    if bad_distances:
        trace = result.violations["good"]
        assert trace.depth == min(bad_distances)
        assert trace.states[-1] in model.bad
        assert trace.reason == f"bad state {trace.states[-1]}"
        assert_trace_replays(model, trace, canonicalize)
    else:
        assert result.violations == {}

    dead_ends = [state for state in reachable if not model.edges.get(state)]
    stuck = [state for state in dead_ends if state not in model.final]
    assert result.stuck_states == len(stuck)
    assert result.final_states == len(dead_ends) - len(stuck)
    if stuck:
        assert result.stuck_trace.depth == min(distances[state] for state in stuck)
        assert_trace_replays(model, result.stuck_trace, canonicalize)
