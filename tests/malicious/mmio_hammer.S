/* mmio_hammer: wild loads and stores of every size (1, 2, 4, 8 bytes;
 * integer, FP, LR/SC and AMOs), aligned and misaligned, with random values,
 * at random offsets in every device window of the virt board and in the
 * holes between them (and past the end of RAM, and far above it).
 * Interrupts stay off, so whatever the devices raise is never serviced;
 * refused accesses trap and are skipped. Never ends.
 *
 * All it avoids is asking for the run to end: odd values in the syscon
 * finisher (its power-off, reset and fail codes are odd) and the pvpanic
 * event register itself (an attacker that powers itself off attacks
 * nothing). */
#include "attack.h"

  .pushsection .rodata
  .align 4
windows:                          /* base, length */
  .dword SYSCON_BASE, 0x1000
  .dword RTC_BASE, 0xff8           /* not into pvpanic: page-crossing accesses go bytewise */
  .dword PVPANIC_BASE, 0x1000
  .dword CLINT_BASE, 0x10000
  .dword CLINT_BASE, 0x10          /* msip: IPIs */
  .dword CLINT_MTIMECMP, 0x10
  .dword PLIC_BASE, 0x1000         /* priorities */
  .dword PLIC_BASE + 0x1000, 0x1000 /* pending, enables */
  .dword PLIC_CONTEXT, 0x2000      /* thresholds, claim/complete */
  .dword PLIC_BASE, 0x600000
  .dword UART_BASE, 0x8
  .dword UART_BASE, 0x1000
  .dword VIRTIO_BASE, 0x100        /* slot 0's registers */
  .dword VIRTIO_BASE + 0x1000, 0x100
  .dword VIRTIO_BASE, 0x8000       /* every slot, config space included */
  /* holes */
  .dword 0x0, 0x100000
  .dword 0x103000, 0x1000
  .dword 0x1000000, 0x1000000
  .dword 0x2010000, 0x1000
  .dword 0xc600000, 0x1000
  .dword 0x10000100, 0xf00
  .dword 0x10009000, 0x1000
  .dword 0x40000000, 0x1000
  .dword RAM_BASE - 0x1000, 0x1000
  .dword RAM_END - 0x8, 0x1000     /* straddling the end of RAM */
  .dword 0x100000000, 0x1000
  .dword 0x4000000000, 0x1000
  .dword 0xfffffffffffff000, 0x1000
windows_end:
  .equ NWINDOWS, 28
  .if (windows_end - windows) != NWINDOWS * 16
  .error "NWINDOWS does not match the table"
  .endif
  .popsection

  .option norvc                   /* every op slot below is 8 bytes */
  ATTACK_START skip_trap

loop:
  /* window = windows[rand % NWINDOWS] */
  RAND t0
  li t1, NWINDOWS
  remu t1, s0, t1
  slli t1, t1, 4
  la t2, windows
  add t2, t2, t1
  ld a1, 0(t2)                    /* base */
  ld a2, 8(t2)                    /* length */
  RAND t0
  srli t1, s0, 8
  remu t1, t1, a2
  add a1, a1, t1                  /* address: any byte of the window */
  andi t1, s0, 0x30               /* a quarter of the time: 8-byte aligned */
  bnez t1, 1f
  andi a1, a1, -8
1:
  RAND t0
  mv a3, s0                       /* value */
  li t1, SYSCON_BASE
  bne a1, t1, 2f
  andi a3, a3, -2                 /* 0x3333/0x5555/0x7777 are odd */
2:
  li t1, PVPANIC_BASE
  bne a1, t1, 3f
  ori a1, a1, 1                   /* any access there may panic (AMOs add to its 3) */
3:
  fmv.d.x ft0, a3
  RAND t0
  srli t1, s0, 59                 /* op = 0..31 */
  slli t1, t1, 3
  la t2, ops
  add t2, t2, t1
  jr t2

  .align 3
ops:
  sb a3, 0(a1);          j loop
  sh a3, 0(a1);          j loop
  sw a3, 0(a1);          j loop
  sd a3, 0(a1);          j loop
  lb a4, 0(a1);          j loop
  lh a4, 0(a1);          j loop
  lw a4, 0(a1);          j loop
  ld a4, 0(a1);          j loop
  lbu a4, 0(a1);         j loop
  lhu a4, 0(a1);         j loop
  lwu a4, 0(a1);         j loop
  flw ft1, 0(a1);        j loop
  fld ft1, 0(a1);        j loop
  fsw ft0, 0(a1);        j loop
  fsd ft0, 0(a1);        j loop
  lr.w a4, (a1);         j loop
  lr.d a4, (a1);         j loop
  sc.w a4, a3, (a1);     j loop
  sc.d a4, a3, (a1);     j loop
  amoswap.w a4, a3, (a1); j loop
  amoswap.d a4, a3, (a1); j loop
  amoadd.w a4, a3, (a1); j loop
  amoor.d a4, a3, (a1);  j loop
  amomax.w a4, a3, (a1); j loop
  /* the plain sizes again, so that most accesses reach a device */
  sb a3, 0(a1);          j loop
  sh a3, 0(a1);          j loop
  sw a3, 0(a1);          j loop
  sd a3, 0(a1);          j loop
  lb a4, 0(a1);          j loop
  lh a4, 0(a1);          j loop
  lw a4, 0(a1);          j loop
  ld a4, 0(a1);          j loop

  SKIP_HANDLER skip_trap


  TOHOST
