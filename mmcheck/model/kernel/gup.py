"""get_user_pages (mm/gup.c): the slow path (__get_user_pages -> follow_page_pte, with
faultin_page on a PTE it cannot use) and the lockless GUP-fast path (gup_pte_range), one
step per shared-memory access that matters."""

from __future__ import annotations

from .. import codec
from ..codec import MARKER, NONE, PRESENT, SWAP, VM_WRITE, ZERO
from ..steps import (GUP, GUP_FAST, GUP_SLOW, GUPF_END, GUPF_GRAB, GUPF_READ, GUPF_RECHECK,
                     implements, starts)
from .common import (
    F_REF, LK_READ, P_HAS_PINNED, P_WP_SEQ, T_FOLL_COW, T_GUP_PAGE, T_LOCK, T_ORIG_PTE,
    T_SEQ, T_STEP, V_PTE, V_VMA, ZERO_REF, can_read_lock, op_done, put,
)
from .swap import do_swap_page
from .fault import do_wp_page, marker_fault, read_fault, write_fault_none


@starts("gup")
def gup_start(m, s, t, op):
    """get_user_pages / pin_user_pages entry: GUP-fast first when asked, else slow GUP."""
    if op.fast:
        return gup_fast_begin(m, s, t, op)
    return follow_page_pte(m, s, t, op)


@implements(GUP_SLOW)
def follow_page_pte(m, s, t, op):
    """__get_user_pages loop under mmap_lock (read): follow_page_pte under the PT lock
    takes the reference if the PTE allows it, otherwise faultin_page runs the fault
    (write fault, or FAULT_FLAG_UNSHARE for a R/O pin of a possibly shared page) and the
    loop retries."""
    p, v = m.t_proc[t], op.v
    b = m.th[t]
    if not can_read_lock(m, s, t):
        return None
    l = s[:]
    l[b + T_LOCK] = LK_READ
    if op.pin and m.track_has_pinned:
        l[m.proc[p] + P_HAS_PINNED] = 1  # 008cfe4418b3: set on FOLL_PIN
    base = m.pv[p][v]
    vma = l[base + V_VMA]
    if not vma or (op.write and not vma & VM_WRITE):
        op_done(m, l, t)
        return GUP.efault, l
    # 17839856fd58 (5.8): should_force_cow_break -> FOLL_WRITE on every COW mapping
    # (is_cow_mapping: not on a shared one);
    # can_follow_write_pte then also accepts a R/O PTE that is dirty after our own COW
    # (FOLL_COW), which is how a R/O private VMA gets its copy
    foll_write = op.write or (m.gup_read_breaks_cow and codec.is_cow_mapping(vma))
    pte = l[base + V_PTE]
    if foll_write and not op.write and l[b + T_FOLL_COW] and codec.dirty(pte):
        foll_write = False
    k = codec.kind(pte)
    if k == NONE:
        return write_fault_none(m, l, t, p, v) if foll_write else read_fault(m, l, t, p, v)
    if k == SWAP:
        return do_swap_page(m, l, t, op, write=foll_write)
    if k == MARKER:
        return marker_fault(m, l, t, p, v, write=foll_write)
    if k != PRESENT and k != ZERO:
        raise codec.unhandled(pte, "follow_page_pte")
    if not codec.write(pte):
        if foll_write:
            return do_wp_page(m, l, t, op, unshare=False)
        if m.must_unshare(m, l, pte, op, vma):
            return do_wp_page(m, l, t, op, unshare=True)
    if k == ZERO:
        l[m.refix[op.ref]] = ZERO_REF  # follow_page_pte returns the zero page
    else:
        f = codec.frame(pte)
        l[m.fr[f] + F_REF] += op.bias  # try_grab_page: +1, or +GUP_PIN_COUNTING_BIAS
        l[m.refix[op.ref]] = f + 1
    op_done(m, l, t)
    return (GUP.pin if op.pin else GUP.get), l


