/* An interrupt wire from a device to an interrupt controller. Devices hold
 * one by value and never know which controller (or test stub) is on the
 * other end; the VM wires it to plic_set_irq. */
#ifndef RVISOR_IRQ_H
#define RVISOR_IRQ_H

#include <stdbool.h>
#include <stddef.h>

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

#endif
