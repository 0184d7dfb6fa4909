"""Page faults (mm/memory.c): the CPU access that needs one, do_anonymous_page,
do_read_fault, do_shared_fault, do_cow_fault, do_wp_page (wp_page_shared, wp_page_copy).

Granularity follows the locks (reference §1.2-1.3): a fault runs under mmap_lock (read);
what runs under one PT lock hold is one step.  wp_page_copy is three steps: allocate and
copy outside the PT lock (a DMA write to the old page after this point is lost to the
faulting process), install under the PT lock, drop the extra reference after unlocking.
A fault on an object mapping is two: __do_fault finds the object's page (shmem_fault,
filemap_fault, hugetlb_no_page: a page cache hit, a hole filled with a zeroed page, or a
shmem page read back from swap) and returns it locked and referenced, then finish_fault
maps it under the PT lock (or the private copy do_cow_fault made of it).
"""

from __future__ import annotations

from .. import codec, ghost
from ..codec import (DIRTY, MARKER, NONE, PG_ANON_EXCLUSIVE, PG_HUGETLB, PG_LOCKED, PG_THP,
                     PRESENT, SOFT_DIRTY, SWAP, UFFD_WP, VM_ANON_VMA, VM_SHARED, VM_WRITE,
                     WRITE, ZERO)
from ..steps import (CPU, DO_ANONYMOUS_PAGE, DO_COW_FAULT, DO_READ_FAULT, DO_SHARED_FAULT,
                     DO_WP_PAGE, FILE_FAULT_MAP, FINISH_FAULT, PTE_MARKER, WP_COPY_ALLOC,
                     WP_COPY_INSTALL, WP_COPY_PUT, WP_PAGE_COPY, implements, starts)
from .common import (
    F_CONTENT, F_FLAGS, F_MAP, F_REF, LK_READ, O_ENTRY, S_CONTENT, T_FAULT_KIND, T_FAULT_PAGE,
    T_LOCK, T_NEW_PAGE, T_OLD_PAGE, T_ORIG_PTE, T_STEP, T_UNSHARE, V_PTE, V_VMA, ZERO_REF,
    ZERO_VALUE, alloc_fresh, can_read_lock, fault_done, observers_besides, op_done, put,
    segv, swap_free, vm_page_prot_writable,
)
from .swap import do_swap_page
from .userfaultfd import handle_userfault


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
        l = s[:]
        op_done(m, l, t)
        return CPU.load, l
    if not can_read_lock(m, s, t):
        return None
    l = s[:]
    if k == SWAP:
        l[m.th[t] + T_LOCK] = LK_READ
        return do_swap_page(m, l, t, op, write=False)
    if k == NONE:
        return read_fault(m, l, t, p, v)
    if k == MARKER:
        return marker_fault(m, l, t, p, v, write=False)
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
        l = s[:]
        val = op.val if op.epoch_ix is None else op.val + s[op.epoch_ix]
        l[m.fr[f] + F_CONTENT] = val
        l[base + V_PTE] = codec.hw_dirty(pte)
        ghost.store(m, l, p, v, val)
        op_done(m, l, t)
        return CPU.store, l
    if not can_read_lock(m, s, t):
        return None
    l = s[:]
    k = codec.kind(pte)
    if k == NONE:
        return write_fault_none(m, l, t, p, v)
    if k == MARKER:
        return marker_fault(m, l, t, p, v, write=True)
    l[m.th[t] + T_LOCK] = LK_READ
    if k == SWAP:
        return do_swap_page(m, l, t, op, write=True)
    if k == PRESENT or k == ZERO:
        return do_wp_page(m, l, t, op, unshare=False)
    raise codec.unhandled(pte, "cpu_write")


# ----------------------------------------------------------------------------- missing PTE
# what finish_fault does with the page __do_fault found (the thread's `fault_kind`)
FAULT_READ, FAULT_SHARED_WRITE, FAULT_COW = 1, 2, 3
_HANDLER = {FAULT_READ: DO_READ_FAULT, FAULT_SHARED_WRITE: DO_SHARED_FAULT,
            FAULT_COW: DO_COW_FAULT}


def read_fault(m, l, t, p, v):
    """A read fault on an empty PTE: the zero page (private anonymous memory) or
    do_read_fault (an object mapping)."""
    o = m.pv_object[p][v]
    if o < 0:
        base = m.pv[p][v]
        l[base + V_PTE] = codec.zero_page()  # do_anonymous_page, read fault (P2)
        if m.vpage_class[v] & PG_THP:
            # the huge zero page: do_huge_pmd_anonymous_page does anon_vma_prepare first
            l[base + V_VMA] |= VM_ANON_VMA
        return DO_ANONYMOUS_PAGE.read, l
    return do_fault(m, l, t, p, v, o, FAULT_READ)


