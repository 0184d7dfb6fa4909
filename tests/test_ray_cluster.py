"""`--backend ray --address HOST:PORT`: a search on a Ray cluster started the way README
says (`ray start --head`), compared with the one-process search."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

pytest.importorskip("ray")

RAY = os.path.join(os.path.dirname(sys.executable), "ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _runs(text):
    runs = json.loads(text)[0]["runs"]
    for r in runs:
        for varying in ("seconds", "states_per_second", "resident_bytes"):
            r.pop(varying)
        for v in r["verdicts"].values():
            v.pop("files")
    return runs


def test_search_on_a_cluster_started_with_ray_start(tmp_path):
    env = dict(os.environ, RAY_AUTH_MODE="token")   # README: the same on every node
    port = _free_port()
    started = subprocess.run([RAY, "start", "--head", f"--port={port}", "--num-cpus=2",
                              "--include-dashboard=false", "--disable-usage-stats"],
                             env=env, capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr
    try:
        args = [sys.executable, "-m", "mmcheck.cli", "run",
                "scenarios/classics/gup_fast_pin_racing_fork.yaml", "-p", "v5.7", "-p",
                "v5.11", "--json", "--no-render", "--out", str(tmp_path)]
        one = subprocess.run(args, capture_output=True, text=True, timeout=300)
        cluster = subprocess.run(args + ["--backend", "ray", "-j", "2", "--address",
                                         f"127.0.0.1:{port}"],
                                 env=env, capture_output=True, text=True, timeout=300)
        assert one.returncode == cluster.returncode == 0, cluster.stderr
        assert _runs(cluster.stdout) == _runs(one.stdout)
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)
