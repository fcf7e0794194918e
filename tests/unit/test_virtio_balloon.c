/* Unit tests of virtio-balloon over a real p2m and machine-memory pool: a
 * small driver model (as in test_virtio.c) negotiates, sets up the queues
 * and posts PFN arrays, stats buffers and free page reports; the tests
 * check what comes back to the pool, what the guest then reads, and that
 * malformed input is ignored or breaks only the device. No event loop:
 * the device works on the notifying thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dev/virtio_balloon.h"
#include "dev/virtio_mmio.h"
#include "monitor/machine_memory.h"
#include "vm/p2m.h"
#include "virtio_driver.h"

#define MiB (1024ull * 1024)
#define RAM_BASE 0x80000000ull
#define RAM_SIZE (8 * MiB)
#define QSIZE 8
#define RING(q) (RAM_BASE + 0x10000 * (uint64_t)(q)) /* desc +0, avail +0x1000, used +0x2000 */
#define BUF (RAM_BASE + 0x100000)
#define PAGES (RAM_BASE + 4 * MiB) /* guest pages the tests give away */
#define PFN(gpa) ((uint32_t)((gpa) >> 12))

#define F_V1 (1ull << VIRTIO_F_VERSION_1)
#define F_STATS (1ull << VIRTIO_BALLOON_F_STATS_VQ)
#define F_OOM (1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM)
#define F_REPORT (1ull << VIRTIO_BALLOON_F_REPORTING)
#define F_ALL (F_V1 | F_STATS | F_OOM | F_REPORT)

#define MAX_RANGES 8

struct drv {
    struct machine_memory mm;
    struct frame_source fs;
    struct p2m m;
    struct virtio_balloon *b;
    struct vdrv v;
    bool irq_level;
    /* What the device asked of guest RAM. */
    uint64_t frames_asked;
    unsigned nranges;
    struct { uint64_t gpa, len; } range[MAX_RANGES];
};

static bool mem_read(void *ctx, uint64_t gpa, void *buf, size_t n) { return p2m_read(ctx, gpa, buf, n); }
static bool mem_write(void *ctx, uint64_t gpa, const void *buf, size_t n) { return p2m_write(ctx, gpa, buf, n); }

/* Guest RAM as the VM wires it (to the p2m), recording the requests and
 * holding the device to naming only RAM. */
static uint64_t ram_drop_frames(void *ctx, const uint64_t *gpa, size_t n) {
    struct drv *d = ctx;
    for (size_t i = 0; i < n; i++) {
        assert_true(gpa[i] >= RAM_BASE && gpa[i] < RAM_BASE + RAM_SIZE);
        assert_int_equal(gpa[i] & 0xfff, 0);
    }
    d->frames_asked += n;
    return p2m_drop_frames(&d->m, gpa, n);
}

static uint64_t ram_drop_range(void *ctx, uint64_t gpa, uint64_t len) {
    struct drv *d = ctx;
    assert_true(gpa >= RAM_BASE && len > 0 && len <= RAM_BASE + RAM_SIZE - gpa);
    if (d->nranges < MAX_RANGES) {
        d->range[d->nranges].gpa = gpa;
        d->range[d->nranges].len = len;
    }
    d->nranges++;
    return p2m_drop_range(&d->m, gpa, len);
}

static struct guest_ram_ops ram_ops(struct drv *d) {
    return (struct guest_ram_ops){RAM_BASE, RAM_SIZE, ram_drop_frames, ram_drop_range, d};
}

static void irq_set(void *ctx, unsigned irq, bool level) {
    (void)irq;
    ((struct drv *)ctx)->irq_level = level;
}

static void poke(struct drv *d, uint64_t gpa, const void *p, size_t n) { vdrv_poke(&d->v, gpa, p, n); }

static int setup(void **state) {
    struct drv *d = calloc(1, sizeof *d);
    if (!d || !machine_memory_init(&d->mm, 32 * MiB)) return -1;
    d->fs = machine_memory_source(&d->mm);
    if (!p2m_init(&d->m, RAM_BASE, RAM_SIZE, &d->fs)) return -1;
    d->b = virtio_balloon_create(ram_ops(d), NULL);
    d->v.mem = (struct guest_mem_ops){mem_read, mem_write, &d->m};
    d->v.t = virtio_mmio_create(&virtio_balloon_ops, d->b, d->v.mem, (struct irq_line){irq_set, d, 3});
    if (!d->b || !d->v.t) return -1;
    virtio_balloon_attach(d->b, d->v.t);
    *state = d;
    return 0;
}

