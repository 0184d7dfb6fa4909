"""Knobs whose effect no verdict shows still change what the kernel does: each test here
fails if its knob is ignored."""

from __future__ import annotations

from collections import deque

from mmcheck import explorer
from mmcheck.kernel import WP_COPY_ALLOC
from mmcheck.loader import load_scenario, load_scenario_text
from mmcheck.model import MMModel
from mmcheck.policy import resolve
from mmcheck.state import TH_LOCK, TH_PHASE


def actions(path, policy):
    res = explorer.explore(MMModel(load_scenario(path), resolve(policy)))
    return {action for (_t, _pc, action) in res.label_counts}


def test_mprotect_writable_if_exclusive():
    """6.0+ (64fe24a3e05e): mprotect(PROT_WRITE) maps the exclusive page writable, so the
    write after the mprotect dance never faults; 5.19 still write-faults and reuses."""
    path = "scenarios/classics/pin_rw_mprotect_write.yaml"
    assert "do_wp_page -> wp_page_reuse" in actions(path, "v5.19")
    assert not any(a.startswith("do_wp_page") for a in actions(path, "v6.2"))


def test_clear_refs_takes_mmap_lock_for_write_from_5_11():
    """Before 5.11 clear_refs ran under mmap_lock (read), concurrently with a fault; 5.11
    ("fix clear_refs_write locking") waits for it."""
    sc = load_scenario_text("""
name: k
pages: {X: present}
processes:
  A:
    threads:
      writer:
        - fork: B
        - write: X
      tracker:
        - clear_refs
""", "k.yaml")
    for policy, enabled in (("v5.9", True), ("v5.11", False)):
        m = MMModel(sc, resolve(policy))
        writer, tracker = 0, 1
        seen, queue, checked = set(), deque(m.initial_states()), 0
        while queue:
            s = queue.popleft()
            if s in seen:
                continue
            seen.add(s)
            mid_fault = (s[m.th[writer] + TH_PHASE] == WP_COPY_ALLOC
                         and s[m.th[writer] + TH_LOCK])
            if mid_fault and s[m.th[tracker]] == 0:
                tracker_moves = [lab for lab, _ in m.successors(s) if lab[0] == tracker]
                assert bool(tracker_moves) is enabled, policy
                checked += 1
            queue.extend(t for _lab, t in m.successors(s))
        assert checked, policy
