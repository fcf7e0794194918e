/* RV64GC decoder. Compressed instructions are first expanded to their
 * 32-bit equivalents, so a single decoder (and a single set of handlers)
 * serves both; only len differs. */
#include <stddef.h>

#include "hart/exec.h"
#include "hart/exec_fp.h"

static uint32_t bits(uint32_t v, int hi, int lo) { return (v >> lo) & ((1u << (hi - lo + 1)) - 1); }

/* ---- compressed expansion ---- */

static uint32_t enc_i(int32_t imm, unsigned rs1, unsigned f3, unsigned rd, unsigned op) {
    return ((uint32_t)imm & 0xfff) << 20 | rs1 << 15 | f3 << 12 | rd << 7 | op;
}
static uint32_t enc_s(int32_t imm, unsigned rs2, unsigned rs1, unsigned f3, unsigned op) {
    uint32_t u = (uint32_t)imm;
    return bits(u, 11, 5) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | bits(u, 4, 0) << 7 | op;
}
static uint32_t enc_b(int32_t imm, unsigned rs2, unsigned rs1, unsigned f3) {
    uint32_t u = (uint32_t)imm;
    return bits(u, 12, 12) << 31 | bits(u, 10, 5) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | bits(u, 4, 1) << 8 |
           bits(u, 11, 11) << 7 | 0x63;
}
static uint32_t enc_j(int32_t imm, unsigned rd) {
    uint32_t u = (uint32_t)imm;
    return bits(u, 20, 20) << 31 | bits(u, 10, 1) << 21 | bits(u, 11, 11) << 20 | bits(u, 19, 12) << 12 | rd << 7 |
           0x6f;
}
static uint32_t enc_r(unsigned f7, unsigned rs2, unsigned rs1, unsigned f3, unsigned rd, unsigned op) {
    return f7 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | op;
}
static int32_t sext(uint32_t v, int width) { return (int32_t)(v << (32 - width)) >> (32 - width); }

enum { OP_LOAD = 0x03, OP_LOAD_FP = 0x07, OP_IMM = 0x13, OP_STORE = 0x23, OP_STORE_FP = 0x27, OP_REG = 0x33,
       OP_LUI = 0x37, OP_IMM32 = 0x1b, OP_REG32 = 0x3b, OP_JALR = 0x67 };

