/* Opening a host file that a user named for a guest (kernel, initrd,
 * firmware, disk image). Such a path may be anything: a FIFO that blocks
 * open(2) or read(2) forever, /dev/zero that never ends, a directory, a
 * /proc file whose size says 0 but which reads on, or a sparse file of
 * terabytes. Every such path goes through host_file_open, so that none of
 * them can block the monitor or make it read without bound. */
#ifndef RVISOR_HOST_FILE_H
#define RVISOR_HOST_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the caller accepts. */
struct host_file_rules {
    const char *what;      /* names the file in messages ("kernel"), or NULL for the path alone */
    bool write;            /* open read-write (else read-only) */
    bool block_device_ok;  /* a block device is acceptable as well as a regular file */
    uint64_t max_size;     /* bytes; 0: no bound */
    const char *max_name;  /* what max_size is, for messages ("guest memory") */
};

struct host_file {
    int fd;          /* blocking, O_CLOEXEC */
    uint64_t size;   /* bytes: the regular file's size or the block device's */
    int open_errno;  /* set when open(2) itself failed, for callers' hints; else 0 */
};

/* Opens path without ever blocking and refuses, with a message naming
 * r->what and the path in err: anything but a regular file (or a block
 * device if r->block_device_ok), files on pseudo file systems (/proc, /sys,
 * debugfs...), empty files, and files larger than r->max_size. Devices and
 * FIFOs are refused before they are opened (opening some has effects). On
 * success out->fd is open and the caller closes it. */
bool host_file_open(const char *path, const struct host_file_rules *r, struct host_file *out, char *err,
                    size_t errlen);

#endif
