/* virtio entropy device (virtio 1.2 section 5.4). */
#include "dev/virtio_rng.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

#include "io/event_loop.h"

struct virtio_rng {
    struct virtio_mmio *t;
    struct event_notifier *kick; /* NULL without a loop */
    struct virtq_chain chain;    /* too big for the stack of a vCPU thread */
    uint8_t buf[4096];
};

static void kicked(void *ctx);

struct virtio_rng *virtio_rng_create(struct event_loop *loop) {
    struct virtio_rng *r = calloc(1, sizeof *r);
    if (r && loop && !(r->kick = event_notifier_create(loop, kicked, r))) {
        free(r);
        return NULL;
    }
    return r;
}

void virtio_rng_destroy(struct virtio_rng *r) {
    if (!r) return;
    event_notifier_destroy(r->kick); /* waits out a running callback */
    free(r);
}

/* Fills buf with up to n random bytes; returns how many (fewer only if the
 * host has no entropy to give without blocking for long). */
static size_t host_random(uint8_t *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t k = getrandom(buf + got, n - got, 0);
        if (k < 0) {
            if (errno == EINTR) continue;
            break;
        }
        got += (size_t)k;
    }
    return got;
}

/* Gives one request its bytes; returns false if the device broke. */
static bool serve(struct virtio_rng *r, struct virtio_mmio *t, unsigned q) {
    const struct virtq_chain *c = &r->chain;
    const struct guest_mem_ops *m = virtio_mmio_mem(t);
    uint32_t done = 0;
    /* Readable buffers mean nothing to this device and are skipped. */
    for (unsigned s = c->nread; s < c->nseg && done < VIRTIO_RNG_MAX_REQUEST; s++) {
        uint64_t gpa = c->seg[s].gpa;
        uint32_t left = c->seg[s].len;
        if (left > VIRTIO_RNG_MAX_REQUEST - done) left = VIRTIO_RNG_MAX_REQUEST - done;
        while (left) {
            size_t n = left < sizeof r->buf ? left : sizeof r->buf;
            size_t got = host_random(r->buf, n);
            if (got && !m->write(m->ctx, gpa, r->buf, got)) {
                if (virtio_mmio_dma_refused(t, "entropy buffer not in guest memory")) return false;
                goto out; /* no frame just now: the bytes given so far */
            }
            done += (uint32_t)got;
            gpa += got;
            left -= (uint32_t)got;
            if (got < n) goto out;
        }
    }
out:
    return virtio_mmio_queue_push(t, q, c->head, done);
}

/* Serves every posted request (transport lock held). */
static void run_queue(struct virtio_rng *r, struct virtio_mmio *t) {
    bool any = false;
    for (;;) {
        int got = virtio_mmio_queue_pop(t, 0, &r->chain);
        if (got <= 0) break;
        if (!serve(r, t, 0)) return;
        any = true;
    }
    if (any) virtio_mmio_queue_interrupt(t, 0);
}

static void kicked(void *ctx) {
    struct virtio_rng *r = ctx;
    virtio_mmio_lock(r->t);
    run_queue(r, r->t);
    virtio_mmio_unlock(r->t);
}

static void rng_notify(void *dev, struct virtio_mmio *t, unsigned q) {
    struct virtio_rng *r = dev;
    (void)q; /* the only queue */
    r->t = t;
    if (r->kick)
        event_notifier_signal(r->kick);
    else
        run_queue(r, t);
}

const struct virtio_device_ops virtio_rng_ops = {
    .device_id = VIRTIO_ID_RNG,
    .features = 0,
    .num_queues = 1,
    .queue_max = VIRTIO_RNG_QUEUE_SIZE,
    .config_read = NULL,
    .config_write = NULL,
    .notify = rng_notify,
    .reset = NULL,
    .save = NULL, /* nothing outlives a request */
    .load = NULL,
};

static void rng_attach(void *dev, struct virtio_mmio *t) { ((struct virtio_rng *)dev)->t = t; }
static void rng_destroy(void *dev) { virtio_rng_destroy(dev); }

bool virtio_rng_backend_create(const char *opts, const struct virtio_backend_env *env, struct virtio_backend *out,
                               char *err, size_t errlen) {
    if (opts && *opts) {
        snprintf(err, errlen, "takes no options (got '%s')", opts);
        return false;
    }
    struct virtio_rng *r = virtio_rng_create(env->loop);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    *out = (struct virtio_backend){.ops = &virtio_rng_ops, .dev = r, .attach = rng_attach, .destroy = rng_destroy};
    return true;
}
