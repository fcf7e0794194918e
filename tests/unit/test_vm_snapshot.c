/* Unit tests of whole-VM snapshots (vm/snapshot.c): a VM put in a
 * distinctive state without running a guest (memory through the p2m, hart
 * registers set directly, devices through their registers) is saved and
 * loaded into a second VM built alike, which must then hold the same state;
 * loads into a VM of another shape, or of images lacking a section or with
 * impossible contents, are refused with a message naming the problem; and
 * a seeded fuzzer re-encodes a valid image thousands of times with one
 * section damaged (checksums recomputed by the writer, so that the
 * loader's own checks are what is tested), loads each into a fresh VM and,
 * when accepted, lets the guest run a slice: no crash, hang or sanitizer
 * report. RVISOR_FUZZ_SEED and RVISOR_FUZZ_ITERS override the fuzzer's
 * seed and iteration count. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "dev/uart16550.h"
#include "dev/virtio_mmio.h"
#include "io/snap_file.h"
#include "monitor/machine_memory.h"
#include "vm/snapshot.h"
#include "vm/vm.h"

#define MiB (1024ull * 1024)
#define MEM (8 * MiB)
#define NFRAMES (MEM / PAGE_SIZE)
#define RAM VIRT_RAM_BASE
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static struct machine_memory mm;
static struct frame_source fs;

static int group_setup(void **state) {
    (void)state;
    if (!machine_memory_init(&mm, 64 * MiB)) return -1;
    fs = machine_memory_source(&mm);
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    machine_memory_destroy(&mm);
    return 0;
}

/* The interpreter, no event loop (devices work on the caller's thread),
 * the default virtio devices (rng, balloon). */
static struct vm *new_vm(unsigned ncpus, uint64_t mem) {
    struct vm_config cfg = {.mem_size = mem, .engine = VM_ENGINE_INTERP, .ncpus = ncpus, .frames = &fs};
    char err[256];
    struct vm *vm = vm_create(&cfg, NULL, err, sizeof err);
    if (!vm) fail_msg("vm_create: %s", err);
    return vm;
}

/* ---- images: written to a memfd, read back into a buffer ---- */

struct image {
    uint8_t *buf;
    size_t len;
};

static struct snap_writer *start(int *fd) {
    char err[256];
    *fd = memfd_create("vm-snapshot", MFD_CLOEXEC);
    assert_true(*fd >= 0);
    struct snap_writer *w = snap_writer_fd(*fd, err, sizeof err);
    if (!w) fail_msg("snap_writer_fd: %s", err);
    return w;
}

static void finish(struct snap_writer *w, int fd, struct image *img) {
    char err[256];
    if (!snap_writer_commit(w, err, sizeof err)) fail_msg("commit: %s", err);
    off_t n = lseek(fd, 0, SEEK_END);
    assert_true(n > 0);
    img->len = (size_t)n;
    img->buf = malloc(img->len);
    assert_non_null(img->buf);
    assert_int_equal(pread(fd, img->buf, img->len, 0), n);
    close(fd);
}

static void save(struct vm *vm, struct image *img, struct vm_snapshot_stats *st) {
    char err[256];
    int fd;
    struct snap_writer *w = start(&fd);
    if (!vm_snapshot_save(vm, w, st, err, sizeof err)) fail_msg("vm_snapshot_save: %s", err);
    finish(w, fd, img);
}

/* Every image here is a valid container (the writer made it), so only
 * vm_snapshot_load may refuse it. */
static bool load(struct vm *vm, const struct image *img, char *err, size_t errlen) {
    struct snap_reader *r = snap_reader_mem(img->buf, img->len, err, errlen);
    if (!r) fail_msg("the container was refused: %s", err);
    bool ok = vm_snapshot_load(vm, r, err, errlen);
    snap_reader_close(r);
    return ok;
}

/* ---- images taken apart into sections and put together again ----
 * A "ram" payload is its run table, zeros up to a page-aligned file offset,
 * then frames; it is kept here without the zeros (split: the table's
 * length) and padded anew when written, so that sections before it may
 * change length and its frames still land page-aligned. */

#define NO_SPLIT SIZE_MAX

struct sec {
    char tag[8];
    uint32_t version;
    uint8_t *data;
    size_t len, split;
};

struct secs {
    unsigned n;
    struct sec s[64];
};

/* In the order vm_snapshot_save writes them ("zero": migration streams). */
static const char *const tags[] = {"vm", "hart", "uart", "plic", "aclint", "rtc", "vmgenid", "virtio", "ram", "zero"};

