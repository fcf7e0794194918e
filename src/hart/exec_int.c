/* Handlers for RV64I, M, A, Zicsr, Zifencei and the privileged
 * instructions. Each either completes the instruction and advances pc, or
 * raises an exception and leaves pc on the instruction. */
#include "hart/code_cache.h"
#include "hart/csr.h"
#include "hart/dispatch.h"
#include "hart/exec.h"
#include "hart/mem.h"

#define X(r) (h->x[r])
#define NEXT() NEXT_INSN(h, i)

/* ---- RV64I ---- */

void op_lui(struct hart *h, const struct insn *i) { X(i->rd) = (uint64_t)(int64_t)i->imm; NEXT(); }
void op_auipc(struct hart *h, const struct insn *i) { X(i->rd) = h->pc + (uint64_t)(int64_t)i->imm; NEXT(); }

void op_jal(struct hart *h, const struct insn *i) {
    X(i->rd) = h->pc + i->len;
    JUMP_TO(h, i, h->pc + (uint64_t)(int64_t)i->imm);
}

void op_jalr(struct hart *h, const struct insn *i) {
    uint64_t target = (X(i->rs1) + (uint64_t)(int64_t)i->imm) & ~1ull;
    X(i->rd) = h->pc + i->len;
    JUMP_TO(h, i, target);
}

#define BRANCH(name, cond)                                                    \
    void op_##name(struct hart *h, const struct insn *i) {                    \
        uint64_t a = X(i->rs1), b = X(i->rs2);                                \
        if (cond) JUMP_TO(h, i, h->pc + (uint64_t)(int64_t)i->imm);           \
        NEXT();                                                               \
    }
BRANCH(beq, a == b)
BRANCH(bne, a != b)
BRANCH(blt, (int64_t)a < (int64_t)b)
BRANCH(bge, (int64_t)a >= (int64_t)b)
BRANCH(bltu, a < b)
BRANCH(bgeu, a >= b)

/* Loads and stores: the software-TLB hit is inline; a miss goes to an out
 * of line function that finishes the instruction, so the handlers need no
 * stack frame. */
static __attribute__((noinline)) void load_miss(struct hart *h, const struct insn *i, uint64_t va, unsigned size,
                                                bool sign) {
    if (!mem_load_slow(h, va, size)) return;
    uint64_t v = h->load_val;
    if (sign && size < 8) v = (uint64_t)((int64_t)(v << (64 - 8 * size)) >> (64 - 8 * size));
    X(i->rd) = v;
    NEXT();
}

static __attribute__((noinline)) void store_miss(struct hart *h, const struct insn *i, uint64_t va, unsigned size,
                                                 uint64_t val) {
    if (!mem_store_slow(h, va, size, val)) return;
    NEXT();
}

#define LOAD(name, type, ext, sign)                                                 \
    void op_##name(struct hart *h, const struct insn *i) {                     \
        uint64_t va = X(i->rs1) + (uint64_t)(int64_t)i->imm;                   \
        const struct tlb_entry *e = &h->dtlb->read[tlb_index(va)];             \
        h->stats.mem_ops++;                                                    \
        if (__builtin_expect(e->tag != tlb_key(va, sizeof(type)), 0)) {         \
            load_miss(h, i, va, sizeof(type), sign);                   \
            return;                                                            \
        }                                                                      \
        type v;                                                                \
        memcpy(&v, (const void *)(uintptr_t)(va + e->addend), sizeof v);       \
        X(i->rd) = (uint64_t)(ext)v;                                           \
        NEXT();                                                                \
    }
LOAD(lb, int8_t, int64_t, true)
LOAD(lh, int16_t, int64_t, true)
LOAD(lw, int32_t, int64_t, true)
LOAD(ld, uint64_t, uint64_t, false)
LOAD(lbu, uint8_t, uint64_t, false)
LOAD(lhu, uint16_t, uint64_t, false)
LOAD(lwu, uint32_t, uint64_t, false)

