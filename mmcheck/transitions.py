"""Atomic steps of the kernel paths the model runs, one small function per step.

Every function is named after the kernel function it mirrors and takes
`(m, s, t, op)`: the compiled model, the current state tuple, the thread index and the
thread's current compiled op.  It returns None when the step is not enabled (the thread
is blocked) or `(action, l)`: a short action name for the trace and the successor state
as a list (the model turns it into a tuple and a label).

Step granularity follows the kernel's locks (reference §1.2-1.3): whatever runs under one
PT lock hold is one step; lockless paths (GUP-fast) get one step per shared-memory access
that matters; mmap_lock is held across the steps of a fault, a slow GUP, fork, munmap.

Policy-dependent decisions (when to reuse, when GUP must unshare, what fork does with a
maybe-pinned page) are rule functions selected once per policy in `mmcheck.rules`.
"""

from __future__ import annotations

from . import background, swap
from .state import (
    FL_HUGETLB, FL_PTE_THP, FL_THP, PTE_SD, PTE_SWAP, EXITED, FL_AE, FORKING, FR_CONTENT, FR_FLAGS, FR_MAP, FR_REF, LK_READ, LK_WRITE,
    PROC_HAS_PINNED, PROC_STATUS, PROC_WP_SEQ, PTE_D, PTE_FLAGS, PTE_SHIFT, PTE_W, PTE_ZERO, PV_IDEAL,
    PV_LEGIT, PV_PTE, PV_VMA, RUNNING, TH_FA, TH_FB, TH_FM, TH_LOCK, TH_PC, TH_PHASE, TH_X, TH_Y,
    VMA_NONE, VMA_R, VMA_RW, ZERO_PTE, ZERO_REF, ZERO_VALUE,
)

from .kernel import (  # noqa: F401  (phases are re-exported for the model)
    EXIT_FREE, FORK_COPY, FORK_END, FORK_WRPROTECT, GUP_SLOW, GUPF_END, GUPF_GRAB, GUPF_READ,
    GUPF_RECHECK, IDLE, PHASE_NAMES, PHASE_REFS, RECLAIM_ADD, RECLAIM_FREE, RECLAIM_UNMAP,
    SEGV, SPEC_DROP, SWAPIN_MAP, WP_COPY_ALLOC, WP_COPY_INSTALL, WP_COPY_PUT, ZAP_FLUSH,
    _alloc, _alloc_fresh, _can_read_lock, _mmap_lock_available, _delete_from_swap_cache,
    _drain_lru_batches, _fault_done, _lock_state, _next_pc, _observers_besides, _put,
    _release_slot_if_unused, _same_pte, _segv, _swapcache_page, _try_to_free_swap,
)

# ----------------------------------------------------------------------------- CPU access
def cpu_read(m, s, t, op):
    """A load: hits any present PTE; an empty one read-faults in the zero page."""
    p, v = m.t_proc[t], op.v
    base = m.pv[p][v]
    if s[base + PV_VMA] == VMA_NONE:
        return _segv(m, s, t)
    pte = s[base + PV_PTE]
    if pte and not pte & PTE_SWAP:
        l = list(s)
        _next_pc(m, l, t)
        return "load", l
    if not _can_read_lock(m, s, t):
        return None
    l = list(s)
    if pte:
        l[m.th[t] + TH_LOCK] = LK_READ
        return swap.do_swap_page(m, l, t, op, write=False)
    return read_fault(m, l, p, v)


def cpu_write(m, s, t, op):
    """A store: lands on a writable PTE; otherwise a write fault (do_anonymous_page,
    do_wp_page) runs under mmap_lock and the store is retried."""
    p, v = m.t_proc[t], op.v
    base = m.pv[p][v]
    vma = s[base + PV_VMA]
    if vma != VMA_RW:
        return _segv(m, s, t)  # no VM_WRITE: the store never lands
    pte = s[base + PV_PTE]
    if pte & PTE_W:
        l = list(s)
        f = (pte >> PTE_SHIFT) - 1
        val = op.val if op.epoch_ix is None else op.val + s[op.epoch_ix]
        l[m.fr[f] + FR_CONTENT] = val
        l[base + PV_PTE] = pte | PTE_D
        l[base + PV_IDEAL] = val
        l[base + PV_LEGIT] |= 1 << val
        _next_pc(m, l, t)
        return "store", l
    if not _can_read_lock(m, s, t):
        return None
    l = list(s)
    if pte == 0:
        return write_fault_none(m, l, p, v)
    l[m.th[t] + TH_LOCK] = LK_READ
    if pte & PTE_SWAP:
        return swap.do_swap_page(m, l, t, op, write=True)
    return do_wp_page(m, l, t, op, unshare=False)


