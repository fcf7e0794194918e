#include "cli/options.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "monitor/monitor.h" /* MONITOR_SHARE_RATE */
#include "monitor/sandbox.h"
#include "vm/platform.h"

#define MiB (1024ull * 1024)

void print_run_help(const char *prog) {
    printf("Usage: %s run [OPTIONS]\n"
           "Boot one RISC-V virtual machine with its console on this terminal.\n"
           "\n"
           "  --kernel FILE    Linux kernel Image (arch/riscv/boot/Image)\n"
           "  --initrd FILE    initial ramdisk (cpio, gzip-compressed or not)\n"
           "  --append STRING  kernel command line (default: \"console=ttyS0\", or\n"
           "                   \"console=hvc0\" with --console virtio)\n"
           "  --mem SIZE       guest RAM: a number of MiB, or with suffix K, M or G\n"
           "                   (default 256M; at most the host's physical memory)\n"
           "  --cpus N         number of harts, 1 to %d (default 1); each runs on its\n"
           "                   own host thread\n"
           "  --machine-mem SIZE  ceiling on the host memory the monitor hands out to\n"
           "                   guests (default: most of the host's memory). Guest RAM is\n"
           "                   backed only when first written, so --mem may exceed it.\n"
           "  --stats          on exit, print per-hart counters (instructions, memory\n"
           "                   accesses, software-TLB misses, traps, ...) and memory backed\n"
           "  --drive SPEC     a virtio-blk disk (up to %d): file=PATH[,readonly=on]\n"
           "                   [,serial=ID]; PATH is a raw image\n"
           "  --net SPEC       a virtio-net card (up to %d):\n"
           "                   user[,hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT]...[,mac=MAC]\n"
           "                   (user-mode networking: DHCP, DNS, outbound TCP/UDP) or\n"
           "                   tap=IFNAME[,mac=MAC] (an existing or new TAP device;\n"
           "                   creating one needs CAP_NET_ADMIN)\n"
           "  --console uart|virtio  the guest console: the 16550 UART (ttyS0, default)\n"
           "                   or virtio-console (hvc0)\n"
           "  --no-balloon     leave out the virtio-balloon device\n"
           "  --engine jit|interp  how guest code runs: the binary translator (default on\n"
           "                   x86-64 hosts) or the interpreter (the reference)\n"
           "  --jit-cache SIZE translated-code buffer per hart (default 32M, at least 1M);\n"
           "                   emptied and refilled when full\n"
           "  --bios FILE      M-mode firmware or bare-metal program (ELF, or raw binary\n"
           "                   loaded at 0x80000000). Without it the SBI is provided by\n"
           "                   rvisor and the kernel starts in S-mode. A bare-metal ELF may\n"
           "                   end the run through the HTIF tohost symbol.\n"
           "  --no-sandbox     do not confine rvisor once the guest is set up (by default\n"
           "                   no capabilities and a seccomp filter allowing only the\n"
           "                   system calls it needs): for debugging\n"
           "  -h, --help       show this help\n"
           "\n"
           "Console: Ctrl-A x quits, Ctrl-A h helps, Ctrl-A Ctrl-A sends Ctrl-A.\n"
           "\n"
           "Exit status:\n"
           "  0  the guest powered off (or a bare-metal test passed)\n"
           "  1  rvisor could not start the guest (bad option, missing or bad file)\n"
           "  2  the guest asked for a reboot\n"
           "  3  the guest kernel panicked\n"
           "  4  the guest hit an unrecoverable fault (e.g. a trap with no handler)\n"
           "  5  a bare-metal test reported failure\n"
           "  6  stopped by the user (Ctrl-A x) or a signal\n"
           "  %d the sandbox stopped a system call rvisor may not make (a bug; the\n"
           "     message names the call)\n",
           prog, VM_MAX_HARTS, VM_MAX_DRIVES, VM_MAX_NETS, SANDBOX_EXIT_STATUS);
}

