/* Unit tests of the platform devices' snapshot save/load pairs: each device
 * is put in a non-trivial state through its registers (virtio ones with the
 * driver model of virtio_driver.h), saved into a snapshot in memory, loaded
 * into a fresh device built the same way, and the two must then answer
 * register reads alike and go on serving the guest. Hostile sections (wrong
 * length, version, hart count, device, out-of-range values) are refused
 * with a message and leave the device as it was. */
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
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "dev/aclint.h"
#include "dev/goldfish_rtc.h"
#include "dev/irq.h"
#include "dev/plic.h"
#include "dev/uart16550.h"
#include "dev/virtio_balloon.h"
#include "dev/virtio_blk.h"
#include "dev/virtio_console.h"
#include "dev/virtio_mmio.h"
#include "dev/virtio_net.h"
#include "dev/virtio_rng.h"
#include "dev/vmgenid.h"
#include "io/snap_file.h"
#include "virtio_driver.h"

/* ---- snapshots in memory: written to a memfd, read back with snap_reader_mem ---- */

struct snap {
    int fd;
    struct snap_writer *w;
    uint8_t *buf;
    size_t len;
    struct snap_reader *r;
};

static struct snap_writer *snap_start(struct snap *s) {
    char err[256];
    memset(s, 0, sizeof *s);
    s->fd = memfd_create("snap", MFD_CLOEXEC);
    assert_true(s->fd >= 0);
    s->w = snap_writer_fd(s->fd, err, sizeof err);
    if (!s->w) fail_msg("snap_writer_fd: %s", err);
    return s->w;
}

static void snap_finish(struct snap *s) {
    char err[256];
    if (!snap_writer_commit(s->w, err, sizeof err)) fail_msg("commit: %s", err);
    s->w = NULL;
    off_t n = lseek(s->fd, 0, SEEK_END);
    assert_true(n > 0);
    s->buf = malloc((size_t)n);
    assert_non_null(s->buf);
    assert_int_equal(pread(s->fd, s->buf, (size_t)n, 0), n);
    s->len = (size_t)n;
    s->r = snap_reader_mem(s->buf, s->len, err, sizeof err);
    if (!s->r) fail_msg("snap_reader_mem: %s", err);
}

static struct snap_section section(struct snap *s, const char *tag) {
    struct snap_section sec;
    snap_reader_rewind(s->r);
    assert_true(snap_reader_find(s->r, tag, &sec));
    return sec;
}

static void snap_free(struct snap *s) {
    snap_reader_close(s->r);
    free(s->buf);
    close(s->fd);
}

/* A snapshot whose one section is a forged copy of `from`: its payload cut
 * or zero-extended to len bytes, with (if size) a little-endian value of
 * size bytes at off, and the version given. */
static struct snap_section forge(struct snap *out, const struct snap_section *from, size_t len, uint32_t version,
                                 size_t off, uint64_t value, unsigned size) {
    uint8_t *p = calloc(1, len + 8);
    assert_non_null(p);
    memcpy(p, from->data, from->len < len ? from->len : len);
    if (size) memcpy(p + off, &value, size);
    struct snap_writer *w = snap_start(out);
    assert_true(snap_section_begin(w, from->tag, version) && snap_write(w, p, len) && snap_section_end(w));
    free(p);
    snap_finish(out);
    return section(out, from->tag);
}

/* Same length and version, one value changed. */
static struct snap_section patch(struct snap *out, const struct snap_section *from, size_t off, uint64_t value,
                                 unsigned size) {
    return forge(out, from, from->len, from->version, off, value, size);
}

/* ---- recording interrupt wires ---- */

struct mip_rec {
    uint64_t mip;
    int calls;
};

static void mip_rec_set(void *ctx, uint64_t mask, bool level) {
    struct mip_rec *r = ctx;
    r->mip = level ? r->mip | mask : r->mip & ~mask;
    r->calls++;
}

struct irq_rec {
    bool level;
    int calls;
};

static void irq_rec_set(void *ctx, unsigned irq, bool level) {
    struct irq_rec *r = ctx;
    (void)irq;
    r->level = level;
    r->calls++;
}

static struct irq_line rec_line(struct irq_rec *r) { return (struct irq_line){irq_rec_set, r, 5}; }

/* ================= UART ================= */

