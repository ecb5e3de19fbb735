/*
** Error models on the packed network (engine/errmodel.h): the hooked
** one-image forward driver (products, chunked sums, activations), stored
** weight flips on a copy, accuracy over repeats.
*/
#include "engine/errmodel.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "engine/err.h"

/* ---- Settings ---- */

void errmodel_zero(errmodel *m) { memset(m, 0, sizeof *m); }

void errmodel_set_weights(errmodel *m, double p01, double p10) {
    for (int l = 0; l < NET_MAX_LAYERS; l++) m->layer[l].w_p01 = p01, m->layer[l].w_p10 = p10;
}

void errmodel_set_products(errmodel *m, double p01, double p10) {
    for (int l = 0; l < NET_MAX_LAYERS; l++) m->layer[l].x_p01 = p01, m->layer[l].x_p10 = p10;
}

void errmodel_set_activations(errmodel *m, double p01, double p10) {
    for (int l = 0; l < NET_MAX_LAYERS; l++) m->layer[l].a_p01 = p01, m->layer[l].a_p10 = p10;
}

static int errmodel_rate_ok(double p) { return p >= 0.0 && p <= 1.0; }

int errmodel_check(const packed_net *p, const errmodel *m) {
    for (int l = 0; l < p->n_layers; l++) {
        const errmodel_layer *E = &m->layer[l];
        const packed_layer *L = &p->layers[l];
        if (!errmodel_rate_ok(E->w_p01) || !errmodel_rate_ok(E->w_p10))
            return bn_error(BN_EARG, "errmodel: layer %d weight rates (%g, %g) not in [0, 1]", l, E->w_p01, E->w_p10);
        if (!errmodel_rate_ok(E->x_p01) || !errmodel_rate_ok(E->x_p10))
            return bn_error(BN_EARG, "errmodel: layer %d product rates (%g, %g) not in [0, 1]", l, E->x_p01, E->x_p10);
        if (!errmodel_rate_ok(E->a_p01) || !errmodel_rate_ok(E->a_p10))
            return bn_error(BN_EARG, "errmodel: layer %d activation rates (%g, %g) not in [0, 1]", l, E->a_p01,
                            E->a_p10);
        if (E->chunk < 0) return bn_error(BN_EARG, "errmodel: layer %d chunk length %d < 0", l, E->chunk);
        if ((E->chunk_fn || E->decide_fn) && E->chunk == 0)
            return bn_error(BN_EARG, "errmodel: layer %d has a chunk or decide callback but no chunk length", l);
        if (E->decide_fn && L->last)
            return bn_error(BN_EARG, "errmodel: layer %d is the classifier; decide_fn is for hidden layers", l);
        if (E->chunk > 0 && L->first)
            return bn_error(BN_EARG, "errmodel: layer %d sees pixels; chunked sums are for binary layers", l);
    }
    return BN_OK;
}

static int errmodel_layer_hooked(const packed_layer *L, const errmodel_layer *E) {
    if (!L->first && (E->x_p01 > 0.0 || E->x_p10 > 0.0 || E->chunk > 0)) return 1;
    if (!L->last && (E->a_p01 > 0.0 || E->a_p10 > 0.0)) return 1;
    return 0;
}

int errmodel_needs_driver(const packed_net *p, const errmodel *m) {
    for (int l = 0; l < p->n_layers; l++)
        if (errmodel_layer_hooked(&p->layers[l], &m->layer[l])) return 1;
    return 0;
}

static int errmodel_has_weights(const packed_net *p, const errmodel *m) {
    for (int l = 0; l < p->n_layers; l++)
        if (m->layer[l].w_p01 > 0.0 || m->layer[l].w_p10 > 0.0) return 1;
    return 0;
}

/* ---- Random draws ---- */

