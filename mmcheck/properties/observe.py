"""What a process would read through one PTE, in any of its forms, and what a memory
object holds."""

from __future__ import annotations

from ..model import codec
from ..model.kernel.common import F_CONTENT, F_SLOT, O_ENTRY, S_CONTENT, ZERO_VALUE


def swapcache_frame(m, s, slot: int) -> int:
    """The frame in the swapcache for `slot`, or -1."""
    want = slot + 1
    for f, b in enumerate(m.fr):
        if s[b + F_SLOT] == want:
            return f
    return -1


def pte_value(m, s, pte: int, missing: int = ZERO_VALUE) -> int:
    """The value a read through `pte` returns: the mapped page, the zero page, for a swap
    entry the swapcache page (else what was written to the slot); `missing` (what a fault
    maps) for none."""
    k = codec.kind(pte)
    if k == codec.PRESENT:
        return s[m.fr[codec.frame(pte)] + F_CONTENT]
    if k == codec.ZERO:
        return ZERO_VALUE
    if k == codec.SWAP:
        slot = codec.slot(pte)
        f = swapcache_frame(m, s, slot)
        return s[m.fr[f] + F_CONTENT] if f >= 0 else s[m.sl[slot] + S_CONTENT]
    if k == codec.NONE:
        return missing
    raise codec.unhandled(pte, "pte_value")


def object_value(m, s, o: int) -> int:
    """What memory object o holds: its page cache page, or for a shmem page in swap what
    was written to the slot, or zeroes for a hole (a fault maps exactly this)."""
    return pte_value(m, s, s[m.ob[o] + O_ENTRY])


def object_page(m, s, o: int) -> int:
    """The page a fault on a mapping of object o would map (frame + 1), or 0 when that
    would be a new page (a hole, or a shmem page only on swap)."""
    entry = s[m.ob[o] + O_ENTRY]
    k = codec.kind(entry)
    if k == codec.PRESENT:
        return codec.frame(entry) + 1
    if k == codec.SWAP:
        return swapcache_frame(m, s, codec.slot(entry)) + 1
    if k == codec.NONE:
        return 0
    raise codec.unhandled(entry, "object_page")
