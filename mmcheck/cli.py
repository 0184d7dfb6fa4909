"""The `mmcheck` command line: run, policies, replay, render (compare lives in compare.py).

Exit codes (mmcheck.errors): 0 every verdict as expected (without expectations: every
property holds), 1 an unexpected verdict or a failed replay, 2 bad input, 3 an internal
error (details in a crash file), 4 a search cut short by a resource, 130 interrupted.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import (EXIT_BAD_INPUT, EXIT_INCOMPLETE, EXIT_INTERNAL, EXIT_INTERRUPTED,
                     EXIT_UNEXPECTED, IncompleteSearch, ScenarioError)
from .model.policy import ALIASES, KNOBS, PRESETS, resolve

# piped output (CI logs, files) gets a wide page instead of rich's 80-column default
_WIDTH = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "160"))
console = Console(highlight=False, width=_WIDTH)


def _fail(message: str) -> None:
    """Bad input: one line on stderr, exit status 2."""
    click.echo(" ".join(str(message).split()), err=True)
    sys.exit(EXIT_BAD_INPUT)


def _crash_report(exc: BaseException) -> str:
    """Write the traceback of an internal error to a file; returns its path."""
    import datetime
    import tempfile
    import traceback

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    fd, path = tempfile.mkstemp(prefix=f"mmcheck-crash-{stamp}-", suffix=".txt")
    with os.fdopen(fd, "w") as fh:
        fh.write(f"mmcheck {_version()} internal error\ncommand: {sys.argv!r}\n\n")
        fh.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    return path


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("mmcheck")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


def _print_version(ctx, value) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"mmcheck {_version()}\n{model_version()}")
        ctx.exit()


def model_version() -> str:
    """What identifies the model a trace or a verdict came from: the kernel eras it
    knows, and a digest of its step table (kernel functions and outcomes) and state schema,
    which changes whenever a trace's labels or states would."""
    import hashlib

    from .model.state import SCHEMA
    from .model.steps import FUNCTIONS
    from .report.trace import FORMAT

    table = repr(sorted((name, sorted(fn.outcomes)) for name, fn in FUNCTIONS.items()))
    digest = hashlib.sha256((table + repr(SCHEMA)).encode()).hexdigest()[:12]
    outcomes = sum(len(fn.outcomes) for fn in FUNCTIONS.values())
    return (f"model: presets {', '.join(PRESETS)} (latest = {ALIASES.get('latest', '?')}); "
            f"{len(FUNCTIONS)} kernel functions, {outcomes} outcomes, step table and "
            f"schema {digest}\ntrace format: {FORMAT}")


def _terminate_like_ctrl_c():
    """SIGTERM stops a search the way Ctrl-C does: what finished is printed, exit 130
    (worker processes ignore both and die with their parent)."""
    import signal
    import threading

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


