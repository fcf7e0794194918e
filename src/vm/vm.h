/* One virtual machine: its harts, guest-physical memory, devices and
 * virtual clock, and why it stopped. A VM owns everything it uses; several
 * VMs can exist in one process. */
#ifndef RVISOR_VM_H
#define RVISOR_VM_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dev/mmio.h"
#include "dev/virtio_backend.h"
#include "hart/hart.h"
#include "jit/jit.h"
#include "vm/frames.h"
#include "vm/p2m.h"
#include "vm/engine.h"
#include "vm/platform.h"

struct uart16550;
struct plic;
struct aclint;
struct goldfish_rtc;
struct syscon;
struct pvpanic;
struct vmgenid;
struct virtio_mmio;
struct virtio_console;
struct virtio_balloon;
struct event_loop;

enum vm_exit_reason {
    VM_RUNNING = 0,
    VM_EXIT_POWEROFF,    /* the guest powered off (or a bare-metal test passed) */
    VM_EXIT_RESET,       /* the guest asked for a reboot */
    VM_EXIT_PANIC,       /* the guest kernel reported a panic (pvpanic) */
    VM_EXIT_TEST_FAIL,   /* a bare-metal test reported failure (HTIF or test finisher) */
    VM_EXIT_GUEST_FAULT, /* the guest did something no hart survives */
    VM_EXIT_QUIT,        /* the user or the monitor stopped it */
};

/* Where the guest's console is: the 16550 UART (ttyS0) or virtio-console (hvc0). */
enum vm_console_device { VM_CONSOLE_UART, VM_CONSOLE_VIRTIO };

struct vm_config {
    uint64_t mem_size;
    enum vm_engine engine;
    size_t jit_code_bytes;             /* per hart; 0: JIT_DEFAULT_CODE_BYTES */
    unsigned ncpus;
    const struct frame_source *frames; /* machine memory to back guest RAM with */
    /* Virtio devices, each an option string its device parses (the strings
     * are only read during vm_create): --drive "file=disk.img,readonly=on",
     * --net "user,hostfwd=tcp::2222-:22" or "tap=tap0". */
    const char *drives[VM_MAX_DRIVES];
    unsigned ndrives;
    const char *nets[VM_MAX_NETS];
    unsigned nnets;
    enum vm_console_device console;
    bool no_balloon;                   /* leave out virtio-balloon */
    struct event_loop *loop;           /* runs device I/O; NULL: on vCPU threads */
    /* When a write finds no machine frame, the hart waits (vm_run_hart
     * returns VM_SLICE_MEMORY) for a scheduler that reclaims memory,
     * instead of the VM stopping. */
    bool wait_for_memory;
};

/* One occupied virtio-mmio slot. */
struct vm_virtio_slot {
    struct virtio_mmio *transport;
    struct virtio_backend backend;
};

/* Host side of the console: where guest output goes. write may be called
 * from any hart's thread and from the event loop (virtio-console). */
struct vm_console {
    void (*write)(void *ctx, const uint8_t *buf, size_t n);
    void *ctx;
};

/* HTIF tohost/fromhost words of a bare-metal test program (0 if absent). */
struct htif {
    uint64_t tohost, fromhost;
};

struct vm {
    struct vm_config cfg;
    struct p2m mem;
    struct mmio_bus bus;
    unsigned nharts;
    struct hart *harts[VM_MAX_HARTS];
    struct jit_hart *jit[VM_MAX_HARTS]; /* the translator's state per hart; NULL with the interpreter */

    struct uart16550 *uart;
    struct plic *plic;
    struct aclint *aclint;
    struct goldfish_rtc *rtc;
    struct syscon *syscon;
    struct pvpanic *pvpanic;
    struct vmgenid *vmgenid;
    struct vm_virtio_slot virtio[VIRT_VIRTIO_SLOTS]; /* slot i at VIRT_VIRTIO_BASE + i * VIRT_VIRTIO_SIZE */
    unsigned nvirtio;
    struct virtio_console *vconsole;  /* set when the console is virtio-console */
    struct virtio_balloon *balloon;   /* NULL with no_balloon */
    int wake_fd;                      /* eventfd: vm_run wakes when devices interrupt */
    /* Held shared by each hart's turn (run_hart), exclusively to reset the
     * code map (hart/code_cache.h): then no hart runs. */
    pthread_rwlock_t turns;
    uint32_t code_epoch[VM_MAX_HARTS]; /* the code map's epoch each hart's caches are from */
    /* vm_run's threads for harts 1.. sleep on these eventfds (created when
     * it starts; vm_kick writes the first hart_wake_n, read atomically). */
    int hart_wake_fd[VM_MAX_HARTS];
    unsigned hart_wake_n;

