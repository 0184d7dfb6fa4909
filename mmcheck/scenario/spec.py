"""The parsed, validated form of a scenario file (what the loader produces, what the model compiles).

Everything here is plain immutable data with source locations, so that any later error
(for instance a bound the model cannot honour) can still name the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def lookup(pairs, name: str, default: object = None) -> object:
    """The value for `name` in a tuple of (key, value) pairs."""
    for key, value in pairs:
        if key == name:
            return value
    return default


@dataclass(frozen=True)
class Loc:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Op:
    """One step of a thread's program, after alias expansion and default filling.

    `kind` is the canonical operation name from `mmcheck.scenario.ops.OPS` (e.g. "gup"); `written`
    is what the user wrote (e.g. "vmsplice"), kept for display.  `args` holds every field
    of the operation with defaults filled in.
    """

    kind: str
    args: tuple[tuple[str, object], ...]
    loc: Loc
    written: str = ""

    def get(self, name: str, default: object = None) -> object:
        return lookup(self.args, name, default)

    def describe(self) -> str:
        """`vmsplice(X, as=pipe)`: the name the user wrote, then the fields that say
        something (not fixed by an alias, not at their default; the scalar field bare)."""
        from .ops import OPS

        shown = self.written or self.kind
        spec = OPS.get(shown)
        fixed = dict(spec.fixed) if spec else {}
        parts = []
        for key, value in self.args:
            if key == "threads" or key in fixed:
                continue
            f = spec.field(key) if spec else None
            if f is not None and not f.required and value == f.default:
                continue
            if key == "coherent" and value == (self.get("type") == "pin" and bool(self.get("longterm"))):
                continue
            if isinstance(value, bool):
                value = str(value).lower()
            elif isinstance(value, tuple):
                value = "[" + ", ".join(map(str, value)) + "]"
            parts.append(str(value) if spec and key == spec.scalar else f"{key}={value}")
        return f"{shown}({', '.join(parts)})" if parts else shown


@dataclass(frozen=True)
class ThreadSpec:
    process: str
    name: str
    program: tuple[Op, ...]
    loc: Loc

    @property
    def qualname(self) -> str:
        return f"{self.process}.{self.name}"


@dataclass(frozen=True)
class ProcessSpec:
    """A process (mm).  `parent` is None for processes that exist at the start; otherwise
    the process is created by the `fork` op at `forked_by` (thread qualname, op index)."""

    name: str
    parent: str | None
    threads: tuple[ThreadSpec, ...]
    loc: Loc
    forked_by: tuple[str, int] | None = None


@dataclass(frozen=True)
class ObjectSpec:
    """A memory object: one page of a file (`type` file: a disk filesystem's page cache),
    of a memfd or shmem file (swap-backed page cache), or of a hugetlb memfd.  `state`:
    "present" (the page holds the object's initial data, in the page cache) or "none" (a
    hole: a fault allocates a zeroed page).  `implicit`: made by the loader for a page with
    `backing:` (one object shared by the initial processes) or a MAP_SHARED|MAP_ANONYMOUS
    page (one object per initial process)."""

    name: str
    type: str
    state: str
    loc: Loc
    implicit: str = ""  # "", "backing" or "shared_anon"


@dataclass(frozen=True)
class PageSpec:
    """A named virtual page: its own VMA in every initial process.

    By default a private anonymous mapping; with `object` (or the legacy `backing: file |
    memfd`) a mapping of a memory object, private (MAP_PRIVATE) or, with `shared`,
    MAP_SHARED; `shared` without an object is MAP_SHARED|MAP_ANONYMOUS.
    state: "none" (never touched), "zero" (private anonymous, read-faulted: the shared zero
    page, or the huge zero page for a THP, mapped R/O), "present" (anonymous: written, an
    exclusive page mapped writable and dirty; an object mapping: read-faulted, the page
    cache page mapped R/O, or writable for a shared writable mapping that wants no write
    notification).  `extra` holds `kind` (small / thp / pte_thp / hugetlb), `backing`
    (anon / file / memfd), `object` (a name or None), `shared` (bool) and `prot` (rw / r).
    """

    name: str
    state: str
    loc: Loc
    extra: tuple[tuple[str, object], ...] = ()

    def get(self, name: str, default: object = None) -> object:
        return lookup(self.extra, name, default)


@dataclass(frozen=True)
class RefSpec:
    """A named GUP reference, declared by the `gup` (or alias) op that takes it."""

    name: str
    owner: str  # process name
    page: str  # virtual page name
    type: str  # "get" (FOLL_GET) or "pin" (FOLL_PIN)
    write: bool  # FOLL_WRITE
    longterm: bool  # FOLL_LONGTERM
    fast: bool  # GUP-fast first (falls back to the slow path)
    coherent: bool  # the holder expects to stay coherent with the owner's page table
    loc: Loc


@dataclass(frozen=True)
class PolicyDef:
    """A user-defined policy: a preset plus knob overrides."""

    name: str
    base: str
    knobs: tuple[tuple[str, object], ...]
    loc: Loc
    description: str = ""


@dataclass(frozen=True)
class Expectation:
    policy: str
    prop: str
    verdict: str  # "holds" | "violated"
    loc: Loc


@dataclass(frozen=True)
class MenuTemplate:
    """One operation template of a menu: `kind` with the fields it fixes (`args`); pages,
    references and fork children are instantiated by the model.  `max`: uses allowed over
    a whole execution (None: unbounded)."""

    kind: str
    written: str
    args: tuple[tuple[str, object], ...]
    max: int | None
    loc: Loc

    def get(self, name: str, default: object = None) -> object:
        return lookup(self.args, name, default)


@dataclass(frozen=True)
class Menu:
    """Bug discovery: instead of fixed programs, every process may run any enabled
    instantiation of the templates at every step."""

    processes: int  # at most this many processes; the first exists at the start
    references: int  # GUP references one process may hold at once
    templates: tuple[MenuTemplate, ...]
    loc: Loc


@dataclass(frozen=True)
class Scenario:
    path: str
    name: str
    description: str
    pages: tuple[PageSpec, ...]
    processes: tuple[ProcessSpec, ...]  # initial processes first, then forked ones in file order
    refs: tuple[RefSpec, ...]
    events: tuple[str, ...]
    policies: tuple[str, ...]  # policies to run (preset names, aliases or defined names)
    policy_defs: tuple[PolicyDef, ...]
    properties: tuple[str, ...]
    expect: tuple[Expectation, ...]
    depth: int | None = None
    max_states: int | None = None
    depth_line: int | None = None  # where `depth:` is written
    background: tuple[tuple[str, object], ...] = ()  # actor -> count / flag
    menu: Menu | None = None
    loc: Loc = field(default_factory=lambda: Loc("<none>", 0))
    objects: tuple[ObjectSpec, ...] = ()  # declared in `objects:`
    properties_given: bool = False  # `properties:` was written (else every property)

    def background_setting(self, name: str, default: object = 0) -> object:
        return lookup(self.background, name, default)

    def process(self, name: str) -> ProcessSpec:
        for p in self.processes:
            if p.name == name:
                return p
        raise KeyError(name)

    def threads(self) -> tuple[ThreadSpec, ...]:
        return tuple(t for p in self.processes for t in p.threads)

    def ref(self, name: str) -> RefSpec:
        for r in self.refs:
            if r.name == name:
                return r
        raise KeyError(name)
