/*
** SIMD kernels of packed inference (see engine/packed.h for the contracts).
**
** Each function is compiled for its instruction set with a target attribute,
** so the build needs no -march flag; packed_kernels_avx512/avx2 return the
** set only if the running CPU has the instructions (__builtin_cpu_supports).
**
**   avx512: AVX-512F/BW, VPOPCNTDQ (vpopcntq) and VNNI (vpdpbusd).
**   avx2:   AVX2; popcount by nibble table (vpshufb) and vpsadbw.
**   amx:    avx512, with the first dense layer on AMX-INT8 tiles (tdpbusd).
**
** Layouts used here are the derived ones of packed_layer: wi (np/8, kw, 8),
** 8 neurons per 64-bit word step (one zmm = 8 neurons), and w8 (np/16, k4/4,
** 16, 4), 16 neurons times 4 bytes (one zmm, the vpdpbusd operand).
*/
#define _GNU_SOURCE /* syscall() for the AMX permission request */
#include "engine/packed.h"

#include "engine/err.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vpopcntdq,avx512vnni")))
#define AVX512_INLINE static inline __attribute__((always_inline)) AVX512_TARGET
#define AVX2_TARGET __attribute__((target("avx2,popcnt")))
#define AVX2_INLINE static inline __attribute__((always_inline)) AVX2_TARGET

static uint32_t simd_load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* ================================ AVX-512 ================================ */


/* 8 rows x NG groups of 16 neurons, vpdpbusd over the dword steps listed in
   ks (steps where some row has a nonzero pixel; the others add nothing).
   xr are the 8 row pointers (tail rows repeat a real row and are not stored).
   add: add to the accumulators already in acc (later k chunks). */
AVX512_INLINE void u8dense512_block(int32_t *acc, const uint8_t *const *xr, const uint16_t *ks, int nk,
                                    const packed_layer *L, int r0, int rr, int g0, int NG, int add) {
    int kq = L->k4 / 4;
    const int8_t *wb = L->w8 + (size_t)g0 * kq * 64;
    const uint8_t *x0 = xr[0], *x1 = xr[1], *x2 = xr[2], *x3 = xr[3], *x4 = xr[4], *x5 = xr[5], *x6 = xr[6], *x7 = xr[7];
    /* Named accumulators (not an array): keeps GCC from copying them around the loop. */
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    __m512i b0 = a0, b1 = a0, b2 = a0, b3 = a0, b4 = a0, b5 = a0, b6 = a0, b7 = a0;
    for (int i = 0; i < nk; i++) {
        size_t k = ks[i];
        __m512i w0 = _mm512_load_si512((const void *)(wb + k * 64));
#define U8_ROW(av, xp)                                                           \
    do {                                                                         \
        __m512i bc = _mm512_set1_epi32((int)simd_load_u32(xp + 4 * k));          \
        av = _mm512_dpbusd_epi32(av, bc, w0);                                    \
    } while (0)
        U8_ROW(a0, x0); U8_ROW(a1, x1); U8_ROW(a2, x2); U8_ROW(a3, x3);
        U8_ROW(a4, x4); U8_ROW(a5, x5); U8_ROW(a6, x6); U8_ROW(a7, x7);
        if (NG > 1) {
            w0 = _mm512_load_si512((const void *)(wb + ((size_t)kq + k) * 64));
            U8_ROW(b0, x0); U8_ROW(b1, x1); U8_ROW(b2, x2); U8_ROW(b3, x3);
            U8_ROW(b4, x4); U8_ROW(b5, x5); U8_ROW(b6, x6); U8_ROW(b7, x7);
        }
#undef U8_ROW
    }
    __m512i sa[8] = {a0, a1, a2, a3, a4, a5, a6, a7}, sb[8] = {b0, b1, b2, b3, b4, b5, b6, b7};
    for (int r = 0; r < rr; r++)
        for (int g = 0; g < NG; g++) {
            int32_t *o = acc + (size_t)(r0 + r) * L->np + (g0 + g) * 16;
            __m512i v = g ? sb[r] : sa[r];
            if (add) v = _mm512_add_epi32(v, _mm512_loadu_si512((const void *)o));
            _mm512_storeu_si512((void *)o, v);
        }
}

/* Dword steps [k0, k0+n) where some of the rr rows has a nonzero pixel. */
static int u8_nonzero_steps(uint16_t *ks, const uint8_t *const *xr, int rr, int k0, int n) {
    int nk = 0;
    for (int k = k0; k < k0 + n; k++) {
        uint32_t any = 0;
        for (int r = 0; r < rr; r++) any |= simd_load_u32(xr[r] + 4 * k);
        ks[nk] = (uint16_t)k;
        nk += any != 0;
    }
    return nk;
}

