/*
** Evaluator "margin": the bit-error tolerance metric without fault injection
** (engine/margin.h) on the validation split (or the test set).
**   params: split  "val" (default) or "test"
**           images evaluate on the first N images of the split (default all)
**   metrics: margin.mean    mean neuron tolerance in weight flips (eqs. 2-6 of
**                           Buschjaeger et al. 2020) over images and hidden neurons
**            margin.layerN  the same for hidden layer N (0 = first)
**            margin.output  mean output margin (z_y - max_{c!=y} z_c) / (2|s|) in flips
*/
#include <stdio.h>
#include <string.h>

#include "engine/err.h"
#include "engine/margin.h"
#include "evaluators/evaluator.h"


static int margin_run(const eval_context *ctx, const eval_params *params, eval_metrics *out) {
    dataset d;
    int rc = eval_split(ctx, params, "margin", 0, &d);
    if (rc) return rc;
    margin_result r;
    rc = margin_measure(ctx->n, &d, 0, &r);
    if (rc) return rc;
    rc = eval_metrics_add(out, "margin.mean", r.mean);
    for (int l = 0; !rc && l < r.n_hidden; l++) {
        char name[EVAL_NAME_MAX];
        snprintf(name, sizeof name, "margin.layer%d", l);
        rc = eval_metrics_add(out, name, r.layer[l]);
    }
    if (!rc) rc = eval_metrics_add(out, "margin.output", r.output);
    return rc;
}

static const char *const margin_params[] = {"split", "images", NULL};

const evaluator eval_margin = {
    "margin",
    "neuron-level bit-error tolerance in weight flips without injection (margin.mean, margin.layerN) and the "
    "output margin in flips (margin.output)",
    margin_params, margin_run, NULL};
