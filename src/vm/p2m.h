/* A VM's p2m: the map from its guest frames (guest-physical pages) to the
 * machine frames backing them, with a state per entry, plus the per-frame
 * decoded-code cache. A guest frame gets a machine frame only when first
 * written (demand-zero): until then reads see the shared zero frame. All
 * monitor-side access to guest memory goes through p2m_read/p2m_write,
 * which check bounds, back frames on demand and keep the code cache
 * coherent.
 *
 * Frames can also be taken away again (p2m_drop_*: the balloon and free
 * page reporting): the guest frame reads as zeros again and its machine
 * frame goes back to the pool once no hart can still reach it (see
 * "Dropping frames" in p2m.c). */
#ifndef RVISOR_P2M_H
#define RVISOR_P2M_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hart/code_cache.h"
#include "vm/frames.h"
#include "vm/platform.h"

struct p2m_release;

enum p2m_state {
    P2M_ZERO = 0,   /* never written: reads as zeros, no machine frame */
    P2M_PRIVATE,    /* backed by a machine frame of its own */
    /* Private, but page sharing means to merge it: harts' write mappings
     * were revoked, and the first write (any hart, any device) turns it
     * back to P2M_PRIVATE, which cancels the merge (see p2m_merge). */
    P2M_PROTECTED,
    /* Mapped read-only to a machine frame other guest frames may map too
     * (reference counted by the frame source); the first write copies it
     * to a private frame (copy-on-write). */
    P2M_SHARED,
    /* Written out to the VM's swap file (the entry holds the slot); read
     * back, checked against its checksum, on the next access. */
    P2M_SWAPPED,
    /* Not loaded yet from the snapshot it was restored from (the entry
     * holds the page's index in the mapped image, p2m_image.c); copied to
     * a frame of its own on the first access. */
    P2M_IMAGE,
    /* A dropped (ballooned or reported) or merged zero frame is P2M_ZERO again. */
};

struct p2m {
    uint64_t base;                /* guest-physical address of the first RAM byte */
    uint64_t size;                /* bytes, a multiple of 4 KiB */
    uint64_t nframes;
    struct frame_source frames;
    uint64_t *map;                /* per guest frame: mfn << 8 | state (one atomic word) */
    pthread_mutex_t lock;         /* serialises changes of map entries (harts run on several threads) */
    struct code_map code;         /* decoded code per guest frame (hart/code_cache.c owns it) */
    uint64_t backed;              /* guest frames with a machine frame of their own */
    uint64_t shared;              /* guest frames mapping a shared frame */
    uint64_t cow_breaks;          /* writes that copied a shared frame */
    uint64_t merged_zero;         /* frames page sharing found zero and dropped */
    uint64_t swapped;             /* guest frames in the swap file */
    uint64_t imaged;              /* guest frames still only in the snapshot image */
    struct p2m_image {            /* a restored VM's snapshot, mapped read-only (p2m_image.c) */
        const uint8_t *base;
        size_t len;
    } image;
    uint64_t swap_outs, swap_ins; /* frames written out and read back, in total */
    struct p2m_swap *swap;        /* the swap file, or NULL (p2m_swap.c) */
    /* Set when a frame's contents are lost (swap I/O failed, a checksum did
     * not match): the VM must stop, failure says why. */
    bool failed;
    char failure[160];
    /* Bumped whenever a guest frame moves to another machine frame while
     * harts may run (copy-on-write): a hart that filled a TLB entry from a
     * lookup made before the bump drops that entry (see hart/mem.c). */
    uint64_t remap_gen;
    bool exhausted;               /* a write found no free machine frame */
    /* Every hart drops every cached translation (any thread may call it
     * while the harts run); called with flush_ctx. May be NULL. (A frame
     * that gets backed needs no such call: the MMU never caches a
     * translation to the shared zero frame, see struct phys_page.) */
    void (*flush)(void *ctx);
    void *flush_ctx;

    /* Dropping frames (see p2m.c). */
    pthread_rwlock_t access;      /* held shared by p2m_read/write/fill, exclusively while dropping */
    unsigned ncpus;               /* harts that enter turns (p2m_turn_begin) */
    uint64_t turn[VM_MAX_HARTS];  /* per hart: odd while it runs, bumped at each start and end */
    pthread_mutex_t release_lock; /* guards releasing */
    struct p2m_release *releasing; /* dropped frames not yet back in the pool */
    uint64_t releasing_frames;    /* how many (read without the lock) */

