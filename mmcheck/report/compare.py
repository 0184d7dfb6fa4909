"""`mmcheck compare`: verdicts and state-space statistics of several policies side by side,
over a range of depth bounds.

For every scenario x policy x depth bound d in A..B the scenario is explored with
`mmcheck.report.runner.run_policy(..., depth=d)`.  A run that exhausts the state space before its
bound (``complete``) gives the same answer for every larger bound, so the larger bounds of
that policy reuse it instead of exploring again (rows marked ``reused``).

- :func:`parse_depths`, :func:`parse_policies`: the command-line forms ``A..B`` / ``N`` and
  ``P1,P2``;
- :func:`compare` -> :class:`CompareResult` (rows per scenario, and one :class:`Outcome` per
  policy x property judged against the scenario's expectations);
- formatters :func:`print_table` (rich), :func:`to_markdown`, :func:`to_json`,
  :func:`to_csv`, :func:`to_html`, and :func:`plot` (matplotlib, SVG or PNG);
- :class:`CompareProgress` (the no-op progress protocol) and :class:`RichProgress` (a bar on
  stderr).

See docs/compare.md.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import tempfile
from dataclasses import dataclass, field, replace
from typing import Callable, Optional

from . import runner
from ..errors import IncompleteSearch, ScenarioError
from ..model.policy import ALIASES, PRESETS, resolve
from .runner import policy_defs
from .verdict import HOLDS, INTERRUPTED, UNKNOWN, VIOLATED, judge_range

FORMATS = ("table", "markdown", "json", "csv", "html")
JSON_FORMAT = "mmcheck-compare/1"
PLOT_SUFFIXES = (".svg", ".png")

# a y range wider than this factor gets a logarithmic axis
LOG_SCALE_RATIO = 100

_DEPTHS_RE = re.compile(r"^\s*(\d+)\s*(?:\.\.\s*(\d+)\s*)?$")


# --------------------------------------------------------------------------------------------
# command-line forms


def parse_depths(text: str) -> tuple[int, int]:
    """``"A..B"`` -> (A, B); ``"N"`` -> (N, N).  ValueError (one line) unless 1 <= A <= B."""
    m = _DEPTHS_RE.match(str(text))
    if m:
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if 1 <= lo <= hi:
            return lo, hi
    raise ValueError(f"--depth: {str(text)!r} is not a depth bound: give N or A..B with "
                     f"integers 1 <= A <= B")


def parse_policies(text: str) -> tuple[str, ...]:
    """``"v5.7, v5.9"`` -> ("v5.7", "v5.9"); ValueError on an empty name or list."""
    names = [n.strip() for n in str(text).split(",")]
    if not any(names):
        raise ValueError("--policies: no policy named (give a comma-separated list, e.g. v5.7,v5.9)")
    if not all(names):
        raise ValueError(f"--policies: empty policy name in {text!r}")
    seen: list[str] = []
    for n in names:
        if n not in seen:
            seen.append(n)
    return tuple(seen)


# --------------------------------------------------------------------------------------------
# results


@dataclass
class Cell:
    """One property's verdict in one run."""

    verdict: str  # holds | violated | unknown (bounded or interrupted, nothing found)
    depth: Optional[int] = None  # depth of the shortest counterexample
    reason: Optional[str] = None


@dataclass
class Row:
    """One scenario x policy x depth bound: a run, or a reuse of a complete run."""

    policy: str
    depth: int  # the depth bound d
    states: int
    transitions: int
    seconds: float
    rate: float
    copies: int
    unnecessary_copies: int
    complete: bool
    bounded_by: Optional[str]
    reached_depth: int  # deepest BFS level stored
    final_states: int
    stuck_states: int
    verdicts: dict = field(default_factory=dict)  # property -> Cell
    reused_from: Optional[int] = None  # the bound of the complete run these numbers are from

    @property
    def interrupted(self) -> bool:
        return self.bounded_by == INTERRUPTED

    @property
    def search(self) -> str:
        """complete | reused | depth | states | interrupted (| the explorer's other reasons)."""
        if self.reused_from is not None:
            return "reused"
        if self.complete:
            return "complete"
        return self.bounded_by or "bounded"

    @property
    def search_text(self) -> str:
        s = self.search
        if s == "reused":  # the time column says "reused"
            return f"complete at {self.reused_from}"
        if s == "complete":
            return f"complete at {self.depth}"
        if s == "depth":
            return "depth bound"
        if s == "states":
            return "state bound"
        return s


