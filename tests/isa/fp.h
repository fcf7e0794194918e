/* fp.h - floating-point test helpers for rvisor's ISA tests.
 * Operands and results are given as bit patterns; flags are the fflags
 * value expected after the code (fflags is cleared before it). */
#ifndef RVISOR_ISA_FP_H
#define RVISOR_ISA_FP_H

#define FFLAG_NX 0x01
#define FFLAG_UF 0x02
#define FFLAG_OF 0x04
#define FFLAG_DZ 0x08
#define FFLAG_NV 0x10

#define RM_RNE 0
#define RM_RTZ 1
#define RM_RDN 2
#define RM_RUP 3
#define RM_RMM 4

/* single: fa1, fa2, fa3 = a, b, c; code leaves its result in fa0; the low 32
 * bits of fa0 are compared with res */
#define TEST_FPS(num, flags, res, a, b, c, ...) \
  TEST_NUM(num); FLI_S(fa1, a); FLI_S(fa2, b); FLI_S(fa3, c); csrwi fflags, 0; \
  __VA_ARGS__; fmv.x.w a0, fa0; slli a0, a0, 32; srli a0, a0, 32; frflags a1; \
  CHECK_EQ(a0, res); CHECK_EQ(a1, flags)

/* single operands, integer result in a0 (full 64 bits compared) */
#define TEST_FPS_INT(num, flags, res, a, b, ...) \
  TEST_NUM(num); FLI_S(fa1, a); FLI_S(fa2, b); csrwi fflags, 0; \
  __VA_ARGS__; frflags a1; CHECK_EQ(a0, res); CHECK_EQ(a1, flags)

/* integer operand in a2, single result in fa0 */
#define TEST_FPS_FROM_INT(num, flags, res, ival, ...) \
  TEST_NUM(num); li a2, ival; csrwi fflags, 0; \
  __VA_ARGS__; fmv.x.w a0, fa0; slli a0, a0, 32; srli a0, a0, 32; frflags a1; \
  CHECK_EQ(a0, res); CHECK_EQ(a1, flags)

/* double: fa1, fa2, fa3 = a, b, c; 64-bit result in fa0 */
#define TEST_FPD(num, flags, res, a, b, c, ...) \
  TEST_NUM(num); FLI_D(fa1, a); FLI_D(fa2, b); FLI_D(fa3, c); csrwi fflags, 0; \
  __VA_ARGS__; fmv.x.d a0, fa0; frflags a1; CHECK_EQ(a0, res); CHECK_EQ(a1, flags)

#define TEST_FPD_INT(num, flags, res, a, b, ...) \
  TEST_NUM(num); FLI_D(fa1, a); FLI_D(fa2, b); csrwi fflags, 0; \
  __VA_ARGS__; frflags a1; CHECK_EQ(a0, res); CHECK_EQ(a1, flags)

#define TEST_FPD_FROM_INT(num, flags, res, ival, ...) \
  TEST_NUM(num); li a2, ival; csrwi fflags, 0; \
  __VA_ARGS__; fmv.x.d a0, fa0; frflags a1; CHECK_EQ(a0, res); CHECK_EQ(a1, flags)

#endif
