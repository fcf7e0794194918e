/* Split virtqueue, device side (virtio 1.2 section 2.7). Guest layout:
 *   descriptor table  num x { le64 addr; le32 len; le16 flags; le16 next; }
 *   driver area       le16 flags; le16 idx; le16 ring[num]; le16 used_event;
 *   device area       le16 flags; le16 idx; { le32 id; le32 len; } ring[num]; le16 avail_event;
 */
#include "dev/virtqueue.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

struct vdesc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};
_Static_assert(sizeof(struct vdesc) == 16, "virtq descriptor is 16 bytes");

const char *virtq_strerror(int err) {
    switch (err) {
    case VIRTQ_OK: return "ok";
    case VIRTQ_ERR_NOT_READY: return "queue not ready";
    case VIRTQ_ERR_MEM: return "ring or descriptor address not in guest memory";
    case VIRTQ_ERR_AVAIL_IDX: return "available index moved too far";
    case VIRTQ_ERR_INDEX: return "descriptor index out of range";
    case VIRTQ_ERR_LOOP: return "descriptor chain loops";
    case VIRTQ_ERR_NESTED: return "indirect descriptor inside indirect table";
    case VIRTQ_ERR_INDIRECT_LEN: return "bad indirect table length";
    case VIRTQ_ERR_ORDER: return "readable buffer after writable buffer";
    case VIRTQ_ERR_TOO_MANY: return "too many buffers in chain";
    case VIRTQ_ERR_RANGE: return "buffer address wraps";
    case VIRTQ_ERR_FLAGS: return "indirect descriptor with NEXT flag";
    case VIRTQ_ERR_USED_ID: return "used id out of range";
    case VIRTQ_ERR_ALIGN: return "ring area misaligned";
    case VIRTQ_ERR_AGAIN: return "ring frame could not be backed just now";
    }
    return "unknown virtqueue error";
}

bool virtq_size_valid(uint32_t n) { return n && n <= VIRTQ_MAX_SIZE && !(n & (n - 1)); }

static uint64_t avail_ring(const struct virtq *q, unsigned i) { return q->avail + 4 + 2 * (uint64_t)i; }
static uint64_t used_event_addr(const struct virtq *q) { return q->avail + 4 + 2 * (uint64_t)q->num; }
static uint64_t used_ring(const struct virtq *q, unsigned i) { return q->used + 4 + 8 * (uint64_t)i; }
static uint64_t avail_event_addr(const struct virtq *q) { return q->used + 4 + 8 * (uint64_t)q->num; }

static bool rd16(const struct guest_mem_ops *m, uint64_t gpa, uint16_t *v) {
    uint16_t x;
    if (!m->read(m->ctx, gpa, &x, 2)) return false;
    *v = le16toh(x);
    return true;
}

static bool wr16(const struct guest_mem_ops *m, uint64_t gpa, uint16_t v) {
    uint16_t x = htole16(v);
    return m->write(m->ctx, gpa, &x, 2);
}

/* What a refused ring access means: a bad address, or no frame just now. */
static int mem_err(void) { return errno == ENOMEM ? VIRTQ_ERR_AGAIN : VIRTQ_ERR_MEM; }

static bool area_ok(const struct guest_mem_ops *m, uint64_t gpa, uint64_t len) {
    uint8_t b;
    if (gpa + len < gpa) {
        errno = EFAULT; /* read by mem_err */
        return false;
    }
    /* Guest RAM is one range, so its two ends being RAM covers the middle. */
    return m->read(m->ctx, gpa, &b, 1) && m->read(m->ctx, gpa + len - 1, &b, 1);
}

void virtq_reset(struct virtq *q) { memset(q, 0, sizeof *q); }

int virtq_start(struct virtq *q, const struct guest_mem_ops *m) {
    q->ready = false;
    if (!virtq_size_valid(q->num)) return VIRTQ_ERR_NOT_READY;
    if ((q->desc & 15) || (q->avail & 1) || (q->used & 3)) return VIRTQ_ERR_ALIGN;
    if (!area_ok(m, q->desc, 16 * (uint64_t)q->num) || !area_ok(m, q->avail, 6 + 2 * (uint64_t)q->num) ||
        !area_ok(m, q->used, 6 + 8 * (uint64_t)q->num))
        return mem_err();
    q->last_avail = q->used_idx = q->signalled_used = 0;
    q->ready = true;
    return VIRTQ_OK;
}