static void split_image(const struct image *img, struct secs *out) {
    char err[256];
    struct snap_reader *r = snap_reader_mem(img->buf, img->len, err, sizeof err);
    if (!r) fail_msg("snap_reader_mem: %s", err);
    out->n = 0;
    struct snap_section s;
    for (unsigned t = 0; t < NELEM(tags); t++)
        while (snap_reader_find(r, tags[t], &s)) {
            assert_true(out->n < NELEM(out->s));
            struct sec *d = &out->s[out->n++];
            *d = (struct sec){.version = s.version, .split = NO_SPLIT};
            memcpy(d->tag, s.tag, sizeof d->tag);
            size_t skip = 0;
            if (!strcmp(s.tag, "ram")) {
                uint32_t nruns, nalias = 0;
                memcpy(&nruns, s.data, 4);
                d->split = 4 + 20 * (size_t)nruns; /* u32 count, {u64 first, u32 count, u64 sum} each */
                if (s.version >= 2) { /* then u32 count, {u64 frame, u64 source} each */
                    memcpy(&nalias, s.data + d->split, 4);
                    d->split += 4 + 16 * (size_t)nalias;
                }
                skip = (size_t)(-(s.file_offset + d->split) % SNAP_PAGE_ALIGN);
            }
            d->len = (size_t)s.len - skip;
            d->data = malloc(d->len + 1);
            assert_non_null(d->data);
            size_t head = d->split < d->len ? d->split : d->len;
            memcpy(d->data, s.data, head);
            memcpy(d->data + head, s.data + head + skip, d->len - head);
        }
    snap_reader_close(r);
}

static void free_secs(struct secs *s) {
    for (unsigned i = 0; i < s->n; i++) free(s->s[i].data);
}

static void put_sec(struct snap_writer *w, const struct sec *s) {
    size_t head = s->split < s->len ? s->split : s->len;
    bool ok = snap_section_begin(w, s->tag, s->version) && snap_write(w, s->data, head);
    if (s->split != NO_SPLIT) ok = ok && snap_write_align(w) && snap_write(w, s->data + head, s->len - head);
    if (!(ok && snap_section_end(w))) fail_msg("writing section '%s': %s", s->tag, snap_writer_error(w));
}

/* Re-encodes base with section `at` replaced by the nwith sections in with
 * (none: dropped); at < 0 changes nothing. */
static void build(const struct secs *base, int at, const struct sec *with, unsigned nwith, struct image *out) {
    int fd;
    struct snap_writer *w = start(&fd);
    for (unsigned i = 0; i < base->n; i++)
        for (unsigned k = 0; k < ((int)i == at ? nwith : 1); k++) put_sec(w, (int)i == at ? &with[k] : &base->s[i]);
    finish(w, fd, out);
}

/* The index of the nth section with tag. */
static int find_sec(const struct secs *s, const char *tag, unsigned nth) {
    for (unsigned i = 0; i < s->n; i++)
        if (!strcmp(s->s[i].tag, tag) && nth-- == 0) return (int)i;
    fail_msg("no section '%s'", tag);
    return -1;
}

/* ---- a VM in a distinctive state ---- */

/* Frames holding data: the first and last of RAM, a run of three, one with
 * a single byte at its very end and (long) a stretch longer than a "ram"
 * run holds (256); ZERO_FRAME is written with zeros, which the snapshot
 * must leave out. */
static const uint64_t data_frames[] = {0, 100, 101, 102, NFRAMES - 1};
#define BYTE_FRAME 300
#define ZERO_FRAME 50
#define LONG_FIRST 1024
#define LONG_RUN 300

static bool holds_data(uint64_t f, bool long_run) {
    for (unsigned i = 0; i < NELEM(data_frames); i++)
        if (data_frames[i] == f) return true;
    return f == BYTE_FRAME || (long_run && f >= LONG_FIRST && f < LONG_FIRST + LONG_RUN);
}

/* Returns how many frames hold data. */
static unsigned fill_memory(struct vm *vm, bool long_run) {
    uint32_t page[PAGE_SIZE / 4];
    for (unsigned k = 0; k < NELEM(data_frames); k++) {
        for (unsigned i = 0; i < NELEM(page); i++) page[i] = (uint32_t)data_frames[k] * 2654435761u + i * 40503u + 1;
        assert_true(p2m_write(&vm->mem, RAM + data_frames[k] * PAGE_SIZE, page, sizeof page));
    }
    uint8_t one = 0xa5;
    assert_true(p2m_write(&vm->mem, RAM + BYTE_FRAME * PAGE_SIZE + PAGE_SIZE - 1, &one, 1));
    static const uint8_t zeros[PAGE_SIZE];
    assert_true(p2m_write(&vm->mem, RAM + ZERO_FRAME * PAGE_SIZE, zeros, sizeof zeros));
    assert_int_not_equal(p2m_state_of(&vm->mem, ZERO_FRAME), P2M_ZERO);
    for (uint64_t f = 0; long_run && f < LONG_RUN; f++) {
        uint64_t v = f + 1;
        assert_true(p2m_write(&vm->mem, RAM + (LONG_FIRST + f) * PAGE_SIZE + 8 * (f % 512), &v, sizeof v));
    }
    return NELEM(data_frames) + 1 + (long_run ? LONG_RUN : 0);
}

