/* Unit tests of the share-based memory policy (monitor/mem_policy.h):
 * nothing taken without overcommit; equal and 2:1 shares splitting memory
 * accordingly; the paper's idle memory tax experiment (an idle and an
 * active VM with equal shares end equal without the tax, and about 1:3.85
 * with ESX's 75%); mins, maxes and allocs respected; the shares-per-page
 * ratio itself; and, on many VMs with millions of frames, that no frame
 * was taken from a VM while another had a lower ratio. Also the balloon
 * size the policy asks of a VM (monitor/mem_alloc.h), above all that a
 * guest which cannot give more is not pressed again and again. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "monitor/mem_alloc.h"
#include "monitor/mem_policy.h"

static struct mem_policy_vm vm(uint64_t alloc, uint64_t min, uint64_t max, uint64_t shares, double active) {
    return (struct mem_policy_vm){.alloc = alloc, .min = min, .max = max, .shares = shares, .active = active,
                                  .target = 0xdeadbeef};
}

static uint64_t sum_of(const struct mem_policy_vm *v, size_t n) {
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++) s += v[i].target;
    return s;
}

/* The chunk mem_policy_targets takes at a time (mem_policy.h). */
static uint64_t chunk_for(uint64_t excess) { return excess / 1024 ? excess / 1024 : 1; }

static uint64_t distance(uint64_t a, uint64_t b) { return a > b ? a - b : b - a; }

static void assert_near(double got, double want, double tolerance) {
    if (got < want - tolerance || got > want + tolerance) fail_msg("%.12g is not within %g of %.12g", got, tolerance, want);
}

static void test_without_overcommit_nothing_is_taken(void **state) {
    (void)state;
    struct mem_policy_vm v[3] = {vm(1000, 0, 2000, 1000, 1.0), vm(500, 100, 500, 1, 0.0), vm(0, 0, 100, 5, 0.5)};
    assert_int_equal(mem_policy_targets(v, 3, 1500, 75), 1500); /* exactly the budget: still no overcommit */
    assert_int_equal(v[0].target, 1000);
    assert_int_equal(v[1].target, 500);
    assert_int_equal(v[2].target, 0);
    assert_int_equal(mem_policy_targets(v, 3, UINT64_MAX, 0), 1500);
    assert_int_equal(v[0].target, 1000);
}

static void test_equal_shares_split_equally(void **state) {
    (void)state;
    struct mem_policy_vm v[2] = {vm(1000000, 0, 1000000, 1000, 1.0), vm(1000000, 0, 1000000, 1000, 1.0)};
    assert_int_equal(mem_policy_targets(v, 2, 1000000, 75), 1000000);
    assert_int_equal(sum_of(v, 2), 1000000);
    assert_in_range(distance(v[0].target, v[1].target), 0, chunk_for(1000000));
}

static void test_equal_ratios_give_from_the_lower_index_first(void **state) {
    (void)state;
    struct mem_policy_vm v[2] = {vm(10, 0, 10, 7, 1.0), vm(10, 0, 10, 7, 1.0)};
    assert_int_equal(mem_policy_targets(v, 2, 19, 75), 19);
    assert_int_equal(v[0].target, 9);
    assert_int_equal(v[1].target, 10);
    /* Then VM 1 has the lower ratio, then they are equal again. */
    assert_int_equal(mem_policy_targets(v, 2, 17, 75), 17);
    assert_int_equal(v[0].target, 8);
    assert_int_equal(v[1].target, 9);
}

static void test_shares_two_to_one_split_two_to_one(void **state) {
    (void)state;
    struct mem_policy_vm v[2] = {vm(100000, 0, 100000, 2000, 1.0), vm(100000, 0, 100000, 1000, 1.0)};
    assert_int_equal(mem_policy_targets(v, 2, 90000, 75), 90000);
    uint64_t chunk = chunk_for(200000 - 90000);
    assert_in_range(v[0].target, 60000 - chunk, 60000 + chunk);
    assert_in_range(v[1].target, 30000 - chunk, 30000 + chunk);
}

/* The paper's experiment: two VMs with equal shares and memory, one idle
 * and one active. Without the tax they end with equal memory; with 75%
 * the ratios are equal when P_a * (0.05 + 4 * 0.95) = P_b * 1. */
