/* Block formation and code generation: guest instructions from one code
 * page become a block of x86-64 code. A block follows the guest's straight
 * line through conditional branches (each a side exit) and direct jumps
 * within the page, up to MAX_BLOCK_INSNS instructions, and ends at an
 * indirect jump, at an instruction that changes how code must be
 * translated (CSR writes, traps, fences of the instruction stream), or
 * where the code leaves the page.
 *
 * Common pairs are fused: what the first of two instructions leaves that
 * the second can use is kept for it alone (struct fused). An upper
 * immediate (lui, auipc) followed by a user of that register (addi, a
 * load, a store, jalr) gives the user a constant, so `auipc ra; jalr ra`
 * is a direct jump (followed or chained like jal) and `lui; addi` one
 * move; a compare (slt*) followed by `beqz`/`bnez` of its result branches
 * on the compare's flags. Each instruction still writes its own
 * destination, so an exception in the second sees the first complete.
 *
 * The hot path runs straight through; what is rare (software-TLB misses,
 * faults, leaving the block) is emitted after it as cold stubs. Every way
 * out of a block leaves the hart exactly as the interpreter would: pc,
 * registers, memory and the instruction count. */
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "hart/code_cache.h"
#include "hart/exec.h"
#include "hart/exec_fp.h"
#include "jit/jit_internal.h"
#include "mmu/tlb.h"

#define MAX_BLOCK_INSNS 128
#define MAX_STUBS (3 * MAX_BLOCK_INSNS + 4) /* a handler call has up to three */
#define DATA_RESERVE (MAX_BLOCK_INSNS * sizeof(struct insn) + 256) /* per block, below the code */

#define HMEM(field) HART_FIELD(field)

const uint8_t jit_pinned_guest[JIT_PINNED] = {15, 2, 10, 14, 8, 11, 13, 9}; /* a5 sp a0 a4 s0 a1 a3 s1 */
const enum x86_reg jit_pinned_host[JIT_PINNED] = {RBX, R12, R13, R14, R15, RSI, RDI, R10};

enum stub_kind {
    STUB_LOAD,  /* software-TLB miss of a load */
    STUB_STORE, /* software-TLB miss of a store */
    STUB_EXIT,  /* a taken branch: leave for `target` */
    STUB_LEAVE, /* pc is already set (a trap was taken): count and return */
    STUB_RETRY, /* the block is stale: return to the dispatcher at its start */
};

/* Instructions and loads/stores done on the way to an exit that the
 * hart's counters do not have yet. */
struct counts {
    unsigned insns, mems;
};

struct stub {
    enum stub_kind kind;
    uint8_t *field;     /* the hot path's jcc to this stub */
    uint8_t *resume;    /* where the hot path goes on (loads and stores) */
    uint64_t pc;        /* the instruction's pc */
    uint64_t target;    /* EXIT: where to go; STORE: the next instruction */
    struct counts c;    /* what to add to the hart's counters when leaving from here */
    unsigned size;
    bool sign;
    enum x86_reg reg;   /* LOAD: the destination register */
};

/* What one instruction leaves for the next (register 0: nothing). */
struct fused {
    unsigned const_reg;      /* holds const_val (lui, auipc) */
    uint64_t const_val;
    unsigned flags_reg;      /* is 1 exactly when flags_cc holds on the host's flags (slt*) */
    enum x86_cond flags_cc;
};

struct tr {
    struct x86_buf *b;
    struct jit_hart *j;
    struct code_page *cp;
    uint32_t gen;
    uint64_t page;      /* guest-virtual page of the block */
    unsigned mode;      /* the mode it is translated for (jit_mode) */
    int priv;           /* the privilege it runs at */
    bool fs_dirty;      /* FP state is Dirty: FP loads and stores inline */
    uint64_t pc;        /* the instruction being translated */
    unsigned n;         /* instructions of the block before this one */
    unsigned counted;   /* of those, how many the hot path has added to icount */
    unsigned mems, mems_counted; /* the same for loads and stores (stats.mem_ops) */
    struct fused prev;  /* left by the instruction before this one */
    struct fused now;   /* left by this one, for the next */
    /* What registers hold in terms of others, for zext.w and sext.w
     * (`slli r, r, 32; srli/srai r, r, 32`, usually after an addiw and
     * interleaved with other work, so not fusable as pairs): w_sum[r]
     * says r = sext32(src + imm), shifted[r] that r = (src + imm) << 32,
     * src unwritten since; src 0: nothing known. The shift right then
     * computes from src, three dependencies through memory fewer. */
    struct w_sum {
        uint8_t src;
        int32_t imm;
    } w_sum[32], shifted[32];
    struct stub stubs[MAX_STUBS];
    unsigned nstubs;
    bool too_many_stubs;
};

/* ---- guest registers ---- */

static int pinned(unsigned r) {
    for (unsigned k = 0; k < JIT_PINNED; k++)
        if (jit_pinned_guest[k] == r) return (int)jit_pinned_host[k];
    return -1;
}

static struct x86_mem xmem(unsigned r) { return HART_AT(offsetof(struct hart, x) + 8 * r); }

static void get(struct tr *t, enum x86_reg dst, unsigned r) {
    int p = pinned(r);
    if (r == 0) x86_mov_ri(t->b, dst, 0);
    else if (p >= 0) {
        if (p != (int)dst) x86_mov_rr(t->b, dst, (enum x86_reg)p, true);
    } else
        x86_mov_rm(t->b, dst, xmem(r), true);
}

/* rd 0 and 32 (the decoder's sink for x0) are never written. */
static bool writes(unsigned rd) { return rd != 0 && rd != 32; }