uint32_t errmodel_binomial(pcg32 *rng, uint32_t n, double prob, const double *pw) {
    if (n == 0 || prob <= 0.0) return 0;
    if (prob >= 1.0) return n;
    if (!pw || prob > 0.5 || (double)n * prob >= 16.0) return pcg32_binomial(rng, n, prob);
    /* pcg32_binomial's inversion with pow(q, n) taken from the table (same value). */
    double q = 1.0 - prob, s = prob / q, a = (double)(n + 1) * s;
    double r = pw[n], u = pcg32_double(rng);
    uint32_t x = 0;
    while (u > r) {
        u -= r;
        x++;
        if (x > n) return n;
        r *= a / (double)x - s;
    }
    return x;
}

static uint64_t errmodel_key(int repeat, int64_t image, int layer) {
    return (uint64_t)repeat << 40 | (uint64_t)image << 8 | (uint64_t)layer;
}

/* ---- Stored weights ---- */

/* Draws layer l's stored-weight flip mask of (seed, repeat) under E over the
   logical bits src into mask (out_c, kw); seen is scratch of the same size. */
static size_t errmodel_weight_mask(const packed_layer *L, const uint64_t *src, const errmodel_layer *E, int l,
                                   uint64_t seed, int repeat, uint64_t *mask, uint64_t *seen) {
    /* the logical bit is 1 for +1; stored inverted, a +1 sits in a 0 cell and flips with w_p01 */
    double a = E->w_invert ? E->w_p10 : E->w_p01, b = E->w_invert ? E->w_p01 : E->w_p10;
    uint64_t key = ((uint64_t)repeat * FAULT_TARGETS + FAULT_WEIGHTS) * NET_MAX_LAYERS + (uint64_t)l;
    size_t n01 = 0, n10 = 0;
    fault_draw_mask(mask, src, (size_t)L->out_c, L->kw, L->wvalid, a, b, seed, key, seen, &n01, &n10);
    return n01 + n10;
}

static size_t errmodel_max_words(const packed_net *p) {
    size_t maxw = 1;
    for (int l = 0; l < p->n_layers; l++) {
        size_t w = (size_t)p->layers[l].out_c * p->layers[l].kw;
        if (w > maxw) maxw = w;
    }
    return maxw;
}

int64_t errmodel_flip_weights(packed_net *p, const errmodel *m, uint64_t seed, int repeat) {
    uint64_t *mask = NULL, *seen = NULL;
    int64_t flips = 0;
    for (int l = 0; l < p->n_layers; l++) {
        const errmodel_layer *E = &m->layer[l];
        if (!(E->w_p01 > 0.0 || E->w_p10 > 0.0)) continue;
        size_t maxw = errmodel_max_words(p);
        if (!mask) mask = bn_malloc(sizeof(uint64_t) * maxw), seen = bn_malloc(sizeof(uint64_t) * maxw);
        packed_layer *L = &p->layers[l];
        size_t words = (size_t)L->out_c * L->kw, f = errmodel_weight_mask(L, L->w, E, l, seed, repeat, mask, seen);
        for (size_t i = 0; i < words; i++) L->w[i] ^= mask[i];
        if (f) packed_layer_sync(L);
        flips += (int64_t)f;
    }
    free(mask), free(seen);
    return flips;
}

int64_t errmodel_redraw_weights(packed_net *work, const packed_net *clean, const errmodel *m, uint64_t seed,
                                int repeat) {
    size_t maxw = errmodel_max_words(clean);
    uint64_t *mask = bn_malloc(sizeof(uint64_t) * maxw), *seen = bn_malloc(sizeof(uint64_t) * maxw);
    int64_t flips = 0;
    for (int l = 0; l < clean->n_layers; l++) {
        const errmodel_layer *E = &m->layer[l];
        const packed_layer *C = &clean->layers[l];
        packed_layer *W = &work->layers[l];
        size_t words = (size_t)C->out_c * C->kw, f = 0;
        if (E->w_p01 > 0.0 || E->w_p10 > 0.0) f = errmodel_weight_mask(C, C->w, E, l, seed, repeat, mask, seen);
        else memset(mask, 0, sizeof(uint64_t) * words);
        int changed = 0;
        for (size_t i = 0; i < words; i++) {
            uint64_t v = C->w[i] ^ mask[i];
            changed |= v != W->w[i];
            W->w[i] = v;
        }
        if (changed) packed_layer_sync(W);
        flips += (int64_t)f;
    }
    free(mask), free(seen);
    return flips;
}

