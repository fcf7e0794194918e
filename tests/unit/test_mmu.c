/* Unit tests of the MMU (src/mmu/walk.c, src/mmu/access.c): Sv39/Sv48 page
 * walks through mem_translate, then the software TLB through the
 * mem_load and mem_store accessors of hart/mem.h.
 *
 * Guest RAM is a plain buffer at 0x80000000 behind a fake phys_ops; the
 * page tables are built here by hand, following the privileged
 * specification's "Virtual-Memory System" chapter (PTE layout, the
 * address-translation algorithm, canonical addresses, superpage alignment,
 * SUM/MXR, A/D). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hart/code_cache.h"
#include "hart/exec.h"
#include "hart/hart.h"
#include "hart/mem.h"
#include "mmu/phys.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (4ull << 20)
#define RAM_FRAMES (RAM_SIZE >> 12)
#define PT_FIRST (RAM_BASE + 0x10000) /* page-table frames are allocated from here */
#define DATA (RAM_BASE + 0x300000)    /* data frames used by the tests */

#define V (1ull << 0)
#define R (1ull << 1)
#define W (1ull << 2)
#define X (1ull << 3)
#define U (1ull << 4)
#define G (1ull << 5)
#define A (1ull << 6)
#define D (1ull << 7)

#define GiB (1ull << 30)
#define MiB (1ull << 20)

/* ------------------------------------------------------------------ */
/* Fake guest-physical memory */

struct fixture {
    struct hart h;
    uint8_t *ram;
    struct code_map code; /* one slot per RAM frame */
    uint64_t next_frame;
    int code_added_calls;
    uint64_t code_added_gpa;
    int page_calls;
    int fatal_calls;
    uint64_t zero_gpa;       /* a frame the fake reports as the shared zero frame (for reads), or 0 */
};

static bool fake_page(void *owner, uint64_t gpa, bool write, struct phys_page *out) {
    struct fixture *f = owner;
    f->page_calls++;
    if (gpa < RAM_BASE || gpa >= RAM_BASE + RAM_SIZE) return false;
    uint64_t frame = (gpa - RAM_BASE) >> 12;
    out->host = f->ram + (frame << 12);
    out->code = code_map_slot(&f->code, frame);
    out->code_map = &f->code;
    out->zero = !write && f->zero_gpa && (gpa & ~0xfffull) == f->zero_gpa;
    return true;
}
static bool fake_mmio_read(void *owner, uint64_t gpa, unsigned size, uint64_t *val) {
    (void)owner; (void)gpa; (void)size; (void)val;
    return false;
}
static bool fake_mmio_write(void *owner, uint64_t gpa, unsigned size, uint64_t val) {
    (void)owner; (void)gpa; (void)size; (void)val;
    return false;
}
static void fake_code_added(void *owner, uint64_t gpa) {
    struct fixture *f = owner;
    f->code_added_calls++;
    f->code_added_gpa = gpa;
}

static const struct phys_ops phys = {
    .page = fake_page, .mmio_read = fake_mmio_read, .mmio_write = fake_mmio_write, .code_added = fake_code_added};

static uint64_t env_time(void *owner) { (void)owner; return 0; }
static void env_fatal(void *owner, struct hart *h, const char *why) {
    (void)h; (void)why;
    ((struct fixture *)owner)->fatal_calls++;
}
static void env_sbi(void *owner, struct hart *h) { (void)owner; (void)h; }
static const struct hart_env env = {.sbi_call = env_sbi, .time = env_time, .fatal = env_fatal};

static int setup(void **state) {
    struct fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    f->ram = aligned_alloc(4096, RAM_SIZE);
    if (!f->ram || !code_map_init(&f->code, RAM_FRAMES)) return -1;
    memset(f->ram, 0, RAM_SIZE);
    f->next_frame = PT_FIRST;
    hart_init(&f->h, 0, &phys, &env, f);
    f->h.mtvec = 0x1000; /* never equal to the test pc */
    f->h.pc = 0x2000;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    struct fixture *f = *state;
    code_map_destroy(&f->code);
    free(f->ram);
    free(f);
    return 0;
}

static uint8_t *host(struct fixture *f, uint64_t gpa) {
    assert_true(gpa >= RAM_BASE && gpa < RAM_BASE + RAM_SIZE);
    return f->ram + (gpa - RAM_BASE);
}

static uint64_t *pte_at(struct fixture *f, uint64_t gpa) { return (uint64_t *)host(f, gpa); }

static uint64_t alloc_frame(struct fixture *f) {
    uint64_t a = f->next_frame;
    f->next_frame += 4096;
    assert_true(a < DATA);
    memset(host(f, a), 0, 4096);
    return a;
}

static uint64_t make_pte(uint64_t pa, uint64_t flags) { return (pa >> 12) << 10 | flags; }

/* Maps va to pa with a leaf at leaf_level (0 = 4 KiB), creating pointer
 * PTEs as needed. Returns the leaf PTE so tests can change it. */
static uint64_t *map(struct fixture *f, uint64_t root, int levels, uint64_t va, uint64_t pa, int leaf_level,
                     uint64_t flags) {
    uint64_t table = root;
    for (int lvl = levels - 1; lvl > leaf_level; lvl--) {
        uint64_t *p = pte_at(f, table + ((va >> (12 + 9 * lvl)) & 511) * 8);
        if (!(*p & V)) *p = make_pte(alloc_frame(f), V);
        table = ((*p >> 10) & ((1ull << 44) - 1)) << 12;
    }
    uint64_t *leaf = pte_at(f, table + ((va >> (12 + 9 * leaf_level)) & 511) * 8);
    *leaf = make_pte(pa, flags);
    return leaf;
}

static void set_priv(struct hart *h, int p) {
    h->priv = p;
    hart_update_tlb_sets(h);
}

/* Starts translating with a fresh root table; returns the root. */
static uint64_t use_paging(struct fixture *f, unsigned mode) {
    uint64_t root = alloc_frame(f);
    f->h.satp = (uint64_t)mode << 60 | root >> 12;
    hart_flush_tlb(&f->h);
    set_priv(&f->h, PRIV_S);
    return root;
}

/* Translates and expects success with the given gpa. */
static void expect_gpa(struct hart *h, uint64_t va, enum access acc, int priv, uint64_t want) {
    uint64_t gpa = 0x5a5a5a5a;
    int cause = mem_translate(h, va, acc, priv, &gpa);
    if (cause) fail_msg("va %#llx acc %d priv %d: cause %d, want success", (unsigned long long)va, acc, priv, cause);
    if (gpa != want)
        fail_msg("va %#llx acc %d: gpa %#llx, want %#llx", (unsigned long long)va, acc, (unsigned long long)gpa,
                 (unsigned long long)want);
}

static void expect_fault(struct hart *h, uint64_t va, enum access acc, int priv, int want) {
    uint64_t gpa;
    int cause = mem_translate(h, va, acc, priv, &gpa);
    if (cause != want)
        fail_msg("va %#llx acc %d priv %d: cause %d, want %d", (unsigned long long)va, acc, priv, cause, want);
}

