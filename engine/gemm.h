/*
** Single-precision matrix products with a fixed reduction order.
**
**   C (M, N) = [C +] A (M, K) . B (K, N)
**
** with A(i, k) = a[i * ars + k * acs] and B(k, j) = b[k * brs + j * bcs]
** (so any transposition is a choice of strides) and C(i, j) = c[i * ldc + j].
**
** The contract that makes training reproducible on every x86-64 CPU: each
** element of C is one chain of fused multiply-adds in k order,
**
**   acc = accumulate ? C(i, j) : +0.0f
**   for k = 0 .. K-1:  acc = fmaf(A(i, k), B(k, j), acc)
**   C(i, j) = acc
**
** rounded once per step as IEEE fmaf is. Blocking, packing, vector width and
** the split over threads change nothing in that chain, so every kernel set
** (reference loop, portable C, AVX2+FMA, AVX-512) and every thread count gives
** the same bits. BLAS libraries do not promise this: their kernels differ per
** CPU (OpenBLAS's Haswell, SkylakeX and Zen kernels split and reorder the
** k sum differently) and so did the training results before this file.
**
** The kernel set follows BNAS_SIMD like the packed kernels (engine/packed.h):
** ref, portable, avx2, avx512 (amx means avx512 here); else the best the CPU
** has. A CPU without FMA runs the portable set, whose fmaf is libm's
** correctly rounded one: slower, the same bits.
*/
#ifndef BNAS_GEMM_H
#define BNAS_GEMM_H

#include <stdint.h>

/* One kernel set: an MR x NR register tile and the name BNAS_SIMD uses. */
typedef struct gemm_kernels gemm_kernels;

/* C (M, N) = [C +] A (M, K) . B (K, N) as above, on the active kernel set and
   the calling thread's OpenMP threads. K = 0 writes +0 (or leaves C). */
void gemm(float *c, int ldc, const float *a, int64_t ars, int64_t acs, const float *b, int64_t brs,
          int64_t bcs, int M, int N, int K, int accumulate);

/* The same product on the kernel set ks (NULL: the active one). */
void gemm_with(const gemm_kernels *ks, float *c, int ldc, const float *a, int64_t ars, int64_t acs,
               const float *b, int64_t brs, int64_t bcs, int M, int N, int K, int accumulate);

/* Reference twin: the plain triple loop of the contract, one thread. */
void gemm_ref(float *c, int ldc, const float *a, int64_t ars, int64_t acs, const float *b, int64_t brs,
              int64_t bcs, int M, int N, int K, int accumulate);

/* The kernel set named name ("ref", "portable", "avx2", "avx512"), or NULL if
   unknown or the CPU lacks it. */
const gemm_kernels *gemm_kernels_named(const char *name);

/* The kernel set in use (BNAS_SIMD if set and supported, else the best). */
const gemm_kernels *gemm_kernels_active(void);

/* Name of a kernel set. */
const char *gemm_kernels_name(const gemm_kernels *ks);

#endif /* BNAS_GEMM_H */