#define STORE(name, type)                                                      \
    void op_##name(struct hart *h, const struct insn *i) {                     \
        uint64_t va = X(i->rs1) + (uint64_t)(int64_t)i->imm;                   \
        type v = (type)X(i->rs2);                                              \
        const struct tlb_entry *e = &h->dtlb->write[tlb_index(va)];            \
        h->stats.mem_ops++;                                                    \
        if (__builtin_expect(e->tag != tlb_key(va, sizeof(type)), 0)) {         \
            store_miss(h, i, va, sizeof(type), v);                             \
            return;                                                            \
        }                                                                      \
        memcpy((void *)(uintptr_t)(va + e->addend), &v, sizeof v);             \
        NEXT();                                                                \
    }
STORE(sb, uint8_t)
STORE(sh, uint16_t)
STORE(sw, uint32_t)
STORE(sd, uint64_t)

#define ALU_IMM(name, expr)                                                   \
    void op_##name(struct hart *h, const struct insn *i) {                    \
        uint64_t a = X(i->rs1), b = (uint64_t)(int64_t)i->imm;                \
        X(i->rd) = (expr);                                                    \
        NEXT();                                                               \
    }
#define ALU_REG(name, expr)                                                   \
    void op_##name(struct hart *h, const struct insn *i) {                    \
        uint64_t a = X(i->rs1), b = X(i->rs2);                                \
        X(i->rd) = (expr);                                                    \
        NEXT();                                                               \
    }
#define SEXT32(v) ((uint64_t)(int64_t)(int32_t)(uint32_t)(v))

ALU_IMM(addi, a + b)
ALU_IMM(slti, (int64_t)a < (int64_t)b)
ALU_IMM(sltiu, a < b)
ALU_IMM(xori, a ^ b)
ALU_IMM(ori, a | b)
ALU_IMM(andi, a & b)
ALU_IMM(slli, a << (b & 63))
ALU_IMM(srli, a >> (b & 63))
ALU_IMM(srai, (uint64_t)((int64_t)a >> (b & 63)))
ALU_REG(add, a + b)
ALU_REG(sub, a - b)
ALU_REG(sll, a << (b & 63))
ALU_REG(slt, (int64_t)a < (int64_t)b)
ALU_REG(sltu, a < b)
ALU_REG(xor, a ^ b)
ALU_REG(srl, a >> (b & 63))
ALU_REG(sra, (uint64_t)((int64_t)a >> (b & 63)))
ALU_REG(or, a | b)
ALU_REG(and, a & b)
ALU_IMM(addiw, SEXT32(a + b))
ALU_IMM(slliw, SEXT32((uint32_t)a << (b & 31)))
ALU_IMM(srliw, SEXT32((uint32_t)a >> (b & 31)))
ALU_IMM(sraiw, SEXT32((int32_t)a >> (b & 31)))
ALU_REG(addw, SEXT32(a + b))
ALU_REG(subw, SEXT32(a - b))
ALU_REG(sllw, SEXT32((uint32_t)a << (b & 31)))
ALU_REG(srlw, SEXT32((uint32_t)a >> (b & 31)))
ALU_REG(sraw, SEXT32((int32_t)a >> (b & 31)))

/* ---- M ---- */

static uint64_t div_s(uint64_t a, uint64_t b) {
    if (b == 0) return ~0ull;
    if ((int64_t)a == INT64_MIN && (int64_t)b == -1) return a;
    return (uint64_t)((int64_t)a / (int64_t)b);
}
static uint64_t rem_s(uint64_t a, uint64_t b) {
    if (b == 0) return a;
    if ((int64_t)a == INT64_MIN && (int64_t)b == -1) return 0;
    return (uint64_t)((int64_t)a % (int64_t)b);
}
static uint64_t div_w(uint64_t a, uint64_t b) {
    int32_t x = (int32_t)a, y = (int32_t)b;
    if (y == 0) return ~0ull;
    if (x == INT32_MIN && y == -1) return SEXT32(x);
    return SEXT32(x / y);
}
static uint64_t rem_w(uint64_t a, uint64_t b) {
    int32_t x = (int32_t)a, y = (int32_t)b;
    if (y == 0) return SEXT32(x);
    if (x == INT32_MIN && y == -1) return 0;
    return SEXT32(x % y);
}

