"""uffd-wp: no silent write (reference write-tracking.md P1), and its design limitation B0
kept as a separate named property so that it is never silently masked.

wp-reported (a step property): every CPU store that lands on a page while the scenario
has it write-protected (UFFDIO_WRITEPROTECT, not unprotected since) was reported to the
monitor first (a uffd-wp fault message was queued for the page since the protection).
Exemptions, as preconditions the ghost state records (mmcheck.model.ghost) and the
verdict lists when they applied: an untouched anonymous page without WP_UNPOPULATED (the
kernel skips it), a page discarded after protection, a child forked without
UFFD_FEATURE_EVENT_FORK, a page moved by mremap without UFFD_FEATURE_EVENT_REMAP, an
unregistered range; device writes through a pin are not CPU stores.

wp-unpopulated (a step property): a store to a page that was none when write-protected
(anonymous memory without UFFD_FEATURE_WP_UNPOPULATED) is reported - violated by design
before 6.4 and without the feature (reference B0, QEMU's prefault).
"""

from __future__ import annotations

from ..model import ghost
from ..model.kernel.common import W_WP
from ..model.steps import CPU
from .base import Property, register


def _at_store(m, unreported):
    """A step check that runs at each landed CPU store: `unreported(wp, p, v)` gets the
    page's uffd-wp tracker bits (ghost.PROTECTED, REPORTED, EX_*) before the store and
    returns the message when the store should have been reported."""
    store = CPU.store

    def check(s, label, t):
        th, pc, oid, _arg = m.label_parts(label)
        if oid != store:
            return None
        p, v = m.t_proc[th], m.programs[th][pc].v
        return unreported(s[m.wt[0][p][v] + W_WP], p, v)
    return check


@register
class WPReported(Property):
    name = "wp-reported"
    kind = "step"
    description = ("every CPU store that lands on a write-protected page (uffd-wp) was reported "
                   "to the monitor first, up to documented exemptions")
    catches = "uffd-wp escape (a write the monitor never saw)"

    def compile(self, m):
        if not m.tracking:
            return None

        def unreported(wp, p, v):
            if wp & ghost.PROTECTED and not wp & ghost.REPORTED:
                return (f"{m.procs[p]}'s store to {m.vpages[v]} landed while {m.vpages[v]} "
                        f"was write-protected, and no uffd-wp fault was reported")
            return None
        return _at_store(m, unreported)


@register
class WPUnpopulated(Property):
    name = "wp-unpopulated"
    kind = "step"
    description = ("a store to a page that was unpopulated when write-protected is reported "
                   "(needs UFFD_FEATURE_WP_UNPOPULATED)")
    catches = "uffd-wp design limitation B0 (untouched anonymous pages)"

    def compile(self, m):
        if not m.tracking:
            return None

        def unreported(wp, p, v):
            if wp & ghost.EX_UNPOPULATED:
                return (f"{m.procs[p]}'s store to {m.vpages[v]} landed unreported: the page "
                        f"was none when write-protected and the kernel skipped it (no "
                        f"WP_UNPOPULATED marker)")
            return None
        return _at_store(m, unreported)
