/* The software TLB: per hart and per privilege level, a direct-mapped cache
 * of guest-virtual page -> host address, kept separately for reads, writes
 * and fetches. It holds the composed translation (guest page table, then the
 * VM's p2m), so a hit costs one compare and one add. A write entry exists
 * only for pages whose dirty bit is set and that hold no decoded code, so
 * every store that needs the monitor's attention misses. */
#ifndef RVISOR_TLB_H
#define RVISOR_TLB_H

#include <stdint.h>

#define TLB_BITS 8
#define TLB_SIZE (1u << TLB_BITS)
#define TLB_INVALID (~0ull) /* matches no (page | low bits) key */
#define PAGE_SHIFT 12
#define PAGE_SIZE (1ull << PAGE_SHIFT)
#define PAGE_MASK (~(PAGE_SIZE - 1))

struct code_page;

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
 * for as long as the fetch translations of the same set are, so it is
 * flushed with them. Indexed by (pc >> 1) & (JUMP_CACHE_SIZE - 1). */
#define JUMP_CACHE_SIZE 1024
struct jump_entry {
    uint64_t pc;       /* or TLB_INVALID */
    const void *code;
};

struct tlb_set {
    struct tlb_entry read[TLB_SIZE];
    struct tlb_entry write[TLB_SIZE];
    struct fetch_entry fetch[TLB_SIZE];
    struct jump_entry jump[JUMP_CACHE_SIZE];
};

static inline unsigned jump_index(uint64_t pc) { return (unsigned)(pc >> 1) & (JUMP_CACHE_SIZE - 1); }

static inline unsigned tlb_index(uint64_t va) { return (unsigned)(va >> PAGE_SHIFT) & (TLB_SIZE - 1); }

/* Key for an access of `size` bytes: a misaligned address never matches. */
static inline uint64_t tlb_key(uint64_t va, unsigned size) { return va & (PAGE_MASK | (size - 1)); }

void tlb_set_flush(struct tlb_set *t);
/* Forgets only the jump cache (the translated code it points to is gone). */
void tlb_set_flush_jumps(struct tlb_set *t);

#endif
