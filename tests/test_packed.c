/*
** Packed inference: folded thresholds against the float batch norm for every
** accumulator value, every SIMD kernel against its reference twin, and packed
** predictions and logits against the float evaluation path on the 10,000
** FashionMNIST test images, for an FC net and VGG3.
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

#include "engine/data.h"
#include "engine/err.h"
#include "engine/net.h"
#include "engine/packed.h"
#include "engine/rng.h"
#include "engine/train.h"
#include "tests/testutil.h"

/* ---- FashionMNIST, loaded once for the group ---- */

static dataset g_train, g_test;

static int setup(void **state) {
    (void)state;
    if (load_fashion_mnist(&g_train, &g_test)) return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    data_free(&g_train), data_free(&g_test);
    return 0;
}

/* ---- Float-semantics reference used only to set realistic BN statistics ---- */

/* Integer accumulators of layer L after pooling, out (out_h, out_w, out_c),
   from the raw pixels img (first layer) or the +-1 activations act. */
static void layer_acc(const net_layer *L, const uint8_t *img, const int8_t *act, int32_t *out) {
    int H = L->in_h, W = L->in_w, C = L->in_c;
    int pos = L->kind == NET_CONV ? H * W : 1;
    int32_t *z = malloc(sizeof(int32_t) * (size_t)pos * L->out_c);
    int *in = malloc(sizeof(int) * (size_t)H * W * C);
    for (size_t i = 0; i < (size_t)H * W * C; i++) in[i] = L->first ? img[i] : act[i];
    for (int p = 0; p < pos; p++)
        for (int o = 0; o < L->out_c; o++) {
            const float *w = L->w + (size_t)o * L->fan_in;
            int32_t s = 0;
            if (L->kind == NET_CONV) {
                for (int t = 0; t < 9; t++) {
                    int iy = p / W + t / 3 - 1, ix = p % W + t % 3 - 1;
                    if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                    const int *v = in + ((size_t)iy * W + ix) * C;
                    const float *wt = w + t * C;
                    for (int c = 0; c < C; c++) s += wt[c] > 0.0f ? v[c] : -v[c];
                }
            } else {
                for (int i = 0; i < L->fan_in; i++) s += w[i] > 0.0f ? in[i] : -in[i];
            }
            z[(size_t)p * L->out_c + o] = s;
        }
    int OH = L->out_h, OW = L->out_w;
    for (int oy = 0; oy < OH; oy++)
        for (int ox = 0; ox < OW; ox++)
            for (int o = 0; o < L->out_c; o++) {
                int32_t m;
                if (L->pool) {
                    m = INT32_MIN;
                    for (int d = 0; d < 4; d++) {
                        int32_t v = z[((size_t)(2 * oy + d / 2) * W + 2 * ox + d % 2) * L->out_c + o];
                        m = v > m ? v : m;
                    }
                } else {
                    m = z[((size_t)oy * OW + ox) * L->out_c + o];
                }
                out[((size_t)oy * OW + ox) * L->out_c + o] = m;
            }
    free(z), free(in);
}

/* Random latent weights, then layer by layer: running mean/var = mean and
   variance of the BN input over nimg images (whose activations follow the
   float path's sign(BN) of the layers before), gamma mostly positive with
   some negative and zero, beta small. */
