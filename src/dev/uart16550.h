/* A 16550A UART as on QEMU's virt board (reg-shift 0, 8-bit registers at
 * byte offsets 0..7). Transmission is immediate: every THR write goes
 * straight to the host output callback, so THR is always empty. Host input
 * is pushed in with uart_receive; the host keeps whatever does not fit, so
 * the receiver never overruns on host input.
 *
 * Thread safe: register accesses (vCPU threads) and uart_receive (the
 * monitor's input path) may run concurrently. The irq line and the output
 * callback are called with the UART's lock held, so they must not call back
 * into this UART. */
#ifndef RVISOR_UART16550_H
#define RVISOR_UART16550_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dev/irq.h"
#include "dev/mmio.h"

#define UART_FIFO_SIZE 16
#define UART_SIZE 0x100

struct uart16550;

/* out may be NULL (output discarded). Returns NULL on allocation failure. */
struct uart16550 *uart_create(struct irq_line irq, void (*out)(void *ctx, uint8_t byte), void *out_ctx);
void uart_destroy(struct uart16550 *u);

/* Pushes host input into the RX FIFO; returns how many bytes were taken. */
size_t uart_receive(struct uart16550 *u, const uint8_t *buf, size_t n);
/* Bytes uart_receive would accept now (1 deep when FIFOs are disabled). */
size_t uart_rx_space(const struct uart16550 *u);

extern const struct mmio_ops uart_mmio_ops;

struct snap_writer;
struct snap_section;
/* Saved state: section "uart", version 1 (see uart16550.c's table). Load
 * refuses a bad section with a message, leaving the UART as it was. */
bool uart_save(struct uart16550 *u, struct snap_writer *w);
bool uart_load(struct uart16550 *u, const struct snap_section *s, char *err, size_t errlen);

#endif
