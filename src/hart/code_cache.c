#include "hart/code_cache.h"

#include <stdlib.h>

struct code_page *code_page_new(uint64_t gpa) {
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

void code_page_free(struct code_page *cp) { free(cp); }

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
