#include "mmu/tlb.h"

void tlb_set_flush_all(struct tlb_set *t) {
    for (unsigned i = 0; i < TLB_SIZE; i++) {
        __atomic_store_n(&t->read[i].tag, TLB_INVALID, __ATOMIC_RELAXED);
        __atomic_store_n(&t->write[i].tag, TLB_INVALID, __ATOMIC_RELAXED);
        __atomic_store_n(&t->fetch[i].tag, TLB_INVALID, __ATOMIC_RELAXED);
    }
    tlb_set_flush_jumps(t);
}

void tlb_set_flush(struct tlb_set *t) {
    if (t->nfills > TLB_FILLS_MAX) {
        tlb_set_flush_all(t);
    } else {
        for (unsigned k = 0; k < t->nfills; k++) {
            unsigned i = t->fills[k] & (TLB_SIZE - 1);
            switch ((enum tlb_kind)(t->fills[k] >> TLB_BITS)) {
            case TLB_READ: __atomic_store_n(&t->read[i].tag, TLB_INVALID, __ATOMIC_RELAXED); break;
            case TLB_WRITE: __atomic_store_n(&t->write[i].tag, TLB_INVALID, __ATOMIC_RELAXED); break;
            case TLB_FETCH: __atomic_store_n(&t->fetch[i].tag, TLB_INVALID, __ATOMIC_RELAXED); break;
            }
        }
        tlb_set_flush_jumps(t);
    }
    t->nfills = 0;
}

void tlb_set_flush_jumps(struct tlb_set *t) {
    /* Another thread may flush too (remote sfence): an atomic add loses no flush. */
    if (__atomic_add_fetch(&t->jump_gen, 1, __ATOMIC_RELAXED) == 0) {
        /* Wrapped: entries from 2^32 flushes ago would count again. */
        for (int k = 0; k < 2; k++)
            for (unsigned i = 0; t->jump[k] && i < JUMP_CACHE_SIZE; i++)
                __atomic_store_n(&t->jump[k][i].pc, TLB_INVALID, __ATOMIC_RELAXED);
    }
}

void tlb_set_drop_writes(struct tlb_set *t) {
    for (unsigned i = 0; i < TLB_SIZE; i++) __atomic_store_n(&t->write[i].tag, TLB_INVALID, __ATOMIC_RELAXED);
}

void tlb_set_flush_page(struct tlb_set *t, uint64_t va) {
    unsigned i = tlb_index(va);
    uint64_t page = va & PAGE_MASK;
    /* Fills store the page address itself as the tag. */
    if (t->read[i].tag == page) __atomic_store_n(&t->read[i].tag, TLB_INVALID, __ATOMIC_RELAXED);
    if (t->write[i].tag == page) __atomic_store_n(&t->write[i].tag, TLB_INVALID, __ATOMIC_RELAXED);
    if (t->fetch[i].tag == page) {
        __atomic_store_n(&t->fetch[i].tag, TLB_INVALID, __ATOMIC_RELAXED);
        tlb_set_flush_jumps(t); /* only pages the fetch TLB maps have jump-cache entries */
    }
}
