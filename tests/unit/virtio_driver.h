/* A small model of a guest's virtio driver for the unit tests of virtio
 * devices: register access to a virtio-mmio transport, descriptors and
 * split rings in guest memory, feature negotiation and per-queue setup with
 * ring addresses the test chooses. It reaches guest memory only through a
 * guest_mem_ops, so it works over the fake memory below as well as over a
 * real p2m. Failed memory accesses fail the test (cmocka). */
#ifndef RVISOR_TESTS_VIRTIO_DRIVER_H
#define RVISOR_TESTS_VIRTIO_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dev/virtio_mmio.h"
#include "dev/virtqueue.h"

/* ---- fake guest memory: a calloc'd buffer at [base, base + size) ---- */
struct fake_mem {
    uint8_t *bytes;
    uint64_t base;
    size_t size;
    /* While starving is set, the starving ops refuse every access that
     * touches [starve_lo, starve_hi) with errno ENOMEM, as a p2m does when
     * no machine frame can back a guest frame just now. */
    bool starving;
    uint64_t starve_lo, starve_hi;
};

void fake_mem_init(struct fake_mem *m, uint64_t base, size_t size);
void fake_mem_free(struct fake_mem *m);
struct guest_mem_ops fake_mem_ops(struct fake_mem *m);
/* The same memory for a device under memory pressure (see starving). */
struct guest_mem_ops fake_mem_starving_ops(struct fake_mem *m);
void fake_mem_starve(struct fake_mem *m, uint64_t lo, uint64_t hi, bool on);
/* Host pointer to gpa, which must lie inside the memory. */
uint8_t *fake_mem_host(struct fake_mem *m, uint64_t gpa);

/* Whether the n bytes at p are all zero. */
bool all_zero(const uint8_t *p, size_t n);

/* ---- the driver model ---- */
#define VDRV_MAX_QUEUES 4

struct vdrv_queue {
    uint64_t desc, avail, used; /* ring addresses */
    uint16_t size;
    uint16_t avail_idx; /* the driver's next avail->idx */
    uint16_t next_desc; /* first free descriptor for vdrv_post_chain */
};

struct vdrv {
    struct virtio_mmio *t;
    struct guest_mem_ops mem;
    struct vdrv_queue q[VDRV_MAX_QUEUES];
};

/* One buffer of a chain. */
struct vdrv_seg {
    uint64_t gpa;
    uint32_t len;
    bool writable;
};

uint64_t vdrv_rd(struct vdrv *d, uint64_t off);
void vdrv_wr(struct vdrv *d, uint64_t off, uint64_t v);
bool vdrv_broken(struct vdrv *d);

void vdrv_poke(struct vdrv *d, uint64_t gpa, const void *p, size_t n);
void vdrv_peek(struct vdrv *d, uint64_t gpa, void *p, size_t n);
void vdrv_zero(struct vdrv *d, uint64_t gpa, size_t n);
void vdrv_put16(struct vdrv *d, uint64_t gpa, uint16_t v);
uint16_t vdrv_get16(struct vdrv *d, uint64_t gpa);
uint32_t vdrv_get32(struct vdrv *d, uint64_t gpa);

/* Descriptor i of the table at `table` (a queue's or an indirect one). */
void vdrv_desc_at(struct vdrv *d, uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                  uint16_t next);
/* Descriptor i of queue q's table. */
void vdrv_set_desc(struct vdrv *d, unsigned q, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                   uint16_t next);

uint64_t vdrv_device_features(struct vdrv *d);
/* Reset, ACKNOWLEDGE, DRIVER, the driver's features, FEATURES_OK; returns
 * the status read back. */
uint32_t vdrv_negotiate(struct vdrv *d, uint64_t features);
/* Programs queue q with the given size and ring addresses and sets it
 * ready; the driver's indexes start over. Does not touch the rings. */
void vdrv_setup_queue(struct vdrv *d, unsigned q, uint32_t size, uint64_t desc, uint64_t avail, uint64_t used);
void vdrv_driver_ok(struct vdrv *d);

/* Makes chain `head` available on queue q (without notifying). */
void vdrv_post(struct vdrv *d, unsigned q, uint16_t head);
/* Writes the chain s[0..n-1] into descriptors head, head+1, ... (modulo the
 * queue size) and returns head. */
uint16_t vdrv_write_chain(struct vdrv *d, unsigned q, uint16_t head, const struct vdrv_seg *s, unsigned n);
void vdrv_notify(struct vdrv *d, unsigned q);

uint16_t vdrv_used_idx(struct vdrv *d, unsigned q);
uint32_t vdrv_used_id(struct vdrv *d, unsigned q, unsigned i);
uint32_t vdrv_used_len(struct vdrv *d, unsigned q, unsigned i);
void vdrv_set_used_event(struct vdrv *d, unsigned q, uint16_t v);
uint16_t vdrv_avail_event(struct vdrv *d, unsigned q);

#endif
