"""The step table: every kernel step the model runs, and every outcome a step can have.

Two kinds of declarations, both data:

* **Steps** (`Step`): the points *inside* a multi-step kernel path where a thread can stop
  while other threads run — the `step` field of its thread record.  Step 0 is "at the start
  of an op".  A step declares the kernel function it runs next, the references and mappings
  the thread holds while waiting there (through its `struct vm_fault`-like fields:
  refcount-sane counts them), the page-table locks it holds across the step boundary, and
  the fields it uses (shown in traces).
* **Outcomes** (`Outcome`), grouped by the kernel function that produces them: what one
  atomic step did ("do_wp_page -> wp_page_reuse", "gup_fast: pte changed, drop + fall
  back").  A transition's label is `(thread, pc, outcome id, argument)`; its display text,
  its tags (a COW copy, an unnecessary one, one that loses a pin, a reuse, a back-out, a
  fall-back, an error) and its coverage all come from here, never from parsing text.

The step functions live in mmcheck.model.kernel (one module per kernel file) and are bound
to their steps with `@implements(STEP)`.  Outcomes a step function returns are ints
(`FUNCTION.outcome`); `legacy` keeps the action text trace format 1 recorded, so old
traces still replay.  An outcome no shipped scenario reaches carries `unreachable=` with
the reason (tests/test_coverage.py checks both ways).
"""

from __future__ import annotations

from dataclasses import dataclass

from .state import THREAD_REC

_TH_PC, _TH_CURSOR = THREAD_REC.offsets("pc", "cursor")

# ----------------------------------------------------------------------------- outcomes
COPY = "copy"  # a COW copy was mapped (wp_page_copy, copy_present_page)
UNNECESSARY = "unnecessary"  # ... although nobody else could observe the old page
PIN_LOST = "pin_lost"  # ... away from a page a FOLL_PIN of the same process holds
REUSE = "reuse"  # a write fault kept the page (wp_page_reuse)
BACK_OUT = "back_out"  # the PTE changed under a fault: nothing done
FALL_BACK = "fall_back"  # GUP-fast gave up: slow GUP does it
ERROR = "error"  # the operation failed with an errno
SEGV = "segv"  # the access killed the thread
BOUND = "bound"  # a model bound was reached (mmcheck run reports it)
TAGS = (COPY, UNNECESSARY, PIN_LOST, REUSE, BACK_OUT, FALL_BACK, ERROR, SEGV, BOUND)


@dataclass(frozen=True)
class Outcome:
    id: int
    function: str  # the kernel function (or "cpu", "scenario", ...) it belongs to
    name: str
    text: str  # display; "{where}" is the label's argument (a process:page)
    tags: frozenset
    legacy: tuple  # the action texts of trace format 1
    unreachable: str | None = None  # why no shipped scenario can reach it

    @property
    def key(self) -> str:
        return f"{self.function}.{self.name}"


class KernelFunction:
    """A kernel function and its outcomes; `FUNCTION.outcome_name` is the outcome's id (a
    plain attribute, so the hot path pays one lookup)."""

    def __init__(self, name: str, source: str):
        self.name, self.source = name, source
        self.outcomes: dict = {}  # name -> Outcome

    def add(self, out: "Outcome") -> None:
        assert not hasattr(self, out.name), (self.name, out.name)
        self.outcomes[out.name] = out
        setattr(self, out.name, out.id)


OUTCOMES: list[Outcome] = []
FUNCTIONS: dict[str, KernelFunction] = {}


def o(text, *tags, legacy=None, unreachable=None):
    """An outcome's declaration: display text, tags, format-1 texts."""
    if legacy is None:
        legacy = (text,)
    elif isinstance(legacy, str):
        legacy = (legacy,)
    return text, frozenset(tags), tuple(legacy), unreachable


