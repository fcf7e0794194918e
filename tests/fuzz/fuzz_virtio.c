/* libFuzzer harness: the virtio-mmio transport, the split virtqueue and
 * the devices behind it (rng, balloon, console, blk), driven the way a
 * guest drives them: registers and guest memory.
 *
 * A fresh VM (interpreter, 4 MiB, no event loop: devices work on the
 * notifying thread) has virtio-rng (slot 0), virtio-balloon (1),
 * virtio-console (2) and virtio-blk (3) on a 64 KiB memfd disk. Input:
 *   [0]     the slot of the device under test (mod 4)
 *   [1]     queue size: 1 << (b % 6)
 *   [2..9]  a mask of the device's features the driver accepts
 *           (VIRTIO_F_VERSION_1 always)
 *   [10]    n: how many commands follow (at most MAX_CMDS)
 *   n * 8   commands {u8 op, u8 arg, u16 off, u32 value}, see run_command
 *           (one of them switches machine memory to exhausted and back)
 *   rest    the first MEM_IMAGE bytes of guest RAM: the queues' rings sit
 *           at fixed places in it (QUEUE_* below), descriptors point
 *           wherever the input says
 * The harness writes the image, sets the device up as a driver does
 * (reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK, queues 0..3 with
 * their rings in the image, DRIVER_OK), runs the commands, then notifies
 * every queue once more. Broken devices, refused features and rejected
 * requests are fine; a crash, a hang, a leaked frame or a sanitizer
 * report is a bug. (tests/unit/test_virtio_fuzz.c checks more of what a
 * device may do; this finds what a guided search reaches.) */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dev/virtio_mmio.h"
#include "fuzz_vm.h"

#define NSLOTS 4
#define NQUEUES 4
#define MAX_CMDS 64
#define MEM_IMAGE 0x4000
#define DISK_BYTES (64 * 1024)
#define RAM VIRT_RAM_BASE
#define QUEUE_DESC(q) (RAM + (q) * 0x400ull)            /* up to 64 descriptors */
#define QUEUE_AVAIL(q) (RAM + 0x1000 + (q) * 0x100ull)
#define QUEUE_USED(q) (RAM + 0x2000 + (q) * 0x200ull)   /* free for buffers: 0x1400-0x1fff, 0x2800- */

static uint64_t slot_base(unsigned slot) { return VIRT_VIRTIO_BASE + slot * VIRT_VIRTIO_SIZE; }

static uint32_t rd(struct vm *vm, unsigned slot, unsigned off) {
    uint64_t v = 0;
    mmio_bus_read(&vm->bus, slot_base(slot) + off, 4, &v);
    return (uint32_t)v;
}

static void wr(struct vm *vm, unsigned slot, unsigned off, uint32_t v) {
    mmio_bus_write(&vm->bus, slot_base(slot) + off, 4, v);
}

static void set_up(struct vm *vm, unsigned slot, unsigned qsize, uint64_t mask) {
    wr(vm, slot, VIRTIO_MMIO_STATUS, 0);
    wr(vm, slot, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    wr(vm, slot, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    uint64_t features = 0;
    for (unsigned sel = 0; sel < 2; sel++) {
        wr(vm, slot, VIRTIO_MMIO_DEVICE_FEATURES_SEL, sel);
        features |= (uint64_t)rd(vm, slot, VIRTIO_MMIO_DEVICE_FEATURES) << (32 * sel);
    }
    features = (features & mask) | (1ull << VIRTIO_F_VERSION_1);
    for (unsigned sel = 0; sel < 2; sel++) {
        wr(vm, slot, VIRTIO_MMIO_DRIVER_FEATURES_SEL, sel);
        wr(vm, slot, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> (32 * sel)));
    }
    uint32_t status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK;
    wr(vm, slot, VIRTIO_MMIO_STATUS, status);
    for (unsigned q = 0; q < NQUEUES; q++) {
        wr(vm, slot, VIRTIO_MMIO_QUEUE_SEL, q);
        uint32_t max = rd(vm, slot, VIRTIO_MMIO_QUEUE_NUM_MAX);
        if (!max) continue;
        wr(vm, slot, VIRTIO_MMIO_QUEUE_NUM, qsize < max ? qsize : max);
        wr(vm, slot, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)QUEUE_DESC(q));
        wr(vm, slot, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(QUEUE_DESC(q) >> 32));
        wr(vm, slot, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)QUEUE_AVAIL(q));
        wr(vm, slot, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(QUEUE_AVAIL(q) >> 32));
        wr(vm, slot, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)QUEUE_USED(q));
        wr(vm, slot, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(QUEUE_USED(q) >> 32));
        wr(vm, slot, VIRTIO_MMIO_QUEUE_READY, 1);
    }
    wr(vm, slot, VIRTIO_MMIO_STATUS, status | VIRTIO_STATUS_DRIVER_OK);
}