/* ---- The hooked driver ---- */

/* Read-only per-layer tables of one call, shared by the threads. */
typedef struct {
    double *pw01, *pw10;  /* (nmax+1) (1 - x_p01)^k, (1 - x_p10)^k; NULL if that rate is 0 */
    int n_chunks;         /* chunks per neuron (0: not chunked) */
    uint64_t *cmask;      /* (n_chunks, kw) valid weight bits of each chunk */
    int *cj0, *cj1;       /* (n_chunks) first and one-past-last word holding chunk bits */
} errmodel_tables;

typedef struct {
    const packed_net *p;
    const errmodel *m;
    errmodel_tables t[NET_MAX_LAYERS];
    uint64_t seed;
    int repeat;
} errmodel_run;

static double *errmodel_pow_table(double prob, int n) {
    if (!(prob > 0.0) || prob > 0.5) return NULL;
    double *pw = bn_malloc(sizeof(double) * (size_t)(n + 1));
    for (int k = 0; k <= n; k++) pw[k] = pow(1.0 - prob, (double)k);
    return pw;
}

static void errmodel_tables_init(errmodel_run *run) {
    const packed_net *p = run->p;
    for (int l = 0; l < p->n_layers; l++) {
        const packed_layer *L = &p->layers[l];
        const errmodel_layer *E = &run->m->layer[l];
        errmodel_tables *T = &run->t[l];
        memset(T, 0, sizeof *T);
        if (L->first) continue;
        T->pw01 = errmodel_pow_table(E->x_p01, L->fan_in);
        T->pw10 = errmodel_pow_table(E->x_p10, L->fan_in);
        if (E->chunk > 0) {
            int n = E->chunk, nc = (L->fan_in + n - 1) / n;
            T->n_chunks = nc;
            T->cmask = bn_calloc((size_t)nc * L->kw, sizeof(uint64_t));
            T->cj0 = bn_malloc(sizeof(int) * (size_t)nc);
            T->cj1 = bn_malloc(sizeof(int) * (size_t)nc);
            for (int k = 0; k < nc; k++) T->cj0[k] = L->kw, T->cj1[k] = 0;
            for (int i = 0; i < L->fan_in; i++) {
                int pix = i / L->in_c, c = i % L->in_c, word = pix * L->in_cw + c / 64, k = i / n;
                T->cmask[(size_t)k * L->kw + word] |= (uint64_t)1 << (c % 64);
                if (word < T->cj0[k]) T->cj0[k] = word;
                if (word + 1 > T->cj1[k]) T->cj1[k] = word + 1;
            }
        }
    }
}

static void errmodel_tables_free(errmodel_run *run) {
    for (int l = 0; l < NET_MAX_LAYERS; l++) {
        errmodel_tables *T = &run->t[l];
        free(T->pw01), free(T->pw10), free(T->cmask), free(T->cj0), free(T->cj1);
    }
}

/* Per-thread buffers. */
typedef struct {
    uint64_t *act[2];  /* ping-pong activations of one image */
    int32_t *acc;      /* (in_h * in_w or 1, np) accumulators before pooling */
    int32_t *pooled;   /* (out_h * out_w, np) after pooling */
    uint8_t *xb;       /* first-layer byte rows */
    uint64_t *row;     /* (kw) gathered input of one position (chunked path) */
    uint64_t *tv;      /* (kw) valid product bits of that position */
    int32_t *vals;     /* (max chunks) chunk values of one neuron */
    uint64_t *pre;     /* (in_h * in_w, out_cw) decided bits before pooling */
} errmodel_scratch;

