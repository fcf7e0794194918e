/* Unit tests of the x86-64 encoder (src/jit/x86_emit.c): every form is
 * decoded back with capstone and compared with hand-written Intel syntax and
 * a hand-counted length (the text alone would not catch a needless REX or a
 * disp32 where a disp8 fits). rel32 branches are decoded at their real
 * address so their targets can be checked, and a nearly full buffer must
 * set `full` without writing past its end. */
#include <setjmp.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
/* capstone's x86.h has an enum x86_reg of its own: rename it out of the way
 * of the encoder's (only capstone's X86_OP_* names are used here). */
#define x86_reg cs_x86_reg
#include <capstone/capstone.h>
#undef x86_reg

#include "jit/x86_emit.h"

static csh cs;
/* Mismatches are counted rather than asserted at once, so one run lists all of them. */
static unsigned failures;
static unsigned checked;

static void print_bytes(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) print_error(" %02x", p[i]);
    print_error("\n");
}

/* Decodes n bytes at p (at their real address) expecting one instruction
 * that uses all of them; returns it in *insn (to cs_free) or NULL. */
static cs_insn *decode_one(const uint8_t *p, size_t n, char *text, size_t text_size) {
    cs_insn *insn = NULL;
    size_t count = cs_disasm(cs, p, n, (uint64_t)(uintptr_t)p, 0, &insn);
    text[0] = '\0';
    if (count == 0) return NULL;
    snprintf(text, text_size, "%s%s%s", insn[0].mnemonic, insn[0].op_str[0] ? " " : "", insn[0].op_str);
    if (count != 1 || insn[0].size != n) {
        cs_free(insn, count);
        return NULL;
    }
    return insn;
}

static void check_one(const struct x86_buf *b, const char *want, size_t want_len, const char *what, int line) {
    size_t used = x86_buf_used(b);
    char got[192];
    cs_insn *insn = decode_one(b->start, used, got, sizeof got);
    checked++;
    if (b->full || !insn || used != want_len || strcmp(got, want) != 0) {
        print_error("line %d: %s\n  want \"%s\" (%zu bytes)\n  got  \"%s\" (%zu bytes%s%s):", line, what, want,
                    want_len, got, used, insn ? "" : ", not exactly one instruction", b->full ? ", full" : "");
        print_bytes(b->start, used);
        failures++;
    }
    if (insn) cs_free(insn, 1);
}

/* Emits one form into a fresh buffer (`b` inside `emit`) and checks it. */
#define CHECK(text, len, emit)                                                                                         \
    do {                                                                                                               \
        uint8_t code_[32];                                                                                             \
        struct x86_buf buf_, *b = &buf_;                                                                               \
        x86_buf_init(b, code_, sizeof code_);                                                                          \
        emit;                                                                                                          \
        check_one(b, text, len, #emit, __LINE__);                                                                      \
    } while (0)

static int setup_capstone(void **state) {
    (void)state;
    if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK) return -1;
    cs_option(cs, CS_OPT_SYNTAX, CS_OPT_SYNTAX_INTEL);
    cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON); /* for branch targets */
    return 0;
}

static int teardown_capstone(void **state) {
    (void)state;
    cs_close(&cs);
    print_message("x86_emit: %u forms decoded\n", checked);
    return 0;
}

static int reset_failures(void **state) {
    (void)state;
    failures = 0;
    return 0;
}

static void test_mov_rr(void **state) {
    (void)state;
    CHECK("mov rax, rcx", 3, x86_mov_rr(b, RAX, RCX, true));
    CHECK("mov eax, ecx", 2, x86_mov_rr(b, RAX, RCX, false));
    CHECK("mov r15, rsp", 3, x86_mov_rr(b, R15, RSP, true));
    CHECK("mov esp, r8d", 3, x86_mov_rr(b, RSP, R8, false));
    CHECK("mov r13d, r12d", 3, x86_mov_rr(b, R13, R12, false));
    CHECK("mov rbp, rdi", 3, x86_mov_rr(b, RBP, RDI, true));
    CHECK("mov rbx, r11", 3, x86_mov_rr(b, RBX, R11, true));
    assert_int_equal(failures, 0);
}

