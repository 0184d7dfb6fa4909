"""Codecs of the packed state fields: page-table entries, VMA flags and page flags.

This is the only module that knows how a PTE is packed into an int.  Everything else asks
it: `kind(pte)` first, then the accessors of that kind; an accessor used on an entry of
another kind raises `PTEKindError`, so a new kind (a PTE marker, say) can never be read as
a present page by code that was written before it existed.

A PTE, as the kernel has it (`pte_t` plus the swap-entry and marker encodings):

  kind     NONE     pte_none()
           PRESENT  a present PTE mapping a normal page (vm_normal_page() != NULL)
           ZERO     a present PTE mapping the shared zero page (a special mapping: no
                    refcount, no mapcount)
           SWAP     a swap entry (is_swap_pte(), the swp_entry_t of a slot)
           MARKER   a PTE marker (pte_marker; e.g. PTE_MARKER_UFFD_WP)
  bits     WRITE (pte_write), DIRTY (pte_dirty), SOFT_DIRTY (pte_soft_dirty /
           pte_swp_soft_dirty), UFFD_WP (pte_uffd_wp / pte_swp_uffd_wp / the marker's
           uffd-wp bit), EXCLUSIVE (pte_swp_exclusive: the swapped-out page was
           PageAnonExclusive)
  target   PRESENT: the frame; SWAP: the swap slot

Page-cache entries of memory objects use the same encoding (PRESENT: the cached frame,
SWAP: a shmem page's swap slot), so one canonicalisation handles both.
"""

from __future__ import annotations

# ----------------------------------------------------------------------------- PTE kinds
NONE, PRESENT, ZERO, SWAP, MARKER = 0, 1, 2, 3, 4
KIND_NAMES = {NONE: "none", PRESENT: "present", ZERO: "zero", SWAP: "swap", MARKER: "marker"}
_KIND = 7

# bits (which kinds carry them: see the module doc)
WRITE = 1 << 3
DIRTY = 1 << 4
SOFT_DIRTY = 1 << 5
UFFD_WP = 1 << 6
EXCLUSIVE = 1 << 7
_SHIFT = 8
FLAGS = (1 << _SHIFT) - 1  # kind and bits: what pte_same() compares besides the target

# the zero page's PTE and a marker take soft-dirty only from mremap (move_soft_dirty_pte:
# pte_mksoft_dirty on any present PTE, pte_swp_mksoft_dirty on any swap-format entry)
_BITS = {PRESENT: WRITE | DIRTY | SOFT_DIRTY | UFFD_WP, ZERO: SOFT_DIRTY | UFFD_WP,
         SWAP: SOFT_DIRTY | UFFD_WP | EXCLUSIVE, MARKER: SOFT_DIRTY | UFFD_WP, NONE: 0}


class PTEKindError(RuntimeError):
    """A PTE was read as a kind it is not (a bug in mmcheck: a step met a kind it does not
    handle)."""


def unhandled(pte: int, where: str) -> PTEKindError:
    """The error for a PTE kind a caller has no case for."""
    return PTEKindError(f"{where}: PTE kind {KIND_NAMES.get(pte & _KIND, pte & _KIND)} not "
                        f"handled ({describe(pte)})")


# ----------------------------------------------------------------------------- building
def present(frame: int, bits: int = 0) -> int:
    """mk_pte(page): a present PTE mapping `frame` with `bits` (WRITE, DIRTY, SOFT_DIRTY,
    UFFD_WP)."""
    return ((frame + 1) << _SHIFT) | PRESENT | (bits & _BITS[PRESENT])


def zero_page(bits: int = 0) -> int:
    """The shared zero page, mapped read-only (do_anonymous_page on a read fault)."""
    return ZERO | (bits & _BITS[ZERO])


def swap_entry(slot: int, bits: int = 0) -> int:
    """swp_entry_to_pte(swp_entry(type, slot)) with its software bits (EXCLUSIVE,
    SOFT_DIRTY, UFFD_WP)."""
    return ((slot + 1) << _SHIFT) | SWAP | (bits & _BITS[SWAP])


def marker(bits: int = UFFD_WP) -> int:
    """make_pte_marker(PTE_MARKER_UFFD_WP)."""
    return MARKER | (bits & _BITS[MARKER])


def dirty_bits(writable: bool) -> int:
    """The bits of a PTE a write fault maps: writable, dirty and soft-dirty
    (maybe_mkwrite(pte_mkdirty(entry))), or none for a VMA without VM_WRITE."""
    return WRITE | DIRTY | SOFT_DIRTY if writable else 0


