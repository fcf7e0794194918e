#include "vm/p2m.h"
#include "vm/p2m_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>

#include "hart/code_cache.h"
#include "mmu/tlb.h"


bool p2m_init(struct p2m *m, uint64_t base, uint64_t size, const struct frame_source *frames) {
    memset(m, 0, sizeof *m);
    if (size == 0 || (size & ~PAGE_MASK) || (base & ~PAGE_MASK)) {
        errno = EINVAL;
        return false;
    }
    m->nframes = size >> PAGE_SHIFT;
    m->map = calloc(m->nframes, sizeof *m->map); /* all P2M_ZERO */
    if (!m->map || !code_map_init(&m->code, m->nframes)) {
        free(m->map);
        errno = ENOMEM;
        return false;
    }
    m->base = base;
    m->size = size;
    m->frames = *frames;
    pthread_mutex_init(&m->lock, NULL);
    pthread_rwlock_init(&m->access, NULL);
    pthread_mutex_init(&m->release_lock, NULL);
    return true;
}

struct p2m_release {
    struct p2m_release *next;
    int phase;                    /* 1: waiting to flush again, 2: waiting to free */
    uint64_t snap[VM_MAX_HARTS];  /* the harts' turn counters when the phase began */
    size_t n;
    uint64_t mfn[];
};

void p2m_destroy(struct p2m *m) {
    /* No hart runs any more: whatever waits for them can go. */
    while (m->releasing) {
        struct p2m_release *r = m->releasing;
        m->releasing = r->next;
        for (size_t i = 0; i < r->n; i++) m->frames.free(m->frames.pool, r->mfn[i]);
        free(r);
    }
    for (uint64_t f = 0; f < m->nframes; f++) {
        enum p2m_state st = entry_state(m->map[f]);
        if (st != P2M_ZERO && st != P2M_SWAPPED && st != P2M_IMAGE) m->frames.free(m->frames.pool, entry_mfn(m->map[f]));
    }
    code_map_destroy(&m->code);
    p2m_swap_destroy(m);
    if (m->image.base) munmap((void *)m->image.base, m->image.len);
    free(m->sample.marks);
    free(m->dirty.bits[0]);
    free(m->dirty.bits[1]);
    free(m->map);
    pthread_mutex_destroy(&m->lock);
    pthread_rwlock_destroy(&m->access);
    pthread_mutex_destroy(&m->release_lock);
    memset(m, 0, sizeof *m);
}

/* Gives a never-written guest frame a machine frame of its own; NULL if
 * memory is exhausted, or with *again set if the entry changed meanwhile. */
