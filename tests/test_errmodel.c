/*
** Error-model driver (engine/errmodel.h): rate 0 and exact chunks reproduce
** packed_logits bit for bit; weight-only models flip the same bits as
** fault_evaluate; results do not depend on the thread count; the two-binomial
** product-error simulation matches explicit per-product flipping in
** distribution (two-sample chi-square on the classifier accumulator, fixed
** seeds); activation flips at rate 1 invert every hidden bit.
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

#include "engine/chunk.h"
#include "engine/err.h"
#include "engine/errmodel.h"
#include "engine/fault.h"
#include "engine/packed.h"
#include "engine/parallel.h"
#include "engine/trace.h"
#include "engine/train.h"
#include "tests/testutil.h"

static dataset g_train, g_test;
static net g_fc, g_cnn;
static packed_net g_pfc, g_pcnn;

static int train_small(net *n, const char *topo, int n_train, uint64_t seed) {
    return train_small_on(n, &g_train, topo, n_train, seed);
}

static int setup(void **state) {
    (void)state;
    if (load_fashion_mnist(&g_train, &g_test)) return -1;
    if (train_small(&g_fc, "FC256-FC128", sanitized() ? 2000 : 6000, 11)) return -1;
    if (train_small(&g_cnn, "C8-MP2-C16-MP2-FC32", sanitized() ? 1000 : 2000, 12)) return -1;
    if (packed_from_net(&g_pfc, &g_fc) || packed_from_net(&g_pcnn, &g_cnn)) return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    packed_free(&g_pfc), packed_free(&g_pcnn);
    net_free(&g_fc), net_free(&g_cnn);
    data_free(&g_train), data_free(&g_test);
    return 0;
}

static int n_images(void) { return sanitized() ? 60 : 400; }

/* Exact chunks (no callback) and zero rates: the hooked driver equals packed_logits. */
static void test_clean_equals_fast(void **state) {
    (void)state;
    const packed_net *nets[2] = {&g_pfc, &g_pcnn};
    int B = n_images();
    float *a = malloc(sizeof(float) * B * 10), *b = malloc(sizeof(float) * B * 10);
    for (int k = 0; k < 2; k++) {
        const packed_net *p = nets[k];
        packed_logits(p, a, g_test.pixels, B);
        errmodel m;
        errmodel_zero(&m);
        assert_int_equal(errmodel_needs_driver(p, &m), 0);
        assert_int_equal(errmodel_logits(p, &m, 3, 0, b, g_test.pixels, B), BN_OK);
        assert_memory_equal(a, b, sizeof(float) * B * 10);
        for (int chunk = 1; chunk <= 100; chunk += 33) {
            errmodel_zero(&m);
            for (int l = 1; l < p->n_layers; l++) m.layer[l].chunk = chunk;
            assert_int_equal(errmodel_needs_driver(p, &m), 1);
            memset(b, 0, sizeof(float) * B * 10);
            assert_int_equal(errmodel_logits(p, &m, 3, 0, b, g_test.pixels, B), BN_OK);
            assert_memory_equal(a, b, sizeof(float) * B * 10);
        }
        /* activation rate 0 with the driver forced by exact chunks in the classifier only */
        errmodel_zero(&m);
        m.layer[p->n_layers - 1].chunk = 7;
        errmodel_set_products(&m, 0.0, 0.0);
        assert_int_equal(errmodel_logits(p, &m, 3, 0, b, g_test.pixels, B), BN_OK);
        assert_memory_equal(a, b, sizeof(float) * B * 10);
    }
    free(a), free(b);
}

/* The plain decision rule as a decide_fn: ((sum of the chunks) >= T) ^ inv. */
static int plain_decide(void *user, int l, int neuron, const int32_t *v, int n_chunks, int32_t T, int inv,
                        pcg32 *rng) {
    (void)user, (void)l, (void)neuron, (void)rng;
    int64_t sum = 0;
    for (int k = 0; k < n_chunks; k++) sum += v[k];
    return (sum >= T) ^ inv;
}

/* Decided bits of a pooled conv layer with negative batch-norm gammas: the
   pool is the max of the un-inverted decisions, then the invert bit (an AND of
   the output bits where gamma < 0), exactly as packed inference and the
   chunked driver (engine/chunk.h) do. */