static int teardown(void **state) {
    struct drv *d = *state;
    virtio_balloon_destroy(d->b);
    virtio_mmio_destroy(d->v.t);
    p2m_destroy(&d->m);
    machine_memory_destroy(&d->mm);
    free(d);
    return 0;
}

static void driver_ok(struct drv *d) {
    vdrv_driver_ok(&d->v);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_STATUS), 0xf);
}

/* The Linux driver's sequence: features, then every queue the features give
 * (without DRIVER_OK when `ok` is false). */
static void init_queues(struct drv *d, uint64_t features, bool ok) {
    assert_true(vdrv_negotiate(&d->v, features) & VIRTIO_STATUS_FEATURES_OK);
    unsigned nq = 2 + !!(features & F_STATS) + !!(features & F_REPORT);
    vdrv_zero(&d->v, BUF, 0x1000); /* back the buffer page now, so that it does not count later */
    for (unsigned q = 0; q < nq; q++) {
        vdrv_zero(&d->v, RING(q), 0x3000);
        vdrv_setup_queue(&d->v, q, QSIZE, RING(q), RING(q) + 0x1000, RING(q) + 0x2000);
        assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_QUEUE_READY), 1);
    }
    if (ok) driver_ok(d);
}

static void init(struct drv *d, uint64_t features) { init_queues(d, features, true); }

/* Posts one chain of buffers on queue q and notifies. */
static void post(struct drv *d, unsigned q, const struct vdrv_seg *s, unsigned n) {
    struct vdrv_queue *vq = &d->v.q[q];
    uint16_t head = vdrv_write_chain(&d->v, q, vq->next_desc, s, n);
    vq->next_desc = (uint16_t)((head + n) % QSIZE);
    vdrv_post(&d->v, q, head);
    vdrv_notify(&d->v, q);
}

/* Posts an array of PFNs on queue q (0 inflate, 1 deflate). */
static void send_pfns(struct drv *d, unsigned q, const uint32_t *pfn, unsigned n) {
    poke(d, BUF, pfn, 4ull * n);
    struct vdrv_seg s = {BUF, 4 * n, false};
    post(d, q, &s, 1);
}

static void write_pages(struct drv *d, uint64_t gpa, unsigned n, uint8_t byte) {
    uint8_t page[4096];
    memset(page, byte, sizeof page);
    for (unsigned i = 0; i < n; i++) poke(d, gpa + 4096ull * i, page, sizeof page);
}

static struct virtio_balloon_info info(struct drv *d) {
    struct virtio_balloon_info i;
    virtio_balloon_get_info(d->b, &i);
    return i;
}

static uint32_t config32(struct drv *d, uint64_t off) { return (uint32_t)vdrv_rd(&d->v, VIRTIO_MMIO_CONFIG + off); }

/* ---- tests ---- */

static void test_probe_and_config(void **state) {
    struct drv *d = *state;
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_BALLOON);
    vdrv_wr(&d->v, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    uint32_t f = (uint32_t)vdrv_rd(&d->v, VIRTIO_MMIO_DEVICE_FEATURES);
    assert_int_equal(f & 0xff, F_STATS | F_OOM | F_REPORT);
    assert_int_equal(config32(d, 0), 0);
    assert_int_equal(config32(d, 4), 0);

    /* The target reaches the config space, with a config interrupt once the driver is up. */
    uint32_t gen = (uint32_t)vdrv_rd(&d->v, VIRTIO_MMIO_CONFIG_GENERATION);
    virtio_balloon_set_target(d->b, 1000);
    assert_int_equal(config32(d, 0), 1000);
    assert_int_not_equal(vdrv_rd(&d->v, VIRTIO_MMIO_CONFIG_GENERATION), gen);
    init(d, F_ALL);
    virtio_balloon_set_target(d->b, 1234);
    assert_int_equal(config32(d, 0), 1234);
    assert_true(d->irq_level);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
    assert_int_equal(info(d).target_pages, 1234);
    /* Byte and halfword reads see little-endian fields. */
    assert_int_equal(virtio_mmio_ops.read(d->v.t, VIRTIO_MMIO_CONFIG + 1, 1), 1234 >> 8);
    assert_int_equal(virtio_mmio_ops.read(d->v.t, VIRTIO_MMIO_CONFIG + 14, 4), 0); /* runs off the end */

    /* The driver writes actual (also piecewise), never num_pages. */
    vdrv_wr(&d->v, VIRTIO_MMIO_CONFIG + 4, 77);
    assert_int_equal(config32(d, 4), 77);
    virtio_mmio_ops.write(d->v.t, VIRTIO_MMIO_CONFIG + 5, 1, 1);
    assert_int_equal(config32(d, 4), 77 + 256);
    assert_int_equal(info(d).actual_pages, 77 + 256);
    vdrv_wr(&d->v, VIRTIO_MMIO_CONFIG + 0, 5);
    assert_int_equal(config32(d, 0), 1234);
    /* Reset forgets actual, keeps the target. */
    vdrv_wr(&d->v, VIRTIO_MMIO_STATUS, 0);
    assert_int_equal(config32(d, 4), 0);
    assert_int_equal(config32(d, 0), 1234);
}