/* One command: what a guest might do between two notifications. */
static void run_command(struct vm *vm, unsigned slot, const uint8_t c[8]) {
    unsigned arg = c[1], off = (unsigned)(c[2] | c[3] << 8);
    uint32_t value;
    memcpy(&value, c + 4, 4);
    switch (c[0] % 8) {
    case 0: wr(vm, slot, VIRTIO_MMIO_QUEUE_NOTIFY, arg % NQUEUES); break;
    case 1: wr(vm, slot, off & 0x1fc, value); break;                              /* any register */
    case 2: mmio_bus_write(&vm->bus, slot_base(slot) + VIRTIO_MMIO_CONFIG + (off & 0xff), 1, value & 0xff); break;
    case 3: (void)rd(vm, slot, off & 0x1fc); break;                                /* reads have effects too */
    case 4: {                                                                      /* host input, and an ack */
        uint8_t in[4];
        memcpy(in, &value, 4);
        vm_console_input(vm, in, arg % 5);
        wr(vm, slot, VIRTIO_MMIO_INTERRUPT_ACK, rd(vm, slot, VIRTIO_MMIO_INTERRUPT_STATUS));
        break;
    }
    case 5: p2m_write(&vm->mem, RAM + (off % MEM_IMAGE & ~3u), &value, 4); break;  /* rings change */
    case 6: { /* a byte of config space read at each width */
        uint64_t v;
        mmio_bus_read(&vm->bus, slot_base(slot) + VIRTIO_MMIO_CONFIG + (off & 0xff), 1u << (arg % 4), &v);
        break;
    }
    case 7: fuzz_frames()->starved = arg & 1; break; /* no frame to back a write just now, or again */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 11) return 0;
    unsigned slot = data[0] % NSLOTS, qsize = 1u << (data[1] % 6), ncmds = data[10];
    uint64_t mask;
    memcpy(&mask, data + 2, 8);
    if (ncmds > MAX_CMDS || size < 11 + 8 * (size_t)ncmds) return 0;
    const uint8_t *cmds = data + 11, *image = cmds + 8 * ncmds;
    size_t image_len = size - 11 - 8 * (size_t)ncmds;
    if (image_len > MEM_IMAGE) image_len = MEM_IMAGE;

    int disk = memfd_create("fuzz-virtio-disk", MFD_CLOEXEC);
    if (disk < 0 || ftruncate(disk, DISK_BYTES) != 0) {
        if (disk >= 0) close(disk);
        return 0;
    }
    char drive[64];
    snprintf(drive, sizeof drive, "file=/proc/self/fd/%d", disk);
    const char *drives[] = {drive};
    struct vm *vm = fuzz_vm_create_with(VM_ENGINE_INTERP, FUZZ_MEM, true, drives, 1);
    close(disk); /* the disk has its own descriptor */
    if (vm->nvirtio != NSLOTS) __builtin_trap(); /* the slots this harness expects */
    if (image_len && !p2m_write(&vm->mem, RAM, image, image_len)) __builtin_trap();
    set_up(vm, slot, qsize, mask);
    for (unsigned i = 0; i < ncmds; i++) run_command(vm, slot, cmds + 8 * i);
    /* Memory back: what waited for it is served now. */
    fuzz_frames()->starved = false;
    for (unsigned q = 0; q < NQUEUES; q++) wr(vm, slot, VIRTIO_MMIO_QUEUE_NOTIFY, q);
    if (getenv("FUZZ_VERBOSE")) {
        uint16_t used[NQUEUES] = {0};
        for (unsigned q = 0; q < NQUEUES; q++) p2m_read(&vm->mem, QUEUE_USED(q) + 2, &used[q], 2);
        fprintf(stderr, "virtio: slot %u status %#x used idx %u %u %u %u\n", slot, rd(vm, slot, VIRTIO_MMIO_STATUS),
                used[0], used[1], used[2], used[3]);
    }
    fuzz_vm_destroy(vm);
    return 0;
}
