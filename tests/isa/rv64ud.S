/* rv64ud: double-precision basics - arithmetic, FMA, min/max, compares,
 * conversions to/from integers and single, moves, loads/stores, sign
 * injection, classification, flags and rounding modes. */
#include "common.h"
#include "fp.h"

#define D_ONE   0x3ff0000000000000
#define D_TWO   0x4000000000000000
#define D_THREE 0x4008000000000000
#define D_HALF  0x3fe0000000000000
#define D_M_ONE 0xbff0000000000000
#define D_PINF  0x7ff0000000000000
#define D_NINF  0xfff0000000000000
#define D_QNAN  0x7ff8000000000000
#define D_SNAN  0x7ff0000000000001
#define D_NZERO 0x8000000000000000
#define D_MAX   0x7fefffffffffffff

RVTEST_BEGIN
  .option norvc

  /* ---- arithmetic ---- */
  TEST_FPD(1,  0,        D_THREE,            D_ONE, D_TWO, 0, fadd.d fa0, fa1, fa2)
  TEST_FPD(2,  0,        0,                  D_ONE, D_M_ONE, 0, fadd.d fa0, fa1, fa2)
  TEST_FPD(3,  0,        D_NZERO,            D_ONE, D_M_ONE, 0, fadd.d fa0, fa1, fa2, rdn)
  TEST_FPD(4,  0,        0x3ff8000000000000, 0x4004000000000000, D_ONE, 0, fsub.d fa0, fa1, fa2) /* 2.5-1 */
  TEST_FPD(5,  0,        0x4024000000000000, 0x4004000000000000, 0x4010000000000000, 0, fmul.d fa0, fa1, fa2)
  TEST_FPD(6,  FFLAG_NX, 0x3fd5555555555555, D_ONE, D_THREE, 0, fdiv.d fa0, fa1, fa2)
  TEST_FPD(7,  FFLAG_NX, 0x3fd5555555555556, D_ONE, D_THREE, 0, fdiv.d fa0, fa1, fa2, rup)
  TEST_FPD(8,  FFLAG_NX, 0xbfd5555555555556, D_M_ONE, D_THREE, 0, fdiv.d fa0, fa1, fa2, rdn)
  TEST_FPD(9,  FFLAG_DZ, D_PINF,             D_ONE, 0, 0, fdiv.d fa0, fa1, fa2)
  TEST_FPD(10, FFLAG_NV, D_QNAN,             0, 0, 0, fdiv.d fa0, fa1, fa2)
  TEST_FPD(11, FFLAG_NX, 0x3ff6a09e667f3bcd, D_TWO, 0, 0, fsqrt.d fa0, fa1)
  TEST_FPD(12, 0,        0x4008000000000000, 0x4022000000000000, 0, 0, fsqrt.d fa0, fa1) /* sqrt 9 */
  TEST_FPD(13, FFLAG_NV, D_QNAN,             D_M_ONE, 0, 0, fsqrt.d fa0, fa1)
  TEST_FPD(14, FFLAG_NV, D_QNAN,             D_SNAN, D_ONE, 0, fmul.d fa0, fa1, fa2)
  TEST_FPD(15, FFLAG_OF | FFLAG_NX, D_PINF,  D_MAX, D_TWO, 0, fmul.d fa0, fa1, fa2)
  TEST_FPD(16, FFLAG_UF | FFLAG_NX, 0x0008000000000000, 0x0010000000000001, D_HALF, 0, fmul.d fa0, fa1, fa2)

  /* ---- fused multiply-add ---- */
  TEST_FPD(17, 0, 0x400c000000000000, 0x3ff8000000000000, D_TWO, D_HALF, fmadd.d fa0, fa1, fa2, fa3)
  TEST_FPD(18, 0, 0x4004000000000000, 0x3ff8000000000000, D_TWO, D_HALF, fmsub.d fa0, fa1, fa2, fa3)
  TEST_FPD(19, 0, 0xc00c000000000000, 0x3ff8000000000000, D_TWO, D_HALF, fnmadd.d fa0, fa1, fa2, fa3)
  TEST_FPD(20, 0, 0xc004000000000000, 0x3ff8000000000000, D_TWO, D_HALF, fnmsub.d fa0, fa1, fa2, fa3)
  /* (1+2^-27)^2 - 1 = 2^-26 + 2^-54, kept exactly only by a fused operation */
  TEST_FPD(21, 0, 0x3e50000001000000, 0x3ff0000002000000, 0x3ff0000002000000, D_M_ONE, fmadd.d fa0, fa1, fa2, fa3)

  /* ---- min / max / compare ---- */
  TEST_FPD(22, 0,        D_NZERO, D_NZERO, 0, 0, fmin.d fa0, fa1, fa2)
  TEST_FPD(23, 0,        0,       D_NZERO, 0, 0, fmax.d fa0, fa1, fa2)
  TEST_FPD(24, FFLAG_NV, D_ONE,   D_SNAN, D_ONE, 0, fmin.d fa0, fa1, fa2)
  TEST_FPD(25, 0,        D_QNAN,  D_QNAN, D_QNAN, 0, fmax.d fa0, fa1, fa2)
  TEST_FPD_INT(26, 0,        1, D_ONE, D_ONE, feq.d a0, fa1, fa2)
  TEST_FPD_INT(27, 0,        1, D_M_ONE, D_ONE, flt.d a0, fa1, fa2)
  TEST_FPD_INT(28, 0,        0, D_TWO, D_ONE, fle.d a0, fa1, fa2)
  TEST_FPD_INT(29, 0,        0, D_QNAN, D_QNAN, feq.d a0, fa1, fa2)
  TEST_FPD_INT(30, FFLAG_NV, 0, D_QNAN, D_ONE, fle.d a0, fa1, fa2)

  /* ---- double -> int ---- */
  TEST_FPD_INT(31, FFLAG_NX, 0xfffffffffffffffe, 0xc004000000000000, 0, fcvt.w.d a0, fa1, rne) /* -2.5 */
  TEST_FPD_INT(32, FFLAG_NX, 0xfffffffffffffffd, 0xc004000000000000, 0, fcvt.w.d a0, fa1, rmm)
  TEST_FPD_INT(33, FFLAG_NX, 0xfffffffffffffffe, 0xc004000000000000, 0, fcvt.w.d a0, fa1, rtz)
  TEST_FPD_INT(34, FFLAG_NX, 0xfffffffffffffffd, 0xc004000000000000, 0, fcvt.w.d a0, fa1, rdn)
  TEST_FPD_INT(35, FFLAG_NX, 0xfffffffffffffffe, 0xc004000000000000, 0, fcvt.w.d a0, fa1, rup)
  TEST_FPD_INT(36, FFLAG_NV, 0x000000007fffffff, 0x41e0000000000000, 0, fcvt.w.d a0, fa1, rtz)  /* 2^31 */
  TEST_FPD_INT(37, 0,        0xffffffff80000000, 0xc1e0000000000000, 0, fcvt.w.d a0, fa1, rtz)  /* -2^31 */
  TEST_FPD_INT(38, 0,        0xffffffff80000000, 0x41e0000000000000, 0, fcvt.wu.d a0, fa1, rtz) /* sext */
  TEST_FPD_INT(39, FFLAG_NV, 0xffffffffffffffff, 0x41f0000000000000, 0, fcvt.wu.d a0, fa1, rtz) /* 2^32 */
  TEST_FPD_INT(40, 0,        0x8000000000000000, 0xc3e0000000000000, 0, fcvt.l.d a0, fa1, rtz)  /* -2^63 */
  TEST_FPD_INT(41, FFLAG_NV, 0x7fffffffffffffff, 0x43e0000000000000, 0, fcvt.l.d a0, fa1, rtz)  /* 2^63 */
  TEST_FPD_INT(42, 0,        0x8000000000000000, 0x43e0000000000000, 0, fcvt.lu.d a0, fa1, rtz)
  TEST_FPD_INT(43, FFLAG_NX, 0,                  0xbfe0000000000000, 0, fcvt.lu.d a0, fa1, rtz) /* -0.5 */
  TEST_FPD_INT(44, FFLAG_NV, 0,                  D_M_ONE, 0, fcvt.lu.d a0, fa1, rtz)
  TEST_FPD_INT(45, FFLAG_NV, 0x7fffffffffffffff, D_SNAN, 0, fcvt.l.d a0, fa1, rtz)
  TEST_FPD_INT(46, 0,        0x000000000001e240, 0x40fe240000000000, 0, fcvt.l.d a0, fa1, rtz)  /* 123456 */

  /* ---- int -> double ---- */
  TEST_FPD_FROM_INT(47, 0,        D_M_ONE,            -1, fcvt.d.w fa0, a2)
  TEST_FPD_FROM_INT(48, 0,        0x41efffffffe00000, 0xffffffff, fcvt.d.wu fa0, a2)
  TEST_FPD_FROM_INT(49, 0,        0xc3e0000000000000, 0x8000000000000000, fcvt.d.l fa0, a2)
  TEST_FPD_FROM_INT(50, FFLAG_NX, 0x43f0000000000000, -1, fcvt.d.lu fa0, a2)
  TEST_FPD_FROM_INT(51, FFLAG_NX, 0x43dfffffffffffff, 0x7ffffffffffffdff, fcvt.d.l fa0, a2, rtz)
  TEST_FPD_FROM_INT(52, FFLAG_NX, 0x43e0000000000000, 0x7ffffffffffffdff, fcvt.d.l fa0, a2, rup)
  TEST_FPD_FROM_INT(53, 0,        D_TWO,              0xffffffff00000002, fcvt.d.w fa0, a2)

  /* ---- single <-> double ---- */
  TEST_FPD(54, 0,        D_ONE,  0xffffffff3f800000, 0, 0, fcvt.d.s fa0, fa1)
  TEST_FPD(55, FFLAG_NV, D_QNAN, 0xffffffff7f800001, 0, 0, fcvt.d.s fa0, fa1) /* sNaN */
  TEST_FPD(56, 0,        D_QNAN, 0x000000003f800000, 0, 0, fcvt.d.s fa0, fa1) /* unboxed input */
  TEST_CASE(57, a0, 0xffffffff3eaaaaab, FLI_D(fa1, 0x3fd5555555555555); fcvt.s.d fa0, fa1; fmv.x.d a0, fa0)
  TEST_CASE(58, a0, 0xffffffff3eaaaaaa, fcvt.s.d fa0, fa1, rtz; fmv.x.d a0, fa0)
  TEST_CASE(59, a0, 0xffffffff7fc00000, FLI_D(fa1, 0x7ff8000012345678); fcvt.s.d fa0, fa1; fmv.x.d a0, fa0)
  TEST_CASE(60, a0, 0xffffffff7f800000, FLI_D(fa1, D_MAX); fcvt.s.d fa0, fa1; fmv.x.d a0, fa0)
  TEST_CASE(61, a0, FFLAG_OF | FFLAG_NX, frflags a0)

  /* ---- loads, stores, moves ---- */
  TEST_CASE(62, a0, 0x0123456789abcdef, la a1, ddata; fld fa1, 0(a1); fmv.x.d a0, fa1)
  TEST_CASE(63, a0, 0xfedcba9876543210, li a2, 0xfedcba9876543210; fmv.d.x fa2, a2; fsd fa2, 8(a1); ld a0, 8(a1))
  TEST_CASE(64, a0, 0xfedcba9876543210, fld fa3, 8(a1); fmv.x.d a0, fa3)
  TEST_CASE(65, a0, D_SNAN, FLI_D(fa1, D_SNAN); fmv.d fa0, fa1; fmv.x.d a0, fa0)   /* no canonicalisation */

  /* ---- sign injection and classify ---- */
  TEST_FPD(66, 0, D_M_ONE, D_ONE, 0xc000000000000000, 0, fsgnj.d fa0, fa1, fa2)
  TEST_FPD(67, 0, D_ONE,   D_ONE, 0xc000000000000000, 0, fsgnjn.d fa0, fa1, fa2)
  TEST_FPD(68, 0, D_ONE,   D_M_ONE, 0xc000000000000000, 0, fsgnjx.d fa0, fa1, fa2)
  TEST_FPD(69, 0, 0xfff8000000000000, D_QNAN, 0, 0, fneg.d fa0, fa1)
  TEST_FPD_INT(70, 0, 0x001, D_NINF, 0, fclass.d a0, fa1)
  TEST_FPD_INT(71, 0, 0x004, 0x800fffffffffffff, 0, fclass.d a0, fa1)
  TEST_FPD_INT(72, 0, 0x008, D_NZERO, 0, fclass.d a0, fa1)
  TEST_FPD_INT(73, 0, 0x040, D_ONE, 0, fclass.d a0, fa1)
  TEST_FPD_INT(74, 0, 0x100, D_SNAN, 0, fclass.d a0, fa1)
  TEST_FPD_INT(75, 0, 0x200, D_QNAN, 0, fclass.d a0, fa1)
  TEST_FPD_INT(76, 0, 0x080, D_PINF, 0, fclass.d a0, fa1)
  TEST_FPD_INT(77, 0, 0x020, 0x0000000000000001, 0, fclass.d a0, fa1)

  /* ---- dynamic rounding ---- */
  TEST_CASE(78, a0, 0x3fd5555555555555, fsrmi RM_RTZ; FLI_D(fa1, D_ONE); FLI_D(fa2, D_THREE); fdiv.d fa0, fa1, fa2; fmv.x.d a0, fa0)
  TEST_CASE(79, a0, 0x3fd5555555555556, fsrmi RM_RUP; fdiv.d fa0, fa1, fa2; fmv.x.d a0, fa0)
  TEST_CASE(80, a0, 3, fsrmi RM_RMM; FLI_D(fa1, 0x4004000000000000); fcvt.l.d a0, fa1)
  TEST_CASE(81, a0, 2, fsrmi RM_RNE; fcvt.l.d a0, fa1)
  TEST_TRAP(82, CAUSE_ILLEGAL_INSN, fsrmi 6; fmul.d fa0, fa1, fa2)
  fsrmi RM_RNE

  RVTEST_PASS

  .data
  .align 3
ddata:
  .dword 0x0123456789abcdef, 0