/* Short rows (first convs: 9*C bytes): per row, NG groups of 16 neurons at
   once over the row's dwords; the weights stay in L1. */
AVX512_INLINE void u8short512_row(int32_t *o, const uint8_t *xr, const int8_t *wg, int kq, int NG) {
    __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
    size_t gs = (size_t)kq * 64; /* bytes between groups */
    for (int k = 0; k < kq; k++) {
        __m512i b = _mm512_set1_epi32((int)simd_load_u32(xr + 4 * k));
        const int8_t *wk = wg + (size_t)k * 64;
        s0 = _mm512_dpbusd_epi32(s0, b, _mm512_load_si512((const void *)wk));
        if (NG > 1) s1 = _mm512_dpbusd_epi32(s1, b, _mm512_load_si512((const void *)(wk + gs)));
        if (NG > 2) s2 = _mm512_dpbusd_epi32(s2, b, _mm512_load_si512((const void *)(wk + 2 * gs)));
        if (NG > 3) s3 = _mm512_dpbusd_epi32(s3, b, _mm512_load_si512((const void *)(wk + 3 * gs)));
    }
    _mm512_storeu_si512((void *)o, s0);
    if (NG > 1) _mm512_storeu_si512((void *)(o + 16), s1);
    if (NG > 2) _mm512_storeu_si512((void *)(o + 32), s2);
    if (NG > 3) _mm512_storeu_si512((void *)(o + 48), s3);
}

AVX512_TARGET static void u8short_avx512(int32_t *acc, const uint8_t *x, int ldx, const packed_layer *L, int R) {
    int G = L->np / 16, kq = L->k4 / 4;
    for (int r = 0; r < R; r++) {
        const uint8_t *xr = x + (size_t)r * ldx;
        int g = 0;
        for (; g + 4 <= G; g += 4) u8short512_row(acc + (size_t)r * L->np + 16 * g, xr, L->w8 + (size_t)g * kq * 64, kq, 4);
        for (; g < G; g++) u8short512_row(acc + (size_t)r * L->np + 16 * g, xr, L->w8 + (size_t)g * kq * 64, kq, 1);
    }
}

AVX512_TARGET static void u8dense_avx512(int32_t *acc, const uint8_t *x, int ldx, const packed_layer *L, int R) {
    if (L->k4 <= 64) {
        u8short_avx512(acc, x, ldx, L, R);
        return;
    }
    enum { KCHUNK = 256, RB = 4 }; /* dword steps per pass; row blocks of 8 per pass */
    int G = L->np / 16, kq = L->k4 / 4;
    uint16_t ks[RB][KCHUNK];
    int nk[RB];
    const uint8_t *xr[RB][8];
    for (int r0 = 0; r0 < R; r0 += 8 * RB) {
        int nb = (R - r0 + 7) / 8 < RB ? (R - r0 + 7) / 8 : RB;
        for (int k0 = 0; k0 < kq; k0 += KCHUNK) {
            int n = kq - k0 < KCHUNK ? kq - k0 : KCHUNK;
            for (int b = 0; b < nb; b++) {
                int rb = r0 + 8 * b, rr = R - rb < 8 ? R - rb : 8;
                for (int r = 0; r < 8; r++) xr[b][r] = x + (size_t)(rb + (r < rr ? r : rr - 1)) * ldx;
                nk[b] = u8_nonzero_steps(ks[b], xr[b], rr, k0, n);
            }
            /* 32 neurons' weights of the chunk stay in L1 while the row blocks pass */
            int g = 0;
            for (; g + 2 <= G; g += 2)
                for (int b = 0; b < nb; b++) {
                    int rb = r0 + 8 * b, rr = R - rb < 8 ? R - rb : 8;
                    u8dense512_block(acc, xr[b], ks[b], nk[b], L, rb, rr, g, 2, k0 > 0);
                }
            for (; g < G; g++)
                for (int b = 0; b < nb; b++) {
                    int rb = r0 + 8 * b, rr = R - rb < 8 ? R - rb : 8;
                    u8dense512_block(acc, xr[b], ks[b], nk[b], L, rb, rr, g, 1, k0 > 0);
                }
        }
    }
}

/* s[r][h] lane l = popcount(row r0 + r of a XOR neuron 8 (g0 + h) + l) for RR
   <= 4 rows and 2 groups (16 neurons). */
