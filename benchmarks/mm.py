"""MM-model benchmark: exploration rate on scenarios sized for measuring.

`python -m benchmarks.mm` explores each benchmark scenario under a few presets and prints
distinct states, transitions, seconds and states/s (CPython; the whole rate includes
successor generation, canonicalisation, the visited set and every property check).
"""

from __future__ import annotations

import glob
import time

from mmcheck.scenario.loader import load_scenario
from mmcheck.report.runner import run_policy, run_scenario

POLICIES = ("v5.7", "v5.11", "v5.19")


def run_mm_benchmark(policies=POLICIES, pattern="benchmarks/scenarios/*.yaml",
                     workers=1, backend="processes") -> list[dict]:
    """Best of two runs per scenario and policy; `backend="ray"`: `workers` Ray actors
    on a local Ray instance (started here, outside the timing)."""
    if backend == "ray":
        import ray

        if not ray.is_initialized():
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                     logging_level="ERROR")
    rows = []
    for path in sorted(glob.glob(pattern)):
        sc = load_scenario(path)
        for policy in policies:
            best = None
            for _ in range(2):  # best of two: the machine is shared
                r = run_policy(sc, policy, with_traces=False, workers=workers,
                               backend=backend)
                if best is None or r.seconds < best.seconds:
                    best = r
            rows.append({"scenario": sc.name, "policy": policy, "workers": workers,
                         "backend": backend,
                         "states": best.states,
                         "transitions": best.transitions, "seconds": best.seconds,
                         "states_per_second": best.states / best.seconds if best.seconds else 0})
    return rows


def run_menu_benchmark(pattern="scenarios/discover/*.yaml", depth=None) -> list[dict]:
    """Menu scenarios under each of their policies (complete, or to the scenario's depth
    bound), with the full reduction and with frames-only renaming ("without symmetry"):
    the reduction factor is the ratio of distinct states."""
    rows = []
    for path in sorted(glob.glob(pattern)):
        sc = load_scenario(path)
        for policy in sc.policies:
            full = run_policy(sc, policy, depth=depth, with_traces=False)
            plain = (run_policy(sc, policy, depth=depth, with_traces=False, symmetry=False)
                     if full.symmetry else full)  # nothing interchangeable: same search
            rows.append({
                "scenario": sc.name, "policy": policy, "interchangeable": full.symmetry,
                "complete": full.complete, "depth": full.depth,
                "states": full.states, "transitions": full.transitions,
                "seconds": full.seconds, "states_per_second": full.rate,
                "plain_states": plain.states, "plain_seconds": plain.seconds,
                "plain_states_per_second": plain.rate,
                "factor": plain.states / full.states if full.states else 1.0,
                "same_verdicts": [(v.verdict, v.depth) for v in full.verdicts]
                == [(v.verdict, v.depth) for v in plain.verdicts],
            })
    return rows


def run_suite_timing(pattern="scenarios/**/*.yaml") -> dict:
    """Wall time of every shipped scenario under all of its policies, with traces."""
    files = sorted(glob.glob(pattern, recursive=True))
    start = time.perf_counter()
    runs = states = 0
    for path in files:
        for r in run_scenario(load_scenario(path)):
            runs += 1
            states += r.states
    return {"scenarios": len(files), "runs": runs, "states": states,
            "seconds": time.perf_counter() - start}


def main() -> None:
    for row in run_mm_benchmark():
        print(f"{row['scenario']:28} {row['policy']:7} {row['states']:>9,} states "
              f"{row['transitions']:>10,} transitions {row['seconds']:6.2f} s "
              f"{row['states_per_second']:>9,.0f} states/s")
    suite = run_suite_timing()
    print(f"shipped suite: {suite['scenarios']} scenarios, {suite['runs']} runs, "
          f"{suite['states']:,} states, {suite['seconds']:.2f} s")


if __name__ == "__main__":
    main()
