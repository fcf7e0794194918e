/* Unit tests of the p2m and the machine-memory pool: demand-zero backing,
 * accounting, exhaustion, frames returned on destroy, flushes on change,
 * dropping frames and the safe points that must pass before they are freed,
 * and the page-sharing states (protect, merge, copy-on-write). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "hart/code_cache.h"
#include "monitor/machine_memory.h"
#include "vm/p2m.h"

#define RAM_BASE 0x80000000ull
#define MiB (1024ull * 1024)

struct shootdowns {
    unsigned flushes;
};

static void record_flush(void *ctx) {
    struct shootdowns *s = ctx;
    s->flushes++;
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
    f->m.flush = record_flush;
    f->m.flush_ctx = &f->sd;
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
    assert_ptr_equal(a, p2m_zero_frame(&f->m));
}

static void test_first_write_backs_one_frame(void **state) {
    struct fixture *f = *state;
    uint64_t free_before = machine_memory_free_frames(&f->mm);
    const uint8_t *zero = p2m_frame(&f->m, RAM_BASE + 5 * 4096, false, NULL);
    uint32_t v = 0x12345678;
    assert_true(p2m_write(&f->m, RAM_BASE + 5 * 4096 + 12, &v, sizeof v));
    assert_int_equal(f->m.backed, 1);
    assert_int_equal(machine_memory_free_frames(&f->mm), free_before - 1);
    /* Nothing to shoot down: no translation to the zero frame is cached
     * (struct phys_page), and backing a frame flushes no TLB. */
    assert_int_equal(f->sd.flushes, 0);
    uint8_t *host = p2m_frame(&f->m, RAM_BASE + 5 * 4096, false, NULL);
    assert_ptr_not_equal(host, zero);
    uint32_t back;
    memcpy(&back, host + 12, 4);
    assert_int_equal(back, 0x12345678);
    assert_int_equal(host[0], 0); /* the rest of a new frame is zero */
    /* A second write to the same frame allocates nothing. */
    assert_true(p2m_write(&f->m, RAM_BASE + 5 * 4096 + 100, &v, sizeof v));
    assert_int_equal(f->m.backed, 1);
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


/* ---- dropping frames ---- */

static void write_frames(struct p2m *m, uint64_t gpa, unsigned n, uint8_t byte) {
    uint8_t page[4096];
    memset(page, byte, sizeof page);
    for (unsigned i = 0; i < n; i++) assert_true(p2m_write(m, gpa + (uint64_t)i * 4096, page, sizeof page));
}

static void test_drop_range_frees_frames_and_reads_zero(void **state) {
    struct fixture *f = *state;
    uint64_t free0 = machine_memory_free_frames(&f->mm);
    write_frames(&f->m, RAM_BASE + MiB, 64, 0x77);
    assert_int_equal(f->m.backed, 64);
    assert_int_equal(machine_memory_free_frames(&f->mm), free0 - 64);
    /* No harts: the frames go back at once, after two flushes of the (absent) TLBs. */
    assert_int_equal(p2m_drop_range(&f->m, RAM_BASE + MiB, 32 * 4096), 32);
    assert_int_equal(f->m.backed, 32);
    assert_int_equal(p2m_releasing(&f->m), 0);
    assert_int_equal(machine_memory_free_frames(&f->mm), free0 - 32);
    assert_int_equal(f->sd.flushes, 2);
    uint8_t b = 1;
    assert_true(p2m_read(&f->m, RAM_BASE + MiB + 5 * 4096 + 7, &b, 1));
    assert_int_equal(b, 0);
    assert_true(p2m_read(&f->m, RAM_BASE + MiB + 40 * 4096, &b, 1));
    assert_int_equal(b, 0x77);
    /* Dropped frames read as the shared zero frame, and are backed anew (zeroed) when written. */
    assert_ptr_equal(p2m_frame(&f->m, RAM_BASE + MiB, false, NULL), p2m_frame(&f->m, RAM_BASE + 60 * MiB, false, NULL));
    b = 9;
    assert_true(p2m_write(&f->m, RAM_BASE + MiB + 100, &b, 1));
    assert_int_equal(f->m.backed, 33);
    const uint8_t *h = p2m_frame(&f->m, RAM_BASE + MiB, false, NULL);
    assert_int_equal(h[100], 9);
    assert_int_equal(h[0], 0);
    assert_int_equal(h[4095], 0);
    /* Dropping what is not backed changes nothing and flushes nothing. */
    unsigned flushes = f->sd.flushes;
    assert_int_equal(p2m_drop_range(&f->m, RAM_BASE + 8 * MiB, 8 * MiB), 0);
    assert_int_equal(f->sd.flushes, flushes);
}

