/* How the VM builds the virtio devices of its virtio-mmio slots. Each
 * device type has a constructor that parses its own option string (as
 * given to --drive, --net, ...) and returns a struct virtio_backend; the VM
 * puts a transport in front of it, attaches the two, and wires the
 * transport into the next free slot of the board. */
#ifndef RVISOR_VIRTIO_BACKEND_H
#define RVISOR_VIRTIO_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include "dev/virtio_mmio.h"

struct event_loop;
struct p2m;

/* What a device may use of its VM and of the host. */
struct virtio_backend_env {
    struct guest_mem_ops mem;   /* guest memory, through the p2m */
    struct event_loop *loop;    /* where I/O runs; NULL: on the notifying thread */
    struct p2m *p2m;            /* for devices that change the memory map (balloon) */
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
