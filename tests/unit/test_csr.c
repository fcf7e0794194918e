/* Unit tests of the CSR file (src/hart/csr.c) and of trap delivery
 * (src/hart/trap.c) on a bare hart from hart_init. Expected values follow
 * the RISC-V privileged specification (machine-level and supervisor-level
 * ISA chapters: CSR privilege and read-only encoding in the CSR address
 * space, mstatus/sstatus, mideleg/medeleg, mip/mie and sip/sie, satp,
 * counter enables, trap entry and interrupt priority). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hart/csr.h"
#include "hart/hart.h"
#include "hart/mem.h"
#include "mmu/phys.h"

#define INTR (1ull << 63)
#define MISA_EXT(c) (1ull << ((c) - 'A'))
#define UXL_SXL_64 ((2ull << 32) | (2ull << 34))
#define ALL_IRQS (MIP_SSIP | MIP_MSIP | MIP_STIP | MIP_MTIP | MIP_SEIP | MIP_MEIP)
#define S_IRQS (MIP_SSIP | MIP_STIP | MIP_SEIP)

/* ------------------------------------------------------------------ */
/* Harness: a hart with a zeroed phys_ops and an env that records calls */

struct owner {
    uint64_t time;
    int fatal_calls;
    const char *fatal_why;
};

static uint64_t env_time(void *owner) { return ((struct owner *)owner)->time; }
static void env_fatal(void *owner, struct hart *h, const char *why) {
    (void)h;
    struct owner *o = owner;
    o->fatal_calls++;
    o->fatal_why = why;
}
static void env_sbi(void *owner, struct hart *h) { (void)owner; (void)h; }

static const struct phys_ops no_phys;
static const struct hart_env env = {.sbi_call = env_sbi, .time = env_time, .fatal = env_fatal};

struct fixture {
    struct hart h;
    struct owner o;
};

static int setup(void **state) {
    struct fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    hart_init(&f->h, 3, &no_phys, &env, &f->o);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    free(*state);
    return 0;
}

static struct hart *H(void **state) { return &((struct fixture *)*state)->h; }
static struct owner *O(void **state) { return &((struct fixture *)*state)->o; }

static void set_priv(struct hart *h, int p) {
    h->priv = p;
    hart_update_tlb_sets(h);
}

static uint64_t rd(struct hart *h, unsigned csr) {
    uint64_t v = 0xdeadbeefdeadbeefull;
    if (!csr_read(h, csr, &v)) fail_msg("csr_read(%#x) at priv %d failed", csr, h->priv);
    return v;
}

static void wr(struct hart *h, unsigned csr, uint64_t v) {
    if (!csr_write(h, csr, v)) fail_msg("csr_write(%#x) at priv %d failed", csr, h->priv);
}

/* Writes a CSR from M-mode, then returns to the current privilege. */
static void mwr(struct hart *h, unsigned csr, uint64_t v) {
    int p = h->priv;
    set_priv(h, PRIV_M);
    wr(h, csr, v);
    set_priv(h, p);
}
static void set_mstatus(struct hart *h, uint64_t v) { mwr(h, CSR_MSTATUS, v); }

/* ------------------------------------------------------------------ */
/* CSR access rules */

static void test_initial_state(void **state) {
    struct hart *h = H(state);
    assert_int_equal(h->priv, PRIV_M);
    assert_int_equal(rd(h, CSR_MHARTID), 3);
    uint64_t misa = MISA_EXT('I') | MISA_EXT('M') | MISA_EXT('A') | MISA_EXT('F') | MISA_EXT('D') | MISA_EXT('C') |
                    MISA_EXT('S') | MISA_EXT('U') | (2ull << 62);
    assert_int_equal(rd(h, CSR_MISA), misa);
    /* misa is WARL with a fixed extension set: writes are ignored. */
    wr(h, CSR_MISA, 0);
    assert_int_equal(rd(h, CSR_MISA), misa);
    wr(h, CSR_MISA, misa & ~MISA_EXT('C'));
    assert_int_equal(rd(h, CSR_MISA), misa);
    /* UXL = SXL = 2 (64-bit), read-only. */
    assert_int_equal(rd(h, CSR_MSTATUS) & ((3ull << 32) | (3ull << 34)), UXL_SXL_64);
    wr(h, CSR_MSTATUS, 0);
    assert_int_equal(rd(h, CSR_MSTATUS), UXL_SXL_64);
    assert_int_equal(rd(h, CSR_MVENDORID), 0);
}

static void test_s_mode_cannot_touch_m_csrs(void **state) {
    struct hart *h = H(state);
    wr(h, CSR_MSCRATCH, 0x1234);
    set_priv(h, PRIV_S);
    static const unsigned m_csrs[] = {CSR_MSTATUS, CSR_MISA, CSR_MEDELEG, CSR_MIDELEG, CSR_MIE, CSR_MTVEC,
                                      CSR_MCOUNTEREN, CSR_MSCRATCH, CSR_MEPC, CSR_MCAUSE, CSR_MTVAL, CSR_MIP,
                                      CSR_MCYCLE, CSR_MINSTRET, CSR_MHARTID, CSR_PMPCFG0, CSR_PMPADDR0,
                                      CSR_MENVCFG, CSR_TSELECT};
    for (size_t k = 0; k < sizeof m_csrs / sizeof m_csrs[0]; k++) {
        uint64_t v = 77;
        if (csr_read(h, m_csrs[k], &v)) fail_msg("S-mode read of M CSR %#x succeeded", m_csrs[k]);
        if (csr_write(h, m_csrs[k], 0)) fail_msg("S-mode write of M CSR %#x succeeded", m_csrs[k]);
    }
    assert_int_equal(h->mscratch, 0x1234);
    assert_int_equal(h->priv, PRIV_S);
    /* S CSRs are fine from S-mode. */
    wr(h, CSR_SSCRATCH, 0x5678);
    assert_int_equal(rd(h, CSR_SSCRATCH), 0x5678);
    (void)rd(h, CSR_SSTATUS);
    (void)rd(h, CSR_SATP);
    (void)rd(h, CSR_STVEC);
}

