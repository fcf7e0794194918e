/* Unit tests of the F and D extensions (src/hart/exec_fp.c): instructions
 * are built from real encodings with decode_fp and run on a bare hart; every
 * result is checked bit for bit together with fflags.
 *
 * Standalone build (no rest of the core):
 *   gcc -std=gnu17 -O2 -Wall -Wextra -Isrc -DFP_TEST_STANDALONE \
 *       tests/unit/test_fp.c src/hart/exec_fp.c -lcmocka -lm
 * In the meson build it links with the real core, so nothing here may rely
 * on the stubs below except the load/store tests, which are standalone only. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fenv.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hart/exec_fp.h"
#include "hart/hart.h"
#include "hart/mem.h"

#define PC0 0x1000u
#define BOX 0xffffffff00000000ull
#define CANON_S 0x7fc00000u
#define CANON_D 0x7ff8000000000000ull

enum { NX = FP_FLAG_NX, UF = FP_FLAG_UF, OF = FP_FLAG_OF, DZ = FP_FLAG_DZ, NV = FP_FLAG_NV };
enum { RNE = FP_RM_RNE, RTZ = FP_RM_RTZ, RDN = FP_RM_RDN, RUP = FP_RM_RUP, RMM = FP_RM_RMM, DYN = FP_RM_DYN };

/* funct5 of OP-FP */
enum {
    F5_ADD = 0x00, F5_SUB = 0x01, F5_MUL = 0x02, F5_DIV = 0x03, F5_SGNJ = 0x04, F5_MINMAX = 0x05,
    F5_CVT_FF = 0x08, F5_SQRT = 0x0b, F5_CMP = 0x14, F5_CVT_XF = 0x18, F5_CVT_FX = 0x1a,
    F5_MV_XF = 0x1c, F5_MV_FX = 0x1e,
};
enum { OPC_MADD = 0x43, OPC_MSUB = 0x47, OPC_NMSUB = 0x4b, OPC_NMADD = 0x4f };
enum { S = 0, D = 1 };

/* ------------------------------------------------------------------ */
/* Stubs for the standalone build */

#ifdef FP_TEST_STANDALONE
#define MEM_BASE 0x20000u
static uint8_t test_mem[256];

void hart_raise(struct hart *h, uint64_t cause, uint64_t tval) {
    h->mcause = cause;
    h->mtval = tval;
}

bool mem_load_slow(struct hart *h, uint64_t va, unsigned size, uint64_t *val) {
    if (va < MEM_BASE || va + size > MEM_BASE + sizeof test_mem) {
        hart_raise(h, EXC_LOAD_ACCESS, va);
        return false;
    }
    uint64_t v = 0;
    memcpy(&v, test_mem + (va - MEM_BASE), size);
    *val = v;
    return true;
}

bool mem_store_slow(struct hart *h, uint64_t va, unsigned size, uint64_t val) {
    if (va < MEM_BASE || va + size > MEM_BASE + sizeof test_mem) {
        hart_raise(h, EXC_STORE_ACCESS, va);
        return false;
    }
    memcpy(test_mem + (va - MEM_BASE), &val, size);
    return true;
}
#endif

/* ------------------------------------------------------------------ */
/* Harness */

static struct hart *new_hart(void) {
    struct hart *h = calloc(1, sizeof *h);
    assert_non_null(h);
    h->mstatus = 1ull << MSTATUS_FS_SHIFT; /* FS = Initial */
    h->priv = PRIV_S;
    h->mtvec = 0x8000; /* a trap (real hart_raise) moves pc there */
    h->stvec = 0x9000;
    h->pc = PC0;
#ifdef FP_TEST_STANDALONE
    struct tlb_set *t = malloc(sizeof *t);
    assert_non_null(t);
    for (unsigned k = 0; k < TLB_SIZE; k++) {
        t->read[k].tag = t->write[k].tag = t->fetch[k].tag = TLB_INVALID;
        t->read[k].addend = t->write[k].addend = t->fetch[k].addend = 0;
        t->fetch[k].code = NULL;
    }
    h->dtlb = h->itlb = t;
#endif
    return h;
}

static void free_hart(struct hart *h) {
#ifdef FP_TEST_STANDALONE
    free(h->dtlb);
#endif
    free(h);
}

static uint32_t opfp(unsigned f5, unsigned fmt, unsigned rm, unsigned rd, unsigned rs1, unsigned rs2) {
    return f5 << 27 | fmt << 25 | rs2 << 20 | rs1 << 15 | rm << 12 | rd << 7 | 0x53;
}
static uint32_t r4(unsigned opc, unsigned fmt, unsigned rm, unsigned rd, unsigned rs1, unsigned rs2, unsigned rs3) {
    return rs3 << 27 | fmt << 25 | rs2 << 20 | rs1 << 15 | rm << 12 | rd << 7 | opc;
}
static uint32_t itype(int imm, unsigned rs1, unsigned f3, unsigned rd, unsigned opc) {
    return ((uint32_t)imm & 0xfff) << 20 | rs1 << 15 | f3 << 12 | rd << 7 | opc;
}
static uint32_t stype(int imm, unsigned rs2, unsigned rs1, unsigned f3, unsigned opc) {
    uint32_t u = (uint32_t)imm & 0xfff;
    return (u >> 5) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | (u & 31) << 7 | opc;
}

static struct insn dec(uint32_t raw) {
    struct insn in;
    memset(&in, 0, sizeof in);
    assert_true(decode_fp(raw, &in));
    in.len = 4;
    return in;
}

/* Runs one instruction at PC0; returns true if it completed. */
static bool run(struct hart *h, uint32_t raw) {
    struct insn in = dec(raw);
    h->pc = PC0;
    h->mcause = 99;
    in.fn(h, &in);
    return h->pc == PC0 + 4;
}

static void run_ok(struct hart *h, uint32_t raw) { assert_true(run(h, raw)); }

static void run_illegal(struct hart *h, uint32_t raw) {
    assert_false(run(h, raw));
    assert_int_equal(h->mcause, EXC_ILLEGAL_INSN);
}

/* Operands in f1, f2, f3 (rs1, rs2, rs3); result in f4. */
static uint64_t run_f(struct hart *h, uint32_t raw, uint64_t a, uint64_t b, uint64_t c, uint32_t *fl) {
    h->f[1] = a;
    h->f[2] = b;
    h->f[3] = c;
    h->f[4] = 0x0123456789abcdefull;
    h->fflags = 0;
    run_ok(h, raw);
    *fl = h->fflags;
    return h->f[4];
}

/* The same with single operands, boxed; checks that the result is boxed. */
static uint32_t run_s(struct hart *h, uint32_t raw, uint32_t a, uint32_t b, uint32_t c, uint32_t *fl) {
    uint64_t r = run_f(h, raw, BOX | a, BOX | b, BOX | c, fl);
    assert_int_equal(r >> 32, 0xffffffffu);
    return (uint32_t)r;
}

#define CHECK(expr, expect, eflags)                   \
    do {                                              \
        uint32_t fl_;                                 \
        uint64_t r_ = (expr);                         \
        assert_int_equal(r_, (uint64_t)(expect));     \
        assert_int_equal(fl_, (uint32_t)(eflags));    \
    } while (0)

/* Binary OP-FP (f4 = f1 op f2), ternary fused (f4 = f1 * f2 +- f3). */
#define BIN_S(f5, rm, a, b) run_s(h, opfp(f5, S, rm, 4, 1, 2), a, b, 0, &fl_)
#define BIN_D(f5, rm, a, b) run_f(h, opfp(f5, D, rm, 4, 1, 2), a, b, 0, &fl_)
#define UN_S(f5, rs2, rm, a) run_s(h, opfp(f5, S, rm, 4, 1, rs2), a, 0, 0, &fl_)
#define UN_D(f5, rs2, rm, a) run_f(h, opfp(f5, D, rm, 4, 1, rs2), a, 0, 0, &fl_)
#define FMA_S(opc, rm, a, b, c) run_s(h, r4(opc, S, rm, 4, 1, 2, 3), a, b, c, &fl_)
#define FMA_D(opc, rm, a, b, c) run_f(h, r4(opc, D, rm, 4, 1, 2, 3), a, b, c, &fl_)

/* FP -> integer register: x5 = op(f1[, f2]) */
static uint64_t run_x(struct hart *h, uint32_t raw, uint64_t a, uint64_t b, uint32_t *fl) {
    h->f[1] = a;
    h->f[2] = b;
    h->x[5] = 0x5555;
    h->fflags = 0;
    run_ok(h, raw);
    *fl = h->fflags;
    return h->x[5];
}
#define TOX_S(f5, f3, rs2, a, b) run_x(h, opfp(f5, S, f3, 5, 1, rs2), BOX | (a), BOX | (b), &fl_)
#define TOX_D(f5, f3, rs2, a, b) run_x(h, opfp(f5, D, f3, 5, 1, rs2), a, b, &fl_)

/* Integer register -> FP: f4 = op(x6) */
static uint64_t run_fx(struct hart *h, uint32_t raw, uint64_t x, uint32_t *fl) {
    h->x[6] = x;
    h->f[4] = 0;
    h->fflags = 0;
    run_ok(h, raw);
    *fl = h->fflags;
    return h->f[4];
}
#define FROMX_S(f5, rs2, rm, x) run_fx(h, opfp(f5, S, rm, 4, 6, rs2), x, &fl_)
#define FROMX_D(f5, rs2, rm, x) run_fx(h, opfp(f5, D, rm, 4, 6, rs2), x, &fl_)

static uint64_t bd(double d) {
    uint64_t b;
    memcpy(&b, &d, 8);
    return b;
}
static uint32_t bs(float f) {
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
}

/* ------------------------------------------------------------------ */
/* Decoding */

static void test_decode(void **state) {
    (void)state;
    struct insn in;
    /* reserved formats, widths and selectors */
    assert_false(decode_fp(opfp(F5_ADD, 2, 0, 1, 2, 3), &in));        /* fmt H */
    assert_false(decode_fp(opfp(F5_ADD, 3, 0, 1, 2, 3), &in));        /* fmt Q */
    assert_false(decode_fp(r4(OPC_MADD, 2, 0, 1, 2, 3, 4), &in));
    assert_false(decode_fp(itype(0, 1, 1, 2, 0x07), &in));            /* FLH */
    assert_false(decode_fp(itype(0, 1, 4, 2, 0x07), &in));            /* FLQ */
    assert_false(decode_fp(stype(0, 1, 2, 0, 0x27), &in));
    assert_false(decode_fp(opfp(F5_SQRT, S, 0, 1, 2, 1), &in));       /* rs2 != 0 */
    assert_false(decode_fp(opfp(F5_CVT_FF, S, 0, 1, 2, 0), &in));     /* FCVT.S.S */
    assert_false(decode_fp(opfp(F5_CVT_FF, D, 0, 1, 2, 1), &in));     /* FCVT.D.D */
    assert_false(decode_fp(opfp(F5_CVT_FF, S, 0, 1, 2, 3), &in));
    assert_false(decode_fp(opfp(F5_CVT_XF, S, 0, 1, 2, 4), &in));
    assert_false(decode_fp(opfp(F5_CVT_FX, D, 0, 1, 2, 5), &in));
    assert_false(decode_fp(opfp(F5_SGNJ, S, 3, 1, 2, 3), &in));
    assert_false(decode_fp(opfp(F5_MINMAX, D, 2, 1, 2, 3), &in));
    assert_false(decode_fp(opfp(F5_CMP, S, 3, 1, 2, 3), &in));
    assert_false(decode_fp(opfp(F5_MV_XF, S, 2, 1, 2, 0), &in));
    assert_false(decode_fp(opfp(F5_MV_XF, D, 0, 1, 2, 1), &in));
    assert_false(decode_fp(opfp(F5_MV_FX, S, 1, 1, 2, 0), &in));
    assert_false(decode_fp(opfp(0x06, S, 0, 1, 2, 3), &in));
    assert_false(decode_fp(0x00000013, &in));                         /* addi: not ours */

    /* static rm 5/6/7 decode (checked at run time) */
    assert_true(decode_fp(opfp(F5_ADD, D, 5, 1, 2, 3), &in));
    assert_int_equal(in.rm, 5);
    assert_true(decode_fp(opfp(F5_ADD, D, 7, 1, 2, 3), &in));
    assert_int_equal(in.rm, 7);

    /* operand fields and the x0 sink for integer destinations */
    in = dec(opfp(F5_ADD, S, 0, 0, 2, 3));
    assert_int_equal(in.rd, 0);
    assert_int_equal(in.rs1, 2);
    assert_int_equal(in.rs2, 3);
    in = dec(opfp(F5_CMP, S, 2, 0, 2, 3));
    assert_int_equal(in.rd, 32);
    in = dec(opfp(F5_CMP, D, 2, 7, 2, 3));
    assert_int_equal(in.rd, 7);
    assert_int_equal(dec(opfp(F5_MV_XF, S, 0, 0, 2, 0)).rd, 32);
    assert_int_equal(dec(opfp(F5_MV_XF, D, 1, 0, 2, 0)).rd, 32); /* FCLASS.D */
    assert_int_equal(dec(opfp(F5_CVT_XF, D, 1, 0, 2, 3)).rd, 32);
    assert_int_equal(dec(opfp(F5_CVT_FX, D, 1, 0, 2, 3)).rd, 0);
    assert_int_equal(dec(opfp(F5_MV_FX, D, 0, 0, 2, 0)).rd, 0);
    in = dec(r4(OPC_NMADD, D, 3, 9, 10, 11, 12));
    assert_int_equal(in.rd, 9);
    assert_int_equal(in.rs1, 10);
    assert_int_equal(in.rs2, 11);
    assert_int_equal(in.rs3, 12);
    assert_int_equal(in.rm, 3);
    in = dec(itype(-4, 8, 2, 9, 0x07));
    assert_int_equal(in.imm, -4);
    assert_int_equal(in.rs1, 8);
    assert_int_equal(in.rd, 9);
    in = dec(stype(-2048, 9, 8, 3, 0x27));
    assert_int_equal(in.imm, -2048);
    assert_int_equal(in.rs1, 8);
    assert_int_equal(in.rs2, 9);
    in = dec(stype(2047, 9, 8, 2, 0x27));
    assert_int_equal(in.imm, 2047);
    /* real encodings from the assembler */
    assert_true(decode_fp(0x02b57553, &in)); /* fadd.d fa0,fa0,fa1 */
    assert_true(decode_fp(0x0005a507, &in)); /* flw fa0,0(a1) */
    assert_int_equal(in.rd, 10);
    assert_int_equal(in.rs1, 11);
    assert_true(decode_fp(0xe2050553, &in)); /* fmv.x.d a0,fa0 */
    assert_int_equal(in.rd, 10);
}

