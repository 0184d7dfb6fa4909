"""Tests for mmcheck.loader: a scenario using every op, and one bad input per rule."""

from __future__ import annotations

import glob
import os
import textwrap

import pytest

from mmcheck.scenario import loader
from mmcheck.model import policy
from mmcheck.errors import ScenarioError
from mmcheck.scenario.loader import load_policy_file, load_policy_text, load_scenario, load_scenario_text
from mmcheck.scenario.ops import OPS, Field
from mmcheck.properties import NAMES
from mmcheck.scenario.spec import Expectation, Loc, PolicyDef, RefSpec

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

VALID_SCENARIO = textwrap.dedent("""\
    name: everything
    description: >
      Exercises every operation
      and every alias.
    pages:
      X: present
      Y: {state: zero}
      Z: none
    processes:
      A:
        threads:
          main:
            - write: X
            - read: Y
            - gup: {page: X, as: R1, type: pin, access: write, longterm: true}
            - signal: pinned
            - fork:
                child: B
                threads:
                  main:
                    - vmsplice: {page: X, as: pipe}
                    - fork:
                        child: C
                        program:
                          - pin: {page: Y, as: R2}
                          - device_read: R2
                          - put: R2
                    - wait: C
                    - munmap: X
                  helper:
                    - await: pinned
                    - device_read: pipe
            - device_write: R1
            - mprotect: {page: X, prot: r}
            - dontneed: Z
            - put: R1
            - wait: B
            - fork: D
            - exit
      E:
        program:
          - gup: {page: Z, as: R3, type: get, fast: true, coherent: true}
          - device_read: {ref: R3}
          - put: R3
          - pageout: Z
          - clear_refs
          - uffd_register: {page: Z, features: [event_fork]}
          - uffd_wp: Z
          - uffd_unwp: {page: Z, dontwake: true}
          - uffd_read
          - uffd_wake: Z
          - uffd_unregister: Z
          - pagemap_read: {page: Z, soft_dirty: true}
          - migrate: Z
          - mremap: {page: Z, to: Y}
          - mmap: Z
          - exit:
    define_policies:
      base-on-defined:
        base: precise-mapcount
        knobs:
          anon_exclusive: true
      precise-mapcount:
        base: v5.7
        description: >
          David's Dec 2021 proposal
        knobs: {ro_gup_unshare: mapcount}
    policies: [v5.7, page_count, precise-mapcount, base-on-defined]
    properties: [pin-coherent, no-leak]
    expect:
      v5.7: {no-leak: violated, pin-coherent: violated}
      precise-mapcount:
        no-leak: holds
    depth: 40
    max_states: 1000000
    """)

PATH = "t.yaml"
DEFAULT_EXTRA = (("kind", "small"), ("backing", "anon"), ("object", None), ("shared", False),
                 ("prot", "rw"), ("after", None))


def line_of(text: str, snippet: str) -> int:
    hits = [i for i, line in enumerate(text.splitlines(), 1) if snippet in line]
    assert len(hits) == 1, (snippet, hits)
    return hits[0]


@pytest.fixture(scope="module")
def scen():
    return load_scenario_text(VALID_SCENARIO, PATH)


def test_every_op_and_alias_is_exercised():
    written = {op.written for t in load_scenario_text(VALID_SCENARIO).threads() for op in t.program}
    assert written == set(OPS)


def test_top_level_fields(scen):
    assert scen.path == PATH
    assert scen.loc == Loc(PATH, 1)
    assert scen.name == "everything"
    assert scen.description == "Exercises every operation and every alias."
    assert [(p.name, p.state, p.loc.line, p.extra) for p in scen.pages] == [
        ("X", "present", 6, DEFAULT_EXTRA), ("Y", "zero", 7, DEFAULT_EXTRA),
        ("Z", "none", 8, DEFAULT_EXTRA)]
    assert scen.events == ("pinned",)
    assert scen.policies == ("v5.7", "page_count", "precise-mapcount", "base-on-defined")
    assert scen.properties == ("pin-coherent", "no-leak")
    assert scen.depth == 40 and scen.max_states == 1000000
    L = lambda s: line_of(VALID_SCENARIO, s)  # noqa: E731
    assert scen.expect == (
        Expectation("v5.7", "no-leak", "violated", Loc(PATH, L("v5.7: {no-leak"))),
        Expectation("v5.7", "pin-coherent", "violated", Loc(PATH, L("v5.7: {no-leak"))),
        Expectation("precise-mapcount", "no-leak", "holds", Loc(PATH, L("no-leak: holds"))),
    )
    assert scen.policy_defs == (
        PolicyDef("base-on-defined", "precise-mapcount", (("anon_exclusive", True),),
                  Loc(PATH, L("base-on-defined:")), ""),
        PolicyDef("precise-mapcount", "v5.7", (("ro_gup_unshare", "mapcount"),),
                  Loc(PATH, L("base: v5.7") - 1), "David's Dec 2021 proposal"),
    )
    defs = {d.name: d for d in scen.policy_defs}
    resolved = policy.resolve("base-on-defined", defs)
    assert resolved.ro_gup_unshare == "mapcount" and resolved.anon_exclusive is True


