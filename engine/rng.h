/*
** PCG32 random numbers (O'Neill, "PCG: A Family of Simple Fast Space-Efficient
** Statistically Good Algorithms for Random Number Generation", 2014), written
** from the published algorithm: a 64-bit LCG whose output is permuted by
** xorshift-high followed by a random rotation (XSH-RR), 32-bit output.
**
** Every random draw in bnas takes an explicit generator. Generators are keyed
** by (seed, key, purpose) through rng_keyed(), so a draw never depends on which
** thread made it or how many draws other parts of the program made before it.
*/
#ifndef BNAS_RNG_H
#define BNAS_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t state; /* LCG state */
    uint64_t inc;   /* stream selector, always odd */
} pcg32;

/* What a keyed stream is used for; part of the key so purposes never share draws. */
enum {
    RNG_INIT = 1,     /* weight initialisation */
    RNG_SHUFFLE = 2,  /* data order */
    RNG_FLIP = 3,     /* bit flips while training */
    RNG_SPLIT = 4,    /* train/validation split */
    RNG_INJECT = 5,   /* fault injection at evaluation */
    RNG_SAMPLE = 6,   /* search: sampling a genome */
    RNG_MUTATE = 7,   /* search: mutation */
    RNG_TRIAL = 8,    /* search: the seed of a trial */
    RNG_ACT = 9,      /* activation or product errors while training */
};

/* Seeds like the reference pcg32_srandom_r(initstate, initseq). */
void pcg32_seed(pcg32 *rng, uint64_t initstate, uint64_t initseq);

/* A stream keyed by (seed, key, purpose): distinct keys give independent streams. */
void rng_keyed(pcg32 *rng, uint64_t seed, uint64_t key, uint64_t purpose);

/* Next 32 random bits. */
static inline uint32_t pcg32_next(pcg32 *rng) {
    uint64_t old = rng->state;
    rng->state = old * 6364136223846793005ULL + rng->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31u));
}

/* Uniform integer in [0, bound), without modulo bias. bound > 0. */
uint32_t pcg32_bounded(pcg32 *rng, uint32_t bound);

/* Uniform float in [0, 1) with 24 random bits. */
static inline float pcg32_float(pcg32 *rng) {
    return (float)(pcg32_next(rng) >> 8) * (1.0f / 16777216.0f);
}

/* Uniform double in [0, 1) with 53 random bits (two draws). */
double pcg32_double(pcg32 *rng);

/* Standard normal deviate (Box-Muller, two doubles per call). */
double pcg32_normal(pcg32 *rng);

/* Binomial(n, p) deviate: exact inversion for small n*p, else a normal
   approximation is NOT used: large cases sum geometric gaps, so the result
   is exactly Binomial-distributed in every case. */
uint32_t pcg32_binomial(pcg32 *rng, uint32_t n, double p);

/* Jumps the generator ahead by delta steps in O(log delta). */
void pcg32_advance(pcg32 *rng, uint64_t delta);

/* Fisher-Yates shuffle of idx[0..n). */
void rng_shuffle(pcg32 *rng, int32_t *idx, int n);

/* SplitMix64 finaliser: a good 64-bit mixing function for deriving seeds. */
uint64_t rng_mix64(uint64_t x);

#endif /* BNAS_RNG_H */
