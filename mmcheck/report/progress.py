"""The live display of `mmcheck run` on a terminal: which scenario and policy, distinct
states, states/s, the BFS level and its size, and the memory in use (rich, on stderr,
gone when the run ends)."""

from __future__ import annotations

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