static void errmodel_scratch_init(errmodel_scratch *s, const errmodel_run *run) {
    const packed_net *p = run->p;
    size_t aw = 1, acc = 1, pooled = 1, xb = 64, kw = 1, nc = 1, pre = 1;
    for (int l = 0; l < p->n_layers; l++) {
        const packed_layer *L = &p->layers[l];
        size_t ow = (size_t)L->out_h * L->out_w * L->out_cw, iw = (size_t)L->in_h * L->in_w * L->in_cw;
        if (ow > aw) aw = ow;
        if (!L->first && iw > aw) aw = iw;
        size_t Q = L->kind == NET_CONV ? (size_t)L->in_h * L->in_w : 1;
        if (Q * L->np > acc) acc = Q * L->np;
        if ((size_t)L->out_h * L->out_w * L->np > pooled) pooled = (size_t)L->out_h * L->out_w * L->np;
        if (Q * L->out_cw > pre) pre = Q * L->out_cw;
        if (L->first) {
            size_t rows = L->kind == NET_CONV ? (size_t)L->in_w : 1;
            if (rows * L->k4 > xb) xb = rows * L->k4;
        }
        if ((size_t)L->kw > kw) kw = (size_t)L->kw;
        if ((size_t)run->t[l].n_chunks > nc) nc = (size_t)run->t[l].n_chunks;
    }
    s->act[0] = bn_aligned_alloc(sizeof(uint64_t) * aw);
    s->act[1] = bn_aligned_alloc(sizeof(uint64_t) * aw);
    s->acc = bn_aligned_alloc(sizeof(int32_t) * acc);
    s->pooled = bn_aligned_alloc(sizeof(int32_t) * pooled);
    s->xb = bn_aligned_alloc(xb);
    s->row = bn_malloc(sizeof(uint64_t) * kw);
    s->tv = bn_malloc(sizeof(uint64_t) * kw);
    s->vals = bn_malloc(sizeof(int32_t) * nc);
    s->pre = bn_malloc(sizeof(uint64_t) * pre);
}

static void errmodel_scratch_free(errmodel_scratch *s) {
    free(s->act[0]), free(s->act[1]), free(s->acc), free(s->pooled), free(s->xb);
    free(s->row), free(s->tv), free(s->vals), free(s->pre);
}

/* Valid taps of conv output position (y, x) of an (H, W) map. */
static int errmodel_valid_taps(int y, int x, int H, int W) {
    int ny = 3 - (y == 0) - (y == H - 1), nx = 3 - (x == 0) - (x == W - 1);
    if (H == 1) ny = 1;
    if (W == 1) nx = 1;
    return ny * nx;
}

/* First-layer conv byte rows of output row y: xb (in_w, k4), (ky, kx, c) order. */
static void errmodel_im2col_u8(uint8_t *xb, const uint8_t *img, const packed_layer *L, int y) {
    int H = L->in_h, W = L->in_w, C = L->in_c;
    memset(xb, 0, (size_t)W * L->k4);
    for (int x = 0; x < W; x++)
        for (int t = 0; t < 9; t++) {
            int iy = y + t / 3 - 1, ix = x + t % 3 - 1;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
            memcpy(xb + (size_t)x * L->k4 + t * C, img + ((size_t)iy * W + ix) * C, (size_t)C);
        }
}

/* Gathers the input words of position q of L into row and its valid product
   bits into tv (kw words each). */
static void errmodel_gather(const packed_layer *L, const uint64_t *in, int q, uint64_t *row, uint64_t *tv) {
    if (L->kind != NET_CONV) {
        memcpy(row, in, sizeof(uint64_t) * L->kw);
        memcpy(tv, L->wvalid, sizeof(uint64_t) * L->kw);
        return;
    }
    int H = L->in_h, W = L->in_w, cw = L->in_cw, y = q / W, x = q % W;
    for (int t = 0; t < 9; t++) {
        int iy = y + t / 3 - 1, ix = x + t % 3 - 1, ok = iy >= 0 && iy < H && ix >= 0 && ix < W;
        for (int j = 0; j < cw; j++) {
            row[t * cw + j] = ok ? in[((size_t)iy * W + ix) * cw + j] : 0;
            tv[t * cw + j] = ok ? L->wvalid[t * cw + j] : 0;
        }
    }
}

