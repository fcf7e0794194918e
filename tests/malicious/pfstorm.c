/* pfstorm: the Linux-side attacker (a static riscv64 program run as the
 * guest's /init workload). Forever, round after round:
 *   - a page-fault storm: a fresh MiB-sized anonymous mapping written page
 *     by page, half of it dropped with MADV_DONTNEED and faulted in again,
 *     then unmapped, so the guest kernel frees it and free page reporting
 *     hands it back to the monitor, which must back it anew next round;
 *   - an sfence.vma storm: one page's protection flipped back and forth;
 *   - a fork whose child writes a little and exits (page tables copied,
 *     address spaces switched: satp writes);
 *   - a tight loop of system calls.
 * Prints "pfstorm: attacking" once, then a line every 64 rounds. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 32;
    size_t len = mib << 20;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    printf("pfstorm: attacking with %zu MiB\n", mib);
    fflush(stdout);
    for (unsigned long round = 1;; round++) {
        char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            perror("pfstorm: mmap");
            sleep(1);
            continue;
        }
        for (size_t off = 0; off < len; off += page) p[off] = (char)round;
        madvise(p, len / 2, MADV_DONTNEED);
        for (size_t off = 0; off < len / 2; off += page) p[off] = 1;
        for (int i = 0; i < 256; i++) mprotect(p, page, (i & 1) ? PROT_READ | PROT_WRITE : PROT_READ);
        pid_t child = fork();
        if (child == 0) {
            for (size_t off = 0; off < len / 8; off += page) p[off] = 2; /* copy-on-write */
            _exit(0);
        }
        if (child > 0) waitpid(child, NULL, 0);
        munmap(p, len);
        for (int i = 0; i < 1000; i++) syscall(SYS_getppid);
        if (round % 64 == 0) {
            printf("pfstorm: round %lu\n", round);
            fflush(stdout);
        }
    }
}
