/* Floating-point state across context switches and signals, for
 * tests/e2e/test_jit.py.
 *
 *   fpu PROCS ITERS        PROCS processes, each a chain of ITERS double and
 *                          float operations with its own constants, yielding
 *                          the cpu every 64 steps, while a 1 kHz timer
 *                          signal runs a handler that does floating point of
 *                          its own. The kernel saves a process's f registers
 *                          only if sstatus.FS says they are dirty, so an
 *                          engine that forgets to mark FS dirty shows up as
 *                          one process's values in another's chain.
 *   fpu model PROCS ITERS  (host) the CHECK line the guest must print
 *
 * Built with -ffp-contract=off on both sides: plain IEEE add, mul, div and
 * sqrt, the same on the host. */
#define _GNU_SOURCE
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sched.h>

static volatile double sig_acc = 1.0;
static volatile unsigned signals;

static void on_alarm(int sig) {
    (void)sig;
    /* Floating point in the handler: its registers are not the process's. */
    double x = sig_acc;
    for (int i = 0; i < 50; i++) x = x * 0.999 + 1.0 / (x + 3.0);
    sig_acc = x;
    signals++;
}

static uint64_t chain(unsigned id, unsigned iters, int yield) {
    double a = 1.0 + id, b = 0.5 / (id + 1), c = 3.0;
    float f = (float)id + 0.25f, g = 1.0f;
    for (unsigned i = 0; i < iters; i++) {
        a = a * 0.9999 + b;
        b = b + 1.0 / (a + (double)i);
        c = sqrt(c + a * 1e-3);
        f = f * 0.999f + 1.0f / (g + 2.0f);
        g = g + f * 1e-4f;
        if (yield && i % 64 == 63) sched_yield();
    }
    uint64_t h = 0, v;
    double ds[3] = {a, b, c};
    for (int k = 0; k < 3; k++) {
        memcpy(&v, &ds[k], 8);
        h = h * 0x100000001b3ull ^ v;
    }
    uint32_t w;
    memcpy(&w, &f, 4);
    h = h * 0x100000001b3ull ^ w;
    memcpy(&w, &g, 4);
    return h * 0x100000001b3ull ^ w;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int a = 1, model = 0;
    if (a < argc && !strcmp(argv[a], "model")) {
        model = 1;
        a++;
    }
    if (argc - a != 2) {
        fprintf(stderr, "usage: fpu [model] PROCS ITERS\n");
        return 2;
    }
    unsigned procs = (unsigned)atoi(argv[a]), iters = (unsigned)atoi(argv[a + 1]);
    uint64_t sum = 0;
    if (model) {
        for (unsigned p = 0; p < procs; p++) sum ^= chain(p, iters, 0) * (2 * p + 1);
        printf("CHECK fpu 0x%016llx\n", (unsigned long long)sum);
        return 0;
    }
    int fds[2];
    if (pipe(fds) != 0) return 2;
    for (unsigned p = 0; p < procs; p++) {
        if (fork() == 0) {
            signal(SIGALRM, on_alarm);
            struct itimerval it = {{0, 1000}, {0, 1000}};
            setitimer(ITIMER_REAL, &it, NULL);
            uint64_t r[3] = {p, chain(p, iters, 1), signals};
            if (write(fds[1], r, sizeof r) != sizeof r) _exit(1);
            _exit(0);
        }
    }
    close(fds[1]);
    unsigned got = 0, sigs = 0;
    uint64_t r[3];
    while (read(fds[0], r, sizeof r) == sizeof r) {
        sum ^= r[1] * (2 * r[0] + 1);
        sigs += (unsigned)r[2];
        got++;
    }
    int bad = 0, st;
    while (wait(&st) > 0) bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    printf("fpu: %u processes, %u timer signals handled\n", got, sigs);
    printf("CHECK fpu 0x%016llx\n", (unsigned long long)sum);
    if (got != procs || bad) printf("fpu: FAIL (%u of %u processes reported)\n", got, procs);
    else printf("fpu: PASS\n");
    return got != procs || bad;
}
