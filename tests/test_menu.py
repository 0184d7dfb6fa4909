"""Menu scenarios: bug discovery without a script (issue: success test), bounds, bad input."""

from __future__ import annotations

import textwrap

import pytest

from mmcheck.errors import ScenarioError
from mmcheck.scenario.loader import load_scenario, load_scenario_text
from mmcheck.report.runner import run_policy


def shortest(run, prop):
    v = next(v for v in run.verdicts if v.name == prop)
    assert v.verdict == "violated", (prop, v.verdict)
    # (thread, op, kernel function.outcome of the step table): never display text
    return [(s["thread"], s["op"].split("(")[0], f"{s['function']}.{s['outcome']}")
            for s in v.trace["steps"][1:]]


@pytest.fixture(scope="module")
def generic():
    sc = load_scenario("scenarios/discover/generic_menu.yaml")
    return {p: run_policy(sc, p) for p in sc.policies}


def test_mapcount_rediscovers_the_vmsplice_leak(generic):
    """CVE-2020-29374's pattern, found with no hint: a read-only FOLL_GET reference survives
    an unmap while another process's write reuses the page because its mapcount is 1."""
    steps = shortest(generic["mapcount"], "no-leak")
    ops = [op for _t, op, _a in steps]
    assert ops[:4] == ["fork"] * 4
    assert "gup" in ops and "munmap" in ops
    assert steps[-2][2] == "do_wp_page.reuse" and steps[-1][2] == "cpu.store"
    taker = next(t for t, op, _a in steps if op == "gup")
    writer = steps[-1][0]
    assert taker != writer  # the reference holder and the writer are different processes
    assert len(steps) == 8


def test_page_count_rediscovers_a_wrong_cow(generic):
    """The shortest page_count-era wrong COW with this menu: pin, mprotect R, RW, write
    (reference T2.3) -- six steps, shorter than the R/O pin on a shared page."""
    steps = shortest(generic["page_count"], "pin-coherent")
    assert [op for _t, op, _a in steps] == ["gup", "mprotect", "mprotect", "write", "write",
                                            "write"]
    assert "wp_page_copy" in steps[-1][2]


def test_anon_exclusive_finds_nothing_in_the_whole_menu_universe(generic):
    """Not only up to the depths where the other eras fail: the whole reachable space of
    this menu is explored and neither property breaks under PageAnonExclusive."""
    run = generic["anon_exclusive"]
    assert run.complete and run.bounded_by is None
    assert {v.name: v.verdict for v in run.verdicts} == {"no-leak": "holds",
                                                         "pin-coherent": "holds"}
    assert not run.unexpected
    assert all(generic[p].complete for p in generic)


def test_ro_pin_menu_shortest_is_the_ro_pin_on_a_shared_page():
    sc = load_scenario("scenarios/discover/ro_pin_menu.yaml")
    steps = shortest(run_policy(sc, "page_count"), "pin-coherent")
    assert [op for _t, op, _a in steps] == ["fork"] * 4 + ["pin", "write", "write", "write"]
    assert not run_policy(sc, "anon_exclusive").unexpected


def menu_scenario(menu):
    body = "\n".join("  " + line for line in textwrap.dedent(menu).strip().splitlines())
    text = ("name: m\npages: {X: present}\nmenu:\n" + body +
            "\nproperties: [no-leak, pin-coherent, refcount-sane]\n")
    return load_scenario_text(text, "m.yaml")


def test_bounds_fork_max_and_reference_limit():
    sc = menu_scenario("""\
        processes: 3
        references: 1
        ops:
          - fork: {max: 1}
          - gup: {type: get, access: read}
          - gup: {type: pin, access: read}
        """)
    run = run_policy(sc, "v5.19", with_traces=False)
    assert run.complete
    from mmcheck.model.model import MMModel
    from mmcheck.model.policy import resolve
    m = MMModel(sc, resolve("v5.19"))
    from collections import deque
    seen, queue, most_procs, most_refs = set(), deque(m.initial_states()), 0, 0
    while queue:
        s = queue.popleft()
        if s in seen:
            continue
        seen.add(s)
        f = m.decode(s)  # the state's fields
        born = sum(1 for p in range(3) if f[m.proc[p]] != 0)
        most_procs = max(most_procs, born)
        for p in range(3):
            most_refs = max(most_refs, sum(1 for r in m.menu_refs_of[p] if f[m.refix[r]]))
        queue.extend(t for _l, t in m.successors(s))
    assert most_procs == 2  # fork at most once
    assert most_refs == 1  # one reference per process at a time
    assert run.states == len({m.canonical(s) for s in seen})


def test_unused_templates_are_reported():
    sc = menu_scenario("""\
        processes: 1
        ops:
          - write
          - put
        """)
    run = run_policy(sc, "v5.19", with_traces=False)
    assert any("put" in t for t in run.never_started)


@pytest.mark.parametrize("menu,needle", [
    ("ops: [wirte]", "'wirte' cannot be a menu template"),
    ("ops: [{write: {page: X}}]", "'page' is chosen by the menu"),
    ("ops: [{fork: {max: 0}}]", "max must be an integer from 1 to 8"),
    ("processes: 9\nops: [write]", "menu.processes must be an integer from 1 to 4"),
    ("ops: [{mprotect: {}}]", "needs 'prot'"),
    ("ops: []", "at least one template"),
])
def test_bad_menus(menu, needle):
    with pytest.raises(ScenarioError) as e:
        menu_scenario(menu)
    assert needle in str(e.value) and str(e.value).startswith("m.yaml:")


def test_menu_and_processes_are_exclusive():
    with pytest.raises(ScenarioError) as e:
        load_scenario_text("name: x\npages: {X: present}\nprocesses: {A: {program: [exit]}}\n"
                           "menu: {ops: [write]}\n", "x.yaml")
    assert "either 'processes' or a 'menu'" in str(e.value)
