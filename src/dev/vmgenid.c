#include "dev/vmgenid.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "io/vmstate.h"

/* What a snapshot holds. */
struct vmgenid_regs {
    uint8_t id[VMGENID_SIZE];
    bool irq_pending;
};

struct vmgenid {
    pthread_mutex_t lock;
    struct vmgenid_regs regs;
    struct irq_line irq;
};

static bool random_id(uint8_t id[VMGENID_SIZE]) {
    size_t got = 0;
    while (got < VMGENID_SIZE) {
        ssize_t k = getrandom(id + got, VMGENID_SIZE - got, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        got += (size_t)k;
    }
    return true;
}

struct vmgenid *vmgenid_create(struct irq_line irq) {
    struct vmgenid *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    if (!random_id(g->regs.id)) {
        free(g);
        return NULL;
    }
    pthread_mutex_init(&g->lock, NULL);
    g->irq = irq;
    return g;
}

void vmgenid_destroy(struct vmgenid *g) {
    if (!g) return;
    pthread_mutex_destroy(&g->lock);
    free(g);
}

bool vmgenid_new_generation(struct vmgenid *g) {
    uint8_t id[VMGENID_SIZE];
    if (!random_id(id)) return false;
    pthread_mutex_lock(&g->lock);
    memcpy(g->regs.id, id, sizeof id);
    g->regs.irq_pending = true;
    irq_line_set(&g->irq, true);
    pthread_mutex_unlock(&g->lock);
    return true;
}

void vmgenid_get(struct vmgenid *g, uint8_t id[VMGENID_SIZE]) {
    pthread_mutex_lock(&g->lock);
    memcpy(id, g->regs.id, VMGENID_SIZE);
    pthread_mutex_unlock(&g->lock);
}

static uint64_t vmgenid_read(void *dev, uint64_t off, unsigned size) {
    struct vmgenid *g = dev;
    uint64_t v = 0;
    pthread_mutex_lock(&g->lock);
    for (unsigned i = 0; i < size && i < 8; i++)
        if (off + i < VMGENID_SIZE) v |= (uint64_t)g->regs.id[off + i] << (8 * i);
    if (off < VMGENID_SIZE && g->regs.irq_pending) {
        g->regs.irq_pending = false;
        irq_line_set(&g->irq, false);
    }
    pthread_mutex_unlock(&g->lock);
    return v;
}

static void vmgenid_write(void *dev, uint64_t off, uint64_t val, unsigned size) {
    (void)dev, (void)off, (void)val, (void)size; /* read-only */
}

const struct mmio_ops vmgenid_mmio_ops = {vmgenid_read, vmgenid_write};

static const struct vmstate_field vmgenid_fields[] = {
    VMSTATE_ARRAY(struct vmgenid_regs, id),
    VMSTATE_BOOL(struct vmgenid_regs, irq_pending),
};
static const struct vmstate vmgenid_vmstate = VMSTATE_TABLE("vmgenid", 1, vmgenid_fields);

bool vmgenid_save(struct vmgenid *g, struct snap_writer *w) {
    pthread_mutex_lock(&g->lock);
    struct vmgenid_regs r = g->regs;
    pthread_mutex_unlock(&g->lock);
    return vmstate_save(w, &vmgenid_vmstate, &r);
}

bool vmgenid_load(struct vmgenid *g, const struct snap_section *s, char *err, size_t errlen) {
    struct vmgenid_regs r = {0};
    if (!vmstate_load(s, &vmgenid_vmstate, &r, err, errlen)) return false;
    pthread_mutex_lock(&g->lock);
    g->regs = r;
    irq_line_set(&g->irq, r.irq_pending);
    pthread_mutex_unlock(&g->lock);
    return true;
}
