/* The memory map and interrupt numbers of the virtual board: a subset of
 * QEMU's RISC-V `virt` machine, so guests configured for it run unchanged. */
#ifndef RVISOR_PLATFORM_H
#define RVISOR_PLATFORM_H

#define VIRT_SYSCON_BASE 0x100000ull
#define VIRT_SYSCON_SIZE 0x1000ull
#define VIRT_RTC_BASE 0x101000ull
#define VIRT_RTC_SIZE 0x1000ull
#define VIRT_PVPANIC_BASE 0x102000ull
#define VIRT_PVPANIC_SIZE 0x1000ull
#define VIRT_VMGENID_BASE 0x103000ull
#define VIRT_VMGENID_SIZE 0x1000ull
#define VIRT_CLINT_BASE 0x2000000ull
#define VIRT_CLINT_SIZE 0x10000ull
#define VIRT_PLIC_BASE 0xc000000ull
#define VIRT_PLIC_SIZE 0x600000ull
#define VIRT_UART_BASE 0x10000000ull
#define VIRT_UART_SIZE 0x100ull
#define VIRT_VIRTIO_BASE 0x10001000ull /* virtio-mmio slots, 0x1000 apart */
#define VIRT_VIRTIO_SIZE 0x1000ull
#define VIRT_VIRTIO_SLOTS 8
#define VIRT_VIRTIO_IRQ 1              /* slot n interrupts on PLIC source 1 + n */
#define VIRT_RAM_BASE 0x80000000ull

#define VIRT_UART_IRQ 10
#define VIRT_RTC_IRQ 11
#define VIRT_VMGENID_IRQ 12
#define VIRT_PLIC_NDEV 95

#define VIRT_TIMEBASE_HZ 10000000ull /* mtime ticks per second, as on QEMU virt */
#define VIRT_UART_CLOCK_HZ 3686400u

#define VM_MAX_HARTS 8
#define VM_MAX_DRIVES 4 /* virtio-blk devices one VM may have */
#define VM_MAX_NETS 2   /* virtio-net devices one VM may have */

#endif
