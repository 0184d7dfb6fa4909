"""Generic explicit-state breadth-first explorer.

This module knows nothing about memory management: it explores the state graph of any object
that follows the *model protocol* below, finds the shortest counterexample to each invariant,
and reports statistics that help judge whether a run was meaningful (vacuity).

Model protocol
==============

A model is any object with these methods:

``initial_states() -> Iterable[State]``
    The initial states. States must be hashable; in practice they are flat tuples of ints,
    packed ints or bytes (the MM model's), because hashing and comparing them dominates
    the search cost.

``successors(state) -> Iterable[tuple[Label, State]]``
    The outgoing transitions of ``state`` as ``(label, successor)`` pairs. Labels are hashable
    and unique among the successors of one state, and the pairs come in a deterministic order.
    Determinism matters twice: it makes runs reproducible, and the explorer does not store
    labels at all -- it re-derives the labels of a counterexample by calling ``successors``
    again on the (few) states of the trace.

``canonical(state) -> State``
    The canonical representative of the state's symmetry class (returning ``state`` itself is
    fine); a pure function of the state. The explorer stores and expands canonical states
    only: successors are computed from canonical states and every successor is canonicalised
    before the visited-set lookup, unless the search saw that very successor before (a
    bounded set of the raw successors already canonicalised, ``SEEN_RAW_LIMIT``: then it is
    a duplicate and neither canonicalised nor looked up again). With
    ``explore(..., canonicalize=False)`` it is never called.

``invariants() -> Sequence[tuple[str, Callable[[State], str | None]]]``
    Named properties. A check returns ``None`` when the state satisfies the property, or a
    short human-readable reason when it violates it. Each check runs once per distinct stored
    state (initial states included) until the invariant has its first counterexample.

``is_final(state) -> bool`` (optional)
    True when the state is a proper end state (e.g. every thread finished its program). It is
    called on expanded states that have no successors: those that are not final are *stuck*
    (deadlocked) states. Without ``is_final`` every such state counts as final.

Properties of other kinds (all optional; the invariants above are the ``always`` kind):

``step_checks() -> Sequence[tuple[str, Callable[[State, Label, State], str | None]]]``
    Checked on every transition ``(state, label, successor)`` the search takes, new successor
    or not (history: "a write that lands while its page is write-protected was reported").
    The counterexample is the shortest path to ``state`` plus that transition.

``final_checks() -> Sequence[tuple[str, Check]]``
    Checked on every stored state that ``is_final`` says is final.

``sometimes() -> Sequence[Sometimes]``
    Reachability goals (vacuity): each has ``name``, the ``goals`` it must see, and a
    ``cover`` function returning the goals a state satisfies (``on == "state"``, called on
    every stored state) or a transition label satisfies (``on == "label"``, called once per
    distinct label taken, after the search).  The result lists the goals never reached.

``partition_key(state) -> Hashable`` (optional, the multi-process search only)
    A function of the canonical state that decides which worker owns it
    (:func:`mmcheck.engine.parallel.owner_function`); a part of the state few transitions
    change keeps most successors with the worker that made them.  Default: the whole state.

Search
======

:func:`explore` runs a level-by-level breadth-first search, so the first state found that
violates an invariant has a shortest trace. The visited set is a dict mapping each stored
state to its parent state (a sentinel for initial states); keeping a reference to an existing
object costs no allocation per state, which matters with millions of states. The search keeps
going after a violation (other invariants may fail later) unless asked to stop once every
invariant has a counterexample.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Optional

from . import memory

State = Hashable
Label = Hashable
Check = Callable[[Any], Optional[str]]

__all__ = ["ExplorationProgress", "Result", "Sometimes", "Trace", "concretize", "explore"]


@dataclass
class Sometimes:
    """A reachability property: every goal must be reached by some explored state
    (``on="state"``: ``cover(state)``) or transition label (``on="label"``:
    ``cover(label)``); ``cover`` returns the goals satisfied (an iterable)."""

    name: str
    goals: tuple
    cover: Callable[[Any], Any]
    on: str = "state"

# Marks "the successor loop did not run": no model label can be this object.
_NO_SUCCESSOR = object()
# Most successors are reached again (BFS diamonds: a, b and b, a), and often as the very
# same state before canonicalisation.  The canonicalising searches remember the last
# SEEN_RAW_LIMIT such states: a successor found there was already canonicalised and
# looked up, so it is a duplicate and costs one set probe instead of canonical() and a
# visited probe (51-68% of the MM model's successors; ~0.5 KB a remembered MM state,
# cleared when full).  Exact: the key is the whole state.
SEEN_RAW_LIMIT = 1 << 17
# Parent of the initial states in the visited dict (not None: None could be a model state).
_NO_PARENT = object()
# A checkpoint value that a (non-negative) stored-state count never equals.
_NEVER = -1


@dataclass
class Trace:
    """A path from an initial state to a state of interest (a violation or a stuck state).

    ``states`` are the canonical states from the initial state to the bad one, inclusive;
    ``labels[i]`` is the label of the transition from ``states[i]`` to ``states[i + 1]``.
    """

    states: list
    labels: list
    reason: str
    depth: int


@dataclass
class ExplorationProgress:
    """Snapshot handed to the ``progress`` callback of :func:`explore`.

    ``depth`` is the BFS level being expanded, ``frontier`` its number of states; ``rate``
    is distinct states per second.
    """

    states: int
    transitions: int
    depth: int
    elapsed: float
    rate: float
    frontier: int = 0


@dataclass
class Result:
    """Outcome and statistics of one :func:`explore` run.

    ``complete`` is True only when the whole reachable space was exhausted; otherwise
    ``bounded_by`` says why the search stopped: ``"depth"`` (states at ``max_depth`` were
    left unexpanded), ``"states"`` (``max_states`` reached), ``"violations"`` (every invariant
    was violated and ``stop_when_all_violated`` was set), ``"interrupted"`` (Ctrl-C) or
    ``"memory"`` (the ``max_memory`` limit was reached, or a MemoryError: the partial result
    of what fitted).
    """

    complete: bool
    bounded_by: Optional[str]
    states: int
    transitions: int
    max_depth: int
    elapsed: float
    states_per_second: float
    label_counts: dict = field(default_factory=dict)
    final_states: int = 0
    stuck_states: int = 0
    stuck_trace: Optional[Trace] = None
    violations: dict = field(default_factory=dict)
    level_sizes: list = field(default_factory=list)
    # sometimes-property name -> goals never reached (meaningful when ``complete``)
    unreached: dict = field(default_factory=dict)
    # how states were stored: {"kind": "exact"} or the fingerprint store's statistics
    # (mmcheck.engine.fingerprints: collision estimates, bytes per state)
    store: dict = field(default_factory=lambda: {"kind": "exact"})
    # partial-order reduction's statistics (mmcheck.engine.por), None without it
    por: Optional[dict] = None

    @property
    def ok(self) -> bool:
        """True when no invariant was violated (says nothing about completeness)."""
        return not self.violations


class _StopSearch(Exception):
    """Raised from the search loop's rare paths to end the search early."""

    def __init__(self, bounded_by: str) -> None:
        super().__init__(bounded_by)
        self.bounded_by = bounded_by