ALU_REG(mul, a * b)
ALU_REG(mulh, (uint64_t)(((__int128)(int64_t)a * (__int128)(int64_t)b) >> 64))
ALU_REG(mulhsu, (uint64_t)(((__int128)(int64_t)a * (__int128)(unsigned __int128)b) >> 64))
ALU_REG(mulhu, (uint64_t)(((unsigned __int128)a * b) >> 64))
ALU_REG(div, div_s(a, b))
ALU_REG(divu, b ? a / b : ~0ull)
ALU_REG(rem, rem_s(a, b))
ALU_REG(remu, b ? a % b : a)
ALU_REG(mulw, SEXT32((uint32_t)a * (uint32_t)b))
ALU_REG(divw, div_w(a, b))
ALU_REG(divuw, (uint32_t)b ? SEXT32((uint32_t)a / (uint32_t)b) : ~0ull)
ALU_REG(remw, rem_w(a, b))
ALU_REG(remuw, (uint32_t)b ? SEXT32((uint32_t)a % (uint32_t)b) : SEXT32(a))

/* ---- A ----
 * LR remembers the address and the value it read; SC succeeds if the word
 * still holds that value, with a host compare-and-swap. That is what makes
 * LR/SC correct when harts of one VM run on several host threads. */

void op_lr_w(struct hart *h, const struct insn *i) {
    uint64_t va = X(i->rs1);
    uint8_t *p = mem_atomic_ptr(h, va, 4, false);
    if (!p) return;
    int32_t v = __atomic_load_n((int32_t *)p, __ATOMIC_SEQ_CST);
    h->reservation = (uintptr_t)p;
    h->reservation_value = (uint32_t)v;
    X(i->rd) = (uint64_t)(int64_t)v;
    NEXT();
}

void op_lr_d(struct hart *h, const struct insn *i) {
    uint64_t va = X(i->rs1);
    uint8_t *p = mem_atomic_ptr(h, va, 8, false);
    if (!p) return;
    uint64_t v = __atomic_load_n((uint64_t *)p, __ATOMIC_SEQ_CST);
    h->reservation = (uintptr_t)p;
    h->reservation_value = v;
    X(i->rd) = v;
    NEXT();
}

void op_sc_w(struct hart *h, const struct insn *i) {
    uint8_t *p = mem_atomic_ptr(h, X(i->rs1), 4, true);
    if (!p) return;
    uint32_t expected = (uint32_t)h->reservation_value;
    bool ok = h->reservation == (uintptr_t)p &&
              __atomic_compare_exchange_n((uint32_t *)p, &expected, (uint32_t)X(i->rs2), false, __ATOMIC_SEQ_CST,
                                          __ATOMIC_SEQ_CST);
    h->reservation = ~0ull;
    mem_atomic_done(h);
    X(i->rd) = !ok;
    NEXT();
}

void op_sc_d(struct hart *h, const struct insn *i) {
    uint8_t *p = mem_atomic_ptr(h, X(i->rs1), 8, true);
    if (!p) return;
    uint64_t expected = h->reservation_value;
    bool ok = h->reservation == (uintptr_t)p &&
              __atomic_compare_exchange_n((uint64_t *)p, &expected, X(i->rs2), false, __ATOMIC_SEQ_CST,
                                          __ATOMIC_SEQ_CST);
    h->reservation = ~0ull;
    mem_atomic_done(h);
    X(i->rd) = !ok;
    NEXT();
}

#define AMO_FETCH(name, type, size, builtin)                                                   \
    void op_##name(struct hart *h, const struct insn *i) {                                     \
        type *p = (type *)mem_atomic_ptr(h, X(i->rs1), size, true);                            \
        if (!p) return;                                                                        \
        type old = builtin(p, (type)X(i->rs2), __ATOMIC_SEQ_CST);                              \
        mem_atomic_done(h);                                                                    \
        X(i->rd) = (uint64_t)(int64_t)old;                                                     \
        NEXT();                                                                                \
    }
AMO_FETCH(amoswap_w, int32_t, 4, __atomic_exchange_n)
AMO_FETCH(amoadd_w, int32_t, 4, __atomic_fetch_add)
AMO_FETCH(amoxor_w, int32_t, 4, __atomic_fetch_xor)
AMO_FETCH(amoand_w, int32_t, 4, __atomic_fetch_and)
AMO_FETCH(amoor_w, int32_t, 4, __atomic_fetch_or)
AMO_FETCH(amoswap_d, int64_t, 8, __atomic_exchange_n)
AMO_FETCH(amoadd_d, int64_t, 8, __atomic_fetch_add)
AMO_FETCH(amoxor_d, int64_t, 8, __atomic_fetch_xor)
AMO_FETCH(amoand_d, int64_t, 8, __atomic_fetch_and)
AMO_FETCH(amoor_d, int64_t, 8, __atomic_fetch_or)

