/* The binary translator: the second engine that runs a hart. It runs the
 * same architectural state as the interpreter (struct hart), translating
 * guest code a block at a time into x86-64 code kept in a per-hart code
 * buffer. Instructions it does not translate itself are executed by calling
 * the interpreter's handler from inside the translated code, so both
 * engines always agree on what an instruction does.
 *
 * Blocks are keyed by guest-virtual pc, privilege and guest frame (the
 * frame's code_page); a block runs only while the frame's generation is
 * the one it was translated at, so a store, DMA or p2m change that resets
 * decoded code of the frame retires every block made from it. */
#ifndef RVISOR_JIT_H
#define RVISOR_JIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hart/hart.h"

struct jit_hart;

/* Counters for `rvisor top`, stats and benchmarks. */
struct jit_stats {
    uint64_t blocks;          /* blocks translated */
    uint64_t insns;           /* guest instructions translated */
    uint64_t code_bytes;      /* host code bytes in use now */
    uint64_t flushes;         /* the code buffer filled and was emptied */
    uint64_t translate_ns;    /* host time spent translating */
    uint64_t dispatches;      /* returns to the dispatcher (slice ends, exits, faults) */
    uint64_t jumps;           /* indirect jumps and jumps to other pages, through the jump cache */
    uint64_t lookups;         /* of those, jump-cache misses (served without leaving translated code) */
    uint64_t stale;           /* blocks found retired by a change of their code */
    uint64_t fused;           /* instructions translated with what the one before left (fused pairs) */
};

#define JIT_DEFAULT_CODE_BYTES (32u << 20)

/* Whether this host can run translated code (x86-64). */
bool jit_supported(void);

/* Translation state for hart h (which it gives jump caches); NULL if the
 * host refuses executable memory. */
struct jit_hart *jit_hart_new(struct hart *h, size_t code_bytes);
void jit_hart_free(struct jit_hart *j);
/* Drops every translation (they point at code pages): the VM's code map
 * was reset. Call it from the hart's thread, outside jit_run. */
void jit_forget_code(struct jit_hart *j, struct hart *h);

/* Runs h for up to `budget` instructions with translated code, as
 * hart_run does with the interpreter. */
enum hart_stop jit_run(struct jit_hart *j, struct hart *h, int64_t budget);

void jit_get_stats(const struct jit_hart *j, struct jit_stats *out);

#endif
