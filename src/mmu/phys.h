/* What the MMU needs from whoever owns a guest's physical address space (the
 * VM's p2m and device bus). The MMU sits below the VM layer, so it reaches
 * guest-physical memory only through these callbacks; unit tests plug in a
 * plain buffer. */
#ifndef RVISOR_PHYS_H
#define RVISOR_PHYS_H

#include <stdbool.h>
#include <stdint.h>

struct code_page;
struct code_map;

struct phys_page {
    uint8_t *host;            /* host address of the 4 KiB frame, NULL if not RAM */
    struct code_page **code;  /* decoded-instruction cache slot of that frame */
    struct code_map *code_map;/* the map that slot is in (pages are made through it) */
    /* The shared zero frame behind every never-written guest frame (only
     * ever given for reads). The MMU never caches a translation to it, so
     * that backing a guest frame on its first write needs no shootdown. */
    bool zero;
    /* Set with a false return when gpa is RAM but has no machine frame just
     * now (memory is short and being reclaimed): the access must wait and
     * be tried again, not fault. */
    bool retry;
};

struct phys_ops {
    /* Looks up the RAM frame holding gpa. `write` asks for a frame that may
     * be written (the owner breaks sharing or backs a zero page first).
     * Returns false if gpa is not RAM. */
    bool (*page)(void *owner, uint64_t gpa, bool write, struct phys_page *out);
    /* Device access; returns false if no device answers at gpa. */
    bool (*mmio_read)(void *owner, uint64_t gpa, unsigned size, uint64_t *val);
    bool (*mmio_write)(void *owner, uint64_t gpa, unsigned size, uint64_t val);
    /* The frame at gpa now holds decoded code: every hart of the owner must
     * drop write TLB entries that could reach it. */
    void (*code_added)(void *owner, uint64_t gpa);
};

#endif
