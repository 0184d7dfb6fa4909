"""Safety properties, one plug-in module each, judged against the ideal-memory view.

Each module defines a `Property` subclass registered here by name.  A property is compiled
against a scenario's state layout once (`compile(layout)`) into a fast checker
`check(state) -> None | str` (the string says why the state is bad).
"""

from __future__ import annotations

from .base import KINDS, Property, REGISTRY, register  # noqa: F401
from . import no_leak, pin_coherent, no_lost_write, refcount_sane, exclusive_sane  # noqa: F401,E402
from . import wp_reported, wp_sane, soft_dirty, op_expectations  # noqa: F401,E402

NAMES: tuple[str, ...] = tuple(REGISTRY)
