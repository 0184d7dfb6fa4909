"""Shared pieces of the kernel steps: thread phases, page allocation and freeing, the
references threads hold in flight, mmap_lock, and the end of a fault.

The step functions live in transitions.py (faults, GUP, fork, zap, mprotect, exit),
swap.py (reclaim, swap-in) and background.py (actors that strike between steps).
"""

from __future__ import annotations

from .state import (
    FL_ALLOC, FL_CLASS, FL_FILE, FL_LRU_BATCH, FL_PTE_THP, FR_CONTENT, FR_FLAGS, FR_MAP, FR_REF, FR_SLOT, LK_NONE, LK_WRITE,
    PTE_FLAGS, PTE_SHIFT, PTE_ZERO, SL_CACHE, SL_CONTENT, SL_SWC, TH_FA, TH_FB, TH_FM,
    TH_LOCK, TH_PC, TH_PHASE, TH_X, TH_Y, ZERO_REF,
)

# ---- phases: where a thread is inside a multi-step operation (0 = at the start of its op)
IDLE = 0
WP_COPY_ALLOC = 1  # wp_page_copy: allocate the new page and copy (outside the PT lock)
WP_COPY_INSTALL = 2  # wp_page_copy: retake the PT lock, install the copy
WP_COPY_PUT = 3  # wp_page_copy: drop the extra reference on the old page
GUP_SLOW = 4  # __get_user_pages: follow_page_pte / faultin_page loop
GUPF_READ = 5  # gup_fast: read the PTE locklessly
GUPF_GRAB = 6  # gup_fast: try_grab the page
GUPF_RECHECK = 7  # gup_fast: re-read the PTE (and PageAnonExclusive)
GUPF_END = 8  # gup_fast: write_protect_seq retry check
FORK_COPY = 9  # copy_present_pte for vpage x: pinned check, dup rmap
FORK_WRPROTECT = 10  # copy_present_pte for vpage x: write-protect parent, set child PTE
FORK_END = 11  # dup_mmap: flush_tlb_mm, unlock
ZAP_FLUSH = 12  # zap: TLB flush done, drop the page reference
EXIT_FREE = 13  # exit_mmap: free the unmapped pages, release references
SEGV = 14  # the thread died of SIGSEGV (terminal)
RECLAIM_ADD = 15  # shrink_page_list: add_to_swap (after isolating and locking the page)
RECLAIM_UNMAP = 16  # try_to_unmap: one mapping per step
RECLAIM_FREE = 17  # pageout + __remove_mapping: free the page unless someone holds it
SWAPIN_MAP = 18  # do_swap_page under the PT lock (page locked, looked up)
SPEC_DROP = 19  # a speculative reference is dropped

PHASE_NAMES = {
    IDLE: "", WP_COPY_ALLOC: "wp_page_copy: allocate + copy", WP_COPY_INSTALL:
    "wp_page_copy: install copy", WP_COPY_PUT: "wp_page_copy: put old page", GUP_SLOW:
    "__get_user_pages", GUPF_READ: "gup_fast: read pte", GUPF_GRAB: "gup_fast: try_grab",
    GUPF_RECHECK: "gup_fast: recheck pte", GUPF_END: "gup_fast: seqcount check",
    FORK_COPY: "copy_present_pte", FORK_WRPROTECT: "copy_present_pte: wrprotect",
    FORK_END: "dup_mmap: finish", ZAP_FLUSH: "zap: tlb flush + put", EXIT_FREE:
    "exit_mmap: free", SEGV: "SIGSEGV", RECLAIM_ADD: "shrink_page_list: add_to_swap",
    RECLAIM_UNMAP: "try_to_unmap", RECLAIM_FREE: "pageout + __remove_mapping",
    SWAPIN_MAP: "do_swap_page: map page", SPEC_DROP: "speculative ref: put",
}

# Pages a thread's registers hold a reference on, per phase: (fa refs, fb refs, fm refs each).
# refcount-sane uses this to account for references in flight.
PHASE_REFS = {
    WP_COPY_ALLOC: (1, 0, 0), WP_COPY_INSTALL: (1, 1, 0), WP_COPY_PUT: (1, 0, 0),
    GUPF_RECHECK: ("bias", 0, 0), GUPF_END: ("bias", 0, 0), ZAP_FLUSH: (1, 0, 0),
    FORK_WRPROTECT: ("fork_dup", 0, 0), EXIT_FREE: (0, 0, 1),
    RECLAIM_ADD: (1, 0, 0), RECLAIM_UNMAP: (1, 0, 0), RECLAIM_FREE: (1, 0, 0),
    SWAPIN_MAP: (1, 0, 0), SPEC_DROP: (1, 0, 0),
}


