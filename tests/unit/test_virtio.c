/* Unit tests of the virtio-mmio transport, split virtqueues and the entropy
 * device. A fake guest memory (a malloc'd buffer at 0x80000000) stands in
 * for the p2m, and a small driver model does what a guest's virtio driver
 * does: the init sequence through registers, descriptors and rings in
 * memory, notifications, interrupt acknowledgement. Builds standalone:
 *   gcc -std=gnu17 -Wall -Wextra -Isrc tests/unit/test_virtio.c \
 *       src/dev/virtio_mmio.c src/dev/virtqueue.c src/dev/virtio_rng.c -lcmocka -lpthread */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dev/irq.h"
#include "dev/virtio_mmio.h"
#include "dev/virtio_rng.h"
#include "dev/virtqueue.h"
#include "io/event_loop.h"
#include "virtio_driver.h"

#define MEM_BASE 0x80000000ull
#define MEM_SIZE (1u << 20)
#define DESC (MEM_BASE + 0x1000)
#define AVAIL (MEM_BASE + 0x3000)
#define USED (MEM_BASE + 0x4000)
#define BUF (MEM_BASE + 0x10000)
#define TABLE (MEM_BASE + 0x8000)
#define QSIZE 8

/* ---- the driver model (see virtio_driver.h) ---- */
struct drv {
    struct fake_mem mem;
    struct vdrv v;
    struct virtio_rng *rng;
    bool irq_level;
    unsigned irq_raises;
};

static void irq_set(void *ctx, unsigned irq, bool level) {
    struct drv *d = ctx;
    assert_int_equal(irq, 7);
    if (level && !d->irq_level) d->irq_raises++;
    d->irq_level = level;
}

static uint8_t *host(struct drv *d, uint64_t gpa) { return fake_mem_host(&d->mem, gpa); }

/* Queue 0 at DESC/AVAIL/USED, with its rings cleared first. */
static void setup_queue(struct drv *d, uint32_t qsize) {
    memset(host(d, DESC), 0, 0x4000); /* desc, avail and used areas */
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_SEL, 0);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_QUEUE_READY), 0);
    vdrv_setup_queue(&d->v, 0, qsize, DESC, AVAIL, USED);
}

#define F_V1 (1ull << VIRTIO_F_VERSION_1)
#define F_EVIDX (1ull << VIRTIO_F_RING_EVENT_IDX)
#define F_INDIRECT (1ull << VIRTIO_F_RING_INDIRECT_DESC)

static void full_init(struct drv *d, uint64_t features) {
    assert_true(vdrv_negotiate(&d->v, features) & VIRTIO_STATUS_FEATURES_OK);
    setup_queue(d, QSIZE);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_QUEUE_READY), 1);
    vdrv_driver_ok(&d->v);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_STATUS), 0xf);
}

static int setup(void **state) {
    struct drv *d = calloc(1, sizeof *d);
    assert_non_null(d);
    fake_mem_init(&d->mem, MEM_BASE, MEM_SIZE);
    d->rng = virtio_rng_create(NULL);
    assert_non_null(d->rng);
    d->v.mem = fake_mem_ops(&d->mem);
    struct irq_line irq = {irq_set, d, 7};
    d->v.t = virtio_mmio_create(&virtio_rng_ops, d->rng, d->v.mem, irq);
    assert_non_null(d->v.t);
    *state = d;
    return 0;
}

static int teardown(void **state) {
    struct drv *d = *state;
    virtio_mmio_destroy(d->v.t);
    virtio_rng_destroy(d->rng);
    fake_mem_free(&d->mem);
    free(d);
    return 0;
}

/* ---- tests ---- */

static void test_probe(void **state) {
    struct drv *d = *state;
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_VERSION), 2);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_DEVICE_ID), 4);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
    vdrv_wr(&d->v, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_DEVICE_FEATURES), (1u << 28) | (1u << 29));
    vdrv_wr(&d->v, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_DEVICE_FEATURES), 1);
    vdrv_wr(&d->v, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_DEVICE_FEATURES), 0);
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_SEL, 0);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_QUEUE_NUM_MAX), VIRTIO_RNG_QUEUE_SIZE);
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_SEL, 1);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_STATUS), 0);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffffu);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_CONFIG), 0); /* no config space */
}

