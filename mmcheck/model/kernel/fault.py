"""Page faults (mm/memory.c): the CPU access that needs one, do_anonymous_page,
do_read_fault, do_cow_fault, do_wp_page and wp_page_copy.

Granularity follows the locks (reference §1.2-1.3): a fault runs under mmap_lock (read);
what runs under one PT lock hold is one step.  wp_page_copy is three steps: allocate and
copy outside the PT lock (a DMA write to the old page after this point is lost to the
faulting process), install under the PT lock, drop the extra reference after unlocking.
"""

from __future__ import annotations

from .. import codec, ghost
from ..codec import (DIRTY, NONE, PG_ANON_EXCLUSIVE, PG_HUGETLB, PRESENT, SOFT_DIRTY, SWAP,
                     VM_WRITE, WRITE, ZERO)
from ..steps import (CPU, DO_ANONYMOUS_PAGE, DO_COW_FAULT, DO_READ_FAULT, DO_WP_PAGE,
                     WP_COPY_ALLOC, WP_COPY_INSTALL, WP_COPY_PUT, WP_PAGE_COPY, implements,
                     starts)
from .common import (
    F_CONTENT, F_FLAGS, F_MAP, F_REF, LK_READ, T_LOCK, T_NEW_PAGE, T_OLD_PAGE, T_ORIG_PTE,
    T_STEP, T_UNSHARE, V_PTE, V_VMA, ZERO_REF, ZERO_VALUE, alloc_fresh, can_read_lock,
    fault_done, observers_besides, op_done, put, segv,
)
from .swap import do_swap_page


# ----------------------------------------------------------------------------- CPU access
@starts("read")
def cpu_read(m, s, t, op):
    """A load: hits any present PTE; an empty one read-faults (the zero page, or the
    pagecache page of a file mapping); a swap entry swaps the page in."""
    p, v = m.t_proc[t], op.v
    base = m.pv[p][v]
    if not s[base + V_VMA]:
        return segv(m, s, t)
    pte = s[base + V_PTE]
    k = codec.kind(pte)
    if k == PRESENT or k == ZERO:
        l = list(s)
        op_done(m, l, t)
        return CPU.load, l
    if not can_read_lock(m, s, t):
        return None
    l = list(s)
    if k == SWAP:
        l[m.th[t] + T_LOCK] = LK_READ
        return do_swap_page(m, l, t, op, write=False)
    if k == NONE:
        return read_fault(m, l, p, v)
    raise codec.unhandled(pte, "cpu_read")


@starts("write")
def cpu_write(m, s, t, op):
    """A store: lands on a writable PTE; otherwise a write fault (do_anonymous_page,
    do_wp_page, do_swap_page) runs under mmap_lock and the store is retried."""
    p, v = m.t_proc[t], op.v
    base = m.pv[p][v]
    if not s[base + V_VMA] & VM_WRITE:
        return segv(m, s, t)  # no VM_WRITE: the store never lands
    pte = s[base + V_PTE]
    f = codec.writable_frame(pte)
    if f >= 0:
        l = list(s)
        val = op.val if op.epoch_ix is None else op.val + s[op.epoch_ix]
        l[m.fr[f] + F_CONTENT] = val
        l[base + V_PTE] = codec.hw_dirty(pte)
        ghost.store(m, l, p, v, val)
        op_done(m, l, t)
        return CPU.store, l
    if not can_read_lock(m, s, t):
        return None
    l = list(s)
    k = codec.kind(pte)
    if k == NONE:
        return write_fault_none(m, l, p, v)
    l[m.th[t] + T_LOCK] = LK_READ
    if k == SWAP:
        return do_swap_page(m, l, t, op, write=True)
    if k == PRESENT or k == ZERO:
        return do_wp_page(m, l, t, op, unshare=False)
    raise codec.unhandled(pte, "cpu_write")


# ----------------------------------------------------------------------------- missing PTE
def read_fault(m, l, p, v):
    """A read fault on an empty PTE: the zero page (anonymous) or the pagecache page (a
    private file mapping)."""
    f = m.vpage_file[v]
    if f is None:
        l[m.pv[p][v] + V_PTE] = codec.zero_page()  # do_anonymous_page, read fault (P2)
        return DO_ANONYMOUS_PAGE.read, l
    do_read_fault(m, l, p, v, f)
    return DO_READ_FAULT.map, l