/* ------------------------------------------------------------------ */
/* Rounding modes */

static void test_rounding_add(void **state) {
    (void)state;
    struct hart *h = new_hart();
    const uint32_t one = 0x3f800000, half_ulp = 0x33800000; /* 1.0, 2^-24 */
    /* 1 + 2^-24: a tie between 1 (even) and 1 + 2^-23 */
    CHECK(BIN_S(F5_ADD, RNE, one, half_ulp), 0x3f800000, NX);
    CHECK(BIN_S(F5_ADD, RTZ, one, half_ulp), 0x3f800000, NX);
    CHECK(BIN_S(F5_ADD, RDN, one, half_ulp), 0x3f800000, NX);
    CHECK(BIN_S(F5_ADD, RUP, one, half_ulp), 0x3f800001, NX);
    CHECK(BIN_S(F5_ADD, RMM, one, half_ulp), 0x3f800001, NX);
    /* the same through frm */
    const uint32_t expect[5] = {0x3f800000, 0x3f800000, 0x3f800000, 0x3f800001, 0x3f800001};
    for (unsigned rm = 0; rm < 5; rm++) {
        h->frm = rm;
        CHECK(BIN_S(F5_ADD, DYN, one, half_ulp), expect[rm], NX);
    }
    /* (1 + 2^-23) + 2^-24: a tie with the odd neighbour below */
    CHECK(BIN_S(F5_ADD, RNE, 0x3f800001, half_ulp), 0x3f800002, NX);
    CHECK(BIN_S(F5_ADD, RTZ, 0x3f800001, half_ulp), 0x3f800001, NX);
    CHECK(BIN_S(F5_ADD, RDN, 0x3f800001, half_ulp), 0x3f800001, NX);
    CHECK(BIN_S(F5_ADD, RUP, 0x3f800001, half_ulp), 0x3f800002, NX);
    CHECK(BIN_S(F5_ADD, RMM, 0x3f800001, half_ulp), 0x3f800002, NX);
    /* negative tie: -1 - 2^-24 */
    CHECK(BIN_S(F5_ADD, RNE, 0xbf800000, 0xb3800000), 0xbf800000, NX);
    CHECK(BIN_S(F5_ADD, RTZ, 0xbf800000, 0xb3800000), 0xbf800000, NX);
    CHECK(BIN_S(F5_ADD, RDN, 0xbf800000, 0xb3800000), 0xbf800001, NX);
    CHECK(BIN_S(F5_ADD, RUP, 0xbf800000, 0xb3800000), 0xbf800000, NX);
    CHECK(BIN_S(F5_ADD, RMM, 0xbf800000, 0xb3800000), 0xbf800001, NX);
    /* not a tie: 1 + 0.75 ulp */
    CHECK(BIN_S(F5_ADD, RNE, one, 0x33c00000), 0x3f800001, NX);
    CHECK(BIN_S(F5_ADD, RTZ, one, 0x33c00000), 0x3f800000, NX);
    CHECK(BIN_S(F5_ADD, RDN, one, 0x33c00000), 0x3f800000, NX);
    CHECK(BIN_S(F5_ADD, RUP, one, 0x33c00000), 0x3f800001, NX);
    CHECK(BIN_S(F5_ADD, RMM, one, 0x33c00000), 0x3f800001, NX);
    /* exact: no flags in any mode */
    for (unsigned rm = 0; rm < 5; rm++) CHECK(BIN_S(F5_ADD, rm, one, one), 0x40000000, 0);
    /* x + (-x) is +0, except -0 when rounding down */
    CHECK(BIN_S(F5_SUB, RNE, one, one), 0x00000000, 0);
    CHECK(BIN_S(F5_SUB, RMM, one, one), 0x00000000, 0);
    CHECK(BIN_S(F5_SUB, RDN, one, one), 0x80000000, 0);
    CHECK(BIN_D(F5_SUB, RDN, bd(1.0), bd(1.0)), 0x8000000000000000ull, 0);

    /* double: 1 + 2^-53 */
    const uint64_t d1 = 0x3ff0000000000000ull, dh = 0x3ca0000000000000ull;
    CHECK(BIN_D(F5_ADD, RNE, d1, dh), d1, NX);
    CHECK(BIN_D(F5_ADD, RTZ, d1, dh), d1, NX);
    CHECK(BIN_D(F5_ADD, RDN, d1, dh), d1, NX);
    CHECK(BIN_D(F5_ADD, RUP, d1, dh), d1 + 1, NX);
    CHECK(BIN_D(F5_ADD, RMM, d1, dh), d1 + 1, NX);
    /* 1 - 2^-54: a tie between 1 - 2^-53 and 1: RMM takes the larger magnitude (1) */
    const uint64_t dq = 0x3c90000000000000ull; /* 2^-54 */
    CHECK(BIN_D(F5_SUB, RNE, d1, dq), d1, NX);
    CHECK(BIN_D(F5_SUB, RTZ, d1, dq), 0x3fefffffffffffffull, NX);
    CHECK(BIN_D(F5_SUB, RDN, d1, dq), 0x3fefffffffffffffull, NX);
    CHECK(BIN_D(F5_SUB, RUP, d1, dq), d1, NX);
    CHECK(BIN_D(F5_SUB, RMM, d1, dq), d1, NX);
    /* (1 + 2^-52) - 2^-53 ... + 2^-53 on the odd side: 1 + 3*2^-53 */
    CHECK(BIN_D(F5_ADD, RNE, d1 + 1, dh), d1 + 2, NX);
    CHECK(BIN_D(F5_ADD, RMM, d1 + 1, dh), d1 + 2, NX);
    CHECK(BIN_D(F5_ADD, RTZ, d1 + 1, dh), d1 + 1, NX);
    free_hart(h);
}

static void test_rounding_mul_div_sqrt(void **state) {
    (void)state;
    struct hart *h = new_hart();
    /* (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24: a tie, even neighbour below */
    const uint32_t a = 0x3f800800;
    CHECK(BIN_S(F5_MUL, RNE, a, a), 0x3f801000, NX);
    CHECK(BIN_S(F5_MUL, RTZ, a, a), 0x3f801000, NX);
    CHECK(BIN_S(F5_MUL, RDN, a, a), 0x3f801000, NX);
    CHECK(BIN_S(F5_MUL, RUP, a, a), 0x3f801001, NX);
    CHECK(BIN_S(F5_MUL, RMM, a, a), 0x3f801001, NX);
    CHECK(BIN_S(F5_MUL, RMM, a | 0x80000000, a), 0xbf801001, NX);
    CHECK(BIN_S(F5_MUL, RDN, a | 0x80000000, a), 0xbf801001, NX);
    CHECK(BIN_S(F5_MUL, RUP, a | 0x80000000, a), 0xbf801000, NX);
    /* double: (1 + 2^-27)(1 + 2^-26) = 1 + 3*2^-27 + 2^-53 */
    const uint64_t ad = 0x3ff0000002000000ull, bd2 = 0x3ff0000004000000ull;
    CHECK(BIN_D(F5_MUL, RNE, ad, bd2), 0x3ff0000006000000ull, NX);
    CHECK(BIN_D(F5_MUL, RTZ, ad, bd2), 0x3ff0000006000000ull, NX);
    CHECK(BIN_D(F5_MUL, RDN, ad, bd2), 0x3ff0000006000000ull, NX);
    CHECK(BIN_D(F5_MUL, RUP, ad, bd2), 0x3ff0000006000001ull, NX);
    CHECK(BIN_D(F5_MUL, RMM, ad, bd2), 0x3ff0000006000001ull, NX);
    CHECK(BIN_D(F5_MUL, RMM, ad, bd2 | 1ull << 63), 0xbff0000006000001ull, NX);
    CHECK(BIN_D(F5_MUL, RUP, ad, bd2 | 1ull << 63), 0xbff0000006000000ull, NX);

    /* division ties exist only among subnormals: 2^-149 / 2 */
    const uint32_t two = 0x40000000;
    CHECK(BIN_S(F5_DIV, RNE, 0x00000001, two), 0x00000000, UF | NX);
    CHECK(BIN_S(F5_DIV, RTZ, 0x00000001, two), 0x00000000, UF | NX);
    CHECK(BIN_S(F5_DIV, RDN, 0x00000001, two), 0x00000000, UF | NX);
    CHECK(BIN_S(F5_DIV, RUP, 0x00000001, two), 0x00000001, UF | NX);
    CHECK(BIN_S(F5_DIV, RMM, 0x00000001, two), 0x00000001, UF | NX);
    /* 3*2^-149 / 2: a tie between 1 and 2 units */
    CHECK(BIN_S(F5_DIV, RNE, 0x00000003, two), 0x00000002, UF | NX);
    CHECK(BIN_S(F5_DIV, RTZ, 0x00000003, two), 0x00000001, UF | NX);
    CHECK(BIN_S(F5_DIV, RMM, 0x00000003, two), 0x00000002, UF | NX);
    CHECK(BIN_S(F5_DIV, RDN, 0x80000003, two), 0x80000002, UF | NX);
    CHECK(BIN_S(F5_DIV, RUP, 0x80000003, two), 0x80000001, UF | NX);
    CHECK(BIN_S(F5_DIV, RMM, 0x80000003, two), 0x80000002, UF | NX);
    /* 5*2^-149 / 2 = 2.5 units: RNE 2, RMM 3 */
    CHECK(BIN_S(F5_DIV, RNE, 0x00000005, two), 0x00000002, UF | NX);
    CHECK(BIN_S(F5_DIV, RMM, 0x00000005, two), 0x00000003, UF | NX);
    /* double: 2^-1074 / 2 */
    CHECK(BIN_D(F5_DIV, RNE, 1, bd(2.0)), 0, UF | NX);
    CHECK(BIN_D(F5_DIV, RMM, 1, bd(2.0)), 1, UF | NX);
    CHECK(BIN_D(F5_DIV, RMM, 0x8000000000000005ull, bd(2.0)), 0x8000000000000003ull, UF | NX);
    /* 1/3 */
    const uint64_t third = 0x3fd5555555555555ull;
    CHECK(BIN_D(F5_DIV, RNE, bd(1.0), bd(3.0)), third, NX);
    CHECK(BIN_D(F5_DIV, RTZ, bd(1.0), bd(3.0)), third, NX);
    CHECK(BIN_D(F5_DIV, RDN, bd(1.0), bd(3.0)), third, NX);
    CHECK(BIN_D(F5_DIV, RUP, bd(1.0), bd(3.0)), third + 1, NX);
    CHECK(BIN_D(F5_DIV, RMM, bd(1.0), bd(3.0)), third, NX);
    CHECK(BIN_D(F5_DIV, RDN, bd(-1.0), bd(3.0)), (third | 1ull << 63) + 1, NX);
    CHECK(BIN_D(F5_DIV, RUP, bd(-1.0), bd(3.0)), third | 1ull << 63, NX);
    CHECK(BIN_D(F5_DIV, RNE, bd(1.0), bd(4.0)), bd(0.25), 0);
    /* division by zero */
    CHECK(BIN_D(F5_DIV, RNE, bd(1.0), 0), 0x7ff0000000000000ull, DZ);
    CHECK(BIN_D(F5_DIV, RNE, bd(-1.0), 0), 0xfff0000000000000ull, DZ);
    CHECK(BIN_S(F5_DIV, RTZ, 0x3f800000, 0x80000000), 0xff800000, DZ);
    CHECK(BIN_D(F5_DIV, RNE, 0x7ff0000000000000ull, 0), 0x7ff0000000000000ull, 0);

    /* sqrt(2) = 0x3ff6a09e667f3bcd rounded up in RNE */
    const uint64_t r2 = 0x3ff6a09e667f3bcdull;
    CHECK(UN_D(F5_SQRT, 0, RNE, bd(2.0)), r2, NX);
    CHECK(UN_D(F5_SQRT, 0, RTZ, bd(2.0)), r2 - 1, NX);
    CHECK(UN_D(F5_SQRT, 0, RDN, bd(2.0)), r2 - 1, NX);
    CHECK(UN_D(F5_SQRT, 0, RUP, bd(2.0)), r2, NX);
    CHECK(UN_D(F5_SQRT, 0, RMM, bd(2.0)), r2, NX);
    CHECK(UN_S(F5_SQRT, 0, RNE, 0x40000000), 0x3fb504f3, NX);
    CHECK(UN_S(F5_SQRT, 0, RUP, 0x40000000), 0x3fb504f4, NX);
    CHECK(UN_S(F5_SQRT, 0, RMM, 0x40000000), 0x3fb504f3, NX);
    CHECK(UN_S(F5_SQRT, 0, RMM, 0x40800000), 0x40000000, 0);
    CHECK(UN_D(F5_SQRT, 0, RNE, 0x8000000000000000ull), 0x8000000000000000ull, 0); /* sqrt(-0) = -0 */
    CHECK(UN_D(F5_SQRT, 0, RNE, bd(-1.0)), CANON_D, NV);
    CHECK(UN_S(F5_SQRT, 0, RMM, 0xbf800000), CANON_S, NV);
    CHECK(UN_S(F5_SQRT, 0, RNE, 0xff800000), CANON_S, NV);
    CHECK(UN_S(F5_SQRT, 0, RNE, 0x7f800000), 0x7f800000, 0);
    CHECK(UN_D(F5_SQRT, 0, RMM, 1), 0x1e60000000000000ull, 0); /* sqrt(2^-1074) = 2^-537 */
    free_hart(h);
}

