#include "monitor/frame_batch.h"

#include <stdlib.h>
#include <string.h>

#include "vm/p2m.h"

static struct batch_vm *involve(struct frame_batch *b, uint32_t id, struct p2m *mem) {
    for (size_t i = 0; i < b->nvm; i++)
        if (b->vm[i].id == id) return &b->vm[i];
    if (b->nvm == b->capvm) {
        size_t cap = b->capvm ? b->capvm * 2 : 8;
        struct batch_vm *v = realloc(b->vm, cap * sizeof *v);
        if (!v) return NULL;
        b->vm = v;
        b->capvm = cap;
    }
    struct batch_vm *v = &b->vm[b->nvm++];
    memset(v, 0, sizeof *v);
    v->id = id;
    v->mem = mem;
    return v;
}

bool frame_batch_add(struct frame_batch *b, uint32_t vm_id, struct p2m *mem, uint64_t gfn, int kind, void *data) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        struct batch_frame *f = realloc(b->frame, cap * sizeof *f);
        if (!f) return false;
        b->frame = f;
        b->cap = cap;
    }
    if (!involve(b, vm_id, mem)) return false;
    uint64_t mfn;
    if (!p2m_protect(mem, gfn, &mfn)) return false;
    b->frame[b->n++] = (struct batch_frame){.mem = mem, .vm_id = vm_id, .gfn = gfn, .mfn = mfn, .kind = kind,
                                            .data = data};
    return true;
}

/* Every hart of the involved VMs drops its translations (write mappings
 * above all) and a grace period starts. */
static void flush_and_snapshot(struct frame_batch *b) {
    for (size_t i = 0; i < b->nvm; i++) {
        struct p2m *mem = b->vm[i].mem;
        if (mem->flush) mem->flush(mem->flush_ctx);
        p2m_grace_begin(mem, b->vm[i].snap);
    }
}

void frame_batch_start(struct frame_batch *b) {
    if (!b->n) return;
    flush_and_snapshot(b);
    b->phase = 1;
}

bool frame_batch_ready(struct frame_batch *b) {
    if (b->phase == 3) return true;
    if (b->phase == 0) return false;
    for (size_t i = 0; i < b->nvm; i++)
        if (!p2m_grace_passed(b->vm[i].mem, b->vm[i].snap)) return false;
    if (b->phase == 1) {
        /* Entries filled from lookups made before the protection go now. */
        flush_and_snapshot(b);
        b->phase = 2;
        return false;
    }
    b->phase = 3;
    return true;
}

void frame_batch_finish(struct frame_batch *b) {
    for (size_t i = 0; i < b->n; i++) p2m_unprotect(b->frame[i].mem, b->frame[i].gfn, b->frame[i].mfn);
    b->n = 0;
    b->nvm = 0;
    b->phase = 0;
}

bool frame_batch_involves(const struct frame_batch *b, uint32_t id) {
    for (size_t i = 0; i < b->nvm; i++)
        if (b->vm[i].id == id) return true;
    return false;
}

void frame_batch_free(struct frame_batch *b) {
    free(b->frame);
    free(b->vm);
    memset(b, 0, sizeof *b);
}
