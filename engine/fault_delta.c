/*
** The incremental first layer of fault injection (engine/fault_delta.h): flip
** lists, the reference and AVX-512 kernels, and the 64 x 64 bit transpose.
*/
#include "engine/fault_delta.h"

#include <stdlib.h>
#include <string.h>

#include "engine/err.h"
#include "engine/packed.h"

/* ---- Flip lists ---- */

void fault_flips_init(fault_flips *f, int out_c, int fan_in) {
    f->out_c = out_c, f->fan_in = fan_in;
    f->off = bn_calloc((size_t)out_c + 1, sizeof(int32_t));
    f->cap = 64;
    f->rows = bn_malloc(sizeof(int32_t) * f->cap);
}

void fault_flips_free(fault_flips *f) {
    free(f->off), free(f->rows);
    memset(f, 0, sizeof *f);
}

size_t fault_flips_build(fault_flips *f, const uint64_t *mask, const uint64_t *w, int kw) {
    size_t n = 0;
    for (int j = 0; j < f->out_c; j++) {
        const uint64_t *mj = mask + (size_t)j * kw, *wj = w + (size_t)j * kw;
        f->off[j] = (int32_t)n;
        for (int k = 0; k < kw; k++) {
            uint64_t bits = mj[k];
            while (bits) {
                int b = __builtin_ctzll(bits), i = k * 64 + b;
                bits &= bits - 1;
                BN_ASSERT(i < f->fan_in);
                if (n == f->cap) {
                    int32_t *p = bn_malloc(sizeof(int32_t) * f->cap * 2);
                    memcpy(p, f->rows, sizeof(int32_t) * n);
                    free(f->rows);
                    f->rows = p, f->cap *= 2;
                }
                f->rows[n++] = (wj[k] >> b) & 1u ? f->fan_in + i : i; /* stored 1 -> 0: the negated row */
            }
        }
    }
    BN_ASSERT(n < INT32_MAX);
    f->off[f->out_c] = (int32_t)n;
    return n;
}

/* ---- Transpose ---- */

void fault_transpose64_ref(uint64_t *a) {
    uint64_t t[64] = {0};
    for (int r = 0; r < 64; r++)
        for (int c = 0; c < 64; c++) t[r] |= ((a[c] >> r) & 1u) << c;
    memcpy(a, t, sizeof t);
}

/* Recursive block swap: at step j, in every pair of rows (k, k + j) with bit
   j of k clear, the high j-bit fields of row k trade places with the low
   j-bit fields of row k + j (m selects the low fields). */
static void fault_transpose64_plain(uint64_t *a) {
    uint64_t m = 0x00000000ffffffffULL;
    for (int j = 32; j; j >>= 1, m ^= m << j)
        for (int k = 0; k < 64; k++) {
            if (k & j) continue;
            uint64_t t = ((a[k] >> j) ^ a[k + j]) & m;
            a[k + j] ^= t;
            a[k] ^= t << j;
        }
}

/* ---- Reference kernels ---- */

void fault_delta_prepare_ref(int16_t *xT, int32_t *clean, const uint8_t *x, int fan_in, int nb, const int32_t *acc,
                             int np, int out_c) {
    const int B = FAULT_DELTA_B;
    for (int i = 0; i < fan_in; i++)
        for (int b = 0; b < B; b++) {
            int16_t v = b < nb ? (int16_t)x[(size_t)b * fan_in + i] : 0;
            xT[(size_t)i * B + b] = v;
            xT[(size_t)(fan_in + i) * B + b] = (int16_t)-v;
        }
    for (int j = 0; j < out_c; j++)
        for (int b = 0; b < B; b++) clean[(size_t)j * B + b] = b < nb ? acc[(size_t)b * np + j] : 0;
}

