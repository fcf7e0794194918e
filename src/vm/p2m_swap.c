/* Hypervisor swap (ESX's last resort when memory is short): guest frames
 * written to a per-VM file and read back on the guest's next access. Each
 * slot's contents are checked against a checksum kept in memory, so a
 * frame is never returned wrong: a mismatch or an I/O error stops the VM
 * (m->failed) instead. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "mmu/tlb.h"
#include "vm/p2m_internal.h"

struct p2m_swap {
    int fd;
    uint64_t nslots;   /* capacity */
    uint64_t next;     /* slots from here on were never used */
    uint64_t *free;    /* slots given back, reused first */
    uint64_t nfree;
    uint64_t *sum;     /* XXH3 of each slot's contents */
};

/* An unnamed file in dir: nothing to clean up, even after kill -9, and
 * nothing another process could open. Only O_TMPFILE: the monitor's
 * sandbox allows no other way of making a file. */
static int open_unnamed(const char *dir, char *err, size_t errlen) {
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        snprintf(err, errlen, "cannot make a swap file in %s: %s%s", dir, strerror(errno),
                 errno == EOPNOTSUPP || errno == EISDIR ? " (the file system has no unnamed files, O_TMPFILE)" : "");
    return fd;
}

bool p2m_swap_init(struct p2m *m, const char *dir, uint64_t max_bytes, char *err, size_t errlen) {
    uint64_t nslots = max_bytes >> PAGE_SHIFT;
    if (nslots == 0) {
        snprintf(err, errlen, "the swap file must hold at least one page");
        return false;
    }
    struct p2m_swap *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of host memory");
        return false;
    }
    s->nslots = nslots;
    s->free = malloc(nslots * sizeof *s->free);
    s->sum = calloc(nslots, sizeof *s->sum);
    s->fd = open_unnamed(dir, err, errlen);
    if (!s->free || !s->sum || s->fd < 0) {
        if (s->fd >= 0) close(s->fd);
        if (!s->free || !s->sum) snprintf(err, errlen, "out of host memory");
        free(s->free);
        free(s->sum);
        free(s);
        return false;
    }
    pthread_mutex_lock(&m->lock);
    m->swap = s;
    pthread_mutex_unlock(&m->lock);
    return true;
}

void p2m_swap_destroy(struct p2m *m) {
    struct p2m_swap *s = m->swap;
    if (!s) return;
    close(s->fd);
    free(s->free);
    free(s->sum);
    free(s);
    m->swap = NULL;
}

uint64_t p2m_swap_free(const struct p2m *m) {
    const struct p2m_swap *s = m->swap;
    return s ? s->nfree + (s->nslots - s->next) : 0;
}

static bool alloc_slot(struct p2m_swap *s, uint64_t *slot) {
    if (s->nfree) {
        *slot = s->free[--s->nfree];
        return true;
    }
    if (s->next == s->nslots) return false;
    *slot = s->next++;
    return true;
}

void p2m_swap_free_slot(struct p2m *m, uint64_t slot) {
    struct p2m_swap *s = m->swap;
    if (s && slot < s->nslots) s->free[s->nfree++] = slot;
}

