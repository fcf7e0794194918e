/* sleeper: banks CPU credit, then spends it. Every hart waits in wfi for
 * SLEEP_TICKS of mtime (5 s) with its timer armed, using no CPU at all,
 * then spins with interrupts off, forever: a proportional-share scheduler
 * that let a VM keep the credit it did not use while idle would now give
 * it every worker until it caught up (the "sleeper" attack on fair
 * schedulers). Run it with --cpus 2. Never ends. */
#include "attack.h"

#define SLEEP_TICKS 50000000          /* 5 s of the 10 MHz mtime */

  ATTACK_START trap
  li t0, CLINT_MTIME
  ld t1, 0(t0)
  li t2, SLEEP_TICKS
  add t1, t1, t2                      /* when to wake */
  li t2, CLINT_MTIMECMP
  slli t3, a0, 3
  add t2, t2, t3                      /* this hart's mtimecmp */
  sd t1, 0(t2)
  li t3, MIE_MTIE                     /* pending wakes wfi; MIE stays off */
  csrw mie, t3
1:
  wfi
  ld t3, 0(t0)
  bltu t3, t1, 1b
  li t3, -1
  sd t3, 0(t2)
  csrw mie, zero
2:
  j 2b

  .align 2
trap:
  j trap

  TOHOST