/* The addressing-mode matrix lives here; other memory forms share modrm_mem. */
static void test_mov_rm(void **state) {
    (void)state;
    /* No displacement: [rbp]/[r13] need a disp8 of 0, [rsp]/[r12] a SIB. */
    CHECK("mov rax, qword ptr [rax]", 3, x86_mov_rm(b, RAX, x86_at(RAX, 0), true));
    CHECK("mov ecx, dword ptr [rdx]", 2, x86_mov_rm(b, RCX, x86_at(RDX, 0), false));
    CHECK("mov rcx, qword ptr [rbp]", 4, x86_mov_rm(b, RCX, x86_at(RBP, 0), true));
    CHECK("mov rdx, qword ptr [r13]", 4, x86_mov_rm(b, RDX, x86_at(R13, 0), true));
    CHECK("mov r8d, dword ptr [r13]", 4, x86_mov_rm(b, R8, x86_at(R13, 0), false));
    CHECK("mov rbx, qword ptr [rsp]", 4, x86_mov_rm(b, RBX, x86_at(RSP, 0), true));
    CHECK("mov rsi, qword ptr [r12]", 4, x86_mov_rm(b, RSI, x86_at(R12, 0), true));
    CHECK("mov edi, dword ptr [rsp]", 3, x86_mov_rm(b, RDI, x86_at(RSP, 0), false));
    /* disp8, including its bounds. */
    CHECK("mov r8, qword ptr [rbp + 0x10]", 4, x86_mov_rm(b, R8, x86_at(RBP, 0x10), true));
    CHECK("mov r9, qword ptr [rsp + 8]", 5, x86_mov_rm(b, R9, x86_at(RSP, 8), true));
    CHECK("mov r10, qword ptr [r12 - 8]", 5, x86_mov_rm(b, R10, x86_at(R12, -8), true));
    CHECK("mov r11, qword ptr [r13 + 0x7f]", 4, x86_mov_rm(b, R11, x86_at(R13, 127), true));
    CHECK("mov r12, qword ptr [rbx - 0x80]", 4, x86_mov_rm(b, R12, x86_at(RBX, -128), true));
    CHECK("mov eax, dword ptr [rcx + 1]", 3, x86_mov_rm(b, RAX, x86_at(RCX, 1), false));
    /* disp32, just past the disp8 range and at the int32 extremes. */
    CHECK("mov r13, qword ptr [r14 + 0x80]", 7, x86_mov_rm(b, R13, x86_at(R14, 128), true));
    CHECK("mov r14, qword ptr [r15 - 0x81]", 7, x86_mov_rm(b, R14, x86_at(R15, -129), true));
    CHECK("mov r15, qword ptr [rsp + 0x12345678]", 8, x86_mov_rm(b, R15, x86_at(RSP, 0x12345678), true));
    CHECK("mov rsp, qword ptr [rbp - 0x12345678]", 7, x86_mov_rm(b, RSP, x86_at(RBP, -0x12345678), true));
    CHECK("mov ebp, dword ptr [rdi + 0x7fffffff]", 6, x86_mov_rm(b, RBP, x86_at(RDI, INT32_MAX), false));
    CHECK("mov eax, dword ptr [rsi - 0x80000000]", 6, x86_mov_rm(b, RAX, x86_at(RSI, INT32_MIN), false));
    CHECK("mov r9d, dword ptr [r12 + 0x100]", 8, x86_mov_rm(b, R9, x86_at(R12, 0x100), false));
    /* Base + index*scale: every scale, high index registers (r12 and r13
     * are ordinary indexes, unlike as bases), and rbp/r13 bases with no
     * displacement, which still need a disp8 of 0 under a SIB. */
    CHECK("mov eax, dword ptr [rcx + rdx*4]", 3, x86_mov_rm(b, RAX, x86_at_index(RCX, RDX, 4, 0), false));
    CHECK("mov rax, qword ptr [rax + rcx]", 4, x86_mov_rm(b, RAX, x86_at_index(RAX, RCX, 1, 0), true));
    CHECK("mov rcx, qword ptr [rdx + rbx*2 + 0x10]", 5, x86_mov_rm(b, RCX, x86_at_index(RDX, RBX, 2, 0x10), true));
    CHECK("mov rdx, qword ptr [rsp + rsi*4 - 4]", 5, x86_mov_rm(b, RDX, x86_at_index(RSP, RSI, 4, -4), true));
    CHECK("mov rbx, qword ptr [rbp + rdi*8]", 5, x86_mov_rm(b, RBX, x86_at_index(RBP, RDI, 8, 0), true));
    CHECK("mov rsi, qword ptr [r13 + r8]", 5, x86_mov_rm(b, RSI, x86_at_index(R13, R8, 1, 0), true));
    CHECK("mov rdi, qword ptr [r12 + rbp*2]", 4, x86_mov_rm(b, RDI, x86_at_index(R12, RBP, 2, 0), true));
    CHECK("mov edi, dword ptr [r12 + r9*8 + 0x1000]", 8,
          x86_mov_rm(b, RDI, x86_at_index(R12, R9, 8, 0x1000), false));
    CHECK("mov r8, qword ptr [r15 + r12*2 - 0x1000]", 8,
          x86_mov_rm(b, R8, x86_at_index(R15, R12, 2, -0x1000), true));
    CHECK("mov r15, qword ptr [rax + r13*4]", 4, x86_mov_rm(b, R15, x86_at_index(RAX, R13, 4, 0), true));
    CHECK("mov r9d, dword ptr [r8 + rbp + 0x7f]", 5, x86_mov_rm(b, R9, x86_at_index(R8, RBP, 1, 127), false));
    CHECK("mov r10, qword ptr [r14 + r15*8 - 0x80000000]", 8,
          x86_mov_rm(b, R10, x86_at_index(R14, R15, 8, INT32_MIN), true));
    CHECK("mov r11, qword ptr [rsp + r11*8 - 0x80]", 5, x86_mov_rm(b, R11, x86_at_index(RSP, R11, 8, -128), true));
    assert_int_equal(failures, 0);
}

static void test_mov_mr(void **state) {
    (void)state;
    CHECK("mov qword ptr [rax], rcx", 3, x86_mov_mr(b, x86_at(RAX, 0), RCX, true));
    CHECK("mov dword ptr [rbx], edx", 2, x86_mov_mr(b, x86_at(RBX, 0), RDX, false));
    CHECK("mov qword ptr [rsp + 0x10], r15", 5, x86_mov_mr(b, x86_at(RSP, 0x10), R15, true));
    CHECK("mov dword ptr [r13 - 8], esp", 4, x86_mov_mr(b, x86_at(R13, -8), RSP, false));
    CHECK("mov dword ptr [rbp], r8d", 4, x86_mov_mr(b, x86_at(RBP, 0), R8, false));
    CHECK("mov qword ptr [r12], rbp", 4, x86_mov_mr(b, x86_at(R12, 0), RBP, true));
    CHECK("mov qword ptr [r12 + rdx*4 + 0x200], rbp", 8, x86_mov_mr(b, x86_at_index(R12, RDX, 4, 0x200), RBP, true));
    CHECK("mov dword ptr [rdi + r10*2 - 0x81], r13d", 8,
          x86_mov_mr(b, x86_at_index(RDI, R10, 2, -129), R13, false));
    assert_int_equal(failures, 0);
}

static void test_mov_ri(void **state) {
    (void)state;
    /* Zero: xor of the 32-bit register. */
    CHECK("xor eax, eax", 2, x86_mov_ri(b, RAX, 0));
    CHECK("xor r15d, r15d", 3, x86_mov_ri(b, R15, 0));
    CHECK("xor esp, esp", 2, x86_mov_ri(b, RSP, 0));
    /* Up to 32 bits unsigned: mov r32, imm32 (zero-extends). */
    CHECK("mov ecx, 1", 5, x86_mov_ri(b, RCX, 1));
    CHECK("mov r9d, 0x7f", 6, x86_mov_ri(b, R9, 0x7f));
    CHECK("mov edx, 0x80000000", 5, x86_mov_ri(b, RDX, 0x80000000u));
    CHECK("mov r12d, 0xffffffff", 6, x86_mov_ri(b, R12, 0xffffffffu));
    CHECK("mov ebp, 0x12345678", 5, x86_mov_ri(b, RBP, 0x12345678u));
    /* Negative and sign-extendable from 32 bits: mov r/m64, imm32. */
    CHECK("mov rbx, -1", 7, x86_mov_ri(b, RBX, UINT64_MAX));
    CHECK("mov rbp, -0x80", 7, x86_mov_ri(b, RBP, (uint64_t)-128));
    CHECK("mov rsp, -0x80000000", 7, x86_mov_ri(b, RSP, (uint64_t)(int64_t)INT32_MIN));
    CHECK("mov r14, -0x1000", 7, x86_mov_ri(b, R14, (uint64_t)-4096));
    /* Anything else: movabs. */
    CHECK("movabs r13, 0x100000000", 10, x86_mov_ri(b, R13, 0x100000000ull));
    CHECK("movabs rsi, 0x123456789abcdef0", 10, x86_mov_ri(b, RSI, 0x123456789abcdef0ull));
    CHECK("movabs r8, 0xffffffff7fffffff", 10, x86_mov_ri(b, R8, 0xffffffff7fffffffull));
    CHECK("movabs rdi, 0x8000000000000000", 10, x86_mov_ri(b, RDI, 0x8000000000000000ull));
    CHECK("movabs rax, 0x7fffffffffffffff", 10, x86_mov_ri(b, RAX, 0x7fffffffffffffffull));
    assert_int_equal(failures, 0);
}

