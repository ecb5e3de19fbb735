/*
** Evaluator "fefet": accuracy of the packed model with its weights in FeFET
** memory over a temperature range (asymmetric, temperature-dependent bit
** errors from a table), and BERA (evaluators/fefet.h).
**   params: table         CSV file of (temperature, p01, p10[, per layer type]) rows (default: the
**                         shipped ILLUSTRATIVE evaluators/data/fefet_temperature.csv)
**           interp        log (default: linear in log p between rows) or linear
**           temps         temperatures to report (default: every table row)
**           repeats       error draws per temperature (default 10)
**           seed          seed of the draws (default: the context's seed)
**           split         val (default) or test: the reported split;  images: first N of it
**           bera          1 (default): also run BERA; 0: no
**           bera_search   auto (default: exhaustive if L <= 6, else greedy), exhaustive, greedy
**           bera_repeats  draws per candidate in the search (default: repeats)
**           bera_images   validation images of the search (default: all)
**   metrics: fefet.clean             accuracy without errors
**            fefet.acc@T             mean accuracy at temperature T (T printed with %g)
**            fefet.acc_min, fefet.t_worst, fefet.drop (clean - acc_min)
**            fefet.p01_worst, fefet.p10_worst   the rates at t_worst
**            fefet.bera_acc@T, fefet.bera_acc_min, fefet.bera_t_worst, fefet.bera_drop
**            fefet.bera_mask         assignment, bit l = layer l stored inverted
**            fefet.bera_search_identity, fefet.bera_search_best  validation accuracy of the
**                                    identity and of the result at the search temperature
**            fefet.bera_evaluated    assignments evaluated
** BERA searches on the validation split at the worst temperature of the plain
** network on that split; the reported sweep uses `split`.
*/
#include "evaluators/fefet.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dmath.h"
#include "engine/err.h"
#include "engine/errmodel.h"
#include "evaluators/evaluator.h"

/* ---- Tables ---- */

int fefet_table_load_data(fefet_table *tb, const char *name) {
    char path[4096], *text;
    int rc = eval_data_text(name, path, sizeof path, &text);
    if (!rc) rc = fefet_table_parse(tb, text, path), free(text);
    return rc;
}

int fefet_table_default(fefet_table *tb) { return fefet_table_load_data(tb, "fefet_temperature.csv"); }

/* Columns of a table: the temperature, then rates; col[k] says what column k+1 holds. */
enum { COL_P01, COL_P10, COL_KIND0 }; /* COL_KIND0 + 2 * kind + (0: p01, 1: p10) */
#define FEFET_MAX_COLS (1 + 2 + 2 * FEFET_KINDS)

static int fefet_header(fefet_table *tb, char *q, const char *name, int line, int *col, int *ncol) {
    static const char *const names[] = {"p01", "p10", "p01_conv", "p10_conv", "p01_dense", "p10_dense"};
    int k = 0;
    for (char *f = strtok(q, ","); f; f = strtok(NULL, ","), k++) {
        while (isspace((unsigned char)*f)) f++;
        size_t len = strlen(f);
        while (len && isspace((unsigned char)f[len - 1])) f[--len] = '\0';
        if (k == 0) continue; /* the temperature, any name */
        if (k >= FEFET_MAX_COLS) return bn_error(BN_EFORMAT, "%s:%d: more than %d columns", name, line, FEFET_MAX_COLS);
        int c = -1;
        for (int i = 0; i < 6; i++)
            if (!strcmp(f, names[i])) c = i;
        if (c < 0)
            return bn_error(BN_EFORMAT, "%s:%d: unknown column '%s' (expected p01, p10, p01_conv, p10_conv, "
                                        "p01_dense, p10_dense)", name, line, f);
        if ((k == 1 && c != COL_P01) || (k == 2 && c != COL_P10))
            return bn_error(BN_EFORMAT, "%s:%d: the columns must start temperature,p01,p10 (got '%s')", name, line, f);
        for (int i = 0; i < k - 1; i++)
            if (col[i] == c) return bn_error(BN_EFORMAT, "%s:%d: column '%s' twice", name, line, f);
        col[k - 1] = c;
    }
    *ncol = k;
    for (int kind = 0; kind < FEFET_KINDS; kind++) {
        int n01 = 0, n10 = 0;
        for (int i = 0; i < k - 1; i++) n01 += col[i] == COL_KIND0 + 2 * kind, n10 += col[i] == COL_KIND0 + 2 * kind + 1;
        if (n01 != n10)
            return bn_error(BN_EFORMAT, "%s:%d: column '%s' without '%s'", name, line, names[2 + 2 * kind + n10],
                            names[2 + 2 * kind + n01]);
        tb->has_kind[kind] = n01;
    }
    return k < 3 ? bn_error(BN_EFORMAT, "%s:%d: the columns must start temperature,p01,p10", name, line) : BN_OK;
}

