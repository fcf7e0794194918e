/* The interpreter's outer loop: interrupts, wfi, HSM state and fetch TLB
 * misses. It then enters a chain of decoded instructions in one code page
 * (see dispatch.h), which runs until control leaves the page or something
 * needs this loop again. */
#include <string.h>

#include "hart/code_cache.h"
#include "hart/dispatch.h"
#include "hart/exec.h"
#include "hart/mem.h"
#include "mmu/phys.h"

/* Counts a parcel of cp as decoded before its bytes are read, then takes
 * away any write mappings of the frame (mem_store_slow gives them out
 * only while the count is 0 and writable is set; both sides are SEQ_CST,
 * so one of them sees the other). */
static void count_decoding(struct hart *h, struct code_page *cp) {
    __atomic_add_fetch(&cp->live, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&cp->writable, __ATOMIC_SEQ_CST) && __atomic_exchange_n(&cp->writable, false, __ATOMIC_SEQ_CST))
        h->phys->code_added(h->owner, cp->gpa);
}

/* Decodes the instruction at byte off of the page at host_page. */
static void read_and_decode(const uint8_t *host_page, unsigned off, struct insn *d) {
    /* One load for the whole instruction (atomic when naturally aligned, as
     * Ziccif asks), so that another hart rewriting it is seen whole. */
    uint32_t word;
    if (off % 4 == 0) {
        word = __atomic_load_n((const uint32_t *)(const void *)(host_page + off), __ATOMIC_RELAXED);
    } else if (off != PAGE_SIZE - 2) {
        memcpy(&word, host_page + off, 4);
    } else {
        uint16_t last;
        memcpy(&last, host_page + off, 2);
        word = last;
    }
    uint16_t lo = (uint16_t)word;
    if ((lo & 3) == 3) {
        if (off == PAGE_SIZE - 2) *d = (struct insn){.fn = op_cross_page, .len = 4};
        else decode(word, d);
    } else {
        decode(lo, d);
    }
}

/* Decodes the instruction at h->pc into slot; returns its handler. Out of
 * line, so that op_decode has no address-taken locals and its call to the
 * handler stays a jump (see dispatch.h). */
static __attribute__((noinline)) insn_fn decode_slot(struct hart *h, struct insn *slot, const uint8_t *host_page,
                                                     uint64_t pc) {
    unsigned off = (unsigned)(pc & ~PAGE_MASK);
    struct code_page *cp = code_page_of(slot, pc);
    uint32_t writes = __atomic_load_n(&cp->writes, __ATOMIC_SEQ_CST);
    count_decoding(h, cp);
    struct insn d;
    read_and_decode(host_page, off, &d);
    /* Other harts of the VM may be running this page: publish the operands
     * first and the handler last, so whoever sees the new handler sees them. */
    slot->imm = d.imm;
    slot->rd = d.rd;
    slot->rs1 = d.rs1;
    slot->rs2 = d.rs2;
    slot->rs3 = d.rs3;
    slot->rm = d.rm;
    slot->len = d.len;
    /* Another hart may have decoded this slot meanwhile: count it once. */
    if (__atomic_exchange_n(&slot->fn, d.fn, __ATOMIC_ACQ_REL) != op_decode) __atomic_sub_fetch(&cp->live, 1, __ATOMIC_SEQ_CST);
    /* Another hart wrote the frame while this one read it: what was
     * decoded may be the old bytes, published after the writer's
     * invalidation. Undo it (this execution may use it: a write racing
     * with the fetch may be seen either way). */
    if (__atomic_load_n(&cp->writes, __ATOMIC_SEQ_CST) != writes) code_page_invalidate(cp, off, d.len);
    return d.fn;
}

void op_decode(struct hart *h, const struct insn *i) {
    struct insn *slot = (struct insn *)i;
    insn_fn fn = decode_slot(h, slot, h->cur_host_page, h->pc);
    fn(h, slot);
}

/* decode_slot for a slotless page: the parcel's bit stands for the slot. */
static bool decode_slotless(struct hart *h, struct code_page *cp, const uint8_t *host_page, uint64_t pc,
                            struct insn *out) {
    unsigned off = (unsigned)(pc & ~PAGE_MASK), s = off >> 1;
    uint64_t bit = 1ull << (s % 64), *w = &cp->decoded[s / 64];
    uint32_t writes = __atomic_load_n(&cp->writes, __ATOMIC_SEQ_CST);
    count_decoding(h, cp);
    if (__atomic_fetch_or(w, bit, __ATOMIC_SEQ_CST) & bit) __atomic_sub_fetch(&cp->live, 1, __ATOMIC_SEQ_CST);
    read_and_decode(host_page, off, out);
    if (__atomic_load_n(&cp->writes, __ATOMIC_SEQ_CST) != writes) code_page_invalidate(cp, off, out->len);
    return (__atomic_load_n(w, __ATOMIC_ACQUIRE) & bit) != 0;
}

bool code_page_decode(struct hart *h, struct code_page *cp, const uint8_t *host_page, uint64_t pc, struct insn *out) {
    if (cp->slotless) return decode_slotless(h, cp, host_page, pc, out);
    struct insn *slot = &cp->slot[(pc & ~PAGE_MASK) >> 1];
    if (__atomic_load_n(&slot->fn, __ATOMIC_ACQUIRE) == op_decode) decode_slot(h, slot, host_page, pc);
    memcpy(out, slot, sizeof *out);
    return out->fn != op_decode;
}

/* Runs decoded instructions from `first` on. Returns how many it executed. */
static int64_t run_chain(struct hart *h, const struct insn *first, int64_t left) {
    /* The first instruction is counted here, every later one by its dispatch. */
    h->slice = h->budget = left - 1;
    h->stolen = 0;
#ifdef RVISOR_LOOP_DISPATCH
    for (const struct insn *i = first; i;) {
        h->next_insn = NULL;
        i->fn(h, i);
        i = h->next_insn;
    }
#else
    first->fn(h, first);
#endif
    int64_t executed = h->slice - h->budget - h->stolen + 1;
    h->icount += (uint64_t)executed;
    h->slice = h->budget = h->stolen = 0;
    return executed;
}

enum hart_stop hart_run(struct hart *h, int64_t budget) {
    int64_t left = budget;
    while (left > 0) {
        if (__atomic_load_n(&h->exit_request, __ATOMIC_RELAXED)) return HART_EXIT;
        if (h->mem_stall) return HART_MEMORY;
        if (h->hsm_stopped) return HART_STOPPED;
        if (__atomic_load_n(&h->mip, __ATOMIC_RELAXED) & h->mie) hart_take_interrupt(h);
        if (h->wfi) {
            if (!hart_pending_irqs(h)) return HART_IDLE;
            h->wfi = false;
        }
        uint64_t pc = h->pc;
        struct fetch_entry *e = &h->itlb->fetch[tlb_index(pc)];
        if (e->tag != (pc & PAGE_MASK)) {
            e = mem_fetch_fill(h, pc);
            if (!e) { /* fetch fault: now at the trap handler */
                left--;
                continue;
            }
        }
        h->cur_host_page = (uint8_t *)(uintptr_t)((pc & PAGE_MASK) + e->addend);
        left -= run_chain(h, &e->code->slot[(pc & ~PAGE_MASK) >> 1], left);
    }
    return __atomic_load_n(&h->exit_request, __ATOMIC_RELAXED) ? HART_EXIT : HART_RAN;
}
