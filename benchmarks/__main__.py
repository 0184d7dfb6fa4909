"""`python -m benchmarks [--write]`: engine + MM benchmarks; --write records them in
benchmarks/RESULTS.md (machine, date, numbers) above the previous entries."""

from __future__ import annotations

import datetime
import os
import platform
import sys

from .engine import run_engine_benchmark
from .mm import run_menu_benchmark, run_mm_benchmark, run_suite_timing
from .stores import run_store_benchmark

RESULTS = os.path.join(os.path.dirname(__file__), "RESULTS.md")
HEADER = "# Benchmark results\n\nNewest first. Produced by `python -m benchmarks --write`.\n"
TARGETS = ("Targets: engine >= 250k distinct states/s on a trivial model; MM model >= 50k "
           "distinct states/s (CPython, this 2-core machine; one process unless the row "
           "says otherwise).")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
            f"{platform.python_implementation()} {platform.python_version()}")


def _store_row(r: dict) -> str:
    if r["store"] == "exact":
        return (f"| {r['scenario']} | {r['policy']} | exact | {r['states']:,} | "
                f"{r['states_per_second']:,.0f} | 1 | - | {r['peak_growth_per_state']:,.0f} "
                f"| - | - |")
    return (f"| {r['scenario']} | {r['policy']} | fingerprints | {r['states']:,} | "
            f"{r['states_per_second']:,.0f} | {r['speed_vs_exact']:.2f} | "
            f"{r['accounted_bytes_per_state']:.1f} | {r['peak_growth_per_state']:,.0f} | "
            f"{'yes' if r['same_as_exact'] else 'NO'} | {r['collision_optimistic']:.1e} |")


def main(argv) -> None:
    engine = run_engine_benchmark()
    mm = run_mm_benchmark() + run_mm_benchmark(workers=2)
    menus = run_menu_benchmark()
    stores = run_store_benchmark()
    suite = run_suite_timing()
    lines = [f"## {datetime.date.today().isoformat()} — {machine()}", "", TARGETS, "",
             "| benchmark | policy | distinct states | transitions | seconds | states/s |",
             "|---|---|---|---|---|---|",
             f"| engine: three counters | - | {engine['states']:,} | {engine['transitions']:,} | "
             f"{engine['seconds']:.2f} | {engine['states_per_second']:,.0f} |"]
    for r in mm:
        how = "" if r["workers"] == 1 else f", {r['workers']} worker processes"
        lines.append(f"| MM: {r['scenario']}{how} | {r['policy']} | {r['states']:,} | "
                     f"{r['transitions']:,} | {r['seconds']:.2f} | "
                     f"{r['states_per_second']:,.0f} |")
    lines += ["", "Menu scenarios (`scenarios/discover/`), with the full symmetry reduction "
              "(frames, swap slots, interchangeable menu processes and pages) and without "
              "it (frames and swap slots only, `--symmetry frames`); factor = states without "
              "/ states with; verdicts and shortest depths compared:", "",
              "| menu scenario | policy | search | interchangeable | states | states/s | "
              "states without | states/s without | factor | time with / without | "
              "same verdicts |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in menus:
        search = "complete" if r["complete"] else f"depth {r['depth']}"
        lines.append(
            f"| {r['scenario']} | {r['policy']} | {search} | {r['interchangeable'] or 'nothing'} "
            f"| {r['states']:,} | {r['states_per_second']:,.0f} | {r['plain_states']:,} | "
            f"{r['plain_states_per_second']:,.0f} | {r['factor']:.2f} | "
            f"{r['seconds']:.2f} s / {r['plain_seconds']:.2f} s | "
            f"{'yes' if r['same_verdicts'] else 'NO'} |")
    lines += ["", "State stores (`--store`), each search in a fresh process, best of two "
              "interleaved runs; accounted = fingerprint table + parent index arrays per "
              "state (the frontier is on disk); peak growth = the process's peak resident "
              "size during the search per state (at these sizes mostly the model's bounded "
              "canonicalisation memo and the batch in flight):", "",
              "| scenario | policy | store | states | states/s | speed vs exact | "
              "accounted B/state | peak growth B/state | same states, verdicts | "
              "P(collision hid a state) |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [_store_row(r) for r in stores]
    lines += ["", f"Whole shipped scenario suite (`mmcheck run scenarios/`, traces included): "
              f"{suite['scenarios']} scenarios, {suite['runs']} scenario x policy runs, "
              f"{suite['states']:,} states in {suite['seconds']:.2f} s.", ""]
    text = "\n".join(lines)
    print(text)
    if "--write" in argv:
        old = open(RESULTS).read() if os.path.exists(RESULTS) else HEADER
        body = old[len(HEADER):] if old.startswith(HEADER) else old
        with open(RESULTS, "w") as f:
            f.write(HEADER + "\n" + text + "\n" + body.lstrip("\n"))


if __name__ == "__main__":
    main(sys.argv[1:])