static void test_the_idle_memory_tax_moves_memory_to_the_active_vm(void **state) {
    (void)state;
    struct mem_policy_vm v[2] = {vm(100000, 0, 100000, 1000, 0.05), vm(100000, 0, 100000, 1000, 1.0)};
    uint64_t chunk = chunk_for(100000);

    assert_int_equal(mem_policy_targets(v, 2, 100000, 0), 100000);
    assert_in_range(distance(v[0].target, v[1].target), 0, chunk);

    assert_int_equal(mem_policy_targets(v, 2, 100000, 75), 100000);
    uint64_t idle = v[0].target, active = v[1].target;
    assert_true(active >= 2 * idle);
    assert_near((double)active / (double)idle, 3.85, 3.85 * 0.05);
    /* The budget split at that ratio: 100000 / 4.85 to the idle VM. */
    assert_near((double)idle, 100000 / 4.85, 0.05 * 100000 / 4.85);
}

/* The busy VM was ballooned down to 300 frames while memory was short;
 * the idle one holds 900. What the balloon took counts as held, so the
 * tax moves memory from the idle VM to the busy one: its target lies
 * above what it holds (the policy then deflates its balloon by the
 * difference). Seen before: the balloon stayed until 10% of machine
 * memory was free, which reclamation (stopping at 4-6%) never reached. */
static void test_what_the_policys_balloon_took_is_claimed_back_from_an_idle_vm(void **state) {
    (void)state;
    struct mem_policy_vm v[2] = {
        {.alloc = 300, .ballooned = 500, .max = 1000, .shares = 100, .active = 1.0},
        {.alloc = 900, .max = 1000, .shares = 100, .active = 0.05},
    };
    mem_policy_targets(v, 2, 1000, 75);
    /* Equal ratios: P_busy * 1 = P_idle * (0.05 + 4 * 0.95), P_busy + P_idle = 1000. */
    assert_in_range(v[0].target, 780, 810);
    assert_in_range(v[1].target, 190, 220);
    assert_true(v[0].target > v[0].alloc + 400);
    /* Without the tax the shares split it evenly: still more than it holds. */
    mem_policy_targets(v, 2, 1000, 0);
    assert_in_range(v[0].target, 495, 505);
    /* A VM without a policy balloon is never given a target above what it holds. */
    v[0].ballooned = 0;
    mem_policy_targets(v, 2, 1000, 75);
    assert_int_equal(v[0].target, 300);
    /* Nor above its RAM. */
    v[0].ballooned = 5000;
    mem_policy_targets(v, 2, 100000, 75);
    assert_int_equal(v[0].target, 1000);
}

static void test_min_is_never_reclaimed_even_over_budget(void **state) {
    (void)state;
    struct mem_policy_vm v[2] = {vm(1000, 800, 1000, 1000, 0.0), vm(1000, 800, 1000, 1, 0.0)};
    assert_int_equal(mem_policy_targets(v, 2, 1000, 75), 1600); /* above the budget: nothing more may go */
    assert_int_equal(v[0].target, 800);
    assert_int_equal(v[1].target, 800);

    /* Equal shares would split 500:500; A's min makes B give the rest. */
    struct mem_policy_vm w[2] = {vm(1000, 900, 1000, 1000, 1.0), vm(1000, 0, 1000, 1000, 1.0)};
    assert_int_equal(mem_policy_targets(w, 2, 1000, 75), 1000);
    assert_int_equal(w[0].target, 900);
    assert_int_equal(w[1].target, 100);

    /* With no mins and no budget, everything goes. */
    assert_int_equal(mem_policy_targets(w + 1, 1, 0, 75), 0);
    assert_int_equal(w[1].target, 0);
}

static void test_targets_never_exceed_max_or_alloc(void **state) {
    (void)state;
    /* Above its max (RAM shrunk by hotplug, say): brought down to it. */
    struct mem_policy_vm v[2] = {vm(5000, 0, 4000, 1000, 1.0), vm(100, 0, 1000, 1000, 1.0)};
    assert_int_equal(mem_policy_targets(v, 2, 100000, 75), 4100);
    assert_int_equal(v[0].target, 4000);
    assert_int_equal(v[1].target, 100);

    /* A small VM with many shares is owed more than it holds, but a
     * target only takes away: it keeps its 100, and the other gives. */
    struct mem_policy_vm w[2] = {vm(100, 0, 1000, 100000, 1.0), vm(1000, 0, 1000, 1, 1.0)};
    assert_int_equal(mem_policy_targets(w, 2, 600, 75), 600);
    assert_int_equal(w[0].target, 100);
    assert_int_equal(w[1].target, 500);

    /* A min above alloc is no reason to raise the target either. */
    struct mem_policy_vm x[2] = {vm(100, 500, 1000, 1, 0.0), vm(1000, 0, 1000, 1000, 1.0)};
    assert_int_equal(mem_policy_targets(x, 2, 600, 75), 600);
    assert_int_equal(x[0].target, 100);
    assert_int_equal(x[1].target, 500);
}

