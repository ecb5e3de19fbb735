/*
** Fault injection: the sparse nested draw equals its dense twin, flip counts
** are binomial (separately for 0->1 and 1->0), flips at a lower rate are a
** subset of those at a higher rate, rate 0 reproduces clean predictions,
** rate 1 inverts every weight (or threshold) bit, the same seed reproduces,
** the thread count does not matter, and the packed model with flips predicts
** exactly like the float path with the same flips, on briefly trained
** FashionMNIST networks. The delta path (incremental first layer) predicts
** exactly like the dense path for every error model, and its kernels equal
** their reference twins.
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

#include "engine/err.h"
#include "engine/fault.h"
#include "engine/fault_delta.h"
#include "engine/packed.h"
#include "engine/train.h"
#include "tests/testutil.h"

static dataset g_train, g_test;
static net g_fc, g_cnn;

static int train_small(net *n, const char *topo, int n_train, uint64_t seed) {
    return train_small_on(n, &g_train, topo, n_train, seed);
}

static int setup(void **state) {
    (void)state;
    if (load_fashion_mnist(&g_train, &g_test)) return -1;
    if (train_small(&g_fc, "FC256-FC128", sanitized() ? 3000 : 8000, 5)) return -1;
    if (train_small(&g_cnn, "C8-MP2-C16-MP2-FC32", sanitized() ? 1000 : 2000, 6)) return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    net_free(&g_fc), net_free(&g_cnn);
    data_free(&g_train), data_free(&g_test);
    return 0;
}

static void random_words(pcg32 *g, uint64_t *w, size_t n) {
    for (size_t i = 0; i < n; i++) w[i] = (uint64_t)pcg32_next(g) << 32 | pcg32_next(g);
}

/* ---- The draw ---- */

static void test_sparse_equals_dense(void **state) {
    (void)state;
    pcg32 g;
    rng_keyed(&g, 1, 0, 77);
    size_t rows = 37;
    int kw = 3;
    uint64_t src[37 * 3], valid[3] = {~(uint64_t)0, 0x00ff00ff00ff00ffULL, 0x1ULL};
    random_words(&g, src, rows * kw);
    uint64_t a[37 * 3], b[37 * 3], seen[37 * 3];
    const double rates[][2] = {{0, 0}, {1e-4, 1e-4}, {0.01, 0.01}, {0.01, 0.2}, {0.3, 0.05}, {0.5, 0.5},
                               {0.7, 0.9}, {1, 1}, {1, 0}};
    for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++)
        for (uint64_t key = 0; key < 4; key++) {
            size_t n01, n10;
            fault_draw_mask(a, src, rows, kw, valid, rates[r][0], rates[r][1], 42, key, seen, &n01, &n10);
            fault_draw_mask_ref(b, src, rows, kw, valid, rates[r][0], rates[r][1], 42, key);
            assert_memory_equal(a, b, sizeof a);
            size_t c01 = 0, c10 = 0;
            for (size_t w = 0; w < rows * kw; w++) {
                assert_int_equal(a[w] & ~valid[w % kw], 0); /* padding never flips */
                c01 += (size_t)__builtin_popcountll(a[w] & ~src[w]);
                c10 += (size_t)__builtin_popcountll(a[w] & src[w]);
            }
            assert_int_equal(c01, n01);
            assert_int_equal(c10, n10);
        }
}

