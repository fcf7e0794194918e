#include "monitor/machine_memory.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FRAME_SHIFT 12
#define FRAME_SIZE (1ull << FRAME_SHIFT)
#define ZERO_MFN 0

bool machine_memory_init(struct machine_memory *mm, uint64_t bytes) {
    memset(mm, 0, sizeof *mm);
    uint64_t nframes = bytes >> FRAME_SHIFT;
    if (nframes < 2) {
        errno = EINVAL;
        return false;
    }
    void *p = mmap(NULL, nframes << FRAME_SHIFT, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED) return false;
    mm->free_stack = malloc(nframes * sizeof *mm->free_stack);
    mm->refs = calloc(nframes, sizeof *mm->refs); /* untouched pages cost nothing */
    if (!mm->free_stack || !mm->refs) {
        munmap(p, nframes << FRAME_SHIFT);
        free(mm->free_stack);
        free(mm->refs);
        errno = ENOMEM;
        return false;
    }
    /* A stray write to the zero frame would corrupt every guest: make it fault instead. */
    mprotect(p, FRAME_SIZE, PROT_READ);
    mm->base = p;
    mm->nframes = nframes;
    mm->next_fresh = ZERO_MFN + 1;
    pthread_mutex_init(&mm->lock, NULL);
    return true;
}

void machine_memory_destroy(struct machine_memory *mm) {
    if (mm->base) munmap(mm->base, mm->nframes << FRAME_SHIFT);
    free(mm->free_stack);
    free(mm->refs);
    pthread_mutex_destroy(&mm->lock);
    memset(mm, 0, sizeof *mm);
}

/* Fresh frames are faulted in a batch at a time, in one call: a page
 * fault per frame costs more than the copy that follows it (restores and
 * incoming migrations write every frame at once), and far more where the
 * host is itself virtual. Best effort: kernels before 5.14 lack it. */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define POPULATE_FRAMES 64

static void populate(struct machine_memory *mm, uint64_t first) {
    uint64_t n = mm->nframes - first < POPULATE_FRAMES ? mm->nframes - first : POPULATE_FRAMES;
    madvise(mm->base + (first << FRAME_SHIFT), n << FRAME_SHIFT, MADV_POPULATE_WRITE);
}

static bool mm_alloc(void *pool, uint64_t *mfn) {
    struct machine_memory *mm = pool;
    bool ok = true;
    pthread_mutex_lock(&mm->lock);
    if (mm->free_count)
        *mfn = mm->free_stack[--mm->free_count];
    else if (mm->next_fresh < mm->nframes) {
        *mfn = mm->next_fresh++;
        if (*mfn % POPULATE_FRAMES == 1 % POPULATE_FRAMES) populate(mm, *mfn);
    } else
        ok = false;
    if (ok) {
        mm->in_use++;
        __atomic_store_n(&mm->refs[*mfn], 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&mm->lock);
    return ok;
}

static void mm_get(void *pool, uint64_t mfn) {
    struct machine_memory *mm = pool;
    if (mfn == ZERO_MFN || mfn >= mm->nframes) return;
    __atomic_add_fetch(&mm->refs[mfn], 1, __ATOMIC_ACQ_REL);
}

static void mm_free(void *pool, uint64_t mfn) {
    struct machine_memory *mm = pool;
    if (mfn == ZERO_MFN || mfn >= mm->nframes) return;
    if (__atomic_sub_fetch(&mm->refs[mfn], 1, __ATOMIC_ACQ_REL) != 0) return;
    /* The host takes the memory back; the frame reads as zeros when reused. */
    madvise(mm->base + (mfn << FRAME_SHIFT), FRAME_SIZE, MADV_DONTNEED);
    pthread_mutex_lock(&mm->lock);
    mm->free_stack[mm->free_count++] = mfn;
    mm->in_use--;
    pthread_mutex_unlock(&mm->lock);
}

struct frame_source machine_memory_source(struct machine_memory *mm) {
    return (struct frame_source){.alloc = mm_alloc, .free = mm_free, .get = mm_get, .pool = mm, .base = mm->base, .zero_mfn = ZERO_MFN};
}

uint64_t machine_memory_free_frames(struct machine_memory *mm) {
    pthread_mutex_lock(&mm->lock);
    uint64_t n = mm->free_count + (mm->nframes - mm->next_fresh);
    pthread_mutex_unlock(&mm->lock);
    return n;
}

uint64_t machine_memory_used_frames(struct machine_memory *mm) {
    pthread_mutex_lock(&mm->lock);
    uint64_t n = mm->in_use;
    pthread_mutex_unlock(&mm->lock);
    return n;
}

uint64_t machine_memory_default_size(void) {
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || size <= 0) return 1ull << 30;
    /* Leave the host a quarter, at most 4 GiB. */
    uint64_t total = (uint64_t)pages * (uint64_t)size;
    uint64_t keep = total / 4 < (4ull << 30) ? total / 4 : (4ull << 30);
    return total - keep;
}