def test_processes(scen):
    L = lambda s: line_of(VALID_SCENARIO, s)  # noqa: E731
    got = [(p.name, p.parent, p.forked_by, p.loc.line, [t.qualname for t in p.threads])
           for p in scen.processes]
    assert got == [
        ("A", None, None, L("  A:"), ["A.main"]),
        ("E", None, None, L("  E:"), ["E.main"]),
        ("B", "A", ("A.main", 4), L("child: B") - 1, ["B.main", "B.helper"]),
        ("C", "B", ("B.main", 1), L("child: C") - 1, ["C.main"]),
        ("D", "A", ("A.main", 10), L("- fork: D"), []),
    ]
    assert [t.loc.line for t in scen.threads()] == [
        L("  A:") + 2, L("  E:") + 1, L("child: B") + 2, L("helper:"), L("child: C") + 1]
    assert scen.process("C").threads[0].name == "main"


def _prog(scen, qual):
    (t,) = [t for t in scen.threads() if t.qualname == qual]
    return [(op.kind, op.written, dict(op.args), op.loc.line) for op in t.program]


def test_programs(scen):
    L = lambda s: line_of(VALID_SCENARIO, s)  # noqa: E731
    gup = lambda page, ref, type, access="read", longterm=False, fast=False, coherent=False: dict(  # noqa: E731,E501
        page=page, **{"as": ref}, type=type, access=access, longterm=longterm, fast=fast,
        coherent=coherent)
    assert _prog(scen, "A.main") == [
        ("write", "write", {"page": "X"}, L("- write: X")),
        ("read", "read", {"page": "Y"}, L("- read: Y")),
        ("gup", "gup", gup("X", "R1", "pin", "write", True, False, True), L("as: R1")),
        ("signal", "signal", {"event": "pinned"}, L("- signal: pinned")),
        ("fork", "fork", {"child": "B", "threads": ("B.main", "B.helper")}, L("child: B") - 1),
        ("device_write", "device_write", {"ref": "R1"}, L("device_write: R1")),
        ("mprotect", "mprotect", {"page": "X", "prot": "r"}, L("mprotect:")),
        ("dontneed", "dontneed", {"page": "Z"}, L("dontneed: Z")),
        ("put", "put", {"ref": "R1"}, L("put: R1")),
        ("wait", "wait", {"process": "B"}, L("wait: B")),
        ("fork", "fork", {"child": "D", "threads": ()}, L("fork: D")),
        ("exit", "exit", {}, L("        - exit")),
    ]
    assert _prog(scen, "B.main") == [
        ("gup", "vmsplice", gup("X", "pipe", "get", fast=True), L("vmsplice:")),
        ("fork", "fork", {"child": "C", "threads": ("C.main",)}, L("child: C") - 1),
        ("wait", "wait", {"process": "C"}, L("wait: C")),
        ("munmap", "munmap", {"page": "X"}, L("munmap: X")),
    ]
    assert _prog(scen, "B.helper") == [
        ("await", "await", {"event": "pinned"}, L("await: pinned")),
        ("device_read", "device_read", {"ref": "pipe"}, L("device_read: pipe")),
    ]
    assert _prog(scen, "C.main") == [
        ("gup", "pin", gup("Y", "R2", "pin", "read", True, False, True), L("as: R2")),
        ("device_read", "device_read", {"ref": "R2"}, L("device_read: R2")),
        ("put", "put", {"ref": "R2"}, L("put: R2")),
    ]
    assert _prog(scen, "E.main") == [
        ("gup", "gup", gup("Z", "R3", "get", fast=True, coherent=True), L("as: R3")),
        ("device_read", "device_read", {"ref": "R3"}, L("{ref: R3}")),
        ("put", "put", {"ref": "R3"}, L("put: R3")),
        ("pageout", "pageout", {"page": "Z"}, L("pageout: Z")),
        ("clear_refs", "clear_refs", {}, L("- clear_refs")),
        ("uffd_register", "uffd_register",
         {"page": "Z", "features": ("event_fork",), "result": None}, L("uffd_register:")),
        ("uffd_wp", "uffd_wp", {"page": "Z", "result": None}, L("uffd_wp: Z")),
        ("uffd_unwp", "uffd_unwp", {"page": "Z", "dontwake": True, "result": None},
         L("uffd_unwp:")),
        ("uffd_read", "uffd_read", {"process": None}, L("- uffd_read")),
        ("uffd_wake", "uffd_wake", {"page": "Z"}, L("uffd_wake: Z")),
        ("uffd_unregister", "uffd_unregister", {"page": "Z", "result": None},
         L("uffd_unregister: Z")),
        ("pagemap_read", "pagemap_read",
         {"page": "Z", "soft_dirty": True, "uffd_wp": None, "present": None, "swapped": None},
         L("pagemap_read:")),
        ("migrate", "migrate", {"page": "Z", "result": None}, L("migrate: Z")),
        ("mremap", "mremap", {"page": "Z", "to": "Y", "result": None}, L("mremap:")),
        ("mmap", "mmap", {"page": "Z", "prot": "rw", "result": None}, L("mmap: Z")),
        ("exit", "exit", {}, L("- exit:")),
    ]
    # args are in the canonical op's field order
    for t in scen.threads():
        for op in t.program:
            assert [k for k, _ in op.args] == [f.name for f in OPS[op.kind].fields]