/* Expects all three access types to fault with their page-fault cause. */
static void expect_page_fault_all(struct hart *h, uint64_t va, int priv) {
    expect_fault(h, va, ACCESS_READ, priv, EXC_LOAD_PAGE_FAULT);
    expect_fault(h, va, ACCESS_WRITE, priv, EXC_STORE_PAGE_FAULT);
    expect_fault(h, va, ACCESS_FETCH, priv, EXC_INSN_PAGE_FAULT);
}

static void expect_all_ok(struct hart *h, uint64_t va, int priv, uint64_t want) {
    expect_gpa(h, va, ACCESS_READ, priv, want);
    expect_gpa(h, va, ACCESS_WRITE, priv, want);
    expect_gpa(h, va, ACCESS_FETCH, priv, want);
}

#define RWX (V | R | W | X | A | D)

/* ------------------------------------------------------------------ */
/* Page walks */

static void test_sv39_leaf_sizes(void **state) {
    struct fixture *f = *state;
    struct hart *h = &f->h;
    uint64_t root = use_paging(f, SATP_MODE_SV39);
    /* 4 KiB */
    map(f, root, 3, 0x40001000, 0x80345000, 0, RWX);
    expect_all_ok(h, 0x40001000, PRIV_S, 0x80345000);
    expect_all_ok(h, 0x40001abc, PRIV_S, 0x80345abc);
    expect_all_ok(h, 0x40001fff, PRIV_S, 0x80345fff);
    expect_page_fault_all(h, 0x40002000, PRIV_S); /* the neighbour is not mapped */
    expect_page_fault_all(h, 0x40000fff, PRIV_S);
    /* 2 MiB: the low 21 bits come from the address */
    map(f, root, 3, 0x40200000, 0x80200000, 1, RWX);
    expect_all_ok(h, 0x40200000, PRIV_S, 0x80200000);
    expect_all_ok(h, 0x40212345, PRIV_S, 0x80212345);
    expect_all_ok(h, 0x403fffff, PRIV_S, 0x803fffff);
    /* 1 GiB, in the upper (negative) half of the Sv39 space */
    map(f, root, 3, 0xffffffffc0000000ull, 0x80000000, 2, RWX);
    expect_all_ok(h, 0xffffffffc0000000ull, PRIV_S, 0x80000000);
    expect_all_ok(h, 0xffffffffc1234567ull, PRIV_S, 0x81234567);
    expect_all_ok(h, 0xffffffffffffffffull, PRIV_S, 0xbfffffff);
    /* Lowest negative address of Sv39: VPN[2] = 0x100 */
    map(f, root, 3, 0xffffffc000000000ull, 0x80346000, 0, RWX);
    expect_all_ok(h, 0xffffffc000000008ull, PRIV_S, 0x80346008);
    /* A 1 GiB page mapping a physical address above 4 GiB */
    map(f, root, 3, 0x0000001000000000ull, 0x4000000000ull, 2, RWX);
    expect_gpa(h, 0x0000001012345678ull, ACCESS_READ, PRIV_S, 0x4012345678ull);
}

static void test_sv48_leaf_sizes(void **state) {
    struct fixture *f = *state;
    struct hart *h = &f->h;
    uint64_t root = use_paging(f, SATP_MODE_SV48);
    map(f, root, 4, 0x0000123456789000ull, 0x80345000, 0, RWX);
    expect_all_ok(h, 0x0000123456789abcull, PRIV_S, 0x80345abc);
    map(f, root, 4, 0x0000123456a00000ull, 0x80200000, 1, RWX);
    expect_all_ok(h, 0x0000123456a12345ull, PRIV_S, 0x80212345);
    map(f, root, 4, 0x0000234540000000ull, 0xc0000000ull, 2, RWX);
    expect_all_ok(h, 0x000023457fffffffull, PRIV_S, 0xffffffffull);
    expect_all_ok(h, 0x0000234541234567ull, PRIV_S, 0xc1234567ull);
    /* 512 GiB leaf at the root */
    map(f, root, 4, 0x0000008000000000ull, 0x8000000000ull, 3, RWX);
    expect_all_ok(h, 0x0000008000000000ull, PRIV_S, 0x8000000000ull);
    expect_all_ok(h, 0x000000ffffffffffull, PRIV_S, 0xffffffffffull);
    expect_all_ok(h, 0x0000009234567890ull, PRIV_S, 0x9234567890ull);
    /* Upper half: VPN[3] = 0x100 and 0x1ff */
    map(f, root, 4, 0xffff800000000000ull, 0x80347000, 0, RWX);
    expect_all_ok(h, 0xffff800000000010ull, PRIV_S, 0x80347010);
    map(f, root, 4, 0xfffffffffffff000ull, 0x80348000, 0, RWX);
    expect_all_ok(h, 0xffffffffffffff00ull, PRIV_S, 0x80348f00);
}

static void test_non_canonical(void **state) {
    struct fixture *f = *state;
    struct hart *h = &f->h;
    uint64_t root = use_paging(f, SATP_MODE_SV39);
    /* Map the whole low and high 1 GiB so only canonicity can fail. */
    map(f, root, 3, 0, 0x80000000, 2, RWX);
    map(f, root, 3, 0xffffffffc0000000ull, 0x80000000, 2, RWX);
    map(f, root, 3, 0x4000000000ull - GiB, 0x80000000, 2, RWX); /* VPN[2] = 0xff, top of the low half */
    expect_all_ok(h, 0x3fffffffffull, PRIV_S, 0xbfffffffull);
    expect_page_fault_all(h, 0x4000000000ull, PRIV_S);          /* bit 38 set, 63..39 clear */
    expect_page_fault_all(h, 0x0000008000000000ull, PRIV_S);    /* bit 39 */
    expect_page_fault_all(h, 0x8000000000000000ull, PRIV_S);    /* bit 63 only */
    expect_page_fault_all(h, 0xffffffbfffffffffull, PRIV_S);    /* bit 38 clear, upper set */
    expect_page_fault_all(h, 0x7fffffffc0000000ull, PRIV_S);    /* bit 63 clear, rest of upper set */
    expect_page_fault_all(h, 0x0000000000000000ull | (1ull << 50), PRIV_S);

    /* 0x8000000000 is canonical in Sv48 but not in Sv39. */
    root = use_paging(f, SATP_MODE_SV48);
    map(f, root, 4, 0x0000008000000000ull, 0x80345000, 0, RWX);
    expect_all_ok(h, 0x0000008000000000ull, PRIV_S, 0x80345000);
    map(f, root, 4, 0x00007ffffffff000ull, 0x80346000, 0, RWX);
    expect_all_ok(h, 0x00007fffffffffffull, PRIV_S, 0x80346fff);
    expect_page_fault_all(h, 0x0000800000000000ull, PRIV_S);   /* bit 47 without sign extension */
    expect_page_fault_all(h, 0xffff7ffffffff000ull, PRIV_S);
    expect_page_fault_all(h, 0x0001000000000000ull, PRIV_S);
}

