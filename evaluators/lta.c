/*
** Evaluator "lta": accuracy of the network when every hidden layer with
** binary inputs decides by local thresholding (evaluators/lta.h) on crossbar
** columns of n XNOR cells, and the hardware cost of the LTA interface against
** the analog/digital-path state of the art, from the authors' calculator
** applied to the network's real layer shapes.
**   params: n         list of column sizes (default [64]); the first is the headline
**           floor_cycles, tail_zero, ignore_gamma   1: the reference kernel's quirks (default 0)
**           m         crossbar columns of the cost model (default 64)
**           split     val (default) or test;  images: first N images of the split
**           threads   OpenMP threads (default all)
**   metrics: lta.acc (at the first n), lta.global_acc (global thresholds), lta.agree (fraction of
**            LTA decisions equal to the global one), lta.acc@N and lta.agree@N for every N;
**            cost at the first n: lta.area_x, lta.energy_x, lta.latency_x (SOTA / LTA),
**            lta.mu_area_x, lta.mu_energy_x, lta.mu_latency_x (SOTA / LTA-MU),
**            lta.sota_area, lta.sota_energy, lta.sota_latency, lta.area, lta.energy, lta.latency
**            (um^2, pJ, ps per image), lta.analog_frac (decisions on the pure analog path)
** The model (LTA on the chunked-sum engine, LTA-aware training and its
** perturbation hook, the hardware cost model) is declared in evaluators/lta.h.
*/
#include "evaluators/lta.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/err.h"
#include "evaluators/evaluator.h"

#define LTA_STATS 8 /* int64 per thread row (one cache line) */

/* Local thresholds tau (K) and the vote count M of a neuron with threshold T. */
static void lta_thresholds(const lta_options *o, int fan_in, int K, const int32_t *len, int32_t T, int32_t *tau,
                           int *M) {
    int n = o->n, cycles = fan_in / n > 0 ? fan_in / n : 1;
    for (int k = 0; k < K; k++) {
        int tail = len[k] < n;
        if (tail && o->tail_zero) tau[k] = 0;
        else if (!tail && o->floor_cycles) tau[k] = (int32_t)chunk_round_div(T, cycles);
        else tau[k] = (int32_t)chunk_round_div((int64_t)T * len[k], fan_in);
    }
    *M = o->floor_cycles ? cycles : K;
}

static int lta_eligible(const packed_layer *L, const lta_options *o, int l) {
    if (L->first || L->last) return 0;
    return o->layers == 0 || ((o->layers >> l) & 1u);
}

int lta_create(lta_net *a, const packed_net *src, const lta_options *opt, int threads) {
    memset(a, 0, sizeof *a);
    if (opt->n < 1) return bn_error(BN_EARG, "lta: n = %d must be >= 1", opt->n);
    a->opt = *opt;
    int rc = packed_copy(&a->p, src);
    if (rc) return rc;
    chunk_config cfg;
    memset(&cfg, 0, sizeof cfg);
    int nt = chunk_threads(threads), any = 0;
    for (int l = 0; l < a->p.n_layers; l++) {
        packed_layer *L = &a->p.layers[l];
        if (!lta_eligible(L, opt, l)) continue;
        any = 1;
        if (opt->ignore_gamma) memset(L->inv, 0, sizeof(uint64_t) * (size_t)((L->np + 63) / 64));
        cfg.n[l] = opt->n;
        cfg.pos[l] = lta_combine_all;
        cfg.user[l] = &a->layers[l];
    }
    if (!any) {
        packed_free(&a->p);
        return bn_error(BN_EARG, "lta: the network has no hidden layer with binary inputs");
    }
    if ((rc = chunk_plan_create(&a->plan, &a->p, &cfg))) {
        packed_free(&a->p);
        return rc;
    }
    for (int l = 0; l < a->p.n_layers; l++) {
        if (!cfg.n[l]) continue;
        const packed_layer *L = &a->p.layers[l];
        lta_layer *A = &a->layers[l];
        A->K = a->plan.layers[l].K;
        A->tau = bn_malloc(sizeof(int32_t) * (size_t)L->out_c * A->K);
        for (int j = 0; j < L->out_c; j++)
            lta_thresholds(opt, L->fan_in, A->K, a->plan.layers[l].len, L->thr[j], A->tau + (size_t)j * A->K, &A->M);
        A->threads = nt;
        A->stats = bn_aligned_alloc(sizeof(int64_t) * (size_t)nt * LTA_STATS); /* a cache line per thread */
        A->out_c = L->out_c;
        A->buf = bn_aligned_alloc(sizeof(int32_t) * (size_t)nt * 2 * ((L->out_c + 15) / 16 * 16));
        A->vote = chunk_vote_active();
    }
    return BN_OK;
}