@dataclass
class Outcome:
    """A property under a policy over the whole depth range, against the expectation."""

    policy: str
    prop: str
    expected: Optional[str]
    status: str  # violated | holds (a complete run found nothing) | unknown | interrupted
    violation_depth: Optional[int] = None  # depth of the shortest counterexample
    found_at: Optional[int] = None  # smallest depth bound whose run found it
    bound: Optional[int] = None  # largest bound searched (status unknown / interrupted)
    reason: Optional[str] = None
    trace: Optional[dict] = None  # shortest counterexample (only when traces were asked for)
    ok: bool = True
    note: str = ""  # why it is not ok

    @property
    def status_text(self) -> str:
        if self.status == VIOLATED:
            return f"VIOLATED@{self.violation_depth}"
        if self.status == HOLDS:
            return "holds"
        if self.status == UNKNOWN:
            return f"none≤{self.bound}"
        return INTERRUPTED


@dataclass
class ScenarioResult:
    scenario: object  # mmcheck.scenario.spec.Scenario
    policies: tuple
    properties: tuple
    rows: list = field(default_factory=list)
    outcomes: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.scenario.name

    @property
    def path(self) -> str:
        return self.scenario.path

    def rows_for(self, policy: str) -> list:
        return [r for r in self.rows if r.policy == policy]

    def notes(self) -> list[tuple[str, str]]:
        """(kind, text) lines to show under the table: kind is "bad", "info" or "warn"."""
        out = []
        for o in self.outcomes:
            if not o.ok:
                out.append(("bad", f"{o.policy} / {o.prop}: {o.note}"))
        for policy in self.policies:
            rows = self.rows_for(policy)
            done = next((r for r in rows if r.complete and r.reused_from is None), None)
            if done is not None:
                reused = [r.depth for r in rows if r.reused_from is not None]
                text = (f"{policy}: state space exhausted with depth bound {done.depth} "
                        f"(deepest state at depth {done.reached_depth})")
                if reused:
                    text += (f"; bound {reused[0]} reuses that run" if len(reused) == 1 else
                             f"; bounds {reused[0]}..{reused[-1]} reuse that run")
                out.append(("info", text))
            if any(r.stuck_states for r in rows if not r.interrupted):
                n = max(r.stuck_states for r in rows if not r.interrupted)
                out.append(("warn", f"{policy}: {n} stuck state(s) (threads blocked forever)"))
            if done is not None and done.final_states == 0 and self.scenario.menu is None:
                out.append(("warn", f"{policy}: vacuous: no interleaving completes every "
                                    f"thread's program"))
            for r in rows:
                if r.interrupted:
                    out.append(("warn", f"{policy}: interrupted at depth bound {r.depth} "
                                        f"after {r.states:,} states (partial row)"))
        return out


@dataclass
class CompareResult:
    depths: tuple  # (A, B)
    scenarios: list = field(default_factory=list)
    interrupted: bool = False
    # (scenario name, policy, depth bound) of the run that was interrupted
    interrupted_at: Optional[tuple] = None
    # why a run could not finish for lack of a resource (memory, a lost worker process)
    incomplete: Optional[str] = None

    @property
    def unexpected(self) -> list:
        """(ScenarioResult, Outcome) pairs that do not meet the expectations."""
        return [(sr, o) for sr in self.scenarios for o in sr.outcomes if not o.ok]

    @property
    def runs(self) -> int:
        return sum(1 for sr in self.scenarios for r in sr.rows if r.reused_from is None)

    @property
    def reused(self) -> int:
        return sum(1 for sr in self.scenarios for r in sr.rows if r.reused_from is not None)

    @property
    def exit_code(self) -> int:
        """130 when interrupted, 1 on an unexpected verdict, 4 when a run ran out of a
        resource, else 0 (mmcheck.errors)."""
        if self.interrupted:
            return 130
        if self.unexpected:
            return 1
        return 4 if self.incomplete else 0

    def summary(self) -> str:
        lo, hi = self.depths
        text = (f"{len(self.scenarios)} scenario(s), depth bounds {lo}..{hi}: {self.runs} "
                f"run(s), {self.reused} reused, {len(self.unexpected)} unexpected verdict(s)")
        if self.interrupted:
            text += "; " + self.interrupted_text()
        if self.incomplete:
            text += "; incomplete: " + self.incomplete
        return text

    def interrupted_text(self) -> str:
        if not self.interrupted_at:
            return "interrupted"
        sc, policy, d = self.interrupted_at
        return f"interrupted during {sc} / {policy} / depth bound {d}"


