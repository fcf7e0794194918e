/* Register layout and gateway behaviour follow the SiFive "Platform-Level
 * Interrupt Controller" specification (riscv-plic-spec). */
#include "dev/plic.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "io/vmstate.h"

#define WORDS (PLIC_NUM_SOURCES / 32)

#define PRIORITY_BASE 0x0
#define PENDING_BASE 0x1000
#define ENABLE_BASE 0x2000
#define ENABLE_STRIDE 0x80
#define CONTEXT_BASE 0x200000
#define CONTEXT_STRIDE 0x1000

/* A context's saved state is enable and threshold (plic_ctx_vmstate);
 * output is derived from the rest. */
struct plic_context {
    uint32_t enable[WORDS];
    uint32_t threshold;
    bool output; /* last level given to the hart, to skip redundant calls */
};

/* The sources' state: what a snapshot saves besides the contexts (plic_vmstate). */
struct plic_regs {
    uint32_t priority[PLIC_NUM_SOURCES];
    uint32_t level[WORDS];      /* input lines as the devices drive them */
    uint32_t in_service[WORDS]; /* claimed and not yet completed */
};

struct plic {
    pthread_mutex_t lock;
    unsigned nharts, ncontexts;
    struct hart_irq *harts; /* a copy, so callers may pass a temporary array */
    struct plic_regs regs;
    struct plic_context ctx[];
};

static bool bit(const uint32_t *w, unsigned i) { return (w[i / 32] >> (i % 32)) & 1; }

static void set_bit(uint32_t *w, unsigned i, bool v) {
    if (v)
        w[i / 32] |= 1u << (i % 32);
    else
        w[i / 32] &= ~(1u << (i % 32));
}

/* Level-triggered gateway: a source is pending while its line is high,
 * except while in service, so deriving it keeps the two from disagreeing. */
static uint32_t pending_word(const struct plic *p, unsigned w) { return p->regs.level[w] & ~p->regs.in_service[w]; }

/* Best claimable source for a context: highest priority above threshold,
 * lowest id on ties; 0 if none. */
static unsigned best_source(const struct plic *p, const struct plic_context *c) {
    unsigned best = 0;
    uint32_t best_prio = c->threshold;
    for (unsigned w = 0; w < WORDS; w++) {
        uint32_t cand = pending_word(p, w) & c->enable[w];
        while (cand) {
            unsigned id = w * 32 + (unsigned)__builtin_ctz(cand);
            cand &= cand - 1;
            if (p->regs.priority[id] > best_prio) {
                best_prio = p->regs.priority[id];
                best = id;
            }
        }
    }
    return best;
}

static void update_outputs(struct plic *p) {
    for (unsigned i = 0; i < p->ncontexts; i++) {
        struct plic_context *c = &p->ctx[i];
        bool out = best_source(p, c) != 0;
        if (out == c->output) continue;
        c->output = out;
        hart_irq_set(&p->harts[i / 2], (i & 1) ? HART_IRQ_SEIP : HART_IRQ_MEIP, out);
    }
}

void plic_set_irq(void *plic, unsigned irq, bool level) {
    struct plic *p = plic;
    if (irq == 0 || irq >= PLIC_NUM_SOURCES) return;
    pthread_mutex_lock(&p->lock);
    if (bit(p->regs.level, irq) != level) {
        set_bit(p->regs.level, irq, level);
        update_outputs(p);
    }
    pthread_mutex_unlock(&p->lock);
}

static uint32_t claim(struct plic *p, struct plic_context *c) {
    unsigned id = best_source(p, c);
    if (id) set_bit(p->regs.in_service, id, true);
    return id;
}

static void complete(struct plic *p, struct plic_context *c, uint32_t id) {
    /* The spec says completions for sources not enabled for the context
     * are silently ignored. */
    if (id == 0 || id >= PLIC_NUM_SOURCES || !bit(c->enable, id)) return;
    set_bit(p->regs.in_service, id, false);
}

