/*
 * common.h - shared scaffolding for rvisor's bare-metal ISA test programs.
 *
 * Written for rvisor from the RISC-V unprivileged/privileged specifications.
 *
 * Execution model
 *   - The program is its own M-mode firmware; it starts at _start (0x80000000)
 *     in M-mode.  RVTEST_BEGIN sets up mtvec, a trap stack in mscratch, PMP
 *     (all memory RWX for S/U, if PMP exists), FP enable and counters, and
 *     then continues with the test body that follows it (in .text).
 *   - Result reporting uses HTIF: tohost = 1 means pass, (N<<1)|1 means
 *     "test case N failed".  N is kept in gp (TESTNUM), 1..254; 255 is
 *     reported when something failed before the first test case.
 *
 * Register conventions for test code
 *   gp (x3)        current test number; only the macros write it
 *   t5, t6         scratch of the macros: test code inside a TEST_* macro
 *                  must not keep values in them
 *   sp             a small stack (_stack_top) is available
 *   mscratch       holds the M-mode trap stack pointer; a test that writes
 *                  mscratch must restore it before the next trap
 *
 * Trap handling (M-mode, trap_vector)
 *   Every trap is recorded in trap_record (count, mcause, mepc, mtval,
 *   mstatus at entry).  A trap is fatal (-> fail with the current test
 *   number) unless trap_expect holds its mcause (or -2 = any synchronous
 *   exception).  An expected trap is consumed (trap_expect := -1), then:
 *     synchronous:  resume at trap_resume if non-zero (one shot), otherwise
 *                   at the instruction after the faulting one (2 or 4 bytes,
 *                   read from mepc, so code must be identity mapped);
 *     interrupt:    the interrupt's bit in mie is cleared and execution
 *                   resumes at mepc (the interrupted instruction);
 *   and if trap_mpp is >= 0 it becomes mstatus.MPP (one shot, MPIE is
 *   cleared too) before mret, which is how GOTO_MMODE_FROM_* climb back to
 *   M-mode with mstatus.MIE = 0.
 *   Delegated traps to S-mode go to stvec, which by default points at
 *   s_trap_default (fatal); tests install their own S-mode handlers.
 */
#ifndef RVISOR_ISA_COMMON_H
#define RVISOR_ISA_COMMON_H

#define TESTNUM gp

/* ---- CSR bits -------------------------------------------------------- */
#define MSTATUS_SIE     0x00000002
#define MSTATUS_MIE     0x00000008
#define MSTATUS_SPIE    0x00000020
#define MSTATUS_MPIE    0x00000080
#define MSTATUS_SPP     0x00000100
#define MSTATUS_MPP     0x00001800
#define MSTATUS_MPP_S   0x00000800
#define MSTATUS_MPP_M   0x00001800
#define MSTATUS_FS      0x00006000
#define MSTATUS_FS_INIT 0x00002000
#define MSTATUS_MPRV    0x00020000
#define MSTATUS_SUM     0x00040000
#define MSTATUS_MXR     0x00080000
#define MSTATUS_TVM     0x00100000
#define MSTATUS_TW      0x00200000
#define MSTATUS_TSR     0x00400000

#define MIP_SSIP  (1 << 1)
#define MIP_MSIP  (1 << 3)
#define MIP_STIP  (1 << 5)
#define MIP_MTIP  (1 << 7)
#define MIP_SEIP  (1 << 9)
#define MIP_MEIP  (1 << 11)

#define CAUSE_MISALIGNED_FETCH   0
#define CAUSE_FETCH_ACCESS       1
#define CAUSE_ILLEGAL_INSN       2
#define CAUSE_BREAKPOINT         3
#define CAUSE_MISALIGNED_LOAD    4
#define CAUSE_LOAD_ACCESS        5
#define CAUSE_MISALIGNED_STORE   6
#define CAUSE_STORE_ACCESS       7
#define CAUSE_USER_ECALL         8
#define CAUSE_SUPERVISOR_ECALL   9
#define CAUSE_MACHINE_ECALL      11
#define CAUSE_FETCH_PAGE_FAULT   12
#define CAUSE_LOAD_PAGE_FAULT    13
#define CAUSE_STORE_PAGE_FAULT   15

#define INTR_BIT                 0x8000000000000000
#define IRQ_S_SOFT               1
#define IRQ_M_SOFT               3
#define IRQ_S_TIMER              5
#define IRQ_M_TIMER              7
#define CAUSE_MTI                (INTR_BIT | IRQ_M_TIMER)
#define CAUSE_STI                (INTR_BIT | IRQ_S_TIMER)
#define CAUSE_MSI                (INTR_BIT | IRQ_M_SOFT)
#define CAUSE_SSI                (INTR_BIT | IRQ_S_SOFT)

