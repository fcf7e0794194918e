/* Entering the sandbox (sandbox.h): capabilities, no_new_privs, the SIGSYS
 * handler and the filter. The allow-list is in sandbox_rules.c. */
#include "monitor/sandbox.h"

#include <errno.h>
#include <linux/capability.h>
#include <seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "monitor/sandbox_rules.h"

/* Native system call numbers on x86-64 and riscv64 stay below this. */
#define SANDBOX_MAX_NR 512
#define SANDBOX_NAME_LEN 32

struct sandbox {
    /* names[nr]: what the handler prints; made before the filter, when
     * libseccomp may still allocate. Empty if unknown. */
    char names[SANDBOX_MAX_NR][SANDBOX_NAME_LEN];
    uint32_t arch; /* the native one's audit token, as si_arch gives it */
};

/* The one piece of global mutable state in rvisor, and why: a signal
 * handler gets no context argument, so the SIGSYS handler finds the name
 * table here. Set once by sandbox_enter, cleared by sandbox_free. */
static _Atomic(const struct sandbox *) sandbox_for_sigsys;

struct sandbox *sandbox_new(char *err, size_t errlen) {
    struct sandbox *sb = calloc(1, sizeof *sb);
    if (!sb) {
        snprintf(err, errlen, "sandbox: out of memory");
        return NULL;
    }
    sb->arch = seccomp_arch_native();
    for (int nr = 0; nr < SANDBOX_MAX_NR; nr++) {
        char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
        if (name) snprintf(sb->names[nr], SANDBOX_NAME_LEN, "%s", name);
        free(name);
    }
    return sb;
}

void sandbox_free(struct sandbox *sb) {
    if (!sb) return;
    const struct sandbox *expected = sb;
    atomic_compare_exchange_strong(&sandbox_for_sigsys, &expected, NULL);
    free(sb);
}

/* ---- the SIGSYS handler: async-signal-safe, write(2) and exit_group(2) only ---- */

static size_t put_str(char *buf, size_t at, size_t cap, const char *s) {
    while (*s && at < cap) buf[at++] = *s++;
    return at;
}

static size_t put_num(char *buf, size_t at, size_t cap, long v) {
    char digits[24];
    size_t n = 0;
    unsigned long u = v < 0 ? 0ul - (unsigned long)v : (unsigned long)v;
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0 && at < cap) buf[at++] = '-';
    while (n && at < cap) buf[at++] = digits[--n];
    return at;
}

static void on_sigsys(int sig, siginfo_t *si, void *uctx) {
    (void)sig;
    (void)uctx;
    const struct sandbox *sb = atomic_load(&sandbox_for_sigsys);
    char msg[160];
    size_t n = put_str(msg, 0, sizeof msg, "rvisor: sandbox: forbidden system call ");
    int nr = si->si_syscall;
    if (!sb)
        n = put_str(msg, n, sizeof msg, "(unknown)");
    else if (si->si_arch != sb->arch)
        n = put_str(msg, n, sizeof msg, "(of another architecture)");
    else if (nr >= 0 && nr < SANDBOX_MAX_NR && sb->names[nr][0])
        n = put_str(msg, n, sizeof msg, sb->names[nr]);
    else
        n = put_str(msg, n, sizeof msg, "(unknown)");
    n = put_str(msg, n, sizeof msg, " (nr ");
    n = put_num(msg, n, sizeof msg, nr);
    n = put_str(msg, n, sizeof msg, ")\n");
    ssize_t w = write(STDERR_FILENO, msg, n);
    (void)w;
    /* The system call itself: _exit may be wrapped (sanitizers run their
     * exit work there, with calls of their own that would trap again). */
    syscall(SYS_exit_group, SANDBOX_EXIT_STATUS);
}

/* ---- entering ---- */

/* Empties every capability set: after set-up rvisor needs none (see
 * README.md, "Confinement"). The bounding set can only be emptied with
 * CAP_SETPCAP; without it there is nothing to drop there that exec could
 * bring back, and exec is forbidden anyway. */
static bool drop_capabilities(char *err, size_t errlen) {
    for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EPERM) {
            snprintf(err, errlen, "sandbox: cannot drop capability %d from the bounding set: %s", cap,
                     strerror(errno));
            return false;
        }
    }
    /* Kernels before 4.3 have no ambient set. */
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
        snprintf(err, errlen, "sandbox: cannot clear ambient capabilities: %s", strerror(errno));
        return false;
    }
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3];
    memset(none, 0, sizeof none);
    if (syscall(SYS_capset, &hdr, none) != 0) {
        snprintf(err, errlen, "sandbox: cannot drop capabilities: %s", strerror(errno));
        return false;
    }
    return true;
}

static bool load_filter(const struct sandbox_policy *p, char *err, size_t errlen) {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
    if (!ctx) {
        snprintf(err, errlen, "sandbox: cannot make a seccomp filter");
        return false;
    }
    bool ok = false;
    int rc;
    /* Every thread: the event loop and the workers already run. A call
     * made for another architecture (int 0x80) is trapped as well. */
    if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) < 0 ||
        (rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_TRAP)) < 0) {
        snprintf(err, errlen, "sandbox: cannot set up the seccomp filter: %s", strerror(-rc));
        goto out;
    }
    /* A binary tree: the event loop's calls are found in a few steps. */
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    if (!sandbox_rules_add(ctx, p, getpid(), err, errlen)) goto out;
    if ((rc = seccomp_load(ctx)) < 0) {
        snprintf(err, errlen, "sandbox: cannot load the seccomp filter: %s", strerror(-rc));
        goto out;
    }
    ok = true;
out:
    seccomp_release(ctx);
    return ok;
}

bool sandbox_enter(struct sandbox *sb, const struct sandbox_policy *p, char *err, size_t errlen) {
    if (!drop_capabilities(err, errlen)) return false;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        snprintf(err, errlen, "sandbox: cannot set no_new_privs: %s", strerror(errno));
        return false;
    }
    atomic_store(&sandbox_for_sigsys, sb);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL) != 0) {
        snprintf(err, errlen, "sandbox: cannot handle SIGSYS: %s", strerror(errno));
        return false;
    }
    return load_filter(p, err, errlen);
}
