"""userfaultfd write-protect (fs/userfaultfd.c, mm/userfaultfd.c) and /proc/pid/pagemap
(fs/proc/task_mmu.c): registration, UFFDIO_WRITEPROTECT, the WP fault that queues a message
and sleeps, the monitor that reads it, waking, and the pagemap read that reports the
soft-dirty and uffd-wp bits (reference write-tracking.md §1, §2, R1-R4, R13).

Each UFFDIO_* ioctl on one page is one step under the PT lock (mwriteprotect_range takes
mmap_lock for read, registration for write).  A thread whose write fault hits a uffd-wp PTE
queues a message and sleeps in handle_userfault with mmap_lock released; the monitor's
unprotect (without DONTWAKE), UFFDIO_WAKE or unregistration wakes it and it retries the
access from its start (VM_FAULT_RETRY)."""

from __future__ import annotations

from .. import codec, ghost
from ..codec import (MARKER, NONE, PRESENT, SWAP, UFFD_OPEN, UFFD_WP, UFFD_WP_UNPOPULATED,
                     VM_HUGETLB, VM_SHARED, VM_UFFD_WP, VM_WRITE, ZERO)
from ..steps import (GUP_SLOW, HANDLE_USERFAULT, IDLE, PAGEMAP, UFFD_MONITOR, UFFD_READ,
                     UFFD_REGISTER,
                     UFFD_UNREGISTER, UFFD_WAIT, UFFD_WAKE, UFFD_WRITEPROTECT, implements,
                     starts)
from .common import (LK_NONE, LK_WRITE, T_LOCK, T_PAGE, T_NEW_PAGE, T_A, T_B, T_PC, T_STEP,
                     T_UFFD_MSG, U_CTX, V_PTE, V_VMA, enter_page_syscall, mmap_lock_available,
                     op_done, vm_page_prot_writable, where)

MSG_QUEUED, MSG_READ = 1, 2  # a waiting thread's `uffd_msg`


# ----------------------------------------------------------------------------- predicates
def memory_type(m, p, v) -> str:
    """What vma_can_userfault() looks at: anonymous, shmem (shared anonymous memory,
    memfd, tmpfs, and their private mappings), hugetlb, or another file."""
    o = m.pv_object[p][v]
    if m.vpage_class[v] & codec.PG_HUGETLB:
        return "hugetlb"
    if o < 0:
        return "anon"
    return "shmem" if m.obj_shmem[o] else "file"


def can_register_wp(m, p, v) -> bool:
    """vma_can_userfault(vma, VM_UFFD_WP) in this era: anonymous memory from 5.7
    (63b2d4174c4a; hugetlb and shmem refused), shmem and hugetlb from 5.19 (PTE markers);
    never a disk file (page cache with its own writeback)."""
    kind = memory_type(m, p, v)
    if m.uffd_wp == "none" or kind == "file":
        return False
    if kind == "anon":
        return True
    return m.uffd_wp in ("markers", "no_markers")


def _file_backed(m, p, v, vm_flags) -> bool:
    """!vma_is_anonymous(vma) as the marker helpers test it: shmem and hugetlb memory."""
    return memory_type(m, p, v) != "anon" or bool(vm_flags & VM_HUGETLB)


def uses_markers(m, l, p, v, vm_flags) -> bool:
    """userfaultfd_wp_use_markers(vma): a VM_UFFD_WP VMA of file-backed memory (shmem,
    hugetlb), or anonymous memory with UFFD_FEATURE_WP_UNPOPULATED - in an era with
    markers."""
    if not vm_flags & VM_UFFD_WP or m.uffd_wp != "markers":
        return False
    return (_file_backed(m, p, v, vm_flags)
            or bool(l[m.uffd[0][p] + U_CTX] & UFFD_WP_UNPOPULATED))


