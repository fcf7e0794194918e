/* The snapshot container: written crash-safely, read as if hostile. */
#include "io/snap_file.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "io/host_file.h"

static const char magic[8] = "RVSNAP\r\n";
static const uint8_t zeros[SNAP_PAGE_ALIGN];

#define FILE_BUF (1u << 20)
/* A file's data is handed to writeback every this many bytes, so that the
 * closing fsync waits for the tail only, not for the whole file. */
#define WRITEBACK_STEP (8u << 20)
#define STREAM_BUF (64u << 10) /* grows to hold a whole section */

uint64_t snap_checksum(const void *p, size_t n) { return XXH3_64bits(p, n); }

static void put32(uint8_t *p, uint32_t v) {
    v = htole32(v);
    memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v) {
    v = htole64(v);
    memcpy(p, &v, 8);
}

static uint32_t get32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return le32toh(v);
}

static uint64_t get64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return le64toh(v);
}

static void make_file_header(uint8_t h[SNAP_HEADER_SIZE], uint64_t length) {
    memcpy(h, magic, 8);
    put32(h + 8, SNAP_FORMAT_VERSION);
    put32(h + 12, 0);
    put64(h + 16, length);
    put64(h + 24, XXH3_64bits(h, 24));
}

/* Covers the header's tag, version, flags and length as well as the payload. */
static uint64_t section_checksum(const uint8_t *h, uint64_t payload_hash) {
    return XXH3_64bits_withSeed(h, 24, payload_hash);
}

/* 1..7 printable ASCII characters, then NULs: the tag goes into messages. */
static bool tag_ok(const uint8_t t[8]) {
    size_t n = 0;
    while (n < 8 && t[n] > 0x20 && t[n] < 0x7f) n++;
    if (n == 0 || n == 8) return false;
    for (size_t i = n; i < 8; i++)
        if (t[i]) return false;
    return true;
}

static bool same_tag(const char t[8], const char *tag) { return strlen(tag) < 8 && strncmp(t, tag, 8) == 0; }

/* --- Writing --- */

struct snap_writer {
    int fd;
    bool stream;         /* snap_writer_fd's: cannot seek, so each section is held whole */
    char *path, *tmp;    /* NULL for a stream; tmp NULL once renamed */
    uint8_t *buf;
    size_t cap, used;
    uint64_t buf_off;    /* file offset of buf[0] */
    uint64_t queued;     /* a file's bytes before this are in writeback */
    bool in_section;
    uint64_t sec_off;    /* the open section header's file offset */
    char tag[8];
    uint32_t version;
    XXH3_state_t *xx;    /* the open section's payload hash */
    char err[256];       /* the first failure: once set, every call fails */
    int direct_fd;       /* the file again, O_DIRECT (snap_writer_direct), or -1 */
    struct page_writer *pages; /* writes snap_write_pages' blobs meanwhile, or NULL */
};

/* The one blob of page data being written while the caller goes on (the
 * next section's frames gathered as this one goes to disk). One blob at a
 * time: a new one waits for the last, so a caller alternating two buffers
 * never reuses one still being written. Its halves go out side by side,
 * each from a thread of its own: a disk, or a virtualized one, takes two
 * requests at once faster than one after the other. */
#define PAGE_LANES 2

struct page_lane {
    struct page_writer *pw;
    pthread_t thread;
    const uint8_t *p; /* the part to write, NULL when idle */
    size_t n;
    uint64_t off;
    int fd;
    int plain_fd; /* the buffered fd, if fd is the O_DIRECT one; else -1 */
};

struct page_writer {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct page_lane lane[PAGE_LANES];
    unsigned started; /* lanes whose thread runs */
    int error;        /* errno of a failed write (0 when none); kept */
    bool quit;
};

#define WNAME_FMT "%s%s%s"
#define WNAME(w) (w)->path ? "snapshot '" : "the snapshot stream", (w)->path ? (w)->path : "", (w)->path ? "'" : ""

