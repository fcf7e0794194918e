/* A VM's snapshot sections: see snapshot.h.
 *
 * Order: "vm" (the machine's shape and clock), a "hart" per hart, the
 * platform devices, a "virtio" per occupied slot in slot order, then
 * "ram" sections. Guest memory is stored as the frames that hold data:
 * frames never written (P2M_ZERO, ballooned, reported free) and frames
 * that hold only zeros are left out, and read back as zeros. A migration
 * stream sends "ram" round after round and "zero" sections for frames
 * that became zero since an earlier round; it is loaded in stream order,
 * so a later copy of a frame wins. */
#include "vm/snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "dev/aclint.h"
#include "dev/goldfish_rtc.h"
#include "dev/plic.h"
#include "dev/uart16550.h"
#include "dev/virtio_mmio.h"
#include "dev/vmgenid.h"
#include "io/vmstate.h"
#include "vm/vm.h"

/* The machine: what must agree with the VM it is loaded into, and the
 * guest clock as a guest-relative value (mtime), not a host time. */
struct vm_saved {
    uint32_t nharts, nvirtio;
    uint64_t mem_size;
    uint64_t mtime;
    bool sbi_in_monitor;
    uint64_t tohost, fromhost;
};

static const struct vmstate_field vm_fields[] = {
    VMSTATE_U(struct vm_saved, nharts),  VMSTATE_U(struct vm_saved, nvirtio),
    VMSTATE_U(struct vm_saved, mem_size), VMSTATE_U(struct vm_saved, mtime),
    VMSTATE_BOOL(struct vm_saved, sbi_in_monitor),
    VMSTATE_U(struct vm_saved, tohost),  VMSTATE_U(struct vm_saved, fromhost),
};
static const struct vmstate vm_vmstate = VMSTATE_TABLE("vm", 1, vm_fields);

/* Guest memory: each "ram" section holds a table of runs of consecutive
 * frames, {first frame, count, XXH3 of their bytes}, then (version 2) a
 * table of aliases, {frame, source}: frames that mapped one shared machine
 * frame (page sharing) with a frame stored before them in this pass, whose
 * contents they take instead of storing them again; then the frames
 * themselves from a page-aligned file offset, so that a restore can map
 * them from the file instead of copying. */
#define RAM_VERSION 2
#define RAM_SECTION_FRAMES 4096u /* at most 16 MiB of data per section */
/* What a pass gathers per section: one batch goes to the file while the
 * next is gathered, so two are held (16 MiB in all). */
#define RAM_BATCH_FRAMES 2048u
#define RAM_RUN_FRAMES 256u

#define ZERO_VERSION 1

struct ram_run {
    uint64_t first;
    uint32_t count;
};

/* Runs of frames being gathered into one section. */
struct run_list {
    struct ram_run runs[RAM_SECTION_FRAMES];
    unsigned n, frames;
};

static bool run_add(struct run_list *l, uint64_t f) {
    struct ram_run *last = l->n ? &l->runs[l->n - 1] : NULL;
    if (last && last->first + last->count == f && last->count < RAM_RUN_FRAMES) {
        last->count++;
    } else {
        if (l->n == RAM_SECTION_FRAMES) return false;
        l->runs[l->n++] = (struct ram_run){f, 1};
    }
    l->frames++;
    return true;
}

static bool all_zero(const uint8_t *p) {
    static const uint8_t zero[64];
    for (unsigned off = 0; off < PAGE_SIZE; off += sizeof zero)
        if (memcmp(p + off, zero, sizeof zero)) return false;
    return true;
}

static bool marked(const uint64_t *only, uint64_t f) { return !only || (only[f / 64] >> (f % 64) & 1); }

static bool write_failed(struct snap_writer *w, char *err, size_t errlen) {
    snprintf(err, errlen, "%s", snap_writer_error(w) ? snap_writer_error(w) : "write failed");
    return false;
}

struct ram_alias {
    uint64_t frame, source;
};

struct ram_batch {
    struct run_list data, zero;
    struct ram_alias alias[RAM_SECTION_FRAMES];
    unsigned nalias;
    uint8_t *buf;  /* data.frames pages: one of two, the other may still be going to the file */
    unsigned cap;  /* frames buf holds */
};