class _Search:
    """Mutable search state; lives for one explore() call.

    Everything the hot loops touch per transition is bound to locals inside
    ``_expand_level_*``; attributes are only touched on rare paths (new violation, terminal
    state, progress/bound checkpoint) so that an interrupted search still has consistent
    counters.
    """

    def __init__(
        self,
        model: Any,
        max_depth: Optional[int],
        max_states: Optional[int],
        canonicalize: bool,
        stop_when_all_violated: bool,
        progress: Optional[Callable[[ExplorationProgress], None]],
        progress_every: int,
        max_memory: Optional[int] = None,
    ) -> None:
        self.model = model
        self.max_memory = max_memory
        self.next_memory_check_at = memory.CHECK_EVERY
        self.max_depth = max_depth
        self.max_states = max_states
        self.canonicalize = canonicalize
        self.stop_when_all_violated = stop_when_all_violated
        self.progress = progress
        self.progress_every = max(1, int(progress_every))
        self.is_final = getattr(model, "is_final", None)
        # Absolute stored-state count of the next periodic progress report.
        self.next_progress_at = self.progress_every

        final_checks = list(getattr(model, "final_checks", lambda: ())())
        self.sometimes = list(getattr(model, "sometimes", lambda: ())())
        self.reached: dict = {sm.name: set() for sm in self.sometimes}
        state_goals = [sm for sm in self.sometimes if sm.on == "state"]
        self.invariants: list[tuple[str, Check]] = (
            [(name, check) for name, check in model.invariants()]
            + [(name, _on_final(check, self.is_final)) for name, check in final_checks])
        # state-based reachability goals ride along with the state checks: they never fail
        self.goal_checks = [(sm.name, _recording(sm, self.reached[sm.name]))
                            for sm in state_goals]
        self.step_checks: list = list(getattr(model, "step_checks", lambda: ())())
        self.step_names = [name for name, _check in self.step_checks]
        # Checks still without a counterexample; replaced (never mutated) when one fails,
        # because the hot loop may be iterating over the old list at that moment.
        self.active_checks: list[tuple[str, Check]] = list(self.invariants) + self.goal_checks
        self.active_steps: list = list(self.step_checks)
        # name -> (state, reason[, label, successor]) of the first violation in BFS order
        # (a step property's violation is the transition from `state`).
        self.first_violations: dict[str, tuple] = {}

        self.visited: dict = {}
        # successors as the model made them, already canonicalised and looked up
        # (bounded): see SEEN_RAW_LIMIT
        self.seen_raw: set = set()
        # defaultdict: `counts[label] += 1` is the cheapest per-transition count in CPython.
        self.label_counts: defaultdict = defaultdict(int)
        self.final_states = 0
        self.stuck_states = 0
        self.first_stuck_state: Any = None
        self.has_stuck_state = False
        self.level_sizes: list[int] = []
        self.depth = 0
        # The level being filled by the current expansion (None between levels).
        self.pending_frontier: Optional[list] = None
        self.bounded_by: Optional[str] = None
        self.start_time = time.perf_counter()

    # ----------------------------------------------------------------- rare paths

    def _record_violation(self, name: str, state: Any, reason: str) -> list:
        """Keep the first counterexample of ``name``; return the new list of active checks."""
        if name not in self.first_violations:
            self.first_violations[name] = (state, str(reason))
            self.active_checks = [c for c in self.active_checks if c[0] != name]
            self._maybe_stop()
        return self.active_checks

    def _record_step_violation(self, name, state, label, successor, reason) -> list:
        """Keep the first counterexample of step property ``name`` (a transition)."""
        if name not in self.first_violations:
            self.first_violations[name] = (state, str(reason), label, successor)
            self.active_steps = [c for c in self.active_steps if c[0] != name]
            self._maybe_stop()
        return self.active_steps

    def _maybe_stop(self) -> None:
        if (self.stop_when_all_violated and (self.invariants or self.step_checks)
                and len(self.first_violations) == len(self.invariants) + len(self.step_checks)):
            raise _StopSearch("violations")

    def _record_terminal(self, state: Any) -> None:
        """Classify an expanded state without successors as final or stuck."""
        if self.is_final is None or self.is_final(state):
            self.final_states += 1
        else:
            self.stuck_states += 1
            if not self.has_stuck_state:
                self.has_stuck_state = True
                self.first_stuck_state = state

    def _first_checkpoint(self, stored: int) -> int:
        """The stored-state count at which the hot loop must next call ``_checkpoint``."""
        candidates = []
        if self.progress is not None:
            # max(): many initial states may already have passed the scheduled point.
            candidates.append(max(self.next_progress_at, stored))
        if self.max_states is not None:
            candidates.append(self.max_states)
        if self.max_memory is not None:
            candidates.append(max(self.next_memory_check_at, stored))
        return min(candidates) if candidates else _NEVER

    def _checkpoint(self, stored: int) -> int:
        """Called just before storing a new state when ``stored`` hits the checkpoint.

        Raises _StopSearch when the state bound forbids storing it; otherwise reports
        progress and returns the next checkpoint.
        """
        if self.max_states is not None and stored >= self.max_states:
            raise _StopSearch("states")
        if self.max_memory is not None and stored >= self.next_memory_check_at:
            self.next_memory_check_at = stored + memory.CHECK_EVERY
            if memory.rss_bytes() > self.max_memory:
                raise _StopSearch("memory")
        if stored >= self.next_progress_at:
            self.next_progress_at = stored + self.progress_every
            self._report_progress()
        return self._first_checkpoint(stored)

    def stored_count(self) -> int:
        return len(self.visited)

    def _report_progress(self) -> None:
        if self.progress is None:
            return
        elapsed = time.perf_counter() - self.start_time
        states = self.stored_count()
        self.progress(
            ExplorationProgress(
                states=states,
                transitions=sum(self.label_counts.values()),
                depth=self.depth,
                elapsed=elapsed,
                rate=states / elapsed if elapsed > 0 else 0.0,
                frontier=self.level_sizes[-1] if self.level_sizes else 0,
            )
        )

    def _store_initial(self, state: Any, frontier: list) -> None:
        """Store one initial state (not on the hot path)."""
        if state in self.visited:
            return
        if self.max_states is not None and len(self.visited) >= self.max_states:
            raise _StopSearch("states")
        self.visited[state] = _NO_PARENT
        frontier.append(state)
        for name, check in self.active_checks:
            reason = check(state)
            if reason is not None:
                self._record_violation(name, state, reason)

    def _check_steps(self, state, label, successor, steps, at=_NO_PARENT) -> list:
        """Step properties on one transition (rare path: only when the model has some);
        a violation is remembered by `state`, or by `at` (a store that keeps places)."""
        where = state if at is _NO_PARENT else at
        for name, check in steps:
            reason = check(state, label, successor)
            if reason is not None:
                steps = self._record_step_violation(name, where, label, successor, reason)
        return steps

    # ------------------------------------------------------------------ hot loops
    # The two variants differ only in the canonical() call; they are duplicated so the
    # canonicalize flag is tested once per level instead of once per transition.

    def _expand_level_canonical(self, frontier: list, next_frontier: list) -> None:
        successors = self.model.successors
        canonical = self.model.canonical
        visited = self.visited
        visited_setdefault = visited.setdefault
        label_counts = self.label_counts
        append_next = next_frontier.append
        record_terminal = self._record_terminal
        record_violation = self._record_violation
        no_successor = _NO_SUCCESSOR
        checks = self.active_checks
        steps = self.active_steps
        check_steps = self._check_steps
        stored = len(visited)
        checkpoint = self._first_checkpoint(stored)

        seen = self.seen_raw
        seen_add = seen.add
        for state in frontier:
            label = no_successor
            for label, successor in successors(state):
                label_counts[label] += 1
                n_seen = len(seen)
                seen_add(successor)
                if len(seen) == n_seen:  # this very tuple was canonicalised and offered
                    if steps:
                        steps = check_steps(state, label, canonical(successor), steps)
                    continue
                if n_seen >= SEEN_RAW_LIMIT:
                    seen.clear()
                    seen_add(successor)
                successor = canonical(successor)
                if steps:
                    steps = check_steps(state, label, successor, steps)
                visited_setdefault(successor, state)  # one hash for probe and store
                if len(visited) == stored:
                    continue  # it was there
                if stored == checkpoint:  # a bound may stop the search before storing it
                    del visited[successor]
                    checkpoint = self._checkpoint(stored)
                    visited[successor] = state
                append_next(successor)
                stored += 1
                if checks:
                    for name, check in checks:
                        reason = check(successor)
                        if reason is not None:
                            checks = record_violation(name, successor, reason)
            if label is no_successor:
                record_terminal(state)

    def _expand_level_plain(self, frontier: list, next_frontier: list) -> None:
        successors = self.model.successors
        visited = self.visited
        visited_setdefault = visited.setdefault
        label_counts = self.label_counts
        append_next = next_frontier.append
        record_terminal = self._record_terminal
        record_violation = self._record_violation
        no_successor = _NO_SUCCESSOR
        checks = self.active_checks
        steps = self.active_steps
        check_steps = self._check_steps
        stored = len(visited)
        checkpoint = self._first_checkpoint(stored)

        for state in frontier:
            label = no_successor
            for label, successor in successors(state):
                label_counts[label] += 1
                if steps:
                    steps = check_steps(state, label, successor, steps)
                visited_setdefault(successor, state)  # one hash for probe and store
                if len(visited) == stored:
                    continue  # it was there
                if stored == checkpoint:  # a bound may stop the search before storing it
                    del visited[successor]
                    checkpoint = self._checkpoint(stored)
                    visited[successor] = state
                append_next(successor)
                stored += 1
                if checks:
                    for name, check in checks:
                        reason = check(successor)
                        if reason is not None:
                            checks = record_violation(name, successor, reason)
            if label is no_successor:
                record_terminal(state)

    # ------------------------------------------------------------------- driver

    def run(self) -> None:
        """Breadth-first search, one level at a time, until exhausted or a bound stops it."""
        frontier: list = []
        canonical = self.model.canonical if self.canonicalize else None
        for state in self.model.initial_states():
            self._store_initial(canonical(state) if canonical else state, frontier)
        expand_level = (
            self._expand_level_canonical if self.canonicalize else self._expand_level_plain
        )

        self.depth = 0
        while frontier:
            self.level_sizes.append(len(frontier))
            if self.max_depth is not None and self.depth >= self.max_depth:
                self.bounded_by = "depth"
                return
            self._report_progress()
            next_frontier: list = []
            # Registered before expansion so an interruption still counts its states.
            self.pending_frontier = next_frontier
            expand_level(frontier, next_frontier)
            self.pending_frontier = None
            frontier = next_frontier
            self.depth += 1

    # ---------------------------------------------------------------- results

    def trace_to(self, state: Any, reason: str, label=_NO_SUCCESSOR, successor=None) -> Trace:
        """Rebuild the BFS path to ``state`` from parent links, re-deriving its labels (and,
        for a step property, the violating transition out of it)."""
        trace = trace_from(self.model, self.canonicalize, state, self.visited.__getitem__,
                           reason)
        if label is not _NO_SUCCESSOR:
            trace = extend(trace, label, successor)
        return trace

    def result(self) -> Result:
        elapsed = time.perf_counter() - self.start_time
        states = self.stored_count()
        level_sizes = list(self.level_sizes)
        pending = self.pending_frontier
        if pending:
            # Interrupted mid-level: the partially discovered next level exists.
            level_sizes.append(len(pending))
        violations = {
            name: self.trace_to(*self.first_violations[name])
            for name in [n for n, _ in self.invariants] + self.step_names
            if name in self.first_violations
        }
        stuck_trace = (
            self.trace_to(self.first_stuck_state, "stuck: no successor and not final")
            if self.has_stuck_state
            else None
        )
        return Result(
            complete=self.bounded_by is None,
            bounded_by=self.bounded_by,
            states=states,
            transitions=sum(self.label_counts.values()),
            max_depth=max(len(level_sizes) - 1, 0),
            elapsed=elapsed,
            states_per_second=states / elapsed if elapsed > 0 else 0.0,
            label_counts=dict(self.label_counts),
            final_states=self.final_states,
            stuck_states=self.stuck_states,
            stuck_trace=stuck_trace,
            violations=violations,
            level_sizes=level_sizes,
            unreached=unreached_goals(self.sometimes, self.reached, self.label_counts),
        )


