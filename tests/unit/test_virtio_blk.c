/* Unit tests of the virtio block device behind the virtio-mmio transport.
 * As in test_virtio.c, a fake guest memory (a malloc'd buffer at
 * 0x80000000) stands in for the p2m and the test plays the guest's driver:
 * it builds request chains (header, data, status) in memory, notifies, and
 * checks the used ring, the status byte and the image file on the host. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dev/irq.h"
#include "dev/virtio_blk.h"
#include "dev/virtio_mmio.h"
#include "dev/virtqueue.h"
#include "io/event_loop.h"
#include "virtio_driver.h"

#define MEM_BASE 0x80000000ull
#define MEM_SIZE (8u << 20)
#define DESC (MEM_BASE + 0x1000)
#define AVAIL (MEM_BASE + 0x3000)
#define USED (MEM_BASE + 0x4000)
#define TABLE (MEM_BASE + 0x6000)
#define HDR (MEM_BASE + 0x8000)
#define STATUS (MEM_BASE + 0x8100)
#define RANGES (MEM_BASE + 0x8200)
#define DATA (MEM_BASE + 0x100000) /* up to 7 MiB */
#define QSIZE 16
#define IMG_SIZE (4u << 20)
#define IMG_SECTORS (IMG_SIZE / 512)

#define F_V1 (1ull << VIRTIO_F_VERSION_1)
#define F_EVIDX (1ull << VIRTIO_F_RING_EVENT_IDX)
#define F_INDIRECT (1ull << VIRTIO_F_RING_INDIRECT_DESC)
#define F_BLK ((1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_FLUSH))
#define F_DISCARD ((1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES))

/* ---- the driver model (see virtio_driver.h) ---- */
struct drv {
    struct fake_mem mem;
    struct vdrv v;
    struct event_loop *loop; /* NULL: requests are served inside notify */
    struct virtio_backend be;
    char path[64];
    unsigned irqs;
};

static void irq_set(void *ctx, unsigned irq, bool level) {
    struct drv *d = ctx;
    (void)irq;
    if (level) __atomic_add_fetch(&d->irqs, 1, __ATOMIC_RELAXED);
}

static uint8_t *host(struct drv *d, uint64_t gpa) { return fake_mem_host(&d->mem, gpa); }

static void full_init(struct drv *d, uint64_t features) {
    assert_true(vdrv_negotiate(&d->v, features) & VIRTIO_STATUS_FEATURES_OK);
    memset(host(d, DESC), 0, 0x4000);
    vdrv_setup_queue(&d->v, 0, QSIZE, DESC, AVAIL, USED);
    vdrv_driver_ok(&d->v);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_STATUS), 0xf);
}

/* Creates the device on d->path with "file=PATH" + extra; false (with the
 * message in err) if the constructor refused. */
static bool open_dev(struct drv *d, const char *extra, char *err, size_t errlen) {
    char opts[256];
    snprintf(opts, sizeof opts, "file=%s%s", d->path, extra);
    /* The device's view of memory may be starved (fake_mem_starve). */
    struct virtio_backend_env env = {.mem = fake_mem_starving_ops(&d->mem), .loop = d->loop};
    if (!virtio_blk_backend_create(opts, &env, &d->be, err, errlen)) return false;
    d->v.t = virtio_mmio_create(d->be.ops, d->be.dev, env.mem, (struct irq_line){irq_set, d, 3});
    assert_non_null(d->v.t);
    d->be.attach(d->be.dev, d->v.t);
    return true;
}

static void close_dev(struct drv *d) {
    if (!d->v.t) return;
    d->be.destroy(d->be.dev);
    virtio_mmio_destroy(d->v.t);
    d->v.t = NULL;
}

/* Closes the device and opens it again with other options, fully set up. */
static void reopen(struct drv *d, const char *extra, uint64_t features) {
    char err[256];
    close_dev(d);
    if (!open_dev(d, extra, err, sizeof err)) fail_msg("open: %s", err);
    full_init(d, features);
}

static void make_image(const char *path, off_t size) {
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, size), 0);
    close(fd);
}

static int setup_common(void **state, bool with_loop) {
    struct drv *d = calloc(1, sizeof *d);
    assert_non_null(d);
    fake_mem_init(&d->mem, MEM_BASE, MEM_SIZE);
    d->v.mem = fake_mem_ops(&d->mem);
    snprintf(d->path, sizeof d->path, "/tmp/rvisor-blk-test-XXXXXX");
    int fd = mkstemp(d->path);
    assert_true(fd >= 0);
    close(fd);
    make_image(d->path, IMG_SIZE);
    if (with_loop) {
        char err[128];
        d->loop = event_loop_create(err, sizeof err);
        assert_non_null(d->loop);
    }
    reopen(d, "", F_V1 | F_BLK | F_DISCARD);
    *state = d;
    return 0;
}

static int setup(void **state) { return setup_common(state, false); }
static int setup_loop(void **state) { return setup_common(state, true); }

static int teardown(void **state) {
    struct drv *d = *state;
    close_dev(d);
    if (d->loop) event_loop_destroy(d->loop);
    unlink(d->path);
    fake_mem_free(&d->mem);
    free(d);
    return 0;
}

/* ---- requests ---- */

/* Posts one chain (descriptors 0..n-1), notifies, and waits for it to come
 * back. Returns the used length, or -1 if it did not come back. */
