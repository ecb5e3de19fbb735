/*
** Bit-packed inference: packing a net, folding batch norm + sign into integer
** thresholds, the reference kernels, kernel dispatch and the forward driver.
** The SIMD kernels live in engine/packed_simd.c.
*/
#include "engine/packed.h"

#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/dmath.h"
#include "engine/err.h"

#define PACKED_ACC_LIMIT (1 << 24) /* float sums of integers are exact below 2^24 */

static int packed_popcount64(uint64_t x) { return __builtin_popcountll(x); }

static int packed_wbit(const packed_layer *L, int n, int word, int bit) {
    return (int)((L->w[(size_t)n * L->kw + word] >> bit) & 1u);
}

/* ---- Threshold folding ---- */

void packed_acc_range(const net_layer *L, int32_t *lo, int32_t *hi) {
    int64_t m = L->first ? 255 * (int64_t)L->fan_in : (int64_t)L->fan_in;
    if (m > INT32_MAX - 1) m = INT32_MAX - 1;
    *lo = (int32_t)-m;
    *hi = (int32_t)m;
}

/* The float path's binary output for accumulator acc. */
static int packed_bn_bit(const net_layer *L, int c, int32_t acc) {
    return net_bn_value(L, c, (float)acc) > 0.0f;
}

int packed_fold_threshold(const net_layer *L, int c, int32_t lo, int32_t hi, int32_t *T, int *inv) {
    if (!isfinite(L->gamma[c]) || !isfinite(L->beta[c]) || !isfinite(L->mean[c]) ||
        !isfinite(L->var[c]) || L->var[c] < 0.0f)
        return bn_error(BN_EARG, "packed: neuron %d has a non-finite batch-norm parameter or negative variance", c);
    if (hi >= INT32_MAX || lo > hi) return bn_error(BN_EARG, "packed: bad accumulator range [%d, %d]", lo, hi);
    /* Every float operation in net_bn_value is monotone in acc, and with finite
       parameters a NaN can only come from 0 * inf, i.e. gamma == 0 with an
       overflowing normalised value, which then happens at an end of the range.
       Without NaN at the ends the output bit is monotone over [lo, hi]. */
    if (isnan(net_bn_value(L, c, (float)lo)) || isnan(net_bn_value(L, c, (float)hi)))
        return bn_error(BN_EARG, "packed: neuron %d: batch norm gives NaN (gamma %g, var %g)", c,
                        (double)L->gamma[c], (double)L->var[c]);
    int blo = packed_bn_bit(L, c, lo), bhi = packed_bn_bit(L, c, hi);
    if (blo == bhi) { /* constant over the range */
        *T = blo ? INT32_MIN : INT32_MAX;
        *inv = 0;
        return BN_OK;
    }
    /* Smallest a in (lo, hi] with bit(a) == bhi. */
    int64_t a = lo, b = hi; /* bit(a) == blo, bit(b) == bhi */
    while (b - a > 1) {
        int64_t mid = a + (b - a) / 2;
        if (packed_bn_bit(L, c, (int32_t)mid) == bhi) b = mid; else a = mid;
    }
    *T = (int32_t)b;
    *inv = blo; /* increasing: acc >= T; decreasing: !(acc >= T) */
    return BN_OK;
}

/* ---- Packing ---- */

void packed_layer_free(packed_layer *L) {
    free(L->w), free(L->wvalid), free(L->wi), free(L->w8), free(L->thr), free(L->inv);
    memset(L, 0, sizeof *L);
}

void packed_free(packed_net *p) {
    for (int l = 0; l < p->n_layers; l++) packed_layer_free(&p->layers[l]);
    memset(p, 0, sizeof *p);
}

/* Canonical (word, bit) of weight i (in the float path's fan_in order) of L. */
static void packed_weight_pos(const packed_layer *L, int i, int *word, int *bit) {
    if (L->first) {
        *word = i / 64, *bit = i % 64;
    } else {
        int pix = i / L->in_c, c = i % L->in_c; /* tap (conv) or input pixel (dense) */
        *word = pix * L->in_cw + c / 64, *bit = c % 64;
    }
}

/* Bytes of L's w8 (first layer): k4 per neuron. */
static size_t packed_w8_bytes(const packed_layer *L) { return (size_t)L->np * L->k4; }

/* w8 (np/16, K/4, 16, 4) from the canonical bits: byte i of neuron n is +1 or
   -1 where bit i of its row is a real weight (wvalid), else 0. Four bits at a
   time through two nibble tables. */
