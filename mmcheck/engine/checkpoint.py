"""Checkpoints of a fingerprint-store search, taken at BFS level boundaries, and resuming
from one.

A checkpoint directory holds:

- ``level-NNNNN.bin``: the states of a level, as the search spills them (compressed chunks);
  the one a checkpoint points at is the level about to be expanded;
- ``parents-NNNNN.npy``, ``positions-NNNNN.npy``: each finished level's parent indices and
  successor positions (written once: they never change);
- ``cp-NNNNN/``: one checkpoint: ``table.npy`` (the fingerprint table), ``search.pickle``
  (counters, label counts, first violations by place, reached goals, level sizes, the
  initial states, elapsed time);
- ``LATEST``: the name of the newest complete checkpoint, replaced atomically;
- ``context.json``: what the caller needs to rebuild the same model (for mmcheck: the
  scenario, its hash, the policy, the bounds), stored as given.

A parallel search (``--workers`` with the fingerprint store,
:mod:`mmcheck.engine.parallel_fingerprints`) keeps each worker's level, links and
positions files in ``wK/`` (worker K), and its checkpoints hold ``table-wK.npy`` and
``worker-wK.pickle`` per worker besides the driver's ``search.pickle``; it resumes with
the same number of workers (the partition of a state depends on it).

A checkpoint is written to ``cp-NNNNN.tmp``, synced, renamed, and only then named in
``LATEST``; older checkpoints and level files are removed after that. So a crash or a kill
at any moment leaves the previous checkpoint intact, and at most the level being expanded
is lost. Resuming restores the search exactly as it stood at the boundary: the table holds
exactly the states of levels 0..L, and the search goes on from level L's file, so the
result is the uninterrupted search's (states, transitions, verdicts, traces).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import time
from array import array
from typing import Any, Optional

import numpy as np

FORMAT = 2  # 2: the MM model's states are bytes (format 1 held tuples)
_LATEST = "LATEST"
_CONTEXT = "context.json"
_WORKER_DIR = re.compile(r"w[0-9]+")


class CheckpointError(Exception):
    """A checkpoint directory that cannot be used (missing, foreign, another format)."""


def _level_file(directory: str, level: int) -> str:
    return os.path.join(directory, f"level-{level:05d}.bin")


def _array_file(directory: str, kind: str, level: int) -> str:
    return os.path.join(directory, f"{kind}-{level:05d}.npy")


def write_index_arrays(directory: str, kind: str, arrays: list, start: int, dtype) -> None:
    """Write the finished levels ``start + 1``.. of a per-level index (written once: they
    never change)."""
    for level in range(start, len(arrays)):
        np.save(_array_file(directory, kind, level + 1),
                np.frombuffer(arrays[level], dtype=dtype))


def read_index_arrays(directory: str, kind: str, depth: int, code: str) -> list:
    """Levels 1..depth of a per-level index, as arrays of type ``code``."""
    out = []
    for level in range(1, depth + 1):
        a = array(code)
        a.frombytes(np.load(_array_file(directory, kind, level)).tobytes())
        out.append(a)
    return out


def worker_dir(directory: str, worker: int) -> str:
    """Where worker ``worker`` of a parallel search keeps its files."""
    return os.path.join(directory, f"w{worker}")


def dump(path: str, obj) -> None:
    """Pickle ``obj`` to ``path``, on disk when this returns."""
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
        f.flush()
        os.fsync(f.fileno())


def load(path: str):
    """What ``dump`` wrote to ``path`` (raises one of ``DAMAGED`` if it cannot)."""
    with open(path, "rb") as f:
        try:
            return pickle.load(f)
        except Exception as e:  # damaged data raises about anything (EOFError, struct.error..)
            raise pickle.UnpicklingError(f"{type(e).__name__}: {e}") from None


# what reading a damaged or incomplete checkpoint raises
DAMAGED = (OSError, ValueError, KeyError, pickle.UnpicklingError)

FINGERPRINTS_DIFFER = ("this Python fingerprints states differently from the one that made "
                       "the checkpoint (another interpreter, or states holding strings under "
                       "another PYTHONHASHSEED); resume it with the same Python and "
                       "PYTHONHASHSEED")


def _fingerprints(search, initial=None) -> list:
    """The fingerprints of the initial states (the search's fingerprint function, seen
    through them)."""
    return [search.fingerprint(s) for s in (search.initial if initial is None else initial)]


class Checkpointer:
    """Saves a :class:`~mmcheck.engine.fingerprints.FingerprintSearch` into ``directory``
    at every level boundary (``save``) and restores one from it (``restore``)."""

    def __init__(self, directory: str, context: Optional[dict] = None) -> None:
        self.directory = directory
        self.context = context or {}
        self.written_levels = 0      # parents/positions files already on disk

    # ------------------------------------------------------------------------ start
    @classmethod
    def start(cls, directory: str, context: dict) -> "Checkpointer":
        """A new checkpointed search: the directory must be new or empty."""
        if os.path.exists(directory) and os.listdir(directory):
            raise CheckpointError(f"{directory}: not empty (resume it with `mmcheck resume "
                                  f"{directory}`, or choose another directory)")
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, _CONTEXT), "w") as f:
            json.dump({"format": FORMAT, "context": context}, f, indent=1, sort_keys=True)
        return cls(directory, context)

    @classmethod
    def open(cls, directory: str) -> "Checkpointer":
        """An existing checkpoint directory, to resume (and to go on checkpointing)."""
        try:
            with open(os.path.join(directory, _CONTEXT)) as f:
                head = json.load(f)
            with open(os.path.join(directory, _LATEST)) as f:
                latest = f.read().strip()
        except (OSError, ValueError) as e:
            raise CheckpointError(f"{directory}: not a checkpoint directory "
                                  f"({getattr(e, 'strerror', None) or e})") from None
        if head.get("format") == 1:
            raise CheckpointError(f"{directory}: checkpoint format 1, made by an mmcheck that "
                                  f"stored the MM model's states as tuples (before 2026-12-07); "
                                  f"resume it with that version")
        if head.get("format") != FORMAT:
            raise CheckpointError(f"{directory}: checkpoint format {head.get('format')}, "
                                  f"this mmcheck reads format {FORMAT}")
        cp = cls(directory, head.get("context", {}))
        cp.latest = latest
        return cp

    def new_level(self, level: int):
        from .fingerprints import _SpillLevel

        return _SpillLevel(None, path=_level_file(self.directory, level))

    # ------------------------------------------------------------------------- save
    def save(self, search, frontier) -> None:
        """Checkpoint ``search`` before it expands ``frontier`` (level ``search.depth``)."""
        d = self.directory
        frontier.sync()
        write_index_arrays(d, "parents", search.parents, self.written_levels, np.uint32)
        write_index_arrays(d, "positions", search.positions, self.written_levels, np.uint16)
        self.written_levels = len(search.parents)
        name = f"cp-{search.depth:05d}"
        tmp = os.path.join(d, name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        np.save(os.path.join(tmp, "table.npy"), search.seen.table)
        snapshot = {
            "depth": search.depth, "frontier_size": len(frontier),
            "stored": search.stored, "generated": search.generated,
            "table_count": search.seen.count,
            "label_counts": dict(search.label_counts),
            "final_states": search.final_states, "stuck_states": search.stuck_states,
            "has_stuck_state": search.has_stuck_state,
            "first_stuck_state": search.first_stuck_state,
            "first_violations": search.first_violations, "reached": search.reached,
            "level_sizes": search.level_sizes, "initial": search.initial,
            "initial_fingerprints": _fingerprints(search),
            "elapsed": time.perf_counter() - search.start_time,
        }
        dump(os.path.join(tmp, "search.pickle"), snapshot)
        self._publish(tmp, name, search.depth)

    def _publish(self, tmp: str, name: str, depth: int) -> None:
        """Rename the complete checkpoint ``tmp`` to ``name``, name it in LATEST, then
        remove the older checkpoints and level files."""
        d = self.directory
        final = os.path.join(d, name)
        shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
        latest_tmp = os.path.join(d, _LATEST + ".tmp")
        with open(latest_tmp, "w") as f:
            f.write(name + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(latest_tmp, os.path.join(d, _LATEST))
        self.latest = name
        self._remove_older(depth)

    def _remove_older(self, depth: int) -> None:
        places = [self.directory] + [os.path.join(self.directory, e)
                                     for e in os.listdir(self.directory)
                                     if _WORKER_DIR.fullmatch(e)]
        for place in places:
            for entry in os.listdir(place):
                path = os.path.join(place, entry)
                if place == self.directory and entry.startswith("cp-") \
                        and entry != f"cp-{depth:05d}":
                    shutil.rmtree(path, ignore_errors=True)
                elif entry.startswith("level-") and entry.endswith(".bin"):
                    if int(entry[6:11]) < depth:
                        os.remove(path)

    # ------------------------------------------------------------- parallel searches
    def save_parallel(self, workers, snapshot: dict) -> None:
        """Checkpoint a parallel search before it expands level ``snapshot["depth"]``:
        every worker writes its part (mmcheck.engine.parallel_fingerprints), then the
        driver's ``snapshot``."""
        name = f"cp-{snapshot['depth']:05d}"
        tmp = os.path.join(self.directory, name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        workers.ask(("checkpoint", tmp))
        dump(os.path.join(tmp, "search.pickle"), snapshot)
        self._publish(tmp, name, snapshot["depth"])

    def restore_parallel(self, workers) -> dict:
        """Put the workers back where the latest checkpoint left them; the driver's
        snapshot."""
        d = os.path.join(self.directory, self.latest)
        try:
            snap = load(os.path.join(d, "search.pickle"))
        except DAMAGED as e:
            raise CheckpointError(f"{self.directory}: damaged checkpoint {self.latest} "
                                  f"({e})") from None
        if snap.get("workers") != len(workers):
            raise CheckpointError(
                f"{self.directory}: a search of {snap.get('workers', 1)} worker "
                f"process(es); it resumes with as many (the partition of a state depends "
                f"on their number)")
        for reply in workers.ask(("restore", d))[0]:
            if reply[1] is not None:
                raise CheckpointError(f"{self.directory}: {reply[1]}")
        self.written_levels = snap["depth"]
        return snap

    # ---------------------------------------------------------------------- restore
    def restore(self, search) -> Any:
        """Put ``search`` back where the latest checkpoint left it; return its frontier."""
        from .fingerprints import _SpillLevel

        d = os.path.join(self.directory, self.latest)
        try:
            snap = load(os.path.join(d, "search.pickle"))
            table = np.load(os.path.join(d, "table.npy"))
            depth = snap["depth"]
            parents = read_index_arrays(self.directory, "parents", depth, "I")
            positions = read_index_arrays(self.directory, "positions", depth, "H")
        except DAMAGED as e:
            raise CheckpointError(f"{self.directory}: damaged checkpoint {self.latest} "
                                  f"({e})") from None
        # the table holds this run's fingerprints: another fingerprint function (hash() of
        # a state holding strings under another PYTHONHASHSEED, another interpreter) would
        # take every stored state for a new one and silently explore them again
        made = snap.get("initial_fingerprints")  # checkpoints before 2026-12-07 lack it
        if made is not None and made != _fingerprints(search, snap["initial"]):
            raise CheckpointError(f"{self.directory}: {FINGERPRINTS_DIFFER}")
        search.seen.table = table
        search.seen.count = snap["table_count"]
        search.parents, search.positions = parents, positions
        self.written_levels = depth
        search.depth = depth
        search.stored, search.generated = snap["stored"], snap["generated"]
        search.label_counts.update(snap["label_counts"])
        search.final_states, search.stuck_states = snap["final_states"], snap["stuck_states"]
        search.has_stuck_state = snap["has_stuck_state"]
        search.first_stuck_state = snap["first_stuck_state"]
        search.first_violations = snap["first_violations"]
        for name, goals in snap["reached"].items():
            search.reached.setdefault(name, set()).update(goals)
        search.level_sizes = snap["level_sizes"]
        search.initial = snap["initial"]
        search.start_time = time.perf_counter() - snap["elapsed"]
        done = set(search.first_violations)
        search.active_checks = [c for c in search.active_checks if c[0] not in done]
        search.active_steps = [c for c in search.active_steps if c[0] not in done]
        search.next_progress_at = search.stored + search.progress_every
        search.next_checkpoint = search._first_checkpoint(search.stored)
        return _SpillLevel(None, path=_level_file(self.directory, depth),
                           size=snap["frontier_size"])

