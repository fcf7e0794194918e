/* Unit tests of the RV64GC decoder (src/hart/decode.c).
 *
 * Every expected encoding below was produced offline by assembling the
 * instruction with riscv64-linux-gnu-as -march=rv64gc (compressed forms with
 * ".option rvc", their expansions with ".option norvc") and reading the
 * result back with objdump -M no-aliases. The expected operands are written
 * from the ISA manual's instruction formats. Nothing is assembled at test
 * time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "hart/exec.h"
#include "hart/exec_fp.h"

#define ANY (-99999) /* "do not check this field" */
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ */
/* 32-bit instructions */

struct case32 {
    uint32_t raw;
    insn_fn fn;
    int rd, rs1, rs2;
    int64_t imm;
    const char *text;
};

static void check_insn(const struct insn *d, const char *text, insn_fn fn, int rd, int rs1, int rs2, int64_t imm,
                       int len) {
    if (d->fn != fn) fail_msg("%s: wrong handler", text);
    if (rd != ANY && d->rd != rd) fail_msg("%s: rd %d, want %d", text, d->rd, rd);
    if (rs1 != ANY && d->rs1 != rs1) fail_msg("%s: rs1 %d, want %d", text, d->rs1, rs1);
    if (rs2 != ANY && d->rs2 != rs2) fail_msg("%s: rs2 %d, want %d", text, d->rs2, rs2);
    if (imm != ANY && d->imm != imm) fail_msg("%s: imm %d (%#x), want %lld", text, d->imm, (unsigned)d->imm, (long long)imm);
    if (d->len != len) fail_msg("%s: len %d, want %d", text, d->len, len);
}

static void run32(const struct case32 *c, size_t n) {
    for (size_t k = 0; k < n; k++) {
        struct insn d;
        memset(&d, 0xa5, sizeof d);
        decode(c[k].raw, &d);
        check_insn(&d, c[k].text, c[k].fn, c[k].rd, c[k].rs1, c[k].rs2, c[k].imm, 4);
    }
}

static void test_upper_and_jumps(void **state) {
    (void)state;
    static const struct case32 c[] = {
        {0xfffff537, op_lui, 10, ANY, ANY, -4096, "lui a0, 0xfffff"},
        {0x12345037, op_lui, 32, ANY, ANY, 0x12345000, "lui x0, 0x12345"},
        {0x80000297, op_auipc, 5, ANY, ANY, INT32_MIN, "auipc t0, 0x80000"},
        {0x7fffff97, op_auipc, 31, ANY, ANY, 0x7ffff000, "auipc t6, 0x7ffff"},
        {0x800000ef, op_jal, 1, ANY, ANY, -1048576, "jal ra, .-1048576"},
        {0x7ffff06f, op_jal, 32, ANY, ANY, 1048574, "jal x0, .+1048574"},
        {0x001002ef, op_jal, 5, ANY, ANY, 2048, "jal t0, .+2048"},
        {0x80008067, op_jalr, 32, 1, ANY, -2048, "jalr zero, -2048(ra)"},
        {0x7fff8567, op_jalr, 10, 31, ANY, 2047, "jalr a0, 2047(t6)"},
    };
    run32(c, N_ELEMS(c));
}

static void test_branches(void **state) {
    (void)state;
    static const struct case32 c[] = {
        {0x80b50063, op_beq, ANY, 10, 11, -4096, "beq a0, a1, .-4096"},
        {0x7e1f9fe3, op_bne, ANY, 31, 1, 4094, "bne t6, ra, .+4094"},
        {0x009440e3, op_blt, ANY, 8, 9, 2048, "blt s0, s1, .+2048"},
        {0xfed65fe3, op_bge, ANY, 12, 13, -2, "bge a2, a3, .-2"},
        {0x00f76163, op_bltu, ANY, 14, 15, 2, "bltu a4, a5, .+2"},
        {0x0062f263, op_bgeu, ANY, 5, 6, 4, "bgeu t0, t1, .+4"},
    };
    run32(c, N_ELEMS(c));
}

static void test_loads_stores(void **state) {
    (void)state;
    static const struct case32 c[] = {
        {0x80010503, op_lb, 10, 2, ANY, -2048, "lb a0, -2048(sp)"},
        {0x7ff09f83, op_lh, 31, 1, ANY, 2047, "lh t6, 2047(ra)"},
        {0xfff52003, op_lw, 32, 10, ANY, -1, "lw x0, -1(a0)"},
        {0x00843583, op_ld, 11, 8, ANY, 8, "ld a1, 8(s0)"},
        {0x7ff6c603, op_lbu, 12, 13, ANY, 2047, "lbu a2, 2047(a3)"},
        {0x8007d703, op_lhu, 14, 15, ANY, -2048, "lhu a4, -2048(a5)"},
        {0x00136283, op_lwu, 5, 6, ANY, 1, "lwu t0, 1(t1)"},
        {0x80a10023, op_sb, ANY, 2, 10, -2048, "sb a0, -2048(sp)"},
        {0x7ff09fa3, op_sh, ANY, 1, 31, 2047, "sh t6, 2047(ra)"},
        {0xfef72fa3, op_sw, ANY, 14, 15, -1, "sw a5, -1(a4)"},
        {0x02943023, op_sd, ANY, 8, 9, 32, "sd s1, 32(s0)"},
    };
    run32(c, N_ELEMS(c));
}

