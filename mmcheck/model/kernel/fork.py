"""fork (kernel/fork.c dup_mmap -> mm/memory.c copy_page_range): the child's VMAs, then
one virtual page at a time its PTE, then the TLB flush and the child starts.

copy_present_pte is two steps under both PT locks (which the step table records, so
try_to_unmap waits): lockless GUP-fast can run between the pinned-page check with
page_dup_rmap and the write-protect, which is the T2.1 race 5.11 closed with
write_protect_seq."""

from __future__ import annotations

from .. import codec, ghost
from ..codec import (MARKER, NONE, PG_ANON_EXCLUSIVE, PG_HUGETLB, PG_PTE_THP, PG_THP, PRESENT,
                     SWAP, UFFD_EVENT_FORK, VM_HUGETLB, VM_SHARED, VM_UFFD_WP, VM_WRITE, WRITE,
                     ZERO)
from ..steps import (COPY_PAGE_RANGE, DUP_MMAP, FORK_COPY, FORK_END, FORK_WRPROTECT,
                     implements, starts)
from .common import (
    F_CONTENT, F_FLAGS, F_MAP, F_REF, FORKING, LK_WRITE, P_STATUS, P_WP_SEQ, RUNNING, T_CURSOR,
    T_LOCK, T_PAGE, T_STEP, U_CTX, V_PTE, V_VMA, alloc_fresh, mmap_lock_available, op_done,
)
from .swap import copy_nonpresent_pte


@starts("fork")
def dup_mmap(m, s, t, op):
    """dup_mmap P6.1-2: mmap_write_lock the parent, create the child mm with copies of
    the parent's VMAs (anon_vma_fork: the child's VMA has an anon_vma if the parent's
    has); page tables are copied per VMA next."""
    if s[m.th[t] + T_LOCK] or not mmap_lock_available(m, s, t, write=True):
        return None
    p, c = m.t_proc[t], op.child
    l = s[:]
    b = m.th[t]
    l[b + T_LOCK] = LK_WRITE
    l[m.proc[c] + P_STATUS] = FORKING
    event_fork = m.tracking and l[m.uffd[0][p] + U_CTX] & UFFD_EVENT_FORK
    for v in range(m.n_vpages):
        vma = l[m.pv[p][v] + V_VMA]
        # without UFFD_FEATURE_EVENT_FORK the child's VMA loses its uffd context
        # (dup_userfaultfd: VM_UFFD_WP cleared); with it the child gets a new context
        l[m.pv[c][v] + V_VMA] = vma if event_fork else vma & ~VM_UFFD_WP
    if event_fork:
        l[m.uffd[0][c] + U_CTX] = l[m.uffd[0][p] + U_CTX]
    l[b + T_CURSOR] = 0
    l[b + T_STEP] = FORK_COPY
    return DUP_MMAP.start, l


def _next_vpage(m, l, t):
    b = m.th[t]
    l[b + T_CURSOR] += 1
    l[b + T_STEP] = FORK_END if l[b + T_CURSOR] == m.n_vpages else FORK_COPY


