/* virtio-mmio version 2 transport (virtio 1.2 section 4.2), device side. */
#include "dev/virtio_mmio.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define TRANSPORT_FEATURES                                                                     \
    ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_RING_EVENT_IDX) |                        \
     (1ull << VIRTIO_F_RING_INDIRECT_DESC))

struct virtio_mmio {
    pthread_mutex_t lock;
    const struct virtio_device_ops *ops;
    void *dev;
    struct guest_mem_ops mem;
    struct irq_line irq;

    uint32_t status;
    uint32_t dev_features_sel, drv_features_sel, queue_sel, shm_sel;
    uint64_t driver_features;
    uint32_t isr;
    uint32_t config_gen;
    const char *broken_why;
    struct virtq q[VIRTIO_MMIO_MAX_QUEUES];
};

static uint64_t offered(const struct virtio_mmio *t) { return t->ops->features | TRANSPORT_FEATURES; }

static void update_irq(struct virtio_mmio *t) { irq_line_set(&t->irq, t->isr != 0); }

static bool broken(const struct virtio_mmio *t) { return t->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET; }

static void set_broken(struct virtio_mmio *t, const char *why) {
    if (broken(t)) return;
    t->broken_why = why; /* kept for debugging */
    t->status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
    t->isr |= VIRTIO_MMIO_INT_CONFIG;
    update_irq(t);
}

static void device_reset(struct virtio_mmio *t) {
    t->status = 0;
    t->dev_features_sel = t->drv_features_sel = t->queue_sel = t->shm_sel = 0;
    t->driver_features = 0;
    t->isr = 0;
    t->broken_why = NULL;
    for (unsigned i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++) virtq_reset(&t->q[i]);
    if (t->ops->reset) t->ops->reset(t->dev);
    update_irq(t);
}

static struct virtq *cur_queue(struct virtio_mmio *t) {
    return t->queue_sel < t->ops->num_queues ? &t->q[t->queue_sel] : NULL;
}

static void write_status(struct virtio_mmio *t, uint32_t v) {
    if (v == 0) {
        device_reset(t);
        return;
    }
    v &= 0xff & ~VIRTIO_STATUS_DEVICE_NEEDS_RESET; /* that bit belongs to the device */
    uint32_t old = t->status & ~VIRTIO_STATUS_DEVICE_NEEDS_RESET;
    /* The driver only ever adds bits (3.1.1); anything else is ignored. */
    if (old & ~v) return;
    uint32_t add = v & ~old;
    if (add & VIRTIO_STATUS_FEATURES_OK) {
        /* 3.1.1 step 6: refuse features we did not offer, and legacy drivers. */
        if ((t->driver_features & ~offered(t)) || !(t->driver_features & (1ull << VIRTIO_F_VERSION_1)) ||
            !(v & VIRTIO_STATUS_DRIVER))
            v &= ~(uint32_t)VIRTIO_STATUS_FEATURES_OK;
    }
    if ((add & VIRTIO_STATUS_DRIVER_OK) && !(v & VIRTIO_STATUS_FEATURES_OK)) v &= ~(uint32_t)VIRTIO_STATUS_DRIVER_OK;
    t->status = v | (t->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
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
    if (q->ready || !(t->status & VIRTIO_STATUS_FEATURES_OK) || broken(t)) return;
    q->event_idx = t->driver_features & (1ull << VIRTIO_F_RING_EVENT_IDX);
    int r = virtq_start(q, &t->mem);
    /* An invalid size only leaves the queue not ready, which the driver
     * sees; rings outside RAM or misaligned break the device. */
    if (r == VIRTQ_ERR_MEM || r == VIRTQ_ERR_ALIGN) set_broken(t, virtq_strerror(r));
}

static void queue_notify(struct virtio_mmio *t, uint32_t v) {
    /* Notifications mean nothing before DRIVER_OK (3.1.1) or once broken. */
    if (!(t->status & VIRTIO_STATUS_DRIVER_OK) || broken(t)) return;
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
        return t->dev_features_sel < 2 ? (uint32_t)(offered(t) >> (32 * t->dev_features_sel)) : 0;
    case VIRTIO_MMIO_QUEUE_NUM_MAX: return q ? t->ops->queue_max : 0;
    case VIRTIO_MMIO_QUEUE_READY: return q ? q->ready : 0;
    case VIRTIO_MMIO_INTERRUPT_STATUS: return t->isr;
    case VIRTIO_MMIO_STATUS: return t->status;
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
    case VIRTIO_MMIO_CONFIG_GENERATION: return t->config_gen;
    }
    return 0; /* write-only and reserved registers */
}

