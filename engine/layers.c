/* Float-path layer kernels: im2col, matmul (engine/gemm.h), max-pool, batch norm, sign, losses. */
#include "engine/layers.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "engine/dmath.h"
#include "engine/err.h"
#include "engine/gemm.h"

/* Fixed number of row blocks for reductions: partial sums are combined in
   block order, so the result never depends on the thread count. */
#define RED_BLOCKS 64

void im2col3x3_ref(float *col, const float *x, int B, int H, int W, int C) {
    int K = 9 * C;
    for (int b = 0; b < B; b++)
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++) {
                float *row = col + ((int64_t)(b * H + y) * W + xx) * K;
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++)
                        for (int c = 0; c < C; c++) {
                            int iy = y + ky - 1, ix = xx + kx - 1;
                            float v = 0.0f;
                            if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                                v = x[((int64_t)(b * H + iy) * W + ix) * C + c];
                            row[(ky * 3 + kx) * C + c] = v;
                        }
            }
}

void im2col3x3(float *col, const float *x, int B, int H, int W, int C) {
    int K = 9 * C;
    int64_t rows = (int64_t)B * H * W;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int b = (int)(r / (H * W)), y = (int)(r / W % H), xx = (int)(r % W);
        float *row = col + r * K;
        for (int ky = 0; ky < 3; ky++) {
            int iy = y + ky - 1;
            for (int kx = 0; kx < 3; kx++) {
                int ix = xx + kx - 1;
                float *dst = row + (ky * 3 + kx) * C;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                    memset(dst, 0, sizeof(float) * (size_t)C);
                else
                    memcpy(dst, x + ((int64_t)(b * H + iy) * W + ix) * C, sizeof(float) * (size_t)C);
            }
        }
    }
}

void col2im3x3(float *dx, const float *dcol, int B, int H, int W, int C) {
    int K = 9 * C;
    /* Each thread owns whole output pixels and gathers from the 9 rows that
       read them, so there are no write conflicts and the order is fixed. */
    int64_t pixels = (int64_t)B * H * W;
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < pixels; p++) {
        int b = (int)(p / (H * W)), y = (int)(p / W % H), xx = (int)(p % W);
        float *d = dx + p * C;
        memset(d, 0, sizeof(float) * (size_t)C);
        for (int ky = 0; ky < 3; ky++) {
            int oy = y - ky + 1;
            if (oy < 0 || oy >= H) continue;
            for (int kx = 0; kx < 3; kx++) {
                int ox = xx - kx + 1;
                if (ox < 0 || ox >= W) continue;
                const float *src = dcol + ((int64_t)(b * H + oy) * W + ox) * K + (ky * 3 + kx) * C;
                for (int c = 0; c < C; c++) d[c] += src[c];
            }
        }
    }
}

void matmul_forward_ref(float *out, const float *x, const float *w, int M, int K, int N) {
    gemm_ref(out, N, x, K, 1, w, 1, K, M, N, K, 0);
}

/* 1: the matmuls go through OpenBLAS (matmul_use_blas; benchmarks only). */
static int matmul_blas;

void matmul_use_blas(int on) { matmul_blas = on; }

void matmul_forward(float *out, const float *x, const float *w, int M, int K, int N) {
    if (matmul_blas)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x, K, w, K, 0.0f, out, N);
    else
        gemm(out, N, x, K, 1, w, 1, K, M, N, K, 0);
}

void matmul_backward(float *dx, float *dw, const float *dout, const float *x, const float *w,
                     int M, int K, int N) {
    if (matmul_blas) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, K, M, 1.0f, dout, N, x, K, 1.0f, dw, K);
        if (dx) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, K, N, 1.0f, dout, N, w, K, 0.0f, dx, K);
        return;
    }
    /* dw (N, K) += dout^T (N, M) . x (M, K) */
    gemm(dw, K, dout, 1, N, x, K, 1, N, K, M, 1);
    /* dx (M, K) = dout (M, N) . w (N, K) */
    if (dx) gemm(dx, K, dout, N, 1, w, K, 1, M, K, N, 0);
}

void maxpool2_forward(float *out, int32_t *idx, const float *x, int B, int H, int W, int C) {
    int OH = H / 2, OW = W / 2;
    int64_t opix = (int64_t)B * OH * OW;
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < opix; p++) {
        int b = (int)(p / (OH * OW)), oy = (int)(p / OW % OH), ox = (int)(p % OW);
        for (int c = 0; c < C; c++) {
            int64_t best = ((int64_t)(b * H + 2 * oy) * W + 2 * ox) * C + c;
            float bv = x[best];
            for (int dy = 0; dy < 2; dy++)
                for (int dx = 0; dx < 2; dx++) {
                    int64_t i = ((int64_t)(b * H + 2 * oy + dy) * W + 2 * ox + dx) * C + c;
                    if (x[i] > bv) { bv = x[i]; best = i; }
                }
            out[p * C + c] = bv;
            idx[p * C + c] = (int32_t)best;
        }
    }
}

