/* The SBI (RISC-V Supervisor Binary Interface, v2.0) implemented inside the
 * monitor: the guest kernel's hypercall interface when no M-mode firmware
 * is loaded. Extensions: BASE, TIME, IPI, RFENCE, HSM, SRST, DBCN and the
 * legacy console and timer calls. */
#ifndef RVISOR_SBI_H
#define RVISOR_SBI_H

struct vm;
struct hart;

/* Handles the ecall the hart is stopped on: reads a7/a6/a0..a5, writes
 * a0/a1 and advances pc (unless the call stops the hart or the VM). */
void sbi_call(struct vm *vm, struct hart *h);

#define SBI_IMPL_ID 0x52564953ull /* "RVIS": not a registered implementation ID */

#endif