int fefet_table_parse(fefet_table *tb, const char *text, const char *name) {
    memset(tb, 0, sizeof *tb);
    int line = 0, header = 0, ncol = 3, col[FEFET_MAX_COLS] = {COL_P01, COL_P10};
    const char *s = text;
    while (*s) {
        const char *end = strchr(s, '\n');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        char buf[512];
        line++;
        if (len >= sizeof buf) return bn_error(BN_EFORMAT, "%s:%d: line too long", name, line);
        memcpy(buf, s, len);
        buf[len] = '\0';
        s += len + (end ? 1 : 0);
        char *c = strchr(buf, '#');
        if (c) *c = '\0';
        char *q = buf;
        while (isspace((unsigned char)*q)) q++;
        if (!*q) continue;
        if (isalpha((unsigned char)*q) && !header && tb->n == 0) { /* one header line */
            header = 1;
            int rc = fefet_header(tb, q, name, line, col, &ncol);
            if (rc) return rc;
            continue;
        }
        double v[FEFET_MAX_COLS];
        char *at = q;
        for (int k = 0; k < ncol; k++) {
            char *e;
            errno = 0;
            v[k] = strtod(at, &e);
            if (e == at || errno || !isfinite(v[k]))
                return bn_error(BN_EFORMAT, "%s:%d: column %d: expected a number, got '%s'", name, line, k + 1, at);
            at = e;
            while (isspace((unsigned char)*at)) at++;
            if (k < ncol - 1) {
                if (*at != ',') return bn_error(BN_EFORMAT, "%s:%d: expected %d comma-separated numbers", name, line, ncol);
                at++;
            }
        }
        if (*at) return bn_error(BN_EFORMAT, "%s:%d: trailing text '%s'", name, line, at);
        for (int k = 1; k < ncol; k++)
            if (!(v[k] >= 0 && v[k] <= 1))
                return bn_error(BN_EFORMAT, "%s:%d: column %d: rate %g not in [0, 1]", name, line, k + 1, v[k]);
        if (tb->n >= FEFET_MAX_ROWS) return bn_error(BN_EFORMAT, "%s: more than %d rows", name, FEFET_MAX_ROWS);
        if (tb->n > 0 && !(v[0] > tb->t[tb->n - 1]))
            return bn_error(BN_EFORMAT, "%s:%d: temperature %g does not increase (previous %g)", name, line, v[0],
                            tb->t[tb->n - 1]);
        tb->t[tb->n] = v[0];
        for (int k = 1; k < ncol; k++) {
            int cc = col[k - 1];
            if (cc == COL_P01) tb->p01[tb->n] = v[k];
            else if (cc == COL_P10) tb->p10[tb->n] = v[k];
            else if ((cc - COL_KIND0) % 2 == 0) tb->kp01[(cc - COL_KIND0) / 2][tb->n] = v[k];
            else tb->kp10[(cc - COL_KIND0) / 2][tb->n] = v[k];
        }
        tb->n++;
    }
    if (tb->n < 1) return bn_error(BN_EFORMAT, "%s: no rows", name);
    return BN_OK;
}

int fefet_table_load(fefet_table *tb, const char *path) {
    char *text;
    int rc = eval_file_text(path, &text);
    if (!rc) rc = fefet_table_parse(tb, text, path), free(text);
    return rc;
}

static double fefet_interp(double a, double b, double f, int linear) {
    if (linear || !(a > 0) || !(b > 0)) return a + (b - a) * f;
    return dmath_exp(dmath_log(a) + (dmath_log(b) - dmath_log(a)) * f);
}

static int fefet_rows_at(const fefet_table *tb, const double *r01, const double *r10, double T, double *p01,
                         double *p10) {
    if (tb->n < 1 || !(T >= tb->t[0] && T <= tb->t[tb->n - 1]))
        return bn_error(BN_EARG, "fefet: temperature %g outside the table's range [%g, %g]", T, tb->t[0],
                        tb->t[tb->n > 0 ? tb->n - 1 : 0]);
    int i = 0;
    while (i + 1 < tb->n && T > tb->t[i + 1]) i++;
    if (i + 1 >= tb->n || T == tb->t[i]) {
        *p01 = r01[i], *p10 = r10[i];
        return BN_OK;
    }
    double f = (T - tb->t[i]) / (tb->t[i + 1] - tb->t[i]);
    *p01 = fefet_interp(r01[i], r01[i + 1], f, tb->linear);
    *p10 = fefet_interp(r10[i], r10[i + 1], f, tb->linear);
    if (f == 1.0) *p01 = r01[i + 1], *p10 = r10[i + 1];
    return BN_OK;
}

