/* Unit tests of the virtio-net card behind a virtio-mmio transport, with a
 * fake guest memory and a fake backend that records what the card sends
 * and lets the test deliver frames. A small driver model sets up both
 * queues as a guest's driver would. Most tests run without an event loop
 * (queue work then happens on the notifying thread); one runs the card on a
 * real loop. Option parsing of --net is tested here too. */
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
#include <arpa/inet.h>

#include "dev/irq.h"
#include "dev/virtio_mmio.h"
#include "dev/virtio_net.h"
#include "dev/virtqueue.h"
#include "io/event_loop.h"
#include "net/net_backend.h"
#include "virtio_driver.h"

#define MEM_BASE 0x80000000ull
#define MEM_SIZE (1u << 20)
#define QSIZE 8
/* Queue q's rings: descriptors, driver area, device area. */
#define DESC(q) (MEM_BASE + 0x1000 + 0x4000 * (uint64_t)(q))
#define AVAIL(q) (DESC(q) + 0x1000)
#define USED(q) (DESC(q) + 0x2000)
#define BUF (MEM_BASE + 0x20000)
#define RXQ 0
#define TXQ 1
#define HDR 12

static const uint8_t MAC[6] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};

/* ---- fake backend ---- */
#define MAX_SENT 64
struct fake_backend {
    unsigned nsent;
    size_t len[MAX_SENT];
    uint8_t frame[MAX_SENT][2048];
    unsigned resumes;
    bool destroyed;
};

static void fb_send(void *be, const uint8_t *frame, size_t len) {
    struct fake_backend *b = be;
    if (b->nsent < MAX_SENT) {
        b->len[b->nsent] = len;
        memcpy(b->frame[b->nsent], frame, len < 2048 ? len : 2048);
    }
    __atomic_add_fetch(&b->nsent, 1, __ATOMIC_SEQ_CST);
}

static void fb_resume(void *be) {
    struct fake_backend *b = be;
    __atomic_add_fetch(&b->resumes, 1, __ATOMIC_SEQ_CST);
}

static void fb_destroy(void *be) {
    struct fake_backend *b = be;
    b->destroyed = true;
}

static const struct net_backend_ops fb_ops = {fb_send, fb_resume, fb_destroy};

/* ---- the driver model (see virtio_driver.h) ---- */
struct drv {
    struct fake_mem mem;
    struct vdrv v;
    struct fake_backend fb;
    struct event_loop *loop;
    struct virtio_net *net;
    struct net_peer peer;
    bool irq_level;
};

static void irq_set(void *ctx, unsigned irq, bool level) {
    struct drv *d = ctx;
    (void)irq;
    __atomic_store_n(&d->irq_level, level, __ATOMIC_SEQ_CST);
}

static uint8_t *host(struct drv *d, uint64_t gpa) { return fake_mem_host(&d->mem, gpa); }

#define F_V1 (1ull << VIRTIO_F_VERSION_1)
#define F_MAC (1ull << VIRTIO_NET_F_MAC)
#define F_STATUS (1ull << VIRTIO_NET_F_STATUS)
#define F_EVIDX (1ull << VIRTIO_F_RING_EVENT_IDX)
#define TCP_FLAGS_ACK 0x10
#define TCP_FLAGS_ACK_PSH_FIN 0x19

static void full_init(struct drv *d, uint64_t features) {
    memset(host(d, DESC(0)), 0, 0x8000);
    assert_true(vdrv_negotiate(&d->v, features) & VIRTIO_STATUS_FEATURES_OK);
    for (unsigned q = RXQ; q <= TXQ; q++) vdrv_setup_queue(&d->v, q, QSIZE, DESC(q), AVAIL(q), USED(q));
    vdrv_driver_ok(&d->v);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_STATUS), 0xf);
}

static int make(void **state, bool with_loop) {
    struct drv *d = calloc(1, sizeof *d);
    assert_non_null(d);
    fake_mem_init(&d->mem, MEM_BASE, MEM_SIZE);
    d->v.mem = fake_mem_ops(&d->mem);
    if (with_loop) {
        char err[128];
        d->loop = event_loop_create(err, sizeof err);
        assert_non_null(d->loop);
    }
    d->net = virtio_net_create(d->loop, MAC);
    assert_non_null(d->net);
    virtio_net_set_backend(d->net, (struct net_backend){&fb_ops, &d->fb, .rx_checksums_valid = false});
    d->peer = virtio_net_peer(d->net);
    d->v.t = virtio_mmio_create(&virtio_net_ops, d->net, d->v.mem, (struct irq_line){irq_set, d, 3});
    assert_non_null(d->v.t);
    virtio_net_attach(d->net, d->v.t);
    *state = d;
    return 0;
}

static int setup(void **state) { return make(state, false); }
static int setup_loop(void **state) { return make(state, true); }

static int teardown(void **state) {
    struct drv *d = *state;
    virtio_net_destroy(d->net);
    assert_true(d->fb.destroyed);
    virtio_mmio_destroy(d->v.t);
    event_loop_destroy(d->loop);
    fake_mem_free(&d->mem);
    free(d);
    return 0;
}

