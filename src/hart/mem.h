/* A hart's loads, stores and fetches of guest-virtual memory, behind its
 * software TLB. The inline fast paths are a tag compare and an add;
 * everything else (walks, A/D updates, MMIO, misaligned accesses,
 * self-modifying code) is in the slow paths of mem.c. A slow path that
 * fails has already raised the exception on the hart and returns false.
 * Both engines use them: the interpreter's handlers directly, translated
 * code from its cold stubs. */
#ifndef RVISOR_HART_MEM_H
#define RVISOR_HART_MEM_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "hart/hart.h"
#include "mmu/mmu.h"
#include "mmu/tlb.h"

/* Translates va for `acc` at privilege `priv` (with the hart's satp and
 * mstatus SUM/MXR) to a guest-physical address, updating A/D bits.
 * Returns 0, the exception cause to raise, or MEM_RETRY if a page table
 * has no machine frame just now (the hart must stall, see hart_stall). */
#define MEM_RETRY (-1)
int mem_translate(struct hart *h, uint64_t va, enum access acc, int priv, uint64_t *gpa);

/* The loaded value is left in h->load_val: handlers then take no local's
 * address, which would keep the compiler from making their dispatch a jump. */
bool mem_load_slow(struct hart *h, uint64_t va, unsigned size);
bool mem_store_slow(struct hart *h, uint64_t va, unsigned size, uint64_t val);
/* Host address of a naturally aligned RAM word that may be read and written
 * (for LR/SC and AMOs). NULL after raising the fault. */
uint8_t *mem_atomic_ptr(struct hart *h, uint64_t va, unsigned size, bool for_store);
/* After the atomic write through mem_atomic_ptr's pointer: if the word
 * was in a frame holding decoded code, a decoder that raced with the write
 * learns of it (see code_page_written). */
void mem_atomic_written(struct hart *h);
static inline void mem_atomic_done(struct hart *h) {
    if (__builtin_expect(h->amo_code != NULL, 0)) mem_atomic_written(h);
}
/* Fills the fetch TLB for va; NULL after raising the fault. */
struct fetch_entry *mem_fetch_fill(struct hart *h, uint64_t va);
/* Fetches the 16-bit parcel at va without the decode cache (slow path). */
bool mem_fetch_parcel(struct hart *h, uint64_t va, uint16_t *out);

/* Privilege used by loads and stores (mstatus.MPRV may lend MPP to M-mode). */
static inline int mem_data_priv(const struct hart *h) {
    if (h->priv == PRIV_M && (h->mstatus & MSTATUS_MPRV))
        return (int)((h->mstatus & MSTATUS_MPP) >> 11);
    return h->priv;
}

/* The TLB set loads and stores use: the effective privilege's, except
 * that S-mode with mstatus.SUM (which may reach user pages) has a set of
 * its own, index 2 (no hart runs at privilege 2), so that Linux's toggling
 * of SUM around every user access flushes nothing. */
#define TLB_SET_S_SUM 2
static inline unsigned mem_data_set(const struct hart *h) {
    int p = mem_data_priv(h);
    return p == PRIV_S && (h->mstatus & MSTATUS_SUM) ? TLB_SET_S_SUM : (unsigned)p;
}

#define MEM_ACCESSORS(bits, type)                                                           \
    static inline bool mem_load##bits(struct hart *h, uint64_t va, type *out) {             \
        const struct tlb_entry *e = &h->dtlb->read[tlb_index(va)];                          \
        if (__builtin_expect(e->tag == tlb_key(va, sizeof(type)), 1)) {                     \
            memcpy(out, (const void *)(uintptr_t)(va + e->addend), sizeof(type));           \
            return true;                                                                    \
        }                                                                                   \
        if (!mem_load_slow(h, va, sizeof(type))) return false;                              \
        *out = (type)h->load_val;                                                           \
        return true;                                                                        \
    }                                                                                       \
    static inline bool mem_store##bits(struct hart *h, uint64_t va, type val) {             \
        const struct tlb_entry *e = &h->dtlb->write[tlb_index(va)];                         \
        if (__builtin_expect(e->tag == tlb_key(va, sizeof(type)), 1)) {                     \
            memcpy((void *)(uintptr_t)(va + e->addend), &val, sizeof(type));                \
            return true;                                                                    \
        }                                                                                   \
        return mem_store_slow(h, va, sizeof(type), val);                                    \
    }

MEM_ACCESSORS(8, uint8_t)
MEM_ACCESSORS(16, uint16_t)
MEM_ACCESSORS(32, uint32_t)
MEM_ACCESSORS(64, uint64_t)
#undef MEM_ACCESSORS

#endif