static void test_feature_negotiation(void **state) {
    struct drv *d = *state;
    /* A legacy driver (no VERSION_1) is refused. */
    assert_false(vdrv_negotiate(&d->v, 0) & VIRTIO_STATUS_FEATURES_OK);
    /* A feature we did not offer is refused. */
    assert_false(vdrv_negotiate(&d->v, F_V1 | (1ull << 40)) & VIRTIO_STATUS_FEATURES_OK);
    assert_false(vdrv_negotiate(&d->v, F_V1 | 1) & VIRTIO_STATUS_FEATURES_OK);
    assert_true(vdrv_negotiate(&d->v, F_V1 | F_EVIDX | F_INDIRECT) & VIRTIO_STATUS_FEATURES_OK);
    assert_int_equal(virtio_mmio_driver_features(d->v.t), F_V1 | F_EVIDX | F_INDIRECT);
    /* Features are frozen after FEATURES_OK. */
    vdrv_wr(&d->v, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    vdrv_wr(&d->v, VIRTIO_MMIO_DRIVER_FEATURES, 0);
    assert_int_equal(virtio_mmio_driver_features(d->v.t), F_V1 | F_EVIDX | F_INDIRECT);
    /* DRIVER_OK without FEATURES_OK is not accepted. */
    vdrv_wr(&d->v, VIRTIO_MMIO_STATUS, 0);
    vdrv_wr(&d->v, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_STATUS), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    /* Clearing bits other than by reset is ignored. */
    vdrv_wr(&d->v, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_STATUS), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    /* The driver cannot set NEEDS_RESET. */
    vdrv_wr(&d->v, VIRTIO_MMIO_STATUS, 0x43);
    assert_false(vdrv_broken(&d->v));
}

static void test_rng_basic(void **state) {
    struct drv *d = *state;
    full_init(d, F_V1);
    assert_false(d->irq_level);
    vdrv_set_desc(&d->v, 0, 0, BUF, 64, VIRTQ_DESC_F_WRITE, 0);
    vdrv_post(&d->v, 0, 0);
    vdrv_notify(&d->v, 0);
    assert_int_equal(vdrv_used_idx(&d->v, 0), 1);
    assert_int_equal(vdrv_used_id(&d->v, 0, 0), 0);
    assert_int_equal(vdrv_used_len(&d->v, 0, 0), 64);
    assert_false(all_zero(host(d, BUF), 64));
    assert_true(all_zero(host(d, BUF + 64), 64)); /* nothing beyond the buffer */
    assert_true(d->irq_level);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
    vdrv_wr(&d->v, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    assert_false(d->irq_level);

    /* A second request gets different bytes. */
    vdrv_set_desc(&d->v, 0, 1, BUF + 0x1000, 64, VIRTQ_DESC_F_WRITE, 0);
    vdrv_post(&d->v, 0, 1);
    vdrv_notify(&d->v, 0);
    assert_int_equal(vdrv_used_idx(&d->v, 0), 2);
    assert_int_equal(vdrv_used_id(&d->v, 0, 1), 1);
    assert_int_equal(vdrv_used_len(&d->v, 0, 1), 64);
    assert_memory_not_equal(host(d, BUF), host(d, BUF + 0x1000), 64);
    assert_true(d->irq_level);
    assert_int_equal(d->irq_raises, 2);

    /* Several requests with one notify, wrapping round the ring. */
    vdrv_wr(&d->v, VIRTIO_MMIO_INTERRUPT_ACK, 1);
    for (unsigned round = 0; round < 3; round++) {
        for (unsigned i = 0; i < QSIZE; i++) {
            vdrv_set_desc(&d->v, 0, i, BUF + 0x100 * i, 16 + i, VIRTQ_DESC_F_WRITE, 0);
            vdrv_post(&d->v, 0, (uint16_t)i);
        }
        uint16_t before = vdrv_used_idx(&d->v, 0);
        vdrv_notify(&d->v, 0);
        assert_int_equal(vdrv_used_idx(&d->v, 0), (uint16_t)(before + QSIZE));
        for (unsigned i = 0; i < QSIZE; i++) {
            assert_int_equal(vdrv_used_id(&d->v, 0, before + i), i);
            assert_int_equal(vdrv_used_len(&d->v, 0, before + i), 16 + i);
        }
    }
    assert_false(vdrv_broken(&d->v));

    /* A request without writable buffers gets 0 bytes. */
    vdrv_set_desc(&d->v, 0, 0, BUF, 64, 0, 0);
    vdrv_post(&d->v, 0, 0);
    vdrv_notify(&d->v, 0);
    assert_int_equal(vdrv_used_len(&d->v, 0, vdrv_used_idx(&d->v, 0) - 1), 0);
    assert_false(vdrv_broken(&d->v));
}

/* With an event loop the notifying thread only signals; the loop thread
 * fills the buffer and raises the interrupt. */
static void test_rng_on_event_loop(void **state) {
    (void)state;
    char err[128];
    struct event_loop *loop = event_loop_create(err, sizeof err);
    assert_non_null(loop);
    struct drv *d = calloc(1, sizeof *d);
    assert_non_null(d);
    fake_mem_init(&d->mem, MEM_BASE, MEM_SIZE);
    d->rng = virtio_rng_create(loop);
    assert_non_null(d->rng);
    d->v.mem = fake_mem_ops(&d->mem);
    d->v.t = virtio_mmio_create(&virtio_rng_ops, d->rng, d->v.mem, (struct irq_line){irq_set, d, 7});
    assert_non_null(d->v.t);
    full_init(d, F_V1);
    for (uint16_t n = 1; n <= 3; n++) {
        vdrv_set_desc(&d->v, 0, n, BUF + 0x100 * n, 32, VIRTQ_DESC_F_WRITE, 0);
        vdrv_post(&d->v, 0, n);
        vdrv_notify(&d->v, 0);
        for (int spin = 0; spin < 2000 && vdrv_used_idx(&d->v, 0) != n; spin++) usleep(1000);
        assert_int_equal(vdrv_used_idx(&d->v, 0), n);
        assert_int_equal(vdrv_used_len(&d->v, 0, n - 1), 32);
        assert_false(all_zero(host(d, BUF + 0x100 * n), 32));
    }
    assert_true(d->irq_raises >= 1);
    virtio_rng_destroy(d->rng); /* stops its loop work before the transport goes */
    virtio_mmio_destroy(d->v.t);
    event_loop_destroy(loop);
    fake_mem_free(&d->mem);
    free(d);
}

static void test_no_interrupt_flag(void **state) {
    struct drv *d = *state;
    full_init(d, F_V1);
    vdrv_put16(&d->v, AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
    vdrv_set_desc(&d->v, 0, 0, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
    vdrv_post(&d->v, 0, 0);
    vdrv_notify(&d->v, 0);
    assert_int_equal(vdrv_used_idx(&d->v, 0), 1);
    assert_false(d->irq_level);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
}

static void test_chained(void **state) {
    struct drv *d = *state;
    full_init(d, F_V1);
    memset(host(d, BUF), 0, 0x1000);
    vdrv_set_desc(&d->v, 0, 3, BUF, 16, VIRTQ_DESC_F_NEXT, 5);                                 /* readable */
    vdrv_set_desc(&d->v, 0, 5, BUF + 0x100, 10, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);    /* writable */
    vdrv_set_desc(&d->v, 0, 1, BUF + 0x200, 20, VIRTQ_DESC_F_WRITE, 0);                        /* writable, end */
    vdrv_post(&d->v, 0, 3);
    vdrv_notify(&d->v, 0);
    assert_int_equal(vdrv_used_idx(&d->v, 0), 1);
    assert_int_equal(vdrv_used_id(&d->v, 0, 0), 3);
    assert_int_equal(vdrv_used_len(&d->v, 0, 0), 30);
    assert_true(all_zero(host(d, BUF), 16)); /* readable part untouched */
    assert_false(all_zero(host(d, BUF + 0x100), 10));
    assert_true(all_zero(host(d, BUF + 0x10a), 0xf6));
    assert_false(all_zero(host(d, BUF + 0x200), 20));
    assert_false(vdrv_broken(&d->v));

    /* A readable buffer after a writable one breaks the device. */
    vdrv_set_desc(&d->v, 0, 0, BUF, 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
    vdrv_set_desc(&d->v, 0, 2, BUF + 0x100, 16, 0, 0);
    vdrv_post(&d->v, 0, 0);
    vdrv_notify(&d->v, 0);
    assert_int_equal(vdrv_used_idx(&d->v, 0), 1);
    assert_true(vdrv_broken(&d->v));
    assert_true(vdrv_rd(&d->v, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
    assert_true(d->irq_level);
}

static void test_indirect(void **state) {
    struct drv *d = *state;
    full_init(d, F_V1 | F_INDIRECT);
    memset(host(d, BUF), 0, 0x1000);
    vdrv_desc_at(&d->v, TABLE, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 2);
    vdrv_desc_at(&d->v, TABLE, 2, BUF + 0x100, 32, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
    vdrv_desc_at(&d->v, TABLE, 1, BUF + 0x200, 48, VIRTQ_DESC_F_WRITE, 0);
    vdrv_set_desc(&d->v, 0, 4, TABLE, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
    vdrv_post(&d->v, 0, 4);
    vdrv_notify(&d->v, 0);
    assert_int_equal(vdrv_used_idx(&d->v, 0), 1);
    assert_int_equal(vdrv_used_id(&d->v, 0, 0), 4);
    assert_int_equal(vdrv_used_len(&d->v, 0, 0), 80);
    assert_true(all_zero(host(d, BUF), 8));
    assert_false(all_zero(host(d, BUF + 0x100), 32));
    assert_false(all_zero(host(d, BUF + 0x200), 48));
    assert_false(vdrv_broken(&d->v));

    /* A direct descriptor chained to an indirect one is fine too. */
    vdrv_set_desc(&d->v, 0, 0, BUF + 0x300, 4, VIRTQ_DESC_F_NEXT, 1);
    vdrv_set_desc(&d->v, 0, 1, TABLE, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
    vdrv_post(&d->v, 0, 0);
    vdrv_notify(&d->v, 0);
    assert_int_equal(vdrv_used_idx(&d->v, 0), 2);
    assert_int_equal(vdrv_used_len(&d->v, 0, 1), 80);
    assert_false(vdrv_broken(&d->v));
}

/* Each case breaks a fresh device with one bad chain posted at descriptor 0. */
static void expect_broken_after(struct drv *d, void (*build)(struct drv *d)) {
    full_init(d, F_V1 | F_INDIRECT | F_EVIDX);
    memset(host(d, TABLE), 0, 0x1000);
    d->irq_raises = 0;
    build(d);
    vdrv_notify(&d->v, 0);
    assert_true(vdrv_broken(&d->v));
    assert_int_equal(vdrv_used_idx(&d->v, 0), 0);
    assert_true(vdrv_rd(&d->v, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
    assert_true(d->irq_level);
    assert_int_equal(d->irq_raises, 1);
    /* Once broken the device ignores notifications. */
    vdrv_set_desc(&d->v, 0, 7, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
    vdrv_post(&d->v, 0, 7);
    vdrv_notify(&d->v, 0);
    assert_int_equal(vdrv_used_idx(&d->v, 0), 0);
    /* The driver recovers by resetting. */
    vdrv_wr(&d->v, VIRTIO_MMIO_STATUS, 0);
    assert_false(vdrv_broken(&d->v));
    assert_false(d->irq_level);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    full_init(d, F_V1);
    vdrv_set_desc(&d->v, 0, 0, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
    vdrv_post(&d->v, 0, 0);
    vdrv_notify(&d->v, 0);
    assert_int_equal(vdrv_used_idx(&d->v, 0), 1);
    assert_int_equal(vdrv_used_len(&d->v, 0, 0), 8);
    assert_false(vdrv_broken(&d->v));
}

static void build_loop(struct drv *d) {
    vdrv_set_desc(&d->v, 0, 0, BUF, 8, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
    vdrv_set_desc(&d->v, 0, 1, BUF, 8, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 0);
    vdrv_post(&d->v, 0, 0);
}
static void build_self_loop(struct drv *d) {
    vdrv_set_desc(&d->v, 0, 0, BUF, 8, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 0);
    vdrv_post(&d->v, 0, 0);
}
static void build_head_out_of_range(struct drv *d) { vdrv_post(&d->v, 0, 200); }
static void build_next_out_of_range(struct drv *d) {
    vdrv_set_desc(&d->v, 0, 0, BUF, 8, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, QSIZE);
    vdrv_post(&d->v, 0, 0);
}
static void build_buffer_out_of_ram(struct drv *d) {
    vdrv_set_desc(&d->v, 0, 0, 0x1000, 64, VIRTQ_DESC_F_WRITE, 0);
    vdrv_post(&d->v, 0, 0);
}
static void build_buffer_straddles_ram_end(struct drv *d) {
    vdrv_set_desc(&d->v, 0, 0, MEM_BASE + MEM_SIZE - 8, 64, VIRTQ_DESC_F_WRITE, 0);
    vdrv_post(&d->v, 0, 0);
}
static void build_buffer_wraps(struct drv *d) {
    vdrv_set_desc(&d->v, 0, 0, ~0ull - 4, 64, VIRTQ_DESC_F_WRITE, 0);
    vdrv_post(&d->v, 0, 0);
}
static void build_indirect_loop(struct drv *d) {
    vdrv_desc_at(&d->v, TABLE, 0, BUF, 8, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
    vdrv_desc_at(&d->v, TABLE, 1, BUF, 8, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 0);
    vdrv_set_desc(&d->v, 0, 0, TABLE, 32, VIRTQ_DESC_F_INDIRECT, 0);
    vdrv_post(&d->v, 0, 0);
}
static void build_indirect_next_out_of_table(struct drv *d) {
    vdrv_desc_at(&d->v, TABLE, 0, BUF, 8, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
    vdrv_desc_at(&d->v, TABLE, 2, BUF, 8, VIRTQ_DESC_F_WRITE, 0); /* present, but outside the 2-entry table */
    vdrv_set_desc(&d->v, 0, 0, TABLE, 32, VIRTQ_DESC_F_INDIRECT, 0);
    vdrv_post(&d->v, 0, 0);
}
static void build_nested_indirect(struct drv *d) {
    vdrv_desc_at(&d->v, TABLE, 0, TABLE + 0x100, 16, VIRTQ_DESC_F_INDIRECT, 0);
    vdrv_desc_at(&d->v, TABLE + 0x100, 0, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
    vdrv_set_desc(&d->v, 0, 0, TABLE, 16, VIRTQ_DESC_F_INDIRECT, 0);
    vdrv_post(&d->v, 0, 0);
}
static void build_indirect_bad_len(struct drv *d) {
    vdrv_desc_at(&d->v, TABLE, 0, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
    vdrv_set_desc(&d->v, 0, 0, TABLE, 24, VIRTQ_DESC_F_INDIRECT, 0);
    vdrv_post(&d->v, 0, 0);
}
static void build_indirect_zero_len(struct drv *d) {
    vdrv_set_desc(&d->v, 0, 0, TABLE, 0, VIRTQ_DESC_F_INDIRECT, 0);
    vdrv_post(&d->v, 0, 0);
}
static void build_indirect_huge(struct drv *d) {
    vdrv_set_desc(&d->v, 0, 0, TABLE, 16 * 2048, VIRTQ_DESC_F_INDIRECT, 0);
    vdrv_post(&d->v, 0, 0);
}
static void build_indirect_table_out_of_ram(struct drv *d) {
    vdrv_set_desc(&d->v, 0, 0, 0x2000, 32, VIRTQ_DESC_F_INDIRECT, 0);
    vdrv_post(&d->v, 0, 0);
}
static void build_indirect_with_next(struct drv *d) {
    vdrv_desc_at(&d->v, TABLE, 0, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
    vdrv_set_desc(&d->v, 0, 0, TABLE, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
    vdrv_set_desc(&d->v, 0, 1, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
    vdrv_post(&d->v, 0, 0);
}
static void build_avail_idx_jump(struct drv *d) {
    vdrv_set_desc(&d->v, 0, 0, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
    vdrv_post(&d->v, 0, 0);
    d->v.q[0].avail_idx = 100;
    vdrv_put16(&d->v, AVAIL + 2, d->v.q[0].avail_idx);
}

static void test_desc_loop(void **s) {
    expect_broken_after(*s, build_loop);
    expect_broken_after(*s, build_self_loop);
}
static void test_index_out_of_range(void **s) {
    expect_broken_after(*s, build_head_out_of_range);
    expect_broken_after(*s, build_next_out_of_range);
}
static void test_buffer_out_of_range(void **s) {
    expect_broken_after(*s, build_buffer_out_of_ram);
    expect_broken_after(*s, build_buffer_straddles_ram_end);
    expect_broken_after(*s, build_buffer_wraps);
}
static void test_bad_indirect(void **s) {
    expect_broken_after(*s, build_indirect_loop);
    expect_broken_after(*s, build_indirect_next_out_of_table);
    expect_broken_after(*s, build_nested_indirect);
    expect_broken_after(*s, build_indirect_bad_len);
    expect_broken_after(*s, build_indirect_zero_len);
    expect_broken_after(*s, build_indirect_huge);
    expect_broken_after(*s, build_indirect_table_out_of_ram);
    expect_broken_after(*s, build_indirect_with_next);
}
static void test_avail_idx_jump(void **s) { expect_broken_after(*s, build_avail_idx_jump); }

static void test_ring_out_of_ram(void **state) {
    struct drv *d = *state;
    assert_true(vdrv_negotiate(&d->v, F_V1) & VIRTIO_STATUS_FEATURES_OK);
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_SEL, 0);
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x1000); /* not RAM */
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)AVAIL);
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)USED);
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_READY, 1);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_QUEUE_READY), 0);
    assert_true(vdrv_broken(&d->v));
    /* Used ring straddling the end of RAM. */
    vdrv_wr(&d->v, VIRTIO_MMIO_STATUS, 0);
    assert_true(vdrv_negotiate(&d->v, F_V1) & VIRTIO_STATUS_FEATURES_OK);
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)DESC);
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)AVAIL);
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)(MEM_BASE + MEM_SIZE - 16));
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_READY, 1);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_QUEUE_READY), 0);
    assert_true(vdrv_broken(&d->v));
    /* Misaligned descriptor table. */
    vdrv_wr(&d->v, VIRTIO_MMIO_STATUS, 0);
    assert_true(vdrv_negotiate(&d->v, F_V1) & VIRTIO_STATUS_FEATURES_OK);
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)DESC + 8);
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)AVAIL);
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)USED);
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_READY, 1);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_QUEUE_READY), 0);
    assert_true(vdrv_broken(&d->v));
}

