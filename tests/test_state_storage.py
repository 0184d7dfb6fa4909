"""States are stored as bytes of fixed-width fields (mmcheck.model.state): int32 while
every mask (one bit per value, frame or event) fits in 31 bits, int64 beyond; a field
written out of its range raises, it never wraps."""

import pytest

from mmcheck.engine import explorer
from mmcheck.model.model import MMModel
from mmcheck.model.policy import resolve
from mmcheck.scenario.loader import load_scenario_text


def writes(n):
    """One process storing to its page n times: every store is a new value."""
    body = "\n".join("        - write: X" for _ in range(n))
    return load_scenario_text("name: many-writes\npages:\n  X: present\nprocesses:\n  A:\n"
                              f"    threads:\n      main:\n{body}\n", "many-writes.yaml")


def final_state(m):
    res = explorer.explore(m)
    assert res.complete
    return res, [s for s in reachable(m) if m.is_final(s)]


def reachable(m):
    seen, todo = set(), list(m.initial_states())
    while todo:
        s = todo.pop()
        if s not in seen:
            seen.add(s)
            todo.extend(t for _l, t in m.successors(s))
    return seen


def test_fields_are_int32_while_every_mask_fits():
    m = MMModel(writes(3), resolve("v6.18"))
    assert m.L.typecode == "i"
    (s,) = m.initial_states()
    assert type(s) is bytes and len(s) == 4 * m.L.size
    assert list(m.decode(s)) == list(m.L.decode(s))


def test_more_values_than_a_31_bit_mask_holds_take_int64_fields():
    m = MMModel(writes(40), resolve("v6.18"))
    assert len(m.values) > 31 and m.L.typecode == "q"
    res, finals = final_state(m)
    assert not res.violations  # one process storing to its own page: nothing to break
    (last,) = finals
    view = m.view(last)
    assert m.values[view.pv(0, 0).ideal] == m.values[-1]  # the 40th store is what it reads
    assert view.pv(0, 0).legit >> (len(m.values) - 1) & 1  # a bit past 31 is set


def test_a_field_out_of_range_raises_instead_of_wrapping():
    m = MMModel(writes(40), resolve("v6.18"))
    # the same model forced to int32 fields: the legitimate-value mask outgrows them
    m.L.typecode = "i"
    m.cleared_thread = m.cleared_thread.__class__("i", m.cleared_thread)
    with pytest.raises(OverflowError):
        explorer.explore(m)
