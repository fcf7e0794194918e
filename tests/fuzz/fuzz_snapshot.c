/* libFuzzer harness: the snapshot container (io/snap_file.c), the VM
 * description saved with it (monitor/vm_spec_store.c), and the loader of
 * a VM's state (vm/snapshot.c and every part's *_load: harts, UART, PLIC,
 * ACLINT, RTC, virtio transports and their devices, guest memory), as a
 * file restore and as a migration stream deliver them.
 *
 * Input: one byte choosing the mode, then:
 *   raw modes (0 memory, 1 file, 2 stream): the rest is an image as it is.
 *     0 and 1 open it with snap_reader_mem / snap_reader_open (the file
 *     way maps guest memory lazily from it) and, if the container is
 *     valid, load its "spec" and load it into a fresh VM with
 *     vm_snapshot_load; 2 reads it with snap_stream_open/next and feeds
 *     the sections to vm_loader_section in stream order, as an incoming
 *     migration does.
 *   wrap modes (3 memory, 4 file, 5 stream): checksums make mutated images
 *     useless, so the next byte b picks a section tag (TAGS[(b & 15) %
 *     NTAGS]), which section of that tag in a valid base image
 *     ((b >> 4) & 7: the virtio ones are rng, balloon, console, blk) and
 *     whether the new section replaces it or is added before it (bit 7);
 *     the rest is that section's payload. The image is written anew with
 *     snap_writer_fd (so every checksum holds) and loaded as in the raw
 *     mode of the same kind.
 * The base image is a 1-hart, 4 MiB interpreter VM with a virtio console
 * and a disk besides rng and balloon, and two frames of memory (a loop at
 * the start of RAM and a data frame), saved with its "spec"; it is built
 * on first use. Every VM loaded into has that shape. An accepted image's VM runs a few
 * thousand instructions. A refused image is fine; a crash, a hang, a
 * leaked frame or a sanitizer report is a bug.
 *
 * FUZZ_SNAPSHOT_SEEDS=DIR makes the harness write a seed corpus (the base
 * image in every mode and each base section wrapped) into DIR and exit. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_vm.h"
#include "io/snap_file.h"
#include "monitor/vm_spec_store.h"
#include "vm/snapshot.h"

#define RUN_BUDGET 4000
#define MAX_SECTION (64ull << 20) /* the migration target's bound */

enum { RAW_MEM, RAW_FILE, RAW_STREAM, WRAP_MEM, WRAP_FILE, WRAP_STREAM, NMODES };

/* New tags go at the end: a wrap seed's selector byte indexes this list. */
static const char *const TAGS[] = {"vm",     "hart", "uart", "plic", "aclint", "rtc",
                                   "virtio", "ram",  "zero", "spec", "vmgenid"};
#define NTAGS (sizeof TAGS / sizeof TAGS[0])
/* The base image's sections, in its order ("zero" is a migration stream's only). */
static const char *const BASE_ORDER[] = {"spec", "vm",      "hart",   "uart", "plic",
                                         "aclint", "rtc", "vmgenid", "virtio", "ram"};

/* The shape of every VM here: the default devices, a virtio console and a
 * disk (a 64 KiB memfd, which the disk keeps open by its own descriptor). */
static struct vm *new_vm(void) {
    int disk = memfd_create("fuzz-snapshot-disk", MFD_CLOEXEC);
    if (disk < 0 || ftruncate(disk, 64 * 1024) != 0) abort();
    char drive[64];
    snprintf(drive, sizeof drive, "file=/proc/self/fd/%d", disk);
    const char *drives[] = {drive};
    struct vm *vm = fuzz_vm_create_with(VM_ENGINE_INTERP, FUZZ_MEM, true, drives, 1);
    close(disk);
    return vm;
}

/* A memfd holding len bytes, its path in path. */
static int memfd_of(const void *data, size_t len, char path[64]) {
    int fd = memfd_create("fuzz-snapshot", MFD_CLOEXEC);
    if (fd < 0) return -1;
    if (len && pwrite(fd, data, len, 0) != (ssize_t)len) {
        close(fd);
        return -1;
    }
    snprintf(path, 64, "/proc/self/fd/%d", fd);
    return fd;
}

/* The whole content of fd, malloc'd. */
static uint8_t *slurp(int fd, size_t *len) {
    off_t n = lseek(fd, 0, SEEK_END);
    uint8_t *buf = n > 0 ? malloc((size_t)n) : NULL;
    if (buf && pread(fd, buf, (size_t)n, 0) != n) {
        free(buf);
        buf = NULL;
    }
    *len = buf ? (size_t)n : 0;
    return buf;
}