class _Main(click.Group):
    """The command group, with mmcheck's exit statuses for what click does not decide:
    Ctrl-C anywhere is 130 (click would say "Aborted!" and exit 1), running out of memory
    is 4, and any other exception is an internal error, 3, reported on one line."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        _terminate_like_ctrl_c()
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except (click.exceptions.Abort, KeyboardInterrupt):
            click.echo("mmcheck: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except (MemoryError, IncompleteSearch) as e:
            click.echo(f"mmcheck: out of memory: {e or 'MemoryError'}; bound the search "
                       f"with --max-states or --depth", err=True)
            sys.exit(EXIT_INCOMPLETE)
        except BrokenPipeError:  # `mmcheck ... | head`
            sys.exit(0)
        except Exception as e:  # noqa: BLE001 - the last resort: one line, never a traceback
            try:
                where = f"details in {_crash_report(e)}"
            except OSError:
                where = "no crash file could be written"
            text = " ".join(f"{type(e).__name__}: {e}".split())
            click.echo(f"mmcheck: internal error: {text[:300]} ({where}; please report it)",
                       err=True)
            sys.exit(EXIT_INTERNAL)
        sys.exit(code if isinstance(code, int) else 0)


def check_output_dir(option: str, path: str, shown: str | None = None) -> None:
    """Bad input (exit 2) unless files can be created in directory `path` (made on demand):
    its nearest existing ancestor must be a directory we can create things in."""
    shown = shown or path
    probe = os.path.abspath(path)
    if os.path.exists(probe) and not os.path.isdir(probe):
        _fail(f"{option} {shown}: {path} is not a directory")
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    _probe_dir(option, shown, probe)


def check_output_file(option: str, path: str) -> None:
    """Bad input (exit 2) unless file `path` can be written (its directory made on demand)."""
    full = os.path.abspath(path)
    if os.path.isdir(full):
        _fail(f"{option} {path}: is a directory")
    check_output_dir(option, os.path.dirname(full) or ".", shown=path)


def _probe_dir(option, path, existing):
    import tempfile

    if not os.path.isdir(existing):
        _fail(f"{option} {path}: {existing} is not a directory")
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as e:
        _fail(f"{option} {path}: cannot write in {existing}: {e.strerror or e}")


def scenario_files(paths) -> list[str]:
    """Scenario files named on the command line; a directory means every *.yaml below it."""
    files: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted(str(f) for f in path.rglob("*.yaml"))
            if not found:
                _fail(f"{p}: no *.yaml scenario files in this directory")
            files.extend(found)
        else:
            files.append(str(path))
    return files


def load_all(paths):
    from .scenario.loader import load_scenario

    scenarios = []
    for f in scenario_files(paths):
        try:
            scenarios.append(load_scenario(f))
        except ScenarioError as e:
            _fail(str(e))
    return scenarios


def load_policy_files(files):
    from .scenario.loader import load_policy_file

    defs = []
    for f in files:
        try:
            defs.extend(load_policy_file(f))
        except ScenarioError as e:
            _fail(str(e))
    return tuple(defs)


def _verdict_cell(v) -> str:
    if v.verdict == "violated":
        text = f"[red]VIOLATED[/red]@{v.depth}"
    elif v.verdict == "holds":
        text = "[green]holds[/green]"
    else:
        text = "[yellow]holds (bounded)[/yellow]"
    if v.expected is not None:
        text += " [green]✓[/green]" if not v.unexpected else f" [bold red]✗ expected {v.expected}[/bold red]"
    return text


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=lambda ctx, _param, value: _print_version(ctx, value),
              help="Show mmcheck's version, the model's and the trace format's, and exit.")
def main():
    """mmcheck: exhaustive model checking of Linux COW / GUP semantics."""


SYMMETRY_LEVELS = ("full", "frames", "none")


def _symmetry_options(f):
    """--symmetry full|frames|none (and --no-symmetry, short for none)."""
    f = click.option("--no-symmetry", is_flag=True,
                     help="No state reduction at all (same as --symmetry none).")(f)
    return click.option(
        "--symmetry", type=click.Choice(SYMMETRY_LEVELS), default="full", show_default=True,
        help="State reduction: full = frames and swap slots renamed, plus interchangeable "
             "menu processes and pages; frames = only frames and swap slots; none = no "
             "canonicalisation (for checking the reduction).")(f)


def _log_progress_option(fn):
    return click.option(
        "--log-progress", is_flag=True,
        help="Print the progress as one timestamped line per BFS level on stderr (for "
             "long searches in the background: `2> run.log`, then `tail -f run.log`).")(fn)


def _workers_option(f):
    """--workers N, --backend processes|ray, --address HOST:PORT."""
    f = click.option(
        "--address", default=None, metavar="HOST:PORT",
        help="With --backend ray: the Ray cluster to join (default: start a local Ray "
             "instance with --workers CPUs).")(f)
    f = click.option(
        "--backend", type=click.Choice(["processes", "ray"]), default="processes",
        show_default=True,
        help="Where the --workers partitions run: local worker processes, or Ray actors "
             "(pip install 'mmcheck[ray]').")(f)
    return click.option(
        "--workers", "-j", type=click.IntRange(min=1, max=1024), default=1, show_default=True,
        help="Partitions to search with (hash-partitioned BFS; worth it above ~100k "
             "states).")(f)


def _store_options(f):
    """--store exact|fingerprints and --max-memory SIZE."""
    f = click.option(
        "--max-memory", default=None, metavar="SIZE",
        help="Stop the search cleanly, with its partial result, when its processes use more "
             "than this (e.g. 20G, 512M). Default: 85% of the memory available at the "
             "start (none on a Ray cluster, --address: give one).")(f)
    return click.option(
        "--store", type=click.Choice(["exact", "fingerprints"]), default="exact",
        show_default=True,
        help="How visited states are kept: exact (the states themselves, ~1 KB each) or "
             "fingerprints (64-bit fingerprints, ~20 B each, BFS levels spilled to "
             "$TMPDIR; the output gives the probability that a collision hid a "
             "state; with --workers, each worker process keeps its partition's).")(f)


def _search_options(store: str, max_memory: str | None, workers: int,
                    backend: str = "processes", address: str | None = None) -> dict:
    import importlib.util

    from .engine import memory

    if store == "fingerprints" and backend == "ray":
        _fail("--store fingerprints: the fingerprint store runs in local worker processes "
              "(--workers), not on Ray; drop --backend ray")
    if address is not None and backend != "ray":
        _fail("--address: only with --backend ray")
    if backend == "ray" and importlib.util.find_spec("ray") is None:
        _fail("--backend ray: Ray is not installed (pip install 'mmcheck[ray]')")
    if max_memory is None:
        # this machine's memory says nothing of a cluster's: no default limit there
        limit = None if backend == "ray" and address else memory.default_limit()
    else:
        try:
            limit = memory.parse_size(max_memory)
        except ValueError as e:
            _fail(f"--max-memory: {e}")
    return {"store": store, "max_memory": limit, "workers": workers, "backend": backend,
            "address": address}


def _check_por(depth, workers, backend, store) -> None:
    """The searches --por runs in (mmcheck.engine.por.check_options says why)."""
    if depth is not None:
        _fail("--por: a reduced search may reach a violation only deeper than the full one, "
              "so it runs unbounded in depth; drop --depth")
    if workers > 1 or backend == "ray":
        _fail("--por: the reduced search runs in one process; drop --workers/--backend")
    if store != "exact":
        _fail("--por: the reduced search keeps exact states; drop --store fingerprints")


def _reduction(symmetry: str, no_symmetry: bool = False) -> dict:
    level = "none" if no_symmetry else symmetry
    return {"canonicalize": level != "none", "symmetry": level == "full"}


@main.command()
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--policy", "-p", "policies", multiple=True,
              help="Policy to run (preset, alias or defined); repeatable. Default: the scenario's list.")
@click.option("--policy-file", "policy_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="YAML file defining extra policies (define_policies:).")
@click.option("--property", "properties", multiple=True, help="Check only this property; repeatable.")
@click.option("--depth", type=click.IntRange(min=1), default=None, help="BFS depth bound.")
@click.option("--max-states", type=click.IntRange(min=1), default=None, help="Distinct-state bound.")
@click.option("--out", "out_dir", default="counterexamples", show_default=True,
              type=click.Path(file_okay=False), help="Where counterexample traces and pictures go.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--render/--no-render", default=True, show_default=True,
              help="Render each counterexample as SVG (needs Graphviz's dot).")
@click.option("--trace/--no-trace", "show_traces", default=None,
              help="Print counterexample traces (default: when running one scenario).")
@click.option("--coverage", "show_coverage", is_flag=True,
              help="Per policy, how often each kernel step outcome was taken, and the "
                   "outcomes of entered functions never taken (also in --json).")
@_symmetry_options
@_workers_option
@_store_options
@click.option("--no-progress", is_flag=True,
              help="No live progress display (it is shown only when stderr is a terminal).")
@_log_progress_option
@click.option("--checkpoint", "checkpoint_dir", default=None, type=click.Path(file_okay=False),
              help="Save the search at every BFS level boundary in this (new or empty) "
                   "directory; `mmcheck resume DIR` continues it after Ctrl-C or a crash. "
                   "Needs --store fingerprints, one scenario and one policy; with "
                   "--workers, resume uses as many.")
@click.option("--por", is_flag=True,
              help="Partial-order reduction: expand a state by one thread's safe step when it "
                   "commutes with everything the others can do and no property can see it "
                   "(scripted await/wait/device_read); same verdicts, fewer states; "
                   "counterexamples may be longer than the shortest. One process, exact "
                   "store, no depth bound.")
def run(scenarios, policies, policy_files, properties, depth, max_states, out_dir, as_json,
        render, show_traces, show_coverage, symmetry, no_symmetry, workers, backend, address,
        store, max_memory, no_progress, log_progress, checkpoint_dir, por):
    """Explore every interleaving of SCENARIOS (files or directories) under each policy."""
    from .engine import memory
    from .properties import NAMES
    from .report import progress
    from .report.runner import MEMORY_ADVICE, run_scenario

    for prop in properties:
        if prop not in NAMES:
            _fail(f"--property: unknown property '{prop}' (known: {', '.join(NAMES)})")
    check_output_dir("--out", out_dir)
    search = _search_options(store, max_memory, workers, backend, address)
    if por:
        _check_por(depth, workers, backend, store)
    extra = load_policy_files(policy_files)
    loaded = load_all(scenarios)
    if show_traces is None:
        show_traces = len(loaded) == 1 and not as_json
    checkpoint = (_start_checkpoint(checkpoint_dir, loaded, policies, policy_files, properties,
                                    depth, max_states, "none" if no_symmetry else symmetry,
                                    store, workers)
                  if checkpoint_dir else None)
    results = []
    unexpected = 0
    stopped = None  # (scenario, policy, how) of the run that could not finish
    live = progress.display(no_progress, log_progress)
    for sc in loaded:
        runs = []
        try:
            for r in run_scenario(sc, policies=policies, extra_defs=extra,
                                  properties=properties or None, depth=depth,
                                  max_states=max_states, **search, checkpoint=checkpoint,
                                  progress=live.update if live else None,
                                  started=((lambda p, sc=sc: live.policy_started(sc.name, p))
                                           if live else None),
                                  por=por, **_reduction(symmetry, no_symmetry)):
                if live:
                    live.stop()
                runs.append(r)
                unexpected += _count_failures(r)
                _save_traces(r, out_dir, render)
                if r.bounded_by in ("interrupted", "memory"):
                    stopped = (sc, r.policy, r.bounded_by)
                    break
        except ScenarioError as e:
            _fail(str(e))
        except KeyboardInterrupt:  # between searches (each search handles its own)
            stopped = (sc, None, "interrupted")
        except IncompleteSearch as e:  # a worker process was lost
            stopped = (sc, None, str(e))
        finally:
            if live:
                live.stop()
        if runs or stopped is None:
            results.append((sc, runs))
            if not as_json:
                _print_scenario(sc, runs, show_traces)
                if show_coverage and runs:
                    _print_coverage(runs)
        if stopped is not None:
            break
    if as_json:
        click.echo(json.dumps([_run_json(sc, runs, show_coverage) for sc, runs in results],
                              indent=2))
    elif len(loaded) > 1:
        console.print(f"\n{len(results)} of {len(loaded)} scenarios, "
                      f"{sum(len(r) for _, r in results)} runs, "
                      f"{unexpected} unexpected verdict(s)")
    if stopped is not None:
        sc, policy, how = stopped
        where = sc.path + (f" under {policy}" if policy else "")
        if how == "interrupted":
            click.echo(f"mmcheck: interrupted: the search of {where} was cut short; what "
                       f"finished is shown above"
                       + (f"; continue it with `mmcheck resume {checkpoint_dir}`"
                          if checkpoint_dir else ""), err=True)
            sys.exit(EXIT_INTERRUPTED)
        if how == "memory":
            limit = (memory.format_size(search["max_memory"]) if search["max_memory"]
                     else "none")
            how = (f"the search ran out of memory (the limit is {limit}, --max-memory; its "
                   f"partial result is shown): {MEMORY_ADVICE}")
        click.echo(f"mmcheck: incomplete: {where}: {how}", err=True)
        sys.exit(EXIT_UNEXPECTED if unexpected else EXIT_INCOMPLETE)
    sys.exit(EXIT_UNEXPECTED if unexpected else 0)


def _sha256(path: str) -> str:
    import hashlib

    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _start_checkpoint(directory, loaded, policies, policy_files, properties, depth,
                      max_states, symmetry, store, workers=1):
    """A new checkpoint directory for `mmcheck run --checkpoint`, with what `mmcheck
    resume` needs to rebuild the same search."""
    from .engine.checkpoint import CheckpointError, Checkpointer

    if store != "fingerprints":
        _fail("--checkpoint: checkpoints are taken of the fingerprint store; add "
              "--store fingerprints")
    names = policies or (loaded[0].policies if len(loaded) == 1 else ())
    if len(loaded) != 1 or len(names) != 1:
        _fail("--checkpoint: give one scenario file and one policy (-p)")
    sc = loaded[0]
    context = {
        "scenario": os.path.abspath(sc.path), "sha256": _sha256(sc.path),
        "policy": names[0],
        "policy_files": [{"path": os.path.abspath(f), "sha256": _sha256(f)}
                         for f in policy_files],
        "properties": list(properties), "depth": depth, "max_states": max_states,
        "symmetry": symmetry, "workers": workers,
    }
    try:
        return Checkpointer.start(directory, context)
    except (CheckpointError, OSError) as e:
        _fail(f"--checkpoint {e}" if isinstance(e, CheckpointError)
              else f"--checkpoint {directory}: {e.strerror or e}")


@main.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--out", "out_dir", default="counterexamples", show_default=True,
              type=click.Path(file_okay=False), help="Where counterexample traces and pictures go.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--render/--no-render", default=True, show_default=True,
              help="Render each counterexample as SVG (needs Graphviz's dot).")
@click.option("--trace/--no-trace", "show_traces", default=True, show_default=True,
              help="Print counterexample traces.")
@click.option("--max-memory", default=None, metavar="SIZE",
              help="As for `mmcheck run` (default: 85% of the memory available now).")
@click.option("--no-progress", is_flag=True,
              help="No live progress display (it is shown only when stderr is a terminal).")
@_log_progress_option
def resume(directory, out_dir, as_json, render, show_traces, max_memory, no_progress,
           log_progress):
    """Continue a search saved with `mmcheck run --checkpoint DIRECTORY` from its last
    level boundary; the result is the uninterrupted search's."""
    from .engine.checkpoint import CheckpointError, Checkpointer
    from .report import progress
    from .report.runner import MEMORY_ADVICE, policy_defs, run_policy

    try:
        cp = Checkpointer.open(directory)
    except CheckpointError as e:
        _fail(str(e))
    ctx = cp.context
    for path, digest in [(ctx["scenario"], ctx["sha256"])] + [
            (p["path"], p["sha256"]) for p in ctx["policy_files"]]:
        try:
            same = _sha256(path) == digest
        except OSError as e:
            _fail(f"{directory}: {path}: {e.strerror or e}")
        if not same:
            _fail(f"{directory}: {path} changed since the checkpoint was taken; a resumed "
                  f"search must explore the same model")
    check_output_dir("--out", out_dir)
    # a parallel search resumes with as many workers (the partitions depend on it)
    search = _search_options("fingerprints", max_memory, ctx.get("workers", 1))
    extra = load_policy_files([p["path"] for p in ctx["policy_files"]])
    sc = load_all([ctx["scenario"]])[0]
    live = progress.display(no_progress, log_progress)
    if live:
        live.policy_started(sc.name, ctx["policy"])
    try:
        r = run_policy(sc, ctx["policy"], defs=policy_defs(sc, extra),
                       properties=ctx["properties"] or None, depth=ctx["depth"],
                       max_states=ctx["max_states"], checkpoint=cp, resume=cp, **search,
                       progress=live.update if live else None,
                       **_reduction(ctx["symmetry"]))
    except CheckpointError as e:
        _fail(str(e))
    except ScenarioError as e:
        _fail(str(e))
    finally:
        if live:
            live.stop()
    _save_traces(r, out_dir, render)
    if as_json:
        click.echo(json.dumps([_run_json(sc, [r])], indent=2))
    else:
        _print_scenario(sc, [r], show_traces)
    if r.bounded_by == "interrupted":
        click.echo(f"mmcheck: interrupted again; continue with `mmcheck resume {directory}`",
                   err=True)
        sys.exit(EXIT_INTERRUPTED)
    if r.bounded_by == "memory":
        click.echo(f"mmcheck: incomplete: {sc.path} under {r.policy}: the search ran out of "
                   f"memory (--max-memory): {MEMORY_ADVICE}", err=True)
        sys.exit(EXIT_INCOMPLETE)
    sys.exit(EXIT_UNEXPECTED if _count_failures(r) else 0)


