"""The state schema: every record of a model state and every field in it, declared once.

A state is a flat sequence of ints.  `SCHEMA` lists its records in layout order; each record
is indexed by some of the scenario's dimensions (processes, virtual pages, threads,
frames, swap slots, GUP references, menu counters) and declares its fields with a *kind*
that says what the int means:

  SCALAR      a number or a flag set no renaming touches
  VMA         vm_flags (mmcheck.model.codec), 0 when there is no VMA
  PTE         a packed page-table (or page-cache) entry: a frame or a swap slot, by its
              kind (mmcheck.model.codec)
  FRAME       a frame pointer: 0 none, f + 1 frame f, -1 the shared zero page
  FRAME_MASK  a set of frames, bit f
  SLOT        a swap-slot pointer: 0 none, i + 1 slot i
  VALUE       a value id (what a page holds; `MMModel.values`)
  VALUE_MASK  a set of value ids, bit v
  PC          a menu thread's program counter (which instantiation it runs)

A state is stored as `bytes`: its fields in layout order as fixed-width signed ints (the
layout's `typecode`, int32 unless a mask needs more bits); the model reads a stored state
and writes its successors through an `array` of those ints (`Layout.decode`,
`Layout.encode`).  Bytes hash once (the hash is cached), compare with memcmp and take 4 B a
field; a tuple of ints is rehashed at every probe, compared int by int, takes 8 B a field,
and under PyPy boxes every int of every new state.

Everything that depends on what a field means is derived from these declarations: the
offsets (`Layout`), the canonical renaming of frames and swap slots
(`mmcheck.model.canonical`), the process and page renamings of menu symmetry
(`mmcheck.model.symmetry`), the references refcount-sane counts (`Field.holds`), the
snapshot of traces and the accessors (`Layout.view`).  A field added here is renamed,
snapshotted and counted without any other change (tests/test_schema_model.py shows it on a
test model).

Ghost fields (`ghost=True`) are the checker's own bookkeeping (ideal memory), not kernel
state.  Thread fields are the kernel's `struct vm_fault` and locals of the path a thread is
in: each has aliases naming what it holds in a given step (mmcheck.model.steps declares
which step uses which).
"""

from __future__ import annotations

import operator
from array import array
from dataclasses import dataclass, field

SCALAR, VMA, PTE, FRAME, FRAME_MASK, SLOT, VALUE, VALUE_MASK, PC = (
    "scalar", "vma", "pte", "frame", "frame_mask", "slot", "value", "value_mask", "pc")
KINDS = (SCALAR, VMA, PTE, FRAME, FRAME_MASK, SLOT, VALUE, VALUE_MASK, PC)
POINTER_KINDS = (PTE, FRAME, FRAME_MASK, SLOT)

# dimensions a record may be indexed by (their sizes come from the compiled scenario)
PROC, VPAGE, THREAD, FRAME_DIM, SLOT_DIM, REF, COUNTER, OBJECT, TRACKING = (
    "proc", "vpage", "thread", "frame", "slot", "ref", "counter", "object", "tracking")
# TRACKING has size 1 when the scenario uses write tracking (userfaultfd, pagemap reads),
# else 0: records indexed by it cost nothing in scenarios that do not


@dataclass(frozen=True)
class Field:
    name: str
    kind: str
    doc: str
    aliases: tuple = ()  # other names of this field, each meaning it in some steps
    ghost: bool = False  # the checker's bookkeeping, not kernel state
    # references (page_count) and mappings (page_mapcount) the pointed-to frame owes to
    # this field, for refcount-sane: an int, "bias" (the reference's GUP bias), or
    # "step" (the step table says, per step the thread is in)
    holds: object = None
    maps: int = 0