static bool read_desc(const struct guest_mem_ops *m, uint64_t gpa, struct vdesc *d) {
    if (!m->read(m->ctx, gpa, d, sizeof *d)) return false;
    d->addr = le64toh(d->addr);
    d->len = le32toh(d->len);
    d->flags = le16toh(d->flags);
    d->next = le16toh(d->next);
    return true;
}

static int add_seg(struct virtq_chain *c, const struct vdesc *d) {
    bool w = d->flags & VIRTQ_DESC_F_WRITE;
    if (c->nseg >= VIRTQ_MAX_SEGS) return VIRTQ_ERR_TOO_MANY;
    if (d->len && d->addr + d->len - 1 < d->addr) return VIRTQ_ERR_RANGE;
    if (!w && c->nseg > c->nread) return VIRTQ_ERR_ORDER;
    c->seg[c->nseg++] = (struct virtq_seg){d->addr, d->len, w};
    if (w) {
        c->write_len += d->len;
    } else {
        c->nread++;
        c->read_len += d->len;
    }
    return VIRTQ_OK;
}

/* Walks an indirect table: entries 0.. linked by NEXT, all inside the table. */
static int walk_indirect(const struct guest_mem_ops *m, const struct vdesc *ind, struct virtq_chain *c) {
    if (ind->len == 0 || ind->len % 16 || ind->len / 16 > VIRTQ_MAX_SEGS) return VIRTQ_ERR_INDIRECT_LEN;
    uint32_t n = ind->len / 16;
    if (ind->addr + ind->len - 1 < ind->addr) return VIRTQ_ERR_MEM;
    uint32_t i = 0;
    for (uint32_t count = 0;; count++) {
        if (count >= n) return VIRTQ_ERR_LOOP;
        struct vdesc d;
        if (!read_desc(m, ind->addr + 16 * (uint64_t)i, &d)) return mem_err();
        if (d.flags & VIRTQ_DESC_F_INDIRECT) return VIRTQ_ERR_NESTED;
        int r = add_seg(c, &d);
        if (r) return r;
        if (!(d.flags & VIRTQ_DESC_F_NEXT)) return VIRTQ_OK;
        if (d.next >= n) return VIRTQ_ERR_INDEX;
        i = d.next;
    }
}

/* Asks the driver to notify once it made slot `next` available. */
static int publish_avail_event(struct virtq *q, const struct guest_mem_ops *m, uint16_t next) {
    if (!q->event_idx) return VIRTQ_OK;
    if (!wr16(m, avail_event_addr(q), next)) return mem_err();
    return VIRTQ_OK;
}

static int read_avail_idx(struct virtq *q, const struct guest_mem_ops *m, uint16_t *idx) {
    if (!rd16(m, q->avail + 2, idx)) return mem_err();
    /* The ring entries written before idx must be seen after it. */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if ((uint16_t)(*idx - q->last_avail) > q->num) return VIRTQ_ERR_AVAIL_IDX;
    return VIRTQ_OK;
}

int virtq_pop(struct virtq *q, const struct guest_mem_ops *m, struct virtq_chain *c) {
    if (!q->ready) return VIRTQ_ERR_NOT_READY;
    uint16_t idx;
    int r = read_avail_idx(q, m, &idx);
    if (r) return r;
    if (idx == q->last_avail) {
        /* Ask for a notification, then look again in case a buffer arrived
         * before the driver could see the request. */
        if ((r = publish_avail_event(q, m, q->last_avail))) return r;
        if (!q->event_idx) return 0;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if ((r = read_avail_idx(q, m, &idx))) return r;
        if (idx == q->last_avail) return 0;
    }

    uint16_t head;
    if (!rd16(m, avail_ring(q, q->last_avail & (q->num - 1)), &head)) return mem_err();
    if (head >= q->num) return VIRTQ_ERR_INDEX;

    c->head = head;
    c->nseg = c->nread = 0;
    c->read_len = c->write_len = 0;
    uint16_t i = head;
    for (unsigned count = 0;; count++) {
        if (count >= q->num) return VIRTQ_ERR_LOOP;
        struct vdesc d;
        if (!read_desc(m, q->desc + 16 * (uint64_t)i, &d)) return mem_err();
        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            if (d.flags & VIRTQ_DESC_F_NEXT) return VIRTQ_ERR_FLAGS;
            r = walk_indirect(m, &d, c);
            if (r) return r;
            break;
        }
        if ((r = add_seg(c, &d))) return r;
        if (!(d.flags & VIRTQ_DESC_F_NEXT)) break;
        if (d.next >= q->num) return VIRTQ_ERR_INDEX;
        i = d.next;
    }
    /* Published before the slot counts as taken, so that a refusal leaves
     * the queue as it was (VIRTQ_ERR_AGAIN: the same chain is popped again). */
    if ((r = publish_avail_event(q, m, (uint16_t)(q->last_avail + 1)))) return r;
    q->last_avail++;
    return 1;
}

