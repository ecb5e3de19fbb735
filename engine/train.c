/*
** The training loop: forward with binarized (optionally perturbed) weights,
** loss, backward with straight-through estimators, Adam.
**
** The forward pass of one hidden layer l, for a batch of B images:
**
**   x (rows_in, in_c)  --im2col (conv)-->  col (rows, fan_in)
**   wb = sign(w), then the weights hooks    (out_c, fan_in)
**   z (rows, out_c)    = col . wb^T, then the accumulator hooks
**   p (rows_out, out_c) = maxpool2(z)        (conv with pool; else p = z)
**   y = BN_batch(p * in_scale)               in_scale = 1/255 for the first layer
**   a = sign(y), then the activation hooks   the next layer's x
**
** The classifier computes z = x . wb^T (and its accumulator hooks) and
** logits = s * z. The hooks are the run's perturbations (engine/perturb.h:
** flip training, XNOR product errors, activation flips, LTA-aware training);
** the backward pass uses the pre-sign values y and the unperturbed
** accumulators' gradient (straight-through), and a weights hook's backward
** where it has one.
**
** Clean first-layer statistics (recipe flip_bn0 clean, with flip training):
** the first layer's batch norm normalises the flipped accumulators p with
** the statistics of c, the accumulators of the unflipped weights sign(w)
** (same pooling, same 1/255 scale): y = BN_stats(c)(p), batchnorm_forward_
** train_from. The loss then sees the systematic shift the flips cause instead
** of having it normalised away. The gradient reaches w through both p (as
** usual, straight through the flips) and c (through the mean and variance;
** never through the flips, also under naive flip training).
*/
#include "engine/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/bop.h"
#include "engine/dmath.h"
#include "engine/err.h"
#include "engine/layers.h"
#include "engine/packed.h"
#include "engine/margin.h"
#include "engine/optim.h"
#include "engine/parallel.h"
#include "engine/perturb.h"

/* Forward caches and gradient scratch of one layer for one batch. */
typedef struct {
    int rows;        /* rows of z: B * in_h * in_w (conv) or B (dense) */
    int rows_out;    /* rows after pooling: B * out_h * out_w */
    float *wb;       /* (out_c, fan_in) binarized, possibly flipped weights */
    uint8_t *flipped;/* (out_c, fan_in) 1 where a flip was applied (flip training) */
    int fused;       /* 1: first-layer conv + pool computed by conv3x3_pool2_* (no col, no z) */
    float *wt;       /* (fan_in, out_c) transposed weights (fused only) */
    float *col;      /* (rows, fan_in) im2col of the input (conv only, not fused) */
    int binary;      /* 1: +-1 inputs, so the forward runs on the packed XNOR-popcount kernels */
    packed_layer pk; /* the binarized weights as bits (binary only) */
    uint64_t *xbits; /* (B * in_h * in_w, in_cw) the input signs as bits (binary only) */
    int32_t *iacc;   /* (rows, pk.np) integer accumulators (binary only) */
    float *z;        /* (rows, out_c) accumulators */
    float *p;        /* (rows_out, out_c) pooled accumulators (pool only) */
    int32_t *idx;    /* (rows_out, out_c) argmax of the pool */
    float *xhat;     /* (rows_out, out_c) normalised values (hidden only) */
    float *y;        /* (rows_out, out_c) pre-sign values (hidden only) */
    float *a;        /* (rows_out, out_c) sign outputs (hidden only) */
    float *mean, *invstd; /* (out_c) batch statistics */
    float *clean;    /* (rows_out, out_c) flip_bn0 clean (first layer): the unflipped weights' scaled
                        accumulators, the source of the batch statistics; their gradient in backward */
    float *wc;       /* (out_c, fan_in) sign(w) without flips (flip_bn0 clean) */
    float *zc;       /* (rows, out_c) their accumulators before pooling (flip_bn0 clean, pool, not fused) */
    int32_t *idxc;   /* (rows_out, out_c) argmax of their pool (flip_bn0 clean, pool) */
} train_layer;

typedef struct {
    net *n;
    int B;                        /* allocated batch size */
    train_layer tl[NET_MAX_LAYERS];
    float *x0;                    /* (B, H, W, C) pixels of the batch as floats */
    uint8_t *labels;              /* (B) */
    float *logits, *dlogits;      /* (B, classes) */
    float *grads;                 /* (n_params) same layout as n->params */
    float *adam_m, *adam_v;       /* (n_params) Adam moments */
    float *d_a, *d_b, *d_z;       /* gradient scratch, each the largest activation */
    float *d_col;                 /* (max rows*fan_in) */
    int use_bop;                  /* 1: Bop on the binary weights, Adam on the rest */
    bop_state bop;                /* Bop momentum (use_bop only) */
} train_state;

