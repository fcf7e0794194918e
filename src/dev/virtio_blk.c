/* virtio block device (virtio 1.2 section 5.2). */
#include "dev/virtio_blk.h"

#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev/disk_image.h"
#include "io/event_loop.h"
#include "io/snap_file.h"

/* Guest data passes through this many bytes at a time; the transport lock
 * is dropped around each host transfer of one bounce buffer. */
#define BOUNCE_SIZE (1u << 20)
/* Requests served per wakeup before the loop thread lets other devices
 * run (a guest that keeps its queue full must not starve them). */
#define BATCH 64
#define HEADER_LEN 16
#define RANGE_LEN 16 /* struct virtio_blk_discard_write_zeroes */
/* Internal outcomes: the request is dropped without a used element, because
 * the device broke or was reset while the host I/O ran (ABANDON); or a
 * guest frame could not be backed just now (AGAIN): the request goes back
 * to the ring and is served again from the start a moment later, since
 * every request type can be repeated (machine memory is being reclaimed;
 * harts wait for it the same way). */
#define ABANDON 0xff
#define AGAIN 0xfe
/* How long a request that found no frame waits before it is tried again. */
#define RETRY_NS 2000000ull
/* A request that waited this long for memory fails with an I/O error
 * (swap full or off: none is coming); a hart gives up after as long. */
#define GIVE_UP_NS 10000000000ull

struct virtio_blk {
    struct disk_image img;
    uint64_t capacity;                /* 512-byte sectors */
    char serial[VIRTIO_BLK_ID_BYTES]; /* NUL-padded; no NUL when all 20 are used */
    struct event_loop *loop;
    struct event_notifier *kick; /* NULL without a loop */
    struct virtio_mmio *t;
    uint64_t generation; /* device resets; changed and read with the transport lock */
    /* When to look at the queue again without a notification (0: no need):
     * after a request found no frame, and after a restore. */
    uint64_t retry_at_ns;
    struct event_source *retry;
    /* Only the thread serving requests touches these. */
    uint64_t waiting_since_ns; /* the request at the ring's head first found no frame (0: it did not) */
    bool give_up;              /* ...long enough ago that it now fails instead */
    struct virtq_chain chain;
    uint8_t *bounce;
};

struct request {
    uint32_t type;
    uint64_t sector;
    uint64_t in_len;  /* device-readable bytes after the header */
    uint64_t out_len; /* device-writable bytes before the status byte */
    uint32_t written; /* bytes put into device-writable buffers, status not counted */
    uint64_t generation;
    bool writethrough; /* the driver did not take VIRTIO_BLK_F_FLUSH */
};

/* ---- locking: with a loop, requests run on the loop thread, which holds
 * the transport lock only while it touches the rings or guest memory;
 * without one the notifying thread already holds it throughout. ---- */

static void lock(struct virtio_blk *b) {
    if (b->loop) virtio_mmio_lock(b->t);
}
static void unlock(struct virtio_blk *b) {
    if (b->loop) virtio_mmio_unlock(b->t);
}
static bool reset_since(const struct virtio_blk *b, const struct request *r) {
    return b->generation != r->generation;
}

static bool range_ok(const struct virtio_blk *b, uint64_t sector, uint64_t nsectors) {
    return sector <= b->capacity && nsectors <= b->capacity - sector;
}

/* A buffer copy was refused: a bad address breaks the device, a frame
 * that cannot be backed just now makes the request wait. */
static uint8_t refused(struct virtio_blk *b, const char *why) {
    return virtio_mmio_dma_refused(b->t, why) ? ABANDON : AGAIN;
}

/* Checks the data part of a read or write: whole sectors, inside the disk. */
static bool data_ok(const struct virtio_blk *b, const struct request *r, uint64_t len) {
    return len % VIRTIO_BLK_SECTOR == 0 && len <= VIRTIO_BLK_MAX_REQUEST &&
           range_ok(b, r->sector, len / VIRTIO_BLK_SECTOR);
}