static void test_bad_ptes(void **state) {
    struct fixture *f = *state;
    struct hart *h = &f->h;
    uint64_t root = use_paging(f, SATP_MODE_SV39);
    uint64_t *leaf = map(f, root, 3, 0x10000, 0x80345000, 0, RWX);
    expect_all_ok(h, 0x10000, PRIV_S, 0x80345000);

    /* V clear */
    *leaf = make_pte(0x80345000, RWX & ~V);
    expect_page_fault_all(h, 0x10000, PRIV_S);
    /* W without R (reserved), with or without X */
    *leaf = make_pte(0x80345000, V | W | A | D);
    expect_page_fault_all(h, 0x10000, PRIV_S);
    *leaf = make_pte(0x80345000, V | W | X | A | D);
    expect_page_fault_all(h, 0x10000, PRIV_S);
    /* Reserved bits 60..54, PBMT (62..61) and N (63) without Svpbmt/Svnapot */
    static const int reserved[] = {54, 57, 60, 61, 62, 63};
    for (size_t k = 0; k < sizeof reserved / sizeof reserved[0]; k++) {
        *leaf = make_pte(0x80345000, RWX) | 1ull << reserved[k];
        expect_page_fault_all(h, 0x10000, PRIV_S);
    }
    *leaf = make_pte(0x80345000, RWX);
    expect_all_ok(h, 0x10000, PRIV_S, 0x80345000);

    /* A pointer PTE at the last level: no leaf found */
    uint64_t table = alloc_frame(f);
    *leaf = make_pte(table, V);
    expect_page_fault_all(h, 0x10000, PRIV_S);

    /* Reserved bits in a pointer PTE, and non-leaf with A, D or U set */
    uint64_t *l2 = pte_at(f, root + 0 * 8);
    uint64_t good = *l2;
    *leaf = make_pte(0x80345000, RWX);
    *l2 = good | 1ull << 60;
    expect_page_fault_all(h, 0x10000, PRIV_S);
    *l2 = good | A;
    expect_page_fault_all(h, 0x10000, PRIV_S);
    *l2 = good | D;
    expect_page_fault_all(h, 0x10000, PRIV_S);
    *l2 = good | U;
    expect_page_fault_all(h, 0x10000, PRIV_S);
    *l2 = good & ~V;
    expect_page_fault_all(h, 0x10000, PRIV_S);
    *l2 = good;
    expect_all_ok(h, 0x10000, PRIV_S, 0x80345000);
}

static void test_misaligned_superpages(void **state) {
    struct fixture *f = *state;
    struct hart *h = &f->h;
    uint64_t root = use_paging(f, SATP_MODE_SV39);
    /* 2 MiB leaf whose PPN[0] is not zero */
    uint64_t *mega = map(f, root, 3, 0x40200000, 0x80201000, 1, RWX);
    expect_page_fault_all(h, 0x40200000, PRIV_S);
    *mega = make_pte(0x80200000, RWX);
    expect_all_ok(h, 0x40201000, PRIV_S, 0x80201000);
    /* 1 GiB leaf whose PPN[1] is not zero (2 MiB aligned only) */
    uint64_t *giga = map(f, root, 3, 0x80000000, 0x80200000, 2, RWX);
    expect_page_fault_all(h, 0x80000000, PRIV_S);
    /* ...or whose PPN[0] is not zero */
    *giga = make_pte(0x80001000, RWX);
    expect_page_fault_all(h, 0x80000000, PRIV_S);
    *giga = make_pte(0xc0000000, RWX);
    expect_all_ok(h, 0x80000000, PRIV_S, 0xc0000000);

    /* Sv48 512 GiB leaf aligned to 1 GiB only */
    root = use_paging(f, SATP_MODE_SV48);
    map(f, root, 4, 0x0000008000000000ull, 0x8040000000ull, 3, RWX);
    expect_page_fault_all(h, 0x0000008000000000ull, PRIV_S);
}

static void test_permissions(void **state) {
    struct fixture *f = *state;
    struct hart *h = &f->h;
    uint64_t root = use_paging(f, SATP_MODE_SV39);
    map(f, root, 3, 0x10000, 0x80345000, 0, V | R | A | D);      /* read-only */
    map(f, root, 3, 0x11000, 0x80346000, 0, V | X | A | D);      /* execute-only */
    map(f, root, 3, 0x12000, 0x80347000, 0, V | R | W | A | D);  /* read-write */
    map(f, root, 3, 0x13000, 0x80348000, 0, V | R | X | A | D);  /* read-execute */

    expect_gpa(h, 0x10000, ACCESS_READ, PRIV_S, 0x80345000);
    expect_fault(h, 0x10000, ACCESS_WRITE, PRIV_S, EXC_STORE_PAGE_FAULT);
    expect_fault(h, 0x10000, ACCESS_FETCH, PRIV_S, EXC_INSN_PAGE_FAULT);

    expect_fault(h, 0x11000, ACCESS_READ, PRIV_S, EXC_LOAD_PAGE_FAULT);
    expect_fault(h, 0x11000, ACCESS_WRITE, PRIV_S, EXC_STORE_PAGE_FAULT);
    expect_gpa(h, 0x11000, ACCESS_FETCH, PRIV_S, 0x80346000);

    expect_gpa(h, 0x12000, ACCESS_READ, PRIV_S, 0x80347000);
    expect_gpa(h, 0x12000, ACCESS_WRITE, PRIV_S, 0x80347000);
    expect_fault(h, 0x12000, ACCESS_FETCH, PRIV_S, EXC_INSN_PAGE_FAULT);

    expect_gpa(h, 0x13000, ACCESS_READ, PRIV_S, 0x80348000);
    expect_fault(h, 0x13000, ACCESS_WRITE, PRIV_S, EXC_STORE_PAGE_FAULT);
    expect_gpa(h, 0x13000, ACCESS_FETCH, PRIV_S, 0x80348000);

    /* MXR makes execute-only pages readable, but not writable. */
    h->mstatus |= MSTATUS_MXR;
    expect_gpa(h, 0x11000, ACCESS_READ, PRIV_S, 0x80346000);
    expect_fault(h, 0x11000, ACCESS_WRITE, PRIV_S, EXC_STORE_PAGE_FAULT);
    expect_fault(h, 0x11000, ACCESS_READ, PRIV_U, EXC_LOAD_PAGE_FAULT); /* not a U page */
    h->mstatus &= ~MSTATUS_MXR;
}

