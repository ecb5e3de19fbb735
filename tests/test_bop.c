/*
** Bop and small floating-point momentum formats: rounding into F(e, f, bias)
** is exact against exhaustive enumeration and against binary16 (_Float16),
** bfloat16 (bit manipulation) and binary32; narrow formats lose updates;
** the Bop step matches a plain scalar re-implementation step by step; Bop
** trains on FashionMNIST, independently of the thread count; the memory model.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/bop.h"
#include "engine/err.h"
#include "engine/fpfmt.h"
#include "engine/parallel.h"
#include "engine/train.h"
#include "evaluators/bop_encoding.h"
#include "evaluators/evaluator.h"
#include "tests/testutil.h"



static uint64_t bits_of(double x) {
    uint64_t u;
    memcpy(&u, &x, 8);
    return u;
}

/* ---------------------------------------------------------------------------
** Rounding against exhaustive enumeration
*/

/* All finite non-negative values of F, ascending, with their codes: built
   from the value definition directly (not from fpfmt_decode). */
static int enumerate(const fpfmt *F, double *val, uint32_t *code) {
    int k = 0;
    for (uint32_t E = 0; E + 1 < (1u << F->e); E++)
        for (uint32_t M = 0; M < (1u << F->f); M++) {
            double v;
            if (E == 0) {
                if (M && !F->subnormals) continue;
                v = ldexp((double)M, 1 - F->bias - F->f);
            } else {
                v = ldexp((double)((1u << F->f) + M), (int)E - F->bias - F->f);
            }
            val[k] = v, code[k] = E << F->f | M, k++;
        }
    return k; /* ascending by construction */
}

/* Reference rounding of a >= 0: nearest value; a tie goes to the code with an
   even mantissa, and between 0 and the smallest normal (subnormals off) to 0;
   beyond the largest value: the largest. */
static double ref_round(const double *val, const uint32_t *code, int k, double a) {
    if (a >= val[k - 1]) return val[k - 1];
    int i = 0;
    while (val[i + 1] <= a) i++; /* val[i] <= a < val[i+1] */
    double lo = val[i], hi = val[i + 1];
    if (a - lo < hi - a) return lo;
    if (a - lo > hi - a) return hi;
    if (lo == 0) return lo;
    return (code[i] & 1) == 0 ? lo : hi;
}

static void check_format_exhaustively(int e, int f, int bias, int sub, pcg32 *g) {
    fpfmt F;
    assert_int_equal(fpfmt_init(&F, e, f, bias, sub), BN_OK);
    int cap = 1 << (e + f);
    double *val = calloc((size_t)cap, sizeof(double));
    uint32_t *code = malloc(sizeof(uint32_t) * (size_t)cap);
    int k = enumerate(&F, val, code);
    assert_true(k >= 2 && k <= cap);
    assert_true(val[k - 1] == F.max);
    for (int i = 0; i < k; i++) {
        /* every value, the midpoints to its neighbours and points just around them */
        double pts[8];
        int np = 0;
        pts[np++] = val[i];
        if (i + 1 < k) {
            double mid = 0.5 * (val[i] + val[i + 1]);
            pts[np++] = mid, pts[np++] = nextafter(mid, 0), pts[np++] = nextafter(mid, INFINITY);
            pts[np++] = val[i] + (val[i + 1] - val[i]) * pcg32_double(g);
        } else {
            pts[np++] = val[i] * 1.001, pts[np++] = val[i] * 1e3;
        }
        pts[np++] = nextafter(val[i], INFINITY);
        for (int p = 0; p < np; p++) {
            double a = pts[p], want = ref_round(val, code, k, a);
            double got = fpfmt_round(&F, a), gotn = fpfmt_round(&F, -a);
            if (bits_of(got) != bits_of(want))
                fail_msg("e%dm%db%d%s: round(%.17g) = %.17g, want %.17g", e, f, bias, sub ? "" : "n", a, got, want);
            assert_true(gotn == -want && signbit(gotn));
            /* codes: encode gives the enumerated code, decode gives the value back */
            int j = 0;
            while (val[j] != want) j++;
            assert_int_equal(fpfmt_encode(&F, a), code[j]);
            assert_int_equal(fpfmt_encode(&F, -a), code[j] | 1u << (e + f));
            assert_true(fpfmt_decode(&F, code[j]) == want);
        }
    }
    assert_true(fpfmt_round(&F, 0.0) == 0.0);
    assert_true(isnan(fpfmt_round(&F, NAN)));
    assert_true(fpfmt_round(&F, INFINITY) == F.max); /* saturation */
    assert_true(isnan(fpfmt_decode(&F, ((1u << e) - 1) << f)));
    free(val), free(code);
}