static void test_queue_size(void **state) {
    struct drv *d = *state;
    static const uint32_t bad[] = {0, 3, 6, 100, 255, 512, 1024, 65536, 0xffffffffu};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_true(vdrv_negotiate(&d->v, F_V1) & VIRTIO_STATUS_FEATURES_OK);
        setup_queue(d, bad[i]);
        assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_QUEUE_READY), 0);
        vdrv_driver_ok(&d->v);
        vdrv_notify(&d->v, 0); /* harmless */
        assert_false(vdrv_broken(&d->v));
    }
    static const uint32_t good[] = {1, 2, 64, 256};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_true(vdrv_negotiate(&d->v, F_V1) & VIRTIO_STATUS_FEATURES_OK);
        setup_queue(d, good[i]);
        assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_QUEUE_READY), 1);
        vdrv_driver_ok(&d->v);
        vdrv_set_desc(&d->v, 0, 0, BUF, 4, VIRTQ_DESC_F_WRITE, 0);
        vdrv_post(&d->v, 0, 0);
        vdrv_notify(&d->v, 0);
        assert_int_equal(vdrv_used_idx(&d->v, 0), 1);
        assert_false(vdrv_broken(&d->v));
    }
    /* The queue that does not exist cannot be made ready. */
    assert_true(vdrv_negotiate(&d->v, F_V1) & VIRTIO_STATUS_FEATURES_OK);
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_SEL, 1);
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_NUM, 8);
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_READY, 1);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_QUEUE_READY), 0);
    /* Queue setup before FEATURES_OK is refused. */
    vdrv_wr(&d->v, VIRTIO_MMIO_STATUS, 0);
    vdrv_wr(&d->v, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    setup_queue(d, QSIZE);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_QUEUE_READY), 0);
}

