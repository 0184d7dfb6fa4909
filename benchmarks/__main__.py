"""`python -m benchmarks [--write]`: engine + MM benchmarks; --write records them in
benchmarks/RESULTS.md (machine, date, numbers) above the previous entries."""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import platform
import subprocess
import sys

from .engine import run_engine_benchmark
from .mm import run_menu_benchmark, run_mm_benchmark, run_suite_timing
from .parallel import run_parallel_benchmark
from .por import run_por_benchmark, table as por_table
from .stores import run_store_benchmark

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
    name = r["scenario"] + (f", {r['interpreter']}" if r.get("interpreter") else "")
    if r["store"] == "exact":
        return (f"| {name} | {r['policy']} | exact | {r['states']:,} | "
                f"{r['states_per_second']:,.0f} | 1 | - | {r['peak_growth_per_state']:,.0f} "
                f"| - | - |")
    return (f"| {name} | {r['policy']} | fingerprints | {r['states']:,} | "
            f"{r['states_per_second']:,.0f} | {r['speed_vs_exact']:.2f} | "
            f"{r['accounted_bytes_per_state']:.1f} | {r['peak_growth_per_state']:,.0f} | "
            f"{'yes' if r['same_as_exact'] else 'NO'} | {r['collision_optimistic']:.1e} |")


def target_rows(engine, mm, stores, pypy=(), big=(), por=()) -> list[str]:
    """Issue 13's targets, each with what this run measured and whether it is met; the
    ones nothing measures yet say so.  `big`: the rows of the >= 10^6-state parallel
    benchmark (benchmarks.parallel); `por`: benchmarks.por's rows."""
    one = [r for r in mm if r["workers"] == 1]
    best = max(r["states_per_second"] for r in one)
    speedups = []
    for r in mm:
        if r["workers"] > 1:
            base = next(o for o in one if (o["scenario"], o["policy"]) ==
                        (r["scenario"], r["policy"]))
            speedups.append((r["backend"], base["seconds"] / r["seconds"]))
    fp = [r for r in stores if r["store"] == "fingerprints"]
    worst = max(r["accounted_bytes_per_state"] for r in fp)
    fp_same = all(r["same_as_exact"] for r in fp)

    def row(target, measured, met):
        return f"| {target} | {measured} | {met} |"

    lines = ["| target | measured | met |", "|---|---|---|",
             row("engine >= 250k distinct states/s (trivial model)",
                 f"{engine['states_per_second']:,.0f}",
                 "yes" if engine["states_per_second"] >= 250_000 else "no"),
             row("MM model >= 100k distinct states/s, one process, CPython",
                 f"{best:,.0f} (best benchmark row)", "yes" if best >= 100_000 else "no"),
             row("MM model >= 300k distinct states/s under PyPy",
                 f"{max(r['states_per_second'] for r in pypy):,.0f} (best benchmark row, "
                 f"{pypy[0]['interpreter']})" if pypy else "not run (no PyPy: .pypy venv or "
                 "$MMCHECK_PYPY)",
                 "yes" if pypy and max(r["states_per_second"] for r in pypy) >= 300_000
                 else "no")]
    for r in big:
        if r["workers"] == 2:
            how = f"{r['store']} store" + (f", {r['interpreter']}" if r.get("interpreter")
                                          else "")
            lines.append(row(f">= 1.6x on 2 cores, {r['states']:,} states ({how})",
                             f"{r['speedup']:.2f}x (this machine's ceiling: "
                             f"{r['ceiling']:.2f}x)", "yes" if r["speedup"] >= 1.6 else "no"))
    for backend in sorted({b for b, _ in speedups}):
        got = [x for b, x in speedups if b == backend]
        lines.append(row(f">= 1.6x on 2 cores ({backend}; benchmark rows below 10^6 "
                         f"states)", f"{min(got):.2f}-{max(got):.2f}x",
                         "yes" if min(got) >= 1.6 else "no"))
    lines += [row("fingerprint store <= 24 B/state (accounted, frontier on disk)",
                  f"{worst:.1f} B (worst row)", "yes" if worst <= 24 else "no"),
              row("fingerprint store: same states and verdicts as exact",
                  "every row" if fp_same else "a row differs", "yes" if fp_same else "no"),
              row("a >= 10^8-state search on one machine", "not run by this command "
                  "(the largest recorded in RESULTS.md: 99.2M states, complete, "
                  "big_three_process_menu --symmetry frames, 2026-12-07)", "no"),
              ]
    if por:
        runs = sum(r["runs"] for r in por)
        differ = sum(r["differ"] for r in por)
        lines.append(row("--por: the same verdicts as the full search (shipped scenarios "
                         "x policies without a depth bound, menus, engine model)",
                         f"{runs:,} runs, {differ} differ", "yes" if not differ else "no"))
        menus = [r for r in por if r["what"].startswith("menu")]
        scripted = [r for r in por if r["what"].startswith("scripted")]
        engine_row = [r for r in por if r["what"].startswith("engine")]
        parts = []
        if menus:
            parts.append(f"menus {min(r['factor'] for r in menus):.2f}-"
                         f"{max(r['factor'] for r in menus):.2f}x")
        if scripted:
            parts.append(f"scripted scenarios {min(r['factor'] for r in scripted):.3f}-"
                         f"{max(r['factor'] for r in scripted):.3f}x")
        if engine_row:
            parts.append(f"engine counters {engine_row[0]['factor']:.0f}x")
        lines.append(row("--por: reduction factor per menu (states without / with)",
                         "; ".join(parts), "reported (no target)"))
    else:
        lines.append(row("partial-order reduction (--por)", "not run by this call", "no"))
    return lines


