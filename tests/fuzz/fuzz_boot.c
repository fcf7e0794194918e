/* libFuzzer harness: the boot loaders (vm/boot.c, vm/loader.c, vm/elf.c)
 * on hostile files, then a short run of whatever they loaded.
 *
 * Input: one byte choosing how the rest is used, then the file's bytes,
 * handed over as a file (a memfd, by its /proc/self/fd path, which
 * host_file_open accepts as the regular file it is):
 *   0  the kernel (a RISC-V Linux Image; the SBI in the monitor, S-mode)
 *   1  the bios (an ELF64 loaded by its segments, or a raw binary at RAM)
 *   2  the initrd, after a minimal valid kernel
 *   3  the bios, followed by a minimal valid kernel (fw_dynamic hand-over)
 * When the boot succeeds, hart 0 runs BOOT_BUDGET instructions of it with
 * the interpreter. A refused file is fine; a crash, a hang or a sanitizer
 * report is a bug. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_vm.h"
#include "vm/boot.h"

#define BOOT_BUDGET 5000

/* A file holding len bytes; its path in path. -1 if the host refuses. */
static int file_of(const void *data, size_t len, char path[64]) {
    int fd = memfd_create("fuzz-boot", MFD_CLOEXEC);
    if (fd < 0) return -1;
    if (len && pwrite(fd, data, len, 0) != (ssize_t)len) {
        close(fd);
        return -1;
    }
    snprintf(path, 64, "/proc/self/fd/%d", fd);
    return fd;
}

/* The smallest Image the loader takes: a header (magic "RSC\x05" at 56)
 * whose first instruction is `j .`. */
static void tiny_kernel(uint8_t img[64]) {
    memset(img, 0, 64);
    static const uint8_t jump_self[4] = {0x6f, 0x00, 0x00, 0x00};
    memcpy(img, jump_self, 4);
    static const uint8_t magic2[4] = {'R', 'S', 'C', 0x05};
    memcpy(img + 56, magic2, 4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned mode = data[0] % 4;
    char path[64], kpath[64];
    int fd = file_of(data + 1, size - 1, path), kfd = -1;
    if (fd < 0) return 0;
    struct boot_config bc = {.append = "console=ttyS0 earlycon"};
    if (mode >= 2) {
        uint8_t img[64];
        tiny_kernel(img);
        if ((kfd = file_of(img, sizeof img, kpath)) < 0) {
            close(fd);
            return 0;
        }
    }
    switch (mode) {
    case 0: bc.kernel = path; break;
    case 1: bc.bios = path; break;
    case 2: bc.kernel = kpath, bc.initrd = path; break;
    case 3: bc.bios = path, bc.kernel = kpath; break;
    }
    struct vm *vm = fuzz_vm_create(VM_ENGINE_INTERP, FUZZ_MEM);
    char err[512];
    if (vm_boot(vm, &bc, err, sizeof err)) fuzz_vm_run(vm, BOOT_BUDGET);
    else fuzz_say("boot", err);
    fuzz_vm_destroy(vm);
    close(fd);
    if (kfd >= 0) close(kfd);
    return 0;
}
