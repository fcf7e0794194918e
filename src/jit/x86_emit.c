#include "jit/x86_emit.h"

#include <string.h>

void x86_buf_init(struct x86_buf *b, uint8_t *mem, size_t size) {
    b->start = b->p = mem;
    b->end = mem + size;
    b->full = false;
}

/* Every instruction is at most 15 bytes: reserve that much up front. */
static bool room(struct x86_buf *b) {
    if (b->full || b->end - b->p < 16) {
        b->full = true;
        return false;
    }
    return true;
}

static void byte(struct x86_buf *b, unsigned v) { *b->p++ = (uint8_t)v; }
static void imm32(struct x86_buf *b, uint32_t v) {
    memcpy(b->p, &v, 4);
    b->p += 4;
}
static void imm64(struct x86_buf *b, uint64_t v) {
    memcpy(b->p, &v, 8);
    b->p += 8;
}
static bool fits8(int32_t v) { return v >= -128 && v <= 127; }

/* REX prefix for a reg field `r`, an index `x` and a base or r/m `bb`.
 * `force` emits it even when empty (byte registers SPL..DIL need one). */
static void rex(struct x86_buf *b, bool w, int r, int x, int bb, bool force) {
    unsigned v = 0x40 | (w ? 8 : 0) | ((r >> 3) & 1) << 2 | ((x >= 0 ? x >> 3 : 0) & 1) << 1 | ((bb >> 3) & 1);
    if (v != 0x40 || force) byte(b, v);
}

static void modrm_reg(struct x86_buf *b, int reg, int rm) { byte(b, 0xc0 | (reg & 7) << 3 | (rm & 7)); }

static void modrm_mem(struct x86_buf *b, int reg, struct x86_mem m) {
    int base = m.base & 7;
    bool need_sib = m.index != X86_NOREG || base == RSP;
    /* [rbp]/[r13] with no displacement does not exist (that encoding is RIP-relative). */
    unsigned mod = (m.disp == 0 && base != RBP) ? 0 : fits8(m.disp) ? 1 : 2;
    byte(b, mod << 6 | (reg & 7) << 3 | (need_sib ? 4 : base));
    if (need_sib) {
        unsigned ss = m.scale == 8 ? 3 : m.scale == 4 ? 2 : m.scale == 2 ? 1 : 0;
        unsigned idx = m.index == X86_NOREG ? 4 : (unsigned)(m.index & 7);
        byte(b, ss << 6 | idx << 3 | (unsigned)base);
    }
    if (mod == 1) byte(b, (uint8_t)(int8_t)m.disp);
    else if (mod == 2) imm32(b, (uint32_t)m.disp);
}

/* op reg, r/m(reg) with optional 0x0F escape (op > 0xff) */
static void op_rr(struct x86_buf *b, unsigned op, int reg, int rm, bool w, bool force_rex) {
    if (!room(b)) return;
    rex(b, w, reg, -1, rm, force_rex);
    if (op > 0xff) byte(b, op >> 8);
    byte(b, op & 0xff);
    modrm_reg(b, reg, rm);
}

/* op reg, [mem]; a legacy prefix (0x66) in bits 16..23 of op goes before
 * REX, under the same room() check, so a full buffer keeps none of it. */
static void op_rm(struct x86_buf *b, unsigned op, int reg, struct x86_mem m, bool w, bool force_rex) {
    if (!room(b)) return;
    if (op > 0xffff) byte(b, op >> 16);
    rex(b, w, reg, m.index, m.base, force_rex);
    if (op & 0xff00) byte(b, (op >> 8) & 0xff);
    byte(b, op & 0xff);
    modrm_mem(b, reg, m);
}

void x86_mov_rr(struct x86_buf *b, enum x86_reg dst, enum x86_reg src, bool w) { op_rr(b, 0x89, src, dst, w, false); }
void x86_mov_rm(struct x86_buf *b, enum x86_reg dst, struct x86_mem m, bool w) { op_rm(b, 0x8b, dst, m, w, false); }
void x86_mov_mr(struct x86_buf *b, struct x86_mem m, enum x86_reg src, bool w) { op_rm(b, 0x89, src, m, w, false); }

void x86_mov_ri(struct x86_buf *b, enum x86_reg dst, uint64_t imm) {
    if (!room(b)) return;
    if (imm == 0) {
        op_rr(b, 0x31, dst, dst, false, false); /* xor r32, r32 */
    } else if (imm <= 0xffffffffull) {
        rex(b, false, 0, -1, dst, false);
        byte(b, 0xb8 + (dst & 7));
        imm32(b, (uint32_t)imm);
    } else if ((int64_t)imm == (int32_t)imm) {
        rex(b, true, 0, -1, dst, false);
        byte(b, 0xc7);
        modrm_reg(b, 0, dst);
        imm32(b, (uint32_t)imm);
    } else {
        rex(b, true, 0, -1, dst, false);
        byte(b, 0xb8 + (dst & 7));
        imm64(b, imm);
    }
}