AVX512_INLINE void bdense512_popcounts(__m512i s[4][2], const uint64_t *a, const packed_layer *L, int r0, int RR,
                                       int g0) {
    int kw = L->kw;
    for (int r = 0; r < 4; r++) s[r][0] = s[r][1] = _mm512_setzero_si512();
    const uint64_t *w0 = L->wi + (size_t)g0 * kw * 8, *w1 = w0 + (size_t)kw * 8;
    const uint64_t *ar = a + (size_t)r0 * kw;
    for (int j = 0; j < kw; j++) {
        __m512i x0 = _mm512_load_si512((const void *)(w0 + (size_t)j * 8));
        __m512i x1 = _mm512_load_si512((const void *)(w1 + (size_t)j * 8));
        for (int r = 0; r < RR; r++) {
            __m512i b = _mm512_set1_epi64((long long)ar[(size_t)r * kw + j]);
            s[r][0] = _mm512_add_epi64(s[r][0], _mm512_popcnt_epi64(_mm512_xor_si512(b, x0)));
            s[r][1] = _mm512_add_epi64(s[r][1], _mm512_popcnt_epi64(_mm512_xor_si512(b, x1)));
        }
    }
}

/* acc[r][8 neurons] = fan_in - 2 * popcount sums of 2 groups (16 neurons) for RR rows. */
AVX512_INLINE void bdense512_block(int32_t *acc, const uint64_t *a, const packed_layer *L, int r0, int RR,
                                   int g0) {
    __m512i s[4][2];
    bdense512_popcounts(s, a, L, r0, RR, g0);
    __m256i k = _mm256_set1_epi32(L->fan_in);
    for (int r = 0; r < RR; r++)
        for (int h = 0; h < 2; h++) {
            __m256i pc = _mm512_cvtepi64_epi32(s[r][h]);
            __m256i v = _mm256_sub_epi32(k, _mm256_slli_epi32(pc, 1));
            _mm256_storeu_si256((__m256i *)(acc + (size_t)(r0 + r) * L->np + (g0 + h) * 8), v);
        }
}

AVX512_TARGET static void bdense_avx512(int32_t *acc, const uint64_t *a, const packed_layer *L, int R) {
    int G = L->np / 8;
    for (int g = 0; g < G; g += 2) {
        int r0 = 0;
        for (; r0 + 4 <= R; r0 += 4) bdense512_block(acc, a, L, r0, 4, g);
        for (; r0 < R; r0++) bdense512_block(acc, a, L, r0, 1, g);
    }
    /* Padded neurons have zero weights: their value is not used, but keep it 0 like the reference. */
    for (int r = 0; r < R; r++)
        for (int n = L->out_c; n < L->np; n++) acc[(size_t)r * L->np + n] = 0;
}

/* Stores the 16 output bits of neurons 16 * c .. 16 * c + 15 of row bits (a
   row of 64-bit words, LSB first, so chunk c is bytes 2c, 2c + 1). */
static inline void simd_store_chunk16(uint64_t *bits, int c, uint16_t v) { memcpy((char *)bits + 2 * c, &v, 2); }

/* bdense_thresh for RR rows and 2 groups (16 neurons) from g0: bit = (pc <=
   tp) ^ inv with pc the XOR popcount and tp = floor((fan_in - T) / 2), i.e.
   fan_in - 2 * pc >= T, so the accumulators are never formed. */
AVX512_INLINE void bdense_thresh512_block(uint64_t *bits, int ldo, const uint64_t *a, const packed_layer *L,
                                          int r0, int RR, int g0, __m512i tp0, __m512i tp1, unsigned inv,
                                          unsigned valid) {
    __m512i s[4][2];
    bdense512_popcounts(s, a, L, r0, RR, g0);
    for (int r = 0; r < RR; r++) {
        unsigned k = (unsigned)_mm512_cmple_epi64_mask(s[r][0], tp0) | (unsigned)_mm512_cmple_epi64_mask(s[r][1], tp1) << 8;
        simd_store_chunk16(bits + (size_t)(r0 + r) * ldo, g0 / 2, (uint16_t)((k ^ inv) & valid));
    }
}

/* tp = floor((fan_in - T) / 2) of the 8 neurons of group g, as int64. */
AVX512_INLINE __m512i bdense_thresh512_tp(const packed_layer *L, int g) {
    __m512i t = _mm512_cvtepi32_epi64(_mm256_load_si256((const __m256i *)(L->thr + 8 * g)));
    return _mm512_srai_epi64(_mm512_sub_epi64(_mm512_set1_epi64(L->fan_in), t), 1);
}