int fefet_table_at(const fefet_table *tb, double T, double *p01, double *p10) {
    return fefet_rows_at(tb, tb->p01, tb->p10, T, p01, p10);
}

int fefet_table_at_kind(const fefet_table *tb, int kind, double T, double *p01, double *p10) {
    if (kind >= 0 && kind < FEFET_KINDS && tb->has_kind[kind])
        return fefet_rows_at(tb, tb->kp01[kind], tb->kp10[kind], T, p01, p10);
    return fefet_table_at(tb, T, p01, p10);
}

/* ---- Accuracy under stored-weight errors ---- */

/* The errmodel of p at temperature T of tb (each layer at its type's rates) with
   layer l inverted iff bit l of invert. T must be in the table's range. */
static void fefet_model(errmodel *m, const packed_net *p, const fefet_table *tb, double T, uint32_t invert) {
    errmodel_zero(m);
    for (int l = 0; l < NET_MAX_LAYERS; l++) {
        int kind = l < p->n_layers && p->layers[l].kind == NET_CONV ? FEFET_CONV : FEFET_DENSE;
        fefet_table_at_kind(tb, kind, T, &m->layer[l].w_p01, &m->layer[l].w_p10);
        m->layer[l].w_invert = (int)((invert >> l) & 1u);
    }
}

/* Mean accuracy over repeats on d of clean under m, using work (a copy of clean). */
static double fefet_mean_acc(packed_net *work, const packed_net *clean, const errmodel *m, const dataset *d,
                             int repeats, uint64_t seed, int threads, int *pred) {
    double sum = 0;
    for (int r = 0; r < repeats; r++) {
        errmodel_redraw_weights(work, clean, m, seed, r);
        packed_predict_threads(work, pred, d->pixels, d->n, threads);
        long correct = 0;
        for (int i = 0; i < d->n; i++) correct += pred[i] == d->labels[i];
        sum += d->n ? (double)correct / d->n : 0.0;
    }
    return sum / repeats;
}

static int fefet_check_args(const packed_net *p, const dataset *d, int repeats) {
    if (repeats < 1 || repeats >= (1 << 24)) return bn_error(BN_EARG, "fefet: repeats must be in 1..2^24 (got %d)", repeats);
    if (d->h != p->in_h || d->w != p->in_w || d->c != p->in_c)
        return bn_error(BN_EARG, "fefet: data images are %dx%dx%d, the network expects %dx%dx%d", d->h, d->w, d->c,
                        p->in_h, p->in_w, p->in_c);
    if (p->n_layers > 32) return bn_error(BN_EARG, "fefet: more than 32 layers");
    return BN_OK;
}

int fefet_sweep(const packed_net *p, const fefet_table *tb, const double *temps, int nt, uint32_t invert,
                const dataset *d, int repeats, uint64_t seed, int threads, double *acc) {
    int rc = fefet_check_args(p, d, repeats);
    if (rc) return rc;
    double p01, p10;
    for (int k = 0; k < nt; k++)
        if ((rc = fefet_table_at(tb, temps[k], &p01, &p10))) return rc;
    packed_net work;
    packed_copy(&work, p);
    int *pred = bn_malloc(sizeof(int) * (size_t)(d->n > 0 ? d->n : 1));
    for (int k = 0; k < nt; k++) {
        errmodel m;
        fefet_model(&m, p, tb, temps[k], invert);
        acc[k] = fefet_mean_acc(&work, p, &m, d, repeats, seed, threads, pred);
    }
    free(pred);
    packed_free(&work);
    return BN_OK;
}