static void put(struct tr *t, unsigned rd, enum x86_reg src) {
    if (!writes(rd)) return;
    int p = pinned(rd);
    if (p >= 0) {
        if (p != (int)src) x86_mov_rr(t->b, (enum x86_reg)p, src, true);
    } else
        x86_mov_mr(t->b, xmem(rd), src, true);
}

static void put_imm(struct tr *t, unsigned rd, uint64_t v) {
    if (!writes(rd)) return;
    int p = pinned(rd);
    if (p >= 0) {
        x86_mov_ri(t->b, (enum x86_reg)p, v);
    } else if ((int64_t)v == (int32_t)v) {
        x86_mov_mi(t->b, xmem(rd), (int32_t)v, true);
    } else {
        x86_mov_ri(t->b, R11, v); /* R11: no emitter keeps a value there across a put */
        x86_mov_mr(t->b, xmem(rd), R11, true);
    }
}

/* op dst, guest register r */
static void alu_guest(struct tr *t, enum x86_alu op, enum x86_reg dst, unsigned r, bool w) {
    int p = pinned(r);
    if (p >= 0) x86_alu_rr(t->b, op, dst, (enum x86_reg)p, w);
    else x86_alu_rm(t->b, op, dst, xmem(r), w); /* x[0] is always 0 in memory */
}

/* Where to compute rd's value: its own pinned register, unless that is
 * also an operand still to be read (`keep`), else RAX. */
static enum x86_reg dest(unsigned rd, unsigned keep) {
    int p = pinned(rd);
    return (p >= 0 && rd != keep) ? (enum x86_reg)p : RAX;
}

/* dst = guest r + imm */
static void address(struct tr *t, enum x86_reg dst, unsigned r, int32_t imm) {
    int p = pinned(r);
    if (r && r == t->prev.const_reg) {
        x86_mov_ri(t->b, dst, t->prev.const_val + (uint64_t)(int64_t)imm);
        t->j->stats.fused++;
    } else if (p >= 0) {
        x86_lea(t->b, dst, x86_at((enum x86_reg)p, imm), true);
    } else {
        get(t, dst, r);
        if (imm) x86_alu_ri(t->b, ALU_ADD, dst, imm, true);
    }
}

static void spill(struct tr *t, unsigned r) {
    int p = pinned(r);
    if (p >= 0) x86_mov_mr(t->b, xmem(r), (enum x86_reg)p, true);
}
static void reload(struct tr *t, unsigned r) {
    int p = pinned(r);
    if (p >= 0) x86_mov_rm(t->b, (enum x86_reg)p, xmem(r), true);
}
static void spill_all(struct tr *t) {
    for (unsigned k = 0; k < JIT_PINNED; k++) spill(t, jit_pinned_guest[k]);
}

/* Around a call into C: the pinned registers the callee may clobber go to
 * memory and come back (from memory, where the callee may have changed them). */
static void save_volatile(struct tr *t) {
    for (unsigned k = JIT_PINNED_SAVED; k < JIT_PINNED; k++) spill(t, jit_pinned_guest[k]);
}
static void restore_volatile(struct tr *t) {
    for (unsigned k = JIT_PINNED_SAVED; k < JIT_PINNED; k++) reload(t, jit_pinned_guest[k]);
}

/* A guest register as an argument of a call, after save_volatile: the
 * saved copy, since argument registers may be pinned ones. */
static void get_arg(struct tr *t, enum x86_reg dst, unsigned r) {
    int p = pinned(r);
    bool saved_reg = false;
    for (unsigned k = 0; k < JIT_PINNED_SAVED; k++) saved_reg |= p == (int)jit_pinned_host[k];
    if (r == 0) x86_mov_ri(t->b, dst, 0);
    else if (saved_reg) x86_mov_rr(t->b, dst, (enum x86_reg)p, true);
    else x86_mov_rm(t->b, dst, xmem(r), true);
}

/* ---- stubs and exits ---- */

static struct stub *add_stub(struct tr *t, enum stub_kind kind, uint8_t *field) {
    if (t->nstubs == MAX_STUBS) {
        t->too_many_stubs = true;
        return &t->stubs[0];
    }
    struct stub *s = &t->stubs[t->nstubs++];
    *s = (struct stub){.kind = kind, .field = field, .pc = t->pc};
    return s;
}

static void set_pc(struct tr *t, uint64_t pc) {
    if ((int64_t)pc == (int32_t)pc) {
        x86_mov_mi(t->b, HMEM(pc), (int32_t)pc, true);
    } else {
        x86_mov_ri(t->b, RCX, pc);
        x86_mov_mr(t->b, HMEM(pc), RCX, true);
    }
}

static void add_mems(struct tr *t, unsigned mems) {
    if (mems) x86_alu_mi(t->b, ALU_ADD, HMEM(stats.mem_ops), (int32_t)mems, true);
}

static void add_counts(struct tr *t, struct counts c) {
    if (c.insns) x86_alu_mi(t->b, ALU_ADD, HMEM(icount), (int32_t)c.insns, true);
    add_mems(t, c.mems);
}

/* Counts up to the current instruction, without it or with it. */
static struct counts before_this(const struct tr *t) {
    return (struct counts){t->n - t->counted, t->mems - t->mems_counted};
}
static struct counts through_this(const struct tr *t, bool mem) {
    return (struct counts){t->n + 1 - t->counted, t->mems + mem - t->mems_counted};
}

/* Adds c.insns to icount, leaving the new value in RCX, and jumps to a
 * new jcc's target if the slice is used up (icount - icount_limit not
 * negative: minstret writes may put either anywhere); returns that jcc's
 * field. */
