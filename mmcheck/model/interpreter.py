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
    l = list(s)
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
    l = list(s)
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
    l = list(s)
    op_done(m, l, t)
    return DEVICE.read, l


# ----------------------------------------------------------------------------- sync
@starts("wait")
def wait_for_exit(m, s, t, op):
    """wait4: returns once the child has exited."""
    if s[m.proc[op.target] + P_STATUS] != EXITED:
        return None
    l = list(s)
    op_done(m, l, t)
    return SCENARIO.wait, l


@starts("signal")
def signal_event(m, s, t, op):
    l = list(s)
    l[m.events_ix] |= op.bit
    op_done(m, l, t)
    return SCENARIO.signal, l


@starts("await")
def await_event(m, s, t, op):
    if not s[m.events_ix] & op.bit:
        return None
    l = list(s)
    op_done(m, l, t)
    return SCENARIO.await_, l


# ----------------------------------------------------------------------------- menus
def menu_choose(m, s, t):
    """An idle menu thread starts any enabled instantiation (its first step runs now):
    [(label, successor)]."""
    out = []
    b = m.th[t]
    p = m.t_proc[t]
    refix = m.refix
    held = sum(1 for r in m.menu_refs_of[p] if s[refix[r]])
    prog = m.programs[t]
    for i in range(1, len(prog)):
        op = prog[i]
        if op.max_uses is not None and s[op.counter_ix] >= op.max_uses:
            continue
        kind = op.kind
        if kind == "gup":
            if s[refix[op.ref]] or held >= m.menu_ref_limit:
                continue
        elif kind in ("put", "device_read", "device_write"):
            if not s[refix[op.ref]]:
                continue
        elif kind == "fork":
            # the lowest unborn process slot is the child (the others are the same)
            if s[m.proc[op.child] + P_STATUS] != UNBORN or any(
                    s[m.proc[c] + P_STATUS] == UNBORN for c in range(1, op.child)):
                continue
        l0 = list(s)
        l0[b + T_PC] = i
        if op.max_uses is not None or kind == "fork":  # unbounded ones are not counted
            l0[op.counter_ix] += 1
        r = op.start(m, tuple(l0), t, op)
        if r is None:
            continue
        if type(r) is list:
            out.extend((m.label(t, i, oid, arg), tuple(l)) for (oid, arg), l in r)
        else:
            out.append((m.label(t, i, r[0]), tuple(r[1])))
    return out


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
