"""Partial-order reduction on the MM model (mmcheck.model.reduction): the reduced search
gives the full search's verdicts on every shipped scenario and on random scripted
scenarios built around the steps it may reduce (await, wait, device_read, a sibling's
exit); menus offer no ample set; `mmcheck run --por` says what it did and refuses what it
cannot run with."""

from __future__ import annotations

import glob
import json
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from mmcheck.errors import ScenarioError
from mmcheck.model.model import MMModel
from mmcheck.model.policy import resolve
from mmcheck.model.reduction import compile_reduction
from mmcheck.report.runner import policy_defs, run_policy
from mmcheck.scenario.loader import load_scenario, load_scenario_text


def outcome(run):
    """Everything a reduction must keep: verdicts, stuck states, ops never started."""
    return ({v.name: v.verdict for v in run.verdicts}, run.stuck_states > 0,
            run.never_started, run.complete, run.final_states > 0)


def compare(sc, policy):
    full = run_policy(sc, policy, with_traces=False)
    reduced = run_policy(sc, policy, with_traces=False, por=True)
    assert outcome(reduced) == outcome(full), (sc.path, policy)
    assert reduced.states <= full.states
    for v, w in zip(reduced.verdicts, full.verdicts):
        if v.depth is not None:
            assert v.depth >= w.depth  # a reduced counterexample is never shorter
    return full, reduced


SHIPPED = sorted(p for p in glob.glob("scenarios/**/*.yaml", recursive=True)
                 + glob.glob("benchmarks/scenarios/*.yaml"))


@pytest.mark.parametrize("path", SHIPPED)
def test_every_shipped_scenario_keeps_its_verdicts(path):
    sc = load_scenario(path)
    if sc.depth is not None:  # refused: a reduced search runs unbounded in depth
        with pytest.raises(ScenarioError, match="a depth bound and --por do not go together"):
            run_policy(sc, sc.policies[0], por=True)
        return
    if sc.menu is not None:
        # every thread is a menu thread: no ample set, the reduced search is the full one
        model = MMModel(sc, resolve(sc.policies[-1], policy_defs(sc)))
        assert compile_reduction(model) == []
        return
    # every policy of a scripted scenario; the benchmark scenario (64k states a policy)
    # under its oldest and newest
    policies = sc.policies if path.startswith("scenarios/") else {sc.policies[0],
                                                                  sc.policies[-1]}
    for policy in policies:
        compare(sc, policy)


# ------------------------------------------------------------------ random scripted scenarios
# A parent (two threads) forks a child; the reducible steps (await, wait, device_read,
# exit in the second parent thread: a sibling exit) are mixed with writes, reads, GUPs and
# unmaps in random orders.

CHILD_OPS = ["write: X", "read: X", "vmsplice: {page: X, as: P}", "device_read: P",
             "munmap: X", "signal: e", "write: Y"]
MAIN_OPS = ["write: X", "read: X", "pin: {page: X, as: R, access: read}", "device_read: R",
            "await: e", "read: Y"]
SECOND_OPS = ["read: X", "write: Y", "device_read: R", "await: e", "exit"]


def _program(ops, gups):
    """`ops` in order, a device_read kept only after its reference is taken in this same
    list or in another (`gups`: taken elsewhere), an exit only last, each GUP once."""
    out, seen = [], set()
    for op in ops:
        if op in seen and not op.startswith(("read", "write")):
            continue
        if op.startswith("device_read"):
            ref = op.split()[-1]
            if ref not in gups and not any(f"as: {ref}" in o for o in out):
                continue
        if out and out[-1] == "exit":
            break
        seen.add(op)
        out.append(op)
    return out or ["read: X"]


