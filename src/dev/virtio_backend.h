/* How the VM builds the virtio devices of its virtio-mmio slots. Each
 * device type has a constructor that parses its own option string (as
 * given to --drive, --net, ...) and returns a struct virtio_backend; the VM
 * puts a transport in front of it, attaches the two, and wires the
 * transport into the next free slot of the board. */
#ifndef RVISOR_VIRTIO_BACKEND_H
#define RVISOR_VIRTIO_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dev/virtio_mmio.h"

struct event_loop;

/* Guest RAM as a device that changes the memory map (the balloon) sees it:
 * [base, base + size), both multiples of 4 KiB, and a way to take the
 * backing of guest frames away, so that they read as zeros again and their
 * machine frames go back to the host. The device passes only addresses in
 * RAM; both calls return how many frames had a backing and lost it. The
 * VM wires them to its p2m; drop_* is NULL in a VM that offers none. */
struct guest_ram_ops {
    uint64_t base, size;
    /* The n frames at the given addresses (low 12 bits ignored). */
    uint64_t (*drop_frames)(void *ctx, const uint64_t *gpa, size_t n);
    /* Every whole frame in [gpa, gpa + len). */
    uint64_t (*drop_range)(void *ctx, uint64_t gpa, uint64_t len);
    void *ctx;
};

/* What a device may use of its VM and of the host. */
struct virtio_backend_env {
    struct guest_mem_ops mem;   /* guest memory, through the p2m */
    struct event_loop *loop;    /* where I/O runs; NULL: on the notifying thread */
    struct guest_ram_ops ram;   /* for devices that change the memory map (balloon) */
};

struct virtio_backend {
    const struct virtio_device_ops *ops;
    void *dev;
    /* Called once the transport exists, before the guest runs; devices that
     * complete work on the loop thread keep t for it. May be NULL. */
    void (*attach)(void *dev, struct virtio_mmio *t);
    /* Stops the device's loop work and frees it; called before the
     * transport is destroyed. */
    void (*destroy)(void *dev);
};

/* Constructor shape shared by the device types: false with a message in
 * err (meant for the user: name the bad option) on failure. */
typedef bool (*virtio_backend_create_fn)(const char *opts, const struct virtio_backend_env *env,
                                         struct virtio_backend *out, char *err, size_t errlen);

#endif
