/* exception_loop: a trap handler that returns to the faulting instruction,
 * which faults again, forever. Never ends.
 *
 * The handler moves on to the next kind of fault after PER_CASE traps, so
 * that every kind gets its turn: an illegal instruction, an unknown CSR, a
 * load and a store access fault (nothing mapped at 0), a misaligned load
 * from a device, an AMO on a device, ecall and ebreak in M-mode, a fetch
 * from nothing, and an instruction page fault in S-mode under an Sv39
 * table that maps nothing (every trap is an satp-regime fault, taken to
 * M-mode and returned from into S-mode).
 *
 * Registers: s11 traps taken in this case, s3 the case, s4 the table
 * base; the handler uses t5, t6 only. */
#include "attack.h"

#define PER_CASE 100000
#define SATP_SV39 (8 << 60)
#define NCASES 10

  ATTACK_START trap
  li s3, 0
  la s4, cases
  j run_case

/* Jumps to case s3 (from the handler, with mepc; from here directly). */
run_case:
  slli t0, s3, 3
  add t0, t0, s4
  ld t0, 0(t0)
  jr t0

case_illegal:
  .word 0                           /* all zeros: illegal */
case_csr:
  csrr t0, 0x7ff                    /* no such CSR */
case_load:
  ld t0, 0(zero)
case_store:
  sd t0, 8(zero)
case_mmio_misaligned:
  li t1, UART_BASE + 1
  lw t0, 0(t1)
case_mmio_amo:
  li t1, PLIC_BASE
  amoadd.w t0, t0, (t1)
case_ecall:
  ecall
case_ebreak:
  ebreak
case_fetch:
  jr zero                           /* mepc = 0: the handler returns there */
case_smode_page_fault:
  la t0, empty_root
  srli t0, t0, 12
  li t1, SATP_SV39
  or t0, t0, t1
  csrw satp, t0
  sfence.vma
  li t0, MSTATUS_MPP
  csrc mstatus, t0
  li t0, MSTATUS_MPP_S
  csrs mstatus, t0
  la t0, case_smode_page_fault      /* any address: nothing is mapped */
  csrw mepc, t0
  mret

  .align 2
trap:
  addi s11, s11, 1
  li t5, PER_CASE
  bgeu s11, t5, next_case
  mret                              /* to the same instruction, and MPP */
next_case:
  li s11, 0
  csrw satp, zero                   /* out of S-mode, if the case was there */
  sfence.vma
  li t5, MSTATUS_MPP
  csrs mstatus, t5
  addi s3, s3, 1
  li t5, NCASES
  bltu s3, t5, 1f
  li s3, 0
1:
  slli t5, s3, 3
  add t5, t5, s4
  ld t5, 0(t5)
  csrw mepc, t5
  mret

  .section .rodata
  .align 3
cases:
  .dword case_illegal, case_csr, case_load, case_store, case_mmio_misaligned
  .dword case_mmio_amo, case_ecall, case_ebreak, case_fetch, case_smode_page_fault
cases_end:
  .if (cases_end - cases) != NCASES * 8
  .error "NCASES does not match the table"
  .endif

  .section .pages, "aw", @nobits
  .align 12
empty_root: .skip 4096

  TOHOST
