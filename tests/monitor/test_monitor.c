/* The monitor with real guests: many VMs at once in one process, their
 * isolation, proportional shares, caps, idle VMs, memory accounting and
 * the errors of the VM operations. Needs the default guest (RVISOR_GUEST,
 * default ~/.cache/rvisor/default); every test is skipped without it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "monitor/monitor.h"

#define MiB (1024ull * 1024)

struct env {
    char kernel[512], initrd[512];
    struct monitor *m;
};

static int setup_with(void **state, unsigned workers, uint64_t machine_mem, unsigned max_vms) {
    struct env *e = calloc(1, sizeof *e);
    const char *g = getenv("RVISOR_GUEST");
    char def[400];
    if (!g) {
        snprintf(def, sizeof def, "%s/.cache/rvisor/default", getenv("HOME") ? getenv("HOME") : "/root");
        g = def;
    }
    snprintf(e->kernel, sizeof e->kernel, "%s/Image", g);
    snprintf(e->initrd, sizeof e->initrd, "%s/initrd.gz", g);
    if (access(e->kernel, R_OK) == 0) {
        char err[256];
        struct monitor_config cfg = {.machine_mem = machine_mem, .workers = workers, .max_vms = max_vms};
        e->m = monitor_create(&cfg, err, sizeof err);
        if (!e->m) fprintf(stderr, "monitor_create: %s\n", err);
    }
    *state = e;
    return 0;
}

static int setup(void **state) { return setup_with(state, 2, 2048 * MiB, 0); }
static int setup_one_worker(void **state) { return setup_with(state, 1, 2048 * MiB, 0); }
static int setup_small_memory(void **state) { return setup_with(state, 2, 24 * MiB, 0); }
static int setup_two_vms(void **state) { return setup_with(state, 2, 2048 * MiB, 2); }

static int teardown(void **state) {
    struct env *e = *state;
    monitor_destroy(e->m);
    free(e);
    return 0;
}

#define NEED_GUEST(e)                                      \
    do {                                                   \
        if (!(e)->m) skip();                               \
    } while (0)

static int create(struct env *e, const char *name, const char *run, unsigned shares, unsigned cap, char *err) {
    char append[1024];
    if (run) snprintf(append, sizeof append, "console=ttyS0 quiet rvisor_run=\"%s\"", run);
    else snprintf(append, sizeof append, "console=ttyS0 quiet");
    struct vm_spec s = {.kernel = e->kernel, .initrd = e->initrd, .append = append, .mem_size = 256 * MiB,
                        .cpus = 1, .shares = shares, .cap_percent = cap};
    snprintf(s.name, sizeof s.name, "%s", name);
    return monitor_vm_create(e->m, &s, err, 256);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Waits until the VM's console shows `text`; returns false on timeout. */
static bool wait_console(struct env *e, const char *name, const char *text, double timeout) {
    double end = now_s() + timeout;
    static char buf[70000];
    while (now_s() < end) {
        uint64_t pos = 0;
        size_t n = monitor_console_read(e->m, name, &pos, buf, sizeof buf - 1);
        buf[n] = 0;
        if (strstr(buf, text)) return true;
        usleep(50000);
    }
    return false;
}

static uint64_t cpu_ns(struct env *e, const char *name) {
    struct vm_info info;
    assert_int_equal(monitor_vm_info(e->m, name, &info), 0);
    return info.cpu_ns;
}

static void test_several_vms_each_on_its_own_console(void **state) {
    struct env *e = *state;
    NEED_GUEST(e);
    char err[256], name[16], cmd[128], want[64];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "vm%d", i);
        snprintf(cmd, sizeof cmd, "echo hello-from-$((%d * 111))", i + 1);
        assert_int_equal(create(e, name, cmd, 0, 0, err), 0);
        assert_int_equal(monitor_vm_start(e->m, name, err, sizeof err), 0);
    }
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "vm%d", i);
        snprintf(want, sizeof want, "hello-from-%d", (i + 1) * 111);
        assert_true(wait_console(e, name, want, 60));
        /* and nobody else's output */
        for (int j = 0; j < 4; j++) {
            if (j == i) continue;
            char other[64], buf[70000];
            snprintf(other, sizeof other, "hello-from-%d", (j + 1) * 111);
            uint64_t pos = 0;
            size_t n = monitor_console_read(e->m, name, &pos, buf, sizeof buf - 1);
            buf[n] = 0;
            assert_null(strstr(buf, other));
        }
    }
    struct vm_info info[8];
    assert_int_equal(monitor_vm_list(e->m, info, 8), 4);
}