/* ------------------------------------------------------------------ */
/* Fused multiply-add */

static void test_fma(void **state) {
    (void)state;
    struct hart *h = new_hart();
    const uint32_t a = 0x3f800800; /* 1 + 2^-12 */
    /* fused: (1 + 2^-11 + 2^-24) - (1 + 2^-11) = 2^-24 exactly */
    CHECK(FMA_S(OPC_MADD, RNE, a, a, 0xbf801000), 0x33800000, 0);
    CHECK(FMA_S(OPC_MSUB, RNE, a, a, 0x3f801000), 0x33800000, 0);
    CHECK(FMA_S(OPC_NMSUB, RNE, a, a, 0x3f801000), 0xb3800000, 0);
    CHECK(FMA_S(OPC_NMADD, RNE, a, a, 0xbf801000), 0xb3800000, 0);
    /* a tie through fma: (1 + 2^-12)^2 + 0 */
    CHECK(FMA_S(OPC_MADD, RNE, a, a, 0), 0x3f801000, NX);
    CHECK(FMA_S(OPC_MADD, RMM, a, a, 0), 0x3f801001, NX);
    CHECK(FMA_S(OPC_MADD, RUP, a, a, 0), 0x3f801001, NX);
    CHECK(FMA_S(OPC_MADD, RTZ, a, a, 0), 0x3f801000, NX);
    CHECK(FMA_S(OPC_NMADD, RMM, a, a, 0), 0xbf801001, NX);
    CHECK(FMA_S(OPC_NMADD, RDN, a, a, 0), 0xbf801001, NX);
    CHECK(FMA_S(OPC_NMADD, RUP, a, a, 0), 0xbf801000, NX);
    CHECK(FMA_S(OPC_NMSUB, RUP, a, a, 0), 0xbf801000, NX);
    const uint64_t ad = 0x3ff0000002000000ull, bd2 = 0x3ff0000004000000ull; /* 1 + 2^-27, 1 + 2^-26 */
    CHECK(FMA_D(OPC_MADD, RNE, ad, bd2, 0), 0x3ff0000006000000ull, NX);
    CHECK(FMA_D(OPC_MADD, RMM, ad, bd2, 0), 0x3ff0000006000001ull, NX);
    CHECK(FMA_D(OPC_MADD, RDN, ad, bd2, 0), 0x3ff0000006000000ull, NX);
    CHECK(FMA_D(OPC_MSUB, RMM, ad, bd2, 0x8000000000000000ull), 0x3ff0000006000001ull, NX);
    /* RMM tie with a nonzero addend: (1 + 2^-27)(1 + 2^-26) - 3*2^-27 = 1 + 2^-53,
     * half way between 1 and 1 + 2^-52 */
    CHECK(FMA_D(OPC_MADD, RNE, ad, bd2, bd(-0x1.8p-26)), 0x3ff0000000000000ull, NX);
    CHECK(FMA_D(OPC_MADD, RMM, ad, bd2, bd(-0x1.8p-26)), 0x3ff0000000000001ull, NX);
    CHECK(FMA_D(OPC_MADD, RTZ, ad, bd2, bd(-0x1.8p-26)), 0x3ff0000000000000ull, NX);
    CHECK(FMA_D(OPC_MADD, RUP, ad, bd2, bd(-0x1.8p-26)), 0x3ff0000000000001ull, NX);
    CHECK(FMA_D(OPC_NMSUB, RMM, ad, bd2, bd(0x1.8p-26)), 0xbff0000000000001ull, NX);
    CHECK(FMA_D(OPC_NMSUB, RDN, ad, bd2, bd(0x1.8p-26)), 0xbff0000000000001ull, NX);
    CHECK(FMA_D(OPC_NMSUB, RUP, ad, bd2, bd(0x1.8p-26)), 0xbff0000000000000ull, NX);
    /* signs of the four forms */
    const uint64_t two = bd(2.0), three = bd(3.0), one = bd(1.0);
    CHECK(FMA_D(OPC_MADD, RNE, two, three, one), bd(7.0), 0);
    CHECK(FMA_D(OPC_MSUB, RNE, two, three, one), bd(5.0), 0);
    CHECK(FMA_D(OPC_NMSUB, RNE, two, three, one), bd(-5.0), 0);
    CHECK(FMA_D(OPC_NMADD, RNE, two, three, one), bd(-7.0), 0);
    CHECK(FMA_S(OPC_NMSUB, RNE, bs(2.0f), bs(3.0f), bs(1.0f)), bs(-5.0f), 0);
    CHECK(FMA_S(OPC_NMADD, RNE, bs(2.0f), bs(3.0f), bs(1.0f)), bs(-7.0f), 0);
    /* signed zeros: FNMADD is (-(a*b)) - c, not -(a*b + c) */
    const uint64_t pz = 0, nz = 0x8000000000000000ull;
    CHECK(FMA_D(OPC_NMADD, RNE, one, pz, nz), pz, 0);
    CHECK(FMA_D(OPC_NMADD, RDN, one, pz, nz), nz, 0);
    CHECK(FMA_D(OPC_NMADD, RNE, one, pz, pz), nz, 0);
    CHECK(FMA_D(OPC_NMSUB, RNE, one, pz, pz), pz, 0);
    CHECK(FMA_D(OPC_NMSUB, RDN, one, pz, pz), nz, 0);
    CHECK(FMA_D(OPC_NMSUB, RNE, one, pz, nz), nz, 0);
    CHECK(FMA_D(OPC_MSUB, RNE, one, pz, pz), pz, 0);
    CHECK(FMA_D(OPC_MSUB, RDN, one, pz, pz), nz, 0);
    CHECK(FMA_D(OPC_MADD, RNE, one, pz, nz), pz, 0);
    CHECK(FMA_D(OPC_MADD, RMM, one, pz, nz), pz, 0);
    CHECK(FMA_D(OPC_MADD, RDN, one, pz, nz), nz, 0);
    CHECK(FMA_S(OPC_NMADD, RNE, 0x3f800000, 0, 0x80000000), 0, 0);
    CHECK(FMA_S(OPC_NMADD, RDN, 0x3f800000, 0, 0x80000000), 0x80000000, 0);

    /* invalid: inf * 0 + anything, even a quiet NaN */
    const uint64_t inf = 0x7ff0000000000000ull, qnan = 0x7ff8000000000123ull, snan = 0x7ff0000000000001ull;
    CHECK(FMA_D(OPC_MADD, RNE, inf, pz, qnan), CANON_D, NV);
    CHECK(FMA_D(OPC_MADD, RNE, nz, inf, qnan), CANON_D, NV);
    CHECK(FMA_D(OPC_NMADD, RNE, inf, pz, one), CANON_D, NV);
    CHECK(FMA_D(OPC_MSUB, RMM, pz, inf | nz, one), CANON_D, NV);
    CHECK(FMA_S(OPC_MADD, RNE, 0x7f800000, 0, CANON_S), CANON_S, NV);
    CHECK(FMA_S(OPC_NMSUB, RNE, 0x80000000, 0xff800000, 0x7fc01234), CANON_S, NV);
    /* inf - inf after the product */
    CHECK(FMA_D(OPC_MADD, RNE, inf, one, inf | nz), CANON_D, NV);
    CHECK(FMA_D(OPC_MSUB, RNE, inf, one, inf), CANON_D, NV);
    CHECK(FMA_D(OPC_MADD, RNE, inf, one, inf), inf, 0);
    /* NaN operands: quiet ones propagate quietly, signaling ones raise NV */
    CHECK(FMA_D(OPC_MADD, RNE, one, one, qnan), CANON_D, 0);
    CHECK(FMA_D(OPC_MADD, RNE, qnan, pz, one), CANON_D, 0);
    CHECK(FMA_D(OPC_MADD, RNE, one, one, snan), CANON_D, NV);
    CHECK(FMA_D(OPC_MADD, RNE, snan, one, one), CANON_D, NV);
    CHECK(FMA_S(OPC_MADD, RNE, 0x3f800000, 0x7f800001, 0x3f800000), CANON_S, NV);
    /* overflow and underflow */
    CHECK(FMA_D(OPC_MADD, RNE, bd(1e300), bd(1e300), one), inf, OF | NX);
    CHECK(FMA_D(OPC_MADD, RTZ, bd(1e300), bd(1e300), one), 0x7fefffffffffffffull, OF | NX);
    CHECK(FMA_D(OPC_MADD, RMM, bd(1e300), bd(1e300), one), inf, OF | NX);
    CHECK(FMA_S(OPC_MADD, RMM, 0x00000001, 0x3f000000, 0), 0x00000001, UF | NX);
    CHECK(FMA_S(OPC_MADD, RNE, 0x00000001, 0x3f000000, 0), 0x00000000, UF | NX);
    free_hart(h);
}

/* ------------------------------------------------------------------ */
/* NaN boxing and canonical NaNs */

static void test_nan_boxing(void **state) {
    (void)state;
    struct hart *h = new_hart();
    uint32_t fl_;
    /* improperly boxed operands read as the canonical NaN (quiet: no NV) */
    uint64_t r = run_f(h, opfp(F5_ADD, S, RNE, 4, 1, 2), 0x000000003f800000ull, BOX | 0x3f800000, 0, &fl_);
    assert_int_equal(r, BOX | CANON_S);
    assert_int_equal(fl_, 0);
    r = run_f(h, opfp(F5_MUL, S, RNE, 4, 1, 2), BOX | 0x3f800000, 0xfffffffe3f800000ull, 0, &fl_);
    assert_int_equal(r, BOX | CANON_S);
    assert_int_equal(fl_, 0);
    /* a boxed single seen as a double is a NaN too */
    r = run_f(h, opfp(F5_ADD, D, RNE, 4, 1, 2), BOX | 0x3f800000, bd(1.0), 0, &fl_);
    assert_int_equal(r, CANON_D);
    assert_int_equal(fl_, 0);
    /* FSGNJ.S: unboxed -> canonical NaN, then the sign */
    r = run_f(h, opfp(F5_SGNJ, S, 0, 4, 1, 2), 0x1234567840000000ull, BOX | 0xbf800000, 0, &fl_);
    assert_int_equal(r, BOX | 0xffc00000);
    assert_int_equal(fl_, 0);
    r = run_f(h, opfp(F5_SGNJ, S, 0, 4, 1, 1), 0x0000000040000000ull, 0, 0, &fl_); /* fmv.s */
    assert_int_equal(r, BOX | CANON_S);
    r = run_f(h, opfp(F5_SGNJ, S, 1, 4, 1, 2), BOX | 0x40000000, 0x00000000bf800000ull, 0, &fl_);
    assert_int_equal(r, BOX | 0xc0000000); /* sign of canonical NaN is +, negated */
    r = run_f(h, opfp(F5_SGNJ, S, 2, 4, 1, 2), BOX | 0xc0000000, 0x00000000bf800000ull, 0, &fl_);
    assert_int_equal(r, BOX | 0xc0000000);
    /* FMIN.S: an unboxed operand is a quiet NaN, so the other one wins */
    r = run_f(h, opfp(F5_MINMAX, S, 0, 4, 1, 2), 0x40000000ull, BOX | 0x40400000, 0, &fl_);
    assert_int_equal(r, BOX | 0x40400000);
    assert_int_equal(fl_, 0);
    /* FCLASS.S of an unboxed value: quiet NaN */
    assert_int_equal(run_x(h, opfp(F5_MV_XF, S, 1, 5, 1, 0), 0x3f800000ull, 0, &fl_), 1u << 9);
    /* FCVT.D.S of an unboxed value: canonical NaN without NV */
    r = run_f(h, opfp(F5_CVT_FF, D, RNE, 4, 1, 0), 0xffff0000ff800001ull, 0, 0, &fl_);
    assert_int_equal(r, CANON_D);
    assert_int_equal(fl_, 0);
    /* FEQ.S on unboxed values: quiet NaN, result 0 */
    assert_int_equal(run_x(h, opfp(F5_CMP, S, 2, 5, 1, 2), 0x3f800000ull, 0x3f800000ull, &fl_), 0);
    assert_int_equal(fl_, 0);
    /* FMV.X.W ignores the upper half and sign-extends */
    assert_int_equal(run_x(h, opfp(F5_MV_XF, S, 0, 5, 1, 0), 0x1234567880000000ull, 0, &fl_), 0xffffffff80000000ull);
    assert_int_equal(run_x(h, opfp(F5_MV_XF, S, 0, 5, 1, 0), BOX | 0x7f000000, 0, &fl_), 0x7f000000ull);
    assert_int_equal(run_x(h, opfp(F5_MV_XF, S, 0, 5, 1, 0), BOX | 0x7f800001, 0, &fl_), 0x7f800001ull);
    assert_int_equal(fl_, 0); /* moves never signal */
    /* FMV.W.X boxes; FMV.D.X and FMV.X.D are bit-exact, NaN payloads kept */
    assert_int_equal(run_fx(h, opfp(F5_MV_FX, S, 0, 4, 6, 0), 0x123456789abcdef0ull, &fl_), 0xffffffff9abcdef0ull);
    assert_int_equal(run_fx(h, opfp(F5_MV_FX, D, 0, 4, 6, 0), 0x7ff0000000000001ull, &fl_), 0x7ff0000000000001ull);
    assert_int_equal(run_x(h, opfp(F5_MV_XF, D, 0, 5, 1, 0), 0xfff0000000000003ull, 0, &fl_), 0xfff0000000000003ull);
    assert_int_equal(fl_, 0);
    /* results of single operations are boxed (run_s checks) */
    CHECK(BIN_S(F5_ADD, RNE, 0x3f800000, 0x3f800000), 0x40000000, 0);
    CHECK(FROMX_S(F5_CVT_FX, 0, RNE, 3) >> 32, 0xffffffffu, 0);
    free_hart(h);
}

