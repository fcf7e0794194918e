/* priv_irq: interrupts.
 *   CLINT timer: mtimecmp/mtime -> mip.MTIP, taken only with mie.MTIE and
 *   mstatus.MIE in M (always in S/U), mcause = 2^63+7, mepc resumable;
 *   wfi returning on a pending (even globally disabled) interrupt;
 *   CLINT msip software interrupt; mip.MTIP/MSIP read-only to csr writes;
 *   mip.STIP/SSIP written by M, delegated with mideleg to S (scause =
 *   2^63+5 / 2^63+1, sstatus.SIE gating in S, always taken in U, never in M);
 *   not delegated -> M; vectored mtvec (if supported). */
#include "common.h"

#define TIMEOUT_TICKS 50000000     /* 5 s at 10 MHz: generous slack */

/* Spin until the expected trap was taken (trap_expect consumed); fail once
 * mtime has advanced TIMEOUT_TICKS since entry.  Clobbers a3-a5. */
#define WAIT_FOR_TRAP \
  li a3, CLINT_MTIME; ld a4, 0(a3); li a5, TIMEOUT_TICKS; add a4, a4, a5; \
  7795: la a5, trap_record; ld a5, TR_EXPECT(a5); addi a5, a5, 1; beqz a5, 7796f; \
  ld a5, 0(a3); bltu a5, a4, 7795b; j fail; 7796:

#define SET_MTIMECMP_REL(ticks) \
  li a3, CLINT_MTIME; ld a4, 0(a3); li a5, ticks; add a4, a4, a5; \
  li a3, CLINT_MTIMECMP; sd a4, 0(a3)
#define SET_MTIMECMP_ABS(val) \
  li a3, CLINT_MTIMECMP; li a4, val; sd a4, 0(a3)

#define LOAD_SREC(reg, off) la reg, s_record; ld reg, off(reg)

#define MIP_BIT(reg, bit) csrr reg, mip; srli reg, reg, bit; andi reg, reg, 1

RVTEST_BEGIN
  .option norvc
  csrw mie, zero
  SET_MTIMECMP_ABS(-1)

  /* ---- timer pending bit follows mtimecmp ---- */
  TEST_CASE(1, a0, 0, MIP_BIT(a0, 7))
  TEST_CASE(2, a0, 1, SET_MTIMECMP_ABS(0); MIP_BIT(a0, 7))
  TEST_CASE(3, a0, 1, li a1, MIP_MTIP; csrc mip, a1; MIP_BIT(a0, 7))        /* read-only */
  TEST_CASE(4, a0, 0, SET_MTIMECMP_ABS(-1); MIP_BIT(a0, 7))

  /* ---- timer interrupt in M ---- */
  TEST_NUM(5)
  SET_MTIMECMP_REL(1000)
  EXPECT_TRAP(CAUSE_MTI)
  li a1, MIP_MTIP
  csrs mie, a1
  csrsi mstatus, MSTATUS_MIE
  WAIT_FOR_TRAP
  csrci mstatus, MSTATUS_MIE
  TEST_CASE(6, a0, CAUSE_MTI, LOAD_TRAP_FIELD(a0, TR_CAUSE))
  TEST_CASE(7, a0, 0, csrr a0, mie)                                  /* handler masked it */
  TEST_CASE(8, a0, 1, MIP_BIT(a0, 7))                                /* still pending */
  TEST_CASE(9, a0, 3, LOAD_TRAP_FIELD(a0, TR_STATUS); srli a0, a0, 11; andi a0, a0, 3)
  TEST_CASE(10, a0, 1, LOAD_TRAP_FIELD(a0, TR_STATUS); srli a0, a0, 7; andi a0, a0, 1) /* MPIE */
  TEST_CASE(11, a0, 0, LOAD_TRAP_FIELD(a0, TR_TVAL))
  TEST_CASE(12, a0, 0, SET_MTIMECMP_ABS(-1); MIP_BIT(a0, 7))

  /* ---- pending + enabled but mstatus.MIE = 0: not taken in M ---- */
  TEST_NUM(13)
  SET_MTIMECMP_ABS(0)
  li a1, MIP_MTIP
  csrs mie, a1
  li a2, 1000