def read_fault(m, l, p, v):
    """A read fault on an empty PTE: the zero page (anonymous) or the pagecache page (a
    private file mapping)."""
    f = m.vpage_file[v]
    if f is None:
        l[m.pv[p][v] + PV_PTE] = ZERO_PTE  # do_anonymous_page, read fault (P2)
        return "do_anonymous_page(read): map zero page", l
    do_read_fault(m, l, p, v, f)
    return "do_read_fault: map pagecache page R/O", l


def write_fault_none(m, l, p, v):
    """A write fault on an empty PTE: do_anonymous_page, or do_cow_fault for a private
    file mapping."""
    if m.vpage_file[v] is None:
        do_anonymous_page_write(m, l, p, v)
        return "do_anonymous_page(write)", l
    do_cow_fault(m, l, p, v)
    return "do_cow_fault: private copy of the pagecache page", l


def do_anonymous_page_write(m, l, p, v):
    """do_anonymous_page, write fault (P1): a new zeroed page of the VMA's class (a THP
    or hugetlb fault for those VMAs), exclusive (5.19: page_add_new_anon_rmap sets
    PageAnonExclusive), writable and dirty if VM_WRITE."""
    f = _alloc_fresh(m, l, ZERO_VALUE, m.vpage_class[v] | (FL_AE if m.ae else 0))
    _map_new_page(m, l, p, v, f)


def _map_new_page(m, l, p, v, f):
    l[m.fr[f] + FR_MAP] = 1
    base = m.pv[p][v]
    l[base + PV_PTE] = ((f + 1) << PTE_SHIFT) | (
        PTE_W | PTE_D | PTE_SD if l[base + PV_VMA] == VMA_RW else 0)


def do_read_fault(m, l, p, v, f):
    """do_read_fault -> filemap_map_pages: the pagecache page mapped read-only."""
    b = m.fr[f]
    l[b + FR_REF] += 1
    l[b + FR_MAP] += 1
    l[m.pv[p][v] + PV_PTE] = (f + 1) << PTE_SHIFT


def do_cow_fault(m, l, p, v):
    """do_cow_fault: a write to a private file mapping copies the pagecache page into a
    new anonymous page right away."""
    content = l[m.fr[m.vpage_file[v]] + FR_CONTENT]
    f = _alloc_fresh(m, l, content, FL_AE if m.ae else 0)
    _map_new_page(m, l, p, v, f)


def do_wp_page(m, l, t, op, unshare):
    """do_wp_page under the PT lock: reuse the page (wp_page_reuse) or start wp_page_copy.

    With FAULT_FLAG_UNSHARE (5.19, c89357e27f20) "reuse" only marks the page exclusive and
    the copy is installed read-only."""
    p, v = m.t_proc[t], op.v
    base = m.pv[p][v]
    pte = l[base + PV_PTE]
    if not pte & PTE_ZERO:
        f = (pte >> PTE_SHIFT) - 1
        fb = m.fr[f]
        reuse = m.can_reuse(m, l, f)
        if reuse is None:
            return None  # lock_page sleeps: the page is locked by reclaim or swap-in
        if reuse:
            if m.ae:
                l[fb + FR_FLAGS] |= FL_AE  # page_move_anon_rmap + SetPageAnonExclusive
            if not unshare:
                # wp_page_reuse: maybe_mkwrite(pte_mkdirty(entry))
                l[base + PV_PTE] = pte | PTE_D | PTE_SD | (
                    PTE_W if l[base + PV_VMA] == VMA_RW else 0)
            _fault_done(m, l, t, op, wrote=not unshare)
            return ("do_wp_page: unshare, page already exclusive" if unshare
                    else "do_wp_page -> wp_page_reuse"), l
        l[fb + FR_REF] += 1  # get_page(old) before dropping the PT lock
        old = f + 1
    else:
        old = ZERO_REF  # the zero page is never reused: wp_page_copy zero-fills
    b = m.th[t]
    l[b + TH_FA] = old
    l[b + TH_X] = pte & PTE_FLAGS
    l[b + TH_Y] = 1 if unshare else 0
    l[b + TH_PHASE] = WP_COPY_ALLOC
    return ("do_wp_page(unshare) -> wp_page_copy" if unshare
            else "do_wp_page -> wp_page_copy"), l


