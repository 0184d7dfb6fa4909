"""What the kernel steps share: field offsets (bound from the state schema), page
allocation and freeing, the LRU add batch, the swapcache, mmap_lock and PT locks, and the
end of a fault.

Step functions take `(m, s, t, op)`: the compiled model, the state's fields (an array,
mmcheck.model.state: read it, never write it), the thread and its compiled op.  They
return None when the thread cannot move (blocked), or `(outcome, l)`: an outcome id of
mmcheck.model.steps and the successor's fields, a copy `l = s[:]` written in place; or,
for a choice, a list of `((outcome, argument), l)`.
"""

from __future__ import annotations

from .. import codec
from ..codec import PG_ALLOC, PG_CLASS, PG_LRU_BATCH
from ..state import (FRAMES, OBJECT_REC, PROCESS, PV, REFERENCE, SLOTS, THREAD_REC, UFFD_REC,
                     WT_REC)
from ..steps import CPU, GUP_SLOW, IDLE, KILLED, pt_locks_of

# ---- field offsets inside each record (from mmcheck.model.state)
P_STATUS, P_HAS_PINNED, P_WP_SEQ = PROCESS.offsets("status", "has_pinned", "write_protect_seq")
V_VMA, V_PTE, V_IDEAL, V_LEGIT = PV.offsets("vma", "pte", "ideal", "legit")
O_ENTRY, O_IDEAL, O_LEGIT = OBJECT_REC.offsets("entry", "ideal", "legit")
(U_CTX,) = UFFD_REC.offsets("ctx")
(R_DETACHED,) = REFERENCE.offsets("detached")
W_WP, W_SD, W_PAGEMAP = WT_REC.offsets("wp", "sd", "pagemap")
T_PC, T_STEP, T_LOCK, T_PAGE, T_NEW_PAGE, T_PAGES, T_A, T_B = THREAD_REC.offsets(
    "pc", "step", "mmap_lock", "page", "new_page", "pages", "a", "b")
# what the registers hold, by step (aliases of the same fields)
(T_OLD_PAGE, T_GUP_PAGE, T_ZAP_PAGE, T_ISOLATED, T_SWAPCACHE_PAGE, T_SPEC_PAGE) = \
    THREAD_REC.offsets("old_page", "gup_page", "zap_page", "isolated_page", "swapcache_page",
                       "spec_page")
T_ORIG_PTE, T_CURSOR = THREAD_REC.offsets("orig_pte", "cursor")
T_UNSHARE, T_FOLL_COW, T_SEQ, T_WRITE_FAULT, T_FAULT_KIND = THREAD_REC.offsets(
    "unshare", "foll_cow", "seq", "write_fault", "fault_kind")
T_FAULT_PAGE = THREAD_REC.offset["fault_page"]
T_UFFD_MSG = THREAD_REC.offset["uffd_msg"]
F_REF, F_MAP, F_FLAGS, F_CONTENT, F_SLOT = FRAMES.offsets("ref", "map", "flags", "content", "slot")
S_COUNT, S_CACHE, S_CONTENT = SLOTS.offsets("swap_count", "cache", "content")

# ---- process status
UNBORN, RUNNING, FORKING, EXITED = 0, 1, 2, 3
STATUS_NAMES = {UNBORN: "unborn", RUNNING: "running", FORKING: "forking", EXITED: "exited"}

# ---- mmap_lock mode a thread holds
LK_NONE, LK_READ, LK_WRITE = 0, 1, 2

ZERO_REF = -1  # a reference (or register) on the shared zero page
ZERO_VALUE = 0  # value id of "zeroes"; always legitimate
GUP_PIN_COUNTING_BIAS = 1024  # include/linux/mm.h


# ----------------------------------------------------------------------------- mmap_lock
def lock_state(m, s, t):
    """(another thread of t's mm holds mmap_lock for write, any other thread holds it)."""
    writer = other = False
    for u in m.proc_threads[m.t_proc[t]]:
        if u != t:
            mode = s[m.th[u] + T_LOCK]
            if mode:
                other = True
                if mode == LK_WRITE:
                    writer = True
    return writer, other