def _count_failures(run) -> int:
    return sum(1 for v in run.verdicts if v.failure)


def _save_traces(run, out_dir, render):
    from .report import render as rendering

    for v in run.verdicts:
        if v.trace is None:
            continue
        base = os.path.join(out_dir, _slug(f"{run.scenario.name}--{run.policy}--{v.name}"))
        try:
            os.makedirs(out_dir, exist_ok=True)
            rendering.save_trace(v.trace, base + ".json")
        except OSError as e:
            _fail(f"--out {out_dir}: cannot write {base}.json: {e.strerror or e}")
        v.files = [base + ".json"]
        if render:
            try:
                v.files.append(rendering.render(v.trace, base + ".svg"))
            except RuntimeError as e:  # no Graphviz: keep the JSON, say why once
                v.files.append(f"(not rendered: {e})")


def _print_scenario(sc, runs, show_traces):
    from .report import render as rendering

    table = Table(title=escape(f"{sc.name}  ({sc.path})"), title_justify="left")
    table.add_column("policy")
    props = [v.name for v in runs[0].verdicts] if runs else []
    for p in props:
        table.add_column(escape(p))
    table.add_column("states", justify="right")
    table.add_column("COW (unnecessary)", justify="right")
    table.add_column("time", justify="right")
    for r in runs:
        table.add_row(escape(r.policy), *[_verdict_cell(v) for v in r.verdicts], f"{r.states:,}",
                      f"{r.copies} ({r.unnecessary_copies})", f"{r.seconds:.2f}s")
    console.print(table)
    reductions = {r.symmetry for r in runs if r.symmetry}
    for text in sorted(reductions):
        console.print(f"symmetry: {text}", markup=False)
    if any(r.por is not None for r in runs):
        console.print(escape(por_summary(runs)), style="dim")
    for r in runs:
        if r.store.get("kind") == "fingerprints":
            console.print(escape(f"{r.policy}: {fingerprint_summary(r.store)}"), style="dim")
        if r.bounded_by in ("interrupted", "memory"):
            why = "interrupted" if r.bounded_by == "interrupted" else "out of memory"
            console.print(f"[bold yellow]{escape(r.policy)}: cut short ({why}) at depth {r.depth} "
                          f"after {r.states:,} states; its verdicts are partial[/bold yellow]")
        elif not r.complete:
            console.print(f"[yellow]{escape(r.policy)}: search bounded by {r.bounded_by} at depth "
                          f"{r.depth}; 'holds' means none found within the bound[/yellow]")
        for note in r.notes:
            console.print(escape(f"{r.policy}: {note}"), style="yellow")
        if r.vacuous:
            console.print(f"[bold yellow]{escape(r.policy)}: vacuous: no interleaving completes "
                          f"every thread's program[/bold yellow]")
        if r.stuck_states:
            console.print(f"[yellow]{escape(r.policy)}: {r.stuck_states} stuck state(s) (threads "
                          f"blocked forever); shortest: {len(r.stuck_trace['labels'])} steps"
                          f"[/yellow]")
        for op in r.never_started:
            console.print(escape(f"{r.policy}: never enabled: {op}"), style="yellow")
        for v in r.verdicts:
            if v.trace is None:
                continue
            files = ", ".join(getattr(v, "files", []))
            console.print(f"[red]{escape(r.policy)} / {v.name}[/red]: {escape(v.reason)}  "
                          f"[dim]{escape(files)}[/dim]")
            if show_traces:
                console.print(rendering.text_trace(v.trace), markup=False)