static int64_t run_chain(struct drv *d, const struct vdrv_seg *s, unsigned n) {
    assert_true(n <= QSIZE);
    uint16_t before = vdrv_used_idx(&d->v, 0);
    vdrv_post(&d->v, 0, vdrv_write_chain(&d->v, 0, 0, s, n));
    vdrv_notify(&d->v, 0);
    /* With a loop the request completes on the loop thread. */
    for (int tries = 0; d->loop && vdrv_used_idx(&d->v, 0) == before && !vdrv_broken(&d->v) && tries < 5000; tries++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (vdrv_used_idx(&d->v, 0) == before) return -1;
    assert_int_equal(vdrv_used_idx(&d->v, 0), (uint16_t)(before + 1));
    assert_int_equal(vdrv_used_id(&d->v, 0, before), 0);
    return vdrv_used_len(&d->v, 0, before);
}

static void header(struct drv *d, uint32_t type, uint64_t sector) {
    memset(host(d, HDR), 0, 16);
    memcpy(host(d, HDR), &type, 4);
    memcpy(host(d, HDR + 8), &sector, 8);
    *host(d, STATUS) = 0xee;
}

/* A request of header, one data buffer (left out when len is 0) and status. */
static int64_t req(struct drv *d, uint32_t type, uint64_t sector, uint64_t data, uint32_t len, bool writable) {
    header(d, type, sector);
    struct vdrv_seg s[3];
    unsigned n = 0;
    s[n++] = (struct vdrv_seg){HDR, 16, false};
    if (len) s[n++] = (struct vdrv_seg){data, len, writable};
    s[n++] = (struct vdrv_seg){STATUS, 1, true};
    return run_chain(d, s, n);
}

static uint8_t status(struct drv *d) { return *host(d, STATUS); }

static void fill(uint8_t *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 9));
}

static void file_read(struct drv *d, off_t off, void *buf, size_t n) {
    int fd = open(d->path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, n, off), (ssize_t)n);
    close(fd);
}

/* ---- tests ---- */

static void test_probe(void **state) {
    struct drv *d = *state;
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_BLOCK);
    uint64_t f = vdrv_device_features(&d->v);
    assert_true((f & (F_BLK | F_DISCARD)) == (F_BLK | F_DISCARD));
    assert_false(f & (1ull << VIRTIO_BLK_F_RO));
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_SEL, 0);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_QUEUE_NUM_MAX), VIRTIO_BLK_QUEUE_SIZE);
    assert_int_equal(virtio_mmio_ops.read(d->v.t, VIRTIO_MMIO_CONFIG, 8), IMG_SECTORS);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_CONFIG), IMG_SECTORS);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_CONFIG + 4), 0);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_CONFIG + VIRTIO_BLK_CFG_SEG_MAX), VIRTIO_BLK_SEG_MAX);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_CONFIG + VIRTIO_BLK_CFG_BLK_SIZE), 512);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_CONFIG + VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS),
                     VIRTIO_BLK_MAX_DISCARD_SECTORS);
    assert_true(vdrv_rd(&d->v, VIRTIO_MMIO_CONFIG + VIRTIO_BLK_CFG_MAX_DISCARD_SEG) >= 1);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_CONFIG + VIRTIO_BLK_CFG_DISCARD_ALIGNMENT),
                     VIRTIO_BLK_DISCARD_ALIGNMENT);
    assert_int_equal(virtio_mmio_ops.read(d->v.t, VIRTIO_MMIO_CONFIG + VIRTIO_BLK_CFG_WRITE_ZEROES_MAY_UNMAP, 1), 1);
    /* Past the config space, and straddling its end: zeros, no crash. */
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_CONFIG + VIRTIO_BLK_CFG_SIZE), 0);
    assert_int_equal(virtio_mmio_ops.read(d->v.t, VIRTIO_MMIO_CONFIG + VIRTIO_BLK_CFG_SIZE - 2, 4), 0);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_CONFIG + 0xefc), 0);
    /* The config space is read-only. */
    vdrv_wr(&d->v, VIRTIO_MMIO_CONFIG, 5);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_CONFIG), IMG_SECTORS);
}

static void test_read_write(void **state) {
    struct drv *d = *state;
    fill(host(d, DATA), 8192, 1);
    assert_int_equal(req(d, VIRTIO_BLK_T_OUT, 10, DATA, 8192, false), 1);
    assert_int_equal(status(d), VIRTIO_BLK_S_OK);
    uint8_t file[8192];
    file_read(d, 10 * 512, file, sizeof file);
    assert_memory_equal(file, host(d, DATA), 8192);

    memset(host(d, DATA + 0x10000), 0, 8192);
    assert_int_equal(req(d, VIRTIO_BLK_T_IN, 10, DATA + 0x10000, 8192, true), 8193);
    assert_int_equal(status(d), VIRTIO_BLK_S_OK);
    assert_memory_equal(host(d, DATA + 0x10000), host(d, DATA), 8192);

    /* The last sector of the disk. */
    fill(host(d, DATA), 512, 2);
    assert_int_equal(req(d, VIRTIO_BLK_T_OUT, IMG_SECTORS - 1, DATA, 512, false), 1);
    assert_int_equal(status(d), VIRTIO_BLK_S_OK);
    assert_int_equal(req(d, VIRTIO_BLK_T_IN, IMG_SECTORS - 1, DATA + 0x10000, 512, true), 513);
    assert_memory_equal(host(d, DATA + 0x10000), host(d, DATA), 512);
    assert_false(vdrv_broken(&d->v));
    assert_true(d->irqs > 0);
}

/* Data split over odd-sized buffers, larger than the device's bounce
 * buffer, with the header split too. */
