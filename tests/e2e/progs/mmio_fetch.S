/* mmio_fetch: jumping into MMIO and into nothing, for tests/e2e/test_jit.py.
 * A bare-metal program (rvisor run --bios, --mem 256M) built with the ISA
 * tests' scaffolding (tests/isa/common.h, link.ld); it ends through HTIF
 * tohost: 1 = pass, (N << 1) | 1 = case N failed.
 *
 * A Linux process cannot map a device (the default guest has no /dev/mem),
 * so this is where code jumps to device registers: in M-mode, and in S-mode
 * through an Sv39 page that maps the devices executable. Every jump must
 * trap with an instruction access fault (mcause 1), mepc and mtval the
 * target, and nothing else may happen (no device access: the syscon
 * power-off register and the UART are among the targets). Also addresses
 * with nothing behind them, the end of RAM (an instruction that straddles
 * it, code that runs off it), and the same jump 200 times over. */
#include "common.h"
#include "vm.h"

#define RAM_END 0x90000000 /* 0x80000000 + 256 MiB */

/* Jump to addr: an instruction access fault with mepc = mtval = addr. */
#define FETCH_FAULT(num, addr) \
  TEST_NUM(num); SET_TRAP_FIELD_LABEL(TR_RESUME, 7790f); EXPECT_TRAP(CAUSE_FETCH_ACCESS); \
  li a1, addr; jalr ra, 0(a1); j fail; \
7790: CHECK_TRAP_TAKEN; LOAD_TRAP_FIELD(a2, TR_EPC); CHECK_EQ(a2, addr); \
  LOAD_TRAP_FIELD(a2, TR_TVAL); CHECK_EQ(a2, addr)

#define ALL_DEVICES(first) \
  FETCH_FAULT(first + 0, 0x10000000)  /* UART */ \
  FETCH_FAULT(first + 1, 0x10000004)  \
  FETCH_FAULT(first + 2, 0x02000000)  /* CLINT msip */ \
  FETCH_FAULT(first + 3, 0x0200bff8)  /* CLINT mtime */ \
  FETCH_FAULT(first + 4, 0x0c000000)  /* PLIC */ \
  FETCH_FAULT(first + 5, 0x10001000)  /* virtio-mmio slot 0 */ \
  FETCH_FAULT(first + 6, 0x10008ffc)  /* the last slot's last word */ \
  FETCH_FAULT(first + 7, 0x00100000)  /* syscon (power-off) */ \
  FETCH_FAULT(first + 8, 0x00101000)  /* RTC */ \
  FETCH_FAULT(first + 9, 0x00102000)  /* pvpanic */ \
  FETCH_FAULT(first + 10, 0x00000000) /* nothing */ \
  FETCH_FAULT(first + 11, 0x00001000) \
  FETCH_FAULT(first + 12, 0x40000000) \
  FETCH_FAULT(first + 13, RAM_END)

RVTEST_BEGIN
  .option norvc

  /* ---- M-mode ---- */
  ALL_DEVICES(1)
  FETCH_FAULT(15, 0x100000000)

  /* The same jump 200 times: nothing may be kept from a failed fetch. */
  TEST_NUM(16)
  li s0, 200
1:
  SET_TRAP_FIELD_LABEL(TR_RESUME, 2f)
  EXPECT_TRAP(CAUSE_FETCH_ACCESS)
  li a1, 0x10000000
  jalr ra, 0(a1)
  j fail
2:
  CHECK_TRAP_TAKEN
  LOAD_TRAP_FIELD(a2, TR_EPC)
  CHECK_EQ(a2, 0x10000000)
  addi s0, s0, -1
  bnez s0, 1b

  /* A 4-byte instruction whose upper half would be past the end of RAM:
   * mepc is the instruction, mtval the instruction or the missing half. */
  TEST_NUM(17)
  li a0, RAM_END - 2
  li a1, 0x0513                    /* low half of addi a0, a0, ... */
  sh a1, 0(a0)
  fence.i
  SET_TRAP_FIELD_LABEL(TR_RESUME, 3f)
  EXPECT_TRAP(CAUSE_FETCH_ACCESS)
  li a1, RAM_END - 2
  jalr ra, 0(a1)
  j fail
3:
  CHECK_TRAP_TAKEN
  LOAD_TRAP_FIELD(a2, TR_EPC)
  CHECK_EQ(a2, RAM_END - 2)
  LOAD_TRAP_FIELD(a2, TR_TVAL)
  li a3, RAM_END - 2
  beq a2, a3, 4f
  CHECK_EQ(a2, RAM_END)
4:

  /* Code in the last bytes of RAM runs, then falls off the end. */
  TEST_NUM(18)
  li a0, RAM_END - 8
  li a1, 0x00150513                /* addi a0, a0, 1 */
  sw a1, 0(a0)
  sw a1, 4(a0)
  fence.i
  SET_TRAP_FIELD_LABEL(TR_RESUME, 5f)
  EXPECT_TRAP(CAUSE_FETCH_ACCESS)
  li a1, RAM_END - 8
  li a0, 40
  jalr ra, 0(a1)
  j fail
5:
  CHECK_TRAP_TAKEN
  CHECK_EQ(a0, 42)
  LOAD_TRAP_FIELD(a2, TR_EPC)
  CHECK_EQ(a2, RAM_END)

  /* ---- S-mode, Sv39: 0..3 GiB (the devices, nothing, RAM) identity-
   * mapped, readable, writable and executable ---- */
  ZERO_PAGE(l2)
  SET_PTE_RAW(l2, 0, 0x000000cf)   /* VA 0 -> PA 0, 1 GiB, RWXAD */
  SET_PTE_RAW(l2, 1, 0x100000cf)   /* VA 0x40000000 -> PA 0x40000000 (nothing there) */
  SET_PTE_RAW(l2, 2, 0x200000cf)   /* VA 0x80000000 -> PA 0x80000000 */
  TEST_NUM(19)
  la a0, l2
  srli a0, a0, 12
  li a1, SATP_MODE_SV39
  or a0, a0, a1
  csrw satp, a0
  sfence.vma
  GOTO_SMODE
  ALL_DEVICES(20)
  TEST_NUM(34)
  li s0, 200
6:
  SET_TRAP_FIELD_LABEL(TR_RESUME, 7f)
  EXPECT_TRAP(CAUSE_FETCH_ACCESS)
  li a1, 0x0c000000
  jalr ra, 0(a1)
  j fail
7:
  CHECK_TRAP_TAKEN
  addi s0, s0, -1
  bnez s0, 6b
  GOTO_MMODE_FROM_S
  csrw satp, zero
  RVTEST_PASS

  .bss
  .balign 4096
l2: .skip 4096