/* Values the CSR paths could produce (Sv39, priv S, MPP S, FS dirty),
 * different for every hart and register. */
#define PC_OF(k) (RAM + 0x2000 + 0x100 * (k))
#define SEPC_OF(k) (RAM + 0x5000 + 2 * (k))
#define MEPC_OF(k) (RAM + 0x6000 + 4 * (k))
static void set_hart(struct hart *h) {
    uint64_t k = h->id + 1;
    h->pc = PC_OF(k), h->sepc = SEPC_OF(k), h->mepc = MEPC_OF(k);
    h->icount = 123456789 * k;
    for (unsigned r = 1; r < 32; r++) h->x[r] = (0x0123456789abcdefull * r) ^ (k << 56);
    for (unsigned r = 0; r < 32; r++) h->f[r] = 0xffffffff00000000ull | (r * 0x01010101u + (uint32_t)k);
    h->fflags = 0x15, h->frm = 3, h->priv = PRIV_S;
    h->mstatus |= MSTATUS_SUM | MSTATUS_MXR | MSTATUS_FS | MSTATUS_SPP | (1ull << 11) | MSTATUS_SIE;
    h->satp = (8ull << 60) | (0x1234ull << 44) | ((RAM >> 12) + 5);
    h->stimecmp = 0x123456789 * k;
    h->stvec = RAM + 0x3000, h->mtvec = RAM + 0x4001;
    h->medeleg = 0xb109, h->mideleg = 0x222, h->mie = 0xaaa, h->mip = MIP_SSIP | MIP_STIP;
    h->mscratch = 0xfeed0000 + k, h->sscratch = 0xbeef0000 + k;
    h->scause = 13, h->stval = 0xdead000 + k, h->mcause = (1ull << 63) | 9, h->mtval = 0xc0ffee;
    h->mcounteren = h->scounteren = 7, h->menvcfg = h->senvcfg = 1;
    h->pmpcfg[0] = 0x1f, h->pmpaddr[0] = (1ull << 54) - 1;
    h->hsm_start_pc = RAM + 0x200000, h->hsm_start_arg = 0x42 + k;
    h->wfi = h->id == 1;
}

static void bus_write(struct vm *vm, uint64_t addr, unsigned size, uint64_t v) {
    assert_true(mmio_bus_write(&vm->bus, addr, size, v));
}

static uint64_t bus_read(struct vm *vm, uint64_t addr, unsigned size) {
    uint64_t v = 0;
    assert_true(mmio_bus_read(&vm->bus, addr, size, &v));
    return v;
}

#define MTIMECMP0 (VIRT_CLINT_BASE + 0x4000)
#define SAVED_TIME 5000000000ull                     /* mtime: 500 s, far from a new VM's 0 */
#define TIMER (SAVED_TIME + 3600 * VIRT_TIMEBASE_HZ) /* not due while the test runs */

/* A VM with the memory above, every hart set, the UART with FIFOs on, 8N1,
 * receive interrupt on, a scratch value and two bytes received, a PLIC
 * priority, hart 0's ACLINT timer, virtio-rng's driver part-way through
 * set-up (a queue size chosen), and its clock at SAVED_TIME. */