def _on_final(check, is_final):
    """A final-state property as a state check: only final states are judged."""
    if is_final is None:
        return check
    return lambda state: check(state) if is_final(state) else None


def _recording(sometimes, reached: set):
    """A state-based reachability goal as a state check that never fails."""
    cover = sometimes.cover

    def check(state):
        reached.update(cover(state))
        return None
    return check


def unreached_goals(sometimes, reached: dict, label_counts) -> dict:
    """Per sometimes property, the goals no explored state or label reached."""
    out = {}
    for sm in sometimes:
        got = set(reached.get(sm.name, ()))
        if sm.on == "label":
            for label in label_counts:
                got.update(sm.cover(label))
        out[sm.name] = [g for g in sm.goals if g not in got]
    return out


def extend(trace: Trace, label: Any, successor: Any) -> Trace:
    """The trace with one more transition (a step property's violating step)."""
    return Trace(states=trace.states + [successor], labels=trace.labels + [label],
                 reason=trace.reason, depth=trace.depth + 1)


def trace_from(model: Any, canonicalize: bool, state: Any, parent_of: Callable[[Any], Any],
               reason: str) -> Trace:
    """The path to ``state`` following ``parent_of`` (a stored state's parent, or
    ``_NO_PARENT`` for an initial state), with the labels re-derived by ``successors``."""
    path = [state]
    parent = parent_of(state)
    while parent is not _NO_PARENT:
        path.append(parent)
        parent = parent_of(parent)
    path.reverse()
    labels = [_label_between(model, canonicalize, path[i], path[i + 1])
              for i in range(len(path) - 1)]
    return Trace(states=path, labels=labels, reason=reason, depth=len(path) - 1)