static void test_decide_pool_negative_gamma(void **state) {
    (void)state;
    net n;
    assert_int_equal(net_copy(&n, &g_cnn), BN_OK);
    int l = 1; /* C16 after C8-MP2: binary input, 2x2 max-pool */
    assert_int_equal(n.layers[l].kind, NET_CONV);
    assert_true(n.layers[l].pool);
    for (int c = 0; c < n.layers[l].out_c; c += 2) n.layers[l].gamma[c] = -n.layers[l].gamma[c];
    packed_net p;
    assert_int_equal(packed_from_net(&p, &n), BN_OK);
    int inverted = 0;
    for (int c = 0; c < p.layers[l].out_c; c++) inverted += (int)((p.layers[l].inv[c / 64] >> (c % 64)) & 1u);
    assert_true(inverted > 0);
    int B = n_images();
    float *want = malloc(sizeof(float) * B * 10), *got = malloc(sizeof(float) * B * 10);
    packed_logits(&p, want, g_test.pixels, B);
    errmodel m;
    errmodel_zero(&m);
    m.layer[l].chunk = 16;
    m.layer[l].decide_fn = plain_decide;
    assert_int_equal(errmodel_logits(&p, &m, 3, 0, got, g_test.pixels, B), BN_OK);
    assert_memory_equal(want, got, sizeof(float) * B * 10);
    /* the chunked-sum driver with the identity agrees */
    chunk_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.n[l] = 16;
    chunk_plan cp;
    assert_int_equal(chunk_plan_create(&cp, &p, &cfg), BN_OK);
    chunk_logits(&cp, got, g_test.pixels, B, 2);
    assert_memory_equal(want, got, sizeof(float) * B * 10);
    chunk_plan_free(&cp);
    free(want), free(got);
    packed_free(&p);
    net_free(&n);
}

/* A weight-only model flips the bits fault_evaluate flips (same seed, same repeat). */
static void test_weights_match_fault(void **state) {
    (void)state;
    const net *nets[2] = {&g_fc, &g_cnn};
    const packed_net *pn[2] = {&g_pfc, &g_pcnn};
    dataset d = data_slice(&g_test, 0, n_images());
    for (int k = 0; k < 2; k++) {
        fault_model fm;
        fault_model_zero(&fm);
        fault_model_set(&fm, FAULT_WEIGHTS, 0.03, 0.08);
        errmodel m;
        errmodel_zero(&m);
        errmodel_set_weights(&m, 0.03, 0.08);
        double fa[3], ea[3];
        fault_stats fs, es;
        assert_int_equal(fault_evaluate(nets[k], &d, &fm, 3, 42, 2, &fs, fa), BN_OK);
        assert_int_equal(errmodel_evaluate(pn[k], &m, &d, 3, 42, 2, &es, ea), BN_OK);
        for (int r = 0; r < 3; r++) assert_true(fa[r] == ea[r]);
        /* inverted storage with swapped rates is the same as direct storage */
        errmodel mi;
        errmodel_zero(&mi);
        errmodel_set_weights(&mi, 0.08, 0.03);
        for (int l = 0; l < NET_MAX_LAYERS; l++) mi.layer[l].w_invert = 1;
        assert_int_equal(errmodel_evaluate(pn[k], &mi, &d, 3, 42, 2, &es, ea), BN_OK);
        for (int r = 0; r < 3; r++) assert_true(fa[r] == ea[r]);
    }
}

/* Same results on 1 and 2 threads, with every per-image place active. */
static void test_thread_independent(void **state) {
    (void)state;
    const packed_net *nets[2] = {&g_pfc, &g_pcnn};
    int B = n_images();
    float *a = malloc(sizeof(float) * B * 10), *b = malloc(sizeof(float) * B * 10);
    for (int k = 0; k < 2; k++) {
        errmodel m;
        errmodel_zero(&m);
        errmodel_set_weights(&m, 0.01, 0.02);
        errmodel_set_products(&m, 0.02, 0.05);
        errmodel_set_activations(&m, 0.01, 0.03);
        assert_int_equal(errmodel_logits_at(nets[k], &m, 9, 2, a, g_test.pixels, B, 0, 1), BN_OK);
        assert_int_equal(errmodel_logits_at(nets[k], &m, 9, 2, b, g_test.pixels, B, 0, 2), BN_OK);
        assert_memory_equal(a, b, sizeof(float) * B * 10);
        /* another repeat differs */
        assert_int_equal(errmodel_logits_at(nets[k], &m, 9, 3, b, g_test.pixels, B, 0, 2), BN_OK);
        assert_true(memcmp(a, b, sizeof(float) * B * 10) != 0);
    }
    free(a), free(b);
}

/* Activation rate 1 (both directions) inverts every hidden bit: compare with
   a trace whose bit hook inverts. */