static uint8_t *count_and_check(struct tr *t, struct counts c) {
    struct x86_buf *b = t->b;
    add_mems(t, c.mems);
    x86_mov_rm(b, RCX, HMEM(icount), true);
    if (c.insns) x86_alu_ri(b, ALU_ADD, RCX, (int32_t)c.insns, true);
    x86_mov_mr(b, HMEM(icount), RCX, true);
    x86_alu_rm(b, ALU_CMP, RCX, HMEM(icount_limit), true);
    return x86_jcc(b, CC_NS, NULL);
}

/* Jumps to the block for the guest pc in RAX through the jump cache of
 * the current privilege (an indirect jump of its own at every site, for
 * the host's branch predictor), or to lookup_miss. */
static void jump_through_cache(struct tr *t) {
    struct x86_buf *b = t->b;
    x86_alu_mi(b, ALU_ADD, HMEM(jit_jumps), 1, true);
    x86_mov_rm(b, RDX, HMEM(itlb), true);
    x86_mov_rm(b, R8, x86_at(RDX, (int32_t)offsetof(struct tlb_set, jump_gen)), false);
    x86_mov_rm(b, RDX, HMEM(jump), true);
    x86_mov_rr(b, RCX, RAX, false); /* jump_index(pc) * sizeof(struct jump_entry) */
    x86_shift_ri(b, SHIFT_SHR, RCX, JUMP_FOLD, false);
    x86_alu_rr(b, ALU_XOR, RCX, RAX, false);
    x86_alu_ri(b, ALU_AND, RCX, (JUMP_CACHE_SIZE - 1) << 1, false);
    x86_shift_ri(b, SHIFT_SHL, RCX, 4, false);
    x86_alu_rm(b, ALU_CMP, RAX, x86_at_index(RDX, RCX, 1, (int32_t)offsetof(struct jump_entry, pc)), true);
    x86_jcc(b, CC_NE, t->j->lookup_miss);
    x86_alu_rm(b, ALU_CMP, R8, x86_at_index(RDX, RCX, 1, (int32_t)offsetof(struct jump_entry, gen)), false);
    x86_jcc(b, CC_NE, t->j->lookup_miss);
    x86_jmp_m(b, x86_at_index(RDX, RCX, 1, (int32_t)offsetof(struct jump_entry, code)));
}

/* Goes to the block for `target`: a chained jump when the target is in
 * the block's page (the dispatcher points it at the target's block the
 * first time it is taken), the jump cache otherwise. */
static void chain_to(struct tr *t, uint64_t target) {
    struct x86_buf *b = t->b;
    if ((target & PAGE_MASK) == t->page) {
        /* The jump's displacement is patched while other code may run: align it. */
        while (((uintptr_t)b->p + 1) & 3) x86_nop(b, 1);
        uint8_t *field = x86_jmp(b, NULL);
        if (field) x86_patch_rel32(field, b->p);
        x86_call(b, t->j->link_thunk);
        const void *key = jit_link_key(t->cp, t->mode);
        x86_data(b, &target, sizeof target);
        x86_data(b, &key, sizeof key);
    } else {
        x86_mov_ri(b, RAX, target);
        jump_through_cache(t);
    }
}

/* Leaves the block at `from` for `target` after counting c: a chained
 * jump when the target is in the block's page (the dispatcher points it at
 * the target's block the first time it is taken), the jump cache
 * otherwise. A backward jump returns to the dispatcher instead once the
 * slice's instructions are used up: every loop has one, so interrupts
 * and the other harts' turns come within a slice. */
static void exit_to(struct tr *t, uint64_t from, uint64_t target, struct counts c) {
    struct x86_buf *b = t->b;
    uint8_t *over = NULL;
    if (target <= from) over = count_and_check(t, c);
    else add_counts(t, c);
    chain_to(t, target);
    if (over) x86_patch_rel32(over, b->p);
    set_pc(t, target);
    x86_jmp(b, t->j->exit_spill);
}

static void emit_stub(struct tr *t, struct stub *s) {
    struct x86_buf *b = t->b;
    if (s->field) x86_patch_rel32(s->field, b->p);
    switch (s->kind) {
    case STUB_EXIT:
        exit_to(t, s->pc, s->target, s->c);
        return;
    case STUB_LEAVE:
        add_counts(t, s->c);
        x86_jmp(b, t->j->exit_spill);
        return;
    case STUB_RETRY:
        set_pc(t, s->pc);
        x86_jmp(b, t->j->exit_spill);
        return;
    case STUB_LOAD:
    case STUB_STORE: {
        bool load = s->kind == STUB_LOAD;
        struct jit_site site = {.pc = s->pc, .gen = &t->cp->gen, .block_gen = t->gen, .insns = (uint16_t)s->c.insns,
                                .mems = (uint16_t)s->c.mems, .size = (uint8_t)s->size, .sign = s->sign,
                                .len = (uint8_t)(s->target - s->pc)};
        if (!load) x86_mov_rr(b, RCX, s->reg, true);
        x86_call(b, load ? t->j->load_thunk : t->j->store_thunk);
        x86_data(b, &site, sizeof site);
        if (load) x86_mov_rm(b, s->reg, HMEM(load_val), true);
        x86_jmp(b, s->resume);
        return;
    }
    }
}

/* ---- instructions ---- */

enum step { STEP_NEXT, STEP_END, STEP_FOLLOW };


static void alu_reg(struct tr *t, const struct insn *i, enum x86_alu op, bool w) {
    if (!writes(i->rd)) return;
    enum x86_reg d = dest(i->rd, i->rs2);
    get(t, d, i->rs1);
    alu_guest(t, op, d, i->rs2, w);
    if (!w) x86_movsxd(t->b, d, d);
    put(t, i->rd, d);
}