void getopt_restart(void) {
    /* 0, not 1: glibc's full reset, which also drops what an earlier call
     * left half-read (a cluster like -hh stops at its first h, leaving a
     * pointer into that argv, read by the next parse if only optind = 1). */
    optind = 0;
}

void print_serve_help(void) {
    printf("Usage: rvisor serve [--socket PATH] [--machine-mem SIZE] [--workers N]\n"
           "                    [--sharing on|off] [--share-rate N] [--swap on|off] [--swap-dir DIR]\n"
           "                    [--idle-tax PCT] [--sample-period S] [--incoming tcp:ADDR:PORT]\n"
           "                    [--no-sandbox]\n"
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
           "  --share-rate N      frames the scanner hashes per second (default %u)\n"
           "  --swap on|off       hypervisor swap: when machine memory runs short, guest\n"
           "                      frames go to a per-VM swap file and guests wait for memory\n"
           "                      instead of stopping (default on)\n"
           "  --swap-dir DIR      where the swap files are made, unnamed (default $TMPDIR or\n"
           "                      /var/tmp); each may grow to its guest's RAM size\n"
           "  --idle-tax PCT      idle memory tax, 0 to 99: how much more an idle page costs\n"
           "                      when memory is short (default %u, as ESX)\n"
           "  --sample-period S   seconds between active-memory samples (default %u)\n"
           "  --incoming tcp:ADDR:PORT  accept VMs that other monitors migrate here\n"
           "                      (`rvisor migrate NAME tcp:HOST:PORT` there); ADDR an IPv4\n"
           "                      address, empty for any; the stream is not encrypted: use it\n"
           "                      on trusted networks only\n"
           "  --no-sandbox        do not confine the monitor once its socket is open (by\n"
           "                      default no capabilities, so TAP devices must exist\n"
           "                      beforehand, and a seccomp filter allowing only the system\n"
           "                      calls it needs): for debugging\n"
           "  -h, --help          show this help\n"
           "\n"
           "Runs until SIGINT, SIGTERM or SIGHUP, or `rvisor shutdown`; then stops every VM.\n"
           "Exits 0, 1 on an error, %d if the sandbox stopped a forbidden system call.\n",
           MONITOR_SHARE_RATE, MONITOR_IDLE_TAX, MONITOR_SAMPLE_MS / 1000, SANDBOX_EXIT_STATUS);
}

static uint64_t host_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : UINT64_MAX;
}

