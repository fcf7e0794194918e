/* A VM's snapshot sections: see snapshot.h.
 *
 * Order: "vm" (the machine's shape and clock), a "hart" per hart, the
 * platform devices, a "virtio" per occupied slot in slot order, then
 * "ram" sections. Guest memory is stored as the frames that hold data:
 * frames never written (P2M_ZERO, ballooned, reported free) and frames
 * that hold only zeros are left out, and read back as zeros. */
#include "vm/snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev/aclint.h"
#include "dev/goldfish_rtc.h"
#include "dev/plic.h"
#include "dev/uart16550.h"
#include "dev/virtio_mmio.h"
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
 * frames, {first frame, count, XXH3 of their bytes}, then the frames
 * themselves from a page-aligned file offset, so that a restore could map
 * them from the file instead of copying. */
#define RAM_VERSION 1
#define RAM_SECTION_FRAMES 4096u /* 16 MiB of data per section */
#define RAM_RUN_FRAMES 256u

struct ram_run {
    uint64_t first;
    uint32_t count;
};

static bool all_zero(const uint8_t *p) {
    static const uint8_t zero[64];
    for (unsigned off = 0; off < PAGE_SIZE; off += sizeof zero)
        if (memcmp(p + off, zero, sizeof zero)) return false;
    return true;
}

static bool holds_data(const struct p2m *m, uint64_t frame) {
    enum p2m_state s = p2m_state_of(m, frame);
    return s != P2M_ZERO;
}

/* Writes one section of up to RAM_SECTION_FRAMES frames found from *next
 * on; buf holds them meanwhile. */
static bool save_ram_section(struct vm *vm, struct snap_writer *w, uint64_t *next, uint8_t *buf,
                             struct vm_snapshot_stats *st, char *err, size_t errlen) {
    struct p2m *m = &vm->mem;
    static const unsigned max_runs = RAM_SECTION_FRAMES;
    struct ram_run runs[RAM_SECTION_FRAMES];
    unsigned nruns = 0, nframes = 0;
    uint64_t f = *next;
    for (; f < m->nframes && nframes < RAM_SECTION_FRAMES; f++) {
        if (!holds_data(m, f)) continue;
        uint8_t *page = buf + (size_t)nframes * PAGE_SIZE;
        if (!p2m_read(m, m->base + f * PAGE_SIZE, page, PAGE_SIZE)) {
            snprintf(err, errlen, "guest frame %#llx cannot be read (its swap copy is damaged?)",
                     (unsigned long long)(m->base + f * PAGE_SIZE));
            return false;
        }
        if (all_zero(page)) {
            st->zero_frames++;
            continue;
        }
        struct ram_run *last = nruns ? &runs[nruns - 1] : NULL;
        if (last && last->first + last->count == f && last->count < RAM_RUN_FRAMES) {
            last->count++;
        } else {
            if (nruns == max_runs) break;
            runs[nruns++] = (struct ram_run){f, 1};
        }
        nframes++;
    }
    *next = f;
    if (!nframes) return true;
    bool ok = snap_section_begin(w, "ram", RAM_VERSION) && snap_write_u32(w, nruns);
    const uint8_t *data = buf;
    for (unsigned i = 0; ok && i < nruns; i++) {
        ok = snap_write_u64(w, runs[i].first) && snap_write_u32(w, runs[i].count) &&
             snap_write_u64(w, snap_checksum(data, (size_t)runs[i].count * PAGE_SIZE));
        data += (size_t)runs[i].count * PAGE_SIZE;
    }
    ok = ok && snap_write_align(w) && snap_write(w, buf, (size_t)nframes * PAGE_SIZE) && snap_section_end(w);
    st->frames += nframes;
    if (!ok) snprintf(err, errlen, "%s", snap_writer_error(w) ? snap_writer_error(w) : "write failed");
    return ok;
}

static bool save_ram(struct vm *vm, struct snap_writer *w, struct vm_snapshot_stats *st, char *err, size_t errlen) {
    uint8_t *buf = malloc((size_t)RAM_SECTION_FRAMES * PAGE_SIZE);
    if (!buf) {
        snprintf(err, errlen, "out of host memory");
        return false;
    }
    bool ok = true;
    for (uint64_t next = 0; ok && next < vm->mem.nframes;) ok = save_ram_section(vm, w, &next, buf, st, err, errlen);
    free(buf);
    return ok;
}

static bool save_devices(struct vm *vm, struct snap_writer *w) {
    if (!uart_save(vm->uart, w) || !plic_save(vm->plic, w) || !aclint_save(vm->aclint, w) ||
        !goldfish_rtc_save(vm->rtc, w))
        return false;
    for (unsigned i = 0; i < vm->nvirtio; i++)
        if (!virtio_mmio_save(vm->virtio[i].transport, w)) return false;
    return true;
}

bool vm_snapshot_save(struct vm *vm, struct snap_writer *w, struct vm_snapshot_stats *st, char *err,
                      size_t errlen) {
    memset(st, 0, sizeof *st);
    struct vm_saved vs = {
        .nharts = vm->nharts, .nvirtio = vm->nvirtio, .mem_size = vm->mem.size, .mtime = vm_time(vm),
        .sbi_in_monitor = vm->sbi_in_monitor, .tohost = vm->htif.tohost, .fromhost = vm->htif.fromhost,
    };
    bool ok = vmstate_save(w, &vm_vmstate, &vs);
    for (unsigned i = 0; ok && i < vm->nharts; i++) ok = hart_save(vm->harts[i], w);
    ok = ok && save_devices(vm, w);
    if (!ok) {
        snprintf(err, errlen, "%s", snap_writer_error(w) ? snap_writer_error(w) : "write failed");
        return false;
    }
    return save_ram(vm, w, st, err, errlen);
}

