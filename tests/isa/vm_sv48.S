/* vm_sv48: Sv48 paging, if satp accepts mode 9 (otherwise the test passes
 * without doing anything: writing an unsupported mode leaves satp alone).
 *   4-level walks to 4 KiB pages, a 512 GiB leaf (level 3), a 1 GiB leaf
 *   reached through the top (negative) half, the 48-bit canonical-address
 *   rule (0x8000000000 is valid here, unlike Sv39), a misaligned 512 GiB
 *   leaf, an empty root entry, and sfence.vma after a PTE change. */
#include "common.h"
#include "vm.h"

#define VA_P0      0x0000000040000000     /* l3[0] l2[1] l1[0] l0[0] -> p0 */
#define VA_TERA    0x0000008000000000     /* l3[1]: 512 GiB leaf -> PA 0 */
#define VA_BADTERA 0x0000010000000000     /* l3[2]: misaligned 512 GiB leaf */
#define VA_EMPTY   0x0000018000000000     /* l3[3]: invalid */
#define VA_HIGH    0x00007f8000000000     /* l3[255] ... l0c[0] -> p1 */
#define VA_NEG     0xffffff8000000000     /* l3[511] l2d[0]: 1 GiB -> 0x80000000 */
#define VA_NONCANON 0x0000800000000000

#define PAT0 0x1111111111111111
#define PAT1 0x2222222222222222
#define PAT2 0x3333333333333333

#define RW_AD (PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)

RVTEST_BEGIN
  .option norvc

  ZERO_PAGE(l3)
  ZERO_PAGE(l2)
  ZERO_PAGE(l1)
  ZERO_PAGE(l0)
  ZERO_PAGE(l2c)
  ZERO_PAGE(l1c)
  ZERO_PAGE(l0c)
  ZERO_PAGE(l2d)
  SET_PTE(l3, 0, l2, PTE_V)
  SET_PTE_RAW(l2, 2, 0x200000cf)                      /* 0x80000000: 1 GiB identity, RWXAD */
  SET_PTE(l2, 1, l1, PTE_V)
  SET_PTE(l1, 0, l0, PTE_V)
  SET_PTE(l0, 0, p0, RW_AD)
  SET_PTE_RAW(l3, 1, 0x00000000000000c7)              /* 512 GiB leaf -> PA 0, RWAD */
  SET_PTE_RAW(l3, 2, 0x00000000200000c7)              /* PPN 0x80000: misaligned */
  SET_PTE(l3, 255, l2c, PTE_V)
  SET_PTE(l2c, 0, l1c, PTE_V)
  SET_PTE(l1c, 0, l0c, PTE_V)
  SET_PTE(l0c, 0, p1, RW_AD)
  SET_PTE(l3, 511, l2d, PTE_V)
  SET_PTE_RAW(l2d, 0, 0x00000000200000c7)             /* 1 GiB -> 0x80000000, RWAD */
  VM_SETUP_DELEGATION

  /* ---- is Sv48 supported? ---- */
  la a0, l3
  srli a0, a0, 12
  li a1, SATP_MODE_SV48
  or a0, a0, a1
  csrw satp, a0
  csrr a1, satp
  beqz a1, skip_all                /* write ignored: no Sv48 */
  TEST_NUM(1)
  CHECK_REG_EQ(a0, a1)
  sfence.vma
  GOTO_SMODE

  TEST_CASE(2, a0, PAT0, li a1, VA_P0; ld a0, 0(a1))
  TEST_CASE(3, a0, PAT0, la a1, p0; li a2, VA_TERA; add a1, a1, a2; ld a0, 0(a1))
  TEST_CASE(4, a0, 0x4242, la a1, p0; li a2, VA_TERA; add a1, a1, a2; li a3, 0x4242; sd a3, 8(a1); la a1, p0; ld a0, 8(a1))
  TEST_CASE(5, a0, PAT1, li a1, VA_HIGH; ld a0, 0(a1))
  TEST_CASE(6, a0, PAT2, la a1, p2; li a2, 0x80000000; sub a1, a1, a2; li a2, VA_NEG; add a1, a1, a2; ld a0, 0(a1))
  TEST_S_FAULT(7, CAUSE_LOAD_PAGE_FAULT, VA_NONCANON, li a1, VA_NONCANON; ld a0, 0(a1))
  TEST_S_FAULT(8, CAUSE_STORE_PAGE_FAULT, 0xffff7ffffffff000, li a1, 0xffff7ffffffff000; sd a0, 0(a1))
  TEST_S_FAULT(9, CAUSE_LOAD_PAGE_FAULT, VA_BADTERA, li a1, VA_BADTERA; ld a0, 0(a1))
  TEST_S_FAULT(10, CAUSE_LOAD_PAGE_FAULT, VA_EMPTY + 0x10, li a1, VA_EMPTY; ld a0, 0x10(a1))
  TEST_S_FAULT(11, CAUSE_STORE_PAGE_FAULT, VA_HIGH + 0x1000, li a1, VA_HIGH + 0x1000; sd a0, 0(a1))
  /* fetch through the 512 GiB leaf, which is not executable */
  TEST_NUM(12)
  S_ARM_RESUME(1f)
  la a1, sv48_func
  li a2, VA_TERA
  add a1, a1, a2
  jalr ra, 0(a1)
  j fail
1:
  la a2, sv48_func
  li a3, VA_TERA
  add a2, a2, a3
  la t0, s_rec
  ld t1, SV_TVAL(t0)
  CHECK_REG_EQ(t1, a2)
  S_DISARM
  TEST_CASE(13, a0, 0x55, jal ra, sv48_func)                        /* identity: executable */
  /* sfence.vma */
  TEST_CASE(14, a0, PAT2, SET_PTE(l0, 0, p2, RW_AD); sfence.vma; li a1, VA_P0; ld a0, 0(a1))
  TEST_CASE(15, a0, PAT0, SET_PTE(l0c, 0, p0, RW_AD); li a1, VA_HIGH; sfence.vma a1, x0; ld a0, 0(a1))

  GOTO_MMODE_FROM_S
  csrw satp, zero
  csrw medeleg, zero
skip_all:
  RVTEST_PASS

sv48_func:
  li a0, 0x55
  ret

  VM_S_HANDLER

  .data
  .balign 4096
p0: .dword PAT0, 0
  .balign 4096
p1: .dword PAT1
  .balign 4096
p2: .dword PAT2
  .balign 4096

  .bss
  .balign 4096
l3:  .skip 4096
l2:  .skip 4096
l1:  .skip 4096
l0:  .skip 4096
l2c: .skip 4096
l1c: .skip 4096
l0c: .skip 4096
l2d: .skip 4096
