"""Partial-order reduction benchmark: states with and without `--por`, and whether the
verdicts agree.

`python -m benchmarks.por` runs (1) an engine model with real independence (n counters,
each increment touching its own counter only: the reduction keeps one interleaving), (2)
every shipped scripted scenario under all of its policies, per directory, and the
benchmark scenario, (3) the menu scenarios without a depth bound (a reduced search runs
unbounded).  Factor = states without / states with the reduction.
"""

from __future__ import annotations

import glob
import os
import time

from mmcheck.engine.explorer import explore
from mmcheck.report.runner import run_policy
from mmcheck.scenario.loader import load_scenario


class Counters:
    """n counters 0..limit; every increment is independent of the others and invisible."""

    ample_progress = True  # counters only grow: no cycle

    def __init__(self, n: int = 3, limit: int = 4) -> None:
        self.n, self.limit = n, limit

    def initial_states(self):
        return [(0,) * self.n]

    def successors(self, s):
        return [(i, s[:i] + (s[i] + 1,) + s[i + 1:]) for i in range(self.n)
                if s[i] < self.limit]

    def canonical(self, s):
        return s

    def invariants(self):
        return []

    def is_final(self, s):
        return s == (self.limit,) * self.n

    def ample_sets(self, s, transitions):
        if len(transitions) > 1:
            yield [0]


def _same(full, reduced) -> bool:
    return ([(v.name, v.verdict) for v in full.verdicts]
            == [(v.name, v.verdict) for v in reduced.verdicts]
            and (full.stuck_states > 0) == (reduced.stuck_states > 0)
            and full.never_started == reduced.never_started)


def _pair(sc, policy) -> dict:
    t0 = time.perf_counter()
    full = run_policy(sc, policy, with_traces=False)
    t1 = time.perf_counter()
    reduced = run_policy(sc, policy, with_traces=False, por=True)
    t2 = time.perf_counter()
    return {"states": full.states, "por_states": reduced.states, "seconds": t1 - t0,
            "por_seconds": t2 - t1, "same_verdicts": _same(full, reduced),
            "reduced_states": reduced.por["reduced_states"]}


def _sum(name, pairs) -> dict:
    states = sum(p["states"] for p in pairs)
    por_states = sum(p["por_states"] for p in pairs)
    return {"what": name, "runs": len(pairs), "states": states, "por_states": por_states,
            "factor": states / por_states if por_states else 1.0,
            "seconds": sum(p["seconds"] for p in pairs),
            "por_seconds": sum(p["por_seconds"] for p in pairs),
            "reduced_states": sum(p["reduced_states"] for p in pairs),
            "same_verdicts": all(p["same_verdicts"] for p in pairs),
            "differ": sum(not p["same_verdicts"] for p in pairs)}


SHIPPED = ("scenarios/**/*.yaml", "benchmarks/scenarios/*.yaml")


def run_por_benchmark(n: int = 3, limit: int = 40, patterns=SHIPPED) -> list[dict]:
    """Rows: the engine model, each directory of scripted scenarios (summed over its
    scenarios and policies), each menu scenario and policy."""
    rows = []
    t0 = time.perf_counter()
    full = explore(Counters(n, limit))
    t1 = time.perf_counter()
    reduced = explore(Counters(n, limit), por=True)
    t2 = time.perf_counter()
    rows.append({"what": f"engine: {n} independent counters 0..{limit}", "runs": 1,
                 "states": full.states, "por_states": reduced.states,
                 "factor": full.states / reduced.states, "seconds": t1 - t0,
                 "por_seconds": t2 - t1, "reduced_states": reduced.por["reduced_states"],
                 "same_verdicts": (full.final_states > 0) == (reduced.final_states > 0),
                 "differ": 0})
    scripted: dict = {}
    menus = []
    for path in sorted(p for pattern in patterns for p in glob.glob(pattern, recursive=True)):
        sc = load_scenario(path)
        if sc.depth is not None:
            continue  # --por refuses a depth bound
        if sc.menu is not None:
            for policy in sc.policies:
                menus.append(_sum(f"menu {sc.name} ({policy})", [_pair(sc, policy)]))
            continue
        group = os.path.dirname(path) + "/"
        scripted.setdefault(group, []).extend(_pair(sc, p) for p in sc.policies)
    for group, pairs in sorted(scripted.items()):
        rows.append(_sum(f"scripted: {group} (every scenario x policy)", pairs))
    return rows + menus


def table(rows) -> list[str]:
    lines = ["| search | runs | states | states with --por | factor | time / with --por | "
             "reduced states | same verdicts |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['what']} | {r['runs']} | {r['states']:,} | {r['por_states']:,} | "
                     f"{r['factor']:.4g} | {r['seconds']:.2f} s / {r['por_seconds']:.2f} s | "
                     f"{r['reduced_states']:,} | "
                     f"{'yes' if r['same_verdicts'] else 'NO (%d)' % r['differ']} |")
    return lines


def main() -> None:
    print("\n".join(table(run_por_benchmark())))


if __name__ == "__main__":
    main()
