/* Sv39/Sv48 address translation: the guest's page tables walked through
 * the owner's guest-physical memory (struct phys_ops). The walk knows
 * nothing of harts: the caller passes the translation regime and raises
 * whatever fault comes back. */
#ifndef RVISOR_MMU_H
#define RVISOR_MMU_H

#include <stdbool.h>
#include <stdint.h>

struct phys_ops;

enum access { ACCESS_READ, ACCESS_WRITE, ACCESS_FETCH };

/* Privilege levels, as the privileged spec numbers them (2 is reserved). */
enum priv { PRIV_U = 0, PRIV_S = 1, PRIV_M = 3 };

#define SATP_MODE_BARE 0
#define SATP_MODE_SV39 8
#define SATP_MODE_SV48 9

/* What decides a translation besides the address. */
struct mmu_regime {
    uint64_t satp;
    int priv; /* effective privilege of the access */
    bool sum; /* mstatus.SUM: S-mode may read and write user pages */
    bool mxr; /* mstatus.MXR: executable pages are readable */
};

enum mmu_fault {
    MMU_OK = 0,
    MMU_PAGE_FAULT,   /* the page tables deny the access */
    MMU_ACCESS_FAULT, /* a page-table entry lies outside RAM */
    MMU_RETRY,        /* a page table has no machine frame just now: wait, then retry */
};

/* Translates va for `acc` to a guest-physical address, setting the
 * accessed and dirty bits of the leaf entry as needed. */
enum mmu_fault mmu_translate(const struct phys_ops *phys, void *owner, const struct mmu_regime *r, uint64_t va,
                             enum access acc, uint64_t *gpa);

#endif
