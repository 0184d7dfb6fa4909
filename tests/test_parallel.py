"""The hash-partitioned multi-process search (mmcheck.parallel) against the one-process
explorer: same states, transitions, label counts, levels, terminal states and shortest
counterexample depths; traces that replay; errors and bounds."""

from __future__ import annotations

import os
import sys
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmcheck.engine import explorer
from mmcheck.scenario.loader import load_scenario
from mmcheck.model.model import MMModel
from mmcheck.engine.parallel import WorkerError
from mmcheck.model.policy import resolve
from mmcheck.report.runner import run_policy
from test_explorer import Counters, Graph, assert_trace_replays, random_graphs


def same_search(a, b):
    assert (a.complete, a.bounded_by, a.states, a.transitions, a.max_depth, a.level_sizes,
            a.final_states, a.stuck_states) == \
        (b.complete, b.bounded_by, b.states, b.transitions, b.max_depth, b.level_sizes,
         b.final_states, b.stuck_states)
    assert a.label_counts == b.label_counts
    assert {n: t.depth for n, t in a.violations.items()} == \
        {n: t.depth for n, t in b.violations.items()}
    assert list(a.violations) == list(b.violations)
    assert (a.stuck_trace is None) == (b.stuck_trace is None)
    if a.stuck_trace is not None:
        assert a.stuck_trace.depth == b.stuck_trace.depth


@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("symmetric", [False, True])
def test_counters_same_as_one_process(workers, symmetric):
    model = Counters(4, 3, symmetric=symmetric,
                     bad={"two-maxed": lambda s: s.count(3) >= 2, "sum5": lambda s: sum(s) == 5})
    one = explorer.explore(model)
    many = explorer.explore(model, workers=workers)
    same_search(one, many)
    for trace in many.violations.values():
        assert_trace_replays(model, trace)


@settings(max_examples=25, deadline=None)
@given(model=random_graphs(), canonicalize=st.booleans())
def test_random_graphs_same_as_one_process(model, canonicalize):
    one = explorer.explore(model, canonicalize=canonicalize)
    two = explorer.explore(model, canonicalize=canonicalize, workers=2)
    same_search(one, two)
    for trace in two.violations.values():
        assert_trace_replays(model, trace, canonicalize)


