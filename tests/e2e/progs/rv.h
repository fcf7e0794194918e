/* Shared by the guest programs of tests/e2e/test_jit.py: RISC-V instruction
 * encoders (for code generated at run time), the C models of what that code
 * computes, and small helpers (pinning, flushing the instruction cache,
 * failure counting).
 *
 * The programs build for riscv64 (run in the guest) and for the host: on the
 * host only the models run (`PROG model ...`), printing the CHECK lines the
 * guest must print too, so the expected values come from an independent
 * machine. Code generation is plain C and builds everywhere; running the
 * generated code is only compiled for RISC-V (#ifdef __riscv). */
#ifndef RV_H
#define RV_H

#define _GNU_SOURCE
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ZERO = 0, RA = 1, SP = 2, T0 = 5, T1 = 6, T2 = 7, A0 = 10, A1 = 11, A2 = 12, A3 = 13, A4 = 14, A5 = 15 };

static inline uint32_t rv_i(int32_t imm, int rs1, int f3, int rd, int op) {
    return ((uint32_t)imm & 0xfff) << 20 | (uint32_t)rs1 << 15 | (uint32_t)f3 << 12 | (uint32_t)rd << 7 | (uint32_t)op;
}
static inline uint32_t rv_r(int f7, int rs2, int rs1, int f3, int rd, int op) {
    return (uint32_t)f7 << 25 | (uint32_t)rs2 << 20 | (uint32_t)rs1 << 15 | (uint32_t)f3 << 12 | (uint32_t)rd << 7 |
           (uint32_t)op;
}
#define ADDI(rd, rs, imm) rv_i((imm), (rs), 0, (rd), 0x13)
#define XORI(rd, rs, imm) rv_i((imm), (rs), 4, (rd), 0x13)
#define ORI(rd, rs, imm) rv_i((imm), (rs), 6, (rd), 0x13)
#define ANDI(rd, rs, imm) rv_i((imm), (rs), 7, (rd), 0x13)
#define SLLI(rd, rs, sh) rv_i((sh) & 63, (rs), 1, (rd), 0x13)
#define SRLI(rd, rs, sh) rv_i((sh) & 63, (rs), 5, (rd), 0x13)
#define ADDIW(rd, rs, imm) rv_i((imm), (rs), 0, (rd), 0x1b)
#define ADD(rd, a, b) rv_r(0, (b), (a), 0, (rd), 0x33)
#define SUB(rd, a, b) rv_r(0x20, (b), (a), 0, (rd), 0x33)
#define XOR(rd, a, b) rv_r(0, (b), (a), 4, (rd), 0x33)
#define OR(rd, a, b) rv_r(0, (b), (a), 6, (rd), 0x33)
#define MUL(rd, a, b) rv_r(1, (b), (a), 0, (rd), 0x33)
#define LUI(rd, imm20) ((((uint32_t)(imm20)) & 0xfffff) << 12 | (uint32_t)(rd) << 7 | 0x37)
#define AUIPC(rd, imm20) ((((uint32_t)(imm20)) & 0xfffff) << 12 | (uint32_t)(rd) << 7 | 0x17)
#define LD(rd, rs, imm) rv_i((imm), (rs), 3, (rd), 0x03)
#define NOP ADDI(ZERO, ZERO, 0)
#define RET 0x00008067u
#define FENCE_I 0x0000100fu
#define EBREAK 0x00100073u

static inline uint32_t JAL(int rd, int32_t off) {
    uint32_t i = (uint32_t)off;
    return ((i >> 20) & 1) << 31 | ((i >> 1) & 0x3ff) << 21 | ((i >> 11) & 1) << 20 | ((i >> 12) & 0xff) << 12 |
           (uint32_t)rd << 7 | 0x6f;
}
static inline uint32_t BRANCH(int f3, int rs1, int rs2, int32_t off) {
    uint32_t i = (uint32_t)off;
    return ((i >> 12) & 1) << 31 | ((i >> 5) & 0x3f) << 25 | (uint32_t)rs2 << 20 | (uint32_t)rs1 << 15 |
           (uint32_t)f3 << 12 | ((i >> 1) & 0xf) << 8 | ((i >> 11) & 1) << 7 | 0x63;
}
#define BNE(a, b, off) BRANCH(1, (a), (b), (off))
static inline uint32_t STORE(int f3, int rs2, int rs1, int32_t imm) {
    uint32_t i = (uint32_t)imm;
    return ((i >> 5) & 0x7f) << 25 | (uint32_t)rs2 << 20 | (uint32_t)rs1 << 15 | (uint32_t)f3 << 12 | (i & 0x1f) << 7 |
           0x23;
}
#define SW(rs2, rs1, imm) STORE(2, (rs2), (rs1), (imm))
#define SD(rs2, rs1, imm) STORE(3, (rs2), (rs1), (imm))
/* Compressed (16-bit) instructions; imm is 6-bit signed. */
static inline uint16_t C_LI(int rd, int imm) {
    return (uint16_t)(0x4001 | (((unsigned)imm >> 5) & 1) << 12 | (unsigned)rd << 7 | ((unsigned)imm & 0x1f) << 2);
}
static inline uint16_t C_ADDI(int rd, int imm) {
    return (uint16_t)(0x0001 | (((unsigned)imm >> 5) & 1) << 12 | (unsigned)rd << 7 | ((unsigned)imm & 0x1f) << 2);
}
#define C_RET ((uint16_t)0x8082)

static inline int64_t sext(uint64_t v, int bits) { return (int64_t)(v << (64 - bits)) >> (64 - bits); }

/* An emitter over a byte buffer: 4-byte words at any 2-byte alignment. */
struct emit {
    uint8_t *p;
};
static inline void emit32(struct emit *e, uint32_t w) {
    memcpy(e->p, &w, 4);
    e->p += 4;
}
static inline void emit16(struct emit *e, uint16_t h) {
    memcpy(e->p, &h, 2);
    e->p += 2;
}
/* rd = the sign-extended 32-bit value v (lui + addiw), always 8 bytes. */
static inline void emit_li32(struct emit *e, int rd, int32_t v) {
    int32_t lo = (int32_t)sext((uint32_t)v & 0xfff, 12);
    uint32_t hi = (uint32_t)(((int64_t)v - lo) >> 12) & 0xfffff;
    emit32(e, LUI(rd, hi));
    emit32(e, ADDIW(rd, rd, lo));
}

/* A small deterministic generator (the same on every machine). */
static inline uint64_t rng_next(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    uint64_t x = *s;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    return x ^ (x >> 32);
}

static inline uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
}

static int failures;
static void fail(const char *fmt, ...) {
    if (++failures > 20) return; /* enough to see the pattern */
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}

#ifdef __riscv
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef uint64_t (*fn1)(uint64_t);

/* The riscv_flush_icache system call: flags 0 makes every hart running
 * this process see the new code (the kernel fences them all). */
static inline void flush_icache_all(void *start, void *end) {
    syscall(__NR_riscv_flush_icache, start, end, 0UL);
}

static inline void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        perror("sched_setaffinity");
        exit(2);
    }
}
#endif

#endif