static void invert_hook(void *user, int l, const packed_layer *L, uint64_t *bits, int P) {
    (void)user, (void)l;
    for (int q = 0; q < P; q++)
        for (int n = 0; n < L->out_c; n++) bits[(size_t)q * L->out_cw + n / 64] ^= (uint64_t)1 << (n % 64);
}

static void test_activation_rate_one(void **state) {
    (void)state;
    const packed_net *p = &g_pcnn;
    errmodel m;
    errmodel_zero(&m);
    errmodel_set_activations(&m, 1.0, 1.0);
    int B = 20;
    float *a = malloc(sizeof(float) * B * 10);
    assert_int_equal(errmodel_logits(p, &m, 1, 0, a, g_test.pixels, B), BN_OK);
    trace_scratch s;
    trace_scratch_init(&s, p);
    int32_t z[10];
    trace_hooks h = {NULL, NULL, invert_hook, NULL};
    for (int i = 0; i < B; i++) {
        trace_forward(p, &s, g_test.pixels + (size_t)i * 784, &h, z);
        for (int c = 0; c < 10; c++) assert_true(a[i * 10 + c] == p->scale * (float)z[c]);
    }
    trace_scratch_free(&s);
    free(a);
}

/* ---- Binomial products vs explicit per-product flipping ---- */

/* Hidden bits (P=1) captured by a trace for the classifier's input. */
typedef struct {
    uint64_t bits[8];
    int last_hidden;
} capture;

static void capture_hook(void *user, int l, const packed_layer *L, uint64_t *bits, int P) {
    capture *c = user;
    (void)P;
    if (l == c->last_hidden) memcpy(c->bits, bits, sizeof(uint64_t) * L->out_cw);
}

/* Two-sample chi-square statistic over bins with at least 5 expected counts
   (merging the tails); returns the statistic and its degrees of freedom. */
static double chi2_two_sample(const long *a, const long *b, int nbins, long na, long nb, int *df) {
    double stat = 0;
    int bins = 0;
    long ca = 0, cb = 0;
    for (int i = 0; i < nbins; i++) {
        ca += a[i], cb += b[i];
        if (ca + cb >= 20 || i == nbins - 1) {
            if (ca + cb > 0) {
                double ka = sqrt((double)nb / na), kb = sqrt((double)na / nb);
                double d = ka * ca - kb * cb;
                stat += d * d / (double)(ca + cb);
                bins++;
            }
            ca = cb = 0;
        }
    }
    *df = bins - 1;
    return stat;
}

static void test_products_match_explicit(void **state) {
    (void)state;
    const packed_net *p = &g_pfc; /* FC256-FC128-FC10: the classifier has N = 128 products */
    const packed_layer *L = &p->layers[p->n_layers - 1];
    const double p01 = 0.04, p10 = 0.09;
    int draws = sanitized() ? 1500 : 6000, image = 5;
    const uint8_t *img = g_test.pixels + (size_t)image * 784;
    /* explicit: the classifier's products of class 0 from the traced input bits */
    capture cap = {{0}, p->n_layers - 2};
    trace_scratch s;
    trace_scratch_init(&s, p);
    int32_t z[10];
    trace_forward(p, &s, img, &(trace_hooks){NULL, NULL, capture_hook, &cap}, z);
    trace_scratch_free(&s);
    int N = L->fan_in, lo = -N;
    long *ha = calloc((size_t)2 * N + 1, sizeof(long)), *hb = calloc((size_t)2 * N + 1, sizeof(long));
    pcg32 g;
    rng_keyed(&g, 2024, 0, 99);
    int32_t clean = 0;
    for (int i = 0; i < N; i++) {
        int a = (int)((cap.bits[i / 64] >> (i % 64)) & 1u), w = (int)((L->w[i / 64] >> (i % 64)) & 1u);
        clean += a == w ? 1 : -1;
    }
    assert_int_equal(clean, z[0]);
    double meana = 0, meanb = 0;
    for (int d = 0; d < draws; d++) {
        int32_t acc = 0;
        for (int i = 0; i < N; i++) {
            int a = (int)((cap.bits[i / 64] >> (i % 64)) & 1u), w = (int)((L->w[i / 64] >> (i % 64)) & 1u);
            int prod = a == w ? 1 : -1;
            double u = pcg32_double(&g);
            if (prod > 0 && u < p10) prod = -1;
            else if (prod < 0 && u < p01) prod = 1;
            acc += prod;
        }
        ha[acc - lo]++, meana += acc;
    }
    /* binomial: the driver, products only in the classifier, one repeat per draw */
    errmodel m;
    errmodel_zero(&m);
    m.layer[p->n_layers - 1].x_p01 = p01, m.layer[p->n_layers - 1].x_p10 = p10;
    float logits[10];
    for (int d = 0; d < draws; d++) {
        assert_int_equal(errmodel_logits_at(p, &m, 77, d, logits, img, 1, 0, 1), BN_OK);
        int32_t acc = (int32_t)lrintf(logits[0] / p->scale);
        assert_true(acc >= -N && acc <= N);
        hb[acc - lo]++, meanb += acc;
    }
    meana /= draws, meanb /= draws;
    int P = (clean + N) / 2;
    double expect = clean - 2.0 * P * p10 + 2.0 * (N - P) * p01;
    int df;
    double chi = chi2_two_sample(ha, hb, 2 * N + 1, draws, draws, &df);
    /* 99.9% quantile of chi-square: df + 3.1*sqrt(2 df) + 5 is a safe upper bound for df in 5..60 */
    double crit = df + 3.1 * sqrt(2.0 * df) + 5;
    fprintf(stderr, "products: clean %d, mean explicit %.3f binomial %.3f expected %.3f, chi2 %.1f df %d (crit %.1f)\n",
            clean, meana, meanb, expect, chi, df, crit);
    assert_true(df >= 5);
    assert_true(chi < crit);
    assert_true(fabs(meanb - expect) < 0.25);
    assert_true(fabs(meana - expect) < 0.25);
    free(ha), free(hb);
}

