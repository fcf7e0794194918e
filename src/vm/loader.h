/* Reading guest images from host files with bounds and clear messages. */
#ifndef RVISOR_LOADER_H
#define RVISOR_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct p2m;

/* Reads a whole regular file of 1 to max_size bytes (the guest's RAM: no
 * larger file is ever read) into a new buffer, checked and opened by
 * host_file_open. `what` names the file in messages ("kernel", "initrd"). */
bool load_file(const char *path, const char *what, size_t max_size, uint8_t **data, size_t *size, char *err,
               size_t errlen);

struct elf_image {
    uint64_t entry;
    uint64_t low, high;          /* physical range covered by PT_LOAD segments */
    uint64_t tohost, fromhost;   /* HTIF symbols, 0 if absent */
};

bool elf_is_elf(const uint8_t *data, size_t size);
/* Loads a RISC-V ELF64's segments at their physical addresses. */
bool elf_load(struct p2m *mem, const uint8_t *data, size_t size, struct elf_image *out, char *err, size_t errlen);

#endif