void fault_delta_bits_ref(uint64_t *bits, int ldo, const int32_t *clean, const int16_t *xT, const fault_flips *f,
                          const int32_t *thr, const uint64_t *inv, uint64_t *tmp) {
    (void)tmp;
    int out_c = f->out_c, words = (out_c + 63) / 64;
    for (int b = 0; b < FAULT_DELTA_B; b++)
        for (int w = 0; w < words; w++) bits[(size_t)b * ldo + w] = 0;
    for (int j = 0; j < out_c; j++) {
        int inv_j = (int)((inv[j / 64] >> (j % 64)) & 1u);
        for (int b = 0; b < FAULT_DELTA_B; b++) {
            int32_t acc = clean[(size_t)j * FAULT_DELTA_B + b];
            for (int32_t e = f->off[j]; e < f->off[j + 1]; e++) acc += 2 * xT[(size_t)f->rows[e] * FAULT_DELTA_B + b];
            uint64_t on = (uint64_t)((acc >= thr[j]) ^ inv_j);
            bits[(size_t)b * ldo + j / 64] |= on << (j % 64);
        }
    }
}

/* ---- AVX-512 kernel ---- */

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define DELTA_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

/* Adds 2 * (the 32 int16 lanes of d) to the int32 accumulators lo (lanes 0-15)
   and hi (16-31). */
#define DELTA_WIDEN_ADD(lo, hi, d)                                                                       \
    do {                                                                                               \
        lo = _mm512_add_epi32(lo, _mm512_slli_epi32(_mm512_cvtepi16_epi32(_mm512_castsi512_si256(d)), 1)); \
        hi = _mm512_add_epi32(hi, _mm512_slli_epi32(_mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(d, 1)), 1)); \
    } while (0)

/* Writes the transposed neuron masks tmp (groups * 64 words, row j = neuron j,
   bit b = image b; rows >= out_c zero) into bits (FAULT_DELTA_B, ldo). */
static void fault_delta_store(uint64_t *bits, int ldo, uint64_t *tmp, int out_c, void (*transpose)(uint64_t *)) {
    int groups = (out_c + 63) / 64;
    for (int r = out_c; r < groups * 64; r++) tmp[r] = 0;
    for (int g = 0; g < groups; g++) {
        transpose(tmp + (size_t)g * 64);
        for (int b = 0; b < FAULT_DELTA_B; b++) bits[(size_t)b * ldo + g] = tmp[(size_t)g * 64 + b];
    }
}

/* fault_transpose64 on 8 zmm (z[q] = rows 8q .. 8q+7): steps 32, 16, 8 pair
   whole registers, steps 4, 2, 1 pair lanes l and l ^ j of one register. */
DELTA_TARGET static void fault_transpose64_avx512(uint64_t *a) {
    __m512i z[8];
    for (int q = 0; q < 8; q++) z[q] = _mm512_loadu_si512((const void *)(a + 8 * q));
    uint64_t mm = 0x00000000ffffffffULL;
    for (int j = 32; j >= 8; j >>= 1, mm ^= mm << j) {
        __m512i m = _mm512_set1_epi64((long long)mm);
        __m128i sh = _mm_cvtsi32_si128(j);
        for (int q = 0; q < 8; q++) {
            if (q & (j / 8)) continue;
            __m512i *lo = &z[q], *hi = &z[q + j / 8];
            __m512i t = _mm512_and_si512(_mm512_xor_si512(_mm512_srl_epi64(*lo, sh), *hi), m);
            *hi = _mm512_xor_si512(*hi, t);
            *lo = _mm512_xor_si512(*lo, _mm512_sll_epi64(t, sh));
        }
    }
    for (int j = 4; j; j >>= 1, mm ^= mm << j) {
        __m512i m = _mm512_set1_epi64((long long)mm);
        __m128i sh = _mm_cvtsi32_si128(j);
        __m512i idx = _mm512_xor_si512(_mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7), _mm512_set1_epi64(j));
        __mmask8 low = (__mmask8)(j == 4 ? 0x0f : j == 2 ? 0x33 : 0x55); /* lanes l with l & j == 0 */
        for (int q = 0; q < 8; q++) {
            __m512i p = _mm512_permutexvar_epi64(idx, z[q]); /* lane l holds lane l ^ j */
            __m512i tl = _mm512_and_si512(_mm512_xor_si512(_mm512_srl_epi64(z[q], sh), p), m); /* low lanes' t */
            __m512i th = _mm512_and_si512(_mm512_xor_si512(_mm512_srl_epi64(p, sh), z[q]), m); /* high lanes' t */
            z[q] = _mm512_mask_blend_epi64(low, _mm512_xor_si512(z[q], th),
                                           _mm512_xor_si512(z[q], _mm512_sll_epi64(tl, sh)));
        }
    }
    for (int q = 0; q < 8; q++) _mm512_storeu_si512((void *)(a + 8 * q), z[q]);
}