def function(name, source, **outcomes) -> KernelFunction:
    fn = KernelFunction(name, source)
    for key, spec in outcomes.items():
        text, tags, legacy, unreachable = spec if isinstance(spec, tuple) else o(spec)
        assert set(tags) <= set(TAGS), (name, key, tags)
        out = Outcome(len(OUTCOMES), name, key, text, tags, legacy, unreachable)
        OUTCOMES.append(out)
        fn.add(out)
    FUNCTIONS[name] = fn
    return fn


def _gup(text):
    """A fault outcome also reached from GUP's faultin_page (format 1 prefixed it)."""
    return (text, "faultin_page -> " + text)


# ----------------------------------------------------------------------------- the CPU
CPU = function(
    "cpu", "a load or store by the thread",
    load=o("load"),
    store=o("store"),
    segv=o("SIGSEGV", SEGV, legacy="SIGSEGV"),
)

# ----------------------------------------------------------------------------- faults
DO_ANONYMOUS_PAGE = function(
    "do_anonymous_page", "mm/memory.c",
    read=o("do_anonymous_page(read): map zero page",
           legacy=_gup("do_anonymous_page(read): map zero page")),
    write=o("do_anonymous_page(write)", legacy=_gup("do_anonymous_page(write)")),
)

def _lookup(handler):
    """The outcomes of a fault handler's first step, __do_fault: the object's page as
    shmem_fault / filemap_fault / hugetlb_no_page find it, locked and referenced."""
    return dict(
        hit=o(f"{handler} -> __do_fault: page cache hit, lock page"),
        hole=o(f"{handler} -> __do_fault: hole, new zeroed page cache page"),
        swapin=o(f"{handler} -> shmem_swapin_folio: swapped-out shmem page read back into "
                 f"the page cache"),
    )


DO_READ_FAULT = function("do_read_fault", "mm/memory.c (__do_fault -> shmem_fault, "
                                          "filemap_fault; hugetlb_no_page)", **_lookup("do_read_fault"))
DO_SHARED_FAULT = function("do_shared_fault", "mm/memory.c (__do_fault, then "
                                              "fault_dirty_shared_page); hugetlb_no_page",
                           **_lookup("do_shared_fault"))
DO_COW_FAULT = function("do_cow_fault", "mm/memory.c (anon_vma_prepare, alloc the copy, "
                                        "__do_fault, copy_user_highpage)",
                        **_lookup("do_cow_fault"))
FINISH_FAULT = function(
    "finish_fault", "mm/memory.c (finish_fault -> do_set_pte, under the PT lock)",
    map_ro=o("finish_fault: map the page cache page R/O"),
    map_writable=o("finish_fault: map the page writable (shared: vm_page_prot allows it)"),
    map_dirty=o("finish_fault: map the page writable and dirty (do_shared_fault)"),
    cow=o("finish_fault: map the private copy (do_cow_fault)"),
    map_wp=o("finish_fault: map the page R/O with the uffd-wp bit of the marker it replaces"),
    back_out=o("finish_fault: PTE no longer none, back out", BACK_OUT,
               unreachable="__do_fault returns the page locked and finish_fault maps it before "
                           "unlock_page, and nothing installs a PTE of an object mapping "
                           "without that lock; a second fault on the same page sleeps in "
                           "lock_page and, in the model, retries the access from its start "
                           "once it may run (the kernel's second fault would back out here "
                           "and retry: the same states, one step shorter)"),
)
DO_WP_PAGE = function(
    "do_wp_page", "mm/memory.c",
    reuse=o("do_wp_page -> wp_page_reuse", REUSE),
    unshare_exclusive=o("do_wp_page: unshare, page already exclusive", REUSE),
    copy=o("do_wp_page -> wp_page_copy"),
    unshare_copy=o("do_wp_page(unshare) -> wp_page_copy"),
    shared=o("do_wp_page -> wp_page_shared -> wp_page_reuse (shared mapping: no COW)", REUSE),
)
WP_PAGE_COPY = function(
    "wp_page_copy", "mm/memory.c",
    alloc=o("wp_page_copy: alloc + copy"),
    back_out=o("wp_page_copy: pte changed, back out", BACK_OUT),
    install_zero=o("wp_page_copy: install copy of zero page", COPY),
    install=o("wp_page_copy: install copy", COPY),
    install_unnecessary=o("wp_page_copy: install copy (unnecessary COW)", COPY, UNNECESSARY),
    install_pin_lost=o("wp_page_copy: install copy (the process's own pin keeps the old page)",
                       COPY, PIN_LOST, legacy="wp_page_copy: install copy (unnecessary COW)"),
    put=o("wp_page_copy: put old page"),
)