static float *grad_of(train_state *s, const float *param) { return s->grads + (param - s->n->params); }

/* 1: the first layer's batch norm takes the unflipped products' statistics. */
static int train_bn0_clean(const train_recipe *r) { return r->flip != FLIP_NONE && r->flip_bn0 == BN0_CLEAN; }

/* Bytes of the flip_bn0 clean buffers of the first layer L (train_bn0_alloc). */
static size_t train_bn0_bytes(const net_layer *L, size_t B) {
    size_t rows = L->kind == NET_CONV ? B * L->in_h * L->in_w : B, rows_out = B * L->out_h * L->out_w;
    int fused = L->kind == NET_CONV && L->pool && L->in_c <= 4;
    size_t n = sizeof(float) * (rows_out * L->out_c + (size_t)L->out_c * L->fan_in);
    if (L->pool) n += sizeof(int32_t) * rows_out * L->out_c + (fused ? 0 : sizeof(float) * rows * L->out_c);
    return n;
}

/* Allocates the first layer's flip_bn0 clean buffers (counted by train_bn0_bytes). */
static void train_bn0_alloc(train_layer *T, const net_layer *L) {
    T->clean = bn_malloc(sizeof(float) * (size_t)T->rows_out * L->out_c);
    T->wc = bn_malloc(sizeof(float) * (size_t)L->out_c * L->fan_in);
    if (L->pool) {
        T->idxc = bn_malloc(sizeof(int32_t) * (size_t)T->rows_out * L->out_c);
        if (!T->fused) T->zc = bn_malloc(sizeof(float) * (size_t)T->rows * L->out_c);
    }
}

/* Allocates the training buffers of n for batches of B (train_memory_bytes
   counts them: change both together). */
static void train_state_init(train_state *s, net *n, int B) {
    memset(s, 0, sizeof *s);
    s->n = n, s->B = B;
    size_t max_act = (size_t)B * n->in_h * n->in_w * n->in_c, max_col = 1;
    for (int l = 0; l < n->n_layers; l++) {
        net_layer *L = &n->layers[l];
        train_layer *T = &s->tl[l];
        T->rows = L->kind == NET_CONV ? B * L->in_h * L->in_w : B;
        T->rows_out = B * L->out_h * L->out_w;
        size_t nw = (size_t)L->out_c * L->fan_in;
        T->wb = bn_malloc(sizeof(float) * nw);
        T->flipped = bn_calloc(nw, 1);
        T->fused = L->first && L->kind == NET_CONV && L->pool && L->in_c <= 4;
        T->binary = !L->first;
        if (T->binary) {
            BN_ASSERT(packed_layer_init(&T->pk, L) == BN_OK); /* fan-in < 2^24: checked by net_create */
            T->xbits = bn_aligned_alloc(sizeof(uint64_t) * (size_t)B * L->in_h * L->in_w * T->pk.in_cw);
            T->iacc = bn_aligned_alloc(sizeof(int32_t) * (size_t)T->rows * T->pk.np);
        }
        if (T->fused) {
            T->wt = bn_malloc(sizeof(float) * nw);
        } else {
            if (L->kind == NET_CONV) {
                T->col = bn_malloc(sizeof(float) * (size_t)T->rows * L->fan_in);
                if ((size_t)T->rows * L->fan_in > max_col) max_col = (size_t)T->rows * L->fan_in;
            }
            T->z = bn_malloc(sizeof(float) * (size_t)T->rows * L->out_c);
        }
        if (L->pool) {
            T->p = bn_malloc(sizeof(float) * (size_t)T->rows_out * L->out_c);
            T->idx = bn_malloc(sizeof(int32_t) * (size_t)T->rows_out * L->out_c);
        }
        if (!L->last) {
            size_t no = (size_t)T->rows_out * L->out_c;
            T->xhat = bn_malloc(sizeof(float) * no);
            T->y = bn_malloc(sizeof(float) * no);
            T->a = bn_malloc(sizeof(float) * no);
            T->mean = bn_malloc(sizeof(float) * (size_t)L->out_c);
            T->invstd = bn_malloc(sizeof(float) * (size_t)L->out_c);
        }
        size_t zs = (size_t)T->rows * L->out_c;
        if (zs > max_act) max_act = zs;
        size_t xs = (size_t)T->rows * (L->kind == NET_CONV ? L->in_c : L->fan_in);
        if (xs > max_act) max_act = xs;
    }
    s->x0 = bn_malloc(sizeof(float) * (size_t)B * n->in_h * n->in_w * n->in_c);
    s->labels = bn_malloc((size_t)B);
    s->logits = bn_malloc(sizeof(float) * (size_t)B * n->classes);
    s->dlogits = bn_malloc(sizeof(float) * (size_t)B * n->classes);
    s->grads = bn_calloc(n->n_params, sizeof(float));
    s->adam_m = bn_calloc(n->n_params, sizeof(float));
    s->adam_v = bn_calloc(n->n_params, sizeof(float));
    s->d_a = bn_malloc(sizeof(float) * max_act);
    s->d_b = bn_malloc(sizeof(float) * max_act);
    s->d_z = bn_malloc(sizeof(float) * max_act);
    s->d_col = bn_malloc(sizeof(float) * max_col);
}

