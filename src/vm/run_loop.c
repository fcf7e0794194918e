/* vm_run: runs one VM on the calling thread (and, for a VM with several
 * harts, one more host thread per extra hart) until it exits. This is the
 * scheduler of `rvisor run`; the monitor has its own, which shares the
 * per-hart step (vm_run_hart) and runs many VMs on a pool of workers.
 *
 * With one hart, the calling thread alternates between running it and the
 * host side (console input, signals). With several, hart i runs on thread
 * i so that a guest with N harts can use N host cores, as QEMU's MTTCG
 * does; thread 0 (the caller) runs hart 0 and also serves the host side.
 * An idle hart sleeps on its own eventfd until its next timer deadline; an
 * IPI, an HSM start or a device interrupt (vm_kick) wakes every hart, and
 * each then checks for itself whether it has work. */
#include "vm/vm.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define IO_POLL_NS 2000000ull /* host input is polled at least this often while busy */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void drain(int fd) {
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof v);
    (void)r; /* nonblocking: nothing to read is fine */
}

/* Sleeps until ns pass or one of fds (at most two; -1 entries are skipped)
 * becomes readable; drains the first, an eventfd the sleeper owns. */
static void sleep_on(int own_fd, int other_fd, uint64_t ns) {
    struct pollfd pfd[2] = {{.fd = own_fd, .events = POLLIN}, {.fd = other_fd, .events = POLLIN}};
    nfds_t n = other_fd >= 0 ? 2 : 1;
    if (ns < 1000000) {
        /* Sub-millisecond deadlines: ppoll's nanoseconds are honoured where poll's milliseconds round. */
        struct timespec ts = {0, (long)ns};
        ppoll(pfd, n, &ts, NULL);
    } else {
        poll(pfd, n, (int)(ns / 1000000));
    }
    if (pfd[0].revents) drain(own_fd);
}

/* ---- the loop of one host thread ---- */

#define ALL_HARTS (-1)

/* What one thread runs: every hart in turn (hart == ALL_HARTS) or one. */
struct runner {
    struct vm *vm;
    int hart;
    const struct vm_io *io; /* the host side, served by one thread only; may be NULL */
    int wake_fd;            /* the eventfd this thread sleeps on */
    atomic_bool *done;      /* set when the VM exited: the other threads leave too */
};

static void run(const struct runner *r) {
    struct vm *vm = r->vm;
    const struct vm_io *io = r->io;
    uint64_t next_poll = 0;
    while (!atomic_load_explicit(r->done, memory_order_acquire)) {
        uint64_t idle_ns = 0;
        enum vm_slice s = r->hart == ALL_HARTS ? vm_run_slice(vm, &idle_ns) : vm_run_hart(vm, (unsigned)r->hart, &idle_ns);
        if (s == VM_SLICE_EXITED) break;
        uint64_t now = now_ns();
        if (io && io->poll && (now >= next_poll || s == VM_SLICE_IDLE)) {
            io->poll(io->ctx, vm);
            next_poll = now + IO_POLL_NS;
        }
        if (s == VM_SLICE_IDLE && idle_ns > 0) {
            /* The host side is watched while asleep too; while busy, the
             * poll above runs every IO_POLL_NS. */
            sleep_on(r->wake_fd, io ? io->wake_fd : -1, idle_ns);
            vm_update_timers(vm);
            if (io && io->poll) io->poll(io->ctx, vm);
        }
    }
    /* The VM exited (seen here or on another thread): wake the sleepers. */
    atomic_store_explicit(r->done, true, memory_order_release);
    vm_kick(vm);
}

static enum vm_exit_reason run_serial(struct vm *vm, const struct vm_io *io) {
    atomic_bool done = false;
    run(&(struct runner){vm, ALL_HARTS, io, vm->wake_fd, &done});
    return vm->exit_reason;
}

/* ---- several harts: a thread each ---- */

static void *hart_thread_main(void *arg) {
    run(arg);
    return NULL;
}

/* Gives harts 1.. their eventfds; false if the host has none to give. */
static bool open_wake_fds(struct vm *vm) {
    for (unsigned i = vm->hart_wake_n ? vm->hart_wake_n : 1; i < vm->nharts; i++) {
        vm->hart_wake_fd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (vm->hart_wake_fd[i] < 0) return false;
        __atomic_store_n(&vm->hart_wake_n, i + 1, __ATOMIC_RELEASE);
    }
    return true;
}

static enum vm_exit_reason run_parallel(struct vm *vm, const struct vm_io *io) {
    atomic_bool done = false;
    struct runner per[VM_MAX_HARTS];
    pthread_t tid[VM_MAX_HARTS];
    unsigned started = 1;
    if (open_wake_fds(vm))
        for (; started < vm->nharts; started++) {
            per[started] = (struct runner){vm, (int)started, NULL, vm->hart_wake_fd[started], &done};
            if (pthread_create(&tid[started], NULL, hart_thread_main, &per[started]) != 0) break;
        }
    if (started < vm->nharts) {
        /* Not a thread for every hart: stop those that started, run serially. */
        atomic_store(&done, true);
        vm_kick(vm);
        for (unsigned i = 1; i < started; i++) pthread_join(tid[i], NULL);
        return run_serial(vm, io);
    }
    run(&(struct runner){vm, 0, io, vm->wake_fd, &done});
    for (unsigned i = 1; i < vm->nharts; i++) pthread_join(tid[i], NULL);
    return vm->exit_reason;
}

enum vm_exit_reason vm_run(struct vm *vm, const struct vm_io *io) {
    return vm->nharts > 1 ? run_parallel(vm, io) : run_serial(vm, io);
}
