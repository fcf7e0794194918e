#include "hart/csr.h"

#include "hart/hart.h"
#include "hart/mem.h"

#define SSTATUS_MASK (MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_UBE | MSTATUS_SPP | MSTATUS_FS | MSTATUS_XS | \
                      MSTATUS_SUM | MSTATUS_MXR | MSTATUS_UXL | MSTATUS_SD)
#define MSTATUS_WRITABLE (MSTATUS_SIE | MSTATUS_MIE | MSTATUS_SPIE | MSTATUS_MPIE | MSTATUS_SPP | MSTATUS_MPP | \
                          MSTATUS_FS | MSTATUS_MPRV | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_TVM | MSTATUS_TW |   \
                          MSTATUS_TSR)
#define SSTATUS_WRITABLE (MSTATUS_WRITABLE & SSTATUS_MASK)
/* Interrupt bits that exist on this hart. */
#define MIP_ALL (MIP_SSIP | MIP_MSIP | MIP_STIP | MIP_MTIP | MIP_SEIP | MIP_MEIP)
#define MIDELEG_WRITABLE (MIP_SSIP | MIP_STIP | MIP_SEIP)
/* mip bits M-mode software may write; the others follow device lines. */
#define MIP_WRITABLE (MIP_SSIP | MIP_STIP | MIP_SEIP)
/* Exceptions that can be delegated: all but ecall from M-mode. */
#define MEDELEG_WRITABLE (0xffffull & ~(1ull << EXC_ECALL_M) & ~(1ull << 10) & ~(1ull << 14))

static uint64_t with_sd(uint64_t s) {
    if ((s & MSTATUS_FS) == MSTATUS_FS || (s & MSTATUS_XS) == MSTATUS_XS) return s | MSTATUS_SD;
    return s & ~MSTATUS_SD;
}

/* Counters visible below M-mode only if mcounteren (and for U, scounteren) allow. */
static bool counter_allowed(const struct hart *h, unsigned csr) {
    uint64_t bit = 1ull << (csr & 31);
    if (h->priv < PRIV_M && !(h->mcounteren & bit)) return false;
    if (h->priv < PRIV_S && !(h->scounteren & bit)) return false;
    return true;
}

static bool fp_enabled(const struct hart *h) { return (h->mstatus & MSTATUS_FS) != 0; }
static void fp_dirty(struct hart *h) { h->mstatus |= MSTATUS_FS | MSTATUS_SD; }