static void test_canonical_nan(void **state) {
    (void)state;
    struct hart *h = new_hart();
    /* payloads are never propagated */
    CHECK(BIN_S(F5_ADD, RNE, 0x7fc12345, 0x3f800000), CANON_S, 0);
    CHECK(BIN_S(F5_ADD, RNE, 0x3f800000, 0xffc00001), CANON_S, 0);
    CHECK(BIN_S(F5_MUL, RMM, 0xffc00001, 0x3f800000), CANON_S, 0);
    CHECK(BIN_D(F5_ADD, RNE, 0xfff8000000000001ull, bd(1.0)), CANON_D, 0);
    CHECK(BIN_D(F5_DIV, RUP, bd(1.0), 0x7ff80000deadbeefull), CANON_D, 0);
    /* signaling NaNs raise NV */
    CHECK(BIN_S(F5_ADD, RNE, 0x7f800001, 0x3f800000), CANON_S, NV);
    CHECK(BIN_S(F5_SUB, RNE, 0x3f800000, 0xffbfffff), CANON_S, NV);
    CHECK(BIN_D(F5_MUL, RNE, 0x7ff4000000000000ull, bd(2.0)), CANON_D, NV);
    CHECK(UN_D(F5_SQRT, 0, RNE, 0x7ff0000000000001ull), CANON_D, NV);
    CHECK(UN_S(F5_SQRT, 0, RNE, 0x7fc00001), CANON_S, 0);
    /* invalid operations */
    const uint64_t inf = 0x7ff0000000000000ull, ninf = 0xfff0000000000000ull;
    CHECK(BIN_D(F5_ADD, RNE, inf, ninf), CANON_D, NV);
    CHECK(BIN_D(F5_SUB, RMM, inf, inf), CANON_D, NV);
    CHECK(BIN_D(F5_MUL, RNE, 0, ninf), CANON_D, NV);
    CHECK(BIN_D(F5_DIV, RNE, 0, 0x8000000000000000ull), CANON_D, NV);
    CHECK(BIN_S(F5_DIV, RNE, 0x7f800000, 0xff800000), CANON_S, NV);
    CHECK(BIN_S(F5_MUL, RTZ, 0x7f800000, 0x00000000), CANON_S, NV);
    CHECK(BIN_D(F5_ADD, RNE, inf, inf), inf, 0);
    CHECK(BIN_D(F5_MUL, RNE, ninf, bd(-2.0)), inf, 0);
    free_hart(h);
}

/* ------------------------------------------------------------------ */
/* Min/max, comparisons, classification, sign injection */

static void test_minmax(void **state) {
    (void)state;
    struct hart *h = new_hart();
    const uint32_t pz = 0, nz = 0x80000000, one = 0x3f800000, two = 0x40000000, m1 = 0xbf800000, m2 = 0xc0000000;
    const uint32_t qnan = 0x7fc00000, qpay = 0x7fc12345, snan = 0x7f800001;
#define MIN_S(a, b) run_s(h, opfp(F5_MINMAX, S, 0, 4, 1, 2), a, b, 0, &fl_)
#define MAX_S(a, b) run_s(h, opfp(F5_MINMAX, S, 1, 4, 1, 2), a, b, 0, &fl_)
#define MIN_D(a, b) run_f(h, opfp(F5_MINMAX, D, 0, 4, 1, 2), a, b, 0, &fl_)
#define MAX_D(a, b) run_f(h, opfp(F5_MINMAX, D, 1, 4, 1, 2), a, b, 0, &fl_)
    CHECK(MIN_S(pz, nz), nz, 0);
    CHECK(MIN_S(nz, pz), nz, 0);
    CHECK(MAX_S(pz, nz), pz, 0);
    CHECK(MAX_S(nz, pz), pz, 0);
    CHECK(MIN_S(one, two), one, 0);
    CHECK(MAX_S(one, two), two, 0);
    CHECK(MIN_S(m1, m2), m2, 0);
    CHECK(MAX_S(m1, m2), m1, 0);
    CHECK(MIN_S(m1, one), m1, 0);
    CHECK(MIN_S(0xff800000, m2), 0xff800000, 0);
    CHECK(MAX_S(0x7f800000, two), 0x7f800000, 0);
    CHECK(MIN_S(0x00000001, pz), pz, 0);
    CHECK(MIN_S(0x80000001, nz), 0x80000001, 0);
    /* one NaN: the other operand; sNaN raises NV */
    CHECK(MIN_S(qnan, one), one, 0);
    CHECK(MIN_S(one, qpay), one, 0);
    CHECK(MAX_S(qpay, m1), m1, 0);
    CHECK(MIN_S(snan, one), one, NV);
    CHECK(MAX_S(two, snan), two, NV);
    CHECK(MAX_S(nz, 0xffc00000), nz, 0);
    /* both NaN: canonical NaN */
    CHECK(MIN_S(qpay, qpay), CANON_S, 0);
    CHECK(MAX_S(0xffc00000, qnan), CANON_S, 0);
    CHECK(MIN_S(snan, qnan), CANON_S, NV);
    CHECK(MAX_S(qnan, 0xff800001), CANON_S, NV);

    const uint64_t dpz = 0, dnz = 0x8000000000000000ull, dq = 0x7ff8000000000001ull, ds = 0x7ff0000000000002ull;
    CHECK(MIN_D(dpz, dnz), dnz, 0);
    CHECK(MIN_D(dnz, dpz), dnz, 0);
    CHECK(MAX_D(dnz, dpz), dpz, 0);
    CHECK(MAX_D(dpz, dnz), dpz, 0);
    CHECK(MIN_D(bd(-3.5), bd(2.0)), bd(-3.5), 0);
    CHECK(MAX_D(bd(-3.5), bd(2.0)), bd(2.0), 0);
    CHECK(MAX_D(bd(1e-310), bd(1e-311)), bd(1e-310), 0);
    CHECK(MIN_D(dq, bd(2.0)), bd(2.0), 0);
    CHECK(MAX_D(bd(2.0), ds), bd(2.0), NV);
    CHECK(MIN_D(dq, dq), CANON_D, 0);
    CHECK(MAX_D(ds, dq), CANON_D, NV);
    free_hart(h);
#undef MIN_S
#undef MAX_S
#undef MIN_D
#undef MAX_D
}

static void test_compare(void **state) {
    (void)state;
    struct hart *h = new_hart();
    enum { LE = 0, LT = 1, EQ = 2 };
    const uint32_t one = 0x3f800000, qnan = 0x7fc00000, snan = 0x7f800001;
    CHECK(TOX_S(F5_CMP, EQ, 2, one, one), 1, 0);
    CHECK(TOX_S(F5_CMP, EQ, 2, one, 0x40000000), 0, 0);
    CHECK(TOX_S(F5_CMP, EQ, 2, 0x80000000, 0), 1, 0);
    CHECK(TOX_S(F5_CMP, LT, 2, 0x80000000, 0), 0, 0);
    CHECK(TOX_S(F5_CMP, LE, 2, 0, 0x80000000), 1, 0);
    CHECK(TOX_S(F5_CMP, LT, 2, 0xbf800000, 0xbf000000), 1, 0);
    CHECK(TOX_S(F5_CMP, LT, 2, 0xbf000000, 0xbf800000), 0, 0);
    CHECK(TOX_S(F5_CMP, LT, 2, one, one), 0, 0);
    CHECK(TOX_S(F5_CMP, LE, 2, one, one), 1, 0);
    CHECK(TOX_S(F5_CMP, LE, 2, 0x40000000, one), 0, 0);
    CHECK(TOX_S(F5_CMP, LT, 2, 0xff800000, 0x7f800000), 1, 0);
    CHECK(TOX_S(F5_CMP, LT, 2, 0x80000001, 0x00000001), 1, 0);
    CHECK(TOX_S(F5_CMP, EQ, 2, 0x7f800000, 0x7f800000), 1, 0);
    /* FEQ is quiet: NV only for a signaling NaN */
    CHECK(TOX_S(F5_CMP, EQ, 2, qnan, one), 0, 0);
    CHECK(TOX_S(F5_CMP, EQ, 2, qnan, qnan), 0, 0);
    CHECK(TOX_S(F5_CMP, EQ, 2, one, snan), 0, NV);
    /* FLT and FLE signal on any NaN */
    CHECK(TOX_S(F5_CMP, LT, 2, qnan, one), 0, NV);
    CHECK(TOX_S(F5_CMP, LE, 2, one, qnan), 0, NV);
    CHECK(TOX_S(F5_CMP, LE, 2, snan, snan), 0, NV);

    const uint64_t dq = 0x7ff8000000000000ull, ds = 0x7ff0000000000001ull;
    CHECK(TOX_D(F5_CMP, EQ, 2, bd(1.5), bd(1.5)), 1, 0);
    CHECK(TOX_D(F5_CMP, EQ, 2, 0x8000000000000000ull, 0), 1, 0);
    CHECK(TOX_D(F5_CMP, LT, 2, bd(-2.0), bd(-1.0)), 1, 0);
    CHECK(TOX_D(F5_CMP, LE, 2, bd(-1.0), bd(-2.0)), 0, 0);
    CHECK(TOX_D(F5_CMP, LE, 2, 0x8000000000000000ull, 0), 1, 0);
    CHECK(TOX_D(F5_CMP, LT, 2, 0x8000000000000000ull, 0), 0, 0);
    CHECK(TOX_D(F5_CMP, EQ, 2, dq, bd(1.0)), 0, 0);
    CHECK(TOX_D(F5_CMP, EQ, 2, ds, bd(1.0)), 0, NV);
    CHECK(TOX_D(F5_CMP, LT, 2, bd(1.0), dq), 0, NV);
    CHECK(TOX_D(F5_CMP, LE, 2, dq, dq), 0, NV);
    /* x0 destination goes to the sink */
    h->x[0] = 0;
    h->f[1] = BOX | one;
    h->f[2] = BOX | one;
    run_ok(h, opfp(F5_CMP, S, EQ, 0, 1, 2));
    assert_int_equal(h->x[0], 0);
    assert_int_equal(h->x[32], 1);
    free_hart(h);
}

static void test_fclass(void **state) {
    (void)state;
    struct hart *h = new_hart();
    static const uint32_t s[][2] = {
        {0xff800000, 1u << 0}, {0xbf800000, 1u << 1}, {0x80800000, 1u << 1}, {0x80000001, 1u << 2},
        {0x807fffff, 1u << 2}, {0x80000000, 1u << 3}, {0x00000000, 1u << 4}, {0x00000001, 1u << 5},
        {0x007fffff, 1u << 5}, {0x00800000, 1u << 6}, {0x7f7fffff, 1u << 6}, {0x7f800000, 1u << 7},
        {0x7f800001, 1u << 8}, {0xffbfffff, 1u << 8}, {0x7fc00000, 1u << 9}, {0xffffffff, 1u << 9},
    };
    for (unsigned k = 0; k < sizeof s / sizeof s[0]; k++) CHECK(TOX_S(F5_MV_XF, 1, 0, s[k][0], 0), s[k][1], 0);
    static const uint64_t d[][2] = {
        {0xfff0000000000000ull, 1u << 0}, {0xbff0000000000000ull, 1u << 1}, {0x800fffffffffffffull, 1u << 2},
        {0x8000000000000000ull, 1u << 3}, {0x0000000000000000ull, 1u << 4}, {0x0000000000000001ull, 1u << 5},
        {0x0010000000000000ull, 1u << 6}, {0x7ff0000000000000ull, 1u << 7}, {0x7ff0000000000001ull, 1u << 8},
        {0x7ff7ffffffffffffull, 1u << 8}, {0x7ff8000000000000ull, 1u << 9}, {0xfff8000000000001ull, 1u << 9},
    };
    for (unsigned k = 0; k < sizeof d / sizeof d[0]; k++) CHECK(TOX_D(F5_MV_XF, 1, 0, d[k][0], 0), d[k][1], 0);
    free_hart(h);
}

static void test_sign_injection(void **state) {
    (void)state;
    struct hart *h = new_hart();
    CHECK(BIN_S(F5_SGNJ, 0, 0x3f800000, 0x80000000), 0xbf800000, 0);
    CHECK(BIN_S(F5_SGNJ, 1, 0x3f800000, 0x80000000), 0x3f800000, 0);
    CHECK(BIN_S(F5_SGNJ, 2, 0xbf800000, 0x80000000), 0x3f800000, 0);
    CHECK(BIN_S(F5_SGNJ, 0, 0x7f800001, 0x80000000), 0xff800001, 0); /* sNaN: no NV, payload kept */
    CHECK(BIN_D(F5_SGNJ, 0, bd(2.0), bd(-0.0)), bd(-2.0), 0);
    CHECK(BIN_D(F5_SGNJ, 1, bd(-2.0), bd(-1.0)), bd(2.0), 0);
    CHECK(BIN_D(F5_SGNJ, 2, bd(-2.0), bd(-1.0)), bd(2.0), 0);
    CHECK(BIN_D(F5_SGNJ, 2, 0xfff0000000000001ull, 0), 0xfff0000000000001ull, 0);
    free_hart(h);
}

