/* virtio console (virtio 1.2 section 5.3): one port, no multiport, which
 * Linux makes hvc0. Guest output goes to the VM's console sink; host input
 * waits in a small buffer until the guest posts receive buffers.
 *
 * With an event loop, both queues are served on its thread (the notifying
 * vCPU only signals), so a slow terminal never stalls a vCPU; the sink must
 * then take writes from that thread. Without one (NULL, unit tests) they
 * are served on the notifying thread. */
#ifndef RVISOR_VIRTIO_CONSOLE_H
#define RVISOR_VIRTIO_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "dev/virtio_backend.h"
#include "dev/virtio_mmio.h"

#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_CONSOLE_QUEUE_SIZE 64
#define VIRTIO_CONSOLE_INPUT_BUF 4096 /* host input held until the guest takes it */
/* Most bytes of one transmit chain passed to the sink; the rest is
 * dropped. Linux sends at most a page per chain. */
#define VIRTIO_CONSOLE_MAX_OUTPUT (64u << 10)

struct virtio_console;

/* Where guest output goes. */
struct virtio_console_sink {
    void (*write)(void *ctx, const uint8_t *buf, size_t n);
    void *ctx;
};

struct event_loop;
struct virtio_console *virtio_console_create(struct virtio_console_sink sink, struct event_loop *loop);
void virtio_console_destroy(struct virtio_console *c);
/* ops->save/load: the host input not yet taken by the guest. */
extern const struct virtio_device_ops virtio_console_ops;

/* Call once the transport exists (virtio_backend.attach). */
void virtio_console_attach(struct virtio_console *c, struct virtio_mmio *t);

/* Host input: queues up to n bytes for the guest; returns how many fit.
 * Takes the transport lock. */
size_t virtio_console_input(struct virtio_console *c, const uint8_t *buf, size_t n);
size_t virtio_console_input_space(struct virtio_console *c);

#endif
