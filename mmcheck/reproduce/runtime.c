/* ---- mmcheck reproducer runtime (mmcheck/reproduce/runtime.c, copied into every program) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/io_uring.h>
#include <linux/userfaultfd.h>

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif
#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

#define SMALL (4096UL)
#define HUGE (2UL * 1024 * 1024)
#define KSFT_SKIP 4
#define RT static __attribute__((unused)) /* a program uses what its scenario needs */

/* properties a program can observe from user space (the model's names) */
enum { P_NO_LEAK, P_PIN_COHERENT, P_NO_LOST_WRITE, P_OP_EXPECTATIONS, P_WP_REPORTED,
       P_WP_UNPOPULATED, N_PROPS };
RT const char *prop_names[N_PROPS] = {"no-leak", "pin-coherent", "no-lost-write",
				      "op-expectations", "wp-reported", "wp-unpopulated"};

/* what every process of an attempt reports to the program (MAP_SHARED) */
struct results {
	int violated[N_PROPS];
	char why[N_PROPS][320];
	int skipped;
	char skip_why[320];
	int stuck, diverged;
	char stuck_why[320], diverged_why[320];
	int observations;
	pid_t pids[MAX_PROCS];
	pthread_mutex_t lock;
};
RT struct results *R;
RT int go_pipe[MAX_THREADS][2]; /* the coordinator releases thread t through go_pipe[t] */
RT int done_pipe[2];            /* threads report back to the coordinator here */

/* count an event; the first one's reason is kept (any process of the attempt may call) */
RT void count_first(int *count, char *why, size_t size, const char *fmt, va_list ap)
{
	pthread_mutex_lock(&R->lock);
	if (!(*count)++)
		vsnprintf(why, size, fmt, ap);
	pthread_mutex_unlock(&R->lock);
}

RT void note_violation(int prop, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	count_first(&R->violated[prop], R->why[prop], sizeof(R->why[prop]), fmt, ap);
	va_end(ap);
}