void maxpool2_backward(float *dx, const float *dout, const int32_t *idx, int n_out) {
    /* Windows do not overlap, so every input receives at most one gradient. */
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n_out; i++) dx[idx[i]] += dout[i];
}

/* Input patch (9*C values, (ky, kx, c) order, zeros outside) of pixel (y, x) of image b. */
static void patch3x3(float *patch, const float *x, int b, int y, int xx, int H, int W, int C) {
    for (int ky = 0; ky < 3; ky++)
        for (int kx = 0; kx < 3; kx++) {
            int iy = y + ky - 1, ix = xx + kx - 1;
            float *dst = patch + (ky * 3 + kx) * C;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                for (int c = 0; c < C; c++) dst[c] = 0.0f;
            else
                for (int c = 0; c < C; c++) dst[c] = x[((int64_t)(b * H + iy) * W + ix) * C + c];
        }
}

/* acc (OC) = sum_k patch[k] * wt (K, OC)[k]; zero inputs (dark pixels, padding)
   are skipped, which changes nothing in the exact sums. Vectorised over OC,
   built for AVX-512, AVX2 and baseline x86-64 and chosen at load time; each
   element sees the same operations in the same order on every variant. */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
static void conv_patch_forward(float *acc, const float *patch, const float *wt, int K, int OC) {
    for (int oc = 0; oc < OC; oc++) acc[oc] = 0.0f;
    for (int k = 0; k < K; k++) {
        float v = patch[k];
        if (v == 0.0f) continue;
        const float *w = wt + (int64_t)k * OC;
        for (int oc = 0; oc < OC; oc++) acc[oc] += v * w[oc];
    }
}

/* dwt (K, OC) += patch (K) outer g (OC), skipping zero inputs. */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
static void conv_patch_backward(float *dwt, const float *patch, const float *g, int K, int OC) {
    for (int k = 0; k < K; k++) {
        float v = patch[k];
        if (v == 0.0f) continue;
        float *row = dwt + (int64_t)k * OC;
        for (int oc = 0; oc < OC; oc++) row[oc] += v * g[oc];
    }
}

/* The running max-pool of one window position: o, oi (OC) take acc where it
   is larger (or unconditionally for the first position). */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
static void conv_pool_update(float *o, int32_t *oi, const float *acc, int32_t base, int first, int OC) {
    for (int oc = 0; oc < OC; oc++) {
        int take = first | (acc[oc] > o[oc]);
        o[oc] = take ? acc[oc] : o[oc];
        oi[oc] = take ? base + oc : oi[oc];
    }
}

/* g (OC) = dout where the pool's maximum sat at this position (index base + oc), else 0;
   returns 1 if any is nonzero. */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
static int conv_pool_grad(float *g, const int32_t *idx, const float *dout, int32_t base, int OC) {
    int any = 0;
    for (int oc = 0; oc < OC; oc++) {
        g[oc] = idx[oc] == base + oc ? dout[oc] : 0.0f;
        any |= g[oc] != 0.0f;
    }
    return any;
}

void conv3x3_pool2_forward(float *out, int32_t *idx, const float *x, const float *wt, int B, int H,
                           int W, int C, int OC) {
    int OH = H / 2, OW = W / 2, K = 9 * C;
    int64_t opix = (int64_t)B * OH * OW;
#pragma omp parallel
    {
        float *patch = bn_malloc(sizeof(float) * (size_t)K);
        float *acc = bn_malloc(sizeof(float) * (size_t)OC);
#pragma omp for schedule(static)
        for (int64_t p = 0; p < opix; p++) {
            int b = (int)(p / (OH * OW)), oy = (int)(p / OW % OH), ox = (int)(p % OW);
            float *o = out + p * OC;
            int32_t *oi = idx + p * OC;
            for (int q = 0; q < 4; q++) { /* window positions in maxpool2_forward's order */
                int y = 2 * oy + q / 2, xx = 2 * ox + q % 2;
                patch3x3(patch, x, b, y, xx, H, W, C);
                conv_patch_forward(acc, patch, wt, K, OC);
                conv_pool_update(o, oi, acc, (int32_t)(((int64_t)(b * H + y) * W + xx) * OC), q == 0, OC);
            }
        }
        free(patch), free(acc);
    }
}

