/* Code that is hard on a binary translator, for tests/e2e/test_jit.py.
 *
 *   hostile loopwrite N      a loop that patches an instruction of its own
 *                            body every iteration: with fence.i (must see
 *                            every new value) and without (each value seen
 *                            must be one that was written)
 *   hostile crosswrite N     thread A rewrites an instruction (two versions,
 *                            aligned 32-bit stores) with no synchronisation
 *                            while thread B (cpu 1) runs it in a tight loop,
 *                            until B has made N calls: B may only run one of
 *                            the versions (aligned 32-bit fetches are
 *                            atomic, as Ziccif requires and Linux's code
 *                            patching assumes); after a flush and a release
 *                            B must run the last one
 *   hostile badjump ROUNDS   jumps to NULL, unmapped, kernel, non-canonical,
 *                            non-executable, PROT_NONE and past-EOF
 *                            addresses, into zeros and ebreak, across a page
 *                            into nothing, faults in the middle of generated
 *                            code: each signal is handled (siglongjmp) with
 *                            the exact pc, address and registers
 *   hostile fencei N THREADS fence.i in a tight loop, and threads that call
 *                            __builtin___clear_cache (riscv_flush_icache on
 *                            every hart) over and over while running code
 *   hostile spray MB KB FRESH  MB megabytes of distinct generated functions,
 *                            KB at a time in one executable region (a new
 *                            mmap every FRESH passes, 0: never), each called
 *                            and checked: fills any code cache many times
 *   hostile model MODE ARGS  (host) the CHECK lines MODE must print
 *
 * Prints "CHECK name value" lines and "hostile MODE: PASS" / "FAIL". */
#include "rv.h"

#ifdef __riscv
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <ucontext.h>
#endif

static int model;

static void print_check(const char *name, uint64_t v) { printf("CHECK %s 0x%016llx\n", name, (unsigned long long)v); }

#ifdef __riscv
static void *map_rwx(size_t len) {
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap rwx");
        exit(2);
    }
    return p;
}
typedef uint64_t (*fn2)(uint64_t, uint64_t);
#endif

/* ---- loopwrite ---- */

#define PATCH_OFF 40
static uint64_t loop_sum(uint64_t n) {
    uint64_t s = 0;
    for (uint64_t c = n; c >= 1; c--) s += c & 0x7ff;
    return s;
}

static void loopwrite(unsigned n) {
    uint64_t sum = loop_sum(n);
#ifdef __riscv
    if (!model) {
        uint32_t *w = map_rwx(4096);
        uint64_t *rec = malloc(n * sizeof *rec);
        for (int fenced = 1; fenced >= 0; fenced--) {
            for (int run = 0; run < 2; run++) {
                struct emit e = {(uint8_t *)w};
                emit_li32(&e, T2, (int32_t)ADDI(A3, ZERO, 0));
                emit32(&e, AUIPC(A4, 0));                /* 8 */
                emit32(&e, ADDI(A4, A4, PATCH_OFF - 8)); /* a4 = the patched word */
                emit32(&e, ADDI(A2, ZERO, 0));
                emit32(&e, ANDI(T0, A0, 0x7ff)); /* 20: loop */
                emit32(&e, SLLI(T0, T0, 20));
                emit32(&e, OR(T0, T0, T2));
                emit32(&e, SW(T0, A4, 0));
                emit32(&e, fenced ? FENCE_I : NOP);
                emit32(&e, ADDI(A3, ZERO, 0)); /* 40: patched */
                emit32(&e, ADD(A2, A2, A3));
                emit32(&e, SD(A3, A1, 0));
                emit32(&e, ADDI(A1, A1, 8));
                emit32(&e, ADDI(A0, A0, -1));
                emit32(&e, BNE(A0, ZERO, 20 - 60));
                emit32(&e, ADDI(A0, A2, 0));
                emit32(&e, RET);
                __builtin___clear_cache((char *)w, (char *)e.p);
                uint64_t got = ((fn2)w)(n, (uint64_t)(uintptr_t)rec);
                unsigned fresh = 0, invalid = 0;
                for (unsigned j = 0; j < n; j++) {
                    uint64_t want = (n - j) & 0x7ff;
                    if (rec[j] == want) {
                        fresh++;
                        continue;
                    }
                    /* Without fence.i an older value may show: the initial 0 or
                     * one written in an earlier iteration. */
                    uint64_t r0 = (n - j) & 0x7ff, len = j + 1;
                    int valid = !fenced && (rec[j] == 0 || (len >= 2048 || ((rec[j] - r0) & 0x7ff) < len));
                    if (!valid && ++invalid <= 5)
                        fail("loopwrite %s: iteration %u saw %llu, expected %llu", fenced ? "fenced" : "unfenced", j,
                             (unsigned long long)rec[j], (unsigned long long)want);
                }
                if (fenced && got != sum)
                    fail("loopwrite fenced: sum %llu, expected %llu", (unsigned long long)got,
                         (unsigned long long)sum);
                printf("loopwrite %s run %d: %u of %u iterations saw the value just written, %u invalid\n",
                       fenced ? "fenced" : "unfenced", run, fresh, n, invalid);
            }
        }
    }
#endif
    print_check("loopwrite", sum);
}

