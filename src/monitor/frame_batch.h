/* A batch of guest frames, of any VMs, that the monitor means to take
 * away from their guests or replace (page sharing merges them, hypervisor
 * swap writes them out). Each frame is protected in its p2m
 * (p2m_protect); once every hart of every VM involved has passed two grace
 * periods (with a TLB flush before each), no write to the frames can be in
 * flight and none can start without cancelling the protection, so their
 * contents may be read and the change committed (p2m_merge,
 * p2m_swap_out). Not thread safe: the monitor's memory-manager thread owns
 * its batches. */
#ifndef RVISOR_FRAME_BATCH_H
#define RVISOR_FRAME_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vm/platform.h"

struct p2m;

struct batch_frame {
    struct p2m *mem;
    uint32_t vm_id;
    uint64_t gfn, mfn;
    int kind;   /* the owner's */
    void *data; /* the owner's */
};

struct batch_vm {
    uint32_t id;
    struct p2m *mem;
    uint64_t snap[VM_MAX_HARTS];
};

struct frame_batch {
    struct batch_frame *frame;
    size_t n, cap;
    struct batch_vm *vm;
    size_t nvm, capvm;
    int phase; /* 0: filling (or empty); 1, 2: in the first, second grace period; 3: ready */
};

/* Protects guest frame gfn and adds it; false if it is not private (or no
 * host memory). */
bool frame_batch_add(struct frame_batch *b, uint32_t vm_id, struct p2m *mem, uint64_t gfn, int kind, void *data);
/* Ends filling: flushes the involved VMs' TLBs and starts the first grace period. */
void frame_batch_start(struct frame_batch *b);
/* Moves the batch on when a grace period has passed; true once it is ready
 * to commit. */
bool frame_batch_ready(struct frame_batch *b);
/* Unprotects what was not committed (p2m_unprotect is a no-op for frames
 * that were) and empties the batch. */
void frame_batch_finish(struct frame_batch *b);
/* Does the batch hold frames of VM id? */
bool frame_batch_involves(const struct frame_batch *b, uint32_t id);
void frame_batch_free(struct frame_batch *b);

#endif
