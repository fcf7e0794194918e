/* Unit tests of the snapshot container (io/snap_file.c): a round trip with
 * repeated tags and page-aligned data, a file left intact when a writer is
 * aborted, killed or fails, commit replacing a file, streams through a
 * memfd, a pipe and a full disk, and hostile images (every truncation,
 * every bit flip, bad headers, and thousands of random mutations). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include <cmocka.h>

#include "io/snap_file.h"

#define PAGE 4096u
#define MiB (1024u * 1024)

struct fixture {
    char dir[64];
    char path[128];
};

static int setup(void **state) {
    struct fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/rvisor-snap-test-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof f->path, "%s/vm.snap", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    struct fixture *f = *state;
    DIR *d = opendir(f->dir);
    for (struct dirent *de; d && (de = readdir(d));) {
        char p[400];
        snprintf(p, sizeof p, "%s/%s", f->dir, de->d_name);
        if (de->d_name[0] != '.') unlink(p);
    }
    if (d) closedir(d);
    rmdir(f->dir);
    free(f);
    return 0;
}

static uint8_t pattern(uint64_t i, unsigned seed) { return (uint8_t)((i * 2654435761u) >> 13) ^ (uint8_t)seed; }

/* Files in the directory other than path: the writers' temporary files. */
static int leftovers(struct fixture *f) {
    DIR *d = opendir(f->dir);
    assert_non_null(d);
    int n = 0;
    char prefix[] = "vm.snap.tmp.";
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.' || strcmp(de->d_name, "vm.snap") == 0) continue;
        assert_memory_equal(de->d_name, prefix, sizeof prefix - 1);
        n++;
    }
    closedir(d);
    return n;
}

static uint8_t *read_all(const char *path, size_t *len) {
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    uint8_t *b = malloc((size_t)st.st_size + 1);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0 && b);
    assert_int_equal(read(fd, b, (size_t)st.st_size), st.st_size);
    close(fd);
    *len = (size_t)st.st_size;
    return b;
}

static void write_file(const char *path, const void *b, size_t len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b, len), (ssize_t)len);
    close(fd);
}

/* The sections every image in these tests has: four "hart"s, a "uart",
 * an empty "pvpanic" and a "ram" with `pages` page-aligned pages between
 * a count and a trailer. */
static void write_image(struct snap_writer *w, unsigned pages) {
    for (uint32_t i = 0; i < 4; i++) {
        assert_true(snap_section_begin(w, "hart", 3));
        assert_true(snap_write_u32(w, i));
        assert_true(snap_write_u64(w, 0x8000000000000000ull | i));
        assert_true(snap_section_end(w));
    }
    assert_true(snap_section_begin(w, "uart", 1));
    assert_true(snap_write(w, "\x01\x02\x03", 3));
    assert_true(snap_section_end(w));
    assert_true(snap_section_begin(w, "pvpanic", 7));
    assert_true(snap_section_end(w));
    assert_true(snap_section_begin(w, "ram", 2));
    assert_true(snap_write_u64(w, pages));
    assert_true(snap_write_align(w));
    assert_int_equal(snap_writer_bytes(w) % PAGE, 0);
    uint8_t page[PAGE];
    for (unsigned p = 0; p < pages; p++) {
        for (unsigned i = 0; i < PAGE; i++) page[i] = pattern(i, p);
        assert_true(snap_write(w, page, PAGE));
    }
    assert_true(snap_write_u32(w, 0xfeedf00d));
    assert_true(snap_section_end(w));
}