uint32_t expand_compressed(uint16_t c16) {
    uint32_t c = c16;
    unsigned rdp = 8 + bits(c, 4, 2), rs1p = 8 + bits(c, 9, 7);
    unsigned rd = bits(c, 11, 7), rs2 = bits(c, 6, 2);
    int32_t imm6 = sext(bits(c, 12, 12) << 5 | bits(c, 6, 2), 6);
    switch ((c & 3) << 3 | bits(c, 15, 13)) {
    /* quadrant 0 */
    case 000: {
        uint32_t nz = bits(c, 12, 11) << 4 | bits(c, 10, 7) << 6 | bits(c, 6, 6) << 2 | bits(c, 5, 5) << 3;
        return nz ? enc_i((int32_t)nz, 2, 0, rdp, OP_IMM) : 0; /* C.ADDI4SPN; all-zero is illegal */
    }
    case 001: return enc_i((int32_t)(bits(c, 12, 10) << 3 | bits(c, 6, 5) << 6), rs1p, 3, rdp, OP_LOAD_FP);
    case 002: return enc_i((int32_t)(bits(c, 12, 10) << 3 | bits(c, 6, 6) << 2 | bits(c, 5, 5) << 6), rs1p, 2, rdp, OP_LOAD);
    case 003: return enc_i((int32_t)(bits(c, 12, 10) << 3 | bits(c, 6, 5) << 6), rs1p, 3, rdp, OP_LOAD);
    case 005: return enc_s((int32_t)(bits(c, 12, 10) << 3 | bits(c, 6, 5) << 6), rdp, rs1p, 3, OP_STORE_FP);
    case 006: return enc_s((int32_t)(bits(c, 12, 10) << 3 | bits(c, 6, 6) << 2 | bits(c, 5, 5) << 6), rdp, rs1p, 2, OP_STORE);
    case 007: return enc_s((int32_t)(bits(c, 12, 10) << 3 | bits(c, 6, 5) << 6), rdp, rs1p, 3, OP_STORE);
    /* quadrant 1 */
    case 010: return enc_i(imm6, rd, 0, rd, OP_IMM); /* C.ADDI, C.NOP */
    case 011: return rd ? enc_i(imm6, rd, 0, rd, OP_IMM32) : 0; /* C.ADDIW */
    case 012: return enc_i(imm6, 0, 0, rd, OP_IMM); /* C.LI */
    case 013:
        if (rd == 2) { /* C.ADDI16SP */
            int32_t nz = sext(bits(c, 12, 12) << 9 | bits(c, 6, 6) << 4 | bits(c, 5, 5) << 6 | bits(c, 4, 3) << 7 |
                              bits(c, 2, 2) << 5, 10);
            return nz ? enc_i(nz, 2, 0, 2, OP_IMM) : 0;
        }
        if (imm6 == 0) return 0;
        return ((uint32_t)imm6 << 12) | rd << 7 | OP_LUI; /* C.LUI */
    case 014: {
        unsigned shamt = bits(c, 12, 12) << 5 | bits(c, 6, 2);
        switch (bits(c, 11, 10)) {
        case 0: return enc_i((int32_t)shamt, rs1p, 5, rs1p, OP_IMM); /* C.SRLI */
        case 1: return enc_i((int32_t)(shamt | 0x400), rs1p, 5, rs1p, OP_IMM); /* C.SRAI */
        case 2: return enc_i(imm6, rs1p, 7, rs1p, OP_IMM); /* C.ANDI */
        }
        static const unsigned f3[4] = {0, 4, 6, 7}; /* SUB XOR OR AND */
        unsigned sel = bits(c, 6, 5);
        if (!bits(c, 12, 12)) return enc_r(sel == 0 ? 0x20 : 0, rdp, rs1p, f3[sel], rs1p, OP_REG);
        if (sel == 0) return enc_r(0x20, rdp, rs1p, 0, rs1p, OP_REG32); /* C.SUBW */
        if (sel == 1) return enc_r(0, rdp, rs1p, 0, rs1p, OP_REG32);    /* C.ADDW */
        return 0;
    }
    case 015: {
        int32_t off = sext(bits(c, 12, 12) << 11 | bits(c, 11, 11) << 4 | bits(c, 10, 9) << 8 | bits(c, 8, 8) << 10 |
                           bits(c, 7, 7) << 6 | bits(c, 6, 6) << 7 | bits(c, 5, 3) << 1 | bits(c, 2, 2) << 5, 12);
        return enc_j(off, 0); /* C.J */
    }
    case 016: case 017: {
        int32_t off = sext(bits(c, 12, 12) << 8 | bits(c, 11, 10) << 3 | bits(c, 6, 5) << 6 | bits(c, 4, 3) << 1 |
                           bits(c, 2, 2) << 5, 9);
        return enc_b(off, 0, rs1p, bits(c, 15, 13) == 6 ? 0 : 1); /* C.BEQZ, C.BNEZ */
    }
    /* quadrant 2 */
    case 020: return enc_i((int32_t)(bits(c, 12, 12) << 5 | bits(c, 6, 2)), rd, 1, rd, OP_IMM); /* C.SLLI */
    case 021: return enc_i((int32_t)(bits(c, 12, 12) << 5 | bits(c, 6, 5) << 3 | bits(c, 4, 2) << 6), 2, 3, rd, OP_LOAD_FP);
    case 022:
        if (!rd) return 0;
        return enc_i((int32_t)(bits(c, 12, 12) << 5 | bits(c, 6, 4) << 2 | bits(c, 3, 2) << 6), 2, 2, rd, OP_LOAD);
    case 023:
        if (!rd) return 0;
        return enc_i((int32_t)(bits(c, 12, 12) << 5 | bits(c, 6, 5) << 3 | bits(c, 4, 2) << 6), 2, 3, rd, OP_LOAD);
    case 024:
        if (!bits(c, 12, 12)) {
            if (rs2) return enc_r(0, rs2, 0, 0, rd, OP_REG);    /* C.MV */
            return rd ? enc_i(0, rd, 0, 0, OP_JALR) : 0;        /* C.JR */
        }
        if (rs2) return enc_r(0, rs2, rd, 0, rd, OP_REG);       /* C.ADD */
        if (rd) return enc_i(0, rd, 0, 1, OP_JALR);             /* C.JALR */
        return 0x00100073;                                      /* C.EBREAK */
    case 025: return enc_s((int32_t)(bits(c, 12, 10) << 3 | bits(c, 9, 7) << 6), rs2, 2, 3, OP_STORE_FP);
    case 026: return enc_s((int32_t)(bits(c, 12, 9) << 2 | bits(c, 8, 7) << 6), rs2, 2, 2, OP_STORE);
    case 027: return enc_s((int32_t)(bits(c, 12, 10) << 3 | bits(c, 9, 7) << 6), rs2, 2, 3, OP_STORE);
    }
    return 0;
}