static void test_user_bit_sum_mxr(void **state) {
    struct fixture *f = *state;
    struct hart *h = &f->h;
    uint64_t root = use_paging(f, SATP_MODE_SV39);
    map(f, root, 3, 0x10000, 0x80345000, 0, RWX | U);     /* user page */
    map(f, root, 3, 0x11000, 0x80346000, 0, RWX);         /* supervisor page */
    map(f, root, 3, 0x12000, 0x80347000, 0, V | X | U | A | D); /* user execute-only */

    /* U-mode: only U pages. */
    expect_all_ok(h, 0x10000, PRIV_U, 0x80345000);
    expect_page_fault_all(h, 0x11000, PRIV_U);
    /* S-mode: no access to U pages without SUM... */
    expect_page_fault_all(h, 0x10000, PRIV_S);
    expect_all_ok(h, 0x11000, PRIV_S, 0x80346000);
    /* ...with SUM loads and stores, never fetches. */
    h->mstatus |= MSTATUS_SUM;
    expect_gpa(h, 0x10000, ACCESS_READ, PRIV_S, 0x80345000);
    expect_gpa(h, 0x10000, ACCESS_WRITE, PRIV_S, 0x80345000);
    expect_fault(h, 0x10000, ACCESS_FETCH, PRIV_S, EXC_INSN_PAGE_FAULT);
    /* SUM does not give U-mode access to S pages. */
    expect_page_fault_all(h, 0x11000, PRIV_U);
    /* MXR + SUM: S-mode may read a user execute-only page. */
    expect_fault(h, 0x12000, ACCESS_READ, PRIV_S, EXC_LOAD_PAGE_FAULT);
    h->mstatus |= MSTATUS_MXR;
    expect_gpa(h, 0x12000, ACCESS_READ, PRIV_S, 0x80347000);
    expect_gpa(h, 0x12000, ACCESS_READ, PRIV_U, 0x80347000);
    expect_fault(h, 0x12000, ACCESS_WRITE, PRIV_U, EXC_STORE_PAGE_FAULT);
    /* MXR without SUM: still no S access to U pages. */
    h->mstatus &= ~MSTATUS_SUM;
    expect_fault(h, 0x12000, ACCESS_READ, PRIV_S, EXC_LOAD_PAGE_FAULT);
    expect_gpa(h, 0x12000, ACCESS_READ, PRIV_U, 0x80347000);
    h->mstatus &= ~MSTATUS_MXR;
    expect_fault(h, 0x12000, ACCESS_READ, PRIV_U, EXC_LOAD_PAGE_FAULT);
    expect_gpa(h, 0x12000, ACCESS_FETCH, PRIV_U, 0x80347000);
}

static void test_accessed_dirty(void **state) {
    struct fixture *f = *state;
    struct hart *h = &f->h;
    uint64_t root = use_paging(f, SATP_MODE_SV39);
    uint64_t *p = map(f, root, 3, 0x10000, 0x80345000, 0, V | R | W | X);
    uint64_t *l2 = pte_at(f, root);
    uint64_t l2_before = *l2;

    expect_gpa(h, 0x10000, ACCESS_READ, PRIV_S, 0x80345000);
    assert_int_equal(*p, make_pte(0x80345000, V | R | W | X | A));
    expect_gpa(h, 0x10000, ACCESS_WRITE, PRIV_S, 0x80345000);
    assert_int_equal(*p, make_pte(0x80345000, V | R | W | X | A | D));
    /* Pointer PTEs are left alone. */
    assert_int_equal(*l2, l2_before);

    /* A write sets A and D at once; a fetch sets A only. */
    *p = make_pte(0x80345000, V | R | W | X);
    expect_gpa(h, 0x10000, ACCESS_WRITE, PRIV_S, 0x80345000);
    assert_int_equal(*p, make_pte(0x80345000, V | R | W | X | A | D));
    *p = make_pte(0x80345000, V | R | W | X);
    expect_gpa(h, 0x10000, ACCESS_FETCH, PRIV_S, 0x80345000);
    assert_int_equal(*p, make_pte(0x80345000, V | R | W | X | A));

    /* A faulting access changes nothing. */
    *p = make_pte(0x80345000, V | R);
    expect_fault(h, 0x10000, ACCESS_WRITE, PRIV_S, EXC_STORE_PAGE_FAULT);
    assert_int_equal(*p, make_pte(0x80345000, V | R));
    *p = make_pte(0x80345000, V | R | W | U);
    expect_fault(h, 0x10000, ACCESS_READ, PRIV_S, EXC_LOAD_PAGE_FAULT);
    assert_int_equal(*p, make_pte(0x80345000, V | R | W | U));

    /* Superpage leaves get A/D too. */
    uint64_t *mega = map(f, root, 3, 0x40200000, 0x80200000, 1, V | R | W);
    expect_gpa(h, 0x40234567, ACCESS_WRITE, PRIV_S, 0x80234567);
    assert_int_equal(*mega, make_pte(0x80200000, V | R | W | A | D));
}

static void test_table_outside_ram(void **state) {
    struct fixture *f = *state;
    struct hart *h = &f->h;
    /* Root table not in RAM */
    f->h.satp = (uint64_t)SATP_MODE_SV39 << 60 | (0x10000000ull >> 12);
    set_priv(h, PRIV_S);
    expect_fault(h, 0x10000, ACCESS_READ, PRIV_S, EXC_LOAD_ACCESS);
    expect_fault(h, 0x10000, ACCESS_WRITE, PRIV_S, EXC_STORE_ACCESS);
    expect_fault(h, 0x10000, ACCESS_FETCH, PRIV_S, EXC_INSN_ACCESS);
    f->h.satp = (uint64_t)SATP_MODE_SV48 << 60 | ((RAM_BASE + RAM_SIZE) >> 12);
    expect_fault(h, 0x10000, ACCESS_READ, PRIV_S, EXC_LOAD_ACCESS);

    /* A pointer PTE leading out of RAM */
    uint64_t root = use_paging(f, SATP_MODE_SV39);
    *pte_at(f, root) = make_pte(0x20000000, V);
    expect_fault(h, 0x10000, ACCESS_READ, PRIV_S, EXC_LOAD_ACCESS);
    expect_fault(h, 0x10000, ACCESS_WRITE, PRIV_S, EXC_STORE_ACCESS);
    expect_fault(h, 0x10000, ACCESS_FETCH, PRIV_S, EXC_INSN_ACCESS);
    /* A leaf pointing out of RAM is fine for the walk (the access itself may fail later). */
    map(f, root, 3, 0x40000000, 0x40000000, 2, RWX);
    expect_all_ok(h, 0x40000123, PRIV_S, 0x40000123);
}

static void test_identity_cases(void **state) {
    struct fixture *f = *state;
    struct hart *h = &f->h;
    /* satp = Bare: S and U are identity mapped. */
    h->satp = 0;
    expect_all_ok(h, 0xdeadbeef000ull, PRIV_S, 0xdeadbeef000ull);
    expect_all_ok(h, 0xffffffffffffffffull, PRIV_U, 0xffffffffffffffffull);
    /* M-mode ignores satp. */
    uint64_t root = use_paging(f, SATP_MODE_SV39);
    (void)root;
    expect_all_ok(h, 0x80001234, PRIV_M, 0x80001234);
    expect_all_ok(h, 0x8000000000000000ull, PRIV_M, 0x8000000000000000ull);
    expect_page_fault_all(h, 0x80001234, PRIV_S); /* nothing mapped */
}

