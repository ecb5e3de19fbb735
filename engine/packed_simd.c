/*
** SIMD kernels of packed inference (see engine/packed.h for the contracts).
**
** Each function is compiled for its instruction set with a target attribute,
** so the build needs no -march flag; packed_kernels_avx512/avx2 return the
** set only if the running CPU has the instructions (__builtin_cpu_supports).
**
**   avx512: AVX-512F/BW, VPOPCNTDQ (vpopcntq) and VNNI (vpdpbusd).
**   avx2:   AVX2; popcount by nibble table (vpshufb) and vpsadbw.
**
** Layouts used here are the derived ones of packed_layer: wi (np/8, kw, 8),
** 8 neurons per 64-bit word step (one zmm = 8 neurons), and w8 (np/16, k4/4,
** 16, 4), 16 neurons times 4 bytes (one zmm, the vpdpbusd operand).
*/
#include "engine/packed.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

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

/* RR rows x NG groups of 16 neurons, vpdpbusd over k4/4 dword steps. Missing
   rows (r >= rr) read zeros and are not stored. */
AVX512_INLINE void u8dense512_block(int32_t *acc, const uint8_t *x, int ldx, const packed_layer *L,
                                    int r0, int rr, int g0, int NG) {
    enum { RR = 4 };
    int kq = L->k4 / 4;
    __m512i s[RR][4];
    for (int r = 0; r < RR; r++)
        for (int g = 0; g < 4; g++) s[r][g] = _mm512_setzero_si512();
    const int8_t *wb = L->w8 + (size_t)g0 * kq * 64;
    const uint8_t *xr[RR];
    for (int r = 0; r < RR; r++) xr[r] = x + (size_t)(r0 + (r < rr ? r : 0)) * ldx;
    for (int k = 0; k < kq; k++) {
        uint32_t d[RR];
        for (int r = 0; r < RR; r++) d[r] = r < rr ? simd_load_u32(xr[r] + 4 * k) : 0;
        if ((d[0] | d[1] | d[2] | d[3]) == 0) continue; /* all-zero pixels contribute nothing */
        __m512i w[4];
        for (int g = 0; g < NG; g++) w[g] = _mm512_load_si512((const void *)(wb + ((size_t)g * kq + k) * 64));
        for (int r = 0; r < RR; r++) {
            __m512i b = _mm512_set1_epi32((int)d[r]);
            for (int g = 0; g < NG; g++) s[r][g] = _mm512_dpbusd_epi32(s[r][g], b, w[g]);
        }
    }
    for (int r = 0; r < rr; r++)
        for (int g = 0; g < NG; g++)
            _mm512_storeu_si512((void *)(acc + (size_t)(r0 + r) * L->np + (g0 + g) * 16), s[r][g]);
}

AVX512_TARGET static void u8dense_avx512(int32_t *acc, const uint8_t *x, int ldx, const packed_layer *L, int R) {
    int G = L->np / 16;
    for (int r0 = 0; r0 < R; r0 += 4) {
        int rr = R - r0 < 4 ? R - r0 : 4;
        int g = 0;
        for (; g + 4 <= G; g += 4) u8dense512_block(acc, x, ldx, L, r0, rr, g, 4);
        for (; g < G; g++) u8dense512_block(acc, x, ldx, L, r0, rr, g, 1);
    }
}

/* acc[r][8 neurons] = fan_in - 2 * popcount sums of 2 groups (16 neurons) for RR rows. */
AVX512_INLINE void bdense512_block(int32_t *acc, const uint64_t *a, const packed_layer *L, int r0, int RR,
                                   int g0) {
    int kw = L->kw;
    __m512i s[4][2];
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
    "avx512", u8dense_avx512, bdense_avx512, bconv_avx512, pool2_avx512, thresh_avx512,
};

const packed_kernels *packed_kernels_avx512(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vpopcntdq") && __builtin_cpu_supports("avx512vnni"))
        return &simd_avx512;
    return NULL;
}

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

static const packed_kernels simd_avx2 = {
    "avx2", u8dense_avx2, bdense_avx2, bconv_avx2, pool2_avx2, thresh_avx2,
};

const packed_kernels *packed_kernels_avx2(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt")) return &simd_avx2;
    return NULL;
}

#else /* not x86-64 GCC/Clang: portable kernels only */

const packed_kernels *packed_kernels_avx512(void) { return NULL; }
const packed_kernels *packed_kernels_avx2(void) { return NULL; }

#endif