static void alu_imm(struct tr *t, const struct insn *i, enum x86_alu op, bool w) {
    if (!writes(i->rd)) return;
    if (i->rs1 == 0 && op != ALU_AND) { /* li: x0 op imm is imm (sign-extended) */
        put_imm(t, i->rd, (uint64_t)(int64_t)i->imm);
        return;
    }
    if (i->rs1 && i->rs1 == t->prev.const_reg && (op == ALU_ADD || op == ALU_AND || op == ALU_OR || op == ALU_XOR)) {
        uint64_t a = t->prev.const_val, b = (uint64_t)(int64_t)i->imm;
        uint64_t v = op == ALU_ADD ? a + b : op == ALU_AND ? (a & b) : op == ALU_OR ? (a | b) : (a ^ b);
        put_imm(t, i->rd, w ? v : (uint64_t)(int64_t)(int32_t)v);
        t->j->stats.fused++;
        return;
    }
    enum x86_reg d = dest(i->rd, 64);
    if (op == ALU_ADD && w) {
        address(t, d, i->rs1, i->imm);
    } else {
        get(t, d, i->rs1);
        x86_alu_ri(t->b, op, d, i->imm, w);
        if (!w) x86_movsxd(t->b, d, d);
    }
    put(t, i->rd, d);
}

static void shift_imm(struct tr *t, const struct insn *i, enum x86_shift op, bool w) {
    if (!writes(i->rd)) return;
    enum x86_reg d = dest(i->rd, 64);
    struct w_sum k = t->shifted[i->rs1];
    if (k.src && w && i->imm == 32 && op != SHIFT_SHL) { /* (src + imm) zero- or sign-extended */
        int p = pinned(k.src);
        if (p >= 0) {
            x86_lea(t->b, d, x86_at((enum x86_reg)p, k.imm), false);
        } else {
            get(t, d, k.src);
            x86_lea(t->b, d, x86_at(d, k.imm), false);
        }
        if (op == SHIFT_SAR) x86_movsxd(t->b, d, d);
        put(t, i->rd, d);
        t->j->stats.fused++;
        return;
    }
    get(t, d, i->rs1);
    x86_shift_ri(t->b, op, d, (unsigned)i->imm & (w ? 63 : 31), w);
    if (!w) x86_movsxd(t->b, d, d);
    put(t, i->rd, d);
}

/* x86 masks the count by 63 (64-bit) or 31 (32-bit), as RISC-V does. */
static void shift_reg(struct tr *t, const struct insn *i, enum x86_shift op, bool w) {
    if (!writes(i->rd)) return;
    get(t, RCX, i->rs2);
    enum x86_reg d = dest(i->rd, 64);
    get(t, d, i->rs1);
    x86_shift_rcl(t->b, op, d, w);
    if (!w) x86_movsxd(t->b, d, d);
    put(t, i->rd, d);
}

static void set_less(struct tr *t, const struct insn *i, bool imm, bool is_unsigned) {
    if (!writes(i->rd)) return;
    get(t, RAX, i->rs1);
    if (imm) x86_alu_ri(t->b, ALU_CMP, RAX, i->imm, true);
    else alu_guest(t, ALU_CMP, RAX, i->rs2, true);
    x86_setcc(t->b, is_unsigned ? CC_B : CC_L, RAX);
    x86_movzx8(t->b, RAX, RAX);
    put(t, i->rd, RAX); /* moves: the flags stay for a fused branch */
    t->now = (struct fused){.flags_reg = i->rd, .flags_cc = is_unsigned ? CC_B : CC_L};
}

static void mul(struct tr *t, const struct insn *i, bool w) {
    if (!writes(i->rd)) return;
    enum x86_reg d = dest(i->rd, i->rs2);
    get(t, d, i->rs1);
    int p = pinned(i->rs2);
    if (p >= 0) x86_imul_rr(t->b, d, (enum x86_reg)p, w);
    else x86_imul_rm(t->b, d, xmem(i->rs2), w);
    if (!w) x86_movsxd(t->b, d, d);
    put(t, i->rd, d);
}

static void mul_high(struct tr *t, const struct insn *i, bool is_signed) {
    if (!writes(i->rd)) return;
    get(t, RAX, i->rs1);
    get(t, RCX, i->rs2);
    x86_unary(t->b, is_signed ? UN_IMUL : UN_MUL, RCX, true);
    put(t, i->rd, RDX);
}

/* A C function of two guest registers (division: its corner cases are
 * defined on RISC-V and trap on x86). Pinned registers survive the call. */
static void call_pure(struct tr *t, const struct insn *i, uint64_t (*fn)(uint64_t, uint64_t)) {
    if (!writes(i->rd)) return;
    save_volatile(t);
    get_arg(t, RDI, i->rs1);
    get_arg(t, RSI, i->rs2);
    x86_call_far(t->b, (const void *)fn);
    restore_volatile(t);
    put(t, i->rd, RAX);
}

/* The software-TLB probe shared by loads and stores: RAX holds the
 * address; jumps to a new stub on a miss, else leaves the host address in
 * RAX. The key compare folds in alignment: a misaligned address never
 * matches (tlb_key). */