# ----------------------------------------------------------------------------- reading
def kind(pte: int) -> int:
    return pte & _KIND


def is_present(pte: int) -> bool:
    """A present PTE mapping a normal page (not the zero page)."""
    return pte & _KIND == PRESENT


def is_swap(pte: int) -> bool:
    return pte & _KIND == SWAP


def is_zero(pte: int) -> bool:
    return pte & _KIND == ZERO


def is_marker(pte: int) -> bool:
    return pte & _KIND == MARKER


def maps_memory(pte: int) -> bool:
    """pte_present(): a normal page or the zero page (what a CPU access goes through)."""
    return pte & _KIND in (PRESENT, ZERO)


def frame(pte: int) -> int:
    """The frame a PRESENT PTE maps."""
    if pte & _KIND != PRESENT:
        raise unhandled(pte, "frame()")
    return (pte >> _SHIFT) - 1


def frame_or_none(pte: int) -> int:
    """The frame of a PRESENT PTE, else -1 (for scans over every PTE)."""
    return (pte >> _SHIFT) - 1 if pte & _KIND == PRESENT else -1


def slot(pte: int) -> int:
    """The swap slot of a SWAP entry."""
    if pte & _KIND != SWAP:
        raise unhandled(pte, "slot()")
    return (pte >> _SHIFT) - 1


def target(pte: int) -> int:
    """Frame + 1 of a PRESENT PTE, slot + 1 of a SWAP entry, 0 for the other kinds."""
    return pte >> _SHIFT


def retarget(pte: int, new_target: int) -> int:
    """The same entry pointing at another frame or slot (+1), for renamings."""
    return (new_target << _SHIFT) | (pte & FLAGS)


def flags(pte: int) -> int:
    """Kind and bits: with the target, all pte_same() compares."""
    return pte & FLAGS


def same(pte: int, target_plus_one: int, flag_bits: int) -> bool:
    """pte_same() against a PTE remembered as (its target + 1, `flags()`): threads never
    keep whole PTEs, so that renaming frames and slots stays exact."""
    return pte & FLAGS == flag_bits and pte >> _SHIFT == target_plus_one


def write(pte: int) -> bool:
    return bool(pte & WRITE)


def dirty(pte: int) -> bool:
    return bool(pte & DIRTY)


def soft_dirty(pte: int) -> bool:
    return bool(pte & SOFT_DIRTY)


def uffd_wp(pte: int) -> bool:
    return bool(pte & UFFD_WP)


def exclusive(pte: int) -> bool:
    return bool(pte & EXCLUSIVE)


# ----------------------------------------------------------------------------- changing
def mkwrite(pte: int) -> int:
    if pte & _KIND != PRESENT:
        raise unhandled(pte, "mkwrite()")
    return pte | WRITE


def wrprotect(pte: int) -> int:
    """pte_wrprotect (a no-op on entries that are not present)."""
    return pte & ~WRITE


def mkdirty(pte: int) -> int:
    """pte_mkdirty: on x86 it sets the soft-dirty bit too (_PAGE_SOFT_DIRTY)."""
    if pte & _KIND != PRESENT:
        raise unhandled(pte, "mkdirty()")
    return pte | DIRTY | SOFT_DIRTY


def hw_dirty(pte: int) -> int:
    """The dirty bit the MMU sets on a store through a writable PTE (not soft-dirty)."""
    if pte & _KIND != PRESENT:
        raise unhandled(pte, "hw_dirty()")
    return pte | DIRTY


def mkuffd_wp(pte: int) -> int:
    """pte_mkuffd_wp / pte_swp_mkuffd_wp; for a present PTE also pte_wrprotect (the
    callers did it, and since "always wr-protect in pte_mkuffd_wp" the helper does)."""
    k = pte & _KIND
    if k == PRESENT or k == ZERO:
        return (pte | UFFD_WP) & ~WRITE
    if k == SWAP or k == MARKER:
        return pte | UFFD_WP
    raise unhandled(pte, "mkuffd_wp()")


