/* A small x86-64 encoder: just the instruction forms the translator emits,
 * written into a byte buffer. Memory operands are [base + index*scale +
 * disp32]; operand size is 64 bits when `w` is set, else 32 (whose result
 * the CPU zero-extends, as RISC-V's W instructions need before their sign
 * extension). The unit test decodes every form back with capstone. */
#ifndef RVISOR_X86_EMIT_H
#define RVISOR_X86_EMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum x86_reg {
    RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15,
    X86_NOREG = -1,
};

/* Group-1 arithmetic, in their encoding order (the /digit of 0x81). */
enum x86_alu { ALU_ADD = 0, ALU_OR = 1, ALU_AND = 4, ALU_SUB = 5, ALU_XOR = 6, ALU_CMP = 7 };
/* Shifts (the /digit of 0xC1 and 0xD3). */
enum x86_shift { SHIFT_SHL = 4, SHIFT_SHR = 5, SHIFT_SAR = 7 };
/* Condition codes (the low nibble of Jcc / SETcc / CMOVcc). */
enum x86_cond {
    CC_O = 0, CC_NO = 1, CC_B = 2, CC_AE = 3, CC_E = 4, CC_NE = 5, CC_BE = 6, CC_A = 7,
    CC_S = 8, CC_NS = 9, CC_L = 12, CC_GE = 13, CC_LE = 14, CC_G = 15,
};
/* The one-operand group-3 forms (/digit of 0xF7). */
enum x86_unary { UN_NOT = 2, UN_NEG = 3, UN_MUL = 4, UN_IMUL = 5, UN_DIV = 6, UN_IDIV = 7 };

struct x86_mem {
    int8_t base;   /* enum x86_reg */
    int8_t index;  /* X86_NOREG for none */
    uint8_t scale; /* 1, 2, 4 or 8 */
    int32_t disp;
};

static inline struct x86_mem x86_at(enum x86_reg base, int32_t disp) {
    return (struct x86_mem){.base = (int8_t)base, .index = X86_NOREG, .scale = 1, .disp = disp};
}
static inline struct x86_mem x86_at_index(enum x86_reg base, enum x86_reg index, unsigned scale, int32_t disp) {
    return (struct x86_mem){.base = (int8_t)base, .index = (int8_t)index, .scale = (uint8_t)scale, .disp = disp};
}

/* The output buffer. Writing past the end sets `full` and writes nothing,
 * so an emitter need not check every instruction: the caller checks once. */
struct x86_buf {
    uint8_t *start, *p, *end;
    bool full;
};

void x86_buf_init(struct x86_buf *b, uint8_t *mem, size_t size);
static inline size_t x86_buf_used(const struct x86_buf *b) { return (size_t)(b->p - b->start); }

/* reg <- reg, reg <- [mem], [mem] <- reg */
void x86_mov_rr(struct x86_buf *b, enum x86_reg dst, enum x86_reg src, bool w);
void x86_mov_rm(struct x86_buf *b, enum x86_reg dst, struct x86_mem m, bool w);
void x86_mov_mr(struct x86_buf *b, struct x86_mem m, enum x86_reg src, bool w);
/* The shortest move of a 64-bit constant into reg. */
void x86_mov_ri(struct x86_buf *b, enum x86_reg dst, uint64_t imm);
/* [mem] <- sign-extended imm32 */
void x86_mov_mi(struct x86_buf *b, struct x86_mem m, int32_t imm, bool w);
/* Sized loads into a 64-bit register, zero- or sign-extended (size 1, 2, 4, 8). */
void x86_load(struct x86_buf *b, enum x86_reg dst, struct x86_mem m, unsigned size, bool sign);
/* Sized store of the low `size` bytes of src. */
void x86_store(struct x86_buf *b, struct x86_mem m, enum x86_reg src, unsigned size);
void x86_lea(struct x86_buf *b, enum x86_reg dst, struct x86_mem m, bool w);
void x86_movsxd(struct x86_buf *b, enum x86_reg dst, enum x86_reg src);

void x86_alu_rr(struct x86_buf *b, enum x86_alu op, enum x86_reg dst, enum x86_reg src, bool w);
void x86_alu_rm(struct x86_buf *b, enum x86_alu op, enum x86_reg dst, struct x86_mem m, bool w);
void x86_alu_mr(struct x86_buf *b, enum x86_alu op, struct x86_mem m, enum x86_reg src, bool w);
void x86_alu_ri(struct x86_buf *b, enum x86_alu op, enum x86_reg dst, int32_t imm, bool w);
void x86_alu_mi(struct x86_buf *b, enum x86_alu op, struct x86_mem m, int32_t imm, bool w);
void x86_test_rr(struct x86_buf *b, enum x86_reg a, enum x86_reg c, bool w);
void x86_shift_ri(struct x86_buf *b, enum x86_shift op, enum x86_reg dst, unsigned amount, bool w);
void x86_shift_rcl(struct x86_buf *b, enum x86_shift op, enum x86_reg dst, bool w); /* by CL */
void x86_imul_rr(struct x86_buf *b, enum x86_reg dst, enum x86_reg src, bool w);
void x86_imul_rm(struct x86_buf *b, enum x86_reg dst, struct x86_mem m, bool w);
void x86_unary(struct x86_buf *b, enum x86_unary op, enum x86_reg r, bool w);
void x86_cqo(struct x86_buf *b, bool w); /* cqo, or cdq when !w */
void x86_setcc(struct x86_buf *b, enum x86_cond cc, enum x86_reg dst8);
void x86_movzx8(struct x86_buf *b, enum x86_reg dst, enum x86_reg src8);
void x86_cmov_rr(struct x86_buf *b, enum x86_cond cc, enum x86_reg dst, enum x86_reg src, bool w);

void x86_push(struct x86_buf *b, enum x86_reg r);
/* push of a sign-extended imm32 (8 bytes) */
void x86_push_imm(struct x86_buf *b, int32_t imm);
void x86_pop(struct x86_buf *b, enum x86_reg r);
void x86_ret(struct x86_buf *b);
/* ret, then drops `bytes` more of the stack (ret imm16). */
void x86_ret_imm(struct x86_buf *b, uint16_t bytes);
void x86_call_r(struct x86_buf *b, enum x86_reg r);
void x86_jmp_r(struct x86_buf *b, enum x86_reg r);
void x86_jmp_m(struct x86_buf *b, struct x86_mem m);
void x86_mfence(struct x86_buf *b);
void x86_nop(struct x86_buf *b, unsigned bytes);
/* Raw bytes (data the code reads through a return address). */
void x86_data(struct x86_buf *b, const void *bytes, size_t n);
/* A call to a C function: rel32 when it reaches, else through RAX. */
void x86_call_far(struct x86_buf *b, const void *fn);

/* Branches with a 32-bit displacement. They return the address of the
 * displacement field (NULL if the buffer is full) so the target can be set
 * later with x86_patch_rel32. */
uint8_t *x86_jmp(struct x86_buf *b, const uint8_t *target);
uint8_t *x86_jcc(struct x86_buf *b, enum x86_cond cc, const uint8_t *target);
uint8_t *x86_call(struct x86_buf *b, const uint8_t *target);
/* Points the rel32 field at `field` to target. */
void x86_patch_rel32(uint8_t *field, const uint8_t *target);
/* Whether target is reachable by a rel32 from a field at `field`. */
bool x86_rel32_reaches(const uint8_t *field, const uint8_t *target);

#endif