void x86_mov_mi(struct x86_buf *b, struct x86_mem m, int32_t imm, bool w) {
    op_rm(b, 0xc7, 0, m, w, false);
    if (!b->full) imm32(b, (uint32_t)imm);
}

void x86_load(struct x86_buf *b, enum x86_reg dst, struct x86_mem m, unsigned size, bool sign) {
    switch (size) {
    case 1: op_rm(b, sign ? 0x0fbe : 0x0fb6, dst, m, sign, false); break;
    case 2: op_rm(b, sign ? 0x0fbf : 0x0fb7, dst, m, sign, false); break;
    case 4: op_rm(b, sign ? 0x63 : 0x8b, dst, m, sign, false); break;
    default: op_rm(b, 0x8b, dst, m, true, false); break;
    }
}

void x86_store(struct x86_buf *b, struct x86_mem m, enum x86_reg src, unsigned size) {
    switch (size) {
    case 1: op_rm(b, 0x88, src, m, false, src >= RSP); break;
    case 2: op_rm(b, 0x660089, src, m, false, false); break;
    case 4: op_rm(b, 0x89, src, m, false, false); break;
    default: op_rm(b, 0x89, src, m, true, false); break;
    }
}

void x86_lea(struct x86_buf *b, enum x86_reg dst, struct x86_mem m, bool w) { op_rm(b, 0x8d, dst, m, w, false); }
void x86_movsxd(struct x86_buf *b, enum x86_reg dst, enum x86_reg src) { op_rr(b, 0x63, dst, src, true, false); }

void x86_alu_rr(struct x86_buf *b, enum x86_alu op, enum x86_reg dst, enum x86_reg src, bool w) {
    op_rr(b, 0x01 | (unsigned)op << 3, src, dst, w, false);
}
void x86_alu_rm(struct x86_buf *b, enum x86_alu op, enum x86_reg dst, struct x86_mem m, bool w) {
    op_rm(b, 0x03 | (unsigned)op << 3, dst, m, w, false);
}
void x86_alu_mr(struct x86_buf *b, enum x86_alu op, struct x86_mem m, enum x86_reg src, bool w) {
    op_rm(b, 0x01 | (unsigned)op << 3, src, m, w, false);
}
void x86_alu_ri(struct x86_buf *b, enum x86_alu op, enum x86_reg dst, int32_t imm, bool w) {
    if (fits8(imm)) {
        op_rr(b, 0x83, op, dst, w, false);
        if (!b->full) byte(b, (uint8_t)(int8_t)imm);
    } else {
        op_rr(b, 0x81, op, dst, w, false);
        if (!b->full) imm32(b, (uint32_t)imm);
    }
}
void x86_alu_mi(struct x86_buf *b, enum x86_alu op, struct x86_mem m, int32_t imm, bool w) {
    if (fits8(imm)) {
        op_rm(b, 0x83, op, m, w, false);
        if (!b->full) byte(b, (uint8_t)(int8_t)imm);
    } else {
        op_rm(b, 0x81, op, m, w, false);
        if (!b->full) imm32(b, (uint32_t)imm);
    }
}
void x86_test_rr(struct x86_buf *b, enum x86_reg a, enum x86_reg c, bool w) { op_rr(b, 0x85, c, a, w, false); }

void x86_shift_ri(struct x86_buf *b, enum x86_shift op, enum x86_reg dst, unsigned amount, bool w) {
    op_rr(b, 0xc1, op, dst, w, false);
    if (!b->full) byte(b, amount);
}
void x86_shift_rcl(struct x86_buf *b, enum x86_shift op, enum x86_reg dst, bool w) { op_rr(b, 0xd3, op, dst, w, false); }
void x86_imul_rr(struct x86_buf *b, enum x86_reg dst, enum x86_reg src, bool w) { op_rr(b, 0x0faf, dst, src, w, false); }
void x86_imul_rm(struct x86_buf *b, enum x86_reg dst, struct x86_mem m, bool w) { op_rm(b, 0x0faf, dst, m, w, false); }
void x86_unary(struct x86_buf *b, enum x86_unary op, enum x86_reg r, bool w) { op_rr(b, 0xf7, op, r, w, false); }

