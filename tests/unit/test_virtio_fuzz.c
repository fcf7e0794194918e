/* Randomized robustness ("fuzz") tests of the virtio devices: rng, console,
 * blk, net and balloon, each behind a virtio-mmio transport. A driver that
 * is wrong on purpose sets a device up, then for thousands of rounds
 * scribbles over its rings and descriptor tables (random chains, loops,
 * indirect tables, addresses out of RAM or wrapping at 2^64, huge lengths,
 * avail index jumps, rings overlapping each other), notifies, pushes host
 * input now and then, and sometimes abuses the registers (reset mid-way,
 * QueueNum values that are not powers of two, notifications before
 * DRIVER_OK). After every round it checks what must hold whatever a guest
 * does:
 *   - nothing is written into a canary zone of guest memory (the first
 *     64 KiB of RAM) that the driver never points a descriptor or ring at,
 *     unless a descriptor the device read in that round names it (random
 *     bytes over a table can bend an address into it); the balloon drops
 *     no canary page the guest did not name;
 *   - the transport is running or says DEVICE_NEEDS_RESET, with a config
 *     interrupt; a device writes no guest memory before DRIVER_OK or once
 *     broken;
 *   - every used element has an id below the queue size, used->idx moves
 *     one at a time and by at most the queue size per notify (more only if
 *     the device was told to write over avail->idx, which shows it more);
 *   - the guest memory one notify moves is bounded (no stall of the vCPU);
 *   - no bad host access (the unit tests also run under ASan and UBSan).
 * A broken device is reset and set up again; at the end a well-formed
 * request must work. A second instance of each device, with its own
 * memory, serves a well-formed request every PROBE_EVERY rounds while the
 * first is fuzzed: other VMs are unaffected.
 *
 * Deterministic: a fixed seed per device (only the entropy device's bytes
 * come from the host, which matters where the guest points them at its
 * own rings). RVISOR_FUZZ_SEED and RVISOR_FUZZ_ITERS (rounds per device)
 * override them for longer runs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dev/irq.h"
#include "dev/virtio_balloon.h"
#include "dev/virtio_blk.h"
#include "dev/virtio_console.h"
#include "dev/virtio_mmio.h"
#include "dev/virtio_net.h"
#include "dev/virtio_rng.h"
#include "dev/virtqueue.h"
#include "monitor/machine_memory.h"
#include "net/net_backend.h"
#include "vm/p2m.h"
#include "virtio_driver.h"

/* Guest RAM: the canary zone, then the arena that holds everything the
 * driver puts in memory. Buffers only grow upwards from the arena, and
 * addresses outside RAM are refused whole, so nothing a correct device
 * does can reach the canary. */
#define MEM_BASE 0x80000000ull
#define MEM_SIZE (1u << 20)
#define MEM_END (MEM_BASE + MEM_SIZE)
#define CANARY MEM_BASE
#define ARENA (MEM_BASE + 0x10000)
#define CANARY_SIZE (ARENA - CANARY)
#define ARENA_SIZE (MEM_END - ARENA)
#define PAGE 4096u
#define PFN(gpa) ((uint32_t)((gpa) >> 12))

/* The layout of well-formed requests: queue q's rings, then buffers. */
#define CLEAN_RING(q) (ARENA + 0x4000 * (uint64_t)(q)) /* desc +0, avail +0x1000, used +0x2000 */
#define CLEAN_QSIZE 16
#define CLEAN_BUF (ARENA + 0x20000)

#define IMG_SIZE (1u << 20)
#define IMG_SECTORS (IMG_SIZE / VIRTIO_BLK_SECTOR)

#define DEFAULT_ITERS 3000
#define DEFAULT_SEED 0x5eed0f7a2c1d3b49ull
#define PROBE_EVERY 50
#define PLAN_MAX 64
/* Guest bytes one pop may move besides its payload: descriptors (up to
 * VIRTQ_MAX_SEGS of them), ring entries. */
#define POP_OVERHEAD (64u << 10)

#define F_V1 (1ull << VIRTIO_F_VERSION_1)
#define F_EVIDX (1ull << VIRTIO_F_RING_EVENT_IDX)
#define F_INDIRECT (1ull << VIRTIO_F_RING_INDIRECT_DESC)

/* ---- deterministic randomness (splitmix64); the only mutable global ---- */
static uint64_t prng;

static uint64_t rnd(void) {
    uint64_t z = (prng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }
static bool chance(unsigned percent) { return below(100) < percent; }

static uint64_t env_u64(const char *name, uint64_t dflt) {
    const char *s = getenv(name);
    return s && *s ? strtoull(s, NULL, 0) : dflt;
}

/* ---- guarded guest memory ----
 * The transport reaches guest memory only through this wrapper around the
 * real accessors (a fake memory, or a p2m for the balloon), which refuse
 * anything outside [MEM_BASE, MEM_END). It notes writes into the canary,
 * counts the bytes moved, and recognises pushes to the used rings: the
 * 8-byte element write followed at once by the 2-byte used->idx write of
 * virtq_push. Violations are recorded, not asserted: the device calls
 * this with the transport lock held. */
struct qtrack {
    uint16_t used;       /* the device's used->idx, as its pushes showed it */
    unsigned pushes;     /* in the current window */
    unsigned avail_hits; /* writes onto avail->idx in the current window */
    uint32_t max_len;    /* largest used length the device may report */
};

#define MAX_AIMED 32

struct range {
    uint64_t lo, len;
};

struct guard {
    struct guest_mem_ops inner;
    const struct vdrv *v; /* where the queues are; NULL while they are unknown */
    unsigned nq;
    struct qtrack q[VDRV_MAX_QUEUES];
    uint64_t writes, canary_writes, traffic;
    /* Descriptors read in the current window that name canary memory:
     * random bytes over a table (the guest's, or ones it had the device
     * write) can turn an arena address into one. Writes inside those are
     * the guest's doing. */
    struct range aimed[MAX_AIMED];
    unsigned naimed;
    uint64_t aimed_writes;
    /* For the balloon, which drops the pages the guest names by PFN:
     * canary pages that any 4 bytes it read in the window could name
     * (bit per page), and the last 3 bytes read, for PFNs that straddle. */
    bool scan_pfns;
    uint32_t named;
    uint8_t tail[3];
    uint64_t last_gpa; /* the previous write */
    size_t last_n;
    uint8_t last[8];
    char err[200];
};

/* Whether [gpa, gpa + n) meets [lo, lo + len), without overflowing. */
static bool overlaps(uint64_t gpa, uint64_t n, uint64_t lo, uint64_t len) {
    if (!n || !len) return false;
    return gpa < lo ? n > lo - gpa : gpa - lo < len;
}

static void guard_error(struct guard *g, const char *fmt, ...) {
    if (g->err[0]) return; /* the first one tells the story */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->err, sizeof g->err, fmt, ap);
    va_end(ap);
}

