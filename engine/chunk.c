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
#include "engine/trace.h"

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
    C->out_c = out_c;
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
    if (n >= CHUNK_SEG_MIN) {
        C->ws = bn_malloc(sizeof(uint64_t) * ((size_t)out_c * C->nseg + 1));
        for (int j = 0; j < out_c; j++)
            for (int g = 0; g < C->nseg; g++)
                C->ws[(size_t)j * C->nseg + g] = C->wf[(size_t)j * C->fw + C->seg_word[g]] & C->seg_mask[g];
    }
    return BN_OK;
}

void chunk_layer_free(chunk_layer *C) {
    free(C->wf), free(C->seg_word), free(C->seg_mask), free(C->seg_chunk), free(C->len), free(C->ws);
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

static void *chunk_grow(void *p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return p;
    free(p);
    *cap = need;
    return bn_calloc(need, elem);
}

void chunk_work_reserve(chunk_work *w, const chunk_layer *C) {
    size_t fw = (size_t)C->fw + 1, g = (size_t)C->nseg + 1, k = (size_t)C->K + 1;
    size_t m = C->ws && C->nseg != C->K ? (size_t)C->out_c * C->nseg + 1 : 1;
    if (fw > w->cap_w) {
        size_t c = w->cap_w;
        w->x = chunk_grow(w->x, &c, fw, sizeof(uint64_t));
        c = w->cap_w;
        w->v = chunk_grow(w->v, &c, fw, sizeof(uint64_t));
        w->d = chunk_grow(w->d, &w->cap_w, fw, sizeof(uint64_t));
    }
    if (g > w->cap_g) {
        size_t c = w->cap_g;
        w->xs = chunk_grow(w->xs, &c, g, sizeof(uint64_t));
        c = w->cap_g;
        w->vs = chunk_grow(w->vs, &c, g, sizeof(uint64_t));
        w->zero = chunk_grow(w->zero, &w->cap_g, g, sizeof(int32_t));
    }
    w->vk = chunk_grow(w->vk, &w->cap_k, k, sizeof(int32_t));
    w->m = chunk_grow(w->m, &w->cap_m, m, sizeof(int32_t));
    if (!w->kern) w->kern = chunk_count_active();
}

void chunk_work_free(chunk_work *w) {
    free(w->x), free(w->v), free(w->d), free(w->xs), free(w->vs), free(w->vk), free(w->zero), free(w->m);
    memset(w, 0, sizeof *w);
}

void chunk_sums_all(const chunk_layer *C, chunk_work *w, int32_t *s) {
    int K = C->K, G = C->nseg;
    if (!C->ws) { /* small chunks: per neuron, per word */
        chunk_vcount(C, w->v, w->vk);
        for (int j = 0; j < C->out_c; j++) chunk_sums_v(C, j, w->x, w->v, w->vk, w->d, s + (size_t)j * K);
        return;
    }
    memset(w->vk, 0, sizeof(int32_t) * (size_t)K);
    for (int g = 0; g < G; g++) {
        w->xs[g] = w->x[C->seg_word[g]];
        w->vs[g] = w->v[C->seg_word[g]] & C->seg_mask[g];
        w->vk[C->seg_chunk[g]] += __builtin_popcountll(w->vs[g]);
    }
    if (G == K) { /* one segment per chunk: the kernel writes the sums */
        w->kern(s, C->ws, w->xs, w->vs, w->vk, G, C->out_c);
        return;
    }
    w->kern(w->m, C->ws, w->xs, w->vs, w->zero, G, C->out_c);
    for (int j = 0; j < C->out_c; j++) {
        int32_t *sj = s + (size_t)j * K;
        const int32_t *mj = w->m + (size_t)j * G;
        memcpy(sj, w->vk, sizeof(int32_t) * (size_t)K);
        for (int g = 0; g < G; g++) sj[C->seg_chunk[g]] += mj[g];
    }
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

/* ---- Driver (on trace_forward, engine/trace.h) ---- */

/* Per-thread state of the driver: the layer hook's user. */
typedef struct {
    const chunk_plan *cp;
    chunk_work w;     /* chunk_sums_all buffers */
    int32_t *s;       /* (max out_c * K) chunk sums of one position */
    int thread;       /* OpenMP thread index */
    uint64_t image;   /* current image number */
} chunk_thread;

/* Chunked accumulators of all neurons at one position from the flat input in
   t->w.x / t->w.v: acc (np). */
static void chunk_position(chunk_thread *t, int l, const packed_layer *L, int32_t *acc, uint64_t site) {
    const chunk_layer *C = &t->cp->layers[l];
    chunk_fn fn = t->cp->cfg.fn[l];
    chunk_pos_fn pos = t->cp->cfg.pos[l];
    void *user = t->cp->cfg.user[l];
    int K = C->K;
    chunk_sums_all(C, &t->w, t->s);
    if (pos) pos(user, l, L, t->s, C->len, K, acc, t->thread, site);
    for (int j = 0; j < L->out_c && !pos; j++) {
        const int32_t *sj = t->s + (size_t)j * K;
        if (fn) {
            acc[j] = fn(user, l, L, j, sj, C->len, K, t->thread, site);
        } else {
            int32_t a = 0;
            for (int k = 0; k < K; k++) a += sj[k];
            acc[j] = a;
        }
    }
    for (int j = L->out_c; j < L->np; j++) acc[j] = 0;
}

void chunk_gather(const chunk_layer *C, const packed_layer *L, const uint64_t *in, int q, chunk_work *w) {
    uint64_t *x = w->x, *v = w->v;
    memset(v, 0, sizeof(uint64_t) * (size_t)C->fw);
    if (L->kind != NET_CONV) {
        chunk_flatten(x, in, L->in_h * L->in_w, L->in_c, L->in_cw, C->fw);
        chunk_set_bits(v, 0, L->fan_in);
        return;
    }
    int H = L->in_h, W = L->in_w, y = q / W, xx = q % W;
    memset(x, 0, sizeof(uint64_t) * (size_t)C->fw);
    for (int tap = 0; tap < 9; tap++) {
        int iy = y + tap / 3 - 1, ix = xx + tap % 3 - 1;
        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
        chunk_copy_bits(x, tap * L->in_c, in + ((size_t)iy * W + ix) * L->in_cw, L->in_c);
        chunk_set_bits(v, tap * L->in_c, L->in_c);
    }
}

/* trace_layer_hook: the chunked accumulators of layer l (before pooling). */
static int chunk_layer_hook(void *user, int l, const packed_layer *L, const uint64_t *in, int32_t *acc) {
    chunk_thread *t = user;
    const chunk_layer *C = &t->cp->layers[l];
    if (!C->n) return 0;
    int Q = L->kind == NET_CONV ? L->in_h * L->in_w : 1;
    for (int q = 0; q < Q; q++) {
        chunk_gather(C, L, in, q, &t->w);
        chunk_position(t, l, L, acc + (size_t)q * L->np, t->image << 24 | (uint64_t)q);
    }
    return 1;
}

void chunk_logits(const chunk_plan *cp, float *logits, const uint8_t *x, int B, int threads) {
    const packed_net *p = cp->p;
    size_t img_bytes = (size_t)p->in_h * p->in_w * p->in_c, smax = 1;
    for (int l = 0; l < p->n_layers; l++)
        if (cp->layers[l].n && (size_t)cp->layers[l].out_c * cp->layers[l].K > smax)
            smax = (size_t)cp->layers[l].out_c * cp->layers[l].K;
    int nt = chunk_threads(threads);
#pragma omp parallel num_threads(nt)
    {
        chunk_thread t;
        memset(&t, 0, sizeof t);
        t.cp = cp, t.thread = omp_get_thread_num();
        for (int l = 0; l < p->n_layers; l++)
            if (cp->layers[l].n) chunk_work_reserve(&t.w, &cp->layers[l]);
        t.s = bn_malloc(sizeof(int32_t) * smax);
        trace_scratch s;
        trace_scratch_init(&s, p);
        trace_hooks h = {chunk_layer_hook, NULL, NULL, &t};
        int32_t *z = bn_malloc(sizeof(int32_t) * (size_t)p->classes);
#pragma omp for schedule(dynamic, 16)
        for (int i = 0; i < B; i++) {
            t.image = (uint64_t)i;
            trace_forward(p, &s, x + (size_t)i * img_bytes, &h, z);
            for (int c = 0; c < p->classes; c++) logits[(size_t)i * p->classes + c] = p->scale * (float)z[c];
        }
        free(z), free(t.s);
        trace_scratch_free(&s);
        chunk_work_free(&t.w);
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