static uint32_t read32(struct plic *p, uint64_t off) {
    if (off < PENDING_BASE) {
        unsigned id = (unsigned)(off / 4);
        return id < PLIC_NUM_SOURCES ? p->regs.priority[id] : 0;
    }
    if (off < ENABLE_BASE) {
        unsigned w = (unsigned)((off - PENDING_BASE) / 4);
        return w < WORDS ? pending_word(p, w) : 0;
    }
    if (off < CONTEXT_BASE) {
        uint64_t ci = (off - ENABLE_BASE) / ENABLE_STRIDE;
        unsigned w = (unsigned)((off - ENABLE_BASE) % ENABLE_STRIDE / 4);
        return ci < p->ncontexts && w < WORDS ? p->ctx[ci].enable[w] : 0;
    }
    uint64_t ci = (off - CONTEXT_BASE) / CONTEXT_STRIDE;
    if (ci >= p->ncontexts) return 0;
    switch ((off - CONTEXT_BASE) % CONTEXT_STRIDE) {
    case 0:
        return p->ctx[ci].threshold;
    case 4:
        return claim(p, &p->ctx[ci]);
    }
    return 0;
}

static void write32(struct plic *p, uint64_t off, uint32_t v) {
    if (off < PENDING_BASE) {
        unsigned id = (unsigned)(off / 4);
        /* Source 0 does not exist: its priority is hardwired to zero. */
        if (id > 0 && id < PLIC_NUM_SOURCES) p->regs.priority[id] = v & PLIC_MAX_PRIORITY;
        return;
    }
    if (off < ENABLE_BASE) return; /* pending bits are read-only here */
    if (off < CONTEXT_BASE) {
        uint64_t ci = (off - ENABLE_BASE) / ENABLE_STRIDE;
        unsigned w = (unsigned)((off - ENABLE_BASE) % ENABLE_STRIDE / 4);
        if (ci < p->ncontexts && w < WORDS) p->ctx[ci].enable[w] = w == 0 ? v & ~1u : v;
        return;
    }
    uint64_t ci = (off - CONTEXT_BASE) / CONTEXT_STRIDE;
    if (ci >= p->ncontexts) return;
    switch ((off - CONTEXT_BASE) % CONTEXT_STRIDE) {
    case 0:
        p->ctx[ci].threshold = v & PLIC_MAX_PRIORITY;
        break;
    case 4:
        complete(p, &p->ctx[ci], v);
        break;
    }
}

/* Registers are 32 bits wide. An aligned 8-byte access is taken as two
 * 32-bit ones (low word first), as a 32-bit bus would; narrow or misaligned
 * accesses read 0 and are dropped so they cannot claim by accident. */
static uint64_t plic_read(void *dev, uint64_t off, unsigned size) {
    struct plic *p = dev;
    if ((size != 4 && size != 8) || off % size || off >= PLIC_SIZE) return 0;
    pthread_mutex_lock(&p->lock);
    uint64_t v = read32(p, off);
    if (size == 8) v |= (uint64_t)read32(p, off + 4) << 32;
    update_outputs(p);
    pthread_mutex_unlock(&p->lock);
    return v;
}

static void plic_write(void *dev, uint64_t off, uint64_t val, unsigned size) {
    struct plic *p = dev;
    if ((size != 4 && size != 8) || off % size || off >= PLIC_SIZE) return;
    pthread_mutex_lock(&p->lock);
    write32(p, off, (uint32_t)val);
    if (size == 8) write32(p, off + 4, (uint32_t)(val >> 32));
    update_outputs(p);
    pthread_mutex_unlock(&p->lock);
}

const struct mmio_ops plic_mmio_ops = {plic_read, plic_write};

struct plic *plic_create(unsigned nharts, const struct hart_irq *harts) {
    if (nharts == 0 || nharts > PLIC_MAX_HARTS || !harts) return NULL;
    for (unsigned i = 0; i < nharts; i++)
        if (!harts[i].set_pending) return NULL;
    unsigned nctx = 2 * nharts;
    struct plic *p = calloc(1, sizeof *p + nctx * sizeof p->ctx[0]);
    if (!p) return NULL;
    p->harts = malloc(nharts * sizeof *harts);
    if (!p->harts || pthread_mutex_init(&p->lock, NULL)) {
        free(p->harts);
        free(p);
        return NULL;
    }
    for (unsigned i = 0; i < nharts; i++) p->harts[i] = harts[i];
    p->nharts = nharts;
    p->ncontexts = nctx;
    return p;
}