static bool deliver(struct drv *d, const uint8_t *frame, size_t len) { return d->peer.deliver(d->peer.ctx, frame, len); }

/* A frame whose bytes say which it is. */
static void make_frame(uint8_t *f, size_t len, uint8_t tag) {
    for (size_t i = 0; i < len; i++) f[i] = (uint8_t)(tag + i * 7);
}

/* Posts one receive buffer of len bytes at gpa (descriptor i). */
static void post_rx(struct drv *d, unsigned i, uint64_t gpa, uint32_t len) {
    vdrv_set_desc(&d->v, RXQ, i, gpa, len, VIRTQ_DESC_F_WRITE, 0);
    vdrv_post(&d->v, RXQ, (uint16_t)i);
}

/* ---- tests ---- */

static void test_probe_and_config(void **state) {
    struct drv *d = *state;
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_DEVICE_ID), 1);
    vdrv_wr(&d->v, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    uint32_t lo = (uint32_t)vdrv_rd(&d->v, VIRTIO_MMIO_DEVICE_FEATURES);
    assert_true(lo & (1u << VIRTIO_NET_F_MAC));
    assert_true(lo & (1u << VIRTIO_NET_F_STATUS));
    assert_true(lo & (1u << VIRTIO_NET_F_CSUM));
    assert_true(lo & (1u << VIRTIO_NET_F_GUEST_CSUM));
    assert_false(lo & (1u << 15)); /* no MRG_RXBUF */
    assert_true(lo & (1u << VIRTIO_NET_F_HOST_TSO4));
    for (unsigned q = 0; q < 2; q++) {
        vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_SEL, q);
        assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_QUEUE_NUM_MAX), VIRTIO_NET_QUEUE_SIZE);
    }
    vdrv_wr(&d->v, VIRTIO_MMIO_QUEUE_SEL, 2);
    assert_int_equal(vdrv_rd(&d->v, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
    for (unsigned i = 0; i < 6; i++) assert_int_equal(virtio_mmio_ops.read(d->v.t, VIRTIO_MMIO_CONFIG + i, 1), MAC[i]);
    assert_int_equal(virtio_mmio_ops.read(d->v.t, VIRTIO_MMIO_CONFIG + 6, 2), VIRTIO_NET_S_LINK_UP);
    assert_int_equal(virtio_mmio_ops.read(d->v.t, VIRTIO_MMIO_CONFIG + 4, 4), 0x0001efcd);
    assert_int_equal(virtio_mmio_ops.read(d->v.t, VIRTIO_MMIO_CONFIG + 8, 4), 0);
    assert_int_equal(virtio_mmio_ops.read(d->v.t, VIRTIO_MMIO_CONFIG + 0xfc, 4), 0);
    /* The MAC cannot be written. */
    virtio_mmio_ops.write(d->v.t, VIRTIO_MMIO_CONFIG, 0xff, 1);
    assert_int_equal(virtio_mmio_ops.read(d->v.t, VIRTIO_MMIO_CONFIG, 1), MAC[0]);
}

static void test_tx_strips_header(void **state) {
    struct drv *d = *state;
    full_init(d, F_V1 | F_MAC | F_STATUS);
    uint8_t f[100];
    make_frame(f, sizeof f, 1);
    /* Header and frame in one buffer, as Linux sends them. */
    memset(host(d, BUF), 0xee, HDR);
    memcpy(host(d, BUF + HDR), f, sizeof f);
    vdrv_set_desc(&d->v, TXQ, 0, BUF, HDR + sizeof f, 0, 0);
    vdrv_post(&d->v, TXQ, 0);
    vdrv_notify(&d->v, TXQ);
    assert_int_equal(vdrv_used_idx(&d->v, TXQ), 1);
    assert_int_equal(vdrv_used_id(&d->v, TXQ, 0), 0);
    assert_int_equal(vdrv_used_len(&d->v, TXQ, 0), 0);
    assert_int_equal(d->fb.nsent, 1);
    assert_int_equal(d->fb.len[0], sizeof f);
    assert_memory_equal(d->fb.frame[0], f, sizeof f);
    assert_true(d->irq_level);

    /* Header split over two buffers, the frame over three. */
    make_frame(f, sizeof f, 2);
    memcpy(host(d, BUF + 0x1000), "\0\0\0\0\0", 5);
    memcpy(host(d, BUF + 0x2000), "\0\0\0\0\0\0\0", 7);
    memcpy(host(d, BUF + 0x2007), f, 10);
    memcpy(host(d, BUF + 0x3000), f + 10, 1);
    memcpy(host(d, BUF + 0x4000), f + 11, sizeof f - 11);
    vdrv_set_desc(&d->v, TXQ, 1, BUF + 0x1000, 5, VIRTQ_DESC_F_NEXT, 2);
    vdrv_set_desc(&d->v, TXQ, 2, BUF + 0x2000, 17, VIRTQ_DESC_F_NEXT, 3);
    vdrv_set_desc(&d->v, TXQ, 3, BUF + 0x3000, 1, VIRTQ_DESC_F_NEXT, 4);
    vdrv_set_desc(&d->v, TXQ, 4, BUF + 0x4000, sizeof f - 11, 0, 0);
    vdrv_post(&d->v, TXQ, 1);
    vdrv_notify(&d->v, TXQ);
    assert_int_equal(vdrv_used_idx(&d->v, TXQ), 2);
    assert_int_equal(vdrv_used_id(&d->v, TXQ, 1), 1);
    assert_int_equal(d->fb.nsent, 2);
    assert_int_equal(d->fb.len[1], sizeof f);
    assert_memory_equal(d->fb.frame[1], f, sizeof f);
}

/* RFC 1071 checksum over the pseudo-header and the UDP datagram of an
 * IPv4 frame, computed independently of the device. */
static uint16_t udp_checksum(const uint8_t *f, size_t len) {
    uint32_t sum = 0;
    for (int i = 26; i < 34; i += 2) sum += (uint32_t)f[i] << 8 | f[i + 1]; /* addresses */
    sum += 17 + (uint32_t)(len - 34);                                           /* protocol, UDP length */
    for (size_t i = 34; i < len; i += 2) {
        if (i == 40) continue; /* the checksum field itself */
        sum += (uint32_t)f[i] << 8 | (i + 1 < len ? f[i + 1] : 0);
    }
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* An Ethernet + IPv4 + UDP frame of len bytes (odd lengths too). */
static void make_udp_frame(uint8_t *f, size_t len) {
    make_frame(f, len, 9);
    f[12] = 0x08, f[13] = 0x00; /* IPv4 */
    f[14] = 0x45;
    f[23] = 17; /* UDP */
    f[38] = (uint8_t)((len - 34) >> 8), f[39] = (uint8_t)(len - 34);
}

/* VIRTIO_NET_F_CSUM: the driver puts the pseudo-header sum in the field
 * and leaves the rest to the device, as Linux does with CHECKSUM_PARTIAL. */
static void test_tx_checksum_offload(void **state) {
    struct drv *d = *state;
    full_init(d, F_V1 | (1ull << VIRTIO_NET_F_CSUM));
    for (size_t len = 60; len <= 61; len++) {
        uint8_t f[64];
        make_udp_frame(f, len);
        uint16_t want = udp_checksum(f, len);
        /* The pseudo-header sum, not complemented, in the field. */
        uint32_t ph = 17 + (uint32_t)(len - 34);
        for (int i = 26; i < 34; i += 2) ph += (uint32_t)f[i] << 8 | f[i + 1];
        while (ph >> 16) ph = (ph & 0xffff) + (ph >> 16);
        f[40] = (uint8_t)(ph >> 8), f[41] = (uint8_t)ph;
        uint8_t hdr[HDR] = {VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 0, 0, 34, 0, 6, 0, 0, 0};
        memcpy(host(d, BUF), hdr, HDR);
        memcpy(host(d, BUF + HDR), f, len);
        unsigned i = (unsigned)(len - 60);
        vdrv_set_desc(&d->v, TXQ, i, BUF, (uint32_t)(HDR + len), 0, 0);
        vdrv_post(&d->v, TXQ, (uint16_t)i);
        vdrv_notify(&d->v, TXQ);
        assert_int_equal(d->fb.nsent, i + 1);
        assert_int_equal(d->fb.len[i], len);
        assert_int_equal(d->fb.frame[i][40] << 8 | d->fb.frame[i][41], want);
        assert_memory_equal(d->fb.frame[i], f, 40); /* the rest is untouched */
    }
    /* Offsets that do not fit the frame: dropped, not sent. */
    uint8_t bad[HDR] = {VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 0, 0, 58, 0, 6, 0, 0, 0};
    memcpy(host(d, BUF), bad, HDR);
    vdrv_set_desc(&d->v, TXQ, 2, BUF, HDR + 60, 0, 0);
    vdrv_post(&d->v, TXQ, 2);
    vdrv_notify(&d->v, TXQ);
    assert_int_equal(vdrv_used_idx(&d->v, TXQ), 3);
    assert_int_equal(d->fb.nsent, 2);
    assert_false(vdrv_broken(&d->v));

    /* Without CSUM negotiated, NEEDS_CSUM means nothing: the frame goes as is. */
    full_init(d, F_V1);
    uint8_t f[60];
    make_udp_frame(f, sizeof f);
    memcpy(host(d, BUF), (uint8_t[HDR]){VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 0, 0, 34, 0, 6, 0, 0, 0}, HDR);
    memcpy(host(d, BUF + HDR), f, sizeof f);
    vdrv_set_desc(&d->v, TXQ, 0, BUF, HDR + sizeof f, 0, 0);
    vdrv_post(&d->v, TXQ, 0);
    vdrv_notify(&d->v, TXQ);
    assert_int_equal(d->fb.nsent, 3);
    assert_memory_equal(d->fb.frame[2], f, sizeof f);
}

/* Sum of a segment's 16-bit words, folded: 0xffff when its checksum is right. */
static uint16_t ones_sum(const uint8_t *p, size_t len, uint32_t sum) {
    for (size_t i = 0; i < len; i += 2) sum += (uint32_t)p[i] << 8 | (i + 1 < len ? p[i + 1] : 0);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* VIRTIO_NET_F_HOST_TSO4: one 2500-byte TCP payload with MSS 1000 leaves
 * as three frames, each a valid TCP/IPv4 segment. */
static void test_tx_tso(void **state) {
    struct drv *d = *state;
    full_init(d, F_V1 | (1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_HOST_TSO4));
    enum { HL = 14 + 20 + 20, PAY = 2500, MSS = 1000 };
    static uint8_t f[HL + PAY];
    make_frame(f, sizeof f, 3);
    f[12] = 0x08, f[13] = 0x00;
    f[14] = 0x45, f[15] = 0;
    f[16] = (uint8_t)((sizeof f - 14) >> 8), f[17] = (uint8_t)(sizeof f - 14);
    f[18] = 0x12, f[19] = 0x34; /* id */
    f[20] = 0x40, f[21] = 0;    /* DF */
    f[22] = 64, f[23] = 6;      /* TTL, TCP */
    f[34 + 4] = 0xff, f[34 + 5] = 0xff, f[34 + 6] = 0xfc, f[34 + 7] = 0x00; /* seq wraps past 2^32 */
    f[34 + 12] = 5 << 4;
    f[34 + 13] = TCP_FLAGS_ACK_PSH_FIN;
    uint8_t hdr[HDR] = {VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, HL, 0, MSS & 0xff, MSS >> 8, 34, 0, 16, 0, 0, 0};
    memcpy(host(d, BUF), hdr, HDR);
    memcpy(host(d, BUF + HDR), f, sizeof f);
    vdrv_set_desc(&d->v, TXQ, 0, BUF, HDR + sizeof f, 0, 0);
    vdrv_post(&d->v, TXQ, 0);
    vdrv_notify(&d->v, TXQ);
    assert_int_equal(vdrv_used_idx(&d->v, TXQ), 1);
    assert_int_equal(d->fb.nsent, 3);
    for (unsigned k = 0; k < 3; k++) {
        const uint8_t *s = d->fb.frame[k];
        size_t chunk = k < 2 ? MSS : PAY - 2 * MSS;
        assert_int_equal(d->fb.len[k], HL + chunk);
        assert_memory_equal(s, f, 14 + 2);                                   /* MAC addresses, type, IP version */
        assert_int_equal(s[16] << 8 | s[17], 40 + chunk);                    /* IP total length */
        assert_int_equal(s[18] << 8 | s[19], 0x1234 + k);                    /* IP id */
        assert_int_equal(ones_sum(s + 14, 20, 0), 0xffff);                   /* IP header checksum */
        assert_int_equal(be32(s + 34 + 4), 0xfffffc00u + k * MSS);           /* sequence number */
        assert_memory_equal(s + 34 + 8, f + 34 + 8, 4);                      /* ack */
        assert_int_equal(s[34 + 13], k < 2 ? TCP_FLAGS_ACK : TCP_FLAGS_ACK_PSH_FIN);
        assert_memory_equal(s + HL, f + HL + k * MSS, chunk);                /* payload */
        uint32_t pseudo = ones_sum(s + 26, 8, 0) + 6 + 20 + (uint32_t)chunk;
        assert_int_equal(ones_sum(s + 34, 20 + chunk, pseudo), 0xffff);      /* TCP checksum */
    }

    /* A TSO request on something that is not TCP/IPv4, or with no segment
     * size: dropped. */
    f[23] = 17;
    memcpy(host(d, BUF + HDR), f, sizeof f);
    vdrv_post(&d->v, TXQ, 0);
    vdrv_notify(&d->v, TXQ);
    f[23] = 6;
    hdr[4] = hdr[5] = 0;
    memcpy(host(d, BUF), hdr, HDR);
    memcpy(host(d, BUF + HDR), f, sizeof f);
    vdrv_post(&d->v, TXQ, 0);
    vdrv_notify(&d->v, TXQ);
    assert_int_equal(vdrv_used_idx(&d->v, TXQ), 3);
    assert_int_equal(d->fb.nsent, 3);
    assert_false(vdrv_broken(&d->v));
}

/* VIRTIO_NET_F_GUEST_CSUM: frames from a backend with known-good checksums
 * are marked DATA_VALID; from others (TAP), or without the feature, not. */
static void test_rx_data_valid(void **state) {
    struct drv *d = *state;
    uint8_t f[80];
    make_frame(f, sizeof f, 5);
    for (int round = 0; round < 3; round++) {
        bool feature = round != 1, valid = round != 2;
        virtio_net_set_backend(d->net, (struct net_backend){&fb_ops, &d->fb, .rx_checksums_valid = valid});
        full_init(d, F_V1 | (feature ? 1ull << VIRTIO_NET_F_GUEST_CSUM : 0));
        memset(host(d, BUF), 0xaa, HDR);
        post_rx(d, 0, BUF, 1526);
        assert_true(deliver(d, f, sizeof f));
        assert_int_equal(vdrv_used_idx(&d->v, RXQ), 1);
        assert_int_equal(*host(d, BUF), feature && valid ? VIRTIO_NET_HDR_F_DATA_VALID : 0);
    }
}

static void test_tx_bad_chains_dropped(void **state) {
    struct drv *d = *state;
    full_init(d, F_V1);
    /* Shorter than the header; header only; header and a runt; writable
     * buffers only; a frame longer than any MTU. All are returned, none sent. */
    vdrv_set_desc(&d->v, TXQ, 0, BUF, 5, 0, 0);
    vdrv_set_desc(&d->v, TXQ, 1, BUF, HDR, 0, 0);
    vdrv_set_desc(&d->v, TXQ, 2, BUF, HDR + 13, 0, 0);
    vdrv_set_desc(&d->v, TXQ, 3, BUF, 1500, VIRTQ_DESC_F_WRITE, 0);
    vdrv_set_desc(&d->v, TXQ, 4, BUF, HDR + NET_MAX_FRAME + 1, 0, 0);
    for (uint16_t i = 0; i < 5; i++) vdrv_post(&d->v, TXQ, i);
    vdrv_notify(&d->v, TXQ);
    assert_int_equal(vdrv_used_idx(&d->v, TXQ), 5);
    assert_int_equal(d->fb.nsent, 0);
    assert_false(vdrv_broken(&d->v));
    /* The largest frame is still sent. */
    vdrv_set_desc(&d->v, TXQ, 5, BUF, HDR + NET_MAX_FRAME, 0, 0);
    vdrv_post(&d->v, TXQ, 5);
    vdrv_notify(&d->v, TXQ);
    assert_int_equal(vdrv_used_idx(&d->v, TXQ), 6);
    assert_int_equal(d->fb.nsent, 1);
    assert_int_equal(d->fb.len[0], NET_MAX_FRAME);
}

static void test_tx_buffer_outside_memory(void **state) {
    struct drv *d = *state;
    full_init(d, F_V1);
    vdrv_set_desc(&d->v, TXQ, 0, MEM_BASE + MEM_SIZE - 50, 100, 0, 0);
    vdrv_post(&d->v, TXQ, 0);
    vdrv_notify(&d->v, TXQ);
    assert_true(vdrv_broken(&d->v));
    assert_int_equal(d->fb.nsent, 0);
    /* A huge length that wraps, after a reset. */
    full_init(d, F_V1);
    vdrv_set_desc(&d->v, TXQ, 0, BUF, 0xffffffffu, 0, 0);
    vdrv_post(&d->v, TXQ, 0);
    vdrv_notify(&d->v, TXQ);
    assert_int_equal(d->fb.nsent, 0);
    assert_true(vdrv_used_idx(&d->v, TXQ) == 1 || vdrv_broken(&d->v));
    /* A descriptor loop. */
    full_init(d, F_V1);
    vdrv_set_desc(&d->v, TXQ, 0, BUF, 64, VIRTQ_DESC_F_NEXT, 1);
    vdrv_set_desc(&d->v, TXQ, 1, BUF, 64, VIRTQ_DESC_F_NEXT, 0);
    vdrv_post(&d->v, TXQ, 0);
    vdrv_notify(&d->v, TXQ);
    assert_true(vdrv_broken(&d->v));
    assert_int_equal(d->fb.nsent, 0);
}

static void test_rx_basic(void **state) {
    struct drv *d = *state;
    full_init(d, F_V1 | F_MAC);
    memset(host(d, BUF), 0xaa, 2048);
    post_rx(d, 0, BUF, 1526);
    vdrv_notify(&d->v, RXQ);
    assert_int_equal(vdrv_used_idx(&d->v, RXQ), 0);
    uint8_t f[200];
    make_frame(f, sizeof f, 3);
    assert_true(deliver(d, f, sizeof f));
    assert_int_equal(vdrv_used_idx(&d->v, RXQ), 1);
    assert_int_equal(vdrv_used_id(&d->v, RXQ, 0), 0);
    assert_int_equal(vdrv_used_len(&d->v, RXQ, 0), HDR + sizeof f);
    static const uint8_t want_hdr[HDR] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
    assert_memory_equal(host(d, BUF), want_hdr, HDR);
    assert_memory_equal(host(d, BUF + HDR), f, sizeof f);
    assert_int_equal(*host(d, BUF + HDR + sizeof f), 0xaa); /* nothing beyond */
    assert_true(d->irq_level);
    assert_int_equal(d->fb.resumes, 0);

    /* A chain of three buffers, the header split over two of them. */
    vdrv_set_desc(&d->v, RXQ, 1, BUF + 0x1000, 4, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
    vdrv_set_desc(&d->v, RXQ, 2, BUF + 0x2000, 100, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 3);
    vdrv_set_desc(&d->v, RXQ, 3, BUF + 0x3000, 200, VIRTQ_DESC_F_WRITE, 0);
    vdrv_post(&d->v, RXQ, 1);
    make_frame(f, sizeof f, 4);
    assert_true(deliver(d, f, sizeof f));
    assert_int_equal(vdrv_used_idx(&d->v, RXQ), 2);
    assert_int_equal(vdrv_used_id(&d->v, RXQ, 1), 1);
    assert_int_equal(vdrv_used_len(&d->v, RXQ, 1), HDR + sizeof f);
    assert_int_equal(*host(d, BUF + 0x2000 + 6), 1); /* num_buffers */
    assert_memory_equal(host(d, BUF + 0x2000 + 8), f, 92);
    assert_memory_equal(host(d, BUF + 0x3000), f + 92, sizeof f - 92);
}

static void test_rx_waits_for_buffers(void **state) {
    struct drv *d = *state;
    full_init(d, F_V1);
    uint8_t f[64];
    /* No buffers: the frames wait and the backend is told to hold back. */
    for (uint8_t i = 0; i < 3; i++) {
        make_frame(f, sizeof f, i);
        assert_false(deliver(d, f, sizeof f));
    }
    assert_int_equal(vdrv_used_idx(&d->v, RXQ), 0);
    assert_false(d->irq_level);
    /* Two buffers: the first two frames, in order; still holding back. */
    post_rx(d, 0, BUF, 1526);
    post_rx(d, 1, BUF + 0x1000, 1526);
    vdrv_notify(&d->v, RXQ);
    assert_int_equal(vdrv_used_idx(&d->v, RXQ), 2);
    assert_true(d->irq_level);
    assert_int_equal(d->fb.resumes, 0);
    make_frame(f, sizeof f, 0);
    assert_memory_equal(host(d, BUF + HDR), f, sizeof f);
    make_frame(f, sizeof f, 1);
    assert_memory_equal(host(d, BUF + 0x1000 + HDR), f, sizeof f);
    /* The third, then the backend may go on. */
    post_rx(d, 2, BUF + 0x2000, 1526);
    post_rx(d, 3, BUF + 0x3000, 1526);
    vdrv_notify(&d->v, RXQ);
    assert_int_equal(vdrv_used_idx(&d->v, RXQ), 3);
    make_frame(f, sizeof f, 2);
    assert_memory_equal(host(d, BUF + 0x2000 + HDR), f, sizeof f);
    assert_int_equal(d->fb.resumes, 1);
    /* A new frame goes straight in. */
    make_frame(f, sizeof f, 9);
    assert_true(deliver(d, f, sizeof f));
    assert_int_equal(vdrv_used_idx(&d->v, RXQ), 4);
    assert_memory_equal(host(d, BUF + 0x3000 + HDR), f, sizeof f);
}

static void test_rx_pending_is_bounded(void **state) {
    struct drv *d = *state;
    full_init(d, F_V1);
    uint8_t f[60];
    for (unsigned i = 0; i < VIRTIO_NET_RX_PENDING + 50; i++) {
        make_frame(f, sizeof f, (uint8_t)i);
        memcpy(f, &i, sizeof i);
        assert_false(deliver(d, f, sizeof f));
    }
    /* Take them through QSIZE buffers, reposting each one returned: the
     * first VIRTIO_NET_RX_PENDING arrive, in order. */
    for (unsigned i = 0; i < QSIZE; i++) post_rx(d, i, BUF + 0x800 * i, 1526);
    vdrv_notify(&d->v, RXQ);
    unsigned got = 0;
    while (got < vdrv_used_idx(&d->v, RXQ)) {
        unsigned id = vdrv_used_id(&d->v, RXQ, got);
        unsigned seq;
        memcpy(&seq, host(d, BUF + 0x800 * id + HDR), sizeof seq);
        assert_int_equal(seq, got);
        got++;
        post_rx(d, id, BUF + 0x800 * id, 1526);
        vdrv_notify(&d->v, RXQ);
    }
    assert_int_equal(got, VIRTIO_NET_RX_PENDING);
    assert_int_equal(d->fb.resumes, 1);
}

static void test_rx_buffer_too_small(void **state) {
    struct drv *d = *state;
    full_init(d, F_V1);
    memset(host(d, BUF), 0xaa, 4096);
    post_rx(d, 0, BUF, 100);
    post_rx(d, 1, BUF + 0x1000, 2000);
    uint8_t f[1514];
    make_frame(f, sizeof f, 5);
    assert_true(deliver(d, f, sizeof f));
    /* Returned empty, nothing written; the next frame uses the next buffer. */
    assert_int_equal(vdrv_used_idx(&d->v, RXQ), 1);
    assert_int_equal(vdrv_used_len(&d->v, RXQ, 0), 0);
    for (unsigned i = 0; i < 100; i++) assert_int_equal(*host(d, BUF + i), 0xaa);
    assert_true(deliver(d, f, sizeof f));
    assert_int_equal(vdrv_used_idx(&d->v, RXQ), 2);
    assert_int_equal(vdrv_used_len(&d->v, RXQ, 1), HDR + sizeof f);
    /* Exactly fitting; a read-only chain gets nothing. */
    post_rx(d, 2, BUF + 0x2000, HDR + 60);
    vdrv_set_desc(&d->v, RXQ, 3, BUF + 0x3000, 2000, 0, 0);
    vdrv_post(&d->v, RXQ, 3);
    assert_true(deliver(d, f, 60));
    assert_int_equal(vdrv_used_len(&d->v, RXQ, 2), HDR + 60);
    assert_true(deliver(d, f, 60));
    assert_int_equal(vdrv_used_idx(&d->v, RXQ), 4);
    assert_int_equal(vdrv_used_len(&d->v, RXQ, 3), 0);
    assert_false(vdrv_broken(&d->v));
    /* Oversized frames from a backend are refused outright. */
    static uint8_t huge[NET_MAX_FRAME + 1];
    assert_true(deliver(d, huge, sizeof huge));
    assert_int_equal(vdrv_used_idx(&d->v, RXQ), 4);
}

static void test_rx_malformed(void **state) {
    struct drv *d = *state;
    uint8_t f[64];
    make_frame(f, sizeof f, 6);
    /* A receive buffer outside guest memory breaks the device. */
    full_init(d, F_V1);
    post_rx(d, 0, MEM_BASE + MEM_SIZE - 20, 1526);
    assert_true(deliver(d, f, sizeof f));
    assert_true(vdrv_broken(&d->v));
    /* Broken: later frames are dropped, no crash, no pile-up. */
    for (int i = 0; i < 300; i++) assert_true(deliver(d, f, sizeof f));
    /* A wrapping address. */
    full_init(d, F_V1);
    post_rx(d, 0, 0xfffffffffffffff0ull, 1526);
    assert_true(deliver(d, f, sizeof f));
    assert_true(vdrv_broken(&d->v));
    /* A descriptor index out of range. */
    full_init(d, F_V1);
    vdrv_post(&d->v, RXQ, 200);
    assert_true(deliver(d, f, sizeof f));
    assert_true(vdrv_broken(&d->v));
    /* And the device works again after a reset. */
    full_init(d, F_V1);
    post_rx(d, 0, BUF, 1526);
    assert_true(deliver(d, f, sizeof f));
    assert_int_equal(vdrv_used_len(&d->v, RXQ, 0), HDR + sizeof f);
}

static void test_rx_before_driver_ok(void **state) {
    struct drv *d = *state;
    uint8_t f[64] = {0};
    /* No driver yet: dropped, and the backend is not held back. */
    assert_true(deliver(d, f, sizeof f));
    full_init(d, F_V1);
    post_rx(d, 0, BUF, 1526);
    vdrv_notify(&d->v, RXQ);
    assert_int_equal(vdrv_used_idx(&d->v, RXQ), 0);
}

static void test_reset_drops_pending(void **state) {
    struct drv *d = *state;
    full_init(d, F_V1);
    uint8_t f[64];
    make_frame(f, sizeof f, 7);
    assert_false(deliver(d, f, sizeof f));
    vdrv_wr(&d->v, VIRTIO_MMIO_STATUS, 0);
    assert_int_equal(d->fb.resumes, 1);
    full_init(d, F_V1);
    post_rx(d, 0, BUF, 1526);
    vdrv_notify(&d->v, RXQ);
    assert_int_equal(vdrv_used_idx(&d->v, RXQ), 0); /* the old frame is gone */
}

static bool wait_for(uint16_t (*get)(struct vdrv *, unsigned), struct drv *d, unsigned q, uint16_t want) {
    for (int i = 0; i < 2000; i++) {
        if (get(&d->v, q) == want) return true;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return false;
}

/* On a real loop: notifies are answered on the loop thread. */
static void test_on_event_loop(void **state) {
    struct drv *d = *state;
    full_init(d, F_V1 | F_EVIDX);
    uint8_t f[300];
    for (unsigned i = 0; i < QSIZE; i++) {
        make_frame(f, sizeof f, (uint8_t)i);
        memset(host(d, BUF + 0x800 * i), 0, HDR);
        memcpy(host(d, BUF + 0x800 * i + HDR), f, sizeof f);
        vdrv_set_desc(&d->v, TXQ, i, BUF + 0x800 * i, HDR + sizeof f, 0, 0);
        vdrv_post(&d->v, TXQ, (uint16_t)i);
    }
    vdrv_notify(&d->v, TXQ);
    /* The card returns each chain before sending its copy of the frame. */
    for (int i = 0; i < 2000 && __atomic_load_n(&d->fb.nsent, __ATOMIC_SEQ_CST) < QSIZE; i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    assert_int_equal(__atomic_load_n(&d->fb.nsent, __ATOMIC_SEQ_CST), QSIZE);
    assert_true(wait_for(vdrv_used_idx, d, TXQ, QSIZE));
    make_frame(f, sizeof f, 7);
    assert_memory_equal(d->fb.frame[7], f, sizeof f);

    /* Receive without buffers, then buffers: delivered, backend resumed. */
    assert_false(deliver(d, f, sizeof f));
    post_rx(d, 0, BUF + 0x10000, 1526);
    vdrv_notify(&d->v, RXQ);
    assert_true(wait_for(vdrv_used_idx, d, RXQ, 1));
    assert_memory_equal(host(d, BUF + 0x10000 + HDR), f, sizeof f);
    for (int i = 0; i < 2000 && !__atomic_load_n(&d->fb.resumes, __ATOMIC_SEQ_CST); i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    assert_int_equal(__atomic_load_n(&d->fb.resumes, __ATOMIC_SEQ_CST), 1);
}

/* ---- options ---- */

static void expect_error(const char *opts, const char *needle) {
    char err[512] = "";
    struct virtio_backend_env env = {0};
    struct virtio_backend out;
    assert_false(virtio_net_backend_create(opts, &env, &out, err, sizeof err));
    if (!strstr(err, needle)) fail_msg("'%s': error '%s' lacks '%s'", opts ? opts : "(null)", err, needle);
}

static void test_options(void **state) {
    (void)state;
    expect_error("", "expected user");
    expect_error(NULL, "expected user");
    expect_error("usr", "expected user");
    expect_error("user=1", "expected user");
    expect_error("tap", "tap=IFNAME");
    expect_error("tap=", "tap=IFNAME");
    expect_error("user,", "empty field");
    expect_error("user,,mac=52:54:00:00:00:01", "empty field");
    expect_error("user,foo=bar", "unknown option 'foo=bar'");
    expect_error("user,hostfwd", "unknown option 'hostfwd'");
    expect_error("tap=x,hostfwd=tcp::1-:2", "unknown option 'hostfwd=tcp::1-:2' (tap takes mac=)");
    expect_error("user,mac=52:54:00:00:00", "bad mac");
    expect_error("user,mac=53:54:00:00:00:01", "bad mac"); /* multicast */
    expect_error("user,mac=00:00:00:00:00:00", "bad mac");
    expect_error("user,mac=52-54-00-00-00-01", "bad mac");
    expect_error("user,hostfwd=tcp:5555-:22", "bad hostfwd");
    expect_error("user,hostfwd=tcp::0-:22", "bad hostfwd");
    expect_error("user,hostfwd=tcp::65536-:22", "bad hostfwd");
    expect_error("user,hostfwd=sctp::5555-:22", "bad hostfwd");
    expect_error("user,hostfwd=tcp::5555-:22-", "bad hostfwd");
    expect_error("user,hostfwd=tcp:1.2.3:5555-:22", "bad hostfwd");
    expect_error("user,hostfwd=tcp::55a5-:22", "bad hostfwd");
    char many[1024] = "user";
    for (int i = 0; i < SLIRP_MAX_HOSTFWDS + 1; i++) snprintf(many + strlen(many), 40, ",hostfwd=tcp::%d-:80", 2000 + i);
    expect_error(many, "at most");
    /* Well-formed, but the test has no event loop. */
    expect_error("user,hostfwd=tcp::5555-:22,mac=52:54:00:12:34:56", "event loop");
    expect_error("tap=rvtest0", "event loop");
}

static void test_mac_and_hostfwd_parsing(void **state) {
    (void)state;
    uint8_t mac[6];
    assert_true(virtio_net_parse_mac("52:54:00:Ab:cD:ef", mac));
    assert_memory_equal(mac, ((uint8_t[]){0x52, 0x54, 0x00, 0xab, 0xcd, 0xef}), 6);
    assert_false(virtio_net_parse_mac("52:54:00:ab:cd:ef:", mac));
    assert_false(virtio_net_parse_mac("52:54:00:ab:cd:eg", mac));
    assert_false(virtio_net_parse_mac("ff:ff:ff:ff:ff:ff", mac));

    char err[256];
    struct slirp_hostfwd f;
    assert_true(slirp_hostfwd_parse("tcp::5555-:22", &f, err, sizeof err));
    assert_false(f.udp);
    assert_int_equal(f.host_addr, 0);
    assert_int_equal(f.host_port, 5555);
    assert_int_equal(f.guest_addr, 0);
    assert_int_equal(f.guest_port, 22);
    assert_true(slirp_hostfwd_parse("udp:127.0.0.1:6000-10.0.2.20:53", &f, err, sizeof err));
    assert_true(f.udp);
    assert_int_equal(f.host_addr, htonl(0x7f000001));
    assert_int_equal(f.guest_addr, htonl(0x0a000214));
    assert_int_equal(f.host_port, 6000);
    assert_int_equal(f.guest_port, 53);
    assert_true(slirp_hostfwd_parse("::8080-:80", &f, err, sizeof err)); /* tcp by default */
    assert_false(f.udp);
    assert_false(slirp_hostfwd_parse("tcp::8080", &f, err, sizeof err));
    assert_false(slirp_hostfwd_parse("", &f, err, sizeof err));
    assert_false(slirp_hostfwd_parse("tcp::8080-:", &f, err, sizeof err));
    assert_false(slirp_hostfwd_parse("tcp:::8080-:80", &f, err, sizeof err));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_probe_and_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_strips_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_checksum_offload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_data_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_tso, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_bad_chains_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_buffer_outside_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_waits_for_buffers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_pending_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_buffer_too_small, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_before_driver_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_drops_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_on_event_loop, setup_loop, teardown),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_mac_and_hostfwd_parsing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