bool csr_read(struct hart *h, unsigned csr, uint64_t *val) {
    if ((int)((csr >> 8) & 3) > h->priv) return false;
    switch (csr) {
    case CSR_FFLAGS: if (!fp_enabled(h)) return false; *val = h->fflags; return true;
    case CSR_FRM: if (!fp_enabled(h)) return false; *val = h->frm; return true;
    case CSR_FCSR: if (!fp_enabled(h)) return false; *val = (h->frm << 5) | h->fflags; return true;
    case CSR_CYCLE: case CSR_INSTRET:
        if (!counter_allowed(h, csr)) return false;
        *val = hart_instret(h);
        return true;
    case CSR_TIME:
        if (!counter_allowed(h, csr)) return false;
        *val = h->env->time(h->owner);
        return true;
    case CSR_SSTATUS: *val = h->mstatus & SSTATUS_MASK; return true;
    case CSR_SIE: *val = h->mie & h->mideleg; return true;
    case CSR_SIP: *val = __atomic_load_n(&h->mip, __ATOMIC_RELAXED) & h->mideleg; return true;
    case CSR_STVEC: *val = h->stvec; return true;
    case CSR_SCOUNTEREN: *val = h->scounteren; return true;
    case CSR_SENVCFG: *val = h->senvcfg; return true;
    case CSR_SSCRATCH: *val = h->sscratch; return true;
    case CSR_SEPC: *val = h->sepc; return true;
    case CSR_SCAUSE: *val = h->scause; return true;
    case CSR_STVAL: *val = h->stval; return true;
    case CSR_SATP:
        if (h->priv == PRIV_S && (h->mstatus & MSTATUS_TVM)) return false;
        *val = h->satp;
        return true;
    case CSR_MVENDORID: case CSR_MARCHID: case CSR_MIMPID: case CSR_MCONFIGPTR: *val = 0; return true;
    case CSR_MHARTID: *val = h->id; return true;
    case CSR_MSTATUS: *val = h->mstatus; return true;
    case CSR_MISA: *val = h->misa; return true;
    case CSR_MEDELEG: *val = h->medeleg; return true;
    case CSR_MIDELEG: *val = h->mideleg; return true;
    case CSR_MIE: *val = h->mie; return true;
    case CSR_MTVEC: *val = h->mtvec; return true;
    case CSR_MCOUNTEREN: *val = h->mcounteren; return true;
    case CSR_MENVCFG: *val = h->menvcfg; return true;
    case CSR_MCOUNTINHIBIT: *val = 0; return true;
    case CSR_MSCRATCH: *val = h->mscratch; return true;
    case CSR_MEPC: *val = h->mepc; return true;
    case CSR_MCAUSE: *val = h->mcause; return true;
    case CSR_MTVAL: *val = h->mtval; return true;
    case CSR_MIP: *val = __atomic_load_n(&h->mip, __ATOMIC_RELAXED); return true;
    case CSR_MCYCLE: case CSR_MINSTRET: *val = hart_instret(h); return true;
    case CSR_TSELECT: case CSR_TDATA1: case CSR_TDATA2: case CSR_TDATA3: *val = 0; return true;
    }
    if (csr >= CSR_PMPCFG0 && csr < CSR_PMPCFG0 + 16) {
        if (csr & 1) return false; /* odd pmpcfg registers do not exist on RV64 */
        *val = h->pmpcfg[csr - CSR_PMPCFG0];
        return true;
    }
    if (csr >= CSR_PMPADDR0 && csr < CSR_PMPADDR0 + 64) { *val = h->pmpaddr[csr - CSR_PMPADDR0]; return true; }
    /* Unimplemented hardware performance counters and their events read as zero. */
    if (csr >= 0xc03 && csr <= 0xc1f) { if (!counter_allowed(h, csr)) return false; *val = 0; return true; }
    if ((csr >= 0xb03 && csr <= 0xb1f) || (csr >= 0x323 && csr <= 0x33f)) { *val = 0; return true; }
    return false;
}

static void write_mstatus(struct hart *h, uint64_t val, uint64_t writable) {
    uint64_t old = h->mstatus;
    uint64_t s = (old & ~writable) | (val & writable);
    if (((s & MSTATUS_MPP) >> 11) == 2) s = (s & ~MSTATUS_MPP) | (old & MSTATUS_MPP); /* MPP is WARL: no H-mode */
    h->mstatus = with_sd(s);
    /* MXR lets loads read execute-only pages: entries made while it was
     * set must go when it is cleared (rare). SUM, MPRV and MPP only choose
     * which TLB set loads and stores use (mem_data_set), and FS which jump
     * cache (see hart_update_tlb_sets). */
    if ((old & MSTATUS_MXR) && !(h->mstatus & MSTATUS_MXR))
        for (int p = 0; p < 4; p++) tlb_set_flush(&h->tlb[p]);
    if ((old ^ h->mstatus) & (MSTATUS_MPRV | MSTATUS_MPP | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_FS))
        hart_update_tlb_sets(h);
    hart_break(h); /* interrupt enables may have changed */
}

static void write_satp(struct hart *h, uint64_t val) {
    unsigned mode = (unsigned)(val >> 60);
    /* satp is WARL: a write of an unsupported mode has no effect (Linux probes Sv57 this way). */
    if (mode != SATP_MODE_BARE && mode != SATP_MODE_SV39 && mode != SATP_MODE_SV48) return;
    /* 16 ASID bits are writable but unused: every satp write flushes the TLB. */
    h->satp = val & ((0xfull << 60) | (0xffffull << 44) | ((1ull << 44) - 1));
    hart_flush_tlb(h);
}

