"""mmcheck: an exhaustive model checker for Linux memory-management (COW/GUP) semantics."""

__version__ = "0.1.0"
