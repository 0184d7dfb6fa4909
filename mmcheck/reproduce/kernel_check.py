"""`mmcheck kernel-check`: build and run the reproducers of scenarios on this machine's
kernel and compare what it did with what the model says.

Per scenario (mmcheck.reproduce.witness): the executions that test each property, one C
program each (mmcheck.reproduce.cgen), compiled with $CC (default gcc) and run; the
program's last line (`# mmcheck-result {...}`) says per observable property in how many
attempts the kernel violated it.  The kernel's verdict on a property: violated if any
program saw it violated; held if one of the programs made for it ran; else skipped (with
the program's reason).  Agreement: the same verdict as the model's under the policy;
`unconfirmed` when the model's counterexample is a race the attempts did not hit (a
race can be missed; it is not counted as a disagreement).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field

from ..model.policy import PRESETS
from ..scenario.spec import Scenario
from . import cgen, witness

RESULT_LINE = "# mmcheck-result "


@dataclass
class ProgramRun:
    why: str  # the execution it runs (witness.Witness.why)
    properties: list
    attempts: int
    sequential: bool
    exit_code: int | None = None
    result: dict = field(default_factory=dict)  # the program's summary line
    output: str = ""
    error: str = ""  # compile or run failure
    own: bool = True  # the execution was found under the checked policy
    label: str = ""  # short: "v5.7 counterexample" / "sequential execution"

    @property
    def skipped(self) -> str:
        return self.result.get("skip", "") if self.result else ""

    @property
    def left(self) -> str:
        """Why the kernel left the program's execution ('' if it did not)."""
        if not self.result:
            return ""
        for key in ("diverged", "stuck"):
            if self.result.get(key):
                return _reason(self.output, "schedule") or key
        return ""


@dataclass
class Row:
    scenario: str
    path: str
    prop: str
    model: str  # holds | violated
    kernel: str  # holds | violated | skip | stuck | error | not observable
    agree: str  # yes | NO | unconfirmed | - (not compared)
    detail: str = ""


def preset_for_kernel(release: str | None = None) -> str:
    """The newest preset not newer than the running kernel (`uname -r`)."""
    release = release or platform.release()
    m = re.match(r"(\d+)\.(\d+)", release)
    running = (int(m.group(1)), int(m.group(2))) if m else (99, 0)
    best = None
    for name in PRESETS:
        v = re.match(r"v(\d+)\.(\d+)", name)
        version = (int(v.group(1)), int(v.group(2)))
        if version <= running and (best is None or version >= best[0]):
            best = (version, name)
    return best[1] if best else next(iter(PRESETS))


def compiler() -> str:
    return os.environ.get("CC", "gcc")


