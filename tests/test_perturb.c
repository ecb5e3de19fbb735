/*
** The training-time perturbation hooks (engine/perturb.h) on plain arrays:
** weight flips (their mask, rates 0 and 1, the naive backward against a
** finite difference of the forward map), XNOR product errors (the keyed
** per-row draw of errmodel_product_errors, parity and range, the first layer
** untouched, the expected shift), activation flips (rates 0 and 1, the first
** layer untouched), thread-count independence, and eval_perturbs' order and
** errors.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/arch.h"
#include "engine/err.h"
#include "engine/errmodel.h"
#include "engine/net.h"
#include "engine/parallel.h"
#include "engine/perturb.h"
#include "engine/rng.h"
#include "engine/train.h"
#include "evaluators/evaluator.h"
#include "tests/testutil.h"

static void make_net(net *n, const char *topo) {
    arch a;
    assert_int_equal(arch_parse(&a, topo), BN_OK);
    assert_int_equal(net_create(n, &a, 1, 28, 28, 10), BN_OK);
    pcg32 g;
    rng_keyed(&g, 3, 0, RNG_INIT);
    net_init_params(n, &g);
}

/* The one hook of r's single perturbation of the given kind. */
static perturb only_hook(const train_recipe *r) {
    perturb_set ps;
    assert_int_equal(eval_perturbs(r, &ps), BN_OK);
    assert_int_equal(ps.n, 1);
    return ps.h[0];
}

/* ---- Weight flips ---- */

static void test_weight_flips(void **state) {
    (void)state;
    net n;
    make_net(&n, "FC32");
    const net_layer *L = &n.layers[1]; /* the classifier: 10 x 32 */
    int nw = L->out_c * L->fan_in;
    float *wb = malloc(sizeof(float) * nw), *w0 = malloc(sizeof(float) * nw);
    uint8_t *m = malloc(nw);
    for (int i = 0; i < nw; i++) w0[i] = net_sign(L->w[i]);
    train_recipe r = train_recipe_default();
    r.flip = FLIP_STE, r.p01 = 0.2f, r.p10 = 0.4f, r.seed = 11;
    perturb h = only_hook(&r);
    assert_non_null(h.weights);
    assert_null(h.weights_backward); /* STE: the gradient ignores the flips */
    perturb_site s = {1, L, 4, 4, 5, NULL, NULL};
    memcpy(wb, w0, sizeof(float) * nw);
    h.weights(&h, &s, wb, m);
    int flips = 0;
    for (int i = 0; i < nw; i++) {
        assert_true(wb[i] == (m[i] ? -w0[i] : w0[i]));
        flips += m[i];
    }
    assert_true(flips > 0 && flips < nw);
    /* the same (seed, step, layer): the same flips; another step: others */
    float *wb2 = malloc(sizeof(float) * nw);
    uint8_t *m2 = malloc(nw);
    memcpy(wb2, w0, sizeof(float) * nw);
    h.weights(&h, &s, wb2, m2);
    assert_memory_equal(m, m2, nw);
    s.step = 6;
    memcpy(wb2, w0, sizeof(float) * nw);
    h.weights(&h, &s, wb2, m2);
    assert_memory_not_equal(m, m2, nw);
    /* rates 0: no flips and a clean mask; rates 1: every weight flips */
    r.p01 = r.p10 = 0.0f;
    memset(m2, 1, nw);
    memcpy(wb2, w0, sizeof(float) * nw);
    h.weights(&h, &s, wb2, m2);
    for (int i = 0; i < nw; i++) assert_true(m2[i] == 0 && wb2[i] == w0[i]);
    r.p01 = r.p10 = 1.0f;
    h.weights(&h, &s, wb2, m2);
    for (int i = 0; i < nw; i++) assert_true(m2[i] == 1 && wb2[i] == -w0[i]);
    /* no flip training: no hook */
    r.flip = FLIP_NONE;
    perturb_set ps;
    assert_int_equal(eval_perturbs(&r, &ps), BN_OK);
    assert_int_equal(ps.n, 0);
    free(wb), free(w0), free(m), free(wb2), free(m2);
    net_free(&n);
}

