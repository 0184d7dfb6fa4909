"""Partial-order reduction (mmcheck.engine.por): on models with real independence the
reduced search stores fewer states and reaches the same verdicts as the full one (every
property kind, stuck states, label goals), the cycle proviso is what keeps a looping
thread from hiding the others' steps, and the options it cannot run with are refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from mmcheck.engine.explorer import Sometimes, explore
from benchmarks.por import Counters
from mmcheck.engine.por import PartialOrderReduced

# ------------------------------------------------------------------ three counters
# Counters (benchmarks.por): n independent counters 0..limit; each increment touches its
# own counter only and nothing reads the counters: every increment is safe.


def test_independent_counters_reduce_to_one_interleaving():
    full = explore(Counters())
    reduced = explore(Counters(), por=True)
    assert full.states == 5 ** 3
    assert reduced.states == 3 * 4 + 1  # one counter after the other
    assert (full.final_states, reduced.final_states) == (1, 1)
    assert reduced.stuck_states == full.stuck_states == 0
    assert reduced.por == {"reduced_states": 8, "full_states": 5,
                           "refused_by_cycle_proviso": 0}


# ------------------------------------------------------------------ random programs
# A state: (x, pcs..., locals...).  Steps: ("local",) bumps the thread's own local
# (nobody else reads it: safe); ("add", c) x += c mod M; ("copy",) local := x;
# ("wait", c) blocks until x >= c.  The invariant, the step check and the final check read
# x only, the label goals are (thread, pc) started.

M = 5


class Programs:
    def __init__(self, programs, bad, loop=False):
        self.programs, self.bad, self.loop = programs, bad, loop
        self.n = len(programs)
        # with loop, a thread whose program ends starts it again (cycles: the store-based
        # cycle proviso is the one that applies)
        self.ample_progress = not loop

    def initial_states(self):
        return [(0,) + (0,) * self.n + (0,) * self.n]

    def _step(self, s, t):
        prog = self.programs[t]
        pc = s[1 + t]
        if pc >= len(prog):
            return None
        op = prog[pc]
        x, local = s[0], s[1 + self.n + t]
        if op[0] == "wait" and x < op[1]:
            return None
        if op[0] == "local":
            local = (local + 1) % 3
        elif op[0] == "add":
            x = (x + op[1]) % M
        elif op[0] == "copy":
            local = x
        pc += 1
        if self.loop and pc == len(prog):
            pc = 0
        out = list(s)
        out[0], out[1 + t], out[1 + self.n + t] = x, pc, local
        return tuple(out)

    def successors(self, s):
        out = []
        for t in range(self.n):
            nxt = self._step(s, t)
            if nxt is not None:
                out.append(((t, s[1 + t]), nxt))
        return out

    def canonical(self, s):
        return s

    def invariants(self):
        return [("x-not-bad", lambda s: "bad" if s[0] == self.bad else None)]

    def step_checks(self):
        # a step that moves x past the bad value's successor (history: reads pre and post x)
        return [("no-wrap", lambda s, label, t: "wrapped" if t[0] < s[0] else None)]

    def final_checks(self):
        return [("ends-even", lambda s: "odd" if s[0] % 2 else None)]

    def is_final(self, s):
        return all(s[1 + t] >= len(self.programs[t]) for t in range(self.n))

    def sometimes(self):
        goals = tuple((t, pc) for t in range(self.n) for pc in range(len(self.programs[t])))
        return [Sometimes("started", goals, lambda label: (label,), on="label")]

    def ample_sets(self, s, transitions):
        for i, (label, _succ) in enumerate(transitions):
            t, pc = label
            if self.programs[t][pc][0] == "local" and len(transitions) > 1:
                yield [i]


op = st.one_of(st.just(("local",)), st.just(("copy",)),
               st.tuples(st.just("add"), st.integers(1, M - 1)),
               st.tuples(st.just("wait"), st.integers(0, M - 1)))
programs = st.lists(st.lists(op, min_size=1, max_size=5), min_size=2, max_size=3)


def verdicts(result):
    return (sorted(result.violations), result.stuck_states > 0, result.final_states > 0,
            result.complete, result.unreached)


def valid_in_full_model(model, trace):
    state = trace.states[0]
    for label, nxt in zip(trace.labels, trace.states[1:]):
        assert (label, nxt) in model.successors(state)
        state = nxt


@settings(max_examples=150, deadline=None)
@given(programs, st.integers(0, M - 1), st.booleans())
def test_reduced_search_has_the_full_verdicts(progs, bad, loop):
    model = Programs(progs, bad, loop)
    full = explore(model)
    reduced = explore(model, por=True)
    assert verdicts(reduced) == verdicts(full)
    assert reduced.states <= full.states
    for name, trace in reduced.violations.items():
        valid_in_full_model(model, trace)
        assert trace.depth >= full.violations[name].depth  # may be longer, never shorter


def test_local_steps_are_reduced_away():
    progs = [[("local",)] * 4, [("local",)] * 4, [("add", 1)]]
    model = Programs(progs, bad=3)
    full, reduced = explore(model), explore(model, por=True)
    assert verdicts(reduced) == verdicts(full)
    assert full.states == 5 * 5 * 2
    assert reduced.states < full.states / 3


def test_the_cycle_proviso_keeps_a_looping_thread_from_hiding_the_others():
    # thread 0 loops on a local step forever; thread 1's one step makes x bad.  Expanding
    # thread 0's step only (without C3) would never let thread 1 move.
    progs = [[("local",)], [("add", 2)]]
    model = Programs(progs, bad=2, loop=True)
    assert "x-not-bad" in explore(model).violations
    assert "x-not-bad" in explore(model, por=True).violations
    # the same reduction without the proviso misses it: the test above can fail
    model.ample_progress = True
    assert "x-not-bad" not in explore(model, por=True).violations


def test_refused_searches():
    for kwargs, words in (({"max_depth": 3}, "unbounded in depth"),
                          ({"workers": 2}, "one process"),
                          ({"store": "fingerprints"}, "exact store")):
        with pytest.raises(ValueError, match=words):
            explore(Counters(), por=True, **kwargs)

    class NoDeclaration:
        def initial_states(self):
            return [0]

    with pytest.raises(ValueError, match="declares no ample sets"):
        explore(NoDeclaration(), por=True)


def test_trace_rebuilding_sees_every_transition():
    reduced = PartialOrderReduced(Counters())
    # unbound (after the search every successor is stored): all transitions
    assert len(reduced.successors((0, 0, 0))) == 3
    reduced.bind(lambda s: False)
    assert len(reduced.successors((0, 0, 0))) == 1