/* ------------------------------------------------------------------ */
/* Software TLB through the accessors */

static void put64(struct fixture *f, uint64_t gpa, uint64_t v) { memcpy(host(f, gpa), &v, 8); }
static uint64_t get64(struct fixture *f, uint64_t gpa) {
    uint64_t v;
    memcpy(&v, host(f, gpa), 8);
    return v;
}

static void reset_trap(struct hart *h, int priv) {
    h->mcause = 0;
    h->mtval = 0;
    h->pc = 0x2000;
    set_priv(h, priv);
}

static void test_tlb_hit_and_flush(void **state) {
    struct fixture *f = *state;
    struct hart *h = &f->h;
    uint64_t root = use_paging(f, SATP_MODE_SV39);
    uint64_t *p = map(f, root, 3, 0x10000, DATA, 0, V | R | W);
    put64(f, DATA + 8, 0x1122334455667788ull);
    put64(f, DATA + 0x1000 + 8, 0xaaaabbbbccccddddull);

    uint64_t v = 0;
    assert_int_equal(h->tlb[PRIV_S].read[tlb_index(0x10000)].tag, TLB_INVALID);
    assert_true(mem_load64(h, 0x10008, &v));
    assert_int_equal(v, 0x1122334455667788ull);
    assert_int_equal(h->tlb[PRIV_S].read[tlb_index(0x10000)].tag, 0x10000);
    assert_int_equal(*p & (A | D), A);
    /* The read did not create a write entry. */
    assert_int_equal(h->tlb[PRIV_S].write[tlb_index(0x10000)].tag, TLB_INVALID);

    /* A hit does not look at the page table: retarget the PTE behind the TLB's back. */
    int calls = f->page_calls;
    *p = make_pte(DATA + 0x1000, V | R | W | A);
    uint32_t w = 0;
    assert_true(mem_load32(h, 0x1000c, &w));
    assert_int_equal(w, 0x11223344u);
    assert_true(mem_load64(h, 0x10008, &v));
    assert_int_equal(v, 0x1122334455667788ull);
    assert_int_equal(f->page_calls, calls);

    /* sfence.vma (hart_flush_tlb) makes the new PTE visible. */
    hart_flush_tlb(h);
    assert_true(mem_load64(h, 0x10008, &v));
    assert_int_equal(v, 0xaaaabbbbccccddddull);

    /* A store walks (setting D), then gets a write entry. */
    assert_true(mem_store64(h, 0x10010, 0x0102030405060708ull));
    assert_int_equal(get64(f, DATA + 0x1000 + 0x10), 0x0102030405060708ull);
    assert_int_equal(*p & (A | D), A | D);
    assert_int_equal(h->tlb[PRIV_S].write[tlb_index(0x10000)].tag, 0x10000);
    calls = f->page_calls;
    assert_true(mem_store16(h, 0x10018, 0xbeef));
    assert_int_equal(f->page_calls, calls);
    assert_int_equal(host(f, DATA + 0x1018)[0], 0xef);
    assert_int_equal(host(f, DATA + 0x1018)[1], 0xbe);

    /* Read-only mapping: a cached read entry never lets a store through. */
    *p = make_pte(DATA, V | R | A);
    hart_flush_tlb(h);
    assert_true(mem_load64(h, 0x10008, &v));
    assert_int_equal(v, 0x1122334455667788ull);
    assert_false(mem_store64(h, 0x10008, 0));
    assert_int_equal(h->mcause, EXC_STORE_PAGE_FAULT);
    assert_int_equal(h->mtval, 0x10008);
    assert_int_equal(h->mepc, 0x2000);
    assert_int_equal(get64(f, DATA + 8), 0x1122334455667788ull);
    assert_int_equal(f->fatal_calls, 0);
}

static void test_tlb_per_privilege(void **state) {
    struct fixture *f = *state;
    struct hart *h = &f->h;
    uint64_t root = use_paging(f, SATP_MODE_SV39);
    map(f, root, 3, 0x10000, DATA, 0, V | R | W | A | D); /* supervisor page */
    put64(f, DATA, 42);
    uint64_t v;
    assert_true(mem_load64(h, 0x10000, &v));
    assert_int_equal(v, 42);
    /* U-mode must not use the S entry. */
    set_priv(h, PRIV_U);
    assert_false(mem_load64(h, 0x10000, &v));
    assert_int_equal(h->mcause, EXC_LOAD_PAGE_FAULT);
    assert_int_equal(h->mtval, 0x10000);
    assert_int_equal((h->mstatus & MSTATUS_MPP) >> 11, PRIV_U);

    /* M-mode with MPRV and MPP = S loads through the S translation. */
    reset_trap(h, PRIV_M);
    h->mstatus = (h->mstatus & ~MSTATUS_MPP) | MSTATUS_MPRV | (1ull << 11);
    hart_update_tlb_sets(h);
    assert_true(mem_load64(h, 0x10000, &v));
    assert_int_equal(v, 42);
    h->mstatus &= ~MSTATUS_MPRV;
    hart_update_tlb_sets(h);
    assert_false(mem_load64(h, 0x10000, &v)); /* physical 0x10000 is not RAM */
    assert_int_equal(h->mcause, EXC_LOAD_ACCESS);
    assert_int_equal(h->mtval, 0x10000);
}

static struct code_page *install_code_page(struct fixture *f, uint64_t gpa) {
    bool created;
    struct code_page *cp = code_page_install(&f->code, code_map_slot(&f->code, (gpa - RAM_BASE) >> 12), gpa, &created);
    assert_non_null(cp);
    assert_true(created);
    return cp;
}

/* Maps va 0x10000 to frame DATA (RWX) and gives the frame a code page. */
static struct code_page *code_frame_at_0x10000(struct fixture *f, uint64_t *root) {
    *root = use_paging(f, SATP_MODE_SV39);
    map(f, *root, 3, 0x10000, DATA, 0, V | R | W | X | A | D);
    struct code_page *cp = install_code_page(f, DATA);
    return cp;
}

/* Marks slot s of cp decoded (as decode_slot would, counting it). */
static void decoded(struct code_page *cp, unsigned s) {
    if (cp->slot[s].fn == op_decode) cp->live++;
    cp->slot[s].fn = op_illegal;
}

