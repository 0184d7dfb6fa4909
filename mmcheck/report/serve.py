"""`mmcheck serve`: an interactive explorer of one scenario under one policy, in the browser
(as stateright's Explorer or the TLA+ trace explorer).

A Flask app keeps one walk through the model (a single local user): it starts at the
initial state, lists every thread's enabled steps named after the kernel functions they
mirror, takes the one clicked, steps back, and can load the shortest counterexample of any
violated property and walk it step by step. The page shows the state as the rendered
tables (`mmcheck.report.render.flatten`), the cells the last step changed highlighted, and
the properties the current state violates.
"""

from __future__ import annotations

import html

from flask import Flask, jsonify, request

from ..model.model import MMModel
from . import render as rendering
from .runner import run_policy
from .trace import FORMAT
from .trace import _follow as follow_trace


class Walk:
    """The explorer's position: the concrete states walked so far and their labels, and a
    counterexample being followed (its labels), if any."""

    def __init__(self, scenario, policy_name: str, policy) -> None:
        self.scenario, self.policy_name = scenario, policy_name
        self.model = MMModel(scenario, policy)
        self.initial = next(iter(self.model.initial_states()))
        self.states, self.labels = [self.initial], []
        self.plan: list = []            # labels of the counterexample being walked
        self.plan_name: str | None = None
        self._counterexamples: dict | None = None
        self.checks = list(self.model.invariants())

    # ------------------------------------------------------------------------ moves
    def successors(self):
        return list(self.model.successors(self.states[-1]))

    def step(self, index: int) -> None:
        label, succ = self.successors()[index]
        self.states.append(succ)
        self.labels.append(label)

    def back(self) -> None:
        if self.labels:
            self.states.pop()
            self.labels.pop()

    def reset(self) -> None:
        self.states, self.labels = [self.initial], []
        self.plan, self.plan_name = [], None

    def counterexamples(self) -> dict:
        """Property -> concrete labels of its shortest counterexample (one search)."""
        if self._counterexamples is None:
            run = run_policy(self.scenario, self.policy_name)
            self._counterexamples = {
                v.name: follow_trace(self.model, v.trace["labels"],
                                     v.trace.get("format", FORMAT))[1]
                for v in run.verdicts if v.trace is not None}
        return self._counterexamples

    def jump(self, prop: str) -> None:
        self.reset()
        self.plan, self.plan_name = list(self.counterexamples()[prop]), prop

    def follow(self) -> None:
        """Take the counterexample's next step."""
        at = len(self.labels)
        if at < len(self.plan):
            want = self.plan[at]
            for i, (label, _succ) in enumerate(self.successors()):
                if label == want:
                    self.step(i)
                    return
            raise RuntimeError("the counterexample does not replay from here")

    # ------------------------------------------------------------------------- view
    def view(self) -> dict:
        s = self.states[-1]
        cells = rendering.flatten(self.model.snapshot(s))
        before = (rendering.flatten(self.model.snapshot(self.states[-2]))
                  if len(self.states) > 1 else cells)
        rows = [{"cell": " ".join(str(p) for p in path), "value": value,
                 "changed": before.get(path) != value} for path, value in cells.items()]
        at = len(self.labels)
        planned = self.plan[at] if at < len(self.plan) else None
        steps = []
        for i, (label, _succ) in enumerate(self.successors()):
            d = self.model.describe_label(label)
            steps.append({"index": i, "thread": d["thread"], "function": d["function"],
                          "outcome": d["outcome"], "action": d["action"], "op": d["op"],
                          "on_counterexample": label == planned})
        taken = [self.model.describe_label(label) for label in self.labels]
        return {"scenario": self.scenario.name, "policy": self.policy_name,
                "depth": at, "rows": rows, "steps": steps,
                "history": [f"{d['thread']}: {d['action']}" for d in taken],
                "violated": [f"{name}: {reason}" for name, check in self.checks
                             if (reason := check(s)) is not None],
                "following": self.plan_name, "plan_left": max(len(self.plan) - at, 0),
                "final": not steps and bool(self.model.is_final(s))}