/* ---- 32-bit decoding ---- */

static insn_fn decode_op(uint32_t f7, uint32_t f3) {
    static const insn_fn base[8] = {op_add, op_sll, op_slt, op_sltu, op_xor, op_srl, op_or, op_and};
    static const insn_fn muldiv[8] = {op_mul, op_mulh, op_mulhsu, op_mulhu, op_div, op_divu, op_rem, op_remu};
    if (f7 == 0) return base[f3];
    if (f7 == 1) return muldiv[f3];
    if (f7 == 0x20 && f3 == 0) return op_sub;
    if (f7 == 0x20 && f3 == 5) return op_sra;
    return NULL;
}

static insn_fn decode_op32(uint32_t f7, uint32_t f3) {
    if (f7 == 0) return f3 == 0 ? op_addw : f3 == 1 ? op_sllw : f3 == 5 ? op_srlw : NULL;
    if (f7 == 0x20) return f3 == 0 ? op_subw : f3 == 5 ? op_sraw : NULL;
    if (f7 == 1) {
        static const insn_fn m[8] = {op_mulw, NULL, NULL, NULL, op_divw, op_divuw, op_remw, op_remuw};
        return m[f3];
    }
    return NULL;
}

static insn_fn decode_amo(uint32_t raw, uint32_t f3) {
    unsigned f5 = raw >> 27;
    unsigned rs2 = bits(raw, 24, 20);
    if (f3 != 2 && f3 != 3) return NULL;
    bool d = f3 == 3;
    switch (f5) {
    case 0x02: return rs2 ? NULL : d ? op_lr_d : op_lr_w;
    case 0x03: return d ? op_sc_d : op_sc_w;
    case 0x01: return d ? op_amoswap_d : op_amoswap_w;
    case 0x00: return d ? op_amoadd_d : op_amoadd_w;
    case 0x04: return d ? op_amoxor_d : op_amoxor_w;
    case 0x0c: return d ? op_amoand_d : op_amoand_w;
    case 0x08: return d ? op_amoor_d : op_amoor_w;
    case 0x10: return d ? op_amomin_d : op_amomin_w;
    case 0x14: return d ? op_amomax_d : op_amomax_w;
    case 0x18: return d ? op_amominu_d : op_amominu_w;
    case 0x1c: return d ? op_amomaxu_d : op_amomaxu_w;
    }
    return NULL;
}

static insn_fn decode_system(uint32_t raw, struct insn *out) {
    uint32_t f3 = bits(raw, 14, 12);
    static const insn_fn csr[8] = {NULL, op_csrrw, op_csrrs, op_csrrc, NULL, op_csrrwi, op_csrrsi, op_csrrci};
    if (f3) {
        out->imm = (int32_t)(raw >> 20);
        return csr[f3];
    }
    out->imm = (int32_t)raw; /* privileged instructions report their bits if illegal */
    switch (raw) {
    case 0x00000073: return op_ecall;
    case 0x00100073: return op_ebreak;
    case 0x10200073: return op_sret;
    case 0x30200073: return op_mret;
    case 0x10500073: return op_wfi;
    }
    if ((raw >> 25) == 0x09 && bits(raw, 11, 7) == 0) return op_sfence_vma;
    return NULL;
}

