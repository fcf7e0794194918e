/* virtio memory balloon (virtio 1.2 section 5.5): see virtio_balloon.h.
 *
 * Threads: queue notifies arrive on vCPU threads with the transport lock
 * held; they only note the queue and signal a notifier, and the work runs
 * on the event loop thread (which takes the transport lock). Target changes
 * from the monitor travel the same way, so the monitor never takes a
 * transport lock (the transport's interrupt path takes the monitor's). The
 * figures other threads read live in `info` under info_lock, a leaf lock. */
#include "dev/virtio_balloon.h"

#include <endian.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/event_loop.h"
#include "io/vmstate.h"

#define PFN_SHIFT 12
#define PFN_CHUNK 256                /* PFNs read from the guest at a time (Linux sends at most 256) */
#define MAX_PFN_BYTES (64u << 10)    /* PFN bytes looked at per buffer; the rest is ignored */
#define STAT_SIZE 10                 /* le16 tag, le64 value, packed */
#define MAX_STATS 64                 /* records looked at per stats buffer */
#define NUM_QUEUES 4

#define OFFERED                                                                                      \
    ((1ull << VIRTIO_BALLOON_F_STATS_VQ) | (1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM) |                \
     (1ull << VIRTIO_BALLOON_F_REPORTING))

enum role { ROLE_NONE, ROLE_INFLATE, ROLE_DEFLATE, ROLE_STATS, ROLE_REPORTING };

/* What a snapshot saves (balloon_vmstate); the rest is host machinery
 * and the monitor's figures. */
struct balloon_state {
    uint32_t num_pages, actual;        /* the config space */
    bool stats_held;                   /* the driver's stats buffer is ours */
    uint16_t stats_head;
};

struct virtio_balloon {
    struct virtq_chain chain;          /* too big for a vCPU thread's stack */
    struct guest_ram_ops ram;
    struct event_loop *loop;
    struct virtio_mmio *t;
    struct event_notifier *kick;       /* to the loop thread: queues, target, stats request */

    /* Set by any thread, taken by the loop thread. */
    uint32_t pending_queues;           /* bit per queue notified */
    uint32_t new_target;               /* num_pages the monitor asked for */
    bool target_changed, stats_wanted;
    uint64_t last_request_ns;          /* when virtio_balloon_refresh_stats last asked */

    /* With the transport lock held. */
    struct balloon_state st;
    uint8_t pfn_bytes[PFN_CHUNK * 4];
    uint64_t pfn_gpa[PFN_CHUNK];
    uint8_t stat_bytes[MAX_STATS * STAT_SIZE];

    pthread_mutex_t info_lock;
    struct virtio_balloon_info info;
};

/* Which queue q is, given the features the driver took. */
static enum role queue_role(uint64_t features, unsigned q) {
    if (q == 0) return ROLE_INFLATE;
    if (q == 1) return ROLE_DEFLATE;
    unsigned next = 2;
    if (features & (1ull << VIRTIO_BALLOON_F_STATS_VQ)) {
        if (q == next) return ROLE_STATS;
        next++;
    }
    if (features & (1ull << VIRTIO_BALLOON_F_FREE_PAGE_HINT)) next++; /* never offered, but numbered */
    if ((features & (1ull << VIRTIO_BALLOON_F_REPORTING)) && q == next) return ROLE_REPORTING;
    return ROLE_NONE;
}

/* Whether [gpa, gpa + len) is RAM; written so that no sum can wrap. */
static bool in_ram(const struct guest_ram_ops *r, uint64_t gpa, uint64_t len) {
    return gpa >= r->base && len <= r->size && gpa - r->base <= r->size - len;
}

/* ---- inflate and deflate ---- */