void conv3x3_pool2_backward(float *dw, const float *dout, const int32_t *idx, const float *x, int B,
                            int H, int W, int C, int OC) {
    int OH = H / 2, OW = W / 2, K = 9 * C;
    int64_t opix = (int64_t)B * OH * OW;
    /* Partial sums of dw^T (K, OC) per fixed block of pooled pixels, combined in block order. */
    float *part = bn_calloc((size_t)RED_BLOCKS * OC * K, sizeof(float));
#pragma omp parallel
    {
        float *patch = bn_malloc(sizeof(float) * (size_t)K);
        float *g = bn_malloc(sizeof(float) * (size_t)OC);
#pragma omp for schedule(static)
        for (int blk = 0; blk < RED_BLOCKS; blk++) {
            float *d = part + (int64_t)blk * OC * K;
            int64_t p0 = opix * blk / RED_BLOCKS, p1 = opix * (blk + 1) / RED_BLOCKS;
            for (int64_t p = p0; p < p1; p++) {
                int b = (int)(p / (OH * OW)), oy = (int)(p / OW % OH), ox = (int)(p % OW);
                for (int q = 0; q < 4; q++) {
                    int y = 2 * oy + q / 2, xx = 2 * ox + q % 2;
                    int32_t base = (int32_t)(((int64_t)(b * H + y) * W + xx) * OC);
                    if (!conv_pool_grad(g, idx + p * OC, dout + p * OC, base, OC)) continue;
                    patch3x3(patch, x, b, y, xx, H, W, C);
                    conv_patch_backward(d, patch, g, K, OC);
                }
            }
        }
        free(patch), free(g);
    }
    for (int oc = 0; oc < OC; oc++)
        for (int k = 0; k < K; k++) {
            float s = 0.0f;
            for (int blk = 0; blk < RED_BLOCKS; blk++) s += part[((int64_t)blk * K + k) * OC + oc];
            dw[(int64_t)oc * K + k] += s;
        }
    free(part);
}

/* Per-channel sums of f(x) over M rows in RED_BLOCKS fixed blocks. */
static void colsum_blocks(double *part, const float *x, const float *center, int M, int C) {
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < RED_BLOCKS; blk++) {
        double *acc = part + (int64_t)blk * C;
        memset(acc, 0, sizeof(double) * (size_t)C);
        int64_t r0 = (int64_t)M * blk / RED_BLOCKS, r1 = (int64_t)M * (blk + 1) / RED_BLOCKS;
        for (int64_t r = r0; r < r1; r++) {
            const float *row = x + r * C;
            if (center)
                for (int c = 0; c < C; c++) { double d = (double)row[c] - center[c]; acc[c] += d * d; }
            else
                for (int c = 0; c < C; c++) acc[c] += row[c];
        }
    }
}

void batchnorm_forward_train(float *out, float *xhat, float *mean, float *invstd,
                             float *run_mean, float *run_var, const float *x,
                             const float *gamma, const float *beta, int M, int C,
                             float eps, float momentum) {
    batchnorm_forward_train_from(out, xhat, mean, invstd, run_mean, run_var, x, x, gamma, beta, M, C, eps,
                                 momentum);
}

void batchnorm_forward_train_from(float *out, float *xhat, float *mean, float *invstd,
                                  float *run_mean, float *run_var, const float *x, const float *st,
                                  const float *gamma, const float *beta, int M, int C,
                                  float eps, float momentum) {
    double *part = bn_malloc(sizeof(double) * RED_BLOCKS * (size_t)C);
    colsum_blocks(part, st, NULL, M, C);
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (int blk = 0; blk < RED_BLOCKS; blk++) s += part[(int64_t)blk * C + c];
        mean[c] = (float)(s / M);
    }
    colsum_blocks(part, st, mean, M, C);
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (int blk = 0; blk < RED_BLOCKS; blk++) s += part[(int64_t)blk * C + c];
        double var = s / M;
        invstd[c] = (float)(1.0 / sqrt(var + eps));
        double unbiased = M > 1 ? s / (M - 1) : var;
        run_mean[c] = (1.0f - momentum) * run_mean[c] + momentum * mean[c];
        run_var[c] = (1.0f - momentum) * run_var[c] + momentum * (float)unbiased;
    }
    free(part);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < M; r++)
        for (int c = 0; c < C; c++) {
            float h = (x[r * C + c] - mean[c]) * invstd[c];
            xhat[r * C + c] = h;
            out[r * C + c] = gamma[c] * h + beta[c];
        }
}