static bool write_all(int fd, const uint8_t *buf, uint64_t off) {
    size_t done = 0;
    while (done < PAGE_SIZE) {
        ssize_t n = pwrite(fd, buf + done, PAGE_SIZE - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += (size_t)n;
    }
    return true;
}

static bool read_all(int fd, uint8_t *buf, uint64_t off) {
    size_t done = 0;
    while (done < PAGE_SIZE) {
        ssize_t n = pread(fd, buf + done, PAGE_SIZE - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += (size_t)n;
    }
    return true;
}

enum p2m_swap_result p2m_swap_out(struct p2m *m, uint64_t frame, uint64_t mfn) {
    pthread_mutex_lock(&m->lock);
    struct p2m_swap *s = m->swap;
    uint64_t slot;
    bool got = s && alloc_slot(s, &slot);
    pthread_mutex_unlock(&m->lock);
    if (!got) return P2M_SWAP_FULL;
    /* Protected for two grace periods: nobody writes the frame while it
     * is copied, and a write after this cancels the commit below. */
    const uint8_t *host = frame_host(&m->frames, mfn);
    uint64_t sum = XXH3_64bits(host, PAGE_SIZE);
    bool written = write_all(s->fd, host, slot << PAGE_SHIFT);
    enum p2m_swap_result res = P2M_SWAP_OUT;
    pthread_rwlock_wrlock(&m->access);
    pthread_mutex_lock(&m->lock);
    if (!written) {
        res = P2M_SWAP_ERROR;
    } else if (!p2m_still_protected(m, frame, mfn)) {
        res = P2M_SWAP_CANCELLED;
    } else {
        s->sum[slot] = sum;
        __atomic_store_n(&m->map[frame], slot << STATE_BITS | P2M_SWAPPED, __ATOMIC_SEQ_CST);
        __atomic_fetch_sub(&m->backed, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&m->swapped, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&m->swap_outs, 1, __ATOMIC_RELAXED);
    }
    if (res != P2M_SWAP_OUT) s->free[s->nfree++] = slot;
    pthread_mutex_unlock(&m->lock);
    pthread_rwlock_unlock(&m->access);
    if (res == P2M_SWAP_OUT) p2m_release_frame(m, mfn);
    return res;
}

static void lost(struct p2m *m, uint64_t frame, const char *why) {
    m->failed = true;
    snprintf(m->failure, sizeof m->failure, "guest frame 0x%llx lost: %s",
             (unsigned long long)(m->base + (frame << PAGE_SHIFT)), why);
    errno = EIO;
}

/* The read runs without m->lock, so that other harts' faults, the
 * reclaimer and the sharing scanner do not wait for the disk: the entry is
 * checked again before the frame is installed. If it changed meanwhile
 * (another hart read it back, or it was dropped and its slot perhaps
 * reused), this read is thrown away. A slot can only be rewritten after
 * its entry changed, and it can only come back to the same value through
 * a completed swap-out, which swap_outs counts: a checksum mismatch with
 * the entry unchanged is a damaged file only if no swap-out completed. */
uint8_t *p2m_swap_in(struct p2m *m, uint64_t frame, uint64_t e, bool *again) {
    pthread_mutex_lock(&m->lock);
    struct p2m_swap *s = m->swap;
    uint64_t slot = entry_mfn(e), mfn = 0;
    uint8_t *host = NULL;
    if (__atomic_load_n(&m->map[frame], __ATOMIC_ACQUIRE) != e) {
        *again = true; /* read back by another hart meanwhile */
    } else if (!s || slot >= s->nslots) {
        lost(m, frame, "its swap slot is gone");
    } else if (!m->frames.alloc(m->frames.pool, &mfn)) {
        m->exhausted = true;
        errno = ENOMEM;
    } else {
        host = frame_host(&m->frames, mfn);
    }
    if (!host) {
        pthread_mutex_unlock(&m->lock);
        return NULL;
    }
    uint64_t sum = s->sum[slot], outs = __atomic_load_n(&m->swap_outs, __ATOMIC_RELAXED);
    int fd = s->fd;
    pthread_mutex_unlock(&m->lock);

    bool read = read_all(fd, host, slot << PAGE_SHIFT);
    bool intact = read && XXH3_64bits(host, PAGE_SIZE) == sum;

    pthread_mutex_lock(&m->lock);
    if (__atomic_load_n(&m->map[frame], __ATOMIC_ACQUIRE) != e ||
        (read && !intact && __atomic_load_n(&m->swap_outs, __ATOMIC_RELAXED) != outs)) {
        *again = true;
    } else if (!read) {
        lost(m, frame, "reading the swap file failed");
    } else if (!intact) {
        lost(m, frame, "the swap file does not hold what was written (checksum mismatch)");
    } else {
        __atomic_store_n(&m->map[frame], mfn << STATE_BITS | P2M_PRIVATE, __ATOMIC_SEQ_CST);
        s->free[s->nfree++] = slot;
        __atomic_fetch_add(&m->backed, 1, __ATOMIC_RELAXED);
        __atomic_fetch_sub(&m->swapped, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&m->swap_ins, 1, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&m->lock);
        return host;
    }
    m->frames.free(m->frames.pool, mfn);
    pthread_mutex_unlock(&m->lock);
    return NULL;
}
