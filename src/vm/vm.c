/* VM assembly (memory, harts, board devices) and the single-threaded run
 * loop: harts take turns in slices, devices and timers are serviced between
 * slices, and when every hart waits for an interrupt the loop sleeps until
 * the next timer deadline or host input. */
#include "vm/vm.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "dev/aclint.h"
#include "dev/goldfish_rtc.h"
#include "dev/irq.h"
#include "dev/plic.h"
#include "dev/pvpanic.h"
#include "dev/vmgenid.h"
#include "dev/syscon.h"
#include "dev/uart16550.h"
#include "dev/virtio_console.h"
#include "vm/virtio_slots.h"
#include "mmu/phys.h"
#include "jit/jit.h"
#include "vm/htif.h"
#include "vm/sbi.h"

#define SLICE_INSNS 20000      /* instructions a hart runs before devices are serviced */

static uint64_t host_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void vm_hart_figures(const struct vm *vm, unsigned i, struct vm_hart_figures *out) {
    const struct hart *h = vm->harts[i];
    *out = (struct vm_hart_figures){
        .instructions = __atomic_load_n(&h->icount, __ATOMIC_RELAXED),
        .counts = {
            .mem_ops = __atomic_load_n(&h->stats.mem_ops, __ATOMIC_RELAXED),
            .tlb_misses = __atomic_load_n(&h->stats.tlb_misses, __ATOMIC_RELAXED),
            .sbi_calls = __atomic_load_n(&h->stats.sbi_calls, __ATOMIC_RELAXED),
            .mmio = __atomic_load_n(&h->stats.mmio, __ATOMIC_RELAXED),
            .wfi = __atomic_load_n(&h->stats.wfi, __ATOMIC_RELAXED),
            .exceptions = __atomic_load_n(&h->stats.exceptions, __ATOMIC_RELAXED),
            .interrupts = __atomic_load_n(&h->stats.interrupts, __ATOMIC_RELAXED),
        },
        .translated = vm->jit[i] != NULL,
    };
    if (vm->jit[i]) jit_get_stats(vm->jit[i], &out->jit);
}

uint64_t vm_time(const struct vm *vm) {
    return (host_ns() - vm->clock_base_ns) / (1000000000ull / VIRT_TIMEBASE_HZ);
}

void vm_set_time(struct vm *vm, uint64_t mtime) {
    vm->clock_base_ns = host_ns() - mtime * (1000000000ull / VIRT_TIMEBASE_HZ);
}

void vm_request_exit(struct vm *vm, enum vm_exit_reason why, int code, const char *fmt, ...) {
    /* Any thread may ask; the first reason wins. The harts notice at their
     * next return to hart_run (within a slice). */
    enum vm_exit_reason running = VM_RUNNING;
    if (!__atomic_compare_exchange_n(&vm->exit_reason_claim, &running, why, false, __ATOMIC_SEQ_CST,
                                     __ATOMIC_SEQ_CST))
        return;
    vm->exit_code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(vm->exit_message, sizeof vm->exit_message, fmt, ap);
    va_end(ap);
    __atomic_store_n(&vm->exit_reason, why, __ATOMIC_SEQ_CST);
    for (unsigned i = 0; i < vm->nharts; i++) __atomic_store_n(&vm->harts[i]->exit_request, true, __ATOMIC_SEQ_CST);
}

/* ---- what the MMU sees ---- */

static bool phys_page(void *owner, uint64_t gpa, bool write, struct phys_page *out) {
    struct vm *vm = owner;
    out->host = p2m_frame(&vm->mem, gpa, write, &out->code);
    out->code_map = &vm->mem.code;
    out->zero = out->host && out->host == p2m_zero_frame(&vm->mem);
    /* Not RAM (a device, a hole): the caller decides. */
    if (out->host || !p2m_contains(&vm->mem, gpa, 1)) return out->host != NULL;
    if (vm->mem.failed)
        vm_request_exit(vm, VM_EXIT_GUEST_FAULT, 0, "%s (guest address 0x%llx)", vm->mem.failure,
                        (unsigned long long)gpa);
    else if (vm->cfg.wait_for_memory)
        out->retry = true; /* the hart waits for the monitor to free memory */
    else if (vm->mem.exhausted)
        vm_request_exit(vm, VM_EXIT_GUEST_FAULT, 0, "machine memory exhausted: no frame to back guest address 0x%llx",
                        (unsigned long long)gpa);
    return out->host != NULL;
}

