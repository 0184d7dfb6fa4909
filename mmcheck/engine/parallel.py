"""Hash-partitioned, shared-nothing breadth-first search over several processes.

Same model protocol and same `Result` as :func:`mmcheck.engine.explorer.explore`, which calls
this with ``workers > 1``.  Each worker process owns the states whose hash falls in its
partition (``hash(state) % workers``, or of the model's ``partition_key(state)``: see
:func:`owner_of`): it keeps their visited set and parent links, checks
their invariants and expands them.  Search is level-synchronous, so the first violation of
each invariant is still a shortest one:

  1. every worker expands its part of the frontier; successors it owns go straight to its
     own next level, the others are sent, in batches, to their owners (a queue per worker;
     a big batch is written to a file in the search's transfer directory, under the spill
     directory or $TMPDIR, and only its name is queued);
  2. every worker merges what it received (in sender order, so runs are deterministic),
     stores and checks the new states, and reports counts and violations to the parent;
  3. the parent decides whether to go on (depth, state and violation bounds, Ctrl-C).

Only successors that change partition cross a process boundary, and only once per level
(the brief's measurement: shipping every state to a central pool was 9x slower; this
design gave 1.5x on 2 cores).  Workers are forked, so the model is inherited, not
pickled; states must be picklable (tuples of ints are) and hash the same in every
process (ints and tuples of ints do; strings do only with a fixed PYTHONHASHSEED).

With the fingerprint store each worker keeps its partition's fingerprints instead of its
states (:mod:`mmcheck.engine.parallel_fingerprints`, which extends the worker here).

Differences from the one-process search, documented in :func:`explore`: the state bound is
checked after each level (a run may store up to one level more than ``max_states``), the
progress callback is called once per level, and among several shortest counterexamples of
one invariant a different one may be reported.
"""

from __future__ import annotations

import marshal
import multiprocessing
import os
import pickle
from multiprocessing import connection as mp_connection
import shutil
import signal
import tempfile
import time
import traceback
from collections import defaultdict
from typing import Any

from . import explorer, memory
from ..errors import IncompleteSearch

# how many crossing successors go in one message
_BATCH = 20_000
# a message bigger than this goes through a file, its name through the queue: PyPy's
# multiprocessing pipes read big messages slowly (140,000 states of 416 B in 20,000-state
# messages: 2.7 s through a Queue, 0.25 s through files; CPython: 0.24 s both ways)
_FILE_MIN = 1 << 16


class WorkerError(RuntimeError):
    """A worker process failed; carries its traceback text."""


def explore_parallel(model: Any, workers: int, *, max_depth, max_states, canonicalize,
                     stop_when_all_violated, progress, max_memory=None, backend="processes",
                     address=None, store="exact", spill_dir=None, checkpoint=None,
                     resume=None) -> "explorer.Result":
    if backend == "ray":   # the same partitions as Ray actors (mmcheck.engine.ray_backend)
        from .ray_backend import RayWorkers

        actors = RayWorkers(model, workers, canonicalize, address)
        try:
            return _drive(model, actors, max_depth=max_depth, max_states=max_states,
                          canonicalize=canonicalize,
                          stop_when_all_violated=stop_when_all_violated, progress=progress,
                          max_memory=max_memory)
        finally:
            actors.close()
    ctx = multiprocessing.get_context("fork")
    inboxes = [ctx.Queue() for _ in range(workers)]
    pipes = [ctx.Pipe() for _ in range(workers)]
    _remove_stale_transfers(spill_dir or tempfile.gettempdir())
    transfers = tempfile.mkdtemp(prefix=f"{_TRANSFERS}{os.getpid()}-", dir=spill_dir)
    procs = [ctx.Process(target=_worker_main, daemon=True,
                         args=(model, w, workers, inboxes, pipes[w][1], canonicalize,
                               os.getpid(), store, spill_dir,
                               checkpoint.directory if checkpoint is not None else None,
                               transfers))
             for w in range(workers)]
    try:
        for p in procs:
            p.start()
    except BaseException:
        shutil.rmtree(transfers, ignore_errors=True)
        raise
    conns = [parent for parent, _child in pipes]
    for _parent, child in pipes:
        child.close()  # the workers hold these: a dead worker's pipe then reads EOF
    failed = True
    try:
        result = _drive(model, _Workers(conns, procs), max_depth=max_depth,
                        max_states=max_states,
                        canonicalize=canonicalize,
                        stop_when_all_violated=stop_when_all_violated, progress=progress,
                        max_memory=max_memory, store=store, checkpoint=checkpoint,
                        resume=resume)
        failed = False
        return result
    finally:
        for c in conns:
            try:
                c.send(("stop",))
            except (BrokenPipeError, OSError):
                pass
        for p in procs:
            if failed:  # a worker may be blocked on its inbox: do not wait for it
                p.kill()  # (workers ignore SIGTERM: see _worker_main)
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join()
        shutil.rmtree(transfers, ignore_errors=True)


