"""`mmcheck` where users work: `run`'s live progress (shown on a terminal, a
pseudo-terminal here, never when stderr is not one or with --no-progress; the same numbers
in --json), `--version`, shell completion."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys

LINE = re.compile(r"[\d,]+ states [\d,]+/s, level \d+ \([\d,]+\), [\d.]+ [KMG]iB")
MENU = ["run", "scenarios/discover/generic_menu.yaml", "-p", "page_count", "--no-render",
        "--no-trace"]


def _on_a_terminal(args, tmp_path):
    """Run mmcheck with stdout and stderr on a pseudo-terminal; what it printed."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: wide terminal, so rich does not cut the line
        os.environ["COLUMNS"] = "200"
        os.execv(sys.executable, [sys.executable, "-m", "mmcheck.cli", *args,
                                  "--out", str(tmp_path)])
    out = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 120)
        if not ready:
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_progress_on_a_terminal(tmp_path):
    code, text = _on_a_terminal(MENU, tmp_path)
    assert code == 0
    assert "discover-generic-menu / page_count" in text
    assert LINE.search(text), text[-2000:]


def test_no_progress_flag_and_no_terminal(tmp_path):
    code, text = _on_a_terminal(MENU + ["--no-progress"], tmp_path)
    assert code == 0 and not LINE.search(text)
    r = subprocess.run([sys.executable, "-m", "mmcheck.cli", *MENU, "--json", "--out",
                        str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and not LINE.search(r.stderr)
    run = json.loads(r.stdout)[0]["runs"][0]
    assert run["states"] == 95341 and run["states_per_second"] > 0
    assert run["max_frontier"] > 0 and run["resident_bytes"] > 0


def test_version_names_the_model_and_the_trace_format(monkeypatch):
    from click.testing import CliRunner

    from mmcheck import cli
    from mmcheck.model import steps
    from mmcheck.report.trace import FORMAT

    out = CliRunner().invoke(cli.main, ["--version"]).output
    assert out.startswith("mmcheck ") and f"trace format: {FORMAT}" in out
    assert "latest = v6.18" in out
    digest = re.search(r"schema ([0-9a-f]{12})", out).group(1)
    # another step table is another model
    monkeypatch.setitem(steps.FUNCTIONS, "made_up", steps.FUNCTIONS["do_wp_page"])
    assert re.search(r"schema ([0-9a-f]{12})", cli.model_version()).group(1) != digest


def test_shell_completion():
    env = dict(os.environ, _MMCHECK_COMPLETE="bash_complete", COMP_WORDS="mmcheck ru",
               COMP_CWORD="1")
    script = os.path.join(os.path.dirname(sys.executable), "mmcheck")   # the entry point
    r = subprocess.run([script], env=env, capture_output=True, text=True, timeout=60)
    assert "plain,run" in r.stdout.split()