static void make_net(net *n, const char *topo, const uint8_t *imgs, int nimg, uint64_t seed) {
    arch a;
    assert_int_equal(arch_parse(&a, topo), BN_OK);
    assert_int_equal(net_create(n, &a, 1, 28, 28, 10), BN_OK);
    pcg32 r;
    rng_keyed(&r, seed, 1, RNG_INIT);
    net_init_params(n, &r);
    *n->scale = 0.37f;
    int8_t **act = calloc((size_t)nimg, sizeof(int8_t *));
    for (int l = 0; l < n->n_layers - 1; l++) {
        net_layer *L = &n->layers[l];
        size_t per = (size_t)L->out_h * L->out_w * L->out_c;
        int32_t *acc = malloc(sizeof(int32_t) * per * nimg);
        double *s1 = calloc((size_t)L->out_c, sizeof(double)), *s2 = calloc((size_t)L->out_c, sizeof(double));
        for (int i = 0; i < nimg; i++) {
            layer_acc(L, imgs + (size_t)i * 784, act[i], acc + per * i);
            for (size_t k = 0; k < per; k++) {
                double v = L->first ? acc[per * i + k] * (1.0 / 255.0) : acc[per * i + k];
                s1[k % L->out_c] += v;
                s2[k % L->out_c] += v * v;
            }
        }
        double cnt = (double)nimg * (per / L->out_c);
        for (int o = 0; o < L->out_c; o++) {
            double m = s1[o] / cnt, var = s2[o] / cnt - m * m;
            L->mean[o] = (float)m;
            L->var[o] = (float)(var > 0 ? var : 0);
            uint32_t kind = pcg32_bounded(&r, 16);
            L->gamma[o] = kind == 0 ? 0.0f : kind < 4 ? -(0.2f + pcg32_float(&r)) : 0.2f + pcg32_float(&r);
            L->beta[o] = (pcg32_float(&r) - 0.5f) * 0.6f;
        }
        for (int i = 0; i < nimg; i++) {
            free(act[i]);
            act[i] = malloc(per);
            for (size_t k = 0; k < per; k++)
                act[i][k] = net_sign(net_bn_value(L, (int)(k % L->out_c), (float)acc[per * i + k])) > 0 ? 1 : -1;
        }
        free(acc), free(s1), free(s2);
    }
    for (int i = 0; i < nimg; i++) free(act[i]);
    free(act);
}

/* ---- Threshold folding, exhaustively ---- */

static void check_fold(net_layer *L, int c) {
    int32_t lo, hi, T;
    int inv;
    packed_acc_range(L, &lo, &hi);
    assert_int_equal(packed_fold_threshold(L, c, lo, hi, &T, &inv), BN_OK);
    for (int64_t a = lo; a <= hi; a++) {
        int want = net_sign(net_bn_value(L, c, (float)a)) > 0;
        int got = ((int32_t)a >= T) ^ inv;
        if (want != got)
            fail_msg("neuron %d acc %lld: float %d packed %d (T %d inv %d gamma %g beta %g mean %g var %g first %d)",
                     c, (long long)a, want, got, T, inv, (double)L->gamma[c], (double)L->beta[c],
                     (double)L->mean[c], (double)L->var[c], L->first);
    }
}

static void test_fold_threshold_every_accumulator(void **state) {
    (void)state;
    enum { NC = 48 };
    float gamma[NC], beta[NC], mean[NC], var[NC];
    pcg32 r;
    rng_keyed(&r, 7, 0, RNG_INIT);
    const int fans[] = {1, 9, 63, 576, 3136, 784};
    for (int first = 0; first < 2; first++)
        for (size_t f = 0; f < sizeof fans / sizeof fans[0]; f++) {
            int fan = fans[f];
            if (first && fan > 784) continue;
            net_layer L = {0};
            L.kind = NET_FC, L.first = first, L.fan_in = fan, L.out_c = NC;
            L.gamma = gamma, L.beta = beta, L.mean = mean, L.var = var;
            double span = first ? 255.0 * fan / 255.0 : fan; /* BN input range in its own units */
            for (int c = 0; c < NC; c++) {
                gamma[c] = (float)(pcg32_double(&r) * 4 - 2);
                beta[c] = (float)((pcg32_double(&r) - 0.5) * 4);
                mean[c] = (float)((pcg32_double(&r) * 2 - 1) * span);
                var[c] = (float)(pcg32_double(&r) * span + 0.01);
                switch (c % 12) {
                case 0: gamma[c] = 0.0f; break;                         /* constant: sign of beta */
                case 1: gamma[c] = 0.0f, beta[c] = 0.0f; break;         /* constant -1 */
                case 2: gamma[c] = -fabsf(gamma[c]); break;             /* decreasing */
                case 3: var[c] = 1e-9f; break;                          /* tiny variance */
                case 4: var[c] = 1e12f; break;                          /* huge variance */
                case 5: mean[c] = (float)(10 * span); break;            /* threshold above the range */
                case 6: mean[c] = (float)(-10 * span); break;           /* threshold below the range */
                case 7: beta[c] = 0.0f, mean[c] = 0.5f; break;          /* threshold between integers */
                case 8: beta[c] = 0.0f, mean[c] = (float)(int)(span / 3); break; /* exactly on an integer */
                case 9: gamma[c] = -1e-30f; break;                      /* tiny negative gamma */
                case 10: gamma[c] = 3e30f, var[c] = 1e-8f; break;       /* overflow to inf */
                default: break;
                }
                check_fold(&L, c);
            }
        }
}

