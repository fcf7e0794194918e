/* Differential test of the binary translator (src/jit/) against the
 * interpreter (src/hart/run.c), which is the reference.
 *
 * Method. A seeded generator writes a random RISC-V program (RV64IMAFDC,
 * Zicsr, Zifencei, privileged instructions) into a template of guest RAM,
 * with trap handlers, page tables and data around it. Two machines start
 * from identical copies of that state: each has its own hart, guest RAM,
 * code_page slots and scratch MMIO device, one is run by hart_run, the
 * other by jit_run with its own jit_hart. They run in lockstep, a random
 * number of instructions at a time, and after every step the harts are
 * compared field by field (x, f, pc, fcsr, privilege, instret, the M and S
 * CSRs, the LR/SC reservation, trap statistics, then whatever else struct
 * hart_state holds) together with the memory the program can write (code,
 * data, page tables, the device); all of guest RAM is compared when the
 * program ends.
 *
 * Lockstep. hart_run(h, n) runs exactly n instructions, except that a
 * fetch fault uses up one unit of the budget without retiring anything.
 * jit_run(j, h, n) runs whole blocks, so it may go up to a block further
 * than asked. Neither ever stops in the middle of an instruction, so the
 * runner steps one engine by n and then steps whichever is behind by the
 * difference in icount until both have the same icount; that is a point
 * where the two must agree exactly. Instructions that trap count in icount
 * in both engines (interrupts and fetch faults do not).
 *   At such a point the engines may still differ in what their outer loops
 * do between instructions: jit_run looks at interrupts before it looks at
 * its budget, hart_run after; hart_run counts a fetch fault against its
 * budget, jit_run stops before the fetch. So one engine may have taken an
 * interrupt or a fetch fault (neither retires an instruction) that the
 * other takes first thing on its next call. The runner settles both harts
 * the same way before comparing: a pending, enabled interrupt is taken and
 * the next fetch translated (taking its fault), as both loops would. And a
 * wfi with nothing pending wakes at once (a spurious wake-up, which the ISA
 * allows): wfi is cleared after every step and not compared.
 *
 * The programs are sequences of units (see kinds[]): arithmetic with edge
 * operands, loads, stores, AMOs and LR/SC at good, misaligned,
 * page-crossing, faulting and device addresses, FP with special values and
 * every rounding mode, CSRs, interrupts, traps, random instruction words,
 * fences, forward branches and jumps, calls, counted loops, self-modifying
 * code (a store of each kind into the code ahead or into a loop behind,
 * with or without fence.i), code written into a frame and called, long
 * straight runs. Control flow always terminates: branches and jumps only go
 * forward, loops count with a register nothing else in the loop may write,
 * calls return through x5 which their body may not write. The trap
 * handlers (M-mode, and S-mode for delegated exceptions) use only x30/x31,
 * which the program never writes: they skip the instruction at xepc (2 or
 * 4 bytes, read from memory), return to x1 after a fetch fault (the program
 * makes fetch faults only with `jalr x1`), clear the software interrupt it
 * sets on purpose, and stop at END when the final trap (an ecall, or an
 * ebreak when the SBI is in the monitor) is taken. The seed picks one of
 * three variants: M-mode bare (or with MPRV games), S-mode (half of them
 * with the SBI in the monitor: ecall is a hypercall) and U-mode, the last
 * two under Sv39 with identity maps, pages with every permission case,
 * A/D updates, random exception delegation, an alias page at a low address
 * that S-mode remaps between two code frames, and a writable alias of a
 * code frame.
 *
 * Reproducing. Each program comes from one seed. JIT_DIFF_SEED=s
 * JIT_DIFF_SEEDS=1 runs that program alone; JIT_DIFF_UNITS=3,17 keeps only
 * those units of it (the others become nops of the same size, so the code
 * keeps its layout). On a mismatch the test prints the differences, the
 * code around pc, the interpreter's path since the last agreeing point,
 * then shrinks the program to the units that still show the mismatch.
 *
 * Environment: JIT_DIFF_SEED (first seed), JIT_DIFF_SEEDS (programs),
 * JIT_DIFF_SECONDS (run for that long instead), JIT_DIFF_KEEP_GOING (do not
 * stop at the first mismatch), JIT_DIFF_VERBOSE (list every program),
 * JIT_DIFF_STATS (compare stats.mem_ops too), JIT_DIFF_SELF (interpreter
 * against interpreter: any mismatch is the harness's own). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "hart/code_cache.h"
#include "hart/csr.h"
#include "hart/exec.h"
#include "hart/hart.h"
#include "jit/jit.h"
#include "hart/mem.h"
#include "mmu/phys.h"

/* ------------------------------------------------------------------ */
/* Guest memory layout */

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (4ull << 20)
#define RAM_FRAMES (RAM_SIZE >> 12)
#define PAGE 4096ull

#define HANDLER_M (RAM_BASE + 0x000)  /* M-mode trap handler, then END */
#define HANDLER_S (RAM_BASE + 0x800)  /* S-mode trap handler */
#define CODE_BASE (RAM_BASE + 0x1000) /* the program */
#define CODE_PAGES 16
#define CODE_END (CODE_BASE + CODE_PAGES * PAGE)
#define ALIAS_F1 (RAM_BASE + 0x20000) /* two frames of callable code */
#define ALIAS_F2 (RAM_BASE + 0x21000)
#define ALIAS_X 0x400000ull          /* Sv39: maps F1 or F2 (S-mode switches it); a low address, */
                                      /* so translated code handles pcs that fit 32 bits too */
#define ALIAS_W (RAM_BASE + 0x31000)  /* Sv39: F1 again, writable */
#define SCRATCH (RAM_BASE + 0x40000)  /* a frame the program writes code into, then calls */
#define SLED (RAM_BASE + 0x50000)     /* SLED_PAGES of c.jr ra: functions that only return */
#define SLED_PAGES 4
#define DATA_BASE (RAM_BASE + 0x100000)
#define DATA_PAGES 16
#define PT_BASE (RAM_BASE + 0x200000) /* root, two level-1 tables, two level-0 tables */
#define PT_PAGES 5
#define MMIO_BASE 0x10000000ull       /* a page of device registers that hold what is written */
#define MMIO_SIZE 4096u
#define HOLE 0x90000000ull            /* neither RAM nor device: access faults */

/* Data pages with a special Sv39 mapping (the others are plain read-write). */
enum { DP_NO_AD = 10, DP_READ_ONLY = 11, DP_UNMAPPED = 12, DP_OTHER_U = 13, DP_EXEC_ONLY = 14, DP_NO_D = 15 };

/* What the lockstep compares after every step (the rest only at the end). */
static const struct { uint64_t start, len; } windows[] = {
    {RAM_BASE, SCRATCH + PAGE - RAM_BASE},
    {DATA_BASE, (DATA_PAGES + 1) * PAGE},
    {PT_BASE, PT_PAGES * PAGE},
};

#define PTE_V (1ull << 0)
#define PTE_R (1ull << 1)
#define PTE_W (1ull << 2)
#define PTE_X (1ull << 3)
#define PTE_U (1ull << 4)
#define PTE_A (1ull << 6)
#define PTE_D (1ull << 7)

/* Registers with a fixed job (see the header comment). */
enum { X_RA = 1, X_SP = 2, X_LINK = 5, X_T5 = 30, X_T6 = 31 };
static const uint8_t pinned_regs[] = {2, 10, 13, 14, 15}; /* the translator keeps these in host registers */

enum variant { V_M, V_S, V_U, NVARIANTS };
static const char *const variant_name[] = {"M-mode", "S-mode/Sv39", "U-mode/Sv39"};

/* ------------------------------------------------------------------ */
/* Random numbers */

static uint64_t next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static unsigned below(uint64_t *s, unsigned n) { return (unsigned)(next(s) % n); }
static bool chance(uint64_t *s, unsigned percent) { return below(s, 100) < percent; }
static uint64_t mix(uint64_t a, uint64_t b) {
    uint64_t s = a ^ (b * 0xd1342543de82ef95ull);
    return next(&s);
}

/* ------------------------------------------------------------------ */
/* Instruction encoders */

enum {
    OPC_LOAD = 0x03, OPC_LOAD_FP = 0x07, OPC_MISC_MEM = 0x0f, OPC_OP_IMM = 0x13, OPC_AUIPC = 0x17,
    OPC_OP_IMM_32 = 0x1b, OPC_STORE = 0x23, OPC_STORE_FP = 0x27, OPC_AMO = 0x2f, OPC_OP = 0x33,
    OPC_LUI = 0x37, OPC_OP_32 = 0x3b, OPC_OP_FP = 0x53, OPC_BRANCH = 0x63, OPC_JALR = 0x67,
    OPC_JAL = 0x6f, OPC_SYSTEM = 0x73,
};

