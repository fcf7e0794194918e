/* Self-modifying code, for tests/e2e/test_jit.py.
 *
 *   smc single                one hart: code rewritten in place, patched,
 *                             aliased, re-laid out, across a page boundary,
 *                             remapped, and after fork
 *   smc cross READERS ROUNDS  thread A (cpu 0) writes a new function each
 *                             round, flushes every hart's instruction cache
 *                             (riscv_flush_icache), publishes; READERS
 *                             threads on cpus 1.. run it and check it
 *   smc crosshot READERS ROUNDS  the same, but the readers call the code in
 *                             a tight loop all the time, also while A is
 *                             rewriting it (they only check what they get
 *                             after a publication)
 *   smc model MODE ARGS...    (host) print the CHECK lines MODE must print
 *
 * Every generated function is also evaluated by a C model; the guest checks
 * each result and prints "CHECK name checksum" lines (checksums of the
 * results) and a final "smc MODE: PASS" or "smc MODE: FAIL". In the cross
 * modes a reader stuck for 20 s, or a fault, is reported (where, what the
 * code is) as a FAIL instead of hanging or killing the process silently. */
#include "rv.h"

#ifdef __riscv
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <signal.h>
#include <time.h>
#include <ucontext.h>
#endif

static int model; /* only evaluate the models (the host's run) */

/* ---- a random straight-line function of a0 ---- */

struct fn_desc {
    int32_t m, k1, k2;
    int n;
    int16_t x[8];
    uint8_t op[8];
};
#define DESC_MAX_BYTES 80

static void desc_random(struct fn_desc *d, uint64_t *s) {
    d->m = (int32_t)(rng_next(s) | 1);
    d->k1 = (int32_t)rng_next(s);
    d->k2 = (int32_t)rng_next(s);
    d->n = (int)(rng_next(s) % 9);
    for (int i = 0; i < d->n; i++) {
        d->x[i] = (int16_t)sext(rng_next(s) & 0xfff, 12);
        d->op[i] = (uint8_t)(rng_next(s) % 3);
    }
}

static uint64_t desc_eval(const struct fn_desc *d, uint64_t a) {
    a *= (uint64_t)(int64_t)d->m;
    a += (uint64_t)(int64_t)d->k1;
    for (int i = 0; i < d->n; i++) {
        if (d->op[i] == 0) a += (uint64_t)(int64_t)d->x[i];
        else if (d->op[i] == 1) a ^= (uint64_t)(int64_t)d->x[i];
        else a <<= (d->x[i] & 7);
    }
    return a ^ (uint64_t)(int64_t)d->k2;
}

/* Returns the end of the code. */
static uint8_t *desc_emit(const struct fn_desc *d, uint8_t *p) {
    struct emit e = {p};
    emit_li32(&e, T0, d->m);
    emit32(&e, MUL(A0, A0, T0));
    emit_li32(&e, T1, d->k1);
    emit32(&e, ADD(A0, A0, T1));
    for (int i = 0; i < d->n; i++) {
        if (d->op[i] == 0) emit32(&e, ADDI(A0, A0, d->x[i]));
        else if (d->op[i] == 1) emit32(&e, XORI(A0, A0, d->x[i]));
        else emit32(&e, SLLI(A0, A0, d->x[i] & 7));
    }
    emit_li32(&e, T1, d->k2);
    emit32(&e, XOR(A0, A0, T1));
    emit32(&e, RET);
    return e.p;
}

/* Where round i puts its code in a two-page area: the same few places over
 * and over (so old translations are there to be wrongly reused), at
 * 2-byte offsets (4-byte instructions at odd parcels), sometimes across the
 * page boundary. */
static unsigned code_offset(unsigned i) {
    if (i % 7 == 0) return 4096 - 10 - 2 * (i % 13);
    return 2 * (i % 3);
}

static void check(const char *what, unsigned i, uint64_t got, uint64_t want) {
    if (got != want)
        fail("%s: round %u: got 0x%016llx, expected 0x%016llx", what, i, (unsigned long long)got,
             (unsigned long long)want);
}

static void print_check(const char *name, uint64_t sum) {
    printf("CHECK %s 0x%016llx\n", name, (unsigned long long)sum);
}

#ifdef __riscv
static void *map_rwx(size_t len) {
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap rwx");
        exit(2);
    }
    return p;
}
static uint64_t call(void *code, uint64_t arg) { return ((fn1)code)(arg); }
#endif

/* ---- one hart ---- */

