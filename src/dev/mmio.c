#include "dev/mmio.h"

bool mmio_bus_add(struct mmio_bus *bus, uint64_t base, uint64_t size, const struct mmio_ops *ops, void *dev) {
    if (bus->count == MMIO_MAX_REGIONS || size == 0) return false;
    for (unsigned i = 0; i < bus->count; i++) {
        const struct mmio_region *r = &bus->region[i];
        if (base < r->base + r->size && r->base < base + size) return false;
    }
    bus->region[bus->count++] = (struct mmio_region){base, size, ops, dev};
    return true;
}

static const struct mmio_region *find(const struct mmio_bus *bus, uint64_t addr, unsigned size) {
    for (unsigned i = 0; i < bus->count; i++) {
        const struct mmio_region *r = &bus->region[i];
        if (addr >= r->base && addr - r->base + size <= r->size) return r;
    }
    return 0;
}

bool mmio_bus_read(struct mmio_bus *bus, uint64_t addr, unsigned size, uint64_t *val) {
    const struct mmio_region *r = find(bus, addr, size);
    if (!r) return false;
    *val = r->ops->read(r->dev, addr - r->base, size);
    return true;
}

bool mmio_bus_write(struct mmio_bus *bus, uint64_t addr, unsigned size, uint64_t val) {
    const struct mmio_region *r = find(bus, addr, size);
    if (!r) return false;
    r->ops->write(r->dev, addr - r->base, val, size);
    return true;
}
