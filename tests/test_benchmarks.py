"""The benchmark commands run (their numbers are recorded in benchmarks/RESULTS.md, not
asserted here)."""

from benchmarks.engine import run_engine_benchmark
from benchmarks.mm import run_mm_benchmark


def test_engine_benchmark_runs():
    r = run_engine_benchmark(n_states_target=2000)
    assert r["states"] > 1000 and r["transitions"] > r["states"]


def test_mm_benchmark_runs_on_a_small_scenario():
    rows = run_mm_benchmark(policies=("v5.9",), pattern="scenarios/classics/basic_cow.yaml")
    assert rows and rows[0]["states"] > 10
