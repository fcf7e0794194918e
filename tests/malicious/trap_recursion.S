/* trap_recursion: a trap handler that faults itself. mtvec points at a nop
 * followed by an illegal instruction, so every trap enters the handler,
 * which traps again, forever, with mepc and mcause rewritten each time and
 * no instruction of the program ever retired past it. (A handler whose
 * first instruction faults is caught by the monitor, which stops the VM:
 * this one's second instruction faults.) Never ends. */
#include "attack.h"

  ATTACK_START handler
  .word 0                           /* the first fault */

  .align 2
handler:
  addi zero, zero, 0
  .word 0

  TOHOST