/* Chunked accumulation of layer l (binary input in): acc (Q, np), or with
   decide_fn the decided bits pre (Q, out_cw). */
static void errmodel_chunked(const errmodel_run *run, errmodel_scratch *s, int l, const uint64_t *in, int Q,
                             pcg32 *gp, pcg32 *gc) {
    const packed_layer *L = &run->p->layers[l];
    const errmodel_layer *E = &run->m->layer[l];
    const errmodel_tables *T = &run->t[l];
    int nc = T->n_chunks, has_x = E->x_p01 > 0.0 || E->x_p10 > 0.0;
    if (E->decide_fn) memset(s->pre, 0, sizeof(uint64_t) * (size_t)Q * L->out_cw);
    for (int q = 0; q < Q; q++) {
        errmodel_gather(L, in, q, s->row, s->tv);
        for (int n = 0; n < L->np; n++) {
            if (n >= L->out_c) {
                s->acc[(size_t)q * L->np + n] = 0;
                continue;
            }
            const uint64_t *w = L->w + (size_t)n * L->kw;
            int32_t sum = 0;
            for (int k = 0; k < nc; k++) {
                const uint64_t *cm = T->cmask + (size_t)k * L->kw;
                int nv = 0, np = 0;
                for (int j = T->cj0[k]; j < T->cj1[k]; j++) {
                    uint64_t v = cm[j] & s->tv[j];
                    nv += __builtin_popcountll(v);
                    np += __builtin_popcountll(~(s->row[j] ^ w[j]) & v);
                }
                if (has_x) {
                    int b1 = (int)errmodel_binomial(gp, (uint32_t)np, E->x_p10, T->pw10);
                    int b2 = (int)errmodel_binomial(gp, (uint32_t)(nv - np), E->x_p01, T->pw01);
                    np += b2 - b1;
                }
                int32_t v = E->chunk_fn ? E->chunk_fn(E->user, l, n, k, nv, np, gc) : 2 * np - nv;
                s->vals[k] = v;
                sum += v;
            }
            s->acc[(size_t)q * L->np + n] = sum;
            if (E->decide_fn) {
                int inv = (int)((L->inv[n / 64] >> (n % 64)) & 1u);
                if (E->decide_fn(E->user, l, n, s->vals, nc, L->thr[n], inv, gc))
                    s->pre[(size_t)q * L->out_cw + n / 64] |= (uint64_t)1 << (n % 64);
            }
        }
    }
}

/* Product errors on the exact accumulators acc (Q, np) of layer l. */
static void errmodel_products(const errmodel_run *run, int l, int32_t *acc, int Q, pcg32 *g) {
    const packed_layer *L = &run->p->layers[l];
    const errmodel_layer *E = &run->m->layer[l];
    const errmodel_tables *T = &run->t[l];
    for (int q = 0; q < Q; q++) {
        int N = L->kind == NET_CONV ? errmodel_valid_taps(q / L->in_w, q % L->in_w, L->in_h, L->in_w) * L->in_c
                                    : L->fan_in;
        int32_t *a = acc + (size_t)q * L->np;
        for (int n = 0; n < L->out_c; n++) {
            int P = (a[n] + N) / 2;
            int b1 = (int)errmodel_binomial(g, (uint32_t)P, E->x_p10, T->pw10);
            int b2 = (int)errmodel_binomial(g, (uint32_t)(N - P), E->x_p01, T->pw01);
            a[n] += 2 * (b2 - b1);
        }
    }
}

