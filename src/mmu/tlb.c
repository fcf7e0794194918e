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
    /* Another thread may flush too (remote sfence): an atomic add loses no flush. */
    if (__atomic_add_fetch(&t->jump_gen, 1, __ATOMIC_RELAXED) == 0 && t->jump) {
        /* Wrapped: entries from 2^32 flushes ago would count again. */
        for (unsigned i = 0; i < JUMP_CACHE_SIZE; i++) __atomic_store_n(&t->jump[i].pc, TLB_INVALID, __ATOMIC_RELAXED);
    }
}