static void test_binomial_counts_and_nesting(void **state) {
    (void)state;
    size_t words = sanitized() ? 4096 : 32768; /* 2^18 or 2^21 bits */
    uint64_t *src = malloc(8 * words), *m1 = malloc(8 * words), *m2 = malloc(8 * words), *seen = malloc(8 * words);
    pcg32 g;
    rng_keyed(&g, 2, 0, 77);
    random_words(&g, src, words);
    for (size_t i = 0; i < words / 4; i++) src[i] = 0; /* unequal numbers of 0 and 1 bits */
    size_t ones = 0;
    for (size_t i = 0; i < words; i++) ones += (size_t)__builtin_popcountll(src[i]);
    size_t zeros = words * 64 - ones;
    const double rates[] = {1e-5, 1e-4, 1e-3, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 0.99};
    int nr = (int)(sizeof rates / sizeof rates[0]);
    for (int asym = 0; asym < 2; asym++) {
        memset(m1, 0, 8 * words);
        for (int r = 0; r < nr; r++) {
            double p01 = rates[r], p10 = asym ? rates[r] / 4 : rates[r];
            size_t n01, n10;
            fault_draw_mask(m2, src, words, 1, NULL, p01, p10, 9, 3, seen, &n01, &n10);
            double mu0 = zeros * p01, s0 = sqrt(zeros * p01 * (1 - p01));
            double mu1 = ones * p10, s1 = sqrt(ones * p10 * (1 - p10));
            if (r == 4 || r == 9) print_message("p01 %.4f: %zu flips of %zu zeros (expected %.1f +- %.1f); "
                                                "p10 %.4f: %zu of %zu ones (expected %.1f +- %.1f)\n",
                                                p01, n01, zeros, mu0, s0, p10, n10, ones, mu1, s1);
            assert_true(fabs((double)n01 - mu0) <= 5 * s0 + 1);
            assert_true(fabs((double)n10 - mu1) <= 5 * s1 + 1);
            for (size_t i = 0; i < words; i++) assert_int_equal(m1[i] & ~m2[i], 0); /* nested */
            memcpy(m1, m2, 8 * words);
        }
    }
    /* Same (seed, key) reproduces; another key or seed differs. */
    fault_draw_mask(m1, src, words, 1, NULL, 0.01, 0.01, 9, 3, seen, NULL, NULL);
    fault_draw_mask(m2, src, words, 1, NULL, 0.01, 0.01, 9, 3, seen, NULL, NULL);
    assert_memory_equal(m1, m2, 8 * words);
    fault_draw_mask(m2, src, words, 1, NULL, 0.01, 0.01, 9, 4, seen, NULL, NULL);
    assert_memory_not_equal(m1, m2, 8 * words);
    fault_draw_mask(m2, src, words, 1, NULL, 0.01, 0.01, 10, 3, seen, NULL, NULL);
    assert_memory_not_equal(m1, m2, 8 * words);
    free(src), free(m1), free(m2), free(seen);
}

/* ---- On networks ---- */

static double accuracy_of(const int *pred, const dataset *d) {
    long c = 0;
    for (int i = 0; i < d->n; i++) c += pred[i] == d->labels[i];
    return (double)c / d->n;
}

static void check_rate0_rate1(const net *n) {
    dataset d = data_slice(&g_test, 0, sanitized() ? 200 : 2000);
    fault_ctx c;
    assert_int_equal(fault_ctx_create(&c, n), BN_OK);
    int *clean = malloc(sizeof(int) * d.n), *pred = malloc(sizeof(int) * d.n);
    packed_predict(&c.clean, clean, d.pixels, d.n);
    fault_model m;
    fault_model_zero(&m);
    fault_ctx_draw(&c, &m, 1, 0);
    fault_ctx_apply(&c);
    fault_ctx_predict(&c, &m, 1, 0, &d, 0, pred);
    assert_memory_equal(pred, clean, sizeof(int) * d.n);
    /* Rate 1 on weights and thresholds inverts every real bit and nothing else. */
    fault_model_set(&m, FAULT_WEIGHTS, 1, 1);
    fault_model_set(&m, FAULT_THRESHOLDS, 1, 1);
    fault_ctx_draw(&c, &m, 1, 0);
    fault_ctx_apply(&c);
    for (int l = 0; l < c.clean.n_layers; l++) {
        const packed_layer *C = &c.clean.layers[l], *W = &c.work.layers[l];
        for (int o = 0; o < C->out_c; o++)
            for (int j = 0; j < C->kw; j++)
                assert_true(W->w[(size_t)o * C->kw + j] == (C->w[(size_t)o * C->kw + j] ^ C->wvalid[j]));
        if (!C->last)
            for (int o = 0; o < C->out_c; o++) assert_int_equal(W->thr[o], ~C->thr[o]);
    }
    /* Back to rate 0: the working copy is restored exactly. */
    fault_model_zero(&m);
    fault_ctx_draw(&c, &m, 1, 0);
    fault_ctx_apply(&c);
    fault_ctx_predict(&c, &m, 1, 0, &d, 0, pred);
    assert_memory_equal(pred, clean, sizeof(int) * d.n);
    /* Activation rate 0 through the traced path also reproduces the clean predictions. */
    m.p01[FAULT_ACTIVATIONS][0] = 0, m.p10[FAULT_ACTIVATIONS][c.clean.n_layers - 1] = 0.5; /* classifier: ignored */
    fault_ctx_predict(&c, &m, 1, 0, &d, 0, pred);
    assert_memory_equal(pred, clean, sizeof(int) * d.n);
    free(clean), free(pred);
    fault_ctx_free(&c);
}

