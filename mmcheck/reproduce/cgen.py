"""A schedule as a self-contained C program (TAP output) that runs it on the real kernel.

Shape of the program (docs/reproduce.md): `main` checks the facilities the scenario needs
(skipping with the reason when one is missing), then runs `--attempts` attempts.  In an
attempt a coordinator process creates the memory objects and one pipe per scenario thread,
forks the scenario's initial processes (which map their pages as the scenario declares
them), then releases the schedule's points one at a time through the pipes and waits
until the released threads report back, as the kernel's cow.c orders parent and child.
Scenario forks are real forks; threads are pthreads.  After the last point every live
process observes its pages and the references it holds, then the coherent pins are
probed (a device write through the pin must show in the page table).  Every observation
is judged against the model's ideal memory at that point (values are page-filling bytes,
one per value id); what a process sees that is not its data is a leak, an old value of
its own is a lost write, a pin whose device view differs from the page table is incoherent.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from ..model.model import MMModel
from ..model.steps import SEGV, outcome
from .schedule import Expect, Schedule

RUNTIME = os.path.join(os.path.dirname(__file__), "runtime.c")
OBSERVABLE = ("no-leak", "pin-coherent", "no-lost-write", "op-expectations", "wp-reported",
              "wp-unpopulated")
C_PROP = {"no-leak": "P_NO_LEAK", "pin-coherent": "P_PIN_COHERENT",
          "no-lost-write": "P_NO_LOST_WRITE", "op-expectations": "P_OP_EXPECTATIONS",
          "wp-reported": "P_WP_REPORTED", "wp-unpopulated": "P_WP_UNPOPULATED"}
PAGE_OPS = ("read", "write", "munmap", "dontneed", "mprotect", "pageout", "gup", "uffd_register",
            "uffd_unregister", "uffd_wp", "uffd_unwp", "uffd_wake", "pagemap_read", "mremap",
            "migrate", "mmap")
UFFD_OPS = ("uffd_register", "uffd_unregister", "uffd_wp", "uffd_unwp", "uffd_read",
            "uffd_wake")
C_FEATURE = {"event_fork": "UFFD_FEATURE_EVENT_FORK", "event_remap": "UFFD_FEATURE_EVENT_REMAP",
             "wp_unpopulated": "UFFD_FEATURE_WP_UNPOPULATED"}
NOT_OBSERVABLE = "not observable from user space (kernel-internal counts and flags)"
PROBE = 0xEE  # the value a probe writes through a pin (no model value is this large)
RACE_ATTEMPTS = 200


class Unsupported(Exception):
    """The schedule needs something a user-space program cannot do (said, not faked)."""


@dataclass
class Program:
    source: str
    needs: list[str]  # the runtime's need_* checks it makes
    unsupported: list[str] = field(default_factory=list)
    attempts: int = 1


def _c(s: str) -> str:
    return json.dumps(s)  # a C string literal (ASCII names)


def ref_mode(ref) -> tuple[str | None, str]:
    """How a program takes a GUP reference: 'pipe' (vmsplice: FOLL_GET, read), 'ring'
    (io_uring fixed buffer: FOLL_PIN | FOLL_LONGTERM | FOLL_WRITE), or None and why."""
    if ref.type == "get" and not ref.write:
        return "pipe", ""
    if ref.type == "pin" and ref.write and ref.longterm:
        return "ring", ""
    what = ("a read-only long-term pin (FOLL_PIN | FOLL_LONGTERM without FOLL_WRITE)"
            if ref.type == "pin" and ref.longterm else
            f"a short-term {'FOLL_PIN' if ref.type == 'pin' else 'FOLL_GET'}"
            f"{' | FOLL_WRITE' if ref.write else ''} reference held across operations")
    return None, (f"{what} can only be taken and held from user space through the gup_test "
                  f"debugfs file (CONFIG_GUP_TEST), which these programs do not drive")


class Generator:
    def __init__(self, sched: Schedule, *, origin: str = "", model_says: dict | None = None,
                 model_policy: str | None = None,
                 attempts: int | None = None, timeout_ms: int = 5000):
        self.s = sched
        self.m: MMModel = sched.model
        self.origin = origin
        self.model_says = model_says or {}
        self.model_policy = model_policy or self.m.policy.name
        self.timeout_ms = timeout_ms
        self.needs: list[str] = []
        self.unsupported: list[str] = []
        self.attempts = attempts or (RACE_ATTEMPTS if sched.races else 1)
        self.out: list[str] = []

    # ------------------------------------------------------------------ helpers
    def need(self, check: str) -> None:
        if check not in self.needs:
            self.needs.append(check)

    def no(self, why: str) -> None:
        if why not in self.unsupported:
            self.unsupported.append(why)

    def features(self, p: int) -> str:
        """UFFDIO_API features of process p's userfaultfd: every feature its registrations
        ask for (the kernel takes them once per file; the model ORs them per register)."""
        from ..model.codec import UFFD_FEATURES
        bits = 0
        for t in range(len(self.m.threads)):
            if self.m.t_proc[t] == p:
                for c in self.m.programs[t]:
                    if c.kind == "uffd_register":
                        bits |= c.features
        return " | ".join(C_FEATURE[n] for n, bit in UFFD_FEATURES.items() if bits & bit) or "0"

    def compiled(self, run):
        """The run's compiled op (indices: page .v, reference .ref, child, ...), the same for
        scripted programs and menu instances."""
        return self.m.programs[run.thread][run.pc]

    def value(self, run) -> int:
        """The value a write or device write stores (a menu's depends on the fork epoch)."""
        c = self.compiled(run)
        at = self.s.states[run.steps[0]]
        return c.val + (at[c.epoch_ix] if c.epoch_ix is not None else 0)

    def parent_of(self, p: int):
        return next(ps.parent for ps in self.m.sc_processes if ps.name == self.m.procs[p])

    def page_size(self, v: int) -> str:
        pg = self.m.scenario.pages[v]
        o = self.m.pv_object[self.m.roots[0]][v] if self.m.roots else -1
        huge = pg.get("kind") in ("thp", "pte_thp", "hugetlb") or (
            o >= 0 and self.m.obj_type[o] == "memfd_hugetlb")
        return "HUGE" if huge else "SMALL"

    def emit(self, line: str = "") -> None:
        self.out.append(line)

    # ------------------------------------------------------------------ the program
    def generate(self) -> Program:
        m = self.m
        self._check_supported()
        sc = m.scenario
        props = [n for n in m.property_names if n not in m.not_applicable
                 or (sc.properties_given and n in sc.properties)]
        self._header(props)
        self.emit(f"#define MAX_PROCS {max(1, len(m.procs))}")
        self.emit(f"#define MAX_THREADS {len(m.threads) + len(m.procs)} /* a pipe per thread, and one per process for its control */")
        with open(RUNTIME, encoding="utf-8") as f:
            self.emit(f.read())
        if self.unsupported:
            self._skip_program(props)
        else:
            self._scenario_tables()
            self._judges()
            self._uffd_helpers()
            self._prototypes()
            self._setup_objects()
            for p in m.roots:
                self._setup_process(p)
            for t in range(len(m.threads)):
                if m.threads[t].process != "kernel":
                    self._thread(t)
            for p in range(len(m.procs)):
                self._process(p)
            self._coordinator()
            self._main(props)
        return Program("\n".join(self.out) + "\n", self.needs, self.unsupported, self.attempts)

    def _header(self, props) -> None:
        m, s = self.m, self.s
        lines = [f"mmcheck reproducer: scenario {m.scenario.name} ({m.scenario.path})",
                 f"execution: {self.origin} ({len(s.labels)} model steps, policy "
                 f"{m.policy.name})",
                 "", "Build: gcc -O2 -Wall -o repro repro.c -lpthread",
                 "Run: ./repro [--attempts N] [--timeout MS]   (TAP output; root not needed)", "",
                 "Schedule (each line runs after the previous one has returned):"]
        for k, point in enumerate(s.points, 1):
            names = [self._run_text(j) for j in point.runs]
            lines.append(f"  {k:2}. {' || '.join(names)}{' (resumes)' if point.resume else ''}")
        if s.races:
            lines += ["", "Steps user space cannot order (the runs joined by || race; the "
                      "program starts them together and repeats the attempt):"]
            lines += [f"  {t}" for t in s.race_steps]
        if s.undriven:
            lines += ["", "Kernel activity the program cannot trigger at that moment:"]
            lines += [f"  {t}" for t in s.undriven]
        if self.model_says:
            lines += ["", f"What the model says under {self.model_policy} (every interleaving):"]
            lines += [f"  {k}: {v}" for k, v in self.model_says.items()]
        self.emit("/*")
        self.emit("\n".join((" * " + ln).rstrip() for ln in lines if ln is not None))
        self.emit(" */")

    def _run_text(self, j: int) -> str:
        run = self.s.runs[j]
        th = self.m.threads[run.thread]
        return f"{th.qualname}: {th.program[run.pc].describe()}"

    # ------------------------------------------------------------------ what is possible
    def _check_supported(self) -> None:
        m, s = self.m, self.s
        sc = m.scenario
        if s.undriven:
            self.no("the execution needs kernel activity user space cannot trigger at that "
                    "moment: " + "; ".join(s.undriven))
        if s.monitor:
            self.no("a background userfaultfd monitor (background: uffd_monitor)")
        if len(m.values) > 63:
            self.no("more than 63 distinct values")
        for run in s.runs:
            op = m.threads[run.thread].program[run.pc]
            for i in run.steps:
                if SEGV in outcome(m.label_parts(s.labels[i])[2]).tags:
                    self.no(f"{self._run_text(s.runs.index(run))}: an access the model kills "
                            f"with SIGSEGV")
            if op.kind == "migrate":
                self.no("migrate: user space can only migrate a page to another NUMA node "
                        "(move_pages), which the model's migration does not choose")
            c = self.compiled(run)
            if op.kind in UFFD_OPS:
                if self.parent_of(m.t_proc[run.thread]) is not None:
                    self.no(f"{op.describe()} in a forked child: its userfaultfd context's "
                            f"file descriptor goes to the parent's monitor (EVENT_FORK)")
                if op.kind == "uffd_read" and c.uffd_proc not in (None, m.t_proc[run.thread]):
                    self.no(f"{op.describe()}: reading another process's userfaultfd")
                if op.kind == "uffd_register":
                    self.need(f"need_uffd_wp({self.features(m.t_proc[run.thread])})")
            if op.kind in ("gup", "device_read", "device_write", "put"):
                ref = m.sc_refs[c.ref]
                mode, why = ref_mode(ref)
                if mode is None:
                    self.no(why)
                elif op.kind == "device_write" and mode == "pipe":
                    self.no("a device write through a read-only vmsplice reference")
                if op.kind != "gup" and m.threads[run.thread].process != ref.owner:
                    self.no(f"{op.describe()}: a device op by a process other than the "
                            f"reference's owner")
            if op.kind == "pin":
                self.need("need_io_uring")
            if op.kind == "pageout":
                self.need("need_swap")
            if op.kind == "clear_refs":
                self.need("need_soft_dirty")
            if op.kind == "pagemap_read" and dict(c.expect).get("soft_dirty") is not None:
                self.need("need_soft_dirty")
        for ref in m.sc_refs:
            if ref_mode(ref)[0] == "ring":
                self.need("need_io_uring")
        for v, pg in enumerate(sc.pages):
            kind = pg.get("kind")
            if kind in ("thp", "pte_thp"):
                self.need("need_huge_zeropage" if pg.state == "zero" else "need_thp")
            if kind == "hugetlb":
                self.need("need_hugetlb")
            if pg.get("after"):
                self.no(f"page {pg.name}: adjacent VMAs (after:) are not laid out yet")
        for o, t in enumerate(m.obj_type):
            if t == "file":
                self.need("need_disk_file")
            if t == "memfd_hugetlb":
                self.need("need_hugetlb")

    def _skip_program(self, props) -> None:
        why = "; ".join(self.unsupported)
        self.emit("int main(void)")
        self.emit("{")
        self.emit('\tprintf("TAP version 13\\n");')
        if "gup_test" in why:
            self.emit('\tprintf("# gup_test debugfs file: %s on this machine\\n", '
                      'access("/sys/kernel/debug/gup_test", F_OK) ? "absent (CONFIG_GUP_TEST=n '
                      'or debugfs not mounted)" : "present");')
        self.emit(f'\tprintf("1..{len(props)}\\n");')
        for i, p in enumerate(props, 1):
            self.emit(f'\tprintf("ok {i} - {p} # SKIP %s\\n", {_c(why)});')
        self.emit('\tprintf("# mmcheck-result %s\\n", '
                  + _c(json.dumps({"skip": why})) + ');')
        self.emit("\treturn KSFT_SKIP;")
        self.emit("}")

    # ------------------------------------------------------------------ tables
    def _scenario_tables(self) -> None:
        m = self.m
        self.emit("/* ---- the scenario */")
        self.emit(f"#define N_VPAGES {m.n_vpages}")
        self.emit(f"#define N_VALUES {len(m.values)}")
        self.emit("RT char *page[N_VPAGES]; /* this process's address of each page */")
        self.emit("RT const size_t page_size[N_VPAGES] = {"
                  + ", ".join(self.page_size(v) for v in range(m.n_vpages)) + "};")
        self.emit("RT const char *page_name[N_VPAGES] = {"
                  + ", ".join(_c(n) for n in m.vpages) + "};")
        self.emit("RT const char *value_name[N_VALUES] = {"
                  + ", ".join(_c(n) for n in m.values) + "};")
        self.emit("RT const char *proc_name[MAX_PROCS] = {"
                  + ", ".join(_c(n) for n in m.procs) + "};")
        self.emit(f"RT int obj_fd[{max(1, len(m.objects))}];")
        for r, ref in enumerate(m.sc_refs):
            mode = ref_mode(ref)[0]
            self.emit(f"RT struct ring ring_{r} = {{.fd = -1}}; /* {ref.name} */"
                      if mode == "ring" else f"RT int pipe_{r}[2] = {{-1, -1}}; /* {ref.name} */")
        self.emit(f"RT int timeout_ms = {self.timeout_ms};")
        self.emit("RT int uffd = -1; /* this process's userfaultfd */")
        self.emit("RT int uffd_msgs[N_VPAGES]; /* uffd-wp fault messages read, per page */")
        self.emit("RT struct fork_event fork_events[8];")
        self.emit("RT int n_fork_events;")

    def _prototypes(self) -> None:
        m = self.m
        for p in range(len(m.procs)):
            self.emit(f"RT void process_{p}(void) __attribute__((noreturn));")

    def _judges(self) -> None:
        self.emit(r"""
RT const char *name_of(int value)
{
	if (value == 0xEE)
		return "the probe";
	return value >= 0 && value < N_VALUES ? value_name[value] : "garbage";
}

/* an observation through the page table: not its data = leak, an old value = lost write */
RT void judge(int p, int v, const char *how, int got, int ideal, uint64_t legit)
{
	__atomic_fetch_add(&R->observations, 1, __ATOMIC_RELAXED);
	if (got < 0 || got >= 64 || !(legit >> got & 1)) {
		note_violation(P_NO_LEAK, "%s %s %s at %s, which is not its data", proc_name[p],
			       how, name_of(got), page_name[v]);
		return;
	}
	if (ideal >= 0 && got != ideal)
		note_violation(P_NO_LOST_WRITE, "%s %s %s at %s, not its latest data %s",
			       proc_name[p], how, name_of(got), page_name[v], name_of(ideal));
}

/* an observation through a reference: only its owner's data may show there */
RT void judge_ref(int p, const char *ref, int got, uint64_t legit)
{
	__atomic_fetch_add(&R->observations, 1, __ATOMIC_RELAXED);
	if (got < 0 || got >= 64 || !(legit >> got & 1))
		note_violation(P_NO_LEAK, "%s observes %s through reference %s, which is not its data",
			       proc_name[p], name_of(got), ref);
}

/* a coherent reference and the page table must show the same page */
RT void judge_coherent(int p, int v, const char *ref, int dev)
{
	uint64_t e = pagemap_entry(page[v]);
	int pt;

	if (!(e & (PM_PRESENT | PM_SWAP)))
		return;
	pt = value_at(page[v]);
	if (pt != dev)
		note_violation(P_PIN_COHERENT, "reference %s reads %s but %s's page table shows %s at %s",
			       ref, name_of(dev), proc_name[p], name_of(pt), page_name[v]);
}
""")

    def _uffd_helpers(self) -> None:
        monitor = self.m.scenario.background_setting("uffd_monitor", 0)
        self.emit(r"""
RT int vpage_of(unsigned long addr)
{
	int v;

	for (v = 0; v < N_VPAGES; v++)
		if (page[v] && addr >= (uintptr_t)page[v] && addr < (uintptr_t)page[v] + page_size[v])
			return v;
	return -1;
}

/* a uffd-wp fault message was read: count it for its page */
RT int count_msg(const struct uffd_msg *msg)
{
	int v = msg->event == UFFD_EVENT_PAGEFAULT ? vpage_of(msg->arg.pagefault.address) : -1;

	if (v >= 0)
		__atomic_fetch_add(&uffd_msgs[v], 1, __ATOMIC_SEQ_CST);
	return v;
}

/* background: {uffd_monitor: N}: read a message, unprotect the page (waking the writer) */
RT void *uffd_monitor_thread(void *arg)
{
	int n = MONITOR;
	struct uffd_msg msg;

	(void)arg;
	while (n > 0) {
		int v;

		if (uffd_wait_msg(uffd, &msg, -1))
			continue;
		v = count_msg(&msg);
		if (v < 0)
			continue;
		uffd_writeprotect(uffd, page[v], page_size[v], 0, 0);
		n--;
	}
	return NULL;
}
""".replace("MONITOR", str(monitor)))

    # ------------------------------------------------------------------ memory set-up
    def _object_initial(self, o: int) -> int:
        return self.m.obj_initial[o] if self.m.obj_present[o] else 0

    def _setup_objects(self) -> None:
        m = self.m
        self.emit("/* memory objects shared by the initial processes (made before they fork) */")
        self.emit("RT void setup_objects(void)")
        self.emit("{")
        self.emit("\tstatic char buf[HUGE];")
        self.emit("\t(void)buf;")
        implicit = {o.name: o.implicit for o in m.scenario.objects}
        for o, name in enumerate(m.objects):
            t = m.obj_type[o]
            if implicit.get(name.split(":", 1)[-1], implicit.get(name)) == "shared_anon":
                self.emit(f"\tobj_fd[{o}] = -1; /* {name}: MAP_SHARED|MAP_ANONYMOUS */")
                continue
            size = "HUGE" if t == "memfd_hugetlb" else "SMALL"
            if t == "file":
                self.emit(f'\tobj_fd[{o}] = open(".", O_TMPFILE | O_RDWR, 0600); /* {name} */')
            else:
                flags = "MFD_HUGETLB" if t == "memfd_hugetlb" else "0"
                self.emit(f"\tobj_fd[{o}] = memfd_create({_c(name)}, {flags}); /* {name}: {t} */")
            self.emit(f"\tif (obj_fd[{o}] < 0 || ftruncate(obj_fd[{o}], {size}))")
            self.emit(f'\t\tattempt_skip("cannot create {name} ({t}): %s", strerror(errno));')
            value = self._object_initial(o)
            if value:
                if t == "memfd_hugetlb":
                    self.emit("\t{")
                    self.emit(f"\t\tchar *mem = mmap(NULL, HUGE, PROT_READ | PROT_WRITE, "
                              f"MAP_SHARED, obj_fd[{o}], 0);")
                    self.emit("\t\tif (mem == MAP_FAILED)")
                    self.emit(f'\t\t\tattempt_skip("cannot map {name}: %s", strerror(errno));')
                    self.emit(f"\t\tstore(mem, HUGE, {value});")
                    self.emit("\t\tmunmap(mem, HUGE);")
                    self.emit("\t}")
                else:
                    self.emit(f"\tmemset(buf, {value}, {size});")
                    self.emit(f"\tif (pwrite(obj_fd[{o}], buf, {size}, 0) != (ssize_t){size})")
                    self.emit(f'\t\tattempt_skip("cannot write {name}: %s", strerror(errno));')
        self.emit("}")

    def _setup_process(self, p: int) -> None:
        m = self.m
        sc = m.scenario
        self.emit(f"/* {m.procs[p]}'s pages, as the scenario declares them */")
        self.emit(f"RT void setup_{p}(void)")
        self.emit("{")
        self.emit("\tchar *mem;")
        for v, pg in enumerate(sc.pages):
            size = self.page_size(v)
            kind = pg.get("kind")
            o = m.pv_object[p][v]
            shared = m.vpage_shared[v]
            prot = "PROT_READ" if pg.get("prot") == "r" else "PROT_READ | PROT_WRITE"
            flags = ["MAP_SHARED" if shared else "MAP_PRIVATE"]
            fd = "-1"
            implicit_anon = o >= 0 and obj_fd_is_anon(m, o)
            if o < 0 or implicit_anon:
                flags.append("MAP_ANONYMOUS")
            else:
                fd = f"obj_fd[{o}]"
            if kind == "hugetlb" and fd == "-1":
                flags.append("MAP_HUGETLB")
            self.emit(f"\t/* {pg.name}: {pg.state}, {kind}"
                      f"{', object ' + m.objects[o] if o >= 0 else ''}"
                      f"{', shared' if shared else ''}, prot {pg.get('prot')} */")
            # map writable first when the initial data must be stored, then drop write
            initial = m.init_value.get((p, pg.name)) if o < 0 else None
            if implicit_anon and pg.state == "present":
                initial = self._object_initial(o) or None
            map_prot = "PROT_READ | PROT_WRITE" if initial else prot
            self.emit(f"\tmem = map_aligned({size}, {map_prot}, {' | '.join(flags)}, {fd});")
            self.emit("\tif (!mem)")
            self.emit(f'\t\tattempt_skip("cannot map {pg.name}: %s", strerror(errno));')
            self.emit(f"\tpage[{v}] = mem;")
            if kind in ("thp", "pte_thp"):
                self.emit(f"\tmadvise(mem, {size}, MADV_HUGEPAGE);")
            elif size == "SMALL" and fd == "-1" and kind != "hugetlb":
                self.emit(f"\tmadvise(mem, {size}, MADV_NOHUGEPAGE);")
            if initial:
                self.emit(f"\tstore(mem, {size}, {initial});")
                if kind in ("thp", "pte_thp") and not shared:
                    self.emit("\tif (anon_huge_kb(mem) < 2048)")
                    self.emit(f'\t\tattempt_skip("{pg.name}: the kernel did not back it with '
                              f'a THP (khugepaged defrag settings or fragmentation)");')
                if kind == "pte_thp":
                    self.emit("\t/* PTE-map the THP: mprotect a subpage and back (cow.c) */")
                    self.emit("\tif (mprotect(mem + SMALL, SMALL, PROT_READ) || "
                              "mprotect(mem + SMALL, SMALL, PROT_READ | PROT_WRITE))")
                    self.emit(f'\t\tattempt_skip("{pg.name}: mprotect failed: %s", '
                              f'strerror(errno));')
                if map_prot != prot:
                    self.emit(f"\tmprotect(mem, {size}, {prot});")
            elif pg.state in ("zero", "present"):
                self.emit("\t(void)value_at(mem); /* read fault */")
        self.emit("}")

    # ------------------------------------------------------------------ threads and ops
    def _thread(self, t: int) -> None:
        m, s = self.m, self.s
        th = m.threads[t]
        self.emit(f"/* thread {th.qualname} */")
        self.emit(f"RT void thread_{t}(void)")
        self.emit("{")
        resumes = {s.points[k].runs[0] for k in range(len(s.points)) if s.points[k].resume}
        for j in s.thread_runs(t):
            run = s.runs[j]
            op = th.program[run.pc]
            self.emit(f"\t/* {op.describe()} */")
            self.emit(f"\twait_go({t});")
            if j in resumes:
                self.emit("\treport_done(); /* before the access: the kernel blocks it "
                          "until the monitor wakes it */")
                self._op(t, j)
                self.emit(f"\twait_go({t}); /* it resumed */")
                self.emit("\treport_done();")
                continue
            if op.kind == "exit":
                self.emit("\treport_done();")
                self.emit("\t_exit(0);")
                continue
            self._op(t, j)
            self.emit("\treport_done();")
        self.emit("}")
        self.emit(f"RT void *pthread_{t}(void *arg)")
        self.emit("{")
        self.emit("\t(void)arg;")
        self.emit(f"\tthread_{t}();")
        self.emit("\treturn NULL;")
        self.emit("}")

    def _op(self, t: int, j: int) -> None:
        m, s = self.m, self.s
        run = s.runs[j]
        op = m.threads[t].program[run.pc]
        c = self.compiled(run)
        p = m.t_proc[t]
        k = op.kind
        v = c.v if k in PAGE_OPS else None
        where = f"page[{v}]" if v is not None else ""
        fail = f'attempt_skip("{m.threads[t].qualname}: {op.describe()} failed: %s", strerror(errno))'
        if k == "read":
            e: Expect = run.expect
            ideal = -1 if e.ideal is None else e.ideal
            self.emit(f'\tjudge({p}, {v}, "reads", value_at({where}), {ideal}, {e.legit:#x}ULL);')
        elif k == "write":
            check = self._unreported_check(run, p, v)
            if check:
                self.emit("\t{")
                self.emit(f"\t\tint msgs = __atomic_load_n(&uffd_msgs[{v}], __ATOMIC_SEQ_CST);")
                self.emit("")
            self.emit(f"\tstore({where}, page_size[{v}], {self.value(run)});")
            if check:
                prop, why = check
                self.emit(f"\t\tif (__atomic_load_n(&uffd_msgs[{v}], __ATOMIC_SEQ_CST) == msgs "
                          f"&& !uffd_pending(uffd))")
                self.emit(f'\t\t\tnote_violation({C_PROP[prop]}, "{m.procs[p]}: the store to '
                          f'{m.vpages[v]} landed without a uffd-wp message ({why})");')
                self.emit("\t}")
        elif k == "fork":
            child = c.child
            self.emit("\t{")
            if "event_fork" in self.features(p).lower().replace("uffd_feature_", ""):
                self.emit("\t\t/* UFFD_FEATURE_EVENT_FORK: someone must read the fork event */")
                self.emit("\t\tpthread_t reader = 0;")
                self.emit("\t\tstruct fork_event *fe = &fork_events[n_fork_events++ % 8];")
                self.emit("\t\tfe->uffd = uffd;")
                self.emit("\t\tfe->child_uffd = -1;")
                self.emit("\t\tfe->timeout_ms = timeout_ms;")
                self.emit("\t\tif (uffd >= 0)")
                self.emit("\t\t\tpthread_create(&reader, NULL, fork_event_consumer, fe);")
                self._fork_reader = True
            self.emit("\t\tpid_t pid = fork();")
            self.emit("\t\tif (pid < 0)")
            self.emit(f"\t\t\t{fail};")
            self.emit("\t\tif (pid == 0)")
            self.emit(f"\t\t\tprocess_{child}();")
            self.emit(f"\t\tR->pids[{child}] = pid;")
            if "event_fork" in self.features(p).lower().replace("uffd_feature_", ""):
                self.emit("\t\tif (reader)")
                self.emit("\t\t\tpthread_join(reader, NULL); /* keeps the child's uffd open */")
            self.emit("\t}")
        elif k == "wait":
            self.emit(f"\tif (wait_exited(R->pids[{c.target}], -1))")
            self.emit(f"\t\t{fail};")
        elif k in ("munmap", "dontneed", "mprotect", "pageout"):
            model_ok = self._model_ok(run)
            call = {"munmap": f"munmap({where}, page_size[{v}])",
                    "dontneed": f"madvise({where}, page_size[{v}], MADV_DONTNEED)",
                    "pageout": f"madvise({where}, page_size[{v}], MADV_PAGEOUT)",
                    "mprotect": f"mprotect({where}, page_size[{v}], "
                                + ("PROT_READ | PROT_WRITE" if c.prot_write
                                   else "PROT_READ") + ")"}[k]
            what = _c(f"{m.threads[t].qualname}: {op.describe()}")
            self.emit(f"\tcheck_result({what}, {call} ? -errno : 0, {model_ok}, -1);")
            if k == "pageout" and model_ok and self._swapped_after(run, p, v):
                # reclaim is best effort: a page still under writeback from an earlier
                # pageout, or in an LRU batch, is skipped this time; the model's reclaim
                # has no such delays, so try again a few times before calling it a difference
                self.emit("\tfor (int again = 0; again < 20 && !(pagemap_entry("
                          f"{where}) & PM_SWAP); again++) {{")
                self.emit("\t\tusleep(10000);")
                self.emit(f"\t\tmadvise({where}, page_size[{v}], MADV_PAGEOUT);")
                self.emit("\t}")
            if k == "pageout" and model_ok:
                swapped = self._swapped_after(run, p, v)
                did, model_did = ("kept", "swapped it out") if swapped else ("swapped out", "kept it")
                self.emit(f"\tif (!!(pagemap_entry({where}) & PM_SWAP) != {int(swapped)})")
                self.emit(f'\t\tdiverged("{m.threads[t].qualname}: MADV_PAGEOUT {did} '
                          f'{m.vpages[v]} where the model\'s execution {model_did}");')
        elif k == "clear_refs":
            self.emit("\t{")
            self.emit('\t\tint fd = open("/proc/self/clear_refs", O_WRONLY);')
            self.emit('\t\tif (fd < 0 || write(fd, "4", 1) != 1)')
            self.emit(f"\t\t\t{fail};")
            self.emit("\t\tclose(fd);")
            self.emit("\t}")
        elif k == "pagemap_read":
            self.emit("\t{")
            self.emit(f"\t\tuint64_t e = pagemap_entry({where});")
            for name, bit in (("soft_dirty", "PM_SOFT_DIRTY"), ("uffd_wp", "PM_UFFD_WP"),
                              ("present", "PM_PRESENT"), ("swapped", "PM_SWAP")):
                want = dict(c.expect).get(name)
                if want is None:
                    continue
                self.emit(f"\t\tif (!!(e & {bit}) != {int(want)})")
                self.emit(f'\t\t\tnote_violation(P_OP_EXPECTATIONS, "pagemap of {m.vpages[v]}'
                          f' in {m.procs[p]}: {name} is %d, the scenario expects {int(want)}",'
                          f" !!(e & {bit}));")
            self.emit("\t}")
        elif k == "gup":
            r = c.ref
            if ref_mode(m.sc_refs[r])[0] == "pipe":
                self.emit("\t{")
                self.emit(f"\t\tstruct iovec iov = {{{where}, SMALL}};")
                self.emit(f"\t\tif (pipe(pipe_{r}) || vmsplice(pipe_{r}[1], &iov, 1, 0) "
                          f"!= (ssize_t)SMALL)")
                self.emit(f"\t\t\t{fail};")
                self.emit("\t}")
            else:
                what = _c(f"{m.threads[t].qualname}: {op.describe()}")
                self.emit(f"\tcheck_result({what}, ring_pin(&ring_{r}, {where}, page_size[{v}]), "
                          f"{self._model_ok(run)}, -1);")
        elif k in ("device_read", "device_write", "put"):
            r = c.ref
            ref = m.sc_refs[r]
            rv = m.ref_vpage[r]
            mode = ref_mode(ref)[0]
            held = f"pipe_{r}[0] >= 0" if mode == "pipe" else f"ring_{r}.pinned"
            if k == "put":
                if mode == "pipe":
                    self.emit(f"\tif (pipe_{r}[0] >= 0) {{ close(pipe_{r}[0]); close(pipe_{r}[1]); "
                              f"pipe_{r}[0] = pipe_{r}[1] = -1; }}")
                else:
                    self.emit(f"\tring_unpin(&ring_{r});")
            elif k == "device_write":
                self.emit(f"\tif ({held} && ring_device_write(&ring_{r}, page[{rv}], "
                          f"{self.value(run)}))")
                self.emit(f"\t\t{fail};")
            elif not run.expect or not self._held_at(run, r):
                self.emit(f"\t/* {ref.name} is not held (the GUP failed): nothing to read */")
            else:
                dev = (f"pipe_device_read(pipe_{r}[0])" if mode == "pipe"
                       else f"ring_device_read(&ring_{r}, page[{rv}])")
                self.emit("\t{")
                self.emit(f"\t\tint dev = {dev};")
                self.emit(f"\t\tjudge_ref({p}, {_c(ref.name)}, dev, {run.expect.legit:#x}ULL);")
                if ref.coherent and run.owner_maps:
                    self.emit(f"\t\tjudge_coherent({p}, {rv}, {_c(ref.name)}, dev);")
                self.emit("\t}")
        elif k in UFFD_OPS or k in ("mremap", "mmap"):
            self._syscall_op(t, run, op, p, v)
        elif k in ("signal", "await", "exit"):
            self.emit("\t/* ordered by the schedule */")
        else:
            raise Unsupported(f"{k}: no C for it")

    def _model_ok(self, run) -> int:
        """1 if the model's execution of the run succeeded (no outcome tagged error)."""
        from ..model.steps import ERROR
        return int(not any(ERROR in outcome(self.m.label_parts(self.s.labels[i])[2]).tags
                           for i in run.steps))

    def _swapped_after(self, run, p, v) -> bool:
        from ..model import codec
        from ..model.kernel.common import V_PTE
        after = self.s.states[run.steps[-1] + 1]
        return codec.kind(after[self.m.pv[p][v] + V_PTE]) == codec.SWAP

    def _held_at(self, run, r) -> bool:
        return bool(self.s.states[run.steps[0]][self.m.refix[r]])

    def _unreported_check(self, run, p, v):
        """(property, why) when the scenario has write-protected page v of process p at
        this store (the ideal memory's uffd-wp tracker, mmcheck.model.ghost): a store that
        lands without a fault message then violates wp-reported, or, for an anonymous page
        protected while unpopulated without WP_UNPOPULATED, wp-unpopulated (reference B0)."""
        from ..model import ghost
        from ..model.kernel.common import W_WP
        m = self.m
        if not m.tracking:
            return None
        wp = self.s.states[run.steps[0]][m.wt[0][p][v] + W_WP]
        if wp & ghost.PROTECTED and not wp & ghost.REPORTED:
            return "wp-reported", "the page was write-protected"
        if wp & ghost.EX_UNPOPULATED and "wp-unpopulated" in m.property_kind:
            return "wp-unpopulated", "protected while unpopulated"
        return None

    def _syscall_op(self, t, run, op, p, v) -> None:
        """userfaultfd ioctls, mremap, mmap: their result against the scenario's `result:`
        and the model's execution (check_result)."""
        m, k = self.m, op.kind
        model_ok = self._model_ok(run)
        c = self.compiled(run)
        expected = {None: -1, "ok": 1, "error": 0}[dict(c.expect).get("result")]
        what = _c(f"{m.threads[t].qualname}: {op.describe()}")
        size = f"page_size[{v}]" if v is not None else "0"
        self.emit("\t{")
        self.emit("\t\tint err = 0;")
        if k == "uffd_register":
            self.emit("\t\tif (uffd < 0) {")
            self.emit(f"\t\t\tint fd = uffd_open({self.features(p)});")
            self.emit("\t\t\tif (fd < 0)")
            self.emit("\t\t\t\terr = fd;")
            self.emit("\t\t\telse")
            self.emit("\t\t\t\tuffd = fd;")
            if m.scenario.background_setting("uffd_monitor", 0):
                self.emit("\t\t\tif (uffd >= 0) {")
                self.emit("\t\t\t\tpthread_t mon;")
                self.emit("\t\t\t\tpthread_create(&mon, NULL, uffd_monitor_thread, NULL);")
                self.emit("\t\t\t}")
            self.emit("\t\t}")
            self.emit("\t\tif (!err)")
            self.emit(f"\t\t\terr = uffd_register_wp(uffd, page[{v}], {size});")
        elif k == "uffd_unregister":
            self.emit(f"\t\terr = uffd < 0 ? -EBADF : uffd_unregister_range(uffd, page[{v}], {size});")
        elif k in ("uffd_wp", "uffd_unwp"):
            wp, dontwake = int(k == "uffd_wp"), int(bool(c.dontwake))
            self.emit(f"\t\terr = uffd < 0 ? -EBADF : uffd_writeprotect(uffd, page[{v}], {size}, "
                      f"{wp}, {dontwake});")
        elif k == "uffd_wake":
            self.emit(f"\t\terr = uffd < 0 ? -EBADF : uffd_wake_range(uffd, page[{v}], {size});")
        elif k == "uffd_read":
            self.emit("\t\tstruct uffd_msg msg;")
            self.emit("\t\t/* half the point's time: the read reports, before the coordinator "
                      "gives up on the point */")
            self.emit("\t\tif (uffd < 0 || uffd_wait_msg(uffd, &msg, timeout_ms / 2))")
            self.emit(f'\t\t\tnote_violation(P_WP_REPORTED, "{m.threads[t].qualname}: '
                      f'uffd_read found no uffd-wp message in %d ms: a store was not reported",'
                      f" timeout_ms / 2);")
            self.emit("\t\telse")
            self.emit("\t\t\tcount_msg(&msg);")
            self.emit("\t\t(void)err;")
            self.emit("\t}")
            return
        elif k == "mremap":
            to = c.to
            self.emit(f"\t\tchar *moved = mremap(page[{v}], {size}, {size}, "
                      f"MREMAP_MAYMOVE | MREMAP_FIXED, page[{to}]);")
            self.emit("\t\tif (moved == MAP_FAILED)")
            self.emit("\t\t\terr = -errno;")
            self.emit("\t\telse")
            self.emit(f"\t\t\tpage[{to}] = moved;")
        elif k == "mmap":
            prot = "PROT_READ | PROT_WRITE" if c.prot_write else "PROT_READ"
            self.emit(f"\t\tif (mmap(page[{v}], {size}, {prot}, MAP_PRIVATE | MAP_ANONYMOUS | "
                      f"MAP_FIXED, -1, 0) == MAP_FAILED)")
            self.emit("\t\t\terr = -errno;")
        self.emit(f"\t\tcheck_result({what}, err, {model_ok}, {expected});")
        self.emit("\t}")

    # ------------------------------------------------------------------ processes
    def _process(self, p: int) -> None:
        m, s = self.m, self.s
        threads = [t for t in range(len(m.threads)) if m.t_proc[t] == p]
        control = len(m.threads) + p
        self.emit(f"/* process {m.procs[p]}: observe what it can see at the end */")
        self.emit(f"RT void observe_{p}(void)")
        self.emit("{")
        for (q, v), e in sorted(s.final.items()):
            if q != p:
                continue
            ideal = -1 if e.ideal is None else e.ideal
            self.emit(f"\tif (pagemap_entry(page[{v}]) & (PM_PRESENT | PM_SWAP))")
            self.emit(f'\t\tjudge({p}, {v}, "can read", value_at(page[{v}]), {ideal}, '
                      f'{e.legit:#x}ULL);')
        for r, e in sorted(s.held.items()):
            if m.ref_owner[r] != p:
                continue
            ref = m.sc_refs[r]
            mode = ref_mode(ref)[0]
            dev = (f"pipe_device_read(pipe_{r}[0])" if mode == "pipe"
                   else f"ring_device_read(&ring_{r}, page[{m.ref_vpage[r]}])")
            self.emit(f"\tjudge_ref({p}, {_c(ref.name)}, {dev}, {e.legit:#x}ULL);")
        self.emit("}")
        self.emit(f"RT void probe_{p}(void)")
        self.emit("{")
        for r in sorted(s.held):
            ref = m.sc_refs[r]
            v = m.ref_vpage[r]
            if (m.ref_owner[r] != p or not ref.coherent or ref_mode(ref)[0] != "ring"
                    or (p, v) not in s.final or s.states[-1][m.refix[r] + 1]):
                continue
            self.emit(f"\t/* a device write through {ref.name} must show in the page table */")
            self.emit(f"\tif (!ring_device_write(&ring_{r}, page[{v}], 0xEE))")
            self.emit(f"\t\tjudge_coherent({p}, {v}, {_c(ref.name)}, 0xEE);")
        self.emit("}")
        self.emit(f"RT void process_{p}(void)")
        self.emit("{")
        if len(threads) > 1:
            self.emit(f"\tpthread_t th[{len(threads)}];")
        if self.parent_of(p) is not None:
            self.emit("\t/* the parent's userfaultfd is the parent's context, not ours */")
            self.emit("\tif (uffd >= 0) { close(uffd); uffd = -1; }")
            self.emit("\tmemset(uffd_msgs, 0, sizeof(uffd_msgs));")
            self.emit("\t/* references are not inherited: drop the parent's */")
            for r, ref in enumerate(m.sc_refs):
                if ref_mode(ref)[0] == "ring":
                    self.emit(f"\tif (ring_{r}.fd >= 0) {{ close(ring_{r}.fd); "
                              f"close(ring_{r}.scratch); ring_{r}.fd = -1; "
                              f"ring_{r}.pinned = 0; }}")
                else:
                    self.emit(f"\tif (pipe_{r}[0] >= 0) {{ close(pipe_{r}[0]); "
                              f"close(pipe_{r}[1]); pipe_{r}[0] = pipe_{r}[1] = -1; }}")
        for r, ref in enumerate(m.sc_refs):
            if ref_mode(ref)[0] == "ring" and m.ref_owner[r] == p:
                self.emit(f"\tif (ring_setup(&ring_{r}))")
                self.emit('\t\tattempt_skip("io_uring_setup failed: %s", strerror(errno));')
        for i, t in enumerate(threads[1:], 1):
            self.emit(f"\tpthread_create(&th[{i}], NULL, pthread_{t}, NULL);")
        if threads:
            self.emit(f"\tthread_{threads[0]}();")
        for i in range(1, len(threads)):
            self.emit(f"\tpthread_join(th[{i}], NULL);")
        self.emit("\tfor (;;) { /* the process lives on until the coordinator is done */")
        self.emit(f"\t\tint cmd = wait_go({control});")
        self.emit("\t\tif (cmd == 'o')")
        self.emit(f"\t\t\tobserve_{p}();")
        self.emit("\t\telse if (cmd == 'p')")
        self.emit(f"\t\t\tprobe_{p}();")
        self.emit("\t\telse if (cmd == 'q')")
        self.emit("\t\t\t_exit(0);")
        self.emit("\t\treport_done();")
        self.emit("\t}")
        self.emit("}")

    # ------------------------------------------------------------------ coordinator, main
    def _coordinator(self) -> None:
        m, s = self.m, self.s
        self.emit("/* one attempt: processes up, the schedule point by point, observations */")
        self.emit("RT void coordinate(void)")
        self.emit("{")
        self.emit("\tint t;")
        self.emit("\tsetpgid(0, 0);")
        if any(m.threads[r.thread].program[r.pc].kind == "pageout" for r in s.runs):
            self.emit("\tone_cpu(); /* MADV_PAGEOUT: the page must not sit in another CPU's "
                      "LRU batch */")
        self.emit("\tif (pipe(done_pipe))")
        self.emit('\t\tattempt_skip("pipe failed");')
        self.emit("\tfor (t = 0; t < MAX_THREADS; t++)")
        self.emit("\t\tif (pipe(go_pipe[t]))")
        self.emit('\t\t\tattempt_skip("pipe failed");')
        self.emit("\tsetup_objects();")
        for p in m.roots:
            self.emit("\t{")
            self.emit("\t\tpid_t pid = fork();")
            self.emit("\t\tif (pid == 0) {")
            self.emit(f"\t\t\tsetup_{p}();")
            self.emit("\t\t\treport_done();")
            self.emit(f"\t\t\tprocess_{p}();")
            self.emit("\t\t}")
            self.emit(f"\t\tR->pids[{p}] = pid;")
            self.emit("\t}")
            self.emit(f'\tif (wait_done(1, timeout_ms, "setting up {m.procs[p]}"))')
            self.emit("\t\treturn;")
        for k, point in enumerate(s.points, 1):
            names = " || ".join(self._run_text(j) for j in point.runs)
            self.emit(f"\t/* {k}. {names}{' (resumes)' if point.resume else ''} */")
            for j in point.runs:
                self.emit(f"\trelease({s.runs[j].thread});")
            self.emit(f"\tif (wait_done({len(point.runs)}, timeout_ms, {_c(names)}))")
            self.emit("\t\treturn;")
            for j in point.runs:
                run = s.runs[j]
                op = m.threads[run.thread].program[run.pc]
                if op.kind == "exit" and not point.resume:
                    p = m.t_proc[run.thread]
                    self.emit(f"\tif (wait_exited(R->pids[{p}], timeout_ms))")
                    self.emit("\t\treturn;")
        live = sorted({p for p, _v in s.final} | {m.ref_owner[r] for r in s.held}
                      | {p for p in range(len(m.procs)) if self._live(p)})
        for cmd in ("o", "p"):
            if cmd == "p":
                self._objects_final()  # before the probes write through the pins
            for p in live:
                self.emit(f"\tcommand({len(m.threads) + p}, '{cmd}');")
                self.emit(f'\tif (wait_done(1, timeout_ms, "{m.procs[p]} observing"))')
                self.emit("\t\treturn;")
        self.emit("}")

    def _live(self, p: int) -> bool:
        from ..model.kernel.common import P_STATUS, RUNNING
        return self.s.states[-1][self.m.proc[p] + P_STATUS] == RUNNING

    def _objects_final(self) -> None:
        from ..model.kernel.common import O_IDEAL, O_LEGIT
        m = self.m
        last = self.s.states[-1]
        for o, name in enumerate(m.objects):
            if obj_fd_is_anon(m, o):
                continue
            ideal, legit = last[m.ob[o] + O_IDEAL], last[m.ob[o] + O_LEGIT]
            self.emit("\t{")
            self.emit("\t\tunsigned char c;")
            self.emit(f"\t\tif (pread(obj_fd[{o}], &c, 1, 0) == 1) {{")
            self.emit(f"\t\t\tif (!({legit:#x}ULL >> c & 1))")
            self.emit(f'\t\t\t\tnote_violation(P_NO_LEAK, "{name} holds %s, which no shared '
                      f'mapping wrote: a private write reached it", name_of(c));')
            self.emit(f"\t\t\telse if (c != {ideal})")
            self.emit(f'\t\t\t\tnote_violation(P_NO_LOST_WRITE, "{name} holds %s, not its '
                      f'latest data %s", name_of(c), name_of({ideal}));')
            self.emit("\t\t}")
            self.emit("\t}")

    def _main(self, props) -> None:
        observable = [p for p in props if p in OBSERVABLE]
        self.emit(r"""
static void usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [--attempts N] [--timeout MS]\n", argv0);
	exit(2);
}

int main(int argc, char **argv)
{
	int attempts = DEFAULT_ATTEMPTS, a, i, hits[N_PROPS] = {0}, stuck = 0, diverged = 0, done = 0;
	char why[N_PROPS][320], stuck_why[320] = "", diverged_why[320] = "";
	const char *missing = NULL;
	pthread_mutexattr_t attr;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--attempts") && i + 1 < argc)
			attempts = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
			timeout_ms = atoi(argv[++i]);
		else
			usage(argv[0]);
	}
	if (attempts < 1 || timeout_ms < 1)
		usage(argv[0]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n");
@COMMENTS@
@NEEDS@
	R = mmap(NULL, sizeof(*R), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (R == MAP_FAILED)
		return 1;
	memset(why, 0, sizeof(why));
	prctl_subreaper();
	for (a = 0; a < attempts && !missing; a++) {
		pid_t pid;

		memset(R, 0, sizeof(*R));
		pthread_mutexattr_init(&attr);
		pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
		pthread_mutex_init(&R->lock, &attr);
		fflush(stdout);
		pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			coordinate();
			_exit(0);
		}
		waitpid(pid, NULL, 0);
		kill(-pid, SIGKILL);
		while (waitpid(-1, NULL, 0) > 0)
			;
		if (R->skipped) {
			static char skip_why[320];

			memcpy(skip_why, R->skip_why, sizeof(skip_why));
			missing = skip_why;
			break;
		}
		done++;
		for (i = 0; i < N_PROPS; i++)
			if (R->violated[i] && !hits[i]++)
				memcpy(why[i], R->why[i], sizeof(why[i]));
		if (R->stuck && !stuck++)
			memcpy(stuck_why, R->stuck_why, sizeof(stuck_why));
		if (R->diverged && !diverged++)
			memcpy(diverged_why, R->diverged_why, sizeof(diverged_why));
	}
	report(missing, done, hits, why, stuck, stuck_why, diverged, diverged_why);
	if (missing)
		return KSFT_SKIP;
	return stuck || diverged || @FAILED@ ? 1 : 0;
}
""".replace("@NEEDS@", self._needs_code()).replace("@COMMENTS@", self._comments()).replace("@FAILED@", " || ".join(
            f"hits[{C_PROP[p]}]" for p in observable) or "0"))
        # report() must precede main: insert it before usage()
        report = self._report(props, observable)
        i = max(k for k, line in enumerate(self.out) if "static void usage" in line)
        self.out.insert(i, report)
        end = next(k for k, line in enumerate(self.out) if line == " */")
        self.out.insert(end + 1, f"#define DEFAULT_ATTEMPTS {self.attempts}")

    def _comments(self) -> str:
        m = self.m
        lines = [f"# {m.scenario.name}: {self.origin}"]
        if self.model_says:
            lines.append(f"# the model under {self.model_policy} says: " + ", ".join(
                f"{k} {v}" for k, v in self.model_says.items()))
        return "\n".join(f'\tprintf("%s\\n", {_c(line)});' for line in lines)

    def _needs_code(self) -> str:
        lines = []
        for check in self.needs:
            call = check if "(" in check else check + "()"
            lines.append(f"\tif (!missing)\n\t\tmissing = {call};")
        return "\n".join(lines)

    def _report(self, props, observable) -> str:
        lines = [r"""
#include <sys/prctl.h>
static void prctl_subreaper(void)
{
	prctl(PR_SET_CHILD_SUBREAPER, 1);
}

/* TAP: one line per property the scenario checks, then a machine-readable summary */
static void report(const char *missing, int done, int hits[N_PROPS], char why[N_PROPS][320],
		   int stuck, const char *stuck_why, int diverged, const char *diverged_why)
{
	int n = 0;
""", f'\tprintf("1..{len(props) + 1}\\n");']
        json_parts = []
        for name in props:
            if name not in OBSERVABLE:
                lines.append(f'\tprintf("ok %d - {name} # SKIP {NOT_OBSERVABLE}\\n", ++n);')
                continue
            c = C_PROP[name]
            lines.append("\tif (missing)")
            lines.append(f'\t\tprintf("ok %d - {name} # SKIP %s\\n", ++n, missing);')
            lines.append(f"\telse if (hits[{c}])")
            lines.append(f'\t\tprintf("not ok %d - {name}: violated in %d of %d attempts: %s\\n",'
                         f" ++n, hits[{c}], done, why[{c}]);")
            lines.append("\telse")
            lines.append(f'\t\tprintf("ok %d - {name}: held in %d attempt%s\\n", ++n, done, '
                         f'done == 1 ? "" : "s");')
            json_parts.append((name, c))
        lines.append("\tif (missing)")
        lines.append('\t\tprintf("ok %d - schedule # SKIP %s\\n", ++n, missing);')
        lines.append("\telse if (stuck)")
        lines.append('\t\tprintf("not ok %d - schedule: stuck in %d of %d attempts: %s\\n", ++n, '
                     'stuck, done, stuck_why);')
        lines.append("\telse if (diverged)")
        lines.append('\t\tprintf("not ok %d - schedule: the kernel left the model\'s execution in %d '
                     'of %d attempts: %s\\n", ++n, diverged, done, diverged_why);')
        lines.append("\telse")
        lines.append('\t\tprintf("ok %d - schedule: every point ran in order\\n", ++n);')
        # the summary kernel-check reads
        lines.append('\tprintf("# mmcheck-result {\\"attempts\\": %d, \\"stuck\\": %d, '
                     '\\"diverged\\": %d, \\"skip\\": \\"%s\\", \\"violated\\": {", done, '
                     'stuck, diverged, missing ? missing : "");')
        for i, (name, c) in enumerate(json_parts):
            sep = ", " if i else ""
            lines.append(f'\tprintf("{sep}\\"{name}\\": %d", hits[{c}]);')
        lines.append('\tprintf("}}\\n");')
        lines.append("}")
        return "\n".join(lines)


def obj_fd_is_anon(m: MMModel, o: int) -> bool:
    """A MAP_SHARED|MAP_ANONYMOUS page's object: no file to open, each root maps its own."""
    name = m.objects[o]
    for spec in m.scenario.objects:
        if spec.name == name or name.endswith(":" + spec.name):
            return spec.implicit == "shared_anon"
    return False


def generate(sched: Schedule, **kw) -> Program:
    return Generator(sched, **kw).generate()

