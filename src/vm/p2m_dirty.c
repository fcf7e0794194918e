/* Dirty logging, for live migration by pre-copy: while the VM runs, RAM is
 * sent once, then again and again the frames written since the last round,
 * until few are left; the VM then stops for the last ones.
 *
 * Why the log is exact. Every write to guest RAM reaches the frame through
 * one of:
 *   - p2m_frame(write=true), which marks the frame before it returns the
 *     host address. Harts call it (vm.c's phys_page) on every write-TLB miss
 *     (hart/mem.c: mem_store_slow, mem_atomic_ptr for SC/AMOs), and the page
 *     walker (mmu/walk.c) for A/D updates; demand-zero backing, unprotect,
 *     swap-in and copy-on-write (break_sharing) all happen inside that same
 *     call, so they are marked too. Devices' DMA, the loader and snapshot
 *     restore come through p2m_write/p2m_fill, which call it per frame.
 *   - a hart's write-TLB entry (struct tlb_set's write[]), which the
 *     interpreter's inline stores (hart/mem.h), mem_atomic_ptr and the
 *     translator's stores (jit/translate.c's tlb_probe on the same tables)
 *     all use. Such an entry is only ever filled (map_for_writes) from a
 *     p2m_frame(write=true) made just before, in the same turn, and it dies
 *     with a flush (m->flush: hart_flush_tlb_remote empties all four sets).
 *     Read and fetch entries are never written through (cur_host_page is
 *     only decoded; LR reads).
 *   - drop_batch (balloon, free page reporting), which marks each frame it
 *     turns to zeros, under `access` held exclusively.
 * So the only way a write escapes a log is a write entry filled from a
 * lookup that marked an older log (or none, before the start). collect
 * therefore: (1) points `log` at the other bitmap; (2) takes `access`
 * exclusively once, so every p2m_write/p2m_fill/drop that may have loaded
 * the old pointer has finished its mark and its copy; (3) waits for a
 * grace period: every hart that was inside a turn has left it, so every
 * lookup that loaded the old pointer has marked and has installed whatever
 * entry it was going to; (4) flushes every TLB, which kills those entries;
 * (5) waits for a second grace period, so every write through an entry from
 * before the flush is complete. After that, every write entry alive was
 * filled by a lookup that marked the new log, and every write not marked in
 * it has landed: the frames of the old log can be read. Flushing right
 * after the swap, before (3), would not be enough: a hart that looked up
 * (marking the old log) just before the swap may install its entry just
 * after that flush and write through it long after the collect returned,
 * marking nothing (the two-phase wait of page sharing, monitor/
 * frame_batch.c, and of dropping, p2m.c, is the same argument).
 *
 * Memory order: a hart's turn begins with a SEQ_CST increment and fence
 * before any lookup, and collect stores the pointer SEQ_CST before
 * p2m_grace_begin's fence and snapshot, so either the hart's lookup sees
 * the new pointer or the snapshot sees the hart inside its turn. A mark
 * loads the pointer with acquire, so a mark into a bitmap that became the
 * log again comes after the collect that emptied it. Bits are cleared only
 * by atomic exchange and set only by atomic OR: a mark is never lost, at
 * worst reported a round late (see carry).
 *
 * Not marked: merging into a shared frame or into zero, sharing in place,
 * swapping out and in (the contents stay the same); a zero fill of a
 * never-written frame (p2m_fill skips it). Harts that do not take turns
 * (m->ncpus) count as always passed, as everywhere in the p2m. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vm/p2m.h"

static size_t words(const struct p2m *m) { return (size_t)((m->nframes + 63) / 64); }

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Waits, polling until deadline, for every hart to pass a turn boundary. */
static bool grace(struct p2m *m, uint64_t deadline) {
    uint64_t snap[VM_MAX_HARTS];
    p2m_grace_begin(m, snap);
    long pause_ns = 10000;
    while (!p2m_grace_passed(m, snap)) {
        if (now_ns() >= deadline) return false;
        struct timespec ts = {0, pause_ns};
        nanosleep(&ts, NULL);
        if (pause_ns < 1000000) pause_ns *= 2;
    }
    return true;
}

