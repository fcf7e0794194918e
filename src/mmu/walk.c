/* Sv39 / Sv48 page-table walks (RISC-V privileged spec, "Virtual-Memory
 * System"). Accessed and dirty bits are set by the walker, as hardware that
 * implements Svadu does, so the guest takes no extra faults for them. */
#include "mmu/mmu.h"
#include "mmu/phys.h"
#include "mmu/tlb.h"

#define PTE_V (1ull << 0)
#define PTE_R (1ull << 1)
#define PTE_W (1ull << 2)
#define PTE_X (1ull << 3)
#define PTE_U (1ull << 4)
#define PTE_A (1ull << 6)
#define PTE_D (1ull << 7)
#define PTE_PPN_SHIFT 10
#define PTE_PPN_MASK ((1ull << 44) - 1)
#define PTE_RESERVED_MASK (0x3ffull << 54) /* N, PBMT and reserved bits: must be zero */

enum mmu_fault mmu_translate(const struct phys_ops *phys, void *owner, const struct mmu_regime *r, uint64_t va,
                             enum access acc, uint64_t *gpa) {
    unsigned mode = (unsigned)(r->satp >> 60);
    int priv = r->priv;
    if (priv == PRIV_M || mode == SATP_MODE_BARE) {
        *gpa = va;
        return MMU_OK;
    }
    int levels = mode == SATP_MODE_SV48 ? 4 : 3;
    unsigned va_bits = 12 + 9 * (unsigned)levels;
    /* The address must be the sign extension of its low va_bits bits. */
    if ((uint64_t)((int64_t)(va << (64 - va_bits)) >> (64 - va_bits)) != va) return MMU_PAGE_FAULT;

    uint64_t table = (r->satp & PTE_PPN_MASK) << PAGE_SHIFT;
    for (int level = levels - 1; level >= 0; level--) {
        uint64_t pte_addr = table + ((va >> (12 + 9 * level)) & 0x1ff) * 8;
        struct phys_page pp = {0};
        if (!phys->page(owner, pte_addr, false, &pp)) return pp.retry ? MMU_RETRY : MMU_ACCESS_FAULT;
        uint64_t *slot = (uint64_t *)(pp.host + (pte_addr & ~PAGE_MASK));
        uint64_t pte = __atomic_load_n(slot, __ATOMIC_RELAXED);

        if (!(pte & PTE_V) || (!(pte & PTE_R) && (pte & PTE_W)) || (pte & PTE_RESERVED_MASK)) return MMU_PAGE_FAULT;
        uint64_t ppn = (pte >> PTE_PPN_SHIFT) & PTE_PPN_MASK;
        if (!(pte & (PTE_R | PTE_X))) {
            if (pte & (PTE_A | PTE_D | PTE_U)) return MMU_PAGE_FAULT; /* non-leaf must have them clear */
            table = ppn << PAGE_SHIFT;
            continue;
        }

        /* Leaf: check permissions. */
        switch (acc) {
        case ACCESS_FETCH:
            if (!(pte & PTE_X)) return MMU_PAGE_FAULT;
            break;
        case ACCESS_READ:
            if (!(pte & PTE_R) && !(r->mxr && (pte & PTE_X))) return MMU_PAGE_FAULT;
            break;
        case ACCESS_WRITE:
            if (!(pte & PTE_W)) return MMU_PAGE_FAULT;
            break;
        }
        if (priv == PRIV_U && !(pte & PTE_U)) return MMU_PAGE_FAULT;
        if (priv == PRIV_S && (pte & PTE_U) && (acc == ACCESS_FETCH || !r->sum))
            return MMU_PAGE_FAULT;
        /* A superpage's PPN must be aligned to its size. */
        uint64_t low_mask = (1ull << (9 * level)) - 1;
        if (ppn & low_mask) return MMU_PAGE_FAULT;

        uint64_t want = PTE_A | (acc == ACCESS_WRITE ? PTE_D : 0);
        if ((pte & want) != want) {
            /* Set A/D atomically unless the guest changed the PTE meanwhile. */
            if (!phys->page(owner, pte_addr, true, &pp)) return pp.retry ? MMU_RETRY : MMU_ACCESS_FAULT;
            slot = (uint64_t *)(pp.host + (pte_addr & ~PAGE_MASK));
            if (!__atomic_compare_exchange_n(slot, &pte, pte | want, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
                return mmu_translate(phys, owner, r, va, acc, gpa);
        }
        uint64_t page = (ppn | ((va >> PAGE_SHIFT) & low_mask)) << PAGE_SHIFT;
        *gpa = page | (va & ~PAGE_MASK);
        return MMU_OK;
    }
    return MMU_PAGE_FAULT;
}
