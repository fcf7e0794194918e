/* How handlers continue. Each handler ends by jumping straight to the next
 * decoded instruction (threaded code: a tail call, so every handler has its
 * own indirect branch for the host's predictor), or by returning to
 * hart_run when control leaves the code page, a trap was taken, the state
 * changed in a way the outer loop must see, or the slice's budget is spent.
 *
 * Builds where the compiler cannot be trusted to turn those calls into
 * jumps (no optimisation, sanitizers) define RVISOR_LOOP_DISPATCH: handlers
 * then hand the next instruction back to a loop in hart_run instead. */
#ifndef RVISOR_DISPATCH_H
#define RVISOR_DISPATCH_H

#include <stddef.h>

#include "hart/hart.h"
#include "mmu/tlb.h"

#ifdef RVISOR_LOOP_DISPATCH
#define DISPATCH(h, next)                                  \
    do {                                                   \
        if (--(h)->budget >= 0) (h)->next_insn = (next);   \
        else (h)->budget++;                                \
        return;                                            \
    } while (0)
#else
#define DISPATCH(h, next)                                  \
    do {                                                   \
        if (__builtin_expect(--(h)->budget >= 0, 1)) {     \
            const struct insn *n_ = (next);                \
            n_->fn((h), n_);                               \
            return;                                        \
        }                                                  \
        (h)->budget++;                                     \
        return;                                            \
    } while (0)
#endif

/* Falls through to the instruction after i. */
#define NEXT_INSN(h, i)                            \
    do {                                           \
        (h)->pc += (i)->len;                       \
        DISPATCH((h), (i) + ((i)->len >> 1));      \
    } while (0)

/* The decoded instruction at h->pc in another page, if the fetch TLB
 * already maps that page; NULL sends the hart back to hart_run. */
static inline const struct insn *dispatch_other_page(struct hart *h) {
    const struct fetch_entry *e = &h->itlb->fetch[tlb_index(h->pc)];
    if (__builtin_expect(e->tag != (h->pc & PAGE_MASK), 0)) return NULL;
    h->cur_host_page = (uint8_t *)(uintptr_t)((h->pc & PAGE_MASK) + e->addend);
    return &e->code->slot[(h->pc & ~PAGE_MASK) >> 1];
}

/* Transfers control to target, following it into another page when the
 * fetch TLB knows that page (interrupts are still looked at once a slice). */
#define JUMP_TO(h, i, target)                                          \
    do {                                                               \
        uint64_t t_ = (target);                                        \
        int64_t d_ = (int64_t)(t_ - (h)->pc);                          \
        bool same_ = ((t_ ^ (h)->pc) & PAGE_MASK) == 0;                \
        (h)->pc = t_;                                                  \
        if (same_) DISPATCH((h), (i) + (d_ >> 1));                     \
        const struct insn *o_ = dispatch_other_page(h);                \
        if (o_) DISPATCH((h), o_);                                     \
        return;                                                        \
    } while (0)

#endif