static void test_drop_range_takes_whole_frames_inside_ram(void **state) {
    struct fixture *f = *state;
    write_frames(&f->m, RAM_BASE, 8, 1);
    write_frames(&f->m, RAM_BASE + 64 * MiB - 4 * 4096, 4, 2);
    /* Partial frames at either end stay. */
    assert_int_equal(p2m_drop_range(&f->m, RAM_BASE + 100, 3 * 4096), 2);
    assert_int_equal(f->m.backed, 10);
    uint8_t b;
    assert_true(p2m_read(&f->m, RAM_BASE, &b, 1));
    assert_int_equal(b, 1);
    assert_true(p2m_read(&f->m, RAM_BASE + 3 * 4096, &b, 1));
    assert_int_equal(b, 1);
    /* Ranges running off either end of RAM are clipped; ones outside do nothing. */
    assert_int_equal(p2m_drop_range(&f->m, RAM_BASE - 4096, 2 * 4096), 1);
    assert_int_equal(p2m_drop_range(&f->m, RAM_BASE + 64 * MiB - 2 * 4096, UINT64_MAX), 2);
    assert_int_equal(p2m_drop_range(&f->m, 0, RAM_BASE), 0);
    assert_int_equal(p2m_drop_range(&f->m, RAM_BASE + 64 * MiB, 1ull << 40), 0);
    assert_int_equal(p2m_drop_range(&f->m, UINT64_MAX - 4095, 4096), 0);
    assert_int_equal(p2m_drop_range(&f->m, RAM_BASE + 4 * 4096, 0), 0);
    assert_int_equal(f->m.backed, 7); /* frames 3..7 and two at the top */
}

static void test_drop_frames_skips_addresses_outside_ram(void **state) {
    struct fixture *f = *state;
    uint64_t free0 = machine_memory_free_frames(&f->mm);
    write_frames(&f->m, RAM_BASE + 2 * MiB, 4, 3);
    uint64_t gpas[] = {RAM_BASE + 2 * MiB + 123, 0, UINT64_MAX, RAM_BASE - 4096, RAM_BASE + 64 * MiB,
                       RAM_BASE + 2 * MiB + 2 * 4096, RAM_BASE + 2 * MiB + 2 * 4096, RAM_BASE + 30 * MiB};
    assert_int_equal(p2m_drop_frames(&f->m, gpas, sizeof gpas / sizeof *gpas), 2);
    assert_int_equal(f->m.backed, 2);
    assert_int_equal(machine_memory_free_frames(&f->mm), free0 - 2);
    /* Many frames at once go in several batches. */
    write_frames(&f->m, RAM_BASE + 4 * MiB, 1500, 4);
    uint64_t *many = malloc(1500 * sizeof *many);
    for (unsigned i = 0; i < 1500; i++) many[i] = RAM_BASE + 4 * MiB + (uint64_t)i * 4096;
    assert_int_equal(p2m_drop_frames(&f->m, many, 1500), 1500);
    free(many);
    assert_int_equal(f->m.backed, 2);
    assert_int_equal(machine_memory_free_frames(&f->mm), free0 - 2);
}

/* Host pages wholly inside cp's slots that are resident. */
static unsigned resident_slot_pages(const struct code_page *cp) {
    uintptr_t lo = ((uintptr_t)&cp->slot[0] + 4095) & ~(uintptr_t)4095;
    uintptr_t hi = (uintptr_t)&cp->slot[CODE_SLOTS] & ~(uintptr_t)4095;
    unsigned char vec[16];
    assert_true(hi > lo && (hi - lo) / 4096 <= sizeof vec);
    assert_int_equal(mincore((void *)lo, hi - lo, vec), 0);
    unsigned n = 0;
    for (size_t i = 0; i < (hi - lo) / 4096; i++) n += vec[i] & 1;
    return n;
}