/* ---- the base image, built once ---- */

struct base {
    uint8_t *image;
    size_t len;
};

static const struct base *base_image(void) {
    static struct base b;
    if (b.image) return &b;
    struct vm *vm = new_vm();
    /* A loop storing a counter: addi a0,a0,1; sd a0,0(a1); j .-8 (a1: the data frame). */
    static const uint32_t code[] = {0x00150513, 0x00a5b023, 0xff9ff06f};
    static const char data[] = "fuzz_snapshot's data frame";
    struct hart *h = vm->harts[0];
    if (!p2m_write(&vm->mem, VIRT_RAM_BASE, code, sizeof code) ||
        !p2m_write(&vm->mem, VIRT_RAM_BASE + 0x3000, data, sizeof data))
        abort();
    /* Frames 5 and 6 hold the same page, merged by page sharing: the image
     * stores 6 as an alias of 5. */
    uint64_t m5, m6;
    if (!p2m_fill(&vm->mem, VIRT_RAM_BASE + 5 * 4096, 0x5a, 4096) ||
        !p2m_fill(&vm->mem, VIRT_RAM_BASE + 6 * 4096, 0x5a, 4096) || !p2m_protect(&vm->mem, 5, &m5) ||
        !p2m_protect(&vm->mem, 6, &m6) || p2m_share_in_place(&vm->mem, 5, m5) != P2M_MERGED ||
        p2m_merge(&vm->mem, 6, m6, false, m5) != P2M_MERGED)
        abort();
    h->pc = h->mtvec = VIRT_RAM_BASE;
    h->x[11] = VIRT_RAM_BASE + 0x3000;
    hart_update_tlb_sets(h);
    struct vm_spec spec = {.name = "fuzz", .mem_size = FUZZ_MEM, .cpus = 1, .shares = 1000,
                           .engine = VM_ENGINE_INTERP, .share_group = "group", .virtio_console = true,
                           .drives = {"file=/var/lib/rvisor/disk.img,serial=fuzz"}, .ndrives = 1};
    struct vm_spec_store store;
    char err[256];
    int fd = memfd_create("fuzz-base", MFD_CLOEXEC);
    struct snap_writer *w = fd >= 0 ? snap_writer_fd(fd, err, sizeof err) : NULL;
    struct vm_snapshot_stats st;
    if (!w || !vm_spec_store_copy(&store, &spec) || !vm_spec_store_save(&store, w) ||
        !vm_snapshot_save(vm, w, &st, err, sizeof err) || !snap_writer_commit(w, err, sizeof err))
        abort();
    vm_spec_store_free(&store);
    fuzz_vm_destroy(vm);
    b.image = slurp(fd, &b.len);
    close(fd);
    if (!b.image) abort();
    return &b;
}

/* Writes one section; a "ram" payload is its run table (u32 count, then
 * 20 bytes a run), from version 2 its alias table (u32 count, then 16
 * bytes an alias), zeros up to a page-aligned offset, then the frames. */
static bool put_section(struct snap_writer *w, const char *tag, uint32_t version, const uint8_t *p, size_t len,
                        bool raw_ram_frames) {
    if (!snap_section_begin(w, tag, version)) return false;
    if (!strcmp(tag, "ram") && len >= 4) {
        uint32_t n;
        memcpy(&n, p, 4);
        size_t runs = 4 + 20 * (size_t)n, head = runs;
        if (version >= 2 && runs + 4 <= len) {
            uint32_t aliases;
            memcpy(&aliases, p + runs, 4);
            head += 4 + 16 * (size_t)aliases;
        }
        if (head > len) head = len;
        size_t frames = raw_ram_frames ? len - head : 0;
        if (!raw_ram_frames) { /* a base payload: its frames are its last bytes, after the padding */
            uint64_t total = 0;
            for (uint32_t i = 0; i < n && 4 + 20 * (size_t)i + 12 <= len; i++) {
                uint32_t count;
                memcpy(&count, p + 4 + 20 * (size_t)i + 8, 4);
                total += count;
            }
            frames = total * 4096 <= len - head ? (size_t)total * 4096 : len - head;
        }
        return snap_write(w, p, head) && snap_write_align(w) && snap_write(w, p + len - frames, frames) &&
               snap_section_end(w);
    }
    return snap_write(w, p, len) && snap_section_end(w);
}