/* Naive flip training passes the gradient through the flips. For a fixed
   draw the forward map is wf_i = +-wb_i (the flip depends on the sign of wb_i
   only), so for L(wf) = sum_i c_i wf_i the central difference in wb_i must
   equal the backward of dL/dwf = c. */
static void test_naive_backward_matches_finite_difference(void **state) {
    (void)state;
    net n;
    make_net(&n, "FC16");
    const net_layer *L = &n.layers[1];
    int nw = L->out_c * L->fan_in;
    train_recipe r = train_recipe_default();
    r.flip = FLIP_NAIVE, r.p01 = 0.3f, r.p10 = 0.3f, r.seed = 5;
    perturb h = only_hook(&r);
    assert_non_null(h.weights_backward);
    perturb_site s = {1, L, 1, 1, 9, NULL, NULL};
    float *wb = malloc(sizeof(float) * nw), *c = malloc(sizeof(float) * nw), *dw = malloc(sizeof(float) * nw);
    uint8_t *m = malloc(nw), *m2 = malloc(nw);
    pcg32 g;
    rng_keyed(&g, 1, 0, 99);
    for (int i = 0; i < nw; i++) wb[i] = net_sign(L->w[i]), c[i] = (float)pcg32_double(&g) - 0.5f;
    float *tmp = malloc(sizeof(float) * nw);
    memcpy(tmp, wb, sizeof(float) * nw);
    h.weights(&h, &s, tmp, m);
    memcpy(dw, c, sizeof(float) * nw);
    h.weights_backward(&h, &s, dw, m);
    const double eps = 1e-2;
    int through = 0;
    for (int i = 0; i < nw; i++) {
        double lp = 0, lm = 0;
        for (int sgn = -1; sgn <= 1; sgn += 2) {
            memcpy(tmp, wb, sizeof(float) * nw);
            tmp[i] += (float)(sgn * eps);
            h.weights(&h, &s, tmp, m2);
            assert_memory_equal(m, m2, nw); /* the same draw */
            double sum = 0;
            for (int k = 0; k < nw; k++) sum += (double)c[k] * tmp[k];
            if (sgn > 0) lp = sum;
            else lm = sum;
        }
        double fd = (lp - lm) / (2 * eps);
        assert_true(fabs(fd - dw[i]) < 1e-4);
        through += m[i];
    }
    assert_true(through > 0); /* some gradients were negated */
    free(wb), free(c), free(dw), free(m), free(m2), free(tmp);
    net_free(&n);
}

/* ---- XNOR product errors ---- */

