/* One RISC-V hart (RV64IMAFDC, M/S/U modes): its architectural state and the
 * entry points the VM layer uses to run it. Everything a hart owns is in
 * struct hart; nothing is global, so any number of harts of any number of
 * VMs can exist side by side. */
#ifndef RVISOR_HART_H
#define RVISOR_HART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mmu/mmu.h"
#include "mmu/tlb.h"

struct hart;
struct insn;
struct phys_ops;

/* What a hart asks of the monitor that runs it. */
struct hart_env {
    /* An ecall from S-mode when the SBI lives in the monitor. */
    void (*sbi_call)(void *owner, struct hart *h);
    /* The platform timer (mtime), in timebase ticks. */
    uint64_t (*time)(void *owner);
    /* The guest did something no real hart survives (trap loop with no handler). */
    void (*fatal)(void *owner, struct hart *h, const char *why);
};

/* A decoded instruction. The interpreter calls fn with the hart and the
 * decoded operands; fn either completes the instruction (updating pc) or
 * takes a trap (see hart_raise). rd is 32, a sink register, when the
 * instruction names x0 as destination, so handlers never test for x0. */
typedef void (*insn_fn)(struct hart *h, const struct insn *i);
struct insn {
    insn_fn fn;
    int32_t imm;  /* immediate, CSR number, or shift amount */
    uint8_t rd, rs1, rs2, rs3;
    uint8_t rm;   /* FP rounding mode field, or AMO aq/rl bits, or funct bits */
    uint8_t len;  /* 2 (compressed) or 4 */
};

/* Exception causes (mcause with the interrupt bit clear). */
enum {
    EXC_INSN_MISALIGNED = 0,
    EXC_INSN_ACCESS = 1,
    EXC_ILLEGAL_INSN = 2,
    EXC_BREAKPOINT = 3,
    EXC_LOAD_MISALIGNED = 4,
    EXC_LOAD_ACCESS = 5,
    EXC_STORE_MISALIGNED = 6,
    EXC_STORE_ACCESS = 7,
    EXC_ECALL_U = 8,
    EXC_ECALL_S = 9,
    EXC_ECALL_M = 11,
    EXC_INSN_PAGE_FAULT = 12,
    EXC_LOAD_PAGE_FAULT = 13,
    EXC_STORE_PAGE_FAULT = 15,
};

/* Interrupt numbers (bit positions in mip/mie). */
enum {
    IRQ_SSI = 1, IRQ_MSI = 3, IRQ_STI = 5, IRQ_MTI = 7, IRQ_SEI = 9, IRQ_MEI = 11,
};
#define MIP_SSIP (1ull << IRQ_SSI)
#define MIP_MSIP (1ull << IRQ_MSI)
#define MIP_STIP (1ull << IRQ_STI)
#define MIP_MTIP (1ull << IRQ_MTI)
#define MIP_SEIP (1ull << IRQ_SEI)
#define MIP_MEIP (1ull << IRQ_MEI)

/* mstatus fields */
#define MSTATUS_SIE (1ull << 1)
#define MSTATUS_MIE (1ull << 3)
#define MSTATUS_SPIE (1ull << 5)
#define MSTATUS_UBE (1ull << 6)
#define MSTATUS_MPIE (1ull << 7)
#define MSTATUS_SPP (1ull << 8)
#define MSTATUS_VS (3ull << 9)
#define MSTATUS_MPP (3ull << 11)
#define MSTATUS_FS (3ull << 13)
#define MSTATUS_XS (3ull << 15)
#define MSTATUS_MPRV (1ull << 17)
#define MSTATUS_SUM (1ull << 18)
#define MSTATUS_MXR (1ull << 19)
#define MSTATUS_TVM (1ull << 20)
#define MSTATUS_TW (1ull << 21)
#define MSTATUS_TSR (1ull << 22)
#define MSTATUS_UXL (3ull << 32)
#define MSTATUS_SXL (3ull << 34)
#define MSTATUS_SD (1ull << 63)
#define MSTATUS_FS_SHIFT 13

/* Why hart_run returned. */
enum hart_stop {
    HART_RAN,      /* budget used up, call again */
    HART_IDLE,     /* in wfi with nothing pending: sleep until an interrupt */
    HART_STOPPED,  /* HSM stopped (not started yet, or hart_stop) */
    HART_EXIT,     /* the VM asked to stop (power off, reset, fatal error) */
    HART_MEMORY,   /* an access found no machine frame: run again once memory is free */
};

