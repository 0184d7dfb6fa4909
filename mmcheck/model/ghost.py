"""Ghost state: the checker's ideal memory, written through this one small API.

Per process and virtual page the model keeps the *ideal* value (what a read there should
return) and the *legit* set (every value the process may observe there).  The kernel steps
call these functions where the ideal changes: a store lands, fork copies a page table
entry, a page is discarded, a device writes through a reference.  Properties judge the
kernel state against it (mmcheck.properties).
"""

from __future__ import annotations

from .kernel.common import FORKING, P_STATUS, RUNNING, V_IDEAL, V_LEGIT, V_VMA


def store(m, l, p, v, value):
    """A CPU store by process p of `value` at virtual page v landed."""
    base = m.pv[p][v]
    l[base + V_IDEAL] = value
    l[base + V_LEGIT] |= 1 << value


def inherit(m, l, parent, child, v):
    """fork copied the parent's PTE for v: the child's ideal and legit values are the
    parent's at that moment (so concurrent parent stores before it are legit too)."""
    pb, cb = m.pv[parent][v], m.pv[child][v]
    l[cb + V_IDEAL] = l[pb + V_IDEAL]
    l[cb + V_LEGIT] = l[pb + V_LEGIT]


def discard(m, l, p, v):
    """MADV_DONTNEED: the next touch reads zeroes (or the file's data)."""
    l[m.pv[p][v] + V_IDEAL] = m.vpage_initial[v]


def device_store(m, l, r, value):
    """A device wrote `value` through reference r: it is the owner's data at that address
    (while the owner still has it mapped)."""
    o, v = m.ref_owner[r], m.ref_vpage[r]
    ob = m.pv[o][v]
    if l[m.proc[o] + P_STATUS] in (RUNNING, FORKING) and l[ob + V_VMA]:
        l[ob + V_IDEAL] = value
        l[ob + V_LEGIT] |= 1 << value