static void test_mov_mi(void **state) {
    (void)state;
    CHECK("mov qword ptr [rax], 0", 7, x86_mov_mi(b, x86_at(RAX, 0), 0, true));
    CHECK("mov dword ptr [rsp + 8], 1", 8, x86_mov_mi(b, x86_at(RSP, 8), 1, false));
    CHECK("mov qword ptr [r13], -1", 8, x86_mov_mi(b, x86_at(R13, 0), -1, true));
    CHECK("mov qword ptr [r12 + rax*8 + 0x100], 0x12345678", 12,
          x86_mov_mi(b, x86_at_index(R12, RAX, 8, 0x100), 0x12345678, true));
    CHECK("mov dword ptr [rbp - 0x10], 0x80000000", 7, x86_mov_mi(b, x86_at(RBP, -16), INT32_MIN, false));
    CHECK("mov qword ptr [r15 + r14*2 - 0x12345678], -0x80000000", 12,
          x86_mov_mi(b, x86_at_index(R15, R14, 2, -0x12345678), INT32_MIN, true));
    assert_int_equal(failures, 0);
}

static void test_load(void **state) {
    (void)state;
    CHECK("movzx eax, byte ptr [rdi]", 3, x86_load(b, RAX, x86_at(RDI, 0), 1, false));
    CHECK("movzx r8d, byte ptr [rsp + 1]", 6, x86_load(b, R8, x86_at(RSP, 1), 1, false));
    CHECK("movsx rcx, byte ptr [r13]", 5, x86_load(b, RCX, x86_at(R13, 0), 1, true));
    CHECK("movsx rsp, byte ptr [rbp + rax*8 + 0x80]", 9, x86_load(b, RSP, x86_at_index(RBP, RAX, 8, 128), 1, true));
    CHECK("movzx r15d, word ptr [rax + rbx*2]", 5, x86_load(b, R15, x86_at_index(RAX, RBX, 2, 0), 2, false));
    CHECK("movsx rdx, word ptr [r12 - 2]", 6, x86_load(b, RDX, x86_at(R12, -2), 2, true));
    CHECK("movzx ebp, word ptr [r9 + 0x1000]", 8, x86_load(b, RBP, x86_at(R9, 0x1000), 2, false));
    CHECK("mov esi, dword ptr [rbp + 0x1000]", 6, x86_load(b, RSI, x86_at(RBP, 0x1000), 4, false));
    CHECK("mov r10d, dword ptr [r13]", 4, x86_load(b, R10, x86_at(R13, 0), 4, false));
    CHECK("movsxd r11, dword ptr [rsi + rcx*4 - 4]", 5, x86_load(b, R11, x86_at_index(RSI, RCX, 4, -4), 4, true));
    CHECK("movsxd rax, dword ptr [rsp]", 4, x86_load(b, RAX, x86_at(RSP, 0), 4, true));
    CHECK("mov rsp, qword ptr [r14 + 0x7fffffff]", 7, x86_load(b, RSP, x86_at(R14, INT32_MAX), 8, false));
    /* sign means nothing at 8 bytes */
    CHECK("mov rbx, qword ptr [rax]", 3, x86_load(b, RBX, x86_at(RAX, 0), 8, true));
    CHECK("mov r12, qword ptr [r12 + r12*4]", 4, x86_load(b, R12, x86_at_index(R12, R12, 4, 0), 8, false));
    assert_int_equal(failures, 0);
}

static void test_store(void **state) {
    (void)state;
    /* Byte stores of SPL..DIL need an (empty) REX, else they mean AH..BH. */
    CHECK("mov byte ptr [rax], cl", 2, x86_store(b, x86_at(RAX, 0), RCX, 1));
    CHECK("mov byte ptr [rdx], bl", 2, x86_store(b, x86_at(RDX, 0), RBX, 1));
    CHECK("mov byte ptr [rbx], spl", 3, x86_store(b, x86_at(RBX, 0), RSP, 1));
    CHECK("mov byte ptr [rsp + 1], bpl", 5, x86_store(b, x86_at(RSP, 1), RBP, 1));
    CHECK("mov byte ptr [r13], sil", 4, x86_store(b, x86_at(R13, 0), RSI, 1));
    CHECK("mov byte ptr [rcx + rdx*8], dil", 4, x86_store(b, x86_at_index(RCX, RDX, 8, 0), RDI, 1));
    CHECK("mov byte ptr [r12 - 1], r9b", 5, x86_store(b, x86_at(R12, -1), R9, 1));
    CHECK("mov byte ptr [rbp + 0x1000], r15b", 7, x86_store(b, x86_at(RBP, 0x1000), R15, 1));
    CHECK("mov word ptr [rax], ax", 3, x86_store(b, x86_at(RAX, 0), RAX, 2));
    CHECK("mov word ptr [r13 + 0x10], r15w", 5, x86_store(b, x86_at(R13, 16), R15, 2));
    CHECK("mov word ptr [rsp + rbp*2 - 0x100], sp", 8, x86_store(b, x86_at_index(RSP, RBP, 2, -256), RSP, 2));
    CHECK("mov word ptr [r12], si", 5, x86_store(b, x86_at(R12, 0), RSI, 2));
    CHECK("mov dword ptr [rbp], edx", 3, x86_store(b, x86_at(RBP, 0), RDX, 4));
    CHECK("mov dword ptr [r8 + r9*4 + 0x7f], r10d", 5, x86_store(b, x86_at_index(R8, R9, 4, 127), R10, 4));
    CHECK("mov dword ptr [rdi], edi", 2, x86_store(b, x86_at(RDI, 0), RDI, 4));
    CHECK("mov qword ptr [rsp], rax", 4, x86_store(b, x86_at(RSP, 0), RAX, 8));
    CHECK("mov qword ptr [r12 + r13*8 + 0x12345678], r14", 8,
          x86_store(b, x86_at_index(R12, R13, 8, 0x12345678), R14, 8));
    assert_int_equal(failures, 0);
}

static void test_lea_movsxd(void **state) {
    (void)state;
    CHECK("lea rax, [rbx + rcx*4 + 8]", 5, x86_lea(b, RAX, x86_at_index(RBX, RCX, 4, 8), true));
    CHECK("lea r12d, [rsp - 8]", 5, x86_lea(b, R12, x86_at(RSP, -8), false));
    CHECK("lea rbp, [r13 + 0x1000]", 7, x86_lea(b, RBP, x86_at(R13, 0x1000), true));
    CHECK("lea r9, [r12 + r15]", 4, x86_lea(b, R9, x86_at_index(R12, R15, 1, 0), true));
    CHECK("lea edx, [rdx + rdx*2]", 3, x86_lea(b, RDX, x86_at_index(RDX, RDX, 2, 0), false));
    CHECK("lea rsi, [rbp - 0x80000000]", 7, x86_lea(b, RSI, x86_at(RBP, INT32_MIN), true));
    CHECK("movsxd rax, ecx", 3, x86_movsxd(b, RAX, RCX));
    CHECK("movsxd r15, esp", 3, x86_movsxd(b, R15, RSP));
    CHECK("movsxd rbp, r13d", 3, x86_movsxd(b, RBP, R13));
    CHECK("movsxd r8, r8d", 3, x86_movsxd(b, R8, R8));
    assert_int_equal(failures, 0);
}