static void test_fold_threshold_rejects_nan(void **state) {
    (void)state;
    float gamma = NAN, beta = 0, mean = 0, var = 1;
    net_layer L = {0};
    L.kind = NET_FC, L.fan_in = 10, L.out_c = 1;
    L.gamma = &gamma, L.beta = &beta, L.mean = &mean, L.var = &var;
    int32_t T;
    int inv;
    assert_int_equal(packed_fold_threshold(&L, 0, -10, 10, &T, &inv), BN_EARG);
    gamma = 0.0f, mean = 3e38f, var = 0.0f; /* 0 * inf at the range ends */
    assert_int_equal(packed_fold_threshold(&L, 0, -10, 10, &T, &inv), BN_EARG);
    assert_true(strlen(bn_errmsg()) > 0);
}

/* ---- Kernels against their reference twins ---- */

static void random_bits(pcg32 *r, uint64_t *a, size_t n_pix, int c) {
    int cw = (c + 63) / 64;
    for (size_t p = 0; p < n_pix; p++)
        for (int j = 0; j < cw; j++) {
            uint64_t v = (uint64_t)pcg32_next(r) << 32 | pcg32_next(r);
            int bits = c - 64 * j < 64 ? c - 64 * j : 64;
            if (bits < 64) v &= ((uint64_t)1 << bits) - 1;
            a[p * cw + j] = v;
        }
}

/* bdense_thresh of k and of the reference equal thresh(bdense) (acc: the
   reference accumulators of a), with some neurons forced constant. */
static void check_bdense_thresh(const packed_kernels *k, const packed_layer *L, const uint64_t *a,
                                const int32_t *acc, int rr) {
    const packed_kernels *ref = packed_kernels_named("ref");
    int ldo = L->out_cw + 1;
    size_t nb = (size_t)rr * ldo;
    uint64_t *b0 = malloc(sizeof(uint64_t) * nb), *b1 = malloc(sizeof(uint64_t) * nb), *b2 = malloc(sizeof(uint64_t) * nb);
    for (int pass = 0; pass < 2; pass++) {
        int32_t keep0 = L->thr[0], keepl = L->thr[L->out_c - 1];
        if (pass == 1) { /* constant neurons: always on, never on */
            ((packed_layer *)L)->thr[0] = INT32_MIN;
            ((packed_layer *)L)->thr[L->out_c - 1] = INT32_MAX;
        }
        memset(b0, 0xcd, sizeof(uint64_t) * nb), memset(b1, 0xcd, sizeof(uint64_t) * nb), memset(b2, 0xcd, sizeof(uint64_t) * nb);
        ref->thresh(b0, ldo, acc, L, rr);
        ref->bdense_thresh(b1, ldo, a, L, rr);
        k->bdense_thresh(b2, ldo, a, L, rr);
        assert_memory_equal(b0, b1, sizeof(uint64_t) * nb);
        assert_memory_equal(b0, b2, sizeof(uint64_t) * nb);
        ((packed_layer *)L)->thr[0] = keep0, ((packed_layer *)L)->thr[L->out_c - 1] = keepl;
    }
    free(b0), free(b1), free(b2);
}

