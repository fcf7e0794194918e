/* Active-memory sampling, as ESX estimates a VM's working set without
 * help from the guest (Waldspurger, OSDI 2002, section 5.3): mark a few
 * random frames, invalidate their cached translations, and count how many
 * the guest touches before the period ends. The fraction touched estimates
 * the fraction of all its frames in active use, which the idle memory tax
 * needs.
 *
 * rvisor's harts reach guest memory through their software TLBs, filled
 * from p2m_frame: after a flush, the first access to a frame always comes
 * here. Translated code that stays within chained blocks of one page does
 * not refill the fetch TLB, so a page only ever executed that way may be
 * counted idle; its data accesses still count. */
#include <stdlib.h>

#include "vm/p2m_internal.h"

static uint64_t mix(uint64_t *x) {
    /* splitmix64: victims of sampling need to be spread, not secret. */
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static bool backed(enum p2m_state s) { return s == P2M_PRIVATE || s == P2M_PROTECTED || s == P2M_SHARED; }

unsigned p2m_sample_begin(struct p2m *m, unsigned n, uint64_t seed) {
    struct p2m_sample *s = &m->sample;
    __atomic_store_n(&s->on, false, __ATOMIC_SEQ_CST);
    size_t words = (m->nframes + 63) / 64;
    if (!s->marks && !(s->marks = calloc(words, sizeof *s->marks))) return 0;
    for (size_t i = 0; i < words; i++) __atomic_store_n(&s->marks[i], 0, __ATOMIC_RELAXED);
    s->sampled = 0;
    __atomic_store_n(&s->touched, 0, __ATOMIC_RELAXED);
    /* Uniform over its backed frames however sparse they are (reservoir
     * sampling, one pass over the map: a few ms for 16 GiB each period). */
    uint64_t pick[256], seen = 0;
    if (n > 256) n = 256;
    for (uint64_t f = 0; f < m->nframes; f++) {
        if (!backed(entry_state(__atomic_load_n(&m->map[f], __ATOMIC_RELAXED)))) continue;
        if (seen < n) {
            pick[seen++] = f;
            continue;
        }
        uint64_t j = mix(&seed) % ++seen;
        if (j < n) pick[j] = f;
    }
    s->sampled = seen < n ? (unsigned)seen : n;
    for (unsigned i = 0; i < s->sampled; i++)
        __atomic_fetch_or(&s->marks[pick[i] / 64], 1ull << (pick[i] & 63), __ATOMIC_RELAXED);
    if (!s->sampled) return 0;
    __atomic_store_n(&s->on, true, __ATOMIC_SEQ_CST);
    /* Translations cached before the marks would hide accesses. */
    if (m->flush) m->flush(m->flush_ctx);
    return s->sampled;
}

void p2m_sample_touch(struct p2m *m, uint64_t frame) {
    struct p2m_sample *s = &m->sample;
    uint64_t bit = 1ull << (frame & 63);
    uint64_t *w = &s->marks[frame / 64];
    if (!(__atomic_load_n(w, __ATOMIC_RELAXED) & bit)) return;
    if (__atomic_fetch_and(w, ~bit, __ATOMIC_RELAXED) & bit) __atomic_fetch_add(&s->touched, 1, __ATOMIC_RELAXED);
}

unsigned p2m_sample_end(struct p2m *m, unsigned *touched) {
    struct p2m_sample *s = &m->sample;
    __atomic_store_n(&s->on, false, __ATOMIC_SEQ_CST);
    *touched = __atomic_load_n(&s->touched, __ATOMIC_RELAXED);
    unsigned n = s->sampled;
    s->sampled = 0;
    return n;
}