static uint8_t do_read(struct virtio_blk *b, struct request *r) {
    const struct guest_mem_ops *m = virtio_mmio_mem(b->t);
    uint64_t len = r->out_len;
    if (!data_ok(b, r, len)) return VIRTIO_BLK_S_IOERR;
    uint64_t pos = r->sector * VIRTIO_BLK_SECTOR;
    for (uint64_t off = 0; off < len;) {
        size_t n = len - off < BOUNCE_SIZE ? (size_t)(len - off) : BOUNCE_SIZE;
        unlock(b);
        bool ok = disk_image_read(&b->img, pos + off, b->bounce, n);
        lock(b);
        if (reset_since(b, r)) return ABANDON;
        if (!ok) return VIRTIO_BLK_S_IOERR;
        if (!virtq_chain_write(&b->chain, m, off, b->bounce, n)) return refused(b, "read buffer not in guest memory");
        off += n;
        r->written = (uint32_t)off;
    }
    return VIRTIO_BLK_S_OK;
}

/* Host I/O with the lock dropped; ABANDON if the device was reset meanwhile. */
static uint8_t flush(struct virtio_blk *b, const struct request *r) {
    unlock(b);
    bool ok = disk_image_flush(&b->img);
    lock(b);
    if (reset_since(b, r)) return ABANDON;
    return ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
}

static uint8_t do_write(struct virtio_blk *b, struct request *r) {
    const struct guest_mem_ops *m = virtio_mmio_mem(b->t);
    uint64_t len = r->in_len;
    if (b->img.readonly || !data_ok(b, r, len)) return VIRTIO_BLK_S_IOERR;
    uint64_t pos = r->sector * VIRTIO_BLK_SECTOR;
    for (uint64_t off = 0; off < len;) {
        size_t n = len - off < BOUNCE_SIZE ? (size_t)(len - off) : BOUNCE_SIZE;
        if (!virtq_chain_read(&b->chain, m, HEADER_LEN + off, b->bounce, n))
            return refused(b, "write buffer not in guest memory");
        unlock(b);
        bool ok = disk_image_write(&b->img, pos + off, b->bounce, n);
        lock(b);
        if (reset_since(b, r)) return ABANDON;
        if (!ok) return VIRTIO_BLK_S_IOERR;
        off += n;
    }
    return r->writethrough && len ? flush(b, r) : VIRTIO_BLK_S_OK;
}

static uint8_t get_id(struct virtio_blk *b, struct request *r) {
    size_t n = r->out_len < VIRTIO_BLK_ID_BYTES ? (size_t)r->out_len : VIRTIO_BLK_ID_BYTES;
    if (!virtq_chain_write(&b->chain, virtio_mmio_mem(b->t), 0, b->serial, n))
        return refused(b, "id buffer not in guest memory");
    r->written = (uint32_t)n;
    return VIRTIO_BLK_S_OK;
}