/* Bytes packed_layer_init allocates for the hidden layer L (w, wvalid, wi). */
static size_t train_packed_bytes(const net_layer *L) {
    size_t in_cw = ((size_t)L->in_c + 63) / 64, np = ((size_t)L->out_c + 15) / 16 * 16;
    size_t kw = L->kind == NET_CONV ? 9 * in_cw : (size_t)L->in_h * L->in_w * in_cw;
    return sizeof(uint64_t) * kw * ((size_t)L->out_c + 1 + np);
}

/* Mirrors train_state_init (keep the two together). */
size_t train_memory_bytes(const net *n, const train_recipe *r) {
    size_t B = (size_t)r->batch, f = sizeof(float);
    size_t total = f * (n->n_params + n->n_stats);
    size_t max_act = B * n->in_h * n->in_w * n->in_c, max_col = 1, n_weights = 0;
    for (int l = 0; l < n->n_layers; l++) {
        const net_layer *L = &n->layers[l];
        size_t rows = L->kind == NET_CONV ? B * L->in_h * L->in_w : B, rows_out = B * L->out_h * L->out_w;
        size_t nw = (size_t)L->out_c * L->fan_in, out_c = (size_t)L->out_c;
        n_weights += nw;
        total += f * nw + nw; /* wb, flipped */
        if (!L->first) {
            size_t in_cw = ((size_t)L->in_c + 63) / 64, np = (out_c + 15) / 16 * 16;
            total += train_packed_bytes(L) + sizeof(uint64_t) * B * L->in_h * L->in_w * in_cw +
                     sizeof(int32_t) * rows * np;
        }
        if (L->first && L->kind == NET_CONV && L->pool && L->in_c <= 4) {
            total += f * nw; /* wt */
        } else {
            if (L->kind == NET_CONV) {
                total += f * rows * L->fan_in;
                if (rows * L->fan_in > max_col) max_col = rows * L->fan_in;
            }
            total += f * rows * out_c;
        }
        if (L->pool) total += (f + sizeof(int32_t)) * rows_out * out_c;
        if (!L->last) total += 3 * f * rows_out * out_c + 2 * f * out_c;
        if (rows * out_c > max_act) max_act = rows * out_c;
        size_t xs = rows * (L->kind == NET_CONV ? (size_t)L->in_c : (size_t)L->fan_in);
        if (xs > max_act) max_act = xs;
    }
    total += f * B * n->in_h * n->in_w * n->in_c + B + 2 * f * B * n->classes; /* x0, labels, logits */
    total += 3 * f * n->n_params + 3 * f * max_act + f * max_col;       /* grads, Adam, gradient scratch */
    if (r->optimizer == OPT_BOP) total += f * n_weights;               /* Bop momentum */
    if (train_bn0_clean(r)) total += train_bn0_bytes(&n->layers[0], B); /* clean first-layer statistics */
    return total + net_eval_bytes(n, 500);                              /* a validation pass (train_accuracy) */
}

static void train_state_free(train_state *s) {
    for (int l = 0; l < s->n->n_layers; l++) {
        train_layer *T = &s->tl[l];
        if (T->binary) packed_layer_free(&T->pk);
        free(T->xbits), free(T->iacc);
        free(T->wb), free(T->flipped), free(T->wt), free(T->col), free(T->z), free(T->p), free(T->idx);
        free(T->xhat), free(T->y), free(T->a), free(T->mean), free(T->invstd);
        free(T->clean), free(T->wc), free(T->zc), free(T->idxc);
    }
    free(s->x0), free(s->labels), free(s->logits), free(s->dlogits), free(s->grads);
    free(s->adam_m), free(s->adam_v), free(s->d_a), free(s->d_b), free(s->d_z), free(s->d_col);
}

