#include "vm/balloon.h"

#include <string.h>

#include "dev/virtio_balloon.h"
#include "io/event_loop.h"
#include "vm/vm.h"

#define PAGE 4096ull

bool vm_balloon_set_target(struct vm *vm, uint64_t bytes) {
    if (!vm->balloon) return false;
    uint64_t ram = vm->mem.size;
    uint64_t keep = bytes > ram ? ram : bytes & ~(PAGE - 1);
    uint64_t pages = (ram - keep) / PAGE;
    virtio_balloon_set_target(vm->balloon, pages > UINT32_MAX ? UINT32_MAX : (uint32_t)pages);
    return true;
}

void vm_balloon_refresh_stats(struct vm *vm) {
    if (vm->balloon) virtio_balloon_refresh_stats(vm->balloon, 1000000000ull);
}

bool vm_balloon_info(struct vm *vm, struct vm_balloon_info *out) {
    memset(out, 0, sizeof *out);
    if (!vm->balloon) return false;
    struct virtio_balloon_info d;
    virtio_balloon_get_info(vm->balloon, &d);
    uint64_t ram = vm->mem.size;
    uint64_t target = (uint64_t)d.target_pages * PAGE, held = (uint64_t)d.actual_pages * PAGE;
    out->target = target < ram ? ram - target : 0;
    out->actual = held < ram ? ram - held : 0;
    out->balloon = held;
    out->freed = d.freed_frames * PAGE;
    out->reported = d.reported_frames * PAGE;
    out->ignored_pages = d.ignored_pages;
    if (d.stats_updated_ns) {
        out->has_stats = true;
        out->stats_age_ms = (event_loop_now_ns() - d.stats_updated_ns) / 1000000;
    }
    static const struct {
        enum virtio_balloon_stat tag;
        uint32_t bit;
        size_t off;
    } map[] = {
        {VIRTIO_BALLOON_S_MEMFREE, VM_STAT_FREE, offsetof(struct vm_guest_mem_stats, free)},
        {VIRTIO_BALLOON_S_MEMTOT, VM_STAT_TOTAL, offsetof(struct vm_guest_mem_stats, total)},
        {VIRTIO_BALLOON_S_AVAIL, VM_STAT_AVAILABLE, offsetof(struct vm_guest_mem_stats, available)},
        {VIRTIO_BALLOON_S_CACHES, VM_STAT_CACHES, offsetof(struct vm_guest_mem_stats, caches)},
        {VIRTIO_BALLOON_S_MAJFLT, VM_STAT_MAJOR_FAULTS, offsetof(struct vm_guest_mem_stats, major_faults)},
        {VIRTIO_BALLOON_S_MINFLT, VM_STAT_MINOR_FAULTS, offsetof(struct vm_guest_mem_stats, minor_faults)},
        {VIRTIO_BALLOON_S_SWAP_IN, VM_STAT_SWAP_IN, offsetof(struct vm_guest_mem_stats, swap_in)},
        {VIRTIO_BALLOON_S_SWAP_OUT, VM_STAT_SWAP_OUT, offsetof(struct vm_guest_mem_stats, swap_out)},
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
        if (!(d.stats_valid & (1u << map[i].tag))) continue;
        memcpy((uint8_t *)&out->stats + map[i].off, &d.stats[map[i].tag], sizeof(uint64_t));
        out->stats.valid |= map[i].bit;
    }
    return true;
}
