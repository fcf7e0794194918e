/* The snapshot container: a versioned, sectioned, checksummed file (or
 * stream) that VM snapshots and, later, live migration are written in. It
 * knows nothing of what the sections hold.
 *
 * Layout, integers little-endian: a 32-byte file header {"RVSNAP\r\n", u32
 * format version, u32 flags = 0, u64 file length, u64 XXH3 of the 24 bytes
 * before}, then sections, each a 32-byte header {char tag[8] NUL padded,
 * u32 owner's version, u32 flags = 0, u64 payload length, u64 checksum}, the
 * payload and zeros up to the next multiple of 8; a section "end" with no
 * payload closes the file. A section's checksum is
 * XXH3_64bits_withSeed(its header's first 24 bytes, seed: XXH3_64bits(payload)),
 * so that a damaged tag, version or length is caught as well as damaged data.
 * A stream written by snap_writer_fd has 0 as its file length (unknown when
 * the header went out); its end section must then end it exactly. */
#ifndef RVISOR_SNAP_FILE_H
#define RVISOR_SNAP_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAP_FORMAT_VERSION 1u
#define SNAP_HEADER_SIZE 32u  /* the file header's and each section header's */
#define SNAP_PAGE_ALIGN 4096u /* snap_write_align's boundary */
#define SNAP_MAX_SECTIONS 65536u
/* snap_stream_next's bound, larger: live migration sends guest memory in
 * many sections, round after round of dirty pages (a 64 GiB guest in 1 MiB
 * sections is 65536 for its first round alone). A stream reader holds one
 * section at a time, so the bound costs no memory; it keeps a peer from
 * feeding the reader forever (with max_section, it bounds a stream's bytes). */
#define SNAP_STREAM_MAX_SECTIONS (1u << 20)

/* The XXH3 of n bytes, for callers' own checksums (memory chunks). */
uint64_t snap_checksum(const void *p, size_t n);

struct snap_writer;

/* Starts writing path crash-safely: the data goes to a new file
 * "<path>.tmp.<pid>.<n>" (mode 0600) in the same directory, and path is
 * untouched until snap_writer_commit. */
struct snap_writer *snap_writer_create(const char *path, char *err, size_t errlen);
/* Writes to an open fd (a pipe or socket: no seek, no rename, no fsync) that
 * the caller keeps and closes. Each section is held in memory until its end,
 * so big data must go in many sections. There is no flush call: every
 * snap_section_end writes all that is buffered (the file header goes with
 * the first section) to fd before it returns, so the peer can read each
 * section as soon as it is ended, and snap_writer_commit writes the end
 * section. */
struct snap_writer *snap_writer_fd(int fd, char *err, size_t errlen);

/* Opens a section; tag is 1..7 printable ASCII characters. The writing calls
 * below fail once any call failed (see snap_writer_error). */
bool snap_section_begin(struct snap_writer *w, const char *tag, uint32_t version);
/* Appends to the open section's payload, through a buffer: small writes are cheap. */
bool snap_write(struct snap_writer *w, const void *data, size_t len);
/* Append v little-endian. */
bool snap_write_u32(struct snap_writer *w, uint32_t v);
bool snap_write_u64(struct snap_writer *w, uint64_t v);
/* Pads the payload with zeros so that the next byte lands at a file offset
 * that is a multiple of SNAP_PAGE_ALIGN (page data a restore can mmap). */
bool snap_write_align(struct snap_writer *w);
/* Appends page data (len a multiple of SNAP_PAGE_ALIGN, at an aligned
 * offset: after snap_write_align) to a file, which may still be writing it
 * when this returns: data must stay as it is until the next
 * snap_write_pages call returns or the writer is committed or aborted (a
 * caller gathering pages alternates two buffers). Otherwise as snap_write.
 * A write that fails is reported by a later call. */
bool snap_write_pages(struct snap_writer *w, const void *data, size_t len);
/* Waits until what snap_write_pages handed over is written (its memory
 * may then be reused); false if any call failed. */
bool snap_writer_settle(struct snap_writer *w);
/* From now on snap_write_pages of page-aligned memory bypasses the host's
 * page cache (O_DIRECT) — like QEMU's direct-io for migration to a file: a
 * big snapshot neither grows nor evicts the cache, and where new cache
 * pages cost more than the device (a virtualized host) it is faster; a
 * restore then reads the file from the device. False (and nothing
 * changes) for a stream or a file system without O_DIRECT (tmpfs). */
bool snap_writer_direct(struct snap_writer *w);
/* Closes the open section, filling in its length and checksum. */
bool snap_section_end(struct snap_writer *w);
/* Writes the end section and, for a file, the header's length, fsyncs it,
 * renames it over path and fsyncs the directory. Frees w either way; on
 * failure the temporary file is removed and path is as it was (unless only
 * the directory's fsync failed, after the rename, as the message says). */
