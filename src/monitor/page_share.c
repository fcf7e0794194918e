#include "monitor/page_share.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "monitor/frame_batch.h"
#include "monitor/machine_memory.h"
#include "vm/p2m.h"
#include "vm/platform.h"

#define FRAME_SIZE 4096
#define MIN_BUCKETS 4096
#define SWEEP_BUCKETS 1024 /* buckets checked per tick for shared frames nobody maps */

enum node_kind { NODE_HINT, NODE_SHARED };

/* One entry of the table, keyed by (hash, group). A hint names a private
 * frame (vm_id, gfn, mfn) that had this hash when scanned; a shared entry
 * holds a reference to its machine frame. Hints are also indexed by their
 * frame (vm_id, gfn), so that a frame has one hint, for what it held when
 * last scanned: without it, every content a guest frame ever had when the
 * scanner passed would stay in the table until its VM is destroyed (the
 * table grew without bound under a guest that keeps writing new data). */
struct node {
    struct node *next;
    struct node *next_frame; /* a hint: the next in its frame bucket */
    uint64_t hash;
    uint32_t group;
    enum node_kind kind;
    bool promoting; /* a hint whose frame the pending batch turns into a shared frame */
    unsigned pinned; /* items of the pending batch that refer to it: it stays */
    bool dead;      /* to be removed once the batch is done */
    uint64_t mfn;
    uint32_t vm_id;
    uint64_t gfn;
};

/* What the pending batch does with each frame (struct batch_frame.kind);
 * .data is the node: the target of a merge, the hint being promoted. */
enum item_kind { ITEM_ZERO, ITEM_MERGE, ITEM_PROMOTE };

struct cursor {
    uint32_t id;
    uint64_t next; /* the next guest frame to look at */
};

struct page_share {
    struct machine_memory *mm;
    struct frame_source frames;
    uint64_t zero_hash;

    struct node **bucket;
    struct node **frame_bucket; /* hints by (vm_id, gfn); nbuckets of them too */
    size_t nbuckets, count;
    size_t sweep_pos;

    struct frame_batch batch; /* protected frames waiting to be merged */

    struct cursor *cursors;
    size_t ncursors;
    unsigned next_vm; /* round robin over VMs between ticks */

    struct page_share_stats st;
};

struct page_share *page_share_create(struct machine_memory *mm) {
    struct page_share *ps = calloc(1, sizeof *ps);
    if (!ps) return NULL;
    ps->mm = mm;
    ps->frames = machine_memory_source(mm);
    ps->nbuckets = MIN_BUCKETS;
    ps->bucket = calloc(ps->nbuckets, sizeof *ps->bucket);
    ps->frame_bucket = calloc(ps->nbuckets, sizeof *ps->frame_bucket);
    if (!ps->bucket || !ps->frame_bucket) {
        free(ps->bucket);
        free(ps->frame_bucket);
        free(ps);
        return NULL;
    }
    ps->zero_hash = XXH3_64bits(frame_host(&ps->frames, ps->frames.zero_mfn), FRAME_SIZE);
    return ps;
}

static size_t frame_bucket_of(const struct page_share *ps, uint32_t vm_id, uint64_t gfn) {
    uint64_t k = (gfn ^ (uint64_t)vm_id << 40) * 0x9e3779b97f4a7c15ull;
    return (size_t)(k ^ k >> 32) & (ps->nbuckets - 1);
}

static void frame_link(struct page_share *ps, struct node *n) {
    size_t k = frame_bucket_of(ps, n->vm_id, n->gfn);
    n->next_frame = ps->frame_bucket[k];
    ps->frame_bucket[k] = n;
}

static void frame_unlink(struct page_share *ps, struct node *n) {
    if (!ps->frame_bucket) return; /* the table is being destroyed */
    for (struct node **p = &ps->frame_bucket[frame_bucket_of(ps, n->vm_id, n->gfn)]; *p; p = &(*p)->next_frame)
        if (*p == n) {
            *p = n->next_frame;
            n->next_frame = NULL;
            return;
        }
}

static void free_node(struct page_share *ps, struct node *n) {
    if (n->kind == NODE_HINT) frame_unlink(ps, n);
    if (n->kind == NODE_SHARED) {
        ps->frames.free(ps->frames.pool, n->mfn);
        ps->st.shared_frames--;
    } else {
        ps->st.hints--;
    }
    ps->count--;
    free(n);
}

