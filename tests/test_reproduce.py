"""Reproducers (mmcheck reproduce) and the kernel check (mmcheck kernel-check).

The compile tests run everywhere gcc is; the tests that run programs need a Linux kernel
and root (they skip, saying why, elsewhere) and judge this machine's kernel: a program's
verdict must be the latest preset's, and a program must be able to say `not ok` (a real
kernel limitation, B0, and a deliberately wrong expectation).
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
from click.testing import CliRunner

from mmcheck.cli import main
from mmcheck.model.model import MMModel
from mmcheck.model.policy import resolve
from mmcheck.report.render import load_trace
from mmcheck.reproduce import cgen, kernel_check, schedule, witness
from mmcheck.scenario.loader import load_scenario

GCC = shutil.which(os.environ.get("CC", "gcc"))
needs_gcc = pytest.mark.skipif(GCC is None, reason="no C compiler (gcc or $CC)")
ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False
needs_kernel = pytest.mark.skipif(not (ROOT and GCC and os.path.exists("/proc/self/pagemap")),
                                  reason="runs programs on this kernel: needs Linux, root, gcc")

SCRIPTED = sorted(f for f in glob.glob("scenarios/*/*.yaml")
                  if load_scenario(f).menu is None)


def _compile(source: str, tmp_path, name: str) -> str:
    path = tmp_path / f"{name}.c"
    path.write_text(source)
    r = subprocess.run([GCC, "-O2", "-Wall", "-Werror", "-c", "-o", os.devnull, str(path)],
                       capture_output=True, text=True)
    return r.stderr


def _program_of(w: witness.Witness, **kw) -> cgen.Program:
    return cgen.generate(w.schedule(), origin=w.why, **kw)


# ----------------------------------------------------------------------------- compiling
@needs_gcc
def test_every_scripted_scenario_compiles_warning_free(tmp_path):
    """Every execution kernel-check would run for every shipped scripted scenario (the
    counterexamples of every era, made sequential where possible, races, blocked writes,
    and the sequential executions) makes a program gcc accepts with -Wall -Werror."""
    jobs = []
    for f in SCRIPTED:
        sc = load_scenario(f)
        _verdicts, ws = witness.for_scenario(sc, "latest")
        for i, w in enumerate(ws):
            jobs.append((f"{sc.name}-{i}", _program_of(w).source))
    assert len(jobs) > len(SCRIPTED)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        errors = list(pool.map(lambda j: (j[0], _compile(j[1], tmp_path, j[0])), jobs))
    bad = [(name, err) for name, err in errors if err]
    assert not bad, bad[:3]


@needs_gcc
def test_shipped_traces_compile_warning_free(tmp_path):
    """The counterexample traces committed under counterexamples/ (mmcheck reproduce T.json)."""
    tracked = subprocess.run(["git", "ls-files", "counterexamples/*.json",
                              "counterexamples/**/*.json"], capture_output=True, text=True)
    paths = sorted(set(tracked.stdout.split())) if tracked.returncode == 0 else []
    if not paths:
        pytest.skip("not a git checkout")
    for path in paths:
        trace = load_trace(path)
        sc = load_scenario(trace["scenario"])
        m = MMModel(sc, resolve(trace["policy"]["name"], {d.name: d for d in sc.policy_defs}))
        err = _compile(_program_of(witness.from_trace(m, trace)).source, tmp_path, "t")
        assert not err, (path, err)


# ----------------------------------------------------------------------------- schedules
def _witness(path: str, policy: str, prop: str) -> witness.Witness:
    sc = load_scenario(path)
    verdicts, ws = witness.for_scenario(sc, policy)
    return next(w for w in ws if prop in w.properties)


def test_race_is_listed_not_faked():
    """GUP-fast racing fork: the pin's steps fall inside fork's copy; the program starts
    both together, repeats the attempt, and lists the steps it could not order."""
    trace = load_trace("counterexamples/classics/gup-fast-pin-racing-fork--v5.9--no-leak.json")
    sc = load_scenario(trace["scenario"])
    w = witness.from_trace(MMModel(sc, resolve("v5.9")), trace)
    s = w.schedule()
    assert s.races and not s.sequential
    assert any("gup_fast" in step for step in s.race_steps)
    prog = _program_of(w)
    assert prog.attempts == cgen.RACE_ATTEMPTS
    assert "Steps user space cannot order" in prog.source
    assert " || " in prog.source


def test_counterexample_is_made_sequential_when_that_still_violates():
    """The shortest v5.7 trace of CVE-2020-29374 finishes the child's munmap after the
    parent's write fault began; one operation at a time leaks just the same."""
    sc = load_scenario("scenarios/classics/vmsplice_unmap_child.yaml")
    m = MMModel(sc, resolve("v5.7"))
    w = _witness("scenarios/classics/vmsplice_unmap_child.yaml", "v5.7", "no-leak")
    s = w.schedule()
    assert s.sequential
    assert m.judge("no-leak", s.states, s.labels) is not None or any(
        m.judge("no-leak", s.states[:i + 1], s.labels[:i]) for i in range(1, len(s.labels) + 1))
    order = [m.threads[r.thread].program[r.pc].kind for r in s.runs]
    assert order == ["fork", "gup", "munmap", "write"]