def restored(old: int, frame: int, grant_write: bool, keep_wp: bool, wp_wrprotects: bool) -> int:
    """remove_migration_pte: a present PTE for `frame` from the migration entry of `old`:
    its dirty and soft-dirty bits, write if `old` was writable or `grant_write` (the
    VMA's vm_page_prot is writable), uffd-wp if `keep_wp`; `wp_wrprotects`: pte_mkuffd_wp
    also clears write (6.3: "always wr-protect pte in pte|pmd_mkuffd_wp")."""
    if old & _KIND != PRESENT:
        raise unhandled(old, "restored()")
    pte = present(frame, old & (DIRTY | SOFT_DIRTY))
    if old & WRITE or grant_write:
        pte |= WRITE
    if keep_wp and old & UFFD_WP:
        pte |= UFFD_WP
        if wp_wrprotects:
            pte &= ~WRITE
    return pte


def clear_uffd_wp(pte: int) -> int:
    """pte_clear_uffd_wp / pte_swp_clear_uffd_wp."""
    return pte & ~UFFD_WP


def mkclean(pte: int) -> int:
    """pte_mkclean: the hardware dirty bit goes (x86: soft-dirty stays)."""
    return pte & ~DIRTY


def clear_soft_dirty(pte: int) -> int:
    return pte & ~SOFT_DIRTY


def clear_exclusive(pte: int) -> int:
    """pte_swp_clear_exclusive."""
    return pte & ~EXCLUSIVE


def with_bits(pte: int, bits: int) -> int:
    """Add bits of another entry (e.g. a swap entry inheriting soft-dirty / uffd-wp from
    the PTE it replaces), keeping only those the kind carries."""
    return pte | (bits & _BITS[pte & _KIND])


def bits(pte: int) -> int:
    return pte & (FLAGS & ~_KIND)


def tracking_bits(pte: int) -> int:
    """The write-tracking bits an entry carries (soft-dirty, uffd-wp), which the kernel
    copies onto the entry that replaces it (a swap entry, a COW copy made to unshare, the
    page swapped back in)."""
    return pte & (SOFT_DIRTY | UFFD_WP)


def _expect(pte: int, want: int, where: str) -> None:
    if pte & _KIND != want:
        raise unhandled(pte, where)


# ----------------------------------------------------------------------------- display
def describe(pte: int, frame_name=lambda f: f"f{f}", slot_name=lambda i: f"s{i}") -> str:
    k = pte & _KIND
    names = [n for bit, n in ((WRITE, "W"), (DIRTY, "D"), (SOFT_DIRTY, "SD"), (UFFD_WP, "UFFD_WP"),
                              (EXCLUSIVE, "X")) if pte & bit]
    what = {PRESENT: lambda: frame_name((pte >> _SHIFT) - 1),
            SWAP: lambda: slot_name((pte >> _SHIFT) - 1)}.get(k, lambda: "")()
    return " ".join([KIND_NAMES.get(k, "?")] + ([what] if what else []) + names)


def as_dict(pte: int, frame_name, slot_name) -> dict:
    """The snapshot form of a PTE (docs/trace-format.md)."""
    k = pte & _KIND
    out: dict = {"kind": KIND_NAMES[k]}
    if k == PRESENT:
        out.update(frame=frame_name((pte >> _SHIFT) - 1), writable=bool(pte & WRITE),
                   dirty=bool(pte & DIRTY))
    elif k == ZERO:
        out["writable"] = False
    elif k == SWAP:
        out.update(slot=slot_name((pte >> _SHIFT) - 1), exclusive=bool(pte & EXCLUSIVE))
    if pte & SOFT_DIRTY:
        out["soft_dirty"] = True
    if pte & UFFD_WP:
        out["uffd_wp"] = True
    return out


# ============================================================================ VMA flags
# vm_flags of the VMA a (process, virtual page) is in; 0: no VMA (never mapped, or munmap).
VM_READ = 1
VM_WRITE = 2
VM_SHARED = 4
VM_UFFD_WP = 8
VM_SOFTDIRTY = 16  # set on new VMAs; clear_refs(4) clears it: then soft-dirty is tracked
VM_HUGETLB = 32
# vma->anon_vma != NULL (not a vm_flags bit in the kernel; kept here because it belongs to
# the VMA): set by anon_vma_prepare() on the first anonymous page (do_anonymous_page's
# write fault, do_cow_fault, wp_page_copy, a THP fault, a private hugetlb page) and by
# anon_vma_fork(); fork copies the page tables of a VMA only if it has one (vma_needs_copy)
VM_ANON_VMA = 64
# the mapping's file needs dirty accounting (vma_wants_writenotify: a filesystem with
# page_mkwrite / writeback, e.g. ext4; not shmem or hugetlbfs): a shared writable mapping of
# it write-faults on the first store to every page
VM_WRITENOTIFY_FS = 128
_VM_NAMES = ((VM_READ, "r"), (VM_WRITE, "w"), (VM_SHARED, "s"), (VM_UFFD_WP, "uffd-wp"),
             (VM_SOFTDIRTY, "softdirty"), (VM_HUGETLB, "hugetlb"), (VM_ANON_VMA, "anon_vma"),
             (VM_WRITENOTIFY_FS, "dirty-accounted"))


