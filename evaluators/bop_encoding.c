/*
** The Bop momentum-encoding search (contract in evaluators/bop_encoding.h)
** and the evaluator "bop_encoding" that runs a bounded version of it on the
** topology of the trained net it is given.
*/
#include "evaluators/bop_encoding.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dmath.h"
#include "engine/err.h"
#include "engine/parallel.h"
#include "evaluators/evaluator.h"

bopenc_config bopenc_config_default(void) {
    bopenc_config c;
    memset(&c, 0, sizeof c);
    c.recipe = train_recipe_default();
    c.recipe.optimizer = OPT_BOP;
    c.lost_budget = 0.01;
    c.acc_budget = 0.01;
    c.min_bits = 6, c.max_bits = 16;
    c.max_confirm = 3;
    c.trace_weights = 4096;
    c.mem_batch = 0; /* recipe batch */
    return c;
}

static void logf_(const bopenc_config *c, const char *fmt, ...) {
    if (!c->log) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    c->log(c->user, line);
}

double bopenc_replay(const fpfmt *F, const float *g, int steps, int n, const float *gammas, double *max_m) {
    double *m = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    int64_t lost = 0;
    double mx = 0;
    for (int t = 0; t < steps; t++) {
        const double gm = gammas[t], om = 1.0 - gm;
        const float *gt = g + (size_t)t * n;
        for (int i = 0; i < n; i++) {
            double u = om * m[i] + gm * (double)gt[i], mn = fpfmt_round(F, u);
            lost += mn == m[i] && u != m[i];
            m[i] = mn;
            if (fabs(mn) > mx) mx = fabs(mn);
        }
    }
    free(m);
    if (max_m) *max_m = mx;
    return steps && n ? (double)lost / ((double)steps * n) : 0.0;
}

/* One training of the search: a fresh net (same initialisation every time),
   Bop with momentum format F. Fills accuracy, mean lost fraction, seconds. */
typedef struct { double lost_sum; int epochs; } run_log;

static int run_epoch(const train_progress *p, void *user) {
    run_log *l = user;
    if (p->lost_updates >= 0) l->lost_sum += p->lost_updates, l->epochs++;
    return 0;
}

static int train_once(const bopenc_config *c, const fpfmt *F, const dataset *train, const dataset *val,
                      train_trace *trace, double *acc, double *lost, double *secs, net *out) {
    net n;
    int rc = net_create(&n, &c->topology, train->c, train->h, train->w, train->classes);
    if (rc) return rc;
    pcg32 g;
    rng_keyed(&g, c->recipe.seed, 0, RNG_INIT);
    net_init_params(&n, &g);
    train_recipe r = c->recipe;
    r.optimizer = OPT_BOP;
    r.mom_e = F->e, r.mom_f = F->f, r.mom_bias = F->bias, r.mom_subnormals = F->subnormals;
    run_log log = {0, 0};
    perturb_set ps;
    double t0 = par_seconds();
    if (!(rc = eval_perturbs(&r, &ps))) rc = train_run_traced(&n, train, NULL, &r, &ps, run_epoch, &log, trace);
    *secs = par_seconds() - t0;
    if (!rc) {
        *acc = train_accuracy(&n, val);
        *lost = log.epochs ? log.lost_sum / log.epochs : -1;
    }
    if (!rc && out) *out = n;
    else net_free(&n);
    return rc;
}

int bopenc_train(const bopenc_config *c, const fpfmt *F, const dataset *train, const dataset *val, double *acc,
                 double *lost, double *secs) {
    return train_once(c, F, train, val, NULL, acc, lost, secs, NULL);
}

/* Candidate formats of one width, with their replay fractions. */
typedef struct {
    fpfmt fmt;
    double sim;
} screened;

static int by_sim(const void *a, const void *b) {
    double x = ((const screened *)a)->sim, y = ((const screened *)b)->sim;
    return x < y ? -1 : x > y;
}

