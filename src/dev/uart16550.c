/* 16550A register model, from the National Semiconductor PC16550D data
 * sheet. Only what a guest can observe is kept: there is no shift register
 * or baud clock because transmission is instantaneous. */
#include "dev/uart16550.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "io/vmstate.h"

enum { REG_DATA, REG_IER, REG_IIR_FCR, REG_LCR, REG_MCR, REG_LSR, REG_MSR, REG_SCR, NREGS };

#define IER_ERBFI 0x01 /* received data available */
#define IER_ETBEI 0x02 /* THR empty */
#define IER_ELSI 0x04  /* receiver line status */
#define IER_EDSSI 0x08 /* modem status */

#define IIR_MODEM 0x00
#define IIR_NONE 0x01
#define IIR_THRE 0x02
#define IIR_RDA 0x04
#define IIR_RLS 0x06
#define IIR_FIFO_ON 0xc0

#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define FCR_KEEP 0xc1 /* enable and RX trigger level; the rest are actions */

#define LCR_DLAB 0x80

#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80
#define MSR_TERI 0x04

#define LSR_ERRORS 0x1e /* OE, PE, FE, BI: the bits lsr_err may latch */

/* Everything a guest can observe: what a snapshot saves (uart_vmstate). */
struct uart_regs {
    uint8_t rx[UART_FIFO_SIZE];
    unsigned rx_head, rx_count;

    uint8_t ier, fcr, lcr, mcr, scr, dll, dlm;
    uint8_t lsr_err;   /* error bits latched until LSR is read */
    uint8_t msr_delta; /* MSR bits 3:0, latched until MSR is read */
    /* The THRE interrupt is an event, not a level: it is consumed by an
     * IIR read even though THR stays empty. */
    bool thre_pending;
};

struct uart16550 {
    pthread_mutex_t lock;
    struct irq_line irq;
    void (*out)(void *ctx, uint8_t byte);
    void *out_ctx;
    struct uart_regs regs;
};

static unsigned rx_capacity(const struct uart16550 *u) {
    /* With FIFOs off the chip behaves as a 16450: a single holding register. */
    return (u->regs.fcr & FCR_ENABLE) ? UART_FIFO_SIZE : 1;
}

static void rx_clear(struct uart16550 *u) { u->regs.rx_head = u->regs.rx_count = 0; }

static void rx_push(struct uart16550 *u, uint8_t b) {
    if (u->regs.rx_count >= rx_capacity(u)) {
        u->regs.lsr_err |= LSR_OE;
        return;
    }
    u->regs.rx[(u->regs.rx_head + u->regs.rx_count) % UART_FIFO_SIZE] = b;
    u->regs.rx_count++;
}

static uint8_t rx_pop(struct uart16550 *u) {
    if (!u->regs.rx_count) return 0;
    uint8_t b = u->regs.rx[u->regs.rx_head];
    u->regs.rx_head = (u->regs.rx_head + 1) % UART_FIFO_SIZE;
    u->regs.rx_count--;
    return b;
}

/* No modem is attached, so the lines a terminal would assert are always up;
 * in loopback they follow MCR instead, which Linux's probe checks. */
static uint8_t modem_lines(const struct uart16550 *u) {
    if (!(u->regs.mcr & MCR_LOOP)) return MSR_CTS | MSR_DSR | MSR_DCD;
    uint8_t m = 0;
    if (u->regs.mcr & MCR_RTS) m |= MSR_CTS;
    if (u->regs.mcr & MCR_DTR) m |= MSR_DSR;
    if (u->regs.mcr & MCR_OUT1) m |= MSR_RI;
    if (u->regs.mcr & MCR_OUT2) m |= MSR_DCD;
    return m;
}

/* Highest-priority pending source, in the order of the data sheet's table. */
static uint8_t iir_source(const struct uart16550 *u) {
    if ((u->regs.ier & IER_ELSI) && u->regs.lsr_err) return IIR_RLS;
    /* The character timeout (IIR 0xc) would fire for a below-trigger FIFO
     * anyway, so data available is reported as soon as one byte waits. */
    if ((u->regs.ier & IER_ERBFI) && u->regs.rx_count) return IIR_RDA;
    if ((u->regs.ier & IER_ETBEI) && u->regs.thre_pending) return IIR_THRE;
    if ((u->regs.ier & IER_EDSSI) && u->regs.msr_delta) return IIR_MODEM;
    return IIR_NONE;
}