static void test_op_imm(void **state) {
    (void)state;
    static const struct case32 c[] = {
        {0x80058513, op_addi, 10, 11, ANY, -2048, "addi a0, a1, -2048"},
        {0x7ff5a513, op_slti, 10, 11, ANY, 2047, "slti a0, a1, 2047"},
        {0xfff5b513, op_sltiu, 10, 11, ANY, -1, "sltiu a0, a1, -1"},
        {0xfff5c513, op_xori, 10, 11, ANY, -1, "xori a0, a1, -1"},
        {0x55506f93, op_ori, 31, 0, ANY, 1365, "ori t6, x0, 1365"},
        {0x80017093, op_andi, 1, 2, ANY, -2048, "andi ra, sp, -2048"},
        {0x00000013, op_addi, 32, 0, ANY, 0, "nop"},
        {0x03f59513, op_slli, 10, 11, ANY, 63, "slli a0, a1, 63"},
        {0x03f5d513, op_srli, 10, 11, ANY, 63, "srli a0, a1, 63"},
        {0x43f5d513, op_srai, 10, 11, ANY, 63, "srai a0, a1, 63"},
        {0x4015d513, op_srai, 10, 11, ANY, 1, "srai a0, a1, 1"},
        {0x8005851b, op_addiw, 10, 11, ANY, -2048, "addiw a0, a1, -2048"},
        {0x01f5951b, op_slliw, 10, 11, ANY, 31, "slliw a0, a1, 31"},
        {0x01f5d51b, op_srliw, 10, 11, ANY, 31, "srliw a0, a1, 31"},
        {0x41f5d51b, op_sraiw, 10, 11, ANY, 31, "sraiw a0, a1, 31"},
    };
    run32(c, N_ELEMS(c));
}

static void test_op_reg(void **state) {
    (void)state;
    static const struct case32 c[] = {
        {0x00c58533, op_add, 10, 11, 12, ANY, "add a0, a1, a2"},
        {0x41df0fb3, op_sub, 31, 30, 29, ANY, "sub t6, t5, t4"},
        {0x00c59533, op_sll, 10, 11, 12, ANY, "sll"},
        {0x00c5a533, op_slt, 10, 11, 12, ANY, "slt"},
        {0x00c5b533, op_sltu, 10, 11, 12, ANY, "sltu"},
        {0x00c5c533, op_xor, 10, 11, 12, ANY, "xor"},
        {0x00c5d533, op_srl, 10, 11, 12, ANY, "srl"},
        {0x40c5d533, op_sra, 10, 11, 12, ANY, "sra"},
        {0x00c5e533, op_or, 10, 11, 12, ANY, "or"},
        {0x00c5f533, op_and, 10, 11, 12, ANY, "and"},
        {0x00b00033, op_add, 32, 0, 11, ANY, "add x0, x0, a1"},
        {0x00c5853b, op_addw, 10, 11, 12, ANY, "addw"},
        {0x40c5853b, op_subw, 10, 11, 12, ANY, "subw"},
        {0x00c5953b, op_sllw, 10, 11, 12, ANY, "sllw"},
        {0x00c5d53b, op_srlw, 10, 11, 12, ANY, "srlw"},
        {0x40c5d53b, op_sraw, 10, 11, 12, ANY, "sraw"},
        {0x02c58533, op_mul, 10, 11, 12, ANY, "mul"},
        {0x02c59533, op_mulh, 10, 11, 12, ANY, "mulh"},
        {0x02c5a533, op_mulhsu, 10, 11, 12, ANY, "mulhsu"},
        {0x02c5b533, op_mulhu, 10, 11, 12, ANY, "mulhu"},
        {0x02c5c533, op_div, 10, 11, 12, ANY, "div"},
        {0x02c5d533, op_divu, 10, 11, 12, ANY, "divu"},
        {0x02c5e533, op_rem, 10, 11, 12, ANY, "rem"},
        {0x02c5f533, op_remu, 10, 11, 12, ANY, "remu"},
        {0x02c5853b, op_mulw, 10, 11, 12, ANY, "mulw"},
        {0x02c5c53b, op_divw, 10, 11, 12, ANY, "divw"},
        {0x02c5d53b, op_divuw, 10, 11, 12, ANY, "divuw"},
        {0x02c5e53b, op_remw, 10, 11, 12, ANY, "remw"},
        {0x02c5f53b, op_remuw, 10, 11, 12, ANY, "remuw"},
    };
    run32(c, N_ELEMS(c));
}

