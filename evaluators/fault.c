/*
** Evaluator "fault": accuracy under random bit errors injected into the packed
** model (engine/fault.h), mean over repeats with a 95% t-interval.
**   params: ber      symmetric rate of the headline metrics (default 0.01)
**           p01,p10  asymmetric rates instead of ber (both required)
**           rates    list of further symmetric rates, e.g. [0.005, 0.05, 0.1]
**           repeats  error patterns per rate (default 5)
**           targets  weights (default), thresholds, activations; comma separated
**           layer    inject into this layer only (default: all)
**           seed     seed of the error patterns (default: the context's seed)
**           split    val (default) or test;  images: first N images of the split
**   metrics: fault.acc, fault.sd, fault.ci_lo, fault.ci_hi  at ber (or p01/p10)
**            fault.acc@R, fault.sd@R  for every R in rates (R printed with %g)
*/
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/err.h"
#include "engine/fault.h"
#include "evaluators/evaluator.h"

#define FAULT_EVAL_MAX_RATES 32


static int fault_targets(const eval_params *params, int *t) {
    const char *s = eval_param_get(params, "targets");
    memset(t, 0, sizeof(int) * FAULT_TARGETS);
    if (!s) { t[FAULT_WEIGHTS] = 1; return BN_OK; }
    static const char *names[FAULT_TARGETS] = {"weights", "thresholds", "activations"};
    while (*s) {
        while (*s == ' ' || *s == '[' || *s == ',' || *s == ']') s++;
        if (!*s) break;
        size_t len = strcspn(s, " ,]");
        int ok = 0;
        for (int k = 0; k < FAULT_TARGETS; k++)
            if (len == strlen(names[k]) && !strncmp(s, names[k], len)) t[k] = 1, ok = 1;
        if (!ok) return bn_error(BN_EARG, "fault: unknown target '%.*s' (weights, thresholds, activations)", (int)len, s);
        s += len;
    }
    return BN_OK;
}

static void fault_fill(fault_model *m, const int *t, int layer, double p01, double p10) {
    fault_model_zero(m);
    for (int k = 0; k < FAULT_TARGETS; k++)
        if (t[k])
            for (int l = 0; l < NET_MAX_LAYERS; l++)
                if (layer < 0 || l == layer) m->p01[k][l] = p01, m->p10[k][l] = p10;
}

static int fault_run(const eval_context *ctx, const eval_params *params, eval_metrics *out) {
    dataset d;
    int rc = eval_split(ctx, params, "fault", 0, &d);
    if (rc) return rc;
    double ber, p01, p10, repeats, seedd, layerd, rates[FAULT_EVAL_MAX_RATES];
    static const double no_rates[1] = {0}; /* empty default list (non-NULL for memcpy) */
    int n_rates, t[FAULT_TARGETS];
    if ((rc = eval_param_double(params, "ber", 0.01, &ber)) || (rc = eval_param_double(params, "p01", -1, &p01)) ||
        (rc = eval_param_double(params, "p10", -1, &p10)) || (rc = eval_param_double(params, "repeats", 5, &repeats)) ||
        (rc = eval_param_double(params, "seed", (double)ctx->seed, &seedd)) ||
        (rc = eval_param_double(params, "layer", -1, &layerd)) ||
        (rc = eval_param_list(params, "rates", no_rates, 0, rates, FAULT_EVAL_MAX_RATES, &n_rates)) ||
        (rc = fault_targets(params, t)))
        return rc;
    if ((p01 >= 0) != (p10 >= 0)) return bn_error(BN_EARG, "fault: p01 and p10 go together");
    if (p01 < 0) p01 = p10 = ber;
    if (repeats < 1 || repeats != floor(repeats)) return bn_error(BN_EARG, "fault: repeats must be a positive integer");
    if (layerd >= ctx->n->n_layers) return bn_error(BN_EARG, "fault: layer %g: the network has %d layers", layerd, ctx->n->n_layers);
    uint64_t seed = eval_param_get(params, "seed") ? (uint64_t)seedd : ctx->seed;
    fault_ctx c;
    rc = fault_ctx_create(&c, ctx->n);
    if (rc) return rc;
    fault_model m;
    fault_stats s;
    fault_fill(&m, t, (int)layerd, p01, p10);
    rc = fault_ctx_evaluate(&c, &d, &m, (int)repeats, seed, 0, &s, NULL);
    if (!rc) rc = eval_metrics_add(out, "fault.acc", s.mean);
    if (!rc) rc = eval_metrics_add(out, "fault.sd", s.sd);
    if (!rc) rc = eval_metrics_add(out, "fault.ci_lo", s.ci_lo);
    if (!rc) rc = eval_metrics_add(out, "fault.ci_hi", s.ci_hi);
    for (int i = 0; !rc && i < n_rates; i++) {
        fault_fill(&m, t, (int)layerd, rates[i], rates[i]);
        rc = fault_ctx_evaluate(&c, &d, &m, (int)repeats, seed, 0, &s, NULL);
        char name[EVAL_NAME_MAX];
        snprintf(name, sizeof name, "fault.acc@%g", rates[i]);
        if (!rc) rc = eval_metrics_add(out, name, s.mean);
        snprintf(name, sizeof name, "fault.sd@%g", rates[i]);
        if (!rc) rc = eval_metrics_add(out, name, s.sd);
    }
    fault_ctx_free(&c);
    return rc;
}

static const char *const fault_params[] = {"ber", "p01", "p10", "rates", "repeats", "targets",
                                           "layer", "seed", "split", "images", NULL};

const evaluator eval_fault = {
    "fault",
    "accuracy under random bit errors on the packed model: fault.acc (mean over repeats at ber), fault.sd, "
    "fault.ci_lo/hi (95% t-interval), fault.acc@R for every R in rates",
    fault_params, fault_run, NULL};