/* ---- loading ---- */

static bool load_ram_section(struct vm *vm, const struct snap_section *s, char *err, size_t errlen) {
    struct p2m *m = &vm->mem;
    if (!vmstate_check_version(s, "ram", RAM_VERSION, err, errlen)) return false;
    struct snap_cursor c;
    snap_cursor_init(&c, s);
    uint32_t nruns;
    snap_get_u32(&c, &nruns);
    if (c.bad || nruns == 0 || nruns > RAM_SECTION_FRAMES) {
        snprintf(err, errlen, "a memory section has a bad run count");
        return false;
    }
    struct ram_run runs[RAM_SECTION_FRAMES];
    uint64_t sums[RAM_SECTION_FRAMES];
    uint64_t total = 0;
    for (uint32_t i = 0; i < nruns; i++) {
        snap_get_u64(&c, &runs[i].first);
        snap_get_u32(&c, &runs[i].count);
        snap_get_u64(&c, &sums[i]);
        if (c.bad || runs[i].count == 0 || runs[i].count > RAM_RUN_FRAMES || runs[i].first >= m->nframes ||
            runs[i].count > m->nframes - runs[i].first) {
            snprintf(err, errlen, "a memory section names frames outside the guest's memory");
            return false;
        }
        total += runs[i].count;
    }
    const uint8_t *data = total <= RAM_SECTION_FRAMES ? snap_get_aligned(&c, total * PAGE_SIZE) : NULL;
    if (!data || c.left) {
        snprintf(err, errlen, "a memory section's size does not match its table");
        return false;
    }
    for (uint32_t i = 0; i < nruns; i++) {
        size_t len = (size_t)runs[i].count * PAGE_SIZE;
        if (snap_checksum(data, len) != sums[i]) {
            snprintf(err, errlen, "guest memory at %#llx is corrupt (checksum)",
                     (unsigned long long)(m->base + runs[i].first * PAGE_SIZE));
            return false;
        }
        if (!p2m_write(m, m->base + runs[i].first * PAGE_SIZE, data, len)) {
            snprintf(err, errlen, "out of machine memory while loading guest memory");
            return false;
        }
        data += len;
    }
    return true;
}

/* The section with this tag that must come next in its kind's order. */
static bool need(struct snap_reader *r, const char *tag, unsigned index, struct snap_section *s, char *err,
                 size_t errlen) {
    if (snap_reader_find(r, tag, s)) return true;
    snprintf(err, errlen, "the snapshot lacks section '%s' #%u", tag, index + 1);
    return false;
}

static bool load_devices(struct vm *vm, struct snap_reader *r, char *err, size_t errlen) {
    struct snap_section s;
    if (!need(r, "uart", 0, &s, err, errlen) || !uart_load(vm->uart, &s, err, errlen)) return false;
    if (!need(r, "plic", 0, &s, err, errlen) || !plic_load(vm->plic, &s, err, errlen)) return false;
    if (!need(r, "aclint", 0, &s, err, errlen) || !aclint_load(vm->aclint, &s, err, errlen)) return false;
    if (!need(r, "rtc", 0, &s, err, errlen) || !goldfish_rtc_load(vm->rtc, &s, err, errlen)) return false;
    for (unsigned i = 0; i < vm->nvirtio; i++)
        if (!need(r, "virtio", i, &s, err, errlen) || !virtio_mmio_load(vm->virtio[i].transport, &s, err, errlen))
            return false;
    return true;
}

bool vm_snapshot_load(struct vm *vm, struct snap_reader *r, char *err, size_t errlen) {
    snap_reader_rewind(r);
    struct snap_section s;
    struct vm_saved vs;
    if (!need(r, "vm", 0, &s, err, errlen) || !vmstate_load(&s, &vm_vmstate, &vs, err, errlen)) return false;
    if (vs.nharts != vm->nharts || vs.nvirtio != vm->nvirtio || vs.mem_size != vm->mem.size) {
        snprintf(err, errlen, "the snapshot's machine (%u harts, %u virtio devices, %llu MiB) is not this VM's",
                 vs.nharts, vs.nvirtio, (unsigned long long)(vs.mem_size >> 20));
        return false;
    }
    /* Memory first: devices and harts point into it. */
    size_t nram = 0;
    while (snap_reader_find(r, "ram", &s)) {
        if (!load_ram_section(vm, &s, err, errlen)) return false;
        nram++;
    }
    for (unsigned i = 0; i < vm->nharts; i++) {
        if (!need(r, "hart", i, &s, err, errlen) || !hart_load(vm->harts[i], &s, err, errlen)) return false;
        vm->harts[i]->sbi_in_monitor = vs.sbi_in_monitor;
    }
    vm->sbi_in_monitor = vs.sbi_in_monitor;
    vm->htif.tohost = vs.tohost;
    vm->htif.fromhost = vs.fromhost;
    /* The guest's clock goes on from where it was saved. */
    vm_set_time(vm, vs.mtime);
    if (!nram && vm->mem.nframes) {
        snprintf(err, errlen, "the snapshot holds no guest memory");
        return false;
    }
    return load_devices(vm, r, err, errlen);
}

void vm_snapshot_resume(struct vm *vm) {
    for (unsigned i = 0; i < vm->nvirtio; i++) virtio_mmio_resume(vm->virtio[i].transport);
    vm_update_timers(vm);
}
