"""Hostile input (issue 14): every reproducer is a regression test.  Bad files get one line
and exit 2, internal errors exit 3 with a crash file, interrupts exit 130 with what
finished printed, a lost worker or memory exhaustion exits 4, and no process is left
behind."""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from mmcheck.engine import explorer
from mmcheck.report import runner
from mmcheck.cli import main
from mmcheck.errors import ModelError, ScenarioError
from mmcheck.scenario.loader import load_policy_text, load_scenario_text

BODY = "pages: {X: present}\nprocesses: {A: {program: [write: X]}}\n"
MMCHECK = [sys.executable, "-m", "mmcheck.cli"]


def bomb(levels: int) -> str:
    text = "description:\n  x0: &a0 [l, l, l, l, l, l, l, l, l, l]\n"
    for i in range(1, levels):
        text += f"  x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n"
    return text


@pytest.mark.parametrize("text,line,needle", [
    ("name: 2023-02-30\n" + BODY, None, None),  # a date-looking name is just text
    ("name: !!bool x\n" + BODY, 1, "explicit YAML tags are not allowed (!!bool)"),
    ("name: x\npages: {X: present}\nprocesses: {!!int A: {program: [write: X]}}\n", 3,
     "explicit YAML tags are not allowed (!!int)"),
    ("name: x\n" + BODY + "expect: {v5.7: {!!float pin-coherent: violated}}\n", 4,
     "explicit YAML tags are not allowed (!!float)"),
    ("name: !!timestamp x\n" + BODY, 1, "explicit YAML tags are not allowed (!!timestamp)"),
    ("name: !!str 5\n" + BODY, None, None),  # !!str is quoting
    ("name: " + "1" * 5000 + "\n" + BODY, 1, "number too large"),
    ("name: x\ndepth: 0x" + "f" * 3000 + "\n" + BODY, 2, "number too large"),
    ("name: x\npages: {X: present}\nmenu: {processes: 0x" + "f" * 5000 + ", ops: [write]}\n",
     3, "number too large"),
    # 10^4 leaves are read (then the mapping is refused as a description)
    ("name: x\n" + BODY + bomb(4), 5, "description: expected a string, got a mapping"),
    ("name: x\n" + BODY + bomb(6), None, "YAML aliases expand the document beyond 100,000 "
                                        "nodes"),
    ("name: x\n" + BODY + bomb(9), None, "YAML aliases expand the document beyond 100,000 "
                                        "nodes"),
])
def test_hostile_yaml(text, line, needle):
    if needle is None:
        load_scenario_text(text, "h.yaml")
        return
    with pytest.raises(ScenarioError) as e:
        load_scenario_text(text, "h.yaml")
    assert needle in e.value.message and "\n" not in str(e.value)
    if line is not None:
        assert e.value.line == line, str(e.value)


def test_hostile_policy_file():
    with pytest.raises(ScenarioError) as e:
        load_policy_text('p1:\n  base: v5.7\n  knobs: {wp_reuse: !!int "mapcount"}\n', "p.yaml")
    assert str(e.value) == "p.yaml:3: p1.knobs.wp_reuse: explicit YAML tags are not allowed (!!int)"


def _trace_file(tmp_path, **changes):
    src = "counterexamples/classics/gup-fast-vs-zap--v4.9-pv--refcount-sane.json"
    trace = json.load(open(src))
    for key, value in changes.items():
        if value is KeyError:
            del trace[key]
        else:
            trace[key] = value
    path = tmp_path / "t.json"
    path.write_text(json.dumps(trace))
    return str(path)