# ----------------------------------------------------------------------------- GUP
GUP = function(
    "__get_user_pages", "mm/gup.c",
    efault=o("__get_user_pages: -EFAULT", ERROR),
    pin=o("follow_page_pte: pin page"),
    get=o("follow_page_pte: get page"),
)
GUP_FAST = function(
    "gup_fast", "mm/gup.c (lockless_pages_from_mm, gup_pte_range)",
    seq_odd=o("gup_fast: write_protect_seq odd, fall back", FALL_BACK),
    begin=o("gup_fast: begin"),
    unusable=o("gup_fast: pte not usable, fall back", FALL_BACK),
    read=o("gup_fast: read pte"),
    get_page=o("gup_fast: get_page"),
    freed=o("gup_fast: page freed, fall back", FALL_BACK),
    grab=o("gup_fast: try_grab"),
    changed=o("gup_fast: pte changed, drop + fall back", FALL_BACK),
    must_unshare=o("gup_fast: must unshare, drop + fall back", FALL_BACK),
    unchanged=o("gup_fast: pte unchanged"),
    seq_changed=o("gup_fast: write_protect_seq changed, unpin + fall back", FALL_BACK),
    pinned=o("gup_fast: pinned"),
    got=o("gup_fast: got page"),
)

# ----------------------------------------------------------------------------- fork
DUP_MMAP = function(
    "dup_mmap", "kernel/fork.c",
    start=o("dup_mmap: lock parent, copy VMAs"),
    finish=o("dup_mmap: flush_tlb_mm, unlock; child runs"),
)
COPY_PAGE_RANGE = function(
    "copy_page_range", "mm/memory.c (copy_pte_range, copy_present_pte, copy_nonpresent_pte)",
    nothing=o("copy_page_range: nothing mapped"),
    skip=o("vma_needs_copy: no anon_vma, not copied (the child faults the page in)"),
    marker=o("copy_nonpresent_pte: uffd-wp marker copied"),
    marker_dropped=o("copy_nonpresent_pte: uffd-wp marker not copied (child VMA not "
                     "registered)"),
    shared=o("copy_present_pte: not a COW mapping, PTE copied as is"),
    zero=o("copy_present_pte: zero page"),
    swap=o("copy_nonpresent_pte: swap_duplicate"),
    early_cow=o("copy_present_page: early COW of maybe-pinned page", COPY),
    share=o("copy_present_pte: share page"),
    wrprotect=o("copy_present_pte: wrprotect parent, map child R/O"),
)

# ----------------------------------------------------------------------------- zap, mprotect
ZAP = function(
    "zap_pte_range", "mm/memory.c (unmap_page_range, zap_pte_range, tlb_finish_mmu)",
    munmap_nothing=o("munmap: nothing mapped"),
    madvise_enomem=o("madvise: -ENOMEM", ERROR),
    none=o("zap_pte_range", legacy="zap_pte_range"),
    swap=o("zap_pte_range: free_swap_and_cache"),
    clear=o("zap_pte_range: clear pte, page_remove_rmap"),
    put=o("tlb_finish_mmu: put page"),
)
MPROTECT = function(
    "change_pte_range", "mm/mprotect.c (mprotect_fixup, change_protection)",
    enomem=o("mprotect: -ENOMEM", ERROR),
    wrprotect=o("change_pte_range: write-protect", legacy="change_pte_range"),
    stays_ro=o("change_pte_range: VM_WRITE set, the PTE stays R/O (next write faults)",
               legacy="change_pte_range"),
    keep=o("change_pte_range: VM_WRITE set, the PTE was writable already",
           legacy="change_pte_range"),
    mkwrite=o("change_pte_range: can_change_pte_writable, PTE made writable",
              legacy="change_pte_range"),
    shared_prot=o("change_pte_range: shared mapping, pte_modify(vm_page_prot) maps it writable"),
    dirty_writable=o("change_pte_range: write-notified shared mapping, dirty PTE made writable"),
)
CLEAR_REFS = function(
    "clear_refs_write", "fs/proc/task_mmu.c (clear_soft_dirty)",
    soft_dirty=o("clear_refs: clear_soft_dirty"),
)