static uint32_t le32_at(const uint8_t *p) { return (uint32_t)p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

static void track_write(struct guard *g, uint64_t gpa, const uint8_t *p, size_t n) {
    for (unsigned qi = 0; g->v && qi < g->nq; qi++) {
        const struct vdrv_queue *vq = &g->v->q[qi];
        struct qtrack *t = &g->q[qi];
        if (overlaps(gpa, n, vq->avail + 2, 2)) t->avail_hits++;
        uint64_t elem = g->last_gpa - (vq->used + 4);
        if (n != 2 || gpa != vq->used + 2 || g->last_n != 8 || g->last_gpa < vq->used + 4 || elem % 8 ||
            elem / 8 >= vq->size)
            continue;
        uint16_t idx = (uint16_t)(p[0] | p[1] << 8);
        uint32_t id = le32_at(g->last), len = le32_at(g->last + 4);
        t->pushes++;
        if (idx != (uint16_t)(t->used + 1))
            guard_error(g, "queue %u: used->idx went from %u to %u", qi, t->used, idx);
        else if (elem / 8 != (t->used & (vq->size - 1u)))
            guard_error(g, "queue %u: used element %u written into slot %u", qi, t->used, (unsigned)(elem / 8));
        else if (id >= vq->size)
            guard_error(g, "queue %u: used id %u, queue size %u", qi, id, vq->size);
        else if (len > t->max_len)
            guard_error(g, "queue %u: used length %u, at most %u expected", qi, len, t->max_len);
        t->used = idx;
    }
    g->last_gpa = gpa;
    g->last_n = n;
    memcpy(g->last, p, n < 8 ? n : 8);
}

/* Descriptors are read 16 bytes at a time; so may be other things, which
 * at worst excuse a write that a descriptor could have asked for. */
static void note_descriptor(struct guard *g, const uint8_t *p) {
    uint64_t addr;
    uint32_t len;
    memcpy(&addr, p, 8);
    memcpy(&len, p + 8, 4);
    if (!overlaps(addr, len, CANARY, CANARY_SIZE)) return;
    if (g->naimed == MAX_AIMED) {
        g->aimed[MAX_AIMED - 1] = (struct range){CANARY, CANARY_SIZE}; /* too many to tell apart */
        return;
    }
    g->aimed[g->naimed++] = (struct range){addr, len};
}

/* Whether the canary part of [gpa, gpa + n) lies inside one aimed range. */
static bool aimed_at(const struct guard *g, uint64_t gpa, size_t n) {
    uint64_t lo = gpa > CANARY ? gpa : CANARY;
    uint64_t hi = n <= ARENA - gpa ? gpa + n : ARENA; /* gpa < ARENA here */
    for (unsigned i = 0; i < g->naimed; i++)
        if (lo >= g->aimed[i].lo && hi - g->aimed[i].lo <= g->aimed[i].len) return true;
    return false;
}

static void note_pfn(struct guard *g, uint32_t pfn) {
    if (pfn >= PFN(CANARY) && pfn < PFN(ARENA)) g->named |= 1u << (pfn - PFN(CANARY));
}

/* Every 4 bytes at any offset, also across the previous read: more than
 * the balloon takes as PFNs, never less. */
static void note_pfns(struct guard *g, const uint8_t *p, size_t n) {
    uint8_t edge[6];
    size_t k = n < 3 ? n : 3;
    memcpy(edge, g->tail, 3);
    memcpy(edge + 3, p, k);
    for (size_t i = 0; i + 4 <= 3 + k; i++) note_pfn(g, le32_at(edge + i));
    for (size_t i = 0; i + 4 <= n; i++) note_pfn(g, le32_at(p + i));
    if (n >= 3) {
        memcpy(g->tail, p + n - 3, 3);
    } else {
        memmove(g->tail, g->tail + n, 3 - n);
        memcpy(g->tail + 3 - n, p, n);
    }
}

static bool guard_read(void *ctx, uint64_t gpa, void *buf, size_t n) {
    struct guard *g = ctx;
    bool ok = g->inner.read(g->inner.ctx, gpa, buf, n);
    if (!ok) return false;
    g->traffic += n;
    if (n == 16) note_descriptor(g, buf);
    if (g->scan_pfns) note_pfns(g, buf, n);
    return true;
}

/* A new window: what the device reads from now on is what counts. */
static void guard_forget(struct guard *g) {
    g->naimed = 0;
    g->named = 0;
    memset(g->tail, 0, sizeof g->tail);
}

static bool guard_write(void *ctx, uint64_t gpa, const void *buf, size_t n) {
    struct guard *g = ctx;
    g->writes++;
    bool ok = g->inner.write(g->inner.ctx, gpa, buf, n);
    /* A write that starts outside RAM is refused whole, so one that
     * starts below it and runs into the canary is harmless; one that
     * starts in the canary means the device made up the address, unless
     * a descriptor it read gave it. */
    if ((ok && overlaps(gpa, n, CANARY, CANARY_SIZE)) || (gpa >= CANARY && gpa < CANARY + CANARY_SIZE)) {
        if (aimed_at(g, gpa, n)) {
            g->aimed_writes++;
        } else {
            g->canary_writes++;
            guard_error(g, "%s write of %zu bytes at %#llx, into the canary", ok ? "a" : "a refused", n,
                        (unsigned long long)gpa);
        }
    }
    if (ok) {
        g->traffic += n;
        track_write(g, gpa, buf, n);
    }
    return ok;
}

/* ---- a device under test, with its memory and driver ---- */
struct fdev;

struct kind {
    const char *name;
    uint16_t qmax;
    bool uses_p2m;      /* balloon: drops frames, needs a real p2m */
    uint64_t req_bytes; /* most payload bytes one request may move */
    void (*create)(struct fdev *d);
    void (*destroy)(struct fdev *d);
    uint64_t (*features)(struct fdev *d); /* device feature bits for the next bring-up */
    unsigned (*num_queues)(uint64_t features);
    uint32_t (*max_len)(struct fdev *d, unsigned q);
    /* A plausible request for queue q: segments in arena buffers, with
     * their contents written. Returns how many (at most PLAN_MAX). */
    unsigned (*plan)(struct fdev *d, unsigned q, struct vdrv_seg *s);
    void (*host_event)(struct fdev *d); /* console input, a received frame, ...; may be NULL */
    void (*request)(struct fdev *d);    /* one well-formed request, checked */
};

struct fake_backend {
    unsigned sent;
    size_t len;
    uint8_t *frame; /* the last frame, NET_MAX_FRAME bytes */
    unsigned resumes;
};

struct fdev {
    const struct kind *k;
    const char *role; /* "fuzzed" or "witness", for messages */
    struct fake_mem fm;
    struct machine_memory mm;
    struct frame_source fs;
    struct p2m p2m;
    struct guard g;
    struct vdrv v; /* v.mem is g.inner: the test's own accesses are not the device's */
    uint8_t *canary;
    bool irq_level;
    uint64_t features;
    unsigned nq, run, iter;
    unsigned hostility; /* percent of changes that break the rules, chosen per bring-up */
    uint64_t seed;
    /* the devices */
    struct virtio_rng *rng;
    struct virtio_console *con;
    struct virtio_backend blk;
    char path[64];
    struct virtio_net *net;
    struct net_peer peer;
    struct fake_backend fb;
    uint8_t *scratch; /* NET_MAX_FRAME + 1 bytes */
    struct virtio_balloon *bal;
    /* what the device gave the host */
    uint64_t sink_bytes;
    uint8_t sink[256];
    size_t sink_len;
    /* for the report and for checks */
    unsigned broken, chaos, resets, canary_drops, aimed_rounds, requests;
    uint64_t pushes;
};

#define FAIL(d, fmt, ...)                                                                                  \
    fail_msg("%s %s, round %u (seed %#llx): " fmt, (d)->k->name, (d)->role, (d)->iter,                   \
             (unsigned long long)(d)->seed, __VA_ARGS__)

static void irq_set(void *ctx, unsigned irq, bool level) {
    (void)irq;
    ((struct fdev *)ctx)->irq_level = level;
}
static struct irq_line irq_of(struct fdev *d) { return (struct irq_line){irq_set, d, 5}; }
static struct guest_mem_ops guarded(struct fdev *d) { return (struct guest_mem_ops){guard_read, guard_write, &d->g}; }

static bool p2m_rd(void *ctx, uint64_t gpa, void *buf, size_t n) { return p2m_read(ctx, gpa, buf, n); }
static bool p2m_wr(void *ctx, uint64_t gpa, const void *buf, size_t n) { return p2m_write(ctx, gpa, buf, n); }

/* The test's own writes: only the part inside the arena, never the canary. */
static void put(struct fdev *d, uint64_t gpa, const void *p, size_t n) {
    if (gpa < ARENA || gpa >= MEM_END) return;
    if (n > MEM_END - gpa) n = (size_t)(MEM_END - gpa);
    assert_true(d->g.inner.write(d->g.inner.ctx, gpa, p, n));
}

static void put_random(struct fdev *d, uint64_t gpa, size_t n) {
    uint64_t chunk[512];
    for (size_t done = 0; done < n;) {
        size_t k = n - done < sizeof chunk ? n - done : sizeof chunk;
        for (size_t i = 0; i < (k + 7) / 8; i++) chunk[i] = rnd();
        put(d, gpa + done, chunk, k);
        done += k;
    }
}

static void put_zero(struct fdev *d, uint64_t gpa, size_t n) {
    static const uint8_t zeros[4096];
    for (size_t done = 0; done < n;) {
        size_t k = n - done < sizeof zeros ? n - done : sizeof zeros;
        put(d, gpa + done, zeros, k);
        done += k;
    }
}

static uint8_t canary_byte(uint64_t i) { return (uint8_t)(0x5a ^ (i * 131) ^ (i >> 9)); }

/* Whether the guest named the page at gpa, by PFN or in a buffer it gave. */
static bool page_named(const struct guard *g, uint64_t gpa) {
    if (g->named >> PFN(gpa - CANARY) & 1) return true;
    for (unsigned i = 0; i < g->naimed; i++)
        if (gpa >= g->aimed[i].lo && gpa - g->aimed[i].lo <= g->aimed[i].len &&
            g->aimed[i].len - (gpa - g->aimed[i].lo) >= PAGE)
            return true;
    return false;
}

static void check_canary(struct fdev *d) {
    static uint8_t now[CANARY_SIZE];
    if (d->g.aimed_writes) {
        /* Every write went through the guard, which checked it: the
         * guest wrote there itself, in effect. Put the pattern back. */
        d->aimed_rounds++;
        d->g.aimed_writes = 0;
        assert_true(d->g.inner.write(d->g.inner.ctx, CANARY, d->canary, CANARY_SIZE));
        return;
    }
    assert_true(d->g.inner.read(d->g.inner.ctx, CANARY, now, CANARY_SIZE));
    if (!memcmp(now, d->canary, CANARY_SIZE)) return;
    for (uint64_t pg = 0; pg < CANARY_SIZE; pg += PAGE) {
        if (!memcmp(now + pg, d->canary + pg, PAGE)) continue;
        /* The balloon drops the pages the guest names, and random bytes
         * taken for PFNs, or a free page report over a descriptor that
         * random bytes bent, can name a canary page: it then reads as
         * zeros, and that is the guest's doing. Anything else is not. */
        if (d->k->uses_p2m && all_zero(now + pg, PAGE) && page_named(&d->g, CANARY + pg)) {
            d->canary_drops++;
            assert_true(d->g.inner.write(d->g.inner.ctx, CANARY + pg, d->canary + pg, PAGE));
            continue;
        }
        for (uint64_t i = pg; i < pg + PAGE; i++)
            if (now[i] != d->canary[i])
                FAIL(d, "canary byte at %#llx changed from %#x to %#x", (unsigned long long)(CANARY + i),
                     d->canary[i], now[i]);
    }
}

static struct fdev *fdev_new(const struct kind *k, const char *role, uint64_t seed) {
    struct fdev *d = calloc(1, sizeof *d);
    assert_non_null(d);
    d->k = k;
    d->role = role;
    d->seed = seed;
    if (k->uses_p2m) {
        assert_true(machine_memory_init(&d->mm, 4 * MEM_SIZE));
        d->fs = machine_memory_source(&d->mm);
        assert_true(p2m_init(&d->p2m, MEM_BASE, MEM_SIZE, &d->fs));
        d->g.inner = (struct guest_mem_ops){p2m_rd, p2m_wr, &d->p2m};
        d->g.scan_pfns = true;
    } else {
        fake_mem_init(&d->fm, MEM_BASE, MEM_SIZE);
        d->g.inner = fake_mem_ops(&d->fm);
    }
    d->v.mem = d->g.inner;
    d->canary = malloc(CANARY_SIZE);
    assert_non_null(d->canary);
    for (uint64_t i = 0; i < CANARY_SIZE; i++) d->canary[i] = canary_byte(i);
    assert_true(d->g.inner.write(d->g.inner.ctx, CANARY, d->canary, CANARY_SIZE));
    k->create(d);
    assert_non_null(d->v.t);
    return d;
}

static void fdev_free(struct fdev *d) {
    d->k->destroy(d);
    if (d->k->uses_p2m) {
        p2m_destroy(&d->p2m);
        machine_memory_destroy(&d->mm);
    } else {
        fake_mem_free(&d->fm);
    }
    free(d->canary);
    free(d);
}

/* ---- random addresses and lengths ---- */

/* A random address with [a, a + len) inside the arena, aligned to align. */
static uint64_t arena_spot(uint64_t len, uint64_t align) {
    if (len >= ARENA_SIZE) return ARENA;
    return (ARENA + below(ARENA_SIZE - len + 1)) & ~(align - 1);
}

/* An address a guest should not give: outside RAM, straddling its end,
 * wrapping at 2^64, or on top of the rings. */
static uint64_t weird_addr(struct fdev *d) {
    switch (below(8)) {
    case 0: return below(MEM_BASE);
    case 1: return MEM_BASE - 1 - below(64);
    case 2: return MEM_END - below(64);
    case 3: return MEM_END + below(1u << 20);
    case 4: return UINT64_MAX - below(4096);
    case 5: return rnd();
    case 6: {
        const struct vdrv_queue *vq = &d->v.q[below(d->nq)];
        uint64_t area[3] = {vq->desc, vq->avail, vq->used};
        return area[below(3)] + below(8 + 8u * vq->size);
    }
    default: return ARENA + below(ARENA_SIZE);
    }
}

static uint32_t weird_len(uint64_t addr) {
    switch (below(8)) {
    case 0: return 0;
    case 1: return 0xffffffffu;
    case 2: return 0x80000000u;
    case 3: return (uint32_t)rnd();
    case 4: return MEM_SIZE;
    case 5: return addr >= ARENA && addr < MEM_END ? (uint32_t)(MEM_END - addr) : 1; /* exactly to the end of RAM */
    case 6: return 1 + (uint32_t)below(16);
    default: return 1 + (uint32_t)below(1u << 17);
    }
}

/* A descriptor that starts below RAM and runs into it would point at the
 * canary: such buffers end where RAM begins. */
static uint32_t clear_of_canary(uint64_t gpa, uint32_t len) {
    return gpa < CANARY && len > CANARY - gpa ? (uint32_t)(CANARY - gpa) : len;
}

static uint32_t some_len(void) {
    if (chance(5)) return 0;
    if (chance(60)) return 1 + (uint32_t)below(512);
    if (chance(75)) return 1 + (uint32_t)below(8192);
    return 1 + (uint32_t)below(1u << 17);
}

/* A buffer of len bytes somewhere in the arena. */
static uint64_t buf_at(uint64_t len) { return arena_spot(len, chance(80) ? 8 : 1); }

static uint16_t some_size(uint16_t qmax) {
    unsigned lg = 0;
    while ((1u << (lg + 1)) <= qmax) lg++;
    if (chance(10)) return qmax;
    return (uint16_t)(1u << (chance(70) ? below(lg < 4 ? lg + 1 : 4) : below(lg + 1)));
}

/* ---- the driver: bring-up, requests, mutation ---- */

static void track_queues(struct fdev *d) {
    d->g.v = &d->v;
    d->g.nq = d->nq;
    for (unsigned q = 0; q < d->nq; q++)
        d->g.q[q] = (struct qtrack){.used = 0, .max_len = d->k->max_len(d, q)};
}

/* Host-side work a device may do on its own. */
static void host_event(struct fdev *d) {
    if (d->k->host_event) d->k->host_event(d);
}

/* Notifies every queue and sends host input; the device must not write
 * guest memory (before DRIVER_OK, or once broken). */
static void expect_silence(struct fdev *d, const char *when) {
    uint64_t w = d->g.writes;
    for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++) vdrv_notify(&d->v, q);
    host_event(d);
    if (d->g.writes != w) FAIL(d, "%llu writes to guest memory %s", (unsigned long long)(d->g.writes - w), when);
}