    /* Active-memory sampling (p2m_sample.c): a few random backed frames
     * are marked; the first access to each after every hart's TLB was
     * flushed clears its mark. */
    struct p2m_sample {
        bool on;                  /* read on every p2m_frame */
        uint64_t *marks;          /* a bit per guest frame */
        unsigned sampled, touched;
    } sample;

    /* Dirty logging for live migration (p2m_dirty.c): two bitmaps of a bit
     * per guest frame; writes mark the one `log` points at (NULL: off). */
    struct p2m_dirty {
        uint64_t *log;            /* read on every p2m_frame that writes */
        uint64_t *bits[2];        /* allocated by the first p2m_dirty_start */
        unsigned cur;             /* log == bits[cur] while on */
        /* A collect did not settle: marks may still land in the bitmap it
         * read; the next settled collect also reports the current one. */
        bool carry;
    } dirty;
};

/* Returns false (with errno) on bad arguments or no host memory for the map. */
bool p2m_init(struct p2m *m, uint64_t base, uint64_t size, const struct frame_source *frames);
/* Gives every machine frame back to the frame source. */
void p2m_destroy(struct p2m *m);

static inline bool p2m_contains(const struct p2m *m, uint64_t gpa, uint64_t len) {
    return gpa >= m->base && len <= m->size && gpa - m->base <= m->size - len;
}

/* Host address of the frame holding gpa, for reading or (write) for writing,
 * backing it first if needed. NULL with errno as for p2m_write: EFAULT
 * (not RAM), ENOMEM (machine memory exhausted; m->exhausted is set), EIO. */
uint8_t *p2m_frame(struct p2m *m, uint64_t gpa, bool write, struct code_page ***code);
/* The shared zero frame every never-written guest frame reads. */
const uint8_t *p2m_zero_frame(const struct p2m *m);

/* Copy to or from guest RAM. False with errno EFAULT if any byte lies
 * outside RAM, ENOMEM if a frame could not be backed or read back just now
 * (machine memory exhausted: worth trying again once reclamation freed
 * some), EIO if a swapped frame's contents were lost (m->failed). */
bool p2m_write(struct p2m *m, uint64_t gpa, const void *buf, size_t len);
bool p2m_read(struct p2m *m, uint64_t gpa, void *buf, size_t len);
bool p2m_fill(struct p2m *m, uint64_t gpa, uint8_t byte, size_t len);

/* Drops the backing of every whole guest frame in [gpa, gpa + len) (parts
 * outside RAM are ignored): each reads as zeros again and is backed anew on
 * the next write. The machine frames return to the pool once every hart
 * has passed a safe point (p2m_reclaim). Returns how many backed frames
 * were dropped; `backed` falls by as much at once. */
uint64_t p2m_drop_range(struct p2m *m, uint64_t gpa, uint64_t len);
/* The same for n guest frames given by address (low 12 bits ignored);
 * addresses outside RAM are skipped. */
uint64_t p2m_drop_frames(struct p2m *m, const uint64_t *gpa, size_t n);

/* ---- Page sharing (driven by the monitor's scanner) ----
 * A frame is merged in three steps: p2m_protect revokes writes to it
 * (every hart's TLB is flushed); once the harts have passed two grace
 * periods (p2m_grace_begin / p2m_grace_passed, flushing again between), no
 * write to it can be in flight, and p2m_merge or p2m_share_in_place check
 * that no write cancelled the protection and that the contents are as
 * expected, then commit. */

/* The machine frame behind a private frame (P2M_PRIVATE or P2M_PROTECTED),
 * or false. */
bool p2m_private_mfn(struct p2m *m, uint64_t frame, uint64_t *mfn);
/* The shared machine frame a P2M_SHARED frame maps, or false. Names it
 * only: the frame may be unshared the next moment. */
bool p2m_shared_mfn(const struct p2m *m, uint64_t frame, uint64_t *mfn);
/* P2M_PRIVATE -> P2M_PROTECTED; false if the frame is not private. The
 * caller flushes the harts' TLBs (m->flush) once for a batch. */