# ----------------------------------------------------------------------------- references
REFERENCE = function(
    "put_page", "mm/gup.c (unpin_user_page) / include/linux/mm.h (put_page)",
    unpin=o("unpin_user_page"),
    put=o("put_page"),
    not_held=o("put: not held"),
)
DEVICE = function(
    "device", "DMA (or a pipe reader) through a GUP reference",
    write=o("device write"),
    write_nothing=o("device write: no page"),
    read=o("device read"),
)

# ----------------------------------------------------------------------------- exit, sync
EXIT_MMAP = function(
    "exit_mmap", "kernel/exit.c do_exit -> mm/mmap.c exit_mmap",
    unmap=o("exit_mmap: unmap_vmas"),
    free=o("exit_mmap: free pages, release references"),
)
SCENARIO = function(
    "scenario", "scenario synchronisation (not kernel code)",
    wait=o("wait4"),
    signal=o("signal"),
    await_=o("await"),
)

# ----------------------------------------------------------------------------- swap
MADV_PAGEOUT = function(
    "madvise_pageout", "mm/madvise.c (madvise_cold_or_pageout_pte_range)",
    nothing=o("madvise_pageout: nothing to reclaim"),
    skipped=o("madvise_pageout: page skipped (shared, locked or not swappable)"),
    isolate=o("madvise_pageout -> shrink_page_list: isolate, lock page"),
    einval=o("madvise_pageout: -EINVAL (hugetlb VMA: can_madv_lru_vma)", ERROR),
)
SHRINK = function(
    "shrink_page_list", "mm/vmscan.c (shrink_page_list, add_to_swap)",
    isolate=o("shrink_page_list: isolate, lock page at {where}",
              legacy="shrink_page_list: isolate, lock page at {where}"),
    keep_pinned=o("shrink_page_list: maybe pinned, keep"),
    swap_full=o("add_to_swap: swap device full, keep page", BOUND),
    add_to_swap=o("add_to_swap"),
    in_swapcache=o("shrink_page_list: already in the swapcache"),
    still_mapped=o("shrink_page_list: still mapped, keep",
                   unreachable="nothing can map the page between try_to_unmap and pageout: "
                               "do_swap_page waits for the page lock reclaim holds, fork "
                               "copies swap entries, and try_to_unmap gives up on a mapping "
                               "only by ending reclaim"),
)
TRY_TO_UNMAP = function(
    "try_to_unmap", "mm/rmap.c (try_to_unmap_one)",
    done=o("try_to_unmap: no mapping left"),
    exclusive_pinned=o("try_to_unmap: exclusive and maybe pinned, restore PTE, give up"),
    one=o("try_to_unmap_one: swap entry installed at {where}"),
    file_one=o("try_to_unmap_one: page cache page unmapped at {where} (PTE cleared)"),
)
REMOVE_MAPPING = function(
    "__remove_mapping", "mm/vmscan.c (pageout, __remove_mapping)",
    freeze_failed=o("__remove_mapping: page_count frozen failed, page stays in swapcache"),
    freed=o("__remove_mapping: page written to swap and freed"),
)
SHMEM_WRITEPAGE = function(
    "shmem_writepage", "mm/vmscan.c (pageout, __remove_mapping), mm/shmem.c (shmem_writepage)",
    keep=o("pageout: page cache page not freeable (extra references: is_page_cache_freeable; "
           "6.4 d824ec2a1546: maybe pinned), kept in the page cache"),
    swap_full=o("shmem_writepage: swap device full, keep page", BOUND),
    freed=o("shmem_writepage: page cache entry -> swap entry, page written and freed"),
)
DO_SWAP_PAGE = function(
    "do_swap_page", "mm/memory.c",
    hit=o("do_swap_page: swapcache hit, lock page"),
    read=o("do_swap_page: read into swapcache, lock page"),
    back_out=o("do_swap_page: pte changed, back out", BACK_OUT),
    map_writable=o("do_swap_page: map writable"),
    map_ro=o("do_swap_page: map read-only"),
)

