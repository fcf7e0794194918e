/* Decoded-instruction cache. Each guest frame that code has been fetched
 * from gets a code_page: one decoded instruction per 16-bit parcel, filled
 * lazily (a slot starts as a stub that decodes on first execution). Keyed by
 * guest-physical frame, so every virtual alias of the frame shares it.
 * While a page holds decoded instructions, stores into its frame take the
 * slow path (the write TLB does not map it) and reset the slots they
 * overlap, so self-modifying code and code loaded over old code are always
 * seen.
 *
 * Frames change jobs: the kernel frees its init code, a process exits and
 * its pages become another's stack. Once stores have reset every decoded
 * slot, the page turns writable: the write TLB may map the frame again, so
 * a frame that is now data runs at full speed. The next decode in it takes
 * those mappings away first (see decode_slot and mem_store_slow). */
#ifndef RVISOR_CODE_CACHE_H
#define RVISOR_CODE_CACHE_H

#include <stdint.h>

#include "hart/hart.h"

#define CODE_SLOTS 2048 /* 4 KiB / 2-byte parcels */

struct code_page {
    struct insn slot[CODE_SLOTS]; /* first: a slot's page is found from its address */
    struct insn end; /* op_page_end: where straight-line code runs off the page */
    uint64_t gpa;    /* the frame */
    unsigned live;   /* slots holding a decoded instruction (atomic) */
    /* Bumped whenever decoded slots are reset: a translation made from the
     * page at an older generation must not run (atomic). */
    uint32_t gen;
    /* Bumped by every write into the frame that code_page_written is told
     * of, after the bytes are in: a decoder that read the bytes before the
     * write and published after it sees the change and undoes its slot. */
    uint32_t writes;
    bool writable;   /* write TLB entries may map the frame (atomic; see above) */
};

struct code_page *code_page_new(uint64_t gpa);
void code_page_free(struct code_page *cp);
/* Forgets decoded instructions overlapping bytes [off, off + len) of the
 * frame; returns how many decoded slots the page still has. */
unsigned code_page_invalidate(struct code_page *cp, unsigned off, unsigned len);
/* The bytes [off, off + len) of the frame were just written (call it after
 * the write): counts the write, then invalidates. Returns as
 * code_page_invalidate does. */
unsigned code_page_written(struct code_page *cp, unsigned off, unsigned len);

/* The page slot s belongs to (pc is the address of its instruction). */
static inline struct code_page *code_page_of(const struct insn *s, uint64_t pc) {
    return (struct code_page *)(uintptr_t)(s - ((pc & (CODE_SLOTS * 2 - 1)) >> 1));
}

/* Decodes the instruction at pc (in the page mapped at host_page) into
 * its slot of cp, counting the slot as live; returns the slot. A slot that
 * is already decoded is returned as it is. */
const struct insn *code_page_decode(struct hart *h, struct code_page *cp, const uint8_t *host_page, uint64_t pc);

/* The stub every empty slot holds: decodes the instruction at h->pc. */
void op_decode(struct hart *h, const struct insn *i);
void op_page_end(struct hart *h, const struct insn *i);

#endif
