/* virtio network card (virtio 1.2 section 5.1). */
#include "dev/virtio_net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "io/event_loop.h"
#include "io/snap_file.h"

#define ETH_HEADER 14

struct pending_frame {
    uint8_t *data;
    size_t len;
};

struct virtio_net {
    struct virtio_mmio *t;      /* set by attach; read with __atomic */
    struct event_loop *loop;
    struct event_notifier *tx_kick, *rx_kick;
    struct net_backend backend; /* ops NULL until set */
    uint8_t config[8];          /* mac[6], status (le16) */

    /* Under the transport lock. */
    struct virtq_chain rx_chain, tx_chain; /* too big for a stack */
    struct pending_frame pending[VIRTIO_NET_RX_PENDING];
    unsigned pend_head, pend_count;
    bool backend_held;          /* deliver said "no more": owe the backend a resume */

    /* Loop thread only (or the notifying thread without a loop). */
    uint8_t txbuf[NET_MAX_FRAME];
    uint8_t txhdr[VIRTIO_NET_HDR_LEN]; /* the virtio header of the frame in txbuf */
    uint8_t segbuf[NET_MAX_FRAME];     /* one segment of a TSO frame */
};

enum rx_result { RX_DONE, RX_NOBUF, RX_DOWN };

static struct virtio_mmio *transport(struct virtio_net *n) { return __atomic_load_n(&n->t, __ATOMIC_ACQUIRE); }

static void resume_backend(struct virtio_net *n) {
    if (n->backend.ops) n->backend.ops->resume(n->backend.be);
}

/* ---- checksum offload ---- */

/* One's-complement sum of len bytes (big-endian 16-bit words), added to sum. */
static uint64_t sum16(uint64_t sum, const uint8_t *p, size_t len) {
    size_t i = 0;
    for (; i + 1 < len; i += 2) sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (i < len) sum += (uint32_t)p[i] << 8;
    return sum;
}