static void test_scattered_large(void **state) {
    struct drv *d = *state;
    const uint32_t total = 3u << 20; /* 3 MiB */
    fill(host(d, DATA), total, 3);
    header(d, VIRTIO_BLK_T_OUT, 100);
    struct vdrv_seg w[] = {
        {HDR, 5, false}, {HDR + 5, 11, false},
        {DATA, 1000, false}, {DATA + 1000, (1u << 20) + 24, false}, {DATA + (1u << 20) + 1024, total - (1u << 20) - 1024, false},
        {STATUS, 1, true},
    };
    assert_int_equal(run_chain(d, w, 6), 1);
    assert_int_equal(status(d), VIRTIO_BLK_S_OK);
    uint8_t *file = malloc(total);
    file_read(d, 100 * 512, file, total);
    assert_memory_equal(file, host(d, DATA), total);

    /* Read it back into three buffers, the status byte sharing the last. */
    uint64_t back = DATA + total;
    memset(host(d, back), 0, total + 1);
    header(d, VIRTIO_BLK_T_IN, 100);
    struct vdrv_seg r[] = {
        {HDR, 16, false}, {back, 7, true}, {back + 7, (2u << 20) + 3, true}, {back + (2u << 20) + 10, total - (2u << 20) - 10 + 1, true},
    };
    assert_int_equal(run_chain(d, r, 4), total + 1);
    assert_int_equal(*host(d, back + total), VIRTIO_BLK_S_OK);
    assert_memory_equal(host(d, back), file, total);
    free(file);
}

static void test_flush(void **state) {
    struct drv *d = *state;
    fill(host(d, DATA), 4096, 4);
    assert_int_equal(req(d, VIRTIO_BLK_T_OUT, 0, DATA, 4096, false), 1);
    assert_int_equal(req(d, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false), 1);
    assert_int_equal(status(d), VIRTIO_BLK_S_OK);
    /* A driver without F_FLUSH gets write-through; writes still work. */
    reopen(d, "", F_V1);
    fill(host(d, DATA), 4096, 5);
    assert_int_equal(req(d, VIRTIO_BLK_T_OUT, 8, DATA, 4096, false), 1);
    assert_int_equal(status(d), VIRTIO_BLK_S_OK);
    uint8_t file[4096];
    file_read(d, 8 * 512, file, sizeof file);
    assert_memory_equal(file, host(d, DATA), 4096);
}

static blkcnt_t blocks(struct drv *d) {
    struct stat st;
    assert_int_equal(stat(d->path, &st), 0);
    return st.st_blocks;
}

static void put_range(struct drv *d, unsigned i, uint64_t sector, uint32_t num, uint32_t flags) {
    uint8_t *p = host(d, RANGES + 16 * (uint64_t)i);
    memcpy(p, &sector, 8);
    memcpy(p + 8, &num, 4);
    memcpy(p + 12, &flags, 4);
}

static void write_ones(struct drv *d, uint64_t sector, uint32_t len) {
    memset(host(d, DATA), 0xff, len);
    assert_int_equal(req(d, VIRTIO_BLK_T_OUT, sector, DATA, len, false), 1);
    assert_int_equal(req(d, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false), 1);
}

static void expect_zero_on_disk(struct drv *d, uint64_t sector, uint32_t len) {
    memset(host(d, DATA), 0xaa, len);
    assert_int_equal(req(d, VIRTIO_BLK_T_IN, sector, DATA, len, true), len + 1);
    assert_true(all_zero(host(d, DATA), len));
}

static void test_discard(void **state) {
    struct drv *d = *state;
    write_ones(d, 256, 256 * 1024);
    blkcnt_t full = blocks(d);
    put_range(d, 0, 256, 512, 0);
    assert_int_equal(req(d, VIRTIO_BLK_T_DISCARD, 0, RANGES, 16, false), 1);
    assert_int_equal(status(d), VIRTIO_BLK_S_OK);
    expect_zero_on_disk(d, 256, 256 * 1024);
    assert_true(blocks(d) < full); /* a hole was punched */

    /* Two ranges at once; the bytes around them stay. */
    write_ones(d, 0, 64 * 1024);
    put_range(d, 0, 8, 8, 0);
    put_range(d, 1, 32, 16, 0);
    assert_int_equal(req(d, VIRTIO_BLK_T_DISCARD, 0, RANGES, 32, false), 1);
    assert_int_equal(status(d), VIRTIO_BLK_S_OK);
    expect_zero_on_disk(d, 8, 8 * 512);
    expect_zero_on_disk(d, 32, 16 * 512);
    assert_int_equal(req(d, VIRTIO_BLK_T_IN, 16, DATA, 16 * 512, true), 16 * 512 + 1);
    assert_int_equal(host(d, DATA)[0], 0xff);
    assert_int_equal(host(d, DATA)[16 * 512 - 1], 0xff);

    /* Refused: unmap on a discard, too many ranges, ranges cut short,
     * outside the disk, wrapping sector arithmetic, no range at all. */
    put_range(d, 0, 0, 8, VIRTIO_BLK_DISCARD_FLAG_UNMAP);
    assert_int_equal(req(d, VIRTIO_BLK_T_DISCARD, 0, RANGES, 16, false), 1);
    assert_int_equal(status(d), VIRTIO_BLK_S_UNSUPP);
    for (unsigned i = 0; i <= VIRTIO_BLK_MAX_DISCARD_SEG; i++) put_range(d, i, 0, 8, 0);
    req(d, VIRTIO_BLK_T_DISCARD, 0, RANGES, 16 * (VIRTIO_BLK_MAX_DISCARD_SEG + 1), false);
    assert_int_equal(status(d), VIRTIO_BLK_S_UNSUPP);
    req(d, VIRTIO_BLK_T_DISCARD, 0, RANGES, 15, false);
    assert_int_equal(status(d), VIRTIO_BLK_S_IOERR);
    req(d, VIRTIO_BLK_T_DISCARD, 0, 0, 0, false);
    assert_int_equal(status(d), VIRTIO_BLK_S_IOERR);
    put_range(d, 0, IMG_SECTORS - 4, 8, 0);
    req(d, VIRTIO_BLK_T_DISCARD, 0, RANGES, 16, false);
    assert_int_equal(status(d), VIRTIO_BLK_S_IOERR);
    put_range(d, 0, UINT64_MAX, 1, 0);
    req(d, VIRTIO_BLK_T_DISCARD, 0, RANGES, 16, false);
    assert_int_equal(status(d), VIRTIO_BLK_S_IOERR);
    put_range(d, 0, 1ull << 55, 8, 0); /* sector * 512 wraps to 0 */
    req(d, VIRTIO_BLK_T_DISCARD, 0, RANGES, 16, false);
    assert_int_equal(status(d), VIRTIO_BLK_S_IOERR);
    /* Ranges outside guest memory break the device. */
    req(d, VIRTIO_BLK_T_DISCARD, 0, 0x1000, 16, false);
    assert_true(vdrv_broken(&d->v));
}