bool p2m_protect(struct p2m *m, uint64_t frame, uint64_t *mfn);
/* Harts' turn counters, for a grace period (VM_MAX_HARTS entries). */
void p2m_grace_begin(struct p2m *m, uint64_t *snap);
bool p2m_grace_passed(struct p2m *m, const uint64_t *snap);

enum p2m_merge_result {
    P2M_MERGED,     /* the guest frame now maps the target */
    P2M_CANCELLED,  /* written since p2m_protect (or no longer mfn): left private */
    P2M_DIFFERENT,  /* contents differ from the target: left private */
};
/* Merges protected guest frame `frame` (backed by mfn) into machine frame
 * `target` of the same frame source if their contents are equal, or, with
 * to_zero, back to P2M_ZERO if it is all zeros. The old frame is given back
 * once the harts have passed (as for dropped frames). */
enum p2m_merge_result p2m_merge(struct p2m *m, uint64_t frame, uint64_t mfn, bool to_zero, uint64_t target);
/* Turns protected guest frame `frame` (backed by mfn) into P2M_SHARED on
 * the same machine frame, so that others may merge into it; the caller
 * takes its own reference for the sharing table. */
enum p2m_merge_result p2m_share_in_place(struct p2m *m, uint64_t frame, uint64_t mfn);
/* ---- Hypervisor swap (p2m_swap.c) ---- */

/* Gives the p2m a swap file of at most max_bytes in directory dir (an
 * unnamed file: nothing is left behind). False with a message in err. */
bool p2m_swap_init(struct p2m *m, const char *dir, uint64_t max_bytes, char *err, size_t errlen);
enum p2m_swap_result {
    P2M_SWAP_OUT,      /* written out: the machine frame goes back once the harts passed */
    P2M_SWAP_CANCELLED,/* written to since p2m_protect: left private */
    P2M_SWAP_FULL,     /* no swap file, or no free slot */
    P2M_SWAP_ERROR,    /* the write failed (err says why): left private */
};
/* Writes protected guest frame `frame` (backed by mfn) to the swap file
 * and maps it there (see p2m_merge for the protocol). */
enum p2m_swap_result p2m_swap_out(struct p2m *m, uint64_t frame, uint64_t mfn);
/* Slots free in the swap file (0 without one). */
uint64_t p2m_swap_free(const struct p2m *m);

/* Gives up on a protected frame (P2M_PROTECTED on mfn -> P2M_PRIVATE). */
void p2m_unprotect(struct p2m *m, uint64_t frame, uint64_t mfn);
/* ---- Active-memory sampling (p2m_sample.c; ESX, OSDI 2002, section 5.3) ---- */

/* Starts a sample of up to n (at most 256) of the VM's backed frames chosen at random
 * (from seed) and flushes every hart's TLB, so the next access to each
 * sampled frame comes through p2m_frame. Returns how many were sampled.
 * One thread (the monitor's memory manager) drives the sampling. */
unsigned p2m_sample_begin(struct p2m *m, unsigned n, uint64_t seed);
/* Ends the sample: *touched gets how many sampled frames were accessed
 * since p2m_sample_begin. Returns how many were sampled (0: no estimate). */
unsigned p2m_sample_end(struct p2m *m, unsigned *touched);
void p2m_sample_touch(struct p2m *m, uint64_t frame);

/* ---- Dirty logging (p2m_dirty.c), for live migration (pre-copy) ----
 * Every guest frame whose contents change while logging is on is marked:
 * written by a hart (stores, AMOs, A/D updates of page tables), by device
 * DMA (p2m_write, p2m_fill), on its first write (demand-zero), on a
 * copy-on-write break, and when dropped (it turns to zeros). Merging,
 * sharing and swapping keep the contents and mark nothing. One thread (the
 * migration's) calls start, collect and stop; never two at once. */

/* How long p2m_dirty_start and p2m_dirty_collect wait for the harts. */
#define P2M_DIRTY_WAIT_MS 100

/* Starts logging: every guest frame written from now on is marked. Every
 * hart's TLB is flushed and the harts are waited for (a grace period, up to
 * P2M_DIRTY_WAIT_MS), so that when it returns no write mapping installed
 * without a mark is left and no write through one is in flight: a copy of
 * all RAM made after it returns, plus the frames later collects report,
 * is exact. If the harts did not pass in time, every frame is marked
 * instead (the first collect reports all of them). false: no host memory. */