static void test_rate0_and_rate1(void **state) {
    (void)state;
    check_rate0_rate1(&g_fc);
    check_rate0_rate1(&g_cnn);
}

/* Packed with flips == float path with the same flips (weights). */
static void check_packed_equals_float(const net *n, const char *name) {
    dataset d = data_slice(&g_test, 0, sanitized() ? 300 : 3000);
    fault_ctx c;
    assert_int_equal(fault_ctx_create(&c, n), BN_OK);
    int *pp = malloc(sizeof(int) * d.n), *pf = malloc(sizeof(int) * d.n);
    const double rates[][2] = {{0.001, 0.001}, {0.01, 0.01}, {0.05, 0.05}, {0.2, 0.2}, {0.02, 0.1}};
    for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++)
        for (int rep = 0; rep < 2; rep++) {
            fault_model m;
            fault_model_zero(&m);
            fault_model_set(&m, FAULT_WEIGHTS, rates[r][0], rates[r][1]);
            fault_ctx_draw(&c, &m, 7, rep);
            fault_ctx_apply(&c);
            fault_ctx_predict(&c, &m, 7, rep, &d, 0, pp);
            net f;
            assert_int_equal(net_copy(&f, n), BN_OK);
            fault_apply_to_net(&c, &f);
            net_predict(&f, pf, d.pixels, d.n);
            net_free(&f);
            assert_memory_equal(pp, pf, sizeof(int) * d.n);
            if (rep == 0)
                print_message("%s p01 %.3f p10 %.3f: %zu+%zu weight flips, accuracy %.4f (packed == float)\n", name,
                              rates[r][0], rates[r][1], c.flips01[FAULT_WEIGHTS], c.flips10[FAULT_WEIGHTS],
                              accuracy_of(pp, &d));
        }
    free(pp), free(pf);
    fault_ctx_free(&c);
}

static void test_packed_equals_float_with_flips(void **state) {
    (void)state;
    check_packed_equals_float(&g_fc, "FC256-FC128");
    check_packed_equals_float(&g_cnn, "C8-MP2-C16-MP2-FC32");
}

/* Same seed reproduces, thread count irrelevant (also with activation and
   threshold flips), accuracy falls with the rate, and nesting per repeat. */