def wp_page_copy_alloc(m, s, t, op):
    """wp_page_copy P4.2: allocate the new page and copy the old contents, outside the PT
    lock (a DMA write to the old page after this point is lost to the faulting process)."""
    l = list(s)
    b = m.th[t]
    old = l[b + TH_FA]
    if old == ZERO_REF:
        content, cls = ZERO_VALUE, 0
    else:
        content = l[m.fr[old - 1] + FR_CONTENT]
        # a hugetlb COW copies the huge page; a THP COW splits and copies one small page
        cls = l[m.fr[old - 1] + FR_FLAGS] & FL_HUGETLB
    n = _alloc_fresh(m, l, content, cls)
    l[b + TH_FB] = n + 1
    l[b + TH_PHASE] = WP_COPY_INSTALL
    return "wp_page_copy: alloc + copy", l


def wp_page_copy_install(m, s, t, op):
    """wp_page_copy P4.3-6 under the PT lock: if the PTE changed, back out; else
    ptep_clear_flush, map the copy (exclusive; writable+dirty, or R/O for unshare) and
    page_remove_rmap the old page."""
    p, v = m.t_proc[t], op.v
    base = m.pv[p][v]
    l = list(s)
    b = m.th[t]
    old, new = l[b + TH_FA], l[b + TH_FB] - 1
    if not _same_pte(l[base + PV_PTE], old, l[b + TH_X]):
        _put(m, l, new, 1)
        l[b + TH_FB] = 0
        if old == ZERO_REF:
            _fault_done(m, l, t, op, wrote=False)
        else:
            l[b + TH_Y] = 2  # backing out: no VM_FAULT_WRITE
            l[b + TH_PHASE] = WP_COPY_PUT  # the extra reference goes after unlock
        return "wp_page_copy: pte changed, back out", l
    unshare = l[b + TH_Y]
    nb = m.fr[new]
    l[nb + FR_MAP] = 1
    if m.ae:
        l[nb + FR_FLAGS] |= FL_AE
    if unshare:
        l[base + PV_PTE] = (new + 1) << PTE_SHIFT
    else:
        l[base + PV_PTE] = ((new + 1) << PTE_SHIFT) | PTE_D | PTE_SD | (
            PTE_W if l[base + PV_VMA] == VMA_RW else 0)
    l[b + TH_FB] = 0
    if old == ZERO_REF:
        _fault_done(m, l, t, op, wrote=not unshare)
        return "wp_page_copy: install copy of zero page", l
    needed = _observers_besides(m, l, old - 1, p)
    l[m.fr[old - 1] + FR_MAP] -= 1  # page_remove_rmap(old_page)
    _put(m, l, old - 1, 1)  # its mapping reference, still under the PT lock (TLB flushed)
    l[b + TH_PHASE] = WP_COPY_PUT
    return "wp_page_copy: install copy" + ("" if needed else " (unnecessary COW)"), l


def wp_page_copy_put(m, s, t, op):
    """wp_page_copy P4.7: after pte_unmap_unlock, drop the extra reference do_wp_page took
    on the old page (5.10 mm/memory.c; the mapping reference went under the PT lock)."""
    l = list(s)
    b = m.th[t]
    _put(m, l, l[b + TH_FA] - 1, 1)
    _fault_done(m, l, t, op, wrote=l[b + TH_Y] == 0)
    return "wp_page_copy: put old page", l


# ----------------------------------------------------------------------------- GUP
def gup_start(m, s, t, op):
    """get_user_pages / pin_user_pages entry: GUP-fast first when asked, else slow GUP."""
    if op.fast:
        return gup_fast_begin(m, s, t, op)
    return follow_page_pte(m, s, t, op)