_TRANSFERS = "mmcheck-transfer-"  # + the parent's pid + "-" + a random suffix


def _remove_stale_transfers(directory: str) -> None:
    """Remove the transfer directories a killed search left behind (SIGKILL, the OOM
    killer: its `finally` never ran), known by the dead pid in their names."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not name.startswith(_TRANSFERS):
            continue
        pid = name[len(_TRANSFERS):].split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
        except OSError:  # alive, another user's
            pass


def _ok(reply):
    """A worker's reply: its payload, or its error raised here."""
    if reply[0] == "error":
        raise WorkerError(reply[1])
    if reply[0] == "memory":
        raise IncompleteSearch(f"a worker process ran out of memory after storing "
                               f"{reply[1]:,} states; bound the search (--max-states, "
                               f"--depth) or use fewer workers")
    return reply


def _died(proc, index) -> Exception:
    """The error for a worker process that exited without answering."""
    code = proc.exitcode
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        if -code == signal.SIGKILL:
            return IncompleteSearch(f"worker process {index} was killed by SIGKILL (the "
                                    f"kernel's OOM killer?); bound the search (--max-states, "
                                    f"--depth) or use fewer workers")
        return WorkerError(f"worker process {index} was killed by {name}")
    return WorkerError(f"worker process {index} exited unexpectedly (status {code})")


class _Workers:
    """The parent's end of the worker processes: their pipes and their processes, so a
    worker that dies (OOM killer, a signal) is noticed instead of waited for."""

    def __init__(self, conns, procs):
        self.conns, self.procs = conns, procs

    def resident(self) -> int:
        """Resident bytes of this process and the workers."""
        return memory.rss_bytes() + sum(memory.rss_bytes(p.pid) for p in self.procs)

    def __len__(self):
        return len(self.conns)

    def request(self, w, message):
        self.conns[w].send(message)
        return self._recv({w})[w][1]

    def ask(self, message, interruptible=False):
        """Send `message` to every worker; (replies in worker order, whether Ctrl-C was
        pressed while waiting).  Workers ignore SIGINT, so after Ctrl-C the request still
        completes.  A worker's error or death is raised at once (the others may be
        waiting for its successors forever; the caller terminates them)."""
        for c in self.conns:
            c.send(message)
        replies = self._recv(set(range(len(self.conns))), interruptible)
        interrupted = replies.pop("interrupted")
        return [replies[w] for w in range(len(self.conns))], interrupted

    def _recv(self, waiting, interruptible=False):
        replies: dict = {"interrupted": False}
        by_handle = {}
        while waiting:
            handles = []
            for w in waiting:
                handles += [self.conns[w], self.procs[w].sentinel]
                by_handle[id(self.conns[w])] = by_handle[self.procs[w].sentinel] = w
            try:
                ready = mp_connection.wait(handles)
            except KeyboardInterrupt:
                if not interruptible:
                    raise
                replies["interrupted"] = True
                continue
            for h in ready:
                w = by_handle[h if isinstance(h, int) else id(h)]
                if w not in waiting:
                    continue
                conn = self.conns[w]
                if conn.poll():
                    try:
                        replies[w] = _ok(conn.recv())
                    except EOFError:
                        self.procs[w].join(timeout=1)
                        raise _died(self.procs[w], w) from None
                    waiting.discard(w)
                elif isinstance(h, int):  # its process ended without a reply
                    self.procs[w].join(timeout=1)
                    raise _died(self.procs[w], w)
        return replies


