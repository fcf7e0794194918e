#include "dev/syscon.h"

#include <stdint.h>
#include <stdlib.h>

#define FINISHER_FAIL 0x3333
#define FINISHER_PASS 0x5555
#define FINISHER_RESET 0x7777

struct syscon {
    void (*event)(void *ctx, enum syscon_event ev, unsigned code);
    void *ctx;
};

static uint64_t syscon_read(void *dev, uint64_t off, unsigned size) {
    (void)dev, (void)off, (void)size;
    return 0;
}

static void syscon_write(void *dev, uint64_t off, uint64_t val, unsigned size) {
    struct syscon *s = dev;
    /* OpenSBI writes the finisher with a 16-bit store, Linux with a 32-bit one. */
    if (off != 0 || (size != 2 && size != 4) || !s->event) return;
    uint32_t v = (uint32_t)val;
    switch (v & 0xffff) {
    case FINISHER_PASS:
        s->event(s->ctx, SYSCON_POWEROFF, 0);
        break;
    case FINISHER_RESET:
        s->event(s->ctx, SYSCON_RESET, 0);
        break;
    case FINISHER_FAIL:
        s->event(s->ctx, SYSCON_FAIL, v >> 16);
        break;
    }
}

const struct mmio_ops syscon_mmio_ops = {syscon_read, syscon_write};

struct syscon *syscon_create(void (*event)(void *ctx, enum syscon_event ev, unsigned code), void *ctx) {
    struct syscon *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->event = event;
    s->ctx = ctx;
    return s;
}

void syscon_destroy(struct syscon *s) { free(s); }