/* Turns n little-endian PFNs in pfn_bytes into drops (inflate) or counts. */
static void take_pfns(struct virtio_balloon *b, unsigned n, bool inflate) {
    unsigned k = 0, outside = 0;
    for (unsigned i = 0; i < n; i++) {
        uint32_t pfn;
        memcpy(&pfn, b->pfn_bytes + 4 * i, 4);
        uint64_t gpa = (uint64_t)le32toh(pfn) << PFN_SHIFT;
        if (in_ram(&b->ram, gpa, 1ull << PFN_SHIFT))
            b->pfn_gpa[k++] = gpa;
        else
            outside++;
    }
    /* Deflated pages need nothing: they are demand-zero since inflation. */
    uint64_t freed = inflate && k ? b->ram.drop_frames(b->ram.ctx, b->pfn_gpa, k) : 0;
    pthread_mutex_lock(&b->info_lock);
    if (inflate) {
        b->info.inflated_pages += k;
        b->info.freed_frames += freed;
    } else {
        b->info.deflated_pages += k;
    }
    b->info.ignored_pages += outside;
    pthread_mutex_unlock(&b->info_lock);
}

/* The PFN arrays of one chain: its readable bytes, as one stream (a PFN
 * may straddle two buffers). False if the device broke. */
static bool serve_pfns(struct virtio_balloon *b, struct virtio_mmio *t, bool inflate) {
    const struct virtq_chain *c = &b->chain;
    const struct guest_mem_ops *m = virtio_mmio_mem(t);
    unsigned have = 0;
    uint64_t budget = MAX_PFN_BYTES;
    for (unsigned s = 0; s < c->nread && budget; s++) {
        uint64_t gpa = c->seg[s].gpa, left = c->seg[s].len < budget ? c->seg[s].len : budget;
        budget -= left;
        while (left) {
            unsigned n = sizeof b->pfn_bytes - have;
            if (n > left) n = (unsigned)left;
            if (!m->read(m->ctx, gpa, b->pfn_bytes + have, n)) {
                if (virtio_mmio_dma_refused(t, "balloon PFN array not in guest memory")) return false;
                /* No frame to read the rest back just now: those pages stay
                 * in the guest's count of the balloon but keep their frames. */
                budget = left = 0;
                break;
            }
            have += n;
            gpa += n;
            left -= n;
            if (have == sizeof b->pfn_bytes) {
                take_pfns(b, PFN_CHUNK, inflate);
                have = 0;
            }
        }
    }
    take_pfns(b, have / 4, inflate); /* trailing bytes short of a PFN are ignored */
    return true;
}

/* ---- free page reporting ---- */

static void serve_report(struct virtio_balloon *b) {
    const struct virtq_chain *c = &b->chain;
    /* Linux posts the ranges device-writable; either direction means the same. */
    for (unsigned s = 0; s < c->nseg; s++) {
        uint64_t gpa = c->seg[s].gpa, len = c->seg[s].len;
        uint64_t end = gpa + len < gpa ? UINT64_MAX : gpa + len;
        uint64_t ram_end = b->ram.base + b->ram.size;
        uint64_t lo = gpa < b->ram.base ? b->ram.base : gpa;
        uint64_t hi = end > ram_end ? ram_end : end;
        uint64_t bytes = hi > lo ? hi - lo : 0;
        uint64_t frames = bytes ? b->ram.drop_range(b->ram.ctx, lo, bytes) : 0;
        /* Counted range by range, so that `backed` and these agree closely. */
        pthread_mutex_lock(&b->info_lock);
        b->info.reported_bytes += bytes;
        b->info.reported_frames += frames;
        pthread_mutex_unlock(&b->info_lock);
    }
}

/* ---- statistics ---- */

