"""Engine benchmark: raw throughput of the generic explorer on a trivial model.

Run from the repository root with ``python -m benchmarks.engine``. The model is three
independent counters (a flat tuple of three ints) with one cheap "increment" action each, so
the measured time is dominated by the explorer's own work: hashing, visited-dict lookups,
label counting and frontier bookkeeping.
"""

from __future__ import annotations

import argparse
import platform
import sys

from mmcheck.engine.explorer import explore


class ThreeCounters:
    """Three independent counters, each 0..limit; action i increments counter i.

    Reachable states: (limit + 1) ** 3; transitions: 3 * limit * (limit + 1) ** 2.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def initial_states(self):
        return [(0, 0, 0)]

    def successors(self, state):
        # Unrolled and list-returning: the model should cost as little as possible here.
        limit = self.limit
        first, second, third = state
        moves = []
        if first < limit:
            moves.append((0, (first + 1, second, third)))
        if second < limit:
            moves.append((1, (first, second + 1, third)))
        if third < limit:
            moves.append((2, (first, second, third + 1)))
        return moves

    def canonical(self, state):
        return state

    def invariants(self):
        return []

    def is_final(self, state):
        return state == (self.limit,) * 3


def run_engine_benchmark(n_states_target: int = 1_500_000, canonicalize: bool = True) -> dict:
    """Explore a trivial model with about ``n_states_target`` states; return the numbers.

    Returns a dict with ``states``, ``transitions``, ``seconds``, ``states_per_second``,
    ``transitions_per_second``, ``canonicalize`` and ``python`` (implementation and version).
    """
    limit = max(1, round(n_states_target ** (1 / 3)) - 1)
    model = ThreeCounters(limit)
    result = explore(model, canonicalize=canonicalize)
    expected_states = (limit + 1) ** 3
    if not result.complete or result.states != expected_states:
        raise RuntimeError(
            f"engine benchmark explored {result.states} states, expected {expected_states}"
        )
    return {
        "states": result.states,
        "transitions": result.transitions,
        "seconds": result.elapsed,
        "states_per_second": result.states_per_second,
        "transitions_per_second": result.transitions / result.elapsed if result.elapsed else 0.0,
        "canonicalize": canonicalize,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=1_500_000, help="target state count")
    parser.add_argument(
        "--no-canonicalize", action="store_true", help="skip canonical() calls entirely"
    )
    args = parser.parse_args(argv)
    numbers = run_engine_benchmark(args.states, canonicalize=not args.no_canonicalize)
    print(f"python:        {numbers['python']}")
    print(f"canonicalize:  {numbers['canonicalize']}")
    print(f"states:        {numbers['states']:,}")
    print(f"transitions:   {numbers['transitions']:,}")
    print(f"seconds:       {numbers['seconds']:.2f}")
    print(f"states/s:      {numbers['states_per_second']:,.0f}")
    print(f"transitions/s: {numbers['transitions_per_second']:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
