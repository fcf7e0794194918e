/* Unit tests of hypervisor swap: a p2m's frames written to its swap file
 * and read back intact, a write racing with a swap-out cancelling it, a
 * corrupted swap file detected (never a wrong frame), a full swap file,
 * dropping swapped frames, a swap-in that must wait for memory; and the
 * monitor's reclaimer (monitor/reclaim.c) bringing free memory back up. */
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "monitor/machine_memory.h"
#include "monitor/reclaim.h"
#include "vm/p2m.h"

#define RAM_BASE 0x80000000ull
#define MiB (1024ull * 1024)

struct fixture {
    struct machine_memory mm;
    struct frame_source fs;
    struct p2m m;
    char dir[64];
};

static void ignore_flush(void *ctx) { (void)ctx; }

static struct fixture *make(uint64_t machine, uint64_t ram, uint64_t swap_bytes) {
    struct fixture *f = calloc(1, sizeof *f);
    if (!f || !machine_memory_init(&f->mm, machine)) return NULL;
    f->fs = machine_memory_source(&f->mm);
    if (!p2m_init(&f->m, RAM_BASE, ram, &f->fs)) return NULL;
    f->m.flush = ignore_flush;
    snprintf(f->dir, sizeof f->dir, "/tmp/rvisor-swap-test-XXXXXX");
    if (!mkdtemp(f->dir)) return NULL;
    char err[256];
    if (!p2m_swap_init(&f->m, f->dir, swap_bytes, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return NULL;
    }
    return f;
}

static int setup(void **state) {
    *state = make(8 * MiB, 64 * MiB, 16 * MiB);
    return *state ? 0 : -1;
}

static int teardown(void **state) {
    struct fixture *f = *state;
    p2m_destroy(&f->m);
    machine_memory_destroy(&f->mm);
    rmdir(f->dir);
    free(f);
    return 0;
}

static uint64_t frame_of(uint64_t gpa) { return (gpa - RAM_BASE) >> 12; }

/* Distinct contents for every frame and byte. */
static void write_pattern(struct fixture *f, uint64_t gpa, uint32_t seed) {
    uint32_t buf[1024];
    for (unsigned i = 0; i < 1024; i++) buf[i] = seed * 2654435761u + i;
    assert_true(p2m_write(&f->m, gpa, buf, sizeof buf));
}

static bool pattern_intact(struct fixture *f, uint64_t gpa, uint32_t seed) {
    uint32_t buf[1024];
    if (!p2m_read(&f->m, gpa, buf, sizeof buf)) return false;
    for (unsigned i = 0; i < 1024; i++)
        if (buf[i] != seed * 2654435761u + i) return false;
    return true;
}

/* Protects gpa's frame and swaps it out, as the reclaimer does once the
 * grace periods passed (no harts here, so they pass at once). */
static enum p2m_swap_result swap_out(struct fixture *f, uint64_t gpa) {
    uint64_t mfn;
    assert_true(p2m_protect(&f->m, frame_of(gpa), &mfn));
    return p2m_swap_out(&f->m, frame_of(gpa), mfn);
}

static void test_a_swapped_frame_comes_back_intact(void **state) {
    struct fixture *f = *state;
    uint64_t a = RAM_BASE + 4096 * 7;
    write_pattern(f, a, 7);
    uint64_t used = machine_memory_used_frames(&f->mm), room = p2m_swap_free(&f->m);
    assert_int_equal(swap_out(f, a), P2M_SWAP_OUT);
    assert_int_equal(p2m_state_of(&f->m, frame_of(a)), P2M_SWAPPED);
    assert_int_equal(f->m.backed, 0);
    assert_int_equal(f->m.swapped, 1);
    assert_int_equal(f->m.swap_outs, 1);
    assert_int_equal(p2m_swap_free(&f->m), room - 1);
    /* Its machine frame went back to the pool. */
    assert_int_equal(machine_memory_used_frames(&f->mm), used - 1);

    assert_true(pattern_intact(f, a, 7));
    assert_int_equal(p2m_state_of(&f->m, frame_of(a)), P2M_PRIVATE);
    assert_int_equal(f->m.backed, 1);
    assert_int_equal(f->m.swapped, 0);
    assert_int_equal(f->m.swap_ins, 1);
    assert_int_equal(p2m_swap_free(&f->m), room); /* the slot is free again */
    assert_false(f->m.failed);
}

static void test_a_write_after_protect_cancels_the_swap(void **state) {
    struct fixture *f = *state;
    uint64_t a = RAM_BASE + 4096 * 3;
    write_pattern(f, a, 3);
    uint64_t mfn, room = p2m_swap_free(&f->m);
    assert_true(p2m_protect(&f->m, frame_of(a), &mfn));
    uint32_t x = 0xdeadbeef;
    assert_true(p2m_write(&f->m, a + 64, &x, sizeof x)); /* while the frame is being copied out */
    assert_int_equal(p2m_swap_out(&f->m, frame_of(a), mfn), P2M_SWAP_CANCELLED);
    assert_int_equal(p2m_state_of(&f->m, frame_of(a)), P2M_PRIVATE);
    assert_int_equal(p2m_swap_free(&f->m), room);
    uint32_t y = 0;
    assert_true(p2m_read(&f->m, a + 64, &y, sizeof y));
    assert_int_equal(y, 0xdeadbeef); /* the write is not lost */
}

/* The swap file's descriptor: the only open file in the test's directory. */
static int swap_fd(struct fixture *f) {
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int found = -1;
    for (struct dirent *de; (de = readdir(d));) {
        char link[300], target[512];
        snprintf(link, sizeof link, "/proc/self/fd/%s", de->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = 0;
        if (strncmp(target, f->dir, strlen(f->dir)) == 0) found = atoi(de->d_name);
    }
    closedir(d);
    assert_true(found >= 0);
    return found;
}

static void test_a_corrupted_swap_file_is_caught_not_returned(void **state) {
    struct fixture *f = *state;
    uint64_t a = RAM_BASE + 4096 * 11;
    write_pattern(f, a, 11);
    assert_int_equal(swap_out(f, a), P2M_SWAP_OUT);
    /* Something else on the host scribbles over the file. */
    uint8_t junk[16];
    memset(junk, 0xa5, sizeof junk);
    assert_int_equal(pwrite(swap_fd(f), junk, sizeof junk, 100), (ssize_t)sizeof junk);
    uint8_t b;
    assert_false(p2m_read(&f->m, a, &b, 1));
    assert_true(f->m.failed);
    assert_non_null(strstr(f->m.failure, "checksum"));
    assert_int_equal(p2m_state_of(&f->m, frame_of(a)), P2M_SWAPPED);
}

static void test_a_full_swap_file_leaves_frames_in_memory(void **state) {
    (void)state;
    struct fixture *f = make(8 * MiB, 64 * MiB, 4096); /* one slot */
    assert_non_null(f);
    uint64_t a = RAM_BASE, b = RAM_BASE + 4096;
    write_pattern(f, a, 1);
    write_pattern(f, b, 2);
    assert_int_equal(swap_out(f, a), P2M_SWAP_OUT);
    assert_int_equal(p2m_swap_free(&f->m), 0);
    uint64_t mfn;
    assert_true(p2m_protect(&f->m, frame_of(b), &mfn));
    assert_int_equal(p2m_swap_out(&f->m, frame_of(b), mfn), P2M_SWAP_FULL);
    p2m_unprotect(&f->m, frame_of(b), mfn);
    assert_int_equal(p2m_state_of(&f->m, frame_of(b)), P2M_PRIVATE);
    assert_true(pattern_intact(f, a, 1));
    assert_true(pattern_intact(f, b, 2));
    void *s = f;
    teardown(&s);
}

static void test_dropping_a_swapped_frame_frees_its_slot(void **state) {
    struct fixture *f = *state;
    uint64_t a = RAM_BASE + 4096 * 20;
    write_pattern(f, a, 20);
    uint64_t room = p2m_swap_free(&f->m);
    assert_int_equal(swap_out(f, a), P2M_SWAP_OUT);
    /* The balloon takes it: it reads as zeros, and no slot is held. */
    assert_int_equal(p2m_drop_range(&f->m, a, 4096), 1);
    assert_int_equal(p2m_state_of(&f->m, frame_of(a)), P2M_ZERO);
    assert_int_equal(f->m.swapped, 0);
    assert_int_equal(p2m_swap_free(&f->m), room);
    uint32_t w = 1;
    assert_true(p2m_read(&f->m, a + 400, &w, sizeof w));
    assert_int_equal(w, 0);
}

static void test_swap_in_waits_for_memory_and_loses_nothing(void **state) {
    struct fixture *f = *state;
    uint64_t a = RAM_BASE;
    write_pattern(f, a, 99);
    assert_int_equal(swap_out(f, a), P2M_SWAP_OUT);
    /* Other frames take every machine frame left. */
    uint64_t gpa = RAM_BASE + 4096;
    while (machine_memory_free_frames(&f->mm) > 0) {
        write_pattern(f, gpa, (uint32_t)(gpa >> 12));
        gpa += 4096;
    }
    f->m.exhausted = false;
    uint8_t b;
    assert_false(p2m_read(&f->m, a, &b, 1)); /* no frame to read it into */
    assert_true(f->m.exhausted);
    assert_false(f->m.failed);
    assert_int_equal(p2m_state_of(&f->m, frame_of(a)), P2M_SWAPPED);
    /* Once a frame is free, it comes back. */
    assert_int_equal(p2m_drop_range(&f->m, RAM_BASE + 4096, 4096), 1);
    assert_true(pattern_intact(f, a, 99));
}

/* Swap-ins read the file without the p2m's lock: harts reading the same
 * frames back at once while the reclaimer swaps them out again (slots
 * freed and reused under the readers) must always get the frame's own
 * contents, and nothing may be declared lost. */
#define RACE_FRAMES 16
struct swap_race {
    struct fixture *f;
    volatile bool stop;
    unsigned bad, reads;
};

static void *race_reader(void *arg) {
    struct swap_race *r = arg;
    unsigned reads = 0;
    for (unsigned i = 0; !r->stop; i++) {
        uint64_t k = i % RACE_FRAMES;
        if (!pattern_intact(r->f, RAM_BASE + 4096 * k, 1000 + (uint32_t)k)) __atomic_fetch_add(&r->bad, 1, __ATOMIC_RELAXED);
        reads++;
    }
    __atomic_fetch_add(&r->reads, reads, __ATOMIC_RELAXED);
    return NULL;
}

static void test_concurrent_swap_ins_lose_nothing(void **state) {
    struct fixture *f = *state;
    for (uint64_t k = 0; k < RACE_FRAMES; k++) write_pattern(f, RAM_BASE + 4096 * k, 1000 + (uint32_t)k);
    struct swap_race r = {.f = f};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&t[i], NULL, race_reader, &r), 0);
    unsigned outs = 0;
    time_t give_up = time(NULL) + 20;
    for (unsigned round = 0; outs < 1000 && time(NULL) < give_up; round++) {
        uint64_t k = (round * 7) % RACE_FRAMES, mfn;
        if (p2m_state_of(&f->m, k) != P2M_PRIVATE || !p2m_protect(&f->m, k, &mfn)) {
            sched_yield();
            continue;
        }
        outs += p2m_swap_out(&f->m, k, mfn) == P2M_SWAP_OUT;
    }
    r.stop = true;
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    assert_int_equal(r.bad, 0);
    assert_false(f->m.failed);
    assert_int_equal(outs, 1000);
    assert_true(f->m.swap_ins > 500);
    for (uint64_t k = 0; k < RACE_FRAMES; k++) assert_true(pattern_intact(f, RAM_BASE + 4096 * k, 1000 + (uint32_t)k));
    assert_int_equal(f->m.swapped, 0);
}

