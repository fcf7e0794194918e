/* vm_sv39: Sv39 paging from S-mode (and U-mode).
 *   translated loads/stores/fetches through 4 KiB, 2 MiB and 1 GiB leaves
 *   (RAM itself is identity-mapped with 2 MiB leaves, one of them remapped);
 *   aliases; R/W/X/U permission faults with scause/stval/sepc delegated to
 *   S; MXR and SUM; the reserved W-without-R encoding; non-canonical
 *   addresses; a misaligned superpage; U-mode code on a U page; a fetch
 *   that straddles into an unmapped page; A/D bits either set by hardware
 *   or faulting (both accepted; on a fault the PTE is fixed and the access
 *   retried); sfence.vma (global and by address) after changing leaf and
 *   non-leaf PTEs; satp Bare <-> Sv39 switches taking effect without a
 *   fence; MPRV in M-mode. */
#include "common.h"
#include "vm.h"

#define VA_P0    0x40000000        /* p0, RW */
#define VA_RO    0x40001000        /* p1, R only */
#define VA_UNM   0x40002000        /* not mapped */
#define VA_ALIAS 0x40003000        /* p0 again */
#define VA_AD    0x40004000        /* p2, RW, A = D = 0 */
#define VA_D     0x40005000        /* p2, RW, A = 1, D = 0 */
#define VA_XO    0x40006000        /* xpage, X only */
#define VA_U     0x40007000        /* p3, RW, U */
#define VA_WO    0x40008000        /* p0, W without R: reserved */
#define VA_NX    0x40009000        /* p0, RW, not executable */
#define VA_UCODE 0x4000a000        /* ucode, RX, U */
#define VA_STR   0x4000b000        /* strpage, RX; the next page is unmapped */
#define VA_MEGA  0x40200000        /* 2 MiB leaf -> PA 0x80200000 */
#define VA_BADMEGA 0x40400000      /* 2 MiB leaf with a misaligned PPN */

#define PAT0 0x1111111111111111
#define PAT1 0x2222222222222222
#define PAT2 0x3333333333333333
#define PAT3 0x4444444444444444
#define PAT_A 0xaaaaaaaaaaaaaaaa   /* at PA 0x80a00000 */
#define PAT_C 0xcccccccccccccccc   /* at PA 0x80c00000 */
#define VA_REMAP 0x80a00000        /* -> PA 0x80c00000 */
#define VA_GIGA  0xc0000000        /* 1 GiB leaf -> PA 0x80000000 */

#define RW_AD (PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)

RVTEST_BEGIN
  .option norvc

  /* ---- build the page tables (M-mode) ---- */
  ZERO_PAGE(l2)
  ZERO_PAGE(l1)
  ZERO_PAGE(l0)
  ZERO_PAGE(l1b)
  ZERO_PAGE(l0b)
  /* 0x80000000..0xbfffffff: identity through 512 2 MiB leaves (RWXAD),
   * except 0x80a00000 which maps to PA 0x80c00000 (RWAD) */
  la a0, l1id
  li a1, 0x200000cf
  li a2, 512
  li a3, 0x80000                   /* 2 MiB in PTE.PPN units */