static void test_inflate_returns_frames_to_the_pool(void **state) {
    struct drv *d = *state;
    init(d, F_ALL);
    write_pages(d, PAGES, 16, 0xab);
    uint64_t backed = d->m.backed, free0 = machine_memory_free_frames(&d->mm);
    uint32_t pfn[16];
    for (unsigned i = 0; i < 16; i++) pfn[i] = PFN(PAGES) + i;
    send_pfns(d, 0, pfn, 16);
    assert_int_equal(vdrv_used_idx(&d->v, 0), 1);
    assert_int_equal(vdrv_used_len(&d->v, 0, 0), 0);
    assert_true(d->irq_level);
    assert_false(vdrv_broken(&d->v));
    assert_int_equal(d->m.backed, backed - 16);
    assert_int_equal(machine_memory_free_frames(&d->mm), free0 + 16);
    struct virtio_balloon_info i = info(d);
    assert_int_equal(i.inflated_pages, 16);
    assert_int_equal(i.freed_frames, 16);
    assert_int_equal(i.ignored_pages, 0);
    assert_int_equal(d->frames_asked, 16);
    /* The pages read as zeros now, and the rest of memory is untouched. */
    uint8_t b;
    assert_true(p2m_read(&d->m, PAGES + 5 * 4096 + 9, &b, 1));
    assert_int_equal(b, 0);
    /* Inflating pages that are not backed frees nothing and is fine. */
    send_pfns(d, 0, pfn, 4);
    assert_int_equal(vdrv_used_idx(&d->v, 0), 2);
    assert_int_equal(info(d).inflated_pages, 20);
    assert_int_equal(info(d).freed_frames, 16);
    assert_int_equal(machine_memory_free_frames(&d->mm), free0 + 16);
}

static void test_deflate_gives_demand_zero_pages(void **state) {
    struct drv *d = *state;
    init(d, F_ALL);
    write_pages(d, PAGES, 4, 0x5a);
    uint32_t pfn[4] = {PFN(PAGES), PFN(PAGES) + 1, PFN(PAGES) + 2, PFN(PAGES) + 3};
    send_pfns(d, 0, pfn, 4);
    uint64_t backed = d->m.backed;
    send_pfns(d, 1, pfn, 4);
    assert_int_equal(vdrv_used_idx(&d->v, 1), 1);
    assert_int_equal(info(d).deflated_pages, 4);
    assert_int_equal(d->frames_asked, 4); /* the inflation's only: deflating drops nothing */
    assert_int_equal(d->m.backed, backed); /* nothing is backed until the guest writes */
    uint8_t v = 7;
    poke(d, PAGES + 4096 + 1, &v, 1);
    assert_int_equal(d->m.backed, backed + 1);
    uint8_t page[4096];
    assert_true(p2m_read(&d->m, PAGES + 4096, page, sizeof page));
    assert_int_equal(page[0], 0);
    assert_int_equal(page[1], 7);
    assert_int_equal(page[2], 0);
}

