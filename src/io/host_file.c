/* Opening a host file named for a guest, without trusting what it is. */
#include "io/host_file.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

/* "kernel '/boot/Image'", or "'/disk.img'" without a what: every message
 * names the option and the path. */
#define NAME_FMT "%s%s'%s'"
#define NAME_ARGS(r, path) (r)->what ? (r)->what : "", (r)->what ? " " : "", (path)

static const char *kind_of(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a file";
}

static bool acceptable_type(mode_t mode, const struct host_file_rules *r) {
    return S_ISREG(mode) || (r->block_device_ok && S_ISBLK(mode));
}

static const char *accepted(const struct host_file_rules *r) {
    return r->block_device_ok ? "a regular file or block device" : "a regular file";
}

static bool check_type(const char *path, mode_t mode, const struct host_file_rules *r, char *err, size_t errlen) {
    if (acceptable_type(mode, r)) return true;
    snprintf(err, errlen, NAME_FMT " is not %s (it is %s)", NAME_ARGS(r, path), accepted(r), kind_of(mode));
    return false;
}

/* File systems whose files are the kernel's interfaces, not data: their
 * sizes mean nothing (a /proc file says 0 and reads on; /proc/kcore says
 * 128 TiB) and reading some has effects. */
static const char *pseudo_fs_name(long type) {
    switch ((unsigned long)type) {
    case PROC_SUPER_MAGIC: return "procfs";
    case SYSFS_MAGIC: return "sysfs";
    case DEBUGFS_MAGIC: return "debugfs";
    case TRACEFS_MAGIC: return "tracefs";
    case SECURITYFS_MAGIC: return "securityfs";
    case CGROUP_SUPER_MAGIC: return "cgroupfs";
    case CGROUP2_SUPER_MAGIC: return "cgroup2fs";
    case BPF_FS_MAGIC: return "bpffs";
    case EFIVARFS_MAGIC: return "efivarfs";
    }
    return NULL;
}

static bool check_fs(int fd, const char *path, const struct host_file_rules *r, char *err, size_t errlen) {
    struct statfs sf;
    if (fstatfs(fd, &sf) != 0) {
        snprintf(err, errlen, "cannot stat the file system of " NAME_FMT ": %s", NAME_ARGS(r, path), strerror(errno));
        return false;
    }
    const char *fs = pseudo_fs_name((long)sf.f_type);
    if (!fs) return true;
    snprintf(err, errlen, NAME_FMT " is not %s (it is on %s, a pseudo file system)", NAME_ARGS(r, path),
             accepted(r), fs);
    return false;
}

static bool get_size(int fd, const struct stat *st, const char *path, const struct host_file_rules *r,
                     uint64_t *size, char *err, size_t errlen) {
    off_t end = st->st_size;
    if (S_ISBLK(st->st_mode) && (end = lseek(fd, 0, SEEK_END)) < 0) { /* st_size is 0 for block devices */
        snprintf(err, errlen, "cannot get the size of " NAME_FMT ": %s", NAME_ARGS(r, path), strerror(errno));
        return false;
    }
    if (end <= 0) {
        snprintf(err, errlen, NAME_FMT " is empty", NAME_ARGS(r, path));
        return false;
    }
    if (r->max_size && (uint64_t)end > r->max_size) {
        snprintf(err, errlen, NAME_FMT " (%lld bytes) is larger than %s (%llu MiB)", NAME_ARGS(r, path),
                 (long long)end, r->max_name ? r->max_name : "allowed", (unsigned long long)(r->max_size >> 20));
        return false;
    }
    *size = (uint64_t)end;
    return true;
}

static bool open_nonblocking(const char *path, const struct host_file_rules *r, struct host_file *out, char *err,
                             size_t errlen) {
    /* O_NONBLOCK: should the path become a FIFO after the stat, open(2)
     * returns at once instead of waiting for a writer. */
    int flags = (r->write ? O_RDWR : O_RDONLY) | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
    out->fd = open(path, flags);
    if (out->fd >= 0) return true;
    out->open_errno = errno;
    if (errno == EISDIR)
        snprintf(err, errlen, NAME_FMT " is not %s (it is a directory)", NAME_ARGS(r, path), accepted(r));
    else
        snprintf(err, errlen, "cannot open " NAME_FMT ": %s", NAME_ARGS(r, path), strerror(errno));
    return false;
}

bool host_file_open(const char *path, const struct host_file_rules *r, struct host_file *out, char *err,
                    size_t errlen) {
    *out = (struct host_file){.fd = -1};
    struct stat st;
    if (stat(path, &st) != 0) {
        out->open_errno = errno;
        snprintf(err, errlen, "cannot open " NAME_FMT ": %s", NAME_ARGS(r, path), strerror(errno));
        return false;
    }
    if (!check_type(path, st.st_mode, r, err, errlen)) return false;
    if (!open_nonblocking(path, r, out, err, errlen)) return false;
    /* The path may have been replaced since the stat: what counts is what
     * was opened. */
    if (fstat(out->fd, &st) != 0) {
        snprintf(err, errlen, "cannot stat " NAME_FMT ": %s", NAME_ARGS(r, path), strerror(errno));
        goto fail;
    }
    if (!check_type(path, st.st_mode, r, err, errlen) || !check_fs(out->fd, path, r, err, errlen) ||
        !get_size(out->fd, &st, path, r, &out->size, err, errlen))
        goto fail;
    int fl = fcntl(out->fd, F_GETFL);
    if (fl < 0 || fcntl(out->fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        snprintf(err, errlen, "cannot set up " NAME_FMT ": %s", NAME_ARGS(r, path), strerror(errno));
        goto fail;
    }
    return true;
fail:
    close(out->fd);
    out->fd = -1;
    return false;
}