def test_refs(scen):
    L = lambda s: line_of(VALID_SCENARIO, s)  # noqa: E731
    assert scen.refs == (
        RefSpec("R1", "A", "X", "pin", True, True, False, True, Loc(PATH, L("as: R1"))),
        RefSpec("pipe", "B", "X", "get", False, False, True, False, Loc(PATH, L("as: pipe"))),
        RefSpec("R2", "C", "Y", "pin", False, True, False, True, Loc(PATH, L("as: R2"))),
        RefSpec("R3", "E", "Z", "get", False, False, True, True, Loc(PATH, L("as: R3"))),
    )


def test_defaults():
    s = load_scenario_text("name: n\npages: {X: none}\nprocesses: {A: {program: [exit]}}\n")
    assert s.policies == policy.DEFAULT_POLICIES
    assert s.properties == NAMES
    assert s.expect == () and s.policy_defs == () and s.refs == () and s.events == ()
    assert s.depth is None and s.max_states is None and s.description == ""
    assert s.path == "<string>" and s.loc == Loc("<string>", 1)


def test_pin_longterm_false_is_not_coherent():
    s = load_scenario_text(textwrap.dedent("""\
        name: n
        pages: {X: present}
        processes:
          A:
            program:
              - pin: {page: X, as: R, longterm: false}
              - gup: {page: X, as: S, type: pin, longterm: true, coherent: false}
        """))
    assert [(r.longterm, r.coherent) for r in s.refs] == [(False, False), (True, False)]


def test_yaml_merge_keys_and_anchors():
    s = load_scenario_text(textwrap.dedent("""\
        name: n
        pages: {X: present}
        processes:
          A:
            program:
              - gup: &args {page: X, as: R, type: pin}
              - gup: {<<: *args, as: S, access: write}
        """))
    assert [(r.name, r.type, r.write) for r in s.refs] == [("R", "pin", False), ("S", "pin", True)]


def test_page_extra_fields(monkeypatch):
    monkeypatch.setattr(loader, "PAGE_EXTRA_FIELDS", {"huge": Field("huge", "bool", default=False)})
    s = load_scenario_text(textwrap.dedent("""\
        name: n
        pages:
          X: {state: present, huge: true}
          Y: zero
        processes: {A: {program: [exit]}}
        """))
    assert [p.extra for p in s.pages] == [(("huge", True),), (("huge", False),)]
    assert s.pages[0].get("huge") is True


def test_load_from_file(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(VALID_SCENARIO)
    s = load_scenario(str(f))
    assert s.path == str(f) and s.loc == Loc(str(f), 1)
    assert s.refs[0].loc.file == str(f)


def test_unreadable_files(tmp_path):
    missing = str(tmp_path / "missing.yaml")
    with pytest.raises(ScenarioError) as e:
        load_scenario(missing)
    assert e.value.line is None and str(e.value).startswith(f"{missing}: cannot read file")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"name: n\npages: {X: \xff}\n")
    with pytest.raises(ScenarioError) as e:
        load_scenario(str(bad))
    assert e.value.line == 2 and "UTF-8" in e.value.message


# ---------------------------------------------------------------------------------------
# bad inputs: (yaml, expected line, message part).  Lines marked `#<` are the expected line.

HEAD = "name: n\npages: {X: present, Y: none}\n"


def proc(body: str) -> str:
    """HEAD + one process A whose main thread runs `body` (a YAML list, 6-space indented)."""
    return HEAD + "processes:\n  A:\n    threads:\n      main:\n" + textwrap.indent(
        textwrap.dedent(body), "        ")


