/*
** The hooked forward pass of one image through a packed network
** (engine/trace.h).
*/
#include "engine/trace.h"

#include <stdlib.h>
#include <string.h>

#include "engine/err.h"

void trace_scratch_init(trace_scratch *s, const packed_net *p) {
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

void trace_scratch_free(trace_scratch *s) {
    free(s->act[0]), free(s->act[1]), free(s->acc), free(s->pooled), free(s->xb);
    memset(s, 0, sizeof *s);
}

/* First-layer conv: byte rows xb (in_w, k4) of output row y in (ky, kx, c)
   order, zeros outside the image and in the padding. */
static void trace_im2col_u8(uint8_t *xb, const uint8_t *img, const packed_layer *L, int y) {
    int H = L->in_h, W = L->in_w, C = L->in_c;
    memset(xb, 0, (size_t)W * L->k4);
    for (int x = 0; x < W; x++)
        for (int t = 0; t < 9; t++) {
            int iy = y + t / 3 - 1, ix = x + t % 3 - 1;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
            memcpy(xb + (size_t)x * L->k4 + t * C, img + ((size_t)iy * W + ix) * C, (size_t)C);
        }
}

void trace_forward(const packed_net *p, trace_scratch *s, const uint8_t *img, const trace_hooks *h,
                   int32_t *acc_out) {
    static const trace_hooks none = {NULL, NULL, NULL, NULL};
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
                    trace_im2col_u8(s->xb, img, L, y);
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