enum { RBR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

static uint8_t ur(struct uart16550 *u, unsigned reg) { return (uint8_t)uart_mmio_ops.read(u, reg, 1); }
static void uw(struct uart16550 *u, unsigned reg, uint8_t v) { uart_mmio_ops.write(u, reg, v, 1); }

/* A UART with a divisor, scratch value, interrupts enabled, a FIFO that
 * wrapped around and holds 5 bytes, and a THRE interrupt pending. */
static void uart_busy(struct uart16550 *u) {
    uint8_t in[20];
    for (unsigned i = 0; i < sizeof in; i++) in[i] = (uint8_t)('a' + i);
    uw(u, FCR, 0xc7);
    uw(u, LCR, 0x83);
    uw(u, DLL, 0x0c);
    uw(u, DLM, 0x01);
    uw(u, LCR, 0x03);
    uw(u, SCR, 0x5a);
    uw(u, MCR, 0x0b);
    assert_int_equal(uart_receive(u, in, 14), 14);
    for (unsigned i = 0; i < 12; i++) assert_int_equal(ur(u, RBR), in[i]);
    assert_int_equal(uart_receive(u, in + 14, 3), 3); /* wraps around the ring */
    uw(u, IER, 0x0f);
}

static void test_uart_roundtrip(void **state) {
    (void)state;
    struct irq_rec i1 = {0}, i2 = {0};
    struct uart16550 *u1 = uart_create(rec_line(&i1), NULL, NULL), *u2 = uart_create(rec_line(&i2), NULL, NULL);
    assert_non_null(u1);
    assert_non_null(u2);
    uart_busy(u1);
    assert_true(i1.level);

    struct snap s;
    assert_true(uart_save(u1, snap_start(&s)));
    snap_finish(&s);
    struct snap_section sec = section(&s, "uart");
    assert_int_equal(sec.version, 1);
    char err[256];
    if (!uart_load(u2, &sec, err, sizeof err)) fail_msg("uart_load: %s", err);
    assert_true(i2.level); /* the line follows the loaded state */
    assert_int_equal(uart_rx_space(u2), uart_rx_space(u1));

    /* The same reads, destructive ones included, give the same answers. */
    static const unsigned regs[] = {IIR, IIR, LSR, MSR, IER, LCR, MCR, SCR, RBR, RBR, RBR, RBR, RBR, RBR, IIR, LSR};
    for (unsigned i = 0; i < sizeof regs / sizeof regs[0]; i++) {
        assert_int_equal(ur(u2, regs[i]), ur(u1, regs[i]));
        assert_int_equal(i2.level, i1.level);
    }
    uw(u1, LCR, 0x83);
    uw(u2, LCR, 0x83);
    assert_int_equal(ur(u2, DLL), 0x0c);
    assert_int_equal(ur(u2, DLM), 0x01);
    snap_free(&s);
    uart_destroy(u1);
    uart_destroy(u2);
}

static void test_uart_hostile(void **state) {
    (void)state;
    struct irq_rec i1 = {0}, i2 = {0};
    struct uart16550 *u1 = uart_create(rec_line(&i1), NULL, NULL), *u2 = uart_create(rec_line(&i2), NULL, NULL);
    uart_busy(u1);
    struct snap s, bad;
    assert_true(uart_save(u1, snap_start(&s)));
    snap_finish(&s);
    struct snap_section sec = section(&s, "uart");
    assert_int_equal(sec.len, 34); /* rx[16], rx_head, rx_count (u32), 9 bytes, thre_pending */
    char err[256];

    struct {
        const char *what;
        size_t len, off;
        uint32_t version;
        uint64_t value;
        unsigned size;
    } cases[] = {
        {"short", 33, 0, 1, 0, 0},
        {"long", 35, 0, 1, 0, 0},
        {"version", 34, 0, 2, 0, 0},
        {"rx_head 16", 34, 16, 1, 16, 4},
        {"rx_count 17", 34, 20, 1, 17, 4},
        {"bool 2", 34, 33, 1, 2, 1},
        {"ier bit 4", 34, 24, 1, 0x1f, 1},
        {"fcr bits", 34, 25, 1, 0x03, 1},
        {"lsr_err data-ready", 34, 31, 1, 0x01, 1},
        {"5 bytes, FIFO off", 34, 25, 1, 0x00, 1},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct snap_section f = forge(&bad, &sec, cases[i].len, cases[i].version, cases[i].off, cases[i].value,
                                      cases[i].size);
        err[0] = 0;
        if (uart_load(u2, &f, err, sizeof err)) fail_msg("accepted: %s", cases[i].what);
        assert_true(strlen(err) > 0);
        assert_non_null(strstr(err, "uart"));
        snap_free(&bad);
    }
    /* Refused loads left the fresh UART in its reset state. */
    assert_int_equal(i2.calls, 0);
    assert_int_equal(ur(u2, LSR), 0x60);
    assert_int_equal(ur(u2, SCR), 0);
    assert_int_equal(uart_rx_space(u2), 1);
    snap_free(&s);
    uart_destroy(u1);
    uart_destroy(u2);
}

/* ================= PLIC ================= */

#define PLIC_ENABLE(ctx) (0x2000 + 0x80 * (ctx))
#define PLIC_THRESHOLD(ctx) (0x200000 + 0x1000 * (ctx))
#define PLIC_CLAIM(ctx) (PLIC_THRESHOLD(ctx) + 4)

static uint32_t pr(struct plic *p, uint64_t off) { return (uint32_t)plic_mmio_ops.read(p, off, 4); }
static void pw(struct plic *p, uint64_t off, uint32_t v) { plic_mmio_ops.write(p, off, v, 4); }

struct plic_fix {
    struct mip_rec hart[2];
    struct plic *p;
};

static void plic_new(struct plic_fix *f, unsigned nharts) {
    memset(f, 0, sizeof *f);
    struct hart_irq h[2] = {{mip_rec_set, &f->hart[0]}, {mip_rec_set, &f->hart[1]}};
    f->p = plic_create(nharts, h);
    assert_non_null(f->p);
}

/* Sources 3, 5, 40 and 70 up with various priorities; contexts with
 * various enables and thresholds; 40 claimed by context 0. */
static void plic_busy(struct plic *p) {
    pw(p, 4 * 3, 2);
    pw(p, 4 * 5, 6);
    pw(p, 4 * 40, 7);
    pw(p, 4 * 70, 1);
    pw(p, PLIC_ENABLE(0), (1u << 3) | (1u << 5));
    pw(p, PLIC_ENABLE(0) + 4, 1u << 8);
    pw(p, PLIC_ENABLE(1) + 8, 1u << 6);
    pw(p, PLIC_ENABLE(3), 1u << 3);
    pw(p, PLIC_THRESHOLD(0), 1);
    pw(p, PLIC_THRESHOLD(2), 7);
    pw(p, PLIC_THRESHOLD(3), 1);
    plic_set_irq(p, 3, true);
    plic_set_irq(p, 5, true);
    plic_set_irq(p, 40, true);
    plic_set_irq(p, 70, true);
    assert_int_equal(pr(p, PLIC_CLAIM(0)), 40);
}

static void test_plic_roundtrip(void **state) {
    (void)state;
    struct plic_fix a, b;
    plic_new(&a, 2);
    plic_new(&b, 2);
    plic_busy(a.p);
    struct snap s;
    assert_true(plic_save(a.p, snap_start(&s)));
    snap_finish(&s);
    struct snap_section sec = section(&s, "plic");
    char err[256];
    if (!plic_load(b.p, &sec, err, sizeof err)) fail_msg("plic_load: %s", err);
    /* Every context's line was driven, whatever it was left at. */
    for (unsigned h = 0; h < 2; h++) {
        assert_int_equal(b.hart[h].mip, a.hart[h].mip);
        assert_int_equal(b.hart[h].calls, 2);
    }
    assert_true(b.hart[0].mip & HART_IRQ_MEIP);
    for (unsigned w = 0; w < 3; w++) assert_int_equal(pr(b.p, 0x1000 + 4 * w), pr(a.p, 0x1000 + 4 * w));
    for (unsigned c = 0; c < 4; c++) {
        assert_int_equal(pr(b.p, PLIC_THRESHOLD(c)), pr(a.p, PLIC_THRESHOLD(c)));
        assert_int_equal(pr(b.p, PLIC_ENABLE(c) + 4), pr(a.p, PLIC_ENABLE(c) + 4));
    }
    /* Claims and completions then go the same way on both. */
    for (unsigned c = 0; c < 4; c++) {
        uint32_t id = pr(a.p, PLIC_CLAIM(c));
        assert_int_equal(pr(b.p, PLIC_CLAIM(c)), id);
        assert_int_equal(b.hart[c / 2].mip, a.hart[c / 2].mip);
    }
    pw(a.p, PLIC_CLAIM(0), 40);
    pw(b.p, PLIC_CLAIM(0), 40);
    assert_int_equal(pr(b.p, PLIC_CLAIM(0)), pr(a.p, PLIC_CLAIM(0)));
    snap_free(&s);
    plic_destroy(a.p);
    plic_destroy(b.p);
}

static void test_plic_hostile(void **state) {
    (void)state;
    struct plic_fix a, b, one;
    plic_new(&a, 2);
    plic_new(&b, 2);
    plic_new(&one, 1);
    plic_busy(a.p);
    struct snap s, bad;
    assert_true(plic_save(a.p, snap_start(&s)));
    snap_finish(&s);
    struct snap_section sec = section(&s, "plic");
    char err[256];

    /* Another hart count. */
    assert_false(plic_load(one.p, &sec, err, sizeof err));
    assert_string_equal(err, "snapshot has 2 harts' PLIC contexts, this VM 1");
    /* Offsets: nharts 0, priority[96] 4, level[3] 388, in_service[3] 400,
     * then per context enable[3] and threshold (16 bytes) from 412. */
    struct {
        const char *what;
        size_t off;
        uint64_t value;
    } cases[] = {
        {"priority 8", 4 + 4 * 3, 8},
        {"priority of source 0", 4, 1},
        {"level of source 0", 388, 1},
        {"enable of source 0", 412 + 16, 1},
        {"threshold 8", 412 + 16 * 3 + 12, 8},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct snap_section f = patch(&bad, &sec, cases[i].off, cases[i].value, 4);
        if (plic_load(b.p, &f, err, sizeof err)) fail_msg("accepted: %s", cases[i].what);
        assert_non_null(strstr(err, "plic"));
        snap_free(&bad);
    }
    struct snap_section f = forge(&bad, &sec, sec.len - 4, 1, 0, 0, 0);
    assert_false(plic_load(b.p, &f, err, sizeof err));
    snap_free(&bad);
    f = forge(&bad, &sec, 2, 1, 0, 0, 0);
    assert_false(plic_load(b.p, &f, err, sizeof err));
    snap_free(&bad);
    /* b is untouched: no line driven, no priority set. */
    assert_int_equal(b.hart[0].calls + b.hart[1].calls, 0);
    assert_int_equal(pr(b.p, 4 * 3), 0);
    snap_free(&s);
    plic_destroy(a.p);
    plic_destroy(b.p);
    plic_destroy(one.p);
}

/* ================= ACLINT ================= */

struct aclint_fix {
    struct mip_rec hart[2];
    uint64_t now;
    int kicks;
    struct aclint *a;
};

static uint64_t fix_now(void *ctx) { return ((struct aclint_fix *)ctx)->now; }
static void fix_kick(void *ctx) { ((struct aclint_fix *)ctx)->kicks++; }

static void aclint_new(struct aclint_fix *f, unsigned nharts) {
    memset(f, 0, sizeof *f);
    struct hart_irq h[2] = {{mip_rec_set, &f->hart[0]}, {mip_rec_set, &f->hart[1]}};
    f->a = aclint_create(nharts, h, (struct aclint_host){fix_now, fix_kick, f});
    assert_non_null(f->a);
}

static uint64_t ar(struct aclint *a, uint64_t off, unsigned size) { return aclint_mmio_ops.read(a, off, size); }
static void aw(struct aclint *a, uint64_t off, uint64_t v, unsigned size) { aclint_mmio_ops.write(a, off, v, size); }

static void test_aclint_roundtrip(void **state) {
    (void)state;
    struct aclint_fix x, y;
    aclint_new(&x, 2);
    aclint_new(&y, 2);
    x.now = y.now = 1000;
    aw(x.a, 0x4000, 900, 8);           /* hart 0: due */
    aw(x.a, 0x4008, 0x123456789ull, 8); /* hart 1: later */
    aw(x.a, 4, 1, 4);                  /* hart 1: software interrupt */
    assert_int_equal(x.hart[0].mip, HART_IRQ_MTIP);
    assert_int_equal(x.hart[1].mip, HART_IRQ_MSIP);

    struct snap s;
    assert_true(aclint_save(x.a, snap_start(&s)));
    snap_finish(&s);
    struct snap_section sec = section(&s, "aclint");
    char err[256];
    if (!aclint_load(y.a, &sec, err, sizeof err)) fail_msg("aclint_load: %s", err);
    assert_int_equal(y.hart[0].mip, HART_IRQ_MTIP);
    assert_int_equal(y.hart[1].mip, HART_IRQ_MSIP);
    assert_int_equal(y.kicks, 1);
    for (uint64_t off = 0; off < 8; off += 4) assert_int_equal(ar(y.a, off, 4), ar(x.a, off, 4));
    for (uint64_t off = 0x4000; off < 0x4010; off += 8) assert_int_equal(ar(y.a, off, 8), ar(x.a, off, 8));
    assert_int_equal(aclint_next_deadline(y.a), 0x123456789ull);
    /* The timer goes on from the loaded compare values. */
    aclint_update(y.a, 0x123456789ull);
    assert_int_equal(y.hart[1].mip, HART_IRQ_MSIP | HART_IRQ_MTIP);
    snap_free(&s);
    aclint_destroy(x.a);
    aclint_destroy(y.a);
}

static void test_aclint_hostile(void **state) {
    (void)state;
    struct aclint_fix x, y, one;
    aclint_new(&x, 2);
    aclint_new(&y, 2);
    aclint_new(&one, 1);
    aw(x.a, 0, 1, 4);
    struct snap s, bad;
    assert_true(aclint_save(x.a, snap_start(&s)));
    snap_finish(&s);
    struct snap_section sec = section(&s, "aclint");
    assert_int_equal(sec.len, 4 + 2 * 9);
    char err[256];
    assert_false(aclint_load(one.a, &sec, err, sizeof err));
    assert_string_equal(err, "snapshot has 2 harts' ACLINT timers, this VM 1");
    struct snap_section f = patch(&bad, &sec, 4 + 9 + 8, 2, 1); /* hart 1's msip = 2 */
    assert_false(aclint_load(y.a, &f, err, sizeof err));
    assert_non_null(strstr(err, "aclint"));
    snap_free(&bad);
    f = forge(&bad, &sec, sec.len + 1, 1, 0, 0, 0);
    assert_false(aclint_load(y.a, &f, err, sizeof err));
    snap_free(&bad);
    /* Hart 0's msip came first and was fine, yet nothing was installed. */
    assert_int_equal(y.hart[0].calls, 0);
    assert_int_equal(ar(y.a, 0, 4), 0);
    assert_int_equal(ar(y.a, 0x4000, 8), UINT64_MAX);
    snap_free(&s);
    aclint_destroy(x.a);
    aclint_destroy(y.a);
    aclint_destroy(one.a);
}

/* ================= Goldfish RTC ================= */

enum { TIME_LOW = 0, TIME_HIGH = 4, ALARM_LOW = 8, ALARM_HIGH = 0xc, IRQ_ENABLED = 0x10, ALARM_STATUS = 0x18 };

static uint32_t rr(struct goldfish_rtc *r, uint64_t off) { return (uint32_t)goldfish_rtc_mmio_ops.read(r, off, 4); }
static void rw(struct goldfish_rtc *r, uint64_t off, uint32_t v) { goldfish_rtc_mmio_ops.write(r, off, v, 4); }

static uint64_t rtc_time(struct goldfish_rtc *r) {
    uint32_t lo = rr(r, TIME_LOW);
    return (uint64_t)rr(r, TIME_HIGH) << 32 | lo;
}

static void rtc_set_alarm(struct goldfish_rtc *r, uint64_t t) {
    rw(r, ALARM_HIGH, (uint32_t)(t >> 32));
    rw(r, ALARM_LOW, (uint32_t)t);
}

static void test_rtc_roundtrip(void **state) {
    (void)state;
    struct irq_rec i1 = {0}, i2 = {0}, i3 = {0};
    struct goldfish_rtc *r1 = goldfish_rtc_create(rec_line(&i1));
    struct goldfish_rtc *r2 = goldfish_rtc_create(rec_line(&i2));
    struct goldfish_rtc *r3 = goldfish_rtc_create(rec_line(&i3));
    /* A guest clock far from the host's: 2001-09-09. */
    const uint64_t set = 1000000000ull * 1000000000ull;
    rw(r1, TIME_HIGH, (uint32_t)(set >> 32));
    rw(r1, TIME_LOW, (uint32_t)set);
    rw(r1, IRQ_ENABLED, 1);
    rtc_set_alarm(r1, set + 3600 * 1000000000ull);
    assert_int_equal(rr(r1, ALARM_STATUS), 1);

    struct snap s;
    assert_true(goldfish_rtc_save(r1, snap_start(&s)));
    snap_finish(&s);
    uint64_t saved = rtc_time(r1);
    nanosleep(&(struct timespec){0, 100 * 1000000}, NULL);
    struct snap_section sec = section(&s, "rtc");
    char err[256];
    if (!goldfish_rtc_load(r2, &sec, err, sizeof err)) fail_msg("goldfish_rtc_load: %s", err);
    /* The guest clock goes on from the saved time: the 100 ms spent between
     * save and load are not seen, and it never goes backwards. */
    uint64_t t = rtc_time(r2);
    assert_true(t >= saved - 5 * 1000000ull);
    assert_true(t < saved + 50 * 1000000ull);
    assert_true(rtc_time(r2) >= t);
    assert_int_equal(rr(r2, ALARM_STATUS), 1);
    assert_int_equal(rr(r2, ALARM_LOW), rr(r1, ALARM_LOW));
    assert_int_equal(rr(r2, ALARM_HIGH), rr(r1, ALARM_HIGH));
    assert_int_equal(rr(r2, IRQ_ENABLED), 1);
    assert_false(i2.level);
    snap_free(&s);

    /* An alarm that fired (irq pending) is saved with its line up. */
    rtc_set_alarm(r1, set);
    assert_true(i1.level);
    assert_int_equal(rr(r1, ALARM_STATUS), 0);
    assert_true(goldfish_rtc_save(r1, snap_start(&s)));
    snap_finish(&s);
    sec = section(&s, "rtc");
    if (!goldfish_rtc_load(r3, &sec, err, sizeof err)) fail_msg("goldfish_rtc_load: %s", err);
    assert_true(i3.level);
    assert_int_equal(rr(r3, ALARM_STATUS), 0);

    /* Hostile: an irq_enabled of 2, a short section. */
    struct snap bad;
    struct irq_rec i4 = {0};
    struct goldfish_rtc *r4 = goldfish_rtc_create(rec_line(&i4));
    struct snap_section f = patch(&bad, &sec, sec.len - 1, 2, 1);
    assert_false(goldfish_rtc_load(r4, &f, err, sizeof err));
    assert_non_null(strstr(err, "rtc"));
    snap_free(&bad);
    f = forge(&bad, &sec, sec.len - 1, 1, 0, 0, 0);
    assert_false(goldfish_rtc_load(r4, &f, err, sizeof err));
    snap_free(&bad);
    assert_int_equal(i4.calls, 0);
    assert_int_equal(rr(r4, IRQ_ENABLED), 0);
    snap_free(&s);
    goldfish_rtc_destroy(r1);
    goldfish_rtc_destroy(r2);
    goldfish_rtc_destroy(r3);
    goldfish_rtc_destroy(r4);
}

/* ================= VM generation ID ================= */

static void read_id(struct vmgenid *g, unsigned size, uint8_t id[VMGENID_SIZE]) {
    for (unsigned off = 0; off < VMGENID_SIZE; off += size) {
        uint64_t v = vmgenid_mmio_ops.read(g, off, size);
        for (unsigned i = 0; i < size; i++) id[off + i] = (uint8_t)(v >> (8 * i));
    }
}

static void test_vmgenid(void **state) {
    (void)state;
    struct irq_rec i1 = {0}, i2 = {0};
    struct vmgenid *g1 = vmgenid_create(rec_line(&i1)), *g2 = vmgenid_create(rec_line(&i2));
    assert_non_null(g1);
    assert_non_null(g2);
    uint8_t a[VMGENID_SIZE], b[VMGENID_SIZE], c[VMGENID_SIZE];
    vmgenid_get(g1, a);
    vmgenid_get(g2, b);
    assert_memory_not_equal(a, b, VMGENID_SIZE); /* two VMs: two IDs */
    /* Every access size reads the same little-endian bytes; past the ID
     * and writes: nothing. */
    for (unsigned size = 1; size <= 8; size *= 2) {
        read_id(g1, size, c);
        assert_memory_equal(a, c, VMGENID_SIZE);
    }
    vmgenid_mmio_ops.write(g1, 0, ~0ull, 8);
    assert_int_equal(vmgenid_mmio_ops.read(g1, 16, 8), 0);
    assert_int_equal(vmgenid_mmio_ops.read(g1, 12, 8), (uint64_t)a[12] | (uint64_t)a[13] << 8 |
                                                           (uint64_t)a[14] << 16 | (uint64_t)a[15] << 24);
    vmgenid_get(g1, c);
    assert_memory_equal(a, c, VMGENID_SIZE);
    assert_int_equal(i1.calls, 0);

    /* A new generation: a new ID and the line up until the guest reads it. */
    assert_true(vmgenid_new_generation(g1));
    vmgenid_get(g1, c);
    assert_memory_not_equal(a, c, VMGENID_SIZE);
    assert_true(i1.level);
    (void)vmgenid_mmio_ops.read(g1, 0x800, 4); /* not the ID: the line stays */
    assert_true(i1.level);
    read_id(g1, 8, b);
    assert_memory_equal(b, c, VMGENID_SIZE);
    assert_false(i1.level);

    /* Saved and loaded: the same ID and line (a migration keeps both). */
    assert_true(vmgenid_new_generation(g1));
    vmgenid_get(g1, a);
    struct snap s;
    assert_true(vmgenid_save(g1, snap_start(&s)));
    snap_finish(&s);
    struct snap_section sec = section(&s, "vmgenid");
    char err[256];
    if (!vmgenid_load(g2, &sec, err, sizeof err)) fail_msg("vmgenid_load: %s", err);
    vmgenid_get(g2, b);
    assert_memory_equal(a, b, VMGENID_SIZE);
    assert_true(i2.level);

    /* Hostile: irq_pending of 2, a short section; the device is untouched. */
    struct snap bad;
    struct irq_rec i3 = {0};
    struct vmgenid *g3 = vmgenid_create(rec_line(&i3));
    vmgenid_get(g3, c);
    struct snap_section f = patch(&bad, &sec, sec.len - 1, 2, 1);
    assert_false(vmgenid_load(g3, &f, err, sizeof err));
    assert_non_null(strstr(err, "vmgenid"));
    snap_free(&bad);
    f = forge(&bad, &sec, sec.len - 1, 1, 0, 0, 0);
    assert_false(vmgenid_load(g3, &f, err, sizeof err));
    snap_free(&bad);
    vmgenid_get(g3, b);
    assert_memory_equal(b, c, VMGENID_SIZE);
    assert_int_equal(i3.calls, 0);
    snap_free(&s);
    vmgenid_destroy(g1);
    vmgenid_destroy(g2);
    vmgenid_destroy(g3);
}

/* ================= virtio ================= */

#define MEM_BASE 0x80000000ull
#define MEM_SIZE (4u << 20)
#define RING(q) (MEM_BASE + 0x4000 * (uint64_t)(q)) /* desc +0, avail +0x1000, used +0x2000 */
#define BUF (MEM_BASE + 0x100000)
#define QSIZE 8
#define F_V1 (1ull << VIRTIO_F_VERSION_1)
#define F_EVIDX (1ull << VIRTIO_F_RING_EVENT_IDX)

/* Offsets in a "virtio" section: device id 0, status 4, driver_features 24,
 * isr 32, queue count 40, then 34 bytes per queue: num 44, ready 46,
 * event_idx 47, desc 48, ...; then the backend's part. */
#define SEC_STATUS 4
#define SEC_FEATURES 24
#define SEC_Q0_NUM 44
#define SEC_Q_SIZE 34

struct vfix {
    struct fake_mem mem; /* guest RAM, the same for the saved and the restored device */
    struct vdrv v;
    struct irq_rec irq;
};

static struct virtio_mmio *transport(struct vfix *f, const struct virtio_device_ops *ops, void *dev) {
    struct virtio_mmio *t = virtio_mmio_create(ops, dev, fake_mem_ops(&f->mem), rec_line(&f->irq));
    assert_non_null(t);
    return t;
}

static void vfix_init(struct vfix *f) {
    memset(f, 0, sizeof *f);
    fake_mem_init(&f->mem, MEM_BASE, MEM_SIZE);
    f->v.mem = fake_mem_ops(&f->mem);
}

/* Negotiates, sets queues 0..nq-1 up and sets DRIVER_OK. */
static void vfix_start(struct vfix *f, uint64_t features, unsigned nq) {
    assert_true(vdrv_negotiate(&f->v, features) & VIRTIO_STATUS_FEATURES_OK);
    for (unsigned q = 0; q < nq; q++) {
        vdrv_zero(&f->v, RING(q), 0x3000);
        vdrv_setup_queue(&f->v, q, QSIZE, RING(q), RING(q) + 0x1000, RING(q) + 0x2000);
    }
    vdrv_driver_ok(&f->v);
}

static struct snap_section save_virtio(struct snap *s, struct virtio_mmio *t) {
    assert_true(virtio_mmio_save(t, snap_start(s)));
    snap_finish(s);
    return section(s, "virtio");
}

/* Posts one device-writable buffer of len bytes at gpa on queue q as chain `head`. */
static void post_in(struct vfix *f, unsigned q, uint16_t head, uint64_t gpa, uint32_t len, bool notify) {
    struct vdrv_seg seg = {gpa, len, true};
    vdrv_post(&f->v, q, vdrv_write_chain(&f->v, q, head, &seg, 1));
    if (notify) vdrv_notify(&f->v, q);
}

static void test_virtio_rng_roundtrip(void **state) {
    (void)state;
    struct vfix f;
    vfix_init(&f);
    struct virtio_rng *g1 = virtio_rng_create(NULL), *g2 = virtio_rng_create(NULL);
    struct virtio_mmio *t1 = transport(&f, &virtio_rng_ops, g1), *t2 = transport(&f, &virtio_rng_ops, g2);
    f.v.t = t1;
    vfix_start(&f, F_V1 | F_EVIDX, 1);
    vdrv_set_used_event(&f.v, 0, 0);
    post_in(&f, 0, 0, BUF, 16, true);
    assert_int_equal(vdrv_used_idx(&f.v, 0), 1);
    assert_true(f.irq.level);
    /* A second request posted but not yet served when the snapshot is taken. */
    post_in(&f, 0, 1, BUF + 0x100, 32, false);
    vdrv_wr(&f.v, VIRTIO_MMIO_QUEUE_SEL, 0);

    struct snap s;
    struct snap_section sec = save_virtio(&s, t1);
    assert_int_equal(sec.version, 1);
    f.irq = (struct irq_rec){0};
    char err[256];
    if (!virtio_mmio_load(t2, &sec, err, sizeof err)) fail_msg("virtio_mmio_load: %s", err);
    assert_true(f.irq.level); /* isr still had the used-buffer bit */

    static const uint64_t regs[] = {
        VIRTIO_MMIO_STATUS,          VIRTIO_MMIO_INTERRUPT_STATUS,  VIRTIO_MMIO_QUEUE_READY,
        VIRTIO_MMIO_QUEUE_DESC_LOW,  VIRTIO_MMIO_QUEUE_DRIVER_LOW, VIRTIO_MMIO_QUEUE_DEVICE_LOW,
        VIRTIO_MMIO_QUEUE_DESC_HIGH, VIRTIO_MMIO_CONFIG_GENERATION,
    };
    for (unsigned i = 0; i < sizeof regs / sizeof regs[0]; i++) {
        f.v.t = t1;
        uint64_t want = vdrv_rd(&f.v, regs[i]);
        f.v.t = t2;
        assert_int_equal(vdrv_rd(&f.v, regs[i]), want);
    }
    assert_int_equal(vdrv_rd(&f.v, VIRTIO_MMIO_STATUS), 0xf);
    assert_int_equal(virtio_mmio_driver_features(t2), F_V1 | F_EVIDX);

    /* The restored device serves what was posted before the snapshot once
     * resumed, then new requests as usual. */
    vdrv_wr(&f.v, VIRTIO_MMIO_INTERRUPT_ACK, 1);
    assert_false(f.irq.level);
    vdrv_set_used_event(&f.v, 0, 1);
    virtio_mmio_resume(t2);
    assert_int_equal(vdrv_used_idx(&f.v, 0), 2);
    assert_int_equal(vdrv_used_id(&f.v, 0, 1), 1);
    assert_int_equal(vdrv_used_len(&f.v, 0, 1), 32);
    assert_true(f.irq.level);
    post_in(&f, 0, 2, BUF + 0x200, 8, true);
    assert_int_equal(vdrv_used_idx(&f.v, 0), 3);
    assert_int_equal(vdrv_used_len(&f.v, 0, 2), 8);
    assert_false(vdrv_broken(&f.v));
    snap_free(&s);
    virtio_mmio_destroy(t1);
    virtio_mmio_destroy(t2);
    virtio_rng_destroy(g1);
    virtio_rng_destroy(g2);
    fake_mem_free(&f.mem);
}

static void test_virtio_broken_roundtrip(void **state) {
    (void)state;
    struct vfix f;
    vfix_init(&f);
    struct virtio_rng *g1 = virtio_rng_create(NULL), *g2 = virtio_rng_create(NULL);
    struct virtio_mmio *t1 = transport(&f, &virtio_rng_ops, g1), *t2 = transport(&f, &virtio_rng_ops, g2);
    f.v.t = t1;
    vfix_start(&f, F_V1, 1);
    virtio_mmio_lock(t1);
    virtio_mmio_set_broken(t1, "test");
    virtio_mmio_unlock(t1);
    post_in(&f, 0, 0, BUF, 16, false);
    struct snap s;
    struct snap_section sec = save_virtio(&s, t1);
    char err[256];
    if (!virtio_mmio_load(t2, &sec, err, sizeof err)) fail_msg("virtio_mmio_load: %s", err);
    f.v.t = t2;
    assert_true(vdrv_broken(&f.v));
    assert_int_equal(vdrv_rd(&f.v, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
    virtio_mmio_resume(t2); /* a broken device serves nothing */
    assert_int_equal(vdrv_used_idx(&f.v, 0), 0);
    /* The driver's reset brings it back. */
    vfix_start(&f, F_V1, 1);
    post_in(&f, 0, 0, BUF, 16, true);
    assert_int_equal(vdrv_used_idx(&f.v, 0), 1);
    snap_free(&s);
    virtio_mmio_destroy(t1);
    virtio_mmio_destroy(t2);
    virtio_rng_destroy(g1);
    virtio_rng_destroy(g2);
    fake_mem_free(&f.mem);
}

static void test_virtio_hostile(void **state) {
    (void)state;
    struct vfix f;
    vfix_init(&f);
    struct virtio_rng *g1 = virtio_rng_create(NULL), *g2 = virtio_rng_create(NULL);
    struct virtio_console *con = virtio_console_create((struct virtio_console_sink){0}, NULL);
    struct virtio_mmio *t1 = transport(&f, &virtio_rng_ops, g1), *t2 = transport(&f, &virtio_rng_ops, g2);
    struct virtio_mmio *tc = transport(&f, &virtio_console_ops, con);
    virtio_console_attach(con, tc);
    f.v.t = t1;
    vfix_start(&f, F_V1 | F_EVIDX, 1);
    struct snap s, bad;
    struct snap_section sec = save_virtio(&s, t1);
    assert_int_equal(sec.len, SEC_Q0_NUM + SEC_Q_SIZE);
    char err[256];

    assert_false(virtio_mmio_load(tc, &sec, err, sizeof err));
    assert_string_equal(err, "slot holds a virtio-console, the snapshot a virtio-rng");
    struct snap_section x = patch(&bad, &sec, 0, 77, 4);
    assert_false(virtio_mmio_load(t2, &x, err, sizeof err));
    assert_string_equal(err, "slot holds a virtio-rng, the snapshot a virtio device 77");
    snap_free(&bad);

    struct {
        const char *what;
        size_t len, off;
        uint64_t value;
        unsigned size;
    } cases[] = {
        {"short", SEC_Q0_NUM + SEC_Q_SIZE - 1, 0, 0, 0},
        {"trailing byte", SEC_Q0_NUM + SEC_Q_SIZE + 1, 0, 0, 0},
        {"queue num 3", SEC_Q0_NUM + SEC_Q_SIZE, SEC_Q0_NUM, 3, 2},
        {"queue num above max", SEC_Q0_NUM + SEC_Q_SIZE, SEC_Q0_NUM, 2 * VIRTIO_RNG_QUEUE_SIZE, 2},
        {"ready 2", SEC_Q0_NUM + SEC_Q_SIZE, SEC_Q0_NUM + 2, 2, 1},
        {"event_idx not negotiated", SEC_Q0_NUM + SEC_Q_SIZE, SEC_Q0_NUM + 3, 0, 1},
        {"desc misaligned", SEC_Q0_NUM + SEC_Q_SIZE, SEC_Q0_NUM + 4, RING(0) + 8, 8},
        {"feature not offered", SEC_Q0_NUM + SEC_Q_SIZE, SEC_FEATURES, F_V1 | F_EVIDX | (1ull << 40), 8},
        {"DRIVER_OK without FEATURES_OK", SEC_Q0_NUM + SEC_Q_SIZE, SEC_STATUS, 0x7, 4},
        {"status above 0xff", SEC_Q0_NUM + SEC_Q_SIZE, SEC_STATUS, 0x10f, 4},
        {"isr 4", SEC_Q0_NUM + SEC_Q_SIZE, 32, 4, 4},
        {"two queues", SEC_Q0_NUM + SEC_Q_SIZE, 40, 2, 4},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        x = forge(&bad, &sec, cases[i].len, 1, cases[i].off, cases[i].value, cases[i].size);
        err[0] = 0;
        if (virtio_mmio_load(t2, &x, err, sizeof err)) fail_msg("accepted: %s", cases[i].what);
        assert_true(strlen(err) > 0);
        snap_free(&bad);
    }
    x = forge(&bad, &sec, sec.len, 2, 0, 0, 0);
    assert_false(virtio_mmio_load(t2, &x, err, sizeof err));
    assert_non_null(strstr(err, "version 2"));
    snap_free(&bad);
    /* t2 is as it was built. */
    f.v.t = t2;
    assert_int_equal(vdrv_rd(&f.v, VIRTIO_MMIO_STATUS), 0);
    vdrv_wr(&f.v, VIRTIO_MMIO_QUEUE_SEL, 0);
    assert_int_equal(vdrv_rd(&f.v, VIRTIO_MMIO_QUEUE_READY), 0);
    snap_free(&s);
    virtio_mmio_destroy(t1);
    virtio_mmio_destroy(t2);
    virtio_mmio_destroy(tc);
    virtio_rng_destroy(g1);
    virtio_rng_destroy(g2);
    virtio_console_destroy(con);
    fake_mem_free(&f.mem);
}

/* ---- virtio-console: pending host input ---- */

static void test_virtio_console_roundtrip(void **state) {
    (void)state;
    struct vfix f;
    vfix_init(&f);
    struct virtio_console *c1 = virtio_console_create((struct virtio_console_sink){0}, NULL);
    struct virtio_console *c2 = virtio_console_create((struct virtio_console_sink){0}, NULL);
    struct virtio_mmio *t1 = transport(&f, &virtio_console_ops, c1), *t2 = transport(&f, &virtio_console_ops, c2);
    virtio_console_attach(c1, t1);
    virtio_console_attach(c2, t2);
    f.v.t = t1;
    vfix_start(&f, F_V1, 2);
    assert_int_equal(virtio_console_input(c1, (const uint8_t *)"hello", 5), 5); /* no receive buffer yet */

    struct snap s;
    struct snap_section sec = save_virtio(&s, t1);
    char err[256];
    if (!virtio_mmio_load(t2, &sec, err, sizeof err)) fail_msg("virtio_mmio_load: %s", err);
    assert_int_equal(virtio_console_input_space(c2), VIRTIO_CONSOLE_INPUT_BUF - 5);
    f.v.t = t2;
    post_in(&f, 0, 0, BUF, 64, true);
    assert_int_equal(vdrv_used_idx(&f.v, 0), 1);
    assert_int_equal(vdrv_used_len(&f.v, 0, 0), 5);
    assert_memory_equal(fake_mem_host(&f.mem, BUF), "hello", 5);

    /* Hostile: an input length beyond the buffer, or beyond the section. */
    struct snap bad;
    struct virtio_console *c3 = virtio_console_create((struct virtio_console_sink){0}, NULL);
    struct virtio_mmio *t3 = transport(&f, &virtio_console_ops, c3);
    virtio_console_attach(c3, t3);
    size_t in_len_off = SEC_Q0_NUM + 2 * SEC_Q_SIZE;
    struct snap_section x = patch(&bad, &sec, in_len_off, VIRTIO_CONSOLE_INPUT_BUF + 1, 4);
    assert_false(virtio_mmio_load(t3, &x, err, sizeof err));
    assert_non_null(strstr(err, "virtio-console"));
    snap_free(&bad);
    x = patch(&bad, &sec, in_len_off, 6, 4);
    assert_false(virtio_mmio_load(t3, &x, err, sizeof err));
    snap_free(&bad);
    assert_int_equal(virtio_console_input_space(c3), VIRTIO_CONSOLE_INPUT_BUF);
    snap_free(&s);
    virtio_mmio_destroy(t1);
    virtio_mmio_destroy(t2);
    virtio_mmio_destroy(t3);
    virtio_console_destroy(c1);
    virtio_console_destroy(c2);
    virtio_console_destroy(c3);
    fake_mem_free(&f.mem);
}

/* ---- virtio-balloon: config space and the held stats buffer ---- */

static uint64_t no_drop_frames(void *ctx, const uint64_t *gpa, size_t n) {
    (void)ctx, (void)gpa, (void)n;
    return 0;
}

static uint64_t no_drop_range(void *ctx, uint64_t gpa, uint64_t len) {
    (void)ctx, (void)gpa, (void)len;
    return 0;
}

static void test_virtio_balloon_roundtrip(void **state) {
    (void)state;
    struct vfix f;
    vfix_init(&f);
    struct guest_ram_ops ram = {MEM_BASE, MEM_SIZE, no_drop_frames, no_drop_range, NULL};
    struct virtio_balloon *b1 = virtio_balloon_create(ram, NULL), *b2 = virtio_balloon_create(ram, NULL);
    struct virtio_mmio *t1 = transport(&f, &virtio_balloon_ops, b1), *t2 = transport(&f, &virtio_balloon_ops, b2);
    virtio_balloon_attach(b1, t1);
    virtio_balloon_attach(b2, t2);
    f.v.t = t1;
    vfix_start(&f, F_V1 | (1ull << VIRTIO_BALLOON_F_STATS_VQ), 3);
    /* The stats buffer (chain 5 of queue 2) stays with the device. */
    struct vdrv_seg seg = {BUF, 10, false};
    memset(fake_mem_host(&f.mem, BUF), 0, 10);
    vdrv_post(&f.v, 2, vdrv_write_chain(&f.v, 2, 5, &seg, 1));
    vdrv_notify(&f.v, 2);
    assert_int_equal(vdrv_used_idx(&f.v, 2), 0);
    virtio_balloon_set_target(b1, 300);
    virtio_mmio_ops.write(t1, VIRTIO_MMIO_CONFIG + 4, 120, 4);

    struct snap s;
    struct snap_section sec = save_virtio(&s, t1);
    char err[256];
    if (!virtio_mmio_load(t2, &sec, err, sizeof err)) fail_msg("virtio_mmio_load: %s", err);
    assert_int_equal(virtio_mmio_ops.read(t2, VIRTIO_MMIO_CONFIG, 4), 300);
    assert_int_equal(virtio_mmio_ops.read(t2, VIRTIO_MMIO_CONFIG + 4, 4), 120);
    struct virtio_balloon_info info;
    virtio_balloon_get_info(b2, &info);
    assert_int_equal(info.target_pages, 300);
    assert_int_equal(info.actual_pages, 120);
    /* Asking for stats gives the held buffer back, by its saved head. */
    f.v.t = t2;
    virtio_balloon_request_stats(b2);
    assert_int_equal(vdrv_used_idx(&f.v, 2), 1);
    assert_int_equal(vdrv_used_id(&f.v, 2, 0), 5);

    /* Hostile: actual above guest RAM, a stats head beyond any queue. */
    struct snap bad;
    struct virtio_balloon *b3 = virtio_balloon_create(ram, NULL);
    struct virtio_mmio *t3 = transport(&f, &virtio_balloon_ops, b3);
    virtio_balloon_attach(b3, t3);
    size_t st = SEC_Q0_NUM + 4 * SEC_Q_SIZE; /* num_pages, actual, stats_held, stats_head */
    struct snap_section x = patch(&bad, &sec, st + 4, MEM_SIZE / 4096 + 1, 4);
    assert_false(virtio_mmio_load(t3, &x, err, sizeof err));
    assert_non_null(strstr(err, "virtio-balloon"));
    snap_free(&bad);
    x = patch(&bad, &sec, st + 9, VIRTIO_BALLOON_QUEUE_SIZE, 2);
    assert_false(virtio_mmio_load(t3, &x, err, sizeof err));
    snap_free(&bad);
    assert_int_equal(virtio_mmio_ops.read(t3, VIRTIO_MMIO_CONFIG + 4, 4), 0);
    snap_free(&s);
    virtio_mmio_destroy(t1);
    virtio_mmio_destroy(t2);
    virtio_mmio_destroy(t3);
    virtio_balloon_destroy(b1);
    virtio_balloon_destroy(b2);
    virtio_balloon_destroy(b3);
    fake_mem_free(&f.mem);
}

/* ---- virtio-blk: the capacity must match the image ---- */

static void make_image(const char *path, off_t size) {
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, size), 0);
    close(fd);
}

static struct virtio_mmio *blk_open(struct vfix *f, const char *path, struct virtio_backend *be) {
    char opts[300], err[256];
    snprintf(opts, sizeof opts, "file=%s", path);
    struct virtio_backend_env env = {.mem = fake_mem_ops(&f->mem)};
    if (!virtio_blk_backend_create(opts, &env, be, err, sizeof err)) fail_msg("blk: %s", err);
    struct virtio_mmio *t = transport(f, be->ops, be->dev);
    be->attach(be->dev, t);
    return t;
}

static void test_virtio_blk_roundtrip(void **state) {
    (void)state;
    char dir[] = "/tmp/rvisor-snap-test-XXXXXX", a[64], b[64], c[64];
    assert_non_null(mkdtemp(dir));
    snprintf(a, sizeof a, "%s/a.img", dir);
    snprintf(b, sizeof b, "%s/b.img", dir);
    snprintf(c, sizeof c, "%s/c.img", dir);
    make_image(a, 1 << 20);
    make_image(b, 1 << 20);
    make_image(c, 2 << 20);
    struct vfix f;
    vfix_init(&f);
    struct virtio_backend ba, bb, bc;
    struct virtio_mmio *ta = blk_open(&f, a, &ba), *tb = blk_open(&f, b, &bb), *tc = blk_open(&f, c, &bc);
    f.v.t = ta;
    vfix_start(&f, F_V1 | (1ull << VIRTIO_BLK_F_FLUSH), 1);

    struct snap s;
    struct snap_section sec = save_virtio(&s, ta);
    char err[256];
    assert_false(virtio_mmio_load(tc, &sec, err, sizeof err));
    assert_string_equal(err, "disk image has 4096 sectors, the snapshot recorded 2048");
    f.v.t = tc;
    assert_int_equal(vdrv_rd(&f.v, VIRTIO_MMIO_STATUS), 0);
    if (!virtio_mmio_load(tb, &sec, err, sizeof err)) fail_msg("virtio_mmio_load: %s", err);

    /* A GET_ID request on the restored device. */
    f.v.t = tb;
    uint32_t hdr[4] = {VIRTIO_BLK_T_GET_ID, 0, 0, 0};
    vdrv_poke(&f.v, BUF, hdr, sizeof hdr);
    struct vdrv_seg segs[3] = {{BUF, 16, false}, {BUF + 0x100, 20, true}, {BUF + 0x200, 1, true}};
    vdrv_post(&f.v, 0, vdrv_write_chain(&f.v, 0, 0, segs, 3));
    vdrv_notify(&f.v, 0);
    assert_int_equal(vdrv_used_idx(&f.v, 0), 1);
    assert_int_equal(vdrv_used_len(&f.v, 0, 0), 21);
    assert_int_equal(*fake_mem_host(&f.mem, BUF + 0x200), VIRTIO_BLK_S_OK);
    assert_memory_equal(fake_mem_host(&f.mem, BUF + 0x100), "b.img", 5);
    snap_free(&s);
    ba.destroy(ba.dev);
    bb.destroy(bb.dev);
    bc.destroy(bc.dev);
    virtio_mmio_destroy(ta);
    virtio_mmio_destroy(tb);
    virtio_mmio_destroy(tc);
    unlink(a);
    unlink(b);
    unlink(c);
    rmdir(dir);
    fake_mem_free(&f.mem);
}

/* ---- virtio-net: the MAC survives ---- */

static void test_virtio_net_roundtrip(void **state) {
    (void)state;
    struct vfix f;
    vfix_init(&f);
    const uint8_t mac1[6] = {0x52, 0x54, 0x00, 0x11, 0x22, 0x33}, mac2[6] = {0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc};
    struct virtio_net *n1 = virtio_net_create(NULL, mac1), *n2 = virtio_net_create(NULL, mac2);
    struct virtio_net *n3 = virtio_net_create(NULL, mac2);
    struct virtio_mmio *t1 = transport(&f, &virtio_net_ops, n1), *t2 = transport(&f, &virtio_net_ops, n2);
    struct virtio_mmio *t3 = transport(&f, &virtio_net_ops, n3);
    virtio_net_attach(n1, t1);
    virtio_net_attach(n2, t2);
    virtio_net_attach(n3, t3);
    f.v.t = t1;
    vfix_start(&f, F_V1 | (1ull << VIRTIO_NET_F_MAC), 2);

    struct snap s, bad;
    struct snap_section sec = save_virtio(&s, t1);
    char err[256];
    if (!virtio_mmio_load(t2, &sec, err, sizeof err)) fail_msg("virtio_mmio_load: %s", err);
    for (unsigned i = 0; i < 6; i++) assert_int_equal(virtio_mmio_ops.read(t2, VIRTIO_MMIO_CONFIG + i, 1), mac1[i]);
    assert_int_equal(virtio_mmio_ops.read(t2, VIRTIO_MMIO_CONFIG + 6, 2), VIRTIO_NET_S_LINK_UP);

    size_t cfg = SEC_Q0_NUM + 2 * SEC_Q_SIZE;
    struct snap_section x = patch(&bad, &sec, cfg, 0x01, 1); /* multicast */
    assert_false(virtio_mmio_load(t3, &x, err, sizeof err));
    assert_non_null(strstr(err, "virtio-net"));
    snap_free(&bad);
    x = patch(&bad, &sec, cfg + 6, 0x80, 1);
    assert_false(virtio_mmio_load(t3, &x, err, sizeof err));
    snap_free(&bad);
    assert_int_equal(virtio_mmio_ops.read(t3, VIRTIO_MMIO_CONFIG + 3, 1), 0xaa);
    snap_free(&s);
    virtio_mmio_destroy(t1);
    virtio_mmio_destroy(t2);
    virtio_mmio_destroy(t3);
    virtio_net_destroy(n1);
    virtio_net_destroy(n2);
    virtio_net_destroy(n3);
    fake_mem_free(&f.mem);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uart_roundtrip),
        cmocka_unit_test(test_uart_hostile),
        cmocka_unit_test(test_plic_roundtrip),
        cmocka_unit_test(test_plic_hostile),
        cmocka_unit_test(test_aclint_roundtrip),
        cmocka_unit_test(test_aclint_hostile),
        cmocka_unit_test(test_rtc_roundtrip),
        cmocka_unit_test(test_vmgenid),
        cmocka_unit_test(test_virtio_rng_roundtrip),
        cmocka_unit_test(test_virtio_broken_roundtrip),
        cmocka_unit_test(test_virtio_hostile),
        cmocka_unit_test(test_virtio_console_roundtrip),
        cmocka_unit_test(test_virtio_balloon_roundtrip),
        cmocka_unit_test(test_virtio_blk_roundtrip),
        cmocka_unit_test(test_virtio_net_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