static void test_u_mode_cannot_touch_s_csrs(void **state) {
    struct hart *h = H(state);
    wr(h, CSR_SSCRATCH, 0xabc);
    set_priv(h, PRIV_U);
    static const unsigned s_csrs[] = {CSR_SSTATUS, CSR_SIE, CSR_STVEC, CSR_SCOUNTEREN, CSR_SSCRATCH, CSR_SEPC,
                                      CSR_SCAUSE, CSR_STVAL, CSR_SIP, CSR_SATP, CSR_SENVCFG, CSR_MSTATUS};
    for (size_t k = 0; k < sizeof s_csrs / sizeof s_csrs[0]; k++) {
        uint64_t v;
        if (csr_read(h, s_csrs[k], &v)) fail_msg("U-mode read of %#x succeeded", s_csrs[k]);
        if (csr_write(h, s_csrs[k], 0)) fail_msg("U-mode write of %#x succeeded", s_csrs[k]);
    }
    assert_int_equal(h->sscratch, 0xabc);
}

static void test_read_only_csrs_reject_writes(void **state) {
    struct hart *h = H(state);
    /* csr[11:10] == 3 is read-only, even for M-mode. */
    static const unsigned ro[] = {CSR_CYCLE, CSR_TIME, CSR_INSTRET, 0xc03, CSR_MVENDORID, CSR_MARCHID,
                                  CSR_MIMPID, CSR_MHARTID, CSR_MCONFIGPTR};
    for (size_t k = 0; k < sizeof ro / sizeof ro[0]; k++)
        if (csr_write(h, ro[k], 1)) fail_msg("write of read-only CSR %#x succeeded", ro[k]);
    assert_int_equal(rd(h, CSR_MHARTID), 3);
    /* Nonexistent CSRs are illegal. */
    uint64_t v;
    assert_false(csr_read(h, 0x7ff, &v));
    assert_false(csr_read(h, 0x5c0, &v));
    assert_false(csr_write(h, 0x5c0, 0));
    /* pmpcfg1 does not exist on RV64. */
    assert_false(csr_read(h, CSR_PMPCFG0 + 1, &v));
}

static void test_sstatus_is_view_of_mstatus(void **state) {
    struct hart *h = H(state);
    uint64_t m = MSTATUS_SIE | MSTATUS_MIE | MSTATUS_SPIE | MSTATUS_MPIE | MSTATUS_SPP | (3ull << 11) |
                 (1ull << MSTATUS_FS_SHIFT) | MSTATUS_MPRV | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_TVM | MSTATUS_TW |
                 MSTATUS_TSR;
    wr(h, CSR_MSTATUS, m);
    assert_int_equal(rd(h, CSR_MSTATUS), m | UXL_SXL_64);
    uint64_t s = MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | (1ull << MSTATUS_FS_SHIFT) | MSTATUS_SUM | MSTATUS_MXR |
                 (2ull << 32);
    assert_int_equal(rd(h, CSR_SSTATUS), s);

    /* Writing sstatus changes only the S fields. */
    set_priv(h, PRIV_S);
    wr(h, CSR_SSTATUS, 0);
    set_priv(h, PRIV_M);
    assert_int_equal(rd(h, CSR_MSTATUS), MSTATUS_MIE | MSTATUS_MPIE | (3ull << 11) | MSTATUS_MPRV | MSTATUS_TVM |
                                             MSTATUS_TW | MSTATUS_TSR | UXL_SXL_64);
    wr(h, CSR_MSTATUS, 0);
    set_priv(h, PRIV_S);
    wr(h, CSR_SSTATUS, ~0ull);
    set_priv(h, PRIV_M);
    assert_int_equal(rd(h, CSR_MSTATUS), MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_FS | MSTATUS_SUM |
                                             MSTATUS_MXR | MSTATUS_SD | UXL_SXL_64);
    assert_int_equal(rd(h, CSR_SSTATUS), MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_FS | MSTATUS_SUM |
                                             MSTATUS_MXR | MSTATUS_SD | (2ull << 32));
}

