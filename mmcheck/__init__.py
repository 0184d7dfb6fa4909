"""mmcheck: an exhaustive model checker for Linux memory-management (COW/GUP) semantics.

The Python API (`mmcheck.load`, `mmcheck.check`, `mmcheck.table`) lives in
`mmcheck.api`; it is imported on first use, so the command line starts no slower."""

__version__ = "0.1.0"

_API = ("load", "check", "table")


def __getattr__(name):
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'mmcheck' has no attribute {name!r}")
