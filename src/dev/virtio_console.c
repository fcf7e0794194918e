/* virtio console device, single port (virtio 1.2 section 5.3). */
#include "dev/virtio_console.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/event_loop.h"
#include "io/snap_file.h"

#define RX_QUEUE 0 /* receiveq: host to guest */
#define TX_QUEUE 1 /* transmitq: guest to host */

struct virtio_console {
    struct virtio_console_sink sink;
    struct virtio_mmio *t;
    struct event_notifier *kick; /* NULL without a loop */
    pthread_mutex_t in_lock; /* the input buffer; taken inside the transport lock */
    uint8_t in[VIRTIO_CONSOLE_INPUT_BUF];
    size_t in_len;
    struct virtq_chain chain; /* too big for a vCPU thread's stack */
    uint8_t out[4096];
};

static void kicked(void *ctx);

struct virtio_console *virtio_console_create(struct virtio_console_sink sink, struct event_loop *loop) {
    struct virtio_console *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    if (loop && !(c->kick = event_notifier_create(loop, kicked, c))) {
        free(c);
        return NULL;
    }
    c->sink = sink;
    pthread_mutex_init(&c->in_lock, NULL);
    return c;
}

void virtio_console_destroy(struct virtio_console *c) {
    if (!c) return;
    event_notifier_destroy(c->kick); /* waits out a running callback */
    pthread_mutex_destroy(&c->in_lock);
    free(c);
}

void virtio_console_attach(struct virtio_console *c, struct virtio_mmio *t) { c->t = t; }

/* Hands buffered input to the guest's receive buffers (transport lock held). */
static void deliver(struct virtio_console *c) {
    const struct guest_mem_ops *m = virtio_mmio_mem(c->t);
    bool any = false;
    pthread_mutex_lock(&c->in_lock);
    while (c->in_len) {
        if (virtio_mmio_queue_pop(c->t, RX_QUEUE, &c->chain) <= 0) break;
        size_t n = c->in_len < c->chain.write_len ? c->in_len : (size_t)c->chain.write_len;
        if (!virtq_chain_write(&c->chain, m, 0, c->in, n)) {
            if (virtio_mmio_dma_refused(c->t, "console receive buffer not in guest memory")) break;
            /* No frame for the buffer just now: it goes back empty and the
             * input waits for the next delivery. */
            if (virtio_mmio_queue_push(c->t, RX_QUEUE, c->chain.head, 0)) any = true;
            break;
        }
        memmove(c->in, c->in + n, c->in_len - n);
        c->in_len -= n;
        if (!virtio_mmio_queue_push(c->t, RX_QUEUE, c->chain.head, (uint32_t)n)) break;
        any = true;
    }
    pthread_mutex_unlock(&c->in_lock);
    if (any) virtio_mmio_queue_interrupt(c->t, RX_QUEUE);
}

/* Passes every transmit buffer to the sink (transport lock held), at most
 * VIRTIO_CONSOLE_MAX_OUTPUT bytes of each chain: its buffers may name all
 * of guest RAM a thousand times over (1024 descriptors, each as long as
 * RAM), and copying that would hold this vCPU and the transport lock, and
 * flood the sink, for as long as the guest likes. */
static void transmit(struct virtio_console *c) {
    const struct guest_mem_ops *m = virtio_mmio_mem(c->t);
    bool any = false;
    while (virtio_mmio_queue_pop(c->t, TX_QUEUE, &c->chain) > 0) {
        uint32_t budget = VIRTIO_CONSOLE_MAX_OUTPUT;
        for (unsigned s = 0; s < c->chain.nread && budget; s++) {
            uint64_t gpa = c->chain.seg[s].gpa;
            uint32_t left = c->chain.seg[s].len < budget ? c->chain.seg[s].len : budget;
            budget -= left;
            while (left) {
                size_t k = left < sizeof c->out ? left : sizeof c->out;
                if (!m->read(m->ctx, gpa, c->out, k)) {
                    if (virtio_mmio_dma_refused(c->t, "console transmit buffer not in guest memory")) return;
                    budget = left = 0; /* no frame to read it back just now: the rest is lost */
                    break;
                }
                if (c->sink.write) c->sink.write(c->sink.ctx, c->out, k);
                gpa += k;
                left -= (uint32_t)k;
            }
        }
        if (!virtio_mmio_queue_push(c->t, TX_QUEUE, c->chain.head, 0)) return;
        any = true;
    }
    if (any) virtio_mmio_queue_interrupt(c->t, TX_QUEUE);
}

static void kicked(void *ctx) {
    struct virtio_console *c = ctx;
    virtio_mmio_lock(c->t);
    transmit(c);
    deliver(c); /* new receive buffers: pending input can go */
    virtio_mmio_unlock(c->t);
}

static void console_notify(void *dev, struct virtio_mmio *t, unsigned q) {
    struct virtio_console *c = dev;
    c->t = t;
    if (c->kick)
        event_notifier_signal(c->kick);
    else if (q == TX_QUEUE)
        transmit(c);
    else
        deliver(c);
}

size_t virtio_console_input(struct virtio_console *c, const uint8_t *buf, size_t n) {
    pthread_mutex_lock(&c->in_lock);
    size_t room = sizeof c->in - c->in_len;
    if (n > room) n = room;
    memcpy(c->in + c->in_len, buf, n);
    c->in_len += n;
    pthread_mutex_unlock(&c->in_lock);
    if (c->t) {
        virtio_mmio_lock(c->t);
        deliver(c);
        virtio_mmio_unlock(c->t);
    }
    return n;
}

size_t virtio_console_input_space(struct virtio_console *c) {
    pthread_mutex_lock(&c->in_lock);
    size_t room = sizeof c->in - c->in_len;
    pthread_mutex_unlock(&c->in_lock);
    return room;
}

/* Config space (cols, rows, max_nr_ports, emerg_wr): no feature that uses
 * it is offered, so it reads as zeros. */
static uint64_t console_config_read(void *dev, uint64_t off, unsigned size) {
    (void)dev, (void)off, (void)size;
    return 0;
}

/* Saved state (in the transport's section): the host input not yet given
 * to the guest, u32 length then the bytes. Nothing else outlives a request. */
static bool console_save(void *dev, struct snap_writer *w) {
    struct virtio_console *c = dev;
    pthread_mutex_lock(&c->in_lock);
    bool ok = snap_write_u32(w, (uint32_t)c->in_len) && snap_write(w, c->in, c->in_len);
    pthread_mutex_unlock(&c->in_lock);
    return ok;
}

static bool console_load(void *dev, struct snap_cursor *cur, char *err, size_t errlen) {
    struct virtio_console *c = dev;
    uint32_t n;
    if (!snap_get_u32(cur, &n) || n > sizeof c->in || n > cur->left) {
        snprintf(err, errlen, "virtio-console: saved input length %u is out of range or truncated", n);
        return false;
    }
    pthread_mutex_lock(&c->in_lock);
    snap_get_bytes(cur, c->in, n); /* cannot fail: n <= left */
    c->in_len = n;
    pthread_mutex_unlock(&c->in_lock);
    return true;
}

const struct virtio_device_ops virtio_console_ops = {
    .device_id = VIRTIO_ID_CONSOLE,
    .features = 0,
    .num_queues = 2,
    .queue_max = VIRTIO_CONSOLE_QUEUE_SIZE,
    .config_read = console_config_read,
    .config_write = NULL,
    .notify = console_notify,
    .reset = NULL, /* buffered input survives a driver reset: it is the user's typing */
    .save = console_save,
    .load = console_load,
};
