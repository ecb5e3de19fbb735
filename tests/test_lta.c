/*
** Chunked sums and LTA (engine/chunk.h, evaluators/lta.h) on briefly trained
** FashionMNIST networks: the chunk kernel equals its one-product reference,
** the chunked driver with the identity function equals packed inference bit
** for bit (for aligned and unaligned channel counts and chunk sizes), LTA
** with one chunk equals the global threshold exactly, LTA with small chunks
** changes decisions, and the hardware cost model reproduces the outputs of
** the authors' resource_calculator.py for the VGG3 and VGG7 shapes.
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
#include "evaluators/lta.h"
#include "engine/packed.h"
#include "engine/train.h"
#include "tests/testutil.h"

static dataset g_train, g_test, g_small;
static net g_fc, g_cnn;

static int train_small(net *n, const char *topo, int n_train, uint64_t seed) {
    return train_small_on(n, &g_train, topo, n_train, seed);
}

static int setup(void **state) {
    (void)state;
    if (load_fashion_mnist(&g_train, &g_test)) return -1;
    if (train_small(&g_fc, "FC100-FC70", sanitized() ? 2000 : 6000, 5)) return -1;
    if (train_small(&g_cnn, "C12-MP2-C20-MP2-FC40", sanitized() ? 1000 : 3000, 6)) return -1;
    g_small = data_slice(&g_test, 0, sanitized() ? 100 : 400);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    net_free(&g_fc), net_free(&g_cnn);
    data_free(&g_train), data_free(&g_test);
    return 0;
}

static void test_round_div(void **state) {
    (void)state;
    assert_int_equal(chunk_round_div(5, 2), 3);
    assert_int_equal(chunk_round_div(-5, 2), -3);
    assert_int_equal(chunk_round_div(4, 3), 1);
    assert_int_equal(chunk_round_div(-4, 3), -1);
    assert_int_equal(chunk_round_div(7, 7), 1);
    assert_int_equal(chunk_round_div(0, 9), 0);
    assert_int_equal(chunk_round_div(-1, 2), -1);
}

/* chunk_sums equals the one-product reference for random rows and every chunk size. */
static void test_chunk_sums_ref(void **state) {
    (void)state;
    pcg32 g;
    rng_keyed(&g, 11, 0, RNG_INIT);
    int fans[] = {1, 63, 64, 65, 200, 576, 1100, 3136};
    for (size_t f = 0; f < sizeof fans / sizeof *fans; f++) {
        int N = fans[f], fw = (N + 63) / 64, out_c = 13;
        uint64_t *w = calloc((size_t)out_c * fw, 8), *x = calloc(fw, 8), *v = calloc(fw, 8);
        for (int i = 0; i < out_c * N; i++)
            if (pcg32_next(&g) & 1) w[(size_t)(i / N) * fw + (i % N) / 64] |= (uint64_t)1 << (i % N % 64);
        for (int i = 0; i < N; i++) {
            if (pcg32_next(&g) & 1) x[i / 64] |= (uint64_t)1 << (i % 64);
            if (pcg32_next(&g) % 8) v[i / 64] |= (uint64_t)1 << (i % 64);
        }
        int ns[] = {1, 3, 4, 7, 16, 17, 32, 64, 100, 128, 1000};
        for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
            chunk_layer C;
            assert_int_equal(chunk_layer_init(&C, ns[k], N, out_c, w), BN_OK);
            int32_t *s = calloc(C.K, 4), *r = calloc((size_t)C.K * out_c, 4), *all = calloc((size_t)C.K * out_c, 4);
            for (int j = 0; j < out_c; j++) {
                chunk_sums(&C, j, x, v, s);
                chunk_sums_ref(&C, N, j, x, v, r + (size_t)j * C.K);
                assert_memory_equal(s, r + (size_t)j * C.K, sizeof(int32_t) * C.K);
            }
            /* all neurons at once, with every count kernel the CPU has */
            static const char *const kern[] = {"ref", "portable", "avx2", "avx512"};
            for (int q = 0; q < 4; q++) {
                chunk_work cw;
                memset(&cw, 0, sizeof cw);
                cw.kern = chunk_count_named(kern[q]);
                if (!cw.kern) continue;
                chunk_work_reserve(&cw, &C);
                memcpy(cw.x, x, sizeof(uint64_t) * fw);
                memcpy(cw.v, v, sizeof(uint64_t) * fw);
                memset(all, 0x55, sizeof(int32_t) * C.K * out_c);
                chunk_sums_all(&C, &cw, all);
                assert_memory_equal(all, r, sizeof(int32_t) * C.K * out_c);
                chunk_work_free(&cw);
            }
            free(s), free(r), free(all);
            chunk_layer_free(&C);
        }
        free(w), free(x), free(v);
    }
}

