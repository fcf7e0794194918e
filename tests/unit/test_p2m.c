/* Unit tests of the p2m and the machine-memory pool: demand-zero backing,
 * accounting, exhaustion, frames returned on destroy, shootdown on change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "monitor/machine_memory.h"
#include "vm/p2m.h"

#define RAM_BASE 0x80000000ull
#define MiB (1024ull * 1024)

struct shootdowns {
    unsigned calls;
    uint64_t gpa;
    const uint8_t *old;
};

static void record_shootdown(void *ctx, uint64_t gpa, const uint8_t *old_host) {
    struct shootdowns *s = ctx;
    s->calls++;
    s->gpa = gpa;
    s->old = old_host;
}

struct fixture {
    struct machine_memory mm;
    struct frame_source fs;
    struct p2m m;
    struct shootdowns sd;
};

static int setup(void **state) {
    struct fixture *f = calloc(1, sizeof *f);
    if (!f || !machine_memory_init(&f->mm, 8 * MiB)) return -1;
    f->fs = machine_memory_source(&f->mm);
    if (!p2m_init(&f->m, RAM_BASE, 64 * MiB, &f->fs)) return -1;
    f->m.shootdown = record_shootdown;
    f->m.shootdown_ctx = &f->sd;
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

static void test_reads_of_unwritten_memory_are_zero_and_free(void **state) {
    struct fixture *f = *state;
    uint64_t free_before = machine_memory_free_frames(&f->mm);
    uint8_t buf[8192];
    memset(buf, 0xaa, sizeof buf);
    assert_true(p2m_read(&f->m, RAM_BASE + 4096 * 10 + 100, buf, sizeof buf));
    for (size_t i = 0; i < sizeof buf; i++) assert_int_equal(buf[i], 0);
    uint8_t *a = p2m_frame(&f->m, RAM_BASE, false, NULL), *b = p2m_frame(&f->m, RAM_BASE + 32 * MiB, false, NULL);
    assert_ptr_equal(a, b); /* both the shared zero frame */
    assert_int_equal(f->m.backed, 0);
    assert_int_equal(machine_memory_free_frames(&f->mm), free_before);
    assert_int_equal(f->sd.calls, 0);
}

static void test_first_write_backs_one_frame(void **state) {
    struct fixture *f = *state;
    uint64_t free_before = machine_memory_free_frames(&f->mm);
    const uint8_t *zero = p2m_frame(&f->m, RAM_BASE + 5 * 4096, false, NULL);
    uint32_t v = 0x12345678;
    assert_true(p2m_write(&f->m, RAM_BASE + 5 * 4096 + 12, &v, sizeof v));
    assert_int_equal(f->m.backed, 1);
    assert_int_equal(machine_memory_free_frames(&f->mm), free_before - 1);
    /* The translations to the zero frame were shot down for that guest frame. */
    assert_int_equal(f->sd.calls, 1);
    assert_int_equal(f->sd.gpa, RAM_BASE + 5 * 4096);
    assert_ptr_equal(f->sd.old, zero);
    uint8_t *host = p2m_frame(&f->m, RAM_BASE + 5 * 4096, false, NULL);
    assert_ptr_not_equal(host, zero);
    uint32_t back;
    memcpy(&back, host + 12, 4);
    assert_int_equal(back, 0x12345678);
    assert_int_equal(host[0], 0); /* the rest of a new frame is zero */
    /* A second write to the same frame allocates nothing. */
    assert_true(p2m_write(&f->m, RAM_BASE + 5 * 4096 + 100, &v, sizeof v));
    assert_int_equal(f->m.backed, 1);
    assert_int_equal(f->sd.calls, 1);
    /* The zero frame itself is still all zeros. */
    for (int i = 0; i < 4096; i++) assert_int_equal(zero[i], 0);
}

static void test_write_spanning_frames(void **state) {
    struct fixture *f = *state;
    uint8_t buf[3 * 4096];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 7);
    assert_true(p2m_write(&f->m, RAM_BASE + 4096 * 20 + 2048, buf, sizeof buf));
    assert_int_equal(f->m.backed, 4);
    uint8_t back[sizeof buf];
    assert_true(p2m_read(&f->m, RAM_BASE + 4096 * 20 + 2048, back, sizeof back));
    assert_memory_equal(buf, back, sizeof buf);
}

