"""Test-suite wide shims.

Under click < 8.2 (the click PyPy 3.9 resolves, in CI's PyPy run) `CliRunner` mixes stderr
into `output` and has no `result.stderr`; 8.2's runner keeps both.  The tests are written
for 8.2: give 8.1's runner the same two streams (`output` = stdout then stderr).
"""

from __future__ import annotations

from importlib.metadata import version

import click.testing

if tuple(int(x) for x in version("click").split(".")[:2]) < (8, 2):
    _init = click.testing.CliRunner.__init__

    def _separate_streams(self, *args, **kwargs):
        kwargs.setdefault("mix_stderr", False)
        _init(self, *args, **kwargs)

    click.testing.CliRunner.__init__ = _separate_streams
    click.testing.Result.output = property(
        lambda self: self.stdout + (self.stderr if self.stderr_bytes is not None else ""))
