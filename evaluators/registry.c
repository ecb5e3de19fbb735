/*
** The evaluator registry and the helpers every evaluator uses.
** To add an evaluator: write evaluators/NAME.c defining `const evaluator
** eval_NAME`, and add it to the two lists below.
*/
#include "evaluators/evaluator.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/err.h"
#include "evaluators/lta.h"

extern const evaluator eval_accuracy;
extern const evaluator eval_memory;
extern const evaluator eval_margin;
extern const evaluator eval_fault;
extern const evaluator eval_bop_encoding;
extern const evaluator eval_fefet;
extern const evaluator eval_lim;
extern const evaluator eval_lta;
extern const evaluator eval_capmin;
extern const evaluator eval_approxpop;

static const evaluator *const registry[] = {
    &eval_accuracy,
    &eval_memory,
    &eval_margin,
    &eval_fault,
    &eval_bop_encoding,
    &eval_fefet,
    &eval_lim,
    &eval_lta,
    &eval_capmin,
    &eval_approxpop,
    NULL,
};

const evaluator *const *eval_all(void) { return registry; }

int eval_perturbs(const train_recipe *r, perturb_set *ps) {
    memset(ps, 0, sizeof *ps);
    int rc;
    if ((rc = perturb_add_weight_flips(ps, r)) || (rc = perturb_add_xnor_errors(ps, r)) ||
        (rc = lta_add_training(ps, r)) || (rc = perturb_add_act_flips(ps, r)))
        return rc;
    return BN_OK;
}

const evaluator *eval_find(const char *name) {
    for (int i = 0; registry[i]; i++)
        if (!strcmp(registry[i]->name, name)) return registry[i];
    return NULL;
}

int eval_params_check(const evaluator *e, const eval_params *p) {
    for (int i = 0; i < p->n; i++) {
        int ok = 0;
        for (int k = 0; e->params && e->params[k]; k++)
            if (!strcmp(e->params[k], p->p[i].key)) ok = 1;
        if (!ok) {
            char accepted[512] = "";
            size_t used = 0;
            for (int k = 0; e->params && e->params[k]; k++) {
                int w = snprintf(accepted + used, sizeof accepted - used, "%s%s", k ? ", " : "", e->params[k]);
                if (w < 0 || (size_t)w >= sizeof accepted - used) break;
                used += (size_t)w;
            }
            return bn_error(BN_EARG, "evaluator %s has no parameter '%s' (accepted: %s)", e->name,
                            p->p[i].key, used ? accepted : "none");
        }
    }
    return BN_OK;
}

const char *eval_param_get(const eval_params *p, const char *key) {
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->p[i].key, key)) return p->p[i].value;
    return NULL;
}

/* Parses one number at *s, advancing *s; 0 on failure. */
static int parse_number(const char **s, double *out) {
    char *end;
    while (isspace((unsigned char)**s)) (*s)++;
    double v = strtod(*s, &end);
    if (end == *s || !isfinite(v)) return 0;
    *s = end;
    while (isspace((unsigned char)**s)) (*s)++;
    *out = v;
    return 1;
}

int eval_split(const eval_context *ctx, const eval_params *p, const char *who, double def_images, dataset *out) {
    const char *split = eval_param_get(p, "split");
    const dataset *d = NULL;
    if (!split || !strcmp(split, "val")) d = ctx->val;
    else if (!strcmp(split, "test")) d = ctx->test;
    else return bn_error(BN_EARG, "%s: split must be val or test (got '%s')", who, split);
    if (!d || d->n <= 0) return bn_error(BN_EARG, "%s: the %s split is empty", who, split ? split : "val");
    double images;
    int rc = eval_param_double(p, "images", def_images, &images);
    if (rc) return rc;
    if (images < 0) return bn_error(BN_EARG, "%s: images must be >= 0", who);
    *out = images > 0 && images < d->n ? data_slice(d, 0, (int)images) : *d;
    return BN_OK;
}

int eval_param_double(const eval_params *p, const char *key, double def, double *out) {
    const char *v = eval_param_get(p, key);
    if (!v) { *out = def; return BN_OK; }
    const char *s = v;
    if (!parse_number(&s, out) || *s)
        return bn_error(BN_EARG, "parameter '%s': '%s' is not a number", key, v);
    return BN_OK;
}