void lta_free(lta_net *a) {
    for (int l = 0; l < NET_MAX_LAYERS; l++) free(a->layers[l].tau), free(a->layers[l].stats), free(a->layers[l].buf);
    chunk_plan_free(&a->plan);
    packed_free(&a->p);
    memset(a, 0, sizeof *a);
}

int32_t lta_combine(void *user, int l, const packed_layer *L, int j, const int32_t *s, const int32_t *len, int K,
                    int thread, uint64_t site) {
    (void)l, (void)len, (void)site;
    const lta_layer *A = user;
    int32_t T = L->thr[j], sum = 0;
    const int32_t *tau = A->tau + (size_t)j * K;
    int votes = 0;
    for (int k = 0; k < K; k++) sum += s[k], votes += s[k] >= tau[k];
    if (T == INT32_MIN || T == INT32_MAX) return sum; /* constant neuron */
    int d = votes > A->M / 2;
    int64_t *st = A->stats + (size_t)thread * LTA_STATS;
    st[0]++;
    st[1] += d == (sum >= T);
    return d ? T : T - 1;
}

void lta_combine_all(void *user, int l, const packed_layer *L, const int32_t *s, const int32_t *len, int K,
                     int32_t *acc, int thread, uint64_t site) {
    (void)l, (void)len, (void)site;
    const lta_layer *A = user;
    int stride = (A->out_c + 15) / 16 * 16;
    int32_t *votes = A->buf + (size_t)thread * 2 * stride, *sums = votes + stride;
    A->vote(votes, sums, s, A->tau, K, L->out_c);
    int64_t dec = 0, agree = 0;
    for (int j = 0; j < L->out_c; j++) {
        int32_t T = L->thr[j];
        if (T == INT32_MIN || T == INT32_MAX) { /* constant neuron */
            acc[j] = sums[j];
            continue;
        }
        int d = votes[j] > A->M / 2;
        dec++;
        agree += d == (sums[j] >= T);
        acc[j] = d ? T : T - 1;
    }
    int64_t *st = A->stats + (size_t)thread * LTA_STATS;
    st[0] += dec, st[1] += agree;
}

double lta_accuracy(lta_net *a, const dataset *d, int threads, double *agree) {
    int nt = chunk_threads(threads);
    for (int l = 0; l < NET_MAX_LAYERS; l++)
        if (a->layers[l].stats) {
            BN_ASSERT(nt <= a->layers[l].threads);
            memset(a->layers[l].stats, 0, sizeof(int64_t) * (size_t)a->layers[l].threads * LTA_STATS);
        }
    double acc = chunk_accuracy(&a->plan, d->pixels, d->labels, d->n, nt);
    if (agree) {
        int64_t tot = 0, ok = 0;
        for (int l = 0; l < NET_MAX_LAYERS; l++)
            for (int t = 0; a->layers[l].stats && t < a->layers[l].threads; t++)
                tot += a->layers[l].stats[t * LTA_STATS], ok += a->layers[l].stats[t * LTA_STATS + 1];
        *agree = tot ? (double)ok / (double)tot : 1.0;
    }
    return acc;
}

