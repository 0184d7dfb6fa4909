"""The property plug-in interface.

A property has a *kind*, which says what its compiled check looks at:

  always  `check(state)`, on every reachable state (the safety invariants);
  step    `check(state, label, next_state)`, on every transition the search takes (a
          property of history, e.g. "a store that lands while its page is write-protected
          was reported"); its counterexample ends with the violating transition;
  final   `check(state)`, on the states where every program has finished.

(`sometimes` properties - reachability goals - are the model's own: "every program step is
started by some execution", mmcheck.model.model.MMModel.sometimes.)  The one-process
search and the parallel workers evaluate all kinds the same way (mmcheck.engine).
"""

from __future__ import annotations

from typing import Callable

REGISTRY: dict[str, type["Property"]] = {}
KINDS = ("always", "step", "final")


def register(cls: type["Property"]) -> type["Property"]:
    assert cls.kind in KINDS, (cls.name, cls.kind)
    REGISTRY[cls.name] = cls
    return cls


class Property:
    name: str = ""
    description: str = ""
    catches: str = ""  # the kernel term for what a violation means
    kind: str = "always"

    def compile(self, model) -> Callable[..., str | None]:  # pragma: no cover - interface
        raise NotImplementedError
