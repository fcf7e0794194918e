/* Split virtqueues (virtio 1.2, section 2.7), processed by the device side
 * against guest memory reached only through struct guest_mem_ops. Nothing
 * the guest writes is trusted: every index, length and address is checked,
 * and a malformed ring yields an error code (the transport then marks the
 * device DEVICE_NEEDS_RESET) instead of a crash or an endless loop.
 *
 * Not thread safe by itself: the transport serialises all calls on a queue.
 * Ring fields are little-endian as on the wire; the host is assumed to be
 * little-endian (conversions go through <endian.h> anyway). */
#ifndef RVISOR_VIRTQUEUE_H
#define RVISOR_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How a device reaches guest-physical memory; the VM wires read/write to
 * p2m_read/p2m_write with ctx = its struct p2m. Both return false if any
 * byte of [gpa, gpa+n) is not guest RAM, or with errno ENOMEM if a frame
 * could not be backed just now (machine memory is being reclaimed): the
 * guest did nothing wrong, and the same access may work a moment later. */
struct guest_mem_ops {
    bool (*read)(void *ctx, uint64_t gpa, void *buf, size_t n);
    bool (*write)(void *ctx, uint64_t gpa, const void *buf, size_t n);
    void *ctx;
};

#define VIRTQ_MAX_SIZE 1024 /* largest queue size accepted (a power of two) */
#define VIRTQ_MAX_SEGS 1024 /* most buffers one chain may describe */

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

enum virtq_err {
    VIRTQ_OK = 0,
    VIRTQ_ERR_NOT_READY = -1,     /* queue not set up */
    VIRTQ_ERR_MEM = -2,           /* ring, descriptor or table address refused by guest memory */
    VIRTQ_ERR_AVAIL_IDX = -3,     /* avail idx ran more than a queue size ahead */
    VIRTQ_ERR_INDEX = -4,         /* descriptor index out of range */
    VIRTQ_ERR_LOOP = -5,          /* chain longer than the queue / indirect table */
    VIRTQ_ERR_NESTED = -6,        /* indirect descriptor inside an indirect table */
    VIRTQ_ERR_INDIRECT_LEN = -7,  /* indirect table length 0, not a multiple of 16, or too long */
    VIRTQ_ERR_ORDER = -8,         /* device-readable buffer after a device-writable one */
    VIRTQ_ERR_TOO_MANY = -9,      /* more than VIRTQ_MAX_SEGS buffers */
    VIRTQ_ERR_RANGE = -10,        /* buffer address + length wraps around */
    VIRTQ_ERR_FLAGS = -11,        /* INDIRECT together with NEXT */
    VIRTQ_ERR_USED_ID = -12,      /* pushed id is not a descriptor index */
    VIRTQ_ERR_ALIGN = -13,        /* ring area misaligned (desc 16, driver 2, device 4) */
    VIRTQ_ERR_AGAIN = -14,        /* a ring frame could not be backed just now (errno ENOMEM): nothing
                                     changed, try again later */
};

const char *virtq_strerror(int err);

struct virtq_seg {
    uint64_t gpa;
    uint32_t len;
    bool writable; /* device-writable ("in") buffer */
};

/* One popped request: the readable segments come first, then the writable ones. */
struct virtq_chain {
    uint16_t head;     /* id to give back to virtq_push */
    unsigned nseg;
    unsigned nread;    /* seg[0 .. nread) readable, seg[nread .. nseg) writable */
    uint64_t read_len, write_len;
    struct virtq_seg seg[VIRTQ_MAX_SEGS];
};

struct virtq {
    uint16_t num;             /* queue size; 0 when invalid */
    bool ready;
    bool event_idx;           /* VIRTIO_F_RING_EVENT_IDX negotiated */
    uint64_t desc, avail, used; /* guest-physical addresses of the three areas */
    uint16_t last_avail;      /* next avail ring slot to consume */
    uint16_t used_idx;        /* our copy of used->idx */
    uint16_t signalled_used;  /* used_idx when the last interrupt decision was made */
};

/* True if n is a valid queue size: a power of two in 1..VIRTQ_MAX_SIZE. */
bool virtq_size_valid(uint32_t n);

/* Ready the queue (fields desc/avail/used/num set by the caller): checks the
 * size (VIRTQ_ERR_NOT_READY), the area alignment (16/2/4, VIRTQ_ERR_ALIGN)
 * and that the three areas are guest memory (VIRTQ_ERR_MEM). Returns
 * VIRTQ_OK or the error; on error the queue stays not ready. */
int virtq_start(struct virtq *q, const struct guest_mem_ops *m);

/* Forget all ring state (used on device reset). */
void virtq_reset(struct virtq *q);

/* Takes the next available chain into *c. Returns 1 when a chain was
 * taken, 0 when the ring is empty, or a negative enum virtq_err. With event
 * index on, also publishes avail_event so the driver notifies again. */
int virtq_pop(struct virtq *q, const struct guest_mem_ops *m, struct virtq_chain *c);

/* Gives the chain popped last back to the ring: the next virtq_pop takes
 * it again (a request that must wait for guest memory). Only before any
 * later pop, and before it was pushed. */
void virtq_unpop(struct virtq *q);

/* Returns a chain to the driver: used element (id, len written by the
 * device), then used->idx. Returns VIRTQ_OK or a negative error. */
int virtq_push(struct virtq *q, const struct guest_mem_ops *m, uint16_t id, uint32_t len);

/* Whether the driver wants an interrupt for what was pushed since the last
 * call (event index: used_event; otherwise VIRTQ_AVAIL_F_NO_INTERRUPT).
 * Sets *irq; returns VIRTQ_OK or a negative error. */
int virtq_need_interrupt(struct virtq *q, const struct guest_mem_ops *m, bool *irq);

/* Copies up to n bytes into the chain's writable segments starting at byte
 * offset off of the writable part; returns false if guest memory refused
 * (errno ENOMEM: only for now, see guest_mem_ops). */
bool virtq_chain_write(const struct virtq_chain *c, const struct guest_mem_ops *m, uint64_t off,
                       const void *buf, size_t n);

/* Copies n bytes from the chain's readable segments starting at byte offset
 * off of the readable part; false if they hold fewer (errno EFAULT) or
 * memory refused (errno as guest_mem_ops sets it). */
bool virtq_chain_read(const struct virtq_chain *c, const struct guest_mem_ops *m, uint64_t off, void *buf,
                      size_t n);

#endif
