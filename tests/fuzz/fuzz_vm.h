/* What the harnesses that need a VM share: one pool of machine memory,
 * made on first use and kept for the process (libFuzzer calls the harness
 * many times; the pool is the only state kept between calls, and every VM
 * must give all of its frames back when destroyed), a small VM as the
 * unit tests make it (no event loop: devices work on the caller's thread),
 * and a bounded run. */
#ifndef RVISOR_FUZZ_VM_H
#define RVISOR_FUZZ_VM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "hart/hart.h"
#include "jit/jit.h"
#include "monitor/machine_memory.h"
#include "vm/htif.h"
#include "vm/p2m.h"
#include "vm/vm.h"

#define FUZZ_MiB (1024ull * 1024)
#define FUZZ_POOL (64 * FUZZ_MiB)
#define FUZZ_MEM (4 * FUZZ_MiB) /* guest RAM of the harnesses' VMs */

static inline struct machine_memory *fuzz_pool(void) {
    static struct machine_memory mm;
    static bool ready;
    if (!ready) {
        if (!machine_memory_init(&mm, FUZZ_POOL)) abort();
        ready = true;
    }
    return &mm;
}

/* FUZZ_VERBOSE=1 in the environment: say why an input was refused, and
 * how a run ended (for looking at one input: ./fuzz_boot FILE). */
static inline void fuzz_say(const char *what, const char *msg) {
    if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "%s: %s\n", what, msg);
}

/* The pool as a VM sees it, with a switch that makes every allocation
 * fail while it is on: machine memory exhausted, as under overcommit
 * while reclamation catches up (devices then wait or drop, harts wait). */
struct fuzz_frames {
    struct frame_source real;
    bool starved;
};

static inline bool fuzz_frames_alloc(void *ctx, uint64_t *mfn) {
    struct fuzz_frames *f = ctx;
    return !f->starved && f->real.alloc(f->real.pool, mfn);
}
static inline void fuzz_frames_free(void *ctx, uint64_t mfn) {
    struct fuzz_frames *f = ctx;
    f->real.free(f->real.pool, mfn);
}
static inline void fuzz_frames_get(void *ctx, uint64_t mfn) {
    struct fuzz_frames *f = ctx;
    f->real.get(f->real.pool, mfn);
}

/* The process's switchable source (a harness that starves it switches it
 * back before destroying its VM). */
static inline struct fuzz_frames *fuzz_frames(void) {
    static struct fuzz_frames f;
    static bool ready;
    if (!ready) {
        f.real = machine_memory_source(fuzz_pool());
        ready = true;
    }
    return &f;
}

/* One hart, the default virtio devices (rng, balloon) and, if asked, a
 * virtio console and disks (their --drive strings), guest output dropped;
 * its frames come from fuzz_frames(). Aborts if vm_create refuses (a bug
 * for these shapes). */
static inline struct vm *fuzz_vm_create_with(enum vm_engine engine, uint64_t mem, bool virtio_console,
                                             const char *const *drives, unsigned ndrives) {
    static const struct vm_console quiet = {0};
    struct fuzz_frames *ff = fuzz_frames();
    struct frame_source fs = {.alloc = fuzz_frames_alloc, .free = fuzz_frames_free, .get = fuzz_frames_get,
                              .pool = ff, .base = ff->real.base, .zero_mfn = ff->real.zero_mfn};
    struct vm_config cfg = {.mem_size = mem, .engine = engine, .jit_code_bytes = VM_JIT_CACHE_MIN, .ncpus = 1,
                            .frames = &fs, .console = virtio_console ? VM_CONSOLE_VIRTIO : VM_CONSOLE_UART};
    for (unsigned i = 0; i < ndrives && i < VM_MAX_DRIVES; i++) cfg.drives[cfg.ndrives++] = drives[i];
    char err[256];
    struct vm *vm = vm_create(&cfg, &quiet, err, sizeof err);
    if (!vm) {
        fprintf(stderr, "vm_create: %s\n", err);
        abort();
    }
    return vm;
}

static inline struct vm *fuzz_vm_create(enum vm_engine engine, uint64_t mem) {
    return fuzz_vm_create_with(engine, mem, false, NULL, 0);
}

/* Destroys vm and checks that it gave back every machine frame. */
static inline void fuzz_vm_destroy(struct vm *vm) {
    vm_destroy(vm);
    if (machine_memory_used_frames(fuzz_pool()) != 0) __builtin_trap(); /* a leaked guest frame */
}

/* Runs hart 0 for about `insns` instructions (the translator may finish
 * its block), in steps as vm_run_hart takes them, servicing timers and
 * HTIF between steps; stops early when the VM exits or the hart waits. */
static inline void fuzz_vm_run(struct vm *vm, int64_t insns) {
    struct hart *h = vm->harts[0];
    while (insns > 0 && vm->exit_reason == VM_RUNNING) {
        int64_t step = insns < 2000 ? insns : 2000;
        p2m_turn_begin(&vm->mem, 0);
        enum hart_stop s = vm->jit[0] ? jit_run(vm->jit[0], h, step) : hart_run(h, step);
        p2m_turn_end(&vm->mem, 0);
        vm_update_timers(vm);
        htif_poll(vm);
        insns -= step;
        if (s != HART_RAN) break;
    }
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "run: pc %#llx priv %d instret %llu exit %d %s\n", (unsigned long long)h->pc, h->priv,
                (unsigned long long)h->icount, (int)vm->exit_reason, vm->exit_message);
}

#endif
