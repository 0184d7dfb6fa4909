"""wp-sane (reference write-tracking.md P1'): uffd-wp state is consistent in the page
tables - a present PTE with the uffd-wp bit in a registered VMA is not writable (else a
store lands with no fault: B4, the pre-6.2 mprotect and unprotect paths), and no uffd-wp
bit or marker is left in a VMA that is not registered (stale state: B2, B3)."""

from __future__ import annotations

from ..model import codec
from ..model.kernel.common import V_PTE, V_VMA
from .base import Property, register


@register
class WPSane(Property):
    name = "wp-sane"
    description = ("a uffd-wp PTE is never writable, and no uffd-wp bit or marker is left "
                   "outside a registered VMA")
    catches = "uffd-wp state corruption (a writable protected PTE, stale WP bits)"

    def compile(self, m):
        if not m.tracking:
            return None
        where = [(p, v, m.pv[p][v]) for p in range(len(m.procs)) for v in range(m.n_vpages)]

        def check(s):
            for p, v, base in where:
                pte = s[base + V_PTE]
                if not codec.uffd_wp(pte):
                    continue
                vma = s[base + V_VMA]
                name = f"{m.procs[p]}:{m.vpages[v]}"
                if not vma:
                    continue  # an unmapped address's page table is gone with it
                if not vma & codec.VM_UFFD_WP:
                    return (f"{name} keeps a uffd-wp {codec.KIND_NAMES[codec.kind(pte)]} entry "
                            f"but its VMA is not registered for uffd-wp")
                if codec.write(pte):
                    return f"{name} is write-protected (uffd-wp) but its PTE is writable"
            return None

        return check