static void test_sie_sip_masked_by_mideleg(void **state) {
    struct hart *h = H(state);
    /* Only the S-level interrupts can be delegated. */
    wr(h, CSR_MIDELEG, ~0ull);
    assert_int_equal(rd(h, CSR_MIDELEG), S_IRQS);
    /* Only implemented interrupt bits exist in mie. */
    wr(h, CSR_MIE, ~0ull);
    assert_int_equal(rd(h, CSR_MIE), ALL_IRQS);
    assert_int_equal(rd(h, CSR_SIE), S_IRQS);

    wr(h, CSR_MIDELEG, MIP_STIP);
    assert_int_equal(rd(h, CSR_SIE), MIP_STIP);
    wr(h, CSR_MIE, MIP_MEIP | MIP_MTIP | MIP_MSIP);
    set_priv(h, PRIV_S);
    wr(h, CSR_SIE, ~0ull);
    set_priv(h, PRIV_M);
    assert_int_equal(rd(h, CSR_MIE), MIP_MEIP | MIP_MTIP | MIP_MSIP | MIP_STIP);
    wr(h, CSR_MIE, ALL_IRQS);
    set_priv(h, PRIV_S);
    wr(h, CSR_SIE, 0);
    set_priv(h, PRIV_M);
    assert_int_equal(rd(h, CSR_MIE), ALL_IRQS & ~MIP_STIP);

    /* sip shows only delegated pending bits. */
    hart_set_mip(h, MIP_SSIP | MIP_MTIP | MIP_SEIP, true);
    wr(h, CSR_MIDELEG, MIP_SSIP | MIP_SEIP);
    set_priv(h, PRIV_S);
    assert_int_equal(rd(h, CSR_SIP), MIP_SSIP | MIP_SEIP);
    /* S-mode may clear SSIP through sip, nothing else. */
    wr(h, CSR_SIP, 0);
    assert_int_equal(h->mip, MIP_MTIP | MIP_SEIP);
    wr(h, CSR_SIP, MIP_SSIP);
    assert_int_equal(h->mip, MIP_MTIP | MIP_SEIP | MIP_SSIP);
    /* Not delegated: writes through sip do nothing. */
    set_priv(h, PRIV_M);
    wr(h, CSR_MIDELEG, MIP_SEIP);
    set_priv(h, PRIV_S);
    wr(h, CSR_SIP, 0);
    assert_int_equal(h->mip, MIP_MTIP | MIP_SEIP | MIP_SSIP);
    assert_int_equal(rd(h, CSR_SIP), MIP_SEIP);
}

static void test_mip_writes(void **state) {
    struct hart *h = H(state);
    hart_set_mip(h, MIP_MTIP | MIP_MEIP, true);
    /* M-mode software writes SSIP, STIP, SEIP; the M bits follow their devices. */
    wr(h, CSR_MIP, ~0ull);
    assert_int_equal(rd(h, CSR_MIP), MIP_MTIP | MIP_MEIP | S_IRQS);
    wr(h, CSR_MIP, 0);
    assert_int_equal(rd(h, CSR_MIP), MIP_MTIP | MIP_MEIP);
    wr(h, CSR_MIP, MIP_STIP);
    assert_int_equal(rd(h, CSR_MIP), MIP_MTIP | MIP_MEIP | MIP_STIP);
}

static void test_mpp_warl(void **state) {
    struct hart *h = H(state);
    wr(h, CSR_MSTATUS, 1ull << 11); /* S */
    assert_int_equal((rd(h, CSR_MSTATUS) >> 11) & 3, 1);
    wr(h, CSR_MSTATUS, 2ull << 11); /* reserved (H): keeps the old value */
    assert_int_equal((rd(h, CSR_MSTATUS) >> 11) & 3, 1);
    wr(h, CSR_MSTATUS, 3ull << 11);
    assert_int_equal((rd(h, CSR_MSTATUS) >> 11) & 3, 3);
    wr(h, CSR_MSTATUS, (2ull << 11) | MSTATUS_MIE); /* other fields of the same write still land */
    assert_int_equal((rd(h, CSR_MSTATUS) >> 11) & 3, 3);
    assert_true(rd(h, CSR_MSTATUS) & MSTATUS_MIE);
    wr(h, CSR_MSTATUS, 0);
    assert_int_equal((rd(h, CSR_MSTATUS) >> 11) & 3, 0);
    wr(h, CSR_MSTATUS, 2ull << 11);
    assert_int_equal((rd(h, CSR_MSTATUS) >> 11) & 3, 0);
}

static void test_sd_follows_fs(void **state) {
    struct hart *h = H(state);
    wr(h, CSR_MSTATUS, MSTATUS_FS); /* dirty */
    assert_true(rd(h, CSR_MSTATUS) & MSTATUS_SD);
    set_priv(h, PRIV_S);
    assert_true(rd(h, CSR_SSTATUS) & MSTATUS_SD);
    set_priv(h, PRIV_M);
    wr(h, CSR_MSTATUS, 1ull << MSTATUS_FS_SHIFT); /* initial */
    assert_false(rd(h, CSR_MSTATUS) & MSTATUS_SD);
    wr(h, CSR_MSTATUS, 2ull << MSTATUS_FS_SHIFT); /* clean */
    assert_false(rd(h, CSR_MSTATUS) & MSTATUS_SD);
    /* SD is read-only: writing it alone does nothing. */
    wr(h, CSR_MSTATUS, MSTATUS_SD);
    assert_false(rd(h, CSR_MSTATUS) & MSTATUS_SD);
    assert_int_equal(rd(h, CSR_MSTATUS) & MSTATUS_FS, 0);
    /* An fflags write makes the FP state dirty. */
    wr(h, CSR_MSTATUS, 1ull << MSTATUS_FS_SHIFT);
    wr(h, CSR_FFLAGS, 1);
    assert_int_equal(rd(h, CSR_MSTATUS) & MSTATUS_FS, MSTATUS_FS);
    assert_true(rd(h, CSR_MSTATUS) & MSTATUS_SD);
}

