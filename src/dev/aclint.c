#include "dev/aclint.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "io/vmstate.h"

#define MSIP_BASE 0x0000
#define MTIMECMP_BASE 0x4000
#define MTIME_OFF 0xbff8

/* A hart's saved state is mtimecmp and msip (aclint_hart_vmstate); mtip
 * follows from mtimecmp and the time. */
struct aclint_hart {
    struct hart_irq irq;
    uint64_t mtimecmp;
    bool msip;
    bool mtip; /* last level given to the hart, to skip redundant calls */
};

struct aclint {
    pthread_mutex_t lock;
    unsigned nharts;
    struct aclint_host host;
    struct aclint_hart hart[];
};

static uint64_t now(const struct aclint *a) { return a->host.now ? a->host.now(a->host.ctx) : 0; }

static void update_hart(struct aclint_hart *ah, uint64_t t) {
    bool mtip = t >= ah->mtimecmp;
    if (mtip == ah->mtip) return;
    ah->mtip = mtip;
    hart_irq_set(&ah->irq, HART_IRQ_MTIP, mtip);
}

/* 64-bit registers: 4-byte accesses see the half selected by off bit 2. */
static uint64_t half_read(uint64_t reg, uint64_t off, unsigned size) {
    if (size == 8) return reg;
    return (off & 4) ? reg >> 32 : (uint32_t)reg;
}

static uint64_t half_write(uint64_t reg, uint64_t off, uint64_t val, unsigned size) {
    if (size == 8) return val;
    if (off & 4) return (reg & 0xffffffffull) | (uint64_t)(uint32_t)val << 32;
    return (reg & ~0xffffffffull) | (uint32_t)val;
}

static uint64_t msip_read(const struct aclint *a, uint64_t off) {
    uint64_t i = (off - MSIP_BASE) / 4;
    return i < a->nharts ? a->hart[i].msip : 0;
}

static void msip_write(struct aclint *a, uint64_t off, uint32_t v) {
    uint64_t i = (off - MSIP_BASE) / 4;
    if (i >= a->nharts) return;
    struct aclint_hart *ah = &a->hart[i];
    ah->msip = v & 1;
    hart_irq_set(&ah->irq, HART_IRQ_MSIP, ah->msip);
    if (ah->msip && a->host.kick) a->host.kick(a->host.ctx);
}

static bool access_ok(uint64_t off, unsigned size) {
    return (size == 4 || size == 8) && off % size == 0 && off < ACLINT_SIZE;
}

static uint64_t aclint_read(void *dev, uint64_t off, unsigned size) {
    struct aclint *a = dev;
    if (!access_ok(off, size)) return 0;
    uint64_t v = 0;
    pthread_mutex_lock(&a->lock);
    if (off < MTIMECMP_BASE) {
        v = msip_read(a, off);
        if (size == 8) v |= msip_read(a, off + 4) << 32;
    } else if (off < MTIME_OFF) {
        uint64_t i = (off - MTIMECMP_BASE) / 8;
        if (i < a->nharts) v = half_read(a->hart[i].mtimecmp, off, size);
    } else if (off < MTIME_OFF + 8) {
        v = half_read(now(a), off, size);
    }
    pthread_mutex_unlock(&a->lock);
    return v;
}

static void aclint_write(void *dev, uint64_t off, uint64_t val, unsigned size) {
    struct aclint *a = dev;
    if (!access_ok(off, size)) return;
    pthread_mutex_lock(&a->lock);
    if (off < MTIMECMP_BASE) {
        msip_write(a, off, (uint32_t)val);
        if (size == 8) msip_write(a, off + 4, (uint32_t)(val >> 32));
    } else if (off < MTIME_OFF) {
        uint64_t i = (off - MTIMECMP_BASE) / 8;
        if (i < a->nharts) {
            struct aclint_hart *ah = &a->hart[i];
            ah->mtimecmp = half_write(ah->mtimecmp, off, val, size);
            /* A guest acknowledging its timer moves mtimecmp ahead and
             * expects MTIP to drop at once, not at the next VM loop tick. */
            update_hart(ah, now(a));
        }
    }
    pthread_mutex_unlock(&a->lock);
}

const struct mmio_ops aclint_mmio_ops = {aclint_read, aclint_write};

void aclint_update(struct aclint *a, uint64_t t) {
    pthread_mutex_lock(&a->lock);
    for (unsigned i = 0; i < a->nharts; i++) update_hart(&a->hart[i], t);
    pthread_mutex_unlock(&a->lock);
}

