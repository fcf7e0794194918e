/* F and D extensions: decoder and handlers (see exec_fp.h).
 *
 * How results are computed:
 *  - add, sub, mul, div, sqrt, fma and FCVT.S.D run on the host FPU (SSE on
 *    x86-64) with the guest's rounding mode loaded into MXCSR for the one
 *    operation, and its exception flags read back. SSE detects tininess after
 *    rounding, as RISC-V does. NaN results are replaced by the canonical NaN.
 *  - RMM (ties to max magnitude) has no host equivalent. It differs from RNE
 *    only on an inexact result, so the host computes RNE first and, when that
 *    is inexact, the exact software path below (fp_soft) recomputes it.
 *  - Everything else (conversions to and from integers, comparisons,
 *    min/max, sign injection, classification, moves) is done on the bits.
 *
 * The software path represents a finite value as sign * sig * 2^exp with a
 * 128-bit integer significand. Products are exact; sums, quotients and
 * square roots keep at least 60 significant bits and fold whatever they drop
 * into the lowest bit ("round to odd"), which is enough for a correctly
 * rounded result in every mode because the rounding point is always at
 * least two bits above that sticky bit. round_pack then rounds once, to the
 * target format, in any mode, with IEEE flags (tininess after rounding). */
#include "hart/exec_fp.h"

#include <math.h>
#include <string.h>

#include "hart/hart.h"
#include "hart/mem.h"

__extension__ typedef unsigned __int128 u128;

#define ALWAYS static inline __attribute__((always_inline))
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

#define NX FP_FLAG_NX
#define UF FP_FLAG_UF
#define OF FP_FLAG_OF
#define DZ FP_FLAG_DZ
#define NV FP_FLAG_NV

#define CANON_S 0x7fc00000ull
#define CANON_D 0x7ff8000000000000ull
#define BOX_S 0xffffffff00000000ull
#define SIGN_S 0x80000000ull
#define SIGN_D 0x8000000000000000ull

/* ------------------------------------------------------------------ */
/* Bit-level helpers */

static inline uint64_t unbox(uint64_t v) { return (v >> 32) == 0xffffffffu ? (uint32_t)v : CANON_S; }
static inline uint64_t canon(bool dbl) { return dbl ? CANON_D : CANON_S; }
static inline uint64_t sign_bit(bool dbl) { return dbl ? SIGN_D : SIGN_S; }

static inline bool is_nan(bool dbl, uint64_t b) {
    return dbl ? (b & ~SIGN_D) > 0x7ff0000000000000ull : (b & 0x7fffffffu) > 0x7f800000u;
}
static inline bool is_snan(bool dbl, uint64_t b) {
    return is_nan(dbl, b) && !(b & (dbl ? 1ull << 51 : 1ull << 22));
}
static inline bool is_inf(bool dbl, uint64_t b) {
    return dbl ? (b & ~SIGN_D) == 0x7ff0000000000000ull : (b & 0x7fffffffu) == 0x7f800000u;
}
static inline bool is_zero(bool dbl, uint64_t b) { return (b & ~sign_bit(dbl) & (dbl ? ~0ull : 0xffffffffull)) == 0; }

static inline double d_of(uint64_t b) { double d; memcpy(&d, &b, 8); return d; }
static inline uint64_t bits_d(double d) { uint64_t b; memcpy(&b, &d, 8); return b; }
static inline float s_of(uint64_t b) { uint32_t w = (uint32_t)b; float f; memcpy(&f, &w, 4); return f; }
static inline uint64_t bits_s(float f) { uint32_t w; memcpy(&w, &f, 4); return w; }

/* ------------------------------------------------------------------ */
/* Software arithmetic */

struct num {
    bool sign;
    int exp;
    u128 sig; /* 0 means zero */
};

static inline int msb128(u128 v) {
    uint64_t hi = (uint64_t)(v >> 64);
    return hi ? 127 - __builtin_clzll(hi) : 63 - __builtin_clzll((uint64_t)v);
}

static struct num unpack(bool dbl, uint64_t b) {
    struct num n;
    if (dbl) {
        int e = (int)((b >> 52) & 0x7ff);
        uint64_t f = b & ((1ull << 52) - 1);
        n.sign = b >> 63;
        n.sig = e ? f | 1ull << 52 : f;
        n.exp = (e ? e : 1) - 1075;
    } else {
        int e = (int)((b >> 23) & 0xff);
        uint64_t f = b & ((1ull << 23) - 1);
        n.sign = (b >> 31) & 1;
        n.sig = e ? f | 1ull << 23 : f;
        n.exp = (e ? e : 1) - 150;
    }
    return n;
}

/* Shifts a nonzero significand left so that its top bit is `bit`. */
static inline struct num normalize(struct num n, int bit) {
    int s = bit - msb128(n.sig);
    n.sig <<= s;
    n.exp -= s;
    return n;
}

/* Rounds sig / 2^sh to an integer in mode rm (sign tells the directed modes
 * which way is up). *inexact tells whether nonzero bits were dropped. For
 * sh <= 0 the caller guarantees that sig << -sh fits. */