static void test_alu_reg_mem(void **state) {
    (void)state;
    CHECK("add rax, rcx", 3, x86_alu_rr(b, ALU_ADD, RAX, RCX, true));
    CHECK("or r8d, r9d", 3, x86_alu_rr(b, ALU_OR, R8, R9, false));
    CHECK("and rsp, r15", 3, x86_alu_rr(b, ALU_AND, RSP, R15, true));
    CHECK("sub edx, ebx", 2, x86_alu_rr(b, ALU_SUB, RDX, RBX, false));
    CHECK("xor r13, rbp", 3, x86_alu_rr(b, ALU_XOR, R13, RBP, true));
    CHECK("cmp esi, r12d", 3, x86_alu_rr(b, ALU_CMP, RSI, R12, false));
    CHECK("cmp rdi, rax", 3, x86_alu_rr(b, ALU_CMP, RDI, RAX, true));

    CHECK("add rax, qword ptr [rbp + 0x10]", 4, x86_alu_rm(b, ALU_ADD, RAX, x86_at(RBP, 16), true));
    CHECK("or ecx, dword ptr [rsp]", 3, x86_alu_rm(b, ALU_OR, RCX, x86_at(RSP, 0), false));
    CHECK("and r10, qword ptr [r13]", 4, x86_alu_rm(b, ALU_AND, R10, x86_at(R13, 0), true));
    CHECK("sub edi, dword ptr [r12 + rax*2 - 0x20]", 5,
          x86_alu_rm(b, ALU_SUB, RDI, x86_at_index(R12, RAX, 2, -32), false));
    CHECK("xor r15, qword ptr [rbx + 0x12345678]", 7, x86_alu_rm(b, ALU_XOR, R15, x86_at(RBX, 0x12345678), true));
    CHECK("cmp esp, dword ptr [rdx + r8*8]", 4, x86_alu_rm(b, ALU_CMP, RSP, x86_at_index(RDX, R8, 8, 0), false));

    CHECK("add qword ptr [rax], rcx", 3, x86_alu_mr(b, ALU_ADD, x86_at(RAX, 0), RCX, true));
    CHECK("or dword ptr [rsp + 8], r11d", 5, x86_alu_mr(b, ALU_OR, x86_at(RSP, 8), R11, false));
    CHECK("and qword ptr [r13 - 0x80], rsp", 4, x86_alu_mr(b, ALU_AND, x86_at(R13, -128), RSP, true));
    CHECK("sub qword ptr [r12 + rbp*4], rdx", 4, x86_alu_mr(b, ALU_SUB, x86_at_index(R12, RBP, 4, 0), RDX, true));
    CHECK("xor dword ptr [rbp], eax", 3, x86_alu_mr(b, ALU_XOR, x86_at(RBP, 0), RAX, false));
    CHECK("cmp qword ptr [rdi + 0x80], r15", 7, x86_alu_mr(b, ALU_CMP, x86_at(RDI, 128), R15, true));
    assert_int_equal(failures, 0);
}

static void test_alu_imm(void **state) {
    (void)state;
    /* imm8 (0x83) for -128..127, imm32 (0x81) otherwise; sign-extended either
     * way. capstone shows negative immediates signed, except for and/or/xor,
     * where it shows them masked to the operand size. */
    CHECK("add rax, 1", 4, x86_alu_ri(b, ALU_ADD, RAX, 1, true));
    CHECK("add r15d, 0x80", 7, x86_alu_ri(b, ALU_ADD, R15, 128, false));
    CHECK("or rcx, 0xffffffffffffffff", 4, x86_alu_ri(b, ALU_OR, RCX, -1, true));
    CHECK("or edx, 0x10000", 6, x86_alu_ri(b, ALU_OR, RDX, 0x10000, false));
    CHECK("and rsp, 0xfffffffffffffff0", 4, x86_alu_ri(b, ALU_AND, RSP, -16, true));
    CHECK("and r12d, 0x7fffffff", 7, x86_alu_ri(b, ALU_AND, R12, INT32_MAX, false));
    CHECK("sub rsp, 0x80", 7, x86_alu_ri(b, ALU_SUB, RSP, 128, true));
    CHECK("sub ebx, -0x80", 3, x86_alu_ri(b, ALU_SUB, RBX, -128, false));
    CHECK("xor rbp, 0x7f", 4, x86_alu_ri(b, ALU_XOR, RBP, 127, true));
    CHECK("xor r8, 0xffffffff80000000", 7, x86_alu_ri(b, ALU_XOR, R8, INT32_MIN, true));
    CHECK("cmp r13, -0x81", 7, x86_alu_ri(b, ALU_CMP, R13, -129, true));
    CHECK("cmp esi, 0", 3, x86_alu_ri(b, ALU_CMP, RSI, 0, false));

    CHECK("add qword ptr [rax], 1", 4, x86_alu_mi(b, ALU_ADD, x86_at(RAX, 0), 1, true));
    CHECK("or dword ptr [rsp + 0x10], 0x100", 8, x86_alu_mi(b, ALU_OR, x86_at(RSP, 16), 0x100, false));
    CHECK("and qword ptr [r13], 0xfffffffffffffffe", 5, x86_alu_mi(b, ALU_AND, x86_at(R13, 0), -2, true));
    CHECK("sub qword ptr [r12 + rcx*8 - 8], 0x7f", 6,
          x86_alu_mi(b, ALU_SUB, x86_at_index(R12, RCX, 8, -8), 127, true));
    CHECK("xor dword ptr [rbp + 0x1000], 0x12345678", 10,
          x86_alu_mi(b, ALU_XOR, x86_at(RBP, 0x1000), 0x12345678, false));
    CHECK("cmp dword ptr [r9], -0x80", 4, x86_alu_mi(b, ALU_CMP, x86_at(R9, 0), -128, false));
    CHECK("cmp qword ptr [rbx + r11*2 + 0x12345678], -0x10000", 12,
          x86_alu_mi(b, ALU_CMP, x86_at_index(RBX, R11, 2, 0x12345678), -0x10000, true));
    assert_int_equal(failures, 0);
}

static void test_test_shift(void **state) {
    (void)state;
    CHECK("test rax, rax", 3, x86_test_rr(b, RAX, RAX, true));
    CHECK("test ecx, edx", 2, x86_test_rr(b, RCX, RDX, false));
    CHECK("test r12d, esi", 3, x86_test_rr(b, R12, RSI, false));
    CHECK("test rbp, r9", 3, x86_test_rr(b, RBP, R9, true));

    CHECK("shl rax, 1", 4, x86_shift_ri(b, SHIFT_SHL, RAX, 1, true));
    CHECK("shl ecx, 5", 3, x86_shift_ri(b, SHIFT_SHL, RCX, 5, false));
    CHECK("shr r10d, 0x1f", 4, x86_shift_ri(b, SHIFT_SHR, R10, 31, false));
    CHECK("shr rdi, 0x20", 4, x86_shift_ri(b, SHIFT_SHR, RDI, 32, true));
    CHECK("sar rsp, 0x3f", 4, x86_shift_ri(b, SHIFT_SAR, RSP, 63, true));
    CHECK("sar r13d, 3", 4, x86_shift_ri(b, SHIFT_SAR, R13, 3, false));

    CHECK("shl rdx, cl", 3, x86_shift_rcl(b, SHIFT_SHL, RDX, true));
    CHECK("shr r13d, cl", 3, x86_shift_rcl(b, SHIFT_SHR, R13, false));
    CHECK("sar ebx, cl", 2, x86_shift_rcl(b, SHIFT_SAR, RBX, false));
    CHECK("sar r8, cl", 3, x86_shift_rcl(b, SHIFT_SAR, R8, true));
    CHECK("shl rcx, cl", 3, x86_shift_rcl(b, SHIFT_SHL, RCX, true));
    assert_int_equal(failures, 0);
}

