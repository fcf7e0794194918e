#include "mmu/tlb.h"

void tlb_set_flush(struct tlb_set *t) {
    for (unsigned i = 0; i < TLB_SIZE; i++) {
        t->read[i].tag = TLB_INVALID;
        t->write[i].tag = TLB_INVALID;
        t->fetch[i].tag = TLB_INVALID;
    }
    tlb_set_flush_jumps(t);
}

void tlb_set_flush_jumps(struct tlb_set *t) {
    for (unsigned i = 0; i < JUMP_CACHE_SIZE; i++) __atomic_store_n(&t->jump[i].pc, TLB_INVALID, __ATOMIC_RELAXED);
}