static void check_xnor(const char *topo) {
    net n;
    make_net(&n, topo);
    const net_layer *L = &n.layers[1]; /* a hidden or classifier layer with binary inputs */
    int B = 3, rows = L->kind == NET_CONV ? B * L->in_h * L->in_w : B, hw = L->in_h * L->in_w;
    size_t nz = (size_t)rows * L->out_c;
    train_recipe r = train_recipe_default();
    r.xnor_p01 = 0.05f, r.xnor_p10 = 0.2f, r.seed = 21;
    perturb h = only_hook(&r);
    assert_non_null(h.acc);
    float *z = malloc(sizeof(float) * nz), *z0 = malloc(sizeof(float) * nz), *z1 = malloc(sizeof(float) * nz);
    int *N = malloc(sizeof(int) * rows);
    pcg32 g;
    rng_keyed(&g, 4, 0, 99);
    for (int i = 0; i < rows; i++) {
        N[i] = L->kind == NET_CONV ? errmodel_valid_taps(i % hw / L->in_w, i % hw % L->in_w, L->in_h, L->in_w) * L->in_c
                                   : L->fan_in;
        for (int o = 0; o < L->out_c; o++) /* an accumulator of N +-1 products */
            z0[(size_t)i * L->out_c + o] = (float)(2 * (int)pcg32_bounded(&g, (uint32_t)N[i] + 1) - N[i]);
    }
    perturb_site s = {1, L, B, rows, 3, NULL, NULL};
    memcpy(z, z0, sizeof(float) * nz);
    par_set_threads(1);
    h.acc(&h, &s, z);
    memcpy(z1, z0, sizeof(float) * nz);
    par_set_threads(2);
    h.acc(&h, &s, z1);
    assert_memory_equal(z, z1, sizeof(float) * nz); /* thread-count independent */
    /* the reference: each row's stream (seed, step, row, layer), errmodel_product_errors per neuron */
    long changed = 0;
    for (int i = 0; i < rows; i++) {
        pcg32 rg;
        rng_keyed(&rg, r.seed, s.step << 40 | (uint64_t)i << 8 | 1u, RNG_ACT);
        for (int o = 0; o < L->out_c; o++) {
            size_t k = (size_t)i * L->out_c + o;
            int32_t want = errmodel_product_errors(&rg, (int32_t)z0[k], N[i], r.xnor_p01, r.xnor_p10, NULL, NULL);
            assert_true(z[k] == (float)want);
            assert_true(fabsf(z[k]) <= (float)N[i] && ((int)z[k] - (int)z0[k]) % 2 == 0);
            changed += z[k] != z0[k];
        }
    }
    assert_true(changed > 0);
    /* the first layer (pixel products) is never touched */
    s.l = 0, s.L = &n.layers[0];
    int rows0 = n.layers[0].kind == NET_CONV ? B * 28 * 28 : B;
    size_t n0 = (size_t)rows0 * n.layers[0].out_c;
    float *f = calloc(n0, sizeof(float));
    s.rows = rows0;
    h.acc(&h, &s, f);
    for (size_t i = 0; i < n0; i++) assert_true(f[i] == 0.0f);
    free(f), free(z), free(z0), free(z1), free(N);
    net_free(&n);
}

static void test_xnor_errors(void **state) {
    (void)state;
    check_xnor("FC64");       /* the classifier, N = 64 */
    check_xnor("C4-C4-FC16"); /* a conv layer: fewer products at the border */
}

/* The mean shift over many rows: E[z' - z] = 2 (N - P) p01 - 2 P p10. */
static void test_xnor_expected_shift(void **state) {
    (void)state;
    net n;
    make_net(&n, "FC100");
    const net_layer *L = &n.layers[1]; /* 10 x 100 */
    int rows = 2000, P = 70;
    size_t nz = (size_t)rows * L->out_c;
    train_recipe r = train_recipe_default();
    r.xnor_p01 = 0.1f, r.xnor_p10 = 0.05f;
    perturb h = only_hook(&r);
    float *z = malloc(sizeof(float) * nz);
    for (size_t i = 0; i < nz; i++) z[i] = (float)(2 * P - 100);
    perturb_site s = {1, L, rows, rows, 1, NULL, NULL};
    h.acc(&h, &s, z);
    double mean = 0;
    for (size_t i = 0; i < nz; i++) mean += z[i] - (2 * P - 100);
    mean /= (double)nz;
    double want = 2 * (100 - P) * 0.1 - 2 * P * 0.05; /* 6 - 7 = -1 */
    double sd = sqrt(4 * ((100 - P) * 0.1 * 0.9 + P * 0.05 * 0.95) / (double)nz);
    print_message("XNOR shift: mean %.4f, expected %.4f (sd %.4f)\n", mean, want, sd);
    assert_true(fabs(mean - want) < 5 * sd);
    free(z);
    net_free(&n);
}

/* ---- Activation flips ---- */