static void test_atomics(void **state) {
    (void)state;
    static const struct case32 c[] = {
        {0x1005a52f, op_lr_w, 10, 11, 0, ANY, "lr.w a0, (a1)"},
        {0x18c5a52f, op_sc_w, 10, 11, 12, ANY, "sc.w a0, a2, (a1)"},
        {0x1405b52f, op_lr_d, 10, 11, 0, ANY, "lr.d.aq a0, (a1)"},
        {0x1ac5b52f, op_sc_d, 10, 11, 12, ANY, "sc.d.rl a0, a2, (a1)"},
        {0x08c5a52f, op_amoswap_w, 10, 11, 12, ANY, "amoswap.w"},
        {0x06c5a52f, op_amoadd_w, 10, 11, 12, ANY, "amoadd.w.aqrl"},
        {0x20c5a52f, op_amoxor_w, 10, 11, 12, ANY, "amoxor.w"},
        {0x60c5a52f, op_amoand_w, 10, 11, 12, ANY, "amoand.w"},
        {0x40c5a52f, op_amoor_w, 10, 11, 12, ANY, "amoor.w"},
        {0x80c5a52f, op_amomin_w, 10, 11, 12, ANY, "amomin.w"},
        {0xa0c5a52f, op_amomax_w, 10, 11, 12, ANY, "amomax.w"},
        {0xc0c5a52f, op_amominu_w, 10, 11, 12, ANY, "amominu.w"},
        {0xe0c5a52f, op_amomaxu_w, 10, 11, 12, ANY, "amomaxu.w"},
        {0x08c5b52f, op_amoswap_d, 10, 11, 12, ANY, "amoswap.d"},
        {0x00c5b52f, op_amoadd_d, 10, 11, 12, ANY, "amoadd.d"},
        {0x20c5b52f, op_amoxor_d, 10, 11, 12, ANY, "amoxor.d"},
        {0x60c5b52f, op_amoand_d, 10, 11, 12, ANY, "amoand.d"},
        {0x40c5b52f, op_amoor_d, 10, 11, 12, ANY, "amoor.d"},
        {0x80c5b52f, op_amomin_d, 10, 11, 12, ANY, "amomin.d"},
        {0xa0c5b52f, op_amomax_d, 10, 11, 12, ANY, "amomax.d"},
        {0xc0c5b52f, op_amominu_d, 10, 11, 12, ANY, "amominu.d"},
        {0xe0c5b52f, op_amomaxu_d, 10, 11, 12, ANY, "amomaxu.d"},
    };
    run32(c, N_ELEMS(c));
    /* aq/rl ordering bits land in rm (aq = bit 1, rl = bit 0). */
    static const struct { uint32_t raw; uint8_t rm; } o[] = {
        {0x1005a52f, 0}, {0x1405b52f, 2}, {0x1ac5b52f, 1}, {0x06c5a52f, 3},
    };
    for (size_t k = 0; k < N_ELEMS(o); k++) {
        struct insn d;
        decode(o[k].raw, &d);
        assert_int_equal(d.rm, o[k].rm);
    }
}

static void test_system(void **state) {
    (void)state;
    static const struct case32 c[] = {
        {0x0330000f, op_fence, ANY, ANY, ANY, ANY, "fence rw, rw"},
        {0x0000100f, op_fence_i, ANY, ANY, ANY, ANY, "fence.i"},
        {0x00000073, op_ecall, ANY, ANY, ANY, ANY, "ecall"},
        {0x00100073, op_ebreak, ANY, ANY, ANY, ANY, "ebreak"},
        {0x10200073, op_sret, ANY, ANY, ANY, ANY, "sret"},
        {0x30200073, op_mret, ANY, ANY, ANY, ANY, "mret"},
        {0x10500073, op_wfi, ANY, ANY, ANY, ANY, "wfi"},
        {0x12b50073, op_sfence_vma, ANY, 10, 11, ANY, "sfence.vma a0, a1"},
        {0x12000073, op_sfence_vma, ANY, 0, 0, ANY, "sfence.vma"},
        /* CSR numbers are 12-bit unsigned: 0x800 and 0xfff must not sign-extend. */
        {0x30059573, op_csrrw, 10, 11, ANY, 0x300, "csrrw a0, mstatus, a1"},
        {0xffffa073, op_csrrs, 32, 31, ANY, 0xfff, "csrrs x0, 0xfff, t6"},
        {0x8005b573, op_csrrc, 10, 11, ANY, 0x800, "csrrc a0, 0x800, a1"},
        {0x340fd573, op_csrrwi, 10, 31, ANY, 0x340, "csrrwi a0, mscratch, 31"},
        {0x1000e573, op_csrrsi, 10, 1, ANY, 0x100, "csrrsi a0, sstatus, 1"},
        {0xc0007573, op_csrrci, 10, 0, ANY, 0xc00, "csrrci a0, cycle, 0"},
    };
    run32(c, N_ELEMS(c));
}