def test_blocked_write_resumes_after_the_monitor():
    """A store to a write-protected page sleeps in handle_userfault; the monitor's read
    and unprotect run while it sleeps (ordered by the kernel), then the store resumes."""
    sc = load_scenario("scenarios/uffd/b0_wp_unpopulated_fixes_it.yaml")
    m = MMModel(sc, resolve("v6.18"))
    s = schedule.build(m, schedule.sequential_execution(m))
    resumed = [p for p in s.points if p.resume]
    assert len(resumed) == 1 and not s.races
    source = _program_of(witness.Witness(m, s.labels, "sequential", [])).source
    assert "it resumed" in source


def test_unsupported_is_said():
    sc = load_scenario("scenarios/classics/ro_pin_shared_write.yaml")
    m = MMModel(sc, resolve("v6.18"))
    prog = _program_of(witness.Witness(m, schedule.sequential_execution(m), "seq", []))
    assert any("gup_test" in why for why in prog.unsupported)
    assert "# SKIP" in prog.source and "return KSFT_SKIP" in prog.source


def test_preset_for_kernel():
    assert kernel_check.preset_for_kernel("6.18.44-fc") == "v6.18"
    assert kernel_check.preset_for_kernel("6.1.0-13-amd64") == "v5.19"
    assert kernel_check.preset_for_kernel("5.10.0") == "v5.9"
    assert kernel_check.preset_for_kernel("7.2.0") == "v6.18"


def _menu_trace(prop: str, policy: str) -> tuple:
    import mmcheck

    result = mmcheck.check("scenarios/discover/generic_menu.yaml", policy)
    trace = result.trace(prop).data
    m = MMModel(load_scenario(trace["scenario"]), resolve(policy))
    return m, trace


@needs_gcc
def test_menu_counterexample_becomes_a_program(tmp_path):
    """A bug found by discovery (the menu's threads pick operations as they go): the
    mapcount era's leak, as the menu found it, is the vmsplice + unmap in parent pattern."""
    m, trace = _menu_trace("no-leak", "v5.7")
    w = witness.from_trace(m, trace)
    s = w.schedule()
    kinds = [m.programs[r.thread][r.pc].kind for r in s.runs]
    assert kinds == ["fork", "gup", "munmap", "write"], kinds
    assert s.sequential
    assert not _compile(_program_of(w).source, tmp_path, "menu")


# ----------------------------------------------------------------------------- on this kernel
@needs_kernel
def test_menu_counterexample_holds_on_this_kernel(tmp_path):
    m, trace = _menu_trace("no-leak", "v5.7")
    code, out = _build_and_run(_program_of(witness.from_trace(m, trace)).source, tmp_path)
    assert code == 0, out
    assert kernel_check.parse_result(out)["violated"]["no-leak"] == 0

def _build_and_run(source: str, tmp_path, name="repro", args=()) -> tuple[int, str]:
    binary, err = kernel_check.build(source, str(tmp_path), name)
    assert not err, err
    r = subprocess.run([binary, *args], capture_output=True, text=True, timeout=600,
                       cwd=tmp_path)
    return r.returncode, r.stdout


