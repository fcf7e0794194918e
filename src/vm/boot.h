/* Putting software into a new VM and setting up its harts: a Linux kernel
 * (RISC-V boot protocol) with the SBI in the monitor, M-mode firmware
 * (--bios) optionally followed by a kernel, or a bare-metal ELF program. */
#ifndef RVISOR_BOOT_H
#define RVISOR_BOOT_H

#include <stdbool.h>
#include <stddef.h>

struct vm;

struct boot_config {
    const char *kernel;  /* Linux Image */
    const char *initrd;
    const char *append;  /* kernel command line */
    const char *bios;    /* M-mode firmware or bare-metal ELF */
};

bool vm_boot(struct vm *vm, const struct boot_config *bc, char *err, size_t errlen);

#endif
