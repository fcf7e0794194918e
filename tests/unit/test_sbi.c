/* Unit tests of the SBI the monitor answers when no M-mode firmware is
 * loaded (vm/sbi.c), on a two-hart VM set up as vm_boot leaves a Linux
 * guest (hart 0 in S-mode, hart 1 HSM-stopped): HSM hart_start refuses an
 * odd start address (the interpreter indexes decoded code by
 * (pc & 0xfff) >> 1, so a hart started there jumped to a wild host
 * address), one outside RAM and a hart that does not exist, leaving the
 * target stopped; starts a stopped hart at an even RAM address with
 * a0 = hartid, a1 = opaque; refuses to start a started hart; and reports
 * the harts' status. Checked both by calling sbi_call directly and from
 * guest code (an ecall loop over a table of calls), plus the BASE
 * extension's version and probes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "monitor/machine_memory.h"
#include "vm/sbi.h"
#include "vm/vm.h"

#define MiB (1024ull * 1024)
#define MEM (4 * MiB)
#define RAM VIRT_RAM_BASE
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The SBI's error codes and extension IDs (SBI v2.0, chapter 3). */
#define SBI_SUCCESS 0
#define SBI_ERR_NOT_SUPPORTED (-2)
#define SBI_ERR_INVALID_PARAM (-3)
#define SBI_ERR_INVALID_ADDRESS (-5)
#define SBI_ERR_ALREADY_AVAILABLE (-6)
#define EID_BASE 0x10ull
#define EID_HSM 0x48534dull
#define EID_NONE 0x0a0b0c0dull /* no such extension */
#define BASE_GET_SPEC_VERSION 0
#define BASE_GET_IMPL_ID 1
#define BASE_PROBE_EXTENSION 3
#define HSM_HART_START 0
#define HSM_HART_GET_STATUS 2
#define HSM_STARTED 0
#define HSM_STOPPED 1

/* Guest memory: hart 0's program, the table of calls it makes, where it
 * puts their results, and hart 1's entry point (which stores what it
 * started with right after itself). */
#define PROGRAM (RAM + 0x2000)
#define TRAP (PROGRAM + 0x60)
#define TABLE (RAM + 0x3000)
#define RESULTS (RAM + 0x4000)
#define START (RAM + 0x6000)
#define START_OUT (START + 0x100)
#define DONE 0x600d
#define OPAQUE 0x0123456789abcdefull
/* Hart 1's registers before anything starts it. */
#define PARKED_PC (RAM + 0x7000)
#define PARKED_A0 0x5a5a5a5a5a5a5a5aull
#define PARKED_A1 0xa5a5a5a5a5a5a5a5ull

/* Hart 0, in S-mode with paging off: for each {eid, fid, a0, a1, a2} at
 * TABLE up to an eid of -1, an ecall whose a0 (error) and a1 (value) go to
 * RESULTS, 16 bytes per call; then DONE after the last result, and wfi for
 * ever. stvec points at its own wfi loop (TRAP). Assembled with
 * riscv64-linux-gnu-as -march=rv64i (no compressed forms). */
static const uint32_t program[] = {
    0x00080437, /*       lui s0, 0x80 */
    0x0034041b, /*       addiw s0, s0, 3 */
    0x00c41413, /*       slli s0, s0, 12      s0 = TABLE (0x80003000) */
    0x000204b7, /*       lui s1, 0x20 */
    0x0014849b, /*       addiw s1, s1, 1 */
    0x00e49493, /*       slli s1, s1, 14      s1 = RESULTS (0x80004000) */
    0xfff00913, /*       li s2, -1 */
    0x00043883, /* next: ld a7, 0(s0)         eid */
    0x03288663, /*       beq a7, s2, done */
    0x00843803, /*       ld a6, 8(s0)         fid */
    0x01043503, /*       ld a0, 16(s0) */
    0x01843583, /*       ld a1, 24(s0) */
    0x02043603, /*       ld a2, 32(s0) */
    0x00000073, /*       ecall */
    0x00a4b023, /*       sd a0, 0(s1)         error */
    0x00b4b423, /*       sd a1, 8(s1)         value */
    0x02840413, /*       addi s0, s0, 40 */
    0x01048493, /*       addi s1, s1, 16 */
    0xfd5ff06f, /*       j next */
    0x000062b7, /* done: lui t0, 0x6 */
    0x00d2829b, /*       addiw t0, t0, 13     DONE */
    0x0054b023, /*       sd t0, 0(s1) */
    0x10500073, /* halt: wfi */
    0xffdff06f, /*       j halt */
    0x10500073, /* 0x60: wfi                  TRAP */
    0xffdff06f, /*       j 0x60 */
};

