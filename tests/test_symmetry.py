"""Symmetry reduction of menu scenarios (mmcheck.symmetry): interchangeable processes and
pages.

The renamings are re-implemented here independently, through names (a value "P1:X/e0"
becomes "P2:Y/e0" by renaming the strings, a reference slot "P1.gup2.X" likewise, an
instantiation by its page, reference and child names), and checked against the model:
  - soundness: every allowed renaming commutes with successors() and preserves every
    property's verdict and is_final (so exploring one state per class loses nothing);
  - exactness: the reduced search stores exactly one state per brute-force orbit;
  - verdicts, shortest-counterexample depths and replayable traces are the same with
    and without the reduction.
"""

from __future__ import annotations

import itertools
import re
import textwrap

import pytest

from mmcheck.engine import explorer
from support import reachable_within
from mmcheck.model.kernel.common import FORKING, UNBORN
from mmcheck.model.state import (FRAMES, OBJECT_REC, PROCESS, PV, REFERENCE, SLOTS, THREAD_REC,
                                 UFFD_REC, WT_REC)
from mmcheck.model.steps import FORK_COPY, RECLAIM_UNMAP, TRY_TO_UNMAP
from mmcheck.scenario.loader import load_scenario, load_scenario_text
from mmcheck.model.model import MMModel
from mmcheck.model.policy import resolve
from mmcheck.report.runner import run_policy

PROC_SIZE, PV_SIZE, TH_SIZE = PROCESS.size, PV.size, THREAD_REC.size
REF_SIZE, UFFD_SIZE, WT_SIZE = REFERENCE.size, UFFD_REC.size, WT_REC.size
(PV_IDEAL, PV_LEGIT), (TH_PC,) = PV.offsets("ideal", "legit"), THREAD_REC.offsets("pc")
(FR_CONTENT,), (SL_CONTENT,) = FRAMES.offsets("content"), SLOTS.offsets("content")
OB_IDEAL, OB_LEGIT = OBJECT_REC.offsets("ideal", "legit")
from mmcheck.report.trace import check_trace

PROPS = "[no-leak, pin-coherent, no-lost-write, refcount-sane, exclusive-sane]"


def menu(pages, body, name="sym", extra="", props=PROPS):
    text = (f"name: {name}\npages: {pages}\nmenu:\n"
            + textwrap.indent(textwrap.dedent(body).strip(), "  ")
            + f"\nproperties: {props}\n" + extra)
    return load_scenario_text(text, f"{name}.yaml")


# three processes (two interchangeable children), one page; swap included
THREE_PROCS = ("{X: present}", """\
    processes: 3
    references: 1
    ops:
      - write
      - fork: {max: 2}
      - gup: {type: get, access: read}
      - put
      - munmap
      - pageout
    """)
# two processes, three pages: X and Z interchangeable (small), Y a THP
PAGES = ("{X: present, Y: {state: present, kind: thp}, Z: present}", """\
    processes: 2
    references: 1
    ops:
      - write
      - fork: {max: 1}
      - gup: {type: pin, access: read, longterm: true}
      - put
      - munmap
      - pageout
    """)
# both at once (pages start unmapped, so forks are short), with device writes (their
# values name references)
BOTH = ("{X: none, Y: none}", """\
    processes: 3
    references: 1
    ops:
      - write
      - fork: {max: 2}
      - gup: {type: pin, access: write, longterm: true}
      - device_write
      - put
    """)
# shared memory: a MAP_SHARED|MAP_ANONYMOUS page (one shmem object, all processes) next to
# two interchangeable private pages; the object's ideal memory holds values that name
# processes, and a shared page is never renamed (it is tied to its object)
SHARED = ("{S: {state: none, shared: true}, X: none, Z: none}", """\
    processes: 3
    references: 1
    ops:
      - write
      - fork: {max: 2}
      - gup: {type: pin, access: write, longterm: true}
      - device_write
      - pageout
    """)