static struct stub *tlb_probe(struct tr *t, enum stub_kind kind, unsigned size) {
    struct x86_buf *b = t->b;
    int32_t table = kind == STUB_LOAD ? (int32_t)offsetof(struct tlb_set, read) : (int32_t)offsetof(struct tlb_set, write);
    /* In U-mode loads and stores use the U set (MPRV and SUM act only in
     * M- and S-mode): a fixed offset from the hart. */
    enum x86_reg set = HART;
    if (t->priv != PRIV_U) {
        x86_mov_rm(b, RDX, HMEM(dtlb), true);
        set = RDX;
    } else {
        table += (int32_t)(offsetof(struct hart, tlb) + (size_t)t->priv * sizeof(struct tlb_set)) - JIT_HART_BIAS;
    }
    x86_mov_rr(b, RCX, RAX, true);
    x86_shift_ri(b, SHIFT_SHR, RCX, PAGE_SHIFT - 4, true);
    x86_alu_ri(b, ALU_AND, RCX, (int32_t)((TLB_SIZE - 1) << 4), false);
    x86_mov_rr(b, R8, RAX, true);
    x86_alu_ri(b, ALU_AND, R8, (int32_t)(PAGE_MASK | (size - 1)), true);
    x86_alu_rm(b, ALU_CMP, R8, x86_at_index(set, RCX, 1, table + (int32_t)offsetof(struct tlb_entry, tag)), true);
    struct stub *s = add_stub(t, kind, x86_jcc(b, CC_NE, NULL));
    x86_alu_rm(b, ALU_ADD, RAX, x86_at_index(set, RCX, 1, table + (int32_t)offsetof(struct tlb_entry, addend)), true);
    s->size = size;
    s->c = through_this(t, true);
    return s;
}

static void load(struct tr *t, const struct insn *i, unsigned size, bool sign) {
    address(t, RAX, i->rs1, i->imm);
    struct stub *s = tlb_probe(t, STUB_LOAD, size);
    enum x86_reg d = writes(i->rd) ? dest(i->rd, 64) : RAX;
    x86_load(t->b, d, x86_at(RAX, 0), size, sign);
    s->resume = t->b->p;
    s->target = t->pc + i->len;
    s->sign = sign;
    s->reg = d;
    put(t, i->rd, d);
    t->mems++;
}

static void store(struct tr *t, const struct insn *i, unsigned size) {
    address(t, RAX, i->rs1, i->imm);
    int p = pinned(i->rs2);
    enum x86_reg v = p >= 0 ? (enum x86_reg)p : R9;
    if (p < 0) get(t, R9, i->rs2);
    struct stub *s = tlb_probe(t, STUB_STORE, size);
    s->reg = v;
    x86_store(t->b, x86_at(RAX, 0), v, size);
    s->resume = t->b->p;
    s->target = t->pc + i->len;
    t->mems++;
}

static struct x86_mem fmem(unsigned r) { return HART_AT(offsetof(struct hart, f) + 8 * r); }

/* FP loads and stores with FS Dirty (so legal, and nothing to mark): the
 * integer path with f[] in place of x[]. A single is NaN-boxed. */
static void load_fp(struct tr *t, const struct insn *i, unsigned size) {
    address(t, RAX, i->rs1, i->imm);
    struct stub *s = tlb_probe(t, STUB_LOAD, size);
    x86_load(t->b, RCX, x86_at(RAX, 0), size, false);
    s->resume = t->b->p;
    s->target = t->pc + i->len;
    s->reg = RCX;
    if (size == 4) {
        x86_mov_ri(t->b, R8, 0xffffffff00000000ull);
        x86_alu_rr(t->b, ALU_OR, RCX, R8, true);
    }
    x86_mov_mr(t->b, fmem(i->rd), RCX, true);
    t->mems++;
}

static void store_fp(struct tr *t, const struct insn *i, unsigned size) {
    address(t, RAX, i->rs1, i->imm);
    x86_mov_rm(t->b, R9, fmem(i->rs2), true);
    struct stub *s = tlb_probe(t, STUB_STORE, size);
    s->reg = R9;
    x86_store(t->b, x86_at(RAX, 0), R9, size);
    s->resume = t->b->p;
    s->target = t->pc + i->len;
    t->mems++;
}

static enum step branch(struct tr *t, const struct insn *i, enum x86_cond cc) {
    if (i->rs2 == 0 && i->rs1 && i->rs1 == t->prev.flags_reg && (cc == CC_E || cc == CC_NE)) {
        /* bnez/beqz of a compare's result: its condition, or the inverse (x86 flips the low bit). */
        enum x86_cond fused = cc == CC_NE ? t->prev.flags_cc : (enum x86_cond)(t->prev.flags_cc ^ 1);
        struct stub *s = add_stub(t, STUB_EXIT, x86_jcc(t->b, fused, NULL));
        s->target = t->pc + (uint64_t)(int64_t)i->imm;
        s->c = through_this(t, false);
        t->j->stats.fused++;
        return STEP_NEXT;
    }
    int p = pinned(i->rs1);
    enum x86_reg a = p >= 0 ? (enum x86_reg)p : RAX;
    if (p < 0) get(t, RAX, i->rs1);
    if (i->rs2 == 0) x86_test_rr(t->b, a, a, true);
    else alu_guest(t, ALU_CMP, a, i->rs2, true);
    struct stub *s = add_stub(t, STUB_EXIT, x86_jcc(t->b, cc, NULL));
    s->target = t->pc + (uint64_t)(int64_t)i->imm;
    s->c = through_this(t, false);
    return STEP_NEXT;
}

/* ra and t0 are the link registers: writing one makes a jump a call,
 * jumping through one (and writing none) a return. */
static bool is_link(unsigned r) { return r == 1 || r == 5; }

/* A guest call to return to pc + len: a return frame (see ras.c) whose
 * landing, right after the host call, goes on at the return address (the
 * return was counted at its own site). The call itself goes on past it. */
static void push_return(struct tr *t, const struct insn *i) {
    uint8_t *past[2];
    jit_ras_push(t->b, t->pc + i->len, past);
    chain_to(t, t->pc + i->len);
    for (int k = 0; k < 2; k++)
        if (past[k]) x86_patch_rel32(past[k], t->b->p);
}