/* Hart 1's entry: stores a0, a1 and DONE at START_OUT, then wfi for ever. */
static const uint32_t secondary[] = {
    0x00000297, /*       auipc t0, 0 */
    0x10a2b023, /*       sd a0, 0x100(t0) */
    0x10b2b423, /*       sd a1, 0x108(t0) */
    0x00006337, /*       lui t1, 0x6 */
    0x00d3031b, /*       addiw t1, t1, 13     DONE */
    0x1062b823, /*       sd t1, 0x110(t0) */
    0x10500073, /* halt: wfi */
    0xffdff06f, /*       j halt */
};

struct call {
    uint64_t eid, fid, a0, a1, a2;
};

struct ret {
    int64_t error;
    uint64_t value;
};

static struct machine_memory mm;
static struct frame_source fs;

static int group_setup(void **state) {
    (void)state;
    if (!machine_memory_init(&mm, 32 * MiB)) return -1;
    fs = machine_memory_source(&mm);
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    machine_memory_destroy(&mm);
    return 0;
}

/* Two harts, the interpreter, no event loop; the harts as boot.c's
 * boot_linux leaves them (the monitor is the firmware: it answers S-mode
 * ecalls and delegates what OpenSBI would), hart 0 in S-mode at PROGRAM,
 * hart 1 HSM-stopped with recognisable registers. */
static struct vm *new_vm(void) {
    struct vm_config cfg = {.mem_size = MEM, .engine = VM_ENGINE_INTERP, .ncpus = 2, .frames = &fs};
    char err[256];
    struct vm *vm = vm_create(&cfg, NULL, err, sizeof err);
    if (!vm) fail_msg("vm_create: %s", err);
    assert_true(p2m_write(&vm->mem, PROGRAM, program, sizeof program));
    assert_true(p2m_write(&vm->mem, START, secondary, sizeof secondary));
    vm->sbi_in_monitor = true;
    for (unsigned i = 0; i < vm->nharts; i++) {
        struct hart *h = vm->harts[i];
        h->sbi_in_monitor = true;
        h->medeleg = 0xffffull & ~((1ull << EXC_ECALL_S) | (1ull << 10) | (1ull << EXC_ECALL_M) | (1ull << 14));
        h->mideleg = MIP_SSIP | MIP_STIP | MIP_SEIP;
        h->mcounteren = h->scounteren = 7;
        h->priv = PRIV_S;
        h->stvec = TRAP;
        h->hsm_stopped = i != 0;
        h->pc = i ? PARKED_PC : PROGRAM;
        h->x[10] = i ? PARKED_A0 : i;
        h->x[11] = i ? PARKED_A1 : 0;
        hart_update_tlb_sets(h);
    }
    return vm;
}

/* Hart 1 has not been started: still stopped, its registers untouched. */
static void assert_parked(struct vm *vm) {
    struct hart *t = vm->harts[1];
    assert_true(t->hsm_stopped);
    assert_int_equal(t->pc, PARKED_PC);
    assert_int_equal(t->x[10], PARKED_A0);
    assert_int_equal(t->x[11], PARKED_A1);
    /* And it does not run: vm_run_hart reports it idle, as a stopped hart. */
    uint64_t icount = t->icount, idle = 0;
    assert_int_equal(vm_run_hart(vm, 1, &idle), VM_SLICE_IDLE);
    assert_int_equal(idle, VM_MAX_IDLE_NS);
    assert_int_equal(t->icount, icount);
}