# ----------------------------------------------------------------------------- write tracking
UFFD_REGISTER = function(
    "userfaultfd_register", "fs/userfaultfd.c (UFFDIO_API features, UFFDIO_REGISTER, "
                            "vma_can_userfault)",
    ok=o("UFFDIO_REGISTER(MODE_WP): VM_UFFD_WP set on the VMA"),
    einval=o("UFFDIO_REGISTER(MODE_WP): -EINVAL (memory type or feature not offered)", ERROR),
)
UFFD_UNREGISTER = function(
    "userfaultfd_unregister", "fs/userfaultfd.c (userfaultfd_clear_vma -> uffd_wp_range)",
    ok=o("UFFDIO_UNREGISTER: WP bits and markers cleared, VM_UFFD_WP dropped, waiters woken"),
    nothing=o("UFFDIO_UNREGISTER: the VMA was not registered"),
    einval=o("UFFDIO_UNREGISTER: -EINVAL (no VMA)", ERROR),
)
UFFD_WRITEPROTECT = function(
    "mwriteprotect_range", "mm/userfaultfd.c (uffd_wp_range -> change_protection), "
                           "mm/mprotect.c (change_pte_range MM_CP_UFFD_WP / _RESOLVE)",
    protect=o("change_pte_range(MM_CP_UFFD_WP): WP set, write-protected"),
    protect_marker=o("change_pte_range(MM_CP_UFFD_WP): none PTE -> uffd-wp PTE marker"),
    protect_none=o("change_pte_range(MM_CP_UFFD_WP): none anonymous PTE silently skipped"),
    protect_marked=o("change_pte_range(MM_CP_UFFD_WP): already a marker"),
    unprotect=o("change_pte_range(MM_CP_UFFD_WP_RESOLVE): WP cleared, the PTE stays R/O"),
    unprotect_writable=o("change_pte_range(MM_CP_UFFD_WP_RESOLVE): WP cleared, PTE writable"),
    unprotect_marker=o("change_pte_range(MM_CP_UFFD_WP_RESOLVE): marker dropped"),
    unprotect_none=o("change_pte_range(MM_CP_UFFD_WP_RESOLVE): nothing mapped"),
    enoent=o("UFFDIO_WRITEPROTECT: -ENOENT (the VMA is not registered for WP)", ERROR),
)
HANDLE_USERFAULT = function(
    "handle_userfault", "fs/userfaultfd.c (handle_userfault, VM_UFFD_WP)",
    wp=o("handle_userfault(VM_UFFD_WP): fault message queued, the thread sleeps"),
)
UFFD_READ = function(
    "userfaultfd_read", "fs/userfaultfd.c (userfaultfd_ctx_read)",
    msg=o("read(uffd): UFFD_EVENT_PAGEFAULT (WP) for {where}"),
)
UFFD_MONITOR = function(
    "uffd_monitor", "a userfaultfd monitor thread (read(2), UFFDIO_WRITEPROTECT clear + wake)",
    resolve=o("monitor: read the uffd-wp fault at {where}, unprotect it and wake the writer"),
)
UFFD_WAKE = function(
    "userfaultfd_wake", "fs/userfaultfd.c (UFFDIO_WAKE, wake_userfault)",
    woken=o("UFFDIO_WAKE: the threads waiting at {where} retry"),
    nothing=o("UFFDIO_WAKE: nobody waits"),
)
PTE_MARKER = function(
    "handle_pte_marker", "mm/memory.c (handle_pte_marker, pte_marker_handle_uffd_wp)",
    cleared=o("handle_pte_marker: uffd-wp marker in an unregistered VMA, cleared"),
    anon_read=o("do_anonymous_page(read) on a uffd-wp marker: zero page mapped with WP"),
    anon_write=o("do_anonymous_page(write) on a uffd-wp marker: new page mapped R/O with WP"),
)
PAGEMAP = function(
    "pagemap_read", "fs/proc/task_mmu.c (pagemap_pmd_range, pte_to_pagemap_entry)",
    read=o("pagemap_read: entry of {where}"),
)
MIGRATE = function(
    "migrate_pages", "mm/migrate.c (try_to_migrate_one, move_to_new_folio, "
                     "remove_migration_pte)",
    done=o("migrate_pages: page moved, PTEs rebuilt from the migration entries"),
    busy=o("migrate_pages: page busy (other references or locked), not migrated", ERROR),
    nothing=o("migrate_pages: nothing mapped", ERROR),
)
MREMAP = function(
    "mremap", "mm/mremap.c (move_vma, move_page_tables, move_ptes)",
    moved=o("mremap: VMA and PTE moved (PTE marked soft-dirty)"),
    einval=o("mremap: -EINVAL/-EFAULT (no VMA, destination in use or not anonymous)", ERROR),
)
MMAP = function(
    "mmap_region", "mm/mmap.c (mmap_region: VM_SOFTDIRTY on new VMAs)",
    new=o("mmap: new private anonymous VMA (VM_SOFTDIRTY)"),
    merged=o("mmap: new private anonymous VMA, merged with the adjacent one"),
    einval=o("mmap: -EINVAL (the address is mapped, or not anonymous memory)", ERROR),
)

