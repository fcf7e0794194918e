/* Unit tests of dirty logging (p2m_dirty.c): which writes mark, collect's
 * hand-over and flushes, the unsettled case, and two concurrent runs: device
 * writers (p2m_write) must all be reported, and hart-like threads that keep
 * write mappings in a TLB across turns must leave a pre-copy exact. */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "monitor/machine_memory.h"
#include "vm/p2m.h"

#define RAM_BASE 0x80000000ull
#define MiB (1024ull * 1024)
#define NFRAMES (16 * MiB / 4096)
#define WORDS (NFRAMES / 64)
#define HARTS 2
#define TLB_WAYS 8

struct fixture {
    struct machine_memory mm;
    struct frame_source fs;
    struct p2m m;
    unsigned flushes;
    /* Fake TLBs of the hart threads: tag = frame + 1, 0 = invalid. */
    uint64_t tag[HARTS][TLB_WAYS];
    uint8_t *host[HARTS][TLB_WAYS];
    bool stop;
    /* Odd while the test pauses the VM; a hart acks each odd value it stops for. */
    uint64_t pause, paused[HARTS];
};

static void fake_flush(void *ctx) {
    struct fixture *f = ctx;
    __atomic_fetch_add(&f->flushes, 1, __ATOMIC_RELAXED);
    for (int h = 0; h < HARTS; h++)
        for (int w = 0; w < TLB_WAYS; w++) __atomic_store_n(&f->tag[h][w], 0, __ATOMIC_SEQ_CST);
}

static int setup(void **state) {
    struct fixture *f = calloc(1, sizeof *f);
    if (!f || !machine_memory_init(&f->mm, 24 * MiB)) return -1;
    f->fs = machine_memory_source(&f->mm);
    if (!p2m_init(&f->m, RAM_BASE, 16 * MiB, &f->fs)) return -1;
    f->m.flush = fake_flush;
    f->m.flush_ctx = f;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    struct fixture *f = *state;
    p2m_destroy(&f->m);
    machine_memory_destroy(&f->mm);
    free(f);
    return 0;
}

static uint64_t gpa(uint64_t frame) { return RAM_BASE + frame * 4096; }
static bool has(const uint64_t *bits, uint64_t frame) { return bits[frame / 64] >> (frame & 63) & 1; }
static void set(uint64_t *bits, uint64_t frame) { bits[frame / 64] |= 1ull << (frame & 63); }

/* Collects and checks the set is exactly want[0..n). */
static void expect(struct fixture *f, const uint64_t *want, size_t n) {
    uint64_t out[WORDS], exp[WORDS] = {0};
    memset(out, 0xff, sizeof out);
    for (size_t i = 0; i < n; i++) set(exp, want[i]);
    bool settled = false;
    assert_int_equal(p2m_dirty_collect(&f->m, out, &settled), n);
    assert_true(settled);
    assert_memory_equal(out, exp, sizeof out);
}

static void test_nothing_logged_before_start(void **state) {
    struct fixture *f = *state;
    uint32_t v = 1;
    assert_true(p2m_write(&f->m, gpa(3), &v, sizeof v));
    expect(f, NULL, 0); /* off: cleared, 0 */
    assert_true(p2m_dirty_start(&f->m));
    expect(f, NULL, 0);
    p2m_dirty_stop(&f->m);
}

static void test_device_writes_mark_exactly_their_frames(void **state) {
    struct fixture *f = *state;
    uint32_t v = 7;
    assert_true(p2m_write(&f->m, gpa(4), &v, sizeof v)); /* backed before the start */
    assert_true(p2m_dirty_start(&f->m));
    uint8_t buf[100] = {1};
    assert_true(p2m_write(&f->m, gpa(4), &v, sizeof v));
    assert_true(p2m_write(&f->m, gpa(11) - 50, buf, sizeof buf)); /* crosses into 11 */
    assert_true(p2m_fill(&f->m, gpa(20) + 8, 0x55, 16));
    assert_true(p2m_fill(&f->m, gpa(30), 0, 4096)); /* zeros into a zero frame change nothing */
    expect(f, (uint64_t[]){4, 10, 11, 20}, 4);
    expect(f, NULL, 0); /* a new log, nothing written */
    p2m_dirty_stop(&f->m);
}

