/*
** Fault injection on the packed model (engine/fault.h): nested sparse flip
** draws, applying them to the packed and the float network, and accuracy over
** repeats with confidence intervals.
*/
#include "engine/fault.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dmath.h"
#include "engine/err.h"
#include "engine/rng.h"
#include "engine/trace.h"

/* ---- Nested sparse uniforms ---- */

static double fault_band_lo(int k) { return k == FAULT_BANDS - 1 ? 0.0 : ldexp(1.0, -(k + 1)); }
static double fault_band_hi(int k) { return ldexp(1.0, -k); }

/* log(1 - q_k) of band k's visiting probability q_k (-inf when q_k = 1). */
static double fault_band_log1mq(int k) {
    double a = ldexp(1.0, -k);
    double q = k == FAULT_BANDS - 1 ? a : (a / 2) / (1 - a / 2); /* = 1 - (1 - a) / (1 - a/2) */
    return q >= 1.0 ? -INFINITY : dmath_log1p(-q);
}

/* Failures before the next visit: Geometric(q) with log(1 - q) = lq. */
static uint64_t fault_gap(pcg32 *g, double lq) {
    if (lq == -INFINITY) return 0;
    double u = 1.0 - pcg32_double(g); /* (0, 1] */
    double x = dmath_log(u) / lq;
    return x >= 1.8e19 ? UINT64_MAX : (uint64_t)x;
}

static void fault_band_rng(pcg32 *g, uint64_t seed, uint64_t key, int k) {
    rng_keyed(g, seed, key, (uint64_t)RNG_INJECT + 256u * (uint64_t)(k + 1));
}

/* Lowest band needed for rates up to pmax (FAULT_BANDS if pmax <= 0). */
static int fault_first_band(double pmax) {
    if (!(pmax > 0.0)) return FAULT_BANDS;
    int k = 0;
    while (k < FAULT_BANDS - 1 && !(fault_band_lo(k) < pmax)) k++;
    return k;
}

void fault_draw_mask(uint64_t *mask, const uint64_t *src, size_t rows, int kw, const uint64_t *valid,
                     double p01, double p10, uint64_t seed, uint64_t key, uint64_t *seen, size_t *n01,
                     size_t *n10) {
    size_t words = rows * (size_t)kw, nbits = words * 64, c01 = 0, c10 = 0;
    memset(mask, 0, sizeof(uint64_t) * words);
    int k0 = fault_first_band(p01 > p10 ? p01 : p10);
    if (k0 < FAULT_BANDS) memset(seen, 0, sizeof(uint64_t) * words);
    for (int k = FAULT_BANDS - 1; k >= k0; k--) {
        pcg32 g;
        fault_band_rng(&g, seed, key, k);
        double lo = fault_band_lo(k), width = fault_band_hi(k) - lo, lq = fault_band_log1mq(k);
        uint64_t pos = fault_gap(&g, lq);
        while (pos < nbits) {
            double u = lo + width * pcg32_double(&g);
            size_t w = (size_t)(pos >> 6);
            uint64_t b = (uint64_t)1 << (pos & 63);
            if (!(seen[w] & b)) {
                seen[w] |= b;
                if (!valid || (valid[w % (size_t)kw] & b)) {
                    if (src[w] & b) {
                        if (u < p10) mask[w] |= b, c10++;
                    } else {
                        if (u < p01) mask[w] |= b, c01++;
                    }
                }
            }
            uint64_t gap = fault_gap(&g, lq);
            if (gap >= nbits - pos) break;
            pos += gap + 1;
        }
    }
    if (n01) *n01 = c01;
    if (n10) *n10 = c10;
}

void fault_draw_mask_ref(uint64_t *mask, const uint64_t *src, size_t rows, int kw, const uint64_t *valid,
                         double p01, double p10, uint64_t seed, uint64_t key) {
    size_t words = rows * (size_t)kw, nbits = words * 64;
    double *u = bn_malloc(sizeof(double) * nbits);
    for (size_t j = 0; j < nbits; j++) u[j] = -1.0; /* not yet assigned */
    for (int k = FAULT_BANDS - 1; k >= 0; k--) {
        pcg32 g;
        fault_band_rng(&g, seed, key, k);
        double lo = fault_band_lo(k), width = fault_band_hi(k) - lo, lq = fault_band_log1mq(k);
        /* Visit the bits one by one: bit j is visited when the running gap reaches it. */
        uint64_t next = fault_gap(&g, lq);
        for (size_t j = 0; j < nbits; j++) {
            if (next != j) continue;
            double v = lo + width * pcg32_double(&g);
            if (u[j] < 0.0) u[j] = v;
            uint64_t gap = fault_gap(&g, lq);
            next = gap >= nbits - j ? UINT64_MAX : j + 1 + gap;
        }
    }
    for (size_t w = 0; w < words; w++) {
        mask[w] = 0;
        for (int b = 0; b < 64; b++) {
            uint64_t bit = (uint64_t)1 << b;
            if (valid && !(valid[w % (size_t)kw] & bit)) continue;
            BN_ASSERT(u[w * 64 + b] >= 0.0 && u[w * 64 + b] < 1.0);
            if (u[w * 64 + b] < ((src[w] & bit) ? p10 : p01)) mask[w] |= bit;
        }
    }
    free(u);
}