def follow_page_pte(m, s, t, op):
    """__get_user_pages loop under mmap_lock (read): follow_page_pte under the PT lock
    takes the reference if the PTE allows it, otherwise faultin_page runs the fault
    (write fault, or FAULT_FLAG_UNSHARE for a R/O pin of a possibly shared page) and the
    loop retries."""
    p, v = m.t_proc[t], op.v
    b = m.th[t]
    if not _can_read_lock(m, s, t):
        return None
    l = list(s)
    l[b + TH_LOCK] = LK_READ
    if op.pin and m.track_has_pinned:
        l[m.proc[p] + PROC_HAS_PINNED] = 1  # 008cfe4418b3: set on FOLL_PIN
    base = m.pv[p][v]
    vma = l[base + PV_VMA]
    if vma == VMA_NONE or (op.write and vma != VMA_RW):
        _next_pc(m, l, t)
        return "__get_user_pages: -EFAULT", l
    # 17839856fd58 (5.8): should_force_cow_break -> FOLL_WRITE on every COW mapping;
    # can_follow_write_pte then also accepts a R/O PTE that is dirty after our own COW
    # (FOLL_COW), which is how a R/O private VMA gets its copy
    foll_write = op.write or m.gup_read_breaks_cow
    pte = l[base + PV_PTE]
    if foll_write and not op.write and l[b + TH_Y] and pte & PTE_D:
        foll_write = False
    if pte == 0:
        action, l = write_fault_none(m, l, p, v) if foll_write else read_fault(m, l, p, v)
        return "faultin_page -> " + action, l
    if pte & PTE_SWAP:
        return swap.do_swap_page(m, l, t, op, write=foll_write)
    if not pte & PTE_W:
        if foll_write:
            return do_wp_page(m, l, t, op, unshare=False)
        if m.must_unshare(m, l, pte, op):
            return do_wp_page(m, l, t, op, unshare=True)
    if pte & PTE_ZERO:
        l[m.refix[op.ref]] = ZERO_REF  # follow_page_pte returns the zero page
    else:
        f = (pte >> PTE_SHIFT) - 1
        l[m.fr[f] + FR_REF] += op.bias  # try_grab_page: +1, or +GUP_PIN_COUNTING_BIAS
        l[m.refix[op.ref]] = f + 1
    _next_pc(m, l, t)
    return "follow_page_pte: " + ("pin page" if op.pin else "get page"), l


def gup_fast_begin(m, s, t, op):
    """gup_fast entry: FOLL_PIN marks the mm as having pinned pages (5.9) and samples
    mm->write_protect_seq, giving up at once if fork is in its write section (5.11)."""
    p = m.t_proc[t]
    l = list(s)
    b = m.th[t]
    if op.pin and m.track_has_pinned:
        l[m.proc[p] + PROC_HAS_PINNED] = 1
    if op.pin and m.gup_fast_seqcount:
        seq = l[m.proc[p] + PROC_WP_SEQ]
        if seq & 1:
            l[b + TH_PHASE] = GUP_SLOW
            return "gup_fast: write_protect_seq odd, fall back", l
        l[b + TH_Y] = seq
    l[b + TH_PHASE] = GUPF_READ
    return "gup_fast: begin", l


def _gup_fast_fall_back(m, l, t, drop):
    b = m.th[t]
    if drop:
        _put(m, l, l[b + TH_FA] - 1, drop)
    l[b + TH_FA] = l[b + TH_X] = l[b + TH_Y] = 0
    l[b + TH_PHASE] = GUP_SLOW


def gup_fast_read_pte(m, s, t, op):
    """gup_pte_range: lockless PTE read; give up on none / special (zero page) / a R/O PTE
    when writing (5.8: every GUP-fast is a write lookup)."""
    p, v = m.t_proc[t], op.v
    pte = s[m.pv[p][v] + PV_PTE]
    l = list(s)
    if pte == 0 or pte & (PTE_ZERO | PTE_SWAP) or (
            (op.write or m.gup_read_breaks_cow) and not pte & PTE_W):
        _gup_fast_fall_back(m, l, t, 0)
        return "gup_fast: pte not usable, fall back", l
    b = m.th[t]
    l[b + TH_FA] = (pte >> PTE_SHIFT)
    l[b + TH_X] = pte & PTE_FLAGS
    l[b + TH_PHASE] = GUPF_GRAB
    return "gup_fast: read pte", l


def gup_fast_try_grab(m, s, t, op):
    """try_grab_folio: speculative reference, fails only on a freed page (ref 0).
    Before the generic RCU GUP-fast (x86 until e585513b76f7, 4.13) it was a plain
    get_page() that relied on IRQs-off holding off the TLB-flush IPI, with no re-check."""
    b = m.th[t]
    f = s[b + TH_FA] - 1
    l = list(s)
    if not m.gup_fast_recheck:
        l[m.fr[f] + FR_REF] += op.bias
        l[b + TH_PHASE] = GUPF_END
        return "gup_fast: get_page", l
    if l[m.fr[f] + FR_REF] == 0:
        _gup_fast_fall_back(m, l, t, 0)
        return "gup_fast: page freed, fall back", l
    l[m.fr[f] + FR_REF] += op.bias
    l[b + TH_PHASE] = GUPF_RECHECK
    return "gup_fast: try_grab", l