/* Every vote kernel the CPU has equals the reference. */
static void test_chunk_vote_ref(void **state) {
    (void)state;
    pcg32 g;
    rng_keyed(&g, 12, 0, RNG_INIT);
    int Ks[] = {1, 9, 15, 16, 17, 49, 98};
    for (size_t q = 0; q < sizeof Ks / sizeof *Ks; q++) {
        int K = Ks[q], rows = 13;
        int32_t *s = malloc(sizeof(int32_t) * K * rows), *tau = malloc(sizeof(int32_t) * K * rows);
        for (int i = 0; i < K * rows; i++) s[i] = (int32_t)(pcg32_next(&g) % 129) - 64, tau[i] = (int32_t)(pcg32_next(&g) % 41) - 20;
        int32_t rv[13], rs[13], v[13], sm[13];
        chunk_vote_ref(rv, rs, s, tau, K, rows);
        static const char *const kern[] = {"portable", "avx2", "avx512"};
        for (int k = 0; k < 3; k++) {
            chunk_vote_kernel f = chunk_vote_named(kern[k]);
            if (!f) continue;
            f(v, sm, s, tau, K, rows);
            assert_memory_equal(v, rv, sizeof rv);
            assert_memory_equal(sm, rs, sizeof rs);
        }
        free(s), free(tau);
    }
}

/* The chunked driver with the identity function equals packed inference. */
static void check_identity(const net *n, const int *sizes, int count) {
    packed_net p;
    assert_int_equal(packed_from_net(&p, n), BN_OK);
    int B = g_small.n, C = p.classes;
    float *want = malloc(sizeof(float) * B * C), *got = malloc(sizeof(float) * B * C);
    packed_logits(&p, want, g_small.pixels, B);
    for (int i = 0; i < count; i++) {
        chunk_config cfg;
        memset(&cfg, 0, sizeof cfg);
        for (int l = 1; l < p.n_layers; l++) cfg.n[l] = sizes[i];
        chunk_plan cp;
        assert_int_equal(chunk_plan_create(&cp, &p, &cfg), BN_OK);
        chunk_logits(&cp, got, g_small.pixels, B, 2);
        assert_memory_equal(want, got, sizeof(float) * B * C);
        chunk_logits(&cp, got, g_small.pixels, B, 1);
        assert_memory_equal(want, got, sizeof(float) * B * C);
        chunk_plan_free(&cp);
    }
    /* the first layer cannot be chunked */
    chunk_config bad;
    memset(&bad, 0, sizeof bad);
    bad.n[0] = 8;
    chunk_plan cp;
    assert_int_equal(chunk_plan_create(&cp, &p, &bad), BN_EARG);
    free(want), free(got);
    packed_free(&p);
}

static void test_chunk_identity(void **state) {
    (void)state;
    int sizes[] = {1, 5, 32, 64, 100, 4096};
    check_identity(&g_fc, sizes, 6);
    check_identity(&g_cnn, sizes, 6);
}