/* ---- Error models ---- */

void fault_model_zero(fault_model *m) { memset(m, 0, sizeof *m); }

void fault_model_set(fault_model *m, int t, double p01, double p10) {
    BN_ASSERT(t >= 0 && t < FAULT_TARGETS);
    for (int l = 0; l < NET_MAX_LAYERS; l++) m->p01[t][l] = p01, m->p10[t][l] = p10;
}

int fault_model_check(const fault_model *m) {
    static const char *names[FAULT_TARGETS] = {"weights", "thresholds", "activations"};
    for (int t = 0; t < FAULT_TARGETS; t++)
        for (int l = 0; l < NET_MAX_LAYERS; l++) {
            double a = m->p01[t][l], b = m->p10[t][l];
            if (!(a >= 0.0 && a <= 1.0) || !(b >= 0.0 && b <= 1.0))
                return bn_error(BN_EARG, "fault: %s rates of layer %d (p01 %g, p10 %g) are not in [0, 1]", names[t],
                                l, a, b);
        }
    return BN_OK;
}

static int fault_model_has(const fault_model *m, int t, int n_layers) {
    for (int l = 0; l < n_layers; l++)
        if (m->p01[t][l] > 0.0 || m->p10[t][l] > 0.0) return 1;
    return 0;
}

/* ---- Injection context ---- */

static uint64_t fault_key(int repeat, int target, int layer) {
    return ((uint64_t)repeat * FAULT_TARGETS + (uint64_t)target) * NET_MAX_LAYERS + (uint64_t)layer;
}

int fault_ctx_create(fault_ctx *c, const net *n) {
    memset(c, 0, sizeof *c);
    int rc = packed_from_net(&c->clean, n);
    if (rc) return rc;
    rc = packed_from_net(&c->work, n);
    if (rc) {
        packed_free(&c->clean);
        return rc;
    }
    size_t seen = 1;
    for (int l = 0; l < c->clean.n_layers; l++) {
        const packed_layer *L = &c->clean.layers[l];
        size_t words = (size_t)L->out_c * L->kw;
        c->wmask[l] = bn_calloc(words, sizeof(uint64_t));
        if (words > seen) seen = words;
        if (!L->last) c->tmask[l] = bn_calloc((size_t)L->out_c, sizeof(uint64_t));
    }
    c->seen = bn_malloc(sizeof(uint64_t) * seen);
    return BN_OK;
}

static void fault_slots_free(fault_ctx *c);

void fault_ctx_free(fault_ctx *c) {
    fault_slots_free(c);
    for (int l = 0; l < NET_MAX_LAYERS; l++) free(c->wmask[l]), free(c->tmask[l]);
    free(c->seen);
    packed_free(&c->clean);
    packed_free(&c->work);
    memset(c, 0, sizeof *c);
}

/* Draws the weight and threshold flips of (seed, repeat) under m for the
   layers of clean into wmask/tmask (per layer, as in fault_ctx); seen is
   scratch; flips of stored 0 and 1 bits go to f01, f10 (FAULT_TARGETS each). */
static void fault_draw_into(const packed_net *clean, uint64_t *const *wmask, uint64_t *const *tmask, uint64_t *seen,
                            size_t *f01, size_t *f10, const fault_model *m, uint64_t seed, int repeat) {
    for (int t = 0; t < FAULT_TARGETS; t++) f01[t] = f10[t] = 0;
    static const uint64_t low32 = 0xffffffffu;
    for (int l = 0; l < clean->n_layers; l++) {
        const packed_layer *L = &clean->layers[l];
        size_t a = 0, b = 0;
        fault_draw_mask(wmask[l], L->w, (size_t)L->out_c, L->kw, L->wvalid, m->p01[FAULT_WEIGHTS][l],
                        m->p10[FAULT_WEIGHTS][l], seed, fault_key(repeat, FAULT_WEIGHTS, l), seen, &a, &b);
        f01[FAULT_WEIGHTS] += a, f10[FAULT_WEIGHTS] += b;
        if (L->last) continue;
        double t01 = m->p01[FAULT_THRESHOLDS][l], t10 = m->p10[FAULT_THRESHOLDS][l];
        if (t01 > 0.0 || t10 > 0.0) {
            /* One row per threshold: its two's-complement bits in the low 32 bits of a word. */
            uint64_t *tmp = bn_malloc(sizeof(uint64_t) * 2 * (size_t)L->out_c); /* (out_c) source, (out_c) seen */
            for (int i = 0; i < L->out_c; i++) tmp[i] = (uint32_t)L->thr[i];
            fault_draw_mask(tmask[l], tmp, (size_t)L->out_c, 1, &low32, t01, t10, seed,
                            fault_key(repeat, FAULT_THRESHOLDS, l), tmp + L->out_c, &a, &b);
            free(tmp);
            f01[FAULT_THRESHOLDS] += a, f10[FAULT_THRESHOLDS] += b;
        } else {
            memset(tmask[l], 0, sizeof(uint64_t) * (size_t)L->out_c);
        }
    }
}

