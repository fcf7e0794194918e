#include "cli/serve_cmd.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "api/server.h"
#include "cli/client.h"
#include "cli/options.h"
#include "monitor/monitor.h"
#include "monitor/sandbox.h"

#define MiB (1024ull * 1024)

/* The control socket is open and listening: from here on the monitor makes
 * VMs (opening their files then) and runs them. */
static struct sandbox *confine(bool swap, char *err, size_t errlen) {
    struct sandbox_policy p = {
        .inet = true,        /* any VM may get user-mode networking */
        .late_setup = true,
        /* The translator opens /tmp/perf-PID.map for each hart it makes. */
        .create_files = getenv("RVISOR_PERF_MAP") != NULL,
        .swap_files = swap, /* each VM's swap file is made with it */
        .snapshot_files = true,
    };
    struct sandbox *sb = sandbox_new(err, errlen);
    if (sb && !sandbox_enter(sb, &p, err, errlen)) {
        sandbox_free(sb);
        return NULL;
    }
    return sb;
}

int serve_command(int argc, char **argv) {
    struct serve_options o;
    switch (parse_serve_options(argc, argv, &o)) {
    case PARSE_HELP: return 0;
    case PARSE_ERROR: return 1;
    case PARSE_RUN: break;
    }
    struct monitor_config cfg = {
        .machine_mem = o.machine_mem, .workers = o.workers, .no_sharing = o.no_sharing, .share_rate = o.share_rate,
        .no_swap = o.no_swap, .swap_dir = o.swap_dir,
        .idle_tax_set = o.idle_tax_set, .idle_tax = o.idle_tax, .sample_ms = o.sample_ms,
    };
    const char *socket_path = o.socket;
    char default_path[PATH_MAX];
    if (!socket_path) {
        client_default_socket(default_path, sizeof default_path);
        socket_path = default_path;
    }

    /* Stop signals arrive through a signalfd watched by the server loop. They
     * are blocked before any thread exists, so every thread inherits that. */
    sigset_t mask, old;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, &old);
    signal(SIGPIPE, SIG_IGN);
    int sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sig_fd < 0) {
        fprintf(stderr, "rvisor: signalfd: %s\n", strerror(errno));
        return 1;
    }

    char err[512] = "";
    struct monitor *m = monitor_create(&cfg, err, sizeof err);
    if (!m) {
        fprintf(stderr, "rvisor: cannot start the monitor: %s\n", err[0] ? err : "unknown error");
        close(sig_fd);
        return 1;
    }
    if (o.incoming && monitor_listen_incoming(m, o.incoming, err, sizeof err) != 0) {
        fprintf(stderr, "rvisor: --incoming: %s\n", err);
        monitor_destroy(m);
        close(sig_fd);
        return 1;
    }
    struct api_server *s = api_server_open(m, socket_path, err, sizeof err);
    if (!s) {
        fprintf(stderr, "rvisor: %s\n", err);
        monitor_destroy(m);
        close(sig_fd);
        return 1;
    }
    struct sandbox *sb = NULL;
    if (!o.no_sandbox && !(sb = confine(!o.no_swap, err, sizeof err))) {
        fprintf(stderr, "rvisor: %s (--no-sandbox runs without it)\n", err);
        api_server_close(s);
        monitor_destroy(m);
        close(sig_fd);
        return 1;
    }
    uint64_t total = 0, free_bytes = 0;
    monitor_memory(m, &total, &free_bytes);
    fprintf(stderr, "rvisor: monitor serving on %s (%llu MiB of machine memory)\n", socket_path,
            (unsigned long long)(total / MiB));
    int rc = api_server_run(s, sig_fd, err, sizeof err);
    if (rc != 0) fprintf(stderr, "rvisor: %s\n", err);
    struct signalfd_siginfo si;
    if (read(sig_fd, &si, sizeof si) == sizeof si)
        fprintf(stderr, "rvisor: signal %u: stopping every VM\n", si.ssi_signo);
    else
        fprintf(stderr, "rvisor: shutting down: stopping every VM\n");
    api_server_close(s);
    monitor_destroy(m);
    close(sig_fd);
    sigprocmask(SIG_SETMASK, &old, NULL);
    fprintf(stderr, "rvisor: monitor stopped\n");
    sandbox_free(sb);
    return rc == 0 ? 0 : 1;
}
