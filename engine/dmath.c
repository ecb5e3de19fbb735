/* Host-independent elementary functions (see engine/dmath.h). */
#include "engine/dmath.h"

#include <math.h>

/* ln 2 split so that k * LN2_HI is exact for |k| < 2^11 (fdlibm's split). */
#define LN2_HI 6.93147180369123816490e-01
#define LN2_LO 1.90821492927058770002e-10
#define INV_LN2 1.44269504088896338700e+00
#define TWO_PI 6.28318530717958647692e+00

double dmath_exp(double x) {
    if (x != x) return x;
    if (x > 709.782712893384) return INFINITY;
    if (x < -745.2) return 0.0;
    double k = floor(x * INV_LN2 + 0.5);
    double r = (x - k * LN2_HI) - k * LN2_LO; /* |r| <= 0.347 */
    /* Taylor series to r^14 / 14! (truncation < 1e-19 relative), Horner form */
    double p = 1.0 / 87178291200.0;
    static const double inv_fact[] = {1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0,
                                      1.0 / 3628800.0,    1.0 / 362880.0,    1.0 / 40320.0,
                                      1.0 / 5040.0,       1.0 / 720.0,       1.0 / 120.0,
                                      1.0 / 24.0,         1.0 / 6.0,         1.0 / 2.0,
                                      1.0,                1.0};
    for (int i = 0; i < (int)(sizeof inv_fact / sizeof inv_fact[0]); i++) p = p * r + inv_fact[i];
    return ldexp(p, (int)k);
}

double dmath_log(double x) {
    if (x != x || x < 0) return NAN;
    if (x == 0) return -INFINITY;
    if (x == INFINITY) return x;
    int e;
    double m = frexp(x, &e); /* x = m 2^e, m in [0.5, 1) */
    if (m < 0.70710678118654752440) m *= 2.0, e--;
    /* log m = 2 atanh s, s = (m - 1) / (m + 1), |s| <= 0.1716 */
    double f = m - 1.0, s = f / (2.0 + f), z = s * s;
    double p = 1.0 / 25.0;
    for (int n = 23; n >= 3; n -= 2) p = p * z + 1.0 / n;
    double lm = 2.0 * s + 2.0 * s * z * p;
    return e * LN2_HI + (lm + e * LN2_LO);
}

double dmath_log1p(double x) {
    if (x != x || x < -1.0) return NAN;
    if (x == -1.0) return -INFINITY;
    double u = 1.0 + x;
    if (u == 1.0) return x;
    if (u == INFINITY) return u;
    /* Goldberg: log(u) * x / (u - 1) cancels the rounding of 1 + x */
    return dmath_log(u) * (x / (u - 1.0));
}

double dmath_pow(double x, double y) {
    if (y == 0) return 1.0;
    if (x == 0) return y > 0 ? 0.0 : INFINITY;
    return dmath_exp(y * dmath_log(x));
}

double dmath_powi(double x, int64_t n) {
    double r = 1.0;
    while (n > 0) {
        if (n & 1) r *= x;
        x *= x;
        n >>= 1;
    }
    return r;
}

/* sin and cos of |t| <= pi/4 by their Taylor series (truncation < 1e-18). */
static double dmath_sin_small(double t) {
    double z = t * t, p = -1.0 / 1307674368000.0; /* -1/15! */
    static const double c[] = {1.0 / 6227020800.0, -1.0 / 39916800.0, 1.0 / 362880.0, -1.0 / 5040.0,
                               1.0 / 120.0,        -1.0 / 6.0};
    for (int i = 0; i < 6; i++) p = p * z + c[i];
    return t + t * z * p;
}

static double dmath_cos_small(double t) {
    double z = t * t, p = 1.0 / 6402373705728000.0; /* 1/18! */
    static const double c[] = {-1.0 / 20922789888000.0, 1.0 / 87178291200.0, -1.0 / 479001600.0,
                               1.0 / 3628800.0,         -1.0 / 40320.0,      1.0 / 720.0,
                               -1.0 / 24.0,             1.0 / 2.0};
    for (int i = 0; i < 8; i++) p = p * z + c[i];
    return 1.0 - z * p;
}

double dmath_cos2pi(double u) {
    if (!isfinite(u)) return NAN;
    double a = fabs(u - floor(u + 0.5)); /* cos(2 pi u) = cos(2 pi a), a in [0, 0.5] */
    if (a <= 0.125) return dmath_cos_small(TWO_PI * a);
    if (a <= 0.375) return dmath_sin_small(TWO_PI * (0.25 - a)); /* exact difference (Sterbenz) */
    return -dmath_cos_small(TWO_PI * (0.5 - a));
}

double dmath_erfc(double x) {
    if (x != x) return x;
    if (x < 0) return 2.0 - dmath_erfc(-x);
    if (x > 27.3) return 0.0;
    const double inv_sqrt_pi = 0.56418958354775628695;
    if (x < 1.5) {
        /* erf x = 2/sqrt(pi) e^(-x^2) sum_n 2^n x^(2n+1) / (1 3 5 ... (2n+1)): positive terms */
        double term = x, sum = x, z = 2.0 * x * x;
        for (int n = 1; n < 200 && term > 1e-17 * sum; n++) {
            term *= z / (2 * n + 1);
            sum += term;
        }
        return 1.0 - 2.0 * inv_sqrt_pi * dmath_exp(-x * x) * sum;
    }
    /* continued fraction erfc x = e^(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))),
       evaluated bottom-up over a fixed depth (converged to < 1e-15 for x >= 1.5) */
    double t = x;
    for (int k = 120; k >= 1; k--) t = x + (k * 0.5) / t;
    return inv_sqrt_pi * dmath_exp(-x * x) / t;
}
