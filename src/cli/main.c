/* rvisor: a virtual machine monitor for RISC-V guests. */
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/client.h"
#include "cli/run_cmd.h"
#include "cli/serve_cmd.h"
#include "cli/top.h"

static void usage(FILE *f) {
    fprintf(f, "Usage: rvisor COMMAND [OPTIONS]\n"
               "\n"
               "Commands:\n"
               "  run      boot a virtual machine on this terminal (rvisor run --help)\n"
               "  serve    run the monitor: many VMs behind a control socket (rvisor serve --help)\n"
               "  help     show this help\n"
               "  version  show the version\n"
               "\n"
               "Commands to a running monitor (each takes --socket PATH and --help):\n"
               "  create NAME --kernel FILE [...]  create a VM\n"
               "  start|pause|resume|stop NAME     change its state\n"
               "  destroy NAME                     stop it and free its memory\n"
               "  stats NAME [--json]              its statistics, with the guest's own memory figures\n"
               "  balloon NAME SIZE                the guest keeps SIZE of its RAM (virtio-balloon)\n"
               "  ls [--json]                      list the VMs\n"
               "  console NAME                     attach to its console (Ctrl-A x detaches)\n"
               "  top                              live view of every VM (CPU, MIPS, exits/s, TLB hits)\n"
               "  shutdown                         stop every VM and the monitor\n");
}

/* Guests' network connections (libslirp), disks and devices are host
 * descriptors: allow as many as the hard limit does, not the soft 1024. */
static void raise_fd_limit(void) {
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

/* A VM's large structures (TLBs, jump caches, its p2m, libslirp's buffers)
 * are freed when it is destroyed. glibc raises its mmap threshold to the
 * size of each large block freed, so the next VM's blocks came from the
 * heap instead, where fragmentation kept them resident: the monitor grew by
 * ~1.5 MiB per create/destroy cycle (bench/soak.py). A fixed threshold
 * keeps large blocks in their own mappings, given back whole on free. */
static void keep_large_blocks_mapped(void) {
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") == 0 || strcmp(cmd, "serve") == 0) {
        raise_fd_limit();
        keep_large_blocks_mapped();
    }
    if (strcmp(cmd, "run") == 0) return run_command(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0) return serve_command(argc - 1, argv + 1);
    if (strcmp(cmd, "top") == 0) return top_command(argc - 1, argv + 1);
    if (client_is_command(cmd)) return client_command(argc - 1, argv + 1);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("rvisor %s\n", RVISOR_VERSION);
        return 0;
    }
    fprintf(stderr, "rvisor: unknown command '%s'\n", cmd);
    usage(stderr);
    return 1;
}