/* The base image with the fuzzed payload in a section of TAGS[(sel & 15) %
 * NTAGS], added before (sel bit 7) or in place of the ((sel >> 4) & 7)th
 * of that tag (or the last, if there are fewer); written to a memfd. */
static int wrap(uint8_t sel, const uint8_t *payload, size_t len) {
    const struct base *b = base_image();
    const char *tag = TAGS[(sel & 15) % NTAGS];
    bool add = sel & 0x80;
    char err[256];
    struct snap_reader *r = snap_reader_mem(b->image, b->len, err, sizeof err);
    if (!r) abort();
    size_t have = snap_reader_count(r, tag), nth = (sel >> 4) & 7;
    if (have && nth >= have) nth = have - 1;
    int fd = memfd_create("fuzz-wrap", MFD_CLOEXEC);
    struct snap_writer *w = fd >= 0 ? snap_writer_fd(fd, err, sizeof err) : NULL;
    bool ok = w != NULL, placed = false;
    for (size_t t = 0; ok && t < sizeof BASE_ORDER / sizeof BASE_ORDER[0]; t++) {
        struct snap_section s;
        size_t seen = 0;
        while (ok && snap_reader_find(r, BASE_ORDER[t], &s)) {
            bool here = !placed && !strcmp(s.tag, tag) && seen++ == nth;
            if (here) {
                ok = put_section(w, tag, s.version, payload, len, true);
                placed = true;
                if (!add) continue;
            }
            ok = ok && put_section(w, s.tag, s.version, s.data, (size_t)s.len, false);
        }
    }
    if (ok && !placed) ok = put_section(w, tag, 1, payload, len, true); /* "zero": at the end */
    if (w) ok = ok ? snap_writer_commit(w, err, sizeof err) : (snap_writer_abort(w), false);
    snap_reader_close(r);
    if (!ok) {
        if (fd >= 0) close(fd);
        __builtin_trap(); /* the base must always re-encode */
    }
    return fd;
}

/* ---- loading ---- */

static void check_spec(const struct snap_section *s) {
    struct vm_spec_store store;
    char err[256];
    if (vm_spec_store_load(s, &store, err, sizeof err)) {
        const struct vm_spec *v = &store.spec;
        if (v->ndrives > VM_MAX_DRIVES || v->nnets > VM_MAX_NETS) __builtin_trap();
        for (unsigned i = 0; i < v->ndrives; i++) (void)strlen(v->drives[i]);
        for (unsigned i = 0; i < v->nnets; i++) (void)strlen(v->nets[i]);
        (void)strlen(v->share_group);
    }
    vm_spec_store_free(&store);
}

static void run_loaded(struct vm *vm) {
    vm_snapshot_resume(vm);
    fuzz_vm_run(vm, RUN_BUDGET);
}

/* A file restore: the container, its spec, then the VM. */
static void load_image(struct snap_reader *r, const char *why) {
    if (!r) {
        fuzz_say("open", why);
        return;
    }
    struct snap_section s;
    if (snap_reader_find(r, "spec", &s)) check_spec(&s);
    struct vm *vm = new_vm();
    char err[512];
    if (vm_snapshot_load(vm, r, err, sizeof err)) run_loaded(vm);
    else fuzz_say("load", err);
    fuzz_vm_destroy(vm);
    snap_reader_close(r);
}

/* An incoming migration: sections in stream order. */
static void load_stream(int fd) {
    char err[512];
    if (lseek(fd, 0, SEEK_SET) != 0) return;
    struct snap_stream *st = snap_stream_open(fd, MAX_SECTION, 1000, err, sizeof err);
    if (!st) {
        fuzz_say("stream", err);
        return;
    }
    struct vm *vm = NULL;
    struct vm_loader l;
    bool ok = true;
    for (;;) {
        struct snap_section s;
        int n = snap_stream_next(st, &s, err, sizeof err);
        if (n <= 0) {
            ok = n == 0;
            if (!ok) fuzz_say("stream", err);
            break;
        }
        if (!strcmp(s.tag, "spec")) {
            check_spec(&s);
            continue;
        }
        if (!strcmp(s.tag, "migrate") || !strcmp(s.tag, "sync")) continue;
        if (!vm) {
            vm = new_vm();
            vm_loader_init(&l, vm);
        }
        if (!vm_loader_section(&l, &s, err, sizeof err)) {
            fuzz_say("section", err);
            ok = false;
            break;
        }
    }
    if (vm && ok && vm_loader_finish(&l, err, sizeof err)) run_loaded(vm);
    else if (vm && ok) fuzz_say("finish", err);
    if (vm) fuzz_vm_destroy(vm);
    snap_stream_close(st);
}