/* The architectural state of a hart: what a snapshot, a debugger or
 * either engine needs, as plain data. Written once as a field list so that
 * struct hart can hold it both as one struct (h->arch) and as members
 * (h->pc): the two views share one layout. The reservation is the host
 * address of the reserved word; a restored hart has none (~0). */
#define HART_STATE_FIELDS                                                                            \
    uint64_t pc;                                                                                     \
    uint64_t icount;     /* instructions retired (instret, cycle) before the current chain */        \
    uint64_t x[33];      /* x[32] is the sink for writes to x0 */                                    \
    uint64_t f[32];      /* NaN-boxed FP registers */                                                \
    uint32_t fflags;     /* accrued exceptions NV DZ OF UF NX (bits 4..0) */                         \
    uint32_t frm;        /* dynamic rounding mode */                                                 \
    int priv;                                                                                        \
    unsigned id;         /* mhartid */                                                               \
    uint64_t reservation, reservation_value; /* LR/SC: address (or ~0) and the value LR read */      \
    /* Machine-level CSRs */                                                                         \
    uint64_t mstatus, misa, medeleg, mideleg, mie, mtvec, mscratch, mepc, mcause, mtval;             \
    uint64_t mcounteren, menvcfg;                                                                    \
    uint64_t mip;        /* software-writable bits; written atomically by devices */                 \
    uint64_t pmpcfg[16], pmpaddr[64];                                                                \
    /* Supervisor-level CSRs (sstatus, sie, sip are views of the m-level ones) */                    \
    uint64_t stvec, sscratch, sepc, scause, stval, satp, scounteren, senvcfg;                        \
    uint64_t stimecmp;   /* monitor-SBI timer deadline for this hart (mtime units) */                \
    bool wfi;            /* waiting for an interrupt */                                              \
    bool hsm_stopped;    /* SBI HSM: not started, or stopped; the hart does not run */               \
    uint64_t hsm_start_pc, hsm_start_arg;

struct hart_state {
    HART_STATE_FIELDS
};

/* A hart: its architectural state and the host machinery either engine
 * runs it with (run control, statistics, software TLB, callbacks). */
struct hart {
    /* Hot machinery first: translated code reaches the first 256 bytes
     * with one-byte displacements (see JIT_HART_BIAS). The binary
     * translator's run control: translated code returns to its dispatcher
     * once icount reaches icount_limit (by signed distance), or after a
     * handler asked for a break (hart_break). */
    uint64_t icount_limit;
    uint32_t break_pending;  /* a 32-bit flag: translated code compares it whole */
    uint64_t load_val;       /* result of a slow-path load */
    /* The translator's jump cache for the current privilege and FP state
     * (see struct tlb_set), or NULL; kept by hart_update_tlb_sets. */
    struct jump_entry *jump;

    /* Why the guest left the fast path, for `rvisor top` and stats. Each
     * counter is written only by the thread running this hart. */
    struct hart_stats {
        uint64_t mem_ops;     /* loads and stores executed (software-TLB lookups) */
        uint64_t tlb_misses;  /* lookups that took the slow path (walk, MMIO, fills) */
        uint64_t sbi_calls;   /* hypercalls */
        uint64_t mmio;        /* device accesses */
        uint64_t wfi;         /* waits for an interrupt that found none pending */
        uint64_t exceptions;  /* traps taken in the guest */
        uint64_t interrupts;  /* interrupts delivered */
    } stats;

    union {
        struct hart_state arch;
        struct {
            HART_STATE_FIELDS
        };
    };