int lta_train_layer(const net_layer *L, const lta_options *opt, const float *in, const float *wb, int B, float *a) {
    int N = L->fan_in, OC = L->out_c, fw = (N + 63) / 64;
    int rows = L->kind == NET_CONV ? B * L->in_h * L->in_w : B;
    int32_t lo, hi, *T = bn_malloc(sizeof(int32_t) * (size_t)OC);
    uint8_t *inv = bn_malloc((size_t)OC), *d = bn_malloc((size_t)rows * OC);
    packed_acc_range(L, &lo, &hi);
    int rc = BN_OK;
    for (int j = 0; j < OC && !rc; j++) {
        int iv = 0;
        rc = packed_fold_threshold(L, j, lo, hi, &T[j], &iv);
        inv[j] = (uint8_t)(opt->ignore_gamma ? 0 : iv);
    }
    uint64_t *wf = bn_calloc((size_t)OC * fw + 1, sizeof(uint64_t));
    chunk_layer C;
    memset(&C, 0, sizeof C);
    if (rc) goto done;
    for (int j = 0; j < OC; j++)
        for (int i = 0; i < N; i++)
            if (wb[(size_t)j * N + i] > 0.0f) wf[(size_t)j * fw + i / 64] |= (uint64_t)1 << (i % 64);
    if ((rc = chunk_layer_init(&C, opt->n, N, OC, wf))) goto done;
    int32_t *tau = bn_malloc(sizeof(int32_t) * (size_t)OC * C.K);
    int M = 1;
    for (int j = 0; j < OC; j++) lta_thresholds(opt, N, C.K, C.len, T[j], tau + (size_t)j * C.K, &M);
#pragma omp parallel
    {
        chunk_work cw;
        memset(&cw, 0, sizeof cw);
        chunk_work_reserve(&cw, &C);
        int32_t *s = bn_malloc(sizeof(int32_t) * (size_t)OC * C.K);
#pragma omp for schedule(static)
        for (int r = 0; r < rows; r++) {
            const float *xr = in + (size_t)r * N;
            memset(cw.x, 0, sizeof(uint64_t) * (size_t)fw);
            memset(cw.v, 0, sizeof(uint64_t) * (size_t)fw);
            for (int i = 0; i < N; i++) {
                cw.x[i / 64] |= (uint64_t)(xr[i] > 0.0f) << (i % 64);
                cw.v[i / 64] |= (uint64_t)(xr[i] != 0.0f) << (i % 64);
            }
            chunk_sums_all(&C, &cw, s);
            for (int j = 0; j < OC; j++) {
                uint8_t dj;
                if (T[j] == INT32_MIN) dj = 1;
                else if (T[j] == INT32_MAX) dj = 0;
                else {
                    const int32_t *sj = s + (size_t)j * C.K, *tj = tau + (size_t)j * C.K;
                    int votes = 0;
                    for (int k = 0; k < C.K; k++) votes += sj[k] >= tj[k];
                    dj = (uint8_t)(votes > M / 2);
                }
                d[(size_t)r * OC + j] = dj;
            }
        }
        free(s);
        chunk_work_free(&cw);
    }
    free(tau);
    if (L->pool) {
        int H = L->in_h, W = L->in_w, OH = L->out_h, OW = L->out_w;
        for (int b = 0; b < B; b++)
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++)
                    for (int j = 0; j < OC; j++) {
                        size_t r0 = ((size_t)b * H + 2 * oy) * W + 2 * ox;
                        int v = d[r0 * OC + j] | d[(r0 + 1) * OC + j] | d[(r0 + W) * OC + j] | d[(r0 + W + 1) * OC + j];
                        a[(((size_t)b * OH + oy) * OW + ox) * OC + j] = (v ^ inv[j]) ? 1.0f : -1.0f;
                    }
    } else {
        for (size_t i = 0; i < (size_t)rows * OC; i++) a[i] = (d[i] ^ inv[i % OC]) ? 1.0f : -1.0f;
    }
done:
    chunk_layer_free(&C);
    free(T), free(inv), free(d), free(wf);
    return rc;
}

static int lta_training_act(const perturb *h, const perturb_site *s, float *a) {
    const train_recipe *r = h->user;
    if (s->L->first) return BN_OK;
    lta_options o = {r->lta_n, 0, 0, 0, 0};
    return lta_train_layer(s->L, &o, s->in, s->wb, s->B, a);
}

int lta_add_training(perturb_set *ps, const train_recipe *r) {
    if (r->lta_n < 0) return bn_error(BN_EARG, "train: lta_n %d must be >= 0", r->lta_n);
    if (r->lta_n == 0) return BN_OK;
    perturb h = {NULL, NULL, NULL, lta_training_act, r};
    return perturb_add(ps, &h);
}

/* ---- Hardware cost model ---- */

/* Constants of resource_calculator.py: area um^2, energy pJ, latency ps. */
#define LTA_L_XNOR 704.0
#define LTA_E_COL 1.32266666667
#define LTA_A_ACOMP 78.0
#define LTA_A_ADC 2000.0
#define LTA_E_ACOMP 0.163
#define LTA_E_ADC 2.55
#define LTA_L_ACOMP 74.0
#define LTA_L_ADC 1000.0
#define LTA_L_DIG 250.0 /* accumulator, register and digital comparator latency */

