/* counter: the well-behaved VM. A CPU-bound loop (ALU work and a counter in
 * memory), no device access, no traps, interrupts off: its instructions per
 * second, as the monitor counts them, measure the CPU it gets while the
 * attackers run beside it. Never ends. */
#include "attack.h"

  ATTACK_START trap
  la a1, count
  li a2, 0
loop:
  ld t0, 0(a1)
  addi t0, t0, 1
  sd t0, 0(a1)
  mul a3, t0, s0
  xor a2, a2, a3
  RAND t1
  andi t2, s0, 1
  beqz t2, loop
  add a2, a2, t0
  j loop

/* Nothing here traps; should something, spin where it can be seen (pc). */
  .align 2
trap:
  j trap

  .data
  .align 3
count: .dword 0

  TOHOST