/* A jump whose target is known now (jal, a fused jalr): link, then the
 * block follows it or exits to it (jit_translate). */
static enum step direct_jump(struct tr *t, const struct insn *i, uint64_t target, uint64_t *follow) {
    put_imm(t, i->rd, t->pc + i->len);
    if (is_link(i->rd)) push_return(t, i);
    *follow = target;
    return STEP_FOLLOW;
}

/* After an instruction: what w_sum[] and shifted[] know. */
static void track_sums(struct tr *t, const struct insn *i) {
    if (!writes(i->rd)) return;
    unsigned rd = i->rd, rs = i->rs1;
    struct w_sum sum = {0}, shifted = {0};
    if (i->fn == op_addiw && rs != rd) sum = (struct w_sum){(uint8_t)rs, i->imm};
    if (i->fn == op_slli && i->imm == 32) shifted = rs == rd ? t->w_sum[rd] : (struct w_sum){(uint8_t)rs, 0};
    for (unsigned r = 1; r < 32; r++) {
        if (t->w_sum[r].src == rd) t->w_sum[r].src = 0;
        if (t->shifted[r].src == rd) t->shifted[r].src = 0;
    }
    t->w_sum[rd] = sum;
    t->shifted[rd] = shifted;
}

static enum step jalr(struct tr *t, const struct insn *i, uint64_t *follow) {
    struct x86_buf *b = t->b;
    if (i->rs1 && i->rs1 == t->prev.const_reg) { /* auipc + jalr */
        t->j->stats.fused++;
        return direct_jump(t, i, (t->prev.const_val + (uint64_t)(int64_t)i->imm) & ~1ull, follow);
    }
    address(t, RAX, i->rs1, i->imm);
    x86_alu_ri(b, ALU_AND, RAX, -2, true);
    put_imm(t, i->rd, t->pc + i->len);
    uint8_t *over = count_and_check(t, through_this(t, false));
    if (is_link(i->rd)) {
        push_return(t, i);
    } else if (!writes(i->rd) && is_link(i->rs1)) {
        jit_ras_return(b);
    }
    jump_through_cache(t);
    if (over) x86_patch_rel32(over, b->p);
    x86_mov_mr(b, HMEM(pc), RAX, true);
    x86_jmp(b, t->j->exit_spill);
    return STEP_END;
}

/* x86 keeps every order but a store's before a later load (TSO): only a
 * fence from stores (or output) to loads (or input) needs an mfence, and
 * fence.tso (fm = 8) never does. */
static void fence(struct tr *t, const struct insn *i) {
    unsigned fm = ((unsigned)i->imm >> 8) & 15, pred = ((unsigned)i->imm >> 4) & 15, succ = (unsigned)i->imm & 15;
    const unsigned PW_PO = 1 | 4, SR_SI = 2 | 8;
    if (fm != 8 && (pred & PW_PO) && (succ & SR_SI)) x86_mfence(t->b);
}

/* Handlers that change what code means or where it runs (privilege, CSRs,
 * translations, traps): the block ends after them and the dispatcher
 * looks at the hart again. */
static bool ends_block(const struct insn *i) {
    insn_fn fn = i->fn;
    if (fn == op_csrrw || fn == op_csrrs || fn == op_csrrc || fn == op_csrrwi || fn == op_csrrsi || fn == op_csrrci) {
        /* Reads (csrrs/csrrc of x0 or 0) and writes of the FP CSRs
         * (fflags, frm, fcsr: translations do not depend on them) go on. */
        bool writes_csr = fn == op_csrrw || fn == op_csrrwi || i->rs1 != 0;
        unsigned csr = (unsigned)i->imm;
        return writes_csr && !(csr >= 1 && csr <= 3);
    }
    return fn == op_ecall || fn == op_ebreak || fn == op_sret || fn == op_mret || fn == op_wfi ||
           fn == op_sfence_vma || fn == op_fence_i || fn == op_illegal;
}

/* Handlers that may write memory (and so this block's own code). */
static bool may_store(insn_fn fn) {
    return fn == op_sc_w || fn == op_sc_d || fn == op_amoswap_w || fn == op_amoadd_w || fn == op_amoxor_w ||
           fn == op_amoand_w || fn == op_amoor_w || fn == op_amomin_w || fn == op_amomax_w || fn == op_amominu_w ||
           fn == op_amomaxu_w || fn == op_amoswap_d || fn == op_amoadd_d || fn == op_amoxor_d || fn == op_amoand_d ||
           fn == op_amoor_d || fn == op_amomin_d || fn == op_amomax_d || fn == op_amominu_d || fn == op_amomaxu_d ||
           fn == op_fsw || fn == op_fsd || fn == op_cross_page;
}

/* Runs the interpreter's handler for one instruction from translated code:
 * with no budget, the handler completes its instruction and returns. */
static enum step call_handler(struct tr *t, const struct insn *i) {
    struct x86_buf *b = t->b;
    struct jit_hart *j = t->j;
    bool end = ends_block(i);
    /* The handler reads its operands from the block's data. */
    uint8_t *copy = j->data - sizeof(struct insn);
    copy -= (uintptr_t)copy % alignof(struct insn);
    if (copy < b->end) {
        b->full = true;
        return STEP_END;
    }
    memcpy(copy, i, sizeof *i);
    j->data = copy;

