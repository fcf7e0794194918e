/* rv64uf: single-precision basics - arithmetic, FMA, min/max, compares,
 * conversions (every int width, rounding modes, saturation), moves,
 * NaN-boxing, sign injection, classification, fcsr/frm/fflags behaviour,
 * dynamic rounding, mstatus.FS. */
#include "common.h"
#include "fp.h"

#define ONE   0x3f800000
#define TWO   0x40000000
#define THREE 0x40400000
#define HALF  0x3f000000
#define M_ONE 0xbf800000
#define PINF  0x7f800000
#define NINF  0xff800000
#define QNAN  0x7fc00000
#define SNAN  0x7f800001
#define PZERO 0x00000000
#define NZERO 0x80000000

RVTEST_BEGIN
  .option norvc

  /* ---- arithmetic ---- */
  TEST_FPS(1,  0, THREE,      ONE, TWO, 0, fadd.s fa0, fa1, fa2)
  TEST_FPS(2,  0, PZERO,      ONE, M_ONE, 0, fadd.s fa0, fa1, fa2)
  TEST_FPS(3,  0, NZERO,      ONE, M_ONE, 0, fadd.s fa0, fa1, fa2, rdn)   /* x + -x = -0 in RDN */
  TEST_FPS(4,  0, 0x3fc00000, 0x40200000, ONE, 0, fsub.s fa0, fa1, fa2)  /* 2.5 - 1 = 1.5 */
  TEST_FPS(5,  0, 0x41200000, 0x40200000, 0x40800000, 0, fmul.s fa0, fa1, fa2) /* 2.5*4 = 10 */
  TEST_FPS(6,  FFLAG_NX, 0x3eaaaaab, ONE, THREE, 0, fdiv.s fa0, fa1, fa2) /* 1/3 */
  TEST_FPS(7,  FFLAG_NX, 0x3eaaaaaa, ONE, THREE, 0, fdiv.s fa0, fa1, fa2, rtz)
  TEST_FPS(8,  FFLAG_NX, 0x3eaaaaab, ONE, THREE, 0, fdiv.s fa0, fa1, fa2, rup)
  TEST_FPS(9,  FFLAG_NX, 0xbeaaaaab, M_ONE, THREE, 0, fdiv.s fa0, fa1, fa2, rdn)
  TEST_FPS(10, FFLAG_DZ, PINF,       ONE, PZERO, 0, fdiv.s fa0, fa1, fa2)
  TEST_FPS(11, FFLAG_DZ, NINF,       M_ONE, PZERO, 0, fdiv.s fa0, fa1, fa2)
  TEST_FPS(12, FFLAG_NV, QNAN,       PZERO, PZERO, 0, fdiv.s fa0, fa1, fa2)
  TEST_FPS(13, 0,        TWO,        0x40800000, 0, 0, fsqrt.s fa0, fa1)
  TEST_FPS(14, FFLAG_NX, 0x3fb504f3, TWO, 0, 0, fsqrt.s fa0, fa1)
  TEST_FPS(15, FFLAG_NV, QNAN,       M_ONE, 0, 0, fsqrt.s fa0, fa1)
  TEST_FPS(16, 0,        NZERO,      NZERO, 0, 0, fsqrt.s fa0, fa1)
  TEST_FPS(17, FFLAG_NV, QNAN,       SNAN, ONE, 0, fadd.s fa0, fa1, fa2)  /* sNaN -> canonical */
  TEST_FPS(18, 0,        QNAN,       0x7fc12345, ONE, 0, fadd.s fa0, fa1, fa2) /* payload not kept */
  TEST_FPS(19, FFLAG_NV, QNAN,       PINF, NINF, 0, fadd.s fa0, fa1, fa2)
  TEST_FPS(20, FFLAG_NV, QNAN,       PZERO, PINF, 0, fmul.s fa0, fa1, fa2)
  TEST_FPS(21, FFLAG_OF | FFLAG_NX, PINF, 0x7f7fffff, TWO, 0, fmul.s fa0, fa1, fa2)
  TEST_FPS(22, FFLAG_OF | FFLAG_NX, 0x7f7fffff, 0x7f7fffff, TWO, 0, fmul.s fa0, fa1, fa2, rtz)
  TEST_FPS(23, FFLAG_UF | FFLAG_NX, 0x00400000, 0x00800001, HALF, 0, fmul.s fa0, fa1, fa2)
  TEST_FPS(24, 0,        0x00400000, 0x00800000, HALF, 0, fmul.s fa0, fa1, fa2) /* exact subnormal */

  /* ---- fused multiply-add ---- */
  TEST_FPS(25, 0, 0x40600000, 0x3fc00000, TWO, HALF, fmadd.s fa0, fa1, fa2, fa3)   /* 1.5*2+.5 */
  TEST_FPS(26, 0, 0x40200000, 0x3fc00000, TWO, HALF, fmsub.s fa0, fa1, fa2, fa3)   /* 1.5*2-.5 */
  TEST_FPS(27, 0, 0xc0600000, 0x3fc00000, TWO, HALF, fnmadd.s fa0, fa1, fa2, fa3)  /* -(3)-.5 */
  TEST_FPS(28, 0, 0xc0200000, 0x3fc00000, TWO, HALF, fnmsub.s fa0, fa1, fa2, fa3)  /* -(3)+.5 */
  /* single rounding: (1+2^-12)^2 - 1 = 2^-11 + 2^-24 exactly (a separate
   * multiply would round the 2^-24 term away and give 2^-11) */
  TEST_FPS(29, 0, 0x3a000400, 0x3f800800, 0x3f800800, M_ONE, fmadd.s fa0, fa1, fa2, fa3)
  TEST_FPS(30, FFLAG_NV, QNAN, PINF, PZERO, QNAN, fmadd.s fa0, fa1, fa2, fa3)     /* inf*0 + qNaN */

  /* ---- min / max ---- */
  TEST_FPS(31, 0,        NZERO, NZERO, PZERO, 0, fmin.s fa0, fa1, fa2)
  TEST_FPS(32, 0,        NZERO, PZERO, NZERO, 0, fmin.s fa0, fa1, fa2)
  TEST_FPS(33, 0,        PZERO, NZERO, PZERO, 0, fmax.s fa0, fa1, fa2)
  TEST_FPS(34, 0,        ONE,   QNAN, ONE, 0, fmin.s fa0, fa1, fa2)
  TEST_FPS(35, FFLAG_NV, ONE,   SNAN, ONE, 0, fmax.s fa0, fa1, fa2)
  TEST_FPS(36, 0,        QNAN,  QNAN, 0x7fc00001, 0, fmax.s fa0, fa1, fa2)
  TEST_FPS(37, 0,        M_ONE, M_ONE, TWO, 0, fmin.s fa0, fa1, fa2)
  TEST_FPS(38, 0,        TWO,   M_ONE, TWO, 0, fmax.s fa0, fa1, fa2)

  /* ---- compares ---- */
  TEST_FPS_INT(39, 0,        1, ONE, ONE, feq.s a0, fa1, fa2)
  TEST_FPS_INT(40, 0,        1, NZERO, PZERO, feq.s a0, fa1, fa2)
  TEST_FPS_INT(41, 0,        1, ONE, TWO, flt.s a0, fa1, fa2)
  TEST_FPS_INT(42, 0,        0, TWO, ONE, fle.s a0, fa1, fa2)
  TEST_FPS_INT(43, 0,        1, ONE, ONE, fle.s a0, fa1, fa2)
  TEST_FPS_INT(44, 0,        0, QNAN, ONE, feq.s a0, fa1, fa2)       /* quiet compare */
  TEST_FPS_INT(45, FFLAG_NV, 0, SNAN, ONE, feq.s a0, fa1, fa2)
  TEST_FPS_INT(46, FFLAG_NV, 0, QNAN, ONE, flt.s a0, fa1, fa2)       /* signaling compare */
  TEST_FPS_INT(47, FFLAG_NV, 0, ONE, QNAN, fle.s a0, fa1, fa2)
  TEST_FPS_INT(48, 0,        1, NINF, PINF, flt.s a0, fa1, fa2)

  /* ---- float -> int ---- */
  TEST_FPS_INT(49, FFLAG_NX, 0xfffffffffffffffc, 0xc0600000, 0, fcvt.w.s a0, fa1, rne)  /* -3.5 */
  TEST_FPS_INT(50, FFLAG_NX, 0xfffffffffffffffd, 0xc0600000, 0, fcvt.w.s a0, fa1, rtz)
  TEST_FPS_INT(51, FFLAG_NX, 0xfffffffffffffffd, 0xc0600000, 0, fcvt.w.s a0, fa1, rup)
  TEST_FPS_INT(52, FFLAG_NX, 0xfffffffffffffffc, 0xc0600000, 0, fcvt.w.s a0, fa1, rdn)
  TEST_FPS_INT(53, FFLAG_NX, 0xfffffffffffffffc, 0xc0600000, 0, fcvt.w.s a0, fa1, rmm)
  TEST_FPS_INT(54, FFLAG_NX, 2, 0x40200000, 0, fcvt.w.s a0, fa1, rne)                  /* 2.5 */
  TEST_FPS_INT(55, FFLAG_NX, 3, 0x40200000, 0, fcvt.w.s a0, fa1, rmm)
  TEST_FPS_INT(56, 0,        0xffffffffffffffff, M_ONE, 0, fcvt.w.s a0, fa1, rtz)
  TEST_FPS_INT(57, FFLAG_NV, 0x000000007fffffff, QNAN, 0, fcvt.w.s a0, fa1, rtz)
  TEST_FPS_INT(58, FFLAG_NV, 0x000000007fffffff, 0x501502f9, 0, fcvt.w.s a0, fa1, rtz) /* 1e10 */
  TEST_FPS_INT(59, FFLAG_NV, 0xffffffff80000000, 0xd01502f9, 0, fcvt.w.s a0, fa1, rtz) /* -1e10 */
  TEST_FPS_INT(60, FFLAG_NV, 0x000000007fffffff, PINF, 0, fcvt.w.s a0, fa1, rtz)
  TEST_FPS_INT(61, FFLAG_NV, 0, M_ONE, 0, fcvt.wu.s a0, fa1, rtz)
  TEST_FPS_INT(62, FFLAG_NX, 0, 0xbf000000, 0, fcvt.wu.s a0, fa1, rtz)                  /* -0.5 */
  TEST_FPS_INT(63, 0, 0xffffffffb2d05e00, 0x4f32d05e, 0, fcvt.wu.s a0, fa1, rtz)   /* 3e9: sext */
  TEST_FPS_INT(64, FFLAG_NV, 0xffffffffffffffff, QNAN, 0, fcvt.wu.s a0, fa1, rtz)
  TEST_FPS_INT(65, FFLAG_NX, 0xffffffffffffffff, 0xbfc00000, 0, fcvt.l.s a0, fa1, rtz)  /* -1.5 */
  TEST_FPS_INT(66, 0,        0x8000000000000000, 0xdf000000, 0, fcvt.l.s a0, fa1, rtz)  /* -2^63 */
  TEST_FPS_INT(67, FFLAG_NV, 0x7fffffffffffffff, 0x5f000000, 0, fcvt.l.s a0, fa1, rtz)  /* 2^63 */
  TEST_FPS_INT(68, 0,        0x8000000000000000, 0x5f000000, 0, fcvt.lu.s a0, fa1, rtz)
  TEST_FPS_INT(69, FFLAG_NV, 0xffffffffffffffff, 0x5f800000, 0, fcvt.lu.s a0, fa1, rtz) /* 2^64 */
  TEST_FPS_INT(70, FFLAG_NV, 0x7fffffffffffffff, QNAN, 0, fcvt.l.s a0, fa1, rtz)
  TEST_FPS_INT(71, FFLAG_NV, 0x8000000000000000, NINF, 0, fcvt.l.s a0, fa1, rtz)
  TEST_FPS_INT(72, FFLAG_NV, 0, NINF, 0, fcvt.lu.s a0, fa1, rtz)

  /* ---- int -> float ---- */
  TEST_FPS_FROM_INT(73, 0,        M_ONE,      -1, fcvt.s.w fa0, a2)
  TEST_FPS_FROM_INT(74, 0,        TWO,        0x1234567800000002, fcvt.s.w fa0, a2)  /* low word */
  TEST_FPS_FROM_INT(75, FFLAG_NX, 0x4f000000, 0x7fffffff, fcvt.s.w fa0, a2)
  TEST_FPS_FROM_INT(76, FFLAG_NX, 0x4f800000, -1, fcvt.s.wu fa0, a2)
  TEST_FPS_FROM_INT(77, 0,        0xdf000000, 0x8000000000000000, fcvt.s.l fa0, a2)
  TEST_FPS_FROM_INT(78, FFLAG_NX, 0x5f800000, -1, fcvt.s.lu fa0, a2)
  TEST_FPS_FROM_INT(79, 0,        PZERO,      0, fcvt.s.l fa0, a2)
  TEST_FPS_FROM_INT(80, FFLAG_NX, 0x4effffff, 0x7fffffbf, fcvt.s.w fa0, a2, rtz)
  TEST_FPS_FROM_INT(81, FFLAG_NX, 0x4f000000, 0x7fffffbf, fcvt.s.w fa0, a2, rup)

  /* ---- moves and NaN-boxing ---- */
  TEST_CASE(82, a0, 0xffffffffbf800000, FLI_S(fa1, M_ONE); fmv.x.w a0, fa1)       /* sign-extends */
  TEST_CASE(83, a0, 0xffffffff3f800000, li a1, 0x123456783f800000; fmv.w.x fa1, a1; fmv.x.d a0, fa1)
  TEST_CASE(84, a0, 0xffffffff3f800000, la a1, fdata; flw fa1, 0(a1); fmv.x.d a0, fa1)
  /* an improperly boxed value is a canonical NaN to single-precision ops */
  TEST_CASE(85, a0, QNAN, li a1, 0x000000003f800000; fmv.d.x fa1, a1; fadd.s fa0, fa1, fa1; fmv.x.w a0, fa0)
  TEST_CASE(86, a0, QNAN, li a1, 0x000000003f800000; fmv.d.x fa1, a1; FLI_S(fa2, ONE); fsgnj.s fa0, fa1, fa2; fmv.x.w a0, fa0)
  /* but FMV.X.W and FSW just take the low 32 bits */
  TEST_CASE(87, a0, 0x000000003f800000, li a1, 0x000000003f800000; fmv.d.x fa1, a1; fmv.x.w a0, fa1)
  TEST_CASE(88, a0, 0x000000003f800000, la a1, fdata; li a0, -1; sw a0, 4(a1); fsw fa1, 4(a1); lwu a0, 4(a1))
  TEST_CASE(89, a0, 0x0000000040400000, la a1, fdata; FLI_S(fa3, THREE); fsw fa3, 8(a1); lwu a0, 8(a1))

  /* ---- sign injection ---- */
  TEST_FPS(90, 0, M_ONE,      ONE, 0xc0000000, 0, fsgnj.s fa0, fa1, fa2)
  TEST_FPS(91, 0, ONE,        ONE, 0xc0000000, 0, fsgnjn.s fa0, fa1, fa2)
  TEST_FPS(92, 0, ONE,        M_ONE, 0xc0000000, 0, fsgnjx.s fa0, fa1, fa2)
  TEST_FPS(93, 0, M_ONE,      M_ONE, TWO, 0, fsgnjx.s fa0, fa1, fa2)
  TEST_FPS(94, 0, ONE,        M_ONE, 0, 0, fabs.s fa0, fa1)
  TEST_FPS(95, 0, 0xffc00000, QNAN, 0, 0, fneg.s fa0, fa1)          /* no NaN canonicalisation */
  TEST_FPS(96, 0, 0x7f800001, 0xff800001, 0, 0, fabs.s fa0, fa1)    /* sNaN untouched, no flag */

  /* ---- classify ---- */
  TEST_FPS_INT(97,  0, 0x001, NINF, 0, fclass.s a0, fa1)
  TEST_FPS_INT(98,  0, 0x002, M_ONE, 0, fclass.s a0, fa1)
  TEST_FPS_INT(99,  0, 0x004, 0x80000001, 0, fclass.s a0, fa1)
  TEST_FPS_INT(100, 0, 0x008, NZERO, 0, fclass.s a0, fa1)
  TEST_FPS_INT(101, 0, 0x010, PZERO, 0, fclass.s a0, fa1)
  TEST_FPS_INT(102, 0, 0x020, 0x007fffff, 0, fclass.s a0, fa1)
  TEST_FPS_INT(103, 0, 0x040, ONE, 0, fclass.s a0, fa1)
  TEST_FPS_INT(104, 0, 0x080, PINF, 0, fclass.s a0, fa1)
  TEST_FPS_INT(105, 0, 0x100, SNAN, 0, fclass.s a0, fa1)
  TEST_FPS_INT(106, 0, 0x200, QNAN, 0, fclass.s a0, fa1)
  TEST_CASE(107, a0, 0x200, li a1, 0x3f800000; fmv.d.x fa1, a1; fclass.s a0, fa1)   /* unboxed */

  /* ---- fcsr / frm / fflags ---- */
  TEST_CASE(108, a0, 0xff, li a1, 0xff; csrw fcsr, a1; csrr a0, fcsr)
  TEST_CASE(109, a0, 0x07, frrm a0)
  TEST_CASE(110, a0, 0x1f, frflags a0)
  TEST_CASE(111, a0, 0xe0, csrwi fflags, 0; csrr a0, fcsr)
  TEST_CASE(112, a0, 0x07, fsrmi a0, 2)                               /* returns old frm */
  TEST_CASE(113, a0, 0x40, csrr a0, fcsr)
  TEST_CASE(114, a0, 0x00, fsflagsi a0, 0x15)
  TEST_CASE(115, a0, 0x55, csrr a0, fcsr)
  TEST_CASE(116, a0, 0x15, csrrci a0, fflags, 0x10)
  TEST_CASE(117, a0, 0x45, csrr a0, fcsr)
  TEST_CASE(118, a0, 0x02, csrrs a0, frm, x0)
  TEST_CASE(119, a0, 0x05, li a1, 0xfd; csrw fcsr, zero; csrw frm, a1; frrm a0) /* 3 bits kept */
  TEST_CASE(120, a0, 0x1e, li a1, 0xfe; csrw fcsr, zero; csrw fflags, a1; frflags a0)
  /* flags accumulate */
  TEST_CASE(121, a0, FFLAG_NX | FFLAG_DZ, csrw fcsr, zero; FLI_S(fa1, ONE); FLI_S(fa2, THREE); \
    FLI_S(fa3, PZERO); fdiv.s fa0, fa1, fa2; fdiv.s fa0, fa1, fa3; frflags a0)
  /* dynamic rounding mode */
  TEST_CASE(122, a0, 0x3eaaaaaa, fsrmi RM_RTZ; fdiv.s fa0, fa1, fa2; fmv.x.w a0, fa0)
  TEST_CASE(123, a0, 0x3eaaaaab, fsrmi RM_RUP; fdiv.s fa0, fa1, fa2; fmv.x.w a0, fa0)
  TEST_CASE(124, a0, 0xffffffffbeaaaaab, fsrmi RM_RDN; FLI_S(fa4, M_ONE); fdiv.s fa0, fa4, fa2; fmv.x.w a0, fa0)
  TEST_CASE(125, a0, 0xffffffffbeaaaaaa, fsrmi RM_RUP; fdiv.s fa0, fa4, fa2; fmv.x.w a0, fa0)
  TEST_CASE(126, a0, 3, fsrmi RM_RMM; FLI_S(fa1, 0x40200000); fcvt.w.s a0, fa1)
  /* a static rounding mode overrides frm */
  TEST_CASE(127, a0, 2, fcvt.w.s a0, fa1, rne)
  /* reserved frm values make dynamic-rounding instructions illegal */
  TEST_TRAP(128, CAUSE_ILLEGAL_INSN, fsrmi 5; fadd.s fa0, fa1, fa2)
  TEST_TRAP(129, CAUSE_ILLEGAL_INSN, fsrmi 7; fcvt.s.w fa0, a2)
  TEST_CASE(130, a0, 2, fsrmi 7; fcvt.w.s a0, fa1, rne)                 /* static rm still fine */
  TEST_CASE(131, a0, 0x3fc00000, fsrmi 5; fsgnj.s fa0, fa1, fa1; FLI_S(fa1, 0x3fc00000); fmv.s fa0, fa1; fmv.x.w a0, fa0)
  fsrmi RM_RNE

  /* ---- mstatus.FS ---- */
  /* writing FP state makes FS dirty (and SD set) */
  TEST_NUM(132)
  li a1, MSTATUS_FS
  csrc mstatus, a1
  li a1, MSTATUS_FS_INIT
  csrs mstatus, a1
  FLI_S(fa0, ONE)
  csrr a0, mstatus
  srli a1, a0, 13
  andi a1, a1, 3
  CHECK_EQ(a1, 3)
  srli a1, a0, 63
  CHECK_EQ(a1, 1)
  /* with FS = Off every FP instruction and fcsr access is illegal */
  li a1, MSTATUS_FS
  csrc mstatus, a1
  TEST_TRAP(133, CAUSE_ILLEGAL_INSN, fadd.s fa0, fa1, fa2)
  TEST_TRAP(134, CAUSE_ILLEGAL_INSN, fmv.x.w a0, fa0)
  TEST_TRAP(135, CAUSE_ILLEGAL_INSN, la a1, fdata; flw fa0, 0(a1))
  TEST_TRAP(136, CAUSE_ILLEGAL_INSN, csrr a0, fcsr)
  TEST_TRAP(137, CAUSE_ILLEGAL_INSN, frflags a0)
  TEST_CASE(138, a0, 0, csrr a0, mstatus; srli a0, a0, 13; andi a0, a0, 3)
  li a1, MSTATUS_FS_INIT
  csrs mstatus, a1
  TEST_CASE(139, a0, 0xffffffffbf800000, FLI_S(fa1, M_ONE); fmv.x.w a0, fa1)

  RVTEST_PASS

  .data
  .align 3
fdata:
  .word 0x3f800000, 0, 0, 0
