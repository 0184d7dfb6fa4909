"""Symmetry reduction of menu scenarios: interchangeable processes and pages.

In a menu scenario every process created by the menu (P1..Pn-1) runs the same menu, and
every anonymous page of the same kind (small / THP / PTE-mapped THP / hugetlb) and initial
state is offered to the same templates.  Renaming such processes among themselves, or
such pages among themselves, maps executions to executions, so states that differ only by
such a renaming are the same state.  A renaming moves everything that names a process or
a page: the process records and page-table rows, the processes' menu threads and the
program counter of the instantiation each is running (its page, reference slot and fork
child), the reference slots (owned by a process, on a page), and the value ids of writes
("P1:X/e0" becomes "P2:Y/e0") wherever a value is stored: ideal memory, the legitimate-
value masks, page and swap-slot contents.

Which renamings are symmetries of the transition relation depends on the state:
  - processes: only those already born.  A fork's child is the lowest unborn process
    (mmcheck.scenario.menu), so born children always form a prefix P1..Pk and any permutation of
    that prefix keeps it one.  Nothing else depends on a process's index (try_to_unmap
    may visit the mappings in any order, mmcheck.model.kernel.swap).
  - pages: only once no fork can run any more (none in progress, and the fork templates
    used up or no unborn process left).  copy_page_range walks the page tables in address
    order, one PT lock per page, so before or during a fork the pages' order matters: with
    X written and Z not, the fork copies the written page first; with Z written, last, and
    other threads see different windows.  After the last fork, nothing walks pages in
    order (exit_mmap and clear_refs take one step for all pages).
The allowed renamings at a state are the same at every renamed image of it, so "same
state up to an allowed renaming" is an equivalence, and once page renamings are allowed
they stay allowed on every successor; the canonical form below is exact.

The canonical form is the minimum, over the allowed renamings g, of (K(g s), frame-
canonical(g s)), where K is a cheap key that frame renaming does not change (process
records and VMA protections), so most renamings are ruled out before the frame
canonicalisation (`Layout.canonical`) runs on them.  Frames and swap slots are renamed by
`Layout`; this module only adds the process and page renamings on top.
"""

from __future__ import annotations

import itertools
import operator
from array import array

from ..scenario import menu as menu_mod
from .kernel.common import FORKING, P_STATUS, UNBORN, V_VMA
from .state import (PC, PROC, REF, THREAD, THREAD_REC, TRACKING, VALUE, VALUE_MASK, VPAGE,
                    getter as _getter, inverse)


class Renaming:
    """One allowed renaming, precomputed: where every field of the renamed state comes
    from, and the maps of the fields whose values name processes or pages."""

    __slots__ = ("procs", "pages", "gather", "key", "value_map", "value_pos", "mask_pos",
                 "pc_map", "pc_pos", "masks")

    def __init__(self, procs, pages):
        self.procs, self.pages = procs, pages  # old index -> new index
        self.masks = {}  # legitimate-value mask memo: old mask -> renamed mask

    def rename_mask(self, mask):
        out = self.masks.get(mask)
        if out is None:
            out = 0
            vm = self.value_map
            m, i = mask, 0
            while m:
                if m & 1:
                    out |= 1 << vm[i]
                m >>= 1
                i += 1
            self.masks[mask] = out
        return out

    def apply(self, s):
        out = list(self.gather(s))
        vm = self.value_map
        for i in self.value_pos:
            out[i] = vm[out[i]]
        rename_mask = self.rename_mask
        for i in self.mask_pos:
            if out[i]:
                out[i] = rename_mask(out[i])
        pcm = self.pc_map
        for i in self.pc_pos:
            out[i] = pcm[out[i]]
        return array(s.typecode, out)