BAD = [
    # YAML syntax and document shape
    ("yaml-syntax", "name: n\npages: {X: present\nprocesses: {}\n", 3, "invalid YAML:"),
    ("yaml-bad-indent", "name: n\npages:\n  X: present\n Y: none\n", 4, "invalid YAML:"),
    ("yaml-tab", "name: n\npages:\n\tX: present\n", 3, "invalid YAML:"),
    ("yaml-two-docs", "name: n\n---\nname: m\n", 2, "invalid YAML: "),
    ("yaml-python-tag", HEAD + "processes: !!python/object:os.system {}\n", 3,
     "unsupported YAML tag"),
    ("yaml-python-scalar", "name: !!python/name:os.system n\n", 1,
     "explicit YAML tags are not allowed (!!python/name:os.system)"),
    ("yaml-nonprintable", "name: n\npages: {X: \x07}\n", 2, "invalid YAML: "),
    ("empty-file", "", 1, "empty file"),
    ("comments-only", "# nothing\n\n", 1, "empty file"),
    ("top-list", "\n- name: n\n", 1, "expected a mapping at the top"),
    ("top-scalar", "\n\nhello\n", 1, "expected a mapping at the top"),
    ("duplicate-key", "name: n\npages:\n  X: present\n  X: none #<\n", None,
     "pages: duplicate key 'X' (first at line 3)"),
    ("duplicate-top-key", HEAD + "name: m #<\n", None, "duplicate key 'name'"),
    ("non-string-key", HEAD + "processes:\n  A: {program: []}\nexpect:\n  5.9: {no-leak: holds} #<\n",
     None, "expect: key 5.9 is not a string; quote it: '5.9'"),
    ("recursive-alias", HEAD + "processes: &a\n  A: *a #<\n", None, "recursive YAML alias"),
    # top level
    ("unknown-top-key", HEAD + "processes: {A: {program: []}}\nnmae: x #<\n", None,
     "unknown top-level key 'nmae' (did you mean 'name'?)"),
    ("missing-pages", "name: n\nprocesses: {A: {program: []}}\n", 1,
     "missing required key 'pages'"),
    ("missing-processes", HEAD, 1, "missing required key 'processes'"),
    ("missing-name", "pages: {X: none}\nprocesses: {A: {program: []}}\n", 1,
     "missing required key 'name'"),
    ("name-not-string", "name: 5 #<\npages: {X: none}\nprocesses: {A: {program: []}}\n", None,
     "name: expected a scenario name, got 5; quote it: '5'"),
    ("description-not-string", HEAD + "processes: {A: {program: []}}\ndescription: [a] #<\n",
     None, "description: expected a string, got a list"),
    # pages
    ("no-pages", "name: n\npages: {} #<\nprocesses: {A: {program: []}}\n", None,
     "pages: at least one page is required"),
    ("pages-not-mapping", "name: n\npages: [X] #<\nprocesses: {A: {program: []}}\n", None,
     "pages: expected a mapping"),
    ("bad-page-state", "name: n\npages:\n  X: presnt #<\nprocesses: {A: {program: []}}\n", None,
     "pages.X: a page state must be one of none, zero, present or a mapping {state: ...}, "
     "got 'presnt' (did you mean 'present'?)"),
    ("bad-page-state-long", "name: n\npages:\n  X:\n    state: zer0 #<\n"
     "processes: {A: {program: []}}\n", None, "pages.X.state: a page state must be one of"),
    ("page-unknown-key", "name: n\npages:\n  X: {state: none,\n      sate: zero} #<\n"
     "processes: {A: {program: []}}\n", None,
     "pages.X: unknown key 'sate' (did you mean 'state'?)"),
    ("page-missing-state", "name: n\npages:\n  X: {} #<\nprocesses: {A: {program: []}}\n",
     None, "pages.X: missing required key 'state'"),
    ("page-bad-name", "name: n\npages:\n  1X: none #<\nprocesses: {A: {program: []}}\n", None,
     "pages: invalid page name '1X'"),
    # processes and threads
    ("no-processes", HEAD + "processes: {} #<\n", None, "processes: at least one process"),
    ("process-unknown-key", HEAD + "processes:\n  A:\n    threds: {main: []} #<\n", None,
     "processes.A: unknown key 'threds' (did you mean 'threads'?)"),
    ("process-both-forms", HEAD + "processes:\n  A:\n    threads: {main: []}\n    program: [] #<\n",
     None, "processes.A: give either `threads:` or `program:`, not both"),
    ("process-no-threads", HEAD + "processes:\n  A: {} #<\n", None,
     "process 'A' needs `threads:`"),
    ("process-empty-threads", HEAD + "processes:\n  A: {threads: {}} #<\n", None,
     "processes.A.threads: at least one thread is required"),
    ("process-list", HEAD + "processes:\n  A: [exit] #<\n", None,
     "processes.A: expected a mapping"),
    ("process-bad-name", HEAD + "processes:\n  A.b: {program: []} #<\n", None,
     "processes: invalid process name 'A.b'"),
    ("thread-duplicate", HEAD + "processes:\n  A:\n    threads:\n      main: []\n      main: [] #<\n",
     None, "processes.A.threads: duplicate key 'main'"),
    ("thread-bad-name", HEAD + "processes:\n  A:\n    threads:\n      -x: [] #<\n", None,
     "processes.A.threads: invalid thread name '-x'"),
    ("program-not-list", HEAD + "processes:\n  A:\n    program: write #<\n", None,
     "processes.A.program: expected a list (of operations), got 'write'"),
    ("process-duplicate-fork", HEAD + "processes:\n  A:\n    program:\n      - fork: A #<\n", None,
     "processes.A.program[0].fork: duplicate process 'A' (first declared at line 4)"),
    ("process-duplicate-later", HEAD + "processes:\n  A:\n    program: [{fork: E}]\n"
     "  E: {program: []} #<\n", None, "processes: duplicate process 'E' (first declared at line 5)"),
    ("process-duplicate-nested", proc("""\
        - fork:
            child: B
            program:
              - fork: {child: B} #<
        """), None, "duplicate process 'B'"),
    # ops
    ("unknown-op", proc("""\
        - write: X
        - read: X
        - wirte: X #<
        """), None, "processes.A.threads.main[2]: unknown operation 'wirte' (did you mean 'write'?)"),
    ("unknown-bare-op", proc("- exti #<\n"), None,
     "processes.A.threads.main[0]: unknown operation 'exti' (did you mean 'exit'?)"),
    ("op-needs-value", proc("- write #<\n"), None, "processes.A.threads.main[0]: 'write' needs a value"),
    ("op-needs-value-null", proc("- write: #<\n"), None, "'write' needs a value"),
    ("op-no-short-form", proc("- mprotect: X #<\n"), None,
     "processes.A.threads.main[0].mprotect: 'mprotect' has no short form"),
    ("alias-no-short-form", proc("- vmsplice: X #<\n"), None, "'vmsplice' has no short form"),
    ("bare-op-with-value", proc("- exit: 3 #<\n"), None, "'exit' takes no value"),
    ("op-not-an-op", proc("- 3 #<\n"), None, "processes.A.threads.main[0]: expected an operation"),
    ("op-list-value", proc("- write: [X] #<\n"), None, "got a list"),
    ("op-empty-mapping", proc("- {} #<\n"), None, "empty operation"),
    ("op-two-keys", proc("""\
        - fork: #<
          child: B
        """), None, "an operation has exactly one key, found 'fork', 'child' "
                    "(indent the fields of 'fork' under it?)"),
    ("op-unknown-field", proc("""\
        - gup:
            page: X
            as: R
            type: pin
            acess: write #<
        """), None, "processes.A.threads.main[0].gup: unknown field 'acess' for 'gup' "
                    "(did you mean 'access'?)"),
    ("op-missing-field", proc("- gup: {page: X, as: R} #<\n"), None,
     "processes.A.threads.main[0].gup: 'gup' is missing required field 'type'"),
    ("op-missing-field-block", proc("""\
        - mprotect:
            page: X #<
        """), None, "'mprotect' is missing required field 'prot'"),
    ("op-bool-type", proc("""\
        - gup:
            page: X
            as: R
            type: pin
            longterm: 1 #<
        """), None, "processes.A.threads.main[0].gup.longterm: expected true or false, got 1"),
    ("op-bool-string", proc("- gup: {page: X, as: R, type: pin, fast: 'true'} #<\n"), None,
     "gup.fast: expected true or false, got 'true'"),
    ("op-choice", proc("- gup: {page: X, as: R, type: pinn} #<\n"), None,
     "processes.A.threads.main[0].gup.type: must be one of get, pin, got 'pinn' "
     "(did you mean 'pin'?)"),
    ("op-choice-prot", proc("- mprotect: {page: X, prot: rwx} #<\n"), None,
     "mprotect.prot: must be one of r, rw, got 'rwx'"),
    ("alias-fixed-field", proc("""\
        - vmsplice:
            page: X
            as: p
            type: pin #<
        """), None, "processes.A.threads.main[0].vmsplice: 'vmsplice' always has type: get "
                    "(it is an alias of 'gup'); remove 'type'"),
    ("alias-fixed-bool", proc("- vmsplice: {page: X, as: p, fast: false} #<\n"), None,
     "'vmsplice' always has fast: true"),
    ("pin-fixed-type", proc("- pin: {page: X, as: p, type: get} #<\n"), None,
     "'pin' always has type: pin"),
    ("op-page-not-name", proc("- write: {page: [X]} #<\n"), None,
     "processes.A.threads.main[0].write.page: expected a page name, got a list"),
    ("op-bad-ref-name", proc("- gup: {page: X, as: 'a b', type: get} #<\n"), None,
     "gup.as: invalid reference name 'a b'"),
    ("op-after-exit", proc("""\
        - exit
        - write: X #<
        """), None, "processes.A.threads.main[1]: unreachable: thread A.main already exited "
                    "at line 7"),
    # forks
    ("fork-both-forms", proc("""\
        - fork:
            child: B
            threads: {main: []}
            program: [] #<
        """), None, "fork: give either `threads:` or `program:`, not both"),
    ("fork-unknown-field", proc("""\
        - fork:
            child: B
            thread: {main: []} #<
        """), None, "unknown field 'thread' for 'fork' (did you mean 'threads'?)"),
    ("fork-missing-child", proc("- fork: {program: [exit]} #<\n"), None,
     "'fork' is missing required field 'child'"),
    ("fork-threads-not-mapping", proc("- fork: {child: B, threads: [exit]} #<\n"), None,
     "fork.threads: expected a mapping (thread name -> list of operations), got a list"),
    ("fork-nested-bad-op", proc("""\
        - fork:
            child: B
            threads:
              worker:
                - fork:
                    child: C
                    program:
                      - red: X #<
        """), None, "processes.A.threads.main[0].fork.threads.worker[0].fork.program[0]: "
                    "unknown operation 'red' (did you mean 'read'?)"),
    # names and references
    ("unknown-page", proc("- write: W #<\n"), None,
     "processes.A.threads.main[0].write: unknown page 'W'"),
    ("unknown-page-suggest", proc("- gup: {page: YY, as: R, type: get} #<\n"), None,
     "gup.page: unknown page 'YY' (did you mean 'Y'?)"),
    ("unknown-ref", proc("""\
        - gup: {page: X, as: pipe, type: get}
        - put: pip #<
        """), None, "processes.A.threads.main[1].put: unknown reference 'pip' (did you mean 'pipe'?)"),
    ("unknown-ref-device", proc("- device_read: {ref: R} #<\n"), None,
     "device_read.ref: unknown reference 'R'"),
    ("duplicate-ref", proc("""\
        - gup: {page: X, as: R, type: get}
        - pin: {page: Y, as: R} #<
        """), None, "processes.A.threads.main[1].pin.as: duplicate reference 'R' "
                    "(first declared at line 7)"),
    ("duplicate-ref-other-process", HEAD + "processes:\n  A:\n    program:\n"
     "      - gup: {page: X, as: R, type: get}\n  B:\n    program:\n"
     "      - gup: {page: X, as: R, type: get} #<\n", None, "duplicate reference 'R'"),
    ("unknown-process", proc("- wait: Q #<\n"), None,
     "processes.A.threads.main[0].wait: unknown process 'Q'"),
    ("wait-self", proc("- wait: A #<\n"), None, "process 'A' cannot wait for itself"),
    ("wait-self-child", proc("""\
        - fork:
            child: B
            program:
              - wait: B #<
        """), None, "process 'B' cannot wait for itself"),
    ("ref-before-gup", proc("""\
        - put: R #<
        - gup: {page: X, as: R, type: get}
        """), None, "processes.A.threads.main[0].put: reference 'R' is used before thread A.main "
                    "takes it (line 8)"),
    ("device-read-before-gup", proc("""\
        - device_read: R #<
        - pin: {page: X, as: R}
        """), None, "reference 'R' is used before thread A.main takes it"),
    ("put-twice", proc("""\
        - gup: {page: X, as: R, type: get}
        - fork:
            child: B
            program: [{put: R}]
        - put: R #<
        """), None, "processes.A.threads.main[2].put: reference 'R' is put twice (first at line 10)"),
    ("use-after-put", proc("""\
        - pin: {page: X, as: R, access: write}
        - put: R
        - device_write: R #<
        """), None, "reference 'R' was already put by this thread at line 8"),
    ("device-write-read-only", proc("""\
        - vmsplice: {page: X, as: pipe}
        - device_write: pipe #<
        """), None, "processes.A.threads.main[1].device_write: device_write through read-only "
                    "reference 'pipe'"),
    # events
    ("await-never-signalled", proc("""\
        - signal: ready
        - await: raedy #<
        """), None, "processes.A.threads.main[1].await: event 'raedy' is never signalled "
                    "(did you mean 'ready'?)"),
    ("signal-never-awaited", proc("- signal: go #<\n"), None,
     "processes.A.threads.main[0].signal: event 'go' is signalled but never awaited"),
    ("signal-twice", proc("""\
        - signal: go
        - await: go
        - signal: go #<
        """), None, "event 'go' is already signalled at line 7"),
    ("event-bad-name", proc("- signal: 'a b' #<\n"), None, "invalid event name 'a b'"),
    # policies
    ("unknown-policy", HEAD + "processes: {A: {program: []}}\npolicies: [v5.7, v5.10] #<\n",
     None, "policies[1]: unknown policy 'v5.10' (did you mean 'v5.19'?)"),
    ("policy-not-string", HEAD + "processes: {A: {program: []}}\npolicies:\n  - v5.7\n  - 5.9 #<\n",
     None, "policies[1]: expected a policy name, got 5.9; quote it: '5.9'"),
    ("policy-duplicate", HEAD + "processes: {A: {program: []}}\npolicies:\n  - v5.7\n  - v5.7 #<\n",
     None, "policies[1]: duplicate policy 'v5.7'"),
    ("policies-empty", HEAD + "processes: {A: {program: []}}\npolicies: [] #<\n", None,
     "policies: the list is empty"),
    ("policies-not-list", HEAD + "processes: {A: {program: []}}\npolicies: v5.7 #<\n", None,
     "policies: expected a list (of policy names), got 'v5.7'"),
    ("expect-unknown-policy", HEAD + "processes: {A: {program: []}}\nexpect:\n"
     "  v5.77: {no-leak: holds} #<\n", None, "expect: unknown policy 'v5.77' (did you mean 'v5.7'?)"),
    ("expect-policy-not-run", HEAD + "processes: {A: {program: []}}\npolicies: [v5.7, v5.9]\n"
     "expect:\n  v5.7: {no-leak: holds}\n  v5.8: {no-leak: holds} #<\n", None,
     "expect names policy 'v5.8' which this scenario does not run"),
    ("define-unknown-base", HEAD + "processes: {A: {program: []}}\ndefine_policies:\n"
     "  mine:\n    base: v5.70 #<\n", None,
     "define_policies.mine.base: unknown policy 'v5.70' (did you mean 'v5.7'?)"),
    ("define-missing-base", HEAD + "processes: {A: {program: []}}\ndefine_policies:\n"
     "  mine:\n    knobs: {anon_exclusive: true} #<\n", None,
     "define_policies.mine: missing required key 'base'"),
    ("define-cycle", HEAD + "processes: {A: {program: []}}\ndefine_policies:\n"
     "  a: {base: b} #<\n  b: {base: c}\n  c: {base: a}\n", None,
     "define_policies.a.base: policies build on each other in a cycle: a -> b -> c -> a"),
    ("define-self-cycle", HEAD + "processes: {A: {program: []}}\ndefine_policies:\n"
     "  a: {base: a} #<\n", None, "cycle: a -> a"),
    ("define-shadows-preset", HEAD + "processes: {A: {program: []}}\ndefine_policies:\n"
     "  v5.9: {base: v5.7} #<\n", None,
     "define_policies: 'v5.9' is a built-in policy; a defined policy may not shadow it"),
    ("define-shadows-alias", HEAD + "processes: {A: {program: []}}\ndefine_policies:\n"
     "  mapcount: {base: v5.7} #<\n", None, "'mapcount' is a built-in policy"),
    ("define-unknown-key", HEAD + "processes: {A: {program: []}}\ndefine_policies:\n"
     "  mine:\n    base: v5.7\n    knbos: {} #<\n", None,
     "define_policies.mine: unknown key 'knbos' (did you mean 'knobs'?)"),
    ("define-unknown-knob", HEAD + "processes: {A: {program: []}}\ndefine_policies:\n"
     "  mine:\n    base: v5.7\n    knobs:\n      wp_resue: page_count #<\n", None,
     "define_policies.mine.knobs: unknown knob 'wp_resue'"),
    ("define-bad-knob-value", HEAD + "processes: {A: {program: []}}\ndefine_policies:\n"
     "  mine:\n    base: v5.7\n    knobs:\n      wp_reuse:\n        pagecount #<\n", None,
     "define_policies.mine.knobs.wp_reuse: knob 'wp_reuse' cannot be 'pagecount' "
     "(allowed: mapcount, page_count, page_count_drain)"),
    ("define-bool-knob-as-string", HEAD + "processes: {A: {program: []}}\ndefine_policies:\n"
     "  mine: {base: v5.7, knobs: {anon_exclusive: 'true'}} #<\n", None,
     "knob 'anon_exclusive' cannot be 'true'"),
    ("define-knobs-not-mapping", HEAD + "processes: {A: {program: []}}\ndefine_policies:\n"
     "  mine: {base: v5.7, knobs: [x]} #<\n", None,
     "define_policies.mine.knobs: expected a mapping (knob -> value), got a list"),
    # properties and expectations
    ("unknown-property", HEAD + "processes: {A: {program: []}}\nproperties:\n  - no-leak\n"
     "  - no-lek #<\n", None, "properties[1]: unknown property 'no-lek'"),
    ("expect-unknown-property", HEAD + "processes: {A: {program: []}}\nexpect:\n"
     "  v5.7:\n    no-leak: holds\n    pin-coherant: holds #<\n", None,
     "expect.v5.7: unknown property 'pin-coherant' (did you mean 'pin-coherent'?)"),
    ("expect-bad-verdict", HEAD + "processes: {A: {program: []}}\nexpect:\n"
     "  v5.7:\n    no-leak: violate #<\n", None,
     "expect.v5.7.no-leak: expected holds or violated, got 'violate' (did you mean 'violated'?)"),
    ("expect-bool-verdict", HEAD + "processes: {A: {program: []}}\nexpect:\n"
     "  v5.7: {no-leak: true} #<\n", None, "expected holds or violated, got true"),
    ("expect-property-not-checked", HEAD + "processes: {A: {program: []}}\n"
     "properties: [no-leak]\nexpect:\n  v5.7: {pin-coherent: holds} #<\n", None,
     "expect.v5.7: expects property 'pin-coherent' which this scenario does not check"),
    ("expect-not-mapping", HEAD + "processes: {A: {program: []}}\nexpect: [v5.7] #<\n", None,
     "expect: expected a mapping"),
    # bounds
    ("depth-zero", HEAD + "processes: {A: {program: []}}\ndepth: 0 #<\n", None,
     "depth must be an integer >= 1"),
    ("depth-bool", HEAD + "processes: {A: {program: []}}\ndepth: true #<\n", None,
     "depth must be an integer >= 1, got true"),
    ("depth-string", HEAD + "processes: {A: {program: []}}\ndepth: '10' #<\n", None,
     "depth must be an integer >= 1, got '10'"),
    ("depth-float", HEAD + "processes: {A: {program: []}}\ndepth: 1.5 #<\n", None,
     "depth must be an integer >= 1"),
    ("max-states-negative", HEAD + "processes: {A: {program: []}}\nmax_states: -1 #<\n", None,
     "max_states must be an integer >= 1, got -1"),
]