1:
  sd a1, 0(a0)
  add a1, a1, a3
  addi a0, a0, 8
  addi a2, a2, -1
  bnez a2, 1b
  SET_PTE_RAW(l1id, 5, 0x203000c7)
  SET_PTE(l2, 2, l1id, PTE_V)
  SET_PTE_RAW(l2, 3, 0x200000c7)                       /* 0xc0000000: 1 GiB leaf -> 0x80000000, RWAD */
  li a0, 0x80a00000
  li a1, PAT_A
  sd a1, 0(a0)
  li a0, 0x80c00000
  li a1, PAT_C
  sd a1, 0(a0)
  SET_PTE(l2, 1, l1, PTE_V)
  SET_PTE(l1, 0, l0, PTE_V)
  SET_PTE_RAW(l1, 1, 0x200800c7)                       /* 0x40200000 -> 0x80200000, RWAD */
  SET_PTE_RAW(l1, 2, 0x200804c7)                       /* PPN 0x80201: misaligned */
  SET_PTE(l0, 0, p0, RW_AD)
  SET_PTE(l0, 1, p1, PTE_V | PTE_R | PTE_A)
  SET_PTE(l0, 3, p0, RW_AD)
  SET_PTE(l0, 4, p2, PTE_V | PTE_R | PTE_W)
  SET_PTE(l0, 5, p2, PTE_V | PTE_R | PTE_W | PTE_A)
  SET_PTE(l0, 6, xpage, PTE_V | PTE_X | PTE_A)
  SET_PTE(l0, 7, p3, RW_AD | PTE_U)
  SET_PTE(l0, 8, p0, PTE_V | PTE_W | PTE_A | PTE_D)
  SET_PTE(l0, 9, p0, RW_AD)
  SET_PTE(l0, 10, ucode, PTE_V | PTE_R | PTE_X | PTE_U | PTE_A)
  SET_PTE(l0, 11, strpage, PTE_V | PTE_R | PTE_X | PTE_A)
  /* second-level alternative for the non-leaf sfence test */
  SET_PTE(l1b, 0, l0b, PTE_V)
  SET_PTE(l0b, 0, p3, RW_AD)
  VM_SETUP_DELEGATION

  TEST_NUM(1)
  la a0, l2
  srli a0, a0, 12
  li a1, SATP_MODE_SV39
  or a0, a0, a1
  csrw satp, a0
  csrr a1, satp
  CHECK_REG_EQ(a0, a1)
  sfence.vma
  GOTO_SMODE

  /* ---- basic translation ---- */
  TEST_CASE(2, a0, PAT0, li a1, VA_P0; ld a0, 0(a1))
  TEST_CASE(3, a0, 0xabcd, li a1, VA_P0; li a2, 0xabcd; sd a2, 8(a1); la a3, p0; ld a0, 8(a3))
  TEST_CASE(4, a0, 0xabcd, li a1, VA_ALIAS; ld a0, 8(a1))
  TEST_CASE(5, a0, PAT1, li a1, VA_RO; ld a0, 0(a1))
  TEST_CASE(6, a0, 0xcd, li a1, VA_ALIAS; lbu a0, 8(a1))

  /* ---- permission and validity faults ---- */
  TEST_S_FAULT(7,  CAUSE_STORE_PAGE_FAULT, VA_RO + 8, li a1, VA_RO; li a2, 5; sd a2, 8(a1))
  TEST_CASE(8, a0, 0, la a3, p1; ld a0, 8(a3))                        /* not written */
  TEST_S_FAULT(9,  CAUSE_LOAD_PAGE_FAULT, VA_UNM + 16, li a1, VA_UNM; ld a0, 16(a1))
  TEST_S_FAULT(10, CAUSE_STORE_PAGE_FAULT, VA_UNM, li a1, VA_UNM; sd a0, 0(a1))
  TEST_S_FAULT(11, CAUSE_STORE_PAGE_FAULT, VA_RO, li a1, VA_RO; li a2, 1; amoadd.d a0, a2, (a1))
  TEST_S_FAULT(12, CAUSE_LOAD_PAGE_FAULT, VA_UNM, li a1, VA_UNM; lr.d a0, (a1))
  /* fetch from a non-executable page */
  TEST_NUM(13)
  S_ARM_RESUME(1f)
  li a1, VA_NX
  jalr ra, 0(a1)
  j fail