/* ---- crosswrite ---- */

#ifdef __riscv
static volatile uint32_t *xw;
static _Atomic int xdone, xstarted;
static _Atomic uint64_t xprogress; /* the reader's calls so far */
static uint64_t xcalls, xdistinct, xfinal;
static unsigned xbad;

/* The two versions of the rewritten instruction differ in both halves: a
 * fetch that took one half from each would run an instruction nobody wrote,
 * and its result tells. */
#define XARG 0xfffu
#define XA ADDI(A0, A0, 0x123)    /* 0xfff + 0x123 = 0x1122 */
#define XB XORI(A0, A0, 0x456)    /* 0xfff ^ 0x456 = 0xba9 */
#define XFINAL ADDI(A0, A0, 0x7ff) /* 0x17fe */

static void *cross_reader(void *arg) {
    (void)arg;
    pin(1);
    uint64_t calls = 0, changes = 0, last = 0x1122;
    for (;;) {
        int done = atomic_load_explicit(&xdone, memory_order_acquire);
        uint64_t r = ((fn1)(uintptr_t)xw)(XARG);
        if (++calls == 1000) atomic_store_explicit(&xstarted, 1, memory_order_release);
        if (calls % 1024 == 0) atomic_store_explicit(&xprogress, calls, memory_order_relaxed);
        if (done) {
            xfinal = r;
            break;
        }
        if (r != 0x1122 && r != 0xba9 && r != 0x17fe && ++xbad <= 5) {
            const char *what = r == 0x1455 || r == 0xedc ? " (half of each version: a torn fetch)" : "";
            fail("crosswrite: the reader got %#llx, which no written instruction computes%s", (unsigned long long)r,
                 what);
        }
        changes += r != last;
        last = r;
    }
    xcalls = calls;
    xdistinct = changes;
    return NULL;
}
#endif

static void crosswrite(unsigned n) {
#ifdef __riscv
    if (!model) {
        pin(0);
        xw = map_rwx(4096);
        xw[0] = XA;
        xw[1] = RET;
        __builtin___clear_cache((char *)xw, (char *)(xw + 2));
        pthread_t t;
        pthread_create(&t, NULL, cross_reader, NULL);
        while (!atomic_load_explicit(&xstarted, memory_order_acquire)) {
        }
        uint64_t i = 0;
        while (atomic_load_explicit(&xprogress, memory_order_relaxed) < n) xw[0] = i++ & 1 ? XA : XB;
        xw[0] = XFINAL;
        flush_icache_all((void *)xw, (void *)(xw + 2));
        atomic_store_explicit(&xdone, 1, memory_order_release);
        pthread_join(t, NULL);
        printf("crosswrite: %llu rewrites; the reader made %llu calls and saw the value change %llu times\n",
               (unsigned long long)i, (unsigned long long)xcalls, (unsigned long long)xdistinct);
        if (xfinal != 0x17fe)
            fail("crosswrite: after the flush and release the reader got %#llx, expected 0x17fe",
                 (unsigned long long)xfinal);
    }
#endif
    (void)n;
}

/* ---- badjump ---- */

#ifdef __riscv
static sigjmp_buf jb;
static volatile int g_sig, g_code;
static volatile uint64_t g_addr, g_pc, g_a0;

static void on_signal(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    g_sig = sig;
    g_code = si->si_code;
    g_addr = (uint64_t)(uintptr_t)si->si_addr;
    g_pc = uc->uc_mcontext.__gregs[REG_PC];
    g_a0 = uc->uc_mcontext.__gregs[REG_A0];
    siglongjmp(jb, 1);
}