bool p2m_dirty_start(struct p2m *m);
/* Hands the frames marked since the start or the last collect to the
 * caller, in out (a bitmap of m->nframes bits the caller allocates,
 * (nframes+63)/64 words, overwritten), and starts a new log; returns how
 * many bits are set. It swaps the log, waits for device copies under way
 * (p2m_write/p2m_fill) and a grace period, flushes every hart's TLB, and
 * waits for a second grace period (in all at most P2M_DIRTY_WAIT_MS).
 *
 * Guarantee when *settled is true: every write that was not complete when
 * this returned marks its frame in the log of a later collect. So a caller
 * that copies the frames in out after this returns (and copied all RAM
 * after p2m_dirty_start) has a copy that differs from guest RAM only in
 * frames a later collect will report; with the VM paused (no hart in a
 * turn, no device writing), a final settled collect plus its copy makes the
 * copy exact.
 *
 * *settled false: a hart (or a device copy) did not pass within the wait,
 * and a write through a mapping from before the swap may still land, after
 * the caller's copy, in a frame of out. Nothing is lost: the frames in out
 * are marked again in the new log (the next collect reports them again),
 * and late marks into the old log are picked up by the next settled
 * collect; collect again until one settles. settled may be NULL. When
 * logging is off, out is cleared and 0 returned. */
uint64_t p2m_dirty_collect(struct p2m *m, uint64_t *out, bool *settled);
/* Stops logging (writes mark nothing from now on); the bitmaps stay
 * allocated until p2m_destroy, so a hart still marking one is harmless. */
/* With the VM paused (no hart in a turn, no device writing): ORs into acc
 * every frame marked since the last collect, collecting until one settles
 * (it does at once when nothing runs; a frame left unsettled is reported
 * by the next). false: no host memory. */
bool p2m_dirty_collect_paused(struct p2m *m, uint64_t *acc);
void p2m_dirty_stop(struct p2m *m);
/* Marks frame (index) in the current log; p2m_frame calls it on a write
 * while m->dirty.log is set, drop_batch for every frame it drops. */
void p2m_dirty_mark(struct p2m *m, uint64_t frame);

/* ---- Lazy restore (p2m_image.c) ---- */

/* Gives the p2m a read-only mapping of a snapshot (munmapped by
 * p2m_destroy), whose pages p2m_image_map can make guest frames read as. */
void p2m_image_attach(struct p2m *m, const void *base, size_t len);
/* Guest frame `frame` (a P2M_ZERO one) holds the image's page at byte
 * offset off (page aligned, inside the image) from now on: it is copied in
 * on first access. false if frame or off are out of range or no image. */
bool p2m_image_map(struct p2m *m, uint64_t frame, uint64_t off);
/* Guest frame `frame` (P2M_ZERO or P2M_IMAGE) reads as the same image page
 * as `source`, a P2M_IMAGE frame, from now on. false if either is out of
 * range or in another state. */
bool p2m_image_alias(struct p2m *m, uint64_t frame, uint64_t source);
/* p2m_frame's path for a P2M_IMAGE entry e, with m->lock held. */
uint8_t *p2m_image_in_locked(struct p2m *m, uint64_t frame, uint64_t e);

/* The guest frame's state now (racy: for statistics and tests). */
enum p2m_state p2m_state_of(const struct p2m *m, uint64_t frame);

/* Brackets every run of hart `cpu` (hart_run): a hart between the two holds
 * no host pointer into guest memory except in its software TLB. cpu <
 * ncpus. p2m_turn_end also reclaims what has become safe to free. */
void p2m_turn_begin(struct p2m *m, unsigned cpu);
void p2m_turn_end(struct p2m *m, unsigned cpu);

/* Gives dropped frames whose harts have passed a safe point back to the
 * pool; callable from any thread at any time (a no-op when none wait). */
void p2m_reclaim(struct p2m *m);

/* Frames dropped but not yet back in the pool. */
static inline uint64_t p2m_releasing(const struct p2m *m) {
    return __atomic_load_n(&m->releasing_frames, __ATOMIC_RELAXED);
}

#endif
