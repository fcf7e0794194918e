/* rv64uc: every RV64C instruction written with explicit c. mnemonics:
 * C.ADDI4SPN C.FLD C.LW C.LD C.FSD C.SW C.SD / C.NOP C.ADDI C.ADDIW C.LI
 * C.ADDI16SP C.LUI C.SRLI C.SRAI C.ANDI C.SUB C.XOR C.OR C.AND C.SUBW C.ADDW
 * C.J C.BEQZ C.BNEZ / C.SLLI C.FLDSP C.LWSP C.LDSP C.JR C.MV C.EBREAK C.JALR
 * C.ADD C.FSDSP C.SWSP C.SDSP, plus 32-bit instructions at 2-byte aligned
 * addresses and across a page boundary, and the all-zero illegal parcel. */
#include "common.h"

RVTEST_BEGIN
  .option rvc
  .option norelax

  /* ---- C.LI / C.LUI ---- */
  TEST_CASE(1,  a0, 31, c.li a0, 31)
  TEST_CASE(2,  a0, 0xffffffffffffffe0, c.li a0, -32)
  TEST_CASE(3,  s1, 0, li s1, 77; c.li s1, 0)
  TEST_CASE(4,  t0, 0xffffffffffffffff, c.li t0, -1)
  TEST_CASE(5,  a0, 0x0000000000001000, c.lui a0, 1)
  TEST_CASE(6,  a0, 0x000000000001f000, c.lui a0, 31)
  TEST_CASE(7,  a0, 0xfffffffffffff000, c.lui a0, 0xfffff)
  TEST_CASE(8,  a0, 0xfffffffffffe0000, c.lui a0, 0xfffe0)
  TEST_CASE(9,  t2, 0x0000000000005000, c.lui t2, 5)

  /* ---- C.ADDI / C.ADDIW / C.NOP ---- */
  TEST_CASE(10, a0, 32, c.li a0, 1; c.addi a0, 31)
  TEST_CASE(11, a0, 0xffffffffffffffe0, c.li a0, 0; c.addi a0, -32)
  TEST_CASE(12, a0, 0xffffffffffffffff, c.li a0, 0; c.addi a0, -1)
  TEST_CASE(13, a0, 0x0000000080000000, li a0, 0x7fffffff; c.addi a0, 1)
  TEST_CASE(14, a0, 0xffffffff80000000, li a0, 0x7fffffff; c.addiw a0, 1)
  TEST_CASE(15, a0, 0xffffffffffffffff, li a0, 0x1ffffffff; c.addiw a0, 0)
  TEST_CASE(16, a0, 0xffffffffffffffe0, c.li a0, 0; c.addiw a0, -32)
  TEST_CASE(17, t1, 0x000000007fffffff, li t1, 0xffffffff80000000; c.addiw t1, -1)
  TEST_CASE(18, a0, 9, c.li a0, 9; c.nop; c.nop)

  /* ---- C.ADDI16SP / C.ADDI4SPN ---- */
  TEST_CASE(19, a0, 0xfffffffffffffe00, la sp, c_stack_mid; mv a1, sp; c.addi16sp sp, -512; sub a0, sp, a1)
  TEST_CASE(20, a0, 0xfffffffffffffff0, c.addi16sp sp, 496; sub a0, sp, a1)
  TEST_CASE(21, a0, 0, c.addi16sp sp, 16; sub a0, sp, a1)
  TEST_CASE(22, a0, 8, c.addi4spn a0, sp, 8; sub a0, a0, sp)
  TEST_CASE(23, s0, 1020, c.addi4spn s0, sp, 1020; sub s0, s0, sp)
  TEST_CASE(24, a5, 4, c.addi4spn a5, sp, 4; sub a5, a5, sp)

  /* ---- C.SLLI / C.SRLI / C.SRAI / C.ANDI ---- */
  TEST_CASE(25, a0, 0x8000000000000000, c.li a0, 1; c.slli a0, 63)
  TEST_CASE(26, a0, 0xffffffff00000000, li a0, 0xffffffff; c.slli a0, 32)
  TEST_CASE(27, t0, 0x0000000000000002, c.li t0, 1; c.slli t0, 1)
  TEST_CASE(28, a0, 0x0000000000000001, li a0, 0x8000000000000000; c.srli a0, 63)
  TEST_CASE(29, a0, 0x00000000ffffffff, c.li a0, -1; c.srli a0, 32)
  TEST_CASE(30, a0, 0x7fffffffffffffff, c.li a0, -1; c.srli a0, 1)
  TEST_CASE(31, a0, 0xffffffffffffffff, li a0, 0x8000000000000000; c.srai a0, 63)
  TEST_CASE(32, a0, 0xffffffff80000000, li a0, 0x8000000000000000; c.srai a0, 32)
  TEST_CASE(33, a0, 0xffffffffffffffff, c.li a0, -2; c.srai a0, 1)
  TEST_CASE(34, a2, 0x000000003fffffff, li a2, 0x7fffffffffffffff; c.srai a2, 33)
  TEST_CASE(35, a0, 0xffffffffffffffe0, c.li a0, -1; c.andi a0, -32)
  TEST_CASE(36, a0, 0x0000000000000018, li a0, 0x12345678; c.andi a0, 31)
  TEST_CASE(37, a0, 0, c.li a0, -1; c.andi a0, 0)

  /* ---- C.MV / C.ADD ---- */
  TEST_CASE(38, a0, 0x123456789abcdef0, li a1, 0x123456789abcdef0; c.mv a0, a1)
  TEST_CASE(39, t0, 0xfedcba9876543210, li s0, 0xfedcba9876543210; c.mv t0, s0)
  TEST_CASE(40, a0, 0x8000000000000000, li a0, 0x7fffffffffffffff; c.li a1, 1; c.add a0, a1)
  TEST_CASE(41, t1, 0x0000000100000000, li t1, 0xffffffff; c.li t2, 1; c.add t1, t2)
  TEST_CASE(42, ra, 10, c.li ra, 5; c.add ra, ra)

  /* ---- C.SUB / C.XOR / C.OR / C.AND / C.SUBW / C.ADDW ---- */
  TEST_CASE(43, a0, 0xfffffffffffffffc, c.li a0, 3; c.li a1, 7; c.sub a0, a1)
  TEST_CASE(44, s1, 0x7fffffffffffffff, li s1, 0x8000000000000000; c.li a1, 1; c.sub s1, a1)
  TEST_CASE(45, a0, 0xf00ff00ff00ff00f, li a0, 0xff00ff00ff00ff00; li a1, 0x0f0f0f0f0f0f0f0f; c.xor a0, a1)
  TEST_CASE(46, a0, 0xff0fff0fff0fff0f, li a0, 0xff00ff00ff00ff00; li a1, 0x0f0f0f0f0f0f0f0f; c.or a0, a1)
  TEST_CASE(47, a0, 0x0f000f000f000f00, li a0, 0xff00ff00ff00ff00; li a1, 0x0f0f0f0f0f0f0f0f; c.and a0, a1)
  TEST_CASE(48, a0, 0x000000007fffffff, li a0, 0x80000000; c.li a1, 1; c.subw a0, a1)
  TEST_CASE(49, a0, 0xffffffffffffffff, c.li a0, 0; c.li a1, 1; c.subw a0, a1)
  TEST_CASE(50, a0, 0xffffffff80000000, li a0, 0x7fffffff; c.li a1, 1; c.addw a0, a1)
  TEST_CASE(51, a0, 0x0000000000000002, li a0, 0x100000001; li a1, 0x100000001; c.addw a0, a1)
  TEST_CASE(52, a5, 0x0000000000000000, li a5, 0x12345678; li s0, 0xffffffff12345678; c.subw a5, s0)

  /* ---- C.LW / C.LD / C.SW / C.SD / C.FLD / C.FSD ---- */
  TEST_CASE(53, a0, 0xffffffff80000001, la s0, c_data; c.lw a0, 0(s0))
  TEST_CASE(54, a0, 0x000000007ffffffe, c.lw a0, 124(s0))
  TEST_CASE(55, a0, 0x0123456789abcdef, c.ld a0, 248(s0))
  TEST_CASE(56, a0, 0x0000000480000001, c.ld a0, 0(s0))
  TEST_CASE(57, a2, 0xffffffffdeadbeef, li a1, 0x12345678deadbeef; c.sw a1, 8(s0); c.lw a2, 8(s0))
  TEST_CASE(58, a2, 0x0000000000000000, lwu a2, 12(s0))      /* neighbour untouched */
  TEST_CASE(59, a2, 0x12345678deadbeef, c.sd a1, 16(s0); c.ld a2, 16(s0))
  TEST_CASE(60, a3, 0xa5a5a5a5a5a5a5a5, li a1, 0xa5a5a5a5a5a5a5a5; c.sd a1, 240(s0); c.ld a3, 240(s0))
  TEST_CASE(61, a4, 0x3ff8000000000000, c.fld fa0, 32(s0); fmv.x.d a4, fa0)
  TEST_CASE(62, a4, 0x400c000000000000, li a1, 0x400c000000000000; fmv.d.x fa1, a1; c.fsd fa1, 40(s0); ld a4, 40(s0))
  TEST_CASE(63, a4, 0x400c000000000000, c.fld fa5, 40(s0); fmv.x.d a4, fa5)
  TEST_CASE(64, a0, 0x0000000000000007, la a5, c_data+64; c.li a4, 7; c.sw a4, 56(a5); c.lw a0, 56(a5))

  /* ---- SP-relative loads and stores ---- */
  TEST_CASE(65, a0, 0xffffffff80000001, la sp, c_data; c.lwsp a0, 0(sp))
  TEST_CASE(66, a0, 0x000000007ffffffe, c.lwsp a0, 124(sp))
  TEST_CASE(67, a0, 0x0000000001234567, c.lwsp a0, 252(sp))
  TEST_CASE(68, a0, 0x0123456789abcdef, c.ldsp a0, 248(sp))
  TEST_CASE(69, t0, 0x5555666677778888, c.ldsp t0, 504(sp))
  TEST_CASE(70, a1, 0x0000000000001234, li a0, 0x1234; c.swsp a0, 44(sp); c.lwsp a1, 44(sp))
  TEST_CASE(71, a1, 0x8765432112345678, li a0, 0x8765432112345678; c.sdsp a0, 496(sp); c.ldsp a1, 496(sp))
  TEST_CASE(72, ra, 0x0000000000000077, li t3, 0x77; c.sdsp t3, 8(sp); c.ldsp ra, 8(sp))
  TEST_CASE(73, a2, 0x3ff8000000000000, c.fldsp ft0, 32(sp); fmv.x.d a2, ft0)
  TEST_CASE(74, a2, 0x4024000000000000, li a2, 0x4024000000000000; fmv.d.x fs0, a2; c.fsdsp fs0, 488(sp); ld a2, 488(sp))
  TEST_CASE(75, a2, 0x4024000000000000, c.fldsp ft11, 488(sp); fmv.x.d a2, ft11)
  la sp, _stack_top

  /* ---- C.J ---- */
  TEST_NUM(76)
  c.j 1f
  j fail
