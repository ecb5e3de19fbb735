/*
** The bit-error tolerance metric on briefly trained FashionMNIST networks:
** the traced forward pass equals packed inference, the local tolerance equals
** a brute-force count on the float batch norm, Theorem 1 holds for many
** random neurons, inputs and flip sets, the bound is tight, the training
** regularizer's margin equals the metric (same flip step), and the metric
** does not depend on the thread count.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/err.h"
#include "engine/margin.h"
#include "engine/packed.h"
#include "engine/trace.h"
#include "engine/train.h"
#include "tests/testutil.h"

static dataset g_train, g_test;
static net g_fc, g_cnn; /* trained once, shared by the tests */

static int train_small(net *n, const char *topo, int n_train, uint64_t seed) {
    return train_small_on(n, &g_train, topo, n_train, seed);
}

static int setup(void **state) {
    (void)state;
    if (load_fashion_mnist(&g_train, &g_test)) return -1;
    int nt = sanitized() ? 3000 : 10000;
    if (train_small(&g_fc, "FC128-FC64", nt, 3)) return -1;
    if (train_small(&g_cnn, sanitized() ? "C8-MP2-FC32" : "C16-MP2-C16-MP2-FC64", sanitized() ? 1000 : 3000, 4))
        return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    net_free(&g_fc), net_free(&g_cnn);
    data_free(&g_train), data_free(&g_test);
    return 0;
}

/* ---- Hand-checked local tolerance ---- */

static void test_local_tolerance_values(void **state) {
    (void)state;
    packed_layer h = {0}, f = {0};
    h.fan_in = 100, f.fan_in = 784, f.first = 1;
    assert_int_equal(margin_local(&h, 10, 10), 0);  /* a = T: one flip reaches T - 2 */
    assert_int_equal(margin_local(&h, 11, 10), 0);
    assert_int_equal(margin_local(&h, 12, 10), 1);  /* 12 - 2 = 10 >= T still */
    assert_int_equal(margin_local(&h, 15, 10), 2);
    assert_int_equal(margin_local(&h, 9, 10), 0);   /* 9 + 2 >= T */
    assert_int_equal(margin_local(&h, 8, 10), 0);   /* 8 + 2 = T flips */
    assert_int_equal(margin_local(&h, 7, 10), 1);   /* 7 + 2 = 9 < T */
    assert_int_equal(margin_local(&h, 5, 10), 2);
    assert_int_equal(margin_local(&h, 1000, -1000), 100); /* capped at fan_in */
    assert_int_equal(margin_local(&h, 0, INT32_MIN), 100);
    assert_int_equal(margin_local(&h, 0, INT32_MAX), 100);
    assert_int_equal(margin_local(&f, 1019, 0), 1); /* first layer: steps of 510 */
    assert_int_equal(margin_local(&f, 1020, 0), 2);
    assert_int_equal(margin_local(&f, -510, 0), 0);
    assert_int_equal(margin_local(&f, -511, 0), 1);
}

/* ---- Traced forward equals packed inference ---- */

static void check_trace_equals_packed(const net *n) {
    packed_net p;
    assert_int_equal(packed_from_net(&p, n), BN_OK);
    int B = sanitized() ? 50 : 500;
    float *logits = malloc(sizeof(float) * (size_t)B * 10);
    packed_logits(&p, logits, g_test.pixels, B);
    trace_scratch s;
    trace_scratch_init(&s, &p);
    int32_t z[10];
    for (int i = 0; i < B; i++) {
        trace_forward(&p, &s, g_test.pixels + (size_t)i * 784, NULL, z);
        for (int c = 0; c < 10; c++) assert_true(p.scale * (float)z[c] == logits[(size_t)i * 10 + c]);
    }
    trace_scratch_free(&s);
    free(logits);
    packed_free(&p);
}

static void test_trace_equals_packed(void **state) {
    (void)state;
    check_trace_equals_packed(&g_fc);
    check_trace_equals_packed(&g_cnn);
}

/* ---- Local tolerance against a brute-force count on the float batch norm ---- */

typedef struct {
    const net *n;
    long checked;
} bf_ctx;

static void bf_hook(void *user, int l, const packed_layer *L, int32_t *acc, int P) {
    bf_ctx *b = user;
    const net_layer *N = &b->n->layers[l];
    int32_t step = margin_step(L);
    for (int c = 0; c < L->out_c; c += 3)
        for (int q = 0; q < P; q += 5) {
            int32_t a = acc[(size_t)q * L->np + c];
            int bit = net_bn_value(N, c, (float)a) > 0.0f;
            int eta = 0; /* largest m <= fan_in with the float path's bit unchanged at a +- step*m */
            while (eta < L->fan_in) {
                int64_t m = (int64_t)step * (eta + 1);
                if ((net_bn_value(N, c, (float)(a - m)) > 0.0f) != bit || (net_bn_value(N, c, (float)(a + m)) > 0.0f) != bit)
                    break;
                eta++;
            }
            assert_int_equal(margin_local(L, a, L->thr[c]), eta);
            b->checked++;
        }
}

