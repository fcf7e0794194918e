/* Unit tests of the sandbox (src/monitor/sandbox*.c): in a child process
 * that entered it with the policy of `rvisor run` or `rvisor serve`, a
 * forbidden system call ends the child with SANDBOX_EXIT_STATUS and one
 * line on stderr naming the call, and what rvisor needs still works. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "monitor/sandbox.h"

static const struct sandbox_policy run_policy = {.inet = false};
static const struct sandbox_policy run_user_net_policy = {.inet = true};
static const struct sandbox_policy serve_policy = {.inet = true, .late_setup = true};

/* What a child reports when its body ran to the end: the call was allowed. */
#define CHILD_DONE 0
/* The body found something wrong (a call failed that should not). */
#define CHILD_WRONG 42

struct outcome {
    int status;      /* the child's exit status, or 128 + a signal that killed it */
    char err[1024];  /* what it wrote to stderr */
};

/* Forks a child that enters the sandbox with policy p and runs body(arg),
 * whose return value is the child's exit status. */
static struct outcome in_sandbox(const struct sandbox_policy *p, int (*body)(void *arg), void *arg) {
    struct outcome o = {.status = -1};
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        char err[256];
        struct sandbox *sb = sandbox_new(err, sizeof err);
        if (!sb || !sandbox_enter(sb, p, err, sizeof err)) {
            dprintf(STDERR_FILENO, "cannot enter: %s\n", err);
            _exit(CHILD_WRONG + 1);
        }
        _exit(body(arg));
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], o.err + len, sizeof o.err - 1 - len)) > 0) len += (size_t)n;
    close(fds[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    o.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return o;
}

static void expect_forbidden(const struct outcome *o, const char *name) {
    char want[128];
    snprintf(want, sizeof want, "rvisor: sandbox: forbidden system call %s (nr ", name);
    if (o->status != SANDBOX_EXIT_STATUS || !strstr(o->err, want))
        fail_msg("expected %s to be refused; exit %d, stderr: %s", name, o->status, o->err);
}

static void expect_allowed(const struct outcome *o) {
    if (o->status != CHILD_DONE) fail_msg("expected the calls to be allowed; exit %d, stderr: %s", o->status, o->err);
}

/* ---- what must be refused ---- */

static int do_execve(void *arg) {
    (void)arg;
    char *argv[] = {"/bin/true", NULL}, *envp[] = {NULL};
    execve("/bin/true", argv, envp);
    return CHILD_WRONG;
}

static int do_execveat(void *arg) {
    (void)arg;
    char *argv[] = {"/bin/true", NULL}, *envp[] = {NULL};
    syscall(SYS_execveat, AT_FDCWD, "/bin/true", argv, envp, 0);
    return CHILD_WRONG;
}

static void test_exec_is_refused(void **state) {
    (void)state;
    struct outcome o = in_sandbox(&run_policy, do_execve, NULL);
    expect_forbidden(&o, "execve");
    /* The message is one line with the number too. */
    char want[64];
    snprintf(want, sizeof want, "execve (nr %d)\n", (int)SYS_execve);
    assert_non_null(strstr(o.err, want));
    o = in_sandbox(&serve_policy, do_execve, NULL);
    expect_forbidden(&o, "execve");
    o = in_sandbox(&serve_policy, do_execveat, NULL);
    expect_forbidden(&o, "execveat");
}

static int do_ptrace(void *arg) {
    (void)arg;
    ptrace(PTRACE_TRACEME, 0, NULL, NULL);
    return CHILD_WRONG;
}

static int do_fork(void *arg) {
    (void)arg;
    /* glibc's fork is clone without CLONE_THREAD (clone3 is ENOSYS). */
    pid_t p = fork();
    if (p == 0) _exit(0);
    return CHILD_WRONG;
}

static void test_ptrace_is_refused(void **state) {
    (void)state;
    /* LeakSanitizer's tracer needs it: sanitizer builds allow it. */
    if (sandbox_relaxed_for_sanitizers()) skip();
    struct outcome o = in_sandbox(&serve_policy, do_ptrace, NULL);
    expect_forbidden(&o, "ptrace");
}

static void test_fork_is_refused(void **state) {
    (void)state;
    struct outcome o = in_sandbox(&serve_policy, do_fork, NULL);
    expect_forbidden(&o, "clone");
    o = in_sandbox(&run_policy, do_fork, NULL);
    expect_forbidden(&o, "clone");
}

static int do_packet_socket(void *arg) {
    (void)arg;
    socket(AF_PACKET, SOCK_RAW, 0);
    return CHILD_WRONG;
}

static int do_raw_inet_socket(void *arg) {
    (void)arg;
    /* libslirp's fallback for a guest's ping: refused, not fatal. */
    int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
    return fd < 0 && errno == EPERM ? CHILD_DONE : CHILD_WRONG;
}

static int do_unix_socket(void *arg) {
    (void)arg;
    socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    return CHILD_WRONG;
}

static int do_netlink_socket(void *arg) {
    (void)arg;
    socket(AF_NETLINK, SOCK_DGRAM, 0);
    return CHILD_WRONG;
}

static int do_tcp_socket(void *arg) {
    (void)arg;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return fd >= 0 ? CHILD_WRONG : CHILD_DONE;
}

static void test_unexpected_sockets_are_refused(void **state) {
    (void)state;
    int (*bodies[])(void *) = {do_packet_socket, do_unix_socket, do_netlink_socket};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        struct outcome o = in_sandbox(&serve_policy, bodies[i], NULL);
        expect_forbidden(&o, "socket");
    }
    /* Without user networking, `rvisor run` makes no socket at all. */
    struct outcome o = in_sandbox(&run_policy, do_tcp_socket, NULL);
    expect_forbidden(&o, "socket");
    /* A guest's ping may make libslirp ask for a raw socket: an error. */
    o = in_sandbox(&run_user_net_policy, do_raw_inet_socket, NULL);
    expect_allowed(&o);
}