static void test_zero_fill_keeps_frames_unbacked(void **state) {
    struct fixture *f = *state;
    assert_true(p2m_fill(&f->m, RAM_BASE + MiB, 0, 4 * MiB));
    assert_int_equal(f->m.backed, 0);
    assert_true(p2m_fill(&f->m, RAM_BASE + MiB, 0x5a, 4096));
    assert_int_equal(f->m.backed, 1);
    uint8_t b;
    assert_true(p2m_read(&f->m, RAM_BASE + MiB + 4095, &b, 1));
    assert_int_equal(b, 0x5a);
}

static void test_out_of_range_access_is_refused(void **state) {
    struct fixture *f = *state;
    uint8_t b = 1;
    assert_false(p2m_write(&f->m, RAM_BASE - 1, &b, 1));
    assert_false(p2m_write(&f->m, RAM_BASE + 64 * MiB - 1, &b, 2));
    assert_false(p2m_read(&f->m, RAM_BASE + 64 * MiB, &b, 1));
    assert_false(p2m_write(&f->m, UINT64_MAX, &b, 1));
    assert_null(p2m_frame(&f->m, RAM_BASE + 64 * MiB, true, NULL));
    assert_int_equal(f->m.backed, 0);
}

static void test_exhaustion_is_reported_not_fatal(void **state) {
    struct fixture *f = *state;
    /* The pool holds 8 MiB (one frame is the zero frame): 64 MiB of writes cannot all be backed. */
    uint8_t page[4096];
    memset(page, 1, sizeof page);
    uint64_t written = 0;
    while (p2m_write(&f->m, RAM_BASE + written, page, sizeof page)) written += sizeof page;
    assert_true(f->m.exhausted);
    assert_int_equal(written, 8 * MiB - 4096);
    assert_int_equal(machine_memory_free_frames(&f->mm), 0);
    /* Reads still work, and earlier contents are intact. */
    uint8_t b;
    assert_true(p2m_read(&f->m, RAM_BASE + 4096 * 3, &b, 1));
    assert_int_equal(b, 1);
    assert_true(p2m_read(&f->m, RAM_BASE + 60 * MiB, &b, 1));
    assert_int_equal(b, 0);
}

static void test_destroy_returns_every_frame(void **state) {
    struct fixture *f = *state;
    uint64_t free_before = machine_memory_free_frames(&f->mm);
    uint8_t page[4096] = {1};
    for (int i = 0; i < 100; i++) assert_true(p2m_write(&f->m, RAM_BASE + (uint64_t)i * 8192, page, sizeof page));
    assert_int_equal(machine_memory_free_frames(&f->mm), free_before - 100);
    p2m_destroy(&f->m);
    assert_int_equal(machine_memory_free_frames(&f->mm), free_before);
    /* A reused frame comes back zeroed. */
    assert_true(p2m_init(&f->m, RAM_BASE, 64 * MiB, &f->fs));
    assert_true(p2m_write(&f->m, RAM_BASE, page, 1));
    const uint8_t *h = p2m_frame(&f->m, RAM_BASE, false, NULL);
    assert_int_equal(h[0], 1);
    for (int i = 1; i < 4096; i++) assert_int_equal(h[i], 0);
}

static void test_two_vms_never_share_a_frame(void **state) {
    struct fixture *f = *state;
    struct p2m other;
    assert_true(p2m_init(&other, RAM_BASE, 64 * MiB, &f->fs));
    uint8_t a = 0x11, b = 0x22;
    assert_true(p2m_write(&f->m, RAM_BASE, &a, 1));
    assert_true(p2m_write(&other, RAM_BASE, &b, 1));
    assert_ptr_not_equal(p2m_frame(&f->m, RAM_BASE, false, NULL), p2m_frame(&other, RAM_BASE, false, NULL));
    uint8_t ra, rb;
    assert_true(p2m_read(&f->m, RAM_BASE, &ra, 1));
    assert_true(p2m_read(&other, RAM_BASE, &rb, 1));
    assert_int_equal(ra, 0x11);
    assert_int_equal(rb, 0x22);
    p2m_destroy(&other);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reads_of_unwritten_memory_are_zero_and_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_write_backs_one_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_spanning_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_fill_keeps_frames_unbacked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_range_access_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exhaustion_is_reported_not_fatal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_returns_every_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_vms_never_share_a_frame, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
