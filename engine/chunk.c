/*
** Chunked partial sums (engine/chunk.h): the flat weight layout, the chunk
** partition into (word, mask) segments, the chunk-sum kernel and its
** reference, and the per-image forward driver.
*/
#include "engine/chunk.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "engine/err.h"

int64_t chunk_round_div(int64_t a, int64_t b) {
    BN_ASSERT(b > 0);
    int64_t q = (2 * (a < 0 ? -a : a) + b) / (2 * b); /* floor(|a|/b + 1/2) */
    return a < 0 ? -q : q;
}

/* Copies nbits bits from src (starting at bit 0 of src[0]) to dst at bit
   offset off; dst bits there must be 0. */
static void chunk_copy_bits(uint64_t *dst, int off, const uint64_t *src, int nbits) {
    for (int i = 0; nbits > 0; i++, nbits -= 64, off += 64) {
        uint64_t w = src[i];
        if (nbits < 64) w &= ((uint64_t)1 << nbits) - 1;
        int q = off / 64, r = off % 64;
        dst[q] |= w << r;
        if (r) {
            uint64_t hi = w >> (64 - r);
            if (hi) dst[q + 1] |= hi;
        }
    }
}

/* Sets bits [off, off + nbits) of dst. */
static void chunk_set_bits(uint64_t *dst, int off, int nbits) {
    for (int i = off; i < off + nbits;) {
        int r = i % 64, take = 64 - r < off + nbits - i ? 64 - r : off + nbits - i;
        uint64_t m = take == 64 ? ~(uint64_t)0 : (((uint64_t)1 << take) - 1) << r;
        dst[i / 64] |= m;
        i += take;
    }
}

int chunk_layer_init(chunk_layer *C, int n, int fan_in, int out_c, const uint64_t *wf) {
    memset(C, 0, sizeof *C);
    if (n < 1 || fan_in < 1) return bn_error(BN_EARG, "chunk: chunk size %d (fan_in %d) must be >= 1", n, fan_in);
    C->n = n;
    C->K = (fan_in + n - 1) / n;
    C->fw = (fan_in + 63) / 64;
    C->wf = bn_malloc(sizeof(uint64_t) * (size_t)out_c * C->fw + 8);
    memcpy(C->wf, wf, sizeof(uint64_t) * (size_t)out_c * C->fw);
    C->len = bn_malloc(sizeof(int32_t) * (size_t)C->K);
    for (int k = 0; k < C->K; k++) C->len[k] = (k + 1) * n <= fan_in ? n : fan_in - k * n;
    /* segments: the pieces of each chunk inside one word */
    int cap = C->K + C->fw + 1;
    C->seg_word = bn_malloc(sizeof(int32_t) * (size_t)cap);
    C->seg_mask = bn_malloc(sizeof(uint64_t) * (size_t)cap);
    C->seg_chunk = bn_malloc(sizeof(int32_t) * (size_t)cap);
    for (int k = 0; k < C->K; k++) {
        int b0 = k * n, b1 = b0 + C->len[k];
        for (int i = b0; i < b1;) {
            int r = i % 64, take = 64 - r < b1 - i ? 64 - r : b1 - i;
            BN_ASSERT(C->nseg < cap);
            C->seg_word[C->nseg] = i / 64;
            C->seg_mask[C->nseg] = take == 64 ? ~(uint64_t)0 : (((uint64_t)1 << take) - 1) << r;
            C->seg_chunk[C->nseg] = k;
            C->nseg++;
            i += take;
        }
    }
    return BN_OK;
}

void chunk_layer_free(chunk_layer *C) {
    free(C->wf), free(C->seg_word), free(C->seg_mask), free(C->seg_chunk), free(C->len);
    memset(C, 0, sizeof *C);
}

/* Products inside the image per chunk: vk (K). */
static void chunk_vcount(const chunk_layer *C, const uint64_t *v, int32_t *vk) {
    memset(vk, 0, sizeof(int32_t) * (size_t)C->K);
    for (int g = 0; g < C->nseg; g++) vk[C->seg_chunk[g]] += __builtin_popcountll(v[C->seg_word[g]] & C->seg_mask[g]);
}

