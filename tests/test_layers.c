/*
** Layer kernels: each backward against central finite differences of its
** forward (with a guard against an all-zero gradient), each fast kernel
** against its plain reference twin.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/layers.h"
#include "engine/rng.h"

static void fill_uniform(float *x, int64_t n, pcg32 *g, float lo, float hi) {
    for (int64_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * pcg32_float(g);
}

static void fill_pm1(float *x, int64_t n, pcg32 *g) {
    for (int64_t i = 0; i < n; i++) x[i] = (pcg32_next(g) & 1) ? 1.0f : -1.0f;
}

static double dotd(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* Compares an analytic gradient g (n) with central differences of f at x.
   Returns the max relative error; asserts the gradient is not all zero. */
typedef double (*scalar_fn)(void *ctx);
static double check_grad(float *x, const float *g, int64_t n, scalar_fn f, void *ctx, float h) {
    double max_err = 0, norm = 0;
    for (int64_t i = 0; i < n; i++) {
        float keep = x[i];
        x[i] = keep + h;
        double fp = f(ctx);
        x[i] = keep - h;
        double fm = f(ctx);
        x[i] = keep;
        double num = (fp - fm) / (2.0 * h);
        double err = fabs(num - g[i]) / fmax(1e-2, fabs(num) + fabs(g[i]));
        if (err > max_err) max_err = err;
        norm += fabs(g[i]);
    }
    assert_true(norm > 1e-6); /* an all-zero gradient would pass any comparison */
    return max_err;
}

/* ---- matmul ---- */
typedef struct { float *x, *w, *out, *r; int M, K, N; } mm_ctx;
static double mm_loss(void *p) {
    mm_ctx *c = p;
    matmul_forward_ref(c->out, c->x, c->w, c->M, c->K, c->N);
    return dotd(c->out, c->r, (int64_t)c->M * c->N);
}

static void test_matmul_backward_gradcheck(void **state) {
    (void)state;
    pcg32 g;
    pcg32_seed(&g, 1, 2);
    mm_ctx c = {0};
    c.M = 5, c.K = 7, c.N = 3;
    c.x = malloc(sizeof(float) * 35), c.w = malloc(sizeof(float) * 21);
    c.out = malloc(sizeof(float) * 15), c.r = malloc(sizeof(float) * 15);
    fill_uniform(c.x, 35, &g, -1, 1), fill_uniform(c.w, 21, &g, -1, 1), fill_uniform(c.r, 15, &g, -1, 1);
    float dx[35], dw[21] = {0};
    matmul_backward(dx, dw, c.r, c.x, c.w, c.M, c.K, c.N);
    assert_true(check_grad(c.x, dx, 35, mm_loss, &c, 1e-2f) < 1e-3);
    assert_true(check_grad(c.w, dw, 21, mm_loss, &c, 1e-2f) < 1e-3);
    free(c.x), free(c.w), free(c.out), free(c.r);
}

static void test_matmul_pm1_equals_ref_exactly(void **state) {
    (void)state;
    pcg32 g;
    pcg32_seed(&g, 3, 4);
    const int shapes[][3] = {{1, 1, 1}, {3, 65, 7}, {256, 784, 33}, {17, 3136, 64}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int M = shapes[s][0], K = shapes[s][1], N = shapes[s][2];
        float *x = malloc(sizeof(float) * M * K), *w = malloc(sizeof(float) * N * K);
        float *a = malloc(sizeof(float) * M * N), *b = malloc(sizeof(float) * M * N);
        fill_pm1(x, (int64_t)M * K, &g), fill_pm1(w, (int64_t)N * K, &g);
        /* integer pixels in the first column block, as the first layer sees them */
        for (int i = 0; i < M * K; i += 3) x[i] = (float)(pcg32_next(&g) & 255);
        matmul_forward(a, x, w, M, K, N);
        matmul_forward_ref(b, x, w, M, K, N);
        assert_memory_equal(a, b, sizeof(float) * M * N);
        free(x), free(w), free(a), free(b);
    }
}

