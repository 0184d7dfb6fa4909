"""The Python API, for scripts and notebooks.

    import mmcheck
    sc = mmcheck.load("scenarios/classics/vmsplice_unmap_child.yaml")
    result = mmcheck.check(sc, "v5.7")        # one search; shows itself as a table
    result.verdicts                            # {"no-leak": "violated", ...}
    result.trace("no-leak").render()          # the counterexample as SVG (shown inline)
    result.trace("no-leak").render("x.png")   # ... or written to a file
    mmcheck.table([sc], ["v5.7", "v5.8"])      # the verdict matrix (shows itself)

Results, traces and tables display themselves in Jupyter (`_repr_html_`, `_repr_svg_`).
Errors are mmcheck's own (`mmcheck.errors.ScenarioError` for a bad file, `KeyError` for an
unknown property).
"""

from __future__ import annotations

import html
import os
import tempfile
from dataclasses import dataclass

from .report import render as rendering
from .report.runner import PolicyRun, policy_defs, run_policy
from .report.table import markdown, verdict_rows
from .scenario.loader import load_scenario
from .scenario.spec import Scenario


def load(path: str | os.PathLike) -> Scenario:
    """A scenario file, validated (ScenarioError names the file, line and field)."""
    return load_scenario(os.fspath(path))


def check(scenario: Scenario | str | os.PathLike, policy: str | None = None, *,
          depth: int | None = None, max_states: int | None = None,
          properties=None, **search) -> "CheckResult":
    """Explore every interleaving of the scenario under one policy (default: its first);
    `search`: the options of `mmcheck run` (workers, store, max_memory, backend, ...)."""
    sc = scenario if isinstance(scenario, Scenario) else load(scenario)
    name = policy or sc.policies[0]
    return CheckResult(run_policy(sc, name, defs=policy_defs(sc), depth=depth,
                                  max_states=max_states, properties=properties, **search))


@dataclass
class Trace:
    """A counterexample (trace format 2, docs/trace-format.md)."""

    data: dict

    def render(self, path: str | os.PathLike | None = None) -> str:
        """Draw it: to `path` (.svg, .png, .pdf, .dot; returns the path), or as SVG text."""
        if path is not None:
            return rendering.render(self.data, path)
        with tempfile.TemporaryDirectory() as d:
            out = rendering.render(self.data, os.path.join(d, "trace.svg"))
            with open(out, encoding="utf-8") as f:
                return f.read()

    def text(self) -> str:
        """The trace as `mmcheck run` prints it."""
        return rendering.text_trace(self.data)

    def _repr_svg_(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return self.text()


class CheckResult:
    """One scenario under one policy: verdicts, counts, counterexamples."""

    def __init__(self, run: PolicyRun) -> None:
        self.run = run

    @property
    def verdicts(self) -> dict:
        return {v.name: v.verdict for v in self.run.verdicts}

    @property
    def unexpected(self) -> list[str]:
        """Properties whose verdict is not the scenario's expectation."""
        return [v.name for v in self.run.verdicts if v.unexpected]

    def trace(self, prop: str) -> Trace:
        """The shortest counterexample of a violated property (KeyError otherwise)."""
        for v in self.run.verdicts:
            if v.name == prop:
                if v.trace is None:
                    raise KeyError(f"{prop} is not violated under {self.run.policy}")
                return Trace(v.trace)
        raise KeyError(f"{prop} is not checked by {self.run.scenario.name}")

    def __repr__(self) -> str:
        cells = ", ".join(f"{k}: {v}" for k, v in self.verdicts.items())
        return (f"<{self.run.scenario.name} under {self.run.policy}: {cells}; "
                f"{self.run.states:,} states>")

    def _repr_html_(self) -> str:
        r = self.run
        rows = "".join(
            f"<tr><td>{html.escape(v.name)}</td><td>{html.escape(v.verdict)}"
            f"{f' at depth {v.depth}' if v.depth is not None else ''}</td>"
            f"<td>{html.escape(v.expected or '')}</td>"
            f"<td>{'✗' if v.unexpected else ('✓' if v.expected else '')}</td></tr>"
            for v in r.verdicts)
        bound = "" if r.complete else f" (bounded by {r.bounded_by} at depth {r.depth})"
        return (f"<p><b>{html.escape(r.scenario.name)}</b> under <b>{html.escape(r.policy)}"
                f"</b>: {r.states:,} states{bound}, {r.copies} COW copies "
                f"({r.unnecessary_copies} unnecessary)</p><table><tr><th>property</th>"
                f"<th>verdict</th><th>expected</th><th></th></tr>{rows}</table>")


class VerdictTable:
    """Scenarios x policies, each cell the violated properties (`mmcheck table`)."""

    def __init__(self, scenarios, policies=None) -> None:
        self.rows, self.columns = verdict_rows(scenarios, policies)

    def markdown(self) -> str:
        return markdown(self.rows, self.columns)

    def __repr__(self) -> str:
        return self.markdown()

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = ""
        for sc, cells in self.rows:
            tds = ""
            for c in self.columns:
                text, unexpected = cells.get(c, ("", False))
                style = ' style="color:red"' if unexpected else ""
                tds += f"<td{style}>{html.escape(text)}</td>"
            body += f"<tr><td>{html.escape(sc.name)}</td>{tds}</tr>"
        return f"<table><tr><th>scenario</th>{head}</tr>{body}</table>"


def table(scenarios, policies=None) -> VerdictTable:
    """The verdict matrix of scenarios (objects or paths) under policies (default: each
    scenario's own)."""
    loaded = [s if isinstance(s, Scenario) else load(s) for s in scenarios]
    return VerdictTable(loaded, policies)
