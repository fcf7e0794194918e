/* The SiFive CLINT layout of QEMU's virt board (ACLINT MSWI + MTIMER in
 * one 64 KiB region): msip at 4*hart, mtimecmp at 0x4000 + 8*hart, mtime
 * at 0xbff8. mtime is the VM's clock as given by now(); it is read-only
 * here because the monitor owns virtual time and the harts' time CSR must
 * keep agreeing with it, so guest writes to mtime are ignored.
 *
 * Thread safe: register accesses and aclint_update may run concurrently;
 * the harts' hart_irq sinks are called with the ACLINT's lock held. */
#ifndef RVISOR_ACLINT_H
#define RVISOR_ACLINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dev/irq.h"
#include "dev/mmio.h"

#define ACLINT_MAX_HARTS 4095 /* mtimecmp array must end below mtime */
#define ACLINT_SIZE 0x10000

struct aclint;

/* What the ACLINT needs of its machine: now(ctx) returns mtime in timebase
 * ticks; kick(ctx), if set, is told that a software interrupt was sent (the
 * target hart may be asleep on another thread). */
struct aclint_host {
    uint64_t (*now)(void *ctx);
    void (*kick)(void *ctx);
    void *ctx;
};

/* harts[i] is where hart i's MSIP and MTIP go; the array is copied. NULL if
 * nharts is 0 or above ACLINT_MAX_HARTS, if a sink has no set_pending, or
 * on allocation failure. */
struct aclint *aclint_create(unsigned nharts, const struct hart_irq *harts, struct aclint_host host);
void aclint_destroy(struct aclint *a);

/* Sets or clears each hart's MTIP for mtime == now. */
void aclint_update(struct aclint *a, uint64_t now);
/* Smallest mtimecmp among harts whose MTIP is clear (UINT64_MAX if none):
 * the next time aclint_update has something to do. */
uint64_t aclint_next_deadline(const struct aclint *a);

extern const struct mmio_ops aclint_mmio_ops;

struct snap_writer;
struct snap_section;
/* Saved state: section "aclint", version 1 (see aclint.c's table): each
 * hart's mtimecmp and msip. Load refuses another hart count or a bad
 * value, leaving the ACLINT as it was; on success it drives every hart's
 * MSIP and MTIP (for mtime = host.now()) to agree with the loaded state. */
bool aclint_save(struct aclint *a, struct snap_writer *w);
bool aclint_load(struct aclint *a, const struct snap_section *s, char *err, size_t errlen);

#endif
