"""Mutation fuzzing of everything mmcheck reads: scenario files, policy files, traces, and
the command line.

Every input must either be accepted (and then a bounded search of it must run without an
exception) or be refused with mmcheck's own error: `ScenarioError` (one line, file:line)
for scenario and policy files, `ValueError` for a trace that is not one, `ReplayError` for
a trace that no longer replays, exit status 2 with one line on stderr from the CLI.  Any
other exception is a crash, and the fuzzer reports it with the input that caused it.

Inputs are the shipped scenarios, policies and counterexamples, mutated at the text level
(lines deleted, duplicated, swapped, truncated; hostile YAML snippets spliced in: tags,
huge numbers, alias bombs, control characters) and at the tree level (a value replaced by
one of another type, keys dropped, renamed or added, lists emptied or repeated).  The
random generator is seeded, so a run is reproducible.

    python -m mmcheck.fuzzing --inputs 100000 --seed 1 --record docs/fuzzing.md

The test suite runs a short fixed-seed run (tests/test_fuzz.py).
"""

from __future__ import annotations

import argparse
import copy
import datetime
import glob
import json
import os
import platform
import random
import sys
import time
import traceback
from dataclasses import dataclass, field

import yaml

from .errors import ScenarioError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# YAML snippets that have crashed or slowed YAML-reading programs somewhere
HOSTILE_SNIPPETS = [
    "!!int A", "!!bool x", "!!float 1", "!!timestamp x", "!!str 5", "!!binary aGk=",
    "!!python/name:os.system x", "!!python/object:os.system {}", "!!set {a, b}",
    "2023-02-30", "2001-12-14t21:59:43.10-05:00", "0x" + "f" * 400, "1" * 5000, "-0",
    ".inf", ".nan", "1e309", "=", "~", "null", "yes", "on", "0o17", "0b101", "1_000",
    "&a [*a]", "*undefined", "[[[[[[[[[[[[[[[[[[[[", "{a: {b: {c: {d: {e: 1}}}}}",
    "'unterminated", "\"\\x00\"", "\x07", "\t", "\ufeff", "é", "\U0001F600", "''", "[]",
    "{}", "- - -", "? complex key\n: v", "<<: {a: 1}", "<<: [1, 2]", "|\n  block\n",
]
BOMB = ("x0: &a0 [l, l, l, l, l, l, l, l, l, l]\n"
        + "".join(f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n"
                  for i in range(1, 9)))
HOSTILE_VALUES = [
    None, True, False, 0, -1, 1, 2, 9, 10 ** 40, 1.5, float("inf"), "", "X", "Y", "A", "B",
    "pipe", "R", "v5.7", "v5.19", "latest", "mapcount", "holds", "violated", "present",
    "none", "zero", "thp", "hugetlb", "memfd", "pin", "get", "write", "read", "rw", "r",
    "x" * 300, "A.main", "P0", [], {}, [None], {"": None}, ["X", "X"], {"X": "present"},
    {"write": "X"}, {"fork": "C"}, {"max": 0}, "é", "\x00",
]


@dataclass
class Report:
    """Counts per target, and the crashes (target, exception, input excerpt)."""

    counts: dict = field(default_factory=dict)
    crashes: list = field(default_factory=list)
    seconds: float = 0.0

    def count(self, target: str, outcome: str) -> None:
        per = self.counts.setdefault(target, {})
        per[outcome] = per.get(outcome, 0) + 1

    @property
    def inputs(self) -> int:
        return sum(sum(per.values()) for per in self.counts.values())

    def crash(self, target: str, exc: BaseException, text: str) -> None:
        self.count(target, "CRASH")
        self.crashes.append((target, f"{type(exc).__name__}: {exc}"[:300],
                             "".join(traceback.format_exception(type(exc), exc,
                                                                exc.__traceback__))[-1500:],
                             text[:2000]))