static void test_store_to_code_frame(void **state) {
    struct fixture *f = *state;
    struct hart *h = &f->h;
    uint64_t root;
    struct code_page *cp = code_frame_at_0x10000(f, &root);
    decoded(cp, 100);

    for (int round = 0; round < 3; round++) {
        decoded(cp, 8); /* bytes 16..17 */
        assert_true(mem_store32(h, 0x10010, 0xcafe0000u + (uint32_t)round));
        uint32_t got;
        memcpy(&got, host(f, DATA + 0x10), 4);
        assert_int_equal(got, 0xcafe0000u + (uint32_t)round);
        /* Every store reached the slow path and reset the decoded slot... */
        assert_ptr_equal(cp->slot[8].fn, op_decode);
        assert_int_equal(cp->live, 1);
        /* ...because no write entry was made while slot 100 stays decoded. */
        assert_int_equal(h->tlb[PRIV_S].write[tlb_index(0x10000)].tag, TLB_INVALID);
        assert_false(cp->writable);
    }
    /* Slots the store did not overlap are kept. */
    assert_ptr_equal(cp->slot[100].fn, op_illegal);
    /* Loads from the frame are cached normally. */
    uint32_t w;
    assert_true(mem_load32(h, 0x10010, &w));
    assert_int_equal(w, 0xcafe0002u);
    assert_int_equal(h->tlb[PRIV_S].read[tlb_index(0x10000)].tag, 0x10000);

    /* A neighbouring frame without code does get a write entry. */
    map(f, root, 3, 0x11000, DATA + 0x1000, 0, V | R | W | A | D);
    assert_true(mem_store32(h, 0x11000, 1));
    assert_int_equal(h->tlb[PRIV_S].write[tlb_index(0x11000)].tag, 0x11000);
}

/* A frame whose decoded code has all been overwritten is data now: stores
 * get a write entry again, until an instruction is decoded there. */
static void test_overwritten_code_frame_becomes_writable(void **state) {
    struct fixture *f = *state;
    struct hart *h = &f->h;
    uint64_t root;
    struct code_page *cp = code_frame_at_0x10000(f, &root);
    decoded(cp, 0);
    decoded(cp, 2);
    assert_true(mem_store32(h, 0x10000, 0)); /* resets slot 0 only: slot 2 starts at byte 4 */
    assert_int_equal(cp->live, 1);
    assert_int_equal(h->tlb[PRIV_S].write[tlb_index(0x10000)].tag, TLB_INVALID);
    assert_true(mem_store32(h, 0x10004, 0)); /* the last decoded slot goes */
    assert_int_equal(cp->live, 0);
    assert_true(cp->writable);
    assert_int_equal(h->tlb[PRIV_S].write[tlb_index(0x10000)].tag, 0x10000);

    /* The hart runs code from the frame: decoding it takes the write
     * mappings away (code_added) before the instruction's bytes are read. */
    uint32_t addi = 0x00150513; /* addi a0, a0, 1 */
    memcpy(host(f, DATA + 0x100), &addi, 4);
    h->pc = 0x10100;
    h->x[10] = 41;
    int calls = f->code_added_calls;
    hart_run(h, 1);
    assert_int_equal(h->x[10], 42);
    assert_int_equal(f->code_added_calls, calls + 1);
    assert_int_equal(f->code_added_gpa, DATA);
    assert_false(cp->writable);
    assert_int_equal(cp->live, 1);
    /* With no write entry, the next store to the frame resets the slot again. */
    h->tlb[PRIV_S].write[tlb_index(0x10000)].tag = TLB_INVALID; /* what code_added does for real */
    assert_true(mem_store32(h, 0x10100, addi));
    assert_ptr_equal(cp->slot[0x100 / 2].fn, op_decode);
}

static void test_fetch_fill_registers_code(void **state) {
    struct fixture *f = *state;
    struct hart *h = &f->h;
    uint64_t root = use_paging(f, SATP_MODE_SV39);
    map(f, root, 3, 0x10000, DATA, 0, V | R | W | X | A | D);
    map(f, root, 3, 0x11000, DATA + 0x1000, 0, V | R | W | A | D);
    /* A write entry exists before the page becomes code. */
    assert_true(mem_store32(h, 0x10000, 0x13));
    struct fetch_entry *e = mem_fetch_fill(h, 0x10004);
    assert_non_null(e);
    assert_int_equal(e->tag, 0x10000);
    assert_non_null(*code_map_slot(&f->code, (DATA - RAM_BASE) >> 12));
    assert_ptr_equal(e->code, *code_map_slot(&f->code, (DATA - RAM_BASE) >> 12));
    assert_int_equal(f->code_added_calls, 1);
    assert_int_equal(f->code_added_gpa, DATA);
    assert_int_equal(e->addend + 0x10000, (uintptr_t)host(f, DATA));
    /* Not executable: instruction page fault with the address. */
    assert_null(mem_fetch_fill(h, 0x11000));
    assert_int_equal(h->mcause, EXC_INSN_PAGE_FAULT);
    assert_int_equal(h->mtval, 0x11000);
}

static void test_misaligned_and_crossing(void **state) {
    struct fixture *f = *state;
    struct hart *h = &f->h;
    uint64_t root = use_paging(f, SATP_MODE_SV39);
    /* Two consecutive virtual pages on non-consecutive frames, in reverse order. */
    map(f, root, 3, 0x20000, DATA + 0x5000, 0, V | R | W | A | D);
    map(f, root, 3, 0x21000, DATA + 0x2000, 0, V | R | W | A | D);
    for (int i = 0; i < 4096; i++) {
        host(f, DATA + 0x5000)[i] = (uint8_t)i;
        host(f, DATA + 0x2000)[i] = (uint8_t)(0x80 + i);
    }
    uint64_t v;
    uint32_t w;
    uint16_t s;
    /* Misaligned within a page */
    assert_true(mem_load64(h, 0x20003, &v));
    assert_int_equal(v, 0x0a09080706050403ull);
    assert_true(mem_load32(h, 0x20101, &w));
    assert_int_equal(w, 0x04030201u);
    assert_true(mem_load16(h, 0x20ffe, &s)); /* aligned, last halfword of the page */
    assert_int_equal(s, 0xfffe);
    /* Crossing: bytes ff (last of frame 5) then 80 81 ... (first of frame 2) */
    assert_true(mem_load16(h, 0x20fff, &s));
    assert_int_equal(s, 0x80ff);
    assert_true(mem_load32(h, 0x20ffe, &w));
    assert_int_equal(w, 0x8180fffeu);
    assert_true(mem_load64(h, 0x20ffb, &v));
    assert_int_equal(v, 0x828180fffefdfcfbull);
    assert_true(mem_load64(h, 0x20ff9, &v));
    assert_int_equal(v, 0x80fffefdfcfbfaf9ull);

    /* Misaligned store within a page */
    assert_true(mem_store64(h, 0x20011, 0x1122334455667788ull));
    assert_int_equal(host(f, DATA + 0x5000)[0x10], 0x10);
    assert_int_equal(host(f, DATA + 0x5000)[0x11], 0x88);
    assert_int_equal(host(f, DATA + 0x5000)[0x18], 0x11);
    assert_int_equal(host(f, DATA + 0x5000)[0x19], 0x19);
    /* Crossing store lands in both frames */
    assert_true(mem_store64(h, 0x20ffd, 0x1122334455667788ull));
    assert_int_equal(host(f, DATA + 0x5000)[0xffc], 0xfc);
    assert_int_equal(host(f, DATA + 0x5000)[0xffd], 0x88);
    assert_int_equal(host(f, DATA + 0x5000)[0xffe], 0x77);
    assert_int_equal(host(f, DATA + 0x5000)[0xfff], 0x66);
    assert_int_equal(host(f, DATA + 0x2000)[0], 0x55);
    assert_int_equal(host(f, DATA + 0x2000)[1], 0x44);
    assert_int_equal(host(f, DATA + 0x2000)[4], 0x11);
    assert_int_equal(host(f, DATA + 0x2000)[5], 0x85);
    assert_true(mem_load64(h, 0x20ffd, &v));
    assert_int_equal(v, 0x1122334455667788ull);
    assert_true(mem_store16(h, 0x20fff, 0xabcd));
    assert_int_equal(host(f, DATA + 0x5000)[0xfff], 0xcd);
    assert_int_equal(host(f, DATA + 0x2000)[0], 0xab);
    assert_int_equal(f->fatal_calls, 0);
    assert_int_equal(h->mcause, 0);
}

