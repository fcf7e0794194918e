/* The virtio driver model shared by the virtio unit tests (see the header). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "virtio_driver.h"

static bool fm_in(const struct fake_mem *m, uint64_t gpa, size_t n) {
    return gpa >= m->base && n <= m->size && gpa - m->base <= m->size - n;
}

static bool fm_read(void *ctx, uint64_t gpa, void *buf, size_t n) {
    struct fake_mem *m = ctx;
    if (!fm_in(m, gpa, n)) {
        errno = EFAULT;
        return false;
    }
    memcpy(buf, m->bytes + (gpa - m->base), n);
    return true;
}

static bool fm_write(void *ctx, uint64_t gpa, const void *buf, size_t n) {
    struct fake_mem *m = ctx;
    if (!fm_in(m, gpa, n)) {
        errno = EFAULT;
        return false;
    }
    memcpy(m->bytes + (gpa - m->base), buf, n);
    return true;
}

static bool fm_starved(const struct fake_mem *m, uint64_t gpa, size_t n) {
    if (!__atomic_load_n(&m->starving, __ATOMIC_ACQUIRE) || gpa >= m->starve_hi || gpa + n <= m->starve_lo)
        return false;
    errno = ENOMEM;
    return true;
}

static bool fm_starving_read(void *ctx, uint64_t gpa, void *buf, size_t n) {
    return !fm_starved(ctx, gpa, n) && fm_read(ctx, gpa, buf, n);
}

static bool fm_starving_write(void *ctx, uint64_t gpa, const void *buf, size_t n) {
    return !fm_starved(ctx, gpa, n) && fm_write(ctx, gpa, buf, n);
}

struct guest_mem_ops fake_mem_starving_ops(struct fake_mem *m) {
    return (struct guest_mem_ops){fm_starving_read, fm_starving_write, m};
}

void fake_mem_starve(struct fake_mem *m, uint64_t lo, uint64_t hi, bool on) {
    __atomic_store_n(&m->starving, false, __ATOMIC_SEQ_CST);
    m->starve_lo = lo;
    m->starve_hi = hi;
    __atomic_store_n(&m->starving, on, __ATOMIC_SEQ_CST);
}

void fake_mem_init(struct fake_mem *m, uint64_t base, size_t size) {
    m->bytes = calloc(1, size);
    assert_non_null(m->bytes);
    m->base = base;
    m->size = size;
}

void fake_mem_free(struct fake_mem *m) {
    free(m->bytes);
    m->bytes = NULL;
}

struct guest_mem_ops fake_mem_ops(struct fake_mem *m) { return (struct guest_mem_ops){fm_read, fm_write, m}; }

uint8_t *fake_mem_host(struct fake_mem *m, uint64_t gpa) {
    assert_true(fm_in(m, gpa, 1));
    return m->bytes + (gpa - m->base);
}

bool all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

uint64_t vdrv_rd(struct vdrv *d, uint64_t off) { return virtio_mmio_ops.read(d->t, off, 4); }
void vdrv_wr(struct vdrv *d, uint64_t off, uint64_t v) { virtio_mmio_ops.write(d->t, off, v, 4); }
bool vdrv_broken(struct vdrv *d) { return vdrv_rd(d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET; }

void vdrv_poke(struct vdrv *d, uint64_t gpa, const void *p, size_t n) {
    assert_true(d->mem.write(d->mem.ctx, gpa, p, n));
}

/* The fence: with an event loop the device writes the rings on another
 * thread. */
void vdrv_peek(struct vdrv *d, uint64_t gpa, void *p, size_t n) {
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    assert_true(d->mem.read(d->mem.ctx, gpa, p, n));
}

void vdrv_zero(struct vdrv *d, uint64_t gpa, size_t n) {
    static const uint8_t zeros[4096];
    for (size_t done = 0; done < n;) {
        size_t k = n - done < sizeof zeros ? n - done : sizeof zeros;
        vdrv_poke(d, gpa + done, zeros, k);
        done += k;
    }
}

void vdrv_put16(struct vdrv *d, uint64_t gpa, uint16_t v) { vdrv_poke(d, gpa, &v, 2); }

uint16_t vdrv_get16(struct vdrv *d, uint64_t gpa) {
    uint16_t v;
    vdrv_peek(d, gpa, &v, 2);
    return v;
}

uint32_t vdrv_get32(struct vdrv *d, uint64_t gpa) {
    uint32_t v;
    vdrv_peek(d, gpa, &v, 4);
    return v;
}