static void test_notify_before_driver_ok(void **state) {
    struct drv *d = *state;
    assert_true(vdrv_negotiate(&d->v, F_V1) & VIRTIO_STATUS_FEATURES_OK);
    setup_queue(d, QSIZE);
    vdrv_set_desc(&d->v, 0, 0, BUF, 16, VIRTQ_DESC_F_WRITE, 0);
    vdrv_post(&d->v, 0, 0);
    vdrv_notify(&d->v, 0);
    assert_int_equal(vdrv_used_idx(&d->v, 0), 0);
    assert_false(d->irq_level);
    vdrv_driver_ok(&d->v);
    vdrv_notify(&d->v, 0);
    assert_int_equal(vdrv_used_idx(&d->v, 0), 1);
    assert_int_equal(vdrv_used_len(&d->v, 0, 0), 16);
    /* Notifying a queue that does not exist does nothing. */
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_NOTIFY, 5);
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_NOTIFY, 0xffffffffu);
    assert_false(vdrv_broken(&d->v));
}

static void test_event_idx(void **state) {
    struct drv *d = *state;
    full_init(d, F_V1 | F_EVIDX);
    /* used_event = 5: the driver wants no interrupt before entry 5. */
    vdrv_set_used_event(&d->v, 0, 5);
    vdrv_set_desc(&d->v, 0, 0, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
    vdrv_post(&d->v, 0, 0);
    vdrv_notify(&d->v, 0);
    assert_int_equal(vdrv_used_idx(&d->v, 0), 1);
    assert_false(d->irq_level);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    /* The device asks to be notified at the next avail entry. */
    assert_int_equal(vdrv_avail_event(&d->v, 0), 1);
    /* used_event = 1: the next used entry (index 1) interrupts. */
    vdrv_set_used_event(&d->v, 0, 1);
    vdrv_post(&d->v, 0, 0);
    vdrv_notify(&d->v, 0);
    assert_int_equal(vdrv_used_idx(&d->v, 0), 2);
    assert_true(d->irq_level);
    assert_int_equal(vdrv_avail_event(&d->v, 0), 2);
    vdrv_wr(&d->v, VIRTIO_MMIO_INTERRUPT_ACK, 1);
    assert_false(d->irq_level);
    /* A batch of 4 crossing used_event = 4 interrupts once. */
    vdrv_set_used_event(&d->v, 0, 4);
    for (int i = 0; i < 4; i++) vdrv_post(&d->v, 0, 0);
    vdrv_notify(&d->v, 0);
    assert_int_equal(vdrv_used_idx(&d->v, 0), 6);
    assert_true(d->irq_level);
    vdrv_wr(&d->v, VIRTIO_MMIO_INTERRUPT_ACK, 1);
    /* A batch not reaching used_event does not. */
    vdrv_set_used_event(&d->v, 0, 20);
    for (int i = 0; i < 3; i++) vdrv_post(&d->v, 0, 0);
    vdrv_notify(&d->v, 0);
    assert_int_equal(vdrv_used_idx(&d->v, 0), 9);
    assert_false(d->irq_level);
    /* With event index the flags field is ignored. */
    vdrv_put16(&d->v, AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
    vdrv_set_used_event(&d->v, 0, 9);
    vdrv_post(&d->v, 0, 0);
    vdrv_notify(&d->v, 0);
    assert_true(d->irq_level);
}

static void test_bad_registers(void **state) {
    struct drv *d = *state;
    static const unsigned sizes[] = {0, 1, 2, 3, 4, 5, 8, 16, 0xffffffffu};
    /* Before and after init: every offset and size reads without harm. */
    for (int pass = 0; pass < 2; pass++) {
        for (uint64_t off = 0; off < 0x1000; off++)
            for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
                uint64_t v = virtio_mmio_ops.read(d->v.t, off, sizes[s]);
                if (sizes[s] != 4 && off < VIRTIO_MMIO_CONFIG) assert_int_equal(v, 0);
                if (off < VIRTIO_MMIO_CONFIG && (off & 3)) assert_int_equal(v, 0);
            }
        assert_int_equal(virtio_mmio_ops.read(d->v.t, ~0ull, 4), 0);
        assert_int_equal(virtio_mmio_ops.read(d->v.t, 1ull << 40, 4), 0);
        full_init(d, F_V1);
    }
    /* Narrow, wide or misaligned writes to registers are ignored. */
    virtio_mmio_ops.write(d->v.t, VIRTIO_MMIO_STATUS, 0, 1);
    virtio_mmio_ops.write(d->v.t, VIRTIO_MMIO_STATUS, 0, 2);
    virtio_mmio_ops.write(d->v.t, VIRTIO_MMIO_STATUS, 0, 8);
    virtio_mmio_ops.write(d->v.t, VIRTIO_MMIO_STATUS + 1, 0, 4);
    virtio_mmio_ops.write(d->v.t, VIRTIO_MMIO_STATUS, 0, 3);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_STATUS), 0xf);
    assert_int_equal(virtio_mmio_ops.read(d->v.t, VIRTIO_MMIO_MAGIC_VALUE, 2), 0);
    assert_int_equal(virtio_mmio_ops.read(d->v.t, VIRTIO_MMIO_MAGIC_VALUE, 8), 0);
    /* Read-only registers ignore writes. */
    vdrv_wr(&d->v, VIRTIO_MMIO_MAGIC_VALUE, 0);
    vdrv_wr(&d->v, VIRTIO_MMIO_INTERRUPT_STATUS, 3);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_MAGIC_VALUE), VIRTIO_MMIO_MAGIC);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    /* Queue addresses are frozen while the queue is ready. */
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x1000);
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_NUM, 2);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_QUEUE_DESC_LOW), (uint32_t)DESC);
    /* Garbage everywhere (except Status and the queue registers, which
     * would legitimately reset or reconfigure) leaves the device working. */
    srand(1234);
    for (int i = 0; i < 20000; i++) {
        uint64_t off = (uint64_t)rand() % 0x1100;
        if (off >= VIRTIO_MMIO_QUEUE_SEL && off < VIRTIO_MMIO_QUEUE_NOTIFY) continue;
        if ((off & ~3ull) == VIRTIO_MMIO_STATUS || (off & ~3ull) == VIRTIO_MMIO_QUEUE_NOTIFY) continue;
        if (off >= VIRTIO_MMIO_QUEUE_DESC_LOW && off < VIRTIO_MMIO_SHM_SEL) continue;
        virtio_mmio_ops.write(d->v.t, off, ((uint64_t)rand() << 32) | (uint64_t)rand(), sizes[rand() % 9]);
    }
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_SEL, 0);
    vdrv_wr(&d->v, VIRTIO_MMIO_INTERRUPT_ACK, 3);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_STATUS), 0xf);
    vdrv_set_desc(&d->v, 0, 0, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
    vdrv_post(&d->v, 0, 0);
    vdrv_notify(&d->v, 0);
    assert_int_equal(vdrv_used_idx(&d->v, 0), 1);
    assert_true(d->irq_level);
}

