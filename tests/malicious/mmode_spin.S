/* mmode_spin: M-mode with interrupts off, in a one-instruction loop, on
 * every hart (run it with --cpus 2): nothing it does ever exits to the
 * monitor, so only the monitor's own instruction budget gets the host
 * thread back. Hart 0 spins on a compressed jump, the others on a
 * 4-byte one. Never ends. */
#include "attack.h"

  ATTACK_START trap
  csrci mstatus, MSTATUS_MIE
  csrw mie, zero
  bnez a0, wide
1: c.j 1b

  .option push
  .option norvc
wide:
1: jal zero, 1b
  .option pop

  .align 2
trap:
  j trap

  TOHOST
