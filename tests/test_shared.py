"""Shared memory (issue 9): memory objects, MAP_SHARED mappings, and what the properties
mean for them.  Each claim of docs/properties.md about shared memory is shown here: a
shared write is never a leak, a private COW never reaches the file, and a write lost in a
shared page is caught (the last two against deliberately broken kernels)."""

from __future__ import annotations

import textwrap

import pytest

from mmcheck.model import codec
from mmcheck.model.kernel import fault
from mmcheck.model.policy import PRESETS, resolve
from mmcheck.model.model import MMModel
from mmcheck.model import rules, steps
from mmcheck.report.runner import run_policy
from mmcheck.scenario.loader import load_scenario, load_scenario_text
from mmcheck.errors import ScenarioError
from support import reachable_raw


def verdicts(run):
    return {v.name: v.verdict for v in run.verdicts}


@pytest.mark.parametrize("policy", list(PRESETS))
def test_shared_anonymous_memory_is_never_copied(policy):
    """MAP_SHARED|MAP_ANONYMOUS across fork: no COW copy in any execution, and every
    property holds (each process reads the other's writes: no-lost-write)."""
    run = run_policy(load_scenario("scenarios/shared/shared_anon_fork.yaml"), policy)
    assert run.complete and run.copies == 0
    assert set(verdicts(run).values()) == {"holds"}
    assert run.coverage.get(steps.COPY_PAGE_RANGE.skip)  # fork left the page table alone


def test_a_shared_write_is_visible_to_the_other_process_and_not_a_leak():
    sc = load_scenario("scenarios/shared/memfd_shared_two_processes.yaml")
    m = MMModel(sc, resolve("v5.19"))
    a, s = m.proc_index["A"], m.vpage_index["S"]
    seen = set()
    for st in reachable_raw(m):
        pte = m.view(st).pte(a, s)
        if codec.is_present(pte):
            seen.add(m.value_name(m.view(st).frame(codec.frame(pte)).content))
    assert "B.main#2" in seen  # A can read what B stored through its shared mapping
    assert set(verdicts(run_policy(sc, "v5.19")).values()) == {"holds"}


PRIVATE_WRITE = """
name: private-write
objects: {F: {type: memfd}}
pages:
  X: {state: present, object: F}
  S: {state: none, object: F, shared: true, prot: r}
processes:
  A:
    program:
      - write: X
      - read: S
"""


def test_a_private_cow_never_reaches_the_file(monkeypatch):
    sc = load_scenario_text(PRIVATE_WRITE)
    assert set(verdicts(run_policy(sc, "v5.7")).values()) == {"holds"}
    # a kernel that reused page cache pages on a private write fault (no PageAnon test in
    # the reuse decision): the write lands in the memfd, and no-leak says so
    monkeypatch.setattr(rules, "PG_FILE", 0)
    run = run_policy(sc, "v5.7")
    bad = {v.name: v.reason for v in run.verdicts if v.verdict == "violated"}
    assert "reached the object" in bad["no-leak"]
    assert "no-lost-write" in bad  # S reads the private data, not the memfd's


SHARED_WRITE = """
name: shared-write
objects: {F: {type: file}}
pages:
  S: {state: present, object: F, shared: true}
processes:
  A:
    program:
      - write: S
      - read: S
"""


def test_a_write_lost_in_a_shared_page_is_caught(monkeypatch):
    sc = load_scenario_text(SHARED_WRITE)
    run = run_policy(sc, "v6.2")
    assert set(verdicts(run).values()) == {"holds"}
    assert run.coverage.get(steps.DO_WP_PAGE.shared)  # the write-notify fault was taken
    # a kernel that COWed a write fault in a shared mapping: the store goes to a private
    # copy, the file never gets it
    monkeypatch.setattr(fault, "VM_SHARED", 0)
    run = run_policy(sc, "v6.2")
    bad = {v.name: v.reason for v in run.verdicts if v.verdict == "violated"}
    assert set(bad) == {"no-lost-write"}, bad
    assert "latest data is A.main#1" in bad["no-lost-write"]


