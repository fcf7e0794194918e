#include "hart/code_cache.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Code pages are carved from arenas of this many, each page aligned to a
 * cache line; an arena's memory is anonymous and zero until touched. */
#define ARENA_PAGES 64
#define PAGE_BYTES ((sizeof(struct code_page) + 63) & ~(size_t)63)

struct code_arena {
    struct code_arena *next;
    unsigned used;
    uint8_t *mem; /* ARENA_PAGES * PAGE_BYTES */
};

/* A page from the arenas (m->lock held), its slots zero. */
static struct code_page *arena_take(struct code_map *m) {
    if (m->spare) {
        struct code_page *cp = m->spare;
        m->spare = NULL;
        return cp;
    }
    struct code_arena *a = m->arenas;
    if (!a || a->used == ARENA_PAGES) {
        a = malloc(sizeof *a);
        if (!a) return NULL;
        a->mem = mmap(NULL, ARENA_PAGES * PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (a->mem == MAP_FAILED) {
            free(a);
            return NULL;
        }
        a->used = 0;
        a->next = m->arenas;
        m->arenas = a;
    }
    return (struct code_page *)(void *)(a->mem + (size_t)a->used++ * PAGE_BYTES);
}

static struct code_page *code_page_new(struct code_map *m, uint64_t gpa) {
    pthread_mutex_lock(&m->lock);
    struct code_page *cp = arena_take(m);
    if (cp && ++m->npages > m->max_pages && m->max_pages) __atomic_store_n(&m->over_budget, true, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&m->lock);
    if (!cp) return NULL;
    /* A slotless page's slots are never touched: its memory stays unbacked. */
    cp->slotless = m->slotless;
    if (!cp->slotless)
        for (unsigned i = 0; i < CODE_SLOTS; i++) cp->slot[i] = (struct insn){.fn = op_decode};
    memset(cp->decoded, 0, sizeof cp->decoded); /* a spare page may have been used */
    cp->end = (struct insn){.fn = op_page_end};
    cp->gpa = gpa;
    cp->live = 0;
    cp->writable = false;
    cp->gen = 0;
    cp->writes = 0;
    return cp;
}

struct code_page *code_page_install(struct code_map *m, struct code_page **slot, uint64_t gpa, bool *created) {
    *created = false;
    struct code_page *cp = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (cp) return cp;
    cp = code_page_new(m, gpa);
    if (!cp) return NULL;
    struct code_page *none = NULL;
    if (__atomic_compare_exchange_n(slot, &none, cp, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        *created = true;
        return cp;
    }
    /* Another hart of this VM installed one first; this one was never
     * published, so its slots are as made. */
    pthread_mutex_lock(&m->lock);
    if (!m->spare) m->spare = cp;
    pthread_mutex_unlock(&m->lock);
    return none;
}

bool code_map_init(struct code_map *m, uint64_t nframes) {
    memset(m, 0, sizeof *m);
    m->page = calloc(nframes ? nframes : 1, sizeof *m->page);
    if (!m->page) return false;
    m->nframes = nframes;
    pthread_mutex_init(&m->lock, NULL);
    pthread_rwlock_init(&m->users, NULL);
    return true;
}

void code_map_set_budget(struct code_map *m, uint64_t max_pages) { m->max_pages = max_pages; }

static void free_arenas(struct code_arena *a) {
    for (struct code_arena *next; a; a = next) {
        next = a->next;
        munmap(a->mem, ARENA_PAGES * PAGE_BYTES);
        free(a);
    }
}

void code_map_reset(struct code_map *m) {
    pthread_mutex_lock(&m->lock);
    for (uint64_t f = 0; f < m->nframes; f++) __atomic_store_n(&m->page[f], NULL, __ATOMIC_RELEASE);
    struct code_arena *old = m->arenas;
    m->arenas = NULL;
    m->spare = NULL;
    m->npages = 0;
    __atomic_store_n(&m->over_budget, false, __ATOMIC_RELAXED);
    __atomic_add_fetch(&m->epoch, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&m->resets, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&m->lock);
    /* A device copy that found a page before the slots were cleared is done with it once this is taken. */
    pthread_rwlock_wrlock(&m->users);
    pthread_rwlock_unlock(&m->users);
    free_arenas(old);
}

void code_map_make_slotless(struct code_map *m) { m->slotless = true; }

void code_map_destroy(struct code_map *m) {
    if (!m->page) return;
    free_arenas(m->arenas);
    pthread_mutex_destroy(&m->lock);
    pthread_rwlock_destroy(&m->users);
    free(m->page);
    memset(m, 0, sizeof *m);
}

/* Bytes [off, off + len) of frame's decoded code are stale: a write
 * (counted on the page) or the frame's contents replaced. Under `users`,
 * so that a reset cannot free the page meanwhile. */
static void stale(struct code_map *m, uint64_t frame, unsigned off, unsigned len, bool write) {
    if (!__atomic_load_n(&m->page[frame], __ATOMIC_ACQUIRE)) return; /* the common case: no code there */
    pthread_rwlock_rdlock(&m->users);
    struct code_page *cp = __atomic_load_n(&m->page[frame], __ATOMIC_ACQUIRE);
    if (cp && write) code_page_written(cp, off, len);
    else if (cp) code_page_invalidate(cp, off, len);
    pthread_rwlock_unlock(&m->users);
}

void code_map_written(struct code_map *m, uint64_t frame, unsigned off, unsigned len) {
    stale(m, frame, off, len, true);
}

void code_map_forget(struct code_map *m, uint64_t frame) { stale(m, frame, 0, CODE_SLOTS * 2, false); }

unsigned code_page_written(struct code_page *cp, unsigned off, unsigned len) {
    __atomic_add_fetch(&cp->writes, 1, __ATOMIC_SEQ_CST);
    return code_page_invalidate(cp, off, len);
}

unsigned code_page_invalidate(struct code_page *cp, unsigned off, unsigned len) {
    /* A 4-byte instruction starting one parcel earlier also covers off. */
    unsigned first = off >= 2 ? (off - 2) / 2 : 0;
    unsigned last = (off + len - 1) / 2;
    if (last >= CODE_SLOTS) last = CODE_SLOTS - 1;
    /* Only fn is reset: the handler of a store that overwrites its own
     * instruction still reads its other fields after the store. */
    unsigned reset = 0;
    for (unsigned s = first; s <= last; s++) {
        if (cp->slotless) {
            uint64_t bit = 1ull << (s % 64), *w = &cp->decoded[s / 64];
            if ((__atomic_load_n(w, __ATOMIC_ACQUIRE) & bit) && (__atomic_fetch_and(w, ~bit, __ATOMIC_ACQ_REL) & bit))
                reset++;
            continue;
        }
        insn_fn *fn = &cp->slot[s].fn;
        if (__atomic_load_n(fn, __ATOMIC_ACQUIRE) != op_decode &&
            __atomic_exchange_n(fn, op_decode, __ATOMIC_ACQ_REL) != op_decode)
            reset++;
    }
    if (!reset) return __atomic_load_n(&cp->live, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&cp->gen, 1, __ATOMIC_SEQ_CST);
    return __atomic_sub_fetch(&cp->live, reset, __ATOMIC_SEQ_CST);
}