static int64_t lta_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void lta_cost_model(const lta_shape *sh, int nl, int m, int n, lta_costs *o) {
    memset(o, 0, sizeof *o);
    int64_t mn = (int64_t)m * n, max_beta = 0;
    for (int i = 0; i < nl; i++) max_beta = sh[i].beta > max_beta ? sh[i].beta : max_beta;
    int v7 = max_beta > mn;
    o->vgg7_set = v7;
    /* SOTA digital-path constants, synthesised for beta = 3136 (VGG3) or 8192 (VGG7) */
    double sa_acc = v7 ? 1014.77 : 419.2, sa_reg = v7 ? 488.78 : 183.12, sa_dc = v7 ? 677.77 : 251.2;
    double se_acc = v7 ? 1.18 : 0.40, se_reg = v7 ? 0.78 : 0.34, se_dc = v7 ? 0.67 : 0.26;
    /* LTA digital fallback constants (VGG7 set only) */
    const double la_acc = 84.37, la_reg = 41.13, la_dc = 39.49, le_acc = 0.168, le_reg = 0.112, le_dc = 0.053;
    double delta0 = nl > 0 ? (double)sh[0].delta : 0;
    int64_t mult_max = 0;
    for (int i = 0; i < nl; i++) {
        int64_t mu = mn / sh[i].beta;
        if (v7 && mu == 0) mu = 1;
        mult_max = mu > mult_max ? mu : mult_max;
    }
    o->sota.area = m * (LTA_A_ACOMP + LTA_A_ADC + sa_acc + delta0 * sa_reg + sa_dc);
    double dig = v7 ? LTA_A_ADC + la_acc + la_reg * delta0 + la_dc : 0.0;
    o->lta.area = (m + 1) * LTA_A_ACOMP + dig;
    o->lta_mu.area = m * LTA_A_ACOMP + (double)mult_max * LTA_A_ACOMP + dig;
    double analog = 0, all = 0;
    for (int i = 0; i < nl; i++) {
        double a = (double)sh[i].alpha, b = (double)sh[i].beta, d = (double)sh[i].delta;
        (void)b;
        int64_t ca = lta_ceil_div(sh[i].alpha, m);
        /* SOTA */
        double cb = d * (double)ca * (double)lta_ceil_div(sh[i].beta, n);
        o->sota.energy += cb * LTA_E_COL * m + cb * m * (LTA_E_ADC + se_acc + se_reg * d) + (double)ca * m * d * se_dc;
        o->sota.latency += cb * LTA_L_XNOR + cb * (LTA_L_ADC + 2 * LTA_L_DIG) + (double)ca * d * LTA_L_DIG;
        /* LTA and LTA-MU */
        int64_t mu = mn / sh[i].beta;
        if (mu == 0) mu = 1;
        double cl = d * a * (double)lta_ceil_div(sh[i].beta, mn);
        double cm = (double)lta_ceil_div((int64_t)(d * a) * lta_ceil_div(sh[i].beta, mn), mu);
        all += a * d;
        if (sh[i].beta <= mn) {
            analog += a * d;
            double cols = (double)lta_ceil_div(sh[i].beta, v7 ? n : m);
            o->lta.energy += cl * LTA_E_COL * cols + (m + 1) * cl * LTA_E_ACOMP;
            o->lta.latency += cl * LTA_L_XNOR + 2 * cl * LTA_L_ACOMP;
            o->lta_mu.energy += cm * LTA_E_COL * cols * (double)mu + m * cm * LTA_E_ACOMP + (double)mu * cm * LTA_E_ACOMP;
            o->lta_mu.latency += cm * LTA_L_XNOR + (v7 ? (double)mu : 1.0) * 2 * cm * LTA_L_ACOMP;
        } else {
            o->lta.energy += cl * LTA_E_COL * m + cl * (m * LTA_E_ACOMP + LTA_E_ADC + le_reg * d + le_acc) + a * d * le_dc;
            o->lta.latency += cl * LTA_L_XNOR + cl * (LTA_L_ACOMP + LTA_L_ADC + 2 * LTA_L_DIG) + a * d * LTA_L_DIG;
            o->lta_mu.energy += cm * LTA_E_COL * m + cm * (m * LTA_E_ACOMP + LTA_E_ADC + le_reg * d + le_acc) + a * d * le_dc;
            o->lta_mu.latency += cm * LTA_L_XNOR + cm * (LTA_L_ACOMP + LTA_L_ADC + 2 * LTA_L_DIG) + a * d * LTA_L_DIG;
        }
    }
    o->analog_frac = all > 0 ? analog / all : 0.0;
}

int lta_shapes_of(const packed_net *p, lta_shape *sh) {
    int k = 0;
    for (int l = 0; l < p->n_layers; l++) {
        const packed_layer *L = &p->layers[l];
        if (L->first || L->last) continue;
        sh[k].alpha = L->out_c;
        sh[k].beta = L->fan_in;
        sh[k].delta = L->kind == NET_CONV ? (int64_t)L->in_h * L->in_w : 1;
        k++;
    }
    return k;
}