# ----------------------------------------------------------------------------- background
SPECULATIVE = function(
    "speculative_ref", "folio_try_get_rcu (pagecache lookup, GUP-fast, compaction)",
    get=o("speculative get of page at {where}"),
    put=o("speculative put"),
)
LRU = function(
    "lru_add_drain", "mm/swap.c",
    drain=o("lru_add_drain"),
)


# ============================================================================= steps
@dataclass
class Step:
    id: int
    name: str  # what the thread does next, as traces show it
    kernel: str  # the kernel function that runs
    holds: dict  # thread field -> (references, mappings) the thread holds while here
    uses: tuple  # thread fields (or aliases) that mean something while here
    pt_locks: object = None  # (m, s, t) -> PTEs ((process, vpage)) whose PT lock is held
    fn: object = None  # the step function, bound by @implements


STEPS: list[Step] = []


def step(name, kernel, holds=None, uses=(), pt_locks=None) -> int:
    s = Step(len(STEPS), name, kernel, dict(holds or {}), tuple(uses), pt_locks)
    STEPS.append(s)
    return s.id


def implements(step_id):
    """Bind a step function to its step."""
    def bind(fn):
        assert STEPS[step_id].fn is None, STEPS[step_id].name
        STEPS[step_id].fn = fn
        return fn
    return bind


def _fork_pt_locks(m, s, t):
    """copy_pte_range holds the parent's and the child's PT locks across copy_present_pte."""
    th = m.th[t]
    x = s[th + _TH_CURSOR]
    op = m.programs[t][s[th + _TH_PC]]
    return ((m.t_proc[t], x), (op.child, x))


IDLE = step("", "(between operations)")
WP_COPY_ALLOC = step("wp_page_copy: allocate + copy", "wp_page_copy",
                     holds={"old_page": (1, 0)}, uses=("old_page", "orig_pte", "unshare"))