static void check_layer_kernels(const packed_kernels *k, const packed_layer *L, pcg32 *r) {
    const packed_kernels *ref = packed_kernels_named("ref");
    const int R = 40;
    const int rows[] = {1, 4, 7, 16, 17, 31, 32, 40}; /* tails of the 4-, 8-, 16- and 32-row blocks */
    size_t accn = (size_t)(R > 2 * L->in_w ? R : 2 * L->in_w) * L->np;
    int32_t *a1 = calloc(accn, sizeof(int32_t)), *a2 = calloc(accn, sizeof(int32_t));
    if (L->first) {
        uint8_t *x = calloc((size_t)R * (L->k4 + 4), 1);
        int ldx = L->k4 + 4;
        for (int i = 0; i < R; i++)
            for (int j = 0; j < L->fan_in; j++) {
                uint32_t u = pcg32_next(r);
                x[(size_t)i * ldx + j] = (u & 3) == 0 ? 0 : (uint8_t)(u >> 8); /* many zeros, like images */
            }
        for (int j = 0; j < L->fan_in; j++) x[(size_t)(R - 1) * ldx + j] = 255; /* extremes */
        for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++) {
            int rr = rows[ri];
            memset(a1, 0x55, sizeof(int32_t) * accn), memset(a2, 0x77, sizeof(int32_t) * accn);
            ref->u8dense(a1, x, ldx, L, rr);
            k->u8dense(a2, x, ldx, L, rr);
            assert_memory_equal(a1, a2, sizeof(int32_t) * (size_t)rr * L->np);
        }
        free(x);
    } else if (L->kind == NET_FC) {
        uint64_t *a = calloc((size_t)R * L->kw, sizeof(uint64_t));
        random_bits(r, a, (size_t)R * L->in_h * L->in_w, L->in_c);
        for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++) {
            int rr = rows[ri];
            memset(a1, 0x55, sizeof(int32_t) * accn), memset(a2, 0x77, sizeof(int32_t) * accn);
            ref->bdense(a1, a, L, rr);
            k->bdense(a2, a, L, rr);
            assert_memory_equal(a1, a2, sizeof(int32_t) * (size_t)rr * L->np);
            if (!L->last) check_bdense_thresh(k, L, a, a1, rr);
        }
        free(a);
    } else {
        uint64_t *a = calloc((size_t)L->in_h * L->in_w * L->in_cw, sizeof(uint64_t));
        random_bits(r, a, (size_t)L->in_h * L->in_w, L->in_c);
        for (int y = 0; y < L->in_h; y++) {
            int ny = y + 2 <= L->in_h ? 2 : 1;
            memset(a1, 0x55, sizeof(int32_t) * accn), memset(a2, 0x77, sizeof(int32_t) * accn);
            ref->bconv(a1, a, L, y, ny);
            k->bconv(a2, a, L, y, ny);
            assert_memory_equal(a1, a2, sizeof(int32_t) * (size_t)ny * L->in_w * L->np);
        }
        free(a);
    }
    /* pool2 and thresh on random accumulators around the thresholds */
    if (!L->last) {
        int W = L->in_w < 2 ? 2 : L->in_w;
        int32_t *acc = malloc(sizeof(int32_t) * 2 * (size_t)W * L->np);
        for (size_t i = 0; i < 2 * (size_t)W * L->np; i++) {
            int n = (int)(i % L->np);
            int32_t t = L->thr[n];
            if (t == INT32_MIN || t == INT32_MAX) t = 0;
            acc[i] = t + (int32_t)pcg32_bounded(r, 7) - 3;
        }
        int32_t *p1 = malloc(sizeof(int32_t) * (size_t)W * L->np), *p2 = malloc(sizeof(int32_t) * (size_t)W * L->np);
        memset(p1, 0, sizeof(int32_t) * (size_t)W * L->np), memset(p2, 0, sizeof(int32_t) * (size_t)W * L->np);
        ref->pool2(p1, acc, acc + (size_t)W * L->np, W, L->np);
        k->pool2(p2, acc, acc + (size_t)W * L->np, W, L->np);
        assert_memory_equal(p1, p2, sizeof(int32_t) * (size_t)(W / 2) * L->np);
        int M = 2 * W, ldo = L->out_cw + 1;
        uint64_t *b1 = malloc(sizeof(uint64_t) * (size_t)M * ldo), *b2 = malloc(sizeof(uint64_t) * (size_t)M * ldo);
        memset(b1, 0xab, sizeof(uint64_t) * (size_t)M * ldo), memset(b2, 0xab, sizeof(uint64_t) * (size_t)M * ldo);
        ref->thresh(b1, ldo, acc, L, M);
        k->thresh(b2, ldo, acc, L, M);
        assert_memory_equal(b1, b2, sizeof(uint64_t) * (size_t)M * ldo);
        /* padding bits of the outputs are 0 */
        if (L->out_c % 64)
            for (int m = 0; m < M; m++) assert_true((b1[(size_t)m * ldo + L->out_cw - 1] >> (L->out_c % 64)) == 0);
        free(acc), free(p1), free(p2), free(b1), free(b2);
    }
    free(a1), free(a2);
}