/* s (K) = vk - 2 * mismatches of neuron j; d is (fw) scratch. */
static void chunk_sums_v(const chunk_layer *C, int j, const uint64_t *x, const uint64_t *v, const int32_t *vk,
                         uint64_t *d, int32_t *s) {
    const uint64_t *w = C->wf + (size_t)j * C->fw;
    if (C->n == 64) { /* one word per chunk (x and w are 0 beyond fan_in) */
        for (int k = 0; k < C->K; k++) s[k] = vk[k] - 2 * __builtin_popcountll((x[k] ^ w[k]) & v[k]);
        return;
    }
    for (int i = 0; i < C->fw; i++) d[i] = (x[i] ^ w[i]) & v[i];
    memcpy(s, vk, sizeof(int32_t) * (size_t)C->K);
    if (C->n % 64 == 0) { /* whole words per chunk, in order */
        int per = C->n / 64;
        for (int k = 0; k < C->K; k++) {
            int m = 0;
            for (int i = k * per; i < (k + 1) * per && i < C->fw; i++) m += __builtin_popcountll(d[i]);
            s[k] -= 2 * m;
        }
        return;
    }
    for (int g = 0; g < C->nseg; g++) s[C->seg_chunk[g]] -= 2 * __builtin_popcountll(d[C->seg_word[g]] & C->seg_mask[g]);
}

void chunk_sums(const chunk_layer *C, int j, const uint64_t *x, const uint64_t *v, int32_t *s) {
    int32_t *vk = bn_malloc(sizeof(int32_t) * (size_t)C->K);
    uint64_t *d = bn_malloc(sizeof(uint64_t) * (size_t)C->fw);
    chunk_vcount(C, v, vk);
    chunk_sums_v(C, j, x, v, vk, d, s);
    free(vk), free(d);
}

void chunk_sums_ref(const chunk_layer *C, int fan_in, int j, const uint64_t *x, const uint64_t *v, int32_t *s) {
    const uint64_t *w = C->wf + (size_t)j * C->fw;
    memset(s, 0, sizeof(int32_t) * (size_t)C->K);
    for (int i = 0; i < fan_in; i++) {
        if (!((v[i / 64] >> (i % 64)) & 1u)) continue;
        int xi = (int)((x[i / 64] >> (i % 64)) & 1u), wi = (int)((w[i / 64] >> (i % 64)) & 1u);
        s[i / C->n] += xi == wi ? 1 : -1;
    }
}

/* Flat row (fan_in order) of a hidden layer's canonical bits: in_c bits from
   each pixel group of `cw` words. */
static void chunk_flatten(uint64_t *dst, const uint64_t *src, int pixels, int in_c, int cw, int fw) {
    memset(dst, 0, sizeof(uint64_t) * (size_t)fw);
    for (int p = 0; p < pixels; p++) chunk_copy_bits(dst, p * in_c, src + (size_t)p * cw, in_c);
}

int chunk_plan_create(chunk_plan *cp, const packed_net *p, const chunk_config *cfg) {
    memset(cp, 0, sizeof *cp);
    cp->p = p;
    cp->cfg = *cfg;
    for (int l = 0; l < p->n_layers; l++) {
        const packed_layer *L = &p->layers[l];
        if (cfg->n[l] < 0) return bn_error(BN_EARG, "chunk: layer %d: chunk size %d < 0", l, cfg->n[l]);
        if (cfg->n[l] == 0) continue;
        if (L->first) {
            chunk_plan_free(cp);
            return bn_error(BN_EARG, "chunk: layer %d sees 8-bit pixels and cannot be chunked", l);
        }
        int fw = (L->fan_in + 63) / 64, pixels = L->kind == NET_CONV ? 9 : L->in_h * L->in_w;
        uint64_t *wf = bn_malloc(sizeof(uint64_t) * (size_t)L->out_c * fw + 8);
        for (int j = 0; j < L->out_c; j++)
            chunk_flatten(wf + (size_t)j * fw, L->w + (size_t)j * L->kw, pixels, L->in_c, L->in_cw, fw);
        int rc = chunk_layer_init(&cp->layers[l], cfg->n[l], L->fan_in, L->out_c, wf);
        free(wf);
        if (rc) {
            chunk_plan_free(cp);
            return rc;
        }
    }
    return BN_OK;
}

void chunk_plan_free(chunk_plan *cp) {
    for (int l = 0; l < NET_MAX_LAYERS; l++) chunk_layer_free(&cp->layers[l]);
}

int chunk_threads(int threads) { return threads > 0 ? threads : omp_get_max_threads(); }

/* ---- Driver ---- */

/* Per-thread buffers. */
typedef struct {
    uint64_t *act[2]; /* ping-pong activations */
    int32_t *acc;     /* (max positions before pooling, np) */
    int32_t *pooled;  /* (max positions after pooling, np) */
    uint8_t *xb;      /* first-layer byte rows */
    uint64_t *x, *v, *d; /* (max fw) flat input, its validity, mismatch scratch */
    int32_t *s, *vk;  /* (max K) chunk sums, valid products per chunk */
} chunk_scratch;