static void test_evaluate_reproducible(void **state) {
    (void)state;
    dataset d = data_slice(&g_test, 0, sanitized() ? 200 : 2000);
    const net *nets[2] = {&g_fc, &g_cnn};
    for (int k = 0; k < 2; k++) {
        fault_model m;
        fault_model_zero(&m);
        fault_model_set(&m, FAULT_WEIGHTS, 0.02, 0.02);
        fault_model_set(&m, FAULT_THRESHOLDS, 0.001, 0.001);
        fault_model_set(&m, FAULT_ACTIVATIONS, 0.01, 0.01);
        double a1[4], a2[4], a3[4];
        fault_stats s1, s2, s3;
        assert_int_equal(fault_evaluate(nets[k], &d, &m, 4, 5, 1, &s1, a1), BN_OK);
        assert_int_equal(fault_evaluate(nets[k], &d, &m, 4, 5, 2, &s2, a2), BN_OK);
        assert_memory_equal(a1, a2, sizeof a1);
        assert_memory_equal(&s1, &s2, sizeof s1);
        assert_true(s1.flips > 0);
        assert_int_equal(fault_evaluate(nets[k], &d, &m, 4, 6, 2, &s3, a3), BN_OK);
        assert_memory_not_equal(a1, a3, sizeof a1);
        assert_true(s1.ci_lo <= s1.mean && s1.mean <= s1.ci_hi);
        print_message("net %d: weights 2%% + thresholds 0.1%% + activations 1%%: acc %.4f sd %.4f CI [%.4f, %.4f]\n",
                      k, s1.mean, s1.sd, s1.ci_lo, s1.ci_hi);
        /* Weights only: accuracy at 20% is below accuracy at 0.1%. */
        fault_model lo, hi;
        fault_model_zero(&lo), fault_model_zero(&hi);
        fault_model_set(&lo, FAULT_WEIGHTS, 0.001, 0.001);
        fault_model_set(&hi, FAULT_WEIGHTS, 0.3, 0.3);
        assert_int_equal(fault_evaluate(nets[k], &d, &lo, 3, 5, 0, &s1, NULL), BN_OK);
        assert_int_equal(fault_evaluate(nets[k], &d, &hi, 3, 5, 0, &s2, NULL), BN_OK);
        assert_true(s2.mean < s1.mean - 0.1);
    }
    /* Nesting on the network: the weight flips of a repeat at 1% are a subset of those at 5%. */
    fault_ctx c;
    assert_int_equal(fault_ctx_create(&c, &g_fc), BN_OK);
    fault_model m;
    fault_model_zero(&m);
    fault_model_set(&m, FAULT_WEIGHTS, 0.01, 0.01);
    fault_ctx_draw(&c, &m, 3, 2);
    uint64_t *keep[NET_MAX_LAYERS];
    for (int l = 0; l < c.clean.n_layers; l++) {
        size_t w = (size_t)c.clean.layers[l].out_c * c.clean.layers[l].kw;
        keep[l] = malloc(8 * w);
        memcpy(keep[l], c.wmask[l], 8 * w);
    }
    fault_model_set(&m, FAULT_WEIGHTS, 0.05, 0.05);
    fault_ctx_draw(&c, &m, 3, 2);
    for (int l = 0; l < c.clean.n_layers; l++) {
        size_t w = (size_t)c.clean.layers[l].out_c * c.clean.layers[l].kw;
        for (size_t i = 0; i < w; i++) assert_int_equal(keep[l][i] & ~c.wmask[l][i], 0);
        free(keep[l]);
    }
    fault_ctx_free(&c);
    /* Bad inputs. */
    fault_stats s;
    fault_model_zero(&m);
    m.p01[FAULT_WEIGHTS][1] = 1.5;
    assert_int_equal(fault_evaluate(&g_fc, &d, &m, 2, 1, 0, &s, NULL), BN_EARG);
    fault_model_zero(&m);
    assert_int_equal(fault_evaluate(&g_fc, &d, &m, 0, 1, 0, &s, NULL), BN_EARG);
}

static void test_stats(void **state) {
    (void)state;
    const double a[5] = {0.80, 0.82, 0.84, 0.86, 0.88};
    fault_stats s;
    fault_stats_of(a, 5, &s);
    assert_true(fabs(s.mean - 0.84) < 1e-12);
    assert_true(fabs(s.sd - sqrt(0.001)) < 1e-12);                        /* sum of squares 0.004 / 4 */
    assert_true(fabs(s.ci_hi - (0.84 + 2.776 * sqrt(0.001) / sqrt(5.0))) < 1e-12);
    fault_stats_of(a, 1, &s);
    assert_true(s.sd == 0 && s.ci_lo == s.mean && s.ci_hi == s.mean);
    assert_true(fabs(fault_t975(1000) - 1.9623) < 1e-3);
    assert_true(fault_t975(31) < fault_t975(30) && fault_t975(31) > 2.03);
}