/* DISCARD and WRITE_ZEROES: a list of (sector, num_sectors, flags). */
static uint8_t do_ranges(struct virtio_blk *b, struct request *r) {
    bool discard = r->type == VIRTIO_BLK_T_DISCARD;
    if (b->img.readonly) return VIRTIO_BLK_S_IOERR;
    if (r->in_len == 0 || r->in_len % RANGE_LEN) return VIRTIO_BLK_S_IOERR;
    if (r->in_len / RANGE_LEN > VIRTIO_BLK_MAX_DISCARD_SEG) return VIRTIO_BLK_S_UNSUPP;
    unsigned n = (unsigned)(r->in_len / RANGE_LEN);
    uint8_t raw[VIRTIO_BLK_MAX_DISCARD_SEG * RANGE_LEN];
    if (!virtq_chain_read(&b->chain, virtio_mmio_mem(b->t), HEADER_LEN, raw, n * RANGE_LEN))
        return refused(b, "discard ranges not in guest memory");
    struct {
        uint64_t sector;
        uint32_t num, flags;
    } range[VIRTIO_BLK_MAX_DISCARD_SEG];
    for (unsigned i = 0; i < n; i++) {
        memcpy(&range[i].sector, raw + i * RANGE_LEN, 8);
        memcpy(&range[i].num, raw + i * RANGE_LEN + 8, 4);
        memcpy(&range[i].flags, raw + i * RANGE_LEN + 12, 4);
        range[i].sector = le64toh(range[i].sector);
        range[i].num = le32toh(range[i].num);
        range[i].flags = le32toh(range[i].flags);
        /* 5.2.6.2: unmap means nothing to a discard; reserved bits are unsupported. */
        uint32_t allowed = discard ? 0 : VIRTIO_BLK_DISCARD_FLAG_UNMAP;
        if (range[i].flags & ~allowed) return VIRTIO_BLK_S_UNSUPP;
        if (range[i].num > VIRTIO_BLK_MAX_DISCARD_SECTORS || !range_ok(b, range[i].sector, range[i].num))
            return VIRTIO_BLK_S_IOERR;
    }
    unlock(b);
    bool ok = true;
    for (unsigned i = 0; i < n && ok; i++) {
        uint64_t off = range[i].sector * VIRTIO_BLK_SECTOR, len = (uint64_t)range[i].num * VIRTIO_BLK_SECTOR;
        if (discard || (range[i].flags & VIRTIO_BLK_DISCARD_FLAG_UNMAP))
            ok = disk_image_discard(&b->img, off, len, b->bounce, BOUNCE_SIZE);
        else
            ok = disk_image_write_zeroes(&b->img, off, len, b->bounce, BOUNCE_SIZE);
    }
    lock(b);
    if (reset_since(b, r)) return ABANDON;
    if (!ok) return VIRTIO_BLK_S_IOERR;
    return r->writethrough ? flush(b, r) : VIRTIO_BLK_S_OK;
}

static uint8_t execute(struct virtio_blk *b, struct request *r) {
    switch (r->type) {
    case VIRTIO_BLK_T_IN: return do_read(b, r);
    case VIRTIO_BLK_T_OUT: return do_write(b, r);
    case VIRTIO_BLK_T_FLUSH: return flush(b, r);
    case VIRTIO_BLK_T_GET_ID: return get_id(b, r);
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES: return do_ranges(b, r);
    }
    return VIRTIO_BLK_S_UNSUPP;
}

/* Still no frame to say how a request ended: once given up on, the device
 * is lost (nothing else can tell the driver); before, try again later. */
static bool give_up_broken(struct virtio_blk *b, const char *why) {
    if (!b->give_up) return false;
    virtio_mmio_set_broken(b->t, why);
    return true;
}

/* Serves the popped chain, lock held (dropped and retaken inside). False
 * if it must be served again later (AGAIN). */
static bool serve(struct virtio_blk *b) {
    const struct virtq_chain *c = &b->chain;
    const struct guest_mem_ops *m = virtio_mmio_mem(b->t);
    if (c->write_len == 0) {
        /* Nowhere to say what went wrong. */
        virtio_mmio_set_broken(b->t, "block request without a status byte");
        return true;
    }
    struct request r = {
        .out_len = c->write_len - 1,
        .generation = b->generation,
        .writethrough = !(virtio_mmio_driver_features(b->t) & (1ull << VIRTIO_BLK_F_FLUSH)),
    };
    uint8_t status = VIRTIO_BLK_S_IOERR; /* header short, or partly device-writable */
    if (c->read_len >= HEADER_LEN) {
        uint8_t hdr[HEADER_LEN];
        if (!virtq_chain_read(c, m, 0, hdr, sizeof hdr))
            return refused(b, "block request header not in guest memory") == ABANDON;
        uint32_t type;
        uint64_t sector;
        memcpy(&type, hdr, 4);
        memcpy(&sector, hdr + 8, 8);
        r.type = le32toh(type);
        r.sector = le64toh(sector);
        r.in_len = c->read_len - HEADER_LEN;
        status = execute(b, &r);
        if (status == ABANDON) return true;
        if (status == AGAIN) {
            if (!b->give_up) return false;
            status = VIRTIO_BLK_S_IOERR;
        }
    }
    if (!virtq_chain_write(c, m, c->write_len - 1, &status, 1)) {
        if (refused(b, "block status byte not in guest memory") == ABANDON) return true;
        return give_up_broken(b, "no frame for the status byte");
    }
    if (!virtio_mmio_queue_push(b->t, 0, c->head, r.written + 1))
        return errno != ENOMEM || give_up_broken(b, "no frame for the used ring");
    /* Interrupt per request: with event index the driver asks for one only
     * when it is waiting, and a long batch must not delay the first. */
    virtio_mmio_queue_interrupt(b->t, 0);
    return true;
}