static void test_fp_csrs(void **state) {
    struct hart *h = H(state);
    uint64_t v;
    wr(h, CSR_MSTATUS, 0); /* FS = Off */
    for (int p = 0; p < 4; p++) {
        if (p == 2) continue;
        set_priv(h, p);
        assert_false(csr_read(h, CSR_FFLAGS, &v));
        assert_false(csr_read(h, CSR_FRM, &v));
        assert_false(csr_read(h, CSR_FCSR, &v));
        assert_false(csr_write(h, CSR_FFLAGS, 0));
        assert_false(csr_write(h, CSR_FRM, 0));
        assert_false(csr_write(h, CSR_FCSR, 0));
    }
    set_priv(h, PRIV_M);
    wr(h, CSR_MSTATUS, 1ull << MSTATUS_FS_SHIFT);
    set_priv(h, PRIV_U); /* user-level CSRs */
    wr(h, CSR_FCSR, ~0ull);
    assert_int_equal(rd(h, CSR_FCSR), 0xff);
    assert_int_equal(rd(h, CSR_FFLAGS), 0x1f);
    assert_int_equal(rd(h, CSR_FRM), 7);
    wr(h, CSR_FRM, 2);
    assert_int_equal(rd(h, CSR_FCSR), (2 << 5) | 0x1f);
    wr(h, CSR_FFLAGS, 0x21); /* only 5 bits */
    assert_int_equal(rd(h, CSR_FCSR), (2 << 5) | 0x01);
    assert_int_equal(h->frm, 2);
    assert_int_equal(h->fflags, 1);
}

static void test_satp_modes(void **state) {
    struct hart *h = H(state);
    set_priv(h, PRIV_S);
    uint64_t sv39 = (8ull << 60) | (0x1234ull << 44) | 0x80123;
    wr(h, CSR_SATP, sv39);
    assert_int_equal(rd(h, CSR_SATP), sv39);
    uint64_t sv48 = (9ull << 60) | 0x80456;
    wr(h, CSR_SATP, sv48);
    assert_int_equal(rd(h, CSR_SATP), sv48);
    /* Unsupported modes (Sv57 = 10, Sv64 = 11, reserved 1) leave satp alone. */
    wr(h, CSR_SATP, (10ull << 60) | 0x80999);
    assert_int_equal(rd(h, CSR_SATP), sv48);
    wr(h, CSR_SATP, (11ull << 60) | 0x80999);
    assert_int_equal(rd(h, CSR_SATP), sv48);
    wr(h, CSR_SATP, (1ull << 60) | 0x80999);
    assert_int_equal(rd(h, CSR_SATP), sv48);
    wr(h, CSR_SATP, 0);
    assert_int_equal(rd(h, CSR_SATP), 0);

    /* A satp write drops cached translations. */
    h->tlb[PRIV_S].read[5].tag = 5ull << PAGE_SHIFT;
    tlb_note_fill(&h->tlb[PRIV_S], TLB_READ, 5); /* as the MMU does when it fills */
    h->tlb[PRIV_U].write[7].tag = 7ull << PAGE_SHIFT;
    tlb_note_fill(&h->tlb[PRIV_U], TLB_WRITE, 7); /* as the MMU does when it fills */
    wr(h, CSR_SATP, sv39);
    assert_int_equal(h->tlb[PRIV_S].read[5].tag, TLB_INVALID);
    assert_int_equal(h->tlb[PRIV_U].write[7].tag, TLB_INVALID);

    /* mstatus.TVM traps S-mode satp accesses, not M-mode ones. */
    set_mstatus(h, MSTATUS_TVM);
    uint64_t v;
    assert_false(csr_read(h, CSR_SATP, &v));
    assert_false(csr_write(h, CSR_SATP, 0));
    set_priv(h, PRIV_M);
    assert_int_equal(rd(h, CSR_SATP), sv39);
    wr(h, CSR_SATP, sv48);
    assert_int_equal(rd(h, CSR_SATP), sv48);
}

static void test_mstatus_translation_bits_flush_tlb(void **state) {
    struct hart *h = H(state);
    h->tlb[PRIV_S].read[3].tag = 3ull << PAGE_SHIFT;
    tlb_note_fill(&h->tlb[PRIV_S], TLB_READ, 3); /* as the MMU does when it fills */
    set_priv(h, PRIV_S);
    assert_ptr_equal(h->dtlb, &h->tlb[PRIV_S]);
    /* SUM: S-mode loads and stores move to a set of their own (which may
     * map user pages) and back, keeping both sets' entries. */
    wr(h, CSR_SSTATUS, MSTATUS_SUM);
    assert_ptr_equal(h->dtlb, &h->tlb[TLB_SET_S_SUM]);
    assert_ptr_equal(h->itlb, &h->tlb[PRIV_S]);
    assert_int_equal(h->tlb[PRIV_S].read[3].tag, 3ull << PAGE_SHIFT);
    h->tlb[TLB_SET_S_SUM].read[4].tag = 4ull << PAGE_SHIFT;
    tlb_note_fill(&h->tlb[TLB_SET_S_SUM], TLB_READ, 4);
    wr(h, CSR_SSTATUS, 0);
    assert_ptr_equal(h->dtlb, &h->tlb[PRIV_S]);
    assert_int_equal(h->tlb[PRIV_S].read[3].tag, 3ull << PAGE_SHIFT);
    assert_int_equal(h->tlb[TLB_SET_S_SUM].read[4].tag, 4ull << PAGE_SHIFT);
    /* Setting MXR widens permissions: nothing goes. Clearing it drops
     * what was filled while it was set. */
    wr(h, CSR_SSTATUS, MSTATUS_MXR);
    assert_int_equal(h->tlb[PRIV_S].read[3].tag, 3ull << PAGE_SHIFT);
    wr(h, CSR_SSTATUS, 0);
    assert_int_equal(h->tlb[PRIV_S].read[3].tag, TLB_INVALID);
    assert_int_equal(h->tlb[TLB_SET_S_SUM].read[4].tag, TLB_INVALID);
    /* MPRV with MPP = S: M-mode loads and stores use the S translation. */
    set_priv(h, PRIV_M);
    wr(h, CSR_MSTATUS, MSTATUS_MPRV | (1ull << 11));
    assert_ptr_equal(h->dtlb, &h->tlb[PRIV_S]);
    assert_ptr_equal(h->itlb, &h->tlb[PRIV_M]);
    wr(h, CSR_MSTATUS, MSTATUS_MPRV | MSTATUS_SUM | (1ull << 11));
    assert_ptr_equal(h->dtlb, &h->tlb[TLB_SET_S_SUM]);
    wr(h, CSR_MSTATUS, 1ull << 11);
    assert_ptr_equal(h->dtlb, &h->tlb[PRIV_M]);
}

