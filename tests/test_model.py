"""The MM model: shipped scenarios meet their expectations, canonicalisation is exact, traces
replay, and the properties can fail."""

from __future__ import annotations

import glob
import itertools

import pytest
from hypothesis import given, settings, strategies as st

from mmcheck.engine import explorer
from mmcheck.model import steps
from mmcheck.model.kernel.common import V_IDEAL, op_done
from mmcheck.scenario.loader import load_scenario, load_scenario_text
from mmcheck.model.model import MMModel
from mmcheck.model.policy import PRESETS, resolve
from mmcheck.report.runner import policy_defs, run_policy
from mmcheck.report.trace import ReplayError, build_trace, check_trace, replay
from support import model_for, reachable_raw

SCENARIOS = sorted(glob.glob("scenarios/classics/*.yaml"))
# menu scenarios (scenarios/discover) are bounded searches, tested in test_menu.py
ALL_SCENARIOS = sorted(f for f in glob.glob("scenarios/**/*.yaml", recursive=True)
                       if "/discover/" not in f)
CASES = [(f, p) for f in ALL_SCENARIOS for p in load_scenario(f).policies]


@pytest.mark.parametrize("path,policy", CASES, ids=[f"{f.split('/')[-1][:-5]}-{p}" for f, p in CASES])
def test_shipped_scenarios_meet_expectations(path, policy):
    sc = load_scenario(path)
    run = run_policy(sc, policy)
    assert run.complete
    assert run.final_states > 0, "vacuous: no interleaving finishes"
    assert not run.unexpected, [(v.name, v.verdict, v.expected, v.reason) for v in run.unexpected]
    for v in run.verdicts:
        if v.trace is not None:
            ok, reason = check_trace(MMModel(sc, resolve(policy, policy_defs(sc))), v.trace)
            assert ok, reason


def test_every_classic_has_expectations_for_every_policy_and_property():
    """Every policy and every property the run reports (a scenario that lists no
    properties gets those with something to judge in it)."""
    for f in SCENARIOS:
        sc = load_scenario(f)
        have = {(e.policy, e.prop) for e in sc.expect}
        for p in sc.policies:
            reported = {v.name for v in run_policy(sc, p, with_traces=False).verdicts}
            assert {q for q in sc.properties if q in reported} == reported, f
            assert {q for pol, q in have if pol == p} == reported, (f, p)


def test_each_property_is_violated_somewhere_and_holds_somewhere():
    seen = {}
    for f in SCENARIOS:
        for e in load_scenario(f).expect:
            seen.setdefault(e.prop, set()).add(e.verdict)
    for prop in ("no-leak", "pin-coherent", "no-lost-write", "refcount-sane", "exclusive-sane"):
        assert seen[prop] == {"holds", "violated"}, prop


def test_every_preset_differs_from_its_predecessor_on_some_scenario():
    verdicts = {}
    for f in ALL_SCENARIOS:
        for e in load_scenario(f).expect:
            verdicts.setdefault(e.policy, {})[(f, e.prop)] = e.verdict
    names = list(PRESETS)
    for a, b in zip(names, names[1:]):
        assert verdicts[a] != verdicts[b], f"{a} and {b} agree on every shipped scenario"


# ------------------------------------------------------------------ canonicalisation
SMALL = ["basic_cow", "vmsplice_unmap_child", "pin_rw_fork_parent_write", "ro_pin_shared_write",
         "gup_fast_vs_zap", "pin_rw_mprotect_write"]


SMALL_SHARED = ["scenarios/shared/memfd_private_and_shared.yaml",
                "scenarios/shared/memfd_shared_two_processes.yaml",
                "scenarios/cow/nonanon-basic--memfd.yaml"]


