"""The MM model's ample sets for partial-order reduction (mmcheck.engine.por).

A step is put in an ample set only if it is *safe* (C1, C2 of mmcheck.engine.por): it
commutes with every step every other thread can still take, nobody can disable it, and
it changes nothing a property reads.  Kernel steps never qualify: each one reads or
writes page tables, page counts, flags, swap or lock fields some other thread's step
(or a background actor's, or refcount-sane) reads too.  What qualifies are the scenario's
synchronisation ops once they can no longer block, in a thread of a program (not a menu,
whose program counter goes back to idle):

- ``await`` of an event already signalled (events are only ever set: interpreter.signal),
- ``wait`` for a child that has exited (EXITED is final: no op revives a process),
- ``device_read`` through a reference whose GUP has run (ref_pending stays false: the
  GUP thread's program counter only grows, KILLED and EXITED are final); it reads
  nothing and does nothing (the properties judge what a device sees in every state).

Each is one transition that only advances the thread's program counter (op_done; its
step and fields are 0 before and after: it is a one-step op).  Who else reads or writes
that counter: `exit_mmap_unmap` of a sibling thread ends the thread (sets its counter),
so a thread qualifies only while no sibling can still exit; `ref_pending` reads it, but
an await/wait/device_read is never a GUP site, so its value does not change; the uffd
waiters read the counter of a thread in UFFD_WAIT only.  No property reads a program
counter except through the step a thread is in (refcount-sane's bias of a held step;
step 0 holds nothing), and `is_final` needs the thread done, which it is not before the
step, so no final check judges the states where the step is still to come.
"""

from __future__ import annotations

from .interpreter import ref_pending
from .kernel.common import EXITED, P_STATUS, RUNNING, T_PC, T_STEP

AWAIT, WAIT, DEVICE_READ = "await", "wait", "device_read"


def compile_reduction(m) -> list:
    """Per scripted thread with a safe op: (thread, its base, status position, per pc the
    op's guard or None, sibling exits).  The guard: (AWAIT, event bit), (WAIT, the child's
    status position) or (DEVICE_READ, reference) - a device_read only through a reference a
    scripted GUP takes (a menu's pc, which ref_pending reads, goes back to idle).  Sibling
    exits: per sibling thread with an exit op, (its base, the first pc from which it can no
    longer exit: past its last exit, or a menu's length, reached only when it is killed or
    its process exits)."""
    table = []
    for t in range(m.n_program_threads):
        if m.is_menu[t] or m.t_proc[t] < 0:
            continue
        guards = []
        for op in m.programs[t]:
            site = m.ref_site[op.ref] if op.kind == DEVICE_READ else None
            guards.append((AWAIT, op.bit) if op.kind == AWAIT else
                          (WAIT, m.proc[op.target] + P_STATUS) if op.kind == WAIT else
                          (DEVICE_READ, op.ref) if site is not None and not m.is_menu[site[0]]
                          else None)
        if not any(guards):
            continue
        siblings = []
        for u in m.proc_threads[m.t_proc[t]]:
            if u == t:
                continue
            if m.is_menu[u]:
                if any(op.kind == "exit" for op in m.programs[u][1:]):
                    siblings.append((m.th[u], m.t_len[u]))
                continue
            exits = [pc for pc, op in enumerate(m.programs[u]) if op.kind == "exit"]
            if exits:
                siblings.append((m.th[u], exits[-1] + 1))
        table.append((t, m.th[t], m.status_ix[t], guards, siblings))
    return table


def ample_sets(m, table, s, transitions):
    """The safe steps of `s`, one thread's at a time, as positions in `transitions`."""
    for t, b, status_ix, guards, siblings in table:
        pc = s[b + T_PC]
        if pc >= len(guards) or s[b + T_STEP] or s[status_ix] != RUNNING:
            continue
        guard = guards[pc]
        if guard is None:
            continue
        kind, arg = guard
        if kind == AWAIT:
            if not s[m.events_ix] & arg:
                continue
        elif kind == WAIT:
            if s[arg] != EXITED:
                continue
        elif ref_pending(m, s, arg):
            continue
        if any(s[u + T_PC] < last for u, last in siblings):
            continue  # a sibling may still exit (and end this thread)
        positions = [i for i, (label, _succ) in enumerate(transitions)
                     if label % m.label_pc == t]
        if positions and len(positions) < len(transitions):
            yield positions