/* ---- im2col / col2im ---- */
static void test_im2col_equals_ref_and_col2im_is_adjoint(void **state) {
    (void)state;
    pcg32 g;
    pcg32_seed(&g, 5, 6);
    int B = 2, H = 5, W = 4, C = 3, K = 9 * C;
    int64_t nx = (int64_t)B * H * W * C, nc = (int64_t)B * H * W * K;
    float *x = malloc(sizeof(float) * nx), *c1 = malloc(sizeof(float) * nc), *c2 = malloc(sizeof(float) * nc);
    float *r = malloc(sizeof(float) * nc), *dx = calloc((size_t)nx, sizeof(float));
    fill_uniform(x, nx, &g, -1, 1), fill_uniform(r, nc, &g, -1, 1);
    im2col3x3(c1, x, B, H, W, C);
    im2col3x3_ref(c2, x, B, H, W, C);
    assert_memory_equal(c1, c2, sizeof(float) * nc);
    /* <im2col(x), r> == <x, col2im(r)> */
    col2im3x3(dx, r, B, H, W, C);
    double lhs = dotd(c1, r, nc), rhs = dotd(x, dx, nx);
    assert_true(fabs(lhs - rhs) < 1e-4 * (fabs(lhs) + 1));
    free(x), free(c1), free(c2), free(r), free(dx);
}

/* ---- max-pool ---- */
typedef struct { float *x, *out, *r; int32_t *idx; int B, H, W, C; } mp_ctx;
static double mp_loss(void *p) {
    mp_ctx *c = p;
    maxpool2_forward(c->out, c->idx, c->x, c->B, c->H, c->W, c->C);
    return dotd(c->out, c->r, (int64_t)c->B * (c->H / 2) * (c->W / 2) * c->C);
}

static void test_maxpool_backward_gradcheck(void **state) {
    (void)state;
    pcg32 g;
    pcg32_seed(&g, 7, 8);
    mp_ctx c = {0};
    c.B = 2, c.H = 5, c.W = 6, c.C = 3; /* odd height: the last row is dropped */
    int64_t nx = (int64_t)c.B * c.H * c.W * c.C, no = (int64_t)c.B * 2 * 3 * c.C;
    c.x = malloc(sizeof(float) * nx), c.out = malloc(sizeof(float) * no);
    c.r = malloc(sizeof(float) * no), c.idx = malloc(sizeof(int32_t) * no);
    fill_uniform(c.x, nx, &g, -1, 1), fill_uniform(c.r, no, &g, -1, 1);
    mp_loss(&c);
    float *dx = calloc((size_t)nx, sizeof(float));
    maxpool2_backward(dx, c.r, c.idx, (int)no);
    assert_true(check_grad(c.x, dx, nx, mp_loss, &c, 1e-3f) < 1e-3);
    free(c.x), free(c.out), free(c.r), free(c.idx), free(dx);
}