class Keyed(Counters):
    """Counters whose partition key is one counter (or a constant: one worker owns
    every state, the others expand nothing)."""

    def __init__(self, key, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.partition_key = key


@pytest.mark.parametrize("key", [lambda s: s[0], lambda s: 7], ids=["one-counter", "constant"])
def test_a_partition_key_decides_the_owner_and_changes_no_result(key):
    model = Keyed(key, 4, 3, bad={"sum5": lambda s: sum(s) == 5})
    one = explorer.explore(model)
    many = explorer.explore(model, workers=3)
    same_search(one, many)
    for trace in many.violations.values():
        assert_trace_replays(model, trace)
    from mmcheck.engine.parallel import owner_of
    assert owner_of(model, (1, 2, 0, 0), 3) == hash(1) % 3
    assert owner_of(Counters(4, 3), (1, 2, 0, 0), 3) == hash((1, 2, 0, 0)) % 3


def test_mm_partition_key_keeps_most_successors_with_their_parent():
    """The MM model's partition key (pages' contents, process records, menu counters)
    changes on few transitions, unlike the whole state."""
    sc = load_scenario("scenarios/discover/two_pages_menu.yaml")
    m = MMModel(sc, resolve("page_count"))
    frontier, seen, crossing, edges = [m.canonical(s) for s in m.initial_states()], set(), 0, 0
    for _level in range(11):  # 21,171 transitions: 16% cross (the whole state: 37%)
        nxt = []
        for s in frontier:
            for _label, succ in m.successors(s):
                succ = m.canonical(succ)
                edges += 1
                crossing += hash(m.partition_key(succ)) % 2 != hash(m.partition_key(s)) % 2
                if succ not in seen:
                    seen.add(succ)
                    nxt.append(succ)
        frontier = nxt
    assert edges > 20_000 and crossing < 0.25 * edges


def test_depth_and_state_bounds():
    model = Counters(3, 4)
    one = explorer.explore(model, max_depth=5)
    two = explorer.explore(model, max_depth=5, workers=2)
    same_search(one, two)
    bounded = explorer.explore(model, max_states=30, workers=2)
    assert bounded.bounded_by == "states" and not bounded.complete
    assert 30 < bounded.states < 125  # checked per level: at most one level more


def test_stuck_states_and_stop_when_all_violated():
    edges = {0: [1, 4], 1: [2, 7], 2: [3], 4: [5], 5: [6]}
    model = Graph(edges, initial=[0], final={3}, bad={5})
    same_search(explorer.explore(model), explorer.explore(model, workers=2))
    stopped = explorer.explore(model, stop_when_all_violated=True, workers=2)
    assert stopped.bounded_by == "violations" and stopped.violations["good"].depth == 2


class Exploding(Counters):
    def successors(self, state):
        if sum(state) == 3:
            raise ValueError("model bug at " + repr(state))
        return super().successors(state)


def test_a_failing_worker_is_reported_not_hung():
    with pytest.raises(WorkerError, match="model bug"):
        explorer.explore(Exploding(2, 3), workers=2)


@pytest.mark.parametrize("store", ["exact", "fingerprints"])
def test_batches_through_files_give_the_same_search_and_leave_no_file(tmp_path, monkeypatch,
                                                                      store):
    """Every crossing batch goes through a file (the threshold lowered to 0; big ones do
    in real searches): the same search, and the transfer directory is gone afterwards,
    also when a worker fails."""
    from mmcheck.engine import parallel

    monkeypatch.setattr(parallel, "_FILE_MIN", 0)  # the workers are forked: they see it
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    real_open, by_file = open, tmp_path / "by-file"

    def post(self, owner, blob, last):  # in the worker: note that a file carried it
        if self.transfers is not None:
            with real_open(by_file, "a") as f:
                f.write("x")
        return real_post(self, owner, blob, last)

    real_post = parallel._Worker.post
    monkeypatch.setattr(parallel._Worker, "post", post)
    sc = load_scenario("scenarios/classics/vmsplice_unmap_child.yaml")
    one = explorer.explore(MMModel(sc, resolve("v5.7")))
    m = MMModel(sc, resolve("v5.7"))
    spill = {"spill_dir": str(tmp_path)} if store == "fingerprints" else {}
    many = explorer.explore(m, workers=3, store=store, **spill)
    same_search(one, many)
    for trace in many.violations.values():
        assert_trace_replays(m, trace)
    assert by_file.exists()
    assert not [n for n in os.listdir(tmp_path) if n.startswith("mmcheck-transfer-")]
    with pytest.raises(WorkerError, match="model bug"):
        explorer.explore(Exploding(2, 3), workers=2)
    assert not [n for n in os.listdir(tmp_path) if n.startswith("mmcheck-transfer-")]


def test_a_fingerprint_worker_reads_a_batch_file_when_it_merges_it(tmp_path, monkeypatch):
    """The fingerprint store's workers leave the batches that came through files on disk
    until they merge them at the end of the level (a level's crossing states held in
    memory took ~4 GB a worker in a 2x10^8-state search); the exact store's workers read
    them on arrival.  Which code reads each file is noted from inside the forked workers."""
    from mmcheck.engine import parallel

    monkeypatch.setattr(parallel, "_FILE_MIN", 0)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    readers = tmp_path / "readers"
    real_load = parallel._Worker.load

    def load(blob):
        if type(blob) is str:
            assert os.path.exists(blob)
            with open(readers, "a") as f:
                f.write(sys._getframe(1).f_code.co_name + "\n")
        return real_load(blob)

    monkeypatch.setattr(parallel._Worker, "load", staticmethod(load))
    sc = load_scenario("scenarios/classics/vmsplice_unmap_child.yaml")
    one = explorer.explore(MMModel(sc, resolve("v5.7")))
    for store, reader in (("fingerprints", "_level"), ("exact", "take")):
        readers.unlink(missing_ok=True)
        spill = {"spill_dir": str(tmp_path)} if store == "fingerprints" else {}
        many = explorer.explore(MMModel(sc, resolve("v5.7")), workers=2, store=store,
                                **spill)
        same_search(one, many)
        assert set(readers.read_text().split()) == {reader}, store


def test_a_killed_searchs_transfer_directory_is_removed_by_the_next_search(tmp_path,
                                                                           monkeypatch):
    """A search killed with SIGKILL cannot remove its transfer directory; the next parallel
    search in the same place removes those of dead processes, not those of live ones."""
    import subprocess

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = tmp_path / f"mmcheck-transfer-{dead}-abc"
    stale.mkdir()
    (stale / "0-1-0").write_bytes(b"M" * 100)
    live = tmp_path / f"mmcheck-transfer-{os.getpid()}-def"
    live.mkdir()
    other = tmp_path / "mmcheck-transfer-notes"
    other.mkdir()
    explorer.explore(Counters(2, 3), workers=2)
    assert not stale.exists() and live.exists() and other.exists()


def test_progress_once_per_level():
    reports = []
    explorer.explore(Counters(2, 3), workers=2, progress=reports.append)
    assert [r.depth for r in reports] == list(range(7))  # levels 0..6, each before expansion


@pytest.mark.parametrize("path", ["scenarios/classics/vmsplice_unmap_child.yaml",
                                  "scenarios/classics/gup_fast_pin_racing_fork.yaml",
                                  "scenarios/anon/pinned_swapped_out_read_write.yaml",
                                  "scenarios/shared/shmem_swap_roundtrip.yaml",
                                  "scenarios/cow/nonanon-ro-pin--memfd.yaml"])
@pytest.mark.parametrize("policy", ["v5.7", "v5.9", "v5.19"])
def test_mm_scenarios_same_as_one_process(path, policy):
    sc = load_scenario(path)
    one = explorer.explore(MMModel(sc, resolve(policy)))
    m = MMModel(sc, resolve(policy))
    two = explorer.explore(m, workers=2)
    same_search(one, two)
    for trace in two.violations.values():
        assert_trace_replays(m, trace)


def test_runner_with_workers_gives_the_same_verdicts_and_replayable_traces():
    sc = load_scenario("scenarios/discover/two_pages_menu.yaml")
    one = run_policy(sc, "mapcount", depth=10)
    two = run_policy(sc, "mapcount", depth=10, workers=2)
    assert [(v.name, v.verdict, v.depth) for v in one.verdicts] == \
        [(v.name, v.verdict, v.depth) for v in two.verdicts]
    assert one.states == two.states
    from mmcheck.report.trace import check_trace
    for v in two.verdicts:
        assert check_trace(MMModel(sc, resolve("mapcount")), v.trace)[0]


def test_ctrl_c_between_levels_returns_the_partial_result():
    def progress(p):
        if p.depth == 4:
            raise KeyboardInterrupt

    model = Counters(3, 5, bad={"early": lambda s: s == (1, 1, 0)})
    result = explorer.explore(model, workers=2, progress=progress)
    assert result.bounded_by == "interrupted" and not result.complete
    assert result.max_depth == 4 and result.states == sum(result.level_sizes)
    assert result.violations["early"].depth == 2
    assert_trace_replays(model, result.violations["early"])


def test_cli_workers_option(tmp_path):
    from click.testing import CliRunner

    from mmcheck.cli import main

    outs = []
    for j in ("1", "2"):
        r = CliRunner().invoke(main, ["run", "scenarios/classics/vmsplice_unmap_child.yaml",
                                      "-j", j, "--json", "--no-render", "--out",
                                      str(tmp_path / j)])
        assert r.exit_code == 0, r.output
        import json
        outs.append([(x["policy"], x["states"], {k: v["verdict"] for k, v in
                                                 x["verdicts"].items()})
                     for x in json.loads(r.output)[0]["runs"]])
    assert outs[0] == outs[1]


# write tracking: step properties (wp-reported, soft-dirty-complete, op-expectations), the
# monitor, per-process tracker ghost, scenario-defined policies
@pytest.mark.parametrize("path,policy", [
    ("scenarios/uffd/b0prime_shmem_markers.yaml", "no-markers"),
    ("scenarios/uffd/b0prime_shmem_markers.yaml", "v5.18"),
    ("scenarios/uffd/b10_pin_uffd_wp_cow.yaml", "v5.11"),
    ("scenarios/uffd/b5_thp_migration.yaml", "v5.18"),
    ("scenarios/uffd/sd3_vma_merge.yaml", "v6.4"),
    ("scenarios/uffd/wp_fork_shmem_event.yaml", "v6.18"),
])
def test_write_tracking_scenarios_same_as_one_process(path, policy):
    from mmcheck.report.runner import policy_defs
    from mmcheck.report.trace import check_trace

    sc = load_scenario(path)
    one = run_policy(sc, policy)
    two = run_policy(sc, policy, workers=2)
    assert [(v.name, v.verdict, v.depth) for v in one.verdicts] == \
        [(v.name, v.verdict, v.depth) for v in two.verdicts]
    assert (one.states, one.transitions) == (two.states, two.transitions)
    assert any(v.verdict == "violated" for v in two.verdicts) or policy == "v6.18"
    for v in two.verdicts:
        if v.trace is not None:
            assert check_trace(MMModel(sc, resolve(policy, policy_defs(sc))), v.trace)[0]


def test_uffd_menu_with_workers_gives_the_same_verdicts():
    sc = load_scenario("scenarios/discover/uffd_menu.yaml")
    one = run_policy(sc, "v5.11", depth=9, with_traces=False)
    two = run_policy(sc, "v5.11", depth=9, workers=2, with_traces=False)
    assert [(v.name, v.verdict, v.depth) for v in one.verdicts] == \
        [(v.name, v.verdict, v.depth) for v in two.verdicts]
    assert one.states == two.states
