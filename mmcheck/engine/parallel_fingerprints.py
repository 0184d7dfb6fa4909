"""The hash-partitioned search (:mod:`mmcheck.engine.parallel`) over the fingerprint store
(:mod:`mmcheck.engine.fingerprints`): big searches on every core.

Each worker keeps, for the states of its partition, what the one-process fingerprint
search keeps: their 64-bit fingerprints in a :class:`~mmcheck.engine.fingerprints.
FingerprintSet`, the BFS level it is expanding in a spill file on disk, and per level the
parent link (level, owner, index, packed as in the exact parallel search) and the
position of the transition among the parent's successors of every state it stored.  A
counterexample is rebuilt by walking the links back from worker to worker to an initial
state and replaying the positions forward (the model's ``successors`` is deterministic).

A worker stores the successors it owns while it expands (a batch of fingerprints at a
time), then those the others sent, in sender order: the order the exact parallel search
stores them in, so both number the states alike and report the same states, transitions,
levels and verdicts (barring a fingerprint collision).  Crossing successors are
deduplicated per level by fingerprint, in a bounded set.  What crosses waits for its
owner in transfer files (batches over 64 KB; marshalled: ~0.6 KB a state, under the spill
directory) until the owner merges them at the end of the level: only the small batches
(under 64 KB) wait in memory.  The stored states cost ~20 B each.
"""

from __future__ import annotations

import os
from array import array
from collections import defaultdict

import numpy as np

from . import checkpoint
from .explorer import SEEN_RAW_LIMIT, Trace
from .fingerprints import (_M64, BATCH, FingerprintSet, _SpillLevel, index_bytes, min_gap,
                           store_entry)
from .fingerprints import replay as replay_positions
from .parallel import (_BATCH, _INDEX_BITS, _Worker, _decode, _encode, _unlink,
                       owner_function)

SENT_LIMIT = 1 << 20   # crossing fingerprints remembered per level before starting again


