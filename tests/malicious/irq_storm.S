/* irq_storm: interrupt storms, run with --cpus 2. Never ends.
 *
 * Hart 0 cycles through phases, each STORM interrupts long, with a handler
 * that re-arms the source at once, so the hart takes interrupt after
 * interrupt and its main code makes no progress until the handler ends
 * the phase:
 *   A  machine timer in the past: mtimecmp = 0, re-written by the handler;
 *   B  software interrupt to itself: the handler writes its msip = 1 again
 *      (each write of 1 is an IPI, which wakes the monitor's scheduler);
 *   C  the UART's THR-empty interrupt through the PLIC: claim, toggle the
 *      UART's IER to raise it again, complete;
 *   D  (for WAIT_TICKS of mtime) a timer one tick ahead and wfi: the hart
 *      goes idle and is woken 100 ns later, over and over, so its harts
 *      leave and rejoin the monitor's scheduler as often as they can;
 *   E  interrupts off: STORM writes of msip = 1 to the other hart.
 * Hart 1 and up, interrupts off, write msip = 1 to hart 0 and to
 * themselves in a loop: a storm of IPIs (and of the wakeups they cause).
 *
 * Registers: s11 interrupts taken, s7 the count that ends the phase
 * (the handler then clears mie), s9 the timer mode (0: in the past,
 * else ticks ahead), s8 scratch of the handler. */
#include "attack.h"

#define STORM 200000
#define WAIT_TICKS 500000           /* 50 ms of mtime */

  ATTACK_START irq_trap
  bnez a0, ipi_storm

  li t0, PLIC_BASE + 4 * UART_IRQ   /* priority 7 for the UART */
  li t1, 7
  sw t1, 0(t0)
  li t0, PLIC_ENABLE                /* enabled for hart 0's M-mode context */
  li t1, 1 << UART_IRQ
  sw t1, 0(t0)
  li t0, PLIC_CONTEXT               /* threshold 0 */
  sw zero, 0(t0)
  li t0, UART_BASE
  sb zero, 1(t0)                    /* IER: nothing yet */

phases:
  /* A: timer in the past */
  li s9, 0
  li t0, CLINT_MTIMECMP
  sd zero, 0(t0)
  li t0, MIE_MTIE
  call storm
  li t0, CLINT_MTIMECMP
  li t1, -1
  sd t1, 0(t0)

  /* B: IPIs to itself */
  li t0, CLINT_MSIP
  li t1, 1
  sw t1, 0(t0)
  li t0, MIE_MSIE
  call storm
  li t0, CLINT_MSIP
  sw zero, 0(t0)

  /* C: the UART through the PLIC */
  li t0, UART_BASE
  li t1, 2                          /* ETBEI: THR empty raises it at once */
  sb t1, 1(t0)
  li t0, MIE_MEIE
  call storm
  li t0, UART_BASE
  sb zero, 1(t0)

  /* D: one tick ahead, and wait for it */
  li s9, 1
  li s7, -1                         /* the handler never ends this phase */
  li t2, CLINT_MTIME
  ld t3, 0(t2)
  addi t1, t3, 1
  li t0, WAIT_TICKS
  add t3, t3, t0                    /* when the phase ends */
  li t0, CLINT_MTIMECMP
  sd t1, 0(t0)
  li t0, MIE_MTIE
  csrw mie, t0
  csrsi mstatus, MSTATUS_MIE
1:
  wfi
  ld t0, 0(t2)
  bltu t0, t3, 1b
  csrci mstatus, MSTATUS_MIE
  csrw mie, zero
  li t0, CLINT_MTIMECMP
  li t1, -1
  sd t1, 0(t0)

  /* E: IPIs to hart 1 with interrupts off */
  li t0, CLINT_MSIP + 4
  li t1, 1
  li t2, STORM
2:
  sw t1, 0(t0)
  addi t2, t2, -1
  bnez t2, 2b
  j phases

/* storm(t0 = mie bits): enables them until the handler has taken STORM
 * more interrupts and cleared mie. */
storm:
  li s7, STORM
  add s7, s7, s11
  csrw mie, t0
  csrsi mstatus, MSTATUS_MIE
3:
  bltu s11, s7, 3b
  csrci mstatus, MSTATUS_MIE
  csrw mie, zero
  ret

/* Harts 1 and up: IPIs to hart 0 and to themselves, as fast as they can. */
ipi_storm:
  li t0, CLINT_MSIP
  slli t1, a0, 2
  add t1, t1, t0                    /* its own msip */
  li t2, 1
4:
  sw t2, 0(t0)
  sw t2, 0(t1)
  sw zero, 0(t1)
  j 4b

  .align 2
irq_trap:
  csrr t5, mcause
  bgez t5, skip                     /* an exception: not expected, skip it */
  addi s11, s11, 1
  bltu s11, s7, rearm
  csrw mie, zero                    /* the phase is over */
  mret
rearm:
  andi t5, t5, 63
  li t6, 7
  beq t5, t6, on_timer
  li t6, 3
  beq t5, t6, on_soft
  li t6, 11
  beq t5, t6, on_external
  mret
on_timer:
  li t5, 0
  beqz s9, 5f
  li t6, CLINT_MTIME
  ld t5, 0(t6)
  add t5, t5, s9
5:
  li t6, CLINT_MTIMECMP
  sd t5, 0(t6)
  mret
on_soft:
  li t6, CLINT_MSIP
  li t5, 1
  sw t5, 0(t6)
  mret
on_external:
  li t6, PLIC_CONTEXT + 4
  lw s8, 0(t6)                      /* claim */
  li t6, UART_BASE
  li t5, 2
  sb zero, 1(t6)                    /* ETBEI off and on: THR empty again */
  sb t5, 1(t6)
  li t6, PLIC_CONTEXT + 4
  sw s8, 0(t6)                      /* complete */
  mret
skip:
  csrr t5, mepc
  lhu t6, 0(t5)
  andi t6, t6, 3
  addi t5, t5, 2
  addi t6, t6, -3
  bnez t6, 6f
  addi t5, t5, 2
6:
  csrw mepc, t5
  mret

  TOHOST
