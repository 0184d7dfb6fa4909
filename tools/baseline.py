"""Record (or compare against) the verdicts, shortest-counterexample depths and state counts
of every shipped scenario under each of its policies.

    python tools/baseline.py record FILE.json [PATHS...]
    python tools/baseline.py compare FILE.json [PATHS...]

Every refactor and optimisation must leave these numbers unchanged unless a cited kernel
fact says otherwise (the brief); `compare` prints each difference and exits 1 on any.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mmcheck.scenario.loader import load_scenario  # noqa: E402
from mmcheck.report.runner import run_scenario  # noqa: E402

DEFAULT_PATHS = ["scenarios", "benchmarks/scenarios"]


def collect(paths) -> dict:
    out = {}
    files = []
    for p in paths:
        p = ROOT / p if not Path(p).is_absolute() else Path(p)
        files.extend(sorted(p.rglob("*.yaml")) if p.is_dir() else [p])
    for f in files:
        sc = load_scenario(str(f.relative_to(ROOT)))
        t0 = time.perf_counter()
        for r in run_scenario(sc):
            out[f"{sc.path}::{r.policy}"] = {
                "states": r.states, "transitions": r.transitions, "depth": r.depth,
                "complete": r.complete, "copies": r.copies,
                "verdicts": {v.name: [v.verdict, v.depth] for v in r.verdicts},
            }
        print(f"{time.perf_counter() - t0:7.2f}s {sc.path}", file=sys.stderr)
    return out


def main(argv):
    if len(argv) < 2 or argv[0] not in ("record", "compare"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, path, paths = argv[0], Path(argv[1]), argv[2:] or DEFAULT_PATHS
    now = collect(paths)
    if mode == "record":
        path.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
        print(f"recorded {len(now)} runs in {path}")
        return 0
    old = json.loads(path.read_text())
    diffs = 0
    for key in sorted(set(old) | set(now)):
        a, b = old.get(key), now.get(key)
        if a != b:
            diffs += 1
            print(f"DIFF {key}:\n  before {a}\n  after  {b}")
    print(f"{len(now)} runs compared, {diffs} differences")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