static bool take_stats(struct virtio_balloon *b, struct virtio_mmio *t) {
    const struct virtq_chain *c = &b->chain;
    const struct guest_mem_ops *m = virtio_mmio_mem(t);
    unsigned have = 0;
    for (unsigned s = 0; s < c->nread && have < sizeof b->stat_bytes; s++) {
        unsigned n = sizeof b->stat_bytes - have;
        if (n > c->seg[s].len) n = c->seg[s].len;
        if (!m->read(m->ctx, c->seg[s].gpa, b->stat_bytes + have, n))
            /* No frame just now: this report is skipped, the next one comes. */
            return !virtio_mmio_dma_refused(t, "balloon stats buffer not in guest memory");
        have += n;
    }
    pthread_mutex_lock(&b->info_lock);
    for (unsigned i = 0; i + STAT_SIZE <= have; i += STAT_SIZE) {
        uint16_t tag;
        uint64_t val;
        memcpy(&tag, b->stat_bytes + i, 2);
        memcpy(&val, b->stat_bytes + i + 2, 8);
        tag = le16toh(tag);
        if (tag >= VIRTIO_BALLOON_S_NR) continue; /* a newer driver's tag */
        b->info.stats[tag] = le64toh(val);
        b->info.stats_valid |= 1u << tag;
    }
    b->info.stats_updated_ns = event_loop_now_ns();
    pthread_mutex_unlock(&b->info_lock);
    return true;
}

/* With the transport lock held. */
static void give_back_stats(struct virtio_balloon *b, struct virtio_mmio *t, unsigned q) {
    if (!b->st.stats_held) return;
    b->st.stats_held = false;
    if (virtio_mmio_queue_push(t, q, b->st.stats_head, 0)) virtio_mmio_queue_interrupt(t, q);
}

static int stats_queue(struct virtio_mmio *t) {
    uint64_t f = virtio_mmio_driver_features(t);
    for (unsigned q = 2; q < NUM_QUEUES; q++)
        if (queue_role(f, q) == ROLE_STATS) return (int)q;
    return -1;
}

static void process_queue(struct virtio_balloon *b, struct virtio_mmio *t, unsigned q);

static void request_stats(struct virtio_balloon *b, struct virtio_mmio *t) {
    int q = stats_queue(t);
    if (q < 0) return;
    /* Linux posts its first stats buffer and notifies before DRIVER_OK,
     * when the transport ignores notifications: look for it here. */
    if (!b->st.stats_held) process_queue(b, t, (unsigned)q);
    give_back_stats(b, t, (unsigned)q);
}

/* ---- queue work, with the transport lock held ---- */

static void process_queue(struct virtio_balloon *b, struct virtio_mmio *t, unsigned q) {
    enum role role = queue_role(virtio_mmio_driver_features(t), q);
    if (role == ROLE_NONE) return;
    bool any = false;
    for (;;) {
        int got = virtio_mmio_queue_pop(t, q, &b->chain);
        if (got <= 0) break;
        switch (role) {
        case ROLE_INFLATE:
        case ROLE_DEFLATE:
            if (!serve_pfns(b, t, role == ROLE_INFLATE)) return;
            break;
        case ROLE_REPORTING: serve_report(b); break;
        case ROLE_STATS:
            /* The driver has one buffer; if it posts another, the one we
             * hold goes back unused. */
            if (b->st.stats_held) {
                b->st.stats_held = false;
                if (!virtio_mmio_queue_push(t, q, b->st.stats_head, 0)) return;
                any = true;
            }
            if (!take_stats(b, t)) return;
            b->st.stats_held = true; /* kept until we want fresh figures */
            b->st.stats_head = b->chain.head;
            continue;
        case ROLE_NONE: return;
        }
        /* Nothing is written back: the used length is 0. */
        if (!virtio_mmio_queue_push(t, q, b->chain.head, 0)) return;
        any = true;
    }
    if (any) virtio_mmio_queue_interrupt(t, q);
}

static void apply_target(struct virtio_balloon *b, struct virtio_mmio *t, uint32_t pages) {
    if (b->st.num_pages == pages) return;
    b->st.num_pages = pages;
    virtio_mmio_config_changed(t);
}

/* The loop thread's side of the notifier. */
static void kicked(void *ctx) {
    struct virtio_balloon *b = ctx;
    uint32_t queues = __atomic_exchange_n(&b->pending_queues, 0, __ATOMIC_ACQ_REL);
    bool target = __atomic_exchange_n(&b->target_changed, false, __ATOMIC_ACQ_REL);
    bool stats = __atomic_exchange_n(&b->stats_wanted, false, __ATOMIC_ACQ_REL);
    virtio_mmio_lock(b->t);
    if (target) apply_target(b, b->t, __atomic_load_n(&b->new_target, __ATOMIC_ACQUIRE));
    for (unsigned q = 0; q < NUM_QUEUES; q++)
        if (queues & (1u << q)) process_queue(b, b->t, q);
    if (stats) {
        request_stats(b, b->t);
    } else if (!b->st.stats_held) {
        /* The first buffer came before DRIVER_OK, unannounced: take it now. */
        int sq = stats_queue(b->t);
        if (sq >= 0) process_queue(b, b->t, (unsigned)sq);
    }
    virtio_mmio_unlock(b->t);
}

