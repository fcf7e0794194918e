/* Sv39 / Sv48 page-table walks (RISC-V privileged spec, "Virtual-Memory
 * System"). Accessed and dirty bits are set by the walker, as hardware that
 * implements Svadu does, so the guest takes no extra faults for them. */
#include "mmu/mmu.h"
#include "mmu/phys.h"

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

static int page_fault(enum access acc) {
    return acc == ACCESS_FETCH ? EXC_INSN_PAGE_FAULT : acc == ACCESS_WRITE ? EXC_STORE_PAGE_FAULT : EXC_LOAD_PAGE_FAULT;
}

static int access_fault(enum access acc) {
    return acc == ACCESS_FETCH ? EXC_INSN_ACCESS : acc == ACCESS_WRITE ? EXC_STORE_ACCESS : EXC_LOAD_ACCESS;
}

int mmu_translate(struct hart *h, uint64_t va, enum access acc, int priv, uint64_t *gpa) {
    unsigned mode = (unsigned)(h->satp >> 60);
    if (priv == PRIV_M || mode == SATP_MODE_BARE) {
        *gpa = va;
        return 0;
    }
    int levels = mode == SATP_MODE_SV48 ? 4 : 3;
    unsigned va_bits = 12 + 9 * (unsigned)levels;
    /* The address must be the sign extension of its low va_bits bits. */
    if ((uint64_t)((int64_t)(va << (64 - va_bits)) >> (64 - va_bits)) != va) return page_fault(acc);

    uint64_t table = (h->satp & PTE_PPN_MASK) << PAGE_SHIFT;
    for (int level = levels - 1; level >= 0; level--) {
        uint64_t pte_addr = table + ((va >> (12 + 9 * level)) & 0x1ff) * 8;
        struct phys_page pp;
        if (!h->phys->page(h->owner, pte_addr, false, &pp)) return access_fault(acc);
        uint64_t *slot = (uint64_t *)(pp.host + (pte_addr & ~PAGE_MASK));
        uint64_t pte = __atomic_load_n(slot, __ATOMIC_RELAXED);

        if (!(pte & PTE_V) || (!(pte & PTE_R) && (pte & PTE_W)) || (pte & PTE_RESERVED_MASK)) return page_fault(acc);
        uint64_t ppn = (pte >> PTE_PPN_SHIFT) & PTE_PPN_MASK;
        if (!(pte & (PTE_R | PTE_X))) {
            if (pte & (PTE_A | PTE_D | PTE_U)) return page_fault(acc); /* non-leaf must have them clear */
            table = ppn << PAGE_SHIFT;
            continue;
        }

        /* Leaf: check permissions. */
        switch (acc) {
        case ACCESS_FETCH:
            if (!(pte & PTE_X)) return page_fault(acc);
            break;
        case ACCESS_READ:
            if (!(pte & PTE_R) && !((h->mstatus & MSTATUS_MXR) && (pte & PTE_X))) return page_fault(acc);
            break;
        case ACCESS_WRITE:
            if (!(pte & PTE_W)) return page_fault(acc);
            break;
        }
        if (priv == PRIV_U && !(pte & PTE_U)) return page_fault(acc);
        if (priv == PRIV_S && (pte & PTE_U) && (acc == ACCESS_FETCH || !(h->mstatus & MSTATUS_SUM)))
            return page_fault(acc);
        /* A superpage's PPN must be aligned to its size. */
        uint64_t low_mask = (1ull << (9 * level)) - 1;
        if (ppn & low_mask) return page_fault(acc);

        uint64_t want = PTE_A | (acc == ACCESS_WRITE ? PTE_D : 0);
        if ((pte & want) != want) {
            /* Set A/D atomically unless the guest changed the PTE meanwhile. */
            if (!h->phys->page(h->owner, pte_addr, true, &pp)) return access_fault(acc);
            slot = (uint64_t *)(pp.host + (pte_addr & ~PAGE_MASK));
            if (!__atomic_compare_exchange_n(slot, &pte, pte | want, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
                return mmu_translate(h, va, acc, priv, gpa);
        }
        uint64_t page = (ppn | ((va >> PAGE_SHIFT) & low_mask)) << PAGE_SHIFT;
        *gpa = page | (va & ~PAGE_MASK);
        return 0;
    }
    return page_fault(acc);
}
