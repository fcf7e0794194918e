/* The monitor: a table of VMs and a pool of worker threads that run their
 * vCPUs (harts). Harts of one VM may run on several workers at once.
 *
 * Scheduling is proportional share between VMs: every VM has a virtual
 * time, the host CPU time its harts used divided by its shares, and a free
 * worker runs a runnable hart of the VM with the smallest. A hart waiting
 * in wfi is not runnable until its next timer is due, an interrupt is
 * pending or input arrives; an HSM-stopped hart until it is started; so
 * idle VMs cost no host CPU. A cap limits a VM to a percentage of one core
 * per accounting period. */
#include "monitor/monitor.h"

#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io/event_loop.h"
#include "monitor/machine_memory.h"
#include "monitor/monitor_internal.h"
#include "monitor/mem_alloc.h"
#include "monitor/mem_policy.h"
#include "monitor/page_share.h"
#include "monitor/reclaim.h"
#include "monitor/vm_spec_store.h"
#include "vm/balloon.h"
#include "vm/boot.h"
#include "vm/vm.h"

#define TURN_NS 4000000ull         /* a worker runs one VM for about this long */
#define CAP_PERIOD_NS 100000000ull /* caps are enforced over windows this long */
#define DEFAULT_SHARES 1000
#define SCAN_TICK_NS 50000000ull   /* the page-sharing scanner runs this often */
#define RECLAIM_TICK_NS 5000000ull  /* the memory manager's step while it reclaims */
#define MEM_WAIT_POLL_NS 2000000ull /* a hart waiting for memory looks again this often */
/* A hart that waited this long for a machine frame without retiring an
 * instruction stops its VM: nothing could be reclaimed (swap full). */
#define MEM_WAIT_LIMIT_NS 10000000000ull
#define POLICY_TICK_NS 1000000000ull /* memory targets and balloons are revised this often */
#define SAMPLE_FRAMES 100           /* frames per VM per sampling period, as ESX */
#define TRIM_NS 10000000000ull      /* freed heap memory goes back to the host this often */

uint64_t monitor_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

const char *monitor_strerror(int code) {
    switch (code < 0 ? -code : code) {
    case MON_OK: return "ok";
    case MON_ENOENT: return "no such VM";
    case MON_EEXIST: return "a VM of that name exists";
    case MON_EINVAL: return "invalid argument";
    case MON_ENOMEM: return "machine memory exhausted";
    case MON_ESTATE: return "not possible in the VM's current state";
    case MON_ELIMIT: return "too many VMs";
    }
    return "unknown error";
}

int monitor_fail(char *err, size_t errlen, int code, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -code;
}

/* ---- console ---- */

/* vm_console.write: runs on the worker that runs the VM. */
static void console_out(void *ctx, const uint8_t *buf, size_t n) {
    struct vm_entry *e = ctx;
    pthread_mutex_lock(&e->mon->lock);
    for (size_t i = 0; i < n; i++) e->out[(e->out_total + i) % CONSOLE_RING] = buf[i];
    e->out_total += n;
    pthread_mutex_unlock(&e->mon->lock);
}

/* Moves queued input into the guest's console; called with the lock held,
 * by a worker about to run the VM. The device is fed with the lock dropped:
 * devices raise interrupts that kick the scheduler, which takes the lock.
 * One worker feeds a VM at a time, so input keeps its order. */
static void feed_input(struct vm_entry *e) {
    if (!e->in_len || e->feeding) return;
    e->feeding = true;
    uint8_t buf[INPUT_RING];
    size_t n = e->in_len;
    memcpy(buf, e->in, n);
    pthread_mutex_unlock(&e->mon->lock);
    size_t k = vm_console_input(e->vm, buf, n);
    pthread_mutex_lock(&e->mon->lock);
    /* More input may have been queued meanwhile, behind what we took. */
    memmove(e->in, e->in + k, e->in_len - k);
    e->in_len -= k;
    e->feeding = false;
}

/* ---- lookup and state ---- */

static struct vm_entry *find(struct monitor *m, const char *name) {
    for (struct vm_entry *e = m->vms; e; e = e->next)
        if (strcmp(e->name, name) == 0) return e;
    return NULL;
}

/* With the lock held. */
static unsigned count_vms(const struct monitor *m) {
    unsigned n = 0;
    for (const struct vm_entry *e = m->vms; e; e = e->next) n++;
    return n;
}

/* Why a VM named name cannot join the table now (0: it can); lock held. */
static int cannot_add(struct monitor *m, const char *name, char *err, size_t errlen) {
    if (find(m, name)) return monitor_fail(err, errlen, MON_EEXIST, "a VM named '%s' exists", name);
    if (count_vms(m) >= m->max_vms)
        return monitor_fail(err, errlen, MON_ELIMIT, "the monitor already holds %u VMs, as many as it may", m->max_vms);
    return 0;
}

/* No hart of e wants the CPU: each waits (wfi) or is stopped under HSM. */
static bool vm_idle(const struct vm_entry *e) {
    for (unsigned i = 0; i < e->vm->nharts; i++) {
        const struct vcpu *c = &e->vcpu[i];
        bool stopped = __atomic_load_n(&e->vm->harts[i]->hsm_stopped, __ATOMIC_ACQUIRE);
        if (c->running || (!c->idle && !stopped)) return false;
    }
    return true;
}

/* The least virtual time of the VMs other than self that compete for the CPU. */
static uint64_t min_runnable_vtime(struct monitor *m, const struct vm_entry *self) {
    uint64_t v = UINT64_MAX;
    for (struct vm_entry *e = m->vms; e; e = e->next)
        if (e != self && e->state == VMS_RUNNING && !vm_idle(e) && e->vtime < v) v = e->vtime;
    return v;
}

/* A VM that stopped competing for the CPU (idle, paused, not yet started)
 * rejoins at most one turn ahead of those that kept competing: soon enough
 * to answer what woke it, but without the credit it did not use meanwhile,
 * which would give it every worker until the others' virtual time caught
 * up (a VM that sleeps, then spins, would starve the rest for as long as
 * it slept). Lock held. */
