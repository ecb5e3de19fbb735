/*
** Fixed-order single-precision GEMM (see engine/gemm.h for the contract).
**
** The driver is the usual packed, cache-blocked loop nest:
**
**   for jc (NC columns of B and C)
**     for pc (KC steps of k): pack B (KC, NC) into panels of NR columns
**       for ic (MC rows):     pack A (MC, KC) into panels of MR rows
**         for each MR x NR tile of C (split over the threads): tile kernel
**
** A tile kernel keeps its MR x NR accumulators in registers and runs the k
** loop of one KC block; it starts from C when pc > 0 (or the caller asked to
** accumulate), so each element's fmaf chain goes on across KC blocks exactly
** as the reference loop's does. Rows and columns beyond M and N are packed as
** zeros and the tile is computed in a scratch tile, so edges take the same
** path as the interior.
*/
#include "engine/gemm.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "engine/err.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define GEMM_X86 1
#endif

#define GEMM_KC 256   /* k steps per packed block */
#define GEMM_MC 120   /* rows of A per packed block (a multiple of every MR) */
#define GEMM_NC 512   /* columns of B per packed block (a multiple of every NR) */
#define GEMM_MAX_MR 12
#define GEMM_MAX_NR 32
#define GEMM_PAR_FLOPS 262144.0 /* below this many multiply-adds one thread runs it all */

/* MR x NR tile: c (MR, ldc) [init ? c : 0] + pa (kc, MR)^T . pb (kc, NR). */
typedef void (*gemm_tile_fn)(int kc, const float *pa, const float *pb, float *c, int ldc, int init);

struct gemm_kernels {
    const char *name;  /* BNAS_SIMD name */
    int mr, nr;        /* register tile */
    gemm_tile_fn tile; /* NULL: the reference loop */
};

/* ---- reference ---- */

void gemm_ref(float *c, int ldc, const float *a, int64_t ars, int64_t acs, const float *b, int64_t brs,
              int64_t bcs, int M, int N, int K, int accumulate) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float acc = accumulate ? c[(int64_t)i * ldc + j] : 0.0f;
            for (int k = 0; k < K; k++) acc = fmaf(a[i * ars + k * acs], b[k * brs + j * bcs], acc);
            c[(int64_t)i * ldc + j] = acc;
        }
}

/* ---- tile kernels ---- */

/* Portable C: libm's fmaf (one instruction where the compiler targets FMA). */
#define PORT_MR 4
#define PORT_NR 8
static void gemm_tile_portable(int kc, const float *pa, const float *pb, float *c, int ldc, int init) {
    float acc[PORT_MR][PORT_NR];
    for (int r = 0; r < PORT_MR; r++)
        for (int j = 0; j < PORT_NR; j++) acc[r][j] = init ? c[r * ldc + j] : 0.0f;
    for (int k = 0; k < kc; k++) {
        const float *ak = pa + k * PORT_MR, *bk = pb + k * PORT_NR;
        for (int r = 0; r < PORT_MR; r++)
            for (int j = 0; j < PORT_NR; j++) acc[r][j] = fmaf(ak[r], bk[j], acc[r][j]);
    }
    for (int r = 0; r < PORT_MR; r++)
        for (int j = 0; j < PORT_NR; j++) c[r * ldc + j] = acc[r][j];
}

#ifdef GEMM_X86
/* One template for both vector widths: a tile row is two vectors (NR = 2 *
   lanes), MR rows; per k step two loads of B, MR broadcasts of A, 2 * MR FMAs.
   The AVX2 and AVX-512 kernels are this same text with other types. */
#define GEMM_TILE_SIMD(NAME, ATTR, VT, LANES, MR, LOADU, STOREU, SET1, FMADD, ZERO)            \
    ATTR static void NAME(int kc, const float *pa, const float *pb, float *c, int ldc, int init) { \
        VT c0[MR], c1[MR];                                                                      \
        _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++) {                                 \
            c0[r] = init ? LOADU(c + r * ldc) : ZERO();                                         \
            c1[r] = init ? LOADU(c + r * ldc + LANES) : ZERO();                                 \
        }                                                                                       \
        for (int k = 0; k < kc; k++) {                                                          \
            VT b0 = LOADU(pb + k * 2 * LANES), b1 = LOADU(pb + k * 2 * LANES + LANES);          \
            const float *ak = pa + k * MR;                                                      \
            _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++) {                             \
                VT av = SET1(ak[r]);                                                            \
                c0[r] = FMADD(av, b0, c0[r]);                                                   \
                c1[r] = FMADD(av, b1, c1[r]);                                                   \
            }                                                                                   \
        }                                                                                       \
        _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++) {                                 \
            STOREU(c + r * ldc, c0[r]);                                                         \
            STOREU(c + r * ldc + LANES, c1[r]);                                                 \
        }                                                                                       \
    }

