/* Instruction handlers of the interpreter (see struct insn in hart.h). The
 * decoder picks one per instruction; the F/D handlers are in exec_fp.h. */
#ifndef RVISOR_EXEC_H
#define RVISOR_EXEC_H

#include "hart/hart.h"

#define HANDLERS(X)                                                                                       \
    X(lui) X(auipc) X(jal) X(jalr) X(beq) X(bne) X(blt) X(bge) X(bltu) X(bgeu)                             \
    X(lb) X(lh) X(lw) X(ld) X(lbu) X(lhu) X(lwu) X(sb) X(sh) X(sw) X(sd)                                   \
    X(addi) X(slti) X(sltiu) X(xori) X(ori) X(andi) X(slli) X(srli) X(srai)                               \
    X(add) X(sub) X(sll) X(slt) X(sltu) X(xor) X(srl) X(sra) X(or) X(and)                                  \
    X(addiw) X(slliw) X(srliw) X(sraiw) X(addw) X(subw) X(sllw) X(srlw) X(sraw)                            \
    X(mul) X(mulh) X(mulhsu) X(mulhu) X(div) X(divu) X(rem) X(remu)                                        \
    X(mulw) X(divw) X(divuw) X(remw) X(remuw)                                                              \
    X(lr_w) X(sc_w) X(lr_d) X(sc_d)                                                                        \
    X(amoswap_w) X(amoadd_w) X(amoxor_w) X(amoand_w) X(amoor_w)                                            \
    X(amomin_w) X(amomax_w) X(amominu_w) X(amomaxu_w)                                                      \
    X(amoswap_d) X(amoadd_d) X(amoxor_d) X(amoand_d) X(amoor_d)                                            \
    X(amomin_d) X(amomax_d) X(amominu_d) X(amomaxu_d)                                                      \
    X(fence) X(fence_i) X(ecall) X(ebreak) X(sret) X(mret) X(wfi) X(sfence_vma)                            \
    X(csrrw) X(csrrs) X(csrrc) X(csrrwi) X(csrrsi) X(csrrci)                                              \
    X(illegal) X(cross_page)

#define DECLARE_HANDLER(name) void op_##name(struct hart *h, const struct insn *i);
HANDLERS(DECLARE_HANDLER)
#undef DECLARE_HANDLER

/* Decodes one instruction (raw holds 16 bits for a compressed one). Never
 * fails: encodings that are not valid instructions decode to op_illegal. */
void decode(uint32_t raw, struct insn *out);
/* Expands a compressed instruction to its 32-bit equivalent, or 0 if reserved. */
uint32_t expand_compressed(uint16_t c);

#endif