/* Runs the first `images` test images through n's packed copy with hook ah. */
static void trace_test_images(const net *n, int images, trace_acc_hook ah, void *user) {
    packed_net p;
    assert_int_equal(packed_from_net(&p, n), BN_OK);
    trace_scratch s;
    trace_scratch_init(&s, &p);
    int32_t z[10];
    trace_hooks h = {NULL, ah, NULL, user};
    for (int i = 0; i < images; i++) trace_forward(&p, &s, g_test.pixels + (size_t)i * 784, &h, z);
    trace_scratch_free(&s);
    packed_free(&p);
}

static void test_local_equals_bruteforce(void **state) {
    (void)state;
    const net *nets[2] = {&g_fc, &g_cnn};
    for (int k = 0; k < 2; k++) {
        bf_ctx b = {nets[k], 0};
        trace_test_images(nets[k], sanitized() ? 5 : 40, bf_hook, &b);
        print_message("net %d: %ld local tolerances equal the brute-force count\n", k, b.checked);
        assert_true(b.checked > 100);
    }
}

/* ---- The regularizer's margin is the metric's (one flip step, first layer included) ---- */

typedef struct {
    const net *n;
    long checked, near_ties, first_checked, conv_checked, neurons;
} reg_ctx;

/* eta of the continuous margin m of a neuron with pre-sign value y (see margin_flips). */
static int32_t eta_of_margin(double m, float y, int fan_in) {
    double e = y > 0.0f ? ceil(m) - 1.0 : floor(m);
    return e > fan_in ? fan_in : (int32_t)e;
}

static void reg_hook(void *user, int l, const packed_layer *L, int32_t *acc, int P) {
    reg_ctx *r = user;
    const net_layer *N = &r->n->layers[l];
    for (int c = 0; c < L->out_c; c++) {
        if (L->thr[c] == INT32_MIN || L->thr[c] == INT32_MAX) continue; /* constant neuron: eta = fan_in by definition */
        float invstd = net_bn_invstd(N, c);
        int32_t best_metric = INT32_MAX, best_reg = INT32_MAX;
        int tie = 0;
        for (int q = 0; q < P; q++) {
            int32_t a = acc[(size_t)q * L->np + c];
            float y = net_bn_value(N, c, (float)a);
            double m = train_neuron_margin(N, c, y, invstd);
            int32_t eta = margin_local(L, a, L->thr[c]), er = eta_of_margin(m, y, L->fan_in);
            if (fabs(m - nearbyint(m)) < 1e-4 * (1.0 + m)) { /* float rounding of y may land on either side */
                tie = 1, r->near_ties++;
                assert_true(er == eta || er == eta + 1 || er == eta - 1);
            } else {
                assert_int_equal(er, eta);
            }
            if (eta < best_metric) best_metric = eta;
            if (er < best_reg) best_reg = er;
            r->checked++, r->first_checked += L->first, r->conv_checked += L->kind == NET_CONV;
        }
        if (!tie) assert_int_equal(best_reg, best_metric); /* eq. 3: the neuron tolerance */
        r->neurons++;
    }
}

static void test_reg_margin_equals_metric(void **state) {
    (void)state;
    const net *nets[2] = {&g_fc, &g_cnn};
    for (int k = 0; k < 2; k++) {
        reg_ctx r = {nets[k], 0, 0, 0, 0, 0};
        trace_test_images(nets[k], sanitized() ? 3 : 30, reg_hook, &r);
        print_message("net %d: %ld positions (%ld first layer, %ld conv), %ld neurons; %ld near float ties\n", k,
                      r.checked, r.first_checked, r.conv_checked, r.neurons, r.near_ties);
        assert_true(r.first_checked > 100);
        assert_true(r.checked > (sanitized() ? 300 : 1000));
        assert_true(r.near_ties * 100 < r.checked); /* ties are rare: the check is real */
        if (k == 1) assert_true(r.conv_checked > 1000);
    }
    /* hand-checked: gamma 1, running var 1 - eps, mean 0, beta 0: y = acc * in_scale,
       so the margin of acc = 1020 raw pixel units in the first layer is 1020 / 510 = 2 flips */
    float g = 1.0f, b = 0.0f, mu = 0.0f, var = 1.0f - NET_BN_EPS;
    net_layer L = {0};
    L.gamma = &g, L.beta = &b, L.mean = &mu, L.var = &var, L.first = 1, L.fan_in = 784;
    double m = train_neuron_margin(&L, 0, net_bn_value(&L, 0, 1020.0f), net_bn_invstd(&L, 0));
    assert_true(fabs(m - 2.0) < 1e-5);
    L.first = 0;
    m = train_neuron_margin(&L, 0, net_bn_value(&L, 0, 6.0f), net_bn_invstd(&L, 0));
    assert_true(fabs(m - 3.0) < 1e-5);
}

