/* Interrupt wires: from a device to an interrupt controller (irq_line), and
 * from a controller to a hart's mip (hart_irq). Devices hold them by value
 * and never know which controller, hart (or test stub) is on the other end;
 * the VM wires them to plic_set_irq and hart_set_mip. */
#ifndef RVISOR_IRQ_H
#define RVISOR_IRQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct irq_line {
    void (*set)(void *ctx, unsigned irq, bool level);
    void *ctx;
    unsigned irq;
};

/* A line with no controller behind it is legal (e.g. a device probed
 * before the PLIC exists), so an unset line is silently dropped. */
static inline void irq_line_set(const struct irq_line *l, bool level) {
    if (l && l->set) l->set(l->ctx, l->irq, level);
}

/* Interrupt-pending bits of a hart's mip, as the RISC-V privileged spec
 * fixes them. The interrupt controllers name them here so that dev/ does
 * not depend on hart/; the VM checks at compile time that they are the
 * hart's MIP_* bits. */
#define HART_IRQ_MSIP (1ull << 3)
#define HART_IRQ_MTIP (1ull << 7)
#define HART_IRQ_SEIP (1ull << 9)
#define HART_IRQ_MEIP (1ull << 11)

/* A controller's output to one hart: sets (level true) or clears the mip
 * bits in mask. Controllers call it with their own lock held, from any
 * thread, so it must be thread safe and must not call back into the
 * controller. The VM wires it to hart_set_mip. */
struct hart_irq {
    void (*set_pending)(void *ctx, uint64_t mask, bool level);
    void *ctx;
};

static inline void hart_irq_set(const struct hart_irq *h, uint64_t mask, bool level) {
    h->set_pending(h->ctx, mask, level);
}

#endif