def vma_present(vm_flags: int) -> bool:
    return vm_flags != 0


def vma_writable(vm_flags: int) -> bool:
    return bool(vm_flags & VM_WRITE)


def is_cow_mapping(vm_flags: int) -> bool:
    """include/linux/mm.h is_cow_mapping(): a private mapping (every mapping the model
    makes may write: VM_MAYWRITE)."""
    return not vm_flags & VM_SHARED


def is_shared(vm_flags: int) -> bool:
    return bool(vm_flags & VM_SHARED)


def vma_wants_writenotify(vm_flags: int, uffd_wp_notifies: bool = True,
                          softdirty_notifies: bool = True) -> bool:
    """mm/mmap.c vma_wants_writenotify(): a shared writable mapping whose PTEs are mapped
    R/O so that the first store faults: the filesystem wants to know (page_mkwrite, dirty
    accounting), soft-dirty tracking is on (64e455079e1b; not for hugetlb), or (6.2,
    51d3d5eb74ff, `uffd_wp_notifies`) the VMA is registered for uffd-wp.  hugetlb PTEs
    ignore vm_page_prot anyway (make_huge_pte)."""
    if vm_flags & (VM_SHARED | VM_WRITE) != VM_SHARED | VM_WRITE or vm_flags & VM_HUGETLB:
        return False
    return (bool(vm_flags & VM_WRITENOTIFY_FS)
            or (softdirty_notifies and vma_soft_dirty_enabled(vm_flags))
            or (uffd_wp_notifies and bool(vm_flags & VM_UFFD_WP)))


def vm_page_prot_writable(vm_flags: int, uffd_wp_notifies: bool = True,
                          softdirty_notifies: bool = True) -> bool:
    """Does vma->vm_page_prot allow writes (what mk_pte() gives a PTE a fault maps without
    FAULT_FLAG_WRITE)?  Only for a shared writable mapping that wants no write notification;
    a private mapping's vm_page_prot is always R/O (COW)."""
    return (vm_flags & (VM_SHARED | VM_WRITE) == VM_SHARED | VM_WRITE
            and not vma_wants_writenotify(vm_flags, uffd_wp_notifies, softdirty_notifies))


def vma_soft_dirty_enabled(vm_flags: int) -> bool:
    """mm/internal.h vma_soft_dirty_enabled(): soft-dirty tracking is on once VM_SOFTDIRTY
    has been cleared (CONFIG_MEM_SOFT_DIRTY assumed)."""
    return not vm_flags & VM_SOFTDIRTY


def vma_prot(vm_flags: int) -> str:
    """The protection as the snapshot shows it: rw, r or unmapped."""
    if not vm_flags:
        return "unmapped"
    return "rw" if vm_flags & VM_WRITE else "r"


def vma_describe(vm_flags: int) -> str:
    return ",".join(n for bit, n in _VM_NAMES if vm_flags & bit) or "-"


def vma_uffd_wp(vm_flags: int) -> bool:
    """userfaultfd_wp(vma): registered with UFFDIO_REGISTER_MODE_WP."""
    return bool(vm_flags & VM_UFFD_WP)


def uffd_pte_wp(vm_flags: int, pte: int) -> bool:
    """userfaultfd_pte_wp(vma, pte): a WP bit that means something (the VMA is registered)."""
    return bool(vm_flags & VM_UFFD_WP) and bool(pte & UFFD_WP)


# ============================================================================ userfaultfd
# a process's userfaultfd context (the `uffd` record's ctx)
UFFD_OPEN = 1  # a uffd registered WP ranges of this mm
UFFD_EVENT_FORK = 2  # UFFD_FEATURE_EVENT_FORK: children get a context, WP bits are copied
UFFD_EVENT_REMAP = 4  # UFFD_FEATURE_EVENT_REMAP: mremap keeps the registration
UFFD_WP_UNPOPULATED = 8  # UFFD_FEATURE_WP_UNPOPULATED: markers on none anon PTEs (6.4)
UFFD_FEATURES = {"event_fork": UFFD_EVENT_FORK, "event_remap": UFFD_EVENT_REMAP,
                 "wp_unpopulated": UFFD_WP_UNPOPULATED}