static void test_pfns_outside_ram_are_ignored(void **state) {
    struct drv *d = *state;
    init(d, F_ALL);
    write_pages(d, PAGES, 2, 1);
    uint64_t free0 = machine_memory_free_frames(&d->mm);
    uint32_t pfn[] = {0, 0xffffffffu, PFN(RAM_BASE) - 1, PFN(RAM_BASE + RAM_SIZE), PFN(PAGES), PFN(PAGES) + 1};
    send_pfns(d, 0, pfn, 6);
    assert_false(vdrv_broken(&d->v));
    assert_int_equal(vdrv_used_idx(&d->v, 0), 1);
    struct virtio_balloon_info i = info(d);
    assert_int_equal(i.ignored_pages, 4);
    assert_int_equal(i.inflated_pages, 2);
    assert_int_equal(d->frames_asked, 2);
    assert_int_equal(machine_memory_free_frames(&d->mm), free0 + 2);
    /* Bytes short of a whole PFN are ignored; a PFN may straddle two buffers. */
    write_pages(d, PAGES, 3, 1);
    uint32_t three[3] = {PFN(PAGES), PFN(PAGES) + 1, PFN(PAGES) + 2};
    poke(d, BUF, three, sizeof three);
    uint64_t backed = d->m.backed;
    struct vdrv_seg split[2] = {{BUF, 6, false}, {BUF + 6, 5, false}}; /* 11 bytes: 2 PFNs and 3 stray bytes */
    post(d, 0, split, 2);
    assert_int_equal(vdrv_used_idx(&d->v, 0), 2);
    assert_int_equal(info(d).inflated_pages, 4);
    assert_int_equal(d->m.backed, backed - 2);
    uint8_t b;
    assert_true(p2m_read(&d->m, PAGES + 2 * 4096, &b, 1));
    assert_int_equal(b, 1); /* the third PFN was not whole: its page stays */
    assert_false(vdrv_broken(&d->v));
}

static void test_pfn_array_outside_ram_breaks_the_device(void **state) {
    struct drv *d = *state;
    init(d, F_ALL);
    struct vdrv_seg s = {RAM_BASE + RAM_SIZE - 4, 8, false};
    post(d, 0, &s, 1);
    assert_true(vdrv_broken(&d->v));
    assert_int_equal(vdrv_used_idx(&d->v, 0), 0);
    /* The VM goes on: a reset and a new driver work again. */
    init(d, F_ALL);
    assert_false(vdrv_broken(&d->v));
}

static void test_free_page_reporting(void **state) {
    struct drv *d = *state;
    init(d, F_ALL);
    write_pages(d, PAGES, 64, 3);
    uint64_t backed = d->m.backed, free0 = machine_memory_free_frames(&d->mm);
    /* Linux posts each free range as a device-writable buffer on queue 3 (statsq is 2). */
    struct vdrv_seg r[] = {
        {PAGES, 16 * 4096, true},
        {PAGES + 32 * 4096 + 100, 4 * 4096, true},          /* partial pages at both ends: 3 whole ones */
        {RAM_BASE + RAM_SIZE - 4096, 1u << 20, true},      /* runs off the end of RAM */
        {0x1000, 0x10000, true},                           /* not RAM at all */
    };
    post(d, 3, r, 4);
    assert_false(vdrv_broken(&d->v));
    assert_int_equal(vdrv_used_idx(&d->v, 3), 1);
    assert_int_equal(vdrv_used_len(&d->v, 3, 0), 0);
    assert_int_equal(d->m.backed, backed - 19);
    assert_int_equal(machine_memory_free_frames(&d->mm), free0 + 19);
    struct virtio_balloon_info i = info(d);
    assert_int_equal(i.reported_frames, 19);
    assert_int_equal(i.reported_bytes, 16 * 4096 + 4 * 4096 + 4096);
    assert_int_equal(i.inflated_pages, 0);
    /* Ranges reach guest RAM clipped to it; one wholly outside not at all. */
    assert_int_equal(d->nranges, 3);
    assert_true(d->range[0].gpa == PAGES && d->range[0].len == 16 * 4096);
    assert_true(d->range[1].gpa == PAGES + 32 * 4096 + 100 && d->range[1].len == 4 * 4096);
    assert_true(d->range[2].gpa == RAM_BASE + RAM_SIZE - 4096 && d->range[2].len == 4096);
    assert_int_equal(d->frames_asked, 0);
    uint8_t b;
    assert_true(p2m_read(&d->m, PAGES + 32 * 4096, &b, 1));
    assert_int_equal(b, 3);
    assert_true(p2m_read(&d->m, PAGES + 33 * 4096, &b, 1));
    assert_int_equal(b, 0);
}

