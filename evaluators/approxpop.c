/*
** Evaluator "approxpop": the network on approximate popcount hardware
** (engine/approxpop.h): every binary hidden layer after the first counts its
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
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/approxpop.h"
#include "engine/err.h"
#include "evaluators/evaluator.h"

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
