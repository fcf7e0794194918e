/* The monitor: many VMs in one process. It owns machine memory, the VMs
 * (by name) and the worker threads that run them, and offers the operations
 * the control API exposes. Every function here is thread safe. */
#ifndef RVISOR_MONITOR_H
#define RVISOR_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vm/balloon.h"
#include "vm/engine.h"
#include "vm/platform.h"

struct monitor;

/* VMs one monitor holds at once (created, running, paused or stopped but
 * not destroyed); a create beyond it fails with MON_ELIMIT. */
#define MONITOR_MAX_VMS 128

struct monitor_config {
    uint64_t machine_mem;  /* bytes; 0 = machine_memory_default_size() */
    unsigned workers;      /* host threads running VMs; 0 = host core count */
    bool no_sharing;       /* no page-sharing scanner */
    unsigned share_rate;   /* frames the scanner hashes per second; 0 = MONITOR_SHARE_RATE */
    unsigned max_vms;      /* 0 = MONITOR_MAX_VMS */
    bool no_swap;          /* guests stop when machine memory runs out, instead of waiting */
    bool idle_tax_set;     /* else ESX's default, MONITOR_IDLE_TAX */
    unsigned idle_tax;     /* percent, 0..99: how much more an idle page costs (ESX's tau) */
    unsigned sample_ms;    /* active-memory sampling period; 0 = MONITOR_SAMPLE_MS */
    const char *swap_dir;  /* swap files are made here; NULL: $TMPDIR or /var/tmp */
};

#define MONITOR_SHARE_RATE 20000 /* frames per second: 80 MiB/s, well under 1% of a core */
#define MONITOR_SHARE_RATE_MAX 10000000
#define MONITOR_IDLE_TAX 75        /* percent, as ESX */
#define MONITOR_SAMPLE_MS 30000    /* ESX samples 100 pages every 30 s */
#define MONITOR_SAMPLE_MS_MIN 100

#define VM_NAME_MAX 63

#define VM_SPEC_MAX_MEM (0x80000000ull * 31) /* the most guest RAM a VM may have: 62 GiB (from 2 GiB to the 64 GiB mark) */
struct vm_spec {
    char name[VM_NAME_MAX + 1];  /* [A-Za-z0-9_.-], 1..63 characters */
    const char *kernel, *initrd, *append, *bios;
    uint64_t mem_size;
    unsigned cpus;
    unsigned shares;             /* proportional CPU share, 1..100000 (default 1000) */
    unsigned cap_percent;        /* 0 = no cap, else at most this % of one host core */
    /* Virtio devices as `rvisor run` takes them (only read during create). */
    const char *drives[VM_MAX_DRIVES];
    unsigned ndrives;
    const char *nets[VM_MAX_NETS];
    unsigned nnets;
    bool virtio_console;         /* hvc0 instead of the UART */
    bool no_balloon;
    enum vm_engine engine;       /* VM_ENGINE_DEFAULT: the translator where the host has one */
    uint64_t jit_cache;          /* translated-code buffer per hart, bytes; 0: the default */
    /* Page sharing reaches across VMs only within a share group (same
     * name); empty: a group of its own. Same characters as VM names. */
    char share_group[VM_NAME_MAX + 1];
    /* Share-based memory allocation (ESX): when machine memory is short,
     * memory goes to VMs by shares, idle memory taxed; never below mem_min. */
    uint64_t mem_min;            /* bytes, <= mem_size; 0: none */
    unsigned mem_shares;         /* 0: 10 per MiB of mem_size */
};

enum vm_run_state {
    VMS_CREATED,   /* loaded, not started */
    VMS_RUNNING,
    VMS_PAUSED,
    VMS_STOPPED,   /* the guest exited or was stopped: see exit fields */
};

