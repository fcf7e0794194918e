#include "monitor/reclaim.h"

#include <stdlib.h>

#include "monitor/frame_batch.h"
#include "monitor/machine_memory.h"
#include "vm/p2m.h"

/* Frames one batch swaps out at most: 16 MiB, so a batch's grace periods
 * are paid for many frames, and the protection's TLB flushes stay rare. */
#define BATCH_MAX 4096

struct reclaim {
    struct machine_memory *mm;
    struct frame_batch batch;
    uint64_t rng;
    struct reclaim_stats stats;
};

const char *reclaim_state_name(enum reclaim_state s) {
    switch (s) {
    case RECLAIM_HIGH: return "high";
    case RECLAIM_SOFT: return "soft";
    case RECLAIM_HARD: return "hard";
    case RECLAIM_LOW: return "low";
    }
    return "?";
}

enum reclaim_state reclaim_state_for(uint64_t free_frames, uint64_t total_frames) {
    /* ESX's thresholds: 6%, 4%, 2% and 1% of machine memory free. */
    uint64_t pct100 = total_frames ? free_frames * 10000 / total_frames : 0; /* hundredths of a percent */
    if (pct100 >= 600) return RECLAIM_HIGH;
    if (pct100 >= 400) return RECLAIM_SOFT;
    if (pct100 >= 200) return RECLAIM_HARD;
    return RECLAIM_LOW;
}

struct reclaim *reclaim_create(struct machine_memory *mm) {
    struct reclaim *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->mm = mm;
    r->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)r;
    return r;
}

void reclaim_destroy(struct reclaim *r) {
    if (!r) return;
    frame_batch_finish(&r->batch);
    frame_batch_free(&r->batch);
    free(r);
}

static uint64_t next_random(struct reclaim *r) {
    /* xorshift64*: victims need to be spread, not unpredictable. */
    r->rng ^= r->rng >> 12;
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    return r->rng * 0x2545f4914f6cdd1dull;
}

static void commit(struct reclaim *r) {
    for (size_t i = 0; i < r->batch.n; i++) {
        const struct batch_frame *f = &r->batch.frame[i];
        switch (p2m_swap_out(f->mem, f->gfn, f->mfn)) {
        case P2M_SWAP_OUT: r->stats.swapped_out++; break;
        case P2M_SWAP_CANCELLED: r->stats.cancelled++; break;
        case P2M_SWAP_FULL: r->stats.full++; break;
        case P2M_SWAP_ERROR: r->stats.errors++; break;
        }
    }
    r->stats.batches++;
    frame_batch_finish(&r->batch);
}

/* Of the VMs that still have swap space, the one furthest above its
 * target, else the one holding the most machine frames. */
static const struct reclaim_vm *victim(const struct reclaim_vm *vms, size_t n) {
    const struct reclaim_vm *best = NULL;
    uint64_t most_over = 0, most = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t backed = __atomic_load_n(&vms[i].mem->backed, __ATOMIC_RELAXED);
        if (!backed || p2m_swap_free(vms[i].mem) == 0) continue;
        if (vms[i].over > most_over || (!most_over && backed > most)) {
            most_over = vms[i].over;
            most = backed;
            best = &vms[i];
        }
    }
    return best;
}

/* Protects up to want private frames of v, from a random place on
 * (frames next to each other go out together, as ESX's randomly chosen
 * ones would, but the walk finds them however sparse they are). Returns
 * how many. */
static uint64_t pick_frames(struct reclaim *r, const struct reclaim_vm *v, uint64_t want) {
    uint64_t room = p2m_swap_free(v->mem), got = 0, n = v->mem->nframes;
    if (want > room) want = room;
    uint64_t gfn = next_random(r) % n;
    for (uint64_t seen = 0; got < want && seen < n; seen++, gfn = gfn + 1 == n ? 0 : gfn + 1) {
        if (p2m_state_of(v->mem, gfn) != P2M_PRIVATE) continue;
        if (frame_batch_add(&r->batch, v->id, v->mem, gfn, 0, NULL)) got++;
    }
    return got;
}

bool reclaim_tick(struct reclaim *r, const struct reclaim_vm *vms, size_t n) {
    if (r->batch.phase) {
        if (frame_batch_ready(&r->batch)) commit(r);
        return true;
    }
    uint64_t total = r->mm->nframes, free_frames = machine_memory_free_frames(r->mm);
    r->stats.state = reclaim_state_for(free_frames, total);
    bool waiting = false;
    for (size_t i = 0; i < n; i++) waiting |= vms[i].waiting;
    if (r->stats.state < RECLAIM_HARD && !waiting) return false;

    /* Up to the soft threshold, and at least a few frames for a waiter. */
    uint64_t soft = total * 4 / 100 + 1;
    uint64_t want = free_frames < soft ? soft - free_frames : 64;
    if (want > BATCH_MAX) want = BATCH_MAX;
    /* Several VMs may give, the largest first. */
    struct reclaim_vm tried[64];
    size_t ntried = 0;
    uint64_t got = 0;
    while (got < want && ntried < sizeof tried / sizeof tried[0]) {
        struct reclaim_vm rest[256];
        size_t nrest = 0;
        for (size_t i = 0; i < n && nrest < sizeof rest / sizeof rest[0]; i++) {
            bool seen = false;
            for (size_t k = 0; k < ntried; k++) seen |= tried[k].id == vms[i].id;
            if (!seen) rest[nrest++] = vms[i];
        }
        const struct reclaim_vm *v = victim(rest, nrest);
        if (!v) break;
        tried[ntried++] = *v;
        got += pick_frames(r, v, want - got);
    }
    if (!r->batch.n) return false;
    frame_batch_start(&r->batch);
    return true;
}

void reclaim_forget_vm(struct reclaim *r, uint32_t id) {
    if (frame_batch_involves(&r->batch, id)) frame_batch_finish(&r->batch);
}

void reclaim_get_stats(const struct reclaim *r, struct reclaim_stats *out) { *out = r->stats; }