1:
  TEST_NUM(77)                     /* backward */
  c.j 2f
1:
  c.j 3f
2:
  c.j 1b
  j fail
3:

  /* ---- C.BEQZ / C.BNEZ ---- */
  TEST_NUM(78); c.li a0, 0; c.beqz a0, 1f; j fail; 1:
  TEST_NUM(79); li a0, 0x100000000; c.beqz a0, 2f; c.j 1f; 2: j fail; 1:
  TEST_NUM(80); li a0, 0x100000000; c.bnez a0, 1f; j fail; 1:
  TEST_NUM(81); c.li a0, 0; c.bnez a0, 2f; c.j 1f; 2: j fail; 1:
  TEST_NUM(82); li s1, 0x8000000000000000; c.j 2f; 1: c.j 3f; 2: c.bnez s1, 1b; j fail; 3:
  TEST_NUM(83); c.li s1, 0; c.j 2f; 1: c.j 3f; 2: c.beqz s1, 1b; j fail; 3:

  /* ---- C.JR / C.JALR ---- */
  TEST_NUM(84); la a1, 1f; c.jr a1; j fail; 1:
  TEST_NUM(85)
  la a1, 1f
2:
  c.jalr a1
3:
  j fail
1:
  la a2, 3b
  bne ra, a2, fail_far
  la a2, 2b
  addi a2, a2, 2                   /* link = address of c.jalr + 2 */
  bne ra, a2, fail_far
  TEST_NUM(86)                     /* compressed call and return */
  c.li a0, 1
  la t0, c_sub_double
  c.jalr t0
  c.jalr t0
  c.jalr t0
  li a1, 8
  bne a0, a1, fail_far

  /* ---- 32-bit instructions at 2 mod 4 addresses, jump targets with bit 1
   * set, and a 32-bit instruction straddling a page boundary.  The code
   * lives in .text.cfix whose layout is fixed (see below); each piece
   * returns with c.jr t0. ---- */
  TEST_NUM(87)
  li a0, 0
  la t1, cfix_page
  jalr t0, 0(t1)
  li a1, 42
  bne a0, a1, fail_far
  TEST_NUM(88)
  la t1, cfix_odd_target
  andi a2, t1, 3                   /* layout check: really 2 mod 4 */
  li a3, 2
  bne a2, a3, fail_far
  li a0, 0
  jalr t0, 0(t1)
  li a1, 1
  bne a0, a1, fail_far
  TEST_NUM(89)
  li a0, 0
  jal t0, cfix_odd_target
  li a1, 1
  bne a0, a1, fail_far
  TEST_NUM(90)
  la t1, cfix_straddle
  li a2, 0xfff
  and a2, t1, a2
  li a3, 0xffe                     /* layout check: last halfword of a page */
  bne a2, a3, fail_far
  li a0, 0
  jalr t0, 0(t1)
  li a1, 5
  bne a0, a1, fail_far

  /* ---- C.EBREAK and the all-zero illegal parcel ---- */
  TEST_NUM(91)
  EXPECT_TRAP(CAUSE_BREAKPOINT)
