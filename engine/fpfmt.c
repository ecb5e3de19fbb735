/*
** Custom floating-point formats: set-up, names, and the code <-> value maps
** (the rounding itself is inline in engine/fpfmt.h).
*/
#include "engine/fpfmt.h"

#include <stdio.h>
#include <stdlib.h>

#include "engine/err.h"

int fpfmt_init(fpfmt *F, int e, int f, int bias, int subnormals) {
    memset(F, 0, sizeof *F);
    if (e < 2 || e > 8 || f < 1 || f > 23)
        return bn_error(BN_EARG, "float format e%dm%d: need 2 <= e <= 8 exponent and 1 <= f <= 23 mantissa bits", e, f);
    /* 64-bit: any int bias (a model file's field) is refused, never overflows */
    long long emax = (1LL << e) - 2 - bias, emin_sub = 1LL - bias - f;
    if (emax > 127 || emin_sub < -149)
        return bn_error(BN_EARG,
                        "float format e%dm%db%d: exponents %lld..%lld do not fit binary32 (largest 127, "
                        "smallest subnormal -149)",
                        e, f, bias, emin_sub, emax);
    F->e = e, F->f = f, F->bias = bias, F->subnormals = subnormals ? 1 : 0;
    F->max = ldexp(2.0 - ldexp(1.0, -f), (int)emax);
    F->min_normal = ldexp(1.0, 1 - bias);
    F->sub_q = ldexp(1.0, (int)emin_sub);
    F->inv_sub_q = ldexp(1.0, (int)-emin_sub);
    return BN_OK;
}

fpfmt fpfmt_binary32(void) {
    fpfmt F;
    int rc = fpfmt_init(&F, 8, 23, 127, 1);
    BN_ASSERT(rc == BN_OK);
    return F;
}

int fpfmt_parse(fpfmt *F, const char *s) {
    if (!s) return bn_error(BN_EARG, "float format: none given");
    if (!strcmp(s, "fp32")) return fpfmt_init(F, 8, 23, 127, 1);
    if (!strcmp(s, "fp16")) return fpfmt_init(F, 5, 10, 15, 1);
    if (!strcmp(s, "bf16")) return fpfmt_init(F, 8, 7, 127, 1);
    const char *p = s;
    char *end;
    if (*p != 'e') goto bad;
    long e = strtol(p + 1, &end, 10);
    if (end == p + 1 || *end != 'm') goto bad;
    p = end;
    long f = strtol(p + 1, &end, 10);
    if (end == p + 1) goto bad;
    p = end;
    if (e < 2 || e > 8 || f < 1 || f > 23) goto bad;
    long bias = (1L << (e - 1)) - 1;
    if (*p == 'b') {
        bias = strtol(p + 1, &end, 10);
        if (end == p + 1 || bias < -1000 || bias > 1000) goto bad;
        p = end;
    }
    int sub = 1;
    if (*p == 'n') sub = 0, p++;
    if (*p) goto bad;
    return fpfmt_init(F, (int)e, (int)f, (int)bias, sub);
bad:
    return bn_error(BN_EARG,
                    "float format '%s': expected fp32, fp16, bf16 or eXmY[bZ][n] (X exponent bits 2..8, "
                    "Y mantissa bits 1..23, Z bias, n: no subnormals), e.g. e5m10",
                    s);
}

void fpfmt_name(const fpfmt *F, char *buf, size_t cap) {
    snprintf(buf, cap, "e%dm%db%d%s", F->e, F->f, F->bias, F->subnormals ? "" : "n");
}

uint32_t fpfmt_encode(const fpfmt *F, double x) {
    double r = fpfmt_round(F, x);
    uint32_t ones = (1u << (1 + F->e + F->f)) - 1;
    if (r != r) return ones;
    uint32_t s = signbit(r) ? 1u : 0u, E, M;
    double a = fabs(r);
    if (a == 0) {
        E = 0, M = 0;
    } else if (a >= F->min_normal) {
        int k;
        double m = frexp(a, &k); /* a = m * 2^k, m in [0.5, 1) */
        E = (uint32_t)(k - 1 + F->bias);
        M = (uint32_t)((2.0 * m - 1.0) * ldexp(1.0, F->f));
    } else {
        E = 0;
        M = (uint32_t)(a * F->inv_sub_q);
    }
    return s << (F->e + F->f) | E << F->f | M;
}

double fpfmt_decode(const fpfmt *F, uint32_t code) {
    uint32_t M = code & ((1u << F->f) - 1), E = (code >> F->f) & ((1u << F->e) - 1);
    int s = (code >> (F->e + F->f)) & 1;
    double a;
    if (E == (1u << F->e) - 1) return NAN;
    if (E == 0) {
        if (M && !F->subnormals) return NAN; /* unused code */
        a = M * F->sub_q;
    } else {
        a = ldexp(1.0 + ldexp((double)M, -F->f), (int)E - F->bias);
    }
    return s ? -a : a;
}