static void test_mul_div(void **state) {
    (void)state;
    CHECK("imul rax, rcx", 4, x86_imul_rr(b, RAX, RCX, true));
    CHECK("imul edx, ebx", 3, x86_imul_rr(b, RDX, RBX, false));
    CHECK("imul r14d, esp", 4, x86_imul_rr(b, R14, RSP, false));
    CHECK("imul rbp, r13", 4, x86_imul_rr(b, RBP, R13, true));

    CHECK("imul rax, qword ptr [rbp + 8]", 5, x86_imul_rm(b, RAX, x86_at(RBP, 8), true));
    CHECK("imul ecx, dword ptr [r13]", 5, x86_imul_rm(b, RCX, x86_at(R13, 0), false));
    CHECK("imul r11d, dword ptr [r12 + rdx*4 + 0x400]", 9,
          x86_imul_rm(b, R11, x86_at_index(R12, RDX, 4, 0x400), false));
    CHECK("imul r8, qword ptr [rsp]", 5, x86_imul_rm(b, R8, x86_at(RSP, 0), true));

    CHECK("not rax", 3, x86_unary(b, UN_NOT, RAX, true));
    CHECK("not esp", 2, x86_unary(b, UN_NOT, RSP, false));
    CHECK("neg r9d", 3, x86_unary(b, UN_NEG, R9, false));
    CHECK("neg r12", 3, x86_unary(b, UN_NEG, R12, true));
    CHECK("mul rcx", 3, x86_unary(b, UN_MUL, RCX, true));
    CHECK("mul r13d", 3, x86_unary(b, UN_MUL, R13, false));
    CHECK("imul r15", 3, x86_unary(b, UN_IMUL, R15, true));
    CHECK("imul esi", 2, x86_unary(b, UN_IMUL, RSI, false));
    CHECK("div ebx", 2, x86_unary(b, UN_DIV, RBX, false));
    CHECK("div r8", 3, x86_unary(b, UN_DIV, R8, true));
    CHECK("idiv rbp", 3, x86_unary(b, UN_IDIV, RBP, true));
    CHECK("idiv r11d", 3, x86_unary(b, UN_IDIV, R11, false));

    CHECK("cqo", 2, x86_cqo(b, true));
    CHECK("cdq", 1, x86_cqo(b, false));
    assert_int_equal(failures, 0);
}

static void test_setcc_movzx_cmov(void **state) {
    (void)state;
    /* Every condition, across plain, REX-only (SPL..DIL) and high byte registers. */
    CHECK("seto al", 3, x86_setcc(b, CC_O, RAX));
    CHECK("setno cl", 3, x86_setcc(b, CC_NO, RCX));
    CHECK("setb dl", 3, x86_setcc(b, CC_B, RDX));
    CHECK("setae bl", 3, x86_setcc(b, CC_AE, RBX));
    CHECK("sete spl", 4, x86_setcc(b, CC_E, RSP));
    CHECK("setne bpl", 4, x86_setcc(b, CC_NE, RBP));
    CHECK("setbe sil", 4, x86_setcc(b, CC_BE, RSI));
    CHECK("seta dil", 4, x86_setcc(b, CC_A, RDI));
    CHECK("sets r8b", 4, x86_setcc(b, CC_S, R8));
    CHECK("setns r11b", 4, x86_setcc(b, CC_NS, R11));
    CHECK("setl r12b", 4, x86_setcc(b, CC_L, R12));
    CHECK("setge r13b", 4, x86_setcc(b, CC_GE, R13));
    CHECK("setle r14b", 4, x86_setcc(b, CC_LE, R14));
    CHECK("setg r15b", 4, x86_setcc(b, CC_G, R15));

    CHECK("movzx eax, cl", 3, x86_movzx8(b, RAX, RCX));
    CHECK("movzx ebx, bl", 3, x86_movzx8(b, RBX, RBX));
    CHECK("movzx edx, spl", 4, x86_movzx8(b, RDX, RSP));
    CHECK("movzx r8d, bpl", 4, x86_movzx8(b, R8, RBP));
    CHECK("movzx esi, sil", 4, x86_movzx8(b, RSI, RSI));
    CHECK("movzx r15d, dil", 4, x86_movzx8(b, R15, RDI));
    CHECK("movzx ebx, r10b", 4, x86_movzx8(b, RBX, R10));
    CHECK("movzx r12d, r13b", 4, x86_movzx8(b, R12, R13));
    CHECK("movzx esp, al", 3, x86_movzx8(b, RSP, RAX));

    CHECK("cmovo rax, rcx", 4, x86_cmov_rr(b, CC_O, RAX, RCX, true));
    CHECK("cmovno edx, ebx", 3, x86_cmov_rr(b, CC_NO, RDX, RBX, false));
    CHECK("cmovb rsp, r15", 4, x86_cmov_rr(b, CC_B, RSP, R15, true));
    CHECK("cmovae r8d, r9d", 4, x86_cmov_rr(b, CC_AE, R8, R9, false));
    CHECK("cmove rbp, rsi", 4, x86_cmov_rr(b, CC_E, RBP, RSI, true));
    CHECK("cmovne r13, r12", 4, x86_cmov_rr(b, CC_NE, R13, R12, true));
    CHECK("cmovbe edi, esp", 3, x86_cmov_rr(b, CC_BE, RDI, RSP, false));
    CHECK("cmova r10, rax", 4, x86_cmov_rr(b, CC_A, R10, RAX, true));
    CHECK("cmovs rcx, r14", 4, x86_cmov_rr(b, CC_S, RCX, R14, true));
    CHECK("cmovns r11d, r11d", 4, x86_cmov_rr(b, CC_NS, R11, R11, false));
    CHECK("cmovl rax, rbp", 4, x86_cmov_rr(b, CC_L, RAX, RBP, true));
    CHECK("cmovge r12, r13", 4, x86_cmov_rr(b, CC_GE, R12, R13, true));
    CHECK("cmovle esi, edi", 3, x86_cmov_rr(b, CC_LE, RSI, RDI, false));
    CHECK("cmovg r15, rdx", 4, x86_cmov_rr(b, CC_G, R15, RDX, true));
    assert_int_equal(failures, 0);
}

