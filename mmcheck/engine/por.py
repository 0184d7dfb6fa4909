"""Partial-order reduction: expand a safe subset of a state's transitions (an ample set).

Two interleavings of independent steps reach the same state; a breadth-first search that
tries both orders stores every intermediate state of both.  With ``explore(..., por=True)``
a state whose model offers an *ample set* is expanded by that set only (Clarke, Grumberg and
Peled, "Model Checking", ch. 10; SPIN's reduction of "safe" statements):

C0  the set is non-empty (the model offers only non-empty subsets);
C1  along every path of the full graph from the state, no transition dependent on one in
    the set runs before one of the set does: the model's declaration (an optional method
    ``ample_sets(state, transitions)``, below);
C2  every transition of the set is invisible: no property, reachability goal or final
    check can tell the states before and after it apart: the model's declaration too;
C3  no cycle of the reduced graph is made of reduced states only: a model that declares
    ``ample_progress = True`` promises that every transition of an ample set strictly
    increases a quantity no transition decreases (a program counter), so no cycle contains
    one; otherwise a set is taken only when none of its successors was stored before (a
    cycle is closed by an edge to a state stored earlier, so the state that closes it is
    expanded fully; in a breadth-first search this refuses many sets).

Under C0-C3 every state the properties can tell apart, every terminal state and every
transition label reachable in the full graph is reached in the reduced one (a path of the
full graph maps to a reduced path with the same transitions reordered, plus invisible
ones), so invariants, step properties (their inputs are visible), final checks, stuck
states and label goals get the same verdicts.  What changes: fewer states and transitions,
so transition, copy and coverage counts are those of the reduced graph, and a
counterexample is the shortest path *of the reduced graph*: it may be longer than the
shortest in the full graph.  A depth bound could therefore hide a violation, so a reduced
search is unbounded in depth.

Model protocol addition
-----------------------
``ample_sets(state, transitions) -> Iterable[Sequence[int]]``
    Candidate ample sets of ``state``, best first, as positions in ``transitions`` (the
    list ``successors(state)`` returned): each a proper, non-empty subset meeting C1 and C2
    (typically: all enabled transitions of one thread whose steps commute with every step
    the other threads can ever take, and change nothing the properties read).  The search
    checks C3 and takes the first candidate that passes, else all transitions.
"""

from __future__ import annotations

from typing import Any, Callable, Optional


class PartialOrderReduced:
    """``model`` seen through its ample sets; ``stored(canonical_successor) -> bool`` is
    bound by the search to its store (C3).  Everything but ``successors`` is the model's.

    Unbound (``bind(None)``, as the search leaves it when it ends) it returns every
    transition: trace rebuilding finds the edge the search took among them."""

    def __init__(self, model: Any, canonicalize: bool = True) -> None:
        self.model = model
        self.ample_sets = model.ample_sets
        self.full_successors = model.successors
        self.canonicalize = canonicalize
        self.progress = bool(getattr(model, "ample_progress", False))
        self.stored: Optional[Callable[[Any], bool]] = None
        # statistics: states expanded by an ample set, fully, and ample sets refused by C3
        self.reduced = self.full = self.refused = 0

    def __getattr__(self, name):
        return getattr(self.model, name)

    def bind(self, stored: Optional[Callable[[Any], bool]]) -> None:
        self.stored = stored

    def successors(self, state):
        transitions = self.full_successors(state)
        if not isinstance(transitions, list):
            transitions = list(transitions)
        stored = self.stored
        if stored is not None:
            canonical = self.model.canonical if self.canonicalize else None
            for positions in self.ample_sets(state, transitions):
                subset = [transitions[i] for i in positions]
                if not self.progress and any(
                        stored(canonical(successor) if canonical else successor)
                        for _label, successor in subset):
                    self.refused += 1
                    continue
                self.reduced += 1
                return subset
        self.full += 1
        return transitions

    def statistics(self) -> dict:
        """What the reduction did (for ``Result.por``)."""
        return {"reduced_states": self.reduced, "full_states": self.full,
                "refused_by_cycle_proviso": self.refused}


def check_options(model: Any, *, max_depth, workers: int, backend: str, store: str) -> None:
    """The searches a reduction runs in (ValueError with the reason otherwise)."""
    if not hasattr(model, "ample_sets"):
        raise ValueError("this model declares no ample sets (ample_sets): nothing to reduce")
    if max_depth is not None:
        raise ValueError("partial-order reduction needs a search unbounded in depth "
                         "(a reduced graph may reach a violation only deeper)")
    if workers > 1 or backend == "ray":
        raise ValueError("partial-order reduction runs in one process (not with -j/--workers)")
    if store != "exact":
        raise ValueError("partial-order reduction runs with the exact store "
                         "(not --store fingerprints)")
