"""Every value of every policy knob changes what the model does: one test per knob value,
which fails if the knob (or that value) is never consulted.

For each knob a base preset and witness scenarios are named; the test runs each witness
under the base preset with the knob set to the value under test and to each other value,
and requires, for every other value, some witness whose result differs: verdicts and
shortest depths, distinct states, transitions, or which step outcomes were taken how often
(the step table's coverage).  A knob that is ignored gives identical results for all its
values, so its tests fail; a new knob without witnesses fails
`test_every_knob_has_witnesses`.
"""

from __future__ import annotations

from collections import deque
from functools import lru_cache

import pytest

from mmcheck.model.kernel.common import LK_NONE
from mmcheck.model.model import MMModel
from mmcheck.model.policy import KNOBS, PRESETS, resolve
from mmcheck.model.steps import WP_COPY_ALLOC
from mmcheck.report.runner import run_policy
from mmcheck.scenario.loader import load_scenario, load_scenario_text
from mmcheck.scenario.spec import Loc, PolicyDef

CLEAR_REFS_RACE = """
name: clear-refs-race
pages: {X: present}
processes:
  A:
    threads:
      writer:
        - fork: B
        - write: X
      tracker:
        - clear_refs
"""

# knob -> (base preset, witness scenarios)
WITNESSES = {
    "wp_reuse": ("v5.11", ["scenarios/anon/lru_batch_unnecessary_cow.yaml",
                           "scenarios/classics/vmsplice_unmap_child.yaml"]),
    "thp_reuse": ("v5.18", ["scenarios/anon/vmsplice_unmap_child_thp.yaml",
                            "scenarios/cow/ro-pin-shared--thp.yaml"]),
    "swapin_reuse": ("v5.19", ["scenarios/anon/vmsplice_unmap_child_swapped.yaml",
                               "scenarios/anon/odirect_swap_read_write.yaml",
                               "scenarios/cow/basic--swapped.yaml",
                               "scenarios/anon/pinned_swapped_out_read_write.yaml"]),
    "swapout_skip_pinned": ("v5.11", ["scenarios/anon/pinned_swapped_out_read_write.yaml"]),
    "clear_refs_skip_pinned": ("v5.11", ["scenarios/anon/pin_clear_refs_write.yaml"]),
    "clear_refs_mmap_write": ("v5.11", [CLEAR_REFS_RACE]),
    "anon_exclusive": ("v5.19", ["scenarios/classics/ro_pin_shared_write.yaml"]),
    "gup_read_breaks_cow": ("v5.7", ["scenarios/classics/vmsplice_unmap_child.yaml"]),
    "track_has_pinned": ("v5.11", ["scenarios/classics/pin_rw_fork_parent_write.yaml"]),
    "fork_pinned": ("v5.11", ["scenarios/classics/pin_rw_fork_parent_write.yaml"]),
    "hugetlb_fork_pinned": ("v5.11", ["scenarios/cow/iouring-fork--hugetlb.yaml"]),
    "gup_fast_seqcount": ("v5.11", ["scenarios/classics/gup_fast_pin_racing_fork.yaml"]),
    "gup_fast_recheck": ("v5.7", ["scenarios/classics/gup_fast_vs_zap.yaml"]),
    "ro_gup_unshare": ("v5.19", ["scenarios/classics/ro_pin_shared_write.yaml",
                                 "scenarios/cow/nonanon-ro-pin--zeropage.yaml",
                                 "scenarios/classics/vmsplice_unmap_child.yaml"]),
    "mprotect_writable": ("v6.2", ["scenarios/classics/pin_rw_mprotect_write.yaml",
                                   "scenarios/paths/mprotect_clean_exclusive.yaml",
                                   "scenarios/uffd/sd2_mprotect_anon.yaml"]),
    "mprotect_shared_writable": ("v6.2", ["scenarios/paths/shared_paths.yaml"]),
    "uffd_wp": ("v6.4", ["scenarios/uffd/b0prime_shmem_markers.yaml",
                         "scenarios/uffd/b0_unpopulated.yaml"]),
    "uffd_wp_unpopulated": ("v6.4", ["scenarios/uffd/b0_wp_unpopulated_fixes_it.yaml"]),
    "pagemap_uffd_wp": ("v6.4", ["scenarios/uffd/b3_mremap.yaml"]),
    "uffd_wp_writenotify": ("v5.19", ["scenarios/uffd/b4_migration_shmem.yaml"]),
    "uffd_unprotect_writable": ("v6.4", ["scenarios/uffd/b10_pin_uffd_wp_cow.yaml"]),
    "fork_uffd_marker": ("v5.19", ["scenarios/uffd/b2_fork_marker.yaml"]),
    "mkuffd_wp_wrprotects": ("v5.19", ["scenarios/uffd/b4_migration_shmem.yaml"]),
    "thp_migration_uffd_wp": ("v6.2", ["scenarios/uffd/b5_thp_migration.yaml"]),
    "hugetlb_unshare_uffd_wp": ("v6.2", ["scenarios/uffd/b6_hugetlb_unshare.yaml"]),
    "mremap_clears_uffd_wp": ("v6.4", ["scenarios/uffd/b3_mremap.yaml"]),
    "vma_merge_softdirty": ("v6.4", ["scenarios/uffd/sd3_vma_merge.yaml"]),
    "softdirty_writenotify": ("v6.2", ["scenarios/uffd/sd1_shared_anon.yaml"]),
    "fork_copies_hugetlb": ("v6.2", ["scenarios/shared/hugetlb_memfd_fork.yaml"]),
}

