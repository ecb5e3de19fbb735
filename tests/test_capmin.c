/*
** CapMin (evaluators/capmin.h) on a briefly trained FashionMNIST CNN: the full
** window is the exact network, the histogram counts every chunk once, the
** window holds the most mass, clipping hurts monotonically little at first,
** the noise is thread-count independent, and the capacitor model behaves.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evaluators/capmin.h"
#include "engine/err.h"
#include "engine/packed.h"
#include "engine/train.h"
#include "tests/testutil.h"

static dataset g_train, g_test, g_small;
static net g_cnn;
static packed_net g_p;

static int setup(void **state) {
    (void)state;
    if (load_fashion_mnist(&g_train, &g_test)) return -1;
    arch a;
    if (arch_parse(&a, "C12-MP2-C20-MP2-FC40") || net_create(&g_cnn, &a, 1, 28, 28, 10)) return -1;
    pcg32 g;
    rng_keyed(&g, 7, 0, RNG_INIT);
    net_init_params(&g_cnn, &g);
    train_recipe r = train_recipe_default();
    r.epochs = 1;
    dataset tr = data_slice(&g_train, 0, sanitized() ? 1000 : 3000);
    if (train_recipe_run(&g_cnn, &tr, NULL, &r, NULL, NULL)) return -1;
    if (packed_from_net(&g_p, &g_cnn)) return -1;
    g_small = data_slice(&g_test, 0, sanitized() ? 100 : 500);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    packed_free(&g_p);
    net_free(&g_cnn);
    data_free(&g_train), data_free(&g_test);
    return 0;
}

static double exact_acc(void) {
    int *pred = malloc(sizeof(int) * g_small.n), ok = 0;
    packed_predict(&g_p, pred, g_small.pixels, g_small.n);
    for (int i = 0; i < g_small.n; i++) ok += pred[i] == g_small.labels[i];
    free(pred);
    return (double)ok / g_small.n;
}

static void test_full_window_exact(void **state) {
    (void)state;
    int lo[NET_MAX_LAYERS] = {0}, hi[NET_MAX_LAYERS];
    for (int A = 5; A <= 64; A += 59 - 5) {
        for (int l = 0; l < NET_MAX_LAYERS; l++) hi[l] = A;
        double acc;
        assert_int_equal(capmin_accuracy(&g_p, A, lo, hi, 0, 0.0, 1, &g_small, 2, &acc), BN_OK);
        assert_true(acc == exact_acc());
    }
}

static void test_histogram_counts(void **state) {
    (void)state;
    int A = 32;
    int64_t *h = calloc((size_t)g_p.n_layers * (A + 1), sizeof(int64_t)), *h1 = calloc((size_t)g_p.n_layers * (A + 1), 8);
    dataset d = data_slice(&g_train, 0, 200);
    assert_int_equal(capmin_histogram(&g_p, A, &d, 2, h), BN_OK);
    assert_int_equal(capmin_histogram(&g_p, A, &d, 1, h1), BN_OK);
    assert_memory_equal(h, h1, sizeof(int64_t) * g_p.n_layers * (A + 1));
    for (int l = 0; l < g_p.n_layers; l++) {
        const packed_layer *L = &g_p.layers[l];
        int64_t tot = 0;
        for (int a = 0; a <= A; a++) tot += h[(size_t)l * (A + 1) + a];
        int64_t pos = L->kind == NET_CONV ? (int64_t)L->in_h * L->in_w : 1, K = (L->fan_in + A - 1) / A;
        assert_true(tot == (capmin_eligible(&g_p, l) ? (int64_t)d.n * pos * L->out_c * K : 0));
        /* the window of q levels holds at least as much as any other */
        if (!capmin_eligible(&g_p, l)) continue;
        const int64_t *hl = h + (size_t)l * (A + 1);
        for (int q = 1; q <= A + 1; q += 5) {
            int lo = capmin_window(hl, A, q);
            int64_t best = 0, m;
            for (int a = lo; a < lo + q; a++) best += hl[a];
            for (int s = 0; s + q <= A + 1; s++) {
                m = 0;
                for (int a = s; a < s + q; a++) m += hl[a];
                assert_true(m <= best);
            }
        }
    }
    free(h), free(h1);
}

