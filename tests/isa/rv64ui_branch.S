/* rv64ui_branch: BEQ/BNE/BLT/BGE/BLTU/BGEU taken (forward and backward) and
 * not taken; JAL/JALR link values, JALR offset handling and bit-0 clearing. */
#include "common.h"

RVTEST_BEGIN
  .option norvc

  /* ---- BEQ ---- */
  TEST_BR_TAKEN(1, beq, 0, 0)
  TEST_BR_TAKEN(2, beq, 1, 1)
  TEST_BR_TAKEN(3, beq, -1, -1)
  TEST_BR_TAKEN_BACK(4, beq, 0x8000000000000000, 0x8000000000000000)
  TEST_BR_NOT_TAKEN(5, beq, 0, 1)
  TEST_BR_NOT_TAKEN(6, beq, 1, 0)
  TEST_BR_NOT_TAKEN(7, beq, -1, 1)
  TEST_BR_NOT_TAKEN(8, beq, 0x0000000100000000, 0)     /* all 64 bits compared */
  TEST_BR_NOT_TAKEN(9, beq, 0xffffffff, -1)

  /* ---- BNE ---- */
  TEST_BR_TAKEN(10, bne, 0, 1)
  TEST_BR_TAKEN(11, bne, 1, 0)
  TEST_BR_TAKEN(12, bne, -1, 1)
  TEST_BR_TAKEN(13, bne, 0x0000000100000000, 0)
  TEST_BR_TAKEN_BACK(14, bne, 0x8000000000000000, 0)
  TEST_BR_NOT_TAKEN(15, bne, 0, 0)
  TEST_BR_NOT_TAKEN(16, bne, -1, -1)
  TEST_BR_NOT_TAKEN(17, bne, 0x123456789abcdef0, 0x123456789abcdef0)

  /* ---- BLT ---- */
  TEST_BR_TAKEN(18, blt, 0, 1)
  TEST_BR_TAKEN(19, blt, -1, 1)
  TEST_BR_TAKEN(20, blt, -2, -1)
  TEST_BR_TAKEN(21, blt, 0x8000000000000000, 0x7fffffffffffffff)
  TEST_BR_TAKEN_BACK(22, blt, -1, 0)
  TEST_BR_NOT_TAKEN(23, blt, 1, 0)
  TEST_BR_NOT_TAKEN(24, blt, 1, -1)
  TEST_BR_NOT_TAKEN(25, blt, -1, -2)
  TEST_BR_NOT_TAKEN(26, blt, 0, 0)
  TEST_BR_NOT_TAKEN(27, blt, 0x7fffffffffffffff, 0x8000000000000000)
  TEST_BR_NOT_TAKEN(28, blt, 0x0000000080000000, 1)      /* positive in 64 bits */

  /* ---- BGE ---- */
  TEST_BR_TAKEN(29, bge, 0, 0)
  TEST_BR_TAKEN(30, bge, 1, 1)
  TEST_BR_TAKEN(31, bge, -1, -1)
  TEST_BR_TAKEN(32, bge, 1, 0)
  TEST_BR_TAKEN(33, bge, 1, -1)
  TEST_BR_TAKEN(34, bge, -1, -2)
  TEST_BR_TAKEN(35, bge, 0x7fffffffffffffff, 0x8000000000000000)
  TEST_BR_TAKEN_BACK(36, bge, 0, -1)
  TEST_BR_NOT_TAKEN(37, bge, 0, 1)
  TEST_BR_NOT_TAKEN(38, bge, -1, 1)
  TEST_BR_NOT_TAKEN(39, bge, -2, -1)
  TEST_BR_NOT_TAKEN(40, bge, 0x8000000000000000, 0)

  /* ---- BLTU ---- */
  TEST_BR_TAKEN(41, bltu, 0, 1)
  TEST_BR_TAKEN(42, bltu, 0xfffffffffffffffe, 0xffffffffffffffff)
  TEST_BR_TAKEN(43, bltu, 0, -1)
  TEST_BR_TAKEN(44, bltu, 0x7fffffffffffffff, 0x8000000000000000)
  TEST_BR_TAKEN_BACK(45, bltu, 1, 0x8000000000000000)
  TEST_BR_NOT_TAKEN(46, bltu, 1, 0)
  TEST_BR_NOT_TAKEN(47, bltu, -1, -2)
  TEST_BR_NOT_TAKEN(48, bltu, -1, 0)
  TEST_BR_NOT_TAKEN(49, bltu, 0x8000000000000000, 0x7fffffffffffffff)
  TEST_BR_NOT_TAKEN(50, bltu, 0, 0)

  /* ---- BGEU ---- */
  TEST_BR_TAKEN(51, bgeu, 0, 0)
  TEST_BR_TAKEN(52, bgeu, 1, 0)
  TEST_BR_TAKEN(53, bgeu, -1, 0)
  TEST_BR_TAKEN(54, bgeu, -1, -2)
  TEST_BR_TAKEN(55, bgeu, 0x8000000000000000, 0x7fffffffffffffff)
  TEST_BR_TAKEN_BACK(56, bgeu, -1, -1)
  TEST_BR_NOT_TAKEN(57, bgeu, 0, 1)
  TEST_BR_NOT_TAKEN(58, bgeu, 0, -1)
  TEST_BR_NOT_TAKEN(59, bgeu, -2, -1)
  TEST_BR_NOT_TAKEN(60, bgeu, 0x7fffffffffffffff, 0x8000000000000000)

  /* branches comparing a register with itself and with x0 */
  TEST_NUM(61); li a1, 5; beq a1, a1, 1f; j fail; 1:
  TEST_NUM(62); li a1, 5; bne a1, a1, fail_near1; j 1f; fail_near1: j fail; 1:
  TEST_NUM(63); li a1, -5; blt a1, x0, 1f; j fail; 1:
  TEST_NUM(64); li a1, -5; bltu x0, a1, 1f; j fail; 1:
  TEST_NUM(65); bgeu x0, x0, 1f; j fail; 1:

  /* ---- JAL ---- */
  /* link value is the address of the following instruction */
  TEST_NUM(66)
  jal a0, 1f