static void packed_sync_w8(packed_layer *L) {
    static const uint32_t pm[2] = {0xffu, 0x01u}; /* -1, +1 */
    uint32_t val[16], valid[16];
    for (int b = 0; b < 16; b++) {
        val[b] = valid[b] = 0;
        for (int i = 0; i < 4; i++) {
            val[b] |= pm[b >> i & 1] << (8 * i);
            valid[b] |= (uint32_t)(b >> i & 1 ? 0xffu : 0) << (8 * i);
        }
    }
    size_t kq = (size_t)L->k4 / 4; /* dword steps per neuron */
    uint32_t *w8 = (uint32_t *)(void *)L->w8;
    memset(w8, 0, packed_w8_bytes(L));
    for (int n = 0; n < L->out_c; n++) {
        const uint64_t *row = L->w + (size_t)n * L->kw;
        uint32_t *dst = w8 + (size_t)(n / 16) * kq * 16 + n % 16;
        for (size_t q = 0; q < kq && q / 16 < (size_t)L->kw; q++) {
            int sh = (int)(4 * q % 64);
            unsigned b = (unsigned)(row[q / 16] >> sh) & 15u, v = (unsigned)(L->wvalid[q / 16] >> sh) & 15u;
            dst[q * 16] = val[b] & valid[v];
        }
    }
}

void packed_layer_sync(packed_layer *L) {
    if (L->w8) packed_sync_w8(L);
    if (L->wi) {
        memset(L->wi, 0, sizeof(uint64_t) * (size_t)L->np * L->kw);
        for (int n = 0; n < L->out_c; n++)
            for (int j = 0; j < L->kw; j++)
                L->wi[((size_t)(n / 8) * L->kw + j) * 8 + n % 8] = L->w[(size_t)n * L->kw + j];
    }
}

void packed_layer_set_weights(packed_layer *L, const float *w) {
    memset(L->w, 0, sizeof(uint64_t) * (size_t)L->out_c * L->kw);
    for (int o = 0; o < L->out_c; o++) {
        const float *row = w + (size_t)o * L->fan_in;
        uint64_t *bits = L->w + (size_t)o * L->kw;
        if (L->first || L->in_c % 64 == 0) { /* weight i is bit i of the row */
            for (int i = 0; i < L->fan_in; i++) bits[i / 64] |= (uint64_t)(row[i] > 0.0f) << (i % 64);
        } else {
            for (int i = 0; i < L->fan_in; i++) {
                int word, bit;
                packed_weight_pos(L, i, &word, &bit);
                bits[word] |= (uint64_t)(row[i] > 0.0f) << bit;
            }
        }
    }
    packed_layer_sync(L);
}

int packed_layer_init(packed_layer *L, const net_layer *N) {
    memset(L, 0, sizeof *L);
    L->kind = N->kind, L->first = N->first, L->last = N->last;
    L->in_c = N->in_c, L->in_h = N->in_h, L->in_w = N->in_w;
    L->out_c = N->out_c, L->pool = N->pool, L->out_h = N->out_h, L->out_w = N->out_w;
    L->fan_in = N->fan_in;
    L->np = (N->out_c + 15) / 16 * 16;
    L->in_cw = (N->in_c + 63) / 64;
    L->out_cw = (N->out_c + 63) / 64;
    int64_t range = L->first ? 255 * (int64_t)L->fan_in : L->fan_in;
    if (range >= PACKED_ACC_LIMIT)
        return bn_error(BN_EARG, "packed: accumulators reach %lld >= 2^24; the float path is not exact there",
                        (long long)range);
    if (L->first)
        L->kw = (L->fan_in + 63) / 64;
    else if (L->kind == NET_CONV)
        L->kw = 9 * L->in_cw;
    else
        L->kw = L->in_h * L->in_w * L->in_cw;
    /* dense first layers: whole 64-byte steps (the AMX kernel's K step); conv: dwords */
    L->k4 = L->kind == NET_FC ? (L->fan_in + 63) / 64 * 64 : (L->fan_in + 3) / 4 * 4;
    L->w = bn_calloc((size_t)L->out_c * L->kw, sizeof(uint64_t));
    L->wvalid = bn_calloc((size_t)L->kw, sizeof(uint64_t));
    for (int i = 0; i < L->fan_in; i++) {
        int word, bit;
        packed_weight_pos(L, i, &word, &bit);
        L->wvalid[word] |= (uint64_t)1 << bit;
    }
    if (L->first)
        L->w8 = bn_aligned_alloc(packed_w8_bytes(L));
    else
        L->wi = bn_aligned_alloc(sizeof(uint64_t) * (size_t)L->np * L->kw);
    packed_layer_set_weights(L, N->w);
    return BN_OK;
}

void packed_pack_signs(uint64_t *bits, const float *x, int64_t n, int C) {
    int cw = (C + 63) / 64;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float *v = x + i * C;
        uint64_t *o = bits + i * cw;
        for (int j = 0; j < cw; j++) {
            uint64_t word = 0;
            int c0 = j * 64, c1 = c0 + 64 < C ? c0 + 64 : C;
            for (int c = c0; c < c1; c++) word |= (uint64_t)(v[c] > 0.0f) << (c - c0);
            o[j] = word;
        }
    }
}