static void retry_later(struct virtio_blk *b) {
    __atomic_store_n(&b->retry_at_ns, event_loop_now_ns() + RETRY_NS, __ATOMIC_RELEASE);
    event_loop_wakeup(b->loop);
}

static void run_queue(struct virtio_blk *b) {
    /* Without a loop there is nobody to come back later: serve them all. */
    unsigned limit = b->kick ? BATCH : UINT_MAX, served = 0;
    bool wait = false;
    lock(b);
    while (served < limit) {
        int got = virtio_mmio_queue_pop(b->t, 0, &b->chain);
        wait = got == VIRTIO_MMIO_AGAIN;
        if (got <= 0) break;
        /* The clock is read only for a request that waits. */
        b->give_up = b->waiting_since_ns && event_loop_now_ns() - b->waiting_since_ns >= GIVE_UP_NS;
        if (!serve(b)) {
            virtio_mmio_queue_unpop(b->t, 0);
            if (!b->waiting_since_ns) b->waiting_since_ns = event_loop_now_ns();
            wait = true;
            break;
        }
        b->waiting_since_ns = 0;
        served++;
    }
    unlock(b);
    /* Without a loop the next notification tries again. */
    if (wait && b->loop) {
        retry_later(b);
        return;
    }
    /* More may be waiting: come back after the loop's other work. */
    if (b->kick && served == limit) event_notifier_signal(b->kick);
}

static void kicked(void *ctx) { run_queue(ctx); }

static unsigned retry_prepare(void *ctx, struct pollfd *fds, unsigned max, uint64_t *timeout_ns) {
    struct virtio_blk *b = ctx;
    (void)fds;
    (void)max;
    uint64_t at = __atomic_load_n(&b->retry_at_ns, __ATOMIC_ACQUIRE);
    if (at) {
        uint64_t now = event_loop_now_ns();
        uint64_t wait = at > now ? at - now : 0;
        if (wait < *timeout_ns) *timeout_ns = wait;
    }
    return 0;
}

static void retry_dispatch(void *ctx, struct pollfd *fds, unsigned n) {
    struct virtio_blk *b = ctx;
    (void)fds;
    (void)n;
    uint64_t at = __atomic_load_n(&b->retry_at_ns, __ATOMIC_ACQUIRE);
    if (!at || at > event_loop_now_ns()) return;
    __atomic_store_n(&b->retry_at_ns, 0, __ATOMIC_RELEASE);
    run_queue(b);
}

static const struct event_source_ops retry_ops = {.prepare = retry_prepare, .dispatch = retry_dispatch};

static void blk_notify(void *dev, struct virtio_mmio *t, unsigned q) {
    struct virtio_blk *b = dev;
    (void)t;
    (void)q;
    if (b->kick)
        event_notifier_signal(b->kick);
    else
        run_queue(b);
}

static void blk_reset(void *dev) {
    struct virtio_blk *b = dev;
    b->generation++;
}

static void put32(uint8_t *p, uint32_t v) {
    v = htole32(v);
    memcpy(p, &v, 4);
}