enum parse_result parse_run_options(int argc, char **argv, struct run_options *o) {
    enum {
        OPT_KERNEL = 256, OPT_INITRD, OPT_APPEND, OPT_MEM, OPT_CPUS, OPT_BIOS, OPT_MACHINE_MEM, OPT_STATS,
        OPT_DRIVE, OPT_NET, OPT_CONSOLE, OPT_NO_BALLOON, OPT_ENGINE, OPT_JIT_CACHE, OPT_NO_SANDBOX,
    };
    static const struct option longopts[] = {
        {"kernel", required_argument, 0, OPT_KERNEL}, {"initrd", required_argument, 0, OPT_INITRD},
        {"append", required_argument, 0, OPT_APPEND}, {"mem", required_argument, 0, OPT_MEM},
        {"cpus", required_argument, 0, OPT_CPUS},     {"bios", required_argument, 0, OPT_BIOS},
        {"machine-mem", required_argument, 0, OPT_MACHINE_MEM}, {"stats", no_argument, 0, OPT_STATS},
        {"drive", required_argument, 0, OPT_DRIVE},  {"net", required_argument, 0, OPT_NET},
        {"console", required_argument, 0, OPT_CONSOLE}, {"no-balloon", no_argument, 0, OPT_NO_BALLOON},
        {"engine", required_argument, 0, OPT_ENGINE}, {"jit-cache", required_argument, 0, OPT_JIT_CACHE},
        {"no-sandbox", no_argument, 0, OPT_NO_SANDBOX},
        {"help", no_argument, 0, 'h'},                {0, 0, 0, 0},
    };
    *o = (struct run_options){.mem_size = 256 * MiB, .cpus = 1};
    const char *mem_arg = NULL, *cpus_arg = NULL, *machine_arg = NULL, *jit_cache_arg = NULL;
    getopt_restart();
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_KERNEL: o->kernel = optarg; break;
        case OPT_INITRD: o->initrd = optarg; break;
        case OPT_APPEND: o->append = optarg; break;
        case OPT_MEM: mem_arg = optarg; break;
        case OPT_CPUS: cpus_arg = optarg; break;
        case OPT_BIOS: o->bios = optarg; break;
        case OPT_MACHINE_MEM: machine_arg = optarg; break;
        case OPT_STATS: o->stats = true; break;
        case OPT_DRIVE:
            if (o->ndrives == VM_MAX_DRIVES) {
                fprintf(stderr, "rvisor: at most %d --drive options\n", VM_MAX_DRIVES);
                return PARSE_ERROR;
            }
            o->drives[o->ndrives++] = optarg;
            break;
        case OPT_NET:
            if (o->nnets == VM_MAX_NETS) {
                fprintf(stderr, "rvisor: at most %d --net options\n", VM_MAX_NETS);
                return PARSE_ERROR;
            }
            o->nets[o->nnets++] = optarg;
            break;
        case OPT_CONSOLE:
            if (strcmp(optarg, "virtio") && strcmp(optarg, "uart")) {
                fprintf(stderr, "rvisor: --console must be 'uart' or 'virtio', not '%s'\n", optarg);
                return PARSE_ERROR;
            }
            o->virtio_console = !strcmp(optarg, "virtio");
            break;
        case OPT_NO_BALLOON: o->no_balloon = true; break;
        case OPT_ENGINE:
            if (!vm_engine_parse(optarg, &o->engine)) {
                fprintf(stderr, "rvisor: --engine must be 'jit' or 'interp', not '%s'\n", optarg);
                return PARSE_ERROR;
            }
            break;
        case OPT_JIT_CACHE: jit_cache_arg = optarg; break;
        case OPT_NO_SANDBOX: o->no_sandbox = true; break;
        case 'h': print_run_help("rvisor"); return PARSE_HELP;
        case ':': fprintf(stderr, "rvisor: option '%s' needs a value\n", argv[optind - 1]); return PARSE_ERROR;
        default: fprintf(stderr, "rvisor: unknown option '%s' (see rvisor run --help)\n", argv[optind - 1]); return PARSE_ERROR;
        }
    }
    if (!o->append) o->append = o->virtio_console ? "console=hvc0" : "console=ttyS0";
    if (optind < argc) {
        fprintf(stderr, "rvisor: unexpected argument '%s' (see rvisor run --help)\n", argv[optind]);
        return PARSE_ERROR;
    }
    if (mem_arg) {
        if (!parse_size(mem_arg, &o->mem_size)) {
            fprintf(stderr, "rvisor: --mem '%s' is not a size (examples: 256, 256M, 1G)\n", mem_arg);
            return PARSE_ERROR;
        }
        if (o->mem_size < MiB) {
            fprintf(stderr, "rvisor: --mem %s is too small: a guest needs at least 1 MiB\n", mem_arg);
            return PARSE_ERROR;
        }
        if (o->mem_size > host_memory()) {
            fprintf(stderr, "rvisor: --mem %s is more than this host's %llu MiB of memory\n", mem_arg,
                    (unsigned long long)(host_memory() / MiB));
            return PARSE_ERROR;
        }
        if (o->mem_size > 0x80000000ull * 31) { /* RAM must stay below the top of the Sv48 physical space */
            fprintf(stderr, "rvisor: --mem %s is too large\n", mem_arg);
            return PARSE_ERROR;
        }
        o->mem_size = (o->mem_size + 4095) & ~4095ull;
    }
    if (machine_arg) {
        if (!parse_size(machine_arg, &o->machine_mem) || o->machine_mem < 2 * MiB) {
            fprintf(stderr, "rvisor: --machine-mem '%s' is not a size of at least 2M\n", machine_arg);
            return PARSE_ERROR;
        }
        if (o->machine_mem > host_memory()) {
            fprintf(stderr, "rvisor: --machine-mem %s is more than this host's %llu MiB of memory\n", machine_arg,
                    (unsigned long long)(host_memory() / MiB));
            return PARSE_ERROR;
        }
    }
    if (jit_cache_arg) {
        uint64_t bytes;
        if (!parse_size(jit_cache_arg, &bytes) || bytes < VM_JIT_CACHE_MIN || bytes > VM_JIT_CACHE_MAX) {
            fprintf(stderr, "rvisor: --jit-cache '%s' is not a size from 1M to 4G\n", jit_cache_arg);
            return PARSE_ERROR;
        }
        o->jit_cache = (size_t)bytes;
    }
    if (cpus_arg) {
        char *end;
        errno = 0;
        long n = strtol(cpus_arg, &end, 10);
        if (errno || *end || end == cpus_arg || n < 1 || n > VM_MAX_HARTS) {
            fprintf(stderr, "rvisor: --cpus must be a number from 1 to %d, not '%s'\n", VM_MAX_HARTS, cpus_arg);
            return PARSE_ERROR;
        }
        o->cpus = (unsigned)n;
    }
    if (!o->kernel && !o->bios) {
        fprintf(stderr, "rvisor: nothing to run: give --kernel (or --bios); see rvisor run --help\n");
        return PARSE_ERROR;
    }
    if (o->initrd && !o->kernel) {
        fprintf(stderr, "rvisor: --initrd needs --kernel\n");
        return PARSE_ERROR;
    }
    return PARSE_RUN;
}

