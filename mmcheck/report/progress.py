"""What `mmcheck run` and `mmcheck resume` show while they search: on a terminal, a live
display (which scenario and policy, distinct states, states/s, the BFS level and its
size, the memory in use; rich, on stderr, gone when the run ends); with --log-progress,
the same numbers as one line per BFS level, for searches that run for hours with stderr
in a file."""

from __future__ import annotations

import sys
import time

from ..engine import memory


class RunProgress:
    """``policy_started(scenario, policy)`` before each search, ``update`` as the
    explorer's progress callback (an ExplorationProgress), ``stop()`` at the end."""

    def __init__(self, console=None) -> None:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = console or Console(stderr=True)
        self._progress = Progress(
            SpinnerColumn(), TimeElapsedColumn(), TextColumn("{task.description}"),
            TextColumn("{task.fields[stats]}"), console=self.console, transient=True)
        self._task = None

    def policy_started(self, scenario: str, policy: str) -> None:
        if self._task is None:
            self._progress.start()
            self._task = self._progress.add_task("", total=None, stats="")
        self._progress.update(self._task, description=f"{scenario} / {policy}",
                              stats="starting", completed=0)

    def update(self, p) -> None:
        if self._task is not None:
            self._progress.update(self._task, stats=stats_line(p, memory.rss_bytes()))

    def status(self, text: str) -> None:
        """Say what is happening when it is not a search (mmcheck kernel-check)."""
        if self._task is not None:
            self._progress.update(self._task, stats=text)

    def stop(self) -> None:
        if self._task is not None:
            self._progress.stop()
            self._task = None


def stats_line(p, resident: int) -> str:
    """One line of progress numbers (also what the README's picture shows)."""
    return (f"{p.states:,} states {p.rate:,.0f}/s, level {p.depth} ({p.frontier:,}), "
            f"{memory.format_size(resident)}")


class LevelLog:
    """The progress as one timestamped line on stderr per BFS level (the interface of
    RunProgress): `tail -f` shows how a search in the background is doing."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.name = ""
        self.depth = None

    def policy_started(self, scenario: str, policy: str) -> None:
        self.name, self.depth = f"{scenario} / {policy}", None

    def update(self, p) -> None:
        if p.depth == self.depth:  # the one-process search also reports within a level
            return
        self.depth = p.depth
        elapsed = int(p.elapsed)
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {self.name}: "
              f"{elapsed // 3600}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d} elapsed, "
              f"{stats_line(p, memory.rss_bytes())}", file=self.stream, flush=True)

    def status(self, text: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {self.name}: {text}", file=self.stream,
              flush=True)

    def stop(self) -> None:
        pass


def display(no_progress: bool, log_progress: bool):
    """The progress display the options ask for: a line per level with --log-progress,
    else the live display when stderr is a terminal (and not --no-progress), else none."""
    if log_progress:
        return LevelLog()
    if not no_progress and sys.stderr.isatty():
        return RunProgress()
    return None