int packed_from_net(packed_net *p, const net *n) {
    int rc = BN_OK;
    memset(p, 0, sizeof *p);
    p->in_c = n->in_c, p->in_h = n->in_h, p->in_w = n->in_w;
    p->classes = n->classes;
    p->n_layers = n->n_layers;
    p->scale = *n->scale;
    for (int l = 0; l < n->n_layers; l++) {
        const net_layer *N = &n->layers[l];
        packed_layer *L = &p->layers[l];
        if ((rc = packed_layer_init(L, N)) != BN_OK) {
            rc = bn_error(rc, "packed: layer %d: %s", l, bn_errmsg());
            goto fail;
        }
        if (!L->last) {
            L->thr = bn_aligned_alloc(sizeof(int32_t) * (size_t)L->np);
            L->inv = bn_calloc((size_t)(L->np + 63) / 64, sizeof(uint64_t));
            int32_t lo, hi;
            packed_acc_range(N, &lo, &hi);
            for (int c = 0; c < L->np; c++) {
                int32_t T = INT32_MAX;
                int inv = 0;
                if (c < L->out_c && (rc = packed_fold_threshold(N, c, lo, hi, &T, &inv)) != BN_OK) {
                    rc = bn_error(rc, "packed: layer %d: %s", l, bn_errmsg());
                    goto fail;
                }
                L->thr[c] = T;
                if (inv) L->inv[c / 64] |= (uint64_t)1 << (c % 64);
            }
        }
    }
    return BN_OK;
fail:
    packed_free(p);
    return rc;
}

int packed_copy(packed_net *dst, const packed_net *src) {
    *dst = *src;
    for (int l = 0; l < src->n_layers; l++) {
        const packed_layer *S = &src->layers[l];
        packed_layer *D = &dst->layers[l];
        size_t nw = (size_t)S->out_c * S->kw;
        D->w = bn_malloc(sizeof(uint64_t) * (nw ? nw : 1));
        memcpy(D->w, S->w, sizeof(uint64_t) * nw);
        D->wvalid = bn_malloc(sizeof(uint64_t) * (size_t)S->kw);
        memcpy(D->wvalid, S->wvalid, sizeof(uint64_t) * (size_t)S->kw);
        D->wi = NULL, D->w8 = NULL, D->thr = NULL, D->inv = NULL;
        if (S->wi) D->wi = bn_aligned_alloc(sizeof(uint64_t) * (size_t)S->np * S->kw);
        if (S->w8) D->w8 = bn_aligned_alloc(packed_w8_bytes(S));
        packed_layer_sync(D);
        if (S->thr) {
            D->thr = bn_aligned_alloc(sizeof(int32_t) * (size_t)S->np);
            memcpy(D->thr, S->thr, sizeof(int32_t) * (size_t)S->np);
            D->inv = bn_malloc(sizeof(uint64_t) * (size_t)((S->np + 63) / 64));
            memcpy(D->inv, S->inv, sizeof(uint64_t) * (size_t)((S->np + 63) / 64));
        }
    }
    return BN_OK;
}

/* Sets bits of a Bernoulli(prob) mask over the nbits bit positions into mask
   (words, zeroed by the caller): the gaps between set bits are geometric. */
static void packed_bernoulli_mask(uint64_t *mask, int64_t nbits, double prob, pcg32 *rng) {
    if (prob <= 0.0) return;
    if (prob >= 1.0) {
        for (int64_t i = 0; i < nbits; i++) mask[i / 64] |= (uint64_t)1 << (i % 64);
        return;
    }
    double lq = dmath_log1p(-prob);
    int64_t i = -1;
    for (;;) {
        double u = 1.0 - pcg32_double(rng); /* (0, 1] */
        double gap = floor(dmath_log(u) / lq);    /* failures before the next success */
        if (gap >= (double)(nbits - i)) break;
        i += (int64_t)gap + 1;
        if (i >= nbits) break;
        mask[i / 64] |= (uint64_t)1 << (i % 64);
    }
}

int64_t packed_flip_weights(packed_net *p, int l, double p01, double p10, pcg32 *rng) {
    BN_ASSERT(l >= 0 && l < p->n_layers);
    packed_layer *L = &p->layers[l];
    size_t nw = (size_t)L->out_c * L->kw;
    uint64_t *m01 = bn_calloc(nw ? nw : 1, sizeof(uint64_t)), *m10 = bn_calloc(nw ? nw : 1, sizeof(uint64_t));
    packed_bernoulli_mask(m01, (int64_t)nw * 64, p01, rng);
    packed_bernoulli_mask(m10, (int64_t)nw * 64, p10, rng);
    int64_t flips = 0;
    for (size_t i = 0; i < nw; i++) {
        uint64_t w = L->w[i], valid = L->wvalid[i % L->kw];
        uint64_t f = ((m01[i] & ~w) | (m10[i] & w)) & valid;
        L->w[i] = w ^ f;
        flips += packed_popcount64(f);
    }
    free(m01), free(m10);
    packed_layer_sync(L);
    return flips;
}