# write tracking: two interchangeable pages under uffd-wp and soft-dirty (the uffd context
# and the per-page tracker ghost move with their process and page, once the fork is done;
# the process renamings are covered by the other cases), a background monitor resolving
# faults
TRACKING = ("{X: present, Z: present}", """\
    processes: 2
    references: 1
    ops:
      - uffd_register: {max: 1}
      - uffd_wp
      - write
      - fork: {max: 1}
      - pin: {access: write, max: 1}
      - clear_refs: {max: 1}
      - dontneed
    """, "background:\n  uffd_monitor: 1\n",
    "[wp-reported, wp-sane, soft-dirty-complete, pin-coherent, refcount-sane]")
CASES = [("three-procs", THREE_PROCS, 12), ("pages", PAGES, 11), ("both", BOTH, 10),
         ("shared", SHARED, 11), ("tracking", TRACKING, 10)]


def case_scenario(case):
    _name, (pages, body, *more), _depth = case
    extra, props = (more + ["", PROPS])[:2] if more else ("", PROPS)
    return menu(pages, body, extra=extra, props=props)


def model_for(case, policy, symmetry=True):
    return MMModel(case_scenario(case), resolve(policy), symmetry=symmetry)


# ---------------------------------------------------------------- renaming by names
class NameRenamer:
    """Apply a process/page renaming to a raw state through names only."""

    def __init__(self, m):
        self.m = m
        self.value_ix = {name: i for i, name in enumerate(m.values)}
        self.inst = [[self._inst_names(i) for i in insts] for insts in m.menu_instances]
        self.ref_template = {r: name.split(".")[1] for r, name in enumerate(m.refs)}

    @staticmethod
    def _inst_names(inst):
        return None if inst is None else (inst.template, inst.page, inst.ref, inst.child)

    def allowed(self, s):
        """The renamings (proc map, page map) the model allows at s, identity included:
        born children among themselves; pages of one class once no fork can run."""
        m = self.m
        s = m.L.decode(s)
        statuses = [m.view(s).proc(c).status for c in range(1, len(m.procs))]
        born = [c for c in range(1, len(m.procs)) if statuses[c - 1] != UNBORN]
        menu_ = m.scenario.menu
        forks_left = any(tpl.kind == "fork" and (tpl.max is None or
                                                 s[m.counter_base + g] < tpl.max)
                         for g, tpl in enumerate(menu_.templates))
        pages_ok = FORKING not in statuses and (UNBORN not in statuses or not forks_left)
        classes = {}
        for v, pg in enumerate(m.scenario.pages):
            if pages_ok and not pg.get("shared"):
                classes.setdefault((pg.get("kind", "small"), pg.state), []).append(v)
        page_maps = [list(range(m.n_vpages))]
        for vs in classes.values():
            page_maps = [[dict(zip(vs, img)).get(v, pm[v]) for v in range(m.n_vpages)]
                         for pm in page_maps for img in itertools.permutations(vs)]
        proc_maps = []
        for img in itertools.permutations(born):
            pm = list(range(len(m.procs)))
            for a, b in zip(born, img):
                pm[a] = b
            proc_maps.append(pm)
        return [(pm, vm) for pm in proc_maps for vm in page_maps]

    def apply(self, s, procs, pages):
        """The stored state s with processes and pages renamed (stored)."""
        m = self.m
        s = m.L.decode(s)
        pn = {m.procs[p]: m.procs[procs[p]] for p in range(len(m.procs))}
        vn = {m.vpages[v]: m.vpages[pages[v]] for v in range(m.n_vpages)}

        def ref(name):
            owner, tpl, page = name.split(".")
            return f"{pn[owner]}.{tpl}.{vn[page]}"

        def value(i):
            name = m.values[i]
            if (hit := re.fullmatch(r"(\w+):(\w+)/e(\d+)", name)):
                name = f"{pn[hit[1]]}:{vn[hit[2]]}/e{hit[3]}"
            elif (hit := re.fullmatch(r"dev:([\w.]+)/e(\d+)", name)):
                name = f"dev:{ref(hit[1])}/e{hit[2]}"
            elif (hit := re.fullmatch(r"(\w+)@0", name)) and hit[1] in vn:
                name = f"{vn[hit[1]]}@0"
            return self.value_ix[name]

        def mask(bits):
            return sum(1 << value(i) for i in range(len(m.values)) if bits >> i & 1)

        out = list(s)
        for p in range(len(m.procs)):
            q = procs[p]
            out[m.proc[q]:m.proc[q] + PROC_SIZE] = s[m.proc[p]:m.proc[p] + PROC_SIZE]
            for v in range(m.n_vpages):
                a, b = m.pv[p][v], m.pv[q][pages[v]]
                out[b:b + PV_SIZE] = s[a:a + PV_SIZE]
                out[b + PV_IDEAL] = value(s[a + PV_IDEAL])
                out[b + PV_LEGIT] = mask(s[a + PV_LEGIT])
            t, u = m.proc_threads[p][0], m.proc_threads[q][0]
            out[m.th[u]:m.th[u] + TH_SIZE] = s[m.th[t]:m.th[t] + TH_SIZE]
            pc = s[m.th[t] + TH_PC]
            if 0 < pc < len(self.inst[t]):
                tpl, page, rname, child = self.inst[t][pc]
                want = (tpl, page and vn[page], rname and ref(rname), child and pn[child])
                out[m.th[u] + TH_PC] = self.inst[u].index(want)
        for r, name in enumerate(m.refs):  # the whole record: its page and its ghost
            a, b = m.refix[r], m.refix[m.ref_index[ref(name)]]
            out[b:b + REF_SIZE] = s[a:a + REF_SIZE]
        for track in range(len(m.uffd)):  # write tracking: per process, per page
            for p in range(len(m.procs)):
                q = procs[p]
                a, b = m.uffd[track][p], m.uffd[track][q]
                out[b:b + UFFD_SIZE] = s[a:a + UFFD_SIZE]
                for v in range(m.n_vpages):
                    a, b = m.wt[track][p][v], m.wt[track][q][pages[v]]
                    out[b:b + WT_SIZE] = s[a:a + WT_SIZE]
        for b in m.fr:
            out[b + FR_CONTENT] = value(s[b + FR_CONTENT])
        for b in m.sl:
            out[b + SL_CONTENT] = value(s[b + SL_CONTENT])
        for b in m.ob:  # memory objects stay; the values in them move
            out[b + OB_IDEAL] = value(s[b + OB_IDEAL])
            out[b + OB_LEGIT] = mask(s[b + OB_LEGIT])
        return m.L.encode(out)