/* Calls target(a0); true if a signal came (g_* say which). */
static int try_call(uint64_t target, uint64_t a0, uint64_t *ret) {
    g_sig = g_code = 0;
    g_addr = g_pc = g_a0 = 0;
    if (sigsetjmp(jb, 1) == 0) {
        *ret = ((fn1)(uintptr_t)target)(a0);
        return 0;
    }
    return 1;
}

#define ANY (-1)
/* One kind of bad jump, ROUNDS times: the signal, its code (or ANY), the pc
 * and a0 at the fault (a0 ANY: not checked), si_addr within [lo, hi]. */
static void bad(const char *name, unsigned rounds, uint64_t target, uint64_t a0, int sig, int code, uint64_t pc,
                int64_t a0_out, uint64_t lo, uint64_t hi) {
    unsigned wrong = 0;
    for (unsigned r = 0; r < rounds; r++) {
        uint64_t ret;
        if (!try_call(target, a0, &ret)) {
            if (!wrong++) fail("badjump %s: no signal, returned %llu", name, (unsigned long long)ret);
            continue;
        }
        int ok = g_sig == sig && (code == ANY || g_code == code) && g_pc == pc &&
                 (a0_out == ANY || g_a0 == (uint64_t)a0_out) && g_addr >= lo && g_addr <= hi;
        if (r == 0 || !ok)
            printf("case %s: sig=%d code=%d pc=target%+lld addr=target%+lld a0=%lld\n", name, g_sig, g_code,
                   (long long)(g_pc - target), (long long)(g_addr - target), (long long)g_a0);
        if (!ok && !wrong++)
            fail("badjump %s: expected sig=%d code=%d pc=target%+lld a0=%lld addr in [target%+lld, target%+lld]", name,
                 sig, code, (long long)(pc - target), (long long)a0_out, (long long)(lo - target),
                 (long long)(hi - target));
    }
}

static void *page_pair_second_unmapped(void) {
    uint8_t *p = map_rwx(8192);
    munmap(p + 4096, 4096);
    return p;
}
#endif