def fingerprint_summary(store: dict) -> str:
    """One line on a fingerprint-store search: size and TLC's collision estimates."""
    return (f"fingerprints: {store['bytes_per_state']:.0f} B/state; P(a collision hid a "
            f"state) {store['collision_optimistic']:.1e} calculated, "
            f"{store['collision_actual']:.1e} from the fingerprints")


def por_summary(runs) -> str:
    """One line on partial-order-reduced searches: what each reduced and what that means."""
    each = ", ".join(f"{r.policy} {r.por['reduced_states']:,}/"
                     f"{r.por['reduced_states'] + r.por['full_states']:,}"
                     for r in runs if r.por is not None)
    return (f"partial-order reduction (states expanded by one thread's safe step only / "
            f"all expanded): {each}; transition, COW and coverage counts are the reduced "
            f"graph's, and a counterexample may be longer than the shortest")


def _print_coverage(runs):
    from .report import coverage

    table = Table(title="step coverage (transitions per outcome; functions the search entered)",
                  title_justify="left")
    table.add_column("kernel function")
    table.add_column("outcome")
    for r in runs:
        table.add_column(escape(r.policy), justify="right")
    last = None
    for fn, _name, text, tags, counts in coverage.rows(runs):
        table.add_row(fn if fn != last else "", text + (f"  [dim]{' '.join(tags)}[/dim]"
                                                        if tags else ""),
                      *[f"{n:,}" if n else "[yellow]-[/yellow]" for n in counts])
        last = fn
    console.print(table)
    for r in runs:
        missed = coverage.never_taken(r.coverage)
        if missed:
            console.print(escape(f"{r.policy}: never taken: {', '.join(missed)}"), style="yellow")