void fault_ctx_draw(fault_ctx *c, const fault_model *m, uint64_t seed, int repeat) {
    double t0 = omp_get_wtime();
    fault_draw_into(&c->clean, c->wmask, c->tmask, c->seen, c->flips01, c->flips10, m, seed, repeat);
    c->draw_seconds = omp_get_wtime() - t0;
}

void fault_ctx_apply(fault_ctx *c) {
    for (int l = 0; l < c->clean.n_layers; l++) {
        const packed_layer *C = &c->clean.layers[l];
        packed_layer *W = &c->work.layers[l];
        size_t words = (size_t)C->out_c * C->kw;
        const uint64_t *m = c->wmask[l];
        int differs = 0, had = 0;
        for (size_t i = 0; i < words; i++) {
            uint64_t v = C->w[i] ^ m[i];
            had |= W->w[i] != C->w[i];
            differs |= v != C->w[i];
            W->w[i] = v;
        }
        if (differs || had) packed_layer_sync(W);
        if (!C->last)
            for (int i = 0; i < C->out_c; i++) W->thr[i] = (int32_t)((uint32_t)C->thr[i] ^ (uint32_t)c->tmask[l][i]);
    }
}

void fault_apply_to_net(const fault_ctx *c, net *n) {
    for (int l = 0; l < c->clean.n_layers; l++) {
        const packed_layer *L = &c->clean.layers[l];
        net_layer *N = &n->layers[l];
        BN_ASSERT(N->fan_in == L->fan_in && N->out_c == L->out_c);
        for (int o = 0; o < L->out_c; o++) {
            const uint64_t *m = c->wmask[l] + (size_t)o * L->kw;
            for (int j = 0; j < L->kw; j++) {
                uint64_t bits = m[j];
                while (bits) {
                    int b = __builtin_ctzll(bits);
                    bits &= bits - 1;
                    int i; /* the float path's fan_in index of (word j, bit b) */
                    if (L->first) i = j * 64 + b;
                    else i = (j / L->in_cw) * L->in_c + (j % L->in_cw) * 64 + b;
                    BN_ASSERT(i < L->fan_in);
                    float *w = &N->w[(size_t)o * N->fan_in + i];
                    *w = *w == 0.0f ? 1e-30f : -*w;
                }
            }
        }
    }
}

/* ---- Evaluation ---- */

/* Activation-flip state of one thread for one image. */
typedef struct {
    const fault_model *m;
    uint64_t seed;
    uint64_t key_base;  /* 2^63 | repeat << 36 | image << 8 */
    uint64_t *mask;     /* (max P * out_cw) */
    uint64_t *seen;     /* (max P * out_cw) */
    const uint64_t *const *avalid; /* per layer: (out_cw) valid output bits */
    size_t n01, n10;    /* activation flips of 0 and 1 bits drawn by this thread */
} fault_act;

static void fault_act_hook(void *user, int l, const packed_layer *L, uint64_t *bits, int P) {
    fault_act *a = user;
    double p01 = a->m->p01[FAULT_ACTIVATIONS][l], p10 = a->m->p10[FAULT_ACTIVATIONS][l];
    if (!(p01 > 0.0 || p10 > 0.0)) return;
    size_t words = (size_t)P * L->out_cw, n01, n10;
    fault_draw_mask(a->mask, bits, (size_t)P, L->out_cw, a->avalid[l], p01, p10, a->seed, a->key_base | (uint64_t)l,
                    a->seen, &n01, &n10);
    a->n01 += n01, a->n10 += n10;
    for (size_t i = 0; i < words; i++) bits[i] ^= a->mask[i];
}