/* Reads back what write_image wrote. */
static void check_image(struct snap_reader *r, unsigned pages) {
    struct snap_section s;
    struct snap_cursor c;
    assert_int_equal(snap_reader_count(r, "hart"), 4);
    assert_int_equal(snap_reader_count(r, "ram"), 1);
    assert_int_equal(snap_reader_count(r, "disk"), 0);
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < 4; i++) {
            assert_true(snap_reader_find(r, "hart", &s));
            assert_string_equal(s.tag, "hart");
            assert_int_equal(s.version, 3);
            snap_cursor_init(&c, &s);
            uint32_t n;
            uint64_t v;
            assert_true(snap_get_u32(&c, &n) && snap_get_u64(&c, &v));
            assert_int_equal(n, i);
            assert_int_equal(v, 0x8000000000000000ull | i);
            assert_int_equal(c.left, 0);
            assert_false(c.bad);
        }
        assert_false(snap_reader_find(r, "hart", &s));
        snap_reader_rewind(r);
    }
    assert_true(snap_reader_find(r, "uart", &s));
    assert_int_equal(s.len, 3);
    assert_memory_equal(s.data, "\x01\x02\x03", 3);
    assert_true(snap_reader_find(r, "pvpanic", &s));
    assert_int_equal(s.version, 7);
    assert_int_equal(s.len, 0);
    assert_false(snap_reader_find(r, "pvpanic", &s));

    assert_true(snap_reader_find(r, "ram", &s));
    snap_cursor_init(&c, &s);
    uint64_t count;
    assert_true(snap_get_u64(&c, &count));
    assert_int_equal(count, pages);
    const uint8_t *data = snap_get_aligned(&c, (uint64_t)pages * PAGE);
    assert_non_null(data);
    uint64_t at = s.file_offset + (uint64_t)(data - s.data);
    assert_int_equal(at % PAGE, 0);
    for (uint64_t i = 0; i < (uint64_t)pages * PAGE; i++)
        if (data[i] != pattern(i % PAGE, (unsigned)(i / PAGE))) fail_msg("page byte %llu differs", (unsigned long long)i);
    uint32_t trailer;
    assert_true(snap_get_u32(&c, &trailer));
    assert_int_equal(trailer, 0xfeedf00d);
    assert_int_equal(c.left, 0);
    assert_false(c.bad);
    /* What a restore will do: map the pages straight from the file. */
    if (snap_reader_fd(r) >= 0 && pages) {
        void *m = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, snap_reader_fd(r), (off_t)at + PAGE);
        assert_true(m != MAP_FAILED);
        assert_memory_equal(m, data + PAGE, PAGE);
        munmap(m, PAGE);
    }
}

static void make_file(const char *path, unsigned pages) {
    char err[256] = "";
    struct snap_writer *w = snap_writer_create(path, err, sizeof err);
    assert_non_null(w);
    write_image(w, pages);
    if (!snap_writer_commit(w, err, sizeof err)) fail_msg("%s", err);
}

/* A whole image in memory, written through a memfd (a stream: no seeks). */
static uint8_t *make_image(unsigned pages, size_t *len) {
    char err[256];
    int fd = memfd_create("snap", MFD_CLOEXEC);
    assert_true(fd >= 0);
    struct snap_writer *w = snap_writer_fd(fd, err, sizeof err);
    assert_non_null(w);
    write_image(w, pages);
    if (!snap_writer_commit(w, err, sizeof err)) fail_msg("%s", err);
    *len = (size_t)lseek(fd, 0, SEEK_END);
    uint8_t *b = malloc(*len);
    assert_non_null(b);
    assert_int_equal(pread(fd, b, *len, 0), (ssize_t)*len);
    close(fd);
    return b;
}

static void test_round_trip(void **state) {
    struct fixture *f = *state;
    char err[256] = "";
    /* 3 MiB of pages: the 1 MiB buffer is flushed under an open section,
     * whose header then goes to the file by pwrite; a 2 MiB write skips
     * the buffer. */
    struct snap_writer *w = snap_writer_create(f->path, err, sizeof err);
    assert_non_null(w);
    write_image(w, 768);
    assert_true(snap_section_begin(w, "blob", 1));
    uint8_t *big = malloc(2 * MiB);
    assert_non_null(big);
    for (size_t i = 0; i < 2 * MiB; i++) big[i] = pattern(i, 99);
    assert_true(snap_write(w, big, 2 * MiB));
    assert_true(snap_section_end(w));
    uint64_t bytes = snap_writer_bytes(w);
    assert_null(snap_writer_error(w));
    if (!snap_writer_commit(w, err, sizeof err)) fail_msg("%s", err);

    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal((uint64_t)st.st_size, bytes + SNAP_HEADER_SIZE);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(leftovers(f), 0);

    struct snap_reader *r = snap_reader_open(f->path, 0, err, sizeof err);
    if (!r) fail_msg("%s", err);
    check_image(r, 768);
    struct snap_section s;
    assert_true(snap_reader_find(r, "blob", &s));
    assert_int_equal(s.len, 2 * MiB);
    assert_memory_equal(s.data, big, 2 * MiB);
    assert_int_equal(snap_checksum(s.data, s.len), XXH3_64bits(big, 2 * MiB));
    snap_reader_close(r);
    free(big);
}

