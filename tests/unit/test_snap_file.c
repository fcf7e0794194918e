/* Unit tests of the snapshot container (io/snap_file.c): a round trip with
 * repeated tags and page-aligned data, a file left intact when a writer is
 * aborted, killed or fails, commit replacing a file, streams through a
 * memfd, a pipe and a full disk, and hostile images (every truncation,
 * every bit flip, bad headers, and thousands of random mutations); and
 * the stream reader, over pipes and sockets with a writer thread, against
 * peers that close early, corrupt, stall, send too much or garbage, and
 * random mutations. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
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

/* Runs child (which _exits 0 if all went as it expected) in a process
 * whose files may not grow past 1 MiB (EFBIG), over an existing snapshot
 * at f->path: that file must stay as it was, and no temporary file. */
static void with_writes_failing(struct fixture *f, void (*child)(struct fixture *)) {
    make_file(f->path, 1);
    size_t len, len2;
    uint8_t *old = read_all(f->path, &len);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {.rlim_cur = MiB, .rlim_max = MiB};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(2);
        child(f);
        _exit(1);
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

/* A write error is reported with its strerror text; later calls fail. */
static void write_until_it_fails(struct fixture *f) {
    char err[256];
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

static void test_a_failed_write_leaves_the_old_file(void **state) { with_writes_failing(*state, write_until_it_fails); }

/* Page data handed to snap_write_pages goes out while the caller fills
 * the other of two buffers (and, with direct, around the page cache):
 * each section must hold what its buffer held when it was handed over,
 * not what was written into the buffer after the next call returned. */
static void pages_round_trip(struct fixture *f, bool direct) {
    char err[256] = "";
    const size_t blob = 2 * MiB;
    const unsigned sections = 6;
    uint8_t *buf[2];
    for (int i = 0; i < 2; i++) {
        buf[i] = mmap(NULL, blob, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        assert_true(buf[i] != MAP_FAILED);
    }
    struct snap_writer *w = snap_writer_create(f->path, err, sizeof err);
    assert_non_null(w);
    if (direct) {
        /* Only a file system without O_DIRECT (tmpfs) may say no. */
        char probe[160];
        snprintf(probe, sizeof probe, "%s/probe", f->dir);
        int pfd = open(probe, O_WRONLY | O_CREAT | O_DIRECT, 0600);
        bool can = pfd >= 0;
        if (pfd >= 0) close(pfd);
        unlink(probe);
        assert_int_equal(snap_writer_direct(w), can);
    }
    for (unsigned k = 0; k < sections; k++) {
        uint8_t *b = buf[k % 2];
        for (size_t i = 0; i < blob; i++) b[i] = pattern(i, 10 + k);
        assert_true(snap_section_begin(w, "ram", 1));
        assert_true(snap_write_u32(w, k)); /* unaligned: goes through the buffer */
        assert_true(snap_write_align(w));
        assert_true(snap_write_pages(w, b, blob));
        assert_true(snap_section_end(w));
        /* The buffer of the section before is free now: spoil it. */
        if (k) memset(buf[(k - 1) % 2], 0xee, blob);
    }
    if (!snap_writer_commit(w, err, sizeof err)) fail_msg("%s", err);
    struct snap_reader *r = snap_reader_open(f->path, 0, err, sizeof err);
    if (!r) fail_msg("%s", err);
    struct snap_section s;
    for (unsigned k = 0; k < sections; k++) {
        assert_true(snap_reader_find(r, "ram", &s));
        assert_true(s.len > blob && s.len <= blob + SNAP_PAGE_ALIGN);
        uint32_t n;
        memcpy(&n, s.data, 4);
        assert_int_equal(n, k);
        const uint8_t *data = s.data + (s.len - blob);
        for (size_t i = 0; i < blob; i++)
            if (data[i] != pattern(i, 10 + k)) fail_msg("section %u byte %zu differs", k, i);
    }
    assert_false(snap_reader_find(r, "ram", &s));
    snap_reader_close(r);
    assert_int_equal(leftovers(f), 0);
    for (int i = 0; i < 2; i++) munmap(buf[i], blob);
}

static void test_pages_written_meanwhile(void **state) { pages_round_trip(*state, false); }

static void test_pages_written_direct(void **state) { pages_round_trip(*state, true); }

/* A page write that fails after snap_write_pages returned is reported by
 * the commit. */
static void write_pages_that_fail(struct fixture *f) {
    char err[256];
    uint8_t *b = mmap(NULL, 2 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct snap_writer *w = snap_writer_create(f->path, err, sizeof err);
    if (b == MAP_FAILED || !w || !snap_section_begin(w, "ram", 1) || !snap_write_align(w)) _exit(3);
    snap_writer_direct(w);
    snap_write_pages(w, b, 2 * MiB); /* may fail now or later */
    snap_section_end(w);
    if (snap_writer_commit(w, err, sizeof err) || !strstr(err, strerror(EFBIG))) _exit(6);
    _exit(0);
}

static void test_a_failed_page_write_is_reported(void **state) { with_writes_failing(*state, write_pages_that_fail); }

/* Big sections are verified after the walk, two threads taking them in
 * turn: a damaged one is still refused, and of two the first is named. */
static void test_big_sections_verified(void **state) {
    struct fixture *f = *state;
    char err[256] = "";
    const size_t len = 3 * MiB / 2;
    uint8_t *big = malloc(len);
    assert_non_null(big);
    struct snap_writer *w = snap_writer_create(f->path, err, sizeof err);
    assert_non_null(w);
    for (unsigned k = 0; k < 10; k++) {
        char tag[8];
        snprintf(tag, sizeof tag, "b%u", k);
        for (size_t i = 0; i < len; i++) big[i] = pattern(i, k);
        assert_true(snap_section_begin(w, tag, 1));
        assert_true(snap_write(w, big, len));
        assert_true(snap_section_end(w));
    }
    if (!snap_writer_commit(w, err, sizeof err)) fail_msg("%s", err);
    struct snap_reader *r = snap_reader_open(f->path, 0, err, sizeof err);
    if (!r) fail_msg("%s", err);
    struct snap_section s[10];
    for (unsigned k = 0; k < 10; k++) {
        char tag[8];
        snprintf(tag, sizeof tag, "b%u", k);
        assert_true(snap_reader_find(r, tag, &s[k]));
        assert_int_equal(s[k].len, len);
    }
    uint64_t off3 = s[3].file_offset + len / 2, off7 = s[7].file_offset + len - 1;
    snap_reader_close(r);
    int fd = open(f->path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b = 0;
    assert_int_equal(pread(fd, &b, 1, (off_t)off7), 1);
    b ^= 0x10;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)off7), 1);
    assert_null(snap_reader_open(f->path, 0, err, sizeof err));
    if (!strstr(err, "section 'b7' is corrupt (checksum)")) fail_msg("%s", err);
    assert_int_equal(pread(fd, &b, 1, (off_t)off3), 1);
    b ^= 0x01;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)off3), 1);
    assert_null(snap_reader_open(f->path, 0, err, sizeof err));
    if (!strstr(err, "section 'b3' is corrupt (checksum)")) fail_msg("%s", err);
    close(fd);
    free(big);
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

