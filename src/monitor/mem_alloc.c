#include "monitor/mem_alloc.h"

/* Weights of a new sample in the two moving averages. */
#define SLOW_WEIGHT 0.1
#define FAST_WEIGHT 0.5

unsigned mem_default_shares(uint64_t mem_bytes) {
    uint64_t s = (mem_bytes >> 20) * 10;
    return s == 0 ? 1 : s > 1000000000u ? 1000000000u : (unsigned)s;
}

void mem_account_init(struct mem_account *a, uint64_t mem_bytes, uint64_t min_bytes, unsigned shares) {
    *a = (struct mem_account){
        .min = min_bytes >> 12,
        .max = mem_bytes >> 12,
        .shares = shares ? shares : mem_default_shares(mem_bytes),
        .slow = 1, .fast = 1, .latest = 1,
    };
    a->target = a->max;
}

void mem_account_sample(struct mem_account *a, unsigned sampled, unsigned touched) {
    if (!sampled) return;
    double f = (double)touched / sampled;
    if (!a->estimated) {
        a->slow = a->fast = f;
        a->estimated = true;
    } else {
        a->slow += SLOW_WEIGHT * (f - a->slow);
        a->fast += FAST_WEIGHT * (f - a->fast);
    }
    a->latest = f;
}

double mem_account_active(const struct mem_account *a) {
    double m = a->slow > a->fast ? a->slow : a->fast;
    return a->latest > m ? a->latest : m;
}

uint64_t mem_account_balloon(struct mem_account *a, uint64_t alloc, uint64_t inflated, uint64_t guest_free,
                             uint64_t deflate) {
    uint64_t want = inflated, reserve = a->max / 32;
    if (alloc > a->target) {
        /* Fell short of the last request with its free memory gone: it has nothing more to give (mem_alloc.h). */
        if (inflated < a->balloon && guest_free <= reserve) a->balloon_short = true;
        if (!a->balloon_short) want += guest_free + (alloc - a->target);
        else if (guest_free > reserve) want += guest_free - reserve;
    } else {
        a->balloon_short = false;
        if (deflate) want -= deflate < want ? deflate : want;
    }
    /* The balloon never takes the guest below its guaranteed minimum. */
    uint64_t most = a->max > a->min ? a->max - a->min : 0;
    return want > most ? most : want;
}