void page_share_destroy(struct page_share *ps) {
    if (!ps) return;
    free(ps->frame_bucket);
    ps->frame_bucket = NULL;
    for (size_t b = 0; b < ps->nbuckets; b++)
        while (ps->bucket[b]) {
            struct node *n = ps->bucket[b];
            ps->bucket[b] = n->next;
            free_node(ps, n);
        }
    free(ps->bucket);
    frame_batch_free(&ps->batch);
    free(ps->cursors);
    free(ps);
}

void page_share_get_stats(const struct page_share *ps, struct page_share_stats *out) { *out = ps->st; }

/* ---- the table ---- */

static size_t bucket_of(const struct page_share *ps, uint64_t hash, uint32_t group) {
    return (size_t)((hash ^ (uint64_t)group * 0x9e3779b97f4a7c15ull) & (ps->nbuckets - 1));
}

static struct node *lookup(struct page_share *ps, uint64_t hash, uint32_t group) {
    for (struct node *n = ps->bucket[bucket_of(ps, hash, group)]; n; n = n->next)
        if (n->hash == hash && n->group == group && !n->dead) return n;
    return NULL;
}

static void grow(struct page_share *ps) {
    size_t nb = ps->nbuckets * 2;
    struct node **b = calloc(nb, sizeof *b), **fb = calloc(nb, sizeof *fb);
    if (!b || !fb) { /* longer chains, still correct */
        free(b);
        free(fb);
        return;
    }
    struct node **old = ps->bucket, **old_frame = ps->frame_bucket;
    size_t oldn = ps->nbuckets;
    ps->bucket = b;
    ps->frame_bucket = fb;
    ps->nbuckets = nb;
    for (size_t i = 0; i < oldn; i++) {
        while (old[i]) {
            struct node *n = old[i];
            old[i] = n->next;
            size_t k = bucket_of(ps, n->hash, n->group);
            n->next = b[k];
            b[k] = n;
        }
        while (old_frame[i]) {
            struct node *n = old_frame[i];
            old_frame[i] = n->next_frame;
            frame_link(ps, n);
        }
    }
    free(old);
    free(old_frame);
    ps->sweep_pos = 0;
}

/* Frame (vm_id, gfn) is to have hint n (already in its hash bucket): the
 * frame's older hint, for contents it no longer has, goes, unless the
 * pending batch still refers to it (it then becomes a shared frame or
 * dead). */
static void hint_frame(struct page_share *ps, struct node *n, uint32_t vm_id, uint64_t gfn, uint64_t mfn) {
    size_t k = frame_bucket_of(ps, vm_id, gfn);
    for (struct node *o = ps->frame_bucket[k]; o; o = o->next_frame) {
        if (o == n || o->vm_id != vm_id || o->gfn != gfn) continue;
        if (o->pinned || o->promoting || o->dead) continue;
        for (struct node **p = &ps->bucket[bucket_of(ps, o->hash, o->group)]; *p; p = &(*p)->next)
            if (*p == o) {
                *p = o->next;
                free_node(ps, o);
                break;
            }
        break;
    }
    frame_unlink(ps, n);
    n->vm_id = vm_id;
    n->gfn = gfn;
    n->mfn = mfn;
    frame_link(ps, n);
}

static struct node *insert_hint(struct page_share *ps, uint64_t hash, uint32_t group, uint32_t vm_id, uint64_t gfn,
                                uint64_t mfn) {
    if (ps->count >= ps->nbuckets * 2) grow(ps);
    struct node *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    *n = (struct node){.hash = hash, .group = group, .kind = NODE_HINT, .mfn = mfn, .vm_id = vm_id, .gfn = gfn};
    size_t k = bucket_of(ps, hash, group);
    n->next = ps->bucket[k];
    ps->bucket[k] = n;
    ps->count++;
    ps->st.hints++;
    hint_frame(ps, n, vm_id, gfn, mfn); /* n is in no frame bucket yet: its unlink finds nothing */
    return n;
}

/* Removes nodes matching `doomed` (or marked dead). */
static void remove_where(struct page_share *ps, size_t first, size_t nb, bool (*doomed)(struct page_share *, struct node *, uint32_t),
                         uint32_t arg) {
    for (size_t i = 0; i < nb; i++) {
        size_t b = (first + i) & (ps->nbuckets - 1);
        for (struct node **p = &ps->bucket[b]; *p;) {
            struct node *n = *p;
            if (n->dead || (doomed && doomed(ps, n, arg))) {
                *p = n->next;
                free_node(ps, n);
            } else {
                p = &n->next;
            }
        }
    }
}

