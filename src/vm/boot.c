#include "vm/boot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/fdt.h"
#include "vm/loader.h"
#include "vm/vm.h"

#define MiB (1024ull * 1024)
#define FDT_MAX_SIZE (64 * 1024ull)
#define KERNEL_ALIGN (2 * MiB)      /* RV64 kernels must start on a 2 MiB boundary */
#define IMAGE_MAGIC2 0x05435352u    /* "RSC\x05" at offset 56 of a RISC-V Linux Image */
#define FW_DYNAMIC_MAGIC 0x4942534full
#define FW_DYNAMIC_VERSION 2

/* The header at the start of a RISC-V Linux Image (Documentation/riscv/boot-image-header.rst). */
struct image_header {
    uint32_t code0, code1;
    uint64_t text_offset, image_size, flags;
    uint32_t version, res1;
    uint64_t res2, magic;
    uint32_t magic2, res3;
};

struct layout {
    uint64_t kernel, kernel_end;
    uint64_t initrd, initrd_end;
    uint64_t fdt;
};

static uint64_t ram_end(const struct vm *vm) { return vm->mem.base + vm->mem.size; }

static bool load_kernel(struct vm *vm, const char *path, uint64_t at, struct layout *l, char *err, size_t errlen) {
    uint8_t *data;
    size_t size;
    if (!load_file(path, "kernel", vm->mem.size, &data, &size, err, errlen)) return false;
    struct image_header hdr;
    bool ok = false;
    if (elf_is_elf(data, size)) {
        snprintf(err, errlen, "kernel '%s' is an ELF file (vmlinux); pass the raw Image (arch/riscv/boot/Image)", path);
    } else if (size < sizeof hdr) {
        snprintf(err, errlen, "kernel '%s' is truncated (%zu bytes)", path, size);
    } else {
        memcpy(&hdr, data, sizeof hdr);
        uint64_t image_size = hdr.image_size ? hdr.image_size : size;
        if (hdr.magic2 != IMAGE_MAGIC2) {
            snprintf(err, errlen, "kernel '%s' is not a RISC-V Linux Image (no RSC\\x05 magic in its header)", path);
        } else if (size < image_size / 2) {
            /* image_size includes BSS, which is never half of a real kernel. */
            snprintf(err, errlen, "kernel '%s' is truncated: its header says %llu bytes, the file has %zu", path,
                     (unsigned long long)image_size, size);
        } else if (at < vm->mem.base || at + image_size > ram_end(vm)) {
            snprintf(err, errlen, "kernel '%s' needs %llu MiB but the guest has %llu MiB", path,
                     (unsigned long long)((at - vm->mem.base + image_size + MiB - 1) / MiB),
                     (unsigned long long)(vm->mem.size / MiB));
        } else if (!p2m_write(&vm->mem, at, data, size)) {
            snprintf(err, errlen, "not enough machine memory to load kernel '%s'", path);
        } else {
            l->kernel = at;
            l->kernel_end = at + (image_size > size ? image_size : size);
            ok = true;
        }
    }
    free(data);
    return ok;
}

/* The DTB goes at the top of RAM, the initrd just below it. */
static bool place_initrd(struct vm *vm, const char *path, struct layout *l, char *err, size_t errlen) {
    l->fdt = ram_end(vm) - FDT_MAX_SIZE;
    if (!path) return true;
    uint8_t *data;
    size_t size;
    if (!load_file(path, "initrd", vm->mem.size, &data, &size, err, errlen)) return false;
    uint64_t start = (l->fdt - size) & ~0xfffull;
    if (size > l->fdt - l->kernel_end || start < l->kernel_end) {
        snprintf(err, errlen, "initrd '%s' (%zu KiB) does not fit in guest memory (%llu MiB) after the kernel", path,
                 size / 1024, (unsigned long long)(vm->mem.size / MiB));
        free(data);
        return false;
    }
    bool ok = p2m_write(&vm->mem, start, data, size);
    free(data);
    if (!ok) {
        snprintf(err, errlen, "not enough machine memory to load initrd '%s'", path);
        return false;
    }
    l->initrd = start;
    l->initrd_end = start + size;
    return true;
}

static bool write_fdt(struct vm *vm, const struct boot_config *bc, const struct layout *l, char *err, size_t errlen) {
    void *buf = malloc(FDT_MAX_SIZE);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    struct fdt_params p = {.bootargs = bc->append, .initrd_start = l->initrd, .initrd_end = l->initrd_end};
    int len = fdt_build(vm, &p, buf, FDT_MAX_SIZE, err, errlen);
    bool ok = len > 0;
    if (ok && !p2m_write(&vm->mem, l->fdt, buf, (size_t)len)) {
        snprintf(err, errlen, "not enough machine memory for the device tree");
        ok = false;
    }
    free(buf);
    return ok;
}