/* Ways to spoil one chain. */
enum sabotage {
    SAB_NONE,
    SAB_SEGMENT,     /* one buffer's address, length or direction */
    SAB_NEXT,        /* a NEXT that loops or leaves the table */
    SAB_NESTED,      /* INDIRECT where a buffer should be */
    SAB_TABLE_FLAGS, /* INDIRECT with NEXT or WRITE */
    SAB_TABLE_LEN,
    SAB_TABLE_ADDR,
    SAB_KINDS
};

static void post_plan(struct fdev *d, unsigned q, enum sabotage sab);

/* Reset, ACKNOWLEDGE, DRIVER, features f, FEATURES_OK. */
static void negotiate(struct fdev *d, uint64_t f) {
    if (!(vdrv_negotiate(&d->v, f) & VIRTIO_STATUS_FEATURES_OK))
        FAIL(d, "features %#llx refused", (unsigned long long)f);
    d->features = f;
    d->nq = d->k->num_queues(f);
}

/* Reset and the whole init sequence, with a random ring layout and
 * features; VERSION_1 always, EVENT_IDX and INDIRECT_DESC alternating. */
static void bring_up(struct fdev *d) {
    d->g.v = NULL;
    d->run++;
    d->resets++;
    negotiate(d, F_V1 | (d->run & 1 ? F_EVIDX : 0) | (d->run & 2 ? F_INDIRECT : 0) | d->k->features(d));
    static const unsigned hostility[] = {2, 10, 10, 40};
    d->hostility = hostility[below(4)];
    unsigned mode = (unsigned)below(10);
    uint64_t window = arena_spot(0x3000, 16);
    for (unsigned q = 0; q < d->nq; q++) {
        uint16_t n = some_size(d->k->qmax);
        uint64_t dsz = 16ull * n, asz = 6 + 2ull * n, usz = 6 + 8ull * n, desc, avail, used;
        if (mode < 6) { /* apart (mostly) */
            desc = arena_spot(dsz, 16), avail = arena_spot(asz, 2), used = arena_spot(usz, 4);
        } else if (mode < 9) { /* crowded into one window: the rings overlap each other */
            desc = window + (below(0x1000) & ~15ull);
            avail = window + (below(0x1000) & ~1ull);
            used = window + (below(0x1000) & ~3ull);
        } else { /* one area for all three */
            desc = arena_spot(dsz + usz + 32, 16);
            avail = desc + (chance(50) ? 0 : 2 * below(8));
            used = desc + (chance(50) ? 0 : 4 * below(8));
        }
        /* Pushes are recognised by their used ring, so each queue needs its own. */
        for (bool clash = true; clash;) {
            clash = false;
            for (unsigned p = 0; p < q; p++) clash |= d->v.q[p].used == used;
            if (clash) used = arena_spot(usz, 4);
        }
        if (chance(92)) { /* else the rings start with whatever was there */
            put_zero(d, desc, dsz);
            put_zero(d, avail, asz);
            put_zero(d, used, usz);
        }
        vdrv_setup_queue(&d->v, q, n, desc, avail, used);
        if (vdrv_rd(&d->v, VIRTIO_MMIO_QUEUE_READY) != 1 || vdrv_broken(&d->v))
            FAIL(d, "queue %u (size %u) refused", q, n);
    }
    track_queues(d);
    if (chance(15)) {
        post_plan(d, (unsigned)below(d->nq), SAB_NONE);
        expect_silence(d, "before DRIVER_OK");
    }
    vdrv_driver_ok(&d->v);
    uint32_t st = (uint32_t)vdrv_rd(&d->v, VIRTIO_MMIO_STATUS);
    if (st != 0xf) FAIL(d, "status %#x after DRIVER_OK", st);
}

/* The init sequence with the well-formed layout. */
static void bring_up_clean(struct fdev *d) {
    d->g.v = NULL;
    negotiate(d, F_V1 | F_EVIDX | F_INDIRECT | d->k->features(d));
    uint16_t n = CLEAN_QSIZE < d->k->qmax ? CLEAN_QSIZE : d->k->qmax;
    for (unsigned q = 0; q < d->nq; q++) {
        put_zero(d, CLEAN_RING(q), 0x3000);
        vdrv_setup_queue(&d->v, q, n, CLEAN_RING(q), CLEAN_RING(q) + 0x1000, CLEAN_RING(q) + 0x2000);
    }
    track_queues(d);
    vdrv_driver_ok(&d->v);
    uint32_t st = (uint32_t)vdrv_rd(&d->v, VIRTIO_MMIO_STATUS);
    if (st != 0xf) FAIL(d, "status %#x after DRIVER_OK", st);
}

/* Runs one well-formed chain on queue q of a clean device and returns its
 * used length, checking that it came back, alone and in one piece. */
static uint32_t run_request(struct fdev *d, unsigned q, const struct vdrv_seg *s, unsigned n) {
    struct vdrv_queue *vq = &d->v.q[q];
    uint16_t before = vdrv_used_idx(&d->v, q);
    uint16_t head = vdrv_write_chain(&d->v, q, vq->next_desc, s, n);
    vq->next_desc = (uint16_t)((head + n) % vq->size);
    vdrv_post(&d->v, q, head);
    vdrv_notify(&d->v, q);
    if (vdrv_broken(&d->v)) FAIL(d, "broken by a well-formed request on queue %u", q);
    if (d->g.err[0]) FAIL(d, "%s", d->g.err);
    uint16_t after = vdrv_used_idx(&d->v, q);
    if (after != (uint16_t)(before + 1)) FAIL(d, "queue %u: used->idx %u -> %u for one request", q, before, after);
    uint32_t id = vdrv_used_id(&d->v, q, before);
    if (id != head) FAIL(d, "queue %u: used id %u, posted %u", q, id, head);
    d->requests++;
    return vdrv_used_len(&d->v, q, before);
}

/* Chains the device has not given back yet (as far as its pushes show). */
static unsigned outstanding(struct fdev *d, unsigned q) { return (uint16_t)(d->v.q[q].avail_idx - d->g.q[q].used); }

