/* Raw disk images on the host. */
#include "dev/disk_image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "io/host_file.h"

bool disk_image_open(struct disk_image *d, const char *path, bool readonly, char *err, size_t errlen) {
    *d = (struct disk_image){.fd = -1, .readonly = readonly};
    /* No size bound: an image is never read whole, and sparse ones are the
     * usual kind. */
    struct host_file_rules rules = {.write = !readonly, .block_device_ok = true};
    struct host_file f;
    if (!host_file_open(path, &rules, &f, err, errlen)) {
        int e = f.open_errno;
        if (!readonly && (e == EACCES || e == EROFS || e == EPERM))
            snprintf(err, errlen, "cannot open '%s' for writing: %s (use readonly=on?)", path, strerror(e));
        return false;
    }
    /* flock locks belong to the open file description, so two disks of
     * one process conflict just as two processes do. */
    if (flock(f.fd, (readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            snprintf(err, errlen, "'%s' is in use (locked by another VM or process)", path);
        else
            snprintf(err, errlen, "cannot lock '%s': %s", path, strerror(errno));
        close(f.fd);
        return false;
    }
    if (f.size % 512) {
        snprintf(err, errlen, "the size of '%s' (%llu bytes) is not a multiple of 512", path,
                 (unsigned long long)f.size);
        close(f.fd);
        return false;
    }
    d->fd = f.fd;
    d->size = f.size;
    return true;
}

void disk_image_close(struct disk_image *d) {
    if (d->fd >= 0) close(d->fd); /* drops the lock */
    d->fd = -1;
}

bool disk_image_read(const struct disk_image *d, uint64_t off, void *buf, size_t n) {
    uint8_t *p = buf;
    while (n) {
        ssize_t k = pread(d->fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false; /* 0: the image shrank under us */
        p += k, off += (uint64_t)k, n -= (size_t)k;
    }
    return true;
}

bool disk_image_write(const struct disk_image *d, uint64_t off, const void *buf, size_t n) {
    const uint8_t *p = buf;
    while (n) {
        ssize_t k = pwrite(d->fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        p += k, off += (uint64_t)k, n -= (size_t)k;
    }
    return true;
}

bool disk_image_flush(const struct disk_image *d) {
    while (fdatasync(d->fd) < 0)
        if (errno != EINTR) return false;
    return true;
}

static bool write_zeros(const struct disk_image *d, uint64_t off, uint64_t n, void *scratch, size_t len) {
    memset(scratch, 0, len);
    while (n) {
        size_t k = n < len ? (size_t)n : len;
        if (!disk_image_write(d, off, scratch, k)) return false;
        off += k, n -= k;
    }
    return true;
}

/* fallocate with mode; 1 done, 0 the host cannot, -1 failed. */
static int try_fallocate(const struct disk_image *d, int mode, uint64_t off, uint64_t n) {
    for (;;) {
        if (fallocate(d->fd, mode, (off_t)off, (off_t)n) == 0) return 1;
        if (errno == EINTR) continue;
        return (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL) ? 0 : -1;
    }
}

bool disk_image_discard(const struct disk_image *d, uint64_t off, uint64_t n, void *scratch, size_t scratch_len) {
    if (!n) return true;
    int r = try_fallocate(d, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, n);
    if (r) return r > 0;
    return write_zeros(d, off, n, scratch, scratch_len);
}

bool disk_image_write_zeroes(const struct disk_image *d, uint64_t off, uint64_t n, void *scratch,
                             size_t scratch_len) {
    if (!n) return true;
    int r = try_fallocate(d, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, n);
    if (r) return r > 0;
    return write_zeros(d, off, n, scratch, scratch_len);
}