def write_fault_none(m, l, t, p, v):
    """A write fault on an empty PTE: do_anonymous_page, do_shared_fault (a shared
    mapping) or do_cow_fault (a private mapping of an object)."""
    o = m.pv_object[p][v]
    if o < 0:
        do_anonymous_page_write(m, l, p, v)
        return DO_ANONYMOUS_PAGE.write, l
    return do_fault(m, l, t, p, v, o, FAULT_SHARED_WRITE if m.vpage_shared[v] else FAULT_COW)


def marker_fault(m, l, t, p, v, write):
    """handle_pte_marker on a uffd-wp PTE marker: in a VMA no longer registered it is just
    cleared (and the access retried); else do_pte_missing with the marker as orig_pte -
    anonymous memory gets the zero page (read) or a new page (write) mapped R/O with WP,
    an object mapping faults its page in through __do_fault and finish_fault maps it with
    WP (the retried store then takes the uffd-wp fault)."""
    base = m.pv[p][v]
    vma, pte = l[base + V_VMA], l[base + V_PTE]
    if not codec.uffd_pte_wp(vma, pte):
        l[base + V_PTE] = NONE
        return PTE_MARKER.cleared, l
    o = m.pv_object[p][v]
    if o >= 0:
        if write:
            kind = FAULT_SHARED_WRITE if m.vpage_shared[v] else FAULT_COW
        else:
            kind = FAULT_READ
        return do_fault(m, l, t, p, v, o, kind, codec.flags(pte))
    if not write:
        l[base + V_PTE] = codec.zero_page(UFFD_WP)
        if m.vpage_class[v] & PG_THP:
            l[base + V_VMA] |= VM_ANON_VMA
        return PTE_MARKER.anon_read, l
    do_anonymous_page_write(m, l, p, v)
    l[base + V_PTE] = codec.mkuffd_wp(l[base + V_PTE])
    return PTE_MARKER.anon_write, l


def do_anonymous_page_write(m, l, p, v):
    """do_anonymous_page, write fault (P1): anon_vma_prepare, a new zeroed page of the
    VMA's class (a THP or hugetlb fault for those VMAs), exclusive (5.19:
    page_add_new_anon_rmap sets PageAnonExclusive), writable and dirty if VM_WRITE."""
    f = alloc_fresh(m, l, ZERO_VALUE, m.vpage_class[v] | (PG_ANON_EXCLUSIVE if m.ae else 0))
    l[m.pv[p][v] + V_VMA] |= VM_ANON_VMA
    _map_new_page(m, l, p, v, f)


def _map_new_page(m, l, p, v, f):
    l[m.fr[f] + F_MAP] = 1
    base = m.pv[p][v]
    l[base + V_PTE] = codec.present(f, codec.dirty_bits(l[base + V_VMA] & VM_WRITE))


def do_fault(m, l, t, p, v, o, kind, orig=0):
    """do_read_fault / do_shared_fault / do_cow_fault, first step: __do_fault gets the
    object's page locked with a reference (None: lock_page sleeps, reclaim or another fault
    holds it).  shmem_fault (mm/shmem.c shmem_get_folio_gfp) fills a hole with a zeroed
    page and reads a swapped-out page back (shmem_swapin_folio: the page cache's swap entry
    is replaced by the page and swap_free()d); filemap_fault reads a hole as zeroes too.
    do_cow_fault has already done anon_vma_prepare and allocated its copy, which it fills
    here (copy_user_highpage).  `orig`: the flags of the PTE marker the fault replaces
    (vmf->orig_pte), whose uffd-wp bit finish_fault keeps."""
    ob = m.ob[o]
    entry = l[ob + O_ENTRY]
    k = codec.kind(entry)
    fn = _HANDLER[kind]
    if k == PRESENT:
        f = codec.frame(entry)
        fb = m.fr[f]
        if l[fb + F_FLAGS] & PG_LOCKED:
            return None
        l[fb + F_REF] += 1
        l[fb + F_FLAGS] |= PG_LOCKED
        outcome = fn.hit
    elif k == NONE or k == SWAP:
        content = ZERO_VALUE if k == NONE else l[m.sl[codec.slot(entry)] + S_CONTENT]
        f = alloc_fresh(m, l, content, m.obj_flags[o] | PG_LOCKED)
        l[m.fr[f] + F_REF] += 1  # the page cache's and ours
        if k == SWAP:
            swap_free(m, l, codec.slot(entry))
        l[ob + O_ENTRY] = codec.present(f)
        outcome = fn.hole if k == NONE else fn.swapin
    else:
        raise codec.unhandled(entry, "__do_fault")
    tb = m.th[t]
    if kind == FAULT_COW:
        l[m.pv[p][v] + V_VMA] |= VM_ANON_VMA  # anon_vma_prepare
        cls = m.obj_flags[o] & PG_HUGETLB  # hugetlb_wp copies a huge page
        n = alloc_fresh(m, l, l[m.fr[f] + F_CONTENT], cls | (PG_ANON_EXCLUSIVE if m.ae else 0))
        l[tb + T_NEW_PAGE] = n + 1
    l[tb + T_FAULT_PAGE] = f + 1
    l[tb + T_FAULT_KIND] = kind
    l[tb + T_ORIG_PTE] = orig
    l[tb + T_LOCK] = LK_READ
    l[tb + T_STEP] = FILE_FAULT_MAP
    return outcome, l