static uint16_t fold(uint64_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

static void put_be16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint16_t get_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint16_t get_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* The Internet checksum the driver left to us (VIRTIO_NET_F_CSUM): the
 * one's-complement sum of the frame from csum_start on, the field at
 * csum_start + csum_offset holding the pseudo-header sum the driver put
 * there, folded, complemented and stored in that field. False (the frame is
 * dropped) if the driver's offsets do not fit the frame. */
static bool finish_checksum(uint8_t *frame, size_t len, uint16_t start, uint16_t offset) {
    if ((size_t)start + offset + 2 > len) return false;
    put_be16(frame + start + offset, (uint16_t)~fold(sum16(0, frame + start, len - start)));
    return true;
}

/* ---- segmentation offload (VIRTIO_NET_F_HOST_TSO4) ----
 *
 * The driver hands over one TCP/IPv4 frame of up to 64 KiB and the segment
 * size; the device cuts it into frames of that much payload, each with its
 * own IP length, id and header checksum, TCP sequence number, flags and
 * checksum, as a NIC would. The guest then runs its TCP transmit path once
 * per 64 KiB instead of once per 1.4 KiB. */

#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

static void backend_send(struct virtio_net *n, const uint8_t *frame, size_t len) {
    n->backend.ops->send(n->backend.be, frame, len);
}

/* Sends each segment of the TSO frame in frame[0..len); a frame that is not
 * TCP/IPv4 as the header says, or has no segment size, is dropped. */
static void segment_tcp4(struct virtio_net *n, const uint8_t *frame, size_t len, uint16_t mss) {
    if (len < ETH_HEADER + 20 || get_be16(frame + 12) != 0x0800 || (frame[14] >> 4) != 4 || mss == 0) return;
    size_t ip = ETH_HEADER, iphl = (size_t)(frame[ip] & 0xf) * 4;
    if (iphl < 20 || frame[ip + 9] != 6 || ip + iphl + 20 > len) return;
    size_t tcp = ip + iphl, tcphl = (size_t)(frame[tcp + 12] >> 4) * 4;
    if (tcphl < 20 || tcp + tcphl > len) return;
    size_t hl = tcp + tcphl, payload = len - hl;
    if (hl + mss > sizeof n->segbuf) return;
    uint16_t id = get_be16(frame + ip + 4);
    uint32_t seq = (uint32_t)get_be16(frame + tcp + 4) << 16 | get_be16(frame + tcp + 6);
    uint8_t flags = frame[tcp + 13];
    size_t off = 0;
    unsigned k = 0;
    do {
        size_t chunk = payload - off < mss ? payload - off : mss;
        bool last = off + chunk >= payload;
        uint8_t *s = n->segbuf;
        memcpy(s, frame, hl);
        memcpy(s + hl, frame + hl + off, chunk);
        put_be16(s + ip + 2, (uint16_t)(iphl + tcphl + chunk));
        put_be16(s + ip + 4, (uint16_t)(id + k));
        put_be16(s + ip + 10, 0);
        put_be16(s + ip + 10, (uint16_t)~fold(sum16(0, s + ip, iphl)));
        uint32_t sq = seq + (uint32_t)off;
        put_be16(s + tcp + 4, (uint16_t)(sq >> 16));
        put_be16(s + tcp + 6, (uint16_t)sq);
        s[tcp + 13] = (uint8_t)(flags & ~(last ? 0 : TCP_FIN | TCP_PSH) & ~(k ? TCP_CWR : 0));
        /* Pseudo header: addresses, protocol, TCP length. */
        uint64_t sum = sum16(0, s + ip + 12, 8) + 6 + tcphl + chunk;
        put_be16(s + tcp + 16, 0);
        put_be16(s + tcp + 16, (uint16_t)~fold(sum16(sum, s + tcp, tcphl + chunk)));
        backend_send(n, s, hl + chunk);
        off += chunk;
        k++;
    } while (off < payload);
}

/* ---- receive: host to guest ---- */

/* Puts one frame in the next receive chain (lock held). */
static enum rx_result rx_put(struct virtio_net *n, struct virtio_mmio *t, const uint8_t *frame, size_t len) {
    int got = virtio_mmio_queue_pop(t, VIRTIO_NET_RXQ, &n->rx_chain);
    /* Not running, broken now, or (VIRTIO_MMIO_AGAIN) the ring has no frame just now: the frame is lost. */
    if (got < 0) return RX_DOWN;
    if (got == 0) return RX_NOBUF;
    const struct virtq_chain *c = &n->rx_chain;
    const struct guest_mem_ops *m = virtio_mmio_mem(t);
    uint32_t used = 0;
    /* A chain too small for the frame goes back empty and the frame is
     * lost, as one too long for the wire would be; the driver counts a
     * length error and reposts the buffer. */
    if (c->write_len >= VIRTIO_NET_HDR_LEN + (uint64_t)len) {
        /* flags, gso_type, hdr_len, gso_size, csum_start, csum_offset: no
         * segmentation; num_buffers = 1 (le16). A backend whose checksums
         * are known good spares the guest verifying them: in an emulated
         * guest that is a loop over every byte received. */
        uint8_t hdr[VIRTIO_NET_HDR_LEN] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
        if (n->backend.rx_checksums_valid && (virtio_mmio_driver_features(t) & (1ull << VIRTIO_NET_F_GUEST_CSUM)))
            hdr[0] = VIRTIO_NET_HDR_F_DATA_VALID;
        if (virtq_chain_write(c, m, 0, hdr, sizeof hdr) && virtq_chain_write(c, m, VIRTIO_NET_HDR_LEN, frame, len))
            used = (uint32_t)(VIRTIO_NET_HDR_LEN + len);
        else if (virtio_mmio_dma_refused(t, "receive buffer not in guest memory"))
            return RX_DOWN;
        /* else no frame could back the buffer just now: it goes back
         * empty and the frame is lost, as on a congested link. */
    }
    if (!virtio_mmio_queue_push(t, VIRTIO_NET_RXQ, c->head, used)) return RX_DOWN;
    return RX_DONE;
}

static void pending_drop_front(struct virtio_net *n) {
    free(n->pending[n->pend_head].data);
    n->pending[n->pend_head] = (struct pending_frame){NULL, 0};
    n->pend_head = (n->pend_head + 1) % VIRTIO_NET_RX_PENDING;
    n->pend_count--;
}

static void pending_clear(struct virtio_net *n) {
    while (n->pend_count) pending_drop_front(n);
    n->pend_head = 0;
}

static void pending_add(struct virtio_net *n, const uint8_t *frame, size_t len) {
    if (n->pend_count == VIRTIO_NET_RX_PENDING) return; /* dropped */
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) return;
    memcpy(copy, frame, len);
    n->pending[(n->pend_head + n->pend_count) % VIRTIO_NET_RX_PENDING] = (struct pending_frame){copy, len};
    n->pend_count++;
}

