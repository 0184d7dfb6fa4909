"""The scenario interpreter: what the scenario's own operations do besides kernel paths
(GUP references released and used by devices, events, waiting for a child), menu threads
choosing their next instantiation, and when an execution is finished."""

from __future__ import annotations

from . import ghost
from .kernel.common import (EXITED, F_CONTENT, FORKING, P_STATUS, R_DETACHED, RUNNING, T_PC,
                            T_STEP, UNBORN, op_done, put)
from .steps import DEVICE, KILLED, REFERENCE, SCENARIO, starts



# ----------------------------------------------------------------------------- references
def ref_pending(m, s, r):
    """True while the GUP that takes reference r has not run yet (ops on r wait for it)."""
    t, pc = m.ref_site[r]
    return s[m.th[t] + T_PC] <= pc and s[m.th[t] + T_STEP] != KILLED and \
        s[m.proc[m.t_proc[t]] + P_STATUS] != EXITED


@starts("put")
def put_reference(m, s, t, op):
    """put_page (FOLL_GET) / unpin_user_page (FOLL_PIN: -GUP_PIN_COUNTING_BIAS)."""
    r = op.ref
    held = s[m.refix[r]]
    if not held and ref_pending(m, s, r):
        return None
    l = s[:]
    l[m.refix[r]] = l[m.refix[r] + R_DETACHED] = 0
    if held > 0:
        put(m, l, held - 1, m.ref_bias[r])
    op_done(m, l, t)
    if not held:
        return REFERENCE.not_held, l
    return (REFERENCE.unpin if m.ref_pin[r] else REFERENCE.put), l


@starts("device_write")
def device_write(m, s, t, op):
    """DMA into the page behind the reference: the owner asked for its page at that
    address to be written, so the value becomes the owner's data there."""
    r = op.ref
    held = s[m.refix[r]]
    if not held and ref_pending(m, s, r):
        return None
    l = s[:]
    if held > 0:
        val = op.val if op.epoch_ix is None else op.val + s[op.epoch_ix]
        l[m.fr[held - 1] + F_CONTENT] = val
        ghost.device_store(m, l, r, val)
    op_done(m, l, t)
    return (DEVICE.write if held > 0 else DEVICE.write_nothing), l


@starts("device_read")
def device_read(m, s, t, op):
    """DMA (or a pipe reader) reads through the reference; what it can see is judged by
    the properties in every state, so the read itself changes nothing."""
    if not s[m.refix[op.ref]] and ref_pending(m, s, op.ref):
        return None
    l = s[:]
    op_done(m, l, t)
    return DEVICE.read, l


# ----------------------------------------------------------------------------- sync
@starts("wait")
def wait_for_exit(m, s, t, op):
    """wait4: returns once the child has exited."""
    if s[m.proc[op.target] + P_STATUS] != EXITED:
        return None
    l = s[:]
    op_done(m, l, t)
    return SCENARIO.wait, l


@starts("signal")
def signal_event(m, s, t, op):
    l = s[:]
    l[m.events_ix] |= op.bit
    op_done(m, l, t)
    return SCENARIO.signal, l


@starts("await")
def await_event(m, s, t, op):
    if not s[m.events_ix] & op.bit:
        return None
    l = s[:]
    op_done(m, l, t)
    return SCENARIO.await_, l


# ----------------------------------------------------------------------------- menus
def menu_choose(m, s, t):
    """An idle menu thread starts any enabled instantiation (its first step runs now):
    [(label, successor)]."""
    out = []
    append = out.append
    pc_ix, proc_refs, limit, table = m.menu_table[t]
    held = 0
    for ix in proc_refs:
        if s[ix]:
            held += 1
    lpc, larg, loid = m.label_pc, m.label_arg, m.label_oid
    # one copy of s for every instantiation: each start step only reads it (steps copy
    # the state they are given) and the fields set here are put back after each
    l0 = s[:]
    for i, op, start, guard, guard_ix, counter_ix, max_uses, lower_children in table:
        if max_uses is not None and s[counter_ix] >= max_uses:
            continue
        if guard == _GUP:
            if s[guard_ix] or held >= limit:
                continue
        elif guard == _HELD:
            if not s[guard_ix]:
                continue
        elif guard == _FORK:
            # the lowest unborn process slot is the child (the others are the same)
            if s[guard_ix] != UNBORN or any(s[c] == UNBORN for c in lower_children):
                continue
        l0[pc_ix] = i
        if counter_ix is not None:  # unbounded ones are not counted
            l0[counter_ix] += 1
        # the start step reads l0 and returns a copy (no step keeps, hashes or slices the
        # state it is given), so it needs no array of its own
        r = start(m, l0, t, op)
        if counter_ix is not None:
            l0[counter_ix] = s[counter_ix]
        if r is None:
            continue
        base = t + lpc * i
        if type(r) is list:
            for (oid, arg), l in r:
                append((base + larg * arg + loid * oid, l.tobytes()))
        else:
            append((base + loid * r[0], r[1].tobytes()))
    return out


# menu guards (compile_menu_table); compared by value: a model pickled to a Ray actor
# carries copies of them
_NONE, _GUP, _HELD, _FORK = range(4)


def compile_menu_table(m):
    """Per menu thread: (its pc position, its process's reference positions, the menu's
    reference limit, per instantiation (index, op, start, guard, guard position, counter
    position when counted, max uses, the status positions of lower child slots)) - the
    guards of `menu_choose`, resolved once."""
    tables = []
    for t in range(len(m.threads)):
        if not m.is_menu[t]:
            tables.append(None)
            continue
        p = m.t_proc[t]
        rows = []
        prog = m.programs[t]
        for i in range(1, len(prog)):
            op = prog[i]
            kind = op.kind
            guard, guard_ix = _NONE, None
            lower = ()
            if kind == "gup":
                guard, guard_ix = _GUP, m.refix[op.ref]
            elif kind in ("put", "device_read", "device_write"):
                guard, guard_ix = _HELD, m.refix[op.ref]
            elif kind == "fork":
                guard, guard_ix = _FORK, m.proc[op.child] + P_STATUS
                lower = tuple(m.proc[c] + P_STATUS for c in range(1, op.child))
            counted = op.max_uses is not None or kind == "fork"
            rows.append((i, op, op.start, guard, guard_ix, op.counter_ix if counted else None,
                         op.max_uses, lower))
        tables.append((m.th[t] + T_PC, [m.refix[r] for r in m.menu_refs_of[p]],
                       m.menu_ref_limit, rows))
    return tables


def is_final(m, s):
    """Every thread of every live process has finished its program (background actors
    need not have used up their budget; an idle menu thread is finished).  A thread
    waiting in uffd_read counts as finished too: once every other thread is done no fault
    can be queued any more, and the process's exit (exit_group) ends the monitor, as it
    ends a real one waiting for a fault that never comes (the write escaped)."""
    for t in range(m.n_program_threads):
        status = s[m.status_ix[t]]
        pc = s[m.th[t] + T_PC]
        if m.is_menu[t] and status == RUNNING:
            if pc and pc < m.t_len[t]:
                return False  # inside an op
            continue
        if status == FORKING or (status == RUNNING and pc < m.t_len[t]
                                 and not _waits_in_uffd_read(m, s, t, pc)):
            return False
    return True


def _waits_in_uffd_read(m, s, t, pc):
    # a queued message means a faulting thread waits in handle_userfault: not final anyway
    return m.programs[t][pc].kind == "uffd_read" and not s[m.th[t] + T_STEP]
