/* Command-line options of `rvisor run`. */
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
};

enum parse_result {
    PARSE_RUN,   /* options are valid: run the guest */
    PARSE_HELP,  /* help was printed: exit 0 */
    PARSE_ERROR, /* an error was printed: exit 1 */
};

/* Parses argv (argv[0] is "run"). */
enum parse_result parse_run_options(int argc, char **argv, struct run_options *o);

void print_run_help(const char *prog);

#endif