# ---------------------------------------------------------------- soundness
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("policy", ["v5.7", "v5.19"])
def test_allowed_renamings_commute_with_successors_and_properties(case, policy):
    m = model_for(case, policy)
    rn = NameRenamer(m)
    frames = m.frames.canonical
    checks = m.invariants()
    raw = reachable_within(m, case[2] - 1)
    renamed = 0
    for s in raw:
        for procs, pages in rn.allowed(s)[1:]:
            g = rn.apply(s, procs, pages)
            renamed += g != s
            mine = {frames(t) for _l, t in m.successors(s)}
            assert {frames(rn.apply(t, procs, pages)) for t in mine} == \
                {frames(t) for _l, t in m.successors(g)}
            for name, check in checks:
                assert (check(s) is None) == (check(g) is None), name
            assert m.is_final(s) == m.is_final(g)
    assert renamed > 100  # the test exercised real renamings


def test_renaming_pages_is_not_a_symmetry_while_a_fork_may_walk_them():
    """Why page renamings wait for the last fork: copy_page_range walks vpages in order,
    so in the middle of a fork, swapping a copied page with one still to copy changes
    what the next step does."""
    m = model_for(CASES[1], "v5.19")
    rn = NameRenamer(m)
    frames = m.frames.canonical
    swap_x_z = (list(range(2)), [2, 1, 0])
    broken = 0
    for s in reachable_within(m, 8):
        th = m.view(s).thread(0)
        if th.step == FORK_COPY and th.cursor == 2:  # Z is next
            assert len(rn.allowed(s)) == 1  # the model does not rename pages here
            g = rn.apply(s, *swap_x_z)
            mine = {frames(rn.apply(t, *swap_x_z)) for _l, t in m.successors(s)}
            broken += mine != {frames(t) for _l, t in m.successors(g)}
    assert broken


