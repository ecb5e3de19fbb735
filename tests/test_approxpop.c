/*
** Approximate popcount (evaluators/approxpop.h): the cell's truth table, the
** tree's exhaustive error distribution for small n, exactness with every
** level exact, adder counts, and the network evaluation with all levels exact
** equal to the packed network.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "evaluators/approxpop.h"
#include "engine/err.h"
#include "engine/packed.h"

static void test_truth_table(void **state) {
    (void)state;
    int wrong = 0;
    for (int t = 0; t < 8; t++) {
        int a = t & 1, b = t >> 1 & 1, c = t >> 2 & 1, s, co;
        approxpop_fa(a, b, c, &s, &co);
        assert_int_equal(co, a + b + c >= 2);
        int ok = s == ((a + b + c) & 1);
        assert_int_equal(ok, !(a == b && b == c));
        wrong += !ok;
    }
    assert_int_equal(wrong, 2);
}

static void test_small_exhaustive(void **state) {
    (void)state;
    int64_t h[7];
    approxpop_error_hist(3, 0, 0, NULL, h); /* 000 -> 1 (+1), 111 -> 2 (-1) */
    int64_t want[7] = {0, 0, 1, 6, 1, 0, 0};
    assert_memory_equal(h, want, sizeof want);
    uint8_t x0[3] = {0, 0, 0}, x1[3] = {1, 1, 1};
    assert_int_equal(approxpop_count(x0, 3, 0), 1);
    assert_int_equal(approxpop_count(x1, 3, 0), 2);
    for (int n = 1; n <= 14; n++) {
        int64_t *hh = calloc(2 * n + 1, sizeof(int64_t));
        int L = approxpop_levels(n);
        approxpop_error_hist(n, L, 0, NULL, hh); /* all exact */
        for (int e = -n; e <= n; e++) assert_true(hh[e + n] == (e == 0 ? (int64_t)1 << n : 0));
        approxpop_error_hist(n, 0, 0, NULL, hh);
        int64_t tot = 0;
        for (int e = -n; e <= n; e++) tot += hh[e + n];
        assert_true(tot == (int64_t)1 << n);
        if (n >= 3) assert_true(hh[n] < ((int64_t)1 << n)); /* some inputs are wrong */
        free(hh);
    }
    /* a brute-force check of one pattern per n against a hand walk: n = 6 ones */
    uint8_t six[6] = {1, 1, 1, 1, 1, 1};
    /* level 1: two cells give (s0, c1) = (0, 1) each: 2 + 2; level 2: HA(0,0) = 0, FA(1,1,0) approx -> s 0, c 1 */
    assert_int_equal(approxpop_count(six, 6, 0), 4);
    assert_int_equal(approxpop_count(six, 6, 1), 4); /* level 2 exact: 2 + 2 */
    assert_int_equal(approxpop_count(six, 6, 2), 6);
}

static void test_adders(void **state) {
    (void)state;
    int64_t a, e, h;
    approxpop_adders(3, 0, &a, &e, &h);
    assert_true(a == 1 && e == 0 && h == 0);
    approxpop_adders(6, 0, &a, &e, &h); /* 2 cells, then bit 0 HA, bit 1 FA */
    assert_true(a == 3 && e == 0 && h == 1);
    approxpop_adders(6, 1, &a, &e, &h);
    assert_true(a == 2 && e == 1 && h == 1);
    assert_int_equal(approxpop_levels(1), 0);
    assert_int_equal(approxpop_levels(3), 1);
    assert_int_equal(approxpop_levels(6), 2);
    assert_int_equal(approxpop_levels(576), 9); /* level 1, then 192 numbers halve 8 times */
}

static void test_network_exact_levels(void **state) {
    (void)state;
    dataset tr, te;
    assert_int_equal(data_load_fashion_mnist(&tr, &te, NULL), BN_OK);
    arch ar;
    net n;
    assert_int_equal(arch_parse(&ar, "C8-MP2-C8-MP2-FC16"), BN_OK);
    assert_int_equal(net_create(&n, &ar, 1, 28, 28, 10), BN_OK);
    pcg32 g;
    rng_keyed(&g, 3, 0, RNG_INIT);
    net_init_params(&n, &g);
    packed_net p;
    assert_int_equal(packed_from_net(&p, &n), BN_OK);
    dataset d = data_slice(&te, 0, 60);
    int *pred = malloc(sizeof(int) * d.n), ok = 0;
    packed_predict(&p, pred, d.pixels, d.n);
    for (int i = 0; i < d.n; i++) ok += pred[i] == d.labels[i];
    double acc, flip[NET_MAX_LAYERS];
    assert_int_equal(approxpop_accuracy(&p, 99, &d, 2, &acc, flip), BN_OK);
    assert_true(acc == (double)ok / d.n);
    for (int l = 0; l < p.n_layers; l++) assert_true(flip[l] == 0.0);
    assert_int_equal(approxpop_accuracy(&p, 0, &d, 2, &acc, flip), BN_OK);
    assert_true(flip[1] > 0.0 && flip[1] < 0.5);
    free(pred);
    packed_free(&p);
    net_free(&n);
    data_free(&tr), data_free(&te);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truth_table),
        cmocka_unit_test(test_small_exhaustive),
        cmocka_unit_test(test_adders),
        cmocka_unit_test(test_network_exact_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
