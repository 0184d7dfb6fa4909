"""The parallel search over the fingerprint store (mmcheck.engine.parallel_fingerprints)
against the one-process search and the exact parallel one: same states, transitions,
label counts, levels, terminal states and counterexample depths; the very traces of the
exact parallel search (both store states in the same order), rebuilt by replay; bounds,
errors, statistics and the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmcheck.engine import explorer
from mmcheck.engine.checkpoint import Checkpointer
from mmcheck.engine.parallel import WorkerError
from mmcheck.model.model import MMModel
from mmcheck.model.policy import resolve
from mmcheck.report.runner import policy_defs, run_policy
from mmcheck.report.trace import check_trace
from mmcheck.scenario.loader import load_scenario
from test_explorer import Counters, Graph, assert_trace_replays, random_graphs
from test_fingerprints import killed_then_resumed
from test_parallel import Exploding, Keyed, same_search

FP = {"store": "fingerprints"}


def same_traces(exact, fingerprints):
    """The fingerprint search's traces are the exact parallel search's, state by state."""
    assert list(exact.violations) == list(fingerprints.violations)
    for name, trace in exact.violations.items():
        other = fingerprints.violations[name]
        assert (trace.states, trace.labels, trace.reason) == \
            (other.states, other.labels, other.reason), name
    if exact.stuck_trace is not None:
        assert exact.stuck_trace.states == fingerprints.stuck_trace.states


@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("symmetric", [False, True])
def test_counters_same_as_one_process_and_as_exact_workers(workers, symmetric):
    model = Counters(4, 3, symmetric=symmetric,
                     bad={"two-maxed": lambda s: s.count(3) >= 2, "sum5": lambda s: sum(s) == 5})
    one = explorer.explore(model)
    many = explorer.explore(model, workers=workers, **FP)
    same_search(one, many)
    same_traces(explorer.explore(model, workers=workers), many)
    for trace in many.violations.values():
        assert_trace_replays(model, trace)
    assert many.store["kind"] == "fingerprints" and many.store["workers"] == workers
    assert many.store["generated"] >= many.states


@settings(max_examples=25, deadline=None)
@given(model=random_graphs(), canonicalize=st.booleans())
def test_random_graphs_same_as_one_process(model, canonicalize):
    one = explorer.explore(model, canonicalize=canonicalize)
    two = explorer.explore(model, canonicalize=canonicalize, workers=2, **FP)
    same_search(one, two)
    same_traces(explorer.explore(model, canonicalize=canonicalize, workers=2), two)
    for trace in two.violations.values():
        assert_trace_replays(model, trace, canonicalize)


def test_a_partition_key_that_sends_everything_to_one_worker():
    model = Keyed(lambda s: 7, 4, 3, bad={"sum5": lambda s: sum(s) == 5})
    many = explorer.explore(model, workers=3, **FP)
    same_search(explorer.explore(model), many)
    same_traces(explorer.explore(model, workers=3), many)


def test_bounds_stuck_states_and_stop_when_all_violated():
    model = Counters(3, 4)
    same_search(explorer.explore(model, max_depth=5),
                explorer.explore(model, max_depth=5, workers=2, **FP))
    bounded = explorer.explore(model, max_states=30, workers=2, **FP)
    assert bounded.bounded_by == "states" and 30 < bounded.states < 125
    edges = {0: [1, 4], 1: [2, 7], 2: [3], 4: [5], 5: [6]}
    graph = Graph(edges, initial=[0], final={3}, bad={5})
    two = explorer.explore(graph, workers=2, **FP)
    same_search(explorer.explore(graph), two)
    assert two.stuck_trace.states == [0, 1, 7]
    stopped = explorer.explore(graph, stop_when_all_violated=True, workers=2, **FP)
    assert stopped.bounded_by == "violations" and stopped.violations["good"].depth == 2


def test_a_failing_worker_is_reported_and_what_is_refused():
    with pytest.raises(WorkerError, match="model bug"):
        explorer.explore(Exploding(2, 3), workers=2, **FP)
    with pytest.raises(ValueError, match="not on Ray"):
        explorer.explore(Counters(2, 3), workers=2, backend="ray", **FP)


@pytest.mark.parametrize("path,policy", [
    ("scenarios/classics/vmsplice_unmap_child.yaml", "v5.7"),
    ("scenarios/classics/gup_fast_pin_racing_fork.yaml", "v5.9"),
    ("scenarios/anon/pinned_swapped_out_read_write.yaml", "v5.19"),
    ("scenarios/shared/shmem_swap_roundtrip.yaml", "v5.7"),
    ("scenarios/uffd/b10_pin_uffd_wp_cow.yaml", "v5.11"),      # step properties
    ("scenarios/uffd/b0prime_shmem_markers.yaml", "no-markers"),
    ("scenarios/uffd/wp_fork_shmem_event.yaml", "v6.18"),
])
def test_mm_scenarios_same_verdicts_and_traces(path, policy):
    sc = load_scenario(path)
    pol = resolve(policy, policy_defs(sc))
    one = explorer.explore(MMModel(sc, pol))
    m = MMModel(sc, pol)
    two = explorer.explore(m, workers=2, **FP)
    same_search(one, two)
    same_traces(explorer.explore(MMModel(sc, pol), workers=2), two)
    if path.endswith("vmsplice_unmap_child.yaml"):  # CVE-2020-29374 before 5.8
        assert "no-leak" in two.violations
    for name, trace in two.violations.items():
        assert_trace_replays(m, trace)


def test_menu_with_symmetry_through_the_runner():
    sc = load_scenario("scenarios/discover/two_pages_menu.yaml")
    one = run_policy(sc, "mapcount", depth=10)
    two = run_policy(sc, "mapcount", depth=10, workers=2, store="fingerprints")
    assert [(v.name, v.verdict, v.depth) for v in one.verdicts] == \
        [(v.name, v.verdict, v.depth) for v in two.verdicts]
    assert (one.states, one.transitions) == (two.states, two.transitions)
    for v in two.verdicts:
        if v.trace is not None:
            assert check_trace(MMModel(sc, resolve("mapcount")), v.trace)[0]


def test_cli_fingerprints_with_workers(tmp_path):
    args = [sys.executable, "-m", "mmcheck.cli", "run", "scenarios/classics/vmsplice_unmap_child.yaml",
            "-p", "v5.7", "--no-render", "--no-progress", "--out", str(tmp_path / "o")]
    exact = subprocess.run(args + ["--json"], capture_output=True, text=True)
    fp = subprocess.run(args + ["--json", "--store", "fingerprints", "-j", "2"],
                        capture_output=True, text=True)
    assert exact.returncode == fp.returncode, fp.stderr
    a, b = json.loads(exact.stdout), json.loads(fp.stdout)

    def key(out):
        return [(r["policy"], r["states"], r["transitions"], r["depth"],
                 {n: (v["verdict"], v.get("depth")) for n, v in r["verdicts"].items()})
                for s in out for r in s["runs"]]

    assert key(a) == key(b)
    assert b[0]["runs"][0]["store"]["kind"] == "fingerprints"
    text = subprocess.run(args + ["--store", "fingerprints", "-j", "2"], capture_output=True,
                          text=True)
    assert "fingerprints:" in text.stdout and "collision" in text.stdout


# ------------------------------------------------------------------ checkpoint and resume
def _interrupted_then_resumed(model, cut, directory, workers=2, **kw):
    """A checkpointed parallel search interrupted (as by Ctrl-C) when its `cut`-th level
    is about to be expanded, then resumed from the directory."""
    calls = [0]

    def progress(_report):
        calls[0] += 1
        if calls[0] == cut:
            raise KeyboardInterrupt

    first = explorer.explore(model, workers=workers, progress=progress,
                             checkpoint=Checkpointer.start(str(directory), {"cut": cut}),
                             **FP, **kw)
    cp = Checkpointer.open(str(directory))
    return first, explorer.explore(model, workers=workers, checkpoint=cp, resume=cp, **FP,
                                   **kw)


@pytest.mark.parametrize("cut", [1, 2, 5, 9])
def test_resume_after_an_interruption_gives_the_uninterrupted_result(tmp_path, cut):
    model = Counters(3, 5, bad={"edge": lambda s: s == (5, 0, 3), "late": lambda s: sum(s) > 11})
    whole = explorer.explore(model, workers=2, **FP)
    first, resumed = _interrupted_then_resumed(model, cut, tmp_path / "cp")
    assert first.bounded_by == "interrupted"
    same_search(whole, resumed)
    same_traces(whole, resumed)
    assert resumed.store["generated"] == whole.store["generated"]


@settings(max_examples=15, deadline=None)
@given(model=random_graphs(), cut=st.integers(min_value=1, max_value=6))
def test_random_graphs_resume(tmp_path_factory, model, cut):
    whole = explorer.explore(model, workers=2, **FP)
    first, resumed = _interrupted_then_resumed(model, cut, tmp_path_factory.mktemp("cp"))
    same_search(whole, resumed if first.bounded_by == "interrupted" else first)
    if first.bounded_by == "interrupted":
        same_traces(whole, resumed)


def test_mm_scenario_resume_and_another_worker_count_refused(tmp_path):
    sc = load_scenario("scenarios/uffd/b10_pin_uffd_wp_cow.yaml")   # step properties
    pol = resolve("v5.11", policy_defs(sc))
    whole = explorer.explore(MMModel(sc, pol), workers=2, **FP)
    first, resumed = _interrupted_then_resumed(MMModel(sc, pol), 6, tmp_path / "cp")
    assert first.bounded_by == "interrupted" and whole.violations
    same_search(whole, resumed)
    same_traces(whole, resumed)
    from mmcheck.engine.checkpoint import CheckpointError

    cp = Checkpointer.open(str(tmp_path / "cp"))
    with pytest.raises(CheckpointError, match="resumes with as many"):
        explorer.explore(MMModel(sc, pol), workers=3, checkpoint=cp, resume=cp, **FP)


def test_cli_parallel_run_killed_at_random_points_then_resumed(tmp_path):
    """SIGKILL a checkpointed `mmcheck run -j 2` at random moments (its workers die with
    it); `mmcheck resume` then gives the uninterrupted run's result, with two workers."""
    for directory in killed_then_resumed(
            ["scenarios/discover/generic_menu.yaml", "-p", "mapcount", "--no-render",
             "--json", "--store", "fingerprints", "-j", "2"], tmp_path, 20261207, 2):
        assert json.load(open(directory / "context.json"))["context"]["workers"] == 2
        assert (directory / "w1").is_dir()