/* Shared machine frames stored in this pass, each with the guest frame it
 * was stored as and a hash of the contents stored: a frame met later that
 * maps the same machine frame becomes an alias only if it still holds
 * those contents (it may have been unshared, and the machine frame reused,
 * meanwhile). Open addressing on mfn; full, it stops taking entries. */
struct stored_shared {
    uint64_t mfn, frame;
    XXH128_hash_t sum;
    bool used;
};

struct shared_seen {
    struct stored_shared *slot;
    size_t mask, n;
};

static void seen_init(struct shared_seen *s, uint64_t shared) {
    size_t cap = 16;
    while (cap < 2 * shared && cap < (1u << 24)) cap *= 2;
    s->slot = calloc(cap, sizeof *s->slot);
    s->mask = s->slot ? cap - 1 : 0;
    s->n = 0;
}

static struct stored_shared *seen_slot(const struct shared_seen *s, uint64_t mfn) {
    if (!s->slot) return NULL;
    for (size_t i = XXH3_64bits(&mfn, sizeof mfn) & s->mask;; i = (i + 1) & s->mask)
        if (!s->slot[i].used || s->slot[i].mfn == mfn) return &s->slot[i];
}

static bool seen_find(const struct shared_seen *s, uint64_t mfn, XXH128_hash_t sum, uint64_t *frame) {
    const struct stored_shared *e = seen_slot(s, mfn);
    if (!e || !e->used || !XXH128_isEqual(e->sum, sum)) return false;
    *frame = e->frame;
    return true;
}

static void seen_add(struct shared_seen *s, uint64_t mfn, uint64_t frame, XXH128_hash_t sum) {
    struct stored_shared *e = seen_slot(s, mfn);
    if (!e || (!e->used && 2 * (s->n + 1) > s->mask + 1)) return;
    s->n += !e->used;
    *e = (struct stored_shared){mfn, frame, sum, true};
}

static bool put_ram(struct snap_writer *w, const struct ram_batch *b, char *err, size_t errlen) {
    const struct run_list *data = &b->data;
    bool ok = snap_section_begin(w, "ram", RAM_VERSION) && snap_write_u32(w, data->n);
    const uint8_t *p = b->buf;
    for (unsigned i = 0; ok && i < data->n; i++) {
        size_t len = (size_t)data->runs[i].count * PAGE_SIZE;
        ok = snap_write_u64(w, data->runs[i].first) && snap_write_u32(w, data->runs[i].count) &&
             snap_write_u64(w, snap_checksum(p, len));
        p += len;
    }
    ok = ok && snap_write_u32(w, b->nalias);
    for (unsigned i = 0; ok && i < b->nalias; i++)
        ok = snap_write_u64(w, b->alias[i].frame) && snap_write_u64(w, b->alias[i].source);
    ok = ok && snap_write_align(w) && snap_write_pages(w, b->buf, (size_t)data->frames * PAGE_SIZE) &&
         snap_section_end(w);
    return ok || write_failed(w, err, errlen);
}

static bool put_zero(struct snap_writer *w, const struct run_list *zero, char *err, size_t errlen) {
    bool ok = snap_section_begin(w, "zero", ZERO_VERSION) && snap_write_u32(w, zero->n);
    for (unsigned i = 0; ok && i < zero->n; i++)
        ok = snap_write_u64(w, zero->runs[i].first) && snap_write_u32(w, zero->runs[i].count);
    ok = ok && snap_section_end(w);
    return ok || write_failed(w, err, errlen);
}

/* Gathers the frames from *next on (all, or those marked in only) into
 * one section's worth: frames with data, and (only with a list) frames
 * that hold none, to be sent as zero. */