static void chunk_scratch_init(chunk_scratch *s, const chunk_plan *cp) {
    const packed_net *p = cp->p;
    size_t aw = 1, acc = 1, pooled = 1, xb = 4, fw = 1, K = 1;
    for (int l = 0; l < p->n_layers; l++) {
        const packed_layer *L = &p->layers[l];
        size_t ow = (size_t)L->out_h * L->out_w * L->out_cw, iw = (size_t)L->in_h * L->in_w * L->in_cw;
        if (ow > aw) aw = ow;
        if (!L->first && iw > aw) aw = iw;
        size_t a = L->kind == NET_CONV ? (size_t)L->in_h * L->in_w * L->np : (size_t)L->np;
        size_t po = (size_t)L->out_h * L->out_w * L->np;
        if (a > acc) acc = a;
        if (po > pooled) pooled = po;
        if (L->first) {
            size_t rows = L->kind == NET_CONV ? (size_t)L->in_w : 1;
            if (rows * L->k4 > xb) xb = rows * L->k4;
        }
        const chunk_layer *C = &cp->layers[l];
        if (C->n) {
            if ((size_t)C->fw > fw) fw = (size_t)C->fw;
            if ((size_t)C->K > K) K = (size_t)C->K;
        }
    }
    s->act[0] = bn_aligned_alloc(sizeof(uint64_t) * aw);
    s->act[1] = bn_aligned_alloc(sizeof(uint64_t) * aw);
    s->acc = bn_aligned_alloc(sizeof(int32_t) * acc);
    s->pooled = bn_aligned_alloc(sizeof(int32_t) * pooled);
    s->xb = bn_aligned_alloc(xb);
    s->x = bn_malloc(sizeof(uint64_t) * (fw + 1));
    s->v = bn_malloc(sizeof(uint64_t) * (fw + 1));
    s->d = bn_malloc(sizeof(uint64_t) * (fw + 1));
    s->s = bn_malloc(sizeof(int32_t) * K);
    s->vk = bn_malloc(sizeof(int32_t) * K);
}

static void chunk_scratch_free(chunk_scratch *s) {
    free(s->act[0]), free(s->act[1]), free(s->acc), free(s->pooled), free(s->xb);
    free(s->x), free(s->v), free(s->d), free(s->s), free(s->vk);
}

/* First-layer conv byte rows xb (in_w, k4) of output row y, (ky, kx, c) order. */
static void chunk_im2col_u8(uint8_t *xb, const uint8_t *img, const packed_layer *L, int y) {
    int H = L->in_h, W = L->in_w, C = L->in_c;
    memset(xb, 0, (size_t)W * L->k4);
    for (int x = 0; x < W; x++)
        for (int t = 0; t < 9; t++) {
            int iy = y + t / 3 - 1, ix = x + t % 3 - 1;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
            memcpy(xb + (size_t)x * L->k4 + t * C, img + ((size_t)iy * W + ix) * C, (size_t)C);
        }
}

/* Chunked accumulators of all neurons at one position from the flat input in
   s->x / s->v: acc (np). */
static void chunk_position(const chunk_plan *cp, int l, chunk_scratch *s, int32_t *acc, int thread, uint64_t site) {
    const packed_layer *L = &cp->p->layers[l];
    const chunk_layer *C = &cp->layers[l];
    chunk_fn fn = cp->cfg.fn[l];
    void *user = cp->cfg.user[l];
    chunk_vcount(C, s->v, s->vk);
    for (int j = 0; j < L->out_c; j++) {
        chunk_sums_v(C, j, s->x, s->v, s->vk, s->d, s->s);
        if (fn) {
            acc[j] = fn(user, l, L, j, s->s, C->len, C->K, thread, site);
        } else {
            int32_t a = 0;
            for (int k = 0; k < C->K; k++) a += s->s[k];
            acc[j] = a;
        }
    }
    for (int j = L->out_c; j < L->np; j++) acc[j] = 0;
}