void plic_destroy(struct plic *p) {
    if (!p) return;
    pthread_mutex_destroy(&p->lock);
    free(p->harts);
    free(p);
}

/* ---- snapshots: section "plic", version 1: u32 nharts, plic_vmstate,
 * then plic_ctx_vmstate for each of the 2 * nharts contexts ---- */

static const struct vmstate_field plic_fields[] = {
    /* VMSTATE_ARRAY with a bound on each element */
    {"priority", VMSTATE_UINT, offsetof(struct plic_regs, priority), VMSTATE_ELEM_SIZE(struct plic_regs, priority),
     PLIC_NUM_SOURCES, PLIC_MAX_PRIORITY},
    VMSTATE_ARRAY(struct plic_regs, level),
    VMSTATE_ARRAY(struct plic_regs, in_service),
};
static const struct vmstate plic_vmstate = VMSTATE_TABLE("plic", 1, plic_fields);

static const struct vmstate_field plic_ctx_fields[] = {
    VMSTATE_ARRAY(struct plic_context, enable),
    VMSTATE_U_MAX(struct plic_context, threshold, PLIC_MAX_PRIORITY),
};
static const struct vmstate plic_ctx_vmstate = VMSTATE_TABLE("plic", 1, plic_ctx_fields);

bool plic_save(struct plic *p, struct snap_writer *w) {
    pthread_mutex_lock(&p->lock);
    bool ok = snap_section_begin(w, plic_vmstate.tag, plic_vmstate.version) && snap_write_u32(w, p->nharts) &&
              vmstate_put(w, &plic_vmstate, &p->regs);
    for (unsigned i = 0; ok && i < p->ncontexts; i++) ok = vmstate_put(w, &plic_ctx_vmstate, &p->ctx[i]);
    ok = ok && snap_section_end(w);
    pthread_mutex_unlock(&p->lock);
    return ok;
}

bool plic_load(struct plic *p, const struct snap_section *s, char *err, size_t errlen) {
    if (!vmstate_check_version(s, plic_vmstate.tag, plic_vmstate.version, err, errlen)) return false;
    struct snap_cursor c;
    snap_cursor_init(&c, s);
    uint32_t nharts;
    if (snap_get_u32(&c, &nharts) && nharts != p->nharts) {
        snprintf(err, errlen, "snapshot has %u harts' PLIC contexts, this VM %u", nharts, p->nharts);
        return false;
    }
    if (s->len != 4 + vmstate_size(&plic_vmstate) + (uint64_t)p->ncontexts * vmstate_size(&plic_ctx_vmstate)) {
        snprintf(err, errlen, "section 'plic' is %llu bytes, wrong for %u harts", (unsigned long long)s->len,
                 p->nharts);
        return false;
    }
    /* Everything is checked (a pass over the bytes) before any of it is
     * installed. Source 0 does not exist: no priority, line, claim or enable. */
    struct plic_regs r = {0};
    bool ok = vmstate_get(&c, &plic_vmstate, &r) && !r.priority[0] && !((r.level[0] | r.in_service[0]) & 1);
    struct snap_cursor check = c;
    for (unsigned i = 0; ok && i < p->ncontexts; i++) {
        struct plic_context ctx = {0};
        ok = vmstate_get(&check, &plic_ctx_vmstate, &ctx) && !(ctx.enable[0] & 1);
    }
    if (!ok) {
        snprintf(err, errlen, "section 'plic' holds a value out of range");
        return false;
    }
    pthread_mutex_lock(&p->lock);
    p->regs = r;
    for (unsigned i = 0; i < p->ncontexts; i++) {
        vmstate_get(&c, &plic_ctx_vmstate, &p->ctx[i]);
        /* The opposite of the new output, so that update_outputs drives
         * every hart line whatever it was left at. */
        p->ctx[i].output = best_source(p, &p->ctx[i]) == 0;
    }
    update_outputs(p);
    pthread_mutex_unlock(&p->lock);
    return true;
}