1:
  S_CHECK_FAULT(CAUSE_FETCH_PAGE_FAULT, VA_NX)
  TEST_CASE(14, a0, VA_NX, la a0, s_rec; ld a0, SV_EPC(a0))
  S_DISARM
  /* execute-only page: runs, but cannot be read unless MXR */
  TEST_CASE(15, a0, 0x77, li a1, VA_XO; jalr ra, 0(a1))
  TEST_S_FAULT(16, CAUSE_LOAD_PAGE_FAULT, VA_XO, li a1, VA_XO; ld a0, 0(a1))
  TEST_CASE(17, a0, 0x07700513, li a2, MSTATUS_MXR; csrs sstatus, a2; li a1, VA_XO; lwu a0, 0(a1); csrc sstatus, a2)
  /* U page from S: only with SUM, and never executable */
  TEST_S_FAULT(18, CAUSE_LOAD_PAGE_FAULT, VA_U, li a1, VA_U; ld a0, 0(a1))
  TEST_S_FAULT(19, CAUSE_STORE_PAGE_FAULT, VA_U, li a1, VA_U; sd a0, 0(a1))
  TEST_CASE(20, a0, PAT3, li a2, MSTATUS_SUM; csrs sstatus, a2; li a1, VA_U; ld a0, 0(a1))
  TEST_NUM(21)
  S_ARM_RESUME(1f)
  li a1, VA_UCODE
  jalr ra, 0(a1)
  j fail
1:
  S_CHECK_FAULT(CAUSE_FETCH_PAGE_FAULT, VA_UCODE)
  S_DISARM
  li a2, MSTATUS_SUM
  csrc sstatus, a2
  /* W without R is reserved */
  TEST_S_FAULT(22, CAUSE_LOAD_PAGE_FAULT, VA_WO, li a1, VA_WO; ld a0, 0(a1))
  TEST_S_FAULT(23, CAUSE_STORE_PAGE_FAULT, VA_WO, li a1, VA_WO; sd a0, 0(a1))
  /* bits 63:39 must equal bit 38 */
  TEST_S_FAULT(24, CAUSE_LOAD_PAGE_FAULT, 0x0000008000000000, li a1, 0x0000008000000000; ld a0, 0(a1))
  TEST_S_FAULT(25, CAUSE_STORE_PAGE_FAULT, 0x4000000040000000, li a1, 0x4000000040000000; sd a0, 0(a1))
  TEST_S_FAULT(26, CAUSE_LOAD_PAGE_FAULT, 0xffffffffc0000000, li a1, 0xffffffffc0000000; ld a0, 0(a1))

  /* ---- superpages ---- */
  TEST_CASE(27, a0, 0x5555, li a3, 0x80201238; li a2, 0x5555; sd a2, 0(a3); li a1, VA_MEGA + 0x1238; ld a0, 0(a1))
  TEST_CASE(28, a0, 0x6666, li a1, VA_MEGA + 0x1ff000; li a2, 0x6666; sd a2, 0(a1); li a3, 0x803ff000; ld a0, 0(a3))
  TEST_S_FAULT(29, CAUSE_LOAD_PAGE_FAULT, VA_BADMEGA, li a1, VA_BADMEGA; ld a0, 0(a1))
  TEST_CASE(56, a0, PAT3, la a1, p3; li a2, VA_GIGA - 0x80000000; add a1, a1, a2; ld a0, 0(a1))
  TEST_CASE(57, a0, PAT_C, li a1, VA_REMAP; ld a0, 0(a1))

  /* ---- U-mode code on a U page ---- */
  TEST_NUM(30)
  S_ARM_RESUME(1f)
  li a1, VA_U
  li a0, 0
  li a2, MSTATUS_SPP
  csrc sstatus, a2
  li a2, VA_UCODE
  csrw sepc, a2
  sret                             /* U: ld a0, 0(a1); ecall */
  j fail
1:
  mv s3, a0                        /* what U loaded */
  S_CHECK_FAULT(CAUSE_USER_ECALL, 0)
  TEST_CASE(31, a0, VA_UCODE + 4, la a0, s_rec; ld a0, SV_EPC(a0))
  S_DISARM
  TEST_CASE(32, s3, PAT3, nop)
  /* U-mode cannot touch an S page */
  TEST_NUM(33)
  S_ARM_RESUME(1f)
  li a1, VA_P0
  li a2, MSTATUS_SPP
  csrc sstatus, a2
  li a2, VA_UCODE
  csrw sepc, a2
  sret
  j fail