static void test_reset_mid_use(void **state) {
    struct drv *d = *state;
    full_init(d, F_V1 | F_EVIDX | F_INDIRECT);
    vdrv_set_desc(&d->v, 0, 0, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
    vdrv_post(&d->v, 0, 0);
    vdrv_notify(&d->v, 0);
    vdrv_post(&d->v, 0, 0); /* posted but never notified */
    assert_true(d->irq_level);
    vdrv_wr(&d->v, VIRTIO_MMIO_STATUS, 0);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_STATUS), 0);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    assert_false(d->irq_level);
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_SEL, 0);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_QUEUE_READY), 0);
    assert_int_equal(virtio_mmio_driver_features(d->v.t), 0);
    vdrv_notify(&d->v, 0); /* nothing happens after reset */
    assert_int_equal(vdrv_used_idx(&d->v, 0), 1);
    /* Fresh start with fresh rings: indices restart at 0. */
    full_init(d, F_V1);
    vdrv_set_desc(&d->v, 0, 2, BUF, 12, VIRTQ_DESC_F_WRITE, 0);
    vdrv_post(&d->v, 0, 2);
    vdrv_notify(&d->v, 0);
    assert_int_equal(vdrv_used_idx(&d->v, 0), 1);
    assert_int_equal(vdrv_used_id(&d->v, 0, 0), 2);
    assert_int_equal(vdrv_used_len(&d->v, 0, 0), 12);

    /* Disabling the queue (QueueReady 0) and re-enabling it restarts it. */
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_READY, 0);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_QUEUE_READY), 0);
    vdrv_notify(&d->v, 0);
    memset(host(d, DESC), 0, 0x4000);
    d->v.q[0].avail_idx = 0;
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_READY, 1);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_QUEUE_READY), 1);
    vdrv_set_desc(&d->v, 0, 1, BUF, 4, VIRTQ_DESC_F_WRITE, 0);
    vdrv_post(&d->v, 0, 1);
    vdrv_notify(&d->v, 0);
    assert_int_equal(vdrv_used_idx(&d->v, 0), 1);
    assert_int_equal(vdrv_used_id(&d->v, 0, 0), 1);
}

