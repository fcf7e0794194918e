/* virtio-mmio version 2 transport (virtio 1.2 section 4.2), device side. */
#include "dev/virtio_mmio.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/vmstate.h"

#define TRANSPORT_FEATURES                                                                     \
    ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_RING_EVENT_IDX) |                        \
     (1ull << VIRTIO_F_RING_INDIRECT_DESC))

/* The transport's registers: with q[], what a snapshot saves (regs_vmstate). */
struct virtio_mmio_regs {
    uint32_t status;
    uint32_t dev_features_sel, drv_features_sel, queue_sel, shm_sel;
    uint64_t driver_features;
    uint32_t isr;
    uint32_t config_gen;
};

struct virtio_mmio {
    pthread_mutex_t lock;
    const struct virtio_device_ops *ops;
    void *dev;
    struct guest_mem_ops mem;
    struct irq_line irq;

    struct virtio_mmio_regs regs;
    const char *broken_why;
    struct virtq q[VIRTIO_MMIO_MAX_QUEUES];
    /* Host statistics: buffer copies refused for want of a frame. */
    uint64_t dma_deferred;
};

static uint64_t offered(const struct virtio_mmio *t) { return t->ops->features | TRANSPORT_FEATURES; }

static void update_irq(struct virtio_mmio *t) { irq_line_set(&t->irq, t->regs.isr != 0); }

static bool broken(const struct virtio_mmio *t) { return t->regs.status & VIRTIO_STATUS_DEVICE_NEEDS_RESET; }

static void set_broken(struct virtio_mmio *t, const char *why) {
    if (broken(t)) return;
    t->broken_why = why; /* kept for debugging */
    t->regs.status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
    t->regs.isr |= VIRTIO_MMIO_INT_CONFIG;
    update_irq(t);
}

static void device_reset(struct virtio_mmio *t) {
    t->regs.status = 0;
    t->regs.dev_features_sel = t->regs.drv_features_sel = t->regs.queue_sel = t->regs.shm_sel = 0;
    t->regs.driver_features = 0;
    t->regs.isr = 0;
    t->broken_why = NULL;
    for (unsigned i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++) virtq_reset(&t->q[i]);
    if (t->ops->reset) t->ops->reset(t->dev);
    update_irq(t);
}

static struct virtq *cur_queue(struct virtio_mmio *t) {
    return t->regs.queue_sel < t->ops->num_queues ? &t->q[t->regs.queue_sel] : NULL;
}

