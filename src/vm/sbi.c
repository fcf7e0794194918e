#include "vm/sbi.h"

#include "hart/mem.h"
#include "vm/vm.h"

enum {
    SBI_SUCCESS = 0,
    SBI_ERR_FAILED = -1,
    SBI_ERR_NOT_SUPPORTED = -2,
    SBI_ERR_INVALID_PARAM = -3,
    SBI_ERR_INVALID_ADDRESS = -5,
    SBI_ERR_ALREADY_AVAILABLE = -6,
};

enum {
    EXT_LEGACY_SET_TIMER = 0x00,
    EXT_LEGACY_PUTCHAR = 0x01,
    EXT_LEGACY_GETCHAR = 0x02,
    EXT_LEGACY_SHUTDOWN = 0x08,
    EXT_BASE = 0x10,
    EXT_TIME = 0x54494d45,
    EXT_IPI = 0x735049,
    EXT_RFENCE = 0x52464e43,
    EXT_HSM = 0x48534d,
    EXT_SRST = 0x53525354,
    EXT_DBCN = 0x4442434e,
};

enum { HSM_STARTED = 0, HSM_STOPPED = 1 };

#define A(n) h->x[10 + (n)]

struct sbiret {
    int64_t error;
    uint64_t value;
};

static bool supported(uint64_t eid) {
    switch (eid) {
    case EXT_LEGACY_SET_TIMER: case EXT_LEGACY_PUTCHAR: case EXT_LEGACY_GETCHAR: case EXT_LEGACY_SHUTDOWN:
    case EXT_BASE: case EXT_TIME: case EXT_IPI: case EXT_RFENCE: case EXT_HSM: case EXT_SRST: case EXT_DBCN:
        return true;
    }
    return false;
}

static void set_timer(struct vm *vm, struct hart *h, uint64_t when) {
    __atomic_store_n(&h->stimecmp, when, __ATOMIC_RELAXED); /* read by other harts' threads for deadlines */
    hart_set_mip(h, MIP_STIP, vm_time(vm) >= when);
}

static void console_put(struct vm *vm, uint8_t c) {
    if (vm->console.write) vm->console.write(vm->console.ctx, &c, 1);
}

/* Calls fn for every hart selected by (mask, base); base == -1 means all. */
static int64_t for_harts(struct vm *vm, uint64_t mask, uint64_t base, void (*fn)(struct hart *)) {
    if (base == ~0ull) {
        for (unsigned i = 0; i < vm->nharts; i++) fn(vm->harts[i]);
        return SBI_SUCCESS;
    }
    for (unsigned b = 0; b < 64; b++) {
        if (!(mask & (1ull << b))) continue;
        if (base + b >= vm->nharts) return SBI_ERR_INVALID_PARAM;
    }
    for (unsigned b = 0; b < 64; b++)
        if (mask & (1ull << b)) fn(vm->harts[base + b]);
    return SBI_SUCCESS;
}

static void send_ssip(struct hart *t) { hart_set_mip(t, MIP_SSIP, true); }
static void remote_flush(struct hart *t) { hart_flush_tlb_remote(t); }
static void remote_nothing(struct hart *t) { (void)t; } /* fence.i: the decode cache is always coherent */

static struct sbiret hsm(struct vm *vm, struct hart *h, uint64_t fid) {
    switch (fid) {
    case 0: { /* hart_start(hartid, start_addr, opaque) */
        if (A(0) >= vm->nharts) return (struct sbiret){SBI_ERR_INVALID_PARAM, 0};
        struct hart *t = vm->harts[A(0)];
        if (!t->hsm_stopped) return (struct sbiret){SBI_ERR_ALREADY_AVAILABLE, 0};
        /* An instruction address is even (IALIGN 16): an odd one would
         * have the hart fetch from the middle of a parcel. */
        if ((A(1) & 1) || !p2m_contains(&vm->mem, A(1), 2)) return (struct sbiret){SBI_ERR_INVALID_ADDRESS, 0};
        t->pc = A(1);
        t->x[10] = A(0);
        t->x[11] = A(2);
        t->priv = PRIV_S;
        t->satp = 0;
        t->mstatus &= ~MSTATUS_SIE;
        hart_flush_tlb_remote(t);
        hart_update_tlb_sets(t);
        t->wfi = false;
        __atomic_store_n(&t->hsm_stopped, false, __ATOMIC_RELEASE);
        vm_kick(vm);
        return (struct sbiret){SBI_SUCCESS, 0};
    }
    case 1: /* hart_stop */
        h->hsm_stopped = true;
        hart_break(h);
        return (struct sbiret){SBI_SUCCESS, 0};
    case 2: /* hart_get_status(hartid) */
        if (A(0) >= vm->nharts) return (struct sbiret){SBI_ERR_INVALID_PARAM, 0};
        return (struct sbiret){SBI_SUCCESS, vm->harts[A(0)]->hsm_stopped ? HSM_STOPPED : HSM_STARTED};
    case 3: /* hart_suspend(type, resume_addr, opaque): only the default retentive suspend */
        if ((uint32_t)A(0) != 0) return (struct sbiret){SBI_ERR_NOT_SUPPORTED, 0};
        h->wfi = !hart_pending_irqs(h);
        hart_break(h);
        return (struct sbiret){SBI_SUCCESS, 0};
    }
    return (struct sbiret){SBI_ERR_NOT_SUPPORTED, 0};
}