static bool phys_mmio_read(void *owner, uint64_t gpa, unsigned size, uint64_t *val) {
    struct vm *vm = owner;
    return mmio_bus_read(&vm->bus, gpa, size, val);
}

static bool phys_mmio_write(void *owner, uint64_t gpa, unsigned size, uint64_t val) {
    struct vm *vm = owner;
    return mmio_bus_write(&vm->bus, gpa, size, val);
}

static void phys_code_added(void *owner, uint64_t gpa) {
    (void)gpa;
    struct vm *vm = owner;
    /* Write entries are cheap to refill; dropping all of them is simpler than finding aliases. */
    for (unsigned i = 0; i < vm->nharts; i++)
        for (int p = 0; p < 4; p++) tlb_set_drop_writes(&vm->harts[i]->tlb[p]);
}

/* Frames were dropped from the p2m: every cached translation goes (the
 * p2m waits for the harts before freeing the frames; see p2m.c). */
static void p2m_flush(void *ctx) {
    struct vm *vm = ctx;
    for (unsigned i = 0; i < vm->nharts; i++) hart_flush_tlb_remote(vm->harts[i]);
}

static const struct phys_ops vm_phys_ops = {
    .page = phys_page,
    .mmio_read = phys_mmio_read,
    .mmio_write = phys_mmio_write,
    .code_added = phys_code_added,
};

/* ---- what a hart asks of the monitor ---- */

static uint64_t env_time(void *owner) { return vm_time(owner); }

static void env_fatal(void *owner, struct hart *h, const char *why) {
    vm_request_exit(owner, VM_EXIT_GUEST_FAULT, 0, "hart %u: %s (pc=0x%llx mcause=0x%llx mtval=0x%llx)", h->id, why,
                    (unsigned long long)h->pc, (unsigned long long)h->mcause, (unsigned long long)h->mtval);
}

static void env_sbi(void *owner, struct hart *h) { sbi_call(owner, h); }

static const struct hart_env vm_hart_env = {
    .sbi_call = env_sbi,
    .time = env_time,
    .fatal = env_fatal,
};

/* ---- devices ---- */

static void uart_out(void *ctx, uint8_t byte) {
    struct vm *vm = ctx;
    if (vm->console.write) vm->console.write(vm->console.ctx, &byte, 1);
}

/* dev/ names the mip bits itself so as not to depend on hart/; they must be
 * the bits the hart takes interrupts from. */
_Static_assert(HART_IRQ_MSIP == MIP_MSIP && HART_IRQ_MTIP == MIP_MTIP && HART_IRQ_SEIP == MIP_SEIP &&
                   HART_IRQ_MEIP == MIP_MEIP,
               "dev/irq.h and hart/hart.h disagree on the mip bits");

/* The interrupt controllers' outputs: ctx is the hart. */
static void hart_pending(void *ctx, uint64_t mask, bool level) { hart_set_mip(ctx, mask, level); }

static uint64_t aclint_now(void *ctx) { return vm_time(ctx); }
static void board_kick(void *ctx) { vm_kick(ctx); }

/* Interrupt lines of the board's own devices (UART, RTC): through the PLIC,
 * and a kick, since the hart the PLIC routes it to may sleep on another
 * thread. */
static void board_irq(void *ctx, unsigned irq, bool level) {
    struct vm *vm = ctx;
    plic_set_irq(vm->plic, irq, level);
    if (level) vm_kick(vm);
}

static void syscon_event(void *ctx, enum syscon_event ev, unsigned code) {
    struct vm *vm = ctx;
    switch (ev) {
    case SYSCON_POWEROFF: vm_request_exit(vm, VM_EXIT_POWEROFF, 0, "guest powered off"); break;
    case SYSCON_RESET: vm_request_exit(vm, VM_EXIT_RESET, 0, "guest requested a reset"); break;
    case SYSCON_FAIL: vm_request_exit(vm, VM_EXIT_TEST_FAIL, (int)code, "guest reported failure code %u", code); break;
    }
}

static void pvpanic_event(void *ctx, unsigned events) {
    vm_request_exit(ctx, VM_EXIT_PANIC, (int)events, "guest kernel panicked");
}

