/* negative/jump_unmapped: jumps to an address where there is neither RAM
 * nor a device, with no trap handler (mtvec = 0, also unmapped). rvisor
 * must stop with a message and a non-zero exit instead of spinning. */
  .option nopic
  .option norvc
  .section .text.init, "ax", @progbits
  .globl _start
_start:
  csrw mtvec, zero
  li t0, 0x40000000                /* between the devices and RAM: nothing there */
  jr t0
  li t0, (1 << 1) | 1              /* not reached: report failure 1 */
  la t1, tohost
  sd t0, 0(t1)
1:
  j 1b

  .section .tohost, "aw", @progbits
  .align 6
  .globl tohost
tohost: .dword 0
  .globl fromhost
fromhost: .dword 0