static uint32_t enc_r(unsigned f7, unsigned rs2, unsigned rs1, unsigned f3, unsigned rd, unsigned op) {
    return f7 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | op;
}
static uint32_t enc_i(int32_t imm, unsigned rs1, unsigned f3, unsigned rd, unsigned op) {
    return ((uint32_t)imm & 0xfff) << 20 | rs1 << 15 | f3 << 12 | rd << 7 | op;
}
static uint32_t enc_s(int32_t imm, unsigned rs2, unsigned rs1, unsigned f3, unsigned op) {
    uint32_t u = (uint32_t)imm;
    return (u >> 5 & 0x7f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | (u & 0x1f) << 7 | op;
}
static uint32_t enc_b(int32_t imm, unsigned rs2, unsigned rs1, unsigned f3) {
    uint32_t u = (uint32_t)imm;
    return (u >> 12 & 1) << 31 | (u >> 5 & 0x3f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | (u >> 1 & 0xf) << 8 |
           (u >> 11 & 1) << 7 | OPC_BRANCH;
}
static uint32_t enc_u(uint32_t imm20, unsigned rd, unsigned op) { return (imm20 & 0xfffff) << 12 | rd << 7 | op; }
static uint32_t enc_j(int32_t imm, unsigned rd) {
    uint32_t u = (uint32_t)imm;
    return (u >> 20 & 1) << 31 | (u >> 1 & 0x3ff) << 21 | (u >> 11 & 1) << 20 | (u >> 12 & 0xff) << 12 | rd << 7 |
           OPC_JAL;
}
static uint32_t enc_csr(unsigned f3, unsigned csr, unsigned rs1_or_uimm, unsigned rd) {
    return csr << 20 | rs1_or_uimm << 15 | f3 << 12 | rd << 7 | OPC_SYSTEM;
}
static uint32_t enc_amo(unsigned f5, bool dbl, unsigned aqrl, unsigned rs2, unsigned rs1, unsigned rd) {
    return f5 << 27 | aqrl << 25 | rs2 << 20 | rs1 << 15 | (dbl ? 3u : 2u) << 12 | rd << 7 | OPC_AMO;
}
static uint32_t enc_fma(unsigned op, bool dbl, unsigned rs3, unsigned rs2, unsigned rs1, unsigned rm, unsigned rd) {
    return rs3 << 27 | (unsigned)dbl << 25 | rs2 << 20 | rs1 << 15 | rm << 12 | rd << 7 | op;
}

#define NOP 0x00000013u
#define C_NOP 0x0001u
#define ECALL 0x00000073u
#define EBREAK 0x00100073u
#define C_EBREAK 0x9002u
#define MRET 0x30200073u
#define SRET 0x10200073u
#define WFI 0x10500073u
#define FENCE_I 0x0000100fu
enum { F3_CSRRW = 1, F3_CSRRS = 2, F3_CSRRC = 3, F3_CSRRWI = 5, F3_CSRRSI = 6, F3_CSRRCI = 7 };

/* Compressed encoders; register arguments of the x8..x15 forms are full numbers. */
static uint16_t c_ci(unsigned f3, int32_t imm6, unsigned rd, unsigned quadrant) {
    uint32_t u = (uint32_t)imm6;
    return (uint16_t)(f3 << 13 | (u >> 5 & 1) << 12 | rd << 7 | (u & 0x1f) << 2 | quadrant);
}
static uint16_t c_addi16sp(int32_t imm) {
    uint32_t u = (uint32_t)imm;
    return (uint16_t)(3u << 13 | (u >> 9 & 1) << 12 | 2u << 7 | (u >> 4 & 1) << 6 | (u >> 6 & 1) << 5 |
                      (u >> 7 & 3) << 3 | (u >> 5 & 1) << 2 | 1);
}
static uint16_t c_addi4spn(unsigned rdp, unsigned imm) {
    return (uint16_t)((imm >> 4 & 3) << 11 | (imm >> 6 & 0xf) << 7 | (imm >> 2 & 1) << 6 | (imm >> 3 & 1) << 5 |
                      (rdp - 8) << 2);
}
static uint16_t c_shift_andi(unsigned kind, unsigned rdp, int32_t imm6) {
    uint32_t u = (uint32_t)imm6;
    return (uint16_t)(4u << 13 | (u >> 5 & 1) << 12 | kind << 10 | (rdp - 8) << 7 | (u & 0x1f) << 2 | 1);
}
static uint16_t c_arith(unsigned word, unsigned sel, unsigned rdp, unsigned rs2p) {
    return (uint16_t)(4u << 13 | word << 12 | 3u << 10 | (rdp - 8) << 7 | sel << 5 | (rs2p - 8) << 2 | 1);
}
static uint16_t c_j(int32_t off) {
    uint32_t u = (uint32_t)off;
    return (uint16_t)(5u << 13 | (u >> 11 & 1) << 12 | (u >> 4 & 1) << 11 | (u >> 8 & 3) << 9 | (u >> 10 & 1) << 8 |
                      (u >> 6 & 1) << 7 | (u >> 7 & 1) << 6 | (u >> 1 & 7) << 3 | (u >> 5 & 1) << 2 | 1);
}
static uint16_t c_bz(bool bnez, unsigned rs1p, int32_t off) {
    uint32_t u = (uint32_t)off;
    return (uint16_t)((6u | bnez) << 13 | (u >> 8 & 1) << 12 | (u >> 3 & 3) << 10 | (rs1p - 8) << 7 |
                      (u >> 6 & 3) << 5 | (u >> 1 & 3) << 3 | (u >> 5 & 1) << 2 | 1);
}
/* c.mv (0, rd, rs2), c.add (1, rd, rs2), c.jr (0, rs1, 0), c.jalr (1, rs1, 0) */
static uint16_t c_cr(unsigned bit12, unsigned rd, unsigned rs2) {
    return (uint16_t)(4u << 13 | bit12 << 12 | rd << 7 | rs2 << 2 | 2);
}
static uint16_t c_lwsp(unsigned rd, unsigned off) {
    return (uint16_t)(2u << 13 | (off >> 5 & 1) << 12 | rd << 7 | (off >> 2 & 7) << 4 | (off >> 6 & 3) << 2 | 2);
}
/* c.ldsp (f3 3), c.fldsp (f3 1) */
static uint16_t c_ldsp(unsigned f3, unsigned rd, unsigned off) {
    return (uint16_t)(f3 << 13 | (off >> 5 & 1) << 12 | rd << 7 | (off >> 3 & 3) << 5 | (off >> 6 & 7) << 2 | 2);
}
static uint16_t c_swsp(unsigned rs2, unsigned off) {
    return (uint16_t)(6u << 13 | (off >> 2 & 0xf) << 9 | (off >> 6 & 3) << 7 | rs2 << 2 | 2);
}
/* c.sdsp (f3 7), c.fsdsp (f3 5) */
static uint16_t c_sdsp(unsigned f3, unsigned rs2, unsigned off) {
    return (uint16_t)(f3 << 13 | (off >> 3 & 7) << 10 | (off >> 6 & 7) << 7 | rs2 << 2 | 2);
}
/* c.lw (f3 2), c.sw (f3 6) */
static uint16_t c_lsw(unsigned f3, unsigned rdp, unsigned rs1p, unsigned off) {
    return (uint16_t)(f3 << 13 | (off >> 3 & 7) << 10 | (rs1p - 8) << 7 | (off >> 2 & 1) << 6 | (off >> 6 & 1) << 5 |
                      (rdp - 8) << 2);
}
/* c.ld (3), c.sd (7), c.fld (1), c.fsd (5) */
static uint16_t c_lsd(unsigned f3, unsigned rdp, unsigned rs1p, unsigned off) {
    return (uint16_t)(f3 << 13 | (off >> 3 & 7) << 10 | (rs1p - 8) << 7 | (off >> 6 & 3) << 5 | (rdp - 8) << 2);
}

static int32_t sext(uint64_t v, unsigned bits) { return (int32_t)((int64_t)(v << (64 - bits)) >> (64 - bits)); }

/* ------------------------------------------------------------------ */
/* The assembler: emits into the RAM template, with labels and fixups */

#define MAX_LABELS 2048
#define MAX_FIXUPS 4096
#define MAX_PENDING 64
#define MAX_UNITS 256

enum fixup_kind { FX_B, FX_CB, FX_J, FX_CJ, FX_HI20, FX_LO12_I, FX_LO12_S };
struct fixup {
    uint64_t at, anchor; /* the instruction to patch; what the offset is relative to */
    unsigned label;
    int32_t addend;      /* the target is the label's address plus this */
    enum fixup_kind kind;
};

/* One top-level unit of a program, for listings. */
struct unit_rec {
    uint64_t start, end;
    unsigned index;
    uint8_t kind;
};

struct gen {
    uint8_t *ram;        /* the template; ram[0] is RAM_BASE */
    uint64_t pc;         /* where the next instruction goes */
    uint64_t *r;         /* the random stream in use */
    enum variant v;
    uint32_t forbidden;  /* registers the code being generated must not write */
    uint64_t label[MAX_LABELS];
    unsigned nlabels;
    struct fixup fix[MAX_FIXUPS];
    unsigned nfix;
    struct { unsigned label, left; } pend[MAX_PENDING]; /* forward labels bound `left` units later */
    unsigned npend;
    unsigned alias_slots; /* 4-byte instructions in each alias frame before its return */
    bool sbi;             /* ecall in S-mode is an SBI call, which writes a0 and a1 */
};

static uint8_t *at(struct gen *g, uint64_t addr) { return g->ram + (addr - RAM_BASE); }
static uint32_t rd32(struct gen *g, uint64_t addr) {
    uint32_t w;
    memcpy(&w, at(g, addr), 4);
    return w;
}
static void wr32(struct gen *g, uint64_t addr, uint32_t w) { memcpy(at(g, addr), &w, 4); }
static void wr16(struct gen *g, uint64_t addr, uint16_t w) { memcpy(at(g, addr), &w, 2); }

static void emit(struct gen *g, uint32_t w) {
    wr32(g, g->pc, w);
    g->pc += 4;
}
static void emitc(struct gen *g, uint16_t w) {
    wr16(g, g->pc, w);
    g->pc += 2;
}

static unsigned new_label(struct gen *g) {
    assert_true(g->nlabels < MAX_LABELS);
    g->label[g->nlabels] = 0;
    return g->nlabels++;
}
static void bind(struct gen *g, unsigned l) { g->label[l] = g->pc; }
static void fixup_plus(struct gen *g, enum fixup_kind kind, unsigned l, uint64_t anchor, int32_t addend) {
    assert_true(g->nfix < MAX_FIXUPS);
    g->fix[g->nfix++] = (struct fixup){.at = g->pc, .anchor = anchor, .label = l, .addend = addend, .kind = kind};
}
static void fixup(struct gen *g, enum fixup_kind kind, unsigned l, uint64_t anchor) {
    fixup_plus(g, kind, l, anchor, 0);
}
/* Binds l once `units` more top-level units are out (forward jumps only). */
static void bind_later(struct gen *g, unsigned l, unsigned units) {
    if (g->npend == MAX_PENDING) units = 0;
    if (units == 0) {
        bind(g, l);
        return;
    }
    g->pend[g->npend].label = l;
    g->pend[g->npend++].left = units;
}
static void bind_due(struct gen *g, bool all) {
    for (unsigned k = 0; k < g->npend;) {
        if (all || --g->pend[k].left == 0) {
            bind(g, g->pend[k].label);
            g->pend[k] = g->pend[--g->npend];
        } else {
            k++;
        }
    }
}

/* Patches the immediate of every fixup; a branch that cannot reach its
 * label becomes a nop of the same size, which keeps the program valid. */
static void resolve(struct gen *g) {
    for (unsigned k = 0; k < g->nfix; k++) {
        const struct fixup *f = &g->fix[k];
        int64_t off = (int64_t)(g->label[f->label] - f->anchor) + f->addend;
        uint16_t h;
        uint32_t w = rd32(g, f->at);
        int32_t hi = (int32_t)((off + 0x800) >> 12), lo = (int32_t)(off - ((int64_t)hi << 12));
        switch (f->kind) {
        case FX_B:
            w = off >= -4096 && off < 4096 ? (w & 0x01fff07fu) | enc_b((int32_t)off, 0, 0, 0) : NOP;
            break;
        case FX_J:
            w = off >= -(1 << 20) && off < (1 << 20) ? (w & 0xfffu) | (enc_j((int32_t)off, 0) & ~0xfffu) : NOP;
            break;
        case FX_HI20: w = (w & 0xfffu) | enc_u((uint32_t)hi, 0, 0); break;
        case FX_LO12_I: w = (w & 0x000fffffu) | enc_i(lo, 0, 0, 0, 0); break;
        case FX_LO12_S: w = (w & 0x01fff07fu) | enc_s(lo, 0, 0, 0, 0); break;
        case FX_CB:
            memcpy(&h, at(g, f->at), 2);
            h = off >= -256 && off < 256 ? (uint16_t)((h & 0xe383u) | (c_bz(false, 8, (int32_t)off) & 0x1c7cu)) : C_NOP;
            wr16(g, f->at, h);
            continue;
        case FX_CJ:
            h = off >= -2048 && off < 2048 ? c_j((int32_t)off) : C_NOP;
            wr16(g, f->at, h);
            continue;
        }
        wr32(g, f->at, w);
    }
}

/* rd = v, with the shortest lui/addiw/slli/addi sequence this finds. */
static void emit_li(struct gen *g, unsigned rd, uint64_t v) {
    int64_t s = (int64_t)v;
    if (s >= -2048 && s < 2048) {
        if (rd && s >= -32 && s < 32 && chance(g->r, 30)) emitc(g, c_ci(2, (int32_t)s, rd, 1)); /* c.li */
        else emit(g, enc_i((int32_t)s, 0, 0, rd, OPC_OP_IMM));
        return;
    }
    int32_t lo = sext(v & 0xfff, 12);
    if (s == (int32_t)s) {
        emit(g, enc_u((uint32_t)((v - (uint64_t)(int64_t)lo) >> 12), rd, OPC_LUI));
        if (lo) emit(g, enc_i(lo, rd, 0, rd, OPC_OP_IMM_32));
        return;
    }
    /* v - lo has its low 12 bits clear; shifting it right arithmetically and
     * back is exact modulo 2^64, which is all slli and addi need. */
    int64_t hi = (int64_t)(v - (uint64_t)(int64_t)lo) >> 12;
    unsigned shift = 12;
    while (hi && !(hi & 1)) {
        hi >>= 1;
        shift++;
    }
    emit_li(g, rd, (uint64_t)hi);
    emit(g, enc_i((int32_t)shift, rd, 1, rd, OPC_OP_IMM));
    if (lo) emit(g, enc_i(lo, rd, 0, rd, OPC_OP_IMM));
}

/* Nops over [from, to): 4-byte ones, and a compressed one for an odd parcel. */
static void fill_nops(struct gen *g, uint64_t from, uint64_t to) {
    for (uint64_t a = from; a < to;) {
        if (to - a >= 4) {
            wr32(g, a, NOP);
            a += 4;
        } else {
            wr16(g, a, C_NOP);
            a += 2;
        }
    }
}

/* auipc rd, %hi(l); the caller emits the %lo user right after. */
static uint64_t emit_auipc_to(struct gen *g, unsigned rd, unsigned l) {
    uint64_t anchor = g->pc;
    fixup(g, FX_HI20, l, anchor);
    emit(g, enc_u(0, rd, OPC_AUIPC));
    return anchor;
}

/* ------------------------------------------------------------------ */
/* Generator: operands */

/* Any register as a source: the pinned ones and x0 come up often. */
static unsigned pick_src(struct gen *g) {
    unsigned k = below(g->r, 100);
    if (k < 25) return pinned_regs[below(g->r, sizeof pinned_regs)];
    if (k < 32) return 0;
    return below(g->r, 32);
}
static bool writable(const struct gen *g, unsigned r) { return !(g->forbidden >> r & 1); }
static unsigned pick_dst(struct gen *g) {
    for (;;) {
        unsigned r = pick_src(g);
        if (writable(g, r)) return r;
    }
}
/* A register the unit loads a value into first (a base, a value to store). */
static unsigned pick_reg(struct gen *g) {
    for (;;) {
        unsigned r = pick_dst(g);
        if (r) return r;
    }
}
static unsigned pick_other(struct gen *g, unsigned not) {
    for (;;) {
        unsigned r = pick_reg(g);
        if (r != not) return r;
    }
}
/* x8..x15, the registers of the compressed forms. */
static unsigned pick_creg(struct gen *g, bool dst) {
    for (;;) {
        unsigned r = 8 + below(g->r, 8);
        if (!dst || writable(g, r)) return r;
    }
}
/* rd, rs1, rs2 with aliases among them in about half the cases. */
static void pick3(struct gen *g, unsigned *rd, unsigned *rs1, unsigned *rs2) {
    *rd = pick_dst(g);
    *rs1 = pick_src(g);
    *rs2 = pick_src(g);
    switch (below(g->r, 8)) {
    case 0: *rs1 = *rd; break;
    case 1: *rs2 = *rd; break;
    case 2: *rs2 = *rs1; break;
    case 3: *rs1 = *rs2 = *rd; break;
    }
}

/* Values at the edges of signed and unsigned, 32- and 64-bit arithmetic,
 * and shift amounts around the widths; sometimes anything. */
static uint64_t interesting(uint64_t *r) {
    static const uint64_t v[] = {0, 1, ~0ull, 1ull << 63, ~0ull >> 1, 0xffffffff80000000ull, 0x80000000ull,
                                 0x7fffffffull, 0xffffffffull, 31, 32, 63, 64, 0xfffffffffffff800ull, 0x7ff, 0x800,
                                 2, ~1ull, 0xffffffff00000000ull, 0x1ffffffffull};
    unsigned k = below(r, 26);
    if (k < sizeof v / sizeof v[0]) return v[k];
    if (k < 23) return next(r);
    return (uint64_t)(int64_t)(int16_t)next(r);
}
static int32_t imm12(uint64_t *r) {
    static const int32_t v[] = {0, 1, -1, 2047, -2048, 0x7ff & ~7, 8};
    return chance(r, 50) ? v[below(r, 7)] : sext(next(r), 12);
}
static int32_t shamt(uint64_t *r, unsigned max) {
    static const int32_t v[] = {0, 1, 31, 32, 63};
    int32_t s = chance(r, 60) ? v[below(r, 5)] : (int32_t)below(r, max + 1);
    return s > (int32_t)max ? (int32_t)max : s;
}

/* Bit patterns for FP registers: zeros, infinities, NaNs (quiet and
 * signalling), subnormals, limits, values at integer-conversion limits,
 * NaN-boxed singles of the same kinds, and singles that are not boxed. */
static const uint64_t fp_specials[] = {
    0x0000000000000000ull, 0x8000000000000000ull, 0x3ff0000000000000ull, 0xbff8000000000000ull,
    0x7ff0000000000000ull, 0xfff0000000000000ull, 0x7ff8000000000000ull, 0x7ff0000000000001ull,
    0xfff8000000000001ull, 0x0000000000000001ull, 0x000fffffffffffffull, 0x0010000000000000ull,
    0x7fefffffffffffffull, 0x43e0000000000000ull, 0xc3e0000000000000ull, 0x41dfffffffc00000ull,
    0x3fe0000000000000ull, 0x4330000000000000ull, 0x41f0000000000000ull, 0xc1e0000000000000ull,
    0xffffffff00000000ull, 0xffffffff80000000ull, 0xffffffff3f800000ull, 0xffffffff7f800000ull,
    0xffffffffff800000ull, 0xffffffff7fc00000ull, 0xffffffff7f800001ull, 0xffffffff00000001ull,
    0xffffffff7f7fffffull, 0xffffffff4f000000ull, 0xffffffff3f000000ull, 0xffffffff3fc00000ull,
    0xffffffffcf000000ull, 0xffffffff5f000000ull, 0x000000003f800000ull, 0x7fffffff3f800000ull,
};
#define NFP_SPECIALS (sizeof fp_specials / sizeof fp_specials[0])
static uint64_t fp_value(uint64_t *r) {
    if (chance(r, 75)) return fp_specials[below(r, NFP_SPECIALS)];
    uint64_t v = next(r);
    return chance(r, 50) ? v | 0xffffffff00000000ull : v;
}
/* A rounding-mode field: mostly dynamic or valid, sometimes reserved (5, 6). */
static unsigned pick_rm(uint64_t *r) {
    unsigned k = below(r, 20);
    return k < 8 ? 7 : k < 18 ? below(r, 5) : 5 + below(r, 2);
}

/* ------------------------------------------------------------------ */
/* Generator: addresses */

static bool paged(const struct gen *g) { return g->v != V_M; }

static uint64_t aligned_in(uint64_t *r, uint64_t page, unsigned size) {
    return page + below(r, (unsigned)(PAGE / size)) * size;
}

/* A data address for an access of `size` bytes: mostly good RAM, then
 * misaligned, page-crossing, special pages, the device, the hole, code
 * (loads only), and addresses that exist nowhere. */
static uint64_t data_addr(struct gen *g, unsigned size, bool store) {
    uint64_t *r = g->r;
    uint64_t normal = DATA_BASE + below(r, 10) * PAGE;
    unsigned k = below(r, 100);
    if (k < 40) return aligned_in(r, normal, size);
    if (k < 50) return normal + below(r, (unsigned)PAGE - size);
    if (k < 60) return DATA_BASE + (1 + below(r, DATA_PAGES)) * PAGE - 1 - below(r, size > 1 ? size - 1 : 1);
    if (k < 74) return aligned_in(r, DATA_BASE + (10 + below(r, 6)) * PAGE, size) + (chance(r, 15) ? 1 : 0);
    if (k < 82) return MMIO_BASE + below(r, MMIO_SIZE / size) * size + (chance(r, 15) ? 1 : 0);
    if (k < 86) return HOLE + below(r, 1 << 16) * size;
    if (k < 91 && !store) return CODE_BASE + below(r, CODE_PAGES * (unsigned)PAGE - 8);
    static const uint64_t wild[] = {0, 8, ~7ull, 0x4000000000000000ull, 0x0000004000000000ull,
                                    RAM_BASE - 8, RAM_BASE + RAM_SIZE - 4, 0xffffffffc0000000ull};
    if (k < 96) return wild[below(r, sizeof wild / sizeof wild[0])];
    return aligned_in(r, normal, size);
}

/* Loads base = addr - off into a register; returns the register and off.
 * Now and then the base is x0 and the address whatever off makes it. */
static unsigned set_base(struct gen *g, uint64_t addr, int32_t *off, bool may_offset) {
    if (may_offset && chance(g->r, 4)) {
        *off = sext(next(g->r), 12);
        return 0;
    }
    *off = may_offset && chance(g->r, 60) ? imm12(g->r) : 0;
    unsigned rb = pick_reg(g);
    emit_li(g, rb, addr - (uint64_t)(int64_t)*off);
    return rb;
}

/* ------------------------------------------------------------------ */
/* Generator: straight-line units */

static void unit_alu_reg(struct gen *g) {
    static const struct { uint8_t f7, f3, op; } ops[] = {
        {0, 0, OPC_OP}, {0x20, 0, OPC_OP}, {0, 1, OPC_OP}, {0, 2, OPC_OP}, {0, 3, OPC_OP}, {0, 4, OPC_OP},
        {0, 5, OPC_OP}, {0x20, 5, OPC_OP}, {0, 6, OPC_OP}, {0, 7, OPC_OP}, {0, 0, OPC_OP_32},
        {0x20, 0, OPC_OP_32}, {0, 1, OPC_OP_32}, {0, 5, OPC_OP_32}, {0x20, 5, OPC_OP_32}, {1, 0, OPC_OP},
        {1, 1, OPC_OP}, {1, 2, OPC_OP}, {1, 3, OPC_OP}, {1, 0, OPC_OP_32},
    };
    unsigned rd, rs1, rs2, k = below(g->r, sizeof ops / sizeof ops[0]);
    pick3(g, &rd, &rs1, &rs2);
    emit(g, enc_r(ops[k].f7, rs2, rs1, ops[k].f3, rd, ops[k].op));
}

static void unit_alu_imm(struct gen *g) {
    static const uint8_t f3s[] = {0, 2, 3, 4, 6, 7};
    unsigned rd = pick_dst(g), rs1 = chance(g->r, 20) ? rd : pick_src(g);
    if (chance(g->r, 20)) emit(g, enc_i(imm12(g->r), rs1, 0, rd, OPC_OP_IMM_32)); /* addiw */
    else emit(g, enc_i(imm12(g->r), rs1, f3s[below(g->r, 6)], rd, OPC_OP_IMM));
}

static void unit_shift(struct gen *g) {
    unsigned rd = pick_dst(g), rs1 = chance(g->r, 20) ? rd : pick_src(g);
    bool word = chance(g->r, 40);
    if (chance(g->r, 50)) { /* by an immediate */
        int32_t s = shamt(g->r, word ? 31 : 63);
        unsigned kind = below(g->r, 3); /* sll, srl, sra */
        int32_t imm = s | (kind == 2 ? 0x400 : 0);
        emit(g, enc_i(imm, rs1, kind ? 5 : 1, rd, word ? OPC_OP_IMM_32 : OPC_OP_IMM));
        return;
    }
    static const uint64_t amounts[] = {0, 31, 32, 63, 64, 127, ~0ull, 0x8000000000000020ull};
    unsigned rs2 = chance(g->r, 30) ? rs1 : pick_reg(g);
    if (chance(g->r, 70) && writable(g, rs2)) emit_li(g, rs2, amounts[below(g->r, 8)]);
    unsigned kind = below(g->r, 3);
    emit(g, enc_r(kind == 2 ? 0x20 : 0, rs2, rs1, kind ? 5 : 1, rd, word ? OPC_OP_32 : OPC_OP));
}

/* M extension with the operands of its corner cases: division by zero,
 * INT_MIN / -1, in both widths, and with the registers aliased. */
static void unit_muldiv(struct gen *g) {
    static const uint64_t dividends[] = {1ull << 63, 0xffffffff80000000ull, ~0ull, 0, 0x80000000ull, 7};
    static const uint64_t divisors[] = {0, ~0ull, 1, 0xffffffff00000000ull, 0x1ffffffffull, 1ull << 63};
    static const struct { uint8_t f3, op; } ops[] = {
        {0, OPC_OP}, {1, OPC_OP}, {2, OPC_OP}, {3, OPC_OP}, {4, OPC_OP}, {5, OPC_OP}, {6, OPC_OP}, {7, OPC_OP},
        {0, OPC_OP_32}, {4, OPC_OP_32}, {5, OPC_OP_32}, {6, OPC_OP_32}, {7, OPC_OP_32},
    };
    unsigned rs1 = pick_reg(g), rs2 = chance(g->r, 15) ? rs1 : pick_other(g, rs1);
    emit_li(g, rs1, chance(g->r, 70) ? dividends[below(g->r, 6)] : interesting(g->r));
    if (rs2 != rs1) emit_li(g, rs2, chance(g->r, 70) ? divisors[below(g->r, 6)] : interesting(g->r));
    unsigned rd = chance(g->r, 25) ? (chance(g->r, 50) ? rs1 : rs2) : pick_dst(g);
    unsigned k = below(g->r, sizeof ops / sizeof ops[0]);
    emit(g, enc_r(1, rs2, rs1, ops[k].f3, rd, ops[k].op));
}

static void unit_li(struct gen *g) { emit_li(g, pick_dst(g), interesting(g->r)); }

static void unit_upper(struct gen *g) {
    static const uint32_t v[] = {0x80000, 0xfffff, 0x7ffff, 0, 1, 0x80001};
    uint32_t imm = chance(g->r, 60) ? v[below(g->r, 6)] : (uint32_t)next(g->r);
    emit(g, enc_u(imm, pick_dst(g), chance(g->r, 50) ? OPC_LUI : OPC_AUIPC));
}

static void unit_compressed(struct gen *g) {
    unsigned rd = pick_reg(g), rs2 = pick_src(g), p = pick_creg(g, true), q = pick_creg(g, false);
    int32_t imm6 = sext(next(g->r), 6);
    switch (below(g->r, 14)) {
    case 0: emitc(g, c_ci(0, imm6, rd, 1)); break;            /* c.addi */
    case 1: emitc(g, c_ci(1, imm6, rd, 1)); break;            /* c.addiw */
    case 2: emitc(g, c_ci(2, imm6, rd, 1)); break;            /* c.li */
    case 3:                                                   /* c.lui (not x2) */
        if (rd != X_SP && imm6) emitc(g, c_ci(3, imm6, rd, 1));
        break;
    case 4:                                                   /* c.addi16sp */
        if (writable(g, X_SP) && imm6) emitc(g, c_addi16sp(imm6 * 16));
        break;
    case 5: emitc(g, c_addi4spn(p, 4 * (1 + below(g->r, 255)))); break;
    case 6: emitc(g, c_shift_andi(below(g->r, 3), p, chance(g->r, 30) ? 0 : imm6)); break; /* srli srai andi */
    case 7: emitc(g, c_arith(0, below(g->r, 4), p, chance(g->r, 20) ? p : q)); break;     /* sub xor or and */
    case 8: emitc(g, c_arith(1, below(g->r, 2), p, chance(g->r, 20) ? p : q)); break;     /* subw addw */
    case 9: emitc(g, c_ci(0, shamt(g->r, 63), rd, 2)); break;                              /* c.slli */
    case 10: if (rs2) emitc(g, c_cr(0, rd, rs2)); break;                                  /* c.mv */
    case 11: if (rs2) emitc(g, c_cr(1, rd, rs2)); break;                                  /* c.add */
    case 12: emitc(g, C_NOP); break;
    default: emitc(g, c_ci(1, imm6, rd, 1)); break;
    }
}

static void unit_load(struct gen *g) {
    static const struct { uint8_t f3, size; } ops[] = {{0, 1}, {1, 2}, {2, 4}, {3, 8}, {4, 1}, {5, 2}, {6, 4}};
    unsigned k = below(g->r, 7);
    int32_t off;
    unsigned rb = set_base(g, data_addr(g, ops[k].size, false), &off, true);
    unsigned rd = chance(g->r, 20) && writable(g, rb) ? rb : pick_dst(g);
    emit(g, enc_i(off, rb, ops[k].f3, rd, OPC_LOAD));
}

static void unit_store(struct gen *g) {
    unsigned f3 = below(g->r, 4);
    int32_t off;
    unsigned rb = set_base(g, data_addr(g, 1u << f3, true), &off, true);
    unsigned rs2 = chance(g->r, 15) ? rb : pick_src(g);
    emit(g, enc_s(off, rs2, rb, f3, OPC_STORE));
}

static void unit_mem_compressed(struct gen *g) {
    unsigned form = below(g->r, 6);
    bool dbl = chance(g->r, 50), store = chance(g->r, 50), fp = form >= 4;
    unsigned size = dbl || fp ? 8 : 4;
    unsigned off = below(g->r, 32) * size; /* the scaled 5-bit offsets of c.lw/c.ld */
    uint64_t addr = data_addr(g, size, store);
    if (form % 2 == 0) { /* sp-relative: c.lwsp c.ldsp c.swsp c.sdsp c.fldsp c.fsdsp */
        if (!writable(g, X_SP)) return;
        off = below(g->r, 64) * size; /* the scaled 6-bit offsets of c.lwsp/c.ldsp */
        emit_li(g, X_SP, addr - off);
        unsigned r = fp ? below(g->r, 32) : store ? pick_src(g) : pick_reg(g);
        if (fp) emitc(g, store ? c_sdsp(5, r, off) : c_ldsp(1, r, off));
        else if (store) emitc(g, dbl ? c_sdsp(7, r, off) : c_swsp(r, off));
        else emitc(g, dbl ? c_ldsp(3, r, off) : c_lwsp(r, off));
        return;
    }
    unsigned rb = pick_creg(g, true);
    emit_li(g, rb, addr - off);
    unsigned r = fp ? 8 + below(g->r, 8) : pick_creg(g, !store);
    if (fp) emitc(g, c_lsd(store ? 5 : 1, r, rb, off));
    else if (dbl) emitc(g, c_lsd(store ? 7 : 3, r, rb, off));
    else emitc(g, c_lsw(store ? 6 : 2, r, rb, off));
}

static const uint8_t amo_ops[] = {0x01, 0x00, 0x04, 0x0c, 0x08, 0x10, 0x14, 0x18, 0x1c};

static uint64_t amo_addr(struct gen *g, unsigned size) {
    unsigned k = below(g->r, 100);
    if (k < 75) return aligned_in(g->r, DATA_BASE + below(g->r, 10) * PAGE, size);
    if (k < 85) return DATA_BASE + below(g->r, 10) * PAGE + 1 + below(g->r, (unsigned)PAGE - 16);
    return data_addr(g, size, true) & ~(uint64_t)(size - 1);
}

static void unit_amo(struct gen *g) {
    bool dbl = chance(g->r, 50);
    unsigned rb = pick_reg(g);
    emit_li(g, rb, amo_addr(g, dbl ? 8 : 4));
    unsigned rs2 = chance(g->r, 15) ? rb : pick_src(g), rd = chance(g->r, 15) && writable(g, rb) ? rb : pick_dst(g);
    emit(g, enc_amo(amo_ops[below(g->r, sizeof amo_ops)], dbl, below(g->r, 4), rs2, rb, rd));
}

/* LR/SC pairs: matched, with a store or a trap in between, of different
 * sizes or addresses, and SC with no LR. */
static void unit_lrsc(struct gen *g) {
    bool dbl = chance(g->r, 50);
    unsigned rb = pick_reg(g);
    emit_li(g, rb, amo_addr(g, dbl ? 8 : 4));
    uint32_t saved = g->forbidden;
    g->forbidden |= 1u << rb;
    unsigned pattern = below(g->r, 6);
    if (pattern != 5) emit(g, enc_amo(2, dbl, below(g->r, 4), 0, rb, pick_dst(g)));
    switch (pattern) {
    case 1: emit(g, enc_s(0, pick_src(g), rb, dbl ? 3 : 2, OPC_STORE)); break;
    case 2: emit(g, EBREAK); break;
    case 3: dbl = !dbl; break;
    case 4: emit(g, enc_i(chance(g->r, 50) ? 8 : -8, rb, 0, rb, OPC_OP_IMM)); break;
    }
    g->forbidden = saved;
    emit(g, enc_amo(3, dbl, below(g->r, 4), pick_src(g), rb, pick_dst(g)));
}

static void unit_fp_set(struct gen *g) {
    unsigned rt = pick_reg(g), fd = below(g->r, 32);
    emit_li(g, rt, fp_value(g->r));
    emit(g, enc_r(chance(g->r, 75) ? 0x79 : 0x78, 0, rt, 0, fd, OPC_OP_FP)); /* fmv.d.x, fmv.w.x */
}

static void unit_fp_arith(struct gen *g) {
    bool d = chance(g->r, 50);
    unsigned fd = below(g->r, 32), fs1 = chance(g->r, 20) ? fd : below(g->r, 32);
    unsigned fs2 = chance(g->r, 20) ? fs1 : below(g->r, 32);
    switch (below(g->r, 8)) {
    case 0: case 1: case 2: case 3: /* fadd fsub fmul fdiv */
        emit(g, enc_r((below(g->r, 4) << 2) | d, fs2, fs1, pick_rm(g->r), fd, OPC_OP_FP));
        break;
    case 4: emit(g, enc_r(0x2c | d, 0, fs1, pick_rm(g->r), fd, OPC_OP_FP)); break;       /* fsqrt */
    case 5: emit(g, enc_r(0x10 | d, fs2, fs1, below(g->r, 3), fd, OPC_OP_FP)); break;    /* fsgnj[n|x] */
    case 6: emit(g, enc_r(0x14 | d, fs2, fs1, below(g->r, 2), fd, OPC_OP_FP)); break;    /* fmin fmax */
    default: emit(g, enc_r(0x20 | d, d ? 0 : 1, fs1, pick_rm(g->r), fd, OPC_OP_FP)); break; /* fcvt.s.d fcvt.d.s */
    }
}

static void unit_fp_fma(struct gen *g) {
    static const uint8_t ops[] = {0x43, 0x47, 0x4b, 0x4f};
    unsigned fd = below(g->r, 32), fs1 = below(g->r, 32), fs2 = chance(g->r, 20) ? fs1 : below(g->r, 32);
    emit(g, enc_fma(ops[below(g->r, 4)], chance(g->r, 50), below(g->r, 32), fs2, fs1, pick_rm(g->r), fd));
}

/* Conversions between FP and integers, both ways, all widths. */
static void unit_fp_cvt(struct gen *g) {
    bool d = chance(g->r, 50);
    unsigned width = below(g->r, 4); /* w wu l lu */
    if (chance(g->r, 50)) {
        emit(g, enc_r(0x60 | d, width, below(g->r, 32), pick_rm(g->r), pick_dst(g), OPC_OP_FP));
    } else {
        unsigned rs = pick_src(g);
        if (chance(g->r, 50) && rs && writable(g, rs)) emit_li(g, rs, interesting(g->r));
        emit(g, enc_r(0x68 | d, width, rs, pick_rm(g->r), below(g->r, 32), OPC_OP_FP));
    }
}

/* Compares, classification and moves to integer registers. */
static void unit_fp_misc(struct gen *g) {
    bool d = chance(g->r, 50);
    unsigned fs1 = below(g->r, 32), fs2 = chance(g->r, 20) ? fs1 : below(g->r, 32), rd = pick_dst(g);
    switch (below(g->r, 3)) {
    case 0: emit(g, enc_r(0x50 | d, fs2, fs1, below(g->r, 3), rd, OPC_OP_FP)); break; /* fle flt feq */
    case 1: emit(g, enc_r(0x70 | d, 0, fs1, 1, rd, OPC_OP_FP)); break;                 /* fclass */
    default: emit(g, enc_r(0x70 | d, 0, fs1, 0, rd, OPC_OP_FP)); break;                /* fmv.x.w fmv.x.d */
    }
}

static void unit_fp_mem(struct gen *g) {
    bool d = chance(g->r, 50), store = chance(g->r, 50);
    int32_t off;
    unsigned rb = set_base(g, data_addr(g, d ? 8 : 4, store), &off, true);
    if (store) emit(g, enc_s(off, below(g->r, 32), rb, d ? 3 : 2, OPC_STORE_FP));
    else emit(g, enc_i(off, rb, d ? 3 : 2, below(g->r, 32), OPC_LOAD_FP));
}

/* CSRs a program may read (some do not exist or are above its privilege:
 * those trap, which is tested too). */
static const uint16_t csr_reads[] = {
    CSR_MSCRATCH, CSR_MEPC, CSR_MCAUSE, CSR_MTVAL, CSR_MSTATUS, CSR_MISA, CSR_MEDELEG, CSR_MIDELEG,
    CSR_MIE, CSR_MIP, CSR_MTVEC, CSR_MHARTID, CSR_MVENDORID, CSR_MCOUNTEREN, CSR_MENVCFG, CSR_CYCLE,
    CSR_TIME, CSR_INSTRET, CSR_MCYCLE, CSR_MINSTRET, CSR_SSCRATCH, CSR_SEPC, CSR_SCAUSE, CSR_STVAL,
    CSR_SSTATUS, CSR_SIE, CSR_SIP, CSR_STVEC, CSR_SATP, CSR_SCOUNTEREN, CSR_FFLAGS, CSR_FRM, CSR_FCSR,
    CSR_PMPCFG0, CSR_PMPCFG0 + 1, CSR_PMPADDR0, 0xc03, 0xb03, 0x323, CSR_TSELECT, 0x7c0, 0x5c0, 0x015,
    CSR_SENVCFG,
};
/* CSRs whose writes cannot break the program's scaffolding (trap vectors,
 * delegation, translation and instret stay as they are). */
static const uint16_t csr_writes[] = {
    CSR_MSCRATCH, CSR_MEPC, CSR_MCAUSE, CSR_MTVAL, CSR_SSCRATCH, CSR_SEPC, CSR_SCAUSE, CSR_STVAL,
    CSR_FFLAGS, CSR_FRM, CSR_FCSR, CSR_FFLAGS, CSR_FRM, CSR_FCSR, CSR_CYCLE, CSR_MHARTID, CSR_MISA,
    CSR_TSELECT, 0xb03, 0x323, CSR_MCOUNTINHIBIT, CSR_SCOUNTEREN, 0x7c0, CSR_MEDELEG, CSR_MIDELEG,
    CSR_MCOUNTEREN, CSR_MENVCFG, CSR_SENVCFG, CSR_SIE, CSR_SIP, CSR_PMPCFG0, CSR_PMPADDR0,
};

/* A CSR instruction. A counter read or write whose 4 bytes cross a page
 * boundary once made the interpreter count the rest of its chain's budget
 * (op_cross_page): the generator's page crossings keep that covered. */
static void emit_csr(struct gen *g, uint32_t w) {
    emit(g, w);
}

static void unit_csr(struct gen *g) {
    unsigned rd = pick_dst(g);
    if (chance(g->r, 45)) {
        unsigned csr = csr_reads[below(g->r, sizeof csr_reads / sizeof csr_reads[0])];
        emit_csr(g, enc_csr(chance(g->r, 50) ? F3_CSRRS : chance(g->r, 50) ? F3_CSRRC : F3_CSRRSI, csr, 0, rd));
        return;
    }
    unsigned csr = csr_writes[below(g->r, sizeof csr_writes / sizeof csr_writes[0])];
    static const uint8_t f3s[] = {F3_CSRRW, F3_CSRRS, F3_CSRRC, F3_CSRRWI, F3_CSRRSI, F3_CSRRCI};
    unsigned f3 = f3s[below(g->r, 6)];
    unsigned src = f3 >= F3_CSRRWI ? below(g->r, 32) : pick_src(g);
    if (f3 < F3_CSRRWI && src && writable(g, src) && chance(g->r, 50)) emit_li(g, src, interesting(g->r));
    emit_csr(g, enc_csr(f3, csr, src, rd));
}

/* What a program adds to a counter it read before writing it back. The
 * lockstep needs icount to grow strictly with each instruction (equal
 * icounts must mean the same point): more than the few instructions from
 * the read to the write. Small, so the instruction totals stay honest. */
static int32_t counter_ahead(struct gen *g) { return 8 + (int32_t)below(g->r, 57); }

/* mstatus (sstatus below M-mode) bits that change what other instructions
 * do: FS (FP on or off), SUM, MXR, and in M-mode MPRV with MPP (loads and
 * stores translated as S or U until the next trap sets MPP to M). */
static void unit_status(struct gen *g) {
    unsigned csr = g->v == V_M ? CSR_MSTATUS : CSR_SSTATUS;
    unsigned rt = pick_reg(g);
    switch (below(g->r, 8)) {
    case 0: case 1:
        emit_li(g, rt, MSTATUS_FS);
        emit(g, enc_csr(F3_CSRRS, csr, rt, 0));
        break;
    case 2:
        emit_li(g, rt, chance(g->r, 30) ? MSTATUS_FS : 1ull << MSTATUS_FS_SHIFT);
        emit(g, enc_csr(F3_CSRRC, csr, rt, pick_dst(g)));
        break;
    case 3:
        emit_li(g, rt, chance(g->r, 50) ? MSTATUS_SUM : MSTATUS_MXR);
        emit(g, enc_csr(chance(g->r, 50) ? F3_CSRRS : F3_CSRRC, csr, rt, 0));
        break;
    case 4: /* the satp we have, written back: flushes the TLB and the jump cache */
        emit(g, enc_csr(F3_CSRRS, CSR_SATP, 0, rt));
        emit(g, enc_csr(F3_CSRRW, CSR_SATP, rt, 0));
        break;
    case 5:
        if (g->v == V_M) { /* MPRV with MPP U or S */
            emit_li(g, rt, MSTATUS_MPP);
            emit(g, enc_csr(F3_CSRRC, csr, rt, 0));
            emit_li(g, rt, MSTATUS_MPRV | (chance(g->r, 50) ? 1ull << 11 : 0));
            emit(g, enc_csr(F3_CSRRS, csr, rt, 0));
        } else {
            emit(g, enc_csr(chance(g->r, 50) ? F3_CSRRSI : F3_CSRRCI, csr, MSTATUS_SIE, pick_dst(g)));
        }
        break;
    case 6: { /* instret moved forward a little (see counter_ahead) */
        unsigned counter = chance(g->r, 50) ? CSR_MINSTRET : CSR_MCYCLE;
        emit_csr(g, enc_csr(F3_CSRRS, counter, 0, rt));
        emit(g, enc_i(counter_ahead(g), rt, 0, rt, OPC_OP_IMM));
        emit_csr(g, enc_csr(F3_CSRRW, counter, rt, 0));
        break;
    }
    default:
        emit(g, enc_csr(chance(g->r, 50) ? F3_CSRRSI : F3_CSRRCI, csr, MSTATUS_SIE, pick_dst(g)));
        break;
    }
}

/* M-mode only: the supervisor software interrupt, raised and cleared by the
 * program, taken (to the M handler, which clears it) once mie.SSIE and
 * mstatus.MIE allow; and wfi. */
static void unit_irq(struct gen *g) {
    static const struct { uint16_t csr; uint8_t bit; } ops[] = {
        {CSR_MIP, 2}, {CSR_MIP, 2}, {CSR_MSTATUS, 8}, {CSR_MIE, 2},
    };
    if (chance(g->r, 15)) {
        emit(g, WFI);
        return;
    }
    unsigned k = below(g->r, 4);
    emit(g, enc_csr(chance(g->r, 65) ? F3_CSRRSI : F3_CSRRCI, ops[k].csr, ops[k].bit, pick_dst(g)));
}

static void unit_trap(struct gen *g) {
    switch (below(g->r, 9)) {
    case 0: emit(g, EBREAK); break;
    case 1: emitc(g, C_EBREAK); break;
    case 2: emit(g, ECALL); break;   /* not the final one: the handler skips it */
    case 3: emitc(g, 0x0000); break; /* c.unimp */
    case 4: emit(g, 0xffffffffu); break;
    case 5: emitc(g, 0x6081); break; /* c.lui ra, 0: reserved */
    case 6: emit(g, WFI); break;     /* illegal in U-mode */
    default:
        /* xRET from below its privilege is illegal; from M or S it would go back. */
        if (g->v == V_U) emit(g, chance(g->r, 50) ? MRET : SRET);
        else if (g->v == V_S) emit(g, MRET);
        else emit(g, EBREAK);
        break;
    }
}

/* A random word, kept if it cannot transfer control or write memory, and
 * writes no register the context reserves: whatever else it decodes to,
 * including illegal instructions and loads from anywhere. */
static bool harmless(const struct gen *g, uint32_t raw) {
    bool compressed = (raw & 3) != 3;
    uint32_t full = compressed ? expand_compressed((uint16_t)raw) : raw;
    if (!full) return true; /* reserved: illegal instruction */
    switch (full & 0x7f) {
    case OPC_STORE: case OPC_STORE_FP: case OPC_AMO: case OPC_BRANCH: case OPC_JAL: case OPC_JALR: return false;
    case OPC_SYSTEM: {
        struct insn d;
        decode(raw, &d);
        if (d.fn != op_illegal && d.fn != op_ecall && d.fn != op_ebreak && d.fn != op_wfi &&
            d.fn != op_sfence_vma)
            return false;
        break;
    }
    }
    return writable(g, (full >> 7) & 31);
}

static void unit_random(struct gen *g) {
    for (unsigned tries = 0; tries < 32; tries++) {
        bool compressed = chance(g->r, 40);
        uint32_t raw = (uint32_t)next(g->r);
        raw = compressed ? (raw & 0xfffc) | below(g->r, 3) : raw | 3; /* quadrants 0-2, or 32 bits */
        if (!harmless(g, raw)) continue;
        if (compressed) emitc(g, (uint16_t)raw);
        else emit(g, raw);
        return;
    }
    emit(g, NOP);
}

static void unit_fence(struct gen *g) {
    switch (below(g->r, 4)) {
    case 0: emit(g, enc_i((int32_t)below(g->r, 256), 0, 0, 0, OPC_MISC_MEM)); break; /* fence pred, succ */
    case 1: emit(g, 0x8330000fu); break;                                             /* fence.tso */
    case 2: emit(g, FENCE_I); break;
    default: emit(g, enc_r(0x09, chance(g->r, 70) ? 0 : pick_src(g), pick_src(g), 0, 0, OPC_SYSTEM)); /* sfence.vma */
    }
}

/* ------------------------------------------------------------------ */
/* Generator: self-modifying code */

/* Instructions that only compute (no memory access, no control transfer,
 * no trap) and write no reserved register: what self-modifying code puts
 * into the instruction stream. I-type ALU forms keep their opcode when
 * their top byte (imm[11:4]) changes. */
static uint32_t safe_word(struct gen *g, bool itype) {
    unsigned rd, rs1 = pick_src(g), rs2 = pick_src(g);
    do rd = below(g->r, 30);
    while (!writable(g, rd));
    static const uint8_t f3s[] = {0, 4, 6, 7};
    switch (itype ? 0 : below(g->r, 6)) {
    case 0: return enc_i(sext(next(g->r), 12), rs1, f3s[below(g->r, 4)], rd, OPC_OP_IMM);
    case 1: return enc_i((int32_t)below(g->r, 64), rs1, 1, rd, OPC_OP_IMM); /* slli */
    case 2: return enc_r(0, rs2, rs1, 0, rd, OPC_OP);                       /* add */
    case 3: return enc_r(1, rs2, rs1, 0, rd, OPC_OP);                       /* mul */
    case 4: return enc_r(0x20, rs2, rs1, 0, rd, OPC_OP_32);                 /* subw */
    default: return enc_u((uint32_t)next(g->r), rd, OPC_LUI);
    }
}
static uint16_t safe_half(struct gen *g) {
    unsigned rd, rs2 = 1 + below(g->r, 31);
    do rd = 1 + below(g->r, 29);
    while (!writable(g, rd));
    int32_t imm6 = sext(next(g->r), 6);
    switch (below(g->r, 4)) {
    case 0: return c_ci(0, imm6, rd, 1);   /* c.addi */
    case 1: return c_ci(2, imm6, rd, 1);   /* c.li */
    case 2: return c_cr(0, rd, rs2);       /* c.mv */
    default: return c_cr(1, rd, rs2);      /* c.add */
    }
}
/* Four bytes of code: one instruction or two compressed ones. */
static void safe_slot(struct gen *g, uint8_t *out) {
    if (chance(g->r, 70)) {
        uint32_t w = safe_word(g, false);
        memcpy(out, &w, 4);
    } else {
        uint16_t a = safe_half(g), b = safe_half(g);
        memcpy(out, &a, 2);
        memcpy(out + 2, &b, 2);
    }
}

/* How the program writes into its own code. The kinds from SMC_AMOSWAP on
 * store through interpreter handlers called from translated code, which
 * once went on running the block they had just overwritten. */
enum smc_kind { SMC_SW, SMC_SH, SMC_SB, SMC_SD, SMC_AMOSWAP, SMC_SC, SMC_FSW, SMC_FSD, SMC_KINDS };

struct smc_plan {
    enum smc_kind kind;
    uint8_t old[8], now[8]; /* the slot before and after the store */
    unsigned len;           /* slot bytes: 4 or 8 */
    unsigned off, size;     /* the store writes now[off, off + size) */
};

static void plan_smc(struct gen *g, struct smc_plan *p) {
    p->kind = (enum smc_kind)below(g->r, SMC_KINDS);
    p->len = p->kind == SMC_SD || p->kind == SMC_FSD ? 8 : 4;
    p->off = 0;
    p->size = p->len;
    for (unsigned k = 0; k < p->len; k += 4) safe_slot(g, p->old + k);
    memcpy(p->now, p->old, 8);
    switch (p->kind) {
    case SMC_SH: { /* one of two compressed instructions */
        uint16_t a = safe_half(g), b = safe_half(g), c = safe_half(g);
        memcpy(p->old, &a, 2);
        memcpy(p->old + 2, &b, 2);
        memcpy(p->now, p->old, 4);
        p->off = chance(g->r, 50) ? 2 : 0;
        p->size = 2;
        memcpy(p->now + p->off, &c, 2);
        break;
    }
    case SMC_SB: { /* the immediate's top byte of an I-type instruction */
        uint32_t w = safe_word(g, true);
        memcpy(p->old, &w, 4);
        memcpy(p->now, &w, 4);
        p->off = 3;
        p->size = 1;
        p->now[3] = (uint8_t)next(g->r);
        break;
    }
    default:
        for (unsigned k = 0; k < p->len; k += 4) safe_slot(g, p->now + k);
        break;
    }
}

static bool smc_needs_alignment(enum smc_kind k) { return k == SMC_AMOSWAP || k == SMC_SC; }

static void emit_slot(struct gen *g, const struct smc_plan *p) {
    memcpy(at(g, g->pc), p->old, p->len);
    g->pc += p->len;
}

/* The store of the plan to label l's slot, addressed pc-relative. */
static void emit_smc_store(struct gen *g, const struct smc_plan *p, unsigned l) {
    uint64_t val = 0;
    memcpy(&val, p->now + p->off, p->size);
    unsigned rv = pick_reg(g), rb = pick_other(g, rv);
    emit_li(g, rv, val);
    unsigned ft = below(g->r, 32);
    if (p->kind == SMC_FSW || p->kind == SMC_FSD)
        emit(g, enc_r(p->kind == SMC_FSD ? 0x79 : 0x78, 0, rv, 0, ft, OPC_OP_FP)); /* fmv.[wd].x */
    uint64_t anchor = emit_auipc_to(g, rb, l);
    int32_t off = (int32_t)p->off;
    switch (p->kind) {
    case SMC_SW: case SMC_SH: case SMC_SB: case SMC_SD: {
        unsigned f3 = p->size == 8 ? 3 : p->size == 4 ? 2 : p->size == 2 ? 1 : 0;
        fixup_plus(g, FX_LO12_S, l, anchor, off);
        emit(g, enc_s(0, rv, rb, f3, OPC_STORE));
        break;
    }
    case SMC_FSW: case SMC_FSD:
        fixup_plus(g, FX_LO12_S, l, anchor, off);
        emit(g, enc_s(0, ft, rb, p->kind == SMC_FSD ? 3 : 2, OPC_STORE_FP));
        break;
    case SMC_AMOSWAP: case SMC_SC: {
        fixup_plus(g, FX_LO12_I, l, anchor, off);
        emit(g, enc_i(0, rb, 0, rb, OPC_OP_IMM));
        if (p->kind == SMC_AMOSWAP) {
            emit(g, enc_amo(0x01, false, below(g->r, 4), rv, rb, pick_dst(g)));
            break;
        }
        unsigned rd;
        do rd = pick_dst(g);
        while (rd == rv || rd == rb);
        emit(g, enc_amo(0x02, false, 0, 0, rb, rd)); /* lr.w of the code */
        emit(g, enc_amo(0x03, false, below(g->r, 4), rv, rb, pick_dst(g)));
        break;
    }
    case SMC_KINDS: break;
    }
}

/* ------------------------------------------------------------------ */
/* Generator: units with control flow, and the unit table */

static void leaf_units(struct gen *g, unsigned n);

static void unit_smc(struct gen *g) {
    struct smc_plan p;
    plan_smc(g, &p);
    unsigned slot = new_label(g);
    emit_smc_store(g, &p, slot);
    if (chance(g->r, 40)) leaf_units(g, 1 + below(g->r, 2));
    if (chance(g->r, 50)) emit(g, FENCE_I);
    if (smc_needs_alignment(p.kind))
        while (g->pc & 3) emitc(g, C_NOP);
    bind(g, slot);
    emit_slot(g, &p);
}

/* ---- calls and returns: the patterns a return predictor gets wrong
 * (one was tried and not kept, bench/RESULTS.md 2026-12-07): recursion
 * deeper than any predictor keeps, returns elsewhere than the call, code
 * rewritten under a return, a code buffer emptied while a call waits ---- */

/* A call to label l through link register `link` (ra or t0): jal, jalr
 * through another register or through the link register itself, c.jalr. */
static void emit_call(struct gen *g, unsigned l, unsigned link) {
    unsigned k = below(g->r, 4);
    if (k == 0) {
        fixup(g, FX_J, l, g->pc);
        emit(g, enc_j(0, link));
        return;
    }
    unsigned rt = k == 1 ? link : pick_reg(g);
    uint64_t anchor = emit_auipc_to(g, rt, l);
    fixup(g, FX_LO12_I, l, anchor);
    if (k == 3 && link == X_RA) {
        emit(g, enc_i(0, rt, 0, rt, OPC_OP_IMM));
        emitc(g, c_cr(1, rt, 0)); /* c.jalr */
    } else {
        emit(g, enc_i(0, rt, 0, link, OPC_JALR));
    }
}

static void emit_ret(struct gen *g, unsigned link, int32_t imm) {
    if (imm == 0 && chance(g->r, 50)) emitc(g, c_cr(0, link, 0)); /* c.jr */
    else emit(g, enc_i(imm, link, 0, 0, OPC_JALR));
}

static void emit_j(struct gen *g, unsigned l) {
    fixup(g, FX_J, l, g->pc);
    emit(g, enc_j(0, 0));
}

/* rd = the address of label l */
static void emit_la(struct gen *g, unsigned rd, unsigned l) {
    uint64_t anchor = emit_auipc_to(g, rd, l);
    fixup(g, FX_LO12_I, l, anchor);
    emit(g, enc_i(0, rd, 0, rd, OPC_OP_IMM));
}

#define RAS_STACK_TOP (DATA_BASE + 10 * PAGE - 16) /* a read-write page in every variant */

/* A recursive function that keeps ra on a stack in memory, sometimes
 * deeper than the translator keeps return frames. */
static void ras_recursion(struct gen *g) {
    unsigned rc = pick_other(g, X_RA), rs;
    do rs = pick_other(g, rc);
    while (rs == X_RA);
    uint32_t saved = g->forbidden;
    g->forbidden |= 1u << X_RA | 1u << rc | 1u << rs;
    unsigned f = new_label(g), base = new_label(g), after = new_label(g);
    emit_li(g, rc, chance(g->r, 30) ? 60 + below(g->r, 50) : 1 + below(g->r, 12));
    emit_li(g, rs, RAS_STACK_TOP);
    emit_call(g, f, X_RA);
    emit_j(g, after);
    bind(g, f);
    emit(g, enc_i(-8, rs, 0, rs, OPC_OP_IMM));
    emit(g, enc_s(0, X_RA, rs, 3, OPC_STORE));
    emit(g, enc_i(-1, rc, 0, rc, OPC_OP_IMM));
    fixup(g, FX_B, base, g->pc);
    emit(g, enc_b(0, 0, rc, 0)); /* beqz rc, base */
    if (chance(g->r, 40)) leaf_units(g, 1);
    emit_call(g, f, X_RA);
    if (chance(g->r, 30)) leaf_units(g, 1);
    bind(g, base);
    emit(g, enc_i(0, rs, 3, X_RA, OPC_LOAD));
    emit(g, enc_i(8, rs, 0, rs, OPC_OP_IMM));
    emit_ret(g, X_RA, 0);
    bind(g, after);
    g->forbidden = saved;
}

/* The callee returns elsewhere than the call predicts: ra rewritten, or
 * a return with an offset. */
static void ras_wrong_return(struct gen *g) {
    unsigned link = chance(g->r, 25) ? X_LINK : X_RA;
    uint32_t saved = g->forbidden;
    g->forbidden |= 1u << link;
    unsigned f = new_label(g), other = new_label(g), after = new_label(g);
    bool offset = chance(g->r, 40);
    emit_call(g, f, link);
    if (offset) {
        emit_j(g, after); /* the predicted pc */
        leaf_units(g, 1); /* where the return goes: 4 bytes on */
        emit_j(g, after);
    } else {
        leaf_units(g, 1);
        emit_j(g, after);
    }
    bind(g, f);
    if (chance(g->r, 50)) leaf_units(g, 1);
    if (!offset) emit_la(g, link, other);
    emit_ret(g, link, offset ? 4 : 0);
    bind(g, other);
    leaf_units(g, 1);
    bind(g, after);
    g->forbidden = saved;
}

/* setjmp/longjmp: two calls deep, then a return straight to a saved
 * address, then an ordinary call and return over the frames left. */
static void ras_longjmp(struct gen *g) {
    unsigned rj = pick_other(g, X_RA);
    uint32_t saved = g->forbidden;
    g->forbidden |= 1u << X_RA | 1u << X_LINK | 1u << rj;
    unsigned f = new_label(g), h = new_label(g), landing = new_label(g), callee = new_label(g),
             after = new_label(g);
    emit_la(g, rj, landing);
    emit_call(g, f, X_RA);
    emit_j(g, after); /* never taken */
    bind(g, f);
    if (chance(g->r, 50)) leaf_units(g, 1);
    emit_call(g, h, chance(g->r, 30) ? X_LINK : X_RA);
    emit_j(g, after); /* never taken */
    bind(g, h);
    if (chance(g->r, 50)) leaf_units(g, 1);
    emit(g, enc_i(0, rj, 0, X_RA, OPC_OP_IMM)); /* mv ra, rj */
    emit_ret(g, X_RA, 0);
    bind(g, landing);
    emit_call(g, callee, X_RA);
    emit_j(g, after);
    bind(g, callee);
    if (chance(g->r, 50)) leaf_units(g, 1);
    emit_ret(g, X_RA, 0);
    bind(g, after);
    g->forbidden = saved;
}

/* Twice: a call to a function in the next page, which the second time
 * rewrites the instruction its return lands on. The first return links
 * the landing to that instruction's block, which the second must not run. */
static void ras_code_change(struct gen *g) {
    uint64_t f_at = (g->pc | (PAGE - 1)) + 1 + 2 * below(g->r, 32);
    if (f_at + 1024 > CODE_END) {
        ras_recursion(g);
        return;
    }
    unsigned rc = pick_other(g, X_RA);
    uint32_t saved = g->forbidden;
    g->forbidden |= 1u << X_RA | 1u << rc;
    struct smc_plan p;
    plan_smc(g, &p);
    unsigned top = new_label(g), slot = new_label(g), f = new_label(g), skip = new_label(g), after = new_label(g);
    emit_li(g, rc, 2);
    if (smc_needs_alignment(p.kind))
        while ((g->pc + 4) & 3) emitc(g, C_NOP); /* the call below is 4 bytes */
    bind(g, top);
    fixup(g, FX_J, f, g->pc);
    emit(g, enc_j(0, X_RA));
    bind(g, slot);
    emit_slot(g, &p);
    emit(g, enc_i(-1, rc, 0, rc, OPC_OP_IMM));
    fixup(g, FX_B, top, g->pc);
    emit(g, enc_b(0, 0, rc, 1)); /* bnez rc, top */
    emit_j(g, after);
    if (g->pc > f_at) f_at = (g->pc | (PAGE - 1)) + 1;
    fill_nops(g, g->pc, f_at); /* never run */
    g->pc = f_at;
    bind(g, f);
    unsigned rt = pick_other(g, rc);
    emit(g, enc_i(-1, rc, 0, rt, OPC_OP_IMM));
    fixup(g, FX_B, skip, g->pc);
    emit(g, enc_b(0, 0, rt, 1)); /* the first time round, no store */
    emit_smc_store(g, &p, slot);
    if (chance(g->r, 30)) emit(g, FENCE_I);
    bind(g, skip);
    emit_ret(g, X_RA, 0);
    bind(g, after);
    g->forbidden = saved;
}

/* Calls that never return (to the next instruction), more than a return
 * predictor would keep, then a call and its return. */
static void ras_overflow(struct gen *g) {
    unsigned rc = pick_other(g, X_RA);
    uint32_t saved = g->forbidden;
    g->forbidden |= 1u << X_RA | 1u << rc;
    unsigned top = new_label(g), f = new_label(g), after = new_label(g);
    emit_li(g, rc, 20 + below(g->r, 120));
    bind(g, top);
    emit(g, enc_j(4, X_RA));
    emit(g, enc_i(-1, rc, 0, rc, OPC_OP_IMM));
    fixup(g, FX_B, top, g->pc);
    emit(g, enc_b(0, 0, rc, 1));
    emit_call(g, f, X_RA);
    emit_j(g, after);
    bind(g, f);
    if (chance(g->r, 50)) leaf_units(g, 1);
    emit_ret(g, X_RA, 0);
    bind(g, after);
    g->forbidden = saved;
}

static void unit_ras(struct gen *g) {
    switch (below(g->r, 5)) {
    case 0: ras_recursion(g); break;
    case 1: ras_wrong_return(g); break;
    case 2: ras_longjmp(g); break;
    case 3: ras_code_change(g); break;
    default: ras_overflow(g); break;
    }
}

/* Calls into the sled, each a new block the first time: a long run fills
 * the code buffer, which is then emptied while a call waits for its
 * return, which must not lead into the emptied code. */
static void unit_sled(struct gen *g) {
    unsigned rt = pick_other(g, X_RA), rc = pick_other(g, rt);
    while (rc == X_RA) rc = pick_other(g, rt);
    bool flood = chance(g->r, 5);
    unsigned n = flood ? SLED_PAGES * (unsigned)PAGE / 2 : 1 + below(g->r, 40);
    uint64_t start = flood ? SLED : SLED + 2 * below(g->r, SLED_PAGES * (unsigned)PAGE / 2 - n);
    emit_li(g, rt, start);
    emit_li(g, rc, n);
    unsigned top = new_label(g);
    bind(g, top);
    if (chance(g->r, 30)) emitc(g, c_cr(1, rt, 0)); /* c.jalr */
    else emit(g, enc_i(0, rt, 0, X_RA, OPC_JALR));
    emit(g, enc_i(2, rt, 0, rt, OPC_OP_IMM));
    emit(g, enc_i(-1, rc, 0, rc, OPC_OP_IMM));
    fixup(g, FX_B, top, g->pc);
    emit(g, enc_b(0, 0, rc, 1));
}

/* Another frame's code changes through a second virtual mapping of it
 * (Sv39), or directly (M-mode): the frame's code page is shared. */
static void unit_alias_smc(struct gen *g) {
    uint64_t frame = g->v == V_M || chance(g->r, 30) ? (chance(g->r, 50) ? ALIAS_F1 : ALIAS_F2) : ALIAS_W;
    uint64_t addr = frame + 4 * below(g->r, g->alias_slots);
    uint32_t saved = g->forbidden;
    g->forbidden = 1u << X_LINK | 1u << X_T5 | 1u << X_T6; /* what alias code must not write */
    uint32_t w = safe_word(g, false);
    g->forbidden = saved;
    unsigned rv = pick_reg(g), rb = pick_other(g, rv);
    emit_li(g, rv, w);
    emit_li(g, rb, addr);
    if (chance(g->r, 20)) emit(g, enc_amo(0x01, false, 0, rv, rb, pick_dst(g)));
    else emit(g, enc_s(0, rv, rb, 2, OPC_STORE));
}

static void unit_branch(struct gen *g) {
    static const uint8_t f3s[] = {0, 1, 4, 5, 6, 7};
    unsigned l = new_label(g);
    if (chance(g->r, 20)) {
        fixup(g, FX_CB, l, g->pc);
        emitc(g, c_bz(chance(g->r, 50), pick_creg(g, false), 0));
    } else {
        unsigned rs1 = pick_src(g), rs2 = chance(g->r, 15) ? rs1 : pick_src(g);
        fixup(g, FX_B, l, g->pc);
        emit(g, enc_b(0, rs2, rs1, f3s[below(g->r, 6)]));
    }
    bind_later(g, l, 1 + below(g->r, 6));
}

static void unit_jal(struct gen *g) {
    unsigned l = new_label(g);
    if (chance(g->r, 30)) {
        fixup(g, FX_CJ, l, g->pc);
        emitc(g, c_j(0));
    } else {
        fixup(g, FX_J, l, g->pc);
        emit(g, enc_j(0, pick_dst(g)));
    }
    bind_later(g, l, 1 + below(g->r, 8));
}

static void unit_jalr(struct gen *g) {
    unsigned l = new_label(g), rt = pick_reg(g);
    uint64_t anchor = emit_auipc_to(g, rt, l);
    fixup(g, FX_LO12_I, l, anchor);
    if (chance(g->r, 30)) {
        emit(g, enc_i(0, rt, 0, rt, OPC_OP_IMM));
        emitc(g, c_cr(writable(g, X_RA) && chance(g->r, 50), rt, 0)); /* c.jalr, c.jr */
    } else {
        emit(g, enc_i(0, rt, 0, chance(g->r, 20) ? rt : pick_dst(g), OPC_JALR));
    }
    bind_later(g, l, 1 + below(g->r, 6));
}

/* ---- pairs the translator fuses (src/jit/translate.c, struct fused): an
 * upper immediate and its user, a compare and the branch on its result;
 * with the user's destination the same register or another, the user a
 * faulting or MMIO access, the branch taken or not ---- */

/* auipc rb, hi; then the caller's user with lo: rb + lo == addr, if addr is in reach. */
static bool emit_auipc_for(struct gen *g, unsigned rb, uint64_t addr, int32_t *lo) {
    int64_t delta = (int64_t)(addr - g->pc);
    if (delta < INT32_MIN + 4096 || delta > INT32_MAX - 4096) return false;
    *lo = sext((uint64_t)delta & 0xfff, 12);
    emit(g, enc_u((uint32_t)(((uint64_t)delta - (uint64_t)(int64_t)*lo) >> 12), rb, OPC_AUIPC));
    return true;
}

static void unit_fused(struct gen *g) {
    static const uint8_t alu_f3[] = {0, 4, 6, 7}; /* addi xori ori andi */
    switch (below(g->r, 7)) {
    case 0: { /* lui + an immediate ALU op reading it */
        unsigned ru = pick_reg(g), rd = chance(g->r, 50) ? ru : pick_dst(g);
        uint32_t hi = chance(g->r, 50) ? (uint32_t)next(g->r) : (chance(g->r, 50) ? 0x7ffffu : 0x80000u);
        emit(g, enc_u(hi, ru, OPC_LUI));
        if (chance(g->r, 30)) emit(g, enc_i(imm12(g->r), ru, 0, rd, OPC_OP_IMM_32)); /* addiw: may wrap at 32 bits */
        else emit(g, enc_i(imm12(g->r), ru, alu_f3[below(g->r, 4)], rd, OPC_OP_IMM));
        break;
    }
    case 1: { /* c.lui + c.addi / c.addiw */
        unsigned r = pick_reg(g);
        int32_t up = sext(next(g->r), 6), imm = sext(next(g->r), 6);
        if (r == X_SP || !up) break;
        emitc(g, c_ci(3, up, r, 1));
        emitc(g, c_ci(chance(g->r, 50) ? 0 : 1, imm, r, 1));
        break;
    }
    case 2: case 3: { /* auipc + a load or a store: pc-relative data, MMIO, faults */
        bool store = below(g->r, 2);
        static const uint8_t sizes[] = {1, 2, 4, 8};
        unsigned f3 = below(g->r, 4);
        uint64_t addr = data_addr(g, sizes[f3], store);
        unsigned rb = pick_reg(g);
        int32_t lo;
        if (!emit_auipc_for(g, rb, addr, &lo)) break;
        if (store) emit(g, enc_s(lo, chance(g->r, 20) ? rb : pick_src(g), rb, f3, OPC_STORE));
        else emit(g, enc_i(lo, rb, f3 | (chance(g->r, 30) && f3 < 3 ? 4 : 0), chance(g->r, 30) ? rb : pick_dst(g),
                           OPC_LOAD));
        break;
    }
    case 4: { /* slt, sltu, slti, sltiu, then beqz/bnez of the result (c.beqz/c.bnez too) */
        bool compressed = chance(g->r, 30);
        unsigned rd = compressed ? pick_creg(g, true) : pick_reg(g), rs1 = pick_src(g), rs2 = pick_src(g);
        unsigned k = below(g->r, 4);
        if (k < 2) emit(g, enc_r(0, rs2, rs1, 2 + k, rd, OPC_OP));
        else emit(g, enc_i(chance(g->r, 30) ? -1 : imm12(g->r), rs1, k, rd, OPC_OP_IMM));
        unsigned l = new_label(g);
        bool bnez = chance(g->r, 50);
        if (compressed) {
            fixup(g, FX_CB, l, g->pc);
            emitc(g, c_bz(bnez, rd, 0));
        } else {
            fixup(g, FX_B, l, g->pc);
            emit(g, enc_b(0, 0, rd, bnez ? 1 : 0));
        }
        bind_later(g, l, 1 + below(g->r, 4));
        break;
    }
    case 5: { /* auipc + jalr to a label, the link in the auipc's register, another or none */
        unsigned l = new_label(g), rt = pick_reg(g);
        uint64_t anchor = emit_auipc_to(g, rt, l);
        fixup(g, FX_LO12_I, l, anchor);
        unsigned k = below(g->r, 3);
        emit(g, enc_i(0, rt, 0, k == 0 ? rt : k == 1 ? 0 : pick_dst(g), OPC_JALR));
        bind_later(g, l, 1 + below(g->r, 6));
        break;
    }
    case 6: { /* zext.w / sext.w as slli 32 then srli/srai 32, of a register or of an addiw's result, with
               * what comes between writing the source, the shifted register, another or none (the
               * translator computes the shift right from the source) */
        unsigned r = pick_reg(g), src = pick_src(g), mid = below(g->r, 4);
        if (chance(g->r, 50)) {
            emit(g, enc_i(chance(g->r, 20) ? 0 : imm12(g->r), src, 0, r, OPC_OP_IMM_32));
            emit(g, enc_i(32, r, 1, r, OPC_OP_IMM));
        } else {
            emit(g, enc_i(32, src, 1, r, OPC_OP_IMM));
        }
        if (mid == 1 && writable(g, src)) emit(g, enc_i(imm12(g->r), src, 0, src, OPC_OP_IMM));
        else if (mid == 2) emit(g, enc_i(imm12(g->r), r, 0, r, OPC_OP_IMM));
        else if (mid == 3) emit(g, enc_i(imm12(g->r), pick_src(g), 0, pick_dst(g), OPC_OP_IMM));
        unsigned amount = chance(g->r, 85) ? 32 : 31 + 2 * below(g->r, 2); /* 31 and 33 are not the idiom */
        emit(g, enc_i((chance(g->r, 50) ? 0x400 : 0) | (int32_t)amount, r, 5, chance(g->r, 70) ? r : pick_dst(g),
                      OPC_OP_IMM));
        break;
    }
    }
}

/* jal/jalr x5 to a body that returns through x5, jumped over on the way in. */
static void unit_call(struct gen *g) {
    unsigned f = new_label(g), after = new_label(g);
    if (chance(g->r, 50)) {
        fixup(g, FX_J, f, g->pc);
        emit(g, enc_j(0, X_LINK));
    } else {
        unsigned rt = pick_reg(g);
        uint64_t anchor = emit_auipc_to(g, rt, f);
        fixup(g, FX_LO12_I, f, anchor);
        emit(g, enc_i(0, rt, 0, X_LINK, OPC_JALR));
    }
    fixup(g, FX_J, after, g->pc);
    emit(g, enc_j(0, 0));
    bind(g, f);
    uint32_t saved = g->forbidden;
    g->forbidden |= 1u << X_LINK;
    leaf_units(g, 1 + below(g->r, 5));
    g->forbidden = saved;
    if (chance(g->r, 50)) emit(g, enc_i(0, X_LINK, 0, 0, OPC_JALR));
    else emitc(g, c_cr(0, X_LINK, 0));
    bind(g, after);
}

/* A counted loop; sometimes its first slot is rewritten by a store later
 * in the body, so later iterations must run the new instruction. */
static void unit_loop(struct gen *g) {
    unsigned rc;
    do rc = pick_reg(g);
    while (g->sbi && (rc == 10 || rc == 11));
    uint32_t saved = g->forbidden;
    bool smc = chance(g->r, 40);
    /* Some long ones with a store into the loop: every iteration retranslates
     * it, so the translator's code buffer fills up and is flushed. */
    emit_li(g, rc, smc && chance(g->r, 4) ? 300 + below(g->r, 900) : 1 + below(g->r, 4));
    g->forbidden |= 1u << rc;
    struct smc_plan p;
    if (smc) {
        plan_smc(g, &p);
        if (smc_needs_alignment(p.kind))
            while (g->pc & 3) emitc(g, C_NOP);
    }
    unsigned top = new_label(g);
    bind(g, top);
    if (smc) emit_slot(g, &p);
    leaf_units(g, 1 + below(g->r, 3));
    if (smc) emit_smc_store(g, &p, top);
    bool c = rc >= 8 && rc < 16 && chance(g->r, 50);
    if (c) emitc(g, c_ci(0, -1, rc, 1));
    else emit(g, enc_i(-1, rc, 0, rc, OPC_OP_IMM));
    if (c) {
        fixup(g, FX_CB, top, g->pc);
        emitc(g, c_bz(true, rc, 0));
    } else {
        fixup(g, FX_B, top, g->pc);
        emit(g, enc_b(0, 0, rc, 1));
    }
    g->forbidden = saved;
}

/* jalr x1 to where nothing can be fetched; the handler returns to x1. */
static void unit_fetch_fault(struct gen *g) {
    static const uint64_t anywhere[] = {HOLE, MMIO_BASE + 0x100, 0, RAM_BASE + RAM_SIZE, 0xfffffffffffff000ull,
                                        0x4000000000000000ull};
    static const uint64_t paged_only[] = {DATA_BASE, DATA_BASE + DP_UNMAPPED * PAGE, CODE_END - 2, CODE_END,
                                          ALIAS_W, HANDLER_M + 0x400}; /* not a vector: a trap loop */
    uint64_t target = paged(g) && chance(g->r, 50) ? paged_only[below(g->r, g->v == V_U ? 6 : 5)]
                                                   : anywhere[below(g->r, 6)];
    unsigned rt = pick_reg(g);
    emit_li(g, rt, target);
    if (chance(g->r, 30)) emitc(g, c_cr(1, rt, 0)); /* c.jalr: links x1 too */
    else emit(g, enc_i(0, rt, 0, X_RA, OPC_JALR));
}

/* A long run of instructions with no control transfer or CSR write and no
 * trap unless FP is off (computation, FP arithmetic through interpreter
 * handlers, loads and stores to good data): blocks reach the translator's
 * length limit. */
static void unit_straight(struct gen *g) {
    if (!writable(g, X_SP)) return;
    emit_li(g, X_SP, DATA_BASE + below(g->r, 8) * PAGE);
    uint32_t saved = g->forbidden;
    g->forbidden |= 1u << X_SP;
    unsigned n = 100 + below(g->r, 120);
    for (unsigned k = 0; k < n; k++) {
        switch (below(g->r, 8)) {
        case 0: case 1: case 2: unit_alu_reg(g); break;
        case 3: unit_alu_imm(g); break;
        case 4: emit(g, enc_r(below(g->r, 4) << 2 | 1, below(g->r, 32), below(g->r, 32), 7, below(g->r, 32),
                              OPC_OP_FP)); break; /* fadd.d .. fdiv.d, dynamic rounding */
        case 5: emit(g, enc_i((int32_t)(8 * below(g->r, 256)), X_SP, 3, below(g->r, 32), OPC_LOAD_FP)); break;
        case 6: emit(g, enc_s((int32_t)(8 * below(g->r, 256)), pick_src(g), X_SP, 3, OPC_STORE)); break;
        default: emitc(g, c_ci(0, sext(next(g->r), 6), pick_reg(g), 1)); break; /* c.addi */
        }
    }
    g->forbidden = saved;
}

/* Jumps to the last parcel of a page and puts a leaf unit there: its first
 * instruction, if 4 bytes long, straddles the page boundary (op_cross_page
 * in the interpreter; the translator ends a block at the page). Often that
 * instruction reads or writes a counter, where instret is easiest to get
 * wrong. */
static void unit_cross_page(struct gen *g) {
    static const uint16_t counters[] = {CSR_INSTRET, CSR_CYCLE, CSR_MINSTRET, CSR_MCYCLE};
    unsigned counter = chance(g->r, 30) ? counters[below(g->r, 4)] : 0, rt = pick_reg(g);
    bool write = chance(g->r, 50);
    if (counter && write) { /* writes back what it read, moved ahead */
        emit_csr(g, enc_csr(F3_CSRRS, counter, 0, rt));
        emit(g, enc_i(counter_ahead(g), rt, 0, rt, OPC_OP_IMM));
    }
    uint64_t target = (g->pc | (PAGE - 1)) - 1;
    if (target < g->pc + 4) target += PAGE; /* room for the jump */
    if (target + 1024 > CODE_END) return;
    emit(g, enc_j((int32_t)(target - g->pc), 0));
    fill_nops(g, g->pc, target); /* never run */
    g->pc = target;
    if (!counter) leaf_units(g, 1);
    else emit_csr(g, write ? enc_csr(F3_CSRRW, counter, rt, 0) : enc_csr(F3_CSRRS, counter, 0, rt));
}

/* Writes a few instructions and a return into the scratch frame, then
 * calls them. Each unit overwrites what an earlier one left there, often
 * all of the frame's decoded code, so the frame goes back to plain data
 * (writable at full speed) between calls and must become code again. */
static void unit_scratch_code(struct gen *g) {
    uint32_t saved = g->forbidden;
    g->forbidden |= 1u << X_LINK; /* for the code written and the registers used */
    uint64_t where = SCRATCH + 32 * below(g->r, 4);
    unsigned n = 1 + below(g->r, 6), rb = pick_reg(g), rv = pick_other(g, rb);
    emit_li(g, rb, where);
    for (unsigned k = 0; k <= n; k++) {
        emit_li(g, rv, k < n ? safe_word(g, false) : enc_i(0, X_LINK, 0, 0, OPC_JALR));
        emit(g, enc_s(4 * (int32_t)k, rv, rb, 2, OPC_STORE));
    }
    if (chance(g->r, 50)) emit(g, FENCE_I);
    g->forbidden = saved;
    emit(g, enc_i(0, rb, 0, X_LINK, OPC_JALR));
}

/* Calls code in the alias frames: by its own address, or (Sv39) through
 * the alias page, so one frame's code runs under two virtual addresses. */
static void unit_alias_call(struct gen *g) {
    uint64_t target = paged(g) && chance(g->r, 60) ? ALIAS_X : chance(g->r, 50) ? ALIAS_F1 : ALIAS_F2;
    target += 4 * below(g->r, g->alias_slots);
    unsigned rt = pick_reg(g);
    emit_li(g, rt, target);
    emit(g, enc_i(0, rt, 0, X_LINK, OPC_JALR));
}

/* The level-0 PTE of va: the table of RAM's first 2 MiB, or the alias page's. */
static uint64_t l0_pte_addr(uint64_t va) {
    if ((va & PAGE_MASK) == ALIAS_X) return PT_BASE + 4 * PAGE;
    return PT_BASE + 3 * PAGE + ((va - RAM_BASE) >> 12) * 8;
}
static uint64_t leaf_pte(uint64_t pa, uint64_t flags) { return (pa >> 12) << 10 | flags; }

/* S-mode points the alias page at the other frame, then sfence.vma. */
static void unit_alias_remap(struct gen *g) {
    uint64_t pte = leaf_pte(chance(g->r, 50) ? ALIAS_F2 : ALIAS_F1, PTE_V | PTE_R | PTE_X | PTE_A);
    unsigned rv = pick_reg(g), rb = pick_other(g, rv);
    emit_li(g, rv, pte);
    emit_li(g, rb, l0_pte_addr(ALIAS_X));
    emit(g, enc_s(0, rv, rb, 3, OPC_STORE));
    if (chance(g->r, 50)) {
        emit(g, enc_r(0x09, 0, 0, 0, 0, OPC_SYSTEM));
    } else {
        emit_li(g, rb, ALIAS_X);
        emit(g, enc_r(0x09, 0, rb, 0, 0, OPC_SYSTEM));
    }
}

enum unit_kind {
    K_ALU_REG, K_ALU_IMM, K_SHIFT, K_MULDIV, K_LI, K_UPPER, K_COMPRESSED, K_LOAD, K_STORE, K_MEM_C, K_AMO,
    K_LRSC, K_FP_SET, K_FP_ARITH, K_FP_FMA, K_FP_CVT, K_FP_MISC, K_FP_MEM, K_CSR, K_STATUS, K_IRQ, K_TRAP,
    K_RANDOM, K_FENCE, K_ALIAS_SMC,
    K_SMC, /* from here on: top level only (labels, link registers, nesting) */
    K_BRANCH, K_JAL, K_JALR, K_CALL, K_LOOP, K_FETCH_FAULT, K_ALIAS_CALL, K_ALIAS_REMAP, K_SCRATCH, K_STRAIGHT,
    K_CROSS_PAGE, K_RAS, K_SLED, K_FUSED, NKINDS
};
#define NLEAF K_SMC

static const struct {
    const char *name;
    void (*fn)(struct gen *);
    uint8_t weight[NVARIANTS]; /* M, S, U */
} kinds[NKINDS] = {
    [K_ALU_REG] = {"alu-reg", unit_alu_reg, {10, 10, 10}},
    [K_ALU_IMM] = {"alu-imm", unit_alu_imm, {8, 8, 8}},
    [K_SHIFT] = {"shift", unit_shift, {6, 6, 6}},
    [K_MULDIV] = {"muldiv", unit_muldiv, {6, 6, 6}},
    [K_LI] = {"li", unit_li, {5, 5, 5}},
    [K_UPPER] = {"lui/auipc", unit_upper, {3, 3, 3}},
    [K_COMPRESSED] = {"compressed", unit_compressed, {6, 6, 6}},
    [K_LOAD] = {"load", unit_load, {8, 8, 8}},
    [K_STORE] = {"store", unit_store, {7, 7, 7}},
    [K_MEM_C] = {"mem-compressed", unit_mem_compressed, {4, 4, 4}},
    [K_AMO] = {"amo", unit_amo, {4, 4, 4}},
    [K_LRSC] = {"lr/sc", unit_lrsc, {2, 2, 2}},
    [K_FP_SET] = {"fp-set", unit_fp_set, {4, 4, 4}},
    [K_FP_ARITH] = {"fp-arith", unit_fp_arith, {5, 5, 5}},
    [K_FP_FMA] = {"fp-fma", unit_fp_fma, {2, 2, 2}},
    [K_FP_CVT] = {"fp-cvt", unit_fp_cvt, {3, 3, 3}},
    [K_FP_MISC] = {"fp-misc", unit_fp_misc, {3, 3, 3}},
    [K_FP_MEM] = {"fp-mem", unit_fp_mem, {3, 3, 3}},
    [K_CSR] = {"csr", unit_csr, {4, 4, 4}},
    [K_STATUS] = {"status", unit_status, {2, 2, 1}},
    [K_IRQ] = {"irq", unit_irq, {3, 0, 0}},
    [K_TRAP] = {"trap", unit_trap, {3, 3, 3}},
    [K_RANDOM] = {"random-word", unit_random, {4, 4, 4}},
    [K_FENCE] = {"fence", unit_fence, {1, 1, 1}},
    [K_ALIAS_SMC] = {"alias-smc", unit_alias_smc, {1, 1, 1}},
    [K_SMC] = {"smc", unit_smc, {4, 4, 4}},
    [K_BRANCH] = {"branch", unit_branch, {6, 6, 6}},
    [K_JAL] = {"jal", unit_jal, {2, 2, 2}},
    [K_JALR] = {"jalr", unit_jalr, {2, 2, 2}},
    [K_CALL] = {"call", unit_call, {2, 2, 2}},
    [K_LOOP] = {"loop", unit_loop, {3, 3, 3}},
    [K_FETCH_FAULT] = {"fetch-fault", unit_fetch_fault, {1, 1, 1}},
    [K_ALIAS_CALL] = {"alias-call", unit_alias_call, {2, 2, 2}},
    [K_ALIAS_REMAP] = {"alias-remap", unit_alias_remap, {0, 2, 0}},
    [K_SCRATCH] = {"scratch-code", unit_scratch_code, {2, 2, 2}},
    [K_STRAIGHT] = {"straight-line", unit_straight, {1, 1, 1}},
    [K_CROSS_PAGE] = {"cross-page", unit_cross_page, {2, 2, 2}},
    [K_RAS] = {"calls", unit_ras, {3, 3, 3}},
    [K_SLED] = {"sled", unit_sled, {1, 1, 1}},
    [K_FUSED] = {"fused-pairs", unit_fused, {4, 4, 4}},
};

/* A unit kind by weight; `top` allows the kinds with control flow. */
static enum unit_kind pick_kind(struct gen *g, bool top) {
    unsigned n = top ? NKINDS : NLEAF, total = 0;
    for (unsigned k = 0; k < n; k++) total += kinds[k].weight[g->v];
    unsigned x = below(g->r, total);
    for (unsigned k = 0; k < n; k++) {
        if (x < kinds[k].weight[g->v]) return (enum unit_kind)k;
        x -= kinds[k].weight[g->v];
    }
    return K_ALU_REG;
}

static void leaf_units(struct gen *g, unsigned n) {
    for (unsigned k = 0; k < n; k++) kinds[pick_kind(g, false)].fn(g);
}

/* ------------------------------------------------------------------ */
/* Programs */

/* The state both harts start from. */
struct start_state {
    uint64_t x[32], f[32];
    uint32_t fflags, frm;
    uint64_t mstatus, medeleg, mie, satp, mcounteren, scounteren, mscratch, sscratch;
    int priv;
    bool sbi_in_monitor; /* S-mode ecall goes to env_sbi, not to M-mode */
};

struct program {
    uint64_t seed;
    enum variant v;
    uint8_t *ram;           /* the RAM template (RAM_SIZE bytes) */
    uint8_t mmio[MMIO_SIZE];
    struct start_state s;
    uint64_t entry, final, end; /* first instruction, the final trap, the stop loop */
    unsigned total_units;       /* what the seed asks for */
    struct unit_rec units[MAX_UNITS];
    unsigned nunits;            /* emitted (all, or those kept) */
    bool partial;               /* generated with only some units kept */
};

/* Sv39 identity maps with every permission case (see the DP_ pages). In
 * M-mode the same tables serve loads and stores under MPRV. */
static void build_page_tables(struct gen *g) {
    uint64_t *root = (uint64_t *)at(g, PT_BASE), *l1a = (uint64_t *)at(g, PT_BASE + PAGE);
    uint64_t *l1b = (uint64_t *)at(g, PT_BASE + 2 * PAGE), *l0 = (uint64_t *)at(g, PT_BASE + 3 * PAGE);
    uint64_t user = g->v == V_S ? 0 : PTE_U;
    const uint64_t rw = PTE_V | PTE_R | PTE_W | PTE_A | PTE_D, rwx = rw | PTE_X;
    root[2] = leaf_pte(PT_BASE + PAGE, PTE_V);
    root[0] = leaf_pte(PT_BASE + 2 * PAGE, PTE_V);
    l1a[0] = leaf_pte(PT_BASE + 3 * PAGE, PTE_V);
    l1a[1] = leaf_pte(PT_BASE, rw);                    /* the page tables (2 MiB), for S-mode */
    l1a[(HOLE - RAM_BASE) >> 21] = leaf_pte(HOLE, rw | user);
    l1b[MMIO_BASE >> 21] = leaf_pte(MMIO_BASE, rw | user);
    l1b[ALIAS_X >> 21] = leaf_pte(PT_BASE + 4 * PAGE, PTE_V);
    l0[0] = leaf_pte(HANDLER_M, rwx);
    for (unsigned k = 0; k < CODE_PAGES; k++) l0[1 + k] = leaf_pte(CODE_BASE + k * PAGE, rwx | user);
    l0[(ALIAS_F1 - RAM_BASE) >> 12] = leaf_pte(ALIAS_F1, rwx | user);
    l0[(ALIAS_F2 - RAM_BASE) >> 12] = leaf_pte(ALIAS_F2, rwx | user);
    *(uint64_t *)at(g, l0_pte_addr(ALIAS_X)) = leaf_pte(ALIAS_F1, PTE_V | PTE_R | PTE_X | PTE_A | user);
    l0[(ALIAS_W - RAM_BASE) >> 12] = leaf_pte(ALIAS_F1, rw | user);
    l0[(SCRATCH - RAM_BASE) >> 12] = leaf_pte(SCRATCH, rwx | user);
    for (unsigned k = 0; k < SLED_PAGES; k++) l0[(SLED - RAM_BASE) / PAGE + k] = leaf_pte(SLED + k * PAGE, rwx | user);
    for (unsigned k = 0; k < DATA_PAGES; k++) {
        uint64_t pa = DATA_BASE + k * PAGE, flags = rw | user;
        switch (k) {
        case DP_NO_AD: flags &= ~(PTE_A | PTE_D); break;
        case DP_READ_ONLY: flags &= ~(PTE_W | PTE_D); break;
        case DP_UNMAPPED: flags = 0; break;
        case DP_OTHER_U: flags ^= PTE_U; break;
        case DP_EXEC_ONLY: flags = PTE_V | PTE_X | PTE_A | user; break;
        case DP_NO_D: flags &= ~PTE_D; break;
        }
        l0[(pa - RAM_BASE) >> 12] = flags ? leaf_pte(pa, flags) : 0;
    }
}

/* A trap handler (M or S level): stop at END on the final trap; after a
 * fetch fault return to x1; after the software interrupt clear it and
 * return; otherwise skip the instruction (2 or 4 bytes, read at xepc). */
static void emit_handler(struct gen *g, uint64_t where, bool machine, uint64_t final, uint64_t end) {
    unsigned cause = machine ? CSR_MCAUSE : CSR_SCAUSE, epc = machine ? CSR_MEPC : CSR_SEPC;
    unsigned irq = new_label(g), fetch = new_label(g), skip = new_label(g), done = new_label(g);
    uint32_t xret = machine ? MRET : SRET;
    g->pc = where;
    emit(g, enc_csr(F3_CSRRS, cause, 0, X_T6));
    fixup(g, FX_B, irq, g->pc);
    emit(g, enc_b(0, 0, X_T6, 4)); /* blt t6, x0 */
    static const int fetch_faults[] = {EXC_INSN_ACCESS, EXC_INSN_PAGE_FAULT};
    for (unsigned k = 0; k < 2; k++) {
        emit(g, enc_i(-fetch_faults[k], X_T6, 0, X_T5, OPC_OP_IMM));
        fixup(g, FX_B, fetch, g->pc);
        emit(g, enc_b(0, 0, X_T5, 0)); /* beqz t5 */
    }
    emit(g, enc_csr(F3_CSRRS, epc, 0, X_T6));
    emit_li(g, X_T5, final);
    fixup(g, FX_B, done, g->pc);
    emit(g, enc_b(0, X_T5, X_T6, 0));
    emit(g, enc_i(0, X_T6, 5, X_T5, OPC_LOAD)); /* lhu t5, 0(t6) */
    emit(g, enc_i(3, X_T5, 7, X_T5, OPC_OP_IMM));
    emit(g, enc_i(2, X_T6, 0, X_T6, OPC_OP_IMM));
    emit(g, enc_i(-3, X_T5, 0, X_T5, OPC_OP_IMM));
    fixup(g, FX_B, skip, g->pc);
    emit(g, enc_b(0, 0, X_T5, 1));
    emit(g, enc_i(2, X_T6, 0, X_T6, OPC_OP_IMM));
    bind(g, skip);
    emit(g, enc_csr(F3_CSRRW, epc, X_T6, 0));
    emit(g, xret);
    bind(g, fetch);
    emit(g, enc_csr(F3_CSRRW, epc, X_RA, 0));
    emit(g, xret);
    bind(g, irq);
    emit(g, enc_csr(F3_CSRRCI, machine ? CSR_MIP : CSR_SIP, 2, 0));
    emit(g, xret);
    bind(g, done);
    emit(g, enc_j(end ? (int32_t)(end - g->pc) : 0, 0)); /* END: j . (or j END) */
}

static void fill_random(uint64_t *r, uint8_t *p, size_t n) {
    for (size_t k = 0; k < n; k += 8) {
        uint64_t v = next(r);
        memcpy(p + k, &v, n - k < 8 ? n - k : 8);
    }
}

static void choose_start_state(struct program *p, uint64_t *r) {
    struct start_state *s = &p->s;
    memset(s, 0, sizeof *s);
    for (unsigned k = 1; k < X_T5; k++) s->x[k] = interesting(r);
    for (unsigned k = 0; k < 32; k++) s->f[k] = fp_value(r);
    s->fflags = below(r, 32);
    s->frm = chance(r, 85) ? below(r, 5) : 5 + below(r, 3);
    uint64_t fs = chance(r, 92) ? (1 + below(r, 3)) << MSTATUS_FS_SHIFT : 0;
    s->mstatus = fs | (chance(r, 50) ? MSTATUS_MXR : 0) | (chance(r, 50) ? MSTATUS_MIE : 0);
    /* The S handler reads U-mode code. */
    if (p->v == V_U || chance(r, 50)) s->mstatus |= MSTATUS_SUM;
    if (p->v == V_M) s->mstatus |= MSTATUS_MPP;
    s->mie = MIP_SSIP;
    /* Any exception a handler can skip may go to S-mode; ecalls stay in M. */
    static const uint8_t delegable[] = {1, 2, 3, 4, 5, 6, 7, 12, 13, 15};
    for (unsigned k = 0; k < sizeof delegable; k++)
        if (p->v != V_M && chance(r, 40)) s->medeleg |= 1ull << delegable[k];
    s->satp = p->v != V_M || chance(r, 50) ? (8ull << 60) | (PT_BASE >> 12) : 0;
    s->mcounteren = below(r, 8);
    s->scounteren = below(r, 8);
    s->mscratch = next(r);
    s->sscratch = next(r);
    s->priv = p->v == V_M ? PRIV_M : p->v == V_S ? PRIV_S : PRIV_U;
    /* With the SBI in the monitor there is no M-mode software: S takes every exception. */
    s->sbi_in_monitor = p->v == V_S && chance(r, 50);
    if (s->sbi_in_monitor)
        for (unsigned k = 0; k < sizeof delegable; k++) s->medeleg |= 1ull << delegable[k];
}

static void gen_alias_frame(struct gen *g, uint64_t frame) {
    uint32_t saved = g->forbidden;
    g->forbidden = 1u << X_LINK | 1u << X_T5 | 1u << X_T6;
    for (unsigned k = 0; k < g->alias_slots; k++) wr32(g, frame + 4 * k, safe_word(g, false));
    wr32(g, frame + 4 * g->alias_slots, enc_i(0, X_LINK, 0, 0, OPC_JALR)); /* jalr x0, 0(x5) */
    g->forbidden = saved;
}

/* Generates program `seed`; with `keep`, only the units it marks. */
static void gen_program(struct program *p, struct gen *g, uint64_t seed, const bool *keep) {
    uint64_t r = seed;
    memset(g, 0, sizeof *g);
    g->ram = p->ram;
    g->r = &r;
    g->v = p->v = (enum variant)(seed % NVARIANTS);
    g->forbidden = 1u << X_T5 | 1u << X_T6;
    p->seed = seed;
    p->partial = keep != NULL;
    memset(p->ram, 0, RAM_SIZE);
    fill_random(&r, at(g, DATA_BASE), DATA_PAGES * PAGE);
    fill_random(&r, p->mmio, MMIO_SIZE);
    choose_start_state(p, &r);
    g->sbi = p->s.sbi_in_monitor;
    build_page_tables(g);
    g->alias_slots = 4 + below(&r, 12);
    gen_alias_frame(g, ALIAS_F1);
    gen_alias_frame(g, ALIAS_F2);
    wr16(g, CODE_END - 2, 0x0013); /* the first half of a 4-byte instruction, at the end of the code pages */
    for (uint64_t a = SLED; a < SLED + SLED_PAGES * PAGE; a += 2) wr16(g, a, c_cr(0, X_RA, 0)); /* c.jr ra */

    p->entry = g->pc = CODE_BASE + 2 * below(&r, 2048);
    p->total_units = 8 + below(&r, 180);
    p->nunits = 0;
    for (unsigned k = 0; k < p->total_units && g->pc <= CODE_END - 2048; k++) {
        /* Each unit draws from its own stream, so dropping units keeps the
         * others; a dropped unit leaves nops of its size, which keeps the
         * layout (page crossings, offsets) of the rest. */
        uint64_t ur = mix(seed, k + 1);
        g->r = &ur;
        enum unit_kind kind = pick_kind(g, true);
        bind_due(g, false);
        uint64_t start = g->pc;
        unsigned nfix = g->nfix;
        kinds[kind].fn(g);
        if (keep && !keep[k]) {
            fill_nops(g, start, g->pc);
            g->nfix = nfix;
            continue;
        }
        p->units[p->nunits++] = (struct unit_rec){.start = start, .end = g->pc, .index = k, .kind = (uint8_t)kind};
    }
    bind_due(g, true);
    g->r = &r;
    p->final = g->pc;
    emit(g, p->s.sbi_in_monitor ? EBREAK : ECALL); /* any trap there ends the program */
    emit_handler(g, HANDLER_M, true, p->final, 0);
    p->end = g->pc - 4;
    emit_handler(g, HANDLER_S, false, p->final, p->end);
    resolve(g);
}

/* ------------------------------------------------------------------ */
/* Machines: a hart over its own RAM, code-page slots and device */

struct machine {
    struct hart h;
    uint8_t *ram;
    struct code_map code; /* one slot per RAM frame */
    uint8_t mmio[MMIO_SIZE];
    bool translated;         /* run by jit_run, else by hart_run */
    struct jit_hart *jit;    /* made anew for each program */
    unsigned fatal_calls;
    const char *fatal_why;
};

static bool fake_page(void *owner, uint64_t gpa, bool write, struct phys_page *out) {
    (void)write;
    struct machine *m = owner;
    if (gpa < RAM_BASE || gpa >= RAM_BASE + RAM_SIZE) return false;
    uint64_t frame = (gpa - RAM_BASE) >> 12;
    out->host = m->ram + (frame << 12);
    out->code = code_map_slot(&m->code, frame);
    out->code_map = &m->code;
    return true;
}
static bool in_device(uint64_t gpa, unsigned size) {
    return gpa >= MMIO_BASE && gpa - MMIO_BASE <= MMIO_SIZE - size; /* no wrap near 2^64 */
}
static bool fake_mmio_read(void *owner, uint64_t gpa, unsigned size, uint64_t *val) {
    struct machine *m = owner;
    if (!in_device(gpa, size)) return false;
    *val = 0;
    memcpy(val, m->mmio + (gpa - MMIO_BASE), size);
    return true;
}
static bool fake_mmio_write(void *owner, uint64_t gpa, unsigned size, uint64_t val) {
    struct machine *m = owner;
    if (!in_device(gpa, size)) return false;
    memcpy(m->mmio + (gpa - MMIO_BASE), &val, size);
    return true;
}
/* As the VM does: stores to a frame that now holds code must miss. */
static void fake_code_added(void *owner, uint64_t gpa) {
    (void)gpa;
    struct machine *m = owner;
    for (int p = 0; p < 4; p++) tlb_set_drop_writes(&m->h.tlb[p]);
}
static const struct phys_ops phys = {
    .page = fake_page, .mmio_read = fake_mmio_read, .mmio_write = fake_mmio_write, .code_added = fake_code_added};

static uint64_t env_time(void *owner) {
    (void)owner;
    return 0x123456789ull; /* constant: rdtime must read the same in both */
}
static void env_fatal(void *owner, struct hart *h, const char *why) {
    ((struct machine *)owner)->fatal_calls++;
    ((struct machine *)owner)->fatal_why = why;
    h->exit_request = true;
}
/* A stand-in SBI: an answer computed from the arguments, then past the ecall. */
static void env_sbi(void *owner, struct hart *h) {
    (void)owner;
    h->x[10] = h->x[17] == 0x10 ? 0 : (uint64_t)-2; /* the base extension, or "not supported" */
    h->x[11] = h->x[10] ^ h->x[16] ^ (h->x[12] << 1);
    h->pc += 4;
}
static const struct hart_env env = {.sbi_call = env_sbi, .time = env_time, .fatal = env_fatal};

static struct machine *machine_new(bool jit) {
    struct machine *m = calloc(1, sizeof *m);
    assert_non_null(m);
    m->ram = aligned_alloc(4096, RAM_SIZE);
    assert_non_null(m->ram);
    m->translated = jit;
    assert_true(code_map_init(&m->code, RAM_FRAMES));
    if (jit) code_map_make_slotless(&m->code); /* as a translator VM's */
    return m;
}

static void drop_code_pages(struct machine *m) {
    code_map_destroy(&m->code);
    assert_true(code_map_init(&m->code, RAM_FRAMES));
    if (m->translated) code_map_make_slotless(&m->code);
}

static void machine_free(struct machine *m) {
    drop_code_pages(m);
    code_map_destroy(&m->code);
    jit_hart_free(m->jit);
    free(m->ram);
    free(m);
}

/* Puts the program into m, from the start state. A new jit_hart each
 * time: the code pages are new, and a freed one's address may come back,
 * so old translations must not survive. */
static void machine_load(struct machine *m, const struct program *p) {
    drop_code_pages(m);
    memcpy(m->ram, p->ram, RAM_SIZE);
    memcpy(m->mmio, p->mmio, MMIO_SIZE);
    m->fatal_calls = 0;
    m->fatal_why = NULL;
    struct hart *h = &m->h;
    hart_init(h, 0, &phys, &env, m);
    if (m->translated) { /* after hart_init: the jit_hart gives the hart its jump caches */
        jit_hart_free(m->jit);
        m->jit = jit_hart_new(h, 1u << 20);
        assert_non_null(m->jit);
    }
    const struct start_state *s = &p->s;
    memcpy(h->x, s->x, sizeof s->x);
    memcpy(h->f, s->f, sizeof s->f);
    h->fflags = s->fflags;
    h->frm = s->frm;
    h->mstatus = (h->mstatus & ~(MSTATUS_FS | MSTATUS_SD)) | s->mstatus;
    if ((h->mstatus & MSTATUS_FS) == MSTATUS_FS) h->mstatus |= MSTATUS_SD;
    h->medeleg = s->medeleg;
    h->mie = s->mie;
    h->satp = s->satp;
    h->mcounteren = s->mcounteren;
    h->scounteren = s->scounteren;
    h->mscratch = s->mscratch;
    h->sscratch = s->sscratch;
    h->mtvec = HANDLER_M;
    h->stvec = HANDLER_S;
    h->priv = s->priv;
    h->sbi_in_monitor = s->sbi_in_monitor;
    h->pc = p->entry;
    hart_flush_tlb(h);
    hart_update_tlb_sets(h);
}

/* Runs m for about n instructions (see the header comment on wfi). */
static enum hart_stop advance(struct machine *m, int64_t n) {
    enum hart_stop stop = m->translated ? jit_run(m->jit, &m->h, n) : hart_run(&m->h, n);
    m->h.wfi = false;
    return stop;
}

/* ------------------------------------------------------------------ */
/* Comparison */

#define MAX_DIFFS 12
struct diffs {
    unsigned n;
    struct {
        char what[48];
        uint64_t ref, jit;
    } d[MAX_DIFFS];
};

static void note(struct diffs *d, const char *what, unsigned index, uint64_t ref, uint64_t jit) {
    if (d->n == MAX_DIFFS) return;
    if (index == ~0u) snprintf(d->d[d->n].what, sizeof d->d[d->n].what, "%s", what);
    else snprintf(d->d[d->n].what, sizeof d->d[d->n].what, "%s[%u]", what, index);
    d->d[d->n].ref = ref;
    d->d[d->n].jit = jit;
    d->n++;
}

/* The reservation holds a host address: compare where it points in RAM. */
static uint64_t reservation_of(const struct machine *m) {
    if (m->h.reservation == ~0ull) return ~0ull;
    return m->h.reservation - (uintptr_t)m->ram + RAM_BASE;
}

/* stats.mem_ops is a statistic the engines count differently today (the
 * translator counts the FP loads and stores it translates inline, the
 * interpreter's FP handlers count none): compared with JIT_DIFF_STATS=1. */
static bool compare_mem_ops;

static void compare_harts(const struct machine *ma, const struct machine *mb, struct diffs *d) {
    const struct hart *a = &ma->h, *b = &mb->h;
    for (unsigned k = 0; k < 32; k++)
        if (a->x[k] != b->x[k]) note(d, "x", k, a->x[k], b->x[k]);
    for (unsigned k = 0; k < 32; k++)
        if (a->f[k] != b->f[k]) note(d, "f", k, a->f[k], b->f[k]);
#define FIELD(f)                                                     \
    do {                                                             \
        if ((uint64_t)a->f != (uint64_t)b->f) note(d, #f, ~0u, (uint64_t)a->f, (uint64_t)b->f); \
    } while (0)
    FIELD(pc); FIELD(icount); FIELD(priv); FIELD(fflags); FIELD(frm);
    FIELD(mstatus); FIELD(misa); FIELD(medeleg); FIELD(mideleg); FIELD(mie); FIELD(mip); FIELD(mtvec);
    FIELD(mscratch); FIELD(mepc); FIELD(mcause); FIELD(mtval); FIELD(mcounteren); FIELD(menvcfg);
    FIELD(stvec); FIELD(sscratch); FIELD(sepc); FIELD(scause); FIELD(stval); FIELD(satp);
    FIELD(scounteren); FIELD(senvcfg); FIELD(stimecmp); FIELD(exit_request); FIELD(hsm_stopped);
    FIELD(stats.exceptions); FIELD(stats.interrupts); FIELD(stats.mmio);
    if (compare_mem_ops) FIELD(stats.mem_ops);
#undef FIELD
    if (memcmp(a->pmpcfg, b->pmpcfg, sizeof a->pmpcfg) || memcmp(a->pmpaddr, b->pmpaddr, sizeof a->pmpaddr))
        note(d, "pmp", ~0u, 0, 0);
    if (reservation_of(ma) != reservation_of(mb)) note(d, "reservation", ~0u, reservation_of(ma), reservation_of(mb));
    else if (a->reservation != ~0ull && a->reservation_value != b->reservation_value)
        note(d, "reservation_value", ~0u, a->reservation_value, b->reservation_value);
    if (ma->fatal_calls != mb->fatal_calls) note(d, "fatal calls", ~0u, ma->fatal_calls, mb->fatal_calls);
    /* Whatever else the architectural state holds, fields added later too;
     * minus what differs legitimately: the x0 sink (written only by the
     * interpreter), the reservation's host address (compared above) and
     * wfi (see the header comment). Both harts were zeroed by hart_init, so
     * padding compares equal. */
    struct hart_state sa, sb;
    memcpy(&sa, &a->arch, sizeof sa);
    memcpy(&sb, &b->arch, sizeof sb);
    sa.x[32] = sb.x[32] = 0;
    sa.reservation = sb.reservation = 0;
    sa.wfi = sb.wfi = false;
    if (!d->n && memcmp(&sa, &sb, sizeof sa)) note(d, "struct hart_state (another field)", ~0u, 0, 0);
}

static void compare_bytes(const char *what, uint64_t base, const uint8_t *a, const uint8_t *b, size_t len,
                          struct diffs *d) {
    if (!memcmp(a, b, len)) return;
    for (size_t k = 0; k < len; k++) {
        if (a[k] == b[k]) continue;
        uint64_t va = 0, vb = 0;
        size_t at8 = k & ~(size_t)7;
        memcpy(&va, a + at8, len - at8 < 8 ? len - at8 : 8);
        memcpy(&vb, b + at8, len - at8 < 8 ? len - at8 : 8);
        char name[48];
        snprintf(name, sizeof name, "%s @%#" PRIx64, what, base + at8);
        note(d, name, ~0u, va, vb);
        return;
    }
}

static void compare_memory(const struct machine *a, const struct machine *b, bool all, struct diffs *d) {
    if (all) {
        compare_bytes("ram", RAM_BASE, a->ram, b->ram, RAM_SIZE, d);
    } else {
        for (unsigned k = 0; k < sizeof windows / sizeof windows[0]; k++) {
            size_t off = windows[k].start - RAM_BASE;
            compare_bytes("ram", windows[k].start, a->ram + off, b->ram + off, windows[k].len, d);
        }
    }
    compare_bytes("mmio", MMIO_BASE, a->mmio, b->mmio, MMIO_SIZE, d);
}

/* ------------------------------------------------------------------ */
/* Lockstep */

#define MAX_PROGRAM_INSNS 1000000 /* far above what any program runs; a safety net */

struct run_result {
    bool mismatch, finished;
    const char *why;         /* a mismatch that is not a field (icounts that never meet) */
    unsigned step;           /* lockstep steps done */
    uint64_t agreed_icount;  /* the last point where both agreed */
    uint64_t agreed_pc;
    struct diffs d;
};

/* Step sizes: mostly small, so the translator often stops mid-way. */
static int64_t step_size(uint64_t *r) {
    unsigned k = below(r, 100);
    if (k < 50) return 1 + below(r, 8);
    if (k < 89) return 9 + below(r, 42);
    if (k < 99) return 51 + below(r, 450);
    return 5000;
}

/* Steps one engine by n, then the one behind by the difference, until both
 * have retired the same number of instructions. */
static bool meet(struct machine *ref, struct machine *jit, int64_t n, bool ref_first) {
    advance(ref_first ? ref : jit, n);
    for (unsigned guard = 0; guard < 100000; guard++) {
        uint64_t a = ref->h.icount, b = jit->h.icount;
        if (a == b) return true;
        struct machine *behind = a < b ? ref : jit;
        if (behind->h.exit_request) return false;
        advance(behind, (int64_t)(a < b ? b - a : a - b));
    }
    return false;
}

/* Brings a hart to where both engines' outer loops are before they run an
 * instruction: a pending, enabled interrupt taken, then the fetch at pc
 * translated, which takes the fetch fault if there is one. Either engine
 * does this first when it runs again, but one may have done it before it
 * stopped and the other not (see the header comment). */
static void settle(struct machine *m) {
    struct hart *h = &m->h;
    if (h->exit_request) return;
    if (__atomic_load_n(&h->mip, __ATOMIC_RELAXED) & h->mie) hart_take_interrupt(h);
    for (unsigned k = 0; k < 2 && !h->exit_request; k++) {
        if (h->itlb->fetch[tlb_index(h->pc)].tag == (h->pc & PAGE_MASK)) break;
        if (mem_fetch_fill(h, h->pc)) break; /* else the fault is taken: now at the handler */
    }
}

static void run_program(const struct program *p, struct machine *ref, struct machine *jit, struct run_result *res) {
    memset(res, 0, sizeof *res);
    machine_load(ref, p);
    machine_load(jit, p);
    uint64_t r = mix(p->seed, 0x57e95);
    for (res->step = 1;; res->step++) {
        /* Once the final trap is taken, only the END loop is left: small steps. */
        int64_t n = ref->h.mepc == p->final || ref->h.sepc == p->final ? 1 + below(&r, 8) : step_size(&r);
        if (!meet(ref, jit, n, chance(&r, 50))) res->why = "the engines stopped at different instruction counts";
        settle(ref);
        settle(jit);
        compare_harts(ref, jit, &res->d);
        compare_memory(ref, jit, false, &res->d);
        if (res->d.n || res->why) {
            res->mismatch = true;
            return;
        }
        res->agreed_icount = ref->h.icount;
        res->agreed_pc = ref->h.pc;
        if (ref->h.pc == p->end) {
            res->finished = true;
            break;
        }
        if (ref->h.exit_request || ref->h.icount > MAX_PROGRAM_INSNS) break;
    }
    compare_memory(ref, jit, true, &res->d);
    res->mismatch = res->d.n != 0;
}

/* ------------------------------------------------------------------ */
/* Reports */

static const struct unit_rec *unit_at(const struct program *p, uint64_t pc) {
    for (unsigned k = 0; k < p->nunits; k++)
        if (pc >= p->units[k].start && pc < p->units[k].end) return &p->units[k];
    return NULL;
}

/* Where pc's bytes are in RAM: the alias page goes to the frame it maps. */
static const uint8_t *code_bytes(const struct machine *m, uint64_t va) {
    if (m->h.satp && (va & PAGE_MASK) == ALIAS_X) {
        uint64_t pte;
        memcpy(&pte, m->ram + (l0_pte_addr(ALIAS_X) - RAM_BASE), 8);
        va = ((pte >> 10) << 12) | (va & ~PAGE_MASK);
    }
    if (va < RAM_BASE || va >= RAM_BASE + RAM_SIZE) return NULL;
    return m->ram + (va - RAM_BASE);
}

static void dump_code(const struct program *p, const struct machine *m, const char *who) {
    uint64_t pc = m->h.pc;
    const struct unit_rec *u = unit_at(p, pc);
    printf("  %s pc %#" PRIx64 " (priv %d)", who, pc, m->h.priv);
    if (u) printf(" in unit #%u (%s)", u->index, kinds[u->kind].name);
    printf(":\n   ");
    for (uint64_t a = (pc & ~1ull) - 16; a < (pc & ~1ull) + 24; a += 2) {
        const uint8_t *b = code_bytes(m, a);
        uint16_t w = 0;
        if (b) memcpy(&w, b, 2);
        printf(a == pc ? " >%04x" : b ? "  %04x" : "  ----", w);
    }
    printf("\n");
}

/* The instruction words in [from, to); a run of one word (padding) as the word and its count. */
static void print_words(const struct program *p, uint64_t from, uint64_t to) {
    uint32_t run_word = 0;
    unsigned run_len = 0, run = 0;
    for (uint64_t a = from;;) {
        uint32_t w = 0;
        unsigned len = 0;
        if (a < to) {
            memcpy(&w, p->ram + (a - RAM_BASE), 2);
            len = (w & 3) == 3 ? 4 : 2;
            memcpy(&w, p->ram + (a - RAM_BASE), len);
        }
        if (run && (len != run_len || w != run_word)) { /* the run ends: print it */
            printf(run_len == 4 ? " %08x" : " %04x", run_word);
            if (run > 1) printf(" x%u", run);
            run = 0;
        }
        if (a >= to) return;
        run_word = w;
        run_len = len;
        run++;
        a += len;
    }
}

static void list_program(const struct program *p) {
    printf("  program %#" PRIx64 " (%s%s), entry %#" PRIx64 ", final trap %#" PRIx64 ", mstatus.FS %u:\n",
           p->seed, variant_name[p->v], p->s.sbi_in_monitor ? ", SBI in the monitor" : "", p->entry, p->final,
           (unsigned)((p->s.mstatus & MSTATUS_FS) >> MSTATUS_FS_SHIFT));
    for (unsigned k = 0; k < p->nunits; k++) {
        const struct unit_rec *u = &p->units[k];
        printf("   #%-3u %-14s %#" PRIx64 ":", u->index, kinds[u->kind].name, u->start);
        print_words(p, u->start, u->end);
        printf("\n");
    }
}

/* The interpreter's path from the last agreeing point to the mismatch. */
static void trace_reference(const struct program *p, struct machine *m, uint64_t from, uint64_t to) {
    machine_load(m, p);
    while (m->h.icount < from && !m->h.exit_request) advance(m, (int64_t)(from - m->h.icount));
    printf("  the interpreter from icount %" PRIu64 ":\n", from);
    for (unsigned lines = 0; m->h.icount < to && lines < 64 && !m->h.exit_request; lines++) {
        uint64_t pc = m->h.pc;
        const uint8_t *b = code_bytes(m, pc);
        uint32_t w = 0;
        if (b) memcpy(&w, b, (b[0] & 3) == 3 ? 4 : 2);
        printf("   %8" PRIu64 "  priv %d  pc %#" PRIx64 "  %0*x\n", m->h.icount, m->h.priv, pc,
               b && (b[0] & 3) == 3 ? 8 : 4, w);
        advance(m, 1);
    }
}

/* The environment that runs p alone, as it was generated. */
static void print_reproducer(const struct program *p) {
    if (getenv("JIT_DIFF_SELF")) printf("JIT_DIFF_SELF=1 ");
    if (getenv("JIT_DIFF_STATS")) printf("JIT_DIFF_STATS=1 ");
    printf("JIT_DIFF_SEED=%#" PRIx64 " JIT_DIFF_SEEDS=1", p->seed);
    if (p->partial) {
        const char *sep = " JIT_DIFF_UNITS=";
        for (unsigned k = 0; k < p->nunits; k++, sep = ",") printf("%s%u", sep, p->units[k].index);
    }
}

static void report(const struct program *p, const struct run_result *res, struct machine *ref,
                   struct machine *jit) {
    printf("jit_diff: MISMATCH: program seed %#" PRIx64 " (%s), step %u, icount %" PRIu64 " / %" PRIu64 "\n",
           p->seed, variant_name[p->v], res->step, ref->h.icount, jit->h.icount);
    printf("  reproduce: ");
    print_reproducer(p);
    printf(" tests/unit/test_jit_diff\n");
    if (res->why) printf("  %s\n", res->why);
    for (unsigned k = 0; k < res->d.n; k++)
        printf("  %-24s interpreter %#018" PRIx64 "  translator %#018" PRIx64 "\n", res->d.d[k].what,
               res->d.d[k].ref, res->d.d[k].jit);
    printf("  last agreement: icount %" PRIu64 ", pc %#" PRIx64 "\n", res->agreed_icount, res->agreed_pc);
    dump_code(p, ref, "interpreter");
    dump_code(p, jit, "translator ");
    uint64_t until = ref->h.icount > jit->h.icount ? ref->h.icount : jit->h.icount;
    trace_reference(p, ref, res->agreed_icount, until);
}

/* ------------------------------------------------------------------ */
/* Shrinking: drop units while the program still shows a mismatch */

#define SHRINK_SECONDS 20

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static bool fails_with(struct program *p, struct gen *g, uint64_t seed, const bool *keep, struct machine *ref,
                       struct machine *jit, struct run_result *res) {
    gen_program(p, g, seed, keep);
    run_program(p, ref, jit, res);
    return res->mismatch;
}

static void shrink(struct program *p, struct gen *g, struct machine *ref, struct machine *jit) {
    uint64_t seed = p->seed;
    unsigned n = p->total_units;
    bool keep[MAX_UNITS];
    for (unsigned k = 0; k < n; k++) keep[k] = true;
    struct run_result res;
    double deadline = now_s() + SHRINK_SECONDS;
    for (unsigned pass = 0; pass < 2; pass++)
        for (unsigned k = n; k-- > 0 && now_s() < deadline;) {
            if (!keep[k]) continue;
            keep[k] = false;
            if (!fails_with(p, g, seed, keep, ref, jit, &res)) keep[k] = true;
        }
    fails_with(p, g, seed, keep, ref, jit, &res);
    printf("jit_diff: shrunk to %u of %u units: ", p->nunits, n);
    print_reproducer(p);
    printf("\n");
    list_program(p);
    if (res.mismatch) report(p, &res, ref, jit);
}

/* ------------------------------------------------------------------ */
/* Driver */

struct options {
    uint64_t seed;
    uint64_t seeds;
    double seconds;
    bool keep_going, verbose;
    bool self_check; /* both machines interpreted: checks the harness itself */
    bool units_given;
    bool units[MAX_UNITS];
};

static struct options read_options(void) {
    struct options o = {.seed = 1, .seeds = 1000};
    const char *s;
    if ((s = getenv("JIT_DIFF_SEED"))) o.seed = strtoull(s, NULL, 0);
    if ((s = getenv("JIT_DIFF_SEEDS"))) o.seeds = strtoull(s, NULL, 0);
    if ((s = getenv("JIT_DIFF_SECONDS"))) {
        o.seconds = strtod(s, NULL);
        if (!getenv("JIT_DIFF_SEEDS")) o.seeds = UINT64_MAX;
    }
    o.keep_going = getenv("JIT_DIFF_KEEP_GOING") != NULL;
    compare_mem_ops = getenv("JIT_DIFF_STATS") != NULL;
    o.verbose = getenv("JIT_DIFF_VERBOSE") != NULL;
    o.self_check = getenv("JIT_DIFF_SELF") != NULL;
    if ((s = getenv("JIT_DIFF_UNITS"))) {
        o.units_given = true;
        for (char *end; *s; s = *end ? end + 1 : end) {
            unsigned long k = strtoul(s, &end, 0);
            if (k < MAX_UNITS) o.units[k] = true;
            if (end == s) break;
        }
    }
    return o;
}

struct totals {
    uint64_t programs, by_variant[NVARIANTS], insns, steps, finished, fatal, capped, mismatches;
    uint64_t exceptions, interrupts, blocks, stale, flushes, fused;
};

static void print_totals(const struct totals *t, double secs) {
    printf("jit_diff: %" PRIu64 " programs (%" PRIu64 " M, %" PRIu64 " S, %" PRIu64 " U; %" PRIu64
           " ran to the end, %" PRIu64 " stopped by a trap loop, %" PRIu64 " by the instruction cap), %" PRIu64
           " instructions in %" PRIu64 " lockstep steps, %.2f s: %.0f programs/s, %.0f instructions/s\n",
           t->programs, t->by_variant[V_M], t->by_variant[V_S], t->by_variant[V_U], t->finished, t->fatal,
           t->capped, t->insns, t->steps, secs, t->programs / secs, t->insns / secs);
    printf("jit_diff: %" PRIu64 " traps, %" PRIu64 " interrupts, %" PRIu64 " blocks translated, %" PRIu64
           " blocks retired by code changes, %" PRIu64 " code-buffer flushes, %" PRIu64 " fused pairs; %" PRIu64
           " mismatches\n",
           t->exceptions, t->interrupts, t->blocks, t->stale, t->flushes, t->fused, t->mismatches);
}

static void test_lockstep(void **state) {
    (void)state;
    if (!jit_supported()) skip();
    struct options o = read_options();
    struct program *p = calloc(1, sizeof *p);
    struct gen *g = calloc(1, sizeof *g);
    assert_non_null(p);
    assert_non_null(g);
    p->ram = aligned_alloc(4096, RAM_SIZE);
    assert_non_null(p->ram);
    struct machine *ref = machine_new(false), *jit = machine_new(!o.self_check);
    struct totals t = {0};
    double start = now_s();
    for (uint64_t k = 0; k < o.seeds; k++) {
        if (o.seconds > 0 && now_s() - start >= o.seconds) break;
        gen_program(p, g, o.seed + k, o.units_given ? o.units : NULL);
        if (o.verbose) list_program(p);
        struct run_result res;
        run_program(p, ref, jit, &res);
        if (o.verbose && !res.finished && !res.mismatch)
            printf("  stopped at pc %#" PRIx64 " (%s), icount %" PRIu64 "\n", ref->h.pc,
                   ref->fatal_why ? ref->fatal_why : "instruction cap", ref->h.icount);
        struct jit_stats js = {0};
        if (jit->translated) jit_get_stats(jit->jit, &js);
        t.programs++;
        t.by_variant[p->v]++;
        t.insns += ref->h.icount;
        t.steps += res.step;
        t.finished += res.finished;
        t.fatal += !res.finished && !res.mismatch && ref->h.exit_request;
        t.capped += !res.finished && !res.mismatch && !ref->h.exit_request;
        t.exceptions += ref->h.stats.exceptions;
        t.interrupts += ref->h.stats.interrupts;
        t.blocks += js.blocks;
        t.stale += js.stale;
        t.flushes += js.flushes;
        t.fused += js.fused;
        if (!res.mismatch) continue;
        t.mismatches++;
        report(p, &res, ref, jit);
        if (!o.units_given) shrink(p, g, ref, jit);
        fflush(stdout);
        if (!o.keep_going) break;
    }
    print_totals(&t, now_s() - start);
    machine_free(ref);
    machine_free(jit);
    free(p->ram);
    free(p);
    free(g);
    assert_int_equal(t.mismatches, 0);
    /* The pairs above were translated fused, not one by one. */
    if (t.programs >= 100 && !o.units_given) assert_true(t.fused > 0);
}

/* ------------------------------------------------------------------ */
/* Self-checks of the generator */

/* The encoders against the decoder both engines use. */
static void test_encoders(void **state) {
    (void)state;
    struct {
        uint32_t raw;
        insn_fn fn;
        int rd, rs1, rs2;
        int32_t imm;
    } cases[] = {
        {enc_i(-5, 3, 0, 4, OPC_OP_IMM), op_addi, 4, 3, -1, -5},
        {enc_r(0x20, 7, 6, 5, 9, OPC_OP), op_sra, 9, 6, 7, 0},
        {enc_s(-100, 8, 2, 3, OPC_STORE), op_sd, -1, 2, 8, -100},
        {enc_b(-4096, 5, 6, 7), op_bgeu, -1, 6, 5, -4096},
        {enc_b(4094, 0, 1, 1), op_bne, -1, 1, 0, 4094},
        {enc_j(-(1 << 20), 1), op_jal, 1, -1, -1, -(1 << 20)},
        {enc_j((1 << 20) - 2, 1), op_jal, 1, -1, -1, (1 << 20) - 2},
        {enc_u(0x80000, 3, OPC_LUI), op_lui, 3, -1, -1, INT32_MIN},
        {enc_csr(F3_CSRRS, CSR_MEPC, 0, 31), op_csrrs, 31, 0, -1, CSR_MEPC},
        {enc_amo(0x03, true, 3, 4, 5, 6), op_sc_d, 6, 5, 4, 0},
        {c_ci(0, -32, 9, 1), op_addi, 9, 9, -1, -32},
        {c_ci(2, 31, 1, 1), op_addi, 1, 0, -1, 31},
        {c_ci(3, -1, 3, 1), op_lui, 3, -1, -1, -4096},
        {c_addi16sp(-512), op_addi, 2, 2, -1, -512},
        {c_addi16sp(496), op_addi, 2, 2, -1, 496},
        {c_addi4spn(15, 1020), op_addi, 15, 2, -1, 1020},
        {c_shift_andi(1, 8, 63), op_srai, 8, 8, -1, 63},
        {c_shift_andi(2, 12, -7), op_andi, 12, 12, -1, -7},
        {c_arith(0, 0, 10, 11), op_sub, 10, 10, 11, 0},
        {c_arith(1, 1, 13, 14), op_addw, 13, 13, 14, 0},
        {c_j(-2048), op_jal, 32, -1, -1, -2048},
        {c_j(2046), op_jal, 32, -1, -1, 2046},
        {c_bz(true, 15, -256), op_bne, -1, 15, 0, -256},
        {c_bz(false, 8, 254), op_beq, -1, 8, 0, 254},
        {c_cr(1, 7, 0), op_jalr, 1, 7, -1, 0},
        {c_cr(0, 5, 0), op_jalr, 32, 5, -1, 0},
        {c_cr(1, 7, 9), op_add, 7, 7, 9, 0},
        {c_lwsp(3, 252), op_lw, 3, 2, -1, 252},
        {c_ldsp(3, 4, 504), op_ld, 4, 2, -1, 504},
        {c_swsp(6, 252), op_sw, -1, 2, 6, 252},
        {c_sdsp(7, 6, 504), op_sd, -1, 2, 6, 504},
        {c_lsw(2, 9, 10, 124), op_lw, 9, 10, -1, 124},
        {c_lsw(6, 9, 10, 68), op_sw, -1, 10, 9, 68},
        {c_lsd(3, 11, 12, 248), op_ld, 11, 12, -1, 248},
        {c_lsd(7, 11, 12, 136), op_sd, -1, 12, 11, 136},
    };
    for (unsigned k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct insn d;
        decode(cases[k].raw, &d);
        if (d.fn != cases[k].fn) fail_msg("case %u (%#x): wrong instruction", k, cases[k].raw);
        if (cases[k].rd >= 0) assert_int_equal(d.rd, cases[k].rd);
        if (cases[k].rs1 >= 0) assert_int_equal(d.rs1, cases[k].rs1);
        if (cases[k].rs2 >= 0) assert_int_equal(d.rs2, cases[k].rs2);
        assert_int_equal(d.imm, cases[k].imm);
    }
}

/* An empty M-mode program, and a generator that writes into its RAM. */
static struct program *m_program(struct gen **g) {
    struct program *p = calloc(1, sizeof *p);
    *g = calloc(1, sizeof **g);
    assert_non_null(p);
    assert_non_null(*g);
    p->ram = calloc(1, RAM_SIZE);
    assert_non_null(p->ram);
    p->s.priv = PRIV_M;
    (*g)->ram = p->ram;
    return p;
}
static void free_program(struct program *p, struct gen *g) {
    free(p->ram);
    free(p);
    free(g);
}

/* emit_li, run by the interpreter, leaves every value it is given. */
static void test_li(void **state) {
    (void)state;
    struct gen *g;
    struct program *p = m_program(&g);
    struct machine *m = machine_new(false);
    uint64_t r = 42;
    g->r = &r;
    for (unsigned k = 0; k < 200; k++) {
        uint64_t v = k < 40 ? interesting(&r) : next(&r) >> below(&r, 64);
        unsigned rd = 1 + below(&r, 29);
        g->pc = p->entry = CODE_BASE;
        emit_li(g, rd, v);
        p->end = g->pc;
        emit(g, enc_j(0, 0)); /* j . */
        machine_load(m, p);
        advance(m, 64);
        assert_int_equal(m->h.pc, p->end);
        assert_int_equal(m->h.x[rd], v);
    }
    machine_free(m);
    free_program(p, g);
}

/* The translator predicts returns (src/jit/ras.c): a loop that calls a
 * function in its page and a function in the next page takes no jump
 * through the jump cache for their returns, only for the call to the
 * other page, and gets the interpreter's results. */
static void test_returns_are_predicted(void **state) {
    (void)state;
    if (!jit_supported()) skip();
    struct gen *g;
    struct program *p = m_program(&g);
    const unsigned S2 = 18, A0 = 10, A1 = 11, CALLS = 1000;
    g->pc = p->entry = CODE_BASE;
    emit(g, enc_i((int32_t)CALLS, 0, 0, S2, OPC_OP_IMM));       /* li s2, CALLS */
    uint64_t loop = g->pc;
    emit(g, enc_j(0x100, X_RA));                                  /* call near */
    emit(g, enc_j((int32_t)(CODE_BASE + PAGE + 0x40 - g->pc), X_LINK)); /* call far, through t0 */
    emit(g, enc_i(-1, S2, 0, S2, OPC_OP_IMM));                    /* addi s2, s2, -1 */
    emit(g, enc_b((int32_t)(loop - g->pc), 0, S2, 1));            /* bnez s2, loop */
    p->end = g->pc;
    emit(g, enc_j(0, 0));                                         /* j . */
    g->pc = loop + 0x100;                                         /* near: a0 += 1, ret */
    emit(g, enc_i(1, A0, 0, A0, OPC_OP_IMM));
    emit(g, enc_i(0, X_RA, 0, 0, OPC_JALR));
    g->pc = CODE_BASE + PAGE + 0x40;                              /* far: a1 += a0, jr t0 */
    emit(g, enc_r(0, A0, A1, 0, A1, OPC_OP));
    emit(g, enc_i(0, X_LINK, 0, 0, OPC_JALR));

    struct machine *ref = machine_new(false), *jit = machine_new(true);
    machine_load(ref, p);
    machine_load(jit, p);
    for (int k = 0; k < 100 && jit->h.pc != p->end; k++) advance(jit, 1000);
    for (int k = 0; k < 100 && ref->h.pc != p->end; k++) advance(ref, 1000);
    assert_int_equal(jit->h.pc, p->end);
    assert_int_equal(ref->h.pc, p->end);
    assert_int_equal(jit->h.x[A0], CALLS);
    assert_int_equal(jit->h.x[A1], (uint64_t)CALLS * (CALLS + 1) / 2);
    assert_int_equal(jit->h.x[A1], ref->h.x[A1]);
    struct jit_stats js;
    jit_get_stats(jit->jit, &js);
    /* The far calls (one per pass) go through the jump cache; the 2000
     * returns would too if they were not predicted. */
    print_message("%u passes: %llu jumps through the jump cache\n", CALLS, (unsigned long long)js.jumps);
    assert_true(js.jumps >= CALLS);
    assert_true(js.jumps < CALLS + CALLS / 10);
    machine_free(ref);
    machine_free(jit);
    free_program(p, g);
}

/* A guest that keeps setting minstret to 0 moves the translator's slice
 * end back by what it ran each time; found by fuzz_hart: the end crossed
 * below 0, wrapped to near 2^64 and the slice never ended. Each run must
 * return (SIGALRM ends the test otherwise) having run the loop. */
static void alarm_fired(int sig) {
    (void)sig;
    static const char msg[] = "test_minstret_rewound_to_zero: a slice never ended\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(1);
}
static void test_minstret_rewound_to_zero(void **state) {
    (void)state;
    if (!jit_supported()) skip();
    struct gen *g;
    struct program *p = m_program(&g);
    const unsigned A0 = 10;
    g->pc = p->entry = CODE_BASE;
    for (int k = 0; k < 4; k++) emit(g, enc_i(1, A0, 0, A0, OPC_OP_IMM));   /* addi a0, a0, 1 */
    emit(g, enc_csr(5, CSR_MINSTRET, 0, 0));                                 /* csrwi minstret, 0 */
    emit(g, enc_j((int32_t)(CODE_BASE - g->pc), 0));                        /* j to the start */
    struct machine *m = machine_new(true);
    signal(SIGALRM, alarm_fired);
    alarm(20);
    for (int64_t budget = 1000; budget < 1012; budget++) { /* one of them lands the end just below 0 */
        machine_load(m, p);
        advance(m, budget);
        assert_true(m->h.x[A0] >= 4);
    }
    /* minstret set just below 2^64 once, then a loop: icount wraps past 0
     * inside the slice, which still runs its whole budget. */
    memset(p->ram, 0, RAM_SIZE);
    g->pc = CODE_BASE;
    emit(g, enc_i(-2048, 0, 0, X_LINK, OPC_OP_IMM));                       /* li t0, -2048 */
    emit(g, enc_csr(1, CSR_MINSTRET, X_LINK, 0));                           /* csrw minstret, t0 */
    uint64_t loop = g->pc;
    emit(g, enc_i(1, A0, 0, A0, OPC_OP_IMM));                               /* addi a0, a0, 1 */
    emit(g, enc_j((int32_t)(loop - g->pc), 0));                             /* j loop */
    machine_load(m, p);
    advance(m, 100);      /* past the write */
    uint64_t before = m->h.x[A0];
    struct jit_stats js0, js1;
    jit_get_stats(m->jit, &js0);
    advance(m, 10000);
    jit_get_stats(m->jit, &js1);
    assert_in_range(m->h.x[A0] - before, 4900, 5100);
    assert_true(js1.dispatches - js0.dispatches < 10); /* not a return to the dispatcher per pass */
    alarm(0);
    signal(SIGALRM, SIG_DFL);
    machine_free(m);
    free_program(p, g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encoders),
        cmocka_unit_test(test_li),
        cmocka_unit_test(test_returns_are_predicted),
        cmocka_unit_test(test_minstret_rewound_to_zero),
        cmocka_unit_test(test_lockstep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