/* F/D instructions go to the FP decoder: f0 is a real register (rd stays 0),
 * an integer destination x0 becomes the sink 32. */
static void test_fp_routing(void **state) {
    (void)state;
    struct insn d;
    decode(0x0220f053, &d); /* fadd.d f0, f1, f2 */
    assert_true(d.fn != op_illegal);
    assert_int_equal(d.rd, 0);
    assert_int_equal(d.rs1, 1);
    assert_int_equal(d.rs2, 2);
    assert_int_equal(d.rm, 7); /* dynamic rounding */
    assert_int_equal(d.len, 4);
    decode(0xe2050053, &d); /* fmv.x.d x0, fa0 */
    assert_true(d.fn != op_illegal);
    assert_int_equal(d.rd, 32);
    assert_int_equal(d.rs1, 10);
    decode(0xa2b52053, &d); /* feq.d x0, fa0, fa1 */
    assert_true(d.fn != op_illegal);
    assert_int_equal(d.rd, 32);
    decode(0x80052007, &d); /* flw f0, -2048(a0) */
    assert_true(d.fn != op_illegal);
    assert_int_equal(d.rd, 0);
    assert_int_equal(d.rs1, 10);
    assert_int_equal(d.imm, -2048);
    decode(0x7ff13fa7, &d); /* fsd f31, 2047(sp) */
    assert_true(d.fn != op_illegal);
    assert_int_equal(d.rs1, 2);
    assert_int_equal(d.rs2, 31);
    assert_int_equal(d.imm, 2047);
    decode(0x305271c3, &d); /* fmadd.s f3, f4, f5, f6 */
    assert_true(d.fn != op_illegal);
    assert_int_equal(d.rd, 3);
    assert_int_equal(d.rs1, 4);
    assert_int_equal(d.rs2, 5);
    assert_int_equal(d.rs3, 6);
    decode(0xc2259553, &d); /* fcvt.l.d a0, fa1, rtz */
    assert_true(d.fn != op_illegal);
    assert_int_equal(d.rd, 10);
    assert_int_equal(d.rs1, 11);
    assert_int_equal(d.rs2, 2);
    assert_int_equal(d.rm, 1);
}

/* Encodings that are not RV64GC instructions: op_illegal, imm = the raw bits. */
static void test_illegal_32(void **state) {
    (void)state;
    static const struct { uint32_t raw; const char *why; } c[] = {
        {0xffffffff, "all ones"},
        {0x0000000b, "custom-0 opcode"},
        {0x00000057, "OP-V opcode"},
        {0x0000001f, "48-bit prefix"},
        {0x0000007f, ">= 80-bit prefix"},
        {0x00847583, "LOAD funct3 7"},
        {0x02944023, "STORE funct3 4"},
        {0x80b52063, "BRANCH funct3 2"},
        {0x80b53063, "BRANCH funct3 3"},
        {0x80009067, "JALR funct3 1"},
        {0x07f59513, "SLLI funct6 1"},
        {0x47f5d513, "SRAI funct6 0x11"},
        {0x23f5d513, "SRLI funct6 8"},
        {0x03f5951b, "SLLIW shamt[5] set"},
        {0x43f5d51b, "SRAIW shamt[5] set"},
        {0x02b5d51b, "SRLIW shamt[5] set"},
        {0x0005a51b, "OP-IMM-32 funct3 2"},
        {0x80c58533, "OP funct7 0x40"},
        {0x40c59533, "OP funct7 0x20 funct3 1 (no 'subl')"},
        {0x40c5c533, "OP funct7 0x20 funct3 4"},
        {0x00c5a53b, "OP-32 funct3 2"},
        {0x02c5953b, "OP-32 MULHW does not exist"},
        {0x40c5953b, "OP-32 funct7 0x20 funct3 1"},
        {0x08c5852f, "AMO funct3 0"},
        {0x08c5c52f, "AMO funct3 4"},
        {0x1015a52f, "LR.W with rs2 != 0"},
        {0x1015b52f, "LR.D with rs2 != 0"},
        {0x28c5a52f, "AMO funct5 5"},
        {0x0330200f, "MISC-MEM funct3 2"},
        {0x000000f3, "ECALL with rd != 0"},
        {0x00008073, "ECALL with rs1 != 0"},
        {0x00200073, "URET (no N extension)"},
        {0x10508073, "WFI with rs1 != 0"},
        {0x302000f3, "MRET with rd != 0"},
        {0x12b500f3, "SFENCE.VMA with rd != 0"},
        {0x7b200073, "DRET (no debug mode)"},
        {0x30054573, "SYSTEM funct3 4"},
        {0x06c58553, "OP-FP fmt Q (no Q extension)"},
        {0x0005c507, "LOAD-FP funct3 4 (FLQ)"},
    };
    for (size_t k = 0; k < N_ELEMS(c); k++) {
        struct insn d;
        memset(&d, 0x5a, sizeof d);
        decode(c[k].raw, &d);
        if (d.fn != op_illegal) fail_msg("%#010x (%s) did not decode to op_illegal", c[k].raw, c[k].why);
        if ((uint32_t)d.imm != c[k].raw) fail_msg("%#010x (%s): imm %#x", c[k].raw, c[k].why, (unsigned)d.imm);
        assert_int_equal(d.len, 4);
    }
}