def can_read_lock(m, s, t):
    """May thread t run a fault now (it holds mmap_lock already, or nobody writes)?"""
    return s[m.th[t] + T_LOCK] != LK_NONE or not lock_state(m, s, t)[0]


def mmap_lock_available(m, s, t, write):
    """May thread t take its mm's mmap_lock now (for write: nobody else holds it; for
    read: nobody holds it for write)?"""
    writer, other = lock_state(m, s, t)
    return not other if write else not writer


# ----------------------------------------------------------------------------- PT locks
def pt_locked_by_other(m, s, t, p, v):
    """Does a thread other than t hold the PT lock of process p's PTE for vpage v across
    steps (mmcheck.model.steps: `Step.pt_locks`), so a PT-locked step of t on it spins?"""
    for u, b in enumerate(m.th):
        held = pt_locks_of(s[b + T_STEP])
        if held is not None and u != t and (p, v) in held(m, s, u):
            return True
    return False


# ----------------------------------------------------------------------------- vm_page_prot
def vm_page_prot_writable(m, vm_flags) -> bool:
    """codec.vm_page_prot_writable under the era's write-notification rules."""
    return codec.vm_page_prot_writable(vm_flags, m.uffd_wp_writenotify, m.softdirty_writenotify)


# ----------------------------------------------------------------------------- pages
def alloc(m, l, content, flags):
    """alloc_page: the lowest free frame, page_count 1."""
    for f, b in enumerate(m.fr):
        if not l[b + F_FLAGS] & PG_ALLOC:
            l[b + F_REF] = 1
            l[b + F_MAP] = 0
            l[b + F_FLAGS] = flags | PG_ALLOC
            l[b + F_CONTENT] = content
            return f
    raise RuntimeError("mmcheck: frame pool exhausted (model bound too small)")


def alloc_fresh(m, l, content, flags):
    """A page the kernel just allocated for a fault, added to the LRU (lru_cache_add)."""
    f = alloc(m, l, content, flags)
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
    if l[b + F_FLAGS] & PG_CLASS:
        return  # THP, a PTE-mapped THP subpage (its folio is large) or hugetlb
    queued = sum(1 for fb in m.fr if l[fb + F_FLAGS] & PG_LRU_BATCH)
    if queued >= m.lru_batch_capacity:
        drain_lru_batches(m, l)
        return
    l[b + F_FLAGS] |= PG_LRU_BATCH
    l[b + F_REF] += 1


def drain_lru_batches(m, l):
    """lru_add_drain: every page in the per-CPU LRU add batch goes to the LRU; the batch's
    references are dropped."""
    for f, b in enumerate(m.fr):
        if l[b + F_FLAGS] & PG_LRU_BATCH:
            l[b + F_FLAGS] &= ~PG_LRU_BATCH
            put(m, l, f, 1)


def put(m, l, f, n):
    """put_page n times; free the page at zero (fields reset so free frames are identical)."""
    b = m.fr[f]
    ref = l[b + F_REF] - n
    if ref <= 0:
        # a negative count is kept visible for refcount-sane; zero frees the page
        if ref == 0:
            l[b + F_MAP] = l[b + F_FLAGS] = l[b + F_CONTENT] = l[b + F_SLOT] = 0
    l[b + F_REF] = ref


def page_maybe_dma_pinned(l, fb) -> bool:
    """include/linux/mm.h: for a small page, page_count >= GUP_PIN_COUNTING_BIAS."""
    return l[fb + F_REF] >= GUP_PIN_COUNTING_BIAS


def observers_besides(m, l, f, p):
    """Who else can observe frame f but process p's one mapping: "other" (another
    mapping, the file itself, or a GUP reference held for another process), "pin" (only
    a FOLL_PIN the process p itself holds), or None (nobody: a COW copy was unnecessary)."""
    if l[m.fr[f] + F_MAP] > 1 or l[m.fr[f] + F_FLAGS] & codec.PG_FILE:
        return "other"
    own_pin = False
    for r, ix in enumerate(m.refix):
        if l[ix] == f + 1:
            if m.ref_owner[r] != p:
                return "other"
            own_pin = own_pin or m.ref_pin[r]
    return "pin" if own_pin else None