static void expect(struct ret got, int64_t error, uint64_t value, const char *what) {
    if (got.error != error || got.value != value)
        fail_msg("%s: returned error %lld value %#llx, expected error %lld value %#llx", what, (long long)got.error,
                 (unsigned long long)got.value, (long long)error, (unsigned long long)value);
}

/* ---- through guest code ---- */

/* Hart 0 makes the n calls (running from PROGRAM again); their results in ret. */
static void guest_calls(struct vm *vm, const struct call *calls, unsigned n, struct ret *ret) {
    assert_true(n < 64);
    struct call table[64];
    memcpy(table, calls, n * sizeof *calls);
    table[n] = (struct call){.eid = ~0ull};
    assert_true(p2m_write(&vm->mem, TABLE, table, (n + 1) * sizeof *table));
    assert_true(p2m_fill(&vm->mem, RESULTS, 0xee, (n + 1) * sizeof *ret));
    struct hart *h = vm->harts[0];
    h->pc = PROGRAM;
    h->wfi = false;

    uint64_t done = 0, idle;
    for (unsigned slice = 0; slice < 100 && done != DONE; slice++) {
        enum vm_slice s = vm_run_hart(vm, 0, &idle);
        if (s == VM_SLICE_EXITED) fail_msg("the VM stopped: %s", vm->exit_message);
        assert_true(p2m_read(&vm->mem, RESULTS + n * sizeof *ret, &done, sizeof done));
    }
    if (done != DONE)
        fail_msg("hart 0 did not finish its calls: pc %#llx, scause %llu, sepc %#llx", (unsigned long long)h->pc,
                 (unsigned long long)h->scause, (unsigned long long)h->sepc);
    assert_int_equal(h->priv, PRIV_S);
    assert_int_equal(vm->exit_reason, VM_RUNNING);
    assert_true(p2m_read(&vm->mem, RESULTS, ret, n * sizeof *ret));
}

static struct call hart_start(uint64_t hartid, uint64_t addr, uint64_t opaque) {
    return (struct call){EID_HSM, HSM_HART_START, hartid, addr, opaque};
}

static struct call hart_status(uint64_t hartid) { return (struct call){EID_HSM, HSM_HART_GET_STATUS, hartid, 0, 0}; }

static void test_hart_start_from_guest(void **state) {
    (void)state;
    struct vm *vm = new_vm();
    struct ret r[8];

    /* Refused: (a) an odd address (one byte into a valid entry point),
     * (b) the first byte past RAM, (c) a hart that does not exist. Hart 1
     * stays stopped, as the guest and the monitor see it. */
    const struct call refused[] = {
        hart_start(1, START + 1, OPAQUE), hart_status(1),
        hart_start(1, RAM + MEM, OPAQUE), hart_status(1),
        hart_start(7, START, OPAQUE),     hart_status(1),
    };
    guest_calls(vm, refused, NELEM(refused), r);
    expect(r[0], SBI_ERR_INVALID_ADDRESS, 0, "(a) hart_start(1, odd address)");
    expect(r[1], SBI_SUCCESS, HSM_STOPPED, "hart_get_status(1) after (a)");
    expect(r[2], SBI_ERR_INVALID_ADDRESS, 0, "(b) hart_start(1, address past RAM)");
    expect(r[3], SBI_SUCCESS, HSM_STOPPED, "hart_get_status(1) after (b)");
    expect(r[4], SBI_ERR_INVALID_PARAM, 0, "(c) hart_start(7, ...)");
    expect(r[5], SBI_SUCCESS, HSM_STOPPED, "hart_get_status(1) after (c)");
    assert_parked(vm);

    /* (d) An even address in RAM: hart 1 starts there, in S-mode with
     * a0 = hartid and a1 = opaque; (e) starting it again is refused;
     * its status is "started". */
    const struct call start[] = {hart_start(1, START, OPAQUE), hart_start(1, START, OPAQUE), hart_status(1),
                                 hart_status(0)};
    guest_calls(vm, start, NELEM(start), r);
    expect(r[0], SBI_SUCCESS, 0, "(d) hart_start(1, START)");
    expect(r[1], SBI_ERR_ALREADY_AVAILABLE, 0, "(e) hart_start of the started hart 1");
    expect(r[2], SBI_SUCCESS, HSM_STARTED, "hart_get_status(1) after (d)");
    expect(r[3], SBI_SUCCESS, HSM_STARTED, "hart_get_status(0)");
    struct hart *t = vm->harts[1];
    assert_false(t->hsm_stopped);
    assert_int_equal(t->pc, START);
    assert_int_equal(t->priv, PRIV_S);
    assert_int_equal(t->x[10], 1);
    assert_int_equal(t->x[11], OPAQUE);

    /* Hart 1 runs from START and sees those registers. */
    uint64_t out[3] = {0}, idle;
    for (unsigned slice = 0; slice < 100 && out[2] != DONE; slice++) {
        if (vm_run_hart(vm, 1, &idle) == VM_SLICE_EXITED) fail_msg("the VM stopped: %s", vm->exit_message);
        assert_true(p2m_read(&vm->mem, START_OUT, out, sizeof out));
    }
    assert_int_equal(out[2], DONE);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], OPAQUE);
    assert_int_equal(vm->exit_reason, VM_RUNNING);
    vm_destroy(vm);
}