/* ---- fused first-layer conv + pool ---- */
static void test_conv_pool_fused_equals_generic(void **state) {
    (void)state;
    pcg32 g;
    pcg32_seed(&g, 13, 14);
    int B = 3, H = 7, W = 6, C = 1, OC = 5, K = 9 * C, OH = H / 2, OW = W / 2;
    int64_t nx = (int64_t)B * H * W * C, nz = (int64_t)B * H * W * OC, np = (int64_t)B * OH * OW * OC;
    float *x = malloc(sizeof(float) * nx), *wb = malloc(sizeof(float) * OC * K), *wt = malloc(sizeof(float) * OC * K);
    float *col = malloc(sizeof(float) * B * H * W * K), *z = malloc(sizeof(float) * nz);
    float *p1 = malloc(sizeof(float) * np), *p2 = malloc(sizeof(float) * np), *gp = malloc(sizeof(float) * np);
    int32_t *i1 = malloc(sizeof(int32_t) * np), *i2 = malloc(sizeof(int32_t) * np);
    for (int64_t i = 0; i < nx; i++) x[i] = (float)(pcg32_next(&g) % 4); /* small pixels: ties happen */
    fill_pm1(wb, OC * K, &g);
    for (int o = 0; o < OC; o++)
        for (int k = 0; k < K; k++) wt[k * OC + o] = wb[o * K + k];
    im2col3x3_ref(col, x, B, H, W, C);
    matmul_forward_ref(z, col, wb, B * H * W, K, OC);
    maxpool2_forward(p1, i1, z, B, H, W, OC);
    conv3x3_pool2_forward(p2, i2, x, wt, B, H, W, C, OC);
    assert_memory_equal(p1, p2, sizeof(float) * np);
    assert_memory_equal(i1, i2, sizeof(int32_t) * np);
    /* weight gradient: scatter + GEMM against the fused gather */
    fill_uniform(gp, np, &g, -1, 1);
    float *dz = calloc((size_t)nz, sizeof(float)), *dw1 = calloc((size_t)OC * K, sizeof(float));
    float *dw2 = calloc((size_t)OC * K, sizeof(float));
    maxpool2_backward(dz, gp, i1, (int)np);
    matmul_backward(NULL, dw1, dz, col, wb, B * H * W, K, OC);
    conv3x3_pool2_backward(dw2, gp, i2, x, B, H, W, C, OC);
    double norm = 0;
    for (int i = 0; i < OC * K; i++) {
        assert_float_equal(dw1[i], dw2[i], 1e-4 * (1 + fabsf(dw1[i])));
        norm += fabsf(dw1[i]);
    }
    assert_true(norm > 0);
    free(x), free(wb), free(wt), free(col), free(z), free(p1), free(p2), free(gp), free(i1), free(i2);
    free(dz), free(dw1), free(dw2);
}

/* ---- batch norm ---- */
typedef struct { float *x, *gamma, *beta, *out, *xhat, *mean, *invstd, *rm, *rv, *r; int M, C; } bn_ctx;
static double bn_loss(void *p) {
    bn_ctx *c = p;
    batchnorm_forward_train(c->out, c->xhat, c->mean, c->invstd, c->rm, c->rv, c->x, c->gamma,
                            c->beta, c->M, c->C, 1e-5f, 0.1f);
    return dotd(c->out, c->r, (int64_t)c->M * c->C);
}

static void test_batchnorm_backward_gradcheck(void **state) {
    (void)state;
    pcg32 g;
    pcg32_seed(&g, 9, 10);
    bn_ctx c = {0};
    c.M = 6, c.C = 3;
    int64_t n = (int64_t)c.M * c.C;
    c.x = malloc(sizeof(float) * n), c.out = malloc(sizeof(float) * n), c.xhat = malloc(sizeof(float) * n);
    c.r = malloc(sizeof(float) * n);
    float gamma[3] = {1.5f, -0.7f, 0.3f}, beta[3] = {0.1f, -0.2f, 0.5f};
    float mean[3], invstd[3], rm[3] = {0}, rv[3] = {1, 1, 1};
    c.gamma = gamma, c.beta = beta, c.mean = mean, c.invstd = invstd, c.rm = rm, c.rv = rv;
    fill_uniform(c.x, n, &g, -2, 2), fill_uniform(c.r, n, &g, -1, 1);
    bn_loss(&c);
    float *dx = malloc(sizeof(float) * n), dgamma[3] = {0}, dbeta[3] = {0};
    batchnorm_backward(dx, dgamma, dbeta, c.r, c.xhat, gamma, invstd, c.M, c.C);
    assert_true(check_grad(c.x, dx, n, bn_loss, &c, 1e-2f) < 2e-2);
    assert_true(check_grad(gamma, dgamma, 3, bn_loss, &c, 1e-2f) < 1e-2);
    assert_true(check_grad(beta, dbeta, 3, bn_loss, &c, 1e-2f) < 1e-2);
    free(c.x), free(c.out), free(c.xhat), free(c.r), free(dx);
}