/* Binarizes layer l's weights and applies the weights hooks of this step. */
static void train_binarize(train_state *s, int l, const perturb_set *ps, uint64_t step) {
    net_layer *L = &s->n->layers[l];
    train_layer *T = &s->tl[l];
    int64_t nw = (int64_t)L->out_c * L->fan_in;
    for (int64_t i = 0; i < nw; i++) T->wb[i] = net_sign(L->w[i]);
    perturb_site site = {l, L, 0, 0, step, NULL, NULL};
    for (int k = 0; ps && k < ps->n; k++)
        if (ps->h[k].weights) ps->h[k].weights(&ps->h[k], &site, T->wb, T->flipped);
}

/* z (rows, out_c) = x . wb^T for a layer with +-1 inputs x (B, in_h, in_w,
   in_c), on the packed kernels: the same exact integers as the float GEMM. */
static void train_binary_forward(train_layer *T, const net_layer *L, const float *x, int B) {
    const packed_kernels *k = packed_kernels_active();
    packed_layer *P = &T->pk;
    int pix = L->in_h * L->in_w, np = P->np;
    packed_pack_signs(T->xbits, x, (int64_t)B * pix, L->in_c);
    packed_layer_set_weights(P, T->wb);
    if (L->kind == NET_CONV) {
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++)
            k->bconv(T->iacc + (size_t)b * pix * np, T->xbits + (size_t)b * pix * P->in_cw, P, 0, L->in_h);
    } else {
        int blocks = (B + PACKED_BLOCK - 1) / PACKED_BLOCK;
#pragma omp parallel for schedule(static)
        for (int q = 0; q < blocks; q++) {
            int r0 = q * PACKED_BLOCK, R = B - r0 < PACKED_BLOCK ? B - r0 : PACKED_BLOCK;
            k->bdense(T->iacc + (size_t)r0 * np, T->xbits + (size_t)r0 * P->kw, P, R);
        }
    }
    int64_t rows = L->kind == NET_CONV ? (int64_t)B * pix : B;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < rows; i++)
        for (int c = 0; c < L->out_c; c++) T->z[i * L->out_c + c] = (float)T->iacc[i * np + c];
}

/* flip_bn0 clean: T->clean (rows_out, out_c) = the first layer's scaled
   accumulators with the unflipped weights sign(w), pooled like the flipped
   ones (each by its own argmax). x is the layer input; T->col is filled. */
static void train_bn0_forward(train_layer *T, const net_layer *L, const float *x, int B) {
    int rows = L->kind == NET_CONV ? B * L->in_h * L->in_w : B;
    int64_t nw = (int64_t)L->out_c * L->fan_in, nout = (int64_t)B * L->out_h * L->out_w * L->out_c;
    for (int64_t i = 0; i < nw; i++) T->wc[i] = net_sign(L->w[i]);
    if (T->fused) { /* T->wt is free again: the flipped forward is done, backward does not read it */
        for (int o = 0; o < L->out_c; o++)
            for (int k = 0; k < L->fan_in; k++) T->wt[(int64_t)k * L->out_c + o] = T->wc[(int64_t)o * L->fan_in + k];
        conv3x3_pool2_forward(T->clean, T->idxc, x, T->wt, B, L->in_h, L->in_w, L->in_c, L->out_c);
    } else {
        float *z = L->pool ? T->zc : T->clean;
        matmul_forward(z, L->kind == NET_CONV ? T->col : x, T->wc, rows, L->fan_in, L->out_c);
        if (L->pool) maxpool2_forward(T->clean, T->idxc, T->zc, B, L->in_h, L->in_w, L->out_c);
    }
    for (int64_t i = 0; i < nout; i++) T->clean[i] *= (1.0f / 255.0f);
}

/* Backward of the clean path: T->clean holds d loss / d (scaled clean
   accumulators); adds their weight gradient into dw (never through flips). */
static void train_bn0_backward(train_layer *T, const net_layer *L, const float *x0, float *dw, int B) {
    int rows = L->kind == NET_CONV ? B * L->in_h * L->in_w : B;
    int64_t nout = (int64_t)B * L->out_h * L->out_w * L->out_c;
    for (int64_t i = 0; i < nout; i++) T->clean[i] *= (1.0f / 255.0f);
    if (T->fused) {
        conv3x3_pool2_backward(dw, T->clean, T->idxc, x0, B, L->in_h, L->in_w, L->in_c, L->out_c);
        return;
    }
    const float *g = T->clean;
    if (L->pool) {
        memset(T->zc, 0, sizeof(float) * (size_t)rows * L->out_c);
        maxpool2_backward(T->zc, T->clean, T->idxc, (int)nout);
        g = T->zc;
    }
    matmul_backward(NULL, dw, g, L->kind == NET_CONV ? T->col : x0, T->wc, rows, L->fan_in, L->out_c);
}