static void badjump(unsigned rounds) {
#ifdef __riscv
    if (!model) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_signal;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, NULL);
        sigaction(SIGBUS, &sa, NULL);
        sigaction(SIGILL, &sa, NULL);
        sigaction(SIGTRAP, &sa, NULL);

        bad("null", rounds, 0, 0, SIGSEGV, SEGV_MAPERR, 0, ANY, 0, 0);

        uint8_t *gone = map_rwx(4096);
        munmap(gone, 4096);
        uint64_t g = (uint64_t)(uintptr_t)gone;
        bad("unmapped", rounds, g, 0, SIGSEGV, SEGV_MAPERR, g, ANY, g, g);

        uint64_t k = 0xffffffff80000000ull;
        bad("kernel", rounds, k, 0, SIGSEGV, ANY, k, ANY, k, k);
        uint64_t nc = 0x0000800000000000ull;
        bad("noncanonical", rounds, nc, 0, SIGSEGV, ANY, nc, ANY, nc, nc);
        nc = 0x5555555555555554ull;
        bad("noncanonical2", rounds, nc, 0, SIGSEGV, ANY, nc, ANY, nc, nc);

        uint32_t *rw = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        rw[0] = RET;
        uint64_t t = (uint64_t)(uintptr_t)rw;
        bad("noexec", rounds, t, 0, SIGSEGV, SEGV_ACCERR, t, ANY, t, t);
        uint8_t *none = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        t = (uint64_t)(uintptr_t)none;
        bad("prot_none", rounds, t, 0, SIGSEGV, SEGV_ACCERR, t, ANY, t, t);

        /* Past the end of a file: SIGBUS. */
        char path[] = "/tmp/hostile-eof-XXXXXX";
        int fd = mkstemp(path);
        uint32_t code[2] = {ADDI(A0, A0, 1), RET};
        if (fd < 0 || write(fd, code, sizeof code) != sizeof code) {
            perror("eof file");
            exit(2);
        }
        uint8_t *f = mmap(NULL, 8192, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
        unlink(path);
        uint64_t ret;
        if (try_call((uint64_t)(uintptr_t)f, 41, &ret) || ret != 42) fail("badjump eof: the file's own code failed");
        t = (uint64_t)(uintptr_t)f + 4096;
        bad("past_eof", rounds, t, 0, SIGBUS, BUS_ADRERR, t, ANY, t, t);

        /* All zeros (c.unimp) and ebreak. */
        uint8_t *z = map_rwx(4096);
        t = (uint64_t)(uintptr_t)z + 64;
        bad("zeros", rounds, t, 0, SIGILL, ILL_ILLOPC, t, ANY, 0, UINT64_MAX);
        ((uint32_t *)z)[0] = EBREAK;
        __builtin___clear_cache((char *)z, (char *)z + 4);
        t = (uint64_t)(uintptr_t)z;
        bad("ebreak", rounds, t, 0, SIGTRAP, TRAP_BRKPT, t, ANY, 0, UINT64_MAX);

        /* A 4-byte instruction whose second half is on an unmapped page,
         * after two that run: pc is the instruction, a0 shows the two ran. */
        uint8_t *p = page_pair_second_unmapped();
        struct emit e = {p + 4094 - 8};
        emit32(&e, ADDI(A0, A0, 1));
        emit32(&e, ADDI(A0, A0, 1));
        emit16(&e, (uint16_t)ADDI(A0, A0, 1)); /* low half only */
        __builtin___clear_cache((char *)p, (char *)p + 4096);
        t = (uint64_t)(uintptr_t)p + 4094 - 8;
        bad("straddle", rounds, t, 0, SIGSEGV, SEGV_MAPERR, t + 8, 2, t + 8, t + 10);

        /* Straight-line code that runs off its page into nothing. */
        p = page_pair_second_unmapped();
        for (int i = 0; i < 1024; i++) ((uint32_t *)p)[i] = ADDI(A0, A0, 1);
        __builtin___clear_cache((char *)p, (char *)p + 4096);
        t = (uint64_t)(uintptr_t)p + 4096 - 4 * 100;
        bad("run_off_page", rounds, t, 0, SIGSEGV, SEGV_MAPERR, t + 400, 100, t + 400, t + 400);

        /* Faults in the middle of a block: a load from address 8, an
         * illegal instruction, a store into the code's own read-only page. */
        uint32_t *c = map_rwx(4096);
        for (int i = 0; i < 5; i++) c[i] = ADDI(A0, A0, 1);
        c[5] = LD(T0, ZERO, 8);
        c[6] = RET;
        __builtin___clear_cache((char *)c, (char *)(c + 7));
        t = (uint64_t)(uintptr_t)c;
        bad("load_fault", rounds, t, 10, SIGSEGV, SEGV_MAPERR, t + 20, 15, 8, 8);
        c = map_rwx(4096);
        for (int i = 0; i < 3; i++) c[i] = ADDI(A0, A0, 1);
        c[3] = 0xffffffff;
        c[4] = RET;
        __builtin___clear_cache((char *)c, (char *)(c + 5));
        t = (uint64_t)(uintptr_t)c;
        bad("illegal", rounds, t, 0, SIGILL, ILL_ILLOPC, t + 12, 3, 0, UINT64_MAX);
        c = map_rwx(4096);
        c[0] = AUIPC(T0, 0);
        c[1] = ADDI(A0, A0, 1);
        c[2] = ADDI(A0, A0, 1);
        c[3] = SW(A0, T0, 0);
        c[4] = RET;
        mprotect(c, 4096, PROT_READ | PROT_EXEC);
        __builtin___clear_cache((char *)c, (char *)(c + 5));
        t = (uint64_t)(uintptr_t)c;
        bad("store_to_own_rx_code", rounds, t, 0, SIGSEGV, SEGV_ACCERR, t + 12, 2, t, t);
        if (c[0] != AUIPC(T0, 0)) fail("badjump store_to_own_rx_code: the read-only code changed");

        /* Not a fault: a jump into the middle of a 4-byte instruction, whose
         * upper half is itself an instruction (c.li a0, 5). */
        c = map_rwx(4096);
        c[0] = ADDI(A0, A0, 0x451); /* upper half 0x4515 = c.li a0, 5 */
        ((uint16_t *)c)[2] = C_RET;
        __builtin___clear_cache((char *)c, (char *)(c + 2));
        unsigned wrong = 0;
        for (unsigned r = 0; r < rounds * 20; r++) {
            uint64_t r0 = 0, r1 = 0;
            if (try_call((uint64_t)(uintptr_t)c, r, &r0) || try_call((uint64_t)(uintptr_t)c + 2, r, &r1) ||
                r0 != r + 0x451 || r1 != 5)
                if (!wrong++)
                    fail("badjump overlap: round %u: got %llu and %llu (signal %d)", r, (unsigned long long)r0,
                         (unsigned long long)r1, g_sig);
        }
        printf("case overlap: %s\n", wrong ? "wrong" : "ok");
    }
#endif
    (void)rounds;
}

