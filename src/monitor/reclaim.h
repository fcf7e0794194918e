/* Memory reclamation (ESX's, Waldspurger OSDI 2002, section 6.3): the
 * monitor watches how much machine memory is free and, when it runs short
 * or a guest waits for a frame, writes guest frames out to their VM's swap
 * file (hypervisor swap) so that the frames can be handed out again.
 *
 * The reclamation state follows ESX's thresholds on free machine memory:
 * high (6% or more free), soft (4%), hard (2%), low (1% and below). Frames
 * are swapped out in hard and low, and whenever a guest waits for memory,
 * until the soft threshold is reached again. A frame to swap is protected
 * and waits two grace periods (monitor/frame_batch.h), so a guest write
 * racing with it is never lost: the write cancels the swap of that frame.
 *
 * Victims: the VM furthest above its share-based target (mem_policy.h)
 * gives first; with none above, the VM holding the most machine frames.
 * Within a VM, frames from a random place on (ESX picks randomly too: the
 * monitor knows nothing of the guest's LRU).
 *
 * Not thread safe: the monitor's memory-manager thread owns it. */
#ifndef RVISOR_RECLAIM_H
#define RVISOR_RECLAIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct machine_memory;
struct p2m;

enum reclaim_state {
    RECLAIM_HIGH, /* plenty free: nothing to do */
    RECLAIM_SOFT, /* getting short (ESX balloons here) */
    RECLAIM_HARD, /* short: swap */
    RECLAIM_LOW,  /* nearly none: swap hard */
};

const char *reclaim_state_name(enum reclaim_state s);

/* A VM as the manager sees it in one tick. */
struct reclaim_vm {
    uint32_t id;          /* unique, never reused */
    struct p2m *mem;
    bool waiting;         /* a hart of it waits for a machine frame */
    uint64_t over;        /* frames it holds above its share-based target */
};

struct reclaim_stats {
    enum reclaim_state state;
    uint64_t swapped_out;   /* frames written to swap files, in total */
    uint64_t cancelled;     /* frames written to while being swapped out (left in memory) */
    uint64_t full;          /* frames not swapped because their VM's swap file was full */
    uint64_t errors;        /* swap-file writes that failed */
    uint64_t batches;       /* batches of frames swapped out */
};

struct reclaim *reclaim_create(struct machine_memory *mm);
void reclaim_destroy(struct reclaim *r);

/* One step: moves a batch in flight on (committing it once its grace
 * periods passed) or, if memory is short or a VM waits, starts one.
 * Returns true while it has work in flight (call again soon). */
bool reclaim_tick(struct reclaim *r, const struct reclaim_vm *vms, size_t n);

/* VM id is going away: a batch holding its frames is abandoned. */
void reclaim_forget_vm(struct reclaim *r, uint32_t id);

/* The state for free frames out of total. */
enum reclaim_state reclaim_state_for(uint64_t free_frames, uint64_t total_frames);

void reclaim_get_stats(const struct reclaim *r, struct reclaim_stats *out);

#endif
