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

Write tracking (scenarios with userfaultfd or pagemap ops, `m.tracking`) keeps per process
and page (the `wt` record):

- `wp`: PROTECTED (the scenario write-protected the page and has not unprotected it),
  REPORTED (a uffd-wp fault message for it was queued since), and the exemptions of
  property wp-reported (reference write-tracking.md P1) that apply to it: EX_UNPOPULATED
  (it was none when protected, in anonymous memory without WP_UNPOPULATED: the kernel
  skipped it), EX_DISCARD (discarded after protection), EX_FORK (a child forked without
  EVENT_FORK), EX_REMAP (moved by mremap without EVENT_REMAP), EX_UNREGISTER; HIT_* bits
  remember which exemptions a landed store (or a device write: HIT_DMA) actually used, so
  the verdict can say so;
- `sd`: SD_WRITTEN (a CPU store landed since the last clear_refs), SD_ZAPPED (the PTE of a
  shared or file page was zapped since, which loses soft-dirty: reference SD4);
- `pagemap`: what the last pagemap read of the page returned (PM_*).
"""

from __future__ import annotations

from .kernel.common import (FORKING, O_IDEAL, O_LEGIT, P_STATUS, R_DETACHED, RUNNING, V_IDEAL,
                            V_LEGIT,
                            V_VMA, W_PAGEMAP, W_SD, W_WP, ZERO_VALUE)

# ---- the `wt` record's bits
PROTECTED, REPORTED = 1, 2
EX_UNPOPULATED, EX_DISCARD, EX_FORK, EX_REMAP, EX_UNREGISTER, EX_DMA = 4, 8, 16, 32, 64, 128
EXEMPTIONS = {EX_UNPOPULATED: "untouched anonymous page without WP_UNPOPULATED",
              EX_DISCARD: "page discarded after protection",
              EX_FORK: "child forked without UFFD_FEATURE_EVENT_FORK",
              EX_REMAP: "moved by mremap without UFFD_FEATURE_EVENT_REMAP",
              EX_UNREGISTER: "range unregistered",
              EX_DMA: "device write through a pin"}
EX_ALL = EX_UNPOPULATED | EX_DISCARD | EX_FORK | EX_REMAP | EX_UNREGISTER
HIT_SHIFT = 8  # HIT bit of exemption X: X << HIT_SHIFT
HIT_ALL = (EX_ALL | EX_DMA) << HIT_SHIFT
SD_WRITTEN, SD_ZAPPED = 1, 2
PM_READ, PM_SOFT_DIRTY, PM_UFFD_WP, PM_PRESENT, PM_SWAP = 1, 2, 4, 8, 16


def _wt(m, p, v):
    return m.wt[0][p][v]


def _object_store(m, l, o, value):
    ob = m.ob[o]
    l[ob + O_IDEAL] = value
    l[ob + O_LEGIT] |= 1 << value


def store(m, l, p, v, value):
    """A CPU store by process p of `value` at virtual page v landed."""
    if m.tracking:
        w = _wt(m, p, v)
        l[w + W_SD] |= SD_WRITTEN
        wp = l[w + W_WP]
        if wp & EX_ALL and not wp & PROTECTED:
            l[w + W_WP] = wp | (wp & EX_ALL) << HIT_SHIFT
    if m.vpage_shared[v]:
        _object_store(m, l, m.pv_object[p][v], value)
        return
    base = m.pv[p][v]
    l[base + V_IDEAL] = value
    l[base + V_LEGIT] |= 1 << value


def inherit(m, l, parent, child, v, event_fork=False):
    """fork copied the parent's VMA for v: the child's ideal and legit values are the
    parent's at that moment (so concurrent parent stores before it are legit too).  A
    child forked with UFFD_FEATURE_EVENT_FORK keeps the write protection; without it a
    protected page is exempt in the child.  Soft-dirty is per mm: the child starts clean."""
    pb, cb = m.pv[parent][v], m.pv[child][v]
    l[cb + V_IDEAL] = l[pb + V_IDEAL]
    l[cb + V_LEGIT] = l[pb + V_LEGIT]
    if m.tracking:
        wp = l[_wt(m, parent, v) + W_WP]
        l[_wt(m, child, v) + W_WP] = (wp & (PROTECTED | REPORTED | EX_ALL) if event_fork
                                      else EX_FORK if wp & PROTECTED else 0)


def detach_references(m, l, p, v):
    """The owner changed its mapping at (p, v) itself (MADV_DONTNEED, munmap): references
    it holds there no longer promise coherence with what it maps next.  Only coherent
    references (the ones pin-coherent judges) carry the mark: on the others it would only
    split states."""
    for r, ix in enumerate(m.refix):
        if m.ref_coherent[r] and m.ref_owner[r] == p and m.ref_vpage[r] == v and l[ix]:
            l[ix + R_DETACHED] = 1


def discard(m, l, p, v):
    """MADV_DONTNEED: the next touch reads zeroes (anonymous memory) or the object's data
    (a private mapping of an object); a shared mapping's data stays in the object.  A
    discarded private page's stores are gone (no soft-dirty to report: reference SD5) and
    a protected one is exempt (P1 (b)).  The owner's references there are detached."""
    detach_references(m, l, p, v)
    if m.vpage_shared[v]:
        return
    l[m.pv[p][v] + V_IDEAL] = ZERO_VALUE if m.pv_object[p][v] < 0 else m.follow_value
    if m.tracking:
        w = _wt(m, p, v)
        l[w + W_SD] = 0
        wp = l[w + W_WP]
        if wp & PROTECTED:
            l[w + W_WP] = (wp & HIT_ALL) | EX_DISCARD