/* Batch norm of x with the statistics of s (flip training's clean
   first-layer statistics): finite differences in x, s, gamma and beta, and
   with s = x the two gradients add up to batchnorm_backward's. */
typedef struct { bn_ctx b; float *s; } bns_ctx;
static double bns_loss(void *p) {
    bns_ctx *c = p;
    batchnorm_forward_train_from(c->b.out, c->b.xhat, c->b.mean, c->b.invstd, c->b.rm, c->b.rv, c->b.x, c->s,
                                 c->b.gamma, c->b.beta, c->b.M, c->b.C, 1e-5f, 0.1f);
    return dotd(c->b.out, c->b.r, (int64_t)c->b.M * c->b.C);
}

static void test_batchnorm_from_gradcheck(void **state) {
    (void)state;
    pcg32 g;
    pcg32_seed(&g, 11, 12);
    bns_ctx c = {0};
    c.b.M = 7, c.b.C = 3;
    int64_t n = (int64_t)c.b.M * c.b.C;
    c.b.x = malloc(sizeof(float) * n), c.b.out = malloc(sizeof(float) * n), c.b.xhat = malloc(sizeof(float) * n);
    c.b.r = malloc(sizeof(float) * n), c.s = malloc(sizeof(float) * n);
    float gamma[3] = {1.5f, -0.7f, 0.3f}, beta[3] = {0.1f, -0.2f, 0.5f};
    float mean[3], invstd[3], rm[3] = {0}, rv[3] = {1, 1, 1};
    c.b.gamma = gamma, c.b.beta = beta, c.b.mean = mean, c.b.invstd = invstd, c.b.rm = rm, c.b.rv = rv;
    fill_uniform(c.s, n, &g, -2, 2), fill_uniform(c.b.r, n, &g, -1, 1);
    for (int64_t i = 0; i < n; i++) c.b.x[i] = c.s[i] + (float)(pcg32_next(&g) % 3) * 0.4f - 0.4f; /* shifted */
    bns_loss(&c);
    float *dx = malloc(sizeof(float) * n), *ds = malloc(sizeof(float) * n), dgamma[3] = {0}, dbeta[3] = {0};
    batchnorm_backward_from(dx, ds, dgamma, dbeta, c.b.r, c.b.xhat, c.s, mean, gamma, invstd, c.b.M, c.b.C);
    assert_true(check_grad(c.b.x, dx, n, bns_loss, &c, 1e-2f) < 1e-2);
    assert_true(check_grad(c.s, ds, n, bns_loss, &c, 1e-2f) < 2e-2);
    assert_true(check_grad(gamma, dgamma, 3, bns_loss, &c, 1e-2f) < 1e-2);
    assert_true(check_grad(beta, dbeta, 3, bns_loss, &c, 1e-2f) < 1e-2);
    /* s = x: dx + ds is the ordinary batch-norm gradient; ds may alias s */
    memcpy(c.s, c.b.x, sizeof(float) * n);
    bns_loss(&c);
    float *dref = malloc(sizeof(float) * n), g0[3] = {0}, b0[3] = {0}, g1[3] = {0}, b1[3] = {0};
    batchnorm_backward(dref, g0, b0, c.b.r, c.b.xhat, gamma, invstd, c.b.M, c.b.C);
    batchnorm_backward_from(dx, c.s, g1, b1, c.b.r, c.b.xhat, c.s, mean, gamma, invstd, c.b.M, c.b.C);
    for (int64_t i = 0; i < n; i++) assert_float_equal(dx[i] + c.s[i], dref[i], 1e-5 * (1 + fabsf(dref[i])));
    assert_memory_equal(g0, g1, sizeof g0);
    assert_memory_equal(b0, b1, sizeof b0);
    free(c.b.x), free(c.b.out), free(c.b.xhat), free(c.b.r), free(c.s), free(dx), free(ds), free(dref);
}