/* A function rewritten in place: new constants, new length, new offset. */
static void check_rewrite(void) {
    uint64_t s = 1, sum = 0;
#ifdef __riscv
    uint8_t *page = model ? NULL : map_rwx(8192);
#endif
    for (unsigned i = 0; i < 6000; i++) {
        struct fn_desc d;
        desc_random(&d, &s);
        uint64_t arg = i * 0x9e3779b97f4a7c15ull, want = desc_eval(&d, arg), got = want;
#ifdef __riscv
        if (!model) {
            uint8_t *code = page + code_offset(i);
            uint8_t *end = desc_emit(&d, code);
            __builtin___clear_cache((char *)code, (char *)end);
            got = call(code, arg);
            check("rewrite", i, got, want);
        }
#endif
        sum = mix(sum, got);
    }
    print_check("rewrite", sum);
}

/* A hot loop whose body's immediate is patched (one word) between runs. */
static void check_patch(void) {
    uint64_t s = 2, sum = 0;
#ifdef __riscv
    uint32_t *w = model ? NULL : map_rwx(4096);
    if (!model) {
        w[0] = ADDI(A2, ZERO, 0);
        w[1] = ADDI(A2, A2, 0); /* patched */
        w[2] = ADDI(A0, A0, -1);
        w[3] = BNE(A0, ZERO, -8);
        w[4] = ADDI(A0, A2, 0);
        w[5] = RET;
        __builtin___clear_cache((char *)w, (char *)(w + 6));
    }
#endif
    for (unsigned i = 0; i < 3000; i++) {
        int32_t c = (int32_t)sext(rng_next(&s) & 0xfff, 12);
        uint64_t n = 200 + i % 300, want = n * (uint64_t)(int64_t)c, got = want;
#ifdef __riscv
        if (!model) {
            ((volatile uint32_t *)w)[1] = ADDI(A2, A2, c);
            __builtin___clear_cache((char *)&w[1], (char *)&w[2]);
            got = call(w, n);
            check("patch", i, got, want);
        }
#endif
        sum = mix(sum, got);
    }
    print_check("patch", sum);
}

/* Two views of one page (W^X, as JITs do): written through the writable
 * view, run through the executable one at another address. */
