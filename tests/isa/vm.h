/* vm.h - helpers for rvisor's paging tests (vm_sv39.S, vm_sv48.S).
 *
 * Page tables are built in M-mode in page-aligned .bss memory.  Code runs
 * in S-mode through an identity mapping of RAM (0x80000000.., a 1 GiB leaf
 * with A and D set), so the common trap handler, tohost and the test's own
 * data are reachable at their physical addresses.
 *
 * Page faults (12, 13, 15) and U-mode ecalls (8) are delegated to the
 * S-mode handler s_vm_handler, which records scause/sepc/stval in s_rec.
 * It only accepts a trap when armed (S_ARM); an unarmed trap is fatal.  It
 * resumes at s_rec.resume (forcing SPP = S) if set, else after the 4-byte
 * faulting instruction.  It clobbers t0 and t1.
 */
#ifndef RVISOR_ISA_VM_H
#define RVISOR_ISA_VM_H

#define PTE_V 0x01
#define PTE_R 0x02
#define PTE_W 0x04
#define PTE_X 0x08
#define PTE_U 0x10
#define PTE_G 0x20
#define PTE_A 0x40
#define PTE_D 0x80
#define PTE_RWXAD (PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D)

#define SATP_MODE_SV39 (8 << 60)
#define SATP_MODE_SV48 (9 << 60)

/* s_rec layout */
#define SV_CAUSE  0
#define SV_EPC    8
#define SV_TVAL   16
#define SV_COUNT  24
#define SV_RESUME 32
#define SV_ARMED  40

/* reg = PTE pointing at the page/table at label, with flags */
#define MAKE_PTE(reg, label, flags) \
  la reg, label; srli reg, reg, 12; slli reg, reg, 10; ori reg, reg, flags
/* table[index] = PTE(label, flags); clobbers t0, t1 */
#define SET_PTE(table, index, label, flags) \
  MAKE_PTE(t0, label, flags); la t1, table + (index) * 8; sd t0, 0(t1)
/* table[index] = raw value */
#define SET_PTE_RAW(table, index, value) \
  li t0, value; la t1, table + (index) * 8; sd t0, 0(t1)
#define LOAD_PTE(reg, table, index) \
  la reg, table + (index) * 8; ld reg, 0(reg)

/* zero a 4 KiB page; clobbers t0, t1 */
#define ZERO_PAGE(label) \
  la t0, label; li t1, 512; 7797: sd zero, 0(t0); addi t0, t0, 8; addi t1, t1, -1; bnez t1, 7797b

/* arm the S handler: the next trap is expected (resume after the insn) */
#define S_ARM \
  la t0, s_rec; sd zero, SV_COUNT(t0); sd zero, SV_CAUSE(t0); li t1, 1; sd t1, SV_ARMED(t0)
/* arm with an explicit resume label */
#define S_ARM_RESUME(label) \
  S_ARM; la t1, label; sd t1, SV_RESUME(t0)
/* after S_ARM: exactly one trap with this cause and stval */
#define S_CHECK_FAULT(cause, tval) \
  la t0, s_rec; ld t1, SV_COUNT(t0); CHECK_EQ(t1, 1); ld t1, SV_CAUSE(t0); CHECK_EQ(t1, cause); \
  ld t1, SV_TVAL(t0); CHECK_EQ(t1, tval)
#define S_DISARM \
  la t0, s_rec; sd zero, SV_ARMED(t0); sd zero, SV_RESUME(t0)

/* test case: code must take exactly one delegated trap (cause, tval) */
#define TEST_S_FAULT(num, cause, tval, ...) \
  TEST_NUM(num); S_ARM; __VA_ARGS__; S_CHECK_FAULT(cause, tval); S_DISARM

/* install the S handler and delegate page faults and U ecalls to it (M) */
.macro VM_SETUP_DELEGATION
  la t0, s_vm_handler
  csrw stvec, t0
  li t0, (1 << CAUSE_FETCH_PAGE_FAULT) | (1 << CAUSE_LOAD_PAGE_FAULT) | (1 << CAUSE_STORE_PAGE_FAULT) | (1 << CAUSE_USER_ECALL)
  csrw medeleg, t0
.endm

.macro VM_S_HANDLER
  .align 2
s_vm_handler:
  la t1, s_rec
  ld t0, SV_ARMED(t1)
  beqz t0, 1f
  sd zero, SV_ARMED(t1)
  csrr t0, scause
  sd t0, SV_CAUSE(t1)
  csrr t0, sepc
  sd t0, SV_EPC(t1)
  csrr t0, stval
  sd t0, SV_TVAL(t1)
  ld t0, SV_COUNT(t1)
  addi t0, t0, 1
  sd t0, SV_COUNT(t1)
  ld t0, SV_RESUME(t1)
  sd zero, SV_RESUME(t1)
  beqz t0, 2f
  csrw sepc, t0
  li t0, MSTATUS_SPP
  csrs sstatus, t0
  sret
2:
  csrr t0, sepc
  addi t0, t0, 4
  csrw sepc, t0
  sret
1:
  j fail

  .pushsection .data
  .align 3
s_rec:
  .dword 0, 0, 0, 0, 0, 0
  .popsection
.endm

#endif
