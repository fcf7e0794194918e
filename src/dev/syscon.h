/* The SiFive test finisher of QEMU's virt board ("sifive,test1", used by
 * Linux through syscon-poweroff / syscon-reboot and by OpenSBI): one 32-bit
 * write-only register at offset 0. */
#ifndef RVISOR_SYSCON_H
#define RVISOR_SYSCON_H

#include "dev/mmio.h"

#define SYSCON_SIZE 0x1000

enum syscon_event { SYSCON_POWEROFF, SYSCON_RESET, SYSCON_FAIL };

struct syscon;
/* No saved state (one write-only register): no snapshot section. */

/* event gets code = value >> 16 for SYSCON_FAIL (the guest's exit status),
 * 0 otherwise. It is called from the vCPU thread that made the write. */
struct syscon *syscon_create(void (*event)(void *ctx, enum syscon_event ev, unsigned code), void *ctx);
void syscon_destroy(struct syscon *s);

extern const struct mmio_ops syscon_mmio_ops;

#endif