static void check_alias(void) {
    uint64_t s = 3, sum = 0;
#ifdef __riscv
    uint8_t *rw = NULL, *rx = NULL;
    if (!model) {
        int fd = memfd_create("smc-alias", 0);
        if (fd < 0) {
            char path[] = "/tmp/smc-alias-XXXXXX";
            fd = mkstemp(path);
            unlink(path);
        }
        if (fd < 0 || ftruncate(fd, 8192) != 0) {
            perror("alias file");
            exit(2);
        }
        rw = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        rx = mmap(NULL, 8192, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
        if (rw == MAP_FAILED || rx == MAP_FAILED) {
            perror("alias mmap");
            exit(2);
        }
    }
#endif
    for (unsigned i = 0; i < 3000; i++) {
        struct fn_desc d;
        desc_random(&d, &s);
        uint64_t arg = ~(uint64_t)i * 0x2545f4914f6cdd1dull, want = desc_eval(&d, arg), got = want;
#ifdef __riscv
        if (!model) {
            unsigned off = code_offset(i);
            uint8_t *end = desc_emit(&d, rw + off);
            __builtin___clear_cache((char *)rx + off, (char *)rx + (end - rw));
            got = call(rx + off, arg);
            check("alias", i, got, want);
        }
#endif
        sum = mix(sum, got);
    }
    print_check("alias", sum);
}

/* Instruction boundaries move: 4-byte instructions become two compressed
 * ones and back, a 4-byte instruction starts where a 2-byte one was. */
static void check_rvc(void) {
    uint64_t s = 4, sum = 0;
#ifdef __riscv
    uint8_t *page = model ? NULL : map_rwx(4096);
#endif
    for (unsigned i = 0; i < 6000; i++) {
        int a = (int)sext(rng_next(&s) & 0x3f, 6), b = (int)sext(rng_next(&s) & 0x3f, 6);
        int c = (int)sext(rng_next(&s) & 0x3f, 6), big = (int)sext(rng_next(&s) & 0xfff, 12);
        uint64_t want;
        uint8_t buf[8];
        struct emit e = {buf};
        switch (i % 3) {
        case 0: /* addi(4) c.addi(2) c.ret(2) */
            emit32(&e, ADDI(A0, ZERO, big));
            emit16(&e, C_ADDI(A0, a));
            emit16(&e, C_RET);
            want = (uint64_t)(int64_t)(big + a);
            break;
        case 1: /* c.li(2) addi(4) c.ret(2) */
            emit16(&e, C_LI(A0, a));
            emit32(&e, ADDI(A0, A0, big));
            emit16(&e, C_RET);
            want = (uint64_t)(int64_t)(a + big);
            break;
        default: /* c.li c.addi c.addi c.ret */
            emit16(&e, C_LI(A0, a));
            emit16(&e, C_ADDI(A0, b));
            emit16(&e, C_ADDI(A0, c));
            emit16(&e, C_RET);
            want = (uint64_t)(int64_t)(a + b + c);
            break;
        }
        uint64_t got = want;
#ifdef __riscv
        if (!model) {
            uint8_t *code = page + 2 * ((i / 3) % 2);
            memcpy(code, buf, sizeof buf);
            __builtin___clear_cache((char *)code, (char *)code + sizeof buf);
            got = call(code, 0);
            check("rvc", i, got, want);
        }
#endif
        sum = mix(sum, got);
    }
    print_check("rvc", sum);
}

/* A 4-byte instruction that straddles two pages; each round rewrites one
 * half of it (only one of the pages changes) or the instruction after it. */
static void check_crosspage(void) {
    uint64_t s = 5, sum = 0;
    int xor_op = 0;
    int32_t k = 1, k2 = 2;
#ifdef __riscv
    uint8_t *page = model ? NULL : map_rwx(8192);
    uint8_t *q = page ? page + 4096 - 2 : NULL;
#endif
    for (unsigned i = 0; i < 3000; i++) {
        unsigned what = i % 3;
        if (what == 0) k = (int32_t)sext(rng_next(&s) & 0xfff, 12);
        else if (what == 1) xor_op = !xor_op;
        else k2 = (int32_t)sext(rng_next(&s) & 0xfff, 12);
        uint32_t first = xor_op ? XORI(A0, A0, k) : ADDI(A0, A0, k);
        uint64_t arg = rng_next(&s);
        uint64_t want = (xor_op ? arg ^ (uint64_t)(int64_t)k : arg + (uint64_t)(int64_t)k) + (uint64_t)(int64_t)k2;
        uint64_t got = want;
#ifdef __riscv
        if (!model) {
            if (i == 0) {
                struct emit e = {q};
                emit32(&e, first);
                emit32(&e, ADDI(A0, A0, k2));
                emit32(&e, RET);
            } else if (what == 0) {
                uint16_t hi = (uint16_t)(first >> 16); /* the immediate: the second page only */
                memcpy(page + 4096, &hi, 2);
            } else if (what == 1) {
                uint16_t lo = (uint16_t)first; /* funct3: the first page only */
                memcpy(page + 4094, &lo, 2);
            } else {
                uint32_t w = ADDI(A0, A0, k2);
                memcpy(q + 4, &w, 4);
            }
            __builtin___clear_cache((char *)q, (char *)q + 12);
            got = call(q, arg);
            check("crosspage", i, got, want);
        }
#endif
        sum = mix(sum, got);
    }
    print_check("crosspage", sum);
}

/* The same virtual page, new frames: mmap, write, mprotect to RX, run,
 * back to RW, rewrite, run, munmap; again at the same address. */
static void check_remap(void) {
    uint64_t s = 6, sum = 0;
    for (unsigned i = 0; i < 300; i++) {
        struct fn_desc d1, d2;
        desc_random(&d1, &s);
        desc_random(&d2, &s);
        uint64_t arg = i + 1, want1 = desc_eval(&d1, arg), want2 = desc_eval(&d2, arg), got1 = want1, got2 = want2;
#ifdef __riscv
        if (!model) {
            uint8_t *want_at = (uint8_t *)0x3000000000ull;
            uint8_t *p = mmap(want_at, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                              -1, 0);
            if (p != want_at) {
                fail("remap: mmap at %p gave %p (errno %d)", want_at, p, errno);
                break;
            }
            unsigned off = 2 * (i % 4);
            uint8_t *end = desc_emit(&d1, p + off);
            mprotect(p, 4096, PROT_READ | PROT_EXEC);
            __builtin___clear_cache((char *)p + off, (char *)end);
            got1 = call(p + off, arg);
            check("remap (first)", i, got1, want1);
            mprotect(p, 4096, PROT_READ | PROT_WRITE);
            end = desc_emit(&d2, p + off);
            mprotect(p, 4096, PROT_READ | PROT_EXEC);
            __builtin___clear_cache((char *)p + off, (char *)end);
            got2 = call(p + off, arg);
            check("remap (second)", i, got2, want2);
            munmap(p, 4096);
        }
#endif
        sum = mix(mix(sum, got1), got2);
    }
    print_check("remap", sum);
}

/* After fork the code page is shared copy-on-write: the child rewrites its
 * copy and must run its own code, the parent still runs the old one. */
static void check_fork(void) {
    uint64_t s = 7, sum = 0;
#ifdef __riscv
    uint8_t *page = model ? NULL : map_rwx(4096);
#endif
    for (unsigned i = 0; i < 12; i++) {
        struct fn_desc d1, d2, d3;
        desc_random(&d1, &s);
        desc_random(&d2, &s);
        desc_random(&d3, &s);
        uint64_t arg = 0x1234567 * (i + 1);
        uint64_t w1 = desc_eval(&d1, arg), w2 = desc_eval(&d2, arg), w3 = desc_eval(&d3, arg);
        uint64_t got[5] = {w1, w1, w2, w1, w3};
#ifdef __riscv
        if (!model) {
            uint8_t *end = desc_emit(&d1, page);
            __builtin___clear_cache((char *)page, (char *)end);
            got[0] = call(page, arg);
            int fds[2];
            if (pipe(fds) != 0) exit(2);
            pid_t pid = fork();
            if (pid == 0) {
                uint64_t r[2];
                r[0] = call(page, arg);
                end = desc_emit(&d2, page);
                __builtin___clear_cache((char *)page, (char *)end);
                r[1] = call(page, arg);
                _exit(write(fds[1], r, sizeof r) == sizeof r ? 0 : 1);
            }
            close(fds[1]);
            if (read(fds[0], &got[1], 16) != 16) fail("fork: round %u: no answer from the child", i);
            close(fds[0]);
            int status;
            waitpid(pid, &status, 0);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("fork: round %u: child status 0x%x", i, status);
            got[3] = call(page, arg);
            end = desc_emit(&d3, page);
            __builtin___clear_cache((char *)page, (char *)end);
            got[4] = call(page, arg);
            static const char *names[5] = {"fork (parent before)", "fork (child, inherited)", "fork (child, rewritten)",
                                           "fork (parent after)", "fork (parent rewritten)"};
            uint64_t want[5] = {w1, w1, w2, w1, w3};
            for (int k = 0; k < 5; k++) check(names[k], i, got[k], want[k]);
        }
#endif
        for (int k = 0; k < 5; k++) sum = mix(sum, got[k]);
    }
    print_check("fork", sum);
}

/* ---- across harts ---- */

/* crosshot's function: w0 sets a0, w1 is a nop or jumps to the ret at w8,
 * w2..w7 add. Whatever mix of old and new words a reader meets while it is
 * being rewritten is still a function that returns. */
struct hot_desc {
    int32_t k, c[6];
    int jump;
};
static void hot_random(struct hot_desc *h, uint64_t *s) {
    h->k = (int32_t)sext(rng_next(s) & 0xfff, 12);
    for (int i = 0; i < 6; i++) h->c[i] = (int32_t)sext(rng_next(s) & 0xfff, 12);
    h->jump = (int)(rng_next(s) & 1);
}
static uint64_t hot_eval(const struct hot_desc *h) {
    int64_t a = h->k;
    if (!h->jump)
        for (int i = 0; i < 6; i++) a += h->c[i];
    return (uint64_t)a;
}

#define MAX_READERS 7
static unsigned nreaders, rounds;
static int hot;
static uint64_t reader_sum[MAX_READERS], reader_calls[MAX_READERS];

#ifdef __riscv
static uint8_t *xcode;                 /* the shared code */
static struct fn_desc *xdesc;          /* cross: round v's function */
static unsigned *xoff;                 /* cross: and where it is */
static struct hot_desc *xhot;          /* crosshot: round v's function */
static _Atomic unsigned version, acks; /* A publishes rounds; readers count the ones they checked */

static volatile uint64_t live_calls[MAX_READERS]; /* for the watchdog */
static pthread_t reader_thread[MAX_READERS];

/* SIGUSR1 from the watchdog: where was this reader? */
static void where(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    (void)si;
    ucontext_t *uc = ucv;
    uint64_t pc = uc->uc_mcontext.__gregs[REG_PC];
    char buf[160];
    int n = snprintf(buf, sizeof buf, "watchdog: a reader is at pc %#llx (code%+lld), ra code%+lld, a0 %#llx\n",
                     (unsigned long long)pc, (long long)(pc - (uint64_t)(uintptr_t)xcode),
                     (long long)(uc->uc_mcontext.__gregs[REG_RA] - (uint64_t)(uintptr_t)xcode),
                     (unsigned long long)uc->uc_mcontext.__gregs[REG_A0]);
    if (write(1, buf, (size_t)n) < 0) _exit(4);
}

/* A fault in the cross modes: say where, then fail. */
static void crashed(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    uint64_t pc = uc->uc_mcontext.__gregs[REG_PC], base = (uint64_t)(uintptr_t)xcode;
    char buf[400];
    int n = snprintf(buf, sizeof buf,
                     "crashed: signal %d (code %d) at pc %#llx (code%+lld), address %#llx, ra %#llx, a0 %#llx; "
                     "the code:",
                     sig, si->si_code, (unsigned long long)pc, (long long)(pc - base),
                     (unsigned long long)(uintptr_t)si->si_addr, (unsigned long long)uc->uc_mcontext.__gregs[REG_RA],
                     (unsigned long long)uc->uc_mcontext.__gregs[REG_A0]);
    for (int i = 0; i < 9 && n < (int)sizeof buf - 12; i++)
        n += snprintf(buf + n, sizeof buf - n, " %08x", ((uint32_t *)xcode)[i]);
    n += snprintf(buf + n, sizeof buf - n, "\nsmc %s: FAIL (signal %d)\n", hot ? "crosshot" : "cross", sig);
    if (write(1, buf, (size_t)n) < 0) _exit(4);
    _exit(3);
}

static void *reader(void *arg) {
    unsigned id = (unsigned)(uintptr_t)arg;
    pin((int)id + 1);
    uint64_t sum = 0, calls = 0;
    unsigned seen = 0;
    if (!hot) {
        for (unsigned v = 1; v <= rounds; v++) {
            while (atomic_load_explicit(&version, memory_order_acquire) < v) {
            }
            uint64_t arg = v * 0x9e3779b97f4a7c15ull;
            uint64_t got = call(xcode + xoff[v], arg);
            check("cross", v, got, desc_eval(&xdesc[v], arg));
            sum = mix(sum, got);
            live_calls[id] = ++calls;
            atomic_fetch_add_explicit(&acks, 1, memory_order_release);
        }
    } else {
        for (;;) {
            unsigned v = atomic_load_explicit(&version, memory_order_acquire);
            if (v > rounds) break;
            uint64_t got = call(xcode, 0); /* also while A rewrites it */
            live_calls[id] = ++calls;
            if (v != seen) {
                /* Published before this call: it must be exactly round v's code. */
                check("crosshot", v, got, hot_eval(&xhot[v]));
                sum = mix(sum, got);
                seen = v;
                atomic_fetch_add_explicit(&acks, 1, memory_order_release);
            }
        }
    }
    reader_sum[id] = sum;
    reader_calls[id] = calls;
    return NULL;
}

static double now(void) {
    /* The system call, not the vDSO: the guest kernel's (Linux 6.1)
     * vDSO clock_gettime dereferences NULL when it finds its seqlock
     * taken (cpu_relax() reads a kernel static key), which happens with
     * several harts. */
    struct timespec ts;
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Waits for the readers; a reader that makes no progress for 20 s is
 * reported (where it is, what the code is) and the run fails. */
static void wait_acks(unsigned n) {
    double since = now();
    unsigned seen = atomic_load(&acks);
    for (unsigned spin = 0;; spin++) {
        unsigned a = atomic_load_explicit(&acks, memory_order_acquire);
        if (a >= n) return;
        if (spin % 65536) continue;
        if (a != seen) {
            seen = a;
            since = now();
        } else if (now() - since > 20) {
            printf("watchdog: no reader progress for 20 s: %u of %u acks, version %u\n", a, n, (unsigned)version);
            for (unsigned r = 0; r < nreaders; r++) printf("watchdog: reader %u made %llu calls\n", r,
                                                            (unsigned long long)live_calls[r]);
            printf("watchdog: the code:");
            for (int i = 0; i < 9; i++) printf(" %08x", ((uint32_t *)xcode)[i]);
            printf("\n");
            for (unsigned r = 0; r < nreaders; r++) {
                pthread_kill(reader_thread[r], SIGUSR1);
                sleep(1);
            }
            for (unsigned r = 0; r < nreaders; r++) printf("watchdog: reader %u made %llu calls\n", r,
                                                            (unsigned long long)live_calls[r]);
            printf("smc %s: FAIL (a reader is stuck)\n", hot ? "crosshot" : "cross");
            exit(3);
        }
    }
}

static void run_cross(uint64_t s) {
    pin(0);
    xcode = map_rwx(8192);
    xdesc = calloc(rounds + 1, sizeof *xdesc);
    xoff = calloc(rounds + 1, sizeof *xoff);
    xhot = calloc(rounds + 1, sizeof *xhot);
    if (hot) { /* round 0: a valid function before anyone runs it */
        uint32_t *w = (uint32_t *)xcode;
        for (int i = 0; i < 8; i++) w[i] = NOP;
        w[0] = ADDI(A0, ZERO, 0);
        w[8] = RET;
        flush_icache_all(xcode, xcode + 36);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = where;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_sigaction = crashed;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGILL, &sa, NULL);
    pthread_t *t = reader_thread;
    for (unsigned r = 0; r < nreaders; r++) pthread_create(&t[r], NULL, reader, (void *)(uintptr_t)r);
    for (unsigned v = 1; v <= rounds; v++) {
        wait_acks((v - 1) * nreaders);
        if (!hot) {
            desc_random(&xdesc[v], &s);
            xoff[v] = code_offset(v);
            uint8_t *end = desc_emit(&xdesc[v], xcode + xoff[v]);
            flush_icache_all(xcode + xoff[v], end);
        } else {
            hot_random(&xhot[v], &s);
            volatile uint32_t *w = (volatile uint32_t *)xcode;
            /* ret first, then the head, then the adds: a reader running the
             * old code keeps meeting words that change under it. */
            w[8] = RET;
            w[0] = ADDI(A0, ZERO, xhot[v].k);
            w[1] = xhot[v].jump ? JAL(ZERO, 7 * 4) : NOP;
            for (int i = 0; i < 6; i++) w[2 + i] = ADDI(A0, A0, xhot[v].c[i]);
            flush_icache_all(xcode, xcode + 36);
        }
        atomic_store_explicit(&version, v, memory_order_release);
    }
    wait_acks(rounds * nreaders);
    atomic_store_explicit(&version, rounds + 1, memory_order_release);
    for (unsigned r = 0; r < nreaders; r++) pthread_join(t[r], NULL);
}
#endif

static void cross(void) {
    uint64_t s = hot ? 9 : 8, sum = 0;
#ifdef __riscv
    if (!model) {
        run_cross(s);
        for (unsigned r = 0; r < nreaders; r++) {
            sum = mix(sum, reader_sum[r]);
            printf("reader %u: %llu calls\n", r, (unsigned long long)reader_calls[r]);
        }
        print_check(hot ? "crosshot" : "cross", sum);
        return;
    }
#endif
    uint64_t one = 0;
    for (unsigned v = 1; v <= rounds; v++) {
        if (!hot) {
            struct fn_desc d;
            desc_random(&d, &s);
            one = mix(one, desc_eval(&d, v * 0x9e3779b97f4a7c15ull));
        } else {
            struct hot_desc h;
            hot_random(&h, &s);
            one = mix(one, hot_eval(&h));
        }
    }
    for (unsigned r = 0; r < nreaders; r++) sum = mix(sum, one);
    print_check(hot ? "crosshot" : "cross", sum);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int a = 1;
    if (a < argc && !strcmp(argv[a], "model")) {
        model = 1;
        a++;
    }
#ifndef __riscv
    if (!model) {
        fprintf(stderr, "smc: this build only runs the models (smc model ...)\n");
        return 2;
    }
#endif
    const char *mode = a < argc ? argv[a] : "";
    if (!strcmp(mode, "single")) {
        check_rewrite();
        check_patch();
        check_alias();
        check_rvc();
        check_crosspage();
        check_remap();
        check_fork();
    } else if ((!strcmp(mode, "cross") || !strcmp(mode, "crosshot")) && a + 2 < argc) {
        hot = !strcmp(mode, "crosshot");
        nreaders = (unsigned)atoi(argv[a + 1]);
        rounds = (unsigned)atoi(argv[a + 2]);
        if (nreaders < 1 || nreaders > MAX_READERS) return 2;
        cross();
    } else {
        fprintf(stderr, "usage: smc [model] single | cross READERS ROUNDS | crosshot READERS ROUNDS\n");
        return 2;
    }
    if (model) return 0;
    if (failures) printf("smc %s: FAIL (%d failures)\n", mode, failures);
    else printf("smc %s: PASS\n", mode);
    return failures != 0;
}