bool csr_write(struct hart *h, unsigned csr, uint64_t val) {
    if ((int)((csr >> 8) & 3) > h->priv) return false;
    if ((csr >> 10) == 3) return false; /* read-only */
    switch (csr) {
    case CSR_FFLAGS: if (!fp_enabled(h)) return false; h->fflags = val & 0x1f; fp_dirty(h); return true;
    case CSR_FRM: if (!fp_enabled(h)) return false; h->frm = val & 7; fp_dirty(h); return true;
    case CSR_FCSR:
        if (!fp_enabled(h)) return false;
        h->fflags = val & 0x1f;
        h->frm = (val >> 5) & 7;
        fp_dirty(h);
        return true;
    case CSR_SSTATUS: write_mstatus(h, val, SSTATUS_WRITABLE); return true;
    case CSR_SIE:
        h->mie = (h->mie & ~h->mideleg) | (val & h->mideleg & MIP_ALL);
        hart_break(h);
        return true;
    case CSR_SIP:
        /* Only the software interrupt is writable from S-mode. */
        hart_set_mip(h, MIP_SSIP & h->mideleg, val & MIP_SSIP);
        hart_break(h);
        return true;
    case CSR_STVEC: h->stvec = val & ~2ull; return true;
    case CSR_SCOUNTEREN: h->scounteren = val & 0xffffffff; return true;
    case CSR_SENVCFG: h->senvcfg = val & 1; return true;
    case CSR_SSCRATCH: h->sscratch = val; return true;
    case CSR_SEPC: h->sepc = val & ~1ull; return true;
    case CSR_SCAUSE: h->scause = val; return true;
    case CSR_STVAL: h->stval = val; return true;
    case CSR_SATP:
        if (h->priv == PRIV_S && (h->mstatus & MSTATUS_TVM)) return false;
        write_satp(h, val);
        return true;
    case CSR_MSTATUS: write_mstatus(h, val, MSTATUS_WRITABLE); return true;
    case CSR_MISA: return true; /* WARL: the extension set is fixed */
    case CSR_MEDELEG: h->medeleg = val & MEDELEG_WRITABLE; return true;
    case CSR_MIDELEG: h->mideleg = val & MIDELEG_WRITABLE; hart_break(h); return true;
    case CSR_MIE: h->mie = val & MIP_ALL; hart_break(h); return true;
    case CSR_MTVEC: h->mtvec = val & ~2ull; return true;
    case CSR_MCOUNTEREN: h->mcounteren = val & 0xffffffff; return true;
    case CSR_MENVCFG: h->menvcfg = val & 1; return true;
    case CSR_MCOUNTINHIBIT: return true;
    case CSR_MSCRATCH: h->mscratch = val; return true;
    case CSR_MEPC: h->mepc = val & ~1ull; return true;
    case CSR_MCAUSE: h->mcause = val; return true;
    case CSR_MTVAL: h->mtval = val; return true;
    case CSR_MIP: {
        uint64_t old = __atomic_load_n(&h->mip, __ATOMIC_RELAXED);
        hart_set_mip(h, MIP_WRITABLE & val, true);
        hart_set_mip(h, MIP_WRITABLE & ~val & old, false);
        hart_break(h);
        return true;
    }
    case CSR_MCYCLE: case CSR_MINSTRET: {
        uint64_t icount = val - (uint64_t)(h->slice - h->budget - h->stolen);
        h->icount_moved += icount - h->icount; /* the translator's slice ends by icount (jit_run) */
        h->icount = icount;
        return true;
    }
    case CSR_TSELECT: case CSR_TDATA1: case CSR_TDATA2: case CSR_TDATA3: return true;
    }
    if (csr >= CSR_PMPCFG0 && csr < CSR_PMPCFG0 + 16) {
        if (csr & 1) return false;
        h->pmpcfg[csr - CSR_PMPCFG0] = val;
        return true;
    }
    if (csr >= CSR_PMPADDR0 && csr < CSR_PMPADDR0 + 64) { h->pmpaddr[csr - CSR_PMPADDR0] = val & ((1ull << 54) - 1); return true; }
    if ((csr >= 0xb03 && csr <= 0xb1f) || (csr >= 0x323 && csr <= 0x33f)) return true;
    return false;
}