/* ---- The delta path ---- */

/* fault_delta_bits == its reference and fault_transpose64 == its reference,
   on random blocks: neuron counts that are not multiples of 64, and flip
   densities up to several int16 chunks per neuron. */
static void test_delta_kernels(void **state) {
    (void)state;
    pcg32 g;
    rng_keyed(&g, 3, 0, 91);
    for (int t = 0; t < 20; t++) {
        uint64_t a[64], b[64];
        random_words(&g, a, 64);
        if (t % 4 == 1) for (int i = 0; i < 64; i++) a[i] &= (uint64_t)1 << (i % 64); /* sparse */
        memcpy(b, a, sizeof a);
        fault_transpose64(a);
        fault_transpose64_ref(b);
        assert_memory_equal(a, b, sizeof a);
        fault_transpose64(a); /* twice: the identity */
        fault_transpose64_ref(b);
        assert_memory_equal(a, b, sizeof a);
    }
    const int shapes[][2] = {{100, 784}, {64, 300}, {512, 784}, {7, 1000}}; /* (out_c, fan_in) */
    const double dens[] = {0.0, 0.01, 0.2, 0.6};
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
        int out_c = shapes[sh][0], fan_in = shapes[sh][1], kw = (fan_in + 63) / 64, ow = (out_c + 63) / 64;
        uint64_t *w = calloc((size_t)out_c * kw, 8), *mask = calloc((size_t)out_c * kw, 8);
        int16_t *xT = malloc(sizeof(int16_t) * 2 * fan_in * FAULT_DELTA_B);
        int32_t *clean = malloc(sizeof(int32_t) * out_c * FAULT_DELTA_B), *thr = malloc(sizeof(int32_t) * out_c);
        uint64_t *inv = calloc((size_t)ow, 8), *tmp = malloc(sizeof(uint64_t) * ow * 64);
        uint64_t *b1 = malloc(sizeof(uint64_t) * FAULT_DELTA_B * (ow + 1)), *b2 = malloc(sizeof(uint64_t) * FAULT_DELTA_B * (ow + 1));
        for (int i = 0; i < fan_in * FAULT_DELTA_B; i++) {
            xT[i] = (int16_t)(pcg32_next(&g) % 4 ? pcg32_next(&g) & 255 : 0);
            xT[fan_in * FAULT_DELTA_B + i] = (int16_t)-xT[i];
        }
        for (int i = 0; i < out_c * FAULT_DELTA_B; i++) clean[i] = (int32_t)(pcg32_next(&g) % 60001) - 30000;
        for (int j = 0; j < out_c; j++) thr[j] = (int32_t)(pcg32_next(&g) % 20001) - 10000;
        random_words(&g, inv, (size_t)ow);
        for (size_t d = 0; d < sizeof dens / sizeof dens[0]; d++) {
            memset(mask, 0, (size_t)out_c * kw * 8);
            for (int j = 0; j < out_c; j++)
                for (int i = 0; i < fan_in; i++) {
                    if (pcg32_next(&g) & 1) w[(size_t)j * kw + i / 64] |= (uint64_t)1 << (i % 64);
                    if (pcg32_double(&g) < dens[d]) mask[(size_t)j * kw + i / 64] |= (uint64_t)1 << (i % 64);
                }
            fault_flips f;
            fault_flips_init(&f, out_c, fan_in);
            size_t nf = fault_flips_build(&f, mask, w, kw);
            size_t count = 0;
            for (size_t i = 0; i < (size_t)out_c * kw; i++) count += (size_t)__builtin_popcountll(mask[i]);
            assert_int_equal(nf, count);
            memset(b1, 0xa5, sizeof(uint64_t) * FAULT_DELTA_B * (ow + 1));
            memset(b2, 0x5a, sizeof(uint64_t) * FAULT_DELTA_B * (ow + 1));
            fault_delta_bits(b1, ow + 1, clean, xT, &f, thr, inv, tmp);
            fault_delta_bits_ref(b2, ow + 1, clean, xT, &f, thr, inv, tmp);
            for (int b = 0; b < FAULT_DELTA_B; b++) {
                assert_memory_equal(b1 + (size_t)b * (ow + 1), b2 + (size_t)b * (ow + 1), sizeof(uint64_t) * ow);
                if (out_c % 64) assert_int_equal(b1[(size_t)b * (ow + 1) + ow - 1] >> (out_c % 64), 0);
            }
            fault_flips_free(&f);
        }
        free(w), free(mask), free(xT), free(clean), free(thr), free(inv), free(tmp), free(b1), free(b2);
    }
}