1: addi a2, a2, -1
  bnez a2, 1b                      /* any trap here would be unexpected */
  /* ... and taken as soon as MIE is set */
  TEST_NUM(14)
  EXPECT_TRAP(CAUSE_MTI)
  csrsi mstatus, MSTATUS_MIE
  nop
  nop
  csrci mstatus, MSTATUS_MIE
  CHECK_TRAP_TAKEN

  /* ---- M interrupts are always enabled in S and U ---- */
  TEST_NUM(15)
  li a1, MIP_MTIP
  csrs mie, a1                     /* still pending (mtimecmp = 0), MIE = 0 */
  EXPECT_TRAP(CAUSE_MTI)
  GOTO_SMODE
  nop
  nop
  CHECK_TRAP_TAKEN
  TEST_CASE(16, a0, 1, LOAD_TRAP_FIELD(a0, TR_STATUS); srli a0, a0, 11; andi a0, a0, 3)
  GOTO_MMODE_FROM_S
  TEST_NUM(17)
  li a1, MIP_MTIP
  csrs mie, a1
  EXPECT_TRAP(CAUSE_MTI)
  GOTO_UMODE
  nop
  nop
  CHECK_TRAP_TAKEN
  TEST_CASE(18, a0, 0, LOAD_TRAP_FIELD(a0, TR_STATUS); srli a0, a0, 11; andi a0, a0, 3)
  GOTO_MMODE_FROM_U
  SET_MTIMECMP_ABS(-1)

  /* ---- wfi returns once an enabled interrupt is pending, even with MIE = 0 ---- */
  TEST_NUM(19)
  csrci mstatus, MSTATUS_MIE
  li a1, MIP_MTIP
  csrs mie, a1
  SET_MTIMECMP_REL(2000)
  li a3, CLINT_MTIME
  ld a4, 0(a3)
  li a5, TIMEOUT_TICKS
  add a4, a4, a5
1:
  wfi                              /* may also return early: loop */
  MIP_BIT(a0, 7)
  bnez a0, 2f
  ld a5, 0(a3)
  bltu a5, a4, 1b
  j fail