void vdrv_desc_at(struct vdrv *d, uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                  uint16_t next) {
    uint8_t p[16];
    memcpy(p, &addr, 8);
    memcpy(p + 8, &len, 4);
    memcpy(p + 12, &flags, 2);
    memcpy(p + 14, &next, 2);
    vdrv_poke(d, table + 16 * (uint64_t)i, p, sizeof p);
}

void vdrv_set_desc(struct vdrv *d, unsigned q, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                   uint16_t next) {
    vdrv_desc_at(d, d->q[q].desc, i, addr, len, flags, next);
}

uint64_t vdrv_device_features(struct vdrv *d) {
    vdrv_wr(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    uint64_t f = vdrv_rd(d, VIRTIO_MMIO_DEVICE_FEATURES);
    vdrv_wr(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    return f | vdrv_rd(d, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
}

uint32_t vdrv_negotiate(struct vdrv *d, uint64_t features) {
    vdrv_wr(d, VIRTIO_MMIO_STATUS, 0);
    vdrv_wr(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    vdrv_wr(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    (void)vdrv_device_features(d);
    vdrv_wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    vdrv_wr(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
    vdrv_wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    vdrv_wr(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
    vdrv_wr(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    return (uint32_t)vdrv_rd(d, VIRTIO_MMIO_STATUS);
}

void vdrv_setup_queue(struct vdrv *d, unsigned q, uint32_t size, uint64_t desc, uint64_t avail, uint64_t used) {
    assert_true(q < VDRV_MAX_QUEUES);
    d->q[q] = (struct vdrv_queue){.desc = desc, .avail = avail, .used = used, .size = (uint16_t)size};
    vdrv_wr(d, VIRTIO_MMIO_QUEUE_SEL, q);
    vdrv_wr(d, VIRTIO_MMIO_QUEUE_NUM, size);
    vdrv_wr(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
    vdrv_wr(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
    vdrv_wr(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)avail);
    vdrv_wr(d, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(avail >> 32));
    vdrv_wr(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)used);
    vdrv_wr(d, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(used >> 32));
    vdrv_wr(d, VIRTIO_MMIO_QUEUE_READY, 1);
}

void vdrv_driver_ok(struct vdrv *d) {
    vdrv_wr(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
                                       VIRTIO_STATUS_DRIVER_OK);
}

void vdrv_post(struct vdrv *d, unsigned q, uint16_t head) {
    struct vdrv_queue *vq = &d->q[q];
    vdrv_put16(d, vq->avail + 4 + 2 * (vq->avail_idx % vq->size), head);
    vq->avail_idx++;
    __atomic_thread_fence(__ATOMIC_SEQ_CST); /* the entry before the index, for a device on another thread */
    vdrv_put16(d, vq->avail + 2, vq->avail_idx);
}

uint16_t vdrv_write_chain(struct vdrv *d, unsigned q, uint16_t head, const struct vdrv_seg *s, unsigned n) {
    uint16_t size = d->q[q].size;
    for (unsigned i = 0; i < n; i++) {
        uint16_t flags = (uint16_t)((s[i].writable ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
        vdrv_set_desc(d, q, (head + i) % size, s[i].gpa, s[i].len, flags, (uint16_t)((head + i + 1) % size));
    }
    return head;
}

void vdrv_notify(struct vdrv *d, unsigned q) { vdrv_wr(d, VIRTIO_MMIO_QUEUE_NOTIFY, q); }

uint16_t vdrv_used_idx(struct vdrv *d, unsigned q) { return vdrv_get16(d, d->q[q].used + 2); }
uint32_t vdrv_used_id(struct vdrv *d, unsigned q, unsigned i) {
    return vdrv_get32(d, d->q[q].used + 4 + 8 * (i % d->q[q].size));
}
uint32_t vdrv_used_len(struct vdrv *d, unsigned q, unsigned i) {
    return vdrv_get32(d, d->q[q].used + 8 + 8 * (i % d->q[q].size));
}
void vdrv_set_used_event(struct vdrv *d, unsigned q, uint16_t v) {
    vdrv_put16(d, d->q[q].avail + 4 + 2 * d->q[q].size, v);
}
uint16_t vdrv_avail_event(struct vdrv *d, unsigned q) { return vdrv_get16(d, d->q[q].used + 4 + 8 * d->q[q].size); }