static bool add_devices(struct vm *vm, char *err, size_t errlen) {
    struct hart_irq harts[VM_MAX_HARTS];
    for (unsigned i = 0; i < vm->nharts; i++) harts[i] = (struct hart_irq){hart_pending, vm->harts[i]};
    vm->plic = plic_create(vm->nharts, harts);
    vm->aclint = aclint_create(vm->nharts, harts, (struct aclint_host){aclint_now, board_kick, vm});
    vm->uart = uart_create((struct irq_line){board_irq, vm, VIRT_UART_IRQ}, uart_out, vm);
    vm->rtc = goldfish_rtc_create((struct irq_line){board_irq, vm, VIRT_RTC_IRQ});
    vm->syscon = syscon_create(syscon_event, vm);
    vm->pvpanic = pvpanic_create(pvpanic_event, vm);
    vm->vmgenid = vmgenid_create((struct irq_line){board_irq, vm, VIRT_VMGENID_IRQ});
    if (!vm->plic || !vm->aclint || !vm->uart || !vm->rtc || !vm->syscon || !vm->pvpanic || !vm->vmgenid) {
        snprintf(err, errlen, "out of memory creating devices");
        return false;
    }
    bool ok = mmio_bus_add(&vm->bus, VIRT_PLIC_BASE, VIRT_PLIC_SIZE, &plic_mmio_ops, vm->plic) &&
              mmio_bus_add(&vm->bus, VIRT_CLINT_BASE, VIRT_CLINT_SIZE, &aclint_mmio_ops, vm->aclint) &&
              mmio_bus_add(&vm->bus, VIRT_UART_BASE, VIRT_UART_SIZE, &uart_mmio_ops, vm->uart) &&
              mmio_bus_add(&vm->bus, VIRT_RTC_BASE, VIRT_RTC_SIZE, &goldfish_rtc_mmio_ops, vm->rtc) &&
              mmio_bus_add(&vm->bus, VIRT_SYSCON_BASE, VIRT_SYSCON_SIZE, &syscon_mmio_ops, vm->syscon) &&
              mmio_bus_add(&vm->bus, VIRT_PVPANIC_BASE, VIRT_PVPANIC_SIZE, &pvpanic_mmio_ops, vm->pvpanic) &&
              mmio_bus_add(&vm->bus, VIRT_VMGENID_BASE, VIRT_VMGENID_SIZE, &vmgenid_mmio_ops, vm->vmgenid);
    if (!ok) {
        snprintf(err, errlen, "device map overlaps");
        return false;
    }
    return virtio_slots_create(vm, err, errlen);
}

struct vm *vm_create(const struct vm_config *cfg, const struct vm_console *console, char *err, size_t errlen) {
    if (cfg->ncpus < 1 || cfg->ncpus > VM_MAX_HARTS) {
        snprintf(err, errlen, "--cpus must be between 1 and %d", VM_MAX_HARTS);
        return NULL;
    }
    struct vm *vm = calloc(1, sizeof *vm);
    if (!vm) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    vm->cfg = *cfg;
    if (vm->cfg.engine == VM_ENGINE_DEFAULT) vm->cfg.engine = jit_supported() ? VM_ENGINE_JIT : VM_ENGINE_INTERP;
    if (vm->cfg.engine == VM_ENGINE_JIT && !jit_supported()) {
        snprintf(err, errlen, "the binary translator has no backend for this host: use --engine interp");
        free(vm);
        return NULL;
    }
    vm->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (vm->wake_fd < 0) {
        snprintf(err, errlen, "cannot create an eventfd: %s", strerror(errno));
        free(vm);
        return NULL;
    }
    /* Writers first, so that a code-map reset is not starved by harts whose turns overlap. */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&vm->turns, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (console) vm->console = *console;
    if (!cfg->frames || !p2m_init(&vm->mem, VIRT_RAM_BASE, cfg->mem_size, cfg->frames)) {
        snprintf(err, errlen, "cannot set up %llu MiB of guest memory: %s",
                 (unsigned long long)(cfg->mem_size >> 20), strerror(errno));
        close(vm->wake_fd);
        free(vm);
        return NULL;
    }
    vm->mem.flush = p2m_flush;
    vm->mem.flush_ctx = vm;
    /* Only the translator runs this VM's code: no decoded slots to keep. */
    if (vm->cfg.engine == VM_ENGINE_JIT) code_map_make_slotless(&vm->mem.code);
    /* Decoded code for up to 1/16 of its frames (at least 16 MiB of code,
     * far more than a kernel and its programs run: a default boot holds
     * ~520 pages), each costing a host page (translator) or up to ~48 KiB
     * (interpreter); a guest spraying code resets the map. */
    code_map_set_budget(&vm->mem.code, vm->mem.nframes / 16 > 4096 ? vm->mem.nframes / 16 : 4096);
    vm->nharts = cfg->ncpus;
    for (unsigned i = 0; i < vm->nharts; i++) {
        vm->harts[i] = aligned_alloc(64, (sizeof(struct hart) + 63) & ~(size_t)63);
        if (!vm->harts[i]) {
            snprintf(err, errlen, "out of memory");
            vm_destroy(vm);
            return NULL;
        }
        hart_init(vm->harts[i], i, &vm_phys_ops, &vm_hart_env, vm);
        vm->harts[i]->remap_gen = &vm->mem.remap_gen;
        vm->mem.ncpus = i + 1;
        if (vm->cfg.engine == VM_ENGINE_JIT) {
            vm->jit[i] = jit_hart_new(vm->harts[i], cfg->jit_code_bytes ? cfg->jit_code_bytes : JIT_DEFAULT_CODE_BYTES);
            if (!vm->jit[i]) {
                snprintf(err, errlen, "cannot map executable memory for the binary translator: %s", strerror(errno));
                vm_destroy(vm);
                return NULL;
            }
        }
    }
    if (!add_devices(vm, err, errlen)) {
        vm_destroy(vm);
        return NULL;
    }
    vm->clock_base_ns = host_ns();
    return vm;
}

