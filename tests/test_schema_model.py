"""The state schema is the one declaration of what a field means (issue 8).

A test model adds one frame-pointer field to the process record (the page of the last COW
copy each process installed) in one place, the schema, plus the step that writes it.
Canonicalisation and symmetry rename it with no other change: the reduced state count
still equals the brute-force count of orbits, and a renamed state's field still points at
a page with the same contents.  And no code outside the codec decodes PTE bits.
"""

from __future__ import annotations

import itertools
import pathlib
import re
import textwrap

import pytest

from mmcheck.engine import explorer
from support import reachable_within
from mmcheck.model import steps
from mmcheck.model.kernel import fault
from mmcheck.model.model import MMModel
from mmcheck.model.policy import resolve
from mmcheck.model.state import FRAME, SCHEMA, Field, Record
from mmcheck.scenario.loader import load_scenario_text

MENU = """
name: schema-test
pages: {X: present}
menu:
  processes: 3
  references: 0
  ops:
    - write
    - fork: {max: 2}
properties: [no-leak, refcount-sane, exclusive-sane]
"""


def extended_schema():
    proc = SCHEMA["proc"]
    fields = proc.fields + (Field("last_cow", FRAME, "the page of the last COW copy this "
                                                     "process installed (a test field)"),)
    schema = dict(SCHEMA)
    schema["proc"] = Record("proc", proc.index, fields, proc.doc)
    return schema


@pytest.fixture
def recording_model(monkeypatch):
    """wp_page_copy_install also records the copy in the new field (the only change)."""
    real = fault.wp_page_copy_install

    def install(m, s, t, op):
        r = real(m, s, t, op)
        if r is not None and r[0] in (steps.WP_PAGE_COPY.install,
                                      steps.WP_PAGE_COPY.install_unnecessary):
            oid, l = r
            pte = l[m.pv[m.t_proc[t]][op.v] + m.L.schema["pv"].offset["pte"]]
            from mmcheck.model import codec
            l[m.proc[m.t_proc[t]] + m.L.schema["proc"].offset["last_cow"]] = codec.frame(pte) + 1
        return r

    monkeypatch.setattr(steps.STEPS[steps.WP_COPY_INSTALL], "fn", install)
    sc = load_scenario_text(textwrap.dedent(MENU), "schema-test.yaml")

    def build(symmetry=True):
        return MMModel(sc, resolve("v5.11"), symmetry=symmetry, schema=extended_schema())
    return build


def test_a_new_pointer_field_is_renamed_with_no_other_change(recording_model):
    m = recording_model()
    last_cow = [m.proc[p] + m.L.schema["proc"].offset["last_cow"] for p in range(len(m.procs))]
    content = m.L.schema["frame"].offset["content"]
    states = reachable_within(m, 9)
    fields = m.L.decode
    used = [s for s in states if any(fields(s)[i] for i in last_cow)]
    assert used, "the test field was never written"
    # the canonical form renames the field with the frames it points at
    for s in used:
        s, c = fields(s), fields(m.frames.canonical(s))
        before = sorted(s[m.fr[s[i] - 1] + content] for i in last_cow if s[i])
        after = sorted(c[m.fr[c[i] - 1] + content] for i in last_cow if c[i])
        assert before == after
    # exactness: frame x process renamings, counted by brute force
    n = m.n_frames
    frame_perms = [list(p) for p in itertools.permutations(range(n))][:: max(1, 720 // 60)]
    sym = m.symmetry
    orbits = set()
    for s in states:
        imgs = {m.canonical(s)}
        for g in sym.renamings(fields(s)):
            imgs.add(m.canonical(g.apply(fields(s)).tobytes()))
        for perm in frame_perms:
            imgs.add(m.canonical(m.frames.permute(s, perm)))
        assert len(imgs) == 1, "a renamed state has another canonical form"
        orbits.add(next(iter(imgs)))
    reduced = explorer.explore(m, max_depth=9)
    assert reduced.states == len(orbits)
    # symmetry still reduces, and every property's verdict is the same without it
    plain = explorer.explore(recording_model(symmetry=False), max_depth=9)
    assert reduced.states < plain.states
    assert set(reduced.violations) == set(plain.violations)


CODEC_ONLY = [
    r">>\s*_?SHIFT", r"PTE_SHIFT", r"\bpte\s*&", r"\bpte\s*>>", r"&\s*(WRITE|DIRTY|SOFT_DIRTY|UFFD_WP|EXCLUSIVE)\b",
    r"codec\._", r"\b_KIND\b",
]


def test_no_pte_bit_decoding_outside_the_codec():
    root = pathlib.Path("mmcheck")
    offenders = []
    for path in root.rglob("*.py"):
        if path.name == "codec.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if any(re.search(p, code) for p in CODEC_ONLY):
                offenders.append(f"{path}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