static void test_crossing_faults(void **state) {
    struct fixture *f = *state;
    struct hart *h = &f->h;
    uint64_t root = use_paging(f, SATP_MODE_SV39);
    map(f, root, 3, 0x30000, DATA + 0x6000, 0, V | R | W | A | D);
    map(f, root, 3, 0x31000, DATA + 0x7000, 0, V | R | A | D); /* read-only */
    /* 0x32000 unmapped */
    memset(host(f, DATA + 0x6000), 0xee, 4096);
    memset(host(f, DATA + 0x7000), 0xdd, 4096);

    /* Store crossing into a read-only page: faults on the second page, first page untouched. */
    assert_false(mem_store64(h, 0x30ffc, 0x1122334455667788ull));
    assert_int_equal(h->mcause, EXC_STORE_PAGE_FAULT);
    assert_int_equal(h->mtval, 0x31000);
    for (int i = 0; i < 4096; i++) {
        if (host(f, DATA + 0x6000)[i] != 0xee) fail_msg("first page byte %#x changed", i);
        if (host(f, DATA + 0x7000)[i] != 0xdd) fail_msg("second page byte %#x changed", i);
    }
    /* Same through a warm write TLB entry for the first page. */
    reset_trap(h, PRIV_S);
    assert_true(mem_store8(h, 0x30000, 0xee));
    assert_int_equal(h->tlb[PRIV_S].write[tlb_index(0x30000)].tag, 0x30000);
    assert_false(mem_store32(h, 0x30ffe, 0xa5a5a5a5u));
    assert_int_equal(h->mcause, EXC_STORE_PAGE_FAULT);
    assert_int_equal(h->mtval, 0x31000);
    assert_int_equal(host(f, DATA + 0x6000)[0xffe], 0xee);
    assert_int_equal(host(f, DATA + 0x6000)[0xfff], 0xee);

    /* Store crossing out of a read-only page: faults on the first page. */
    reset_trap(h, PRIV_S);
    assert_false(mem_store16(h, 0x31fff, 0x1234));
    assert_int_equal(h->mcause, EXC_STORE_PAGE_FAULT);
    assert_int_equal(h->mtval, 0x31fff);
    assert_int_equal(host(f, DATA + 0x7000)[0xfff], 0xdd);

    /* Store crossing into an unmapped page */
    map(f, root, 3, 0x33000, DATA + 0x8000, 0, V | R | W | A | D);
    memset(host(f, DATA + 0x8000), 0xcc, 4096);
    reset_trap(h, PRIV_S);
    assert_false(mem_store64(h, 0x33ffa, 0x1122334455667788ull));
    assert_int_equal(h->mcause, EXC_STORE_PAGE_FAULT);
    assert_int_equal(h->mtval, 0x34000);
    for (int i = 0; i < 4096; i++)
        if (host(f, DATA + 0x8000)[i] != 0xcc) fail_msg("byte %#x of the first page changed", i);

    /* Loads: crossing into an unmapped page faults at the second page. */
    reset_trap(h, PRIV_S);
    uint64_t v = 0x5555;
    assert_false(mem_load64(h, 0x31ffc, &v));
    assert_int_equal(h->mcause, EXC_LOAD_PAGE_FAULT);
    assert_int_equal(h->mtval, 0x32000);
    assert_int_equal(v, 0x5555);
    /* Crossing load from a readable pair works. */
    reset_trap(h, PRIV_S);
    uint32_t w = 0;
    assert_true(mem_load32(h, 0x30ffe, &w));
    assert_int_equal(w, 0xddddeeeeu);
    assert_int_equal(h->mcause, 0);
}

static void test_mmio_miss_is_access_fault(void **state) {
    struct fixture *f = *state;
    struct hart *h = &f->h;
    uint64_t root = use_paging(f, SATP_MODE_SV39);
    map(f, root, 3, 0x40000, 0x10000000, 0, V | R | W | A | D); /* no device answers there */
    uint32_t w;
    assert_false(mem_load32(h, 0x40004, &w));
    assert_int_equal(h->mcause, EXC_LOAD_ACCESS);
    assert_int_equal(h->mtval, 0x40004);
    reset_trap(h, PRIV_S);
    assert_false(mem_store32(h, 0x40008, 1));
    assert_int_equal(h->mcause, EXC_STORE_ACCESS);
    assert_int_equal(h->mtval, 0x40008);
    /* Executable, but not RAM: instruction access fault. */
    map(f, root, 3, 0x41000, 0x10001000, 0, V | R | X | A | D);
    reset_trap(h, PRIV_S);
    assert_null(mem_fetch_fill(h, 0x41000));
    assert_int_equal(h->mcause, EXC_INSN_ACCESS);
    assert_int_equal(h->mtval, 0x41000);
    assert_int_equal(f->code_added_calls, 0);
}