/* Activation flips on the output bits (P, out_cw) of hidden layer L. */
static void errmodel_flip_bits(const packed_layer *L, const errmodel_layer *E, uint64_t *bits, int P, pcg32 *g) {
    double pmax = E->a_p01 > E->a_p10 ? E->a_p01 : E->a_p10;
    if (!(pmax > 0.0)) return;
    int64_t nbits = (int64_t)P * L->out_c;
    double lq = pmax >= 1.0 ? -INFINITY : log1p(-pmax);
    int64_t i = -1;
    for (;;) {
        double gap = 0.0;
        if (lq != -INFINITY) {
            double u = 1.0 - pcg32_double(g); /* (0, 1] */
            gap = floor(log(u) / lq);
        }
        if (gap >= (double)(nbits - 1 - i)) break;
        i += (int64_t)gap + 1;
        int64_t q = i / L->out_c;
        int n = (int)(i % L->out_c);
        uint64_t *w = &bits[(size_t)q * L->out_cw + n / 64], b = (uint64_t)1 << (n % 64);
        double pr = (*w & b) ? E->a_p10 : E->a_p01;
        if (pr >= pmax || pcg32_double(g) * pmax < pr) *w ^= b;
    }
}

/* One image through the hooked driver: classifier accumulators acc_out (classes). */
static void errmodel_image(const errmodel_run *run, errmodel_scratch *s, const uint8_t *img, int64_t image,
                           int32_t *acc_out) {
    const packed_net *p = run->p;
    const packed_kernels *k = packed_kernels_active();
    size_t img_bytes = (size_t)p->in_h * p->in_w * p->in_c;
    int cur = 0;
    for (int l = 0; l < p->n_layers; l++) {
        const packed_layer *L = &p->layers[l];
        const errmodel_layer *E = &run->m->layer[l];
        uint64_t *in = s->act[cur], *out = s->act[cur ^ 1];
        int Q = L->kind == NET_CONV ? L->in_h * L->in_w : 1;
        uint64_t key = errmodel_key(run->repeat, image, l);
        pcg32 gp, gc, ga;
        rng_keyed(&gp, run->seed, key, ERRMODEL_RNG_PRODUCTS);
        int decided = 0;
        if (!L->first && E->chunk > 0) {
            rng_keyed(&gc, run->seed, key, ERRMODEL_RNG_CHUNKS);
            errmodel_chunked(run, s, l, in, Q, &gp, &gc);
            decided = E->decide_fn != NULL;
        } else {
            if (L->kind == NET_CONV) {
                if (L->first)
                    for (int y = 0; y < L->in_h; y++) {
                        errmodel_im2col_u8(s->xb, img, L, y);
                        k->u8dense(s->acc + (size_t)y * L->in_w * L->np, s->xb, L->k4, L, L->in_w);
                    }
                else
                    k->bconv(s->acc, in, L, 0, L->in_h);
            } else if (L->first) {
                memcpy(s->xb, img, img_bytes);
                memset(s->xb + img_bytes, 0, (size_t)L->k4 - img_bytes);
                k->u8dense(s->acc, s->xb, L->k4, L, 1);
            } else {
                k->bdense(s->acc, in, L, 1);
            }
            if (!L->first && (E->x_p01 > 0.0 || E->x_p10 > 0.0)) errmodel_products(run, l, s->acc, Q, &gp);
        }
        if (L->last) {
            memcpy(acc_out, s->acc, sizeof(int32_t) * (size_t)p->classes);
            return;
        }
        int P = L->out_h * L->out_w;
        if (decided) {
            if (L->pool) { /* OR of the 2x2 window's decided bits */
                int W = L->in_w, cw = L->out_cw;
                for (int oy = 0; oy < L->out_h; oy++)
                    for (int ox = 0; ox < L->out_w; ox++)
                        for (int j = 0; j < cw; j++) {
                            const uint64_t *r0 = s->pre + ((size_t)(2 * oy) * W + 2 * ox) * cw + j;
                            const uint64_t *r1 = r0 + (size_t)W * cw;
                            out[((size_t)oy * L->out_w + ox) * cw + j] = r0[0] | r0[cw] | r1[0] | r1[cw];
                        }
            } else {
                memcpy(out, s->pre, sizeof(uint64_t) * (size_t)P * L->out_cw);
            }
        } else {
            int32_t *acc = s->acc;
            if (L->pool) {
                size_t row = (size_t)L->in_w * L->np;
                for (int oy = 0; oy < L->out_h; oy++)
                    k->pool2(s->pooled + (size_t)oy * L->out_w * L->np, s->acc + 2 * oy * row,
                             s->acc + (2 * oy + 1) * row, L->in_w, L->np);
                acc = s->pooled;
            }
            k->thresh(out, L->out_cw, acc, L, P);
        }
        if (E->a_p01 > 0.0 || E->a_p10 > 0.0) {
            rng_keyed(&ga, run->seed, key, ERRMODEL_RNG_ACTIVATIONS);
            errmodel_flip_bits(L, E, out, P, &ga);
        }
        cur ^= 1;
    }
}