/* --- The stream reader (snap_stream_*): what a migration target reads from its socket --- */

#define STREAM_MEMS 200u
#define STREAM_SECTIONS (4 + STREAM_MEMS + 3)
#define BLOB (6 * MiB)

static uint64_t le64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static int64_t now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* n bytes of pattern(.., seed) in 64 KiB writes. */
static bool put_pattern(struct snap_writer *w, uint64_t n, unsigned seed) {
    static _Thread_local uint8_t b[64 * 1024];
    for (uint64_t done = 0; done < n;) {
        size_t k = n - done < sizeof b ? (size_t)(n - done) : sizeof b;
        for (size_t i = 0; i < k; i++) b[i] = pattern(done + i, seed);
        if (!snap_write(w, b, k)) return false;
        done += k;
    }
    return true;
}

/* What the stream tests send, without cmocka's asserts (it runs in a
 * writer thread too): four "hart"s, STREAM_MEMS "mem"s of up to 9000 bytes
 * (every ninth with page-aligned pages after a count), a 6 MiB "blob", an
 * empty section and a 3-byte "tail", which leaves padding. */
static bool write_stream(struct snap_writer *w) {
    bool ok = true;
    for (uint32_t i = 0; i < 4 && ok; i++)
        ok = snap_section_begin(w, "hart", 3) && snap_write_u32(w, i) &&
             snap_write_u64(w, 0x8000000000000000ull | i) && snap_section_end(w);
    for (uint32_t i = 0; i < STREAM_MEMS && ok; i++) {
        ok = snap_section_begin(w, "mem", i) && snap_write_u64(w, i);
        if (i % 9 == 0)
            ok = ok && snap_write_align(w) && put_pattern(w, (1 + i % 3) * PAGE, i);
        else
            ok = ok && put_pattern(w, i * 131 % 9000, i);
        ok = ok && snap_section_end(w);
    }
    ok = ok && snap_section_begin(w, "blob", 1) && put_pattern(w, BLOB, 99) && snap_section_end(w);
    ok = ok && snap_section_begin(w, "empty", 2) && snap_section_end(w);
    return ok && snap_section_begin(w, "tail", 7) && snap_write(w, "abc", 3) && snap_section_end(w);
}

/* The bytes snap_writer_fd writes with fill, through a memfd. */
static uint8_t *stream_bytes(bool (*fill)(struct snap_writer *), size_t *len) {
    char err[256];
    int fd = memfd_create("snap", MFD_CLOEXEC);
    assert_true(fd >= 0);
    struct snap_writer *w = snap_writer_fd(fd, err, sizeof err);
    assert_non_null(w);
    if (!fill(w)) fail_msg("%s", snap_writer_error(w));
    if (!snap_writer_commit(w, err, sizeof err)) fail_msg("%s", err);
    *len = (size_t)lseek(fd, 0, SEEK_END);
    uint8_t *b = malloc(*len);
    assert_non_null(b);
    assert_int_equal(pread(fd, b, *len, 0), (ssize_t)*len);
    close(fd);
    return b;
}

