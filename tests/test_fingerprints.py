"""The fingerprint store (mmcheck.engine.fingerprints) against the exact store, and the
memory limit (mmcheck.engine.memory)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from mmcheck.cli import main
from mmcheck.engine import memory
from mmcheck.engine.explorer import explore
from mmcheck.engine import fingerprints as fingerprint_engine
from mmcheck.engine.fingerprints import FingerprintSet
from mmcheck.model.model import MMModel
from mmcheck.model.policy import resolve
from mmcheck.report.runner import policy_defs, run_policy
from mmcheck.scenario.loader import load_scenario

from test_explorer import Counters, random_graphs

OUTCOME = ["complete", "bounded_by", "states", "transitions", "max_depth", "label_counts",
           "final_states", "stuck_states", "stuck_trace", "violations", "level_sizes",
           "unreached"]


def same_search(a, b):
    for name in OUTCOME:
        assert getattr(a, name) == getattr(b, name), name


# ------------------------------------------------------------------------- the table

@settings(max_examples=200, deadline=None)
@given(batches=st.lists(st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=60),
                        max_size=12))
def test_fingerprint_set_is_a_set(batches):
    """Each batch's `new` mask marks exactly the first occurrence of each value not seen in
    earlier batches (the table grows from 16 slots through several rehashes)."""
    table, seen = FingerprintSet(capacity=16), set()
    for batch in batches:
        new = table.add(np.array(batch, dtype=np.uint64))
        expected = []
        for value in batch:
            expected.append(value not in seen)
            seen.add(value)
        assert new.tolist() == expected
    assert table.count == len(seen)
    assert (table.table != 0).sum() == len(seen)
    keys = np.sort(table.table[table.table != 0])
    want = int(np.diff(keys).min()) if len(keys) > 1 else None
    chunk = fingerprint_engine.GAP_CHUNK
    try:
        fingerprint_engine.GAP_CHUNK = 7   # several chunks
        assert table.min_gap() == want
    finally:
        fingerprint_engine.GAP_CHUNK = chunk
    assert table.count <= len(table.table) * FingerprintSet.MAX_LOAD


# -------------------------------------------------------------- same search as exact

@pytest.mark.parametrize("n,k,symmetric", [(3, 4, False), (4, 3, True), (2, 20, False)])
def test_counters_same_as_exact(n, k, symmetric):
    model = Counters(n, k, symmetric, bad={"top": lambda s: s[0] == k and s[-1] >= 2})
    same_search(explore(model), explore(model, store="fingerprints"))


@settings(max_examples=200, deadline=None)
@given(model=random_graphs(), canonicalize=st.booleans())
def test_random_graphs_same_as_exact(model, canonicalize):
    """Same states, levels, label counts, verdicts, stuck states and counterexamples (the
    fingerprint store rebuilds each trace by replaying recorded successor positions)."""
    same_search(explore(model, canonicalize=canonicalize),
                explore(model, canonicalize=canonicalize, store="fingerprints"))


@pytest.mark.parametrize("depth,max_states", [(3, None), (None, 7), (None, 1), (2, 5)])
def test_bounds_same_as_exact(depth, max_states):
    model = Counters(3, 4)
    same_search(explore(model, max_depth=depth, max_states=max_states),
                explore(model, max_depth=depth, max_states=max_states, store="fingerprints"))


SCENARIOS = [
    ("scenarios/classics/gup_fast_pin_racing_fork.yaml", "v5.7"),
    ("scenarios/anon/fork_vs_reclaim_two_pages.yaml", "v5.19"),
    ("scenarios/shared/shared_pin_coherent.yaml", "v6.2"),
    ("scenarios/uffd/b0prime_shmem_markers.yaml", "no-markers"),
    ("scenarios/uffd/b10_pin_uffd_wp_cow.yaml", "v5.11"),
    ("scenarios/uffd/sd4_shmem_zap.yaml", "v6.18"),
]


@pytest.mark.parametrize("path,policy", SCENARIOS)
def test_mm_scenarios_same_as_exact(path, policy):
    """Invariants, step properties (uffd), final and sometimes properties, stuck states."""
    sc = load_scenario(path)

    def search(**kw):
        model = MMModel(sc, resolve(policy, policy_defs(sc)), None)
        return explore(model, max_depth=sc.depth, max_states=sc.max_states, **kw)

    same_search(search(), search(store="fingerprints"))


def test_menu_same_verdicts_and_counts_through_the_runner():
    sc = load_scenario("scenarios/discover/uffd_menu.yaml")
    a = run_policy(sc, "v5.11", depth=8)
    b = run_policy(sc, "v5.11", depth=8, store="fingerprints")
    assert (a.states, a.transitions, a.depth) == (b.states, b.transitions, b.depth)
    assert [(v.name, v.verdict, v.depth, v.reason, v.trace) for v in a.verdicts] == \
        [(v.name, v.verdict, v.depth, v.reason, v.trace) for v in b.verdicts]
    assert b.store["kind"] == "fingerprints" and a.store == {"kind": "exact"}
    assert b.store["bytes_per_state"] < 30


# ---------------------------------------------------------------- collisions, reported

class Colliding(Counters):
    """Counters whose fingerprint keeps only the sum of the counters: distinct states with
    the same sum collide, and the search misses them, as the documentation warns."""

    def fingerprint(self, state):
        return sum(state)


def test_a_bad_fingerprint_hides_states():
    """What the estimates assume (a well-mixed fingerprint) matters: with a bad one the
    search silently misses states, which is why exact stays the default."""
    exact = explore(Counters(3, 3))
    fp = explore(Colliding(3, 3), store="fingerprints")
    assert fp.states == 10 < exact.states == 64        # one state per sum 0..9
    d, g = fp.states, fp.store["generated"]
    assert fp.store["collision_optimistic"] == d * (g - d) / 2 ** 64


def test_collision_estimates_are_tiny_for_a_real_search():
    res = explore(Counters(4, 9), store="fingerprints")
    assert res.states == 10 ** 4
    assert 0 < res.store["collision_optimistic"] < 1e-9
    assert 0 < res.store["collision_actual"] < 1e-6


# ----------------------------------------------------------------- the memory limit

def test_parse_size():
    assert memory.parse_size("20G") == 20 << 30
    assert memory.parse_size("512m") == 512 << 20
    assert memory.parse_size("1.5GiB") == 3 << 29
    assert memory.parse_size("4096") == 4096
    for bad in ("", "12Q", "-1G", "0", "G"):
        with pytest.raises(ValueError):
            memory.parse_size(bad)
    assert 0 < memory.default_limit() < memory.available_bytes() + memory.rss_bytes()


@pytest.mark.parametrize("kw", [{}, {"store": "fingerprints"}, {"workers": 2}])
def test_memory_limit_stops_with_the_partial_result(kw):
    model = Counters(3, 40)   # 68,921 states
    res = explore(model, max_memory=1, **kw)
    assert res.bounded_by == "memory" and not res.complete
    assert 0 < res.states < 41 ** 3
    full = explore(model, max_memory=64 << 30, **kw)
    assert full.complete and full.states == 41 ** 3


def test_cli_memory_limit_says_how_to_continue():
    r = subprocess.run([sys.executable, "-m", "mmcheck.cli", "run",
                        "scenarios/discover/generic_menu.yaml", "-p", "mapcount",
                        "--max-memory", "1M", "--no-render"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 4, r.stderr
    assert "out of memory (the limit is 1.0 MiB" in r.stderr
    assert "--store fingerprints" in r.stderr
    assert "Traceback" not in r.stderr


# ------------------------------------------------------------------------------ CLI

def test_cli_store_fingerprints(tmp_path):
    args = ["run", "scenarios/classics/vmsplice_unmap_child.yaml", "-p", "v5.7", "-p", "v5.8",
            "--no-render", "--out", str(tmp_path)]
    exact = CliRunner().invoke(main, args + ["--json"])
    fp = CliRunner().invoke(main, args + ["--json", "--store", "fingerprints"])
    assert exact.exit_code == fp.exit_code == 0        # v5.7 leaks, as expected
    a, b = json.loads(exact.output)[0]["runs"], json.loads(fp.output)[0]["runs"]
    for ra, rb in zip(a, b):
        assert ra["states"] == rb["states"] and ra["verdicts"] == rb["verdicts"]
        assert rb["store"]["kind"] == "fingerprints"
    text = CliRunner().invoke(main, args + ["--store", "fingerprints"]).output
    assert "P(a collision hid a state)" in text


@pytest.mark.parametrize("args,message", [
    (["--store", "fingerprints", "-j", "2", "--backend", "ray"], "--store fingerprints"),
    (["--max-memory", "12Q"], "--max-memory"),
    (["--store", "disk"], "--store"),
])
def test_cli_bad_store_options(args, message):
    for cmd in (["run", "scenarios/classics/basic_cow.yaml"],
                ["compare", "scenarios/classics/basic_cow.yaml", "--depth", "3"]):
        r = CliRunner().invoke(main, cmd + args)
        assert r.exit_code == 2 and message in r.output
        assert "Traceback" not in r.output


# ------------------------------------------------------------------ checkpoint and resume

from mmcheck.engine.checkpoint import Checkpointer  # noqa: E402


def _interrupted_then_resumed(model, cut, tmp_path, **kw):
    """Search with checkpoints, interrupted (as by Ctrl-C) when the `cut`-th level starts
    expanding; then resume from the directory."""
    expand = fingerprint_engine.FingerprintSearch._expand
    calls = [0]

    def cut_short(self, frontier, level):
        calls[0] += 1
        if calls[0] == cut:
            raise KeyboardInterrupt
        return expand(self, frontier, level)

    directory = str(tmp_path / f"cp{cut}")
    fingerprint_engine.FingerprintSearch._expand = cut_short
    try:
        first = explore(model, store="fingerprints",
                        checkpoint=Checkpointer.start(directory, {"test": cut}), **kw)
    finally:
        fingerprint_engine.FingerprintSearch._expand = expand
    cp = Checkpointer.open(directory)
    assert cp.context == {"test": cut}
    return first, explore(model, store="fingerprints", checkpoint=cp, resume=cp, **kw)


@settings(max_examples=60, deadline=None)
@given(model=random_graphs(), cut=st.integers(min_value=1, max_value=8))
def test_resume_after_an_interruption_gives_the_uninterrupted_result(tmp_path_factory, model,
                                                                     cut):
    whole = explore(model, store="fingerprints")
    first, resumed = _interrupted_then_resumed(model, cut, tmp_path_factory.mktemp("cp"))
    if first.bounded_by == "interrupted":
        same_search(whole, resumed)
    else:   # fewer levels than the cut: nothing was interrupted
        same_search(whole, first)


def test_resume_with_bounds_and_violations(tmp_path):
    model = Counters(3, 6, bad={"edge": lambda s: s == (6, 0, 3), "late": lambda s: sum(s) > 14})
    whole = explore(model, store="fingerprints", max_depth=16)
    for cut in (2, 9, 15):
        first, resumed = _interrupted_then_resumed(model, cut, tmp_path, max_depth=16)
        assert first.bounded_by == "interrupted"
        same_search(whole, resumed)


def test_mm_scenario_resume_matches(tmp_path):
    sc = load_scenario("scenarios/uffd/b10_pin_uffd_wp_cow.yaml")
    model = MMModel(sc, resolve("v5.11", policy_defs(sc)), None)
    whole = explore(model, store="fingerprints", max_depth=sc.depth)
    first, resumed = _interrupted_then_resumed(model, 4, tmp_path, max_depth=sc.depth)
    assert first.bounded_by == "interrupted"
    same_search(whole, resumed)


def _json_runs(text):
    runs = json.loads(text)[0]["runs"]
    for r in runs:
        for varying in ("seconds", "store", "states_per_second", "resident_bytes"):
            r.pop(varying)
        for v in r["verdicts"].values():
            v.pop("files")
    return runs


def killed_then_resumed(menu, tmp_path, seed, rounds):
    """Run `mmcheck run *menu` whole, then `rounds` times with --checkpoint, SIGKILLed at
    a random moment after its first checkpoint, and resumed: each resumed result must be
    the whole run's (states, transitions, depths, verdicts).  The checkpoint directories."""
    import random
    import signal
    import time

    cmd = [sys.executable, "-m", "mmcheck.cli"]
    start = time.perf_counter()
    whole = subprocess.run(cmd + ["run", *menu, "--out", str(tmp_path / "o")],
                           capture_output=True, text=True, timeout=300)
    took = time.perf_counter() - start
    assert whole.returncode == 0, whole.stderr
    rng = random.Random(seed)
    directories = []
    for i in range(rounds):
        directory = tmp_path / f"cp{i}"
        proc = subprocess.Popen(cmd + ["run", *menu, "--checkpoint", str(directory),
                                       "--out", str(tmp_path / "o")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.perf_counter() + 60
        while not (directory / "LATEST").exists() and time.perf_counter() < deadline:
            time.sleep(0.02)   # killed before its first checkpoint there is nothing to resume
        time.sleep(rng.uniform(0, took * 0.8))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        resumed = subprocess.run(cmd + ["resume", str(directory), "--no-render", "--json",
                                        "--out", str(tmp_path / "o")],
                                 capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        assert _json_runs(resumed.stdout) == _json_runs(whole.stdout)
        directories.append(directory)
    return directories


def test_killed_at_random_points_then_resumed(tmp_path):
    """SIGKILL at random moments of a checkpointed `mmcheck run`; `mmcheck resume` then
    gives the uninterrupted run's states, transitions, depths and verdicts."""
    killed_then_resumed(["scenarios/discover/generic_menu.yaml", "-p", "mapcount",
                         "--no-render", "--json", "--store", "fingerprints"],
                        tmp_path, 20261130, 3)


def test_checkpoint_and_resume_errors(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(open("scenarios/classics/vmsplice_unmap_child.yaml").read())
    base = ["run", str(scenario), "--no-render", "--out", str(tmp_path / "o")]
    cases = [
        (base + ["-p", "v5.7", "--checkpoint", str(tmp_path / "a")], "--store fingerprints"),
        (base + ["--store", "fingerprints", "--checkpoint", str(tmp_path / "b")],
         "one policy"),
    ]
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    cases.append((base + ["-p", "v5.7", "--store", "fingerprints", "--checkpoint",
                          str(tmp_path / "full")], "not empty"))
    cases.append((["resume", str(tmp_path / "full")], "not a checkpoint directory"))
    for args, message in cases:
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2 and message in r.output, (args, r.output)
    ok = CliRunner().invoke(main, base + ["-p", "v5.7", "--store", "fingerprints",
                                          "--checkpoint", str(tmp_path / "c")])
    assert ok.exit_code == 0, ok.output
    scenario.write_text(scenario.read_text() + "\n# edited\n")
    r = CliRunner().invoke(main, ["resume", str(tmp_path / "c"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "changed since the checkpoint" in r.output


def test_ctrl_c_on_a_checkpointed_run_says_how_to_resume(tmp_path):
    import signal
    import time

    directory = tmp_path / "cp"
    proc = subprocess.Popen([sys.executable, "-m", "mmcheck.cli", "run",
                             "scenarios/discover/generic_menu.yaml", "-p", "page_count",
                             "--no-render", "--store", "fingerprints", "--checkpoint",
                             str(directory), "--out", str(tmp_path / "o")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.perf_counter() + 60
    while not (directory / "LATEST").exists() and time.perf_counter() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"mmcheck resume {directory}" in err


@pytest.mark.parametrize("arrays", [False, True], ids=["cpython-format", "pypy-format"])
def test_spill_files_compressed_pickled_and_the_older_formats(tmp_path, monkeypatch, arrays):
    """A level spills as compressed marshalled chunks (under PyPy: chunks of int tuples as
    int16 arrays); a chunk marshal cannot write (instances of classes) is pickled; level
    files of the older formats (checkpoints made before: pickled chunks, then
    uncompressed marshalled ones) still read, so such a checkpoint still resumes.  Either
    interpreter reads what the other wrote (both formats are read here)."""
    import marshal
    import pickle
    from fractions import Fraction

    monkeypatch.setattr(fingerprint_engine, "_WRITE_ARRAYS", arrays)
    chunk = fingerprint_engine.SPILL_CHUNK
    states = [tuple(range(i, i + 7)) for i in range(10_000)]
    new = fingerprint_engine._SpillLevel(str(tmp_path))
    for s in states:
        new.append(s)
    odd = [Fraction(1, 3), (1, Fraction(2, 5))]
    for s in odd:
        new.append(s)
    assert list(new) == states + odd
    new.file.seek(0)
    assert new.file.read(1) == (b"A" if arrays else b"Z")
    new.file.seek(0, 2)
    assert new.file.tell() < len(marshal.dumps(states)) / 2   # compressed
    for name, write in (("pickled", lambda f, c: pickle.dump(c, f, protocol=5)),
                        ("marshalled", lambda f, c: f.write(
                            b"M" + len(marshal.dumps(c)).to_bytes(8, "little")
                            + marshal.dumps(c)))):
        path = tmp_path / f"{name}.bin"
        with open(path, "wb") as f:
            for i in range(0, len(states), chunk):
                write(f, states[i:i + chunk])
        old = fingerprint_engine._SpillLevel(None, str(path), size=len(states))
        assert list(old) == states, name
        assert len(old) == len(states)


@pytest.mark.parametrize("chunk", [
    [(1, 2, 3), (4, 5)],                    # unequal lengths
    [(1, 2), (True, 0)],                    # a bool would come back as an int
    [(1, 2), (1 << 15, 0)],                 # outside int16
    [(1, -(1 << 15) - 1)],
    [(1, 2), [3, 4]],                       # a list would come back as a tuple
    [(1, (2, 3))],                          # nested
    [(1, 2.0)],
    [()],
], ids=["lengths", "bool", "big", "small", "list", "nested", "float", "empty"])
def test_spill_array_format_only_for_what_it_restores_exactly(chunk, monkeypatch):
    """The int16-array spill format is used only when reading it back gives equal
    tuples of the same types: anything else goes through marshal (or pickle)."""
    import io

    monkeypatch.setattr(fingerprint_engine, "_WRITE_ARRAYS", True)
    blob = fingerprint_engine._pack_chunk(chunk)
    assert blob[:1] != b"A"
    back = fingerprint_engine._read_chunk(io.BytesIO(blob))
    assert back == chunk and [type(s) for s in back] == [type(s) for s in chunk]
    good = [(-(1 << 15), 0, (1 << 15) - 1), (5, -1, 1081)]
    blob = fingerprint_engine._pack_chunk(good)
    assert blob[:1] == b"A" and fingerprint_engine._read_chunk(io.BytesIO(blob)) == good


@pytest.mark.parametrize("arrays", [False, True], ids=["cpython", "pypy"])
def test_spill_bytes_format_for_equal_length_bytes_states(arrays, monkeypatch):
    """A chunk of equal-length bytes states (the MM model's) is stored concatenated and
    compressed, and comes back as equal bytes; bytes of other lengths, or mixed with
    other states, go through marshal."""
    import io

    monkeypatch.setattr(fingerprint_engine, "_WRITE_ARRAYS", arrays)
    good = [bytes([i % 7, 0, 255, i % 251]) * 3 for i in range(5000)]
    blob = fingerprint_engine._pack_chunk(good)
    assert blob[:1] == b"B" and len(blob) < 4 * len(good)
    back = fingerprint_engine._read_chunk(io.BytesIO(blob))
    assert back == good and all(type(s) is bytes for s in back)
    for chunk in ([b"ab", b"abc"], [b"ab", (1, 2)], [(1, 2), b"ab"], [b""]):
        blob = fingerprint_engine._pack_chunk(chunk)
        assert blob[:1] != b"B"
        back = fingerprint_engine._read_chunk(io.BytesIO(blob))
        assert back == chunk and [type(s) for s in back] == [type(s) for s in chunk]


def test_resume_refuses_another_fingerprint_function(tmp_path):
    """A checkpoint's table holds the fingerprints of the Python that made it: resumed
    where hash() differs (states holding strings under another PYTHONHASHSEED, another
    interpreter) every stored state would look new, so resume refuses instead."""
    from mmcheck.engine.checkpoint import CheckpointError

    model = Counters(2, 5)
    first, _ = _interrupted_then_resumed(model, 3, tmp_path)
    assert first.bounded_by == "interrupted"
    cp = Checkpointer.open(str(tmp_path / "cp3"))
    search = fingerprint_engine.FingerprintSearch
    fingerprint = search.__init__

    def other_hash(self, *args, **kw):
        fingerprint(self, *args, **kw)
        self.fingerprint = lambda state: hash((state, "another seed"))

    search.__init__ = other_hash
    try:
        with pytest.raises(CheckpointError, match="fingerprints states differently"):
            explore(model, store="fingerprints", checkpoint=cp, resume=cp)
    finally:
        search.__init__ = fingerprint


def test_resume_refuses_a_damaged_checkpoint(tmp_path):
    """A truncated or emptied snapshot (a disk that lost it) is a CheckpointError naming
    the checkpoint, not a traceback (a truncated pickle raises EOFError under CPython, struct.error under PyPy)."""
    from mmcheck.engine.checkpoint import CheckpointError

    model = Counters(2, 5)
    _interrupted_then_resumed(model, 3, tmp_path)
    snapshot = tmp_path / "cp3" / open(tmp_path / "cp3" / "LATEST").read().strip() / \
        "search.pickle"
    for damage in (snapshot.read_bytes()[:10], b""):
        snapshot.write_bytes(damage)
        cp = Checkpointer.open(str(tmp_path / "cp3"))
        with pytest.raises(CheckpointError, match="damaged checkpoint cp-"):
            explore(model, store="fingerprints", checkpoint=cp, resume=cp)


def test_resume_refuses_a_checkpoint_of_tuple_states_by_name(tmp_path):
    """Format 1 checkpoints hold the MM model's states as tuples, which this mmcheck
    neither decodes nor fingerprints the same: refused, saying which version made it."""
    import json

    from mmcheck.engine.checkpoint import CheckpointError

    _interrupted_then_resumed(Counters(2, 5), 3, tmp_path)
    head = tmp_path / "cp3" / "context.json"
    data = json.loads(head.read_text())
    data["format"] = 1
    head.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="format 1, made by an mmcheck that stored"):
        Checkpointer.open(str(tmp_path / "cp3"))


def test_a_checkpoint_resumes_under_the_other_interpreter(tmp_path):
    """A checkpoint written under CPython resumes under PyPy (big searches are started
    anywhere and continued where they run fastest): the same fingerprints, the same spill
    format, the uninterrupted run's result.  Runs under either interpreter (CI runs the
    suite under both) when the other one is there too (.venv, .pypy)."""
    import os

    from benchmarks.__main__ import ROOT, pypy_interpreter

    on_pypy = sys.implementation.name == "pypy"
    cpython = os.path.join(ROOT, ".venv", "bin", "python") if on_pypy else sys.executable
    pypy = sys.executable if on_pypy else pypy_interpreter()
    if pypy is None or not os.access(cpython, os.X_OK):
        pytest.skip("needs CPython (.venv) and PyPy (.pypy venv)")
    menu = ["scenarios/discover/generic_menu.yaml", "-p", "mapcount", "--no-render",
            "--json", "--store", "fingerprints", "--out", str(tmp_path / "o")]
    made = subprocess.run([cpython, "-m", "mmcheck", "run", *menu, "--checkpoint",
                           str(tmp_path / "cp")], capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    resumed = subprocess.run([pypy, "-m", "mmcheck", "resume", str(tmp_path / "cp"),
                              "--no-render", "--json", "--out", str(tmp_path / "o")],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert _json_runs(resumed.stdout) == _json_runs(made.stdout)
