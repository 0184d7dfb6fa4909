"""`mmcheck compare`: depth ranges, output formats, reuse of complete runs, expectations,
plots and Ctrl-C."""

from __future__ import annotations

import csv
import io
import json
import shutil
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

import mmcheck.engine.explorer
import mmcheck.report.runner
from mmcheck.report import compare as comparing
from mmcheck.cli import main
from mmcheck.scenario.loader import load_scenario

CLASSIC = "scenarios/classics/vmsplice_unmap_child.yaml"
ZAP = "scenarios/classics/gup_fast_vs_zap.yaml"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' not installed")


def invoke(*args):
    return CliRunner().invoke(main, ["compare", *[str(a) for a in args]])


def full_depth(path, policy):
    """The smallest depth bound at which `policy` explores the whole space of `path`."""
    run = mmcheck.report.runner.run_policy(load_scenario(path), policy, depth=None, with_traces=False)
    assert run.complete
    return run.depth + 1


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("text,expected", [
    ("3", (3, 3)), ("2..5", (2, 5)), (" 2 .. 5 ", (2, 5)), ("4..4", (4, 4)),
])
def test_parse_depths(text, expected):
    assert comparing.parse_depths(text) == expected


@pytest.mark.parametrize("text", ["0", "0..3", "5..2", "x", "2..", "..3", "1..x", "-1..3",
                                  "1...3", "1.5", ""])
def test_parse_depths_rejects(text):
    with pytest.raises(ValueError, match="--depth"):
        comparing.parse_depths(text)


@pytest.mark.parametrize("args,needle", [
    (["--depth", "5..2"], "--depth"),
    (["--depth", "0"], "--depth"),
    (["--depth", "a..b"], "--depth"),
    (["--depth", "3", "--policies", "v9.9"], "unknown policy 'v9.9'"),
    (["--depth", "3", "--policies", "v5.7,,v5.9"], "empty policy name"),
    (["--depth", "3", "--property", "no-such"], "unknown property 'no-such'"),
    (["--depth", "3", "--plot", "states.pdf"], "must end in .svg or .png"),
])
def test_bad_input_exit_2_one_line(args, needle):
    r = invoke(CLASSIC, *args)
    assert r.exit_code == 2, r.output
    assert needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.output and r.stdout == ""