#define AMO_MINMAX(name, type, size, pick)                                                            \
    void op_##name(struct hart *h, const struct insn *i) {                                            \
        type *p = (type *)mem_atomic_ptr(h, X(i->rs1), size, true);                                   \
        if (!p) return;                                                                               \
        type b = (type)X(i->rs2);                                                                     \
        type a = __atomic_load_n(p, __ATOMIC_SEQ_CST);                                                \
        while (!__atomic_compare_exchange_n(p, &a, (pick) ? a : b, false, __ATOMIC_SEQ_CST,           \
                                            __ATOMIC_SEQ_CST)) {                                      \
        }                                                                                             \
        mem_atomic_done(h);                                                                           \
        X(i->rd) = sizeof(type) == 4 ? SEXT32(a) : (uint64_t)a;                                       \
        NEXT();                                                                                       \
    }
AMO_MINMAX(amomin_w, int32_t, 4, a < b)
AMO_MINMAX(amomax_w, int32_t, 4, a > b)
AMO_MINMAX(amominu_w, uint32_t, 4, a < b)
AMO_MINMAX(amomaxu_w, uint32_t, 4, a > b)
AMO_MINMAX(amomin_d, int64_t, 8, a < b)
AMO_MINMAX(amomax_d, int64_t, 8, a > b)
AMO_MINMAX(amominu_d, uint64_t, 8, a < b)
AMO_MINMAX(amomaxu_d, uint64_t, 8, a > b)

/* ---- fences, system ---- */

void op_fence(struct hart *h, const struct insn *i) {
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    NEXT();
}

/* The decode cache is kept coherent with every store, so fence.i has nothing to do. */
void op_fence_i(struct hart *h, const struct insn *i) { NEXT(); }

/* The slot after the last one of a code page: control ran off the page.
 * It executes nothing, so it gives back the budget its dispatch took. */
void op_page_end(struct hart *h, const struct insn *i) {
    (void)i;
    h->budget++;
    const struct insn *next = dispatch_other_page(h);
    if (next) DISPATCH(h, next);
}

void op_ecall(struct hart *h, const struct insn *i) {
    (void)i;
    if (h->priv == PRIV_S && h->sbi_in_monitor) {
        h->stats.sbi_calls++;
        h->env->sbi_call(h->owner, h);
        return; /* the SBI advances pc (or the hart stops) */
    }
    hart_raise(h, h->priv == PRIV_U ? EXC_ECALL_U : h->priv == PRIV_S ? EXC_ECALL_S : EXC_ECALL_M, 0);
}

void op_ebreak(struct hart *h, const struct insn *i) {
    (void)i;
    hart_raise(h, EXC_BREAKPOINT, h->pc);
}

void op_illegal(struct hart *h, const struct insn *i) { hart_raise(h, EXC_ILLEGAL_INSN, (uint32_t)i->imm); }

static void set_priv(struct hart *h, int priv) {
    h->priv = priv;
    h->reservation = ~0ull;
    hart_update_tlb_sets(h);
    hart_break(h);
}

void op_mret(struct hart *h, const struct insn *i) {
    if (h->priv < PRIV_M) {
        op_illegal(h, i);
        return;
    }
    uint64_t s = h->mstatus;
    int prev = (int)((s & MSTATUS_MPP) >> 11);
    s = (s & ~MSTATUS_MIE) | ((s & MSTATUS_MPIE) ? MSTATUS_MIE : 0);
    s |= MSTATUS_MPIE;
    s &= ~MSTATUS_MPP; /* MPP becomes U */
    if (prev != PRIV_M) s &= ~MSTATUS_MPRV;
    h->mstatus = s;
    h->pc = h->mepc;
    set_priv(h, prev);
}

void op_sret(struct hart *h, const struct insn *i) {
    if (h->priv < PRIV_S || (h->priv == PRIV_S && (h->mstatus & MSTATUS_TSR))) {
        op_illegal(h, i);
        return;
    }
    uint64_t s = h->mstatus;
    int prev = (s & MSTATUS_SPP) ? PRIV_S : PRIV_U;
    s = (s & ~MSTATUS_SIE) | ((s & MSTATUS_SPIE) ? MSTATUS_SIE : 0);
    s |= MSTATUS_SPIE;
    s &= ~(MSTATUS_SPP | MSTATUS_MPRV);
    h->mstatus = s;
    h->pc = h->sepc;
    set_priv(h, prev);
}