static uint64_t blk_config_read(void *dev, uint64_t off, unsigned size) {
    struct virtio_blk *b = dev;
    uint8_t cfg[VIRTIO_BLK_CFG_SIZE] = {0};
    uint64_t cap = htole64(b->capacity);
    memcpy(cfg + VIRTIO_BLK_CFG_CAPACITY, &cap, 8);
    put32(cfg + VIRTIO_BLK_CFG_SEG_MAX, VIRTIO_BLK_SEG_MAX);
    put32(cfg + VIRTIO_BLK_CFG_BLK_SIZE, VIRTIO_BLK_SECTOR);
    put32(cfg + VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS, VIRTIO_BLK_MAX_DISCARD_SECTORS);
    put32(cfg + VIRTIO_BLK_CFG_MAX_DISCARD_SEG, VIRTIO_BLK_MAX_DISCARD_SEG);
    put32(cfg + VIRTIO_BLK_CFG_DISCARD_ALIGNMENT, VIRTIO_BLK_DISCARD_ALIGNMENT);
    put32(cfg + VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SECTORS, VIRTIO_BLK_MAX_DISCARD_SECTORS);
    put32(cfg + VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SEG, VIRTIO_BLK_MAX_DISCARD_SEG);
    cfg[VIRTIO_BLK_CFG_WRITE_ZEROES_MAY_UNMAP] = 1;
    if (off > sizeof cfg || size > sizeof cfg - off) return 0;
    uint64_t v = 0;
    memcpy(&v, cfg + off, size); /* little-endian host */
    return le64toh(v);
}

/* Saved state (in the transport's section): only the capacity, to catch a
 * VM restored over another image. Snapshots are taken with the event loop
 * quiesced, so no request is in flight (one waiting for a frame went back
 * to the ring); the data is the image's business. */
static bool blk_save(void *dev, struct snap_writer *w) {
    struct virtio_blk *b = dev;
    return snap_write_u64(w, b->capacity);
}

static bool blk_load(void *dev, struct snap_cursor *c, char *err, size_t errlen) {
    struct virtio_blk *b = dev;
    uint64_t cap;
    if (!snap_get_u64(c, &cap)) {
        snprintf(err, errlen, "virtio-blk: saved state truncated");
        return false;
    }
    if (cap != b->capacity) {
        snprintf(err, errlen, "disk image has %llu sectors, the snapshot recorded %llu",
                 (unsigned long long)b->capacity, (unsigned long long)cap);
        return false;
    }
    /* Requests the driver made available (and notified, or was waiting to
     * be retried) before the snapshot would wait for a notification that
     * already came: look at the queue as soon as the VM runs. */
    if (b->loop) retry_later(b);
    return true;
}

#define BLK_FEATURES                                                                                   \
    ((1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_FLUSH))

const struct virtio_device_ops virtio_blk_ops = {
    .device_id = VIRTIO_ID_BLOCK,
    .features = BLK_FEATURES | (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES),
    .num_queues = 1,
    .queue_max = VIRTIO_BLK_QUEUE_SIZE,
    .config_read = blk_config_read,
    .config_write = NULL, /* nothing in it is writable without CONFIG_WCE */
    .notify = blk_notify,
    .reset = blk_reset,
    .save = blk_save,
    .load = blk_load,
};

const struct virtio_device_ops virtio_blk_ro_ops = {
    .device_id = VIRTIO_ID_BLOCK,
    .features = BLK_FEATURES | (1ull << VIRTIO_BLK_F_RO),
    .num_queues = 1,
    .queue_max = VIRTIO_BLK_QUEUE_SIZE,
    .config_read = blk_config_read,
    .config_write = NULL,
    .notify = blk_notify,
    .reset = blk_reset,
    .save = blk_save,
    .load = blk_load,
};

/* ---- construction ---- */

struct blk_options {
    const char *file;
    bool readonly;
    const char *serial;
};

static bool set_option(struct blk_options *o, char *item, char *err, size_t errlen) {
    char *eq = strchr(item, '=');
    if (!eq) {
        snprintf(err, errlen, "expected KEY=VALUE, got '%s' (try file=PATH)", item);
        return false;
    }
    *eq = '\0';
    const char *key = item, *val = eq + 1;
    if (!strcmp(key, "file")) {
        if (o->file) {
            snprintf(err, errlen, "file= given twice");
            return false;
        }
        if (!*val) {
            snprintf(err, errlen, "file= needs a path");
            return false;
        }
        o->file = val;
    } else if (!strcmp(key, "readonly")) {
        if (strcmp(val, "on") && strcmp(val, "off")) {
            snprintf(err, errlen, "readonly= takes on or off, not '%s'", val);
            return false;
        }
        o->readonly = !strcmp(val, "on");
    } else if (!strcmp(key, "serial")) {
        size_t n = strlen(val);
        bool printable = true;
        for (size_t i = 0; i < n; i++) printable &= val[i] >= 0x20 && val[i] < 0x7f;
        if (n == 0 || n > VIRTIO_BLK_ID_BYTES || !printable) {
            snprintf(err, errlen, "serial= takes 1 to %d printable ASCII characters", VIRTIO_BLK_ID_BYTES);
            return false;
        }
        o->serial = val;
    } else {
        snprintf(err, errlen, "unknown option '%s' (known: file, readonly, serial)", key);
        return false;
    }
    return true;
}

