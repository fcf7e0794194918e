/* priv_trap: M-mode traps and privilege changes.
 *   ecall from M/S/U (mcause 11/9/8, mepc, mtval = 0), ebreak,
 *   mstatus MPP/MPIE/MIE bookkeeping on trap and mret,
 *   illegal instructions with mtval = the instruction bits (or 0, which
 *   the spec also allows),
 *   privilege checks (M CSRs from S, S CSRs and xRET from U, read-only CSRs),
 *   medeleg: U ecall and S illegal-instruction delegated to S (stvec, scause,
 *   sepc, stval, sstatus.SPP/SPIE), sret back to U/S, no delegation of traps
 *   taken in M, sstatus/sie as views of mstatus/mie,
 *   optional mstatus.TVM/TSR (checked only if the bit is writable). */
#include "common.h"

/* S-mode handler record */
#define SR_CAUSE  0
#define SR_EPC    8
#define SR_TVAL   16
#define SR_STATUS 24
#define SR_COUNT  32

#define LOAD_SREC(reg, field) la reg, s_record; ld reg, field(reg)

/* mtval after an illegal-instruction trap: the spec allows either 0 or the
 * instruction bits; anything else is wrong */
#define TEST_TVAL_INSN(num, bits) \
  TEST_NUM(num); LOAD_TRAP_FIELD(a0, TR_TVAL); beqz a0, 7798f; CHECK_EQ(a0, bits); 7798:

#define MPP_OF(reg)  srli reg, reg, 11; andi reg, reg, 3
#define BIT_OF(reg, n) srli reg, reg, n; andi reg, reg, 1

RVTEST_BEGIN
  .option norvc

  /* ---- ecall from M ---- */
  TEST_NUM(1)
  EXPECT_TRAP(CAUSE_MACHINE_ECALL)
1:
  ecall
  CHECK_TRAP_TAKEN
  LOAD_TRAP_FIELD(a0, TR_EPC)
  la a1, 1b
  CHECK_REG_EQ(a0, a1)
  TEST_CASE(2, a0, 0, LOAD_TRAP_FIELD(a0, TR_TVAL))
  TEST_CASE(3, a0, 3, LOAD_TRAP_FIELD(a0, TR_STATUS); MPP_OF(a0))      /* MPP = M */
  TEST_CASE(4, a0, 0, LOAD_TRAP_FIELD(a0, TR_STATUS); BIT_OF(a0, 3))   /* MIE cleared */
  /* MIE is copied to MPIE on the trap */
  TEST_NUM(5)
  li a0, MSTATUS_MIE
  csrs mstatus, a0                 /* mie = 0, so no interrupt can be taken */
  EXPECT_TRAP(CAUSE_MACHINE_ECALL)
  ecall
  CHECK_TRAP_TAKEN
  LOAD_TRAP_FIELD(a0, TR_STATUS)
  BIT_OF(a0, 7)
  CHECK_EQ(a0, 1)
  TEST_CASE(6, a0, 0, LOAD_TRAP_FIELD(a0, TR_STATUS); BIT_OF(a0, 3))
  /* mret restored MIE from MPIE */
  TEST_CASE(7, a0, 1, csrr a0, mstatus; BIT_OF(a0, 3))
  li a0, MSTATUS_MIE
  csrc mstatus, a0

  /* ---- ebreak ---- */
  TEST_NUM(8)
  EXPECT_TRAP(CAUSE_BREAKPOINT)
1:
  ebreak
  CHECK_TRAP_TAKEN
  LOAD_TRAP_FIELD(a0, TR_EPC)
  la a1, 1b
  CHECK_REG_EQ(a0, a1)
  /* mtval for a breakpoint is either 0 or the pc */
  TEST_NUM(9)
  LOAD_TRAP_FIELD(a0, TR_TVAL)
  beqz a0, 2f
  CHECK_REG_EQ(a0, a1)
2:

  /* ---- mret to M: MPP becomes U, MPIE becomes 1, MIE = old MPIE ---- */
  TEST_NUM(10)
  li a0, MSTATUS_MPP
  csrs mstatus, a0
  li a0, MSTATUS_MPIE
  csrc mstatus, a0
  la a0, 1f
  csrw mepc, a0
  mret
  j fail
1:
  csrr a0, mstatus
  MPP_OF(a0)
  CHECK_EQ(a0, 0)
  TEST_CASE(11, a0, 1, csrr a0, mstatus; BIT_OF(a0, 7))
  TEST_CASE(12, a0, 0, csrr a0, mstatus; BIT_OF(a0, 3))

  /* ---- ecall from S ---- */
  TEST_NUM(13)
  li a0, MSTATUS_MPIE
  csrs mstatus, a0
  GOTO_SMODE
  EXPECT_TRAP(CAUSE_SUPERVISOR_ECALL)