@pytest.mark.parametrize("name", SMALL + SMALL_SHARED)
@pytest.mark.parametrize("policy", ["v4.9-pv", "v5.7", "v5.9", "v5.19"])
def test_canonical_count_equals_brute_force_orbit_count(name, policy):
    m = model_for(name if "/" in name else f"scenarios/classics/{name}.yaml", policy)
    raw = reachable_raw(m)
    n = m.n_frames
    perms = list(itertools.permutations(range(n)))
    orbits = {min(m.frames.permute(s, list(p)) for p in perms) for s in raw}
    reduced = explorer.explore(m, canonicalize=True)
    assert reduced.complete
    assert reduced.states == len(orbits)
    # and the canonical form picks exactly one member per orbit
    assert len({m.canonical(s) for s in raw}) == len(orbits)


@pytest.mark.parametrize("path,policy", CASES[::7])
def test_verdicts_same_with_and_without_canonicalisation(path, policy):
    sc = load_scenario(path)
    on = run_policy(sc, policy, canonicalize=True, with_traces=False)
    off = run_policy(sc, policy, canonicalize=False, with_traces=False)
    assert [(v.name, v.verdict, v.depth) for v in on.verdicts] == \
        [(v.name, v.verdict, v.depth) for v in off.verdicts]
    assert on.states <= off.states


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_canonical_form_is_invariant_under_frame_renaming(data):
    path = data.draw(st.sampled_from(ALL_SCENARIOS))
    policy = data.draw(st.sampled_from(["v5.7", "v5.9", "v5.19"]))
    m = model_for(path, policy)
    states = sorted(reachable_raw(m))
    s = data.draw(st.sampled_from(states))
    fixed = m.frames.n_fixed  # pagecache pages have identity
    perm = list(range(fixed)) + list(data.draw(st.permutations(range(fixed, m.n_frames))))
    slot_perm = list(data.draw(st.permutations(range(m.n_slots)))) if m.n_slots else None
    renamed = m.frames.permute(s, perm, slot_perm)
    assert m.canonical(renamed) == m.canonical(s)
    # renaming commutes with successors (labels do not mention frames)
    succ = {lab: m.canonical(t) for lab, t in m.successors(s)}
    succ_renamed = {lab: m.canonical(t) for lab, t in m.successors(renamed)}
    assert succ == succ_renamed


# ------------------------------------------------------------------ traces
def test_trace_replays_and_tampered_trace_is_rejected():
    m = model_for("scenarios/classics/vmsplice_unmap_child.yaml", "v5.7")
    res = explorer.explore(m)
    cex = res.violations["no-leak"]
    trace = build_trace(m, cex.labels, "no-leak", cex.reason)
    assert check_trace(m, trace) == (True, cex.reason)
    assert trace["steps"][-1]["state"]["refs"][0]["sees"] == "A.main#2"
    # the same steps under v5.9 copy instead of reusing: no longer a violation
    m59 = model_for("scenarios/classics/vmsplice_unmap_child.yaml", "v5.9")
    with pytest.raises(ReplayError):
        replay(m59, trace["labels"])
    bad = dict(trace, labels=trace["labels"][:-1])
    assert check_trace(m, bad)[0] is False


# ------------------------------------------------------------------ properties can fail
def test_refcount_sane_catches_a_forgotten_put(monkeypatch):
    """Mutation: a zap that never drops the page reference must be flagged."""
    def leaky_flush(m, s, t, op):
        l = s[:]
        op_done(m, l, t)
        return steps.ZAP.put, l

    monkeypatch.setattr(steps.STEPS[steps.ZAP_FLUSH], "fn", leaky_flush)
    m = model_for("scenarios/classics/vmsplice_unmap_child.yaml", "v5.19")
    res = explorer.explore(m)
    assert "refcount-sane" in res.violations
    assert "page_count" in res.violations["refcount-sane"].reason


def test_no_lost_write_catches_a_store_that_does_not_land():
    """Mutation: a store that updates the ideal memory but not the page."""
    real = steps.STARTS["write"]

    def lossy_store(m, s, t, op):
        r = real(m, s, t, op)
        if r and r[0] == steps.CPU.store:
            l = s[:]
            op_done(m, l, t)
            l[m.pv[m.t_proc[t]][op.v] + V_IDEAL] = op.val  # ideal updated, page untouched
            return steps.CPU.store, l
        return r

    m = model_for("scenarios/classics/basic_cow.yaml", "v5.19")
    for prog in m.programs:
        for op in prog:
            if op.kind == "write":
                op.start = lossy_store
    res = explorer.explore(m)
    assert "no-lost-write" in res.violations