def test_policies_accept_aliases_and_policy_files(tmp_path):
    pf = tmp_path / "p.yaml"
    pf.write_text("define_policies:\n  mine:\n    base: v5.7\n    knobs: {}\n")
    r = invoke(CLASSIC, "--depth", "2", "--policies", "mapcount, mine", "--policy-file", pf,
               "--format", "json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["scenarios"][0]["policies"] == ["mapcount", "mine"]


# ------------------------------------------------------------------------------ formats


def test_json_format():
    r = invoke(CLASSIC, "--depth", "11..12", "--policies", "v5.7,v5.9", "--format", "json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["format"] == "mmcheck-compare/1" and data["depths"] == [11, 12]
    sc = data["scenarios"][0]
    assert [(row["policy"], row["depth"]) for row in sc["rows"]] == [
        ("v5.7", 11), ("v5.7", 12), ("v5.9", 11), ("v5.9", 12)]
    v57 = {row["depth"]: row for row in sc["rows"] if row["policy"] == "v5.7"}
    assert v57[11]["verdicts"]["no-leak"] == {"verdict": "unknown", "depth": None, "reason": None}
    assert v57[12]["verdicts"]["no-leak"]["verdict"] == "violated"
    assert v57[12]["verdicts"]["no-leak"]["depth"] == 12
    assert v57[12]["states"] > v57[11]["states"] > 0
    assert {"transitions", "seconds", "cow_copies", "unnecessary_cow_copies", "complete",
            "search"} <= set(v57[12])
    leak = next(o for o in sc["outcomes"] if o["policy"] == "v5.7" and o["property"] == "no-leak")
    assert leak["status"] == "violated" and leak["found_at_depth_bound"] == 12 and leak["ok"]
    assert data["unexpected"] == 0  # 11..12 reaches v5.7's violation at depth 12
    r = invoke(CLASSIC, "--depth", "11", "--policies", "v5.7", "--format", "json")
    data = json.loads(r.stdout)
    assert r.exit_code == 1 and data["unexpected"] == 1
    assert "not found up to depth 11" in r.stderr


def test_csv_format():
    r = invoke(CLASSIC, ZAP, "--depth", "4..6", "--policies", "v4.9-pv,v5.9", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 2 * 2 * 3
    assert {row["scenario"] for row in rows} == {"vmsplice-unmap-child", "gup-fast-vs-zap"}
    zap = {(row["policy"], int(row["depth"])): row for row in rows
           if row["scenario"] == "gup-fast-vs-zap"}
    assert zap[("v4.9-pv", 5)]["refcount-sane"] == "violated"
    assert zap[("v4.9-pv", 5)]["refcount-sane_depth"] == "5"
    assert zap[("v5.9", 5)]["refcount-sane"] == "unknown"
    assert all(int(row["states"]) > 0 for row in rows)


def test_markdown_format():
    r = invoke(CLASSIC, ZAP, "--depth", "2..4", "--policies", "v5.7,v5.9", "--format",
               "markdown")
    lines = r.stdout.splitlines()
    assert sum(line.startswith("## ") for line in lines) == 2
    tables, current = [], []
    for line in lines + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    assert len(tables) == 2
    for table in tables:
        assert len(table) == 2 + 2 * 3  # header, separator, policies x depths
        widths = {line.replace("\\|", "").count("|") for line in table}
        assert len(widths) == 1 and all(line.endswith("|") for line in table)
        assert set(table[1]) <= set("|-:")
        assert "states" in table[0] and "COW (unnecessary)" in table[0]
    assert "none≤2" in r.stdout


def test_table_format_to_file(tmp_path):
    out = tmp_path / "t.txt"
    r = invoke(CLASSIC, "--depth", "12", "--policies", "v5.7", "-o", out)
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert "VIOLATED@12" in text and "none≤12" in text and "\x1b[" not in text


class _Tags(HTMLParser):
    VOID = {"meta", "br", "img", "hr", "link", "input", "col", "wbr"}

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.tags = [], [], []
        self.svg_in_figure = 0  # figures with a picture

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "svg" and "figure" in self.stack and "svg" not in self.stack:
            self.svg_in_figure += 1
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)

    def handle_endtag(self, tag):
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()
        else:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")


@needs_dot
def test_html_format(tmp_path):
    pytest.importorskip("matplotlib")  # --plot (not installed in CI's PyPy run)
    out = tmp_path / "r.html"
    r = invoke(CLASSIC, "--depth", "11..12", "--policies", "v5.7,v5.9", "--format", "html",
               "-o", out, "--plot", tmp_path / "p.svg")
    assert r.exit_code == 0, r.output
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "<?xml" not in text
    parser = _Tags()
    parser.feed(text)
    parser.close()
    assert not parser.errors and parser.stack == [], parser.errors[:5]
    # one picture per violated property of v5.7 (v5.9 has none), from the smallest bound
    assert "v5.7 / no-leak: violated at depth 12 (found with depth bound 12)" in text
    figures = parser.tags.count("figure")
    assert figures >= 1 and parser.svg_in_figure == figures
    assert "v5.9 / " not in text.split("<h3>", 1)[1]
    assert parser.tags.count("svg") == figures + 1  # and the plot
    assert 'src="http' not in text and "<link" not in text  # self-contained


def test_html_escapes_text():
    sc = load_scenario(ZAP)
    result = comparing.compare([sc], ["v4.9-pv"], (5, 5))
    outcome = next(o for o in result.scenarios[0].outcomes if o.status == "violated")
    outcome.reason = "<script>alert('&')</script>"
    text = comparing.to_html(result)
    assert "<script>" not in text and "&lt;script&gt;alert(&#x27;&amp;&#x27;)" in text


def test_inline_svg_prefixes_ids():
    svg = ('<?xml version="1.0"?>\n<!DOCTYPE svg>\n<svg><defs><path id="a"/></defs>'
           '<use xlink:href="#a"/><g clip-path="url(#a)"/></svg>')
    out = comparing.inline_svg(svg, "t1-")
    assert out.startswith("<svg") and 'id="t1-a"' in out
    assert 'xlink:href="#t1-a"' in out and "url(#t1-a)" in out


# ------------------------------------------------------------------------------ reuse


def test_complete_run_is_reused_for_larger_depths(monkeypatch):
    full = full_depth(CLASSIC, "v5.9")
    calls = []
    real = mmcheck.report.runner.run_policy

    def counting(*args, **kwargs):
        calls.append(kwargs["depth"])
        return real(*args, **kwargs)

    monkeypatch.setattr(mmcheck.report.runner, "run_policy", counting)
    lo, hi = full - 2, full + 3
    result = comparing.compare([load_scenario(CLASSIC)], ["v5.9"], (lo, hi))
    assert calls == list(range(lo, full + 1))  # nothing above the complete run
    rows = {r.depth: r for r in result.scenarios[0].rows}
    assert sorted(rows) == list(range(lo, hi + 1))
    assert not rows[full - 1].complete and rows[full].complete
    assert rows[full].reused_from is None
    for d in range(full + 1, hi + 1):
        assert rows[d].reused_from == full and rows[d].complete
        assert (rows[d].states, rows[d].transitions, rows[d].copies) == (
            rows[full].states, rows[full].transitions, rows[full].copies)
        assert rows[d].verdicts == rows[full].verdicts
    assert all(c.verdict == "holds" for c in rows[hi].verdicts.values())
    assert result.runs == full - lo + 1 and result.reused == hi - full


def test_reuse_is_reported_in_the_output():
    full = full_depth(CLASSIC, "v5.9")
    r = invoke(CLASSIC, "--depth", f"{full}..{full + 2}", "--policies", "v5.9", "--format",
               "markdown")
    assert r.exit_code == 0, r.output
    rows = [line.split(" | ") for line in r.stdout.splitlines() if line.startswith("| v5.9")]
    assert [(row[1], row[-3], row[-1]) for row in rows] == [
        (str(full), rows[0][-3], f"complete at {full} |"),
        (str(full + 1), "reused", f"complete at {full} |"),
        (str(full + 2), "reused", f"complete at {full} |")]
    assert f"bounds {full + 1}..{full + 2} reuse that run" in r.stdout


def test_progress_protocol():
    events = []

    class Recorder(comparing.CompareProgress):
        def start(self, total):
            events.append(("start", total))

        def run_started(self, scenario, policy, depth):
            events.append(("run", depth))

        def update(self, p):
            events.append(("update", p.states))

        def run_finished(self, row):
            events.append(("done", row.depth))

        def stop(self):
            events.append(("stop",))

    full = full_depth(ZAP, "v5.9")
    comparing.compare([load_scenario(ZAP)], ["v5.9"], (full, full + 1), progress=Recorder())
    assert events[0] == ("start", 2) and events[-1] == ("stop",)
    assert [e for e in events if e[0] in ("run", "done")] == [
        ("run", full), ("done", full), ("done", full + 1)]
    assert any(e[0] == "update" for e in events)


# ------------------------------------------------------------------------------ expectations


def test_expectations_met_exit_0():
    depth = max(full_depth(CLASSIC, p) for p in load_scenario(CLASSIC).policies)
    r = invoke(CLASSIC, "--depth", f"10..{depth}")
    assert r.exit_code == 0, r.output
    assert "0 unexpected verdict(s)" in r.stdout


def test_expected_violation_out_of_reach_exit_1():
    r = invoke(CLASSIC, "--depth", "3..6", "--policies", "v5.7,v5.9")
    assert r.exit_code == 1, r.output
    assert "v5.7 / no-leak: expected violated, not found up to depth 6" in r.stdout
    assert "v5.9 / no-leak" not in r.stdout


def test_violation_contradicting_holds_exit_1(tmp_path):
    sc = tmp_path / "s.yaml"
    sc.write_text(open(CLASSIC).read().replace("v5.7: {no-leak: violated",
                                               "v5.7: {no-leak: holds"))
    r = invoke(sc, "--depth", "12..13", "--policies", "v5.7", "--format", "json")
    assert r.exit_code == 1
    assert "violated at depth 12 (found with depth bound 12), expected holds" in r.stderr


# ------------------------------------------------------------------------------ plot


@pytest.mark.parametrize("suffix,magic", [(".svg", b"<svg"), (".png", b"\x89PNG")])
def test_plot_is_written(tmp_path, suffix, magic):
    pytest.importorskip("matplotlib")
    out = tmp_path / "sub" / f"states{suffix}"
    r = invoke(CLASSIC, ZAP, "--depth", "1..6", "--policies", "v5.7,v5.9", "--format", "csv",
               "--plot", out)
    assert r.exit_code == 1, r.output  # v5.7's expected leak is deeper than 6
    data = out.read_bytes()
    assert magic in data[:400]


# ------------------------------------------------------------------------------ Ctrl-C


def test_interrupted_run_prints_partial_results(monkeypatch):
    """Ctrl-C inside the third exploration: the explorer returns its partial result."""
    real = mmcheck.engine.explorer.explore
    calls = []

    def explore(model, **kwargs):
        calls.append(kwargs.get("max_depth"))
        if len(calls) == 3:
            def interrupt(progress):
                if progress.depth >= 4:
                    raise KeyboardInterrupt
            kwargs["progress"] = interrupt
        return real(model, **kwargs)

    monkeypatch.setattr(mmcheck.engine.explorer, "explore", explore)
    r = invoke(CLASSIC, "--depth", "10..14", "--policies", "v5.7,v5.9", "--format", "json")
    assert r.exit_code == 130, r.output
    assert calls == [10, 11, 12]
    data = json.loads(r.stdout)
    assert data["interrupted"] is True
    assert data["interrupted_at"] == {"scenario": "vmsplice-unmap-child", "policy": "v5.7",
                                      "depth": 12}
    rows = data["scenarios"][0]["rows"]
    assert [(row["depth"], row["search"]) for row in rows] == [
        (10, "depth"), (11, "depth"), (12, "interrupted")]
    assert rows[2]["states"] > 0 and rows[2]["states"] < rows[1]["states"]
    assert "interrupted" in r.stderr


def test_interrupted_table_marks_the_row(monkeypatch):
    real = mmcheck.report.runner.run_policy
    calls = []

    def run_policy(*args, **kwargs):
        calls.append(kwargs["depth"])
        if len(calls) == 2:
            raise KeyboardInterrupt  # outside the explorer (e.g. while building the model)
        return real(*args, **kwargs)

    monkeypatch.setattr(mmcheck.report.runner, "run_policy", run_policy)
    r = invoke(CLASSIC, "--depth", "8..9", "--policies", "v5.9")
    assert r.exit_code == 130, r.output
    assert "none≤8" in r.stdout and "none≤9" not in r.stdout
    assert "interrupted during vmsplice-unmap-child / v5.9 / depth bound 9" in r.stdout

    calls.clear()
    real_explore = mmcheck.engine.explorer.explore

    def explore(model, **kwargs):
        kwargs["progress"] = lambda p: (_ for _ in ()).throw(KeyboardInterrupt)
        return real_explore(model, **kwargs)

    monkeypatch.setattr(mmcheck.report.runner, "run_policy", real)
    monkeypatch.setattr(mmcheck.engine.explorer, "explore", explore)
    r = invoke(CLASSIC, "--depth", "8..9", "--policies", "v5.9")
    assert r.exit_code == 130, r.output
    assert "interrupted" in r.stdout and "partial row" in r.stdout


def test_symmetry_option_changes_counts_not_verdicts():
    menu = "scenarios/discover/two_pages_menu.yaml"
    rows = {}
    for level in ("full", "frames"):
        r = invoke(menu, "--depth", "9..10", "--policies", "page_count", "--format", "json",
                   "--symmetry", level)
        assert r.exit_code == 0, r.output
        rows[level] = json.loads(r.stdout)["scenarios"][0]["rows"]
    for full, frames in zip(rows["full"], rows["frames"]):
        assert full["verdicts"] == frames["verdicts"]
    assert rows["full"][-1]["states"] < rows["frames"][-1]["states"]