/* ------------------------------------------------------------------ */
/* Compressed instructions */

struct rvc_case {
    uint16_t c;
    uint32_t full;
    const char *text;
};

/* Assembled: column 1 with .option rvc, column 2 (the expansion the RVC
 * chapter defines) with .option norvc. */
static const struct rvc_case rvc_cases[] = {
    {0x0040, 0x00410413, "c.addi4spn s0, sp, 4"},
    {0x1ffc, 0x3fc10793, "c.addi4spn a5, sp, 1020"},
    {0x0028, 0x00810513, "c.addi4spn a0, sp, 8"},
    {0x080c, 0x01010593, "c.addi4spn a1, sp, 16"},
    {0x1010, 0x02010613, "c.addi4spn a2, sp, 32"},
    {0x0094, 0x04010693, "c.addi4spn a3, sp, 64"},
    {0x0418, 0x20010713, "c.addi4spn a4, sp, 512"},
    {0x2080, 0x0004b407, "c.fld fs0, 0(s1)"},
    {0x3ffc, 0x0f87b787, "c.fld fa5, 248(a5)"},
    {0x2588, 0x0085b507, "c.fld fa0, 8(a1)"},
    {0x222c, 0x04063587, "c.fld fa1, 64(a2)"},
    {0x22d0, 0x0806b607, "c.fld fa2, 128(a3)"},
    {0x4080, 0x0004a403, "c.lw s0, 0(s1)"},
    {0x5ffc, 0x07c7a783, "c.lw a5, 124(a5)"},
    {0x41c8, 0x0045a503, "c.lw a0, 4(a1)"},
    {0x460c, 0x00862583, "c.lw a1, 8(a2)"},
    {0x42b0, 0x0406a603, "c.lw a2, 64(a3)"},
    {0x6080, 0x0004b403, "c.ld s0, 0(s1)"},
    {0x7ffc, 0x0f87b783, "c.ld a5, 248(a5)"},
    {0x6588, 0x0085b503, "c.ld a0, 8(a1)"},
    {0x622c, 0x04063583, "c.ld a1, 64(a2)"},
    {0x62d0, 0x0806b603, "c.ld a2, 128(a3)"},
    {0xa080, 0x0084b027, "c.fsd fs0, 0(s1)"},
    {0xbffc, 0x0ef7bc27, "c.fsd fa5, 248(a5)"},
    {0xa1a8, 0x04a5b027, "c.fsd fa0, 64(a1)"},
    {0xa24c, 0x08b63027, "c.fsd fa1, 128(a2)"},
    {0xc080, 0x0084a023, "c.sw s0, 0(s1)"},
    {0xdffc, 0x06f7ae23, "c.sw a5, 124(a5)"},
    {0xc1c8, 0x00a5a223, "c.sw a0, 4(a1)"},
    {0xc22c, 0x04b62023, "c.sw a1, 64(a2)"},
    {0xe080, 0x0084b023, "c.sd s0, 0(s1)"},
    {0xfffc, 0x0ef7bc23, "c.sd a5, 248(a5)"},
    {0xe588, 0x00a5b423, "c.sd a0, 8(a1)"},
    {0xe24c, 0x08b63023, "c.sd a1, 128(a2)"},
    {0x0001, 0x00000013, "c.nop"},
    {0x1501, 0xfe050513, "c.addi a0, -32"},
    {0x0ffd, 0x01ff8f93, "c.addi t6, 31"},
    {0x0085, 0x00108093, "c.addi ra, 1"},
    {0x117d, 0xfff10113, "c.addi sp, -1"},
    {0x3501, 0xfe05051b, "c.addiw a0, -32"},
    {0x2ffd, 0x01ff8f9b, "c.addiw t6, 31"},
    {0x2581, 0x0005859b, "c.addiw a1, 0"},
    {0x5501, 0xfe000513, "c.li a0, -32"},
    {0x4ffd, 0x01f00f93, "c.li t6, 31"},
    {0x50fd, 0xfff00093, "c.li ra, -1"},
    {0x7101, 0xe0010113, "c.addi16sp sp, -512"},
    {0x617d, 0x1f010113, "c.addi16sp sp, 496"},
    {0x6141, 0x01010113, "c.addi16sp sp, 16"},
    {0x6105, 0x02010113, "c.addi16sp sp, 32"},
    {0x6121, 0x04010113, "c.addi16sp sp, 64"},
    {0x6109, 0x08010113, "c.addi16sp sp, 128"},
    {0x6111, 0x10010113, "c.addi16sp sp, 256"},
    {0x717d, 0xff010113, "c.addi16sp sp, -16"},
    {0x7501, 0xfffe0537, "c.lui a0, 0xfffe0"},
    {0x6ffd, 0x0001ffb7, "c.lui t6, 31"},
    {0x6085, 0x000010b7, "c.lui ra, 1"},
    {0x71fd, 0xfffff1b7, "c.lui gp, 0xfffff"},
    {0x8005, 0x00145413, "c.srli s0, 1"},
    {0x93fd, 0x03f7d793, "c.srli a5, 63"},
    {0x9101, 0x02055513, "c.srli a0, 32"},
    {0x8405, 0x40145413, "c.srai s0, 1"},
    {0x97fd, 0x43f7d793, "c.srai a5, 63"},
    {0x9501, 0x42055513, "c.srai a0, 32"},
    {0x9801, 0xfe047413, "c.andi s0, -32"},
    {0x8bfd, 0x01f7f793, "c.andi a5, 31"},
    {0x8901, 0x00057513, "c.andi a0, 0"},
    {0x99fd, 0xfff5f593, "c.andi a1, -1"},
    {0x8c1d, 0x40f40433, "c.sub s0, a5"},
    {0x8f81, 0x408787b3, "c.sub a5, s0"},
    {0x8d2d, 0x00b54533, "c.xor a0, a1"},
    {0x8e55, 0x00d66633, "c.or a2, a3"},
    {0x8f65, 0x00977733, "c.and a4, s1"},
    {0x9d1d, 0x40f5053b, "c.subw a0, a5"},
    {0x9cb9, 0x00e484bb, "c.addw s1, a4"},
    {0xaffd, 0x7fe0006f, "c.j .+2046"},
    {0xb001, 0x801ff06f, "c.j .-2048"},
    {0xa009, 0x0020006f, "c.j .+2"},
    {0xbffd, 0xfffff06f, "c.j .-2"},
    {0xa801, 0x0100006f, "c.j .+16"},
    {0xa005, 0x0200006f, "c.j .+32"},
    {0xa081, 0x0400006f, "c.j .+64"},
    {0xa041, 0x0800006f, "c.j .+128"},
    {0xa201, 0x1000006f, "c.j .+256"},
    {0xa401, 0x2000006f, "c.j .+512"},
    {0xa101, 0x4000006f, "c.j .+1024"},
    {0xa021, 0x0080006f, "c.j .+8"},
    {0xa011, 0x0040006f, "c.j .+4"},
    {0xcc7d, 0x0e040f63, "c.beqz s0, .+254"},
    {0xd381, 0xf00780e3, "c.beqz a5, .-256"},
    {0xc109, 0x00050163, "c.beqz a0, .+2"},
    {0xddfd, 0xfe058fe3, "c.beqz a1, .-2"},
    {0xc205, 0x02060063, "c.beqz a2, .+32"},
    {0xc2a1, 0x04068063, "c.beqz a3, .+64"},
    {0xc341, 0x08070063, "c.beqz a4, .+128"},
    {0xec7d, 0x0e041f63, "c.bnez s0, .+254"},
    {0xf381, 0xf00790e3, "c.bnez a5, .-256"},
    {0xe501, 0x00051463, "c.bnez a0, .+8"},
    {0xe981, 0x00059863, "c.bnez a1, .+16"},
    {0xf241, 0xf80610e3, "c.bnez a2, .-128"},
    {0x0086, 0x00109093, "c.slli ra, 1"},
    {0x1ffe, 0x03ff9f93, "c.slli t6, 63"},
    {0x1502, 0x02051513, "c.slli a0, 32"},
    {0x2002, 0x00013007, "c.fldsp ft0, 0(sp)"},
    {0x3ffe, 0x1f813f87, "c.fldsp ft11, 504(sp)"},
    {0x2522, 0x00813507, "c.fldsp fa0, 8(sp)"},
    {0x3582, 0x02013587, "c.fldsp fa1, 32(sp)"},
    {0x2606, 0x04013607, "c.fldsp fa2, 64(sp)"},
    {0x4082, 0x00012083, "c.lwsp ra, 0(sp)"},
    {0x5ffe, 0x0fc12f83, "c.lwsp t6, 252(sp)"},
    {0x4512, 0x00412503, "c.lwsp a0, 4(sp)"},
    {0x5582, 0x02012583, "c.lwsp a1, 32(sp)"},
    {0x4606, 0x04012603, "c.lwsp a2, 64(sp)"},
    {0x6082, 0x00013083, "c.ldsp ra, 0(sp)"},
    {0x7ffe, 0x1f813f83, "c.ldsp t6, 504(sp)"},
    {0x6522, 0x00813503, "c.ldsp a0, 8(sp)"},
    {0x7582, 0x02013583, "c.ldsp a1, 32(sp)"},
    {0x6606, 0x04013603, "c.ldsp a2, 64(sp)"},
    {0x8082, 0x00008067, "c.jr ra"},
    {0x8f82, 0x000f8067, "c.jr t6"},
    {0x852e, 0x00b00533, "c.mv a0, a1"},
    {0x8f86, 0x00100fb3, "c.mv t6, ra"},
    {0x9002, 0x00100073, "c.ebreak"},
    {0x9502, 0x000500e7, "c.jalr a0"},
    {0x9f82, 0x000f80e7, "c.jalr t6"},
    {0x9082, 0x000080e7, "c.jalr ra"},
    {0x952e, 0x00b50533, "c.add a0, a1"},
    {0x9f86, 0x001f8fb3, "c.add t6, ra"},
    {0xa002, 0x00013027, "c.fsdsp ft0, 0(sp)"},
    {0xbffe, 0x1ff13c27, "c.fsdsp ft11, 504(sp)"},
    {0xa42a, 0x00a13427, "c.fsdsp fa0, 8(sp)"},
    {0xa0ae, 0x04b13027, "c.fsdsp fa1, 64(sp)"},
    {0xc006, 0x00112023, "c.swsp ra, 0(sp)"},
    {0xdffe, 0x0ff12e23, "c.swsp t6, 252(sp)"},
    {0xc22a, 0x00a12223, "c.swsp a0, 4(sp)"},
    {0xc0ae, 0x04b12023, "c.swsp a1, 64(sp)"},
    {0xe006, 0x00113023, "c.sdsp ra, 0(sp)"},
    {0xfffe, 0x1ff13c23, "c.sdsp t6, 504(sp)"},
    {0xe42a, 0x00a13423, "c.sdsp a0, 8(sp)"},
    {0xe0ae, 0x04b13023, "c.sdsp a1, 64(sp)"},
    /* HINT encodings expand like their base instruction (rd = x0 or imm 0). */
    {0x0501, 0x00050513, "c.addi a0, 0 (HINT)"},
    {0x4015, 0x00500013, "c.li zero, 5 (HINT)"},
    {0x000e, 0x00301013, "c.slli zero, 3 (HINT)"},
    {0x802e, 0x00b00033, "c.mv zero, a1 (HINT)"},
    {0x902e, 0x00b00033, "c.add zero, a1 (HINT)"},
};