/* ---- Reference kernels (canonical bits, plain loops) ---- */

void packed_u8dense_ref(int32_t *acc, const uint8_t *x, int ldx, const packed_layer *L, int R) {
    for (int r = 0; r < R; r++)
        for (int n = 0; n < L->np; n++) {
            int32_t s = 0;
            if (n < L->out_c)
                for (int i = 0; i < L->fan_in; i++) {
                    int v = x[(size_t)r * ldx + i];
                    s += packed_wbit(L, n, i / 64, i % 64) ? v : -v;
                }
            acc[(size_t)r * L->np + n] = s;
        }
}

void packed_bdense_ref(int32_t *acc, const uint64_t *a, const packed_layer *L, int R) {
    for (int r = 0; r < R; r++)
        for (int n = 0; n < L->np; n++) {
            int32_t s = 0;
            if (n < L->out_c) {
                int pc = 0;
                for (int j = 0; j < L->kw; j++)
                    pc += packed_popcount64(a[(size_t)r * L->kw + j] ^ L->w[(size_t)n * L->kw + j]);
                s = L->fan_in - 2 * pc;
            }
            acc[(size_t)r * L->np + n] = s;
        }
}

void packed_bdense_thresh_ref(uint64_t *bits, int ldo, const uint64_t *a, const packed_layer *L, int R) {
    for (int r = 0; r < R; r++)
        for (int w = 0; w < L->out_cw; w++) {
            uint64_t word = 0;
            for (int n = 64 * w; n < L->out_c && n < 64 * w + 64; n++) {
                int pc = 0;
                for (int j = 0; j < L->kw; j++)
                    pc += packed_popcount64(a[(size_t)r * L->kw + j] ^ L->w[(size_t)n * L->kw + j]);
                int on = (L->fan_in - 2 * pc >= L->thr[n]) ^ (int)(L->inv[n / 64] >> (n % 64) & 1);
                word |= (uint64_t)on << (n % 64);
            }
            bits[(size_t)r * ldo + w] = word;
        }
}

void packed_bconv_ref(int32_t *acc, const uint64_t *a, const packed_layer *L, int y0, int ny) {
    int H = L->in_h, W = L->in_w, cw = L->in_cw;
    for (int y = y0; y < y0 + ny; y++)
        for (int x = 0; x < W; x++)
            for (int n = 0; n < L->np; n++) {
                int32_t s = 0;
                if (n < L->out_c) {
                    int pc = 0, valid = 0;
                    for (int t = 0; t < 9; t++) {
                        int iy = y + t / 3 - 1, ix = x + t % 3 - 1;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                        valid++;
                        const uint64_t *pix = a + ((size_t)iy * W + ix) * cw;
                        for (int j = 0; j < cw; j++)
                            pc += packed_popcount64(pix[j] ^ L->w[(size_t)n * L->kw + t * cw + j]);
                    }
                    s = valid * L->in_c - 2 * pc;
                }
                acc[((size_t)(y - y0) * W + x) * L->np + n] = s;
            }
}

void packed_pool2_ref(int32_t *out, const int32_t *acc0, const int32_t *acc1, int W, int np) {
    for (int ox = 0; ox < W / 2; ox++)
        for (int n = 0; n < np; n++) {
            int32_t m = acc0[(size_t)(2 * ox) * np + n];
            int32_t v[3] = {acc0[(size_t)(2 * ox + 1) * np + n], acc1[(size_t)(2 * ox) * np + n],
                            acc1[(size_t)(2 * ox + 1) * np + n]};
            for (int k = 0; k < 3; k++) m = v[k] > m ? v[k] : m;
            out[(size_t)ox * np + n] = m;
        }
}

void packed_thresh_ref(uint64_t *bits, int ldo, const int32_t *acc, const packed_layer *L, int M) {
    for (int m = 0; m < M; m++)
        for (int w = 0; w < L->out_cw; w++) {
            uint64_t word = 0;
            for (int b = 0; b < 64 && 64 * w + b < L->out_c; b++) {
                int n = 64 * w + b;
                int on = (acc[(size_t)m * L->np + n] >= L->thr[n]) ^ (int)((L->inv[n / 64] >> (n % 64)) & 1u);
                word |= (uint64_t)on << b;
            }
            bits[(size_t)m * ldo + w] = word;
        }
}

/* ---- Portable kernels: plain C on the derived layouts (no intrinsics) ---- */