static struct vm *busy_vm(unsigned ncpus, bool long_run, unsigned *frames) {
    struct vm *vm = new_vm(ncpus, MEM);
    unsigned n = fill_memory(vm, long_run);
    if (frames) *frames = n;
    for (unsigned i = 0; i < ncpus; i++) set_hart(vm->harts[i]);
    bus_write(vm, VIRT_UART_BASE + 2, 1, 0x01);
    bus_write(vm, VIRT_UART_BASE + 3, 1, 0x03);
    bus_write(vm, VIRT_UART_BASE + 1, 1, 0x01);
    bus_write(vm, VIRT_UART_BASE + 7, 1, 0x5a);
    assert_int_equal(uart_receive(vm->uart, (const uint8_t *)"rv", 2), 2);
    bus_write(vm, VIRT_PLIC_BASE + 4 * VIRT_UART_IRQ, 4, 5);
    bus_write(vm, MTIMECMP0, 8, TIMER);
    bus_write(vm, VIRT_VIRTIO_BASE + VIRTIO_MMIO_STATUS, 4, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    bus_write(vm, VIRT_VIRTIO_BASE + VIRTIO_MMIO_QUEUE_SEL, 4, 0);
    bus_write(vm, VIRT_VIRTIO_BASE + VIRTIO_MMIO_QUEUE_NUM, 4, 8);
    vm_set_time(vm, SAVED_TIME);
    return vm;
}

/* ---- 1: round trip ---- */

static void round_trip(unsigned ncpus) {
    unsigned frames;
    struct vm *a = busy_vm(ncpus, true, &frames);
    struct image img;
    struct vm_snapshot_stats st;
    save(a, &img, &st);
    assert_int_equal(st.frames, frames);
    assert_int_equal(st.zero_frames, 1);

    struct vm *b = new_vm(ncpus, MEM);
    char err[256];
    if (!load(b, &img, err, sizeof err)) fail_msg("load: %s", err);
    vm_snapshot_resume(b);

    /* Every frame alike; those without data were not stored: still unbacked. */
    static uint8_t pa[PAGE_SIZE], pb[PAGE_SIZE];
    for (uint64_t f = 0; f < NFRAMES; f++) {
        assert_true(p2m_read(&a->mem, RAM + f * PAGE_SIZE, pa, sizeof pa));
        assert_true(p2m_read(&b->mem, RAM + f * PAGE_SIZE, pb, sizeof pb));
        if (memcmp(pa, pb, sizeof pa)) fail_msg("frame %llu differs after the load", (unsigned long long)f);
        if (holds_data(f, true) != (p2m_state_of(&b->mem, f) != P2M_ZERO))
            fail_msg("frame %llu is backed %s", (unsigned long long)f, holds_data(f, true) ? "not" : "needlessly");
    }

    /* The harts' architectural state, but for the reservation (a host
     * address: a restored hart holds none). */
    for (unsigned i = 0; i < ncpus; i++) {
        struct hart_state x, y;
        memcpy(&x, &a->harts[i]->arch, sizeof x);
        memcpy(&y, &b->harts[i]->arch, sizeof y);
        assert_int_equal(y.reservation, ~0ull);
        x.reservation = y.reservation = x.reservation_value = y.reservation_value = 0;
        if (memcmp(&x, &y, sizeof x)) fail_msg("hart %u's state differs after the load", i);
    }

    /* The devices answer as they did: every virtio register, the UART's
     * registers and received bytes, the PLIC's priority, the timer. */
    for (uint64_t r = VIRT_VIRTIO_BASE; r < VIRT_VIRTIO_BASE + a->nvirtio * VIRT_VIRTIO_SIZE; r += 4)
        if (bus_read(a, r, 4) != bus_read(b, r, 4)) fail_msg("virtio register %#llx differs", (unsigned long long)r);
    assert_int_equal(bus_read(b, VIRT_VIRTIO_BASE + VIRTIO_MMIO_STATUS, 4), 3);
    assert_int_equal(bus_read(b, VIRT_UART_BASE + 7, 1), 0x5a);
    assert_int_equal(bus_read(b, VIRT_UART_BASE + 3, 1), 0x03);
    assert_int_equal(bus_read(b, VIRT_UART_BASE + 1, 1), 0x01);
    assert_int_equal(bus_read(b, VIRT_UART_BASE + 5, 1) & 1, 1);
    assert_int_equal(bus_read(b, VIRT_UART_BASE + 0, 1), 'r');
    assert_int_equal(bus_read(b, VIRT_UART_BASE + 0, 1), 'v');
    assert_int_equal(bus_read(b, VIRT_PLIC_BASE + 4 * VIRT_UART_IRQ, 4), 5);
    assert_int_equal(bus_read(b, MTIMECMP0, 8), TIMER);

    /* The clock goes on from the saved time. */
    assert_true(vm_time(b) >= SAVED_TIME && vm_time(b) < SAVED_TIME + 60 * VIRT_TIMEBASE_HZ);

    vm_destroy(a);
    vm_destroy(b);
    free(img.buf);
}

static void test_round_trip_one_hart(void **state) {
    (void)state;
    round_trip(1);
}

static void test_round_trip_two_harts(void **state) {
    (void)state;
    round_trip(2);
}

/* ---- 2: refusals ---- */

/* img must be refused by a fresh VM of that shape, with want in the message. */
static void refused(unsigned ncpus, uint64_t mem, const struct image *img, const char *want) {
    struct vm *vm = new_vm(ncpus, mem);
    char err[256] = "";
    if (load(vm, img, err, sizeof err)) fail_msg("an image was accepted; expected \"%s\"", want);
    if (!strstr(err, want)) fail_msg("refused with \"%s\", expected \"%s\"", err, want);
    vm_destroy(vm);
}

static void refused_edit(const struct secs *base, int at, const struct sec *with, unsigned nwith, const char *want) {
    struct image img;
    build(base, at, with, nwith, &img);
    refused(2, MEM, &img, want);
    free(img.buf);
}

/* A "ram" section of one run at `first`, its checksum right. */
static struct sec ram_at(const struct sec *like, uint64_t first, uint32_t count, uint8_t *buf) {
    uint32_t one = 1;
    memset(buf + 24, 0x77, PAGE_SIZE);
    uint64_t sum = snap_checksum(buf + 24, PAGE_SIZE);
    memcpy(buf, &one, 4);
    memcpy(buf + 4, &first, 8);
    memcpy(buf + 12, &count, 4);
    memcpy(buf + 16, &sum, 8);
    struct sec s = *like;
    s.version = 1; /* no alias table: older files load too */
    s.data = buf, s.split = 24, s.len = 24 + PAGE_SIZE;
    return s;
}

/* A copy of s (into buf) with the one 8-byte value `from` in its payload
 * replaced: a value set_hart gave, wherever the table puts it. */
static struct sec patched(const struct sec *s, uint64_t from, uint64_t to, uint8_t *buf) {
    struct sec p = *s;
    p.data = memcpy(buf, s->data, s->len);
    uint8_t *hit = NULL;
    for (size_t off = 0; off + 8 <= s->len; off++)
        if (!memcmp(buf + off, &from, 8)) {
            if (hit) fail_msg("%#llx occurs twice in section '%s'", (unsigned long long)from, s->tag);
            hit = buf + off;
        }
    if (!hit) fail_msg("%#llx is not in section '%s'", (unsigned long long)from, s->tag);
    memcpy(hit, &to, 8);
    return p;
}

static void test_refusals(void **state) {
    (void)state;
    struct vm *vm = busy_vm(2, false, NULL);
    struct image img;
    struct vm_snapshot_stats st;
    save(vm, &img, &st);
    vm_destroy(vm);

    /* Another machine: hart count or memory size. */
    refused(1, MEM, &img, "2 harts");
    refused(2, 2 * MEM, &img, "8 MiB");

    /* The re-encoded copy itself is accepted. */
    struct secs secs;
    split_image(&img, &secs);
    struct image same;
    build(&secs, -1, NULL, 0, &same);
    vm = new_vm(2, MEM);
    char err[256];
    if (!load(vm, &same, err, sizeof err)) fail_msg("the re-encoded image was refused: %s", err);
    vm_destroy(vm);
    free(same.buf);

    /* Each kind of section missing (the second of two harts, virtio devices)
     * but "vmgenid", which files from before it existed lack. */
    static const char *const needed[] = {"vm", "hart", "uart", "plic", "aclint", "rtc", "virtio", "ram"};
    for (unsigned t = 0; t < NELEM(needed); t++) {
        char want[32];
        snprintf(want, sizeof want, "'%s'", needed[t]);
        bool two = !strcmp(needed[t], "hart") || !strcmp(needed[t], "virtio");
        refused_edit(&secs, find_sec(&secs, needed[t], two), NULL, 0, want);
    }

    /* Memory sections naming frames outside RAM, a damaged frame, another version. */
    int at = find_sec(&secs, "ram", 0);
    static uint8_t buf[24 + PAGE_SIZE];
    static const uint64_t outside[][2] = {{NFRAMES, 1}, {NFRAMES - 1, 2}, {UINT64_MAX, 1}, {1ull << 52, 1}};
    for (unsigned i = 0; i < NELEM(outside); i++) {
        struct sec bad = ram_at(&secs.s[at], outside[i][0], (uint32_t)outside[i][1], buf);
        refused_edit(&secs, at, &bad, 1, "outside the guest's memory");
    }
    struct sec bad = ram_at(&secs.s[at], 7, 1, buf);
    buf[24 + 100] ^= 1;
    refused_edit(&secs, at, &bad, 1, "corrupt");
    bad = secs.s[at];
    bad.version = 3;
    refused_edit(&secs, at, &bad, 1, "version");

    /* A hart with an odd pc, mepc or sepc: no instruction makes one, and
     * the interpreter indexes decoded code by pc / 2 (at a page's last
     * byte it ran past its code page and called a wild pointer). */
    at = find_sec(&secs, "hart", 1);
    assert_true(secs.s[at].len <= sizeof buf);
    static const uint64_t even[] = {PC_OF(2), MEPC_OF(2), SEPC_OF(2)};
    for (unsigned i = 0; i < NELEM(even); i++) {
        bad = patched(&secs.s[at], even[i], even[i] + 1, buf);
        refused_edit(&secs, at, &bad, 1, "hart 1's saved state has an odd pc");
    }

    free_secs(&secs);
    free(img.buf);
}

/* ---- 3: hostile images ---- */

static uint64_t prng;

static uint64_t rnd(void) {
    prng ^= prng << 13;
    prng ^= prng >> 7;
    prng ^= prng << 17;
    return prng;
}

static uint64_t env_u64(const char *name, uint64_t dflt) {
    const char *s = getenv(name);
    return s && *s ? strtoull(s, NULL, 0) : dflt;
}

static const uint64_t extremes[] = {0, 1, 2, 3, 16, 255, 256, 4096, NFRAMES - 1, NFRAMES, 0x7fffffff, 0x80000000,
                                    0xffffffff, 1ull << 32, RAM, RAM + MEM, (1ull << 63) - 1, 1ull << 63, ~0ull};
static const int64_t deltas[] = {-4096, -4, -2, -1, 1, 2, 4, 4096};
#define PICK(a) (a)[rnd() % NELEM(a)]

enum { M_BYTES, M_BITS, M_TRUNCATE, M_EXTEND, M_INT, M_DELTA, M_VERSION, M_DROP, M_DUPLICATE, M_KINDS };
static const char *const kind_names[] = {"bytes", "bits", "truncate", "extend", "extreme", "delta",
                                         "version", "drop", "duplicate"};

/* Where to put a u32 or u64: half the time in the first 256 bytes (counts,
 * run tables), half the time aligned. */
static size_t offset_for(const struct sec *s, size_t size) {
    /* One rnd() per statement: the order of calls in one expression is
     * the compiler's, and a seed must mean the same images in every build. */
    size_t room = s->len - size + 1, front = rnd() % 2, aligned = rnd() % 2;
    size_t off = rnd() % (room > 256 && front ? 256 : room);
    return aligned ? off - off % size : off;
}

/* Fills out[] with what replaces orig (out[0]'s data in buf, which has room
 * for 64 bytes more); returns how many sections. */
static unsigned mutate(const struct sec *orig, struct sec out[2], uint8_t *buf, unsigned kind) {
    out[0] = out[1] = *orig;
    struct sec *s = &out[0];
    s->data = memcpy(buf, orig->data, orig->len);
    size_t size = rnd() % 2 ? 4 : 8, off = s->len >= size ? offset_for(s, size) : SIZE_MAX;
    uint64_t v = 0;
    if (off != SIZE_MAX) memcpy(&v, buf + off, size);
    switch (kind) {
    case M_BYTES:
        for (unsigned n = 1 + rnd() % 4; s->len && n--;) {
            size_t at = rnd() % s->len;
            buf[at] = (uint8_t)rnd();
        }
        break;
    case M_BITS:
        for (unsigned n = 1 + rnd() % 3; s->len && n--;) {
            size_t at = rnd() % s->len;
            buf[at] ^= (uint8_t)(1u << rnd() % 8);
        }
        break;
    case M_TRUNCATE: s->len = s->len ? rnd() % s->len : 0; break;
    case M_EXTEND:
        for (unsigned n = 1 + rnd() % 64; n--;) buf[s->len++] = (uint8_t)rnd();
        break;
    case M_INT: v = PICK(extremes); break;
    case M_DELTA: v += (uint64_t)PICK(deltas); break;
    case M_VERSION: s->version = (uint32_t)PICK(extremes); break;
    case M_DROP: return 0;
    case M_DUPLICATE: return 2;
    }
    if ((kind == M_INT || kind == M_DELTA) && off != SIZE_MAX) memcpy(buf + off, &v, size);
    return 1;
}

/* For the fuzzer, harts that run (so that what a load accepted is used):
 * in M-mode, an endless loop over the UART, virtio slot 0 and the PLIC's
 * claim register, then 200 rounds over memory (device accesses are slow),
 * and a trap handler that steps over what faults. Assembled with
 * riscv64-linux-gnu-as, no compressed forms. */
static const uint32_t program[] = {
    0x100002b7, /* loop:  lui t0, 0x10000       UART */
    0x0052c303, /*        lbu t1, 5(t0)         LSR */
    0x006283a3, /*        sb t1, 7(t0)          SCR */
    0x00a28023, /*        sb a0, 0(t0)          THR */
    0x100013b7, /*        lui t2, 0x10001       virtio slot 0 */
    0x0703ae03, /*        lw t3, 0x70(t2)       Status */
    0x0403a823, /*        sw zero, 0x50(t2)     QueueNotify */
    0x0c200eb7, /*        lui t4, 0xc200 */
    0x004e8e9b, /*        addiw t4, t4, 4       PLIC context 0 claim */
    0x000eaf03, /*        lw t5, 0(t4) */
    0x01eea023, /*        sw t5, 0(t4)          complete */
    0x00080fb7, /*        lui t6, 0x80 */
    0x001f8f9b, /*        addiw t6, t6, 1 */
    0x00cf9f93, /*        slli t6, t6, 12       0x80001000 */
    0x0c800413, /*        li s0, 200 */
    0x00afb023, /* inner: sd a0, 0(t6) */
    0x008fb583, /*        ld a1, 8(t6) */
    0x00150513, /*        addi a0, a0, 1 */
    0xfff40413, /*        addi s0, s0, -1 */
    0xfe0418e3, /*        bnez s0, inner */
    0xfb1ff06f, /*        j loop */
    0x341022f3, /* 0x54:  csrr t0, mepc */
    0x00428293, /*        addi t0, t0, 4 */
    0x34129073, /*        csrw mepc, t0 */
    0x30200073, /*        mret */
};
#define PROGRAM (RAM + 2 * PAGE_SIZE)
#define HANDLER (PROGRAM + 0x54)

static void make_runnable(struct vm *vm) {
    assert_true(p2m_write(&vm->mem, PROGRAM, program, sizeof program));
    for (unsigned i = 0; i < vm->nharts; i++) {
        struct hart *h = vm->harts[i];
        h->priv = PRIV_M, h->pc = PROGRAM, h->mtvec = HANDLER;
        h->medeleg = h->mideleg = 0, h->mstatus |= MSTATUS_MPP, h->wfi = false;
    }
}

/* What a guest does first: registers read, a slice run. */
static void run_a_little(struct vm *vm) {
    vm_snapshot_resume(vm);
    for (unsigned off = 0; off < 8; off++) bus_read(vm, VIRT_UART_BASE + off, 1);
    for (unsigned i = 0; i < vm->nvirtio; i++)
        for (unsigned off = 0; off < 0x100; off += 4) bus_read(vm, VIRT_VIRTIO_BASE + i * VIRT_VIRTIO_SIZE + off, 4);
    uint64_t idle;
    vm_run_slice(vm, &idle);
}

static void test_hostile_images(void **state) {
    (void)state;
    uint64_t seed = env_u64("RVISOR_FUZZ_SEED", 0x5eed5a7e);
    unsigned iters = (unsigned)env_u64("RVISOR_FUZZ_ITERS", 5000);
    prng = seed ? seed : 1;

    struct vm *vm = busy_vm(2, false, NULL);
    make_runnable(vm);
    struct image img;
    struct vm_snapshot_stats st;
    save(vm, &img, &st);
    vm_destroy(vm);
    struct secs secs;
    split_image(&img, &secs);
    free(img.buf);
    /* Plus what a migration stream holds too: a "zero" section (runs
     * without data, {u32 count, {u64 first, u32 count} each}). */
    static uint8_t zero_runs[16] = {1, 0, 0, 0, BYTE_FRAME & 0xff, BYTE_FRAME >> 8, [12] = 1};
    secs.s[secs.n++] = (struct sec){"zero", 1, malloc(16), 16, NO_SPLIT};
    assert_non_null(secs.s[secs.n - 1].data);
    memcpy(secs.s[secs.n - 1].data, zero_runs, 16);
    build(&secs, -1, NULL, 0, &img);

    /* Undamaged, the image loads and its harts run the loop. */
    vm = new_vm(2, MEM);
    char err[256];
    if (!load(vm, &img, err, sizeof err)) fail_msg("load: %s", err);
    assert_int_equal(p2m_state_of(&vm->mem, BYTE_FRAME), P2M_ZERO);
    run_a_little(vm);
    assert_int_equal(vm->exit_reason, VM_RUNNING);
    assert_true(vm->harts[1]->icount > 1000 && vm->harts[1]->pc - PROGRAM < 0x54);
    vm_destroy(vm);
    free(img.buf);

    size_t biggest = 0;
    for (unsigned i = 0; i < secs.n; i++) biggest = secs.s[i].len > biggest ? secs.s[i].len : biggest;
    uint8_t *buf = malloc(biggest + 64);
    assert_non_null(buf);
    unsigned accepted = 0, acc_kind[M_KINDS] = {0}, acc_tag[NELEM(tags)] = {0}, all_tag[NELEM(tags)] = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned it = 0; it < iters; it++) {
        unsigned at = (unsigned)(rnd() % secs.n), kind = (unsigned)(rnd() % M_KINDS), t = 0;
        struct sec with[2];
        unsigned nwith = mutate(&secs.s[at], with, buf, kind);
        struct image bad;
        build(&secs, (int)at, with, nwith, &bad);
        while (strcmp(tags[t], secs.s[at].tag)) t++;
        all_tag[t]++;

        /* A fresh VM each time: one whose load failed must be destroyed. */
        vm = new_vm(2, MEM);
        err[0] = 0;
        if (load(vm, &bad, err, sizeof err)) {
            accepted++, acc_kind[kind]++, acc_tag[t]++;
            run_a_little(vm);
        } else if (!err[0]) {
            fail_msg("iteration %u (seed %#llx): refused without a message", it, (unsigned long long)seed);
        }
        vm_destroy(vm);
        free(bad.buf);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);

