/* libFuzzer harness: the instruction decoder and both engines that run
 * what it decodes (the interpreter, then the binary translator).
 *
 * Input: one byte of set-up, then code. The code goes to the start of RAM
 * of a fresh 1-hart VM, the hart starts there (traps come back there too:
 * mtvec and stvec point at it), with registers pointing into RAM and at
 * the devices so that loads, stores and AMOs reach memory and MMIO, and
 * runs at most HART_BUDGET instructions. Set-up byte: bits 0-1 the
 * privilege level (0 U, 1 S, 2 and 3 M), bit 2 the SBI in the monitor
 * (ecall from S-mode is a hypercall, as when booting Linux without
 * firmware), bit 3 the FPU on (mstatus.FS), bit 4 interrupts enabled
 * (mstatus.MIE/SIE, every mie bit), bit 5 every exception and
 * interrupt that may be delegated to S-mode delegated.
 * Exceptions, traps and guest faults are fine; a crash, a hang or a
 * sanitizer report is a bug. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_vm.h"

#define HART_BUDGET 10000
#define MAX_CODE (64 * 1024)

static void set_up(struct hart *h, uint8_t cfg) {
    static const uint64_t devices[] = {VIRT_UART_BASE, VIRT_CLINT_BASE, VIRT_PLIC_BASE, VIRT_RTC_BASE,
                                       VIRT_VIRTIO_BASE, VIRT_VIRTIO_BASE + VIRT_VIRTIO_SIZE, VIRT_SYSCON_BASE,
                                       VIRT_PVPANIC_BASE};
    /* x1..x15 into RAM (code, then data pages), x16..x23 at devices, the rest small numbers. */
    for (unsigned r = 1; r < 16; r++) h->x[r] = VIRT_RAM_BASE + (uint64_t)r * 0x1000 + r * 8;
    for (unsigned r = 16; r < 24; r++) h->x[r] = devices[r - 16];
    for (unsigned r = 24; r < 32; r++) h->x[r] = r - 24;
    h->x[2] = VIRT_RAM_BASE + FUZZ_MEM - 64; /* sp */
    h->pc = h->mtvec = h->stvec = VIRT_RAM_BASE;
    unsigned priv = cfg & 3;
    h->priv = priv == 2 ? 3 : (int)priv;
    if (cfg & 8) h->mstatus |= MSTATUS_FS;
    if (cfg & 16) {
        h->mstatus |= MSTATUS_MIE | MSTATUS_SIE;
        h->mie = MIP_SSIP | MIP_MSIP | MIP_STIP | MIP_MTIP | MIP_SEIP | MIP_MEIP;
    }
    if (cfg & 32) {
        /* What the CSRs accept (hart/csr.c): a guest can write no more. */
        h->medeleg = 0xffffull & ~(1ull << EXC_ECALL_M) & ~(1ull << 10) & ~(1ull << 14);
        h->mideleg = MIP_SSIP | MIP_STIP | MIP_SEIP;
    }
    hart_update_tlb_sets(h);
}

static void run_once(enum vm_engine engine, uint8_t cfg, const uint8_t *code, size_t len) {
    struct vm *vm = fuzz_vm_create(engine, FUZZ_MEM);
    if (len && !p2m_write(&vm->mem, VIRT_RAM_BASE, code, len)) __builtin_trap();
    if (cfg & 4) {
        vm->sbi_in_monitor = true;
        vm->harts[0]->sbi_in_monitor = true;
    }
    set_up(vm->harts[0], cfg);
    fuzz_vm_run(vm, HART_BUDGET);
    fuzz_vm_destroy(vm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > MAX_CODE + 1) return 0;
    run_once(VM_ENGINE_INTERP, data[0], data + 1, size - 1);
    if (jit_supported()) run_once(VM_ENGINE_JIT, data[0], data + 1, size - 1);
    return 0;
}