/* Forward of a batch of B images; writes s->logits. */
static int train_forward(train_state *s, int B, const train_recipe *r, const perturb_set *ps, uint64_t step) {
    net *n = s->n;
    const float *x = s->x0;
    for (int l = 0; l < n->n_layers; l++) {
        net_layer *L = &n->layers[l];
        train_layer *T = &s->tl[l];
        int rows = L->kind == NET_CONV ? B * L->in_h * L->in_w : B;
        int rows_out = B * L->out_h * L->out_w;
        train_binarize(s, l, ps, step);
        if (T->fused) {
            for (int o = 0; o < L->out_c; o++)
                for (int k = 0; k < L->fan_in; k++) T->wt[(int64_t)k * L->out_c + o] = T->wb[(int64_t)o * L->fan_in + k];
            conv3x3_pool2_forward(T->p, T->idx, x, T->wt, B, L->in_h, L->in_w, L->in_c, L->out_c);
        } else if (T->binary) {
            if (L->kind == NET_CONV) im2col3x3(T->col, x, B, L->in_h, L->in_w, L->in_c); /* for backward */
            train_binary_forward(T, L, x, B);
        } else if (L->kind == NET_CONV) {
            im2col3x3(T->col, x, B, L->in_h, L->in_w, L->in_c);
            matmul_forward(T->z, T->col, T->wb, rows, L->fan_in, L->out_c);
        } else {
            matmul_forward(T->z, x, T->wb, rows, L->fan_in, L->out_c);
        }
        perturb_site site = {l, L, B, rows, step, L->kind == NET_CONV ? T->col : x, T->wb};
        for (int k = 0; ps && k < ps->n && !T->fused; k++)
            if (ps->h[k].acc) ps->h[k].acc(&ps->h[k], &site, T->z);
        float *acc = T->z;
        if (L->pool) {
            if (!T->fused) maxpool2_forward(T->p, T->idx, T->z, B, L->in_h, L->in_w, L->out_c);
            acc = T->p;
        }
        int64_t nout = (int64_t)rows_out * L->out_c;
        if (L->last) {
            for (int64_t i = 0; i < nout; i++) s->logits[i] = *n->scale * acc[i];
            break;
        }
        if (L->first) /* pixels in [0, 1]: the 1/255 scale before batch norm */
            for (int64_t i = 0; i < nout; i++) acc[i] *= (1.0f / 255.0f);
        const float *stats = acc;
        if (L->first && train_bn0_clean(r)) {
            train_bn0_forward(T, L, x, B);
            stats = T->clean;
        }
        batchnorm_forward_train_from(T->y, T->xhat, T->mean, T->invstd, L->mean, L->var, acc, stats, L->gamma,
                                     L->beta, rows_out, L->out_c, NET_BN_EPS, NET_BN_MOMENTUM);
        sign_forward(T->a, T->y, nout);
        for (int k = 0; ps && k < ps->n; k++) {
            int rc = ps->h[k].act ? ps->h[k].act(&ps->h[k], &site, T->a) : BN_OK;
            if (rc) return rc;
        }
        x = T->a;
    }
    return BN_OK;
}

double train_neuron_margin(const net_layer *L, int c, float y, float invstd) {
    double g = fabs((double)L->gamma[c]) * invstd;
    double d = fabs((double)y) / (g > 1e-12 ? g : 1e-12); /* distance in the float path's units */
    return margin_flips(L->first, L->first ? d * 255.0 : d); /* raw accumulator units: undo in_scale */
}

/* The margin regularizer of hidden layer l: returns lambda * mean max(0, h - m)
   with m = train_neuron_margin, and, if g_y is not NULL, adds its gradient with
   respect to y into g_y (dm/dy = sign(y) * train_neuron_margin(L, c, 1, invstd)). */