static void test_base_from_guest(void **state) {
    (void)state;
    struct vm *vm = new_vm();
    const struct call calls[] = {
        {EID_BASE, BASE_GET_SPEC_VERSION, 0, 0, 0},
        {EID_BASE, BASE_GET_IMPL_ID, 0, 0, 0},
        {EID_BASE, BASE_PROBE_EXTENSION, EID_HSM, 0, 0},
        {EID_BASE, BASE_PROBE_EXTENSION, EID_BASE, 0, 0},
        {EID_BASE, BASE_PROBE_EXTENSION, EID_NONE, 0, 0},
        {EID_NONE, 0, 0, 0, 0},
    };
    struct ret r[NELEM(calls)];
    guest_calls(vm, calls, NELEM(calls), r);
    expect(r[0], SBI_SUCCESS, 2ull << 24, "get_spec_version (2.0)");
    expect(r[1], SBI_SUCCESS, SBI_IMPL_ID, "get_impl_id");
    expect(r[2], SBI_SUCCESS, 1, "probe_extension(HSM)");
    expect(r[3], SBI_SUCCESS, 1, "probe_extension(BASE)");
    expect(r[4], SBI_SUCCESS, 0, "probe_extension(unknown)");
    expect(r[5], SBI_ERR_NOT_SUPPORTED, 0, "a call to an unknown extension");
    assert_int_equal(vm->harts[0]->stats.sbi_calls, NELEM(calls));
    assert_parked(vm);
    vm_destroy(vm);
}

/* ---- sbi_call directly, as op_ecall makes it ---- */

static struct ret direct(struct vm *vm, struct call c) {
    struct hart *h = vm->harts[0];
    h->x[17] = c.eid, h->x[16] = c.fid, h->x[10] = c.a0, h->x[11] = c.a1, h->x[12] = c.a2;
    h->pc = PROGRAM;
    sbi_call(vm, h);
    assert_int_equal(h->pc, PROGRAM + 4); /* past the ecall */
    return (struct ret){(int64_t)h->x[10], h->x[11]};
}