1:
  c.ebreak
  CHECK_TRAP_TAKEN
  LOAD_TRAP_FIELD(a0, TR_EPC)
  la a1, 1b
  bne a0, a1, fail_far
  TEST_NUM(92)
  EXPECT_TRAP(CAUSE_ILLEGAL_INSN)
1:
  .half 0x0000                     /* defined illegal instruction */
  CHECK_TRAP_TAKEN
  LOAD_TRAP_FIELD(a0, TR_EPC)
  la a1, 1b
  bne a0, a1, fail_far
  TEST_CASE(93, a0, 0, LOAD_TRAP_FIELD(a0, TR_TVAL))

  RVTEST_PASS
fail_far:
  j fail

c_sub_double:
  c.add a0, a0
  c.jr ra

  /* Fixed-layout code: only fixed-size instructions, so offsets are exact
   * (assembler alignment after relaxable jumps is not to be trusted). */
  .pushsection .text.cfix, "ax", @progbits
  .balign 4096
cfix_page:                         /* +0 */
  c.nop
  .option push
  .option norvc
  addi a0, a0, 21                  /* +2: 32-bit, 2 mod 4 */
  addi a0, a0, 21                  /* +6 */
  .option pop
  c.jr t0                          /* +10 */
  c.nop                            /* +12 */
cfix_odd_target:                   /* +14 */
  c.addi a0, 1
  c.jr t0                          /* +16 */
  .skip 4094 - 18
cfix_straddle:                     /* +4094 */
  .option push
  .option norvc
  addi a0, a0, 5                   /* bytes 4094..4097: crosses the page */
  .option pop
  c.jr t0
  .popsection

  .data
  .align 4
c_data:
  .word 0x80000001, 0x00000004
  .fill 6, 4, 0
  .dword 0x3ff8000000000000        /* 1.5 at +32 */
  .fill 21, 4, 0
  .word 0x7ffffffe                 /* +124 */
  .fill 26, 4, 0
  .word 0x55555555, 0x55555555     /* +232 */
  .dword 0xa5a5a5a5a5a5a5a5        /* +240 */
  .dword 0x0123456789abcdef        /* +248, also read as word at +252 */
  .fill 60, 4, 0
  .dword 0x1111111111111111        /* +496 */
  .dword 0x5555666677778888        /* +504 */
  .align 4
  .skip 1024
c_stack_mid:
  .skip 1024
