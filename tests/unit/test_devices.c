/* Unit tests of the virt board's platform devices, driven through their
 * mmio_ops exactly as the bus would, with recording stubs for interrupt
 * lines and harts. Builds standalone (no core library) with the device .c
 * files on the command line; meson links it against the core library
 * instead. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dev/aclint.h"
#include "dev/goldfish_rtc.h"
#include "dev/irq.h"
#include "dev/plic.h"
#include "dev/pvpanic.h"
#include "dev/syscon.h"
#include "dev/uart16550.h"

/* ---- a recording hart: the mip bits an interrupt controller drives ---- */

struct mip_rec {
    uint64_t mip;
    int calls;
};

static void mip_rec_set(void *ctx, uint64_t mask, bool level) {
    struct mip_rec *r = ctx;
    if (level)
        r->mip |= mask;
    else
        r->mip &= ~mask;
    r->calls++;
}

static struct hart_irq rec_hart(struct mip_rec *r) { return (struct hart_irq){mip_rec_set, r}; }

static uint64_t mip(const struct mip_rec *r) { return r->mip; }

/* ---- a recording interrupt line ---- */

struct irq_rec {
    bool level;
    unsigned irq;
    int calls;
};

static void irq_rec_set(void *ctx, unsigned irq, bool level) {
    struct irq_rec *r = ctx;
    r->level = level;
    r->irq = irq;
    r->calls++;
}

static struct irq_line rec_line(struct irq_rec *r, unsigned irq) { return (struct irq_line){irq_rec_set, r, irq}; }

/* ---- a tiny deterministic generator for garbage accesses ---- */