uint64_t aclint_next_deadline(const struct aclint *a) {
    /* The lock is part of the object, not of its observable value. */
    pthread_mutex_t *lock = (pthread_mutex_t *)&a->lock;
    uint64_t next = UINT64_MAX;
    pthread_mutex_lock(lock);
    for (unsigned i = 0; i < a->nharts; i++)
        if (!a->hart[i].mtip && a->hart[i].mtimecmp < next) next = a->hart[i].mtimecmp;
    pthread_mutex_unlock(lock);
    return next;
}

struct aclint *aclint_create(unsigned nharts, const struct hart_irq *harts, struct aclint_host host) {
    if (nharts == 0 || nharts > ACLINT_MAX_HARTS || !harts) return NULL;
    for (unsigned i = 0; i < nharts; i++)
        if (!harts[i].set_pending) return NULL;
    struct aclint *a = calloc(1, sizeof *a + nharts * sizeof a->hart[0]);
    if (!a) return NULL;
    if (pthread_mutex_init(&a->lock, NULL)) {
        free(a);
        return NULL;
    }
    a->nharts = nharts;
    a->host = host;
    for (unsigned i = 0; i < nharts; i++) {
        a->hart[i].irq = harts[i];
        /* Reset value: no timer interrupt until the guest asks for one. */
        a->hart[i].mtimecmp = UINT64_MAX;
    }
    return a;
}

void aclint_destroy(struct aclint *a) {
    if (!a) return;
    pthread_mutex_destroy(&a->lock);
    free(a);
}

/* ---- snapshots: section "aclint", version 1: u32 nharts, then
 * aclint_hart_vmstate for each hart. mtime is the VM's clock, not ours. ---- */

static const struct vmstate_field aclint_hart_fields[] = {
    VMSTATE_U(struct aclint_hart, mtimecmp),
    VMSTATE_BOOL(struct aclint_hart, msip),
};
static const struct vmstate aclint_hart_vmstate = VMSTATE_TABLE("aclint", 1, aclint_hart_fields);

bool aclint_save(struct aclint *a, struct snap_writer *w) {
    pthread_mutex_lock(&a->lock);
    bool ok = snap_section_begin(w, aclint_hart_vmstate.tag, aclint_hart_vmstate.version) &&
              snap_write_u32(w, a->nharts);
    for (unsigned i = 0; ok && i < a->nharts; i++) ok = vmstate_put(w, &aclint_hart_vmstate, &a->hart[i]);
    ok = ok && snap_section_end(w);
    pthread_mutex_unlock(&a->lock);
    return ok;
}

bool aclint_load(struct aclint *a, const struct snap_section *s, char *err, size_t errlen) {
    if (!vmstate_check_version(s, aclint_hart_vmstate.tag, aclint_hart_vmstate.version, err, errlen)) return false;
    struct snap_cursor c;
    snap_cursor_init(&c, s);
    uint32_t nharts;
    if (snap_get_u32(&c, &nharts) && nharts != a->nharts) {
        snprintf(err, errlen, "snapshot has %u harts' ACLINT timers, this VM %u", nharts, a->nharts);
        return false;
    }
    if (s->len != 4 + (uint64_t)a->nharts * vmstate_size(&aclint_hart_vmstate)) {
        snprintf(err, errlen, "section 'aclint' is %llu bytes, wrong for %u harts", (unsigned long long)s->len,
                 a->nharts);
        return false;
    }
    /* Checked in full (a pass over the bytes) before anything is installed. */
    struct snap_cursor check = c;
    for (unsigned i = 0; i < a->nharts; i++) {
        struct aclint_hart h = {0};
        if (!vmstate_get(&check, &aclint_hart_vmstate, &h)) {
            snprintf(err, errlen, "section 'aclint' holds a value out of range");
            return false;
        }
    }
    pthread_mutex_lock(&a->lock);
    uint64_t t = now(a);
    bool kick = false;
    for (unsigned i = 0; i < a->nharts; i++) {
        struct aclint_hart *ah = &a->hart[i];
        vmstate_get(&c, &aclint_hart_vmstate, ah);
        hart_irq_set(&ah->irq, HART_IRQ_MSIP, ah->msip);
        kick |= ah->msip;
        /* Opposite of what update_hart will find, so it drives the line. */
        ah->mtip = !(t >= ah->mtimecmp);
        update_hart(ah, t);
    }
    if (kick && a->host.kick) a->host.kick(a->host.ctx);
    pthread_mutex_unlock(&a->lock);
    return true;
}