# --------------------------------------------------------------------------------------------
# progress


class CompareProgress:
    """Progress protocol of :func:`compare` (this base class does nothing).

    ``start(total)`` once (total = scenario x policy x depth cells), ``run_started`` before
    each exploration, ``update`` from the explorer (every ~50k states and at each BFS level),
    ``run_finished(row)`` after each cell (runs and reused rows), ``stop()`` at the end (also
    on interruption).
    """

    def start(self, total: int) -> None:
        pass

    def run_started(self, scenario: str, policy: str, depth: int) -> None:
        pass

    def update(self, progress) -> None:  # an explorer.ExplorationProgress
        pass

    def run_finished(self, row: Row) -> None:
        pass

    def stop(self) -> None:
        pass

    @property
    def callback(self) -> Optional[Callable]:
        """What to hand to the explorer (None: no callbacks at all)."""
        return None if type(self).update is CompareProgress.update else self.update


class RichProgress(CompareProgress):
    """A rich progress bar on stderr: scenario / policy / depth bound, states, rate."""

    def __init__(self, console=None) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn,
                                   TextColumn, TimeElapsedColumn)

        self._progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=20),
            MofNCompleteColumn(), TextColumn("{task.fields[stats]}"), TimeElapsedColumn(),
            console=console or Console(stderr=True), transient=True)
        self._task = None

    def start(self, total: int) -> None:
        self._progress.start()
        self._task = self._progress.add_task("compare", total=total, stats="")

    def run_started(self, scenario: str, policy: str, depth: int) -> None:
        self._progress.update(self._task, description=f"{scenario} / {policy} / depth {depth}",
                              stats="")

    def update(self, progress) -> None:
        self._progress.update(self._task, stats=f"{progress.states:,} states, "
                                                f"{progress.rate:,.0f}/s, level {progress.depth}")

    def run_finished(self, row: Row) -> None:
        self._progress.update(self._task, advance=1, stats=f"{row.states:,} states")

    def stop(self) -> None:
        self._progress.stop()


# --------------------------------------------------------------------------------------------
# comparing


def compare(scenarios, policies=None, depths=(1, 1), properties=None, extra_defs=(),
            progress: Optional[CompareProgress] = None, *, with_traces: bool = False,
            max_states: Optional[int] = None, canonicalize: bool = True,
            symmetry: bool = True, workers: int = 1, **search) -> CompareResult:
    """Explore every scenario x policy x depth bound in ``depths`` (inclusive pair).

    ``policies``: names (default: each scenario's own list); ``properties``: names (default:
    the scenario's); ``extra_defs``: PolicyDefs from policy files.  ``with_traces`` builds the
    counterexample traces (kept for the smallest bound at which each violation is found).
    ``canonicalize``/``symmetry``/``workers`` and ``search`` (``store``, ``max_memory``,
    ``backend``, ``address``): state reduction, processes, state store, memory limit and
    backend, as in ``runner.run_policy``.
    Raises ScenarioError on an unknown policy or property before anything runs.  Ctrl-C stops
    at the current run: the result holds what was finished (plus the partial row) and
    ``interrupted`` is set.
    """
    lo, hi = depths
    if not 1 <= lo <= hi:
        raise ValueError(f"depth bounds must satisfy 1 <= A <= B, not {lo}..{hi}")
    plans = []
    for sc in scenarios:
        defs = policy_defs(sc, extra_defs)
        names = tuple(policies) if policies else tuple(sc.policies)
        for name in names:
            try:
                resolve(name, defs)
            except KeyError:
                known = list(PRESETS) + list(ALIASES) + list(defs)
                raise ScenarioError(sc.path, None, f"unknown policy '{name}' (known: "
                                                   f"{', '.join(known)})") from None
        for prop in properties or ():
            if prop not in sc.properties and prop not in runner._all_properties():
                raise ScenarioError(sc.path, None, f"unknown property '{prop}'")
        plans.append((sc, defs, names))

    progress = progress or CompareProgress()
    result = CompareResult((lo, hi))
    progress.start(sum(len(names) for _, _, names in plans) * (hi - lo + 1))
    try:
        for sc, defs, names in plans:
            sr = ScenarioResult(sc, names, tuple(properties) if properties else tuple(sc.properties))
            result.scenarios.append(sr)
            traces: dict = {}
            position: list = [None]  # (scenario, policy, depth bound) of the current cell
            try:
                _compare_scenario(sr, defs, lo, hi, properties, progress, with_traces,
                                  max_states, (canonicalize, symmetry, workers, search),
                                  traces, result,
                                  position)
            except KeyboardInterrupt:  # between runs (the explorer handles its own)
                result.interrupted, result.interrupted_at = True, position[0]
            except IncompleteSearch as e:  # a worker process was lost
                sc_name, policy, d = position[0]
                result.incomplete = f"{sc_name} / {policy} / depth bound {d}: {e}"
            finally:
                if sr.rows:
                    sr.properties = tuple(sr.rows[0].verdicts)
                sr.outcomes = _outcomes(sr, hi, traces, result.interrupted)
            if result.interrupted or result.incomplete:
                break
    finally:
        progress.stop()
    return result


