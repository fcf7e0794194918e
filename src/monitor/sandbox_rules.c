/* The allow-list. What rvisor does once set up, and so what it may call:
 * run guest code (memory, threads, futexes, clocks), serve devices from
 * its event loop (poll, read and write on descriptors it already holds,
 * eventfds, getrandom, disk I/O), relay user-mode networking (libslirp's
 * TCP, UDP and ICMP-datagram sockets), restore the terminal, and for
 * `rvisor serve` also make VMs (open their files, attach a TAP device).
 * It never starts programs, traces processes, makes sockets of other
 * families or raw sockets, loads code from files, or sends signals to
 * other processes. Each rule below says why it is there. */
#include "monitor/sandbox_rules.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>

#define LOW32 0xffffffffull

/* Needed in every mode, with no argument worth checking. Found by
 * tracing the test suite (strace -f, every call after the filter is
 * loaded) and reading the code paths it does not reach. */
static const int always[] = {
    /* Memory: malloc (realloc of a big block is mremap), thread stacks,
     * guest frames given back (MADV_DONTNEED). mmap and mprotect below. */
    SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(madvise), SCMP_SYS(mremap),
    /* Threads (clone is below): their locks, their start and their end;
     * glibc's malloc sizes its arenas by the CPUs it may run on. */
    SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(rseq), SCMP_SYS(exit), SCMP_SYS(exit_group),
    SCMP_SYS(sched_getaffinity),
    /* Who we are: abort() signals its own thread (tgkill below), the
     * control socket compares its peers' uid with ours. */
    SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getuid), SCMP_SYS(geteuid),
    /* Signals: masks around thread creation, handlers (the SIGSYS one,
     * abort's) and their return, a sleep restarted after SIGSTOP/SIGCONT. */
    SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigreturn), SCMP_SYS(restart_syscall),
    /* Clocks (CPU time per thread is not in the vDSO) and sleeps. */
    SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep),
    /* Waiting: the event loop, idle harts, the control socket; the
     * console's epoll set loses standard input at its end. */
    SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(epoll_ctl),
    /* Descriptors already open: console, eventfds, disks, TAP, sockets. */
    SCMP_SYS(read), SCMP_SYS(pread64), SCMP_SYS(write), SCMP_SYS(pwrite64), SCMP_SYS(close),
    SCMP_SYS(newfstatat), SCMP_SYS(lseek),
    /* Disks: a guest flush is fdatasync, discard and write-zeroes fallocate. */
    SCMP_SYS(fdatasync), SCMP_SYS(fallocate),
    /* Harts' wake-up eventfds are made when the guest runs. */
    SCMP_SYS(eventfd2),
    /* virtio-rng, and the MAC address of a card made later. */
    SCMP_SYS(getrandom),
    /* Connections handed over by a listening socket (the control socket,
     * libslirp's port forwards) and the traffic on them. */
    SCMP_SYS(accept), SCMP_SYS(accept4), SCMP_SYS(recvfrom), SCMP_SYS(recvmsg), SCMP_SYS(sendto),
    SCMP_SYS(shutdown), SCMP_SYS(getsockopt), SCMP_SYS(getsockname), SCMP_SYS(getpeername),
};

/* Only with sockets that reach the network (libslirp): guest connections
 * are connected, UDP and forwarded ports bound, options set. */
static const int inet_calls[] = {
    SCMP_SYS(connect), SCMP_SYS(bind), SCMP_SYS(listen), SCMP_SYS(setsockopt),
};

/* Only when VMs are made after the filter: disks are locked as they are
 * opened, every file's file system is checked (io/host_file.c refuses
 * /proc and the like), and the control socket's file is removed on the
 * way out. */
static const int late_calls[] = {
    SCMP_SYS(flock), SCMP_SYS(fstatfs), SCMP_SYS(unlink),
};

/* Only when snapshots are written: the new file is handed to writeback as
 * it grows, it and its directory are synced, and the file renamed over
 * the old one. */
static const int snapshot_calls[] = {
    SCMP_SYS(sync_file_range), SCMP_SYS(fsync), SCMP_SYS(rename), SCMP_SYS(renameat), SCMP_SYS(renameat2),
};

/* What sanitizer runtimes call on top (sanitizer builds only; see
 * sanitizer_rules for clone, prctl and open): each thread's alternate
 * signal stack, and LeakSanitizer's check at exit, whose tracer checks its
 * parent, ptraces every thread (listed from /proc/self/task) and is waited
 * for (yielding meanwhile); readlink for /proc/self/exe when a report is
 * symbolized. */