static uint8_t *back_frame(struct p2m *m, uint64_t frame, bool *again) {
    pthread_mutex_lock(&m->lock);
    uint64_t e = __atomic_load_n(&m->map[frame], __ATOMIC_ACQUIRE);
    uint64_t mfn;
    if (entry_state(e) != P2M_ZERO) {
        /* Backed meanwhile (or merged): p2m_frame looks again. */
        pthread_mutex_unlock(&m->lock);
        *again = true;
        return NULL;
    } else if (!m->frames.alloc(m->frames.pool, &mfn)) {
        m->exhausted = true;
        pthread_mutex_unlock(&m->lock);
        errno = ENOMEM;
        return NULL;
    } else {
        __atomic_store_n(&m->map[frame], mfn << STATE_BITS | P2M_PRIVATE, __ATOMIC_RELEASE);
        __atomic_fetch_add(&m->backed, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&m->lock);
    return frame_host(&m->frames, mfn);
}

const uint8_t *p2m_zero_frame(const struct p2m *m) { return frame_host(&m->frames, m->frames.zero_mfn); }

static void release_frames(struct p2m *m, struct p2m_release *r);

/* A write to a protected frame: it stays where it is, and the merge that
 * protected it is off (p2m_merge sees the state change). */
static uint8_t *unprotect(struct p2m *m, uint64_t frame, bool *again) {
    pthread_mutex_lock(&m->lock);
    uint64_t e = __atomic_load_n(&m->map[frame], __ATOMIC_ACQUIRE);
    if (entry_state(e) == P2M_PROTECTED)
        __atomic_store_n(&m->map[frame], entry_mfn(e) << STATE_BITS | P2M_PRIVATE, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&m->lock);
    *again = true;
    return NULL;
}

/* A write to a shared frame: copy it to a frame of this guest's own (NULL
 * if memory is exhausted, or with *again set if the entry changed). */
static uint8_t *break_sharing(struct p2m *m, uint64_t frame, bool *again) {
    struct p2m_release *r = malloc(sizeof *r + sizeof r->mfn[0]);
    if (!r) {
        m->exhausted = true;
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_lock(&m->lock);
    uint64_t e = __atomic_load_n(&m->map[frame], __ATOMIC_ACQUIRE);
    if (entry_state(e) != P2M_SHARED) { /* another hart broke it first */
        pthread_mutex_unlock(&m->lock);
        free(r);
        *again = true;
        return NULL;
    }
    uint64_t mfn;
    if (!m->frames.alloc(m->frames.pool, &mfn)) {
        m->exhausted = true;
        pthread_mutex_unlock(&m->lock);
        free(r);
        errno = ENOMEM;
        return NULL;
    }
    memcpy(frame_host(&m->frames, mfn), frame_host(&m->frames, entry_mfn(e)), PAGE_SIZE);
    __atomic_store_n(&m->map[frame], mfn << STATE_BITS | P2M_PRIVATE, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&m->remap_gen, 1, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&m->backed, 1, __ATOMIC_RELAXED);
    __atomic_fetch_sub(&m->shared, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&m->cow_breaks, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&m->lock);
    /* Other harts may map the shared frame for reads: they must see this
     * guest's writes from now on, and the frame's reference goes only
     * once nobody can be using it. */
    r->n = 1;
    r->mfn[0] = entry_mfn(e);
    release_frames(m, r);
    return frame_host(&m->frames, mfn);
}

uint8_t *p2m_frame(struct p2m *m, uint64_t gpa, bool write, struct code_page ***code) {
    if (!p2m_contains(m, gpa, 1)) {
        errno = EFAULT;
        return NULL;
    }
    uint64_t frame = (gpa - m->base) >> PAGE_SHIFT;
    if (code) *code = code_map_slot(&m->code, frame);
    if (__atomic_load_n(&m->sample.on, __ATOMIC_RELAXED)) p2m_sample_touch(m, frame);
    /* Dirty logging (p2m_dirty.c): marked before the caller can write
     * (first write, copy-on-write, swap-in and unprotect all come through
     * here with write set); one relaxed load while logging is off. */
    if (write && __atomic_load_n(&m->dirty.log, __ATOMIC_RELAXED)) p2m_dirty_mark(m, frame);
    for (;;) {
        uint64_t e = __atomic_load_n(&m->map[frame], __ATOMIC_ACQUIRE);
        uint8_t *host = NULL;
        bool again = false;
        switch (entry_state(e)) {
        case P2M_PRIVATE: return frame_host(&m->frames, entry_mfn(e));
        case P2M_ZERO:
            if (!write) return frame_host(&m->frames, m->frames.zero_mfn);
            host = back_frame(m, frame, &again);
            break;
        case P2M_PROTECTED:
            if (!write) return frame_host(&m->frames, entry_mfn(e));
            host = unprotect(m, frame, &again);
            break;
        case P2M_SHARED:
            if (!write) return frame_host(&m->frames, entry_mfn(e));
            host = break_sharing(m, frame, &again);
            break;
        case P2M_IMAGE:
            pthread_mutex_lock(&m->lock);
            if (__atomic_load_n(&m->map[frame], __ATOMIC_ACQUIRE) == e)
                host = p2m_image_in_locked(m, frame, e);
            else
                again = true; /* copied in by another hart meanwhile */
            pthread_mutex_unlock(&m->lock);
            break;
        case P2M_SWAPPED: host = p2m_swap_in(m, frame, e, &again); break;
        }
        if (host || !again) return host;
    }
}

/* Runs body for each piece of [gpa, gpa + len) that lies in one guest frame,
 * with off (offset in the frame), chunk (bytes), frame (guest frame index)
 * and pos (offset in the caller's buffer) set. */
#define FOR_EACH_FRAME_PIECE(gpa, len, body)                                             \
    do {                                                                                 \
        uint64_t at_ = (gpa);                                                            \
        size_t left_ = (len), done_ = 0;                                                 \
        while (left_) {                                                                  \
            unsigned off = (unsigned)(at_ & ~PAGE_MASK);                                 \
            size_t chunk = PAGE_SIZE - off < left_ ? PAGE_SIZE - off : left_;            \
            uint64_t frame = (at_ - m->base) >> PAGE_SHIFT;                              \
            size_t pos = done_;                                                          \
            body;                                                                        \
            at_ += chunk;                                                                \
            done_ += chunk;                                                              \
            left_ -= chunk;                                                              \
        }                                                                                \
    } while (0)

bool p2m_write(struct p2m *m, uint64_t gpa, const void *buf, size_t len) {
    if (!p2m_contains(m, gpa, len)) {
        errno = EFAULT;
        return false;
    }
    bool ok = true;
    pthread_rwlock_rdlock(&m->access);
    FOR_EACH_FRAME_PIECE(gpa, len, {
        uint8_t *host = p2m_frame(m, at_, true, NULL);
        if (!host) {
            ok = false;
            break;
        }
        memcpy(host + off, (const uint8_t *)buf + pos, chunk);
        code_map_written(&m->code, frame, off, (unsigned)chunk);
    });
    pthread_rwlock_unlock(&m->access);
    return ok;
}

bool p2m_fill(struct p2m *m, uint64_t gpa, uint8_t byte, size_t len) {
    if (!p2m_contains(m, gpa, len)) {
        errno = EFAULT;
        return false;
    }
    bool ok = true;
    pthread_rwlock_rdlock(&m->access);
    FOR_EACH_FRAME_PIECE(gpa, len, {
        (void)pos;
        /* Zeros into a never-written frame change nothing: keep it unbacked. */
        if (byte != 0 || entry_state(__atomic_load_n(&m->map[frame], __ATOMIC_ACQUIRE)) != P2M_ZERO) {
            uint8_t *host = p2m_frame(m, at_, true, NULL);
            if (!host) {
                ok = false;
                break;
            }
            memset(host + off, byte, chunk);
            code_map_written(&m->code, frame, off, (unsigned)chunk);
        }
    });
    pthread_rwlock_unlock(&m->access);
    return ok;
}

bool p2m_read(struct p2m *m, uint64_t gpa, void *buf, size_t len) {
    if (!p2m_contains(m, gpa, len)) {
        errno = EFAULT;
        return false;
    }
    bool ok = true;
    pthread_rwlock_rdlock(&m->access);
    FOR_EACH_FRAME_PIECE(gpa, len, {
        (void)frame;
        /* NULL only for a swapped frame that cannot come back just now
         * (no free machine frame) or was lost. */
        const uint8_t *host = p2m_frame(m, at_, false, NULL);
        if (!host) {
            ok = false;
            break;
        }
        memcpy((uint8_t *)buf + pos, host + off, chunk);
    });
    pthread_rwlock_unlock(&m->access);
    return ok;
}

/* ---- Dropping frames ----
 *
 * Taking a machine frame away from a running guest is the one p2m change
 * that can hurt someone else: the frame goes back to the pool, and the next
 * VM that gets it must never see this guest's writes (nor this guest that
 * VM's data). Who may still hold the frame's host address when its entry
 * turns back to P2M_ZERO?
 *   - a hart's software TLB (read, write and fetch entries);
 *   - a hart in the middle of an access: it loaded a TLB entry, or looked
 *     the entry up in the slow path and is about to install it in its TLB
 *     or copy through it (cur_host_page, a page-crossing access, an AMO);
 *   - a monitor thread inside p2m_read/p2m_write/p2m_fill (a device on the
 *     event loop, the SBI console, HTIF).
 * The last are excluded by `access`: they hold it shared for the whole
 * copy, the dropper holds it exclusively while it changes entries, so
 * they either finish before or look the entry up after.
 *
 * For harts we use an epoch scheme. Every hart has a turn counter, bumped
 * when it enters hart_run and again when it leaves (odd = inside). Outside
 * hart_run a hart holds no host pointer except its TLB entries. A dropped
 * frame waits in two phases:
 *   1. The entries are changed and every hart's TLB is flushed; the
 *      counters are recorded. A hart that was inside hart_run may still use
 *      the frame, and may even install a fresh TLB entry for it from a
 *      lookup made just before the change. Once each hart has left hart_run
 *      (its counter moved on, or it was outside at the snapshot), every
 *      lookup that could have seen the old entry is finished.
 *   2. Flush every TLB again (removing those late entries), record the
 *      counters again, and wait for each hart to leave hart_run once more:
 *      then no access that began with the old pointer is still running.
 * Only then is the frame freed. Harts that are not running (idle, paused,
 * HSM-stopped, descheduled) count as having passed at once, so an idle VM
 * frees at once. Waiting lists are drained by p2m_reclaim: from every
 * hart's turn end (p2m_turn_end), and by whoever dropped (the balloon's
 * loop thread retries while frames wait). The frames stay counted by the
 * pool while they wait; `backed` no longer counts them. */

#define DROP_BATCH 512 /* frames changed under one hold of the locks */

static void snapshot(struct p2m *m, uint64_t *snap) {
    for (unsigned i = 0; i < m->ncpus; i++) snap[i] = __atomic_load_n(&m->turn[i], __ATOMIC_SEQ_CST);
}

static bool harts_passed(struct p2m *m, const uint64_t *snap) {
    for (unsigned i = 0; i < m->ncpus; i++)
        if ((snap[i] & 1) && __atomic_load_n(&m->turn[i], __ATOMIC_SEQ_CST) == snap[i]) return false;
    return true;
}

void p2m_turn_begin(struct p2m *m, unsigned cpu) {
    __atomic_fetch_add(&m->turn[cpu], 1, __ATOMIC_SEQ_CST);
    /* The hart's lookups from here on must see entries changed before a
     * snapshot that saw the old count (the dropper's side is SEQ_CST too). */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

void p2m_turn_end(struct p2m *m, unsigned cpu) {
    __atomic_fetch_add(&m->turn[cpu], 1, __ATOMIC_SEQ_CST);
    if (p2m_releasing(m)) p2m_reclaim(m);
}

void p2m_reclaim(struct p2m *m) {
    if (!p2m_releasing(m)) return;
    struct p2m_release *done = NULL;
    pthread_mutex_lock(&m->release_lock);
    /* Two rounds, so that a VM whose harts are all outside hart_run goes
     * through both phases in one call. */
    for (int round = 0; round < 2; round++) {
        bool promoted = false;
        for (struct p2m_release **p = &m->releasing; *p;) {
            struct p2m_release *r = *p;
            if (r->phase == 0 || !harts_passed(m, r->snap)) {
                p = &r->next;
                continue;
            }
            if (r->phase == 1) {
                r->phase = 0; /* snapshot after the flush below */
                promoted = true;
                p = &r->next;
                continue;
            }
            *p = r->next;
            r->next = done;
            done = r;
            __atomic_fetch_sub(&m->releasing_frames, r->n, __ATOMIC_RELAXED);
        }
        if (!promoted) break;
        if (m->flush) m->flush(m->flush_ctx);
        for (struct p2m_release *r = m->releasing; r; r = r->next)
            if (r->phase == 0) {
                r->phase = 2;
                snapshot(m, r->snap);
            }
    }
    pthread_mutex_unlock(&m->release_lock);
    while (done) {
        struct p2m_release *r = done;
        done = r->next;
        for (size_t i = 0; i < r->n; i++) m->frames.free(m->frames.pool, r->mfn[i]);
        free(r);
    }
}

/* Drops the guest frames frame[0..n) (indexes, in range); returns how many were backed. */
static uint64_t drop_batch(struct p2m *m, const uint64_t *frame, size_t n) {
    struct p2m_release *r = malloc(sizeof *r + n * sizeof r->mfn[0]);
    if (!r) return 0; /* the guest keeps its frames: nothing is lost */
    r->n = 0;
    uint64_t shared = 0, swapped = 0;
    pthread_rwlock_wrlock(&m->access);
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < n; i++) {
        uint64_t e = __atomic_load_n(&m->map[frame[i]], __ATOMIC_ACQUIRE);
        if (entry_state(e) == P2M_ZERO) continue;
        __atomic_store_n(&m->map[frame[i]], (uint64_t)P2M_ZERO, __ATOMIC_SEQ_CST);
        /* Its contents turn to zeros: a migration must learn of it. Marked
         * under `access`, which a collect waits for (p2m_dirty.c). */
        if (__atomic_load_n(&m->dirty.log, __ATOMIC_RELAXED)) p2m_dirty_mark(m, frame[i]);
        /* Decoded code of the old contents must not outlive them. */
        code_map_forget(&m->code, frame[i]);
        if (entry_state(e) == P2M_IMAGE) { /* nothing mapped, nothing held */
            __atomic_fetch_sub(&m->imaged, 1, __ATOMIC_RELAXED);
            continue;
        }
        if (entry_state(e) == P2M_SWAPPED) { /* nothing mapped: only its slot goes */
            p2m_swap_free_slot(m, entry_mfn(e));
            __atomic_fetch_sub(&m->swapped, 1, __ATOMIC_RELAXED);
            swapped++;
            continue;
        }
        if (entry_state(e) == P2M_SHARED) shared++;
        r->mfn[r->n++] = entry_mfn(e);
    }
    __atomic_fetch_sub(&m->backed, r->n - shared, __ATOMIC_RELAXED);
    __atomic_fetch_sub(&m->shared, shared, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&m->lock);
    pthread_rwlock_unlock(&m->access);
    if (!r->n) {
        free(r);
        return swapped;
    }
    size_t dropped = r->n + swapped;
    release_frames(m, r);
    return dropped;
}

/* Gives r's frames back once no hart can be using them (see above). */
static void release_frames(struct p2m *m, struct p2m_release *r) {
    /* Phase 1: no hart keeps using the frames for long... */
    if (m->flush) m->flush(m->flush_ctx);
    pthread_mutex_lock(&m->release_lock);
    r->phase = 1;
    snapshot(m, r->snap);
    r->next = m->releasing;
    m->releasing = r;
    __atomic_fetch_add(&m->releasing_frames, r->n, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&m->release_lock);
    /* ...and with every hart outside hart_run they are free at once. */
    p2m_reclaim(m);
}

uint64_t p2m_drop_range(struct p2m *m, uint64_t gpa, uint64_t len) {
    /* Whole frames only, clipped to RAM. */
    uint64_t end = gpa + len < gpa ? UINT64_MAX : gpa + len;
    uint64_t first = gpa < m->base ? m->base : gpa;
    uint64_t last = end > m->base + m->size ? m->base + m->size : end;
    first = (first + PAGE_SIZE - 1) & PAGE_MASK;
    last &= PAGE_MASK;
    if (first >= last) return 0;
    uint64_t frame[DROP_BATCH], dropped = 0;
    uint64_t f = (first - m->base) >> PAGE_SHIFT, stop = (last - m->base) >> PAGE_SHIFT;
    while (f < stop) {
        size_t n = 0;
        /* Only backed frames go into a batch: reporting mostly names frames that never were. */
        for (; f < stop && n < DROP_BATCH; f++)
            if (entry_state(__atomic_load_n(&m->map[f], __ATOMIC_RELAXED)) != P2M_ZERO) frame[n++] = f;
        if (n) dropped += drop_batch(m, frame, n);
    }
    return dropped;
}

uint64_t p2m_drop_frames(struct p2m *m, const uint64_t *gpa, size_t n) {
    uint64_t frame[DROP_BATCH], dropped = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!p2m_contains(m, gpa[i] & PAGE_MASK, PAGE_SIZE)) continue;
        frame[k++] = ((gpa[i] & PAGE_MASK) - m->base) >> PAGE_SHIFT;
        if (k == DROP_BATCH) {
            dropped += drop_batch(m, frame, k);
            k = 0;
        }
    }
    if (k) dropped += drop_batch(m, frame, k);
    return dropped;
}