/* The offset of the header of img's n-th section (the end section's if n
 * is past the others), and its tag. */
static size_t nth_section(const uint8_t *img, size_t n, const char *tag) {
    size_t off = SNAP_HEADER_SIZE;
    for (size_t i = 0;; i++) {
        if (tag ? strcmp((const char *)img + off, tag) == 0 : i == n) return off;
        if (strcmp((const char *)img + off, "end") == 0) return off;
        off += SNAP_HEADER_SIZE + ((le64(img + off + 16) + 7) & ~7ull);
    }
}

/* Reads what write_stream wrote (img: the same bytes) off st: every
 * section in order, identical, at its offset in the stream; aligned pages
 * where a file's would be; then 0, twice. */
static void expect_stream(struct snap_stream *st, const uint8_t *img, size_t len) {
    char err[256] = "";
    struct snap_section s;
    size_t off = SNAP_HEADER_SIZE, n = 0;
    while (strcmp((const char *)img + off, "end") != 0) {
        uint64_t l = le64(img + off + 16);
        int r = snap_stream_next(st, &s, err, sizeof err);
        if (r != 1) fail_msg("section %zu: %d, %s", n, r, err);
        assert_string_equal(s.tag, (const char *)img + off);
        assert_int_equal(s.version, *(const uint32_t *)(img + off + 8));
        assert_int_equal(s.len, l);
        assert_int_equal(s.file_offset, off + SNAP_HEADER_SIZE);
        if (memcmp(s.data, img + off + SNAP_HEADER_SIZE, l) != 0) fail_msg("section %zu's payload differs", n);
        if (strcmp(s.tag, "mem") == 0 && s.version % 9 == 0) {
            struct snap_cursor c;
            snap_cursor_init(&c, &s);
            uint64_t v, pages = 1 + s.version % 3;
            assert_true(snap_get_u64(&c, &v));
            assert_int_equal(v, s.version);
            const uint8_t *p = snap_get_aligned(&c, pages * PAGE);
            assert_non_null(p);
            assert_int_equal((s.file_offset + (uint64_t)(p - s.data)) % PAGE, 0);
            assert_int_equal((uintptr_t)p % PAGE, 0); /* in memory too, as in a mapped file */
            for (uint64_t i = 0; i < pages * PAGE; i++)
                if (p[i] != pattern(i, s.version))
                    fail_msg("mem %u: page byte %llu differs", s.version, (unsigned long long)i);
            assert_int_equal(c.left, 0);
            assert_false(c.bad);
        }
        off += SNAP_HEADER_SIZE + ((l + 7) & ~7ull);
        n++;
    }
    assert_int_equal(off + SNAP_HEADER_SIZE, len);
    assert_int_equal(n, STREAM_SECTIONS);
    assert_int_equal(snap_stream_next(st, &s, err, sizeof err), 0);
    assert_int_equal(snap_stream_next(st, &s, err, sizeof err), 0);
}

/* Exactly n bytes from fd, blocking or not, EINTR or not; fewer at EOF. */
static size_t read_fd(int fd, void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, (uint8_t *)buf + got, n - got);
        if (k > 0) {
            got += (size_t)k;
        } else if (k == 0) {
            break;
        } else if (errno == EAGAIN) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            poll(&p, 1, 1000);
        } else {
            assert_int_equal(errno, EINTR);
        }
    }
    return got;
}

/* A writer thread: write_stream through snap_writer_fd, then "MORE" for
 * whatever follows the stream on the connection, then it closes fd. */
struct writer_job {
    int fd;
    bool ok;
    char err[256];
};

static void *writer_main(void *arg) {
    struct writer_job *j = arg;
    struct snap_writer *w = snap_writer_fd(j->fd, j->err, sizeof j->err);
    if (w && !write_stream(w)) {
        snprintf(j->err, sizeof j->err, "%s", snap_writer_error(w));
        snap_writer_abort(w);
    } else if (w && snap_writer_commit(w, j->err, sizeof j->err)) {
        j->ok = write(j->fd, "MORE", 4) == 4;
    }
    close(j->fd);
    return NULL;
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig) {
    (void)sig;
    alarms++;
}

/* SIGALRM every period_us to this thread, without SA_RESTART, so that
 * poll and read fail with EINTR; 0 stops it. */
static void interrupt_every(unsigned period_us) {
    static struct sigaction old;
    struct itimerval t = {.it_interval = {0, period_us}, .it_value = {0, period_us}};
    if (period_us) {
        struct sigaction sa = {.sa_handler = on_alarm}; /* sa_flags 0: no SA_RESTART */
        sigemptyset(&sa.sa_mask);
        alarms = 0;
        assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
    }
    assert_int_equal(setitimer(ITIMER_REAL, &t, NULL), 0);
    if (!period_us) sigaction(SIGALRM, &old, NULL);
}

