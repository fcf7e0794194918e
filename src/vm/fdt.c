#include "vm/fdt.h"

#include <libfdt.h>
#include <stdio.h>

#include "vm/vm.h"

#define ISA_STRING "rv64imafdc_zicsr_zifencei_zicntr"
#define PHANDLE_PLIC 1
#define PHANDLE_SYSCON 2
#define PHANDLE_CPU_INTC(i) (16 + (i))

/* libfdt's sequential-write calls all return <0 on error; chain them. */
#define TRY(call)                   \
    do {                            \
        int rc_ = (call);           \
        if (rc_ < 0) return rc_;    \
    } while (0)

static int prop_u64_pair(void *fdt, const char *name, uint64_t a, uint64_t b) {
    fdt64_t v[2] = {cpu_to_fdt64(a), cpu_to_fdt64(b)};
    return fdt_property(fdt, name, v, sizeof v);
}

static int cpus(void *fdt, const struct vm *vm) {
    TRY(fdt_begin_node(fdt, "cpus"));
    TRY(fdt_property_u32(fdt, "#address-cells", 1));
    TRY(fdt_property_u32(fdt, "#size-cells", 0));
    TRY(fdt_property_u32(fdt, "timebase-frequency", (uint32_t)VIRT_TIMEBASE_HZ));
    for (unsigned i = 0; i < vm->nharts; i++) {
        char name[32];
        snprintf(name, sizeof name, "cpu@%u", i);
        TRY(fdt_begin_node(fdt, name));
        TRY(fdt_property_u32(fdt, "phandle", 32 + i));
        TRY(fdt_property_string(fdt, "device_type", "cpu"));
        TRY(fdt_property_u32(fdt, "reg", i));
        TRY(fdt_property_string(fdt, "status", "okay"));
        TRY(fdt_property_string(fdt, "compatible", "riscv"));
        TRY(fdt_property_string(fdt, "riscv,isa", ISA_STRING));
        TRY(fdt_property_string(fdt, "mmu-type", "riscv,sv48"));
        TRY(fdt_begin_node(fdt, "interrupt-controller"));
        TRY(fdt_property_u32(fdt, "#interrupt-cells", 1));
        TRY(fdt_property(fdt, "interrupt-controller", NULL, 0));
        TRY(fdt_property_string(fdt, "compatible", "riscv,cpu-intc"));
        TRY(fdt_property_u32(fdt, "phandle", PHANDLE_CPU_INTC(i)));
        TRY(fdt_end_node(fdt));
        TRY(fdt_end_node(fdt));
    }
    TRY(fdt_begin_node(fdt, "cpu-map"));
    TRY(fdt_begin_node(fdt, "cluster0"));
    for (unsigned i = 0; i < vm->nharts; i++) {
        char name[32];
        snprintf(name, sizeof name, "core%u", i);
        TRY(fdt_begin_node(fdt, name));
        TRY(fdt_property_u32(fdt, "cpu", 32 + i));
        TRY(fdt_end_node(fdt));
    }
    TRY(fdt_end_node(fdt));
    TRY(fdt_end_node(fdt));
    return fdt_end_node(fdt);
}

/* interrupts-extended = <&cpuN-intc irq_a &cpuN-intc irq_b ...> for every hart. */
static int per_hart_irqs(void *fdt, const struct vm *vm, const uint32_t *irqs, unsigned n) {
    fdt32_t cells[VM_MAX_HARTS * 4];
    unsigned k = 0;
    for (unsigned i = 0; i < vm->nharts; i++)
        for (unsigned j = 0; j < n; j++) {
            cells[k++] = cpu_to_fdt32(PHANDLE_CPU_INTC(i));
            cells[k++] = cpu_to_fdt32(irqs[j]);
        }
    return fdt_property(fdt, "interrupts-extended", cells, k * sizeof cells[0]);
}

