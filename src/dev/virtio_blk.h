/* virtio block device (virtio 1.2 section 5.2): device id 2, one request
 * queue, backed by a raw image file (or a host block device).
 *
 * Options (the --drive string): file=PATH[,readonly=on|off][,serial=ID].
 * A comma inside a value is written twice (file=a,,b.img means "a,b.img").
 * The image is opened O_CLOEXEC and locked with flock (exclusive when
 * writable, shared when read-only), so two VMs cannot write one image.
 *
 * Requests run on the event loop thread: the queue notify only signals an
 * event notifier. The loop thread takes the transport lock to pop a chain
 * and to copy guest data, and drops it around the host read/write/fsync.
 * A device reset bumps a generation counter; a request whose device was
 * reset meanwhile is dropped without touching guest memory again. Without
 * an event loop (unit tests) requests are served at once on the notifying
 * thread with the lock held throughout.
 *
 * Writes land in the host page cache; FLUSH is fdatasync, so a write the
 * guest saw completed before a flush completed is on the host disk. A
 * driver that did not accept VIRTIO_BLK_F_FLUSH gets write-through. */
#ifndef RVISOR_VIRTIO_BLK_H
#define RVISOR_VIRTIO_BLK_H

#include "dev/virtio_backend.h"
#include "dev/virtio_mmio.h"

#define VIRTIO_ID_BLOCK 2
#define VIRTIO_BLK_QUEUE_SIZE 256

/* Feature bits (5.2.3). */
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types and status values (5.2.6). */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_SECTOR 512
#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_DISCARD_FLAG_UNMAP 1

/* Config space offsets (struct virtio_blk_config). */
#define VIRTIO_BLK_CFG_CAPACITY 0
#define VIRTIO_BLK_CFG_SEG_MAX 12
#define VIRTIO_BLK_CFG_BLK_SIZE 20
#define VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS 36
#define VIRTIO_BLK_CFG_MAX_DISCARD_SEG 40
#define VIRTIO_BLK_CFG_DISCARD_ALIGNMENT 44
#define VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SECTORS 48
#define VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SEG 52
#define VIRTIO_BLK_CFG_WRITE_ZEROES_MAY_UNMAP 56
#define VIRTIO_BLK_CFG_SIZE 60

/* What the device advertises. */
#define VIRTIO_BLK_SEG_MAX (VIRTIO_BLK_QUEUE_SIZE - 2) /* as QEMU: a chain also holds header and status */
#define VIRTIO_BLK_MAX_DISCARD_SECTORS (1u << 22) /* 2 GiB per range */
#define VIRTIO_BLK_MAX_DISCARD_SEG 16
#define VIRTIO_BLK_DISCARD_ALIGNMENT 8 /* sectors: 4 KiB, the host page */
/* Largest data part of one read or write; bigger requests get IOERR. Linux
 * sends at most a few MiB. */
#define VIRTIO_BLK_MAX_REQUEST (256u << 20)

/* ops->save/load: the capacity; a load refuses an image of another size. */
extern const struct virtio_device_ops virtio_blk_ops;    /* read-write */
extern const struct virtio_device_ops virtio_blk_ro_ops; /* readonly=on */

/* virtio_backend_create_fn: parses the options, opens and locks the image. */
bool virtio_blk_backend_create(const char *opts, const struct virtio_backend_env *env, struct virtio_backend *out,
                               char *err, size_t errlen);

#endif
