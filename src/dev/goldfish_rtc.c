/* Register semantics follow QEMU's documented goldfish RTC and what
 * Linux's rtc-goldfish driver expects. */
#include "dev/goldfish_rtc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "io/vmstate.h"

enum {
    TIME_LOW = 0x00,        /* reading latches TIME_HIGH */
    TIME_HIGH = 0x04,
    ALARM_LOW = 0x08,       /* writing arms the alarm */
    ALARM_HIGH = 0x0c,
    IRQ_ENABLED = 0x10,
    CLEAR_ALARM = 0x14,
    ALARM_STATUS = 0x18,    /* 1 while armed */
    CLEAR_INTERRUPT = 0x1c,
};

/* The registers' state, saved as it is; the time is saved apart (struct
 * rtc_saved) because offset only means something against this host's clock. */
struct rtc_regs {
    uint64_t alarm;
    uint32_t high_latch;    /* TIME_HIGH as of the last TIME_LOW read */
    uint32_t high_written;  /* TIME_HIGH as written, applied by TIME_LOW */
    bool high_pending;
    bool alarm_armed, irq_pending, irq_enabled;
};

struct goldfish_rtc {
    pthread_mutex_t lock;
    struct irq_line irq;
    uint64_t offset;        /* guest time - host time, modulo 2^64 */
    struct rtc_regs regs;
};

static uint64_t host_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t guest_ns(const struct goldfish_rtc *r) { return host_ns() + r->offset; }

static void update_irq(struct goldfish_rtc *r) { irq_line_set(&r->irq, r->regs.irq_pending && r->regs.irq_enabled); }

static void check_alarm(struct goldfish_rtc *r) {
    if (r->regs.alarm_armed && guest_ns(r) >= r->regs.alarm) {
        r->regs.alarm_armed = false;
        r->regs.irq_pending = true;
    }
    update_irq(r);
}

static uint32_t reg_read(struct goldfish_rtc *r, uint64_t off) {
    uint64_t t;
    switch (off) {
    case TIME_LOW:
        /* Latching keeps a LOW-then-HIGH read pair consistent across a
         * carry into the high word. */
        t = guest_ns(r);
        r->regs.high_latch = (uint32_t)(t >> 32);
        return (uint32_t)t;
    case TIME_HIGH:
        return r->regs.high_latch;
    case ALARM_LOW:
        return (uint32_t)r->regs.alarm;
    case ALARM_HIGH:
        return (uint32_t)(r->regs.alarm >> 32);
    case IRQ_ENABLED:
        return r->regs.irq_enabled;
    case ALARM_STATUS:
        return r->regs.alarm_armed;
    }
    return 0;
}

static void reg_write(struct goldfish_rtc *r, uint64_t off, uint32_t v) {
    uint64_t t;
    switch (off) {
    case TIME_LOW:
        /* Linux writes HIGH then LOW; a lone LOW write keeps the current
         * high word. */
        t = guest_ns(r);
        if (r->regs.high_pending) t = (uint64_t)r->regs.high_written << 32;
        r->regs.high_pending = false;
        r->offset = ((t & ~0xffffffffull) | v) - host_ns();
        break;
    case TIME_HIGH:
        r->regs.high_written = v;
        r->regs.high_pending = true;
        break;
    case ALARM_LOW:
        r->regs.alarm = (r->regs.alarm & ~0xffffffffull) | v;
        r->regs.alarm_armed = true;
        break;
    case ALARM_HIGH:
        r->regs.alarm = (r->regs.alarm & 0xffffffffull) | (uint64_t)v << 32;
        break;
    case IRQ_ENABLED:
        r->regs.irq_enabled = v & 1;
        break;
    case CLEAR_ALARM:
        r->regs.alarm_armed = false;
        break;
    case CLEAR_INTERRUPT:
        r->regs.irq_pending = false;
        break;
    }
}

/* Registers are 32-bit; other sizes or misaligned offsets read 0 and are
 * dropped, as the split of a 64-bit time write would be ambiguous. */
static uint64_t rtc_read(void *dev, uint64_t off, unsigned size) {
    struct goldfish_rtc *r = dev;
    if (size != 4 || off % 4) return 0;
    pthread_mutex_lock(&r->lock);
    uint32_t v = reg_read(r, off);
    pthread_mutex_unlock(&r->lock);
    return v;
}

static void rtc_write(void *dev, uint64_t off, uint64_t val, unsigned size) {
    struct goldfish_rtc *r = dev;
    if (size != 4 || off % 4) return;
    pthread_mutex_lock(&r->lock);
    reg_write(r, off, (uint32_t)val);
    /* An alarm set in the past fires at once rather than at the next tick. */
    check_alarm(r);
    pthread_mutex_unlock(&r->lock);
}

const struct mmio_ops goldfish_rtc_mmio_ops = {rtc_read, rtc_write};

void goldfish_rtc_update(struct goldfish_rtc *r) {
    pthread_mutex_lock(&r->lock);
    check_alarm(r);
    pthread_mutex_unlock(&r->lock);
}

struct goldfish_rtc *goldfish_rtc_create(struct irq_line irq) {
    struct goldfish_rtc *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    if (pthread_mutex_init(&r->lock, NULL)) {
        free(r);
        return NULL;
    }
    r->irq = irq;
    return r;
}

void goldfish_rtc_destroy(struct goldfish_rtc *r) {
    if (!r) return;
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* ---- snapshots ---- */

/* What a snapshot holds: the guest's time when it was taken, so that its
 * clock continues from there on whatever host it is restored. */
struct rtc_saved {
    uint64_t guest_ns;
    struct rtc_regs regs;
};

static const struct vmstate_field rtc_fields[] = {
    VMSTATE_U(struct rtc_saved, guest_ns),
    VMSTATE_U(struct rtc_saved, regs.alarm),
    VMSTATE_U(struct rtc_saved, regs.high_latch),
    VMSTATE_U(struct rtc_saved, regs.high_written),
    VMSTATE_BOOL(struct rtc_saved, regs.high_pending),
    VMSTATE_BOOL(struct rtc_saved, regs.alarm_armed),
    VMSTATE_BOOL(struct rtc_saved, regs.irq_pending),
    VMSTATE_BOOL(struct rtc_saved, regs.irq_enabled),
};
static const struct vmstate rtc_vmstate = VMSTATE_TABLE("rtc", 1, rtc_fields);

bool goldfish_rtc_save(struct goldfish_rtc *r, struct snap_writer *w) {
    pthread_mutex_lock(&r->lock);
    struct rtc_saved sv = {guest_ns(r), r->regs};
    bool ok = vmstate_save(w, &rtc_vmstate, &sv);
    pthread_mutex_unlock(&r->lock);
    return ok;
}

bool goldfish_rtc_load(struct goldfish_rtc *r, const struct snap_section *s, char *err, size_t errlen) {
    struct rtc_saved sv = {0};
    if (!vmstate_load(s, &rtc_vmstate, &sv, err, errlen)) return false;
    pthread_mutex_lock(&r->lock);
    r->offset = sv.guest_ns - host_ns();
    r->regs = sv.regs;
    check_alarm(r); /* an alarm due meanwhile fires now; drives the line either way */
    pthread_mutex_unlock(&r->lock);
    return true;
}
