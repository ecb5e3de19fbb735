/*
** Evaluator "lim": XNOR logic-in-memory speed-up under an accuracy budget
** (evaluators/lim.h).
**   params: table      CSV of (speed-up %, p01, p10) rows, nominal first (default: the
**                      shipped ILLUSTRATIVE evaluators/data/lim_speedup.csv)
**           budget     allowed accuracy loss, fraction (default 0.01 = 1 point)
**           reference  validation accuracy the budget is held against (default: this
**                      model's clean validation accuracy; give the plain network's to
**                      judge a design-time (error-trained) network fairly)
**           repeats    error draws per accuracy (default 3)
**           seed       seed of the draws (default: the context's seed)
**           search_images  validation images of the searches (default: all)
**           split      val (default) or test: the reported accuracies;  images: first N of it
**   metrics: lim.clean_val, lim.clean       clean accuracy on validation and on split
**            lim.reference                  the reference accuracy of the budget
**            lim.uniform_speedup, lim.uniform_acc   fastest uniform setting within budget
**            lim.rt_speedup, lim.rt_acc     run-time per-layer search (XNOR-weighted speed-up)
**            lim.rt_layer<l>                speed-up chosen for binary layer l
**            lim.rt_evaluated               accuracies computed by the run-time search
*/
#include "evaluators/lim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/err.h"
#include "evaluators/evaluator.h"

int lim_table_default(fefet_table *tb) { return fefet_table_load_data(tb, "lim_speedup.csv"); }

/* A speed-up table: a nominal row and a faster one, no per-layer-type columns. */
static int lim_table_check(const fefet_table *tb, const char *name) {
    if (tb->n < 2) return bn_error(BN_EARG, "%s: the table needs a nominal row and at least one faster one", name);
    for (int k = 0; k < FEFET_KINDS; k++)
        if (tb->has_kind[k]) return bn_error(BN_EARG, "%s: per-layer-type columns are not used by lim", name);
    return BN_OK;
}

double lim_xnor_count(const packed_layer *L) {
    if (L->first) return 0.0;
    double pos = L->kind == NET_CONV ? (double)L->in_h * L->in_w : 1.0;
    return pos * L->out_c * L->fan_in;
}

double lim_speedup(const packed_net *p, const fefet_table *tb, const int *setting) {
    double num = 0, den = 0;
    for (int l = 0; l < p->n_layers; l++) {
        double c = lim_xnor_count(&p->layers[l]);
        num += c * tb->t[setting[l]], den += c;
    }
    return den > 0 ? num / den : 0.0;
}

void lim_model(errmodel *m, const packed_net *p, const fefet_table *tb, const int *setting) {
    errmodel_zero(m);
    for (int l = 0; l < p->n_layers; l++) {
        if (p->layers[l].first) continue;
        m->layer[l].x_p01 = tb->p01[setting[l]], m->layer[l].x_p10 = tb->p10[setting[l]];
    }
}

int lim_accuracy(const packed_net *p, const fefet_table *tb, const int *setting, const dataset *d, int repeats,
                 uint64_t seed, int threads, double *acc) {
    errmodel m;
    lim_model(&m, p, tb, setting);
    fault_stats s;
    int rc = errmodel_evaluate(p, &m, d, repeats, seed, threads, &s, NULL);
    *acc = s.mean;
    return rc;
}