def write_fault_none(m, l, p, v):
    """A write fault on an empty PTE: do_anonymous_page, or do_cow_fault for a private
    file mapping."""
    if m.vpage_file[v] is None:
        do_anonymous_page_write(m, l, p, v)
        return DO_ANONYMOUS_PAGE.write, l
    do_cow_fault(m, l, p, v)
    return DO_COW_FAULT.copy, l


def do_anonymous_page_write(m, l, p, v):
    """do_anonymous_page, write fault (P1): a new zeroed page of the VMA's class (a THP
    or hugetlb fault for those VMAs), exclusive (5.19: page_add_new_anon_rmap sets
    PageAnonExclusive), writable and dirty if VM_WRITE."""
    f = alloc_fresh(m, l, ZERO_VALUE, m.vpage_class[v] | (PG_ANON_EXCLUSIVE if m.ae else 0))
    _map_new_page(m, l, p, v, f)


def _map_new_page(m, l, p, v, f):
    l[m.fr[f] + F_MAP] = 1
    base = m.pv[p][v]
    l[base + V_PTE] = codec.present(f, codec.dirty_bits(l[base + V_VMA] & VM_WRITE))


def do_read_fault(m, l, p, v, f):
    """do_read_fault -> filemap_map_pages: the pagecache page mapped read-only."""
    b = m.fr[f]
    l[b + F_REF] += 1
    l[b + F_MAP] += 1
    l[m.pv[p][v] + V_PTE] = codec.present(f)


def do_cow_fault(m, l, p, v):
    """do_cow_fault: a write to a private file mapping copies the pagecache page into a
    new anonymous page right away."""
    content = l[m.fr[m.vpage_file[v]] + F_CONTENT]
    f = alloc_fresh(m, l, content, PG_ANON_EXCLUSIVE if m.ae else 0)
    _map_new_page(m, l, p, v, f)


# ----------------------------------------------------------------------------- write-protected PTE
def do_wp_page(m, l, t, op, unshare):
    """do_wp_page under the PT lock: reuse the page (wp_page_reuse) or start wp_page_copy.

    With FAULT_FLAG_UNSHARE (5.19, c89357e27f20) "reuse" only marks the page exclusive and
    the copy is installed read-only."""
    p, v = m.t_proc[t], op.v
    base = m.pv[p][v]
    pte = l[base + V_PTE]
    f = codec.frame_or_none(pte)
    if f >= 0:
        fb = m.fr[f]
        reuse = m.can_reuse(m, l, f)
        if reuse is None:
            return None  # lock_page sleeps: the page is locked by reclaim or swap-in
        if reuse:
            if m.ae:
                l[fb + F_FLAGS] |= PG_ANON_EXCLUSIVE  # page_move_anon_rmap + SetPageAnonExclusive
            if not unshare:
                # wp_page_reuse: maybe_mkwrite(pte_mkdirty(entry))
                pte = codec.mkdirty(pte)
                l[base + V_PTE] = codec.mkwrite(pte) if l[base + V_VMA] & VM_WRITE else pte
            fault_done(m, l, t, op, wrote=not unshare)
            return (DO_WP_PAGE.unshare_exclusive if unshare else DO_WP_PAGE.reuse), l
        l[fb + F_REF] += 1  # get_page(old) before dropping the PT lock
        old = f + 1
    elif codec.is_zero(pte):
        old = ZERO_REF  # the zero page is never reused: wp_page_copy zero-fills
    else:
        raise codec.unhandled(pte, "do_wp_page")
    b = m.th[t]
    l[b + T_OLD_PAGE] = old
    l[b + T_ORIG_PTE] = codec.flags(pte)
    l[b + T_UNSHARE] = 1 if unshare else 0
    l[b + T_STEP] = WP_COPY_ALLOC
    return (DO_WP_PAGE.unshare_copy if unshare else DO_WP_PAGE.copy), l