def keeps_wp_on_zap(m, l, p, v, vm_flags, pte) -> bool:
    """zap_install_uffd_wp_if_needed / pte_install_uffd_wp_if_needed: a file-backed
    (shmem, hugetlb) PTE that carries uffd-wp becomes a marker when zapped (not by munmap,
    which drops markers: ZAP_FLAG_DROP_MARKER) or unmapped by reclaim."""
    if not vm_flags & VM_UFFD_WP or m.uffd_wp != "markers":
        return False
    return (_file_backed(m, p, v, vm_flags)
            and codec.kind(pte) in (PRESENT, ZERO, SWAP, MARKER) and codec.uffd_wp(pte))


# ----------------------------------------------------------------------------- waiters
def wake_waiters(m, l, p, v) -> int:
    """wake_userfault: the threads of process p sleeping on a uffd fault at page v retry
    the access (a GUP retries follow_page_pte); returns how many."""
    woken = 0
    for u in m.proc_threads[p]:
        b = m.th[u]
        if l[b + T_STEP] == UFFD_WAIT and m.programs[u][l[b + T_PC]].v == v:
            op = m.programs[u][l[b + T_PC]]
            l[b + T_UFFD_MSG] = 0
            l[b + T_STEP] = GUP_SLOW if op.is_gup else IDLE
            woken += 1
    return woken


def handle_userfault(m, l, t, op):
    """handle_userfault(vmf, VM_UFFD_WP) in sync mode: queue an UFFD_EVENT_PAGEFAULT (WP)
    message, drop mmap_lock (VM_FAULT_RETRY) and sleep until woken."""
    b = m.th[t]
    l[b + T_PAGE] = l[b + T_NEW_PAGE] = l[b + T_A] = l[b + T_B] = 0
    l[b + T_LOCK] = LK_NONE
    l[b + T_UFFD_MSG] = MSG_QUEUED
    l[b + T_STEP] = UFFD_WAIT
    ghost.reported(m, l, m.t_proc[t], op.v)
    return HANDLE_USERFAULT.wp, l


@implements(UFFD_WAIT)
def userfault_wait(m, s, t, op):
    """Sleeping in handle_userfault: only a waker moves this thread."""
    return None


# ----------------------------------------------------------------------------- ioctls
@starts("uffd_register")
def userfaultfd_register(m, s, t, op):
    """UFFDIO_API + UFFDIO_REGISTER(MODE_WP) on the page's VMA, mmap_lock for write:
    -EINVAL if the era cannot write-protect this memory or does not offer a feature;
    else VM_UFFD_WP (vma->vm_page_prot is recomputed: 6.2 makes a shared mapping
    write-notify) and the mm's context records the features."""
    entered = enter_page_syscall(m, s, t, op, write=True)
    if entered is None:
        return None
    p, v, base, l = entered
    if (not l[base + V_VMA] or not can_register_wp(m, p, v)
            or (op.features & UFFD_WP_UNPOPULATED and not m.uffd_wp_unpopulated)):
        return UFFD_REGISTER.einval, l
    l[base + V_VMA] |= VM_UFFD_WP
    l[m.uffd[0][p] + U_CTX] |= UFFD_OPEN | op.features
    return UFFD_REGISTER.ok, l


@starts("uffd_unregister")
def userfaultfd_unregister(m, s, t, op):
    """UFFDIO_UNREGISTER, mmap_lock for write: userfaultfd_clear_vma clears the range's
    uffd-wp bits and markers (uffd_wp_range(false)), VM_UFFD_WP goes, waiters are woken."""
    entered = enter_page_syscall(m, s, t, op, write=True)
    if entered is None:
        return None
    p, v, base, l = entered
    vma = l[base + V_VMA]
    if not vma:
        return UFFD_UNREGISTER.einval, l
    if not vma & VM_UFFD_WP:
        return UFFD_UNREGISTER.nothing, l
    _resolve(m, l, p, v, vma)
    l[base + V_VMA] = vma & ~VM_UFFD_WP
    wake_waiters(m, l, p, v)
    ghost.unprotected(m, l, p, v, ghost.EX_UNREGISTER)
    return UFFD_UNREGISTER.ok, l