/* In-register transpose of 16 x 16 int32: afterwards lane c of r[q] is what
   lane q of r[c] was. Unpacks of 32 and 64 bits leave u[4g + k] holding, in
   128-bit lane L, rows 4g .. 4g+3 of column 4L + k; two rounds of 128-bit
   lane shuffles gather the four row groups of each column. */
DELTA_TARGET static inline void fault_transpose16x16_epi32(__m512i r[16]) {
    __m512i t[16], u[16];
    for (int q = 0; q < 16; q += 2) {
        t[q] = _mm512_unpacklo_epi32(r[q], r[q + 1]);
        t[q + 1] = _mm512_unpackhi_epi32(r[q], r[q + 1]);
    }
    for (int g = 0; g < 16; g += 4) {
        u[g] = _mm512_unpacklo_epi64(t[g], t[g + 2]);
        u[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
        u[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
        u[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
    }
    for (int k = 0; k < 4; k++) {
        /* lanes (0, 2) and (1, 3) of the row groups (0, 1) and (2, 3) */
        __m512i v = _mm512_shuffle_i32x4(u[k], u[4 + k], 0x88), w = _mm512_shuffle_i32x4(u[k], u[4 + k], 0xdd);
        __m512i v2 = _mm512_shuffle_i32x4(u[8 + k], u[12 + k], 0x88);
        __m512i w2 = _mm512_shuffle_i32x4(u[8 + k], u[12 + k], 0xdd);
        r[k] = _mm512_shuffle_i32x4(v, v2, 0x88);      /* column k */
        r[4 + k] = _mm512_shuffle_i32x4(w, w2, 0x88);  /* column 4 + k */
        r[8 + k] = _mm512_shuffle_i32x4(v, v2, 0xdd);  /* column 8 + k */
        r[12 + k] = _mm512_shuffle_i32x4(w, w2, 0xdd); /* column 12 + k */
    }
}

DELTA_TARGET static void fault_delta_prepare_avx512(int16_t *xT, int32_t *clean, const uint8_t *x, int fan_in, int nb,
                                                    const int32_t *acc, int np, int out_c) {
    const int B = FAULT_DELTA_B;
    static const uint8_t zero[16] = {0};
    __m512i r[16];
    for (int b0 = 0; b0 < B; b0 += 16) {
        /* pixels: 16 images x 16 pixels -> 16 pixel rows of 16 images, int16 and negated */
        int i = 0;
        for (; i + 16 <= fan_in; i += 16) {
            for (int q = 0; q < 16; q++) {
                const uint8_t *src = b0 + q < nb ? x + (size_t)(b0 + q) * fan_in + i : zero;
                r[q] = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)src));
            }
            fault_transpose16x16_epi32(r);
            for (int q = 0; q < 16; q++) {
                __m256i v = _mm512_cvtepi32_epi16(r[q]);
                _mm256_storeu_si256((__m256i *)(xT + (size_t)(i + q) * B + b0), v);
                _mm256_storeu_si256((__m256i *)(xT + (size_t)(fan_in + i + q) * B + b0),
                                    _mm256_sub_epi16(_mm256_setzero_si256(), v));
            }
        }
        for (; i < fan_in; i++) /* tail pixels */
            for (int b = b0; b < b0 + 16; b++) {
                int16_t v = b < nb ? (int16_t)x[(size_t)b * fan_in + i] : 0;
                xT[(size_t)i * B + b] = v;
                xT[(size_t)(fan_in + i) * B + b] = (int16_t)-v;
            }
        /* accumulators: 16 images x 16 neurons -> 16 neuron rows of 16 images */
        int j = 0;
        for (; j + 16 <= out_c; j += 16) {
            for (int q = 0; q < 16; q++)
                r[q] = b0 + q < nb ? _mm512_loadu_si512((const void *)(acc + (size_t)(b0 + q) * np + j))
                                   : _mm512_setzero_si512();
            fault_transpose16x16_epi32(r);
            for (int q = 0; q < 16; q++) _mm512_storeu_si512((void *)(clean + (size_t)(j + q) * B + b0), r[q]);
        }
        for (; j < out_c; j++)
            for (int b = b0; b < b0 + 16; b++) clean[(size_t)j * B + b] = b < nb ? acc[(size_t)b * np + j] : 0;
    }
}