static double train_margin_reg(const train_state *s, int l, int B, const train_recipe *r, float *g_y) {
    const net_layer *L = &s->n->layers[l];
    const train_layer *T = &s->tl[l];
    int64_t rows_out = (int64_t)B * L->out_h * L->out_w, n_all = 0;
    for (int q = 0; q < s->n->n_layers - 1; q++)
        n_all += (int64_t)B * s->n->layers[q].out_h * s->n->layers[q].out_w * s->n->layers[q].out_c;
    double total = 0, w = r->reg_lambda / (double)n_all;
    for (int c = 0; c < L->out_c; c++) {
        double k = train_neuron_margin(L, c, 1.0f, T->invstd[c]); /* flips per unit of |y| */
        for (int64_t i = 0; i < rows_out; i++) {
            float y = T->y[i * L->out_c + c];
            double m = train_neuron_margin(L, c, y, T->invstd[c]);
            if (m < r->reg_h) {
                total += r->reg_h - m;
                if (g_y) g_y[i * L->out_c + c] -= (float)(w * k * (y > 0 ? 1.0 : y < 0 ? -1.0 : 0.0));
            }
        }
    }
    return w * total;
}

/* Backward from s->dlogits; fills s->grads (zero: calloc, then each optimizer step).
   Scratch: g_a is d loss / d a of the current layer's output, g_z of its
   accumulators, g_x of its input (which becomes the previous layer's g_a). */
static void train_backward(train_state *s, int B, const train_recipe *r, const perturb_set *ps, uint64_t step) {
    net *n = s->n;
    float *g_a = s->d_a, *g_x = s->d_b, *g_z = s->d_z;
    for (int l = n->n_layers - 1; l >= 0; l--) {
        net_layer *L = &n->layers[l];
        train_layer *T = &s->tl[l];
        int rows = L->kind == NET_CONV ? B * L->in_h * L->in_w : B;
        int rows_out = B * L->out_h * L->out_w;
        int64_t nout = (int64_t)rows_out * L->out_c;
        if (L->last) {
            double ds = 0;
            for (int64_t i = 0; i < nout; i++) {
                ds += (double)s->dlogits[i] * T->z[i];
                g_z[i] = *n->scale * s->dlogits[i];
            }
            *grad_of(s, n->scale) += (float)ds;
        } else {
            /* a = sign(y): clipped STE, then batch norm (in place when pooling) */
            sign_backward(g_a, g_a, T->y, nout);
            if (r->reg_lambda > 0) train_margin_reg(s, l, B, r, g_a);
            float *g_p = L->pool ? g_a : g_z;
            if (L->first && train_bn0_clean(r)) /* the statistics' gradient goes to the clean path */
                batchnorm_backward_from(g_p, T->clean, grad_of(s, L->gamma), grad_of(s, L->beta), g_a, T->xhat,
                                        T->clean, T->mean, L->gamma, T->invstd, rows_out, L->out_c);
            else
                batchnorm_backward(g_p, grad_of(s, L->gamma), grad_of(s, L->beta), g_a, T->xhat,
                                   L->gamma, T->invstd, rows_out, L->out_c);
            if (L->first)
                for (int64_t i = 0; i < nout; i++) g_p[i] *= (1.0f / 255.0f);
            if (L->pool && !T->fused) {
                memset(g_z, 0, sizeof(float) * (size_t)rows * L->out_c);
                maxpool2_backward(g_z, g_p, T->idx, (int)nout);
            }
        }
        /* the binary layer: z = x . wb^T (x = col for a convolution) */
        float *dw = grad_of(s, L->w);
        const float *x = L->kind == NET_CONV ? T->col : l == 0 ? s->x0 : s->tl[l - 1].a;
        if (T->fused) { /* conv + pool of the first layer; the pooled gradient is in g_a */
            conv3x3_pool2_backward(dw, g_a, T->idx, s->x0, B, L->in_h, L->in_w, L->in_c, L->out_c);
        } else if (L->first) {
            matmul_backward(NULL, dw, g_z, x, T->wb, rows, L->fan_in, L->out_c);
        } else if (L->kind == NET_CONV) {
            matmul_backward(s->d_col, dw, g_z, x, T->wb, rows, L->fan_in, L->out_c);
            col2im3x3(g_x, s->d_col, B, L->in_h, L->in_w, L->in_c);
        } else {
            matmul_backward(g_x, dw, g_z, x, T->wb, rows, L->fan_in, L->out_c);
        }
        perturb_site site = {l, L, B, rows, step, NULL, T->wb};
        for (int k = ps ? ps->n - 1 : -1; k >= 0; k--)
            if (ps->h[k].weights_backward) ps->h[k].weights_backward(&ps->h[k], &site, dw, T->flipped);
        if (L->first && train_bn0_clean(r)) train_bn0_backward(T, L, s->x0, dw, B); /* after the flips' backward */
        float *t = g_a;
        g_a = g_x, g_x = t;
    }
}

/* One optimizer step: Adam on every parameter (latent weights clamped to
   [-1, 1] if clip), or Bop (rate gamma) on the binary weights and Adam on
   batch norm and the scale. Leaves the gradients zeroed for the next step. */