void vm_generation_id(struct vm *vm, char *out, size_t len) {
    uint8_t id[VMGENID_SIZE];
    vmgenid_get(vm->vmgenid, id);
    snprintf(out, len, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", id[0], id[1], id[2],
             id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10], id[11], id[12], id[13], id[14], id[15]);
}

uint64_t vm_dma_waits(struct vm *vm) {
    uint64_t n = 0;
    for (unsigned i = 0; i < vm->nvirtio; i++) n += virtio_mmio_dma_deferred(vm->virtio[i].transport);
    return n;
}

void vm_destroy(struct vm *vm) {
    if (!vm) return;
    virtio_slots_destroy(vm);
    uart_destroy(vm->uart);
    plic_destroy(vm->plic);
    aclint_destroy(vm->aclint);
    goldfish_rtc_destroy(vm->rtc);
    syscon_destroy(vm->syscon);
    pvpanic_destroy(vm->pvpanic);
    vmgenid_destroy(vm->vmgenid);
    if (vm->wake_fd >= 0) close(vm->wake_fd);
    for (unsigned i = 1; i < vm->hart_wake_n; i++) close(vm->hart_wake_fd[i]);
    for (unsigned i = 0; i < vm->nharts; i++) {
        free(vm->harts[i]);
        jit_hart_free(vm->jit[i]);
    }
    p2m_destroy(&vm->mem);
    pthread_rwlock_destroy(&vm->turns);
    free(vm);
}

void vm_kick(struct vm *vm) {
    if (vm->kick) {
        vm->kick(vm->kick_ctx);
        return;
    }
    uint64_t one = 1;
    ssize_t r = write(vm->wake_fd, &one, sizeof one);
    /* Every hart thread of vm_run checks whether the kick was for it. */
    unsigned n = __atomic_load_n(&vm->hart_wake_n, __ATOMIC_ACQUIRE);
    for (unsigned i = 1; i < n; i++) r = write(vm->hart_wake_fd[i], &one, sizeof one);
    (void)r; /* a full counter is as good as our increment */
}

size_t vm_console_input(struct vm *vm, const uint8_t *buf, size_t n) {
    return vm->vconsole ? virtio_console_input(vm->vconsole, buf, n) : uart_receive(vm->uart, buf, n);
}

size_t vm_console_input_space(const struct vm *vm) {
    return vm->vconsole ? virtio_console_input_space(vm->vconsole) : uart_rx_space(vm->uart);
}

/* ---- time and the run loop ---- */

void vm_update_timers(struct vm *vm) {
    uint64_t now = vm_time(vm);
    aclint_update(vm->aclint, now);
    goldfish_rtc_update(vm->rtc);
    if (vm->sbi_in_monitor)
        for (unsigned i = 0; i < vm->nharts; i++) {
            struct hart *h = vm->harts[i];
            if (now >= __atomic_load_n(&h->stimecmp, __ATOMIC_RELAXED)) hart_set_mip(h, MIP_STIP, true);
        }
}

/* Earliest mtime at which a timer interrupt becomes due. */
/* Earliest future mtime at which a timer interrupt becomes due for hart
 * `only` (or any hart if only < 0). Timers that already fired do not count:
 * their interrupt is pending already, and waiting for them again would spin. */
