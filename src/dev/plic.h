/* The SiFive PLIC of QEMU's virt board: 96 level-triggered sources (1..95,
 * 0 means "none"), 7 priority levels, two contexts per hart: context 2*i is
 * hart i's M-mode (drives MEIP), context 2*i+1 its S-mode (drives SEIP).
 *
 * Thread safe: plic_set_irq (from devices) and register accesses (from any
 * vCPU) take the PLIC's lock; the harts' hart_irq sinks are called with it
 * held. */
#ifndef RVISOR_PLIC_H
#define RVISOR_PLIC_H

#include <stdbool.h>
#include <stddef.h>

#include "dev/irq.h"
#include "dev/mmio.h"

#define PLIC_NUM_SOURCES 96
#define PLIC_MAX_PRIORITY 7
#define PLIC_MAX_HARTS 512 /* contexts' threshold pages must fit in 0x600000 */
#define PLIC_SIZE 0x600000

struct plic;

/* harts[i] is where hart i's MEIP and SEIP go; the array is copied. NULL if
 * nharts is 0 or above PLIC_MAX_HARTS, if a sink has no set_pending, or on
 * allocation failure. */
struct plic *plic_create(unsigned nharts, const struct hart_irq *harts);
void plic_destroy(struct plic *p);

/* Drives source irq's input line. Fits struct irq_line's set (plic is a
 * struct plic *). Out-of-range irqs are ignored. */
void plic_set_irq(void *plic, unsigned irq, bool level);

extern const struct mmio_ops plic_mmio_ops;

struct snap_writer;
struct snap_section;
/* Saved state: section "plic", version 1 (see plic.c's tables). Load
 * refuses a snapshot of a PLIC with another hart count, or any bad value,
 * leaving the PLIC as it was; on success it drives every hart's MEIP and
 * SEIP to agree with the loaded state. */
bool plic_save(struct plic *p, struct snap_writer *w);
bool plic_load(struct plic *p, const struct snap_section *s, char *err, size_t errlen);

#endif
