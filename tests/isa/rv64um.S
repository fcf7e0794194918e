/* rv64um: MUL/MULH/MULHSU/MULHU/MULW, DIV/DIVU/REM/REMU and the W forms,
 * including division by zero and signed overflow (-2^63 / -1). */
#include "common.h"

RVTEST_BEGIN
  .option norvc

  /* ---- MUL ---- */
  TEST_RR(1,  mul, 0x0000000000000000, 0x0000000000000000, 0x0000000000000000)
  TEST_RR(2,  mul, 0x0000000000000001, 0x0000000000000001, 0x0000000000000001)
  TEST_RR(3,  mul, 0x0000000000000015, 0x0000000000000003, 0x0000000000000007)
  TEST_RR(4,  mul, 0x0000000000000000, 0xffffffffffff8000, 0x0000000000000000)
  TEST_RR(5,  mul, 0x8000000000000000, 0x8000000000000000, 0xffffffffffffffff)
  TEST_RR(6,  mul, 0x0000000000000001, 0xffffffffffffffff, 0xffffffffffffffff)
  TEST_RR(7,  mul, 0xfffffffffffffffe, 0x7fffffffffffffff, 0x0000000000000002)
  TEST_RR(8,  mul, 0x0000000000000000, 0x0000000100000000, 0x0000000100000000)
  TEST_RR(9,  mul, 0xfffffffffffffff9, 0xffffffffffffffff, 0x0000000000000007)
  TEST_RR(10, mul, 0x0000000100000000, 0x0000000000010000, 0x0000000000010000)
  TEST_RR(11, mul, 0x2236d88fe5618cf0, 0x123456789abcdef0, 0x0fedcba987654321)
  TEST_RR_SRC1_EQ_DEST(12, mul, 143, 13, 11)
  TEST_RR_SRC12_EQ_DEST(13, mul, 169, 13)
  TEST_RR_ZEROSRC1(14, mul, 0, 31)

  /* ---- MULH (signed x signed, high half) ---- */
  TEST_RR(15, mulh, 0x0000000000000000, 0x0000000000000000, 0x0000000000000000)
  TEST_RR(16, mulh, 0x0000000000000000, 0xffffffffffffffff, 0xffffffffffffffff)
  TEST_RR(17, mulh, 0xffffffffffffffff, 0xffffffffffffffff, 0x0000000000000001)
  TEST_RR(18, mulh, 0x4000000000000000, 0x8000000000000000, 0x8000000000000000)
  TEST_RR(19, mulh, 0x0000000000000000, 0x8000000000000000, 0xffffffffffffffff)
  TEST_RR(20, mulh, 0x3fffffffffffffff, 0x7fffffffffffffff, 0x7fffffffffffffff)
  TEST_RR(21, mulh, 0x0000000000000001, 0x0000000100000000, 0x0000000100000000)
  TEST_RR(22, mulh, 0xc000000000000000, 0x8000000000000000, 0x7fffffffffffffff)
  TEST_RR(23, mulh, 0xffffffffffffffff, 0xfffffffffffffff9, 0x0000000000000007)
  TEST_RR(24, mulh, 0x0121fa00ad77d742, 0x123456789abcdef0, 0x0fedcba987654321)

  /* ---- MULHU (unsigned x unsigned) ---- */
  TEST_RR(25, mulhu, 0x0000000000000000, 0x0000000000000000, 0x0000000000000000)
  TEST_RR(26, mulhu, 0xfffffffffffffffe, 0xffffffffffffffff, 0xffffffffffffffff)
  TEST_RR(27, mulhu, 0x0000000000000000, 0xffffffffffffffff, 0x0000000000000001)
  TEST_RR(28, mulhu, 0x0000000000000001, 0x8000000000000000, 0x0000000000000002)
  TEST_RR(29, mulhu, 0x4000000000000000, 0x8000000000000000, 0x8000000000000000)
  TEST_RR(30, mulhu, 0x0000000000000006, 0xffffffffffffffff, 0x0000000000000007)
  TEST_RR(31, mulhu, 0x0121fa00ad77d742, 0x123456789abcdef0, 0x0fedcba987654321)

  /* ---- MULHSU (signed rs1 x unsigned rs2) ---- */
  TEST_RR(32, mulhsu, 0x0000000000000000, 0x0000000000000000, 0x0000000000000000)
  TEST_RR(33, mulhsu, 0xffffffffffffffff, 0xffffffffffffffff, 0xffffffffffffffff)
  TEST_RR(34, mulhsu, 0xffffffffffffffff, 0xffffffffffffffff, 0x0000000000000001)
  TEST_RR(35, mulhsu, 0x0000000000000000, 0x0000000000000001, 0xffffffffffffffff)
  TEST_RR(36, mulhsu, 0x8000000000000000, 0x8000000000000000, 0xffffffffffffffff)
  TEST_RR(37, mulhsu, 0xc000000000000000, 0x8000000000000000, 0x8000000000000000)
  TEST_RR(38, mulhsu, 0x7ffffffffffffffe, 0x7fffffffffffffff, 0xffffffffffffffff)
  TEST_RR(39, mulhsu, 0xfffffffffffffff9, 0xfffffffffffffff9, 0xffffffffffffffff)

  /* ---- MULW ---- */
  TEST_RR(40, mulw, 0xfffffffffffffffe, 0x000000007fffffff, 0x0000000000000002)
  TEST_RR(41, mulw, 0x0000000000000001, 0x0000000100000001, 0x0000000100000001)
  TEST_RR(42, mulw, 0xffffffff80000000, 0x0000000080000000, 0xffffffffffffffff)
  TEST_RR(43, mulw, 0xfffffffffffe0001, 0x000000000000ffff, 0x000000000000ffff)
  TEST_RR(44, mulw, 0x0000000000000015, 0x1234567800000003, 0xabcdef0000000007)
  TEST_RR(45, mulw, 0x0000000000000000, 0x0000000000010000, 0x0000000000010000)
  TEST_RR(46, mulw, 0xfffffffffffffff9, 0x00000000ffffffff, 0x0000000000000007)

  /* ---- DIV ---- */
  TEST_RR(47, div, 3, 20, 6)
  TEST_RR(48, div, -3, -20, 6)
  TEST_RR(49, div, -3, 20, -6)
  TEST_RR(50, div, 3, -20, -6)
  TEST_RR(51, div, 0xffffffffffffffff, 20, 0)                        /* x / 0 = -1 */
  TEST_RR(52, div, 0xffffffffffffffff, 0, 0)
  TEST_RR(53, div, 0x8000000000000000, 0x8000000000000000, 0xffffffffffffffff) /* overflow */
  TEST_RR(54, div, 0x8000000000000000, 0x8000000000000000, 1)
  TEST_RR(55, div, 0, 0, 5)
  TEST_RR(56, div, 0xc000000000000000, 0x8000000000000000, 2)
  TEST_RR(57, div, 0, 5, 7)
  TEST_RR(58, div, 0, -5, 7)                                           /* truncates toward 0 */
  TEST_RR(59, div, 0xffffffffffffffff, 0x8000000000000000, 0x7fffffffffffffff)

  /* ---- DIVU ---- */
  TEST_RR(60, divu, 3, 20, 6)
  TEST_RR(61, divu, 0x2aaaaaaaaaaaaaa7, -20, 6)
  TEST_RR(62, divu, 0, 20, -6)
  TEST_RR(63, divu, 0, -20, -6)
  TEST_RR(64, divu, 0xffffffffffffffff, 20, 0)                       /* x / 0 = 2^64-1 */
  TEST_RR(65, divu, 0, 0x8000000000000000, 0xffffffffffffffff)
  TEST_RR(66, divu, 0x4000000000000000, 0x8000000000000000, 2)
  TEST_RR(67, divu, 1, 0xffffffffffffffff, 0xffffffffffffffff)

  /* ---- REM ---- */
  TEST_RR(68, rem, 2, 20, 6)
  TEST_RR(69, rem, -2, -20, 6)                                         /* sign of dividend */
  TEST_RR(70, rem, 2, 20, -6)
  TEST_RR(71, rem, -2, -20, -6)
  TEST_RR(72, rem, 20, 20, 0)                                          /* x % 0 = x */
  TEST_RR(73, rem, 0x8000000000000000, 0x8000000000000000, 0)
  TEST_RR(74, rem, 0, 0x8000000000000000, 0xffffffffffffffff)          /* overflow -> 0 */
  TEST_RR(75, rem, 0, 0x8000000000000000, 1)
  TEST_RR(76, rem, -5, -5, 7)

  /* ---- REMU ---- */
  TEST_RR(77, remu, 2, 20, 6)
  TEST_RR(78, remu, 2, -20, 6)
  TEST_RR(79, remu, 20, 20, -6)
  TEST_RR(80, remu, -20, -20, -6)
  TEST_RR(81, remu, 20, 20, 0)
  TEST_RR(82, remu, 0xffffffffffffffff, 0xffffffffffffffff, 0)
  TEST_RR(83, remu, 0x8000000000000000, 0x8000000000000000, 0xffffffffffffffff)
  TEST_RR(84, remu, 0, 0xffffffffffffffff, 0xffffffffffffffff)

  /* ---- DIVW ---- (low 32 bits in, sign-extended 32-bit result out) */
  TEST_RR(85, divw, 3, 20, 6)
  TEST_RR(86, divw, -3, -20, 6)
  TEST_RR(87, divw, -3, 20, -6)
  TEST_RR(88, divw, 3, -20, -6)
  TEST_RR(89, divw, 0xffffffff80000000, 0xffffffff80000000, -1)       /* overflow */
  TEST_RR(90, divw, 0xffffffff80000000, 0x0000000080000000, 0x00000000ffffffff)
  TEST_RR(91, divw, 0xffffffffffffffff, 20, 0)
  TEST_RR(92, divw, 0xffffffffffffffff, 20, 0x0000000100000000)       /* low word 0 */
  TEST_RR(93, divw, 3, 0x1234567800000014, 0x0000000900000006)
  TEST_RR(94, divw, 0xffffffffc0000000, 0x0000000080000000, 2)

  /* ---- DIVUW ---- */
  TEST_RR(95, divuw, 3, 20, 6)
  TEST_RR(96, divuw, 0x000000002aaaaaa7, -20, 6)
  TEST_RR(97, divuw, 0, 20, -6)
  TEST_RR(98, divuw, 0xffffffffffffffff, 20, 0)
  TEST_RR(99, divuw, 0xffffffff80000000, 0x0000000080000000, 1)       /* result sign-extended */
  TEST_RR(100, divuw, 0, 0x0000000080000000, 0xffffffffffffffff)
  TEST_RR(101, divuw, 0x0000000040000000, 0xffffffff80000000, 2)
  TEST_RR(102, divuw, 0xffffffffffffffff, 0x00000000ffffffff, 1)

  /* ---- REMW ---- */
  TEST_RR(103, remw, 2, 20, 6)
  TEST_RR(104, remw, -2, -20, 6)
  TEST_RR(105, remw, 2, 20, -6)
  TEST_RR(106, remw, -2, -20, -6)
  TEST_RR(107, remw, 0, 0xffffffff80000000, -1)                        /* overflow -> 0 */
  TEST_RR(108, remw, 0xffffffff87654321, 0x1234567887654321, 0)       /* x % 0 = sext(x[31:0]) */
  TEST_RR(109, remw, 0x0000000000000014, 20, 0x0000000100000000)
  TEST_RR(110, remw, 0xfffffffffffffffe, 0x12345678fffffffe, 0x0000000000000007)

  /* ---- REMUW ---- */
  TEST_RR(111, remuw, 2, 20, 6)
  TEST_RR(112, remuw, 2, -20, 6)
  TEST_RR(113, remuw, 20, 20, -6)
  TEST_RR(114, remuw, 0xffffffffffffffec, -20, -6)
  TEST_RR(115, remuw, 0xffffffff80000000, 0x0000000080000000, 0)       /* sext of x[31:0] */
  TEST_RR(116, remuw, 0x0000000012345678, 0xabcdef0012345678, 0)
  TEST_RR(117, remuw, 0xffffffff80000000, 0x0000000080000000, 0xffffffffffffffff)

  /* destination = source and x0 destinations */
  TEST_RR_SRC1_EQ_DEST(118, div, 3, 20, 6)
  TEST_RR_SRC2_EQ_DEST(119, rem, 2, 20, 6)
  TEST_RR_SRC12_EQ_DEST(120, divu, 1, 12345)
  TEST_RR_ZERODEST(121, div, 20, 0)
  TEST_RR_ZERODEST(122, mulh, -1, -1)

  RVTEST_PASS