/* Moves waiting frames into receive buffers (lock held); true if any went. */
static bool pending_flush(struct virtio_net *n, struct virtio_mmio *t) {
    bool any = false;
    while (n->pend_count) {
        struct pending_frame *f = &n->pending[n->pend_head];
        enum rx_result r = rx_put(n, t, f->data, f->len);
        if (r == RX_NOBUF) break;
        if (r == RX_DONE) any = true;
        pending_drop_front(n); /* delivered, or the card went down */
    }
    return any;
}

/* net_peer.deliver: runs on the loop thread without the lock. */
static bool net_deliver(void *ctx, const uint8_t *frame, size_t len) {
    struct virtio_net *n = ctx;
    struct virtio_mmio *t = transport(n);
    if (!t || len > NET_MAX_FRAME) return true; /* dropped */
    virtio_mmio_lock(t);
    bool any = pending_flush(n, t);
    if (n->pend_count == 0) {
        enum rx_result r = rx_put(n, t, frame, len);
        if (r == RX_DONE) any = true;
        if (r == RX_NOBUF) pending_add(n, frame, len);
        /* RX_DOWN: the driver is not running; a card with its link to
         * nothing drops the frame. */
    } else {
        pending_add(n, frame, len); /* keeps the order */
    }
    if (any) virtio_mmio_queue_interrupt(t, VIRTIO_NET_RXQ);
    bool more = n->pend_count == 0;
    if (!more) n->backend_held = true;
    virtio_mmio_unlock(t);
    return more;
}

/* The driver posted receive buffers (lock held). True if the backend is
 * owed a resume. */
static bool rx_kick_locked(struct virtio_net *n, struct virtio_mmio *t) {
    if (pending_flush(n, t)) virtio_mmio_queue_interrupt(t, VIRTIO_NET_RXQ);
    if (n->pend_count || !n->backend_held) return false;
    n->backend_held = false;
    return true;
}

static void rx_kick_cb(void *ctx) {
    struct virtio_net *n = ctx;
    struct virtio_mmio *t = transport(n);
    if (!t) return;
    virtio_mmio_lock(t);
    bool resume = rx_kick_locked(n, t);
    virtio_mmio_unlock(t);
    if (resume) resume_backend(n);
}

/* ---- transmit: guest to host ---- */

/* Takes one transmit chain (lock held) and copies its frame, header
 * stripped, into txbuf: *len is its length, 0 when it is not sent. False
 * when there is no chain. */
static bool tx_take(struct virtio_net *n, struct virtio_mmio *t, size_t *len) {
    if (virtio_mmio_queue_pop(t, VIRTIO_NET_TXQ, &n->tx_chain) <= 0) return false;
    const struct virtq_chain *c = &n->tx_chain;
    const struct guest_mem_ops *m = virtio_mmio_mem(t);
    *len = 0;
    /* Runts and frames longer than any MTU are dropped, not sent. */
    if (c->read_len >= VIRTIO_NET_HDR_LEN + ETH_HEADER && c->read_len - VIRTIO_NET_HDR_LEN <= NET_MAX_FRAME) {
        uint64_t skip = VIRTIO_NET_HDR_LEN;
        size_t pos = 0;
        for (unsigned s = 0; s < c->nread; s++) {
            uint64_t gpa = c->seg[s].gpa, seglen = c->seg[s].len;
            if (seglen <= skip) {
                skip -= seglen;
                continue;
            }
            gpa += skip;
            seglen -= skip;
            skip = 0;
            if (!m->read(m->ctx, gpa, n->txbuf + pos, seglen)) {
                if (virtio_mmio_dma_refused(t, "transmit buffer not in guest memory")) return false;
                pos = 0; /* swapped out, no frame to read it back just now: dropped */
                goto done;
            }
            pos += seglen;
        }
        if (!virtq_chain_read(c, m, 0, n->txhdr, sizeof n->txhdr)) {
            if (virtio_mmio_dma_refused(t, "transmit buffer not in guest memory")) return false;
            goto done;
        }
        *len = pos;
        /* Offload requests count only if their feature was negotiated. */
        uint64_t f = virtio_mmio_driver_features(t);
        if (!(f & (1ull << VIRTIO_NET_F_CSUM))) n->txhdr[0] &= (uint8_t)~VIRTIO_NET_HDR_F_NEEDS_CSUM;
        if (!(f & (1ull << VIRTIO_NET_F_HOST_TSO4))) n->txhdr[1] = VIRTIO_NET_HDR_GSO_NONE;
    }
done:
    return virtio_mmio_queue_push(t, VIRTIO_NET_TXQ, c->head, 0);
}