@implements(FORK_COPY)
def copy_present_pte(m, s, t, op):
    """copy_page_range -> copy_present_pte for one vpage under both PT locks, first half:
    the era's decision for a maybe-pinned page, then page_dup_rmap (5.19:
    page_try_dup_anon_rmap clears PageAnonExclusive).  A VMA vma_needs_copy() turns down
    is skipped (the child faults its pages in); a shared mapping's PTE is copied as it is,
    in one step (nothing to write-protect).  The child's ideal memory of this page is taken
    here: what the parent had when its page table was copied."""
    p, c = m.t_proc[t], op.child
    b = m.th[t]
    v = s[b + T_CURSOR]
    pb, cb = m.pv[p][v], m.pv[c][v]
    l = s[:]
    child_vma = l[cb + V_VMA]
    ghost.inherit(m, l, p, c, v, event_fork=bool(child_vma & VM_UFFD_WP))
    pte = l[pb + V_PTE]
    k = codec.kind(pte)
    vma = l[pb + V_VMA]
    if not vma or k == NONE:
        _next_vpage(m, l, t)
        return COPY_PAGE_RANGE.nothing, l
    # vma_needs_copy: always when the child VMA has uffd-wp (WP is not recoverable from the
    # page cache), else only with an anon_vma (and hugetlb before 6.0)
    if not (child_vma & VM_UFFD_WP or m.vma_needs_copy(vma)):
        _next_vpage(m, l, t)
        return COPY_PAGE_RANGE.skip, l
    # the child keeps uffd-wp bits only if its VMA is registered (copy_present_pte,
    # copy_nonpresent_pte: pte_clear_uffd_wp / pte_swp_clear_uffd_wp)
    keep_wp = bool(child_vma & VM_UFFD_WP)
    if k == MARKER:
        _next_vpage(m, l, t)
        if keep_wp or not m.fork_uffd_marker_dropped:
            l[cb + V_PTE] = pte  # before the fix also into an unregistered child (B2)
            return COPY_PAGE_RANGE.marker, l
        return COPY_PAGE_RANGE.marker_dropped, l
    if k == ZERO:
        l[cb + V_PTE] = pte if keep_wp else codec.clear_uffd_wp(pte)
        _next_vpage(m, l, t)
        return COPY_PAGE_RANGE.zero, l
    if k == SWAP:
        copy_nonpresent_pte(m, l, pb, cb)
        if not keep_wp:
            l[cb + V_PTE] = codec.clear_uffd_wp(l[cb + V_PTE])
        _next_vpage(m, l, t)
        return COPY_PAGE_RANGE.swap, l
    if k != PRESENT:
        raise codec.unhandled(pte, "copy_present_pte")
    f = codec.frame(pte)
    fb = m.fr[f]
    if vma & VM_SHARED:
        # not a COW mapping: get_page, page_dup_file_rmap, the same PTE in the child,
        # marked clean (copy_present_pte: pte_mkclean for VM_SHARED; copy_hugetlb_page_range
        # with cow == false copies the entry as it is)
        l[fb + F_REF] += 1
        l[fb + F_MAP] += 1
        child = pte if vma & VM_HUGETLB else codec.mkclean(pte)
        l[cb + V_PTE] = child if keep_wp else codec.clear_uffd_wp(child)
        _next_vpage(m, l, t)
        return COPY_PAGE_RANGE.shared, l
    seq = m.proc[p] + P_WP_SEQ
    if m.fork_must_copy(m, l, p, f):
        # copy_present_page: the child gets its own copy now; the parent keeps its
        # (still writable) PTE and the pinned page (70e806e4e645; 5.19 -EBUSY path).
        # A pinned PMD-mapped THP is split first (d042035eaf5f): it stays PTE-mapped.
        flags = l[fb + F_FLAGS]
        if flags & PG_THP:
            l[fb + F_FLAGS] = flags & ~PG_THP | PG_PTE_THP
        n = alloc_fresh(m, l, l[fb + F_CONTENT],
                        (flags & PG_HUGETLB) | (PG_ANON_EXCLUSIVE if m.ae else 0))
        l[m.fr[n] + F_MAP] = 1
        # copy_present_page: maybe_mkwrite(pte_mkdirty(pte)) (pte_mkdirty: soft-dirty too)
        l[cb + V_PTE] = codec.present(n, codec.dirty_bits(True) & ~(
            0 if l[cb + V_VMA] & VM_WRITE else WRITE))
        if codec.uffd_pte_wp(child_vma, pte):  # copy_present_page: userfaultfd_pte_wp
            l[cb + V_PTE] = codec.mkuffd_wp(l[cb + V_PTE])
        if m.gup_fast_seqcount:
            l[seq] += 2  # raw_write_seqcount_begin/end around this VMA's copy
        _next_vpage(m, l, t)
        return COPY_PAGE_RANGE.early_cow, l
    l[fb + F_REF] += 1  # get_page
    l[fb + F_MAP] += 1  # page_dup_rmap
    l[b + T_PAGE] = f + 1  # the page whose child mapping is in flight (refcount-sane)
    if m.ae:
        l[fb + F_FLAGS] &= ~PG_ANON_EXCLUSIVE  # page_try_dup_anon_rmap: ClearPageAnonExclusive
    if m.gup_fast_seqcount:
        l[seq] += 1  # raw_write_seqcount_begin (57efa1fe5957)
    l[b + T_STEP] = FORK_WRPROTECT
    return COPY_PAGE_RANGE.share, l


@implements(FORK_WRPROTECT)
def copy_present_pte_wrprotect(m, s, t, op):
    """copy_present_pte, second half: ptep_set_wrprotect on the parent (COW mapping) and
    set the child's PTE to the same page, read-only, dirty bit kept.  copy_pte_range holds
    both PT locks across the two halves, so only lockless paths (GUP-fast) see the state
    in between."""
    p, c = m.t_proc[t], op.child
    b = m.th[t]
    v = s[b + T_CURSOR]
    pb, cb = m.pv[p][v], m.pv[c][v]
    l = s[:]
    l[b + T_PAGE] = 0
    pte = codec.wrprotect(l[pb + V_PTE])
    l[pb + V_PTE] = pte
    l[cb + V_PTE] = pte if l[cb + V_VMA] & VM_UFFD_WP else codec.clear_uffd_wp(pte)
    if m.gup_fast_seqcount:
        l[m.proc[p] + P_WP_SEQ] += 1  # raw_write_seqcount_end
    _next_vpage(m, l, t)
    return COPY_PAGE_RANGE.wrprotect, l


@implements(FORK_END)
def dup_mmap_finish(m, s, t, op):
    """dup_mmap P6.6: flush_tlb_mm(parent), mmap_write_unlock; the child starts running."""
    l = s[:]
    l[m.proc[op.child] + P_STATUS] = RUNNING
    op_done(m, l, t)
    return DUP_MMAP.finish, l
