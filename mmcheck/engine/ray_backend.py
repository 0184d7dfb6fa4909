"""The hash-partitioned search of :mod:`mmcheck.engine.parallel` on a Ray cluster.

Each partition is a Ray actor holding one :class:`~mmcheck.engine.parallel._Worker` (its
visited states, levels and parent links); the driver (this process) runs the same
level-synchronous loop as with local worker processes (``parallel._drive``).  A level is
two rounds of actor calls: ``expand`` (each actor expands its part of the frontier and
returns, as one Ray object per owner, the successors other partitions own) and ``merge``
(each actor receives the objects addressed to it, in sender order, and stores and checks
its new states).  The objects move through Ray's object store, actor to actor; nothing
here opens a socket.  Results are the one-process search's (same states, transitions,
levels, label counts and shortest-counterexample depths), as with worker processes.

The model is shipped to the actors with cloudpickle, so it must be picklable that way (the
MM model is); states must hash the same on every node (tuples of ints do, under one
Python version, which Ray requires anyway).

``address=None`` starts a local Ray instance with ``workers`` CPUs, kept for the process's
later searches (or uses the one this process already started, e.g. a test's);
``address="HOST:PORT"`` joins a running cluster (``ray start --head --port=PORT`` on one
machine, ``ray start --address=HOST:PORT`` on the others; README "Big searches").
"""

from __future__ import annotations

from ..errors import IncompleteSearch
from .parallel import WorkerError, _ok


def _ray():
    try:
        import ray
    except ImportError:
        raise IncompleteSearch("the Ray backend needs Ray: pip install 'mmcheck[ray]'") \
            from None
    return ray


def _partition_class(ray):
    @ray.remote
    class Partition:
        """One partition of the search (mmcheck.engine.parallel._Worker)."""

        def __init__(self, blob, me, workers, canonicalize):
            from ray import cloudpickle

            from .parallel import _Worker

            model = cloudpickle.loads(blob)
            self.worker = _Worker(model, me, workers, None, None, canonicalize)
            self.me, self.workers = me, workers
            self.pending = None

        def call(self, msg):
            return self.worker.handle(msg)

        def expand(self, active):
            out = [([], []) for _ in range(self.workers)]

            def send(owner, states, parents, last):
                out[owner][0].extend(states)
                out[owner][1].extend(parents)

            self.pending = self.worker.expand(active, send)
            return tuple(out) if self.workers > 1 else out[0]

        def merge(self, active, *incoming):
            own_states, own_links, tally = self.pending
            self.pending = None
            received = {sender: [batch] for sender, batch in enumerate(incoming)
                        if sender != self.me}
            return "ok", self.worker.merge(own_states, own_links, received, tally, active)

    return Partition


class RayWorkers:
    """The driver's end of the Ray actors, with the interface ``parallel._drive`` uses
    (``ask``, ``request``, ``resident``, ``len``)."""

    def __init__(self, model, workers: int, canonicalize: bool, address=None) -> None:
        ray = self.ray = _ray()
        from ray import cloudpickle

        if not ray.is_initialized():
            try:
                quiet = {"log_to_driver": False, "logging_level": "ERROR"}
                if address:
                    ray.init(address=address, **quiet)
                else:
                    ray.init(num_cpus=workers, include_dashboard=False, **quiet)
            except Exception as e:  # noqa: BLE001 - Ray raises many kinds; say which one
                raise IncompleteSearch(f"cannot start or reach Ray"
                                       f"{' at ' + address if address else ''}: "
                                       f"{type(e).__name__}: {e}") from None
        blob = cloudpickle.dumps(model)
        blob_ref = ray.put(blob)
        # a CPU per partition where the cluster has them, a share of one otherwise (an
        # actor that cannot be placed would wait forever)
        cpus = ray.cluster_resources().get("CPU", 1)
        partition = _partition_class(ray).options(num_cpus=min(1.0, cpus / workers))
        self.actors = [partition.remote(blob_ref, w, workers, canonicalize)
                       for w in range(workers)]

    def __len__(self) -> int:
        return len(self.actors)

    def _get(self, refs, interruptible=False):
        """ray.get with the actors' failures as mmcheck's; Ctrl-C while waiting is noted
        (with ``interruptible``) and the wait goes on, as with worker processes."""
        ray = self.ray
        interrupted = False
        while True:
            try:
                return ray.get(refs), interrupted
            except KeyboardInterrupt:
                if not interruptible:
                    raise
                interrupted = True
            except ray.exceptions.RayActorError as e:
                raise IncompleteSearch(f"a Ray actor died: {e}") from None
            except ray.exceptions.RayTaskError as e:
                if isinstance(e.cause, MemoryError):
                    raise IncompleteSearch("a Ray actor ran out of memory; bound the search "
                                           "(--max-states, --depth)") from None
                raise WorkerError(str(e)) from None

    def ask(self, message, interruptible=False):
        if message[0] == "level":
            active = message[1]
            w = len(self.actors)
            outs = [a.expand.options(num_returns=w).remote(active) for a in self.actors]
            if w == 1:
                outs = [[o] for o in outs]
            refs = [a.merge.remote(active, *[outs[s][me] for s in range(w)])
                    for me, a in enumerate(self.actors)]
        else:
            refs = [a.call.remote(message) for a in self.actors]
        replies, interrupted = self._get(refs, interruptible)
        return [_ok(r) for r in replies], interrupted

    def request(self, w, message):
        replies, _ = self._get([self.actors[w].call.remote(message)])
        return _ok(replies[0])[1]

    def resident(self) -> int:
        from . import memory

        replies, _ = self.ask(("resident",))
        return memory.rss_bytes() + sum(r[1] for r in replies)

    def close(self) -> None:
        """Kill the actors; a Ray instance this started stays up for the next search of
        the same process (Ray shuts it down when the process exits)."""
        for a in self.actors:
            try:
                self.ray.kill(a)
            except Exception:  # noqa: BLE001 - already gone
                pass
