#include "vm/p2m.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hart/code_cache.h"
#include "mmu/tlb.h"

#define STATE_BITS 8
#define STATE_MASK ((1ull << STATE_BITS) - 1)

static enum p2m_state entry_state(uint64_t e) { return (enum p2m_state)(e & STATE_MASK); }
static uint64_t entry_mfn(uint64_t e) { return e >> STATE_BITS; }

bool p2m_init(struct p2m *m, uint64_t base, uint64_t size, const struct frame_source *frames) {
    memset(m, 0, sizeof *m);
    if (size == 0 || (size & ~PAGE_MASK) || (base & ~PAGE_MASK)) {
        errno = EINVAL;
        return false;
    }
    m->nframes = size >> PAGE_SHIFT;
    m->map = calloc(m->nframes, sizeof *m->map); /* all P2M_ZERO */
    m->code = calloc(m->nframes, sizeof *m->code);
    if (!m->map || !m->code) {
        free(m->map);
        free(m->code);
        errno = ENOMEM;
        return false;
    }
    m->base = base;
    m->size = size;
    m->frames = *frames;
    pthread_mutex_init(&m->lock, NULL);
    return true;
}

void p2m_destroy(struct p2m *m) {
    for (uint64_t f = 0; f < m->nframes; f++) {
        if (entry_state(m->map[f]) == P2M_PRIVATE) m->frames.free(m->frames.pool, entry_mfn(m->map[f]));
        code_page_free(m->code[f]);
    }
    free(m->map);
    free(m->code);
    pthread_mutex_destroy(&m->lock);
    memset(m, 0, sizeof *m);
}

/* Gives a never-written guest frame a machine frame of its own (or returns
 * the one another hart gave it meanwhile). */
static uint8_t *back_frame(struct p2m *m, uint64_t frame) {
    pthread_mutex_lock(&m->lock);
    uint64_t e = __atomic_load_n(&m->map[frame], __ATOMIC_ACQUIRE);
    uint64_t mfn;
    if (entry_state(e) == P2M_PRIVATE) {
        mfn = entry_mfn(e);
    } else if (!m->frames.alloc(m->frames.pool, &mfn)) {
        m->exhausted = true;
        pthread_mutex_unlock(&m->lock);
        return NULL;
    } else {
        __atomic_store_n(&m->map[frame], mfn << STATE_BITS | P2M_PRIVATE, __ATOMIC_RELEASE);
        __atomic_fetch_add(&m->backed, 1, __ATOMIC_RELAXED);
        /* Translations that still read the zero frame for this guest frame must go. */
        if (m->shootdown)
            m->shootdown(m->shootdown_ctx, m->base + (frame << PAGE_SHIFT), frame_host(&m->frames, m->frames.zero_mfn));
    }
    pthread_mutex_unlock(&m->lock);
    return frame_host(&m->frames, mfn);
}

uint8_t *p2m_frame(struct p2m *m, uint64_t gpa, bool write, struct code_page ***code) {
    if (!p2m_contains(m, gpa, 1)) return NULL;
    uint64_t frame = (gpa - m->base) >> PAGE_SHIFT;
    if (code) *code = &m->code[frame];
    uint64_t e = __atomic_load_n(&m->map[frame], __ATOMIC_ACQUIRE);
    switch (entry_state(e)) {
    case P2M_PRIVATE: return frame_host(&m->frames, entry_mfn(e));
    case P2M_ZERO: return write ? back_frame(m, frame) : frame_host(&m->frames, m->frames.zero_mfn);
    }
    return NULL;
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
    if (!p2m_contains(m, gpa, len)) return false;
    FOR_EACH_FRAME_PIECE(gpa, len, {
        uint8_t *host = p2m_frame(m, at_, true, NULL);
        if (!host) return false;
        if (m->code[frame]) code_page_invalidate(m->code[frame], off, (unsigned)chunk);
        memcpy(host + off, (const uint8_t *)buf + pos, chunk);
    });
    return true;
}

bool p2m_fill(struct p2m *m, uint64_t gpa, uint8_t byte, size_t len) {
    if (!p2m_contains(m, gpa, len)) return false;
    FOR_EACH_FRAME_PIECE(gpa, len, {
        (void)pos;
        /* Zeros into a never-written frame change nothing: keep it unbacked. */
        if (byte != 0 || entry_state(m->map[frame]) != P2M_ZERO) {
            uint8_t *host = p2m_frame(m, at_, true, NULL);
            if (!host) return false;
            if (m->code[frame]) code_page_invalidate(m->code[frame], off, (unsigned)chunk);
            memset(host + off, byte, chunk);
        }
    });
    return true;
}

bool p2m_read(struct p2m *m, uint64_t gpa, void *buf, size_t len) {
    if (!p2m_contains(m, gpa, len)) return false;
    FOR_EACH_FRAME_PIECE(gpa, len, {
        (void)frame;
        memcpy((uint8_t *)buf + pos, p2m_frame(m, at_, false, NULL) + off, chunk);
    });
    return true;
}
