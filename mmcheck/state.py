"""The compact state layout of a compiled scenario, and the one place that canonicalises it.

A state is a flat tuple of ints.  `Layout` is computed once per scenario and says where
each field lives; readable accessors sit on top for properties, traces and tests, while
the transition functions index the tuple directly through the precomputed offsets.

Sections (in this order):
  events                 one int, bit i set when event i was signalled
  per process  (PROC_*)  status, has_pinned, write_protect_seq
  per process x vpage    vma (0 unmapped / VMA_R / VMA_RW), pte (encoded), ideal value id,
                         legit (bitmask of the values this process may observe here)
  per thread   (TH_*)    pc, phase, mmap-lock mode held, registers fa fb fm x y
  per frame    (FR_*)    ref (page_count), map (mapcount), flags, content value id
  per reference          0 = not held, ZERO_REF = the shared zero page, f+1 = frame f

Frames are physical pages; they carry no identity beyond their fields, so states that
differ only by a renaming of frames are the same state (`Layout.canonical`).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

# ---- process status
UNBORN, RUNNING, FORKING, EXITED = 0, 1, 2, 3
STATUS_NAMES = {UNBORN: "unborn", RUNNING: "running", FORKING: "forking", EXITED: "exited"}

# ---- VMA protection
VMA_NONE, VMA_R, VMA_RW = 0, 1, 2

# ---- PTE encoding: flag bits in the low byte, frame+1 above.  0 is pte_none().
PTE_W = 1  # pte_write()
PTE_D = 2  # pte_dirty()
PTE_SD = 4  # soft-dirty (write tracking, later)
PTE_UWP = 8  # uffd-wp (write tracking, later)
PTE_ZERO = 16  # maps the shared zero page (vm_normal_page() == NULL, no counters)
PTE_SWAP = 32  # swap entry (later)
PTE_SWX = 64  # exclusive swap entry (later)
PTE_MARKER = 128  # PTE marker (later)
PTE_FLAGS = 255
PTE_SHIFT = 8
ZERO_PTE = PTE_ZERO

# ---- frame flags
FL_AE = 1  # PageAnonExclusive
FL_ALLOC = 2  # allocated (not in the page allocator's free lists)

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
FR_REF, FR_MAP, FR_FLAGS, FR_CONTENT = range(4)
FR_SIZE = 4

ZERO_VALUE = 0  # value id of "zeroes"; always legitimate


_MISSING = object()
_ORDER_CACHE_LIMIT = 1 << 20


def _getter(slots):
    """A C-level `state -> tuple of these fields` (always a tuple, even for 0 or 1 slot)."""
    if not slots:
        return lambda s: ()
    if len(slots) == 1:
        i = slots[0]
        return lambda s: (s[i],)
    return operator.itemgetter(*slots)


def pte_frame(pte: int) -> int:
    """Frame index mapped by a present, non-zero-page PTE; -1 otherwise."""
    if pte == 0 or pte & (PTE_ZERO | PTE_SWAP | PTE_MARKER):
        return -1
    return (pte >> PTE_SHIFT) - 1


def make_pte(frame: int, flags: int) -> int:
    return ((frame + 1) << PTE_SHIFT) | flags


@dataclass
class Layout:
    """Offsets of every field for one scenario; built by the model compiler."""

    n_procs: int
    n_vpages: int
    n_threads: int
    n_frames: int
    n_refs: int

    def __post_init__(self):
        P, V, T, F, R = self.n_procs, self.n_vpages, self.n_threads, self.n_frames, self.n_refs
        self.events = 0
        self.proc_base = 1
        self.pv_base = self.proc_base + P * PROC_SIZE
        self.th_base = self.pv_base + P * V * PV_SIZE
        self.fr_base = self.th_base + T * TH_SIZE
        self.ref_base = self.fr_base + F * FR_SIZE
        self.size = self.ref_base + R
        self.proc = [self.proc_base + p * PROC_SIZE for p in range(P)]
        self.pv = [[self.pv_base + (p * V + v) * PV_SIZE for v in range(V)] for p in range(P)]
        self.pte = [[b + PV_PTE for b in row] for row in self.pv]
        self.th = [self.th_base + t * TH_SIZE for t in range(T)]
        self.fr = [self.fr_base + f * FR_SIZE for f in range(F)]
        self.ref = [self.ref_base + r for r in range(R)]
        # positions holding page pointers, in the fixed scan order used by canonical()
        self._pte_slots = [b + PV_PTE for row in self.pv for b in row]
        self._reg_slots = [b + TH_FA for b in self.th] + [b + TH_FB for b in self.th]
        self._mask_slots = [b + TH_FM for b in self.th]
        self._get_ptes = _getter(self._pte_slots)
        self._identity = [list(range(k)) for k in range(F + 1)]
        self._ptr_slots = self.ref + self._reg_slots
        self._get_refs = _getter(self.ref)
        self._get_regs = _getter(self._reg_slots)
        self._signature = _getter(self._pte_slots + self.ref + self._reg_slots
                                  + self._mask_slots + [b + FR_REF for b in self.fr])
        self._orders: dict = {}

    # ------------------------------------------------------------------ canonical form
    def frames_in_use(self, s: tuple) -> list[int]:
        return [f for f in range(self.n_frames) if any(s[self.fr[f]:self.fr[f] + FR_SIZE])]

    def canonical(self, s: tuple) -> tuple:
        """Rename frames to a canonical numbering: order of first occurrence in a fixed scan
        of page tables, references and thread registers; frames reachable only through an
        exit's pending-put mask, or from nowhere (a refcount bug), follow, sorted by their
        own fields.  The result is the same for every state of a renaming orbit.

        The renaming depends only on the page pointers and page counts (when every frame in
        use is pointed at), so it is memoised on those fields."""
        key = self._signature(s)
        plan = self._orders.get(key, _MISSING)
        if plan is _MISSING:
            order, cacheable = self._renaming(s)
            plan = None if order is None else self._plan(order)
            if cacheable:
                if len(self._orders) >= _ORDER_CACHE_LIMIT:
                    self._orders.clear()
                self._orders[key] = plan
        return s if plan is None else self._apply(s, plan)

    def _renaming(self, s: tuple):
        """(frame order, or None if s is already canonical; whether the answer depends on
        nothing but the signature fields)."""
        pos: dict[int, int] = {}
        add = pos.setdefault
        special = PTE_ZERO | PTE_SWAP | PTE_MARKER
        for pte in self._get_ptes(s):
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
        refs = s[self.fr_base + FR_REF:self.ref_base:FR_SIZE]
        found = k
        for f in pos:
            if not refs[f]:
                found -= 1  # a register still pointing at a freed frame
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
        order = list(pos)
        if order == self._identity[k] and not any(refs[k:]):
            return None, cacheable
        if k < self.n_frames:
            order.extend(f for f in range(self.n_frames) if f not in pos)
        return order, cacheable

    def _in_masks(self, s: tuple, f: int) -> tuple:
        bit = 1 << f
        return tuple(1 if s[i] & bit else 0 for i in self._mask_slots)

    def permute(self, s: tuple, order: list[int]) -> tuple:
        """The state with frame `order[k]` renamed to `k` (order is a permutation)."""
        return self._apply(s, self._plan(order))

    def _plan(self, order: list[int]):
        """Precomputed renaming: old frame -> new frame, and a getter that assembles the
        frames section in the new order in one C-level call."""
        new_of = [0] * self.n_frames
        for new, old in enumerate(order):
            new_of[old] = new
        fields = [self.fr[old] + i for old in order for i in range(FR_SIZE)]
        return new_of, _getter(fields)

    def _apply(self, s: tuple, plan) -> tuple:
        new_of, frames = plan
        out = list(s)
        special = PTE_ZERO | PTE_SWAP | PTE_MARKER
        for i in self._pte_slots:
            pte = s[i]
            if pte and not pte & special:
                out[i] = ((new_of[(pte >> PTE_SHIFT) - 1] + 1) << PTE_SHIFT) | (pte & PTE_FLAGS)
        for i in self._ptr_slots:
            if s[i] > 0:
                out[i] = new_of[s[i] - 1] + 1
        for i in self._mask_slots:
            m = s[i]
            if m:
                nm = 0
                for old in range(self.n_frames):
                    if m >> old & 1:
                        nm |= 1 << new_of[old]
                out[i] = nm
        out[self.fr_base:self.ref_base] = frames(s)
        return tuple(out)
