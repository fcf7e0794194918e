/* A raw disk image on the host: a regular file (or a block device) opened
 * for a virtual disk, locked against a second writer, and the host I/O a
 * disk needs. Offsets and lengths are bytes; callers check ranges against
 * the size. All calls retry on EINTR and on short transfers. */
#ifndef RVISOR_DISK_IMAGE_H
#define RVISOR_DISK_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct disk_image {
    int fd;
    bool readonly;
    uint64_t size; /* bytes, a multiple of 512 */
};

/* Opens path through host_file_open (never blocking; O_RDONLY when
 * readonly) and takes a non-blocking flock: LOCK_SH when readonly, LOCK_EX
 * otherwise. Refuses anything but a regular file or block device, files on
 * pseudo file systems, empty images and sizes that are not a multiple of
 * 512. false with a message for the user in err. */
bool disk_image_open(struct disk_image *d, const char *path, bool readonly, char *err, size_t errlen);
void disk_image_close(struct disk_image *d);

bool disk_image_read(const struct disk_image *d, uint64_t off, void *buf, size_t n);
bool disk_image_write(const struct disk_image *d, uint64_t off, const void *buf, size_t n);
bool disk_image_flush(const struct disk_image *d);
/* Deallocates the range; reads give zeros afterwards. Falls back to
 * writing zeros (through scratch, scratch_len bytes) where the host
 * cannot punch holes. */
bool disk_image_discard(const struct disk_image *d, uint64_t off, uint64_t n, void *scratch, size_t scratch_len);
/* Makes the range read as zeros, keeping its space allocated. */
bool disk_image_write_zeroes(const struct disk_image *d, uint64_t off, uint64_t n, void *scratch,
                             size_t scratch_len);

#endif
