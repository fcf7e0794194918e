/* rv64ui_arith: ADD/ADDI/SUB, ADDW/ADDIW/SUBW, logic ops, SLT*, LUI, AUIPC */
#include "common.h"

RVTEST_BEGIN
  .option norvc

  /* ---- ADD ---- */
  TEST_RR(1,  add, 0x0000000000000000, 0x0000000000000000, 0x0000000000000000)
  TEST_RR(2,  add, 0x0000000000000002, 0x0000000000000001, 0x0000000000000001)
  TEST_RR(3,  add, 0x000000000000000a, 0x0000000000000003, 0x0000000000000007)
  TEST_RR(4,  add, 0xffffffffffff8000, 0x0000000000000000, 0xffffffffffff8000)
  TEST_RR(5,  add, 0x7fffffffffff8000, 0x8000000000000000, 0xffffffffffff8000)
  TEST_RR(6,  add, 0x8000000000000000, 0x7fffffffffffffff, 0x0000000000000001)
  TEST_RR(7,  add, 0x0000000000000000, 0xffffffffffffffff, 0x0000000000000001)
  TEST_RR(8,  add, 0xfffffffffffffffe, 0xffffffffffffffff, 0xffffffffffffffff)
  TEST_RR(9,  add, 0x0000000080000000, 0x000000007fffffff, 0x0000000000000001)
  TEST_RR(10, add, 0x0000000100000000, 0x00000000ffffffff, 0x0000000000000001)
  TEST_RR_SRC1_EQ_DEST(11, add, 24, 13, 11)
  TEST_RR_SRC2_EQ_DEST(12, add, 25, 14, 11)
  TEST_RR_SRC12_EQ_DEST(13, add, 26, 13)
  TEST_RR_ZERODEST(14, add, 16, 30)
  TEST_RR_ZEROSRC1(15, add, 15, 15)
  TEST_RR_ZEROSRC2(16, add, 0x123456789abcdef0, 0x123456789abcdef0)

  /* ---- ADDI ---- */
  TEST_IMM(17, addi, 0x0000000000000000, 0x0000000000000000, 0)
  TEST_IMM(18, addi, 0x0000000000000002, 0x0000000000000001, 1)
  TEST_IMM(19, addi, 0x000000000000000a, 0x0000000000000003, 7)
  TEST_IMM(20, addi, 0xfffffffffffff800, 0x0000000000000000, -2048)
  TEST_IMM(21, addi, 0x00000000000007ff, 0x0000000000000000, 2047)
  TEST_IMM(22, addi, 0x80000000000007ff, 0x8000000000000000, 2047)
  TEST_IMM(23, addi, 0x7ffffffffffff800, 0x8000000000000000, -2048)
  TEST_IMM(24, addi, 0x8000000000000000, 0x7fffffffffffffff, 1)
  TEST_IMM(25, addi, 0x0000000000000000, 0xffffffffffffffff, 1)
  TEST_IMM(26, addi, 0xfffffffffffffffe, 0xffffffffffffffff, -1)
  TEST_IMM(27, addi, 0x0000000080000000, 0x000000007fffffff, 1)
  TEST_IMM_SRC1_EQ_DEST(28, addi, 24, 13, 11)
  TEST_IMM_ZEROSRC1(29, addi, 32, 32)
  TEST_IMM_ZEROSRC1(30, addi, 0xffffffffffffffff, -1)
  TEST_CASE(31, x0, 0, li a1, 5; addi x0, a1, 7)

  /* ---- SUB ---- */
  TEST_RR(32, sub, 0x0000000000000000, 0x0000000000000000, 0x0000000000000000)
  TEST_RR(33, sub, 0x0000000000000000, 0x0000000000000001, 0x0000000000000001)
  TEST_RR(34, sub, 0xfffffffffffffffc, 0x0000000000000003, 0x0000000000000007)
  TEST_RR(35, sub, 0x0000000000008000, 0x0000000000000000, 0xffffffffffff8000)
  TEST_RR(36, sub, 0x7fffffffffffffff, 0x8000000000000000, 0x0000000000000001)
  TEST_RR(37, sub, 0x8000000000000000, 0x0000000000000000, 0x8000000000000000)
  TEST_RR(38, sub, 0x0000000000000000, 0xffffffffffffffff, 0xffffffffffffffff)
  TEST_RR(39, sub, 0x0000000080000000, 0x000000007fffffff, 0xffffffffffffffff)
  TEST_RR(40, sub, 0xffffffff00000000, 0x0000000000000000, 0x0000000100000000)
  TEST_RR_SRC1_EQ_DEST(41, sub, 2, 13, 11)
  TEST_RR_SRC2_EQ_DEST(42, sub, 3, 14, 11)
  TEST_RR_SRC12_EQ_DEST(43, sub, 0, 13)
  TEST_RR_ZEROSRC1(44, sub, 0xfffffffffffffffb, 5)
  TEST_RR_ZERODEST(45, sub, 16, 30)

  /* ---- ADDW ---- */
  TEST_RR(46, addw, 0x0000000000000003, 0x0000000000000001, 0x0000000000000002)
  TEST_RR(47, addw, 0xffffffff80000000, 0x000000007fffffff, 0x0000000000000001)
  TEST_RR(48, addw, 0x0000000000000000, 0x00000000ffffffff, 0x0000000000000001)
  TEST_RR(49, addw, 0x0000000000000000, 0x0000000100000000, 0x0000000000000000)
  TEST_RR(50, addw, 0xffffffff9abcdef0, 0x123456789abcdef0, 0x0000000000000000)
  TEST_RR(51, addw, 0xfffffffffffffffe, 0xffffffffffffffff, 0xffffffffffffffff)
  TEST_RR(52, addw, 0x0000000000000000, 0x0000000080000000, 0x0000000080000000)
  TEST_RR(53, addw, 0x0000000000000002, 0x0000000100000001, 0x0000000100000001)
  TEST_RR(54, addw, 0xfffffffffffffffe, 0x000000007fffffff, 0x000000007fffffff)
  TEST_RR(55, addw, 0x000000007fffffff, 0x0000000080000000, 0xffffffffffffffff)
  TEST_RR_SRC12_EQ_DEST(56, addw, 0xfffffffffffffffe, 0xaaaaaaaaffffffff)
  TEST_RR_ZERODEST(57, addw, 16, 30)

  /* ---- ADDIW ---- */
  TEST_IMM(58, addiw, 0xffffffff80000000, 0x000000007fffffff, 1)
  TEST_IMM(59, addiw, 0xffffffffffffffff, 0x00000000ffffffff, 0)
  TEST_IMM(60, addiw, 0x000000007fffffff, 0x0000000080000000, -1)
  TEST_IMM(61, addiw, 0x0000000000000005, 0x0000000100000005, 0)
  TEST_IMM(62, addiw, 0xffffffff80000000, 0x1234567880000000, 0)
  TEST_IMM(63, addiw, 0xfffffffffffff800, 0x0000000000000000, -2048)
  TEST_IMM(64, addiw, 0x00000000000007ff, 0xffffffff00000000, 2047)
  TEST_IMM(65, addiw, 0x000000007ffff800, 0xffffffff80000000, -2048)
  TEST_IMM_SRC1_EQ_DEST(66, addiw, 0x0000000000000018, 0x000000000000000d, 11)
  TEST_IMM_ZEROSRC1(67, addiw, 0xffffffffffffffff, -1)

  /* ---- SUBW ---- */
  TEST_RR(68, subw, 0xffffffffffffffff, 0x0000000000000000, 0x0000000000000001)
  TEST_RR(69, subw, 0x000000007fffffff, 0x0000000080000000, 0x0000000000000001)
  TEST_RR(70, subw, 0xffffffff80000000, 0x000000007fffffff, 0xffffffffffffffff)
  TEST_RR(71, subw, 0x0000000000000000, 0x0000000100000000, 0x0000000000000000)
  TEST_RR(72, subw, 0xfffffffffffffffc, 0x0000000000000003, 0x0000000000000007)
  TEST_RR(73, subw, 0x0000000000000001, 0x0000000500000002, 0x0000000700000001)
  TEST_RR_SRC12_EQ_DEST(74, subw, 0, 0x1234567812345678)

  /* ---- AND / OR / XOR ---- */
  TEST_RR(75, and, 0x0f000f000f000f00, 0xff00ff00ff00ff00, 0x0f0f0f0f0f0f0f0f)
  TEST_RR(76, and, 0x00f000f000f000f0, 0x0ff00ff00ff00ff0, 0xf0f0f0f0f0f0f0f0)
  TEST_RR(77, and, 0x0000000000000000, 0xaaaaaaaaaaaaaaaa, 0x5555555555555555)
  TEST_RR_SRC12_EQ_DEST(78, and, 0xff00ff00ff00ff00, 0xff00ff00ff00ff00)
  TEST_RR(79, or,  0xff0fff0fff0fff0f, 0xff00ff00ff00ff00, 0x0f0f0f0f0f0f0f0f)
  TEST_RR(80, or,  0xfff0fff0fff0fff0, 0x0ff00ff00ff00ff0, 0xf0f0f0f0f0f0f0f0)
  TEST_RR(81, or,  0xffffffffffffffff, 0xaaaaaaaaaaaaaaaa, 0x5555555555555555)
  TEST_RR(82, xor, 0xf00ff00ff00ff00f, 0xff00ff00ff00ff00, 0x0f0f0f0f0f0f0f0f)
  TEST_RR(83, xor, 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0, 0xf0f0f0f0f0f0f0f0)
  TEST_RR_SRC12_EQ_DEST(84, xor, 0, 0x123456789abcdef0)
  TEST_RR_ZEROSRC1(85, or, 0x8000000000000001, 0x8000000000000001)
  TEST_RR_ZERODEST(86, xor, 1, 2)

  /* ---- ANDI / ORI / XORI (12-bit immediates are sign-extended) ---- */
  TEST_IMM(87, andi, 0xff00ff00ff00ff00, 0xff00ff00ff00ff00, -241)  /* imm 0xf0f */
  TEST_IMM(88, andi, 0x00000000000000f0, 0x0ff00ff00ff00ff0, 0x0f0)
  TEST_IMM(89, andi, 0x000000000000000f, 0x00ff00ff00ff00ff, 0x70f)
  TEST_IMM(90, andi, 0x0000000000000000, 0xfffffffffffff000, 0x7ff)
  TEST_IMM(91, ori,  0xffffffffffffff0f, 0xff00ff00ff00ff00, -241)
  TEST_IMM(92, ori,  0x0ff00ff00ff00ff0, 0x0ff00ff00ff00ff0, 0x0f0)
  TEST_IMM(93, ori,  0x00ff00ff00ff07ff, 0x00ff00ff00ff00ff, 0x70f)
  TEST_IMM(94, xori, 0x00ff00ff00ff000f, 0xff00ff00ff00ff00, -241)
  TEST_IMM(95, xori, 0xffffffffffffffff, 0x0000000000000000, -1)
  TEST_IMM(96, xori, 0x0ff00ff00ff00f00, 0x0ff00ff00ff00ff0, 0x0f0)
  TEST_IMM(97, xori, 0x00ff00ff00ff07f0, 0x00ff00ff00ff00ff, 0x70f)
  TEST_IMM_SRC1_EQ_DEST(98, xori, 0xedcba9876543210f, 0x123456789abcdef0, -1)

  /* ---- SLT / SLTU ---- */
  TEST_RR(99,  slt, 0, 0x0000000000000000, 0x0000000000000000)
  TEST_RR(100, slt, 0, 0x0000000000000001, 0x0000000000000001)
  TEST_RR(101, slt, 1, 0x0000000000000003, 0x0000000000000007)
  TEST_RR(102, slt, 0, 0x0000000000000007, 0x0000000000000003)
  TEST_RR(103, slt, 1, 0x8000000000000000, 0x0000000000000000)
  TEST_RR(104, slt, 0, 0x0000000000000000, 0x8000000000000000)
  TEST_RR(105, slt, 1, 0xffffffffffffffff, 0x0000000000000000)
  TEST_RR(106, slt, 0, 0x7fffffffffffffff, 0x8000000000000000)
  TEST_RR(107, slt, 1, 0x8000000000000000, 0x7fffffffffffffff)
  TEST_RR(108, slt, 0, 0x0000000080000000, 0x0000000000000001)
  TEST_RR(109, sltu, 1, 0x0000000000000003, 0x0000000000000007)
  TEST_RR(110, sltu, 0, 0xffffffffffffffff, 0x0000000000000000)
  TEST_RR(111, sltu, 1, 0x0000000000000000, 0xffffffffffffffff)
  TEST_RR(112, sltu, 0, 0x8000000000000000, 0x7fffffffffffffff)
  TEST_RR(113, sltu, 1, 0x7fffffffffffffff, 0x8000000000000000)
  TEST_RR(114, sltu, 0, 0x0000000000000005, 0x0000000000000005)
  TEST_RR_ZEROSRC1(115, sltu, 1, 7)                 /* snez */
  TEST_RR_ZEROSRC1(116, sltu, 0, 0)
  TEST_RR_SRC12_EQ_DEST(117, slt, 0, 0x8000000000000000)

  /* ---- SLTI / SLTIU ---- */
  TEST_IMM(118, slti, 1, 0xffffffffffffffff, 0)
  TEST_IMM(119, slti, 0, 0x0000000000000000, -1)
  TEST_IMM(120, slti, 1, 0x8000000000000000, -2048)
  TEST_IMM(121, slti, 0, 0x0000000000000005, 5)
  TEST_IMM(122, slti, 1, 0x0000000000000005, 6)
  TEST_IMM(123, slti, 0, 0x7fffffffffffffff, 2047)
  TEST_IMM(124, slti, 1, 0xfffffffffffff7ff, -2048)
  TEST_IMM(125, sltiu, 1, 0x0000000000000000, -1)     /* imm -> 0xfff..f */
  TEST_IMM(126, sltiu, 0, 0xffffffffffffffff, -1)
  TEST_IMM(127, sltiu, 0, 0xfffffffffffff800, -2048)
  TEST_IMM(128, sltiu, 1, 0xfffffffffffff7ff, -2048)
  TEST_IMM(129, sltiu, 1, 0x0000000000000000, 1)      /* seqz */
  TEST_IMM(130, sltiu, 0, 0x0000000000000005, 1)
  TEST_IMM(131, sltiu, 0, 0x8000000000000000, 2047)

  /* ---- LUI ---- */
  TEST_CASE(132, a0, 0x0000000000000000, lui a0, 0)
  TEST_CASE(133, a0, 0xfffffffffffff000, lui a0, 0xfffff)
  TEST_CASE(134, a0, 0x000000007ffff000, lui a0, 0x7ffff)
  TEST_CASE(135, a0, 0xffffffff80000000, lui a0, 0x80000)
  TEST_CASE(136, a0, 0x0000000012345000, lui a0, 0x12345)
  TEST_CASE(137, a0, 0xffffffffffffffff, lui a0, 0x80000; srai a0, a0, 63)
  TEST_CASE(138, x0, 0, lui x0, 0x12345)
  TEST_CASE(139, a0, 0x0000000012345678, lui a0, 0x12345; addi a0, a0, 0x678)

  /* ---- AUIPC ---- */
  TEST_CASE(140, a0, 0, 1: auipc a0, 0; la a1, 1b; sub a0, a0, a1)
  TEST_CASE(141, a0, 0x1000, 1: auipc a0, 1; la a1, 1b; sub a0, a0, a1)
  TEST_CASE(142, a0, 0xfffffffffffff000, 1: auipc a0, 0xfffff; la a1, 1b; sub a0, a0, a1)
  TEST_CASE(143, a0, 0xffffffff80000000, 1: auipc a0, 0x80000; la a1, 1b; sub a0, a0, a1)
  TEST_CASE(144, a0, 0x000000007ffff000, 1: auipc a0, 0x7ffff; la a1, 1b; sub a0, a0, a1)
  /* the PC-relative pair used by 'la' reaches data */
  TEST_CASE(145, a0, 0x1122334455667788, la a1, arith_data; ld a0, 0(a1))
  TEST_CASE(146, x0, 0, auipc x0, 0x12345)

  /* ---- NOP-like / HINT encodings must not change state ---- */
  TEST_CASE(147, a0, 42, li a0, 42; nop; addi x0, x0, 0; add x0, a0, a0; slli x0, a0, 3; or x0, x0, a0)

  RVTEST_PASS

  .data
  .align 3
arith_data:
  .dword 0x1122334455667788
