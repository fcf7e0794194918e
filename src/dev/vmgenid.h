/* The virtual machine generation ID ("microsoft,vmgenid" in the device
 * tree): 16 random bytes that change whenever the VM becomes a new
 * instance of itself — restored from a snapshot, perhaps a second time —
 * with an interrupt to say so. A guest with the driver (Linux 6.10 and
 * later on device-tree machines) reseeds its random number generator at
 * once, so two clones of one snapshot do not share random state.
 *
 * The ID reads as little-endian bytes at offsets 0..15, in any access
 * size. The PLIC line is level-triggered and the binding gives the guest
 * nothing to acknowledge with, so the line drops when the guest reads the
 * ID, which its interrupt handler always does. Thread safe. */
#ifndef RVISOR_VMGENID_H
#define RVISOR_VMGENID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dev/irq.h"
#include "dev/mmio.h"

#define VMGENID_SIZE 16
#define VMGENID_WINDOW 0x1000

struct vmgenid;

/* A fresh random ID; NULL if out of memory or the host has no entropy. */
struct vmgenid *vmgenid_create(struct irq_line irq);
void vmgenid_destroy(struct vmgenid *g);

/* Draws a new random ID and raises the interrupt. false if the host's
 * entropy source failed (the ID is then unchanged). */
bool vmgenid_new_generation(struct vmgenid *g);
void vmgenid_get(struct vmgenid *g, uint8_t id[VMGENID_SIZE]);

extern const struct mmio_ops vmgenid_mmio_ops;

struct snap_writer;
struct snap_section;
/* Saved state: section "vmgenid", version 1: the ID and the line. A
 * migrated VM keeps its ID; a restore from a file then draws a new one. */
bool vmgenid_save(struct vmgenid *g, struct snap_writer *w);
bool vmgenid_load(struct vmgenid *g, const struct snap_section *s, char *err, size_t errlen);

#endif