#define AVX2_ATTR __attribute__((target("avx2,fma")))
#define AVX512_ATTR __attribute__((target("avx512f,fma")))
GEMM_TILE_SIMD(gemm_tile_avx2, AVX2_ATTR, __m256, 8, 6, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_set1_ps,
               _mm256_fmadd_ps, _mm256_setzero_ps)
GEMM_TILE_SIMD(gemm_tile_avx512, AVX512_ATTR, __m512, 16, 12, _mm512_loadu_ps, _mm512_storeu_ps,
               _mm512_set1_ps, _mm512_fmadd_ps, _mm512_setzero_ps)
#endif

static const gemm_kernels gemm_set_ref = {"ref", 1, 1, NULL};
static const gemm_kernels gemm_set_portable = {"portable", PORT_MR, PORT_NR, gemm_tile_portable};
#ifdef GEMM_X86
static const gemm_kernels gemm_set_avx2 = {"avx2", 6, 16, gemm_tile_avx2};
static const gemm_kernels gemm_set_avx512 = {"avx512", 12, 32, gemm_tile_avx512};
#endif

const gemm_kernels *gemm_kernels_named(const char *name) {
    if (!name) return NULL;
    if (!strcmp(name, "ref")) return &gemm_set_ref;
    if (!strcmp(name, "portable")) return &gemm_set_portable;
#ifdef GEMM_X86
    __builtin_cpu_init();
    if (!strcmp(name, "avx2"))
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? &gemm_set_avx2 : NULL;
    if (!strcmp(name, "avx512") || !strcmp(name, "amx"))
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma") ? &gemm_set_avx512 : NULL;
#endif
    return NULL;
}

static const gemm_kernels *gemm_active;

const gemm_kernels *gemm_kernels_active(void) {
#pragma omp critical(gemm_dispatch)
    {
        if (!gemm_active) {
            const char *env = getenv("BNAS_SIMD");
            const gemm_kernels *k = env && *env ? gemm_kernels_named(env) : NULL;
            if (!k) k = gemm_kernels_named("avx512");
            if (!k) k = gemm_kernels_named("avx2");
            if (!k) k = &gemm_set_portable;
            gemm_active = k;
        }
    }
    return gemm_active;
}

const char *gemm_kernels_name(const gemm_kernels *ks) { return ks ? ks->name : gemm_kernels_active()->name; }

/* ---- packing ---- */

/* pa (ceil(mc/MR), kc, MR) <- A(i0 .. i0+mc, k0 .. k0+kc), rows past mc zero. */
static void gemm_pack_a(float *pa, const float *a, int64_t ars, int64_t acs, int i0, int mc, int k0, int kc,
                        int MR, int p) {
    float *dst = pa + (int64_t)p * kc * MR;
    int rows = mc - p * MR < MR ? mc - p * MR : MR;
    const float *src = a + (int64_t)(i0 + p * MR) * ars + (int64_t)k0 * acs;
    if (rows < MR) memset(dst, 0, sizeof(float) * (size_t)kc * MR);
    if (ars == 1) /* A stored transposed (column-major): read along its rows */
        for (int k = 0; k < kc; k++)
            for (int r = 0; r < rows; r++) dst[k * MR + r] = src[r + k * acs];
    else
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < kc; k++) dst[k * MR + r] = src[r * ars + k * acs];
}

/* pb (ceil(nc/NR), kc, NR) <- B(k0 .. k0+kc, j0 .. j0+nc), columns past nc zero. */
static void gemm_pack_b(float *pb, const float *b, int64_t brs, int64_t bcs, int k0, int kc, int j0, int nc,
                        int NR, int q) {
    float *dst = pb + (int64_t)q * kc * NR;
    int cols = nc - q * NR < NR ? nc - q * NR : NR;
    const float *src = b + (int64_t)k0 * brs + (int64_t)(j0 + q * NR) * bcs;
    if (cols < NR) memset(dst, 0, sizeof(float) * (size_t)kc * NR);
    if (bcs == 1)
        for (int k = 0; k < kc; k++) memcpy(dst + k * NR, src + k * brs, sizeof(float) * (size_t)cols);
    else
        for (int j = 0; j < cols; j++)
            for (int k = 0; k < kc; k++) dst[k * NR + j] = src[k * brs + j * bcs];
}

/* One MR x NR tile at C(i, j) with m x n valid elements. */
static void gemm_tile_at(const gemm_kernels *ks, int kc, const float *pa, const float *pb, float *c, int ldc,
                         int m, int n, int init) {
    int MR = ks->mr, NR = ks->nr;
    if (m == MR && n == NR) {
        ks->tile(kc, pa, pb, c, ldc, init);
        return;
    }
    float t[GEMM_MAX_MR * GEMM_MAX_NR];
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < NR; j++) t[r * NR + j] = init && r < m && j < n ? c[(int64_t)r * ldc + j] : 0.0f;
    ks->tile(kc, pa, pb, t, NR, init);
    for (int r = 0; r < m; r++) memcpy(c + (int64_t)r * ldc, t + r * NR, sizeof(float) * (size_t)n);
}