def _compare_scenario(sr, defs, lo, hi, properties, progress, with_traces, max_states,
                      reduction, traces, result, position) -> None:
    sc = sr.scenario
    for name in sr.policies:
        complete_row = None
        for d in range(lo, hi + 1):
            position[0] = (sc.name, name, d)
            if complete_row is not None:
                row = replace(complete_row, depth=d, reused_from=complete_row.depth)
                sr.rows.append(row)
                progress.run_finished(row)
                continue
            progress.run_started(sc.name, name, d)
            run = runner.run_policy(sc, name, defs=defs, properties=properties or None,
                                    depth=d, max_states=max_states, canonicalize=reduction[0],
                                    symmetry=reduction[1], workers=reduction[2],
                                    **reduction[3],
                                    progress=progress.callback, with_traces=with_traces)
            row = _row(run, d)
            sr.rows.append(row)
            for v in run.verdicts:
                if v.trace is not None and v.name not in traces.setdefault(name, {}):
                    traces[name][v.name] = v.trace
            progress.run_finished(row)
            if row.interrupted:
                result.interrupted, result.interrupted_at = True, (sc.name, name, d)
                return
            if row.bounded_by == "memory":
                result.incomplete = (f"{sc.name} / {name} / depth bound {d}: the search ran "
                                     f"out of memory after {row.states:,} states (partial row); "
                                     f"{runner.MEMORY_ADVICE}")
                return
            if row.complete:
                complete_row = row


def _row(run, d: int) -> Row:
    return Row(
        policy=run.policy, depth=d, states=run.states, transitions=run.transitions,
        seconds=run.seconds, rate=run.rate, copies=run.copies,
        unnecessary_copies=run.unnecessary_copies, complete=run.complete,
        bounded_by=run.bounded_by, reached_depth=run.depth, final_states=run.final_states,
        stuck_states=run.stuck_states,
        verdicts={v.name: Cell(v.verdict, v.depth, v.reason) for v in run.verdicts})


def _outcomes(sr: ScenarioResult, hi: int, traces: dict, interrupted: bool) -> list[Outcome]:
    expected = {(e.policy, e.prop): e.verdict for e in sr.scenario.expect}
    out = []
    for policy in sr.policies:
        rows = sr.rows_for(policy)
        last = rows[-1] if rows else None
        for prop in sr.properties:
            o = Outcome(policy, prop, expected.get((policy, prop)), UNKNOWN)
            hit = next((r for r in rows if r.verdicts.get(prop) is not None
                        and r.verdicts[prop].verdict == VIOLATED), None)
            if hit is not None:
                cell = hit.verdicts[prop]
                o.status, o.violation_depth, o.found_at = VIOLATED, cell.depth, hit.depth
                o.reason = cell.reason
                o.trace = traces.get(policy, {}).get(prop)
            elif any(r.complete for r in rows):
                o.status = HOLDS
            elif last is None or last.interrupted:
                o.status = INTERRUPTED
                o.bound = last.depth if last else None
            else:
                o.status, o.bound = UNKNOWN, last.depth
            _judge(o, hi, last)
            out.append(o)
    return out


