/* rv64ui_mem: LB/LH/LW/LD/LBU/LHU/LWU, SB/SH/SW/SD (every width, sign and
 * zero extension, little-endian byte order, positive/negative/extreme
 * offsets, partial-width stores), FENCE, and FENCE.I after modifying code. */
#include "common.h"

RVTEST_BEGIN
  .option norvc

  /* ---- LB / LBU ---- */
  TEST_LD(1,  lb,  0xffffffffffffffff, 0, tdat_b)
  TEST_LD(2,  lb,  0x0000000000000000, 1, tdat_b)
  TEST_LD(3,  lb,  0xfffffffffffffff0, 2, tdat_b)
  TEST_LD(4,  lb,  0x000000000000000f, 3, tdat_b)
  TEST_LD(5,  lb,  0x000000000000007f, 4, tdat_b)
  TEST_LD(6,  lb,  0xffffffffffffff80, 5, tdat_b)
  TEST_LD(7,  lb,  0xffffffffffffffff, -3, tdat_b+3)
  TEST_LD(8,  lbu, 0x00000000000000ff, 0, tdat_b)
  TEST_LD(9,  lbu, 0x0000000000000000, 1, tdat_b)
  TEST_LD(10, lbu, 0x00000000000000f0, 2, tdat_b)
  TEST_LD(11, lbu, 0x0000000000000080, 5, tdat_b)
  TEST_LD(12, lbu, 0x00000000000000fe, -1, tdat_b+8)

  /* ---- LH / LHU ---- */
  TEST_LD(13, lh,  0x00000000000000ff, 0, tdat_h)
  TEST_LD(14, lh,  0xffffffffffffff00, 2, tdat_h)
  TEST_LD(15, lh,  0x0000000000000ff0, 4, tdat_h)
  TEST_LD(16, lh,  0xfffffffffffff00f, 6, tdat_h)
  TEST_LD(17, lh,  0x0000000000007fff, 8, tdat_h)
  TEST_LD(18, lh,  0xffffffffffff8000, 10, tdat_h)
  TEST_LD(19, lh,  0xffffffffffffff00, -4, tdat_h+6)
  TEST_LD(20, lhu, 0x00000000000000ff, 0, tdat_h)
  TEST_LD(21, lhu, 0x000000000000ff00, 2, tdat_h)
  TEST_LD(22, lhu, 0x000000000000f00f, 6, tdat_h)
  TEST_LD(23, lhu, 0x0000000000008000, 10, tdat_h)

  /* ---- LW / LWU ---- */
  TEST_LD(24, lw,  0x0000000000ff00ff, 0, tdat_w)
  TEST_LD(25, lw,  0xffffffffff00ff00, 4, tdat_w)
  TEST_LD(26, lw,  0x000000000ff00ff0, 8, tdat_w)
  TEST_LD(27, lw,  0xfffffffff00ff00f, 12, tdat_w)
  TEST_LD(28, lw,  0x000000007fffffff, 16, tdat_w)
  TEST_LD(29, lw,  0xffffffff80000000, 20, tdat_w)
  TEST_LD(30, lw,  0xffffffffff00ff00, -8, tdat_w+12)
  TEST_LD(31, lwu, 0x0000000000ff00ff, 0, tdat_w)
  TEST_LD(32, lwu, 0x00000000ff00ff00, 4, tdat_w)
  TEST_LD(33, lwu, 0x00000000f00ff00f, 12, tdat_w)
  TEST_LD(34, lwu, 0x0000000080000000, 20, tdat_w)

  /* ---- LD ---- */
  TEST_LD(35, ld, 0x00ff00ff00ff00ff, 0, tdat_d)
  TEST_LD(36, ld, 0xff00ff00ff00ff00, 8, tdat_d)
  TEST_LD(37, ld, 0x0ff00ff00ff00ff0, 16, tdat_d)
  TEST_LD(38, ld, 0xf00ff00ff00ff00f, 24, tdat_d)
  TEST_LD(39, ld, 0xff00ff00ff00ff00, -16, tdat_d+24)
  TEST_LD(40, ld, 0x00ff00ff00ff00ff, 2040, tdat_d-2040)   /* largest aligned offset */
  TEST_LD(41, ld, 0x0ff00ff00ff00ff0, -2048, tdat_d+2064)  /* most negative offset */

  /* little-endian assembly of wider values from bytes */
  TEST_LD(42, ld,  0xfe01807f0ff000ff, 0, tdat_b)
  TEST_LD(43, lw,  0xfffffffffe01807f, 4, tdat_b)
  TEST_LD(44, lhu, 0x000000000000807f, 4, tdat_b)
  TEST_LD(45, lh,  0xffffffffffffff00, 1, tdat_h+1)        /* bytes 00,ff at tdat_h+2 */

  /* load into x0 is discarded, and the base register may be the target */
  TEST_CASE(46, x0, 0, la a1, tdat_d; ld x0, 0(a1))
  TEST_CASE(47, a1, 0xff00ff00ff00ff00, la a1, tdat_d; ld a1, 8(a1))

  /* ---- SB ---- */
  TEST_ST(48, lb,  sb, 0xffffffffffffffaa, 0xaa, 0, tst)
  TEST_ST(49, lbu, sb, 0x00000000000000aa, 0xaa, 1, tst)
  TEST_ST(50, lb,  sb, 0x0000000000000034, 0x1234, 2, tst)   /* only the low byte */
  TEST_ST(51, lb,  sb, 0xffffffffffffff80, 0xffffffffffffff80, -1, tst+8)
  TEST_CASE(52, a0, 0x000000000000aa00, \
    la a1, tst; sd zero, 0(a1); li a2, 0xaa; sb a2, 1(a1); ld a0, 0(a1))
  TEST_CASE(53, a0, 0x00ffffffffffffff, \
    la a1, tst; li a2, -1; sd a2, 0(a1); sb zero, 7(a1); ld a0, 0(a1))

  /* ---- SH ---- */
  TEST_ST(54, lh,  sh, 0xffffffffffffaa55, 0xaa55, 0, tst)
  TEST_ST(55, lhu, sh, 0x000000000000aa55, 0xaa55, 2, tst)
  TEST_ST(56, lh,  sh, 0x0000000000005678, 0x12345678, 4, tst)
  TEST_ST(57, lh,  sh, 0xffffffffffff8000, 0x8000, -2, tst+8)
  TEST_CASE(58, a0, 0xffffffff0000ffff, \
    la a1, tst; li a2, -1; sd a2, 0(a1); sh zero, 2(a1); ld a0, 0(a1))

  /* ---- SW ---- */
  TEST_ST(59, lw,  sw, 0xffffffffaa55aa55, 0xaa55aa55, 0, tst)
  TEST_ST(60, lwu, sw, 0x00000000aa55aa55, 0xaa55aa55, 4, tst)
  TEST_ST(61, lw,  sw, 0x0000000009abcdef, 0x1234567809abcdef, 8, tst)
  TEST_ST(62, lw,  sw, 0xffffffff80000000, 0x80000000, -4, tst+16)
  TEST_CASE(63, a0, 0x12345678ffffffff, \
    la a1, tst; li a2, -1; sd a2, 0(a1); li a2, 0x12345678; sw a2, 4(a1); ld a0, 0(a1))

  /* ---- SD ---- */
  TEST_ST(64, ld, sd, 0x0123456789abcdef, 0x0123456789abcdef, 0, tst)
  TEST_ST(65, ld, sd, 0x8000000000000001, 0x8000000000000001, 8, tst)
  TEST_ST(66, ld, sd, 0xfedcba9876543210, 0xfedcba9876543210, -8, tst+24)
  TEST_ST(67, ld, sd, 0x5555aaaa5555aaaa, 0x5555aaaa5555aaaa, 2040, tst-2040)
  TEST_ST(68, ld, sd, 0xaaaa5555aaaa5555, 0xaaaa5555aaaa5555, -2048, tst+2048)
  /* byte order of a doubleword store */
  TEST_CASE(69, a0, 0x00000000000000ef, \
    la a1, tst; li a2, 0x0123456789abcdef; sd a2, 0(a1); lbu a0, 0(a1))
  TEST_CASE(70, a0, 0x0000000000000001, \
    la a1, tst; li a2, 0x0123456789abcdef; sd a2, 0(a1); lbu a0, 7(a1))
  TEST_CASE(71, a0, 0x0000000001234567, \
    la a1, tst; li a2, 0x0123456789abcdef; sd a2, 0(a1); lwu a0, 4(a1))
  /* stores of x0 */
  TEST_CASE(72, a0, 0, la a1, tst; li a2, -1; sd a2, 0(a1); sd x0, 0(a1); ld a0, 0(a1))
  /* store then load through a different base register */
  TEST_CASE(73, a0, 0x1111222233334444, \
    la a1, tst; addi a3, a1, 16; li a2, 0x1111222233334444; sd a2, 0(a3); ld a0, 16(a1))
  /* a sequence of dependent loads (pointer chasing) */
  TEST_CASE(74, a0, 0x00ff00ff00ff00ff, la a1, ptr1; ld a1, 0(a1); ld a1, 0(a1); ld a0, 0(a1))

  /* ---- FENCE ---- */
  TEST_CASE(75, a0, 5, li a0, 5; fence; fence rw, rw; fence r, r; fence w, w; fence iorw, iorw; fence.tso)

  /* ---- FENCE.I: modified code becomes visible ---- */
  TEST_NUM(76)
  la t0, code_buf
  li a0, 0
  jalr ra, 0(t0)                   /* original code: a0 = 1 */
  li a1, 1
  bne a0, a1, fail_far
  li a1, 0x00200513                /* addi a0, x0, 2 */
  sw a1, 0(t0)
  fence.i
  li a0, 0
  jalr ra, 0(t0)
  li a1, 2
  bne a0, a1, fail_far
  TEST_NUM(77)                     /* modify again, twice, before running */
  li a1, 0x00300513                /* addi a0, x0, 3 */
  sw a1, 0(t0)
  li a1, 0x00400513                /* addi a0, x0, 4 */
  sw a1, 0(t0)
  fence.i
  jalr ra, 0(t0)
  li a1, 4
  bne a0, a1, fail_far
  TEST_NUM(78)                     /* modify the second instruction: ret -> addi; ret */
  li a1, 0x00150513                /* addi a0, a0, 1 */
  sw a1, 4(t0)
  li a1, 0x00008067                /* ret */
  sw a1, 8(t0)
  fence.i
  jalr ra, 0(t0)
  li a1, 5
  bne a0, a1, fail_far

  RVTEST_PASS
fail_far:
  j fail

  .data
  .align 4
tdat_b:
  .byte 0xff, 0x00, 0xf0, 0x0f, 0x7f, 0x80, 0x01, 0xfe
  .align 4
tdat_h:
  .half 0x00ff, 0xff00, 0x0ff0, 0xf00f, 0x7fff, 0x8000
  .align 4
tdat_w:
  .word 0x00ff00ff, 0xff00ff00, 0x0ff00ff0, 0xf00ff00f, 0x7fffffff, 0x80000000
  .align 4
tdat_d:
  .dword 0x00ff00ff00ff00ff, 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0, 0xf00ff00ff00ff00f
ptr1:
  .dword ptr2
ptr2:
  .dword tdat_d
  .align 4
tst:
  .dword 0, 0, 0, 0
  .align 4
code_buf:
  .word 0x00100513                 /* addi a0, x0, 1 */
  .word 0x00008067                 /* ret */
  .word 0x00000000
  .word 0x00000000