@pytest.mark.parametrize("text,line,part", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_input(text, line, part):
    if line is None:
        line = line_of(text, "#<")
    with pytest.raises(ScenarioError) as e:
        load_scenario_text(text, "bad.yaml")
    err = e.value
    assert part in err.message
    assert (err.file, err.line) == ("bad.yaml", line), str(err)
    assert str(err) == f"bad.yaml:{line}: {err.message}"
    assert "\n" not in str(err)


def test_bad_cases_have_unique_ids():
    ids = [c[0] for c in BAD]
    assert len(ids) == len(set(ids))


def test_page_extra_field_validated(monkeypatch):
    monkeypatch.setattr(loader, "PAGE_EXTRA_FIELDS", {"huge": Field("huge", "bool", default=False)})
    with pytest.raises(ScenarioError) as e:
        load_scenario_text("name: n\npages:\n  X: {state: none, huge: 1}\n"
                           "processes: {A: {program: []}}\n")
    assert e.value.line == 3 and "pages.X.huge: expected true or false, got 1" in e.value.message


# ---------------------------------------------------------------------------------------
# policy files

POLICY_TEXT = textwrap.dedent("""\
    define_policies:
      precise-mapcount:
        base: v5.7
        knobs: {ro_gup_unshare: mapcount}
      stacked:
        base: precise-mapcount
        description: builds on the one above
    """)


def test_policy_file_both_forms(tmp_path):
    expected = (
        PolicyDef("precise-mapcount", "v5.7", (("ro_gup_unshare", "mapcount"),), Loc("p", 2)),
        PolicyDef("stacked", "precise-mapcount", (), Loc("p", 5), "builds on the one above"),
    )
    assert load_policy_text(POLICY_TEXT, "p") == expected
    bare = textwrap.dedent("".join(POLICY_TEXT.splitlines(True)[1:]))
    got = load_policy_text(bare, "p")
    assert got == tuple(PolicyDef(d.name, d.base, d.knobs, Loc("p", d.loc.line - 1),
                                  d.description) for d in expected)
    f = tmp_path / "pol.yaml"
    f.write_text(POLICY_TEXT)
    assert [d.name for d in load_policy_file(str(f))] == ["precise-mapcount", "stacked"]
    assert load_policy_file(str(f))[0].loc == Loc(str(f), 2)


BAD_POLICY = [
    ("empty", "", 1, "empty file"),
    ("list", "- a\n", 1, "expected a mapping at the top"),
    ("no-defs", "define_policies: {} #<\n", None, "define_policies: no policies defined"),
    ("extra-key", "define_policies:\n  a: {base: v5.7}\npolicies: [a] #<\n", None,
     "unknown top-level key 'policies'"),
    ("shadow", "v5.7: {base: v5.9} #<\n", None, "'v5.7' is a built-in policy"),
    ("bad-knob", "define_policies:\n  a:\n    base: v5.7\n    knobs: {fork_pinned: copy} #<\n",
     None, "define_policies.a.knobs.fork_pinned: knob 'fork_pinned' cannot be 'copy'"),
    ("cycle", "a: {base: b} #<\nb: {base: a}\n", None, "a.base: policies build on each other"),
    ("unknown-base", "a:\n  base: nope #<\n", None, "a.base: unknown policy 'nope'"),
    ("bad-yaml", "a: {base: v5.7\n", 2, "invalid YAML:"),
    ("not-a-def", "a: v5.7 #<\n", None, "a: expected a mapping"),
]


@pytest.mark.parametrize("text,line,part", [c[1:] for c in BAD_POLICY],
                         ids=[c[0] for c in BAD_POLICY])
def test_bad_policy_file(text, line, part):
    if line is None:
        line = line_of(text, "#<")
    with pytest.raises(ScenarioError) as e:
        load_policy_text(text, "pol.yaml")
    assert part in e.value.message
    assert e.value.line == line, str(e.value)
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------------------------------
# the repository's own scenarios

SCENARIO_FILES = sorted(glob.glob(os.path.join(REPO, "scenarios", "**", "*.yaml"), recursive=True))


@pytest.mark.skipif(not SCENARIO_FILES, reason="no scenarios/**/*.yaml in the repository")
@pytest.mark.parametrize("path", SCENARIO_FILES,
                         ids=[os.path.relpath(p, REPO) for p in SCENARIO_FILES])
def test_repo_scenarios_load(path):
    s = load_scenario(path)
    assert s.name and (s.processes or s.menu) and s.pages