def _drive(model, workers, *, max_depth, max_states, canonicalize, stop_when_all_violated,
           progress, max_memory=None, store="exact", checkpoint=None, resume=None):
    start = time.perf_counter()
    names = ([name for name, _check in model.invariants()]
             + [name for name, _check in getattr(model, "final_checks", lambda: ())()]
             + [name for name, _check in getattr(model, "step_checks", lambda: ())()])
    sometimes = list(getattr(model, "sometimes", lambda: ())())
    reached: dict = {sm.name: set() for sm in sometimes}
    first: dict = {}  # name -> (depth, state, reason)
    final = stuck = 0
    first_stuck = None
    level_sizes: list[int] = []
    bounded_by = None
    stored = transitions = 0

    def absorb(replies, depth):
        nonlocal stored, final, stuck, first_stuck
        stored = sum(r[1]["stored"] for r in replies)
        for r in replies:  # worker order: deterministic
            info = r[1]
            final += info["final"]
            stuck += info["stuck"]
            if first_stuck is None and info["first_stuck"] is not None:
                first_stuck = info["first_stuck"]
            for name, *found in info["violations"]:
                if name not in first:
                    first[name] = (depth, *found)
            for name, goals in info["reached"].items():
                reached[name].update(goals)
        return sum(r[1]["frontier"] for r in replies)

    if resume is not None:   # a parallel fingerprint search saved at a level boundary
        snap = resume.restore_parallel(workers)
        depth, frontier, level_sizes = snap["depth"], snap["frontier"], snap["level_sizes"]
        stored, first, final, stuck = snap["stored"], snap["first"], snap["final"], snap["stuck"]
        first_stuck = snap["first_stuck"]
        for name, goals in snap["reached"].items():
            reached[name].update(goals)
        start -= snap["elapsed"]
    else:
        frontier = absorb(workers.ask(("init", names))[0], 0)
        depth = 0
    try:
        while frontier:
            if checkpoint is not None:   # levels 0..depth stored, depth not expanded
                checkpoint.save_parallel(workers, {
                    "workers": len(workers), "depth": depth, "frontier": frontier,
                    "level_sizes": list(level_sizes), "stored": stored, "first": first,
                    "final": final, "stuck": stuck, "first_stuck": first_stuck,
                    "reached": reached, "elapsed": time.perf_counter() - start})
            level_sizes.append(frontier)
            if max_depth is not None and depth >= max_depth:
                bounded_by = "depth"
                break
            if max_states is not None and stored > max_states:
                bounded_by = "states"
                break
            if stop_when_all_violated and names and len(first) == len(names):
                bounded_by = "violations"
                break
            if max_memory is not None and workers.resident() > max_memory:
                bounded_by = "memory"
                break
            if progress is not None:
                elapsed = time.perf_counter() - start
                progress(explorer.ExplorationProgress(
                    states=stored, transitions=transitions, depth=depth, elapsed=elapsed,
                    rate=stored / elapsed if elapsed > 0 else 0.0, frontier=frontier))
            active = [n for n in names if n not in first]
            replies, interrupted = workers.ask(("level", active), interruptible=True)
            if interrupted:
                bounded_by = "interrupted"
            transitions = sum(r[1]["transitions"] for r in replies)
            frontier = absorb(replies, depth + 1)
            depth += 1
            if interrupted:
                if frontier:
                    level_sizes.append(frontier)
                break
    except KeyboardInterrupt:  # between levels
        bounded_by = "interrupted"

    label_counts: defaultdict = defaultdict(int)
    for r in workers.ask(("counts",))[0]:
        for label, n in r[1].items():
            label_counts[label] += n

    def parent_of(state):
        link = workers.request(owner_of(model, state, len(workers)), ("link", state))
        if link is None:
            return explorer._NO_PARENT
        level, owner, index = link
        return workers.request(owner, ("state", level, index))

    def trace_to(found, reason):
        """The trace to a violating (or stuck) state: by lookups of the stored states, or
        with fingerprints replayed from its place (level, owner, index)."""
        if store == "fingerprints":
            from .parallel_fingerprints import replay

            return replay(model, workers, canonicalize, found, reason)
        return explorer.trace_from(model, canonicalize, found, parent_of, reason)

    violations = {}
    for name in names:
        if name in first:
            _depth, found, reason, *step = first[name]
            trace = trace_to(found, reason)
            if step:  # a step property: the violating transition out of `state`
                trace = explorer.extend(trace, *step)
            violations[name] = trace
    stuck_trace = (trace_to(first_stuck, "stuck: no successor and not final")
                   if first_stuck is not None else None)
    statistics = {"kind": "exact"}
    if store == "fingerprints":
        from .parallel_fingerprints import store_statistics

        statistics = store_statistics(workers, stored)
    elapsed = time.perf_counter() - start
    return explorer.Result(
        complete=bounded_by is None, bounded_by=bounded_by, states=stored,
        transitions=sum(label_counts.values()), max_depth=max(len(level_sizes) - 1, 0),
        elapsed=elapsed, states_per_second=stored / elapsed if elapsed > 0 else 0.0,
        label_counts=dict(label_counts), final_states=final, stuck_states=stuck,
        stuck_trace=stuck_trace, violations=violations, level_sizes=level_sizes,
        unreached=explorer.unreached_goals(sometimes, reached, label_counts),
        store=statistics)