static void train_optimize(train_state *s, float lr, int64_t t, int clip, float gamma, float tau) {
    net *n = s->n;
    optim_span spans[2 * NET_MAX_LAYERS + 1];
    int ns = 0;
    for (int l = 0; l < n->n_layers; l++) {
        net_layer *L = &n->layers[l];
        int64_t w0 = L->w - n->params, nw = (int64_t)L->out_c * L->fan_in;
        if (!s->use_bop) spans[ns++] = (optim_span){w0, w0 + nw, clip};
        if (!L->last) spans[ns++] = (optim_span){w0 + nw, w0 + nw + 2 * L->out_c, 0}; /* gamma, beta */
    }
    int64_t sc = n->scale - n->params;
    spans[ns++] = (optim_span){sc, sc + 1, 0};
    optim_adam(n->params, s->grads, s->adam_m, s->adam_v, spans, ns, lr, t, 1);
    if (s->use_bop) {
        bop_step(&s->bop, n, s->grads, gamma, tau);
        for (int l = 0; l < n->n_layers; l++) {
            net_layer *L = &n->layers[l];
            memset(grad_of(s, L->w), 0, sizeof(float) * (size_t)L->out_c * L->fan_in);
        }
    }
}

double train_accuracy(const net *n, const dataset *d) {
    const int chunk = 500; /* as counted by train_memory_bytes */
    int *pred = bn_malloc(sizeof(int) * chunk);
    int64_t correct = 0;
    size_t img = (size_t)d->h * d->w * d->c;
    for (int i = 0; i < d->n; i += chunk) {
        int b = d->n - i < chunk ? d->n - i : chunk;
        net_predict(n, pred, d->pixels + (size_t)i * img, b);
        for (int k = 0; k < b; k++) correct += pred[k] == d->labels[i + k];
    }
    free(pred);
    return d->n ? (double)correct / d->n : 0.0;
}

/* Adds the time since *t to *phase and restarts the clock. */
static void train_lap(double *phase, double *t) {
    double now = par_seconds();
    *phase += now - *t;
    *t = now;
}

int train_run(net *n, const dataset *train, const dataset *val, const train_recipe *r, const perturb_set *ps,
              train_callback cb, void *user) {
    return train_run_traced(n, train, val, r, ps, cb, user, NULL);
}

