"""The one error type for bad user input: rendered as a single `file:line: message` line."""

from __future__ import annotations


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
