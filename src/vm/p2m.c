#include "vm/p2m.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "hart/code_cache.h"
#include "mmu/tlb.h"

bool p2m_init(struct p2m *m, uint64_t base, uint64_t size) {
    memset(m, 0, sizeof *m);
    if (size == 0 || (size & ~PAGE_MASK) || (base & ~PAGE_MASK)) {
        errno = EINVAL;
        return false;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return false;
    m->code = calloc(size >> PAGE_SHIFT, sizeof *m->code);
    if (!m->code) {
        munmap(p, size);
        errno = ENOMEM;
        return false;
    }
    m->base = base;
    m->size = size;
    m->host = p;
    return true;
}

void p2m_destroy(struct p2m *m) {
    if (m->code) {
        for (uint64_t i = 0; i < m->size >> PAGE_SHIFT; i++) code_page_free(m->code[i]);
        free(m->code);
    }
    if (m->host) munmap(m->host, m->size);
    memset(m, 0, sizeof *m);
}

uint8_t *p2m_frame(struct p2m *m, uint64_t gpa, struct code_page ***code) {
    if (!p2m_contains(m, gpa, 1)) return NULL;
    uint64_t frame = (gpa - m->base) >> PAGE_SHIFT;
    if (code) *code = &m->code[frame];
    return m->host + (frame << PAGE_SHIFT);
}

/* Drops decoded code that a monitor-side write overwrites. */
static void invalidate_code(struct p2m *m, uint64_t gpa, size_t len) {
    while (len) {
        uint64_t frame = (gpa - m->base) >> PAGE_SHIFT;
        unsigned off = (unsigned)(gpa & ~PAGE_MASK);
        size_t chunk = PAGE_SIZE - off < len ? PAGE_SIZE - off : len;
        if (m->code[frame]) code_page_invalidate(m->code[frame], off, (unsigned)chunk);
        gpa += chunk;
        len -= chunk;
    }
}

bool p2m_write(struct p2m *m, uint64_t gpa, const void *buf, size_t len) {
    if (!p2m_contains(m, gpa, len)) return false;
    invalidate_code(m, gpa, len);
    memcpy(m->host + (gpa - m->base), buf, len);
    return true;
}

bool p2m_fill(struct p2m *m, uint64_t gpa, uint8_t byte, size_t len) {
    if (!p2m_contains(m, gpa, len)) return false;
    invalidate_code(m, gpa, len);
    memset(m->host + (gpa - m->base), byte, len);
    return true;
}

bool p2m_read(struct p2m *m, uint64_t gpa, void *buf, size_t len) {
    if (!p2m_contains(m, gpa, len)) return false;
    memcpy(buf, m->host + (gpa - m->base), len);
    return true;
}