static void load_fd(int fd, unsigned kind) {
    char path[64], err[512];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (kind == RAW_STREAM) {
        load_stream(fd);
    } else if (kind == RAW_FILE) {
        load_image(snap_reader_open(path, 0, err, sizeof err), err);
    } else {
        size_t len;
        uint8_t *buf = slurp(fd, &len);
        if (buf) load_image(snap_reader_mem(buf, len, err, sizeof err), err);
        free(buf);
    }
}

static void write_seeds(const char *dir);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *dir = getenv("FUZZ_SNAPSHOT_SEEDS");
    if (dir) {
        write_seeds(dir);
        exit(0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned mode = data[0] % NMODES;
    char err[512], path[64];
    if (mode == RAW_MEM) {
        load_image(snap_reader_mem(data + 1, size - 1, err, sizeof err), err);
        return 0;
    }
    int fd;
    if (mode == RAW_FILE || mode == RAW_STREAM) {
        fd = memfd_of(data + 1, size - 1, path);
    } else {
        if (size < 2) return 0;
        fd = wrap(data[1], data + 2, size - 2);
    }
    if (fd < 0) return 0;
    load_fd(fd, mode >= WRAP_MEM ? mode - WRAP_MEM : mode);
    close(fd);
    return 0;
}

/* ---- the seed corpus ---- */

static void write_seed(const char *dir, const char *name, uint8_t m0, int m1, const void *p, size_t len) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputc(m0, f);
    if (m1 >= 0) fputc(m1, f);
    fwrite(p, 1, len, f);
    fclose(f);
}

static void write_seeds(const char *dir) {
    const struct base *b = base_image();
    static const char *const raw[] = {"raw-mem", "raw-file", "raw-stream"};
    for (unsigned m = RAW_MEM; m <= RAW_STREAM; m++) write_seed(dir, raw[m], (uint8_t)m, -1, b->image, b->len);
    char err[256], name[64];
    struct snap_reader *r = snap_reader_mem(b->image, b->len, err, sizeof err);
    if (!r) abort();
    for (unsigned t = 0; t < NTAGS; t++) {
        struct snap_section s;
        if (!strcmp(TAGS[t], "virtio") || !snap_reader_find(r, TAGS[t], &s)) continue; /* virtio: below */
        const uint8_t *p = s.data;
        size_t len = (size_t)s.len;
        uint8_t *flat = NULL;
        if (!strcmp(s.tag, "ram")) { /* without the padding: put_section aligns fuzzed frames anew */
            uint32_t n;
            memcpy(&n, p, 4);
            size_t head = 4 + 20 * (size_t)n, frames = 0;
            for (uint32_t i = 0; i < n; i++) {
                uint32_t count;
                memcpy(&count, p + 4 + 20 * (size_t)i + 8, 4);
                frames += (size_t)count * 4096;
            }
            flat = malloc(head + frames);
            memcpy(flat, p, head);
            memcpy(flat + head, p + len - frames, frames);
            p = flat;
            len = head + frames;
        }
        unsigned m = t % 3; /* spread the tags over the three ways of loading */
        snprintf(name, sizeof name, "wrap-%s", TAGS[t]);
        write_seed(dir, name, (uint8_t)(WRAP_MEM + m), (int)t, p, len);
        free(flat);
    }
    /* Each virtio device's own section (the slots: rng, balloon, console, blk). */
    struct snap_section s;
    snap_reader_rewind(r);
    for (unsigned k = 0; snap_reader_find(r, "virtio", &s); k++) {
        snprintf(name, sizeof name, "wrap-virtio-%u", k);
        write_seed(dir, name, (uint8_t)(WRAP_MEM + k % 3), (int)(6 | k << 4), s.data, (size_t)s.len);
    }
    snap_reader_close(r);
    /* A migration stream's "zero" (not in a file): frame 3 of RAM, in a stream. */
    static const uint8_t zero[16] = {1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0};
    write_seed(dir, "wrap-zero", WRAP_STREAM, 8, zero, sizeof zero);
}