1:
  ecall
  CHECK_TRAP_TAKEN
  LOAD_TRAP_FIELD(a0, TR_EPC)
  la a1, 1b
  CHECK_REG_EQ(a0, a1)
  TEST_CASE(14, a0, 1, LOAD_TRAP_FIELD(a0, TR_STATUS); MPP_OF(a0))     /* MPP = S */
  TEST_CASE(15, a0, 1, LOAD_TRAP_FIELD(a0, TR_STATUS); BIT_OF(a0, 7))  /* MPIE = MIE in S = 1 */
  TEST_CASE(16, a0, 0, LOAD_TRAP_FIELD(a0, TR_TVAL))
  /* M-mode CSRs are illegal in S; mtval holds the instruction */
  TEST_TRAP(17, CAUSE_ILLEGAL_INSN, csrr a0, mstatus)
  TEST_TVAL_INSN(18, 0x30002573)          /* csrrs a0, mstatus, x0 */
  TEST_TRAP(19, CAUSE_ILLEGAL_INSN, csrw mscratch, a0)
  TEST_TRAP(20, CAUSE_ILLEGAL_INSN, mret)
  TEST_TVAL_INSN(21, 0x30200073)
  /* S-mode CSRs are fine */
  TEST_CASE(22, a0, 0x5a5a, li a1, 0x5a5a; csrw sscratch, a1; csrr a0, sscratch)
  GOTO_MMODE_FROM_S
  TEST_NUM(23); csrr a0, mstatus; csrr a0, mscratch                 /* back in M: no trap */
  /* MPIE = 0 before mret -> MIE = 0 in S */
  TEST_NUM(24)
  li a0, MSTATUS_MPIE
  csrc mstatus, a0
  GOTO_SMODE
  EXPECT_TRAP(CAUSE_SUPERVISOR_ECALL)
  ecall
  CHECK_TRAP_TAKEN
  LOAD_TRAP_FIELD(a0, TR_STATUS)
  BIT_OF(a0, 7)
  CHECK_EQ(a0, 0)
  GOTO_MMODE_FROM_S
  /* (priv 1.12 also has mret to S/U clear MPRV; QEMU 7.2 does not, so it
   * is not checked here) */

  /* ---- ecall from U ---- */
  TEST_NUM(26)
  GOTO_UMODE
  EXPECT_TRAP(CAUSE_USER_ECALL)
1:
  ecall
  CHECK_TRAP_TAKEN
  LOAD_TRAP_FIELD(a0, TR_EPC)
  la a1, 1b
  CHECK_REG_EQ(a0, a1)
  TEST_CASE(27, a0, 0, LOAD_TRAP_FIELD(a0, TR_STATUS); MPP_OF(a0))     /* MPP = U */
  TEST_CASE(28, a0, 0, LOAD_TRAP_FIELD(a0, TR_TVAL))
  TEST_TRAP(29, CAUSE_ILLEGAL_INSN, csrr a0, sstatus)
  TEST_TVAL_INSN(30, 0x10002573)
  TEST_TRAP(31, CAUSE_ILLEGAL_INSN, sret)
  TEST_TVAL_INSN(32, 0x10200073)
  TEST_TRAP(33, CAUSE_ILLEGAL_INSN, mret)
  TEST_TRAP(34, CAUSE_ILLEGAL_INSN, sfence.vma)
  TEST_TRAP(35, CAUSE_ILLEGAL_INSN, csrw sscratch, a0)
  TEST_TRAP(36, CAUSE_ILLEGAL_INSN, csrr a0, mhartid)
  /* counters are readable from U because mcounteren was set */
  TEST_NUM(37); rdcycle a0; rdinstret a0
  /* ebreak from U */
  TEST_TRAP(38, CAUSE_BREAKPOINT, ebreak)
  GOTO_MMODE_FROM_U

  /* ---- illegal instructions in M ---- */
  TEST_TRAP(39, CAUSE_ILLEGAL_INSN, .word 0x1234506b)                  /* reserved major opcode */
  TEST_TVAL_INSN(40, 0x1234506b)
  TEST_TRAP(41, CAUSE_ILLEGAL_INSN, csrw mhartid, a0)                  /* read-only CSR */
  TEST_TVAL_INSN(42, 0xf1451073)
  TEST_TRAP(43, CAUSE_ILLEGAL_INSN, li a1, 1; csrrs a0, mhartid, a1)   /* set with rs1 != x0 writes */
  TEST_TRAP(44, CAUSE_ILLEGAL_INSN, csrrwi a0, mvendorid, 0)
  TEST_CASE(45, a0, 0, li a0, 7; csrrs a0, mhartid, x0)                /* pure read is fine */
  TEST_CASE(46, a0, 0, li a0, 7; csrrc a0, mhartid, x0)
  TEST_CASE(47, a0, 0, li a0, 7; csrrsi a0, mhartid, 0)
  TEST_TRAP(48, CAUSE_ILLEGAL_INSN, csrr a0, cycleh)                   /* RV32-only CSR */
  TEST_TRAP(50, CAUSE_ILLEGAL_INSN, .word 0xffffffff)                  /* all-ones word */
  TEST_TRAP(51, CAUSE_ILLEGAL_INSN, .word 0x0000705b)                  /* custom-2 / reserved */

  /* ---- delegation: U ecall to S ---- */
  la a0, s_handler
  csrw stvec, a0
  li a0, 1 << CAUSE_USER_ECALL
  csrw medeleg, a0
  TEST_CASE(52, a0, 1 << CAUSE_USER_ECALL, csrr a0, medeleg)
  TEST_NUM(53)
  LOAD_TRAP_FIELD(a0, TR_COUNT)
  la a1, m_count_snap
  sd a0, 0(a1)
  GOTO_UMODE
