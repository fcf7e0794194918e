/* A VM's memory allocation as the monitor's memory manager keeps it (ESX,
 * Waldspurger OSDI 2002, sections 5 and 6): its shares and guaranteed
 * minimum, the estimate of how much of its memory is in active use (from
 * p2m sampling), the target the share-based policy (mem_policy.h) gives
 * it, and the balloon size that moves it there. Plain data and arithmetic;
 * the monitor applies the results. */
#ifndef RVISOR_MEM_ALLOC_H
#define RVISOR_MEM_ALLOC_H

#include <stdbool.h>
#include <stdint.h>

struct mem_account {
    uint64_t min;          /* frames it is guaranteed */
    uint64_t max;          /* its RAM in frames */
    unsigned shares;
    /* Active fraction: ESX's two moving averages of the samples, a slow
     * and a fast one; the estimate is the larger of them and the latest
     * sample, so it rises at once with the working set and falls slowly. */
    double slow, fast, latest;
    bool estimated;        /* a sample has completed */
    uint64_t target;       /* frames it should hold; max when nothing is to be taken */
    uint64_t balloon;      /* frames the policy wants its balloon to hold */
    bool balloon_short;    /* the guest could not give what was asked: no excess is asked of it until it reaches its target */
};

/* Default memory shares: ESX gives 10 per MiB of configured memory, so
 * VMs get memory in proportion to their size unless told otherwise. */
unsigned mem_default_shares(uint64_t mem_bytes);

void mem_account_init(struct mem_account *a, uint64_t mem_bytes, uint64_t min_bytes, unsigned shares);
/* A sampling period ended: `touched` of `sampled` frames were used. */
void mem_account_sample(struct mem_account *a, unsigned sampled, unsigned touched);
/* The estimate of the fraction of its memory in active use (1 before any sample). */
double mem_account_active(const struct mem_account *a);

/* The balloon size (frames) that moves a VM holding `alloc` frames, with
 * `inflated` frames in its balloon now and `guest_free` frames free by its
 * own account, to its target. The guest's free memory holds no machine
 * frames (free page reporting gave them back), so the balloon must take
 * all of it and then the excess: only that makes the guest give up pages
 * it uses. It stays put once alloc reached the target; with memory
 * plentiful again (`deflate` frames may be given back) it shrinks.
 *
 * A guest whose balloon stayed below the last request (a->balloon) with
 * no more than a reserve of free memory left (1/32 of its RAM) has given
 * all it can: what it holds it cannot free (tmpfs, or anonymous memory
 * without guest swap). Asking again would keep it at the edge of OOM for
 * as long as it stays above its target: Linux's driver retries the
 * inflation every 200 ms, takes each page the guest frees, and its
 * deflate-on-OOM hands back a MiB at a time, so the guest's tasks starve
 * (bench/idletax.py saw guests stop for minutes). From then on
 * (a->balloon_short) the balloon takes only free memory beyond the
 * reserve, and hypervisor swap takes the excess, until the VM is at its
 * target again. */
uint64_t mem_account_balloon(struct mem_account *a, uint64_t alloc, uint64_t inflated, uint64_t guest_free,
                             uint64_t deflate);

#endif