/* ---- transport callbacks (transport lock held) ---- */

static uint64_t balloon_config_read(void *dev, uint64_t off, unsigned size) {
    struct virtio_balloon *b = dev;
    /* num_pages, actual, free_page_hint_cmd_id, poison_val: all le32. */
    uint32_t words[4] = {htole32(b->st.num_pages), htole32(b->st.actual), 0, 0};
    uint64_t v = 0;
    if (off < sizeof words && size <= sizeof words - off) memcpy(&v, (uint8_t *)words + off, size);
    return le64toh(v);
}

static void balloon_config_write(void *dev, uint64_t off, uint64_t val, unsigned size) {
    struct virtio_balloon *b = dev;
    /* Only `actual` (bytes 4..7) belongs to the driver. */
    if (off < 4 || off >= 8 || size > 8 - off) return;
    uint32_t a = htole32(b->st.actual);
    uint64_t le = htole64(val);
    memcpy((uint8_t *)&a + (off - 4), &le, size);
    b->st.actual = le32toh(a);
    pthread_mutex_lock(&b->info_lock);
    b->info.actual_pages = b->st.actual;
    pthread_mutex_unlock(&b->info_lock);
}

static void balloon_notify(void *dev, struct virtio_mmio *t, unsigned q) {
    struct virtio_balloon *b = dev;
    if (!b->loop) {
        process_queue(b, t, q);
        return;
    }
    __atomic_fetch_or(&b->pending_queues, 1u << q, __ATOMIC_ACQ_REL);
    event_notifier_signal(b->kick);
}

static void balloon_reset(void *dev) {
    struct virtio_balloon *b = dev;
    /* The queues are gone, and with them the stats buffer; a new driver starts empty. */
    b->st.stats_held = false;
    b->st.actual = 0;
    pthread_mutex_lock(&b->info_lock);
    b->info.actual_pages = 0;
    pthread_mutex_unlock(&b->info_lock);
}

static const struct vmstate_field balloon_fields[] = {
    VMSTATE_U(struct balloon_state, num_pages),
    VMSTATE_U(struct balloon_state, actual),
    VMSTATE_BOOL(struct balloon_state, stats_held),
    VMSTATE_U_MAX(struct balloon_state, stats_head, VIRTIO_BALLOON_QUEUE_SIZE - 1),
};
static const struct vmstate balloon_vmstate = VMSTATE_TABLE("virtio", 1, balloon_fields);

static bool balloon_save(void *dev, struct snap_writer *w) {
    struct virtio_balloon *b = dev;
    return vmstate_put(w, &balloon_vmstate, &b->st);
}

static bool balloon_load(void *dev, struct snap_cursor *c, char *err, size_t errlen) {
    struct virtio_balloon *b = dev;
    struct balloon_state st = {0};
    uint64_t frames = b->ram.size >> PFN_SHIFT;
    if (!vmstate_get(c, &balloon_vmstate, &st) || st.num_pages > frames || st.actual > frames) {
        snprintf(err, errlen, "virtio-balloon: saved state out of range (%llu pages of RAM)",
                 (unsigned long long)frames);
        return false;
    }
    b->st = st;
    /* The monitor's view follows the config space; inflation counts start over. */
    pthread_mutex_lock(&b->info_lock);
    b->info.target_pages = st.num_pages;
    b->info.actual_pages = st.actual;
    pthread_mutex_unlock(&b->info_lock);
    return true;
}