void x86_cqo(struct x86_buf *b, bool w) {
    if (!room(b)) return;
    if (w) byte(b, 0x48);
    byte(b, 0x99);
}

void x86_setcc(struct x86_buf *b, enum x86_cond cc, enum x86_reg dst8) {
    op_rr(b, 0x0f90 | (unsigned)cc, 0, dst8, false, dst8 >= RSP);
}
void x86_movzx8(struct x86_buf *b, enum x86_reg dst, enum x86_reg src8) {
    op_rr(b, 0x0fb6, dst, src8, false, src8 >= RSP);
}
void x86_cmov_rr(struct x86_buf *b, enum x86_cond cc, enum x86_reg dst, enum x86_reg src, bool w) {
    op_rr(b, 0x0f40 | (unsigned)cc, dst, src, w, false);
}

void x86_push(struct x86_buf *b, enum x86_reg r) {
    if (!room(b)) return;
    rex(b, false, 0, -1, r, false);
    byte(b, 0x50 + (r & 7));
}
void x86_push_imm(struct x86_buf *b, int32_t imm) {
    if (!room(b)) return;
    byte(b, 0x68);
    imm32(b, (uint32_t)imm);
}
void x86_pop(struct x86_buf *b, enum x86_reg r) {
    if (!room(b)) return;
    rex(b, false, 0, -1, r, false);
    byte(b, 0x58 + (r & 7));
}
void x86_ret(struct x86_buf *b) {
    if (room(b)) byte(b, 0xc3);
}
void x86_ret_imm(struct x86_buf *b, uint16_t bytes) {
    if (!room(b)) return;
    byte(b, 0xc2);
    byte(b, bytes & 0xff);
    byte(b, bytes >> 8);
}
void x86_call_r(struct x86_buf *b, enum x86_reg r) { op_rr(b, 0xff, 2, r, false, false); }
void x86_jmp_r(struct x86_buf *b, enum x86_reg r) { op_rr(b, 0xff, 4, r, false, false); }
void x86_jmp_m(struct x86_buf *b, struct x86_mem m) { op_rm(b, 0xff, 4, m, false, false); }

void x86_mfence(struct x86_buf *b) {
    if (!room(b)) return;
    byte(b, 0x0f);
    byte(b, 0xae);
    byte(b, 0xf0);
}

void x86_nop(struct x86_buf *b, unsigned bytes) {
    while (bytes > 0 && room(b)) {
        byte(b, 0x90);
        bytes--;
    }
}

bool x86_rel32_reaches(const uint8_t *field, const uint8_t *target) {
    int64_t d = (int64_t)((intptr_t)target - (intptr_t)(field + 4));
    return d == (int32_t)d;
}

void x86_patch_rel32(uint8_t *field, const uint8_t *target) {
    int32_t d = (int32_t)((intptr_t)target - (intptr_t)(field + 4));
    /* One aligned store where the field is aligned (the translator aligns
     * the fields it patches while the code may run), so another thread
     * running this code sees the old jump or the new one. */
    if (((uintptr_t)field & 3) == 0)
        __atomic_store_n((int32_t *)(void *)field, d, __ATOMIC_RELEASE);
    else
        memcpy(field, &d, 4);
}

static uint8_t *rel32(struct x86_buf *b, const uint8_t *target) {
    uint8_t *field = b->p;
    imm32(b, 0);
    if (target) x86_patch_rel32(field, target);
    return field;
}

uint8_t *x86_jmp(struct x86_buf *b, const uint8_t *target) {
    if (!room(b)) return NULL;
    byte(b, 0xe9);
    return rel32(b, target);
}
uint8_t *x86_jcc(struct x86_buf *b, enum x86_cond cc, const uint8_t *target) {
    if (!room(b)) return NULL;
    byte(b, 0x0f);
    byte(b, 0x80 | (unsigned)cc);
    return rel32(b, target);
}
uint8_t *x86_call(struct x86_buf *b, const uint8_t *target) {
    if (!room(b)) return NULL;
    byte(b, 0xe8);
    return rel32(b, target);
}

void x86_data(struct x86_buf *b, const void *bytes, size_t n) {
    if (b->full || (size_t)(b->end - b->p) < n + 16) {
        b->full = true;
        return;
    }
    memcpy(b->p, bytes, n);
    b->p += n;
}

void x86_call_far(struct x86_buf *b, const void *fn) {
    const uint8_t *target = fn;
    if (x86_rel32_reaches(b->p + 1, target)) {
        x86_call(b, target);
    } else {
        x86_mov_ri(b, RAX, (uintptr_t)target);
        x86_call_r(b, RAX);
    }
}