static insn_fn decode32(uint32_t raw, struct insn *out) {
    uint32_t op = raw & 0x7f, f3 = bits(raw, 14, 12), f7 = raw >> 25;
    int32_t imm_i = (int32_t)raw >> 20;
    int32_t imm_s = ((int32_t)raw >> 25) * 32 + (int32_t)bits(raw, 11, 7);
    out->rs1 = (uint8_t)bits(raw, 19, 15);
    out->rs2 = (uint8_t)bits(raw, 24, 20);
    switch (op) {
    case 0x37: out->imm = (int32_t)(raw & 0xfffff000); return op_lui;
    case 0x17: out->imm = (int32_t)(raw & 0xfffff000); return op_auipc;
    case 0x6f:
        out->imm = sext(bits(raw, 31, 31) << 20 | bits(raw, 19, 12) << 12 | bits(raw, 20, 20) << 11 |
                        bits(raw, 30, 21) << 1, 21);
        return op_jal;
    case 0x67: out->imm = imm_i; return f3 == 0 ? op_jalr : NULL;
    case 0x63: {
        static const insn_fn br[8] = {op_beq, op_bne, NULL, NULL, op_blt, op_bge, op_bltu, op_bgeu};
        out->imm = sext(bits(raw, 31, 31) << 12 | bits(raw, 7, 7) << 11 | bits(raw, 30, 25) << 5 |
                        bits(raw, 11, 8) << 1, 13);
        return br[f3];
    }
    case OP_LOAD: {
        static const insn_fn ld[8] = {op_lb, op_lh, op_lw, op_ld, op_lbu, op_lhu, op_lwu, NULL};
        out->imm = imm_i;
        return ld[f3];
    }
    case OP_STORE: {
        static const insn_fn st[8] = {op_sb, op_sh, op_sw, op_sd, NULL, NULL, NULL, NULL};
        out->imm = imm_s;
        return st[f3];
    }
    case OP_IMM: {
        static const insn_fn alu[8] = {op_addi, op_slli, op_slti, op_sltiu, op_xori, op_srli, op_ori, op_andi};
        out->imm = imm_i;
        if (f3 == 1) { out->imm &= 63; return (raw >> 26) == 0 ? op_slli : NULL; }
        if (f3 == 5) {
            out->imm &= 63;
            return (raw >> 26) == 0 ? op_srli : (raw >> 26) == 0x10 ? op_srai : NULL;
        }
        return alu[f3];
    }
    case OP_IMM32:
        out->imm = imm_i;
        if (f3 == 0) return op_addiw;
        out->imm &= 31;
        if (f3 == 1) return f7 == 0 ? op_slliw : NULL;
        if (f3 == 5) return f7 == 0 ? op_srliw : f7 == 0x20 ? op_sraiw : NULL;
        return NULL;
    case OP_REG: return decode_op(f7, f3);
    case OP_REG32: return decode_op32(f7, f3);
    case 0x2f: out->rm = (uint8_t)bits(raw, 26, 25); return decode_amo(raw, f3);
    case 0x0f: out->imm = imm_i; return f3 == 0 ? op_fence : f3 == 1 ? op_fence_i : NULL; /* imm: fm, pred, succ */
    case 0x73: return decode_system(raw, out);
    }
    return NULL;
}

void decode(uint32_t raw, struct insn *out) {
    struct insn d = {0};
    d.len = (raw & 3) == 3 ? 4 : 2;
    uint32_t full = d.len == 4 ? raw : expand_compressed((uint16_t)raw);
    bool ok = false;
    if (full) {
        unsigned op = full & 0x7f;
        if (op == 0x07 || op == 0x27 || op == 0x43 || op == 0x47 || op == 0x4b || op == 0x4f || op == 0x53) {
            ok = decode_fp(full, &d);
        } else {
            d.fn = decode32(full, &d);
            d.rd = (uint8_t)bits(full, 11, 7);
            ok = d.fn != NULL;
        }
    }
    if (!ok) {
        d = (struct insn){.fn = op_illegal, .imm = (int32_t)(d.len == 4 ? raw : (raw & 0xffff)), .len = d.len};
    } else {
        /* Integer destinations: x0 writes go to the sink. FP handlers set their own rd. */
        unsigned op = full & 0x7f;
        bool fp = op == 0x07 || op == 0x27 || op == 0x43 || op == 0x47 || op == 0x4b || op == 0x4f || op == 0x53;
        if (!fp && d.rd == 0) d.rd = 32;
    }
    d.len = (raw & 3) == 3 ? 4 : 2;
    *out = d;
}