1:
  ecall                            /* -> s_handler, sret back to the next instruction */
  LOAD_SREC(a0, SR_CAUSE)
  CHECK_EQ(a0, CAUSE_USER_ECALL)
  LOAD_SREC(a0, SR_EPC)
  la a1, 1b
  CHECK_REG_EQ(a0, a1)
  TEST_CASE(54, a0, 0, LOAD_SREC(a0, SR_TVAL))
  TEST_CASE(55, a0, 0, LOAD_SREC(a0, SR_STATUS); BIT_OF(a0, 8))        /* SPP = U */
  TEST_CASE(56, a0, 1, LOAD_SREC(a0, SR_COUNT))
  TEST_CASE(57, a0, 0, LOAD_TRAP_FIELD(a0, TR_COUNT); la a1, m_count_snap; ld a1, 0(a1); sub a0, a0, a1) /* M not involved */
  /* back to M (breakpoints are not delegated) */
  SET_TRAP_FIELD(TR_MPP, 3)
  EXPECT_TRAP(CAUSE_BREAKPOINT)
  ebreak
  CHECK_TRAP_TAKEN

  /* ---- delegation: illegal instruction in S goes to S ---- */
  li a0, (1 << CAUSE_USER_ECALL) | (1 << CAUSE_ILLEGAL_INSN)
  csrw medeleg, a0
  li a0, MSTATUS_SPIE
  csrc mstatus, a0
  li a0, MSTATUS_SIE
  csrs mstatus, a0
  TEST_NUM(58)
  GOTO_SMODE
1:
  csrr a0, mstatus                 /* illegal in S -> s_handler */
  LOAD_SREC(a0, SR_CAUSE)
  CHECK_EQ(a0, CAUSE_ILLEGAL_INSN)
  LOAD_SREC(a0, SR_EPC)
  la a1, 1b
  CHECK_REG_EQ(a0, a1)
  /* stval: the instruction bits (or 0, which the spec also allows) */
  TEST_NUM(59); LOAD_SREC(a0, SR_TVAL); beqz a0, 2f; CHECK_EQ(a0, 0x30002573); 2:
  TEST_CASE(60, a0, 1, LOAD_SREC(a0, SR_STATUS); BIT_OF(a0, 8))        /* SPP = S */
  TEST_CASE(61, a0, 1, LOAD_SREC(a0, SR_STATUS); BIT_OF(a0, 5))        /* SPIE = old SIE */
  TEST_CASE(62, a0, 0, LOAD_SREC(a0, SR_STATUS); BIT_OF(a0, 1))        /* SIE cleared in handler */
  TEST_CASE(63, a0, 1, csrr a0, sstatus; BIT_OF(a0, 1))                /* sret: SIE = SPIE */
  TEST_CASE(64, a0, 0, csrr a0, sstatus; BIT_OF(a0, 8))                /* sret: SPP = U */
  GOTO_MMODE_FROM_S
  /* a trap taken in M is never delegated */
  TEST_TRAP(65, CAUSE_ILLEGAL_INSN, .word 0x1234506b)
  TEST_CASE(66, a0, 2, LOAD_SREC(a0, SR_COUNT))
  csrw medeleg, zero
  li a0, MSTATUS_SIE
  csrc mstatus, a0

  /* ---- sret from S to U and to S ---- */
  TEST_NUM(67)
  GOTO_SMODE
  li a0, MSTATUS_SPP
  csrc sstatus, a0                 /* SPP = U */
  la a0, 1f
  csrw sepc, a0
  sret
  j fail