struct vm_info {
    char name[VM_NAME_MAX + 1];
    enum vm_run_state state;
    unsigned cpus, shares, cap_percent;
    uint64_t mem_size;       /* configured guest RAM, bytes */
    uint64_t mem_backed;     /* bytes of machine memory backing it */
    uint64_t cpu_ns;         /* host CPU time its harts have used */
    uint64_t instructions;   /* guest instructions executed */
    struct hart_counts {     /* summed over its harts, since creation */
        uint64_t mem_ops, tlb_misses, sbi_calls, mmio, wfi, exceptions, interrupts;
    } counts;
    enum vm_engine engine;   /* VM_ENGINE_JIT or VM_ENGINE_INTERP */
    struct vm_jit_counts {   /* the translator's, summed over its harts; zero with the interpreter */
        uint64_t blocks;         /* blocks translated */
        uint64_t insns;          /* guest instructions translated into them */
        uint64_t code_bytes;     /* host code in the code buffers now */
        uint64_t flushes;        /* a code buffer filled and was emptied */
        uint64_t translate_ns;   /* host time spent translating */
        uint64_t dispatches;     /* returns from translated code to the dispatcher */
        uint64_t fused;          /* instructions translated fused with the one before */
        uint64_t jumps;          /* jumps through the jump cache... */
        uint64_t jump_misses;    /* ...and how many of them missed */
    } jit;
    int exit_status;         /* as `rvisor run` would exit, once stopped */
    char exit_message[256];
    char share_group[VM_NAME_MAX + 1]; /* empty: its own */
    char generation_id[37];  /* the VM generation ID as a UUID string: a restore makes a new one */
    struct vm_mem_counts {   /* guest frames (4 KiB) by how they are held */
        uint64_t backed;         /* a machine frame of its own */
        uint64_t shared;         /* mapping a frame shared by page sharing */
        uint64_t zero;           /* never written, or given back (reads the zero frame) */
        uint64_t zero_merged;    /* found all zeros by the scanner and given back */
        uint64_t cow_breaks;     /* writes that copied a shared frame */
        uint64_t swapped;        /* in its swap file now */
        uint64_t swap_outs;      /* written to its swap file, in total */
        uint64_t swap_ins;       /* read back from it, in total */
        uint64_t dma_waits;      /* device copies that waited for a frame, in total */
    } pages;
    struct vm_mem_alloc {    /* share-based allocation */
        uint64_t min;            /* bytes guaranteed */
        unsigned shares;
        int active_percent;      /* estimated memory in active use; -1 before the first sample */
        uint64_t target;         /* bytes the policy lets it hold now (mem_size: no limit) */
        uint64_t balloon;        /* bytes the policy asks its balloon to hold */
    } alloc;
    bool has_balloon;        /* false if created with no_balloon */
    struct vm_balloon_info balloon;
};

/* Error codes returned (negated) by the operations below. */
enum monitor_error {
    MON_OK = 0,
    MON_ENOENT = 1,    /* no VM of that name */
    MON_EEXIST,        /* a VM of that name exists */
    MON_EINVAL,        /* bad argument (message in err) */
    MON_ENOMEM,        /* machine memory exhausted */
    MON_ESTATE,        /* not possible in the VM's current state */
    MON_ELIMIT,        /* the monitor holds as many VMs as it may */
};

const char *monitor_strerror(int code);

struct monitor *monitor_create(const struct monitor_config *cfg, char *err, size_t errlen);
/* Stops every VM and the workers, frees everything. */
void monitor_destroy(struct monitor *m);

/* Each returns 0 or a negated enum monitor_error, with a message in err. */
int monitor_vm_create(struct monitor *m, const struct vm_spec *spec, char *err, size_t errlen);
int monitor_vm_start(struct monitor *m, const char *name, char *err, size_t errlen);
int monitor_vm_pause(struct monitor *m, const char *name, char *err, size_t errlen);
int monitor_vm_resume(struct monitor *m, const char *name, char *err, size_t errlen);
/* Powers the guest off (it ends in VMS_STOPPED); its state stays for inspection. */
int monitor_vm_stop(struct monitor *m, const char *name, char *err, size_t errlen);
/* Stops it if needed and frees it: its machine memory returns to the pool. */
int monitor_vm_destroy(struct monitor *m, const char *name, char *err, size_t errlen);
/* Also asks a running guest for fresh memory statistics when those in
 * out->balloon are over a second old (they arrive within milliseconds). */
int monitor_vm_info(struct monitor *m, const char *name, struct vm_info *out);

/* Snapshots (vm/snapshot.h). */
struct monitor_snapshot_result {
    uint64_t bytes;     /* the snapshot file's size */
    uint64_t frames;    /* guest frames stored in it */
    uint64_t aliased;   /* guest frames stored as a reference to another's copy (page sharing) */
    uint64_t pause_ns;  /* how long the VM was stopped while its state was read */
    uint64_t total_ns;  /* the whole operation */
    bool direct;        /* memory went around the host's page cache */
};
enum monitor_snapshot_flags {
    MONITOR_SNAPSHOT_STOP = 1,   /* leave the VM paused afterwards */
    MONITOR_SNAPSHOT_DIRECT = 2, /* write memory with O_DIRECT where the file system can (snap_writer_direct) */
};
/* Saves VM name's state into path, crash-safely: until the new file is
 * complete and on disk, path keeps its previous contents. A running VM is
 * paused only while its state is read, then runs on, unless stop (it is
 * then left paused). MON_ESTATE for a VM not started or stopped. */
