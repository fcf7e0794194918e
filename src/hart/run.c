/* The interpreter loop. The outer loop handles interrupts, wfi and fetch
 * TLB misses; the inner loop runs decoded instructions of one code page
 * until control leaves the page, something needs the outer loop (a trap,
 * a CSR write, wfi: hart_break), or the slice's budget runs out. */
#include <string.h>

#include "hart/code_cache.h"
#include "hart/exec.h"
#include "mmu/mmu.h"

void op_decode(struct hart *h, const struct insn *i) {
    struct insn *slot = (struct insn *)i;
    unsigned off = (unsigned)(h->pc & ~PAGE_MASK);
    uint16_t lo;
    memcpy(&lo, h->cur_host_page + off, 2);
    if ((lo & 3) == 3) {
        if (off == PAGE_SIZE - 2) {
            *slot = (struct insn){.fn = op_cross_page, .len = 4};
        } else {
            uint16_t hi;
            memcpy(&hi, h->cur_host_page + off + 2, 2);
            decode((uint32_t)lo | (uint32_t)hi << 16, slot);
        }
    } else {
        decode(lo, slot);
    }
    slot->fn(h, slot);
}

enum hart_stop hart_run(struct hart *h, int64_t budget) {
    h->slice = budget;
    h->budget = budget;
    enum hart_stop why = HART_RAN;
    while (h->budget > 0) {
        if (h->exit_request) { why = HART_EXIT; break; }
        if (h->hsm_stopped) { why = HART_STOPPED; break; }
        if (__atomic_load_n(&h->mip, __ATOMIC_RELAXED) & h->mie) hart_take_interrupt(h);
        if (h->wfi) {
            if (!hart_pending_irqs(h)) { why = HART_IDLE; break; }
            h->wfi = false;
        }
        uint64_t pc = h->pc;
        struct fetch_entry *e = &h->itlb->fetch[tlb_index(pc)];
        if (e->tag != (pc & PAGE_MASK)) {
            e = mmu_fetch_fill(h, pc);
            if (!e) { h->budget--; continue; } /* fetch fault: now at the trap handler */
        }
        struct code_page *cp = e->code;
        h->cur_vpage = pc & PAGE_MASK;
        h->cur_host_page = (uint8_t *)(uintptr_t)(h->cur_vpage + e->addend);
        do {
            const struct insn *i = &cp->slot[(h->pc & ~PAGE_MASK) >> 1];
            i->fn(h, i);
        } while ((h->pc & PAGE_MASK) == h->cur_vpage && --h->budget > 0);
        if ((h->pc & PAGE_MASK) != h->cur_vpage) h->budget--; /* count the instruction that left */
    }
    h->icount += (uint64_t)(h->slice - (h->budget > 0 ? h->budget : 0));
    h->slice = h->budget = 0;
    return why;
}
