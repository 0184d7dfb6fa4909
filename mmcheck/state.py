"""The compact state layout of a compiled scenario, and the one place that canonicalises it.

A state is a flat tuple of ints.  `Layout` is computed once per scenario and says where
each field lives; readable accessors sit on top for properties, traces and tests, while
the transition functions index the tuple directly through the precomputed offsets.

Sections (in this order):
  events                 one int, bit i set when event i was signalled
  kernel                 one int, always RUNNING: the "process" background actors belong to
  counters               menu scenarios: uses of each operation template so far
  per process  (PROC_*)  status, has_pinned, write_protect_seq
  per process x vpage    vma (0 unmapped / VMA_R / VMA_RW), pte (encoded), ideal value id,
                         legit (bitmask of the values this process may observe here)
  per thread   (TH_*)    pc, phase, mmap-lock mode held, registers fa fb fm x y
  per frame    (FR_*)    ref (page_count), map (mapcount), flags, content value id,
                         swap slot + 1 while in the swapcache
  per swap slot (SL_*)   swap count (swap PTEs), SWAP_HAS_CACHE, content written to swap
  per reference          0 = not held, ZERO_REF = the shared zero page, f+1 = frame f

Frames (physical pages) and swap slots carry no identity beyond their fields, so states
that differ only by a renaming of frames and of slots are the same state
(`Layout.canonical`).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

# ---- process status
UNBORN, RUNNING, FORKING, EXITED = 0, 1, 2, 3
STATUS_NAMES = {UNBORN: "unborn", RUNNING: "running", FORKING: "forking", EXITED: "exited"}

# ---- VMA protection
VMA_NONE, VMA_R, VMA_RW = 0, 1, 2

# ---- PTE encoding: flag bits in the low byte, frame+1 (or swap slot+1) above.
# 0 is pte_none().
PTE_W = 1  # pte_write()
PTE_D = 2  # pte_dirty()
PTE_SD = 4  # soft-dirty (clear_refs; write tracking)
PTE_UWP = 8  # uffd-wp (write tracking, later)
PTE_ZERO = 16  # maps the shared zero page (vm_normal_page() == NULL, no counters)
PTE_SWAP = 32  # swap entry: slot+1 above the flags
PTE_SWX = 64  # exclusive swap entry (pte_swp_exclusive, 5.19)
PTE_MARKER = 128  # PTE marker (later)
PTE_FLAGS = 255
PTE_SHIFT = 8
ZERO_PTE = PTE_ZERO

# ---- frame flags
FL_AE = 1  # PageAnonExclusive
FL_ALLOC = 2  # allocated (not in the page allocator's free lists)
FL_LOCKED = 4  # PG_locked held by reclaim or swap-in
FL_LRU_BATCH = 8  # sits in a per-CPU LRU add batch, which holds one reference
FL_FILE = 16  # a pagecache page (file or memfd), not anonymous
FL_THP = 32  # PMD-mapped transparent huge page (modelled as one unit)
FL_PTE_THP = 64  # PTE-mapped THP (one subpage mapped here; the folio has others)
FL_HUGETLB = 128  # hugetlb page
FL_CLASS = FL_THP | FL_PTE_THP | FL_HUGETLB

# ---- references / registers that point at pages
ZERO_REF = -1  # a reference (or register) on the shared zero page

# ---- mmap_lock mode a thread holds
LK_NONE, LK_READ, LK_WRITE = 0, 1, 2

# field offsets inside each record
PROC_STATUS, PROC_HAS_PINNED, PROC_WP_SEQ = range(3)
PROC_SIZE = 3
PV_VMA, PV_PTE, PV_IDEAL, PV_LEGIT = range(4)
PV_SIZE = 4
TH_PC, TH_PHASE, TH_LOCK, TH_FA, TH_FB, TH_FM, TH_X, TH_Y = range(8)
TH_SIZE = 8
FR_REF, FR_MAP, FR_FLAGS, FR_CONTENT, FR_SLOT = range(5)
FR_SIZE = 5
SL_SWC, SL_CACHE, SL_CONTENT = range(3)
SL_SIZE = 3

ZERO_VALUE = 0  # value id of "zeroes"; always legitimate
KERNEL = 1  # index of the always-running status field of background actors


def swap_pte(slot: int, exclusive: bool) -> int:
    return ((slot + 1) << PTE_SHIFT) | PTE_SWAP | (PTE_SWX if exclusive else 0)


_MISSING = object()


def inverse(order: list[int]) -> list[int]:
    """The inverse permutation: inverse(order)[order[k]] == k."""
    out = [0] * len(order)
    for k, x in enumerate(order):
        out[x] = k
    return out
_ORDER_CACHE_LIMIT = 1 << 20


def _getter(slots):
    """A C-level `state -> tuple of these fields` (always a tuple, even for 0 or 1 slot)."""
    if not slots:
        return lambda s: ()
    if len(slots) == 1:
        i = slots[0]
        return lambda s: (s[i],)
    return operator.itemgetter(*slots)


@dataclass
class Layout:
    """Offsets of every field for one scenario; built by the model compiler."""

    n_procs: int
    n_vpages: int
    n_threads: int
    n_frames: int
    n_refs: int
    n_slots: int = 0
    n_fixed_frames: int = 0  # frames 0..n-1 have identity (pagecache pages): never renamed
    n_counters: int = 0  # menu template use counters, after the kernel field

    def __post_init__(self):
        P, V, T, F, R, S = (self.n_procs, self.n_vpages, self.n_threads, self.n_frames,
                            self.n_refs, self.n_slots)
        self.events = 0
        self.counter_base = 2
        self.proc_base = 2 + self.n_counters
        self.pv_base = self.proc_base + P * PROC_SIZE
        self.th_base = self.pv_base + P * V * PV_SIZE
        self.fr_base = self.th_base + T * TH_SIZE
        self.sl_base = self.fr_base + F * FR_SIZE
        self.ref_base = self.sl_base + S * SL_SIZE
        self.fr_end = self.sl_base
        self.size = self.ref_base + R
        self.proc = [self.proc_base + p * PROC_SIZE for p in range(P)]
        self.pv = [[self.pv_base + (p * V + v) * PV_SIZE for v in range(V)] for p in range(P)]
        self.pte = [[b + PV_PTE for b in row] for row in self.pv]
        self.th = [self.th_base + t * TH_SIZE for t in range(T)]
        self.fr = [self.fr_base + f * FR_SIZE for f in range(F)]
        self.sl = [self.sl_base + i * SL_SIZE for i in range(S)]
        self.ref = [self.ref_base + r for r in range(R)]
        # positions holding page pointers, in the fixed scan order used by canonical()
        self._pte_slots = [b + PV_PTE for row in self.pv for b in row]
        self._reg_slots = [b + TH_FA for b in self.th] + [b + TH_FB for b in self.th]
        self._mask_slots = [b + TH_FM for b in self.th]
        self._ptr_slots = self.ref + self._reg_slots
        self._frame_slot_fields = [b + FR_SLOT for b in self.fr]
        self._get_ptes = _getter(self._pte_slots)
        self._get_refs = _getter(self.ref)
        self._get_regs = _getter(self._reg_slots)
        self._identity = [list(range(k)) for k in range(max(F, S) + 1)]
        self._signature = _getter(
            self._pte_slots + self.ref + self._reg_slots + self._mask_slots
            + [b + FR_REF for b in self.fr] + self._frame_slot_fields
            + [b + SL_SWC for b in self.sl] + [b + SL_CACHE for b in self.sl])
        self._orders: dict = {}

    # ------------------------------------------------------------------ canonical form
    def canonical(self, s: tuple) -> tuple:
        """Rename frames, then swap slots, to a canonical numbering: order of first
        occurrence in a fixed scan (frames: page tables, references, thread registers;
        slots: swap PTEs, then the swapcache pages in their new order); anything in use but
        pointed at from nowhere follows, sorted by its own fields.  The result is the same
        for every state of a renaming orbit.

        The renaming depends only on pointers and counts (when everything in use is
        pointed at), so it is memoised on those fields."""
        key = self._signature(s)
        plan = self._orders.get(key, _MISSING)
        if plan is _MISSING:
            frame_order, slot_order, cacheable = self._renaming(s)
            plan = None if frame_order is None and slot_order is None else \
                self._plan(frame_order, slot_order)
            if cacheable:
                if len(self._orders) >= _ORDER_CACHE_LIMIT:
                    self._orders.clear()
                self._orders[key] = plan
        return s if plan is None else self._apply(s, plan)

    def _renaming(self, s: tuple):
        """(frame order or None, slot order or None (None: already canonical), whether the
        answer depends on nothing but the signature fields)."""
        pos: dict[int, int] = {f: f for f in range(self.n_fixed_frames)}
        add = pos.setdefault
        special = PTE_ZERO | PTE_SWAP | PTE_MARKER
        ptes = self._get_ptes(s)
        for pte in ptes:
            if pte and not pte & special:
                add((pte >> PTE_SHIFT) - 1, len(pos))
        for v in self._get_refs(s):
            if v > 0:
                add(v - 1, len(pos))
        for v in self._get_regs(s):
            if v > 0:
                add(v - 1, len(pos))
        k = len(pos)
        # a frame is in use iff its page_count is not 0 (flags are cleared when it drops to
        # 0 and set only with a count), so one C-level count says whether all were found
        refs = s[self.fr_base + FR_REF:self.fr_end:FR_SIZE]
        found = k
        for f in pos:
            if not refs[f]:
                found -= 1  # a register still pointing at a freed frame (or a fixed one)
        cacheable = True
        if found < self.n_frames - refs.count(0):
            # frames nobody points at (only through an exit's mask, or leaked): their order
            # depends on their contents, so this renaming is not memoised
            rest = [f for f in range(self.n_frames) if refs[f] and f not in pos]
            fr = self.fr
            rest.sort(key=lambda f: (self._in_masks(s, f), s[fr[f]:fr[f] + FR_SIZE]))
            for f in rest:
                pos[f] = len(pos)
            k = len(pos)
            cacheable = False
        frame_order = list(pos)
        if frame_order == self._identity[k] and not any(refs[k:]):
            frame_order = None
        elif k < self.n_frames:
            frame_order.extend(f for f in range(self.n_frames) if f not in pos)
        slot_order = None
        if self.n_slots:
            slot_order, slots_cacheable = self._slot_renaming(s, ptes, frame_order)
            cacheable = cacheable and slots_cacheable
        return frame_order, slot_order, cacheable

    def _slot_renaming(self, s, ptes, frame_order):
        pos: dict[int, int] = {}
        add = pos.setdefault
        for pte in ptes:
            if pte & PTE_SWAP:
                add((pte >> PTE_SHIFT) - 1, len(pos))
        slots = [s[i] for i in self._frame_slot_fields]
        for f in (frame_order if frame_order is not None else range(self.n_frames)):
            if slots[f]:
                add(slots[f] - 1, len(pos))
        used = [i for i, b in enumerate(self.sl) if s[b + SL_SWC] or s[b + SL_CACHE]]
        cacheable = True
        rest = [i for i in used if i not in pos]
        if rest:
            rest.sort(key=lambda i: s[self.sl[i]:self.sl[i] + SL_SIZE])
            for i in rest:
                pos[i] = len(pos)
            cacheable = False
        order = list(pos)
        k = len(order)
        if order == self._identity[k] and all(i < k for i in used):
            return None, cacheable
        order.extend(i for i in range(self.n_slots) if i not in pos)
        return order, cacheable

    def _in_masks(self, s: tuple, f: int) -> tuple:
        bit = 1 << f
        return tuple(1 if s[i] & bit else 0 for i in self._mask_slots)

    def permute(self, s: tuple, order: list[int], slot_order: list[int] | None = None) -> tuple:
        """The state with frame `order[k]` renamed to `k` (and slot `slot_order[k]` to
        `k`, when given)."""
        return self._apply(s, self._plan(order, slot_order))

    def _plan(self, order, slot_order):
        """Precomputed renaming: old -> new frame and slot numbers, and getters that
        assemble the frames and slots sections in the new order in one C-level call."""
        F, S = self.n_frames, self.n_slots
        order = order if order is not None else list(range(F))
        slot_order = slot_order if slot_order is not None else list(range(S))
        new_frame = inverse(order)
        new_slot = inverse(slot_order)
        frames = _getter([self.fr[old] + i for old in order for i in range(FR_SIZE)])
        slots = _getter([self.sl[old] + i for old in slot_order for i in range(SL_SIZE)])
        return new_frame, frames, new_slot, slots

    def _apply(self, s: tuple, plan) -> tuple:
        new_frame, frames, new_slot, slots = plan
        out = list(s)
        for i in self._pte_slots:
            pte = s[i]
            if pte and not pte & (PTE_ZERO | PTE_MARKER):
                new = new_slot if pte & PTE_SWAP else new_frame
                out[i] = ((new[(pte >> PTE_SHIFT) - 1] + 1) << PTE_SHIFT) | (pte & PTE_FLAGS)
        for i in self._ptr_slots:
            if s[i] > 0:
                out[i] = new_frame[s[i] - 1] + 1
        for i in self._mask_slots:
            m = s[i]
            if m:
                nm = 0
                for old in range(self.n_frames):
                    if m >> old & 1:
                        nm |= 1 << new_frame[old]
                out[i] = nm
        out[self.fr_base:self.fr_end] = frames(s)
        if self.n_slots:
            out[self.sl_base:self.ref_base] = slots(s)
            for i in range(self.fr_base + FR_SLOT, self.fr_end, FR_SIZE):
                if out[i]:
                    out[i] = new_slot[out[i] - 1] + 1
        return tuple(out)