/* Harts start like QEMU's reset vector leaves them: a0 = hartid, a1 = DTB. */
static void start_hart(struct hart *h, uint64_t pc, int priv, uint64_t a1, uint64_t a2) {
    h->pc = pc;
    h->priv = priv;
    h->x[10] = h->id;
    h->x[11] = a1;
    h->x[12] = a2;
    hart_update_tlb_sets(h);
}

/* With the SBI in the monitor, the monitor plays M-mode firmware: it
 * delegates what OpenSBI would, and lets S and U mode read the counters. */
static void become_firmware(struct hart *h) {
    h->sbi_in_monitor = true;
    h->medeleg = 0xffffull & ~((1ull << EXC_ECALL_S) | (1ull << 10) | (1ull << EXC_ECALL_M) | (1ull << 14));
    h->mideleg = MIP_SSIP | MIP_STIP | MIP_SEIP;
    h->mcounteren = 7;
    h->scounteren = 7;
}

static bool boot_linux(struct vm *vm, const struct boot_config *bc, char *err, size_t errlen) {
    struct layout l = {0};
    if (!load_kernel(vm, bc->kernel, vm->mem.base + KERNEL_ALIGN, &l, err, errlen)) return false;
    if (!place_initrd(vm, bc->initrd, &l, err, errlen)) return false;
    if (l.fdt < l.kernel_end) {
        snprintf(err, errlen, "guest memory (%llu MiB) is too small for this kernel", (unsigned long long)(vm->mem.size / MiB));
        return false;
    }
    if (!write_fdt(vm, bc, &l, err, errlen)) return false;
    vm->sbi_in_monitor = true;
    for (unsigned i = 0; i < vm->nharts; i++) {
        struct hart *h = vm->harts[i];
        become_firmware(h);
        start_hart(h, l.kernel, PRIV_S, l.fdt, 0);
        h->hsm_stopped = i != 0; /* secondaries wait for SBI HSM hart_start */
    }
    return true;
}

static bool boot_bios(struct vm *vm, const struct boot_config *bc, char *err, size_t errlen) {
    uint8_t *data;
    size_t size;
    if (!load_file(bc->bios, "bios", vm->mem.size, &data, &size, err, errlen)) return false;
    uint64_t entry, fw_end;
    if (elf_is_elf(data, size)) {
        struct elf_image img;
        char why[200];
        bool ok = elf_load(&vm->mem, data, size, &img, why, sizeof why);
        free(data);
        if (!ok) {
            snprintf(err, errlen, "bios '%s': %s", bc->bios, why);
            return false;
        }
        entry = img.entry;
        fw_end = img.high;
        vm->htif.tohost = img.tohost;
        vm->htif.fromhost = img.fromhost;
    } else {
        bool ok = p2m_write(&vm->mem, vm->mem.base, data, size);
        free(data);
        if (!ok) {
            snprintf(err, errlen, "bios '%s' (%zu bytes) does not fit in guest memory%s", bc->bios, size,
                     vm->mem.exhausted ? " (machine memory exhausted)" : "");
            return false;
        }
        entry = vm->mem.base;
        fw_end = vm->mem.base + size;
    }

    struct layout l = {0};
    uint64_t fw_info = 0;
    if (bc->kernel) {
        uint64_t at = (fw_end + KERNEL_ALIGN - 1) & ~(KERNEL_ALIGN - 1);
        if (!load_kernel(vm, bc->kernel, at, &l, err, errlen)) return false;
    }
    if (!place_initrd(vm, bc->initrd, &l, err, errlen)) return false;
    if (!write_fdt(vm, bc, &l, err, errlen)) return false;
    if (bc->kernel) {
        /* OpenSBI's fw_dynamic reads where to go next from this block (a2). */
        uint64_t info[6] = {FW_DYNAMIC_MAGIC, FW_DYNAMIC_VERSION, l.kernel, 1 /* S-mode */, 0, ~0ull};
        fw_info = l.fdt - sizeof info;
        if (!p2m_write(&vm->mem, fw_info, info, sizeof info)) {
            snprintf(err, errlen, "not enough machine memory for the firmware's boot information");
            return false;
        }
    }
    for (unsigned i = 0; i < vm->nharts; i++) start_hart(vm->harts[i], entry, PRIV_M, l.fdt, fw_info);
    return true;
}

bool vm_boot(struct vm *vm, const struct boot_config *bc, char *err, size_t errlen) {
    if (bc->bios) return boot_bios(vm, bc, err, errlen);
    if (!bc->kernel) {
        snprintf(err, errlen, "nothing to run: give --kernel or --bios");
        return false;
    }
    return boot_linux(vm, bc, err, errlen);
}