static uint64_t xorshift(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static const unsigned sizes[] = {1, 2, 4, 8};

/* Every offset in [from, to) with every size, garbage writes then reads. */
static void hammer(const struct mmio_ops *ops, void *dev, uint64_t from, uint64_t to, uint64_t step, uint64_t *seed) {
    for (uint64_t off = from; off < to; off += step)
        for (unsigned s = 0; s < 4; s++) {
            ops->write(dev, off, xorshift(seed), sizes[s]);
            (void)ops->read(dev, off, sizes[s]);
        }
}

/* ================= UART ================= */

enum { THR = 0, RBR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

struct outbuf {
    uint8_t b[64];
    size_t n;
};

static void out_cb(void *ctx, uint8_t byte) {
    struct outbuf *o = ctx;
    if (o->n < sizeof o->b) o->b[o->n++] = byte;
}

static uint8_t ur(struct uart16550 *u, unsigned reg) { return (uint8_t)uart_mmio_ops.read(u, reg, 1); }
static void uw(struct uart16550 *u, unsigned reg, uint8_t v) { uart_mmio_ops.write(u, reg, v, 1); }

struct uart_fixture {
    struct uart16550 *u;
    struct irq_rec irq;
    struct outbuf out;
};

static int uart_setup(void **state) {
    struct uart_fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    f->u = uart_create(rec_line(&f->irq, 10), out_cb, &f->out);
    if (!f->u) return -1;
    *state = f;
    return 0;
}

static int uart_teardown(void **state) {
    struct uart_fixture *f = *state;
    uart_destroy(f->u);
    free(f);
    return 0;
}

static void test_uart_transmit(void **state) {
    struct uart_fixture *f = *state;
    uw(f->u, LCR, 0x03);
    uw(f->u, THR, 'h');
    uw(f->u, THR, 'i');
    assert_int_equal(f->out.n, 2);
    assert_memory_equal(f->out.b, "hi", 2);
    /* Transmission is instant: THR and the shifter are always empty. */
    assert_int_equal(ur(f->u, LSR) & 0x61, 0x60);
    /* Accesses of other sizes act on the low byte of the register. */
    uart_mmio_ops.write(f->u, THR, 0xdead21, 4);
    assert_int_equal(f->out.n, 3);
    assert_int_equal(f->out.b[2], 0x21);
}

static void test_uart_rx_fifo_and_irq(void **state) {
    struct uart_fixture *f = *state;
    uint8_t in[20];
    for (unsigned i = 0; i < sizeof in; i++) in[i] = (uint8_t)('a' + i);

    uw(f->u, FCR, 0x07); /* enable and clear FIFOs */
    assert_int_equal(uart_rx_space(f->u), UART_FIFO_SIZE);
    assert_int_equal(uart_receive(f->u, in, sizeof in), UART_FIFO_SIZE);
    assert_int_equal(uart_rx_space(f->u), 0);
    assert_int_equal(uart_receive(f->u, in, 1), 0);
    assert_true(ur(f->u, LSR) & 0x01);
    assert_int_equal(ur(f->u, LSR) & 0x02, 0); /* no overrun: host keeps the rest */
    /* Data waiting but ERBFI clear: the line must stay low. */
    assert_false(f->irq.level);
    assert_int_equal(ur(f->u, IIR), 0xc1);

    uw(f->u, IER, 0x01);
    assert_true(f->irq.level);
    assert_int_equal(f->irq.irq, 10);
    assert_int_equal(ur(f->u, IIR), 0xc4);
    /* Reading IIR does not acknowledge a data interrupt; reading data does. */
    assert_true(f->irq.level);

    for (unsigned i = 0; i < UART_FIFO_SIZE; i++) {
        assert_true(f->irq.level);
        assert_int_equal(ur(f->u, RBR), in[i]);
    }
    assert_false(f->irq.level);
    assert_int_equal(ur(f->u, LSR) & 0x01, 0);
    assert_int_equal(ur(f->u, IIR), 0xc1);
    assert_int_equal(uart_rx_space(f->u), UART_FIFO_SIZE);

    /* Input arriving with ERBFI set raises the line from uart_receive. */
    assert_int_equal(uart_receive(f->u, in, 3), 3);
    assert_true(f->irq.level);
    /* FCR bit 1 flushes the receive FIFO. */
    uw(f->u, FCR, 0x03);
    assert_int_equal(ur(f->u, LSR) & 0x01, 0);
    assert_false(f->irq.level);
}

static void test_uart_fifo_disabled(void **state) {
    struct uart_fixture *f = *state;
    uint8_t in[4] = {1, 2, 3, 4};
    /* 16450 mode after reset: one holding register, no FIFO bits in IIR. */
    assert_int_equal(ur(f->u, IIR), 0x01);
    assert_int_equal(uart_rx_space(f->u), 1);
    assert_int_equal(uart_receive(f->u, in, 4), 1);
    assert_int_equal(ur(f->u, RBR), 1);
    uw(f->u, FCR, 0x01);
    assert_int_equal(ur(f->u, IIR) & 0xc0, 0xc0);
    uw(f->u, FCR, 0x00);
    assert_int_equal(ur(f->u, IIR) & 0xc0, 0x00);
}

static void test_uart_dlab(void **state) {
    struct uart_fixture *f = *state;
    uint8_t c = 'z';
    uw(f->u, IER, 0x05);
    uw(f->u, LCR, 0x83);
    uw(f->u, DLL, 0x12);
    uw(f->u, DLM, 0x34);
    assert_int_equal(f->out.n, 0); /* DLL write is not a transmit */
    assert_int_equal(ur(f->u, DLL), 0x12);
    assert_int_equal(ur(f->u, DLM), 0x34);
    assert_int_equal(ur(f->u, LCR), 0x83);
    uart_receive(f->u, &c, 1);
    assert_int_equal(ur(f->u, DLL), 0x12); /* RBR hidden behind DLL */

    uw(f->u, LCR, 0x03);
    assert_int_equal(ur(f->u, IER), 0x05); /* IER untouched by the DLM write */
    assert_int_equal(ur(f->u, RBR), 'z');
    uw(f->u, LCR, 0x80);
    assert_int_equal(ur(f->u, DLL), 0x12);
    assert_int_equal(ur(f->u, DLM), 0x34);
}

static void test_uart_thre_interrupt(void **state) {
    struct uart_fixture *f = *state;
    uw(f->u, FCR, 0x01);
    assert_false(f->irq.level);
    /* Enabling ETBEI with THR empty raises THRE at once. */
    uw(f->u, IER, 0x02);
    assert_true(f->irq.level);
    assert_int_equal(ur(f->u, IIR), 0xc2);
    /* Reading IIR while THRE is the source acknowledges it. */
    assert_false(f->irq.level);
    assert_int_equal(ur(f->u, IIR), 0xc1);
    /* A transmitted byte empties THR again: another THRE event. */
    uw(f->u, THR, 'x');
    assert_true(f->irq.level);
    assert_int_equal(ur(f->u, IIR), 0xc2);
    assert_false(f->irq.level);
    /* Linux's startup test: disable then re-enable must re-raise. */
    uw(f->u, IER, 0x00);
    uw(f->u, IER, 0x02);
    assert_int_equal(ur(f->u, IIR), 0xc2);
    uw(f->u, THR, 'y');
    uw(f->u, IER, 0x00);
    assert_false(f->irq.level);
}

static void test_uart_priorities_and_loopback(void **state) {
    struct uart_fixture *f = *state;
    uint8_t c = 'q';
    uw(f->u, IER, 0x07);
    uart_receive(f->u, &c, 1);
    /* Data available outranks THR empty. */
    assert_int_equal(ur(f->u, IIR), 0x04);
    assert_int_equal(ur(f->u, RBR), 'q');
    assert_int_equal(ur(f->u, IIR), 0x02);
    assert_int_equal(ur(f->u, IIR), 0x01);

    /* Loopback: MSR follows MCR (Linux's probe wants 0x90 for 0x1a)... */
    uw(f->u, MCR, 0x1a);
    assert_int_equal(ur(f->u, MSR) & 0xf0, 0x90);
    /* ...the receiver is cut off from the host... */
    assert_int_equal(uart_rx_space(f->u), 0);
    assert_int_equal(uart_receive(f->u, &c, 1), 0);
    /* ...and THR feeds the receiver instead of the host. */
    uw(f->u, THR, 'L');
    assert_int_equal(f->out.n, 0);
    /* A second byte overruns the 1-byte holding register: line status
     * outranks data available. */
    uw(f->u, THR, 'M');
    assert_true(f->irq.level);
    assert_int_equal(ur(f->u, IIR), 0x06);
    uint8_t lsr = ur(f->u, LSR);
    assert_int_equal(lsr & 0x03, 0x03);
    assert_int_equal(ur(f->u, LSR) & 0x02, 0); /* OE clears on read */
    assert_int_equal(ur(f->u, IIR), 0x04);
    assert_int_equal(ur(f->u, RBR), 'L');

    /* Out of loopback the modem lines read as a connected terminal, and
     * the change shows up as delta bits once. */
    uw(f->u, MCR, 0x0b);
    uint8_t msr = ur(f->u, MSR);
    assert_int_equal(msr & 0xb0, 0xb0);
    assert_int_equal(ur(f->u, MSR), 0xb0);
    uw(f->u, THR, '!');
    assert_int_equal(f->out.n, 1);
}

static void test_uart_scratch_and_ier_readback(void **state) {
    struct uart_fixture *f = *state;
    uw(f->u, SCR, 0xa5);
    assert_int_equal(ur(f->u, SCR), 0xa5);
    /* Linux's probe: IER keeps exactly its low four bits. */
    uw(f->u, IER, 0xff);
    assert_int_equal(ur(f->u, IER), 0x0f);
    uw(f->u, IER, 0x00);
    assert_int_equal(ur(f->u, IER), 0x00);
    uw(f->u, MCR, 0xff);
    assert_int_equal(ur(f->u, MCR), 0x1f);
}

static void test_uart_no_irq_line(void **state) {
    (void)state;
    uint8_t c = 1;
    /* A UART with nothing wired to it (and no output) still works. */
    struct uart16550 *u = uart_create((struct irq_line){0}, NULL, NULL);
    assert_non_null(u);
    uw(u, IER, 0x0f);
    uw(u, THR, 'a');
    assert_int_equal(uart_receive(u, &c, 1), 1);
    assert_int_equal(ur(u, IIR), 0x04);
    uart_destroy(u);
}

/* ================= PLIC ================= */

#define PRIO(i) (4u * (i))
#define PENDING(w) (0x1000u + 4u * (w))
#define ENABLE(c, w) (0x2000u + 0x80u * (c) + 4u * (w))
#define THRESHOLD(c) (0x200000u + 0x1000u * (c))
#define CLAIM(c) (0x200004u + 0x1000u * (c))

struct plic_fixture {
    struct mip_rec h[2];
    struct plic *p;
};

static uint32_t pr(struct plic *p, uint64_t off) { return (uint32_t)plic_mmio_ops.read(p, off, 4); }
static void pw(struct plic *p, uint64_t off, uint32_t v) { plic_mmio_ops.write(p, off, v, 4); }

static int plic_setup(void **state) {
    struct plic_fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    struct hart_irq tmp[2] = {rec_hart(&f->h[0]), rec_hart(&f->h[1])}; /* the PLIC must copy this */
    f->p = plic_create(2, tmp);
    if (!f->p) return -1;
    *state = f;
    return 0;
}

static int plic_teardown(void **state) {
    struct plic_fixture *f = *state;
    plic_destroy(f->p);
    free(f);
    return 0;
}

static void test_plic_routing_and_threshold(void **state) {
    struct plic_fixture *f = *state;
    pw(f->p, PRIO(10), 3);
    assert_int_equal(pr(f->p, PRIO(10)), 3);
    pw(f->p, ENABLE(1, 0), 1u << 10); /* hart 0, S-mode */
    plic_set_irq(f->p, 10, true);
    assert_int_equal(pr(f->p, PENDING(0)), 1u << 10);
    assert_int_equal(mip(&f->h[0]), HART_IRQ_SEIP);
    assert_int_equal(mip(&f->h[1]), 0);
    /* Only changes of an output reach the hart. */
    assert_int_equal(f->h[0].calls, 1);
    assert_int_equal(f->h[1].calls, 0);
    plic_set_irq(f->p, 10, true);
    (void)pr(f->p, PENDING(0));
    assert_int_equal(f->h[0].calls, 1);

    pw(f->p, THRESHOLD(1), 3); /* priority must exceed the threshold */
    assert_int_equal(pr(f->p, THRESHOLD(1)), 3);
    assert_int_equal(mip(&f->h[0]), 0);
    assert_int_equal(pr(f->p, CLAIM(1)), 0);
    pw(f->p, THRESHOLD(1), 2);
    assert_int_equal(mip(&f->h[0]), HART_IRQ_SEIP);

    /* Also enabled for hart 1 M-mode: both outputs follow. */
    pw(f->p, ENABLE(2, 0), 1u << 10);
    assert_int_equal(mip(&f->h[1]), HART_IRQ_MEIP);
    pw(f->p, ENABLE(2, 0), 0);
    assert_int_equal(mip(&f->h[1]), 0);
    /* A hart's M- and S-mode contexts drive its two bits independently. */
    pw(f->p, ENABLE(0, 0), 1u << 10);
    assert_int_equal(mip(&f->h[0]), HART_IRQ_SEIP | HART_IRQ_MEIP);
    pw(f->p, ENABLE(1, 0), 0);
    assert_int_equal(mip(&f->h[0]), HART_IRQ_MEIP);
    pw(f->p, ENABLE(0, 0), 0);
    assert_int_equal(mip(&f->h[0]), 0);
    pw(f->p, ENABLE(1, 0), 1u << 10);
    assert_int_equal(mip(&f->h[0]), HART_IRQ_SEIP);

    /* Line dropping before a claim withdraws the request. */
    plic_set_irq(f->p, 10, false);
    assert_int_equal(pr(f->p, PENDING(0)), 0);
    assert_int_equal(mip(&f->h[0]), 0);
}

static void test_plic_claim_complete(void **state) {
    struct plic_fixture *f = *state;
    pw(f->p, PRIO(33), 1);
    pw(f->p, ENABLE(0, 1), 1u << 1); /* source 33, hart 0 M-mode */
    plic_set_irq(f->p, 33, true);
    assert_int_equal(mip(&f->h[0]), HART_IRQ_MEIP);

    assert_int_equal(pr(f->p, CLAIM(0)), 33);
    assert_int_equal(pr(f->p, PENDING(1)), 0);
    assert_int_equal(mip(&f->h[0]), 0);
    assert_int_equal(pr(f->p, CLAIM(0)), 0); /* in service: not claimable */

    /* Completing a source not enabled for the context is ignored. */
    pw(f->p, CLAIM(1), 33);
    assert_int_equal(mip(&f->h[0]), 0);
    /* Completion with the line still high makes it pending again. */
    pw(f->p, CLAIM(0), 33);
    assert_int_equal(pr(f->p, PENDING(1)), 1u << 1);
    assert_int_equal(mip(&f->h[0]), HART_IRQ_MEIP);

    assert_int_equal(pr(f->p, CLAIM(0)), 33);
    plic_set_irq(f->p, 33, false);
    pw(f->p, CLAIM(0), 33);
    assert_int_equal(pr(f->p, PENDING(1)), 0);
    assert_int_equal(mip(&f->h[0]), 0);
}

static void test_plic_priority_order(void **state) {
    struct plic_fixture *f = *state;
    pw(f->p, PRIO(5), 2);
    pw(f->p, PRIO(7), 5);
    pw(f->p, PRIO(9), 5);
    pw(f->p, PRIO(11), 0); /* priority 0 never interrupts */
    pw(f->p, ENABLE(3, 0), (1u << 5) | (1u << 7) | (1u << 9) | (1u << 11));
    for (unsigned i = 5; i <= 11; i += 2) plic_set_irq(f->p, i, true);
    assert_int_equal(mip(&f->h[1]), HART_IRQ_SEIP);
    assert_int_equal(mip(&f->h[0]), 0);
    assert_int_equal(pr(f->p, CLAIM(3)), 7); /* tie at 5: lowest id */
    assert_int_equal(pr(f->p, CLAIM(3)), 9);
    assert_int_equal(pr(f->p, CLAIM(3)), 5);
    assert_int_equal(mip(&f->h[1]), 0);
    assert_int_equal(pr(f->p, CLAIM(3)), 0);
    pw(f->p, CLAIM(3), 9);
    assert_int_equal(mip(&f->h[1]), HART_IRQ_SEIP);
    assert_int_equal(pr(f->p, CLAIM(3)), 9);
}

static void test_plic_reserved_bits(void **state) {
    struct plic_fixture *f = *state;
    pw(f->p, PRIO(0), 7);
    assert_int_equal(pr(f->p, PRIO(0)), 0);
    pw(f->p, PRIO(1), 0xffffffff);
    assert_int_equal(pr(f->p, PRIO(1)), PLIC_MAX_PRIORITY);
    pw(f->p, ENABLE(0, 0), 0xffffffff);
    assert_int_equal(pr(f->p, ENABLE(0, 0)), 0xfffffffe);
    /* Contexts beyond the last hart do not exist. */
    pw(f->p, ENABLE(4, 0), 0xffffffff);
    assert_int_equal(pr(f->p, ENABLE(4, 0)), 0);
    pw(f->p, THRESHOLD(4), 1);
    assert_int_equal(pr(f->p, THRESHOLD(4)), 0);
    /* Out-of-range sources are ignored. */
    plic_set_irq(f->p, 0, true);
    plic_set_irq(f->p, PLIC_NUM_SOURCES, true);
    plic_set_irq(f->p, 1000000, true);
    assert_int_equal(pr(f->p, PENDING(0)), 0);
    assert_int_equal(mip(&f->h[0]), 0);
}

static void test_plic_create_limits(void **state) {
    (void)state;
    struct mip_rec r = {0};
    struct hart_irq ok[1] = {rec_hart(&r)}, none[1] = {{NULL, &r}};
    assert_null(plic_create(0, ok));
    assert_null(plic_create(1, NULL));
    assert_null(plic_create(1, none));
    assert_null(plic_create(PLIC_MAX_HARTS + 1, ok));
}

/* ================= ACLINT ================= */

struct aclint_fixture {
    struct mip_rec h[2];
    struct aclint *a;
    uint64_t now;
    unsigned kicks;
};

static uint64_t fake_now(void *ctx) { return ((struct aclint_fixture *)ctx)->now; }
static void fake_kick(void *ctx) { ((struct aclint_fixture *)ctx)->kicks++; }

static int aclint_setup(void **state) {
    struct aclint_fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    struct hart_irq tmp[2] = {rec_hart(&f->h[0]), rec_hart(&f->h[1])}; /* the ACLINT must copy this */
    f->a = aclint_create(2, tmp, (struct aclint_host){fake_now, fake_kick, f});
    if (!f->a) return -1;
    *state = f;
    return 0;
}

static int aclint_teardown(void **state) {
    struct aclint_fixture *f = *state;
    aclint_destroy(f->a);
    free(f);
    return 0;
}

static uint64_t ar(struct aclint *a, uint64_t off, unsigned size) { return aclint_mmio_ops.read(a, off, size); }
static void aw(struct aclint *a, uint64_t off, uint64_t v, unsigned size) { aclint_mmio_ops.write(a, off, v, size); }

static void test_aclint_msip(void **state) {
    struct aclint_fixture *f = *state;
    aw(f->a, 4, 1, 4);
    assert_int_equal(mip(&f->h[1]), HART_IRQ_MSIP);
    assert_int_equal(mip(&f->h[0]), 0);
    /* The target may sleep on another thread: the machine is told. */
    assert_int_equal(f->kicks, 1);
    assert_int_equal(ar(f->a, 4, 4), 1);
    assert_int_equal(ar(f->a, 0, 4), 0);
    aw(f->a, 4, 0xfffffffe, 4); /* only bit 0 counts */
    assert_int_equal(mip(&f->h[1]), 0);
    assert_int_equal(f->kicks, 1); /* clearing wakes nobody */
    assert_int_equal(ar(f->a, 4, 4), 0);
    aw(f->a, 8, 1, 4); /* no hart 2 */
    assert_int_equal(ar(f->a, 8, 4), 0);
}

static void test_aclint_timer(void **state) {
    struct aclint_fixture *f = *state;
    const uint64_t cmp0 = 0x4000, cmp1 = 0x4008, mtime = 0xbff8;

    assert_true(ar(f->a, cmp0, 8) == UINT64_MAX);
    assert_true(aclint_next_deadline(f->a) == UINT64_MAX);

    f->now = 0x123456789;
    assert_true(ar(f->a, mtime, 8) == 0x123456789);
    assert_int_equal(ar(f->a, mtime, 4), 0x23456789);
    assert_int_equal(ar(f->a, mtime + 4, 4), 0x1);
    aw(f->a, mtime, 0, 8); /* mtime belongs to the monitor */
    assert_true(ar(f->a, mtime, 8) == 0x123456789);

    f->now = 100;
    aw(f->a, cmp0, 150, 8);
    assert_int_equal(mip(&f->h[0]), 0);
    assert_true(aclint_next_deadline(f->a) == 150);
    aclint_update(f->a, 149);
    assert_int_equal(mip(&f->h[0]), 0);
    aclint_update(f->a, 150);
    assert_int_equal(mip(&f->h[0]), HART_IRQ_MTIP);
    assert_int_equal(mip(&f->h[1]), 0);
    /* Only changes of MTIP reach the hart. */
    int calls = f->h[0].calls;
    aclint_update(f->a, 151);
    assert_int_equal(f->h[0].calls, calls);
    assert_int_equal(f->h[1].calls, 0);
    assert_true(aclint_next_deadline(f->a) == UINT64_MAX);

    /* Moving mtimecmp ahead drops MTIP immediately (now() is 150). */
    f->now = 150;
    aw(f->a, cmp0, 1000, 4);
    assert_true(ar(f->a, cmp0, 8) == 1000);
    assert_int_equal(mip(&f->h[0]), 0);
    aw(f->a, cmp0 + 4, 2, 4);
    assert_true(ar(f->a, cmp0, 8) == ((2ull << 32) | 1000));
    assert_int_equal(ar(f->a, cmp0 + 4, 4), 2);

    /* A deadline already past fires at once. */
    aw(f->a, cmp1, 10, 8);
    assert_int_equal(mip(&f->h[1]), HART_IRQ_MTIP);
    assert_true(aclint_next_deadline(f->a) == ((2ull << 32) | 1000));
    aw(f->a, cmp1, UINT64_MAX, 8);
    assert_int_equal(mip(&f->h[1]), 0);
}

static void test_aclint_create_limits(void **state) {
    (void)state;
    struct mip_rec r = {0};
    struct hart_irq ok[1] = {rec_hart(&r)}, none[1] = {{NULL, &r}};
    assert_null(aclint_create(0, ok, (struct aclint_host){0}));
    assert_null(aclint_create(1, NULL, (struct aclint_host){0}));
    assert_null(aclint_create(1, none, (struct aclint_host){0}));
    assert_null(aclint_create(ACLINT_MAX_HARTS + 1, ok, (struct aclint_host){0}));
}

/* ================= Goldfish RTC ================= */

static uint64_t realtime_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t rr(struct goldfish_rtc *r, uint64_t off) { return (uint32_t)goldfish_rtc_mmio_ops.read(r, off, 4); }
static void rw(struct goldfish_rtc *r, uint64_t off, uint32_t v) { goldfish_rtc_mmio_ops.write(r, off, v, 4); }

static uint64_t rtc_time(struct goldfish_rtc *r) {
    uint64_t lo = rr(r, 0x00);
    return (uint64_t)rr(r, 0x04) << 32 | lo;
}

static bool near(uint64_t a, uint64_t b, uint64_t tol) { return (a > b ? a - b : b - a) <= tol; }

static void test_rtc_time(void **state) {
    (void)state;
    struct irq_rec irq = {0};
    struct goldfish_rtc *r = goldfish_rtc_create(rec_line(&irq, 11));
    assert_non_null(r);
    assert_true(near(rtc_time(r), realtime_ns(), 1000000000ull));

    /* Set the clock the way Linux does: HIGH, then LOW. */
    const uint64_t t = 1000000000000000000ull; /* 2001-09-09 */
    rw(r, 0x04, (uint32_t)(t >> 32));
    rw(r, 0x00, (uint32_t)t);
    assert_true(near(rtc_time(r), t, 1000000000ull));
    assert_false(near(rtc_time(r), realtime_ns(), 1000000000ull));
    assert_false(irq.level);
    goldfish_rtc_destroy(r);
}

static void test_rtc_alarm(void **state) {
    (void)state;
    struct irq_rec irq = {0};
    struct goldfish_rtc *r = goldfish_rtc_create(rec_line(&irq, 11));
    assert_non_null(r);
    uint64_t now = rtc_time(r);

    /* An alarm an hour away is armed but does not fire. */
    uint64_t later = now + 3600ull * 1000000000ull;
    rw(r, 0x10, 1);
    rw(r, 0x0c, (uint32_t)(later >> 32));
    rw(r, 0x08, (uint32_t)later);
    assert_int_equal(rr(r, 0x18), 1);
    assert_int_equal(rr(r, 0x08), (uint32_t)later);
    assert_int_equal(rr(r, 0x0c), (uint32_t)(later >> 32));
    goldfish_rtc_update(r);
    assert_false(irq.level);
    rw(r, 0x14, 1); /* CLEAR_ALARM disarms */
    assert_int_equal(rr(r, 0x18), 0);

    /* An alarm in the past fires as soon as it is armed. */
    uint64_t past = now - 1000000000ull;
    rw(r, 0x0c, (uint32_t)(past >> 32));
    rw(r, 0x08, (uint32_t)past);
    assert_true(irq.level);
    assert_int_equal(irq.irq, 11);
    assert_int_equal(rr(r, 0x18), 0);
    rw(r, 0x1c, 1); /* CLEAR_INTERRUPT */
    assert_false(irq.level);

    /* With the interrupt disabled the alarm fires silently, and enabling
     * afterwards delivers the latched interrupt. */
    rw(r, 0x10, 0);
    assert_int_equal(rr(r, 0x10), 0);
    rw(r, 0x08, (uint32_t)past);
    assert_false(irq.level);
    rw(r, 0x10, 1);
    assert_true(irq.level);
    rw(r, 0x1c, 1);
    assert_false(irq.level);
    goldfish_rtc_destroy(r);
}

/* ================= syscon ================= */

struct syscon_rec {
    int calls;
    enum syscon_event ev;
    unsigned code;
};

static void syscon_cb(void *ctx, enum syscon_event ev, unsigned code) {
    struct syscon_rec *r = ctx;
    r->calls++;
    r->ev = ev;
    r->code = code;
}

static void test_syscon(void **state) {
    (void)state;
    struct syscon_rec rec = {0};
    struct syscon *s = syscon_create(syscon_cb, &rec);
    assert_non_null(s);
    syscon_mmio_ops.write(s, 0, 0x5555, 4);
    assert_int_equal(rec.calls, 1);
    assert_int_equal(rec.ev, SYSCON_POWEROFF);
    syscon_mmio_ops.write(s, 0, 0x7777, 4);
    assert_int_equal(rec.calls, 2);
    assert_int_equal(rec.ev, SYSCON_RESET);
    syscon_mmio_ops.write(s, 0, (42u << 16) | 0x3333, 4);
    assert_int_equal(rec.calls, 3);
    assert_int_equal(rec.ev, SYSCON_FAIL);
    assert_int_equal(rec.code, 42);
    /* Anything else is ignored. */
    syscon_mmio_ops.write(s, 0, 0x1234, 4);
    syscon_mmio_ops.write(s, 4, 0x5555, 4);
    syscon_mmio_ops.write(s, 0, 0x55, 1);
    assert_int_equal(rec.calls, 3);
    assert_int_equal(syscon_mmio_ops.read(s, 0, 4), 0);
    /* A 16-bit store (as OpenSBI's sifive,test driver does) also works. */
    syscon_mmio_ops.write(s, 0, 0x5555, 2);
    assert_int_equal(rec.calls, 4);
    assert_int_equal(rec.ev, SYSCON_POWEROFF);
    syscon_destroy(s);
}

/* ================= pvpanic ================= */

struct pvpanic_rec {
    int calls;
    unsigned events;
};

static void pvpanic_cb(void *ctx, unsigned events) {
    struct pvpanic_rec *r = ctx;
    r->calls++;
    r->events = events;
}

static void test_pvpanic(void **state) {
    (void)state;
    struct pvpanic_rec rec = {0};
    struct pvpanic *p = pvpanic_create(pvpanic_cb, &rec);
    assert_non_null(p);
    assert_int_equal(pvpanic_mmio_ops.read(p, 0, 1), 3);
    pvpanic_mmio_ops.write(p, 0, 0, 1);
    assert_int_equal(rec.calls, 0);
    pvpanic_mmio_ops.write(p, 0, PVPANIC_PANICKED, 1);
    assert_int_equal(rec.calls, 1);
    assert_int_equal(rec.events, PVPANIC_PANICKED);
    pvpanic_mmio_ops.write(p, 0, 0xfe, 1);
    assert_int_equal(rec.calls, 2);
    assert_int_equal(rec.events, PVPANIC_CRASH_LOADED);
    pvpanic_mmio_ops.write(p, 1, 1, 1);
    assert_int_equal(rec.calls, 2);
    pvpanic_destroy(p);
}

/* ================= garbage ================= */

static void count_out(void *ctx, uint8_t b) { (void)b, ++*(size_t *)ctx; }
static void any_syscon(void *ctx, enum syscon_event ev, unsigned code) { (void)ev, (void)code, ++*(int *)ctx; }
static void any_panic(void *ctx, unsigned ev) { (void)ev, ++*(int *)ctx; }

static void test_garbage_accesses(void **state) {
    (void)state;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    struct irq_rec irq = {0};
    struct mip_rec hr[2] = {{0}};
    struct hart_irq h[2] = {rec_hart(&hr[0]), rec_hart(&hr[1])};
    size_t nout = 0;
    int nev = 0;
    uint8_t in[32] = {0};

    struct uart16550 *u = uart_create(rec_line(&irq, 10), count_out, &nout);
    assert_non_null(u);
    for (int round = 0; round < 64; round++) {
        hammer(&uart_mmio_ops, u, 0, UART_SIZE, 1, &seed);
        uart_receive(u, in, sizeof in);
    }
    uart_destroy(u);

    struct plic *p = plic_create(2, h);
    assert_non_null(p);
    for (unsigned i = 0; i < 256; i++) plic_set_irq(p, (unsigned)xorshift(&seed) % 128, xorshift(&seed) & 1);
    hammer(&plic_mmio_ops, p, 0, 0x3000, 1, &seed);
    hammer(&plic_mmio_ops, p, 0x1ff000, 0x204000, 1, &seed);
    hammer(&plic_mmio_ops, p, 0, PLIC_SIZE, 0x3f1, &seed);
    hammer(&plic_mmio_ops, p, PLIC_SIZE - 16, PLIC_SIZE, 1, &seed);
    plic_destroy(p);

    struct aclint *a = aclint_create(2, h, (struct aclint_host){0});
    assert_non_null(a);
    hammer(&aclint_mmio_ops, a, 0, ACLINT_SIZE, 1, &seed);
    aclint_update(a, xorshift(&seed));
    (void)aclint_next_deadline(a);
    aclint_destroy(a);

    struct goldfish_rtc *r = goldfish_rtc_create(rec_line(&irq, 11));
    assert_non_null(r);
    hammer(&goldfish_rtc_mmio_ops, r, 0, GOLDFISH_RTC_SIZE, 1, &seed);
    goldfish_rtc_update(r);
    goldfish_rtc_destroy(r);

    struct syscon *s = syscon_create(any_syscon, &nev);
    assert_non_null(s);
    hammer(&syscon_mmio_ops, s, 0, SYSCON_SIZE, 1, &seed);
    syscon_destroy(s);

    struct pvpanic *pv = pvpanic_create(any_panic, &nev);
    assert_non_null(pv);
    hammer(&pvpanic_mmio_ops, pv, 0, PVPANIC_SIZE, 1, &seed);
    pvpanic_destroy(pv);

    /* Callback-less devices must not call through NULL either. */
    s = syscon_create(NULL, NULL);
    pv = pvpanic_create(NULL, NULL);
    assert_non_null(s);
    assert_non_null(pv);
    hammer(&syscon_mmio_ops, s, 0, 8, 1, &seed);
    syscon_mmio_ops.write(s, 0, 0x5555, 4);
    hammer(&pvpanic_mmio_ops, pv, 0, 8, 1, &seed);
    pvpanic_mmio_ops.write(pv, 0, 1, 1);
    syscon_destroy(s);
    pvpanic_destroy(pv);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_uart_transmit, uart_setup, uart_teardown),
        cmocka_unit_test_setup_teardown(test_uart_rx_fifo_and_irq, uart_setup, uart_teardown),
        cmocka_unit_test_setup_teardown(test_uart_fifo_disabled, uart_setup, uart_teardown),
        cmocka_unit_test_setup_teardown(test_uart_dlab, uart_setup, uart_teardown),
        cmocka_unit_test_setup_teardown(test_uart_thre_interrupt, uart_setup, uart_teardown),
        cmocka_unit_test_setup_teardown(test_uart_priorities_and_loopback, uart_setup, uart_teardown),
        cmocka_unit_test_setup_teardown(test_uart_scratch_and_ier_readback, uart_setup, uart_teardown),
        cmocka_unit_test(test_uart_no_irq_line),
        cmocka_unit_test_setup_teardown(test_plic_routing_and_threshold, plic_setup, plic_teardown),
        cmocka_unit_test_setup_teardown(test_plic_claim_complete, plic_setup, plic_teardown),
        cmocka_unit_test_setup_teardown(test_plic_priority_order, plic_setup, plic_teardown),
        cmocka_unit_test_setup_teardown(test_plic_reserved_bits, plic_setup, plic_teardown),
        cmocka_unit_test(test_plic_create_limits),
        cmocka_unit_test_setup_teardown(test_aclint_msip, aclint_setup, aclint_teardown),
        cmocka_unit_test_setup_teardown(test_aclint_timer, aclint_setup, aclint_teardown),
        cmocka_unit_test(test_aclint_create_limits),
        cmocka_unit_test(test_rtc_time),
        cmocka_unit_test(test_rtc_alarm),
        cmocka_unit_test(test_syscon),
        cmocka_unit_test(test_pvpanic),
        cmocka_unit_test(test_garbage_accesses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