/* A writer thread writes to wfd while this one reads rfd, which it closes. */
static void round_trip_over(int rfd, int wfd, int timeout_ms, bool interrupted, const uint8_t *img, size_t len) {
    char err[256] = "";
    struct writer_job j = {.fd = wfd};
    pthread_t t;
    sigset_t alrm, old; /* the thread is born with SIGALRM blocked: this one takes them */
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alrm, &old);
    assert_int_equal(pthread_create(&t, NULL, writer_main, &j), 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (interrupted) interrupt_every(1000);

    struct snap_stream *st = snap_stream_open(rfd, 8 * MiB, timeout_ms, err, sizeof err);
    if (!st) fail_msg("%s", err);
    expect_stream(st, img, len);
    snap_stream_close(st);
    char more[5] = "";
    assert_int_equal(read_fd(rfd, more, 5), 4); /* nothing past the end section was taken */
    assert_string_equal(more, "MORE");

    if (interrupted) {
        interrupt_every(0);
        assert_true(alarms > 0);
    }
    assert_int_equal(pthread_join(t, NULL), 0);
    if (!j.ok) fail_msg("writer: %s", j.err);
    close(rfd);
}

static void test_stream_reader_round_trip(void **state) {
    (void)state;
    size_t len;
    uint8_t *img = stream_bytes(write_stream, &len);
    assert_int_equal(le64(img + 16), 0); /* a stream's header has no length */
    int p[2];
    /* A pipe (64 KiB at a time: short reads), no timeout. */
    assert_int_equal(pipe(p), 0);
    round_trip_over(p[0], p[1], 0, false, img, len);
    /* A non-blocking pipe: EAGAIN, then poll. */
    assert_int_equal(pipe(p), 0);
    assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    round_trip_over(p[0], p[1], 0, false, img, len);
    assert_int_equal(pipe(p), 0);
    assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    round_trip_over(p[0], p[1], 5000, false, img, len);
    /* A socketpair with a timeout, poll and read interrupted every 1 ms. */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p), 0);
    round_trip_over(p[0], p[1], 5000, true, img, len);

    /* TCP over loopback, as a migration goes (skipped where there is no network). */
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (l >= 0 && bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 1) == 0 &&
        getsockname(l, (struct sockaddr *)&a, &alen) == 0) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(c >= 0);
        assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof a), 0);
        int s = accept(l, NULL, NULL);
        assert_true(s >= 0);
        round_trip_over(s, c, 5000, false, img, len);
    } else {
        print_message("no loopback TCP here (%s): skipping that round trip\n", strerror(errno));
    }
    if (l >= 0) close(l);
    free(img);
}

/* A peer that sends n bytes of b, then closes its end. */
struct feed {
    int fd;
    const uint8_t *b;
    size_t n;
    pthread_t thread;
};

static void *feed_main(void *arg) {
    struct feed *f = arg;
    for (size_t done = 0; done < f->n;) {
        ssize_t k = write(f->fd, f->b + done, f->n - done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break; /* EPIPE: the reader gave up (SIGPIPE is ignored) */
        done += (size_t)k;
    }
    close(f->fd);
    return NULL;
}

/* The reading end of a pipe (or a socket) the feed writes into. */
static int start_feed(struct feed *f, const uint8_t *b, size_t n, bool socket) {
    int p[2];
    assert_int_equal(socket ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) : pipe(p), 0);
    *f = (struct feed){.fd = p[1], .b = b, .n = n};
    assert_int_equal(pthread_create(&f->thread, NULL, feed_main, f), 0);
    return p[0];
}

static void end_feed(struct feed *f, int rfd) {
    close(rfd);
    assert_int_equal(pthread_join(f->thread, NULL), 0);
}

/* Reads st to its end or error, as a parser would, checking that every
 * section is img's bytes at its offset (img may be NULL). */
static int drain(struct snap_stream *st, const uint8_t *img, size_t n, size_t *count, char *err, size_t errlen) {
    struct snap_section s;
    int r;
    *count = 0;
    err[0] = 0;
    while ((r = snap_stream_next(st, &s, err, errlen)) == 1) {
        ++*count;
        assert_true(s.tag[0] && strlen(s.tag) < 8);
        if (img) {
            assert_true(s.file_offset <= n && s.len <= n - s.file_offset);
            if (memcmp(s.data, img + s.file_offset, s.len) != 0) fail_msg("section %zu differs", *count);
        }
        struct snap_cursor c;
        snap_cursor_init(&c, &s);
        uint32_t a;
        uint64_t b;
        uint8_t x[16];
        snap_get_u64(&c, &b);
        const uint8_t *p = snap_get_aligned(&c, b % (2 * PAGE));
        if (p) assert_true(p >= s.data && p <= s.data + s.len && (s.file_offset + (uint64_t)(p - s.data)) % PAGE == 0);
        while (snap_get_u32(&c, &a) && snap_get_bytes(&c, x, a % sizeof x)) continue;
        assert_true(c.bad);
    }
    if (r < 0) assert_true(err[0] != 0);
    return r;
}

