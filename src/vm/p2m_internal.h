/* What p2m.c and p2m_swap.c share: the layout of a map entry and the
 * release of machine frames after the harts have passed. */
#ifndef RVISOR_P2M_INTERNAL_H
#define RVISOR_P2M_INTERNAL_H

#include "vm/p2m.h"

#define STATE_BITS 8
#define STATE_MASK ((1ull << STATE_BITS) - 1)

static inline enum p2m_state entry_state(uint64_t e) { return (enum p2m_state)(e & STATE_MASK); }
/* The machine frame, or the swap slot of a P2M_SWAPPED entry. */
static inline uint64_t entry_mfn(uint64_t e) { return e >> STATE_BITS; }

/* Gives machine frame mfn back once no hart can be using it. */
void p2m_release_frame(struct p2m *m, uint64_t mfn);

/* Is frame (index) still protected on mfn? With m->lock held. */
bool p2m_still_protected(struct p2m *m, uint64_t frame, uint64_t mfn);

/* Swap: the frame's slot goes back to the file (m->lock held). */
void p2m_swap_free_slot(struct p2m *m, uint64_t slot);
/* Reads frame (index), whose entry was e (SWAPPED), back from its slot,
 * m->lock not held (taken around, not during, the read): the host address
 * of its new private frame, or NULL with *again set if the entry changed
 * meanwhile, or NULL if memory is short (m->exhausted) or its contents
 * are lost (m->failed). */
uint8_t *p2m_swap_in(struct p2m *m, uint64_t frame, uint64_t e, bool *again);
void p2m_swap_destroy(struct p2m *m);

#endif
