/* HTIF, the host-target interface of the RISC-V test suites: a bare-metal
 * program ends the run by writing (code << 1) | 1 to its `tohost` word, and
 * may print through device 1 (console). */
#ifndef RVISOR_HTIF_H
#define RVISOR_HTIF_H

struct vm;

/* Checks the tohost word and acts on a command there. */
void htif_poll(struct vm *vm);

#endif
