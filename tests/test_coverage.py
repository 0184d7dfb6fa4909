"""The coverage gate (issue 8): every outcome the step table declares is taken by some
shipped scenario under some preset, or is declared unreachable with the reason (and then
is never taken); `mmcheck run --coverage` reports it."""

from __future__ import annotations

import glob
import json

from click.testing import CliRunner

from mmcheck.cli import main
from mmcheck.model import steps
from mmcheck.report.runner import run_scenario
from mmcheck.scenario.loader import load_scenario

MENU_DEPTH = 12  # the discover menus are searched to this depth here (test_menu: complete)


def test_every_declared_outcome_is_reached_or_declared_unreachable():
    taken: dict = {}
    for path in sorted(glob.glob("scenarios/**/*.yaml", recursive=True)):
        sc = load_scenario(path)
        depth = MENU_DEPTH if sc.menu is not None else None
        for run in run_scenario(sc, depth=depth):
            for oid, n in run.coverage.items():
                taken.setdefault(oid, path)
    missing = [o.key for o in steps.OUTCOMES if o.unreachable is None and o.id not in taken]
    assert not missing, f"declared outcomes no shipped scenario reaches: {missing}"
    wrong = [(o.key, taken[o.id]) for o in steps.OUTCOMES
             if o.unreachable is not None and o.id in taken]
    assert not wrong, f"outcomes declared unreachable but taken: {wrong}"


def test_outcome_keys_and_legacy_texts_are_unique_per_function():
    keys = [o.key for o in steps.OUTCOMES]
    assert len(keys) == len(set(keys))
    for fn in steps.FUNCTIONS.values():
        for o in fn.outcomes.values():
            assert getattr(fn, o.name) == o.id and steps.outcome(o.id) is o


def test_run_coverage_flag_prints_and_reports_in_json(tmp_path):
    path = "scenarios/classics/gup_fast_pin_racing_fork.yaml"
    r = CliRunner().invoke(main, ["run", path, "-p", "v5.11", "--coverage", "--no-render",
                                  "--no-trace", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "step coverage" in r.output
    assert "gup_fast: write_protect_seq changed, unpin + fall back" in r.output
    r = CliRunner().invoke(main, ["run", path, "-p", "v5.9", "-p", "v5.11", "--coverage",
                                  "--json", "--no-render", "--out", str(tmp_path)])
    runs = {run["policy"]: run for run in json.loads(r.output)[0]["runs"]}
    # 5.11's write_protect_seq check is what closes the race: taken only there
    assert "gup_fast.seq_changed" in runs["v5.11"]["coverage"]["taken"]
    assert "gup_fast.seq_changed" in runs["v5.9"]["coverage"]["never_taken"]