static struct sbiret dispatch(struct vm *vm, struct hart *h, uint64_t eid, uint64_t fid) {
    switch (eid) {
    case EXT_BASE:
        switch (fid) {
        case 0: return (struct sbiret){SBI_SUCCESS, 2ull << 24}; /* spec version 2.0 */
        case 1: return (struct sbiret){SBI_SUCCESS, SBI_IMPL_ID};
        case 2: return (struct sbiret){SBI_SUCCESS, 1};
        case 3: return (struct sbiret){SBI_SUCCESS, supported(A(0))};
        case 4: case 5: case 6: return (struct sbiret){SBI_SUCCESS, 0}; /* mvendorid, marchid, mimpid */
        }
        break;
    case EXT_TIME:
        if (fid == 0) {
            set_timer(vm, h, A(0));
            return (struct sbiret){SBI_SUCCESS, 0};
        }
        break;
    case EXT_IPI:
        if (fid == 0) {
            int64_t rc = for_harts(vm, A(0), A(1), send_ssip);
            vm_kick(vm);
            return (struct sbiret){rc, 0};
        }
        break;
    case EXT_RFENCE:
        if (fid == 0) return (struct sbiret){for_harts(vm, A(0), A(1), remote_nothing), 0};
        if (fid == 1 || fid == 2) return (struct sbiret){for_harts(vm, A(0), A(1), remote_flush), 0};
        break;
    case EXT_HSM: return hsm(vm, h, fid);
    case EXT_SRST:
        if (fid == 0) {
            uint32_t type = (uint32_t)A(0), reason = (uint32_t)A(1);
            if (type == 0) {
                if (reason == 1) vm_request_exit(vm, VM_EXIT_PANIC, 1, "guest shut down after a system failure");
                else vm_request_exit(vm, VM_EXIT_POWEROFF, 0, "guest powered off");
            } else if (type == 1 || type == 2) {
                vm_request_exit(vm, VM_EXIT_RESET, (int)type, "guest requested a %s reboot", type == 1 ? "cold" : "warm");
            } else {
                return (struct sbiret){SBI_ERR_INVALID_PARAM, 0};
            }
            return (struct sbiret){SBI_SUCCESS, 0};
        }
        break;
    case EXT_DBCN:
        if (fid == 0) { /* console_write(num_bytes, base_lo, base_hi) */
            uint64_t n = A(0), addr = A(1);
            if (A(2) != 0) return (struct sbiret){SBI_ERR_INVALID_PARAM, 0};
            uint8_t buf[256];
            uint64_t done = 0;
            while (done < n) {
                uint64_t chunk = n - done < sizeof buf ? n - done : sizeof buf;
                if (!p2m_read(&vm->mem, addr + done, buf, chunk)) return (struct sbiret){SBI_ERR_INVALID_PARAM, 0};
                if (vm->console.write) vm->console.write(vm->console.ctx, buf, chunk);
                done += chunk;
            }
            return (struct sbiret){SBI_SUCCESS, n};
        }
        if (fid == 1) return (struct sbiret){SBI_SUCCESS, 0}; /* console_read: input goes to the UART */
        if (fid == 2) {
            console_put(vm, (uint8_t)A(0));
            return (struct sbiret){SBI_SUCCESS, 0};
        }
        break;
    }
    return (struct sbiret){SBI_ERR_NOT_SUPPORTED, 0};
}

void sbi_call(struct vm *vm, struct hart *h) {
    uint64_t eid = h->x[17], fid = h->x[16];
    switch (eid) {
    /* Legacy (v0.1) calls return a single value in a0. */
    case EXT_LEGACY_SET_TIMER: set_timer(vm, h, A(0)); A(0) = 0; break;
    case EXT_LEGACY_PUTCHAR: console_put(vm, (uint8_t)A(0)); A(0) = 0; break;
    case EXT_LEGACY_GETCHAR: A(0) = (uint64_t)-1; break; /* input goes to the UART */
    case EXT_LEGACY_SHUTDOWN: vm_request_exit(vm, VM_EXIT_POWEROFF, 0, "guest powered off"); break;
    default: {
        struct sbiret r = dispatch(vm, h, eid, fid);
        A(0) = (uint64_t)r.error;
        A(1) = r.value;
    }
    }
    h->pc += 4;
}
