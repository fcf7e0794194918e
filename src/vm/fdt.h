/* Device tree of the virtual board, in the shape of QEMU's `virt` machine. */
#ifndef RVISOR_FDT_H
#define RVISOR_FDT_H

#include <stddef.h>
#include <stdint.h>

struct vm;

struct fdt_params {
    const char *bootargs;              /* may be NULL */
    uint64_t initrd_start, initrd_end; /* both 0 without an initrd */
};

/* Writes the tree into buf (at most size bytes). Returns its length, or -1
 * with a message in err. */
int fdt_build(const struct vm *vm, const struct fdt_params *p, void *buf, size_t size, char *err, size_t errlen);

#endif