__attribute__((format(printf, 2, 3))) static bool fail(struct snap_writer *w, const char *fmt, ...) {
    if (!w->err[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->err, sizeof w->err, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* At off, or at the current position if off < 0 (all a pipe allows);
 * 0 or the errno of the failure. */
static int write_all(int fd, const uint8_t *p, size_t n, int64_t off) {
    while (n) {
        ssize_t k = off < 0 ? write(fd, p, n) : pwrite(fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return k ? errno : EIO;
        p += k;
        n -= (size_t)k;
        off += off < 0 ? 0 : k;
    }
    return 0;
}

static bool write_out(struct snap_writer *w, const void *buf, size_t n, int64_t off) {
    int e = write_all(w->fd, buf, n, off);
    return !e || fail(w, "cannot write " WNAME_FMT ": %s", WNAME(w), strerror(e));
}

static void *page_lane_main(void *arg) {
    struct page_lane *l = arg;
    struct page_writer *pw = l->pw;
    pthread_mutex_lock(&pw->lock);
    for (;;) {
        while (!l->p && !pw->quit) pthread_cond_wait(&pw->cond, &pw->lock);
        if (!l->p) break;
        const uint8_t *p = l->p;
        size_t n = l->n;
        uint64_t off = l->off;
        int fd = l->fd, plain_fd = l->plain_fd;
        pthread_mutex_unlock(&pw->lock);
        int e = write_all(fd, p, n, (int64_t)off);
        /* A file system may take O_DIRECT at open and refuse a request
         * (its own alignment rules): the bytes then go the usual way. */
        if (e == EINVAL && plain_fd >= 0) e = write_all(plain_fd, p, n, (int64_t)off);
        pthread_mutex_lock(&pw->lock);
        if (e && !pw->error) pw->error = e;
        l->p = NULL;
        pthread_cond_broadcast(&pw->cond);
    }
    pthread_mutex_unlock(&pw->lock);
    return NULL;
}

static bool lanes_busy(const struct page_writer *pw) {
    for (unsigned i = 0; i < PAGE_LANES; i++)
        if (pw->lane[i].p) return true;
    return false;
}

/* Waits until no blob is being written; false (with the message) if one failed. */
static bool pages_settle(struct snap_writer *w) {
    struct page_writer *pw = w->pages;
    if (!pw) return true;
    pthread_mutex_lock(&pw->lock);
    while (lanes_busy(pw)) pthread_cond_wait(&pw->cond, &pw->lock);
    int e = pw->error;
    pthread_mutex_unlock(&pw->lock);
    return !e || fail(w, "cannot write " WNAME_FMT ": %s", WNAME(w), strerror(e));
}

static void pages_free(struct page_writer *pw) {
    pthread_mutex_lock(&pw->lock);
    pw->quit = true;
    pthread_cond_broadcast(&pw->cond);
    pthread_mutex_unlock(&pw->lock);
    for (unsigned i = 0; i < pw->started; i++) pthread_join(pw->lane[i].thread, NULL); /* after the part in hand */
    pthread_cond_destroy(&pw->cond);
    pthread_mutex_destroy(&pw->lock);
    free(pw);
}

static void pages_stop(struct snap_writer *w) {
    if (w->pages) pages_free(w->pages);
    w->pages = NULL;
}

static struct page_writer *pages_start(void) {
    struct page_writer *pw = calloc(1, sizeof *pw);
    if (!pw) return NULL;
    pthread_mutex_init(&pw->lock, NULL);
    pthread_cond_init(&pw->cond, NULL);
    for (; pw->started < PAGE_LANES; pw->started++) {
        pw->lane[pw->started].pw = pw;
        if (pthread_create(&pw->lane[pw->started].thread, NULL, page_lane_main, &pw->lane[pw->started])) break;
    }
    if (pw->started == PAGE_LANES) return pw;
    pages_free(pw);
    return NULL;
}

/* Starts writeback of what was written so far (not waiting for it): a
 * hint only, so its failure is left for fsync to report. */
static void start_writeback(struct snap_writer *w) {
    if (w->stream || w->buf_off - w->queued < WRITEBACK_STEP) return;
    sync_file_range(w->fd, (off_t)w->queued, (off_t)(w->buf_off - w->queued), SYNC_FILE_RANGE_WRITE);
    w->queued = w->buf_off;
}

static bool flush(struct snap_writer *w) {
    if (!write_out(w, w->buf, w->used, w->stream ? -1 : (int64_t)w->buf_off)) return false;
    w->buf_off += w->used;
    w->used = 0;
    start_writeback(w);
    return true;
}

static bool grow(struct snap_writer *w, size_t n) {
    size_t cap = w->cap;
    while (cap - w->used < n) {
        if (cap > SIZE_MAX / 2) return fail(w, "section '%s' is too big to hold in memory", w->tag);
        cap *= 2;
    }
    uint8_t *b = realloc(w->buf, cap);
    if (!b) return fail(w, "out of memory holding section '%s' (%zu bytes)", w->tag, cap);
    w->buf = b;
    w->cap = cap;
    return true;
}

static bool put(struct snap_writer *w, const void *p, size_t n) {
    if (n > w->cap - w->used) {
        if (w->stream) {
            if (!grow(w, n)) return false;
        } else {
            if (!flush(w)) return false;
            if (n >= w->cap) { /* big blobs skip the copy */
                if (!write_out(w, p, n, (int64_t)w->buf_off)) return false;
                w->buf_off += n;
                start_writeback(w);
                return true;
            }
        }
    }
    memcpy(w->buf + w->used, p, n);
    w->used += n;
    return true;
}

static bool put_payload(struct snap_writer *w, const void *p, size_t n) {
    XXH3_64bits_update(w->xx, p, n);
    return put(w, p, n);
}

static bool usable(struct snap_writer *w, bool want_section) {
    if (w->err[0]) return false;
    if (want_section && !w->in_section) return fail(w, "snapshot data written outside a section");
    return true;
}

static void destroy(struct snap_writer *w) {
    pages_stop(w);
    if (w->direct_fd >= 0) close(w->direct_fd);
    if (!w->stream && w->fd >= 0) close(w->fd);
    if (w->tmp) unlink(w->tmp);
    free(w->tmp);
    free(w->path);
    free(w->buf);
    XXH3_freeState(w->xx);
    free(w);
}

static struct snap_writer *new_writer(int fd, bool stream, char *err, size_t errlen) {
    struct snap_writer *w = calloc(1, sizeof *w);
    if (w) {
        *w = (struct snap_writer){.fd = fd, .stream = stream, .cap = stream ? STREAM_BUF : FILE_BUF, .direct_fd = -1};
        w->buf = malloc(w->cap);
        w->xx = XXH3_createState();
        if (w->buf && w->xx) return w;
        destroy(w);
    }
    snprintf(err, errlen, "out of memory for a snapshot writer");
    return NULL;
}

/* A stream's length stays 0: it went out before the length was known. */
static struct snap_writer *start(struct snap_writer *w) {
    uint8_t h[SNAP_HEADER_SIZE];
    make_file_header(h, 0);
    put(w, h, sizeof h); /* fits in the empty buffer */
    return w;
}

struct snap_writer *snap_writer_create(const char *path, char *err, size_t errlen) {
    struct snap_writer *w = new_writer(-1, false, err, errlen);
    if (!w) return NULL;
    size_t n = strlen(path) + 48;
    w->path = strdup(path);
    char *tmp = malloc(n);
    errno = ENOMEM;
    /* A counter in the name, not in a global: a name left by a killed
     * writer with a recycled pid is skipped, never reused. */
    for (unsigned i = 0; w->path && tmp && i < 1000; i++) {
        snprintf(tmp, n, "%s.tmp.%ld.%u", path, (long)getpid(), i);
        w->fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (w->fd >= 0 || errno != EEXIST) break;
    }
    if (w->fd < 0) {
        snprintf(err, errlen, "cannot create a temporary file for snapshot '%s': %s", path, strerror(errno));
        free(tmp);
        destroy(w);
        return NULL;
    }
    w->tmp = tmp;
    return start(w);
}

struct snap_writer *snap_writer_fd(int fd, char *err, size_t errlen) {
    struct snap_writer *w = new_writer(fd, true, err, errlen);
    return w ? start(w) : NULL;
}

bool snap_section_begin(struct snap_writer *w, const char *tag, uint32_t version) {
    if (!usable(w, false)) return false;
    if (w->in_section) return fail(w, "snapshot section '%s' was not ended", w->tag);
    uint8_t t[8] = {0};
    size_t n = strnlen(tag, 8);
    memcpy(t, tag, n < 8 ? n : 7);
    if (n == 8 || !tag_ok(t)) return fail(w, "invalid snapshot section tag (1 to 7 printable ASCII characters)");
    w->sec_off = snap_writer_bytes(w);
    if (!put(w, zeros, SNAP_HEADER_SIZE)) return false; /* filled in by snap_section_end */
    memcpy(w->tag, t, 8);
    w->version = version;
    XXH3_64bits_reset(w->xx);
    w->in_section = true;
    return true;
}

bool snap_write(struct snap_writer *w, const void *data, size_t len) {
    if (!usable(w, true)) return false;
    return len == 0 || put_payload(w, data, len);
}

bool snap_write_u32(struct snap_writer *w, uint32_t v) {
    uint8_t b[4];
    put32(b, v);
    return snap_write(w, b, sizeof b);
}

bool snap_write_u64(struct snap_writer *w, uint64_t v) {
    uint8_t b[8];
    put64(b, v);
    return snap_write(w, b, sizeof b);
}

bool snap_writer_settle(struct snap_writer *w) { return pages_settle(w) && !w->err[0]; }

bool snap_writer_direct(struct snap_writer *w) {
    if (w->stream || !w->tmp || w->direct_fd >= 0) return w->direct_fd >= 0;
    w->direct_fd = open(w->tmp, O_WRONLY | O_DIRECT | O_CLOEXEC);
    return w->direct_fd >= 0;
}

bool snap_write_pages(struct snap_writer *w, const void *data, size_t len) {
    if (!usable(w, true)) return false;
    uint64_t at = snap_writer_bytes(w);
    if (w->stream || len < w->cap || len % SNAP_PAGE_ALIGN || at % SNAP_PAGE_ALIGN) return put_payload(w, data, len);
    if (!pages_settle(w) || !flush(w)) return false; /* the slot is free, what precedes is out */
    if (!w->pages && !(w->pages = pages_start())) return put_payload(w, data, len);
    XXH3_64bits_update(w->xx, data, len);
    /* O_DIRECT wants the memory aligned too (to the device's block size;
     * a page covers every device this runs on). */
    bool direct = w->direct_fd >= 0 && (uintptr_t)data % SNAP_PAGE_ALIGN == 0;
    struct page_writer *pw = w->pages;
    const uint8_t *p = data;
    size_t part = len / PAGE_LANES / SNAP_PAGE_ALIGN * SNAP_PAGE_ALIGN;
    pthread_mutex_lock(&pw->lock);
    for (unsigned i = 0; i < PAGE_LANES; i++) {
        struct page_lane *l = &pw->lane[i];
        size_t off = i * part;
        l->n = i == PAGE_LANES - 1 ? len - off : part;
        l->p = l->n ? p + off : NULL;
        l->off = at + off;
        l->fd = direct ? w->direct_fd : w->fd;
        l->plain_fd = direct ? w->fd : -1;
    }
    pthread_cond_broadcast(&pw->cond);
    pthread_mutex_unlock(&pw->lock);
    w->buf_off += len; /* its writeback starts once it is written: at the next flush */
    return true;
}

bool snap_write_align(struct snap_writer *w) {
    if (!usable(w, true)) return false;
    size_t pad = (size_t)(-snap_writer_bytes(w) % SNAP_PAGE_ALIGN);
    return pad == 0 || put_payload(w, zeros, pad);
}

bool snap_section_end(struct snap_writer *w) {
    if (!usable(w, true)) return false;
    uint64_t len = snap_writer_bytes(w) - w->sec_off - SNAP_HEADER_SIZE;
    uint8_t h[SNAP_HEADER_SIZE];
    memcpy(h, w->tag, 8);
    put32(h + 8, w->version);
    put32(h + 12, 0);
    put64(h + 16, len);
    put64(h + 24, section_checksum(h, XXH3_64bits_digest(w->xx)));
    w->in_section = false;
    /* A header put since the last flush is still in the buffer whole. */
    if (w->sec_off >= w->buf_off)
        memcpy(w->buf + (w->sec_off - w->buf_off), h, sizeof h);
    else if (!write_out(w, h, sizeof h, (int64_t)w->sec_off))
        return false;
    if (!put(w, zeros, (size_t)(-len % 8))) return false;
    return !w->stream || flush(w);
}

static bool sync_dir(struct snap_writer *w) {
    char *dir = strdup(w->path);
    if (!dir) return fail(w, "out of memory");
    int fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    bool ok = fd >= 0 && fsync(fd) == 0;
    if (!ok) fail(w, "snapshot '%s' is written but its directory could not be synced: %s", w->path, strerror(errno));
    if (fd >= 0) close(fd);
    free(dir);
    return ok;
}

static bool finish_file(struct snap_writer *w) {
    uint8_t h[SNAP_HEADER_SIZE];
    make_file_header(h, w->buf_off);
    if (!write_out(w, h, sizeof h, 0)) return false;
    if (fsync(w->fd) != 0) return fail(w, "cannot sync snapshot '%s': %s", w->path, strerror(errno));
    int rc = close(w->fd); /* NFS may report write errors only here */
    w->fd = -1;
    if (rc != 0) return fail(w, "cannot write snapshot '%s': %s", w->path, strerror(errno));
    if (rename(w->tmp, w->path) != 0)
        return fail(w, "cannot rename '%s' to '%s': %s", w->tmp, w->path, strerror(errno));
    free(w->tmp);
    w->tmp = NULL; /* nothing to remove any more */
    return sync_dir(w);
}

bool snap_writer_commit(struct snap_writer *w, char *err, size_t errlen) {
    bool ok = pages_settle(w) && snap_section_begin(w, "end", 0) && snap_section_end(w) && flush(w) && (w->stream || finish_file(w));
    if (!ok) snprintf(err, errlen, "%s", w->err);
    destroy(w);
    return ok;
}

void snap_writer_abort(struct snap_writer *w) {
    if (w) destroy(w);
}

uint64_t snap_writer_bytes(const struct snap_writer *w) { return w->buf_off + w->used; }

const char *snap_writer_error(const struct snap_writer *w) { return w->err[0] ? w->err : NULL; }

/* --- Reading --- */

struct resume {
    char tag[8];
    size_t next; /* the section snap_reader_find looks at first for tag */
};

struct snap_reader {
    const uint8_t *base;
    size_t size;
    int fd;                    /* -1 for a memory reader, which maps nothing */
    struct snap_section *secs; /* without the end section */
    size_t n, cap;
    struct resume *resume;     /* one per tag the caller looked for: a few */
    size_t nresume;
};

/* Passed as refuse's path by the stream reader. */
static const char stream_path[] = "";

/* A message naming the file ("snapshot '/x'"), "snapshot stream" or
 * "snapshot image"; fmt starts with its separator. */
__attribute__((format(printf, 4, 5))) static bool refuse(char *err, size_t errlen, const char *path,
                                                         const char *fmt, ...) {
    int n = path == stream_path ? snprintf(err, errlen, "snapshot stream")
            : path              ? snprintf(err, errlen, "snapshot '%s'", path)
                                : snprintf(err, errlen, "snapshot image");
    if (n >= 0 && (size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* All but the length, which only a whole image can be checked against. */
static bool check_header_fields(const uint8_t *b, const char *path, char *err, size_t errlen) {
    if (memcmp(b, magic, sizeof magic) != 0) return refuse(err, errlen, path, " is not an rvisor snapshot");
    /* Before the checksum: a newer format may protect its header otherwise. */
    uint32_t version = get32(b + 8);
    if (version > SNAP_FORMAT_VERSION)
        return refuse(err, errlen, path, " was made by a newer rvisor: format version %u, this one reads up to %u",
                      version, SNAP_FORMAT_VERSION);
    if (get64(b + 24) != XXH3_64bits(b, 24)) return refuse(err, errlen, path, " is corrupt (header checksum)");
    if (version == 0) return refuse(err, errlen, path, " has an invalid format version 0");
    if (get32(b + 12)) return refuse(err, errlen, path, " has unknown flags %#x", get32(b + 12));
    return true;
}

static bool check_header(const uint8_t *b, size_t size, const char *path, char *err, size_t errlen) {
    if (size < SNAP_HEADER_SIZE)
        return refuse(err, errlen, path, " is too short to be an rvisor snapshot (%zu bytes)", size);
    if (!check_header_fields(b, path, err, errlen)) return false;
    uint64_t len = get64(b + 16);
    if (len > size)
        return refuse(err, errlen, path, " is truncated (%zu of %llu bytes)", size, (unsigned long long)len);
    if (len && len < size)
        return refuse(err, errlen, path, " has trailing bytes (%zu bytes, the header says %llu)", size,
                      (unsigned long long)len);
    return true;
}

static bool all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

static bool add_section(struct snap_reader *r, const struct snap_section *s) {
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        struct snap_section *a = realloc(r->secs, cap * sizeof *a);
        if (!a) return false;
        r->secs = a;
        r->cap = cap;
    }
    r->secs[r->n++] = *s;
    return true;
}

/* Sections at least this long have their checksums verified after the
 * walk, two at a time (verify_big); smaller ones as they are met. */
#define BIG_SECTION (1u << 20)

static bool checksum_ok(const struct snap_section *s) {
    const uint8_t *h = s->data - SNAP_HEADER_SIZE;
    return section_checksum(h, XXH3_64bits(s->data, s->len)) == get64(h + 24) &&
           all_zero(s->data + s->len, (size_t)(-s->len % 8));
}

/* Checks the section header at off and what it covers (but the checksum of
 * a big one); the comparisons are written so that no sum of untrusted
 * numbers can wrap. */
static bool check_section(const struct snap_reader *r, uint64_t off, struct snap_section *s, const char *path,
                          char *err, size_t errlen) {
    if (r->size - off < SNAP_HEADER_SIZE) return refuse(err, errlen, path, " is truncated (no end section)");
    const uint8_t *h = r->base + off;
    if (!tag_ok(h))
        return refuse(err, errlen, path, " is corrupt (a bad section tag at offset %llu)", (unsigned long long)off);
    *s = (struct snap_section){.version = get32(h + 8), .data = h + SNAP_HEADER_SIZE, .len = get64(h + 16),
                               .file_offset = off + SNAP_HEADER_SIZE};
    memcpy(s->tag, h, 8);
    uint64_t room = r->size - s->file_offset, pad = -s->len % 8;
    if (get32(h + 12)) return refuse(err, errlen, path, ": section '%s' has unknown flags", s->tag);
    if (s->len > room || pad > room - s->len)
        return refuse(err, errlen, path, ": section '%s' is truncated (%llu bytes at offset %llu)", s->tag,
                      (unsigned long long)s->len, (unsigned long long)s->file_offset);
    if (s->len < BIG_SECTION && !checksum_ok(s))
        return refuse(err, errlen, path, ": section '%s' is corrupt (checksum)", s->tag);
    return true;
}

/* The big sections' checksums, by the caller and one more thread taking
 * sections in turn (hashing a restored guest's memory is most of a
 * restore's time to its first instruction). */
struct verify_work {
    const struct snap_reader *r;
    size_t next;     /* the next section to take (atomic) */
    size_t bad;      /* the first corrupt one found (atomic min), r->n if none */
};

static void *verify_some(void *arg) {
    struct verify_work *v = arg;
    for (;;) {
        size_t i = __atomic_fetch_add(&v->next, 1, __ATOMIC_RELAXED);
        if (i >= v->r->n) return NULL;
        const struct snap_section *s = &v->r->secs[i];
        if (s->len < BIG_SECTION || checksum_ok(s)) continue;
        size_t seen = __atomic_load_n(&v->bad, __ATOMIC_RELAXED);
        while (i < seen && !__atomic_compare_exchange_n(&v->bad, &seen, i, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        }
    }
}

static bool verify_big(const struct snap_reader *r, const char *path, char *err, size_t errlen) {
    struct verify_work v = {.r = r, .next = 0, .bad = r->n};
    uint64_t big = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->secs[i].len >= BIG_SECTION) big += r->secs[i].len;
    pthread_t t;
    bool helper = big >= 8 * (uint64_t)BIG_SECTION && pthread_create(&t, NULL, verify_some, &v) == 0;
    verify_some(&v);
    if (helper) pthread_join(t, NULL);
    if (v.bad == r->n) return true;
    return refuse(err, errlen, path, ": section '%s' is corrupt (checksum)", r->secs[v.bad].tag);
}

static bool check_sections(struct snap_reader *r, const char *path, char *err, size_t errlen) {
    struct snap_section s;
    for (uint64_t off = SNAP_HEADER_SIZE;; off = s.file_offset + s.len + (-s.len % 8)) {
        if (!check_section(r, off, &s, path, err, errlen)) return false;
        if (strcmp(s.tag, "end") == 0) {
            if (s.len) return refuse(err, errlen, path, " is corrupt (the end section has a payload)");
            if (s.file_offset != r->size) return refuse(err, errlen, path, " has data after its end section");
            return verify_big(r, path, err, errlen);
        }
        if (r->n == SNAP_MAX_SECTIONS)
            return refuse(err, errlen, path, " has more than %u sections", SNAP_MAX_SECTIONS);
        if (!add_section(r, &s)) return refuse(err, errlen, path, ": out of memory for its sections");
    }
}

static struct snap_reader *parse(const uint8_t *base, size_t size, int fd, const char *path, char *err,
                                 size_t errlen) {
    struct snap_reader *r = calloc(1, sizeof *r);
    if (!r) {
        refuse(err, errlen, path, ": out of memory");
        return NULL;
    }
    *r = (struct snap_reader){.base = base, .size = size, .fd = -1};
    if (check_header(base, size, path, err, errlen) && check_sections(r, path, err, errlen)) {
        r->fd = fd;
        return r;
    }
    snap_reader_close(r); /* fd -1: the caller unmaps */
    return NULL;
}

/* MAP_PRIVATE does not protect against the file being truncated under the
 * mapping (SIGBUS); snapshot files are the monitor's own (mode 0600). */
struct snap_reader *snap_reader_open(const char *path, uint64_t max_size, char *err, size_t errlen) {
    struct host_file f;
    struct host_file_rules rules = {.what = "snapshot"};
    if (!host_file_open(path, &rules, &f, err, errlen)) return NULL;
    struct snap_reader *r = NULL;
    void *m = MAP_FAILED;
    if ((max_size && f.size > max_size) || f.size > SIZE_MAX)
        snprintf(err, errlen, "snapshot '%s' is larger than allowed (%llu bytes, at most %llu)", path,
                 (unsigned long long)f.size, (unsigned long long)(max_size ? max_size : SIZE_MAX));
    else if ((m = mmap(NULL, f.size, PROT_READ, MAP_PRIVATE, f.fd, 0)) == MAP_FAILED)
        snprintf(err, errlen, "cannot map snapshot '%s': %s", path, strerror(errno));
    else
        r = parse(m, f.size, f.fd, path, err, errlen);
    if (!r && m != MAP_FAILED) munmap(m, f.size);
    if (!r) close(f.fd);
    return r;
}

struct snap_reader *snap_reader_mem(const void *buf, size_t len, char *err, size_t errlen) {
    return parse(buf, len, -1, NULL, err, errlen);
}

void snap_reader_close(struct snap_reader *r) {
    if (!r) return;
    if (r->fd >= 0) {
        munmap((void *)r->base, r->size);
        close(r->fd);
    }
    free(r->secs);
    free(r->resume);
    free(r);
}

static struct resume *resume_of(struct snap_reader *r, const char *tag) {
    for (size_t i = 0; i < r->nresume; i++)
        if (same_tag(r->resume[i].tag, tag)) return &r->resume[i];
    struct resume *a = realloc(r->resume, (r->nresume + 1) * sizeof *a);
    if (!a) return NULL;
    r->resume = a;
    a = &a[r->nresume++];
    *a = (struct resume){0};
    strncpy(a->tag, tag, sizeof a->tag - 1);
    return a;
}

bool snap_reader_find(struct snap_reader *r, const char *tag, struct snap_section *out) {
    struct resume *at = strlen(tag) < 8 ? resume_of(r, tag) : NULL;
    if (!at) return false;
    for (size_t i = at->next; i < r->n; i++) {
        if (!same_tag(r->secs[i].tag, tag)) continue;
        at->next = i + 1;
        *out = r->secs[i];
        return true;
    }
    at->next = r->n;
    return false;
}

void snap_reader_rewind(struct snap_reader *r) { r->nresume = 0; }

size_t snap_reader_count(const struct snap_reader *r, const char *tag) {
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++) n += same_tag(r->secs[i].tag, tag);
    return n;
}

int snap_reader_fd(const struct snap_reader *r) { return r->fd; }

void snap_cursor_init(struct snap_cursor *c, const struct snap_section *s) {
    *c = (struct snap_cursor){.p = s->data, .left = s->len, .file_offset = s->file_offset};
}

static const uint8_t *take(struct snap_cursor *c, uint64_t skip, uint64_t n) {
    if (c->bad || skip > c->left || n > c->left - skip) {
        c->bad = true;
        return NULL;
    }
    const uint8_t *p = c->p + skip;
    c->p = p + n;
    c->left -= skip + n;
    c->pos += skip + n;
    return p;
}

bool snap_get_u32(struct snap_cursor *c, uint32_t *out) {
    const uint8_t *p = take(c, 0, 4);
    *out = p ? get32(p) : 0;
    return p;
}

bool snap_get_u64(struct snap_cursor *c, uint64_t *out) {
    const uint8_t *p = take(c, 0, 8);
    *out = p ? get64(p) : 0;
    return p;
}

bool snap_get_bytes(struct snap_cursor *c, void *out, size_t n) {
    const uint8_t *p = take(c, 0, n);
    if (p && n)
        memcpy(out, p, n);
    else if (n)
        memset(out, 0, n);
    return p;
}

const uint8_t *snap_get_aligned(struct snap_cursor *c, uint64_t n) {
    return take(c, -(c->file_offset + c->pos) % SNAP_PAGE_ALIGN, n);
}

/* --- Reading a stream --- */

/* Reads are exact (no read-ahead), so that nothing past the end section is
 * taken from fd: a header, then a payload with its padding. */
struct snap_stream {
    int fd;
    int timeout_ms;       /* <= 0: none */
    uint64_t max_section; /* 0: none */
    uint64_t length;      /* the header's length field; 0: unknown */
    uint64_t off;         /* bytes read: the stream offset of the next byte */
    uint64_t nsections;   /* returned so far (the end section not counted) */
    uint8_t *buf;         /* SNAP_PAGE_ALIGN aligned; a payload at offset o sits at buf + o % SNAP_PAGE_ALIGN */
    size_t cap;
    int state;            /* 1 reading, 0 complete, -1 failed (err says why) */
    char what[24];        /* what is being read, for messages */
    char err[256];
};

__attribute__((format(printf, 2, 3))) static bool stream_fail(struct snap_stream *s, const char *fmt, ...) {
    int n = snprintf(s->err, sizeof s->err, "snapshot stream");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err + n, sizeof s->err - (size_t)n, fmt, ap);
    va_end(ap);
    s->state = -1;
    return false;
}

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Until fd is readable, closed or in error (the read then tells which), for
 * at most the timeout in all, signals or not; without one if there is none. */
static bool wait_readable(struct snap_stream *s) {
    int64_t deadline = s->timeout_ms > 0 ? now_ns() + (int64_t)s->timeout_ms * 1000000 : 0;
    for (;;) {
        int ms = -1;
        if (s->timeout_ms > 0) {
            int64_t left = deadline - now_ns();
            if (left <= 0)
                return stream_fail(s, " timed out: no data for %d ms at offset %llu, in %s", s->timeout_ms,
                                   (unsigned long long)s->off, s->what);
            ms = (int)((left + 999999) / 1000000);
        }
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        int r = poll(&p, 1, ms);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 || (r > 0 && (p.revents & POLLNVAL)))
            return stream_fail(s, ": cannot wait for data at offset %llu: %s", (unsigned long long)s->off,
                               strerror(r < 0 ? errno : EBADF));
        if (r > 0) return true;
    }
}

/* Exactly n bytes, however the peer splits them. */
static bool read_in(struct snap_stream *s, uint8_t *p, size_t n) {
    while (n) {
        if (s->timeout_ms > 0 && !wait_readable(s)) return false;
        ssize_t k = read(s->fd, p, n < (1u << 30) ? n : (1u << 30));
        if (k > 0) {
            p += k;
            n -= (size_t)k;
            s->off += (uint64_t)k;
        } else if (k == 0) {
            return stream_fail(s, " is truncated: the connection closed at offset %llu, in %s",
                               (unsigned long long)s->off, s->what);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) { /* a non-blocking fd */
            if (s->timeout_ms <= 0 && !wait_readable(s)) return false;
        } else if (errno != EINTR) {
            return stream_fail(s, ": cannot read at offset %llu, in %s: %s", (unsigned long long)s->off, s->what,
                               strerror(errno));
        }
    }
    return true;
}

/* A buffer of at least need bytes; what it held is not kept. */
static bool stream_room(struct snap_stream *s, size_t need) {
    if (need <= s->cap) return true;
    size_t cap = (need + STREAM_BUF - 1) / STREAM_BUF * STREAM_BUF;
    void *b;
    if (posix_memalign(&b, SNAP_PAGE_ALIGN, cap) != 0) return false;
    free(s->buf);
    s->buf = b;
    s->cap = cap;
    return true;
}

void snap_stream_close(struct snap_stream *s) {
    if (!s) return;
    free(s->buf);
    free(s);
}

struct snap_stream *snap_stream_open(int fd, uint64_t max_section, int timeout_ms, char *err, size_t errlen) {
    struct snap_stream *s = calloc(1, sizeof *s);
    if (!s || !stream_room(s, STREAM_BUF)) {
        snprintf(err, errlen, "out of memory for a snapshot stream reader");
        snap_stream_close(s);
        return NULL;
    }
    s->fd = fd;
    s->timeout_ms = timeout_ms;
    s->max_section = max_section;
    s->state = 1;
    snprintf(s->what, sizeof s->what, "the stream header");
    uint8_t h[SNAP_HEADER_SIZE];
    if (!read_in(s, h, sizeof h) || !check_header_fields(h, stream_path, s->err, sizeof s->err)) {
        snprintf(err, errlen, "%s", s->err);
        snap_stream_close(s);
        return NULL;
    }
    s->length = get64(h + 16); /* a file's bytes sent down a pipe: its end must be there */
    return s;
}

/* Like check_section, on a header read before its payload is; every
 * comparison is written so that no sum of untrusted numbers can wrap.
 * False on failure; at the end section, true with s->state 0. */
static bool stream_section(struct snap_stream *s, struct snap_section *out) {
    uint64_t start = s->off;
    if (s->length && (start > s->length || s->length - start < SNAP_HEADER_SIZE))
        return stream_fail(s, " is corrupt (no end section within the %llu bytes its header says)",
                           (unsigned long long)s->length);
    snprintf(s->what, sizeof s->what, "a section header");
    uint8_t h[SNAP_HEADER_SIZE];
    if (!read_in(s, h, sizeof h)) return false;
    if (!tag_ok(h))
        return stream_fail(s, " is corrupt (a bad section tag at offset %llu)", (unsigned long long)start);
    char tag[8];
    memcpy(tag, h, 8);
    snprintf(s->what, sizeof s->what, "section '%s'", tag);
    uint64_t len = get64(h + 16), pad = -len % 8;
    bool end = strcmp(tag, "end") == 0;
    if (get32(h + 12)) return stream_fail(s, ": section '%s' has unknown flags", tag);
    if (end && len) return stream_fail(s, " is corrupt (the end section has a payload)");
    if (!end && s->nsections == SNAP_STREAM_MAX_SECTIONS)
        return stream_fail(s, " has more than %u sections", SNAP_STREAM_MAX_SECTIONS);
    if ((s->max_section && len > s->max_section) || len > SIZE_MAX / 2)
        return stream_fail(s, ": section '%s' is too large (%llu bytes, at most %llu)", tag, (unsigned long long)len,
                           (unsigned long long)(s->max_section ? s->max_section : SIZE_MAX / 2));
    if (s->length && (len > s->length - s->off || pad > s->length - s->off - len))
        return stream_fail(s, " is corrupt (section '%s' of %llu bytes at offset %llu runs past the %llu bytes"
                              " its header says)",
                           tag, (unsigned long long)len, (unsigned long long)s->off, (unsigned long long)s->length);
    uint64_t at = s->off;
    size_t lead = (size_t)(at % SNAP_PAGE_ALIGN);
    if (!stream_room(s, lead + (size_t)(len + pad)))
        return stream_fail(s, ": out of memory for section '%s' (%llu bytes)", tag, (unsigned long long)len);
    uint8_t *data = s->buf + lead;
    if (!read_in(s, data, (size_t)(len + pad))) return false;
    if (section_checksum(h, XXH3_64bits(data, (size_t)len)) != get64(h + 24) || !all_zero(data + len, (size_t)pad))
        return stream_fail(s, ": section '%s' is corrupt (checksum)", tag);
    if (end) {
        if (s->length && s->off != s->length)
            return stream_fail(s, " is corrupt (it ends at offset %llu, its header says %llu)",
                               (unsigned long long)s->off, (unsigned long long)s->length);
        s->state = 0;
        return true;
    }
    s->nsections++;
    *out = (struct snap_section){.version = get32(h + 8), .data = data, .len = len, .file_offset = at};
    memcpy(out->tag, tag, 8);
    return true;
}

int snap_stream_next(struct snap_stream *s, struct snap_section *out, char *err, size_t errlen) {
    if (s->state == 1 && stream_section(s, out) && s->state == 1) return 1;
    if (s->state < 0) snprintf(err, errlen, "%s", s->err);
    *out = (struct snap_section){0};
    return s->state;
}
