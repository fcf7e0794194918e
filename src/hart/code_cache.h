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
 * those mappings away first (see decode_slot and mem_store_slow).
 *
 * The binary translator needs decoded instructions only while it
 * translates, and never runs a page's chain of slots: a map for it has
 * "slotless" pages, which keep only which parcels were decoded, in a
 * bitmap, for invalidation, and decode into the caller's struct. Their
 * slots are never touched, so of a page's ~48 KiB only the header's host
 * page costs memory (pages come from anonymous arenas).
 *
 * Pages are not freed one by one (a translation or a fetch-TLB entry may
 * still point at one). Instead a map has a budget: once more pages were
 * made than it allows, its owner resets the whole map at a moment no hart
 * runs (code_map_reset), every hart forgets what it held (its fetch TLB,
 * its translations) before it runs again, and the arenas go back to the
 * host. A guest that sprays code thus costs bounded host memory, like a
 * full code buffer. */
#ifndef RVISOR_CODE_CACHE_H
#define RVISOR_CODE_CACHE_H

#include <pthread.h>
#include <stdbool.h>
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
    bool slotless;   /* see above: decoded parcels are the bits of `decoded` */
    uint64_t decoded[CODE_SLOTS / 64]; /* slotless pages only (atomic) */
};

/* The code pages of one guest's RAM, one slot per guest frame. This file
 * is the one owner of decoded code: pages are created (on a hart's first
 * fetch from a frame), invalidated (stores from harts, device DMA, frames
 * the p2m drops) and freed only through the functions below. */
struct code_map {
    struct code_page **page; /* per guest frame: decoded code, or NULL (atomic) */
    uint64_t nframes;
    bool slotless;           /* its pages are slotless (see above) */
    /* Host machinery: code pages are carved from anonymous mappings
     * (arenas), so that untouched slots stay unbacked; they are given back
     * only with the map. */
    pthread_mutex_t lock;
    struct code_arena *arenas;
    struct code_page *spare; /* a page made for a frame another hart won */
    uint64_t npages;         /* pages made since the map was last reset (lock) */
    uint64_t max_pages;      /* over this many, code_map_over_budget (0: no budget) */
    uint64_t resets;         /* times code_map_reset emptied the map (atomic) */
    uint32_t epoch;          /* bumped by each reset: harts compare it (atomic) */
    bool over_budget;        /* atomic */
    /* Held shared by code_map_written and code_map_forget while they use a
     * page (device DMA and the p2m, which are not harts), exclusively by
     * code_map_reset before it frees. */
    pthread_rwlock_t users;
};

/* False if there is no host memory for the map. */
bool code_map_init(struct code_map *m, uint64_t nframes);
void code_map_destroy(struct code_map *m);
/* Pages made from now on are slotless: for a VM whose code only the
 * binary translator runs. Call it before any page is made. */
void code_map_make_slotless(struct code_map *m);
/* The most pages the map may make before code_map_over_budget (0: no limit). */
void code_map_set_budget(struct code_map *m, uint64_t max_pages);
static inline bool code_map_over_budget(const struct code_map *m) {
    return __atomic_load_n(&m->over_budget, __ATOMIC_RELAXED);
}
/* A hart that saw another epoch must forget every page before it runs. */
static inline uint32_t code_map_epoch(const struct code_map *m) { return __atomic_load_n(&m->epoch, __ATOMIC_ACQUIRE); }
/* Frees every page and bumps the epoch. The caller guarantees that no hart
 * runs now and that each forgets its pages (fetch TLB, translations) before
 * it runs again (vm.c: the VM's turn lock, held exclusively). */
void code_map_reset(struct code_map *m);
/* The slot of guest frame `frame` (< nframes), for struct phys_page. */
static inline struct code_page **code_map_slot(struct code_map *m, uint64_t frame) { return &m->page[frame]; }
/* Bytes [off, off + len) of guest frame `frame` were written by someone
 * other than a hart (device DMA, the loader): decoded code there goes. */
void code_map_written(struct code_map *m, uint64_t frame, unsigned off, unsigned len);
/* The frame's contents are gone (dropped by the balloon, replaced): every
 * decoded instruction in it goes. */
void code_map_forget(struct code_map *m, uint64_t frame);

/* The code page in *slot (map m's slot of the frame at gpa), installing a
 * new one if there is none; *created tells whether this call installed it
 * (then stores to the frame must stop being mapped for writes). NULL if
 * there is no host memory. */
struct code_page *code_page_install(struct code_map *m, struct code_page **slot, uint64_t gpa, bool *created);

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
 * out, counting its parcel (its slot, unless cp is slotless) as decoded;
 * an already decoded slot is copied as it is. false if a store reset the
 * parcel meanwhile: whatever is being made from cp is already stale. */
bool code_page_decode(struct hart *h, struct code_page *cp, const uint8_t *host_page, uint64_t pc, struct insn *out);

/* The stub every empty slot holds: decodes the instruction at h->pc. */
void op_decode(struct hart *h, const struct insn *i);
void op_page_end(struct hart *h, const struct insn *i);

#endif