/* the attempt cannot go on here (a facility is missing): report and stop this thread */
RT void attempt_skip(const char *fmt, ...)
{
	va_list ap;
	char c = 's';

	va_start(ap, fmt);
	count_first(&R->skipped, R->skip_why, sizeof(R->skip_why), fmt, ap);
	va_end(ap);
	if (write(done_pipe[1], &c, 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

/* block until the coordinator releases thread t; the byte says what for ('g': the next
 * operation, 'o': observe, 'p': probe the pins, 'q': quit) */
RT int wait_go(int t)
{
	char c;

	while (read(go_pipe[t][0], &c, 1) != 1)
		if (errno != EINTR)
			_exit(1);
	return c;
}

RT void report_done(void)
{
	char c = 'd';

	if (write(done_pipe[1], &c, 1) != 1)
		_exit(1);
}

/* ---- memory */
RT char *map_aligned(size_t size, int prot, int flags, int fd)
{
	char *raw, *mem;

	if (size == SMALL || (flags & MAP_HUGETLB) || fd >= 0) {
		mem = mmap(NULL, size, prot, flags, fd, 0);
		return mem == MAP_FAILED ? NULL : mem;
	}
	/* a THP needs a PMD-aligned range: map twice the size and trim */
	raw = mmap(NULL, 2 * size, prot, flags, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	mem = (char *)(((uintptr_t)raw + size - 1) & ~(size - 1));
	if (mem > raw)
		munmap(raw, mem - raw);
	munmap(mem + size, raw + size - mem);
	return mem;
}

RT uint64_t pagemap_entry(char *addr)
{
	uint64_t entry = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	if (fd < 0)
		return 0;
	if (pread(fd, &entry, sizeof(entry), (uintptr_t)addr / SMALL * 8) != sizeof(entry))
		entry = 0;
	close(fd);
	return entry;
}
#define PM_SOFT_DIRTY (1ULL << 55)
#define PM_UFFD_WP (1ULL << 57)
#define PM_SWAP (1ULL << 62)
#define PM_PRESENT (1ULL << 63)

/* AnonHugePages of the VMA at addr, in kB (-1: not found) */
RT long anon_huge_kb(char *addr)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	unsigned long start, end;
	int inside = 0;
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			inside = (uintptr_t)addr >= start && (uintptr_t)addr < end;
			continue;
		}
		if (inside && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

/* the value a page holds: its first byte (every store fills the page) */
RT int value_at(const char *addr)
{
	return *(const volatile unsigned char *)addr;
}

RT void store(char *addr, size_t size, int value)
{
	memset(addr, value, size);
}

/* ---- io_uring (raw system calls: the program needs no liburing) */
struct ring {
	int fd, scratch, pinned;
	unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
};

RT int ring_setup(struct ring *r)
{
	struct io_uring_params p;
	char *sq, *cq;

	memset(&p, 0, sizeof(p));
	r->fd = syscall(__NR_io_uring_setup, 4, &p);
	if (r->fd < 0)
		return -errno;
	sq = mmap(NULL, p.sq_off.array + p.sq_entries * sizeof(unsigned), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
	cq = mmap(NULL, p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe),
		  PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
	r->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || r->sqes == MAP_FAILED)
		return -ENOMEM;
	r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
	r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	r->sq_array = (unsigned *)(sq + p.sq_off.array);
	r->cq_head = (unsigned *)(cq + p.cq_off.head);
	r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
	r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	r->scratch = memfd_create("mmcheck-dev", 0);
	if (r->scratch < 0 || ftruncate(r->scratch, SMALL))
		return -errno;
	return 0;
}

/* one fixed-buffer transfer of the first 4 KiB of buffer 0: the device's DMA */
RT int ring_io(struct ring *r, int opcode, char *addr)
{
	unsigned tail = *r->sq_tail, idx = tail & *r->sq_mask, head;
	struct io_uring_sqe *sqe = &r->sqes[idx];
	int res;

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = opcode;
	sqe->fd = r->scratch;
	sqe->addr = (uintptr_t)addr;
	sqe->len = SMALL;
	sqe->off = 0;
	sqe->buf_index = 0;
	r->sq_array[idx] = idx;
	__atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
		return -errno;
	head = *r->cq_head;
	if (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE))
		return -EAGAIN;
	res = r->cqes[head & *r->cq_mask].res;
	__atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
	return res;
}

/* the ring is made when its process starts, before the scenario unmaps anything: its
 * own mappings must never land in a hole the scenario left (it would pin itself) */
RT int ring_pin(struct ring *r, char *addr, size_t size)
{
	struct iovec iov = {addr, size};

	if (r->fd < 0)
		return -EBADF;
	if (syscall(__NR_io_uring_register, r->fd, IORING_REGISTER_BUFFERS, &iov, 1) < 0)
		return -errno;
	r->pinned = 1;
	return 0;
}

RT void ring_unpin(struct ring *r)
{
	if (r->pinned)
		syscall(__NR_io_uring_register, r->fd, IORING_UNREGISTER_BUFFERS, NULL, 0);
	r->pinned = 0;
}

/* what the device reads through the pin (IORING_OP_WRITE_FIXED to a scratch file) */
RT int ring_device_read(struct ring *r, char *addr)
{
	unsigned char c = 0;
	int res = ring_io(r, IORING_OP_WRITE_FIXED, addr);

	if (res != (int)SMALL || pread(r->scratch, &c, 1, 0) != 1)
		return -1;
	return c;
}

/* the device writes `value` through the pin (IORING_OP_READ_FIXED from a scratch file) */
RT int ring_device_write(struct ring *r, char *addr, int value)
{
	static char buf[SMALL];

	memset(buf, value, sizeof(buf));
	if (pwrite(r->scratch, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf))
		return -1;
	return ring_io(r, IORING_OP_READ_FIXED, addr) == (int)SMALL ? 0 : -1;
}

/* ---- vmsplice: a pipe holds a FOLL_GET reference; tee() peeks without consuming it */
RT int pipe_device_read(int fd)
{
	int peek[2];
	unsigned char c = 0;

	if (pipe(peek))
		return -1;
	if (tee(fd, peek[1], SMALL, SPLICE_F_NONBLOCK) <= 0 || read(peek[0], &c, 1) != 1)
		c = 0xff;
	close(peek[0]);
	close(peek[1]);
	return c == 0xff ? -1 : c;
}

/* ---- environment */
RT long meminfo_kb(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	long kb = -1;
	size_t n = strlen(key);

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':')
			kb = strtol(line + n + 1, NULL, 10);
	fclose(f);
	return kb;
}

RT int read_sysfs(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return 0;
}

/* The reason a facility is missing, or NULL when it is there. */
RT const char *need_swap(void)
{
	return meminfo_kb("SwapFree") > 0 ? NULL
		: "no free swap (swapon a swapfile, or mmcheck kernel-check --setup)";
}

RT const char *need_thp(void)
{
	static char buf[128];

	if (read_sysfs("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof(buf)))
		return "THP not configured (no /sys/kernel/mm/transparent_hugepage)";
	return strstr(buf, "[never]") ? "THP disabled (transparent_hugepage/enabled is never)" : NULL;
}

RT const char *need_huge_zeropage(void)
{
	char buf[16];

	if (need_thp())
		return need_thp();
	if (read_sysfs("/sys/kernel/mm/transparent_hugepage/use_zero_page", buf, sizeof(buf)) ||
	    buf[0] != '1')
		return "the huge zero page is disabled (transparent_hugepage/use_zero_page)";
	return NULL;
}

RT const char *need_hugetlb(void)
{
	return meminfo_kb("HugePages_Free") >= 4 && meminfo_kb("Hugepagesize") == 2048 ? NULL
		: "fewer than 4 free 2 MiB hugetlb pages (set /proc/sys/vm/nr_hugepages, or "
		  "mmcheck kernel-check --setup)";
}

RT const char *need_io_uring(void)
{
	struct ring r;
	int err = ring_setup(&r);

	if (err)
		return "io_uring not available (io_uring_setup failed: disabled by "
		       "kernel.io_uring_disabled, seccomp or the kernel config)";
	close(r.fd);
	close(r.scratch);
	return NULL;
}

RT const char *need_soft_dirty(void)
{
	char *mem = mmap(NULL, SMALL, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int ok;

	if (mem == MAP_FAILED)
		return "mmap failed";
	mem[0] = 1; /* a new VMA is VM_SOFTDIRTY: the written page reads soft-dirty */
	ok = !!(pagemap_entry(mem) & PM_SOFT_DIRTY);
	munmap(mem, SMALL);
	return ok ? NULL : "soft-dirty tracking is compiled out (CONFIG_MEM_SOFT_DIRTY=n: pagemap "
			   "bit 55 never set)";
}

RT const char *need_disk_file(void)
{
	struct statfs st;

	if (statfs(".", &st))
		return "statfs(.) failed";
	return st.f_type == TMPFS_MAGIC ? "a disk file needs a directory on a disk filesystem "
					  "(the current directory is tmpfs)" : NULL;
}

RT const char *need_uffd_wp(uint64_t features)
{
	struct uffdio_api api = {.api = UFFD_API, .features = features};
	int fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	static char why[160];

	if (fd < 0 && errno == EPERM)
		fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0)
		return "userfaultfd not available (vm.unprivileged_userfaultfd, or not built)";
	if (ioctl(fd, UFFDIO_API, &api)) {
		snprintf(why, sizeof(why), "userfaultfd lacks features 0x%llx",
			 (unsigned long long)features);
		close(fd);
		return why;
	}
	close(fd);
	return NULL;
}

/* ---- the coordinator: releases the schedule's points one by one */
RT int wait_done(int count, int timeout_ms, const char *where)
{
	struct pollfd pfd = {.fd = done_pipe[0], .events = POLLIN};
	char c;

	while (count > 0) {
		int n = poll(&pfd, 1, timeout_ms);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			R->stuck++;
			snprintf(R->stuck_why, sizeof(R->stuck_why),
				 "no progress for %d ms in %s", timeout_ms, where);
			return -1;
		}
		if (read(done_pipe[0], &c, 1) != 1)
			return -1;
		if (c == 's')
			return -1;
		count--;
	}
	return 0;
}

RT void command(int t, char c)
{
	if (write(go_pipe[t][1], &c, 1) != 1)
		_exit(1);
}

RT void release(int t)
{
	command(t, 'g');
}

/* the process with pid has exited (its mm is gone): pidfd becomes readable */
RT int wait_exited(pid_t pid, int timeout_ms)
{
	int fd = syscall(SYS_pidfd_open, pid, 0);
	struct pollfd pfd;
	int n;

	if (fd < 0)
		return errno == ESRCH ? 0 : -1;
	pfd.fd = fd;
	pfd.events = POLLIN;
	n = poll(&pfd, 1, timeout_ms);
	close(fd);
	return n == 1 ? 0 : -1;
}

RT int uffd_wait_msg(int fd, struct uffd_msg *msg, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	for (;;) {
		int n = poll(&pfd, 1, timeout_ms);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		if (read(fd, msg, sizeof(*msg)) == sizeof(*msg))
			return 0;
		if (errno != EAGAIN)
			return -1;
	}
}
/* Run the attempt on one CPU: a page written on one CPU sits in that CPU's LRU add batch
 * until drained, and MADV_PAGEOUT drains only its own CPU's (lru_add_drain in
 * madvise_pageout), so on two CPUs reclaim may skip a page the model reclaims. */
RT void one_cpu(void)
{
	cpu_set_t set;
	int cpu;

	if (sched_getaffinity(0, sizeof(set), &set))
		return;
	for (cpu = 0; cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &set); cpu++)
		;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* ---- userfaultfd (write-protect mode) */
RT int uffd_open(uint64_t features)
{
	struct uffdio_api api = {.api = UFFD_API, .features = features};
	int fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	/* without privilege (vm.unprivileged_userfaultfd=0) only user-mode faults may be
	 * handled, which is all a program's own stores need */
	if (fd < 0 && errno == EPERM)
		fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, UFFDIO_API, &api)) {
		int err = errno;

		close(fd);
		return -err;
	}
	return fd;
}

RT int uffd_register_wp(int fd, char *addr, size_t size)
{
	struct uffdio_register reg = {.range = {(uintptr_t)addr, size},
				      .mode = UFFDIO_REGISTER_MODE_WP};

	return ioctl(fd, UFFDIO_REGISTER, &reg) ? -errno : 0;
}

RT int uffd_unregister_range(int fd, char *addr, size_t size)
{
	struct uffdio_range range = {(uintptr_t)addr, size};

	return ioctl(fd, UFFDIO_UNREGISTER, &range) ? -errno : 0;
}

RT int uffd_writeprotect(int fd, char *addr, size_t size, int wp, int dontwake)
{
	struct uffdio_writeprotect w = {.range = {(uintptr_t)addr, size},
					.mode = (wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0) |
						(dontwake ? UFFDIO_WRITEPROTECT_MODE_DONTWAKE : 0)};

	return ioctl(fd, UFFDIO_WRITEPROTECT, &w) ? -errno : 0;
}

RT int uffd_wake_range(int fd, char *addr, size_t size)
{
	struct uffdio_range range = {(uintptr_t)addr, size};

	return ioctl(fd, UFFDIO_WAKE, &range) ? -errno : 0;
}

/* a message is queued (a fault that nobody has read yet) */
RT int uffd_pending(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	return fd >= 0 && poll(&pfd, 1, 0) == 1;
}

/* the kernel's execution left the model's: the schedule cannot be trusted past here */
RT void diverged(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	count_first(&R->diverged, R->diverged_why, sizeof(R->diverged_why), fmt, ap);
	va_end(ap);
}

/* an operation's result against the scenario's `result:` (expected: -1 none, 1 success,
 * 0 an error) and against the model's execution */
RT void check_result(const char *what, int err, int model_ok, int expected)
{
	int ok = !err;

	if (expected >= 0 && ok != expected)
		note_violation(P_OP_EXPECTATIONS, "%s: the kernel %s%s, the scenario expects %s", what,
			       ok ? "succeeded" : "failed: ", ok ? "" : strerror(-err),
			       expected ? "success" : "an error");
	if (ok != model_ok)
		diverged("%s: the kernel %s%s where the model's execution %s", what,
			 ok ? "succeeded" : "failed: ", ok ? "" : strerror(-err),
			 model_ok ? "succeeds" : "fails");
}

/* fork() of a process whose userfaultfd has UFFD_FEATURE_EVENT_FORK waits until the
 * monitor reads the fork event (dup_userfaultfd_complete): this thread is that reader */
struct fork_event {
	int uffd, child_uffd, timeout_ms;
};

RT void *fork_event_consumer(void *arg)
{
	struct fork_event *fe = arg;
	struct uffd_msg msg;

	if (!uffd_wait_msg(fe->uffd, &msg, fe->timeout_ms) && msg.event == UFFD_EVENT_FORK)
		fe->child_uffd = msg.arg.fork.ufd;
	return NULL;
}
/* ---- end of the runtime */
