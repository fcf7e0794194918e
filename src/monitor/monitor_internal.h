/* The monitor's own structures, shared by its files (monitor.c: the VM
 * table, scheduler and memory manager; snapshot_ops.c: snapshot and
 * restore; migrate.c: live migration). Not for other layers: they use
 * monitor.h. Everything here is guarded by struct monitor's lock unless a
 * field says otherwise. */
#ifndef RVISOR_MONITOR_INTERNAL_H
#define RVISOR_MONITOR_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "monitor/machine_memory.h"
#include "monitor/mem_alloc.h"
#include "monitor/monitor.h"
#include "monitor/vm_spec_store.h"
#include "vm/vm.h"

#define CONSOLE_RING (64 * 1024)
#define INPUT_RING 4096

struct vcpu {
    bool running;              /* a worker has it */
    bool idle;                 /* waiting for wake_at_ns, an interrupt or input */
    uint64_t wake_at_ns;
    uint64_t last_turn_ns;     /* when it last got a worker: the VM's harts take turns */
    bool mem_wait;             /* its last access found no machine frame */
    uint64_t mem_wait_since;   /* when it last retired an instruction while waiting */
};

struct vm_entry {
    struct vm_entry *next;
    struct monitor *mon;
    char name[VM_NAME_MAX + 1];
    struct vm *vm;
    enum vm_run_state state;
    unsigned shares, cap_percent;
    struct vcpu vcpu[VM_MAX_HARTS];
    unsigned running;          /* how many of its harts workers have now */
    uint64_t capped_until;     /* over its cap: no hart runs before this */
    uint64_t vtime;            /* cpu_ns * DEFAULT_SHARES / shares */
    uint64_t cpu_ns;
    uint64_t cap_window_start, cap_window_used;
    /* console: guest output ring, host input queue */
    uint8_t out[CONSOLE_RING];
    uint64_t out_total;        /* bytes ever written; out holds the last CONSOLE_RING */
    uint8_t in[INPUT_RING];
    size_t in_len;
    bool feeding;              /* a worker is handing input to the guest */
    int exit_status;
    char exit_message[256];
    uint32_t id;               /* for the page-sharing table: unique, never reused */
    uint32_t share_group;      /* a group id: the name's, or one of its own */
    char share_group_name[VM_NAME_MAX + 1];
    /* Share-based allocation: the policy's view, and the balloon target
     * applied (the smaller of the user's, `rvisor balloon`, and the policy's). */
    struct mem_account acct;
    uint64_t user_keep, applied_keep; /* bytes the guest keeps */
    struct vm_spec_store spec;  /* how it was built: snapshots record it */
    /* Why it may not be stopped, destroyed or resumed now ("being
     * snapshotted", "being migrated"), or NULL. */
    const char *busy;
};

struct monitor {
    pthread_mutex_t lock;
    pthread_cond_t work;       /* a VM may have become runnable, or shutdown */
    pthread_cond_t idle_vm;    /* a worker let go of a VM */
    struct machine_memory mem;
    struct frame_source frames;
    struct event_loop *loop;   /* device I/O of every VM */
    struct vm_entry *vms;
    unsigned max_vms;
    unsigned nworkers;
    pthread_t *workers;
    bool shutting_down;
    uint32_t next_id;          /* VM and share-group ids */

    /* The memory manager: a thread that runs the page-sharing scanner and
     * reclamation (hypervisor swap), both used under lock. */
    struct page_share *share;    /* NULL: --sharing off */
    struct reclaim *reclaim;     /* NULL: --swap off */
    char swap_dir[4096];
    pthread_t manager;
    bool manager_started;
    pthread_cond_t manager_wake; /* a hart waits for memory, or shutdown */
    unsigned share_rate;
    uint64_t scan_cpu_ns, reclaim_cpu_ns;
    unsigned idle_tax;           /* percent */
    uint64_t sample_ns;          /* active-memory sampling period */
    uint64_t sample_seed;
    struct migrate_incoming *incoming; /* --incoming: the listener (migrate.c), or NULL */
    /* ESX's low state: free machine memory is under the low threshold and
     * swapping makes progress, so VMs above their targets do not run
     * until it is over (the memory manager sets it each tick). */
    bool hold_above_target;
    uint64_t low_holds;          /* times the low state began holding VMs */
};

uint64_t monitor_now_ns(void);
/* Sets err and returns code (the monitor's error convention). */
int monitor_fail(char *err, size_t errlen, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The VM named name with the monitor's lock held, or NULL (unlocked, *rc set). */
struct vm_entry *monitor_locked_entry(struct monitor *m, const char *name, char *err, size_t errlen, int *rc);
/* Waits (lock held) until no worker runs e. */
void monitor_wait_not_running(struct monitor *m, struct vm_entry *e);
/* Wakes every hart of e (lock held). */
void monitor_make_runnable(struct monitor *m, struct vm_entry *e);

/* Builds a VM from spec, fills it (boots it, or loads a snapshot) and adds
 * it to the table in state `initial` (running: its harts are woken). */
typedef bool (*vm_fill_fn)(struct vm *vm, void *ctx, char *why, size_t whylen);
int monitor_build_vm(struct monitor *m, const struct vm_spec *spec, vm_fill_fn fill, void *ctx,
                     enum vm_run_state initial, char *err, size_t errlen);

/* Stops the incoming-migration listener, if any (before VMs are destroyed). */
void monitor_incoming_stop(struct monitor *m);

#endif
