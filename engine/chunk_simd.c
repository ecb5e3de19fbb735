/*
** Chunk-count kernels of the chunked-sum engine (engine/chunk.h): for every
** neuron of a layer, the mismatch counts of the segments of one input row,
**
**   out[j][g] = base[g] - 2 * popcount((xs[g] ^ ws[j][g]) & vs[g])
**
** (ws (rows, nseg) the neurons' segment words, xs/vs (nseg) the input's).
** With one segment per chunk and base = the chunk's valid products this is
** the chunk sum itself. Variants, chosen at run time like the packed kernels
** (engine/packed_simd.c), all bit-equal to chunk_count_ref:
**
**   ref       one product (bit) at a time
**   portable  __builtin_popcountll (no intrinsics; a library call without -mpopcnt)
**   avx2      the POPCNT instruction, one word at a time (every AVX2 CPU has it)
**   avx512    VPOPCNTDQ: eight segments per instruction
**
** and the vote kernel of LTA's local-threshold majority (chunk_vote_*: ref,
** portable, avx512 with 16 compares per instruction), dispatched the same way.
*/
#include "engine/chunk.h"

#include <string.h>

#include "engine/packed.h"

void chunk_count_ref(int32_t *out, const uint64_t *ws, const uint64_t *xs, const uint64_t *vs, const int32_t *base,
                     int nseg, int rows) {
    for (int j = 0; j < rows; j++)
        for (int g = 0; g < nseg; g++) {
            uint64_t d = (xs[g] ^ ws[(size_t)j * nseg + g]) & vs[g];
            int32_t m = 0;
            for (int b = 0; b < 64; b++) m += (int32_t)((d >> b) & 1u);
            out[(size_t)j * nseg + g] = base[g] - 2 * m;
        }
}

static void chunk_count_portable(int32_t *out, const uint64_t *ws, const uint64_t *xs, const uint64_t *vs,
                                 const int32_t *base, int nseg, int rows) {
    for (int j = 0; j < rows; j++) {
        const uint64_t *w = ws + (size_t)j * nseg;
        int32_t *o = out + (size_t)j * nseg;
        for (int g = 0; g < nseg; g++) o[g] = base[g] - 2 * __builtin_popcountll((xs[g] ^ w[g]) & vs[g]);
    }
}

void chunk_vote_ref(int32_t *votes, int32_t *sums, const int32_t *s, const int32_t *tau, int K, int rows) {
    for (int j = 0; j < rows; j++) {
        int32_t v = 0, a = 0;
        for (int k = 0; k < K; k++) {
            if (s[(size_t)j * K + k] >= tau[(size_t)j * K + k]) v++;
            a += s[(size_t)j * K + k];
        }
        votes[j] = v, sums[j] = a;
    }
}

