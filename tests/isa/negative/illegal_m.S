/* negative/illegal_m: executes an illegal instruction in M-mode with mtvec
 * = 0 and no trap handler anywhere.  The trap goes to address 0, where
 * there is no memory, so the hart can never make progress again: rvisor
 * must notice (e.g. a fetch fault while fetching the trap vector), stop and
 * exit non-zero with a message instead of hanging.  (QEMU just spins.)
 * If the illegal instruction were wrongly ignored, the program reports
 * failure 1 through HTIF, so it never passes. */
  .option nopic
  .option norvc
  .section .text.init, "ax", @progbits
  .globl _start
_start:
  csrw mtvec, zero                 /* "left at 0": make sure of it */
  .word 0x1234506b                 /* reserved major opcode: illegal */
  li t0, (1 << 1) | 1              /* not reached: report failure 1 */
  la t1, tohost
  sd t0, 0(t1)
1:
  j 1b

  .section .tohost, "aw", @progbits
  .align 6
  .globl tohost
  .type tohost, @object
  .size tohost, 8
tohost: .dword 0
  .globl fromhost
  .type fromhost, @object
  .size fromhost, 8
fromhost: .dword 0