# ------------------------------------------------------------------------------ workers
def _die_with_parent():
    """prctl(PR_SET_PDEATHSIG, SIGKILL): the kernel kills this worker when the parent
    dies, however it dies (SIGTERM, SIGKILL, the OOM killer), so none is left behind."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the daemon flag still applies
        pass


def _worker_main(model, me, workers, inboxes, conn, canonicalize, parent_pid,
                 store="exact", spill_dir=None, checkpoint_dir=None, transfers=None):
    # the parent decides when to stop (Ctrl-C and SIGTERM reach the whole process group);
    # if the parent dies, the kernel kills this worker (PR_SET_PDEATHSIG)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
    worker = None
    try:
        if store == "fingerprints":
            from .parallel_fingerprints import FingerprintWorker

            worker = FingerprintWorker(model, me, workers, inboxes, conn, canonicalize,
                                       spill_dir, checkpoint_dir)
        else:
            worker = _Worker(model, me, workers, inboxes, conn, canonicalize)
        worker.transfers = transfers
        worker.serve()
    except MemoryError:
        stored = worker.stored_count() if worker is not None else 0
        if worker is not None:
            worker.visited = worker.levels = None  # make room to answer
        try:
            conn.send(("memory", stored))
        except (BrokenPipeError, OSError):
            pass
    except Exception:  # report, never hang the parent
        try:
            conn.send(("error", traceback.format_exc()))
        except (BrokenPipeError, OSError):
            pass


class _Worker:
    """One partition: its visited states, its levels (for parent links), its frontier."""

    def __init__(self, model, me, workers, inboxes, conn, canonicalize):
        self.model, self.me, self.workers = model, me, workers
        self.inboxes, self.conn = inboxes, conn
        self.transfers = None  # the directory big batches go through (post), if any
        self.posted = 0
        self.canonical = model.canonical if canonicalize else None
        self.is_final = getattr(model, "is_final", None)
        # the same property kinds as the one-process search (mmcheck.engine.explorer)
        self.checks = dict(model.invariants())
        for name, check in getattr(model, "final_checks", lambda: ())():
            self.checks[name] = explorer._on_final(check, self.is_final)
        self.step_checks = dict(getattr(model, "step_checks", lambda: ())())
        self.sometimes = [sm for sm in getattr(model, "sometimes", lambda: ())()
                          if sm.on == "state"]
        self.reached = {sm.name: set() for sm in self.sometimes}
        # state -> parent link: _INITIAL, or the parent's (level, owner, index) packed
        # in one int (see _link), so only the state crosses a process boundary
        self.visited: dict = {}
        self.levels: list[list] = []  # states this worker stored, per BFS level
        self.counts: defaultdict = defaultdict(int)
        # successors before canonicalisation, already routed (explorer.SEEN_RAW_LIMIT)
        self.seen_raw: set = set()

    def stored_count(self) -> int:
        return len(self.visited)

    def serve(self):
        while True:
            msg = self.conn.recv()
            if msg[0] == "stop":
                return
            self.conn.send(self.handle(msg))

    def handle(self, msg):
        """The reply to one request from the parent (any backend)."""
        kind = msg[0]
        if kind == "init":
            return "ok", self._init(msg[1])
        if kind == "level":
            return "ok", self._level(msg[1])
        if kind == "counts":
            return "ok", dict(self.counts)
        if kind == "link":  # the parent link of a state this worker owns
            link = self.visited.get(msg[1], _MISSING)
            if link is _MISSING:
                return "error", ("a trace state is not stored by its owner (does hash() "
                                 "differ between processes?)")
            return "ok", None if link == _INITIAL else _unlink(link, self.workers)
        if kind == "state":  # the state at (level, index) of this worker
            return "ok", self.levels[msg[1]][msg[2]]
        if kind == "resident":
            return "ok", memory.rss_bytes()
        return "error", f"unknown request {kind!r}"

    def post(self, owner, blob: bytes, last: bool) -> None:
        """Send a batch of successors to worker `owner` (a big one through a file in the
        search's transfer directory)."""
        if self.transfers is not None and len(blob) >= _FILE_MIN:
            path = os.path.join(self.transfers, f"{self.me}-{owner}-{self.posted}")
            self.posted += 1
            with open(path, "wb") as f:
                f.write(blob)
            blob = path
        self.inboxes[owner].put((self.me, blob, last))

    def take(self, defer: bool = False):
        """The next batch sent to this worker: (sender, blob, whether it is its last).
        With `defer`, a batch that came through a file stays there and its path is the
        blob, for `load` when the worker merges it: a level's crossing states then wait
        on disk, not in memory (the fingerprint store's ~20 B a state depends on it)."""
        sender, blob, last = self.inboxes[self.me].get()
        return sender, (blob if defer else self.load(blob)), last

    @staticmethod
    def load(blob):
        """A batch's bytes: `blob` itself, or read from the transfer file it names (and
        the file removed)."""
        if type(blob) is str:
            with open(blob, "rb") as f:
                data = f.read()
            os.unlink(blob)
            return data
        return blob

    def _store(self, states, links, active):
        """Store the new states (with their parent links), check them, and make them
        the next level; return the violations found (name, state, reason), first per
        name."""
        visited, nxt = self.visited, []
        found, checks = [], [(n, self.checks[n]) for n in active if n in self.checks]
        covers = [(sm.cover, self.reached[sm.name]) for sm in self.sometimes]
        setdefault, n = visited.setdefault, len(visited)
        for state, link in zip(states, links):
            setdefault(state, link)  # one hash for probe and store
            if len(visited) == n:
                continue  # it was there
            n += 1
            nxt.append(state)
            if checks:
                for name, check in checks:
                    reason = check(state)
                    if reason is not None:
                        found.append((name, state, str(reason)))
                        checks = [c for c in checks if c[0] != name]
            for cover, reached in covers:
                reached.update(cover(state))
        self.levels.append(nxt)
        return found

    def _init(self, active):
        canonical, me, w = self.canonical, self.me, self.workers
        mine = []
        for state in self.model.initial_states():
            state = canonical(state) if canonical else state
            if owner_of(self.model, state, w) == me:
                mine.append(state)
        found = self._store(mine, [_INITIAL] * len(mine), active)
        return self._report(found, 0, 0, None)

    def _level(self, active):
        """Expand this worker's part of the frontier, exchange successors through the
        queues (streamed in batches), store what it owns."""
        def send(owner, batch_states, parents, last):
            self.post(owner, _encode((batch_states, parents)), last)

        own_states, own_links, tally = self.expand(active, send)
        received: dict = defaultdict(list)
        done = 0
        while done < self.workers - 1:
            sender, blob, last = self.take()
            received[sender].append(_decode(blob))
            done += last
        return self.merge(own_states, own_links, received, tally, active)

    def expand(self, active, send):
        """Expand the frontier: the successors this worker owns are returned (with their
        parent links), the others go to ``send(owner, states, parent indices, last)`` in
        batches (the last call per owner has ``last=True``); also returned: what the
        merge reports (dead ends, step violations)."""
        model, canonical, me, w = self.model, self.canonical, self.me, self.workers
        successors, counts = model.successors, self.counts
        depth = len(self.levels) - 1
        frontier = self.levels[depth]
        states: list = []  # successors this worker owns, and their parent links
        links: list = []
        out = [([], []) for _ in range(w)]  # per owner: successors, parent indices
        # a successor reached twice in this level crosses once (BFS interleavings meet
        # in diamonds: most successors are duplicates)
        sent: set = set()
        sent_add = sent.add
        final = stuck = 0
        first_stuck = None
        base = (depth * w + me) << _INDEX_BITS
        steps = [(n, self.step_checks[n]) for n in active if n in self.step_checks]
        step_found = []
        seen = self.seen_raw
        seen_add = seen.add
        limit = explorer.SEEN_RAW_LIMIT
        owner_of_state = owner_function(model, w)
        for index, state in enumerate(frontier):
            any_successor = False
            for label, succ in successors(state):
                any_successor = True
                counts[label] += 1
                routed = False  # canonicalised and routed before: a duplicate
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
                            step_found.append((name, state, str(reason), label, succ))
                            steps = [c for c in steps if c[0] != name]
                if routed:
                    continue
                owner = owner_of_state(succ)
                if owner == me:
                    states.append(succ)
                    links.append(base | index)
                elif succ not in sent:
                    sent_add(succ)
                    batch = out[owner]
                    batch[0].append(succ)
                    batch[1].append(index)
                    if len(batch[1]) >= _BATCH:
                        send(owner, batch[0], batch[1], False)
                        out[owner] = ([], [])
            if not any_successor:
                if self.is_final is None or self.is_final(state):
                    final += 1
                else:
                    stuck += 1
                    if first_stuck is None:
                        first_stuck = state
        for owner in range(w):
            if owner != me:
                batch = out[owner]
                send(owner, batch[0], batch[1], True)
        return states, links, (depth, final, stuck, first_stuck, step_found)

    def merge(self, states, links, received, tally, active):
        """Store the owned successors and those ``received`` ({sender: [(states, parent
        indices), ...]}), in sender order; report the level."""
        depth, final, stuck, first_stuck, step_found = tally
        w = self.workers
        for sender in sorted(received):  # sender order: deterministic
            sender_base = (depth * w + sender) << _INDEX_BITS
            for batch_states, parents in received[sender]:
                states.extend(batch_states)
                links.extend(sender_base | i for i in parents)
        found = self._store(states, links, active)
        # a step violation is a transition out of this level: it ranks with the violations
        # of the states stored into the next level (one transition deeper)
        return self._report(step_found + found, final, stuck, first_stuck)

    def _report(self, found, final, stuck, first_stuck):
        reached = {name: goals for name, goals in self.reached.items()}
        self.reached = {name: set() for name in self.reached}  # send each goal once
        return {"stored": len(self.visited), "frontier": len(self.levels[-1]),
                "violations": found, "final": final, "stuck": stuck,
                "first_stuck": first_stuck, "transitions": sum(self.counts.values()),
                "reached": reached}


def _encode(batch) -> bytes:
    """A batch of successors for another worker: marshal is 2x faster than pickle for
    tuples of ints both ways, and the queue's feeder thread (which would pickle while
    this worker expands, holding the GIL) then only copies bytes.  States marshal
    cannot write (instances of classes) go as a pickle."""
    try:
        return b"M" + marshal.dumps(batch)
    except ValueError:
        return b"P" + pickle.dumps(batch, pickle.HIGHEST_PROTOCOL)


def _decode(blob: bytes):
    return marshal.loads(blob[1:]) if blob[:1] == b"M" else pickle.loads(blob[1:])


def owner_function(model, workers: int):
    """state -> the partition that owns it: by the hash of the model's
    `partition_key(state)` when it has one (a part of the state few transitions change,
    so most successors stay with the worker that made them: fewer cross, and the diamonds
    that make duplicates meet in one worker), else of the whole state."""
    key = getattr(model, "partition_key", None)
    if key is None:
        return lambda state: hash(state) % workers
    return lambda state: hash(key(state)) % workers


def owner_of(model, state, workers: int) -> int:
    """The partition that owns `state` (`owner_function`)."""
    return owner_function(model, workers)(state)


# parent links: ((level * workers + owner) << _INDEX_BITS) | index in that level's list
_INDEX_BITS = 40
_INITIAL = -1


def _unlink(link, workers):
    """(level, owner, index) of a packed parent link."""
    index = link & ((1 << _INDEX_BITS) - 1)
    level, owner = divmod(link >> _INDEX_BITS, workers)
    return level, owner, index


_MISSING = object()