static void test_kernels_equal_reference(void **state) {
    (void)state;
    /* (input shape, topology): first layer dense and conv, hidden dense and conv of odd widths */
    const struct { int c, h, w; const char *topo; } cases[] = {
        {1, 28, 28, "FC512-FC512"},
        {1, 28, 28, "FC37-FC70-FC129"},
        {1, 5, 7, "C20-C65-MP2-C130-FC33"},
        {3, 6, 5, "C16-MP2-C64-FC100"},
        {1, 28, 28, "C64-MP2-C64-MP2-FC2048"},
        {1, 3, 1, "FC1-FC2"},
        {2, 3, 3, "C1-C3-FC5"},
        {3, 20, 20, "FC40-FC20"},  /* first-layer rows longer than one k chunk of the kernels */
        {1, 3, 37, "C16-MP2-C8-FC10"}, /* first conv with more than 32 pixel rows per image row */
        {8, 4, 5, "C16-FC10"},         /* first conv rows of 72 bytes: neither < 64 nor whole 64-byte steps */
    };
    const char *sets[] = {"portable", "avx2", "avx512", "amx", "ref"};
    int tested = 0;
    for (size_t s = 0; s < 5; s++) {
        const packed_kernels *k = packed_kernels_named(sets[s]);
        if (!k) continue;
        tested++;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            arch a;
            net n;
            assert_int_equal(arch_parse(&a, cases[i].topo), BN_OK);
            assert_int_equal(net_create(&n, &a, cases[i].c, cases[i].h, cases[i].w, 10), BN_OK);
            pcg32 r;
            rng_keyed(&r, 11, i, RNG_INIT);
            net_init_params(&n, &r);
            for (int l = 0; l < n.n_layers - 1; l++)
                for (int o = 0; o < n.layers[l].out_c; o++) {
                    n.layers[l].gamma[o] = pcg32_float(&r) - 0.3f;
                    n.layers[l].mean[o] = (pcg32_float(&r) - 0.5f) * 10;
                }
            packed_net p;
            assert_int_equal(packed_from_net(&p, &n), BN_OK);
            for (int l = 0; l < p.n_layers; l++) check_layer_kernels(k, &p.layers[l], &r);
            packed_free(&p);
            net_free(&n);
        }
    }
    assert_true(tested >= 2); /* ref and portable always exist */
    assert_null(packed_kernels_named("nope"));
    assert_null(packed_kernels_named(NULL));
    assert_non_null(packed_kernels_active());
    assert_string_equal(packed_simd_name(), packed_kernels_active()->name);
}

/* ---- Whole network against the float evaluation path ---- */

/* Packed predictions == net_predict on the first B test images, logits bit
   for bit on up to 2000 of them for every kernel set and thread count, and
   the whole-forward reference on a few. */
static void check_packed_equals_float(const net *n, const char *topo, int n_test_full) {
    const uint8_t *test = g_test.pixels, *labels = g_test.labels;
    assert_int_equal(g_test.n, 10000);
    int B = n_test_full < g_test.n ? n_test_full : g_test.n;
    packed_net p;
    assert_int_equal(packed_from_net(&p, n), BN_OK);

    float *lf = malloc(sizeof(float) * (size_t)B * 10), *lp = malloc(sizeof(float) * (size_t)B * 10);
    int *pf = malloc(sizeof(int) * (size_t)B), *pp = malloc(sizeof(int) * (size_t)B);
    int Bl = B < 2000 ? B : 2000; /* logits compared bit for bit on these */
    net_forward_eval(n, lf, test, Bl);
    net_predict(n, pf, test, B);
    packed_predict(&p, pp, test, B);
    int mism = 0, correct = 0;
    for (int i = 0; i < B; i++) {
        mism += pf[i] != pp[i];
        correct += pp[i] == labels[i];
    }
    if (mism) fail_msg("%s: %d of %d packed predictions differ from net_predict", topo, mism, B);
    /* the logits are equal bit for bit, for every kernel set and thread count */
    const char *sets[] = {"portable", "avx2", "avx512", "amx", "ref"};
    for (size_t s = 0; s < 5; s++) {
        const packed_kernels *k = packed_kernels_named(sets[s]);
        if (!k) continue;
        int Bk = s == 0 || s == 4 ? (Bl < 1000 ? Bl : 1000) : Bl; /* plain C sets are slower */
        for (int threads = 1; threads <= 2; threads++) {
            memset(lp, 0, sizeof(float) * (size_t)B * 10);
            packed_logits_with(&p, k, lp, test, Bk, threads);
            assert_memory_equal(lf, lp, sizeof(float) * (size_t)Bk * 10);
        }
    }
    /* activations are not constant: the predictions use several classes */
    int used[10] = {0}, n_used = 0;
    for (int i = 0; i < B; i++) used[pp[i]] = 1;
    for (int c = 0; c < 10; c++) n_used += used[c];
    assert_true(n_used >= 3);
    /* the whole-forward reference on a few images */
    int nref = sanitized() ? 3 : 20;
    memset(lp, 0, sizeof(float) * (size_t)B * 10);
    packed_forward_ref(&p, lp, test, nref);
    assert_memory_equal(lf, lp, sizeof(float) * (size_t)nref * 10);
    print_message("%s: %d images, packed == float, %d classes used, accuracy %.4f, simd %s\n", topo, B,
                  n_used, (double)correct / B, packed_simd_name());
    packed_free(&p);
    free(lf), free(lp), free(pf), free(pp);
}