# ----------------------------------------------------------------------------- swapcache
def release_slot_if_unused(m, l, i):
    """A swap slot with no swap PTE and no swapcache page is free (fields reset)."""
    b = m.sl[i]
    if not l[b + S_COUNT] and not l[b + S_CACHE]:
        l[b + S_CONTENT] = 0


def delete_from_swap_cache(m, l, f):
    """delete_from_swap_cache: the page leaves the swapcache; the slot loses
    SWAP_HAS_CACHE and the page the swapcache's reference."""
    b = m.fr[f]
    i = l[b + F_SLOT] - 1
    l[b + F_SLOT] = 0
    l[m.sl[i] + S_CACHE] = 0
    release_slot_if_unused(m, l, i)
    put(m, l, f, 1)


def swapcache_page(m, l, i):
    """The frame in the swapcache for slot i, or -1."""
    want = i + 1
    for f, b in enumerate(m.fr):
        if l[b + F_SLOT] == want:
            return f
    return -1


def swapcount(m, l, fb) -> int:
    slot = l[fb + F_SLOT]
    return l[m.sl[slot - 1] + S_COUNT] if slot else 0


def try_to_free_swap(m, l, f):
    """try_to_free_swap: drop the page from the swapcache if no swap PTE uses its slot."""
    i = l[m.fr[f] + F_SLOT] - 1
    if i >= 0 and not l[m.sl[i] + S_COUNT]:
        delete_from_swap_cache(m, l, f)
        return True
    return False


def swap_free(m, l, slot):
    """swap_free: one swap entry's reference on the slot goes."""
    l[m.sl[slot] + S_COUNT] -= 1
    release_slot_if_unused(m, l, slot)


# ----------------------------------------------------------------------------- ops
# every thread field but the program counter is cleared when an op ends (IDLE, LK_NONE
# and "no page" are all 0), in one slice assignment (of the model's `cleared_thread`)
assert T_PC == 0 and IDLE == 0 and LK_NONE == 0


def op_done(m, l, t):
    """The op is done: the next program step (a menu thread goes back to idle, 0); the
    thread's step, lock and fields are cleared."""
    b = m.th[t]
    l[b] = 0 if m.is_menu[t] else l[b] + 1
    l[b + 1:b + THREAD_REC.size] = m.cleared_thread


def enter_page_syscall(m, s, t, op, write):
    """A one-step system call on one page under the mmap_lock (for write or read): None
    while the lock is not available, else (process, vpage, the PTE slot's base, the new
    state as a list with the op already done)."""
    if not mmap_lock_available(m, s, t, write=write):
        return None
    p, v = m.t_proc[t], op.v
    l = s[:]
    op_done(m, l, t)
    return p, v, m.pv[p][v], l


def fault_done(m, l, t, op, wrote):
    """handle_mm_fault returned: a CPU access drops mmap_lock (the access is retried);
    a GUP keeps holding it and retries follow_page_pte.  `wrote`: the fault returned
    VM_FAULT_WRITE (a COW write fault completed), which makes faultin_page set FOLL_COW."""
    b = m.th[t]
    l[b + T_PAGE] = l[b + T_NEW_PAGE] = l[b + T_A] = l[b + T_B] = 0
    if op.is_gup:
        l[b + T_FOLL_COW] = 1 if wrote else 0  # FOLL_COW for the retry (5.8's forced COW)
        l[b + T_STEP] = GUP_SLOW
    else:
        l[b + T_STEP] = IDLE
        l[b + T_LOCK] = LK_NONE


def segv(m, s, t):
    """The access hit no VMA (or a VMA without the permission): SIGSEGV kills the thread."""
    l = s[:]
    b = m.th[t]
    l[b + T_PC] = m.t_len[t]
    l[b + T_STEP] = KILLED
    l[b + T_LOCK] = LK_NONE
    return CPU.segv, l


def where(m, p, v) -> int:
    """A label argument naming process p's virtual page v (1-based; 0 means none)."""
    return p * m.n_vpages + v + 1


def where_object(m, o) -> int:
    """A label argument naming memory object o (after every process:page)."""
    return len(m.procs) * m.n_vpages + o + 1