/* ---- fencei ---- */

static uint64_t g_eval(uint64_t x, int32_t k) { return x * 3 + (uint64_t)(int64_t)k; }

#ifdef __riscv
static uint32_t *fcode;
static unsigned fiters;
static _Atomic unsigned fthreads_ok, fflushes;

static void *flusher(void *arg) {
    unsigned id = (unsigned)(uintptr_t)arg;
    pin((int)id);
    unsigned ok = 0;
    for (unsigned i = 0; i < fiters / 8; i++) {
        __builtin___clear_cache((char *)fcode + 64, (char *)fcode + 128);
        atomic_fetch_add_explicit(&fflushes, 1, memory_order_relaxed);
        uint64_t r = ((fn1)(fcode + 16))(i); /* x * 5 + 11, never rewritten */
        ok += r == (uint64_t)i * 5 + 11;
    }
    atomic_fetch_add(&fthreads_ok, ok);
    return NULL;
}
#endif

static void fencei(unsigned n, unsigned threads) {
    uint64_t acc = 0, acc2 = 0;
    int32_t k = 7;
#ifdef __riscv
    pthread_t t[8];
    if (!model) {
        pin(0);
        fcode = map_rwx(4096);
        fiters = n;
        struct emit e = {(uint8_t *)fcode};
        emit32(&e, SLLI(T0, A0, 1)); /* g(x) = x * 3 + k: the word at 8 is rewritten */
        emit32(&e, ADD(A0, A0, T0));
        emit32(&e, ADDI(A0, A0, k));
        emit32(&e, RET);
        e.p = (uint8_t *)(fcode + 16); /* h(x) = x * 5 + 11 */
        emit32(&e, SLLI(T0, A0, 2));
        emit32(&e, ADD(A0, A0, T0));
        emit32(&e, ADDI(A0, A0, 11));
        emit32(&e, RET);
        __builtin___clear_cache((char *)fcode, (char *)(fcode + 20));
        for (unsigned i = 1; i < threads; i++) pthread_create(&t[i], NULL, flusher, (void *)(uintptr_t)i);
    }
#endif
    for (unsigned i = 0; i < n; i++) {
        acc = acc * 31 + i;
#ifdef __riscv
        if (!model) __asm__ volatile("fence.i" ::: "memory");
#endif
        if (i % 100 == 0) {
            k = (int32_t)((i / 100) % 2000) - 1000;
#ifdef __riscv
            if (!model) {
                fcode[2] = ADDI(A0, A0, k);
                __builtin___clear_cache((char *)(fcode + 2), (char *)(fcode + 3));
            }
#endif
        }
        uint64_t want = g_eval(i, k), got = want;
#ifdef __riscv
        if (!model) {
            got = ((fn1)fcode)(i);
            if (got != want)
                fail("fencei: iteration %u: g(%u) = %llu, expected %llu", i, i, (unsigned long long)got,
                     (unsigned long long)want);
        }
#endif
        acc2 = mix(acc2, got);
    }
#ifdef __riscv
    if (!model) {
        for (unsigned i = 1; i < threads; i++) pthread_join(t[i], NULL);
        unsigned expect = (threads - 1) * (n / 8);
        printf("fencei: %u fence.i, %u clear_cache calls from %u other threads, %u of %u results right\n", n,
               (unsigned)fflushes, threads - 1, (unsigned)fthreads_ok, expect);
        if (fthreads_ok != expect) fail("fencei: %u of %u results right in the flushing threads", fthreads_ok, expect);
    }
#endif
    print_check("fencei", mix(acc, acc2));
}

/* ---- spray ---- */

#define SPRAY_FN_BYTES 256
#define SPRAY_OPS (SPRAY_FN_BYTES / 4 - 1)

/* Writes one function (SPRAY_OPS instructions and a ret) to w (NULL: only
 * evaluate) and returns what it computes for (a0, a1). */