/* The stream cut at `cut` bytes fails with `want`, after the sections before the cut. */
static void cut_stream(const uint8_t *img, size_t cut, bool socket, const char *want, const char *want2) {
    char err[256] = "";
    struct feed f;
    int rfd = start_feed(&f, img, cut, socket);
    struct snap_stream *st = snap_stream_open(rfd, 8 * MiB, 2000, err, sizeof err);
    if (cut < SNAP_HEADER_SIZE) {
        assert_null(st);
    } else {
        if (!st) fail_msg("cut at %zu: %s", cut, err);
        size_t n, whole = 0;
        for (size_t off = SNAP_HEADER_SIZE; strcmp((const char *)img + off, "end") != 0; whole++) {
            off += SNAP_HEADER_SIZE + ((le64(img + off + 16) + 7) & ~7ull);
            if (off > cut) break;
        }
        assert_int_equal(drain(st, img, cut, &n, err, sizeof err), -1);
        assert_int_equal(n, whole);
        char again[256];
        struct snap_section s;
        assert_int_equal(snap_stream_next(st, &s, again, sizeof again), -1); /* and it stays failed */
        assert_string_equal(again, err);
        snap_stream_close(st);
    }
    if (!strstr(err, want) || !strstr(err, want2))
        fail_msg("cut at %zu: '%s' does not say '%s' and '%s'", cut, err, want, want2);
    end_feed(&f, rfd);
}

static void test_stream_reader_truncated(void **state) {
    (void)state;
    size_t len;
    uint8_t *img = stream_bytes(write_stream, &len);
    size_t blob = nth_section(img, 0, "blob"), tail = nth_section(img, 0, "tail");
    size_t cuts[] = {0,    10,   31,   32,   40,   64 + 5, 64 + 12, blob + 32 + 3 * MiB, tail + 33, len - 32,
                     len - 5, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) cut_stream(img, cuts[i], i % 2, "truncated", "closed");
    /* The place in messages. */
    cut_stream(img, 20, false, "offset 20, in the stream header", "");
    cut_stream(img, 40, false, "offset 40, in a section header", "");
    cut_stream(img, blob + 100, true, "in section 'blob'", "");
    free(img);
}

/* img with byte at off xor-ed by x, fed through a pipe: refused with
 * "checksum" after the `before` sections ahead of it. */
static void corrupt_stream(const uint8_t *img, size_t len, size_t off, uint8_t x, size_t before, const char *tag) {
    char err[256];
    uint8_t *m = malloc(len);
    assert_non_null(m);
    memcpy(m, img, len);
    m[off] ^= x;
    struct feed f;
    int rfd = start_feed(&f, m, len, false);
    struct snap_stream *st = snap_stream_open(rfd, 8 * MiB, 2000, err, sizeof err);
    if (!st) fail_msg("%s", err);
    size_t n;
    assert_int_equal(drain(st, m, len, &n, err, sizeof err), -1);
    assert_int_equal(n, before);
    char want[64];
    snprintf(want, sizeof want, "section '%s' is corrupt (checksum)", tag);
    if (!strstr(err, want)) fail_msg("byte %zu: '%s' does not say '%s'", off, err, want);
    snap_stream_close(st);
    end_feed(&f, rfd);
    free(m);
}

static void test_stream_reader_corruption(void **state) {
    (void)state;
    size_t len;
    uint8_t *img = stream_bytes(write_stream, &len);
    size_t hart1 = nth_section(img, 1, NULL), mem100 = nth_section(img, 4 + 100, NULL);
    size_t mem5 = nth_section(img, 4 + 5, NULL), blob = nth_section(img, 0, "blob"), tail = nth_section(img, 0, "tail");
    size_t end = nth_section(img, 0, "end");
    assert_int_equal(end + SNAP_HEADER_SIZE, len);
    corrupt_stream(img, len, hart1 + 8, 1, 1, "hart");               /* a header's version */
    corrupt_stream(img, len, hart1 + 16, 1, 1, "hart");              /* its length: 12 -> 13, the same padded size */
    corrupt_stream(img, len, mem5 + 24, 0x80, 4 + 5, "mem");         /* a checksum */
    corrupt_stream(img, len, mem100 + 32 + 20, 0x10, 4 + 100, "mem"); /* a payload */
    corrupt_stream(img, len, blob + 32 + 5 * MiB, 1, 4 + STREAM_MEMS, "blob");
    corrupt_stream(img, len, tail + 32 + 3, 1, STREAM_SECTIONS - 1, "tail"); /* padding */
    corrupt_stream(img, len, end + 8, 1, STREAM_SECTIONS, "end");
    free(img);
}

static bool write_small_big(struct snap_writer *w) {
    return snap_section_begin(w, "small", 1) && put_pattern(w, 100, 1) && snap_section_end(w) &&
           snap_section_begin(w, "big", 1) && put_pattern(w, 2 * MiB, 2) && snap_section_end(w) &&
           snap_section_begin(w, "after", 1) && put_pattern(w, 8, 3) && snap_section_end(w);
}

