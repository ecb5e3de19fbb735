/*
** Evaluator "approxpop": the network on approximate popcount hardware
** (evaluators/approxpop.h): every binary hidden layer after the first counts its
** XNOR outputs with a majority-gate adder tree. Reports the accuracy, the
** per-layer decision flip rate against the exact popcount (the abstraction
** used for approximation-aware training, bnas train --act-p), the error
** distribution of the tree for each layer's fan_in (sampled, bits 1 w.p. 1/2),
** and the full adders replaced.
**   params: k_exact  list of exact top levels (default [0]); the first is the headline
**           samples  inputs per fan_in for the error distribution (default 20000)
**           split val|test, images (default 1000: the bit-level simulation is slow), threads
**   metrics: approxpop.exact_acc, approxpop.acc, approxpop.acc@K, approxpop.flip (mean over
**            layers), approxpop.flip.lL@K, approxpop.err_mean.lL, approxpop.err_sd.lL,
**            approxpop.err_p.lL (P(error != 0)), approxpop.fa_approx, approxpop.fa_exact,
**            approxpop.ha (per network, one tree per neuron), approxpop.saved_frac
** The model (the adder tree, its error distribution, the network evaluation
** on the chunked-sum engine) is declared in evaluators/approxpop.h.
*/
#include "evaluators/approxpop.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/chunk.h"
#include "engine/err.h"
#include "evaluators/evaluator.h"

#define APPROXPOP_STATS 8 /* int64 per thread row */

int approxpop_levels(int n) {
    if (n <= 1) return 0;
    int m = (n + 2) / 3, L = 1;
    while (m > 1) m = (m + 1) / 2, L++;
    return L;
}

/* Adder counts of one walk (NULL: not counted). */
typedef struct {
    int64_t fa_approx, fa_exact, ha;
} approxpop_cnt;

/* One full adder, approximate unless exact. */
static void approxpop_cell(int a, int b, int c, int exact, int *s, int *co, approxpop_cnt *k) {
    if (exact) {
        *s = a ^ b ^ c, *co = (a & b) | (a & c) | (b & c);
        if (k) k->fa_exact++;
    } else {
        approxpop_fa(a, b, c, s, co);
        if (k) k->fa_approx++;
    }
}

/* Ripple-carry sum of a (width wa) and b (width wb) with the cell rule of the
   file comment; returns the width of *r. */
static int approxpop_add(uint32_t a, int wa, uint32_t b, int wb, int exact, uint32_t *r, approxpop_cnt *k) {
    int w = wa > wb ? wa : wb, carry = 0, live = 0;
    uint32_t out = 0;
    for (int i = 0; i < w; i++) {
        int in[3], nin = 0;
        if (i < wa) in[nin++] = (int)((a >> i) & 1u);
        if (i < wb) in[nin++] = (int)((b >> i) & 1u);
        if (live) in[nin++] = carry;
        int s;
        if (nin == 3) {
            approxpop_cell(in[0], in[1], in[2], exact, &s, &carry, k);
            live = 1;
        } else if (nin == 2) {
            s = in[0] ^ in[1], carry = in[0] & in[1], live = 1;
            if (k) k->ha++;
        } else {
            s = in[0], carry = 0, live = 0;
        }
        out |= (uint32_t)s << i;
    }
    if (live) out |= (uint32_t)carry << w, w++;
    *r = out;
    return w;
}

/* The tree on x (n bits); counts adders into k if not NULL. */
static int approxpop_tree(const uint8_t *x, int n, int k_exact, approxpop_cnt *k, uint32_t *v, int *wd) {
    if (n <= 0) return 0;
    if (n == 1) return x[0];
    int L = approxpop_levels(n), m = 0;
    int exact1 = 1 > L - k_exact;
    for (int i = 0; i < n; i += 3) {
        int left = n - i;
        if (left >= 3) {
            int s, c;
            approxpop_cell(x[i], x[i + 1], x[i + 2], exact1, &s, &c, k);
            v[m] = (uint32_t)(s | c << 1), wd[m] = 2;
        } else if (left == 2) {
            v[m] = (uint32_t)((x[i] ^ x[i + 1]) | (x[i] & x[i + 1]) << 1), wd[m] = 2;
            if (k) k->ha++;
        } else {
            v[m] = x[i], wd[m] = 1;
        }
        m++;
    }
    for (int level = 2; m > 1; level++) {
        int exact = level > L - k_exact, j = 0;
        for (int i = 0; i < m; i += 2, j++) {
            if (i + 1 < m) wd[j] = approxpop_add(v[i], wd[i], v[i + 1], wd[i + 1], exact, &v[j], k);
            else v[j] = v[i], wd[j] = wd[i];
        }
        m = j;
    }
    return (int)v[0];
}

int approxpop_count(const uint8_t *x, int n, int k_exact) {
    int m = (n + 2) / 3 + 1;
    uint32_t *v = bn_malloc(sizeof(uint32_t) * (size_t)m);
    int *wd = bn_malloc(sizeof(int) * (size_t)m);
    int c = approxpop_tree(x, n, k_exact, NULL, v, wd);
    free(v), free(wd);
    return c;
}