static bool gather(struct vm *vm, const uint64_t *only, uint64_t *next, struct ram_batch *b,
                   struct shared_seen *seen, struct vm_snapshot_stats *st, char *err, size_t errlen) {
    struct p2m *m = &vm->mem;
    b->data.n = b->data.frames = b->zero.n = b->zero.frames = b->nalias = 0;
    uint64_t f = *next;
    for (; f < m->nframes && b->data.frames < b->cap && b->zero.n < RAM_SECTION_FRAMES; f++) {
        if (only && !only[f / 64]) {
            f |= 63; /* a word of nothing */
            continue;
        }
        if (!marked(only, f)) continue;
        bool data = p2m_state_of(m, f) != P2M_ZERO;
        uint8_t *page = b->buf + (size_t)b->data.frames * PAGE_SIZE;
        if (data && !p2m_read(m, m->base + f * PAGE_SIZE, page, PAGE_SIZE)) {
            snprintf(err, errlen, "guest frame %#llx cannot be read (its swap copy is damaged?)",
                     (unsigned long long)(m->base + f * PAGE_SIZE));
            return false;
        }
        if (data && all_zero(page)) {
            st->zero_frames++;
            data = false;
        }
        if (!data) {
            if (only && !run_add(&b->zero, f)) break;
            continue;
        }
        uint64_t mfn, source;
        bool shared = p2m_shared_mfn(m, f, &mfn);
        XXH128_hash_t sum = shared ? XXH3_128bits(page, PAGE_SIZE) : (XXH128_hash_t){0, 0};
        if (shared && b->nalias < RAM_SECTION_FRAMES && seen_find(seen, mfn, sum, &source)) {
            b->alias[b->nalias++] = (struct ram_alias){f, source};
            st->aliased++;
            continue;
        }
        if (!run_add(&b->data, f)) break;
        if (shared) seen_add(seen, mfn, f, sum);
    }
    *next = f;
    st->frames += b->data.frames;
    return true;
}