    /* The handler reads and writes x[] in memory: store what it may read
     * and load what it may write. A page-crossing instruction is decoded
     * only when it runs, so any register may be its operand. */
    bool any_reg = i->fn == op_cross_page;
    if (end || any_reg) {
        spill_all(t);
    } else {
        spill(t, i->rs1);
        spill(t, i->rs2);
        spill(t, i->rd);
        save_volatile(t);
    }
    set_pc(t, t->pc);
    add_counts(t, before_this(t)); /* the instructions before this one: what instret reads */
    t->counted = t->n;
    t->mems_counted = t->mems;
    x86_lea(b, RDI, HART_AT(0), true);
    x86_mov_ri(b, RSI, (uintptr_t)copy);
    x86_call_far(b, (const void *)i->fn);
    if (end) {
        /* Memory holds every register now; pc is wherever the handler went. */
        add_counts(t, (struct counts){1, 0});
        t->counted = t->n + 1;
        x86_jmp(b, j->exit_raw);
        return STEP_END;
    }
    if (any_reg) {
        for (unsigned k = 0; k < JIT_PINNED; k++) reload(t, jit_pinned_guest[k]);
    } else {
        restore_volatile(t);
        reload(t, i->rd);
    }
    uint64_t next = t->pc + i->len;
    if ((int64_t)next == (int32_t)next) {
        x86_alu_mi(b, ALU_CMP, HMEM(pc), (int32_t)next, true);
    } else {
        x86_mov_ri(b, RCX, next);
        x86_alu_rm(b, ALU_CMP, RCX, HMEM(pc), true);
    }
    add_stub(t, STUB_LEAVE, x86_jcc(b, CC_NE, NULL))->c = through_this(t, false);
    x86_alu_mi(b, ALU_CMP, HMEM(break_pending), 0, false);
    add_stub(t, STUB_LEAVE, x86_jcc(b, CC_NE, NULL))->c = through_this(t, false);
    if (may_store(i->fn)) {
        /* The store may have hit this block's own code: the block is stale
         * from the next instruction on (pc is already there). */
        x86_mov_ri(b, RCX, (uintptr_t)&t->cp->gen);
        x86_alu_mi(b, ALU_CMP, x86_at(RCX, 0), (int32_t)t->gen, false);
        add_stub(t, STUB_LEAVE, x86_jcc(b, CC_NE, NULL))->c = through_this(t, false);
    }
    return STEP_NEXT;
}

static enum step translate_one(struct tr *t, const struct insn *i, uint64_t *follow) {
    insn_fn fn = i->fn;
#define IS(name) (fn == op_##name)
    if (IS(addi)) alu_imm(t, i, ALU_ADD, true);
    else if (IS(addiw)) alu_imm(t, i, ALU_ADD, false);
    else if (IS(andi)) alu_imm(t, i, ALU_AND, true);
    else if (IS(ori)) alu_imm(t, i, ALU_OR, true);
    else if (IS(xori)) alu_imm(t, i, ALU_XOR, true);
    else if (IS(add)) alu_reg(t, i, ALU_ADD, true);
    else if (IS(sub)) alu_reg(t, i, ALU_SUB, true);
    else if (IS(and)) alu_reg(t, i, ALU_AND, true);
    else if (IS(or)) alu_reg(t, i, ALU_OR, true);
    else if (IS(xor)) alu_reg(t, i, ALU_XOR, true);
    else if (IS(addw)) alu_reg(t, i, ALU_ADD, false);
    else if (IS(subw)) alu_reg(t, i, ALU_SUB, false);
    else if (IS(slli)) shift_imm(t, i, SHIFT_SHL, true);
    else if (IS(srli)) shift_imm(t, i, SHIFT_SHR, true);
    else if (IS(srai)) shift_imm(t, i, SHIFT_SAR, true);
    else if (IS(slliw)) shift_imm(t, i, SHIFT_SHL, false);
    else if (IS(srliw)) shift_imm(t, i, SHIFT_SHR, false);
    else if (IS(sraiw)) shift_imm(t, i, SHIFT_SAR, false);
    else if (IS(sll)) shift_reg(t, i, SHIFT_SHL, true);
    else if (IS(srl)) shift_reg(t, i, SHIFT_SHR, true);
    else if (IS(sra)) shift_reg(t, i, SHIFT_SAR, true);
    else if (IS(sllw)) shift_reg(t, i, SHIFT_SHL, false);
    else if (IS(srlw)) shift_reg(t, i, SHIFT_SHR, false);
    else if (IS(sraw)) shift_reg(t, i, SHIFT_SAR, false);
    else if (IS(slt)) set_less(t, i, false, false);
    else if (IS(sltu)) set_less(t, i, false, true);
    else if (IS(slti)) set_less(t, i, true, false);
    else if (IS(sltiu)) set_less(t, i, true, true);
    else if (IS(lui) || IS(auipc)) {
        uint64_t v = (uint64_t)(int64_t)i->imm + (IS(auipc) ? t->pc : 0);
        put_imm(t, i->rd, v);
        if (writes(i->rd)) t->now = (struct fused){.const_reg = i->rd, .const_val = v};
    }
    else if (IS(mul)) mul(t, i, true);
    else if (IS(mulw)) mul(t, i, false);
    else if (IS(mulh)) mul_high(t, i, true);
    else if (IS(mulhu)) mul_high(t, i, false);
    else if (IS(mulhsu)) call_pure(t, i, jit_mulhsu);
    else if (IS(div)) call_pure(t, i, jit_div);
    else if (IS(divu)) call_pure(t, i, jit_divu);
    else if (IS(rem)) call_pure(t, i, jit_rem);
    else if (IS(remu)) call_pure(t, i, jit_remu);
    else if (IS(divw)) call_pure(t, i, jit_divw);
    else if (IS(divuw)) call_pure(t, i, jit_divuw);
    else if (IS(remw)) call_pure(t, i, jit_remw);
    else if (IS(remuw)) call_pure(t, i, jit_remuw);
    else if (IS(lb)) load(t, i, 1, true);
    else if (IS(lh)) load(t, i, 2, true);
    else if (IS(lw)) load(t, i, 4, true);
    else if (IS(ld)) load(t, i, 8, false);
    else if (IS(lbu)) load(t, i, 1, false);
    else if (IS(lhu)) load(t, i, 2, false);
    else if (IS(lwu)) load(t, i, 4, false);
    else if (IS(sb)) store(t, i, 1);
    else if (IS(sh)) store(t, i, 2);
    else if (IS(sw)) store(t, i, 4);
    else if (IS(sd)) store(t, i, 8);
    else if (IS(beq)) return branch(t, i, CC_E);
    else if (IS(bne)) return branch(t, i, CC_NE);
    else if (IS(blt)) return branch(t, i, CC_L);
    else if (IS(bge)) return branch(t, i, CC_GE);
    else if (IS(bltu)) return branch(t, i, CC_B);
    else if (IS(bgeu)) return branch(t, i, CC_AE);
    else if (IS(jalr)) return jalr(t, i, follow);
    else if (IS(jal)) return direct_jump(t, i, t->pc + (uint64_t)(int64_t)i->imm, follow);
    else if (IS(fence)) fence(t, i);
    else if (t->fs_dirty && IS(flw)) load_fp(t, i, 4);
    else if (t->fs_dirty && IS(fld)) load_fp(t, i, 8);
    else if (t->fs_dirty && IS(fsw)) store_fp(t, i, 4);
    else if (t->fs_dirty && IS(fsd)) store_fp(t, i, 8);
    else return call_handler(t, i);
#undef IS
    return STEP_NEXT;
}

