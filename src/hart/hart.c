#include "hart/hart.h"

#include <string.h>

#include "hart/mem.h"

#define MISA_RV64 (2ull << 62)
#define MISA_EXT(c) (1ull << ((c) - 'A'))

void hart_init(struct hart *h, unsigned id, const struct phys_ops *phys, const struct hart_env *env, void *owner) {
    memset(h, 0, sizeof *h);
    h->id = id;
    h->phys = phys;
    h->env = env;
    h->owner = owner;
    h->priv = PRIV_M;
    h->misa = MISA_RV64 | MISA_EXT('I') | MISA_EXT('M') | MISA_EXT('A') | MISA_EXT('F') | MISA_EXT('D') |
              MISA_EXT('C') | MISA_EXT('S') | MISA_EXT('U');
    /* 64-bit S and U modes; fixed, as the spec allows. */
    h->mstatus = (2ull << 32) | (2ull << 34);
    h->reservation = ~0ull;
    h->stimecmp = UINT64_MAX;
    for (int p = 0; p < 4; p++) tlb_set_flush_all(&h->tlb[p]);
    hart_update_tlb_sets(h);
}

void hart_update_tlb_sets(struct hart *h) {
    h->itlb = &h->tlb[h->priv];
    h->dtlb = &h->tlb[mem_data_set(h)];
    h->jump = h->itlb->jump[(h->mstatus & MSTATUS_FS) == MSTATUS_FS];
}

void hart_flush_tlb(struct hart *h) {
    for (int p = 0; p < 4; p++) tlb_set_flush(&h->tlb[p]);
}

void hart_flush_tlb_remote(struct hart *h) {
    for (int p = 0; p < 4; p++) tlb_set_flush_all(&h->tlb[p]);
}

void hart_set_mip(struct hart *h, uint64_t mask, bool level) {
    if (level)
        __atomic_fetch_or(&h->mip, mask, __ATOMIC_SEQ_CST);
    else
        __atomic_fetch_and(&h->mip, ~mask, __ATOMIC_SEQ_CST);
}