@needs_kernel
def test_cve_2020_29374_program_agrees_with_the_latest_preset(tmp_path):
    """The mapcount era's leak, run on this kernel: the child's pipe must not show the
    parent's secret (every kernel since 5.8)."""
    w = _witness("scenarios/classics/vmsplice_unmap_child.yaml", "v6.18", "no-leak")
    code, out = _build_and_run(_program_of(w).source, tmp_path)
    assert code == 0, out
    result = kernel_check.parse_result(out)
    assert result["violated"]["no-leak"] == 0 and result["attempts"] == 1
    assert re.search(r"^ok \d+ - no-leak: held", out, re.M)


@needs_kernel
def test_program_reports_a_real_kernel_limitation(tmp_path):
    """B0: UFFDIO_WRITEPROTECT skips an untouched anonymous page, so the store lands with
    no message - on every kernel.  The program must say `not ok` for wp-unpopulated."""
    if cgen_need("need_uffd_wp(0)", tmp_path):
        pytest.skip("userfaultfd WP not available here")
    w = _witness("scenarios/uffd/b0_unpopulated.yaml", "v6.18", "wp-unpopulated")
    code, out = _build_and_run(_program_of(w).source, tmp_path)
    assert code == 1, out
    assert re.search(r"^not ok \d+ - wp-unpopulated: violated in 1 of 1 attempts: A: the store "
                     r"to X landed without a uffd-wp message", out, re.M)
    assert kernel_check.parse_result(out)["violated"]["wp-reported"] == 0


@needs_kernel
def test_a_wrong_expectation_is_caught(tmp_path):
    """Mutation: the final observation of the child's pipe told to expect nothing but
    zeroes; the program must report the leak it then sees."""
    w = _witness("scenarios/classics/vmsplice_unmap_child.yaml", "v6.18", "no-leak")
    source = _program_of(w).source
    mutated, n = re.subn(r"(judge_ref\(\d+, \"pipe\", pipe_device_read\(pipe_0\[0\]\), )0x[0-9a-f]+ULL",
                         r"\g<1>0x1ULL", source)
    assert n >= 1
    code, out = _build_and_run(mutated, tmp_path, "mutated")
    assert code == 1, out
    assert re.search(r"^not ok \d+ - no-leak: .*through reference pipe, which is not its data",
                     out, re.M)


def cgen_need(check: str, tmp_path) -> str:
    """The runtime's reason a facility is missing ('' when present)."""
    with open(cgen.RUNTIME, encoding="utf-8") as f:
        runtime = f.read()
    src = ("#define MAX_PROCS 1\n#define MAX_THREADS 1\n" + runtime +
           f'\nint main(void) {{ const char *w = {check}; printf("%s", w ? w : ""); return 0; }}\n')
    code, out = _build_and_run(src, tmp_path, "need")
    return out