#define TRAP_ANY_SYNC   (-2)

/* CLINT (same addresses on QEMU virt/spike and rvisor) */
#define CLINT_BASE      0x2000000
#define CLINT_MSIP      0x2000000
#define CLINT_MTIMECMP  0x2004000
#define CLINT_MTIME     0x200bff8

/* trap_record layout (byte offsets) */
#define TR_EXPECT   0
#define TR_RESUME   8
#define TR_MPP      16
#define TR_COUNT    24
#define TR_CAUSE    32
#define TR_EPC      40
#define TR_TVAL     48
#define TR_STATUS   56
#define TR_SIZE     64

/* ---- test-number bookkeeping ---------------------------------------- */
#define TEST_NUM(num) \
  .if ((num) < 1) || ((num) > 254); .error "test number out of range 1..254"; .endif; \
  li TESTNUM, num

/* branch to fail unless reg == val (t6 is clobbered) */
#define CHECK_EQ(reg, val) \
  li t6, val; beq reg, t6, 7771f; j fail; 7771:

/* branch to fail unless reg >= val (unsigned) */
#define CHECK_GEU(reg, val) \
  li t6, val; bgeu reg, t6, 7773f; j fail; 7773:

/* branch to fail unless reg1 == reg2 */
#define CHECK_REG_EQ(reg1, reg2) \
  beq reg1, reg2, 7772f; j fail; 7772:

/* ---- generic test case ----------------------------------------------- */
/* Run code, then check that register reg holds val. */
#define TEST_CASE(num, reg, val, ...) \
  TEST_NUM(num); __VA_ARGS__; CHECK_EQ(reg, val)

/* ---- integer ALU helpers --------------------------------------------- */
#define TEST_RR(num, inst, res, v1, v2) \
  TEST_CASE(num, a0, res, li a1, v1; li a2, v2; inst a0, a1, a2)
#define TEST_RR_SRC1_EQ_DEST(num, inst, res, v1, v2) \
  TEST_CASE(num, a1, res, li a1, v1; li a2, v2; inst a1, a1, a2)
#define TEST_RR_SRC2_EQ_DEST(num, inst, res, v1, v2) \
  TEST_CASE(num, a2, res, li a1, v1; li a2, v2; inst a2, a1, a2)
#define TEST_RR_SRC12_EQ_DEST(num, inst, res, v1) \
  TEST_CASE(num, a1, res, li a1, v1; inst a1, a1, a1)
#define TEST_RR_ZERODEST(num, inst, v1, v2) \
  TEST_CASE(num, x0, 0, li a1, v1; li a2, v2; inst x0, a1, a2)
#define TEST_RR_ZEROSRC1(num, inst, res, v2) \
  TEST_CASE(num, a0, res, li a2, v2; inst a0, x0, a2)
#define TEST_RR_ZEROSRC2(num, inst, res, v1) \
  TEST_CASE(num, a0, res, li a1, v1; inst a0, a1, x0)

#define TEST_IMM(num, inst, res, v1, imm) \
  TEST_CASE(num, a0, res, li a1, v1; inst a0, a1, imm)
#define TEST_IMM_SRC1_EQ_DEST(num, inst, res, v1, imm) \
  TEST_CASE(num, a1, res, li a1, v1; inst a1, a1, imm)
#define TEST_IMM_ZEROSRC1(num, inst, res, imm) \
  TEST_CASE(num, a0, res, inst a0, x0, imm)

/* ---- branches -------------------------------------------------------- */
/* forward taken */
#define TEST_BR_TAKEN(num, inst, v1, v2) \
  TEST_NUM(num); li a1, v1; li a2, v2; inst a1, a2, 7773f; j fail; 7773:
/* backward taken */
#define TEST_BR_TAKEN_BACK(num, inst, v1, v2) \
  TEST_NUM(num); li a1, v1; li a2, v2; j 7775f; 7774: j 7776f; \
  7775: inst a1, a2, 7774b; j fail; 7776:
#define TEST_BR_NOT_TAKEN(num, inst, v1, v2) \
  TEST_NUM(num); li a1, v1; li a2, v2; inst a1, a2, 7777f; j 7778f; \
  7777: j fail; 7778:

/* ---- loads and stores -------------------------------------------------- */
#define TEST_LD(num, inst, res, off, base) \
  TEST_CASE(num, a0, res, la a1, base; inst a0, off(a1))