def _run_json(sc, runs, with_coverage=False) -> dict:
    from .report import coverage

    return {
        "scenario": sc.path, "name": sc.name,
        "runs": [{
            "policy": r.policy, "states": r.states, "transitions": r.transitions,
            "depth": r.depth, "seconds": round(r.seconds, 4), "complete": r.complete,
            "bounded_by": r.bounded_by, "cow_copies": r.copies,
            "unnecessary_cow_copies": r.unnecessary_copies, "stuck_states": r.stuck_states,
            "never_enabled": r.never_started, "symmetry": r.symmetry,
            "pin_lost_cow_copies": r.pin_lost_copies, "notes": r.notes, "store": r.store,
            **({"por": r.por} if r.por is not None else {}),
            "states_per_second": round(r.rate), "max_frontier": r.max_frontier,
            "resident_bytes": r.resident,
            **({"coverage": coverage.as_json(r.coverage)} if with_coverage else {}),
            "verdicts": {v.name: {"verdict": v.verdict, "expected": v.expected,
                                  "unexpected": v.unexpected, "depth": v.depth,
                                  "reason": v.reason, "files": getattr(v, "files", [])}
                         for v in r.verdicts},
        } for r in runs],
    }


@main.command()
@click.option("--diff", nargs=2, metavar="A B", default=None, help="Show the knobs that differ between two policies.")
@click.option("--policy-file", "policy_files", multiple=True, type=click.Path(exists=True, dir_okay=False))
def policies(diff, policy_files):
    """Print the knob table of every preset (and of policies defined in --policy-file)."""
    defs = {d.name: d for d in load_policy_files(policy_files)}
    if diff:
        try:
            a, b = resolve(diff[0], defs), resolve(diff[1], defs)
        except KeyError as e:
            _fail(f"--diff: unknown policy {e}")
        table = Table(title=escape(f"{a.name} -> {b.name}"), title_justify="left")
        for col in ("knob", a.name, b.name, f"source ({b.name})"):
            table.add_column(col)
        for knob in KNOBS:
            va, vb = getattr(a, knob), getattr(b, knob)
            if va != vb:
                table.add_row(knob, escape(str(va)), escape(str(vb)),
                              escape(KNOBS[knob].sources.get(vb, "")))
        if not table.row_count:
            console.print(f"{a.name} and {b.name} have the same knobs", markup=False)
        else:
            console.print(table)
        return
    names = list(PRESETS) + list(defs)
    pols = [resolve(n, defs) for n in names]
    table = Table(title="policies (mmcheck policies --diff A B shows one change with sources)",
                  title_justify="left")
    table.add_column("knob")
    for p in pols:
        table.add_column(escape(p.name))
    for knob in KNOBS:
        table.add_row(knob, *[escape(str(getattr(p, knob))) for p in pols])
    console.print(table)
    for p in pols:
        console.print(f"[bold]{escape(p.name)}[/bold]: {escape(p.description)}")
    console.print("aliases: " + ", ".join(f"{a} = {t}" for a, t in ALIASES.items()))


@main.command()
@click.argument("trace_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--scenario", "scenario_path", type=click.Path(exists=True, dir_okay=False),
              help="Scenario file (default: the path recorded in the trace).")
@click.option("--policy-file", "policy_files", multiple=True, type=click.Path(exists=True, dir_okay=False))
def replay(trace_file, scenario_path, policy_files):
    """Re-execute a saved trace against its scenario and confirm the violation."""
    from .report.trace import ReplayError, check_trace

    trace = _read_trace(trace_file)
    model = _trace_model(trace_file, trace, scenario_path, policy_files)
    try:
        confirmed, reason = check_trace(model, trace)
    except ReplayError as e:
        console.print(f"[red]replay failed[/red]: {escape(str(e))}")
        sys.exit(1)
    if confirmed:
        console.print(f"[green]confirmed[/green]: {trace.get('property')} violated after "
                      f"{len(trace['labels'])} steps: {escape(str(reason))}")
        sys.exit(0)
    console.print(f"[red]not confirmed[/red]: {escape(str(reason))}")
    sys.exit(1)


def _read_trace(path):
    """A saved trace, checked against its schema (bad input: one line, exit 2)."""
    from .report import render as rendering

    try:
        return rendering.load_trace(path)
    except (ValueError, OSError) as e:
        _fail(str(e))


def _trace_model(trace_file, trace, scenario_path, policy_files):
    """The model a saved trace came from: its scenario (or --scenario) and policy."""
    from .model.model import MMModel
    from .report.runner import policy_defs
    from .scenario.loader import load_scenario

    path = scenario_path or trace.get("scenario")
    if not path or not os.path.exists(path):
        _fail(f"{trace_file}: scenario '{path}' not found (give it with --scenario)")
    try:
        sc = load_scenario(path)
    except ScenarioError as e:
        _fail(str(e))
    defs = policy_defs(sc, load_policy_files(policy_files))
    pol = trace.get("policy", {})
    try:
        policy = resolve(pol.get("name"), defs)
    except KeyError:
        _fail(f"{trace_file}: unknown policy '{pol.get('name')}'")
    if pol.get("knobs") and dict(policy.knobs) != pol["knobs"]:
        console.print(f"[yellow]note: policy {escape(policy.name)}'s knobs changed since the trace "
                      f"was saved[/yellow]")
    return MMModel(sc, policy)


