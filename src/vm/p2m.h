/* A VM's guest-physical memory: the map from guest frames to the host
 * memory backing them, plus the per-frame decoded-code cache. RAM is one
 * reservation of host address space that the host kernel backs on first
 * touch, so a guest frame costs nothing until written (demand-zero). All
 * monitor-side access to guest memory goes through p2m_read/p2m_write,
 * which check bounds and keep the code cache coherent. */
#ifndef RVISOR_P2M_H
#define RVISOR_P2M_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct code_page;

struct p2m {
    uint64_t base;               /* guest-physical address of the first RAM byte */
    uint64_t size;               /* bytes, a multiple of 4 KiB */
    uint8_t *host;               /* backing of the whole RAM range */
    struct code_page **code;     /* per guest frame: decoded code, or NULL */
};

/* Returns false (with errno) if the host refuses the reservation. */
bool p2m_init(struct p2m *m, uint64_t base, uint64_t size);
void p2m_destroy(struct p2m *m);

static inline bool p2m_contains(const struct p2m *m, uint64_t gpa, uint64_t len) {
    return gpa >= m->base && len <= m->size && gpa - m->base <= m->size - len;
}

/* Host address of the frame holding gpa, or NULL if gpa is not RAM. */
uint8_t *p2m_frame(struct p2m *m, uint64_t gpa, struct code_page ***code);

/* Copy to or from guest RAM; false if any byte lies outside RAM. */
bool p2m_write(struct p2m *m, uint64_t gpa, const void *buf, size_t len);
bool p2m_read(struct p2m *m, uint64_t gpa, void *buf, size_t len);
bool p2m_fill(struct p2m *m, uint64_t gpa, uint8_t byte, size_t len);

#endif