void op_wfi(struct hart *h, const struct insn *i) {
    if ((h->priv == PRIV_S && (h->mstatus & MSTATUS_TW)) || h->priv == PRIV_U) {
        op_illegal(h, i);
        return;
    }
    h->pc += i->len;
    /* Back to hart_run, which sleeps the hart unless an interrupt is pending. */
    h->wfi = !hart_pending_irqs(h);
    h->stats.wfi += h->wfi;
}

void op_sfence_vma(struct hart *h, const struct insn *i) {
    if (h->priv == PRIV_U || (h->priv == PRIV_S && (h->mstatus & MSTATUS_TVM))) {
        op_illegal(h, i);
        return;
    }
    /* With an address only that page's translations go (the ASID is not
     * kept, so every address space's). */
    if (i->rs1 != 0) {
        for (int p = 0; p < 4; p++) tlb_set_flush_page(&h->tlb[p], h->x[i->rs1]);
    } else {
        hart_flush_tlb(h);
    }
    h->pc += i->len; /* translations changed: back to hart_run to refetch */
}

/* ---- Zicsr ---- */

/* Kept out of line so the handlers below have no address-taken locals
 * (which would stop their dispatch from being a jump). */
static __attribute__((noinline)) bool csr_op(struct hart *h, const struct insn *i, uint64_t operand, int kind,
                                             bool writes) {
    unsigned csr = (unsigned)i->imm;
    uint64_t old = 0;
    bool reads = kind != 0 || i->rd != 32; /* csrrw to x0 does not read */
    if (reads && !csr_read(h, csr, &old)) {
        hart_raise(h, EXC_ILLEGAL_INSN, 0);
        return false;
    }
    if (writes && !csr_write(h, csr, kind == 0 ? operand : kind == 1 ? old | operand : old & ~operand)) {
        hart_raise(h, EXC_ILLEGAL_INSN, 0);
        return false;
    }
    X(i->rd) = old;
    h->pc += i->len;
    return true;
}

/* A CSR write can change translation, privilege or interrupt state, so it
 * returns to hart_run; a plain read goes on. */
#define CSR_HANDLER(name, operand, kind, writes)                                \
    void op_##name(struct hart *h, const struct insn *i) {                      \
        bool w = (writes);                                                      \
        if (csr_op(h, i, (operand), (kind), w) && !w) DISPATCH(h, i + (i->len >> 1)); \
    }

/* imm holds the CSR number, so an illegal CSR access reports mtval 0 (allowed by the spec). */
CSR_HANDLER(csrrw, X(i->rs1), 0, true)
CSR_HANDLER(csrrs, X(i->rs1), 1, i->rs1 != 0)
CSR_HANDLER(csrrc, X(i->rs1), 2, i->rs1 != 0)
CSR_HANDLER(csrrwi, i->rs1, 0, true)
CSR_HANDLER(csrrsi, i->rs1, 1, i->rs1 != 0)
CSR_HANDLER(csrrci, i->rs1, 2, i->rs1 != 0)

/* A 32-bit instruction whose second half is on the next page: fetched and
 * decoded on every execution, since the next page may map anywhere. */
void op_cross_page(struct hart *h, const struct insn *i) {
    (void)i;
    uint16_t lo, hi;
    if (!mem_fetch_parcel(h, h->pc, &lo) || !mem_fetch_parcel(h, h->pc + 2, &hi)) return;
    struct insn once;
    decode((uint32_t)lo | ((uint32_t)hi << 16), &once);
    /* Run it alone: with no budget its handler cannot dispatch past the
     * local copy. The dispatch that got here already counted it. */
    int64_t budget = h->budget;
    h->budget = 0;
    h->slice -= budget; /* hart_instret (slice - budget - stolen) stays right meanwhile */
    once.fn(h, &once);
#ifdef RVISOR_LOOP_DISPATCH
    h->next_insn = NULL;
#endif
    h->slice += budget;
    h->budget = budget;
}