@main.command()
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--policy", "-p", "policies", multiple=True, help="Columns (default: each scenario's policies).")
@click.option("--update", "update_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Rewrite the table between the verdict markers of this file; repeatable.")
@click.option("--check", is_flag=True, help="With --update: exit 1 if a file is out of date instead of writing it.")
@click.option("--differences", is_flag=True, help="Also list, per pair of neighbouring policies, the scenarios whose verdicts differ.")
def table(scenarios, policies, update_files, check, differences):
    """Markdown matrix of verdicts: scenarios x policies (LEAK / INCOH / LOST / REFCOUNT / ok)."""
    from .report.table import markdown, splice, verdict_rows

    rows, columns = verdict_rows(load_all(scenarios), policies or None)
    text = markdown(rows, columns, differences)
    if not update_files:
        click.echo(text, nl=False)
    stale = []
    for f in update_files:
        try:
            old = Path(f).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            _fail(f"--update {f}: cannot read: {getattr(e, 'strerror', None) or e}")
        try:
            new = splice(old, text)
        except ValueError as e:
            _fail(f"{f}: {e}")
        if new != old:
            stale.append(f)
            if not check:
                try:
                    Path(f).write_text(new, encoding="utf-8")
                except OSError as e:
                    _fail(f"--update {f}: cannot write: {e.strerror or e}")
    if check and stale:
        click.echo("out of date: " + ", ".join(stale) + " (run mmcheck table ... --update)", err=True)
        sys.exit(1)
    if any(bad for _, cells in rows for _, bad in cells.values()):
        sys.exit(1)


@main.command()
@click.argument("scenario", type=click.Path(exists=True, dir_okay=False))
@click.option("--policy", "-p", "policy", default=None,
              help="Policy (default: the scenario's first).")
@click.option("--policy-file", "policy_files", multiple=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
def serve(scenario, policy, policy_files, host, port):
    """Explore SCENARIO interactively in the browser: take any thread's enabled step, go
    back, and walk the shortest counterexample of any violated property."""
    from .report.runner import policy_defs
    from .report.serve import create_app

    extra = load_policy_files(policy_files)
    sc = load_all([scenario])[0]
    name = policy or sc.policies[0]
    try:
        chosen = resolve(name, policy_defs(sc, extra))
    except KeyError:
        _fail(f"{scenario}: unknown policy '{name}'")
    app = create_app(sc, name, chosen)
    click.echo(f"mmcheck explorer: {sc.name} under {name} at http://{host}:{port}/ "
               f"(Ctrl-C stops it)", err=True)
    try:
        app.run(host=host, port=port)
    except OSError as e:
        _fail(f"--port {port}: {e.strerror or e}")


@main.command(name="graph")
@click.argument("scenario", type=click.Path(exists=True, dir_okay=False))
@click.option("--policy", "-p", "policy", default=None,
              help="Policy (default: the scenario's first).")
@click.option("--policy-file", "policy_files", multiple=True, type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", default=None, type=click.Path(dir_okay=False),
              help="Write the graph: .graphml, .gexf, .json (node-link) or .dot.")
@click.option("--max-states", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="Stop adding states beyond this many (the graph is then cut, and says so).")
@click.option("--json", "as_json", is_flag=True, help="Print the analysis as JSON.")
def graph_cmd(scenario, policy, policy_files, output, max_states, as_json):
    """Export the explored state graph (networkx) and analyse it: stuck states, cycles, and
    for each violated property the states from which it is unavoidable and the point of no
    return on its shortest counterexample."""
    from .report import graph
    from .report.runner import MMModel, policy_defs

    if output:
        if Path(output).suffix.lower() not in graph.FORMATS:
            _fail(f"-o {output}: the file must end in {', '.join(graph.FORMATS)}")
        check_output_file("-o", output)
    extra = load_policy_files(policy_files)
    sc = load_all([scenario])[0]
    defs = policy_defs(sc, extra)
    name = policy or sc.policies[0]
    try:
        chosen = resolve(name, defs)
    except KeyError:
        _fail(f"{scenario}: unknown policy '{name}'")
    g = graph.build(MMModel(sc, chosen), max_states=max_states)
    if output:
        graph.write(g, output)
    info = graph.analyse(g)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    cut = "" if info["complete"] else (f" (cut at --max-states {max_states:,}: the analysis "
                                       f"covers only these states)")
    console.print(escape(f"{sc.name} under {name}: {info['states']:,} states, "
                         f"{info['edges']:,} steps{cut}"
                         + (f"; written to {output}" if output else "")))
    console.print(escape(f"stuck states: {info['stuck']}"
                         + (" (shortest path: " + "; ".join(info["stuck_path"]) + ")"
                            if info["stuck"] else "")))
    console.print(f"cycles: {info['cycles']['components']} strongly connected components "
                  f"(largest {info['cycles']['largest']} states)")
    for prop, p in info["properties"].items():
        ret = p["point_of_no_return"]
        console.print(escape(
            f"{prop}: shortest counterexample {p['shortest']} steps; unavoidable from "
            f"{p['unavoidable_from']:,} states, still avoidable from {p['avoidable_from']:,}; "
            f"point of no return: step {ret['step']} ({ret['taken']})"))
    if not info["properties"]:
        console.print("no property is violated in this graph")


@main.command(name="render")
@click.argument("trace_file", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, help="Output file: .svg, .png or .dot.")
@click.option("--point-of-no-return", "no_return", is_flag=True,
              help="Mark the step after which the violation is unavoidable (explores the "
                   "trace's scenario: mmcheck graph).")
@click.option("--scenario", "scenario_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="With --point-of-no-return: the scenario, if not where the "
                                 "trace says.")
@click.option("--policy-file", "policy_files", multiple=True,
              type=click.Path(exists=True, dir_okay=False))
@click.option("--max-states", type=click.IntRange(min=1), default=500_000, show_default=True,
              help="With --point-of-no-return: the largest state graph to build.")
def render_cmd(trace_file, output, no_return, scenario_path, policy_files, max_states):
    """Draw a saved trace with Graphviz."""
    from .report import graph
    from .report import render as rendering
    from .report.trace import ReplayError

    if Path(output).suffix.lower() not in (".svg", ".png", ".dot"):
        _fail(f"-o {output}: the file must end in .svg, .png or .dot")
    check_output_file("-o", output)
    trace = _read_trace(trace_file)
    step = None
    if no_return:
        model = _trace_model(trace_file, trace, scenario_path, policy_files)
        try:
            step, note = graph.point_of_no_return(model, trace, max_states)
        except ReplayError as e:
            _fail(f"{trace_file}: {e}")
        console.print(escape(note))
    try:
        written = rendering.render(trace, output, no_return=step)
    except RuntimeError as e:
        _fail(str(e))
    console.print(f"wrote {written}")


@main.command()
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--policies", "policies", default=None, metavar="P1,P2,...",
              help="Comma-separated policies (presets, aliases, defined). Default: the scenario's list.")
@click.option("--depth", "depth", required=True, metavar="A..B|N",
              help="Depth bounds to run: the range A..B (inclusive) or the single bound N.")
@click.option("--policy-file", "policy_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="YAML file defining extra policies (define_policies:).")
@click.option("--property", "properties", multiple=True, help="Check only this property; repeatable.")
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "json", "csv", "html"]),
              default="table", show_default=True, help="Output format.")