/* Popcount without a popcnt instruction (SWAR). */
static int packed_popcount_swar(uint64_t x) {
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
    return (int)((x * 0x0101010101010101ULL) >> 56);
}

static void packed_u8dense_portable(int32_t *acc, const uint8_t *x, int ldx, const packed_layer *L, int R) {
    int kq = L->k4 / 4;
    for (int r = 0; r < R; r++) {
        const uint8_t *xr = x + (size_t)r * ldx;
        for (int g = 0; g < L->np / 16; g++) {
            int32_t s[16] = {0};
            const int8_t *wg = L->w8 + (size_t)g * kq * 64;
            for (int k = 0; k < kq; k++) {
                int p0 = xr[4 * k], p1 = xr[4 * k + 1], p2 = xr[4 * k + 2], p3 = xr[4 * k + 3];
                if ((p0 | p1 | p2 | p3) == 0) continue;
                const int8_t *wk = wg + (size_t)k * 64;
                for (int l = 0; l < 16; l++)
                    s[l] += wk[4 * l] * p0 + wk[4 * l + 1] * p1 + wk[4 * l + 2] * p2 + wk[4 * l + 3] * p3;
            }
            memcpy(acc + (size_t)r * L->np + 16 * g, s, sizeof s);
        }
    }
}

/* s[l] = popcount(row ar XOR neuron 8g + l) on the interleaved weights. */
static void packed_group_popcounts(int32_t s[8], const uint64_t *ar, const packed_layer *L, int g) {
    const uint64_t *wg = L->wi + (size_t)g * L->kw * 8;
    for (int l = 0; l < 8; l++) s[l] = 0;
    for (int j = 0; j < L->kw; j++)
        for (int l = 0; l < 8; l++) s[l] += packed_popcount_swar(ar[j] ^ wg[(size_t)j * 8 + l]);
}

static void packed_bdense_portable(int32_t *acc, const uint64_t *a, const packed_layer *L, int R) {
    for (int r = 0; r < R; r++) {
        const uint64_t *ar = a + (size_t)r * L->kw;
        for (int g = 0; g < L->np / 8; g++) {
            int32_t s[8];
            packed_group_popcounts(s, ar, L, g);
            for (int l = 0; l < 8; l++) {
                int n = 8 * g + l;
                acc[(size_t)r * L->np + n] = n < L->out_c ? L->fan_in - 2 * s[l] : 0;
            }
        }
    }
}

static void packed_bdense_thresh_portable(uint64_t *bits, int ldo, const uint64_t *a, const packed_layer *L,
                                          int R) {
    for (int r = 0; r < R; r++) {
        const uint64_t *ar = a + (size_t)r * L->kw;
        uint64_t *out = bits + (size_t)r * ldo;
        memset(out, 0, sizeof(uint64_t) * (size_t)L->out_cw);
        for (int g = 0; g < L->np / 8; g++) {
            int32_t s[8];
            packed_group_popcounts(s, ar, L, g);
            for (int l = 0; l < 8; l++) {
                int n = 8 * g + l;
                if (n >= L->out_c) break;
                uint64_t on = (uint64_t)(L->fan_in - 2 * s[l] >= L->thr[n]) ^ (L->inv[n / 64] >> (n % 64) & 1);
                out[n / 64] |= on << (n % 64);
            }
        }
    }
}

static void packed_bconv_portable(int32_t *acc, const uint64_t *a, const packed_layer *L, int y0, int ny) {
    int H = L->in_h, W = L->in_w, cw = L->in_cw, kw = L->kw;
    for (int y = y0; y < y0 + ny; y++)
        for (int x = 0; x < W; x++) {
            int32_t *o = acc + ((size_t)(y - y0) * W + x) * L->np;
            for (int g = 0; g < L->np / 8; g++) {
                int32_t s[8] = {0};
                int valid = 0;
                const uint64_t *wg = L->wi + (size_t)g * kw * 8;
                for (int t = 0; t < 9; t++) {
                    int iy = y + t / 3 - 1, ix = x + t % 3 - 1;
                    if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                    valid++;
                    const uint64_t *pix = a + ((size_t)iy * W + ix) * cw;
                    for (int j = 0; j < cw; j++)
                        for (int l = 0; l < 8; l++)
                            s[l] += packed_popcount_swar(pix[j] ^ wg[(size_t)(t * cw + j) * 8 + l]);
                }
                for (int l = 0; l < 8; l++) {
                    int n = 8 * g + l;
                    o[n] = n < L->out_c ? valid * L->in_c - 2 * s[l] : 0;
                }
            }
        }
}

/* ---- Dispatch ---- */

static const packed_kernels packed_ref_set = {
    "ref", packed_u8dense_ref, packed_bdense_ref, packed_bconv_ref, packed_pool2_ref, packed_thresh_ref,
    packed_bdense_thresh_ref,
};