/* fault_delta_prepare == its reference: whole and partial blocks, pixel and
   neuron counts that are not multiples of 16; and the reference is the
   transpose it claims to be. */
static void test_delta_prepare(void **state) {
    (void)state;
    pcg32 g;
    rng_keyed(&g, 4, 0, 91);
    const int shapes[][3] = {{784, 512, 512}, {50, 37, 48}, {16, 16, 16}, {1, 3, 16}}; /* fan_in, out_c, np */
    const int nbs[] = {FAULT_DELTA_B, 37, 16, 1};
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
        int fan_in = shapes[sh][0], out_c = shapes[sh][1], np = shapes[sh][2];
        uint8_t *x = malloc((size_t)FAULT_DELTA_B * fan_in);
        int32_t *acc = malloc(sizeof(int32_t) * FAULT_DELTA_B * np);
        for (int i = 0; i < FAULT_DELTA_B * fan_in; i++) x[i] = (uint8_t)pcg32_next(&g);
        for (int i = 0; i < FAULT_DELTA_B * np; i++) acc[i] = (int32_t)pcg32_next(&g);
        size_t nx = (size_t)2 * fan_in * FAULT_DELTA_B, nc = (size_t)out_c * FAULT_DELTA_B;
        int16_t *x1 = malloc(sizeof(int16_t) * nx), *x2 = malloc(sizeof(int16_t) * nx);
        int32_t *c1 = malloc(sizeof(int32_t) * nc), *c2 = malloc(sizeof(int32_t) * nc);
        for (size_t k = 0; k < sizeof nbs / sizeof nbs[0]; k++) {
            int nb = nbs[k];
            memset(x1, 0x11, sizeof(int16_t) * nx), memset(x2, 0x22, sizeof(int16_t) * nx);
            memset(c1, 0x33, sizeof(int32_t) * nc), memset(c2, 0x44, sizeof(int32_t) * nc);
            fault_delta_prepare(x1, c1, x, fan_in, nb, acc, np, out_c);
            fault_delta_prepare_ref(x2, c2, x, fan_in, nb, acc, np, out_c);
            assert_memory_equal(x1, x2, sizeof(int16_t) * nx);
            assert_memory_equal(c1, c2, sizeof(int32_t) * nc);
            int b = nb - 1, i = fan_in - 1, j = out_c - 1;
            assert_int_equal(x2[(size_t)i * FAULT_DELTA_B + b], x[(size_t)b * fan_in + i]);
            assert_int_equal(x2[(size_t)(fan_in + i) * FAULT_DELTA_B + b], -x[(size_t)b * fan_in + i]);
            assert_int_equal(c2[(size_t)j * FAULT_DELTA_B + b], acc[(size_t)b * np + j]);
            if (nb < FAULT_DELTA_B) assert_int_equal(c2[(size_t)j * FAULT_DELTA_B + nb], 0);
        }
        free(x), free(acc), free(x1), free(x2), free(c1), free(c2);
    }
}

/* The delta path predicts exactly like the dense path (draw, apply, predict
   per repeat) for weight rates 0 .. 0.5, with and without threshold and
   activation flips, asymmetric and per-layer rates; on 1 and 2 threads; and
   leaves the last repeat's masks in the context. fault_ctx_evaluate (AUTO)
   gives the dense path's accuracies. */