/* Splits buf (modified in place) at single commas; ",," is a literal comma. */
static bool parse_options(char *buf, struct blk_options *o, char *err, size_t errlen) {
    char *item = buf, *w = buf;
    for (const char *p = buf;;) {
        if (*p == ',' && p[1] == ',') {
            *w++ = ',';
            p += 2;
            continue;
        }
        if (*p != ',' && *p != '\0') {
            *w++ = *p++;
            continue;
        }
        bool end = *p == '\0';
        *w = '\0';
        if (*item && !set_option(o, item, err, errlen)) return false;
        if (end) break;
        p++;
        item = ++w;
    }
    if (!o->file) {
        snprintf(err, errlen, "missing file=PATH");
        return false;
    }
    return true;
}

/* Without serial=, the image's file name (its last 20 characters, which
 * tell images apart best) with anything unprintable replaced. */
static void default_serial(char out[VIRTIO_BLK_ID_BYTES], const char *path) {
    const char *base = strrchr(path, '/');
    base = base && base[1] ? base + 1 : path;
    size_t n = strlen(base);
    if (n > VIRTIO_BLK_ID_BYTES) base += n - VIRTIO_BLK_ID_BYTES, n = VIRTIO_BLK_ID_BYTES;
    memset(out, 0, VIRTIO_BLK_ID_BYTES);
    for (size_t i = 0; i < n; i++) out[i] = (base[i] > 0x20 && base[i] < 0x7f) ? base[i] : '_';
}

static void blk_attach(void *dev, struct virtio_mmio *t) {
    struct virtio_blk *b = dev;
    b->t = t;
}

static void blk_free(struct virtio_blk *b) {
    if (b->retry) event_loop_remove(b->loop, b->retry); /* waits out a running callback */
    event_notifier_destroy(b->kick); /* waits out a running callback */
    disk_image_close(&b->img);
    free(b->bounce);
    free(b);
}

static void blk_destroy(void *dev) { blk_free(dev); }

bool virtio_blk_backend_create(const char *opts, const struct virtio_backend_env *env, struct virtio_backend *out,
                               char *err, size_t errlen) {
    char *buf = strdup(opts ? opts : "");
    struct virtio_blk *b = calloc(1, sizeof *b);
    if (b) b->img.fd = -1;
    if (!buf || !b) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    struct blk_options o = {0};
    if (!parse_options(buf, &o, err, errlen)) goto fail;
    if (!disk_image_open(&b->img, o.file, o.readonly, err, errlen)) goto fail;
    if (!(b->bounce = malloc(BOUNCE_SIZE))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    b->capacity = b->img.size / VIRTIO_BLK_SECTOR;
    if (o.serial) {
        memset(b->serial, 0, sizeof b->serial);
        memcpy(b->serial, o.serial, strlen(o.serial));
    } else {
        default_serial(b->serial, o.file);
    }
    b->loop = env->loop;
    if (b->loop && (!(b->kick = event_notifier_create(b->loop, kicked, b)) ||
                    !(b->retry = event_loop_add(b->loop, &retry_ops, b)))) {
        snprintf(err, errlen, "cannot create an event notifier");
        goto fail;
    }
    free(buf);
    *out = (struct virtio_backend){
        .ops = o.readonly ? &virtio_blk_ro_ops : &virtio_blk_ops,
        .dev = b,
        .attach = blk_attach,
        .destroy = blk_destroy,
    };
    return true;
fail:
    if (b) blk_free(b);
    free(buf);
    return false;
}
