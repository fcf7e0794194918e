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

#endif