@dataclass
class Record:
    name: str
    index: tuple  # dimensions, outermost first
    fields: tuple
    doc: str
    live: tuple = ()  # frames/slots: fields any of which is non-zero when the record is in use

    def __post_init__(self):
        self.size = len(self.fields)
        self.offset = {}
        for i, f in enumerate(self.fields):
            assert f.kind in KINDS, (self.name, f)
            for name in (f.name, *f.aliases):
                assert name not in self.offset, (self.name, name)
                self.offset[name] = i

    def offsets(self, *names) -> tuple:
        """Field offsets inside one record, by name or alias (bound to module constants by
        the kernel code, so the hot path indexes with plain ints)."""
        return tuple(self.offset[n] for n in names)

    def field(self, name) -> Field:
        return self.fields[self.offset[name]]


def _schema(*records) -> dict:
    return {r.name: r for r in records}


SCHEMA = _schema(
    Record("header", (), (
        Field("events", SCALAR, "bit i: the scenario's event i was signalled"),
        Field("kernel", SCALAR, "always RUNNING: the status background actors run under"),
    ), "scenario-wide fields"),
    Record("counter", (COUNTER,), (
        Field("uses", SCALAR, "how often a menu template has been used"),
    ), "menu template use counters"),
    Record("proc", (PROC,), (
        Field("status", SCALAR, "unborn / running / forking / exited"),
        Field("has_pinned", SCALAR, "mm->has_pinned (5.9; MMF_HAS_PINNED later)"),
        Field("write_protect_seq", SCALAR, "mm->write_protect_seq (5.11)"),
    ), "a process (its mm_struct)"),
    Record("pv", (PROC, VPAGE), (
        Field("vma", VMA, "vm_flags of the VMA at this virtual page"),
        Field("pte", PTE, "the page-table entry", holds=1, maps=1),
        Field("ideal", VALUE, "what a read should return here (ideal memory)", ghost=True),
        Field("legit", VALUE_MASK, "every value this process may observe here", ghost=True),
    ), "a process's view of one virtual page: its VMA, its PTE, its ideal memory"),
    Record("object", (OBJECT,), (
        Field("entry", PTE, "the page cache entry at the object's page: present (the page, "
                            "which the page cache holds a reference on), swap (a shmem page "
                            "swapped out: the slot) or none (a hole)", holds=1, maps=0),
        Field("ideal", VALUE, "what the object holds (ideal memory): its initial data, the "
                              "latest store through a shared mapping or a device", ghost=True),
        Field("legit", VALUE_MASK, "every value the object may hold (its data, the stores "
                                   "through shared mappings)", ghost=True),
    ), "a memory object (one page of a file, memfd or shared anonymous mapping) and its "
       "ideal memory"),
    Record("uffd", (TRACKING, PROC), (
        Field("ctx", SCALAR, "the mm's userfaultfd context: open, and the features "
                             "UFFDIO_API negotiated (mmcheck.model.codec UFFD_*)"),
    ), "a process's userfaultfd (write-tracking scenarios only)"),
    Record("wt", (TRACKING, PROC, VPAGE), (
        Field("wp", SCALAR, "uffd-wp tracker: protected by the scenario, a WP fault reported "
                            "since, the exemptions that apply (mmcheck.model.ghost)", ghost=True),
        Field("sd", SCALAR, "soft-dirty tracker: a store landed since clear_refs, its PTE "
                            "was zapped since (mmcheck.model.ghost)", ghost=True),
        Field("pagemap", SCALAR, "what the last /proc/pid/pagemap read of the page returned",
              ghost=True),
    ), "write-tracking ghost state of a process's page (write-tracking scenarios only)"),
    Record("ref", (REF,), (
        Field("page", FRAME, "the page a GUP reference holds (0 not held, -1 the zero page)",
              holds="bias"),
        Field("detached", SCALAR, "the owner discarded or unmapped the address since the "
                                  "reference was taken (MADV_DONTNEED, munmap): the holder "
                                  "no longer expects to see the owner's memory", ghost=True),
    ), "a GUP reference (FOLL_GET or FOLL_PIN) taken by the scenario"),
    Record("thread", (THREAD,), (
        Field("pc", PC, "program counter: the op the thread runs (menus: its instantiation)"),
        Field("step", SCALAR, "where the thread is inside its op: a step of mmcheck.model.steps "
                              "(0: at the start of the op)"),
        Field("mmap_lock", SCALAR, "mmap_lock mode the thread holds (none / read / write)"),
        Field("page", FRAME, "the page the kernel path works on", holds="step",
              aliases=("old_page", "fault_page", "isolated_page", "gup_page", "zap_page",
                       "swapcache_page", "spec_page")),
        Field("new_page", FRAME, "wp_page_copy's new page", holds="step"),
        Field("pages", FRAME_MASK, "exit_mmap: the pages unmapped, to free", holds="step"),
        Field("a", SCALAR, "a scalar register", aliases=("orig_pte", "cursor", "uffd_msg")),
        Field("b", SCALAR, "a second scalar register",
              aliases=("unshare", "foll_cow", "seq", "write_fault", "fault_kind")),
    ), "a thread of a process, or a background actor"),
    Record("frame", (FRAME_DIM,), (
        Field("ref", SCALAR, "page_count()"),
        Field("map", SCALAR, "page_mapcount()"),
        Field("flags", SCALAR, "page flags (mmcheck.model.codec PG_*)"),
        Field("content", VALUE, "the value the page holds"),
        Field("slot", SLOT, "the swap slot while the page is in the swapcache"),
    ), "a physical page (frame)", live=("ref",)),
    Record("slot", (SLOT_DIM,), (
        Field("swap_count", SCALAR, "swap entries (PTEs) using the slot"),
        Field("cache", SCALAR, "SWAP_HAS_CACHE: a swapcache page uses the slot"),
        Field("content", VALUE, "what was written to the slot"),
    ), "a swap slot", live=("swap_count", "cache")),
)