@pytest.mark.parametrize("changes,needle", [
    ({"policy": None}, "policy: None is not of type 'object'"),
    ({"scenario": 1.5}, "scenario: 1.5 is not of type 'string'"),
    ({"labels": KeyError}, "'labels' is a required property"),
    ({"property": {}}, "property: {} is not of type"),
    ({"labels": [[0, 0, "x", "y", None]]}, "1 labels for"),
    ({"labels": [[0, 0, "x"]]}, "labels[0]: [0, 0, 'x'] is too short"),
])
def test_replay_and_render_refuse_malformed_traces(tmp_path, changes, needle):
    path = _trace_file(tmp_path, **changes)
    for args in (["replay", path], ["render", path, "-o", str(tmp_path / "x.dot")]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2, r.output
        assert needle in r.output and r.output.count("\n") == 1, r.output


def test_a_trace_naming_scenario_1_does_not_close_stdout(tmp_path):
    """`"scenario": 1` was opened as file descriptor 1 (and closed mmcheck's stdout)."""
    path = _trace_file(tmp_path, scenario=1)
    p = subprocess.run(MMCHECK + ["replay", path], capture_output=True, text=True)
    assert p.returncode == 2 and "scenario: 1 is not of type 'string'" in p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize("snapshot_change", [
    lambda st: st.__setitem__("processes", [5]),
    lambda st: st["processes"][0]["vpages"][0].__setitem__("pte", 5),
    lambda st: st.__setitem__("frames", "x"),
])
def test_render_refuses_snapshots_of_the_wrong_shape(tmp_path, snapshot_change):
    path = _trace_file(tmp_path)
    trace = json.load(open(path))
    snapshot_change(trace["steps"][1]["state"])
    with open(path, "w") as f:  # closed before the CLI reads it (PyPy closes files late)
        f.write(json.dumps(trace))
    r = CliRunner().invoke(main, ["render", path, "-o", str(tmp_path / "x.svg")])
    assert r.exit_code == 2 and "invalid trace: steps[1].state" in r.output, r.output


@pytest.mark.parametrize("args,needle", [
    (["run", "scenarios/classics/basic_cow.yaml", "-p", "v5.7", "--out", "/proc/x"],
     "--out /proc/x: cannot write in /proc"),
    (["render", "counterexamples/classics/gup-fast-vs-zap--v4.9-pv--refcount-sane.json", "-o",
      "/dev/null/x.png"], "-o /dev/null/x.png: /dev/null is not a directory"),
    (["compare", "scenarios/classics/basic_cow.yaml", "--depth", "2", "-o", "/dev/null/x.md"],
     "-o /dev/null/x.md: /dev/null is not a directory"),
    (["compare", "scenarios/classics/basic_cow.yaml", "--depth", "2", "--plot",
      "/dev/null/x.svg"], "--plot /dev/null/x.svg: /dev/null is not a directory"),
])
def test_unwritable_output_paths(args, needle):
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2 and needle in r.output and r.output.count("\n") == 1, r.output


def test_an_internal_error_exits_3_with_one_line_and_a_crash_file(monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("deliberate\nfailure")

    monkeypatch.setattr(runner, "run_policy", boom)
    r = CliRunner().invoke(main, ["run", "scenarios/classics/basic_cow.yaml", "--no-render"])
    assert r.exit_code == 3
    line = r.output.strip()
    assert "\n" not in line and line.startswith("mmcheck: internal error: RuntimeError: "
                                                "deliberate failure")
    crash = re.search(r"details in (\S+);", line).group(1)
    assert "deliberate" in open(crash).read()
    os.unlink(crash)


def test_a_counterexample_that_does_not_replay_is_an_internal_error(monkeypatch):
    """The runner used to fall back to the canonical state's reason when the execution
    re-run from the initial state did not violate the property: now it is an error."""
    def initial_only(model, trace):
        s = model.initial_states()[0]
        return explorer.Trace([s], [], trace.reason, trace.depth)

    monkeypatch.setattr(explorer, "concretize", initial_only)
    sc = load_scenario_text(open("scenarios/classics/vmsplice_unmap_child.yaml").read(),
                            "scenarios/classics/vmsplice_unmap_child.yaml")
    with pytest.raises(ModelError, match="state reduction is unsound"):
        runner.run_policy(sc, "v5.7")
    r = CliRunner().invoke(main, ["run", "scenarios/classics/vmsplice_unmap_child.yaml",
                                  "-p", "v5.7", "--no-render"])
    assert r.exit_code == 3 and "ModelError" in r.output


# ------------------------------------------------------------------ interrupts and kills
def _children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def _start(args, tmp_path, limit_memory=None):
    def setup():
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # a background job may inherit SIG_IGN
        if limit_memory:
            resource.setrlimit(resource.RLIMIT_AS, (limit_memory, limit_memory))

    return subprocess.Popen(MMCHECK + args + ["--out", str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=setup)


def _wait_for_states(p, seconds=60):
    """Give the search time to get going (the import and load take a moment)."""
    time.sleep(2.5)


BIG = "scenarios/discover/two_pages_menu.yaml"


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_exits_130_prints_what_finished_and_leaves_no_process(
        tmp_path, workers, sig):
    p = _start(["run", BIG, "--no-trace", "--no-render", "-j", workers], tmp_path)
    _wait_for_states(p)
    kids = _children(p.pid)
    p.send_signal(sig)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, (out, err)
    assert "Traceback" not in err and "cut short" in err
    assert "cut short (interrupted)" in out  # the partial run is shown, never as success
    time.sleep(0.3)
    assert not [k for k in kids if os.path.exists(f"/proc/{k}")], "worker left behind"


def test_interrupted_compare_exits_130(tmp_path):
    p = subprocess.Popen(MMCHECK + ["compare", BIG, "--depth", "30", "-j", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(2.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "Traceback" not in err + out


def test_early_interrupt_of_compare_is_130_not_aborted():
    p = subprocess.Popen(MMCHECK + ["compare", BIG, "--depth", "30"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(0.6)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "Aborted" not in err and "Traceback" not in err


def test_a_killed_worker_stops_the_search_with_a_clear_error(tmp_path):
    p = _start(["run", BIG, "--no-trace", "--no-render", "-j", "2"], tmp_path)
    _wait_for_states(p)
    kids = _children(p.pid)
    assert len(kids) == 2
    os.kill(kids[0], signal.SIGKILL)  # as the OOM killer does
    out, err = p.communicate(timeout=60)
    assert p.returncode == 4, (out, err)
    assert "worker process" in err and "SIGKILL" in err and "Traceback" not in err
    time.sleep(0.3)
    assert not [k for k in kids if os.path.exists(f"/proc/{k}")]


def test_workers_die_with_a_killed_parent(tmp_path):
    p = _start(["run", BIG, "--no-trace", "--no-render", "-j", "2"], tmp_path)
    _wait_for_states(p)
    kids = _children(p.pid)
    p.kill()
    p.communicate(timeout=30)
    time.sleep(0.5)
    assert kids and not [k for k in kids if os.path.exists(f"/proc/{k}")
                         and "Z" not in open(f"/proc/{k}/stat").read().split()[2]]


@pytest.mark.skipif(platform.python_implementation() == "PyPy",
                    reason="PyPy's JIT aborts (SIGABRT) when the address-space limit is hit "
                           "instead of raising MemoryError; --max-memory still applies")
@pytest.mark.parametrize("workers", ["1", "2"])
def test_running_out_of_memory_gives_the_partial_result_and_exit_4(tmp_path, workers):
    p = _start(["run", BIG, "-p", "anon_exclusive", "--no-trace", "--no-render", "-j", workers],
               tmp_path, limit_memory=300 * 2 ** 20)  # well under the ~490 MB it needs
    out, err = p.communicate(timeout=300)
    assert p.returncode == 4, (out[-2000:], err[-2000:])
    assert "Traceback" not in err and "out of memory" in err
    assert "--max-states" in err