static void test_reporting_queue_follows_the_features(void **state) {
    struct drv *d = *state;
    /* Without STATS_VQ the drivers number the reporting queue 2. */
    init(d, F_V1 | F_REPORT);
    write_pages(d, PAGES, 8, 3);
    struct vdrv_seg r = {PAGES, 8 * 4096, true};
    post(d, 2, &r, 1);
    assert_int_equal(vdrv_used_idx(&d->v, 2), 1);
    assert_int_equal(info(d).reported_frames, 8);
    /* Without REPORTING, queue 3 does nothing. */
    init(d, F_V1 | F_STATS);
    write_pages(d, PAGES, 8, 3);
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_SEL, 3);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_QUEUE_READY), 0);
    assert_int_equal(info(d).reported_frames, 8);
}

static void put_stat(uint8_t *p, uint16_t tag, uint64_t val) {
    memcpy(p, &tag, 2);
    memcpy(p + 2, &val, 8);
}

static void test_stats(void **state) {
    struct drv *d = *state;
    init(d, F_ALL);
    assert_int_equal(info(d).stats_updated_ns, 0);
    uint8_t rec[50];
    put_stat(rec, VIRTIO_BALLOON_S_MEMFREE, 100 * MiB);
    put_stat(rec + 10, VIRTIO_BALLOON_S_MEMTOT, 250 * MiB);
    put_stat(rec + 20, 42, 1); /* a tag from the future */
    put_stat(rec + 30, VIRTIO_BALLOON_S_MINFLT, 12345);
    put_stat(rec + 40, VIRTIO_BALLOON_S_AVAIL, 120 * MiB);
    poke(d, BUF, rec, sizeof rec);
    struct vdrv_seg s = {BUF, sizeof rec - 3, false}; /* the last record is cut short */
    post(d, 2, &s, 1);
    /* The device keeps the buffer until it wants fresh figures. */
    assert_int_equal(vdrv_used_idx(&d->v, 2), 0);
    struct virtio_balloon_info i = info(d);
    assert_int_not_equal(i.stats_updated_ns, 0);
    assert_int_equal(i.stats_valid, (1u << VIRTIO_BALLOON_S_MEMFREE) | (1u << VIRTIO_BALLOON_S_MEMTOT) |
                                        (1u << VIRTIO_BALLOON_S_MINFLT));
    assert_int_equal(i.stats[VIRTIO_BALLOON_S_MEMFREE], 100 * MiB);
    assert_int_equal(i.stats[VIRTIO_BALLOON_S_MEMTOT], 250 * MiB);
    assert_int_equal(i.stats[VIRTIO_BALLOON_S_MINFLT], 12345);

    virtio_balloon_request_stats(d->b);
    assert_int_equal(vdrv_used_idx(&d->v, 2), 1);
    assert_int_equal(vdrv_used_len(&d->v, 2, 0), 0);
    assert_true(d->irq_level);
    virtio_balloon_request_stats(d->b); /* nothing held: nothing happens */
    assert_int_equal(vdrv_used_idx(&d->v, 2), 1);
    put_stat(rec, VIRTIO_BALLOON_S_MEMFREE, 90 * MiB);
    poke(d, BUF, rec, 10);
    s.len = 10;
    post(d, 2, &s, 1);
    assert_int_equal(info(d).stats[VIRTIO_BALLOON_S_MEMFREE], 90 * MiB);
    assert_int_equal(info(d).stats[VIRTIO_BALLOON_S_MEMTOT], 250 * MiB); /* kept from before */
    /* A second buffer while one is held: the held one goes back. */
    post(d, 2, &s, 1);
    assert_int_equal(vdrv_used_idx(&d->v, 2), 2);
    /* A stats buffer outside RAM breaks the device. */
    struct vdrv_seg bad = {RAM_BASE + RAM_SIZE, 10, false};
    post(d, 2, &bad, 1);
    assert_true(vdrv_broken(&d->v));
}