# ------------------------------------------------------------------------------- mutators
def mutate_text(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(lines)) if lines else 0
        kind = rng.randrange(9)
        if kind == 0 and lines:
            del lines[i]
        elif kind == 1 and lines:
            lines.insert(i, lines[i])
        elif kind == 2 and len(lines) > 1:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == 3 and lines:
            line = lines[i]
            if ":" in line:
                head = line.split(":", 1)[0]
                lines[i] = f"{head}: {rng.choice(HOSTILE_SNIPPETS)}"
        elif kind == 4 and lines:
            cut = rng.randrange(len(lines[i]) + 1)
            lines[i] = lines[i][:cut] + rng.choice(HOSTILE_SNIPPETS) + lines[i][cut:]
        elif kind == 5:
            lines = lines[:i]
        elif kind == 6 and lines:
            lines[i] = (" " * rng.randint(0, 6)) + lines[i].lstrip()
        elif kind == 7:
            lines.insert(i, "description:\n" + "".join("  " + x + "\n"
                                                       for x in BOMB.splitlines()))
        else:
            lines.insert(i, f"{rng.choice(['name', 'depth', 'max_states', 'policies', 'zzz'])}: "
                            f"{rng.choice(HOSTILE_SNIPPETS)}")
    return "\n".join(lines)