static void test_medeleg(void **state) {
    struct hart *h = H(state);
    wr(h, CSR_MEDELEG, ~0ull);
    uint64_t d = rd(h, CSR_MEDELEG);
    /* ecall from M-mode can never be delegated. */
    assert_int_equal(d & (1ull << EXC_ECALL_M), 0);
    static const int delegable[] = {EXC_INSN_MISALIGNED, EXC_INSN_ACCESS, EXC_ILLEGAL_INSN, EXC_BREAKPOINT,
                                    EXC_LOAD_MISALIGNED, EXC_LOAD_ACCESS, EXC_STORE_MISALIGNED, EXC_STORE_ACCESS,
                                    EXC_ECALL_U, EXC_ECALL_S, EXC_INSN_PAGE_FAULT, EXC_LOAD_PAGE_FAULT,
                                    EXC_STORE_PAGE_FAULT};
    for (size_t k = 0; k < sizeof delegable / sizeof delegable[0]; k++)
        if (!(d & (1ull << delegable[k]))) fail_msg("cause %d not delegable", delegable[k]);
    wr(h, CSR_MEDELEG, 1ull << EXC_ECALL_M);
    assert_int_equal(rd(h, CSR_MEDELEG), 0);
}

static void test_trap_vector_and_epc_alignment(void **state) {
    struct hart *h = H(state);
    wr(h, CSR_MTVEC, 0x80000101);
    assert_int_equal(rd(h, CSR_MTVEC), 0x80000101);
    wr(h, CSR_MTVEC, 0x80000200);
    assert_int_equal(rd(h, CSR_MTVEC), 0x80000200);
    wr(h, CSR_STVEC, 0x80000401);
    assert_int_equal(rd(h, CSR_STVEC), 0x80000401);
    /* xepc[0] is always zero; with C, xepc[1] is writable. */
    wr(h, CSR_MEPC, 0x80001003);
    assert_int_equal(rd(h, CSR_MEPC), 0x80001002);
    wr(h, CSR_SEPC, 0x80001001);
    assert_int_equal(rd(h, CSR_SEPC), 0x80001000);
    wr(h, CSR_SEPC, 0x80001002);
    assert_int_equal(rd(h, CSR_SEPC), 0x80001002);
    wr(h, CSR_MSCRATCH, ~0ull);
    assert_int_equal(rd(h, CSR_MSCRATCH), ~0ull);
}

static void test_counters_gated(void **state) {
    struct hart *h = H(state);
    O(state)->time = 123456789;
    uint64_t v;
    /* M-mode always may. */
    assert_int_equal(rd(h, CSR_TIME), 123456789);
    (void)rd(h, CSR_CYCLE);
    (void)rd(h, CSR_INSTRET);

    set_priv(h, PRIV_S);
    assert_false(csr_read(h, CSR_CYCLE, &v));
    assert_false(csr_read(h, CSR_TIME, &v));
    assert_false(csr_read(h, CSR_INSTRET, &v));
    set_priv(h, PRIV_M);
    wr(h, CSR_MCOUNTEREN, 2); /* TM only */
    set_priv(h, PRIV_S);
    assert_int_equal(rd(h, CSR_TIME), 123456789);
    assert_false(csr_read(h, CSR_CYCLE, &v));
    assert_false(csr_read(h, CSR_INSTRET, &v));
    /* U-mode needs scounteren too. */
    set_priv(h, PRIV_U);
    assert_false(csr_read(h, CSR_TIME, &v));
    set_priv(h, PRIV_S);
    wr(h, CSR_SCOUNTEREN, 7);
    assert_int_equal(rd(h, CSR_SCOUNTEREN), 7);
    set_priv(h, PRIV_U);
    assert_int_equal(rd(h, CSR_TIME), 123456789);
    assert_false(csr_read(h, CSR_CYCLE, &v)); /* mcounteren.CY still clear */
    set_priv(h, PRIV_M);
    wr(h, CSR_MCOUNTEREN, 7);
    set_priv(h, PRIV_S);
    wr(h, CSR_SCOUNTEREN, 5); /* CY, IR */
    set_priv(h, PRIV_U);
    (void)rd(h, CSR_CYCLE);
    (void)rd(h, CSR_INSTRET);
    assert_false(csr_read(h, CSR_TIME, &v));
    /* hpmcounter3 follows bit 3. */
    assert_false(csr_read(h, 0xc03, &v));
    set_priv(h, PRIV_S);
    assert_false(csr_read(h, 0xc03, &v));
    set_priv(h, PRIV_M);
    wr(h, CSR_MCOUNTEREN, 0xf);
    set_priv(h, PRIV_S);
    assert_int_equal(rd(h, 0xc03), 0);
}