class Symmetry:
    """The process and page renamings of one compiled menu model (`MMModel`)."""

    def __init__(self, model):
        self.m = m = model
        L = m.L
        self.L = L
        self.frames_canonical_fields = m.frames.canonical_fields
        n = len(m.procs)
        self.children = list(range(1, n))
        # pages are interchangeable when their spec is the same and they are private
        # anonymous memory (a page mapping a memory object is tied to that object)
        classes: dict = {}
        for v, pg in enumerate(m.scenario.pages):
            if m.pv_object[0][v] >= 0:
                continue
            key = (pg.get("kind", "small"), pg.state)
            classes.setdefault(key, []).append(v)
        self.page_classes = [vs for vs in classes.values() if len(vs) > 1]
        self.menu_threads = [t for t in range(m.n_program_threads) if m.is_menu[t]]
        self._status = _getter([m.proc[c] + P_STATUS for c in self.children])
        menu = m.scenario.menu
        self._fork_counters = [(m.counter_base + g, tpl.max)
                               for g, tpl in enumerate(menu.templates) if tpl.kind == "fork"]
        self._identity_key = _getter(self._key_positions(list(range(n)),
                                                         list(range(m.n_vpages))))
        self._ref_keys = [  # (owner, template, vpage) of every menu reference slot
            (m.ref_owner[r], m.menu_instances[t][pc].template, m.ref_vpage[r])
            for r, (t, pc) in enumerate(m.ref_site)]
        self._instances = self._instance_table()
        self._values = self._value_table()
        self._by_status: dict = {}

    # ------------------------------------------------------------------ description
    @property
    def trivial(self) -> bool:
        return len(self.children) < 2 and not self.page_classes

    def describe(self) -> str:
        """One line for `mmcheck run`: what is interchangeable, and the group's order."""
        m = self.m
        parts = []
        if len(self.children) >= 2:
            parts.append("processes " + ", ".join(m.procs[c] for c in self.children))
        for vs in self.page_classes:
            parts.append("pages " + ", ".join(m.vpages[v] for v in vs))
        if not parts:
            return "no interchangeable processes or pages"
        order = _factorial(len(self.children))
        for vs in self.page_classes:
            order *= _factorial(len(vs))
        return "interchangeable " + "; ".join(parts) + f" (up to {order} renamings)"

    # ------------------------------------------------------------------ canonical form
    def canonical(self, state: bytes) -> bytes:
        """The canonical representative of a stored state under process, page, frame and
        slot renaming."""
        s = self.L.decode(state)
        renamings = self.renamings(s)
        canon = self.frames_canonical_fields
        if not renamings:
            c = canon(s)
            return state if c is s else c.tobytes()
        best_key = self._identity_key(s)
        best = None  # None: the identity
        tied = None  # the other renamings with the same key as `best`
        for g in renamings:
            k = g.key(s)
            if k < best_key:
                best_key, best, tied = k, g, None
            elif k == best_key:
                if tied is None:
                    tied = [g]
                else:
                    tied.append(g)
        out = canon(s) if best is None else canon(best.apply(s))
        if tied is not None:
            for g in tied:
                c = canon(g.apply(s))
                if c < out:  # arrays compare field by field, as the tuples did
                    out = c
        return out.tobytes()

    def renamings(self, s) -> list:
        """The allowed non-identity renamings at s (see the module doc)."""
        statuses = self._status(s)
        out = self._by_status.get(statuses)
        if out is None:
            out = self._renamings_for(statuses)
        if type(out) is tuple:  # (before, after) the last fork
            out = out[self._forks_used_up(s)]
        return out

    def _renamings_for(self, statuses):
        """Memoised on the children's statuses: the renamings, or a (while a fork may
        still run, after the last fork) pair when that depends on the fork counters."""
        born = statuses.index(UNBORN) if UNBORN in statuses else len(statuses)
        if not self.page_classes or FORKING in statuses or born == len(statuses):
            out = self._build(born, pages=bool(self.page_classes) and FORKING not in statuses)
        else:
            out = (self._build(born, pages=False), self._build(born, pages=True))
        self._by_status[statuses] = out
        return out

    def _forks_used_up(self, s) -> bool:
        for ix, most in self._fork_counters:
            if most is None or s[ix] < most:
                return False
        return True

    # ------------------------------------------------------------------ construction
    def _build(self, born, pages):
        m = self.m
        n, V = len(m.procs), m.n_vpages
        movable = self.children[:born]
        page_groups = self.page_classes if pages else []
        proc_perms = [_perm_map(n, movable, p) for p in itertools.permutations(movable)]
        page_perms = [list(range(V))]
        for vs in page_groups:
            page_perms = [_compose(pm, _perm_map(V, vs, p)) for pm in page_perms
                          for p in itertools.permutations(vs)]
        out = []
        for procs in proc_perms:
            for pages in page_perms:
                if procs == list(range(n)) and pages == list(range(V)):
                    continue
                out.append(self._renaming(procs, pages))
        return out

    def _renaming(self, procs, pages):
        """Precompute the renaming: old process p -> procs[p], old vpage v -> pages[v]."""
        m, L = self.m, self.L
        g = Renaming(procs, pages)
        src = list(range(L.size))  # src[new position] = old position
        # every record indexed by processes, virtual pages, threads or references moves
        # (mmcheck.model.state: a record's index says what it belongs to)
        maps = {PROC: procs, VPAGE: pages, THREAD: self._thread_map(procs),
                REF: self._ref_map(procs, pages),
                TRACKING: list(range(L.sizes[TRACKING]))}
        for rec in L.schema.values():
            if not rec.index or not all(d in maps for d in rec.index):
                continue
            targets = {ix: b for ix, b in L.instances(rec.name)}
            for ix, b in targets.items():
                new = targets[tuple(maps[d][i] for d, i in zip(rec.index, ix))]
                for i in range(rec.size):
                    src[new + i] = b + i
        g.gather = operator.itemgetter(*src)
        g.key = _getter(self._key_positions(inverse(procs), inverse(pages)))
        g.pc_map = self._pc_map(procs, pages)
        g.value_map = self._value_map(procs, pages, g.pc_map)
        # what names a process or page inside a field, from the state schema's kinds
        g.value_pos = L.positions(kind=VALUE)
        g.mask_pos = L.positions(kind=VALUE_MASK)
        menu_pcs = {m.th[t] for t in self.menu_threads}
        g.pc_pos = [i for i in L.positions(kind=PC) if i - THREAD_REC.offset["pc"] in menu_pcs]
        return g

    def _key_positions(self, procs_at, pages_at):
        """Positions of K: for each new process q (old procs_at[q]), its record, then the
        VMA protection of each new vpage w (old pages_at[w])."""
        m = self.m
        pos = []
        for q in range(len(m.procs)):
            p = procs_at[q]
            pos.extend(m.proc[p] + i for i in range(m.L.schema["proc"].size))
        for q in range(len(m.procs)):
            p = procs_at[q]
            pos.extend(m.pv[p][pages_at[w]] + V_VMA for w in range(m.n_vpages))
        return pos

    def _thread_map(self, procs):
        """Old thread -> new thread: a menu process's thread moves with it; background
        actors stay."""
        m = self.m
        out = list(range(len(m.threads)))
        for t in self.menu_threads:
            out[t] = m.proc_threads[procs[m.t_proc[t]]][0]
        return out

    def _ref_map(self, procs, pages):
        index = {key: r for r, key in enumerate(self._ref_keys)}
        return [index[(procs[p], g, pages[v])] for (p, g, v) in self._ref_keys]

    def _instance_table(self):
        """Per program index: (template, vpage or None, reference key or None, child or
        None).  Menu programs are aligned: index i is the same instantiation in every
        process, up to the owner of its reference."""
        m = self.m
        t0 = self.menu_threads[0]
        table = [None]
        for inst in m.menu_instances[t0][1:]:
            v = m.vpage_index[inst.page] if inst.page is not None else None
            ref = None
            if inst.ref is not None:
                ref = self._ref_keys[m.ref_index[inst.ref]][1:]  # (template, vpage)
            child = m.proc_index[inst.child] if inst.child is not None else None
            table.append((inst.template, v, ref, child))
        return table

    def _pc_map(self, procs, pages):
        index = {key: i for i, key in enumerate(self._instances)}
        out = [0]
        for key in self._instances[1:]:
            g, v, ref, child = key
            out.append(index[(g, None if v is None else pages[v],
                              None if ref is None else (ref[0], pages[ref[1]]),
                              None if child is None else procs[child])])
        # a thread past its program (a killed process) keeps its pc
        out.extend(range(len(out), len(out) + 2))
        return out

    def _value_table(self):
        """Per value id: what it names, as a key renamings act on."""
        m = self.m
        keys = [("fixed", i) for i in range(len(m.values))]
        for (p, pname), val in m.init_value.items():
            keys[val] = ("init", p, m.vpage_index[pname])
        epochs = menu_mod.fork_epochs(m.scenario.menu)  # each op has this many, in a row
        for (t, pc), base in m.op_value.items():
            for e in range(epochs):
                keys[base + e] = ("op", t, pc, e)
        return keys

    def _value_map(self, procs, pages, pc_map):
        index = {key: i for i, key in enumerate(self._values)}
        threads = self._thread_map(procs)
        out = []
        for key in self._values:
            if key[0] == "init":
                key = ("init", procs[key[1]], pages[key[2]])
            elif key[0] == "op":
                _, t, pc, e = key
                key = ("op", threads[t], pc_map[pc], e)
            out.append(index[key])
        return out


def _perm_map(n, items, image):
    """The map old -> new on range(n) sending items[i] to image[i], others fixed."""
    out = list(range(n))
    for a, b in zip(items, image):
        out[a] = b
    return out


def _compose(first, second):
    """Apply `first`, then `second` (they move disjoint sets here)."""
    return [second[x] for x in first]


def _factorial(k):
    out = 1
    for i in range(2, k + 1):
        out *= i
    return out
