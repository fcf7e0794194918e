/* What the pieces of the translator share: the per-hart translation state
 * (code buffer, block table, statistics), translated blocks, and the
 * register map that translated code and its entry trampoline agree on. */
#ifndef RVISOR_JIT_INTERNAL_H
#define RVISOR_JIT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hart/hart.h"
#include "jit/jit.h"
#include "jit/x86_emit.h"

struct code_page;
struct tr;

/* Host registers while translated code runs: the hart's base pointer, and
 * the most used guest registers (by static count over busybox and the
 * kernel) pinned in host registers. The first JIT_PINNED_SAVED are
 * callee-saved, so calls into C keep them; the others are saved around
 * every call. Every other guest register is a memory operand off HART. */
#define HART RBP
/* HART points this far into struct hart, so that one-byte displacements
 * reach its first 256 bytes: the run control, the counters and most of x[]. */
#define JIT_HART_BIAS 128
#define HART_AT(offset) x86_at(HART, (int32_t)(offset) - JIT_HART_BIAS)
#define HART_FIELD(field) HART_AT(offsetof(struct hart, field))
#define JIT_PINNED 8
#define JIT_PINNED_SAVED 5
extern const uint8_t jit_pinned_guest[JIT_PINNED]; /* guest register of each pinned host register */
extern const enum x86_reg jit_pinned_host[JIT_PINNED];

/* The hart state a translation depends on besides its code: the
 * privilege, and whether FP state is Dirty (then FP loads and stores are
 * translated inline, with nothing to mark). */
#define JIT_MODE_FS_DIRTY 4
static inline unsigned jit_mode(const struct hart *h) {
    return (unsigned)h->priv | ((h->mstatus & MSTATUS_FS) == MSTATUS_FS ? JIT_MODE_FS_DIRTY : 0);
}

/* What a chained jump's first exit tells the dispatcher besides its
 * target: the code page of its block and, in the pointer's low bits, the
 * block's mode. The jump is linked only to a block of the same page and
 * mode: FS may have become Dirty inside the block (an FP handler), and a
 * block for Dirty must not run when FS is Clean again. */
static inline const void *jit_link_key(const struct code_page *cp, unsigned mode) {
    return (const void *)((uintptr_t)cp | mode);
}

/* One translation: guest code from vpc (in the frame cp, translated when
 * cp's generation was gen) for one mode (jit_mode). Lives in the data end
 * of the code buffer, beside its code. */
struct jit_block {
    uint64_t vpc;
    struct code_page *cp;
    uint32_t gen;
    uint8_t mode;
    uint16_t ninsns;
    const uint8_t *entry;
};

struct jit_hart {
    uint8_t *mem;   /* mmap'd, read/write/execute */
    size_t size;
    uint8_t *code;  /* next free byte of code (grows up) */
    uint8_t *data;  /* lowest byte of data (grows down) */
    uint8_t *after_trampolines; /* where code starts again after a flush */

    /* Shared code (see trampolines in jit.c). */
    void (*enter)(struct hart *h, const uint8_t *code);
    const uint8_t *exit_spill;   /* stores the pinned registers, returns to jit_run */
    const uint8_t *exit_raw;     /* returns without storing them (memory already holds them) */
    const uint8_t *lookup_miss;  /* rax = guest pc missing from the jump cache */
    const uint8_t *load_thunk;   /* called from a load's cold stub: struct jit_site follows the call */
    const uint8_t *store_thunk;  /* the same for stores (rcx = the value) */
    const uint8_t *link_thunk;   /* called from a chained jump's first exit: target pc and code page follow */

    struct tr *translator; /* scratch of jit_translate */
    struct jump_entry *jump; /* the jump caches of the hart's four TLB sets */
    size_t jump_bytes;

    /* (vpc, mode, cp) -> block, open addressing. */
    struct jit_block **table;
    unsigned table_cap, nblocks;

    /* Set by a flush: lookup_miss then drops the return frames (ras.c),
     * whose landings were in the code just emptied. */
    uint32_t ras_flushed;

    struct jit_stats stats;
    const uint64_t *jumps; /* the hart's jit_jumps */
    FILE *perf_map; /* RVISOR_PERF_MAP set: /tmp/perf-PID.map */
};

/* The scratch space jit_translate needs (malloc'd; free with free()). */
struct tr *jit_translator_new(void);

/* Translates the code at vpc (whose frame is cp, mapped at host_page) for
 * h's current mode. NULL when the code buffer is full. */
struct jit_block *jit_translate(struct jit_hart *j, struct hart *h, uint64_t vpc, struct code_page *cp,
                                const uint8_t *host_page);

/* Return prediction on the host stack (ras.c). Frames are kept at most
 * this deep; the emitters use RCX (and jit_ras_return compares the target
 * in RAX). */
#define JIT_RAS_DEPTH 64
/* In the entry trampoline once HART is set: the sentinel frame and the floor. */
void jit_ras_enter(struct x86_buf *b);
/* Sets RSP `past` bytes beyond the sentinel frame (8: past the entry
 * trampoline's pad too, to leave; minus a frame: onto the sentinel, to
 * drop every frame above it). */
void jit_ras_unwind(struct x86_buf *b, int32_t past);
/* Drops every frame if *flushed is set (and clears it); uses R11. */
void jit_ras_drop_if_flushed(struct x86_buf *b, const uint32_t *flushed);
/* At a guest call to return to ret_pc: pushes a frame and calls over
 * what comes next, unless the stack is full. The caller emits the landing
 * (code that goes on at ret_pc: where the host return comes back to),
 * then points both rel32 fields in `past` (NULL if the buffer is full)
 * just past it. */
void jit_ras_push(struct x86_buf *b, uint64_t ret_pc, uint8_t *past[2]);
/* At a guest return to the pc in RAX: `ret`s to the landing if the top
 * frame predicts it; else drops that frame and falls through. */
void jit_ras_return(struct x86_buf *b);

/* What a load's or store's cold stub tells the slow path: the bytes right
 * after the stub's call to load_thunk or store_thunk (so unaligned: read
 * with memcpy). */
struct jit_site {
    uint64_t pc;
    const uint32_t *gen; /* stores: the generation of the block's code page... */
    uint32_t block_gen;  /* ...and the one the block was translated at */
    uint16_t insns, mems; /* what to count when the access faults (this one included) */
    uint8_t size;
    uint8_t sign;
    uint8_t len;         /* stores: the instruction's length */
} __attribute__((packed));

/* Calls translated code makes into C (runtime.c). The site functions
 * return where the stub goes on (just after the site), or NULL to leave
 * the block (a fault was taken, or a store changed the block's own code;
 * pc and the counters are then set). A load's value is in h->load_val. */
const uint8_t *jit_load_site(struct hart *h, uint64_t va, const uint8_t *site);
const uint8_t *jit_store_site(struct hart *h, uint64_t va, const uint8_t *site, uint64_t val);
uint64_t jit_div(uint64_t a, uint64_t b);
uint64_t jit_divu(uint64_t a, uint64_t b);
uint64_t jit_rem(uint64_t a, uint64_t b);
uint64_t jit_remu(uint64_t a, uint64_t b);
uint64_t jit_divw(uint64_t a, uint64_t b);
uint64_t jit_divuw(uint64_t a, uint64_t b);
uint64_t jit_remw(uint64_t a, uint64_t b);
uint64_t jit_remuw(uint64_t a, uint64_t b);
uint64_t jit_mulhsu(uint64_t a, uint64_t b);

#endif