static void test_clipping_and_noise(void **state) {
    (void)state;
    int A = 32, lo[NET_MAX_LAYERS] = {0}, hi[NET_MAX_LAYERS] = {0};
    int64_t *h = calloc((size_t)g_p.n_layers * (A + 1), sizeof(int64_t));
    dataset d = data_slice(&g_train, 0, 500);
    assert_int_equal(capmin_histogram(&g_p, A, &d, 2, h), BN_OK);
    double full = exact_acc(), acc1, acc2, accn1, accn2;
    for (int l = 1; l < g_p.n_layers; l++) lo[l] = capmin_window(h + (size_t)l * (A + 1), A, 1), hi[l] = lo[l];
    assert_int_equal(capmin_accuracy(&g_p, A, lo, hi, 0, 0.0, 1, &g_small, 2, &acc1), BN_OK);
    assert_true(acc1 < full - 0.05); /* one level: the network collapses */
    for (int l = 1; l < g_p.n_layers; l++) lo[l] = capmin_window(h + (size_t)l * (A + 1), A, 17), hi[l] = lo[l] + 16;
    assert_int_equal(capmin_accuracy(&g_p, A, lo, hi, 0, 0.0, 1, &g_small, 2, &acc2), BN_OK);
    assert_true(acc2 > full - 0.05);
    assert_int_equal(capmin_accuracy(&g_p, A, lo, hi, 0, 0.2, 9, &g_small, 2, &accn2), BN_OK);
    assert_int_equal(capmin_accuracy(&g_p, A, lo, hi, 0, 0.2, 9, &g_small, 1, &accn1), BN_OK);
    assert_true(accn1 == accn2);
    lo[1] = 30, hi[1] = 29;
    assert_int_equal(capmin_accuracy(&g_p, A, lo, hi, 0, 0.0, 1, &g_small, 2, &acc1), BN_EARG);
    free(h);
}

static void test_capacitor_model(void **state) {
    (void)state;
    capmin_circuit c;
    assert_int_equal(capmin_circuit_default(&c), BN_OK);
    for (int p = 0; p < 32; p++) {
        assert_true(capmin_g(&c, p) > capmin_g(&c, p + 1));
        if (p < 31) assert_true(capmin_g(&c, p) - capmin_g(&c, p + 1) > capmin_g(&c, p + 1) - capmin_g(&c, p + 2));
    }
    double full = capmin_min_gap(&c, 0, 32, 1);
    assert_true(fabs(full - (capmin_g(&c, 31) - capmin_g(&c, 32))) < 1e-15);
    assert_true(capmin_min_gap(&c, 10, 20, 1) > full);
    assert_true(isinf(capmin_min_gap(&c, 7, 7, 1)));
    assert_true(capmin_capacitance(&c, INFINITY) == 0.0);
    /* C = D / (R gap): twice the clock, twice the capacitor */
    capmin_circuit c2 = c;
    c2.clock *= 2;
    assert_true(capmin_capacitance(&c2, full) == 2 * capmin_capacitance(&c, full));
    /* eps with guard: Q((g+1) Qinv(eps0)) */
    assert_true(fabs(capmin_eps_guard(0.05, 0) - 0.05) < 1e-9);
    assert_true(fabs(capmin_eps_guard(0.158655253931457, 1) - 0.0227501319481792) < 1e-9); /* Q(1) -> Q(2) */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capacitor_model),
        cmocka_unit_test(test_full_window_exact),
        cmocka_unit_test(test_histogram_counts),
        cmocka_unit_test(test_clipping_and_noise),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
