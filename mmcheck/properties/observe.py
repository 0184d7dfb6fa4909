"""What a process would read through one PTE, in any of its forms."""

from __future__ import annotations

from ..state import FR_CONTENT, FR_SLOT, PTE_SHIFT, PTE_SWAP, PTE_ZERO, SL_CONTENT, ZERO_VALUE


def swapcache_frame(m, s, slot: int) -> int:
    """The frame in the swapcache for `slot`, or -1."""
    want = slot + 1
    for f, b in enumerate(m.fr):
        if s[b + FR_SLOT] == want:
            return f
    return -1


def pte_value(m, s, pte: int) -> int:
    """The value a read through `pte` returns: the mapped page, the zero page, for a swap
    entry the swapcache page (else what was written to the slot); zeroes for none."""
    if pte == 0:
        return ZERO_VALUE
    if pte & PTE_ZERO:
        return ZERO_VALUE
    if pte & PTE_SWAP:
        slot = (pte >> PTE_SHIFT) - 1
        f = swapcache_frame(m, s, slot)
        return s[m.fr[f] + FR_CONTENT] if f >= 0 else s[m.sl[slot] + SL_CONTENT]
    return s[m.fr[(pte >> PTE_SHIFT) - 1] + FR_CONTENT]