static void test_write_zeroes(void **state) {
    struct drv *d = *state;
    write_ones(d, 0, 64 * 1024);
    put_range(d, 0, 1, 3, 0);
    assert_int_equal(req(d, VIRTIO_BLK_T_WRITE_ZEROES, 0, RANGES, 16, false), 1);
    assert_int_equal(status(d), VIRTIO_BLK_S_OK);
    expect_zero_on_disk(d, 1, 3 * 512);
    put_range(d, 0, 16, 64, VIRTIO_BLK_DISCARD_FLAG_UNMAP);
    assert_int_equal(req(d, VIRTIO_BLK_T_WRITE_ZEROES, 0, RANGES, 16, false), 1);
    assert_int_equal(status(d), VIRTIO_BLK_S_OK);
    expect_zero_on_disk(d, 16, 64 * 512);
    assert_int_equal(req(d, VIRTIO_BLK_T_IN, 0, DATA, 512, true), 513);
    assert_int_equal(host(d, DATA)[0], 0xff);
    put_range(d, 0, 0, 1, 2); /* reserved flag */
    req(d, VIRTIO_BLK_T_WRITE_ZEROES, 0, RANGES, 16, false);
    assert_int_equal(status(d), VIRTIO_BLK_S_UNSUPP);
}

static void test_readonly(void **state) {
    struct drv *d = *state;
    fill(host(d, DATA), 4096, 6);
    assert_int_equal(req(d, VIRTIO_BLK_T_OUT, 0, DATA, 4096, false), 1);
    reopen(d, ",readonly=on", F_V1 | F_BLK | (1ull << VIRTIO_BLK_F_RO));
    uint64_t f = vdrv_device_features(&d->v);
    assert_true(f & (1ull << VIRTIO_BLK_F_RO));
    assert_false(f & F_DISCARD);

    uint8_t before[4096], after[4096];
    file_read(d, 0, before, sizeof before);
    fill(host(d, DATA), 4096, 7);
    assert_int_equal(req(d, VIRTIO_BLK_T_OUT, 0, DATA, 4096, false), 1);
    assert_int_equal(status(d), VIRTIO_BLK_S_IOERR);
    put_range(d, 0, 0, 8, 0);
    req(d, VIRTIO_BLK_T_DISCARD, 0, RANGES, 16, false);
    assert_int_equal(status(d), VIRTIO_BLK_S_IOERR);
    req(d, VIRTIO_BLK_T_WRITE_ZEROES, 0, RANGES, 16, false);
    assert_int_equal(status(d), VIRTIO_BLK_S_IOERR);
    file_read(d, 0, after, sizeof after);
    assert_memory_equal(before, after, sizeof before);
    /* Reads and flushes still work. */
    assert_int_equal(req(d, VIRTIO_BLK_T_IN, 0, DATA, 4096, true), 4097);
    assert_int_equal(status(d), VIRTIO_BLK_S_OK);
    assert_memory_equal(host(d, DATA), before, 4096);
    assert_int_equal(req(d, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false), 1);
    assert_int_equal(status(d), VIRTIO_BLK_S_OK);
    assert_false(vdrv_broken(&d->v));
}

static void test_get_id(void **state) {
    struct drv *d = *state;
    memset(host(d, DATA), 0x55, 32);
    assert_int_equal(req(d, VIRTIO_BLK_T_GET_ID, 0, DATA, 20, true), 21);
    assert_int_equal(status(d), VIRTIO_BLK_S_OK);
    /* Default: the file name, its last 20 characters. */
    const char *base = strrchr(d->path, '/') + 1;
    size_t n = strlen(base);
    const char *want = n > 20 ? base + n - 20 : base;
    assert_memory_equal(host(d, DATA), want, strlen(want));
    assert_true(all_zero(host(d, DATA + strlen(want)), 20 - strlen(want)));
    assert_int_equal(host(d, DATA)[20], 0x55);

    reopen(d, ",serial=disk-0001", F_V1 | F_BLK);
    memset(host(d, DATA), 0x55, 32);
    assert_int_equal(req(d, VIRTIO_BLK_T_GET_ID, 0, DATA, 20, true), 21);
    assert_memory_equal(host(d, DATA), "disk-0001\0\0\0\0\0\0\0\0\0\0\0", 20);
    /* All 20 characters, no terminator. */
    reopen(d, ",serial=ABCDEFGHIJKLMNOPQRST", F_V1 | F_BLK);
    assert_int_equal(req(d, VIRTIO_BLK_T_GET_ID, 0, DATA, 20, true), 21);
    assert_memory_equal(host(d, DATA), "ABCDEFGHIJKLMNOPQRST", 20);
    assert_int_equal(host(d, DATA)[20], 0x55);
    /* A short buffer gets what fits. */
    memset(host(d, DATA), 0x55, 32);
    assert_int_equal(req(d, VIRTIO_BLK_T_GET_ID, 0, DATA, 4, true), 5);
    assert_memory_equal(host(d, DATA), "ABCD\x55", 5);
}

