"""Two worker processes against one on a space of >= 10^6 states (issue 13 asks the
parallel speed-up of such spaces): big_three_process_menu under page_count to depth 16,
1,120,504 states, with the exact and the fingerprint store, each search in a fresh process,
one and two workers interleaved, best of `repeat`.  The other core must be idle for the
two-worker rows to mean anything."""

from __future__ import annotations

import json
import subprocess
import sys
import time

CASE = ("benchmarks/big/big_three_process_menu.yaml", "page_count", 16)


def _one(path: str, policy: str, depth: int, store: str, workers: int) -> dict:
    from mmcheck.report.runner import run_policy
    from mmcheck.scenario.loader import load_scenario

    sc = load_scenario(path)
    run_policy(sc, policy, depth=2, with_traces=False, store=store)   # imports, warm-up
    start = time.perf_counter()
    r = run_policy(sc, policy, depth=depth, with_traces=False, store=store, workers=workers)
    seconds = time.perf_counter() - start
    return {"scenario": sc.name, "policy": policy, "depth": depth, "store": store,
            "workers": workers, "states": r.states, "transitions": r.transitions,
            "seconds": seconds, "states_per_second": r.states / seconds,
            "verdicts": [(v.name, v.verdict, v.depth) for v in r.verdicts]}


def run_parallel_benchmark(case=CASE, stores=("exact", "fingerprints"), repeat=2,
                           python=None, interpreter="") -> list[dict]:
    """Per store: the one-worker and the two-worker row (with `speedup` and whether both
    found the same states, transitions and verdicts)."""
    python = python or sys.executable
    path, policy, depth = case
    rows = []
    for store in stores:
        best: dict = {}
        for _ in range(repeat):
            for workers in (1, 2):
                out = subprocess.run([python, "-m", "benchmarks.parallel", path, policy,
                                      str(depth), store, str(workers)],
                                     capture_output=True, text=True, check=True)
                r = json.loads(out.stdout)
                if workers not in best or r["seconds"] < best[workers]["seconds"]:
                    best[workers] = r
        one, two = best[1], best[2]
        two["speedup"] = one["seconds"] / two["seconds"]
        two["same_as_one"] = all(one[k] == two[k] for k in ("states", "transitions",
                                                             "verdicts"))
        one["interpreter"] = two["interpreter"] = interpreter
        rows += [one, two]
    return rows


if __name__ == "__main__":
    a = sys.argv[1:]
    print(json.dumps(_one(a[0], a[1], int(a[2]), a[3], int(a[4]))))