static void test_hart_writes_mark_reads_do_not(void **state) {
    struct fixture *f = *state;
    uint32_t v = 9, r;
    assert_true(p2m_write(&f->m, gpa(40), &v, sizeof v));
    uint64_t mfn;
    assert_true(p2m_protect(&f->m, 40, &mfn));
    assert_int_equal(p2m_share_in_place(&f->m, 40, mfn), P2M_MERGED);
    assert_true(p2m_dirty_start(&f->m));
    assert_non_null(p2m_frame(&f->m, gpa(5) + 8, true, NULL)); /* first write: demand-zero */
    assert_true(p2m_read(&f->m, gpa(4), &r, sizeof r));
    assert_non_null(p2m_frame(&f->m, gpa(6), false, NULL));
    assert_non_null(p2m_frame(&f->m, gpa(40), false, NULL)); /* reads the shared frame */
    expect(f, (uint64_t[]){5}, 1);
    assert_true(p2m_write(&f->m, gpa(40), &v, sizeof v)); /* copy-on-write */
    assert_int_equal(p2m_state_of(&f->m, 40), P2M_PRIVATE);
    expect(f, (uint64_t[]){40}, 1);
    p2m_dirty_stop(&f->m);
}

static void test_dropped_frames_are_marked(void **state) {
    struct fixture *f = *state;
    uint32_t v = 1;
    assert_true(p2m_write(&f->m, gpa(50), &v, sizeof v));
    assert_true(p2m_write(&f->m, gpa(51), &v, sizeof v));
    assert_true(p2m_dirty_start(&f->m));
    uint64_t a = gpa(50);
    assert_int_equal(p2m_drop_frames(&f->m, &a, 1), 1);
    assert_int_equal(p2m_drop_range(&f->m, gpa(51), 2 * 4096), 1); /* 52 was never backed */
    expect(f, (uint64_t[]){50, 51}, 2);
    p2m_dirty_stop(&f->m);
}

static void test_start_and_collect_flush(void **state) {
    struct fixture *f = *state;
    uint64_t out[WORDS];
    assert_true(p2m_dirty_start(&f->m));
    assert_int_equal(f->flushes, 1);
    p2m_dirty_collect(&f->m, out, NULL);
    assert_int_equal(f->flushes, 2);
    p2m_dirty_stop(&f->m);
}

static void test_stop_ends_marking(void **state) {
    struct fixture *f = *state;
    uint32_t v = 1;
    assert_true(p2m_dirty_start(&f->m));
    p2m_dirty_stop(&f->m);
    assert_true(p2m_write(&f->m, gpa(60), &v, sizeof v));
    assert_non_null(p2m_frame(&f->m, gpa(61), true, NULL));
    expect(f, NULL, 0);
    assert_true(p2m_dirty_start(&f->m)); /* a new start forgets nothing it should know */
    expect(f, NULL, 0);
    p2m_dirty_stop(&f->m);
}

/* A hart stuck in its turn: collect gives up, reports again what it handed
 * over, and a late mark into the bitmap it emptied is not lost. */
static void test_unsettled_collect_loses_nothing(void **state) {
    struct fixture *f = *state;
    uint64_t out[WORDS];
    uint32_t v = 1;
    assert_true(p2m_dirty_start(&f->m));
    f->m.ncpus = 1;
    p2m_turn_begin(&f->m, 0);
    assert_true(p2m_write(&f->m, gpa(70), &v, sizeof v));
    bool settled = true;
    assert_int_equal(p2m_dirty_collect(&f->m, out, &settled), 1);
    assert_false(settled);
    assert_true(has(out, 70));
    set(f->m.dirty.bits[f->m.dirty.cur ^ 1], 71); /* a mark from a lookup before the swap */
    assert_true(p2m_write(&f->m, gpa(72), &v, sizeof v));
    p2m_turn_end(&f->m, 0);
    expect(f, (uint64_t[]){70, 71, 72}, 3);
    f->m.ncpus = 0;
    p2m_dirty_stop(&f->m);
}

