/* The translator's dispatcher: finds (or makes) the block for the hart's
 * pc, enters it through a trampoline, and after it returns does what the
 * interpreter's outer loop does between chains (interrupts, wfi, HSM,
 * fetch faults). It also owns the per-hart code buffer and block table. */
#include "jit/jit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "hart/code_cache.h"
#include "jit/jit_internal.h"
#include "hart/mem.h"

_Static_assert(_Alignof(struct code_page) >= 8, "jit_link_key keeps the mode in a code page pointer's low bits");

#define TABLE_CAP (1u << 16) /* blocks per hart before the code buffer is flushed: at most half of this */
#define TRAMPOLINE_BYTES 4096

bool jit_supported(void) {
#if defined(__x86_64__)
    return true;
#else
    return false;
#endif
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- trampolines ----
 * enter(h, code): saves the host's callee-saved registers, loads the
 *   pinned guest registers and jumps into a block. The stack stays 16-byte
 *   aligned, so blocks call C directly; above it go the return frames of
 *   guest calls (ras.c), which both exits throw away.
 * exit_spill: stores the pinned registers back and returns from enter.
 * exit_raw: returns without storing them (memory is already up to date).
 * lookup_miss: rax holds a guest pc the jump cache did not know (see
 *   jit_emit_lookup); jumps to its block, or returns to the dispatcher. */
static const enum x86_reg saved[] = {RBX, RBP, R12, R13, R14, R15};
#define NSAVED (sizeof saved / sizeof saved[0])

static struct x86_mem guest_reg(unsigned r) { return HART_AT(offsetof(struct hart, x) + 8 * r); }

static const uint8_t *jit_lookup_slow(struct hart *h, uint64_t pc, struct jit_hart *j);

/* Keeps the pinned registers C may clobber across a call (and the stack
 * 16-byte aligned: three pushes and a pad). */
static void push_volatile(struct x86_buf *b) {
    for (unsigned k = JIT_PINNED_SAVED; k < JIT_PINNED; k++) x86_push(b, jit_pinned_host[k]);
    if ((JIT_PINNED - JIT_PINNED_SAVED) % 2) x86_alu_ri(b, ALU_SUB, RSP, 8, true);
}
static void pop_volatile(struct x86_buf *b) {
    if ((JIT_PINNED - JIT_PINNED_SAVED) % 2) x86_alu_ri(b, ALU_ADD, RSP, 8, true);
    for (unsigned k = JIT_PINNED; k-- > JIT_PINNED_SAVED;) x86_pop(b, jit_pinned_host[k]);
}

static void build_trampolines(struct jit_hart *j) {
    struct x86_buf b;
    x86_buf_init(&b, j->mem, TRAMPOLINE_BYTES);

    uint8_t *enter = b.p;
    for (unsigned k = 0; k < NSAVED; k++) x86_push(&b, saved[k]);
    x86_alu_ri(&b, ALU_SUB, RSP, 8, true);
    x86_lea(&b, HART, x86_at(RDI, JIT_HART_BIAS), true);
    jit_ras_enter(&b);
    x86_mov_rr(&b, RAX, RSI, true); /* RSI may hold a guest register */
    for (unsigned k = 0; k < JIT_PINNED; k++) x86_mov_rm(&b, jit_pinned_host[k], guest_reg(jit_pinned_guest[k]), true);
    x86_jmp_r(&b, RAX);

    j->exit_spill = b.p;
    for (unsigned k = 0; k < JIT_PINNED; k++) x86_mov_mr(&b, guest_reg(jit_pinned_guest[k]), jit_pinned_host[k], true);
    j->exit_raw = b.p;
    jit_ras_unwind(&b, 8); /* past the return frames and the pad */
    for (unsigned k = NSAVED; k-- > 0;) x86_pop(&b, saved[k]);
    x86_ret(&b);

    /* rax = guest pc, not in the jump cache: ask C (jit_lookup_slow),
     * which translates if need be; NULL sends the hart back to the
     * dispatcher at pc. */
    j->lookup_miss = b.p;
    x86_mov_mr(&b, HART_FIELD(pc), RAX, true);
    push_volatile(&b);
    x86_lea(&b, RDI, HART_AT(0), true);
    x86_mov_rr(&b, RSI, RAX, true);
    x86_mov_ri(&b, RDX, (uintptr_t)j);
    x86_call_far(&b, (const void *)jit_lookup_slow);
    pop_volatile(&b);
    jit_ras_drop_if_flushed(&b, &j->ras_flushed);
    x86_test_rr(&b, RAX, RAX, true);
    x86_jcc(&b, CC_E, j->exit_spill);
    x86_jmp_r(&b, RAX);

    /* rax = the address; the return address points at the stub's struct
     * jit_site. The C function says where to go on. */
    for (int store = 0; store < 2; store++) {
        if (store) j->store_thunk = b.p;
        else j->load_thunk = b.p;
        x86_pop(&b, RDX);
        push_volatile(&b);
        x86_lea(&b, RDI, HART_AT(0), true);
        x86_mov_rr(&b, RSI, RAX, true);
        x86_call_far(&b, store ? (const void *)jit_store_site : (const void *)jit_load_site);
        pop_volatile(&b);
        x86_test_rr(&b, RAX, RAX, true);
        x86_jcc(&b, CC_E, j->exit_spill);
        x86_jmp_r(&b, RAX);
    }

    /* The first exit through a chained jump: the stub's call is right
     * after the jump (whose rel32 ends 5 bytes before the return address),
     * and is followed by the target pc and the link key (jit_link_key). */
    j->link_thunk = b.p;
    x86_pop(&b, R11);
    x86_mov_rm(&b, RAX, x86_at(R11, 0), true);
    x86_mov_mr(&b, HART_FIELD(pc), RAX, true);
    x86_mov_rm(&b, RAX, x86_at(R11, 8), true);
    x86_mov_mr(&b, HART_FIELD(jit_link_cp), RAX, true);
    x86_lea(&b, RAX, x86_at(R11, -9), true);
    x86_mov_mr(&b, HART_FIELD(jit_link), RAX, true);
    x86_jmp(&b, j->exit_spill);

    /* A data pointer to the code's entry, as a function pointer. */
    memcpy(&j->enter, &enter, sizeof enter);
    j->after_trampolines = b.p;
}

/* ---- the code buffer and block table ---- */

/* Executable memory, within a rel32 call of the monitor's own code if a
 * free range is found there (so translated code calls C in 5 bytes). */
static uint8_t *map_code_buffer(size_t bytes) {
    const int prot = PROT_READ | PROT_WRITE | PROT_EXEC, flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    uintptr_t text = (uintptr_t)(const void *)jit_run;
    for (uintptr_t off = 256u << 20; off < (1536u << 20); off += 128u << 20) {
        uintptr_t hint = ((text + off) & ~(uintptr_t)0xfffff);
        void *p = mmap((void *)hint, bytes, prot, flags | MAP_FIXED_NOREPLACE, -1, 0);
        if (p == (void *)hint) return p;
        if (p != MAP_FAILED) munmap(p, bytes); /* an old kernel took it as a mere hint */
    }
    return mmap(NULL, bytes, prot, flags, -1, 0);
}

struct jit_hart *jit_hart_new(struct hart *h, size_t code_bytes) {
    if (code_bytes < 1u << 20) code_bytes = 1u << 20;
    struct jit_hart *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->size = code_bytes;
    j->jumps = &h->jit_jumps;
    j->mem = map_code_buffer(code_bytes);
    j->table = calloc(TABLE_CAP, sizeof *j->table);
    j->jump_bytes = 8 * JUMP_CACHE_SIZE * sizeof(struct jump_entry);
    j->jump = mmap(NULL, j->jump_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    j->table_cap = TABLE_CAP;
    j->translator = jit_translator_new();
    if (j->mem == MAP_FAILED || j->jump == MAP_FAILED || !j->table || !j->translator) {
        if (j->mem != MAP_FAILED) munmap(j->mem, code_bytes);
        if (j->jump != MAP_FAILED) munmap(j->jump, j->jump_bytes);
        free(j->table);
        free(j->translator);
        free(j);
        return NULL;
    }
    build_trampolines(j);
    j->code = j->after_trampolines;
    /* Zero-filled entries never match: pc 0 with gen 0 is made invalid by a flush first. */
    for (int p = 0; p < 4; p++) {
        for (int k = 0; k < 2; k++) h->tlb[p].jump[k] = j->jump + (size_t)(2 * p + k) * JUMP_CACHE_SIZE;
        tlb_set_flush_jumps(&h->tlb[p]);
    }
    hart_update_tlb_sets(h);
    /* Names translated code for `perf report` (the perf map convention). */
    if (getenv("RVISOR_PERF_MAP")) {
        char path[64];
        snprintf(path, sizeof path, "/tmp/perf-%d.map", (int)getpid());
        j->perf_map = fopen(path, "a");
    }
    j->data = j->mem + j->size;
    return j;
}

void jit_hart_free(struct jit_hart *j) {
    if (!j) return;
    if (j->perf_map) fclose(j->perf_map);
    munmap(j->mem, j->size);
    munmap(j->jump, j->jump_bytes);
    free(j->table);
    free(j->translator);
    free(j);
}

/* Empties the code buffer: only this hart's thread runs its code, and it
 * is in the dispatcher now, so nothing is executing there. */
static void flush(struct jit_hart *j, struct hart *h) {
    j->code = j->after_trampolines;
    j->data = j->mem + j->size;
    memset(j->table, 0, j->table_cap * sizeof *j->table);
    j->nblocks = 0;
    for (int p = 0; p < 4; p++) tlb_set_flush_jumps(&h->tlb[p]);
    h->jit_link = NULL;
    j->ras_flushed = 1;
    j->stats.flushes++;
    /* Give the host back the pages the old code used. */
    madvise(j->after_trampolines, (size_t)(j->mem + j->size - j->after_trampolines), MADV_DONTNEED);
}

void jit_forget_code(struct jit_hart *j, struct hart *h) { flush(j, h); }

static unsigned slot_of(const struct jit_hart *j, uint64_t vpc, unsigned mode, const struct code_page *cp) {
    uint64_t k = (vpc >> 1) ^ ((uint64_t)(uintptr_t)cp >> 6) ^ ((uint64_t)mode << 59);
    k *= 0x9e3779b97f4a7c15ull;
    return (unsigned)(k >> 32) & (j->table_cap - 1);
}

/* The table slot holding the key, or the empty one where it would go. */
static struct jit_block **find(struct jit_hart *j, uint64_t vpc, unsigned mode, const struct code_page *cp) {
    unsigned s = slot_of(j, vpc, mode, cp);
    for (;;) {
        struct jit_block *b = j->table[s];
        if (!b || (b->vpc == vpc && b->mode == mode && b->cp == cp)) return &j->table[s];
        s = (s + 1) & (j->table_cap - 1);
    }
}

static struct jit_block *translate(struct jit_hart *j, struct hart *h, uint64_t pc, struct code_page *cp,
                                   const uint8_t *host_page) {
    uint64_t t0 = now_ns();
    struct jit_block *b = NULL;
    if (j->nblocks < j->table_cap / 2) b = jit_translate(j, h, pc, cp, host_page);
    if (!b) {
        flush(j, h);
        b = jit_translate(j, h, pc, cp, host_page);
    }
    if (b && j->perf_map) {
        fprintf(j->perf_map, "%lx %lx guest_%c_%llx\n", (unsigned long)(uintptr_t)b->entry,
                (unsigned long)(j->code - b->entry), "USHM"[h->priv], (unsigned long long)pc);
        fflush(j->perf_map);
    }
    if (b) {
        struct jit_block **slot = find(j, pc, b->mode, cp);
        if (!*slot) j->nblocks++;
        *slot = b;
    }
    j->stats.translate_ns += now_ns() - t0;
    return b;
}

/* ---- running ---- */

/* The current block for pc, whose page e maps: found, or translated now.
 * Enters it in the jump cache. NULL if it cannot be translated. */
static struct jit_block *block_for(struct jit_hart *j, struct hart *h, uint64_t pc, const struct fetch_entry *e) {
    struct code_page *cp = e->code;
    struct jit_block *b = *find(j, pc, jit_mode(h), cp);
    if (b && b->gen != __atomic_load_n(&cp->gen, __ATOMIC_ACQUIRE)) {
        j->stats.stale++;
        b = NULL;
    }
    if (!b) {
        b = translate(j, h, pc, cp, (const uint8_t *)(uintptr_t)((pc & PAGE_MASK) + e->addend));
        if (!b) return NULL;
    }
    /* The table of the block's own FP state: FS may have become Dirty
     * since h->jump was chosen (a Clean block is still right then). */
    struct jump_entry *je = &h->itlb->jump[(b->mode & JIT_MODE_FS_DIRTY) != 0][jump_index(pc)];
    je->code = b->entry;
    je->gen = h->itlb->jump_gen;
    __atomic_store_n(&je->pc, pc, __ATOMIC_RELEASE);
    return b;
}

/* A jump-cache miss in translated code. Safe to translate (and so to
 * flush the code buffer) here: the caller jumps to what this returns, and
 * the only return addresses into translated code on the stack are the
 * landings of return frames, which lookup_miss drops after a flush. */
static const uint8_t *jit_lookup_slow(struct hart *h, uint64_t pc, struct jit_hart *j) {
    j->stats.lookups++;
    const struct fetch_entry *e = &h->itlb->fetch[tlb_index(pc)];
    if (e->tag != (pc & PAGE_MASK)) {
        e = mem_fetch_fill(h, pc);
        if (!e) return NULL; /* the fetch faulted: pc is at the trap handler */
    }
    struct jit_block *b = block_for(j, h, pc, e);
    hart_update_tlb_sets(h); /* the jump cache of the FP state now */
    return b ? b->entry : NULL;
}

enum hart_stop jit_run(struct jit_hart *j, struct hart *h, int64_t budget) {
    uint64_t end = h->icount + (uint64_t)budget;
    int64_t faults_left = budget; /* fetch faults make no instruction count: bound them too */
    h->slice = h->budget = h->stolen = 0;
    h->jit_link = NULL;
    h->icount_moved = 0;
    for (;;) {
        end += h->icount_moved;
        h->icount_moved = 0;
        if (__atomic_load_n(&h->exit_request, __ATOMIC_RELAXED)) return HART_EXIT;
        if (h->mem_stall) return HART_MEMORY;
        if (h->hsm_stopped) return HART_STOPPED;
        if ((__atomic_load_n(&h->mip, __ATOMIC_RELAXED) & h->mie) && hart_take_interrupt(h)) h->jit_link = NULL;
        if (h->wfi) {
            if (!hart_pending_irqs(h)) return HART_IDLE;
            h->wfi = false;
        }
        /* By the signed distance: a guest that writes minstret may move
         * icount and end anywhere, across 0 and 2^64 too. */
        if ((int64_t)(h->icount - end) >= 0 || faults_left <= 0) break;

        uint64_t pc = h->pc;
        struct fetch_entry *e = &h->itlb->fetch[tlb_index(pc)];
        if (e->tag != (pc & PAGE_MASK)) {
            e = mem_fetch_fill(h, pc);
            if (!e) { /* now at the trap handler (or the VM is stopping) */
                faults_left--;
                h->jit_link = NULL;
                continue;
            }
        }
        struct jit_block *b = block_for(j, h, pc, e);
        if (!b) {
            h->env->fatal(h->owner, h, "binary translator: a block does not fit in an empty code buffer");
            return HART_EXIT;
        }
        /* A chained jump within one page goes straight to its target from now on. */
        if (h->jit_link && h->jit_link_cp == jit_link_key(e->code, b->mode)) x86_patch_rel32(h->jit_link, b->entry);
        h->jit_link = NULL;
        hart_update_tlb_sets(h); /* FS may have become Dirty: its jump cache */
        h->icount_limit = end;
        h->break_pending = 0;
        j->stats.dispatches++;
        j->ras_flushed = 0; /* enter starts with no return frames */
        j->enter(h, b->entry);
    }
    return __atomic_load_n(&h->exit_request, __ATOMIC_RELAXED) ? HART_EXIT : HART_RAN;
}

void jit_get_stats(const struct jit_hart *j, struct jit_stats *out) {
    /* Another thread (the monitor) may ask while the hart runs: each
     * counter has one writer, so relaxed loads see a recent value. */
    const struct jit_stats *s = &j->stats;
    out->blocks = __atomic_load_n(&s->blocks, __ATOMIC_RELAXED);
    out->insns = __atomic_load_n(&s->insns, __ATOMIC_RELAXED);
    out->flushes = __atomic_load_n(&s->flushes, __ATOMIC_RELAXED);
    out->translate_ns = __atomic_load_n(&s->translate_ns, __ATOMIC_RELAXED);
    out->dispatches = __atomic_load_n(&s->dispatches, __ATOMIC_RELAXED);
    out->lookups = __atomic_load_n(&s->lookups, __ATOMIC_RELAXED);
    out->jumps = __atomic_load_n(j->jumps, __ATOMIC_RELAXED);
    out->stale = __atomic_load_n(&s->stale, __ATOMIC_RELAXED);
    out->fused = __atomic_load_n(&s->fused, __ATOMIC_RELAXED);
    uint8_t *code = __atomic_load_n(&j->code, __ATOMIC_RELAXED), *data = __atomic_load_n(&j->data, __ATOMIC_RELAXED);
    out->code_bytes = (uint64_t)(code - j->after_trampolines) + (uint64_t)(j->mem + j->size - data);
}