bool snap_writer_commit(struct snap_writer *w, char *err, size_t errlen);
/* Gives up: removes the temporary file, frees w. */
void snap_writer_abort(struct snap_writer *w);
/* Bytes written so far (the file's size after commit is this plus an end
 * section's SNAP_HEADER_SIZE once no section is open). */
uint64_t snap_writer_bytes(const struct snap_writer *w);
/* The first failure's message (strerror text for I/O errors), or NULL. */
const char *snap_writer_error(const struct snap_writer *w);

struct snap_reader;

/* Opens and maps path read-only after checking it all: a regular file of at
 * most max_size bytes (0: no bound), the header, every section's bounds, tag
 * and checksum, and the end section; refuses with a one-line message. */
struct snap_reader *snap_reader_open(const char *path, uint64_t max_size, char *err, size_t errlen);
/* The same over a whole image in memory, which must outlive the reader. */
struct snap_reader *snap_reader_mem(const void *buf, size_t len, char *err, size_t errlen);
/* Unmaps and closes (r may be NULL). */
void snap_reader_close(struct snap_reader *r);

struct snap_section {
    char tag[8];          /* NUL terminated */
    uint32_t version;     /* the section owner's */
    const uint8_t *data;  /* the payload, inside the mapping or buffer (a stream's own, for snap_stream_next) */
    uint64_t len;
    uint64_t file_offset; /* the payload's, from the start of the file, buffer or stream */
};

/* The next section with tag after the last one found with it (so repeated
 * tags can be iterated), or false when there is none. */
bool snap_reader_find(struct snap_reader *r, const char *tag, struct snap_section *out);
/* Makes snap_reader_find start again from the first section. */
void snap_reader_rewind(struct snap_reader *r);
/* How many sections have tag. */
size_t snap_reader_count(const struct snap_reader *r, const char *tag);
/* The mapped file's descriptor, for mmap of page data by file offset; -1 for a memory reader. */
int snap_reader_fd(const struct snap_reader *r);

struct snap_stream;

/* Reads a stream written by snap_writer_fd (or a file's bytes) from fd, a
 * socket or pipe, blocking or not, one section at a time without holding
 * the whole stream: the header is read and checked at once (magic, version,
 * header checksum; a nonzero length field is allowed, and the end section
 * must then end the stream exactly there). max_section bounds each payload
 * (0: no bound, for trusted peers only): a section longer is refused from
 * its header, before its payload is read. timeout_ms bounds each wait for
 * data, with poll (0 or less: no timeout), so a stalled peer cannot hang the
 * reader; a peer that trickles data is bounded only by max_section and
 * SNAP_STREAM_MAX_SECTIONS. Nothing past the end section is read, so fd may
 * carry more after it. NULL with a one-line message on failure. */
struct snap_stream *snap_stream_open(int fd, uint64_t max_section, int timeout_ms, char *err, size_t errlen);
/* Reads the next section into the stream's buffer (reused: out->data is
 * valid until the next call or close) and checks its tag, flags, length,
 * zero padding and checksum. out->file_offset is the payload's offset from
 * the start of the stream, and the payload sits in memory at that offset
 * modulo SNAP_PAGE_ALIGN, so snap_cursor and snap_get_aligned work as they
 * do on a mapped file (aligned data is page-aligned in memory too). Returns
 * 1 with *out filled; 0 at the end section, which completes the stream (and
 * again on later calls); -1 on error, with the message in err: the stream
 * truncated (connection closed), a read error, a timeout, a bad tag, a
 * checksum, a section too large, too many sections, out of memory. After
 * an error every call returns -1 with the same message. */
int snap_stream_next(struct snap_stream *s, struct snap_section *out, char *err, size_t errlen);
/* Frees s (which may be NULL); does not close its fd. */
void snap_stream_close(struct snap_stream *s);

/* Bounds-checked reading of a payload: a get past the end fails, zeroes
 * *out and sets bad, and so does every get after it, so that a parser
 * checks bad once at the end. */
struct snap_cursor {
    const uint8_t *p;
    uint64_t left;
    uint64_t pos;         /* bytes consumed */
    bool bad;
    uint64_t file_offset; /* of the payload: snap_get_aligned aligns p's file offset */
};

void snap_cursor_init(struct snap_cursor *c, const struct snap_section *s);
/* Read a little-endian value, or n bytes into out. */
bool snap_get_u32(struct snap_cursor *c, uint32_t *out);
bool snap_get_u64(struct snap_cursor *c, uint64_t *out);
bool snap_get_bytes(struct snap_cursor *c, void *out, size_t n);
/* Skips what snap_write_align padded and returns n bytes there, in place
 * (NULL, setting bad, if they are not all in the payload). */
const uint8_t *snap_get_aligned(struct snap_cursor *c, uint64_t n);

#endif