@starts("uffd_wp", "uffd_unwp")
def mwriteprotect_range(m, s, t, op):
    """UFFDIO_WRITEPROTECT on one page (mmap_lock read, PT lock): -ENOENT without
    VM_UFFD_WP; protect (MM_CP_UFFD_WP): a present or swap entry gets WP (and loses write),
    a none PTE gets a marker where markers are used, else is silently skipped (reference
    R1, B0); unprotect (MM_CP_UFFD_WP_RESOLVE): WP cleared, markers dropped, the write bit
    restored by the era's rule, and (without DONTWAKE) the waiters woken."""
    entered = enter_page_syscall(m, s, t, op, write=False)
    if entered is None:
        return None
    p, v, base, l = entered
    vma = l[base + V_VMA]
    if not vma & VM_UFFD_WP:
        return UFFD_WRITEPROTECT.enoent, l
    if op.kind == "uffd_wp":
        return _protect(m, l, p, v, base, vma), l
    outcome = _resolve(m, l, p, v, vma)
    ghost.unprotected(m, l, p, v)
    if not op.dontwake:
        wake_waiters(m, l, p, v)
    return outcome, l


def _protect(m, l, p, v, base, vma):
    pte = l[base + V_PTE]
    k = codec.kind(pte)
    if k == PRESENT or k == ZERO or k == SWAP:
        l[base + V_PTE] = codec.mkuffd_wp(pte)
        ghost.protected(m, l, p, v, True)
        return UFFD_WRITEPROTECT.protect
    if k == MARKER:
        ghost.protected(m, l, p, v, True)
        return UFFD_WRITEPROTECT.protect_marked
    if k == NONE:
        if uses_markers(m, l, p, v, vma):
            l[base + V_PTE] = codec.marker(UFFD_WP)
            ghost.protected(m, l, p, v, True)
            return UFFD_WRITEPROTECT.protect_marker
        ghost.protected(m, l, p, v, False)
        return UFFD_WRITEPROTECT.protect_none
    raise codec.unhandled(pte, "change_pte_range(MM_CP_UFFD_WP)")


def _resolve(m, l, p, v, vma):
    """change_pte_range(MM_CP_UFFD_WP_RESOLVE) on (p, v)."""
    base = m.pv[p][v]
    pte = l[base + V_PTE]
    k = codec.kind(pte)
    if k == MARKER:
        l[base + V_PTE] = NONE
        return UFFD_WRITEPROTECT.unprotect_marker
    if k == NONE:
        return UFFD_WRITEPROTECT.unprotect_none
    if k == SWAP or k == ZERO:
        l[base + V_PTE] = codec.clear_uffd_wp(pte)
        return UFFD_WRITEPROTECT.unprotect
    if k != PRESENT:
        raise codec.unhandled(pte, "change_pte_range(MM_CP_UFFD_WP_RESOLVE)")
    pte = codec.clear_uffd_wp(pte)
    if not codec.write(pte) and unprotect_makes_writable(m, l, vma, pte):
        pte = codec.mkwrite(pte)
    l[base + V_PTE] = pte
    if codec.write(pte):
        return UFFD_WRITEPROTECT.unprotect_writable
    return UFFD_WRITEPROTECT.unprotect


def unprotect_makes_writable(m, l, vma, pte) -> bool:
    """Before 6.3 uffd_wp_range applied vm_get_page_prot(vm_flags): writable for a shared
    writable mapping (even where vma->vm_page_prot would not be), R/O for a private one;
    from 6.3 (931298e103c2) vma->vm_page_prot and MM_CP_TRY_CHANGE_WRITABLE:
    can_change_pte_writable, as mprotect (never hugetlb: hugetlb_change_protection)."""
    if not vma & VM_WRITE:
        return False
    if not m.uffd_unprotect_try_writable:
        return bool(vma & VM_SHARED)
    if vma & VM_HUGETLB:
        return False
    if vma & VM_SHARED:
        return vm_page_prot_writable(m, vma) or m.shared_dirty_writable(m, l, vma, pte)
    return m.can_change_pte_writable(m, l, vma, pte)