static void test_no_vms_no_targets(void **state) {
    (void)state;
    assert_int_equal(mem_policy_targets(NULL, 0, 0, 75), 0);
    assert_int_equal(mem_policy_targets(NULL, 0, 1000, 0), 0);
}

static void test_the_shares_per_page_ratio(void **state) {
    (void)state;
    assert_near(mem_policy_rho(1000, 100, 1.0, 0), 10.0, 1e-12);
    assert_near(mem_policy_rho(1000, 100, 1.0, 75), 10.0, 1e-12); /* active pages are not taxed */
    assert_near(mem_policy_rho(1000, 100, 0.0, 75), 2.5, 1e-12);  /* 1000 / (100 * 4) */
    assert_near(mem_policy_rho(1000, 100, 0.0, 0), 10.0, 1e-12);
    assert_near(mem_policy_rho(1000, 100, 0.5, 50), 1000.0 / 150, 1e-12); /* k = 2: 100 * (0.5 + 2 * 0.5) */
    assert_near(mem_policy_rho(1000, 100, 0.05, 75), 1000.0 / 385, 1e-12);

    assert_true(isinf(mem_policy_rho(1000, 0, 1.0, 75)));
    assert_true(mem_policy_rho(1000, 0, 0.0, 75) > 0);
    assert_near(mem_policy_rho(0, 4, 1.0, 0), 0.25, 1e-12); /* no shares count as one */
    assert_near(mem_policy_rho(1000, 100, 1.5, 75), 10.0, 1e-12);
    assert_near(mem_policy_rho(1000, 100, -0.5, 75), 2.5, 1e-12);
    assert_near(mem_policy_rho(1000, 100, NAN, 75), 10.0, 1e-12);
    assert_near(mem_policy_rho(1000, 100, 0.0, 150), 0.1, 1e-12); /* capped at 99%: k = 100 */
}