    struct vm_console console;
    /* Called (from any thread) when a hart may have become runnable: an IPI
     * was sent, a hart was started or a device raised an interrupt. Without
     * it, vm_kick wakes vm_run through wake_fd (and hart_wake_fd). */
    void (*kick)(void *ctx);
    void *kick_ctx;
    struct htif htif;
    bool sbi_in_monitor;       /* no M-mode firmware: the monitor answers SBI calls */
    uint64_t clock_base_ns;    /* host CLOCK_MONOTONIC when mtime was 0 */

    enum vm_exit_reason exit_reason;        /* set once the message below is complete */
    enum vm_exit_reason exit_reason_claim;  /* the first requester claims it here */
    int exit_code;             /* test failure code, reset type */
    char exit_message[256];
};

/* Creates a VM with cfg's memory and harts and the board's devices. On
 * failure returns NULL with a message in err. */
struct vm *vm_create(const struct vm_config *cfg, const struct vm_console *console, char *err, size_t errlen);
void vm_destroy(struct vm *vm);

/* The VM generation ID (dev/vmgenid.h) as a UUID string; len >= 37. */
void vm_generation_id(struct vm *vm, char *out, size_t len);
/* How many times its devices' copies to or from guest memory waited for
 * a machine frame (virtio_mmio_dma_refused with ENOMEM), in total. */
uint64_t vm_dma_waits(struct vm *vm);

/* What hart i has done so far. It may be running: each counter is read
 * as one word, so only freshness suffers. */
struct vm_hart_figures {
    uint64_t instructions;
    struct hart_stats counts;
    bool translated;      /* it runs translated code: jit holds the translator's figures */
    struct jit_stats jit;
};
void vm_hart_figures(const struct vm *vm, unsigned i, struct vm_hart_figures *out);

/* mtime: virtual platform time in timebase ticks. */
uint64_t vm_time(const struct vm *vm);
/* Makes mtime read `mtime` now and go on from there (a restored guest). */
void vm_set_time(struct vm *vm, uint64_t mtime);

/* Stops the VM for `why`; the first reason given wins. */
void vm_request_exit(struct vm *vm, enum vm_exit_reason why, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A hart may have become runnable (see vm->kick). */
void vm_kick(struct vm *vm);

/* Host input for the console (UART or virtio-console); returns the bytes accepted. */
size_t vm_console_input(struct vm *vm, const uint8_t *buf, size_t n);
size_t vm_console_input_space(const struct vm *vm);

/* Host event source for vm_run: when the VM is idle it sleeps until a timer
 * is due or wake_fd becomes readable, then calls poll. poll is also called
 * every few milliseconds while harts run. */
struct vm_io {
    int wake_fd; /* -1 if none */
    void (*poll)(void *ctx, struct vm *vm);
    void *ctx;
};

/* Runs the VM until it exits; returns the reason. A VM with several harts
 * gets a host thread per hart (the caller runs hart 0 and io). Call once. */
enum vm_exit_reason vm_run(struct vm *vm, const struct vm_io *io);

/* One turn of every hart (a few ms at most) and the devices' timers, for a
 * scheduler that runs many VMs. */
enum vm_slice {
    VM_SLICE_BUSY,    /* something ran or is pending: run again */
    VM_SLICE_IDLE,    /* every hart waits for an interrupt: nothing to do for *idle_ns */
    VM_SLICE_EXITED,  /* the VM stopped (see exit_reason) */
    VM_SLICE_MEMORY,  /* the hart needs a machine frame (wait_for_memory): run it again once some are free */
};
#define VM_MAX_IDLE_NS 100000000ull
enum vm_slice vm_run_slice(struct vm *vm, uint64_t *idle_ns);

/* The same for one hart, for a scheduler that runs a VM's harts on several
 * threads at once: VM_SLICE_IDLE also when the hart is HSM-stopped (then
 * *idle_ns is VM_MAX_IDLE_NS; vm->kick says when that may change). */
enum vm_slice vm_run_hart(struct vm *vm, unsigned i, uint64_t *idle_ns);

/* Timer and device housekeeping (the idle deadline, interrupts from time). */
void vm_update_timers(struct vm *vm);

#endif