int bopenc_search(const bopenc_config *c, const dataset *train, const dataset *val, bopenc_result *res) {
    memset(res, 0, sizeof *res);
    if (c->min_bits < 4 || c->max_bits > 32 || c->min_bits > c->max_bits || c->max_confirm < 1 ||
        c->max_confirm > BOPENC_MAX_CONFIRM || c->trace_weights < 1 || !(c->lost_budget >= 0) ||
        !(c->acc_budget >= 0))
        return bn_error(BN_EARG,
                        "bop encodings: bad search settings (bits %d..%d, confirm %d of at most %d, trace %d, "
                        "budgets %g and %g)",
                        c->min_bits, c->max_bits, c->max_confirm, BOPENC_MAX_CONFIRM, c->trace_weights,
                        c->lost_budget, c->acc_budget);
    if (!val || val->n < 1) return bn_error(BN_EARG, "bop encodings: need a validation set");
    int rc = BN_OK;
    net ref = {0};
    int64_t *idx = NULL;
    float *g = NULL, *gammas = NULL;
    screened *cand = NULL;
    train_trace trace = {0};

    /* 1. the FP32 reference with a gradient trace of sampled binary weights */
    fpfmt F32 = fpfmt_binary32();
    rc = net_create(&ref, &c->topology, train->c, train->h, train->w, train->classes);
    if (rc) goto done;
    int64_t nw = 0;
    for (int l = 0; l < ref.n_layers; l++) nw += (int64_t)ref.layers[l].out_c * ref.layers[l].fan_in;
    int S = c->trace_weights < nw ? c->trace_weights : (int)nw;
    idx = bn_malloc(sizeof(int64_t) * (size_t)S);
    pcg32 pick;
    rng_keyed(&pick, c->recipe.seed, 0x0b0b, RNG_SAMPLE);
    for (int k = 0; k < S; k++) {
        int64_t j = (int64_t)(pcg32_double(&pick) * (double)nw), l = 0;
        while (j >= (int64_t)ref.layers[l].out_c * ref.layers[l].fan_in)
            j -= (int64_t)ref.layers[l].out_c * ref.layers[l].fan_in, l++;
        idx[k] = (ref.layers[l].w - ref.params) + j;
    }
    int B = c->recipe.batch < train->n ? c->recipe.batch : train->n;
    int per_epoch = (train->n + B - 1) / B, T = per_epoch * c->recipe.epochs;
    g = bn_malloc(sizeof(float) * (size_t)S * (size_t)(T > 0 ? T : 1));
    gammas = bn_malloc(sizeof(float) * (size_t)(T > 0 ? T : 1));
    for (int t = 0; t < T; t++) {
        int epoch = t / per_epoch + 1;
        float gm = c->recipe.bop_gamma;
        if (c->recipe.lr_step > 0) gm *= (float)dmath_powi(c->recipe.bop_gamma_decay, (epoch - 1) / c->recipe.lr_step);
        gammas[t] = gm;
    }
    trace.n = S, trace.idx = idx, trace.max_steps = T, trace.g = g;
    net_free(&ref);
    rc = train_once(c, &F32, train, val, &trace, &res->acc_fp32, &res->lost_fp32, &res->seconds_fp32, &ref);
    if (rc) goto done;
    int mem_batch = c->mem_batch > 0 ? c->mem_batch : c->recipe.batch;
    res->mem_fp32 = bop_memory_model(&ref, &F32, mem_batch);
    res->sim_lost_fp32 = bopenc_replay(&F32, g, trace.steps, S, gammas, &res->max_m);
    logf_(c, "fp32: val accuracy %.4f, lost updates %.6f (replay of %d weights x %d steps: %.6f), max |m| %.3g, %.1f s",
          res->acc_fp32, res->lost_fp32, S, trace.steps, res->sim_lost_fp32, res->max_m, res->seconds_fp32);

    /* 2 and 3: widths narrowest first; screen, then confirm the passing ones */
    int emax_fit = 0; /* floor(log2 max_m) + 1, exactly */
    if (res->max_m > 0) frexp(res->max_m, &emax_fit);
    cand = bn_malloc(sizeof(screened) * 64);
    for (int bits = c->min_bits; bits <= c->max_bits && !res->found && res->n_tried < c->max_confirm; bits++) {
        int nc = 0;
        for (int e = 2; e <= 8; e++) {
            int f = bits - 1 - e;
            if (f < 1 || f > 23) continue;
            int biases[2] = {(1 << (e - 1)) - 1, (1 << e) - 2 - emax_fit};
            for (int bi = 0; bi < 2; bi++) {
                if (bi == 1 && biases[1] == biases[0]) continue;
                for (int sub = 1; sub >= (c->try_no_subnormals ? 0 : 1); sub--) {
                    fpfmt F;
                    if (fpfmt_init(&F, e, f, biases[bi], sub)) continue; /* outside binary32 */
                    cand[nc].fmt = F;
                    cand[nc].sim = bopenc_replay(&F, g, trace.steps, S, gammas, NULL);
                    nc++;
                    res->screened++;
                }
            }
        }
        qsort(cand, (size_t)nc, sizeof *cand, by_sim);
        if (nc) {
            char name[32];
            fpfmt_name(&cand[0].fmt, name, sizeof name);
            logf_(c, "%2d bits: %d formats replayed, best %s lost %.6f (budget %.6f)", bits, nc, name, cand[0].sim,
                  res->sim_lost_fp32 + c->lost_budget);
        }
        for (int k = 0; k < nc && !res->found && res->n_tried < c->max_confirm; k++) {
            if (cand[k].sim > res->sim_lost_fp32 + c->lost_budget) break;
            bopenc_candidate *t = &res->tried[res->n_tried++];
            t->fmt = cand[k].fmt, t->sim_lost = cand[k].sim;
            rc = train_once(c, &t->fmt, train, val, NULL, &t->acc, &t->lost, &t->seconds, NULL);
            if (rc) goto done;
            t->accepted = t->acc >= res->acc_fp32 - c->acc_budget;
            char name[32];
            fpfmt_name(&t->fmt, name, sizeof name);
            logf_(c, "  train %s: val accuracy %.4f (fp32 %.4f), lost updates %.6f, %.1f s (%.2fx fp32): %s", name,
                  t->acc, res->acc_fp32, t->lost, t->seconds, t->seconds / res->seconds_fp32,
                  t->accepted ? "accepted" : "rejected");
            if (t->accepted) {
                res->found = 1;
                res->best = *t;
                res->mem_best = bop_memory_model(&ref, &t->fmt, mem_batch);
            }
        }
    }
done:
    net_free(&ref);
    free(idx), free(g), free(gammas), free(cand);
    return rc;
}