/* LTA with one chunk (n >= fan_in) is global thresholding: logits equal. */
static void check_lta_one_chunk(const net *n) {
    packed_net p;
    assert_int_equal(packed_from_net(&p, n), BN_OK);
    int B = g_small.n, C = p.classes;
    float *want = malloc(sizeof(float) * B * C), *got = malloc(sizeof(float) * B * C);
    packed_logits(&p, want, g_small.pixels, B);
    lta_options o;
    memset(&o, 0, sizeof o);
    o.n = 100000;
    for (int q = 0; q < 4; q++) { /* corrected, and with the floor/tail quirks (no effect for one chunk) */
        o.floor_cycles = q & 1, o.tail_zero = q >> 1;
        lta_net a;
        assert_int_equal(lta_create(&a, &p, &o, 2), BN_OK);
        chunk_logits(&a.plan, got, g_small.pixels, B, 2);
        if (o.tail_zero) { /* one chunk is a tail chunk: threshold 0, not T */
            lta_free(&a);
            continue;
        }
        assert_memory_equal(want, got, sizeof(float) * B * C);
        double agree;
        lta_accuracy(&a, &g_small, 2, &agree);
        assert_true(agree == 1.0);
        lta_free(&a);
    }
    free(want), free(got);
    packed_free(&p);
}

static void test_lta_one_chunk(void **state) {
    (void)state;
    check_lta_one_chunk(&g_fc);
    check_lta_one_chunk(&g_cnn);
}

/* Small chunks change some decisions, and the result does not depend on the
   thread count. */
static void test_lta_small_chunks(void **state) {
    (void)state;
    packed_net p;
    assert_int_equal(packed_from_net(&p, &g_cnn), BN_OK);
    lta_options o;
    memset(&o, 0, sizeof o);
    o.n = 8;
    lta_net a;
    assert_int_equal(lta_create(&a, &p, &o, 2), BN_OK);
    double ag2, ag1;
    double acc2 = lta_accuracy(&a, &g_small, 2, &ag2), acc1 = lta_accuracy(&a, &g_small, 1, &ag1);
    assert_true(acc1 == acc2);
    assert_true(ag1 == ag2);
    assert_true(ag2 < 1.0 && ag2 > 0.5);
    lta_free(&a);
    o.n = 0;
    assert_int_equal(lta_create(&a, &p, &o, 2), BN_EARG);
    packed_free(&p);
}

/* The training forward of LTA with one chunk is the running-statistics
   threshold of the pooled accumulators (conv + pool layer of the CNN), and
   with small chunks it differs somewhere. */
static void test_lta_train_layer_one_chunk(void **state) {
    (void)state;
    const net_layer *L = &g_cnn.layers[1];
    int B = 3, rows = B * L->in_h * L->in_w, N = L->fan_in, OC = L->out_c;
    float *in = malloc(sizeof(float) * rows * N), *wb = malloc(sizeof(float) * OC * N);
    float *a = malloc(sizeof(float) * B * L->out_h * L->out_w * OC), *z = malloc(sizeof(float) * rows * OC);
    pcg32 g;
    rng_keyed(&g, 5, 0, RNG_INIT);
    for (int i = 0; i < rows * N; i++) in[i] = (pcg32_next(&g) % 5 == 0) ? 0.0f : (pcg32_next(&g) & 1) ? 1.0f : -1.0f;
    for (int i = 0; i < OC * N; i++) wb[i] = L->w[i] > 0 ? 1.0f : -1.0f;
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < OC; j++) {
            float t = 0;
            for (int i = 0; i < N; i++) t += in[(size_t)r * N + i] * wb[(size_t)j * N + i];
            z[(size_t)r * OC + j] = t;
        }
    lta_options o;
    memset(&o, 0, sizeof o);
    o.n = 100000;
    assert_int_equal(lta_train_layer(L, &o, in, wb, B, a), BN_OK);
    int H = L->in_h, W = L->in_w;
    for (int b = 0; b < B; b++)
        for (int oy = 0; oy < L->out_h; oy++)
            for (int ox = 0; ox < L->out_w; ox++)
                for (int j = 0; j < OC; j++) {
                    size_t r0 = ((size_t)b * H + 2 * oy) * W + 2 * ox;
                    float m = z[r0 * OC + j];
                    size_t rr[3] = {r0 + 1, r0 + W, r0 + W + 1};
                    for (int k = 0; k < 3; k++) m = z[rr[k] * OC + j] > m ? z[rr[k] * OC + j] : m;
                    float want = net_sign(net_bn_value(L, j, m));
                    assert_true(a[(((size_t)b * L->out_h + oy) * L->out_w + ox) * OC + j] == want);
                }
    o.n = 4;
    float *a4 = malloc(sizeof(float) * B * L->out_h * L->out_w * OC);
    assert_int_equal(lta_train_layer(L, &o, in, wb, B, a4), BN_OK);
    assert_memory_not_equal(a, a4, sizeof(float) * B * L->out_h * L->out_w * OC);
    free(in), free(wb), free(a), free(z), free(a4);
}