/* ---- Theorem 1 and its tightness ---- */

typedef struct {
    int layer, neuron;      /* the neuron observed */
    int32_t eta;            /* its tolerance (min over positions) */
    int32_t acc0, T;        /* accumulator and threshold at position 0 (dense layers) */
    uint64_t in[4096];      /* input bits of the layer (dense hidden layers, up to 4096 words) */
    uint64_t out[4096];     /* the neuron's output bit at each position */
    int P;
} obs_ctx;

static void obs_acc(void *user, int l, const packed_layer *L, int32_t *acc, int P) {
    obs_ctx *o = user;
    if (l != o->layer) return;
    int32_t best = INT32_MAX;
    for (int q = 0; q < P; q++) {
        int32_t e = margin_local(L, acc[(size_t)q * L->np + o->neuron], L->thr[o->neuron]);
        if (e < best) best = e;
    }
    o->eta = best;
    o->acc0 = acc[o->neuron];
    o->T = L->thr[o->neuron];
}

static void obs_bits(void *user, int l, const packed_layer *L, uint64_t *bits, int P) {
    obs_ctx *o = user;
    if (l == o->layer - 1 && (size_t)P * L->out_cw <= 4096) memcpy(o->in, bits, sizeof(uint64_t) * (size_t)P * L->out_cw);
    if (l != o->layer) return;
    assert_true(P <= 4096);
    o->P = P;
    for (int q = 0; q < P; q++) o->out[q] = (bits[(size_t)q * L->out_cw + o->neuron / 64] >> (o->neuron % 64)) & 1u;
}

/* Flips weights idx[0..m) of neuron o of layer l in p (XOR of the canonical bits). */
static void flip_weights(packed_net *p, int l, int o, const int *idx, int m) {
    packed_layer *L = &p->layers[l];
    for (int j = 0; j < m; j++) {
        int i = idx[j], word, bit;
        if (L->first) word = i / 64, bit = i % 64;
        else word = (i / L->in_c) * L->in_cw + (i % L->in_c) / 64, bit = (i % L->in_c) % 64;
        L->w[(size_t)o * L->kw + word] ^= (uint64_t)1 << bit;
    }
    packed_layer_sync(L);
}

static void check_theorem1(const net *n, int trials, uint64_t seed) {
    packed_net p, q;
    assert_int_equal(packed_from_net(&p, n), BN_OK);
    assert_int_equal(packed_from_net(&q, n), BN_OK);
    trace_scratch s;
    trace_scratch_init(&s, &p);
    pcg32 g;
    rng_keyed(&g, seed, 0, 99);
    int32_t z[10];
    int *idx = malloc(sizeof(int) * 100000), *perm = malloc(sizeof(int) * 100000);
    long flips_total = 0, tight_tried = 0, tight_hit = 0, nonzero = 0;
    obs_ctx *o = calloc(1, sizeof *o), *o2 = calloc(1, sizeof *o2);
    for (int t = 0; t < trials; t++) {
        int l = (int)pcg32_bounded(&g, (uint32_t)(p.n_layers - 1));
        const packed_layer *L = &p.layers[l];
        memset(o, 0, sizeof *o);
        o->layer = l, o->neuron = (int)pcg32_bounded(&g, (uint32_t)L->out_c);
        const uint8_t *img = g_test.pixels + (size_t)pcg32_bounded(&g, (uint32_t)g_test.n) * 784;
        trace_forward(&p, &s, img, &(trace_hooks){NULL, obs_acc, obs_bits, o}, z);
        /* Any m <= eta flips leave the output at every position unchanged: m = eta and a random m. */
        for (int rep = 0; rep < 2; rep++) {
            int m = rep == 0 ? o->eta : (int)pcg32_bounded(&g, (uint32_t)o->eta + 1);
            if (m > L->fan_in) m = L->fan_in;
            for (int i = 0; i < L->fan_in; i++) perm[i] = i;
            for (int j = 0; j < m; j++) { /* partial Fisher-Yates: m distinct weights */
                int r = j + (int)pcg32_bounded(&g, (uint32_t)(L->fan_in - j));
                int tmp = perm[j]; perm[j] = perm[r], perm[r] = tmp;
                idx[j] = perm[j];
            }
            flip_weights(&q, l, o->neuron, idx, m);
            memset(o2, 0, sizeof *o2);
            o2->layer = l, o2->neuron = o->neuron;
            trace_forward(&q, &s, img, &(trace_hooks){NULL, obs_acc, obs_bits, o2}, z);
            assert_int_equal(o2->P, o->P);
            for (int k = 0; k < o->P; k++) assert_int_equal(o2->out[k], o->out[k]);
            flip_weights(&q, l, o->neuron, idx, m); /* undo */
            flips_total += m;
            nonzero += m > 0;
        }
        /* Tightness on hidden dense layers: eta + 1 flips of weights that push the
           accumulator towards the threshold change the output. */
        if (L->kind == NET_FC && !L->first && o->eta < L->fan_in) {
            int up = o->acc0 < o->T, m = 0; /* up: the accumulator must grow to flip */
            for (int i = 0; i < L->fan_in && m < o->eta + 1; i++) {
                int word = (i / L->in_c) * L->in_cw + (i % L->in_c) / 64, bit = (i % L->in_c) % 64;
                int xb = (int)((o->in[word] >> bit) & 1u);
                int wb = (int)((L->w[(size_t)o->neuron * L->kw + word] >> bit) & 1u);
                int agree = xb == wb; /* product +1: flipping it lowers the accumulator by 2 */
                if (agree != up) idx[m++] = i;
            }
            if (m == o->eta + 1) {
                tight_tried++;
                flip_weights(&q, l, o->neuron, idx, m);
                memset(o2, 0, sizeof *o2);
                o2->layer = l, o2->neuron = o->neuron;
                trace_forward(&q, &s, img, &(trace_hooks){NULL, obs_acc, obs_bits, o2}, z);
                tight_hit += o2->out[0] != o->out[0];
                assert_int_equal(o2->out[0] != o->out[0], 1);
                flip_weights(&q, l, o->neuron, idx, m);
            }
        }
    }
    print_message("Theorem 1: %d trials, %ld weight flips (%ld non-empty flip sets), no output changed; "
                  "tightness: %ld/%ld adversarial eta+1 flip sets changed the output\n",
                  trials, flips_total, nonzero, tight_hit, tight_tried);
    assert_true(nonzero > trials / 4);
    free(o), free(o2), free(idx), free(perm);
    trace_scratch_free(&s);
    packed_free(&p), packed_free(&q);
}