static int do_tiocsti(void *arg) {
    (void)arg;
    char c = 'x';
    ioctl(STDIN_FILENO, TIOCSTI, &c); /* typing into the terminal */
    return CHILD_WRONG;
}

static int do_set_owner(void *arg) {
    (void)arg;
    ioctl(STDIN_FILENO, TIOCSCTTY, 0);
    return CHILD_WRONG;
}

static void test_unexpected_ioctls_are_refused(void **state) {
    (void)state;
    struct outcome o = in_sandbox(&serve_policy, do_tiocsti, NULL);
    expect_forbidden(&o, "ioctl");
    o = in_sandbox(&run_policy, do_set_owner, NULL);
    expect_forbidden(&o, "ioctl");
}

static int do_open_create(void *arg) {
    (void)arg;
    openat(AT_FDCWD, "/tmp/rvisor-sandbox-test-never", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    return CHILD_WRONG;
}

static int do_open_truncate(void *arg) {
    (void)arg;
    openat(AT_FDCWD, "/dev/null", O_WRONLY | O_TRUNC | O_CLOEXEC);
    return CHILD_WRONG;
}

static int do_open_write(void *arg) {
    (void)arg;
    openat(AT_FDCWD, "/dev/null", O_RDWR | O_CLOEXEC);
    return CHILD_WRONG;
}

static void test_file_opens_are_limited(void **state) {
    (void)state;
    struct outcome o = in_sandbox(&serve_policy, do_open_create, NULL);
    expect_forbidden(&o, "openat");
    o = in_sandbox(&serve_policy, do_open_truncate, NULL);
    expect_forbidden(&o, "openat");
    /* `rvisor run` opened everything it writes before. */
    o = in_sandbox(&run_policy, do_open_write, NULL);
    expect_forbidden(&o, "openat");
}

static int do_map_file_executable(void *arg) {
    (void)arg;
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return CHILD_WRONG;
    mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    return CHILD_WRONG;
}

static int do_mprotect_executable(void *arg) {
    (void)arg;
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return CHILD_WRONG;
    mprotect(p, 4096, PROT_READ | PROT_EXEC);
    return CHILD_WRONG;
}

static void test_no_new_code_from_files(void **state) {
    (void)state;
    struct outcome o = in_sandbox(&serve_policy, do_map_file_executable, NULL);
    expect_forbidden(&o, "mmap");
    o = in_sandbox(&serve_policy, do_mprotect_executable, NULL);
    expect_forbidden(&o, "mprotect");
}

static int do_kill_parent(void *arg) {
    pid_t *parent = arg;
    kill(*parent, 0);
    return CHILD_WRONG;
}

static int do_tgkill_other(void *arg) {
    pid_t *parent = arg;
    syscall(SYS_tgkill, *parent, *parent, 0);
    return CHILD_WRONG;
}

static void test_signals_stay_inside(void **state) {
    (void)state;
    pid_t parent = getpid();
    struct outcome o = in_sandbox(&serve_policy, do_kill_parent, &parent);
    expect_forbidden(&o, "kill");
    o = in_sandbox(&serve_policy, do_tgkill_other, &parent);
    expect_forbidden(&o, "tgkill");
}

static int do_x32_execve(void *arg) {
    (void)arg;
    /* The x32 ABI's numbers (bit 30 set) must not slip past a filter
     * written for x86-64 ones. */
    syscall(0x40000000 | SYS_execve, "/bin/true", NULL, NULL);
    return CHILD_WRONG;
}

static void test_other_abis_are_refused(void **state) {
    (void)state;
#if defined(__x86_64__)
    struct outcome o = in_sandbox(&serve_policy, do_x32_execve, NULL);
    if (o.status != SANDBOX_EXIT_STATUS || !strstr(o.err, "rvisor: sandbox: forbidden system call "))
        fail_msg("x32 execve: exit %d, stderr: %s", o.status, o.err);
#else
    skip();
#endif
}

/* A thread that existed before the filter is under it too (TSYNC). */
static void *exec_later(void *arg) {
    int *fd = arg;
    char c;
    if (read(*fd, &c, 1) == 1) do_execve(NULL);
    return NULL;
}

static void test_existing_threads_are_confined(void **state) {
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    int err_pipe[2];
    assert_int_equal(pipe(err_pipe), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(err_pipe[0]);
        dup2(err_pipe[1], STDERR_FILENO);
        pthread_t t;
        if (pthread_create(&t, NULL, exec_later, &fds[0]) != 0) _exit(CHILD_WRONG);
        char err[256];
        struct sandbox *sb = sandbox_new(err, sizeof err);
        if (!sb || !sandbox_enter(sb, &run_policy, err, sizeof err)) _exit(CHILD_WRONG + 1);
        if (write(fds[1], "x", 1) != 1) _exit(CHILD_WRONG);
        pthread_join(t, NULL);
        _exit(CHILD_WRONG);
    }
    close(err_pipe[1]);
    struct outcome o = {0};
    size_t len = 0;
    ssize_t n;
    while ((n = read(err_pipe[0], o.err + len, sizeof o.err - 1 - len)) > 0) len += (size_t)n;
    close(err_pipe[0]);
    close(fds[0]);
    close(fds[1]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    o.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    expect_forbidden(&o, "execve");
}

/* ---- what rvisor needs still works ---- */

static void *thread_body(void *arg) {
    (void)arg;
    return NULL;
}

static int do_what_rvisor_does(void *arg) {
    (void)arg;
    /* Threads (glibc tries clone3, gets ENOSYS, uses clone). */
    pthread_t t;
    if (pthread_create(&t, NULL, thread_body, NULL) != 0 || pthread_join(t, NULL) != 0) return CHILD_WRONG;
    /* Executable anonymous memory: the translator's code buffer. */
    void *code = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED || munmap(code, 1 << 16) != 0) return CHILD_WRONG;
    /* Plenty of malloc, some of it big enough to be its own mapping. */
    for (int i = 0; i < 64; i++) {
        void *p = malloc((size_t)i << 16);
        char *q = realloc(p, ((size_t)i << 16) + 1);
        if (!q) return CHILD_WRONG;
        free(q);
    }
    /* Reading a file (libslirp rereads /etc/resolv.conf). */
    int fd = openat(AT_FDCWD, "/proc/self/status", O_RDONLY | O_CLOEXEC);
    char buf[4096];
    if (fd < 0 || read(fd, buf, sizeof buf) <= 0) return CHILD_WRONG;
    close(fd);
    /* Terminal state, as the console restores it. */
    struct termios tio;
    if (tcgetattr(STDIN_FILENO, &tio) == 0 && tcsetattr(STDIN_FILENO, TCSANOW, &tio) != 0) return CHILD_WRONG;
    /* Clocks, sleeps, random bytes, eventfds. */
    struct timespec ts = {0, 1000};
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0 || nanosleep(&(struct timespec){0, 1000}, NULL) != 0)
        return CHILD_WRONG;
    if (getrandom(buf, 16, 0) != 16) return CHILD_WRONG;
    /* abort() could raise SIGABRT in this process. */
    if (syscall(SYS_tgkill, getpid(), gettid(), 0) != 0) return CHILD_WRONG;
    return CHILD_DONE;
}