/* The virtqueue layer on its own, without a transport. */
static void test_virtqueue_direct(void **state) {
    struct drv *d = *state;
    struct guest_mem_ops m = fake_mem_ops(&d->mem);
    struct virtq q;
    virtq_reset(&q);
    q.num = QSIZE;
    q.desc = DESC, q.avail = AVAIL, q.used = USED;
    memset(host(d, DESC), 0, 0x4000);
    d->v.q[0] = (struct vdrv_queue){.desc = DESC, .avail = AVAIL, .used = USED, .size = QSIZE}; /* no transport */
    assert_int_equal(virtq_start(&q, &m), VIRTQ_OK);
    struct virtq_chain *c = malloc(sizeof *c);
    assert_non_null(c);
    assert_int_equal(virtq_pop(&q, &m, c), 0);
    vdrv_set_desc(&d->v, 0, 0, BUF, 10, VIRTQ_DESC_F_NEXT, 1);
    vdrv_set_desc(&d->v, 0, 1, BUF + 100, 20, VIRTQ_DESC_F_WRITE, 0);
    vdrv_post(&d->v, 0, 0);
    assert_int_equal(virtq_pop(&q, &m, c), 1);
    assert_int_equal(c->head, 0);
    assert_int_equal(c->nseg, 2);
    assert_int_equal(c->nread, 1);
    assert_int_equal(c->read_len, 10);
    assert_int_equal(c->write_len, 20);
    assert_int_equal(c->seg[1].gpa, BUF + 100);
    assert_true(c->seg[1].writable);
    assert_true(virtq_chain_write(c, &m, 5, "abcdefghij", 10));
    assert_memory_equal(host(d, BUF + 105), "abcdefghij", 10);
    assert_int_equal(virtq_pop(&q, &m, c), 0);
    assert_int_equal(virtq_push(&q, &m, 0, 7), VIRTQ_OK);
    assert_int_equal(virtq_push(&q, &m, QSIZE, 7), VIRTQ_ERR_USED_ID);
    bool irq;
    assert_int_equal(virtq_need_interrupt(&q, &m, &irq), VIRTQ_OK);
    assert_true(irq);
    assert_int_equal(virtq_need_interrupt(&q, &m, &irq), VIRTQ_OK);
    assert_false(irq); /* nothing new */
    /* A maximal indirect table of 1024 entries is accepted. */
    for (unsigned i = 0; i < VIRTQ_MAX_SEGS; i++)
        vdrv_desc_at(&d->v, MEM_BASE + 0x20000, i, BUF, 1,
                     VIRTQ_DESC_F_WRITE | (i + 1 < VIRTQ_MAX_SEGS ? VIRTQ_DESC_F_NEXT : 0), (uint16_t)(i + 1));
    vdrv_set_desc(&d->v, 0, 2, MEM_BASE + 0x20000, 16 * VIRTQ_MAX_SEGS, VIRTQ_DESC_F_INDIRECT, 0);
    vdrv_post(&d->v, 0, 2);
    assert_int_equal(virtq_pop(&q, &m, c), 1);
    assert_int_equal(c->nseg, VIRTQ_MAX_SEGS);
    assert_int_equal(c->write_len, VIRTQ_MAX_SEGS);
    for (int e = 0; e >= VIRTQ_ERR_ALIGN; e--) assert_non_null(virtq_strerror(e));
    assert_false(virtq_size_valid(0));
    assert_false(virtq_size_valid(2048));
    assert_true(virtq_size_valid(1024));
    free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_probe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feature_negotiation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rng_basic, setup, teardown),
        cmocka_unit_test(test_rng_on_event_loop),
        cmocka_unit_test_setup_teardown(test_no_interrupt_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chained, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indirect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_desc_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buffer_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_indirect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_avail_idx_jump, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_out_of_ram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_before_driver_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_idx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_registers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_mid_use, setup, teardown),
        cmocka_unit_test_setup_teardown(test_virtqueue_direct, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