# Phases in which a thread holds page-table locks across steps, and whose: phase ->
# function (m, s, t) -> the (process, vpage) PTEs it has locked.  Only copy_pte_range does
# (both PT locks across copy_present_pte's two halves, which are separate steps because
# lockless GUP-fast can run between them); every other PT-locked kernel section is one step.
def _fork_pt_locks(m, s, t):
    x = s[m.th[t] + TH_X]
    op = m.programs[t][s[m.th[t] + TH_PC]]
    return ((m.t_proc[t], x), (op.child, x))


PT_LOCK_PHASES = {FORK_WRPROTECT: _fork_pt_locks}


def pt_locked_by_other(m, s, t, p, v):
    """Does a thread other than t hold the PT lock of process p's PTE for vpage v across
    steps (so a PT-locked step of t on it spins until it is released)?"""
    for u, b in enumerate(m.th):
        held = PT_LOCK_PHASES.get(s[b + TH_PHASE])
        if held is not None and u != t and (p, v) in held(m, s, u):
            return True
    return False


# ----------------------------------------------------------------------------- helpers
def _lock_state(m, s, t):
    """(another thread of t's mm holds mmap_lock for write, any other thread holds it)."""
    writer = other = False
    for u in m.proc_threads[m.t_proc[t]]:
        if u != t:
            mode = s[m.th[u] + TH_LOCK]
            if mode:
                other = True
                if mode == LK_WRITE:
                    writer = True
    return writer, other


def _can_read_lock(m, s, t):
    return s[m.th[t] + TH_LOCK] != LK_NONE or not _lock_state(m, s, t)[0]


def _mmap_lock_available(m, s, t, write):
    """May thread t take its mm's mmap_lock now (for write: nobody else holds it; for
    read: nobody holds it for write)?"""
    writer, other = _lock_state(m, s, t)
    return not other if write else not writer


def _alloc(m, l, content, flags):
    """alloc_page + (for anon) __SetPageAnonExclusive: the lowest free frame, ref 1."""
    for f, b in enumerate(m.fr):
        if not l[b + FR_FLAGS] & FL_ALLOC:
            l[b + FR_REF] = 1
            l[b + FR_MAP] = 0
            l[b + FR_FLAGS] = flags | FL_ALLOC
            l[b + FR_CONTENT] = content
            return f
    raise RuntimeError("mmcheck: frame pool exhausted (model bound too small)")


def _alloc_fresh(m, l, content, flags):
    """A page the kernel just allocated for a fault, added to the LRU (lru_cache_add)."""
    f = _alloc(m, l, content, flags)
    if m.lru_batch:
        lru_cache_add(m, l, f)
    return f


def lru_cache_add(m, l, f):
    """lru_cache_add: a small page sits in the per-CPU LRU add batch, which holds one more
    reference until drained.  A large folio (THP) is moved to the LRU at once
    (`PageCompound` in __lru_cache_add, folio_test_large in folio_batch_add_and_move) and
    hugetlb pages are never on the LRU.  A full batch is drained, the new page included
    (pagevec_add returned no space left): the model's batch holds `lru_batch_capacity`
    pages (the kernel's 15 or 31 per CPU; a drain may happen at any time anyway)."""
    b = m.fr[f]
    if l[b + FR_FLAGS] & FL_CLASS and not l[b + FR_FLAGS] & FL_PTE_THP:
        return
    if l[b + FR_FLAGS] & FL_PTE_THP:
        return  # a PTE-mapped THP subpage belongs to a large folio too
    queued = sum(1 for fb in m.fr if l[fb + FR_FLAGS] & FL_LRU_BATCH)
    if queued >= m.lru_batch_capacity:
        _drain_lru_batches(m, l)
        return
    l[b + FR_FLAGS] |= FL_LRU_BATCH
    l[b + FR_REF] += 1