const struct virtio_device_ops virtio_balloon_ops = {
    .device_id = VIRTIO_ID_BALLOON,
    .features = OFFERED,
    .num_queues = NUM_QUEUES,
    .queue_max = VIRTIO_BALLOON_QUEUE_SIZE,
    .config_read = balloon_config_read,
    .config_write = balloon_config_write,
    .notify = balloon_notify,
    .reset = balloon_reset,
    .save = balloon_save,
    .load = balloon_load,
};

/* ---- the monitor's side ---- */

void virtio_balloon_set_target(struct virtio_balloon *b, uint32_t pages) {
    pthread_mutex_lock(&b->info_lock);
    b->info.target_pages = pages;
    pthread_mutex_unlock(&b->info_lock);
    if (!b->loop) {
        virtio_mmio_lock(b->t);
        apply_target(b, b->t, pages);
        virtio_mmio_unlock(b->t);
        return;
    }
    __atomic_store_n(&b->new_target, pages, __ATOMIC_RELEASE);
    __atomic_store_n(&b->target_changed, true, __ATOMIC_RELEASE);
    event_notifier_signal(b->kick);
}

void virtio_balloon_request_stats(struct virtio_balloon *b) {
    if (!b->loop) {
        virtio_mmio_lock(b->t);
        request_stats(b, b->t);
        virtio_mmio_unlock(b->t);
        return;
    }
    __atomic_store_n(&b->stats_wanted, true, __ATOMIC_RELEASE);
    event_notifier_signal(b->kick);
}

void virtio_balloon_refresh_stats(struct virtio_balloon *b, uint64_t max_age_ns) {
    if (!b->loop) return;
    uint64_t now = event_loop_now_ns();
    pthread_mutex_lock(&b->info_lock);
    bool stale = now - b->info.stats_updated_ns > max_age_ns && now - b->last_request_ns > max_age_ns;
    if (stale) b->last_request_ns = now;
    pthread_mutex_unlock(&b->info_lock);
    if (!stale) return;
    __atomic_store_n(&b->stats_wanted, true, __ATOMIC_RELEASE);
    event_notifier_signal(b->kick);
}

void virtio_balloon_get_info(struct virtio_balloon *b, struct virtio_balloon_info *out) {
    pthread_mutex_lock(&b->info_lock);
    *out = b->info;
    pthread_mutex_unlock(&b->info_lock);
}

struct virtio_balloon *virtio_balloon_create(struct guest_ram_ops ram, struct event_loop *loop) {
    if (!ram.drop_frames || !ram.drop_range) return NULL;
    struct virtio_balloon *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->ram = ram;
    b->loop = loop;
    pthread_mutex_init(&b->info_lock, NULL);
    if (loop) {
        b->kick = event_notifier_create(loop, kicked, b);
        if (!b->kick) {
            virtio_balloon_destroy(b);
            return NULL;
        }
    }
    return b;
}

void virtio_balloon_attach(struct virtio_balloon *b, struct virtio_mmio *t) { b->t = t; }

void virtio_balloon_destroy(struct virtio_balloon *b) {
    if (!b) return;
    /* After this returns, the loop calls nothing of ours again. */
    event_notifier_destroy(b->kick);
    pthread_mutex_destroy(&b->info_lock);
    free(b);
}

static void backend_attach(void *dev, struct virtio_mmio *t) { virtio_balloon_attach(dev, t); }
static void backend_destroy(void *dev) { virtio_balloon_destroy(dev); }

bool virtio_balloon_backend_create(const char *opts, const struct virtio_backend_env *env, struct virtio_backend *out,
                                   char *err, size_t errlen) {
    if (opts && *opts) {
        snprintf(err, errlen, "takes no options (got '%s')", opts);
        return false;
    }
    if (!env->ram.drop_frames || !env->ram.drop_range) {
        snprintf(err, errlen, "needs the VM's memory map");
        return false;
    }
    struct virtio_balloon *b = virtio_balloon_create(env->ram, env->loop);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    *out = (struct virtio_backend){.ops = &virtio_balloon_ops, .dev = b, .attach = backend_attach,
                                   .destroy = backend_destroy};
    return true;
}
