/* Where a VM's p2m gets machine frames. The monitor's machine-memory pool
 * provides this; the VM layer sees only the interface, so it never owns
 * frames outside its p2m and the monitor can account for all of them. */
#ifndef RVISOR_FRAMES_H
#define RVISOR_FRAMES_H

#include <stdbool.h>
#include <stdint.h>

struct frame_source {
    /* A zero-filled machine frame; false when machine memory is exhausted. */
    bool (*alloc)(void *pool, uint64_t *mfn);
    /* Drops one reference to a frame; the last one gives it back (its
     * contents are discarded). A frame starts with one reference. */
    void (*free)(void *pool, uint64_t mfn);
    /* Takes another reference (a frame shared by several guest frames). */
    void (*get)(void *pool, uint64_t mfn);
    void *pool;
    uint8_t *base;       /* host address of machine frame 0 */
    uint64_t zero_mfn;   /* a frame that is always zero and never written */
};

static inline uint8_t *frame_host(const struct frame_source *fs, uint64_t mfn) { return fs->base + (mfn << 12); }

#endif