/* Host CPU seconds spent by every process so far (from /proc/stat). */
static double host_busy_s(void) {
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return 0;
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                   &v[6], &v[7]);
    fclose(f);
    if (n < 8) return 0;
    /* user nice system [idle iowait] irq softirq steal */
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

static void test_smp_guest_runs_on_several_workers(void **state) {
    struct env *e = *state;
    NEED_GUEST(e);
    char err[256];
    char append[] = "console=ttyS0 quiet rvisor_run=\"grep -c ^processor /proc/cpuinfo; echo go; "
                    "for k in 1 2 3 4; do (i=0; while [ $i -lt 15000 ]; do i=$((i+1)); done; echo w$k-done) & done; "
                    "wait; echo all-done\"";
    struct vm_spec s = {.kernel = e->kernel, .initrd = e->initrd, .append = append, .mem_size = 256 * MiB, .cpus = 4};
    snprintf(s.name, sizeof s.name, "smp");
    assert_int_equal(monitor_vm_create(e->m, &s, err, sizeof err), 0);
    assert_int_equal(monitor_vm_start(e->m, "smp", err, sizeof err), 0);
    assert_true(wait_console(e, "smp", "go", 120));
    uint64_t c0 = cpu_ns(e, "smp");
    double t0 = now_s(), busy0 = host_busy_s() - self_cpu_s();
    assert_true(wait_console(e, "smp", "all-done", 300));
    double wall = now_s() - t0;
    double cores = (double)(cpu_ns(e, "smp") - c0) / 1e9 / wall;
    /* Other processes on the host leave the workers less than two cores. */
    double others = (host_busy_s() - self_cpu_s() - busy0) / wall;
    fprintf(stderr, "4-hart guest on 2 workers used %.2f host cores (other processes: %.2f)\n", cores, others);
    char buf[70000];
    uint64_t pos = 0;
    size_t n = monitor_console_read(e->m, "smp", &pos, buf, sizeof buf - 1);
    buf[n] = 0;
    assert_non_null(strstr(buf, "\n4\r"));
    for (int k = 1; k <= 4; k++) {
        char w[16];
        snprintf(w, sizeof w, "w%d-done", k);
        assert_non_null(strstr(buf, w));
    }
    /* More than one core: the harts ran in parallel. Only meaningful when
     * the host had both cores to give. */
    if (others < 0.4 && sysconf(_SC_NPROCESSORS_ONLN) >= 2) assert_true(cores > 1.2);
}

static void test_shares_two_to_one(void **state) {
    struct env *e = *state;
    NEED_GUEST(e);
    char err[256];
    const char *spin = "echo spinning; while true; do :; done";
    assert_int_equal(create(e, "big", spin, 2000, 0, err), 0);
    assert_int_equal(create(e, "small", spin, 1000, 0, err), 0);
    assert_int_equal(monitor_vm_start(e->m, "big", err, sizeof err), 0);
    assert_int_equal(monitor_vm_start(e->m, "small", err, sizeof err), 0);
    assert_true(wait_console(e, "big", "spinning", 60));
    assert_true(wait_console(e, "small", "spinning", 60));
    uint64_t b0 = cpu_ns(e, "big"), s0 = cpu_ns(e, "small");
    sleep(4);
    uint64_t b = cpu_ns(e, "big") - b0, s = cpu_ns(e, "small") - s0;
    double ratio = (double)b / (double)s;
    fprintf(stderr, "shares 2:1 -> cpu %.2fs : %.2fs = %.2f\n", b / 1e9, s / 1e9, ratio);
    assert_true(ratio > 1.8 && ratio < 2.2);
}

static void test_cap_limits_a_busy_vm(void **state) {
    struct env *e = *state;
    NEED_GUEST(e);
    char err[256];
    assert_int_equal(create(e, "capped", "echo spinning; while true; do :; done", 0, 25, err), 0);
    assert_int_equal(monitor_vm_start(e->m, "capped", err, sizeof err), 0);
    assert_true(wait_console(e, "capped", "spinning", 60));
    uint64_t c0 = cpu_ns(e, "capped");
    double t0 = now_s();
    sleep(3);
    double share = (double)(cpu_ns(e, "capped") - c0) / 1e9 / (now_s() - t0);
    fprintf(stderr, "cap 25%% -> used %.1f%%\n", 100 * share);
    /* The cap is the upper bound; below it, a host loaded by other work
     * (CI neighbours) may give less (14% was seen), but the VM runs. */
    assert_true(share < 0.30 && share > 0.05);
}