def _judge(o: Outcome, hi: int, last: Optional[Row]) -> None:
    """Set ``ok`` / ``note`` (mmcheck.report.verdict.judge_range)."""
    o.ok, o.note = judge_range(
        o.status, o.expected, violation_depth=o.violation_depth, found_at=o.found_at, hi=hi,
        bounded_by_states=last is not None and last.bounded_by == "states")


# --------------------------------------------------------------------------------------------
# shared cell texts


def cell_text(cell: Optional[Cell], row: Row) -> str:
    """VIOLATED@k, holds, none≤d (bounded, nothing found) or interrupted."""
    if cell is None:
        return "-"
    if cell.verdict == VIOLATED:
        return f"VIOLATED@{cell.depth}"
    if cell.verdict == HOLDS:
        return "holds"
    if row.interrupted:
        return INTERRUPTED
    return f"none≤{row.depth}"


def _time_text(row: Row) -> str:
    return "reused" if row.reused_from is not None else f"{row.seconds:.2f}s"


def _headers(sr: ScenarioResult) -> list[str]:
    return (["policy", "depth"] + list(sr.properties)
            + ["states", "transitions", "time", "COW (unnecessary)", "search"])


def _cells(sr: ScenarioResult, row: Row) -> list[str]:
    return ([row.policy, str(row.depth)]
            + [cell_text(row.verdicts.get(p), row) for p in sr.properties]
            + [f"{row.states:,}", f"{row.transitions:,}", _time_text(row),
               f"{row.copies} ({row.unnecessary_copies})", row.search_text])


def _title(sr: ScenarioResult, depths) -> str:
    return f"{sr.name}  ({sr.path})  depth bounds {depths[0]}..{depths[1]}"


# --------------------------------------------------------------------------------------------
# table (rich)


_STYLE = {"bad": "bold red", "info": "dim", "warn": "yellow"}


def print_table(result: CompareResult, console) -> None:
    """One rich table per scenario (rows policy x depth bound), its notes, then a summary."""
    from rich.markup import escape
    from rich.table import Table

    for sr in result.scenarios:
        table = Table(title=escape(_title(sr, result.depths)), title_justify="left")
        headers = _headers(sr)
        for i, h in enumerate(headers):
            numeric = i == 1 or 2 + len(sr.properties) <= i < len(headers) - 1
            table.add_column(escape(h), justify="right" if numeric else "left",
                             no_wrap=i > 0)
        previous = None
        for n, row in enumerate(sr.rows):
            texts = [escape(t) for t in _cells(sr, row)]
            if row.policy == previous:
                texts[0] = ""
            for i, p in enumerate(sr.properties):
                cell = row.verdicts.get(p)
                style = {VIOLATED: "red", HOLDS: "green"}.get(cell.verdict if cell else "", "yellow")
                texts[2 + i] = f"[{style}]{texts[2 + i]}[/{style}]"
            last_of_policy = n + 1 < len(sr.rows) and sr.rows[n + 1].policy != row.policy
            table.add_row(*texts, end_section=last_of_policy)
            previous = row.policy
        console.print(table)
        for kind, text in sr.notes():
            console.print(f"[{_STYLE[kind]}]{escape(text)}[/{_STYLE[kind]}]")
    style = "bold red" if result.unexpected or result.interrupted else "green"
    console.print(f"[{style}]{escape(result.summary())}[/{style}]")