def create_app(scenario, policy_name: str, policy) -> Flask:
    walk = Walk(scenario, policy_name, policy)
    app = Flask("mmcheck.serve")

    @app.get("/")
    def page():
        return PAGE.replace("{{title}}", html.escape(f"{scenario.name} under {policy_name}"))

    @app.get("/api/view")
    def view():
        return jsonify(walk.view())

    @app.post("/api/step")
    def step():
        index = int(request.get_json(force=True).get("index", -1))
        if not 0 <= index < len(walk.successors()):
            return jsonify({"error": f"no step {index} here"}), 400
        walk.step(index)
        return jsonify(walk.view())

    @app.post("/api/back")
    def back():
        walk.back()
        return jsonify(walk.view())

    @app.post("/api/reset")
    def reset():
        walk.reset()
        return jsonify(walk.view())

    @app.get("/api/counterexamples")
    def counterexamples():
        return jsonify({name: len(labels) for name, labels in walk.counterexamples().items()})

    @app.post("/api/jump")
    def jump():
        prop = request.get_json(force=True).get("property")
        if prop not in walk.counterexamples():
            return jsonify({"error": f"{prop} is not violated"}), 400
        walk.jump(prop)
        return jsonify(walk.view())

    @app.post("/api/follow")
    def follow():
        walk.follow()
        return jsonify(walk.view())

    app.walk = walk
    return app


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>mmcheck: {{title}}</title>
<style>
 body { font-family: sans-serif; margin: 1em; display: grid;
        grid-template-columns: 34em 1fr; gap: 1.5em; }
 h1 { grid-column: 1 / 3; font-size: 1.2em; margin: 0; }
 table { border-collapse: collapse; font-size: 0.85em; }
 td { border-bottom: 1px solid #ddd; padding: 2px 6px; font-family: monospace; }
 tr.changed td { background: #fff3a0; }
 button { margin: 2px; }
 .step { display: block; width: 100%; text-align: left; }
 .planned { background: #ffd2d2; font-weight: bold; }
 .violated { color: #b00; }
 .fn { color: #555; font-family: monospace; }
</style></head>
<body>
<h1>mmcheck explorer: {{title}}</h1>
<div>
 <div><b>step <span id="depth">0</span></b>
  <button id="back">back</button> <button id="reset">reset</button>
  <span id="following"></span> <button id="follow" hidden>next counterexample step</button></div>
 <h3>enabled steps</h3><div id="steps"></div>
 <h3>counterexamples</h3><div id="cex"><button id="load-cex">find violations</button></div>
 <h3>steps taken</h3><ol id="history"></ol>
</div>
<div><div id="violated" class="violated"></div><table id="state"></table></div>
<script>
async function call(path, body) {
  const opts = body === undefined ? {} : {method: "POST",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)};
  const r = await fetch(path, opts);
  return r.json();
}
function show(v) {
  document.getElementById("depth").textContent = v.depth;
  const steps = document.getElementById("steps");
  steps.innerHTML = "";
  for (const s of v.steps) {
    const b = document.createElement("button");
    b.className = "step" + (s.on_counterexample ? " planned" : "");
    b.dataset.index = s.index;
    b.innerHTML = `<b>${s.thread}</b> ${s.op}: ${s.action} <span class="fn">${s.function}/${s.outcome}</span>`;
    b.onclick = async () => show(await call("/api/step", {index: s.index}));
    steps.appendChild(b);
  }
  if (!v.steps.length) steps.textContent = v.final ? "every thread finished" : "stuck";
  document.getElementById("history").innerHTML =
      v.history.map(h => `<li>${h}</li>`).join("");
  document.getElementById("violated").innerHTML =
      v.violated.map(x => `<p>violated: ${x}</p>`).join("");
  document.getElementById("state").innerHTML = v.rows.map(r =>
      `<tr class="${r.changed ? "changed" : ""}"><td>${r.cell}</td><td>${r.value}</td></tr>`).join("");
  const follow = document.getElementById("follow");
  follow.hidden = !(v.following && v.plan_left > 0);
  document.getElementById("following").textContent = v.following ?
      `walking the shortest counterexample of ${v.following} (${v.plan_left} steps left)` : "";
}
document.getElementById("back").onclick = async () => show(await call("/api/back", {}));
document.getElementById("reset").onclick = async () => show(await call("/api/reset", {}));
document.getElementById("follow").onclick = async () => show(await call("/api/follow", {}));
document.getElementById("load-cex").onclick = async () => {
  const c = await call("/api/counterexamples");
  const div = document.getElementById("cex");
  div.innerHTML = Object.keys(c).length ? "" : "no property is violated";
  for (const [name, n] of Object.entries(c)) {
    const b = document.createElement("button");
    b.className = "jump"; b.dataset.property = name;
    b.textContent = `${name} (${n} steps)`;
    b.onclick = async () => show(await call("/api/jump", {property: name}));
    div.appendChild(b);
  }
};
call("/api/view").then(show);
</script></body></html>
"""
