/* priv_misaligned: misaligned loads and stores of every width (integer and
 * FP), inside a page and across a page boundary.  RISC-V lets an
 * implementation either perform them (transparently) or raise an
 * address-misaligned (or access-fault) exception; both are accepted:
 *   - performed: the loaded value / the stored bytes must be right;
 *   - trapped:   mcause must be 4/5 (loads) or 6/7 (stores), mtval the
 *                faulting address, and a trapped store must not have
 *                written anything. */
#include "common.h"

#define SENT 0x5a5a5a5a5a5a5a5a

/* load from addr into a0 (preset to SENT); mis_check returns a3 = 1 if it
 * trapped (cause and mtval already checked), then a0 must still be SENT */
#define MIS_LOAD(num, inst, addr, expected) \
  TEST_NUM(num); EXPECT_TRAP(TRAP_ANY_SYNC); la a1, addr; li a0, SENT; \
  inst a0, 0(a1); li a4, 0; jal ra, mis_check; \
  bnez a3, 7793f; CHECK_EQ(a0, expected); j 7794f; 7793: CHECK_EQ(a0, SENT); 7794:

/* FP load: the raw 64-bit register contents are compared */
#define MIS_FLOAD(num, inst, addr, expected) \
  TEST_NUM(num); EXPECT_TRAP(TRAP_ANY_SYNC); la a1, addr; li a0, SENT; fmv.d.x fa0, a0; \
  inst fa0, 0(a1); fmv.x.d a0, fa0; li a4, 0; jal ra, mis_check; \
  bnez a3, 7793f; CHECK_EQ(a0, expected); j 7794f; 7793: CHECK_EQ(a0, SENT); 7794:

/* store val at base+off into the zeroed 16-byte buffer base; if performed
 * the buffer must hold exp_lo/exp_hi, if trapped it must still be zero */
#define MIS_STORE(num, inst, base, off, val, exp_lo, exp_hi) \
  TEST_NUM(num); jal ra, reset_buf; EXPECT_TRAP(TRAP_ANY_SYNC); la a1, base + off; li a2, val; \
  inst a2, 0(a1); li a4, 1; jal ra, mis_check; la a5, base; ld a0, 0(a5); ld a5, 8(a5); \
  bnez a3, 7793f; CHECK_EQ(a0, exp_lo); CHECK_EQ(a5, exp_hi); j 7794f; \
  7793: CHECK_EQ(a0, 0); CHECK_EQ(a5, 0); 7794:

#define MIS_FSTORE(num, inst, base, off, val, exp_lo, exp_hi) \
  TEST_NUM(num); jal ra, reset_buf; EXPECT_TRAP(TRAP_ANY_SYNC); la a1, base + off; li a2, val; \
  fmv.d.x fa2, a2; inst fa2, 0(a1); li a4, 1; jal ra, mis_check; la a5, base; ld a0, 0(a5); ld a5, 8(a5); \
  bnez a3, 7793f; CHECK_EQ(a0, exp_lo); CHECK_EQ(a5, exp_hi); j 7794f; \
  7793: CHECK_EQ(a0, 0); CHECK_EQ(a5, 0); 7794:

RVTEST_BEGIN
  .option norvc

  /* data bytes are 0x80, 0x81, ... 0x8f (mdat), and 0xa0.. around a page
   * boundary (pdat: 8 bytes before the boundary, 8 after) */
  MIS_LOAD(1,  lh,  mdat+1, 0xffffffffffff8281)
  MIS_LOAD(2,  lhu, mdat+1, 0x0000000000008281)
  MIS_LOAD(3,  lh,  mdat+7, 0xffffffffffff8887)
  MIS_LOAD(4,  lw,  mdat+1, 0xffffffff84838281)
  MIS_LOAD(5,  lw,  mdat+3, 0xffffffff86858483)
  MIS_LOAD(6,  lwu, mdat+3, 0x0000000086858483)
  MIS_LOAD(7,  lwu, mdat+6, 0x0000000089888786)
  MIS_LOAD(8,  ld,  mdat+1, 0x8887868584838281)
  MIS_LOAD(9,  ld,  mdat+4, 0x8b8a898887868584)
  MIS_LOAD(10, ld,  mdat+7, 0x8e8d8c8b8a898887)
  /* across a page boundary */
  MIS_LOAD(11, lh,  pdat+7, 0xffffffffffffb0a7)
  MIS_LOAD(12, lw,  pdat+6, 0xffffffffb1b0a7a6)
  MIS_LOAD(13, ld,  pdat+3, 0xb2b1b0a7a6a5a4a3)
  MIS_LOAD(14, lwu, pdat+5, 0x00000000b0a7a6a5)
  /* FP */
  MIS_FLOAD(15, flw, mdat+2, 0xffffffff85848382)
  MIS_FLOAD(16, fld, mdat+4, 0x8b8a898887868584)
  MIS_FLOAD(17, fld, pdat+1, 0xb0a7a6a5a4a3a2a1)

  /* stores into a 16-byte buffer preset to 0 */
  MIS_STORE(18, sh, sbuf, 1, 0x1122334455667788, 0x0000000000778800, 0)
  MIS_STORE(19, sw, sbuf, 3, 0x1122334455667788, 0x0055667788000000, 0)
  MIS_STORE(20, sd, sbuf, 1, 0x1122334455667788, 0x2233445566778800, 0x0000000000000011)
  MIS_STORE(21, sd, sbuf, 7, 0x1122334455667788, 0x8800000000000000, 0x0011223344556677)
  MIS_STORE(22, sw, sbuf, 6, 0xffffffffaabbccdd, 0xccdd000000000000, 0x000000000000aabb)
  MIS_FSTORE(23, fsd, sbuf, 4, 0x0102030405060708, 0x0506070800000000, 0x0000000001020304)
  MIS_FSTORE(24, fsw, sbuf, 2, 0xffffffff3f800000, 0x00003f8000000000, 0)

  /* Across a boundary between two devices (the RTC's last word, then the
   * pvpanic register): an access fault, and nothing reaches either; a
   * byte of the store reaching pvpanic would end the run as a panic. */
  TEST_NUM(25); EXPECT_TRAP(CAUSE_LOAD_ACCESS); li a1, 0x101ffc; li a0, SENT
  ld a0, 0(a1); CHECK_TRAP_TAKEN; CHECK_EQ(a0, SENT)
  LOAD_TRAP_FIELD(t0, TR_TVAL); bne t0, a1, fail_far
  TEST_NUM(26); EXPECT_TRAP(CAUSE_STORE_ACCESS); li a1, 0x101ffc; li a2, 0x0101010101010101
  sd a2, 0(a1); CHECK_TRAP_TAKEN
  LOAD_TRAP_FIELD(t0, TR_TVAL); bne t0, a1, fail_far

  RVTEST_PASS

/* after a misaligned access (a1 = address, a4 = 0 load / 1 store):
 * a3 = 0 if it was performed (the trap expectation is withdrawn), a3 = 1 if
 * it trapped with a proper cause and mtval = a1. Clobbers t0, t1. */
mis_check:
  LOAD_TRAP_FIELD(t0, TR_EXPECT)
  addi t0, t0, 1
  beqz t0, 1f
  SET_TRAP_FIELD(TR_EXPECT, -1)
  li a3, 0
  ret
1:
  LOAD_TRAP_FIELD(t0, TR_CAUSE)
  slli t1, a4, 1                   /* loads: 4/5, stores: 6/7 */
  addi t1, t1, CAUSE_MISALIGNED_LOAD
  beq t0, t1, 2f
  addi t1, t1, 1
  bne t0, t1, fail_far
2:
  LOAD_TRAP_FIELD(t0, TR_TVAL)
  bne t0, a1, fail_far
  li a3, 1
  ret

reset_buf:
  la t0, sbuf
  sd zero, 0(t0)
  sd zero, 8(t0)
  sd zero, 16(t0)
  ret

fail_far:
  j fail

  .data
  .align 4
mdat:
  .byte 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87
  .byte 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f
  .align 4
sbuf:
  .dword 0, 0, 0
  .align 12
  .skip 4096 - 8
pdat:
  .byte 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7
  .byte 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7