static void test_idle_vm_costs_almost_nothing(void **state) {
    struct env *e = *state;
    NEED_GUEST(e);
    char err[256];
    assert_int_equal(create(e, "idle", NULL, 0, 0, err), 0);
    assert_int_equal(monitor_vm_start(e->m, "idle", err, sizeof err), 0);
    assert_true(wait_console(e, "idle", "rvisor-guest: init reached", 60));
    sleep(2); /* let the shell settle at its prompt */
    uint64_t c0 = cpu_ns(e, "idle");
    sleep(3);
    double share = (double)(cpu_ns(e, "idle") - c0) / 1e9 / 3;
    fprintf(stderr, "idle VM used %.2f%% of a core\n", 100 * share);
    assert_true(share < 0.02);
    /* It still answers. */
    assert_int_equal(monitor_console_write(e->m, "idle", "echo $((3 * 14))-answered\n", 26), 26);
    assert_true(wait_console(e, "idle", "42-answered", 20));
}

static void test_spinning_and_panicking_guests_leave_others_alone(void **state) {
    struct env *e = *state;
    NEED_GUEST(e);
    char err[256];
    assert_int_equal(create(e, "spinner", "while true; do :; done", 0, 0, err), 0);
    char append[] = "console=ttyS0 quiet rdinit=/bin/false";
    struct vm_spec s = {.kernel = e->kernel, .initrd = e->initrd, .append = append, .mem_size = 256 * MiB, .cpus = 1};
    snprintf(s.name, sizeof s.name, "panicker");
    assert_int_equal(monitor_vm_create(e->m, &s, err, sizeof err), 0);
    assert_int_equal(create(e, "worker", NULL, 0, 0, err), 0);
    assert_int_equal(monitor_vm_start(e->m, "spinner", err, sizeof err), 0);
    assert_int_equal(monitor_vm_start(e->m, "panicker", err, sizeof err), 0);
    assert_int_equal(monitor_vm_start(e->m, "worker", err, sizeof err), 0);
    assert_true(wait_console(e, "worker", "init reached", 60));
    assert_true(wait_console(e, "panicker", "Kernel panic", 60));
    struct vm_info info;
    for (int i = 0; i < 100; i++) {
        assert_int_equal(monitor_vm_info(e->m, "panicker", &info), 0);
        if (info.state == VMS_STOPPED) break;
        usleep(100000);
    }
    assert_int_equal(info.state, VMS_STOPPED);
    assert_int_equal(info.exit_status, 3);
    assert_int_equal(monitor_vm_destroy(e->m, "spinner", err, sizeof err), 0);
    monitor_console_write(e->m, "worker", "echo still-$((6 * 7))\n", 22);
    assert_true(wait_console(e, "worker", "still-42", 30));
}

static void test_destroy_returns_machine_memory(void **state) {
    struct env *e = *state;
    NEED_GUEST(e);
    char err[256];
    uint64_t total, free0, free1, free2;
    monitor_memory(e->m, &total, &free0);
    assert_int_equal(create(e, "m1", "dd if=/dev/zero of=/tmp/f bs=1M count=20 2>/dev/null; echo filled", 0, 0, err), 0);
    assert_int_equal(monitor_vm_start(e->m, "m1", err, sizeof err), 0);
    assert_true(wait_console(e, "m1", "filled", 60));
    monitor_memory(e->m, &total, &free1);
    assert_true(free0 - free1 >= 20 * MiB);
    struct vm_info info;
    assert_int_equal(monitor_vm_info(e->m, "m1", &info), 0);
    assert_true(info.mem_backed >= 20 * MiB && info.mem_backed < 60 * MiB);
    assert_int_equal(monitor_vm_destroy(e->m, "m1", err, sizeof err), 0);
    monitor_memory(e->m, &total, &free2);
    assert_int_equal(free2, free0);
}