static void errmodel_drive(const packed_net *p, const errmodel *m, uint64_t seed, int repeat, float *logits,
                           const uint8_t *x, int B, int first_image, int threads) {
    errmodel_run run;
    memset(&run, 0, sizeof run);
    run.p = p, run.m = m, run.seed = seed, run.repeat = repeat;
    errmodel_tables_init(&run);
    size_t img_bytes = (size_t)p->in_h * p->in_w * p->in_c;
    int nt = threads > 0 ? threads : omp_get_max_threads();
#pragma omp parallel num_threads(nt)
    {
        errmodel_scratch s;
        errmodel_scratch_init(&s, &run);
        int32_t *z = bn_malloc(sizeof(int32_t) * (size_t)p->classes);
#pragma omp for schedule(dynamic, 16)
        for (int i = 0; i < B; i++) {
            errmodel_image(&run, &s, x + (size_t)i * img_bytes, (int64_t)first_image + i, z);
            for (int c = 0; c < p->classes; c++) logits[(size_t)i * p->classes + c] = p->scale * (float)z[c];
        }
        free(z);
        errmodel_scratch_free(&s);
    }
    errmodel_tables_free(&run);
}

/* ---- Public entry points ---- */

int errmodel_logits_at(const packed_net *p, const errmodel *m, uint64_t seed, int repeat, float *logits,
                       const uint8_t *x, int B, int first_image, int threads) {
    int rc = errmodel_check(p, m);
    if (rc) return rc;
    if (repeat < 0 || repeat >= (1 << 24)) return bn_error(BN_EARG, "errmodel: repeat %d not in [0, 2^24)", repeat);
    if (B <= 0) return BN_OK;
    packed_net work;
    const packed_net *use = p;
    int flipped = errmodel_has_weights(p, m);
    if (flipped) {
        packed_copy(&work, p);
        errmodel_flip_weights(&work, m, seed, repeat);
        use = &work;
    }
    if (errmodel_needs_driver(p, m))
        errmodel_drive(use, m, seed, repeat, logits, x, B, first_image, threads);
    else
        packed_logits_with(use, packed_kernels_active(), logits, x, B, threads);
    if (flipped) packed_free(&work);
    return BN_OK;
}

int errmodel_logits(const packed_net *p, const errmodel *m, uint64_t seed, int repeat, float *logits,
                    const uint8_t *x, int B) {
    return errmodel_logits_at(p, m, seed, repeat, logits, x, B, 0, 0);
}

int errmodel_predict(const packed_net *p, const errmodel *m, uint64_t seed, int repeat, int *pred,
                     const uint8_t *x, int B, int threads) {
    float *logits = bn_malloc(sizeof(float) * ((size_t)(B > 0 ? B : 1) * p->classes));
    int rc = errmodel_logits_at(p, m, seed, repeat, logits, x, B, 0, threads);
    if (!rc)
        for (int b = 0; b < B; b++) {
            const float *z = logits + (size_t)b * p->classes;
            int best = 0;
            for (int c = 1; c < p->classes; c++)
                if (z[c] > z[best]) best = c;
            pred[b] = best;
        }
    free(logits);
    return rc;
}