static const packed_kernels packed_portable = {
    "portable", packed_u8dense_portable, packed_bdense_portable, packed_bconv_portable, packed_pool2_ref,
    packed_thresh_ref, packed_bdense_thresh_portable,
};

const packed_kernels *packed_kernels_named(const char *name) {
    if (!name) return NULL;
    if (!strcmp(name, "ref")) return &packed_ref_set;
    if (!strcmp(name, "portable")) return &packed_portable;
    if (!strcmp(name, "avx2")) return packed_kernels_avx2();
    if (!strcmp(name, "avx512")) return packed_kernels_avx512();
    if (!strcmp(name, "amx")) return packed_kernels_amx();
    return NULL;
}

static const packed_kernels *packed_active;

static void packed_choose(void) {
    const packed_kernels *k = NULL;
    const char *env = getenv("BNAS_SIMD");
    if (env && *env) k = packed_kernels_named(env);
    if (!k) k = packed_kernels_amx();
    if (!k) k = packed_kernels_avx512();
    if (!k) k = packed_kernels_avx2();
    if (!k) k = &packed_portable;
    packed_active = k;
}

const packed_kernels *packed_kernels_active(void) {
#pragma omp critical(packed_dispatch)
    {
        if (!packed_active) packed_choose();
    }
    return packed_active;
}

const char *packed_simd_name(void) { return packed_kernels_active()->name; }

/* ---- Forward driver ---- */

/* Per-thread scratch of the forward pass. */
typedef struct {
    uint64_t *act[2]; /* (PACKED_BLOCK, max activation words per image) ping-pong activations */
    int32_t *acc;     /* accumulators: max of (PACKED_BLOCK, np) and (2, in_w, np) + pool row */
    uint8_t *xb;      /* first-layer byte rows: max of (PACKED_BLOCK, k4) and (in_w, k4) */
    uint8_t *xp;      /* first-layer conv: zero-bordered image (in_h+2, in_w+2, in_c) + 4 */
    size_t act_words; /* words per image in act[i] */
} packed_scratch;

/* Words of one image's output activation of layer L. */
static size_t packed_out_words(const packed_layer *L) {
    return (size_t)L->out_h * L->out_w * L->out_cw;
}

static void packed_scratch_init(packed_scratch *s, const packed_net *p) {
    size_t aw = 1, acc = 1, xb = 1, xp = 8;
    for (int l = 0; l < p->n_layers; l++) {
        const packed_layer *L = &p->layers[l];
        if (packed_out_words(L) > aw) aw = packed_out_words(L);
        size_t a1 = (size_t)PACKED_BLOCK * L->np;
        size_t a2 = L->kind == NET_CONV ? (size_t)3 * L->in_w * L->np : 0;
        if (a1 > acc) acc = a1;
        if (a2 > acc) acc = a2;
        if (L->first) {
            size_t rows = L->kind == NET_CONV ? (size_t)L->in_w : PACKED_BLOCK;
            if (rows * L->k4 > xb) xb = rows * L->k4;
            size_t pad = (size_t)(L->in_h + 2) * (L->in_w + 2) * L->in_c + 8;
            if (L->kind == NET_CONV && pad > xp) xp = pad;
        }
    }
    s->act_words = aw;
    s->act[0] = bn_aligned_alloc(sizeof(uint64_t) * aw * PACKED_BLOCK);
    s->act[1] = bn_aligned_alloc(sizeof(uint64_t) * aw * PACKED_BLOCK);
    s->acc = bn_aligned_alloc(sizeof(int32_t) * acc);
    s->xb = bn_aligned_alloc(xb);
    s->xp = bn_aligned_alloc(xp);
}

static void packed_scratch_free(packed_scratch *s) {
    free(s->act[0]), free(s->act[1]), free(s->acc), free(s->xb), free(s->xp);
}

/* Zero-bordered copy of a first-layer conv input: xp (in_h+2, in_w+2, C), plus
   4 spare bytes. */
static void packed_pad_u8(uint8_t *xp, const uint8_t *img, const packed_layer *L) {
    int H = L->in_h, W = L->in_w, C = L->in_c;
    size_t prow = (size_t)(W + 2) * C;
    memset(xp, 0, prow * (H + 2) + 4);
    for (int y = 0; y < H; y++) memcpy(xp + (y + 1) * prow + C, img + (size_t)y * W * C, (size_t)W * C);
}

/* Byte rows of output row y of a first-layer conv: xb (in_w, k4), (ky, kx, c)
   order, from the padded image xp; zeros outside the image and in the padding. */