def pypy_interpreter():
    """A PyPy that can import mmcheck: $MMCHECK_PYPY, or the `.pypy` venv `.ci/run` makes."""
    for path in (os.environ.get("MMCHECK_PYPY"), os.path.join(ROOT, ".pypy", "bin", "python")):
        if path and os.access(path, os.X_OK):
            return path
    return None


def run_pypy_benchmark() -> list[dict]:
    """The one-process MM benchmark under PyPy (a subprocess; best of two runs each, so the
    second, JIT-warm run usually counts); [] without a PyPy."""
    pypy = pypy_interpreter()
    if pypy is None:
        return []
    code = ("import json, platform; from benchmarks.mm import run_mm_benchmark; "
            "rows = run_mm_benchmark(); "
            "[r.update(interpreter='PyPy ' + platform.python_version() + ' / ' + "
            "'.'.join(map(str, __import__('sys').pypy_version_info[:3]))) for r in rows]; "
            "print(json.dumps(rows))")
    out = subprocess.run([pypy, "-c", code], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        print(f"PyPy benchmark failed ({pypy}):\n{out.stderr[-2000:]}", file=sys.stderr)
        return []
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv) -> None:
    engine = run_engine_benchmark()
    mm = run_mm_benchmark() + run_mm_benchmark(workers=2)
    pypy = run_pypy_benchmark()
    if importlib.util.find_spec("ray") is not None:
        mm += run_mm_benchmark(workers=2, backend="ray")
    menus = run_menu_benchmark()
    stores = run_store_benchmark()
    if pypy:  # the stores under PyPy too: big searches are meant to run there
        stores += run_store_benchmark(python=pypy_interpreter(),
                                      interpreter=pypy[0]["interpreter"])
    por = run_por_benchmark()
    big = run_parallel_benchmark()
    if pypy:
        big += run_parallel_benchmark(stores=("fingerprints",), python=pypy_interpreter(),
                                      interpreter=pypy[0]["interpreter"])
    suite = run_suite_timing()
    lines = [f"## {datetime.date.today().isoformat()} — {machine()}", "", TARGETS, "",
             "| benchmark | policy | distinct states | transitions | seconds | states/s |",
             "|---|---|---|---|---|---|",
             f"| engine: three counters | - | {engine['states']:,} | {engine['transitions']:,} | "
             f"{engine['seconds']:.2f} | {engine['states_per_second']:,.0f} |"]
    for r in mm:
        how = ("" if r["workers"] == 1 else f", {r['workers']} Ray actors (local)"
               if r["backend"] == "ray" else f", {r['workers']} worker processes")
        lines.append(f"| MM: {r['scenario']}{how} | {r['policy']} | {r['states']:,} | "
                     f"{r['transitions']:,} | {r['seconds']:.2f} | "
                     f"{r['states_per_second']:,.0f} |")
    for r in pypy:
        lines.append(f"| MM: {r['scenario']}, {r['interpreter']} | {r['policy']} | "
                     f"{r['states']:,} | {r['transitions']:,} | {r['seconds']:.2f} | "
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
    lines += ["", "One worker process against two on a space of >= 10^6 states "
              "(`benchmarks/parallel.py`: big_three_process_menu, page_count, depth 16), "
              "each search in a fresh process, best of two interleaved runs; side by side = "
              "how much slower each of two one-process searches runs when both run at once "
              "(the machine's own contention), ceiling = 2 / that, the speed-up a perfect "
              "split would reach here:", "",
              "| store | interpreter | workers | states | transitions | seconds | states/s "
              "| speed-up | same states, verdicts | side by side | ceiling |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in big:
        lines.append(f"| {r['store']} | {r.get('interpreter') or 'CPython'} | {r['workers']} "
                     f"| {r['states']:,} | {r['transitions']:,} | {r['seconds']:.1f} | "
                     f"{r['states_per_second']:,.0f} | "
                     + (f"{r['speedup']:.2f}x | {'yes' if r['same_as_one'] else 'NO'} | "
                        f"{r['side_by_side_slowdown']:.2f}x | {r['ceiling']:.2f}x |"
                        if r["workers"] == 2 else "- | - | - | - |"))
    lines += ["", "Partial-order reduction (`--por`, `benchmarks/por.py`): states without and "
              "with it, one process, exact store; scenarios with a depth bound are left out "
              "(a reduced search runs unbounded); factor = states without / with:", ""]
    lines += por_table(por)
    lines += ["", "Issue 13's targets against this run:", ""] + target_rows(engine, mm, stores,
                                                                             pypy, big, por)
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