    print_message("%u hostile loads in %.2f s (seed %#llx): %u accepted, %u refused\n", iters,
                  (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
                  (unsigned long long)seed, accepted, iters - accepted);
    for (unsigned t = 0; t < NELEM(tags); t++)
        print_message("  %-7s damaged: %4u accepted of %4u\n", tags[t], acc_tag[t], all_tag[t]);
    for (unsigned k = 0; k < M_KINDS; k++) print_message("  %-9s accepted %4u\n", kind_names[k], acc_kind[k]);
    if (iters >= 100) assert_true(accepted > iters / 20 && iters - accepted > iters / 20);
    free(buf);
    free_secs(&secs);
}

/* ---- 4: a shared machine frame is stored once ---- */

/* Frames 10, 20 and 30 hold the same page, merged into one shared machine
 * frame (page sharing's protocol, as in test_p2m); 40 holds another. */
static struct vm *sharing_vm(void) {
    struct vm *vm = new_vm(1, MEM);
    static const uint64_t same[] = {10, 20, 30};
    uint64_t mfn[3];
    for (unsigned i = 0; i < 3; i++) {
        assert_true(p2m_fill(&vm->mem, RAM + same[i] * PAGE_SIZE, 0x5a, PAGE_SIZE));
        assert_true(p2m_protect(&vm->mem, same[i], &mfn[i]));
    }
    assert_true(p2m_fill(&vm->mem, RAM + 40 * PAGE_SIZE, 0x33, PAGE_SIZE));
    assert_int_equal(p2m_share_in_place(&vm->mem, 10, mfn[0]), P2M_MERGED);
    assert_int_equal(p2m_merge(&vm->mem, 20, mfn[1], false, mfn[0]), P2M_MERGED);
    assert_int_equal(p2m_merge(&vm->mem, 30, mfn[2], false, mfn[0]), P2M_MERGED);
    return vm;
}

static void expect_byte(struct vm *vm, uint64_t frame, uint8_t byte) {
    static uint8_t page[PAGE_SIZE], want[PAGE_SIZE];
    memset(want, byte, sizeof want);
    assert_true(p2m_read(&vm->mem, RAM + frame * PAGE_SIZE, page, sizeof page));
    if (memcmp(page, want, sizeof page)) fail_msg("frame %llu does not hold %#x", (unsigned long long)frame, byte);
}

/* Loaded, the three read alike and are independent again. */
static void check_sharing_clone(struct vm *b) {
    expect_byte(b, 10, 0x5a);
    expect_byte(b, 20, 0x5a);
    expect_byte(b, 30, 0x5a);
    expect_byte(b, 40, 0x33);
    assert_true(p2m_fill(&b->mem, RAM + 20 * PAGE_SIZE, 0x11, PAGE_SIZE));
    expect_byte(b, 10, 0x5a);
    expect_byte(b, 20, 0x11);
    expect_byte(b, 30, 0x5a);
}

static void test_shared_frame_stored_once(void **state) {
    (void)state;
    struct vm *a = sharing_vm();
    struct image img;
    struct vm_snapshot_stats st;
    save(a, &img, &st);
    assert_int_equal(st.frames, 2); /* 10 and 40 */
    assert_int_equal(st.aliased, 2); /* 20 and 30 */
    vm_destroy(a);

    /* Copied in (a migration target's way)... */
    struct vm *b = new_vm(1, MEM);
    char err[256];
    if (!load(b, &img, err, sizeof err)) fail_msg("load: %s", err);
    check_sharing_clone(b);
    vm_destroy(b);

    /* ... and mapped from a file (a restore's), copied on first access. */
    char path[] = "/tmp/rvisor-test-snapshot-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, img.buf, img.len), (ssize_t)img.len);
    close(fd);
    struct snap_reader *r = snap_reader_open(path, 0, err, sizeof err);
    unlink(path);
    if (!r) fail_msg("snap_reader_open: %s", err);
    b = new_vm(1, MEM);
    if (!vm_snapshot_load(b, r, err, sizeof err)) fail_msg("load from a file: %s", err);
    snap_reader_close(r);
    assert_int_equal(p2m_state_of(&b->mem, 30), P2M_IMAGE);
    check_sharing_clone(b);
    vm_destroy(b);

    /* An alias whose source holds nothing stored is refused. */
    struct secs secs;
    split_image(&img, &secs);
    free(img.buf);
    int at = find_sec(&secs, "ram", 0);
    struct sec bad = secs.s[at];
    uint8_t *buf = malloc(bad.len);
    assert_non_null(buf);
    bad.data = memcpy(buf, secs.s[at].data, bad.len);
    uint32_t nruns;
    memcpy(&nruns, buf, 4);
    uint64_t nowhere = 500;
    memcpy(buf + 4 + 20 * (size_t)nruns + 4 + 8, &nowhere, 8); /* the first alias's source */
    build(&secs, at, &bad, 1, &img);
    refused(1, MEM, &img, "holds no stored contents");
    free(img.buf);
    nowhere = NFRAMES;
    memcpy(buf + 4 + 20 * (size_t)nruns + 4 + 8, &nowhere, 8);
    build(&secs, at, &bad, 1, &img);
    refused(1, MEM, &img, "outside the guest's memory");
    free(img.buf);
    free(buf);
    free_secs(&secs);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_one_hart),
        cmocka_unit_test(test_round_trip_two_harts),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_hostile_images),
        cmocka_unit_test(test_shared_frame_stored_once),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
