"""The scenario x policy verdict matrix (docs/verdicts.md, README), generated, never typed.

Each cell lists the properties violated under that policy, in the reference's outcome-table
vocabulary: LEAK (no-leak: missed COW), INCOH (pin-coherent: wrong COW), LOST
(no-lost-write), REFCOUNT (refcount-sane), EXCL (exclusive-sane); write tracking:
UNREPORTED (wp-reported), UNPOPULATED (wp-unpopulated), WPBIT (wp-sane), SDBIT
(soft-dirty-sane), SDMISS (soft-dirty-complete), SDZAP (soft-dirty-zap), OPS
(op-expectations); `ok` when every property holds.  A cell whose
verdicts differ from the scenario's expectations is marked with `!`.
"""

from __future__ import annotations

from .runner import run_scenario

SHORT = {"no-leak": "LEAK", "pin-coherent": "INCOH", "no-lost-write": "LOST",
         "refcount-sane": "REFCOUNT", "exclusive-sane": "EXCL",
         # write tracking
         "wp-reported": "UNREPORTED", "wp-unpopulated": "UNPOPULATED", "wp-sane": "WPBIT",
         "soft-dirty-sane": "SDBIT", "soft-dirty-complete": "SDMISS", "soft-dirty-zap": "SDZAP",
         "op-expectations": "OPS"}
START, END = "<!-- verdicts:start -->", "<!-- verdicts:end -->"


def verdict_rows(scenarios, policies=None):
    """[(scenario, {policy: (cell text, unexpected?)})] and the policy column order."""
    rows, columns = [], []
    for sc in scenarios:
        cells = {}
        for run in run_scenario(sc, policies=policies):
            if run.policy not in columns:
                columns.append(run.policy)
            bad = [SHORT.get(v.name, v.name) for v in run.verdicts if v.verdict == "violated"]
            cells[run.policy] = (" ".join(bad) or "ok", bool(run.unexpected))
        rows.append((sc, cells))
    return rows, columns


def markdown(rows, columns, differences=False) -> str:
    out = ["| scenario | " + " | ".join(columns) + " |",
           "|---|" + "---|" * len(columns)]
    for sc, cells in rows:
        line = [f"`{sc.name}`"]
        for c in columns:
            text, bad = cells.get(c, ("", False))
            line.append(f"{text}{' !' if bad else ''}")
        out.append("| " + " | ".join(line) + " |")
    text = "\n".join(out) + "\n"
    if differences:
        text += "\nWhere neighbouring policies differ:\n\n" + neighbour_differences(rows, columns)
    return text


def neighbour_differences(rows, columns) -> str:
    """Markdown list: for each pair of neighbouring policies, the scenarios whose verdicts
    differ (an era preset that changes nothing would show an empty list)."""
    out = []
    for a, b in zip(columns, columns[1:]):
        names = [f"`{sc.name}`" for sc, cells in rows
                 if a in cells and b in cells and cells[a][0] != cells[b][0]]
        out.append(f"- `{a}` -> `{b}`: " + (", ".join(names) if names else "no difference"))
    return "\n".join(out) + "\n"


def splice(document: str, table: str) -> str:
    """Replace the text between the verdict markers of `document` with `table`."""
    if START not in document or END not in document:
        raise ValueError(f"the file has no {START} ... {END} markers")
    head, rest = document.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}{END}{tail}"