/* The binomial sampler with the power table equals pcg32_binomial draw for draw. */
static void test_binomial_table(void **state) {
    (void)state;
    double pw[201];
    for (int k = 0; k <= 200; k++) pw[k] = pow(1.0 - 0.03, (double)k);
    pcg32 a, b;
    rng_keyed(&a, 1, 2, 3), rng_keyed(&b, 1, 2, 3);
    for (int i = 0; i < 5000; i++) {
        uint32_t n = (uint32_t)(i % 201);
        assert_int_equal(errmodel_binomial(&a, n, 0.03, pw), pcg32_binomial(&b, n, 0.03));
    }
}

static void test_check_rejects(void **state) {
    (void)state;
    errmodel m;
    errmodel_zero(&m);
    m.layer[1].x_p10 = 1.5;
    assert_int_equal(errmodel_check(&g_pfc, &m), BN_EARG);
    errmodel_zero(&m);
    m.layer[0].chunk = 8;
    assert_int_equal(errmodel_check(&g_pfc, &m), BN_EARG);
    errmodel_zero(&m);
    m.layer[1].chunk = -1;
    assert_int_equal(errmodel_check(&g_pfc, &m), BN_EARG);
}

/* Training with XNOR product errors: identical on 1 and 2 threads, and
   different from training without them. */
static int train_xnor(net *n, float p, int threads) {
    arch a;
    if (arch_parse(&a, "C4-MP2-FC32") || net_create(n, &a, 1, 28, 28, 10)) return -1;
    pcg32 g;
    rng_keyed(&g, 3, 0, RNG_INIT);
    net_init_params(n, &g);
    train_recipe r = train_recipe_default();
    r.epochs = 1, r.batch = 100, r.seed = 3;
    r.xnor_p01 = p, r.xnor_p10 = p;
    dataset tr = data_slice(&g_train, 0, sanitized() ? 300 : 1000);
    par_set_threads(threads);
    int rc = train_recipe_run(n, &tr, NULL, &r, NULL, NULL);
    par_set_threads(2);
    return rc;
}

static void test_train_xnor(void **state) {
    (void)state;
    net a, b, c;
    assert_int_equal(train_xnor(&a, 0.05f, 1), BN_OK);
    assert_int_equal(train_xnor(&b, 0.05f, 2), BN_OK);
    assert_int_equal(train_xnor(&c, 0.0f, 2), BN_OK);
    assert_memory_equal(a.params, b.params, sizeof(float) * a.n_params);
    assert_true(memcmp(a.params, c.params, sizeof(float) * a.n_params) != 0);
    train_recipe bad = train_recipe_default();
    bad.xnor_p10 = 2.0f;
    dataset tr = data_slice(&g_train, 0, 10);
    assert_int_equal(train_recipe_run(&c, &tr, NULL, &bad, NULL, NULL), BN_EARG);
    net_free(&a), net_free(&b), net_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_equals_fast),      cmocka_unit_test(test_decide_pool_negative_gamma),      cmocka_unit_test(test_weights_match_fault),
        cmocka_unit_test(test_thread_independent),     cmocka_unit_test(test_activation_rate_one),
        cmocka_unit_test(test_products_match_explicit), cmocka_unit_test(test_binomial_table),
        cmocka_unit_test(test_check_rejects),          cmocka_unit_test(test_train_xnor),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