static const int sanitizer_calls[] = {
    SCMP_SYS(sigaltstack), SCMP_SYS(ptrace),     SCMP_SYS(wait4),    SCMP_SYS(getppid),   SCMP_SYS(sched_yield),
    SCMP_SYS(getdents),    SCMP_SYS(getdents64), SCMP_SYS(readlink),
};

static bool sanitizer_build(void) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    return true;
#else
    return false;
#endif
#else
    return false;
#endif
}

bool sandbox_relaxed_for_sanitizers(void) { return sanitizer_build(); }

struct adder {
    scmp_filter_ctx ctx;
    char *err;
    size_t errlen;
    bool ok;
};

/* seccomp_rule_add with the error kept: the first failure is reported. */
static void rule(struct adder *a, uint32_t action, int nr, unsigned n, const struct scmp_arg_cmp *cmp) {
    if (!a->ok) return;
    int rc = seccomp_rule_add_array(a->ctx, action, nr, n, cmp);
    if (rc < 0) {
        char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
        snprintf(a->err, a->errlen, "cannot add a seccomp rule for %s: %s", name ? name : "?", strerror(-rc));
        free(name);
        a->ok = false;
    }
}

static void allow(struct adder *a, int nr) { rule(a, SCMP_ACT_ALLOW, nr, 0, NULL); }

static void allow_if(struct adder *a, int nr, struct scmp_arg_cmp c) { rule(a, SCMP_ACT_ALLOW, nr, 1, &c); }

static void allow_if2(struct adder *a, int nr, struct scmp_arg_cmp c0, struct scmp_arg_cmp c1) {
    struct scmp_arg_cmp c[2] = {c0, c1};
    rule(a, SCMP_ACT_ALLOW, nr, 2, c);
}

static void allow_all(struct adder *a, const int *nrs, size_t n) {
    for (size_t i = 0; i < n; i++) allow(a, nrs[i]);
}

/* ioctl(fd, request) for one request: the kernel reads it as 32 bits. */
static void allow_ioctl(struct adder *a, unsigned long request) {
    allow_if(a, SCMP_SYS(ioctl), SCMP_A1(SCMP_CMP_MASKED_EQ, LOW32, request & LOW32));
}