static void test_delta_equals_dense(void **state) {
    (void)state;
    dataset d = data_slice(&g_test, 0, sanitized() ? 150 : 1000);
    const int R = 3, r0 = 2;
    fault_ctx c;
    assert_int_equal(fault_ctx_create(&c, &g_fc), BN_OK);
    int *pd = malloc(sizeof(int) * R * d.n), *px = malloc(sizeof(int) * R * d.n), *p1 = malloc(sizeof(int) * R * d.n);
    uint64_t *wm[NET_MAX_LAYERS];
    const double rates[] = {0, 0.001, 0.01, 0.1, 0.5};
    for (size_t ri = 0; ri < sizeof rates / sizeof rates[0]; ri++)
        for (int variant = 0; variant < 6; variant++) {
            double p = rates[ri];
            fault_model m;
            fault_model_zero(&m);
            fault_model_set(&m, FAULT_WEIGHTS, p, p);
            if (variant == 1 || variant == 3) fault_model_set(&m, FAULT_THRESHOLDS, p / 4, p / 2);
            if (variant == 2 || variant == 3) fault_model_set(&m, FAULT_ACTIVATIONS, p / 2, p / 4);
            if (variant == 4) fault_model_set(&m, FAULT_WEIGHTS, p, p / 3); /* asymmetric */
            if (variant == 5) { /* per layer: first layer only weights, second only activations */
                fault_model_zero(&m);
                m.p01[FAULT_WEIGHTS][0] = p, m.p10[FAULT_WEIGHTS][0] = p / 2;
                m.p01[FAULT_ACTIVATIONS][1] = p / 5, m.p10[FAULT_ACTIVATIONS][1] = p / 5;
                m.p10[FAULT_THRESHOLDS][0] = p / 10;
            }
            c.path = FAULT_PATH_DENSE;
            assert_int_equal(fault_ctx_predict_repeats(&c, &d, &m, 11, r0, R, 2, pd), BN_OK);
            assert_int_equal(c.last_path, FAULT_PATH_DENSE);
            double flips_dense = c.group_flips;
            for (int l = 0; l < c.clean.n_layers; l++) {
                size_t w = (size_t)c.clean.layers[l].out_c * c.clean.layers[l].kw;
                wm[l] = malloc(8 * w);
                memcpy(wm[l], c.wmask[l], 8 * w);
            }
            size_t f01 = c.flips01[FAULT_WEIGHTS], f10 = c.flips10[FAULT_THRESHOLDS];
            c.path = FAULT_PATH_DELTA;
            assert_int_equal(fault_ctx_predict_repeats(&c, &d, &m, 11, r0, R, 2, px), BN_OK);
            assert_int_equal(c.last_path, FAULT_PATH_DELTA);
            assert_memory_equal(pd, px, sizeof(int) * R * d.n);
            assert_true(c.group_flips == flips_dense);
            assert_int_equal(c.flips01[FAULT_WEIGHTS], f01);
            assert_int_equal(c.flips10[FAULT_THRESHOLDS], f10);
            for (int l = 0; l < c.clean.n_layers; l++) {
                size_t w = (size_t)c.clean.layers[l].out_c * c.clean.layers[l].kw;
                assert_memory_equal(wm[l], c.wmask[l], 8 * w);
                free(wm[l]);
            }
            assert_int_equal(fault_ctx_predict_repeats(&c, &d, &m, 11, r0, R, 1, p1), BN_OK);
            assert_memory_equal(p1, px, sizeof(int) * R * d.n);
            if (variant == 0 || variant == 3) {
                double acc[R];
                for (int r = 0; r < R; r++) {
                    long k = 0;
                    for (int i = 0; i < d.n; i++) k += px[(size_t)r * d.n + i] == d.labels[i];
                    acc[r] = (double)k / d.n;
                }
                print_message("FC256-FC128 rate %g variant %d: accuracies %.4f %.4f %.4f (delta == dense)\n", p,
                              variant, acc[0], acc[1], acc[2]);
            }
        }
    /* fault_ctx_evaluate on AUTO (groups of FAULT_GROUP) equals the dense path. */
    fault_model m;
    fault_model_zero(&m);
    fault_model_set(&m, FAULT_WEIGHTS, 0.01, 0.01);
    fault_model_set(&m, FAULT_ACTIVATIONS, 0.001, 0.001);
    int RR = FAULT_GROUP + 3;
    double *aa = malloc(sizeof(double) * RR), *ad = malloc(sizeof(double) * RR);
    fault_stats sa, sd;
    c.path = FAULT_PATH_AUTO;
    assert_int_equal(fault_ctx_evaluate(&c, &d, &m, RR, 4, 2, &sa, aa), BN_OK);
    assert_int_equal(c.last_path, FAULT_PATH_DELTA); /* the last group has 3 repeats: delta wins at 1% */
    c.path = FAULT_PATH_DENSE;
    assert_int_equal(fault_ctx_evaluate(&c, &d, &m, RR, 4, 2, &sd, ad), BN_OK);
    assert_memory_equal(aa, ad, sizeof(double) * RR);
    assert_memory_equal(&sa, &sd, sizeof sa);
    /* The delta path refuses a network whose first layer is a convolution. */
    fault_ctx cc;
    assert_int_equal(fault_ctx_create(&cc, &g_cnn), BN_OK);
    cc.path = FAULT_PATH_DELTA;
    assert_int_equal(fault_ctx_predict_repeats(&cc, &d, &m, 1, 0, 2, 0, pd), BN_EARG);
    fault_ctx_free(&cc);
    free(aa), free(ad), free(pd), free(px), free(p1);
    fault_ctx_free(&c);
}