CASES = [(knob, value) for knob in KNOBS for value in KNOBS[knob].values]


def _scenario(witness):
    if witness.startswith("\n"):
        return load_scenario_text(witness, "witness.yaml")
    return load_scenario(witness)


@lru_cache(maxsize=None)
def signature(knob, value, witness):
    """What a run of the witness shows under the base preset with knob = value."""
    base, _ = WITNESSES[knob]
    sc = _scenario(witness)
    name = f"{base}+{knob}={value}"
    defs = {name: PolicyDef(name, base, ((knob, value),), Loc("test", 0))}
    run = run_policy(sc, name, defs=defs, with_traces=False)
    assert run.complete
    return (tuple((v.name, v.verdict, v.depth) for v in run.verdicts), run.states,
            run.transitions, tuple(sorted(run.coverage.items())))


def test_every_knob_has_witnesses():
    assert set(WITNESSES) == set(KNOBS)


@pytest.mark.parametrize("knob,value", CASES, ids=[f"{k}={v}" for k, v in CASES])
def test_knob_value_changes_what_the_model_does(knob, value):
    _base, witnesses = WITNESSES[knob]
    for other in KNOBS[knob].values:
        if other == value:
            continue
        assert any(signature(knob, value, w) != signature(knob, other, w) for w in witnesses), \
            f"{knob}={value} behaves exactly like {knob}={other} on every witness"


def test_clear_refs_takes_mmap_lock_for_write_from_5_11():
    """Before 5.11 clear_refs ran under mmap_lock (read), concurrently with a fault; 5.11
    ("fix clear_refs_write locking") waits for it: in the middle of the writer's COW fault
    (holding mmap_lock for read) the tracker can move before 5.11 only."""
    sc = load_scenario_text(CLEAR_REFS_RACE, "k.yaml")
    for policy, enabled in (("v5.9", True), ("v5.11", False)):
        m = MMModel(sc, resolve(policy))
        writer, tracker = 0, 1
        seen, queue, checked = set(), deque(m.initial_states()), 0
        while queue:
            s = queue.popleft()
            if s in seen:
                continue
            seen.add(s)
            view = m.view(s)
            w, tr = view.thread(writer), view.thread(tracker)
            if w.step == WP_COPY_ALLOC and w.mmap_lock != LK_NONE and tr.pc == 0:
                tracker_moves = [lab for lab, _ in m.successors(s)
                                 if m.label_parts(lab)[0] == tracker]
                assert bool(tracker_moves) is enabled, policy
                checked += 1
            queue.extend(t for _lab, t in m.successors(s))
        assert checked, policy


def test_presets_only_use_known_knob_values():
    for p in PRESETS.values():
        for knob, value in p.knobs:
            assert value in KNOBS[knob].values, (p.name, knob, value)