static int do_user_net(void *arg) {
    (void)arg;
    /* libslirp: TCP, UDP and ICMP datagram sockets, non-blocking. */
    int fds[3] = {
        socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0),
        socket(AF_INET, SOCK_DGRAM, 0),
        socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0),
    };
    for (int i = 0; i < 3; i++) {
        if (fds[i] < 0) return CHILD_WRONG;
        int n = 0;
        if (ioctl(fds[i], FIONREAD, &n) != 0) return CHILD_WRONG;
        close(fds[i]);
    }
    /* A ping socket may be refused by the host's net.ipv4.ping_group_range,
     * but not by the sandbox. */
    int ping = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
    if (ping >= 0) close(ping);
    return CHILD_DONE;
}

static int do_late_setup(void *arg) {
    (void)arg;
    /* serve opens a disk read-write when it makes a VM. */
    int fd = openat(AT_FDCWD, "/dev/null", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return CHILD_WRONG;
    close(fd);
    return do_user_net(NULL);
}

static void test_what_rvisor_needs_is_allowed(void **state) {
    (void)state;
    struct outcome o = in_sandbox(&run_policy, do_what_rvisor_does, NULL);
    expect_allowed(&o);
    o = in_sandbox(&run_user_net_policy, do_user_net, NULL);
    expect_allowed(&o);
    o = in_sandbox(&serve_policy, do_late_setup, NULL);
    expect_allowed(&o);
}

/* The value of a "Name:\tvalue" line of /proc/self/status. */
static bool status_field(const char *status, const char *name, char *out, size_t outlen) {
    char key[64];
    snprintf(key, sizeof key, "\n%s:\t", name);
    const char *p = strstr(status, key);
    if (!p) return false;
    p += strlen(key);
    size_t n = strcspn(p, "\n");
    if (n >= outlen) return false;
    memcpy(out, p, n);
    out[n] = 0;
    return true;
}

static int do_check_status(void *arg) {
    (void)arg;
    /* prctl is not allowed: /proc says it all. */
    char status[8192];
    int fd = openat(AT_FDCWD, "/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return CHILD_WRONG;
    ssize_t n = read(fd, status, sizeof status - 1);
    close(fd);
    if (n <= 0) return CHILD_WRONG;
    status[n] = 0;
    static const struct {
        const char *name, *want;
    } fields[] = {
        {"NoNewPrivs", "1"},
        {"Seccomp", "2"},
        {"CapInh", "0000000000000000"},
        {"CapPrm", "0000000000000000"},
        {"CapEff", "0000000000000000"},
        {"CapAmb", "0000000000000000"},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        char v[64];
        if (!status_field(status, fields[i].name, v, sizeof v) || strcmp(v, fields[i].want)) {
            dprintf(STDERR_FILENO, "%s is %s, not %s\n", fields[i].name, v, fields[i].want);
            return CHILD_WRONG;
        }
    }
    return CHILD_DONE;
}

static void test_capabilities_dropped_and_no_new_privs(void **state) {
    (void)state;
    struct outcome o = in_sandbox(&serve_policy, do_check_status, NULL);
    expect_allowed(&o);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exec_is_refused),
        cmocka_unit_test(test_ptrace_is_refused),
        cmocka_unit_test(test_fork_is_refused),
        cmocka_unit_test(test_unexpected_sockets_are_refused),
        cmocka_unit_test(test_unexpected_ioctls_are_refused),
        cmocka_unit_test(test_file_opens_are_limited),
        cmocka_unit_test(test_no_new_code_from_files),
        cmocka_unit_test(test_signals_stay_inside),
        cmocka_unit_test(test_other_abis_are_refused),
        cmocka_unit_test(test_existing_threads_are_confined),
        cmocka_unit_test(test_what_rvisor_needs_is_allowed),
        cmocka_unit_test(test_capabilities_dropped_and_no_new_privs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