static u128 round_shift(u128 sig, int sh, int rm, bool sign, bool *inexact) {
    if (sh <= 0) {
        *inexact = false;
        return sig << -sh;
    }
    u128 q, rem;
    int cmp; /* rem compared with half a unit: -1, 0, 1 */
    if (sh >= 128) {
        q = 0;
        rem = sig;
        if (sh > 128) cmp = -1;
        else cmp = rem > (u128)1 << 127 ? 1 : rem == (u128)1 << 127 ? 0 : -1;
    } else {
        u128 half = (u128)1 << (sh - 1);
        q = sig >> sh;
        rem = sig & ((half << 1) - 1);
        cmp = rem > half ? 1 : rem == half ? 0 : -1;
    }
    *inexact = rem != 0;
    if (!rem) return q;
    bool up;
    switch (rm) {
    case FP_RM_RNE: up = cmp > 0 || (cmp == 0 && (q & 1)); break;
    case FP_RM_RTZ: up = false; break;
    case FP_RM_RDN: up = sign; break;
    case FP_RM_RUP: up = !sign; break;
    default: up = cmp >= 0; break; /* RMM */
    }
    return q + up;
}

/* Rounds (-1)^sign * sig * 2^exp to the format, accruing NX/UF/OF. */
static uint64_t round_pack(bool dbl, bool sign, int exp, u128 sig, int rm, uint32_t *fl) {
    const int p = dbl ? 53 : 24, emax = dbl ? 1023 : 127, emin = 1 - emax;
    const uint64_t sgn = sign ? sign_bit(dbl) : 0;
    if (!sig) return sgn;
    int msb = msb128(sig);
    int e = exp + msb; /* exponent of the leading bit */
    bool inexact;
    if (e < emin) {
        /* Tininess after rounding: would the result, rounded to p bits with
         * an unbounded exponent, be below the smallest normal? */
        bool ignored;
        u128 mu = round_shift(sig, msb - (p - 1), rm, sign, &ignored);
        bool tiny = e + (int)(mu >> p) < emin;
        u128 m = round_shift(sig, emin - (p - 1) - exp, rm, sign, &inexact);
        if (inexact) *fl |= tiny ? NX | UF : NX;
        /* m <= 2^(p-1); m == 2^(p-1) carries into the exponent field: the
         * smallest normal number. */
        return sgn | (uint64_t)m;
    }
    u128 m = round_shift(sig, msb - (p - 1), rm, sign, &inexact);
    if (m >> p) {
        m >>= 1;
        e++;
    }
    if (e > emax) {
        *fl |= OF | NX;
        bool to_inf = rm == FP_RM_RNE || rm == FP_RM_RMM || (rm == FP_RM_RUP && !sign) || (rm == FP_RM_RDN && sign);
        uint64_t inf = dbl ? 0x7ff0000000000000ull : 0x7f800000ull;
        return sgn | (to_inf ? inf : inf - 1);
    }
    if (inexact) *fl |= NX;
    return sgn | (uint64_t)(e + emax) << (p - 1) | ((uint64_t)m & ((1ull << (p - 1)) - 1));
}

static struct num zero(bool sign) { return (struct num){.sign = sign, .exp = 0, .sig = 0}; }

/* a + b, exact or with a sticky bit far below the rounding point. */
static struct num add_num(struct num a, struct num b, int rm) {
    if (!a.sig && !b.sig) return zero(a.sign == b.sign ? a.sign : rm == FP_RM_RDN);
    if (!b.sig) return a;
    if (!a.sig) return b;
    /* Both significands to bit 125: two bits of headroom for the carry. */
    a = normalize(a, 125);
    b = normalize(b, 125);
    if (a.exp < b.exp) {
        struct num t = a;
        a = b;
        b = t;
    }
    int d = a.exp - b.exp;
    if (d >= 126) {
        b.sig = 1; /* only a sticky bit is left of b */
    } else if (d) {
        bool sticky = (b.sig & (((u128)1 << d) - 1)) != 0;
        b.sig = b.sig >> d | sticky;
    }
    if (a.sign == b.sign) {
        a.sig += b.sig;
    } else if (a.sig > b.sig) {
        a.sig -= b.sig;
    } else if (a.sig < b.sig) {
        a.sig = b.sig - a.sig;
        a.sign = b.sign;
    } else {
        return zero(rm == FP_RM_RDN); /* exact cancellation */
    }
    return a;
}

static struct num mul_num(struct num a, struct num b) {
    /* At most 53 x 53 bits: exact. */
    return (struct num){.sign = a.sign != b.sign, .exp = a.exp + b.exp, .sig = a.sig * b.sig};
}

/* a / b for nonzero a, b: a 64- or 65-bit quotient plus sticky. */
static struct num div_num(struct num a, struct num b) {
    a = normalize(a, 52);
    b = normalize(b, 52);
    u128 n = a.sig << 64;
    u128 q = n / b.sig;
    bool sticky = q * b.sig != n;
    return (struct num){.sign = a.sign != b.sign, .exp = a.exp - b.exp - 64, .sig = q | sticky};
}

