/* PCG32 (XSH-RR 64/32) and the draws built on it. */
#include "engine/rng.h"

#include <math.h>

#include "engine/dmath.h"

void pcg32_seed(pcg32 *rng, uint64_t initstate, uint64_t initseq) {
    rng->state = 0u;
    rng->inc = (initseq << 1u) | 1u;
    pcg32_next(rng);
    rng->state += initstate;
    pcg32_next(rng);
}

uint64_t rng_mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void rng_keyed(pcg32 *rng, uint64_t seed, uint64_t key, uint64_t purpose) {
    uint64_t a = rng_mix64(seed ^ rng_mix64(key ^ rng_mix64(purpose)));
    uint64_t b = rng_mix64(a ^ 0x5851f42d4c957f2dULL ^ purpose);
    pcg32_seed(rng, a, b);
}

uint32_t pcg32_bounded(pcg32 *rng, uint32_t bound) {
    /* Reject the lowest (2^32 mod bound) values so every residue is equally likely. */
    uint32_t threshold = (uint32_t)(-bound) % bound;
    for (;;) {
        uint32_t r = pcg32_next(rng);
        if (r >= threshold) return r % bound;
    }
}

double pcg32_double(pcg32 *rng) {
    uint64_t hi = pcg32_next(rng) >> 5; /* 27 bits */
    uint64_t lo = pcg32_next(rng) >> 6; /* 26 bits */
    return (double)((hi << 26) | lo) * (1.0 / 9007199254740992.0);
}

double pcg32_normal(pcg32 *rng) {
    double u1 = pcg32_double(rng), u2 = pcg32_double(rng);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * dmath_log(u1)) * dmath_cos2pi(u2);
}

uint32_t pcg32_binomial(pcg32 *rng, uint32_t n, double p) {
    if (n == 0 || p <= 0.0) return 0;
    if (p >= 1.0) return n;
    if (p > 0.5) return n - pcg32_binomial(rng, n, 1.0 - p);
    if ((double)n * p < 16.0) {
        /* Inversion by sequential search over the pmf; exact up to rounding. */
        double q = 1.0 - p, s = p / q, a = (double)(n + 1) * s;
        double r = dmath_powi(q, n), u = pcg32_double(rng);
        uint32_t x = 0;
        while (u > r) {
            u -= r;
            x++;
            if (x > n) return n;
            r *= a / (double)x - s;
        }
        return x;
    }
    /* Count successes by jumping geometric gaps between them. */
    double lq = dmath_log1p(-p);
    uint32_t count = 0;
    uint64_t pos = 0;
    for (;;) {
        double u = pcg32_double(rng);
        if (u < 1e-300) u = 1e-300;
        uint64_t gap = (uint64_t)floor(dmath_log(u) / lq);
        pos += gap + 1;
        if (pos > n) return count;
        count++;
    }
}

void pcg32_advance(pcg32 *rng, uint64_t delta) {
    /* Brown, "Random Number Generation with Arbitrary Stride", 1994. */
    uint64_t cur_mult = 6364136223846793005ULL, cur_plus = rng->inc;
    uint64_t acc_mult = 1u, acc_plus = 0u;
    while (delta > 0) {
        if (delta & 1) {
            acc_mult *= cur_mult;
            acc_plus = acc_plus * cur_mult + cur_plus;
        }
        cur_plus = (cur_mult + 1) * cur_plus;
        cur_mult *= cur_mult;
        delta /= 2;
    }
    rng->state = acc_mult * rng->state + acc_plus;
}

void rng_shuffle(pcg32 *rng, int32_t *idx, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)pcg32_bounded(rng, (uint32_t)i + 1);
        int32_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