static void test_operation_errors(void **state) {
    struct env *e = *state;
    NEED_GUEST(e);
    char err[256];
    assert_int_equal(create(e, "dup", NULL, 0, 0, err), 0);
    assert_int_equal(create(e, "dup", NULL, 0, 0, err), -MON_EEXIST);
    assert_non_null(strstr(err, "exists"));
    assert_int_equal(create(e, "bad name!", NULL, 0, 0, err), -MON_EINVAL);
    assert_int_equal(create(e, "", NULL, 0, 0, err), -MON_EINVAL);
    assert_int_equal(monitor_vm_start(e->m, "nope", err, sizeof err), -MON_ENOENT);
    assert_non_null(strstr(err, "nope"));
    assert_int_equal(monitor_vm_pause(e->m, "dup", err, sizeof err), -MON_ESTATE);
    assert_int_equal(monitor_vm_start(e->m, "dup", err, sizeof err), 0);
    assert_int_equal(monitor_vm_start(e->m, "dup", err, sizeof err), -MON_ESTATE);
    assert_int_equal(monitor_vm_pause(e->m, "dup", err, sizeof err), 0);
    assert_int_equal(monitor_vm_resume(e->m, "dup", err, sizeof err), 0);
    assert_int_equal(monitor_vm_stop(e->m, "dup", err, sizeof err), 0);
    struct vm_info info;
    assert_int_equal(monitor_vm_info(e->m, "dup", &info), 0);
    assert_int_equal(info.state, VMS_STOPPED);
    assert_int_equal(info.exit_status, 6);
    assert_int_equal(monitor_vm_stop(e->m, "dup", err, sizeof err), -MON_ESTATE);
    assert_int_equal(monitor_vm_destroy(e->m, "dup", err, sizeof err), 0);
    assert_int_equal(monitor_vm_info(e->m, "dup", &info), -MON_ENOENT);
    assert_int_equal(monitor_console_write(e->m, "dup", "x", 1), -1);
    struct vm_spec s = {.kernel = "/nonexistent", .mem_size = 256 * MiB, .cpus = 1};
    snprintf(s.name, sizeof s.name, "ghost");
    assert_int_equal(monitor_vm_create(e->m, &s, err, sizeof err), -MON_EINVAL);
    assert_non_null(strstr(err, "cannot open kernel"));
    s.kernel = e->kernel;
    s.cpus = 9;
    assert_int_equal(monitor_vm_create(e->m, &s, err, sizeof err), -MON_EINVAL);
    /* Absurd memory, as a snapshot's spec could carry past the API. */
    s.cpus = 1;
    s.mem_size = VM_SPEC_MAX_MEM + 4096;
    assert_int_equal(monitor_vm_create(e->m, &s, err, sizeof err), -MON_EINVAL);
    assert_non_null(strstr(err, "at most 62 GiB"));
}

/* A monitor that may hold two VMs refuses a third until one is destroyed. */
static void test_vm_limit(void **state) {
    struct env *e = *state;
    NEED_GUEST(e);
    char err[256];
    assert_int_equal(create(e, "first", NULL, 0, 0, err), 0);
    assert_int_equal(create(e, "second", NULL, 0, 0, err), 0);
    assert_int_equal(create(e, "third", NULL, 0, 0, err), -MON_ELIMIT);
    assert_non_null(strstr(err, "already holds 2 VMs"));
    assert_int_equal(monitor_vm_destroy(e->m, "first", err, sizeof err), 0);
    assert_int_equal(create(e, "third", NULL, 0, 0, err), 0);
}

/* Paths that are not plain files are refused at once, through create as
 * through rvisor run, and leave nothing behind. */
static void test_hostile_paths(void **state) {
    struct env *e = *state;
    NEED_GUEST(e);
    char dir[] = "/tmp/rvisor-monitor-test-XXXXXX", fifo[64], drive[96];
    assert_non_null(mkdtemp(dir));
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    const char *paths[] = {fifo, "/dev/zero", dir, "/proc/self/status"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        struct vm_spec specs[4] = {
            {.kernel = paths[i]},
            {.kernel = e->kernel, .initrd = paths[i]},
            {.bios = paths[i]},
            {.kernel = e->kernel, .ndrives = 1, .drives = {drive}},
        };
        snprintf(drive, sizeof drive, "file=%s,readonly=on", paths[i]);
        for (size_t k = 0; k < 4; k++) {
            struct vm_spec *s = &specs[k];
            s->mem_size = 64 * MiB;
            s->cpus = 1;
            snprintf(s->name, sizeof s->name, "hostile");
            char err[512];
            double t0 = now_s();
            assert_int_equal(monitor_vm_create(e->m, s, err, sizeof err), -MON_EINVAL);
            assert_true(now_s() - t0 < 2);
            if (!strstr(err, paths[i]) || !strstr(err, "is not a regular file"))
                fail_msg("create with %s: %s", paths[i], err);
        }
    }
    struct vm_info info;
    assert_int_equal(monitor_vm_info(e->m, "hostile", &info), -MON_ENOENT);
    unlink(fifo);
    rmdir(dir);
}