static void test_reclamation_states_follow_esx_thresholds(void **state) {
    (void)state;
    assert_int_equal(reclaim_state_for(600, 10000), RECLAIM_HIGH);
    assert_int_equal(reclaim_state_for(599, 10000), RECLAIM_SOFT);
    assert_int_equal(reclaim_state_for(400, 10000), RECLAIM_SOFT);
    assert_int_equal(reclaim_state_for(399, 10000), RECLAIM_HARD);
    assert_int_equal(reclaim_state_for(200, 10000), RECLAIM_HARD);
    assert_int_equal(reclaim_state_for(199, 10000), RECLAIM_LOW);
    assert_int_equal(reclaim_state_for(0, 10000), RECLAIM_LOW);
    assert_string_equal(reclaim_state_name(RECLAIM_HARD), "hard");
}

static void test_the_reclaimer_swaps_until_memory_is_no_longer_short(void **state) {
    struct fixture *f = *state;
    /* Fill all but 1% of machine memory with distinct frames. */
    uint64_t total = f->mm.nframes, n = 0;
    while (machine_memory_free_frames(&f->mm) > total / 100) {
        write_pattern(f, RAM_BASE + n * 4096, (uint32_t)n);
        n++;
    }
    struct reclaim *r = reclaim_create(&f->mm);
    assert_non_null(r);
    struct reclaim_vm vm = {.id = 1, .mem = &f->m};
    assert_true(reclaim_tick(r, &vm, 1)); /* a batch starts */
    struct reclaim_stats st;
    reclaim_get_stats(r, &st);
    assert_int_equal(st.state, RECLAIM_LOW);
    /* Two grace periods (they pass at once without harts), then the commit. */
    for (int i = 0; i < 4 && reclaim_tick(r, &vm, 1); i++) {
    }
    reclaim_get_stats(r, &st);
    assert_true(st.swapped_out > 0);
    assert_int_equal(st.errors, 0);
    assert_int_equal(f->m.swapped, st.swapped_out);
    /* Up to the soft threshold: no longer short. */
    assert_true(reclaim_state_for(machine_memory_free_frames(&f->mm), total) <= RECLAIM_SOFT);
    /* Nothing more to do now. */
    assert_false(reclaim_tick(r, &vm, 1));
    reclaim_destroy(r);
    /* Every frame still holds what was written. */
    for (uint64_t i = 0; i < n; i++) assert_true(pattern_intact(f, RAM_BASE + i * 4096, (uint32_t)i));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_swapped_frame_comes_back_intact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_write_after_protect_cancels_the_swap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_corrupted_swap_file_is_caught_not_returned, setup, teardown),
        cmocka_unit_test(test_a_full_swap_file_leaves_frames_in_memory),
        cmocka_unit_test_setup_teardown(test_dropping_a_swapped_frame_frees_its_slot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swap_in_waits_for_memory_and_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_swap_ins_lose_nothing, setup, teardown),
        cmocka_unit_test(test_reclamation_states_follow_esx_thresholds),
        cmocka_unit_test_setup_teardown(test_the_reclaimer_swaps_until_memory_is_no_longer_short, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