static void test_mcycle_minstret_writable(void **state) {
    struct hart *h = H(state);
    wr(h, CSR_MCYCLE, 1000);
    assert_int_equal(rd(h, CSR_MCYCLE), 1000);
    assert_int_equal(rd(h, CSR_CYCLE), 1000);
    wr(h, CSR_MINSTRET, 5000);
    assert_int_equal(rd(h, CSR_MINSTRET), 5000);
    assert_int_equal(rd(h, CSR_INSTRET), 5000);
    /* Pretend a chain of 100 instructions has retired 60 so far. */
    h->slice += 100;
    h->budget += 40;
    assert_int_equal(rd(h, CSR_MINSTRET), 5060);
    wr(h, CSR_MINSTRET, 7);
    assert_int_equal(rd(h, CSR_MINSTRET), 7);
    /* Two more retire. */
    h->budget -= 2;
    assert_int_equal(rd(h, CSR_MINSTRET), 9);
    assert_int_equal(rd(h, CSR_MCYCLE), 9);
    wr(h, CSR_MCYCLE, UINT64_MAX);
    assert_int_equal(rd(h, CSR_MCYCLE), UINT64_MAX);
}

/* ------------------------------------------------------------------ */
/* Traps */

static void test_exception_to_m(void **state) {
    struct hart *h = H(state);
    mwr(h, CSR_MTVEC, 0x80001000);
    mwr(h, CSR_MSTATUS, MSTATUS_MIE);
    set_priv(h, PRIV_U);
    h->pc = 0x4000;
    h->reservation = 0x80000000;
    hart_raise(h, EXC_ILLEGAL_INSN, 0xdeadbeef);
    assert_int_equal(h->priv, PRIV_M);
    assert_int_equal(h->pc, 0x80001000);
    assert_int_equal(h->mcause, EXC_ILLEGAL_INSN);
    assert_int_equal(h->mepc, 0x4000);
    assert_int_equal(h->mtval, 0xdeadbeef);
    assert_int_equal(h->mstatus & MSTATUS_MPP, 0);
    assert_true(h->mstatus & MSTATUS_MPIE);
    assert_false(h->mstatus & MSTATUS_MIE);
    assert_int_equal(h->reservation, ~0ull);
    assert_ptr_equal(h->itlb, &h->tlb[PRIV_M]);
    assert_ptr_equal(h->dtlb, &h->tlb[PRIV_M]);
    assert_int_equal(O(state)->fatal_calls, 0);

    /* From S with MIE clear: MPP = S, MPIE = 0. */
    set_priv(h, PRIV_S);
    h->pc = 0x5000;
    hart_raise(h, EXC_LOAD_ACCESS, 0x1234);
    assert_int_equal(h->priv, PRIV_M);
    assert_int_equal((h->mstatus & MSTATUS_MPP) >> 11, PRIV_S);
    assert_false(h->mstatus & MSTATUS_MPIE);
    assert_int_equal(h->mcause, EXC_LOAD_ACCESS);
    assert_int_equal(h->mepc, 0x5000);
    assert_int_equal(h->mtval, 0x1234);

    /* Vectored mtvec: exceptions still go to BASE. */
    mwr(h, CSR_MTVEC, 0x80001001);
    set_priv(h, PRIV_U);
    h->pc = 0x4100;
    hart_raise(h, EXC_ECALL_U, 0);
    assert_int_equal(h->pc, 0x80001000);
    assert_int_equal(h->mcause, EXC_ECALL_U);
    mwr(h, CSR_MTVEC, 0x80001000);

    /* From M: MPP = M. Delegation never lowers the privilege. */
    mwr(h, CSR_MEDELEG, ~0ull);
    mwr(h, CSR_STVEC, 0x80002000);
    h->pc = 0x6000;
    hart_raise(h, EXC_BREAKPOINT, 0x6000);
    assert_int_equal(h->priv, PRIV_M);
    assert_int_equal((h->mstatus & MSTATUS_MPP) >> 11, PRIV_M);
    assert_int_equal(h->mcause, EXC_BREAKPOINT);
    assert_int_equal(h->pc, 0x80001000);
    assert_int_equal(h->scause, 0);
}

static void test_exception_delegated_to_s(void **state) {
    struct hart *h = H(state);
    mwr(h, CSR_MTVEC, 0x80001000);
    mwr(h, CSR_STVEC, 0x80002001); /* vectored: exceptions still go to BASE */
    mwr(h, CSR_MEDELEG, (1ull << EXC_ECALL_U) | (1ull << EXC_LOAD_PAGE_FAULT));
    mwr(h, CSR_MSTATUS, MSTATUS_SIE | MSTATUS_MIE);
    h->mcause = 0x55;
    set_priv(h, PRIV_U);
    h->pc = 0x10000;
    hart_raise(h, EXC_ECALL_U, 0);
    assert_int_equal(h->priv, PRIV_S);
    assert_int_equal(h->pc, 0x80002000);
    assert_int_equal(h->scause, EXC_ECALL_U);
    assert_int_equal(h->sepc, 0x10000);
    assert_int_equal(h->stval, 0);
    assert_false(h->mstatus & MSTATUS_SPP);
    assert_true(h->mstatus & MSTATUS_SPIE);
    assert_false(h->mstatus & MSTATUS_SIE);
    assert_true(h->mstatus & MSTATUS_MIE); /* M fields untouched */
    assert_int_equal(h->mcause, 0x55);
    assert_ptr_equal(h->itlb, &h->tlb[PRIV_S]);

    /* From S itself (SIE now clear): SPP = 1, SPIE = 0. */
    h->pc = 0x80003000;
    hart_raise(h, EXC_LOAD_PAGE_FAULT, 0xffffffc000001234ull);
    assert_int_equal(h->priv, PRIV_S);
    assert_int_equal(h->scause, EXC_LOAD_PAGE_FAULT);
    assert_int_equal(h->sepc, 0x80003000);
    assert_int_equal(h->stval, 0xffffffc000001234ull);
    assert_true(h->mstatus & MSTATUS_SPP);
    assert_false(h->mstatus & MSTATUS_SPIE);
    assert_int_equal(h->mcause, 0x55);

    /* Not delegated: goes to M even from U. */
    set_priv(h, PRIV_U);
    h->pc = 0x10004;
    hart_raise(h, EXC_STORE_PAGE_FAULT, 0x42);
    assert_int_equal(h->priv, PRIV_M);
    assert_int_equal(h->mcause, EXC_STORE_PAGE_FAULT);
    assert_int_equal(h->mepc, 0x10004);
    assert_int_equal(h->scause, EXC_LOAD_PAGE_FAULT);
    assert_int_equal(O(state)->fatal_calls, 0);
}