static void chunk_vote_portable(int32_t *votes, int32_t *sums, const int32_t *s, const int32_t *tau, int K,
                                int rows) {
    for (int j = 0; j < rows; j++) {
        const int32_t *sj = s + (size_t)j * K, *tj = tau + (size_t)j * K;
        int32_t v = 0, a = 0;
        for (int k = 0; k < K; k++) v += sj[k] >= tj[k], a += sj[k];
        votes[j] = v, sums[j] = a;
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

__attribute__((target("avx512f"))) static void chunk_vote_avx512(int32_t *votes, int32_t *sums, const int32_t *s,
                                                                 const int32_t *tau, int K, int rows) {
    for (int j = 0; j < rows; j++) {
        const int32_t *sj = s + (size_t)j * K, *tj = tau + (size_t)j * K;
        __m512i acc = _mm512_setzero_si512();
        int32_t v = 0;
        for (int k = 0; k < K; k += 16) {
            __mmask16 m = K - k >= 16 ? 0xffff : (__mmask16)((1u << (K - k)) - 1);
            __m512i x = _mm512_maskz_loadu_epi32(m, sj + k), t = _mm512_maskz_loadu_epi32(m, tj + k);
            v += __builtin_popcount((unsigned)_mm512_mask_cmpge_epi32_mask(m, x, t));
            acc = _mm512_add_epi32(acc, x);
        }
        votes[j] = v, sums[j] = _mm512_reduce_add_epi32(acc);
    }
}

__attribute__((target("avx2,popcnt"))) static void chunk_count_avx2(int32_t *out, const uint64_t *ws,
                                                                    const uint64_t *xs, const uint64_t *vs,
                                                                    const int32_t *base, int nseg, int rows) {
    for (int j = 0; j < rows; j++) {
        const uint64_t *w = ws + (size_t)j * nseg;
        int32_t *o = out + (size_t)j * nseg;
        for (int g = 0; g < nseg; g++) o[g] = base[g] - 2 * (int32_t)_mm_popcnt_u64((xs[g] ^ w[g]) & vs[g]);
    }
}

__attribute__((target("avx512f,avx512vl,avx512vpopcntdq"))) static void chunk_count_avx512(
    int32_t *out, const uint64_t *ws, const uint64_t *xs, const uint64_t *vs, const int32_t *base, int nseg,
    int rows) {
    if (nseg <= 16) { /* the input row and base stay in registers (conv layers, CapMin's A = 32 ...) */
        __mmask8 m0 = nseg >= 8 ? 0xff : (__mmask8)((1u << nseg) - 1);
        __mmask8 m1 = nseg <= 8 ? 0 : nseg >= 16 ? 0xff : (__mmask8)((1u << (nseg - 8)) - 1);
        __m512i x0 = _mm512_maskz_loadu_epi64(m0, xs), v0 = _mm512_maskz_loadu_epi64(m0, vs);
        __m512i x1 = _mm512_maskz_loadu_epi64(m1, xs + 8), v1 = _mm512_maskz_loadu_epi64(m1, vs + 8);
        __m256i b0 = _mm256_maskz_loadu_epi32(m0, base), b1 = _mm256_maskz_loadu_epi32(m1, base + 8);
        for (int j = 0; j < rows; j++) {
            const uint64_t *w = ws + (size_t)j * nseg;
            int32_t *o = out + (size_t)j * nseg;
            __m512i c0 = _mm512_popcnt_epi64(_mm512_and_si512(_mm512_xor_si512(x0, _mm512_maskz_loadu_epi64(m0, w)), v0));
            _mm256_mask_storeu_epi32(o, m0, _mm256_sub_epi32(b0, _mm256_slli_epi32(_mm512_cvtepi64_epi32(c0), 1)));
            if (m1) {
                __m512i c1 = _mm512_popcnt_epi64(
                    _mm512_and_si512(_mm512_xor_si512(x1, _mm512_maskz_loadu_epi64(m1, w + 8)), v1));
                _mm256_mask_storeu_epi32(o + 8, m1, _mm256_sub_epi32(b1, _mm256_slli_epi32(_mm512_cvtepi64_epi32(c1), 1)));
            }
        }
        return;
    }
    for (int j = 0; j < rows; j++) {
        const uint64_t *w = ws + (size_t)j * nseg;
        int32_t *o = out + (size_t)j * nseg;
        for (int g = 0; g < nseg; g += 8) {
            __mmask8 m = nseg - g >= 8 ? 0xff : (__mmask8)((1u << (nseg - g)) - 1);
            __m512i d = _mm512_xor_si512(_mm512_maskz_loadu_epi64(m, xs + g), _mm512_maskz_loadu_epi64(m, w + g));
            __m512i c = _mm512_popcnt_epi64(_mm512_and_si512(d, _mm512_maskz_loadu_epi64(m, vs + g)));
            __m256i b = _mm256_maskz_loadu_epi32(m, base + g);
            _mm256_mask_storeu_epi32(o + g, m, _mm256_sub_epi32(b, _mm256_slli_epi32(_mm512_cvtepi64_epi32(c), 1)));
        }
    }
}

static int chunk_has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512vpopcntdq");
}

static int chunk_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
}
#endif

chunk_count_kernel chunk_count_named(const char *name) {
    if (!strcmp(name, "ref")) return chunk_count_ref;
    if (!strcmp(name, "portable")) return chunk_count_portable;
#if defined(__x86_64__) && defined(__GNUC__)
    if (!strcmp(name, "avx2")) return chunk_has_avx2() ? chunk_count_avx2 : NULL;
    if (!strcmp(name, "avx512") || !strcmp(name, "amx")) return chunk_has_avx512() ? chunk_count_avx512 : NULL;
#endif
    return NULL;
}

chunk_vote_kernel chunk_vote_named(const char *name) {
    if (!strcmp(name, "ref")) return chunk_vote_ref;
    if (!strcmp(name, "portable") || !strcmp(name, "avx2")) return chunk_vote_portable;
#if defined(__x86_64__) && defined(__GNUC__)
    if (!strcmp(name, "avx512") || !strcmp(name, "amx")) return chunk_has_avx512() ? chunk_vote_avx512 : NULL;
#endif
    return NULL;
}

/* The kernels matching packed_simd_name(), chosen together once. */
static void chunk_active(chunk_count_kernel *count, chunk_vote_kernel *vote) {
    static chunk_count_kernel active_count;
    static chunk_vote_kernel active_vote;
#pragma omp critical(chunk_dispatch)
    {
        if (!active_count) {
            active_count = chunk_count_named(packed_simd_name());
            if (!active_count) active_count = chunk_count_portable;
            active_vote = chunk_vote_named(packed_simd_name());
            if (!active_vote) active_vote = chunk_vote_portable;
        }
        *count = active_count, *vote = active_vote;
    }
}

chunk_vote_kernel chunk_vote_active(void) {
    chunk_count_kernel c;
    chunk_vote_kernel v;
    chunk_active(&c, &v);
    return v;
}

chunk_count_kernel chunk_count_active(void) {
    chunk_count_kernel c;
    chunk_vote_kernel v;
    chunk_active(&c, &v);
    return c;
}