def _label_between(model: Any, canonicalize: bool, source: Any, target: Any) -> Any:
    # The first matching label is exactly the edge BFS used: it stored ``target`` while
    # scanning the successors of ``source`` in this same deterministic order.
    canonical = model.canonical if canonicalize else None
    for label, successor in model.successors(source):
        if canonical is not None:
            successor = canonical(successor)
        if successor == target:
            return label
    raise RuntimeError(
        "cannot rebuild trace: no successor of a stored state leads to its child again; "
        "the model's successors() (or canonical()) is not deterministic"
    )


def explore(
    model: Any,
    *,
    max_depth: Optional[int] = None,
    max_states: Optional[int] = None,
    canonicalize: bool = True,
    stop_when_all_violated: bool = False,
    progress: Optional[Callable[[ExplorationProgress], None]] = None,
    progress_every: int = 50_000,
    workers: int = 1,
    store: str = "exact",
    spill_dir: Optional[str] = None,
    max_memory: Optional[int] = None,
    checkpoint: Any = None,
    resume: Any = None,
    backend: str = "processes",
    address: Optional[str] = None,
    por: bool = False,
) -> Result:
    """Exhaustively explore ``model`` breadth-first and check its invariants.

    ``max_depth``: states at this depth are stored and checked but not expanded.
    ``max_states``: at most this many distinct states are stored; finding one more stops the
    search. ``canonicalize=False`` never calls ``model.canonical``. With
    ``stop_when_all_violated`` the search ends as soon as every invariant (if there is at
    least one) has a counterexample. ``progress`` is called with an
    :class:`ExplorationProgress` at each new BFS level and about every ``progress_every``
    new states. Ctrl-C (KeyboardInterrupt) ends the search and returns the partial result
    with ``bounded_by == "interrupted"``.

    ``workers > 1`` runs a hash-partitioned search in that many processes
    (:mod:`mmcheck.engine.parallel`): the same states, transitions, label counts, levels and
    shortest-counterexample depths, but ``max_states`` is checked after each level (up to
    one level more may be stored), ``progress`` is called once per level, and among equally
    short counterexamples another may be reported.

    ``store="fingerprints"`` keeps a 64-bit fingerprint per state instead of the state
    (:mod:`mmcheck.engine.fingerprints`: ~20 bytes a state, BFS levels spilled to files in
    ``spill_dir``); the result's ``store`` says how likely a fingerprint collision hid a
    state.  With ``workers > 1`` each worker process keeps its partition's fingerprints
    (:mod:`mmcheck.engine.parallel_fingerprints`; checkpoints too, not on Ray).

    ``checkpoint`` (a :class:`mmcheck.engine.checkpoint.Checkpointer`, fingerprint store
    only) saves the search at every level boundary; ``resume`` (one opened on an existing
    directory) restores it first, and the search goes on as if never interrupted.

    ``backend="ray"`` runs the hash-partitioned search with ``workers`` Ray actors
    (:mod:`mmcheck.engine.ray_backend`): on a local Ray instance, or on the cluster at
    ``address`` ("HOST:PORT"); the model must be picklable with cloudpickle.

    ``max_memory`` (bytes): the search stops with ``bounded_by == "memory"`` and its
    partial result once the searching processes' resident size exceeds it (looked at every
    ``memory.CHECK_EVERY`` stored states, and after each level with ``workers > 1``).

    ``por=True`` expands a state by one of the model's ample sets when one is safe
    (:mod:`mmcheck.engine.por`): the same verdicts from fewer states; one process, exact
    store, no depth bound.

    Returns a :class:`Result`; each violated invariant maps to its shortest :class:`Trace`.
    """
    if max_depth is not None and max_depth < 0:
        raise ValueError("max_depth must be >= 0")
    if max_states is not None and max_states < 0:
        raise ValueError("max_states must be >= 0")
    if workers < 1:
        raise ValueError("workers must be >= 1")
    if backend not in ("processes", "ray"):
        raise ValueError("backend must be 'processes' or 'ray'")
    if store not in ("exact", "fingerprints"):
        raise ValueError("store must be 'exact' or 'fingerprints'")
    if (checkpoint is not None or resume is not None) and store != "fingerprints":
        raise ValueError("checkpoints are taken of the fingerprint store only")
    if por:
        from .por import check_options

        check_options(model, max_depth=max_depth, workers=workers, backend=backend,
                      store=store)
    if store == "fingerprints" and (workers > 1 or backend == "ray"):
        if backend == "ray":
            raise ValueError("the fingerprint store runs in worker processes, not on Ray")
        from .parallel import explore_parallel

        return explore_parallel(model, workers, max_depth=max_depth, max_states=max_states,
                                canonicalize=canonicalize,
                                stop_when_all_violated=stop_when_all_violated,
                                progress=progress, max_memory=max_memory, store=store,
                                spill_dir=spill_dir or os.environ.get("MMCHECK_SPILL_DIR"),
                                checkpoint=checkpoint, resume=resume)
    if store == "fingerprints":
        from .fingerprints import explore_fingerprints

        return explore_fingerprints(model, max_depth=max_depth, max_states=max_states,
                                    canonicalize=canonicalize,
                                    stop_when_all_violated=stop_when_all_violated,
                                    progress=progress, progress_every=progress_every,
                                    spill_dir=spill_dir, max_memory=max_memory,
                                    checkpoint=checkpoint, resume=resume)
    if workers > 1 or backend == "ray":
        from .parallel import explore_parallel

        return explore_parallel(model, workers, max_depth=max_depth, max_states=max_states,
                                canonicalize=canonicalize,
                                stop_when_all_violated=stop_when_all_violated,
                                progress=progress, max_memory=max_memory, backend=backend,
                                address=address)
    reduced = None
    if por:
        from .por import PartialOrderReduced

        model = reduced = PartialOrderReduced(model, canonicalize)
    search = _Search(
        model,
        max_depth=max_depth,
        max_states=max_states,
        canonicalize=canonicalize,
        stop_when_all_violated=stop_when_all_violated,
        progress=progress,
        progress_every=progress_every,
        max_memory=max_memory,
    )
    if reduced is None:
        return run_search(search)
    reduced.bind(search.visited.__contains__)
    # traces are rebuilt from every transition (the reduced ones are among them)
    result = run_search(search, after=lambda: reduced.bind(None))
    result.por = reduced.statistics()
    return result