static void near(double got, double want, double rel) {
    if (fabs(got - want) > rel * fabs(want)) fail_msg("got %.10g, want %.10g", got, want);
}

/* resource_calculator.py outputs (papers.md section 5). */
static void test_cost_model_script(void **state) {
    (void)state;
    lta_shape v3[2] = {{64, 576, 196}, {2048, 3136, 1}};
    lta_shape v7[6] = {{128, 1152, 1024}, {256, 1152, 256}, {256, 2304, 256},
                       {512, 2304, 64}, {512, 4608, 64}, {1024, 8192, 1}};
    lta_costs c;
    lta_cost_model(v3, 2, 64, 64, &c);
    assert_int_equal(c.vgg7_set, 0);
    near(c.sota.area, 2472954.88, 1e-9);
    near(c.lta.area, 5070, 1e-12);
    near(c.lta_mu.area, 5538, 1e-12);
    near(c.sota.energy, 8.472e6, 5e-4);
    near(c.lta.energy, 4.367e5, 5e-4);
    near(c.lta_mu.energy, 3.245e5, 5e-4);
    near(c.sota.latency, 7400728, 1e-12);
    near(c.lta.latency, 12432384, 1e-12);
    near(c.lta_mu.latency, 3271680, 1e-12);
    near(c.analog_frac, 1.0, 0);
    lta_cost_model(v7, 6, 64, 64, &c);
    assert_int_equal(c.vgg7_set, 1);
    near(c.sota.area, 32274000.64, 1e-9);
    near(c.lta.area, 49310.98, 1e-9);
    near(c.lta_mu.area, 49466.98, 1e-9);
    near(c.sota.energy, 2.816e9, 5e-4);
    near(c.lta.energy, 1.957e7, 5e-4);
    near(c.lta_mu.energy, 1.820e7, 5e-4);
    near(c.sota.latency, 330790816, 1e-12);
    near(c.lta.latency, 413669376, 1e-12);
    near(c.lta_mu.latency, 321395836, 1e-12);
    near(c.analog_frac, 294912.0 / 328704.0, 1e-12); /* conv6 (4608) and fc (8192) exceed m*n */
    /* the shapes of a real VGG3 */
    arch a;
    net n;
    packed_net p;
    assert_int_equal(arch_parse(&a, "C64-MP2-C64-MP2-FC2048"), BN_OK);
    assert_int_equal(net_create(&n, &a, 1, 28, 28, 10), BN_OK);
    pcg32 g;
    rng_keyed(&g, 1, 0, RNG_INIT);
    net_init_params(&n, &g);
    assert_int_equal(packed_from_net(&p, &n), BN_OK);
    lta_shape sh[NET_MAX_LAYERS];
    assert_int_equal(lta_shapes_of(&p, sh), 2);
    assert_memory_equal(sh, v3, sizeof v3);
    packed_free(&p);
    net_free(&n);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_div),
        cmocka_unit_test(test_chunk_sums_ref),
        cmocka_unit_test(test_chunk_vote_ref),
        cmocka_unit_test(test_cost_model_script),
        cmocka_unit_test(test_chunk_identity),
        cmocka_unit_test(test_lta_one_chunk),
        cmocka_unit_test(test_lta_small_chunks),
        cmocka_unit_test(test_lta_train_layer_one_chunk),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