void p2m_release_frame(struct p2m *m, uint64_t mfn) {
    struct p2m_release *r = malloc(sizeof *r + sizeof r->mfn[0]);
    if (!r) {
        /* Cannot wait for the harts without memory: keep the frame (a
         * leak of one frame is better than a frame in two hands). */
        return;
    }
    r->n = 1;
    r->mfn[0] = mfn;
    release_frames(m, r);
}

/* ---- Page sharing ---- */

bool p2m_private_mfn(struct p2m *m, uint64_t frame, uint64_t *mfn) {
    if (frame >= m->nframes) return false;
    uint64_t e = __atomic_load_n(&m->map[frame], __ATOMIC_ACQUIRE);
    if (entry_state(e) != P2M_PRIVATE && entry_state(e) != P2M_PROTECTED) return false;
    *mfn = entry_mfn(e);
    return true;
}

bool p2m_shared_mfn(const struct p2m *m, uint64_t frame, uint64_t *mfn) {
    if (frame >= m->nframes) return false;
    uint64_t e = __atomic_load_n(&m->map[frame], __ATOMIC_ACQUIRE);
    if (entry_state(e) != P2M_SHARED) return false;
    *mfn = entry_mfn(e);
    return true;
}

bool p2m_protect(struct p2m *m, uint64_t frame, uint64_t *mfn) {
    if (frame >= m->nframes) return false;
    bool ok = false;
    pthread_mutex_lock(&m->lock);
    uint64_t e = __atomic_load_n(&m->map[frame], __ATOMIC_ACQUIRE);
    if (entry_state(e) == P2M_PRIVATE) {
        *mfn = entry_mfn(e);
        __atomic_store_n(&m->map[frame], *mfn << STATE_BITS | P2M_PROTECTED, __ATOMIC_SEQ_CST);
        ok = true;
    }
    pthread_mutex_unlock(&m->lock);
    return ok;
}