def run_search(search: _Search, after: Optional[Callable[[], None]] = None) -> Result:
    """Run a search to its end, a bound, Ctrl-C or a MemoryError; its (partial) result
    (``after()`` runs between the end of the search and the assembly of the result)."""
    try:
        search.run()
    except _StopSearch as stop:
        search.bounded_by = stop.bounded_by
    except KeyboardInterrupt:
        search.bounded_by = "interrupted"
    except MemoryError:
        # the allocation that failed is gone; drop the frontier being built so the
        # partial result (and its traces) can still be assembled
        search.pending_frontier = None
        search.bounded_by = "memory"
    if after is not None:
        after()
    return search.result()


def concretize(model: Any, trace: Trace) -> Trace:
    """The same path as ``trace`` in the model's own terms, without canonicalisation.

    A trace found with canonicalisation is a path of canonical states: its label ``i`` is
    a transition of ``states[i]``, which may be a renamed image of the state the
    execution had actually reached (with process symmetry, the thread a label names may
    be another one in the execution).  This re-executes from an initial state and, at
    each step, takes the first successor (in ``successors`` order) whose canonical form
    is the trace's next state; such a successor exists because canonicalisation is only
    sound for symmetries of the transition relation.  The result's states are real
    states of the model, its labels replay from ``states[0]``, and its canonical images
    are ``trace.states``.
    """
    canonical = model.canonical
    state = next((s for s in model.initial_states() if canonical(s) == trace.states[0]), None)
    if state is None:
        raise RuntimeError("cannot concretize trace: no initial state has its first state")
    states, labels = [state], []
    for target in trace.states[1:]:
        for label, successor in model.successors(state):
            if canonical(successor) == target:
                break
        else:
            raise RuntimeError(
                "cannot concretize trace: no successor reaches the next canonical state; the "
                "model's canonical() uses a renaming that is not a symmetry of successors()")
        states.append(successor)
        labels.append(label)
        state = successor
    return Trace(states=states, labels=labels, reason=trace.reason, depth=trace.depth)