static void test_rounding_matches_enumeration(void **state) {
    (void)state;
    pcg32 g;
    rng_keyed(&g, 1, 0, 100);
    for (int e = 2; e <= 4; e++)
        for (int f = 1; f <= 5; f++)
            for (int sub = 0; sub <= 1; sub++) {
                int ieee = (1 << (e - 1)) - 1;
                check_format_exhaustively(e, f, ieee, sub, &g);
                check_format_exhaustively(e, f, ieee + 9, sub, &g);  /* shifted to small values */
                check_format_exhaustively(e, f, ieee - 3, sub, &g);
            }
    check_format_exhaustively(5, 6, 30, 1, &g);
    check_format_exhaustively(6, 4, 40, 0, &g);
}

/* ---------------------------------------------------------------------------
** Against the standard formats
*/

/* A random double spread over [2^lo, 2^hi) in magnitude, either sign. */
static double random_double(pcg32 *g, int lo, int hi) {
    double m = 1.0 + pcg32_double(g);
    int ex = lo + (int)pcg32_bounded(g, (uint32_t)(hi - lo));
    return (pcg32_next(g) & 1 ? -1 : 1) * ldexp(m, ex);
}

static void test_binary16_matches_float16(void **state) {
    (void)state;
    fpfmt F;
    assert_int_equal(fpfmt_parse(&F, "fp16"), BN_OK);
    assert_true(F.max == 65504.0);
    pcg32 g;
    rng_keyed(&g, 2, 0, 100);
    int n = sanitized() ? 200000 : 2000000;
    for (int i = 0; i < n; i++) {
        double x = random_double(&g, -30, 16);
        if (i % 4 == 1) { /* a tie: the midpoint between two neighbouring binary16 values */
            _Float16 h = (_Float16)fabs(x), h2;
            uint16_t b;
            memcpy(&b, &h, 2);
            b++;
            if (((b >> 10) & 31) == 31) continue;
            memcpy(&h2, &b, 2);
            x = copysign(0.5 * ((double)h + (double)h2), x);
        }
        if (fabs(x) >= 65520.0) continue; /* binary16 overflows to infinity, F saturates (below) */
        double want = (double)(_Float16)x, got = fpfmt_round(&F, x);
        if (bits_of(got) != bits_of(want)) fail_msg("fp16: round(%.17g) = %.17g, _Float16 gives %.17g", x, got, want);
    }
    /* every binary16 value is exact, and its code is the _Float16 bit pattern */
    for (uint32_t c = 0; c < 0x10000; c++) {
        uint16_t b = (uint16_t)c;
        _Float16 h;
        memcpy(&h, &b, 2);
        if (((c >> 10) & 31) == 31) continue;
        assert_true(fpfmt_round(&F, (double)h) == (double)h);
        assert_int_equal(fpfmt_encode(&F, (double)h), c);
    }
    assert_true(fpfmt_round(&F, 1e6) == 65504.0);
}