/* Linux primes the stats queue and notifies before it sets DRIVER_OK. */
static void test_stats_buffer_posted_before_driver_ok(void **state) {
    struct drv *d = *state;
    init_queues(d, F_ALL, false);
    uint8_t rec[10];
    put_stat(rec, VIRTIO_BALLOON_S_MEMTOT, 200 * MiB);
    poke(d, BUF, rec, sizeof rec);
    struct vdrv_seg s = {BUF, sizeof rec, false};
    post(d, 2, &s, 1); /* the notify is ignored: no DRIVER_OK yet */
    assert_int_equal(info(d).stats_updated_ns, 0);
    driver_ok(d);
    /* The first request for figures finds the buffer, reads it and hands it back. */
    virtio_balloon_request_stats(d->b);
    assert_int_equal(info(d).stats[VIRTIO_BALLOON_S_MEMTOT], 200 * MiB);
    assert_int_equal(vdrv_used_idx(&d->v, 2), 1);
    assert_true(d->irq_level);
}

/* An inflated frame is not handed to anyone else while a hart of the VM
 * may still be in the middle of an access through a stale translation. */
static void test_inflated_frame_waits_for_the_harts(void **state) {
    struct drv *d = *state;
    init(d, F_ALL);
    d->m.ncpus = 1;
    write_pages(d, PAGES, 8, 0xcc);
    uint64_t free0 = machine_memory_free_frames(&d->mm);
    uint8_t *old = p2m_frame(&d->m, PAGES, false, NULL);
    p2m_turn_begin(&d->m, 0); /* hart 0 is running */
    uint32_t pfn[8];
    for (unsigned i = 0; i < 8; i++) pfn[i] = PFN(PAGES) + i;
    send_pfns(d, 0, pfn, 8);
    assert_int_equal(vdrv_used_idx(&d->v, 0), 1);
    assert_int_equal(info(d).freed_frames, 8);
    assert_int_equal(p2m_releasing(&d->m), 8);
    assert_int_equal(machine_memory_free_frames(&d->mm), free0);
    /* Another VM allocating meanwhile gets other frames. */
    struct p2m other;
    assert_true(p2m_init(&other, RAM_BASE, RAM_SIZE, &d->fs));
    uint8_t v = 1;
    for (unsigned i = 0; i < 64; i++) {
        assert_true(p2m_write(&other, RAM_BASE + 4096ull * i, &v, 1));
        assert_ptr_not_equal(p2m_frame(&other, RAM_BASE + 4096ull * i, false, NULL), old);
    }
    assert_int_equal(old[100], 0xcc);
    p2m_turn_end(&d->m, 0);
    assert_int_equal(p2m_releasing(&d->m), 0);
    assert_int_equal(machine_memory_free_frames(&d->mm), free0 + 8 - 64);
    p2m_destroy(&other);
}

static void test_backend_options(void **state) {
    struct drv *d = *state;
    struct virtio_backend_env env = {.mem = {mem_read, mem_write, &d->m}, .loop = NULL, .ram = ram_ops(d)};
    struct virtio_backend be;
    char err[128];
    assert_false(virtio_balloon_backend_create("size=1", &env, &be, err, sizeof err));
    assert_non_null(strstr(err, "no options"));
    env.ram = (struct guest_ram_ops){0};
    assert_false(virtio_balloon_backend_create("", &env, &be, err, sizeof err));
    assert_non_null(strstr(err, "memory map"));
    env.ram = ram_ops(d);
    env.ram.drop_range = NULL;
    assert_false(virtio_balloon_backend_create("", &env, &be, err, sizeof err));
    assert_null(virtio_balloon_create(env.ram, NULL));
    env.ram = ram_ops(d);
    assert_true(virtio_balloon_backend_create("", &env, &be, err, sizeof err));
    assert_ptr_equal(be.ops, &virtio_balloon_ops);
    be.destroy(be.dev);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_probe_and_config),
        T(test_inflate_returns_frames_to_the_pool),
        T(test_deflate_gives_demand_zero_pages),
        T(test_pfns_outside_ram_are_ignored),
        T(test_pfn_array_outside_ram_breaks_the_device),
        T(test_free_page_reporting),
        T(test_reporting_queue_follows_the_features),
        T(test_stats),
        T(test_stats_buffer_posted_before_driver_ok),
        T(test_inflated_frame_waits_for_the_harts),
        T(test_backend_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