/* ------------------------------------------------------------------ */
/* Conversions */

static void test_fcvt_to_int(void **state) {
    (void)state;
    struct hart *h = new_hart();
    enum { W = 0, WU = 1, L = 2, LU = 3 };
    /* rounding: 2.5, -2.5, 3.5, -0.5 */
    static const int64_t r25[5] = {2, 2, 2, 3, 3}, rm25[5] = {-2, -2, -3, -2, -3};
    for (unsigned rm = 0; rm < 5; rm++) {
        CHECK(TOX_D(F5_CVT_XF, rm, W, bd(2.5), 0), (uint64_t)r25[rm], NX);
        CHECK(TOX_D(F5_CVT_XF, rm, W, bd(-2.5), 0), (uint64_t)rm25[rm], NX);
        CHECK(TOX_D(F5_CVT_XF, rm, L, bd(-2.5), 0), (uint64_t)rm25[rm], NX);
        CHECK(TOX_S(F5_CVT_XF, rm, L, bs(2.5f), 0), (uint64_t)r25[rm], NX);
        CHECK(TOX_S(F5_CVT_XF, rm, W, bs(-2.5f), 0), (uint64_t)rm25[rm], NX);
        h->frm = rm;
        CHECK(TOX_D(F5_CVT_XF, DYN, LU, bd(2.5), 0), (uint64_t)r25[rm], NX);
    }
    CHECK(TOX_D(F5_CVT_XF, RNE, W, bd(3.5), 0), 4, NX);
    CHECK(TOX_D(F5_CVT_XF, RNE, W, bd(-0.5), 0), 0, NX);
    CHECK(TOX_D(F5_CVT_XF, RMM, W, bd(-0.5), 0), (uint64_t)-1, NX);
    CHECK(TOX_D(F5_CVT_XF, RUP, W, bd(1e-300), 0), 1, NX);
    CHECK(TOX_D(F5_CVT_XF, RDN, L, bd(-1e-300), 0), (uint64_t)-1, NX);
    CHECK(TOX_S(F5_CVT_XF, RUP, W, 0x00000001, 0), 1, NX);
    CHECK(TOX_D(F5_CVT_XF, RNE, W, bd(-7.0), 0), (uint64_t)-7, 0);
    CHECK(TOX_D(F5_CVT_XF, RNE, W, 0x8000000000000000ull, 0), 0, 0);
    /* unsigned: negative values that round to 0 are fine, others invalid */
    CHECK(TOX_D(F5_CVT_XF, RTZ, WU, bd(-0.5), 0), 0, NX);
    CHECK(TOX_D(F5_CVT_XF, RNE, WU, bd(-0.5), 0), 0, NX);
    CHECK(TOX_D(F5_CVT_XF, RMM, WU, bd(-0.5), 0), 0, NV);
    CHECK(TOX_D(F5_CVT_XF, RNE, WU, bd(-1.0), 0), 0, NV);
    CHECK(TOX_D(F5_CVT_XF, RDN, LU, bd(-1e-300), 0), 0, NV);
    CHECK(TOX_D(F5_CVT_XF, RTZ, LU, bd(-1e-300), 0), 0, NX);
    CHECK(TOX_D(F5_CVT_XF, RNE, LU, 0x8000000000000000ull, 0), 0, 0);
    /* W: saturation, sign extension */
    CHECK(TOX_S(F5_CVT_XF, RNE, W, bs(3e9f), 0), 0x7fffffffull, NV);
    CHECK(TOX_S(F5_CVT_XF, RNE, W, bs(-3e9f), 0), 0xffffffff80000000ull, NV);
    CHECK(TOX_S(F5_CVT_XF, RNE, W, 0x7fc00000, 0), 0x7fffffffull, NV);
    CHECK(TOX_S(F5_CVT_XF, RNE, W, 0xffc00000, 0), 0x7fffffffull, NV); /* negative NaN too */
    CHECK(TOX_S(F5_CVT_XF, RNE, W, 0x7f800000, 0), 0x7fffffffull, NV);
    CHECK(TOX_S(F5_CVT_XF, RNE, W, 0xff800000, 0), 0xffffffff80000000ull, NV);
    CHECK(TOX_S(F5_CVT_XF, RNE, W, bs(-2147483648.0f), 0), 0xffffffff80000000ull, 0);
    CHECK(TOX_D(F5_CVT_XF, RTZ, W, bd(2147483647.5), 0), 0x7fffffffull, NX);
    CHECK(TOX_D(F5_CVT_XF, RNE, W, bd(2147483647.5), 0), 0x7fffffffull, NV);
    CHECK(TOX_D(F5_CVT_XF, RUP, W, bd(-2147483648.5), 0), 0xffffffff80000000ull, NX);
    CHECK(TOX_D(F5_CVT_XF, RDN, W, bd(-2147483648.5), 0), 0xffffffff80000000ull, NV);
    /* WU: results are sign-extended from bit 31 too */
    CHECK(TOX_S(F5_CVT_XF, RNE, WU, bs(3e9f), 0), 0xffffffffb2d05e00ull, 0);
    CHECK(TOX_D(F5_CVT_XF, RNE, WU, bd(4294967295.0), 0), 0xffffffffffffffffull, 0);
    CHECK(TOX_D(F5_CVT_XF, RNE, WU, bd(4294967296.0), 0), 0xffffffffffffffffull, NV);
    CHECK(TOX_D(F5_CVT_XF, RNE, WU, bd(2147483648.0), 0), 0xffffffff80000000ull, 0);
    CHECK(TOX_D(F5_CVT_XF, RNE, WU, bd(5.0), 0), 5, 0);
    CHECK(TOX_D(F5_CVT_XF, RNE, WU, 0x7ff8000000000000ull, 0), 0xffffffffffffffffull, NV);
    CHECK(TOX_D(F5_CVT_XF, RNE, WU, 0xfff0000000000000ull, 0), 0, NV);
    CHECK(TOX_D(F5_CVT_XF, RNE, WU, 0x7ff0000000000000ull, 0), 0xffffffffffffffffull, NV);
    /* L */
    CHECK(TOX_D(F5_CVT_XF, RNE, L, bd(0x1p63), 0), 0x7fffffffffffffffull, NV);
    CHECK(TOX_D(F5_CVT_XF, RNE, L, bd(-0x1p63), 0), 0x8000000000000000ull, 0);
    CHECK(TOX_D(F5_CVT_XF, RNE, L, 0xc3e0000000000001ull, 0), 0x8000000000000000ull, NV);
    CHECK(TOX_D(F5_CVT_XF, RNE, L, 0x43dfffffffffffffull, 0), 0x7ffffffffffffc00ull, 0);
    CHECK(TOX_D(F5_CVT_XF, RNE, L, bd(1e300), 0), 0x7fffffffffffffffull, NV);
    CHECK(TOX_D(F5_CVT_XF, RNE, L, bd(-1e300), 0), 0x8000000000000000ull, NV);
    CHECK(TOX_D(F5_CVT_XF, RNE, L, 0x7ff0000000000001ull, 0), 0x7fffffffffffffffull, NV);
    CHECK(TOX_S(F5_CVT_XF, RNE, L, 0xff800000, 0), 0x8000000000000000ull, NV);
    CHECK(TOX_S(F5_CVT_XF, RNE, L, bs(-0x1p63f), 0), 0x8000000000000000ull, 0);
    CHECK(TOX_S(F5_CVT_XF, RNE, L, bs(0x1p62f), 0), 0x4000000000000000ull, 0);
    /* LU */
    CHECK(TOX_D(F5_CVT_XF, RNE, LU, bd(0x1p64), 0), 0xffffffffffffffffull, NV);
    CHECK(TOX_D(F5_CVT_XF, RNE, LU, 0x43efffffffffffffull, 0), 0xfffffffffffff800ull, 0);
    CHECK(TOX_D(F5_CVT_XF, RNE, LU, bd(0x1p63), 0), 0x8000000000000000ull, 0);
    CHECK(TOX_D(F5_CVT_XF, RNE, LU, 0x7ff8000000000000ull, 0), 0xffffffffffffffffull, NV);
    CHECK(TOX_S(F5_CVT_XF, RNE, LU, bs(1.5f), 0), 2, NX);
    CHECK(TOX_S(F5_CVT_XF, RNE, LU, bs(-3.0f), 0), 0, NV);
    /* x0 destination: sink, but the flags still accrue */
    h->f[1] = bd(-1.0);
    h->fflags = 0;
    run_ok(h, opfp(F5_CVT_XF, D, RNE, 0, 1, LU));
    assert_int_equal(h->x[0], 0);
    assert_int_equal(h->fflags, NV);
    free_hart(h);
}

static void test_fcvt_from_int(void **state) {
    (void)state;
    struct hart *h = new_hart();
    enum { W = 0, WU = 1, L = 2, LU = 3 };
    /* 2^24 + 1: a tie (even below); 2^24 + 3: a tie (even above) */
    static const uint32_t e1[5] = {0x4b800000, 0x4b800000, 0x4b800000, 0x4b800001, 0x4b800001};
    static const uint32_t e3[5] = {0x4b800002, 0x4b800001, 0x4b800001, 0x4b800002, 0x4b800002};
    static const uint32_t en[5] = {0xcb800000, 0xcb800000, 0xcb800001, 0xcb800000, 0xcb800001};
    for (unsigned rm = 0; rm < 5; rm++) {
        CHECK(FROMX_S(F5_CVT_FX, W, rm, 16777217), BOX | e1[rm], NX);
        CHECK(FROMX_S(F5_CVT_FX, L, rm, 16777219), BOX | e3[rm], NX);
        CHECK(FROMX_S(F5_CVT_FX, W, rm, (uint64_t)-16777217), BOX | en[rm], NX);
        CHECK(FROMX_S(F5_CVT_FX, WU, rm, 16777217), BOX | e1[rm], NX);
        CHECK(FROMX_S(F5_CVT_FX, LU, rm, 16777217), BOX | e1[rm], NX);
    }
    /* 2^53 + 1 to double */
    CHECK(FROMX_D(F5_CVT_FX, L, RNE, 9007199254740993ull), 0x4340000000000000ull, NX);
    CHECK(FROMX_D(F5_CVT_FX, L, RTZ, 9007199254740993ull), 0x4340000000000000ull, NX);
    CHECK(FROMX_D(F5_CVT_FX, L, RUP, 9007199254740993ull), 0x4340000000000001ull, NX);
    CHECK(FROMX_D(F5_CVT_FX, L, RMM, 9007199254740993ull), 0x4340000000000001ull, NX);
    CHECK(FROMX_D(F5_CVT_FX, L, RMM, (uint64_t)-9007199254740993ll), 0xc340000000000001ull, NX);
    CHECK(FROMX_D(F5_CVT_FX, L, RDN, (uint64_t)-9007199254740993ll), 0xc340000000000001ull, NX);
    CHECK(FROMX_D(F5_CVT_FX, L, RUP, (uint64_t)-9007199254740993ll), 0xc340000000000000ull, NX);
    CHECK(FROMX_D(F5_CVT_FX, LU, RNE, 0xffffffffffffffffull), 0x43f0000000000000ull, NX);
    CHECK(FROMX_D(F5_CVT_FX, LU, RTZ, 0xffffffffffffffffull), 0x43efffffffffffffull, NX);
    CHECK(FROMX_D(F5_CVT_FX, L, RNE, 0xffffffffffffffffull), bd(-1.0), 0);
    CHECK(FROMX_D(F5_CVT_FX, L, RNE, 0x8000000000000000ull), 0xc3e0000000000000ull, 0);
    /* W and WU use only the low 32 bits */
    CHECK(FROMX_D(F5_CVT_FX, W, RNE, 0x00000000ffffffffull), bd(-1.0), 0);
    CHECK(FROMX_D(F5_CVT_FX, W, RNE, 0xffffffff80000000ull), 0xc1e0000000000000ull, 0);
    CHECK(FROMX_D(F5_CVT_FX, WU, RNE, 0xffffffffffffffffull), bd(4294967295.0), 0);
    CHECK(FROMX_D(F5_CVT_FX, WU, RNE, 0x1234567800000000ull), 0, 0);
    CHECK(FROMX_S(F5_CVT_FX, WU, RNE, 0xffffffffffffffffull), BOX | 0x4f800000, NX);
    CHECK(FROMX_S(F5_CVT_FX, WU, RTZ, 0xffffffffffffffffull), BOX | 0x4f7fffff, NX);
    CHECK(FROMX_S(F5_CVT_FX, L, RNE, 0), BOX | 0, 0);
    CHECK(FROMX_S(F5_CVT_FX, W, RNE, (uint64_t)-3), BOX | 0xc0400000, 0);
    CHECK(FROMX_D(F5_CVT_FX, W, RMM, 7), bd(7.0), 0);
    free_hart(h);
}