static void packed_im2col_u8(uint8_t *xb, const uint8_t *xp, const packed_layer *L, int y) {
    int W = L->in_w, C = L->in_c, K = L->k4;
    size_t prow = (size_t)(W + 2) * C;
    for (int x = 0; x < W; x++) {
        uint8_t *row = xb + (size_t)x * K;
        const uint8_t *src = xp + (size_t)y * prow + (size_t)x * C;
        if (C == 1) { /* 4-byte copies; each one's 4th byte is overwritten by the next */
            memcpy(row, src, 4);
            memcpy(row + 3, src + prow, 4);
            memcpy(row + 6, src + 2 * prow, 4);
            for (int i = 9; i < K; i++) row[i] = 0;
        } else {
            for (int ky = 0; ky < 3; ky++) memcpy(row + ky * 3 * C, src + ky * prow, (size_t)3 * C);
            for (int i = 9 * C; i < K; i++) row[i] = 0;
        }
    }
}

/* One conv layer on one image: in (in_h, in_w, in_cw) words or pixels, out
   (out_h, out_w, out_cw). */
static void packed_conv_image(const packed_kernels *k, const packed_layer *L, packed_scratch *s,
                              uint64_t *out, const uint64_t *in, const uint8_t *img) {
    int W = L->in_w;
    size_t row = (size_t)W * L->np;
    if (L->first) packed_pad_u8(s->xp, img, L);
    if (L->pool) {
        int32_t *a0 = s->acc, *a1 = s->acc + row, *po = s->acc + 2 * row;
        for (int oy = 0; oy < L->out_h; oy++) {
            if (L->first) {
                packed_im2col_u8(s->xb, s->xp, L, 2 * oy);
                k->u8dense(a0, s->xb, L->k4, L, W);
                packed_im2col_u8(s->xb, s->xp, L, 2 * oy + 1);
                k->u8dense(a1, s->xb, L->k4, L, W);
            } else {
                k->bconv(a0, in, L, 2 * oy, 2);
            }
            k->pool2(po, a0, a1, W, L->np);
            k->thresh(out + (size_t)oy * L->out_w * L->out_cw, L->out_cw, po, L, L->out_w);
        }
    } else {
        for (int y = 0; y < L->out_h; y++) {
            if (L->first) {
                packed_im2col_u8(s->xb, s->xp, L, y);
                k->u8dense(s->acc, s->xb, L->k4, L, W);
            } else {
                k->bconv(s->acc, in, L, y, 1);
            }
            k->thresh(out + (size_t)y * L->out_w * L->out_cw, L->out_cw, s->acc, L, L->out_w);
        }
    }
}

/* Forward of R <= PACKED_BLOCK images x (R, H, W, C) to logits (R, classes). */
static void packed_forward_block(const packed_net *p, const packed_kernels *k, packed_scratch *s,
                                 float *logits, const uint8_t *x, int R) {
    size_t img_bytes = (size_t)p->in_h * p->in_w * p->in_c;
    int cur = 0; /* s->act[cur] holds the current activations, one image per act_words */
    for (int l = 0; l < p->n_layers; l++) {
        const packed_layer *L = &p->layers[l];
        uint64_t *in = s->act[cur], *out = s->act[cur ^ 1];
        if (L->kind == NET_CONV) {
            for (int r = 0; r < R; r++)
                packed_conv_image(k, L, s, out + (size_t)r * s->act_words, in + (size_t)r * s->act_words,
                                  x + (size_t)r * img_bytes);
        } else {
            if (L->first) {
                for (int r = 0; r < R; r++) {
                    memcpy(s->xb + (size_t)r * L->k4, x + (size_t)r * img_bytes, img_bytes);
                    memset(s->xb + (size_t)r * L->k4 + img_bytes, 0, (size_t)L->k4 - img_bytes);
                }
                k->u8dense(s->acc, s->xb, L->k4, L, R);
            } else {
                /* Dense rows of kw words: the previous output is contiguous per image. */
                if ((size_t)L->kw != s->act_words)
                    for (int r = 1; r < R; r++)
                        memmove(in + (size_t)r * L->kw, in + (size_t)r * s->act_words, sizeof(uint64_t) * L->kw);
                if (!L->last) { /* hidden: straight to the bits */
                    k->bdense_thresh(out, (int)s->act_words, in, L, R);
                    cur ^= 1;
                    continue;
                }
                k->bdense(s->acc, in, L, R);
            }
            if (L->last) {
                for (int r = 0; r < R; r++)
                    for (int c = 0; c < p->classes; c++)
                        logits[(size_t)r * p->classes + c] = p->scale * (float)s->acc[(size_t)r * L->np + c];
            } else {
                k->thresh(out, (int)s->act_words, s->acc, L, R);
            }
        }
        cur ^= 1;
    }
}

