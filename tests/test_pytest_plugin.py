"""The pytest plugin: scenario files with `expect:` as test items, one per policy."""

from __future__ import annotations

import glob
import platform
import re
import subprocess
import sys

from mmcheck.scenario.loader import load_scenario


def _pytest(*args, cwd=None):
    """A nested pytest run.  Debian's PyPy 7.3.11 has been seen to die of SIGSEGV (once in
    CI, not reproducible) starting the nested interpreter: a run killed by a signal before
    it reported anything is the interpreter's crash, not a verdict, and is run again."""
    for _attempt in range(3):
        r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                           capture_output=True, text=True, timeout=600, cwd=cwd)
        if not (r.returncode < 0 and platform.python_implementation() == "PyPy"):
            return r
    return r


def _count(out, what):
    m = re.search(rf"(\d+) {what}", out)
    return int(m.group(1)) if m else 0


def test_shipped_scenarios_collect_one_item_per_expected_policy():
    files = sorted(glob.glob("scenarios/classics/*.yaml"))
    want = sum(len({e.policy for e in load_scenario(f).expect}) for f in files)
    r = _pytest("-q", "scenarios/classics/")
    assert r.returncode == 0, r.stdout[-3000:]
    assert _count(r.stdout, "passed") == want
    r = _pytest("-q", "scenarios/classics/", "-k", "v5.7")
    with_v57 = sum(1 for f in files if any(e.policy == "v5.7" for e in load_scenario(f).expect))
    assert _count(r.stdout, "passed") == with_v57 and _count(r.stdout, "deselected") > 0


WRONG = open("scenarios/classics/vmsplice_unmap_child.yaml").read().replace(
    "v5.7: {no-leak: violated", "v5.7: {no-leak: holds")


def test_an_unexpected_verdict_fails_with_the_shortest_trace(tmp_path):
    assert WRONG != open("scenarios/classics/vmsplice_unmap_child.yaml").read()
    (tmp_path / "wrong.yaml").write_text(WRONG)
    r = _pytest("-q", str(tmp_path / "wrong.yaml"), "-k", "v5.7")
    assert r.returncode == 1
    assert "no-leak expected holds, got violated at depth 12" in r.stdout
    assert "step 12" in r.stdout and "Traceback" not in r.stdout


def test_x_stops_at_the_first_failure_and_a_broken_file_is_one_line(tmp_path):
    (tmp_path / "a.yaml").write_text(WRONG)
    (tmp_path / "b.yaml").write_text(WRONG)
    r = _pytest("-q", "-x", str(tmp_path), "-k", "v5.7")
    assert _count(r.stdout, "failed") == 1
    (tmp_path / "broken.yaml").write_text("name: x\npages: {X: presnt}\nexpect: {}\n")
    r = _pytest("-q", str(tmp_path / "broken.yaml"))
    assert r.returncode == 1 and _count(r.stdout, "failed") == 1
    assert "broken.yaml:2" in r.stdout and "Traceback" not in r.stdout