HEADER, COUNTERS, PROCESS, PV, OBJECT_REC, UFFD_REC, WT_REC, REFERENCE, THREAD_REC, FRAMES, \
    SLOTS = (SCHEMA[n] for n in ("header", "counter", "proc", "pv", "object", "uffd", "wt",
                                 "ref", "thread", "frame", "slot"))


def getter(positions):
    """A C-level `state -> tuple of these fields` (always a tuple, even for 0 or 1 field)."""
    positions = list(positions)
    if not positions:
        return lambda s: ()
    if len(positions) == 1:
        i = positions[0]
        return lambda s: (s[i],)
    return operator.itemgetter(*positions)


@dataclass
class Layout:
    """Where every field of every record lives for one compiled scenario (`sizes`: the
    size of each dimension), derived from `schema`."""

    sizes: dict
    schema: dict = field(default_factory=lambda: SCHEMA)
    typecode: str = "i"  # the array type of a field: "i" (int32) or "q" (int64)

    def __post_init__(self):
        pos = 0
        self.base: dict = {}  # record -> nested list of record bases (an int if unindexed)
        self.start: dict = {}
        for rec in self.schema.values():
            self.start[rec.name] = pos
            count = 1
            for dim in rec.index:
                count *= self.sizes[dim]
            bases = [pos + i * rec.size for i in range(count)]
            pos += count * rec.size
            self.base[rec.name] = _nest(bases, [self.sizes[d] for d in rec.index])
            self.start[rec.name + ":end"] = pos
        self.size = pos

    # ------------------------------------------------------------------ stored form
    def encode(self, fields) -> bytes:
        """The stored state of a sequence of field values."""
        return array(self.typecode, fields).tobytes()

    def decode(self, state: bytes) -> array:
        """The fields of a stored state, as a new array (the model's working copy)."""
        a = array(self.typecode)
        a.frombytes(state)
        return a

    # ------------------------------------------------------------------ derived position lists
    def instances(self, rec_name):
        """(index tuple, base) of every instance of a record, in layout order."""
        rec = self.schema[rec_name]
        dims = [self.sizes[d] for d in rec.index]
        out = []

        def walk(prefix, node):
            if isinstance(node, list):
                for i, sub in enumerate(node):
                    walk(prefix + (i,), sub)
            else:
                out.append((prefix, node))

        walk((), self.base[rec_name])
        assert len(out) == _product(dims)
        return out

    def positions(self, kind=None, record=None, name=None):
        """Every position of the fields of `kind` (and/or of `record`, `name`), in layout
        order: record by record, field by field, instance by instance."""
        out = []
        for rec in self.schema.values():
            if record is not None and rec.name != record:
                continue
            inst = self.instances(rec.name)
            for i, f in enumerate(rec.fields):
                if (kind is None or f.kind == kind) and (name is None or f.name == name):
                    out.extend(b + i for _ix, b in inst)
        return out

    def fields_of_kind(self, kind):
        """(record, field, offset) of every field of `kind`."""
        return [(rec, f, i) for rec in self.schema.values() for i, f in enumerate(rec.fields)
                if f.kind == kind]

    def span(self, rec_name):
        """(first position, end) of a record's section."""
        return self.start[rec_name], self.start[rec_name + ":end"]

    def where(self, pos):
        """(record, index tuple, field) of a position (for messages and snapshots)."""
        for rec in self.schema.values():
            lo, hi = self.span(rec.name)
            if lo <= pos < hi:
                k, off = divmod(pos - lo, rec.size)
                dims = [self.sizes[d] for d in rec.index]
                ix = []
                for d in reversed(dims):
                    k, r = divmod(k, d)
                    ix.append(r)
                return rec, tuple(reversed(ix)), rec.fields[off]
        raise IndexError(pos)

    # ------------------------------------------------------------------ accessors
    def view(self, s):
        """Named read access to a state: `v.pte(p, x)`, `v.frame(f).map`,
        `v.thread(t).step`, `v.vma(p, x)`... (tests, properties' messages, snapshots)."""
        return StateView(self, s)