struct writer {
    struct fixture *f;
    unsigned id, seed;
    uint64_t wrote[WORDS];
    bool failed; /* cmocka's asserts are for the main thread */
};

static void *device_writer(void *arg) {
    struct writer *w = arg;
    for (int i = 0; i < 4000; i++) {
        uint64_t frame = (uint64_t)rand_r(&w->seed) % NFRAMES;
        uint64_t v = (uint64_t)w->id << 32 | (unsigned)i;
        /* Each thread its own words of the frame: no byte written twice at once. */
        if (!p2m_write(&w->f->m, gpa(frame) + w->id * 8, &v, sizeof v)) w->failed = true;
        set(w->wrote, frame);
    }
    return NULL;
}

static void test_concurrent_device_writes_all_reported(void **state) {
    struct fixture *f = *state;
    static struct writer w[4];
    pthread_t t[4];
    uint64_t seen[WORDS] = {0}, out[WORDS];
    assert_true(p2m_dirty_start(&f->m));
    for (unsigned i = 0; i < 4; i++) {
        w[i] = (struct writer){.f = f, .id = i, .seed = 17 + i};
        assert_int_equal(pthread_create(&t[i], NULL, device_writer, &w[i]), 0);
    }
    for (int round = 0; round < 50; round++) {
        p2m_dirty_collect(&f->m, out, NULL);
        for (size_t i = 0; i < WORDS; i++) seen[i] |= out[i];
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_false(w[i].failed);
    }
    bool settled = false;
    p2m_dirty_collect(&f->m, out, &settled);
    assert_true(settled);
    for (size_t i = 0; i < WORDS; i++) {
        seen[i] |= out[i];
        uint64_t wrote = w[0].wrote[i] | w[1].wrote[i] | w[2].wrote[i] | w[3].wrote[i];
        assert_int_equal(seen[i], wrote); /* every written frame, and no other */
    }
    p2m_dirty_stop(&f->m);
}

/* A hart: turns of stores into its own 8 frames, each through its fake
 * TLB (one way per frame, so entries live until a flush), refilled from
 * p2m_frame(write=true) on a miss, sometimes slowly: a collect may swap the
 * log and flush between the lookup and the fill. Between turns it stops
 * while the test pauses the VM. */
static void *hart(void *arg) {
    struct writer *w = arg;
    struct fixture *f = w->f;
    uint64_t value = (uint64_t)w->id << 48;
    while (!__atomic_load_n(&f->stop, __ATOMIC_RELAXED)) {
        uint64_t pause = __atomic_load_n(&f->pause, __ATOMIC_ACQUIRE);
        if (pause & 1) {
            __atomic_store_n(&f->paused[w->id], pause, __ATOMIC_RELEASE);
            while (__atomic_load_n(&f->pause, __ATOMIC_ACQUIRE) == pause) sched_yield();
            continue;
        }
        p2m_turn_begin(&f->m, w->id);
        for (int k = 0; k < 16; k++) {
            unsigned way = (unsigned)rand_r(&w->seed) % TLB_WAYS;
            uint64_t frame = w->id * TLB_WAYS + way;
            uint8_t *host = f->host[w->id][way];
            if (__atomic_load_n(&f->tag[w->id][way], __ATOMIC_SEQ_CST) != frame + 1) {
                host = p2m_frame(&f->m, gpa(frame), true, NULL);
                if (!host) {
                    w->failed = true;
                    break;
                }
                if (rand_r(&w->seed) % 4 == 0) nanosleep(&(struct timespec){0, 30000}, NULL);
                f->host[w->id][way] = host;
                __atomic_store_n(&f->tag[w->id][way], frame + 1, __ATOMIC_SEQ_CST);
            }
            unsigned word = (unsigned)rand_r(&w->seed) % 512;
            __atomic_store_n((uint64_t *)host + word, ++value, __ATOMIC_RELAXED);
            set(w->wrote, frame);
        }
        p2m_turn_end(&f->m, w->id);
    }
    return NULL;
}