static void test_fcvt_fp_fp(void **state) {
    (void)state;
    struct hart *h = new_hart();
    uint32_t fl_;
    uint64_t r;
#define CVT_S_D(rm, a) (h->f[1] = (a), h->f[4] = 0, h->fflags = 0, run_ok(h, opfp(F5_CVT_FF, S, rm, 4, 1, 1)), \
                        fl_ = h->fflags, r = h->f[4], assert_int_equal(r >> 32, 0xffffffffu), (uint32_t)r)
    /* double 1 + 2^-24 is a tie in single */
    const uint64_t t = 0x3ff0000010000000ull;
    static const uint32_t et[5] = {0x3f800000, 0x3f800000, 0x3f800000, 0x3f800001, 0x3f800001};
    for (unsigned rm = 0; rm < 5; rm++) {
        assert_int_equal(CVT_S_D(rm, t), et[rm]);
        assert_int_equal(fl_, NX);
        h->frm = rm;
        assert_int_equal(CVT_S_D(DYN, t | 1ull << 63), et[rm == RDN ? RUP : rm == RUP ? RDN : rm] | 0x80000000);
        assert_int_equal(fl_, NX);
    }
    /* overflow */
    assert_int_equal(CVT_S_D(RNE, bd(1e300)), 0x7f800000);
    assert_int_equal(fl_, OF | NX);
    assert_int_equal(CVT_S_D(RTZ, bd(1e300)), 0x7f7fffff);
    assert_int_equal(fl_, OF | NX);
    assert_int_equal(CVT_S_D(RMM, bd(1e300)), 0x7f800000);
    assert_int_equal(fl_, OF | NX);
    assert_int_equal(CVT_S_D(RDN, bd(-1e300)), 0xff800000);
    assert_int_equal(CVT_S_D(RUP, bd(-1e300)), 0xff7fffff);
    assert_int_equal(fl_, OF | NX);
    /* above FLT_MAX: below the midpoint to 2^128 it rounds back down, at it up */
    assert_int_equal(CVT_S_D(RNE, 0x47efffffefffffffull), 0x7f7fffff);
    assert_int_equal(fl_, NX);
    assert_int_equal(CVT_S_D(RMM, 0x47efffffefffffffull), 0x7f7fffff);
    assert_int_equal(fl_, NX);
    assert_int_equal(CVT_S_D(RNE, 0x47effffff0000000ull), 0x7f800000);
    assert_int_equal(fl_, OF | NX);
    assert_int_equal(CVT_S_D(RMM, 0x47effffff0000000ull), 0x7f800000);
    assert_int_equal(fl_, OF | NX);
    assert_int_equal(CVT_S_D(RTZ, 0x47effffff0000000ull), 0x7f7fffff);
    assert_int_equal(fl_, NX); /* truncates to FLT_MAX: no overflow */
    /* underflow: 2^-150 is half the smallest subnormal */
    assert_int_equal(CVT_S_D(RNE, bd(0x1p-150)), 0);
    assert_int_equal(fl_, UF | NX);
    assert_int_equal(CVT_S_D(RMM, bd(0x1p-150)), 1);
    assert_int_equal(fl_, UF | NX);
    assert_int_equal(CVT_S_D(RMM, bd(-0x1p-150)), 0x80000001);
    assert_int_equal(CVT_S_D(RUP, bd(0x1p-200)), 1);
    assert_int_equal(fl_, UF | NX);
    assert_int_equal(CVT_S_D(RNE, bd(0x1p-149)), 1);
    assert_int_equal(fl_, 0); /* exact subnormal: no UF */
    /* tininess after rounding: 2^-126 - 2^-151 rounds to 2^-126 even with an
     * unbounded exponent, so it is not tiny (NX only); 2^-126 - 2^-150 is */
    assert_int_equal(CVT_S_D(RNE, bd(0x1p-126 - 0x1p-151)), 0x00800000);
    assert_int_equal(fl_, NX);
    assert_int_equal(CVT_S_D(RMM, bd(0x1p-126 - 0x1p-151)), 0x00800000);
    assert_int_equal(fl_, NX);
    assert_int_equal(CVT_S_D(RTZ, bd(0x1p-126 - 0x1p-151)), 0x007fffff);
    assert_int_equal(fl_, UF | NX);
    assert_int_equal(CVT_S_D(RNE, bd(0x1p-126 - 0x1p-150)), 0x00800000);
    assert_int_equal(fl_, UF | NX);
    assert_int_equal(CVT_S_D(RMM, bd(0x1p-126 - 0x1p-150)), 0x00800000);
    assert_int_equal(fl_, UF | NX);
    /* tiny before and after rounding, rounds up to 2^-126 (RDN of a negative) */
    h->fflags = NX;
    h->f[1] = 0xb80fffffc000007full;
    h->frm = RDN;
    run_ok(h, opfp(F5_CVT_FF, S, DYN, 4, 1, 1));
    assert_int_equal(h->f[4], BOX | 0x80800000);
    assert_int_equal(h->fflags, UF | NX);
    assert_int_equal(CVT_S_D(RNE, 0xb80fffffc000007full), 0x807fffff);
    assert_int_equal(fl_, UF | NX);
    /* exact values, zeros, infinities, NaNs */
    assert_int_equal(CVT_S_D(RMM, bd(0.5)), 0x3f000000);
    assert_int_equal(fl_, 0);
    assert_int_equal(CVT_S_D(RNE, 0x8000000000000000ull), 0x80000000);
    assert_int_equal(CVT_S_D(RTZ, 0xfff0000000000000ull), 0xff800000);
    assert_int_equal(fl_, 0);
    assert_int_equal(CVT_S_D(RNE, 0x7ff8000012345678ull), CANON_S);
    assert_int_equal(fl_, 0);
    assert_int_equal(CVT_S_D(RNE, 0xfff0000000000001ull), CANON_S);
    assert_int_equal(fl_, NV);

    /* FCVT.D.S is exact */
    CHECK(UN_D(F5_CVT_FF, 0, RNE, BOX | 0x00000001), 0x36a0000000000000ull, 0);
    CHECK(UN_D(F5_CVT_FF, 0, RNE, BOX | 0x807fffff), bd(-0x1.fffffcp-127), 0);
    CHECK(UN_D(F5_CVT_FF, 0, RMM, BOX | 0x3f800001), bd(0x1.000002p0), 0);
    CHECK(UN_D(F5_CVT_FF, 0, RNE, BOX | 0xff800000), 0xfff0000000000000ull, 0);
    CHECK(UN_D(F5_CVT_FF, 0, RNE, BOX | 0x80000000), 0x8000000000000000ull, 0);
    CHECK(UN_D(F5_CVT_FF, 0, RNE, BOX | 0x7f800001), CANON_D, NV);
    CHECK(UN_D(F5_CVT_FF, 0, RNE, BOX | 0xffc00001), CANON_D, 0);
    free_hart(h);
#undef CVT_S_D
}

/* ------------------------------------------------------------------ */
/* Overflow and underflow flags */

static void test_over_underflow(void **state) {
    (void)state;
    struct hart *h = new_hart();
    const uint64_t big = bd(1e200), inf = 0x7ff0000000000000ull, dmax = 0x7fefffffffffffffull;
    CHECK(BIN_D(F5_MUL, RNE, big, big), inf, OF | NX);
    CHECK(BIN_D(F5_MUL, RMM, big, big), inf, OF | NX);
    CHECK(BIN_D(F5_MUL, RTZ, big, big), dmax, OF | NX);
    CHECK(BIN_D(F5_MUL, RDN, big, big), dmax, OF | NX);
    CHECK(BIN_D(F5_MUL, RUP, big, big), inf, OF | NX);
    CHECK(BIN_D(F5_MUL, RDN, big | 1ull << 63, big), inf | 1ull << 63, OF | NX);
    CHECK(BIN_D(F5_MUL, RUP, big | 1ull << 63, big), dmax | 1ull << 63, OF | NX);
    CHECK(BIN_D(F5_MUL, RMM, big | 1ull << 63, big), inf | 1ull << 63, OF | NX);
    CHECK(BIN_D(F5_ADD, RNE, dmax, dmax), inf, OF | NX);
    CHECK(BIN_S(F5_ADD, RTZ, 0x7f7fffff, 0x7f7fffff), 0x7f7fffff, OF | NX);
    CHECK(BIN_S(F5_DIV, RMM, 0x7f7fffff, 0x3f000000), 0x7f800000, OF | NX);
    /* underflow to zero; exact subnormal results do not underflow */
    CHECK(BIN_S(F5_MUL, RNE, 0x0a000000, 0x0a000000), 0, UF | NX); /* 2^-107 squared */
    CHECK(BIN_S(F5_MUL, RUP, 0x0a000000, 0x0a000000), 1, UF | NX);
    CHECK(BIN_S(F5_MUL, RDN, 0x8a000000, 0x0a000000), 0x80000001, UF | NX);
    CHECK(BIN_S(F5_MUL, RNE, bs(0x1p-140f), bs(0x1p-5f)), 0x00000010, 0);
    CHECK(BIN_D(F5_MUL, RNE, 1, bd(0.5)), 0, UF | NX);
    CHECK(BIN_D(F5_MUL, RMM, 1, bd(0.5)), 1, UF | NX);
    CHECK(BIN_D(F5_MUL, RNE, 4, bd(0.5)), 2, 0);
    /* tininess is detected after rounding:
     * (18631 * 2^-11) * (1801 * 2^-140) = (2^25 - 1) * 2^-151 = 2^-126 - 2^-151 */
    const uint32_t a = bs(18631.0f * 0x1p-11f), b = bs(1801.0f * 0x1p-140f);
    CHECK(BIN_S(F5_MUL, RNE, a, b), 0x00800000, NX);
    CHECK(BIN_S(F5_MUL, RMM, a, b), 0x00800000, NX);
    CHECK(BIN_S(F5_MUL, RUP, a, b), 0x00800000, NX);
    CHECK(BIN_S(F5_MUL, RTZ, a, b), 0x007fffff, UF | NX);
    CHECK(BIN_S(F5_MUL, RDN, a, b), 0x007fffff, UF | NX);
    /* (4095 * 2^-12) * (4097 * 2^-138) = (2^24 - 1) * 2^-150: tiny, rounds to 2^-126 */
    const uint32_t c = bs(4095.0f * 0x1p-12f), d = bs(4097.0f * 0x1p-138f);
    CHECK(BIN_S(F5_MUL, RNE, c, d), 0x00800000, UF | NX);
    CHECK(BIN_S(F5_MUL, RMM, c, d), 0x00800000, UF | NX);
    CHECK(BIN_S(F5_MUL, RTZ, c, d), 0x007fffff, UF | NX);
    /* double: (2^27 - 1)(2^27 + 1) = 2^54 - 1, scaled to 2^-1022 - 2^-1076 */
    const uint64_t da = bd(134217727.0 * 0x1p-27), db = bd(134217729.0 * 0x1p-1049);
    CHECK(BIN_D(F5_MUL, RNE, da, db), 0x0010000000000000ull, NX);
    CHECK(BIN_D(F5_MUL, RMM, da, db), 0x0010000000000000ull, NX);
    CHECK(BIN_D(F5_MUL, RTZ, da, db), 0x000fffffffffffffull, UF | NX);
    free_hart(h);
}

/* ------------------------------------------------------------------ */
/* mstatus.FS, fflags accrual, invalid rounding modes, host state */

static void test_fs_and_flags(void **state) {
    (void)state;
    struct hart *h = new_hart();
    /* FS = Initial: an arithmetic instruction makes it Dirty and sets SD */
    h->f[1] = bd(1.0);
    h->f[2] = bd(3.0);
    run_ok(h, opfp(F5_DIV, D, RNE, 4, 1, 2));
    assert_int_equal(h->mstatus & MSTATUS_FS, MSTATUS_FS);
    assert_true(h->mstatus & MSTATUS_SD);
    /* integer results without flags leave FS alone; with flags they dirty it */
    h->mstatus = 2ull << MSTATUS_FS_SHIFT; /* Clean */
    run_ok(h, opfp(F5_MV_XF, D, 0, 5, 1, 0));
    run_ok(h, opfp(F5_MV_XF, D, 1, 5, 1, 0));
    run_ok(h, opfp(F5_CMP, D, 2, 5, 1, 2));
    assert_int_equal(h->mstatus, 2ull << MSTATUS_FS_SHIFT);
    h->f[2] = 0x7ff8000000000000ull;
    run_ok(h, opfp(F5_CMP, D, 1, 5, 1, 2)); /* FLT with a NaN: NV */
    assert_int_equal(h->mstatus & MSTATUS_FS, MSTATUS_FS);
    assert_true(h->mstatus & MSTATUS_SD);
    /* moves into f registers dirty it */
    h->mstatus = 1ull << MSTATUS_FS_SHIFT;
    run_ok(h, opfp(F5_MV_FX, D, 0, 4, 6, 0));
    assert_int_equal(h->mstatus & MSTATUS_FS, MSTATUS_FS);

    /* flags accrue */
    h->fflags = DZ;
    h->f[1] = bd(1.0);
    h->f[2] = bd(3.0);
    run_ok(h, opfp(F5_DIV, D, RNE, 4, 1, 2));
    assert_int_equal(h->fflags, DZ | NX);
    run_ok(h, opfp(F5_ADD, D, RNE, 4, 1, 2));
    assert_int_equal(h->fflags, DZ | NX);

    /* FS = Off: every FP instruction is illegal and changes nothing */
    const uint32_t insns[] = {
        opfp(F5_ADD, D, DYN, 10, 10, 11),   opfp(F5_ADD, S, RNE, 10, 10, 11),
        opfp(F5_SQRT, D, DYN, 10, 10, 0),   opfp(F5_SGNJ, D, 0, 10, 10, 11),
        opfp(F5_MINMAX, D, 1, 10, 10, 11),  opfp(F5_CMP, D, 2, 10, 10, 11),
        opfp(F5_MV_XF, D, 0, 10, 10, 0),    opfp(F5_MV_XF, S, 1, 10, 10, 0),
        opfp(F5_MV_FX, D, 0, 10, 10, 0),    opfp(F5_MV_FX, S, 0, 10, 10, 0),
        opfp(F5_CVT_XF, D, DYN, 10, 10, 3), opfp(F5_CVT_FX, D, DYN, 10, 10, 3),
        opfp(F5_CVT_FF, S, DYN, 10, 10, 1), opfp(F5_CVT_FF, D, DYN, 10, 10, 0),
        r4(OPC_MADD, D, DYN, 10, 10, 11, 12), r4(OPC_NMADD, S, RMM, 10, 10, 11, 12),
        itype(0, 11, 2, 10, 0x07),          itype(0, 11, 3, 10, 0x07),
        stype(0, 10, 11, 2, 0x27),          stype(0, 10, 11, 3, 0x27),
    };
    for (unsigned k = 0; k < sizeof insns / sizeof insns[0]; k++) {
        free_hart(h);
        h = new_hart();
        h->mstatus = 0;
        for (unsigned r = 0; r < 32; r++) h->f[r] = 0x4000000000000000ull + r;
        h->x[10] = 0x77;
        h->x[11] = 0x20000;
        h->fflags = 0;
        run_illegal(h, insns[k]);
        assert_int_equal(h->mtval, 0);
        for (unsigned r = 0; r < 32; r++) assert_int_equal(h->f[r], 0x4000000000000000ull + r);
        assert_int_equal(h->x[10], 0x77);
        assert_int_equal(h->fflags, 0);
        assert_int_equal(h->mstatus & MSTATUS_FS, 0);
    }
    free_hart(h);
}