class RecordView:
    """The fields of one record instance, by name or alias."""

    __slots__ = ("_s", "_base", "_rec")

    def __init__(self, s, base, rec):
        self._s, self._base, self._rec = s, base, rec

    def __getattr__(self, name):
        try:
            return self._s[self._base + self._rec.offset[name]]
        except KeyError:
            raise AttributeError(f"{self._rec.name} has no field {name!r}") from None

    def as_dict(self):
        return {f.name: self._s[self._base + i] for i, f in enumerate(self._rec.fields)}


class StateView:
    def __init__(self, layout, s):
        self.layout, self.s = layout, layout.decode(s) if type(s) is bytes else s

    def record(self, name, *index):
        node = self.layout.base[name]
        for i in index:
            node = node[i]
        return RecordView(self.s, node, self.layout.schema[name])

    def proc(self, p):
        return self.record("proc", p)

    def pv(self, p, v):
        return self.record("pv", p, v)

    def pte(self, p, v):
        return self.pv(p, v).pte

    def vma(self, p, v):
        return self.pv(p, v).vma

    def thread(self, t):
        return self.record("thread", t)

    def frame(self, f):
        return self.record("frame", f)

    def slot(self, i):
        return self.record("slot", i)

    def ref(self, r):
        return self.record("ref", r).page

    def object(self, o):
        return self.record("object", o)

    def wt(self, p, v):
        """The write-tracking ghost of process p's page v (write-tracking scenarios)."""
        return self.record("wt", 0, p, v)

    def uffd(self, p):
        return self.record("uffd", 0, p)

    def header(self):
        return self.record("header")


def _nest(flat, dims):
    if not dims:
        return flat[0]
    if len(dims) == 1 or not dims[0]:
        return list(flat)
    step = len(flat) // dims[0]
    return [_nest(flat[i * step:(i + 1) * step], dims[1:]) for i in range(dims[0])]


def _product(xs):
    out = 1
    for x in xs:
        out *= x
    return out


def inverse(order: list) -> list:
    """The inverse permutation: inverse(order)[order[k]] == k."""
    out = [0] * len(order)
    for k, x in enumerate(order):
        out[x] = k
    return out
