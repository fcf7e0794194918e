/* The F and D extensions (RV64FD) for the interpreter: decoding of the
 * LOAD-FP, STORE-FP, FMADD/FMSUB/FNMSUB/FNMADD and OP-FP major opcodes into
 * struct insn, and their handlers.
 *
 * All floating-point state lives in the hart: h->f[] (NaN-boxed registers),
 * h->fflags and h->frm. The handlers use the host FPU only inside one
 * instruction and leave its rounding control at round-to-nearest. Host
 * exception flags they leave set are never taken for guest state: each
 * operation first checks them against the hart's fflags and clears any the
 * hart has not accrued. So fcsr reads and writes are plain field accesses
 * with nothing to synchronise with the host, and any number of harts may
 * share a host thread. */
#ifndef RVISOR_EXEC_FP_H
#define RVISOR_EXEC_FP_H

#include <stdbool.h>
#include <stdint.h>

#include "hart/hart.h"

/* Rounding modes (the rm field of an instruction, and frm). */
enum {
    FP_RM_RNE = 0, /* nearest, ties to even */
    FP_RM_RTZ = 1, /* towards zero */
    FP_RM_RDN = 2, /* down (towards -inf) */
    FP_RM_RUP = 3, /* up (towards +inf) */
    FP_RM_RMM = 4, /* nearest, ties to max magnitude */
    FP_RM_DYN = 7, /* in an instruction: use frm */
};

/* Accrued exception flags (fflags bits). */
enum {
    FP_FLAG_NX = 1,  /* inexact */
    FP_FLAG_UF = 2,  /* underflow */
    FP_FLAG_OF = 4,  /* overflow */
    FP_FLAG_DZ = 8,  /* divide by zero */
    FP_FLAG_NV = 16, /* invalid operation */
};

/* Decodes a 32-bit instruction of major opcode 0x07, 0x27, 0x43, 0x47,
 * 0x4b, 0x4f or 0x53. Fills fn, rd, rs1, rs2, rs3, rm and imm (the offset of
 * a load or store); leaves len alone. rd is 32 (the sink) for an integer
 * destination x0. Returns false for an encoding that is not an RV64FD
 * instruction (then out holds garbage). A static rm of 5 or 6 is not a decode
 * failure: the rounding mode is checked when the instruction runs, where an
 * invalid one raises illegal-instruction like an invalid frm does. */
bool decode_fp(uint32_t raw, struct insn *out);

/* The FP loads and stores (the binary translator recognises them). */
void op_flw(struct hart *h, const struct insn *i);
void op_fld(struct hart *h, const struct insn *i);
void op_fsw(struct hart *h, const struct insn *i);
void op_fsd(struct hart *h, const struct insn *i);

/* Software reference arithmetic on the bit patterns of finite operands
 * (single precision in the low 32 bits, not boxed; dbl selects the
 * format), in any of the five rounding modes, accruing flags into *flags.
 * The interpreter uses it for RMM, which the host FPU lacks; tests use it to
 * cross-check the host path. FP_SOFT_CVT_S_D rounds the double a to single. */
enum fp_soft_op {
    FP_SOFT_ADD, FP_SOFT_SUB, FP_SOFT_MUL, FP_SOFT_DIV, FP_SOFT_SQRT,
    FP_SOFT_MADD, FP_SOFT_MSUB, FP_SOFT_NMSUB, FP_SOFT_NMADD,
    FP_SOFT_CVT_S_D,
};
uint64_t fp_soft(enum fp_soft_op op, bool dbl, uint64_t a, uint64_t b, uint64_t c, int rm, uint32_t *flags);

#endif
