"""Trace files: format 2 records each step as kernel function + outcome (from the step
table), never as display text; format 1 files (action texts) still replay."""

from __future__ import annotations

import glob
import json

import pytest
from click.testing import CliRunner

from mmcheck.cli import main
from mmcheck.model.model import MMModel
from mmcheck.model.policy import resolve
from mmcheck.report import render
from mmcheck.report.runner import policy_defs, run_policy
from mmcheck.report.trace import FORMAT, ReplayError, check_trace
from mmcheck.scenario.loader import load_scenario

FORMAT1 = sorted(glob.glob("tests/data/format1/*.json"))


def _model(trace):
    sc = load_scenario(trace["scenario"])
    return MMModel(sc, resolve(trace["policy"]["name"], policy_defs(sc)))


@pytest.mark.parametrize("path", FORMAT1, ids=[p.split("/")[-1] for p in FORMAT1])
def test_format_1_traces_still_replay(path):
    trace = render.load_trace(path)
    assert trace["format"] == "mmcheck-trace/1"
    ok, reason = check_trace(_model(trace), trace)
    assert ok, reason
    r = CliRunner().invoke(main, ["replay", path])
    assert r.exit_code == 0 and "confirmed" in r.output


def test_format_2_labels_name_function_and_outcome(tmp_path):
    sc = load_scenario("scenarios/classics/vmsplice_unmap_child.yaml")
    trace = run_policy(sc, "v5.7").verdicts[0].trace
    assert trace["format"] == FORMAT == "mmcheck-trace/2"
    fns = [(label[2], label[3]) for label in trace["labels"]]
    assert ("do_wp_page", "reuse") in fns  # the missed COW
    assert all(step["function"] for step in trace["steps"][1:])
    path = tmp_path / "t.json"
    render.save_trace(trace, path)
    loaded = render.load_trace(path)
    assert check_trace(_model(loaded), loaded)[0]
    # rewording a step's display text does not matter; changing its outcome does
    loaded["steps"][3]["action"] = "something else entirely"
    assert check_trace(_model(loaded), loaded)[0]
    i = fns.index(("do_wp_page", "reuse"))
    loaded["labels"][i][3] = "copy"
    with pytest.raises(ReplayError, match="do_wp_page.copy"):
        check_trace(_model(loaded), loaded)


def test_a_choice_label_names_its_target():
    """Background reclaim picks a page: the label's argument names it (process:page)."""
    sc = load_scenario("scenarios/anon/fork_vs_reclaim_two_pages.yaml")
    m = MMModel(sc, resolve("v5.7"))
    s = m.initial_states()[0]
    picks = sorted(m.describe_label(lab)["where"] for lab, _ in m.successors(s)
                   if m.thread_names[m.label_parts(lab)[0]] == "kernel.reclaim")
    assert picks == ["B:X", "B:Y"]
    assert json.dumps(picks)
