/* Exceptions and interrupts: delegation through medeleg/mideleg, the
 * mstatus stacks of interrupt enables and previous privilege, and the
 * interrupt priority order of the privileged spec. */
#include "hart/hart.h"

#define INTERRUPT_BIT (1ull << 63)

static void enter_trap(struct hart *h, uint64_t cause, uint64_t tval, uint64_t epc) {
    bool interrupt = cause & INTERRUPT_BIT;
    unsigned code = (unsigned)(cause & 63);
    if (interrupt) h->stats.interrupts++;
    else h->stats.exceptions++;
    uint64_t deleg = interrupt ? h->mideleg : h->medeleg;
    if (h->priv <= PRIV_S && ((deleg >> code) & 1)) {
        h->scause = cause;
        h->sepc = epc;
        h->stval = tval;
        uint64_t s = h->mstatus & ~(MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE);
        if (h->priv == PRIV_S) s |= MSTATUS_SPP;
        if (h->mstatus & MSTATUS_SIE) s |= MSTATUS_SPIE;
        h->mstatus = s;
        h->priv = PRIV_S;
        h->pc = (h->stvec & ~3ull) + ((interrupt && (h->stvec & 1)) ? 4ull * code : 0);
        if (!interrupt && h->pc == epc) {
            h->env->fatal(h->owner, h, "exception in S-mode with no usable trap handler");
            return;
        }
    } else {
        if (h->sbi_in_monitor) {
            /* No M-mode software exists to take this trap. */
            h->env->fatal(h->owner, h, "trap to M-mode with no firmware loaded");
            return;
        }
        h->mcause = cause;
        h->mepc = epc;
        h->mtval = tval;
        uint64_t s = h->mstatus & ~(MSTATUS_MPP | MSTATUS_MPIE | MSTATUS_MIE);
        s |= (uint64_t)h->priv << 11;
        if (h->mstatus & MSTATUS_MIE) s |= MSTATUS_MPIE;
        h->mstatus = s;
        h->priv = PRIV_M;
        h->pc = (h->mtvec & ~3ull) + ((interrupt && (h->mtvec & 1)) ? 4ull * code : 0);
        /* A handler that faults on its own first instruction would trap forever. */
        if (!interrupt && h->pc == epc) {
            h->env->fatal(h->owner, h, "exception in M-mode with no usable trap handler");
            return;
        }
    }
    h->wfi = false;
    h->reservation = ~0ull;
    hart_update_tlb_sets(h);
    hart_break(h);
}

void hart_raise(struct hart *h, uint64_t cause, uint64_t tval) { enter_trap(h, cause, tval, h->pc); }

uint64_t hart_pending_irqs(const struct hart *h) { return __atomic_load_n(&h->mip, __ATOMIC_RELAXED) & h->mie; }

/* Highest priority first: MEI, MSI, MTI, SEI, SSI, STI. */
static const int irq_priority[] = {IRQ_MEI, IRQ_MSI, IRQ_MTI, IRQ_SEI, IRQ_SSI, IRQ_STI};

static int highest(uint64_t bits) {
    for (unsigned i = 0; i < sizeof irq_priority / sizeof irq_priority[0]; i++)
        if (bits & (1ull << irq_priority[i])) return irq_priority[i];
    return -1;
}

bool hart_take_interrupt(struct hart *h) {
    uint64_t pending = hart_pending_irqs(h);
    if (!pending) return false;
    bool m_enabled = h->priv < PRIV_M || (h->mstatus & MSTATUS_MIE);
    bool s_enabled = h->priv < PRIV_S || (h->priv == PRIV_S && (h->mstatus & MSTATUS_SIE));
    uint64_t to_m = m_enabled ? pending & ~h->mideleg : 0;
    uint64_t to_s = s_enabled ? pending & h->mideleg : 0;
    int irq = highest(to_m);
    if (irq < 0) irq = highest(to_s);
    if (irq < 0) return false;
    enter_trap(h, INTERRUPT_BIT | (uint64_t)irq, 0, h->pc);
    return true;
}