def gup_fast_recheck(m, s, t, op):
    """gup_pte_range: re-read the PTE (drop and give up if it changed); 5.19: a R/O pin on
    a page that is not PageAnonExclusive backs off too (gup_must_unshare)."""
    p, v = m.t_proc[t], op.v
    b = m.th[t]
    l = list(s)
    pte = l[m.pv[p][v] + PV_PTE]
    if not _same_pte(pte, l[b + TH_FA], l[b + TH_X]):
        _gup_fast_fall_back(m, l, t, op.bias)
        return "gup_fast: pte changed, drop + fall back", l
    if not pte & PTE_W and m.must_unshare(m, l, pte, op):
        _gup_fast_fall_back(m, l, t, op.bias)
        return "gup_fast: must unshare, drop + fall back", l
    l[b + TH_PHASE] = GUPF_END
    return "gup_fast: pte unchanged", l


def gup_fast_end(m, s, t, op):
    """lockless_pages_from_mm: after re-enabling IRQs, FOLL_PIN re-reads write_protect_seq;
    if fork ran meanwhile, unpin and let slow GUP (blocked behind fork) do it (5.11)."""
    p = m.t_proc[t]
    b = m.th[t]
    l = list(s)
    if op.pin and m.gup_fast_seqcount and l[m.proc[p] + PROC_WP_SEQ] != l[b + TH_Y]:
        _gup_fast_fall_back(m, l, t, op.bias)
        return "gup_fast: write_protect_seq changed, unpin + fall back", l
    l[m.refix[op.ref]] = l[b + TH_FA]
    _next_pc(m, l, t)
    return "gup_fast: " + ("pinned" if op.pin else "got page"), l


# ----------------------------------------------------------------------------- fork
def dup_mmap(m, s, t, op):
    """dup_mmap P6.1-2: mmap_write_lock the parent, create the child mm with copies of
    the parent's VMAs; page tables are copied per VMA next."""
    if s[m.th[t] + TH_LOCK] or not _mmap_lock_available(m, s, t, write=True):
        return None
    p, c = m.t_proc[t], op.child
    l = list(s)
    b = m.th[t]
    l[b + TH_LOCK] = LK_WRITE
    l[m.proc[c] + PROC_STATUS] = FORKING
    for v in range(m.n_vpages):
        l[m.pv[c][v] + PV_VMA] = l[m.pv[p][v] + PV_VMA]
    l[b + TH_X] = 0
    l[b + TH_PHASE] = FORK_COPY
    return "dup_mmap: lock parent, copy VMAs", l


def _fork_next_vpage(m, l, t):
    b = m.th[t]
    l[b + TH_X] += 1
    l[b + TH_PHASE] = FORK_END if l[b + TH_X] == m.n_vpages else FORK_COPY


def copy_present_pte(m, s, t, op):
    """copy_page_range -> copy_present_pte for one vpage under both PT locks, first half:
    the era's decision for a maybe-pinned page, then page_dup_rmap (5.19:
    page_try_dup_anon_rmap clears PageAnonExclusive).  The child's ideal memory of this
    page is taken here: what the parent had when its page table was copied."""
    p, c = m.t_proc[t], op.child
    b = m.th[t]
    v = s[b + TH_X]
    pb, cb = m.pv[p][v], m.pv[c][v]
    l = list(s)
    l[cb + PV_IDEAL] = l[pb + PV_IDEAL]
    l[cb + PV_LEGIT] = l[pb + PV_LEGIT]
    pte = l[pb + PV_PTE]
    if l[pb + PV_VMA] == VMA_NONE or pte == 0:
        _fork_next_vpage(m, l, t)
        return "copy_page_range: nothing mapped", l
    if pte & PTE_ZERO:
        l[cb + PV_PTE] = ZERO_PTE
        _fork_next_vpage(m, l, t)
        return "copy_present_pte: zero page", l
    if pte & PTE_SWAP:
        swap.copy_nonpresent_pte(m, l, pb, cb)
        _fork_next_vpage(m, l, t)
        return "copy_nonpresent_pte: swap_duplicate", l
    f = (pte >> PTE_SHIFT) - 1
    fb = m.fr[f]
    seq = m.proc[p] + PROC_WP_SEQ
    if m.fork_must_copy(m, l, p, f):
        # copy_present_page: the child gets its own copy now; the parent keeps its
        # (still writable) PTE and the pinned page (70e806e4e645; 5.19 -EBUSY path).
        # A pinned PMD-mapped THP is split first (d042035eaf5f): it stays PTE-mapped.
        flags = l[fb + FR_FLAGS]
        if flags & FL_THP:
            l[fb + FR_FLAGS] = flags & ~FL_THP | FL_PTE_THP
        n = _alloc_fresh(m, l, l[fb + FR_CONTENT], (flags & FL_HUGETLB) | (FL_AE if m.ae else 0))
        l[m.fr[n] + FR_MAP] = 1
        l[cb + PV_PTE] = ((n + 1) << PTE_SHIFT) | PTE_D | (
            PTE_W if l[cb + PV_VMA] == VMA_RW else 0)
        if m.gup_fast_seqcount:
            l[seq] += 2  # raw_write_seqcount_begin/end around this VMA's copy
        _fork_next_vpage(m, l, t)
        return "copy_present_page: early COW of maybe-pinned page", l
    l[fb + FR_REF] += 1  # get_page
    l[fb + FR_MAP] += 1  # page_dup_rmap
    l[b + TH_FA] = f + 1  # the page whose child mapping is in flight (refcount-sane)
    if m.ae:
        l[fb + FR_FLAGS] &= ~FL_AE  # page_try_dup_anon_rmap: ClearPageAnonExclusive
    if m.gup_fast_seqcount:
        l[seq] += 1  # raw_write_seqcount_begin (57efa1fe5957)
    l[b + TH_PHASE] = FORK_WRPROTECT
    return "copy_present_pte: share page", l