static void update_irq(struct uart16550 *u) { irq_line_set(&u->irq, iir_source(u) != IIR_NONE); }

static uint8_t reg_read(struct uart16550 *u, unsigned reg) {
    bool dlab = u->regs.lcr & LCR_DLAB;
    uint8_t v;
    switch (reg) {
    case REG_DATA:
        return dlab ? u->regs.dll : rx_pop(u);
    case REG_IER:
        return dlab ? u->regs.dlm : u->regs.ier;
    case REG_IIR_FCR:
        v = iir_source(u);
        if (v == IIR_THRE) u->regs.thre_pending = false;
        return v | ((u->regs.fcr & FCR_ENABLE) ? IIR_FIFO_ON : 0);
    case REG_LCR:
        return u->regs.lcr;
    case REG_MCR:
        return u->regs.mcr;
    case REG_LSR:
        v = (u->regs.rx_count ? LSR_DR : 0) | u->regs.lsr_err | LSR_THRE | LSR_TEMT;
        u->regs.lsr_err = 0;
        return v;
    case REG_MSR:
        v = modem_lines(u) | u->regs.msr_delta;
        u->regs.msr_delta = 0;
        return v;
    case REG_SCR:
        return u->regs.scr;
    }
    return 0;
}

static void write_fcr(struct uart16550 *u, uint8_t v) {
    /* Toggling the FIFO enable resets the FIFOs; the other bits only take
     * effect while the FIFOs are enabled. */
    if ((v ^ u->regs.fcr) & FCR_ENABLE) rx_clear(u);
    if (!(v & FCR_ENABLE)) {
        u->regs.fcr = 0;
        return;
    }
    if (v & FCR_CLEAR_RX) rx_clear(u);
    u->regs.fcr = v & FCR_KEEP;
}

static void write_mcr(struct uart16550 *u, uint8_t v) {
    uint8_t before = modem_lines(u);
    u->regs.mcr = v & 0x1f;
    uint8_t after = modem_lines(u);
    /* Delta bits: CTS, DSR, DCD on any change; RI only on its trailing edge. */
    u->regs.msr_delta |= ((before ^ after) >> 4) & 0x0b;
    if ((before & ~after) & MSR_RI) u->regs.msr_delta |= MSR_TERI;
}

static void reg_write(struct uart16550 *u, unsigned reg, uint8_t v) {
    bool dlab = u->regs.lcr & LCR_DLAB;
    switch (reg) {
    case REG_DATA:
        if (dlab) {
            u->regs.dll = v;
            break;
        }
        if (u->regs.mcr & MCR_LOOP)
            rx_push(u, v);
        else if (u->out)
            u->out(u->out_ctx, v);
        /* Writing THR clears the THRE interrupt, but the byte leaves at once
         * and THR empties again, which raises it anew. Without this Linux
         * would stall after filling the FIFO once. */
        u->regs.thre_pending = true;
        break;
    case REG_IER:
        if (dlab) {
            u->regs.dlm = v;
            break;
        }
        /* Real 16550s raise THRE as soon as ETBEI is enabled with THR empty;
         * Linux's startup test relies on it. */
        if ((v & IER_ETBEI) && !(u->regs.ier & IER_ETBEI)) u->regs.thre_pending = true;
        u->regs.ier = v & 0x0f;
        break;
    case REG_IIR_FCR:
        write_fcr(u, v);
        break;
    case REG_LCR:
        u->regs.lcr = v;
        break;
    case REG_MCR:
        write_mcr(u, v);
        break;
    case REG_SCR:
        u->regs.scr = v;
        break;
    default: /* LSR and MSR are read-only (writes are factory test only) */
        break;
    }
}

static uint64_t uart_read(void *dev, uint64_t off, unsigned size) {
    (void)size; /* every size acts on the byte register at off */
    struct uart16550 *u = dev;
    if (off >= NREGS) return 0;
    pthread_mutex_lock(&u->lock);
    uint8_t v = reg_read(u, (unsigned)off);
    update_irq(u);
    pthread_mutex_unlock(&u->lock);
    return v;
}