static void test_theorem1_fc(void **state) {
    (void)state;
    check_theorem1(&g_fc, sanitized() ? 100 : 1000, 11);
}

static void test_theorem1_cnn(void **state) {
    (void)state;
    check_theorem1(&g_cnn, sanitized() ? 40 : 300, 12);
}

/* ---- The whole metric ---- */

static void test_measure_thread_independent(void **state) {
    (void)state;
    dataset d = data_slice(&g_test, 0, sanitized() ? 300 : 3000);
    const net *nets[2] = {&g_fc, &g_cnn};
    for (int k = 0; k < 2; k++) {
        margin_result a, b;
        assert_int_equal(margin_measure(nets[k], &d, 1, &a), BN_OK);
        assert_int_equal(margin_measure(nets[k], &d, 2, &b), BN_OK);
        assert_memory_equal(&a, &b, sizeof a);
        packed_net p;
        assert_int_equal(packed_from_net(&p, nets[k]), BN_OK);
        int *pred = malloc(sizeof(int) * (size_t)d.n);
        packed_predict(&p, pred, d.pixels, d.n);
        long correct = 0;
        for (int i = 0; i < d.n; i++) correct += pred[i] == d.labels[i];
        assert_true(a.accuracy == (double)correct / d.n);
        print_message("net %d: accuracy %.4f  margin.mean %.3f  output %.2f  layers", k, a.accuracy, a.mean, a.output);
        double wsum = 0, nsum = 0;
        for (int l = 0; l < a.n_hidden; l++) {
            print_message(" %.3f", a.layer[l]);
            wsum += a.layer[l] * p.layers[l].out_c, nsum += p.layers[l].out_c;
            assert_true(a.layer[l] >= 0 && a.layer[l] <= p.layers[l].fan_in);
        }
        print_message("\n");
        assert_true(wsum / nsum > a.mean - 1e-9 && wsum / nsum < a.mean + 1e-9);
        assert_true(a.output > 0); /* a trained net classifies most images correctly */
        free(pred);
        packed_free(&p);
    }
    dataset bad = d;
    bad.h = 27;
    margin_result r;
    assert_int_equal(margin_measure(&g_fc, &bad, 1, &r), BN_EARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_tolerance_values),
        cmocka_unit_test(test_trace_equals_packed),
        cmocka_unit_test(test_local_equals_bruteforce),
        cmocka_unit_test(test_reg_margin_equals_metric),
        cmocka_unit_test(test_theorem1_fc),
        cmocka_unit_test(test_theorem1_cnn),
        cmocka_unit_test(test_measure_thread_independent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
