/*
** The neuron-level bit-error tolerance metric and the output margin
** (engine/margin.h), and the one-image traced forward pass they run on.
*/
#include "engine/margin.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "engine/err.h"

/* ---- Traced forward pass ---- */

void margin_scratch_init(margin_scratch *s, const packed_net *p) {
    size_t aw = 1, acc = 1, pooled = 1, xb = 4;
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
    }
    s->act_words = aw;
    s->act[0] = bn_aligned_alloc(sizeof(uint64_t) * aw);
    s->act[1] = bn_aligned_alloc(sizeof(uint64_t) * aw);
    s->acc = bn_aligned_alloc(sizeof(int32_t) * acc);
    s->pooled = bn_aligned_alloc(sizeof(int32_t) * pooled);
    s->xb = bn_aligned_alloc(xb);
}

void margin_scratch_free(margin_scratch *s) {
    free(s->act[0]), free(s->act[1]), free(s->acc), free(s->pooled), free(s->xb);
    memset(s, 0, sizeof *s);
}

/* First-layer conv: byte rows xb (in_w, k4) of output row y in (ky, kx, c)
   order, zeros outside the image and in the padding. */
static void margin_im2col_u8(uint8_t *xb, const uint8_t *img, const packed_layer *L, int y) {
    int H = L->in_h, W = L->in_w, C = L->in_c;
    memset(xb, 0, (size_t)W * L->k4);
    for (int x = 0; x < W; x++)
        for (int t = 0; t < 9; t++) {
            int iy = y + t / 3 - 1, ix = x + t % 3 - 1;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
            memcpy(xb + (size_t)x * L->k4 + t * C, img + ((size_t)iy * W + ix) * C, (size_t)C);
        }
}

void margin_trace(const packed_net *p, margin_scratch *s, const uint8_t *img, margin_acc_hook ah,
                  margin_bits_hook bh, void *user, int32_t *acc_out) {
    margin_hooks h = {NULL, ah, bh, user};
    margin_trace_hooks(p, s, img, &h, acc_out);
}

void margin_trace_hooks(const packed_net *p, margin_scratch *s, const uint8_t *img, const margin_hooks *h,
                        int32_t *acc_out) {
    static const margin_hooks none = {NULL, NULL, NULL, NULL};
    if (!h) h = &none;
    const packed_kernels *k = packed_kernels_active();
    size_t img_bytes = (size_t)p->in_h * p->in_w * p->in_c;
    int cur = 0;
    for (int l = 0; l < p->n_layers; l++) {
        const packed_layer *L = &p->layers[l];
        uint64_t *in = s->act[cur], *out = s->act[cur ^ 1];
        int32_t *acc = s->acc; /* (P, np) after pooling */
        int P = 1, done = !L->first && h->layer && h->layer(h->user, l, L, in, s->acc);
        if (L->kind == NET_CONV) {
            int W = L->in_w;
            size_t row = (size_t)W * L->np;
            if (!done && L->first) {
                for (int y = 0; y < L->in_h; y++) {
                    margin_im2col_u8(s->xb, img, L, y);
                    k->u8dense(s->acc + (size_t)y * row, s->xb, L->k4, L, W);
                }
            } else if (!done) {
                k->bconv(s->acc, in, L, 0, L->in_h);
            }
            if (L->pool) {
                for (int oy = 0; oy < L->out_h; oy++)
                    k->pool2(s->pooled + (size_t)oy * L->out_w * L->np, s->acc + (size_t)2 * oy * row,
                             s->acc + (size_t)(2 * oy + 1) * row, W, L->np);
                acc = s->pooled;
            }
            P = L->out_h * L->out_w;
        } else if (L->first) {
            memcpy(s->xb, img, img_bytes);
            memset(s->xb + img_bytes, 0, (size_t)L->k4 - img_bytes);
            k->u8dense(s->acc, s->xb, L->k4, L, 1);
        } else if (!done) {
            k->bdense(s->acc, in, L, 1);
        }
        if (L->last) {
            memcpy(acc_out, acc, sizeof(int32_t) * (size_t)p->classes);
            return;
        }
        if (h->acc) h->acc(h->user, l, L, acc, P);
        k->thresh(out, L->out_cw, acc, L, P);
        if (h->bits) h->bits(h->user, l, L, out, P);
        cur ^= 1;
    }
}