def build(source: str, workdir: str, name: str, cc: str | None = None) -> tuple[str, str]:
    """Compile `source` warning-free (-Wall -Werror); (binary path, '' or the errors)."""
    path = os.path.join(workdir, name + ".c")
    binary = os.path.join(workdir, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(source)
    cmd = [cc or compiler(), "-O2", "-Wall", "-Werror", "-o", binary, path, "-lpthread"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except FileNotFoundError:
        return binary, f"compiler '{cmd[0]}' not found (set $CC)"
    return binary, (r.stderr.strip() if r.returncode else "")


def parse_result(output: str) -> dict:
    for line in reversed(output.splitlines()):
        if line.startswith(RESULT_LINE):
            return json.loads(line[len(RESULT_LINE):])
    return {}


def run_program(binary: str, attempts: int | None, timeout_ms: int) -> tuple[int | None, str, str]:
    args = [binary, "--timeout", str(timeout_ms)]
    if attempts:
        args += ["--attempts", str(attempts)]
    budget = 60 + (attempts or cgen.RACE_ATTEMPTS) * timeout_ms / 1000 * 4
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=budget,
                           cwd=os.path.dirname(binary))
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return None, out, f"did not finish in {budget:.0f} s"
    return r.returncode, r.stdout, r.stderr.strip()


def check_scenario(sc: Scenario, policy: str, *, extra_defs=(), attempts=None,
                   timeout_ms=5000, workdir=None, cc=None, status=None) -> tuple[list[Row], list]:
    """The agreement rows of one scenario, and the program runs behind them."""
    status = status or (lambda text: None)
    status("model")
    verdicts, witnesses = witness.for_scenario(sc, policy, extra_defs)
    runs: list[ProgramRun] = []
    own = workdir is None
    workdir = workdir or tempfile.mkdtemp(prefix="mmcheck-kc-")
    try:
        for i, w in enumerate(witnesses):
            sched = w.schedule()
            prog = cgen.generate(sched, origin=w.why, model_says=verdicts, model_policy=policy)
            pr = ProgramRun(w.why, list(w.properties), attempts or prog.attempts,
                            sched.sequential, own=w.model.policy.name == policy,
                            label=w.label)
            runs.append(pr)
            status(f"program {i + 1}/{len(witnesses)}: compiling")
            binary, err = build(prog.source, workdir, f"{_slug(sc.name)}-{i}", cc)
            if err:
                pr.error = f"compile: {err.splitlines()[0] if err else ''}"
                continue
            status(f"program {i + 1}/{len(witnesses)}: running "
                   f"({pr.attempts} attempt{'s' if pr.attempts != 1 else ''})")
            pr.exit_code, pr.output, stderr = run_program(binary, attempts, timeout_ms)
            pr.result = parse_result(pr.output)
            if not pr.result:
                pr.error = f"no result line (exit {pr.exit_code}){': ' + stderr if stderr else ''}"
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    return rows_for(sc, verdicts, runs), runs


def rows_for(sc: Scenario, verdicts: dict, runs: list[ProgramRun]) -> list[Row]:
    """Per property: the kernel's verdict from the programs that ran, and agreement.

    A program whose execution the kernel left (a result other than the model's, or a
    point that never finished) proves nothing about the properties past that point: its
    observations are not counted.  When it was the model's own execution under the
    checked policy, leaving it is itself a disagreement; an execution found under another
    era may well be impossible on this kernel (that is often the fix)."""
    rows = []
    for prop, model in verdicts.items():
        if prop not in cgen.OBSERVABLE:
            rows.append(Row(sc.name, sc.path, prop, model, "not observable", "-",
                            cgen.NOT_OBSERVABLE))
            continue
        valid = [r for r in runs if r.result and not r.skipped and not r.left]
        seen = [r for r in valid if r.result.get("violated", {}).get(prop)]
        left_own = [r for r in runs if r.own and r.left]
        mine = [r for r in runs if prop in r.properties]
        errors = [r for r in runs if r.error]
        if seen:
            r = seen[0]
            kernel = "violated"
            detail = (f"{r.label} ({r.result['violated'][prop]} of {r.result['attempts']} "
                      f"attempts): {_reason(r.output, prop)}")
        elif left_own:
            kernel, detail = "left the execution", f"{left_own[0].label}: {left_own[0].left}"
        elif valid:
            tested = [r for r in valid if prop in r.properties] or valid
            kernel = "holds"
            detail = "; ".join(f"{r.label}" + (f" ({r.result['attempts']} attempts)"
                                               if r.result["attempts"] > 1 else "")
                               for r in tested)
            gone = [r for r in mine if r.left]
            if gone:
                detail += "; not possible here: " + "; ".join(f"{r.label}: {r.left}"
                                                              for r in gone)
        elif errors:
            kernel, detail = "error", errors[0].error
        else:
            skipped = [r for r in mine if r.skipped] or [r for r in runs if r.skipped]
            kernel, detail = "skip", skipped[0].skipped if skipped else "no program"
        if kernel == "skip":
            agree = "-"
        elif kernel == model:
            agree = "yes"
        elif model == "violated" and kernel == "holds" and any(
                not r.sequential for r in mine):
            agree = "unconfirmed"
        else:
            agree = "NO"
        rows.append(Row(sc.name, sc.path, prop, model, kernel, agree, detail))
    return rows


def _reason(output: str, prop: str) -> str:
    """The program's reason on its `not ok N - prop: ... attempts: REASON` line."""
    for line in output.splitlines():
        if line.startswith("not ok") and f" - {prop}:" in line:
            text = line.split(":", 1)[1].strip()
            return re.sub(r"^.*? in \d+ of \d+ attempts: ", "", text)
    return ""


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def summary(rows: list[Row]) -> dict:
    out = {"agree": 0, "disagree": 0, "unconfirmed": 0, "skipped": 0, "not observable": 0}
    for r in rows:
        if r.kernel == "not observable":
            out["not observable"] += 1
        elif r.agree == "yes":
            out["agree"] += 1
        elif r.agree == "NO":
            out["disagree"] += 1
        elif r.agree == "unconfirmed":
            out["unconfirmed"] += 1
        else:
            out["skipped"] += 1
    return out


def as_json(rows: list[Row], policy: str, runs_by_scenario: dict) -> dict:
    return {"kernel": platform.release(), "machine": platform.machine(), "policy": policy,
            "summary": summary(rows), "rows": [asdict(r) for r in rows],
            "programs": {name: [{"why": r.why, "properties": r.properties,
                                 "attempts": r.attempts, "sequential": r.sequential,
                                 "own_policy": r.own,
                                 "exit_code": r.exit_code, "result": r.result,
                                 "error": r.error} for r in runs]
                         for name, runs in runs_by_scenario.items()}}