@implements(FILE_FAULT_MAP)
def finish_fault(m, s, t, op):
    """finish_fault -> do_set_pte under the PT lock, then unlock_page: back out if the PTE
    is no longer none; else map the private copy (do_cow_fault: writable and dirty if
    VM_WRITE, page_add_new_anon_rmap) or the object's page (page_add_file_rmap): writable
    and dirty on a write fault (do_shared_fault), else mk_pte(page, vm_page_prot):
    writable only for a shared writable mapping that wants no write notification.  A fault
    on a uffd-wp marker maps the page R/O with WP (do_set_pte: pte_mkuffd_wp)."""
    p, v = m.t_proc[t], op.v
    base = m.pv[p][v]
    l = s[:]
    tb = m.th[t]
    f, new, kind = l[tb + T_FAULT_PAGE] - 1, l[tb + T_NEW_PAGE] - 1, l[tb + T_FAULT_KIND]
    wp = codec.uffd_pte_wp(l[base + V_VMA], l[tb + T_ORIG_PTE])
    fb = m.fr[f]
    l[fb + F_FLAGS] &= ~PG_LOCKED
    if not codec.same(l[base + V_PTE], 0, l[tb + T_ORIG_PTE] or NONE):  # VM_FAULT_NOPAGE
        put(m, l, f, 1)
        if new >= 0:
            put(m, l, new, 1)
        fault_done(m, l, t, op, wrote=False)
        return FINISH_FAULT.back_out, l
    vma = l[base + V_VMA]
    if kind == FAULT_COW:
        put(m, l, f, 1)  # do_cow_fault: unlock_page + put_page of the page cache page
        l[m.fr[new] + F_MAP] = 1
        l[base + V_PTE] = codec.present(new, codec.dirty_bits(vma & VM_WRITE))
        outcome = FINISH_FAULT.cow
    else:
        l[fb + F_MAP] += 1  # the fault's reference is the mapping's now
        if kind == FAULT_SHARED_WRITE:
            l[base + V_PTE] = codec.present(f, codec.dirty_bits(vma & VM_WRITE))
            outcome = FINISH_FAULT.map_dirty
        elif vm_page_prot_writable(m, vma):
            l[base + V_PTE] = codec.present(f, WRITE)
            outcome = FINISH_FAULT.map_writable
        else:
            l[base + V_PTE] = codec.present(f)
            outcome = FINISH_FAULT.map_ro
    if wp:
        l[base + V_PTE] = codec.mkuffd_wp(l[base + V_PTE])
        outcome = FINISH_FAULT.map_wp
    fault_done(m, l, t, op, wrote=False)
    return outcome, l


# ----------------------------------------------------------------------------- write-protected PTE
def do_wp_page(m, l, t, op, unshare):
    """do_wp_page under the PT lock: reuse the page (wp_page_reuse) or start wp_page_copy.

    With FAULT_FLAG_UNSHARE (5.19, c89357e27f20) "reuse" only marks the page exclusive and
    the copy is installed read-only."""
    p, v = m.t_proc[t], op.v
    base = m.pv[p][v]
    pte = l[base + V_PTE]
    f = codec.frame_or_none(pte)
    if not unshare and codec.uffd_pte_wp(l[base + V_VMA], pte):
        # userfaultfd_pte_wp (hugetlb_wp: huge_pte_uffd_wp): the monitor must resolve it
        return handle_userfault(m, l, t, op)
    if l[base + V_VMA] & VM_SHARED:
        # wp_page_shared (hugetlb: hugetlb_wp's VM_MAYSHARE case): no COW; page_mkwrite if
        # the filesystem has one, then wp_page_reuse: maybe_mkwrite(pte_mkdirty(entry))
        l[base + V_PTE] = codec.mkwrite(codec.mkdirty(pte))
        fault_done(m, l, t, op, wrote=True)
        return DO_WP_PAGE.shared, l
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
    l = s[:]
    b = m.th[t]
    l[m.pv[m.t_proc[t]][op.v] + V_VMA] |= VM_ANON_VMA  # wp_page_copy: anon_vma_prepare
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
    l = s[:]
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
        # R/O; soft-dirty (and uffd-wp) carried over from the old PTE (c89357e27f20);
        # hugetlb_wp dropped uffd-wp until 6.4 (reference B6)
        bits = codec.tracking_bits(l[b + T_ORIG_PTE])
        if (old != ZERO_REF and l[m.fr[old - 1] + F_FLAGS] & PG_HUGETLB
                and not m.hugetlb_unshare_keeps_wp):
            bits &= ~UFFD_WP
        l[base + V_PTE] = codec.present(new, bits)
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
    l = s[:]
    b = m.th[t]
    put(m, l, l[b + T_OLD_PAGE] - 1, 1)
    fault_done(m, l, t, op, wrote=l[b + T_UNSHARE] == 0)
    return WP_PAGE_COPY.put, l