static void rejoin(struct monitor *m, struct vm_entry *e) {
    uint64_t v = min_runnable_vtime(m, e);
    if (v != UINT64_MAX && v > TURN_NS && e->vtime < v - TURN_NS) e->vtime = v - TURN_NS;
}

/* Wakes every hart of e (input arrived, it was resumed or started). */
void monitor_make_runnable(struct monitor *m, struct vm_entry *e) {
    rejoin(m, e);
    for (unsigned i = 0; i < e->vm->nharts; i++) e->vcpu[i].idle = false;
    pthread_cond_broadcast(&m->work);
}

/* vm->kick: an IPI or an HSM start may have made a hart runnable. */
static void kick(void *ctx) {
    struct vm_entry *e = ctx;
    pthread_mutex_lock(&e->mon->lock);
    if (e->state == VMS_RUNNING && vm_idle(e)) rejoin(e->mon, e);
    for (unsigned i = 0; i < e->vm->nharts; i++) e->vcpu[i].idle = false;
    pthread_cond_broadcast(&e->mon->work);
    pthread_mutex_unlock(&e->mon->lock);
}

static void record_exit(struct vm_entry *e) {
    static const int status[] = {
        [VM_RUNNING] = 1, [VM_EXIT_POWEROFF] = 0, [VM_EXIT_RESET] = 2, [VM_EXIT_PANIC] = 3,
        [VM_EXIT_TEST_FAIL] = 5, [VM_EXIT_GUEST_FAULT] = 4, [VM_EXIT_QUIT] = 6,
    };
    e->state = VMS_STOPPED;
    e->exit_status = status[e->vm->exit_reason];
    snprintf(e->exit_message, sizeof e->exit_message, "%s", e->vm->exit_message);
}

/* ---- workers ---- */

/* May a hart waiting for a machine frame run again? Yes once the manager
 * freed some; a hart that waited too long stops its VM instead (it runs
 * once more to notice). Lock held. */
static bool memory_for(struct vm_entry *e, struct vcpu *c, uint64_t now, uint64_t *next_wake) {
    if (machine_memory_free_frames(&e->mon->mem) > 0) return true;
    if (now - c->mem_wait_since >= MEM_WAIT_LIMIT_NS) {
        vm_request_exit(e->vm, VM_EXIT_GUEST_FAULT, 0,
                        "machine memory exhausted: a hart waited %llu s for a frame and none could be "
                        "reclaimed (swap files full or --swap off)",
                        (unsigned long long)(MEM_WAIT_LIMIT_NS / 1000000000ull));
        c->mem_wait = false;
        return true;
    }
    if (now + MEM_WAIT_POLL_NS < *next_wake) *next_wake = now + MEM_WAIT_POLL_NS;
    return false;
}

/* Can hart i of e run now? Wakes it if its time came or an interrupt is
 * pending; otherwise lowers *next_wake to when it may. */
static bool hart_runnable(struct vm_entry *e, unsigned i, uint64_t now, uint64_t *next_wake) {
    struct vcpu *c = &e->vcpu[i];
    struct hart *h = e->vm->harts[i];
    if (c->running || __atomic_load_n(&h->hsm_stopped, __ATOMIC_ACQUIRE)) return false;
    if (c->mem_wait && !memory_for(e, c, now, next_wake)) return false;
    if (c->idle && (c->wake_at_ns <= now || hart_pending_irqs(h) || e->in_len)) {
        if (vm_idle(e)) rejoin(e->mon, e);
        c->idle = false;
    }
    if (c->idle) {
        if (c->wake_at_ns < *next_wake) *next_wake = c->wake_at_ns;
        return false;
    }
    return true;
}

static uint64_t vm_alloc(const struct vm_entry *e);

/* In ESX's low state a VM above its target does not run: what it would
 * take next is what swapping is making room for. */
static bool held_in_low_state(const struct monitor *m, const struct vm_entry *e) {
    return m->hold_above_target && e->acct.target < e->acct.max && vm_alloc(e) > e->acct.target;
}

/* A runnable hart of the VM with the least virtual time. */
static struct vm_entry *pick(struct monitor *m, uint64_t now, uint64_t *next_wake, unsigned *hart) {
    struct vm_entry *best = NULL;
    unsigned best_hart = 0;
    *next_wake = UINT64_MAX;
    for (struct vm_entry *e = m->vms; e; e = e->next) {
        if (e->state != VMS_RUNNING || held_in_low_state(m, e)) continue;
        if (e->capped_until > now) {
            if (e->capped_until < *next_wake) *next_wake = e->capped_until;
            continue;
        }
        if (best && e->vtime >= best->vtime) {
            /* Still note when its harts wake, for the sleep below. */
            uint64_t ignore_wake = *next_wake;
            for (unsigned i = 0; i < e->vm->nharts; i++) hart_runnable(e, i, now, &ignore_wake);
            *next_wake = ignore_wake;
            continue;
        }
        /* Of its runnable harts, the one that waited longest: a hart spinning
         * on a lock must not starve the hart holding it. */
        bool found = false;
        unsigned h = 0;
        for (unsigned i = 0; i < e->vm->nharts; i++)
            if (hart_runnable(e, i, now, next_wake) &&
                (!found || e->vcpu[i].last_turn_ns < e->vcpu[h].last_turn_ns)) {
                found = true;
                h = i;
            }
        /* A hart that woke just now may have moved the VM's virtual time (rejoin). */
        if (found && (!best || e->vtime < best->vtime)) {
            best = e;
            best_hart = h;
        }
    }
    *hart = best_hart;
    return best;
}

/* Runs hart i of e for one turn, without the lock. */
static enum vm_slice run_turn(struct vm_entry *e, unsigned i, uint64_t *idle_ns) {
    uint64_t start = monitor_now_ns();
    enum vm_slice r;
    do {
        r = vm_run_hart(e->vm, i, idle_ns);
    } while (r == VM_SLICE_BUSY && monitor_now_ns() - start < TURN_NS);
    return r;
}