/* A translator's map: its pages are slotless, so their slots are never
 * touched (not resident), decoding and invalidating use the bitmap; an
 * interpreter's map writes op_decode into every slot. */
static void test_slotless_code_pages_cost_only_their_header(void **state) {
    (void)state;
    struct code_map lazy, eager;
    assert_true(code_map_init(&lazy, 8));
    assert_true(code_map_init(&eager, 8));
    code_map_make_slotless(&lazy);
    bool created;
    struct code_page *cp = code_page_install(&lazy, code_map_slot(&lazy, 3), RAM_BASE + 3 * 4096, &created);
    assert_non_null(cp);
    assert_true(created);
    assert_true(cp->slotless);
    assert_ptr_equal(code_page_install(&lazy, code_map_slot(&lazy, 3), RAM_BASE + 3 * 4096, &created), cp);
    assert_false(created);
    assert_int_equal(resident_slot_pages(cp), 0);
    /* Parcel 700 decoded (as code_page_decode marks it): a store over it
     * resets it and bumps the generation; one elsewhere does not. */
    cp->decoded[700 / 64] |= 1ull << (700 % 64);
    cp->live = 1;
    uint32_t gen = cp->gen;
    assert_int_equal(code_page_invalidate(cp, 100, 8), 1);
    assert_int_equal(cp->gen, gen);
    assert_int_equal(code_page_invalidate(cp, 1400, 2), 0);
    assert_int_equal(cp->gen, gen + 1);
    assert_int_equal(cp->decoded[700 / 64], 0);
    assert_int_equal(code_page_invalidate(cp, 0, 4096), 0);
    assert_int_equal(resident_slot_pages(cp), 0);

    struct code_page *ep = code_page_install(&eager, code_map_slot(&eager, 3), RAM_BASE + 3 * 4096, &created);
    assert_non_null(ep);
    assert_false(ep->slotless);
    assert_ptr_equal((void *)ep->slot[700].fn, (void *)op_decode);
    assert_true(resident_slot_pages(ep) >= 10);
    code_map_destroy(&lazy);
    code_map_destroy(&eager);
}

static void test_drop_invalidates_decoded_code(void **state) {
    struct fixture *f = *state;
    write_frames(&f->m, RAM_BASE, 1, 0x13);
    struct code_page **slot;
    assert_non_null(p2m_frame(&f->m, RAM_BASE, false, &slot));
    bool created;
    assert_non_null(code_page_install(&f->m.code, slot, RAM_BASE, &created));
    (*slot)->slot[10].fn = op_page_end; /* stands for a decoded instruction */
    assert_int_equal(p2m_drop_range(&f->m, RAM_BASE, 4096), 1);
    assert_ptr_equal((void *)(*slot)->slot[10].fn, (void *)op_decode);
}

/* A frame dropped while a hart may be using it is not handed out again
 * before that hart has left hart_run twice (once to finish lookups made
 * before the drop, once more after the second TLB flush). */