int fefet_bera(const packed_net *p, const fefet_table *tb, double T, const dataset *d, int repeats, uint64_t seed,
               int threads, int exhaustive, uint32_t *best, double *acc_identity, double *acc_best, int *evaluated) {
    int rc = fefet_check_args(p, d, repeats);
    double p01, p10;
    if (!rc) rc = fefet_table_at(tb, T, &p01, &p10);
    if (rc) return rc;
    if (exhaustive && p->n_layers > 16) return bn_error(BN_EARG, "fefet: exhaustive BERA over %d layers is too many", p->n_layers);
    packed_net work;
    packed_copy(&work, p);
    int *pred = bn_malloc(sizeof(int) * (size_t)(d->n > 0 ? d->n : 1));
    errmodel m;
    int count = 1;
    fefet_model(&m, p, tb, T, 0);
    double id = fefet_mean_acc(&work, p, &m, d, repeats, seed, threads, pred), top = id;
    uint32_t arg = 0;
    if (exhaustive) {
        for (uint32_t a = 1; a < (1u << p->n_layers); a++) {
            fefet_model(&m, p, tb, T, a);
            double v = fefet_mean_acc(&work, p, &m, d, repeats, seed, threads, pred);
            count++;
            if (v > top) top = v, arg = a;
        }
    } else {
        for (int improved = 1; improved;) {
            improved = 0;
            for (int l = 0; l < p->n_layers; l++) {
                uint32_t a = arg ^ (1u << l);
                fefet_model(&m, p, tb, T, a);
                double v = fefet_mean_acc(&work, p, &m, d, repeats, seed, threads, pred);
                count++;
                if (v > top) top = v, arg = a, improved = 1;
            }
        }
    }
    free(pred);
    packed_free(&work);
    *best = arg, *acc_identity = id, *acc_best = top;
    if (evaluated) *evaluated = count;
    return BN_OK;
}

/* ---- The evaluator ---- */

#define FEFET_EVAL_MAX_TEMPS 24


static int fefet_add(eval_metrics *out, const char *prefix, double T, double v) {
    char name[EVAL_NAME_MAX];
    snprintf(name, sizeof name, "fefet.%s@%g", prefix, T);
    return eval_metrics_add(out, name, v);
}