class FingerprintWorker(_Worker):
    """One partition of a parallel fingerprint search."""

    def __init__(self, model, me, workers, inboxes, conn, canonicalize, spill_dir=None,
                 checkpoint_dir=None):
        super().__init__(model, me, workers, inboxes, conn, canonicalize)
        # with checkpoints, its levels and index arrays are files of its own there
        self.files = (checkpoint.worker_dir(checkpoint_dir, me)
                      if checkpoint_dir is not None else None)
        if self.files is not None:
            os.makedirs(self.files, exist_ok=True)
        self.written_levels = 0
        self.visited = None
        self.seen = FingerprintSet()
        self.fingerprint = getattr(model, "fingerprint", hash)
        self.spill_dir = spill_dir
        self.initial: list = []        # level 0 states of this partition
        self.frontier = None           # the level being expanded next (_SpillLevel)
        self.links: list[array] = []   # per level >= 1: packed parent links
        self.positions: list[array] = []  # per level >= 1: the transition's position
        self.stored = 0
        self.generated = 0

    def stored_count(self) -> int:
        return self.stored

    def handle(self, msg):
        kind = msg[0]
        if kind == "link_at":   # (parent (level, owner, index), position) of a stored state
            level, index = msg[1], msg[2]
            return "ok", (_unlink(self.links[level - 1][index], self.workers),
                          self.positions[level - 1][index])
        if kind == "initial":
            return "ok", self.initial[msg[1]]
        if kind == "fingerprint_stats":
            keys = self.seen.table[self.seen.table != 0]
            keys.sort()
            return "ok", {"generated": self.generated, "table_bytes": self.seen.nbytes,
                          "index_bytes": index_bytes(self.links + self.positions),
                          "keys": keys.tobytes()}
        if kind == "checkpoint":
            self._checkpoint(msg[1])
            return "ok", None
        if kind == "restore":
            return "ok", self._restore(msg[1])
        if kind in ("link", "state"):
            return "error", f"{kind!r}: the fingerprint store keeps no states to look up"
        return super().handle(msg)

    # ------------------------------------------------------------------ storing
    def _store_batch(self, states, links, positions, level, active_checks, found,
                     fingerprints=None):
        """Store the new states of a batch (in batch order) into level `level`: fingerprints
        looked up together (`fingerprints`: computed by the sender already), new ones
        appended to the level being built and checked."""
        if not states:
            return
        if fingerprints is None:
            fingerprints = [self.fingerprint(s) for s in states]
        fps = np.frombuffer(array("Q", [f & _M64 for f in fingerprints]), dtype=np.uint64)
        self.generated += len(states)
        nxt, link_arr, pos_arr = self.building
        covers = [(sm.cover, self.reached[sm.name]) for sm in self.sometimes]
        for i, is_new in enumerate(self.seen.add(fps).tolist()):
            if not is_new:
                continue
            state = states[i]
            loc = (level, self.me, len(nxt))
            nxt.append(state)
            if level:
                link_arr.append(links[i])
                pos_arr.append(positions[i])   # OverflowError past 65,535 successors
            else:
                self.initial.append(state)
            self.stored += 1
            checks = active_checks[0]
            if checks:
                for name, check in checks:
                    reason = check(state)
                    if reason is not None:
                        found.append((name, loc, str(reason)))
                        active_checks[0] = checks = [c for c in checks if c[0] != name]
            for cover, reached in covers:
                reached.update(cover(state))

    def _new_level(self, level):
        spill = (_SpillLevel(None, path=checkpoint._level_file(self.files, level))
                 if self.files is not None else _SpillLevel(self.spill_dir))
        self.building = (spill, array("Q"), array("H"))
        self.building_level = level

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self, tmp: str) -> None:
        """Write this partition's part of a checkpoint: its frontier and finished index
        arrays into its own files, its table and counters into ``tmp``."""
        self.frontier.sync()
        checkpoint.write_index_arrays(self.files, "links", self.links, self.written_levels,
                                      np.uint64)
        checkpoint.write_index_arrays(self.files, "positions", self.positions,
                                      self.written_levels, np.uint16)
        self.written_levels = len(self.links)
        np.save(os.path.join(tmp, f"table-w{self.me}.npy"), self.seen.table)
        checkpoint.dump(os.path.join(tmp, f"worker-w{self.me}.pickle"), {
            "stored": self.stored, "generated": self.generated,
            "table_count": self.seen.count, "counts": dict(self.counts),
            "initial": self.initial, "frontier_size": len(self.frontier),
            "initial_fingerprints": [self.fingerprint(s) for s in self.initial]})

    def _restore(self, cp: str):
        """Load this partition's part of checkpoint ``cp``; None, or why it cannot be."""
        try:
            snap = checkpoint.load(os.path.join(cp, f"worker-w{self.me}.pickle"))
            table = np.load(os.path.join(cp, f"table-w{self.me}.npy"))
            depth = int(os.path.basename(cp)[3:])
            links = checkpoint.read_index_arrays(self.files, "links", depth, "Q")
            positions = checkpoint.read_index_arrays(self.files, "positions", depth, "H")
        except checkpoint.DAMAGED as e:
            return f"damaged checkpoint {os.path.basename(cp)} (worker {self.me}: {e})"
        if snap["initial_fingerprints"] != [self.fingerprint(s) for s in snap["initial"]]:
            return checkpoint.FINGERPRINTS_DIFFER
        self.seen.table, self.seen.count = table, snap["table_count"]
        self.links, self.positions = links, positions
        self.written_levels = depth
        self.stored, self.generated = snap["stored"], snap["generated"]
        self.counts.update(snap["counts"])
        self.initial = snap["initial"]
        self.frontier = _SpillLevel(None, path=checkpoint._level_file(self.files, depth),
                                    size=snap["frontier_size"])
        return None

    def _checks(self, active):
        return [[(n, self.checks[n]) for n in active if n in self.checks]]

    def _init(self, active):
        canonical, me = self.canonical, self.me
        owner_of_state = owner_function(self.model, self.workers)
        mine = []
        for state in self.model.initial_states():
            state = canonical(state) if canonical else state
            if owner_of_state(state) == me:
                mine.append(state)
        found: list = []
        self._new_level(0)
        self._store_batch(mine, None, None, 0, self._checks(active), found)
        self._finish_level()
        return self._report(found, 0, 0, None)

    def _finish_level(self):
        nxt, links, positions = self.building
        if self.building_level:
            self.links.append(links)
            self.positions.append(positions)
        if self.frontier is not None:
            self.frontier.close()
        self.frontier = nxt

    # ------------------------------------------------------------------ one level
    def _level(self, active):
        model, canonical, me, w = self.model, self.canonical, self.me, self.workers
        successors, counts = model.successors, self.counts
        depth = len(self.links)
        level = depth + 1
        self._new_level(level)
        checks = self._checks(active)
        found: list = []
        steps = [(n, self.step_checks[n]) for n in active if n in self.step_checks]
        seen, limit = self.seen_raw, SEEN_RAW_LIMIT
        seen_add = seen.add
        fingerprint = self.fingerprint
        sent: set = set()
        owner_of_state = owner_function(model, w)
        base = (depth * w + me) << _INDEX_BITS
        own = ([], [], [])                      # states, links, positions
        # per owner: states, parent indices, positions, fingerprints (computed once)
        out = [([], [], [], []) for _ in range(w)]

        def send(owner, last):
            batch = out[owner]
            self.post(owner, _encode(batch), last)
            out[owner] = ([], [], [], [])

        final = stuck = 0
        first_stuck = None
        for index, state in enumerate(self.frontier):
            position = -1
            for position, (label, succ) in enumerate(successors(state)):
                counts[label] += 1
                routed = False
                if canonical is not None:
                    n_seen = len(seen)
                    seen_add(succ)
                    routed = len(seen) == n_seen
                    if routed:
                        if not steps:
                            continue
                    elif n_seen >= limit:
                        seen.clear()
                        seen_add(succ)
                    succ = canonical(succ)
                if steps:
                    for name, check in steps:
                        reason = check(state, label, succ)
                        if reason is not None:
                            found.append((name, (depth, me, index), str(reason), label, succ))
                            steps = [c for c in steps if c[0] != name]
                if routed:
                    continue
                owner = owner_of_state(succ)
                if owner == me:
                    own[0].append(succ)
                    own[1].append(base | index)
                    own[2].append(position)
                    if len(own[0]) >= BATCH:
                        self._store_batch(*own, level, checks, found)
                        own = ([], [], [])
                    continue
                fp = fingerprint(succ)
                if fp in sent:
                    continue
                if len(sent) >= SENT_LIMIT:
                    sent.clear()
                sent.add(fp)
                batch = out[owner]
                batch[0].append(succ)
                batch[1].append(index)
                batch[2].append(position)
                batch[3].append(fp)
                if len(batch[0]) >= _BATCH:
                    send(owner, False)
            if position < 0:
                if self.is_final is None or self.is_final(state):
                    final += 1
                else:
                    stuck += 1
                    if first_stuck is None:
                        first_stuck = (depth, me, index)
        self._store_batch(*own, level, checks, found)
        for owner in range(w):
            if owner != me:
                send(owner, True)
        received: dict = defaultdict(list)
        done = 0
        while done < w - 1:
            sender, blob, last = self.take(defer=True)   # big batches stay on disk
            received[sender].append(blob)
            done += last
        for sender in sorted(received):     # sender order: deterministic
            sender_base = (depth * w + sender) << _INDEX_BITS
            for blob in received[sender]:
                states, parents, positions, fps = _decode(self.load(blob))
                self._store_batch(states, [sender_base | i for i in parents], positions,
                                  level, checks, found, fps)
        self._finish_level()
        return self._report(found, final, stuck, first_stuck)

    def _report(self, found, final, stuck, first_stuck):
        reached = {name: goals for name, goals in self.reached.items()}
        self.reached = {name: set() for name in self.reached}
        return {"stored": self.stored, "frontier": len(self.frontier),
                "violations": found, "final": final, "stuck": stuck,
                "first_stuck": first_stuck, "transitions": sum(self.counts.values()),
                "reached": reached}


# ---------------------------------------------------------------------- the parent's side
def replay(model, workers, canonicalize, loc, reason) -> Trace:
    """The trace to the state at ``loc`` (level, owner, index): links walked back through
    the workers to an initial state, the recorded positions replayed forward."""
    level, owner, index = loc
    chain = []
    while level > 0:
        (level, owner, index), position = workers.request(owner, ("link_at", level, index))
        chain.append(position)
    chain.reverse()
    states, labels = replay_positions(model, canonicalize,
                                      workers.request(owner, ("initial", index)), chain)
    return Trace(states=states, labels=labels, reason=reason, depth=len(labels))


def store_statistics(workers, stored: int) -> dict:
    """The result's ``store`` entry, as the one-process fingerprint search reports it,
    over every partition (the smallest gap between fingerprints of all of them)."""
    stats = [r[1] for r in workers.ask(("fingerprint_stats",))[0]]
    keys = np.concatenate([np.frombuffer(s["keys"], dtype=np.uint64) for s in stats])
    keys.sort()
    entry = store_entry(stored, sum(s["generated"] for s in stats), min_gap(keys),
                        sum(s["table_bytes"] for s in stats),
                        sum(s["index_bytes"] for s in stats))
    entry["workers"] = len(stats)
    return entry