static void write_status(struct virtio_mmio *t, uint32_t v) {
    if (v == 0) {
        device_reset(t);
        return;
    }
    v &= 0xff & ~VIRTIO_STATUS_DEVICE_NEEDS_RESET; /* that bit belongs to the device */
    uint32_t old = t->regs.status & ~VIRTIO_STATUS_DEVICE_NEEDS_RESET;
    /* The driver only ever adds bits (3.1.1); anything else is ignored. */
    if (old & ~v) return;
    uint32_t add = v & ~old;
    if (add & VIRTIO_STATUS_FEATURES_OK) {
        /* 3.1.1 step 6: refuse features we did not offer, and legacy drivers. */
        if ((t->regs.driver_features & ~offered(t)) || !(t->regs.driver_features & (1ull << VIRTIO_F_VERSION_1)) ||
            !(v & VIRTIO_STATUS_DRIVER))
            v &= ~(uint32_t)VIRTIO_STATUS_FEATURES_OK;
    }
    if ((add & VIRTIO_STATUS_DRIVER_OK) && !(v & VIRTIO_STATUS_FEATURES_OK)) v &= ~(uint32_t)VIRTIO_STATUS_DRIVER_OK;
    t->regs.status = v | (t->regs.status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

static void queue_ready(struct virtio_mmio *t, struct virtq *q, uint32_t v) {
    if (!v) {
        /* Writing 0 stops the queue; its state goes with it. */
        uint16_t num = q->num;
        uint64_t d = q->desc, a = q->avail, u = q->used;
        virtq_reset(q);
        q->num = num, q->desc = d, q->avail = a, q->used = u;
        return;
    }
    if (q->ready || !(t->regs.status & VIRTIO_STATUS_FEATURES_OK) || broken(t)) return;
    q->event_idx = t->regs.driver_features & (1ull << VIRTIO_F_RING_EVENT_IDX);
    int r = virtq_start(q, &t->mem);
    /* An invalid size only leaves the queue not ready, which the driver
     * sees; rings outside RAM or misaligned break the device. */
    if (r == VIRTQ_ERR_MEM || r == VIRTQ_ERR_ALIGN) set_broken(t, virtq_strerror(r));
}

static void queue_notify(struct virtio_mmio *t, uint32_t v) {
    /* Notifications mean nothing before DRIVER_OK (3.1.1) or once broken. */
    if (!(t->regs.status & VIRTIO_STATUS_DRIVER_OK) || broken(t)) return;
    unsigned qi = v & 0xffff; /* without NOTIFICATION_DATA only the index counts */
    if (qi >= t->ops->num_queues || !t->q[qi].ready || !t->ops->notify) return;
    t->ops->notify(t->dev, t, qi);
}

static void set_addr_half(uint64_t *a, uint32_t v, bool high) {
    if (high)
        *a = (*a & 0xffffffffull) | ((uint64_t)v << 32);
    else
        *a = (*a & ~0xffffffffull) | v;
}

static uint32_t reg_read(struct virtio_mmio *t, uint64_t off) {
    struct virtq *q = cur_queue(t);
    switch (off) {
    case VIRTIO_MMIO_MAGIC_VALUE: return VIRTIO_MMIO_MAGIC;
    case VIRTIO_MMIO_VERSION: return 2;
    case VIRTIO_MMIO_DEVICE_ID: return t->ops->device_id;
    case VIRTIO_MMIO_VENDOR_ID: return VIRTIO_MMIO_VENDOR;
    case VIRTIO_MMIO_DEVICE_FEATURES:
        return t->regs.dev_features_sel < 2 ? (uint32_t)(offered(t) >> (32 * t->regs.dev_features_sel)) : 0;
    case VIRTIO_MMIO_QUEUE_NUM_MAX: return q ? t->ops->queue_max : 0;
    case VIRTIO_MMIO_QUEUE_READY: return q ? q->ready : 0;
    case VIRTIO_MMIO_INTERRUPT_STATUS: return t->regs.isr;
    case VIRTIO_MMIO_STATUS: return t->regs.status;
    /* The 1.2 spec lets the driver read the queue addresses back. */
    case VIRTIO_MMIO_QUEUE_DESC_LOW: return q ? (uint32_t)q->desc : 0;
    case VIRTIO_MMIO_QUEUE_DESC_HIGH: return q ? (uint32_t)(q->desc >> 32) : 0;
    case VIRTIO_MMIO_QUEUE_DRIVER_LOW: return q ? (uint32_t)q->avail : 0;
    case VIRTIO_MMIO_QUEUE_DRIVER_HIGH: return q ? (uint32_t)(q->avail >> 32) : 0;
    case VIRTIO_MMIO_QUEUE_DEVICE_LOW: return q ? (uint32_t)q->used : 0;
    case VIRTIO_MMIO_QUEUE_DEVICE_HIGH: return q ? (uint32_t)(q->used >> 32) : 0;
    /* No shared memory regions: length all ones means "absent" (4.2.2). */
    case VIRTIO_MMIO_SHM_LEN_LOW:
    case VIRTIO_MMIO_SHM_LEN_HIGH:
    case VIRTIO_MMIO_SHM_BASE_LOW:
    case VIRTIO_MMIO_SHM_BASE_HIGH: return 0xffffffffu;
    case VIRTIO_MMIO_CONFIG_GENERATION: return t->regs.config_gen;
    }
    return 0; /* write-only and reserved registers */
}

static void reg_write(struct virtio_mmio *t, uint64_t off, uint32_t v) {
    struct virtq *q = cur_queue(t);
    /* Queue configuration is frozen while the queue is live. */
    bool qcfg = q && !q->ready;
    switch (off) {
    case VIRTIO_MMIO_DEVICE_FEATURES_SEL: t->regs.dev_features_sel = v; break;
    case VIRTIO_MMIO_DRIVER_FEATURES:
        if (t->regs.status & VIRTIO_STATUS_FEATURES_OK) break;
        if (t->regs.drv_features_sel == 0)
            t->regs.driver_features = (t->regs.driver_features & ~0xffffffffull) | v;
        else if (t->regs.drv_features_sel == 1)
            t->regs.driver_features = (t->regs.driver_features & 0xffffffffull) | ((uint64_t)v << 32);
        break;
    case VIRTIO_MMIO_DRIVER_FEATURES_SEL: t->regs.drv_features_sel = v; break;
    case VIRTIO_MMIO_QUEUE_SEL: t->regs.queue_sel = v; break;
    case VIRTIO_MMIO_QUEUE_NUM:
        /* A size that is not a power of two up to QueueNumMax is refused:
         * the queue then has no valid size and cannot be made ready. */
        if (qcfg) q->num = (virtq_size_valid(v) && v <= t->ops->queue_max) ? (uint16_t)v : 0;
        break;
    case VIRTIO_MMIO_QUEUE_READY:
        if (q) queue_ready(t, q, v);
        break;
    case VIRTIO_MMIO_QUEUE_NOTIFY: queue_notify(t, v); break;
    case VIRTIO_MMIO_INTERRUPT_ACK:
        t->regs.isr &= ~v;
        update_irq(t);
        break;
    case VIRTIO_MMIO_STATUS: write_status(t, v); break;
    case VIRTIO_MMIO_QUEUE_DESC_LOW:
    case VIRTIO_MMIO_QUEUE_DESC_HIGH:
        if (qcfg) set_addr_half(&q->desc, v, off & 4);
        break;
    case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
    case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
        if (qcfg) set_addr_half(&q->avail, v, off & 4);
        break;
    case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
    case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
        if (qcfg) set_addr_half(&q->used, v, off & 4);
        break;
    case VIRTIO_MMIO_SHM_SEL: t->regs.shm_sel = v; break;
    default: break; /* read-only and reserved registers */
    }
}

static bool size_ok(unsigned size) { return size == 1 || size == 2 || size == 4 || size == 8; }

static uint64_t transport_read(void *dev, uint64_t off, unsigned size) {
    struct virtio_mmio *t = dev;
    uint64_t v = 0;
    if (!size_ok(size)) return 0;
    pthread_mutex_lock(&t->lock);
    if (off >= VIRTIO_MMIO_CONFIG) {
        if (t->ops->config_read && off - VIRTIO_MMIO_CONFIG < 0x1000 - VIRTIO_MMIO_CONFIG)
            v = t->ops->config_read(t->dev, off - VIRTIO_MMIO_CONFIG, size);
    } else if (size == 4 && !(off & 3)) {
        v = reg_read(t, off);
    }
    pthread_mutex_unlock(&t->lock);
    return v;
}

static void transport_write(void *dev, uint64_t off, uint64_t val, unsigned size) {
    struct virtio_mmio *t = dev;
    if (!size_ok(size)) return;
    pthread_mutex_lock(&t->lock);
    if (off >= VIRTIO_MMIO_CONFIG) {
        if (t->ops->config_write && off - VIRTIO_MMIO_CONFIG < 0x1000 - VIRTIO_MMIO_CONFIG)
            t->ops->config_write(t->dev, off - VIRTIO_MMIO_CONFIG, val, size);
    } else if (size == 4 && !(off & 3)) {
        reg_write(t, off, (uint32_t)val);
    }
    pthread_mutex_unlock(&t->lock);
}

const struct mmio_ops virtio_mmio_ops = {transport_read, transport_write};

struct virtio_mmio *virtio_mmio_create(const struct virtio_device_ops *ops, void *dev, struct guest_mem_ops mem,
                                       struct irq_line irq) {
    if (!ops || !mem.read || !mem.write || ops->num_queues > VIRTIO_MMIO_MAX_QUEUES ||
        (ops->num_queues && !virtq_size_valid(ops->queue_max)))
        return NULL;
    struct virtio_mmio *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    if (pthread_mutex_init(&t->lock, NULL)) {
        free(t);
        return NULL;
    }
    t->ops = ops;
    t->dev = dev;
    t->mem = mem;
    t->irq = irq;
    return t;
}

void virtio_mmio_destroy(struct virtio_mmio *t) {
    if (!t) return;
    pthread_mutex_destroy(&t->lock);
    free(t);
}

void virtio_mmio_lock(struct virtio_mmio *t) { pthread_mutex_lock(&t->lock); }
void virtio_mmio_unlock(struct virtio_mmio *t) { pthread_mutex_unlock(&t->lock); }

const struct guest_mem_ops *virtio_mmio_mem(struct virtio_mmio *t) { return &t->mem; }
uint64_t virtio_mmio_driver_features(struct virtio_mmio *t) { return t->regs.driver_features; }

static bool usable(struct virtio_mmio *t, unsigned q) {
    return q < t->ops->num_queues && t->q[q].ready && !broken(t) && (t->regs.status & VIRTIO_STATUS_DRIVER_OK);
}

int virtio_mmio_queue_pop(struct virtio_mmio *t, unsigned q, struct virtq_chain *c) {
    if (!usable(t, q)) return -1;
    int r = virtq_pop(&t->q[q], &t->mem, c);
    if (r == VIRTQ_ERR_AGAIN) {
        errno = ENOMEM;
        return VIRTIO_MMIO_AGAIN;
    }
    if (r < 0) {
        set_broken(t, virtq_strerror(r));
        return -1;
    }
    return r;
}

void virtio_mmio_queue_unpop(struct virtio_mmio *t, unsigned q) {
    if (usable(t, q)) virtq_unpop(&t->q[q]);
}

bool virtio_mmio_queue_push(struct virtio_mmio *t, unsigned q, uint16_t head, uint32_t len) {
    if (!usable(t, q)) {
        errno = EIO;
        return false;
    }
    int r = virtq_push(&t->q[q], &t->mem, head, len);
    if (r == VIRTQ_ERR_AGAIN) {
        errno = ENOMEM;
        return false;
    }
    if (r < 0) {
        set_broken(t, virtq_strerror(r));
        errno = EIO;
        return false;
    }
    return true;
}

void virtio_mmio_queue_interrupt(struct virtio_mmio *t, unsigned q) {
    if (!usable(t, q)) return;
    bool irq;
    int r = virtq_need_interrupt(&t->q[q], &t->mem, &irq);
    /* Not knowing whether the driver wants it, interrupt: a spurious
     * interrupt costs it a look at the used ring, a lost one a hang. */
    if (r == VIRTQ_ERR_AGAIN) irq = true;
    else if (r < 0) {
        set_broken(t, virtq_strerror(r));
        return;
    }
    if (irq) {
        t->regs.isr |= VIRTIO_MMIO_INT_VRING;
        update_irq(t);
    }
}

void virtio_mmio_config_changed(struct virtio_mmio *t) {
    t->regs.config_gen++;
    if (t->regs.status & VIRTIO_STATUS_DRIVER_OK) {
        t->regs.isr |= VIRTIO_MMIO_INT_CONFIG;
        update_irq(t);
    }
}

void virtio_mmio_set_broken(struct virtio_mmio *t, const char *why) { set_broken(t, why); }

bool virtio_mmio_dma_refused(struct virtio_mmio *t, const char *why) {
    if (errno == ENOMEM) {
        __atomic_fetch_add(&t->dma_deferred, 1, __ATOMIC_RELAXED);
        return false;
    }
    set_broken(t, why);
    return true;
}

uint32_t virtio_mmio_status(struct virtio_mmio *t) {
    pthread_mutex_lock(&t->lock);
    uint32_t s = t->regs.status;
    pthread_mutex_unlock(&t->lock);
    return s;
}

uint64_t virtio_mmio_dma_deferred(struct virtio_mmio *t) {
    /* Without the lock: the monitor reads it holding its own, which the
     * transport's interrupt path takes under the transport lock. */
    return __atomic_load_n(&t->dma_deferred, __ATOMIC_RELAXED);
}

/* ---- snapshots: section "virtio", version 1: u32 device id, regs_vmstate,
 * u32 number of queues, virtq_vmstate for each, then what the backend's
 * ops->save writes. ---- */

static const struct vmstate_field regs_fields[] = {
    VMSTATE_U_MAX(struct virtio_mmio_regs, status, 0xff),
    VMSTATE_U(struct virtio_mmio_regs, dev_features_sel),
    VMSTATE_U(struct virtio_mmio_regs, drv_features_sel),
    VMSTATE_U(struct virtio_mmio_regs, queue_sel),
    VMSTATE_U(struct virtio_mmio_regs, shm_sel),
    VMSTATE_U(struct virtio_mmio_regs, driver_features),
    VMSTATE_U_MAX(struct virtio_mmio_regs, isr, VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG),
    VMSTATE_U(struct virtio_mmio_regs, config_gen),
};
static const struct vmstate regs_vmstate = VMSTATE_TABLE("virtio", 1, regs_fields);

static const struct vmstate_field virtq_fields[] = {
    VMSTATE_U_MAX(struct virtq, num, VIRTQ_MAX_SIZE),
    VMSTATE_BOOL(struct virtq, ready),
    VMSTATE_BOOL(struct virtq, event_idx),
    VMSTATE_U(struct virtq, desc),
    VMSTATE_U(struct virtq, avail),
    VMSTATE_U(struct virtq, used),
    VMSTATE_U(struct virtq, last_avail),
    VMSTATE_U(struct virtq, used_idx),
    VMSTATE_U(struct virtq, signalled_used),
};
static const struct vmstate virtq_vmstate = VMSTATE_TABLE("virtio", 1, virtq_fields);

static void device_name(uint32_t id, char *buf, size_t n) {
    static const char *const names[] = {[1] = "net", [2] = "blk", [3] = "console", [4] = "rng", [5] = "balloon"};
    if (id < sizeof names / sizeof names[0] && names[id])
        snprintf(buf, n, "virtio-%s", names[id]);
    else
        snprintf(buf, n, "virtio device %u", id);
}

bool virtio_mmio_save(struct virtio_mmio *t, struct snap_writer *w) {
    pthread_mutex_lock(&t->lock);
    bool ok = snap_section_begin(w, regs_vmstate.tag, regs_vmstate.version) &&
              snap_write_u32(w, t->ops->device_id) && vmstate_put(w, &regs_vmstate, &t->regs) &&
              snap_write_u32(w, t->ops->num_queues);
    for (unsigned i = 0; ok && i < t->ops->num_queues; i++) ok = vmstate_put(w, &virtq_vmstate, &t->q[i]);
    if (ok && t->ops->save) ok = t->ops->save(t->dev, w);
    ok = ok && snap_section_end(w);
    pthread_mutex_unlock(&t->lock);
    return ok;
}

/* What write_status lets a driver reach: offered features only, FEATURES_OK
 * only for a VERSION_1 driver past DRIVER, DRIVER_OK only after FEATURES_OK. */
static bool regs_valid(const struct virtio_mmio *t, const struct virtio_mmio_regs *r) {
    if (r->driver_features & ~offered(t)) return false;
    if ((r->status & VIRTIO_STATUS_FEATURES_OK) &&
        (!(r->driver_features & (1ull << VIRTIO_F_VERSION_1)) || !(r->status & VIRTIO_STATUS_DRIVER)))
        return false;
    return !(r->status & VIRTIO_STATUS_DRIVER_OK) || (r->status & VIRTIO_STATUS_FEATURES_OK);
}

/* What the QueueNum and QueueReady paths let a queue become: a size that
 * is 0 or valid, and readiness only after FEATURES_OK, with a valid size,
 * aligned areas (as virtq_start) and event index as negotiated. Whether the
 * areas are guest RAM is left to their first use, which breaks the device
 * as it would have at QueueReady. */
static bool queue_valid(const struct virtio_mmio *t, const struct virtio_mmio_regs *r, const struct virtq *q) {
    if (q->num && (!virtq_size_valid(q->num) || q->num > t->ops->queue_max)) return false;
    if (!q->ready) return true;
    return q->num && !(q->desc & 15) && !(q->avail & 1) && !(q->used & 3) &&
           (r->status & VIRTIO_STATUS_FEATURES_OK) &&
           q->event_idx == !!(r->driver_features & (1ull << VIRTIO_F_RING_EVENT_IDX));
}

bool virtio_mmio_load(struct virtio_mmio *t, const struct snap_section *s, char *err, size_t errlen) {
    char name[32];
    device_name(t->ops->device_id, name, sizeof name);
    if (!vmstate_check_version(s, regs_vmstate.tag, regs_vmstate.version, err, errlen)) return false;
    struct snap_cursor c;
    snap_cursor_init(&c, s);
    uint32_t id, nq = 0;
    if (snap_get_u32(&c, &id) && id != t->ops->device_id) {
        char theirs[32];
        device_name(id, theirs, sizeof theirs);
        snprintf(err, errlen, "slot holds a %s, the snapshot a %s", name, theirs);
        return false;
    }
    if (s->len < 8 + vmstate_size(&regs_vmstate) + t->ops->num_queues * vmstate_size(&virtq_vmstate)) {
        snprintf(err, errlen, "section 'virtio' is %llu bytes, too short for a %s", (unsigned long long)s->len, name);
        return false;
    }
    struct virtio_mmio_regs r = {0};
    struct virtq q[VIRTIO_MMIO_MAX_QUEUES] = {0};
    bool ok = vmstate_get(&c, &regs_vmstate, &r) && snap_get_u32(&c, &nq);
    if (ok && nq != t->ops->num_queues) {
        snprintf(err, errlen, "snapshot's %s has %u queues, this one %u", name, nq, t->ops->num_queues);
        return false;
    }
    ok = ok && regs_valid(t, &r);
    for (unsigned i = 0; ok && i < nq; i++) ok = vmstate_get(&c, &virtq_vmstate, &q[i]) && queue_valid(t, &r, &q[i]);
    if (!ok) {
        snprintf(err, errlen, "section 'virtio' (%s) holds a value out of range or an impossible state", name);
        return false;
    }
    pthread_mutex_lock(&t->lock);
    /* The backend checks its part before installing it; the transport's is
     * installed only once the whole section was taken. */
    ok = !t->ops->load || t->ops->load(t->dev, &c, err, errlen);
    if (ok && (c.bad || c.left)) {
        snprintf(err, errlen, "section 'virtio' (%s) has %llu trailing bytes", name, (unsigned long long)c.left);
        device_reset(t); /* the backend took its part: start it over too */
        ok = false;
    }
    if (ok) {
        t->regs = r;
        memcpy(t->q, q, sizeof q);
        t->broken_why = broken(t) ? "restored broken" : NULL;
        update_irq(t);
    }
    pthread_mutex_unlock(&t->lock);
    return ok;
}

void virtio_mmio_resume(struct virtio_mmio *t) {
    pthread_mutex_lock(&t->lock);
    for (unsigned i = 0; i < t->ops->num_queues; i++)
        if (usable(t, i) && t->ops->notify) t->ops->notify(t->dev, t, i);
    pthread_mutex_unlock(&t->lock);
}
