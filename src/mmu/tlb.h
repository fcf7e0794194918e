/* The software TLB: per hart and per privilege level, a direct-mapped cache
 * of guest-virtual page -> host address, kept separately for reads, writes
 * and fetches. It holds the composed translation (guest page table, then the
 * VM's p2m), so a hit costs one compare and one add. A write entry exists
 * only for pages whose dirty bit is set and that hold no decoded code, so
 * every store that needs the monitor's attention misses. */
#ifndef RVISOR_TLB_H
#define RVISOR_TLB_H

#include <stdint.h>

#define TLB_BITS 10
#define TLB_SIZE (1u << TLB_BITS)
#define TLB_INVALID (~0ull) /* matches no (page | low bits) key */
#define PAGE_SHIFT 12
#define PAGE_SIZE (1ull << PAGE_SHIFT)
#define PAGE_MASK (~(PAGE_SIZE - 1))

struct code_page;

#define TLB_FILLS_MAX 128

struct tlb_entry {
    uint64_t tag;      /* guest-virtual page address, or TLB_INVALID */
    uintptr_t addend;  /* host address = guest-virtual address + addend */
};

struct fetch_entry {
    uint64_t tag;
    uintptr_t addend;
    struct code_page *code; /* decoded instructions of that guest frame */
};

/* The binary translator's jump cache: guest pc -> translated code, valid
 * for as long as the fetch translations of the same set are: entries
 * exist only for pages the set's fetch TLB maps, so a change to any
 * fetch entry empties the jump cache (mmu_fetch_fill, the flushes). An entry
 * counts only while its gen is the set's jump_gen, so flushing it is one
 * increment. Indexed by jump_index (translated code computes the same). */
#define JUMP_CACHE_SIZE 16384
#define JUMP_FOLD 13
struct jump_entry {
    uint64_t pc;
    const void *code;
    uint32_t gen;
    uint32_t unused[3]; /* 32 bytes: the index scales by a shift */
};

_Static_assert(sizeof(struct jump_entry) == 32, "translated code scales the jump-cache index by 32");

struct tlb_set {
    struct tlb_entry read[TLB_SIZE];
    struct tlb_entry write[TLB_SIZE];
    struct fetch_entry fetch[TLB_SIZE];
    uint32_t jump_gen;
    /* JUMP_CACHE_SIZE entries each, owned by the translator (NULL without
     * one): [1] for code translated while FP state was Dirty, [0] for the
     * rest, so a change of FS needs no flush. */
    struct jump_entry *jump[2];
    /* What the owning hart filled since its last flush (kind << TLB_BITS |
     * index), so that its own flushes clear just those; more than
     * TLB_FILLS_MAX fills are not listed and make the next flush a full one. */
    uint16_t fills[TLB_FILLS_MAX];
    unsigned nfills;
};

enum tlb_kind { TLB_READ, TLB_WRITE, TLB_FETCH };

/* Called by the owning hart after it filled an entry. */
static inline void tlb_note_fill(struct tlb_set *t, enum tlb_kind kind, unsigned index) {
    if (t->nfills < TLB_FILLS_MAX) t->fills[t->nfills] = (uint16_t)((unsigned)kind << TLB_BITS | index);
    if (t->nfills <= TLB_FILLS_MAX) t->nfills++;
}

/* Folds bits above the index in, so code a multiple of 8 KiB apart does not collide. */
static inline unsigned jump_index(uint64_t pc) {
    return (unsigned)(((uint32_t)pc ^ ((uint32_t)pc >> JUMP_FOLD)) >> 1) & (JUMP_CACHE_SIZE - 1);
}

static inline unsigned tlb_index(uint64_t va) { return (unsigned)(va >> PAGE_SHIFT) & (TLB_SIZE - 1); }

/* Key for an access of `size` bytes: a misaligned address never matches. */
static inline uint64_t tlb_key(uint64_t va, unsigned size) { return va & (PAGE_MASK | (size - 1)); }

/* Empties the set (and its jump cache). tlb_set_flush is for the owning
 * hart's thread; tlb_set_flush_all may be called from any thread while the
 * owner runs: each entry dies with one aligned store. */
void tlb_set_flush(struct tlb_set *t);
void tlb_set_flush_all(struct tlb_set *t);
/* The invalidations others ask for. Another thread may run the hart that
 * owns the set: each entry dies with one aligned store, so the hart sees
 * the old entry or none. */
/* Every write entry (a frame now holds decoded code, under some alias). */
void tlb_set_drop_writes(struct tlb_set *t);
/* Drops the entries of va's page (sfence.vma with an address). */
void tlb_set_flush_page(struct tlb_set *t, uint64_t va);
/* Forgets only the jump cache (the translated code it points to is gone). */
void tlb_set_flush_jumps(struct tlb_set *t);

#endif