static uint64_t spray_fn(uint32_t *w, uint64_t seed, uint64_t a0, uint64_t a1) {
    uint64_t x = seed | 1;
    int skip = 0;
    for (int k = 0; k < SPRAY_OPS; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int op = (int)(x % 6);
        int32_t imm = (int32_t)sext(x >> 20, 12);
        if (op == 5 && k == SPRAY_OPS - 1) op = 0;
        uint32_t insn;
        int apply = !skip;
        skip = 0;
        switch (op) {
        case 0:
            insn = ADDI(A0, A0, imm);
            if (apply) a0 += (uint64_t)(int64_t)imm;
            break;
        case 1:
            insn = XORI(A0, A0, imm);
            if (apply) a0 ^= (uint64_t)(int64_t)imm;
            break;
        case 2:
            insn = ADD(A0, A0, A1);
            if (apply) a0 += a1;
            break;
        case 3:
            insn = SRLI(A0, A0, 1 + (imm & 7));
            if (apply) a0 >>= 1 + (imm & 7);
            break;
        case 4:
            insn = MUL(A0, A0, A1);
            if (apply) a0 *= a1;
            break;
        default: /* skip the next instruction if a0 != 0 */
            insn = BNE(A0, ZERO, 8);
            if (apply) skip = a0 != 0;
            break;
        }
        if (w) w[k] = insn;
    }
    if (w) w[SPRAY_OPS] = RET;
    return a0;
}

static void spray(unsigned mb, unsigned kb, unsigned fresh) {
    size_t region = (size_t)kb << 10, per = region / SPRAY_FN_BYTES;
    unsigned passes = (unsigned)(((size_t)mb << 20) / region);
    uint64_t sum = 0;
#ifdef __riscv
    uint8_t *code = NULL;
    unsigned maps = 0;
#endif
    for (unsigned p = 0; p < passes; p++) {
#ifdef __riscv
        if (!model && (!code || (fresh && p % fresh == 0))) {
            if (code) munmap(code, region);
            code = map_rwx(region);
            maps++;
        }
#endif
        uint64_t want[64];
        for (size_t f = 0; f < per; f++) {
            uint64_t seed = mix(p, f) * 0x9e3779b97f4a7c15ull, a0 = seed >> 7, a1 = seed | 3;
            uint32_t *w = NULL;
#ifdef __riscv
            if (!model) w = (uint32_t *)(code + f * SPRAY_FN_BYTES);
#endif
            want[f % 64] = spray_fn(w, seed, a0, a1);
            if (model) {
                sum = mix(sum, want[f % 64]);
                continue;
            }
#ifdef __riscv
            if (f % 64 == 63 || f == per - 1) {
                /* A batch is written: flush it, call each function once. */
                size_t first = f - f % 64;
                __builtin___clear_cache((char *)code + first * SPRAY_FN_BYTES, (char *)(w + SPRAY_OPS + 1));
                for (size_t g = first; g <= f; g++) {
                    uint64_t s2 = mix(p, g) * 0x9e3779b97f4a7c15ull;
                    uint64_t r = ((fn2)(code + g * SPRAY_FN_BYTES))(s2 >> 7, s2 | 3);
                    if (r != want[g % 64])
                        fail("spray: pass %u function %zu: got 0x%llx, expected 0x%llx", p, g, (unsigned long long)r,
                             (unsigned long long)want[g % 64]);
                    sum = mix(sum, r);
                }
            }
#endif
        }
        if (!model && p % 8 == 7) printf("spray: %u of %u passes\n", p + 1, passes);
    }
#ifdef __riscv
    if (!model)
        printf("spray: %u MiB of code in %u passes over %u KiB, %u mappings\n", mb, passes, kb, maps);
#endif
    print_check("spray", sum);
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
        fprintf(stderr, "hostile: this build only runs the models (hostile model ...)\n");
        return 2;
    }
#endif
    const char *mode = a < argc ? argv[a] : "";
    unsigned x = a + 1 < argc ? (unsigned)atoi(argv[a + 1]) : 0;
    unsigned y = a + 2 < argc ? (unsigned)atoi(argv[a + 2]) : 0;
    unsigned z = a + 3 < argc ? (unsigned)atoi(argv[a + 3]) : 0;
    if (!strcmp(mode, "loopwrite") && x) loopwrite(x);
    else if (!strcmp(mode, "crosswrite") && x) crosswrite(x);
    else if (!strcmp(mode, "badjump") && x) badjump(x);
    else if (!strcmp(mode, "fencei") && x && y >= 1 && y <= 8) fencei(x, y);
    else if (!strcmp(mode, "spray") && x && y && (y & 3) == 0) spray(x, y, z);
    else {
        fprintf(stderr, "usage: hostile [model] loopwrite N | crosswrite N | badjump ROUNDS | fencei N THREADS | "
                        "spray MB KB FRESH\n");
        return 2;
    }
    if (model) return 0;
    if (failures) printf("hostile %s: FAIL (%d failures)\n", mode, failures);
    else printf("hostile %s: PASS\n", mode);
    return failures != 0;
}