@click.option("-o", "--output", default=None, type=click.Path(dir_okay=False),
              help="Write the output to this file instead of stdout.")
@click.option("--plot", "plot_file", default=None, type=click.Path(dir_okay=False),
              help="Plot distinct states against depth bound (.svg or .png; needs matplotlib).")
@click.option("--no-progress", is_flag=True, help="No progress bar (it is shown only when stderr is a terminal).")
@_symmetry_options
@_workers_option
@_store_options
def compare(scenarios, policies, depth, policy_files, properties, fmt, output, plot_file, no_progress,
            symmetry, no_symmetry, workers, backend, address, store, max_memory):
    """Compare policies over a range of depth bounds: verdicts, states, transitions, COW copies.

    Exit status: 0 when every verdict meets the expectations, 1 otherwise, 2 on bad input,
    130 when interrupted (what was finished is still printed). See docs/compare.md.
    """
    from .report import compare as comparing
    from .properties import NAMES

    try:
        depths = comparing.parse_depths(depth)
        names = comparing.parse_policies(policies) if policies is not None else None
    except ValueError as e:
        _fail(str(e))
    for prop in properties:
        if prop not in NAMES:
            _fail(f"--property: unknown property '{prop}' (known: {', '.join(NAMES)})")
    if output:
        check_output_file("-o", output)
    if plot_file:
        if Path(plot_file).suffix.lower() not in comparing.PLOT_SUFFIXES:
            _fail(f"--plot {plot_file}: the file must end in .svg or .png")
        check_output_file("--plot", plot_file)
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            _fail("--plot: matplotlib is not installed (pip install matplotlib)")
    search = _search_options(store, max_memory, workers, backend, address)
    extra = load_policy_files(policy_files)
    loaded = load_all(scenarios)
    progress = comparing.RichProgress() if not no_progress and sys.stderr.isatty() else None
    try:
        result = comparing.compare(loaded, names, depths, properties or None, extra, progress,
                                   with_traces=fmt == "html", **search,
                                   **_reduction(symmetry, no_symmetry))
    except ScenarioError as e:
        _fail(str(e))
    if plot_file:
        comparing.plot(result, plot_file)
    if fmt == "table" and output is None:
        comparing.print_table(result, console)
    else:
        text = (comparing.table_text(result) if fmt == "table" else
                comparing.to_html(result, plots=bool(plot_file)) if fmt == "html" else
                comparing.FORMATTERS[fmt](result))
        if output is None:
            click.echo(text, nl=False)
        else:
            try:
                Path(output).parent.mkdir(parents=True, exist_ok=True)
                Path(output).write_text(text, encoding="utf-8")
            except OSError as e:
                _fail(f"-o {output}: cannot write: {e.strerror or e}")
        # stdout may be data (or nothing): the verdict problems and summary go to stderr
        for sr, o in result.unexpected:
            click.echo(f"{sr.path}: {o.policy} / {o.prop}: {o.note}", err=True)
        click.echo(result.summary() + (f"; wrote {output}" if output else ""), err=True)
    sys.exit(result.exit_code)


@main.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.option("--policy", "-p", "policy", default=None,
              help="With a scenario: the policy whose verdicts the program tests (default: "
                   "the preset matching this machine's kernel).")
@click.option("--policy-file", "policy_files", multiple=True,
              type=click.Path(exists=True, dir_okay=False))
@click.option("--property", "prop", default=None,
              help="With a scenario: reproduce the execution that tests this property "
                   "(default: the first violated one, else the sequential execution).")
@click.option("--scenario", "scenario_path", type=click.Path(exists=True, dir_okay=False),
              help="With a trace: the scenario, if not where the trace says.")
@click.option("-o", "--output", default=None, type=click.Path(dir_okay=False),
              help="Write the C program here (default: stdout).")
@click.option("--attempts", type=click.IntRange(min=1), default=None,
              help="Default attempts compiled into the program (races: 200, else 1).")
@click.option("--timeout", "timeout_ms", type=click.IntRange(min=1), default=5000,
              show_default=True, help="Milliseconds a point of the schedule may take.")
@click.option("--max-states", type=click.IntRange(min=1), default=None,
              help="With a scenario: bound each search for a counterexample (default: the "
                   "scenario's own bound).")
