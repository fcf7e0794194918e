#include "hart/code_cache.h"

#include <stdlib.h>

static struct code_page *code_page_new(uint64_t gpa) {
    struct code_page *cp = malloc(sizeof *cp);
    if (!cp) return NULL;
    for (unsigned i = 0; i < CODE_SLOTS; i++) cp->slot[i] = (struct insn){.fn = op_decode};
    cp->end = (struct insn){.fn = op_page_end};
    cp->gpa = gpa;
    cp->live = 0;
    cp->writable = false;
    cp->gen = 0;
    cp->writes = 0;
    return cp;
}

struct code_page *code_page_install(struct code_page **slot, uint64_t gpa, bool *created) {
    *created = false;
    struct code_page *cp = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (cp) return cp;
    cp = code_page_new(gpa);
    if (!cp) return NULL;
    struct code_page *none = NULL;
    if (__atomic_compare_exchange_n(slot, &none, cp, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        *created = true;
        return cp;
    }
    free(cp); /* another hart of this VM installed one first */
    return none;
}

bool code_map_init(struct code_map *m, uint64_t nframes) {
    m->page = calloc(nframes ? nframes : 1, sizeof *m->page);
    m->nframes = m->page ? nframes : 0;
    return m->page != NULL;
}

void code_map_destroy(struct code_map *m) {
    for (uint64_t f = 0; f < m->nframes; f++) free(m->page[f]);
    free(m->page);
    m->page = NULL;
    m->nframes = 0;
}

void code_map_written(struct code_map *m, uint64_t frame, unsigned off, unsigned len) {
    struct code_page *cp = __atomic_load_n(&m->page[frame], __ATOMIC_ACQUIRE);
    if (cp) code_page_written(cp, off, len);
}

void code_map_forget(struct code_map *m, uint64_t frame) {
    struct code_page *cp = __atomic_load_n(&m->page[frame], __ATOMIC_ACQUIRE);
    if (cp) code_page_invalidate(cp, 0, CODE_SLOTS * 2);
}

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
        insn_fn *fn = &cp->slot[s].fn;
        if (__atomic_load_n(fn, __ATOMIC_ACQUIRE) != op_decode &&
            __atomic_exchange_n(fn, op_decode, __ATOMIC_ACQ_REL) != op_decode)
            reset++;
    }
    if (!reset) return __atomic_load_n(&cp->live, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&cp->gen, 1, __ATOMIC_SEQ_CST);
    return __atomic_sub_fetch(&cp->live, reset, __ATOMIC_SEQ_CST);
}