static void test_stream_reader_max_section(void **state) {
    (void)state;
    char err[256];
    size_t len, n;
    uint8_t *img = stream_bytes(write_small_big, &len);
    size_t big = nth_section(img, 0, "big");
    struct snap_section s;

    /* A peer that sent the big section's header and then nothing: refused
     * at once, not after the timeout that reading its payload would hit. */
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], img, big + SNAP_HEADER_SIZE), (ssize_t)(big + SNAP_HEADER_SIZE));
    struct snap_stream *st = snap_stream_open(p[0], MiB, 3000, err, sizeof err);
    if (!st) fail_msg("%s", err);
    assert_int_equal(snap_stream_next(st, &s, err, sizeof err), 1);
    assert_string_equal(s.tag, "small");
    int64_t t0 = now_ms();
    assert_int_equal(snap_stream_next(st, &s, err, sizeof err), -1);
    assert_true(now_ms() - t0 < 1000);
    assert_non_null(strstr(err, "section 'big' is too large (2097152 bytes, at most 1048576)"));
    snap_stream_close(st);
    close(p[0]);
    close(p[1]);

    /* One byte over the bound: not a byte of the payload is read; at the bound: fine. */
    int fd = memfd_create("snap", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, img, len), (ssize_t)len);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    st = snap_stream_open(fd, 2 * MiB - 1, 0, err, sizeof err);
    if (!st) fail_msg("%s", err);
    assert_int_equal(drain(st, img, len, &n, err, sizeof err), -1);
    assert_int_equal(n, 1);
    assert_non_null(strstr(err, "too large"));
    assert_int_equal(lseek(fd, 0, SEEK_CUR), (off_t)(big + SNAP_HEADER_SIZE));
    snap_stream_close(st);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    st = snap_stream_open(fd, 2 * MiB, 0, err, sizeof err);
    if (!st) fail_msg("%s", err);
    assert_int_equal(drain(st, img, len, &n, err, sizeof err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), (off_t)len);
    snap_stream_close(st);
    close(fd);
    free(img);
}

static void test_stream_reader_timeout(void **state) {
    (void)state;
    char err[256] = "";
    size_t len;
    uint8_t *img = stream_bytes(write_small_big, &len);
    int p[2];
    /* A silent peer, from the start. */
    assert_int_equal(pipe(p), 0);
    int64_t t0 = now_ms();
    assert_null(snap_stream_open(p[0], MiB, 100, err, sizeof err));
    int64_t took = now_ms() - t0;
    if (took < 95 || took > 1000) fail_msg("timed out after %lld ms", (long long)took);
    assert_non_null(strstr(err, "snapshot stream timed out: no data for 100 ms at offset 0, in the stream header"));
    close(p[0]);
    close(p[1]);

    /* A peer that stalls in a section, non-blocking fd, with signals every
     * 10 ms: they do not extend the wait. */
    assert_int_equal(pipe(p), 0);
    assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(write(p[1], img, 32 + 32 + 50), 32 + 32 + 50);
    struct snap_stream *st = snap_stream_open(p[0], MiB, 100, err, sizeof err);
    if (!st) fail_msg("%s", err);
    struct snap_section s;
    interrupt_every(10000);
    t0 = now_ms();
    assert_int_equal(snap_stream_next(st, &s, err, sizeof err), -1);
    took = now_ms() - t0;
    interrupt_every(0);
    assert_true(alarms > 0);
    if (took < 95 || took > 1000) fail_msg("timed out after %lld ms", (long long)took);
    assert_non_null(strstr(err, "timed out: no data for 100 ms at offset 114, in section 'small'"));
    snap_stream_close(st);
    close(p[0]);
    close(p[1]);
    free(img);
}

/* n bytes and then EOF are refused at open with want. */
static void refused_stream(const void *b, size_t n, const char *want) {
    char err[256] = "";
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], b, n), (ssize_t)n);
    close(p[1]);
    struct snap_stream *st = snap_stream_open(p[0], MiB, 1000, err, sizeof err);
    if (st) fail_msg("accepted a stream that should be refused (%s)", want);
    if (!strstr(err, want)) fail_msg("'%s' does not say '%s'", err, want);
    close(p[0]);
}

/* A file's bytes sent down a pipe, whose header has its length. */
static int file_through_pipe(const uint8_t *img, size_t len, size_t *count, char *err, size_t errlen) {
    struct feed f;
    int rfd = start_feed(&f, img, len, false);
    struct snap_stream *st = snap_stream_open(rfd, MiB, 2000, err, errlen);
    if (!st) fail_msg("%s", err);
    int r = drain(st, img, len, count, err, errlen);
    snap_stream_close(st);
    end_feed(&f, rfd);
    return r;
}