2:
  TEST_NUM(20)                     /* wfi with the interrupt already pending does not hang */
  wfi
  wfi
  TEST_CASE(21, a0, 1, MIP_BIT(a0, 7))
  csrw mie, zero
  SET_MTIMECMP_ABS(-1)

  /* ---- CLINT software interrupt ---- */
  TEST_CASE(22, a0, 0, MIP_BIT(a0, 3))
  TEST_CASE(23, a0, 1, li a3, CLINT_MSIP; li a4, 1; sw a4, 0(a3); MIP_BIT(a0, 3))
  TEST_CASE(24, a0, 1, li a3, CLINT_MSIP; lw a0, 0(a3))
  TEST_CASE(25, a0, 1, li a1, MIP_MSIP; csrc mip, a1; MIP_BIT(a0, 3))       /* read-only */
  TEST_NUM(26)
  EXPECT_TRAP(CAUSE_MSI)
  li a1, MIP_MSIP
  csrs mie, a1
  csrsi mstatus, MSTATUS_MIE
  nop
  nop
  csrci mstatus, MSTATUS_MIE
  CHECK_TRAP_TAKEN
  TEST_CASE(27, a0, 0, li a3, CLINT_MSIP; sw zero, 0(a3); MIP_BIT(a0, 3))

  /* ---- mip.STIP / SSIP written by M ---- */
  TEST_CASE(28, a0, 1, li a1, MIP_STIP; csrs mip, a1; MIP_BIT(a0, 5))
  TEST_CASE(29, a0, 0, li a1, MIP_STIP; csrc mip, a1; MIP_BIT(a0, 5))
  TEST_CASE(30, a0, 1, li a1, MIP_SSIP; csrs mip, a1; MIP_BIT(a0, 1))
  TEST_CASE(31, a0, 0, li a1, MIP_SSIP; csrc mip, a1; MIP_BIT(a0, 1))

  /* ---- S timer interrupt delegated to S ---- */
  la a0, s_irq_handler
  csrw stvec, a0
  li a1, MIP_STIP | MIP_SSIP
  csrw mideleg, a1
  TEST_NUM(32)                     /* pending + enabled, but never taken in M */
  li a1, MIP_STIP
  csrs mie, a1
  csrs mip, a1
  csrsi mstatus, MSTATUS_MIE | MSTATUS_SIE
  nop
  nop
  csrci mstatus, MSTATUS_MIE | MSTATUS_SIE
  TEST_CASE(33, a0, 0, LOAD_SREC(a0, 8))
  TEST_NUM(34)                     /* in S with SIE = 0: not taken */
  GOTO_SMODE
  nop
  nop
  TEST_CASE(35, a0, 0, LOAD_SREC(a0, 8))
  TEST_CASE(36, a0, MIP_STIP, csrr a0, sip; andi a0, a0, MIP_STIP)
  TEST_NUM(37)                     /* SIE = 1: taken by S */
  csrsi sstatus, MSTATUS_SIE
  nop
  nop
  csrci sstatus, MSTATUS_SIE
  TEST_CASE(38, a0, 1, LOAD_SREC(a0, 8))
  TEST_CASE(39, a0, CAUSE_STI, LOAD_SREC(a0, 0))
  TEST_CASE(40, a0, 0, csrr a0, sie)                                 /* handler masked it */
  TEST_CASE(41, a0, MIP_STIP, li a1, MIP_STIP; csrc sip, a1; csrr a0, sip; andi a0, a0, MIP_STIP) /* read-only in sip */
  GOTO_MMODE_FROM_S
  TEST_NUM(42)                     /* in U: taken by S regardless of SIE */
  li a1, MIP_STIP
  csrs mie, a1
  GOTO_UMODE
  nop
  nop
  TEST_CASE(43, a0, 2, LOAD_SREC(a0, 8))
  GOTO_MMODE_FROM_U
  TEST_CASE(44, a0, 0, LOAD_SREC(a0, 24); srli a0, a0, 8; andi a0, a0, 1)  /* SPP = U */
  li a1, MIP_STIP
  csrc mip, a1

  /* ---- S software interrupt raised by S itself through sip ---- */
  TEST_NUM(45)
  li a1, MIP_SSIP
  csrs mie, a1
  GOTO_SMODE
  csrsi sstatus, MSTATUS_SIE
  li a1, MIP_SSIP
  csrs sip, a1
  nop
  nop
  csrci sstatus, MSTATUS_SIE
  TEST_CASE(46, a0, 3, LOAD_SREC(a0, 8))
  TEST_CASE(47, a0, CAUSE_SSI, LOAD_SREC(a0, 0))
  TEST_CASE(48, a0, 0, csrr a0, sip; andi a0, a0, MIP_SSIP)           /* handler cleared it */
  GOTO_MMODE_FROM_S

  /* ---- not delegated: an S timer interrupt pending in S goes to M ---- */
  csrw mideleg, zero
  TEST_NUM(49)
  li a1, MIP_STIP
  csrs mie, a1
  csrs mip, a1
  EXPECT_TRAP(CAUSE_STI)
  GOTO_SMODE
  nop
  nop
  CHECK_TRAP_TAKEN
  GOTO_MMODE_FROM_S
  li a1, MIP_STIP
  csrc mip, a1
  csrw mie, zero

  /* ---- vectored mtvec (optional) ---- */
  TEST_NUM(50)
  la a0, vec_table
  ori a0, a0, 1
  csrw mtvec, a0
  csrr a1, mtvec
  bne a0, a1, 1f                   /* vectored mode not supported: skip */
  csrw sscratch, zero
  SET_MTIMECMP_ABS(0)
  EXPECT_TRAP(CAUSE_MTI)
  li a1, MIP_MTIP
  csrs mie, a1
  csrsi mstatus, MSTATUS_MIE
  nop
  nop
  csrci mstatus, MSTATUS_MIE
  CHECK_TRAP_TAKEN
  TEST_CASE(51, a0, 7, csrr a0, sscratch)                            /* came through entry 7 */
  TEST_TRAP(52, CAUSE_MACHINE_ECALL, ecall)                          /* exceptions use entry 0 */
  TEST_CASE(53, a0, 1, csrr a0, sscratch)
  SET_MTIMECMP_ABS(-1)
1:
  la a0, trap_vector
  csrw mtvec, a0

  RVTEST_PASS

/* S-mode interrupt handler: record scause (+0), count (+8), sepc (+16),
 * sstatus (+24); mask the interrupt in sie and clear sip.SSIP; sret.
 * Clobbers t0, t1. */
  .align 2
s_irq_handler:
  la t1, s_record
  csrr t0, scause
  sd t0, 0(t1)
  ld t0, 8(t1)
  addi t0, t0, 1
  sd t0, 8(t1)
  csrr t0, sepc
  sd t0, 16(t1)
  csrr t0, sstatus
  sd t0, 24(t1)
  csrr t0, scause
  bgez t0, 1f                      /* not an interrupt: fatal */
  li t1, 1
  sll t1, t1, t0
  csrc sie, t1
  li t1, MIP_SSIP
  csrc sip, t1
  sret
1:
  j fail

  .align 6
vec_table:
  j vec_exc                        /* 0: exceptions */
  j trap_vector                    /* 1 */
  j trap_vector
  j trap_vector                    /* 3 */
  j trap_vector
  j trap_vector                    /* 5 */
  j trap_vector
  j vec_mti                        /* 7 */
  j trap_vector
  j trap_vector
  j trap_vector
  j trap_vector                    /* 11 */
vec_exc:
  csrwi sscratch, 1
  j trap_vector
vec_mti:
  csrwi sscratch, 7
  j trap_vector

  .data
  .align 3
s_record:
  .dword 0, 0, 0, 0