# ----------------------------------------------------------------------------- the monitor
@starts("uffd_read")
def userfaultfd_read(m, s, t, op):
    """read(2) on the uffd: one queued uffd-wp fault message (any of them: a monitor may
    read them all and handle them in any order); blocks while there is none."""
    owner = m.t_proc[t] if op.uffd_proc is None else op.uffd_proc
    out = []
    for u in m.proc_threads[owner]:
        b = m.th[u]
        if s[b + T_STEP] == UFFD_WAIT and s[b + T_UFFD_MSG] == MSG_QUEUED:
            l = s[:]
            l[b + T_UFFD_MSG] = MSG_READ
            op_done(m, l, t)
            out.append(((UFFD_READ.msg, where(m, owner, m.programs[u][s[b + T_PC]].v)), l))
    return out or None


@starts("uffd_monitor")
def uffd_monitor(m, s, t, op):
    """The background monitor: take any queued uffd-wp fault message, unprotect the page
    (UFFDIO_WRITEPROTECT without MODE_WP, under the faulting mm's mmap_lock for read) and
    wake the writer.  It waits while there is no message."""
    out = []
    for u, b in enumerate(m.th):
        if s[b + T_STEP] != UFFD_WAIT or s[b + T_UFFD_MSG] != MSG_QUEUED:
            continue
        p, v = m.t_proc[u], m.programs[u][s[b + T_PC]].v
        if any(s[m.th[w] + T_LOCK] == LK_WRITE for w in m.proc_threads[p]):
            continue  # mwriteprotect_range: mmap_read_lock waits for a writer
        l = s[:]
        l[b + T_UFFD_MSG] = MSG_READ
        vma = l[m.pv[p][v] + V_VMA]
        if vma & VM_UFFD_WP:
            _resolve(m, l, p, v, vma)
            ghost.unprotected(m, l, p, v)
        wake_waiters(m, l, p, v)
        l[m.th[t] + T_PC] += 1
        out.append(((UFFD_MONITOR.resolve, where(m, p, v)), l))
    return out or None


@starts("uffd_wake")
def userfaultfd_wake(m, s, t, op):
    """UFFDIO_WAKE on the page: the waiters retry."""
    l = s[:]
    op_done(m, l, t)
    p = m.t_proc[t]
    if wake_waiters(m, l, p, op.v):
        return [((UFFD_WAKE.woken, where(m, p, op.v)), l)]  # a one-way "choice": the label
    return UFFD_WAKE.nothing, l


# ----------------------------------------------------------------------------- pagemap
def pagemap_bits(m, s, p, v) -> int:
    """pte_to_pagemap_entry / pagemap_pte_hole / pagemap_hugetlb_range: soft-dirty (the
    entry's bit, or VM_SOFTDIRTY; hugetlb PTEs have none), uffd-wp (5.14+: the entry's bit,
    or a marker), present, swapped (a swap entry or a marker: both are swap-format)."""
    base = m.pv[p][v]
    vma, pte = s[base + V_VMA], s[base + V_PTE]
    k = codec.kind(pte)
    bits = 0
    if vma & codec.VM_SOFTDIRTY or (codec.soft_dirty(pte) and not vma & VM_HUGETLB):
        bits |= ghost.PM_SOFT_DIRTY
    if m.pagemap_uffd_wp and codec.uffd_wp(pte):
        bits |= ghost.PM_UFFD_WP
    if k == PRESENT or k == ZERO:
        bits |= ghost.PM_PRESENT
    elif k == SWAP or k == MARKER:
        bits |= ghost.PM_SWAP
    return bits


@starts("pagemap_read")
def pagemap_read(m, s, t, op):
    """read of /proc/pid/pagemap at the page (mmap_lock read, PT lock): the entry goes
    to the write-tracking ghost state (what the reader learnt)."""
    if not mmap_lock_available(m, s, t, write=False):
        return None
    p, v = m.t_proc[t], op.v
    l = s[:]
    ghost.pagemap_read(m, l, p, v, pagemap_bits(m, s, p, v))
    op_done(m, l, t)
    return [((PAGEMAP.read, where(m, p, v)), l)]  # one successor whose label names the page