static void test_stream_reader_bad_headers(void **state) {
    struct fixture *f = *state;
    char err[256];
    size_t len, n;
    make_file(f->path, 1);
    uint8_t *img = read_all(f->path, &len);
    assert_int_equal(le64(img + 16), len);

    refused_stream("GARBAGE GARBAGE GARBAGE GARBAGE!", 32, "snapshot stream is not an rvisor snapshot");
    const char http[] = "GET /migrate HTTP/1.1\r\nHost: x\r\n\r\n";
    refused_stream(http, sizeof http - 1, "is not an rvisor snapshot");
    refused_stream("", 0, "is truncated: the connection closed at offset 0");
    refused_stream("RVSNA", 5, "closed at offset 5");
    uint8_t h[SNAP_HEADER_SIZE];
    memcpy(h, img, sizeof h);
    h[8] = 2;
    refused_stream(h, sizeof h, "newer rvisor: format version 2");
    h[8] = 1;
    h[30] ^= 1;
    refused_stream(h, sizeof h, "corrupt (header checksum)");
    h[30] ^= 1;
    h[8] = 0;
    fix_header_checksum(h);
    refused_stream(h, sizeof h, "invalid format version 0");
    h[8] = 1;
    h[12] = 4;
    fix_header_checksum(h);
    refused_stream(h, sizeof h, "unknown flags 0x4");

    /* A file read through a pipe: its length is checked, not required. */
    assert_int_equal(file_through_pipe(img, len, &n, err, sizeof err), 0);
    assert_int_equal(n, 7);
    memcpy(img + 16, &(uint64_t){len + 8}, 8);
    fix_header_checksum(img);
    assert_int_equal(file_through_pipe(img, len, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "corrupt (it ends at offset"));
    memcpy(img + 16, &(uint64_t){len - 8}, 8);
    fix_header_checksum(img);
    assert_int_equal(file_through_pipe(img, len, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "corrupt (no end section within"));
    memcpy(img + 16, &(uint64_t){len / 2}, 8);
    fix_header_checksum(img);
    assert_int_equal(file_through_pipe(img, len, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "section 'ram' of"));
    assert_non_null(strstr(err, "runs past the"));

    /* A closed descriptor, with and without a timeout (poll, read). */
    int fd = dup(0);
    assert_true(fd >= 0);
    close(fd);
    assert_null(snap_stream_open(fd, MiB, 100, err, sizeof err));
    assert_non_null(strstr(err, strerror(EBADF)));
    assert_null(snap_stream_open(fd, MiB, 0, err, sizeof err));
    assert_non_null(strstr(err, strerror(EBADF)));
    free(img);
}

/* SNAP_STREAM_MAX_SECTIONS empty sections are read; one more is refused
 * (one pass: each section is a read of its header, ~1M system calls). */