AVX512_TARGET static void bdense_thresh_avx512(uint64_t *bits, int ldo, const uint64_t *a, const packed_layer *L,
                                               int R) {
    int G = L->np / 8;
    for (int g = 0; g < G; g += 2) {
        int n = 8 * g; /* first neuron of the chunk */
        __m512i tp0 = bdense_thresh512_tp(L, g), tp1 = bdense_thresh512_tp(L, g + 1);
        unsigned inv = (unsigned)(L->inv[n / 64] >> (n % 64)) & 0xffffu;
        unsigned valid = L->out_c - n >= 16 ? 0xffffu : (1u << (L->out_c - n)) - 1;
        int r0 = 0;
        for (; r0 + 4 <= R; r0 += 4) bdense_thresh512_block(bits, ldo, a, L, r0, 4, g, tp0, tp1, inv, valid);
        for (; r0 < R; r0++) bdense_thresh512_block(bits, ldo, a, L, r0, 1, g, tp0, tp1, inv, valid);
    }
    /* chunks between np and the last output word are padding: 0 */
    for (int r = 0; r < R; r++)
        for (int c = L->np / 16; c < 4 * L->out_cw; c++) simd_store_chunk16(bits + (size_t)r * ldo, c, 0);
}

/* One output pixel, NG groups of 8 neurons starting at g0. */
AVX512_INLINE void bconv512_pixel(int32_t *acc, const uint64_t *a, const packed_layer *L, int y, int x,
                                  int g0, int NG) {
    int H = L->in_h, W = L->in_w, cw = L->in_cw, kw = L->kw;
    __m512i s[8];
    for (int g = 0; g < 8; g++) s[g] = _mm512_setzero_si512();
    int valid = 0;
    const uint64_t *wg = L->wi + (size_t)g0 * kw * 8;
    for (int t = 0; t < 9; t++) {
        int iy = y + t / 3 - 1, ix = x + t % 3 - 1;
        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
        valid++;
        const uint64_t *pix = a + ((size_t)iy * W + ix) * cw;
        for (int j = 0; j < cw; j++) {
            __m512i b = _mm512_set1_epi64((long long)pix[j]);
            const uint64_t *wt = wg + (size_t)(t * cw + j) * 8;
            for (int g = 0; g < NG; g++) {
                __m512i wv = _mm512_load_si512((const void *)(wt + (size_t)g * kw * 8));
                s[g] = _mm512_add_epi64(s[g], _mm512_popcnt_epi64(_mm512_xor_si512(b, wv)));
            }
        }
    }
    __m256i k = _mm256_set1_epi32(valid * L->in_c);
    for (int g = 0; g < NG; g++) {
        __m256i pc = _mm512_cvtepi64_epi32(s[g]);
        _mm256_storeu_si256((__m256i *)(acc + (g0 + g) * 8), _mm256_sub_epi32(k, _mm256_slli_epi32(pc, 1)));
    }
}

AVX512_TARGET static void bconv_avx512(int32_t *acc, const uint64_t *a, const packed_layer *L, int y0, int ny) {
    int W = L->in_w, G = L->np / 8;
    for (int y = y0; y < y0 + ny; y++)
        for (int x = 0; x < W; x++) {
            int32_t *o = acc + ((size_t)(y - y0) * W + x) * L->np;
            int g = 0;
            for (; g + 8 <= G; g += 8) bconv512_pixel(o, a, L, y, x, g, 8);
            for (; g < G; g += 2) bconv512_pixel(o, a, L, y, x, g, 2);
            for (int n = L->out_c; n < L->np; n++) o[n] = 0;
        }
}

AVX512_TARGET static void pool2_avx512(int32_t *out, const int32_t *acc0, const int32_t *acc1, int W, int np) {
    for (int ox = 0; ox < W / 2; ox++)
        for (int n = 0; n < np; n += 16) {
            const int32_t *p0 = acc0 + (size_t)(2 * ox) * np + n, *p1 = acc1 + (size_t)(2 * ox) * np + n;
            __m512i m = _mm512_max_epi32(_mm512_loadu_si512((const void *)p0),
                                         _mm512_loadu_si512((const void *)(p0 + np)));
            m = _mm512_max_epi32(m, _mm512_loadu_si512((const void *)p1));
            m = _mm512_max_epi32(m, _mm512_loadu_si512((const void *)(p1 + np)));
            _mm512_storeu_si512((void *)(out + (size_t)ox * np + n), m);
        }
}

AVX512_TARGET static void thresh_avx512(uint64_t *bits, int ldo, const int32_t *acc, const packed_layer *L, int M) {
    for (int m = 0; m < M; m++) {
        const int32_t *am = acc + (size_t)m * L->np;
        for (int w = 0; w < L->out_cw; w++) {
            uint64_t word = 0;
            for (int q = 0; q < 4; q++) {
                int n = 64 * w + 16 * q;
                if (n >= L->out_c) break;
                __mmask16 k = _mm512_cmpge_epi32_mask(_mm512_loadu_si512((const void *)(am + n)),
                                                      _mm512_load_si512((const void *)(L->thr + n)));
                uint64_t b = ((uint64_t)k ^ (L->inv[w] >> (16 * q))) & 0xffffu;
                if (L->out_c - n < 16) b &= ((uint64_t)1 << (L->out_c - n)) - 1;
                word |= b << (16 * q);
            }
            bits[(size_t)m * ldo + w] = word;
        }
    }
}

