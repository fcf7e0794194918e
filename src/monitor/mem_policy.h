/* Share-based memory allocation with an idle memory tax (ESX; Waldspurger,
 * "Memory Resource Management in VMware ESX Server", OSDI 2002, section 5).
 *
 * Each VM holds memory shares S. When machine memory is overcommitted,
 * memory is taken from the VM that holds the fewest shares per page it
 * has, its ratio
 *
 *     rho = S / (P * (f + k * (1 - f))),   k = 1 / (1 - tau)
 *
 * where P is the frames it holds, f the fraction of them in active use,
 * and tau the idle memory tax rate. With tau = 0, k = 1 and rho = S / P:
 * pure proportional share, under which a VM can hoard memory it never
 * touches for as long as it has the shares, while an active VM thrashes.
 * With tau > 0 an idle page costs k times what an active one does (the
 * paper's default tau = 75% makes it 4 times), so an idle VM's rho falls
 * faster as it holds more, and its idle pages are the ones taken first:
 * memory flows to the VMs that use it, yet a VM keeps a share-proportional
 * amount of what it actively uses (tau < 100% keeps the tax from taking
 * everything idle; the paper's experiment with two VMs, one idle and one
 * active, is the model for tests/unit/test_mem_policy.c).
 *
 * Memory is never reclaimed below a VM's guaranteed min (the paper's min
 * size), nor left above its configured max. Targets only say what to take
 * away: a VM below its target grows on demand, as in ESX. What the
 * policy's own balloon took from a VM counts as held: the VM claims it
 * back, so a busy VM ballooned down while memory was short gets it back
 * once an idle VM pays the tax (its target then lies above what it holds,
 * and the balloon deflates by the difference).
 *
 * Pure arithmetic on the caller's array: no globals, no allocation. */
#ifndef RVISOR_MEM_POLICY_H
#define RVISOR_MEM_POLICY_H

#include <stddef.h>
#include <stdint.h>

struct mem_policy_vm {
    uint64_t alloc;     /* frames it holds now (input) */
    uint64_t ballooned; /* frames the policy's balloon took from it (input; counted as held) */
    uint64_t min;       /* frames it is guaranteed (never reclaimed below) */
    uint64_t max;       /* its configured RAM in frames (never above) */
    uint64_t shares;    /* memory shares, >= 1 */
    double active;      /* estimated fraction of its allocation in active use, 0..1 */
    uint64_t target;    /* output: frames it should hold */
};

/* Sets each vms[i].target so that the sum of targets is at most `budget` frames
 * where possible (never below min, never above max, never above alloc +
 * ballooned: targets only say what to take away; a VM below its target
 * keeps growing on demand).
 * Frames are taken one chunk at a time from the VM whose shares-per-page
 * ratio, computed with its current target as P, is lowest; ties broken by lower index.
 * tax_percent is the idle memory tax rate tau in percent, 0..99 (0: pure shares; ESX's default 75).
 * Returns the sum of targets.
 *
 * A chunk is max(1, excess / 1024) frames, excess being how far the
 * starting targets (min(alloc + ballooned, max) each) exceed the budget, so the result
 * is within one chunk of equal ratios at a cost of O(n * (2048 + n)) for
 * any amount of memory. If every VM reaches its min (or its alloc, when
 * that is lower) first, the returned sum is above the budget. */
uint64_t mem_policy_targets(struct mem_policy_vm *vms, size_t n, uint64_t budget, unsigned tax_percent);

/* The shares-per-page ratio of a VM holding `pages` frames (the paper's rho).
 * shares 0 counts as 1, active is clamped to 0..1 (NaN: 1, untaxed), a tax
 * above 99 as 99, and pages 0 gives +infinity (nothing to take). */
double mem_policy_rho(uint64_t shares, uint64_t pages, double active, unsigned tax_percent);

#endif