#define TEST_ST(num, ldinst, stinst, res, val, off, base) \
  TEST_CASE(num, a0, res, la a1, base; li a2, val; stinst a2, off(a1); ldinst a0, off(a1))

/* ---- traps ------------------------------------------------------------- */
#define SET_TRAP_FIELD(field, val) \
  li t6, val; la t5, trap_record; sd t6, field(t5)
#define SET_TRAP_FIELD_LABEL(field, label) \
  la t6, label; la t5, trap_record; sd t6, field(t5)
#define LOAD_TRAP_FIELD(reg, field) \
  la reg, trap_record; ld reg, field(reg)
#define EXPECT_TRAP(cause) SET_TRAP_FIELD(TR_EXPECT, cause)

/* fail unless the expected trap was taken (trap_expect consumed) */
#define CHECK_TRAP_TAKEN \
  la t5, trap_record; ld t6, TR_EXPECT(t5); addi t6, t6, 1; beqz t6, 7779f; j fail; 7779:

/* run code that must trap with mcause = cause; resume after the faulting
 * instruction (or at trap_resume if the test set it) */
#define TEST_TRAP(num, cause, ...) \
  TEST_NUM(num); EXPECT_TRAP(cause); __VA_ARGS__; CHECK_TRAP_TAKEN

/* ---- privilege changes (from M-mode) -------------------------------- */
#define GOTO_SMODE \
  li t5, MSTATUS_MPP; csrc mstatus, t5; li t5, MSTATUS_MPP_S; csrs mstatus, t5; \
  la t5, 7780f; csrw mepc, t5; mret; 7780:
#define GOTO_UMODE \
  li t5, MSTATUS_MPP; csrc mstatus, t5; \
  la t5, 7781f; csrw mepc, t5; mret; 7781:
/* back to M-mode with an ecall that the M-mode handler turns into a return
 * to M-mode (the ecall must not be delegated) */
#define GOTO_MMODE_FROM(cause) \
  SET_TRAP_FIELD(TR_MPP, 3); EXPECT_TRAP(cause); ecall; CHECK_TRAP_TAKEN
#define GOTO_MMODE_FROM_S GOTO_MMODE_FROM(CAUSE_SUPERVISOR_ECALL)
#define GOTO_MMODE_FROM_U GOTO_MMODE_FROM(CAUSE_USER_ECALL)

/* ---- floating point helpers --------------------------------------------- */
/* load a 64-bit / 32-bit bit pattern into an FP register (t6 clobbered) */
#define FLI_D(freg, bits) li t6, bits; fmv.d.x freg, t6
#define FLI_S(freg, bits) li t6, bits; fmv.w.x freg, t6

/* ---- program structure ----------------------------------------------- */
#define RVTEST_PASS  j pass
#define RVTEST_FAIL  j fail

.macro RVTEST_BEGIN
  .option nopic                 /* 'la' is PC-relative (lla), never GOT */
  .section .text.init, "ax", @progbits
  .option push
  .option norvc
  .globl _start
_start:
  /* rvisor starts with all registers zero; QEMU passes a0/a1: clear all */
  li x1, 0;  li x2, 0;  li x3, 0;  li x4, 0;  li x5, 0;  li x6, 0;  li x7, 0
  li x8, 0;  li x9, 0;  li x10, 0; li x11, 0; li x12, 0; li x13, 0; li x14, 0
  li x15, 0; li x16, 0; li x17, 0; li x18, 0; li x19, 0; li x20, 0; li x21, 0
  li x22, 0; li x23, 0; li x24, 0; li x25, 0; li x26, 0; li x27, 0; li x28, 0
  li x29, 0; li x30, 0; li x31, 0
  /* PMP: give S/U access to everything.  PMP CSRs may be absent (WARL
   * zero) - tolerate even a trap here by pointing mtvec past them. */
  la t0, 1f
  csrw mtvec, t0
  li t0, -1
  csrw pmpaddr0, t0
  li t0, 0x1f                 /* R|W|X, A=NAPOT */
  csrw pmpcfg0, t0
  .align 2
1:
  /* counters visible to S and U (tolerate absence) */
  la t0, 2f
  csrw mtvec, t0
  li t0, -1
  csrw mcounteren, t0
  csrw scounteren, t0
  .align 2