/* ---- blocks ---- */

struct tr *jit_translator_new(void) { return malloc(sizeof(struct tr)); }

struct jit_block *jit_translate(struct jit_hart *j, struct hart *h, uint64_t vpc, struct code_page *cp,
                                const uint8_t *host_page) {
    uint8_t *start = j->code + ((16 - (uintptr_t)j->code % 16) % 16);
    if (j->data - start < (ptrdiff_t)(64 * 1024)) return NULL;
    struct x86_buf b;
    x86_buf_init(&b, start, (size_t)(j->data - DATA_RESERVE - start));
    uint8_t *data_before = j->data;

    struct tr *t = j->translator;
    t->b = &b;
    t->j = j;
    t->cp = cp;
    t->gen = __atomic_load_n(&cp->gen, __ATOMIC_ACQUIRE);
    t->page = vpc & PAGE_MASK;
    t->mode = jit_mode(h);
    t->priv = h->priv;
    t->fs_dirty = (t->mode & JIT_MODE_FS_DIRTY) != 0;
    t->n = t->counted = t->mems = t->mems_counted = 0;
    t->nstubs = 0;
    t->too_many_stubs = false;
    t->now = (struct fused){0};
    memset(t->w_sum, 0, sizeof t->w_sum);
    memset(t->shifted, 0, sizeof t->shifted);

    /* Entry: the block runs only while its page's code is what was translated. */
    const uint8_t *entry = b.p;
    x86_mov_ri(&b, RAX, (uintptr_t)&cp->gen);
    x86_alu_mi(&b, ALU_CMP, x86_at(RAX, 0), (int32_t)t->gen, false);
    t->pc = vpc;
    add_stub(t, STUB_RETRY, x86_jcc(&b, CC_NE, NULL));

    uint64_t followed[8];
    unsigned nfollowed = 0;
    uint64_t pc = vpc;
    for (;;) {
        if (t->n == MAX_BLOCK_INSNS || (pc & PAGE_MASK) != t->page) {
            exit_to(t, pc - 1, pc, before_this(t));
            break;
        }
        struct insn i;
        if (!code_page_decode(h, cp, host_page, pc, &i)) { /* reset by a store meanwhile: this block is already stale */
            exit_to(t, pc - 1, pc, before_this(t));
            break;
        }
        t->pc = pc;
        t->prev = t->now;
        t->now = (struct fused){0};
        uint64_t target = 0;
        enum step step = translate_one(t, &i, &target);
        if (b.full || t->too_many_stubs) break;
        track_sums(t, &i);
        if (step == STEP_END) {
            t->n++;
            break;
        }
        if (step == STEP_FOLLOW) {
            bool seen = target == vpc;
            for (unsigned k = 0; k < nfollowed; k++) seen |= followed[k] == target;
            if (seen || nfollowed == 8 || (target & PAGE_MASK) != t->page || t->n + 1 == MAX_BLOCK_INSNS) {
                exit_to(t, t->pc, target, through_this(t, false));
                t->n++;
                break;
            }
            followed[nfollowed++] = target;
            pc = target;
        } else {
            pc += i.len;
        }
        t->n++;
    }
    for (unsigned k = 0; k < t->nstubs && !b.full; k++) emit_stub(t, &t->stubs[k]);
    if (b.full || t->too_many_stubs) {
        j->data = data_before;
        return NULL;
    }

    uint8_t *hdr = j->data - sizeof(struct jit_block);
    hdr -= (uintptr_t)hdr % alignof(struct jit_block);
    struct jit_block *blk = (struct jit_block *)(void *)hdr;
    j->data = hdr;
    *blk = (struct jit_block){.vpc = vpc, .cp = cp, .gen = t->gen, .mode = (uint8_t)t->mode,
                              .ninsns = (uint16_t)t->n, .entry = entry};
    j->code = b.p;
    j->stats.blocks++;
    j->stats.insns += t->n;
    return blk;
}