void fault_ctx_predict(fault_ctx *c, const fault_model *m, uint64_t seed, int repeat, const dataset *d,
                       int threads, int *pred) {
    const packed_net *p = &c->work;
    c->flips01[FAULT_ACTIVATIONS] = c->flips10[FAULT_ACTIVATIONS] = 0;
    if (!fault_model_has(m, FAULT_ACTIVATIONS, p->n_layers - 1)) {
        packed_predict_threads(p, pred, d->pixels, d->n, threads);
        return;
    }
    uint64_t *avalid[NET_MAX_LAYERS] = {0};
    size_t maxw = 1;
    for (int l = 0; l < p->n_layers - 1; l++) {
        const packed_layer *L = &p->layers[l];
        avalid[l] = bn_calloc((size_t)L->out_cw, sizeof(uint64_t));
        for (int i = 0; i < L->out_c; i++) avalid[l][i / 64] |= (uint64_t)1 << (i % 64);
        size_t w = (size_t)L->out_h * L->out_w * L->out_cw;
        if (w > maxw) maxw = w;
    }
    size_t img_bytes = (size_t)d->h * d->w * d->c;
    int nt = threads > 0 ? threads : omp_get_max_threads();
#pragma omp parallel num_threads(nt)
    {
        trace_scratch s;
        trace_scratch_init(&s, p);
        fault_act a = {m, seed, 0, bn_malloc(sizeof(uint64_t) * maxw), bn_malloc(sizeof(uint64_t) * maxw),
                       (const uint64_t *const *)avalid, 0, 0};
        trace_hooks h = {NULL, NULL, fault_act_hook, &a};
        int32_t *z = bn_malloc(sizeof(int32_t) * (size_t)p->classes);
#pragma omp for schedule(dynamic, 32)
        for (int i = 0; i < d->n; i++) {
            a.key_base = (uint64_t)1 << 63 | (uint64_t)repeat << 36 | (uint64_t)i << 8;
            trace_forward(p, &s, d->pixels + (size_t)i * img_bytes, &h, z);
            int best = 0;
            for (int k = 1; k < p->classes; k++)
                if (p->scale * (float)z[k] > p->scale * (float)z[best]) best = k;
            pred[i] = best;
        }
        free(z), free(a.mask), free(a.seen);
        trace_scratch_free(&s);
#pragma omp critical
        {
            c->flips01[FAULT_ACTIVATIONS] += a.n01;
            c->flips10[FAULT_ACTIVATIONS] += a.n10;
        }
    }
    for (int l = 0; l < NET_MAX_LAYERS; l++) free(avalid[l]);
}

/* ---- Groups of repeats: the dense and the delta path ---- */

/* Per-repeat state of the delta path. */
typedef struct fault_slot {
    packed_net net;                  /* clean with this repeat's weight flips in layers >= 1 (synced) and threshold
                                        flips in every hidden layer; layer 0 keeps the clean bits and has no w8 */
    uint64_t *wmask[NET_MAX_LAYERS]; /* (out_c, kw) weight flip masks */
    uint64_t *tmask[NET_MAX_LAYERS]; /* (out_c) threshold flip masks; NULL for the classifier */
    uint64_t *seen;                  /* draw scratch, max over layers of out_c * kw words */
    fault_flips flips;               /* first-layer weight flips as lists */
    size_t flips01[FAULT_TARGETS];   /* weight and threshold flips of stored 0 bits */
    size_t flips10[FAULT_TARGETS];   /* of stored 1 bits */
} fault_slot;

static void fault_slots_free(fault_ctx *c) {
    for (int s = 0; s < c->n_slots; s++) {
        fault_slot *S = &c->slots[s];
        for (int l = 0; l < NET_MAX_LAYERS; l++) free(S->wmask[l]), free(S->tmask[l]);
        free(S->seen);
        fault_flips_free(&S->flips);
        packed_free(&S->net);
    }
    free(c->slots);
    c->slots = NULL, c->n_slots = 0;
}

/* Makes sure c has at least n slots. */
static void fault_slots_reserve(fault_ctx *c, int n) {
    if (c->n_slots >= n) return;
    fault_slots_free(c);
    c->slots = bn_calloc((size_t)n, sizeof(fault_slot));
    size_t seen = 1;
    for (int l = 0; l < c->clean.n_layers; l++) {
        size_t w = (size_t)c->clean.layers[l].out_c * c->clean.layers[l].kw;
        if (w > seen) seen = w;
    }
    for (int s = 0; s < n; s++) {
        fault_slot *S = &c->slots[s];
        packed_copy(&S->net, &c->clean);
        free(S->net.layers[0].w8); /* the delta path never runs the first layer's kernel */
        S->net.layers[0].w8 = NULL;
        for (int l = 0; l < c->clean.n_layers; l++) {
            const packed_layer *L = &c->clean.layers[l];
            S->wmask[l] = bn_calloc((size_t)L->out_c * L->kw, sizeof(uint64_t));
            if (!L->last) S->tmask[l] = bn_calloc((size_t)L->out_c, sizeof(uint64_t));
        }
        S->seen = bn_malloc(sizeof(uint64_t) * seen);
        fault_flips_init(&S->flips, c->clean.layers[0].out_c, c->clean.layers[0].fan_in);
    }
    c->n_slots = n;
}

/* Draws repeat `repeat` into slot S and applies it: flip lists of layer 0,
   flipped and synced weights of layers >= 1, flipped thresholds. */
static void fault_slot_draw(fault_ctx *c, fault_slot *S, const fault_model *m, uint64_t seed, int repeat) {
    fault_draw_into(&c->clean, S->wmask, S->tmask, S->seen, S->flips01, S->flips10, m, seed, repeat);
    const packed_layer *C0 = &c->clean.layers[0];
    fault_flips_build(&S->flips, S->wmask[0], C0->w, C0->kw);
    for (int l = 0; l < c->clean.n_layers; l++) {
        const packed_layer *C = &c->clean.layers[l];
        packed_layer *W = &S->net.layers[l];
        if (l > 0) {
            size_t words = (size_t)C->out_c * C->kw;
            for (size_t i = 0; i < words; i++) W->w[i] = C->w[i] ^ S->wmask[l][i];
            packed_layer_sync(W);
        }
        if (!C->last)
            for (int i = 0; i < C->out_c; i++) W->thr[i] = (int32_t)((uint32_t)C->thr[i] ^ (uint32_t)S->tmask[l][i]);
    }
}