static void test_stream_reader_too_many_sections(void **state) {
    (void)state;
    char err[256];
    size_t n;
    uint8_t hdr[SNAP_HEADER_SIZE], x[SNAP_HEADER_SIZE] = "x", end[SNAP_HEADER_SIZE] = "end";
    fix_header_checksum(memcpy(hdr, "RVSNAP\r\n\1\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 24));
    uint64_t sum = XXH3_64bits_withSeed(x, 24, XXH3_64bits("", 0));
    memcpy(x + 24, &sum, 8);
    sum = XXH3_64bits_withSeed(end, 24, XXH3_64bits("", 0));
    memcpy(end + 24, &sum, 8);
    size_t count = SNAP_STREAM_MAX_SECTIONS + 1, len = (count + 2) * SNAP_HEADER_SIZE;
    uint8_t *img = malloc(len);
    assert_non_null(img);
    memcpy(img, hdr, sizeof hdr);
    for (size_t i = 1; i <= count; i++) memcpy(img + i * SNAP_HEADER_SIZE, x, sizeof x);
    memcpy(img + len - SNAP_HEADER_SIZE, end, sizeof end);
    int fd = memfd_create("snap", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, img, len), (ssize_t)len);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    struct snap_stream *st = snap_stream_open(fd, 0, 0, err, sizeof err);
    if (!st) fail_msg("%s", err);
    struct snap_section s;
    int r;
    for (n = 0; (r = snap_stream_next(st, &s, err, sizeof err)) == 1; n++) continue;
    assert_int_equal(r, -1);
    assert_int_equal(n, SNAP_STREAM_MAX_SECTIONS);
    assert_non_null(strstr(err, "snapshot stream has more than 1048576 sections"));
    /* Refused from its header: the position is right after it. */
    assert_int_equal(lseek(fd, 0, SEEK_CUR), (off_t)(count + 1) * SNAP_HEADER_SIZE);
    snap_stream_close(st);
    close(fd);
    free(img);
}

/* Random damage to a stream, read from a memfd (and every 50th also from a
 * pipe): never a crash or a read out of bounds, each reads to its end or
 * fails with a message, and the verdict is the memory reader's wherever
 * the stream was read up to its last byte. */
static void test_stream_reader_mutations(void **state) {
    (void)state;
    size_t len, offs[16];
    uint8_t *img = make_image(1, &len);
    memcpy(img + 16, &(uint64_t){len}, 8);
    fix_header_checksum(img);
    size_t nsec = section_offsets(img, len, offs, 16);
    assert_int_equal(nsec, 8);
    int fd = memfd_create("snap", MFD_CLOEXEC);
    assert_true(fd >= 0);
    srandom(20240917);
    unsigned accepted = 0, refused_ = 0;
    for (int i = 0; i < 5000; i++) {
        size_t n = len;
        uint8_t *m = malloc(len);
        memcpy(m, img, len);
        size_t off = offs[(size_t)random() % nsec];
        switch (random() % 6) {
        case 0: /* a few random bytes */
            for (long k = random() % 4; k >= 0; k--) m[(size_t)random() % len] = (uint8_t)random();
            break;
        case 1: /* a truncation */
            n = (size_t)random() % len;
            break;
        case 2: { /* the header's length, checksum fixed */
            uint64_t l = random() % 3 == 0 ? 0
                         : random() % 2    ? (uint64_t)random() % (len + 64)
                                           : (uint64_t)random() << 33;
            memcpy(m + 16, &l, 8);
            fix_header_checksum(m);
            break;
        }
        case 3: /* a section's length, checksum fixed if it fits */
        case 4: /* a random byte in a section header, checksum fixed if it fits */
        {
            if (random() % 2 == 0) {
                uint64_t l = random() % 2 ? (uint64_t)random() % 64 : UINT64_MAX - (uint64_t)random() % 16;
                memcpy(m + off + 16, &l, 8);
            } else {
                m[off + (size_t)random() % 24] = (uint8_t)random();
            }
            uint64_t l = le64(m + off + 16);
            if (l <= len - off - SNAP_HEADER_SIZE) {
                uint64_t sum = XXH3_64bits_withSeed(m + off, 24, XXH3_64bits(m + off + SNAP_HEADER_SIZE, l));
                memcpy(m + off + 24, &sum, 8);
            }
            break;
        }
        default: /* a payload byte */
            if (off + SNAP_HEADER_SIZE < len) {
                size_t at = off + SNAP_HEADER_SIZE + (size_t)random() % (len - off - SNAP_HEADER_SIZE);
                m[at] ^= (uint8_t)(1 + random() % 255);
            }
        }
        m = realloc(m, n ? n : 1); /* exact size, for ASan */
        char err[256] = "";
        assert_int_equal(ftruncate(fd, 0), 0);
        assert_int_equal(pwrite(fd, m, n, 0), (ssize_t)n);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        struct snap_stream *st = snap_stream_open(fd, 64 * 1024, 0, err, sizeof err);
        int r = -1;
        size_t count = 0;
        if (st) {
            r = drain(st, m, n, &count, err, sizeof err);
            snap_stream_close(st);
        }
        if (r == 0) {
            accepted++;
        } else {
            assert_int_equal(r, -1);
            assert_true(err[0] != 0);
            refused_++;
        }
        struct snap_reader *rd = snap_reader_mem(m, n, err, sizeof err);
        if (rd) assert_int_equal(r, 0);
        if (r == 0 && lseek(fd, 0, SEEK_CUR) == (off_t)n && !rd)
            fail_msg("mutation %d: the stream reader took what the memory reader refuses: %s", i, err);
        snap_reader_close(rd);
        if (i % 50 == 0) { /* the same through a pipe: the same verdict */
            struct feed f;
            int rfd = start_feed(&f, m, n, false);
            st = snap_stream_open(rfd, 64 * 1024, 2000, err, sizeof err);
            int r2 = -1;
            if (st) {
                r2 = drain(st, m, n, &count, err, sizeof err);
                snap_stream_close(st);
            }
            assert_int_equal(r2, r);
            end_feed(&f, rfd);
        }
        free(m);
    }
    close(fd);
    print_message("%u mutated streams read to their end, %u refused\n", accepted, refused_);
    assert_true(accepted > 50 && refused_ > 1000);
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
        cmocka_unit_test_setup_teardown(test_pages_written_meanwhile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_sections_verified, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pages_written_direct, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_page_write_is_reported, setup, teardown),
        cmocka_unit_test(test_streams),
        cmocka_unit_test_setup_teardown(test_hostile_images, setup, teardown),
        cmocka_unit_test(test_too_many_sections),
        cmocka_unit_test(test_cursor_stops_at_the_end),
        cmocka_unit_test(test_random_mutations),
        cmocka_unit_test(test_stream_reader_round_trip),
        cmocka_unit_test(test_stream_reader_truncated),
        cmocka_unit_test(test_stream_reader_corruption),
        cmocka_unit_test(test_stream_reader_max_section),
        cmocka_unit_test(test_stream_reader_timeout),
        cmocka_unit_test_setup_teardown(test_stream_reader_bad_headers, setup, teardown),
        cmocka_unit_test(test_stream_reader_too_many_sections),
        cmocka_unit_test(test_stream_reader_mutations),
    };
    signal(SIGPIPE, SIG_IGN); /* a peer writing to a reader that gave up gets EPIPE */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
