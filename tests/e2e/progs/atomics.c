/* Shared-memory synchronisation on several harts, for tests/e2e/test_jit.py.
 *
 *   atomics THREADS ITERS MESSAGES PETERSON
 *
 * THREADS threads, thread i pinned to cpu i, each does ITERS of:
 *   - AMOs: atomic_fetch_add on a 64-bit and a 32-bit counter (amoadd.d/.w),
 *     atomic_fetch_max/min and fetch_or/xor (amomax, amominu, amoor, amoxor);
 *   - LR/SC: an increment through a C11 compare-exchange loop (lr.d/sc.d
 *     built by the compiler) and one through a hand-written lr.w/sc.w loop;
 *   - a spin lock taken with amoswap.w.aq, released with amoswap.w.rl,
 *     guarding a plain (non-atomic) counter and a pair of plain words;
 * then, on thread pairs, release/acquire message passing (thread 2p sends
 * MESSAGES messages of 8 plain words to thread 2p+1 through a 4096-slot
 * ring, every word checked), and on threads 0 and 1 Peterson's lock
 * (seq_cst loads and stores: it needs store->load ordering) around a plain
 * counter, PETERSON times per thread. Each phase prints its time; at the
 * end the counts are printed, which the test compares with exact values. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 8

static unsigned nthreads, iters, nmsgs, npeterson;
static double t0;

static _Atomic uint64_t add64, orbits, xorsum;
static _Atomic uint32_t add32;
static _Atomic int64_t maxv;
static _Atomic uint64_t minv = UINT64_MAX;
static _Atomic uint64_t cas64;
static uint32_t lrsc32; /* only touched by the hand-written lr.w/sc.w loop */
static uint32_t lock_word;
static uint64_t locked_count, locked_a, locked_b; /* plain: guarded by lock_word */
static _Atomic unsigned lock_torn;

static pthread_barrier_t barrier;

static double now(void) {
    /* The system call, not the vDSO: the guest kernel's (Linux 6.1)
     * vDSO clock_gettime dereferences NULL when it finds its seqlock
     * taken (cpu_relax() reads a kernel static key), which happens with
     * several harts. */
    struct timespec ts;
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void phase(const char *what) {
    double t = now();
    printf("atomics: %s done in %.2fs\n", what, t - t0);
    t0 = t;
}

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        perror("sched_setaffinity");
        exit(2);
    }
}

static inline void lrsc_inc32(uint32_t *p) {
    uint32_t tmp, fail;
    __asm__ volatile("1: lr.w %0, (%2)\n"
                     "   addiw %0, %0, 1\n"
                     "   sc.w %1, %0, (%2)\n"
                     "   bnez %1, 1b\n"
                     : "=&r"(tmp), "=&r"(fail)
                     : "r"(p)
                     : "memory");
}

static inline void spin_lock(uint32_t *l) {
    uint32_t old;
    for (;;) {
        __asm__ volatile("amoswap.w.aq %0, %2, (%1)" : "=r"(old) : "r"(l), "r"(1u) : "memory");
        if (!old) return;
        while (__atomic_load_n(l, __ATOMIC_RELAXED)) {
        }
    }
}
static inline void spin_unlock(uint32_t *l) {
    uint32_t old;
    __asm__ volatile("amoswap.w.rl %0, zero, (%1)" : "=r"(old) : "r"(l) : "memory");
}

/* ---- message passing: a single-producer single-consumer ring from
 * thread 2p to thread 2p+1. The producer fills a slot with plain stores and
 * publishes it by storing head with release; the consumer reads head with
 * acquire, checks the slot's words, and frees it by storing tail with
 * release (which the producer reads with acquire before reusing it). */
#define RING_SLOTS 4096
struct ring {
    _Alignas(64) _Atomic unsigned head; /* messages published */
    _Alignas(64) _Atomic unsigned tail; /* messages consumed */
    _Alignas(64) uint64_t slot[RING_SLOTS][8];
};
static struct ring rings[MAX_THREADS / 2];
static _Atomic unsigned mp_ok, mp_bad;

static uint64_t payload(unsigned from, unsigned seq, unsigned k) {
    return ((uint64_t)from << 48) ^ ((uint64_t)seq << 8) ^ k ^ 0x5555000000000000ull;
}

/* ---- Peterson's lock between threads 2p and 2p+1 ---- */
struct peterson {
    _Alignas(64) _Atomic int flag[2];
    _Alignas(64) _Atomic int turn;
    _Alignas(64) uint64_t count; /* plain */
};
static struct peterson pet[1];
static _Atomic unsigned pet_waited; /* entries that found the other thread inside or entering: contention */