/* 1 if the delta path applies to p: a dense first layer and a hidden layer. */
static int fault_delta_applies(const packed_net *p) {
    return p->n_layers >= 2 && p->layers[0].kind == NET_FC;
}

/* Whether AUTO takes the delta path for nr repeats of m, from estimated work
   per image and repeat in units of one vector instruction (calibrated on
   FC512-FC512 with AMX and AVX-512; either path is exact, this only picks the
   faster). The dense first layer costs fan_in * out_c / 256 in every repeat;
   the delta path pays it (plus transposing the block, ~20%) once per group,
   and per repeat 3 / 64 per expected flip and 9 / 64 per neuron. */
static int fault_delta_wins(const packed_net *p, const fault_model *m, int nr) {
    if (nr < 2 || !fault_delta_applies(p)) return 0;
    const packed_layer *L = &p->layers[0];
    double ones = 0, total = (double)L->out_c * L->fan_in;
    for (size_t i = 0; i < (size_t)L->out_c * L->kw; i++) ones += __builtin_popcountll(L->w[i]);
    double flips = m->p01[FAULT_WEIGHTS][0] * (total - ones) + m->p10[FAULT_WEIGHTS][0] * ones;
    double dense = total / 256.0, delta = (3.0 * flips + 9.0 * L->out_c) / 64.0;
    return 1.2 * dense + nr * delta < nr * dense;
}

/* Per-thread scratch of the delta path. */
typedef struct {
    int16_t *xT;      /* (2 * fan_in, FAULT_DELTA_B) pixels of the block, pixel-major, then negated */
    int32_t *clean;   /* (out_c, FAULT_DELTA_B) clean first-layer accumulators, neuron-major */
    uint8_t *xb;      /* (FAULT_DELTA_B, k4) pixel rows for the clean first layer */
    int32_t *acc;     /* (FAULT_DELTA_B, max np) accumulators */
    uint64_t *act[2]; /* (FAULT_DELTA_B, max out_cw) activation bits, ping-pong */
    uint64_t *tmp;    /* (ceil(out_c/64) * 64) neuron masks of fault_delta_bits */
    uint64_t *amask;  /* (max out_cw) activation flip mask of one image */
    uint64_t *aseen;  /* (max out_cw) its draw scratch */
    size_t n01, n10;  /* activation flips drawn by this thread */
} fault_delta_scratch;

static void fault_delta_scratch_init(fault_delta_scratch *s, const packed_net *p) {
    const packed_layer *L0 = &p->layers[0];
    size_t np = 16, cw = 1;
    for (int l = 0; l < p->n_layers; l++) {
        if ((size_t)p->layers[l].np > np) np = (size_t)p->layers[l].np;
        if ((size_t)p->layers[l].out_cw > cw) cw = (size_t)p->layers[l].out_cw;
    }
    s->xT = bn_aligned_alloc(sizeof(int16_t) * 2 * (size_t)L0->fan_in * FAULT_DELTA_B);
    s->clean = bn_aligned_alloc(sizeof(int32_t) * (size_t)L0->out_c * FAULT_DELTA_B);
    s->xb = bn_aligned_alloc((size_t)FAULT_DELTA_B * L0->k4);
    s->acc = bn_aligned_alloc(sizeof(int32_t) * FAULT_DELTA_B * np);
    s->act[0] = bn_aligned_alloc(sizeof(uint64_t) * FAULT_DELTA_B * cw);
    s->act[1] = bn_aligned_alloc(sizeof(uint64_t) * FAULT_DELTA_B * cw);
    s->tmp = bn_malloc(sizeof(uint64_t) * (size_t)L0->out_cw * 64);
    s->amask = bn_malloc(sizeof(uint64_t) * cw);
    s->aseen = bn_malloc(sizeof(uint64_t) * cw);
    s->n01 = s->n10 = 0;
}

static void fault_delta_scratch_free(fault_delta_scratch *s) {
    free(s->xT), free(s->clean), free(s->xb), free(s->acc), free(s->act[0]), free(s->act[1]);
    free(s->tmp), free(s->amask), free(s->aseen);
}

/* Activation flips of hidden layer l for the nb image rows bits (nb, L->out_cw)
   of images i0.. in repeat `repeat`: the same draw as fault_act_hook. */