1:
  TEST_TRAP(68, CAUSE_USER_ECALL, ecall)                             /* now in U */
  GOTO_MMODE_FROM_U

  /* ---- sstatus and sie are views of mstatus and mie ---- */
  TEST_CASE(69, a0, MSTATUS_SIE, li a1, MSTATUS_SIE; csrs mstatus, a1; csrr a0, sstatus; andi a0, a0, MSTATUS_SIE)
  TEST_CASE(70, a0, 0, csrc sstatus, a1; csrr a0, mstatus; andi a0, a0, MSTATUS_SIE)
  TEST_CASE(71, a0, 0, li a1, MSTATUS_MPP | MSTATUS_MIE | MSTATUS_MPIE; csrs mstatus, a1; csrr a0, sstatus; and a0, a0, a1)
  TEST_CASE(72, a0, MSTATUS_MPP, li a1, MSTATUS_MPP; csrw sstatus, zero; csrr a0, mstatus; and a0, a0, a1) /* untouched */
  li a1, MSTATUS_MPP | MSTATUS_MIE | MSTATUS_MPIE
  csrc mstatus, a1
  TEST_CASE(73, a0, 2, csrr a0, sstatus; srli a0, a0, 32; andi a0, a0, 3)   /* UXL = 64 */
  /* sie: only bits delegated in mideleg are visible */
  csrw mie, zero
  csrw mideleg, zero
  TEST_CASE(74, a0, 0, li a1, MIP_STIP; csrs sie, a1; csrr a0, sie)
  TEST_CASE(75, a0, 0, csrr a0, mie)
  TEST_CASE(76, a0, MIP_STIP, li a1, MIP_STIP; csrw mideleg, a1; csrs sie, a1; csrr a0, sie)
  TEST_CASE(77, a0, MIP_STIP, csrr a0, mie)
  TEST_CASE(78, a0, MIP_STIP, csrr a0, mideleg; andi a0, a0, MIP_STIP)
  csrw mie, zero
  csrw mideleg, zero

  /* ---- optional: mstatus.TVM traps satp and sfence.vma in S ---- */
  TEST_NUM(79)
  li a1, MSTATUS_TVM
  csrs mstatus, a1
  csrr a0, mstatus
  and a0, a0, a1
  beqz a0, 1f                      /* TVM not implemented: skip */
  GOTO_SMODE
  TEST_TRAP(80, CAUSE_ILLEGAL_INSN, csrr a0, satp)
  TEST_TRAP(81, CAUSE_ILLEGAL_INSN, sfence.vma)
  GOTO_MMODE_FROM_S
  li a1, MSTATUS_TVM
  csrc mstatus, a1
1:
  GOTO_SMODE                       /* without TVM both are fine in S */
  TEST_CASE(82, a0, 0, csrr a0, satp)
  TEST_NUM(83); sfence.vma
  GOTO_MMODE_FROM_S

  /* ---- optional: mstatus.TSR traps sret in S ---- */
  TEST_NUM(84)
  li a1, MSTATUS_TSR
  csrs mstatus, a1
  csrr a0, mstatus
  and a0, a0, a1
  beqz a0, 1f
  GOTO_SMODE
  TEST_TRAP(85, CAUSE_ILLEGAL_INSN, sret)
  GOTO_MMODE_FROM_S
  li a1, MSTATUS_TSR
  csrc mstatus, a1
1:

  RVTEST_PASS

/* S-mode trap handler: record scause/sepc/stval/sstatus, skip the
 * instruction (all 4 bytes here), return.  Clobbers t0, t1. */
  .align 2
s_handler:
  la t1, s_record
  csrr t0, scause
  sd t0, SR_CAUSE(t1)
  csrr t0, sepc
  sd t0, SR_EPC(t1)
  csrr t0, stval
  sd t0, SR_TVAL(t1)
  csrr t0, sstatus
  sd t0, SR_STATUS(t1)
  ld t0, SR_COUNT(t1)
  addi t0, t0, 1
  sd t0, SR_COUNT(t1)
  csrr t0, sepc
  addi t0, t0, 4
  csrw sepc, t0
  sret

  .data
  .align 3
s_record:
  .dword 0, 0, 0, 0, 0
m_count_snap:
  .dword 0