static void uart_write(void *dev, uint64_t off, uint64_t val, unsigned size) {
    (void)size;
    struct uart16550 *u = dev;
    if (off >= NREGS) return;
    pthread_mutex_lock(&u->lock);
    reg_write(u, (unsigned)off, (uint8_t)val);
    update_irq(u);
    pthread_mutex_unlock(&u->lock);
}

const struct mmio_ops uart_mmio_ops = {uart_read, uart_write};

struct uart16550 *uart_create(struct irq_line irq, void (*out)(void *ctx, uint8_t byte), void *out_ctx) {
    struct uart16550 *u = calloc(1, sizeof *u);
    if (!u) return NULL;
    if (pthread_mutex_init(&u->lock, NULL)) {
        free(u);
        return NULL;
    }
    u->irq = irq;
    u->out = out;
    u->out_ctx = out_ctx;
    return u;
}

void uart_destroy(struct uart16550 *u) {
    if (!u) return;
    pthread_mutex_destroy(&u->lock);
    free(u);
}

static size_t rx_space_locked(const struct uart16550 *u) {
    /* In loopback the receiver is cut off from the line; leaving the input
     * with the host loses nothing when the guest leaves loopback. */
    if (u->regs.mcr & MCR_LOOP) return 0;
    return rx_capacity(u) - u->regs.rx_count;
}

size_t uart_receive(struct uart16550 *u, const uint8_t *buf, size_t n) {
    pthread_mutex_lock(&u->lock);
    size_t space = rx_space_locked(u);
    if (n > space) n = space;
    for (size_t i = 0; i < n; i++) rx_push(u, buf[i]);
    update_irq(u);
    pthread_mutex_unlock(&u->lock);
    return n;
}

size_t uart_rx_space(const struct uart16550 *u) {
    /* The lock is part of the object, not of its observable value. */
    pthread_mutex_t *lock = (pthread_mutex_t *)&u->lock;
    pthread_mutex_lock(lock);
    size_t n = rx_space_locked(u);
    pthread_mutex_unlock(lock);
    return n;
}

/* ---- snapshots ---- */

static const struct vmstate_field uart_fields[] = {
    VMSTATE_ARRAY(struct uart_regs, rx),
    VMSTATE_U_MAX(struct uart_regs, rx_head, UART_FIFO_SIZE - 1),
    VMSTATE_U_MAX(struct uart_regs, rx_count, UART_FIFO_SIZE),
    VMSTATE_U_MAX(struct uart_regs, ier, 0x0f),
    VMSTATE_U(struct uart_regs, fcr),
    VMSTATE_U(struct uart_regs, lcr),
    VMSTATE_U_MAX(struct uart_regs, mcr, 0x1f),
    VMSTATE_U(struct uart_regs, scr),
    VMSTATE_U(struct uart_regs, dll),
    VMSTATE_U(struct uart_regs, dlm),
    VMSTATE_U(struct uart_regs, lsr_err),
    VMSTATE_U_MAX(struct uart_regs, msr_delta, 0x0f),
    VMSTATE_BOOL(struct uart_regs, thre_pending),
};
static const struct vmstate uart_vmstate = VMSTATE_TABLE("uart", 1, uart_fields);

bool uart_save(struct uart16550 *u, struct snap_writer *w) {
    pthread_mutex_lock(&u->lock);
    bool ok = vmstate_save(w, &uart_vmstate, &u->regs);
    pthread_mutex_unlock(&u->lock);
    return ok;
}

bool uart_load(struct uart16550 *u, const struct snap_section *s, char *err, size_t errlen) {
    struct uart_regs r = {0};
    if (!vmstate_load(s, &uart_vmstate, &r, err, errlen)) return false;
    /* What the register path can never produce: FCR bits it drops, latched
     * bits that are not errors, more bytes than the receiver holds. */
    bool fcr_ok = r.fcr == 0 || ((r.fcr & FCR_ENABLE) && !(r.fcr & ~FCR_KEEP));
    if (!fcr_ok || (r.lsr_err & ~LSR_ERRORS) || r.rx_count > ((r.fcr & FCR_ENABLE) ? UART_FIFO_SIZE : 1u)) {
        snprintf(err, errlen, "uart: snapshot holds an inconsistent register state");
        return false;
    }
    pthread_mutex_lock(&u->lock);
    u->regs = r;
    update_irq(u);
    pthread_mutex_unlock(&u->lock);
    return true;
}
