"""mmcheck.render: snapshot diffs, the text trace, the DOT drawing and trace I/O.

Works on the hand-written sample trace tests/data/sample_trace.json (CVE-2020-29374: the
vmsplice child-unmap leak under the v5.7 mapcount policy), not on the model.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil

import pytest

from mmcheck.report import render as R

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE = os.path.join(HERE, "data", "sample_trace.json")
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz 'dot' program not installed")


@pytest.fixture
def trace():
    return R.load_trace(SAMPLE)


def state(trace, i):
    return trace["steps"][i]["state"]


# --------------------------------------------------------------------------------------------
# snapshot_diff


def test_diff_copy_present_pte(trace):
    assert R.snapshot_diff(state(trace, 1), state(trace, 2)) == [
        "A.X pte: present f0 rw dirty -> present f0 ro dirty",
        "A.main step: copy_present_pte -> fork return",
        "B.X pte: none -> present f0 ro dirty",
        "B.X ideal: zero -> X@0",
        "B legit: + X@0",
        "f0 ref: 1 -> 2",
        "f0 map: 1 -> 2",
    ]


def test_diff_vmsplice(trace):
    assert R.snapshot_diff(state(trace, 3), state(trace, 4)) == [
        "B.main pc: 0 -> 1",
        "B.main op: vmsplice(page=X, as=pipe) -> munmap(page=X)",
        "f0 ref: 2 -> 3",
        "ref pipe: - -> f0",
        "ref pipe sees: - -> X@0",
    ]


def test_diff_munmap_and_fork_return(trace):
    assert R.snapshot_diff(state(trace, 4), state(trace, 5)) == [
        "B mm.mmap_lock: free -> write",
        "B.X vma: rw -> unmapped",
        "B.X pte: present f0 ro dirty -> none",
        "B.X ideal: X@0 -> zero",
        "B.main step: - -> tlb_finish_mmu",
        "f0 map: 2 -> 1",
    ]
    assert R.snapshot_diff(state(trace, 2), state(trace, 3)) == [
        "A mm.mmap_lock: write -> free",
        "A.main pc: 0 -> 1",
        "A.main op: fork(child=B) -> await(event=unmapped)",
        "A.main step: fork return -> -",
        "A.main status: running -> blocked",
        "B status: unborn -> running",
        "B mm.mmap_lock: write -> free",
        "B.main status: blocked -> running",
    ]


def test_diff_final_store(trace):
    assert R.snapshot_diff(state(trace, 11), state(trace, 12)) == [
        "A.X ideal: X@0 -> A.main#3",
        "A.main pc: 3 -> 4",
        "A.main op: write(page=X) -> -",
        "A.main step: store -> -",
        "A.main status: running -> done",
        "A legit: + A.main#3",
        "f0 content: X@0 -> A.main#3",
        "ref pipe sees: X@0 -> A.main#3",
    ]


def test_diff_identical_and_order_noise(trace):
    for step in trace["steps"]:
        assert R.snapshot_diff(step["state"], copy.deepcopy(step["state"])) == []
    # Reordering processes, threads, frames, refs, flags or legit values is not a change.
    snap = copy.deepcopy(state(trace, 12))
    shuffled = copy.deepcopy(snap)
    shuffled["processes"].reverse()
    shuffled["processes"][1]["legit"].reverse()
    shuffled["frames"].append({"id": "f1", "kind": "anon", "ref": 1, "map": 1, "pins": 0,
                               "flags": ["B", "A"], "content": "zero"})
    snap["frames"].insert(0, dict(shuffled["frames"][-1], flags=["A", "B"]))
    assert R.snapshot_diff(snap, shuffled) == []


def test_diff_new_and_freed_frames(trace):
    before = state(trace, 12)
    after = copy.deepcopy(before)
    after["frames"] = [{"id": "f1", "kind": "anon", "ref": 1, "map": 1, "pins": 0,
                        "flags": ["AnonExclusive"], "content": "A.main#3"}]
    assert R.snapshot_diff(before, after) == [
        "f0: freed",
        "f1: new anon ref 1 map 1 [AnonExclusive] content A.main#3",
    ]


def test_diff_is_deterministic(trace):
    steps = trace["steps"]
    for a, b in zip(steps, steps[1:]):
        first = R.snapshot_diff(a["state"], b["state"])
        assert first, f"step {b['index']} changes nothing"
        assert first == R.snapshot_diff(copy.deepcopy(a["state"]), copy.deepcopy(b["state"]))


# --------------------------------------------------------------------------------------------
# text_trace


def test_text_trace(trace):
    text = R.text_trace(trace)
    assert "\x1b" not in text
    head = text.splitlines()[:4]
    assert head[0].startswith("scenario: vmsplice-unmap-child")
    assert head[1].startswith("policy:   v5.7 (wp_reuse=mapcount")
    assert head[2] == "property: no-leak  VIOLATED"
    assert trace["reason"] in head[3]
    for step in trace["steps"]:
        assert step["action"] in text
        assert f"step {step['index']}  " in text
    assert ("step 4  B.main  gup_fast  [vmsplice(page=X, as=pipe)]  — get_user_pages_fast"
            in text)
    assert "\n    f0 ref: 2 -> 3\n" in text
    assert "\n    A.main pc: 1 -> 2\n" in text
    assert text.rstrip().endswith(trace["reason"])


# --------------------------------------------------------------------------------------------
# trace_to_dot

HIGHLIGHT = re.compile(r'<TD [^>]*ID="(s\d+:[^"]*)"[^>]*BGCOLOR="' + re.escape(R.CHANGED_BG) + '"')


def highlighted(dot: str, i: int) -> set[str]:
    return {m for m in HIGHLIGHT.findall(dot) if m.startswith(f"s{i}:")}


def ids(i: int, *paths: str) -> set[str]:
    return {f"s{i}:{p}" for p in paths}


def test_dot_highlights_exactly_the_changed_cells(trace):
    dot = R.trace_to_dot(trace)
    assert highlighted(dot, 0) == set()
    assert highlighted(dot, 2) == ids(
        2, "proc/A/page/X/pte/writable", "proc/A/thread/A.main/step",
        "proc/B/page/X/pte/kind", "proc/B/page/X/pte/frame", "proc/B/page/X/pte/writable",
        "proc/B/page/X/pte/dirty", "proc/B/page/X/ideal", "proc/B/legit",
        "frame/f0/ref", "frame/f0/map")
    assert highlighted(dot, 4) == ids(
        4, "proc/B/thread/B.main/pc", "proc/B/thread/B.main/op", "frame/f0/ref",
        "ref/pipe/frame", "ref/pipe/sees")
    assert highlighted(dot, 12) == ids(
        12, "proc/A/page/X/ideal", "proc/A/thread/A.main/pc", "proc/A/thread/A.main/op",
        "proc/A/thread/A.main/step", "proc/A/thread/A.main/status", "proc/A/legit",
        "frame/f0/content", "ref/pipe/sees")
    # Every state: highlighted == changed cells that are drawn (compact hides nothing changed).
    for i in range(1, len(trace["steps"])):
        prev, cur = state(trace, i - 1), state(trace, i)
        expected = {R.cell_id(i, p) for p in R.changed_cells(prev, cur)}
        assert highlighted(dot, i) == expected, i
    # An unchanged cell is drawn but not highlighted.
    assert 'ID="s4:frame/f0/map"' in dot and "s4:frame/f0/map" not in highlighted(dot, 4)


def test_dot_structure_and_violation(trace):
    dot = R.trace_to_dot(trace)
    n = len(trace["steps"])
    assert dot.startswith("digraph trace {") and dot.rstrip().endswith("}")
    for i in range(n):
        assert re.search(rf"^  s{i} \[label=<", dot, re.M)
    for i in range(1, n):
        assert re.search(rf"^  s{i - 1} -> s{i} \[label=<", dot, re.M)
    assert "12: A.main store" in dot
    assert "10: A.main do_wp_page" in dot
    # The violating (last) state and only it has the red border and the title row.
    node = lambda i: re.search(rf"^  s{i} \[label=<(.*)>\];$", dot, re.M).group(1)
    last = node(n - 1)
    assert f'BORDER="3" COLOR="{R.BAD}"' in last
    assert "VIOLATED: no-leak" in last and "B can observe A.main#3" in last
    for i in range(n - 1):
        assert R.BAD not in node(i) and "VIOLATED" not in node(i)
    # compact: unborn B hidden in state 0 but drawn (it changes) in states 1-2; the pipe
    # reference appears only once held.
    assert "process B" not in node(0) and "process B" in node(1) and "process B" in node(2)
    assert "s3:ref/pipe/" not in node(3) and 'ID="s4:ref/pipe/frame"' in node(4)
    full = R.trace_to_dot(trace, compact=False)
    assert "process B" in re.search(r"^  s0 \[label=<(.*)>\];$", full, re.M).group(1)


def test_dot_escapes_html(trace):
    t = copy.deepcopy(trace)
    last = t["steps"][-1]["state"]
    last["frames"][0]["content"] = 'a<b & "c">\'d'
    t["reason"] = "leak of <secret> & more"
    t["steps"][-1]["kernel"] = "do_wp_page: if (x < y && y > z)"
    dot = R.trace_to_dot(t)
    assert "a&lt;b &amp; &quot;c&quot;&gt;&#39;d" in dot
    assert "leak of &lt;secret&gt; &amp; more" in dot
    assert "x &lt; y &amp;&amp; y &gt; z" in dot
    for raw in ('a<b', '<secret>', "x < y"):
        assert raw not in dot
    if HAS_DOT:
        svg = R._run_dot(dot, "svg").decode()
        assert "a&lt;b &amp; &quot;c&quot;&gt;&#39;d" in svg or "a&lt;b &amp; \"c\"&gt;'d" in svg


@needs_dot
@pytest.mark.parametrize("layout", ["grid", "LR", "TB"])
def test_dot_is_valid_graphviz(trace, layout):
    for compact in (True, False):
        svg = R._run_dot(R.trace_to_dot(trace, compact=compact, layout=layout), "svg")
        assert svg.lstrip().startswith(b"<?xml") and b"</svg>" in svg


def test_dot_bad_layout(trace):
    with pytest.raises(ValueError, match="unknown layout"):
        R.trace_to_dot(trace, layout="circle")


# --------------------------------------------------------------------------------------------
# render


def test_render_dot_without_graphviz(trace, tmp_path):
    out = tmp_path / "sub" / "t.dot"
    assert R.render(trace, out) == str(out)
    assert out.read_text().startswith("digraph trace {")
    gv = tmp_path / "t.txt"
    R.render(trace, gv, fmt="dot")
    assert gv.read_text() == out.read_text()


@needs_dot
def test_render_svg_png(trace, tmp_path):
    svg = tmp_path / "t.svg"
    assert R.render(trace, svg) == str(svg)
    assert svg.stat().st_size > 1000 and b"</svg>" in svg.read_bytes()
    png = tmp_path / "t.png"
    R.render(trace, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    other = tmp_path / "t.out"
    R.render(trace, other, fmt="svg")
    assert b"</svg>" in other.read_bytes()


def test_render_unknown_format(trace, tmp_path):
    with pytest.raises(ValueError, match="cannot render"):
        R.render(trace, tmp_path / "t.jpg2")


def test_render_without_dot_program(trace, tmp_path, monkeypatch):
    monkeypatch.setattr(R.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError) as err:
        R.render(trace, tmp_path / "t.svg")
    assert str(err.value) == ("Graphviz 'dot' program not found: install the graphviz Debian "
                              "package (apt-get install graphviz)")


# --------------------------------------------------------------------------------------------
# load / save


def test_save_load_roundtrip(trace, tmp_path):
    path = tmp_path / "x" / "t.json"
    assert R.save_trace(trace, path) == str(path)
    assert R.load_trace(path) == trace
    assert json.loads(path.read_text()) == trace


def test_sample_is_in_canonical_layout(trace):
    with open(SAMPLE, encoding="utf-8") as fh:
        assert fh.read() == R.dumps(trace) + "\n"


@pytest.mark.parametrize("content,needle", [
    ("{not json", "not valid JSON"),
    ('{"format": "mmcheck-trace/3", "steps": []}', "format is 'mmcheck-trace/3'"),
    ('{"steps": []}', "format is None"),
    ("[1, 2]", "not an mmcheck trace"),
    ('{"format": "mmcheck-trace/1", "scenario": "s.yaml", "policy": {"name": "v5.7"}, '
     '"labels": [], "steps": []}', "steps: [] should be non-empty"),
    ('{"format": "mmcheck-trace/1", "scenario": "s.yaml", "policy": {"name": "v5.7"}, '
     '"labels": [], "steps": [{"index": 0}]}', "steps[0]: 'thread' is a required property"),
    ('{"format": "mmcheck-trace/1", "steps": []}', "'scenario' is a required property"),
    ('{"format": "mmcheck-trace/1", "scenario": 1, "policy": {"name": "v5.7"}, '
     '"labels": [], "steps": []}', "scenario: 1 is not of type 'string'"),
    ('{"format": "mmcheck-trace/1", "scenario": "s", "policy": null, '
     '"labels": [], "steps": []}', "policy: None is not of type 'object'"),
])
def test_load_rejects(tmp_path, content, needle):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError) as err:
        R.load_trace(path)
    msg = str(err.value)
    assert needle in msg and str(path) in msg and "\n" not in msg


def test_save_rejects_wrong_format(trace, tmp_path):
    with pytest.raises(ValueError, match="not an mmcheck trace"):
        R.save_trace(dict(trace, format="other"), tmp_path / "t.json")


# --------------------------------------------------------------------------------------------
# write tracking: the trackers and the uffd context are shown and diffed


def test_write_tracking_cells_are_shown_and_highlighted():
    from mmcheck.model.model import MMModel
    from mmcheck.model.policy import resolve
    from mmcheck.report.runner import policy_defs, run_policy
    from mmcheck.scenario.loader import load_scenario

    sc = load_scenario("scenarios/uffd/b0prime_shmem_markers.yaml")
    run = run_policy(sc, "no-markers")
    trace = next(v.trace for v in run.verdicts if v.name == "wp-reported")
    assert MMModel(sc, resolve("no-markers", policy_defs(sc)))  # the policy resolves
    first = state(trace, 0)["processes"][0]
    assert first["uffd"] == "none"
    assert first["vpages"][0]["tracking"] == {"vma": "softdirty", "wp": "-", "soft_dirty": "-",
                                              "pagemap": "-"}
    # step 1 registers (VM_UFFD_WP, a context), step 2 protects (the tracker says so)
    assert R.snapshot_diff(state(trace, 0), state(trace, 1))[:2] == [
        "A uffd: none -> open", "A.S vma tracking: softdirty -> uffd-wp softdirty"]
    assert "A.S uffd-wp: - -> protected" in R.snapshot_diff(state(trace, 1), state(trace, 2))
    dot = R.trace_to_dot(trace)
    assert ids(1, "proc/A/uffd", "proc/A/page/S/tracking/vma") <= highlighted(dot, 1)
    assert ids(2, "proc/A/page/S/tracking/wp") <= highlighted(dot, 2)
    assert "uffd-wp softdirty" in R.text_trace(trace)


def test_snapshots_without_write_tracking_have_no_tracking_fields():
    """Scenarios with no userfaultfd or pagemap op keep the snapshot they always had."""
    from mmcheck.report.runner import run_policy
    from mmcheck.scenario.loader import load_scenario

    run = run_policy(load_scenario("scenarios/classics/vmsplice_unmap_child.yaml"), "v5.7")
    trace = next(v.trace for v in run.verdicts if v.trace)
    procs = [p for step in trace["steps"] for p in step["state"]["processes"]]
    assert procs and all("tracking" not in vp and "uffd" not in p
                         for p in procs for vp in p["vpages"])