def zapped(m, l, p, v):
    """The PTE of a shared or file page was zapped (DONTNEED of a shared mapping, reclaim):
    its soft-dirty bit is gone while the data stays (reference SD4)."""
    if m.tracking:
        w = _wt(m, p, v)
        if l[w + W_SD] & SD_WRITTEN:
            l[w + W_SD] |= SD_ZAPPED


def unmapped(m, l, p, v):
    """munmap: the VMA is gone; nothing is tracked at the address any more."""
    detach_references(m, l, p, v)
    if m.tracking:
        w = _wt(m, p, v)
        l[w + W_WP] &= HIT_ALL
        l[w + W_SD] = 0


# ----------------------------------------------------------------------------- write tracking
def protected(m, l, p, v, applied):
    """UFFDIO_WRITEPROTECT(MODE_WP) on (p, v): a new protection epoch; `applied` False when
    the kernel skipped the page (a none anonymous PTE without markers: exemption)."""
    w = _wt(m, p, v)
    l[w + W_WP] = (l[w + W_WP] & HIT_ALL) | (PROTECTED if applied else EX_UNPOPULATED)


def unprotected(m, l, p, v, why=0):
    """UFFDIO_WRITEPROTECT clearing WP (why 0), or unregistration (why EX_UNREGISTER), or
    mremap without EVENT_REMAP (EX_REMAP)."""
    w = _wt(m, p, v)
    wp = l[w + W_WP]
    l[w + W_WP] = (wp & HIT_ALL) | (why if why and wp & PROTECTED else 0)


def reported(m, l, p, v):
    """A uffd-wp fault message for (p, v) was queued."""
    l[_wt(m, p, v) + W_WP] |= REPORTED


def moved(m, l, p, src, dst, keep):
    """mremap moved (p, src) to (p, dst): with EVENT_REMAP the tracking moves along,
    without it the moved page is exempt (the new VMA is not registered)."""
    ws, wd = _wt(m, p, src), _wt(m, p, dst)
    wp = l[ws + W_WP]
    l[wd + W_WP] = wp if keep else (wp & HIT_ALL) | (EX_REMAP if wp & PROTECTED else 0)
    l[wd + W_SD] = l[ws + W_SD]
    l[ws + W_WP] = wp & HIT_ALL
    l[ws + W_SD] = 0


def new_memory(m, l, p, v):
    """New memory at (p, v) (mmap, the destination of mremap): it counts as changed for
    soft-dirty (that is what VM_SOFTDIRTY on new VMAs is for)."""
    l[_wt(m, p, v) + W_SD] = SD_WRITTEN


def soft_dirty_cleared(m, l, p):
    """clear_refs(4) of process p: a new soft-dirty epoch."""
    for w in m.wt[0][p]:
        l[w + W_SD] = 0


def pagemap_read(m, l, p, v, bits):
    """A pagemap read of (p, v) returned `bits` (PM_*)."""
    l[_wt(m, p, v) + W_PAGEMAP] = bits | PM_READ


def device_store(m, l, r, value):
    """A device wrote `value` through reference r: it is the owner's data at that address
    (while the owner still has it mapped): the object's data for a shared mapping."""
    o, v = m.ref_owner[r], m.ref_vpage[r]
    ob = m.pv[o][v]
    if m.tracking and l[_wt(m, o, v) + W_WP] & PROTECTED:
        l[_wt(m, o, v) + W_WP] |= EX_DMA << HIT_SHIFT  # not a CPU store: never reported
    if l[m.proc[o] + P_STATUS] in (RUNNING, FORKING) and l[ob + V_VMA]:
        if m.vpage_shared[v]:
            _object_store(m, l, m.pv_object[o][v], value)
            return
        l[ob + V_IDEAL] = value
        l[ob + V_LEGIT] |= 1 << value


# ----------------------------------------------------------------------------- display
_SHORT_EXEMPTIONS = ((EX_UNPOPULATED, "unpopulated"), (EX_DISCARD, "discarded"),
                     (EX_FORK, "forked"), (EX_REMAP, "moved"), (EX_UNREGISTER, "unregistered"))


def describe_wp(bits: int) -> str:
    """The uffd-wp tracker as a trace shows it, e.g. `protected, reported` or
    `exempt: discarded` (`-`: not protected)."""
    parts = [name for bit, name in ((PROTECTED, "protected"), (REPORTED, "reported"))
             if bits & bit]
    exempt = [name for bit, name in _SHORT_EXEMPTIONS if bits & bit]
    if exempt:
        parts.append("exempt: " + " ".join(exempt))
    return ", ".join(parts) or "-"


def describe_sd(bits: int) -> str:
    """The soft-dirty tracker: `written` (stored to since clear_refs), `zapped`."""
    return ", ".join(n for b, n in ((SD_WRITTEN, "written"), (SD_ZAPPED, "zapped"))
                     if bits & b) or "-"


def describe_pagemap(bits: int) -> str:
    """What the last pagemap read returned (`-`: never read)."""
    if not bits & PM_READ:
        return "-"
    return " ".join(n for b, n in ((PM_SOFT_DIRTY, "soft-dirty"), (PM_UFFD_WP, "uffd-wp"),
                                   (PM_PRESENT, "present"), (PM_SWAP, "swapped"))
                    if bits & b) or "none"

