#include "dev/pvpanic.h"

#include <stdint.h>
#include <stdlib.h>

#define SUPPORTED (PVPANIC_PANICKED | PVPANIC_CRASH_LOADED)

struct pvpanic {
    void (*event)(void *ctx, unsigned events);
    void *ctx;
};

/* The register is one byte; wider accesses act on their low byte so a
 * guest using the wrong width still gets its panic reported. */
static uint64_t pvpanic_read(void *dev, uint64_t off, unsigned size) {
    (void)dev, (void)size;
    /* Linux reads the supported events and writes only those. */
    return off == 0 ? SUPPORTED : 0;
}

static void pvpanic_write(void *dev, uint64_t off, uint64_t val, unsigned size) {
    (void)size;
    struct pvpanic *p = dev;
    unsigned ev = (unsigned)val & SUPPORTED;
    if (off == 0 && ev && p->event) p->event(p->ctx, ev);
}

const struct mmio_ops pvpanic_mmio_ops = {pvpanic_read, pvpanic_write};

struct pvpanic *pvpanic_create(void (*event)(void *ctx, unsigned events), void *ctx) {
    struct pvpanic *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->event = event;
    p->ctx = ctx;
    return p;
}

void pvpanic_destroy(struct pvpanic *p) { free(p); }
