"""The kernel steps, one module per kernel file they mirror; importing the package binds
every step function to its entry in the step table (mmcheck.model.steps)."""

from . import (background, fault, fork, gup, memory, migrate, mprotect, mremap,  # noqa: F401
               swap, task_mmu, userfaultfd)
from .. import interpreter  # noqa: F401  (the scenario's own ops register too)
