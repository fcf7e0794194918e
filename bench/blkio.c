/* Guest side of bench/blk.py: disk throughput and latency on a raw block
 * device with O_DIRECT (no guest page cache), one request at a time, timed
 * inside the guest with CLOCK_MONOTONIC. One process does all the I/O, so
 * the figures are not swamped by the fork/exec cost of a shell loop.
 *   blkio DEVICE SEQ_MIB RANDOM_OPS
 * prints "seq-write MB/s", "seq-read MB/s", "rand-read IOPS", "rand-write IOPS".
 * Built static for riscv64 by bench/blk.py. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_random(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: blkio DEVICE SEQ_MIB RANDOM_OPS\n");
        return 2;
    }
    int fd = open(argv[1], O_RDWR | O_DIRECT);
    if (fd < 0) die(argv[1]);
    long mib = atol(argv[2]), ops = atol(argv[3]);
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < (off_t)mib << 20) {
        fprintf(stderr, "device too small\n");
        return 1;
    }
    uint8_t *buf;
    if (posix_memalign((void **)&buf, 4096, 1 << 20)) die("posix_memalign");
    for (int i = 0; i < 1 << 20; i++) buf[i] = (uint8_t)(i * 7 + 3);

    double t = now();
    for (long i = 0; i < mib; i++)
        if (pwrite(fd, buf, 1 << 20, (off_t)i << 20) != 1 << 20) die("write");
    printf("seq-write %.2f MB/s\n", mib * 1.048576 / (now() - t));
    t = now();
    for (long i = 0; i < mib; i++)
        if (pread(fd, buf, 1 << 20, (off_t)i << 20) != 1 << 20) die("read");
    printf("seq-read %.2f MB/s\n", mib * 1.048576 / (now() - t));

    uint64_t blocks = (uint64_t)size / 4096;
    t = now();
    for (long i = 0; i < ops; i++)
        if (pread(fd, buf, 4096, (off_t)(next_random() % blocks) * 4096) != 4096) die("random read");
    printf("rand-read %.0f IOPS\n", ops / (now() - t));
    t = now();
    for (long i = 0; i < ops; i++)
        if (pwrite(fd, buf, 4096, (off_t)(next_random() % blocks) * 4096) != 4096) die("random write");
    printf("rand-write %.0f IOPS\n", ops / (now() - t));
    return 0;
}