void approxpop_adders(int n, int k_exact, int64_t *fa_approx, int64_t *fa_exact, int64_t *ha) {
    uint8_t *x = bn_calloc((size_t)n + 1, 1);
    int m = (n + 2) / 3 + 1;
    uint32_t *v = bn_malloc(sizeof(uint32_t) * (size_t)m);
    int *wd = bn_malloc(sizeof(int) * (size_t)m);
    approxpop_cnt k = {0, 0, 0};
    approxpop_tree(x, n, k_exact, &k, v, wd);
    *fa_approx = k.fa_approx, *fa_exact = k.fa_exact, *ha = k.ha;
    free(x), free(v), free(wd);
}

void approxpop_error_hist(int n, int k_exact, int64_t samples, pcg32 *rng, int64_t *hist) {
    memset(hist, 0, sizeof(int64_t) * (size_t)(2 * n + 1));
    uint8_t *x = bn_calloc((size_t)n + 1, 1);
    int m = (n + 2) / 3 + 1;
    uint32_t *v = bn_malloc(sizeof(uint32_t) * (size_t)m);
    int *wd = bn_malloc(sizeof(int) * (size_t)m);
    int exhaustive = samples == 0 && n <= 24;
    int64_t total = exhaustive ? (int64_t)1 << n : samples;
    for (int64_t t = 0; t < total; t++) {
        int pc = 0;
        for (int i = 0; i < n; i++) {
            x[i] = exhaustive ? (uint8_t)((t >> i) & 1) : (uint8_t)(pcg32_next(rng) & 1u);
            pc += x[i];
        }
        int c = approxpop_tree(x, n, k_exact, NULL, v, wd);
        hist[c - pc + n]++;
    }
    free(x), free(v), free(wd);
}

/* ---- Network evaluation (chunks of one product: the bits themselves) ---- */

typedef struct {
    int k_exact;
    int64_t *stats; /* (threads, APPROXPOP_STATS): [0] decisions, [1] flipped */
    uint8_t *bits;  /* (threads, max fan_in) scratch */
    uint32_t *v;    /* (threads, max fan_in / 3 + 2) */
    int *wd;        /* same */
    int maxn;       /* max fan_in */
} approxpop_user;

static int32_t approxpop_fn(void *user, int l, const packed_layer *L, int j, const int32_t *s, const int32_t *len,
                            int K, int thread, uint64_t site) {
    (void)l, (void)len, (void)site;
    approxpop_user *u = user;
    int m = u->maxn / 3 + 2;
    uint8_t *x = u->bits + (size_t)thread * u->maxn;
    int nv = 0, exact = 0;
    for (int k = 0; k < K; k++)
        if (s[k]) x[nv++] = (uint8_t)(s[k] > 0), exact += s[k];
    int c = approxpop_tree(x, nv, u->k_exact, NULL, u->v + (size_t)thread * m, u->wd + (size_t)thread * m);
    int32_t acc = 2 * c - nv;
    if (!L->last) {
        int64_t *st = u->stats + (size_t)thread * APPROXPOP_STATS;
        int32_t T = L->thr[j];
        st[0]++;
        st[1] += (acc >= T) != (exact >= T);
    }
    return acc;
}

int approxpop_accuracy(const packed_net *p, int k_exact, const dataset *d, int threads, double *acc, double *flip) {
    int nt = chunk_threads(threads), maxn = 1;
    for (int l = 0; l < p->n_layers; l++) maxn = p->layers[l].fan_in > maxn ? p->layers[l].fan_in : maxn;
    chunk_config cfg;
    memset(&cfg, 0, sizeof cfg);
    approxpop_user u[NET_MAX_LAYERS];
    memset(u, 0, sizeof u);
    int m = maxn / 3 + 2;
    uint8_t *bits = bn_malloc((size_t)nt * maxn);
    uint32_t *v = bn_malloc(sizeof(uint32_t) * (size_t)nt * m);
    int *wd = bn_malloc(sizeof(int) * (size_t)nt * m);
    for (int l = 0; l < p->n_layers; l++) {
        flip[l] = 0;
        if (p->layers[l].first || p->layers[l].last) continue;
        u[l] = (approxpop_user){k_exact, bn_aligned_alloc(sizeof(int64_t) * (size_t)nt * APPROXPOP_STATS), bits, v, wd, maxn};
        cfg.n[l] = 1, cfg.fn[l] = approxpop_fn, cfg.user[l] = &u[l];
    }
    chunk_plan cp;
    int rc = chunk_plan_create(&cp, p, &cfg);
    if (!rc) {
        *acc = chunk_accuracy(&cp, d->pixels, d->labels, d->n, nt);
        chunk_plan_free(&cp);
    }
    for (int l = 0; l < p->n_layers; l++) {
        if (!u[l].stats) continue;
        int64_t tot = 0, fl = 0;
        for (int t = 0; t < nt; t++) tot += u[l].stats[t * APPROXPOP_STATS], fl += u[l].stats[t * APPROXPOP_STATS + 1];
        flip[l] = tot ? (double)fl / (double)tot : 0;
        free(u[l].stats);
    }
    free(bits), free(v), free(wd);
    return rc;
}