2:
  j fail
1:
  la a1, 2b
  bne a0, a1, fail_far1
  /* jal x0 (j) links nothing */
  TEST_NUM(67)
  li a0, 7
  jal x0, 1f
  j fail
1:
  bne x0, zero, fail_far1
  li a1, 7
  bne a0, a1, fail_far1
  /* backward jal */
  TEST_NUM(68)
  j 2f
1:
  j 3f
2:
  jal ra, 1b
4:
  j fail
3:
  la a1, 4b
  bne ra, a1, fail_far1
  /* call / return through a subroutine */
  TEST_NUM(69)
  li a0, 0
  jal ra, sub_add5
  jal ra, sub_add5
  li a1, 10
  bne a0, a1, fail_far1
  j jalr_tests
fail_far1:
  j fail

sub_add5:
  addi a0, a0, 5
  ret

jalr_tests:
  /* ---- JALR ---- */
  TEST_NUM(70)                     /* plain */
  la a1, 1f
  jalr a0, 0(a1)
2:
  j fail
1:
  la a2, 2b
  bne a0, a2, fail_far2

  TEST_NUM(71)                     /* bit 0 of the target is cleared */
  la a1, 1f
  addi a1, a1, 1
  jalr a0, 0(a1)
2:
  j fail
1:
  la a2, 2b
  bne a0, a2, fail_far2

  TEST_NUM(72)                     /* odd immediate, cleared after the add */
  la a1, 1f
  jalr a0, 1(a1)
2:
  j fail
1:
  la a2, 2b
  bne a0, a2, fail_far2

  TEST_NUM(73)                     /* positive offset */
  la a1, 1f
  addi a1, a1, -8
  jalr a0, 8(a1)
2:
  j fail
  j fail
1:
  la a2, 2b
  bne a0, a2, fail_far2

  TEST_NUM(74)                     /* negative offset */
  la a1, 1f
  addi a1, a1, 2000
  jalr a0, -2000(a1)
2:
  j fail
1:
  la a2, 2b
  bne a0, a2, fail_far2

  TEST_NUM(75)                     /* rd == rs1: target uses the old value */
  la a0, 1f
  jalr a0, 0(a0)
2:
  j fail
1:
  la a2, 2b
  bne a0, a2, fail_far2

  TEST_NUM(76)                     /* jalr x0 links nothing; a backward target */
  j 3f
1:
  j 4f
3:
  la a1, 1b
  li a0, 9
  jalr x0, 0(a1)
  j fail
4:
  li a2, 9
  bne a0, a2, fail_far2

  TEST_NUM(77)                     /* bit 0 set and negative offset combined */
  la a1, 1f
  addi a1, a1, 5
  jalr t0, -4(a1)                  /* (target+5-4) & ~1 = target */
2:
  j fail
1:
  la a2, 2b
  bne t0, a2, fail_far2

  TEST_NUM(78)                     /* indirect call through a register */
  li a0, 1
  la t1, sub_add5
  jalr ra, 0(t1)
  li a2, 6
  bne a0, a2, fail_far2

  RVTEST_PASS
fail_far2:
  j fail