static void test_expand_all_forms(void **state) {
    (void)state;
    for (size_t k = 0; k < N_ELEMS(rvc_cases); k++) {
        uint32_t got = expand_compressed(rvc_cases[k].c);
        if (got != rvc_cases[k].full)
            fail_msg("%s (%#06x): expanded to %#010x, want %#010x", rvc_cases[k].text, rvc_cases[k].c, got,
                     rvc_cases[k].full);
    }
}

/* decode() of a compressed instruction must give exactly what decoding its
 * expansion gives, except len = 2. */
static void test_decode_compressed_matches_expansion(void **state) {
    (void)state;
    for (size_t k = 0; k < N_ELEMS(rvc_cases); k++) {
        struct insn a, b;
        decode(rvc_cases[k].c, &a);
        decode(rvc_cases[k].full, &b);
        if (a.fn == op_illegal) fail_msg("%s decoded to op_illegal", rvc_cases[k].text);
        if (a.fn != b.fn || a.rd != b.rd || a.rs1 != b.rs1 || a.imm != b.imm)
            fail_msg("%s: compressed and expanded decodings differ", rvc_cases[k].text);
        assert_int_equal(a.len, 2);
        assert_int_equal(b.len, 4);
    }
}

/* A few compressed decodings checked field by field. */
static void test_decode_compressed_fields(void **state) {
    (void)state;
    struct insn d;
    decode(0x0001, &d); /* c.nop */
    check_insn(&d, "c.nop", op_addi, 32, 0, ANY, 0, 2);
    decode(0x5501, &d); /* c.li a0, -32 */
    check_insn(&d, "c.li a0, -32", op_addi, 10, 0, ANY, -32, 2);
    decode(0xb001, &d); /* c.j .-2048 */
    check_insn(&d, "c.j .-2048", op_jal, 32, ANY, ANY, -2048, 2);
    decode(0xaffd, &d); /* c.j .+2046 */
    check_insn(&d, "c.j .+2046", op_jal, 32, ANY, ANY, 2046, 2);
    decode(0xd381, &d); /* c.beqz a5, .-256 */
    check_insn(&d, "c.beqz a5, .-256", op_beq, ANY, 15, 0, -256, 2);
    decode(0xec7d, &d); /* c.bnez s0, .+254 */
    check_insn(&d, "c.bnez s0, .+254", op_bne, ANY, 8, 0, 254, 2);
    decode(0x9502, &d); /* c.jalr a0 */
    check_insn(&d, "c.jalr a0", op_jalr, 1, 10, ANY, 0, 2);
    decode(0x8082, &d); /* c.jr ra */
    check_insn(&d, "c.jr ra", op_jalr, 32, 1, ANY, 0, 2);
    decode(0x9002, &d); /* c.ebreak */
    assert_ptr_equal(d.fn, op_ebreak);
    assert_int_equal(d.len, 2);
    decode(0x7501, &d); /* c.lui a0, 0xfffe0 */
    check_insn(&d, "c.lui a0, 0xfffe0", op_lui, 10, ANY, ANY, -131072, 2);
    decode(0x7101, &d); /* c.addi16sp sp, -512 */
    check_insn(&d, "c.addi16sp sp, -512", op_addi, 2, 2, ANY, -512, 2);
    decode(0x1ffc, &d); /* c.addi4spn a5, sp, 1020 */
    check_insn(&d, "c.addi4spn a5, sp, 1020", op_addi, 15, 2, ANY, 1020, 2);
    decode(0x97fd, &d); /* c.srai a5, 63 */
    check_insn(&d, "c.srai a5, 63", op_srai, 15, 15, ANY, 63, 2);
    decode(0xfffe, &d); /* c.sdsp t6, 504(sp) */
    check_insn(&d, "c.sdsp t6, 504(sp)", op_sd, ANY, 2, 31, 504, 2);
    decode(0x9cb9, &d); /* c.addw s1, a4 */
    check_insn(&d, "c.addw s1, a4", op_addw, 9, 9, 14, ANY, 2);
    decode(0x852e, &d); /* c.mv a0, a1 */
    check_insn(&d, "c.mv a0, a1", op_add, 10, 0, 11, ANY, 2);
    /* The upper 16 bits of a compressed parcel's raw word are ignored. */
    decode(0xdead5501, &d);
    check_insn(&d, "c.li a0, -32 with garbage above", op_addi, 10, 0, ANY, -32, 2);
    /* C.FLD: an FP handler with the offset of the expansion. */
    decode(0x3ffc, &d); /* c.fld fa5, 248(a5) */
    assert_int_equal(d.len, 2);
    assert_true(d.fn != op_illegal);
    assert_int_equal(d.imm, 248);
    assert_int_equal(d.rs1, 15);
    assert_int_equal(d.rd, 15);
}