static void test_vectored_interrupts(void **state) {
    struct hart *h = H(state);
    mwr(h, CSR_MTVEC, 0x80000001);
    mwr(h, CSR_MIE, MIP_MTIP);
    set_priv(h, PRIV_S);
    h->pc = 0x80200000;
    h->wfi = true;
    hart_set_mip(h, MIP_MTIP, true);
    assert_true(hart_take_interrupt(h));
    assert_int_equal(h->priv, PRIV_M);
    assert_int_equal(h->pc, 0x80000000 + 4 * IRQ_MTI);
    assert_int_equal(h->mcause, INTR | IRQ_MTI);
    assert_int_equal(h->mepc, 0x80200000);
    assert_int_equal(h->mtval, 0);
    assert_int_equal((h->mstatus & MSTATUS_MPP) >> 11, PRIV_S);
    assert_false(h->wfi);
    /* A pending interrupt stays pending: taking it does not clear mip. */
    assert_int_equal(h->mip, MIP_MTIP);
    hart_set_mip(h, MIP_MTIP, false);

    /* Delegated supervisor timer to a vectored stvec. */
    mwr(h, CSR_STVEC, 0x80100001);
    mwr(h, CSR_MIDELEG, MIP_STIP);
    mwr(h, CSR_MIE, MIP_STIP);
    set_priv(h, PRIV_U);
    h->pc = 0x1000;
    hart_set_mip(h, MIP_STIP, true);
    assert_true(hart_take_interrupt(h));
    assert_int_equal(h->priv, PRIV_S);
    assert_int_equal(h->pc, 0x80100000 + 4 * IRQ_STI);
    assert_int_equal(h->scause, INTR | IRQ_STI);
    assert_int_equal(h->sepc, 0x1000);
    assert_false(h->mstatus & MSTATUS_SPP);

    /* Direct mode: every interrupt goes to BASE. */
    hart_set_mip(h, MIP_STIP, false);
    mwr(h, CSR_MTVEC, 0x80000000);
    mwr(h, CSR_MIE, MIP_MEIP);
    hart_set_mip(h, MIP_MEIP, true);
    set_priv(h, PRIV_U);
    assert_true(hart_take_interrupt(h));
    assert_int_equal(h->pc, 0x80000000);
    assert_int_equal(h->mcause, INTR | IRQ_MEI);
}

static void test_interrupt_priority(void **state) {
    struct hart *h = H(state);
    mwr(h, CSR_MTVEC, 0x80000000);
    mwr(h, CSR_MIE, ALL_IRQS);
    hart_set_mip(h, ALL_IRQS, true);
    static const int order[] = {IRQ_MEI, IRQ_MSI, IRQ_MTI, IRQ_SEI, IRQ_SSI, IRQ_STI};
    for (size_t k = 0; k < 6; k++) {
        set_priv(h, PRIV_U);
        assert_true(hart_take_interrupt(h));
        assert_int_equal(h->mcause, INTR | (uint64_t)order[k]);
        hart_set_mip(h, 1ull << order[k], false);
    }
    set_priv(h, PRIV_U);
    assert_false(hart_take_interrupt(h));

    /* Interrupts destined for M come before those destined for S, whatever
     * their place in the list: STI to M beats SEI delegated to S. */
    mwr(h, CSR_MIDELEG, MIP_SEIP);
    mwr(h, CSR_STVEC, 0x80400000);
    hart_set_mip(h, MIP_SEIP | MIP_STIP, true);
    set_mstatus(h, MSTATUS_SIE);
    set_priv(h, PRIV_S);
    assert_true(hart_take_interrupt(h));
    assert_int_equal(h->priv, PRIV_M);
    assert_int_equal(h->mcause, INTR | IRQ_STI);
    hart_set_mip(h, MIP_STIP, false);
    set_mstatus(h, MSTATUS_SIE);
    set_priv(h, PRIV_S);
    assert_true(hart_take_interrupt(h));
    assert_int_equal(h->priv, PRIV_S);
    assert_int_equal(h->scause, INTR | IRQ_SEI);
    assert_int_equal(h->pc, 0x80400000);

    /* Among delegated ones the same order holds: SEI > SSI > STI. */
    hart_set_mip(h, ALL_IRQS, false);
    mwr(h, CSR_MIDELEG, S_IRQS);
    hart_set_mip(h, MIP_SSIP | MIP_STIP, true);
    set_priv(h, PRIV_U);
    assert_true(hart_take_interrupt(h));
    assert_int_equal(h->scause, INTR | IRQ_SSI);
}