def _put(m, l, f, n):
    """put_page n times; free the page at zero (fields reset so free frames are identical)."""
    b = m.fr[f]
    ref = l[b + FR_REF] - n
    if ref <= 0:
        # a negative count is kept visible for refcount-sane; zero frees the page
        if ref == 0:
            l[b + FR_MAP] = l[b + FR_FLAGS] = l[b + FR_CONTENT] = l[b + FR_SLOT] = 0
    l[b + FR_REF] = ref


def _release_slot_if_unused(m, l, i):
    """A swap slot with no swap PTE and no swapcache page is free (fields reset)."""
    b = m.sl[i]
    if not l[b + SL_SWC] and not l[b + SL_CACHE]:
        l[b + SL_CONTENT] = 0


def _delete_from_swap_cache(m, l, f):
    """delete_from_swap_cache: the page leaves the swapcache; the slot loses
    SWAP_HAS_CACHE and the page the swapcache's reference."""
    b = m.fr[f]
    i = l[b + FR_SLOT] - 1
    l[b + FR_SLOT] = 0
    l[m.sl[i] + SL_CACHE] = 0
    _release_slot_if_unused(m, l, i)
    _put(m, l, f, 1)


def _swapcache_page(m, l, i):
    """The frame in the swapcache for slot i, or -1."""
    want = i + 1
    for f, b in enumerate(m.fr):
        if l[b + FR_SLOT] == want:
            return f
    return -1


def _try_to_free_swap(m, l, f):
    """try_to_free_swap: drop the page from the swapcache if no swap PTE uses its slot."""
    i = l[m.fr[f] + FR_SLOT] - 1
    if i >= 0 and not l[m.sl[i] + SL_SWC]:
        _delete_from_swap_cache(m, l, f)
        return True
    return False


def _drain_lru_batches(m, l):
    """lru_add_drain: every page in the per-CPU LRU add batch goes to the LRU; the batch's
    references are dropped."""
    for f, b in enumerate(m.fr):
        if l[b + FR_FLAGS] & FL_LRU_BATCH:
            l[b + FR_FLAGS] &= ~FL_LRU_BATCH
            _put(m, l, f, 1)


def _next_pc(m, l, t):
    """The op is done: the next program step (a menu thread goes back to idle, 0)."""
    b = m.th[t]
    l[b + TH_PC] = 0 if m.is_menu[t] else l[b + TH_PC] + 1
    l[b + TH_PHASE] = IDLE
    l[b + TH_FA] = l[b + TH_FB] = l[b + TH_FM] = l[b + TH_X] = l[b + TH_Y] = 0
    l[b + TH_LOCK] = LK_NONE


def _fault_done(m, l, t, op, wrote):
    """handle_mm_fault returned: a CPU access drops mmap_lock (the access is retried);
    a GUP keeps holding it and retries follow_page_pte.  `wrote`: the fault returned
    VM_FAULT_WRITE (a COW write fault completed), which makes faultin_page set FOLL_COW."""
    b = m.th[t]
    l[b + TH_FA] = l[b + TH_FB] = l[b + TH_X] = l[b + TH_Y] = 0
    if op.is_gup:
        l[b + TH_Y] = 1 if wrote else 0  # FOLL_COW for the retry (used by 5.8's forced COW)
        l[b + TH_PHASE] = GUP_SLOW
    else:
        l[b + TH_PHASE] = IDLE
        l[b + TH_LOCK] = LK_NONE


def _same_pte(pte, fa, flags):
    """pte_same() against a PTE remembered as (page register, flag bits): registers never
    hold raw PTE values, so that renaming frames (canonical states) stays exact."""
    if pte & PTE_FLAGS != flags:
        return False
    return fa == ZERO_REF if pte & PTE_ZERO else (pte >> PTE_SHIFT) == fa


def _segv(m, s, t):
    l = list(s)
    b = m.th[t]
    l[b + TH_PC] = m.t_len[t]
    l[b + TH_PHASE] = SEGV
    l[b + TH_LOCK] = LK_NONE
    return "SIGSEGV", l


def _observers_besides(m, l, f, p):
    """Can anybody but process p's one mapping observe frame f?  (another mapping, or a GUP
    reference held for another process).  A COW copy of a page with no such observer was
    unnecessary."""
    if l[m.fr[f] + FR_MAP] > 1 or l[m.fr[f] + FR_FLAGS] & FL_FILE:
        return True  # another mapping, or the file itself
    for r, ix in enumerate(m.refix):
        if l[ix] == f + 1 and m.ref_owner[r] != p:
            return True
    return False