static void test_unsupported(void **state) {
    struct drv *d = *state;
    uint32_t types[] = {2, 3, 5, 7, 9, 10, 12, 14, 0xffffffffu};
    for (unsigned i = 0; i < sizeof types / sizeof *types; i++) {
        assert_int_equal(req(d, types[i], 0, DATA, 512, true), 1);
        assert_int_equal(status(d), VIRTIO_BLK_S_UNSUPP);
    }
    assert_false(vdrv_broken(&d->v));
}

static void test_out_of_range(void **state) {
    struct drv *d = *state;
    memset(host(d, DATA), 0x77, 4096);
    /* Reads and writes past the end. */
    assert_int_equal(req(d, VIRTIO_BLK_T_IN, IMG_SECTORS - 1, DATA, 1024, true), 1);
    assert_int_equal(status(d), VIRTIO_BLK_S_IOERR);
    assert_int_equal(host(d, DATA)[0], 0x77); /* nothing copied */
    assert_int_equal(req(d, VIRTIO_BLK_T_IN, IMG_SECTORS, DATA, 512, true), 1);
    assert_int_equal(status(d), VIRTIO_BLK_S_IOERR);
    assert_int_equal(req(d, VIRTIO_BLK_T_OUT, IMG_SECTORS - 1, DATA, 1024, false), 1);
    assert_int_equal(status(d), VIRTIO_BLK_S_IOERR);
    struct stat st;
    assert_int_equal(stat(d->path, &st), 0);
    assert_int_equal(st.st_size, IMG_SIZE); /* the image did not grow */
    /* Sector arithmetic that would wrap: sector * 512 = 2^64 + 512. */
    uint64_t wraps[] = {(1ull << 55) + 1, UINT64_MAX, UINT64_MAX - 1, 1ull << 63};
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(req(d, VIRTIO_BLK_T_IN, wraps[i], DATA, 512, true), 1);
        assert_int_equal(status(d), VIRTIO_BLK_S_IOERR);
        assert_int_equal(req(d, VIRTIO_BLK_T_OUT, wraps[i], DATA, 512, false), 1);
        assert_int_equal(status(d), VIRTIO_BLK_S_IOERR);
    }
    assert_int_equal(host(d, DATA)[0], 0x77);
    assert_false(vdrv_broken(&d->v));
}

static void test_lengths(void **state) {
    struct drv *d = *state;
    /* Zero-length transfers are fine, even at the very end. */
    assert_int_equal(req(d, VIRTIO_BLK_T_IN, 5, 0, 0, true), 1);
    assert_int_equal(status(d), VIRTIO_BLK_S_OK);
    assert_int_equal(req(d, VIRTIO_BLK_T_OUT, IMG_SECTORS, 0, 0, false), 1);
    assert_int_equal(status(d), VIRTIO_BLK_S_OK);
    /* Not whole sectors. */
    assert_int_equal(req(d, VIRTIO_BLK_T_IN, 0, DATA, 513, true), 1);
    assert_int_equal(status(d), VIRTIO_BLK_S_IOERR);
    assert_int_equal(req(d, VIRTIO_BLK_T_OUT, 0, DATA, 100, false), 1);
    assert_int_equal(status(d), VIRTIO_BLK_S_IOERR);
    /* Huge buffers (far outside guest memory too): refused before any
     * access, so the device stays usable. */
    header(d, VIRTIO_BLK_T_IN, 0);
    struct vdrv_seg huge[] = {{HDR, 16, false},        {0x1000, 0xfffffe00u, true}, {0x200000000ull, 0xfffffe00u, true},
                         {0x400000000ull, 0x80000000u, true}, {STATUS, 1, true}};
    assert_int_equal(run_chain(d, huge, 5), 1);
    assert_int_equal(status(d), VIRTIO_BLK_S_IOERR);
    header(d, VIRTIO_BLK_T_OUT, 0);
    for (unsigned i = 1; i < 4; i++) huge[i].writable = false;
    assert_int_equal(run_chain(d, huge, 5), 1);
    assert_int_equal(status(d), VIRTIO_BLK_S_IOERR);
    assert_false(vdrv_broken(&d->v));
}

static void test_malformed(void **state) {
    struct drv *d = *state;
    /* Header too short. */
    header(d, VIRTIO_BLK_T_IN, 0);
    struct vdrv_seg shorth[] = {{HDR, 8, false}, {DATA, 512, true}, {STATUS, 1, true}};
    assert_int_equal(run_chain(d, shorth, 3), 1);
    assert_int_equal(status(d), VIRTIO_BLK_S_IOERR);
    /* Header in a device-writable buffer. */
    header(d, VIRTIO_BLK_T_IN, 0);
    struct vdrv_seg wh[] = {{HDR, 16, true}, {DATA, 512, true}, {STATUS, 1, true}};
    assert_int_equal(run_chain(d, wh, 3), 1);
    assert_int_equal(status(d), VIRTIO_BLK_S_IOERR);
    /* Only a status byte. */
    struct vdrv_seg only[] = {{STATUS, 1, true}};
    *host(d, STATUS) = 0xee;
    assert_int_equal(run_chain(d, only, 1), 1);
    assert_int_equal(status(d), VIRTIO_BLK_S_IOERR);
    assert_false(vdrv_broken(&d->v));
    /* No status byte: nowhere to report, the device breaks. */
    header(d, VIRTIO_BLK_T_OUT, 0);
    struct vdrv_seg nostatus[] = {{HDR, 16, false}, {DATA, 512, false}};
    assert_int_equal(run_chain(d, nostatus, 2), -1);
    assert_true(vdrv_broken(&d->v));
    /* A reset brings it back. */
    full_init(d, F_V1 | F_BLK);
    assert_int_equal(req(d, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false), 1);
    assert_int_equal(status(d), VIRTIO_BLK_S_OK);
}