static void test_interrupt_masking(void **state) {
    struct hart *h = H(state);
    mwr(h, CSR_MTVEC, 0x80000000);
    mwr(h, CSR_STVEC, 0x80400000);

    /* Nothing enabled in mie: nothing taken. */
    hart_set_mip(h, MIP_MTIP, true);
    mwr(h, CSR_MSTATUS, MSTATUS_MIE);
    assert_false(hart_take_interrupt(h));
    assert_int_equal(hart_pending_irqs(h), 0);

    /* In M, MIE gates M interrupts. */
    mwr(h, CSR_MIE, MIP_MTIP);
    assert_int_equal(hart_pending_irqs(h), MIP_MTIP);
    mwr(h, CSR_MSTATUS, 0);
    h->pc = 0x1234;
    assert_false(hart_take_interrupt(h));
    assert_int_equal(h->pc, 0x1234);
    mwr(h, CSR_MSTATUS, MSTATUS_MIE);
    assert_true(hart_take_interrupt(h));
    assert_int_equal(h->mcause, INTR | IRQ_MTI);
    assert_int_equal(h->mepc, 0x1234);
    assert_true(h->mstatus & MSTATUS_MPIE);
    assert_false(h->mstatus & MSTATUS_MIE);
    /* Now in the handler with MIE clear: not taken again. */
    assert_false(hart_take_interrupt(h));

    /* Below M, M interrupts are always enabled, MIE notwithstanding. */
    mwr(h, CSR_MSTATUS, 0);
    set_priv(h, PRIV_S);
    assert_true(hart_take_interrupt(h));
    assert_int_equal(h->priv, PRIV_M);
    hart_set_mip(h, MIP_MTIP, false);

    /* Delegated STI: in S, gated by SIE. */
    mwr(h, CSR_MIDELEG, MIP_STIP);
    mwr(h, CSR_MIE, MIP_STIP);
    hart_set_mip(h, MIP_STIP, true);
    set_mstatus(h, 0);
    set_priv(h, PRIV_S);
    assert_false(hart_take_interrupt(h));
    assert_int_equal(h->priv, PRIV_S);
    set_mstatus(h, MSTATUS_SIE);
    assert_true(hart_take_interrupt(h));
    assert_int_equal(h->priv, PRIV_S);
    assert_int_equal(h->scause, INTR | IRQ_STI);
    assert_true(h->mstatus & MSTATUS_SPP);
    assert_true(h->mstatus & MSTATUS_SPIE);
    assert_false(h->mstatus & MSTATUS_SIE);
    /* In U, S interrupts are always enabled. */
    set_mstatus(h, 0);
    set_priv(h, PRIV_U);
    assert_true(hart_take_interrupt(h));
    assert_int_equal(h->priv, PRIV_S);
    assert_false(h->mstatus & MSTATUS_SPP);
    /* In M, a delegated interrupt is never taken, even with SIE and MIE set. */
    set_priv(h, PRIV_M);
    mwr(h, CSR_MSTATUS, MSTATUS_SIE | MSTATUS_MIE);
    h->pc = 0x777;
    assert_false(hart_take_interrupt(h));
    assert_int_equal(h->priv, PRIV_M);
    assert_int_equal(h->pc, 0x777);
    /* The wfi wake-up test ignores the global enables. */
    assert_int_equal(hart_pending_irqs(h), MIP_STIP);
}

static void test_fatal_cases(void **state) {
    struct hart *h = H(state);
    struct owner *o = O(state);
    /* A handler at the faulting pc would trap forever. */
    mwr(h, CSR_MTVEC, 0x80000000);
    h->pc = 0x80000000;
    hart_raise(h, EXC_ILLEGAL_INSN, 0);
    assert_int_equal(o->fatal_calls, 1);
    /* Same for a delegated exception whose stvec is the faulting pc. */
    mwr(h, CSR_MEDELEG, 1ull << EXC_ILLEGAL_INSN);
    mwr(h, CSR_STVEC, 0x80200000);
    set_priv(h, PRIV_S);
    h->pc = 0x80200000;
    hart_raise(h, EXC_ILLEGAL_INSN, 0);
    assert_int_equal(o->fatal_calls, 2);
    /* An interrupt at the handler's own address is fine. */
    mwr(h, CSR_MIE, MIP_MSIP);
    hart_set_mip(h, MIP_MSIP, true);
    set_priv(h, PRIV_U);
    h->pc = 0x80000000;
    assert_true(hart_take_interrupt(h));
    assert_int_equal(o->fatal_calls, 2);
    hart_set_mip(h, MIP_MSIP, false);

    /* SBI in the monitor: no M-mode software, so a trap to M is fatal... */
    h->sbi_in_monitor = true;
    set_priv(h, PRIV_S);
    h->pc = 0x80300000;
    hart_raise(h, EXC_BREAKPOINT, 0);
    assert_int_equal(o->fatal_calls, 3);
    assert_non_null(o->fatal_why);
    /* ...but a delegated one is an ordinary S trap. */
    h->pc = 0x80300000;
    set_priv(h, PRIV_U);
    hart_raise(h, EXC_ILLEGAL_INSN, 0x13);
    assert_int_equal(o->fatal_calls, 3);
    assert_int_equal(h->priv, PRIV_S);
    assert_int_equal(h->scause, EXC_ILLEGAL_INSN);
    assert_int_equal(h->stval, 0x13);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        T(test_initial_state),
        T(test_s_mode_cannot_touch_m_csrs),
        T(test_u_mode_cannot_touch_s_csrs),
        T(test_read_only_csrs_reject_writes),
        T(test_sstatus_is_view_of_mstatus),
        T(test_sie_sip_masked_by_mideleg),
        T(test_mip_writes),
        T(test_mpp_warl),
        T(test_sd_follows_fs),
        T(test_fp_csrs),
        T(test_satp_modes),
        T(test_mstatus_translation_bits_flush_tlb),
        T(test_medeleg),
        T(test_trap_vector_and_epc_alignment),
        T(test_counters_gated),
        T(test_mcycle_minstret_writable),
        T(test_exception_to_m),
        T(test_exception_delegated_to_s),
        T(test_vectored_interrupts),
        T(test_interrupt_priority),
        T(test_interrupt_masking),
        T(test_fatal_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