static uint64_t next_deadline(const struct vm *vm, int only, uint64_t now) {
    uint64_t d = aclint_next_deadline(vm->aclint);
    if (vm->sbi_in_monitor)
        for (unsigned i = 0; i < vm->nharts; i++) {
            uint64_t t = __atomic_load_n(&vm->harts[i]->stimecmp, __ATOMIC_RELAXED);
            if ((only < 0 || (unsigned)only == i) && t > now && t < d) d = t;
        }
    return d;
}

/* How long nothing is due, capped at VM_MAX_IDLE_NS. */
static uint64_t idle_time(const struct vm *vm, int only) {
    uint64_t now = vm_time(vm), deadline = next_deadline(vm, only, now);
    uint64_t ticks = deadline > now ? deadline - now : 0;
    uint64_t ns = ticks > VIRT_TIMEBASE_HZ ? 1000000000ull : ticks * (1000000000ull / VIRT_TIMEBASE_HZ);
    return ns < VM_MAX_IDLE_NS ? ns : VM_MAX_IDLE_NS;
}

/* Set by vm_request_exit on any thread. */
static bool exited(const struct vm *vm) { return __atomic_load_n(&vm->exit_reason, __ATOMIC_ACQUIRE) != VM_RUNNING; }

/* A hart's caches hold pointers into the code map's pages: after a reset
 * it forgets them all before it runs. */
static void forget_old_code(struct vm *vm, unsigned i) {
    uint32_t epoch = code_map_epoch(&vm->mem.code);
    if (vm->code_epoch[i] == epoch) return;
    hart_flush_tlb(vm->harts[i]);
    if (vm->jit[i]) jit_forget_code(vm->jit[i], vm->harts[i]);
    vm->code_epoch[i] = epoch;
}

/* One hart_run, inside a p2m turn: the p2m frees dropped frames only once
 * every hart has been outside hart_run since (see p2m.c). A turn holds
 * the turn lock shared; a code map over its budget is reset after a turn
 * with it held exclusively (writers first: the other harts finish their
 * turns, a slice at most, and wait). */
static enum hart_stop run_hart(struct vm *vm, unsigned i) {
    pthread_rwlock_rdlock(&vm->turns);
    p2m_turn_begin(&vm->mem, i);
    forget_old_code(vm, i);
    enum hart_stop s = vm->jit[i] ? jit_run(vm->jit[i], vm->harts[i], SLICE_INSNS) : hart_run(vm->harts[i], SLICE_INSNS);
    p2m_turn_end(&vm->mem, i);
    pthread_rwlock_unlock(&vm->turns);
    if (code_map_over_budget(&vm->mem.code)) {
        pthread_rwlock_wrlock(&vm->turns);
        if (code_map_over_budget(&vm->mem.code)) code_map_reset(&vm->mem.code);
        pthread_rwlock_unlock(&vm->turns);
    }
    return s;
}

enum vm_slice vm_run_slice(struct vm *vm, uint64_t *idle_ns) {
    if (exited(vm)) return VM_SLICE_EXITED;
    bool any_busy = false;
    for (unsigned i = 0; i < vm->nharts; i++)
        if (run_hart(vm, i) == HART_RAN) any_busy = true;
    vm_update_timers(vm);
    htif_poll(vm);
    if (exited(vm)) return VM_SLICE_EXITED;
    if (any_busy) return VM_SLICE_BUSY;
    for (unsigned i = 0; i < vm->nharts; i++)
        if (!vm->harts[i]->hsm_stopped && hart_pending_irqs(vm->harts[i])) return VM_SLICE_BUSY;
    /* Every hart waits: sleep until the next timer is due, and at most
     * 100 ms (RTC alarms and other slow events are checked then). */
    *idle_ns = idle_time(vm, -1);
    return VM_SLICE_IDLE;
}

enum vm_slice vm_run_hart(struct vm *vm, unsigned i, uint64_t *idle_ns) {
    if (exited(vm)) return VM_SLICE_EXITED;
    struct hart *h = vm->harts[i];
    h->mem_stall = false;
    enum hart_stop s = run_hart(vm, i);
    vm_update_timers(vm);
    if (i == 0) htif_poll(vm);
    if (exited(vm)) return VM_SLICE_EXITED;
    if (s == HART_MEMORY) return VM_SLICE_MEMORY;
    if (s == HART_RAN || (s == HART_IDLE && hart_pending_irqs(h))) return VM_SLICE_BUSY;
    if (s == HART_STOPPED) {
        *idle_ns = VM_MAX_IDLE_NS;
        return VM_SLICE_IDLE;
    }
    *idle_ns = idle_time(vm, (int)i);
    return VM_SLICE_IDLE;
}