/* A shared frame only the table still holds: nobody maps it any more. */
static bool unmapped(struct page_share *ps, struct node *n, uint32_t arg) {
    (void)arg;
    return n->kind == NODE_SHARED && !n->pinned && machine_memory_refs(ps->mm, n->mfn) == 1;
}

static bool hint_of_vm(struct page_share *ps, struct node *n, uint32_t id) {
    (void)ps;
    return n->kind == NODE_HINT && n->vm_id == id;
}

/* ---- the pending batch ---- */

/* Protects guest frame gfn of vm and queues what to do with it. */
static bool queue(struct page_share *ps, const struct share_vm *vm, uint64_t gfn, enum item_kind kind, struct node *node) {
    if (!frame_batch_add(&ps->batch, vm->id, vm->mem, gfn, kind, node)) return false;
    if (node) node->pinned++;
    return true;
}

/* The batch is over: its nodes may go. */
static void unpin(struct page_share *ps) {
    for (size_t i = 0; i < ps->batch.n; i++) {
        struct node *n = ps->batch.frame[i].data;
        if (n) n->pinned--;
    }
    frame_batch_finish(&ps->batch);
}

static void count_result(struct page_share *ps, enum p2m_merge_result r, bool zero) {
    if (r == P2M_MERGED) {
        if (zero)
            ps->st.zero_merged++;
        else
            ps->st.merged++;
    } else if (r == P2M_CANCELLED) {
        ps->st.cancelled++;
    } else {
        ps->st.different++;
    }
}

static void commit(struct page_share *ps) {
    /* Hints first: their frames become the shared frames the others merge into. */
    for (size_t i = 0; i < ps->batch.n; i++) {
        struct batch_frame *it = &ps->batch.frame[i];
        if (it->kind != ITEM_PROMOTE) continue;
        struct node *n = it->data;
        n->promoting = false;
        /* The frame has been protected for two grace periods: if the
         * protection still holds, its contents are the ones hashed now. */
        if (XXH3_64bits(frame_host(&ps->frames, it->mfn), FRAME_SIZE) != n->hash) {
            p2m_unprotect(it->mem, it->gfn, it->mfn);
            n->dead = true;
            ps->st.different++;
            continue;
        }
        if (p2m_share_in_place(it->mem, it->gfn, it->mfn) != P2M_MERGED) {
            n->dead = true;
            ps->st.cancelled++;
            continue;
        }
        ps->frames.get(ps->frames.pool, it->mfn); /* the table's reference */
        frame_unlink(ps, n);
        n->kind = NODE_SHARED;
        n->mfn = it->mfn;
        ps->st.hints--;
        ps->st.shared_frames++;
    }
    for (size_t i = 0; i < ps->batch.n; i++) {
        struct batch_frame *it = &ps->batch.frame[i];
        struct node *n = it->data;
        if (it->kind == ITEM_ZERO)
            count_result(ps, p2m_merge(it->mem, it->gfn, it->mfn, true, 0), true);
        else if (it->kind == ITEM_MERGE && n->kind == NODE_SHARED && !n->dead)
            count_result(ps, p2m_merge(it->mem, it->gfn, it->mfn, false, n->mfn), false);
    }
    unpin(ps);
    remove_where(ps, 0, ps->nbuckets, NULL, 0); /* the dead */
}

/* Drops the batch without merging anything (a VM in it goes away; its
 * p2m still exists, so its frames are unprotected like the others). */
static void abandon(struct page_share *ps) {
    for (size_t i = 0; i < ps->batch.n; i++) {
        struct batch_frame *it = &ps->batch.frame[i];
        if (it->kind == ITEM_PROMOTE) {
            struct node *n = it->data;
            n->promoting = false;
            n->dead = true;
        }
    }
    unpin(ps);
    remove_where(ps, 0, ps->nbuckets, NULL, 0);
}

/* ---- scanning ---- */

static struct cursor *cursor_of(struct page_share *ps, uint32_t id) {
    for (size_t i = 0; i < ps->ncursors; i++)
        if (ps->cursors[i].id == id) return &ps->cursors[i];
    struct cursor *c = realloc(ps->cursors, (ps->ncursors + 1) * sizeof *c);
    if (!c) return NULL;
    ps->cursors = c;
    c[ps->ncursors] = (struct cursor){.id = id};
    return &c[ps->ncursors++];
}

static const struct share_vm *vm_by_id(const struct share_vm *vms, unsigned n, uint32_t id) {
    for (unsigned i = 0; i < n; i++)
        if (vms[i].id == id) return &vms[i];
    return NULL;
}

