"""op-expectations (a step property): what a scenario says an operation must return - a
uffd or mapping op's success or failure (`result: ok | error`), a pagemap read's bits
(`soft_dirty`, `uffd_wp`, `present`, `swapped`) - is what it returns.  This is how the
kernel selftests' own assertions become scenario expectations."""

from __future__ import annotations

from ..model import ghost, steps
from ..model.kernel.common import W_PAGEMAP
from .base import Property, register

_BITS = {"soft_dirty": ghost.PM_SOFT_DIRTY, "uffd_wp": ghost.PM_UFFD_WP,
         "present": ghost.PM_PRESENT, "swapped": ghost.PM_SWAP}
_FUNCTIONS = frozenset({"userfaultfd_register", "userfaultfd_unregister",
                        "mwriteprotect_range", "pagemap_read", "migrate_pages", "mremap",
                        "mmap_region"})


@register
class OpExpectations(Property):
    name = "op-expectations"
    kind = "step"
    description = "every operation returns what the scenario says it must (result, pagemap bits)"
    catches = "an operation behaving differently from the kernel's own tests"

    def compile(self, m):
        expecting = {(t, pc): op.expect for t, prog in enumerate(m.programs)
                     for pc, op in enumerate(prog) if op.expect}
        if not expecting:
            return None

        def check(s, label, nxt):
            t, pc, oid, _arg = m.label_parts(label)
            want = expecting.get((t, pc))
            out = steps.outcome(oid)
            if not want or out.function not in _FUNCTIONS:
                return None
            op = m.programs[t][pc]
            what = f"{m.thread_names[t]} {m.threads[t].program[pc].describe()}"
            for name, value in want:
                if name == "result":
                    got = "error" if steps.ERROR in out.tags else "ok"
                    if got != value:
                        return f"{what} returned {got} ({out.text}), expected {value}"
                else:
                    bits = nxt[m.wt[0][m.t_proc[t]][op.v] + W_PAGEMAP]
                    if bool(bits & _BITS[name]) != value:
                        return (f"{what} read {name.replace('_', '-')} "
                                f"{int(bool(bits & _BITS[name]))}, expected {int(value)}")
            return None

        return check