static void test_outside_ram(void **state) {
    struct drv *d = *state;
    uint8_t before[4096], after[4096];
    file_read(d, 0, before, sizeof before);
    /* Write data outside guest memory: nothing reaches the disk. */
    assert_int_equal(req(d, VIRTIO_BLK_T_OUT, 0, MEM_BASE - 4096, 4096, false), -1);
    assert_true(vdrv_broken(&d->v));
    file_read(d, 0, after, sizeof after);
    assert_memory_equal(before, after, sizeof before);
    /* Read data straddling the end of guest memory. */
    full_init(d, F_V1 | F_BLK);
    assert_int_equal(req(d, VIRTIO_BLK_T_IN, 0, MEM_BASE + MEM_SIZE - 512, 1024, true), -1);
    assert_true(vdrv_broken(&d->v));
    /* Header outside guest memory. */
    full_init(d, F_V1 | F_BLK);
    struct vdrv_seg h[] = {{0x10, 16, false}, {STATUS, 1, true}};
    assert_int_equal(run_chain(d, h, 2), -1);
    assert_true(vdrv_broken(&d->v));
    /* Status byte outside guest memory. */
    full_init(d, F_V1 | F_BLK);
    header(d, VIRTIO_BLK_T_FLUSH, 0);
    struct vdrv_seg s[] = {{HDR, 16, false}, {MEM_BASE + MEM_SIZE, 1, true}};
    assert_int_equal(run_chain(d, s, 2), -1);
    assert_true(vdrv_broken(&d->v));
}