def uffd_describe(ctx: int) -> str:
    """A userfaultfd context as a trace shows it: `none`, or `open` and its features."""
    if not ctx & UFFD_OPEN:
        return "none"
    return " ".join(["open"] + [n for n, bit in UFFD_FEATURES.items() if ctx & bit])


def vma_tracking(vm_flags: int) -> str:
    """The VMA's write-tracking flags: `uffd-wp` (VM_UFFD_WP), `softdirty` (VM_SOFTDIRTY)."""
    return " ".join(n for bit, n in ((VM_UFFD_WP, "uffd-wp"), (VM_SOFTDIRTY, "softdirty"))
                    if vm_flags & bit) or "-"


# ============================================================================ page flags
# struct page / folio flags the model keeps on a frame.
PG_ANON_EXCLUSIVE = 1  # PageAnonExclusive
PG_ALLOC = 2  # allocated (not in the page allocator's free lists)
PG_LOCKED = 4  # PG_locked, held by reclaim or swap-in
PG_LRU_BATCH = 8  # sits in a per-CPU LRU add batch, which holds one reference
PG_FILE = 16  # a pagecache page (file or memfd), not anonymous
PG_THP = 32  # PMD-mapped transparent huge page (modelled as one unit)
PG_PTE_THP = 64  # PTE-mapped THP (one subpage mapped here; the folio has others)
PG_HUGETLB = 128  # hugetlb page
PG_SHMEM = 256  # a shmem (memfd, tmpfs, shared anonymous) pagecache page: swap-backed
PG_CLASS = PG_THP | PG_PTE_THP | PG_HUGETLB
PAGE_FLAG_NAMES = ((PG_ANON_EXCLUSIVE, "AnonExclusive"), (PG_LOCKED, "Locked"),
                   (PG_LRU_BATCH, "LRU batch"))


def page_kind(flags: int) -> str:
    return ("hugetlb file" if flags & PG_FILE and flags & PG_HUGETLB else
            "shmem" if flags & PG_SHMEM else "file" if flags & PG_FILE else "thp" if flags & PG_THP else
            "pte-mapped thp" if flags & PG_PTE_THP else
            "hugetlb" if flags & PG_HUGETLB else "anon")


# ----------------------------------------------------------------------------- bulk (renaming)
def present_frames(entries) -> list:
    """The frames of the PRESENT entries among `entries`, in order."""
    return [(e >> _SHIFT) - 1 for e in entries if e & _KIND == PRESENT]


def swap_slots(entries) -> list:
    """The slots of the SWAP entries among `entries`, in order."""
    return [(e >> _SHIFT) - 1 for e in entries if e & _KIND == SWAP]


def renamed(entries, new_frame, new_slot) -> list:
    """`entries` with frame f renamed to new_frame[f] and slot i to new_slot[i]."""
    return [((new_frame[(e >> _SHIFT) - 1] + 1) << _SHIFT) | (e & FLAGS) if e & _KIND == PRESENT
            else ((new_slot[(e >> _SHIFT) - 1] + 1) << _SHIFT) | (e & FLAGS)
            if e & _KIND == SWAP else e for e in entries]


def signed_targets(entries) -> list:
    """Per entry: frame + 1 for PRESENT, -(slot + 1) for SWAP, 0 for the other kinds (one
    call per state for the properties that look at every PTE)."""
    return [(e >> _SHIFT) if e & _KIND == PRESENT else
            -(e >> _SHIFT) if e & _KIND == SWAP else 0 for e in entries]


def scan(entries) -> tuple:
    """(signed_targets(entries), writable_indices(entries)) in one pass."""
    targets = []
    writable = []
    i = 0
    for e in entries:
        k = e & _KIND
        if k == PRESENT:
            targets.append(e >> _SHIFT)
            if e & WRITE:
                writable.append(i)
        elif k == SWAP:
            targets.append(-(e >> _SHIFT))
        else:
            targets.append(0)
        i += 1
    return targets, writable


def writable_indices(entries) -> list:
    """Indices of the entries that are writable (present, pte_write)."""
    return [i for i, e in enumerate(entries) if e & WRITE]


def writable_frame(pte: int) -> int:
    """The frame a writable present PTE maps (a store lands there), else -1."""
    return (pte >> _SHIFT) - 1 if pte & WRITE and pte & _KIND == PRESENT else -1