/* ---- The evaluator ---- */

#define LTA_EVAL_MAX_N 32

static int lta_run(const eval_context *ctx, const eval_params *params, eval_metrics *out) {
    dataset d;
    int rc = eval_split(ctx, params, "lta", 0, &d);
    if (rc) return rc;
    static const double def_n[1] = {64};
    double ns[LTA_EVAL_MAX_N], fl, tz, ig, m, th;
    int count;
    if ((rc = eval_param_list(params, "n", def_n, 1, ns, LTA_EVAL_MAX_N, &count)) ||
        (rc = eval_param_double(params, "floor_cycles", 0, &fl)) ||
        (rc = eval_param_double(params, "tail_zero", 0, &tz)) ||
        (rc = eval_param_double(params, "ignore_gamma", 0, &ig)) || (rc = eval_param_double(params, "m", 64, &m)) ||
        (rc = eval_param_double(params, "threads", 0, &th)))
        return rc;
    if (count < 1) return bn_error(BN_EARG, "lta: n must list at least one column size");
    if (m < 1) return bn_error(BN_EARG, "lta: m must be >= 1");
    packed_net p;
    if ((rc = packed_from_net(&p, ctx->n))) return rc;
    int threads = (int)th;
    int *pred = bn_malloc(sizeof(int) * (size_t)d.n);
    packed_predict_threads(&p, pred, d.pixels, d.n, threads);
    int64_t ok = 0;
    for (int i = 0; i < d.n; i++) ok += pred[i] == d.labels[i];
    free(pred);
    double global = (double)ok / d.n;
    char name[EVAL_NAME_MAX];
    for (int i = 0; i < count && !rc; i++) {
        if (ns[i] < 1 || ns[i] != floor(ns[i])) {
            rc = bn_error(BN_EARG, "lta: n = %g must be a positive integer", ns[i]);
            break;
        }
        lta_options o = {(int)ns[i], fl != 0, tz != 0, ig != 0, 0};
        lta_net a;
        if ((rc = lta_create(&a, &p, &o, threads))) break;
        double agree, acc = lta_accuracy(&a, &d, threads, &agree);
        lta_free(&a);
        if (i == 0) {
            if (!rc) rc = eval_metrics_add(out, "lta.acc", acc);
            if (!rc) rc = eval_metrics_add(out, "lta.global_acc", global);
            if (!rc) rc = eval_metrics_add(out, "lta.agree", agree);
        }
        snprintf(name, sizeof name, "lta.acc@%g", ns[i]);
        if (!rc) rc = eval_metrics_add(out, name, acc);
        snprintf(name, sizeof name, "lta.agree@%g", ns[i]);
        if (!rc) rc = eval_metrics_add(out, name, agree);
    }
    if (!rc) {
        lta_shape sh[NET_MAX_LAYERS];
        int nl = lta_shapes_of(&p, sh);
        lta_costs c;
        lta_cost_model(sh, nl, (int)m, (int)ns[0], &c);
        struct { const char *k; double v; } mv[] = {
            {"lta.area_x", c.sota.area / c.lta.area},          {"lta.energy_x", c.sota.energy / c.lta.energy},
            {"lta.latency_x", c.sota.latency / c.lta.latency}, {"lta.mu_area_x", c.sota.area / c.lta_mu.area},
            {"lta.mu_energy_x", c.sota.energy / c.lta_mu.energy},
            {"lta.mu_latency_x", c.sota.latency / c.lta_mu.latency},
            {"lta.sota_area", c.sota.area}, {"lta.sota_energy", c.sota.energy}, {"lta.sota_latency", c.sota.latency},
            {"lta.area", c.lta.area}, {"lta.energy", c.lta.energy}, {"lta.latency", c.lta.latency},
            {"lta.analog_frac", c.analog_frac},
        };
        for (size_t k = 0; k < sizeof mv / sizeof *mv && !rc; k++) rc = eval_metrics_add(out, mv[k].k, mv[k].v);
    }
    packed_free(&p);
    return rc;
}

static const char *const lta_params[] = {"n", "floor_cycles", "tail_zero", "ignore_gamma", "m", "split", "images",
                                         "threads", NULL};

const evaluator eval_lta = {
    "lta",
    "local thresholding approximation on crossbar columns of n cells: lta.acc, lta.acc@N, lta.agree, and the "
    "hardware cost factors against the AP/DP interface (lta.area_x, lta.energy_x, lta.latency_x)",
    lta_params, lta_run, NULL};
