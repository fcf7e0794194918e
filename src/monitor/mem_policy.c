#include "monitor/mem_policy.h"

#include <math.h>

/* Chunks per excess: the result is then within 1/1024 of the excess of
 * the exact equilibrium, and the number of steps is bounded no matter how
 * many frames are involved (millions on a large host). */
#define CHUNKS 1024

double mem_policy_rho(uint64_t shares, uint64_t pages, double active, unsigned tax_percent) {
    /* No pages: nothing to take, so it must never look like the best victim. */
    if (pages == 0) return INFINITY;
    if (shares == 0) shares = 1;
    /* An unknown activity is not taxed, as before any sample. */
    if (isnan(active) || active > 1.0) active = 1.0;
    if (active < 0.0) active = 0.0;
    /* tau = 100% would make an idle page infinitely expensive. */
    if (tax_percent > 99) tax_percent = 99;
    double k = 100.0 / (double)(100u - tax_percent);
    return (double)shares / ((double)pages * (active + k * (1.0 - active)));
}

static uint64_t add_sat(uint64_t a, uint64_t b) { return a + b < a ? UINT64_MAX : a + b; }

uint64_t mem_policy_targets(struct mem_policy_vm *vms, size_t n, uint64_t budget, unsigned tax_percent) {
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        struct mem_policy_vm *v = &vms[i];
        uint64_t claim = add_sat(v->alloc, v->ballooned);
        v->target = claim < v->max ? claim : v->max;
        sum = add_sat(sum, v->target);
    }
    if (sum <= budget) return sum;
    uint64_t excess = sum - budget;
    uint64_t chunk = excess / CHUNKS ? excess / CHUNKS : 1;
    /* Each step either takes a whole chunk (at most 2 * CHUNKS of those, as
     * chunk > excess / (2 * CHUNKS)), meets the budget, or brings one VM
     * down to its floor (at most n): O(n * (2 * CHUNKS + n)) in all. */
    while (excess > 0) {
        size_t victim = n;
        double lowest = INFINITY;
        for (size_t i = 0; i < n; i++) {
            const struct mem_policy_vm *v = &vms[i];
            if (v->target <= v->min) continue;
            double rho = mem_policy_rho(v->shares, v->target, v->active, tax_percent);
            /* Strictly lower, so equal ratios give from the lowest index:
             * the same inputs always give the same targets. */
            if (victim == n || rho < lowest) {
                victim = i;
                lowest = rho;
            }
        }
        /* Everyone is at its guaranteed min: the budget cannot be met. */
        if (victim == n) break;
        struct mem_policy_vm *v = &vms[victim];
        uint64_t take = chunk;
        if (take > excess) take = excess;
        if (take > v->target - v->min) take = v->target - v->min;
        v->target -= take;
        excess -= take;
        sum -= take;
    }
    return sum;
}