def copy_present_pte_wrprotect(m, s, t, op):
    """copy_present_pte, second half: ptep_set_wrprotect on the parent (COW mapping) and
    set the child's PTE to the same page, read-only, dirty bit kept.  copy_pte_range holds
    both PT locks across the two halves, so only lockless paths (GUP-fast) see the state
    in between (`PT_LOCK_PHASES`)."""
    p, c = m.t_proc[t], op.child
    b = m.th[t]
    v = s[b + TH_X]
    pb, cb = m.pv[p][v], m.pv[c][v]
    l = list(s)
    l[b + TH_FA] = 0
    pte = l[pb + PV_PTE] & ~PTE_W
    l[pb + PV_PTE] = pte
    l[cb + PV_PTE] = pte
    if m.gup_fast_seqcount:
        l[m.proc[p] + PROC_WP_SEQ] += 1  # raw_write_seqcount_end
    _fork_next_vpage(m, l, t)
    return "copy_present_pte: wrprotect parent, map child R/O", l


def dup_mmap_finish(m, s, t, op):
    """dup_mmap P6.6: flush_tlb_mm(parent), mmap_write_unlock; the child starts running."""
    l = list(s)
    l[m.proc[op.child] + PROC_STATUS] = RUNNING
    _next_pc(m, l, t)
    return "dup_mmap: flush_tlb_mm, unlock; child runs", l


# ----------------------------------------------------------------------------- zap, mprotect
def zap_pte_range(m, s, t, op):
    """munmap (mmap_lock write) / MADV_DONTNEED (mmap_lock read), P5 first half: under the
    PT lock clear the PTE and page_remove_rmap; the page reference waits for the flush."""
    munmap = op.kind == "munmap"
    if not _mmap_lock_available(m, s, t, write=munmap):
        return None
    p, v = m.t_proc[t], op.v
    base = m.pv[p][v]
    l = list(s)
    if l[base + PV_VMA] == VMA_NONE:
        _next_pc(m, l, t)
        return "munmap: nothing mapped" if munmap else "madvise: -ENOMEM", l
    pte = l[base + PV_PTE]
    l[base + PV_PTE] = 0
    if munmap:
        l[base + PV_VMA] = VMA_NONE
    else:
        l[base + PV_IDEAL] = m.vpage_initial[v]  # the next touch reads zeroes / the file
    if pte == 0 or pte & PTE_ZERO:
        _next_pc(m, l, t)
        return "zap_pte_range", l
    if pte & PTE_SWAP:
        swap.free_swap_and_cache(m, l, (pte >> PTE_SHIFT) - 1)
        _next_pc(m, l, t)
        return "zap_pte_range: free_swap_and_cache", l
    f = (pte >> PTE_SHIFT) - 1
    l[m.fr[f] + FR_MAP] -= 1
    b = m.th[t]
    l[b + TH_FA] = f + 1
    l[b + TH_LOCK] = LK_WRITE if munmap else LK_READ
    l[b + TH_PHASE] = ZAP_FLUSH
    return "zap_pte_range: clear pte, page_remove_rmap", l


def zap_tlb_flush_put(m, s, t, op):
    """tlb_finish_mmu: after the TLB flush, free_pages_and_swap_cache drops the reference."""
    l = list(s)
    _put(m, l, l[m.th[t] + TH_FA] - 1, 1)
    _next_pc(m, l, t)
    return "tlb_finish_mmu: put page", l