def gup_fast_begin(m, s, t, op):
    """gup_fast entry: FOLL_PIN marks the mm as having pinned pages (5.9) and samples
    mm->write_protect_seq, giving up at once if fork is in its write section (5.11)."""
    p = m.t_proc[t]
    l = s[:]
    b = m.th[t]
    if op.pin and m.track_has_pinned:
        l[m.proc[p] + P_HAS_PINNED] = 1
    if op.pin and m.gup_fast_seqcount:
        seq = l[m.proc[p] + P_WP_SEQ]
        if seq & 1:
            l[b + T_STEP] = GUP_SLOW
            return GUP_FAST.seq_odd, l
        l[b + T_SEQ] = seq
    l[b + T_STEP] = GUPF_READ
    return GUP_FAST.begin, l


def _fall_back(m, l, t, drop):
    b = m.th[t]
    if drop:
        put(m, l, l[b + T_GUP_PAGE] - 1, drop)
    l[b + T_GUP_PAGE] = l[b + T_ORIG_PTE] = l[b + T_SEQ] = 0
    l[b + T_STEP] = GUP_SLOW


@implements(GUPF_READ)
def gup_fast_read_pte(m, s, t, op):
    """gup_pte_range: lockless PTE read; give up on anything but a normal present page
    (none, the zero page (pte_special), a swap entry, a marker) and on a R/O PTE when
    writing (5.8: every GUP-fast is a write lookup)."""
    p, v = m.t_proc[t], op.v
    pte = s[m.pv[p][v] + V_PTE]
    l = s[:]
    if not codec.is_present(pte) or (
            (op.write or m.gup_read_breaks_cow) and not codec.write(pte)):
        _fall_back(m, l, t, 0)
        return GUP_FAST.unusable, l
    b = m.th[t]
    l[b + T_GUP_PAGE] = codec.frame(pte) + 1
    l[b + T_ORIG_PTE] = codec.flags(pte)
    l[b + T_STEP] = GUPF_GRAB
    return GUP_FAST.read, l


@implements(GUPF_GRAB)
def gup_fast_try_grab(m, s, t, op):
    """try_grab_folio: speculative reference, fails only on a freed page (ref 0).
    Before the generic RCU GUP-fast (x86 until e585513b76f7, 4.13) it was a plain
    get_page() that relied on IRQs-off holding off the TLB-flush IPI, with no re-check."""
    b = m.th[t]
    f = s[b + T_GUP_PAGE] - 1
    l = s[:]
    if not m.gup_fast_recheck:
        l[m.fr[f] + F_REF] += op.bias
        l[b + T_STEP] = GUPF_END
        return GUP_FAST.get_page, l
    if l[m.fr[f] + F_REF] == 0:
        _fall_back(m, l, t, 0)
        return GUP_FAST.freed, l
    l[m.fr[f] + F_REF] += op.bias
    l[b + T_STEP] = GUPF_RECHECK
    return GUP_FAST.grab, l


@implements(GUPF_RECHECK)
def gup_fast_recheck(m, s, t, op):
    """gup_pte_range: re-read the PTE (drop and give up if it changed); 5.19: a R/O pin on
    a page that is not PageAnonExclusive backs off too (gup_must_unshare)."""
    p, v = m.t_proc[t], op.v
    b = m.th[t]
    l = s[:]
    pte = l[m.pv[p][v] + V_PTE]
    if not codec.same(pte, l[b + T_GUP_PAGE], l[b + T_ORIG_PTE]):
        _fall_back(m, l, t, op.bias)
        return GUP_FAST.changed, l
    if not codec.write(pte) and m.must_unshare(m, l, pte, op, None):  # no VMA here
        _fall_back(m, l, t, op.bias)
        return GUP_FAST.must_unshare, l
    l[b + T_STEP] = GUPF_END
    return GUP_FAST.unchanged, l


@implements(GUPF_END)
def gup_fast_end(m, s, t, op):
    """lockless_pages_from_mm: after re-enabling IRQs, FOLL_PIN re-reads write_protect_seq;
    if fork ran meanwhile, unpin and let slow GUP (blocked behind fork) do it (5.11)."""
    p = m.t_proc[t]
    b = m.th[t]
    l = s[:]
    if op.pin and m.gup_fast_seqcount and l[m.proc[p] + P_WP_SEQ] != l[b + T_SEQ]:
        _fall_back(m, l, t, op.bias)
        return GUP_FAST.seq_changed, l
    l[m.refix[op.ref]] = l[b + T_GUP_PAGE]
    op_done(m, l, t)
    return (GUP_FAST.pinned if op.pin else GUP_FAST.got), l