/* A careful driver does not post into a full ring; a careless one does. */
static bool room(struct fdev *d, unsigned q) { return outstanding(d, q) < d->v.q[q].size || chance(3); }

static void put_desc(uint8_t *e, uint64_t gpa, uint32_t len, uint16_t flags, uint16_t next) {
    memcpy(e, &gpa, 8);
    memcpy(e + 8, &len, 4);
    memcpy(e + 12, &flags, 2);
    memcpy(e + 14, &next, 2);
}

/* Writes the chain s[0..n) into the queue's table or an indirect table,
 * spoilt in one way if sab says so, and makes it available. */
static void post_chain(struct fdev *d, unsigned q, struct vdrv_seg *s, unsigned n, enum sabotage sab) {
    struct vdrv_queue *vq = &d->v.q[q];
    unsigned num = vq->size;
    if (!room(d, q)) return;
    if (sab == SAB_SEGMENT && n) {
        struct vdrv_seg *g = &s[below(n)];
        switch (below(3)) {
        case 0: g->gpa = weird_addr(d); break;
        case 1: g->len = weird_len(g->gpa); break;
        default: g->writable = !g->writable; break;
        }
    }
    for (unsigned j = 0; j < n; j++) s[j].len = clear_of_canary(s[j].gpa, s[j].len);
    unsigned bad = n ? (unsigned)below(n) : 0; /* the descriptor SAB_NEXT and SAB_NESTED spoil */
    uint16_t head = (uint16_t)below(num);
    bool indirect = n && (n > num ? chance(90) : chance(25) || sab >= SAB_TABLE_FLAGS);
    if (!indirect) {
        uint16_t idx[PLAN_MAX];
        bool seq = chance(70);
        for (unsigned j = 0; j < n; j++)
            idx[j] = j == 0 ? head : seq ? (uint16_t)((head + j) % num) : (uint16_t)below(num);
        for (unsigned j = 0; j < n; j++) {
            uint16_t flags = (uint16_t)((s[j].writable ? VIRTQ_DESC_F_WRITE : 0) | (j + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
            uint16_t next = j + 1 < n ? idx[j + 1] : (uint16_t)rnd();
            if (sab == SAB_NEXT && j == bad) flags |= VIRTQ_DESC_F_NEXT, next = (uint16_t)below(2 * num);
            if (sab == SAB_NESTED && j == bad) flags |= VIRTQ_DESC_F_INDIRECT; /* a buffer taken for a table */
            vdrv_set_desc(&d->v, q, idx[j], s[j].gpa, s[j].len, flags, next);
        }
        if (n == 0) vdrv_set_desc(&d->v, q, head, rnd(), (uint32_t)rnd(), (uint16_t)rnd(), (uint16_t)rnd());
    } else {
        /* A direct descriptor may lead into the table. */
        unsigned first = n > 1 && chance(15) ? 1 : 0;
        unsigned m = n - first;
        uint64_t tlen = 16ull * m;
        uint64_t table = sab == SAB_TABLE_ADDR ? weird_addr(d) : arena_spot(tlen, 16);
        uint8_t raw[16 * PLAN_MAX];
        uint16_t order[PLAN_MAX]; /* entry j of the chain sits at order[j] */
        for (unsigned j = 0; j < m; j++) order[j] = (uint16_t)j;
        if (chance(20))
            for (unsigned j = m; j > 1; j--) {
                unsigned r = (unsigned)below(j);
                uint16_t t = order[j - 1];
                order[j - 1] = order[r], order[r] = t;
            }
        for (unsigned j = 0; j < m; j++) {
            const struct vdrv_seg *g = &s[first + j];
            uint16_t flags = (uint16_t)((g->writable ? VIRTQ_DESC_F_WRITE : 0) | (j + 1 < m ? VIRTQ_DESC_F_NEXT : 0));
            uint16_t next = j + 1 < m ? order[j + 1] : (uint16_t)rnd();
            if (sab == SAB_NEXT && j == bad % m) flags |= VIRTQ_DESC_F_NEXT, next = (uint16_t)below(2 * m);
            if (sab == SAB_NESTED && j == bad % m) flags |= VIRTQ_DESC_F_INDIRECT;
            put_desc(raw + 16 * order[j], g->gpa, g->len, flags, next);
        }
        put(d, table, raw, tlen);
        uint32_t len = sab == SAB_TABLE_LEN ? weird_len(table) : (uint32_t)tlen;
        uint16_t flags = VIRTQ_DESC_F_INDIRECT;
        if (sab == SAB_TABLE_FLAGS) flags |= chance(50) ? VIRTQ_DESC_F_NEXT : VIRTQ_DESC_F_WRITE;
        uint16_t at = head;
        if (first) {
            at = (uint16_t)((head + 1) % num);
            vdrv_set_desc(&d->v, q, head, s[0].gpa, s[0].len,
                          (uint16_t)(VIRTQ_DESC_F_NEXT | (s[0].writable ? VIRTQ_DESC_F_WRITE : 0)), at);
        }
        vdrv_set_desc(&d->v, q, at, table, len, flags, (uint16_t)rnd());
    }
    vdrv_post(&d->v, q, head);
}

static void post_plan(struct fdev *d, unsigned q, enum sabotage sab) {
    struct vdrv_seg s[PLAN_MAX];
    unsigned n = d->k->plan(d, q, s);
    post_chain(d, q, s, n, sab);
}

/* An indirect table of up to VIRTQ_MAX_SEGS buffers as large as RAM
 * allows: a request the device must not turn into a stall. */
static void post_big(struct fdev *d, unsigned q) {
    static uint8_t raw[16 * VIRTQ_MAX_SEGS];
    if (!room(d, q)) return;
    unsigned m = 64 + (unsigned)below(VIRTQ_MAX_SEGS - 63);
    unsigned nread = chance(50) ? m : (unsigned)below(m + 1);
    for (unsigned j = 0; j < m; j++) {
        uint64_t gpa = ARENA + below(ARENA_SIZE);
        uint32_t len = chance(50) ? (uint32_t)(MEM_END - gpa) : (uint32_t)below(1u << 16);
        put_desc(raw + 16 * j, gpa, len,
                 (uint16_t)((j >= nread ? VIRTQ_DESC_F_WRITE : 0) | (j + 1 < m ? VIRTQ_DESC_F_NEXT : 0)),
                 (uint16_t)(j + 1));
    }
    uint64_t table = arena_spot(16ull * m, 16);
    put(d, table, raw, 16ull * m);
    uint16_t head = (uint16_t)below(d->v.q[q].size);
    vdrv_set_desc(&d->v, q, head, table, 16 * m, VIRTQ_DESC_F_INDIRECT, 0);
    vdrv_post(&d->v, q, head);
}

/* One change to queue q's rings or tables: mostly a plausible request;
 * with the bring-up's hostility, something a driver should not do. */
static void mutate(struct fdev *d, unsigned q) {
    struct vdrv_queue *vq = &d->v.q[q];
    unsigned num = vq->size;
    if (!chance(d->hostility)) {
        post_plan(d, q, SAB_NONE);
        return;
    }
    switch (below(10)) {
    case 0:
    case 1: post_plan(d, q, (enum sabotage)(1 + below(SAB_KINDS - 1))); break;
    case 2: { /* a random descriptor */
        uint64_t addr = chance(50) ? weird_addr(d) : ARENA + below(ARENA_SIZE);
        uint16_t flags = chance(70) ? (uint16_t)below(8) : (uint16_t)rnd();
        uint16_t next = chance(70) ? (uint16_t)below(num + 1) : (uint16_t)rnd();
        uint32_t len = clear_of_canary(addr, chance(50) ? some_len() : weird_len(addr));
        vdrv_set_desc(&d->v, q, (unsigned)below(num), addr, len, flags, next);
        break;
    }
    case 3: /* avail->idx jumps */
        vq->avail_idx = chance(70) ? (uint16_t)(vq->avail_idx + below(num + 2)) : (uint16_t)rnd();
        vdrv_put16(&d->v, vq->avail + 2, vq->avail_idx);
        break;
    case 4: /* avail ring entries */
        for (unsigned k = 1 + (unsigned)below(4); k; k--)
            vdrv_put16(&d->v, vq->avail + 4 + 2 * below(num), chance(80) ? (uint16_t)below(num) : (uint16_t)rnd());
        break;
    case 5: /* the driver's flags and used_event; the used ring is the device's, scribble anyway */
        switch (below(4)) {
        case 0: vdrv_put16(&d->v, vq->avail, chance(50) ? VIRTQ_AVAIL_F_NO_INTERRUPT : (uint16_t)rnd()); break;
        case 1:
            vdrv_set_used_event(&d->v, q, chance(50) ? (uint16_t)(vq->avail_idx + below(4)) : (uint16_t)rnd());
            break;
        case 2: vdrv_put16(&d->v, vq->used + 2 * below(2), (uint16_t)rnd()); break;
        default: vdrv_put16(&d->v, vq->used + 4 + 8 * below(num) + 2 * below(4), (uint16_t)rnd()); break;
        }
        break;
    case 6: { /* random bytes, often over a ring */
        uint64_t area[3] = {vq->desc, vq->avail, vq->used};
        put_random(d, chance(50) ? area[below(3)] + below(16u * num) : ARENA + below(ARENA_SIZE), 1 + below(64));
        break;
    }
    case 7: { /* a table of random descriptors */
        if (!room(d, q)) break;
        unsigned m = 1 + (unsigned)below(8);
        uint64_t table = arena_spot(16ull * m, chance(90) ? 16 : 1);
        put_random(d, table, 16ull * m);
        uint16_t head = (uint16_t)below(num);
        vdrv_set_desc(&d->v, q, head, table, chance(80) ? 16 * m : weird_len(table), VIRTQ_DESC_F_INDIRECT,
                      (uint16_t)rnd());
        vdrv_post(&d->v, q, head);
        break;
    }
    case 8: /* an old head again */
        if (room(d, q)) vdrv_post(&d->v, q, (uint16_t)(chance(90) ? below(num) : rnd()));
        break;
    default: post_big(d, q); break;
    }
}

/* ---- one round and its checks ---- */

static void window_begin(struct fdev *d) {
    d->g.traffic = 0;
    guard_forget(&d->g);
    for (unsigned q = 0; q < VDRV_MAX_QUEUES; q++) d->g.q[q].pushes = d->g.q[q].avail_hits = 0;
}

/* What must hold after a notify or host event of a running device. */
static void window_end(struct fdev *d, const char *what) {
    if (d->g.err[0]) FAIL(d, "%s: %s", what, d->g.err);
    uint64_t pops = 0;
    for (unsigned q = 0; q < d->nq; q++) {
        const struct qtrack *t = &d->g.q[q];
        /* Pops stop at avail->idx, at most a queue size ahead; a device
         * told to write over avail->idx may see a new one each time. */
        uint64_t allowed = (uint64_t)d->v.q[q].size * (1 + t->avail_hits);
        if (t->pushes > allowed)
            FAIL(d, "%s: queue %u: %u used elements from one notify (size %u)", what, q, t->pushes, d->v.q[q].size);
        pops += allowed;
        d->pushes += t->pushes;
    }
    uint64_t bound = (pops + 1) * (d->k->req_bytes + POP_OVERHEAD);
    if (d->g.traffic > bound)
        FAIL(d, "%s: %llu bytes of guest memory moved, more than %llu", what, (unsigned long long)d->g.traffic,
             (unsigned long long)bound);
    uint32_t st = (uint32_t)vdrv_rd(&d->v, VIRTIO_MMIO_STATUS);
    if ((st & ~(uint32_t)VIRTIO_STATUS_DEVICE_NEEDS_RESET) != 0xf) FAIL(d, "%s: status %#x", what, st);
    if (st & VIRTIO_STATUS_DEVICE_NEEDS_RESET) {
        if (!(vdrv_rd(&d->v, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG) || !d->irq_level)
            FAIL(d, "%s: broken without a config interrupt", what);
    }
}

/* A broken device stays quiet until reset, then comes back. */
static void recover(struct fdev *d) {
    d->broken++;
    expect_silence(d, "while DEVICE_NEEDS_RESET");
    vdrv_wr(&d->v, VIRTIO_MMIO_STATUS, 0);
    if (vdrv_rd(&d->v, VIRTIO_MMIO_STATUS) != 0 || vdrv_rd(&d->v, VIRTIO_MMIO_INTERRUPT_STATUS) != 0 || d->irq_level)
        FAIL(d, "%s", "reset left status, interrupt status or the irq line set");
    bring_up(d);
}

/* Register-level abuse; the device is set up again afterwards. */
static void reg_chaos(struct fdev *d) {
    static const uint32_t odd_nums[] = {0, 3, 5, 6, 7, 12, 100, 255, 257, 1000, 1025, 2048, 0x8000, 0xffff, 0x10000,
                                        0xffffffffu};
    static const uint64_t addr_regs[] = {VIRTIO_MMIO_QUEUE_DESC_LOW,   VIRTIO_MMIO_QUEUE_DESC_HIGH,
                                         VIRTIO_MMIO_QUEUE_DRIVER_LOW, VIRTIO_MMIO_QUEUE_DRIVER_HIGH,
                                         VIRTIO_MMIO_QUEUE_DEVICE_LOW, VIRTIO_MMIO_QUEUE_DEVICE_HIGH};
    d->chaos++;
    d->g.v = NULL; /* the queues may end up anywhere */
    guard_forget(&d->g);
    for (unsigned i = 1 + (unsigned)below(12); i; i--) {
        uint64_t off, val = (uint32_t)rnd();
        unsigned size = 4;
        switch (below(14)) {
        case 0: off = VIRTIO_MMIO_STATUS, val = chance(30) ? 0 : val & 0xff; break;
        case 1: off = VIRTIO_MMIO_QUEUE_SEL, val = chance(80) ? below(VIRTIO_MMIO_MAX_QUEUES + 2) : val; break;
        case 2:
            off = VIRTIO_MMIO_QUEUE_NUM;
            val = chance(80) ? odd_nums[below(sizeof odd_nums / sizeof *odd_nums)] : some_size(d->k->qmax);
            break;
        case 3: off = VIRTIO_MMIO_QUEUE_READY, val = chance(80) ? below(2) : val; break;
        case 4:
        case 5: {
            off = addr_regs[below(6)];
            if (chance(70) && !(off & 4)) val = (uint32_t)(arena_spot(0x3000, 1) + (chance(50) ? 0 : below(16)));
            else if (chance(50)) val = 0;
            break;
        }
        case 6: off = VIRTIO_MMIO_QUEUE_NOTIFY, val = chance(70) ? below(d->nq + 2) : val; break;
        case 7: off = VIRTIO_MMIO_INTERRUPT_ACK; break;
        case 8: {
            static const uint64_t regs[] = {VIRTIO_MMIO_DRIVER_FEATURES, VIRTIO_MMIO_DRIVER_FEATURES_SEL,
                                            VIRTIO_MMIO_DEVICE_FEATURES_SEL, VIRTIO_MMIO_SHM_SEL};
            off = regs[below(4)];
            if (off != VIRTIO_MMIO_DRIVER_FEATURES && chance(80)) val = below(3);
            break;
        }
        case 9: off = VIRTIO_MMIO_CONFIG + below(0x100), size = 1u << below(4), val = rnd(); break;
        case 10: {
            static const unsigned sizes[] = {0, 1, 2, 3, 4, 8, 16};
            off = below(0x1000), size = sizes[below(7)], val = rnd();
            break;
        }
        case 11: {
            static const unsigned sizes[] = {1, 2, 3, 4, 8};
            (void)virtio_mmio_ops.read(d->v.t, below(0x1000), sizes[below(5)]);
            continue;
        }
        case 12: host_event(d); continue;
        default: vdrv_setup_queue(&d->v, (unsigned)below(d->nq), some_size(d->k->qmax), weird_addr(d) & ~15ull,
                                  weird_addr(d) & ~1ull, weird_addr(d) & ~3ull);
            continue;
        }
        virtio_mmio_ops.write(d->v.t, off, val, size);
    }
    uint32_t st = (uint32_t)vdrv_rd(&d->v, VIRTIO_MMIO_STATUS);
    if ((st & VIRTIO_STATUS_DRIVER_OK) && !(st & VIRTIO_STATUS_FEATURES_OK)) FAIL(d, "status %#x", st);
    if (d->g.canary_writes) FAIL(d, "register chaos: %s", d->g.err);
    d->g.err[0] = 0; /* push tracking was off: nothing it said holds */
    check_canary(d);
    bring_up(d);
}

static void fuzz_round(struct fdev *d) {
    unsigned r = (unsigned)below(1000);
    if (r < 15) {
        reg_chaos(d);
        return;
    }
    if (r < 25) { /* reset mid-way: quiet until set up again */
        vdrv_wr(&d->v, VIRTIO_MMIO_STATUS, 0);
        expect_silence(d, "after a reset");
        bring_up(d);
        return;
    }
    if (r < 35) { /* another layout and other features */
        bring_up(d);
        return;
    }
    unsigned q = (unsigned)below(d->nq);
    for (unsigned k = 1 + (unsigned)below(3); k; k--) mutate(d, chance(85) ? q : (unsigned)below(d->nq));
    window_begin(d);
    const char *what = "notify";
    if (d->k->host_event && chance(10)) {
        host_event(d);
        what = "host event";
    } else {
        vdrv_notify(&d->v, chance(90) ? q : chance(50) ? (unsigned)below(VIRTIO_MMIO_MAX_QUEUES) : (uint32_t)rnd());
    }
    window_end(d, what);
    check_canary(d);
    if (vdrv_broken(&d->v)) recover(d);
}

/* The witness: a well-formed request, and nothing else ever touched its memory. */
static void probe(struct fdev *w, uint64_t *writes_seen) {
    if (w->g.writes != *writes_seen) FAIL(w, "%s", "its memory was written while another device was fuzzed");
    w->k->request(w);
    check_canary(w);
    *writes_seen = w->g.writes;
}

static void fuzz(const struct kind *k, uint64_t salt) {
    uint64_t seed = env_u64("RVISOR_FUZZ_SEED", DEFAULT_SEED) ^ salt;
    unsigned iters = (unsigned)env_u64("RVISOR_FUZZ_ITERS", DEFAULT_ITERS);
    prng = seed;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct fdev *d = fdev_new(k, "fuzzed", seed), *w = fdev_new(k, "witness", seed);
    bring_up_clean(w);
    uint64_t w_writes = w->g.writes;
    bring_up(d);
    for (d->iter = 0; d->iter < iters; d->iter++) {
        w->iter = d->iter;
        fuzz_round(d);
        if (d->iter % PROBE_EVERY == 0) probe(w, &w_writes);
    }
    /* However it was left, a reset brings it back. */
    vdrv_wr(&d->v, VIRTIO_MMIO_STATUS, 0);
    bring_up_clean(d);
    for (unsigned i = 0; i < 3; i++) k->request(d);
    check_canary(d);
    probe(w, &w_writes);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    print_message("%s: %u rounds in %.2f s: %u bring-ups, %u broken and reset, %u register chaos, %llu used "
                  "elements, canary written where the guest pointed in %u rounds and pages of it dropped by "
                  "the guest %u times; witness served %u requests\n",
                  k->name, iters, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, d->resets,
                  d->broken, d->chaos, (unsigned long long)d->pushes, d->aimed_rounds, d->canary_drops, w->requests);
    fdev_free(w);
    fdev_free(d);
}

/* ---- virtio-rng ---- */

static void rng_create(struct fdev *d) {
    d->rng = virtio_rng_create(NULL);
    assert_non_null(d->rng);
    d->v.t = virtio_mmio_create(&virtio_rng_ops, d->rng, guarded(d), irq_of(d));
}
static void rng_destroy(struct fdev *d) {
    virtio_mmio_destroy(d->v.t);
    virtio_rng_destroy(d->rng);
}
static uint64_t no_features(struct fdev *d) {
    (void)d;
    return 0;
}
static unsigned one_queue(uint64_t f) {
    (void)f;
    return 1;
}
static unsigned two_queues(uint64_t f) {
    (void)f;
    return 2;
}
static uint32_t rng_max_len(struct fdev *d, unsigned q) {
    (void)d, (void)q;
    return VIRTIO_RNG_MAX_REQUEST;
}

static unsigned rng_plan(struct fdev *d, unsigned q, struct vdrv_seg *s) {
    (void)d, (void)q;
    unsigned n = 1 + (unsigned)below(3);
    for (unsigned j = 0; j < n; j++) {
        uint32_t len = some_len();
        s[j] = (struct vdrv_seg){buf_at(len), len, true};
    }
    if (chance(15)) s[0].writable = false;
    return n;
}

static void rng_request(struct fdev *d) {
    put_zero(d, CLEAN_BUF, 256);
    struct vdrv_seg s = {CLEAN_BUF, 64, true};
    uint32_t len = run_request(d, 0, &s, 1);
    uint8_t got[256];
    vdrv_peek(&d->v, CLEAN_BUF, got, sizeof got);
    if (len != 64 || all_zero(got, 64) || !all_zero(got + 64, sizeof got - 64))
        FAIL(d, "entropy request: used length %u", len);
}

static const struct kind rng_kind = {
    .name = "virtio-rng",
    .qmax = VIRTIO_RNG_QUEUE_SIZE,
    .req_bytes = VIRTIO_RNG_MAX_REQUEST,
    .create = rng_create,
    .destroy = rng_destroy,
    .features = no_features,
    .num_queues = one_queue,
    .max_len = rng_max_len,
    .plan = rng_plan,
    .request = rng_request,
};

/* ---- virtio-console ---- */

static void sink_write(void *ctx, const uint8_t *buf, size_t n) {
    struct fdev *d = ctx;
    d->sink_bytes += n;
    size_t k = n < sizeof d->sink - d->sink_len ? n : sizeof d->sink - d->sink_len;
    memcpy(d->sink + d->sink_len, buf, k);
    d->sink_len += k;
}

static void con_create(struct fdev *d) {
    d->con = virtio_console_create((struct virtio_console_sink){sink_write, d}, NULL);
    assert_non_null(d->con);
    d->v.t = virtio_mmio_create(&virtio_console_ops, d->con, guarded(d), irq_of(d));
    virtio_console_attach(d->con, d->v.t);
}
static void con_destroy(struct fdev *d) {
    virtio_mmio_destroy(d->v.t);
    virtio_console_destroy(d->con);
}
static uint32_t con_max_len(struct fdev *d, unsigned q) {
    (void)d;
    return q == 0 ? VIRTIO_CONSOLE_INPUT_BUF : 0; /* receive: what was typed; transmit: nothing */
}

static unsigned con_plan(struct fdev *d, unsigned q, struct vdrv_seg *s) {
    unsigned n = 1 + (unsigned)below(q == 0 ? 2 : 3);
    for (unsigned j = 0; j < n; j++) {
        uint32_t len = chance(90) ? 1 + (uint32_t)below(q == 0 ? 1024 : 256) : some_len();
        s[j] = (struct vdrv_seg){buf_at(len), len, q == 0};
        if (q == 1) put_random(d, s[j].gpa, len);
    }
    return n;
}

static void con_input(struct fdev *d) {
    uint8_t buf[600];
    size_t n = 1 + below(sizeof buf);
    for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)rnd();
    (void)virtio_console_input(d->con, buf, n);
}

static void con_request(struct fdev *d) {
    static const char msg[] = "well-formed output\n";
    d->sink_len = 0;
    uint64_t before = d->sink_bytes;
    put(d, CLEAN_BUF, msg, sizeof msg - 1);
    struct vdrv_seg tx = {CLEAN_BUF, sizeof msg - 1, false};
    if (run_request(d, 1, &tx, 1) != 0 || d->sink_bytes - before != sizeof msg - 1 ||
        memcmp(d->sink, msg, sizeof msg - 1))
        FAIL(d, "%s", "transmit did not reach the sink intact");
    /* Input typed during the fuzzing survives resets: take it first. */
    struct vdrv_seg rx = {CLEAN_BUF + 0x1000, VIRTIO_CONSOLE_INPUT_BUF, true};
    while (virtio_console_input_space(d->con) < VIRTIO_CONSOLE_INPUT_BUF) run_request(d, 0, &rx, 1);
    rx.len = 64;
    put_zero(d, rx.gpa, 64);
    struct vdrv_queue *vq = &d->v.q[0];
    uint16_t before_idx = vdrv_used_idx(&d->v, 0), head = vdrv_write_chain(&d->v, 0, vq->next_desc, &rx, 1);
    vq->next_desc = (uint16_t)((head + 1) % vq->size);
    vdrv_post(&d->v, 0, head);
    vdrv_notify(&d->v, 0);
    if (virtio_console_input(d->con, (const uint8_t *)"ping", 4) != 4) FAIL(d, "%s", "input refused");
    char got[5] = {0};
    vdrv_peek(&d->v, rx.gpa, got, 4);
    if (vdrv_used_idx(&d->v, 0) != (uint16_t)(before_idx + 1) || vdrv_used_len(&d->v, 0, before_idx) != 4 ||
        strcmp(got, "ping"))
        FAIL(d, "input did not arrive: '%s'", got);
    d->requests++;
}

static const struct kind con_kind = {
    .name = "virtio-console",
    .qmax = VIRTIO_CONSOLE_QUEUE_SIZE,
    .req_bytes = VIRTIO_CONSOLE_MAX_OUTPUT, /* receive chains take at most VIRTIO_CONSOLE_INPUT_BUF */
    .create = con_create,
    .destroy = con_destroy,
    .features = no_features,
    .num_queues = two_queues,
    .max_len = con_max_len,
    .plan = con_plan,
    .host_event = con_input,
    .request = con_request,
};

/* ---- virtio-blk ---- */

static void blk_create(struct fdev *d) {
    /* fdatasync on tmpfs costs nothing; the fuzzer sends many writes. */
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(d->path, sizeof d->path, "%s/rvisor-fuzz-blk-XXXXXX", dir);
    int fd = mkstemp(d->path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, IMG_SIZE), 0);
    close(fd);
    char opts[96], err[256];
    snprintf(opts, sizeof opts, "file=%s", d->path);
    struct virtio_backend_env env = {.mem = guarded(d)};
    if (!virtio_blk_backend_create(opts, &env, &d->blk, err, sizeof err)) fail_msg("virtio-blk: %s", err);
    d->v.t = virtio_mmio_create(d->blk.ops, d->blk.dev, env.mem, irq_of(d));
    d->blk.attach(d->blk.dev, d->v.t);
}
static void blk_destroy(struct fdev *d) {
    d->blk.destroy(d->blk.dev);
    virtio_mmio_destroy(d->v.t);
    unlink(d->path);
}
static uint64_t blk_features(struct fdev *d) {
    uint64_t f = (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_DISCARD) |
                 (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
    return f | (d->run & 4 ? 0 : 1ull << VIRTIO_BLK_F_FLUSH); /* without it: write-through */
}
static uint32_t blk_max_len(struct fdev *d, unsigned q) {
    (void)d, (void)q;
    return IMG_SIZE + 1; /* data read, and the status byte */
}

static unsigned blk_plan(struct fdev *d, unsigned q, struct vdrv_seg *s) {
    (void)q;
    static const uint32_t types[] = {VIRTIO_BLK_T_IN,       VIRTIO_BLK_T_IN,      VIRTIO_BLK_T_IN,
                                     VIRTIO_BLK_T_OUT,      VIRTIO_BLK_T_OUT,     VIRTIO_BLK_T_OUT,
                                     VIRTIO_BLK_T_GET_ID,   VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES,
                                     VIRTIO_BLK_T_FLUSH,    2,                    0xdeadbeef};
    uint32_t type = types[below(sizeof types / sizeof *types)];
    if (type == VIRTIO_BLK_T_FLUSH && chance(50)) type = VIRTIO_BLK_T_IN;
    uint64_t sector = chance(85) ? below(IMG_SECTORS) : chance(50) ? IMG_SECTORS - below(4) : rnd();
    unsigned n = 0;
    /* Header, then discard / write-zeroes ranges in the same buffer. */
    uint8_t hdr[16 + 16 * 17] = {0};
    memcpy(hdr, &type, 4);
    memcpy(hdr + 8, &sector, 8);
    uint32_t hlen = chance(92) ? 16 : (uint32_t)below(24);
    if (type == VIRTIO_BLK_T_DISCARD || type == VIRTIO_BLK_T_WRITE_ZEROES) {
        unsigned m = (unsigned)below(18);
        for (unsigned i = 0; i < m; i++) {
            uint64_t sec = chance(80) ? below(IMG_SECTORS) : rnd();
            uint32_t num = chance(80) ? (uint32_t)below(64) : (uint32_t)rnd();
            uint32_t fl = chance(70) ? 0 : chance(60) ? VIRTIO_BLK_DISCARD_FLAG_UNMAP : (uint32_t)rnd();
            memcpy(hdr + 16 + 16 * i, &sec, 8);
            memcpy(hdr + 24 + 16 * i, &num, 4);
            memcpy(hdr + 28 + 16 * i, &fl, 4);
        }
        hlen = 16 + 16 * m;
    }
    s[n] = (struct vdrv_seg){buf_at(hlen), hlen, false};
    put(d, s[n].gpa, hdr, hlen);
    n++;
    uint32_t total = 0;
    bool in = type != VIRTIO_BLK_T_OUT;
    if (type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_OUT) total = VIRTIO_BLK_SECTOR * (uint32_t)below(17);
    else if (type == VIRTIO_BLK_T_GET_ID) total = chance(80) ? VIRTIO_BLK_ID_BYTES : (uint32_t)below(64);
    if (chance(8)) total = (uint32_t)below(1u << 14);
    for (unsigned parts = 1 + (unsigned)below(3); total && parts; parts--) {
        uint32_t len = parts == 1 ? total : (uint32_t)below(total + 1);
        s[n] = (struct vdrv_seg){buf_at(len), len, in};
        if (!in) put_random(d, s[n].gpa, len);
        n++;
        total -= len;
    }
    if (chance(98)) s[n++] = (struct vdrv_seg){buf_at(8), chance(95) ? 1 : (uint32_t)below(4), true};
    return n;
}

static void blk_rw(struct fdev *d, uint32_t type, uint64_t sector, uint64_t data) {
    uint8_t hdr[16] = {0}, status = 0xee;
    memcpy(hdr, &type, 4);
    memcpy(hdr + 8, &sector, 8);
    put(d, CLEAN_BUF, hdr, sizeof hdr);
    put(d, CLEAN_BUF + 0x100, &status, 1);
    bool in = type == VIRTIO_BLK_T_IN;
    struct vdrv_seg s[3] = {{CLEAN_BUF, 16, false}, {data, VIRTIO_BLK_SECTOR, in}, {CLEAN_BUF + 0x100, 1, true}};
    uint32_t len = run_request(d, 0, s, 3);
    vdrv_peek(&d->v, CLEAN_BUF + 0x100, &status, 1);
    if (status != VIRTIO_BLK_S_OK || len != (in ? VIRTIO_BLK_SECTOR + 1u : 1u))
        FAIL(d, "%s of sector %llu: status %u, used length %u", in ? "read" : "write", (unsigned long long)sector,
             status, len);
}

/* Writes a sector and reads it back. */
static void blk_request(struct fdev *d) {
    uint64_t sector = below(IMG_SECTORS);
    uint8_t pattern[VIRTIO_BLK_SECTOR], back[VIRTIO_BLK_SECTOR];
    for (unsigned i = 0; i < sizeof pattern; i++) pattern[i] = (uint8_t)(sector * 7 + i * 13 + d->requests);
    put(d, CLEAN_BUF + 0x1000, pattern, sizeof pattern);
    blk_rw(d, VIRTIO_BLK_T_OUT, sector, CLEAN_BUF + 0x1000);
    put_zero(d, CLEAN_BUF + 0x2000, sizeof back);
    blk_rw(d, VIRTIO_BLK_T_IN, sector, CLEAN_BUF + 0x2000);
    vdrv_peek(&d->v, CLEAN_BUF + 0x2000, back, sizeof back);
    if (memcmp(pattern, back, sizeof back)) FAIL(d, "sector %llu did not read back", (unsigned long long)sector);
}

static const struct kind blk_kind = {
    .name = "virtio-blk",
    .qmax = VIRTIO_BLK_QUEUE_SIZE,
    .req_bytes = 2ull * IMG_SIZE, /* one request: read or write the whole disk, and its buffers */
    .create = blk_create,
    .destroy = blk_destroy,
    .features = blk_features,
    .num_queues = one_queue,
    .max_len = blk_max_len,
    .plan = blk_plan,
    .request = blk_request,
};

/* ---- virtio-net ---- */

static void fb_send(void *be, const uint8_t *frame, size_t len) {
    struct fake_backend *b = be;
    b->sent++;
    b->len = len;
    memcpy(b->frame, frame, len < NET_MAX_FRAME ? len : NET_MAX_FRAME);
}
static void fb_resume(void *be) { ((struct fake_backend *)be)->resumes++; }
static void fb_destroy(void *be) { (void)be; }
static const struct net_backend_ops fb_ops = {fb_send, fb_resume, fb_destroy};

static void net_create(struct fdev *d) {
    static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0xf0, 0x22, 0x01};
    d->fb.frame = malloc(NET_MAX_FRAME);
    d->scratch = malloc(NET_MAX_FRAME + 1);
    assert_non_null(d->fb.frame);
    assert_non_null(d->scratch);
    d->net = virtio_net_create(NULL, mac);
    assert_non_null(d->net);
    virtio_net_set_backend(d->net, (struct net_backend){&fb_ops, &d->fb, .rx_checksums_valid = false});
    d->peer = virtio_net_peer(d->net);
    d->v.t = virtio_mmio_create(&virtio_net_ops, d->net, guarded(d), irq_of(d));
    virtio_net_attach(d->net, d->v.t);
}
static void net_destroy(struct fdev *d) {
    virtio_net_destroy(d->net);
    virtio_mmio_destroy(d->v.t);
    free(d->fb.frame);
    free(d->scratch);
}
static uint64_t net_features(struct fdev *d) {
    /* Every other bring-up with checksum and segmentation offload: random
     * headers then ask for checksums at random offsets and segmentation of
     * random frames. */
    uint64_t csum = d->run & 4 ? (1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM) |
                                     (1ull << VIRTIO_NET_F_HOST_TSO4)
                               : 0;
    return (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS) | csum;
}
static uint32_t net_max_len(struct fdev *d, unsigned q) {
    (void)d;
    return q == VIRTIO_NET_RXQ ? VIRTIO_NET_HDR_LEN + NET_MAX_FRAME : 0;
}

static unsigned net_plan(struct fdev *d, unsigned q, struct vdrv_seg *s) {
    uint32_t total;
    if (q == VIRTIO_NET_RXQ) {
        total = chance(80) ? VIRTIO_NET_HDR_LEN + 1514 : (uint32_t)below(2048);
    } else {
        uint32_t frame = chance(85) ? 14 + (uint32_t)below(1501) : chance(60) ? (uint32_t)below(14)
                                                                         : NET_MAX_FRAME - 8 + (uint32_t)below(16);
        total = VIRTIO_NET_HDR_LEN + frame;
    }
    unsigned n = 0;
    for (unsigned parts = 1 + (unsigned)below(3); total && parts; parts--) {
        uint32_t len = parts == 1 ? total : (uint32_t)below(total + 1);
        s[n] = (struct vdrv_seg){buf_at(len), len, q == VIRTIO_NET_RXQ};
        if (q != VIRTIO_NET_RXQ) put_random(d, s[n].gpa, len < 2048 ? len : 2048);
        n++;
        total -= len;
    }
    return n;
}

static void net_rx(struct fdev *d) {
    size_t len = chance(85) ? 60 + below(1455) : chance(50) ? below(14) : NET_MAX_FRAME - 1 + below(3);
    for (size_t i = 0; i < len && i < 2048; i++) d->scratch[i] = (uint8_t)rnd();
    (void)d->peer.deliver(d->peer.ctx, d->scratch, len);
}

/* Sends a frame and receives one. */
static void net_request(struct fdev *d) {
    uint8_t buf[VIRTIO_NET_HDR_LEN + 100] = {0}, got[VIRTIO_NET_HDR_LEN + 100];
    for (unsigned i = VIRTIO_NET_HDR_LEN; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 3 + d->requests);
    put(d, CLEAN_BUF, buf, sizeof buf);
    unsigned sent = d->fb.sent;
    struct vdrv_seg tx = {CLEAN_BUF, sizeof buf, false};
    if (run_request(d, VIRTIO_NET_TXQ, &tx, 1) != 0 || d->fb.sent != sent + 1 ||
        d->fb.len != sizeof buf - VIRTIO_NET_HDR_LEN || memcmp(d->fb.frame, buf + VIRTIO_NET_HDR_LEN, d->fb.len))
        FAIL(d, "%s", "transmitted frame did not reach the backend intact");

    struct vdrv_queue *vq = &d->v.q[VIRTIO_NET_RXQ];
    struct vdrv_seg rx = {CLEAN_BUF + 0x1000, 2048, true};
    uint16_t before = vdrv_used_idx(&d->v, VIRTIO_NET_RXQ);
    uint16_t head = vdrv_write_chain(&d->v, VIRTIO_NET_RXQ, vq->next_desc, &rx, 1);
    vq->next_desc = (uint16_t)((head + 1) % vq->size);
    vdrv_post(&d->v, VIRTIO_NET_RXQ, head);
    vdrv_notify(&d->v, VIRTIO_NET_RXQ);
    if (!d->peer.deliver(d->peer.ctx, buf + VIRTIO_NET_HDR_LEN, 100)) FAIL(d, "%s", "frame not taken");
    vdrv_peek(&d->v, rx.gpa, got, sizeof got);
    if (vdrv_used_idx(&d->v, VIRTIO_NET_RXQ) != (uint16_t)(before + 1) ||
        vdrv_used_len(&d->v, VIRTIO_NET_RXQ, before) != sizeof got || got[10] != 1 ||
        memcmp(got + VIRTIO_NET_HDR_LEN, buf + VIRTIO_NET_HDR_LEN, 100))
        FAIL(d, "%s", "received frame did not arrive intact");
    d->requests++;
}

static const struct kind net_kind = {
    .name = "virtio-net",
    .qmax = VIRTIO_NET_QUEUE_SIZE,
    .req_bytes = 2ull * (VIRTIO_NET_HDR_LEN + NET_MAX_FRAME),
    .create = net_create,
    .destroy = net_destroy,
    .features = net_features,
    .num_queues = two_queues,
    .max_len = net_max_len,
    .plan = net_plan,
    .host_event = net_rx,
    .request = net_request,
};

/* ---- virtio-balloon ---- */

#define F_STATS (1ull << VIRTIO_BALLOON_F_STATS_VQ)
#define F_REPORT (1ull << VIRTIO_BALLOON_F_REPORTING)

/* The VM's wiring of the balloon to the p2m, plus the promise the device
 * makes whatever the guest sends: it only ever names RAM. */
static uint64_t bal_drop_frames(void *ctx, const uint64_t *gpa, size_t n) {
    struct fdev *d = ctx;
    for (size_t i = 0; i < n; i++)
        if (gpa[i] < MEM_BASE || gpa[i] >= MEM_END)
            FAIL(d, "balloon dropped frame %#llx outside RAM", (unsigned long long)gpa[i]);
    return p2m_drop_frames(&d->p2m, gpa, n);
}
static uint64_t bal_drop_range(void *ctx, uint64_t gpa, uint64_t len) {
    struct fdev *d = ctx;
    if (gpa < MEM_BASE || gpa > MEM_END || len > MEM_END - gpa)
        FAIL(d, "balloon dropped range %#llx+%#llx outside RAM", (unsigned long long)gpa, (unsigned long long)len);
    return p2m_drop_range(&d->p2m, gpa, len);
}

static void bal_create(struct fdev *d) {
    d->bal = virtio_balloon_create((struct guest_ram_ops){MEM_BASE, MEM_SIZE, bal_drop_frames, bal_drop_range, d}, NULL);
    assert_non_null(d->bal);
    d->v.t = virtio_mmio_create(&virtio_balloon_ops, d->bal, guarded(d), irq_of(d));
    virtio_balloon_attach(d->bal, d->v.t);
}
static void bal_destroy(struct fdev *d) {
    virtio_balloon_destroy(d->bal);
    virtio_mmio_destroy(d->v.t);
}
static uint64_t bal_features(struct fdev *d) {
    (void)d;
    return (chance(70) ? F_STATS : 0) | (chance(50) ? 1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM : 0) |
           (chance(70) ? F_REPORT : 0);
}
static unsigned bal_queues(uint64_t f) { return 2 + !!(f & F_STATS) + !!(f & F_REPORT); }
static uint32_t bal_max_len(struct fdev *d, unsigned q) {
    (void)d, (void)q;
    return 0; /* the balloon writes nothing back */
}

static unsigned bal_plan(struct fdev *d, unsigned q, struct vdrv_seg *s) {
    bool stats = q == 2 && (d->features & F_STATS);
    if (q >= 2 && !stats) { /* free page reports: whole arena pages, mostly */
        unsigned n = 1 + (unsigned)below(3);
        for (unsigned j = 0; j < n; j++) {
            uint32_t pages = 1 + (uint32_t)below(16);
            uint64_t gpa = ARENA + PAGE * below(ARENA_SIZE / PAGE - pages);
            s[j] = (struct vdrv_seg){gpa, pages * PAGE, !chance(10)};
            if (chance(10)) s[j].gpa += below(PAGE), s[j].len -= (uint32_t)below(PAGE);
        }
        return n;
    }
    uint8_t raw[64 * 10];
    uint32_t len;
    if (stats) {
        unsigned m = (unsigned)below(13);
        for (unsigned i = 0; i < m; i++) {
            uint16_t tag = (uint16_t)below(14);
            uint64_t val = rnd();
            memcpy(raw + 10 * i, &tag, 2);
            memcpy(raw + 10 * i + 2, &val, 8);
        }
        len = 10 * m + (chance(10) ? (uint32_t)below(10) : 0);
    } else { /* PFNs to inflate or deflate: arena pages, and some outside RAM */
        unsigned m = 1 + (unsigned)below(64);
        for (unsigned i = 0; i < m; i++) {
            static const uint32_t edges[] = {PFN(MEM_BASE) - 1, PFN(MEM_END), PFN(MEM_END) - 1, 0, 0xffffffffu};
            uint32_t pfn = chance(70) ? PFN(ARENA) + (uint32_t)below(ARENA_SIZE / PAGE)
                           : chance(50) ? (uint32_t)rnd() : edges[below(5)];
            memcpy(raw + 4 * i, &pfn, 4);
        }
        len = 4 * m + (chance(10) ? (uint32_t)below(4) : 0);
    }
    uint64_t gpa = buf_at(len);
    put(d, gpa, raw, len);
    if (len > 8 && chance(20)) { /* split, a PFN or record may straddle */
        uint32_t cut = 1 + (uint32_t)below(len - 1);
        s[0] = (struct vdrv_seg){gpa, cut, false};
        s[1] = (struct vdrv_seg){gpa + cut, len - cut, false};
        return 2;
    }
    s[0] = (struct vdrv_seg){gpa, len, false};
    return 1;
}

static void bal_host(struct fdev *d) {
    if (chance(70))
        virtio_balloon_request_stats(d->bal);
    else
        virtio_balloon_set_target(d->bal, (uint32_t)below(MEM_SIZE / PAGE + 2));
}

/* Inflates a page the guest wrote, which then reads as zeros, and deflates it. */
static void bal_request(struct fdev *d) {
    uint64_t page = CLEAN_BUF + 0x10000 + PAGE * below(16);
    struct virtio_balloon_info before, after;
    virtio_balloon_get_info(d->bal, &before);
    uint8_t data[PAGE];
    memset(data, 0xc3, sizeof data);
    put(d, page, data, sizeof data);
    uint32_t pfn = PFN(page);
    put(d, CLEAN_BUF, &pfn, 4);
    struct vdrv_seg s = {CLEAN_BUF, 4, false};
    if (run_request(d, 0, &s, 1) != 0) FAIL(d, "%s", "inflate: used length not 0");
    vdrv_peek(&d->v, page, data, sizeof data);
    virtio_balloon_get_info(d->bal, &after);
    if (!all_zero(data, sizeof data) || after.inflated_pages != before.inflated_pages + 1)
        FAIL(d, "%s", "inflated page not dropped");
    if (run_request(d, 1, &s, 1) != 0) FAIL(d, "%s", "deflate: used length not 0");
    virtio_balloon_get_info(d->bal, &after);
    if (after.deflated_pages != before.deflated_pages + 1) FAIL(d, "%s", "deflate not counted");
}

static const struct kind bal_kind = {
    .name = "virtio-balloon",
    .qmax = VIRTIO_BALLOON_QUEUE_SIZE,
    .uses_p2m = true,
    .req_bytes = 64u << 10, /* PFN bytes looked at per buffer */
    .create = bal_create,
    .destroy = bal_destroy,
    .features = bal_features,
    .num_queues = bal_queues,
    .max_len = bal_max_len,
    .plan = bal_plan,
    .host_event = bal_host,
    .request = bal_request,
};

/* ---- tests ---- */

/* What the fuzzer relies on: the fake memory refuses everything outside
 * [base, base + size), whole, including ranges that wrap at 2^64. */
static void test_fake_mem_refuses_outside(void **state) {
    (void)state;
    struct fake_mem m;
    fake_mem_init(&m, MEM_BASE, MEM_SIZE);
    struct guest_mem_ops ops = fake_mem_ops(&m);
    uint8_t b[16] = {0};
    assert_true(ops.read(ops.ctx, MEM_BASE, b, 16));
    assert_true(ops.write(ops.ctx, MEM_END - 16, b, 16));
    assert_false(ops.write(ops.ctx, MEM_BASE - 1, b, 2));
    assert_false(ops.write(ops.ctx, MEM_END - 15, b, 16));
    assert_false(ops.write(ops.ctx, MEM_END, b, 1));
    assert_false(ops.read(ops.ctx, UINT64_MAX - 7, b, 16));
    assert_false(ops.read(ops.ctx, MEM_BASE + 8, b, SIZE_MAX));
    assert_false(ops.read(ops.ctx, 0, b, 1));
    fake_mem_free(&m);
}

/* What the fuzzer found: one transmit chain of 1024 descriptors, each
 * naming most of RAM, had the console copy a thousand times guest RAM to
 * its sink within one notify. Now a chain gives at most
 * VIRTIO_CONSOLE_MAX_OUTPUT bytes, and the rest is dropped. */
static void test_console_output_per_chain_is_bounded(void **state) {
    (void)state;
    prng = DEFAULT_SEED;
    struct fdev *d = fdev_new(&con_kind, "fuzzed", DEFAULT_SEED);
    bring_up_clean(d);
    static uint8_t table[16 * VIRTQ_MAX_SEGS];
    for (unsigned j = 0; j < VIRTQ_MAX_SEGS; j++)
        put_desc(table + 16 * j, ARENA, ARENA_SIZE, j + 1 < VIRTQ_MAX_SEGS ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(j + 1));
    put(d, CLEAN_BUF, table, sizeof table);
    vdrv_set_desc(&d->v, 1, 0, CLEAN_BUF, sizeof table, VIRTQ_DESC_F_INDIRECT, 0);
    vdrv_post(&d->v, 1, 0);
    uint64_t before = d->g.traffic;
    vdrv_notify(&d->v, 1);
    assert_int_equal(vdrv_used_idx(&d->v, 1), 1);
    assert_false(vdrv_broken(&d->v));
    assert_int_equal(d->sink_bytes, VIRTIO_CONSOLE_MAX_OUTPUT);
    assert_true(d->g.traffic - before < 2 * VIRTIO_CONSOLE_MAX_OUTPUT);
    /* The next chain is whole again. */
    con_kind.request(d);
    fdev_free(d);
}

static void test_fuzz_rng(void **state) {
    (void)state;
    fuzz(&rng_kind, 1);
}
static void test_fuzz_console(void **state) {
    (void)state;
    fuzz(&con_kind, 2);
}
static void test_fuzz_blk(void **state) {
    (void)state;
    fuzz(&blk_kind, 3);
}
static void test_fuzz_net(void **state) {
    (void)state;
    fuzz(&net_kind, 4);
}
static void test_fuzz_balloon(void **state) {
    (void)state;
    fuzz(&bal_kind, 5);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fake_mem_refuses_outside),
        cmocka_unit_test(test_console_output_per_chain_is_bounded),
        cmocka_unit_test(test_fuzz_rng),
        cmocka_unit_test(test_fuzz_console),
        cmocka_unit_test(test_fuzz_blk),
        cmocka_unit_test(test_fuzz_net),
        cmocka_unit_test(test_fuzz_balloon),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