static void check_net_against_float(const char *topo, int n_test_full, uint64_t seed) {
    net n;
    make_net(&n, topo, g_train.pixels, sanitized() ? 32 : 128, seed);
    check_packed_equals_float(&n, topo, n_test_full);
    net_free(&n);
}

static void test_fc_net_equals_float_path(void **state) {
    (void)state;
    check_net_against_float("FC512-FC512", 10000, 3);
}

static void test_vgg3_equals_float_path(void **state) {
    (void)state;
    check_net_against_float("C64-MP2-C64-MP2-FC2048", sanitized() ? 1000 : 10000, 5);
}

/* Small nets of odd shapes and channel counts: packed logits (every kernel
   set, 1 and 2 threads) == whole-forward reference == float path, bit for bit. */
static void test_small_nets_equal_float_path(void **state) {
    (void)state;
    const struct { int c, h, w; const char *topo; } cases[] = {
        {3, 6, 5, "C16-MP2-C64-FC100"},
        {3, 9, 7, "C7-C70-MP2-FC33-FC9"},
        {2, 5, 5, "FC65"},
        {1, 4, 4, ""},
        {4, 3, 37, "C16-MP2-C8-FC10"},
    };
    const char *sets[] = {"portable", "avx2", "avx512", "amx", "ref"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        arch a;
        net n;
        assert_int_equal(arch_parse(&a, cases[i].topo), BN_OK);
        assert_int_equal(net_create(&n, &a, cases[i].c, cases[i].h, cases[i].w, 10), BN_OK);
        pcg32 r;
        rng_keyed(&r, 21, i, RNG_INIT);
        net_init_params(&n, &r);
        for (int l = 0; l < n.n_layers - 1; l++) {
            net_layer *L = &n.layers[l];
            double spread = L->first ? 255.0 * sqrt((double)L->fan_in) / 255.0 * 0.5 : sqrt((double)L->fan_in);
            for (int o = 0; o < L->out_c; o++) {
                L->gamma[o] = pcg32_float(&r) - 0.25f;
                L->beta[o] = pcg32_float(&r) - 0.5f;
                L->mean[o] = (float)((pcg32_double(&r) - 0.5) * spread + (L->first ? 0.25 * L->fan_in * 0.5 : 0));
                L->var[o] = (float)(spread * spread * (0.2 + pcg32_double(&r)));
            }
        }
        const int B = 37;
        size_t img = (size_t)cases[i].c * cases[i].h * cases[i].w;
        uint8_t *x = malloc(img * B);
        for (size_t k = 0; k < img * B; k++) {
            uint32_t u = pcg32_next(&r);
            x[k] = (u & 3) == 0 ? 0 : (uint8_t)(u >> 8);
        }
        float *lf = malloc(sizeof(float) * B * 10), *lr = malloc(sizeof(float) * B * 10), *lp = malloc(sizeof(float) * B * 10);
        net_forward_eval(&n, lf, x, B);
        packed_net p;
        assert_int_equal(packed_from_net(&p, &n), BN_OK);
        packed_forward_ref(&p, lr, x, B);
        assert_memory_equal(lf, lr, sizeof(float) * B * 10);
        for (size_t s = 0; s < 5; s++) {
            const packed_kernels *k = packed_kernels_named(sets[s]);
            if (!k) continue;
            for (int t = 1; t <= 2; t++) {
                memset(lp, 0, sizeof(float) * B * 10);
                packed_logits_with(&p, k, lp, x, B, t);
                assert_memory_equal(lf, lp, sizeof(float) * B * 10);
            }
        }
        packed_free(&p);
        net_free(&n);
        free(x), free(lf), free(lr), free(lp);
    }
}