static void test_abort_leaves_the_old_file(void **state) {
    struct fixture *f = *state;
    char err[256];
    make_file(f->path, 1);
    size_t len, len2;
    uint8_t *old = read_all(f->path, &len);

    struct snap_writer *w = snap_writer_create(f->path, err, sizeof err);
    assert_non_null(w);
    write_image(w, 300);
    assert_int_equal(leftovers(f), 1);
    snap_writer_abort(w);

    uint8_t *now = read_all(f->path, &len2);
    assert_int_equal(len, len2);
    assert_memory_equal(old, now, len);
    assert_int_equal(leftovers(f), 0);
    free(old);
    free(now);
}

/* A child writes a big section and dies before commit, by _exit or by
 * SIGKILL: path keeps its old content and only temporary files remain. */
static void test_a_killed_writer_leaves_the_old_file(void **state) {
    struct fixture *f = *state;
    char err[256];
    make_file(f->path, 1);
    size_t len, len2;
    uint8_t *old = read_all(f->path, &len);

    for (int kill_it = 0; kill_it < 2; kill_it++) {
        int ready[2];
        assert_int_equal(pipe(ready), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            struct snap_writer *w = snap_writer_create(f->path, err, sizeof err);
            if (!w || !snap_section_begin(w, "ram", 1)) _exit(2);
            uint8_t page[PAGE];
            memset(page, 0xa5, sizeof page);
            for (unsigned i = 0; i < 1024; i++)
                if (!snap_write(w, page, sizeof page)) _exit(3);
            if (write(ready[1], "x", 1) != 1) _exit(4);
            if (!kill_it) _exit(0);
            for (;;) pause();
        }
        close(ready[1]);
        char c;
        assert_int_equal(read(ready[0], &c, 1), 1);
        close(ready[0]);
        if (kill_it) kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (kill_it)
            assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        else
            assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

        uint8_t *now = read_all(f->path, &len2);
        assert_int_equal(len, len2);
        assert_memory_equal(old, now, len);
        free(now);
        struct snap_reader *r = snap_reader_open(f->path, 0, err, sizeof err);
        if (!r) fail_msg("%s", err);
        check_image(r, 1);
        snap_reader_close(r);
        assert_int_equal(leftovers(f), kill_it + 1);
    }
    free(old);
}

static void test_commit_replaces_the_file(void **state) {
    struct fixture *f = *state;
    char err[256];
    make_file(f->path, 1);
    make_file(f->path, 5);
    assert_int_equal(leftovers(f), 0);
    struct snap_reader *r = snap_reader_open(f->path, 0, err, sizeof err);
    if (!r) fail_msg("%s", err);
    check_image(r, 5);
    snap_reader_close(r);
}

/* A write error under a file writer (EFBIG from RLIMIT_FSIZE, in a child):
 * reported with its strerror text, later calls fail, the old file stays. */
