/* Lazy restore: guest frames that read as pages of a mapped snapshot until
 * first touched. A restored VM then starts at once, and only the memory it
 * uses is copied (and costs machine frames); the rest stays in the file,
 * in the host's page cache. The snapshot's checksums were verified when it
 * was opened (io/snap_file.c); its writer replaces files by rename, so the
 * mapped pages cannot change under the VM. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "vm/p2m.h"
#include "vm/p2m_internal.h"

void p2m_image_attach(struct p2m *m, const void *base, size_t len) {
    if (m->image.base) munmap((void *)m->image.base, m->image.len);
    m->image.base = base;
    m->image.len = len;
}

bool p2m_image_map(struct p2m *m, uint64_t frame, uint64_t off) {
    if (!m->image.base || frame >= m->nframes || off % PAGE_SIZE || off > m->image.len ||
        m->image.len - off < PAGE_SIZE)
        return false;
    pthread_mutex_lock(&m->lock);
    uint64_t e = m->map[frame];
    bool ok = entry_state(e) == P2M_ZERO || entry_state(e) == P2M_IMAGE;
    if (ok) {
        if (entry_state(e) == P2M_ZERO) __atomic_fetch_add(&m->imaged, 1, __ATOMIC_RELAXED);
        __atomic_store_n(&m->map[frame], (off / PAGE_SIZE) << STATE_BITS | P2M_IMAGE, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&m->lock);
    return ok;
}

bool p2m_image_alias(struct p2m *m, uint64_t frame, uint64_t source) {
    if (source >= m->nframes) return false;
    uint64_t e = __atomic_load_n(&m->map[source], __ATOMIC_ACQUIRE);
    return entry_state(e) == P2M_IMAGE && p2m_image_map(m, frame, entry_mfn(e) * PAGE_SIZE);
}

uint8_t *p2m_image_in_locked(struct p2m *m, uint64_t frame, uint64_t e) {
    uint64_t mfn;
    if (!m->frames.alloc(m->frames.pool, &mfn)) {
        m->exhausted = true;
        errno = ENOMEM;
        return NULL;
    }
    uint8_t *host = frame_host(&m->frames, mfn);
    memcpy(host, m->image.base + entry_mfn(e) * PAGE_SIZE, PAGE_SIZE);
    __atomic_store_n(&m->map[frame], mfn << STATE_BITS | P2M_PRIVATE, __ATOMIC_RELEASE);
    __atomic_fetch_add(&m->backed, 1, __ATOMIC_RELAXED);
    __atomic_fetch_sub(&m->imaged, 1, __ATOMIC_RELAXED);
    return host;
}