static void test_atomic_ptr(void **state) {
    struct fixture *f = *state;
    struct hart *h = &f->h;
    uint64_t root = use_paging(f, SATP_MODE_SV39);
    uint64_t *rw = map(f, root, 3, 0x50000, DATA + 0x9000, 0, V | R | W);
    map(f, root, 3, 0x51000, DATA + 0xa000, 0, V | R | A);
    map(f, root, 3, 0x52000, 0x10002000, 0, V | R | W | A | D); /* not RAM */

    /* LR (for_store = false) on a writable page: A only. */
    uint8_t *p = mem_atomic_ptr(h, 0x50010, 8, false);
    assert_ptr_equal(p, host(f, DATA + 0x9010));
    assert_int_equal(*rw & (A | D), A);
    /* AMO/SC: needs write permission and sets D. */
    p = mem_atomic_ptr(h, 0x50018, 4, true);
    assert_ptr_equal(p, host(f, DATA + 0x9018));
    assert_int_equal(*rw & (A | D), A | D);
    /* Read-only page: LR is fine, AMO is a store page fault. */
    assert_ptr_equal(mem_atomic_ptr(h, 0x51000, 8, false), host(f, DATA + 0xa000));
    assert_null(mem_atomic_ptr(h, 0x51008, 8, true));
    assert_int_equal(h->mcause, EXC_STORE_PAGE_FAULT);
    assert_int_equal(h->mtval, 0x51008);
    /* Misaligned: address-misaligned exceptions (load for LR, store/AMO otherwise). */
    reset_trap(h, PRIV_S);
    assert_null(mem_atomic_ptr(h, 0x50004, 8, false));
    assert_int_equal(h->mcause, EXC_LOAD_MISALIGNED);
    assert_int_equal(h->mtval, 0x50004);
    reset_trap(h, PRIV_S);
    assert_null(mem_atomic_ptr(h, 0x50002, 4, true));
    assert_int_equal(h->mcause, EXC_STORE_MISALIGNED);
    assert_int_equal(h->mtval, 0x50002);
    /* Not RAM: access faults. */
    reset_trap(h, PRIV_S);
    assert_null(mem_atomic_ptr(h, 0x52000, 8, false));
    assert_int_equal(h->mcause, EXC_LOAD_ACCESS);
    reset_trap(h, PRIV_S);
    assert_null(mem_atomic_ptr(h, 0x52000, 8, true));
    assert_int_equal(h->mcause, EXC_STORE_ACCESS);
    /* An AMO on a frame with decoded code resets the slots it overlaps. */
    reset_trap(h, PRIV_S);
    struct code_page *cp = install_code_page(f, DATA + 0x9000);
    cp->slot[0x20 / 2].fn = op_illegal;
    hart_flush_tlb(h);
    assert_non_null(mem_atomic_ptr(h, 0x50020, 4, true));
    assert_ptr_equal(cp->slot[0x20 / 2].fn, op_decode);
}

static void test_fetch_parcel(void **state) {
    struct fixture *f = *state;
    struct hart *h = &f->h;
    uint64_t root = use_paging(f, SATP_MODE_SV39);
    map(f, root, 3, 0x60000, DATA + 0xb000, 0, V | X | A);
    map(f, root, 3, 0x61000, DATA + 0xc000, 0, V | R | A);
    host(f, DATA + 0xb000)[0xffe] = 0x82;
    host(f, DATA + 0xb000)[0xfff] = 0x80;
    uint16_t parcel = 0;
    assert_true(mem_fetch_parcel(h, 0x60ffe, &parcel));
    assert_int_equal(parcel, 0x8082);
    assert_false(mem_fetch_parcel(h, 0x61000, &parcel));
    assert_int_equal(h->mcause, EXC_INSN_PAGE_FAULT);
    assert_int_equal(h->mtval, 0x61000);
    /* U-mode cannot fetch from a supervisor page. */
    set_priv(h, PRIV_U);
    assert_false(mem_fetch_parcel(h, 0x60000, &parcel));
    assert_int_equal(h->mcause, EXC_INSN_PAGE_FAULT);
}

/* The shared zero frame is read but never cached, so that backing the
 * guest frame on its first write needs no shootdown; fetching from it is
 * the illegal instruction 0x0000. */
static void test_zero_frame_never_cached(void **state) {
    struct fixture *f = *state;
    struct hart *h = &f->h;
    uint64_t root = use_paging(f, SATP_MODE_SV39);
    map(f, root, 3, 0x70000, DATA + 0xd000, 0, V | R | W | X | A | D);
    f->zero_gpa = DATA + 0xd000;
    memset(host(f, DATA + 0xd000), 0, 4096);
    uint64_t v = 1;
    assert_true(mem_load64(h, 0x70008, &v));
    assert_int_equal(v, 0);
    assert_int_equal(h->dtlb->read[tlb_index(0x70008)].tag, TLB_INVALID);
    /* The first write backs the frame (the fake stops calling it zero) and
     * is seen by the next read at once. */
    f->zero_gpa = 0;
    assert_true(mem_store64(h, 0x70008, 0x1122334455667788ull));
    assert_true(mem_load64(h, 0x70008, &v));
    assert_int_equal(v, 0x1122334455667788ull);
    f->zero_gpa = DATA + 0xd000;
    assert_null(mem_fetch_fill(h, 0x70010));
    assert_int_equal(h->mcause, EXC_ILLEGAL_INSN);
    assert_int_equal(h->mtval, 0);
    assert_int_equal(h->itlb->fetch[tlb_index(0x70010)].tag, TLB_INVALID);
}

/* A code map over its budget says so; a reset empties it (the pages are
 * freed, the epoch moves for the harts), and code fetched afterwards gets
 * fresh pages, counted again from zero. Device writes after the reset
 * find nothing to invalidate. */
static void test_code_map_budget_and_reset(void **state) {
    struct fixture *f = *state;
    struct hart *h = &f->h;
    uint64_t root = use_paging(f, SATP_MODE_SV39);
    code_map_set_budget(&f->code, 3);
    for (unsigned k = 0; k < 4; k++) {
        map(f, root, 3, 0x40000 + k * 0x1000, DATA + k * 0x1000, 0, V | R | W | X | A | D);
        memset(host(f, DATA + k * 0x1000), 0x13, 4); /* not a zero frame */
        assert_non_null(mem_fetch_fill(h, 0x40000 + k * 0x1000));
        assert_int_equal(code_map_over_budget(&f->code), k == 3);
    }
    uint32_t epoch = code_map_epoch(&f->code);
    code_map_reset(&f->code);
    assert_false(code_map_over_budget(&f->code));
    assert_int_equal(code_map_epoch(&f->code), epoch + 1);
    assert_int_equal(f->code.resets, 1);
    assert_int_equal(f->code.npages, 0);
    for (unsigned k = 0; k < 4; k++) assert_null(*code_map_slot(&f->code, (DATA - RAM_BASE) / 4096 + k));
    code_map_written(&f->code, (DATA - RAM_BASE) / 4096, 0, 4);
    code_map_forget(&f->code, (DATA - RAM_BASE) / 4096 + 1);
    /* What the hart holds must go before it fetches again (vm.c does this at its next turn). */
    hart_flush_tlb(h);
    struct fetch_entry *e = mem_fetch_fill(h, 0x40000);
    assert_non_null(e);
    assert_non_null(e->code);
    assert_ptr_equal(e->code, *code_map_slot(&f->code, (DATA - RAM_BASE) / 4096));
    assert_int_equal(f->code.npages, 1);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        T(test_sv39_leaf_sizes),
        T(test_sv48_leaf_sizes),
        T(test_non_canonical),
        T(test_bad_ptes),
        T(test_misaligned_superpages),
        T(test_permissions),
        T(test_user_bit_sum_mxr),
        T(test_accessed_dirty),
        T(test_table_outside_ram),
        T(test_identity_cases),
        T(test_tlb_hit_and_flush),
        T(test_tlb_per_privilege),
        T(test_store_to_code_frame),
        T(test_overwritten_code_frame_becomes_writable),
        T(test_fetch_fill_registers_code),
        T(test_code_map_budget_and_reset),
        T(test_misaligned_and_crossing),
        T(test_crossing_faults),
        T(test_mmio_miss_is_access_fault),
        T(test_atomic_ptr),
        T(test_fetch_parcel),
        T(test_zero_frame_never_cached),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