bool vm_snapshot_save_ram(struct vm *vm, struct snap_writer *w, const uint64_t *only, struct vm_snapshot_stats *st,
                          char *err, size_t errlen) {
    memset(st, 0, sizeof *st);
    struct ram_batch *b = malloc(sizeof *b);
    /* Populated at once: page faults one by one cost more than the copy. */
    uint64_t want = RAM_BATCH_FRAMES;
    if (only) { /* a round of a migration: often a few frames */
        want = 0;
        for (uint64_t i = 0; i < (vm->mem.nframes + 63) / 64; i++) want += (uint64_t)__builtin_popcountll(only[i]);
        if (want > RAM_BATCH_FRAMES) want = RAM_BATCH_FRAMES;
        if (!want) want = 1;
    }
    size_t buf_len = 2 * (size_t)want * PAGE_SIZE;
    uint8_t *buf = mmap(NULL, buf_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (buf == MAP_FAILED) buf = NULL;
    bool ok = b && buf;
    if (!ok) snprintf(err, errlen, "out of host memory");
    if (ok) {
        b->buf = buf;
        b->cap = (unsigned)want;
    }
    struct shared_seen seen;
    seen_init(&seen, __atomic_load_n(&vm->mem.shared, __ATOMIC_RELAXED));
    for (uint64_t next = 0; ok && next < vm->mem.nframes;) {
        ok = gather(vm, only, &next, b, &seen, st, err, errlen);
        if (ok && (b->data.frames || b->nalias)) {
            ok = put_ram(w, b, err, errlen);
            b->buf = b->buf == buf ? buf + buf_len / 2 : buf; /* the other one is free once put_ram returned */
        }
        if (ok && b->zero.n) ok = put_zero(w, &b->zero, err, errlen);
    }
    free(seen.slot);
    /* The last batch may still be going out from buf. */
    ok = snap_writer_settle(w) && ok;
    if (buf) munmap(buf, buf_len);
    free(b);
    return ok;
}

static bool save_devices(struct vm *vm, struct snap_writer *w) {
    if (!uart_save(vm->uart, w) || !plic_save(vm->plic, w) || !aclint_save(vm->aclint, w) ||
        !goldfish_rtc_save(vm->rtc, w) || !vmgenid_save(vm->vmgenid, w))
        return false;
    for (unsigned i = 0; i < vm->nvirtio; i++)
        if (!virtio_mmio_save(vm->virtio[i].transport, w)) return false;
    return true;
}

bool vm_snapshot_save_state(struct vm *vm, struct snap_writer *w, char *err, size_t errlen) {
    struct vm_saved vs = {
        .nharts = vm->nharts, .nvirtio = vm->nvirtio, .mem_size = vm->mem.size, .mtime = vm_time(vm),
        .sbi_in_monitor = vm->sbi_in_monitor, .tohost = vm->htif.tohost, .fromhost = vm->htif.fromhost,
    };
    bool ok = vmstate_save(w, &vm_vmstate, &vs);
    for (unsigned i = 0; ok && i < vm->nharts; i++) ok = hart_save(vm->harts[i], w);
    ok = ok && save_devices(vm, w);
    return ok || write_failed(w, err, errlen);
}

bool vm_snapshot_save(struct vm *vm, struct snap_writer *w, struct vm_snapshot_stats *st, char *err,
                      size_t errlen) {
    memset(st, 0, sizeof *st);
    return vm_snapshot_save_state(vm, w, err, errlen) && vm_snapshot_save_ram(vm, w, NULL, st, err, errlen);
}

/* ---- loading ---- */

/* A run table: {first, count[, checksum]} each, all inside guest memory;
 * empty only if allow_empty. */
static bool get_runs(struct snap_cursor *c, const struct p2m *m, struct ram_run *runs, uint64_t *sums,
                     uint32_t *nruns, uint64_t *total, bool allow_empty) {
    snap_get_u32(c, nruns);
    if (c->bad || (*nruns == 0 && !allow_empty) || *nruns > RAM_SECTION_FRAMES) return false;
    *total = 0;
    for (uint32_t i = 0; i < *nruns; i++) {
        snap_get_u64(c, &runs[i].first);
        snap_get_u32(c, &runs[i].count);
        if (sums) snap_get_u64(c, &sums[i]);
        if (c->bad || runs[i].count == 0 || runs[i].count > RAM_RUN_FRAMES || runs[i].first >= m->nframes ||
            runs[i].count > m->nframes - runs[i].first)
            return false;
        *total += runs[i].count;
    }
    return true;
}

/* An alias table (version 2): {frame, source} each, both inside guest
 * memory; a section holds at least one run or alias. */
static bool get_aliases(struct snap_cursor *c, const struct p2m *m, struct ram_alias *alias, uint32_t *n,
                        uint32_t nruns) {
    snap_get_u32(c, n);
    if (c->bad || *n > RAM_SECTION_FRAMES || (*n == 0 && nruns == 0)) return false;
    for (uint32_t i = 0; i < *n; i++) {
        snap_get_u64(c, &alias[i].frame);
        snap_get_u64(c, &alias[i].source);
        if (c->bad || alias[i].frame >= m->nframes || alias[i].source >= m->nframes) return false;
    }
    return true;
}

/* Gives each alias its source's contents as stored in this file (the
 * source's latest copy, loaded by this section or an earlier one): with a
 * mapped image the same image page, else a copy. */
static bool load_aliases(struct vm_loader *l, const struct ram_alias *alias, uint32_t n, char *err, size_t errlen) {
    struct p2m *m = &l->vm->mem;
    uint8_t *page = l->lazy ? NULL : malloc(PAGE_SIZE);
    bool ok = l->lazy || page;
    if (!ok) snprintf(err, errlen, "out of host memory");
    for (uint32_t i = 0; ok && i < n; i++) {
        uint64_t f = alias[i].frame, src = alias[i].source;
        ok = l->lazy ? p2m_image_alias(m, f, src)
                     : p2m_state_of(m, src) != P2M_ZERO && p2m_read(m, m->base + src * PAGE_SIZE, page, PAGE_SIZE) &&
                           p2m_write(m, m->base + f * PAGE_SIZE, page, PAGE_SIZE);
        if (!ok)
            snprintf(err, errlen, "guest memory at %#llx is an alias of %#llx, which holds no stored contents",
                     (unsigned long long)(m->base + f * PAGE_SIZE), (unsigned long long)(m->base + src * PAGE_SIZE));
    }
    free(page);
    return ok;
}

/* Copies a section's frames in, or with a mapped image (a file restore)
 * points the frames at their pages there, to be copied on first access
 * (the section's checksum, which covers them, was verified at open). */
static bool load_ram_section(struct vm_loader *l, const struct snap_section *s, char *err, size_t errlen) {
    struct p2m *m = &l->vm->mem;
    if (s->version < 1 || s->version > RAM_VERSION) {
        snprintf(err, errlen, "section 'ram' has version %u, this rvisor reads versions 1 to %u", s->version,
                 RAM_VERSION);
        return false;
    }
    struct snap_cursor c;
    snap_cursor_init(&c, s);
    struct ram_run *runs = malloc(RAM_SECTION_FRAMES * sizeof *runs);
    uint64_t *sums = malloc(RAM_SECTION_FRAMES * sizeof *sums);
    struct ram_alias *alias = malloc(RAM_SECTION_FRAMES * sizeof *alias);
    uint32_t nruns = 0, nalias = 0;
    uint64_t total = 0;
    bool ok = runs && sums && alias;
    if (!ok) snprintf(err, errlen, "out of host memory");
    else if (!(ok = get_runs(&c, m, runs, sums, &nruns, &total, s->version >= 2) &&
                    (s->version < 2 || get_aliases(&c, m, alias, &nalias, nruns))))
        snprintf(err, errlen, "a memory section names frames outside the guest's memory");
    const uint8_t *data = ok && total <= RAM_SECTION_FRAMES ? snap_get_aligned(&c, total * PAGE_SIZE) : NULL;
    if (ok && (!data || c.left)) {
        snprintf(err, errlen, "a memory section's size does not match its table");
        ok = false;
    }
    uint64_t off = data ? s->file_offset + (uint64_t)(data - s->data) : 0;
    for (uint32_t i = 0; ok && l->lazy && i < nruns; i++)
        for (uint32_t k = 0; ok && k < runs[i].count; k++, off += PAGE_SIZE)
            if (!(ok = p2m_image_map(m, runs[i].first + k, off)))
                snprintf(err, errlen, "guest memory at %#llx cannot be mapped from the snapshot",
                         (unsigned long long)(m->base + (runs[i].first + k) * PAGE_SIZE));
    for (uint32_t i = 0; ok && !l->lazy && i < nruns; i++) {
        size_t len = (size_t)runs[i].count * PAGE_SIZE;
        if (snap_checksum(data, len) != sums[i]) {
            snprintf(err, errlen, "guest memory at %#llx is corrupt (checksum)",
                     (unsigned long long)(m->base + runs[i].first * PAGE_SIZE));
            ok = false;
        } else if (!p2m_write(m, m->base + runs[i].first * PAGE_SIZE, data, len)) {
            snprintf(err, errlen, "out of machine memory while loading guest memory");
            ok = false;
        }
        data += len;
    }
    ok = ok && load_aliases(l, alias, nalias, err, errlen);
    free(runs);
    free(sums);
    free(alias);
    return ok;
}

static bool load_zero_section(struct vm *vm, const struct snap_section *s, char *err, size_t errlen) {
    struct p2m *m = &vm->mem;
    if (!vmstate_check_version(s, "zero", ZERO_VERSION, err, errlen)) return false;
    struct snap_cursor c;
    snap_cursor_init(&c, s);
    struct ram_run *runs = malloc(RAM_SECTION_FRAMES * sizeof *runs);
    uint32_t nruns = 0;
    uint64_t total = 0;
    bool ok = runs && get_runs(&c, m, runs, NULL, &nruns, &total, false) && !c.left;
    if (!ok) snprintf(err, errlen, "a zero-frames section is damaged");
    for (uint32_t i = 0; ok && i < nruns; i++)
        p2m_drop_range(m, m->base + runs[i].first * PAGE_SIZE, (uint64_t)runs[i].count * PAGE_SIZE);
    free(runs);
    return ok;
}

void vm_loader_init(struct vm_loader *l, struct vm *vm) {
    memset(l, 0, sizeof *l);
    l->vm = vm;
}

static bool load_vm(struct vm_loader *l, const struct snap_section *s, char *err, size_t errlen) {
    struct vm *vm = l->vm;
    struct vm_saved vs;
    if (!vmstate_load(s, &vm_vmstate, &vs, err, errlen)) return false;
    if (vs.nharts != vm->nharts || vs.nvirtio != vm->nvirtio || vs.mem_size != vm->mem.size) {
        snprintf(err, errlen, "the snapshot's machine (%u harts, %u virtio devices, %llu MiB) is not this VM's",
                 vs.nharts, vs.nvirtio, (unsigned long long)(vs.mem_size >> 20));
        return false;
    }
    vm->sbi_in_monitor = vs.sbi_in_monitor;
    vm->htif.tohost = vs.tohost;
    vm->htif.fromhost = vs.fromhost;
    /* The guest's clock goes on from where it was saved. */
    vm_set_time(vm, vs.mtime);
    l->have_vm = true;
    return true;
}

/* A platform device's section: each comes once. */
static bool load_device(struct vm_loader *l, const struct snap_section *s, char *err, size_t errlen) {
    struct vm *vm = l->vm;
    if (!strcmp(s->tag, "virtio")) {
        if (l->virtio >= vm->nvirtio) {
            snprintf(err, errlen, "the snapshot has more virtio devices than the VM");
            return false;
        }
        return virtio_mmio_load(vm->virtio[l->virtio++].transport, s, err, errlen);
    }
    bool *seen = !strcmp(s->tag, "uart") ? &l->uart : !strcmp(s->tag, "plic") ? &l->plic
               : !strcmp(s->tag, "aclint") ? &l->aclint : !strcmp(s->tag, "rtc") ? &l->rtc
               : !strcmp(s->tag, "vmgenid") ? &l->vmgenid : NULL;
    if (!seen || *seen) {
        snprintf(err, errlen, "the snapshot has %s section '%s'", seen ? "a second" : "an unknown", s->tag);
        return false;
    }
    *seen = seen == &l->uart     ? uart_load(vm->uart, s, err, errlen)
            : seen == &l->plic   ? plic_load(vm->plic, s, err, errlen)
            : seen == &l->aclint ? aclint_load(vm->aclint, s, err, errlen)
            : seen == &l->rtc    ? goldfish_rtc_load(vm->rtc, s, err, errlen)
                                 : vmgenid_load(vm->vmgenid, s, err, errlen);
    return *seen;
}

bool vm_loader_section(struct vm_loader *l, const struct snap_section *s, char *err, size_t errlen) {
    err[0] = 0;
    if (!strcmp(s->tag, "ram")) return load_ram_section(l, s, err, errlen) && ++l->ram_sections;
    if (!strcmp(s->tag, "zero")) return load_zero_section(l->vm, s, err, errlen);
    if (!strcmp(s->tag, "vm")) {
        if (l->have_vm) {
            snprintf(err, errlen, "the snapshot has section 'vm' twice");
            return false;
        }
        return load_vm(l, s, err, errlen);
    }
    if (!l->have_vm) {
        snprintf(err, errlen, "section '%s' comes before the machine's ('vm')", s->tag);
        return false;
    }
    if (!strcmp(s->tag, "hart")) {
        if (l->harts >= l->vm->nharts) {
            snprintf(err, errlen, "the snapshot has more harts than the VM");
            return false;
        }
        struct hart *h = l->vm->harts[l->harts];
        if (!hart_load(h, s, err, errlen)) return false;
        h->sbi_in_monitor = l->vm->sbi_in_monitor;
        l->harts++;
        return true;
    }
    return load_device(l, s, err, errlen);
}

bool vm_loader_finish(struct vm_loader *l, char *err, size_t errlen) {
    const char *missing = !l->have_vm                    ? "vm"
                          : l->harts < l->vm->nharts     ? "hart"
                          : !l->uart                     ? "uart"
                          : !l->plic                     ? "plic"
                          : !l->aclint                   ? "aclint"
                          : !l->rtc                      ? "rtc"
                          : l->virtio < l->vm->nvirtio   ? "virtio"
                          : !l->ram_sections && l->vm->mem.nframes ? "ram"
                                                          : NULL;
    if (missing) snprintf(err, errlen, "the snapshot lacks section '%s'", missing);
    return !missing;
}

/* A file's sections in the order the loader needs: the machine first,
 * then memory (devices and harts point into it), then the rest. */
bool vm_snapshot_load(struct vm *vm, struct snap_reader *r, char *err, size_t errlen) {
    static const char *const order[] = {"vm",  "ram", "zero", "hart",    "uart",
                                        "plic", "aclint", "rtc", "vmgenid", "virtio"};
    struct vm_loader l;
    vm_loader_init(&l, vm);
    /* Memory is restored lazily from a mapping of the file of its own. */
    int fd = snap_reader_fd(r);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0) {
        void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map != MAP_FAILED) {
            p2m_image_attach(&vm->mem, map, (size_t)st.st_size);
            l.lazy = true;
        }
    }
    snap_reader_rewind(r);
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        struct snap_section s;
        while (snap_reader_find(r, order[i], &s))
            if (!vm_loader_section(&l, &s, err, errlen)) return false;
    }
    return vm_loader_finish(&l, err, errlen);
}

bool vm_snapshot_new_instance(struct vm *vm) { return vmgenid_new_generation(vm->vmgenid); }

void vm_snapshot_resume(struct vm *vm) {
    for (unsigned i = 0; i < vm->nvirtio; i++) virtio_mmio_resume(vm->virtio[i].transport);
    vm_update_timers(vm);
}