/* A briefly trained net (1 epoch on 10,000 training images, so BN statistics
   and weights are real): the same predictions, and a useful accuracy. */
static void test_trained_net_equals_float_path(void **state) {
    (void)state;
    const char *topos[] = {"FC512-FC512", "C16-MP2-FC128"};
    for (int t = 0; t < 2; t++) {
        arch a;
        net n;
        assert_int_equal(arch_parse(&a, topos[t]), BN_OK);
        assert_int_equal(net_create(&n, &a, 1, 28, 28, 10), BN_OK);
        pcg32 g;
        rng_keyed(&g, 12, (uint64_t)t, RNG_INIT);
        net_init_params(&n, &g);
        train_recipe r = train_recipe_default();
        r.epochs = 1;
        r.seed = 12;
        dataset tr = data_slice(&g_train, 0, sanitized() ? 2000 : 10000);
        assert_int_equal(train_recipe_run(&n, &tr, NULL, &r, NULL, NULL), BN_OK);
        int B = sanitized() ? 1000 : 10000;
        int *pp = malloc(sizeof(int) * (size_t)B);
        packed_net p;
        assert_int_equal(packed_from_net(&p, &n), BN_OK);
        packed_predict(&p, pp, g_test.pixels, B);
        int correct = 0;
        for (int i = 0; i < B; i++) correct += pp[i] == g_test.labels[i];
        assert_true(correct > (sanitized() ? 0.55 : 0.70) * B);
        packed_free(&p);
        free(pp);
        check_packed_equals_float(&n, topos[t], B);
        net_free(&n);
    }
}

static void test_weight_flip_then_sync(void **state) {
    (void)state;
    /* Flipping stored bits in w and syncing gives the same logits as packing a
       net whose latent weights had those signs. */
    arch a;
    net n;
    assert_int_equal(arch_parse(&a, "C8-MP2-FC40"), BN_OK);
    assert_int_equal(net_create(&n, &a, 1, 8, 8, 10), BN_OK);
    pcg32 r;
    rng_keyed(&r, 2, 0, RNG_INIT);
    net_init_params(&n, &r);
    packed_net p;
    assert_int_equal(packed_from_net(&p, &n), BN_OK);
    packed_layer *L = &p.layers[1];
    net_layer *N = &n.layers[1];
    /* flip weight i of neuron 3 for a few i */
    for (int i = 0; i < N->fan_in; i += 7) {
        N->w[3 * N->fan_in + i] = -N->w[3 * N->fan_in + i];
        if (N->w[3 * N->fan_in + i] == 0.0f) N->w[3 * N->fan_in + i] = 0.5f;
    }
    packed_net q;
    assert_int_equal(packed_from_net(&q, &n), BN_OK);
    for (int j = 0; j < L->kw; j++) {
        uint64_t d = L->w[3 * L->kw + j] ^ q.layers[1].w[3 * L->kw + j];
        assert_true((d & ~L->wvalid[j]) == 0);
        L->w[3 * L->kw + j] ^= d;
    }
    packed_layer_sync(L);
    uint8_t x[4 * 64];
    for (int i = 0; i < 4 * 64; i++) x[i] = (uint8_t)pcg32_next(&r);
    float l1[40], l2[40];
    packed_logits(&p, l1, x, 4);
    packed_logits(&q, l2, x, 4);
    assert_memory_equal(l1, l2, sizeof l1);
    packed_free(&p), packed_free(&q), net_free(&n);
}

