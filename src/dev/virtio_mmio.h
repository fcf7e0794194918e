/* virtio-mmio transport, version 2 (virtio 1.2 section 4.2): the register
 * block a guest probes at a virt-board virtio slot (0x1000 bytes each on
 * QEMU's board; registers in the first 0x100, device config from 0x100).
 * A device backend (virtio_rng, ...) plugs in with struct virtio_device_ops.
 *
 * Thread safety: one mutex per transport. Register accesses take it; the
 * backend callbacks (config_read/config_write/notify/reset) are called with
 * it held and may use the virtio_mmio_queue_* helpers below, which expect
 * it held. A backend completing requests from another thread brackets its
 * calls with virtio_mmio_lock/unlock. The irq line is driven with the lock
 * held, so it must not call back into this transport.
 *
 * A guest that breaks the ring rules gets DEVICE_NEEDS_RESET (status bit
 * 0x40) and a configuration-change interrupt; the device then ignores its
 * queues until the driver resets it by writing 0 to Status. */
#ifndef RVISOR_VIRTIO_MMIO_H
#define RVISOR_VIRTIO_MMIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dev/irq.h"
#include "dev/mmio.h"
#include "dev/virtqueue.h"

#define VIRTIO_MMIO_SIZE 0x200 /* registers + config space used; a 0x1000 slot is fine too */
#define VIRTIO_MMIO_MAX_QUEUES 8
#define VIRTIO_MMIO_MAGIC 0x74726976u /* "virt" */
#define VIRTIO_MMIO_VENDOR 0x53495652u /* "RVIS" */

/* Register offsets (4.2.2). */
#define VIRTIO_MMIO_MAGIC_VALUE 0x000
#define VIRTIO_MMIO_VERSION 0x004
#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_VENDOR_ID 0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL 0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX 0x034
#define VIRTIO_MMIO_QUEUE_NUM 0x038
#define VIRTIO_MMIO_QUEUE_READY 0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS 0x060
#define VIRTIO_MMIO_INTERRUPT_ACK 0x064
#define VIRTIO_MMIO_STATUS 0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW 0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH 0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW 0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH 0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW 0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VIRTIO_MMIO_SHM_SEL 0x0ac
#define VIRTIO_MMIO_SHM_LEN_LOW 0x0b0
#define VIRTIO_MMIO_SHM_LEN_HIGH 0x0b4
#define VIRTIO_MMIO_SHM_BASE_LOW 0x0b8
#define VIRTIO_MMIO_SHM_BASE_HIGH 0x0bc
#define VIRTIO_MMIO_CONFIG_GENERATION 0x0fc
#define VIRTIO_MMIO_CONFIG 0x100

/* Device status bits (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

/* InterruptStatus bits. */
#define VIRTIO_MMIO_INT_VRING 1
#define VIRTIO_MMIO_INT_CONFIG 2

/* Transport feature bits (6). */
#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_RING_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

struct virtio_mmio;
struct snap_writer;
struct snap_section;
struct snap_cursor;

struct virtio_device_ops {
    uint32_t device_id;      /* 4 = entropy, ... */
    uint64_t features;       /* device-specific feature bits; the transport adds
                                VERSION_1, RING_EVENT_IDX and RING_INDIRECT_DESC */
    unsigned num_queues;     /* at most VIRTIO_MMIO_MAX_QUEUES */
    uint16_t queue_max;      /* QueueNumMax, a power of two <= VIRTQ_MAX_SIZE */
    /* Device config space, off relative to 0x100; size 1, 2, 4 or 8. May be NULL. */
    uint64_t (*config_read)(void *dev, uint64_t off, unsigned size);
    void (*config_write)(void *dev, uint64_t off, uint64_t val, unsigned size);
    /* The driver notified queue q (ready, after DRIVER_OK, device not broken). */
    void (*notify)(void *dev, struct virtio_mmio *t, unsigned q);
    /* The driver reset the device (Status written 0). May be NULL. */
    void (*reset)(void *dev);
    /* The backend's own saved state, inside the transport's "virtio"
     * section after the transport's fields; NULL when it has none. Called
     * with the transport lock held. load reads exactly what save wrote and
     * checks all of it before installing any (false with a message, the
     * device as it was). */
    bool (*save)(void *dev, struct snap_writer *w);
    bool (*load)(void *dev, struct snap_cursor *c, char *err, size_t errlen);
};

