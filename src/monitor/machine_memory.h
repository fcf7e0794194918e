/* Machine memory: the host memory the monitor hands out to VMs, in 4 KiB
 * machine frames, up to a configured ceiling. It is one reservation of host
 * address space; a frame costs host memory only once written, and a freed
 * frame is returned to the host at once. Frame 0 is the shared zero frame,
 * mapped read-only, that backs every guest frame never written. Frames are
 * reference counted, so that page sharing can map one frame into several
 * guest frames. Thread safe. */
#ifndef RVISOR_MACHINE_MEMORY_H
#define RVISOR_MACHINE_MEMORY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vm/frames.h"

struct machine_memory {
    uint8_t *base;
    uint64_t nframes;        /* ceiling, including the zero frame */
    pthread_mutex_t lock;
    uint64_t *free_stack;    /* frames given back, reused first */
    uint64_t free_count;
    uint64_t next_fresh;     /* frames at and above this were never handed out */
    uint64_t in_use;         /* frames held by VMs */
    /* References per frame: guest frames (of any VM) mapping it, plus one
     * for the page-sharing table while it lists the frame. Atomic. */
    uint32_t *refs;
};

/* Reserves `bytes` of machine memory. False (with errno) if the host refuses. */
bool machine_memory_init(struct machine_memory *mm, uint64_t bytes);
void machine_memory_destroy(struct machine_memory *mm);

/* The interface VMs allocate through. */
struct frame_source machine_memory_source(struct machine_memory *mm);

uint64_t machine_memory_free_frames(struct machine_memory *mm);
/* Frames handed out and not yet given back. */
uint64_t machine_memory_used_frames(struct machine_memory *mm);
/* The frame's reference count now (racy: for the sharing scanner and tests). */
static inline uint32_t machine_memory_refs(const struct machine_memory *mm, uint64_t mfn) {
    return mfn < mm->nframes ? __atomic_load_n(&mm->refs[mfn], __ATOMIC_ACQUIRE) : 0;
}

/* Default ceiling: most of the host's physical memory. */
uint64_t machine_memory_default_size(void);

#endif