@st.composite
def scripted(draw):
    child = _program(draw(st.lists(st.sampled_from(CHILD_OPS), max_size=4)), set())
    child_exits = draw(st.booleans())
    main = _program(draw(st.lists(st.sampled_from(MAIN_OPS), max_size=3)), set())
    if child_exits and draw(st.booleans()):
        main.append("wait: B")
    taken = {"R"} if any("as: R" in o for o in main) else set()
    second = _program(draw(st.lists(st.sampled_from(SECOND_OPS), max_size=3)), taken)
    if "signal: e" not in child or "await: e" not in main + second:  # the loader wants both
        child = [o for o in child if o != "signal: e"] or ["read: X"]
        main = [o for o in main if o != "await: e"] or ["read: X"]
        second = [o for o in second if o != "await: e"] or ["read: X"]
    if child_exits:
        child.append("exit")

    def block(ops, indent):
        return "".join(f"\n{' ' * indent}- {o}" for o in ops)

    return (f"name: random-por\npages:\n  X: present\n  Y: present\nprocesses:\n  A:\n"
            f"    threads:\n      main:\n        - fork:\n            child: B\n"
            f"            program:{block(child, 14)}{block(main, 8)}\n"
            f"      second:{block(second, 8)}\n")


@settings(max_examples=40, deadline=None)
@given(scripted())
def test_random_scripted_scenarios_keep_their_verdicts(text):
    sc = load_scenario_text(text, "random.yaml")
    for policy in ("v5.7", "v6.18"):
        compare(sc, policy)


def test_a_sibling_that_may_exit_blocks_the_reduction():
    # the second thread exits: until it has, main's device_read is not safe (exit_mmap
    # ends main, so doing the read first or not is a difference)
    text = """
name: sibling-exit
pages:
  X: present
processes:
  A:
    threads:
      main:
        - pin: {page: X, as: R, access: read}
        - device_read: R
        - write: X
      second:
        - write: X
        - exit
"""
    sc = load_scenario_text(text, "sibling.yaml")
    model = MMModel(sc, resolve("v6.18", policy_defs(sc)))
    (entry,) = compile_reduction(model)
    assert entry[-1], "main must list its exiting sibling"
    compare(sc, "v6.18")


def test_the_reduction_takes_safe_steps():
    text = """
name: reduced
pages:
  X: present
  Y: present
processes:
  A:
    threads:
      main:
        - fork:
            child: B
            program:
              - signal: e
              - write: X
              - write: Y
        - await: e
        - read: X
      second:
        - pin: {page: Y, as: R, access: read}
        - device_read: R
        - read: Y
"""
    sc = load_scenario_text(text, "reduced.yaml")
    full, reduced = compare(sc, "v6.18")
    assert reduced.por["reduced_states"] > 0
    assert reduced.states < full.states


# ------------------------------------------------------------------ the command line
def mmcheck(*args):
    return subprocess.run([sys.executable, "-m", "mmcheck", *args], capture_output=True,
                          text=True)


def test_cli_reports_the_reduction(tmp_path):
    out = mmcheck("run", "scenarios/classics/vmsplice_unmap_child.yaml", "-p", "v5.7", "--por",
                  "--json", "--no-render", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    run = json.loads(out.stdout)[0]["runs"][0]
    assert run["por"]["reduced_states"] > 0
    assert run["verdicts"]["no-leak"]["verdict"] == "violated"
    text = mmcheck("run", "scenarios/classics/vmsplice_unmap_child.yaml", "-p", "v5.7",
                   "--por", "--no-render", "--out", str(tmp_path))
    assert "partial-order reduction (" in text.stdout
    assert "may be longer than the shortest" in " ".join(text.stdout.split())


@pytest.mark.parametrize("extra, words", [
    (["--depth", "5"], "--por: a reduced search may reach"),
    (["-j", "2"], "--por: the reduced search runs in one process"),
    (["--store", "fingerprints"], "--por: the reduced search keeps exact states"),
])
def test_cli_refuses_what_por_cannot_run_with(tmp_path, extra, words):
    out = mmcheck("run", "scenarios/classics/basic_cow.yaml", "--por", "--no-render",
                  "--out", str(tmp_path), *extra)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and words in out.stderr


def test_scenario_depth_bound_is_refused(tmp_path):
    out = mmcheck("run", "scenarios/discover/uffd_menu.yaml", "--por", "--no-render",
                  "--out", str(tmp_path))
    assert out.returncode == 2
    with open("scenarios/discover/uffd_menu.yaml") as f:
        line = next(i for i, text in enumerate(f, 1) if text.startswith("depth:"))
    assert out.stderr.strip() == (
        f"scenarios/discover/uffd_menu.yaml:{line}: depth: a depth bound and --por do not "
        f"go together (a reduced search may reach a violation only deeper); run it "
        f"without --por")