static void test_stack_and_indirect(void **state) {
    (void)state;
    CHECK("push rax", 1, x86_push(b, RAX));
    CHECK("push rsp", 1, x86_push(b, RSP));
    CHECK("push rbp", 1, x86_push(b, RBP));
    CHECK("push rbx", 1, x86_push(b, RBX));
    CHECK("push r8", 2, x86_push(b, R8));
    CHECK("push r12", 2, x86_push(b, R12));
    CHECK("push r13", 2, x86_push(b, R13));
    CHECK("push r15", 2, x86_push(b, R15));
    CHECK("push 0x12345678", 5, x86_push_imm(b, 0x12345678));
    CHECK("push -0x80000000", 5, x86_push_imm(b, INT32_MIN));
    CHECK("pop rax", 1, x86_pop(b, RAX));
    CHECK("pop rsp", 1, x86_pop(b, RSP));
    CHECK("pop rdi", 1, x86_pop(b, RDI));
    CHECK("pop r9", 2, x86_pop(b, R9));
    CHECK("pop r12", 2, x86_pop(b, R12));
    CHECK("pop r15", 2, x86_pop(b, R15));
    CHECK("ret", 1, x86_ret(b));
    CHECK("ret 0x18", 3, x86_ret_imm(b, 24));
    CHECK("ret 0x1234", 3, x86_ret_imm(b, 0x1234));

    CHECK("call rax", 2, x86_call_r(b, RAX));
    CHECK("call rsp", 2, x86_call_r(b, RSP));
    CHECK("call r11", 3, x86_call_r(b, R11));
    CHECK("call r13", 3, x86_call_r(b, R13));
    CHECK("jmp rcx", 2, x86_jmp_r(b, RCX));
    CHECK("jmp rbp", 2, x86_jmp_r(b, RBP));
    CHECK("jmp r12", 3, x86_jmp_r(b, R12));
    CHECK("jmp r15", 3, x86_jmp_r(b, R15));

    CHECK("jmp qword ptr [rax]", 2, x86_jmp_m(b, x86_at(RAX, 0)));
    CHECK("jmp qword ptr [rsp + 8]", 4, x86_jmp_m(b, x86_at(RSP, 8)));
    CHECK("jmp qword ptr [rbp]", 3, x86_jmp_m(b, x86_at(RBP, 0)));
    CHECK("jmp qword ptr [r13 + rax*8]", 5, x86_jmp_m(b, x86_at_index(R13, RAX, 8, 0)));
    CHECK("jmp qword ptr [r12 + r14*8 + 0x1000]", 8, x86_jmp_m(b, x86_at_index(R12, R14, 8, 0x1000)));
    CHECK("jmp qword ptr [rdi - 0x80000000]", 6, x86_jmp_m(b, x86_at(RDI, INT32_MIN)));
    CHECK("jmp qword ptr [r9 + 0x7f]", 4, x86_jmp_m(b, x86_at(R9, 127)));

    CHECK("mfence", 3, x86_mfence(b));
    CHECK("nop", 1, x86_nop(b, 1));
    assert_int_equal(failures, 0);
}

static void test_nop_run(void **state) {
    (void)state;
    uint8_t code[32];
    struct x86_buf b;
    x86_buf_init(&b, code, sizeof code);
    x86_nop(&b, 0);
    assert_int_equal(x86_buf_used(&b), 0);
    x86_nop(&b, 7);
    assert_false(b.full);
    assert_int_equal(x86_buf_used(&b), 7);
    cs_insn *insn;
    size_t n = cs_disasm(cs, code, 7, (uint64_t)(uintptr_t)code, 0, &insn);
    assert_int_equal(n, 7);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(insn[i].mnemonic, "nop");
        assert_int_equal(insn[i].size, 1);
    }
    cs_free(insn, n);
}

/* Branches are emitted into (and decoded at) a real code area, so their
 * targets are real addresses: capstone computes them from the address it is
 * given, exactly as the CPU would. */
static _Alignas(64) uint8_t area[0x10000];

/* Checks that the len bytes at p are one `mnemonic` to target. */
static void check_branch(const uint8_t *p, size_t len, const char *mnemonic, uintptr_t target, int line) {
    char got[192];
    cs_insn *insn = decode_one(p, len, got, sizeof got);
    checked++;
    bool ok = insn && strcmp(insn->mnemonic, mnemonic) == 0 && insn->detail->x86.op_count == 1 &&
              insn->detail->x86.operands[0].type == X86_OP_IMM &&
              (uint64_t)insn->detail->x86.operands[0].imm == (uint64_t)target;
    if (!ok) {
        print_error("line %d: want %s to %#" PRIxPTR " (%zu bytes), got \"%s\":", line, mnemonic, target, len, got);
        print_bytes(p, len);
        failures++;
    }
    if (insn) cs_free(insn, 1);
}

/* Emits `emit` (an x86_jmp/jcc/call on `b`) at area + at and checks it
 * branches to `target`, and that the returned field is `field_off` bytes in. */
#define CHECK_BRANCH(mnemonic, len, field_off, at, target, emit)                                                       \
    do {                                                                                                               \
        struct x86_buf buf_, *b = &buf_;                                                                               \
        x86_buf_init(b, area + (at), 64);                                                                              \
        uint8_t *field_ = (emit);                                                                                      \
        assert_ptr_equal(field_, area + (at) + (field_off));                                                           \
        assert_int_equal(x86_buf_used(b), len);                                                                        \
        check_branch(area + (at), len, mnemonic, (uintptr_t)(target), __LINE__);                                       \
    } while (0)

static void test_rel32_branches(void **state) {
    (void)state;
    const size_t at = 0x8000;
    uint8_t *here = area + at;
    /* Forward, backward, to itself, and unset (0: the next instruction). */
    CHECK_BRANCH("jmp", 5, 1, at, area + 0xfff0, x86_jmp(b, area + 0xfff0));
    CHECK_BRANCH("jmp", 5, 1, at, area, x86_jmp(b, area));
    CHECK_BRANCH("jmp", 5, 1, at, here, x86_jmp(b, here));
    CHECK_BRANCH("jmp", 5, 1, at, here + 5, x86_jmp(b, NULL));
    CHECK_BRANCH("call", 5, 1, at, area + 0x9000, x86_call(b, area + 0x9000));
    CHECK_BRANCH("call", 5, 1, at, area + 0x10, x86_call(b, area + 0x10));
    CHECK_BRANCH("call", 5, 1, at, here + 5, x86_call(b, NULL));

    static const struct {
        enum x86_cond cc;
        const char *mnemonic;
    } conds[] = {
        {CC_O, "jo"}, {CC_NO, "jno"}, {CC_B, "jb"}, {CC_AE, "jae"}, {CC_E, "je"},  {CC_NE, "jne"}, {CC_BE, "jbe"},
        {CC_A, "ja"}, {CC_S, "js"},   {CC_NS, "jns"}, {CC_L, "jl"}, {CC_GE, "jge"}, {CC_LE, "jle"}, {CC_G, "jg"},
    };
    for (size_t i = 0; i < sizeof conds / sizeof conds[0]; i++) {
        /* alternate forward and backward targets, a different one each time */
        uint8_t *target = i & 1 ? area + 0x100 * i : here + 0x100 * (i + 1);
        CHECK_BRANCH(conds[i].mnemonic, 6, 2, at, target, x86_jcc(b, conds[i].cc, target));
    }
    CHECK_BRANCH("jne", 6, 2, at, here, x86_jcc(b, CC_NE, here));
    CHECK_BRANCH("je", 6, 2, at, here + 6, x86_jcc(b, CC_E, NULL));

    /* The farthest targets a rel32 reaches, either way. Only decoded, never
     * run, so they need not be mapped. */
    uintptr_t next = (uintptr_t)here + 5;
    CHECK_BRANCH("jmp", 5, 1, at, next + INT32_MAX, x86_jmp(b, (const uint8_t *)(next + INT32_MAX)));
    CHECK_BRANCH("jmp", 5, 1, at, next - 0x80000000u, x86_jmp(b, (const uint8_t *)(next - 0x80000000u)));
    next = (uintptr_t)here + 6;
    CHECK_BRANCH("jl", 6, 2, at, next - 0x80000000u, x86_jcc(b, CC_L, (const uint8_t *)(next - 0x80000000u)));
    assert_int_equal(failures, 0);
}

