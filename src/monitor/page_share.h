/* Content-based page sharing (Waldspurger, "Memory Resource Management in
 * VMware ESX Server", OSDI 2002, section 4). A scanner hashes guests'
 * private frames at a limited rate; the hash of a frame is only a hint:
 *   - a frame whose hash names a shared frame of the same share group is
 *     merged into it after a full compare;
 *   - a frame whose hash names a *hint* (a private frame seen earlier) is
 *     compared with it, and on a match the hint's frame becomes a shared
 *     frame and the new frame merges into it;
 *   - otherwise the frame is entered as a hint;
 *   - an all-zero frame goes back to the zero frame.
 * Merging follows the p2m's protocol (p2m_protect, two grace periods,
 * p2m_merge), so a guest write racing with the scanner is never lost: it
 * cancels the merge. A write to a shared frame copies it (p2m.c).
 *
 * Sharing is a security boundary: frames are only shared among VMs of one
 * share group (timing of copy-on-write would let one VM learn what another
 * holds); a VM created without a group is in a group of its own.
 *
 * Not thread safe: the monitor calls everything here under its lock, from
 * its scanner thread (page_share_tick) and when VMs go away. */
#ifndef RVISOR_PAGE_SHARE_H
#define RVISOR_PAGE_SHARE_H

#include <stdbool.h>
#include <stdint.h>

#include "vm/frames.h"

struct p2m;
struct page_share;

/* A VM as the scanner sees it during one tick. */
struct share_vm {
    uint32_t id;     /* unique for the monitor's lifetime */
    uint32_t group;  /* share group: frames are shared only within one */
    struct p2m *mem;
};

struct page_share_stats {
    uint64_t scanned;        /* frames hashed */
    uint64_t merged;         /* frames merged into a shared frame */
    uint64_t zero_merged;    /* zero frames given back */
    uint64_t cancelled;      /* merges a guest write cancelled */
    uint64_t different;      /* hash matches whose contents differed */
    uint64_t shared_frames;  /* machine frames the table shares now */
    uint64_t hints;          /* hint entries now */
};

struct machine_memory;
struct page_share *page_share_create(struct machine_memory *mm);
/* Gives the table's references back (call after every VM is gone). */
void page_share_destroy(struct page_share *ps);

/* One step of the scanner: advances a pending batch of merges, or (when
 * none waits) hashes up to `budget` frames of the VMs and protects a new
 * batch. vms lists every VM that exists (the scanner keeps cursors by id). */
void page_share_tick(struct page_share *ps, const struct share_vm *vms, unsigned nvms, unsigned budget);
/* VM `id` is going away: nothing refers to it or its frames any more. */
void page_share_forget_vm(struct page_share *ps, uint32_t id);

/* Lets go of every shared frame no guest frame maps any more (after a VM
 * was destroyed: its memory returns to the pool at once). */
void page_share_sweep(struct page_share *ps);

void page_share_get_stats(const struct page_share *ps, struct page_share_stats *out);

#endif
