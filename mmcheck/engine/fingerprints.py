"""Fingerprint store: the breadth-first search with 64-bit fingerprints instead of states.

The exact search (:mod:`mmcheck.engine.explorer`) keeps every distinct state in a dict, about
1 KB each for the MM model.  This store keeps, per distinct state:

- its 64-bit fingerprint in an open-addressing table (a numpy ``uint64`` array, linear
  probing, 0 = empty, grown to keep the load at most 3/4): 8 B / load;
- the index of its parent in the previous BFS level (``uint32``) and the position of the
  transition among the parent's successors (``uint16``): 6 B;

and writes each BFS level's states to a spill file on disk (compressed chunks) from which
the next level is expanded, so the frontier costs no memory.  That is TLC's design: a
fingerprint set plus a disk queue.  A counterexample is rebuilt by walking the parent
indices back to an initial state and replaying the recorded successor positions forward
(the model's ``successors`` is deterministic), which gives the same canonical path, labels
included, as the exact search.

Two distinct states with the same fingerprint make the second look visited: it and what
only it leads to are never explored.  The result reports TLC's two estimates of the
probability that this happened: the *optimistic* one, ``d * (g - d) / 2**64`` for ``d``
distinct and ``g`` generated states (each generated state that was new had a ``d / 2**64``
chance to be mistaken for a stored one), and the one *based on the actual fingerprints*,
``1 / (smallest gap between two sorted stored fingerprints)``.

Fingerprints come from ``model.fingerprint(state)`` when the model has it, else from
``hash(state)``; either must be a well-mixed 64-bit function of the state (for a tuple of
ints CPython's tuple hash is, as long as the ints are distinct under ``hash``: ints in
``[-1, 2**61 - 1)`` other than -2).  A splitmix64 finaliser is applied on top so that the
table's slot (the low bits) depends on every bit.

Batches of successors are looked up together: fingerprints are computed for a batch, the
batch is deduplicated with ``numpy.unique`` (the first occurrence wins, as in the exact
search's scan order) and inserted with vectorised probing, then the new states are
numbered, stored and checked in the order they were generated.  States, transitions, label
counts, levels, verdicts and counterexamples are those of the exact search unless a
fingerprint collision occurred.
"""

from __future__ import annotations

import marshal
import os
import pickle
import sys
import tempfile
import zlib
from array import array
from typing import Any, Optional

import numpy as np

from .explorer import (_NO_SUCCESSOR, SEEN_RAW_LIMIT, Result, Trace, _Search, _StopSearch,
                       extend, run_search)

BATCH = 8192            # successors looked up together
SPILL_CHUNK = 4096      # states written together to a level's spill file
GAP_CHUNK = 1 << 22     # fingerprints per step of the smallest-gap scan
_M64 = (1 << 64) - 1