static void test_patch_rel32(void **state) {
    (void)state;
    /* A jmp at an address 3 mod 4 has an aligned field (the atomic store),
     * one at 0 mod 4 an unaligned one (memcpy); jcc's field is 2 bytes in. */
    static const size_t starts[] = {0x4003, 0x4000, 0x4002, 0x4001};
    for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++) {
        size_t at = starts[i];
        struct x86_buf b;

        x86_buf_init(&b, area + at, 64);
        uint8_t *field = x86_jmp(&b, area + 0x100);
        assert_ptr_equal(field, area + at + 1);
        x86_patch_rel32(field, area + 0xf000);
        check_branch(area + at, 5, "jmp", (uintptr_t)(area + 0xf000), __LINE__);
        x86_patch_rel32(field, area + at); /* to itself */
        check_branch(area + at, 5, "jmp", (uintptr_t)(area + at), __LINE__);

        x86_buf_init(&b, area + at, 64);
        field = x86_jcc(&b, CC_GE, NULL);
        x86_patch_rel32(field, area + 0x20);
        check_branch(area + at, 6, "jge", (uintptr_t)(area + 0x20), __LINE__);

        x86_buf_init(&b, area + at, 64);
        field = x86_call(&b, area);
        x86_patch_rel32(field, area + at + 5); /* the next instruction */
        check_branch(area + at, 5, "call", (uintptr_t)(area + at + 5), __LINE__);
        assert_int_equal(x86_buf_used(&b), 5);
    }
    assert_int_equal(failures, 0);
}

static void test_rel32_reaches(void **state) {
    (void)state;
    /* Made-up addresses: only their distance matters. */
    const uintptr_t field = 0x100000000ull;
    const uintptr_t next = field + 4;
    const uint8_t *f = (const uint8_t *)field;
    assert_true(x86_rel32_reaches(f, (const uint8_t *)next));
    assert_true(x86_rel32_reaches(f, (const uint8_t *)field));
    assert_true(x86_rel32_reaches(f, (const uint8_t *)(next + INT32_MAX)));
    assert_false(x86_rel32_reaches(f, (const uint8_t *)(next + INT32_MAX + 1ull)));
    assert_true(x86_rel32_reaches(f, (const uint8_t *)(next - 0x80000000ull)));
    assert_false(x86_rel32_reaches(f, (const uint8_t *)(next - 0x80000001ull)));
    assert_false(x86_rel32_reaches(f, (const uint8_t *)(field + 0x100000000ull)));
    assert_true(x86_rel32_reaches(area, area + sizeof area - 1));
}

/* One instance of each form, at its longest where it has several lengths;
 * branches get no target so their bytes do not depend on where they land. */
static void e_mov_rr(struct x86_buf *b) { x86_mov_rr(b, R15, R8, true); }
static void e_mov_rm(struct x86_buf *b) { x86_mov_rm(b, R9, x86_at_index(R12, R13, 8, 0x12345678), true); }
static void e_mov_mr(struct x86_buf *b) { x86_mov_mr(b, x86_at_index(R12, R13, 8, 0x12345678), R9, true); }
static void e_mov_ri0(struct x86_buf *b) { x86_mov_ri(b, R8, 0); }
static void e_mov_ri32(struct x86_buf *b) { x86_mov_ri(b, R8, 0x89abcdef); }
static void e_mov_ri_neg(struct x86_buf *b) { x86_mov_ri(b, R8, (uint64_t)-2); }
static void e_mov_ri64(struct x86_buf *b) { x86_mov_ri(b, R8, 0x123456789abcdef0ull); }
static void e_mov_mi(struct x86_buf *b) { x86_mov_mi(b, x86_at_index(R12, R13, 8, 0x12345678), 0x12345678, true); }
static void e_load(struct x86_buf *b) { x86_load(b, R9, x86_at_index(R12, R13, 8, 0x12345678), 2, true); }
static void e_store1(struct x86_buf *b) { x86_store(b, x86_at_index(RSP, RBP, 8, 0x12345678), RSI, 1); }
static void e_store2(struct x86_buf *b) { x86_store(b, x86_at_index(R12, R13, 8, 0x12345678), R9, 2); }
static void e_store8(struct x86_buf *b) { x86_store(b, x86_at_index(R12, R13, 8, 0x12345678), R9, 8); }
static void e_lea(struct x86_buf *b) { x86_lea(b, R9, x86_at_index(R12, R13, 8, 0x12345678), true); }
static void e_movsxd(struct x86_buf *b) { x86_movsxd(b, R9, R10); }
static void e_alu_rr(struct x86_buf *b) { x86_alu_rr(b, ALU_SUB, R9, R10, true); }
static void e_alu_rm(struct x86_buf *b) { x86_alu_rm(b, ALU_SUB, R9, x86_at_index(R12, R13, 8, 0x12345678), true); }
static void e_alu_mr(struct x86_buf *b) { x86_alu_mr(b, ALU_SUB, x86_at_index(R12, R13, 8, 0x12345678), R9, true); }
static void e_alu_ri(struct x86_buf *b) { x86_alu_ri(b, ALU_AND, R9, 0x12345678, true); }
static void e_alu_ri8(struct x86_buf *b) { x86_alu_ri(b, ALU_AND, R9, -8, true); }
static void e_alu_mi(struct x86_buf *b) {
    x86_alu_mi(b, ALU_CMP, x86_at_index(R12, R13, 8, 0x12345678), 0x12345678, true);
}
static void e_alu_mi8(struct x86_buf *b) { x86_alu_mi(b, ALU_CMP, x86_at_index(R12, R13, 8, 0x12345678), 1, true); }
static void e_test_rr(struct x86_buf *b) { x86_test_rr(b, R9, R10, true); }
static void e_shift_ri(struct x86_buf *b) { x86_shift_ri(b, SHIFT_SAR, R9, 7, true); }
static void e_shift_rcl(struct x86_buf *b) { x86_shift_rcl(b, SHIFT_SHR, R9, true); }
static void e_imul_rr(struct x86_buf *b) { x86_imul_rr(b, R9, R10, true); }
static void e_imul_rm(struct x86_buf *b) { x86_imul_rm(b, R9, x86_at_index(R12, R13, 8, 0x12345678), true); }
static void e_unary(struct x86_buf *b) { x86_unary(b, UN_IDIV, R9, true); }
static void e_cqo(struct x86_buf *b) { x86_cqo(b, true); }
static void e_setcc(struct x86_buf *b) { x86_setcc(b, CC_LE, RSI); }
static void e_movzx8(struct x86_buf *b) { x86_movzx8(b, R9, RDI); }
static void e_cmov_rr(struct x86_buf *b) { x86_cmov_rr(b, CC_G, R9, R10, true); }
static void e_push(struct x86_buf *b) { x86_push(b, R12); }
static void e_push_imm(struct x86_buf *b) { x86_push_imm(b, -5); }
static void e_pop(struct x86_buf *b) { x86_pop(b, R12); }
static void e_ret(struct x86_buf *b) { x86_ret(b); }
static void e_ret_imm(struct x86_buf *b) { x86_ret_imm(b, 24); }
static void e_call_r(struct x86_buf *b) { x86_call_r(b, R11); }
static void e_jmp_r(struct x86_buf *b) { x86_jmp_r(b, R11); }
static void e_jmp_m(struct x86_buf *b) { x86_jmp_m(b, x86_at_index(R12, R13, 8, 0x12345678)); }
static void e_mfence(struct x86_buf *b) { x86_mfence(b); }
static void e_nop(struct x86_buf *b) { x86_nop(b, 1); }
static void e_jmp(struct x86_buf *b) { assert_true((x86_jmp(b, NULL) == NULL) == b->full); }
static void e_jcc(struct x86_buf *b) { assert_true((x86_jcc(b, CC_NE, NULL) == NULL) == b->full); }
static void e_call(struct x86_buf *b) { assert_true((x86_call(b, NULL) == NULL) == b->full); }