def change_pte_range(m, s, t, op):
    """mprotect (mmap_lock write): PROT_READ write-protects the PTE; PROT_WRITE leaves it
    R/O (the next write faults) unless 6.0's can_change_pte_writable sees an exclusive
    anon page (64fe24a3e05e)."""
    if not _mmap_lock_available(m, s, t, write=True):
        return None
    p, v = m.t_proc[t], op.v
    base = m.pv[p][v]
    l = list(s)
    if l[base + PV_VMA] == VMA_NONE:
        _next_pc(m, l, t)
        return "mprotect: -ENOMEM", l
    pte = l[base + PV_PTE]
    if op.prot_write:
        l[base + PV_VMA] = VMA_RW
        if (m.mprotect_writable_if_exclusive and pte and not pte & (PTE_ZERO | PTE_SWAP)
                and l[m.fr[(pte >> PTE_SHIFT) - 1] + FR_FLAGS] & FL_AE):
            l[base + PV_PTE] = pte | PTE_W
    else:
        l[base + PV_VMA] = VMA_R
        l[base + PV_PTE] = pte & ~PTE_W
    _next_pc(m, l, t)
    return "change_pte_range", l


def clear_soft_dirty(m, s, t, op):
    """clear_refs_write(CLEAR_REFS_SOFT_DIRTY) -> clear_soft_dirty, one PT-lock pass over
    the process: every present PTE is write-protected and loses soft-dirty, except (5.11,
    9348b73c2e1b pte_is_pinned) a writable PTE of a maybe-pinned page in an mm that has
    pinned pages.  mmap_lock read before 5.11, write after ("fix clear_refs_write
    locking")."""
    if not _mmap_lock_available(m, s, t, write=m.clear_refs_mmap_write):
        return None
    p = m.t_proc[t]
    l = list(s)
    pinned_mm = l[m.proc[p] + PROC_HAS_PINNED]
    for base in m.pv[p]:
        pte = l[base + PV_PTE]
        if not pte or pte & PTE_SWAP:
            continue
        if (m.clear_refs_skip_pinned and pte & PTE_W and pinned_mm and not pte & PTE_ZERO
                and l[m.fr[(pte >> PTE_SHIFT) - 1] + FR_REF] >= 1024):
            continue  # page_maybe_dma_pinned: leave it writable
        l[base + PV_PTE] = pte & ~(PTE_W | PTE_SD)
    _next_pc(m, l, t)
    return "clear_refs: clear_soft_dirty", l


# ----------------------------------------------------------------------------- references
def _ref_pending(m, s, r):
    """True while the GUP that takes reference r has not run yet (ops on r wait for it)."""
    t, pc = m.ref_site[r]
    return s[m.th[t] + TH_PC] <= pc and s[m.th[t] + TH_PHASE] != SEGV and \
        s[m.proc[m.t_proc[t]] + PROC_STATUS] != EXITED


def put_reference(m, s, t, op):
    """put_page (FOLL_GET) / unpin_user_page (FOLL_PIN: -GUP_PIN_COUNTING_BIAS)."""
    r = op.ref
    held = s[m.refix[r]]
    if not held and _ref_pending(m, s, r):
        return None
    l = list(s)
    l[m.refix[r]] = 0
    if held > 0:
        _put(m, l, held - 1, m.ref_bias[r])
    _next_pc(m, l, t)
    return ("unpin_user_page" if m.ref_pin[r] else "put_page") if held else "put: not held", l


def device_write(m, s, t, op):
    """DMA into the page behind the reference: the owner asked for its page at that
    address to be written, so the value becomes the owner's data there."""
    r = op.ref
    held = s[m.refix[r]]
    if not held and _ref_pending(m, s, r):
        return None
    l = list(s)
    if held > 0:
        val = op.val if op.epoch_ix is None else op.val + s[op.epoch_ix]
        l[m.fr[held - 1] + FR_CONTENT] = val
        o, v = m.ref_owner[r], m.ref_vpage[r]
        ob = m.pv[o][v]
        if l[m.proc[o] + PROC_STATUS] in (RUNNING, FORKING) and l[ob + PV_VMA] != VMA_NONE:
            l[ob + PV_IDEAL] = val
            l[ob + PV_LEGIT] |= 1 << val
    _next_pc(m, l, t)
    return "device write" if held > 0 else "device write: no page", l


def device_read(m, s, t, op):
    """DMA (or a pipe reader) reads through the reference; what it can see is judged by
    the properties in every state, so the read itself changes nothing."""
    if not s[m.refix[op.ref]] and _ref_pending(m, s, op.ref):
        return None
    l = list(s)
    _next_pc(m, l, t)
    return "device read", l


