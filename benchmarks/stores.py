"""State stores side by side: the exact store (states in a dict) against the fingerprint
store (mmcheck.engine.fingerprints), on the same searches, each run in a fresh process so
its memory can be measured: distinct states/s, the bytes a stored state costs as the
store accounts them (fingerprint table and parent index arrays), and the growth of the
process's peak resident size per state (everything: states, dict, frontier, allocator)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

CASES = (("benchmarks/scenarios/fork_pin_splice.yaml", "v5.11"),
         ("scenarios/discover/two_pages_menu.yaml", "page_count"))
STORES = ("exact", "fingerprints")


def _peak_rss() -> int:
    """VmHWM, the peak resident size of this process's memory (ru_maxrss would carry the
    parent's size across fork + exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")


def _one(path: str, policy: str, store: str) -> dict:
    from mmcheck.engine import memory
    from mmcheck.report.runner import run_policy
    from mmcheck.scenario.loader import load_scenario

    sc = load_scenario(path)
    run_policy(sc, policy, depth=1, with_traces=False, store=store)   # imports, warm-up
    base = _peak_rss()
    start = time.perf_counter()
    r = run_policy(sc, policy, with_traces=False, store=store)
    seconds = time.perf_counter() - start
    peak = _peak_rss()
    return {"scenario": sc.name, "policy": policy, "store": store, "states": r.states,
            "transitions": r.transitions, "seconds": seconds,
            "states_per_second": r.states / seconds,
            "verdicts": [(v.name, v.verdict, v.depth) for v in r.verdicts],
            "accounted_bytes_per_state": r.store.get("bytes_per_state"),
            "collision_optimistic": r.store.get("collision_optimistic"),
            "peak_growth_per_state": (peak - base) / r.states, "rss": memory.rss_bytes()}


def run_store_benchmark(cases=CASES, repeat=2, python=None, interpreter="") -> list[dict]:
    """Each case under both stores, interleaved, best time of `repeat` fresh processes of
    `python` (this interpreter unless given; `interpreter` names it in the rows)."""
    python = python or sys.executable
    rows = []
    for path, policy in cases:
        best: dict = {}
        for _ in range(repeat):
            for store in STORES:
                out = subprocess.run([python, "-m", "benchmarks.stores", path, policy,
                                      store], capture_output=True, text=True, check=True)
                r = json.loads(out.stdout)
                if store not in best or r["seconds"] < best[store]["seconds"]:
                    best[store] = r
        exact, fp = best["exact"], best["fingerprints"]
        fp["same_as_exact"] = all(exact[k] == fp[k] for k in ("states", "transitions",
                                                               "verdicts"))
        fp["speed_vs_exact"] = exact["seconds"] / fp["seconds"]
        exact["interpreter"] = fp["interpreter"] = interpreter
        rows += [exact, fp]
    return rows


if __name__ == "__main__":
    print(json.dumps(_one(*sys.argv[1:4])))
