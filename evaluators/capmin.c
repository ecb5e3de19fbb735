/*
** Evaluator "capmin": CapMin (engine/capmin.h). Per layer the histogram of
** MAC levels (chunks of A products) over the training images, the accuracy
** with the q most frequent consecutive levels kept (the rest clipped to the
** window's edges) for q = A+1 down to 1, the smallest q within the accuracy
** budget, and the capacitor reduction it implies; CapMin-V: accuracy at that
** q with misread levels (eps per side) for guard spacings, and their capacitor.
**   params: A            array size (default 32)
**           budget       allowed accuracy loss vs the exact network (default 0.01); q is
**                        always selected on the validation split, whatever `split` reports
**           hist_images  training images for the histogram (default all)
**           eps          CapMin-V misread probability without guard (default 0: skip)
**           guards       CapMin-V guard spacings (default [0, 1, 2])
**           seed         noise seed (default the context's);  split val|test, images, threads
**   metrics: capmin.exact_acc, capmin.acc@Q (every Q), capmin.q, capmin.acc (at q),
**            capmin.cap_x (capacitor reduction, RC spike-time model), capmin.slot_x (A / (q-1)),
**            capmin.cap_full_pF, capmin.cap_pF, capmin.mass (fraction of chunks inside the windows);
**            with eps: capmin.v_acc@G, capmin.v_eps@G, capmin.v_cap_x@G for every guard G
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/capmin.h"
#include "engine/err.h"
#include "evaluators/evaluator.h"


static int capmin_run(const eval_context *ctx, const eval_params *params, eval_metrics *out) {
    dataset d;
    int rc = eval_split(ctx, params, "capmin", 0, &d);
    if (rc) return rc;
    double Ad, budget, hi_d, eps, seedd, th, guards[16];
    static const double def_guards[3] = {0, 1, 2};
    int n_guards;
    if ((rc = eval_param_double(params, "A", 32, &Ad)) || (rc = eval_param_double(params, "budget", 0.01, &budget)) ||
        (rc = eval_param_double(params, "hist_images", 0, &hi_d)) || (rc = eval_param_double(params, "eps", 0, &eps)) ||
        (rc = eval_param_double(params, "seed", (double)ctx->seed, &seedd)) ||
        (rc = eval_param_double(params, "threads", 0, &th)) ||
        (rc = eval_param_list(params, "guards", def_guards, 3, guards, 16, &n_guards)))
        return rc;
    int A = (int)Ad, threads = (int)th;
    if (A < 1 || A != Ad) return bn_error(BN_EARG, "capmin: A must be a positive integer");
    if (!ctx->train || ctx->train->n <= 0) return bn_error(BN_EARG, "capmin: needs the training split for the histogram");
    if (!ctx->val || ctx->val->n <= 0) return bn_error(BN_EARG, "capmin: selecting q needs a validation split");
    dataset hd = hi_d > 0 && hi_d < ctx->train->n ? data_slice(ctx->train, 0, (int)hi_d) : *ctx->train;
    packed_net p;
    if ((rc = packed_from_net(&p, ctx->n))) return rc;
    int64_t *hist = bn_calloc((size_t)p.n_layers * (A + 1), sizeof(int64_t));
    double *accq = bn_calloc((size_t)A + 2, sizeof(double));
    int lo[NET_MAX_LAYERS] = {0}, hi[NET_MAX_LAYERS] = {0};
    char name[EVAL_NAME_MAX];
    /* q is selected on the validation split (sel); acc@Q is reported on d */
    const int on_val = d.pixels == ctx->val->pixels && d.n <= ctx->val->n;
    dataset sel = on_val ? d : *ctx->val;
    double *selq = on_val ? accq : bn_calloc((size_t)A + 2, sizeof(double));
    if ((rc = capmin_histogram(&p, A, &hd, threads, hist))) goto done;
    for (int q = A + 1; q >= 1 && !rc; q--) {
        for (int l = 0; l < p.n_layers; l++)
            if (capmin_eligible(&p, l)) lo[l] = capmin_window(hist + (size_t)l * (A + 1), A, q), hi[l] = lo[l] + q - 1;
        if ((rc = capmin_accuracy(&p, A, lo, hi, 0, 0.0, 0, &d, threads, &accq[q]))) break;
        if (!on_val && (rc = capmin_accuracy(&p, A, lo, hi, 0, 0.0, 0, &sel, threads, &selq[q]))) break;
        if (q == A + 1) rc = eval_metrics_add(out, "capmin.exact_acc", accq[q]);
        snprintf(name, sizeof name, "capmin.acc@%d", q);
        if (!rc) rc = eval_metrics_add(out, name, accq[q]);
    }
    int qbest = A + 1;
    for (int q = A + 1; q >= 1 && !rc; q--)
        if (selq[q] >= selq[A + 1] - budget - 1e-12) qbest = q; else break;
    if (rc) goto done;
    /* windows at qbest, the capacitor and the mass kept */
    double gap = INFINITY, full = capmin_min_gap(0, A, 1);
    int64_t in = 0, all = 0;
    for (int l = 0; l < p.n_layers; l++) {
        if (!capmin_eligible(&p, l)) continue;
        const int64_t *h = hist + (size_t)l * (A + 1);
        lo[l] = capmin_window(h, A, qbest), hi[l] = lo[l] + qbest - 1;
        double g = capmin_min_gap(lo[l], hi[l], 1);
        if (g < gap) gap = g;
        for (int a = 0; a <= A; a++) all += h[a], in += a >= lo[l] && a <= hi[l] ? h[a] : 0;
    }
    double c_full = capmin_capacitance(full), c_q = capmin_capacitance(gap);
    if (!rc) rc = eval_metrics_add(out, "capmin.q", qbest);
    if (!rc) rc = eval_metrics_add(out, "capmin.acc", accq[qbest]);
    if (!rc) rc = eval_metrics_add(out, "capmin.cap_x", c_q > 0 ? c_full / c_q : INFINITY);
    if (!rc) rc = eval_metrics_add(out, "capmin.slot_x", qbest > 1 ? (double)A / (qbest - 1) : INFINITY);
    if (!rc) rc = eval_metrics_add(out, "capmin.cap_full_pF", c_full * 1e12);
    if (!rc) rc = eval_metrics_add(out, "capmin.cap_pF", c_q * 1e12);
    if (!rc) rc = eval_metrics_add(out, "capmin.mass", all ? (double)in / (double)all : 1.0);
    for (int i = 0; i < n_guards && eps > 0 && !rc; i++) {
        int g = (int)guards[i];
        double eg = capmin_eps_guard(eps, g), acc;
        if ((rc = capmin_accuracy(&p, A, lo, hi, 0, eg, (uint64_t)seedd, &d, threads, &acc))) break;
        snprintf(name, sizeof name, "capmin.v_acc@%d", g);
        rc = eval_metrics_add(out, name, acc);
        snprintf(name, sizeof name, "capmin.v_eps@%d", g);
        if (!rc) rc = eval_metrics_add(out, name, eg);
        snprintf(name, sizeof name, "capmin.v_cap_x@%d", g);
        if (!rc) rc = eval_metrics_add(out, name, c_q > 0 ? c_full / (c_q * (g + 1)) : INFINITY);
    }
done:
    if (selq != accq) free(selq);
    free(hist), free(accq);
    packed_free(&p);
    return rc;
}

static const char *const capmin_params[] = {"A", "budget", "hist_images", "eps", "guards", "seed",
                                            "split", "images", "threads", NULL};

const evaluator eval_capmin = {
    "capmin",
    "CapMin: MAC-level histograms, accuracy with the q most frequent levels kept (capmin.acc@Q), the smallest q "
    "within the budget (capmin.q) and its capacitor reduction (capmin.cap_x); CapMin-V with eps and guards",
    capmin_params, capmin_run, NULL};