# ----------------------------------------------------------------------------- exit, sync
def exit_mmap_unmap(m, s, t, op):
    """do_exit -> exit_mmap: unmap_vmas clears every PTE (page_remove_rmap); the other
    threads are gone (exit_group).  Waits until no thread of the mm is inside an op."""
    p = m.t_proc[t]
    for u in m.proc_threads[p]:
        if s[m.th[u] + TH_LOCK] or (u != t and s[m.th[u] + TH_PHASE] not in (IDLE, SEGV)):
            return None
    l = list(s)
    mask = 0
    for v in range(m.n_vpages):
        base = m.pv[p][v]
        pte = l[base + PV_PTE]
        l[base + PV_PTE] = 0
        l[base + PV_VMA] = VMA_NONE
        if pte & PTE_SWAP:
            swap.free_swap_and_cache(m, l, (pte >> PTE_SHIFT) - 1)
        elif pte and not pte & PTE_ZERO:
            f = (pte >> PTE_SHIFT) - 1
            l[m.fr[f] + FR_MAP] -= 1
            mask |= 1 << f
    for u in m.proc_threads[p]:
        if u != t:
            l[m.th[u] + TH_PC] = m.t_len[u]
    b = m.th[t]
    l[b + TH_FM] = mask
    l[b + TH_LOCK] = LK_WRITE
    l[b + TH_PHASE] = EXIT_FREE
    return "exit_mmap: unmap_vmas", l


def exit_mmap_free(m, s, t, op):
    """exit_mmap: tlb_finish_mmu frees the pages; closing files releases the process's
    GUP references."""
    p = m.t_proc[t]
    l = list(s)
    b = m.th[t]
    mask = l[b + TH_FM]
    for f in range(m.n_frames):
        if mask >> f & 1:
            _put(m, l, f, 1)
    for r, ix in enumerate(m.refix):
        if m.ref_owner[r] == p and l[ix]:
            if l[ix] > 0:
                _put(m, l, l[ix] - 1, m.ref_bias[r])
            l[ix] = 0
    l[m.proc[p] + PROC_STATUS] = EXITED
    _next_pc(m, l, t)
    l[b + TH_PC] = m.t_len[t]
    return "exit_mmap: free pages, release references", l


def wait_for_exit(m, s, t, op):
    """wait4: returns once the child has exited."""
    if s[m.proc[op.target] + PROC_STATUS] != EXITED:
        return None
    l = list(s)
    _next_pc(m, l, t)
    return "wait4", l


def signal_event(m, s, t, op):
    l = list(s)
    l[0] |= op.bit
    _next_pc(m, l, t)
    return "signal", l


def await_event(m, s, t, op):
    if not s[0] & op.bit:
        return None
    l = list(s)
    _next_pc(m, l, t)
    return "await", l


# op kind -> the step that starts it; phase -> the step that continues it
OP_START = {
    "read": cpu_read, "write": cpu_write, "gup": gup_start, "fork": dup_mmap,
    "munmap": zap_pte_range, "dontneed": zap_pte_range, "mprotect": change_pte_range,
    "put": put_reference, "device_write": device_write, "device_read": device_read,
    "exit": exit_mmap_unmap, "wait": wait_for_exit, "signal": signal_event,
    "await": await_event, "pageout": swap.madvise_pageout, "clear_refs": clear_soft_dirty,
    # background actors' ops
    "reclaim": background.reclaim_any, "speculative_ref": background.speculative_get,
    "lru_drain": background.lru_add_drain,
    "menu_idle": None,  # a menu thread's idle slot: the model chooses an op instead
}
PHASE_STEP = {
    WP_COPY_ALLOC: wp_page_copy_alloc, WP_COPY_INSTALL: wp_page_copy_install,
    WP_COPY_PUT: wp_page_copy_put, GUP_SLOW: follow_page_pte, GUPF_READ: gup_fast_read_pte,
    GUPF_GRAB: gup_fast_try_grab, GUPF_RECHECK: gup_fast_recheck, GUPF_END: gup_fast_end,
    FORK_COPY: copy_present_pte, FORK_WRPROTECT: copy_present_pte_wrprotect,
    FORK_END: dup_mmap_finish, ZAP_FLUSH: zap_tlb_flush_put, EXIT_FREE: exit_mmap_free,
    RECLAIM_ADD: swap.add_to_swap, RECLAIM_UNMAP: swap.try_to_unmap_one,
    RECLAIM_FREE: swap.pageout_remove_mapping, SWAPIN_MAP: swap.do_swap_page_map,
    SPEC_DROP: background.speculative_put,
}
