"""Canonical states: frames and swap slots renamed to a canonical numbering.

Frames (physical pages) and swap slots carry no identity beyond their fields, so states
that differ only by a renaming of frames and slots are the same state.  What to rename is
derived from the state schema (mmcheck.model.state): every PTE-kind field (its frame or
slot, by the entry's kind), every FRAME pointer, FRAME_MASK and SLOT pointer, and the
frame and slot records themselves.  Frames with identity (pagecache pages) are fixed.

The canonical numbering is the order of first occurrence in a fixed scan: frames through
the PTE fields, then through the FRAME pointers (record by record, field by field, in
layout order); then frames reachable only through a mask, or from nowhere, sorted by
their own fields.  Slots: through the swap entries, then through the swapcache frames in
their new order, then the rest sorted by their fields.  The result is the same for every
state of a renaming orbit (an exact representative: tests/test_model.py counts orbits by
brute force).  The renaming depends only on the pointer and "in use" fields when every
frame in use is pointed at, so it is memoised on those.
"""

from __future__ import annotations

from array import array

from . import codec
from .state import FRAME, FRAME_MASK, PTE, SLOT, getter, inverse

_MISSING = object()
_MEMO_LIMIT = 1 << 20


class Canonicalizer:
    def __init__(self, layout, n_fixed_frames: int = 0):
        self.L = layout
        self.n_frames = layout.sizes["frame"]
        self.n_slots = layout.sizes["slot"]
        self.n_fixed = n_fixed_frames
        fr_rec, sl_rec = layout.schema["frame"], layout.schema["slot"]
        self.fr_base, self.fr_end = layout.span("frame")
        self.sl_base, self.sl_end = layout.span("slot")
        self.fr_size, self.sl_size = fr_rec.size, sl_rec.size
        self.fr = [b for _ix, b in layout.instances("frame")]
        self.sl = [b for _ix, b in layout.instances("slot")]
        self.entry_pos = layout.positions(kind=PTE)
        self.frame_ptr_pos = layout.positions(kind=FRAME)
        self.mask_pos = layout.positions(kind=FRAME_MASK)
        self.slot_ptr_pos = layout.positions(kind=SLOT)
        # the swapcache pointer of each frame (scanned in the frames' new order)
        slot_fields = [i for i, f in enumerate(fr_rec.fields) if f.kind == SLOT]
        self.frame_slot_pos = [[b + i for i in slot_fields] for b in self.fr]
        self.other_slot_pos = [p for p in self.slot_ptr_pos
                               if not self.fr_base <= p < self.fr_end]
        (self.fr_live,) = fr_rec.offsets(*fr_rec.live)  # one live field: page_count
        self.sl_live = sl_rec.offsets(*sl_rec.live)
        self._get_entries = getter(self.entry_pos)
        self._get_frame_ptrs = getter(self.frame_ptr_pos)
        self._get_other_slots = getter(self.other_slot_pos)
        self._identity = [list(range(k)) for k in range(max(self.n_frames, self.n_slots) + 1)]
        self._signature = getter(
            self.entry_pos + self.frame_ptr_pos + self.mask_pos + self.slot_ptr_pos
            + [b + self.fr_live for b in self.fr]
            + [b + i for b in self.sl for i in self.sl_live])
        self._plans: dict = {}

    # ------------------------------------------------------------------ canonical form
    def canonical(self, state: bytes) -> bytes:
        """The canonical representative of a stored state (the state itself when it
        already is one)."""
        s = self.L.decode(state)
        plan = self._plan_for(s)
        return state if plan is None else self.apply(s, plan).tobytes()

    def canonical_fields(self, s):
        """`canonical` of a decoded state (an array), decoded."""
        plan = self._plan_for(s)
        return s if plan is None else self.apply(s, plan)

    def _plan_for(self, s):
        """The renaming that makes the decoded state s canonical, or None."""
        key = self._signature(s)
        plan = self._plans.get(key, _MISSING)
        if plan is _MISSING:
            frame_order, slot_order, cacheable = self._renaming(s)
            plan = None if frame_order is None and slot_order is None else \
                self.plan(frame_order, slot_order)
            if cacheable:
                if len(self._plans) >= _MEMO_LIMIT:
                    self._plans.clear()
                self._plans[key] = plan
        return plan

    def _renaming(self, s):
        """(frame order or None, slot order or None (None: already canonical), whether the
        answer depends on nothing but the signature fields)."""
        pos: dict[int, int] = {f: f for f in range(self.n_fixed)}
        add = pos.setdefault
        entries = self._get_entries(s)
        for f in codec.present_frames(entries):
            add(f, len(pos))
        for v in self._get_frame_ptrs(s):
            if v > 0:
                add(v - 1, len(pos))
        k = len(pos)
        live = s[self.fr_base + self.fr_live:self.fr_end:self.fr_size]
        found = k
        for f in pos:
            if not live[f]:
                found -= 1  # a pointer to a freed frame (or a fixed one)
        cacheable = True
        if found < self.n_frames - live.count(0):
            # frames nobody points at (only through a mask, or leaked): their order depends
            # on their contents, so this renaming is not memoised
            rest = [f for f in range(self.n_frames) if live[f] and f not in pos]
            fr, size = self.fr, self.fr_size
            rest.sort(key=lambda f: (self._in_masks(s, f), s[fr[f]:fr[f] + size]))
            for f in rest:
                pos[f] = len(pos)
            k = len(pos)
            cacheable = False
        frame_order = list(pos)
        if frame_order == self._identity[k] and not any(live[k:]):
            frame_order = None
        elif k < self.n_frames:
            frame_order.extend(f for f in range(self.n_frames) if f not in pos)
        slot_order = None
        if self.n_slots:
            slot_order, slots_cacheable = self._slot_renaming(s, entries, frame_order)
            cacheable = cacheable and slots_cacheable
        return frame_order, slot_order, cacheable

    def _slot_renaming(self, s, entries, frame_order):
        pos: dict[int, int] = {}
        add = pos.setdefault
        for i in codec.swap_slots(entries):
            add(i, len(pos))
        for f in (frame_order if frame_order is not None else range(self.n_frames)):
            for p in self.frame_slot_pos[f]:
                if s[p]:
                    add(s[p] - 1, len(pos))
        for v in self._get_other_slots(s):
            if v:
                add(v - 1, len(pos))
        used = [i for i, b in enumerate(self.sl) if any(s[b + o] for o in self.sl_live)]
        cacheable = True
        rest = [i for i in used if i not in pos]
        if rest:
            sl, size = self.sl, self.sl_size
            rest.sort(key=lambda i: s[sl[i]:sl[i] + size])
            for i in rest:
                pos[i] = len(pos)
            cacheable = False
        order = list(pos)
        k = len(order)
        if order == self._identity[k] and all(i < k for i in used):
            return None, cacheable
        order.extend(i for i in range(self.n_slots) if i not in pos)
        return order, cacheable

    def _in_masks(self, s, f: int) -> tuple:
        bit = 1 << f
        return tuple(1 if s[i] & bit else 0 for i in self.mask_pos)

    # ------------------------------------------------------------------ renaming
    def permute(self, state: bytes, order: list, slot_order: list | None = None) -> bytes:
        """The state with frame `order[k]` renamed to `k` (and slot `slot_order[k]` to `k`)."""
        return self.apply(self.L.decode(state), self.plan(order, slot_order)).tobytes()

    def plan(self, order, slot_order):
        """A precomputed renaming: old -> new frame and slot numbers, and getters that
        assemble the frame and slot sections in the new order in one C-level call."""
        F, S = self.n_frames, self.n_slots
        order = order if order is not None else list(range(F))
        slot_order = slot_order if slot_order is not None else list(range(S))
        frames = getter([self.fr[old] + i for old in order for i in range(self.fr_size)])
        slots = getter([self.sl[old] + i for old in slot_order for i in range(self.sl_size)])
        return inverse(order), frames, inverse(slot_order), slots

    def apply(self, s, plan):
        """The decoded state s renamed by a plan, as a new array."""
        new_frame, frames, new_slot, slots = plan
        out = s[:]
        for i, e in zip(self.entry_pos, codec.renamed(self._get_entries(s), new_frame, new_slot)):
            out[i] = e
        for i in self.frame_ptr_pos:
            if s[i] > 0:
                out[i] = new_frame[s[i] - 1] + 1
        for i in self.mask_pos:
            m = s[i]
            if m:
                nm = 0
                for old in range(self.n_frames):
                    if m >> old & 1:
                        nm |= 1 << new_frame[old]
                out[i] = nm
        typecode = s.typecode
        out[self.fr_base:self.fr_end] = array(typecode, frames(s))
        if self.n_slots:
            out[self.sl_base:self.sl_end] = array(typecode, slots(s))
            for i in self.slot_ptr_pos:
                if out[i]:
                    out[i] = new_slot[out[i] - 1] + 1
        return out
