/* Fills the board's virtio-mmio slots from the VM's configuration. */
#include "vm/virtio_slots.h"

#include <stdio.h>

#include "dev/plic.h"
#include "dev/virtio_balloon.h"
#include "dev/virtio_blk.h"
#include "dev/virtio_console.h"
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

/* The balloon gives frames back through the p2m too. */
static uint64_t drop_frames(void *ctx, const uint64_t *gpa, size_t n) { return p2m_drop_frames(ctx, gpa, n); }
static uint64_t drop_range(void *ctx, uint64_t gpa, uint64_t len) { return p2m_drop_range(ctx, gpa, len); }

static struct virtio_backend_env backend_env(struct vm *vm) {
    return (struct virtio_backend_env){
        .mem = {guest_read, guest_write, &vm->mem},
        .loop = vm->cfg.loop,
        .ram = {vm->mem.base, vm->mem.size, drop_frames, drop_range, &vm->mem},
    };
}

/* Puts a device in the next free slot; on failure the backend is destroyed. */
static bool plug(struct vm *vm, const char *what, const struct virtio_backend *b, char *err, size_t errlen) {
    if (vm->nvirtio == VIRT_VIRTIO_SLOTS) {
        b->destroy(b->dev);
        snprintf(err, errlen, "too many virtio devices: the board has %d slots", VIRT_VIRTIO_SLOTS);
        return false;
    }
    unsigned index = vm->nvirtio;
    struct vm_virtio_slot *s = &vm->virtio[index];
    s->backend = *b;
    s->transport = virtio_mmio_create(b->ops, b->dev, backend_env(vm).mem,
                                      (struct irq_line){slot_irq, vm, VIRT_VIRTIO_IRQ + index});
    if (!s->transport) {
        b->destroy(b->dev);
        snprintf(err, errlen, "%s: out of memory", what);
        return false;
    }
    vm->nvirtio++;
    if (b->attach) b->attach(b->dev, s->transport);
    if (!mmio_bus_add(&vm->bus, VIRT_VIRTIO_BASE + index * VIRT_VIRTIO_SIZE, VIRT_VIRTIO_SIZE, &virtio_mmio_ops,
                      s->transport)) {
        snprintf(err, errlen, "%s: device map overlaps", what);
        return false;
    }
    return true;
}

/* Builds a device from its option string and plugs it in. */
static bool add_slot(struct vm *vm, const char *what, virtio_backend_create_fn create, const char *opts,
                     char *err, size_t errlen) {
    struct virtio_backend_env env = backend_env(vm);
    struct virtio_backend b;
    char why[384];
    if (!create(opts, &env, &b, why, sizeof why)) {
        snprintf(err, errlen, "%s: %s", what, why);
        return false;
    }
    return plug(vm, what, &b, err, errlen);
}

/* virtio-console writes to the same host sink as the UART (from the event
 * loop thread; the sinks take writes from any thread). */
static void console_sink(void *ctx, const uint8_t *buf, size_t n) {
    struct vm *vm = ctx;
    if (vm->console.write) vm->console.write(vm->console.ctx, buf, n);
}

static void console_attach(void *dev, struct virtio_mmio *t) { virtio_console_attach(dev, t); }
static void console_destroy(void *dev) { virtio_console_destroy(dev); }

static bool add_console(struct vm *vm, char *err, size_t errlen) {
    vm->vconsole = virtio_console_create((struct virtio_console_sink){console_sink, vm}, vm->cfg.loop);
    if (!vm->vconsole) {
        snprintf(err, errlen, "virtio-console: out of memory");
        return false;
    }
    struct virtio_backend b = {&virtio_console_ops, vm->vconsole, console_attach, console_destroy};
    if (plug(vm, "virtio-console", &b, err, errlen)) return true;
    vm->vconsole = NULL;
    return false;
}

bool virtio_slots_create(struct vm *vm, char *err, size_t errlen) {
    if (!add_slot(vm, "virtio-rng", virtio_rng_backend_create, "", err, errlen)) return false;
    if (!vm->cfg.no_balloon) {
        if (!add_slot(vm, "virtio-balloon", virtio_balloon_backend_create, "", err, errlen)) return false;
        vm->balloon = vm->virtio[vm->nvirtio - 1].backend.dev;
    }
    if (vm->cfg.console == VM_CONSOLE_VIRTIO && !add_console(vm, err, errlen)) return false;
    for (unsigned i = 0; i < vm->cfg.ndrives; i++) {
        char what[32];
        snprintf(what, sizeof what, "--drive %u", i + 1);
        if (!add_slot(vm, what, virtio_blk_backend_create, vm->cfg.drives[i], err, errlen)) return false;
    }
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