static void test_invalid_rm(void **state) {
    (void)state;
    struct hart *h = new_hart();
    h->f[1] = bd(1.0);
    h->f[2] = bd(2.0);
    h->f[4] = 0x1234;
    run_illegal(h, opfp(F5_ADD, D, 5, 4, 1, 2));
    run_illegal(h, opfp(F5_ADD, D, 6, 4, 1, 2));
    for (unsigned frm = 5; frm < 8; frm++) {
        h->frm = frm;
        run_illegal(h, opfp(F5_MUL, S, DYN, 4, 1, 2));
        run_illegal(h, r4(OPC_MADD, D, DYN, 4, 1, 2, 3));
        run_illegal(h, opfp(F5_SQRT, D, DYN, 4, 1, 0));
        run_illegal(h, opfp(F5_CVT_XF, D, DYN, 5, 1, 0));
        run_illegal(h, opfp(F5_CVT_FX, D, DYN, 4, 1, 0));
        run_illegal(h, opfp(F5_CVT_FF, S, DYN, 4, 1, 1));
        run_illegal(h, opfp(F5_CVT_FF, D, DYN, 4, 1, 0)); /* exact, but has an rm field */
        /* a valid static rm ignores frm */
        assert_true(run(h, opfp(F5_ADD, D, RTZ, 4, 1, 2)));
        /* no rm field: frm does not matter */
        assert_true(run(h, opfp(F5_SGNJ, D, 0, 4, 1, 2)));
        assert_true(run(h, opfp(F5_MINMAX, D, 1, 4, 1, 2)));
        assert_true(run(h, opfp(F5_CMP, D, 2, 5, 1, 2)));
        assert_true(run(h, opfp(F5_MV_XF, D, 1, 5, 1, 0)));
        h->f[4] = 0x1234;
    }
    run_illegal(h, opfp(F5_CVT_XF, S, 5, 5, 1, 0));
    run_illegal(h, opfp(F5_CVT_FF, D, 6, 4, 1, 0));
    free_hart(h);
}

static void test_host_state_restored(void **state) {
    (void)state;
    struct hart *h = new_hart();
    h->f[1] = bd(1.0);
    h->f[2] = bd(0x1p-53);
    static const unsigned modes[] = {RUP, RDN, RTZ, RMM, RNE};
    for (unsigned k = 0; k < 5; k++) {
        run_ok(h, opfp(F5_ADD, D, modes[k], 4, 1, 2));
        run_ok(h, r4(OPC_MADD, D, modes[k], 4, 1, 1, 2));
        run_ok(h, opfp(F5_CVT_FF, S, modes[k], 4, 2, 1));
        assert_int_equal(fegetround(), FE_TONEAREST);
        volatile double x = 1.0, y = 0x1p-53, z = 0x1.8p-53;
        assert_true(x + y == 1.0);
        assert_true(x + z > 1.0);
        assert_true(-x - z < -1.0);
    }
    free_hart(h);
}

/* Flags or control bits left in the host FPU by earlier instructions or by
 * other host code must never leak into the guest. */
static void test_host_state_foreign(void **state) {
    (void)state;
    struct hart *h = new_hart();
    const uint64_t one = bd(1.0), third = bd(1.0 / 3.0);
    /* an inexact instruction leaves the host inexact flag set... */
    h->fflags = 0;
    h->f[1] = one;
    h->f[2] = bd(3.0);
    run_ok(h, opfp(F5_DIV, D, RNE, 4, 1, 2));
    assert_int_equal(h->fflags, NX);
    /* ...the guest clears fflags: an exact operation must not report NX */
    h->fflags = 0;
    h->f[2] = one;
    run_ok(h, opfp(F5_ADD, D, RNE, 4, 1, 2));
    assert_int_equal(h->f[4], bd(2.0));
    assert_int_equal(h->fflags, 0);
    /* accrued flags stay, new ones are added */
    h->fflags = NX | UF;
    run_ok(h, opfp(F5_DIV, D, RNE, 4, 1, 2));
    assert_int_equal(h->fflags, NX | UF);
    h->f[2] = 0;
    run_ok(h, opfp(F5_DIV, D, RUP, 4, 1, 2));
    assert_int_equal(h->fflags, NX | UF | DZ);
    h->fflags = DZ;
    h->f[2] = bd(3.0);
    run_ok(h, opfp(F5_DIV, D, RUP, 4, 1, 2));
    assert_int_equal(h->f[4], third + 1);
    assert_int_equal(h->fflags, DZ | NX);
    h->fflags = 0;
    run_ok(h, opfp(F5_ADD, D, RUP, 4, 1, 1));
    assert_int_equal(h->fflags, 0);
    /* RMM with a stale NX and operands that are not finite */
    h->fflags = 0;
    h->f[1] = one;
    h->f[2] = bd(3.0);
    run_ok(h, opfp(F5_DIV, D, RNE, 4, 1, 2)); /* leaves the host's inexact flag set */
    assert_int_equal(h->fflags, NX);
    h->f[1] = 0x7ff0000000000000ull;
    h->f[2] = one;
    run_ok(h, opfp(F5_ADD, D, RMM, 4, 1, 2));
    assert_int_equal(h->f[4], 0x7ff0000000000000ull);
    assert_int_equal(h->fflags, NX);
    run_ok(h, opfp(F5_CVT_FF, S, RMM, 4, 1, 1));
    assert_int_equal(h->f[4], BOX | 0x7f800000);
    assert_int_equal(h->fflags, NX);
    h->f[0] = 0x7ff0000000000001ull; /* read as rs2 of fsqrt, unused */
    h->f[1] = bd(4.0);
    run_ok(h, opfp(F5_SQRT, D, RMM, 4, 1, 0));
    assert_int_equal(h->f[4], bd(2.0));
    assert_int_equal(h->fflags, NX);
    /* other host code raised flags and changed the rounding mode */
    volatile double x = 1.0, y = 3.0, z;
    fesetround(FE_UPWARD);
    feraiseexcept(FE_INEXACT | FE_INVALID | FE_OVERFLOW | FE_UNDERFLOW | FE_DIVBYZERO);
    z = x / y;
    (void)z;
    h->fflags = 0;
    h->f[1] = one;
    h->f[2] = bd(3.0);
    run_ok(h, opfp(F5_DIV, D, DYN, 4, 1, 2)); /* frm = RNE */
    assert_int_equal(h->f[4], third);
    assert_int_equal(h->fflags, NX);
    h->fflags = 0;
    fesetround(FE_TOWARDZERO);
    feraiseexcept(FE_INEXACT);
    run_ok(h, opfp(F5_ADD, D, RNE, 4, 1, 1));
    assert_int_equal(h->f[4], bd(2.0));
    assert_int_equal(h->fflags, 0);
    fesetround(FE_TONEAREST);
    feclearexcept(FE_ALL_EXCEPT);
#if defined(__x86_64__) && !defined(EXEC_FP_PORTABLE)
    /* flush-to-zero and denormals-are-zero set by someone else */
    unsigned csr;
    __asm__ volatile("stmxcsr %0" : "=m"(csr));
    unsigned ftz = csr | 0x8040;
    __asm__ volatile("ldmxcsr %0" : : "m"(ftz));
    h->fflags = 0;
    h->f[1] = 1; /* 2^-1074 */
    h->f[2] = bd(3.0);
    run_ok(h, opfp(F5_MUL, D, RNE, 4, 1, 2));
    assert_int_equal(h->f[4], 3);
    assert_int_equal(h->fflags, 0);
    __asm__ volatile("ldmxcsr %0" : : "m"(csr));
#endif
    free_hart(h);
}

/* ------------------------------------------------------------------ */
/* Random cross-check: host path against the exact software reference */

#ifndef FP_RANDOM_ITERS
#define FP_RANDOM_ITERS 6000 /* per operation, format and rounding mode */
#endif
#ifndef FP_RANDOM_SEED
#define FP_RANDOM_SEED 0x9e3779b97f4a7c15ull
#endif
static uint64_t rng_state = FP_RANDOM_SEED;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* A finite value with interesting exponents and significands. */
static uint64_t rnd_finite(bool dbl, int center) {
    const int ebits = dbl ? 11 : 8, mbits = dbl ? 52 : 23, emax_field = (1 << ebits) - 2;
    int e;
    switch (rnd() % 8) {
    case 0: e = (int)(rnd() % (unsigned)(emax_field + 1)); break;           /* anywhere */
    case 1: e = (int)(rnd() % 4); break;                                    /* subnormal and just above */
    case 2: e = emax_field - (int)(rnd() % 4); break;                       /* near overflow */
    case 3: e = (int)(rnd() % (unsigned)(mbits + 4)); break;                /* results near subnormal */
    default: e = center + (int)(rnd() % 61) - 30; break;                    /* near the other operand */
    }
    if (e < 0) e = 0;
    if (e > emax_field) e = emax_field;
    uint64_t m, mmask = (1ull << mbits) - 1;
    switch (rnd() % 6) {
    case 0: m = 0; break;
    case 1: m = mmask; break;
    case 2: m = (rnd() & mmask) >> (rnd() % (unsigned)mbits); break;  /* low bits only */
    case 3: m = (rnd() & mmask) & ~((1ull << (rnd() % (unsigned)mbits)) - 1); break; /* high bits only */
    case 4: m = 1ull << (rnd() % (unsigned)mbits); break;
    default: m = rnd() & mmask; break;
    }
    if (rnd() % 64 == 0) { e = 0; m = 0; } /* zero */
    uint64_t sign = rnd() & 1;
    return dbl ? sign << 63 | (uint64_t)e << 52 | m : sign << 31 | (uint64_t)e << 23 | m;
}

static void test_random_vs_soft(void **state) {
    (void)state;
    struct hart *h = new_hart();
    static const struct {
        enum fp_soft_op op;
        unsigned opc, f5, rs2;
    } ops[] = {
        {FP_SOFT_ADD, 0x53, F5_ADD, 2},   {FP_SOFT_SUB, 0x53, F5_SUB, 2}, {FP_SOFT_MUL, 0x53, F5_MUL, 2},
        {FP_SOFT_DIV, 0x53, F5_DIV, 2},   {FP_SOFT_SQRT, 0x53, F5_SQRT, 0},
        {FP_SOFT_MADD, OPC_MADD, 0, 2},   {FP_SOFT_MSUB, OPC_MSUB, 0, 2},
        {FP_SOFT_NMSUB, OPC_NMSUB, 0, 2}, {FP_SOFT_NMADD, OPC_NMADD, 0, 2},
        {FP_SOFT_CVT_S_D, 0x53, F5_CVT_FF, 1},
    };
    const int iters = FP_RANDOM_ITERS;
    unsigned long checked = 0, ties = 0;
    for (unsigned k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        for (unsigned dbl = 0; dbl < 2; dbl++) {
            bool cvt = ops[k].op == FP_SOFT_CVT_S_D;
            if (cvt && !dbl) continue;
            for (unsigned rm = 0; rm < 5; rm++) {
                struct insn in;
                uint32_t raw = ops[k].opc == 0x53 ? opfp(ops[k].f5, cvt ? S : dbl, rm, 4, 1, ops[k].rs2)
                                                  : r4(ops[k].opc, dbl, rm, 4, 1, 2, 3);
                in = dec(raw);
                for (int it = 0; it < iters; it++) {
                    int center = dbl ? 1023 : 127;
                    uint64_t a = rnd_finite(dbl, center);
                    if (cvt) a = rnd() % 2 ? rnd_finite(true, 1023 - 130 + (int)(rnd() % 260)) : rnd_finite(true, 1023);
                    int ea = dbl ? (int)((a >> 52) & 0x7ff) : (int)((a >> 23) & 0xff);
                    uint64_t b = rnd_finite(dbl, ea), c;
                    if (ops[k].op == FP_SOFT_SQRT && rnd() % 4) a &= dbl ? ~(1ull << 63) : ~(1ull << 31);
                    /* addend near the product, to exercise cancellation */
                    int eb = dbl ? (int)((b >> 52) & 0x7ff) : (int)((b >> 23) & 0xff);
                    c = rnd_finite(dbl, ea + eb - (dbl ? 1023 : 127));
                    if (rnd() % 8 == 0) {
                        /* c = -(a*b) rounded: massive cancellation */
                        uint32_t ignore = 0;
                        c = fp_soft(FP_SOFT_MUL, dbl, a, b, 0, (int)(rnd() % 5), &ignore) ^ (dbl ? 1ull << 63 : 1ull << 31);
                        if ((c & (dbl ? ~(1ull << 63) : 0x7fffffffull)) >= (dbl ? 0x7ff0000000000000ull : 0x7f800000ull))
                            c = 0;
                    }
                    h->f[1] = dbl || cvt ? a : BOX | a;
                    h->f[2] = dbl ? b : BOX | b;
                    h->f[3] = dbl ? c : BOX | c;
                    /* sometimes keep the flags accrued so far (the host's
                     * sticky flags are then reused, not cleared) */
                    uint32_t before = rnd() % 2 ? h->fflags : (uint32_t)(rnd() % 32);
                    h->fflags = before;
                    h->pc = PC0;
                    in.fn(h, &in);
                    assert_int_equal(h->pc, PC0 + 4);
                    uint32_t sfl = 0;
                    uint64_t want = fp_soft(ops[k].op, dbl, a, b, c, (int)rm, &sfl);
                    uint64_t got = h->f[4];
                    if (!dbl || cvt) {
                        assert_int_equal(got >> 32, 0xffffffffu);
                        got = (uint32_t)got;
                    }
                    if (got != want || h->fflags != (before | sfl)) {
                        print_error("op %d dbl %u rm %u a=%#llx b=%#llx c=%#llx: got %#llx/%#x want %#llx/%#x\n",
                                    (int)ops[k].op, dbl, rm, (unsigned long long)a, (unsigned long long)b,
                                    (unsigned long long)c, (unsigned long long)got, h->fflags,
                                    (unsigned long long)want, before | sfl);
                        fail();
                    }
                    checked++;
                    if (rm == RMM) {
                        uint32_t f2 = 0;
                        if (fp_soft(ops[k].op, dbl, a, b, c, RNE, &f2) != want) ties++;
                    }
                }
            }
        }
    }
    assert_true(checked > 100000);
    assert_true(ties > 0); /* RMM differed from RNE somewhere */
    free_hart(h);
}