static void test_act_flips(void **state) {
    (void)state;
    net n;
    make_net(&n, "FC64-FC32");
    int B = 300;
    train_recipe r = train_recipe_default();
    r.act_p01 = 1.0f, r.act_p10 = 0.0f, r.seed = 2;
    perturb h = only_hook(&r);
    assert_non_null(h.act);
    size_t na = (size_t)B * 32;
    float *a = malloc(sizeof(float) * na), *b = malloc(sizeof(float) * na);
    for (size_t i = 0; i < na; i++) a[i] = i % 3 ? 1.0f : -1.0f;
    perturb_site s = {1, &n.layers[1], B, B, 4, NULL, NULL};
    memcpy(b, a, sizeof(float) * na);
    assert_int_equal(h.act(&h, &s, b), BN_OK);
    for (size_t i = 0; i < na; i++) assert_true(b[i] == 1.0f); /* every -1 reads +1, no +1 changes */
    /* a rate in between: thread-count independent, some flips, the first layer untouched */
    r.act_p01 = r.act_p10 = 0.1f;
    float *c = malloc(sizeof(float) * na);
    memcpy(b, a, sizeof(float) * na), memcpy(c, a, sizeof(float) * na);
    par_set_threads(1);
    h.act(&h, &s, b);
    par_set_threads(2);
    h.act(&h, &s, c);
    assert_memory_equal(b, c, sizeof(float) * na);
    long flips = 0;
    for (size_t i = 0; i < na; i++) flips += b[i] != a[i];
    assert_true(flips > (long)na / 20 && flips < (long)na / 5);
    s.l = 0, s.L = &n.layers[0];
    size_t n0 = (size_t)B * 64;
    float *f = malloc(sizeof(float) * n0);
    for (size_t i = 0; i < n0; i++) f[i] = -1.0f;
    h.act(&h, &s, f);
    for (size_t i = 0; i < n0; i++) assert_true(f[i] == -1.0f);
    free(a), free(b), free(c), free(f);
    net_free(&n);
}

/* ---- The set of a recipe ---- */

static void test_eval_perturbs_order_and_errors(void **state) {
    (void)state;
    train_recipe r = train_recipe_default();
    perturb_set ps;
    r.flip = FLIP_NAIVE, r.p01 = r.p10 = 0.01f;
    r.xnor_p01 = 0.01f, r.lta_n = 16, r.act_p10 = 0.01f;
    assert_int_equal(eval_perturbs(&r, &ps), BN_OK);
    assert_int_equal(ps.n, 4); /* weight flips, XNOR errors, LTA, activation flips */
    assert_true(ps.h[0].weights && ps.h[0].weights_backward && !ps.h[0].acc && !ps.h[0].act);
    assert_true(ps.h[1].acc && !ps.h[1].weights && !ps.h[1].act);
    assert_true(ps.h[2].act && !ps.h[2].weights && !ps.h[2].acc);
    assert_true(ps.h[3].act && !ps.h[3].weights && !ps.h[3].acc);
    assert_ptr_equal(ps.h[3].user, &r);
    train_recipe bad = r;
    bad.xnor_p10 = -0.5f;
    assert_int_equal(eval_perturbs(&bad, &ps), BN_EARG);
    assert_non_null(strstr(bn_errmsg(), "XNOR"));
    bad = r, bad.lta_n = -1;
    assert_int_equal(eval_perturbs(&bad, &ps), BN_EARG);
    assert_non_null(strstr(bn_errmsg(), "lta_n"));
    bad = r, bad.act_p01 = 2.0f;
    assert_int_equal(eval_perturbs(&bad, &ps), BN_EARG);
    assert_non_null(strstr(bn_errmsg(), "activation"));
    bad = r, bad.flip_rows = 2, bad.flip_t[0] = 5, bad.flip_t[1] = 5;
    assert_int_equal(eval_perturbs(&bad, &ps), BN_EARG);
    assert_non_null(strstr(bn_errmsg(), "does not increase"));
    perturb_set full = {0};
    perturb h = {0};
    for (int i = 0; i < PERTURB_MAX; i++) assert_int_equal(perturb_add(&full, &h), BN_OK);
    assert_int_equal(perturb_add(&full, &h), BN_EARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weight_flips),
        cmocka_unit_test(test_naive_backward_matches_finite_difference),
        cmocka_unit_test(test_xnor_errors),
        cmocka_unit_test(test_xnor_expected_shift),
        cmocka_unit_test(test_act_flips),
        cmocka_unit_test(test_eval_perturbs_order_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
