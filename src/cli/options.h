/* Command-line options of `rvisor run` and `rvisor serve`. */
#ifndef RVISOR_OPTIONS_H
#define RVISOR_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "vm/platform.h"
#include "vm/engine.h"
#include "vm/size.h" /* parse_size, which the API shares */

struct run_options {
    const char *kernel, *initrd, *append, *bios;
    uint64_t mem_size;
    uint64_t machine_mem;  /* 0: the default ceiling */
    unsigned cpus;
    bool stats;
    const char *drives[VM_MAX_DRIVES]; /* --drive option strings */
    unsigned ndrives;
    const char *nets[VM_MAX_NETS];     /* --net option strings */
    unsigned nnets;
    bool virtio_console;               /* --console virtio: hvc0 instead of ttyS0 */
    bool no_balloon;
    enum vm_engine engine;             /* VM_ENGINE_DEFAULT unless --engine */
    size_t jit_cache;                  /* --jit-cache bytes, 0: the default */
    bool no_sandbox;                   /* --no-sandbox: no seccomp filter, capabilities kept */
};

struct serve_options {
    const char *socket;     /* --socket, NULL: the default path */
    uint64_t machine_mem;   /* 0: the default ceiling */
    unsigned workers;       /* 0: one per host core */
    bool no_sandbox;        /* --no-sandbox */
    bool no_sharing;        /* --sharing off */
    unsigned share_rate;    /* --share-rate, 0: the default */
    bool no_swap;           /* --swap off */
    const char *swap_dir;   /* --swap-dir, NULL: the default */
    bool idle_tax_set;      /* --idle-tax given */
    unsigned idle_tax;      /* percent */
    unsigned sample_ms;     /* --sample-period, 0: the default */
    const char *incoming;   /* --incoming tcp:ADDR:PORT, or NULL */
};

enum parse_result {
    PARSE_RUN,   /* options are valid: run the guest */
    PARSE_HELP,  /* help was printed: exit 0 */
    PARSE_ERROR, /* an error was printed: exit 1 */
};

/* Parses argv (argv[0] is "run"). */
enum parse_result parse_run_options(int argc, char **argv, struct run_options *o);
/* Parses argv (argv[0] is "serve"). */
enum parse_result parse_serve_options(int argc, char **argv, struct serve_options *o);

/* Every command's getopt_long loop starts with this: a fresh parse. */
void getopt_restart(void);

void print_run_help(const char *prog);
void print_serve_help(void);

#endif