2:
  la t0, trap_vector
  csrw mtvec, t0
  la t0, s_trap_default
  csrw stvec, t0
  la t0, _trap_stack_top
  csrw mscratch, t0
  csrw satp, zero
  csrw medeleg, zero
  csrw mideleg, zero
  csrw mie, zero
  li t0, MSTATUS_MPP | MSTATUS_MIE | MSTATUS_SIE | MSTATUS_MPRV
  csrc mstatus, t0
  li t0, MSTATUS_FS_INIT
  csrs mstatus, t0
  csrwi fcsr, 0
  la sp, _stack_top
  li TESTNUM, 0
  j _test_body

  /* ---- M-mode trap handler ---- */
  .align 2
  .globl trap_vector
trap_vector:
  csrrw sp, mscratch, sp
  sd t0, 0(sp)
  sd t1, 8(sp)
  sd t2, 16(sp)
  la t1, trap_record
  csrr t0, mcause
  sd t0, TR_CAUSE(t1)
  csrr t2, mepc
  sd t2, TR_EPC(t1)
  csrr t2, mtval
  sd t2, TR_TVAL(t1)
  csrr t2, mstatus
  sd t2, TR_STATUS(t1)
  ld t2, TR_COUNT(t1)
  addi t2, t2, 1
  sd t2, TR_COUNT(t1)
  ld t2, TR_EXPECT(t1)
  beq t2, t0, .Ltv_expected
  bltz t0, .Ltv_unexpected        /* interrupts must match exactly */
  li t1, TRAP_ANY_SYNC
  bne t2, t1, .Ltv_unexpected
.Ltv_expected:
  la t1, trap_record
  li t2, -1
  sd t2, TR_EXPECT(t1)
  bgez t0, .Ltv_sync
  li t2, 1                       /* interrupt: mask its source in mie */
  sll t2, t2, t0
  csrc mie, t2
  j .Ltv_mpp
.Ltv_sync:
  ld t2, TR_RESUME(t1)
  sd zero, TR_RESUME(t1)
  bnez t2, .Ltv_set_epc
  csrr t2, mepc                  /* skip the faulting instruction */
  lhu t0, 0(t2)
  andi t0, t0, 3
  addi t2, t2, 2
  li t1, 3
  bne t0, t1, .Ltv_set_epc
  addi t2, t2, 2
.Ltv_set_epc:
  csrw mepc, t2
.Ltv_mpp:
  la t1, trap_record
  ld t2, TR_MPP(t1)
  bltz t2, .Ltv_ret
  li t0, -1
  sd t0, TR_MPP(t1)
  li t0, MSTATUS_MPP | MSTATUS_MPIE  /* and come back with MIE = 0 */
  csrc mstatus, t0
  slli t2, t2, 11
  csrs mstatus, t2
.Ltv_ret:
  ld t0, 0(sp)
  ld t1, 8(sp)
  ld t2, 16(sp)
  csrrw sp, mscratch, sp
  mret
.Ltv_unexpected:
  csrrw sp, mscratch, sp
  j fail

  /* ---- default S-mode trap handler: any delegated trap is fatal ---- */
  .align 2
  .globl s_trap_default
s_trap_default:
  j fail

  /* ---- result reporting ---- */
  .align 2
  .globl fail
fail:
  fence
  mv t0, TESTNUM
  bnez t0, 3f
  li t0, 255
3:
  slli t0, t0, 1
  ori t0, t0, 1
  la t1, tohost
  sd t0, 0(t1)
4:
  j 4b

  .align 2
  .globl pass
pass:
  fence
  li t0, 1
  la t1, tohost
  sd t0, 0(t1)
5:
  j 5b
  .option pop

  /* ---- HTIF mailbox ---- */
  .pushsection .tohost, "aw", @progbits
  .align 6
  .globl tohost
  .type tohost, @object
  .size tohost, 8
tohost: .dword 0
  .globl fromhost
  .type fromhost, @object
  .size fromhost, 8
fromhost: .dword 0
  .popsection

  /* ---- trap record and stacks ---- */
  .pushsection .data
  .align 6
  .globl trap_record
trap_record:
  .dword -1      /* TR_EXPECT */
  .dword 0       /* TR_RESUME */
  .dword -1      /* TR_MPP    */
  .dword 0       /* TR_COUNT  */
  .dword 0       /* TR_CAUSE  */
  .dword 0       /* TR_EPC    */
  .dword 0       /* TR_TVAL   */
  .dword 0       /* TR_STATUS */
  .popsection

  .pushsection .bss
  .align 12
  .globl _stack_bottom
_stack_bottom:
  .skip 4096
  .globl _stack_top
_stack_top:
  .skip 1024
  .globl _trap_stack_top
_trap_stack_top:
  .skip 64
  .popsection

  .text
  .align 2
  .globl _test_body
_test_body:
.endm

#endif