static const packed_kernels simd_avx512 = {
    "avx512", u8dense_avx512, bdense_avx512, bconv_avx512, pool2_avx512, thresh_avx512, bdense_thresh_avx512,
};

const packed_kernels *packed_kernels_avx512(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vpopcntdq") && __builtin_cpu_supports("avx512vnni"))
        return &simd_avx512;
    return NULL;
}

/* ================================== AMX ================================== */

/* Tile configuration, palette 1 (Intel SDM: 64 bytes). */
typedef struct {
    uint8_t palette;     /* 1 */
    uint8_t start_row;   /* 0 */
    uint8_t reserved[14];
    uint16_t colsb[16];  /* bytes per row of each tile */
    uint8_t rows[16];    /* rows of each tile */
} amx_config;

#define AMX_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vpopcntdq,avx512vnni,amx-tile,amx-int8")))
#define AMX_BARRIER() __asm__ volatile("" ::: "memory") /* the tile intrinsics do not declare their memory use */

/* Loads A rows r0.. (up to 16, rr real) of 64-byte step s into tile T; tail
   rows go through the zeroed buffer buf. */
#define AMX_LOAD_A(T, r0, rr, s, buf)                                                              \
    do {                                                                                           \
        if ((rr) == 16) {                                                                          \
            _tile_loadd(T, x + (size_t)(r0) * ldx + 64 * (s), (long)ldx);                          \
        } else {                                                                                   \
            memset(buf, 0, 16 * 64);                                                               \
            for (int r_ = 0; r_ < (rr); r_++) memcpy(buf + 64 * r_, x + (size_t)((r0) + r_) * ldx + 64 * (s), (size_t)ka); \
            AMX_BARRIER();                                                                         \
            _tile_loadd(T, buf, 64L);                                                              \
        }                                                                                          \
    } while (0)

/* Stores C tile T (rows r0.., rr real; 16 neurons from n0) into acc. */
#define AMX_STORE_C(T, r0, rr, n0)                                                                 \
    do {                                                                                           \
        if ((rr) == 16) {                                                                          \
            _tile_stored(T, acc + (size_t)(r0) * L->np + (n0), ldc);                               \
            AMX_BARRIER();                                                                         \
        } else if ((rr) > 0) {                                                                     \
            _tile_stored(T, cbuf, 64L);                                                            \
            AMX_BARRIER();                                                                         \
            for (int r_ = 0; r_ < (rr); r_++) memcpy(acc + (size_t)((r0) + r_) * L->np + (n0), cbuf + 16 * r_, 64); \
        }                                                                                          \
    } while (0)

/* First dense layer on tiles: C (16 rows x 16 neurons, int32) += A (16 rows x
   64 pixels, u8) . B (16 dword steps x 16 neurons x 4, s8), i.e. a w8 group's
   16 consecutive dword steps. Blocks of 32 rows x 32 neurons: tmm0..3 C,
   tmm4,5 A (rows 0-15, 16-31), tmm6,7 B (2 neuron groups). Each B tile
   serves 32 rows. Rows that are not whole 64-byte steps (first convs) use the
   AVX-512 kernel. */
