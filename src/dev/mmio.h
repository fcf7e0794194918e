/* The memory-mapped device bus of one VM: a short list of regions, each
 * with read and write callbacks. Offsets are relative to the region base.
 * Sizes are 1, 2, 4 or 8; devices answer every size (narrow or odd accesses
 * read as zero or are ignored) so a guest cannot crash the monitor through
 * them. */
#ifndef RVISOR_MMIO_H
#define RVISOR_MMIO_H

#include <stdbool.h>
#include <stdint.h>

struct mmio_ops {
    uint64_t (*read)(void *dev, uint64_t off, unsigned size);
    void (*write)(void *dev, uint64_t off, uint64_t val, unsigned size);
};

struct mmio_region {
    uint64_t base, size;
    const struct mmio_ops *ops;
    void *dev;
};

#define MMIO_MAX_REGIONS 32

struct mmio_bus {
    struct mmio_region region[MMIO_MAX_REGIONS];
    unsigned count;
};

/* Returns false if the bus is full or the region overlaps another. */
bool mmio_bus_add(struct mmio_bus *bus, uint64_t base, uint64_t size, const struct mmio_ops *ops, void *dev);
bool mmio_bus_read(struct mmio_bus *bus, uint64_t addr, unsigned size, uint64_t *val);
bool mmio_bus_write(struct mmio_bus *bus, uint64_t addr, unsigned size, uint64_t val);

#endif