# ------------------------------------------------------------------ vacuity and details
def test_deadlock_and_never_enabled_ops_are_reported():
    sc = load_scenario_text("""
name: deadlock
pages: {X: present}
processes:
  A:
    threads:
      one:
        - await: b
        - signal: a
      two:
        - await: a
        - signal: b
        - write: X
""", "t.yaml")
    run = run_policy(sc, "v5.19")
    assert run.complete and run.final_states == 0 and run.stuck_states == 1
    assert run.stuck_trace is not None
    assert any("write" in op for op in run.never_started)


def test_user_defined_policy_precise_mapcount():
    """Linus' objection to the precise-mapcount proposal (seed 001): mapcount can be 1
    because of "fork, then unmap in either parent or child" although the page is still
    shared through a GUP reference taken before fork."""
    sc = load_scenario_text("""
name: pm
define_policies:
  precise-mapcount:
    base: v5.7
    knobs: {ro_gup_unshare: mapcount}
policies: [precise-mapcount]
properties: [no-leak]
pages: {X: present}
processes:
  A:
    threads:
      main:
        - vmsplice: {page: X, as: pipe}
        - fork:
            child: B
            program: [{write: X}]
        - munmap: X
""", "t.yaml")
    run = run_policy(sc, "precise-mapcount")
    assert run.verdicts[0].verdict == "violated"


def test_zero_page_read_then_write_gets_a_private_page():
    sc = load_scenario_text("""
name: z
pages: {X: none}
processes:
  A:
    program: [{read: X}, {write: X}, {read: X}]
""", "t.yaml")
    for policy in PRESETS:
        run = run_policy(sc, policy)
        assert all(v.verdict == "holds" for v in run.verdicts), policy
        assert run.final_states == 1


def test_generated_cow_scenarios_are_fresh():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "tools/gen_cow_scenarios.py", "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("name,copies_unnecessarily,does_not", [
    # T2.8: an extra reference (speculative, LRU batch) makes page_count-based reuse copy a
    # page nobody else can observe; mapcount-based reuse ignores it; 5.18 drains the batch
    ("unnecessary_cow_speculative_ref", ("v5.9", "v5.11", "v5.18", "v5.19"), ("v5.7",)),
    ("lru_batch_unnecessary_cow", ("v5.9", "v5.11"), ("v5.7", "v5.18", "v5.19")),
])
def test_unnecessary_cow_counts(name, copies_unnecessarily, does_not):
    sc = load_scenario(f"scenarios/anon/{name}.yaml")
    for policy in copies_unnecessarily:
        assert run_policy(sc, policy, with_traces=False).unnecessary_copies > 0, policy
    for policy in does_not:
        assert run_policy(sc, policy, with_traces=False).unnecessary_copies == 0, policy


@pytest.mark.parametrize("path,policy", [
    ("scenarios/anon/odirect_swap_read_write.yaml", "v5.11"),
    ("scenarios/anon/odirect_swap_read_write.yaml", "v5.19"),
])
def test_canonical_count_with_swap_slots_equals_brute_force(path, policy):
    """Frames and swap slots are renamed together: the reduced count must equal the number
    of orbits under all frame x slot permutations."""
    m = model_for(path, policy)
    raw = reachable_raw(m)
    frame_perms = list(itertools.permutations(range(m.n_frames)))
    slot_perms = list(itertools.permutations(range(m.n_slots)))
    plans = [m.frames.plan(list(fp), list(sp)) for fp in frame_perms for sp in slot_perms]
    orbits = {min(m.frames.apply(m.L.decode(s), plan).tobytes() for plan in plans) for s in raw}
    reduced = explorer.explore(m, canonicalize=True)
    assert reduced.complete and reduced.states == len(orbits)