DELTA_TARGET static void fault_delta_bits_avx512(uint64_t *bits, int ldo, const int32_t *clean, const int16_t *xT,
                                                 const fault_flips *f, const int32_t *thr, const uint64_t *inv,
                                                 uint64_t *tmp) {
    int out_c = f->out_c;
    for (int j = 0; j < out_c; j++) {
        const int32_t *cj = clean + (size_t)j * FAULT_DELTA_B;
        __m512i a0 = _mm512_loadu_si512((const void *)cj), a1 = _mm512_loadu_si512((const void *)(cj + 16));
        __m512i a2 = _mm512_loadu_si512((const void *)(cj + 32)), a3 = _mm512_loadu_si512((const void *)(cj + 48));
        for (int32_t e = f->off[j], end = f->off[j + 1]; e < end;) { /* chunks: exact in int16 */
            int32_t stop = end - e > FAULT_DELTA_CHUNK ? e + FAULT_DELTA_CHUNK : end;
            __m512i d0 = _mm512_setzero_si512(), d1 = d0;
            for (; e < stop; e++) {
                const int16_t *x = xT + (size_t)f->rows[e] * FAULT_DELTA_B;
                d0 = _mm512_add_epi16(d0, _mm512_loadu_si512((const void *)x));
                d1 = _mm512_add_epi16(d1, _mm512_loadu_si512((const void *)(x + 32)));
            }
            DELTA_WIDEN_ADD(a0, a1, d0);
            DELTA_WIDEN_ADD(a2, a3, d1);
        }
        __m512i t = _mm512_set1_epi32(thr[j]);
        uint64_t m = (uint64_t)_mm512_cmpge_epi32_mask(a0, t) | (uint64_t)_mm512_cmpge_epi32_mask(a1, t) << 16 |
                     (uint64_t)_mm512_cmpge_epi32_mask(a2, t) << 32 | (uint64_t)_mm512_cmpge_epi32_mask(a3, t) << 48;
        tmp[j] = (inv[j / 64] >> (j % 64)) & 1u ? ~m : m;
    }
    fault_delta_store(bits, ldo, tmp, out_c, fault_transpose64_avx512);
}

static int fault_delta_use_avx512(void) {
    const char *k = packed_simd_name();
    return !strcmp(k, "avx512") || !strcmp(k, "amx");
}
#else
static int fault_delta_use_avx512(void) { return 0; }
#endif

void fault_transpose64(uint64_t *a) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (fault_delta_use_avx512()) {
        fault_transpose64_avx512(a);
        return;
    }
#endif
    fault_transpose64_plain(a);
}

void fault_delta_prepare(int16_t *xT, int32_t *clean, const uint8_t *x, int fan_in, int nb, const int32_t *acc,
                         int np, int out_c) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (fault_delta_use_avx512()) {
        fault_delta_prepare_avx512(xT, clean, x, fan_in, nb, acc, np, out_c);
        return;
    }
#endif
    fault_delta_prepare_ref(xT, clean, x, fan_in, nb, acc, np, out_c);
}

void fault_delta_bits(uint64_t *bits, int ldo, const int32_t *clean, const int16_t *xT, const fault_flips *f,
                      const int32_t *thr, const uint64_t *inv, uint64_t *tmp) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (fault_delta_use_avx512()) {
        fault_delta_bits_avx512(bits, ldo, clean, xT, f, thr, inv, tmp);
        return;
    }
#endif
    (void)fault_delta_use_avx512;
    fault_delta_bits_ref(bits, ldo, clean, xT, f, thr, inv, tmp);
}