AMX_TARGET static void u8dense_amx(int32_t *acc, const uint8_t *x, int ldx, const packed_layer *L, int R) {
    /* K step: 64 bytes, or the whole row when it is shorter (first convs: 9*C bytes rounded to 4) */
    int ka = 64;
    if (L->k4 % 64 != 0) { /* short rows of first convs: the AVX-512 kernel is faster (measured) */
        u8dense_avx512(acc, x, ldx, L, R);
        return;
    }
    amx_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 4; t++) cfg.rows[t] = 16, cfg.colsb[t] = 64;   /* C: 16 rows x 16 int32 */
    for (int t = 4; t < 6; t++) cfg.rows[t] = 16, cfg.colsb[t] = (uint16_t)ka; /* A: 16 rows x ka bytes */
    for (int t = 6; t < 8; t++) cfg.rows[t] = (uint8_t)(ka / 4), cfg.colsb[t] = 64; /* B: ka/4 dword steps */
    _Alignas(64) uint8_t abuf0[16 * 64], abuf1[16 * 64];
    _Alignas(64) int32_t cbuf[16 * 16];
    int G = L->np / 16, kq = L->k4 / 4, steps = (L->k4 + 63) / 64;
    long ldc = (long)L->np * 4;
    AMX_BARRIER();
    _tile_loadconfig(&cfg);
    for (int r0 = 0; r0 < R; r0 += 32) {
        int ra = R - r0 < 16 ? R - r0 : 16;             /* real rows of tile A0 */
        int rb = R - r0 - 16 < 0 ? 0 : R - r0 - 16 < 16 ? R - r0 - 16 : 16; /* of A1 */
        for (int g0 = 0; g0 < G; g0 += 2) {
            int two = g0 + 1 < G;
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
            const int8_t *wg = L->w8 + (size_t)g0 * kq * 64;
            for (int s = 0; s < steps; s++) {
                const int8_t *wb = wg + (size_t)s * 16 * 64;
                AMX_LOAD_A(4, r0, ra, s, abuf0);
                _tile_loadd(6, wb, 64L);
                _tile_dpbusd(0, 4, 6);
                if (two) {
                    _tile_loadd(7, wb + (size_t)kq * 64, 64L);
                    _tile_dpbusd(1, 4, 7);
                }
                if (rb > 0) {
                    AMX_LOAD_A(5, r0 + 16, rb, s, abuf1);
                    _tile_dpbusd(2, 5, 6);
                    if (two) _tile_dpbusd(3, 5, 7);
                }
            }
            AMX_STORE_C(0, r0, ra, g0 * 16);
            if (two) AMX_STORE_C(1, r0, ra, g0 * 16 + 16);
            AMX_STORE_C(2, r0 + 16, rb, g0 * 16);
            if (two) AMX_STORE_C(3, r0 + 16, rb, g0 * 16 + 16);
        }
    }
    _tile_release();
}

static const packed_kernels simd_amx = {
    "amx", u8dense_amx, bdense_avx512, bconv_avx512, pool2_avx512, thresh_avx512, bdense_thresh_avx512,
};

/* CPUID leaf 7: EDX bit 24 AMX-TILE, bit 25 AMX-INT8; then ask Linux for the
   tile data state (ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA). */
static int amx_usable(void) {
    static int state = -1; /* -1 unknown, 0 no, 1 yes */
    int s = __atomic_load_n(&state, __ATOMIC_ACQUIRE);
    if (s >= 0) return s;
    unsigned a, b, c, d;
    int ok = 0;
    if (packed_kernels_avx512() && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 24 & 1) && (d >> 25 & 1)) {
#if defined(__linux__)
        ok = syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0;
#endif
    }
    __atomic_store_n(&state, ok, __ATOMIC_RELEASE);
    return ok;
}

const packed_kernels *packed_kernels_amx(void) { return amx_usable() ? &simd_amx : NULL; }

/* ================================= AVX2 ================================== */

/* Popcount of each 64-bit lane (nibble table + vpsadbw). */
AVX2_INLINE __m256i popcnt256_epi64(__m256i v) {
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(0x0f);
    __m256i lo = _mm256_and_si256(v, low), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
    __m256i c = _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
    return _mm256_sad_epu8(c, _mm256_setzero_si256());
}

/* Packs the low 32 bits of the 4 lanes of a and of b into 8 int32 (a first). */
AVX2_INLINE __m256i pack_lo32(__m256i a, __m256i b) {
    __m256i idx = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
    __m256i pa = _mm256_permutevar8x32_epi32(a, idx), pb = _mm256_permutevar8x32_epi32(b, idx);
    return _mm256_blend_epi32(pa, pb, 0xf0);
}

/* RR rows x one group of 16 neurons (two ymm of 8). */
AVX2_INLINE void u8dense256_block(int32_t *acc, const uint8_t *x, int ldx, const packed_layer *L, int r0, int rr,
                                  int g) {
    enum { RR = 4 };
    int kq = L->k4 / 4;
    __m256i s[RR][2];
    for (int r = 0; r < RR; r++) s[r][0] = s[r][1] = _mm256_setzero_si256();
    const __m256i ones = _mm256_set1_epi16(1);
    const int8_t *wb = L->w8 + (size_t)g * kq * 64;
    const uint8_t *xr[RR];
    for (int r = 0; r < RR; r++) xr[r] = x + (size_t)(r0 + (r < rr ? r : 0)) * ldx;
    for (int k = 0; k < kq; k++) {
        uint32_t d[RR];
        for (int r = 0; r < RR; r++) d[r] = r < rr ? simd_load_u32(xr[r] + 4 * k) : 0;
        if ((d[0] | d[1] | d[2] | d[3]) == 0) continue;
        __m256i w0 = _mm256_load_si256((const __m256i *)(wb + (size_t)k * 64));
        __m256i w1 = _mm256_load_si256((const __m256i *)(wb + (size_t)k * 64 + 32));
        for (int r = 0; r < RR; r++) {
            __m256i b = _mm256_set1_epi32((int)d[r]);
            /* u8 x s8 pairs to s16 (|sum| <= 510, no saturation), then pairs to s32. */
            s[r][0] = _mm256_add_epi32(s[r][0], _mm256_madd_epi16(_mm256_maddubs_epi16(b, w0), ones));
            s[r][1] = _mm256_add_epi32(s[r][1], _mm256_madd_epi16(_mm256_maddubs_epi16(b, w1), ones));
        }
    }
    for (int r = 0; r < rr; r++) {
        _mm256_storeu_si256((__m256i *)(acc + (size_t)(r0 + r) * L->np + g * 16), s[r][0]);
        _mm256_storeu_si256((__m256i *)(acc + (size_t)(r0 + r) * L->np + g * 16 + 8), s[r][1]);
    }
}