def _nodes(obj, path=()):
    """(path, parent, key) of every node below obj."""
    out = []
    if isinstance(obj, dict):
        for k in list(obj):
            out.append((path + (k,), obj, k))
            out.extend(_nodes(obj[k], path + (k,)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.append((path + (i,), obj, i))
            out.extend(_nodes(v, path + (i,)))
    return out


def mutate_tree(obj, rng: random.Random):
    obj = copy.deepcopy(obj)
    for _ in range(rng.randint(1, 3)):
        nodes = _nodes(obj)
        if not nodes:
            return rng.choice(HOSTILE_VALUES)
        _path, parent, key = rng.choice(nodes)
        kind = rng.randrange(6)
        if kind == 0:
            parent[key] = copy.deepcopy(rng.choice(HOSTILE_VALUES))
        elif kind == 1:
            if isinstance(parent, dict):
                del parent[key]
            else:
                parent.pop(key)
        elif kind == 2 and isinstance(parent, dict):
            value = parent.pop(key)
            parent[rng.choice(["X", "Y", "zzz", "name", "page", "as", "ref", "child",
                               str(key) + "x", "max", "state", "kind", "backing", "object",
                               "shared", "prot", "type", "objects"])] = value
        elif kind == 3 and isinstance(parent[key], list) and parent[key]:
            parent[key] = parent[key] * rng.randint(0, 3)
        elif kind == 4:
            other = rng.choice(nodes)
            parent[key] = copy.deepcopy(other[1][other[2]])
        else:
            parent[key] = {"write": rng.choice(["X", "Y", "Z"])} if rng.random() < 0.5 else \
                [parent[key], copy.deepcopy(rng.choice(HOSTILE_VALUES))]
    return obj


SEMANTIC_OPS = [
    {"write": "X"}, {"read": "X"}, {"munmap": "X"}, {"dontneed": "X"}, {"pageout": "X"},
    {"mprotect": {"page": "X", "prot": "r"}}, {"mprotect": {"page": "X", "prot": "rw"}},
    "clear_refs", "exit", {"write": "Y"}, {"pageout": "Y"},
    {"gup": {"page": "X", "as": "F1", "type": "pin", "access": "write", "fast": True}},
    {"vmsplice": {"page": "X", "as": "F2"}}, {"pin": {"page": "X", "as": "F3"}},
    {"put": "F1"}, {"device_write": "F1"}, {"device_read": "F2"},
    {"fork": {"child": "FC", "program": [{"write": "X"}, {"read": "X"}, "exit"]}},
    # write tracking
    {"uffd_register": {"page": "X", "features": ["event_fork", "wp_unpopulated"]}},
    {"uffd_register": {"page": "Y", "result": "error"}}, {"uffd_wp": "X"},
    {"uffd_unwp": {"page": "X", "dontwake": True}}, {"uffd_unwp": "X"}, "uffd_read",
    {"uffd_wake": "X"}, {"uffd_unregister": "X"},
    {"pagemap_read": {"page": "X", "soft_dirty": True, "uffd_wp": False}},
    {"mremap": {"page": "X", "to": "Y"}}, {"migrate": "X"}, {"mmap": {"page": "Y"}},
]
MENU_OPS = ["write", "read", "munmap", "dontneed", "pageout", "clear_refs", "exit", "put",
            "device_read", "device_write", {"fork": {"max": 1}}, {"mprotect": {"prot": "r"}},
            {"gup": {"type": "get"}}, {"pin": {"access": "write"}}, {"vmsplice": {}},
            {"uffd_register": {"max": 1}}, "uffd_wp", "uffd_unwp", "uffd_read", "uffd_wake",
            "pagemap_read", "migrate"]
PAGE_STATES = ["present", "none", "zero", {"state": "present", "kind": "thp"},
               {"state": "none", "backing": "memfd"}, {"state": "present", "kind": "hugetlb"},
               {"state": "present", "kind": "pte_thp"}, {"state": "zero", "kind": "thp"},
               {"state": "present", "shared": True}, {"state": "none", "object": "FO"},
               {"state": "present", "object": "FO", "shared": True},
               {"state": "present", "object": "FO", "prot": "r"},
               {"state": "none", "object": "FH", "shared": True},
               {"state": "present", "shared": True, "kind": "hugetlb"}]
OBJECTS = {"FO": {"type": "memfd"}, "FH": {"type": "memfd_hugetlb"}}
OBJECT_VARIANTS = [{"type": "memfd"}, {"type": "shmem", "state": "none"}, {"type": "file"},
                   {"type": "memfd_hugetlb"}, {"type": "file", "state": "none"}]


def mutate_semantic(obj, rng: random.Random):
    """Changes that keep a scenario plausible, so mutants reach the model: an op swapped
    for another, a page's state or kind changed, background actors, menu templates."""
    obj = copy.deepcopy(obj)
    if not isinstance(obj, dict):
        return obj
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(5)
        programs = [node[1][node[2]] for node in _nodes(obj)
                    if node[2] in ("program", "main") and isinstance(node[1][node[2]], list)]
        if kind == 0 and programs:
            prog = rng.choice(programs)
            op = copy.deepcopy(rng.choice(SEMANTIC_OPS))
            if prog and rng.random() < 0.5:
                prog[rng.randrange(len(prog))] = op
            else:
                prog.insert(rng.randrange(len(prog) + 1), op)
        elif kind == 1 and isinstance(obj.get("pages"), dict) and obj["pages"]:
            page = rng.choice(list(obj["pages"]))
            obj["pages"][page] = copy.deepcopy(rng.choice(PAGE_STATES))
            if rng.random() < 0.2 and len(obj["pages"]) > 1 and \
                    isinstance(obj["pages"][page], dict):  # adjacent VMAs (vma_merge)
                obj["pages"][page]["after"] = rng.choice([p for p in obj["pages"] if p != page])
            if rng.random() < 0.8:  # usually with the objects those states name
                objects = obj.setdefault("objects", {})
                if isinstance(objects, dict):
                    for name, spec in OBJECTS.items():
                        objects.setdefault(name, copy.deepcopy(
                            spec if rng.random() < 0.7 else rng.choice(OBJECT_VARIANTS)))
        elif kind == 2:
            obj["background"] = {k: v for k, v in (("reclaim", rng.randint(0, 2)),
                                                   ("speculative_refs", rng.randint(0, 1)),
                                                   ("lru_batch", rng.random() < 0.5),
                                                   ("uffd_monitor", rng.randint(0, 2)))
                                 if rng.random() < 0.6}
        elif kind == 3 and isinstance(obj.get("menu"), dict):
            obj["menu"]["ops"] = rng.sample(MENU_OPS, rng.randint(1, 6))
            obj["menu"]["processes"] = rng.randint(1, 3)
        else:
            obj.pop("expect", None)
            if isinstance(obj.get("pages"), dict):
                obj["pages"].setdefault("Y", rng.choice(["present", "none"]))
    return obj


def _dump(obj) -> str:
    try:
        return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True)
    except (yaml.YAMLError, ValueError):
        return str(obj)


# ------------------------------------------------------------------------------- targets
def _refused(error: Exception, target: str, report: Report) -> None:
    """A refusal must be mmcheck's one-line message."""
    if "\n" in str(error):
        raise AssertionError(f"multi-line error: {error!r}") from None
    report.count(target, "rejected")


def check_scenario_text(text: str, rng: random.Random, report: Report, run_share: float):
    from .scenario.loader import load_scenario_text
    from .report.runner import run_policy

    try:
        sc = load_scenario_text(text, "fuzz.yaml")
    except ScenarioError as e:
        _refused(e, "scenario", report)
        return
    report.count("scenario", "loaded")
    if rng.random() >= run_share:
        return
    policy = rng.choice(sc.policies)
    try:
        run_policy(sc, policy, max_states=rng.choice([50, 300, 2000]),
                   depth=rng.choice([None, 4, 12]), with_traces=True)
    except ScenarioError:
        report.count("search", "rejected")
        return
    report.count("search", "ran")


def check_policy_text(text: str, report: Report):
    from .scenario.loader import load_policy_text

    try:
        load_policy_text(text, "fuzz-policy.yaml")
    except ScenarioError as e:
        _refused(e, "policy", report)
        return
    report.count("policy", "loaded")


def check_trace_obj(obj, report: Report):
    from .report import render
    from .scenario.loader import load_scenario
    from .model.model import MMModel
    from .model.policy import resolve
    from .report.runner import policy_defs
    from .report.trace import ReplayError, check_trace

    try:
        trace = render._check_trace(obj, "fuzz.json")
    except ValueError as e:
        _refused(e, "trace", report)
        return
    render.text_trace(trace)
    render.trace_to_dot(trace)
    path = trace["scenario"]
    if not os.path.isfile(os.path.join(ROOT, path)):
        report.count("trace", "rendered")
        return
    sc = load_scenario(os.path.join(ROOT, path))
    try:
        policy = resolve(trace["policy"]["name"], policy_defs(sc))
    except KeyError:
        report.count("trace", "rendered")
        return
    model = MMModel(sc, policy)
    try:
        check_trace(model, trace)
        report.count("trace", "replayed")
    except ReplayError:
        report.count("trace", "replay refused")
        return
    # a trace that replays becomes a C program (mmcheck reproduce)
    from .reproduce import cgen, witness

    try:
        w = witness.from_trace(model, trace)
    except ReplayError:
        report.count("trace", "reproduce refused")
        return
    cgen.generate(w.schedule(), origin=w.why)
    report.count("trace", "reproduced")


CLI_COMMANDS = [
    ["run", "{scenario}", "--no-trace", "--no-render", "--max-states", "300"],
    ["run", "{scenario}", "--json", "--no-render", "--depth", "6", "-p", "v5.7"],
    ["run", "{scenario}", "--no-render", "--max-states", "200", "--symmetry", "none"],
    ["run", "{scenario}", "--no-trace", "--no-render", "--max-states", "300", "--store",
     "fingerprints"],
    ["run", "{scenario}", "--no-trace", "--no-render", "--depth", "5", "--max-memory", "8G"],
    ["replay", "{trace}"],
    ["reproduce", "{trace}", "-o", "{out}/r.c"],
    ["reproduce", "{scenario}", "-o", "{out}/r.c", "--max-states", "2000"],
    ["render", "{trace}", "-o", "{out}/x.dot"],
    ["compare", "{scenario}", "--depth", "2..3", "--format", "json"],
    ["policies", "--policy-file", "{policy}"],
]


def check_cli(args, report: Report, workdir: str):
    from click.testing import CliRunner

    from .cli import main

    result = CliRunner().invoke(main, args, catch_exceptions=True)
    out = result.output or ""
    try:
        err = result.stderr or ""
    except ValueError:  # click < 8.2 without mix_stderr=False: stderr is in `output`
        err = ""
    text = out + err
    if result.exit_code not in (0, 1, 2, 4) or "Traceback" in text:
        raise AssertionError(f"exit {result.exit_code} for mmcheck {' '.join(args)}: "
                             f"{text[-500:]}")
    if result.exit_code == 2 and len([ln for ln in err.splitlines() if ln.strip()]) > 1:
        raise AssertionError(f"exit 2 with more than one line: {err[-500:]}")
    report.count("cli", f"exit {result.exit_code}")


# ------------------------------------------------------------------------------- driver
def corpus():
    scenarios = sorted(glob.glob(os.path.join(ROOT, "scenarios", "**", "*.yaml"),
                                 recursive=True))
    texts = [open(f, encoding="utf-8").read() for f in scenarios]
    traces = [json.load(open(f, encoding="utf-8"))
              for f in sorted(glob.glob(os.path.join(ROOT, "counterexamples", "**", "*.json"),
                                        recursive=True)
                              + glob.glob(os.path.join(ROOT, "tests", "data", "format1", "*.json")))]
    policies = ["define_policies:\n  precise:\n    base: v5.7\n    knobs: "
                "{ro_gup_unshare: mapcount}\n",
                "p1:\n  base: v5.19\n  knobs: {anon_exclusive: false, wp_reuse: page_count}\n"
                "  description: x\np2:\n  base: p1\n"]
    return texts, traces, policies


def fuzz(inputs: int, seed: int = 1, run_share: float = 0.05, cli_every: int = 0,
         workdir: str | None = None, progress=None) -> Report:
    """`inputs` mutated inputs (scenario, policy and trace files in turn; every
    `cli_every`-th one a command line), from the given seed."""
    import tempfile

    rng = random.Random(seed)
    texts, traces, policies = corpus()
    trees = [yaml.safe_load(t) for t in texts]
    report = Report()
    start = time.perf_counter()
    workdir = workdir or tempfile.mkdtemp(prefix="mmcheck-fuzz-")
    cwd = os.getcwd()
    os.chdir(ROOT)  # traces name their scenario relative to the repository
    try:
        for n in range(inputs):
            kind = n % 4
            if cli_every and n % cli_every == cli_every - 1:
                kind = 4
            try:
                if kind == 0:
                    text = mutate_text(rng.choice(texts), rng)
                    _guard("scenario", text, report, check_scenario_text, text, rng, report,
                           run_share)
                elif kind == 1:
                    tree = rng.choice(trees)
                    text = _dump(mutate_semantic(tree, rng) if rng.random() < 0.5 else
                                 mutate_tree(tree, rng))
                    _guard("scenario", text, report, check_scenario_text, text, rng, report,
                           run_share)
                elif kind == 2:
                    base = rng.choice(policies)
                    text = (mutate_text(base, rng) if rng.random() < 0.5 else
                            _dump(mutate_tree(yaml.safe_load(base), rng)))
                    _guard("policy", text, report, check_policy_text, text, report)
                elif kind == 3:
                    obj = mutate_tree(rng.choice(traces), rng) if rng.random() < 0.9 else \
                        rng.choice(HOSTILE_VALUES)
                    _guard("trace", json.dumps(obj)[:2000], report, check_trace_obj, obj, report)
                else:
                    args = _cli_args(rng, texts, traces, policies, workdir)
                    _guard("cli", " ".join(args), report, check_cli, args, report, workdir)
            except KeyboardInterrupt:
                break
            if progress is not None and n % 1000 == 999:
                progress(n + 1, report)
    finally:
        os.chdir(cwd)
    report.seconds = time.perf_counter() - start
    return report


def _guard(target, text, report, fn, *args):
    try:
        fn(*args)
    except (KeyboardInterrupt, SystemExit):
        raise
    except (Exception, RecursionError, MemoryError) as e:  # noqa: BLE001 - that is the point
        report.crash(target, e, text)


def _cli_args(rng, texts, traces, policies, workdir):
    n = rng.randrange(1 << 30)
    scenario = os.path.join(workdir, f"s{n}.yaml")
    with open(scenario, "w", encoding="utf-8") as fh:
        fh.write(mutate_text(rng.choice(texts), rng) if rng.random() < 0.7 else rng.choice(texts))
    trace = os.path.join(workdir, f"t{n}.json")
    with open(trace, "w", encoding="utf-8") as fh:
        obj = mutate_tree(rng.choice(traces), rng) if rng.random() < 0.7 else rng.choice(traces)
        fh.write(json.dumps(obj) if rng.random() < 0.95 else json.dumps(obj)[:50])
    policy = os.path.join(workdir, f"p{n}.yaml")
    with open(policy, "w", encoding="utf-8") as fh:
        fh.write(mutate_text(rng.choice(policies), rng))
    template = rng.choice(CLI_COMMANDS)
    out = os.path.join(workdir, "out")
    return [a.format(scenario=scenario, trace=trace, policy=policy, out=out) for a in template]


def _machine() -> str:
    """CPU model, CPU count and Python, for the record."""
    model = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs, {platform.python_implementation()} " \
           f"{platform.python_version()}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mmcheck.fuzzing", description=__doc__.split(
        "\n\n")[0])
    ap.add_argument("--inputs", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--run-share", type=float, default=0.05,
                    help="share of accepted scenarios that are also searched (bounded)")
    ap.add_argument("--cli-every", type=int, default=200,
                    help="every N-th input is a command line (0: none)")
    ap.add_argument("--record", default=None,
                    help="append the result to this Markdown file (e.g. docs/fuzzing.md)")
    args = ap.parse_args(argv)

    def progress(n, report):
        print(f"{n:,} inputs, {len(report.crashes)} crashes, "
              f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)

    t0 = time.perf_counter()
    report = fuzz(args.inputs, args.seed, args.run_share, args.cli_every, progress=progress)
    lines = [f"## {datetime.date.today().isoformat()}: {report.inputs:,} inputs ({_machine()}), "
             f"seed {args.seed}, {report.seconds:.0f} s, {len(report.crashes)} crashes", "",
             "| target | outcomes |", "|---|---|"]
    for target, per in sorted(report.counts.items()):
        lines.append(f"| {target} | " + ", ".join(f"{k}: {v:,}" for k, v in sorted(per.items()))
                     + " |")
    lines.append("")
    for target, what, tb, text in report.crashes[:20]:
        lines += [f"- CRASH in {target}: {what}", "", "```", text[:600], "```", ""]
    out = "\n".join(lines)
    print(out)
    for target, what, tb, _text in report.crashes[:3]:
        print(tb, file=sys.stderr)
    if args.record:
        header = ("# Fuzzing results\n\nNewest first. Produced by `python -m mmcheck.fuzzing "
                  "--record docs/fuzzing.md`.\n\n")
        old = open(args.record, encoding="utf-8").read() if os.path.exists(args.record) else header
        # the newest entry goes before the first entry, under whatever the file's header says
        at = old.find("\n## ")
        head, rest = (old, "") if at < 0 else (old[:at + 1], old[at + 1:])
        with open(args.record, "w", encoding="utf-8") as fh:
            fh.write(head.rstrip("\n") + "\n\n" + out + "\n" + rest)
    return 1 if report.crashes else 0


if __name__ == "__main__":
    sys.exit(main())