static void test_hart_start_direct(void **state) {
    (void)state;
    struct vm *vm = new_vm();
    char what[96];

    /* Odd: a byte into RAM, a page's last byte (the slot index would be
     * past the page's decoded code), RAM's last byte, and odd addresses
     * outside RAM. */
    static const uint64_t odd[] = {RAM + 1, RAM + 0xfff, START + 1, RAM + MEM - 1, RAM - 1, 1, ~0ull};
    for (unsigned i = 0; i < NELEM(odd); i++) {
        snprintf(what, sizeof what, "hart_start(1, %#llx)", (unsigned long long)odd[i]);
        expect(direct(vm, hart_start(1, odd[i], OPAQUE)), SBI_ERR_INVALID_ADDRESS, 0, what);
        assert_parked(vm);
    }
    /* Even but not RAM: below it, just past it, MMIO (the UART), 0, and
     * addresses whose distance from RAM's base wraps around. */
    static const uint64_t outside[] = {0, RAM - 2, RAM + MEM, RAM + 2 * MEM, VIRT_UART_BASE, ~1ull, RAM - MEM};
    for (unsigned i = 0; i < NELEM(outside); i++) {
        snprintf(what, sizeof what, "hart_start(1, %#llx)", (unsigned long long)outside[i]);
        expect(direct(vm, hart_start(1, outside[i], OPAQUE)), SBI_ERR_INVALID_ADDRESS, 0, what);
        assert_parked(vm);
    }
    /* No such hart: the first past the last, 7, and -1. */
    static const uint64_t nohart[] = {2, 7, ~0ull};
    for (unsigned i = 0; i < NELEM(nohart); i++) {
        snprintf(what, sizeof what, "hart_start(%#llx, START)", (unsigned long long)nohart[i]);
        expect(direct(vm, hart_start(nohart[i], START, OPAQUE)), SBI_ERR_INVALID_PARAM, 0, what);
        snprintf(what, sizeof what, "hart_get_status(%#llx)", (unsigned long long)nohart[i]);
        expect(direct(vm, hart_status(nohart[i])), SBI_ERR_INVALID_PARAM, 0, what);
        assert_parked(vm);
    }
    expect(direct(vm, hart_status(1)), SBI_SUCCESS, HSM_STOPPED, "hart_get_status(1) while stopped");
    /* Hart 0 is running: starting it is refused, and its state is kept. */
    expect(direct(vm, hart_start(0, START, OPAQUE)), SBI_ERR_ALREADY_AVAILABLE, 0, "hart_start(0) by hart 0");
    assert_int_equal(vm->harts[0]->pc, PROGRAM + 4);

    /* RAM's last parcel is a valid start address. */
    expect(direct(vm, hart_start(1, RAM + MEM - 2, 7)), SBI_SUCCESS, 0, "hart_start(1, RAM's last parcel)");
    struct hart *t = vm->harts[1];
    assert_false(t->hsm_stopped);
    assert_int_equal(t->pc, RAM + MEM - 2);
    assert_int_equal(t->priv, PRIV_S);
    assert_int_equal(t->x[10], 1);
    assert_int_equal(t->x[11], 7);
    expect(direct(vm, hart_start(1, START, OPAQUE)), SBI_ERR_ALREADY_AVAILABLE, 0, "hart_start of a started hart");
    assert_int_equal(t->pc, RAM + MEM - 2);
    expect(direct(vm, hart_status(1)), SBI_SUCCESS, HSM_STARTED, "hart_get_status(1) once started");
    vm_destroy(vm);
}

static void test_base_direct(void **state) {
    (void)state;
    struct vm *vm = new_vm();
    expect(direct(vm, (struct call){EID_BASE, BASE_GET_SPEC_VERSION, 0, 0, 0}), SBI_SUCCESS, 2ull << 24,
           "get_spec_version");
    expect(direct(vm, (struct call){EID_BASE, BASE_PROBE_EXTENSION, EID_HSM, 0, 0}), SBI_SUCCESS, 1,
           "probe_extension(HSM)");
    expect(direct(vm, (struct call){EID_BASE, BASE_PROBE_EXTENSION, EID_NONE, 0, 0}), SBI_SUCCESS, 0,
           "probe_extension(unknown)");
    /* Only the extension's own functions: HSM has no function 9. */
    expect(direct(vm, (struct call){EID_HSM, 9, 1, START, 0}), SBI_ERR_NOT_SUPPORTED, 0, "HSM function 9");
    assert_parked(vm);
    vm_destroy(vm);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hart_start_from_guest),
        cmocka_unit_test(test_base_from_guest),
        cmocka_unit_test(test_hart_start_direct),
        cmocka_unit_test(test_base_direct),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
