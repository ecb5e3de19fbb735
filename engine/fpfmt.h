/*
** Small custom floating-point formats F(e, f, bias), emulated in double
** arithmetic: the momentum of the Bop optimizer is stored in one of them
** (engine/bop.h), following "Memory-Efficient Training of BNNs on the Edge"
** (Yayla and Chen, DAC 2022; the format family is our reconstruction, see
** /work/shared/research/papers.md section 7).
**
** A value of F is a code of 1 + e + f bits: sign s, biased exponent E (e bits),
** mantissa M (f bits). The encoding is IEEE-754 shaped:
**
**   E = 1 .. 2^e - 2   normal      (-1)^s * 2^(E - bias) * (1 + M / 2^f)
**   E = 0              subnormal   (-1)^s * 2^(1 - bias) * (M / 2^f)   (subnormals on)
**                      zero        only M = 0 is used                   (subnormals off)
**   E = 2^e - 1        reserved (IEEE's infinities and NaNs); never produced
**
** so F(5, 10, 15) with subnormals is IEEE binary16 and F(8, 7, 127) is
** bfloat16, F(8, 23, 127) binary32, on every finite value.
**
** Rounding (fpfmt_round) is round-to-nearest, ties to the value whose code has
** an even mantissa (RNE), over F's finite values; magnitudes beyond the largest
** finite value saturate to it (no infinities). With subnormals off, a
** magnitude below the smallest normal value m_n rounds to 0 if it is at most
** m_n / 2 and to m_n otherwise. The sign is kept (-0 is possible; it compares
** equal to 0). NaN stays NaN.
**
** Accepted formats: e in 2..8, f in 1..23, and every value of F must be a
** binary32 value (largest exponent 2^e - 2 - bias <= 127, smallest exponent
** 1 - bias - f >= -149), so emulated momentum can be kept in a float array
** whose values are exactly F's.
*/
#ifndef BNAS_FPFMT_H
#define BNAS_FPFMT_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    int e;             /* exponent bits, 2..8 */
    int f;             /* mantissa bits, 1..23 */
    int bias;          /* exponent bias; IEEE's is 2^(e-1) - 1 */
    int subnormals;    /* 1: gradual underflow; 0: flush below the smallest normal value */
    /* derived by fpfmt_init: */
    double max;        /* largest finite value */
    double min_normal; /* smallest normal value 2^(1 - bias) */
    double sub_q;      /* spacing of the subnormals 2^(1 - bias - f) */
    double inv_sub_q;  /* 1 / sub_q (a power of two, exact) */
} fpfmt;

/* Sets up F(e, f, bias) with or without subnormals. Returns BN_OK or BN_EARG
   (with a message) if the format is outside the accepted range above. */
int fpfmt_init(fpfmt *F, int e, int f, int bias, int subnormals);

/* IEEE binary32 as an fpfmt: F(8, 23, 127) with subnormals. */
fpfmt fpfmt_binary32(void);

/* Parses a format name: "fp32" (binary32), "fp16" (binary16), "bf16"
   (bfloat16), or "eXmY" with optional "bZ" (bias, default 2^(X-1) - 1; may be
   negative) and optional suffix "n" (no subnormals), e.g. "e5m10",
   "e4m7b14", "e5m6b30n". Returns BN_OK or BN_EARG naming the string. */
int fpfmt_parse(fpfmt *F, const char *s);

/* Writes the canonical name "eXmYbZ" (+ "n" without subnormals) into buf. */
void fpfmt_name(const fpfmt *F, char *buf, size_t cap);

/* Bits of one code: 1 + e + f. */
static inline int fpfmt_bits(const fpfmt *F) { return 1 + F->e + F->f; }

/* Code of fpfmt_round(F, x): s << (e + f) | E << f | M. NaN encodes as the
   all-ones code. */
uint32_t fpfmt_encode(const fpfmt *F, double x);

/* Value of a code; the reserved exponent gives NaN. */
double fpfmt_decode(const fpfmt *F, uint32_t code);

/* Rounds x into F (RNE, saturating; see the file comment). This is the hot
   path of the Bop step, so it is inline and branch-free on finite values:
   with j the exponent of F's spacing at |x| (the binade's exponent minus f,
   or the subnormal spacing's below the smallest normal), adding and removing
   C = 2^(j + 52) rounds |x| to a multiple of 2^j, ties to even, in the default
   rounding mode (|x| < 2^(j + f + 1) <= C, so the sum has spacing 2^j).
   fpfmt_round_core is that step alone for a finite x and a format with
   subnormals (maxv = F->max, emin = 1 - F->bias, f = F->f); fpfmt_round adds
   NaN and flushing without subnormals. */
static inline double fpfmt_round_core(double x, double maxv, int64_t emin, int64_t f) {
    double a = fabs(x);
    a = a < maxv ? a : maxv; /* saturation (also of infinities) */
    uint64_t u, cb;
    memcpy(&u, &a, 8);
    int64_t ex = (int64_t)(u >> 52) - 1023;
    int64_t j = (ex > emin ? ex : emin) - f; /* -149 <= j <= 104 */
    cb = (uint64_t)(j + 52 + 1023) << 52;
    double C;
    memcpy(&C, &cb, 8);
    double r = (a + C) - C; /* no fast-math: not folded away */
    r = r < maxv ? r : maxv;
    return copysign(r, x);
}

static inline double fpfmt_round(const fpfmt *F, double x) {
    if (x != x) return x; /* NaN */
    double r = fpfmt_round_core(x, F->max, 1 - F->bias, F->f);
    if (!F->subnormals && fabs(x) < F->min_normal)
        r = copysign(fabs(x) > 0.5 * F->min_normal ? F->min_normal : 0.0, x);
    return r;
}

#endif /* BNAS_FPFMT_H */