static void *worker(void *arg) {
    unsigned id = (unsigned)(uintptr_t)arg;
    pin((int)id);
    pthread_barrier_wait(&barrier);
    if (id == 0) t0 = now();
    for (unsigned i = 0; i < iters; i++) {
        atomic_fetch_add(&add64, 1);
        atomic_fetch_add_explicit(&add32, 1, memory_order_relaxed);
        int64_t v = (int64_t)(id * iters + i) * (id & 1 ? -1 : 1);
        int64_t ignored;
        __asm__ volatile("amomax.d %0, %2, (%1)" : "=r"(ignored) : "r"(&maxv), "r"(v) : "memory");
        __asm__ volatile("amominu.d %0, %2, (%1)" : "=r"(ignored) : "r"(&minv), "r"((uint64_t)(id * iters + i + 7))
                         : "memory");
        atomic_fetch_or_explicit(&orbits, 1ull << ((id * 7 + i) % 64), memory_order_relaxed);
        atomic_fetch_xor_explicit(&xorsum, (uint64_t)(id + 1) << (i % 57), memory_order_relaxed);

        uint64_t old = atomic_load_explicit(&cas64, memory_order_relaxed);
        while (!atomic_compare_exchange_weak(&cas64, &old, old + 1)) {
        }
        lrsc_inc32(&lrsc32);

        spin_lock(&lock_word);
        uint64_t a = locked_a, b = locked_b;
        if (a != b) atomic_fetch_add(&lock_torn, 1);
        locked_count++;
        locked_a = a + 1;
        locked_b = b + 1;
        spin_unlock(&lock_word);
    }
    pthread_barrier_wait(&barrier);
    if (id == 0) phase("AMO, LR/SC and lock phase");

    /* Message passing on pairs. */
    if (id / 2 < nthreads / 2) {
        struct ring *q = &rings[id / 2];
        unsigned ok = 0, bad = 0;
        if ((id & 1) == 0) {
            for (unsigned m = 0; m < nmsgs; m++) {
                while (m - atomic_load_explicit(&q->tail, memory_order_acquire) >= RING_SLOTS) {
                }
                for (unsigned k = 0; k < 8; k++) q->slot[m % RING_SLOTS][k] = payload(id, m, k);
                atomic_store_explicit(&q->head, m + 1, memory_order_release);
            }
        } else {
            for (unsigned m = 0; m < nmsgs; m++) {
                while (atomic_load_explicit(&q->head, memory_order_acquire) == m) {
                }
                unsigned wrong = 0;
                for (unsigned k = 0; k < 8; k++) wrong |= q->slot[m % RING_SLOTS][k] != payload(id - 1, m, k);
                atomic_store_explicit(&q->tail, m + 1, memory_order_release);
                if (wrong) bad++;
                else ok++;
            }
            atomic_fetch_add(&mp_ok, ok);
            atomic_fetch_add(&mp_bad, bad);
        }
    }
    pthread_barrier_wait(&barrier);
    if (id == 0) phase("message passing phase");

    /* Peterson on threads 0 and 1 (the others wait in the barrier, so
     * their harts idle and these two get the host's cores). */
    if (id < 2) {
        struct peterson *p = &pet[0];
        int me = (int)id, other = 1 - me;
        for (unsigned i = 0; i < npeterson; i++) {
            atomic_store(&p->flag[me], 1);
            atomic_store(&p->turn, other);
            int waited = 0;
            while (atomic_load(&p->flag[other]) && atomic_load(&p->turn) == other) waited = 1;
            if (waited) atomic_fetch_add_explicit(&pet_waited, 1, memory_order_relaxed);
            p->count++;
            atomic_store_explicit(&p->flag[me], 0, memory_order_release);
        }
    }
    pthread_barrier_wait(&barrier);
    if (id == 0) phase("Peterson phase");
    return NULL;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc != 5) {
        fprintf(stderr, "usage: atomics THREADS ITERS MESSAGES PETERSON\n");
        return 2;
    }
    nthreads = (unsigned)atoi(argv[1]);
    iters = (unsigned)atoi(argv[2]);
    nmsgs = (unsigned)atoi(argv[3]);
    npeterson = (unsigned)atoi(argv[4]);
    if (nthreads < 2 || nthreads > MAX_THREADS || iters < 64) return 2;
    atomic_store(&maxv, INT64_MIN);
    pthread_barrier_init(&barrier, NULL, nthreads);
    pthread_t t[MAX_THREADS];
    for (unsigned i = 1; i < nthreads; i++) pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i);
    worker((void *)0);
    for (unsigned i = 1; i < nthreads; i++) pthread_join(t[i], NULL);

    uint64_t pet_total = pet[0].count;
    printf("amoadd.d %llu\n", (unsigned long long)add64);
    printf("amoadd.w %u\n", (unsigned)add32);
    printf("amomax %lld\n", (long long)maxv);
    printf("amominu %llu\n", (unsigned long long)minv);
    printf("amoor 0x%016llx\n", (unsigned long long)orbits);
    printf("amoxor 0x%016llx\n", (unsigned long long)xorsum);
    printf("cas %llu\n", (unsigned long long)cas64);
    printf("lrsc %u\n", lrsc32);
    printf("lock %llu %llu %llu torn %u\n", (unsigned long long)locked_count, (unsigned long long)locked_a,
           (unsigned long long)locked_b, (unsigned)lock_torn);
    printf("messages %u bad %u\n", (unsigned)mp_ok, (unsigned)mp_bad);
    printf("peterson %llu (%u entries waited)\n", (unsigned long long)pet_total, (unsigned)pet_waited);
    return 0;
}