static void test_reserved_compressed(void **state) {
    (void)state;
    static const struct { uint16_t c; const char *why; } r[] = {
        {0x0000, "all zero"},
        {0x0004, "C.ADDI4SPN nzuimm=0, rd'=x9"},
        {0x001c, "C.ADDI4SPN nzuimm=0, rd'=x15"},
        {0x8000, "quadrant 0 funct3 100 (reserved)"},
        {0x9ffc, "quadrant 0 funct3 100 (reserved), other bits set"},
        {0x4002, "C.LWSP rd=0"},
        {0x5072, "C.LWSP rd=0, offset bits set"},
        {0x6002, "C.LDSP rd=0"},
        {0x7072, "C.LDSP rd=0, offset bits set"},
        {0x2001, "C.ADDIW rd=0"},
        {0x307d, "C.ADDIW rd=0, imm -1"},
        {0x6501, "C.LUI a0, imm 0"},
        {0x6081, "C.LUI ra, imm 0"},
        {0x6101, "C.ADDI16SP imm 0"},
        {0x8002, "C.JR rs1=0"},
        {0x9c41, "quadrant 1 funct6 100111 funct2 10 (reserved)"},
        {0x9c61, "quadrant 1 funct6 100111 funct2 11 (reserved)"},
    };
    for (size_t k = 0; k < N_ELEMS(r); k++) {
        uint32_t got = expand_compressed(r[k].c);
        if (got != 0) fail_msg("%#06x (%s) expanded to %#010x, want 0", r[k].c, r[k].why, got);
        struct insn d;
        memset(&d, 0x5a, sizeof d);
        decode(r[k].c, &d);
        if (d.fn != op_illegal) fail_msg("%#06x (%s) did not decode to op_illegal", r[k].c, r[k].why);
        assert_int_equal(d.imm, r[k].c);
        assert_int_equal(d.len, 2);
    }
    /* Upper bits of the raw word do not leak into imm. */
    struct insn d;
    decode(0xffff0000, &d);
    assert_ptr_equal(d.fn, op_illegal);
    assert_int_equal(d.imm, 0);
    assert_int_equal(d.len, 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upper_and_jumps),
        cmocka_unit_test(test_branches),
        cmocka_unit_test(test_loads_stores),
        cmocka_unit_test(test_op_imm),
        cmocka_unit_test(test_op_reg),
        cmocka_unit_test(test_atomics),
        cmocka_unit_test(test_system),
        cmocka_unit_test(test_fp_routing),
        cmocka_unit_test(test_illegal_32),
        cmocka_unit_test(test_expand_all_forms),
        cmocka_unit_test(test_decode_compressed_matches_expansion),
        cmocka_unit_test(test_decode_compressed_fields),
        cmocka_unit_test(test_reserved_compressed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
