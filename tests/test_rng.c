/* PCG32 against the reference generator's published output, and the draws built on it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/rng.h"

/* pcg32-demo from the reference C implementation, seed 42, stream 54. */
static void test_pcg32_reference_vectors(void **state) {
    (void)state;
    static const uint32_t expect[6] = {0xa15c02b7, 0x7b47f409, 0xba1d3330,
                                       0x83d2f293, 0xbfa4784b, 0xcbed606e};
    pcg32 r;
    pcg32_seed(&r, 42u, 54u);
    for (int i = 0; i < 6; i++) assert_int_equal(pcg32_next(&r), expect[i]);
}

static void test_pcg32_advance_matches_stepping(void **state) {
    (void)state;
    pcg32 a, b;
    pcg32_seed(&a, 7, 11);
    b = a;
    for (int i = 0; i < 1000; i++) pcg32_next(&a);
    pcg32_advance(&b, 1000);
    assert_memory_equal(&a, &b, sizeof a);
    assert_int_equal(pcg32_next(&a), pcg32_next(&b));
}

static void test_keyed_streams_differ_and_repeat(void **state) {
    (void)state;
    pcg32 a, b, c;
    rng_keyed(&a, 1, 2, RNG_INIT);
    rng_keyed(&b, 1, 2, RNG_INIT);
    rng_keyed(&c, 1, 2, RNG_SHUFFLE);
    int same_ab = 1, same_ac = 1;
    for (int i = 0; i < 16; i++) {
        uint32_t x = pcg32_next(&a), y = pcg32_next(&b), z = pcg32_next(&c);
        same_ab &= x == y;
        same_ac &= x == z;
    }
    assert_true(same_ab);
    assert_false(same_ac);
}

static void test_bounded_is_uniform(void **state) {
    (void)state;
    pcg32 r;
    pcg32_seed(&r, 3, 5);
    int counts[7] = {0};
    const int n = 700000;
    for (int i = 0; i < n; i++) counts[pcg32_bounded(&r, 7)]++;
    for (int k = 0; k < 7; k++) {
        /* mean 100000, sd ~ 293: allow 6 sd */
        assert_true(abs(counts[k] - 100000) < 1800);
    }
}

static void test_binomial_moments(void **state) {
    (void)state;
    pcg32 r;
    pcg32_seed(&r, 9, 1);
    const struct { uint32_t n; double p; } cases[] = {{10, 0.3}, {1000, 0.01}, {5000, 0.2}, {64, 0.9}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const int reps = 20000;
        double sum = 0, sum2 = 0;
        for (int i = 0; i < reps; i++) {
            uint32_t x = pcg32_binomial(&r, cases[k].n, cases[k].p);
            assert_true(x <= cases[k].n);
            sum += x;
            sum2 += (double)x * x;
        }
        double mean = sum / reps, var = sum2 / reps - mean * mean;
        double m0 = cases[k].n * cases[k].p, v0 = m0 * (1 - cases[k].p);
        assert_true(fabs(mean - m0) < 5 * sqrt(v0 / reps));
        assert_true(fabs(var - v0) < 0.05 * v0 + 0.01);
    }
}

static void test_shuffle_is_permutation(void **state) {
    (void)state;
    pcg32 r;
    pcg32_seed(&r, 1, 1);
    int32_t idx[1000];
    for (int i = 0; i < 1000; i++) idx[i] = i;
    rng_shuffle(&r, idx, 1000);
    int seen[1000] = {0}, moved = 0;
    for (int i = 0; i < 1000; i++) {
        seen[idx[i]]++;
        moved += idx[i] != i;
    }
    for (int i = 0; i < 1000; i++) assert_int_equal(seen[i], 1);
    assert_true(moved > 900);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pcg32_reference_vectors),
        cmocka_unit_test(test_pcg32_advance_matches_stepping),
        cmocka_unit_test(test_keyed_streams_differ_and_repeat),
        cmocka_unit_test(test_bounded_is_uniform),
        cmocka_unit_test(test_binomial_moments),
        cmocka_unit_test(test_shuffle_is_permutation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