/* bfloat16 round-to-nearest-even of a binary32 value by bit manipulation. */
static float bf16_rne(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

static void test_bfloat16_and_binary32(void **state) {
    (void)state;
    fpfmt B, S;
    assert_int_equal(fpfmt_parse(&B, "bf16"), BN_OK);
    assert_int_equal(fpfmt_parse(&S, "fp32"), BN_OK);
    pcg32 g;
    rng_keyed(&g, 3, 0, 100);
    int n = sanitized() ? 200000 : 2000000;
    for (int i = 0; i < n; i++) {
        /* binary32 inputs over the whole range, subnormals included; some ties */
        uint32_t u = pcg32_next(&g) & 0x7f7fffffu; /* finite, below the largest binade */
        if (i % 4 == 1) u = (u & 0xffff0000u) | 0x8000u;
        if (pcg32_next(&g) & 1) u |= 0x80000000u;
        float x;
        memcpy(&x, &u, 4);
        float want = bf16_rne(x);
        double got = fpfmt_round(&B, (double)x);
        if (isinf(want)) want = copysignf((float)B.max, x); /* bfloat16 overflows, F saturates */
        if (bits_of(got) != bits_of((double)want)) fail_msg("bf16: round(%.9g) = %.9g, want %.9g", x, got, want);
        /* binary32 from double: the native conversion */
        double d = random_double(&g, -160, 127);
        double w32 = (double)(float)d, g32 = fpfmt_round(&S, d);
        if (bits_of(w32) != bits_of(g32)) fail_msg("fp32: round(%.17g) = %.17g, want %.17g", d, g32, w32);
    }
    assert_true(fpfmt_round(&S, 1e300) == (double)FLT_MAX);
    assert_true(fpfmt_round(&S, 0x1p-149) == 0x1p-149 && fpfmt_round(&S, 0x1p-151) == 0.0);
}

static void test_format_names(void **state) {
    (void)state;
    fpfmt F;
    char buf[32];
    assert_int_equal(fpfmt_parse(&F, "e4m7b20n"), BN_OK);
    assert_int_equal(F.e, 4), assert_int_equal(F.f, 7), assert_int_equal(F.bias, 20), assert_int_equal(F.subnormals, 0);
    fpfmt_name(&F, buf, sizeof buf);
    assert_string_equal(buf, "e4m7b20n");
    assert_int_equal(fpfmt_parse(&F, "e5m10"), BN_OK);
    assert_int_equal(F.bias, 15), assert_int_equal(fpfmt_bits(&F), 16);
    assert_int_equal(fpfmt_parse(&F, "e3m2b-2"), BN_OK);
    const char *bad[] = {"", "e", "e5", "e5m", "m5e3", "e1m4", "e9m4", "e5m0", "e5m24", "e5m10x", "e8m23b200", "e8m23b-10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(fpfmt_parse(&F, bad[i]), BN_EARG);
        assert_non_null(strstr(bn_errmsg(), "format"));
    }
}

/* ---------------------------------------------------------------------------
** Lost updates
*/

static void make_tiny(net *n, const char *topo, uint64_t seed) {
    arch a;
    assert_int_equal(arch_parse(&a, topo), BN_OK);
    assert_int_equal(net_create(n, &a, 1, 4, 4, 3), BN_OK);
    pcg32 g;
    rng_keyed(&g, seed, 0, RNG_INIT);
    net_init_params(n, &g);
}

/* The paper's observation in one value: an update registers only if
   gamma * |g - m| reaches half an ulp of m. With m = 1 and f mantissa bits
   the ulp is 2^-f; gamma (g - m) = 0.01 * 0.5 = 2^-7.6 is lost for f <= 6
   and kept for f >= 7. */
static void test_narrow_mantissa_loses_the_update(void **state) {
    (void)state;
    for (int f = 1; f <= 12; f++) {
        fpfmt F;
        assert_int_equal(fpfmt_init(&F, 5, f, 15, 1), BN_OK);
        double u = 0.99 * 1.0 + 0.01 * 1.5, m = fpfmt_round(&F, u);
        if (f <= 6) assert_true(m == 1.0);
        else assert_true(m > 1.0);
    }
    /* exponent range: a zero momentum stays 0 when gamma * g is below half the
       smallest value (underflow), even though the exact update moved it */
    fpfmt F;
    assert_int_equal(fpfmt_init(&F, 3, 4, 3, 1), BN_OK); /* smallest value 2^(1-3-4) = 2^-6 */
    assert_true(fpfmt_round(&F, 1e-3 * 1e-2) == 0.0);
}

/* On a net with random gradients of a realistic spread, the lost-update
   fraction rises as the mantissa narrows, and FP32 loses (almost) none. */
static void test_lost_updates_rise_for_narrow_formats(void **state) {
    (void)state;
    const char *fmts[] = {"fp32", "e8m10", "e8m7", "e8m4", "e8m2"};
    double frac[5];
    for (int k = 0; k < 5; k++) {
        net n;
        make_tiny(&n, "FC64-FC64", 5);
        fpfmt F;
        assert_int_equal(fpfmt_parse(&F, fmts[k]), BN_OK);
        bop_state b;
        bop_create(&b, &n, &F);
        float *grads = calloc(n.n_params, sizeof(float));
        pcg32 g;
        rng_keyed(&g, 9, 0, 100);
        for (int step = 0; step < 200; step++) {
            for (size_t i = 0; i < n.n_params; i++) grads[i] = (float)(1e-3 * (pcg32_normal(&g) + 0.3));
            bop_step(&b, &n, grads, 1e-2f, 1e-6f);
        }
        frac[k] = (double)b.lost / (double)b.counted;
        print_message("%-6s lost-update fraction %.4f\n", fmts[k], frac[k]);
        free(grads);
        bop_free(&b);
        net_free(&n);
    }
    assert_true(frac[0] < 1e-4);
    for (int k = 1; k < 5; k++) assert_true(frac[k] >= frac[k - 1]);
    assert_true(frac[3] > 0.05 && frac[4] > 0.2);
}

/* ---------------------------------------------------------------------------
** Bop against a plain scalar re-implementation
*/

/* The scalar Bop of the paper, on its own arrays: m (momentum, float),
   w (+1 or -1); FP32 momentum is the float nearest to the double update. */
static int scalar_bop(float *m, int *w, const float *g, size_t n, float gamma, float tau) {
    int lost = 0;
    for (size_t i = 0; i < n; i++) {
        double exact = (1.0 - (double)gamma) * m[i] + (double)gamma * g[i];
        float nm = (float)exact;
        if (nm == m[i] && exact != (double)m[i]) lost++;
        m[i] = nm;
        if ((double)w[i] * (double)m[i] > (double)tau) w[i] = -w[i];
    }
    return lost;
}

static void test_bop_matches_scalar_reference(void **state) {
    (void)state;
    net n;
    make_tiny(&n, "FC6-FC5", 11);
    /* one weight exactly 0 (sign -1): it must flip to a positive value, never to -0 */
    n.layers[0].w[3] = 0.0f;
    fpfmt F = fpfmt_binary32();
    bop_state b;
    bop_create(&b, &n, &F);
    size_t nw = b.n;
    float *m = calloc(nw, sizeof(float)), *grads = calloc(n.n_params, sizeof(float)), *gw = calloc(nw, sizeof(float));
    int *w = calloc(nw, sizeof(int));
    for (int l = 0, k = 0; l < n.n_layers; l++)
        for (int i = 0; i < n.layers[l].out_c * n.layers[l].fan_in; i++) w[k++] = net_sign(n.layers[l].w[i]) > 0 ? 1 : -1;
    pcg32 g;
    rng_keyed(&g, 4, 0, 100);
    int64_t total_flips = 0;
    for (int step = 0; step < 300; step++) {
        for (size_t i = 0; i < n.n_params; i++) grads[i] = (float)(1e-2 * pcg32_normal(&g));
        for (int l = 0, k = 0; l < n.n_layers; l++)
            for (int i = 0; i < n.layers[l].out_c * n.layers[l].fan_in; i++)
                gw[k++] = grads[(n.layers[l].w - n.params) + i];
        int want_lost = scalar_bop(m, w, gw, nw, 0.05f, 1e-3f);
        int64_t f0 = b.flips;
        int64_t lost = bop_step(&b, &n, grads, 0.05f, 1e-3f);
        total_flips += b.flips - f0;
        assert_int_equal(lost, want_lost);
        assert_memory_equal(b.m, m, sizeof(float) * nw);
        for (int l = 0, k = 0; l < n.n_layers; l++)
            for (int i = 0; i < n.layers[l].out_c * n.layers[l].fan_in; i++, k++) {
                float lw = n.layers[l].w[i];
                assert_true((lw > 0 ? 1 : -1) == w[k]);
            }
    }
    assert_true(total_flips > 10);
    assert_true(n.layers[0].w[3] != 0.0f); /* the zero weight has flipped, and did not become -0 */
    free(m), free(grads), free(gw), free(w);
    bop_free(&b);
    net_free(&n);
}

/* The parallel step and its scalar twin are bit-equal for emulated formats,
   with and without subnormals. */
static void test_bop_step_matches_ref_emulated(void **state) {
    (void)state;
    const char *fmts[] = {"e4m5b12", "e5m4b20n"};
    for (int q = 0; q < 2; q++) {
        net a, c;
        make_tiny(&a, "FC300-FC200", 12);
        make_tiny(&c, "FC300-FC200", 12);
        fpfmt F;
        assert_int_equal(fpfmt_parse(&F, fmts[q]), BN_OK);
        bop_state ba, bc;
        bop_create(&ba, &a, &F);
        bop_create(&bc, &c, &F);
        float *grads = calloc(a.n_params, sizeof(float));
        pcg32 g;
        rng_keyed(&g, 6, 0, 100);
        par_set_threads(2);
        for (int step = 0; step < 50; step++) {
            for (size_t i = 0; i < a.n_params; i++) grads[i] = (float)(1e-3 * pcg32_normal(&g));
            assert_int_equal(bop_step(&ba, &a, grads, 1e-2f, 1e-5f), bop_step_ref(&bc, &c, grads, 1e-2f, 1e-5f));
        }
        assert_memory_equal(ba.m, bc.m, sizeof(float) * ba.n);
        assert_memory_equal(a.params, c.params, sizeof(float) * a.n_params);
        assert_true(ba.flips == bc.flips && ba.max_abs == bc.max_abs && ba.flips > 0 && ba.lost > 0);
        for (size_t i = 0; i < ba.n; i++) assert_true(fpfmt_round(&F, ba.m[i]) == ba.m[i]);
        free(grads);
        bop_free(&ba), bop_free(&bc);
        net_free(&a), net_free(&c);
    }
}

/* ---------------------------------------------------------------------------
** Training with Bop
*/

typedef struct { int calls; double lost; } lost_log;
static int on_epoch(const train_progress *p, void *user) {
    lost_log *log = user;
    log->calls++;
    log->lost = p->lost_updates;
    return 0;
}

static void test_bop_trains_fashion_mnist(void **state) {
    (void)state;
    dataset train, test;
    assert_int_equal(data_load_fashion_mnist(&train, &test, NULL), BN_OK);
    dataset tr = data_slice(&train, 0, sanitized() ? 3000 : 10000), te = data_slice(&test, 0, 2000);
    arch a;
    assert_int_equal(arch_parse(&a, "FC256"), BN_OK);
    train_recipe r = train_recipe_default();
    r.epochs = 2, r.batch = 100, r.optimizer = OPT_BOP, r.bop_gamma = 1e-2f, r.bop_tau = 1e-6f;
    double acc[2], lost[2];
    for (int k = 0; k < 2; k++) {
        net n;
        assert_int_equal(net_create(&n, &a, 1, 28, 28, 10), BN_OK);
        pcg32 g;
        rng_keyed(&g, 1, 0, RNG_INIT);
        net_init_params(&n, &g);
        if (k == 1) r.mom_e = 5, r.mom_f = 3, r.mom_bias = 30; /* far too narrow */
        lost_log log = {0};
        assert_int_equal(train_recipe_run(&n, &tr, NULL, &r, on_epoch, &log), BN_OK);
        acc[k] = train_accuracy(&n, &te), lost[k] = log.lost;
        print_message("Bop %s: accuracy %.4f, lost updates %.4f\n", k ? "e5m3b30" : "fp32", acc[k], lost[k]);
        net_free(&n);
    }
    assert_true(acc[0] > (sanitized() ? 0.65 : 0.75));
    assert_true(lost[0] >= 0 && lost[0] < 0.01);
    assert_true(lost[1] > lost[0] + 0.05);
    /* Adam reports no lost updates */
    r = train_recipe_default();
    r.epochs = 1;
    net n;
    assert_int_equal(net_create(&n, &a, 1, 28, 28, 10), BN_OK);
    lost_log log = {0};
    dataset small = data_slice(&train, 0, 500);
    assert_int_equal(train_recipe_run(&n, &small, NULL, &r, on_epoch, &log), BN_OK);
    assert_true(log.lost == -1.0);
    /* bad Bop recipes */
    r.optimizer = OPT_BOP, r.bop_gamma = 0;
    assert_int_equal(train_recipe_run(&n, &small, NULL, &r, NULL, NULL), BN_EARG);
    r = train_recipe_default();
    r.optimizer = OPT_BOP, r.mom_e = 9;
    assert_int_equal(train_recipe_run(&n, &small, NULL, &r, NULL, NULL), BN_EARG);
    assert_non_null(strstr(bn_errmsg(), "momentum format"));
    net_free(&n);
    data_free(&train), data_free(&test);
}

static void test_bop_is_thread_count_independent(void **state) {
    (void)state;
    dataset train, test;
    assert_int_equal(data_load_fashion_mnist(&train, &test, NULL), BN_OK);
    dataset tr = data_slice(&train, 0, 800);
    train_recipe r = train_recipe_default();
    r.epochs = 2, r.batch = 100, r.optimizer = OPT_BOP, r.bop_gamma = 1e-2f;
    r.mom_e = 5, r.mom_f = 7, r.mom_bias = 25;
    arch a;
    assert_int_equal(arch_parse(&a, "C8-MP2-FC32"), BN_OK);
    net n[2];
    for (int k = 0; k < 2; k++) {
        assert_int_equal(net_create(&n[k], &a, 1, 28, 28, 10), BN_OK);
        pcg32 g;
        rng_keyed(&g, 3, 0, RNG_INIT);
        net_init_params(&n[k], &g);
        par_set_threads(k + 1);
        assert_int_equal(train_recipe_run(&n[k], &tr, NULL, &r, NULL, NULL), BN_OK);
    }
    assert_memory_equal(n[0].params, n[1].params, sizeof(float) * n[0].n_params);
    net_free(&n[0]), net_free(&n[1]);
    data_free(&train), data_free(&test);
}

/* The memory model on VGG3, recomputed here from the shapes so the test
   states the model: 1 bit per weight, bits(F) per momentum value, 8 floats
   per batch-norm channel, and one batch's activations. */
static void test_memory_model(void **state) {
    (void)state;
    arch a;
    assert_int_equal(arch_parse(&a, "C64-MP2-C64-MP2-FC2048"), BN_OK);
    net n;
    assert_int_equal(net_create(&n, &a, 1, 28, 28, 10), BN_OK);
    double nw = 64.0 * 9 + 64.0 * 576 + 2048.0 * 3136 + 10.0 * 2048;
    fpfmt F32 = fpfmt_binary32(), F;
    assert_int_equal(fpfmt_parse(&F, "e4m7"), BN_OK);
    bop_memory m32 = bop_memory_model(&n, &F32, 100), m12 = bop_memory_model(&n, &F, 100);
    assert_true(m32.weights == ceil(nw / 8) && m32.momentum == 4 * nw);
    assert_true(m12.momentum == ceil(nw * 12 / 8));
    assert_true(m32.bn == 32.0 * (64 + 64 + 2048) + 12);
    /* accumulator bits: conv1 |acc| <= 255*9 -> 13, conv2 <= 576 -> 11, fc <= 3136 -> 13 */
    assert_int_equal(bop_acc_bits(&n.layers[0]), 13);
    assert_int_equal(bop_acc_bits(&n.layers[1]), 11);
    assert_int_equal(bop_acc_bits(&n.layers[2]), 13);
    double o1 = 100.0 * 14 * 14 * 64, o2 = 100.0 * 7 * 7 * 64, o3 = 100.0 * 2048;
    double act = 100.0 * 784 + ceil(o1 * 13 / 8) + ceil(o2 * 11 / 8) + ceil(o3 * 13 / 8) +
                 8.0 * (64 + 64 + 2048) + ceil(2 * o1 / 8) + ceil(2 * o2 / 8) + 8.0 * 100 * 10;
    assert_true(m32.activations == act && m12.activations == act);
    assert_true(m32.total == m32.weights + m32.momentum + m32.bn + m32.activations);
    print_message("VGG3 batch 100: fp32 %.0f bytes, e4m7 %.0f bytes, factor %.3f\n", m32.total, m12.total,
                  m32.total / m12.total);
    net_free(&n);
}

/* ---------------------------------------------------------------------------
** The encoding search
*/

/* Replaying every weight's gradients gives exactly the lost count of bop_step. */
static void test_replay_matches_bop_step(void **state) {
    (void)state;
    net n;
    make_tiny(&n, "FC40-FC30", 21);
    fpfmt F;
    assert_int_equal(fpfmt_parse(&F, "e4m6b24"), BN_OK);
    bop_state b;
    bop_create(&b, &n, &F);
    const int T = 60, N = (int)b.n;
    float *trace = malloc(sizeof(float) * (size_t)T * N), *grads = calloc(n.n_params, sizeof(float)), gammas[60];
    pcg32 g;
    rng_keyed(&g, 8, 0, 100);
    for (int t = 0; t < T; t++) {
        gammas[t] = t < 30 ? 2e-2f : 2e-3f;
        for (size_t i = 0; i < n.n_params; i++) grads[i] = (float)(1e-4 * (pcg32_normal(&g) + 0.5));
        for (int l = 0, k = 0; l < n.n_layers; l++)
            for (int i = 0; i < n.layers[l].out_c * n.layers[l].fan_in; i++)
                trace[(size_t)t * N + k++] = grads[(n.layers[l].w - n.params) + i];
        bop_step(&b, &n, grads, gammas[t], 1e-6f);
    }
    double max_m, frac = bopenc_replay(&F, trace, T, N, gammas, &max_m);
    assert_true(frac == (double)b.lost / (double)b.counted);
    assert_true(b.lost > 0);
    double mx = 0;
    for (int i = 0; i < N; i++) mx = fabs(b.m[i]) > mx ? fabs(b.m[i]) : mx;
    assert_true(max_m >= mx);
    free(trace), free(grads);
    bop_free(&b);
    net_free(&n);
}

static void test_encoding_search_small(void **state) {
    (void)state;
    dataset train, test;
    assert_int_equal(data_load_fashion_mnist(&train, &test, NULL), BN_OK);
    dataset tr = data_slice(&train, 0, 2000), va = data_slice(&train, 50000, 1000);
    bopenc_config c = bopenc_config_default();
    assert_int_equal(arch_parse(&c.topology, "FC64"), BN_OK);
    c.recipe.epochs = 1, c.recipe.batch = 100, c.recipe.bop_gamma = 1e-2f;
    c.lost_budget = 0.03, c.max_confirm = 2, c.trace_weights = 1000;
    bopenc_result r;
    assert_int_equal(bopenc_search(&c, &tr, &va, &r), BN_OK);
    print_message("fp32 acc %.4f, found %d: e%dm%d, acc %.4f, sim lost %.4f, memory %.0f -> %.0f\n", r.acc_fp32,
                  r.found, r.best.fmt.e, r.best.fmt.f, r.best.acc, r.best.sim_lost, r.mem_fp32.total, r.mem_best.total);
    assert_true(r.acc_fp32 > 0.5);
    assert_true(r.sim_lost_fp32 < 1e-3);
    assert_true(r.screened > 10);
    assert_true(r.n_tried >= 1 && r.n_tried <= 2);
    for (int k = 0; k < r.n_tried; k++) {
        assert_true(r.tried[k].sim_lost <= r.sim_lost_fp32 + 0.03);
        assert_true(r.tried[k].accepted == (r.tried[k].acc >= r.acc_fp32 - 0.01));
        assert_true(r.tried[k].lost >= 0);
        if (k > 0) assert_true(fpfmt_bits(&r.tried[k].fmt) >= fpfmt_bits(&r.tried[k - 1].fmt));
    }
    if (r.found) {
        assert_true(fpfmt_bits(&r.best.fmt) <= 16);
        assert_true(r.best.accepted && r.mem_best.total < r.mem_fp32.total);
        assert_true(r.mem_best.momentum == ceil(r.mem_fp32.momentum / 32 * fpfmt_bits(&r.best.fmt)));
    }
    /* bad settings */
    c.min_bits = 20, c.max_bits = 10;
    assert_int_equal(bopenc_search(&c, &tr, &va, &r), BN_EARG);

    /* the evaluator on a (tiny, untrained) net's topology, bounded */
    net n;
    arch a;
    assert_int_equal(arch_parse(&a, "FC32"), BN_OK);
    assert_int_equal(net_create(&n, &a, 1, 28, 28, 10), BN_OK);
    eval_context ctx = {&n, &tr, &va, &va, 5};
    eval_params p = {0};
    snprintf(p.p[0].key, EVAL_NAME_MAX, "images"), snprintf(p.p[0].value, EVAL_VALUE_MAX, "1500");
    snprintf(p.p[1].key, EVAL_NAME_MAX, "max_confirm"), snprintf(p.p[1].value, EVAL_VALUE_MAX, "1");
    snprintf(p.p[2].key, EVAL_NAME_MAX, "lost_budget"), snprintf(p.p[2].value, EVAL_VALUE_MAX, "0.05");
    p.n = 3;
    eval_metrics m = {0};
    assert_int_equal(eval_run("bop_encoding", &ctx, &p, &m), BN_OK);
    assert_true(eval_metrics_get(&m, "bop_encoding.acc_fp32") > 0.3);
    assert_true(eval_metrics_get(&m, "bop_encoding.memory_fp32") > 0);
    double found = eval_metrics_get(&m, "bop_encoding.found");
    print_message("evaluator: found %.0f, bits %.0f, factor %.3f\n", found, eval_metrics_get(&m, "bop_encoding.bits"),
                  eval_metrics_get(&m, "bop_encoding.memory_factor"));
    if (found == 1) assert_true(eval_metrics_get(&m, "bop_encoding.memory_factor") > 1);
    else assert_true(isnan(eval_metrics_get(&m, "bop_encoding.bits")));
    snprintf(p.p[0].key, EVAL_NAME_MAX, "nope");
    assert_int_equal(eval_run("bop_encoding", &ctx, &p, &m), BN_EARG);
    net_free(&n);
    data_free(&train), data_free(&test);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rounding_matches_enumeration),
        cmocka_unit_test(test_binary16_matches_float16),
        cmocka_unit_test(test_bfloat16_and_binary32),
        cmocka_unit_test(test_format_names),
        cmocka_unit_test(test_narrow_mantissa_loses_the_update),
        cmocka_unit_test(test_lost_updates_rise_for_narrow_formats),
        cmocka_unit_test(test_bop_matches_scalar_reference),
        cmocka_unit_test(test_bop_step_matches_ref_emulated),
        cmocka_unit_test(test_bop_trains_fashion_mnist),
        cmocka_unit_test(test_bop_is_thread_count_independent),
        cmocka_unit_test(test_memory_model),
        cmocka_unit_test(test_replay_matches_bop_step),
        cmocka_unit_test(test_encoding_search_small),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
