/* Fills the board's virtio-mmio slots from the VM's configuration. */
#include "vm/virtio_slots.h"

#include <stdio.h>

#include "dev/plic.h"
#include "dev/virtio_net.h"
#include "dev/virtio_rng.h"
#include "vm/vm.h"

/* Virtio devices reach guest memory only through the p2m. */
static bool guest_read(void *ctx, uint64_t gpa, void *buf, size_t n) { return p2m_read(ctx, gpa, buf, n); }
static bool guest_write(void *ctx, uint64_t gpa, const void *buf, size_t n) { return p2m_write(ctx, gpa, buf, n); }

/* A device's interrupt may come from the event loop while every hart
 * sleeps in wfi: wake the VM's scheduler as well as raising the line. */
static void slot_irq(void *ctx, unsigned irq, bool level) {
    struct vm *vm = ctx;
    plic_set_irq(vm->plic, irq, level);
    if (level) vm_kick(vm);
}

static bool add_slot(struct vm *vm, const char *what, virtio_backend_create_fn create, const char *opts,
                     char *err, size_t errlen) {
    if (vm->nvirtio == VIRT_VIRTIO_SLOTS) {
        snprintf(err, errlen, "too many virtio devices: the board has %d slots", VIRT_VIRTIO_SLOTS);
        return false;
    }
    struct virtio_backend_env env = {
        .mem = {guest_read, guest_write, &vm->mem},
        .loop = vm->cfg.loop,
        .p2m = &vm->mem,
    };
    struct vm_virtio_slot *s = &vm->virtio[vm->nvirtio];
    char why[384];
    if (!create(opts, &env, &s->backend, why, sizeof why)) {
        snprintf(err, errlen, "%s: %s", what, why);
        return false;
    }
    unsigned index = vm->nvirtio;
    s->transport = virtio_mmio_create(s->backend.ops, s->backend.dev, env.mem,
                                      (struct irq_line){slot_irq, vm, VIRT_VIRTIO_IRQ + index});
    if (!s->transport) {
        s->backend.destroy(s->backend.dev);
        snprintf(err, errlen, "%s: out of memory", what);
        return false;
    }
    vm->nvirtio++;
    if (s->backend.attach) s->backend.attach(s->backend.dev, s->transport);
    if (!mmio_bus_add(&vm->bus, VIRT_VIRTIO_BASE + index * VIRT_VIRTIO_SIZE, VIRT_VIRTIO_SIZE, &virtio_mmio_ops,
                      s->transport)) {
        snprintf(err, errlen, "%s: device map overlaps", what);
        return false;
    }
    return true;
}

bool virtio_slots_create(struct vm *vm, char *err, size_t errlen) {
    if (!add_slot(vm, "virtio-rng", virtio_rng_backend_create, "", err, errlen)) return false;
    for (unsigned i = 0; i < vm->cfg.nnets; i++) {
        char what[160];
        snprintf(what, sizeof what, "--net %s", vm->cfg.nets[i]);
        if (!add_slot(vm, what, virtio_net_backend_create, vm->cfg.nets[i], err, errlen)) return false;
    }
    return true;
}

void virtio_slots_destroy(struct vm *vm) {
    /* Backends first: they stop their loop work, after which nothing
     * touches the transports. */
    for (unsigned i = 0; i < vm->nvirtio; i++) vm->virtio[i].backend.destroy(vm->virtio[i].backend.dev);
    for (unsigned i = 0; i < vm->nvirtio; i++) virtio_mmio_destroy(vm->virtio[i].transport);
    vm->nvirtio = 0;
}
