/* Non-dominated sorting, crowding distance and hypervolume against brute force and golden values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/rng.h"
#include "nas/pareto.h"

/* Golden example from moocore's metrics documentation (see nas_anchors.md 4.1):
   A dominates B; HV with reference (10, 10) is 61 for A and 44 for B. */
static void test_hv_golden_2d(void **state) {
    (void)state;
    const double A[] = {4, 2, 3, 3, 2, 4};
    const double B[] = {8, 2, 4, 4, 2, 8};
    const double ref[] = {10, 10};
    assert_float_equal(pareto_hypervolume(A, 3, 2, ref), 61.0, 1e-12);
    assert_float_equal(pareto_hypervolume(B, 3, 2, ref), 44.0, 1e-12);
}

static void test_hv_edge_cases(void **state) {
    (void)state;
    const double ref[] = {1, 1, 1};
    const double out[] = {1, 0.5, 0.5, 2, 0, 0}; /* on or beyond the reference: nothing */
    assert_float_equal(pareto_hypervolume(out, 2, 3, ref), 0.0, 0);
    assert_float_equal(pareto_hypervolume(out, 0, 3, ref), 0.0, 0);
    const double one[] = {0.5, 0.5, 0.5};
    assert_float_equal(pareto_hypervolume(one, 1, 3, ref), 0.125, 1e-15);
    const double dup[] = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.75, 0.75, 0.75};
    assert_float_equal(pareto_hypervolume(dup, 3, 3, ref), 0.125, 1e-15);
    const double r1[] = {3}, p1[] = {2, 1, 2.5};
    assert_float_equal(pareto_hypervolume(p1, 3, 1, r1), 2.0, 0);
}

/* Brute force: count unit cells of an integer grid covered by some point's box. */
static double hv_brute(const double *pts, int n, int m, int g) {
    long count = 0;
    int cell[3] = {0, 0, 0};
    long total = 1;
    for (int j = 0; j < m; j++) total *= g;
    for (long c = 0; c < total; c++) {
        long r = c;
        for (int j = 0; j < m; j++) cell[j] = (int)(r % g), r /= g;
        for (int i = 0; i < n; i++) {
            int in = 1;
            for (int j = 0; j < m; j++)
                if (!(pts[i * m + j] <= cell[j])) in = 0; /* cell [c, c+1) dominated if p <= c */
            if (in) {
                count++;
                break;
            }
        }
    }
    return (double)count;
}

static void test_hv_random_vs_brute(void **state) {
    (void)state;
    pcg32 r;
    rng_keyed(&r, 7, 0, RNG_SAMPLE);
    const int g = 12;
    for (int m = 2; m <= 3; m++) {
        for (int t = 0; t < 60; t++) {
            int n = 1 + (int)pcg32_bounded(&r, 15);
            double pts[45];
            for (int i = 0; i < n * m; i++) pts[i] = (double)pcg32_bounded(&r, (uint32_t)g + 2);
            double ref[3] = {g, g, g};
            double exact = pareto_hypervolume(pts, n, m, ref);
            assert_float_equal(exact, hv_brute(pts, n, m, g), 1e-9);
        }
    }
}

static void test_rank_vs_brute(void **state) {
    (void)state;
    pcg32 r;
    rng_keyed(&r, 9, 0, RNG_SAMPLE);
    for (int t = 0; t < 40; t++) {
        int n = 2 + (int)pcg32_bounded(&r, 30), m = 2 + (int)pcg32_bounded(&r, 2);
        double pts[32 * 3];
        for (int i = 0; i < n * m; i++) pts[i] = (double)pcg32_bounded(&r, 6);
        int rank[32];
        pareto_rank(pts, n, m, rank);
        /* Brute force: peel fronts. */
        int brute[32], left = n;
        for (int i = 0; i < n; i++) brute[i] = -1;
        for (int f = 0; left > 0; f++) {
            int mark[32];
            for (int i = 0; i < n; i++) {
                mark[i] = 0;
                if (brute[i] >= 0) continue;
                int dominated = 0;
                for (int j = 0; j < n; j++)
                    if (j != i && brute[j] < 0 && pareto_dominates(pts + j * m, pts + i * m, m))
                        dominated = 1;
                mark[i] = !dominated;
            }
            for (int i = 0; i < n; i++)
                if (mark[i]) brute[i] = f, left--;
        }
        for (int i = 0; i < n; i++) assert_int_equal(rank[i], brute[i]);
    }
}

static void test_crowding(void **state) {
    (void)state;
    /* Four points on a line x + y = 3: ends infinite, inner ones (gap/range) * 2 objectives. */
    const double pts[] = {0, 3, 1, 2, 2, 1, 3, 0};
    const int idx[] = {0, 1, 2, 3};
    double d[4];
    pareto_crowding(pts, 2, idx, 4, d);
    assert_true(isinf(d[0]) && isinf(d[3]));
    assert_float_equal(d[1], 2.0 / 3.0 * 2, 1e-12);
    assert_float_equal(d[2], 2.0 / 3.0 * 2, 1e-12);
    /* Zero range adds nothing. */
    const double flat[] = {1, 0, 1, 1, 1, 2};
    const int i3[] = {0, 1, 2};
    pareto_crowding(flat, 2, i3, 3, d);
    assert_float_equal(d[1], 1.0, 1e-12);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hv_golden_2d),       cmocka_unit_test(test_hv_edge_cases),
        cmocka_unit_test(test_hv_random_vs_brute), cmocka_unit_test(test_rank_vs_brute),
        cmocka_unit_test(test_crowding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