def table_text(result: CompareResult, width: int = 160) -> str:
    """The tables as plain text (for ``--format table -o FILE``)."""
    from rich.console import Console

    buf = io.StringIO()
    print_table(result, Console(file=buf, width=width, color_system=None, force_terminal=False,
                                highlight=False, emoji=False))
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# markdown


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def _md(text: object) -> str:
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def to_markdown(result: CompareResult) -> str:
    lo, hi = result.depths
    out = [f"# mmcheck compare: depth bounds {lo}..{hi}", ""]
    for sr in result.scenarios:
        out.append(f"## {_md(sr.name)} ({_md(sr.path)})")
        out.append("")
        headers = _headers(sr)
        out.append("| " + " | ".join(_md(h) for h in headers) + " |")
        out.append("|" + "|".join("---:" if h in ("depth", "states", "transitions", "time")
                                   else "---" for h in headers) + "|")
        for row in sr.rows:
            out.append("| " + " | ".join(_md(c) for c in _cells(sr, row)) + " |")
        notes = sr.notes()
        if notes:
            out.append("")
            for kind, text in notes:
                out.append(f"- {'**unexpected:** ' if kind == 'bad' else ''}{_md(text)}")
        out.append("")
    out.append(_md(result.summary()))
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# JSON


def to_dict(result: CompareResult) -> dict:
    lo, hi = result.depths
    return {
        "format": JSON_FORMAT,
        "depths": [lo, hi],
        "interrupted": result.interrupted,
        "interrupted_at": (dict(zip(("scenario", "policy", "depth"), result.interrupted_at))
                           if result.interrupted_at else None),
        "unexpected": len(result.unexpected),
        "exit_code": result.exit_code,
        "scenarios": [{
            "scenario": sr.path, "name": sr.name, "policies": list(sr.policies),
            "properties": list(sr.properties),
            "rows": [{
                "policy": r.policy, "depth": r.depth, "states": r.states,
                "transitions": r.transitions, "seconds": round(r.seconds, 4),
                "states_per_second": round(r.rate, 1), "cow_copies": r.copies,
                "unnecessary_cow_copies": r.unnecessary_copies, "complete": r.complete,
                "bounded_by": r.bounded_by, "search": r.search, "reused_from": r.reused_from,
                "reached_depth": r.reached_depth, "final_states": r.final_states,
                "stuck_states": r.stuck_states, "interrupted": r.interrupted,
                "verdicts": {p: {"verdict": c.verdict, "depth": c.depth, "reason": c.reason}
                             for p, c in r.verdicts.items()},
            } for r in sr.rows],
            "outcomes": [{
                "policy": o.policy, "property": o.prop, "status": o.status,
                "expected": o.expected, "ok": o.ok, "violation_depth": o.violation_depth,
                "found_at_depth_bound": o.found_at, "bound": o.bound, "reason": o.reason,
                "note": o.note or None,
            } for o in sr.outcomes],
        } for sr in result.scenarios],
    }