def reproduce(source, policy, policy_files, prop, scenario_path, output, attempts, timeout_ms,
              max_states):
    """Write a C program that runs a counterexample TRACE.json (or a scenario's execution)
    on the real kernel and reports, as TAP, whether the kernel violates the properties.

    Build it with `gcc -O2 -Wall -o repro repro.c -lpthread` and run it. Steps
    inside a kernel operation cannot be scheduled from user space: such races run
    `--attempts` times, and the program's header lists the steps it could not order.
    """
    from .reproduce import cgen, witness
    from .reproduce.kernel_check import preset_for_kernel
    from .report.runner import policy_defs
    from .report.trace import ReplayError

    if output:
        check_output_file("-o", output)
    if source.endswith(".json"):
        trace = _read_trace(source)
        model = _trace_model(source, trace, scenario_path, policy_files)
        try:
            w = witness.from_trace(model, trace)
        except ReplayError as e:
            _fail(f"{source}: {e}")
        says = model.policy.name
        verdicts = ({trace["property"]: "violated by this execution"}
                    if trace.get("property") else None)
    else:
        sc = load_all([source])[0]
        if sc.menu is not None:
            _fail(f"{source}: a menu has no program to reproduce; reproduce one of its "
                  f"counterexample traces (mmcheck run writes them)")
        says = policy or preset_for_kernel()
        try:
            resolve(says, policy_defs(sc, load_policy_files(policy_files)))
        except KeyError:
            _fail(f"--policy: unknown policy '{says}'")
        if prop is not None and prop not in sc.properties:
            _fail(f"--property: unknown property '{prop}' for {source} "
                  f"(it checks: {', '.join(sc.properties)})")
        verdicts, ws = witness.for_scenario(sc, says, load_policy_files(policy_files),
                                            max_states=max_states)
        # --property's execution; else the first violated property's counterexample under
        # the policy; else the policy's own (sequential) execution
        chosen = ([x for x in ws if prop in x.properties] if prop else
                  [x for x in ws if x.model.policy.name == says
                   and any(verdicts.get(q) == "violated" for q in x.properties)]
                  or [x for x in ws if x.model.policy.name == says])
        w = (chosen or ws)[0]
    sched = w.schedule()
    prog = cgen.generate(sched, origin=w.why, model_says=verdicts, model_policy=says,
                         attempts=attempts, timeout_ms=timeout_ms)
    if output:
        try:
            Path(output).write_text(prog.source, encoding="utf-8")
        except OSError as e:
            _fail(f"-o {output}: cannot write: {e.strerror or e}")
    else:
        click.echo(prog.source, nl=False)
    click.echo(f"execution: {w.why}; {len(sched.points)} points"
               f"{', races run ' + str(prog.attempts) + ' times' if sched.races else ''}"
               + (f"; wrote {output}" if output else ""), err=True)
    for why in prog.unsupported:
        click.echo(f"cannot drive: {why} (the program reports SKIP)", err=True)
    for step in sched.race_steps:
        click.echo(f"not ordered: {step}", err=True)


@main.command(name="kernel-check")
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--policy", "-p", "policy", default=None,
              help="The model's policy (default: the preset matching `uname -r`).")
@click.option("--policy-file", "policy_files", multiple=True,
              type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the table and programs as JSON.")
@click.option("--attempts", type=click.IntRange(min=1), default=None,
              help="Attempts per program (default: 1, races 200).")
@click.option("--timeout", "timeout_ms", type=click.IntRange(min=1), default=5000,
              show_default=True, help="Milliseconds a point of a schedule may take.")
@click.option("--setup", "do_setup", is_flag=True,
              help="Make a swapfile, hugetlb pages and THP available for the check (as root) "
                   "and restore everything afterwards.")
@click.option("--keep", "keep_dir", default=None, type=click.Path(file_okay=False),
              help="Keep the generated programs and binaries in this directory.")
@click.option("--no-progress", is_flag=True,
              help="No live progress display (it is shown only when stderr is a terminal).")
def kernel_check(scenarios, policy, policy_files, as_json, attempts, timeout_ms, do_setup,
                 keep_dir, no_progress):
    """Build and run the reproducer programs of SCENARIOS on this machine's kernel and
    print, per property, what the model says, what the kernel did and whether they agree.

    Exit status: 0 no disagreement (skips are listed with their reason), 1 a
    disagreement, 2 bad input.
    """
    import contextlib
    import platform

    from .report.progress import RunProgress
    from .report.runner import policy_defs
    from .reproduce import kernel_check as kc
    from .reproduce.setup import SetupError, machine_setup

    import shutil

    extra = load_policy_files(policy_files)
    loaded = load_all(scenarios)
    if shutil.which(kc.compiler()) is None:
        _fail(f"$CC: C compiler '{kc.compiler()}' not found (install gcc or set CC)")
    name = policy or kc.preset_for_kernel()
    for sc in loaded:
        try:
            resolve(name, policy_defs(sc, extra))
        except KeyError:
            _fail(f"--policy: unknown policy '{name}'")
    if keep_dir:
        try:
            os.makedirs(keep_dir, exist_ok=True)
        except OSError as e:
            _fail(f"--keep {keep_dir}: {e.strerror or e}")
    live = RunProgress() if not no_progress and sys.stderr.isatty() else None
    rows, programs = [], {}
    try:
        ctx = (machine_setup(log=lambda m: click.echo(m, err=True)) if do_setup
               else contextlib.nullcontext())
        with ctx:
            for sc in loaded:
                if sc.menu is not None:
                    rows.append(kc.Row(sc.name, sc.path, "-", "-", "skip", "-",
                                       "a menu has no program to run"))
                    continue
                if live:
                    live.policy_started(sc.name, name)
                found, runs = kc.check_scenario(
                    sc, name, extra_defs=extra, attempts=attempts, timeout_ms=timeout_ms,
                    workdir=keep_dir, status=live.status if live else None)
                rows.extend(found)
                programs[sc.name] = runs
    except SetupError as e:
        _fail(str(e))
    finally:
        if live:
            live.stop()
    if as_json:
        click.echo(json.dumps(kc.as_json(rows, name, programs), indent=2))
    else:
        table = Table(title=f"kernel {platform.release()} against the model under {name}",
                      title_justify="left")
        for col in ("scenario", "property", "model", "kernel", "agree", "detail"):
            table.add_column(col, overflow="fold")
        for r in rows:
            if r.kernel == "not observable":
                continue
            style = "red" if r.agree == "NO" else "yellow" if r.agree == "unconfirmed" else None
            table.add_row(escape(r.scenario), r.prop, r.model, r.kernel, r.agree,
                          escape(r.detail), style=style)
        console.print(table)
        s = kc.summary(rows)
        console.print(", ".join(f"{v} {k}" for k, v in s.items()))
    sys.exit(EXIT_UNEXPECTED if kc.summary(rows)["disagree"] else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