int lim_runtime_search(const packed_net *p, const fefet_table *tb, double floor_acc, const dataset *d, int repeats,
                       uint64_t seed, int threads, int *setting, double *acc, int *evaluated) {
    int order[NET_MAX_LAYERS], n = 0, count = 0, rc = BN_OK;
    for (int l = 0; l < p->n_layers; l++) {
        setting[l] = 0;
        if (!p->layers[l].first) order[n++] = l;
    }
    for (int i = 1; i < n; i++) /* decreasing XNOR count, stable */
        for (int j = i; j > 0 && lim_xnor_count(&p->layers[order[j]]) > lim_xnor_count(&p->layers[order[j - 1]]); j--) {
            int t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
    double cur;
    if ((rc = lim_accuracy(p, tb, setting, d, repeats, seed, threads, &cur))) return rc;
    count++;
    for (int i = 0; i < n; i++) {
        int l = order[i];
        /* scan up from nominal; stop at the first setting that breaks the budget
           (accuracy falls with speed; a later, faster setting is not tried) */
        for (int s = 1; s < tb->n; s++) {
            setting[l] = s;
            double a;
            if ((rc = lim_accuracy(p, tb, setting, d, repeats, seed, threads, &a))) return rc;
            count++;
            if (a < floor_acc) {
                setting[l] = s - 1;
                break;
            }
            cur = a;
        }
    }
    *acc = cur;
    if (evaluated) *evaluated = count;
    return BN_OK;
}

int lim_uniform_search(const packed_net *p, const fefet_table *tb, double floor_acc, const dataset *d, int repeats,
                       uint64_t seed, int threads, int *row, double *acc) {
    int setting[NET_MAX_LAYERS], rc;
    *row = 0;
    for (int l = 0; l < NET_MAX_LAYERS; l++) setting[l] = 0;
    if ((rc = lim_accuracy(p, tb, setting, d, repeats, seed, threads, acc))) return rc;
    for (int s = 1; s < tb->n; s++) {
        for (int l = 0; l < p->n_layers; l++) setting[l] = s;
        double a;
        if ((rc = lim_accuracy(p, tb, setting, d, repeats, seed, threads, &a))) return rc;
        if (a < floor_acc) break;
        *row = s, *acc = a;
    }
    return BN_OK;
}

/* ---- The evaluator ---- */


static int lim_run(const eval_context *ctx, const eval_params *params, eval_metrics *out) {
    fefet_table tb;
    const char *path = eval_param_get(params, "table");
    int rc = path ? fefet_table_load(&tb, path) : lim_table_default(&tb);
    if (!rc) rc = lim_table_check(&tb, path ? path : "lim");
    if (rc) return rc;
    double budget, reference, repeats, seedd, search_images;
    dataset d;
    if ((rc = eval_param_double(params, "budget", 0.01, &budget)) ||
        (rc = eval_param_double(params, "reference", -1, &reference)) ||
        (rc = eval_param_double(params, "repeats", 3, &repeats)) ||
        (rc = eval_param_double(params, "seed", (double)ctx->seed, &seedd)) ||
        (rc = eval_param_double(params, "search_images", 0, &search_images)) || (rc = eval_split(ctx, params, "lim", 0, &d)))
        return rc;
    if (!(budget >= 0 && budget < 1)) return bn_error(BN_EARG, "lim: budget must be in [0, 1)");
    if (repeats < 1 || repeats != floor(repeats)) return bn_error(BN_EARG, "lim: repeats must be a positive integer");
    if (!ctx->val || ctx->val->n <= 0) return bn_error(BN_EARG, "lim: the searches need a validation split");
    uint64_t seed = eval_param_get(params, "seed") ? (uint64_t)seedd : ctx->seed;
    dataset v = *ctx->val;
    if (search_images > 0 && search_images < v.n) v = data_slice(&v, 0, (int)search_images);
    packed_net p;
    if ((rc = packed_from_net(&p, ctx->n))) return rc;
    int zero[NET_MAX_LAYERS] = {0}, setting[NET_MAX_LAYERS], row = 0, evaluated = 0, R = (int)repeats;
    double clean_val = 0, clean = 0, uacc = 0, racc = 0, rep_u = 0, rep_r = 0;
    rc = lim_accuracy(&p, &tb, zero, &v, 1, seed, 0, &clean_val);
    if (!rc) rc = lim_accuracy(&p, &tb, zero, &d, 1, seed, 0, &clean);
    if (reference < 0) reference = clean_val;
    /* searches on validation data with their own seed; reports on split with seed */
    if (!rc) rc = lim_uniform_search(&p, &tb, reference - budget, &v, R, seed ^ 0x11Au, 0, &row, &uacc);
    if (!rc) rc = lim_runtime_search(&p, &tb, reference - budget, &v, R, seed ^ 0x11Au, 0, setting, &racc, &evaluated);
    int uni[NET_MAX_LAYERS];
    for (int l = 0; l < NET_MAX_LAYERS; l++) uni[l] = row;
    if (!rc) rc = lim_accuracy(&p, &tb, uni, &d, R, seed, 0, &rep_u);
    if (!rc) rc = lim_accuracy(&p, &tb, setting, &d, R, seed, 0, &rep_r);
    if (!rc) rc = eval_metrics_add(out, "lim.clean_val", clean_val);
    if (!rc) rc = eval_metrics_add(out, "lim.clean", clean);
    if (!rc) rc = eval_metrics_add(out, "lim.reference", reference);
    if (!rc) rc = eval_metrics_add(out, "lim.uniform_speedup", tb.t[row]);
    if (!rc) rc = eval_metrics_add(out, "lim.uniform_acc", rep_u);
    if (!rc) rc = eval_metrics_add(out, "lim.uniform_search_acc", uacc);
    if (!rc) rc = eval_metrics_add(out, "lim.rt_speedup", lim_speedup(&p, &tb, setting));
    if (!rc) rc = eval_metrics_add(out, "lim.rt_acc", rep_r);
    if (!rc) rc = eval_metrics_add(out, "lim.rt_search_acc", racc);
    for (int l = 0; !rc && l < p.n_layers; l++) {
        if (p.layers[l].first) continue;
        char name[EVAL_NAME_MAX];
        snprintf(name, sizeof name, "lim.rt_layer%d", l);
        rc = eval_metrics_add(out, name, tb.t[setting[l]]);
    }
    if (!rc) rc = eval_metrics_add(out, "lim.rt_evaluated", evaluated);
    packed_free(&p);
    return rc;
}

static const char *const lim_params[] = {"table", "budget", "reference", "repeats", "seed", "search_images",
                                         "split", "images", NULL};

/* The table file must open, parse and have a faster row, before any trial runs. */
static int lim_check(const eval_params *params, const char **key) {
    const char *path = eval_param_get(params, "table");
    fefet_table tb;
    *key = "table";
    int rc = path ? fefet_table_load(&tb, path) : lim_table_default(&tb);
    return rc ? rc : lim_table_check(&tb, path ? path : "lim");
}

const evaluator eval_lim = {
    "lim",
    "FeFET XNOR logic-in-memory: fastest XNOR setting within an accuracy budget, uniform (lim.uniform_speedup) "
    "and per layer at run time (lim.rt_speedup, XNOR-count weighted); default table ILLUSTRATIVE",
    lim_params, lim_run, lim_check};