/* Waits until deadline for every p2m_write/p2m_fill/drop under way to end. */
static bool devices_passed(struct p2m *m, uint64_t deadline) {
    struct timespec ts = {(time_t)(deadline / 1000000000ull), (long)(deadline % 1000000000ull)};
    if (pthread_rwlock_clockwrlock(&m->access, CLOCK_MONOTONIC, &ts) != 0) return false;
    pthread_rwlock_unlock(&m->access);
    return true;
}

/* Steps (2) to (5) above; false if the deadline came first. */
static bool settle(struct p2m *m) {
    uint64_t deadline = now_ns() + P2M_DIRTY_WAIT_MS * 1000000ull;
    bool ok = devices_passed(m, deadline);
    ok = grace(m, deadline) && ok;
    if (m->flush) m->flush(m->flush_ctx);
    ok = grace(m, deadline) && ok;
    return ok;
}

void p2m_dirty_mark(struct p2m *m, uint64_t frame) {
    uint64_t *log = __atomic_load_n(&m->dirty.log, __ATOMIC_ACQUIRE);
    if (log) __atomic_fetch_or(&log[frame / 64], 1ull << (frame & 63), __ATOMIC_RELAXED);
}

bool p2m_dirty_start(struct p2m *m) {
    struct p2m_dirty *d = &m->dirty;
    size_t n = words(m);
    for (int i = 0; i < 2; i++)
        if (!d->bits[i] && !(d->bits[i] = calloc(n ? n : 1, sizeof *d->bits[i]))) return false;
    __atomic_store_n(&d->log, NULL, __ATOMIC_SEQ_CST);
    /* A hart may still hold a pointer from an earlier run: at worst it
     * marks a frame too many. */
    for (int i = 0; i < 2; i++)
        for (size_t w = 0; w < n; w++) __atomic_store_n(&d->bits[i][w], 0, __ATOMIC_RELAXED);
    d->cur = 0;
    d->carry = false;
    __atomic_store_n(&d->log, d->bits[0], __ATOMIC_SEQ_CST);
    if (!settle(m)) {
        /* A write entry filled before the start may outlive it: report
         * everything once rather than miss a frame. */
        for (size_t w = 0; w < n; w++) {
            uint64_t all = w + 1 < n || m->nframes % 64 == 0 ? ~0ull : (1ull << (m->nframes % 64)) - 1;
            __atomic_fetch_or(&d->bits[0][w], all, __ATOMIC_RELAXED);
        }
    }
    return true;
}

uint64_t p2m_dirty_collect(struct p2m *m, uint64_t *out, bool *settled) {
    struct p2m_dirty *d = &m->dirty;
    size_t n = words(m);
    if (!__atomic_load_n(&d->log, __ATOMIC_RELAXED)) {
        memset(out, 0, n * sizeof *out);
        if (settled) *settled = true;
        return 0;
    }
    uint64_t *old = d->bits[d->cur];
    d->cur ^= 1;
    uint64_t *cur = d->bits[d->cur];
    __atomic_store_n(&d->log, cur, __ATOMIC_SEQ_CST);
    bool ok = settle(m);
    uint64_t count = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t w = __atomic_exchange_n(&old[i], 0, __ATOMIC_RELAXED);
        /* After an unsettled collect, marks may have landed in the bitmap
         * it emptied, which is the log now: report them (and leave them). */
        if (ok && d->carry) w |= __atomic_load_n(&cur[i], __ATOMIC_RELAXED);
        /* Unsettled: these frames may still change after the caller's copy
         * through entries this collect could not kill; report them again. */
        if (!ok && w) __atomic_fetch_or(&cur[i], w, __ATOMIC_RELAXED);
        out[i] = w;
        count += (uint64_t)__builtin_popcountll(w);
    }
    d->carry = !ok;
    if (settled) *settled = ok;
    return count;
}

void p2m_dirty_stop(struct p2m *m) {
    __atomic_store_n(&m->dirty.log, NULL, __ATOMIC_SEQ_CST);
    m->dirty.carry = false;
}

bool p2m_dirty_collect_paused(struct p2m *m, uint64_t *acc) {
    size_t n = words(m);
    uint64_t *part = malloc((n ? n : 1) * sizeof *part);
    if (!part) return false;
    bool settled = false;
    for (int tries = 0; !settled && tries < 50; tries++) {
        p2m_dirty_collect(m, part, &settled);
        for (size_t i = 0; i < n; i++) acc[i] |= part[i];
    }
    free(part);
    return true;
}