/* Returns NULL on bad ops or allocation failure. mem is how the transport
 * and backend reach guest memory; irq is the device's interrupt wire. */
struct virtio_mmio *virtio_mmio_create(const struct virtio_device_ops *ops, void *dev, struct guest_mem_ops mem,
                                       struct irq_line irq);
void virtio_mmio_destroy(struct virtio_mmio *t);

extern const struct mmio_ops virtio_mmio_ops;

void virtio_mmio_lock(struct virtio_mmio *t);
void virtio_mmio_unlock(struct virtio_mmio *t);

/* ---- For backends, with the transport lock held. ---- */
const struct guest_mem_ops *virtio_mmio_mem(struct virtio_mmio *t);
/* Features the driver accepted (valid once FEATURES_OK is set). */
uint64_t virtio_mmio_driver_features(struct virtio_mmio *t);
/* 1 = chain taken, 0 = queue empty, -1 = device is (now) broken,
 * VIRTIO_MMIO_AGAIN = a ring frame could not be backed just now (machine
 * memory is being reclaimed): nothing was taken, try again later. */
#define VIRTIO_MMIO_AGAIN (-2)
int virtio_mmio_queue_pop(struct virtio_mmio *t, unsigned q, struct virtq_chain *c);
/* Puts the chain popped last back (virtq_unpop): it is popped again later. */
void virtio_mmio_queue_unpop(struct virtio_mmio *t, unsigned q);
/* Returns a chain as used; false if the device is (now) broken (errno EIO)
 * or the used ring could not be backed just now (errno ENOMEM: nothing
 * was published, push it again later). */
bool virtio_mmio_queue_push(struct virtio_mmio *t, unsigned q, uint16_t head, uint32_t len);
/* After a batch of pushes: raise the used-buffer interrupt if the driver wants it. */
void virtio_mmio_queue_interrupt(struct virtio_mmio *t, unsigned q);
/* The config space changed: bump ConfigGeneration and interrupt. */
void virtio_mmio_config_changed(struct virtio_mmio *t);
/* Marks the device DEVICE_NEEDS_RESET (why is for debugging) and interrupts. */
void virtio_mmio_set_broken(struct virtio_mmio *t, const char *why);
/* A backend's copy to or from a buffer was refused (virtq_chain_read or
 * _write returned false): with errno ENOMEM the guest did nothing wrong
 * (its frame could not be backed just now), the device stays usable and
 * the backend drops or retries the request; otherwise the device is
 * marked broken. Returns true if it was. */
bool virtio_mmio_dma_refused(struct virtio_mmio *t, const char *why);

/* Inspection (takes the lock): Status register, and whether broken. */
uint32_t virtio_mmio_status(struct virtio_mmio *t);
/* How many buffer copies were refused for want of a machine frame (no
 * lock taken: callable while holding locks the interrupt path takes). */
uint64_t virtio_mmio_dma_deferred(struct virtio_mmio *t);

/* Saved state: section "virtio", version 1 (see virtio_mmio.c's tables):
 * the transport's registers and queues, then the backend's (ops->save).
 * Load refuses a snapshot of another device type or any bad value with a
 * message, leaving the device as it was (or reset, if only trailing bytes
 * were wrong); it takes the lock and drives the irq line. */
bool virtio_mmio_save(struct virtio_mmio *t, struct snap_writer *w);
bool virtio_mmio_load(struct virtio_mmio *t, const struct snap_section *s, char *err, size_t errlen);
/* Call once after a restored VM's devices are all loaded: notifies the
 * backend of every live queue, as the driver may have notified before the
 * snapshot and the notification not been served (spurious ones are harmless). */
void virtio_mmio_resume(struct virtio_mmio *t);

#endif