1:
  S_CHECK_FAULT(CAUSE_LOAD_PAGE_FAULT, VA_P0)
  TEST_CASE(34, a0, VA_UCODE, la a0, s_rec; ld a0, SV_EPC(a0))
  S_DISARM

  /* ---- a 32-bit instruction whose second half is on an unmapped page:
   * sepc = its start, stval = the start of the unmapped page ---- */
  TEST_NUM(35)
  S_ARM_RESUME(1f)
  li a1, VA_STR + 0xffe
  jalr ra, 0(a1)
  j fail
1:
  S_CHECK_FAULT(CAUSE_FETCH_PAGE_FAULT, VA_STR + 0x1000)
  TEST_CASE(36, a0, VA_STR + 0xffe, la a0, s_rec; ld a0, SV_EPC(a0))
  S_DISARM

  /* ---- A and D bits: hardware update, or a fault the OS fixes up ---- */
  TEST_NUM(37)                     /* read with A = 0 */
  S_ARM
  li a1, VA_AD
  li a0, 0
  ld a0, 0(a1)
  la t0, s_rec
  ld t1, SV_COUNT(t0)
  beqz t1, 2f
  S_CHECK_FAULT(CAUSE_LOAD_PAGE_FAULT, VA_AD)
  LOAD_PTE(a2, l0, 4)
  ori a2, a2, PTE_A
  la a3, l0
  sd a2, 32(a3)
  sfence.vma
  S_DISARM
  ld a0, 0(a1)                     /* retry: must work now */
  j 3f
2:
  S_DISARM
  LOAD_PTE(a2, l0, 4)              /* hardware must have set A */
  andi a2, a2, PTE_A
  CHECK_EQ(a2, PTE_A)
3:
  CHECK_EQ(a0, PAT2)
  TEST_NUM(38)                     /* write with D = 0 (A now 1) */
  S_ARM
  li a1, VA_AD
  li a2, 0x7777
  sd a2, 8(a1)
  la t0, s_rec
  ld t1, SV_COUNT(t0)
  beqz t1, 2f
  S_CHECK_FAULT(CAUSE_STORE_PAGE_FAULT, VA_AD + 8)
  la a0, p2                        /* the store must not have happened */
  ld a0, 8(a0)
  CHECK_EQ(a0, 0)
  LOAD_PTE(a2, l0, 4)
  ori a2, a2, PTE_A | PTE_D
  la a3, l0
  sd a2, 32(a3)
  sfence.vma
  S_DISARM
  li a2, 0x7777
  sd a2, 8(a1)
  j 3f
2:
  S_DISARM
  LOAD_PTE(a2, l0, 4)
  andi a2, a2, PTE_A | PTE_D
  CHECK_EQ(a2, PTE_A | PTE_D)
3:
  TEST_CASE(39, a0, 0x7777, la a0, p2; ld a0, 8(a0))
  TEST_NUM(40)                     /* AMO to a page with A = 1, D = 0 */
  S_ARM
  li a1, VA_D
  li a2, 1
  amoadd.d a0, a2, (a1)
  la t0, s_rec
  ld t1, SV_COUNT(t0)
  beqz t1, 2f
  S_CHECK_FAULT(CAUSE_STORE_PAGE_FAULT, VA_D)
  LOAD_PTE(a2, l0, 5)
  ori a2, a2, PTE_D
  la a3, l0
  sd a2, 40(a3)
  sfence.vma
  S_DISARM
  li a2, 1
  amoadd.d a0, a2, (a1)
  j 3f
2:
  S_DISARM
  LOAD_PTE(a2, l0, 5)
  andi a2, a2, PTE_D
  CHECK_EQ(a2, PTE_D)