def test_pinned_shmem_page_is_unmapped_by_reclaim_but_kept():
    """shrink_page_list unmaps a pinned shmem page (no PageAnon pin check before the unmap)
    and then keeps it in the page cache: the pin stays coherent."""
    run = run_policy(load_scenario("scenarios/shared/shmem_reclaim_pinned.yaml"), "v5.11")
    assert run.coverage.get(steps.TRY_TO_UNMAP.file_one)
    assert run.coverage.get(steps.SHMEM_WRITEPAGE.keep)
    assert verdicts(run)["pin-coherent"] == "holds"


def test_shmem_page_in_swap_is_in_the_page_cache_entry_not_the_pte():
    sc = load_scenario("scenarios/shared/shmem_swap_roundtrip.yaml")
    m = MMModel(sc, resolve("v6.2"))
    swapped = False
    for st in reachable_raw(m):
        v = m.view(st)
        for p in range(len(m.procs)):
            for x in range(m.n_vpages):
                assert not codec.is_swap(v.pte(p, x))  # shmem never swaps through a PTE
        swapped = swapped or codec.is_swap(v.object(0).entry)
    assert swapped


def test_memfd_shared_and_private_in_one_scenario():
    sc = load_scenario("scenarios/shared/memfd_private_and_shared.yaml")
    m = MMModel(sc, resolve("v5.19"))
    assert m.objects == ["F"] and m.pv_object[0] == [0, 0]
    assert m.vpage_shared == [True, False]
    run = run_policy(sc, "v5.19")
    assert set(verdicts(run).values()) == {"holds"} and run.copies == 1


def test_shared_anonymous_pages_of_unrelated_processes_are_different_objects():
    sc = load_scenario_text(textwrap.dedent("""\
        name: two-roots
        pages: {S: {state: present, shared: true}}
        processes:
          A: {program: [{write: S}]}
          B: {program: [{fork: {child: C, program: [{read: S}]}}]}
        """))
    m = MMModel(sc, resolve("v5.19"))
    assert m.objects == ["A:S@shm", "B:S@shm"]
    assert m.pv_object == [[0], [1], [1]]  # C shares B's object


BAD = [
    ("objects: {F: {type: ramfs}}\npages: {X: {state: none, object: F}}",
     "objects.F.type: must be one of memfd, shmem, file, memfd_hugetlb"),
    ("objects: {F: {state: present}}\npages: {X: none}", "missing required key 'type'"),
    ("pages: {X: {state: none, object: G}}", "unknown object 'G'"),
    ("objects: {F: {type: memfd}}\npages: {X: {state: none, object: F, backing: file}}",
     "give `object:` or `backing:`, not both"),
    ("objects: {F: {type: memfd}}\npages: {X: {state: zero, object: F}}",
     "the zero page is private anonymous memory"),
    ("objects: {F: {type: memfd}}\npages: {X: {state: none, object: F, kind: thp}}",
     "cannot be a THP"),
    ("objects: {F: {type: memfd}}\npages: {X: {state: none, object: F, kind: hugetlb}}",
     "is not hugetlb"),
    ("objects: {F: {type: memfd, state: none}}\npages: {X: {state: present, object: F}}",
     "object 'F' is a hole"),
    ("objects: {F: {type: memfd_hugetlb, state: none}}\npages: {X: none}",
     "a memfd_hugetlb object is present"),
    ("pages: {X: {state: zero, shared: true}}", "the zero page is private anonymous memory"),
    ("pages: {X: {state: none, prot: rx}}", "must be one of rw, r"),
]


@pytest.mark.parametrize("body,message", BAD)
def test_bad_objects_and_mappings_get_one_line_errors(body, message):
    text = f"name: bad\n{body}\nprocesses: {{A: {{program: [exit]}}}}\n"
    with pytest.raises(ScenarioError) as err:
        load_scenario_text(text, "bad.yaml")
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith("bad.yaml:")


def test_hugetlb_memfd_pages_take_the_hugetlb_class():
    sc = load_scenario("scenarios/shared/hugetlb_memfd_fork.yaml")
    assert {pg.get("kind") for pg in sc.pages} == {"hugetlb"}
    m = MMModel(sc, resolve("v5.19"))
    st = m.initial_states()[0]
    assert m.view(st).vma(0, 0) & codec.VM_HUGETLB
