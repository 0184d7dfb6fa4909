"""The explored state graph as data (networkx), and the analyses users ask of it.

`build(model)` explores the canonical state graph breadth-first, like the search, but keeps
every edge: nodes are numbered in BFS order (0 = the initial state) with their depth, the
always-properties they violate, and whether they are final or stuck; edges carry the step
(thread, kernel function, outcome, action) and the step properties the transition
violates. `--max-states` bounds it; a cut graph says so (`graph.graph["complete"]`).

Analyses (`analyse`): stuck states (no step enabled, some thread unfinished) with a
shortest path to the first; strongly connected components; and per violated property the
states from which the violation is *unavoidable* (every way on reaches it: the least
fixpoint of "violating, or not a dead end and every successor unavoidable") against those
from which it is only *reachable*. On the shortest counterexample the first unavoidable
state marks the point of no return: the step into it is the last one where a different
interleaving could still have stayed safe.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import networkx as nx

FORMATS = (".graphml", ".gexf", ".json", ".dot")


def build(model, max_states: int | None = None, canonicalize: bool = True,
          ids: dict | None = None) -> nx.MultiDiGraph:
    """The graph; `ids`, if given, is filled with canonical state -> node."""
    canonical = model.canonical if canonicalize else (lambda s: s)
    invariants = list(model.invariants()) + [
        (name, (lambda check: lambda s: check(s) if model.is_final(s) else None)(check))
        for name, check in getattr(model, "final_checks", lambda: ())()]
    steps = list(getattr(model, "step_checks", lambda: ())())
    g = nx.MultiDiGraph(complete=True)
    ids = {} if ids is None else ids
    queue: deque = deque()

    def add(state, depth):
        if state in ids:
            return ids[state]
        if max_states is not None and len(ids) >= max_states:
            g.graph["complete"] = False
            return None
        n = ids[state] = len(ids)
        bad = [name for name, check in invariants if check(state) is not None]
        g.add_node(n, depth=depth, violates=",".join(bad), final=False, stuck=False)
        queue.append((state, n))
        return n

    for s in model.initial_states():
        add(canonical(s), 0)
    states = {}
    while queue:
        state, n = queue.popleft()
        states[n] = state
        any_successor = False
        for label, succ in model.successors(state):
            any_successor = True
            succ = canonical(succ)
            m = add(succ, g.nodes[n]["depth"] + 1)
            if m is None:
                continue
            d = model.describe_label(label)
            bad = [name for name, check in steps if check(state, label, succ) is not None]
            g.add_edge(n, m, thread=d["thread"], function=d["function"],
                       outcome=d["outcome"], action=d["action"], violates=",".join(bad))
        if not any_successor:
            final = model.is_final(state) if hasattr(model, "is_final") else True
            g.nodes[n]["final"] = bool(final)
            g.nodes[n]["stuck"] = not final
    return g


def write(g: nx.MultiDiGraph, path: str) -> None:
    suffix = Path(path).suffix.lower()
    if suffix == ".graphml":
        nx.write_graphml(g, path)
    elif suffix == ".gexf":
        nx.write_gexf(g, path)
    elif suffix == ".json":
        import json

        try:
            data = nx.node_link_data(g, edges="edges")
        except TypeError:  # networkx < 3.4 names them "links", and has no `edges=`
            data = nx.node_link_data(g)
            data["edges"] = data.pop("links")
        Path(path).write_text(json.dumps(data, indent=1))
    elif suffix == ".dot":
        Path(path).write_text(to_dot(g))
    else:
        raise ValueError(f"{path}: the file must end in {', '.join(FORMATS)}")


def to_dot(g: nx.MultiDiGraph) -> str:
    def q(text):
        return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["digraph states {", "  node [shape=circle, fontsize=10];"]
    for n, a in g.nodes(data=True):
        style = (", style=filled, fillcolor=salmon" if a["violates"] else
                 ", style=filled, fillcolor=gold" if a["stuck"] else
                 ", peripheries=2" if a["final"] else "")
        tip = f"depth {a['depth']}" + (f"; violates {a['violates']}" if a["violates"] else "")
        lines.append(f"  {n} [label={q(n)}, tooltip={q(tip)}{style}];")
    for u, v, a in g.edges(data=True):  # noqa: B007
        color = ", color=red" if a["violates"] else ""
        lines.append(f"  {u} -> {v} [label={q(a['thread'] + ': ' + a['action'])}{color}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ analyses

def _violates(a: dict, prop: str) -> bool:
    return prop in a["violates"].split(",")


def _path_text(g, path) -> list[str]:
    out = []
    for u, v in zip(path, path[1:]):
        a = next(iter(g.get_edge_data(u, v).values()))
        out.append(f"{a['thread']}: {a['action']}")
    return out


def unavoidable(g: nx.MultiDiGraph, prop: str) -> set:
    """States from which every way on violates `prop`: a violating state, or one that is
    not a dead end and all of whose steps violate it or lead to such a state."""
    doomed = {n for n, a in g.nodes(data=True) if _violates(a, prop)}
    changed = True
    while changed:
        changed = False
        for n in g.nodes:
            if n in doomed or g.out_degree(n) == 0:
                continue
            if all(m in doomed or _violates(a, prop)
                   for _, m, a in g.out_edges(n, data=True)):
                doomed.add(n)
                changed = True
    return doomed


def analyse(g: nx.MultiDiGraph) -> dict:
    """Stuck states, cycles, and per violated property: how many states are doomed to it,
    how many can still avoid it, the shortest counterexample and its point of no return."""
    out: dict = {"states": g.number_of_nodes(), "edges": g.number_of_edges(),
                 "complete": g.graph.get("complete", True)}
    stuck = sorted(n for n, a in g.nodes(data=True) if a["stuck"])
    out["stuck"] = len(stuck)
    if stuck:
        out["stuck_path"] = _path_text(g, nx.shortest_path(g, 0, stuck[0]))
    sccs = [c for c in nx.strongly_connected_components(g) if len(c) > 1]
    out["cycles"] = {"components": len(sccs),
                     "largest": max((len(c) for c in sccs), default=0)}
    props = sorted({p for _, a in g.nodes(data=True) for p in a["violates"].split(",") if p}
                   | {p for *_, a in g.edges(data=True) for p in a["violates"].split(",")
                      if p})
    out["properties"] = {}
    for prop in props:
        doomed = unavoidable(g, prop)
        at = {n for n, a in g.nodes(data=True) if _violates(a, prop)}
        before = {u for u, _, a in g.edges(data=True) if _violates(a, prop)}
        reach = set()
        for t in at | before:
            reach |= nx.ancestors(g, t) | {t}
        # the shortest counterexample: to a violating state, or a violating step
        ends = [(g.nodes[t]["depth"], t, 0) for t in at] + \
               [(g.nodes[u]["depth"] + 1, u, 1) for u in before]
        length, end, _step = min(ends)
        path = nx.shortest_path(g, 0, end)
        first = next((i for i, n in enumerate(path) if n in doomed), None)
        info = {"unavoidable_from": len(doomed), "avoidable_from": len(reach - doomed),
                "shortest": length}
        if first is None:   # only the final (violating) step is doomed
            info["point_of_no_return"] = {"step": length, "taken": "the violating step"}
        elif first == 0:
            info["point_of_no_return"] = {"step": 0, "taken": "the initial state: every "
                                                              "interleaving violates it"}
        else:
            info["point_of_no_return"] = {"step": first,
                                          "taken": _path_text(g, path)[first - 1]}
        out["properties"][prop] = info
    return out


def point_of_no_return(model, trace: dict, max_states: int = 500_000) -> tuple:
    """(step, note) for a saved counterexample: the step into the first state of the trace
    from which its property's violation is unavoidable (None when the graph had to be cut
    and so cannot tell), and a sentence saying so."""
    from .trace import FORMAT, _follow

    ids: dict = {}
    g = build(model, max_states=max_states, ids=ids)
    prop = trace.get("property")
    states, _labels = _follow(model, trace["labels"], trace.get("format", FORMAT))
    if not g.graph["complete"]:
        return None, (f"point of no return: not computed (the state graph is larger than "
                      f"--max-states {max_states:,})")
    doomed = unavoidable(g, prop)
    for i, s in enumerate(states):
        if ids.get(model.canonical(s)) in doomed:
            if i == 0:
                return 0, f"{prop}: every interleaving violates it from the initial state"
            return i, (f"{prop}: point of no return at step {i}; until step {i - 1} another "
                       f"interleaving could still avoid the violation")
    n = len(states) - 1
    return n, f"{prop}: point of no return at the violating step {n} itself"