AVX2_TARGET static void u8dense_avx2(int32_t *acc, const uint8_t *x, int ldx, const packed_layer *L, int R) {
    int G = L->np / 16;
    for (int r0 = 0; r0 < R; r0 += 4) {
        int rr = R - r0 < 4 ? R - r0 : 4;
        for (int g = 0; g < G; g++) u8dense256_block(acc, x, ldx, L, r0, rr, g);
    }
}

/* RR rows x one group of 8 neurons (two ymm of 4 lanes). */
AVX2_INLINE void bdense256_block(int32_t *acc, const uint64_t *a, const packed_layer *L, int r0, int RR, int g) {
    int kw = L->kw;
    __m256i s[4][2];
    for (int r = 0; r < 4; r++) s[r][0] = s[r][1] = _mm256_setzero_si256();
    const uint64_t *wg = L->wi + (size_t)g * kw * 8;
    const uint64_t *ar = a + (size_t)r0 * kw;
    for (int j = 0; j < kw; j++) {
        __m256i x0 = _mm256_load_si256((const __m256i *)(wg + (size_t)j * 8));
        __m256i x1 = _mm256_load_si256((const __m256i *)(wg + (size_t)j * 8 + 4));
        for (int r = 0; r < RR; r++) {
            __m256i b = _mm256_set1_epi64x((long long)ar[(size_t)r * kw + j]);
            s[r][0] = _mm256_add_epi64(s[r][0], popcnt256_epi64(_mm256_xor_si256(b, x0)));
            s[r][1] = _mm256_add_epi64(s[r][1], popcnt256_epi64(_mm256_xor_si256(b, x1)));
        }
    }
    __m256i k = _mm256_set1_epi32(L->fan_in);
    for (int r = 0; r < RR; r++) {
        __m256i pc = pack_lo32(s[r][0], s[r][1]);
        _mm256_storeu_si256((__m256i *)(acc + (size_t)(r0 + r) * L->np + g * 8),
                            _mm256_sub_epi32(k, _mm256_slli_epi32(pc, 1)));
    }
}

AVX2_TARGET static void bdense_avx2(int32_t *acc, const uint64_t *a, const packed_layer *L, int R) {
    int G = L->np / 8;
    for (int g = 0; g < G; g++) {
        int r0 = 0;
        for (; r0 + 4 <= R; r0 += 4) bdense256_block(acc, a, L, r0, 4, g);
        for (; r0 < R; r0++) bdense256_block(acc, a, L, r0, 1, g);
    }
    for (int r = 0; r < R; r++)
        for (int n = L->out_c; n < L->np; n++) acc[(size_t)r * L->np + n] = 0;
}

/* One output pixel, NG groups of 8 neurons starting at g0. */
AVX2_INLINE void bconv256_pixel(int32_t *acc, const uint64_t *a, const packed_layer *L, int y, int x, int g0,
                                int NG) {
    int H = L->in_h, W = L->in_w, cw = L->in_cw, kw = L->kw;
    __m256i s[2][2];
    for (int g = 0; g < 2; g++) s[g][0] = s[g][1] = _mm256_setzero_si256();
    int valid = 0;
    const uint64_t *wg = L->wi + (size_t)g0 * kw * 8;
    for (int t = 0; t < 9; t++) {
        int iy = y + t / 3 - 1, ix = x + t % 3 - 1;
        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
        valid++;
        const uint64_t *pix = a + ((size_t)iy * W + ix) * cw;
        for (int j = 0; j < cw; j++) {
            __m256i b = _mm256_set1_epi64x((long long)pix[j]);
            const uint64_t *wt = wg + (size_t)(t * cw + j) * 8;
            for (int g = 0; g < NG; g++) {
                const uint64_t *wv = wt + (size_t)g * kw * 8;
                s[g][0] = _mm256_add_epi64(s[g][0], popcnt256_epi64(_mm256_xor_si256(b, _mm256_load_si256((const __m256i *)wv))));
                s[g][1] = _mm256_add_epi64(s[g][1], popcnt256_epi64(_mm256_xor_si256(b, _mm256_load_si256((const __m256i *)(wv + 4)))));
            }
        }
    }
    __m256i k = _mm256_set1_epi32(valid * L->in_c);
    for (int g = 0; g < NG; g++) {
        __m256i pc = pack_lo32(s[g][0], s[g][1]);
        _mm256_storeu_si256((__m256i *)(acc + (g0 + g) * 8), _mm256_sub_epi32(k, _mm256_slli_epi32(pc, 1)));
    }
}