/* ---- The evaluator ---- */

static int approxpop_run(const eval_context *ctx, const eval_params *params, eval_metrics *out) {
    double ks[16], samples, th;
    static const double def_k[1] = {0};
    int nk, rc;
    dataset d;
    if ((rc = eval_split(ctx, params, "approxpop", 1000, &d)) ||
        (rc = eval_param_list(params, "k_exact", def_k, 1, ks, 16, &nk)) ||
        (rc = eval_param_double(params, "samples", 20000, &samples)) || (rc = eval_param_double(params, "threads", 0, &th)))
        return rc;
    if (nk < 1) return bn_error(BN_EARG, "approxpop: k_exact needs a value");
    packed_net p;
    if ((rc = packed_from_net(&p, ctx->n))) return rc;
    char name[EVAL_NAME_MAX];
    int *pred = bn_malloc(sizeof(int) * (size_t)d.n);
    packed_predict_threads(&p, pred, d.pixels, d.n, (int)th);
    int64_t ok = 0;
    for (int i = 0; i < d.n; i++) ok += pred[i] == d.labels[i];
    free(pred);
    rc = eval_metrics_add(out, "approxpop.exact_acc", (double)ok / d.n);
    for (int i = 0; i < nk && !rc; i++) {
        double acc, flip[NET_MAX_LAYERS];
        if ((rc = approxpop_accuracy(&p, (int)ks[i], &d, (int)th, &acc, flip))) break;
        double fm = 0;
        int nl = 0;
        for (int l = 0; l < p.n_layers; l++) {
            if (p.layers[l].first || p.layers[l].last) continue;
            fm += flip[l], nl++;
            snprintf(name, sizeof name, "approxpop.flip.l%d@%g", l, ks[i]);
            if (!rc) rc = eval_metrics_add(out, name, flip[l]);
        }
        if (i == 0 && !rc) rc = eval_metrics_add(out, "approxpop.acc", acc);
        if (i == 0 && !rc) rc = eval_metrics_add(out, "approxpop.flip", nl ? fm / nl : 0);
        snprintf(name, sizeof name, "approxpop.acc@%g", ks[i]);
        if (!rc) rc = eval_metrics_add(out, name, acc);
    }
    int64_t fa = 0, fe = 0, ha = 0;
    for (int l = 0; l < p.n_layers && !rc; l++) {
        const packed_layer *L = &p.layers[l];
        if (L->first || L->last) continue;
        int64_t a, e, h;
        approxpop_adders(L->fan_in, (int)ks[0], &a, &e, &h);
        fa += a * L->out_c, fe += e * L->out_c, ha += h * L->out_c;
        int64_t *hist = bn_calloc((size_t)2 * L->fan_in + 1, sizeof(int64_t));
        pcg32 g;
        rng_keyed(&g, ctx->seed, (uint64_t)l, RNG_INJECT);
        approxpop_error_hist(L->fan_in, (int)ks[0], (int64_t)samples, &g, hist);
        double s1 = 0, s2 = 0, tot = 0, nz = 0;
        for (int e2 = -L->fan_in; e2 <= L->fan_in; e2++) {
            double c = (double)hist[e2 + L->fan_in];
            s1 += c * e2, s2 += c * e2 * e2, tot += c, nz += e2 ? c : 0;
        }
        free(hist);
        double mean = s1 / tot, sd = sqrt(s2 / tot - mean * mean);
        snprintf(name, sizeof name, "approxpop.err_mean.l%d", l);
        rc = eval_metrics_add(out, name, mean);
        snprintf(name, sizeof name, "approxpop.err_sd.l%d", l);
        if (!rc) rc = eval_metrics_add(out, name, sd);
        snprintf(name, sizeof name, "approxpop.err_p.l%d", l);
        if (!rc) rc = eval_metrics_add(out, name, nz / tot);
    }
    if (!rc) rc = eval_metrics_add(out, "approxpop.fa_approx", (double)fa);
    if (!rc) rc = eval_metrics_add(out, "approxpop.fa_exact", (double)fe);
    if (!rc) rc = eval_metrics_add(out, "approxpop.ha", (double)ha);
    if (!rc) rc = eval_metrics_add(out, "approxpop.saved_frac", fa + fe ? (double)fa / (double)(fa + fe) : 0);
    packed_free(&p);
    return rc;
}

static const char *const approxpop_params[] = {"k_exact", "samples", "split", "images", "threads", NULL};

const evaluator eval_approxpop = {
    "approxpop",
    "approximate (majority-gate) popcount hardware: approxpop.acc, per-layer decision flip rates (the training "
    "abstraction), the tree's error distribution, full adders replaced",
    approxpop_params, approxpop_run, NULL};
