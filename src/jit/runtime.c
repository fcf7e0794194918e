/* C functions that translated code calls: the slow paths of loads and
 * stores (software-TLB misses, MMIO, faults), and the arithmetic whose
 * RISC-V results differ from x86's (division by zero and overflow do not
 * trap on RISC-V). */
#include "jit/jit_internal.h"
#include "hart/mem.h"

#include <string.h>

static const uint8_t *leave(struct hart *h, const struct jit_site *s) {
    h->icount += s->insns;
    h->stats.mem_ops += s->mems;
    return NULL;
}

const uint8_t *jit_load_site(struct hart *h, uint64_t va, const uint8_t *site) {
    struct jit_site s;
    memcpy(&s, site, sizeof s);
    h->pc = s.pc;
    if (!mem_load_slow(h, va, s.size)) return leave(h, &s);
    uint64_t v = h->load_val;
    unsigned bits = 8 * s.size;
    if (s.sign && bits < 64) v = (uint64_t)((int64_t)(v << (64 - bits)) >> (64 - bits));
    h->load_val = v;
    return site + sizeof s;
}

const uint8_t *jit_store_site(struct hart *h, uint64_t va, const uint8_t *site, uint64_t val) {
    struct jit_site s;
    memcpy(&s, site, sizeof s);
    h->pc = s.pc;
    if (!mem_store_slow(h, va, s.size, val)) return leave(h, &s);
    /* The store may have hit the block's own code: then the block is
     * stale from the next instruction on. */
    if (__atomic_load_n(s.gen, __ATOMIC_ACQUIRE) != s.block_gen) {
        h->pc = s.pc + s.len;
        return leave(h, &s);
    }
    return site + sizeof s;
}

#define SEXT32(v) ((uint64_t)(int64_t)(int32_t)(uint32_t)(v))

uint64_t jit_div(uint64_t a, uint64_t b) {
    if (b == 0) return ~0ull;
    if ((int64_t)a == INT64_MIN && (int64_t)b == -1) return a;
    return (uint64_t)((int64_t)a / (int64_t)b);
}
uint64_t jit_divu(uint64_t a, uint64_t b) { return b ? a / b : ~0ull; }
uint64_t jit_rem(uint64_t a, uint64_t b) {
    if (b == 0) return a;
    if ((int64_t)a == INT64_MIN && (int64_t)b == -1) return 0;
    return (uint64_t)((int64_t)a % (int64_t)b);
}
uint64_t jit_remu(uint64_t a, uint64_t b) { return b ? a % b : a; }
uint64_t jit_divw(uint64_t a, uint64_t b) {
    int32_t x = (int32_t)a, y = (int32_t)b;
    if (y == 0) return ~0ull;
    if (x == INT32_MIN && y == -1) return SEXT32(x);
    return SEXT32(x / y);
}
uint64_t jit_divuw(uint64_t a, uint64_t b) { return (uint32_t)b ? SEXT32((uint32_t)a / (uint32_t)b) : ~0ull; }
uint64_t jit_remw(uint64_t a, uint64_t b) {
    int32_t x = (int32_t)a, y = (int32_t)b;
    if (y == 0) return SEXT32(x);
    if (x == INT32_MIN && y == -1) return 0;
    return SEXT32(x % y);
}
uint64_t jit_remuw(uint64_t a, uint64_t b) { return (uint32_t)b ? SEXT32((uint32_t)a % (uint32_t)b) : SEXT32(a); }
uint64_t jit_mulhsu(uint64_t a, uint64_t b) {
    return (uint64_t)(((__int128)(int64_t)a * (__int128)(unsigned __int128)b) >> 64);
}
