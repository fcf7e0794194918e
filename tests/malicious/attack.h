/*
 * attack.h - scaffolding of the malicious bare-metal guests (tests/malicious).
 *
 * Each program is its own M-mode firmware (rvisor run/create --bios, linked
 * with tests/isa/link.ld at 0x80000000) and attacks the monitor forever: it
 * never writes tohost and never powers off, so a run only ends when the
 * monitor stops it. tests/e2e/test_malicious.py and bench/malicious.py run
 * them beside a well-behaved VM (counter.S).
 *
 * Register conventions shared by the programs:
 *   s0          xorshift64 state (RAND); seeded per hart
 *   t5, t6      belong to trap handlers: main code never keeps values there
 *   s10, s11    handler bookkeeping (counts), read by main code
 */
#ifndef RVISOR_ATTACK_H
#define RVISOR_ATTACK_H

/* The virt board (src/vm/platform.h). */
#define SYSCON_BASE   0x100000
#define RTC_BASE      0x101000
#define PVPANIC_BASE  0x102000
#define CLINT_BASE    0x2000000
#define CLINT_MSIP    0x2000000
#define CLINT_MTIMECMP 0x2004000
#define CLINT_MTIME   0x200bff8
#define PLIC_BASE     0xc000000
#define PLIC_ENABLE   0xc002000   /* context 0 (hart 0, M-mode) */
#define PLIC_CONTEXT  0xc200000   /* context 0: threshold, +4 claim/complete */
#define UART_BASE     0x10000000
#define UART_IRQ      10
#define VIRTIO_BASE   0x10001000
#define VIRTIO_SLOTS  8
#define RAM_BASE      0x80000000
/* The tests give attackers 64 MiB; with more RAM "past the end" is just
 * more RAM, which is harmless. */
#define RAM_END       0x84000000

#define MSTATUS_MIE   0x8
#define MSTATUS_MPP   0x1800
#define MSTATUS_MPP_S 0x0800
#define MSTATUS_FS_INIT 0x2000
#define MIE_MSIE      (1 << 3)
#define MIE_MTIE      (1 << 7)
#define MIE_MEIE      (1 << 11)

/* s0 = xorshift64(s0); tmp is clobbered. */
.macro RAND tmp
  slli \tmp, s0, 13
  xor s0, s0, \tmp
  srli \tmp, s0, 7
  xor s0, s0, \tmp
  slli \tmp, s0, 17
  xor s0, s0, \tmp
.endm

/* The common start: clear the registers the programs rely on, seed the
 * generator from mhartid (never zero), point mtvec at \handler, turn on the
 * FPU (some attacks use FP loads and stores) and give S/U mode all of
 * memory through PMP (tolerating its absence). Leaves the hart id in a0. */
.macro ATTACK_START handler
  .option nopic
  .section .text.init, "ax", @progbits
  .globl _start
_start:
  la t0, 1f
  csrw mtvec, t0
  li t0, -1
  csrw pmpaddr0, t0
  li t0, 0x1f
  csrw pmpcfg0, t0
  .align 2
1:
  la t0, \handler
  csrw mtvec, t0
  csrw mie, zero
  csrci mstatus, MSTATUS_MIE
  li t0, MSTATUS_FS_INIT
  csrs mstatus, t0
  csrw satp, zero
  csrr a0, mhartid
  li s0, 0x9e3779b97f4a7c15
  add s0, s0, a0
  li s10, 0
  li s11, 0
.endm

/* A trap handler that resumes after the trapping instruction (2 or 4
 * bytes, read at mepc, so it must be readable there) and counts the trap
 * in s11. For attacks whose point is the access, not the trap. */
.macro SKIP_HANDLER name
  .align 2
\name:
  csrr t5, mepc
  lhu t6, 0(t5)
  andi t6, t6, 3
  addi t5, t5, 2
  addi t6, t6, -3
  bnez t6, 2f
  addi t5, t5, 2
2:
  csrw mepc, t5
  addi s11, s11, 1
  mret
.endm

/* The HTIF mailbox rvisor looks for in a --bios ELF; never written here. */
.macro TOHOST
  .pushsection .tohost, "aw", @progbits
  .align 6
  .globl tohost
tohost: .dword 0
  .globl fromhost
fromhost: .dword 0
  .popsection
.endm

#endif