int eval_param_list(const eval_params *p, const char *key, const double *def, int n_def,
                    double *out, int max, int *count) {
    const char *v = eval_param_get(p, key);
    if (!v) {
        if (n_def > max) return bn_error(BN_EARG, "parameter '%s': default list too long", key);
        if (n_def > 0) memcpy(out, def, sizeof(double) * (size_t)n_def);
        *count = n_def;
        return BN_OK;
    }
    const char *s = v;
    while (isspace((unsigned char)*s)) s++;
    int bracket = *s == '[';
    if (bracket) s++;
    int n = 0;
    for (;;) {
        while (isspace((unsigned char)*s)) s++;
        if (bracket && *s == ']' && n == 0) { s++; break; }
        if (n >= max) return bn_error(BN_EARG, "parameter '%s': more than %d values", key, max);
        if (!parse_number(&s, &out[n])) return bn_error(BN_EARG, "parameter '%s': '%s' is not a list of numbers", key, v);
        n++;
        if (*s == ',') { s++; continue; }
        if (bracket) {
            if (*s != ']') return bn_error(BN_EARG, "parameter '%s': missing ']' in '%s'", key, v);
            s++;
        }
        break;
    }
    while (isspace((unsigned char)*s)) s++;
    if (*s) return bn_error(BN_EARG, "parameter '%s': unexpected '%s' in '%s'", key, s, v);
    *count = n;
    return BN_OK;
}

/* ---- Data files ---- */

#ifndef BNAS_DATA_DIR
#define BNAS_DATA_DIR "evaluators/data"
#endif

const char *eval_data_dir(void) {
    const char *e = getenv("BNAS_DATA_DIR");
    return e && *e ? e : BNAS_DATA_DIR;
}

int eval_file_text(const char *path, char **text) {
    *text = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return bn_error(BN_EIO, "cannot open '%s': %s", path, strerror(errno));
    char *t = bn_malloc(1 << 20);
    size_t n = fread(t, 1, (1 << 20) - 1, f);
    int big = !feof(f), bad = ferror(f);
    fclose(f);
    t[n] = '\0';
    if (big || bad) {
        free(t);
        return big ? bn_error(BN_EFORMAT, "%s: larger than 1 MiB", path) : bn_error(BN_EIO, "%s: read error", path);
    }
    *text = t;
    return BN_OK;
}

int eval_data_text(const char *name, char *path, size_t n, char **text) {
    snprintf(path, n, "%s/%s", eval_data_dir(), name);
    int rc = eval_file_text(path, text);
    if (rc != BN_EIO) return rc;
    char why[512];
    snprintf(why, sizeof why, "%s", bn_errmsg());
    return bn_error(BN_EIO, "%s (the shipped device data; set BNAS_DATA_DIR to the folder holding %s, "
                            "or name a table file)", why, name);
}

int eval_metrics_add(eval_metrics *out, const char *name, double value) {
    if (out->n >= EVAL_MAX_METRICS)
        return bn_error(BN_EARG, "too many metrics: '%.80s' would be number %d (at most %d)", name,
                        out->n + 1, EVAL_MAX_METRICS);
    if (strlen(name) >= EVAL_NAME_MAX)
        return bn_error(BN_EARG, "metric name '%.80s%s' is longer than %d characters", name,
                        strlen(name) > 80 ? "..." : "", EVAL_NAME_MAX - 1);
    snprintf(out->m[out->n].name, EVAL_NAME_MAX, "%s", name);
    out->m[out->n].value = value;
    out->n++;
    return BN_OK;
}

int eval_metrics_set(eval_metrics *out, const char *name, double value) {
    for (int i = 0; i < out->n; i++)
        if (!strcmp(out->m[i].name, name)) {
            out->m[i].value = value;
            return BN_OK;
        }
    return eval_metrics_add(out, name, value);
}

double eval_metrics_get(const eval_metrics *m, const char *name) {
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->m[i].name, name)) return m->m[i].value;
    return NAN;
}

int eval_run(const char *name, const eval_context *ctx, const eval_params *params, eval_metrics *out) {
    const evaluator *e = eval_find(name);
    if (!e) return bn_error(BN_EARG, "unknown evaluator '%s'", name);
    int rc = eval_params_check(e, params);
    if (rc) return rc;
    return e->run(ctx, params, out);
}