3:
  CHECK_EQ(a0, PAT2)
  TEST_CASE(41, a0, PAT2 + 1, la a0, p2; ld a0, 0(a0))

  /* ---- sfence.vma makes PTE changes visible ---- */
  TEST_CASE(42, a0, PAT0, li a1, VA_P0; ld a0, 0(a1))                /* now cached */
  TEST_CASE(43, a0, PAT1, SET_PTE(l0, 0, p1, RW_AD); sfence.vma; li a1, VA_P0; ld a0, 0(a1))
  TEST_CASE(44, a0, PAT0, SET_PTE(l0, 0, p0, RW_AD); li a1, VA_P0; sfence.vma a1, x0; ld a0, 0(a1))
  TEST_CASE(45, a0, PAT1, SET_PTE(l0, 2, p1, RW_AD); sfence.vma; li a1, VA_UNM; ld a0, 0(a1))  /* newly valid */
  TEST_NUM(46)
  SET_PTE_RAW(l0, 0, 0)            /* now invalid */
  sfence.vma
  S_ARM
  li a1, VA_P0
  ld a0, 0(a1)
  S_CHECK_FAULT(CAUSE_LOAD_PAGE_FAULT, VA_P0)
  S_DISARM
  TEST_NUM(47)                     /* R -> RW */
  li a1, VA_RO
  ld a0, 0(a1)
  SET_PTE(l0, 1, p1, RW_AD)
  li a1, VA_RO
  sfence.vma a1
  li a2, 0x99
  sd a2, 16(a1)
  la a3, p1
  ld a0, 16(a3)
  CHECK_EQ(a0, 0x99)
  /* a non-leaf change: point the 0x40000000 GiB at another level-1 table */
  TEST_CASE(48, a0, PAT1, li a1, VA_UNM; ld a0, 0(a1))               /* cached via l1 */
  TEST_CASE(49, a0, PAT3, SET_PTE(l2, 1, l1b, PTE_V); sfence.vma; li a1, VA_P0; ld a0, 0(a1))
  TEST_S_FAULT(50, CAUSE_LOAD_PAGE_FAULT, VA_UNM, li a1, VA_UNM; ld a0, 0(a1))   /* l0b has no entry 2 */
  TEST_CASE(51, a0, PAT1, SET_PTE(l2, 1, l1, PTE_V); SET_PTE(l0, 0, p1, RW_AD); sfence.vma; li a1, VA_P0; ld a0, 0(a1))

  /* ---- satp: a change between Bare and Sv39 takes effect at once, with
   * no sfence.vma (translations cached for 0x80a00000 must not be used) ---- */
  TEST_CASE(52, a0, PAT_C, li a1, VA_REMAP; ld a0, 0(a1))
  TEST_CASE(53, a0, PAT_A, csrr s2, satp; csrw satp, zero; ld a0, 0(a1))
  TEST_CASE(58, a0, PAT_C, csrw satp, s2; ld a0, 0(a1))
  TEST_CASE(59, a0, PAT1, li a1, VA_P0; ld a0, 0(a1))

  GOTO_MMODE_FROM_S

  /* ---- M-mode: no translation, unless MPRV with MPP = S ---- */
  TEST_NUM(54)
  li a1, MSTATUS_MPRV | MSTATUS_MPP_S
  csrs mstatus, a1
  li a1, VA_P0
  ld a0, 0(a1)
  li a1, MSTATUS_MPRV | MSTATUS_MPP
  csrc mstatus, a1
  CHECK_EQ(a0, PAT1)
  TEST_CASE(55, a0, PAT0, la a1, p0; ld a0, 0(a1))
  csrw satp, zero
  csrw medeleg, zero

  RVTEST_PASS

  VM_S_HANDLER

  /* ---- code pages (fixed layout) ---- */
  .pushsection .text.vmcode, "ax", @progbits
  .balign 4096
xpage:
  li a0, 0x77                      /* 0x07700513 */
  ret
  .balign 4096
ucode:
  ld a0, 0(a1)
  ecall
1:
  j 1b
  .balign 4096
strpage:
  .skip 4094
  addi a0, a0, 1                   /* crosses into the next page */
  ret
  .balign 4096
  .popsection

  /* ---- data pages ---- */
  .data
  .balign 4096
p0: .dword PAT0
  .balign 4096
p1: .dword PAT1
  .balign 4096
p2: .dword PAT2
  .balign 4096
p3: .dword PAT3
  .balign 4096

  .bss
  .balign 4096
l2:  .skip 4096
l1id: .skip 4096
l1:  .skip 4096
l0:  .skip 4096
l1b: .skip 4096
l0b: .skip 4096