WP_COPY_INSTALL = step("wp_page_copy: install copy", "wp_page_copy",
                       holds={"old_page": (1, 0), "new_page": (1, 0)},
                       uses=("old_page", "new_page", "orig_pte", "unshare"))
WP_COPY_PUT = step("wp_page_copy: put old page", "wp_page_copy",
                   holds={"old_page": (1, 0)}, uses=("old_page", "unshare"))
GUP_SLOW = step("__get_user_pages", "__get_user_pages", uses=("foll_cow",))
GUPF_READ = step("gup_fast: read pte", "gup_fast", uses=("seq",))
GUPF_GRAB = step("gup_fast: try_grab", "gup_fast", uses=("gup_page", "orig_pte", "seq"))
GUPF_RECHECK = step("gup_fast: recheck pte", "gup_fast", holds={"gup_page": ("bias", 0)},
                    uses=("gup_page", "orig_pte", "seq"))
GUPF_END = step("gup_fast: seqcount check", "gup_fast", holds={"gup_page": ("bias", 0)},
                uses=("gup_page", "seq"))
FORK_COPY = step("copy_present_pte", "copy_page_range", uses=("cursor",))
FORK_WRPROTECT = step("copy_present_pte: wrprotect", "copy_page_range",
                      holds={"page": (1, 1)}, uses=("page", "cursor"),
                      pt_locks=_fork_pt_locks)
FORK_END = step("dup_mmap: finish", "dup_mmap")
ZAP_FLUSH = step("zap: tlb flush + put", "zap_pte_range", holds={"zap_page": (1, 0)},
                 uses=("zap_page",))
EXIT_FREE = step("exit_mmap: free", "exit_mmap", holds={"pages": (1, 0)}, uses=("pages",))
KILLED = step("SIGSEGV", "(the thread died of SIGSEGV)")
RECLAIM_ADD = step("shrink_page_list: add_to_swap", "shrink_page_list",
                   holds={"isolated_page": (1, 0)}, uses=("isolated_page",))
RECLAIM_UNMAP = step("try_to_unmap", "try_to_unmap", holds={"isolated_page": (1, 0)},
                     uses=("isolated_page",))
RECLAIM_FREE = step("pageout + __remove_mapping", "__remove_mapping",
                    holds={"isolated_page": (1, 0)}, uses=("isolated_page",))
FILE_FAULT_MAP = step("finish_fault", "finish_fault",
                      holds={"fault_page": (1, 0), "new_page": (1, 0)},
                      uses=("fault_page", "new_page", "fault_kind", "orig_pte"))
SWAPIN_MAP = step("do_swap_page: map page", "do_swap_page",
                  holds={"swapcache_page": (1, 0)},
                  uses=("swapcache_page", "orig_pte", "write_fault"))
UFFD_WAIT = step("handle_userfault: waiting", "handle_userfault", uses=("uffd_msg",))
SPEC_DROP = step("speculative ref: put", "speculative_ref", holds={"spec_page": (1, 0)},
                 uses=("spec_page",))


# op kind -> the function that runs its first step (bound by @starts in the kernel modules
# and the scenario interpreter)
STARTS: dict = {}


def starts(*kinds):
    def bind(fn):
        for kind in kinds:
            assert kind not in STARTS, kind
            STARTS[kind] = fn
        return fn
    return bind


def pt_locks_of(step_id: int):
    """The function naming the PT locks a thread holds at this step, or None."""
    return STEPS[step_id].pt_locks


def outcome(oid: int) -> Outcome:
    return OUTCOMES[oid]


def tagged(tag: str) -> frozenset:
    """Outcome ids carrying `tag`."""
    return frozenset(out.id for out in OUTCOMES if tag in out.tags)


def by_key(key: str) -> Outcome:
    """The outcome called "function.name"."""
    fn, _, name = key.rpartition(".")
    return FUNCTIONS[fn].outcomes[name]
