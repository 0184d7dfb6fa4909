"""Errors and exit statuses.

Exit statuses of every `mmcheck` command:

  0    every verdict as expected (without expectations: every property holds)
  1    an unexpected verdict, or a replay that does not confirm its trace
  2    bad input: one line `file:line: what is wrong` (scenario, policy or trace file, a
       command-line value, an output path that cannot be written)
  3    internal error: a bug in mmcheck (one line; the details go to a crash file)
  4    incomplete: a search stopped by a resource (memory, a dead worker process) before
       reaching its bounds; what finished is printed
  130  interrupted (Ctrl-C, or SIGTERM); what finished is printed
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3
EXIT_INCOMPLETE = 4
EXIT_INTERRUPTED = 130


class ScenarioError(Exception):
    """Bad input in a scenario or policy file. The CLI prints `str(err)` and exits 2."""

    def __init__(self, file: str, line: int | None, message: str):
        self.file = file
        self.line = line
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


class ModelError(RuntimeError):
    """The model contradicts itself (e.g. a counterexample whose re-execution does not
    violate the property the search found violated): a bug in mmcheck, never a verdict."""


class IncompleteSearch(RuntimeError):
    """A search could not go on for lack of a resource (memory, a worker process killed
    by the kernel's OOM killer); the message says what happened and how to bound it."""