/* Each VM runs on the engine it was created with, and only the translator's
 * VM has translator counters. */
static void test_engine_per_vm(void **state) {
    struct env *e = *state;
    NEED_GUEST(e);
    char err[256];
    const char *append = "console=ttyS0 quiet rvisor_run=\"echo engine-$((6 * 7))\"";
    static const enum vm_engine engines[] = {VM_ENGINE_JIT, VM_ENGINE_INTERP};
    static const char *const names[] = {"translated", "interpreted"};
    for (int i = 0; i < 2; i++) {
        struct vm_spec s = {.kernel = e->kernel, .initrd = e->initrd, .append = append, .mem_size = 256 * MiB,
                            .cpus = 1, .engine = engines[i], .jit_cache = i == 0 ? 8 * MiB : 0};
        snprintf(s.name, sizeof s.name, "%s", names[i]);
        assert_int_equal(monitor_vm_create(e->m, &s, err, sizeof err), 0);
        assert_int_equal(monitor_vm_start(e->m, names[i], err, sizeof err), 0);
    }
    for (int i = 0; i < 2; i++) assert_true(wait_console(e, names[i], "engine-42", 120));
    struct vm_info info;
    assert_int_equal(monitor_vm_info(e->m, "translated", &info), 0);
    assert_int_equal(info.engine, VM_ENGINE_JIT);
    assert_true(info.jit.blocks > 1000);
    assert_true(info.jit.insns >= info.jit.blocks);
    assert_true(info.jit.code_bytes > 0 && info.jit.code_bytes <= 8 * MiB);
    assert_true(info.jit.translate_ns > 0);
    assert_true(info.jit.dispatches > 0 && info.jit.dispatches < info.instructions);
    assert_int_equal(monitor_vm_info(e->m, "interpreted", &info), 0);
    assert_int_equal(info.engine, VM_ENGINE_INTERP);
    assert_true(info.instructions > 1000000);
    assert_int_equal(info.jit.blocks, 0);
    assert_int_equal(info.jit.code_bytes, 0);
    assert_int_equal(info.jit.dispatches, 0);
    /* A code cache out of bounds is refused. */
    struct vm_spec s = {.kernel = e->kernel, .mem_size = 256 * MiB, .cpus = 1, .jit_cache = 4096};
    snprintf(s.name, sizeof s.name, "tiny");
    assert_int_equal(monitor_vm_create(e->m, &s, err, sizeof err), -MON_EINVAL);
    assert_non_null(strstr(err, "JIT code cache"));
    s.jit_cache = 0;
    s.engine = (enum vm_engine)7;
    assert_int_equal(monitor_vm_create(e->m, &s, err, sizeof err), -MON_EINVAL);
    assert_non_null(strstr(err, "engine"));
}

static void test_exhausted_machine_memory_refuses_new_vms(void **state) {
    struct env *e = *state;
    NEED_GUEST(e);
    char err[256], name[16];
    int rc = 0, created = 0;
    for (int i = 0; i < 10 && rc == 0; i++) {
        snprintf(name, sizeof name, "vm%d", i);
        rc = create(e, name, NULL, 0, 0, err);
        if (rc == 0) created++;
    }
    assert_int_equal(rc, -MON_ENOMEM);
    assert_non_null(strstr(err, "machine memory"));
    assert_true(created >= 1);
    /* The ones that fit are intact and the failed one left nothing behind. */
    struct vm_info info[16];
    assert_int_equal(monitor_vm_list(e->m, info, 16), (size_t)created);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_several_vms_each_on_its_own_console, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smp_guest_runs_on_several_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shares_two_to_one, setup_one_worker, teardown),
        cmocka_unit_test_setup_teardown(test_cap_limits_a_busy_vm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_vm_costs_almost_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spinning_and_panicking_guests_leave_others_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_returns_machine_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_operation_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_engine_per_vm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vm_limit, setup_two_vms, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exhausted_machine_memory_refuses_new_vms, setup_small_memory, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
