/* QEMU's pvpanic device, MMIO flavour ("qemu,pvpanic-mmio"): the guest
 * kernel writes an event byte at offset 0 when it panics. */
#ifndef RVISOR_PVPANIC_H
#define RVISOR_PVPANIC_H

#include "dev/mmio.h"

#define PVPANIC_SIZE 0x1000
#define PVPANIC_PANICKED 1u
#define PVPANIC_CRASH_LOADED 2u

struct pvpanic;
/* No saved state (its register reads a constant): no snapshot section. */

/* event gets the written event bits (PVPANIC_*); writes carrying none of
 * them are dropped. Called from the vCPU thread that made the write. */
struct pvpanic *pvpanic_create(void (*event)(void *ctx, unsigned events), void *ctx);
void pvpanic_destroy(struct pvpanic *p);

extern const struct mmio_ops pvpanic_mmio_ops;

#endif