static void (*const emitters[])(struct x86_buf *) = {
    e_mov_rr,  e_mov_rm,    e_mov_mr,  e_mov_ri0,   e_mov_ri32,  e_mov_ri_neg, e_mov_ri64, e_mov_mi,  e_load,
    e_store1,  e_store2,    e_store8,  e_lea,       e_movsxd,    e_alu_rr,     e_alu_rm,   e_alu_mr,  e_alu_ri,
    e_alu_ri8, e_alu_mi,    e_alu_mi8, e_test_rr,   e_shift_ri,  e_shift_rcl,  e_imul_rr,  e_imul_rm, e_unary,
    e_cqo,     e_setcc,     e_movzx8,  e_cmov_rr,   e_push,      e_push_imm,   e_pop,      e_ret,     e_ret_imm,
    e_call_r,  e_jmp_r,     e_jmp_m,   e_mfence,    e_nop,       e_jmp,        e_jcc,      e_call,
};

#define CANARY 0xa5
#define ROOM 16 /* what the encoder asks to have left before any instruction */

/* Each form, in buffers with 0..24 bytes left: it either fits whole (with
 * the bytes a roomy buffer gets) or sets `full` and keeps nothing, and
 * never touches a byte past `end`. Once full, a buffer stays full. */
static void test_full_buffer(void **state) {
    (void)state;
    for (size_t e = 0; e < sizeof emitters / sizeof emitters[0]; e++) {
        uint8_t ref[64];
        struct x86_buf rb;
        x86_buf_init(&rb, ref, sizeof ref);
        emitters[e](&rb);
        assert_false(rb.full);
        size_t len = x86_buf_used(&rb);
        assert_true(len > 0 && len < ROOM);

        for (size_t space = 0; space <= ROOM + 8; space++) {
            uint8_t mem[ROOM + 8 + 32];
            memset(mem, CANARY, sizeof mem);
            struct x86_buf b;
            x86_buf_init(&b, mem, space);
            emitters[e](&b);
            size_t used = x86_buf_used(&b);
            for (size_t i = space; i < sizeof mem; i++) {
                if (mem[i] != CANARY) fail_msg("emitter %zu with %zu bytes left wrote %zu past the end", e, space, i);
            }
            if (b.full) {
                if (used != 0) fail_msg("emitter %zu with %zu bytes left: full, yet kept %zu bytes", e, space, used);
                if (space >= ROOM) fail_msg("emitter %zu: full with %zu bytes left", e, space);
            } else {
                if (used != len || memcmp(mem, ref, len) != 0)
                    fail_msg("emitter %zu with %zu bytes left: not the bytes a roomy buffer gets", e, space);
            }
            /* Sticky: a short form after it neither clears `full` nor writes. */
            bool was_full = b.full;
            x86_ret(&b);
            if (was_full && (!b.full || x86_buf_used(&b) != 0))
                fail_msg("emitter %zu with %zu bytes left: a full buffer took more", e, space);
            for (size_t i = space; i < sizeof mem; i++) {
                if (mem[i] != CANARY) fail_msg("emitter %zu with %zu bytes left: ret wrote past the end", e, space);
            }
        }
    }

    /* A long nop run stops at the end of the buffer, marking it full. */
    uint8_t mem[40];
    memset(mem, CANARY, sizeof mem);
    struct x86_buf b;
    x86_buf_init(&b, mem, 20);
    x86_nop(&b, 100);
    assert_true(b.full);
    assert_true(x86_buf_used(&b) <= 20);
    for (size_t i = 20; i < sizeof mem; i++) assert_int_equal(mem[i], CANARY);
    assert_ptr_equal(x86_jmp(&b, area), NULL);
    assert_ptr_equal(x86_jcc(&b, CC_E, area), NULL);
    assert_ptr_equal(x86_call(&b, area), NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_mov_rr, reset_failures),
        cmocka_unit_test_setup(test_mov_rm, reset_failures),
        cmocka_unit_test_setup(test_mov_mr, reset_failures),
        cmocka_unit_test_setup(test_mov_ri, reset_failures),
        cmocka_unit_test_setup(test_mov_mi, reset_failures),
        cmocka_unit_test_setup(test_load, reset_failures),
        cmocka_unit_test_setup(test_store, reset_failures),
        cmocka_unit_test_setup(test_lea_movsxd, reset_failures),
        cmocka_unit_test_setup(test_alu_reg_mem, reset_failures),
        cmocka_unit_test_setup(test_alu_imm, reset_failures),
        cmocka_unit_test_setup(test_test_shift, reset_failures),
        cmocka_unit_test_setup(test_mul_div, reset_failures),
        cmocka_unit_test_setup(test_setcc_movzx_cmov, reset_failures),
        cmocka_unit_test_setup(test_stack_and_indirect, reset_failures),
        cmocka_unit_test(test_nop_run),
        cmocka_unit_test_setup(test_rel32_branches, reset_failures),
        cmocka_unit_test_setup(test_patch_rel32, reset_failures),
        cmocka_unit_test(test_rel32_reaches),
        cmocka_unit_test(test_full_buffer),
    };
    return cmocka_run_group_tests(tests, setup_capstone, teardown_capstone);
}