AVX2_TARGET static void bconv_avx2(int32_t *acc, const uint64_t *a, const packed_layer *L, int y0, int ny) {
    int W = L->in_w, G = L->np / 8;
    for (int y = y0; y < y0 + ny; y++)
        for (int x = 0; x < W; x++) {
            int32_t *o = acc + ((size_t)(y - y0) * W + x) * L->np;
            for (int g = 0; g < G; g += 2) bconv256_pixel(o, a, L, y, x, g, 2);
            for (int n = L->out_c; n < L->np; n++) o[n] = 0;
        }
}

AVX2_TARGET static void pool2_avx2(int32_t *out, const int32_t *acc0, const int32_t *acc1, int W, int np) {
    for (int ox = 0; ox < W / 2; ox++)
        for (int n = 0; n < np; n += 8) {
            const int32_t *p0 = acc0 + (size_t)(2 * ox) * np + n, *p1 = acc1 + (size_t)(2 * ox) * np + n;
            __m256i m = _mm256_max_epi32(_mm256_loadu_si256((const __m256i *)p0),
                                         _mm256_loadu_si256((const __m256i *)(p0 + np)));
            m = _mm256_max_epi32(m, _mm256_loadu_si256((const __m256i *)p1));
            m = _mm256_max_epi32(m, _mm256_loadu_si256((const __m256i *)(p1 + np)));
            _mm256_storeu_si256((__m256i *)(out + (size_t)ox * np + n), m);
        }
}

AVX2_TARGET static void thresh_avx2(uint64_t *bits, int ldo, const int32_t *acc, const packed_layer *L, int M) {
    for (int m = 0; m < M; m++) {
        const int32_t *am = acc + (size_t)m * L->np;
        for (int w = 0; w < L->out_cw; w++) {
            uint64_t word = 0;
            for (int q = 0; q < 8; q++) {
                int n = 64 * w + 8 * q;
                if (n >= L->out_c) break;
                /* acc >= T  <=>  !(T > acc) */
                __m256i lt = _mm256_cmpgt_epi32(_mm256_load_si256((const __m256i *)(L->thr + n)),
                                                _mm256_loadu_si256((const __m256i *)(am + n)));
                uint64_t ge = (uint64_t)(~_mm256_movemask_ps(_mm256_castsi256_ps(lt)) & 0xff);
                uint64_t b = (ge ^ (L->inv[w] >> (8 * q))) & 0xffu;
                if (L->out_c - n < 8) b &= ((uint64_t)1 << (L->out_c - n)) - 1;
                word |= b << (8 * q);
            }
            bits[(size_t)m * ldo + w] = word;
        }
    }
}

/* bdense then thresh through an accumulator buffer (no fused AVX2 kernel). */
AVX2_TARGET static void bdense_thresh_avx2(uint64_t *bits, int ldo, const uint64_t *a, const packed_layer *L, int R) {
    int32_t *acc = bn_aligned_alloc(sizeof(int32_t) * (size_t)(R > 0 ? R : 1) * L->np);
    bdense_avx2(acc, a, L, R);
    thresh_avx2(bits, ldo, acc, L, R);
    free(acc);
}

static const packed_kernels simd_avx2 = {
    "avx2", u8dense_avx2, bdense_avx2, bconv_avx2, pool2_avx2, thresh_avx2, bdense_thresh_avx2,
};

const packed_kernels *packed_kernels_avx2(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt")) return &simd_avx2;
    return NULL;
}

#else /* not x86-64 GCC/Clang: portable kernels only */

const packed_kernels *packed_kernels_avx512(void) { return NULL; }
const packed_kernels *packed_kernels_avx2(void) { return NULL; }
const packed_kernels *packed_kernels_amx(void) { return NULL; }

#endif
