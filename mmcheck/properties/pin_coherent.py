"""pin-coherent: a coherent reference and its owner's page table keep referring to the
same page while the reference is held and the owner still maps the address.

Long-term pins are coherent by default (a scenario may declare any reference coherent,
e.g. O_DIRECT's FOLL_GET).  Page identity is checked, which is exact in both directions:
the same page means the device and the process see each other's writes.  In a private
mapping a none PTE (after MADV_DONTNEED) or an unmapped VMA means the owner changed the
mapping itself; in a shared mapping a none PTE (reclaim unmapped the page, DONTNEED) means
the next fault maps the object's page, which must be the pinned one.
"""

from __future__ import annotations

from ..model import codec
from ..model.kernel.common import P_STATUS, R_DETACHED, RUNNING, V_PTE, V_VMA, ZERO_REF
from .observe import object_page, swapcache_frame
from .base import Property, register


@register
class PinCoherent(Property):
    name = "pin-coherent"
    description = ("while a coherent reference (long-term pin) is held and its owner maps "
                   "the address, both refer to the same page")
    catches = "wrong COW (lost GUP coherency)"

    def compile(self, m):
        coherent = [r for r in range(len(m.refs)) if m.ref_coherent[r]]

        def check(s):
            for r in coherent:
                held = s[m.refix[r]]
                if not held or s[m.refix[r] + R_DETACHED]:
                    continue  # not held, or the owner discarded / unmapped the address
                p = m.ref_owner[r]
                if s[m.proc[p] + P_STATUS] != RUNNING:
                    continue
                base = m.pv[p][m.ref_vpage[r]]
                pte = s[base + V_PTE]
                k = codec.kind(pte)
                v = m.ref_vpage[r]
                if not s[base + V_VMA]:
                    continue
                if k == codec.NONE or k == codec.MARKER:
                    # a marker (uffd-wp on a zapped or unpopulated PTE) faults like none:
                    # handle_pte_marker -> do_pte_missing (mm/memory.c)
                    if not m.vpage_shared[v]:
                        continue
                    mapped = object_page(m, s, m.pv_object[p][v])
                elif k == codec.SWAP:
                    # swapped out: coherent only if a fault will map the pinned page again,
                    # i.e. it is the swapcache page of that slot
                    mapped = swapcache_frame(m, s, codec.slot(pte)) + 1
                elif k == codec.ZERO:
                    mapped = ZERO_REF
                elif k == codec.PRESENT:
                    mapped = codec.frame(pte) + 1
                else:
                    raise codec.unhandled(pte, "pin-coherent")
                if mapped != held:
                    where = "the zero page" if held == ZERO_REF else f"f{held - 1}"
                    now = ("the zero page" if mapped == ZERO_REF else f"f{mapped - 1}"
                           if mapped > 0 else "a new page at its next fault"
                           if k == codec.NONE else "a swap entry whose page is gone")
                    return (f"reference {m.refs[r]} holds {where} but {m.procs[p]} now maps "
                            f"{m.vpages[m.ref_vpage[r]]} to {now}")
            return None

        return check