#define HART_FRAMES (HARTS * TLB_WAYS)

static void copy_frame(struct fixture *f, uint64_t frame, uint64_t (*dst)[512]) {
    const uint64_t *src = (const uint64_t *)p2m_frame(&f->m, gpa(frame), false, NULL);
    for (int i = 0; i < 512; i++) dst[frame][i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

/* A collect and a copy of what it reports. With the harts paused it must
 * settle; while they run it may not (a loaded host), which loses nothing. */
static void round_trip(struct fixture *f, uint64_t (*dst)[512], bool paused) {
    uint64_t out[WORDS];
    bool settled = false;
    p2m_dirty_collect(&f->m, out, &settled);
    if (paused) assert_true(settled);
    for (uint64_t fr = 0; fr < HART_FRAMES; fr++)
        if (has(out, fr)) copy_frame(f, fr, dst);
}

/* Pre-copy while harts run; every few rounds the VM pauses and a last
 * round must leave the copy equal to RAM. */
static void test_precopy_with_harts_is_exact(void **state) {
    struct fixture *f = *state;
    static struct writer w[HARTS];
    static uint64_t dst[HART_FRAMES][512];
    pthread_t t[HARTS];
    f->m.ncpus = HARTS;
    assert_true(p2m_dirty_start(&f->m));
    for (unsigned i = 0; i < HARTS; i++) {
        w[i] = (struct writer){.f = f, .id = i, .seed = 99 + i};
        assert_int_equal(pthread_create(&t[i], NULL, hart, &w[i]), 0);
    }
    for (uint64_t fr = 0; fr < HART_FRAMES; fr++) copy_frame(f, fr, dst);
    unsigned mismatches = 0;
    for (int round = 0; round < 200; round++) {
        round_trip(f, dst, false);
        if (round % 4 != 3) continue;
        /* Let every hart run a turn or two first (the host may have few CPUs). */
        for (int h = 0; h < HARTS; h++) {
            uint64_t t0 = __atomic_load_n(&f->m.turn[h], __ATOMIC_ACQUIRE) | 1;
            while (__atomic_load_n(&f->m.turn[h], __ATOMIC_ACQUIRE) <= t0) sched_yield();
        }
        uint64_t pause = __atomic_add_fetch(&f->pause, 1, __ATOMIC_SEQ_CST);
        for (int h = 0; h < HARTS; h++)
            while (__atomic_load_n(&f->paused[h], __ATOMIC_ACQUIRE) != pause) sched_yield();
        round_trip(f, dst, true);
        for (uint64_t fr = 0; fr < HART_FRAMES; fr++) {
            uint64_t now[512];
            assert_true(p2m_read(&f->m, gpa(fr), now, sizeof now));
            if (memcmp(now, dst[fr], sizeof now) != 0) {
                mismatches++;
                memcpy(dst[fr], now, sizeof now); /* resynchronise, count the rest */
            }
        }
        __atomic_add_fetch(&f->pause, 1, __ATOMIC_SEQ_CST);
    }
    __atomic_store_n(&f->stop, true, __ATOMIC_RELAXED);
    for (int i = 0; i < HARTS; i++) {
        pthread_join(t[i], NULL);
        assert_false(w[i].failed);
    }
    assert_int_equal(mismatches, 0);
    for (int h = 0; h < HARTS; h++) assert_true(w[h].wrote[0] >> (h * TLB_WAYS) & 0xff); /* they did run */
    f->m.ncpus = 0;
    p2m_dirty_stop(&f->m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_nothing_logged_before_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_writes_mark_exactly_their_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hart_writes_mark_reads_do_not, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dropped_frames_are_marked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_and_collect_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_ends_marking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsettled_collect_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_device_writes_all_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_precopy_with_harts_is_exact, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
