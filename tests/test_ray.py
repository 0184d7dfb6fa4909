"""The Ray backend (mmcheck.engine.ray_backend) against the one-process search, on a local
Ray instance this module starts itself."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from mmcheck.cli import main
from mmcheck.engine import explorer
from mmcheck.engine.parallel import WorkerError
from mmcheck.model.model import MMModel
from mmcheck.model.policy import resolve
from mmcheck.report.runner import run_policy
from mmcheck.scenario.loader import load_scenario

import test_explorer
from test_explorer import Counters, Graph, assert_trace_replays, random_graphs
from test_parallel import Exploding, same_search

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    # the toy models live in test modules the actors cannot import: ship them by value
    ray.cloudpickle.register_pickle_by_value(test_explorer)
    import test_parallel
    ray.cloudpickle.register_pickle_by_value(test_parallel)
    yield
    ray.shutdown()


def on_ray(model, **kw):
    return explorer.explore(model, backend="ray", **kw)


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("symmetric", [False, True])
def test_counters_same_as_one_process(workers, symmetric):
    model = Counters(4, 3, symmetric=symmetric,
                     bad={"two-maxed": lambda s: s.count(3) >= 2, "sum5": lambda s: sum(s) == 5})
    one = explorer.explore(model)
    many = on_ray(model, workers=workers)
    same_search(one, many)
    for trace in many.violations.values():
        assert_trace_replays(model, trace)


@settings(max_examples=15, deadline=None)
@given(model=random_graphs(), canonicalize=st.booleans())
def test_random_graphs_same_as_one_process(model, canonicalize):
    one = explorer.explore(model, canonicalize=canonicalize)
    two = on_ray(model, canonicalize=canonicalize, workers=2)
    same_search(one, two)
    for trace in two.violations.values():
        assert_trace_replays(model, trace, canonicalize)


def test_bounds_stuck_states_and_stopping():
    model = Counters(3, 4)
    same_search(explorer.explore(model, max_depth=5), on_ray(model, max_depth=5, workers=2))
    bounded = on_ray(model, max_states=30, workers=2)
    assert bounded.bounded_by == "states" and 30 < bounded.states < 125
    graph = Graph({0: [1, 4], 1: [2, 7], 2: [3], 4: [5], 5: [6]}, initial=[0], final={3},
                  bad={5})
    same_search(explorer.explore(graph), on_ray(graph, workers=2))
    stopped = on_ray(graph, stop_when_all_violated=True, workers=2)
    assert stopped.bounded_by == "violations" and stopped.violations["good"].depth == 2


def test_a_failing_actor_is_reported_not_hung():
    with pytest.raises(WorkerError, match="model bug"):
        on_ray(Exploding(2, 3), workers=2)


@pytest.mark.parametrize("path,policy", [
    ("scenarios/classics/gup_fast_pin_racing_fork.yaml", "v5.7"),
    ("scenarios/shared/shmem_swap_roundtrip.yaml", "v5.19"),
    ("scenarios/uffd/b10_pin_uffd_wp_cow.yaml", "v5.11"),
])
def test_mm_scenarios_same_as_one_process(path, policy):
    sc = load_scenario(path)
    one = explorer.explore(MMModel(sc, resolve(policy)))
    m = MMModel(sc, resolve(policy))
    two = on_ray(m, workers=2)
    same_search(one, two)
    for trace in two.violations.values():
        assert_trace_replays(m, trace)


def test_runner_and_cli_on_ray(tmp_path):
    sc = load_scenario("scenarios/discover/two_pages_menu.yaml")
    one = run_policy(sc, "page_count", depth=9)
    two = run_policy(sc, "page_count", depth=9, workers=2, backend="ray")
    assert (one.states, one.transitions) == (two.states, two.transitions)
    assert [(v.name, v.verdict, v.depth) for v in one.verdicts] == \
        [(v.name, v.verdict, v.depth) for v in two.verdicts]
    r = CliRunner().invoke(main, ["run", "scenarios/classics/vmsplice_unmap_child.yaml",
                                  "-p", "v5.7", "--backend", "ray", "-j", "2", "--no-render",
                                  "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "VIOLATED@12" in r.output


@pytest.mark.parametrize("args,message", [
    (["--backend", "ray", "--store", "fingerprints"], "--store fingerprints"),
    (["--address", "127.0.0.1:6379"], "--address: only with --backend ray"),
    (["--backend", "cluster"], "--backend"),
])
def test_cli_bad_backend_options(args, message):
    r = CliRunner().invoke(main, ["run", "scenarios/classics/basic_cow.yaml", *args])
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output


def test_no_default_memory_limit_on_a_cluster():
    """This machine's free memory says nothing of a cluster's: only --max-memory limits a
    search at --address (a local Ray instance keeps the default)."""
    from mmcheck.cli import _search_options

    assert _search_options("exact", None, 4, "ray", "head:6379")["max_memory"] is None
    assert _search_options("exact", "8G", 4, "ray", "head:6379")["max_memory"] == 8 << 30
    assert _search_options("exact", None, 2, "ray", None)["max_memory"] > 0
