#include "cli/run_cmd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/console.h"
#include "cli/options.h"
#include "io/event_loop.h"
#include "monitor/machine_memory.h"
#include "monitor/sandbox.h"
#include "vm/boot.h"
#include "vm/vm.h"

enum {
    EXIT_POWEROFF = 0,
    EXIT_ERROR = 1,
    EXIT_RESET = 2,
    EXIT_PANIC = 3,
    EXIT_GUEST_FAULT = 4,
    EXIT_TEST_FAIL = 5,
    EXIT_QUIT = 6,
};

static int exit_status(enum vm_exit_reason why) {
    switch (why) {
    case VM_EXIT_POWEROFF: return EXIT_POWEROFF;
    case VM_EXIT_RESET: return EXIT_RESET;
    case VM_EXIT_PANIC: return EXIT_PANIC;
    case VM_EXIT_GUEST_FAULT: return EXIT_GUEST_FAULT;
    case VM_EXIT_TEST_FAIL: return EXIT_TEST_FAIL;
    case VM_EXIT_QUIT: return EXIT_QUIT;
    case VM_RUNNING: break;
    }
    return EXIT_ERROR;
}

/* *sb: the sandbox it entered, if any; the caller frees it last. */
static int run_vm(const struct run_options *o, const struct frame_source *frames, struct event_loop *loop,
                  struct sandbox **sb);

int run_command(int argc, char **argv) {
    struct run_options o;
    switch (parse_run_options(argc, argv, &o)) {
    case PARSE_HELP: return 0;
    case PARSE_ERROR: return EXIT_ERROR;
    case PARSE_RUN: break;
    }

    struct machine_memory mm;
    uint64_t machine_bytes = o.machine_mem ? o.machine_mem : machine_memory_default_size();
    if (!machine_memory_init(&mm, machine_bytes)) {
        fprintf(stderr, "rvisor: cannot reserve %llu MiB of machine memory: %s\n",
                (unsigned long long)(machine_bytes >> 20), strerror(errno));
        return EXIT_ERROR;
    }
    struct frame_source frames = machine_memory_source(&mm);
    char err[256];
    sigset_t stop_signals;
    console_block_stop_signals(&stop_signals); /* before the event loop's thread exists */
    struct event_loop *loop = event_loop_create(err, sizeof err);
    if (!loop) {
        fprintf(stderr, "rvisor: %s\n", err);
        machine_memory_destroy(&mm);
        return EXIT_ERROR;
    }
    struct sandbox *sb = NULL;
    int status = run_vm(&o, &frames, loop, &sb);
    event_loop_destroy(loop);
    machine_memory_destroy(&mm);
    sandbox_free(sb);
    return status;
}

static void print_stats(const struct vm *vm) {
    uint64_t n = 0;
    for (unsigned i = 0; i < vm->nharts; i++) {
        struct vm_hart_figures f;
        vm_hart_figures(vm, i, &f);
        const struct hart_stats *s = &f.counts;
        n += f.instructions;
        fprintf(stderr, "rvisor: hart %u: %llu instructions, %llu loads/stores (%llu software-TLB misses), "
                        "%llu SBI calls, %llu MMIO, %llu traps, %llu interrupts, %llu WFI waits\n",
                i, (unsigned long long)f.instructions, (unsigned long long)s->mem_ops, (unsigned long long)s->tlb_misses,
                (unsigned long long)s->sbi_calls, (unsigned long long)s->mmio, (unsigned long long)s->exceptions,
                (unsigned long long)s->interrupts, (unsigned long long)s->wfi);
        if (f.translated) {
            const struct jit_stats j = f.jit;
            fprintf(stderr, "rvisor: hart %u: jit: %llu blocks translated (%llu guest instructions), %llu KiB code cache, "
                            "%llu flushes, %.1f ms translating, %llu dispatches (%.0f per million instructions), "
                            "%llu jumps through the jump cache, %llu missed (%.1f%% hits), %llu fused pairs\n",
                    i, (unsigned long long)j.blocks, (unsigned long long)j.insns,
                    (unsigned long long)(j.code_bytes >> 10), (unsigned long long)j.flushes,
                    (double)j.translate_ns / 1e6, (unsigned long long)j.dispatches,
                    f.instructions ? (double)j.dispatches * 1e6 / (double)f.instructions : 0.0, (unsigned long long)j.jumps,
                    (unsigned long long)j.lookups, j.jumps ? 100.0 * (double)(j.jumps - j.lookups) / (double)j.jumps : 0.0,
                    (unsigned long long)j.fused);
        }
    }
    fprintf(stderr, "rvisor: decoded code: %llu code pages now, the map reset %llu times (budget %llu pages)\n",
            (unsigned long long)vm->mem.code.npages, (unsigned long long)vm->mem.code.resets,
            (unsigned long long)vm->mem.code.max_pages);
    uint64_t backed = vm->mem.backed << 12;
    fprintf(stderr, "rvisor: %llu instructions executed (engine: %s); guest memory %llu MiB, %llu MiB backed, %llu MiB never written\n",
            (unsigned long long)n, vm_engine_name(vm->cfg.engine), (unsigned long long)(vm->mem.size >> 20),
            (unsigned long long)(backed >> 20),
            (unsigned long long)((vm->mem.size - backed) >> 20));
}