void packed_logits_with(const packed_net *p, const packed_kernels *k, float *logits, const uint8_t *x,
                        int B, int threads) {
    size_t img_bytes = (size_t)p->in_h * p->in_w * p->in_c;
    int blocks = (B + PACKED_BLOCK - 1) / PACKED_BLOCK;
    int nt = threads > 0 ? threads : omp_get_max_threads();
    if (nt > blocks) nt = blocks > 0 ? blocks : 1;
#pragma omp parallel num_threads(nt)
    {
        packed_scratch s;
        packed_scratch_init(&s, p);
#pragma omp for schedule(static)
        for (int b = 0; b < blocks; b++) {
            int b0 = b * PACKED_BLOCK, R = B - b0 < PACKED_BLOCK ? B - b0 : PACKED_BLOCK;
            packed_forward_block(p, k, &s, logits + (size_t)b0 * p->classes, x + (size_t)b0 * img_bytes, R);
        }
        packed_scratch_free(&s);
    }
}

void packed_logits(const packed_net *p, float *logits, const uint8_t *x, int B) {
    packed_logits_with(p, packed_kernels_active(), logits, x, B, 0);
}

static void packed_argmax(int *pred, const float *logits, int B, int classes) {
    for (int b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * classes;
        int best = 0;
        for (int c = 1; c < classes; c++)
            if (z[c] > z[best]) best = c;
        pred[b] = best;
    }
}

void packed_predict_threads(const packed_net *p, int *pred, const uint8_t *x, int B, int threads) {
    float *logits = bn_malloc(sizeof(float) * ((size_t)B * p->classes + 1));
    packed_logits_with(p, packed_kernels_active(), logits, x, B, threads);
    packed_argmax(pred, logits, B, p->classes);
    free(logits);
}

void packed_predict(const packed_net *p, int *pred, const uint8_t *x, int B) {
    packed_predict_threads(p, pred, x, B, 0);
}

double packed_bench_images_per_s(const packed_net *p, const uint8_t *x, int n, int threads) {
    int *pred = bn_malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    double t0 = omp_get_wtime(), t;
    long long done = 0;
    packed_predict_threads(p, pred, x, n, threads); /* warm-up */
    t0 = omp_get_wtime();
    do {
        packed_predict_threads(p, pred, x, n, threads);
        done += n;
        t = omp_get_wtime() - t0;
    } while (t < 0.5);
    free(pred);
    return (double)done / t;
}

/* ---- Whole-forward reference ---- */

void packed_forward_ref(const packed_net *p, float *logits, const uint8_t *x, int B) {
    size_t img_bytes = (size_t)p->in_h * p->in_w * p->in_c;
    for (int b = 0; b < B; b++) {
        const uint8_t *img = x + (size_t)b * img_bytes;
        int32_t *act = NULL; /* current activations as +-1, (H, W, C) */
        for (int l = 0; l < p->n_layers; l++) {
            const packed_layer *L = &p->layers[l];
            int H = L->in_h, W = L->in_w, C = L->in_c;
            int positions = L->kind == NET_CONV ? H * W : 1;
            int32_t *z = bn_malloc(sizeof(int32_t) * (size_t)positions * L->out_c);
            for (int pos = 0; pos < positions; pos++)
                for (int n = 0; n < L->out_c; n++) {
                    int32_t s = 0;
                    for (int i = 0; i < L->fan_in; i++) {
                        int v; /* input value of weight i, 0 outside the image */
                        if (L->kind == NET_CONV) {
                            int t = i / C, c = i % C, iy = pos / W + t / 3 - 1, ix = pos % W + t % 3 - 1;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            size_t at = ((size_t)iy * W + ix) * C + c;
                            v = L->first ? img[at] : act[at];
                        } else {
                            v = L->first ? img[i] : act[i];
                        }
                        int word, bit;
                        packed_weight_pos(L, i, &word, &bit);
                        s += packed_wbit(L, n, word, bit) ? v : -v;
                    }
                    z[(size_t)pos * L->out_c + n] = s;
                }
            if (L->last) {
                for (int c = 0; c < p->classes; c++) logits[(size_t)b * p->classes + c] = p->scale * (float)z[c];
                free(z);
                break;
            }
            int OH = L->out_h, OW = L->out_w;
            int32_t *next = bn_malloc(sizeof(int32_t) * (size_t)OH * OW * L->out_c);
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++)
                    for (int n = 0; n < L->out_c; n++) {
                        int32_t m;
                        if (L->pool) {
                            m = INT32_MIN;
                            for (int d = 0; d < 4; d++) {
                                int32_t v = z[((size_t)(2 * oy + d / 2) * W + 2 * ox + d % 2) * L->out_c + n];
                                m = v > m ? v : m;
                            }
                        } else {
                            m = z[((size_t)oy * OW + ox) * L->out_c + n];
                        }
                        int on = (m >= L->thr[n]) ^ (int)((L->inv[n / 64] >> (n % 64)) & 1u);
                        next[((size_t)oy * OW + ox) * L->out_c + n] = on ? 1 : -1;
                    }
            free(z);
            free(act);
            act = next;
        }
        free(act);
    }
}