/* Is the hint still what it says: the same private frame, same contents? */
static bool hint_holds(struct page_share *ps, const struct node *n, const struct share_vm *owner) {
    uint64_t mfn;
    if (!owner || p2m_state_of(owner->mem, n->gfn) != P2M_PRIVATE || !p2m_private_mfn(owner->mem, n->gfn, &mfn) ||
        mfn != n->mfn)
        return false;
    return XXH3_64bits(frame_host(&ps->frames, mfn), FRAME_SIZE) == n->hash;
}

static void scan_frame(struct page_share *ps, const struct share_vm *vms, unsigned nvms, const struct share_vm *vm,
                       uint64_t gfn, uint64_t mfn) {
    const uint8_t *host = frame_host(&ps->frames, mfn);
    uint64_t h = XXH3_64bits(host, FRAME_SIZE);
    ps->st.scanned++;
    if (h == ps->zero_hash && memcmp(host, frame_host(&ps->frames, ps->frames.zero_mfn), FRAME_SIZE) == 0) {
        queue(ps, vm, gfn, ITEM_ZERO, NULL);
        return;
    }
    struct node *n = lookup(ps, h, vm->group);
    if (!n) {
        insert_hint(ps, h, vm->group, vm->id, gfn, mfn);
        return;
    }
    if (n->kind == NODE_SHARED || n->promoting) {
        queue(ps, vm, gfn, ITEM_MERGE, n);
        return;
    }
    if (n->vm_id == vm->id && n->gfn == gfn) { /* this very frame, seen again */
        n->mfn = mfn;
        return;
    }
    const struct share_vm *owner = vm_by_id(vms, nvms, n->vm_id);
    if (!hint_holds(ps, n, owner)) { /* stale: this frame is the hint now */
        hint_frame(ps, n, vm->id, gfn, mfn);
        return;
    }
    if (!queue(ps, owner, n->gfn, ITEM_PROMOTE, n)) return;
    n->promoting = true;
    queue(ps, vm, gfn, ITEM_MERGE, n);
}

static void build(struct page_share *ps, const struct share_vm *vms, unsigned nvms, unsigned budget) {
    unsigned hashed_before = (unsigned)ps->st.scanned;
    for (unsigned k = 0; k < nvms; k++) {
        const struct share_vm *vm = &vms[(ps->next_vm + k) % nvms];
        struct cursor *c = cursor_of(ps, vm->id);
        if (!c) return;
        uint64_t nframes = vm->mem->nframes;
        /* Frames without a private machine frame cost a load each: look at
         * a bounded number of them too. */
        for (uint64_t looked = 0; looked < nframes && looked < (uint64_t)budget * 16; looked++) {
            if ((unsigned)ps->st.scanned - hashed_before >= budget) break;
            uint64_t gfn = c->next;
            c->next = gfn + 1 < nframes ? gfn + 1 : 0;
            uint64_t mfn;
            if (p2m_state_of(vm->mem, gfn) == P2M_PRIVATE && p2m_private_mfn(vm->mem, gfn, &mfn))
                scan_frame(ps, vms, nvms, vm, gfn, mfn);
        }
        if ((unsigned)ps->st.scanned - hashed_before >= budget) {
            ps->next_vm = (ps->next_vm + k + 1) % nvms;
            break;
        }
    }
    frame_batch_start(&ps->batch);
}

void page_share_tick(struct page_share *ps, const struct share_vm *vms, unsigned nvms, unsigned budget) {
    if (ps->batch.n) {
        if (frame_batch_ready(&ps->batch)) commit(ps);
        return;
    }
    remove_where(ps, ps->sweep_pos, SWEEP_BUCKETS < ps->nbuckets ? SWEEP_BUCKETS : ps->nbuckets, unmapped, 0);
    ps->sweep_pos = (ps->sweep_pos + SWEEP_BUCKETS) & (ps->nbuckets - 1);
    if (nvms) build(ps, vms, nvms, budget);
}

void page_share_sweep(struct page_share *ps) { remove_where(ps, 0, ps->nbuckets, unmapped, 0); }

void page_share_forget_vm(struct page_share *ps, uint32_t id) {
    if (frame_batch_involves(&ps->batch, id)) abandon(ps);
    remove_where(ps, 0, ps->nbuckets, hint_of_vm, id);
    for (size_t i = 0; i < ps->ncursors; i++)
        if (ps->cursors[i].id == id) {
            ps->cursors[i] = ps->cursors[--ps->ncursors];
            break;
        }
}