void virtq_unpop(struct virtq *q) { q->last_avail--; }

int virtq_push(struct virtq *q, const struct guest_mem_ops *m, uint16_t id, uint32_t len) {
    if (!q->ready) return VIRTQ_ERR_NOT_READY;
    if (id >= q->num) return VIRTQ_ERR_USED_ID;
    uint32_t elem[2] = {htole32(id), htole32(len)};
    if (!m->write(m->ctx, used_ring(q, q->used_idx & (q->num - 1)), elem, sizeof elem)) return mem_err();
    /* The element must be visible before the index that publishes it. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    if (!wr16(m, q->used + 2, (uint16_t)(q->used_idx + 1))) return mem_err();
    q->used_idx++;
    return VIRTQ_OK;
}

int virtq_need_interrupt(struct virtq *q, const struct guest_mem_ops *m, bool *irq) {
    *irq = false;
    if (!q->ready) return VIRTQ_ERR_NOT_READY;
    uint16_t old = q->signalled_used, now = q->used_idx;
    if (old == now) return VIRTQ_OK;
    /* used->idx must be visible before we read the driver's wishes. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (q->event_idx) {
        uint16_t ev;
        if (!rd16(m, used_event_addr(q), &ev)) return mem_err();
        /* 2.7.10: interrupt if used_event lies in (old, now]. */
        *irq = (uint16_t)(now - ev - 1) < (uint16_t)(now - old);
    } else {
        uint16_t flags;
        if (!rd16(m, q->avail, &flags)) return mem_err();
        *irq = !(flags & VIRTQ_AVAIL_F_NO_INTERRUPT);
    }
    q->signalled_used = now; /* only once decided: a refusal is decided again */
    return VIRTQ_OK;
}

/* The segment walk of virtq_chain_write and virtq_chain_read: copies *n
 * bytes from src into the writable segments, or (src NULL) from the
 * readable segments into dst, starting at byte offset off of that part.
 * Leaves in *n what did not fit; false if guest memory refused. */
static bool chain_copy(const struct virtq_chain *c, const struct guest_mem_ops *m, uint64_t off, const uint8_t *src,
                       uint8_t *dst, size_t *n) {
    unsigned s = src ? c->nread : 0, end = src ? c->nseg : c->nread;
    for (; s < end && *n; s++) {
        const struct virtq_seg *g = &c->seg[s];
        if (off >= g->len) {
            off -= g->len;
            continue;
        }
        size_t k = g->len - off;
        if (k > *n) k = *n;
        if (src ? !m->write(m->ctx, g->gpa + off, src, k) : !m->read(m->ctx, g->gpa + off, dst, k)) return false;
        if (src) src += k;
        else dst += k;
        *n -= k;
        off = 0;
    }
    return true;
}

bool virtq_chain_write(const struct virtq_chain *c, const struct guest_mem_ops *m, uint64_t off,
                       const void *buf, size_t n) {
    return chain_copy(c, m, off, buf, NULL, &n);
}

bool virtq_chain_read(const struct virtq_chain *c, const struct guest_mem_ops *m, uint64_t off, void *buf,
                      size_t n) {
    if (!chain_copy(c, m, off, NULL, buf, &n)) return false;
    if (n) errno = EFAULT; /* the chain holds fewer bytes: the guest's fault, not a wait (virtio_mmio_dma_refused) */
    return n == 0;
}