/* "on" or "off" into *off; false (with a message) for anything else. */
static bool on_off(const char *opt, const char *arg, bool *off) {
    if (strcmp(arg, "on") && strcmp(arg, "off")) {
        fprintf(stderr, "rvisor: %s must be on or off, not '%s'\n", opt, arg);
        return false;
    }
    *off = strcmp(arg, "off") == 0;
    return true;
}

enum parse_result parse_serve_options(int argc, char **argv, struct serve_options *o) {
    enum { OPT_SOCKET = 256, OPT_MACHINE_MEM, OPT_WORKERS, OPT_NO_SANDBOX, OPT_SHARING, OPT_SHARE_RATE, OPT_SWAP,
           OPT_SWAP_DIR, OPT_IDLE_TAX, OPT_SAMPLE_PERIOD, OPT_INCOMING };
    static const struct option longopts[] = {
        {"socket", required_argument, 0, OPT_SOCKET},
        {"machine-mem", required_argument, 0, OPT_MACHINE_MEM},
        {"workers", required_argument, 0, OPT_WORKERS},
        {"sharing", required_argument, 0, OPT_SHARING},
        {"share-rate", required_argument, 0, OPT_SHARE_RATE},
        {"swap", required_argument, 0, OPT_SWAP},
        {"swap-dir", required_argument, 0, OPT_SWAP_DIR},
        {"idle-tax", required_argument, 0, OPT_IDLE_TAX},
        {"sample-period", required_argument, 0, OPT_SAMPLE_PERIOD},
        {"incoming", required_argument, 0, OPT_INCOMING},
        {"no-sandbox", no_argument, 0, OPT_NO_SANDBOX},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    *o = (struct serve_options){0};
    const char *mem_arg = NULL, *workers_arg = NULL, *sharing_arg = NULL, *rate_arg = NULL, *swap_arg = NULL;
    const char *tax_arg = NULL, *period_arg = NULL;
    getopt_restart();
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_SOCKET: o->socket = optarg; break;
        case OPT_MACHINE_MEM: mem_arg = optarg; break;
        case OPT_WORKERS: workers_arg = optarg; break;
        case OPT_NO_SANDBOX: o->no_sandbox = true; break;
        case OPT_SHARING: sharing_arg = optarg; break;
        case OPT_SHARE_RATE: rate_arg = optarg; break;
        case OPT_SWAP: swap_arg = optarg; break;
        case OPT_SWAP_DIR: o->swap_dir = optarg; break;
        case OPT_IDLE_TAX: tax_arg = optarg; break;
        case OPT_SAMPLE_PERIOD: period_arg = optarg; break;
        case OPT_INCOMING: o->incoming = optarg; break;
        case 'h': print_serve_help(); return PARSE_HELP;
        case ':': fprintf(stderr, "rvisor: option '%s' needs a value\n", argv[optind - 1]); return PARSE_ERROR;
        default: fprintf(stderr, "rvisor: unknown option '%s' (see rvisor serve --help)\n", argv[optind - 1]); return PARSE_ERROR;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rvisor: unexpected argument '%s' (see rvisor serve --help)\n", argv[optind]);
        return PARSE_ERROR;
    }
    if (mem_arg) {
        if (!parse_size(mem_arg, &o->machine_mem) || o->machine_mem < 2 * MiB) {
            fprintf(stderr, "rvisor: --machine-mem '%s' is not a size of at least 2M\n", mem_arg);
            return PARSE_ERROR;
        }
        if (o->machine_mem > host_memory()) {
            fprintf(stderr, "rvisor: --machine-mem %s is more than this host's %llu MiB of memory\n", mem_arg,
                    (unsigned long long)(host_memory() / MiB));
            return PARSE_ERROR;
        }
    }
    if (workers_arg) {
        char *end;
        errno = 0;
        long n = strtol(workers_arg, &end, 10);
        if (errno || end == workers_arg || *end || n < 1 || n > 1024) {
            fprintf(stderr, "rvisor: --workers must be a number from 1 to 1024, not '%s'\n", workers_arg);
            return PARSE_ERROR;
        }
        o->workers = (unsigned)n;
    }
    if (sharing_arg && !on_off("--sharing", sharing_arg, &o->no_sharing)) return PARSE_ERROR;
    if (swap_arg && !on_off("--swap", swap_arg, &o->no_swap)) return PARSE_ERROR;
    if (rate_arg) {
        char *end;
        errno = 0;
        long long n = strtoll(rate_arg, &end, 10);
        if (errno || end == rate_arg || *end || n < 1 || n > MONITOR_SHARE_RATE_MAX) {
            fprintf(stderr, "rvisor: --share-rate must be a number from 1 to %d frames per second, not '%s'\n",
                    MONITOR_SHARE_RATE_MAX, rate_arg);
            return PARSE_ERROR;
        }
        o->share_rate = (unsigned)n;
    }
    if (tax_arg) {
        char *end;
        errno = 0;
        long n = strtol(tax_arg, &end, 10);
        if (errno || end == tax_arg || *end || n < 0 || n > 99) {
            fprintf(stderr, "rvisor: --idle-tax must be a percentage from 0 to 99, not '%s'\n", tax_arg);
            return PARSE_ERROR;
        }
        o->idle_tax_set = true;
        o->idle_tax = (unsigned)n;
    }
    if (period_arg) {
        char *end;
        errno = 0;
        double sec = strtod(period_arg, &end);
        if (errno || end == period_arg || *end || !(sec >= MONITOR_SAMPLE_MS_MIN / 1000.0) || sec > 3600) {
            fprintf(stderr, "rvisor: --sample-period must be from %.1f to 3600 seconds, not '%s'\n",
                    MONITOR_SAMPLE_MS_MIN / 1000.0, period_arg);
            return PARSE_ERROR;
        }
        o->sample_ms = (unsigned)(sec * 1000 + 0.5);
    }
    if (o->swap_dir && !o->swap_dir[0]) {
        fprintf(stderr, "rvisor: --swap-dir needs a directory\n");
        return PARSE_ERROR;
    }
    return PARSE_RUN;
}
