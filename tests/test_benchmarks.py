"""The benchmark commands run (their numbers are recorded in benchmarks/RESULTS.md, not
asserted here)."""

import pytest

from benchmarks.engine import run_engine_benchmark
from benchmarks.mm import run_menu_benchmark, run_mm_benchmark


def test_engine_benchmark_runs():
    r = run_engine_benchmark(n_states_target=2000)
    assert r["states"] > 1000 and r["transitions"] > r["states"]


def test_mm_benchmark_runs_on_a_small_scenario():
    rows = run_mm_benchmark(policies=("v5.9",), pattern="scenarios/classics/basic_cow.yaml")
    assert rows and rows[0]["states"] > 10


def test_menu_benchmark_reports_the_reduction_factor():
    rows = run_menu_benchmark(pattern="scenarios/discover/two_pages_menu.yaml", depth=11)
    assert [r["policy"] for r in rows] == ["mapcount", "page_count", "anon_exclusive"]
    for r in rows:
        assert r["interchangeable"] == "interchangeable pages X, Y (up to 2 renamings)"
        assert r["plain_states"] > r["states"] and r["factor"] > 1 and r["same_verdicts"]


def test_store_benchmark_compares_the_stores():
    from benchmarks.stores import run_store_benchmark

    rows = run_store_benchmark(cases=(("scenarios/classics/basic_cow.yaml", "v5.9"),),
                               repeat=1)
    exact, fp = rows
    assert (exact["store"], fp["store"]) == ("exact", "fingerprints")
    assert fp["same_as_exact"] and fp["states"] == exact["states"] > 10
    assert fp["accounted_bytes_per_state"] > 0


def test_store_benchmark_under_another_interpreter():
    """`python -m benchmarks` also compares the stores under PyPy (the interpreter big
    searches are meant for): the rows name it, and the stores still agree there."""
    from benchmarks.__main__ import _store_row, pypy_interpreter
    from benchmarks.stores import run_store_benchmark

    pypy = pypy_interpreter()
    if pypy is None:
        pytest.skip("no PyPy (.pypy venv or $MMCHECK_PYPY)")
    rows = run_store_benchmark(cases=(("scenarios/classics/basic_cow.yaml", "v5.9"),),
                               repeat=1, python=pypy, interpreter="PyPy x")
    exact, fp = rows
    assert fp["same_as_exact"] and fp["states"] == exact["states"] > 10
    assert _store_row(fp).startswith("| basic-cow, PyPy x | v5.9 | fingerprints |")


def test_targets_report_the_pypy_rows():
    """The PyPy target row is filled from the PyPy rows (`python -m benchmarks` runs them
    in a subprocess when a PyPy is there), and says so when none ran."""
    from benchmarks.__main__ import target_rows

    engine = {"states_per_second": 300_000}
    mm = [{"scenario": "s", "policy": "p", "workers": 1, "backend": "processes",
           "seconds": 1.0, "states_per_second": 50_000}]
    stores = [{"store": "fingerprints", "accounted_bytes_per_state": 20.0,
               "same_as_exact": True}]
    pypy = [dict(mm[0], states_per_second=70_000, interpreter="PyPy 3.9.16 / 7.3.11")]
    rows = "\n".join(target_rows(engine, mm, stores, pypy))
    assert "| MM model >= 300k distinct states/s under PyPy | 70,000 (best benchmark row, " \
           "PyPy 3.9.16 / 7.3.11) | no |" in rows
    assert "under PyPy | not run (no PyPy" in "\n".join(target_rows(engine, mm, stores))


def test_parallel_benchmark_compares_one_worker_with_two():
    from benchmarks.__main__ import target_rows
    from benchmarks.parallel import run_parallel_benchmark

    rows = run_parallel_benchmark(case=("scenarios/classics/basic_cow.yaml", "v5.9", 20),
                                  stores=("fingerprints",), repeat=1)
    one, two = rows
    assert (one["workers"], two["workers"]) == (1, 2) and two["same_as_one"]
    assert one["states"] > 10 and two["speedup"] > 0
    # the machine's ceiling: two one-process searches side by side, each at least as slow
    # as one alone give or take the noise of a tiny search
    assert two["side_by_side_slowdown"] > 0.5
    assert abs(two["ceiling"] * two["side_by_side_slowdown"] - 2) < 1e-9
    engine = {"states_per_second": 1}
    mm = [{"scenario": "s", "policy": "p", "workers": 1, "backend": "processes",
           "seconds": 1.0, "states_per_second": 1}]
    stores = [{"store": "fingerprints", "accounted_bytes_per_state": 20.0,
               "same_as_exact": True}]
    text = "\n".join(target_rows(engine, mm, stores, (), [one, dict(two, speedup=1.7)]))
    assert (f">= 1.6x on 2 cores, {two['states']:,} states (fingerprints store) | 1.70x "
            f"(this machine's ceiling: {two['ceiling']:.2f}x) | yes") in text


def test_por_benchmark_compares_states_and_verdicts():
    """benchmarks.por: the engine model reduces, the MM rows say whether every verdict
    agreed, and the target rows carry the factor per menu."""
    from benchmarks.__main__ import target_rows
    from benchmarks.por import run_por_benchmark, table

    rows = run_por_benchmark(limit=5, patterns=("scenarios/classics/vmsplice_unmap_*.yaml",
                                                "scenarios/discover/ro_pin_menu.yaml"))
    engine, scripted, *menus = rows
    assert engine["states"] == 6 ** 3 and engine["por_states"] == 16
    assert scripted["what"] == "scripted: scenarios/classics/ (every scenario x policy)"
    assert scripted["runs"] == 20 and scripted["same_verdicts"]
    assert scripted["reduced_states"] > 0 and scripted["por_states"] <= scripted["states"]
    assert [m["factor"] for m in menus] == [1.0, 1.0, 1.0]  # menus offer no ample set
    assert len(table(rows)) == 2 + len(rows)
    text = "\n".join(target_rows({"states_per_second": 1}, [
        {"workers": 1, "states_per_second": 1}], [{"store": "fingerprints",
                                                   "accounted_bytes_per_state": 20,
                                                   "same_as_exact": True}], por=rows))
    assert "| --por: the same verdicts as the full search" in text and "0 differ | yes |" in text
    assert "menus 1.00-1.00x" in text and "engine counters 14x" in text
