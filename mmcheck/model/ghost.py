"""Ghost state: the checker's ideal memory, written through this one small API.

Per process and virtual page the model keeps the *ideal* value (what a read there should
return) and the *legit* set (every value the process may observe there); per memory object
the same pair for the object itself (what every shared mapping of it should read).  The
kernel steps call these functions where the ideal changes: a store lands, fork copies a
page table entry, a page is discarded, a device writes through a reference.  Properties
judge the kernel state against it (mmcheck.properties; docs/properties.md says what each
property means for each kind of mapping).

- private anonymous memory: the process's own data (its stores, what it inherited at fork,
  what its devices wrote for it);
- a shared mapping (MAP_SHARED of an object, or MAP_SHARED|MAP_ANONYMOUS): the object's
  data, which every store through any shared mapping of it changes;
- a private mapping of an object: FOLLOW (the object's data, current or earlier: POSIX
  leaves open whether a MAP_PRIVATE mapping sees later changes of the file) until the
  process stores there, then its own data; MADV_DONTNEED makes it FOLLOW again.
"""

from __future__ import annotations

from .kernel.common import (FORKING, O_IDEAL, O_LEGIT, P_STATUS, RUNNING, V_IDEAL, V_LEGIT,
                            V_VMA, ZERO_VALUE)


def _object_store(m, l, o, value):
    ob = m.ob[o]
    l[ob + O_IDEAL] = value
    l[ob + O_LEGIT] |= 1 << value


def store(m, l, p, v, value):
    """A CPU store by process p of `value` at virtual page v landed."""
    if m.vpage_shared[v]:
        _object_store(m, l, m.pv_object[p][v], value)
        return
    base = m.pv[p][v]
    l[base + V_IDEAL] = value
    l[base + V_LEGIT] |= 1 << value


def inherit(m, l, parent, child, v):
    """fork copied the parent's VMA for v: the child's ideal and legit values are the
    parent's at that moment (so concurrent parent stores before it are legit too)."""
    pb, cb = m.pv[parent][v], m.pv[child][v]
    l[cb + V_IDEAL] = l[pb + V_IDEAL]
    l[cb + V_LEGIT] = l[pb + V_LEGIT]


def discard(m, l, p, v):
    """MADV_DONTNEED: the next touch reads zeroes (anonymous memory) or the object's data
    (a private mapping of an object); a shared mapping's data stays in the object."""
    if m.vpage_shared[v]:
        return
    l[m.pv[p][v] + V_IDEAL] = ZERO_VALUE if m.pv_object[p][v] < 0 else m.follow_value


def device_store(m, l, r, value):
    """A device wrote `value` through reference r: it is the owner's data at that address
    (while the owner still has it mapped): the object's data for a shared mapping."""
    o, v = m.ref_owner[r], m.ref_vpage[r]
    ob = m.pv[o][v]
    if l[m.proc[o] + P_STATUS] in (RUNNING, FORKING) and l[ob + V_VMA]:
        if m.vpage_shared[v]:
            _object_store(m, l, m.pv_object[o][v], value)
            return
        l[ob + V_IDEAL] = value
        l[ob + V_LEGIT] |= 1 << value