@implements(WP_COPY_ALLOC)
def wp_page_copy_alloc(m, s, t, op):
    """wp_page_copy P4.2: allocate the new page and copy the old contents, outside the PT
    lock (a DMA write to the old page after this point is lost to the faulting process)."""
    l = list(s)
    b = m.th[t]
    old = l[b + T_OLD_PAGE]
    if old == ZERO_REF:
        content, cls = ZERO_VALUE, 0
    else:
        content = l[m.fr[old - 1] + F_CONTENT]
        # a hugetlb COW copies the huge page; a THP COW splits and copies one small page
        cls = l[m.fr[old - 1] + F_FLAGS] & PG_HUGETLB
    n = alloc_fresh(m, l, content, cls)
    l[b + T_NEW_PAGE] = n + 1
    l[b + T_STEP] = WP_COPY_INSTALL
    return WP_PAGE_COPY.alloc, l


def same_pte(pte, page_ptr, orig_flags):
    """pte_same() against the PTE a fault started from, remembered as its page (a frame
    pointer, or ZERO_REF: the zero page's PTE has no target) and its flag bits."""
    return codec.same(pte, page_ptr if page_ptr > 0 else 0, orig_flags)


@implements(WP_COPY_INSTALL)
def wp_page_copy_install(m, s, t, op):
    """wp_page_copy P4.3-6 under the PT lock: if the PTE changed, back out; else
    ptep_clear_flush, map the copy (exclusive; writable+dirty, or R/O for unshare) and
    page_remove_rmap the old page."""
    p, v = m.t_proc[t], op.v
    base = m.pv[p][v]
    l = list(s)
    b = m.th[t]
    old, new = l[b + T_OLD_PAGE], l[b + T_NEW_PAGE] - 1
    if not codec.same(l[base + V_PTE], old if old > 0 else 0, l[b + T_ORIG_PTE]):
        put(m, l, new, 1)
        l[b + T_NEW_PAGE] = 0
        if old == ZERO_REF:
            fault_done(m, l, t, op, wrote=False)
        else:
            l[b + T_UNSHARE] = 2  # backing out: no VM_FAULT_WRITE
            l[b + T_STEP] = WP_COPY_PUT  # the extra reference goes after unlock
        return WP_PAGE_COPY.back_out, l
    unshare = l[b + T_UNSHARE]
    nb = m.fr[new]
    l[nb + F_MAP] = 1
    if m.ae:
        l[nb + F_FLAGS] |= PG_ANON_EXCLUSIVE
    if unshare:
        # R/O; soft-dirty (and uffd-wp) carried over from the old PTE (c89357e27f20)
        l[base + V_PTE] = codec.present(new, codec.tracking_bits(l[b + T_ORIG_PTE]))
    else:
        l[base + V_PTE] = codec.present(new, DIRTY | SOFT_DIRTY | (
            WRITE if l[base + V_VMA] & VM_WRITE else 0))
    l[b + T_NEW_PAGE] = 0
    if old == ZERO_REF:
        fault_done(m, l, t, op, wrote=not unshare)
        return WP_PAGE_COPY.install_zero, l
    seen_by = observers_besides(m, l, old - 1, p)
    l[m.fr[old - 1] + F_MAP] -= 1  # page_remove_rmap(old_page)
    put(m, l, old - 1, 1)  # its mapping reference, still under the PT lock (TLB flushed)
    l[b + T_STEP] = WP_COPY_PUT
    return (WP_PAGE_COPY.install if seen_by == "other" else
            WP_PAGE_COPY.install_pin_lost if seen_by == "pin" else
            WP_PAGE_COPY.install_unnecessary), l


@implements(WP_COPY_PUT)
def wp_page_copy_put(m, s, t, op):
    """wp_page_copy P4.7: after pte_unmap_unlock, drop the extra reference do_wp_page took
    on the old page (5.10 mm/memory.c; the mapping reference went under the PT lock)."""
    l = list(s)
    b = m.th[t]
    put(m, l, l[b + T_OLD_PAGE] - 1, 1)
    fault_done(m, l, t, op, wrote=l[b + T_UNSHARE] == 0)
    return WP_PAGE_COPY.put, l
