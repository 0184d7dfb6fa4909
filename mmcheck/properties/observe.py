"""What a process would read through one PTE, in any of its forms."""

from __future__ import annotations

from ..model import codec
from ..model.kernel.common import F_CONTENT, F_SLOT, S_CONTENT, ZERO_VALUE


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