/* Many requests with one notify, through an indirect table. */
static void test_batch_indirect(void **state) {
    struct drv *d = *state;
    reopen(d, "", F_V1 | F_BLK | F_INDIRECT | F_EVIDX);
    fill(host(d, DATA), 4096, 8);
    assert_int_equal(req(d, VIRTIO_BLK_T_OUT, 0, DATA, 4096, false), 1);
    uint16_t before = vdrv_used_idx(&d->v, 0);
    for (unsigned i = 0; i < 8; i++) {
        uint64_t tbl = TABLE + 0x40 * i, hdr = HDR + 0x20 * i;
        uint32_t type = VIRTIO_BLK_T_IN;
        uint64_t sector = i;
        memcpy(host(d, hdr), &type, 4);
        memcpy(host(d, hdr + 8), &sector, 8);
        vdrv_desc_at(&d->v, tbl, 0, hdr, 16, VIRTQ_DESC_F_NEXT, 1);
        vdrv_desc_at(&d->v, tbl, 1, DATA + 0x10000 + 512 * i, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
        vdrv_desc_at(&d->v, tbl, 2, STATUS + i, 1, VIRTQ_DESC_F_WRITE, 0);
        vdrv_desc_at(&d->v, DESC, i, tbl, 48, VIRTQ_DESC_F_INDIRECT, 0);
        vdrv_put16(&d->v, AVAIL + 4 + 2 * (d->v.q[0].avail_idx % QSIZE), (uint16_t)i);
        d->v.q[0].avail_idx++;
    }
    vdrv_put16(&d->v, AVAIL + 2, d->v.q[0].avail_idx);
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    assert_int_equal(vdrv_used_idx(&d->v, 0), (uint16_t)(before + 8));
    for (unsigned i = 0; i < 8; i++) {
        assert_int_equal(vdrv_used_id(&d->v, 0, before + i), i);
        assert_int_equal(vdrv_used_len(&d->v, 0, before + i), 513);
        assert_int_equal(*host(d, STATUS + i), VIRTIO_BLK_S_OK);
    }
    assert_memory_equal(host(d, DATA + 0x10000), host(d, DATA), 4096);
}

/* The real path: requests served on an event loop thread. */
static void test_event_loop(void **state) {
    struct drv *d = *state;
    for (unsigned i = 0; i < 20; i++) {
        fill(host(d, DATA), 65536, 9 + i);
        assert_int_equal(req(d, VIRTIO_BLK_T_OUT, 128 * i, DATA, 65536, false), 1);
        assert_int_equal(status(d), VIRTIO_BLK_S_OK);
        memset(host(d, DATA + 0x20000), 0, 65536);
        assert_int_equal(req(d, VIRTIO_BLK_T_IN, 128 * i, DATA + 0x20000, 65536, true), 65537);
        assert_int_equal(status(d), VIRTIO_BLK_S_OK);
        assert_memory_equal(host(d, DATA + 0x20000), host(d, DATA), 65536);
    }
    assert_int_equal(req(d, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false), 1);
    assert_int_equal(req(d, VIRTIO_BLK_T_IN, IMG_SECTORS, DATA, 512, true), 1);
    assert_int_equal(status(d), VIRTIO_BLK_S_IOERR);
    /* A reset while requests may be in flight, then normal service. */
    header(d, VIRTIO_BLK_T_IN, 0);
    vdrv_desc_at(&d->v, DESC, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
    vdrv_desc_at(&d->v, DESC, 1, DATA, 1u << 20, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
    vdrv_desc_at(&d->v, DESC, 2, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
    vdrv_put16(&d->v, AVAIL + 4, 0);
    vdrv_put16(&d->v, AVAIL + 2, ++d->v.q[0].avail_idx);
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    full_init(d, F_V1 | F_BLK);
    assert_int_equal(req(d, VIRTIO_BLK_T_GET_ID, 0, DATA, 20, true), 21);
    assert_int_equal(status(d), VIRTIO_BLK_S_OK);
    assert_false(vdrv_broken(&d->v));
}

/* Under memory pressure a buffer, or a ring, may have no frame for a
 * moment (the p2m refuses with ENOMEM): the request waits and is served
 * once memory is back, the device is not broken. Seen before: a read into
 * a page-cache page that could not be backed broke the disk for good. */
static void wait_used(struct drv *d, uint16_t want) {
    for (int tries = 0; vdrv_used_idx(&d->v, 0) != want && tries < 5000; tries++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    assert_int_equal(vdrv_used_idx(&d->v, 0), want);
}

static void post_read(struct drv *d, uint64_t sector, uint64_t data, uint32_t len) {
    header(d, VIRTIO_BLK_T_IN, sector);
    struct vdrv_seg s[] = {{HDR, 16, false}, {data, len, true}, {STATUS, 1, true}};
    vdrv_post(&d->v, 0, vdrv_write_chain(&d->v, 0, 0, s, 3));
    vdrv_notify(&d->v, 0);
}

static void test_waits_for_memory(void **state) {
    struct drv *d = *state;
    const uint64_t dst = DATA + 0x100000;
    fill(host(d, DATA), 1u << 20, 21);
    assert_int_equal(req(d, VIRTIO_BLK_T_OUT, 0, DATA, 1u << 20, false), 1);
    struct {
        uint64_t lo, hi; /* what has no frame */
        uint32_t len;    /* read length */
    } cases[] = {
        {dst + 0x3000, dst + 0x4000, 65536},            /* one page of the data buffer */
        {dst + 0xff000, dst + 0x100000, 1u << 20},      /* the last page of a read longer than a bounce */
        {STATUS, STATUS + 1, 4096},                     /* the status byte */
        {USED, USED + 0x1000, 4096},                    /* the used ring: nothing can be pushed */
        {AVAIL, AVAIL + 0x1000, 4096},                  /* the available ring: nothing can be popped */
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(host(d, dst), 0, 1u << 20);
        uint16_t before = vdrv_used_idx(&d->v, 0);
        uint64_t deferred = virtio_mmio_dma_deferred(d->v.t);
        fake_mem_starve(&d->mem, cases[i].lo, cases[i].hi, true);
        post_read(d, 0, dst, cases[i].len);
        nanosleep(&(struct timespec){0, 50000000}, NULL); /* 25 retries */
        assert_int_equal(vdrv_used_idx(&d->v, 0), before);
        assert_false(vdrv_broken(&d->v));
        if (cases[i].lo >= DATA) assert_true(virtio_mmio_dma_deferred(d->v.t) > deferred);
        /* Memory comes back: served without another notification. */
        fake_mem_starve(&d->mem, 0, 0, false);
        wait_used(d, (uint16_t)(before + 1));
        assert_int_equal(vdrv_used_len(&d->v, 0, before), cases[i].len + 1);
        assert_int_equal(status(d), VIRTIO_BLK_S_OK);
        assert_memory_equal(host(d, dst), host(d, DATA), cases[i].len);
    }
    /* A write whose buffer cannot be read back just now waits too. */
    fill(host(d, DATA + 0x10000), 8192, 22);
    fake_mem_starve(&d->mem, DATA + 0x11000, DATA + 0x12000, true);
    header(d, VIRTIO_BLK_T_OUT, 64);
    struct vdrv_seg w[] = {{HDR, 16, false}, {DATA + 0x10000, 8192, false}, {STATUS, 1, true}};
    uint16_t before = vdrv_used_idx(&d->v, 0);
    vdrv_post(&d->v, 0, vdrv_write_chain(&d->v, 0, 0, w, 3));
    vdrv_notify(&d->v, 0);
    nanosleep(&(struct timespec){0, 20000000}, NULL);
    assert_int_equal(vdrv_used_idx(&d->v, 0), before);
    fake_mem_starve(&d->mem, 0, 0, false);
    wait_used(d, (uint16_t)(before + 1));
    assert_int_equal(status(d), VIRTIO_BLK_S_OK);
    uint8_t back[8192];
    file_read(d, 64 * 512, back, sizeof back);
    assert_memory_equal(back, host(d, DATA + 0x10000), sizeof back);
    /* An address outside RAM still breaks the device. */
    assert_int_equal(req(d, VIRTIO_BLK_T_IN, 0, MEM_BASE - 4096, 4096, true), -1);
    assert_true(vdrv_broken(&d->v));
}

/* Memory that never comes back (swap full or off): after 10 s of waiting
 * the request fails with an I/O error instead of hanging the guest's
 * reader forever, and the device stays usable. */
static void test_gives_up_on_memory_with_an_io_error(void **state) {
    struct drv *d = *state;
    fake_mem_starve(&d->mem, DATA + 0x2000, DATA + 0x3000, true);
    uint16_t before = vdrv_used_idx(&d->v, 0);
    post_read(d, 0, DATA, 16384);
    nanosleep(&(struct timespec){9, 0}, NULL);
    assert_int_equal(vdrv_used_idx(&d->v, 0), before);
    for (int tries = 0; vdrv_used_idx(&d->v, 0) == before && tries < 3000; tries++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    assert_int_equal(vdrv_used_idx(&d->v, 0), (uint16_t)(before + 1));
    assert_int_equal(status(d), VIRTIO_BLK_S_IOERR);
    assert_false(vdrv_broken(&d->v));
    fake_mem_starve(&d->mem, 0, 0, false);
    assert_int_equal(req(d, VIRTIO_BLK_T_IN, 0, DATA, 4096, true), 4097);
    assert_int_equal(status(d), VIRTIO_BLK_S_OK);
}

/* Without a loop the request waits for the next notification. */
static void test_waits_for_memory_inline(void **state) {
    struct drv *d = *state;
    fill(host(d, DATA), 4096, 23);
    assert_int_equal(req(d, VIRTIO_BLK_T_OUT, 8, DATA, 4096, false), 1);
    fake_mem_starve(&d->mem, DATA + 0x8000, DATA + 0x9000, true);
    uint16_t before = vdrv_used_idx(&d->v, 0);
    post_read(d, 8, DATA + 0x8000, 4096);
    assert_int_equal(vdrv_used_idx(&d->v, 0), before);
    assert_false(vdrv_broken(&d->v));
    fake_mem_starve(&d->mem, 0, 0, false);
    vdrv_notify(&d->v, 0);
    assert_int_equal(vdrv_used_idx(&d->v, 0), (uint16_t)(before + 1));
    assert_int_equal(status(d), VIRTIO_BLK_S_OK);
    assert_memory_equal(host(d, DATA + 0x8000), host(d, DATA), 4096);
}

/* ---- construction ---- */

static void expect_refused(struct drv *d, const char *opts, const char *needle) {
    struct virtio_backend be;
    char err[512] = "";
    struct virtio_backend_env env = {.mem = fake_mem_ops(&d->mem)};
    bool ok = virtio_blk_backend_create(opts, &env, &be, err, sizeof err);
    if (ok) {
        be.destroy(be.dev);
        fail_msg("'%s' was accepted", opts);
    }
    if (!strstr(err, needle)) fail_msg("'%s': message '%s' lacks '%s'", opts, err, needle);
}

static void test_options(void **state) {
    struct drv *d = *state;
    char opts[256], path[80];
    expect_refused(d, "", "missing file=");
    expect_refused(d, "readonly=on", "missing file=");
    expect_refused(d, "file=", "needs a path");
    expect_refused(d, "disk.img", "KEY=VALUE");
    expect_refused(d, "file=/nonexistent/x.img", "No such file");
    snprintf(opts, sizeof opts, "file=%s,cache=none", d->path);
    expect_refused(d, opts, "unknown option 'cache'");
    snprintf(opts, sizeof opts, "file=%s,readonly=yes", d->path);
    expect_refused(d, opts, "on or off");
    snprintf(opts, sizeof opts, "file=%s,serial=ABCDEFGHIJKLMNOPQRSTU", d->path);
    expect_refused(d, opts, "serial=");
    snprintf(opts, sizeof opts, "file=%s,serial=", d->path);
    expect_refused(d, opts, "serial=");
    snprintf(opts, sizeof opts, "file=%s,file=%s", d->path, d->path);
    expect_refused(d, opts, "twice");
    expect_refused(d, "file=/tmp", "directory");
    expect_refused(d, "file=/tmp,readonly=on", "directory");
    expect_refused(d, "file=/dev/null,readonly=on", "not a regular file");

    /* Sizes: not a multiple of 512, and empty. */
    snprintf(path, sizeof path, "%s-odd", d->path);
    make_image(path, 1000);
    snprintf(opts, sizeof opts, "file=%s", path);
    expect_refused(d, opts, "multiple of 512");
    make_image(path, 0);
    expect_refused(d, opts, "empty");
    /* An unwritable image (root writes anyway, so only checked as others). */
    make_image(path, 4096);
    chmod(path, 0400);
    if (geteuid() != 0) expect_refused(d, opts, "readonly=on");
    unlink(path);

    /* The image of d is open read-write: locked against every other user. */
    snprintf(opts, sizeof opts, "file=%s", d->path);
    expect_refused(d, opts, "in use");
    snprintf(opts, sizeof opts, "file=%s,readonly=on", d->path);
    expect_refused(d, opts, "in use");
    /* Read-only users share. */
    reopen(d, ",readonly=on", F_V1 | F_BLK);
    struct virtio_backend be;
    char err[256];
    struct virtio_backend_env env = {.mem = fake_mem_ops(&d->mem)};
    if (!virtio_blk_backend_create(opts, &env, &be, err, sizeof err)) fail_msg("shared open: %s", err);
    snprintf(opts, sizeof opts, "file=%s", d->path);
    expect_refused(d, opts, "in use");
    be.destroy(be.dev);

    /* ",," is a comma in a file name; empty items are skipped. */
    snprintf(path, sizeof path, "%s,x", d->path);
    make_image(path, 8192);
    snprintf(opts, sizeof opts, "file=%s,,x,readonly=off,serial=a,,b,", d->path);
    if (!virtio_blk_backend_create(opts, &env, &be, err, sizeof err)) fail_msg("comma: %s", err);
    assert_ptr_equal(be.ops, &virtio_blk_ops);
    be.destroy(be.dev);
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_probe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scattered_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_zeroes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsupported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lengths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outside_ram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_indirect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_loop, setup_loop, teardown),
        cmocka_unit_test_setup_teardown(test_waits_for_memory, setup_loop, teardown),
        cmocka_unit_test_setup_teardown(test_waits_for_memory_inline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gives_up_on_memory_with_an_io_error, setup_loop, teardown),
        cmocka_unit_test_setup_teardown(test_options, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