/* ---------------------------------------------------------------------------
** The evaluator: a bounded search on the evaluated net's topology.
*/

static const char *const bopenc_params[] = {"images", "val_images", "epochs", "batch", "gamma", "tau",
                                             "lost_budget", "acc_budget", "max_bits", "max_confirm", NULL};

static int bopenc_run(const eval_context *ctx, const eval_params *p, eval_metrics *out) {
    double images, val_images, epochs, batch, gamma, tau, lost_budget, acc_budget, max_bits, max_confirm;
    int rc;
    if ((rc = eval_param_double(p, "images", 10000, &images)) || (rc = eval_param_double(p, "val_images", 5000, &val_images)) ||
        (rc = eval_param_double(p, "epochs", 1, &epochs)) || (rc = eval_param_double(p, "batch", 100, &batch)) ||
        (rc = eval_param_double(p, "gamma", 1e-2, &gamma)) || (rc = eval_param_double(p, "tau", 1e-6, &tau)) ||
        (rc = eval_param_double(p, "lost_budget", 0.01, &lost_budget)) ||
        (rc = eval_param_double(p, "acc_budget", 0.01, &acc_budget)) ||
        (rc = eval_param_double(p, "max_bits", 16, &max_bits)) ||
        (rc = eval_param_double(p, "max_confirm", 2, &max_confirm)))
        return rc;
    if (images < 1 || val_images < 1 || epochs < 1 || epochs > 100 || batch < 1)
        return bn_error(BN_EARG, "bop_encoding: images, val_images, epochs (1..100) and batch must be positive");
    /* the format is selected on validation data: never fall back to the test set */
    const dataset *vs = ctx->val && ctx->val->n ? ctx->val : NULL;
    if (!ctx->train || !ctx->train->n || !vs) return bn_error(BN_EARG, "bop_encoding: needs training and validation data");
    dataset tr = data_slice(ctx->train, 0, (int)(images < ctx->train->n ? images : ctx->train->n));
    dataset va = data_slice(vs, 0, (int)(val_images < vs->n ? val_images : vs->n));
    bopenc_config c = bopenc_config_default();
    c.topology = ctx->n->arch;
    c.recipe.epochs = (int)epochs, c.recipe.batch = (int)batch, c.recipe.bop_gamma = (float)gamma;
    c.recipe.bop_tau = (float)tau, c.recipe.seed = ctx->seed;
    c.lost_budget = lost_budget, c.acc_budget = acc_budget;
    c.max_bits = (int)max_bits, c.max_confirm = (int)max_confirm;
    bopenc_result r;
    rc = bopenc_search(&c, &tr, &va, &r);
    if (rc) return rc;
    const bopenc_candidate *b = &r.best;
    double nan = NAN;
#define ADD(name, v) do { if ((rc = eval_metrics_add(out, "bop_encoding." name, (v)))) return rc; } while (0)
    ADD("found", r.found);
    ADD("bits", r.found ? fpfmt_bits(&b->fmt) : nan);
    ADD("e", r.found ? b->fmt.e : nan);
    ADD("f", r.found ? b->fmt.f : nan);
    ADD("bias", r.found ? b->fmt.bias : nan);
    ADD("acc_fp32", r.acc_fp32);
    ADD("acc", r.found ? b->acc : nan);
    ADD("lost_fp32", r.lost_fp32);
    ADD("lost", r.found ? b->lost : nan);
    ADD("memory_fp32", r.mem_fp32.total);
    ADD("memory", r.found ? r.mem_best.total : nan);
    ADD("memory_factor", r.found ? r.mem_fp32.total / r.mem_best.total : nan);
    ADD("time_ratio", r.found ? b->seconds / r.seconds_fp32 : nan);
#undef ADD
    return BN_OK;
}

const evaluator eval_bop_encoding = {
    "bop_encoding",
    "smallest Bop momentum float format within budget of FP32 (retrains briefly from the training split): "
    "bop_encoding.bits/e/f/bias, acc, lost, memory, memory_factor, time_ratio",
    bopenc_params, bopenc_run, NULL};
