/*
** Layer kernels of the float training path, each a forward/backward pair.
**
** Conventions (llm.c): outputs first, then inputs, then sizes; backward
** functions ADD into the gradients they produce (callers zero them), except
** where a comment says "writes". Shapes are given at every pointer. All
** reductions run in a fixed order, so results are bit-identical whatever the
** number of OpenMP threads.
*/
#ifndef BNAS_LAYERS_H
#define BNAS_LAYERS_H

#include <stdint.h>

/* Writes col (B*H*W, 9*C) from x (B, H, W, C): row (b, y, x) holds the 3x3
   neighbourhood in (ky, kx, c) order, zeros outside the image. */
void im2col3x3(float *col, const float *x, int B, int H, int W, int C);
/* Reference twin of im2col3x3 (plain loops). */
void im2col3x3_ref(float *col, const float *x, int B, int H, int W, int C);

/* The adjoint of im2col3x3: writes dx (B, H, W, C) = col2im(dcol (B*H*W, 9*C)),
   each input summing the columns that read it. */
void col2im3x3(float *dx, const float *dcol, int B, int H, int W, int C);

/* Writes out (M, N) = x (M, K) . w (N, K)^T, each element an fmaf chain in k
   order (engine/gemm.h), so the same bits on every CPU and thread count. */
void matmul_forward(float *out, const float *x, const float *w, int M, int K, int N);
/* Reference twin of matmul_forward: the plain loop of gemm_ref. */
void matmul_forward_ref(float *out, const float *x, const float *w, int M, int K, int N);

/* Backward of matmul_forward: dw (N, K) += dout^T . x (each element's chain
   starts from dw and runs over the M rows in order) and, if dx is not NULL,
   writes dx (M, K) = dout (M, N) . w (N, K). */
void matmul_backward(float *dx, float *dw, const float *dout, const float *x, const float *w,
                     int M, int K, int N);

/* Benchmarks only (`bnas bench`): on = 1 routes matmul_forward and
   matmul_backward through OpenBLAS's sgemm, whose rounding depends on the CPU
   kernel it picks and on the thread count; 0 (the default) through gemm. */
void matmul_use_blas(int on);

/* 2x2 max-pool, stride 2, floor: out (B, H/2, W/2, C) and idx (same shape),
   the flat input index of each maximum (first on ties), from x (B, H, W, C). */
void maxpool2_forward(float *out, int32_t *idx, const float *x, int B, int H, int W, int C);
/* dx (B, H, W, C) += scatter of dout (B, H/2, W/2, C) to the maxima. */
void maxpool2_backward(float *dx, const float *dout, const int32_t *idx, int n_out);

/* A 3x3 convolution fused with the 2x2 max-pool that follows it, for inputs
   with few channels (the first layer): writes out and idx (B, H/2, W/2, OC)
   exactly as im2col3x3 + matmul_forward + maxpool2_forward would, idx being
   the flat index into the (B, H, W, OC) convolution output. wt is the weight
   matrix transposed: (9*C, OC). Equal results need exact sums, which holds for
   integer inputs (pixels, +-1) below 2^24. */
void conv3x3_pool2_forward(float *out, int32_t *idx, const float *x, const float *wt, int B, int H,
                           int W, int C, int OC);

/* Weight gradient of conv3x3_pool2_forward: dw (OC, 9*C) += for every pooled
   output, dout times the input patch of the position that won the pool. */
void conv3x3_pool2_backward(float *dw, const float *dout, const int32_t *idx, const float *x, int B,
                            int H, int W, int C, int OC);

/* Batch norm over M rows of C channels with the batch statistics:
   out = gamma * xhat + beta, xhat = (x - mean) * invstd. Writes out, xhat
   (M, C), mean and invstd (C); updates run_mean and run_var (C) with momentum
   (running variance unbiased, as PyTorch). */
void batchnorm_forward_train(float *out, float *xhat, float *mean, float *invstd,
                             float *run_mean, float *run_var, const float *x,
                             const float *gamma, const float *beta, int M, int C,
                             float eps, float momentum);
/* Writes dx (M, C) and adds dgamma, dbeta (C). dout may alias dx. */
void batchnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dout,
                        const float *xhat, const float *gamma, const float *invstd, int M, int C);

/* Batch norm of x (M, C) with the statistics of another batch s (M, C):
   mean and invstd are s's, xhat = (x - mean) * invstd, out = gamma * xhat +
   beta; the running statistics are updated from s. With s == x it is
   batchnorm_forward_train (which calls it). Flip training uses it to
   normalise the flipped products with the clean ones' statistics. */
void batchnorm_forward_train_from(float *out, float *xhat, float *mean, float *invstd,
                                  float *run_mean, float *run_var, const float *x, const float *s,
                                  const float *gamma, const float *beta, int M, int C,
                                  float eps, float momentum);
/* Its backward, with S_b = sum_rows dout and S_g = sum_rows dout * xhat per
   channel: writes dx = gamma * invstd * dout and ds = -(gamma * invstd / M) *
   (S_b + S_g * shat), shat = (s - mean) * invstd (through the mean and the
   variance of s), adds dgamma += S_g and dbeta += S_b. dout may alias dx, s
   may alias ds. dx + ds is batchnorm_backward's dx when s == x. */
void batchnorm_backward_from(float *dx, float *ds, float *dgamma, float *dbeta, const float *dout,
                             const float *xhat, const float *s, const float *mean, const float *gamma,
                             const float *invstd, int M, int C);

/* out = sign(x) (x > 0 -> +1, else -1), n elements. */
void sign_forward(float *out, const float *x, int64_t n);
/* Clipped straight-through estimator: dx = dout * 1{|x| <= 1}; writes dx. dx may alias dout. */
void sign_backward(float *dx, const float *dout, const float *x, int64_t n);

/* Softmax cross-entropy, mean over B rows of C logits. Writes dlogits (B, C)
   = d(mean loss)/d logits and returns the mean loss. */
double loss_ce(float *dlogits, const float *logits, const uint8_t *labels, int B, int C);

/* Modified hinge loss (MHL) of the margin-maximization paper, as in the
   authors' code: per sample (1/(C*b)) * sum_c max(0, b - y_c z_c), y_c = +1
   for the true class, -1 otherwise; mean over B. Writes dlogits, returns the loss. */
double loss_mhl(float *dlogits, const float *logits, const uint8_t *labels, int B, int C,
                float b);

#endif /* BNAS_LAYERS_H */