int errmodel_accuracy(const packed_net *p, const errmodel *m, uint64_t seed, int repeat, const dataset *d,
                      int threads, double *acc) {
    *acc = 0.0;
    if (d->h != p->in_h || d->w != p->in_w || d->c != p->in_c)
        return bn_error(BN_EARG, "errmodel: data images are %dx%dx%d, the network expects %dx%dx%d", d->h, d->w,
                        d->c, p->in_h, p->in_w, p->in_c);
    int *pred = bn_malloc(sizeof(int) * (size_t)(d->n > 0 ? d->n : 1));
    int rc = errmodel_predict(p, m, seed, repeat, pred, d->pixels, d->n, threads);
    if (!rc) {
        long correct = 0;
        for (int i = 0; i < d->n; i++) correct += pred[i] == d->labels[i];
        *acc = d->n ? (double)correct / d->n : 0.0;
    }
    free(pred);
    return rc;
}

int errmodel_evaluate(const packed_net *p, const errmodel *m, const dataset *d, int repeats, uint64_t seed,
                      int threads, fault_stats *out, double *acc) {
    memset(out, 0, sizeof *out);
    if (repeats < 1) return bn_error(BN_EARG, "errmodel: repeats must be >= 1 (got %d)", repeats);
    int rc = errmodel_check(p, m);
    if (rc) return rc;
    if (d->h != p->in_h || d->w != p->in_w || d->c != p->in_c)
        return bn_error(BN_EARG, "errmodel: data images are %dx%dx%d, the network expects %dx%dx%d", d->h, d->w,
                        d->c, p->in_h, p->in_w, p->in_c);
    if (repeats >= (1 << 24)) return bn_error(BN_EARG, "errmodel: %d repeats exceed 2^24", repeats);
    double *a = bn_malloc(sizeof(double) * (size_t)repeats);
    int n = d->n > 0 ? d->n : 1, driver = errmodel_needs_driver(p, m), weights = errmodel_has_weights(p, m);
    float *logits = bn_malloc(sizeof(float) * (size_t)n * p->classes);
    packed_net work;
    if (weights) packed_copy(&work, p); /* one copy, redrawn per repeat */
    const packed_net *use = weights ? &work : p;
    for (int r = 0; r < repeats; r++) {
        if (weights) errmodel_redraw_weights(&work, p, m, seed, r);
        if (d->n > 0) {
            if (driver) errmodel_drive(use, m, seed, r, logits, d->pixels, d->n, 0, threads);
            else packed_logits_with(use, packed_kernels_active(), logits, d->pixels, d->n, threads);
        }
        long correct = 0;
        for (int i = 0; i < d->n; i++) {
            const float *z = logits + (size_t)i * p->classes;
            int best = 0;
            for (int c = 1; c < p->classes; c++)
                if (z[c] > z[best]) best = c;
            correct += best == d->labels[i];
        }
        a[r] = d->n ? (double)correct / d->n : 0.0;
    }
    if (weights) packed_free(&work);
    fault_stats_of(a, repeats, out);
    if (acc) memcpy(acc, a, sizeof(double) * (size_t)repeats);
    free(a), free(logits);
    return BN_OK;
}

void errmodel_bench(const packed_net *p, const errmodel *m, const uint8_t *x, int n, int threads,
                    double *hooked_ips, double *fast_ips) {
    float *logits = bn_malloc(sizeof(float) * (size_t)(n > 0 ? n : 1) * p->classes);
    for (int pass = 0; pass < 2; pass++) {
        double t0 = omp_get_wtime(), t;
        long long done = 0;
        int rep = 0;
        do {
            if (pass == 0) errmodel_logits_at(p, m, 1, rep++ & 0xffff, logits, x, n, 0, threads);
            else packed_logits_with(p, packed_kernels_active(), logits, x, n, threads);
            done += n;
            t = omp_get_wtime() - t0;
        } while (t < 0.5);
        *(pass == 0 ? hooked_ips : fast_ips) = (double)done / t;
    }
    free(logits);
}
