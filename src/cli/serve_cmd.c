#include "cli/serve_cmd.h"

#include <errno.h>
#include <getopt.h>
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

#define MiB (1024ull * 1024)

static void print_serve_help(void) {
    printf("Usage: rvisor serve [--socket PATH] [--machine-mem SIZE] [--workers N] [--sharing on|off]\n"
           "Run the monitor: many VMs in this process, controlled through a Unix socket\n"
           "(rvisor create, start, ls, console, stats, stop, destroy; see src/api/protocol.h).\n"
           "\n"
           "  --socket PATH       the control socket (default $XDG_RUNTIME_DIR/rvisor.sock,\n"
           "                      or /tmp/rvisor-UID.sock); created mode 0600, removed on exit\n"
           "  --machine-mem SIZE  ceiling on the host memory handed out to all guests\n"
           "                      (default: most of the host's memory)\n"
           "  --workers N         host threads that run VMs (default: one per host core)\n"
           "  --sharing on|off    content-based page sharing: a scanner merges identical\n"
           "                      guest frames within a VM and within a share group (default on)\n"
           "  --share-rate N      frames the scanner hashes per second (default 20000)\n"
           "  -h, --help          show this help\n"
           "\n"
           "Runs until SIGINT, SIGTERM or SIGHUP, or `rvisor shutdown`; then stops every VM.\n");
}

static uint64_t host_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : UINT64_MAX;
}

int serve_command(int argc, char **argv) {
    enum { OPT_SOCKET = 256, OPT_MACHINE_MEM, OPT_WORKERS, OPT_SHARING, OPT_SHARE_RATE };
    static const struct option longopts[] = {
        {"socket", required_argument, 0, OPT_SOCKET},
        {"machine-mem", required_argument, 0, OPT_MACHINE_MEM},
        {"workers", required_argument, 0, OPT_WORKERS},
        {"sharing", required_argument, 0, OPT_SHARING},
        {"share-rate", required_argument, 0, OPT_SHARE_RATE},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *socket_path = NULL, *mem_arg = NULL, *workers_arg = NULL, *sharing_arg = NULL, *rate_arg = NULL;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_SOCKET: socket_path = optarg; break;
        case OPT_MACHINE_MEM: mem_arg = optarg; break;
        case OPT_WORKERS: workers_arg = optarg; break;
        case OPT_SHARING: sharing_arg = optarg; break;
        case OPT_SHARE_RATE: rate_arg = optarg; break;
        case 'h': print_serve_help(); return 0;
        case ':': fprintf(stderr, "rvisor: option '%s' needs a value\n", argv[optind - 1]); return 1;
        default: fprintf(stderr, "rvisor: unknown option '%s' (see rvisor serve --help)\n", argv[optind - 1]); return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rvisor: unexpected argument '%s' (see rvisor serve --help)\n", argv[optind]);
        return 1;
    }
    struct monitor_config cfg = {0};
    if (mem_arg) {
        if (!parse_size(mem_arg, &cfg.machine_mem) || cfg.machine_mem < 2 * MiB) {
            fprintf(stderr, "rvisor: --machine-mem '%s' is not a size of at least 2M\n", mem_arg);
            return 1;
        }
        if (cfg.machine_mem > host_memory()) {
            fprintf(stderr, "rvisor: --machine-mem %s is more than this host's %llu MiB of memory\n", mem_arg,
                    (unsigned long long)(host_memory() / MiB));
            return 1;
        }
    }
    if (workers_arg) {
        char *end;
        errno = 0;
        long n = strtol(workers_arg, &end, 10);
        if (errno || end == workers_arg || *end || n < 1 || n > 1024) {
            fprintf(stderr, "rvisor: --workers must be a number from 1 to 1024, not '%s'\n", workers_arg);
            return 1;
        }
        cfg.workers = (unsigned)n;
    }
    if (sharing_arg) {
        if (strcmp(sharing_arg, "on") && strcmp(sharing_arg, "off")) {
            fprintf(stderr, "rvisor: --sharing must be on or off, not '%s'\n", sharing_arg);
            return 1;
        }
        cfg.no_sharing = strcmp(sharing_arg, "off") == 0;
    }
    if (rate_arg) {
        char *end;
        errno = 0;
        long long n = strtoll(rate_arg, &end, 10);
        if (errno || end == rate_arg || *end || n < 1 || n > MONITOR_SHARE_RATE_MAX) {
            fprintf(stderr, "rvisor: --share-rate must be a number from 1 to %d frames per second, not '%s'\n",
                    MONITOR_SHARE_RATE_MAX, rate_arg);
            return 1;
        }
        cfg.share_rate = (unsigned)n;
    }
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
    struct api_server *s = api_server_open(m, socket_path, err, sizeof err);
    if (!s) {
        fprintf(stderr, "rvisor: %s\n", err);
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
    return rc == 0 ? 0 : 1;
}