    /* The interpreter's chain of decoded instructions (see dispatch.h). */
    uint8_t *cur_host_page;  /* host address of the code page being run (for lazy decoding) */
    int64_t budget;          /* instructions this chain may still dispatch */
    int64_t stolen;          /* budget taken away by hart_break */
    int64_t slice;           /* budget the current chain started with */
    const struct insn *next_insn; /* RVISOR_LOOP_DISPATCH: what the handler chose to run next */
    /* The translator's chaining: a jump to point at the next block, or NULL,
     * and the code page and mode of the block that jump is in (jit_link_key). */
    uint8_t *jit_link;
    const void *jit_link_cp;
    /* The translator's jumps through the jump cache (counted inline, off
     * the hart register; jit_get_stats reads it). */
    uint64_t jit_jumps;
    /* How far writes of minstret/mcycle moved icount since jit_run looked
     * (mod 2^64): its slice's end moves with them, or a guest rewriting
     * minstret in a loop would never reach it. */
    uint64_t icount_moved;
    /* The translator's return prediction (src/jit/ras.c): the lowest host
     * stack pointer a guest call may still push a frame from. */
    uintptr_t jit_ras_floor;
    /* The decoded code an AMO or SC is about to write (mem_atomic_ptr),
     * told of the write once it is done (mem_atomic_done), or NULL. */
    struct code_page *amo_code;
    unsigned amo_off, amo_size;

    struct tlb_set *dtlb;    /* data accesses: the set for the effective privilege */
    struct tlb_set *itlb;    /* fetches: the set for the current privilege */
    const struct phys_ops *phys;   /* guest-physical memory and devices */
    const struct hart_env *env;    /* the monitor services below */
    void *owner;                   /* passed to phys and env callbacks (the VM) */
    /* The owner's remapping generation, bumped when a guest frame moves to
     * another host frame while harts run (copy-on-write), or NULL: a TLB
     * fill whose lookup may predate a move is dropped (see hart/mem.c). */
    const uint64_t *remap_gen;
    bool exit_request;       /* the VM is stopping: return HART_EXIT */
    bool mem_stall;          /* an access must wait for a machine frame (hart_stall) */
    bool sbi_in_monitor;     /* ecall from S-mode is a hypercall, not a trap to M-mode */

    /* Software TLB: one set per privilege level (index by enum priv). */
    struct tlb_set tlb[4];
};

void hart_init(struct hart *h, unsigned id, const struct phys_ops *phys, const struct hart_env *env,
               void *owner);
/* Runs up to `budget` instructions. */
enum hart_stop hart_run(struct hart *h, int64_t budget);

/* Takes an exception at the current pc: sets up the trap and leaves the
 * inner loop. Handlers return right after calling it. */
void hart_raise(struct hart *h, uint64_t cause, uint64_t tval);
/* Delivers a pending, enabled interrupt if there is one. Returns true if it did. */
bool hart_take_interrupt(struct hart *h);
/* Interrupts pending and enabled, ignoring the global enables (wfi wake-up test). */
uint64_t hart_pending_irqs(const struct hart *h);
/* Sets or clears bits in mip from a device or another hart (thread safe). */
void hart_set_mip(struct hart *h, uint64_t mask, bool level);

/* Recomputes dtlb/itlb (and the jump cache) after a change of privilege
 * or of mstatus.MPRV/MPP/FS. */
void hart_update_tlb_sets(struct hart *h);
/* Drops every cached translation of this hart, on its own thread. */
void hart_flush_tlb(struct hart *h);
/* The same from any thread, to a hart that may be running (remote
 * sfence.vma): each entry is invalidated with one aligned store, so the
 * hart sees either the old entry or none. */
void hart_flush_tlb_remote(struct hart *h);

/* Returns to hart_run after the current instruction (e.g. when the VM is
 * stopping), without ending the slice. */
static inline void hart_break(struct hart *h) {
    h->stolen += h->budget;
    h->budget = 0;
    h->break_pending = 1;
}

/* The current instruction's access found no machine frame: leave the run
 * loop with the instruction not executed (pc unchanged, no trap), so the
 * scheduler can run it again once memory is free. */
static inline void hart_stall(struct hart *h) {
    h->mem_stall = true;
    hart_break(h);
}

/* Saved state: section "hart", version 1, the fields of struct hart_state
 * (hart_snapshot.c). hart_load refuses a state the hart could not reach
 * (reserved privilege, foreign ISA or hart id) with a message in err and
 * then leaves h as it was; a loaded hart holds no LR reservation. */
struct snap_writer;
struct snap_section;
bool hart_save(const struct hart *h, struct snap_writer *w);
bool hart_load(struct hart *h, const struct snap_section *s, char *err, size_t errlen);

/* Instructions retired before the one executing now. */
static inline uint64_t hart_instret(const struct hart *h) {
    return h->icount + (uint64_t)(h->slice - h->budget - h->stolen);
}

#endif