/* One image; writes the classifier accumulators acc_out (classes). */
static void chunk_image(const chunk_plan *cp, const packed_kernels *k, chunk_scratch *s, const uint8_t *img,
                        int32_t *acc_out, int thread, uint64_t image) {
    const packed_net *p = cp->p;
    size_t img_bytes = (size_t)p->in_h * p->in_w * p->in_c;
    int cur = 0;
    for (int l = 0; l < p->n_layers; l++) {
        const packed_layer *L = &p->layers[l];
        const chunk_layer *C = &cp->layers[l];
        uint64_t *in = s->act[cur], *out = s->act[cur ^ 1];
        int32_t *acc = s->acc;
        int P = 1;
        if (L->kind == NET_CONV) {
            int H = L->in_h, W = L->in_w;
            size_t row = (size_t)W * L->np;
            if (C->n) {
                for (int y = 0; y < H; y++)
                    for (int x = 0; x < W; x++) {
                        memset(s->x, 0, sizeof(uint64_t) * (size_t)C->fw);
                        memset(s->v, 0, sizeof(uint64_t) * (size_t)C->fw);
                        for (int t = 0; t < 9; t++) {
                            int iy = y + t / 3 - 1, ix = x + t % 3 - 1;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            chunk_copy_bits(s->x, t * L->in_c, in + ((size_t)iy * W + ix) * L->in_cw, L->in_c);
                            chunk_set_bits(s->v, t * L->in_c, L->in_c);
                        }
                        chunk_position(cp, l, s, s->acc + (size_t)y * row + (size_t)x * L->np, thread, image << 24 | (uint64_t)(y * W + x));
                    }
            } else if (L->first) {
                for (int y = 0; y < H; y++) {
                    chunk_im2col_u8(s->xb, img, L, y);
                    k->u8dense(s->acc + (size_t)y * row, s->xb, L->k4, L, W);
                }
            } else {
                k->bconv(s->acc, in, L, 0, H);
            }
            if (L->pool) {
                for (int oy = 0; oy < L->out_h; oy++)
                    k->pool2(s->pooled + (size_t)oy * L->out_w * L->np, s->acc + (size_t)2 * oy * row,
                             s->acc + (size_t)(2 * oy + 1) * row, W, L->np);
                acc = s->pooled;
            }
            P = L->out_h * L->out_w;
        } else if (C->n) {
            chunk_flatten(s->x, in, L->in_h * L->in_w, L->in_c, L->in_cw, C->fw);
            memset(s->v, 0, sizeof(uint64_t) * (size_t)C->fw);
            chunk_set_bits(s->v, 0, L->fan_in);
            chunk_position(cp, l, s, s->acc, thread, image << 24);
        } else if (L->first) {
            memcpy(s->xb, img, img_bytes);
            memset(s->xb + img_bytes, 0, (size_t)L->k4 - img_bytes);
            k->u8dense(s->acc, s->xb, L->k4, L, 1);
        } else {
            k->bdense(s->acc, in, L, 1);
        }
        if (L->last) {
            memcpy(acc_out, acc, sizeof(int32_t) * (size_t)p->classes);
            return;
        }
        k->thresh(out, L->out_cw, acc, L, P);
        cur ^= 1;
    }
}

void chunk_logits(const chunk_plan *cp, float *logits, const uint8_t *x, int B, int threads) {
    const packed_net *p = cp->p;
    const packed_kernels *k = packed_kernels_active();
    size_t img_bytes = (size_t)p->in_h * p->in_w * p->in_c;
    int nt = chunk_threads(threads);
#pragma omp parallel num_threads(nt)
    {
        chunk_scratch s;
        chunk_scratch_init(&s, cp);
        int32_t *z = bn_malloc(sizeof(int32_t) * (size_t)p->classes);
        int t = omp_get_thread_num();
#pragma omp for schedule(dynamic, 16)
        for (int i = 0; i < B; i++) {
            chunk_image(cp, k, &s, x + (size_t)i * img_bytes, z, t, (uint64_t)i);
            for (int c = 0; c < p->classes; c++) logits[(size_t)i * p->classes + c] = p->scale * (float)z[c];
        }
        free(z);
        chunk_scratch_free(&s);
    }
}

double chunk_accuracy(const chunk_plan *cp, const uint8_t *x, const uint8_t *labels, int B, int threads) {
    int classes = cp->p->classes;
    float *logits = bn_malloc(sizeof(float) * ((size_t)B * classes + 1));
    chunk_logits(cp, logits, x, B, threads);
    int64_t correct = 0;
    for (int i = 0; i < B; i++) {
        const float *z = logits + (size_t)i * classes;
        int best = 0;
        for (int c = 1; c < classes; c++)
            if (z[c] > z[best]) best = c;
        correct += best == labels[i];
    }
    free(logits);
    return B > 0 ? (double)correct / B : 0.0;
}
