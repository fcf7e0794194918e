/* The virtio-mmio slots of the board: which device sits in which slot
 * (entropy first, then the balloon, virtio-console, drives and network
 * cards in the order given), each behind its own transport and PLIC line. */
#ifndef RVISOR_VIRTIO_SLOTS_H
#define RVISOR_VIRTIO_SLOTS_H

#include <stdbool.h>
#include <stddef.h>

struct vm;

/* Creates the devices vm->cfg asks for and maps them; false with a message. */
bool virtio_slots_create(struct vm *vm, char *err, size_t errlen);
/* Stops and frees them (their event-loop work first). */
void virtio_slots_destroy(struct vm *vm);

#endif