static void test_flip_weights(void **state) {
    (void)state;
    arch a;
    net n;
    assert_int_equal(arch_parse(&a, "C8-MP2-FC70"), BN_OK);
    assert_int_equal(net_create(&n, &a, 1, 8, 8, 10), BN_OK);
    pcg32 r;
    rng_keyed(&r, 4, 0, RNG_INIT);
    net_init_params(&n, &r);
    packed_net p, q;
    assert_int_equal(packed_from_net(&p, &n), BN_OK);
    for (int l = 0; l < p.n_layers; l++) {
        packed_layer *L = &p.layers[l];
        size_t nw = (size_t)L->out_c * L->kw;
        int64_t zeros = 0, ones = 0;
        for (size_t i = 0; i < nw; i++) {
            ones += __builtin_popcountll(L->w[i]);
            zeros += __builtin_popcountll(~L->w[i] & L->wvalid[i % L->kw]);
        }
        assert_int_equal(zeros + ones, (int64_t)L->out_c * L->fan_in);
        /* p = 0: nothing; p01 = 1: every real bit 1; p10 = 1: every bit 0 */
        assert_int_equal(packed_copy(&q, &p), BN_OK);
        assert_int_equal(packed_flip_weights(&q, l, 0.0, 0.0, &r), 0);
        assert_memory_equal(q.layers[l].w, L->w, sizeof(uint64_t) * nw);
        assert_int_equal(packed_flip_weights(&q, l, 1.0, 0.0, &r), zeros);
        for (size_t i = 0; i < nw; i++) assert_true(q.layers[l].w[i] == L->wvalid[i % L->kw]);
        assert_int_equal(packed_flip_weights(&q, l, 0.0, 1.0, &r), zeros + ones);
        for (size_t i = 0; i < nw; i++) assert_true(q.layers[l].w[i] == 0);
        packed_free(&q);
        /* p01 = 0.2, p10 = 0.05: counts within 6 sd, only the right bits move,
           the same stream gives the same flips */
        assert_int_equal(packed_copy(&q, &p), BN_OK);
        pcg32 r1, r2;
        rng_keyed(&r1, 9, (uint64_t)l, RNG_INJECT);
        r2 = r1;
        int64_t f = packed_flip_weights(&q, l, 0.2, 0.05, &r1);
        int64_t up = 0, down = 0;
        for (size_t i = 0; i < nw; i++) {
            up += __builtin_popcountll(q.layers[l].w[i] & ~L->w[i]);
            down += __builtin_popcountll(~q.layers[l].w[i] & L->w[i]);
            assert_true((q.layers[l].w[i] & ~L->wvalid[i % L->kw]) == 0);
        }
        assert_int_equal(up + down, f);
        assert_true(fabs((double)up - 0.2 * zeros) <= 6 * sqrt(0.16 * zeros) + 1);
        assert_true(fabs((double)down - 0.05 * ones) <= 6 * sqrt(0.0475 * ones) + 1);
        packed_net q2;
        assert_int_equal(packed_copy(&q2, &p), BN_OK);
        assert_int_equal(packed_flip_weights(&q2, l, 0.2, 0.05, &r2), f);
        assert_memory_equal(q2.layers[l].w, q.layers[l].w, sizeof(uint64_t) * nw);
        /* the flipped copy predicts like a packed net of the flipped signs */
        net m;
        assert_int_equal(net_copy(&m, &n), BN_OK);
        for (int o = 0; o < L->out_c; o++)
            for (int i = 0; i < L->fan_in; i++) {
                int word, bit;
                if (L->first) word = i / 64, bit = i % 64;
                else word = i / L->in_c * L->in_cw + i % L->in_c / 64, bit = i % L->in_c % 64;
                int on = (int)((q.layers[l].w[(size_t)o * L->kw + word] >> bit) & 1u);
                m.layers[l].w[(size_t)o * L->fan_in + i] = on ? 0.5f : -0.5f;
            }
        uint8_t x[9 * 64];
        for (int i = 0; i < 9 * 64; i++) x[i] = (uint8_t)pcg32_next(&r);
        float lq[90], lm[90];
        packed_logits(&q, lq, x, 9);
        net_forward_eval(&m, lm, x, 9);
        assert_memory_equal(lq, lm, sizeof lq);
        net_free(&m);
        packed_free(&q), packed_free(&q2);
    }
    packed_free(&p), net_free(&n);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fold_threshold_every_accumulator),
        cmocka_unit_test(test_fold_threshold_rejects_nan),
        cmocka_unit_test(test_kernels_equal_reference),
        cmocka_unit_test(test_small_nets_equal_float_path),
        cmocka_unit_test(test_weight_flip_then_sync),
        cmocka_unit_test(test_flip_weights),
        cmocka_unit_test(test_fc_net_equals_float_path),
        cmocka_unit_test(test_vgg3_equals_float_path),
        cmocka_unit_test(test_trained_net_equals_float_path),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
