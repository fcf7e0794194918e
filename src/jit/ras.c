/* Return prediction: guest calls and returns become host calls and
 * returns, so the host's own return-stack buffer predicts a guest return
 * the way it predicts a C function's, and a predicted return costs three
 * host instructions instead of a jump-cache lookup.
 *
 * A guest call (jal/jalr writing ra or t0, the link registers of the
 * RISC-V calling convention) pushes the guest return pc on the host stack
 * and makes a host `call` over the landing that follows it in the calling
 * block: a chained jump to the block of the return pc (jit_ras_push). A
 * guest return (jalr x0 through ra or t0) compares its target with the
 * frame's pc and `ret`s to the landing when they match (jit_ras_return);
 * otherwise it drops the frame and takes the jump cache, as every return
 * did before. The frames are only a prediction: a return always computes
 * its target, so a wrong or missing frame costs time, never correctness.
 *
 * A landing is what the calling block itself would do next, so it holds
 * for as long as the calling block could go on running:
 * - frames live only while translated code runs: every exit to the
 *   dispatcher throws them away (so every trap, xRET, CSR write, fence.i,
 *   sfence.vma, satp write, interrupt and slice end does), and with them
 *   every change of privilege, of FS other than Clean to Dirty (after
 *   which a block translated for Clean is still right), and of the
 *   hart's own address translation;
 * - a flush of the code buffer happens only while translated code waits
 *   in lookup_miss, which then drops the frames (jit_ras_drop_if_flushed),
 *   so a landing never points into code that is gone;
 * - changed guest code needs nothing: the block a landing leads to checks
 *   its code page's generation on entry, as every block does.
 * A remote sfence.vma (another hart's) reaches a running hart when it
 * next leaves translated code, as it does for chained jumps.
 *
 * At most JIT_RAS_DEPTH frames are kept (a guest that calls without
 * returning must not grow the host stack): deeper calls push none. Below
 * them the entry trampoline puts a sentinel frame whose pc (odd) matches
 * no return, so a return never mistakes the trampoline's saved registers
 * for a frame, and is never dropped. */
#include "jit/jit_internal.h"

#include <stddef.h>

#define FRAME 16 /* the landing and the pc: the stack stays 16-byte aligned */
#define SENTINEL_PC 1

static struct x86_mem floor_field(void) { return HART_FIELD(jit_ras_floor); }

void jit_ras_enter(struct x86_buf *b) {
    x86_alu_ri(b, ALU_SUB, RSP, FRAME, true);
    x86_mov_mi(b, x86_at(RSP, 8), SENTINEL_PC, true);
    x86_lea(b, RCX, x86_at(RSP, -JIT_RAS_DEPTH * FRAME), true);
    x86_mov_mr(b, floor_field(), RCX, true);
}

void jit_ras_unwind(struct x86_buf *b, int32_t past) {
    x86_mov_rm(b, RSP, floor_field(), true);
    x86_alu_ri(b, ALU_ADD, RSP, JIT_RAS_DEPTH * FRAME + FRAME + past, true);
}

void jit_ras_drop_if_flushed(struct x86_buf *b, const uint32_t *flushed) {
    x86_mov_ri(b, R11, (uintptr_t)flushed);
    x86_alu_mi(b, ALU_CMP, x86_at(R11, 0), 0, false);
    uint8_t *kept = x86_jcc(b, CC_E, NULL);
    x86_mov_mi(b, x86_at(R11, 0), 0, false);
    jit_ras_unwind(b, -FRAME);
    if (kept) x86_patch_rel32(kept, b->p);
}

void jit_ras_push(struct x86_buf *b, uint64_t ret_pc, uint8_t *past[2]) {
    x86_alu_rm(b, ALU_CMP, RSP, floor_field(), true);
    past[0] = x86_jcc(b, CC_BE, NULL); /* full: no frame, no call */
    if ((int64_t)ret_pc == (int32_t)ret_pc) { /* user code, and the kernel's top 2 GiB */
        x86_push_imm(b, (int32_t)ret_pc);
    } else {
        x86_mov_ri(b, RCX, ret_pc);
        x86_push(b, RCX);
    }
    /* The landing's first jump is a chained one, patched while other code
     * may run: its displacement (6 bytes on) must be aligned. */
    while (((uintptr_t)b->p + 6) & 3) x86_nop(b, 1);
    past[1] = x86_call(b, NULL);
}

void jit_ras_return(struct x86_buf *b) {
    x86_alu_rm(b, ALU_CMP, RAX, x86_at(RSP, 8), true);
    uint8_t *wrong = x86_jcc(b, CC_NE, NULL);
    x86_ret_imm(b, FRAME - 8);
    /* Mispredicted: the frame is dropped (it belonged to a call this
     * return skips, as after a longjmp, or to one that left otherwise),
     * unless it is the sentinel. */
    if (wrong) x86_patch_rel32(wrong, b->p);
    x86_alu_mi(b, ALU_CMP, x86_at(RSP, 8), SENTINEL_PC, true);
    uint8_t *sentinel = x86_jcc(b, CC_E, NULL);
    x86_alu_ri(b, ALU_ADD, RSP, FRAME, true);
    if (sentinel) x86_patch_rel32(sentinel, b->p);
}