int train_run_traced(net *n, const dataset *train, const dataset *val, const train_recipe *r,
                     const perturb_set *ps, train_callback cb, void *user, train_trace *trace) {
    if (r->epochs < 0 || r->batch < 1 || !(r->lr > 0) || r->lr_step < 0 || !(r->lr_gamma > 0))
        return bn_error(BN_EARG, "train: bad recipe (epochs %d, batch %d, lr %g, lr_step %d, lr_gamma %g)",
                        r->epochs, r->batch, r->lr, r->lr_step, r->lr_gamma);
    if (r->loss == LOSS_MHL && !(r->mhl_b > 0))
        return bn_error(BN_EARG, "train: MHL margin b must be > 0, got %g", r->mhl_b);
    if (r->reg_lambda < 0 || (r->reg_lambda > 0 && !(r->reg_h > 0)))
        return bn_error(BN_EARG, "train: regularizer needs lambda >= 0 and h > 0 (lambda %g, h %g)",
                        r->reg_lambda, r->reg_h);
    if (r->optimizer != OPT_ADAM && r->optimizer != OPT_BOP)
        return bn_error(BN_EARG, "train: unknown optimizer code %d", (int)r->optimizer);
    fpfmt mom_fmt = fpfmt_binary32();
    if (r->optimizer == OPT_BOP) {
        if (!(r->bop_gamma > 0 && r->bop_gamma <= 1) || !(r->bop_tau >= 0) || !(r->bop_gamma_decay > 0))
            return bn_error(BN_EARG, "train: Bop needs 0 < gamma <= 1, tau >= 0, gamma decay > 0 (gamma %g, tau %g, decay %g)",
                            r->bop_gamma, r->bop_tau, r->bop_gamma_decay);
        if (fpfmt_init(&mom_fmt, r->mom_e, r->mom_f, r->mom_bias, r->mom_subnormals))
            return bn_error(BN_EARG, "train: momentum format: %s", bn_errmsg());
    }
    if (train->h != n->in_h || train->w != n->in_w || train->c != n->in_c || train->classes > n->classes)
        return bn_error(BN_EARG, "train: data %dx%dx%d with %d classes does not fit the net %dx%dx%d/%d",
                        train->h, train->w, train->c, train->classes, n->in_h, n->in_w, n->in_c, n->classes);
    if (train->n < 1) return bn_error(BN_EARG, "train: empty training set");
    int B = r->batch < train->n ? r->batch : train->n;
    train_state s;
    train_state_init(&s, n, B);
    if (train_bn0_clean(r)) train_bn0_alloc(&s.tl[0], &n->layers[0]);
    if (r->optimizer == OPT_BOP) s.use_bop = 1, bop_create(&s.bop, n, &mom_fmt);
    int32_t *order = bn_malloc(sizeof(int32_t) * (size_t)train->n);
    size_t img = (size_t)train->h * train->w * train->c;
    int64_t t = 0; /* Adam step */
    int rc = BN_OK;
    for (int epoch = 1; epoch <= r->epochs && rc == BN_OK; epoch++) {
        double t0 = par_seconds();
        float lr = r->lr;
        float bop_gamma = r->bop_gamma;
        if (r->lr_step > 0) {
            lr *= (float)dmath_powi(r->lr_gamma, (epoch - 1) / r->lr_step);
            bop_gamma *= (float)dmath_powi(r->bop_gamma_decay, (epoch - 1) / r->lr_step);
        }
        if (s.use_bop) bop_reset_stats(&s.bop);
        for (int i = 0; i < train->n; i++) order[i] = i;
        pcg32 g;
        rng_keyed(&g, r->seed, (uint64_t)epoch, RNG_SHUFFLE);
        rng_shuffle(&g, order, train->n);
        double loss_sum = 0;
        int64_t correct = 0, seen = 0;
        double phase[TRAIN_PHASES] = {0}, tp = par_seconds();
        for (int start = 0; start < train->n; start += B) {
            int b = train->n - start < B ? train->n - start : B;
            for (int k = 0; k < b; k++) {
                const uint8_t *src = train->pixels + (size_t)order[start + k] * img;
                float *dst = s.x0 + (size_t)k * img;
                for (size_t q = 0; q < img; q++) dst[q] = (float)src[q];
                s.labels[k] = train->labels[order[start + k]];
            }
            train_lap(&phase[TRAIN_PHASE_BATCH], &tp);
            t++;
            if ((rc = train_forward(&s, b, r, ps, (uint64_t)t))) break;
            train_lap(&phase[TRAIN_PHASE_FORWARD], &tp);
            double loss = r->loss == LOSS_MHL
                              ? loss_mhl(s.dlogits, s.logits, s.labels, b, n->classes, r->mhl_b)
                              : loss_ce(s.dlogits, s.logits, s.labels, b, n->classes);
            if (r->reg_lambda > 0)
                for (int l = 0; l < n->n_layers - 1; l++) loss += train_margin_reg(&s, l, b, r, NULL);
            if (!isfinite(loss)) {
                rc = bn_error(BN_EDIVERGED, "train: loss is %g at epoch %d, step %lld", loss, epoch,
                              (long long)t);
                break;
            }
            for (int k = 0; k < b; k++) {
                const float *z = s.logits + (size_t)k * n->classes;
                int best = 0;
                for (int c = 1; c < n->classes; c++)
                    if (z[c] > z[best]) best = c;
                correct += best == s.labels[k];
            }
            loss_sum += loss * b;
            seen += b;
            train_lap(&phase[TRAIN_PHASE_LOSS], &tp);
            train_backward(&s, b, r, ps, (uint64_t)t);
            if (trace && trace->steps < trace->max_steps) {
                float *dst = trace->g + (size_t)trace->steps++ * trace->n;
                for (int k = 0; k < trace->n; k++) dst[k] = s.grads[trace->idx[k]];
            }
            train_lap(&phase[TRAIN_PHASE_BACKWARD], &tp);
            train_optimize(&s, lr, t, r->clip, bop_gamma, r->bop_tau);
            train_lap(&phase[TRAIN_PHASE_OPTIMIZER], &tp);
        }
        if (rc) break;
        double secs = par_seconds() - t0;
        train_progress p = {epoch, r->epochs, loss_sum / (double)seen, (double)correct / (double)seen,
                            val ? train_accuracy(n, val) : -1.0, (double)seen / secs, secs,
                            s.use_bop && s.bop.counted ? (double)s.bop.lost / (double)s.bop.counted : -1.0,
                            {0}};
        memcpy(p.phase, phase, sizeof phase);
        if (cb && cb(&p, user)) rc = bn_error(BN_EINTR, "train: stopped after epoch %d", epoch);
    }
    free(order);
    if (s.use_bop) bop_free(&s.bop);
    train_state_free(&s);
    return rc;
}