def to_json(result: CompareResult) -> str:
    return json.dumps(to_dict(result), indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------------------------
# CSV


CSV_COLUMNS = ("scenario", "file", "policy", "depth", "states", "transitions", "seconds",
               "cow_copies", "unnecessary_cow_copies", "search", "complete", "reused_from",
               "reached_depth")


def to_csv(result: CompareResult) -> str:
    """One line per scenario x policy x depth bound; per property two columns: the verdict
    (holds / violated / unknown) and ``<property>_depth`` (counterexample depth)."""
    props: list[str] = []
    for sr in result.scenarios:
        props.extend(p for p in sr.properties if p not in props)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    header = list(CSV_COLUMNS)
    for p in props:
        header += [p, f"{p}_depth"]
    w.writerow(header)
    for sr in result.scenarios:
        for r in sr.rows:
            line = [sr.name, sr.path, r.policy, r.depth, r.states, r.transitions,
                    f"{r.seconds:.4f}", r.copies, r.unnecessary_copies, r.search,
                    str(r.complete).lower(), "" if r.reused_from is None else r.reused_from,
                    r.reached_depth]
            for p in props:
                c = r.verdicts.get(p)
                line += ["", ""] if c is None else [c.verdict, "" if c.depth is None else c.depth]
            w.writerow(line)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# HTML


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
small { color: #777; font-weight: normal; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #eee; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.violated { color: #c62828; font-weight: bold; } td.holds { color: #2e7d32; }
td.unknown, td.interrupted { color: #b26a00; }
tr.first td { border-top: 2px solid #999; }
ul.notes li.bad { color: #c62828; font-weight: bold; } ul.notes li.info { color: #555; }
ul.notes li.warn { color: #b26a00; }
.picture { overflow: auto; max-height: 90vh; border: 1px solid #ddd; margin: 0.5em 0; }
.picture svg { max-width: 100%; height: auto; }
.plot svg { max-width: 100%; height: auto; }
figure { margin: 1em 0 2em 0; } figcaption { font-weight: bold; }
pre { background: #f6f6f6; padding: 0.5em; overflow: auto; }
"""

_SVG_PROLOG = re.compile(r"^\s*(<\?xml[^>]*\?>\s*)?(<!--.*?-->\s*)*(<!DOCTYPE[^>]*>\s*)?", re.S)


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def inline_svg(svg: str, prefix: str) -> str:
    """SVG text ready to sit inside HTML: no XML prolog or DOCTYPE, every id (and the
    references to it) prefixed so that several pictures in one page cannot collide."""
    svg = _SVG_PROLOG.sub("", svg, count=1)
    svg = re.sub(r'\bid="([^"]*)"', lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]*)\)", lambda m: f"url(#{prefix}{m.group(1)})", svg)
    svg = re.sub(r'((?:xlink:)?href)="#([^"]*)"', lambda m: f'{m.group(1)}="#{prefix}{m.group(2)}"', svg)
    return svg.strip()


def _trace_figure(o: Outcome, index: int, tmpdir: str) -> str:
    from . import render as rendering

    caption = (f"{o.policy} / {o.prop}: violated at depth {o.violation_depth} (found with "
               f"depth bound {o.found_at})" + (f": {o.reason}" if o.reason else ""))
    parts = [f'<figure id="cex-{index}"><figcaption>{_esc(caption)}</figcaption>']
    if o.trace is None:
        parts.append("<p>(no trace recorded)</p></figure>")
        return "\n".join(parts)
    try:
        path = rendering.render(o.trace, os.path.join(tmpdir, f"trace-{index}.svg"))
        with open(path, encoding="utf-8") as fh:
            parts.append(f'<div class="picture">{inline_svg(fh.read(), f"t{index}-")}</div>')
    except (RuntimeError, ValueError) as e:  # no Graphviz: the text trace stays
        parts.append(f"<p>(not rendered: {_esc(e)})</p>")
    parts.append("<details><summary>text trace</summary><pre>"
                 f"{_esc(rendering.text_trace(o.trace))}</pre></details></figure>")
    return "\n".join(parts)


def to_html(result: CompareResult, *, plots: bool = False) -> str:
    """A single self-contained HTML page: per scenario the table, its notes, the plot of
    distinct states against depth bound (``plots``), and the shortest counterexample of each
    violation (per policy and property, from the smallest bound that found it) as inline
    SVG (needs the traces: ``compare(..., with_traces=True)``)."""
    lo, hi = result.depths
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>mmcheck compare: depth bounds {lo}..{hi}</title>",
           f"<style>{_CSS}</style>", "</head>", "<body>",
           f"<h1>mmcheck compare: depth bounds {lo}..{hi}</h1>",
           f'<p class="summary">{_esc(result.summary())}</p>']
    index = 0
    with tempfile.TemporaryDirectory(prefix="mmcheck-compare-") as tmpdir:
        for n, sr in enumerate(result.scenarios):
            out.append(f'<section id="scenario-{n}">')
            out.append(f"<h2>{_esc(sr.name)} <small>{_esc(sr.path)}</small></h2>")
            out.append(_html_table(sr))
            notes = sr.notes()
            if notes:
                out.append('<ul class="notes">')
                out.extend(f'<li class="{kind}">{_esc(text)}</li>' for kind, text in notes)
                out.append("</ul>")
            if plots:
                out.append(f'<div class="plot">{inline_svg(plot_svg(sr), f"p{n}-")}</div>')
            violations = [o for o in sr.outcomes if o.status == VIOLATED]
            if violations:
                out.append("<h3>Shortest counterexamples</h3>")
                for o in violations:
                    out.append(_trace_figure(o, index, tmpdir))
                    index += 1
            out.append("</section>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def _html_table(sr: ScenarioResult) -> str:
    headers = _headers(sr)
    nprops = len(sr.properties)
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in headers)
           + "</tr></thead>", "<tbody>"]
    previous = None
    for row in sr.rows:
        texts = _cells(sr, row)
        tds = []
        for i, t in enumerate(texts):
            if 2 <= i < 2 + nprops:
                cell = row.verdicts.get(sr.properties[i - 2])
                cls = (cell.verdict if cell and cell.verdict != UNKNOWN else
                       INTERRUPTED if row.interrupted else UNKNOWN)
            elif i == 1 or 2 + nprops <= i < len(texts) - 1:
                cls = "num"
            else:
                cls = ""
            tds.append(f'<td class="{cls}">{_esc(t)}</td>' if cls else f"<td>{_esc(t)}</td>")
        first = ' class="first"' if previous is not None and row.policy != previous else ""
        out.append(f"<tr{first}>" + "".join(tds) + "</tr>")
        previous = row.policy
    out += ["</tbody>", "</table>"]
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# plot


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")
_DASHES = ("-", "--", ":", "-.")


def _draw(ax, sr: ScenarioResult) -> None:
    import matplotlib
    from matplotlib.ticker import MaxNLocator

    ys_all = []
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    for i, policy in enumerate(sr.policies):
        rows = [r for r in sr.rows_for(policy) if not r.interrupted]
        if not rows:
            continue
        xs, ys = [r.depth for r in rows], [r.states for r in rows]
        ys_all += ys
        # policies often coincide: vary colour, marker and dash so that none hides another
        color, marker = colors[i % len(colors)], _MARKERS[i % len(_MARKERS)]
        style = _DASHES[(i // len(colors)) % len(_DASHES)]
        ax.plot(xs, ys, color=color, marker=marker, markersize=4, linestyle=style,
                label=policy)
        done = [r for r in rows if r.complete]
        if done:  # hollow markers: the space was exhausted (larger bounds reuse the run)
            ax.plot([r.depth for r in done], [r.states for r in done], linestyle="none",
                    color=color, marker=marker, markersize=6, markerfacecolor="white",
                    markeredgecolor=color)
    ax.set_title(f"{sr.name}", fontsize=10)
    ax.set_xlabel("depth bound")
    ax.set_ylabel("distinct states")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if ys_all and min(ys_all) > 0 and max(ys_all) / min(ys_all) >= LOG_SCALE_RATIO:
        ax.set_yscale("log")
    if ys_all:
        ax.legend(fontsize=8, title="policy (hollow: complete)", title_fontsize=8)
    else:
        ax.text(0.5, 0.5, "no finished run", ha="center", va="center", transform=ax.transAxes)
    ax.grid(True, alpha=0.3)


def _figure(scenarios: list):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = max(len(scenarios), 1)
    fig = Figure(figsize=(7.5, 3.6 * n), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    for ax, sr in zip(axes, scenarios):
        _draw(ax, sr)
    if not scenarios:
        axes[0].text(0.5, 0.5, "no finished run", ha="center", va="center",
                     transform=axes[0].transAxes)
    return fig


def _save(fig, target, fmt: str, svg_text: bool = False) -> None:
    import matplotlib

    params = {"svg.hashsalt": "mmcheck"}
    if svg_text:
        params["svg.fonttype"] = "none"
    metadata = {"Date": None} if fmt == "svg" else None
    with matplotlib.rc_context(params):
        fig.savefig(target, format=fmt, metadata=metadata, dpi=120)


def plot(result: CompareResult, path: str | os.PathLike) -> str:
    """Distinct states against depth bound, one line per policy, one subplot per scenario
    (stacked in one file); logarithmic y axis when the counts span a factor of 100 or more.
    The format follows the extension (.svg or .png).  Returns the path."""
    path = os.fspath(path)
    fmt = os.path.splitext(path)[1].lower().lstrip(".")
    if "." + fmt not in PLOT_SUFFIXES:
        raise ValueError(f"--plot {path}: the file must end in .svg or .png")
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    _save(_figure(result.scenarios), path, fmt)
    return path


def plot_svg(sr: ScenarioResult) -> str:
    """One scenario's plot as SVG text (for the HTML report)."""
    buf = io.StringIO()
    _save(_figure([sr]), buf, "svg", svg_text=True)
    return buf.getvalue()


FORMATTERS = {"markdown": to_markdown, "json": to_json, "csv": to_csv, "html": to_html}
