/* libFuzzer harness: the command-line option parsers (cli/options.h) and
 * the option strings they pass on: sizes (vm/size.h), engines, --net specs
 * (virtio_net's parser, hostfwd= and mac=) and --drive specs (virtio_blk's).
 *
 * The input is a list of arguments separated by NUL bytes. They are parsed
 * as `rvisor run ARGS` and as `rvisor serve ARGS`; every argument also goes
 * to parse_size, vm_engine_parse, and the --net and --drive parsers. The
 * --net parser runs without an event loop, so it stops after parsing
 * (no backend is made); a --drive spec goes to the real constructor only
 * when it holds "file=" and no '/' (the first MAX_DRIVE_ARGS such), so
 * that nothing outside the working directory is ever opened (an existing
 * file there is opened, locked and closed, never written: bench/fuzz.sh
 * runs the harness in a scratch directory holding disk.img). The parsers'
 * messages and help go to /dev/null. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/options.h"
#include "dev/virtio_blk.h"
#include "dev/virtio_net.h"
#include "net/net_backend.h"
#include "vm/engine.h"
#include "vm/size.h"

#define MAX_ARGS 64
#define MAX_DRIVE_ARGS 2

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    /* The parsers print with stdio; libFuzzer and the sanitizers keep the real fd 2. */
    FILE *null = fopen("/dev/null", "w");
    if (null) stdout = stderr = null;
    return 0;
}

static void check(bool ok) {
    if (!ok) __builtin_trap();
}

static void one_arg(const char *s, bool drive) {
    uint64_t bytes;
    enum vm_engine e;
    (void)parse_size(s, &bytes);
    (void)vm_engine_parse(s, &e);
    uint8_t mac[6];
    if (virtio_net_parse_mac(s, mac)) check(!(mac[0] & 1)); /* unicast only */
    struct slirp_hostfwd fwd;
    char err[256];
    (void)slirp_hostfwd_parse(s, &fwd, err, sizeof err);

    struct virtio_backend_env env = {0}; /* no loop: the net constructor stops after parsing */
    struct virtio_backend b;
    check(!virtio_net_backend_create(s, &env, &b, err, sizeof err));
    if (drive && !strchr(s, '/') && virtio_blk_backend_create(s, &env, &b, err, sizeof err)) b.destroy(b.dev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* A private NUL-terminated copy, split at NULs. */
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    char *args[MAX_ARGS];
    int n = 0;
    for (char *p = buf; n < MAX_ARGS && p <= buf + size; p += strlen(p) + 1) args[n++] = p;
    if (n == 1 && !size) n = 0;

    char *argv[MAX_ARGS + 2];
    argv[0] = "run";
    memcpy(argv + 1, args, sizeof(char *) * (size_t)n);
    argv[n + 1] = NULL;
    struct run_options ro;
    if (parse_run_options(n + 1, argv, &ro) == PARSE_RUN) {
        check(ro.kernel || ro.bios);
        check(ro.cpus >= 1 && ro.cpus <= VM_MAX_HARTS);
        check(ro.mem_size >= (1u << 20) && ro.mem_size % 4096 == 0);
        check(ro.ndrives <= VM_MAX_DRIVES && ro.nnets <= VM_MAX_NETS);
        check(!ro.jit_cache || (ro.jit_cache >= VM_JIT_CACHE_MIN && ro.jit_cache <= VM_JIT_CACHE_MAX));
    }

    /* getopt_long permutes argv: start again from the input's order. */
    argv[0] = "serve";
    memcpy(argv + 1, args, sizeof(char *) * (size_t)n);
    argv[n + 1] = NULL;
    struct serve_options so;
    if (parse_serve_options(n + 1, argv, &so) == PARSE_RUN) {
        check(!so.workers || so.workers <= 1024);
        check(!so.idle_tax_set || so.idle_tax <= 99);
    }

    /* Nothing of this input's parse may change the next one's (getopt's
     * state between calls): a plain valid command line still parses. */
    char kernel[] = "--kernel", file[] = "Image";
    char *plain[] = {"run", kernel, file, NULL};
    check(parse_run_options(3, plain, &ro) == PARSE_RUN && ro.kernel == file);

    /* The --drive constructor allocates its device (large) and its 1 MiB
     * bounce buffer before it parses, which is slow under ASan: only the
     * first few arguments that say "file=" go to it. */
    for (int i = 0, drives = 0; i < n; i++) {
        bool drive = strstr(args[i], "file=") && drives < MAX_DRIVE_ARGS;
        drives += drive;
        one_arg(args[i], drive);
    }
    free(buf);
    return 0;
}