static void reg_write(struct virtio_mmio *t, uint64_t off, uint32_t v) {
    struct virtq *q = cur_queue(t);
    /* Queue configuration is frozen while the queue is live. */
    bool qcfg = q && !q->ready;
    switch (off) {
    case VIRTIO_MMIO_DEVICE_FEATURES_SEL: t->dev_features_sel = v; break;
    case VIRTIO_MMIO_DRIVER_FEATURES:
        if (t->status & VIRTIO_STATUS_FEATURES_OK) break;
        if (t->drv_features_sel == 0)
            t->driver_features = (t->driver_features & ~0xffffffffull) | v;
        else if (t->drv_features_sel == 1)
            t->driver_features = (t->driver_features & 0xffffffffull) | ((uint64_t)v << 32);
        break;
    case VIRTIO_MMIO_DRIVER_FEATURES_SEL: t->drv_features_sel = v; break;
    case VIRTIO_MMIO_QUEUE_SEL: t->queue_sel = v; break;
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
        t->isr &= ~v;
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
    case VIRTIO_MMIO_SHM_SEL: t->shm_sel = v; break;
    default: break; /* read-only and reserved registers */
    }
}

static bool size_ok(unsigned size) { return size == 1 || size == 2 || size == 4 || size == 8; }

static uint64_t vm_read(void *dev, uint64_t off, unsigned size) {
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

static void vm_write(void *dev, uint64_t off, uint64_t val, unsigned size) {
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

const struct mmio_ops virtio_mmio_ops = {vm_read, vm_write};

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
uint64_t virtio_mmio_driver_features(struct virtio_mmio *t) { return t->driver_features; }

static bool usable(struct virtio_mmio *t, unsigned q) {
    return q < t->ops->num_queues && t->q[q].ready && !broken(t) && (t->status & VIRTIO_STATUS_DRIVER_OK);
}

int virtio_mmio_queue_pop(struct virtio_mmio *t, unsigned q, struct virtq_chain *c) {
    if (!usable(t, q)) return -1;
    int r = virtq_pop(&t->q[q], &t->mem, c);
    if (r < 0) {
        set_broken(t, virtq_strerror(r));
        return -1;
    }
    return r;
}

bool virtio_mmio_queue_push(struct virtio_mmio *t, unsigned q, uint16_t head, uint32_t len) {
    if (!usable(t, q)) return false;
    int r = virtq_push(&t->q[q], &t->mem, head, len);
    if (r < 0) {
        set_broken(t, virtq_strerror(r));
        return false;
    }
    return true;
}

void virtio_mmio_queue_interrupt(struct virtio_mmio *t, unsigned q) {
    if (!usable(t, q)) return;
    bool irq;
    int r = virtq_need_interrupt(&t->q[q], &t->mem, &irq);
    if (r < 0) {
        set_broken(t, virtq_strerror(r));
        return;
    }
    if (irq) {
        t->isr |= VIRTIO_MMIO_INT_VRING;
        update_irq(t);
    }
}

void virtio_mmio_config_changed(struct virtio_mmio *t) {
    t->config_gen++;
    if (t->status & VIRTIO_STATUS_DRIVER_OK) {
        t->isr |= VIRTIO_MMIO_INT_CONFIG;
        update_irq(t);
    }
}

void virtio_mmio_set_broken(struct virtio_mmio *t, const char *why) { set_broken(t, why); }

uint32_t virtio_mmio_status(struct virtio_mmio *t) {
    pthread_mutex_lock(&t->lock);
    uint32_t s = t->status;
    pthread_mutex_unlock(&t->lock);
    return s;
}