/* Per channel S_g = sum dout * xhat into g[c] and S_b = sum dout into
   g[C + c] (fixed blocks, so independent of the thread count); adds them to
   dgamma and dbeta. */
static void batchnorm_sums(float *g, float *dgamma, float *dbeta, const float *dout, const float *xhat, int M,
                           int C) {
    double *part = bn_malloc(sizeof(double) * RED_BLOCKS * 2 * (size_t)C);
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < RED_BLOCKS; blk++) {
        double *sg = part + (int64_t)blk * 2 * C, *sb = sg + C;
        memset(sg, 0, sizeof(double) * 2 * (size_t)C);
        int64_t r0 = (int64_t)M * blk / RED_BLOCKS, r1 = (int64_t)M * (blk + 1) / RED_BLOCKS;
        for (int64_t r = r0; r < r1; r++)
            for (int c = 0; c < C; c++) {
                sg[c] += (double)dout[r * C + c] * xhat[r * C + c];
                sb[c] += dout[r * C + c];
            }
    }
    for (int c = 0; c < C; c++) {
        double sg = 0, sb = 0;
        for (int blk = 0; blk < RED_BLOCKS; blk++) {
            sg += part[(int64_t)blk * 2 * C + c];
            sb += part[(int64_t)blk * 2 * C + C + c];
        }
        g[c] = (float)sg;
        g[C + c] = (float)sb;
        dgamma[c] += (float)sg;
        dbeta[c] += (float)sb;
    }
    free(part);
}

void batchnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dout,
                        const float *xhat, const float *gamma, const float *invstd, int M, int C) {
    float *g = bn_malloc(sizeof(float) * 2 * (size_t)C), *bsum = g + C;
    batchnorm_sums(g, dgamma, dbeta, dout, xhat, M, C);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < M; r++)
        for (int c = 0; c < C; c++) {
            float k = gamma[c] * invstd[c] / (float)M;
            dx[r * C + c] = k * ((float)M * dout[r * C + c] - bsum[c] - xhat[r * C + c] * g[c]);
        }
    free(g);
}

void batchnorm_backward_from(float *dx, float *ds, float *dgamma, float *dbeta, const float *dout,
                             const float *xhat, const float *s, const float *mean, const float *gamma,
                             const float *invstd, int M, int C) {
    float *g = bn_malloc(sizeof(float) * 2 * (size_t)C), *bsum = g + C;
    batchnorm_sums(g, dgamma, dbeta, dout, xhat, M, C);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < M; r++)
        for (int c = 0; c < C; c++) {
            float k = gamma[c] * invstd[c], shat = (s[r * C + c] - mean[c]) * invstd[c];
            ds[r * C + c] = -k / (float)M * (bsum[c] + g[c] * shat);
            dx[r * C + c] = k * dout[r * C + c];
        }
    free(g);
}

void sign_forward(float *out, const float *x, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) out[i] = x[i] > 0.0f ? 1.0f : -1.0f;
}

void sign_backward(float *dx, const float *dout, const float *x, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) dx[i] = fabsf(x[i]) <= 1.0f ? dout[i] : 0.0f;
}

double loss_ce(float *dlogits, const float *logits, const uint8_t *labels, int B, int C) {
    double total = 0;
    for (int b = 0; b < B; b++) {
        const float *z = logits + (int64_t)b * C;
        float *dz = dlogits + (int64_t)b * C;
        float mx = z[0];
        for (int c = 1; c < C; c++) mx = z[c] > mx ? z[c] : mx;
        double sum = 0;
        for (int c = 0; c < C; c++) sum += dmath_exp((double)z[c] - mx);
        double lse = mx + dmath_log(sum);
        total += lse - z[labels[b]];
        for (int c = 0; c < C; c++)
            dz[c] = (float)((dmath_exp((double)z[c] - lse) - (c == labels[b])) / B);
    }
    return total / B;
}

double loss_mhl(float *dlogits, const float *logits, const uint8_t *labels, int B, int C,
                float b) {
    double total = 0, k = 1.0 / ((double)C * b);
    for (int i = 0; i < B; i++) {
        const float *z = logits + (int64_t)i * C;
        float *dz = dlogits + (int64_t)i * C;
        for (int c = 0; c < C; c++) {
            double y = c == labels[i] ? 1.0 : -1.0;
            double h = b - y * z[c];
            if (h > 0) {
                total += k * h;
                dz[c] = (float)(-y * k / B);
            } else {
                dz[c] = 0.0f;
            }
        }
    }
    return total / B;
}
