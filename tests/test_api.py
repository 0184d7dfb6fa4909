"""The Python API (mmcheck.load / check / table) and the example notebook, executed."""

from __future__ import annotations

import pytest

import mmcheck
from mmcheck.errors import ScenarioError

VMSPLICE = "scenarios/classics/vmsplice_unmap_child.yaml"


def test_check_and_its_displays(tmp_path):
    sc = mmcheck.load(VMSPLICE)
    r = mmcheck.check(sc, "v5.7")
    assert r.verdicts["no-leak"] == "violated" and r.unexpected == []
    assert "<table>" in r._repr_html_() and "no-leak" in r._repr_html_()
    t = r.trace("no-leak")
    assert t._repr_svg_().lstrip().startswith(("<?xml", "<svg"))
    assert t.render(tmp_path / "t.dot").endswith("t.dot")
    assert "step 1" in t.text()
    with pytest.raises(KeyError, match="not violated"):
        r.trace("pin-coherent")
    assert mmcheck.check(VMSPLICE, "v5.8").verdicts["no-leak"] == "holds"


def test_table_and_errors(tmp_path):
    tb = mmcheck.table([VMSPLICE], ["v5.7", "v5.8"])
    assert "LEAK" in tb._repr_html_() and "| `vmsplice-unmap-child` | LEAK EXCL | ok |" in tb.markdown()
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\npages: {X: presnt}\n")
    with pytest.raises(ScenarioError, match="bad.yaml:2"):
        mmcheck.load(bad)


def test_the_example_notebook_runs():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read("docs/example.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": "."}}).execute()
    kinds = {k for c in nb.cells if c.cell_type == "code" for o in c.outputs
             for k in o.get("data", {})}
    assert {"text/html", "image/svg+xml"} <= kinds
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
                if o.get("output_type") == "error"]