void p2m_grace_begin(struct p2m *m, uint64_t *snap) {
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    snapshot(m, snap);
}

bool p2m_grace_passed(struct p2m *m, const uint64_t *snap) { return harts_passed(m, snap); }

bool p2m_still_protected(struct p2m *m, uint64_t frame, uint64_t mfn) {
    return frame < m->nframes && __atomic_load_n(&m->map[frame], __ATOMIC_ACQUIRE) == (mfn << STATE_BITS | P2M_PROTECTED);
}

static void make_private(struct p2m *m, uint64_t frame, uint64_t mfn) {
    __atomic_store_n(&m->map[frame], mfn << STATE_BITS | P2M_PRIVATE, __ATOMIC_SEQ_CST);
}

enum p2m_merge_result p2m_merge(struct p2m *m, uint64_t frame, uint64_t mfn, bool to_zero, uint64_t target) {
    struct p2m_release *r = malloc(sizeof *r + sizeof r->mfn[0]);
    if (!r) return P2M_CANCELLED;
    enum p2m_merge_result res = P2M_MERGED;
    /* Exclusive access: no device copy into the frame is under way. */
    pthread_rwlock_wrlock(&m->access);
    pthread_mutex_lock(&m->lock);
    if (!p2m_still_protected(m, frame, mfn)) {
        res = P2M_CANCELLED;
    } else {
        const uint8_t *other = frame_host(&m->frames, to_zero ? m->frames.zero_mfn : target);
        if (memcmp(frame_host(&m->frames, mfn), other, PAGE_SIZE) != 0) {
            make_private(m, frame, mfn);
            res = P2M_DIFFERENT;
        } else if (to_zero) {
            __atomic_store_n(&m->map[frame], (uint64_t)P2M_ZERO, __ATOMIC_SEQ_CST);
            __atomic_fetch_sub(&m->backed, 1, __ATOMIC_RELAXED);
            __atomic_fetch_add(&m->merged_zero, 1, __ATOMIC_RELAXED);
        } else {
            m->frames.get(m->frames.pool, target);
            __atomic_store_n(&m->map[frame], target << STATE_BITS | P2M_SHARED, __ATOMIC_SEQ_CST);
            __atomic_fetch_sub(&m->backed, 1, __ATOMIC_RELAXED);
            __atomic_fetch_add(&m->shared, 1, __ATOMIC_RELAXED);
        }
    }
    pthread_mutex_unlock(&m->lock);
    pthread_rwlock_unlock(&m->access);
    if (res != P2M_MERGED) {
        free(r);
        return res;
    }
    /* Same contents, so harts reading the old frame until the flush see
     * nothing wrong; it goes back once they can no longer use it. */
    r->n = 1;
    r->mfn[0] = mfn;
    release_frames(m, r);
    return res;
}