static int device_node(void *fdt, const char *name, uint64_t base, uint64_t size, const char *compat,
                       size_t compat_len) {
    char node[64];
    snprintf(node, sizeof node, "%s@%llx", name, (unsigned long long)base);
    TRY(fdt_begin_node(fdt, node));
    TRY(fdt_property(fdt, "compatible", compat, (int)compat_len));
    return prop_u64_pair(fdt, "reg", base, size);
}

static int soc(void *fdt, const struct vm *vm) {
    TRY(fdt_begin_node(fdt, "soc"));
    TRY(fdt_property_u32(fdt, "#address-cells", 2));
    TRY(fdt_property_u32(fdt, "#size-cells", 2));
    TRY(fdt_property_string(fdt, "compatible", "simple-bus"));
    TRY(fdt_property(fdt, "ranges", NULL, 0));

    static const char clint_compat[] = "sifive,clint0\0riscv,clint0";
    TRY(device_node(fdt, "clint", VIRT_CLINT_BASE, VIRT_CLINT_SIZE, clint_compat, sizeof clint_compat));
    TRY(per_hart_irqs(fdt, vm, (const uint32_t[]){IRQ_MSI, IRQ_MTI}, 2));
    TRY(fdt_end_node(fdt));

    static const char plic_compat[] = "sifive,plic-1.0.0\0riscv,plic0";
    TRY(device_node(fdt, "plic", VIRT_PLIC_BASE, VIRT_PLIC_SIZE, plic_compat, sizeof plic_compat));
    TRY(fdt_property_u32(fdt, "phandle", PHANDLE_PLIC));
    TRY(fdt_property_u32(fdt, "riscv,ndev", VIRT_PLIC_NDEV));
    TRY(fdt_property_u32(fdt, "#interrupt-cells", 1));
    TRY(fdt_property_u32(fdt, "#address-cells", 0));
    TRY(fdt_property(fdt, "interrupt-controller", NULL, 0));
    TRY(per_hart_irqs(fdt, vm, (const uint32_t[]){IRQ_MEI, IRQ_SEI}, 2)); /* contexts 2i (M) and 2i+1 (S) */
    TRY(fdt_end_node(fdt));

    static const char uart_compat[] = "ns16550a";
    TRY(device_node(fdt, "serial", VIRT_UART_BASE, VIRT_UART_SIZE, uart_compat, sizeof uart_compat));
    TRY(fdt_property_u32(fdt, "clock-frequency", VIRT_UART_CLOCK_HZ));
    TRY(fdt_property_u32(fdt, "interrupts", VIRT_UART_IRQ));
    TRY(fdt_property_u32(fdt, "interrupt-parent", PHANDLE_PLIC));
    TRY(fdt_end_node(fdt));

    static const char rtc_compat[] = "google,goldfish-rtc";
    TRY(device_node(fdt, "rtc", VIRT_RTC_BASE, VIRT_RTC_SIZE, rtc_compat, sizeof rtc_compat));
    TRY(fdt_property_u32(fdt, "interrupts", VIRT_RTC_IRQ));
    TRY(fdt_property_u32(fdt, "interrupt-parent", PHANDLE_PLIC));
    TRY(fdt_end_node(fdt));

    static const char virtio_compat[] = "virtio,mmio";
    for (unsigned i = 0; i < vm->nvirtio; i++) {
        TRY(device_node(fdt, "virtio_mmio", VIRT_VIRTIO_BASE + i * VIRT_VIRTIO_SIZE, VIRT_VIRTIO_SIZE, virtio_compat,
                        sizeof virtio_compat));
        TRY(fdt_property_u32(fdt, "interrupts", VIRT_VIRTIO_IRQ + i));
        TRY(fdt_property_u32(fdt, "interrupt-parent", PHANDLE_PLIC));
        TRY(fdt_end_node(fdt));
    }

    static const char pvpanic_compat[] = "qemu,pvpanic-mmio";
    TRY(device_node(fdt, "pvpanic", VIRT_PVPANIC_BASE, VIRT_PVPANIC_SIZE, pvpanic_compat, sizeof pvpanic_compat));
    TRY(fdt_end_node(fdt));

    static const char vmgenid_compat[] = "microsoft,vmgenid";
    TRY(device_node(fdt, "rng", VIRT_VMGENID_BASE, VIRT_VMGENID_SIZE, vmgenid_compat, sizeof vmgenid_compat));
    TRY(fdt_property_u32(fdt, "interrupts", VIRT_VMGENID_IRQ));
    TRY(fdt_property_u32(fdt, "interrupt-parent", PHANDLE_PLIC));
    TRY(fdt_end_node(fdt));

    static const char test_compat[] = "sifive,test1\0sifive,test0\0syscon";
    TRY(device_node(fdt, "test", VIRT_SYSCON_BASE, VIRT_SYSCON_SIZE, test_compat, sizeof test_compat));
    TRY(fdt_property_u32(fdt, "phandle", PHANDLE_SYSCON));
    TRY(fdt_end_node(fdt));
    return fdt_end_node(fdt);
}