static void test_a_failed_write_leaves_the_old_file(void **state) {
    struct fixture *f = *state;
    char err[256];
    make_file(f->path, 1);
    size_t len, len2;
    uint8_t *old = read_all(f->path, &len);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {.rlim_cur = MiB, .rlim_max = MiB};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(2);
        struct snap_writer *w = snap_writer_create(f->path, err, sizeof err);
        if (!w || !snap_section_begin(w, "ram", 1)) _exit(3);
        uint8_t page[PAGE] = {1};
        bool ok = true;
        for (unsigned i = 0; i < 1024 && ok; i++) ok = snap_write(w, page, sizeof page);
        if (ok || !strstr(snap_writer_error(w), strerror(EFBIG))) _exit(4);
        if (snap_section_end(w) || snap_write(w, page, 1)) _exit(5); /* failing fast */
        if (snap_writer_commit(w, err, sizeof err) || !strstr(err, strerror(EFBIG))) _exit(6);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    uint8_t *now = read_all(f->path, &len2);
    assert_int_equal(len, len2);
    assert_memory_equal(old, now, len);
    assert_int_equal(leftovers(f), 0);
    free(old);
    free(now);
}

static void test_misuse_is_reported_at_commit(void **state) {
    struct fixture *f = *state;
    char err[256] = "";
    struct snap_writer *w = snap_writer_create(f->path, err, sizeof err);
    assert_non_null(w);
    assert_false(snap_write_u32(w, 1)); /* outside a section */
    assert_false(snap_section_begin(w, "hart", 1));
    assert_false(snap_writer_commit(w, err, sizeof err));
    assert_non_null(strstr(err, "outside a section"));
    assert_int_equal(leftovers(f), 0);
    assert_int_equal(access(f->path, F_OK), -1);

    const char *bad_tags[] = {"", "eightchr", "sp ace", "t\tab", "\x80"};
    for (size_t i = 0; i < sizeof bad_tags / sizeof *bad_tags; i++) {
        w = snap_writer_create(f->path, err, sizeof err);
        assert_false(snap_section_begin(w, bad_tags[i], 1));
        assert_non_null(strstr(snap_writer_error(w), "tag"));
        snap_writer_abort(w);
    }
    w = snap_writer_create(f->path, err, sizeof err);
    assert_true(snap_section_begin(w, "hart", 1));
    assert_false(snap_writer_commit(w, err, sizeof err)); /* still open */
    assert_non_null(strstr(err, "'hart' was not ended"));
    assert_int_equal(leftovers(f), 0);

    snprintf(err, sizeof err, "%s/no/such/dir/x.snap", f->dir);
    char path[256];
    memcpy(path, err, sizeof path);
    assert_null(snap_writer_create(path, err, sizeof err));
    assert_non_null(strstr(err, "No such file"));
}

