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

#include "engine/chunk.h"
#include "engine/dmath.h"
#include "engine/err.h"
#include "engine/trace.h"

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

int32_t errmodel_product_errors(pcg32 *g, int32_t acc, int N, double p01, double p10, const double *pw01,
                                const double *pw10) {
    int P = (acc + N) / 2;
    int b1 = (int)errmodel_binomial(g, (uint32_t)P, p10, pw10);
    int b2 = (int)errmodel_binomial(g, (uint32_t)(N - P), p01, pw01);
    return acc + 2 * (b2 - b1);
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

/* ---- The hooked driver (trace_forward with chunk.c's chunked sums) ---- */

/* Read-only per-layer tables of one call, shared by the threads. */
typedef struct {
    double *pw01, *pw10;  /* (fan_in+1) (1 - x_p01)^k, (1 - x_p10)^k; NULL if that rate is 0 */
} errmodel_tables;

typedef struct {
    const packed_net *p;
    const errmodel *m;
    errmodel_tables t[NET_MAX_LAYERS];
    chunk_plan plan;      /* chunked layers (n = chunk) of p */
    uint64_t seed;
    int repeat;
} errmodel_run;

double *errmodel_pow_table(double prob, int n) {
    if (!(prob > 0.0) || prob > 0.5) return NULL;
    double *pw = bn_malloc(sizeof(double) * (size_t)(n + 1));
    for (int k = 0; k <= n; k++) pw[k] = dmath_powi(1.0 - prob, k);
    return pw;
}

static void errmodel_run_init(errmodel_run *run) {
    const packed_net *p = run->p;
    chunk_config cfg;
    memset(&cfg, 0, sizeof cfg);
    for (int l = 0; l < p->n_layers; l++) {
        const packed_layer *L = &p->layers[l];
        const errmodel_layer *E = &run->m->layer[l];
        errmodel_tables *T = &run->t[l];
        memset(T, 0, sizeof *T);
        if (L->first) continue;
        T->pw01 = errmodel_pow_table(E->x_p01, L->fan_in);
        T->pw10 = errmodel_pow_table(E->x_p10, L->fan_in);
        cfg.n[l] = E->chunk;
    }
    int rc = chunk_plan_create(&run->plan, p, &cfg);
    BN_ASSERT(rc == BN_OK); /* errmodel_check ran: no chunked first layer, chunk >= 0 */
}

static void errmodel_run_free(errmodel_run *run) {
    for (int l = 0; l < NET_MAX_LAYERS; l++) free(run->t[l].pw01), free(run->t[l].pw10);
    chunk_plan_free(&run->plan);
}

/* Per-thread state: the hooks' user. */
typedef struct {
    const errmodel_run *run;
    int64_t image;     /* current image */
    chunk_work w;      /* chunk_sums_all buffers */
    int32_t *s;        /* (max out_c * K) chunk sums of one position */
    int32_t *vals;     /* (max K) chunk values of one neuron */
    uint64_t *pre;     /* (in_h * in_w, out_cw) decided bits before pooling */
} errmodel_thread;

static void errmodel_thread_init(errmodel_thread *t, const errmodel_run *run) {
    memset(t, 0, sizeof *t);
    t->run = run;
    size_t smax = 1, kmax = 1, pre = 1;
    for (int l = 0; l < run->p->n_layers; l++) {
        const packed_layer *L = &run->p->layers[l];
        const chunk_layer *C = &run->plan.layers[l];
        size_t Q = L->kind == NET_CONV ? (size_t)L->in_h * L->in_w : 1;
        if (Q * L->out_cw > pre) pre = Q * L->out_cw;
        if (!C->n) continue;
        chunk_work_reserve(&t->w, C);
        if ((size_t)C->out_c * C->K > smax) smax = (size_t)C->out_c * C->K;
        if ((size_t)C->K > kmax) kmax = (size_t)C->K;
    }
    t->s = bn_malloc(sizeof(int32_t) * smax);
    t->vals = bn_malloc(sizeof(int32_t) * kmax);
    t->pre = bn_malloc(sizeof(uint64_t) * pre);
}

static void errmodel_thread_free(errmodel_thread *t) {
    chunk_work_free(&t->w);
    free(t->s), free(t->vals), free(t->pre);
}

/* Valid taps of conv output position (y, x) of an (H, W) map. */
int errmodel_valid_taps(int y, int x, int H, int W) {
    int ny = 3 - (y == 0) - (y == H - 1), nx = 3 - (x == 0) - (x == W - 1);
    if (H == 1) ny = 1;
    if (W == 1) nx = 1;
    return ny * nx;
}

/* Chunked accumulation of layer l (binary input in): acc (Q, np), and with
   decide_fn the decided bits pre (Q, out_cw). Chunk sums from chunk.c; the
   draws per position, neuron and chunk in that order. */
static void errmodel_chunked(errmodel_thread *t, int l, const packed_layer *L, const uint64_t *in, int32_t *acc,
                             pcg32 *gp, pcg32 *gc) {
    const errmodel_run *run = t->run;
    const errmodel_layer *E = &run->m->layer[l];
    const errmodel_tables *T = &run->t[l];
    const chunk_layer *C = &run->plan.layers[l];
    int nc = C->K, Q = L->kind == NET_CONV ? L->in_h * L->in_w : 1, has_x = E->x_p01 > 0.0 || E->x_p10 > 0.0;
    if (E->decide_fn) memset(t->pre, 0, sizeof(uint64_t) * (size_t)Q * L->out_cw);
    for (int q = 0; q < Q; q++) {
        chunk_gather(C, L, in, q, &t->w);
        chunk_sums_all(C, &t->w, t->s);
        const int32_t *vk = t->w.vk;
        for (int n = 0; n < L->np; n++) {
            if (n >= L->out_c) {
                acc[(size_t)q * L->np + n] = 0;
                continue;
            }
            const int32_t *sn = t->s + (size_t)n * nc;
            int32_t sum = 0;
            for (int k = 0; k < nc; k++) {
                int nv = vk[k], np = (sn[k] + nv) / 2;
                if (has_x) {
                    int b1 = (int)errmodel_binomial(gp, (uint32_t)np, E->x_p10, T->pw10);
                    int b2 = (int)errmodel_binomial(gp, (uint32_t)(nv - np), E->x_p01, T->pw01);
                    np += b2 - b1;
                }
                int32_t v = E->chunk_fn ? E->chunk_fn(E->user, l, n, k, nv, np, gc) : 2 * np - nv;
                t->vals[k] = v;
                sum += v;
            }
            acc[(size_t)q * L->np + n] = sum;
            if (E->decide_fn) {
                int inv = (int)((L->inv[n / 64] >> (n % 64)) & 1u);
                if (E->decide_fn(E->user, l, n, t->vals, nc, L->thr[n], inv, gc))
                    t->pre[(size_t)q * L->out_cw + n / 64] |= (uint64_t)1 << (n % 64);
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
        for (int n = 0; n < L->out_c; n++) a[n] = errmodel_product_errors(g, a[n], N, E->x_p01, E->x_p10, T->pw01, T->pw10);
    }
}

/* Activation flips on the output bits (P, out_cw) of hidden layer L. */
static void errmodel_flip_bits(const packed_layer *L, const errmodel_layer *E, uint64_t *bits, int P, pcg32 *g) {
    double pmax = E->a_p01 > E->a_p10 ? E->a_p01 : E->a_p10;
    if (!(pmax > 0.0)) return;
    int64_t nbits = (int64_t)P * L->out_c;
    double lq = pmax >= 1.0 ? -INFINITY : dmath_log1p(-pmax);
    int64_t i = -1;
    for (;;) {
        double gap = 0.0;
        if (lq != -INFINITY) {
            double u = 1.0 - pcg32_double(g); /* (0, 1] */
            gap = floor(dmath_log(u) / lq);
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

/* trace_layer_hook: chunked sums and product errors of a binary layer. */
static int errmodel_layer_hook(void *user, int l, const packed_layer *L, const uint64_t *in, int32_t *acc) {
    errmodel_thread *t = user;
    const errmodel_run *run = t->run;
    const errmodel_layer *E = &run->m->layer[l];
    int chunked = E->chunk > 0, products = E->x_p01 > 0.0 || E->x_p10 > 0.0;
    if (!chunked && !products) return 0;
    uint64_t key = errmodel_key(run->repeat, t->image, l);
    pcg32 gp, gc;
    rng_keyed(&gp, run->seed, key, ERRMODEL_RNG_PRODUCTS);
    if (chunked) {
        rng_keyed(&gc, run->seed, key, ERRMODEL_RNG_CHUNKS);
        errmodel_chunked(t, l, L, in, acc, &gp, &gc);
        return 1;
    }
    const packed_kernels *k = packed_kernels_active();
    if (L->kind == NET_CONV) k->bconv(acc, in, L, 0, L->in_h);
    else k->bdense(acc, in, L, 1);
    errmodel_products(run, l, acc, L->kind == NET_CONV ? L->in_h * L->in_w : 1, &gp);
    return 1;
}

/* trace_bits_hook: decided bits (pooled as the max of the decisions before
   the invert bit, then the invert bit), then activation flips. */
static void errmodel_bits_hook(void *user, int l, const packed_layer *L, uint64_t *out, int P) {
    errmodel_thread *t = user;
    const errmodel_run *run = t->run;
    const errmodel_layer *E = &run->m->layer[l];
    if (E->decide_fn && E->chunk > 0) {
        int cw = L->out_cw;
        if (L->pool) {
            int W = L->in_w;
            for (int oy = 0; oy < L->out_h; oy++)
                for (int ox = 0; ox < L->out_w; ox++)
                    for (int j = 0; j < cw; j++) {
                        const uint64_t *r0 = t->pre + ((size_t)(2 * oy) * W + 2 * ox) * cw + j;
                        const uint64_t *r1 = r0 + (size_t)W * cw;
                        uint64_t inv = L->inv[j]; /* un-invert, OR (the max of +-1), invert again */
                        out[((size_t)oy * L->out_w + ox) * cw + j] =
                            ((r0[0] ^ inv) | (r0[cw] ^ inv) | (r1[0] ^ inv) | (r1[cw] ^ inv)) ^ inv;
                    }
        } else {
            memcpy(out, t->pre, sizeof(uint64_t) * (size_t)P * cw);
        }
    }
    if (E->a_p01 > 0.0 || E->a_p10 > 0.0) {
        pcg32 ga;
        rng_keyed(&ga, run->seed, errmodel_key(run->repeat, t->image, l), ERRMODEL_RNG_ACTIVATIONS);
        errmodel_flip_bits(L, E, out, P, &ga);
    }
}

static void errmodel_drive(const packed_net *p, const errmodel *m, uint64_t seed, int repeat, float *logits,
                           const uint8_t *x, int B, int first_image, int threads) {
    errmodel_run run;
    memset(&run, 0, sizeof run);
    run.p = p, run.m = m, run.seed = seed, run.repeat = repeat;
    errmodel_run_init(&run);
    size_t img_bytes = (size_t)p->in_h * p->in_w * p->in_c;
    int nt = threads > 0 ? threads : omp_get_max_threads();
#pragma omp parallel num_threads(nt)
    {
        errmodel_thread t;
        errmodel_thread_init(&t, &run);
        trace_scratch s;
        trace_scratch_init(&s, p);
        trace_hooks h = {errmodel_layer_hook, NULL, errmodel_bits_hook, &t};
        int32_t *z = bn_malloc(sizeof(int32_t) * (size_t)p->classes);
#pragma omp for schedule(dynamic, 16)
        for (int i = 0; i < B; i++) {
            t.image = (int64_t)first_image + i;
            trace_forward(p, &s, x + (size_t)i * img_bytes, &h, z);
            for (int c = 0; c < p->classes; c++) logits[(size_t)i * p->classes + c] = p->scale * (float)z[c];
        }
        free(z);
        trace_scratch_free(&s);
        errmodel_thread_free(&t);
    }
    errmodel_run_free(&run);
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