/* Sends the frame in txbuf as its virtio header (txhdr) asks: cut into
 * segments, or with its checksum finished, or as it is. Frames whose
 * header does not fit them are dropped. */
static void tx_send(struct virtio_net *n, uint8_t *frame, size_t len) {
    const uint8_t *h = n->txhdr;
    uint8_t gso = h[1] & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
    if (gso == VIRTIO_NET_HDR_GSO_TCPV4) {
        /* Each segment's checksums are computed whole: NEEDS_CSUM is implied. */
        segment_tcp4(n, frame, len, get_le16(h + 4));
        return;
    }
    if (gso != VIRTIO_NET_HDR_GSO_NONE) return; /* UDP, IPv6: never offered */
    if ((h[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
        !finish_checksum(frame, len, get_le16(h + 6), get_le16(h + 8)))
        return;
    backend_send(n, frame, len);
}

/* Sends what the driver queued. On the loop thread (lock not held; it is
 * dropped around each send, where a backend may deliver frames back) or,
 * without a loop, on the notifying thread with the lock held. */
static void tx_run(struct virtio_net *n, struct virtio_mmio *t, bool locked) {
    if (!locked) virtio_mmio_lock(t);
    unsigned done = 0;
    bool more = false;
    for (;;) {
        if (!locked && done == VIRTIO_NET_TX_BATCH) {
            more = true;
            break;
        }
        size_t len;
        if (!tx_take(n, t, &len)) break;
        done++;
        if (!len || !n->backend.ops) continue;
        if (!locked) virtio_mmio_unlock(t);
        tx_send(n, n->txbuf, len);
        if (!locked) virtio_mmio_lock(t);
    }
    if (done) virtio_mmio_queue_interrupt(t, VIRTIO_NET_TXQ);
    if (!locked) virtio_mmio_unlock(t);
    if (more) event_notifier_signal(n->tx_kick); /* the rest on a later round */
}

static void tx_kick_cb(void *ctx) {
    struct virtio_net *n = ctx;
    struct virtio_mmio *t = transport(n);
    if (t) tx_run(n, t, false);
}

/* ---- the device ---- */

static void net_notify(void *dev, struct virtio_mmio *t, unsigned q) {
    struct virtio_net *n = dev;
    if (q == VIRTIO_NET_TXQ) {
        if (n->loop)
            event_notifier_signal(n->tx_kick);
        else
            tx_run(n, t, true);
    } else if (q == VIRTIO_NET_RXQ) {
        if (n->loop)
            event_notifier_signal(n->rx_kick);
        else if (rx_kick_locked(n, t))
            resume_backend(n);
    }
}

static void net_reset(void *dev) {
    struct virtio_net *n = dev;
    pending_clear(n);
    if (!n->backend_held) return;
    /* Frames are dropped until the driver is back: nothing to hold back. */
    if (n->loop) {
        event_notifier_signal(n->rx_kick);
    } else {
        n->backend_held = false;
        resume_backend(n);
    }
}

static uint64_t net_config_read(void *dev, uint64_t off, unsigned size) {
    struct virtio_net *n = dev;
    uint64_t v = 0;
    for (unsigned i = 0; i < size && i < 8; i++) {
        uint64_t at = off + i;
        if (at < sizeof n->config) v |= (uint64_t)n->config[at] << (8 * i);
    }
    return v;
}

static void net_config_write(void *dev, uint64_t off, uint64_t val, unsigned size) {
    /* The MAC is read-only for a VERSION_1 driver; status always is. */
    (void)dev, (void)off, (void)val, (void)size;
}

/* Saved state (in the transport's section): the config space, so the
 * guest keeps its MAC even if the restored card was built without mac=.
 * Frames waiting for receive buffers (pending[]) are not saved: a network
 * may lose packets, and the guest's protocols recover. */
static bool net_save(void *dev, struct snap_writer *w) {
    struct virtio_net *n = dev;
    return snap_write(w, n->config, sizeof n->config);
}

static bool net_load(void *dev, struct snap_cursor *c, char *err, size_t errlen) {
    struct virtio_net *n = dev;
    uint8_t cfg[sizeof n->config];
    /* A unicast MAC, and status bits this card has (LINK_UP, le16). */
    if (!snap_get_bytes(c, cfg, sizeof cfg) || (cfg[0] & 1) || (cfg[6] & ~VIRTIO_NET_S_LINK_UP) || cfg[7]) {
        snprintf(err, errlen, "virtio-net: saved config space truncated or invalid");
        return false;
    }
    memcpy(n->config, cfg, sizeof cfg);
    return true;
}

const struct virtio_device_ops virtio_net_ops = {
    .device_id = VIRTIO_ID_NET,
    .features = (1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM) | (1ull << VIRTIO_NET_F_MAC) |
                (1ull << VIRTIO_NET_F_HOST_TSO4) | (1ull << VIRTIO_NET_F_STATUS),
    .num_queues = 2,
    .queue_max = VIRTIO_NET_QUEUE_SIZE,
    .config_read = net_config_read,
    .config_write = net_config_write,
    .notify = net_notify,
    .reset = net_reset,
    .save = net_save,
    .load = net_load,
};

struct virtio_net *virtio_net_create(struct event_loop *loop, const uint8_t mac[6]) {
    struct virtio_net *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->loop = loop;
    memcpy(n->config, mac, 6);
    n->config[6] = VIRTIO_NET_S_LINK_UP;
    if (loop) {
        n->tx_kick = event_notifier_create(loop, tx_kick_cb, n);
        n->rx_kick = event_notifier_create(loop, rx_kick_cb, n);
        if (!n->tx_kick || !n->rx_kick) {
            virtio_net_destroy(n);
            return NULL;
        }
    }
    return n;
}

void virtio_net_set_backend(struct virtio_net *n, struct net_backend b) { n->backend = b; }

struct net_peer virtio_net_peer(struct virtio_net *n) { return (struct net_peer){net_deliver, n}; }

void virtio_net_attach(struct virtio_net *n, struct virtio_mmio *t) { __atomic_store_n(&n->t, t, __ATOMIC_RELEASE); }

void virtio_net_destroy(struct virtio_net *n) {
    if (!n) return;
    /* Notifiers first: once gone, nothing calls the backend's send; then
     * the backend, whose last deliveries still find the card. */
    event_notifier_destroy(n->tx_kick);
    event_notifier_destroy(n->rx_kick);
    if (n->backend.ops) n->backend.ops->destroy(n->backend.be);
    pending_clear(n);
    free(n);
}

/* ---- options ---- */

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool virtio_net_parse_mac(const char *s, uint8_t mac[6]) {
    if (strlen(s) != 17) return false;
    for (unsigned i = 0; i < 6; i++) {
        const char *p = s + 3 * i;
        int hi = hex_digit(p[0]), lo = hex_digit(p[1]);
        if (hi < 0 || lo < 0 || (i < 5 && p[2] != ':')) return false;
        mac[i] = (uint8_t)(hi << 4 | lo);
    }
    if (mac[0] & 1) return false; /* multicast */
    for (unsigned i = 0; i < 6; i++)
        if (mac[i]) return true;
    return false;
}

/* QEMU's prefix; random low half so cards of many VMs on one bridge differ. */
static void default_mac(uint8_t mac[6]) {
    mac[0] = 0x52, mac[1] = 0x54, mac[2] = 0x00;
    uint8_t r[3];
    if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) r[0] = 0x12, r[1] = 0x34, r[2] = 0x56;
    memcpy(mac + 3, r, 3);
}

struct net_opts {
    bool tap;
    char ifname[64];
    uint8_t mac[6];
    struct slirp_hostfwd fwd[SLIRP_MAX_HOSTFWDS];
    unsigned nfwd;
};

#define NET_SYNTAX "user[,hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT]...[,mac=MAC] or tap=IFNAME[,mac=MAC]"

static bool parse_opts(const char *opts, struct net_opts *o, char *err, size_t errlen) {
    char buf[1024];
    if (!opts || !*opts) {
        snprintf(err, errlen, "empty network spec (expected %s)", NET_SYNTAX);
        return false;
    }
    if (strlen(opts) >= sizeof buf) {
        snprintf(err, errlen, "network spec too long");
        return false;
    }
    strcpy(buf, opts);
    bool mac_set = false;
    char *save = NULL;
    unsigned index = 0;
    for (char *tok = buf;; tok = NULL, index++) {
        /* strtok_r would merge empty fields, which we report instead. */
        char *item = tok ? tok : save;
        if (!item) break;
        char *comma = strchr(item, ',');
        save = comma ? comma + 1 : NULL;
        if (comma) *comma = 0;
        if (!*item) {
            snprintf(err, errlen, "empty field in '%s'", opts);
            return false;
        }
        char *eq = strchr(item, '=');
        const char *val = eq ? eq + 1 : NULL;
        if (eq) *eq = 0;
        if (index == 0) {
            if (!strcmp(item, "user") && !val) continue;
            if (!strcmp(item, "tap")) {
                if (!val || !*val) {
                    snprintf(err, errlen, "tap needs an interface name: tap=IFNAME");
                    return false;
                }
                if (strlen(val) >= sizeof o->ifname) {
                    snprintf(err, errlen, "TAP interface name too long");
                    return false;
                }
                o->tap = true;
                strcpy(o->ifname, val);
                continue;
            }
            snprintf(err, errlen, "'%s': expected %s", opts, NET_SYNTAX);
            return false;
        }
        if (!strcmp(item, "mac") && val) {
            if (!virtio_net_parse_mac(val, o->mac)) {
                snprintf(err, errlen, "bad mac '%s' (expected six hex bytes like 52:54:00:12:34:56, unicast)", val);
                return false;
            }
            mac_set = true;
        } else if (!strcmp(item, "hostfwd") && val && !o->tap) {
            if (o->nfwd == SLIRP_MAX_HOSTFWDS) {
                snprintf(err, errlen, "at most %d hostfwd options", SLIRP_MAX_HOSTFWDS);
                return false;
            }
            if (!slirp_hostfwd_parse(val, &o->fwd[o->nfwd], err, errlen)) return false;
            o->nfwd++;
        } else {
            snprintf(err, errlen, "unknown option '%s%s%s' (%s takes %s)", item, val ? "=" : "", val ? val : "",
                     o->tap ? "tap" : "user", o->tap ? "mac=" : "hostfwd= and mac=");
            return false;
        }
    }
    if (!mac_set) default_mac(o->mac);
    return true;
}

static void backend_destroy(void *dev) { virtio_net_destroy(dev); }

static void backend_attach(void *dev, struct virtio_mmio *t) { virtio_net_attach(dev, t); }

bool virtio_net_backend_create(const char *opts, const struct virtio_backend_env *env, struct virtio_backend *out,
                               char *err, size_t errlen) {
    struct net_opts *o = calloc(1, sizeof *o);
    if (!o) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    bool ok = parse_opts(opts, o, err, errlen);
    struct virtio_net *n = NULL;
    if (ok && !env->loop) {
        snprintf(err, errlen, "networking needs an event loop");
        ok = false;
    }
    if (ok && !(n = virtio_net_create(env->loop, o->mac))) {
        snprintf(err, errlen, "out of memory");
        ok = false;
    }
    struct net_backend b;
    if (ok) {
        if (o->tap)
            ok = tap_backend_create(env->loop, o->ifname, virtio_net_peer(n), &b, err, errlen);
        else
            ok = slirp_backend_create(env->loop, o->fwd, o->nfwd, virtio_net_peer(n), &b, err, errlen);
        if (ok)
            virtio_net_set_backend(n, b);
        else
            virtio_net_destroy(n);
    }
    free(o);
    if (!ok) return false;
    *out = (struct virtio_backend){.ops = &virtio_net_ops, .dev = n, .attach = backend_attach,
                                   .destroy = backend_destroy};
    return true;
}