# ---------------------------------------------------------------- exactness
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("policy", ["v5.7", "v5.19"])
def test_reduced_count_equals_brute_force_orbit_count(case, policy):
    m = model_for(case, policy)
    rn = NameRenamer(m)
    frames = m.frames.canonical
    depth = case[2]
    raw = reachable_within(m, depth)
    orbit_of = {}
    for s in raw:
        orbit_of[s] = frozenset(frames(rn.apply(s, procs, pages))
                                for procs, pages in rn.allowed(s))
    orbits = set(orbit_of.values())
    reduced = explorer.explore(m, max_depth=depth)
    frames_only = explorer.explore(model_for(case, policy, symmetry=False), max_depth=depth)
    assert reduced.states == len(orbits)
    assert reduced.states < frames_only.states  # the reduction reduces
    # the representative is in the orbit, and the same for the whole orbit
    canon = {}
    for s, orbit in orbit_of.items():
        c = m.canonical(s)
        assert c in orbit
        assert canon.setdefault(orbit, c) == c


# ---------------------------------------------------------------- verdicts and traces
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("policy", ["v5.7", "v5.11", "v5.18", "v5.19"])
def test_verdicts_and_depths_same_with_and_without_symmetry(case, policy):
    depth = case[2]
    sc = case_scenario(case)
    on = run_policy(sc, policy, depth=depth)
    off = run_policy(sc, policy, depth=depth, symmetry=False)
    assert [(v.name, v.verdict, v.depth) for v in on.verdicts] == \
        [(v.name, v.verdict, v.depth) for v in off.verdicts]
    assert on.states < off.states
    m = MMModel(sc, resolve(policy))
    for v in on.verdicts:
        if v.trace is not None:  # the concretised trace replays and still violates
            assert check_trace(m, v.trace)[0]


def test_discover_menus_keep_their_verdicts_with_symmetry():
    """The shipped discovery menus with more than one child or page are reduced, and
    their expectations (from the reference) hold either way."""
    for path in ("scenarios/discover/two_children_menu.yaml",
                 "scenarios/discover/two_pages_menu.yaml"):
        sc = load_scenario(path)
        for policy in sc.policies:
            on = run_policy(sc, policy, depth=12, with_traces=False)
            off = run_policy(sc, policy, depth=12, symmetry=False, with_traces=False)
            assert [(v.verdict, v.depth) for v in on.verdicts] == \
                [(v.verdict, v.depth) for v in off.verdicts]
            assert on.states < off.states


def test_describe_names_what_is_interchangeable():
    m = model_for(CASES[2], "v5.19")
    assert m.symmetry.describe() == \
        "interchangeable processes P1, P2; pages X, Y (up to 4 renamings)"
    m = model_for(CASES[1], "v5.19")
    assert m.symmetry.describe() == "interchangeable pages X, Z (up to 2 renamings)"
    sc = load_scenario("scenarios/discover/ro_pin_menu.yaml")
    m = MMModel(sc, resolve("v5.19"))
    assert m.symmetry.trivial and m.canonical == m.frames.canonical


def test_try_to_unmap_may_visit_the_mappings_in_any_order():
    """rmap_walk_anon's order comes from VMA history the model does not keep: with a page
    mapped by parent and child, reclaim may unmap either mapping first (and this keeps the
    step symmetric under renaming processes)."""
    m = MMModel(menu("{X: present}", """\
        processes: 2
        ops:
          - fork: {max: 1}
          - write
        """, extra="background: {reclaim: 1}\n"), resolve("v5.19"), symmetry=False)
    orders = set()
    for s in reachable_within(m, 12):
        for t in range(len(m.threads)):  # the reclaim actor is a kernel thread
            if m.view(s).thread(t).step == RECLAIM_UNMAP:
                parts = [m.label_parts(lab) for lab, _n in m.successors(s)]
                firsts = {m.where_name(arg) for (u, _pc, oid, arg) in parts
                          if u == t and oid == TRY_TO_UNMAP.one}
                if len(firsts) == 2:
                    orders.add(frozenset(firsts))
    assert orders == {frozenset({"P0:X", "P1:X"})}