static int syscon_action(void *fdt, const char *node, const char *compat, uint32_t value) {
    TRY(fdt_begin_node(fdt, node));
    TRY(fdt_property_string(fdt, "compatible", compat));
    TRY(fdt_property_u32(fdt, "regmap", PHANDLE_SYSCON));
    TRY(fdt_property_u32(fdt, "offset", 0));
    TRY(fdt_property_u32(fdt, "value", value));
    return fdt_end_node(fdt);
}

static int build(const struct vm *vm, const struct fdt_params *p, void *fdt, size_t size) {
    TRY(fdt_create(fdt, (int)size));
    TRY(fdt_finish_reservemap(fdt));
    TRY(fdt_begin_node(fdt, ""));
    TRY(fdt_property_u32(fdt, "#address-cells", 2));
    TRY(fdt_property_u32(fdt, "#size-cells", 2));
    TRY(fdt_property_string(fdt, "compatible", "riscv-virtio"));
    TRY(fdt_property_string(fdt, "model", "rvisor,virt"));

    TRY(fdt_begin_node(fdt, "chosen"));
    if (p->bootargs) TRY(fdt_property_string(fdt, "bootargs", p->bootargs));
    TRY(fdt_property_string(fdt, "stdout-path", "/soc/serial@10000000"));
    if (p->initrd_end > p->initrd_start) {
        TRY(fdt_property_u64(fdt, "linux,initrd-start", p->initrd_start));
        TRY(fdt_property_u64(fdt, "linux,initrd-end", p->initrd_end));
    }
    TRY(fdt_end_node(fdt));

    char mem[32];
    snprintf(mem, sizeof mem, "memory@%llx", (unsigned long long)vm->mem.base);
    TRY(fdt_begin_node(fdt, mem));
    TRY(fdt_property_string(fdt, "device_type", "memory"));
    TRY(prop_u64_pair(fdt, "reg", vm->mem.base, vm->mem.size));
    TRY(fdt_end_node(fdt));

    TRY(cpus(fdt, vm));
    TRY(soc(fdt, vm));
    TRY(syscon_action(fdt, "poweroff", "syscon-poweroff", 0x5555));
    TRY(syscon_action(fdt, "reboot", "syscon-reboot", 0x7777));
    TRY(fdt_end_node(fdt));
    TRY(fdt_finish(fdt));
    return fdt_totalsize(fdt);
}

int fdt_build(const struct vm *vm, const struct fdt_params *p, void *buf, size_t size, char *err, size_t errlen) {
    int rc = build(vm, p, buf, size);
    if (rc < 0) {
        snprintf(err, errlen, "cannot build the device tree: %s", fdt_strerror(rc));
        return -1;
    }
    return rc;
}