static void memory_rules(struct adder *a) {
    /* Anonymous mappings may be executable (the translator's code buffers
     * are read-write-execute); a file may be mapped, but never executable:
     * no code is loaded from files once set up. */
    allow_if(a, SCMP_SYS(mmap), SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    allow_if(a, SCMP_SYS(mmap), SCMP_A3(SCMP_CMP_MASKED_EQ, MAP_ANONYMOUS, MAP_ANONYMOUS));
    /* Nothing is made executable after the fact. */
    allow_if(a, SCMP_SYS(mprotect), SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
}

static void thread_rules(struct adder *a, pid_t pid) {
    /* clone only for threads (pthread_create): never a new process, never
     * a new namespace. */
    const unsigned long forbidden = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
                                    CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWTIME;
    allow_if(a, SCMP_SYS(clone), SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD | forbidden, CLONE_THREAD));
    /* clone3 passes its flags in memory, where a filter cannot look: say
     * it does not exist, and glibc falls back to clone. */
    rule(a, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0, NULL);
    /* Signals only within this process (abort() raising SIGABRT). */
    allow_if(a, SCMP_SYS(tgkill), SCMP_A0(SCMP_CMP_MASKED_EQ, LOW32, (uint32_t)pid));
}

/* openat(dir, path, flags) with (flags & mask) == value; in sanitizer
 * builds open(path, flags) too, which their runtimes use. */
static void allow_open(struct adder *a, unsigned long mask, unsigned long value) {
    allow_if(a, SCMP_SYS(openat), SCMP_A2(SCMP_CMP_MASKED_EQ, mask, value));
    if (sanitizer_build()) allow_if(a, SCMP_SYS(open), SCMP_A1(SCMP_CMP_MASKED_EQ, mask, value));
}

static void file_rules(struct adder *a, const struct sandbox_policy *p) {
    /* Opening: never truncating; creating a file or an unnamed temporary
     * one only when the policy says so. Read-only unless VMs are made later
     * (their disks are opened read-write). Read-only opens happen in
     * every mode: libslirp rereads /etc/resolv.conf, glibc's malloc reads
     * /proc/sys/vm/overcommit_memory when a thread's heap shrinks. */
    const unsigned long tmpfile = O_TMPFILE & ~O_DIRECTORY;
    allow_open(a, O_CREAT | O_TRUNC | tmpfile | (p->late_setup ? 0 : O_ACCMODE), 0);
    if (p->create_files) allow_open(a, O_TRUNC | tmpfile | O_APPEND | O_ACCMODE, O_APPEND | O_WRONLY);
    if (p->swap_files) allow_open(a, O_CREAT | O_TRUNC | tmpfile | O_ACCMODE, tmpfile | O_RDWR);
    if (p->snapshot_files) {
        allow_open(a, O_CREAT | O_EXCL | O_TRUNC | tmpfile | O_ACCMODE, O_CREAT | O_EXCL | O_WRONLY);
        allow_all(a, snapshot_calls, sizeof snapshot_calls / sizeof snapshot_calls[0]);
    }
}

static void socket_rules(struct adder *a) {
    /* TCP and UDP sockets, and ICMP datagram ("ping") sockets, which are
     * SOCK_DGRAM too: never packet sockets, never other families. The type
     * may carry SOCK_NONBLOCK and SOCK_CLOEXEC. */
    const unsigned long type_mask = LOW32 & ~(unsigned long)(SOCK_NONBLOCK | SOCK_CLOEXEC);
    const int families[] = {AF_INET, AF_INET6};
    for (size_t f = 0; f < 2; f++) {
        struct scmp_arg_cmp family = SCMP_A0(SCMP_CMP_MASKED_EQ, LOW32, (unsigned long)families[f]);
        allow_if2(a, SCMP_SYS(socket), family, SCMP_A1(SCMP_CMP_MASKED_EQ, type_mask, SOCK_STREAM));
        allow_if2(a, SCMP_SYS(socket), family, SCMP_A1(SCMP_CMP_MASKED_EQ, type_mask, SOCK_DGRAM));
        /* Where the host refuses ping sockets (net.ipv4.ping_group_range),
         * libslirp tries a raw ICMP socket for the guest's ping instead:
         * refuse it as the kernel would without CAP_NET_RAW, rather than
         * let a guest's ping end the monitor. */
        struct scmp_arg_cmp raw[2] = {family, SCMP_A1(SCMP_CMP_MASKED_EQ, type_mask, SOCK_RAW)};
        rule(a, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 2, raw);
    }
}

static void ioctl_rules(struct adder *a, const struct sandbox_policy *p) {
    /* The terminal: stdio asks whether a stream is one, the console puts
     * it back in its own mode on the way out (tcsetattr TCSANOW). */
    allow_ioctl(a, TCGETS);
    allow_ioctl(a, TCSETS);
    /* libslirp: how much a UDP or ICMP socket has waiting. */
    allow_ioctl(a, FIONREAD);
    /* A TAP device attached to a VM made later; made before, it needs none. */
    if (p->late_setup) allow_ioctl(a, TUNSETIFF);
}

static void fcntl_rules(struct adder *a) {
    /* libslirp makes its sockets non-blocking; no locks, no owners, no
     * leases, no duplicates. */
    const int cmds[] = {F_GETFL, F_SETFL, F_GETFD, F_SETFD};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        allow_if(a, SCMP_SYS(fcntl), SCMP_A1(SCMP_CMP_MASKED_EQ, LOW32, (unsigned long)cmds[i]));
}

static void sanitizer_rules(struct adder *a) {
    allow_all(a, sanitizer_calls, sizeof sanitizer_calls / sizeof sanitizer_calls[0]);
    /* LeakSanitizer's tracer: a task sharing memory, files and fs but no
     * thread group, untraced. fork's flags stay refused. */
    const unsigned long tracer = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_UNTRACED;
    allow_if(a, SCMP_SYS(clone), SCMP_A0(SCMP_CMP_MASKED_EQ, LOW32, tracer));
    /* Whether it may be traced, by whom, and the tracer's end with us. */
    const int options[] = {PR_GET_DUMPABLE, PR_SET_DUMPABLE, PR_SET_PTRACER, PR_SET_PDEATHSIG};
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
        allow_if(a, SCMP_SYS(prctl), SCMP_A0(SCMP_CMP_MASKED_EQ, LOW32, (unsigned long)options[i]));
}

bool sandbox_rules_add(scmp_filter_ctx ctx, const struct sandbox_policy *p, pid_t pid, char *err, size_t errlen) {
    struct adder a = {ctx, err, errlen, true};
    allow_all(&a, always, sizeof always / sizeof always[0]);
    memory_rules(&a);
    thread_rules(&a, pid);
    file_rules(&a, p);
    ioctl_rules(&a, p);
    fcntl_rules(&a);
    if (p->inet) {
        socket_rules(&a);
        allow_all(&a, inet_calls, sizeof inet_calls / sizeof inet_calls[0]);
    }
    if (p->late_setup) allow_all(&a, late_calls, sizeof late_calls / sizeof late_calls[0]);
    if (sanitizer_build()) sanitizer_rules(&a);
    return a.ok;
}
