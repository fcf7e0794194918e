/* A VM's memory balloon as the monitor sees it: in bytes of guest memory,
 * with QEMU's meaning of a target (the memory the guest keeps, not the
 * size of the balloon). The device is dev/virtio_balloon. */
#ifndef RVISOR_VM_BALLOON_H
#define RVISOR_VM_BALLOON_H

#include <stdbool.h>
#include <stdint.h>

struct vm;

struct vm_balloon_info {
    uint64_t target;      /* bytes of RAM the guest is asked to keep */
    uint64_t actual;      /* bytes it keeps now: RAM minus what its balloon holds */
    uint64_t balloon;     /* bytes the balloon holds (what the driver reported) */
    uint64_t freed;       /* bytes of machine memory inflation released, in total */
    uint64_t reported;    /* bytes of machine memory free page reporting released, in total */
    uint64_t ignored_pages; /* PFNs outside RAM the guest sent */
    /* The guest's own figures (virtio-balloon statistics), bytes unless said. */
    bool has_stats;
    uint64_t stats_age_ms;  /* since the guest sent them */
    struct vm_guest_mem_stats {
        uint64_t free, total, available, caches;  /* MemFree, MemTotal, MemAvailable, page cache */
        uint64_t major_faults, minor_faults;      /* counts */
        uint64_t swap_in, swap_out;
        uint32_t valid;  /* VM_STAT_* bits of the fields the guest sent */
    } stats;
};

enum {
    VM_STAT_FREE = 1 << 0, VM_STAT_TOTAL = 1 << 1, VM_STAT_AVAILABLE = 1 << 2, VM_STAT_CACHES = 1 << 3,
    VM_STAT_MAJOR_FAULTS = 1 << 4, VM_STAT_MINOR_FAULTS = 1 << 5, VM_STAT_SWAP_IN = 1 << 6, VM_STAT_SWAP_OUT = 1 << 7,
};

/* Asks the guest to keep `bytes` of its RAM (more than its RAM means all
 * of it; rounded down to 4 KiB). False if the VM has no balloon. Any
 * thread; takes no lock the VM's interrupt path takes. */
bool vm_balloon_set_target(struct vm *vm, uint64_t bytes);
/* False (and *out zeroed) if the VM has no balloon. Any thread. */
bool vm_balloon_info(struct vm *vm, struct vm_balloon_info *out);
/* Asks the guest for fresh statistics if they are over a second old (at
 * most once a second); they arrive a few milliseconds later. Guests are
 * asked only when someone looks, so idle ones are never woken for it. Any
 * thread, any locks held. */
void vm_balloon_refresh_stats(struct vm *vm);

#endif
