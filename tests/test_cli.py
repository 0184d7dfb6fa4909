"""The command line: exit codes, outputs, replay and render."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from mmcheck.cli import main

CLASSIC = "scenarios/classics/vmsplice_unmap_child.yaml"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_run_meets_expectations_exit_0(tmp_path):
    r = invoke("run", CLASSIC, "--out", tmp_path, "--no-render")
    assert r.exit_code == 0, r.output
    assert "VIOLATED" in r.output and "v5.7" in r.output
    assert (tmp_path / "vmsplice-unmap-child--v5.7--no-leak.json").exists()
    assert "step 12" in r.output  # the trace is printed for a single scenario


def test_run_unexpected_verdict_exit_1(tmp_path):
    sc = tmp_path / "s.yaml"
    sc.write_text(open(CLASSIC).read().replace("v5.7: {no-leak: violated", "v5.7: {no-leak: holds"))
    r = invoke("run", sc, "--out", tmp_path, "--no-render")
    assert r.exit_code == 1
    assert "expected holds" in r.output


def test_run_without_expectations_fails_on_violation(tmp_path):
    sc = tmp_path / "s.yaml"
    text = open(CLASSIC).read()
    sc.write_text(text[:text.index("expect:")])
    assert invoke("run", sc, "-p", "v5.9", "--out", tmp_path).exit_code == 0
    assert invoke("run", sc, "-p", "v5.7", "--out", tmp_path, "--no-render").exit_code == 1


@pytest.mark.parametrize("args,needle", [
    (["run", "missing.yaml"], "does not exist"),
    (["run", CLASSIC, "--depth", "0"], "0 is not in the range"),
    (["run", CLASSIC, "--policy", "v9.9"], "unknown policy 'v9.9'"),
    (["run", CLASSIC, "--property", "no-such"], "unknown property 'no-such'"),
    (["policies", "--diff", "v5.7", "nope"], "unknown policy"),
    (["render", CLASSIC, "-o", "x.svg"], "not valid JSON"),
])
def test_bad_input_exit_2(args, needle):
    r = invoke(*args)
    assert r.exit_code == 2, r.output
    assert needle in r.output
    assert "Traceback" not in r.output


def test_bad_scenario_is_one_line_with_file_and_line(tmp_path):
    sc = tmp_path / "bad.yaml"
    sc.write_text("name: x\npages: {X: present}\nprocesses:\n  A:\n    program:\n      - put: nothing\n")
    r = invoke("run", sc)
    assert r.exit_code == 2
    lines = [l for l in r.output.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"{sc}:6:")


def test_json_output(tmp_path):
    r = invoke("run", CLASSIC, "--json", "--out", tmp_path, "--no-render")
    assert r.exit_code == 0
    data = json.loads(r.output)
    runs = {x["policy"]: x for x in data[0]["runs"]}
    assert runs["v5.7"]["verdicts"]["no-leak"]["verdict"] == "violated"
    assert runs["v5.9"]["verdicts"]["no-leak"]["verdict"] == "holds"
    assert runs["v5.9"]["states"] > 0


def test_replay_confirms_and_rejects(tmp_path):
    invoke("run", CLASSIC, "--out", tmp_path, "--no-render")
    trace = tmp_path / "vmsplice-unmap-child--v5.7--no-leak.json"
    r = invoke("replay", trace)
    assert r.exit_code == 0 and "confirmed" in r.output
    data = json.loads(trace.read_text())
    data["policy"]["name"] = "v5.9"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    r = invoke("replay", bad)
    assert r.exit_code == 1


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot not installed")
def test_render_svg_png_dot(tmp_path):
    invoke("run", CLASSIC, "--out", tmp_path, "--no-render")
    trace = tmp_path / "vmsplice-unmap-child--v5.7--no-leak.json"
    for ext in ("svg", "png", "dot"):
        out = tmp_path / f"t.{ext}"
        r = invoke("render", trace, "-o", out)
        assert r.exit_code == 0, r.output
        assert out.stat().st_size > 100


def test_policies_table_and_diff():
    r = invoke("policies")
    assert r.exit_code == 0 and "wp_reuse" in r.output and "v5.19" in r.output
    r = invoke("policies", "--diff", "v5.9", "v5.11")
    assert r.exit_code == 0 and "gup_fast_seqcount" in r.output and "wp_reuse" not in r.output


def test_symmetry_levels(tmp_path):
    """--symmetry full (default) reports what was interchangeable; frames and none do
    not reduce by it (more states); the verdicts agree and the replayed traces confirm."""
    sc = "scenarios/discover/two_pages_menu.yaml"
    counts = {}
    for level in ("full", "frames", "none"):
        r = invoke("run", sc, "-p", "mapcount", "--depth", "10", "--symmetry", level,
                   "--json", "--out", tmp_path / level, "--no-render")
        assert r.exit_code == 0, r.output
        run = json.loads(r.output)[0]["runs"][0]
        counts[level] = run["states"]
        assert run["symmetry"] == ("interchangeable pages X, Y (up to 2 renamings)"
                                   if level == "full" else None)
        assert {k: v["verdict"] for k, v in run["verdicts"].items()} == {
            "no-leak": "violated", "pin-coherent": "violated"}
        for trace in (tmp_path / level).glob("*.json"):
            assert invoke("replay", trace).exit_code == 0
    assert counts["full"] < counts["frames"] < counts["none"]
    r = invoke("run", sc, "-p", "mapcount", "--depth", "10", "--out", tmp_path, "--no-render",
               "--no-trace")
    assert "symmetry: interchangeable pages X, Y (up to 2 renamings)" in r.output
    assert invoke("run", sc, "--symmetry", "some").exit_code == 2


def test_text_with_brackets_is_printed_verbatim(tmp_path):
    """Scenario text (op fields such as features: [...], names, reasons) is not taken for
    rich markup: a summary line once printed `features=` for `features=[wp_unpopulated]`."""
    r = invoke("run", "scenarios/uffd/wp_unpopulated_not_offered.yaml", "--out", tmp_path,
               "--no-render")
    assert r.exit_code == 0, r.output
    summary = [line for line in r.output.splitlines() if line.startswith("v6.4 / ")]
    assert summary and "features=[wp_unpopulated]" in summary[0]


def test_log_progress_prints_one_line_per_level(tmp_path):
    """--log-progress (run and resume): one timestamped line per BFS level on stderr, for
    searches running in the background; nothing on stdout changes."""
    import re

    args = ["scenarios/discover/ro_pin_menu.yaml", "-p", "mapcount", "--no-render",
            "--out", str(tmp_path / "o"), "--json"]
    plain = CliRunner().invoke(main, ["run", *args])
    logged = CliRunner().invoke(main, ["run", *args, "--log-progress"])
    verdicts = [[{k: v["verdict"] for k, v in r["verdicts"].items()} | {"states": r["states"]}
                 for r in json.loads(out.stdout)[0]["runs"]] for out in (plain, logged)]
    assert verdicts[0] == verdicts[1]  # stdout stays the JSON it was
    lines = [ln for ln in logged.stderr.splitlines() if "discover-ro-pin-menu / mapcount:" in ln]
    levels = [int(re.search(r"level (\d+) \(", ln).group(1)) for ln in lines]
    assert len(levels) > 5 and levels == list(range(len(levels)))
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d .*elapsed, [\d,]+ states", lines[-1])

    directory = tmp_path / "cp"
    made = CliRunner().invoke(main, ["run", *args, "--store", "fingerprints", "--checkpoint",
                                     str(directory)])
    assert made.exit_code == 0, made.output
    resumed = CliRunner().invoke(main, ["resume", str(directory), "--no-render", "--out",
                                        str(tmp_path / "o"), "--log-progress"])
    assert resumed.exit_code == 0, resumed.output
    assert f"level {levels[-1]} (" in resumed.stderr