static void test_dropped_frame_waits_for_running_harts(void **state) {
    struct fixture *f = *state;
    f->m.ncpus = 2;
    uint64_t free0 = machine_memory_free_frames(&f->mm);
    write_frames(&f->m, RAM_BASE, 1, 0xee);
    uint8_t *old = p2m_frame(&f->m, RAM_BASE, false, NULL);
    p2m_turn_begin(&f->m, 0);
    p2m_turn_begin(&f->m, 1);
    assert_int_equal(p2m_drop_range(&f->m, RAM_BASE, 4096), 1);
    assert_int_equal(f->m.backed, 0);
    assert_int_equal(p2m_releasing(&f->m), 1);
    assert_int_equal(machine_memory_free_frames(&f->mm), free0 - 1);
    assert_int_equal(f->sd.flushes, 1);

    /* Another VM allocating now cannot get the frame: the pool does not have it. */
    struct p2m other;
    assert_true(p2m_init(&other, RAM_BASE, 64 * MiB, &f->fs));
    write_frames(&other, RAM_BASE, 16, 0x55);
    for (unsigned i = 0; i < 16; i++) assert_ptr_not_equal(p2m_frame(&other, RAM_BASE + i * 4096ull, false, NULL), old);
    assert_int_equal(old[0], 0xee); /* a late access by hart 0 or 1 still lands in this guest's own frame */

    p2m_turn_end(&f->m, 0);      /* hart 1 is still in the turn it had at the drop */
    p2m_reclaim(&f->m);
    assert_int_equal(p2m_releasing(&f->m), 1);
    assert_int_equal(f->sd.flushes, 1);
    p2m_turn_begin(&f->m, 0);    /* a new turn of hart 0 sees the new entry */
    p2m_turn_end(&f->m, 1);      /* phase 1 over: flush again, but hart 0 is inside now */
    assert_int_equal(f->sd.flushes, 2);
    assert_int_equal(p2m_releasing(&f->m), 1);
    assert_int_equal(machine_memory_free_frames(&f->mm), free0 - 1 - 16);
    p2m_turn_begin(&f->m, 1);    /* hart 1 entering again does not hold it up */
    p2m_turn_end(&f->m, 0);
    assert_int_equal(p2m_releasing(&f->m), 0);
    assert_int_equal(machine_memory_free_frames(&f->mm), free0 - 16);
    p2m_turn_end(&f->m, 1);
    p2m_destroy(&other);
}

static void test_destroy_frees_frames_still_waiting(void **state) {
    struct fixture *f = *state;
    f->m.ncpus = 1;
    uint64_t free0 = machine_memory_free_frames(&f->mm);
    write_frames(&f->m, RAM_BASE, 10, 1);
    p2m_turn_begin(&f->m, 0);
    assert_int_equal(p2m_drop_range(&f->m, RAM_BASE, 5 * 4096), 5);
    assert_int_equal(p2m_releasing(&f->m), 5);
    p2m_destroy(&f->m);
    assert_int_equal(machine_memory_free_frames(&f->mm), free0);
    assert_true(p2m_init(&f->m, RAM_BASE, 64 * MiB, &f->fs));
}


/* ---- page sharing ---- */

static uint64_t frame_of(uint64_t gpa) { return (gpa - RAM_BASE) >> 12; }

static void fill_frame(struct fixture *f, uint64_t gpa, uint8_t byte) { assert_true(p2m_fill(&f->m, gpa, byte, 4096)); }

static uint8_t read_byte(struct fixture *f, uint64_t gpa) {
    uint8_t b = 0;
    assert_true(p2m_read(&f->m, gpa, &b, 1));
    return b;
}

/* Makes frame A shared in place and merges frame B into it. */
static void share_two(struct fixture *f, uint64_t a, uint64_t b) {
    uint64_t ma, mb;
    assert_true(p2m_protect(&f->m, frame_of(a), &ma));
    assert_true(p2m_protect(&f->m, frame_of(b), &mb));
    assert_int_equal(p2m_share_in_place(&f->m, frame_of(a), ma), P2M_MERGED);
    assert_int_equal(p2m_merge(&f->m, frame_of(b), mb, false, ma), P2M_MERGED);
}

static void test_equal_frames_merge_into_one(void **state) {
    struct fixture *f = *state;
    uint64_t a = RAM_BASE + 4096 * 3, b = RAM_BASE + 4096 * 9;
    fill_frame(f, a, 0x5a);
    fill_frame(f, b, 0x5a);
    uint64_t used = machine_memory_used_frames(&f->mm);
    share_two(f, a, b);
    assert_int_equal(p2m_state_of(&f->m, frame_of(a)), P2M_SHARED);
    assert_int_equal(p2m_state_of(&f->m, frame_of(b)), P2M_SHARED);
    assert_int_equal(f->m.shared, 2);
    assert_int_equal(f->m.backed, 0);
    /* One machine frame maps both; the other went back to the pool. */
    assert_ptr_equal(p2m_frame(&f->m, a, false, NULL), p2m_frame(&f->m, b, false, NULL));
    assert_int_equal(machine_memory_used_frames(&f->mm), used - 1);
    assert_int_equal(read_byte(f, b + 100), 0x5a);
}

