"""Soundness regressions (issue 14): a property's verdict must not depend on how frames and
swap slots are numbered, and interleavings the kernel's locks forbid must not be explored."""

from __future__ import annotations

import random

import pytest

from mmcheck.engine import explorer
from mmcheck.model import codec
from mmcheck.model.steps import FORK_WRPROTECT
from mmcheck.scenario.loader import load_scenario
from mmcheck.model.model import MMModel
from mmcheck.model.policy import resolve
from mmcheck.report.runner import run_policy
from support import model_for, reachable_raw


ORBIT_CASES = [
    ("scenarios/anon/fork_vs_reclaim_two_pages.yaml", "v5.7"),
    ("scenarios/anon/fork_vs_reclaim_two_pages.yaml", "v5.19"),
    ("scenarios/anon/fork_vs_reclaim.yaml", "v5.11"),
    ("scenarios/anon/odirect_swap_read_write.yaml", "v5.11"),
    ("scenarios/anon/pinned_swapped_out_read_write.yaml", "v5.19"),
    ("scenarios/shared/shmem_swap_roundtrip.yaml", "v5.11"),
    ("scenarios/shared/shmem_reclaim_pinned.yaml", "v6.2"),
    ("scenarios/paths/shmem_swap_device_full.yaml", "v5.11"),
]


@pytest.mark.parametrize("path,policy", ORBIT_CASES)
def test_property_verdicts_are_the_same_on_every_member_of_an_orbit(path, policy):
    """Each property says the same of a state and of every frame x slot renaming of it (a
    check that read a swap entry as a frame broke this: the canonical state violated
    refcount-sane while the execution did not), and the reduced count is the number of
    orbits."""
    m = model_for(path, policy)
    raw = reachable_raw(m)
    fixed = m.frames.n_fixed
    rng = random.Random(14)
    # all frame x slot renamings are too many (11! x 5!); random ones, the reversal and
    # the canonical form are enough to expose a frame/slot mix-up
    plans = []
    for k in range(24):
        fp = list(range(fixed, m.n_frames))
        sp = list(range(m.n_slots))
        if k == 0:
            fp.reverse()
            sp.reverse()
        else:
            rng.shuffle(fp)
            rng.shuffle(sp)
        plans.append(m.frames.plan(list(range(fixed)) + fp, sp or None))
    checks = m.invariants()
    for s in raw:
        images = [m.canonical(s)] + [m.frames.apply(m.L.decode(s), plan).tobytes()
                                     for plan in plans]
        for name, check in checks:
            want = check(s) is None
            for img in images:
                assert (check(img) is None) == want, (name, m.snapshot(s))
    orbits = {m.canonical(s) for s in raw}
    reduced = explorer.explore(m)
    assert reduced.complete and reduced.states == len(orbits)


@pytest.mark.parametrize("policy", ["v5.7", "v5.11", "v5.19", "v6.2"])
def test_reclaim_never_unmaps_a_pte_fork_holds_locked(policy):
    """copy_pte_range holds the source PT lock across copy_present_pte; try_to_unmap_one
    takes it, so between the two halves the parent's PTE is still the present page."""
    m = model_for("scenarios/anon/fork_vs_reclaim.yaml", policy)
    seen_window = 0
    for s in reachable_raw(m):
        view = m.view(s)
        for t in range(len(m.threads)):
            th = view.thread(t)
            if th.step == FORK_WRPROTECT:
                seen_window += 1
                assert codec.is_present(view.pte(m.t_proc[t], th.cursor)), m.snapshot(s)
    assert seen_window, "the fork window was never reached: the test proves nothing"


@pytest.mark.parametrize("symmetry", ["full", "frames", "none"])
def test_frames_symmetry_refcount_reproducer_holds_and_replays(symmetry):
    sc = load_scenario("scenarios/anon/fork_vs_reclaim_two_pages.yaml")
    run = run_policy(sc, "v5.7", canonicalize=symmetry != "none", symmetry=symmetry == "full")
    assert run.complete and not run.unexpected
    assert all(v.verdict == "holds" for v in run.verdicts)


SWAP_MENU = """
name: pageout-menu
pages: {X: present}
menu: {processes: 1, references: 0, ops: [pageout, write, read]}
policies: [v5.9, v5.11]
"""

LRU_MENU = """
name: lru-menu
pages: {X: present}
background: {lru_batch: true}
menu: {processes: 1, references: 0, ops: [write, dontneed]}
policies: [v5.9]
"""


@pytest.mark.parametrize("policy", ["v5.7", "v5.9", "v5.11", "v5.19"])
def test_a_menu_that_fills_the_swap_device_ends_with_a_note(policy):
    """Pages left in the swapcache by a COW keep their slot; with unbounded pageout and
    write the model's swap device fills, and add_to_swap fails as on a full device."""
    from mmcheck.scenario.loader import load_scenario_text

    run = run_policy(load_scenario_text(SWAP_MENU, "menu.yaml"), policy)
    assert run.complete and not run.vacuous
    if policy in ("v5.9", "v5.11"):  # page_count reuse copies swapcache pages: orphans
        assert any("swap device" in n for n in run.notes), run.notes
    for v in run.verdicts:
        assert v.verdict == "holds", (v.name, v.reason)


def test_lru_batch_holds_a_bounded_number_of_pages():
    """Write + DONTNEED forever leaves a zapped page in the LRU add batch each time; a full
    batch is drained (pagevec_add found no space), so the pool of frames suffices."""
    from mmcheck.scenario.loader import load_scenario_text
    sc = load_scenario_text(LRU_MENU, "menu.yaml")
    m = MMModel(sc, resolve("v5.9"))
    most = max(sum(1 for f in range(m.n_frames) if m.view(s).frame(f).flags & codec.PG_LRU_BATCH)
               for s in reachable_raw(m))
    assert most == m.lru_batch_capacity
    run = run_policy(sc, "v5.9")
    assert run.complete and all(v.verdict == "holds" for v in run.verdicts)