/* ---- The metric ---- */

/* Per-thread integer sums of margin_measure_packed. */
typedef struct {
    int64_t eta[NET_MAX_LAYERS]; /* sum over images and neurons of the neuron tolerance */
    int64_t gap;                 /* sum over images of acc_y - max_{c!=y} acc_c (times sign of scale) */
    int64_t correct;             /* correctly classified images */
} margin_sums;

static void margin_acc_sum(void *user, int l, const packed_layer *L, int32_t *acc, int P) {
    margin_sums *m = user;
    int64_t sum = 0;
    for (int n = 0; n < L->out_c; n++) {
        int32_t T = L->thr[n], best = INT32_MAX;
        for (int q = 0; q < P; q++) {
            int32_t e = margin_local(L, acc[(size_t)q * L->np + n], T);
            if (e < best) best = e;
        }
        sum += best;
    }
    m->eta[l] += sum;
}

int margin_measure_packed(const packed_net *p, const dataset *d, int threads, margin_result *out) {
    memset(out, 0, sizeof *out);
    if (d->h != p->in_h || d->w != p->in_w || d->c != p->in_c)
        return bn_error(BN_EARG, "margin: data images are %dx%dx%d, the network expects %dx%dx%d", d->h, d->w,
                        d->c, p->in_h, p->in_w, p->in_c);
    int nt = threads > 0 ? threads : omp_get_max_threads();
    margin_sums *part = bn_calloc((size_t)nt, sizeof *part);
    size_t img_bytes = (size_t)d->h * d->w * d->c;
    int sgn = p->scale < 0.0f ? -1 : 1;
#pragma omp parallel num_threads(nt)
    {
        margin_sums *m = &part[omp_get_thread_num()];
        margin_scratch s;
        margin_scratch_init(&s, p);
        int32_t *z = bn_malloc(sizeof(int32_t) * (size_t)p->classes);
#pragma omp for schedule(dynamic, 16)
        for (int i = 0; i < d->n; i++) {
            margin_trace(p, &s, d->pixels + (size_t)i * img_bytes, margin_acc_sum, NULL, m, z);
            int y = d->labels[i], best = -1;
            int64_t other = INT64_MIN;
            for (int c = 0; c < p->classes; c++) {
                if (c != y && (int64_t)sgn * z[c] > other) other = (int64_t)sgn * z[c];
                if (best < 0 || (float)z[c] * p->scale > (float)z[best] * p->scale) best = c;
            }
            m->gap += (int64_t)sgn * z[y] - other;
            m->correct += best == y;
        }
        free(z);
        margin_scratch_free(&s);
    }
    margin_sums tot = {0};
    for (int t = 0; t < nt; t++) {
        for (int l = 0; l < NET_MAX_LAYERS; l++) tot.eta[l] += part[t].eta[l];
        tot.gap += part[t].gap, tot.correct += part[t].correct;
    }
    free(part);
    out->n_images = d->n;
    out->n_hidden = p->n_layers - 1;
    double n = d->n > 0 ? d->n : 1;
    int64_t all = 0, neurons = 0;
    for (int l = 0; l < out->n_hidden; l++) {
        out->layer[l] = (double)tot.eta[l] / (n * p->layers[l].out_c);
        all += tot.eta[l], neurons += p->layers[l].out_c;
    }
    out->mean = neurons ? (double)all / (n * (double)neurons) : 0.0;
    out->output = (double)tot.gap / (2.0 * n); /* (s*gap_acc) / (2|s|) = gap_acc/2 in sign-adjusted units */
    out->accuracy = (double)tot.correct / n;
    return BN_OK;
}

int margin_measure(const net *n, const dataset *d, int threads, margin_result *out) {
    packed_net p;
    int rc = packed_from_net(&p, n);
    if (rc) return rc;
    rc = margin_measure_packed(&p, d, threads, out);
    packed_free(&p);
    return rc;
}