static void test_write_to_shared_frame_copies_it_for_that_frame_only(void **state) {
    struct fixture *f = *state;
    uint64_t a = RAM_BASE + 4096 * 3, b = RAM_BASE + 4096 * 9;
    fill_frame(f, a, 0x5a);
    fill_frame(f, b, 0x5a);
    share_two(f, a, b);
    unsigned flushes = f->sd.flushes;
    uint64_t gen = f->m.remap_gen;
    uint8_t x = 0x77;
    assert_true(p2m_write(&f->m, b + 10, &x, 1));
    assert_int_equal(read_byte(f, b + 10), 0x77);
    assert_int_equal(read_byte(f, b + 11), 0x5a); /* the rest was copied */
    assert_int_equal(read_byte(f, a + 10), 0x5a); /* the other mapping is untouched */
    assert_int_equal(p2m_state_of(&f->m, frame_of(b)), P2M_PRIVATE);
    assert_int_equal(p2m_state_of(&f->m, frame_of(a)), P2M_SHARED);
    assert_int_equal(f->m.cow_breaks, 1);
    assert_int_equal(f->m.shared, 1);
    assert_int_equal(f->m.backed, 1);
    /* Harts were told that a frame moved. */
    assert_true(f->sd.flushes > flushes);
    assert_true(f->m.remap_gen > gen);
    /* The last mapper's write breaks too; the shared frame's memory goes back. */
    uint64_t used = machine_memory_used_frames(&f->mm);
    assert_true(p2m_write(&f->m, a, &x, 1));
    assert_int_equal(machine_memory_used_frames(&f->mm), used); /* one allocated, one freed */
    assert_int_equal(f->m.shared, 0);
}

static void test_write_after_protect_cancels_the_merge(void **state) {
    struct fixture *f = *state;
    uint64_t a = RAM_BASE + 4096 * 3, b = RAM_BASE + 4096 * 9;
    fill_frame(f, a, 0x5a);
    fill_frame(f, b, 0x5a);
    uint64_t ma, mb;
    assert_true(p2m_protect(&f->m, frame_of(a), &ma));
    assert_true(p2m_protect(&f->m, frame_of(b), &mb));
    assert_int_equal(p2m_share_in_place(&f->m, frame_of(a), ma), P2M_MERGED);
    /* The write goes into b's own frame and takes the protection away. */
    assert_ptr_equal(p2m_frame(&f->m, b, true, NULL), f->fs.base + (mb << 12));
    assert_int_equal(p2m_state_of(&f->m, frame_of(b)), P2M_PRIVATE);
    assert_int_equal(p2m_merge(&f->m, frame_of(b), mb, false, ma), P2M_CANCELLED);
    assert_int_equal(p2m_state_of(&f->m, frame_of(b)), P2M_PRIVATE);
}

static void test_different_contents_are_not_merged(void **state) {
    struct fixture *f = *state;
    uint64_t a = RAM_BASE + 4096 * 3, b = RAM_BASE + 4096 * 9;
    fill_frame(f, a, 0x5a);
    fill_frame(f, b, 0x5a);
    uint8_t x = 1;
    assert_true(p2m_write(&f->m, b + 4095, &x, 1)); /* differs in the last byte only */
    uint64_t ma, mb;
    assert_true(p2m_protect(&f->m, frame_of(a), &ma));
    assert_true(p2m_protect(&f->m, frame_of(b), &mb));
    assert_int_equal(p2m_share_in_place(&f->m, frame_of(a), ma), P2M_MERGED);
    assert_int_equal(p2m_merge(&f->m, frame_of(b), mb, false, ma), P2M_DIFFERENT);
    assert_int_equal(p2m_state_of(&f->m, frame_of(b)), P2M_PRIVATE);
    assert_int_equal(read_byte(f, b + 4095), 1);
}