static void fault_delta_act(fault_delta_scratch *s, const fault_model *m, const packed_layer *L, int l,
                            const uint64_t *avalid, uint64_t seed, int repeat, int i0, int nb, uint64_t *bits) {
    double p01 = m->p01[FAULT_ACTIVATIONS][l], p10 = m->p10[FAULT_ACTIVATIONS][l];
    if (!(p01 > 0.0 || p10 > 0.0)) return;
    for (int b = 0; b < nb; b++) {
        uint64_t key = (uint64_t)1 << 63 | (uint64_t)repeat << 36 | (uint64_t)(i0 + b) << 8 | (uint64_t)l;
        uint64_t *row = bits + (size_t)b * L->out_cw;
        size_t n01, n10;
        fault_draw_mask(s->amask, row, 1, L->out_cw, avalid, p01, p10, seed, key, s->aseen, &n01, &n10);
        s->n01 += n01, s->n10 += n10;
        for (int w = 0; w < L->out_cw; w++) row[w] ^= s->amask[w];
    }
}

/* What the delta path evaluates: nr networks that differ from clean in their
   stored bits, with their first-layer differences as flip lists, and the
   activation errors to draw. */
typedef struct {
    const packed_net *clean;         /* clean network: the first layer's weights and every shape */
    const packed_net *const *nets;   /* (nr) networks; their layers >= 1 and all thresholds are used */
    const fault_flips *const *flips; /* (nr) first-layer weight flips of each network against clean */
    int nr;                          /* networks */
    const fault_model *m;            /* activation rates, or NULL for none */
    uint64_t seed;                   /* activation draws of network r are those of repeat r0 + r of seed */
    int r0;
} fault_delta_job;

/* The job's networks on the nb <= FAULT_DELTA_B images x (nb, pixels) with
   indices i0..: predictions into pred (nr, n) at columns i0... avalid: per
   hidden layer with activation rates its (out_cw) valid bits, else NULL. */
static void fault_delta_block(const fault_delta_job *job, fault_delta_scratch *s, const packed_kernels *k,
                              const uint64_t *const *avalid, const uint8_t *x, int i0, int nb, int n, int *pred) {
    const packed_layer *L0 = &job->clean->layers[0];
    const int fan_in = L0->fan_in, k4 = L0->k4, np = L0->np, out_c = L0->out_c;
    /* Pixel rows for the clean kernel; the transposed block and the clean
       accumulators, neuron-major (zero beyond nb). */
    for (int b = 0; b < nb; b++) {
        memcpy(s->xb + (size_t)b * k4, x + (size_t)b * fan_in, (size_t)fan_in);
        memset(s->xb + (size_t)b * k4 + fan_in, 0, (size_t)(k4 - fan_in));
    }
    int32_t *acc = s->acc;
    k->u8dense(acc, s->xb, k4, L0, nb);
    fault_delta_prepare(s->xT, s->clean, x, fan_in, nb, acc, np, out_c);
    for (int r = 0; r < job->nr; r++) {
        const packed_net *p = job->nets[r];
        int cur = 0, rep = job->r0 + r;
        fault_delta_bits(s->act[0], L0->out_cw, s->clean, s->xT, job->flips[r], p->layers[0].thr, p->layers[0].inv, s->tmp);
        if (avalid[0]) fault_delta_act(s, job->m, L0, 0, avalid[0], job->seed, rep, i0, nb, s->act[0]);
        for (int l = 1; l < p->n_layers; l++) {
            const packed_layer *L = &p->layers[l];
            if (L->last) {
                k->bdense(acc, s->act[cur], L, nb);
                for (int b = 0; b < nb; b++) {
                    const int32_t *z = acc + (size_t)b * L->np;
                    int best = 0;
                    for (int q = 1; q < p->classes; q++)
                        if (p->scale * (float)z[q] > p->scale * (float)z[best]) best = q;
                    pred[(size_t)r * n + i0 + b] = best;
                }
            } else {
                k->bdense_thresh(s->act[cur ^ 1], L->out_cw, s->act[cur], L, nb);
                cur ^= 1;
                if (avalid[l]) fault_delta_act(s, job->m, L, l, avalid[l], job->seed, rep, i0, nb, s->act[cur]);
            }
        }
    }
}

/* Runs the job over d, parallel over blocks of images. Returns the number of
   activation flips drawn. */
static size_t fault_delta_run(const fault_delta_job *job, const dataset *d, int threads, int *pred) {
    const packed_net *p = job->clean;
    uint64_t *avalid[NET_MAX_LAYERS] = {0};
    for (int l = 0; l < p->n_layers - 1 && job->m; l++) {
        if (!(job->m->p01[FAULT_ACTIVATIONS][l] > 0.0 || job->m->p10[FAULT_ACTIVATIONS][l] > 0.0)) continue;
        const packed_layer *L = &p->layers[l];
        avalid[l] = bn_calloc((size_t)L->out_cw, sizeof(uint64_t));
        for (int i = 0; i < L->out_c; i++) avalid[l][i / 64] |= (uint64_t)1 << (i % 64);
    }
    const packed_kernels *k = packed_kernels_active();
    size_t img = (size_t)d->h * d->w * d->c;
    int blocks = (d->n + FAULT_DELTA_B - 1) / FAULT_DELTA_B;
    int nt = threads > 0 ? threads : omp_get_max_threads();
    size_t flips = 0;
#pragma omp parallel num_threads(nt) reduction(+ : flips)
    {
        fault_delta_scratch s;
        fault_delta_scratch_init(&s, p);
#pragma omp for schedule(dynamic, 1)
        for (int b = 0; b < blocks; b++) {
            int i0 = b * FAULT_DELTA_B, nb = d->n - i0 < FAULT_DELTA_B ? d->n - i0 : FAULT_DELTA_B;
            fault_delta_block(job, &s, k, (const uint64_t *const *)avalid, d->pixels + (size_t)i0 * img, i0, nb,
                              d->n, pred);
        }
        flips += s.n01 + s.n10;
        fault_delta_scratch_free(&s);
    }
    for (int l = 0; l < NET_MAX_LAYERS; l++) free(avalid[l]);
    return flips;
}

