/* device_garbage: writes garbage of every width to every register of the
 * UART, PLIC, CLINT and RTC (all but the power-off and panic devices, whose
 * job is to end the run), reads everything back, and must still be running
 * afterwards to report success. A guest must not be able to crash or hang
 * the monitor through its devices. */
#include "common.h"

  .option nopic
  .section .text.init, "ax", @progbits
  .globl _start
_start:
  la t0, trap
  csrw mtvec, t0
  li s0, 0x9e3779b97f4a7c15        /* garbage pattern, rotated as we go */

  li a0, 0x10000000                /* UART */
  li a1, 0x100
  call scribble
  li a0, 0x0c000000                /* PLIC: priorities, pending, enables */
  li a1, 0x3000
  call scribble
  li a0, 0x0c200000                /* PLIC: hart contexts */
  li a1, 0x2000
  call scribble
  li a0, 0x02000000                /* CLINT: msip and mtimecmp */
  li a1, 0x40
  call scribble
  li a0, 0x02004000
  li a1, 0x40
  call scribble
  li a0, 0x00101000                /* RTC */
  li a1, 0x40
  call scribble
  csrw mie, zero                   /* whatever got raised stays unserviced */
  li t0, 1
  la t1, tohost
  sd t0, 0(t1)
1: j 1b

/* scribble(a0 = base, a1 = length): every 8-byte slot gets sb, sh, sw, sd and
 * the matching loads. */
scribble:
  add a1, a1, a0
2:
  sb s0, 0(a0)
  sh s0, 2(a0)
  sw s0, 4(a0)
  sd s0, 0(a0)
  lb t2, 1(a0)
  lh t2, 2(a0)
  lw t2, 4(a0)
  ld t2, 0(a0)
  slli t3, s0, 13
  srli t4, s0, 51
  or s0, t3, t4
  addi a0, a0, 8
  bltu a0, a1, 2b
  ret

/* Any trap (e.g. a misaligned or refused device access) just skips the
 * instruction: the point is that the monitor survives. */
  .align 2
trap:
  csrr t5, mepc
  lhu t6, 0(t5)
  andi t6, t6, 3
  addi t5, t5, 2
  li t4, 3
  bne t6, t4, 3f
  addi t5, t5, 2
3:
  csrw mepc, t5
  mret

  .section .tohost, "aw", @progbits
  .align 6
  .globl tohost
tohost: .dword 0
  .globl fromhost
fromhost: .dword 0