/* With an infinite or NaN operand nothing is rounded: every rounding mode
 * gives the same result and flags, whatever flags had accrued before. */
static uint64_t rnd_special(bool dbl) {
    uint64_t sign = rnd() & 1, v;
    switch (rnd() % 4) {
    case 0: v = dbl ? 0x7ff0000000000000ull : 0x7f800000ull; break;                       /* inf */
    case 1: v = dbl ? 0x7ff8000000000000ull | (rnd() >> 13) : 0x7fc00000ull | (rnd() >> 42); break; /* qNaN */
    case 2: v = dbl ? 0x7ff0000000000001ull | (rnd() >> 14) : 0x7f800001ull | (rnd() >> 43); break; /* sNaN */
    default: return rnd_finite(dbl, dbl ? 1023 : 127);
    }
    return v | (dbl ? sign << 63 : sign << 31);
}

static void test_random_nonfinite_all_modes(void **state) {
    (void)state;
    struct hart *h = new_hart();
    static const struct {
        unsigned opc, f5, rs2, nops;
    } ops[] = {
        {0x53, F5_ADD, 2, 2}, {0x53, F5_SUB, 2, 2}, {0x53, F5_MUL, 2, 2}, {0x53, F5_DIV, 2, 2},
        {0x53, F5_SQRT, 0, 1}, {OPC_MADD, 0, 2, 3}, {OPC_MSUB, 0, 2, 3}, {OPC_NMSUB, 0, 2, 3},
        {OPC_NMADD, 0, 2, 3}, {0x53, F5_CVT_FF, 1, 1} /* FCVT.S.D */, {0x53, F5_CVT_FF, 0, 1} /* FCVT.D.S */,
    };
    for (int it = 0; it < 20000; it++) {
        unsigned k = (unsigned)(rnd() % (sizeof ops / sizeof ops[0]));
        bool cvt = ops[k].f5 == F5_CVT_FF && ops[k].opc == 0x53;
        unsigned fmt = cvt ? (ops[k].rs2 == 1 ? S : D) : (unsigned)(rnd() % 2);
        bool dbl_in = cvt ? ops[k].rs2 == 1 : fmt == D;
        uint64_t v[3];
        bool special = false;
        for (unsigned n = 0; n < 3; n++) {
            v[n] = rnd_special(dbl_in);
            unsigned expo = dbl_in ? (unsigned)((v[n] >> 52) & 0x7ff) : (unsigned)((v[n] >> 23) & 0xff);
            if (n < ops[k].nops && expo == (dbl_in ? 0x7ffu : 0xffu)) special = true;
            if (!dbl_in) v[n] = rnd() % 16 ? BOX | v[n] : v[n] & 0xffffffffull; /* sometimes unboxed */
            if (!dbl_in && v[n] >> 32 != 0xffffffffu && n < ops[k].nops) special = true;
        }
        if (!special) continue;
        uint32_t raw0 = ops[k].opc == 0x53 ? opfp(ops[k].f5, fmt, 0, 4, 1, ops[k].rs2) : r4(ops[k].opc, fmt, 0, 4, 1, 2, 3);
        uint32_t before = (uint32_t)(rnd() % 32);
        uint64_t res[5];
        uint32_t fl[5];
        for (unsigned rm = 0; rm < 5; rm++) {
            h->f[0] = rnd(); /* an unused rs2 = f0 must not matter */
            h->f[1] = v[0];
            h->f[2] = v[1];
            h->f[3] = v[2];
            h->fflags = before;
            run_ok(h, raw0 | rm << 12);
            res[rm] = h->f[4];
            fl[rm] = h->fflags;
        }
        for (unsigned rm = 1; rm < 5; rm++) {
            if (res[rm] != res[0] || fl[rm] != fl[0]) {
                print_error("raw %#x rm %u a=%#llx b=%#llx c=%#llx before %#x: %#llx/%#x vs RNE %#llx/%#x\n",
                            raw0 | rm << 12, rm, (unsigned long long)v[0], (unsigned long long)v[1],
                            (unsigned long long)v[2], before, (unsigned long long)res[rm], fl[rm],
                            (unsigned long long)res[0], fl[0]);
                fail();
            }
        }
        /* NaN results are canonical; no rounding flags with special operands */
        uint64_t r = res[0];
        if (fmt == S) {
            assert_int_equal(r >> 32, 0xffffffffu);
            if ((r & 0x7fffffff) > 0x7f800000) assert_int_equal(r, BOX | CANON_S);
        } else if ((r & ~(1ull << 63)) > 0x7ff0000000000000ull) {
            assert_int_equal(r, CANON_D);
        }
        assert_int_equal(fl[0] & ~before & (OF | UF | NX), 0);
    }
    free_hart(h);
}

/* Integer conversions against the host's, in the four host modes, and RMM
 * against round() (ties away from zero). */
static void test_random_int_conversions(void **state) {
    (void)state;
    struct hart *h = new_hart();
    static const int fe[4] = {FE_TONEAREST, FE_TOWARDZERO, FE_DOWNWARD, FE_UPWARD};
    for (int it = 0; it < 20000; it++) {
        unsigned rm = (unsigned)(rnd() % 5);
        /* integer -> double and single */
        int64_t v = (int64_t)rnd() >> (rnd() % 64);
        uint32_t fl_;
        uint64_t gd = FROMX_D(F5_CVT_FX, 2, rm, (uint64_t)v);
        uint32_t fd = fl_;
        uint64_t gs = FROMX_S(F5_CVT_FX, 2, rm, (uint64_t)v);
        uint32_t fs = fl_;
        uint64_t gu = FROMX_D(F5_CVT_FX, 3, rm, (uint64_t)v);
        uint32_t fu = fl_;
        if (rm < 4) {
            fesetround(fe[rm]);
            feclearexcept(FE_ALL_EXCEPT);
            volatile int64_t vv = v;
            volatile uint64_t uv = (uint64_t)v;
            volatile double d = (double)vv;
            int ed = fetestexcept(FE_INEXACT);
            feclearexcept(FE_ALL_EXCEPT);
            volatile float f = (float)vv;
            int ef = fetestexcept(FE_INEXACT);
            feclearexcept(FE_ALL_EXCEPT);
            /* not (double)uv: some compilers convert unsigned values with
             * a sequence that is wrong outside RNE (-0 for 0 in RDN) */
            volatile int64_t half = (int64_t)(uv >> 1 | (uv & 1));
            volatile double du = (int64_t)uv >= 0 ? (double)vv : 2.0 * (double)half;
            int eu = fetestexcept(FE_INEXACT);
            fesetround(FE_TONEAREST);
            assert_int_equal(gd, bd(d));
            assert_int_equal(fd, ed ? NX : 0);
            assert_int_equal(gs, BOX | bs(f));
            assert_int_equal(fs, ef ? NX : 0);
            assert_int_equal(gu, bd(du));
            assert_int_equal(fu, eu ? NX : 0);
        }
        /* double -> int64 */
        double x = ldexp((double)(int64_t)rnd(), -(int)(rnd() % 70));
        if (rnd() % 4 == 0) x = (double)(int64_t)(rnd() % 64) / 2 - 16; /* halves */
        uint64_t gl = TOX_D(F5_CVT_XF, rm, 2, bd(x), 0);
        uint32_t fl = fl_;
        double r;
        if (rm == RMM) {
            r = round(x);
        } else {
            fesetround(fe[rm]);
            r = nearbyint(x);
            fesetround(FE_TONEAREST);
        }
        if (r >= 0x1p63 || r < -0x1p63) {
            assert_int_equal(fl, NV);
            assert_int_equal(gl, x < 0 ? 0x8000000000000000ull : 0x7fffffffffffffffull);
        } else {
            assert_int_equal(gl, (uint64_t)(int64_t)r);
            assert_int_equal(fl, r != x ? NX : 0);
        }
        uint64_t gw = TOX_D(F5_CVT_XF, rm, 0, bd(x), 0);
        fl = fl_;
        if (r >= 0x1p31 || r < -0x1p31) {
            assert_int_equal(fl, NV);
            assert_int_equal(gw, x < 0 ? 0xffffffff80000000ull : 0x7fffffffull);
        } else {
            assert_int_equal(gw, (uint64_t)(int64_t)r);
            assert_int_equal(fl, r != x ? NX : 0);
        }
    }
    free_hart(h);
}

/* ------------------------------------------------------------------ */
/* Loads and stores (through the stubbed MMU slow path) */

#ifdef FP_TEST_STANDALONE
static void test_load_store(void **state) {
    (void)state;
    struct hart *h = new_hart();
    memset(test_mem, 0, sizeof test_mem);
    uint32_t w = 0x3fc00000;
    uint64_t dw = 0x400921fb54442d18ull;
    memcpy(test_mem + 16, &w, 4);
    memcpy(test_mem + 24, &dw, 8);
    h->x[11] = MEM_BASE + 20;
    /* flw f10, -4(x11): NaN-boxed */
    run_ok(h, itype(-4, 11, 2, 10, 0x07));
    assert_int_equal(h->f[10], BOX | 0x3fc00000);
    assert_int_equal(h->mstatus & MSTATUS_FS, MSTATUS_FS);
    /* fld f11, 4(x11) */
    run_ok(h, itype(4, 11, 3, 11, 0x07));
    assert_int_equal(h->f[11], dw);
    /* fsw stores the low 32 bits, boxed or not */
    h->f[12] = 0x12345678cafef00dull;
    run_ok(h, stype(12, 12, 11, 2, 0x27));
    uint32_t got32;
    memcpy(&got32, test_mem + 32, 4);
    assert_int_equal(got32, 0xcafef00d);
    /* fsd f11, -20(x11) */
    run_ok(h, stype(-20, 11, 11, 3, 0x27));
    uint64_t got64;
    memcpy(&got64, test_mem, 8);
    assert_int_equal(got64, dw);
    /* a fault leaves the register alone and does not advance */
    h->f[10] = 0x1111;
    h->x[11] = 0x100;
    h->mstatus = 1ull << MSTATUS_FS_SHIFT;
    assert_false(run(h, itype(0, 11, 3, 10, 0x07)));
    assert_int_equal(h->mcause, EXC_LOAD_ACCESS);
    assert_int_equal(h->f[10], 0x1111);
    assert_int_equal(h->mstatus & MSTATUS_FS, 1ull << MSTATUS_FS_SHIFT);
    assert_false(run(h, stype(0, 10, 11, 2, 0x27)));
    assert_int_equal(h->mcause, EXC_STORE_ACCESS);
    /* stores do not dirty FS */
    h->x[11] = MEM_BASE;
    assert_true(run(h, stype(0, 10, 11, 3, 0x27)));
    assert_int_equal(h->mstatus & MSTATUS_FS, 1ull << MSTATUS_FS_SHIFT);
    free_hart(h);
}
#endif

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_rounding_add),
        cmocka_unit_test(test_rounding_mul_div_sqrt),
        cmocka_unit_test(test_fma),
        cmocka_unit_test(test_nan_boxing),
        cmocka_unit_test(test_canonical_nan),
        cmocka_unit_test(test_minmax),
        cmocka_unit_test(test_compare),
        cmocka_unit_test(test_fclass),
        cmocka_unit_test(test_sign_injection),
        cmocka_unit_test(test_fcvt_to_int),
        cmocka_unit_test(test_fcvt_from_int),
        cmocka_unit_test(test_fcvt_fp_fp),
        cmocka_unit_test(test_over_underflow),
        cmocka_unit_test(test_fs_and_flags),
        cmocka_unit_test(test_invalid_rm),
        cmocka_unit_test(test_host_state_restored),
        cmocka_unit_test(test_host_state_foreign),
        cmocka_unit_test(test_random_vs_soft),
        cmocka_unit_test(test_random_nonfinite_all_modes),
        cmocka_unit_test(test_random_int_conversions),
#ifdef FP_TEST_STANDALONE
        cmocka_unit_test(test_load_store),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