static void test_streams(void **state) {
    (void)state;
    char err[256];
    /* A memfd: the header's length is 0 and the image reads back whole;
     * its 160 KiB section outgrows the stream buffer. */
    size_t len;
    uint8_t *img = make_image(40, &len);
    uint64_t hdr_len;
    memcpy(&hdr_len, img + 16, 8);
    assert_int_equal(hdr_len, 0);
    struct snap_reader *r = snap_reader_mem(img, len, err, sizeof err);
    if (!r) fail_msg("%s", err);
    assert_int_equal(snap_reader_fd(r), -1);
    check_image(r, 40);
    snap_reader_close(r);

    /* A pipe, written by a child while the parent reads. */
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        struct snap_writer *w = snap_writer_fd(p[1], err, sizeof err);
        if (!w) _exit(2);
        write_image(w, 40);
        _exit(snap_writer_commit(w, err, sizeof err) ? 0 : 3);
    }
    close(p[1]);
    size_t cap = MiB, got = 0;
    uint8_t *buf = malloc(cap);
    for (ssize_t k; (k = read(p[0], buf + got, cap - got)) > 0;) {
        got += (size_t)k;
        if (got == cap) buf = realloc(buf, cap *= 2);
        assert_non_null(buf);
    }
    close(p[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    r = snap_reader_mem(buf, got, err, sizeof err);
    if (!r) fail_msg("%s", err);
    check_image(r, 40);
    snap_reader_close(r);
    free(buf);

    /* A full disk: the error comes at the first flush and then at commit. */
    int full = open("/dev/full", O_WRONLY);
    assert_true(full >= 0);
    struct snap_writer *w = snap_writer_fd(full, err, sizeof err);
    assert_true(snap_section_begin(w, "uart", 1));
    assert_true(snap_write_u32(w, 1));
    assert_false(snap_section_end(w));
    assert_false(snap_section_begin(w, "uart", 1));
    assert_false(snap_writer_commit(w, err, sizeof err));
    assert_non_null(strstr(err, strerror(ENOSPC)));
    close(full);
    free(img);
}

static void refused(const void *b, size_t len, const char *want) {
    char err[256] = "";
    struct snap_reader *r = snap_reader_mem(b, len, err, sizeof err);
    if (r) fail_msg("accepted an image that should be refused (%s)", want ? want : "");
    assert_true(err[0] != 0);
    if (want && !strstr(err, want)) fail_msg("'%s' does not say '%s'", err, want);
}

static void fix_header_checksum(uint8_t *img) {
    uint64_t h = XXH3_64bits(img, 24);
    memcpy(img + 24, &h, 8);
}

static void test_hostile_images(void **state) {
    struct fixture *f = *state;
    char err[256];
    size_t len;
    make_file(f->path, 0); /* a file writer's: the header has the length */
    uint8_t *img = read_all(f->path, &len);

    for (size_t n = 0; n < len; n++) {
        uint8_t *cut = malloc(n ? n : 1); /* exact size: ASan sees any overread */
        memcpy(cut, img, n);
        refused(cut, n, NULL);
        free(cut);
    }
    for (size_t bit = 0; bit < len * 8; bit++) {
        img[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        refused(img, len, NULL);
        img[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    uint8_t *copy = malloc(len + 8);
    memcpy(copy, img, len);
    copy[0] = 'X';
    refused(copy, len, "not an rvisor snapshot");
    memcpy(copy, img, len);
    copy[8] = 2;
    refused(copy, len, "newer rvisor: format version 2, this one reads up to 1");
    memcpy(copy, img, len);
    memset(copy + len, 0, 8);
    refused(copy, len + 8, "trailing bytes");
    memcpy(copy + 16, &(uint64_t){UINT64_MAX - 7}, 8); /* a huge file length */
    fix_header_checksum(copy);
    refused(copy, len, "truncated");
    memcpy(copy, img, len);
    memcpy(copy + 48, &(uint64_t){UINT64_MAX - 7}, 8); /* the first section's length */
    refused(copy, len, "section 'hart' is truncated");
    memcpy(copy, img, len);
    copy[40] ^= 1; /* the first section's version */
    refused(copy, len, "section 'hart' is corrupt (checksum)");
    memcpy(copy, img, len);
    memcpy(copy + 32, "h\x01rt", 4);
    refused(copy, len, "bad section tag");
    free(copy);

    /* Through the file reader. */
    struct snap_reader *r = snap_reader_open(f->path, len, err, sizeof err);
    if (!r) fail_msg("%s", err);
    snap_reader_close(r);
    assert_null(snap_reader_open(f->path, len - 1, err, sizeof err));
    assert_non_null(strstr(err, "larger than allowed"));
    write_file(f->path, img, len / 2);
    assert_null(snap_reader_open(f->path, 0, err, sizeof err));
    assert_non_null(strstr(err, "truncated"));
    write_file(f->path, img, 0);
    assert_null(snap_reader_open(f->path, 0, err, sizeof err));
    assert_non_null(strstr(err, "empty"));
    assert_null(snap_reader_open(f->dir, 0, err, sizeof err));
    assert_non_null(strstr(err, "directory"));
    assert_null(snap_reader_open("/dev/null", 0, err, sizeof err));
    assert_non_null(strstr(err, "character device"));
    assert_null(snap_reader_open("/proc/self/status", 0, err, sizeof err));
    free(img);
}

static void test_too_many_sections(void **state) {
    (void)state;
    char err[256];
    int fd = memfd_create("snap", MFD_CLOEXEC);
    assert_true(fd >= 0);
    struct snap_writer *w = snap_writer_fd(fd, err, sizeof err);
    for (unsigned i = 0; i <= SNAP_MAX_SECTIONS; i++) assert_true(snap_section_begin(w, "x", 0) && snap_section_end(w));
    if (!snap_writer_commit(w, err, sizeof err)) fail_msg("%s", err);
    size_t len = (size_t)lseek(fd, 0, SEEK_END);
    uint8_t *img = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    assert_true(img != MAP_FAILED);
    refused(img, len, "more than 65536 sections");
    /* Without its first section, the image is at the bound and fine. */
    uint8_t *fewer = malloc(len - SNAP_HEADER_SIZE);
    assert_non_null(fewer);
    memcpy(fewer, img, SNAP_HEADER_SIZE);
    memcpy(fewer + SNAP_HEADER_SIZE, img + 2 * SNAP_HEADER_SIZE, len - 2 * SNAP_HEADER_SIZE);
    struct snap_reader *r = snap_reader_mem(fewer, len - SNAP_HEADER_SIZE, err, sizeof err);
    if (!r) fail_msg("%s", err);
    assert_int_equal(snap_reader_count(r, "x"), SNAP_MAX_SECTIONS);
    snap_reader_close(r);
    free(fewer);
    munmap(img, len);
    close(fd);
}

static void test_cursor_stops_at_the_end(void **state) {
    (void)state;
    uint8_t data[6] = {1, 2, 3, 4, 5, 6};
    struct snap_section s = {.tag = "x", .data = data, .len = sizeof data, .file_offset = 4090};
    struct snap_cursor c;
    snap_cursor_init(&c, &s);
    uint32_t a = 7;
    uint64_t b = 7;
    uint8_t bytes[4] = {7, 7, 7, 7};
    assert_true(snap_get_u32(&c, &a));
    assert_int_equal(a, 0x04030201);
    assert_false(snap_get_u32(&c, &a));
    assert_int_equal(a, 0);
    assert_true(c.bad);
    assert_int_equal(c.pos, 4);
    assert_false(snap_get_bytes(&c, bytes, 1)); /* fits, but the cursor is bad */
    assert_int_equal(bytes[0], 0);

    snap_cursor_init(&c, &s);
    assert_false(snap_get_u64(&c, &b));
    assert_int_equal(b, 0);
    snap_cursor_init(&c, &s);
    assert_true(snap_get_bytes(&c, bytes, 2));
    /* At file offset 4092: the next page boundary is 4 bytes on, and 0
     * bytes there fit; 1 does not. */
    assert_ptr_equal(snap_get_aligned(&c, 0), data + 6);
    snap_cursor_init(&c, &s);
    assert_true(snap_get_bytes(&c, bytes, 2));
    assert_null(snap_get_aligned(&c, 1));
    assert_true(c.bad);
    snap_cursor_init(&c, &s);
    assert_null(snap_get_aligned(&c, UINT64_MAX));
    snap_cursor_init(&c, &s);
    uint8_t big[16];
    memset(big, 7, sizeof big);
    assert_false(snap_get_bytes(&c, big, sizeof big));
    for (size_t i = 0; i < sizeof big; i++) assert_int_equal(big[i], 0);
    assert_int_equal(c.left, 6);
}

/* Offsets of the section headers of a valid image. */
static size_t section_offsets(const uint8_t *img, size_t len, size_t *offs, size_t max) {
    size_t n = 0;
    for (size_t off = SNAP_HEADER_SIZE; off + SNAP_HEADER_SIZE <= len && n < max;) {
        offs[n++] = off;
        uint64_t l;
        memcpy(&l, img + off + 16, 8);
        off += SNAP_HEADER_SIZE + ((l + 7) & ~7ull);
    }
    return n;
}

/* What a parser does: reads everything, and stays inside the image. */
static void walk(struct snap_reader *r, const uint8_t *img, size_t len) {
    const char *tags[] = {"hart", "uart", "pvpanic", "ram", "end"};
    for (size_t t = 0; t < sizeof tags / sizeof *tags; t++) {
        struct snap_section s;
        while (snap_reader_find(r, tags[t], &s)) {
            assert_true(s.data >= img && s.len <= len && s.data + s.len <= img + len);
            assert_int_equal(s.file_offset, (uint64_t)(s.data - img));
            struct snap_cursor c;
            snap_cursor_init(&c, &s);
            uint32_t a;
            uint64_t b;
            uint8_t x[16];
            snap_get_u64(&c, &b);
            const uint8_t *p = snap_get_aligned(&c, b % (2 * PAGE));
            if (p) assert_true(p >= s.data && p <= s.data + s.len);
            while (snap_get_u32(&c, &a) && snap_get_bytes(&c, x, a % sizeof x)) continue;
            assert_true(c.bad);
        }
    }
}

static void test_random_mutations(void **state) {
    (void)state;
    size_t len, offs[16];
    uint8_t *img = make_image(1, &len);
    memcpy(img + 16, &(uint64_t){len}, 8); /* mutations of the length field start from the real length */
    fix_header_checksum(img);
    size_t nsec = section_offsets(img, len, offs, 16);
    assert_int_equal(nsec, 8);
    srandom(20240601);
    unsigned accepted = 0;
    for (int i = 0; i < 20000; i++) {
        size_t n = len;
        uint8_t *m = malloc(len);
        memcpy(m, img, len);
        switch (random() % 5) {
        case 0: /* a few random bytes */
            for (long k = random() % 4; k >= 0; k--) m[(size_t)random() % len] = (uint8_t)random();
            break;
        case 1: /* a truncation */
            n = (size_t)random() % len;
            break;
        case 2: { /* the file length, checksum fixed */
            uint64_t l = random() % 2 ? (uint64_t)random() % (len + 64) : (uint64_t)random() << 33 | (uint64_t)random();
            memcpy(m + 16, &l, 8);
            fix_header_checksum(m);
            break;
        }
        case 3: { /* a section's length, checksum fixed if it fits */
            size_t off = offs[(size_t)random() % nsec];
            uint64_t l = random() % 2 ? (uint64_t)random() % 64 : UINT64_MAX - (uint64_t)random() % 16;
            memcpy(m + off + 16, &l, 8);
            if (l <= len - off - SNAP_HEADER_SIZE) {
                uint64_t sum = XXH3_64bits_withSeed(m + off, 24, XXH3_64bits(m + off + SNAP_HEADER_SIZE, l));
                memcpy(m + off + 24, &sum, 8);
            }
            break;
        }
        default: /* a random byte in a section header, its checksum fixed */
        {
            size_t off = offs[(size_t)random() % nsec];
            m[off + (size_t)random() % 24] = (uint8_t)random();
            uint64_t l;
            memcpy(&l, m + off + 16, 8);
            if (l <= len - off - SNAP_HEADER_SIZE) {
                uint64_t sum = XXH3_64bits_withSeed(m + off, 24, XXH3_64bits(m + off + SNAP_HEADER_SIZE, l));
                memcpy(m + off + 24, &sum, 8);
            }
        }
        }
        m = realloc(m, n ? n : 1); /* exact size, for ASan */
        char err[256];
        struct snap_reader *r = snap_reader_mem(m, n, err, sizeof err);
        if (r) {
            accepted++;
            walk(r, m, n);
            snap_reader_close(r);
        } else {
            assert_true(err[0] != 0);
        }
        free(m);
    }
    /* Some mutations keep the image valid (a version changed with its
     * checksum fixed), so that the walk is exercised too. */
    assert_true(accepted > 100);
    free(img);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_leaves_the_old_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_killed_writer_leaves_the_old_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_replaces_the_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_write_leaves_the_old_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_misuse_is_reported_at_commit, setup, teardown),
        cmocka_unit_test(test_streams),
        cmocka_unit_test_setup_teardown(test_hostile_images, setup, teardown),
        cmocka_unit_test(test_too_many_sections),
        cmocka_unit_test(test_cursor_stops_at_the_end),
        cmocka_unit_test(test_random_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