static uint64_t next_random(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

/* Many VMs with millions of frames each: the budget is met, every target
 * is within its bounds, and no VM gave its last chunk while a VM that was
 * still above its floor had a lower ratio than it then had. */
static void test_many_vms_give_in_order_of_their_ratios(void **state) {
    (void)state;
    enum { N = 256 };
    static const unsigned taxes[] = {0, 75, 99};
    struct mem_policy_vm v[N];
    uint64_t start[N], floor_[N];
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (size_t t = 0; t < sizeof taxes / sizeof taxes[0]; t++) {
        uint64_t total = 0;
        for (size_t i = 0; i < N; i++) {
            uint64_t alloc = 1000 + next_random(&seed) % (4u << 20);
            uint64_t max = next_random(&seed) % 4 ? alloc + next_random(&seed) % 1000 : alloc - alloc / 4;
            uint64_t min = next_random(&seed) % 2 ? next_random(&seed) % (alloc / 10) : 0;
            double active = (double)(next_random(&seed) % 1001) / 1000;
            v[i] = vm(alloc, min, max, 1 + next_random(&seed) % 10000, active);
            start[i] = alloc < max ? alloc : max;
            floor_[i] = min < start[i] ? min : start[i];
            total += start[i];
        }
        uint64_t budget = total / 3, chunk = chunk_for(total - budget);
        assert_int_equal(mem_policy_targets(v, N, budget, taxes[t]), budget);
        assert_int_equal(sum_of(v, N), budget);
        size_t gave = 0;
        for (size_t i = 0; i < N; i++) {
            assert_in_range(v[i].target, floor_[i], start[i]);
            if (v[i].target == start[i]) continue;
            gave++;
            uint64_t before = v[i].target + chunk < start[i] ? v[i].target + chunk : start[i];
            double then = mem_policy_rho(v[i].shares, before, v[i].active, taxes[t]);
            for (size_t j = 0; j < N; j++) {
                if (j == i || v[j].target == floor_[j]) continue;
                double other = mem_policy_rho(v[j].shares, v[j].target, v[j].active, taxes[t]);
                if (then > other)
                    fail_msg("tax %u: VM %zu gave at ratio %g while VM %zu had %g", taxes[t], i, then, j, other);
            }
        }
        assert_true(gave > 1);
    }
}

/* ---- the balloon the policy asks for (mem_alloc.h) ---- */

/* A 256 MiB VM with the given target (frames); its reserve is 2048 frames (8 MiB). */
static struct mem_account account(uint64_t target) {
    struct mem_account a;
    mem_account_init(&a, 256u << 20, 0, 0);
    a.target = target;
    return a;
}

static void test_a_vm_above_target_is_asked_for_its_free_memory_and_the_excess(void **state) {
    (void)state;
    struct mem_account a = account(20000);
    /* 25000 frames held, 100 in the balloon, 30000 free: all the free and 5000 more. */
    a.balloon = mem_account_balloon(&a, 25000, 100, 30000, 0);
    assert_int_equal(a.balloon, 100 + 30000 + 5000);
    assert_false(a.balloon_short);
    /* Still inflating (much free memory left): asked again, not taken as short. */
    a.balloon = mem_account_balloon(&a, 24000, 20000, 12000, 0);
    assert_int_equal(a.balloon, 20000 + 12000 + 4000);
    assert_false(a.balloon_short);
    /* Reached its target: the balloon stays; with memory plentiful it shrinks. */
    assert_int_equal(mem_account_balloon(&a, 20000, 36000, 1000, 0), 36000);
    assert_int_equal(mem_account_balloon(&a, 20000, 36000, 1000, 6000), 30000);
}

static void test_a_guest_that_has_nothing_more_to_give_is_not_pressed(void **state) {
    (void)state;
    struct mem_account a = account(20000);
    a.balloon = mem_account_balloon(&a, 25000, 30000, 3000, 0);
    assert_int_equal(a.balloon, 30000 + 3000 + 5000);
    /* It gave 1000 of the 8000 asked and has 500 free left (its memory is
     * tmpfs): nothing more is asked, hypervisor swap takes the excess. */
    a.balloon = mem_account_balloon(&a, 25000, 31000, 500, 0);
    assert_int_equal(a.balloon, 31000);
    assert_true(a.balloon_short);
    /* The next period it is still above target: the balloon stays (it used
     * to ask for the free memory and the excess again, every second); a MiB
     * given back on OOM stays given back. */
    a.balloon = mem_account_balloon(&a, 25000, 31000, 500, 0);
    assert_int_equal(a.balloon, 31000);
    a.balloon = mem_account_balloon(&a, 25000, 30744, 700, 0);
    assert_int_equal(a.balloon, 30744);
    /* Free memory beyond its reserve (2048 frames) is still taken. */
    a.balloon = mem_account_balloon(&a, 25000, 30744, 5048, 0);
    assert_int_equal(a.balloon, 30744 + 3000);
    /* Once at its target it is asked normally again. */
    a.balloon = mem_account_balloon(&a, 20000, 33744, 3000, 0);
    assert_false(a.balloon_short);
    a.balloon = mem_account_balloon(&a, 21000, 33744, 3000, 0);
    assert_int_equal(a.balloon, 33744 + 3000 + 1000);
}

static void test_the_balloon_never_takes_the_guaranteed_minimum(void **state) {
    (void)state;
    struct mem_account a;
    mem_account_init(&a, 256u << 20, 200u << 20, 0); /* 51200 frames guaranteed of 65536 */
    a.target = 51200;
    assert_int_equal(mem_account_balloon(&a, 60000, 0, 60000, 0), 65536 - 51200);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_without_overcommit_nothing_is_taken),
        cmocka_unit_test(test_equal_shares_split_equally),
        cmocka_unit_test(test_equal_ratios_give_from_the_lower_index_first),
        cmocka_unit_test(test_shares_two_to_one_split_two_to_one),
        cmocka_unit_test(test_the_idle_memory_tax_moves_memory_to_the_active_vm),
        cmocka_unit_test(test_what_the_policys_balloon_took_is_claimed_back_from_an_idle_vm),
        cmocka_unit_test(test_min_is_never_reclaimed_even_over_budget),
        cmocka_unit_test(test_targets_never_exceed_max_or_alloc),
        cmocka_unit_test(test_no_vms_no_targets),
        cmocka_unit_test(test_the_shares_per_page_ratio),
        cmocka_unit_test(test_many_vms_give_in_order_of_their_ratios),
        cmocka_unit_test(test_a_vm_above_target_is_asked_for_its_free_memory_and_the_excess),
        cmocka_unit_test(test_a_guest_that_has_nothing_more_to_give_is_not_pressed),
        cmocka_unit_test(test_the_balloon_never_takes_the_guaranteed_minimum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