@needs_kernel
def test_kernel_check_cli_agrees_on_anonymous_cow(tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["kernel-check", "--json", "-p", "latest",
                             "scenarios/cow/iouring-fork--base.yaml",
                             "scenarios/classics/vmsplice_unmap_child.yaml"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["policy"] == "latest" and data["kernel"] == os.uname().release
    rows = {(row["scenario"], row["prop"]): row for row in data["rows"]}
    leak = rows["vmsplice-unmap-child", "no-leak"]
    assert (leak["model"], leak["kernel"], leak["agree"]) == ("holds", "holds", "yes")
    assert "v4.9-pv counterexample" in leak["detail"]
    assert data["summary"]["disagree"] == 0


@needs_kernel
def test_kernel_check_exits_1_on_disagreement():
    """Under the mapcount era the model says the child's pipe leaks; this kernel does not
    leak: a disagreement, exit status 1."""
    r = CliRunner().invoke(main, ["kernel-check", "-p", "v5.7",
                                  "scenarios/classics/vmsplice_unmap_child.yaml"])
    assert r.exit_code == 1, r.output
    assert re.search(r"no-leak\s+│\s+violated\s+│\s+holds\s+│\s+NO", r.output)


# ----------------------------------------------------------------------------- the commands
def test_reproduce_from_a_trace(tmp_path):
    out = tmp_path / "repro.c"
    trace = "counterexamples/classics/gup-fast-pin-racing-fork--v5.9--no-leak.json"
    r = CliRunner().invoke(main, ["reproduce", trace, "-o", str(out)])
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert "gup-fast-pin-racing-fork" in text and "v5.9" in text
    assert "races run 200 times" in r.output
    assert "not ordered: step" in r.output


def test_reproduce_from_a_scenario_to_stdout():
    r = CliRunner().invoke(main, ["reproduce", "scenarios/classics/vmsplice_unmap_child.yaml",
                                  "-p", "v5.7"])
    assert r.exit_code == 0, r.output
    assert "#define DEFAULT_ATTEMPTS 1" in r.output
    assert "no-leak: counterexample under v5.7" in r.output


@pytest.mark.parametrize("args,message", [
    (["scenarios/discover/generic_menu.yaml"], "a menu has no program to reproduce"),
    (["scenarios/classics/basic_cow.yaml", "-p", "v9.9"], "--policy: unknown policy 'v9.9'"),
    (["scenarios/classics/basic_cow.yaml", "--property", "no-such"],
     "--property: unknown property 'no-such'"),
])
def test_reproduce_bad_input(args, message):
    r = CliRunner().invoke(main, ["reproduce", *args])
    assert r.exit_code == 2
    assert message in r.output and "Traceback" not in r.output


def test_reproduce_trace_of_an_unknown_property(tmp_path):
    trace = load_trace("counterexamples/classics/gup-fast-pin-racing-fork--v5.9--no-leak.json")
    trace["property"] = "no-such"
    path = tmp_path / "t.json"
    path.write_text(json.dumps(trace))
    r = CliRunner().invoke(main, ["reproduce", str(path)])
    assert r.exit_code == 2
    assert "property 'no-such' is not checked by this scenario" in r.output


def test_kernel_check_without_a_compiler(monkeypatch):
    monkeypatch.setenv("CC", "no-such-cc")
    r = CliRunner().invoke(main, ["kernel-check", "scenarios/cow/basic--base.yaml"])
    assert r.exit_code == 2 and "$CC: C compiler 'no-such-cc' not found" in r.output


def test_kernel_check_bad_policy():
    r = CliRunner().invoke(main, ["kernel-check", "-p", "nope", "scenarios/cow/basic--base.yaml"])
    assert r.exit_code == 2 and "--policy: unknown policy 'nope'" in r.output


def test_setup_restores_everything(tmp_path, monkeypatch):
    """--setup's context manager undoes what it did, in reverse, even on an error."""
    from mmcheck.reproduce import setup

    hug, thp = tmp_path / "nr_hugepages", tmp_path / "enabled"
    hug.write_text("2")
    thp.write_text("always madvise [never]")
    monkeypatch.setattr(setup, "HUGETLB", str(hug))
    monkeypatch.setattr(setup, "THP", str(thp))
    monkeypatch.setattr(setup, "SWAPFILE", str(tmp_path / "swap"))
    monkeypatch.setattr(setup.os, "geteuid", lambda: 0)
    monkeypatch.setattr(setup, "_meminfo", lambda key: 0)
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd[0])
        if cmd[0] == "fallocate":
            (tmp_path / "swap").write_text("")
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(setup.subprocess, "run", fake_run)
    with pytest.raises(RuntimeError):
        with setup.machine_setup(log=lambda m: None):
            assert hug.read_text() == "10" and thp.read_text() == "madvise"
            raise RuntimeError("interrupted")
    assert hug.read_text() == "2" and thp.read_text() == "never"
    assert calls == ["fallocate", "mkswap", "swapon", "swapoff"]
    assert not (tmp_path / "swap").exists()


@needs_kernel
def test_kernel_check_progress_on_a_terminal():
    """kernel-check shows the run's live line (scenario / policy, what it is doing) on a
    terminal, as `mmcheck run` does."""
    import pty
    import select
    import sys

    pid, fd = pty.fork()
    if pid == 0:
        os.environ["COLUMNS"] = "200"
        os.execv(sys.executable, [sys.executable, "-m", "mmcheck.cli", "kernel-check", "-p",
                                  "latest", "scenarios/cow/basic--base.yaml"])
    out = b""
    while select.select([fd], [], [], 300)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text[-2000:]
    assert "cow-basic-base / latest" in text
    assert re.search(r"program 1/\d+: (compiling|running)", text), text[-2000:]


def _swap_free_kb() -> int:
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("SwapFree:"):
                return int(line.split()[1])
    return 0


@needs_kernel
def test_missing_swap_is_a_skip_with_its_reason(tmp_path):
    """MADV_PAGEOUT needs swap: without it every property is a SKIP saying so (exit 4, as
    the kernel's selftests do); with it the program runs."""
    sc = load_scenario("scenarios/cow/basic--swapped.yaml")
    m = MMModel(sc, resolve("latest"))
    w = witness.Witness(m, schedule.sequential_execution(m), "sequential", [])
    code, out = _build_and_run(_program_of(w).source, tmp_path)
    if _swap_free_kb() == 0:
        assert code == 4, out
        assert re.search(r"^ok 1 - no-leak # SKIP no free swap", out, re.M)
        assert kernel_check.parse_result(out)["skip"].startswith("no free swap")
    else:
        assert code == 0, out
        assert kernel_check.parse_result(out)["attempts"] == 1


@needs_kernel
def test_an_incoherent_pin_is_caught(tmp_path):
    """Mutation: the final probe through the io_uring pin expects another byte than the
    one it writes; the program must report the pin incoherent."""
    w = _witness("scenarios/cow/iouring-fork--base.yaml", "latest", "pin-coherent")
    source = _program_of(w).source
    mutated, n = re.subn(r'judge_coherent\((\d+), (\d+), "R", 0xEE\)',
                         r'judge_coherent(\1, \2, "R", 0xEF)', source)
    assert n == 1
    code, out = _build_and_run(mutated, tmp_path, "mutated")
    assert code == 1, out
    assert re.search(r"^not ok \d+ - pin-coherent: .*reference R reads garbage but A's page "
                     r"table shows the probe", out, re.M)


@needs_kernel
def test_an_unreported_store_is_caught(tmp_path):
    """Mutation: the page is never write-protected, so the store does not block and the
    monitor's read finds no message: wp-reported must say `not ok`."""
    if cgen_need("need_uffd_wp(UFFD_FEATURE_WP_UNPOPULATED)", tmp_path):
        pytest.skip("userfaultfd WP_UNPOPULATED not available here")
    w = _witness("scenarios/uffd/b0_wp_unpopulated_fixes_it.yaml", "latest", "wp-reported")
    source = _program_of(w, timeout_ms=500).source
    mutated, n = re.subn(r"uffd_writeprotect\(uffd, page\[0\], page_size\[0\], 1, 0\)", "0",
                         source)
    assert n == 1
    code, out = _build_and_run(mutated, tmp_path, "mutated")
    assert code == 1, out
    assert re.search(r"^not ok \d+ - wp-reported: violated in 1 of 1 attempts: A: the store "
                     r"to X landed without a uffd-wp message", out, re.M)
    assert re.search(r"^ok \d+ - schedule", out, re.M)  # the monitor's read gave up in time


@needs_kernel
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_programs_run_without_root(tmp_path):
    """As nobody: the userfaultfd falls back to user-mode-only (vm.unprivileged_userfaultfd
    is 0 on most machines) and the B0 program still reports the unreported store."""
    import tempfile

    if cgen_need("need_uffd_wp(0)", tmp_path):
        pytest.skip("userfaultfd WP not available here")
    w = _witness("scenarios/uffd/b0_unpopulated.yaml", "v6.18", "wp-unpopulated")
    shared = tempfile.mkdtemp(prefix="mmcheck-nobody-")
    try:
        os.chmod(shared, 0o755)
        binary, err = kernel_check.build(_program_of(w).source, shared, "b0")
        assert not err, err
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            binary], capture_output=True, text=True, timeout=120, cwd=shared)
    finally:
        shutil.rmtree(shared, ignore_errors=True)
    assert r.returncode == 1, r.stdout + r.stderr
    assert kernel_check.parse_result(r.stdout)["violated"]["wp-unpopulated"] == 1
