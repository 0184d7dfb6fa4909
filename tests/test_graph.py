"""`mmcheck graph`: the explored state graph through networkx, and its analyses."""

from __future__ import annotations

import json
import re

import networkx as nx
import pytest
from click.testing import CliRunner

from mmcheck.cli import main
from mmcheck.model.model import MMModel
from mmcheck.model.policy import resolve
from mmcheck.report import graph
from mmcheck.report.runner import run_policy
from mmcheck.scenario.loader import load_scenario

VMSPLICE = "scenarios/classics/vmsplice_unmap_child.yaml"


def _graph(path, policy, **kw):
    return graph.build(MMModel(load_scenario(path), resolve(policy)), **kw)


@pytest.mark.parametrize("policy", ["v5.7", "v5.8", "v6.18"])
def test_the_graph_is_the_searched_space(policy):
    g = _graph(VMSPLICE, policy)
    run = run_policy(load_scenario(VMSPLICE), policy, with_traces=False)
    assert (g.number_of_nodes(), g.number_of_edges()) == (run.states, run.transitions)
    info = graph.analyse(g)
    violated = {v.name: v.depth for v in run.verdicts if v.verdict == "violated"}
    assert {p: i["shortest"] for p, i in info["properties"].items()} == violated


def test_point_of_no_return_of_the_vmsplice_leak():
    """Reference T1.2 (CVE-2020-29374): the leak is sealed when the child unmaps its
    mapping (its vmsplice reference stays), because the parent's write fault then sees
    mapcount 1 and reuses the page; until that step another interleaving is safe."""
    info = graph.analyse(_graph(VMSPLICE, "v5.7"))["properties"]["no-leak"]
    ret = info["point_of_no_return"]
    assert ret["taken"].startswith("B.main: zap_pte_range")
    assert 0 < ret["step"] < info["shortest"]
    assert info["unavoidable_from"] > 0 and info["avoidable_from"] > 0


def test_unavoidable_is_every_way_on():
    g = nx.MultiDiGraph()
    for n, bad in [(0, ""), (1, ""), (2, "p"), (3, ""), (4, ""), (5, "")]:
        g.add_node(n, violates=bad, depth=0, final=False, stuck=False)

    def edge(u, v, bad=""):
        g.add_edge(u, v, violates=bad, thread="t", action=f"{u}->{v}")

    edge(0, 1), edge(0, 3), edge(1, 2), edge(3, 4), edge(4, 3), edge(4, 5, "p")
    # 1 leads only to 2; 3 and 4 loop with an escape that violates only from 4
    assert graph.unavoidable(g, "p") == {1, 2}
    edge(5, 5)   # 5 loops forever without violating: still not doomed
    assert graph.unavoidable(g, "p") == {1, 2}


@pytest.mark.parametrize("suffix", graph.FORMATS)
def test_every_format_reads_back(tmp_path, suffix):
    g = _graph(VMSPLICE, "v5.7")
    path = tmp_path / f"g{suffix}"
    graph.write(g, str(path))
    if suffix == ".graphml":
        back = nx.read_graphml(path)
    elif suffix == ".gexf":
        back = nx.read_gexf(path)
    elif suffix == ".json":
        data = json.loads(path.read_text())
        try:
            back = nx.node_link_graph(data, edges="edges")
        except TypeError:  # networkx < 3.4 (PyPy 3.9's): the key is "links"
            data["links"] = data.pop("edges")
            back = nx.node_link_graph(data)
    else:
        text = path.read_text()
        edges = re.findall(r"^  \d+ -> \d+ ", text, re.MULTILINE)
        assert text.startswith("digraph") and len(edges) == g.number_of_edges()
        return
    assert (back.number_of_nodes(), back.number_of_edges()) == \
        (g.number_of_nodes(), g.number_of_edges())


def test_cli(tmp_path):
    r = CliRunner().invoke(main, ["graph", VMSPLICE, "-p", "v5.7", "-o",
                                  str(tmp_path / "g.graphml")])
    assert r.exit_code == 0 and "point of no return: step" in r.output
    r = CliRunner().invoke(main, ["graph", "scenarios/discover/generic_menu.yaml", "-p",
                                  "page_count", "--max-states", "500", "--json"])
    info = json.loads(r.output)
    assert info["states"] == 500 and not info["complete"]
    r = CliRunner().invoke(main, ["graph", VMSPLICE, "-o", str(tmp_path / "g.txt")])
    assert r.exit_code == 2 and "must end in" in r.output
    r = CliRunner().invoke(main, ["graph", VMSPLICE, "-p", "v9.9"])
    assert r.exit_code == 2 and "unknown policy 'v9.9'" in r.output


def test_point_of_no_return_in_the_rendered_trace(tmp_path):
    out = tmp_path / "cex"
    r = CliRunner().invoke(main, ["run", VMSPLICE, "-p", "v5.7", "--no-render", "--out",
                                  str(out)])
    assert r.exit_code == 0
    saved = out / "vmsplice-unmap-child--v5.7--no-leak.json"
    r = CliRunner().invoke(main, ["render", str(saved), "-o", str(tmp_path / "t.dot"),
                                  "--point-of-no-return"])
    assert r.exit_code == 0 and "point of no return at step 10" in r.output
    dot = (tmp_path / "t.dot").read_text()
    assert re.search(r"s9 -> s10 \[label=<<FONT COLOR=\"#d32f2f\"><B>point of no return", dot)
    assert "point of no return: step 10" in dot
    # without the flag, no mark; with a graph too big for the bound, no claim
    CliRunner().invoke(main, ["render", str(saved), "-o", str(tmp_path / "u.dot")])
    assert "point of no return" not in (tmp_path / "u.dot").read_text()
    r = CliRunner().invoke(main, ["render", str(saved), "-o", str(tmp_path / "v.dot"),
                                  "--point-of-no-return", "--max-states", "10"])
    assert r.exit_code == 0 and "not computed" in r.output
    assert "point of no return" not in (tmp_path / "v.dot").read_text()