/* fault_delta_predict on networks flipped by someone else (packed_flip_weights,
   changed thresholds) equals packed_predict_threads of each. */
static void test_delta_predict_nets(void **state) {
    (void)state;
    dataset d = data_slice(&g_test, 0, sanitized() ? 130 : 1300);
    packed_net clean, nets[4];
    const packed_net *np[4];
    assert_int_equal(packed_from_net(&clean, &g_fc), BN_OK);
    pcg32 g;
    rng_keyed(&g, 9, 0, 33);
    int *pd = malloc(sizeof(int) * 4 * d.n), *pr = malloc(sizeof(int) * d.n);
    for (int r = 0; r < 4; r++) {
        assert_int_equal(packed_copy(&nets[r], &clean), BN_OK);
        for (int l = 0; l < clean.n_layers; l++) packed_flip_weights(&nets[r], l, 0.004 * r, 0.01 * r, &g);
        if (r == 3) nets[r].layers[0].thr[5] += 1000, nets[r].layers[1].thr[7] -= 3;
        np[r] = &nets[r];
    }
    assert_int_equal(fault_delta_predict(&clean, np, 4, &d, 2, pd), BN_OK);
    for (int r = 0; r < 4; r++) {
        packed_predict_threads(&nets[r], pr, d.pixels, d.n, 1);
        assert_memory_equal(pd + (size_t)r * d.n, pr, sizeof(int) * d.n);
    }
    assert_int_equal(fault_delta_predict(&clean, np, 0, &d, 2, pd), BN_EARG);
    for (int r = 0; r < 4; r++) packed_free(&nets[r]);
    packed_free(&clean);
    packed_net cnn;
    assert_int_equal(packed_from_net(&cnn, &g_cnn), BN_OK);
    const packed_net *cp = &cnn;
    assert_int_equal(fault_delta_predict(&cnn, &cp, 1, &d, 2, pd), BN_EARG);
    packed_free(&cnn);
    free(pd), free(pr);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sparse_equals_dense),
        cmocka_unit_test(test_binomial_counts_and_nesting),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_rate0_and_rate1),
        cmocka_unit_test(test_packed_equals_float_with_flips),
        cmocka_unit_test(test_evaluate_reproducible),
        cmocka_unit_test(test_delta_kernels),
        cmocka_unit_test(test_delta_prepare),
        cmocka_unit_test(test_delta_equals_dense),
        cmocka_unit_test(test_delta_predict_nets),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