static void account(struct vm_entry *e, uint64_t used, uint64_t now) {
    e->cpu_ns += used;
    e->vtime += used * DEFAULT_SHARES / e->shares;
    if (now - e->cap_window_start >= CAP_PERIOD_NS) {
        e->cap_window_start = now;
        e->cap_window_used = 0;
    }
    e->cap_window_used += used;
    if (e->cap_percent && e->cap_window_used * 100 >= (uint64_t)e->cap_percent * CAP_PERIOD_NS)
        e->capped_until = e->cap_window_start + CAP_PERIOD_NS; /* sit out the rest of the window */
}

static void sleep_until(struct monitor *m, uint64_t now, uint64_t wake) {
    if (wake == UINT64_MAX) {
        pthread_cond_wait(&m->work, &m->lock);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t t = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + (wake - now);
    ts.tv_sec = (time_t)(t / 1000000000ull);
    ts.tv_nsec = (long)(t % 1000000000ull);
    pthread_cond_timedwait(&m->work, &m->lock, &ts);
}

static void *worker_main(void *arg) {
    struct monitor *m = arg;
    pthread_mutex_lock(&m->lock);
    while (!m->shutting_down) {
        uint64_t now = monitor_now_ns(), next_wake;
        unsigned i;
        struct vm_entry *e = pick(m, now, &next_wake, &i);
        if (!e) {
            sleep_until(m, now, next_wake);
            continue;
        }
        struct vcpu *c = &e->vcpu[i];
        c->running = true;
        c->last_turn_ns = now;
        e->running++;
        feed_input(e);
        pthread_mutex_unlock(&m->lock);

        uint64_t cpu0 = thread_cpu_ns(), idle_ns = 0, insns0 = hart_instret(e->vm->harts[i]);
        enum vm_slice r = run_turn(e, i, &idle_ns);
        uint64_t used = thread_cpu_ns() - cpu0;
        bool progressed = hart_instret(e->vm->harts[i]) != insns0;

        pthread_mutex_lock(&m->lock);
        now = monitor_now_ns();
        account(e, used, now);
        c->running = false;
        e->running--;
        if (r == VM_SLICE_EXITED) {
            /* Its other harts saw the exit request too; the last one out records it. */
            e->state = VMS_STOPPED;
            if (!e->running) record_exit(e);
        } else if (r == VM_SLICE_IDLE) {
            c->idle = true;
            c->wake_at_ns = now + idle_ns;
        }
        if (r != VM_SLICE_MEMORY) {
            c->mem_wait = false;
        } else {
            if (!c->mem_wait || progressed) c->mem_wait_since = now;
            c->mem_wait = true;
            pthread_cond_signal(&m->manager_wake);
        }
        pthread_cond_broadcast(&m->idle_vm);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

/* ---- the memory manager ---- */

static void wait_ns(struct monitor *m, uint64_t ns) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t t = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + ns;
    ts.tv_sec = (time_t)(t / 1000000000ull);
    ts.tv_nsec = (long)(t % 1000000000ull);
    pthread_cond_timedwait(&m->manager_wake, &m->lock, &ts);
}

static bool waits_for_memory(const struct vm_entry *e) {
    for (unsigned i = 0; i < e->vm->nharts; i++)
        if (e->vcpu[i].mem_wait) return true;
    return false;
}

/* Frames a VM holds: its own and those it maps shared. */
static uint64_t vm_alloc(const struct vm_entry *e) {
    return __atomic_load_n(&e->vm->mem.backed, __ATOMIC_RELAXED) + __atomic_load_n(&e->vm->mem.shared, __ATOMIC_RELAXED);
}

/* Sets e's balloon to the smaller of what the user and the policy let it
 * keep (lock held; the device takes it through the event loop). */
static void apply_balloon(struct vm_entry *e) {
    uint64_t ram = e->acct.max << 12, policy_keep = ram - (e->acct.balloon << 12);
    uint64_t keep = e->user_keep < policy_keep ? e->user_keep : policy_keep;
    if (keep == e->applied_keep || !e->vm->balloon) return;
    if (vm_balloon_set_target(e->vm, keep)) e->applied_keep = keep;
}

/* Ends every running VM's sampling period and starts the next. */
static void sample_step(struct monitor *m) {
    for (struct vm_entry *e = m->vms; e; e = e->next) {
        unsigned touched, n = p2m_sample_end(&e->vm->mem, &touched);
        if (e->state != VMS_RUNNING) continue;
        mem_account_sample(&e->acct, n, touched);
        p2m_sample_begin(&e->vm->mem, SAMPLE_FRAMES, m->sample_seed++);
    }
}

/* Share-based allocation (ESX): when the VMs hold more than machine memory
 * minus ESX's high free threshold (6%), targets are set by shares with
 * idle memory taxed, and balloons move the VMs there; reclamation swaps
 * from the VMs furthest above theirs. What a policy balloon holds counts
 * as the VM's (mem_policy.h): a VM whose target rose above what it holds
 * gets that much back; with memory plentiful (more than 10% free) every
 * policy balloon deflates. */
static void policy_step(struct monitor *m) {
    struct mem_policy_vm pv[256];
    struct vm_entry *ev[256];
    size_t n = 0;
    uint64_t held = 0;
    for (struct vm_entry *e = m->vms; e && n < 256; e = e->next) {
        if (e->state == VMS_STOPPED) continue;
        uint64_t alloc = vm_alloc(e);
        held += alloc;
        ev[n] = e;
        pv[n++] = (struct mem_policy_vm){.alloc = alloc, .ballooned = e->acct.balloon, .min = e->acct.min,
                                         .max = e->acct.max, .shares = e->acct.shares,
                                         .active = mem_account_active(&e->acct)};
    }
    uint64_t total = m->mem.nframes, used = machine_memory_used_frames(&m->mem);
    /* Shared frames count once in `used` but in every mapper's alloc. */
    uint64_t budget = total * 94 / 100 + (held > used ? held - used : 0);
    mem_policy_targets(pv, n, budget, m->idle_tax);
    uint64_t plenty = total / 10, free_frames = total > used ? total - used : 0;
    uint64_t deflate = n && free_frames > plenty ? (free_frames - plenty) / n : 0;
    for (size_t i = 0; i < n; i++) {
        struct vm_entry *e = ev[i];
        e->acct.target = pv[i].target < pv[i].alloc ? pv[i].target : e->acct.max;
        struct vm_balloon_info bi;
        if (!vm_balloon_info(e->vm, &bi) || e->state != VMS_RUNNING) continue;
        /* Decisions use the guest's free memory: keep its figures fresh. */
        if (!bi.has_stats || bi.stats_age_ms > 1000) vm_balloon_refresh_stats(e->vm);
        if (!bi.has_stats) continue;
        /* A target above what it holds: that much of the policy's balloon
         * goes back (a busy VM regains what it gave while memory was short). */
        uint64_t room = pv[i].target > pv[i].alloc ? pv[i].target - pv[i].alloc : 0;
        e->acct.balloon = mem_account_balloon(&e->acct, pv[i].alloc, bi.balloon >> 12, bi.stats.free >> 12,
                                              room > deflate ? room : deflate);
        apply_balloon(e);
    }
}

/* Swaps frames out while memory is short; true while it has work. */
static bool reclaim_step(struct monitor *m) {
    static const size_t max = 256;
    struct reclaim_vm vms[256];
    size_t n = 0;
    for (struct vm_entry *e = m->vms; e && n < max; e = e->next)
        vms[n++] = (struct reclaim_vm){.id = e->id, .mem = &e->vm->mem, .waiting = waits_for_memory(e),
                                        .over = vm_alloc(e) > e->acct.target ? vm_alloc(e) - e->acct.target : 0};
    uint64_t cpu0 = thread_cpu_ns();
    bool busy = reclaim_tick(m->reclaim, vms, n);
    m->reclaim_cpu_ns += thread_cpu_ns() - cpu0;
    /* Held only while swapping goes on: with nothing left to swap, holding
     * VMs would free nothing. */
    struct reclaim_stats rs;
    reclaim_get_stats(m->reclaim, &rs);
    bool hold = rs.state == RECLAIM_LOW && busy;
    if (hold && !m->hold_above_target) m->low_holds++;
    if (!hold && m->hold_above_target) pthread_cond_broadcast(&m->work); /* held VMs may run again */
    m->hold_above_target = hold;
    /* Harts waiting for memory may run now. */
    if (machine_memory_free_frames(&m->mem) > 0) pthread_cond_broadcast(&m->work);
    return busy;
}

static void scan_step(struct monitor *m, unsigned budget) {
    struct share_vm vms[256];
    uint64_t cpu0 = thread_cpu_ns();
    unsigned n = 0;
    for (struct vm_entry *e = m->vms; e && n < sizeof vms / sizeof vms[0]; e = e->next)
        vms[n++] = (struct share_vm){.id = e->id, .group = e->share_group, .mem = &e->vm->mem};
    page_share_tick(m->share, vms, n, budget);
    m->scan_cpu_ns += thread_cpu_ns() - cpu0;
}

static void *manager_main(void *arg) {
    struct monitor *m = arg;
    /* A sharing batch takes three ticks (build, two grace periods): hash three ticks' worth. */
    unsigned budget = (unsigned)((uint64_t)m->share_rate * SCAN_TICK_NS * 3 / 1000000000ull);
    if (budget == 0) budget = 1;
    uint64_t last_scan = 0, last_policy = 0, last_sample = monitor_now_ns(), last_trim = last_sample;
    bool reclaiming = false;
    pthread_mutex_lock(&m->lock);
    while (!m->shutting_down) {
        wait_ns(m, reclaiming ? RECLAIM_TICK_NS : SCAN_TICK_NS);
        if (m->shutting_down) break;
        if (m->reclaim) reclaiming = reclaim_step(m);
        uint64_t now = monitor_now_ns();
        if (m->share && now - last_scan >= SCAN_TICK_NS) {
            last_scan = now;
            scan_step(m, budget);
        }
        if (now - last_sample >= m->sample_ns) {
            last_sample = now;
            sample_step(m);
        }
        if (now - last_policy >= POLICY_TICK_NS) {
            last_policy = now;
            policy_step(m);
        }
        if (now - last_trim >= TRIM_NS) {
            /* glibc gives back only the tops of its arenas: without this the
             * monitor's resident memory crept up with what its threads
             * allocate and free (connections, VMs made, libslirp's buffers;
             * bench/soak.py). A few milliseconds, without the lock. */
            last_trim = now;
            pthread_mutex_unlock(&m->lock);
            malloc_trim(0);
            pthread_mutex_lock(&m->lock);
        }
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

void monitor_sharing(struct monitor *m, struct monitor_sharing *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&m->lock);
    out->enabled = m->share != NULL;
    out->rate = m->share ? m->share_rate : 0;
    if (m->share) {
        struct page_share_stats st;
        page_share_get_stats(m->share, &st);
        out->scanned = st.scanned;
        out->merged = st.merged;
        out->zero_merged = st.zero_merged;
        out->cancelled = st.cancelled;
        out->different = st.different;
        out->shared_frames = st.shared_frames;
    }
    for (struct vm_entry *e = m->vms; e; e = e->next) {
        out->sharing_pages += __atomic_load_n(&e->vm->mem.shared, __ATOMIC_RELAXED);
        out->cow_breaks += __atomic_load_n(&e->vm->mem.cow_breaks, __ATOMIC_RELAXED);
    }
    out->scan_cpu_ns = m->scan_cpu_ns;
    pthread_mutex_unlock(&m->lock);
    out->used_frames = machine_memory_used_frames(&m->mem);
}

void monitor_swap(struct monitor *m, struct monitor_swap *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&m->lock);
    out->enabled = m->reclaim != NULL;
    out->state = reclaim_state_name(reclaim_state_for(machine_memory_free_frames(&m->mem), m->mem.nframes));
    if (m->reclaim) {
        struct reclaim_stats st;
        reclaim_get_stats(m->reclaim, &st);
        out->cancelled = st.cancelled;
        out->errors = st.errors;
    }
    for (struct vm_entry *e = m->vms; e; e = e->next) {
        out->swapped += __atomic_load_n(&e->vm->mem.swapped, __ATOMIC_RELAXED);
        out->swap_outs += __atomic_load_n(&e->vm->mem.swap_outs, __ATOMIC_RELAXED);
        out->swap_ins += __atomic_load_n(&e->vm->mem.swap_ins, __ATOMIC_RELAXED);
        for (unsigned i = 0; i < e->vm->nharts; i++) out->waiting += e->vcpu[i].mem_wait;
    }
    out->cpu_ns = m->reclaim_cpu_ns;
    out->low_holds = m->low_holds;
    out->holding = m->hold_above_target;
    pthread_mutex_unlock(&m->lock);
}

/* ---- lifecycle ---- */

struct monitor *monitor_create(const struct monitor_config *cfg, char *err, size_t errlen) {
    struct monitor *m = calloc(1, sizeof *m);
    if (!m) {
        monitor_fail(err, errlen, MON_ENOMEM, "out of memory");
        return NULL;
    }
    uint64_t bytes = cfg->machine_mem ? cfg->machine_mem : machine_memory_default_size();
    if (!machine_memory_init(&m->mem, bytes)) {
        monitor_fail(err, errlen, MON_ENOMEM, "cannot reserve %llu MiB of machine memory: %s",
             (unsigned long long)(bytes >> 20), strerror(errno));
        free(m);
        return NULL;
    }
    m->frames = machine_memory_source(&m->mem);
    m->max_vms = cfg->max_vms ? cfg->max_vms : MONITOR_MAX_VMS;
    m->loop = event_loop_create(err, errlen);
    if (!m->loop) {
        machine_memory_destroy(&m->mem);
        free(m);
        return NULL;
    }
    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->work, &ca);
    pthread_cond_init(&m->idle_vm, &ca);
    pthread_cond_init(&m->manager_wake, &ca);
    pthread_condattr_destroy(&ca);
    if (!cfg->no_sharing) {
        m->share_rate = cfg->share_rate ? cfg->share_rate : MONITOR_SHARE_RATE;
        m->share = page_share_create(&m->mem);
    }
    m->idle_tax = cfg->idle_tax_set ? cfg->idle_tax : MONITOR_IDLE_TAX;
    if (m->idle_tax > 99) m->idle_tax = 99;
    m->sample_ns = (uint64_t)(cfg->sample_ms ? cfg->sample_ms : MONITOR_SAMPLE_MS) * 1000000ull;
    m->sample_seed = (uint64_t)monitor_now_ns();
    if (!cfg->no_swap) {
        const char *dir = cfg->swap_dir ? cfg->swap_dir : getenv("TMPDIR");
        snprintf(m->swap_dir, sizeof m->swap_dir, "%s", dir && dir[0] ? dir : "/var/tmp");
        m->reclaim = reclaim_create(&m->mem);
    }
    m->manager_started = pthread_create(&m->manager, NULL, manager_main, m) == 0;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    m->nworkers = cfg->workers ? cfg->workers : (cores > 0 ? (unsigned)cores : 1);
    m->workers = calloc(m->nworkers, sizeof *m->workers);
    for (unsigned i = 0; m->workers && i < m->nworkers; i++) pthread_create(&m->workers[i], NULL, worker_main, m);
    return m;
}

static void free_entry(struct vm_entry *e) {
    vm_destroy(e->vm);
    vm_spec_store_free(&e->spec);
    free(e);
}

void monitor_destroy(struct monitor *m) {
    if (!m) return;
    monitor_incoming_stop(m);
    pthread_mutex_lock(&m->lock);
    m->shutting_down = true;
    for (struct vm_entry *e = m->vms; e; e = e->next) vm_request_exit(e->vm, VM_EXIT_QUIT, 0, "monitor shut down");
    pthread_cond_broadcast(&m->work);
    pthread_mutex_unlock(&m->lock);
    pthread_cond_broadcast(&m->manager_wake);
    for (unsigned i = 0; m->workers && i < m->nworkers; i++) pthread_join(m->workers[i], NULL);
    if (m->manager_started) pthread_join(m->manager, NULL);
    /* Before the VMs: a batch in flight holds protected frames of theirs. */
    reclaim_destroy(m->reclaim);
    while (m->vms) {
        struct vm_entry *e = m->vms;
        m->vms = e->next;
        if (m->share) page_share_forget_vm(m->share, e->id);
        free_entry(e);
    }
    /* After the VMs: the table holds the last references to shared frames. */
    page_share_destroy(m->share);
    pthread_cond_destroy(&m->manager_wake);
    free(m->workers);
    event_loop_destroy(m->loop);
    machine_memory_destroy(&m->mem);
    pthread_cond_destroy(&m->work);
    pthread_cond_destroy(&m->idle_vm);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static bool valid_name(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n > VM_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.'))
            return false;
    }
    return true;
}

int monitor_build_vm(struct monitor *m, const struct vm_spec *spec, vm_fill_fn fill, void *ctx,
                    enum vm_run_state initial, char *err, size_t errlen) {
    if (!valid_name(spec->name))
        return monitor_fail(err, errlen, MON_EINVAL, "VM names are 1 to %d letters, digits, '.', '_' or '-'", VM_NAME_MAX);
    if (spec->mem_size < (1 << 20)) return monitor_fail(err, errlen, MON_EINVAL, "guest memory must be at least 1 MiB");
    if (spec->mem_size & 0xfff) return monitor_fail(err, errlen, MON_EINVAL, "guest memory must be a multiple of 4 KiB");
    /* The API's own bound, again: a snapshot file or a migration stream
     * carries its VM's spec past the request parser. */
    if (spec->mem_size > VM_SPEC_MAX_MEM)
        return monitor_fail(err, errlen, MON_EINVAL, "guest memory must be at most %llu GiB",
                            (unsigned long long)(VM_SPEC_MAX_MEM >> 30));
    if (spec->cpus < 1 || spec->cpus > VM_MAX_HARTS)
        return monitor_fail(err, errlen, MON_EINVAL, "cpus must be between 1 and %d", VM_MAX_HARTS);
    unsigned shares = spec->shares ? spec->shares : DEFAULT_SHARES;
    if (shares > 100000) return monitor_fail(err, errlen, MON_EINVAL, "shares must be between 1 and 100000");
    if (spec->cap_percent > 100) return monitor_fail(err, errlen, MON_EINVAL, "cap must be between 0 and 100 percent");
    if (spec->engine != VM_ENGINE_DEFAULT && spec->engine != VM_ENGINE_JIT && spec->engine != VM_ENGINE_INTERP)
        return monitor_fail(err, errlen, MON_EINVAL, "the engine must be jit or interp");
    if (spec->jit_cache && (spec->jit_cache < VM_JIT_CACHE_MIN || spec->jit_cache > VM_JIT_CACHE_MAX))
        return monitor_fail(err, errlen, MON_EINVAL, "the JIT code cache must be from %llu MiB to %llu MiB",
                    (unsigned long long)(VM_JIT_CACHE_MIN >> 20), (unsigned long long)(VM_JIT_CACHE_MAX >> 20));

    if (spec->mem_min > spec->mem_size)
        return monitor_fail(err, errlen, MON_EINVAL, "the guaranteed memory (mem_min) cannot exceed the VM's memory");
    if (spec->mem_shares > 1000000000u)
        return monitor_fail(err, errlen, MON_EINVAL, "memory shares must be from 1 to 1000000000");
    if (spec->share_group[0] && !valid_name(spec->share_group))
        return monitor_fail(err, errlen, MON_EINVAL, "share group names are 1 to %d letters, digits, '.', '_' or '-'",
                    VM_NAME_MAX);

    struct vm_entry *e = calloc(1, sizeof *e);
    if (!e) return monitor_fail(err, errlen, MON_ENOMEM, "out of host memory");
    if (!vm_spec_store_copy(&e->spec, spec)) {
        free_entry(e);
        return monitor_fail(err, errlen, MON_ENOMEM, "out of host memory");
    }
    e->mon = m;
    snprintf(e->share_group_name, sizeof e->share_group_name, "%s", spec->share_group);
    snprintf(e->name, sizeof e->name, "%s", spec->name);
    e->shares = shares;
    e->cap_percent = spec->cap_percent;
    mem_account_init(&e->acct, spec->mem_size, spec->mem_min, spec->mem_shares);
    e->user_keep = e->applied_keep = spec->mem_size;

    /* Checked before the costly loading and again when it is done: other
     * creates may have run meanwhile. */
    pthread_mutex_lock(&m->lock);
    int rc = cannot_add(m, spec->name, err, errlen);
    pthread_mutex_unlock(&m->lock);
    if (rc) {
        free_entry(e);
        return rc;
    }

    struct vm_config cfg = {
        .mem_size = spec->mem_size, .ncpus = spec->cpus, .frames = &m->frames,
        .engine = spec->engine, .jit_code_bytes = (size_t)spec->jit_cache,
        .ndrives = spec->ndrives, .nnets = spec->nnets,
        .console = spec->virtio_console ? VM_CONSOLE_VIRTIO : VM_CONSOLE_UART,
        .no_balloon = spec->no_balloon, .loop = m->loop,
        .wait_for_memory = m->reclaim != NULL,
    };
    for (unsigned i = 0; i < spec->ndrives && i < VM_MAX_DRIVES; i++) cfg.drives[i] = spec->drives[i];
    for (unsigned i = 0; i < spec->nnets && i < VM_MAX_NETS; i++) cfg.nets[i] = spec->nets[i];
    struct vm_console vc = {.write = console_out, .ctx = e};
    char why[512];
    e->vm = vm_create(&cfg, &vc, why, sizeof why);
    if (!e->vm) {
        free_entry(e);
        return monitor_fail(err, errlen, MON_EINVAL, "%s", why);
    }
    e->vm->kick = kick;
    e->vm->kick_ctx = e;
    /* A swap file as large as its RAM: the guest can always be swapped out whole. */
    if (m->reclaim && !p2m_swap_init(&e->vm->mem, m->swap_dir, spec->mem_size, why, sizeof why)) {
        free_entry(e);
        return monitor_fail(err, errlen, MON_EINVAL, "%s (choose another with --swap-dir, or --swap off)", why);
    }
    if (!fill(e->vm, ctx, why, sizeof why)) {
        int code = e->vm->mem.exhausted ? MON_ENOMEM : MON_EINVAL;
        free_entry(e);
        return monitor_fail(err, errlen, code, "%s", why);
    }

    pthread_mutex_lock(&m->lock);
    if ((rc = cannot_add(m, spec->name, err, errlen)) != 0) {
        pthread_mutex_unlock(&m->lock);
        free_entry(e);
        return rc;
    }
    e->state = initial;
    if (initial == VMS_RUNNING) {
        e->cap_window_start = monitor_now_ns();
        monitor_make_runnable(m, e);
    }
    e->id = ++m->next_id;
    e->share_group = ++m->next_id; /* its own, unless it names an existing group */
    if (e->share_group_name[0])
        for (struct vm_entry *o = m->vms; o; o = o->next)
            if (strcmp(o->share_group_name, e->share_group_name) == 0) {
                e->share_group = o->share_group;
                break;
            }
    e->next = m->vms;
    m->vms = e;
    pthread_mutex_unlock(&m->lock);
    return 0;
}

static bool boot_fill(struct vm *vm, void *ctx, char *why, size_t whylen) {
    const struct vm_spec *spec = ctx;
    struct boot_config bc = {.kernel = spec->kernel, .initrd = spec->initrd, .append = spec->append, .bios = spec->bios};
    return vm_boot(vm, &bc, why, whylen);
}

int monitor_vm_create(struct monitor *m, const struct vm_spec *spec, char *err, size_t errlen) {
    return monitor_build_vm(m, spec, boot_fill, (void *)spec, VMS_CREATED, err, errlen);
}

/* Looks e up and checks its state under the lock; on success the lock stays held. */
struct vm_entry *monitor_locked_entry(struct monitor *m, const char *name, char *err, size_t errlen, int *rc) {
    pthread_mutex_lock(&m->lock);
    struct vm_entry *e = find(m, name);
    if (!e) {
        pthread_mutex_unlock(&m->lock);
        *rc = monitor_fail(err, errlen, MON_ENOENT, "no VM named '%s'", name);
    }
    return e;
}

int monitor_vm_start(struct monitor *m, const char *name, char *err, size_t errlen) {
    int rc = 0;
    struct vm_entry *e = monitor_locked_entry(m, name, err, errlen, &rc);
    if (!e) return rc;
    if (e->state != VMS_CREATED) {
        rc = monitor_fail(err, errlen, MON_ESTATE, "VM '%s' was already started", name);
    } else {
        e->state = VMS_RUNNING;
        e->cap_window_start = monitor_now_ns();
        e->vm->clock_base_ns = e->cap_window_start; /* the guest's clock starts now */
        monitor_make_runnable(m, e);
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int monitor_vm_pause(struct monitor *m, const char *name, char *err, size_t errlen) {
    int rc = 0;
    struct vm_entry *e = monitor_locked_entry(m, name, err, errlen, &rc);
    if (!e) return rc;
    if (e->state != VMS_RUNNING) {
        rc = monitor_fail(err, errlen, MON_ESTATE, "VM '%s' is not running", name);
    } else {
        e->state = VMS_PAUSED;
        /* No guest instruction runs once this returns: wait for a worker in
         * the middle of a turn of it (on a busy host that turn may go on
         * long after the pause). The lock is let go while waiting, so the
         * VM may be resumed, or destroyed (and its name reused), meanwhile. */
        uint32_t id = e->id;
        while (e->running && e->state == VMS_PAUSED) {
            pthread_cond_wait(&m->idle_vm, &m->lock);
            e = find(m, name);
            if (!e || e->id != id) break;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int monitor_vm_resume(struct monitor *m, const char *name, char *err, size_t errlen) {
    int rc = 0;
    struct vm_entry *e = monitor_locked_entry(m, name, err, errlen, &rc);
    if (!e) return rc;
    if (e->state != VMS_PAUSED) {
        rc = monitor_fail(err, errlen, MON_ESTATE, "VM '%s' is not paused", name);
    } else if (e->busy) {
        rc = monitor_fail(err, errlen, MON_ESTATE, "VM '%s' is %s: it runs on when that is done", name, e->busy);
    } else {
        e->state = VMS_RUNNING;
        monitor_make_runnable(m, e);
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* Waits (lock held) until no worker runs e. */
void monitor_wait_not_running(struct monitor *m, struct vm_entry *e) {
    while (e->running) pthread_cond_wait(&m->idle_vm, &m->lock);
}

int monitor_vm_stop(struct monitor *m, const char *name, char *err, size_t errlen) {
    int rc = 0;
    struct vm_entry *e = monitor_locked_entry(m, name, err, errlen, &rc);
    if (!e) return rc;
    if (e->state == VMS_STOPPED) {
        rc = monitor_fail(err, errlen, MON_ESTATE, "VM '%s' is already stopped", name);
    } else if (e->busy) {
        rc = monitor_fail(err, errlen, MON_ESTATE, "VM '%s' is %s: try again when that is done", name, e->busy);
    } else {
        vm_request_exit(e->vm, VM_EXIT_QUIT, 0, "stopped by the monitor");
        monitor_wait_not_running(m, e);
        record_exit(e);
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int monitor_vm_destroy(struct monitor *m, const char *name, char *err, size_t errlen) {
    int rc = 0;
    struct vm_entry *e = monitor_locked_entry(m, name, err, errlen, &rc);
    if (!e) return rc;
    if (e->busy) {
        pthread_mutex_unlock(&m->lock);
        return monitor_fail(err, errlen, MON_ESTATE, "VM '%s' is %s: try again when that is done", name, e->busy);
    }
    vm_request_exit(e->vm, VM_EXIT_QUIT, 0, "destroyed by the monitor");
    e->state = VMS_STOPPED;
    monitor_wait_not_running(m, e);
    if (m->share) page_share_forget_vm(m->share, e->id);
    if (m->reclaim) reclaim_forget_vm(m->reclaim, e->id);
    for (struct vm_entry **p = &m->vms; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            break;
        }
    pthread_mutex_unlock(&m->lock);
    free_entry(e);
    if (m->share) {
        pthread_mutex_lock(&m->lock);
        page_share_sweep(m->share);
        pthread_mutex_unlock(&m->lock);
    }
    /* Hand the host what the VM's structures held: glibc otherwise keeps
     * freed memory in its arenas (only their tops are given back), and a
     * monitor that makes and destroys VMs grew by megabytes a cycle
     * (bench/soak.py). */
    malloc_trim(0);
    return 0;
}

static void fill_info(const struct vm_entry *e, struct vm_info *out) {
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", e->name);
    out->state = e->state;
    out->cpus = e->vm->nharts;
    out->shares = e->shares;
    out->cap_percent = e->cap_percent;
    out->mem_size = e->vm->mem.size;
    out->mem_backed = __atomic_load_n(&e->vm->mem.backed, __ATOMIC_RELAXED) << 12;
    const struct p2m *pm = &e->vm->mem;
    out->pages.backed = __atomic_load_n(&pm->backed, __ATOMIC_RELAXED);
    out->pages.shared = __atomic_load_n(&pm->shared, __ATOMIC_RELAXED);
    uint64_t held = out->pages.backed + out->pages.shared + __atomic_load_n(&pm->swapped, __ATOMIC_RELAXED) +
                    __atomic_load_n(&pm->imaged, __ATOMIC_RELAXED);
    out->pages.zero = held < pm->nframes ? pm->nframes - held : 0;
    out->pages.zero_merged = __atomic_load_n(&pm->merged_zero, __ATOMIC_RELAXED);
    out->pages.cow_breaks = __atomic_load_n(&pm->cow_breaks, __ATOMIC_RELAXED);
    out->pages.swapped = __atomic_load_n(&pm->swapped, __ATOMIC_RELAXED);
    out->pages.swap_outs = __atomic_load_n(&pm->swap_outs, __ATOMIC_RELAXED);
    out->pages.swap_ins = __atomic_load_n(&pm->swap_ins, __ATOMIC_RELAXED);
    out->pages.dma_waits = vm_dma_waits(e->vm);
    snprintf(out->share_group, sizeof out->share_group, "%s", e->share_group_name);
    vm_generation_id(e->vm, out->generation_id, sizeof out->generation_id);
    out->alloc.min = e->acct.min << 12;
    out->alloc.shares = e->acct.shares;
    out->alloc.active_percent = e->acct.estimated ? (int)(mem_account_active(&e->acct) * 100 + 0.5) : -1;
    out->alloc.target = e->acct.target << 12;
    out->alloc.balloon = e->acct.balloon << 12;
    out->cpu_ns = e->cpu_ns;
    for (unsigned i = 0; i < e->vm->nharts; i++) {
        struct vm_hart_figures f;
        vm_hart_figures(e->vm, i, &f);
        out->instructions += f.instructions;
        out->counts.mem_ops += f.counts.mem_ops;
        out->counts.tlb_misses += f.counts.tlb_misses;
        out->counts.sbi_calls += f.counts.sbi_calls;
        out->counts.mmio += f.counts.mmio;
        out->counts.wfi += f.counts.wfi;
        out->counts.exceptions += f.counts.exceptions;
        out->counts.interrupts += f.counts.interrupts;
        if (f.translated) {
            const struct jit_stats js = f.jit;
            out->jit.blocks += js.blocks;
            out->jit.insns += js.insns;
            out->jit.code_bytes += js.code_bytes;
            out->jit.flushes += js.flushes;
            out->jit.translate_ns += js.translate_ns;
            out->jit.dispatches += js.dispatches;
            out->jit.fused += js.fused;
            out->jit.jumps += js.jumps;
            out->jit.jump_misses += js.lookups;
        }
    }
    out->engine = e->vm->cfg.engine;
    out->exit_status = e->exit_status;
    snprintf(out->exit_message, sizeof out->exit_message, "%s", e->exit_message);
    out->has_balloon = vm_balloon_info(e->vm, &out->balloon);
}

int monitor_vm_info(struct monitor *m, const char *name, struct vm_info *out) {
    pthread_mutex_lock(&m->lock);
    struct vm_entry *e = find(m, name);
    if (e) {
        fill_info(e, out);
        /* Someone looks at this VM: have its guest's figures fresh for the next look. */
        if (e->state == VMS_RUNNING) vm_balloon_refresh_stats(e->vm);
    }
    pthread_mutex_unlock(&m->lock);
    return e ? 0 : -MON_ENOENT;
}

int monitor_vm_balloon(struct monitor *m, const char *name, uint64_t bytes, char *err, size_t errlen) {
    if (bytes < (1 << 20)) return monitor_fail(err, errlen, MON_EINVAL, "a balloon target below 1 MiB leaves the guest nothing");
    int rc = 0;
    struct vm_entry *e = monitor_locked_entry(m, name, err, errlen, &rc);
    if (!e) return rc;
    /* The device takes the target through the event loop: no transport
     * lock is taken under ours (its interrupt path takes ours). */
    if (e->state == VMS_STOPPED)
        rc = monitor_fail(err, errlen, MON_ESTATE, "VM '%s' is stopped", name);
    else if (!e->vm->balloon)
        rc = monitor_fail(err, errlen, MON_EINVAL, "VM '%s' has no balloon device (it was created without one)", name);
    else {
        e->user_keep = bytes;
        apply_balloon(e);
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

size_t monitor_vm_list(struct monitor *m, struct vm_info *out, size_t max) {
    size_t n = 0;
    pthread_mutex_lock(&m->lock);
    for (struct vm_entry *e = m->vms; e; e = e->next, n++)
        if (n < max) fill_info(e, &out[n]);
    pthread_mutex_unlock(&m->lock);
    return n;
}

size_t monitor_console_read(struct monitor *m, const char *name, uint64_t *pos, void *buf, size_t len) {
    size_t n = 0;
    pthread_mutex_lock(&m->lock);
    struct vm_entry *e = find(m, name);
    if (e) {
        uint64_t oldest = e->out_total > CONSOLE_RING ? e->out_total - CONSOLE_RING : 0;
        if (*pos < oldest) *pos = oldest;
        while (n < len && *pos < e->out_total) {
            ((uint8_t *)buf)[n++] = e->out[*pos % CONSOLE_RING];
            (*pos)++;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return n;
}

long monitor_console_write(struct monitor *m, const char *name, const void *buf, size_t len) {
    pthread_mutex_lock(&m->lock);
    struct vm_entry *e = find(m, name);
    long n = -1;
    if (e) {
        size_t room = INPUT_RING - e->in_len;
        n = (long)(len < room ? len : room);
        memcpy(e->in + e->in_len, buf, (size_t)n);
        e->in_len += (size_t)n;
        if (e->state == VMS_RUNNING && n > 0) monitor_make_runnable(m, e);
    }
    pthread_mutex_unlock(&m->lock);
    return n;
}

void monitor_memory(struct monitor *m, uint64_t *total_bytes, uint64_t *free_bytes) {
    *total_bytes = (m->mem.nframes - 1) << 12;
    *free_bytes = machine_memory_free_frames(&m->mem) << 12;
}
