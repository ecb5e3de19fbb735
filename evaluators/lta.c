/*
** Evaluator "lta": accuracy of the network when every hidden layer with
** binary inputs decides by local thresholding (engine/lta.h) on crossbar
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
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/err.h"
#include "engine/lta.h"
#include "evaluators/evaluator.h"

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