/* Whether a --net option (already checked by vm_create) is user-mode networking. */
static bool uses_user_net(const struct run_options *o) {
    for (unsigned i = 0; i < o->nnets; i++)
        if (!strncmp(o->nets[i], "user", 4) && (o->nets[i][4] == 0 || o->nets[i][4] == ',')) return true;
    return false;
}

/* The guest's files, disks, TAP devices and host ports are open, the
 * terminal is set up: from here on rvisor only runs the guest. */
static struct sandbox *confine(const struct run_options *o, char *err, size_t errlen) {
    struct sandbox_policy p = {.inet = uses_user_net(o)};
    struct sandbox *sb = sandbox_new(err, errlen);
    if (sb && !sandbox_enter(sb, &p, err, errlen)) {
        sandbox_free(sb);
        return NULL;
    }
    return sb;
}

static int run_vm(const struct run_options *opts, const struct frame_source *frames, struct event_loop *loop,
                  struct sandbox **sb) {
    struct run_options o = *opts;
    struct console con;
    char err[512];
    struct vm_config cfg = {
        .mem_size = o.mem_size, .ncpus = o.cpus, .frames = frames, .engine = o.engine, .jit_code_bytes = o.jit_cache,
        .ndrives = o.ndrives, .nnets = o.nnets,
        .console = o.virtio_console ? VM_CONSOLE_VIRTIO : VM_CONSOLE_UART,
        .no_balloon = o.no_balloon, .loop = loop,
    };
    for (unsigned i = 0; i < o.ndrives; i++) cfg.drives[i] = o.drives[i];
    for (unsigned i = 0; i < o.nnets; i++) cfg.nets[i] = o.nets[i];
    struct vm_console vc = {.write = console_write, .ctx = &con};
    struct vm *vm = vm_create(&cfg, &vc, err, sizeof err);
    if (!vm) {
        fprintf(stderr, "rvisor: %s\n", err);
        return EXIT_ERROR;
    }
    struct boot_config bc = {.kernel = o.kernel, .initrd = o.initrd, .append = o.append, .bios = o.bios};
    if (!vm_boot(vm, &bc, err, sizeof err)) {
        fprintf(stderr, "rvisor: %s\n", err);
        vm_destroy(vm);
        return EXIT_ERROR;
    }
    if (!console_open(&con, STDIN_FILENO, STDOUT_FILENO)) {
        perror("rvisor: console");
        vm_destroy(vm);
        return EXIT_ERROR;
    }
    if (!o.no_sandbox && !(*sb = confine(&o, err, sizeof err))) {
        console_close(&con);
        fprintf(stderr, "rvisor: %s (--no-sandbox runs without it)\n", err);
        vm_destroy(vm);
        return EXIT_ERROR;
    }
    struct vm_io io = {.wake_fd = con.wake_fd, .poll = console_poll, .ctx = &con};
    enum vm_exit_reason why = vm_run(vm, &io);
    console_close(&con);
    int status = exit_status(why);
    if (status != EXIT_POWEROFF) fprintf(stderr, "\nrvisor: %s\n", vm->exit_message);
    if (o.stats) print_stats(vm);
    vm_destroy(vm);
    return status;
}