static int fefet_run(const eval_context *ctx, const eval_params *params, eval_metrics *out) {
    fefet_table tb;
    const char *path = eval_param_get(params, "table"), *interp = eval_param_get(params, "interp");
    const char *search = eval_param_get(params, "bera_search");
    int rc = path ? fefet_table_load(&tb, path) : fefet_table_default(&tb);
    if (rc) return rc;
    if (interp && strcmp(interp, "log") && strcmp(interp, "linear"))
        return bn_error(BN_EARG, "fefet: interp must be log or linear (got '%s')", interp);
    tb.linear = interp && !strcmp(interp, "linear");
    if (search && strcmp(search, "auto") && strcmp(search, "exhaustive") && strcmp(search, "greedy"))
        return bn_error(BN_EARG, "fefet: bera_search must be auto, exhaustive or greedy (got '%s')", search);
    double temps[FEFET_EVAL_MAX_TEMPS], repeats, seedd, bera, bera_repeats, bera_images;
    int nt = tb.n < FEFET_EVAL_MAX_TEMPS ? tb.n : FEFET_EVAL_MAX_TEMPS;
    dataset d;
    if ((rc = eval_param_list(params, "temps", tb.t, nt, temps, FEFET_EVAL_MAX_TEMPS, &nt)) ||
        (rc = eval_param_double(params, "repeats", 10, &repeats)) ||
        (rc = eval_param_double(params, "seed", (double)ctx->seed, &seedd)) ||
        (rc = eval_param_double(params, "bera", 1, &bera)) ||
        (rc = eval_param_double(params, "bera_repeats", repeats, &bera_repeats)) ||
        (rc = eval_param_double(params, "bera_images", 0, &bera_images)) || (rc = eval_split(ctx, params, "fefet", 0, &d)))
        return rc;
    if (nt < 1) return bn_error(BN_EARG, "fefet: no temperatures");
    if (repeats < 1 || repeats != floor(repeats) || bera_repeats < 1 || bera_repeats != floor(bera_repeats))
        return bn_error(BN_EARG, "fefet: repeats and bera_repeats must be positive integers");
    uint64_t seed = eval_param_get(params, "seed") ? (uint64_t)seedd : ctx->seed;
    packed_net p;
    if ((rc = packed_from_net(&p, ctx->n))) return rc;
    double acc[FEFET_EVAL_MAX_TEMPS], clean = 0;
    int *pred = bn_malloc(sizeof(int) * (size_t)d.n);
    packed_predict(&p, pred, d.pixels, d.n);
    for (int i = 0; i < d.n; i++) clean += pred[i] == d.labels[i];
    clean /= d.n;
    free(pred);
    rc = fefet_sweep(&p, &tb, temps, nt, 0, &d, (int)repeats, seed, 0, acc);
    int worst = 0;
    for (int k = 1; k < nt; k++)
        if (acc[k] < acc[worst]) worst = k;
    double w01 = 0, w10 = 0;
    if (!rc) rc = fefet_table_at(&tb, temps[worst], &w01, &w10);
    if (!rc) rc = eval_metrics_add(out, "fefet.clean", clean);
    for (int k = 0; !rc && k < nt; k++) rc = fefet_add(out, "acc", temps[k], acc[k]);
    if (!rc) rc = eval_metrics_add(out, "fefet.acc_min", acc[worst]);
    if (!rc) rc = eval_metrics_add(out, "fefet.t_worst", temps[worst]);
    if (!rc) rc = eval_metrics_add(out, "fefet.drop", clean - acc[worst]);
    if (!rc) rc = eval_metrics_add(out, "fefet.p01_worst", w01);
    if (!rc) rc = eval_metrics_add(out, "fefet.p10_worst", w10);
    if (!rc && bera != 0) {
        /* search on validation data at the plain network's worst temperature there */
        dataset v = d;
        const char *split = eval_param_get(params, "split");
        if (split && strcmp(split, "val")) {
            if (!ctx->val || ctx->val->n <= 0) rc = bn_error(BN_EARG, "fefet: BERA needs a validation split");
            else v = *ctx->val;
        }
        if (!rc && bera_images > 0 && bera_images < v.n) v = data_slice(&v, 0, (int)bera_images);
        double vacc[FEFET_EVAL_MAX_TEMPS];
        int vworst = 0;
        if (!rc) rc = fefet_sweep(&p, &tb, temps, nt, 0, &v, (int)bera_repeats, seed, 0, vacc);
        for (int k = 1; !rc && k < nt; k++)
            if (vacc[k] < vacc[vworst]) vworst = k;
        double id = 0, top = 0;
        uint32_t mask = 0;
        int evaluated = 0, exhaustive = search ? !strcmp(search, "exhaustive") : 0;
        if (!search || !strcmp(search, "auto")) exhaustive = p.n_layers <= 6;
        /* the search's draws use another seed than the reported sweep's */
        if (!rc) rc = fefet_bera(&p, &tb, temps[vworst], &v, (int)bera_repeats, seed ^ 0xBE4Au, 0, exhaustive, &mask, &id, &top, &evaluated);
        double bacc[FEFET_EVAL_MAX_TEMPS];
        if (!rc) rc = fefet_sweep(&p, &tb, temps, nt, mask, &d, (int)repeats, seed, 0, bacc);
        int bworst = 0;
        for (int k = 1; !rc && k < nt; k++)
            if (bacc[k] < bacc[bworst]) bworst = k;
        for (int k = 0; !rc && k < nt; k++) rc = fefet_add(out, "bera_acc", temps[k], bacc[k]);
        if (!rc) rc = eval_metrics_add(out, "fefet.bera_acc_min", bacc[bworst]);
        if (!rc) rc = eval_metrics_add(out, "fefet.bera_t_worst", temps[bworst]);
        if (!rc) rc = eval_metrics_add(out, "fefet.bera_drop", clean - bacc[bworst]);
        if (!rc) rc = eval_metrics_add(out, "fefet.bera_mask", (double)mask);
        if (!rc) rc = eval_metrics_add(out, "fefet.bera_search_t", temps[vworst]);
        if (!rc) rc = eval_metrics_add(out, "fefet.bera_search_identity", id);
        if (!rc) rc = eval_metrics_add(out, "fefet.bera_search_best", top);
        if (!rc) rc = eval_metrics_add(out, "fefet.bera_evaluated", evaluated);
    }
    packed_free(&p);
    return rc;
}

static const char *const fefet_params[] = {"table",        "interp",      "temps", "repeats", "seed",  "split",
                                           "images",       "bera",        "bera_search",      "bera_repeats",
                                           "bera_images",  NULL};

/* The table file must open and parse, before any trial runs. */
static int fefet_check(const eval_params *params, const char **key) {
    const char *path = eval_param_get(params, "table");
    fefet_table tb;
    *key = "table";
    return path ? fefet_table_load(&tb, path) : fefet_table_default(&tb);
}

const evaluator eval_fefet = {
    "fefet",
    "FeFET weight memory over temperature (asymmetric p01/p10 from a table, default ILLUSTRATIVE): "
    "fefet.acc@T, fefet.acc_min, fefet.t_worst; BERA layer-wise bit assignment: fefet.bera_acc_min, fefet.bera_mask",
    fefet_params, fefet_run, fefet_check};
