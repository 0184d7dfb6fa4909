"""Scenario and policy files: YAML in, validated `mmcheck.scenario.spec` data out.

Every error is a `ScenarioError(file, line, message)` naming the exact line of the offending
YAML node and the dotted path of the field (e.g. `processes.A.threads.main[2]`).

The YAML is parsed with PyYAML's SafeLoader into a node tree (`yaml.compose`-style), which
we walk ourselves so that every mapping key, mapping value and sequence item keeps its line
number; only scalars are constructed by PyYAML (so no arbitrary objects are ever built).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field as dc_field


from . import ops as ops_mod
from ..model import policy as policy_mod
from .yaml_source import (  # noqa: F401  (the line-keeping YAML layer)
    Checker,
    Composer as _Composer,
    Node as _Node,
    at_path as _at,
    child_path as _child_path,
    one_line as _one_line,
    read_text as _read,
    show as _show,
    suggest as _suggest,
)
from .ops import OPS, Field, OpSpec
from ..properties import NAMES as PROPERTY_NAMES
from .spec import (
    Expectation,
    Loc,
    Menu,
    MenuTemplate,
    Op,
    PageSpec,
    PolicyDef,
    ObjectSpec,
    ProcessSpec,
    RefSpec,
    Scenario,
    ThreadSpec,
)

__all__ = [
    "load_scenario",
    "load_scenario_text",
    "load_policy_file",
    "load_policy_text",
    "PAGE_EXTRA_FIELDS",
    "PAGE_STATES",
    "NAME_PATTERN",
    "POLICY_NAME_PATTERN",
    "VERDICTS",
    "TOP_LEVEL_KEYS",
]

NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_-]*"
"""Page, process, thread, reference and event names."""
_NAME_RE = re.compile(NAME_PATTERN + r"\Z")

POLICY_NAME_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.+-]*"
"""Names of user-defined policies (dots allowed, like the presets' `v5.7`)."""
_POLICY_NAME_RE = re.compile(POLICY_NAME_PATTERN + r"\Z")

PAGE_STATES: tuple[str, ...] = ("none", "zero", "present")

PAGE_EXTRA_FIELDS: dict[str, Field] = {
    "kind": Field("kind", "choice", default="small", choices=("small", "thp", "pte_thp", "hugetlb"),
                  doc="page class: small page, PMD-mapped THP, PTE-mapped THP, hugetlb page"),
    "backing": Field("backing", "choice", default="anon", choices=("anon", "file", "memfd"),
                     doc="anon: anonymous memory; file / memfd: a mapping of this page's own "
                         "file (shorthand for an object of that type)"),
    "object": Field("object", "object", default=None,
                    doc="the memory object (from `objects:`) this page maps"),
    "shared": Field("shared", "bool", default=False,
                    doc="MAP_SHARED (without an object or backing: MAP_SHARED|MAP_ANONYMOUS)"),
    "prot": Field("prot", "choice", default="rw", choices=("rw", "r"),
                  doc="the mapping's protection: PROT_READ|PROT_WRITE or PROT_READ"),
    "after": Field("after", "page", default=None,
                   doc="the page whose address this page's follows: their VMAs are adjacent "
                       "and merge when their flags allow (vma_merge)"),
}

OBJECT_TYPES: dict[str, str] = {
    "memfd": "memfd_create(): a shmem file (swap-backed page cache)",
    "shmem": "a file on tmpfs (/dev/shm): shmem, like memfd",
    "file": "a file on a disk filesystem (ext4): page cache with dirty accounting "
            "(page_mkwrite), not reclaimed by the model",
    "memfd_hugetlb": "memfd_create(MFD_HUGETLB): a hugetlbfs file (never swapped)",
}
OBJECT_STATES: tuple[str, ...] = ("present", "none")

# background actors: name -> (kind, doc)
BACKGROUND_FIELDS: dict[str, tuple[str, str]] = {
    "reclaim": ("count", "reclaim passes (shrink_page_list on any one mapped anon page) that "
                         "may run between any two steps"),
    "speculative_refs": ("count", "speculative page references (folio_try_get_rcu) taken on "
                                  "any mapped page and dropped later"),
    "lru_batch": ("bool", "fresh pages sit in a per-CPU LRU add batch holding a reference "
                          "until drained (a drain may happen between any two steps)"),
    "uffd_monitor": ("count", "a userfaultfd monitor that resolves uffd-wp faults: reads a "
                              "message, unprotects the page and wakes the writer (QEMU's "
                              "background snapshot saves the page in between), this many "
                              "times"),
}
"""Extra keys a page's long form may carry (besides `state`); they land in PageSpec.extra,
in this dict's order, with defaults filled in."""

TOP_LEVEL_KEYS: tuple[str, ...] = (
    "name", "description", "objects", "pages", "processes", "define_policies", "policies",
    "properties", "expect", "depth", "max_states", "background", "menu",
)
_REQUIRED_TOP = ("name", "pages")
MENU_OPS = ("read", "write", "fork", "munmap", "dontneed", "mprotect", "gup", "vmsplice", "pin",
            "put", "device_read", "device_write", "exit", "pageout", "clear_refs",
            "uffd_register", "uffd_unregister", "uffd_wp", "uffd_unwp", "uffd_read",
            "uffd_wake", "pagemap_read", "migrate", "mmap")
# fields the model instantiates in a menu (a template may not fix them)
_MENU_INSTANTIATED = ("page", "as", "ref", "child", "threads", "process", "event")
_PROCESS_KEYS = ("threads", "program")
_POLICY_DEF_KEYS = ("base", "knobs", "description")
VERDICTS = ("holds", "violated")

_NAME_RULE = "letters, digits, '_' and '-', not starting with a digit or '-'"



def _plain(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


class _Checker(Checker):
    """The YAML checker plus scenario names and operation fields."""

    def name(self, value: str, line: int, path: str, what: str) -> str:
        if not _NAME_RE.match(value):
            self.err(line, f"{_at(path)}invalid {what} name '{value}' "
                           f"(use {_NAME_RULE})")
        return value

    def name_node(self, node: _Node, what: str) -> str:
        return self.name(self.string(node, f"a {what} name"), node.line, node.path, what)

    def field_value(self, f: Field, node: _Node, opname: str) -> object:
        t = f.type
        if t in ("page", "ref", "newref", "process", "newproc", "event", "object"):
            what = {"page": "page", "ref": "reference", "newref": "reference",
                    "process": "process", "newproc": "process", "event": "event",
                    "object": "object"}[t]
            return self.name_node(node, what)
        if t == "bool":
            if node.kind != "scalar" or not isinstance(node.value, bool):
                self.err(node.line, f"{node.path}: expected true or false, "
                                    f"got {self.describe(node)}")
            return node.value
        if t == "choice":
            v = node.value if node.kind == "scalar" else None
            if not isinstance(v, str) or v not in f.choices:
                self.err(node.line, f"{node.path}: must be one of {', '.join(f.choices)}, "
                                    f"got {self.describe(node)}{_suggest(v, f.choices)}")
            return v
        if t == "flags":
            items = self.sequence(node, f"of {', '.join(f.choices)}")
            out = []
            for item in items:
                v = item.value if item.kind == "scalar" else None
                if not isinstance(v, str) or v not in f.choices:
                    self.err(item.line, f"{item.path}: must be one of {', '.join(f.choices)}, "
                                        f"got {self.describe(item)}{_suggest(v, f.choices)}")
                if v in out:
                    self.err(item.line, f"{item.path}: '{v}' given twice")
                out.append(v)
            return tuple(out)
        raise AssertionError(f"field type {t!r} of '{opname}' not handled")  # pragma: no cover


# --------------------------------------------------------------------------------------
# policies


def _parse_policy_defs(chk: _Checker, node: _Node) -> tuple[PolicyDef, ...]:
    """`name -> {base, knobs, description}`; validates names, bases (incl. cycles), knobs."""
    entries = chk.mapping(node, "policy name -> {base, knobs, description}")
    defs: dict[str, PolicyDef] = {}
    base_lines: dict[str, int] = {}
    for name, dnode in entries.items():
        kline = node.key_lines[name]
        if name in policy_mod.PRESETS or name in policy_mod.ALIASES:
            chk.err(kline, f"{chk.at(node)}'{name}' is a built-in policy; "
                           f"a defined policy may not shadow it")
        if not _POLICY_NAME_RE.match(name):
            chk.err(kline, f"{chk.at(node)}invalid policy name '{name}' "
                           f"(use letters, digits, '_', '-', '.' and '+')")
        d = chk.mapping(dnode, "with keys base, knobs, description")
        chk.keys(dnode, _POLICY_DEF_KEYS)
        if "base" not in d:
            chk.err(dnode.line, f"{dnode.path}: missing required key 'base'")
        base = chk.string(d["base"], "a policy name")
        base_lines[name] = d["base"].line
        knobs: list[tuple[str, object]] = []
        if "knobs" in d:
            knode = d["knobs"]
            for knob, vnode in chk.mapping(knode, "knob -> value").items():
                if knob not in policy_mod.KNOBS:
                    chk.err(knode.key_lines[knob],
                            f"{knode.path}: {policy_mod.check_knob(knob, None)}"
                            f"{_suggest(knob, policy_mod.KNOBS)}")
                value = vnode.value if vnode.kind == "scalar" else None
                problem = policy_mod.check_knob(knob, value) if vnode.kind == "scalar" else \
                    f"knob '{knob}' needs a single value, got {chk.describe(vnode)}"
                if problem:
                    chk.err(vnode.line, f"{vnode.path}: {problem}")
                knobs.append((knob, value))
        description = ""
        if "description" in d:
            description = chk.string(d["description"], "a string").strip()
        defs[name] = PolicyDef(name, base, tuple(knobs), Loc(chk.path, kline), description)
    for name, d in defs.items():
        if not policy_mod.known(d.base, defs):
            known = [*policy_mod.PRESETS, *policy_mod.ALIASES, *defs]
            chk.err(base_lines[name], f"{_child_path(node.path, name)}.base: unknown policy "
                                      f"'{d.base}'{_suggest(d.base, known)}")
    for name in defs:
        chain = [name]
        cur = defs[name].base
        while cur in defs:
            if cur in chain:
                cycle = " -> ".join(chain[chain.index(cur):] + [cur])
                chk.err(base_lines[name], f"{_child_path(node.path, name)}.base: "
                                          f"policies build on each other in a cycle: {cycle}")
            chain.append(cur)
            cur = defs[cur].base
    return tuple(defs.values())


def _policy_names(defs) -> list[str]:
    return [*policy_mod.PRESETS, *policy_mod.ALIASES, *(d.name for d in defs)]


# --------------------------------------------------------------------------------------
# processes, threads and ops


@dataclass
class _OpRec:
    """Bookkeeping for one op, for the cross-reference pass."""

    op: Op
    spec: OpSpec  # the spec the user wrote (alias or canonical)
    canon: OpSpec
    process: str
    thread: str  # qualname
    index: int
    node: _Node  # the list item
    fields: dict = dc_field(default_factory=dict)  # field name -> node it came from


@dataclass
class _Decl:
    name: str
    line: int
    path: str


class _ScenarioParser(_Checker):
    def __init__(self, path: str):
        super().__init__(path)
        self.ops: list[_OpRec] = []
        self.process_decls: list[_Decl] = []
        self.forked: list[ProcessSpec | None] = []

    # -- processes / threads -------------------------------------------------------

    def parse_processes(self, node: _Node) -> list[ProcessSpec]:
        entries = self.mapping(node, "process name -> {threads: ...} or {program: [...]}")
        if not entries:
            self.err(node.line, "processes: at least one process is required")
        initial = []
        for pname, pnode in entries.items():
            kline = node.key_lines[pname]
            self.name(pname, kline, node.path, "process")
            self.process_decls.append(_Decl(pname, kline, node.path))
            self.mapping(pnode, "with `threads:` or `program:`")
            self.keys(pnode, _PROCESS_KEYS)
            threads = self.parse_threads_of(pnode, pname, required=True)
            initial.append(ProcessSpec(pname, None, threads, Loc(self.path, kline)))
        return initial

    def parse_threads_of(self, owner: _Node, pname: str, required: bool) -> tuple[ThreadSpec, ...]:
        """Threads of process `pname` from a mapping holding `threads:` or `program:`."""
        d = owner.value
        if "threads" in d and "program" in d:
            self.err(owner.key_lines["program"],
                     f"{self.at(owner)}give either `threads:` or `program:`, not both")
        if "program" in d:
            return (self.parse_thread(pname, "main", d["program"], owner.key_lines["program"]),)
        if "threads" not in d:
            if required:
                self.err(owner.line, f"{self.at(owner)}process '{pname}' needs "
                                     f"`threads:` (thread name -> program) or `program:`")
            return ()
        tnode = d["threads"]
        if required and tnode.kind == "map" and not tnode.value:
            self.err(tnode.line, f"{tnode.path}: at least one thread is required")
        if not required and tnode.kind == "scalar" and tnode.value is None:
            return ()
        threads = []
        for tname, prog in self.mapping(tnode, "thread name -> list of operations").items():
            kline = tnode.key_lines[tname]
            self.name(tname, kline, tnode.path, "thread")
            threads.append(self.parse_thread(pname, tname, prog, kline))
        return tuple(threads)

    def parse_thread(self, pname: str, tname: str, prog: _Node, line: int) -> ThreadSpec:
        qual = f"{pname}.{tname}"
        if prog.kind == "scalar" and prog.value is None:
            items: list[_Node] = []
        else:
            items = self.sequence(prog, "of operations")
        program: list[Op] = []
        exited_at = None
        for index, item in enumerate(items):
            if exited_at is not None:
                self.err(item.line, f"{item.path}: unreachable: thread {qual} already "
                                    f"exited at line {exited_at}")
            op = self.parse_op(item, pname, qual, index)
            program.append(op)
            if op.kind == "exit":
                exited_at = item.line
        return ThreadSpec(pname, tname, tuple(program), Loc(self.path, line))

    # -- ops -----------------------------------------------------------------------

    def parse_op(self, item: _Node, pname: str, qual: str, index: int) -> Op:
        if item.kind == "scalar" and isinstance(item.value, str):
            opname = item.value
            self.check_opname(opname, item.line, item.path)
            spec = OPS[opname]
            if not spec.bare:
                self.err(item.line, f"{item.path}: '{opname}' needs a value{self.example(spec)}")
            return self.build_op(spec, {}, {}, item, pname, qual, index, item.path)
        if item.kind != "map":
            self.err(item.line, f"{item.path}: expected an operation (`- op: value`), "
                                f"got {self.describe(item)}")
        if not item.value:
            self.err(item.line, f"{item.path}: empty operation")
        if len(item.value) > 1:
            names = list(item.value)
            hint = ""
            if names[0] in OPS and item.value[names[0]].kind == "scalar":
                hint = f" (indent the fields of '{names[0]}' under it?)"
            self.err(item.line, f"{item.path}: an operation has exactly one key, found "
                                f"{', '.join(repr(n) for n in names)}{hint}")
        (opname, vnode), = item.value.items()
        self.check_opname(opname, item.key_lines[opname], item.path)
        spec = OPS[opname]
        canon = ops_mod.canonical(opname)
        opath = vnode.path
        given: dict[str, object] = {}
        nodes: dict[str, _Node] = {}
        if vnode.kind == "scalar" and vnode.value is None:
            if not spec.bare:
                self.err(vnode.line, f"{opath}: '{opname}' needs a value{self.example(spec)}")
        elif vnode.kind == "scalar":
            if spec.scalar is None:
                if not spec.fields:
                    self.err(vnode.line, f"{opath}: '{opname}' takes no value")
                self.err(vnode.line, f"{opath}: '{opname}' has no short form; give its fields "
                                     f"as a mapping{self.example(spec)}")
            f = spec.field(spec.scalar)
            given[f.name] = self.field_value(f, vnode, opname)
            nodes[f.name] = vnode
        elif vnode.kind == "map":
            threads_field = next((f for f in canon.fields if f.type == "threads"), None)
            allowed = [f.name for f in spec.fields]
            if threads_field is not None:
                allowed.append("program")
            fixed = dict(spec.fixed)
            for key, fnode in vnode.value.items():
                kline = vnode.key_lines[key]
                if key in fixed:
                    self.err(kline, f"{opath}: '{opname}' always has {key}: "
                                    f"{_plain(fixed[key])} (it is an alias of "
                                    f"'{spec.alias_of}'); remove '{key}'")
                if key not in allowed:
                    self.err(kline, f"{opath}: unknown field '{key}' for '{opname}'"
                                    f"{_suggest(key, allowed)} (fields: {', '.join(allowed)})")
                if threads_field is not None and key in (threads_field.name, "program"):
                    continue  # parsed with the fork, once the child's name is known
                f = spec.field(key)
                given[key] = self.field_value(f, fnode, opname)
                nodes[key] = fnode
            if threads_field is not None:
                nodes["threads"] = vnode
            for f in spec.fields:
                if f.required and f.name not in fixed and f.name not in vnode.value:
                    self.err(vnode.line, f"{opath}: '{opname}' is missing required field "
                                         f"'{f.name}'")
        else:
            self.err(vnode.line, f"{opath}: expected a value or a mapping of fields for "
                                 f"'{opname}', got a list")
        return self.build_op(spec, given, nodes, item, pname, qual, index, opath)

    def check_opname(self, opname, line, path):
        if opname not in OPS:
            self.err(line, f"{path}: unknown operation '{opname}'{_suggest(opname, OPS)}")

    @staticmethod
    def example(spec: OpSpec) -> str:
        if spec.example and "\n" not in spec.example:
            return f" (e.g. `{spec.example}`)"
        return ""

    def build_op(self, spec, given, nodes, item, pname, qual, index, opath) -> Op:
        canon = ops_mod.canonical(spec.name)
        fixed = dict(spec.fixed)
        values: dict[str, object] = {}
        for f in canon.fields:
            if f.name in fixed:
                values[f.name] = fixed[f.name]
            elif f.name in given:
                values[f.name] = given[f.name]
            elif f.type == "threads":
                values[f.name] = ()
            else:
                own = spec.field(f.name)
                values[f.name] = (own or f).default
        if "coherent" in values and values["coherent"] is None:
            values["coherent"] = values.get("type") == "pin" and bool(values.get("longterm"))
        # keep self.ops in depth-first file order: this op before its fork child's ops
        slot = len(self.ops)
        self.ops.append(None)  # type: ignore[arg-type]
        for f in canon.fields:
            if f.type == "newproc":
                threads = self.parse_fork(values[f.name], nodes[f.name], nodes.get("threads"),
                                          item, pname, qual, index)
                for tf in canon.fields:
                    if tf.type == "threads":
                        values[tf.name] = tuple(t.qualname for t in threads)
        args = tuple((f.name, values[f.name]) for f in canon.fields)
        op = Op(canon.name, args, Loc(self.path, item.line), spec.name)
        self.ops[slot] = _OpRec(op, spec, canon, pname, qual, index, item, nodes)
        return op

    def parse_fork(self, child, cnode, holder, item, pname, qual, index):
        """Declare the child process of a fork and parse its threads (`holder` is the fork's
        field mapping, holding `threads:` or `program:`, or None)."""
        self.process_decls.append(_Decl(child, cnode.line, cnode.path))
        slot = len(self.forked)
        self.forked.append(None)
        threads: tuple[ThreadSpec, ...] = ()
        if holder is not None:
            threads = self.parse_threads_of(holder, child, required=False)
        self.forked[slot] = ProcessSpec(child, pname, threads, Loc(self.path, item.line),
                                        forked_by=(qual, index))
        return threads

    # -- cross references ------------------------------------------------------------

    def cross_check(self, pages: dict[str, PageSpec]) -> tuple[tuple[RefSpec, ...], tuple[str, ...]]:
        # unique process names (the second occurrence in the file is the duplicate)
        seen: dict[str, _Decl] = {}
        for d in sorted(self.process_decls, key=lambda d: d.line):
            if d.name in seen:
                self.err(d.line, f"{d.path}: duplicate process '{d.name}' "
                                 f"(first declared at line {seen[d.name].line})")
            seen[d.name] = d
        processes = set(seen)

        # references declared by gup-family ops
        refs: dict[str, RefSpec] = {}
        ref_site: dict[str, _OpRec] = {}
        for rec in sorted(self.ops, key=lambda r: r.node.line):
            for f in rec.canon.fields:
                if f.type != "newref":
                    continue
                rname = rec.op.get(f.name)
                node = rec.fields[f.name]
                if rname in refs:
                    self.err(node.line, f"{node.path}: duplicate reference '{rname}' "
                                        f"(first declared at line {refs[rname].loc.line})")
                a = dict(rec.op.args)
                refs[rname] = RefSpec(
                    name=rname, owner=rec.process, page=a.get("page"), type=a.get("type"),
                    write=a.get("access") == "write", longterm=bool(a.get("longterm")),
                    fast=bool(a.get("fast")), coherent=bool(a.get("coherent")),
                    loc=Loc(self.path, node.line))
                ref_site[rname] = rec
        # keep declaration order = depth-first walk order
        ordered_refs = tuple(refs[r.op.get(f.name)] for r in self.ops for f in r.canon.fields
                             if f.type == "newref")

        signals: dict[str, int] = {}
        awaits: list[tuple[str, _Node]] = []
        put_at: dict[str, int] = {}
        put_in_thread: dict[tuple[str, str], int] = {}
        for rec in self.ops:
            for f in rec.canon.fields:
                if f.name not in rec.fields or f.type in ("newref", "newproc", "threads"):
                    continue
                node = rec.fields[f.name]
                value = rec.op.get(f.name)
                if f.type == "page" and value not in pages:
                    self.err(node.line, f"{node.path}: unknown page '{value}'"
                                        f"{_suggest(value, pages)}")
                elif f.type == "process":
                    if value not in processes:
                        self.err(node.line, f"{node.path}: unknown process '{value}'"
                                            f"{_suggest(value, processes)}")
                    if value == rec.process:
                        self.err(node.line, f"{node.path}: process '{value}' cannot "
                                            f"{rec.spec.name} for itself")
                elif f.type == "ref":
                    self.check_ref_use(rec, node, value, refs, ref_site, put_at, put_in_thread)
                elif f.type == "event":
                    if rec.canon.name == "signal":
                        if value in signals:
                            self.err(node.line, f"{node.path}: event '{value}' is already "
                                                f"signalled at line {signals[value]}")
                        signals[value] = node.line
                    else:
                        awaits.append((value, node))
        awaited = {name for name, _ in awaits}
        for name, node in awaits:
            if name not in signals:
                self.err(node.line, f"{node.path}: event '{name}' is never signalled"
                                    f"{_suggest(name, signals)}")
        for rec in self.ops:
            if rec.canon.name == "signal":
                name = rec.op.get("event")
                if name not in awaited:
                    node = rec.fields["event"]
                    self.err(node.line, f"{node.path}: event '{name}' is signalled but never "
                                        f"awaited")
        return ordered_refs, tuple(sorted(set(signals) | awaited))

    def check_ref_use(self, rec, node, rname, refs, ref_site, put_at, put_in_thread):
        if rname not in refs:
            self.err(node.line, f"{node.path}: unknown reference '{rname}'{_suggest(rname, refs)}"
                                f" (references are declared by the `as:` of a GUP operation)")
        site = ref_site[rname]
        ref = refs[rname]
        if site.thread == rec.thread and rec.index < site.index:
            self.err(node.line, f"{node.path}: reference '{rname}' is used before thread "
                                f"{rec.thread} takes it (line {site.node.line})")
        if (rname, rec.thread) in put_in_thread:
            self.err(node.line, f"{node.path}: reference '{rname}' was already put by this "
                                f"thread at line {put_in_thread[(rname, rec.thread)]}")
        if rec.canon.name == "device_write" and not ref.write:
            self.err(node.line, f"{node.path}: device_write through read-only reference "
                                f"'{rname}' (taken with access: read at line {ref.loc.line})")
        if rec.canon.name == "put":
            if rname in put_at:
                self.err(node.line, f"{node.path}: reference '{rname}' is put twice "
                                    f"(first at line {put_at[rname]})")
            put_at[rname] = node.line
            put_in_thread[(rname, rec.thread)] = node.line


# --------------------------------------------------------------------------------------
# pages


def _parse_objects(chk: _Checker, node: _Node) -> dict[str, ObjectSpec]:
    """`objects: {F: {type: memfd, state: present}}`."""
    entries = chk.mapping(node, "object name -> {type, state}")
    objects: dict[str, ObjectSpec] = {}
    types = ", ".join(OBJECT_TYPES)
    for oname, onode in entries.items():
        kline = node.key_lines[oname]
        chk.name(oname, kline, node.path, "object")
        d = chk.mapping(onode, "with keys type, state")
        chk.keys(onode, ("type", "state"))
        values = {}
        for key, choices, default in (("type", tuple(OBJECT_TYPES), None),
                                      ("state", OBJECT_STATES, "present")):
            if key not in d:
                if default is None:
                    chk.err(onode.line, f"{onode.path}: missing required key '{key}' ({types})")
                values[key] = default
                continue
            v = d[key].value if d[key].kind == "scalar" else None
            if not isinstance(v, str) or v not in choices:
                chk.err(d[key].line, f"{d[key].path}: must be one of {', '.join(choices)}, got "
                                     f"{chk.describe(d[key])}{_suggest(v, choices)}")
            values[key] = v
        if values["type"] == "memfd_hugetlb" and values["state"] != "present":
            chk.err(d["state"].line, f"{d['state'].path}: a memfd_hugetlb object is present "
                                     f"(fallocate it: the model has no hugetlb holes)")
        objects[oname] = ObjectSpec(oname, values["type"], values["state"], Loc(chk.path, kline))
    return objects


def _parse_pages(chk: _Checker, node: _Node, objects: dict) -> tuple[dict, list]:
    """The pages, and the implicit objects their `backing:` / `shared:` make."""
    entries = chk.mapping(node, "page name -> state")
    if not entries:
        chk.err(node.line, "pages: at least one page is required")
    pages: dict[str, PageSpec] = {}
    implicit: list[ObjectSpec] = []
    states = ", ".join(PAGE_STATES)
    for pname, pnode in entries.items():
        kline = node.key_lines[pname]
        chk.name(pname, kline, node.path, "page")
        if pnode.kind == "map":
            allowed = ("state", *PAGE_EXTRA_FIELDS)
            chk.keys(pnode, allowed)
            if "state" not in pnode.value:
                chk.err(pnode.line, f"{pnode.path}: missing required key 'state' ({states})")
            snode = pnode.value["state"]
        else:
            snode = pnode
        state = snode.value if snode.kind == "scalar" else None
        if not isinstance(state, str) or state not in PAGE_STATES:
            form = "" if pnode.kind == "map" else " or a mapping {state: ...}"
            chk.err(snode.line, f"{snode.path}: a page state must be one of {states}{form}, got "
                                f"{chk.describe(snode)}{_suggest(state, PAGE_STATES)}")
        extra = {}
        lines = {}
        for fname, f in PAGE_EXTRA_FIELDS.items():
            if pnode.kind == "map" and fname in pnode.value:
                extra[fname] = chk.field_value(f, pnode.value[fname], "page")
                lines[fname] = pnode.value[fname]
            else:
                extra[fname] = f.default
                lines[fname] = pnode
        kind, backing, oname, shared = (extra.get("kind", "small"), extra.get("backing", "anon"),
                                        extra.get("object"), extra.get("shared", False))
        obj = None
        if oname is not None:
            if backing != "anon":
                chk.err(lines["backing"].line, f"{lines['backing'].path}: give `object:` or "
                                               f"`backing:`, not both")
            if oname not in objects:
                chk.err(lines["object"].line, f"{lines['object'].path}: unknown object "
                                              f"'{oname}'{_suggest(oname, objects)}")
            obj = objects[oname]
        elif backing != "anon" or shared:
            # `backing:` (one object shared by the initial processes) or
            # MAP_SHARED|MAP_ANONYMOUS (one shmem object per initial process)
            how = "backing" if backing != "anon" else "shared_anon"
            otype = backing if backing != "anon" else (
                "memfd_hugetlb" if kind == "hugetlb" else "shmem")
            # a `backing:` file has data whether or not the page was faulted in; shared
            # anonymous memory holds data once written (present), zeroes before
            obj = ObjectSpec(f"{pname}@{backing}" if how == "backing" else f"{pname}@shm",
                             otype, "present" if how == "backing" or state == "present"
                             else "none", Loc(chk.path, kline), how)
            implicit.append(obj)
            oname = obj.name
            extra["object"] = oname
        if obj is not None:
            what = f"a page of {obj.type} object '{obj.name}'" if not obj.implicit else (
                f"a {backing} page" if obj.implicit == "backing" else
                "a shared anonymous page")
            if kind in ("thp", "pte_thp"):
                chk.err(lines["kind"].line, f"{lines['kind'].path}: {what} cannot be a THP "
                                            f"(the model's THPs are anonymous)")
            if obj.type == "memfd_hugetlb":
                extra["kind"] = "hugetlb"
            elif kind == "hugetlb":
                chk.err(lines["kind"].line, f"{lines['kind'].path}: {what} is not hugetlb "
                                            f"(use an object of type memfd_hugetlb)")
            if state == "zero":
                chk.err(snode.line, f"{snode.path}: the zero page is private anonymous "
                                    f"memory; {what} is none or present")
            if state == "present" and obj.state == "none":
                chk.err(snode.line, f"{snode.path}: page {pname} is present but object "
                                    f"'{obj.name}' is a hole (state none): a fault would have "
                                    f"filled it; make the object present")
        elif kind in ("pte_thp", "hugetlb") and state == "zero":
            chk.err(snode.line, f"{snode.path}: state zero is for small pages and THPs (the "
                                f"huge zero page)")
        spec = PageSpec(pname, state, Loc(chk.path, kline), tuple(extra.items()))
        pages[pname] = spec
    after_of = {}
    for pname, spec in pages.items():
        after = spec.get("after")
        if after is None:
            continue
        line = entries[pname].value["after"].line
        if after not in pages or after == pname:
            chk.err(line, f"pages.{pname}.after: '{after}' is not another page"
                          f"{_suggest(after, [p for p in pages if p != pname])}")
        if after in after_of.values():
            chk.err(line, f"pages.{pname}.after: another page already follows '{after}'")
        after_of[pname] = after
    return pages, implicit


def _parse_menu(chk: _Checker, node: _Node) -> Menu:
    entries = chk.mapping(node, "processes, references, ops")
    chk.keys(node, ("processes", "references", "ops"))
    if "ops" not in entries:
        chk.err(node.line, "menu: missing required key 'ops'")

    def count(key, default, low, high):
        if key not in entries:
            return default
        vnode = entries[key]
        v = vnode.value if vnode.kind == "scalar" else None
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
            chk.err(vnode.line, f"menu.{key} must be an integer from {low} to {high}, got "
                                f"{chk.describe(vnode)}")
        return v

    processes = count("processes", 2, 1, 4)
    references = count("references", 1, 0, 4)
    templates = []
    for item in chk.sequence(entries["ops"], "of operation templates"):
        if item.kind == "scalar" and isinstance(item.value, str):
            name, fnode = item.value, None
        elif item.kind == "map" and len(item.value) == 1:
            name, fnode = next(iter(item.value.items()))
            if fnode.kind == "scalar" and fnode.value is None:
                fnode = None
            elif fnode.kind != "map":
                chk.err(fnode.line, f"{item.path}.{name}: a template takes a mapping of fixed "
                                    f"fields (and max), got {chk.describe(fnode)}")
        else:
            chk.err(item.line, f"{item.path}: a template is an operation name or "
                               f"{{op: {{fields..., max: N}}}}, got {chk.describe(item)}")
        if name not in MENU_OPS:
            chk.err(item.line, f"{item.path}: '{name}' cannot be a menu template (menu ops: "
                               f"{', '.join(MENU_OPS)}){_suggest(name, MENU_OPS)}")
        spec = OPS[name]
        canon = OPS[spec.alias_of] if spec.alias_of else spec
        fixed = dict(spec.fixed)
        args, maxuses = [], None
        given = dict(fnode.value) if fnode is not None else {}
        for key, vnode in given.items():
            if key == "max":
                v = vnode.value if vnode.kind == "scalar" else None
                if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 8:
                    chk.err(vnode.line, f"{vnode.path}: max must be an integer from 1 to 8, "
                                        f"got {chk.describe(vnode)}")
                maxuses = v
                continue
            f = spec.field(key) or canon.field(key)
            if key in _MENU_INSTANTIATED:
                chk.err(vnode.line, f"{vnode.path}: '{key}' is chosen by the menu, a template "
                                    f"cannot fix it")
            if f is None or key in fixed:
                chk.err(vnode.line, f"{vnode.path}: unknown field '{key}' for menu template "
                                    f"'{name}'")
            fixed[key] = chk.field_value(f, vnode, name)
        for f in canon.fields:
            if f.name in _MENU_INSTANTIATED or f.name in fixed:
                continue
            f = spec.field(f.name) or f  # an alias may change a default (pin: longterm)
            if f.required:
                chk.err(item.line, f"{item.path}: menu template '{name}' needs '{f.name}'")
            fixed[f.name] = f.default
        if canon.name == "gup" and fixed.get("coherent") is None:
            fixed["coherent"] = fixed.get("type") == "pin" and bool(fixed.get("longterm"))
        args = tuple((f.name, fixed[f.name]) for f in canon.fields if f.name in fixed)
        templates.append(MenuTemplate(canon.name, name, args, maxuses, Loc(chk.path, item.line)))
    if not templates:
        chk.err(entries["ops"].line, "menu.ops: at least one template is required")
    return Menu(processes, references, tuple(templates), Loc(chk.path, node.line))


def _parse_background(chk: _Checker, node: _Node) -> tuple:
    entries = chk.mapping(node, "actor -> count or true/false")
    chk.keys(node, tuple(BACKGROUND_FIELDS))
    out = []
    for key, vnode in entries.items():
        kind, _doc = BACKGROUND_FIELDS[key]
        v = vnode.value if vnode.kind == "scalar" else None
        if kind == "bool":
            if not isinstance(v, bool):
                chk.err(vnode.line, f"{vnode.path}: expected true or false, got "
                                    f"{chk.describe(vnode)}")
        elif isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 8:
            chk.err(vnode.line, f"{vnode.path}: must be an integer from 0 to 8, got "
                                f"{chk.describe(vnode)}")
        out.append((key, v))
    return tuple(out)


# --------------------------------------------------------------------------------------
# scenario


def _top_mapping(chk: _Checker, root: _Node | None, what: str) -> dict[str, _Node]:
    if root is None:
        chk.err(1, f"empty file: expected a mapping ({what})")
    if root.kind != "map":
        chk.err(1, f"expected a mapping at the top ({what}), got {chk.describe(root)}")
    return root.value


def _name_list(chk: _Checker, node: _Node, key: str, valid, kind: str, suggest_from) -> tuple:
    items = chk.sequence(node, f"of {kind} names")
    if not items:
        chk.err(node.line, f"{key}: the list is empty")
    out: list[str] = []
    for item in items:
        name = chk.string(item, f"a {kind} name")
        if not valid(name):
            chk.err(item.line, f"{item.path}: unknown {kind} '{name}'"
                               f"{_suggest(name, suggest_from)}")
        if name in out:
            chk.err(item.line, f"{item.path}: duplicate {kind} '{name}'")
        out.append(name)
    return tuple(out)


def load_scenario_text(text: str, path: str = "<string>") -> Scenario:
    """Parse and validate a scenario given as YAML text (`path` is used in messages)."""
    root = _Composer(text, path).parse()
    p = _ScenarioParser(path)
    top = _top_mapping(p, root, "a scenario")
    p.keys(root, TOP_LEVEL_KEYS)
    for key in _REQUIRED_TOP:
        if key not in top:
            p.err(1, f"missing required key '{key}'")

    name = p.string(top["name"], "a scenario name")
    if not name.strip():
        p.err(top["name"].line, "name: must not be empty")
    description = ""
    if "description" in top:
        description = p.string(top["description"], "a string").strip()

    objects = _parse_objects(p, top["objects"]) if "objects" in top else {}
    pages, implicit_objects = _parse_pages(p, top["pages"], objects)
    policy_defs: tuple[PolicyDef, ...] = ()
    if "define_policies" in top:
        policy_defs = _parse_policy_defs(p, top["define_policies"])
    defs = {d.name: d for d in policy_defs}

    menu = _parse_menu(p, top["menu"]) if "menu" in top else None
    if "processes" not in top and menu is None:
        p.err(1, "missing required key 'processes' (or a 'menu')")
    if "processes" in top and menu is not None:
        p.err(top["menu"].line, "a scenario has either 'processes' or a 'menu', not both")
    if menu is not None:
        refs, events, processes = (), (), ()
    else:
        initial = p.parse_processes(top["processes"])
        refs, events = p.cross_check(pages)
        processes = tuple(initial) + tuple(p.forked)

    if "policies" in top:
        policies = _name_list(p, top["policies"], "policies", lambda n: policy_mod.known(n, defs),
                              "policy", _policy_names(policy_defs))
    else:
        policies = tuple(policy_mod.DEFAULT_POLICIES)
    if "properties" in top:
        properties = _name_list(p, top["properties"], "properties",
                                lambda n: n in PROPERTY_NAMES, "property", PROPERTY_NAMES)
    else:
        properties = tuple(PROPERTY_NAMES)

    expect: list[Expectation] = []
    if "expect" in top:
        enode = top["expect"]
        for pol, pnode in p.mapping(enode, "policy -> property -> holds | violated").items():
            kline = enode.key_lines[pol]
            if not policy_mod.known(pol, defs):
                p.err(kline, f"expect: unknown policy '{pol}'"
                             f"{_suggest(pol, _policy_names(policy_defs))}")
            if pol not in policies:
                p.err(kline, f"expect names policy '{pol}' which this scenario does not run "
                             f"(policies: {', '.join(policies)})")
            for prop, vnode in p.mapping(pnode, "property -> holds | violated").items():
                pline = pnode.key_lines[prop]
                if prop not in PROPERTY_NAMES:
                    p.err(pline, f"{pnode.path}: unknown property '{prop}'"
                                 f"{_suggest(prop, PROPERTY_NAMES)}")
                if prop not in properties:
                    p.err(pline, f"{pnode.path}: expects property '{prop}' which this scenario "
                                 f"does not check (properties: {', '.join(properties)})")
                verdict = vnode.value if vnode.kind == "scalar" else None
                if verdict not in VERDICTS:
                    p.err(vnode.line, f"{vnode.path}: expected holds or violated, got "
                                      f"{p.describe(vnode)}{_suggest(verdict, VERDICTS)}")
                expect.append(Expectation(pol, prop, verdict, Loc(path, pline)))

    background = _parse_background(p, top["background"]) if "background" in top else ()
    depth = p.positive_int(top["depth"], "depth") if "depth" in top else None
    max_states = p.positive_int(top["max_states"], "max_states") if "max_states" in top else None

    return Scenario(
        path=path,
        name=name,
        description=description,
        pages=tuple(pages.values()),
        processes=processes,
        refs=refs,
        events=events,
        policies=policies,
        policy_defs=policy_defs,
        properties=properties,
        expect=tuple(expect),
        depth=depth,
        max_states=max_states,
        depth_line=top["depth"].line if "depth" in top else None,
        background=background,
        menu=menu,
        loc=Loc(path, 1),
        objects=tuple(objects.values()) + tuple(implicit_objects),
        properties_given="properties" in top,
    )


def load_scenario(path: str) -> Scenario:
    """Load and validate the scenario file at `path`; raises ScenarioError on bad input."""
    return load_scenario_text(_read(path), path)


def load_policy_text(text: str, path: str = "<string>") -> tuple[PolicyDef, ...]:
    """Policy definitions from YAML text: either `define_policies: {name: def, ...}` or
    directly `{name: def, ...}`."""
    root = _Composer(text, path).parse()
    chk = _Checker(path)
    top = _top_mapping(chk, root, "define_policies: name -> {base, knobs, description}")
    if "define_policies" in top:
        chk.keys(root, ("define_policies",))
        node = top["define_policies"]
    else:
        node = root
    defs = _parse_policy_defs(chk, node)
    if not defs:
        chk.err(node.line, f"{chk.at(node)}no policies defined")
    return defs


def load_policy_file(path: str) -> tuple[PolicyDef, ...]:
    """Load the policy definitions of a `--policy-file`; raises ScenarioError on bad input."""
    return load_policy_text(_read(path), path)