def _mix(fps: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on a uint64 array (a bijection: collisions are unchanged,
    the low bits become usable as a slot index)."""
    with np.errstate(over="ignore"):
        z = fps.copy()
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    z[z == 0] = 1  # 0 marks an empty slot
    return z


class FingerprintSet:
    """A set of 64-bit fingerprints in an open-addressing numpy table."""

    MAX_LOAD = 0.75

    def __init__(self, capacity: int = 1 << 10) -> None:
        cap = 1 << max(4, (capacity - 1).bit_length())
        self.table = np.zeros(cap, dtype=np.uint64)
        self.count = 0

    @property
    def nbytes(self) -> int:
        return self.table.nbytes

    def _grow_for(self, extra: int) -> None:
        cap = len(self.table)
        need = self.count + extra
        if need <= cap * self.MAX_LOAD:
            return
        while need > cap * self.MAX_LOAD:
            cap *= 2
        old = self.table[self.table != 0]
        self.table = np.zeros(cap, dtype=np.uint64)
        self.count = 0
        self._insert_unique(old)

    def _insert_unique(self, keys: np.ndarray) -> np.ndarray:
        """Insert distinct, mixed, non-zero keys; return which were not there before."""
        table = self.table
        mask = np.uint64(len(table) - 1)
        slots = keys & mask
        is_new = np.zeros(len(keys), dtype=bool)
        pending = np.arange(len(keys))
        while len(pending):
            s = slots[pending]
            k = keys[pending]
            cur = table[s]
            empty = cur == 0
            if empty.any():
                claim = pending[empty]
                table[slots[claim]] = keys[claim]   # among equal slots one write wins
                won = table[slots[claim]] == keys[claim]
                is_new[claim[won]] = True
                cur = table[s]                       # losers now see the winner
            done = cur == k
            pending = pending[~done]
            slots[pending] = (slots[pending] + np.uint64(1)) & mask
        self.count += int(is_new.sum())
        return is_new

    def add(self, fps: np.ndarray) -> np.ndarray:
        """Add a batch of raw fingerprints; return a bool array marking, in batch order,
        the entries that were new: not in the set before and first in the batch."""
        keys = _mix(fps)
        uniq, first = np.unique(keys, return_index=True)
        self._grow_for(len(uniq))
        fresh = self._insert_unique(uniq)
        new = np.zeros(len(keys), dtype=bool)
        new[first[fresh]] = True
        return new

    def min_gap(self) -> Optional[int]:
        """The smallest difference between two stored fingerprints (None below two)."""
        keys = self.table[self.table != 0]     # one copy, sorted in place
        keys.sort()
        return min_gap(keys)


def min_gap(keys: np.ndarray) -> Optional[int]:
    """The smallest difference between two of these sorted fingerprints (None below two)."""
    if len(keys) < 2:
        return None
    step = GAP_CHUNK                             # gaps a chunk at a time: no second copy
    return int(min(np.diff(keys[i:i + step + 1]).min()
                   for i in range(0, len(keys) - 1, step)))


# A spill chunk is b"Z", its length (8 bytes, little-endian) and the marshalled list of
# states compressed by zlib at level 1.  marshal reads and writes tuples of ints faster
# than pickle (1.3x under CPython; 3x under PyPy, whose pickle is pure Python and took a
# quarter of a fingerprint search there); zlib makes a level ~20x smaller than marshal
# alone (tuples of the MM model's fields: 33 B each instead of 642 B, pickle 262 B) for
# ~2 us a state under CPython.  Chunks marshal cannot write (instances of classes) are
# pickled: a pickle starts with b"\x80".
#
# A chunk of equal-length bytes states (the MM model's) is b"B", its length, the states'
# length (4 bytes) and the compressed concatenation: no marshal (which under PyPy took as
# long as zlib: 3.9 us a state), ~31 B a state on disk.
#
# Under PyPy a chunk of equal-length tuples of ints in [-32768, 32767] (models with tuple
# states) is b"A", its length, the tuples' length (4 bytes) and the compressed int16
# array of their fields, little-endian: written 1.5x and read 1.6x as fast as marshal
# there (building a tuple of boxed ints is what reading costs), and 19 B a state on disk.
# CPython writes it 1.7x slower than marshal, so it keeps b"Z".
#
# Reading takes every format, and those of older spill files (checkpoints): b"M"
# (marshal, uncompressed) and pickles, under either interpreter.
_ZLIB, _MARSHAL, _ARRAY, _BYTES = b"Z", b"M", b"A", b"B"
_WRITE_ARRAYS = sys.implementation.name == "pypy"


def _pack_chunk(chunk: list) -> bytes:
    width = len(chunk[0]) if chunk and type(chunk[0]) is bytes else 0
    if width and all(type(s) is bytes and len(s) == width for s in chunk):
        blob = zlib.compress(b"".join(chunk), 1)
        return _BYTES + len(blob).to_bytes(8, "little") + width.to_bytes(4, "little") + blob
    if _WRITE_ARRAYS:
        fields = _int16_fields(chunk)
        if fields is not None:
            blob = zlib.compress(fields.tobytes(), 1)
            return (_ARRAY + len(blob).to_bytes(8, "little")
                    + len(chunk[0]).to_bytes(4, "little") + blob)
    try:
        blob = zlib.compress(marshal.dumps(chunk), 1)
    except ValueError:
        return pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL)
    return _ZLIB + len(blob).to_bytes(8, "little") + blob


def _int16_fields(chunk: list) -> Optional[array]:
    """The fields of a chunk of equal-length tuples of ints (not bools) in int16 range,
    one after the other, little-endian; None for any other chunk."""
    width = len(chunk[0]) if chunk and type(chunk[0]) is tuple else 0
    if not width:
        return None
    fields = array("h")
    try:
        for state in chunk:
            if type(state) is not tuple or len(state) != width:
                return None
            for x in state:
                if type(x) is not int:
                    return None
            fields.extend(state)          # OverflowError outside int16
    except OverflowError:
        return None
    if sys.byteorder == "big":
        fields.byteswap()
    return fields


def _read_chunk(file) -> Optional[list]:
    """The next chunk of a spill file, or None at its end."""
    tag = file.read(1)
    if not tag:
        return None
    if tag in (_ZLIB, _MARSHAL, _ARRAY, _BYTES):
        size = int.from_bytes(file.read(8), "little")
        width = int.from_bytes(file.read(4), "little") if tag in (_ARRAY, _BYTES) else 0
        blob = file.read(size)
        if len(blob) != size:
            raise EOFError("truncated spill chunk")
        if tag == _MARSHAL:
            return marshal.loads(blob)
        raw = zlib.decompress(blob)
        if tag == _ZLIB:
            return marshal.loads(raw)
        if tag == _BYTES:
            return [raw[i:i + width] for i in range(0, len(raw), width)]
        fields = array("h")
        fields.frombytes(raw)
        if sys.byteorder == "big":
            fields.byteswap()
        return [tuple(fields[i:i + width]) for i in range(0, len(fields), width)]
    file.seek(-1, os.SEEK_CUR)
    return pickle.load(file)


class _SpillLevel:
    """One BFS level's states, appended in order and read back in order, on disk: an
    anonymous temporary file, or with ``path`` a named one that outlives the search (a
    checkpoint's frontier)."""

    def __init__(self, directory: Optional[str], path: Optional[str] = None,
                 size: Optional[int] = None) -> None:
        if path is None:
            self.file = tempfile.TemporaryFile(dir=directory, prefix="mmcheck-level-")
        else:   # size given: reopen a complete level written earlier
            self.file = open(path, "r+b" if size is not None else "w+b")
        self.path = path
        self.chunk: list = []
        self.size = size or 0

    def append(self, state: Any) -> None:
        self.chunk.append(state)
        self.size += 1
        if len(self.chunk) >= SPILL_CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self.chunk:
            self.file.write(_pack_chunk(self.chunk))
            self.chunk = []

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        self._flush()
        self.file.seek(0)
        while True:
            chunk = _read_chunk(self.file)
            if chunk is None:
                return
            yield from chunk

    def sync(self) -> None:
        """Everything appended is in the file, on disk."""
        self._flush()
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        self.file.close()


class FingerprintSearch(_Search):
    """The level-by-level BFS of :class:`~mmcheck.engine.explorer._Search` over a
    :class:`FingerprintSet`; violations and the stuck state are remembered by their place
    ``(level, index)`` and rebuilt into traces at the end."""

    def __init__(self, model, *args, spill_dir: Optional[str] = None, checkpoint=None,
                 resume=None, **kwargs) -> None:
        super().__init__(model, *args, **kwargs)
        # mmcheck.engine.checkpoint.Checkpointer: saves the search at level boundaries;
        # `resume`: one that restores it from its directory first
        self.checkpoint = checkpoint
        self.resume = resume
        self.fingerprint = getattr(model, "fingerprint", hash)
        self.seen = FingerprintSet()
        self.spill_dir = spill_dir
        # per level >= 1: parent index in the previous level, successor position
        self.parents: list[array] = []
        self.positions: list[array] = []
        self.initial: list = []          # level 0, in order (few states)
        self.stored = 0
        self.generated = 0
        self.next_checkpoint = self._first_checkpoint(0)

    def stored_count(self) -> int:
        return self.stored

    def _store_initial_batch(self, states: list) -> _SpillLevel:
        level = (self.checkpoint.new_level(0) if self.checkpoint is not None
                 else _SpillLevel(self.spill_dir))
        fps = np.fromiter((self.fingerprint(s) & _M64 for s in states), dtype=np.uint64,
                          count=len(states))
        new = self.seen.add(fps)
        self.generated += len(states)
        for i in np.flatnonzero(new):
            state = states[i]
            if self.max_states is not None and self.stored >= self.max_states:
                raise _StopSearch("states")
            loc = (0, len(self.initial))
            self.initial.append(state)
            level.append(state)
            self.stored += 1
            for name, check in self.active_checks:
                reason = check(state)
                if reason is not None:
                    self._record_violation(name, loc, reason)
        return level

    def _expand(self, frontier: _SpillLevel, level: int) -> _SpillLevel:
        """Expand every state of ``frontier`` (BFS level ``level``); return level + 1.

        Successors are generated a batch at a time and their fingerprints looked up
        together; then the batch is walked in generation order doing what the exact
        search does per transition (count the label, check step properties, store and
        check a new state, classify a dead end), so a bound or a stop request falls on the
        same transition as there."""
        successors = self.model.successors
        canonical = self.model.canonical if self.canonicalize else None
        fingerprint = self.fingerprint
        nxt = (self.checkpoint.new_level(level + 1) if self.checkpoint is not None
               else _SpillLevel(self.spill_dir))
        self.pending_frontier = nxt
        parents, positions = array("I"), array("H")
        self.parents.append(parents)
        self.positions.append(positions)
        batch: list = []            # successors, in generation order
        labels: list = []
        expanded: list = []         # (state, index in its level, end of its successors)

        def flush():
            n = len(batch)
            # look up only the successors the canonicalisation memo does not know as
            # duplicates; they reach numpy through an array("Q"), 3x cheaper than
            # np.fromiter over a generator under PyPy (cpyext)
            fps = np.frombuffer(array("Q", [fingerprint(batch[i]) & _M64
                                            for i in probe_index]), dtype=np.uint64)
            new = [False] * n
            if probe_index:
                for i, is_new in zip(probe_index, self.seen.add(fps).tolist()):
                    if is_new:
                        new[i] = True
            probe_index.clear()
            self.generated += n
            label_counts = self.label_counts
            checks, steps = self.active_checks, self.active_steps
            start = 0
            for source, index, end in expanded:
                if start == end:
                    self._terminal(source, (level, index))
                    continue
                for i in range(start, end):
                    label, successor = labels[i], batch[i]
                    label_counts[label] += 1
                    if steps:
                        steps = self._check_steps(source, label, successor, steps,
                                                  at=(level, index))
                    if not new[i]:
                        continue
                    if self.stored >= self.next_checkpoint >= 0:
                        self.next_checkpoint = self._checkpoint(self.stored)
                    loc = (level + 1, len(nxt))
                    nxt.append(successor)
                    parents.append(index)
                    positions.append(i - start)   # OverflowError past 65,535 successors
                    self.stored += 1
                    if checks:
                        for name, check in checks:
                            reason = check(successor)
                            if reason is not None:
                                checks = self._record_violation(name, loc, reason)
                start = end
            batch.clear()
            labels.clear()
            expanded.clear()

        add_successor, add_label = batch.append, labels.append
        # the batch positions to look up: a successor the memo of canonicalised tuples
        # knows (mmcheck.engine.explorer.SEEN_RAW_LIMIT) was looked up before
        probe_index: list = []
        add_probe = probe_index.append
        if canonical is None:
            for index, state in enumerate(frontier):
                for label, successor in successors(state):
                    add_probe(len(batch))
                    add_successor(successor)
                    add_label(label)
                expanded.append((state, index, len(batch)))
                if len(batch) >= BATCH:
                    flush()
        else:
            seen = self.seen_raw
            seen_add = seen.add
            steps = bool(self.active_steps)  # they judge a duplicate's canonical form too
            for index, state in enumerate(frontier):
                for label, successor in successors(state):
                    n_seen = len(seen)
                    seen_add(successor)
                    if len(seen) == n_seen:  # a duplicate
                        add_successor(canonical(successor) if steps else None)
                    else:
                        if n_seen >= SEEN_RAW_LIMIT:
                            seen.clear()
                            seen_add(successor)
                        add_probe(len(batch))
                        add_successor(canonical(successor))
                    add_label(label)
                expanded.append((state, index, len(batch)))
                if len(batch) >= BATCH:
                    flush()
        flush()
        self.pending_frontier = None
        return nxt

    def _terminal(self, state, loc) -> None:
        """An expanded state without successors: final or stuck (remembered by place)."""
        if self.is_final is None or self.is_final(state):
            self.final_states += 1
        else:
            self.stuck_states += 1
            if not self.has_stuck_state:
                self.has_stuck_state = True
                self.first_stuck_state = loc

    def run(self) -> None:
        if self.resume is not None:
            frontier = self.resume.restore(self)
        else:
            states = [self.model.canonical(s) if self.canonicalize else s
                      for s in self.model.initial_states()]
            frontier = self._store_initial_batch(states)
            self.depth = 0
        try:
            while len(frontier):
                if self.checkpoint is not None:   # levels 0..depth stored, depth not expanded
                    self.checkpoint.save(self, frontier)
                self.level_sizes.append(len(frontier))
                if self.max_depth is not None and self.depth >= self.max_depth:
                    self.bounded_by = "depth"
                    return
                self._report_progress()
                nxt = self._expand(frontier, self.depth)
                frontier.close()
                frontier = nxt
                self.depth += 1
        finally:
            frontier.close()

    # ---------------------------------------------------------------- results

    def _path_to(self, level: int, index: int) -> list[int]:
        """Indices of the path's states, level 0 first."""
        path = [index]
        for lvl in range(level, 0, -1):
            index = self.parents[lvl - 1][index]
            path.append(index)
        path.reverse()
        return path

    def _replay(self, level: int, index: int):
        """(states, labels) of the BFS path to the state at (level, index)."""
        path = self._path_to(level, index)
        return replay(self.model, self.canonicalize, self.initial[path[0]],
                      [self.positions[lvl - 1][path[lvl]] for lvl in range(1, level + 1)])

    def trace_to(self, loc, reason: str, label=_NO_SUCCESSOR, successor=None) -> Trace:
        states, labels = self._replay(*loc)
        trace = Trace(states=states, labels=labels, reason=reason, depth=len(labels))
        if label is not _NO_SUCCESSOR:
            trace = extend(trace, label, successor)
        return trace

    def result(self) -> Result:
        res = super().result()
        res.store = store_entry(self.stored, self.generated, self.seen.min_gap(),
                                self.seen.nbytes, index_bytes(self.parents + self.positions))
        return res


def replay(model, canonicalize: bool, state, positions) -> tuple[list, list]:
    """(states, labels) of the path from ``state`` taking, at each step, the successor at
    the recorded position (the model's ``successors`` is deterministic)."""
    states, labels = [state], []
    for pos in positions:
        for k, (label, successor) in enumerate(model.successors(state)):
            if k == pos:
                break
        else:
            raise RuntimeError("cannot rebuild trace: the model's successors() is not "
                               "deterministic")
        state = model.canonical(successor) if canonicalize else successor
        states.append(state)
        labels.append(label)
    return states, labels


def index_bytes(arrays) -> int:
    return sum(a.itemsize * len(a) for a in arrays)


def store_entry(stored: int, generated: int, gap: Optional[int], table_bytes: int,
                index: int) -> dict:
    """A result's ``store``: sizes and TLC's two collision estimates (module doc)."""
    d, g = stored, generated
    return {
        "kind": "fingerprints",
        "generated": g,
        "collision_optimistic": d * max(g - d, 0) / 2.0 ** 64,
        "collision_actual": (1.0 / gap) if gap else 0.0,
        "table_bytes": table_bytes,
        "index_bytes": index,
        "bytes_per_state": (table_bytes + index) / d if d else 0.0,
    }


def explore_fingerprints(model, *, max_depth=None, max_states=None, canonicalize=True,
                         stop_when_all_violated=False, progress=None, progress_every=50_000,
                         spill_dir=None, max_memory=None, checkpoint=None,
                         resume=None) -> Result:
    """:func:`mmcheck.engine.explorer.explore` with the fingerprint store; ``checkpoint``
    (and ``resume``): a :class:`mmcheck.engine.checkpoint.Checkpointer`."""
    search = FingerprintSearch(model, max_depth, max_states, canonicalize,
                               stop_when_all_violated, progress, progress_every,
                               max_memory=max_memory, checkpoint=checkpoint, resume=resume,
                               spill_dir=spill_dir or os.environ.get("MMCHECK_SPILL_DIR"))
    return run_search(search)