static void test_zero_frame_goes_back_to_the_zero_frame(void **state) {
    struct fixture *f = *state;
    uint64_t a = RAM_BASE + 4096 * 5;
    fill_frame(f, a, 0x11);
    fill_frame(f, a, 0x00); /* backed, but all zeros again */
    assert_int_equal(f->m.backed, 1);
    uint64_t ma;
    assert_true(p2m_protect(&f->m, frame_of(a), &ma));
    assert_int_equal(p2m_merge(&f->m, frame_of(a), ma, true, 0), P2M_MERGED);
    assert_int_equal(p2m_state_of(&f->m, frame_of(a)), P2M_ZERO);
    assert_int_equal(f->m.backed, 0);
    assert_int_equal(f->m.merged_zero, 1);
    assert_int_equal(read_byte(f, a + 7), 0);
}

static void test_balloon_drop_of_shared_frame_releases_its_reference(void **state) {
    struct fixture *f = *state;
    uint64_t a = RAM_BASE + 4096 * 3, b = RAM_BASE + 4096 * 9;
    fill_frame(f, a, 0x5a);
    fill_frame(f, b, 0x5a);
    share_two(f, a, b);
    uint64_t mfn = (uint64_t)(p2m_frame(&f->m, a, false, NULL) - f->fs.base) >> 12;
    assert_int_equal(machine_memory_refs(&f->mm, mfn), 2);
    assert_int_equal(p2m_drop_range(&f->m, b, 4096), 1);
    assert_int_equal(machine_memory_refs(&f->mm, mfn), 1);
    assert_int_equal(f->m.shared, 1);
    assert_int_equal(read_byte(f, b), 0);
    assert_int_equal(read_byte(f, a), 0x5a);
}

/* Active-memory sampling: marked frames count as touched once accessed
 * after the flush, and only then. */
static void test_sampling_counts_the_frames_touched(void **state) {
    struct fixture *f = *state;
    for (unsigned i = 0; i < 200; i++) fill_frame(f, RAM_BASE + i * 4096ull, 1);
    unsigned flushes = f->sd.flushes;
    unsigned n = p2m_sample_begin(&f->m, 100, 42);
    assert_int_equal(n, 100); /* 200 backed frames of 16384: enough probes find 100 */
    assert_true(f->sd.flushes > flushes); /* cached translations would hide accesses */
    unsigned touched = 99;
    assert_int_equal(p2m_sample_end(&f->m, &touched), 100);
    assert_int_equal(touched, 0); /* nothing was accessed */

    assert_int_equal(p2m_sample_begin(&f->m, 100, 7), 100);
    for (unsigned i = 0; i < 200; i++) (void)read_byte(f, RAM_BASE + i * 4096ull); /* everything */
    for (unsigned i = 0; i < 200; i++) (void)read_byte(f, RAM_BASE + i * 4096ull + 8); /* counted once */
    assert_int_equal(p2m_sample_end(&f->m, &touched), 100);
    assert_int_equal(touched, 100);

    /* Half the frames: about half the sample, never more than was marked. */
    assert_int_equal(p2m_sample_begin(&f->m, 100, 9), 100);
    for (unsigned i = 0; i < 100; i++) (void)read_byte(f, RAM_BASE + i * 4096ull);
    assert_int_equal(p2m_sample_end(&f->m, &touched), 100);
    assert_in_range(touched, 25, 75);
    /* Unwritten frames are never sampled; nothing to sample, no estimate. */
    p2m_drop_range(&f->m, RAM_BASE, 200 * 4096ull);
    assert_int_equal(p2m_sample_begin(&f->m, 100, 3), 0);
    assert_int_equal(p2m_sample_end(&f->m, &touched), 0);
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
        cmocka_unit_test_setup_teardown(test_drop_range_frees_frames_and_reads_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_range_takes_whole_frames_inside_ram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_frames_skips_addresses_outside_ram, setup, teardown),
        cmocka_unit_test(test_slotless_code_pages_cost_only_their_header),
        cmocka_unit_test_setup_teardown(test_drop_invalidates_decoded_code, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dropped_frame_waits_for_running_harts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_frees_frames_still_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_equal_frames_merge_into_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_to_shared_frame_copies_it_for_that_frame_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_after_protect_cancels_the_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_different_contents_are_not_merged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_frame_goes_back_to_the_zero_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(test_balloon_drop_of_shared_frame_releases_its_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sampling_counts_the_frames_touched, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