/* The product on one thread: the blocked loop nest over the whole of C. */
static void gemm_serial(const gemm_kernels *ks, float *c, int ldc, const float *a, int64_t ars, int64_t acs,
                        const float *b, int64_t brs, int64_t bcs, int M, int N, int K, int accumulate) {
    int MR = ks->mr, NR = ks->nr;
    int kcap = K < GEMM_KC ? K : GEMM_KC;
    int ncap = N < GEMM_NC ? (N + NR - 1) / NR * NR : GEMM_NC;
    int mcap = M < GEMM_MC ? (M + MR - 1) / MR * MR : GEMM_MC;
    float *pb = bn_aligned_alloc(sizeof(float) * (size_t)kcap * ncap);
    float *pa = bn_aligned_alloc(sizeof(float) * (size_t)kcap * mcap);
    for (int jc = 0; jc < N; jc += GEMM_NC) {
        int nc = N - jc < GEMM_NC ? N - jc : GEMM_NC, nq = (nc + NR - 1) / NR;
        for (int pc = 0; pc < K; pc += GEMM_KC) {
            int kc = K - pc < GEMM_KC ? K - pc : GEMM_KC;
            int init = accumulate || pc > 0;
            for (int q = 0; q < nq; q++) gemm_pack_b(pb, b, brs, bcs, pc, kc, jc, nc, NR, q);
            for (int ic = 0; ic < M; ic += GEMM_MC) {
                int mc = M - ic < GEMM_MC ? M - ic : GEMM_MC, np = (mc + MR - 1) / MR;
                for (int p = 0; p < np; p++) gemm_pack_a(pa, a, ars, acs, ic, mc, pc, kc, MR, p);
                for (int q = 0; q < nq; q++) /* B panel q stays in L1 while A's panels pass */
                    for (int p = 0; p < np; p++) {
                        int i = ic + p * MR, j = jc + q * NR;
                        int m = M - i < MR ? M - i : MR, n = N - j < NR ? N - j : NR;
                        gemm_tile_at(ks, kc, pa + (int64_t)p * kc * MR, pb + (int64_t)q * kc * NR,
                                     c + (int64_t)i * ldc + j, ldc, m, n, init);
                    }
            }
        }
    }
    free(pa);
    free(pb);
}

void gemm_with(const gemm_kernels *ks, float *c, int ldc, const float *a, int64_t ars, int64_t acs,
               const float *b, int64_t brs, int64_t bcs, int M, int N, int K, int accumulate) {
    if (!ks) ks = gemm_kernels_active();
    if (M <= 0 || N <= 0) return;
    if (!ks->tile) {
        gemm_ref(c, ldc, a, ars, acs, b, brs, bcs, M, N, K, accumulate);
        return;
    }
    if (K <= 0) {
        if (!accumulate)
            for (int i = 0; i < M; i++) memset(c + (int64_t)i * ldc, 0, sizeof(float) * (size_t)N);
        return;
    }
    int nt = (double)M * N * K >= GEMM_PAR_FLOPS && !omp_in_parallel() ? omp_get_max_threads() : 1;
    if (nt <= 1) {
        gemm_serial(ks, c, ldc, a, ars, acs, b, brs, bcs, M, N, K, accumulate);
        return;
    }
    /* Each thread owns a block of C's column panels (or, for narrow C, of its
       row panels) and runs the serial nest on it: no barrier inside. */
    int nq = (N + ks->nr - 1) / ks->nr, np = (M + ks->mr - 1) / ks->mr;
    int by_cols = nq >= 2 * nt || nq >= np;
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        int units = by_cols ? nq : np, u0 = (int)((int64_t)units * t / T), u1 = (int)((int64_t)units * (t + 1) / T);
        if (by_cols) {
            int j0 = u0 * ks->nr, j1 = u1 * ks->nr < N ? u1 * ks->nr : N;
            if (j1 > j0)
                gemm_serial(ks, c + j0, ldc, a, ars, acs, b + j0 * bcs, brs, bcs, M, j1 - j0, K, accumulate);
        } else {
            int i0 = u0 * ks->mr, i1 = u1 * ks->mr < M ? u1 * ks->mr : M;
            if (i1 > i0)
                gemm_serial(ks, c + (int64_t)i0 * ldc, ldc, a + i0 * ars, ars, acs, b, brs, bcs, i1 - i0, N, K,
                            accumulate);
        }
    }
}

void gemm(float *c, int ldc, const float *a, int64_t ars, int64_t acs, const float *b, int64_t brs,
          int64_t bcs, int M, int N, int K, int accumulate) {
    gemm_with(NULL, c, ldc, a, ars, acs, b, brs, bcs, M, N, K, accumulate);
}