static void test_batchnorm_statistics(void **state) {
    (void)state;
    float x[8] = {1, 10, 3, 20, 5, 30, 7, 40}; /* M = 4 rows, C = 2 */
    float out[8], xhat[8], mean[2], invstd[2], rm[2] = {0, 0}, rv[2] = {1, 1};
    float gamma[2] = {1, 1}, beta[2] = {0, 0};
    batchnorm_forward_train(out, xhat, mean, invstd, rm, rv, x, gamma, beta, 4, 2, 0.0f, 0.1f);
    assert_float_equal(mean[0], 4.0f, 1e-6), assert_float_equal(mean[1], 25.0f, 1e-6);
    assert_float_equal(invstd[0], 1.0f / sqrtf(5.0f), 1e-6);
    assert_float_equal(rm[1], 2.5f, 1e-6);
    assert_float_equal(rv[0], 0.9f + 0.1f * (20.0f / 3.0f), 1e-5); /* unbiased */
}

/* ---- sign STE ---- */
static void test_sign_forward_backward(void **state) {
    (void)state;
    float x[6] = {-2.0f, -1.0f, -0.5f, 0.0f, 0.5f, 1.5f}, y[6], d[6] = {1, 1, 1, 1, 1, 1}, dx[6];
    sign_forward(y, x, 6);
    const float ey[6] = {-1, -1, -1, -1, 1, 1};
    assert_memory_equal(y, ey, sizeof ey);
    sign_backward(dx, d, x, 6);
    /* the derivative of the surrogate htanh: 1 on [-1, 1], 0 outside */
    const float edx[6] = {0, 1, 1, 1, 1, 0};
    assert_memory_equal(dx, edx, sizeof edx);
}

/* ---- losses ---- */
typedef struct { float *z, *dz; uint8_t *y; int B, C; int mhl; float b; } loss_ctx;
static double loss_value(void *p) {
    loss_ctx *c = p;
    return c->mhl ? loss_mhl(c->dz, c->z, c->y, c->B, c->C, c->b) : loss_ce(c->dz, c->z, c->y, c->B, c->C);
}

static void test_losses_gradcheck(void **state) {
    (void)state;
    pcg32 g;
    pcg32_seed(&g, 11, 12);
    float z[12], dz[12], grad[12];
    uint8_t y[3] = {0, 3, 2};
    for (int mhl = 0; mhl <= 1; mhl++) {
        loss_ctx c = {z, dz, y, 3, 4, mhl, 2.0f};
        fill_uniform(z, 12, &g, -3, 3);
        loss_value(&c);
        memcpy(grad, dz, sizeof grad);
        assert_true(check_grad(z, grad, 12, loss_value, &c, 1e-3f) < 1e-2);
    }
}

static void test_mhl_matches_formula(void **state) {
    (void)state;
    /* one sample, C = 2, b = 4: z = (1, -6), true class 0:
       (1/(2*4)) * (max(0, 4 - 1) + max(0, 4 - 6)) = 3/8 */
    float z[2] = {1.0f, -6.0f}, dz[2];
    uint8_t y[1] = {0};
    assert_float_equal(loss_mhl(dz, z, y, 1, 2, 4.0f), 0.375, 1e-9);
    assert_float_equal(dz[0], -1.0f / 8.0f, 1e-9);
    assert_float_equal(dz[1], 0.0f, 1e-9);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_backward_gradcheck),
        cmocka_unit_test(test_matmul_pm1_equals_ref_exactly),
        cmocka_unit_test(test_im2col_equals_ref_and_col2im_is_adjoint),
        cmocka_unit_test(test_maxpool_backward_gradcheck),
        cmocka_unit_test(test_conv_pool_fused_equals_generic),
        cmocka_unit_test(test_batchnorm_backward_gradcheck),
        cmocka_unit_test(test_batchnorm_statistics),
        cmocka_unit_test(test_batchnorm_from_gradcheck),
        cmocka_unit_test(test_sign_forward_backward),
        cmocka_unit_test(test_losses_gradcheck),
        cmocka_unit_test(test_mhl_matches_formula),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
