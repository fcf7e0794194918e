/* Decoded-instruction cache. Each guest frame that code has been fetched
 * from gets a code_page: one decoded instruction per 16-bit parcel, filled
 * lazily (a slot starts as a stub that decodes on first execution). Keyed by
 * guest-physical frame, so every virtual alias of the frame shares it.
 * Stores into such a frame always take the slow path (the write TLB never
 * maps it) and reset the slots they overlap, so self-modifying code and
 * code loaded over old code are always seen. */
#ifndef RVISOR_CODE_CACHE_H
#define RVISOR_CODE_CACHE_H

#include <stdint.h>

#include "hart/hart.h"

#define CODE_SLOTS 2048 /* 4 KiB / 2-byte parcels */

struct code_page {
    struct insn slot[CODE_SLOTS];
    struct insn end; /* op_page_end: where straight-line code runs off the page */
};

struct code_page *code_page_new(void);
void code_page_free(struct code_page *cp);
/* Forgets decoded instructions overlapping bytes [off, off + len) of the frame. */
void code_page_invalidate(struct code_page *cp, unsigned off, unsigned len);

/* The stub every empty slot holds: decodes the instruction at h->pc. */
void op_decode(struct hart *h, const struct insn *i);
void op_page_end(struct hart *h, const struct insn *i);

#endif
