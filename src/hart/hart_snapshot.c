/* A hart's saved state: the architectural fields of struct hart_state
 * (hart.h), declared once below. Host machinery (software TLB, code
 * caches, statistics, run control) is rebuilt, not saved. */
#include <stdio.h>

#include "hart/hart.h"
#include "io/vmstate.h"

#define F(m) VMSTATE_U(struct hart_state, m)
#define A(m) VMSTATE_ARRAY(struct hart_state, m)
#define B(m) VMSTATE_BOOL(struct hart_state, m)
static const struct vmstate_field hart_fields[] = {
    F(pc), F(icount), A(x), A(f),
    VMSTATE_U_MAX(struct hart_state, fflags, 0x1f),
    VMSTATE_U_MAX(struct hart_state, frm, 7),
    VMSTATE_U_MAX(struct hart_state, priv, PRIV_M),
    F(id),
    F(mstatus), F(misa), F(medeleg), F(mideleg), F(mie), F(mtvec), F(mscratch), F(mepc), F(mcause), F(mtval),
    F(mcounteren), F(menvcfg), F(mip), A(pmpcfg), A(pmpaddr),
    F(stvec), F(sscratch), F(sepc), F(scause), F(stval), F(satp), F(scounteren), F(senvcfg), F(stimecmp),
    B(wfi), B(hsm_stopped), F(hsm_start_pc), F(hsm_start_arg),
};
static const struct vmstate hart_vmstate = VMSTATE_TABLE("hart", 1, hart_fields);

bool hart_save(const struct hart *h, struct snap_writer *w) { return vmstate_save(w, &hart_vmstate, &h->arch); }

/* What the hart's own CSR writes could never produce (the WARL rules in
 * csr.c) is refused rather than run. */
static const char *invalid(const struct hart_state *s, const struct hart *h) {
    if (s->priv == 2) return "a reserved privilege level";
    /* IALIGN is 16: jalr, xRET and the epc CSRs never make a pc odd, and
     * the interpreter indexes its decoded slots by pc / 2 (an odd pc at a
     * page's last byte runs past the code page). */
    if ((s->pc | s->mepc | s->sepc) & 1) return "an odd pc, mepc or sepc";
    if (((s->mstatus & MSTATUS_MPP) >> 11) == 2) return "mstatus.MPP reserved";
    if ((s->mstatus & (MSTATUS_UXL | MSTATUS_SXL)) != (h->mstatus & (MSTATUS_UXL | MSTATUS_SXL)))
        return "another XLEN";
    if (s->misa != h->misa) return "another ISA (misa)";
    unsigned mode = (unsigned)(s->satp >> 60);
    if (mode != 0 && mode != 8 && mode != 9) return "an unsupported satp mode";
    if (s->id != h->id) return "another hart id";
    return NULL;
}

bool hart_load(struct hart *h, const struct snap_section *s, char *err, size_t errlen) {
    struct hart_state st = h->arch;
    if (!vmstate_load(s, &hart_vmstate, &st, err, errlen)) return false;
    const char *why = invalid(&st, h);
    if (why) {
        snprintf(err, errlen, "hart %u's saved state has %s", h->id, why);
        return false;
    }
    h->arch = st;
    h->x[32] = 0;
    /* A reservation is a host address: the restored hart holds none. */
    h->reservation = ~0ull;
    hart_flush_tlb(h);
    hart_update_tlb_sets(h);
    return true;
}