/* BN_OK if the delta path can run clean on d, else BN_EARG naming why. */
static int fault_delta_check(const packed_net *clean, const dataset *d) {
    if (!fault_delta_applies(clean))
        return bn_error(BN_EARG, "fault: the delta path needs a dense first layer and a hidden layer");
    if (d->h != clean->in_h || d->w != clean->in_w || d->c != clean->in_c)
        return bn_error(BN_EARG, "fault: data images are %dx%dx%d, the network expects %dx%dx%d", d->h, d->w, d->c,
                        clean->in_h, clean->in_w, clean->in_c);
    return BN_OK;
}

int fault_delta_predict(const packed_net *clean, const packed_net *const *nets, int nr, const dataset *d,
                        int threads, int *pred) {
    int rc = fault_delta_check(clean, d);
    if (rc) return rc;
    if (nr < 1) return bn_error(BN_EARG, "fault: no networks to evaluate");
    const packed_layer *C0 = &clean->layers[0];
    for (int r = 0; r < nr; r++) {
        const packed_net *p = nets[r];
        if (p->n_layers != clean->n_layers || p->classes != clean->classes)
            return bn_error(BN_EARG, "fault: network %d does not have the clean network's shape", r);
        for (int l = 0; l < clean->n_layers; l++)
            if (p->layers[l].out_c != clean->layers[l].out_c || p->layers[l].kw != clean->layers[l].kw ||
                p->layers[l].kind != clean->layers[l].kind)
                return bn_error(BN_EARG, "fault: layer %d of network %d does not have the clean network's shape", l, r);
    }
    size_t words = (size_t)C0->out_c * C0->kw;
    uint64_t *diff = bn_malloc(sizeof(uint64_t) * words);
    fault_flips *f = bn_malloc(sizeof(fault_flips) * (size_t)nr);
    const fault_flips **fp = bn_malloc(sizeof(fault_flips *) * (size_t)nr);
    for (int r = 0; r < nr; r++) {
        const uint64_t *w = nets[r]->layers[0].w;
        for (size_t i = 0; i < words; i++) diff[i] = (w[i] ^ C0->w[i]) & C0->wvalid[i % (size_t)C0->kw];
        fault_flips_init(&f[r], C0->out_c, C0->fan_in);
        fault_flips_build(&f[r], diff, C0->w, C0->kw);
        fp[r] = &f[r];
    }
    fault_delta_job job = {clean, nets, fp, nr, NULL, 0, 0};
    fault_delta_run(&job, d, threads, pred);
    for (int r = 0; r < nr; r++) fault_flips_free(&f[r]);
    free(diff), free(f), free(fp);
    return BN_OK;
}