/* Integer square root of n; *exact tells whether the root was exact. */
static u128 isqrt128(u128 n, bool *exact) {
    u128 res = 0, bit = (u128)1 << 126;
    while (bit > n) bit >>= 2;
    while (bit) {
        if (n >= res + bit) {
            n -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    *exact = n == 0;
    return res;
}

/* sqrt(a) for a positive a: a 63-bit root plus sticky. */
static struct num sqrt_num(struct num a) {
    a = normalize(a, 124);
    if (a.exp & 1) {
        a.sig <<= 1;
        a.exp--;
    }
    bool exact;
    u128 r = isqrt128(a.sig, &exact);
    return (struct num){.sign = false, .exp = a.exp / 2, .sig = r | !exact};
}

uint64_t fp_soft(enum fp_soft_op op, bool dbl, uint64_t a, uint64_t b, uint64_t c, int rm, uint32_t *flags) {
    if (op == FP_SOFT_CVT_S_D) {
        struct num x = unpack(true, a);
        return round_pack(false, x.sign, x.exp, x.sig, rm, flags);
    }
    struct num x = unpack(dbl, a), y = unpack(dbl, b), z = unpack(dbl, c), r;
    switch (op) {
    case FP_SOFT_ADD: r = add_num(x, y, rm); break;
    case FP_SOFT_SUB: y.sign = !y.sign; r = add_num(x, y, rm); break;
    case FP_SOFT_MUL: r = mul_num(x, y); break;
    case FP_SOFT_DIV:
        if (!y.sig) {
            if (!x.sig) {
                *flags |= NV;
                return canon(dbl);
            }
            *flags |= DZ;
            return (x.sign != y.sign ? sign_bit(dbl) : 0) | (dbl ? 0x7ff0000000000000ull : 0x7f800000ull);
        }
        r = x.sig ? div_num(x, y) : zero(x.sign != y.sign);
        break;
    case FP_SOFT_SQRT:
        if (!x.sig) return a;
        if (x.sign) {
            *flags |= NV;
            return canon(dbl);
        }
        r = sqrt_num(x);
        break;
    case FP_SOFT_MADD: r = add_num(mul_num(x, y), z, rm); break;
    case FP_SOFT_MSUB: z.sign = !z.sign; r = add_num(mul_num(x, y), z, rm); break;
    case FP_SOFT_NMSUB: x.sign = !x.sign; r = add_num(mul_num(x, y), z, rm); break;
    case FP_SOFT_NMADD: x.sign = !x.sign; z.sign = !z.sign; r = add_num(mul_num(x, y), z, rm); break;
    default: return canon(dbl);
    }
    return round_pack(dbl, r.sign, r.exp, r.sig, rm, flags);
}

/* ------------------------------------------------------------------ */
/* Host FPU: one operation in a given rounding mode (RNE, RTZ, RDN, RUP),
 * returning the RISC-V flags it raised. The operands pass through the asm
 * that sets up the control register and the result through the one that
 * reads the flags back, so the compiler cannot move the operation outside.
 *
 * `acc` is the guest's accrued fflags. On x86-64 the host flags are sticky
 * like fflags, and clearing them (LDMXCSR changing a flag) costs far more
 * than the operation, so they are not cleared when every flag already set
 * in MXCSR is also set in acc: such a stale flag reported again is a no-op
 * once OR-ed into fflags. Anything else (a flag the guest has cleared since,
 * one raised by other host code, a foreign control setting) is reset first.
 * The rounding control is always back to nearest afterwards. */

#if defined(__x86_64__) && !defined(EXEC_FP_PORTABLE) /* the fallback can be forced for tests */

#define MXCSR_DEFAULT 0x1f80u /* all exceptions masked, RNE, no FTZ/DAZ, no flags */
#define MXCSR_RC 0x6000u
#define MXCSR_DE 0x0002u      /* denormal operand: no RISC-V equivalent, ignored */
static const uint32_t mxcsr_rc[4] = {0x0000, 0x6000, 0x2000, 0x4000}; /* RNE RTZ RDN RUP */

static inline uint32_t mx_from_fflags(uint32_t f) {
    return (f & NV) >> 4 | (f & DZ) >> 1 | (f & OF) << 1 | (f & UF) << 3 | (f & NX) << 5;
}
static inline uint32_t fflags_from_mx(uint32_t m) {
    return (m & 1) << 4        /* IE -> NV */
           | (m & 4) << 1      /* ZE -> DZ */
           | (m & 8) >> 1      /* OE -> OF */
           | (m & 16) >> 3     /* UE -> UF */
           | (m & 32) >> 5;    /* PE -> NX */
}

/* The MXCSR value to run an operation with, given the current one. */
static inline uint32_t mx_setup(uint32_t cur, int rm, uint32_t acc) {
    uint32_t keep = mx_from_fflags(acc) | MXCSR_DE;
    uint32_t flags = (cur & ~keep) == MXCSR_DEFAULT ? cur & 0x3f : 0;
    return MXCSR_DEFAULT | mxcsr_rc[rm] | flags;
}

#define HOST_ENTER(rm, acc, x, y, z)                                                     \
    uint32_t mx_cur_, mx_out_, mx_rne_;                                              \
    __asm__ volatile("stmxcsr %0" : "=m"(mx_cur_));                                  \
    uint32_t mx_in_ = mx_setup(mx_cur_, rm, acc);                                    \
    if (UNLIKELY(mx_in_ != mx_cur_)) __asm__ volatile("ldmxcsr %0" : : "m"(mx_in_)); \
    __asm__ volatile("" : "+x"(x), "+x"(y), "+x"(z))

#define HOST_LEAVE(rm, r, fl)                                        \
    do {                                                             \
        __asm__ volatile("stmxcsr %0" : "=m"(mx_out_) : "x"(r));     \
        if ((rm) != FP_RM_RNE) {                                     \
            mx_rne_ = mx_out_ & ~MXCSR_RC;                           \
            __asm__ volatile("ldmxcsr %0" : : "m"(mx_rne_));         \
        }                                                            \
        *(fl) = fflags_from_mx(mx_out_);                             \
    } while (0)

#else /* Portable fallback through <fenv.h>. Note: correct only on hosts that
       * detect tininess after rounding, as RISC-V does. */

#include <fenv.h>
static const int fenv_rm[4] = {FE_TONEAREST, FE_TOWARDZERO, FE_DOWNWARD, FE_UPWARD};

#define HOST_ENTER(rm, acc, x, y, z)                          \
    (void)(acc);                                              \
    if (fegetround() != fenv_rm[rm]) fesetround(fenv_rm[rm]); \
    feclearexcept(FE_ALL_EXCEPT);                             \
    __asm__ volatile("" : "+m"(x), "+m"(y), "+m"(z) : : "memory")

#define HOST_LEAVE(rm, r, fl)                                                                   \
    do {                                                                                        \
        __asm__ volatile("" : "+m"(r) : : "memory");                                            \
        int e_ = fetestexcept(FE_ALL_EXCEPT);                                                   \
        if ((rm) != FP_RM_RNE) fesetround(FE_TONEAREST);                                        \
        *(fl) = (e_ & FE_INVALID ? NV : 0) | (e_ & FE_DIVBYZERO ? DZ : 0) |                     \
                (e_ & FE_OVERFLOW ? OF : 0) | (e_ & FE_UNDERFLOW ? UF : 0) |                    \
                (e_ & FE_INEXACT ? NX : 0);                                                     \
    } while (0)

#endif

/* op is a compile-time constant wherever this is inlined. */
ALWAYS uint64_t host_arith(enum fp_soft_op op, bool dbl, uint64_t a, uint64_t b, uint64_t c, int rm, uint32_t acc,
                           uint32_t *fl) {
    if (dbl) {
        double x = d_of(a), y = d_of(b), z = d_of(c), r;
        HOST_ENTER(rm, acc, x, y, z);
        switch (op) {
        case FP_SOFT_ADD: r = x + y; break;
        case FP_SOFT_SUB: r = x - y; break;
        case FP_SOFT_MUL: r = x * y; break;
        case FP_SOFT_DIV: r = x / y; break;
        case FP_SOFT_SQRT: r = __builtin_sqrt(x); break;
        case FP_SOFT_MADD: r = fma(x, y, z); break;
        case FP_SOFT_MSUB: r = fma(x, y, -z); break;
        case FP_SOFT_NMSUB: r = fma(-x, y, z); break;
        case FP_SOFT_NMADD: r = fma(-x, y, -z); break;
        default: r = x; break;
        }
        HOST_LEAVE(rm, r, fl);
        return bits_d(r);
    } else {
        float x = s_of(a), y = s_of(b), z = s_of(c), r;
        HOST_ENTER(rm, acc, x, y, z);
        switch (op) {
        case FP_SOFT_ADD: r = x + y; break;
        case FP_SOFT_SUB: r = x - y; break;
        case FP_SOFT_MUL: r = x * y; break;
        case FP_SOFT_DIV: r = x / y; break;
        case FP_SOFT_SQRT: r = __builtin_sqrtf(x); break;
        case FP_SOFT_MADD: r = fmaf(x, y, z); break;
        case FP_SOFT_MSUB: r = fmaf(x, y, -z); break;
        case FP_SOFT_NMSUB: r = fmaf(-x, y, z); break;
        case FP_SOFT_NMADD: r = fmaf(-x, y, -z); break;
        default: r = x; break;
        }
        HOST_LEAVE(rm, r, fl);
        return bits_s(r);
    }
}

/* FCVT.S.D of a non-NaN double. */
static uint64_t host_cvt_s_d(uint64_t a, int rm, uint32_t acc, uint32_t *fl) {
    double x = d_of(a), y = 0, z = 0;
    HOST_ENTER(rm, acc, x, y, z);
    float r = (float)x;
    HOST_LEAVE(rm, r, fl);
    return bits_s(r);
}

/* ------------------------------------------------------------------ */
/* Handler plumbing */

static inline bool fs_off(const struct hart *h) { return !(h->mstatus & MSTATUS_FS); }
static inline void fs_dirty(struct hart *h) { h->mstatus |= MSTATUS_FS | MSTATUS_SD; }
static inline void illegal(struct hart *h) { hart_raise(h, EXC_ILLEGAL_INSN, 0); }

/* Every FP instruction is illegal while mstatus.FS is Off. */
#define REQUIRE_FS(h)                 \
    do {                              \
        if (UNLIKELY(fs_off(h))) {    \
            illegal(h);               \
            return;                   \
        }                             \
    } while (0)

/* An invalid rounding mode (static 5 or 6, or frm >= 5 with rm = DYN) is
 * an illegal instruction. */
#define REQUIRE_RM(h, rm)             \
    do {                              \
        if (UNLIKELY((rm) < 0)) {     \
            illegal(h);               \
            return;                   \
        }                             \
    } while (0)

/* The effective rounding mode, or -1 if it is invalid. */
static inline int eff_rm(const struct hart *h, const struct insn *i) {
    unsigned rm = i->rm == FP_RM_DYN ? h->frm : i->rm;
    return rm <= FP_RM_RMM ? (int)rm : -1;
}

static inline uint64_t read_f(const struct hart *h, unsigned r, bool dbl) {
    return dbl ? h->f[r] : unbox(h->f[r]);
}

/* Completes an instruction that wrote f[rd]. */
static inline void done_f(struct hart *h, const struct insn *i, bool dbl, uint64_t v, uint32_t fl) {
    h->f[i->rd] = dbl ? v : BOX_S | v;
    h->fflags |= fl;
    fs_dirty(h);
    h->pc += i->len; /* ends the chain: see dispatch.h */
}

/* Completes an instruction that wrote x[rd]. */
static inline void done_x(struct hart *h, const struct insn *i, uint64_t v, uint32_t fl) {
    h->x[i->rd] = v;
    if (fl) {
        h->fflags |= fl;
        fs_dirty(h);
    }
    h->pc += i->len; /* ends the chain: see dispatch.h */
}

/* ------------------------------------------------------------------ */
/* Arithmetic: add, sub, mul, div, sqrt, the four fused multiply-adds */

static inline bool is_fma(enum fp_soft_op op) {
    return op == FP_SOFT_MADD || op == FP_SOFT_MSUB || op == FP_SOFT_NMSUB || op == FP_SOFT_NMADD;
}

static inline bool is_finite(bool dbl, uint64_t b) {
    return dbl ? (b & ~SIGN_D) < 0x7ff0000000000000ull : (b & 0x7fffffffu) < 0x7f800000u;
}

/* Whether the operands the operation reads are all finite (fp_soft's domain). */
static inline bool operands_finite(enum fp_soft_op op, bool dbl, uint64_t a, uint64_t b, uint64_t c) {
    return is_finite(dbl, a) && (op == FP_SOFT_SQRT || is_finite(dbl, b)) && (!is_fma(op) || is_finite(dbl, c));
}

ALWAYS void arith(struct hart *h, const struct insn *i, enum fp_soft_op op, bool dbl) {
    REQUIRE_FS(h);
    int rm = eff_rm(h, i);
    REQUIRE_RM(h, rm);
    uint64_t a = read_f(h, i->rs1, dbl), b = read_f(h, i->rs2, dbl), c = read_f(h, i->rs3, dbl);
    uint64_t r;
    uint32_t fl;
    if (is_fma(op) && UNLIKELY((is_inf(dbl, a) && is_zero(dbl, b)) || (is_zero(dbl, a) && is_inf(dbl, b)))) {
        /* inf * 0 is invalid whatever the addend, even a quiet NaN. */
        r = canon(dbl);
        fl = NV;
    } else {
        r = host_arith(op, dbl, a, b, c, rm == FP_RM_RMM ? FP_RM_RNE : rm, h->fflags, &fl);
        /* RMM differs from RNE only when the result is inexact. NX may also
         * be a stale host flag (see HOST_ENTER): then the exact recomputation
         * is merely unnecessary. Operations on infinities and NaNs are exact. */
        if (UNLIKELY(rm == FP_RM_RMM) && (fl & NX) && operands_finite(op, dbl, a, b, c)) {
            fl = 0;
            r = fp_soft(op, dbl, a, b, c, FP_RM_RMM, &fl);
        } else if (is_nan(dbl, r)) {
            r = canon(dbl);
        }
    }
    done_f(h, i, dbl, r, fl);
}

#define ARITH(name, op)                                                                   \
    static void name##_s(struct hart *h, const struct insn *i) { arith(h, i, op, false); } \
    static void name##_d(struct hart *h, const struct insn *i) { arith(h, i, op, true); }
ARITH(fadd, FP_SOFT_ADD)
ARITH(fsub, FP_SOFT_SUB)
ARITH(fmul, FP_SOFT_MUL)
ARITH(fdiv, FP_SOFT_DIV)
ARITH(fsqrt, FP_SOFT_SQRT)
ARITH(fmadd, FP_SOFT_MADD)
ARITH(fmsub, FP_SOFT_MSUB)
ARITH(fnmsub, FP_SOFT_NMSUB)
ARITH(fnmadd, FP_SOFT_NMADD)

/* ------------------------------------------------------------------ */
/* Sign injection, min/max, comparisons, classification */

ALWAYS void sgnj(struct hart *h, const struct insn *i, int kind, bool dbl) {
    REQUIRE_FS(h);
    uint64_t a = read_f(h, i->rs1, dbl), b = read_f(h, i->rs2, dbl), s = sign_bit(dbl);
    uint64_t sign = kind == 0 ? b & s : kind == 1 ? ~b & s : (a ^ b) & s;
    done_f(h, i, dbl, (a & ~s) | sign, 0);
}
static void fsgnj_s(struct hart *h, const struct insn *i) { sgnj(h, i, 0, false); }
static void fsgnjn_s(struct hart *h, const struct insn *i) { sgnj(h, i, 1, false); }
static void fsgnjx_s(struct hart *h, const struct insn *i) { sgnj(h, i, 2, false); }
static void fsgnj_d(struct hart *h, const struct insn *i) { sgnj(h, i, 0, true); }
static void fsgnjn_d(struct hart *h, const struct insn *i) { sgnj(h, i, 1, true); }
static void fsgnjx_d(struct hart *h, const struct insn *i) { sgnj(h, i, 2, true); }

/* A key that orders non-NaN values like their numbers, with -0 < +0. */
static inline uint64_t order_key(bool dbl, uint64_t b) {
    if (!dbl) b <<= 32;
    return (b >> 63) ? ~b : b | SIGN_D;
}

/* IEEE 754-2019 minimumNumber / maximumNumber. */
ALWAYS void minmax(struct hart *h, const struct insn *i, bool max, bool dbl) {
    REQUIRE_FS(h);
    uint64_t a = read_f(h, i->rs1, dbl), b = read_f(h, i->rs2, dbl), r;
    uint32_t fl = is_snan(dbl, a) || is_snan(dbl, b) ? NV : 0;
    bool an = is_nan(dbl, a), bn = is_nan(dbl, b);
    if (an && bn) r = canon(dbl);
    else if (an) r = b;
    else if (bn) r = a;
    else r = (order_key(dbl, a) < order_key(dbl, b)) != max ? a : b;
    done_f(h, i, dbl, r, fl);
}
static void fmin_s(struct hart *h, const struct insn *i) { minmax(h, i, false, false); }
static void fmax_s(struct hart *h, const struct insn *i) { minmax(h, i, true, false); }
static void fmin_d(struct hart *h, const struct insn *i) { minmax(h, i, false, true); }
static void fmax_d(struct hart *h, const struct insn *i) { minmax(h, i, true, true); }

enum { CMP_LE, CMP_LT, CMP_EQ };

ALWAYS void compare(struct hart *h, const struct insn *i, int kind, bool dbl) {
    REQUIRE_FS(h);
    uint64_t a = read_f(h, i->rs1, dbl), b = read_f(h, i->rs2, dbl);
    if (is_nan(dbl, a) || is_nan(dbl, b)) {
        /* FEQ is a quiet comparison, FLT and FLE signaling ones. */
        bool nv = kind != CMP_EQ || is_snan(dbl, a) || is_snan(dbl, b);
        done_x(h, i, 0, nv ? NV : 0);
        return;
    }
    bool both_zero = is_zero(dbl, a) && is_zero(dbl, b);
    uint64_t ka = order_key(dbl, a), kb = order_key(dbl, b);
    bool r;
    switch (kind) {
    case CMP_EQ: r = ka == kb || both_zero; break;
    case CMP_LT: r = ka < kb && !both_zero; break;
    default: r = ka <= kb || both_zero; break;
    }
    done_x(h, i, r, 0);
}
static void feq_s(struct hart *h, const struct insn *i) { compare(h, i, CMP_EQ, false); }
static void flt_s(struct hart *h, const struct insn *i) { compare(h, i, CMP_LT, false); }
static void fle_s(struct hart *h, const struct insn *i) { compare(h, i, CMP_LE, false); }
static void feq_d(struct hart *h, const struct insn *i) { compare(h, i, CMP_EQ, true); }
static void flt_d(struct hart *h, const struct insn *i) { compare(h, i, CMP_LT, true); }
static void fle_d(struct hart *h, const struct insn *i) { compare(h, i, CMP_LE, true); }

static uint64_t classify(bool dbl, uint64_t b) {
    bool neg = (b & sign_bit(dbl)) != 0;
    uint64_t mag = b & ~sign_bit(dbl);
    uint64_t inf = dbl ? 0x7ff0000000000000ull : 0x7f800000ull;
    uint64_t min_normal = dbl ? 1ull << 52 : 1ull << 23;
    if (mag > inf) return is_snan(dbl, b) ? 1u << 8 : 1u << 9;
    if (mag == inf) return neg ? 1u << 0 : 1u << 7;
    if (mag >= min_normal) return neg ? 1u << 1 : 1u << 6;
    if (mag) return neg ? 1u << 2 : 1u << 5;
    return neg ? 1u << 3 : 1u << 4;
}
static void fclass_s(struct hart *h, const struct insn *i) {
    REQUIRE_FS(h);
    done_x(h, i, classify(false, unbox(h->f[i->rs1])), 0);
}
static void fclass_d(struct hart *h, const struct insn *i) {
    REQUIRE_FS(h);
    done_x(h, i, classify(true, h->f[i->rs1]), 0);
}

/* ------------------------------------------------------------------ */
/* Moves between register files (bits unchanged) */

static void fmv_x_w(struct hart *h, const struct insn *i) {
    REQUIRE_FS(h);
    done_x(h, i, (uint64_t)(int64_t)(int32_t)(uint32_t)h->f[i->rs1], 0);
}
static void fmv_x_d(struct hart *h, const struct insn *i) {
    REQUIRE_FS(h);
    done_x(h, i, h->f[i->rs1], 0);
}
static void fmv_w_x(struct hart *h, const struct insn *i) {
    REQUIRE_FS(h);
    done_f(h, i, false, (uint32_t)h->x[i->rs1], 0);
}
static void fmv_d_x(struct hart *h, const struct insn *i) {
    REQUIRE_FS(h);
    done_f(h, i, true, h->x[i->rs1], 0);
}

/* ------------------------------------------------------------------ */
/* Conversions */

enum { INT_W, INT_WU, INT_L, INT_LU };

/* Float to integer: round in mode rm; out of range (and NaN) saturates with
 * NV; 32-bit results are sign-extended, the unsigned ones too. */
static uint64_t cvt_to_int(bool dbl, uint64_t a, int kind, int rm, uint32_t *fl) {
    static const uint64_t max[4] = {0x7fffffffull, 0xffffffffffffffffull, 0x7fffffffffffffffull, ~0ull};
    static const uint64_t min[4] = {0xffffffff80000000ull, 0, 0x8000000000000000ull, 0};
    static const u128 pos_lim[4] = {0x7fffffffull, 0xffffffffull, 0x7fffffffffffffffull, 0xffffffffffffffffull};
    static const u128 neg_lim[4] = {0x80000000ull, 0, 0x8000000000000000ull, 0};
    if (is_nan(dbl, a)) {
        *fl |= NV;
        return max[kind];
    }
    struct num n = unpack(dbl, a);
    bool inexact = false;
    u128 m;
    if (is_inf(dbl, a) || n.exp > 64) {
        m = (u128)1 << 100; /* certainly out of range */
    } else if (!n.sig) {
        m = 0;
    } else if (n.exp >= 0) {
        m = n.sig << n.exp;
    } else {
        m = round_shift(n.sig, -n.exp, rm, n.sign, &inexact);
    }
    if (m > (n.sign ? neg_lim[kind] : pos_lim[kind])) {
        *fl |= NV;
        return n.sign ? min[kind] : max[kind];
    }
    if (inexact) *fl |= NX;
    uint64_t v = n.sign ? -(uint64_t)m : (uint64_t)m;
    if (kind == INT_W || kind == INT_WU) v = (uint64_t)(int64_t)(int32_t)(uint32_t)v;
    return v;
}

static uint64_t cvt_from_int(bool dbl, uint64_t v, int kind, int rm, uint32_t *fl) {
    bool sign = false;
    uint64_t mag;
    switch (kind) {
    case INT_W: {
        int64_t s = (int32_t)(uint32_t)v;
        sign = s < 0;
        mag = sign ? -(uint64_t)s : (uint64_t)s;
        break;
    }
    case INT_WU: mag = (uint32_t)v; break;
    case INT_L:
        sign = (int64_t)v < 0;
        mag = sign ? -v : v;
        break;
    default: mag = v; break;
    }
    return round_pack(dbl, sign, 0, mag, rm, fl);
}

ALWAYS void fcvt_to_int(struct hart *h, const struct insn *i, int kind, bool dbl) {
    REQUIRE_FS(h);
    int rm = eff_rm(h, i);
    REQUIRE_RM(h, rm);
    uint32_t fl = 0;
    uint64_t v = cvt_to_int(dbl, read_f(h, i->rs1, dbl), kind, rm, &fl);
    done_x(h, i, v, fl);
}
static void fcvt_w_s(struct hart *h, const struct insn *i) { fcvt_to_int(h, i, INT_W, false); }
static void fcvt_wu_s(struct hart *h, const struct insn *i) { fcvt_to_int(h, i, INT_WU, false); }
static void fcvt_l_s(struct hart *h, const struct insn *i) { fcvt_to_int(h, i, INT_L, false); }
static void fcvt_lu_s(struct hart *h, const struct insn *i) { fcvt_to_int(h, i, INT_LU, false); }
static void fcvt_w_d(struct hart *h, const struct insn *i) { fcvt_to_int(h, i, INT_W, true); }
static void fcvt_wu_d(struct hart *h, const struct insn *i) { fcvt_to_int(h, i, INT_WU, true); }
static void fcvt_l_d(struct hart *h, const struct insn *i) { fcvt_to_int(h, i, INT_L, true); }
static void fcvt_lu_d(struct hart *h, const struct insn *i) { fcvt_to_int(h, i, INT_LU, true); }

ALWAYS void fcvt_from_int(struct hart *h, const struct insn *i, int kind, bool dbl) {
    REQUIRE_FS(h);
    int rm = eff_rm(h, i);
    REQUIRE_RM(h, rm);
    uint32_t fl = 0;
    uint64_t v = cvt_from_int(dbl, h->x[i->rs1], kind, rm, &fl);
    done_f(h, i, dbl, v, fl);
}
static void fcvt_s_w(struct hart *h, const struct insn *i) { fcvt_from_int(h, i, INT_W, false); }
static void fcvt_s_wu(struct hart *h, const struct insn *i) { fcvt_from_int(h, i, INT_WU, false); }
static void fcvt_s_l(struct hart *h, const struct insn *i) { fcvt_from_int(h, i, INT_L, false); }
static void fcvt_s_lu(struct hart *h, const struct insn *i) { fcvt_from_int(h, i, INT_LU, false); }
static void fcvt_d_w(struct hart *h, const struct insn *i) { fcvt_from_int(h, i, INT_W, true); }
static void fcvt_d_wu(struct hart *h, const struct insn *i) { fcvt_from_int(h, i, INT_WU, true); }
static void fcvt_d_l(struct hart *h, const struct insn *i) { fcvt_from_int(h, i, INT_L, true); }
static void fcvt_d_lu(struct hart *h, const struct insn *i) { fcvt_from_int(h, i, INT_LU, true); }

static void fcvt_s_d(struct hart *h, const struct insn *i) {
    REQUIRE_FS(h);
    int rm = eff_rm(h, i);
    REQUIRE_RM(h, rm);
    uint64_t a = h->f[i->rs1], r;
    uint32_t fl = 0;
    if (is_nan(true, a)) {
        fl = is_snan(true, a) ? NV : 0;
        r = CANON_S;
    } else {
        r = host_cvt_s_d(a, rm == FP_RM_RMM ? FP_RM_RNE : rm, h->fflags, &fl);
        if (UNLIKELY(rm == FP_RM_RMM) && (fl & NX) && is_finite(true, a)) {
            fl = 0;
            r = fp_soft(FP_SOFT_CVT_S_D, false, a, 0, 0, FP_RM_RMM, &fl);
        }
    }
    done_f(h, i, false, r, fl);
}

/* Exact: every single is a double. The rm field is still checked. */
static void fcvt_d_s(struct hart *h, const struct insn *i) {
    REQUIRE_FS(h);
    REQUIRE_RM(h, eff_rm(h, i));
    uint64_t a = unbox(h->f[i->rs1]), r;
    uint32_t fl = 0;
    if (is_nan(false, a)) {
        fl = is_snan(false, a) ? NV : 0;
        r = CANON_D;
    } else if (is_inf(false, a)) {
        r = (a & SIGN_S) << 32 | 0x7ff0000000000000ull;
    } else {
        struct num n = unpack(false, a);
        r = round_pack(true, n.sign, n.exp, n.sig, FP_RM_RNE, &fl);
    }
    done_f(h, i, true, r, fl);
}

/* ------------------------------------------------------------------ */
/* Loads and stores (bits unchanged; a single is NaN-boxed on load) */

void op_flw(struct hart *h, const struct insn *i) {
    REQUIRE_FS(h);
    h->stats.mem_ops++;
    uint32_t v;
    if (!mem_load32(h, h->x[i->rs1] + (uint64_t)(int64_t)i->imm, &v)) return;
    done_f(h, i, false, v, 0);
}
void op_fld(struct hart *h, const struct insn *i) {
    REQUIRE_FS(h);
    h->stats.mem_ops++;
    uint64_t v;
    if (!mem_load64(h, h->x[i->rs1] + (uint64_t)(int64_t)i->imm, &v)) return;
    done_f(h, i, true, v, 0);
}
void op_fsw(struct hart *h, const struct insn *i) {
    REQUIRE_FS(h);
    h->stats.mem_ops++;
    if (!mem_store32(h, h->x[i->rs1] + (uint64_t)(int64_t)i->imm, (uint32_t)h->f[i->rs2])) return;
    h->pc += i->len; /* ends the chain: see dispatch.h */
}
void op_fsd(struct hart *h, const struct insn *i) {
    REQUIRE_FS(h);
    h->stats.mem_ops++;
    if (!mem_store64(h, h->x[i->rs1] + (uint64_t)(int64_t)i->imm, h->f[i->rs2])) return;
    h->pc += i->len; /* ends the chain: see dispatch.h */
}

/* ------------------------------------------------------------------ */
/* Decoder */

static inline int32_t sext12(uint32_t v) { return (int32_t)(v << 20) >> 20; }

bool decode_fp(uint32_t raw, struct insn *out) {
    const unsigned opc = raw & 0x7f, rd = (raw >> 7) & 31, f3 = (raw >> 12) & 7, rs1 = (raw >> 15) & 31,
                   rs2 = (raw >> 20) & 31, fmt = (raw >> 25) & 3, f5 = raw >> 27;
    const bool dbl = fmt == 1;
    const uint8_t xrd = rd ? (uint8_t)rd : 32; /* integer destination */
    out->rd = (uint8_t)rd;
    out->rs1 = (uint8_t)rs1;
    out->rs2 = (uint8_t)rs2;
    out->rs3 = 0;
    out->rm = (uint8_t)f3;
    out->imm = 0;

    switch (opc) {
    case 0x07: /* LOAD-FP */
        if (f3 != 2 && f3 != 3) return false;
        out->fn = f3 == 2 ? op_flw : op_fld;
        out->imm = sext12(raw >> 20);
        out->rs2 = 0;
        return true;
    case 0x27: /* STORE-FP */
        if (f3 != 2 && f3 != 3) return false;
        out->fn = f3 == 2 ? op_fsw : op_fsd;
        out->imm = sext12((raw >> 25) << 5 | rd);
        out->rd = 0;
        return true;
    case 0x43: case 0x47: case 0x4b: case 0x4f: { /* fused multiply-add */
        static const insn_fn fma_fn[4][2] = {
            {fmadd_s, fmadd_d}, {fmsub_s, fmsub_d}, {fnmsub_s, fnmsub_d}, {fnmadd_s, fnmadd_d}};
        if (fmt > 1) return false;
        out->fn = fma_fn[(opc >> 2) & 3][dbl];
        out->rs3 = (uint8_t)f5;
        return true;
    }
    case 0x53: break;
    default: return false;
    }

    /* OP-FP */
    if (fmt > 1) return false;
    switch (f5) {
    case 0x00: out->fn = dbl ? fadd_d : fadd_s; return true;
    case 0x01: out->fn = dbl ? fsub_d : fsub_s; return true;
    case 0x02: out->fn = dbl ? fmul_d : fmul_s; return true;
    case 0x03: out->fn = dbl ? fdiv_d : fdiv_s; return true;
    case 0x0b:
        if (rs2) return false;
        out->fn = dbl ? fsqrt_d : fsqrt_s;
        return true;
    case 0x04: {
        static const insn_fn f[3][2] = {{fsgnj_s, fsgnj_d}, {fsgnjn_s, fsgnjn_d}, {fsgnjx_s, fsgnjx_d}};
        if (f3 > 2) return false;
        out->fn = f[f3][dbl];
        return true;
    }
    case 0x05:
        if (f3 > 1) return false;
        out->fn = f3 ? (dbl ? fmax_d : fmax_s) : (dbl ? fmin_d : fmin_s);
        return true;
    case 0x08: /* FCVT.S.D (fmt S, rs2 = D) and FCVT.D.S (fmt D, rs2 = S) */
        if (rs2 != (dbl ? 0u : 1u)) return false;
        out->fn = dbl ? fcvt_d_s : fcvt_s_d;
        return true;
    case 0x14: {
        static const insn_fn f[3][2] = {{fle_s, fle_d}, {flt_s, flt_d}, {feq_s, feq_d}};
        if (f3 > 2) return false;
        out->fn = f[f3][dbl];
        out->rd = xrd;
        return true;
    }
    case 0x18: {
        static const insn_fn f[4][2] = {
            {fcvt_w_s, fcvt_w_d}, {fcvt_wu_s, fcvt_wu_d}, {fcvt_l_s, fcvt_l_d}, {fcvt_lu_s, fcvt_lu_d}};
        if (rs2 > 3) return false;
        out->fn = f[rs2][dbl];
        out->rd = xrd;
        return true;
    }
    case 0x1a: {
        static const insn_fn f[4][2] = {
            {fcvt_s_w, fcvt_d_w}, {fcvt_s_wu, fcvt_d_wu}, {fcvt_s_l, fcvt_d_l}, {fcvt_s_lu, fcvt_d_lu}};
        if (rs2 > 3) return false;
        out->fn = f[rs2][dbl];
        return true;
    }
    case 0x1c: /* FMV.X.W / FMV.X.D, FCLASS */
        if (rs2 || f3 > 1) return false;
        out->fn = f3 ? (dbl ? fclass_d : fclass_s) : (dbl ? fmv_x_d : fmv_x_w);
        out->rd = xrd;
        return true;
    case 0x1e: /* FMV.W.X / FMV.D.X */
        if (rs2 || f3) return false;
        out->fn = dbl ? fmv_d_x : fmv_w_x;
        return true;
    }
    return false;
}