enum p2m_merge_result p2m_share_in_place(struct p2m *m, uint64_t frame, uint64_t mfn) {
    enum p2m_merge_result res = P2M_MERGED;
    pthread_rwlock_wrlock(&m->access);
    pthread_mutex_lock(&m->lock);
    if (!p2m_still_protected(m, frame, mfn)) {
        res = P2M_CANCELLED;
    } else {
        __atomic_store_n(&m->map[frame], mfn << STATE_BITS | P2M_SHARED, __ATOMIC_SEQ_CST);
        __atomic_fetch_sub(&m->backed, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&m->shared, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&m->lock);
    pthread_rwlock_unlock(&m->access);
    return res;
}

/* Lets the sharing scanner give up on a protected frame it will not merge. */
void p2m_unprotect(struct p2m *m, uint64_t frame, uint64_t mfn) {
    pthread_mutex_lock(&m->lock);
    if (p2m_still_protected(m, frame, mfn)) make_private(m, frame, mfn);
    pthread_mutex_unlock(&m->lock);
}

enum p2m_state p2m_state_of(const struct p2m *m, uint64_t frame) {
    return frame < m->nframes ? entry_state(__atomic_load_n(&m->map[frame], __ATOMIC_ACQUIRE)) : P2M_ZERO;
}