int fault_ctx_predict_repeats(fault_ctx *c, const dataset *d, const fault_model *m, uint64_t seed, int r0, int nr,
                              int threads, int *pred) {
    c->group_draw_seconds = 0, c->group_flips = 0;
    if (nr < 1 || r0 < 0) return bn_error(BN_EARG, "fault: repeats %d .. %d are not a valid range", r0, r0 + nr - 1);
    if (d->h != c->clean.in_h || d->w != c->clean.in_w || d->c != c->clean.in_c)
        return bn_error(BN_EARG, "fault: data images are %dx%dx%d, the network expects %dx%dx%d", d->h, d->w, d->c,
                        c->clean.in_h, c->clean.in_w, c->clean.in_c);
    int rc = fault_model_check(m);
    if (rc) return rc;
    int delta = c->path == FAULT_PATH_DELTA ? 1 : c->path == FAULT_PATH_DENSE ? 0 : fault_delta_wins(&c->clean, m, nr);
    if (delta && (rc = fault_delta_check(&c->clean, d)) != BN_OK) return rc;
    c->last_path = delta ? FAULT_PATH_DELTA : FAULT_PATH_DENSE;
    if (!delta) {
        for (int r = 0; r < nr; r++) {
            fault_ctx_draw(c, m, seed, r0 + r);
            c->group_draw_seconds += c->draw_seconds;
            fault_ctx_apply(c);
            fault_ctx_predict(c, m, seed, r0 + r, d, threads, pred + (size_t)r * d->n);
            for (int t = 0; t < FAULT_TARGETS; t++) c->group_flips += (double)(c->flips01[t] + c->flips10[t]);
        }
        return BN_OK;
    }
    fault_slots_reserve(c, nr);
    int nt = threads > 0 ? threads : omp_get_max_threads();
    double t0 = omp_get_wtime();
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int r = 0; r < nr; r++) fault_slot_draw(c, &c->slots[r], m, seed, r0 + r);
    c->group_draw_seconds = omp_get_wtime() - t0;
    const packed_net **nets = bn_malloc(sizeof(packed_net *) * (size_t)nr);
    const fault_flips **flips = bn_malloc(sizeof(fault_flips *) * (size_t)nr);
    for (int r = 0; r < nr; r++) {
        nets[r] = &c->slots[r].net, flips[r] = &c->slots[r].flips;
        for (int t = 0; t < FAULT_TARGETS; t++)
            c->group_flips += (double)(c->slots[r].flips01[t] + c->slots[r].flips10[t]);
    }
    /* c's masks and counts: the last repeat's (as after fault_ctx_draw). */
    const fault_slot *last = &c->slots[nr - 1];
    for (int l = 0; l < c->clean.n_layers; l++) {
        const packed_layer *L = &c->clean.layers[l];
        memcpy(c->wmask[l], last->wmask[l], sizeof(uint64_t) * (size_t)L->out_c * L->kw);
        if (!L->last) memcpy(c->tmask[l], last->tmask[l], sizeof(uint64_t) * (size_t)L->out_c);
    }
    memcpy(c->flips01, last->flips01, sizeof c->flips01);
    memcpy(c->flips10, last->flips10, sizeof c->flips10);
    fault_delta_job job = {&c->clean, nets, flips, nr, m, seed, r0};
    c->group_flips += (double)fault_delta_run(&job, d, threads, pred);
    free(nets), free(flips);
    return BN_OK;
}

double fault_t975(int df) {
    static const double t[31] = {0,      12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                 2.201,  2.179,  2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080,
                                 2.074,  2.069,  2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
    BN_ASSERT(df >= 1);
    if (df <= 30) return t[df];
    double z = 1.959963985, v = df; /* Cornish-Fisher expansion */
    return z + (z * z * z + z) / (4 * v) + (5 * z * z * z * z * z + 16 * z * z * z + 3 * z) / (96 * v * v);
}

void fault_stats_of(const double *acc, int R, fault_stats *s) {
    memset(s, 0, sizeof *s);
    s->repeats = R;
    if (R <= 0) return;
    double sum = 0, mn = acc[0], mx = acc[0];
    for (int r = 0; r < R; r++) {
        sum += acc[r];
        if (acc[r] < mn) mn = acc[r];
        if (acc[r] > mx) mx = acc[r];
    }
    s->mean = sum / R, s->min = mn, s->max = mx;
    double ss = 0;
    for (int r = 0; r < R; r++) ss += (acc[r] - s->mean) * (acc[r] - s->mean);
    s->sd = R > 1 ? sqrt(ss / (R - 1)) : 0.0;
    double h = R > 1 ? fault_t975(R - 1) * s->sd / sqrt((double)R) : 0.0;
    s->ci_lo = s->mean - h, s->ci_hi = s->mean + h;
}

int fault_ctx_evaluate(fault_ctx *c, const dataset *d, const fault_model *m, int repeats, uint64_t seed,
                       int threads, fault_stats *out, double *acc) {
    memset(out, 0, sizeof *out);
    if (repeats < 1) return bn_error(BN_EARG, "fault: repeats must be >= 1 (got %d)", repeats);
    int group = repeats < FAULT_GROUP ? repeats : FAULT_GROUP;
    double *a = bn_malloc(sizeof(double) * (size_t)repeats);
    int *pred = bn_malloc(sizeof(int) * (size_t)group * (size_t)(d->n > 0 ? d->n : 1));
    double flips = 0;
    int rc = BN_OK;
    for (int r0 = 0; r0 < repeats && !rc; r0 += group) {
        int nr = repeats - r0 < group ? repeats - r0 : group;
        rc = fault_ctx_predict_repeats(c, d, m, seed, r0, nr, threads, pred);
        for (int r = 0; r < nr && !rc; r++) {
            long correct = 0;
            const int *pr = pred + (size_t)r * d->n;
            for (int i = 0; i < d->n; i++) correct += pr[i] == d->labels[i];
            a[r0 + r] = d->n ? (double)correct / d->n : 0.0;
        }
        flips += c->group_flips;
    }
    if (!rc) {
        fault_stats_of(a, repeats, out);
        out->flips = flips / repeats;
        if (acc) memcpy(acc, a, sizeof(double) * (size_t)repeats);
    }
    free(a), free(pred);
    return rc;
}

int fault_evaluate(const net *n, const dataset *d, const fault_model *m, int repeats, uint64_t seed,
                   int threads, fault_stats *out, double *acc) {
    fault_ctx c;
    int rc = fault_ctx_create(&c, n);
    if (rc) return rc;
    rc = fault_ctx_evaluate(&c, d, m, repeats, seed, threads, out, acc);
    fault_ctx_free(&c);
    return rc;
}
