/* virtio entropy device (virtio 1.2 section 5.4): device id 4, one request
 * queue, no config space, no feature bits. Every device-writable buffer the
 * driver posts is filled from the host's getrandom(2). Plug it into a
 * transport with virtio_mmio_create(&virtio_rng_ops, rng, mem, irq). */
#ifndef RVISOR_VIRTIO_RNG_H
#define RVISOR_VIRTIO_RNG_H

#include "dev/virtio_backend.h"
#include "dev/virtio_mmio.h"

#define VIRTIO_ID_RNG 4
#define VIRTIO_RNG_QUEUE_SIZE 256
/* Most bytes given for one request; the used length tells the driver. */
#define VIRTIO_RNG_MAX_REQUEST 65536

struct virtio_rng;

/* With a loop, requests are served on its thread; without (NULL), on the
 * thread that notifies. */
struct virtio_rng *virtio_rng_create(struct event_loop *loop);
void virtio_rng_destroy(struct virtio_rng *r);

extern const struct virtio_device_ops virtio_rng_ops;

/* virtio_backend_create_fn: takes no options; requests are served on
 * env->loop. */
bool virtio_rng_backend_create(const char *opts, const struct virtio_backend_env *env, struct virtio_backend *out,
                               char *err, size_t errlen);

#endif