int monitor_vm_snapshot(struct monitor *m, const char *name, const char *path, unsigned flags,
                        struct monitor_snapshot_result *out, char *err, size_t errlen);
/* Creates VM name from the snapshot at path, running, or paused if asked.
 * A damaged, foreign or newer file is refused (MON_EINVAL) and nothing is
 * created. Disks and network cards are opened anew from the options the
 * VM was created with. */
int monitor_vm_restore(struct monitor *m, const char *path, const char *name, bool paused,
                       struct monitor_snapshot_result *out, char *err, size_t errlen);

/* Live migration (monitor/migrate.c). */
#define MONITOR_DOWNTIME_MS 300 /* QEMU's default downtime limit */
struct monitor_migrate_result {
    uint64_t total_ns;     /* from the request to the VM running on the target */
    uint64_t downtime_ns;  /* from the VM's stop here to the target's word that it runs there */
    uint64_t bytes;        /* sent */
    uint64_t frames;       /* guest frames sent, resent ones counted each time */
    unsigned rounds;       /* memory rounds, the last (VM stopped) included */
    bool throttled;        /* the VM dirtied memory faster than the link carried it: its CPU was capped */
};
/* Moves VM name to the monitor listening at uri ("tcp:HOST:PORT", HOST an
 * IPv4 address or localhost) by pre-copy: memory is sent while the VM runs,
 * then what it rewrote, round after round, until what is left fits in
 * downtime_ms (0: MONITOR_DOWNTIME_MS); then the VM stops and the rest
 * goes. On success the VM exists only on the target; on any failure it
 * runs on here (MON_EINVAL with the reason). */
int monitor_vm_migrate(struct monitor *m, const char *name, const char *uri, unsigned downtime_ms,
                       struct monitor_migrate_result *out, char *err, size_t errlen);
/* Accepts migrations at uri ("tcp:ADDR:PORT"; ADDR empty: any) on a thread
 * of its own, one at a time; a migrated VM keeps its name. */
int monitor_listen_incoming(struct monitor *m, const char *uri, char *err, size_t errlen);
/* Sets the VM's balloon so that the guest keeps `bytes` of its RAM (QEMU's
 * `balloon` command; more than its RAM deflates the balloon fully). The
 * guest's driver gets there in its own time: see vm_info.balloon. */
int monitor_vm_balloon(struct monitor *m, const char *name, uint64_t bytes, char *err, size_t errlen);
/* Fills up to max entries; returns how many VMs exist. */
size_t monitor_vm_list(struct monitor *m, struct vm_info *out, size_t max);

/* Console: guest output is kept in a per-VM ring buffer (the latest 64 KiB). */
/* Copies output from position *pos on (0 = oldest kept); advances *pos. Returns bytes copied. */
size_t monitor_console_read(struct monitor *m, const char *name, uint64_t *pos, void *buf, size_t len);
/* Queues input for the guest's UART; returns bytes accepted, or -1 if no such VM. */
long monitor_console_write(struct monitor *m, const char *name, const void *buf, size_t len);

/* Machine memory in frames: total and free. */
void monitor_memory(struct monitor *m, uint64_t *total_bytes, uint64_t *free_bytes);

/* The page-sharing scanner, for `rvisor stats` and the API's memory op. */
struct monitor_sharing {
    bool enabled;
    unsigned rate;               /* frames hashed per second at most */
    uint64_t scanned;            /* frames hashed so far */
    uint64_t merged, zero_merged, cancelled, different;
    uint64_t shared_frames;      /* machine frames shared now */
    uint64_t sharing_pages;      /* guest frames mapping them, over all VMs */
    uint64_t cow_breaks;         /* over all VMs, since they were created */
    uint64_t scan_cpu_ns;        /* host CPU time the scanner used */
    uint64_t used_frames;        /* machine frames in use */
};
void monitor_sharing(struct monitor *m, struct monitor_sharing *out);

/* Reclamation (hypervisor swap), for `rvisor memory` and the API. */
struct monitor_swap {
    bool enabled;
    const char *state;           /* high, soft, hard or low (ESX's reclamation states) */
    uint64_t swapped;            /* guest frames in swap files now, all VMs */
    uint64_t swap_outs, swap_ins;/* frames written out and read back, in total */
    uint64_t cancelled;          /* swap-outs a guest write cancelled */
    uint64_t errors;             /* swap-file writes that failed */
    unsigned waiting;            /* harts waiting for a machine frame now */
    uint64_t cpu_ns;             /* host CPU the reclaimer used */
    uint64_t low_holds;          /* times the low state held the VMs above their targets */
    bool holding;                /* it does now */
};
void monitor_swap(struct monitor *m, struct monitor_swap *out);

#endif
