/*
** The study report (nas/report.h): reads a study database and writes one
** self-contained HTML page with inline SVG charts. The page is built in a
** growing memory buffer and written at the end, so a failed report leaves no
** half-written file behind (the output file is only opened once the page is done).
*/
#define _POSIX_C_SOURCE 200809L
#include "nas/report.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/err.h"
#include "nas/spec.h"
#include "nas/store.h"
#include "nas/strategy.h"
#include "nas/trial.h"

#define REP_MAX_NAMES 128 /* distinct metric names shown in the table */
#define REP_MAX_RATES 64  /* distinct bit error rates in the fault chart */

/* ---- output buffer ---------------------------------------------------- */

/* A growing text buffer. */
typedef struct {
    char *p;     /* text, NUL-terminated */
    size_t n;    /* used bytes */
    size_t cap;  /* allocated bytes */
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (b->n + n + 1 > cap) cap *= 2;
        b->p = realloc(b->p, cap);
        BN_ASSERT(b->p != NULL);
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    BN_ASSERT(n >= 0);
    if ((size_t)n < sizeof tmp) {
        sb_put(b, tmp, (size_t)n);
        return;
    }
    char *big = bn_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_put(b, big, (size_t)n);
    free(big);
}

/* Appends s with the HTML special characters escaped. */
static void sb_esc(sbuf *b, const char *s) {
    const char *run = s;
    for (; *s; s++) {
        const char *e = NULL;
        switch (*s) {
        case '&': e = "&amp;"; break;
        case '<': e = "&lt;"; break;
        case '>': e = "&gt;"; break;
        case '"': e = "&quot;"; break;
        case '\'': e = "&#39;"; break;
        default: continue;
        }
        sb_put(b, run, (size_t)(s - run));
        sb_puts(b, e);
        run = s + 1;
    }
    sb_put(b, run, (size_t)(s - run));
}

/* A number for people: 4 significant digits, k/M for large magnitudes. */
static void fmt_num(char *buf, size_t cap, double v) {
    double a = fabs(v);
    if (!isfinite(v)) snprintf(buf, cap, "%s", isnan(v) ? "-" : v > 0 ? "inf" : "-inf");
    else if (a >= 1e6) snprintf(buf, cap, "%.4gM", v / 1e6);
    else if (a >= 1e4) snprintf(buf, cap, "%.4gk", v / 1e3);
    else snprintf(buf, cap, "%.4g", v);
}

/* ---- the study in memory ---------------------------------------------- */

/* One trial as the report needs it. */
typedef struct {
    int number;                 /* trial number */
    int batch;                  /* proposal batch */
    int state;                  /* trial_state */
    int front;                  /* 1: on the Pareto front */
    char origin[64];            /* how the strategy made it */
    char topology[256];         /* topology string */
    char config[512];           /* canonical configuration */
    char fail_reason[256];      /* FAIL / INVALID reason */
    double seconds;             /* wall time */
    double m[REP_MAX_NAMES];    /* metric values by name index, NAN if missing */
} rep_trial;

/* A loaded study. */
typedef struct {
    char path[512];                    /* file name */
    store *st;                         /* open store (readonly) */
    store_summary sum;                 /* counts, strategy, elapsed */
    spec s;                            /* the frozen spec, if it parses */
    int have_spec;                     /* 1: s is valid */
    char spec_err[1024];               /* why the spec did not parse */
    char *spec_path, *spec_text;       /* frozen spec (malloc'd) */
    char *space_path, *space_text;     /* frozen space (malloc'd, NULL if inline) */
    rep_trial *t;                      /* (n) trials in number order */
    int n, cap;
    int n_names;                       /* metric names seen */
    char names[REP_MAX_NAMES][48];     /* their names */
    int dropped_names;                 /* metric names beyond REP_MAX_NAMES */
    int *hv_trial;                     /* (n_hv) trial of each hypervolume row */
    double *hv;                        /* (n_hv) hypervolume after it */
    int n_hv, cap_hv;
} study;

static int name_index(study *S, const char *name, int add) {
    for (int i = 0; i < S->n_names; i++)
        if (!strcmp(S->names[i], name)) return i;
    if (!add) return -1;
    if (S->n_names == REP_MAX_NAMES) {
        S->dropped_names++;
        return -1;
    }
    snprintf(S->names[S->n_names], sizeof S->names[0], "%s", name);
    return S->n_names++;
}

static int load_trial(void *user, const store_trial *t) {
    study *S = user;
    if (S->n == S->cap) {
        S->cap = S->cap ? S->cap * 2 : 256;
        S->t = realloc(S->t, (size_t)S->cap * sizeof *S->t);
        BN_ASSERT(S->t != NULL);
    }
    rep_trial *r = &S->t[S->n++];
    r->number = t->number;
    r->batch = t->batch;
    r->state = t->state;
    r->front = 0;
    snprintf(r->origin, sizeof r->origin, "%s", t->origin);
    snprintf(r->topology, sizeof r->topology, "%s", t->topology);
    snprintf(r->config, sizeof r->config, "%s", t->config);
    snprintf(r->fail_reason, sizeof r->fail_reason, "%s", t->fail_reason);
    r->seconds = t->seconds;
    for (int i = 0; i < REP_MAX_NAMES; i++) r->m[i] = NAN;
    for (int i = 0; i < t->n_metrics; i++) {
        int k = name_index(S, t->mname[i], 1);
        if (k >= 0) r->m[k] = t->mvalue[i];
    }
    return 0;
}

static int cmp_trial_number(const void *a, const void *b) {
    int x = *(const int *)a, y = ((const rep_trial *)b)->number;
    return (x > y) - (x < y);
}

static int mark_front(void *user, const store_trial *t) {
    study *S = user;
    rep_trial *r = bsearch(&t->number, S->t, (size_t)S->n, sizeof *S->t, cmp_trial_number);
    if (r) r->front = 1;
    return 0;
}

static int load_hv(void *user, int trial, int completed, int front_size, double hv) {
    (void)completed;
    (void)front_size;
    study *S = user;
    if (S->n_hv == S->cap_hv) {
        S->cap_hv = S->cap_hv ? S->cap_hv * 2 : 256;
        S->hv_trial = realloc(S->hv_trial, (size_t)S->cap_hv * sizeof *S->hv_trial);
        S->hv = realloc(S->hv, (size_t)S->cap_hv * sizeof *S->hv);
        BN_ASSERT(S->hv_trial && S->hv);
    }
    S->hv_trial[S->n_hv] = trial;
    S->hv[S->n_hv++] = hv;
    return 0;
}

static void study_free(study *S) {
    if (S->have_spec) spec_free(&S->s);
    store_close(S->st);
    free(S->spec_path);
    free(S->spec_text);
    free(S->space_path);
    free(S->space_text);
    free(S->t);
    free(S->hv_trial);
    free(S->hv);
    memset(S, 0, sizeof *S);
}

/* Opens and reads a study; full = 0 reads only the summary and hypervolume rows. */
static int study_load(study *S, const char *path, int full) {
    memset(S, 0, sizeof *S);
    snprintf(S->path, sizeof S->path, "%s", path);
    int rc = store_open(&S->st, path, 1);
    if (rc) return rc;
    if ((rc = store_summary_get(S->st, &S->sum))) return rc;
    if ((rc = store_each_hv(S->st, load_hv, S))) return rc;
    if (!full) return BN_OK;
    uint64_t hash = 0;
    if ((rc = store_get_spec(S->st, &S->spec_path, &S->spec_text, &S->space_path, &S->space_text,
                             &hash)))
        return rc;
    /* A spec that no longer parses (e.g. written by another bnas version)
       still gives a report, without the parts that need it. */
    if (spec_parse(&S->s, S->spec_path ? S->spec_path : path, S->spec_text ? S->spec_text : "",
                   S->space_path, S->space_text) == BN_OK)
        S->have_spec = 1;
    else
        snprintf(S->spec_err, sizeof S->spec_err, "%s", bn_errmsg());
    if ((rc = store_each_trial(S->st, 0, load_trial, S))) return rc;
    return store_each_trial(S->st, 1, mark_front, S);
}

/* ---- charts ------------------------------------------------------------ */

/* A data range mapped onto a pixel range. */
typedef struct {
    double lo, hi;   /* data range (log: both > 0) */
    int log;         /* 1: logarithmic */
    double p0, p1;   /* pixels of lo and hi */
} axis;

/* Fits the axis to the finite values v[0..n); log if allowed, all positive
   and spanning more than a factor 50. */
static void axis_fit(axis *a, const double *v, int n, int allow_log) {
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) {
            if (v[i] < lo) lo = v[i];
            if (v[i] > hi) hi = v[i];
        }
    if (!(lo <= hi)) lo = 0, hi = 1;
    a->log = allow_log && lo > 0 && hi / lo > 50;
    if (a->log) {
        a->lo = lo / 1.25;
        a->hi = hi * 1.25;
    } else if (hi == lo) {
        double d = lo != 0 ? fabs(lo) * 0.1 : 0.5;
        a->lo = lo - d;
        a->hi = hi + d;
    } else {
        double d = (hi - lo) * 0.06;
        a->lo = lo - d;
        a->hi = hi + d;
    }
}

static double axis_px(const axis *a, double v) {
    double f = a->log ? (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo))
                      : (v - a->lo) / (a->hi - a->lo);
    return a->p0 + f * (a->p1 - a->p0);
}

/* Round tick values inside the axis range; returns their count. */
static int axis_ticks(const axis *a, double *t, int cap) {
    int n = 0;
    if (a->log) {
        int d0 = (int)floor(log10(a->lo)), d1 = (int)ceil(log10(a->hi));
        static const double mult[3] = {1, 2, 5};
        int dense = d1 - d0 <= 3;
        for (int d = d0; d <= d1; d++)
            for (int k = 0; k < (dense ? 3 : 1); k++) {
                double v = mult[k] * pow(10, d);
                if (v >= a->lo && v <= a->hi && n < cap) t[n++] = v;
            }
        return n;
    }
    double range = a->hi - a->lo, step = pow(10, floor(log10(range / 5)));
    if (range / step > 12) step *= 5;
    else if (range / step > 6) step *= 2;
    for (double v = ceil(a->lo / step) * step; v <= a->hi + step * 1e-9 && n < cap; v += step)
        t[n++] = fabs(v) < step * 1e-9 ? 0 : v;
    return n;
}

/* Colour of f in [0, 1] on the viridis scale (5 stops, linear between). */
static void viridis(double f, char *buf, size_t cap) {
    static const int stops[5][3] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
    if (!(f >= 0)) f = 0;
    if (f > 1) f = 1;
    double x = f * 4;
    int i = x >= 4 ? 3 : (int)x;
    double w = x - i;
    int c[3];
    for (int k = 0; k < 3; k++) c[k] = (int)lround(stops[i][k] * (1 - w) + stops[i + 1][k] * w);
    snprintf(buf, cap, "#%02x%02x%02x", c[0], c[1], c[2]);
}

static const char *const palette[10] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                        "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"};

#define PW 560  /* plot width */
#define PH 380  /* plot height */
#define ML 72   /* left margin */
#define MR 24   /* right margin (plus a colour bar when there is one) */
#define MT 16   /* top margin */
#define MB 52   /* bottom margin */

/* Opens an SVG of w x PH with the frame, grid and tick labels of axes x and y. */
static void chart_open(sbuf *b, int w, const axis *x, const axis *y, const char *xlabel,
                       const char *ylabel, const char *cls) {
    sb_printf(b, "<svg class=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
                 "width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n",
              cls, w, PH, w, PH);
    sb_printf(b, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"#fff\" stroke=\"#888\"/>\n",
              x->p0, y->p1, x->p1 - x->p0, y->p0 - y->p1);
    double t[64];
    char lab[32];
    int n = axis_ticks(x, t, 64);
    for (int i = 0; i < n; i++) {
        double px = axis_px(x, t[i]);
        fmt_num(lab, sizeof lab, t[i]);
        sb_printf(b, "<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" stroke=\"#e4e4e4\"/>"
                     "<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%s</text>\n",
                  px, y->p1, px, y->p0, px, y->p0 + 16, lab);
    }
    n = axis_ticks(y, t, 64);
    for (int i = 0; i < n; i++) {
        double py = axis_px(y, t[i]);
        fmt_num(lab, sizeof lab, t[i]);
        sb_printf(b, "<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                     "<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                  x->p0, py, x->p1, py, x->p0 - 6, py + 4, lab);
    }
    sb_printf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"13\">", (x->p0 + x->p1) / 2,
              PH - 12);
    sb_esc(b, xlabel);
    sb_printf(b, "%s</text>\n", x->log ? " (log scale)" : "");
    sb_printf(b, "<text transform=\"translate(16 %.1f) rotate(-90)\" text-anchor=\"middle\" "
                 "font-size=\"13\">", (y->p0 + y->p1) / 2);
    sb_esc(b, ylabel);
    sb_printf(b, "%s</text>\n", y->log ? " (log scale)" : "");
}

/* The metric index of objective j, -1 if no trial reported it. */
static int obj_index(study *S, int j) { return name_index(S, S->s.obj[j].metric, 0); }

static void obj_label(const study *S, int j, char *buf, size_t cap) {
    snprintf(buf, cap, "%s (%s)", S->s.obj[j].metric, S->s.obj[j].maximize ? "max" : "min");
}

/* Appends the tooltip lines of trial r: number, topology and the objectives. */
static void point_title(sbuf *b, const study *S, const rep_trial *r) {
    sb_printf(b, "<title>trial %d%s: ", r->number, r->front ? " (front)" : "");
    sb_esc(b, r->topology);
    char v[32];
    for (int j = 0; j < S->s.n_obj; j++) {
        int k = -1;
        for (int i = 0; i < S->n_names; i++)
            if (!strcmp(S->names[i], S->s.obj[j].metric)) k = i;
        if (k < 0) continue;
        fmt_num(v, sizeof v, r->m[k]);
        sb_printf(b, "&#10;%s = %s", S->s.obj[j].metric, v);
    }
    sb_puts(b, "</title>");
}

/* Scatter of objective xj against yj over the COMPLETE trials; front members
   large and coloured by objective cj (-1: one colour). */
static void chart_front(sbuf *b, study *S, int xj, int yj, int cj) {
    int kx = obj_index(S, xj), ky = obj_index(S, yj), kc = cj >= 0 ? obj_index(S, cj) : -1;
    double *xs = bn_malloc((size_t)S->n * sizeof *xs), *ys = bn_malloc((size_t)S->n * sizeof *ys);
    int n = 0;
    double clo = INFINITY, chi = -INFINITY;
    for (int i = 0; i < S->n; i++) {
        const rep_trial *r = &S->t[i];
        if (r->state != TRIAL_COMPLETE) continue;
        xs[n] = kx >= 0 ? r->m[kx] : NAN;
        ys[n++] = ky >= 0 ? r->m[ky] : NAN;
        if (kc >= 0 && r->front && isfinite(r->m[kc])) {
            if (r->m[kc] < clo) clo = r->m[kc];
            if (r->m[kc] > chi) chi = r->m[kc];
        }
    }
    int w = PW + (kc >= 0 ? 90 : 0);
    axis x, y;
    axis_fit(&x, xs, n, 1);
    axis_fit(&y, ys, n, 1);
    x.p0 = ML, x.p1 = PW - MR;
    y.p0 = PH - MB, y.p1 = MT;
    char xl[80], yl[80], cl[80];
    obj_label(S, xj, xl, sizeof xl);
    obj_label(S, yj, yl, sizeof yl);
    chart_open(b, w, &x, &y, xl, yl, "front");
    /* The dominated trials first (under), then the front. */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0, k = 0; i < S->n; i++) {
            const rep_trial *r = &S->t[i];
            if (r->state != TRIAL_COMPLETE) continue;
            double vx = xs[k], vy = ys[k++];
            if (r->front != pass || !isfinite(vx) || !isfinite(vy)) continue;
            if ((x.log && vx <= 0) || (y.log && vy <= 0)) continue;
            if (!pass) {
                sb_printf(b, "<circle class=\"trial\" cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"#b8b8b8\">",
                          axis_px(&x, vx), axis_px(&y, vy));
            } else {
                char col[8] = "#d62728";
                if (kc >= 0 && isfinite(r->m[kc]))
                    viridis(chi > clo ? (r->m[kc] - clo) / (chi - clo) : 0.5, col, sizeof col);
                sb_printf(b, "<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"5.5\" fill=\"%s\" "
                             "stroke=\"#222\" stroke-width=\"0.8\">",
                          axis_px(&x, vx), axis_px(&y, vy), col);
            }
            point_title(b, S, r);
            sb_puts(b, "</circle>\n");
        }
    if (kc >= 0 && clo <= chi) { /* colour bar */
        int bx = PW + 8, by0 = MT + 20, bh = PH - MT - MB - 40;
        sb_puts(b, "<defs><linearGradient id=\"vir\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">");
        for (int s = 0; s <= 4; s++) {
            char col[8];
            viridis(s / 4.0, col, sizeof col);
            sb_printf(b, "<stop offset=\"%d%%\" stop-color=\"%s\"/>", s * 25, col);
        }
        sb_puts(b, "</linearGradient></defs>\n");
        sb_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"%d\" fill=\"url(#vir)\" stroke=\"#888\"/>\n",
                  bx, by0, bh);
        char lo[32], hi[32];
        fmt_num(lo, sizeof lo, clo);
        fmt_num(hi, sizeof hi, chi);
        sb_printf(b, "<text x=\"%d\" y=\"%d\">%s</text><text x=\"%d\" y=\"%d\">%s</text>\n", bx + 18,
                  by0 + 10, hi, bx + 18, by0 + bh, lo);
        obj_label(S, cj, cl, sizeof cl);
        sb_printf(b, "<text transform=\"translate(%d %d) rotate(-90)\" text-anchor=\"middle\">", bx + 60,
                  by0 + bh / 2);
        sb_esc(b, cl);
        sb_puts(b, " (colour)</text>\n");
    }
    sb_puts(b, "</svg>\n");
    free(xs);
    free(ys);
}

/* Hypervolume after each completed trial, one step curve per study. */
static void chart_hv(sbuf *b, study *const *all, int n_all) {
    double xr[2] = {0, 1}, *ys = NULL;
    int ny = 0;
    for (int s = 0; s < n_all; s++) {
        ys = realloc(ys, (size_t)(ny + all[s]->n_hv + 1) * sizeof *ys);
        BN_ASSERT(ys != NULL);
        for (int i = 0; i < all[s]->n_hv; i++) {
            ys[ny++] = all[s]->hv[i];
            if (all[s]->hv_trial[i] > xr[1]) xr[1] = all[s]->hv_trial[i];
        }
    }
    ys[ny++] = 0;
    axis x, y;
    axis_fit(&x, xr, 2, 0);
    axis_fit(&y, ys, ny, 0);
    x.lo = 0;
    x.p0 = ML, x.p1 = PW - MR;
    y.p0 = PH - MB, y.p1 = MT;
    int w = PW + 190;
    chart_open(b, w, &x, &y, "trial number", "hypervolume", "hv");
    for (int s = 0; s < n_all; s++) {
        const study *S = all[s];
        const char *col = palette[s % 10];
        if (S->n_hv > 0) {
            sb_printf(b, "<polyline class=\"hvline\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"",
                      col);
            for (int i = 0; i < S->n_hv; i++) {
                if (i) sb_printf(b, "%.1f,%.1f ", axis_px(&x, S->hv_trial[i]), axis_px(&y, S->hv[i - 1]));
                sb_printf(b, "%.1f,%.1f ", axis_px(&x, S->hv_trial[i]), axis_px(&y, S->hv[i]));
            }
            sb_puts(b, "\"><title>");
            sb_esc(b, S->sum.strategy);
            sb_puts(b, ": ");
            sb_esc(b, S->sum.name);
            sb_puts(b, "</title></polyline>\n");
        }
        char v[32];
        fmt_num(v, sizeof v, S->n_hv ? S->hv[S->n_hv - 1] : 0);
        int ly = MT + 14 + 36 * s;
        sb_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"/>"
                     "<text x=\"%d\" y=\"%d\">", PW, ly, PW + 18, ly, col, PW + 24, ly + 4);
        sb_esc(b, S->sum.strategy);
        sb_printf(b, " (final %s)</text><text x=\"%d\" y=\"%d\" fill=\"#555\" font-size=\"11\">", v, PW + 24,
                  ly + 18);
        sb_esc(b, S->sum.name);
        sb_puts(b, "</text>\n");
    }
    sb_puts(b, "</svg>\n");
    free(ys);
}

/* The headline bit error rate of the fault evaluator (its ber parameter,
   default 0.01), or -1 if it has none (no fault evaluator, asymmetric rates). */
static double headline_ber(const study *S) {
    if (!S->have_spec) return -1;
    for (int e = 0; e < S->s.n_eval; e++) {
        const spec_evaluator *ev = &S->s.eval[e];
        if (strcmp(ev->name, "fault")) continue;
        double ber = 0.01;
        for (int p = 0; p < ev->n_params; p++) {
            if (!strcmp(ev->params[p].key, "p01") || !strcmp(ev->params[p].key, "p10")) return -1;
            if (!strcmp(ev->params[p].key, "ber")) ber = strtod(ev->params[p].value, NULL);
        }
        return ber > 0 ? ber : -1;
    }
    return -1;
}

/* The rates with fault accuracy on the front: rate[i] and the metric index of
   its accuracy; returns their count (sorted by rate). */
static int fault_rates(study *S, double *rate, int *idx) {
    int n = 0;
    double ber = headline_ber(S);
    int kh = name_index(S, "fault.acc", 0);
    if (ber > 0 && kh >= 0) rate[n] = ber, idx[n++] = kh;
    for (int k = 0; k < S->n_names && n < REP_MAX_RATES; k++) {
        if (strncmp(S->names[k], "fault.acc@", 10)) continue;
        char *end;
        double r = strtod(S->names[k] + 10, &end);
        if (*end || !(r > 0)) continue;
        int dup = 0;
        for (int i = 0; i < n; i++)
            if (fabs(rate[i] - r) <= 1e-12 * r) dup = 1;
        if (!dup) rate[n] = r, idx[n++] = k;
    }
    /* Keep only rates some front member has. */
    int m = 0;
    for (int i = 0; i < n; i++) {
        int any = 0;
        for (int t = 0; t < S->n && !any; t++) any = S->t[t].front && isfinite(S->t[t].m[idx[i]]);
        if (any) rate[m] = rate[i], idx[m++] = idx[i];
    }
    for (int i = 1; i < m; i++) /* insertion sort of the pairs by rate */
        for (int j = i; j > 0 && rate[j] < rate[j - 1]; j--) {
            double tr = rate[j];
            rate[j] = rate[j - 1], rate[j - 1] = tr;
            int ti = idx[j];
            idx[j] = idx[j - 1], idx[j - 1] = ti;
        }
    return m;
}

/* Accuracy over bit error rate for the front's models. */
static void chart_ber(sbuf *b, study *S, const double *rate, const int *idx, int nr) {
    double xr[2] = {rate[0], rate[nr - 1]};
    double *ys = bn_malloc((size_t)(S->n * nr + 1) * sizeof *ys);
    int ny = 0, n_front = 0;
    for (int t = 0; t < S->n; t++) {
        if (!S->t[t].front) continue;
        n_front++;
        for (int i = 0; i < nr; i++) ys[ny++] = S->t[t].m[idx[i]];
    }
    axis x, y;
    axis_fit(&x, xr, 2, 0);
    x.log = 1;
    x.lo = rate[0] / 1.5;
    x.hi = rate[nr - 1] * 1.5;
    axis_fit(&y, ys, ny, 0);
    x.p0 = ML, x.p1 = PW - MR;
    y.p0 = PH - MB, y.p1 = MT;
    int legend = n_front <= 14;
    chart_open(b, PW + (legend ? 230 : 0), &x, &y, "bit error rate", "accuracy under bit errors", "ber");
    int c = 0;
    for (int t = 0; t < S->n; t++) {
        const rep_trial *r = &S->t[t];
        if (!r->front) continue;
        const char *col = palette[c % 10];
        sb_printf(b, "<g class=\"bercurve\"><title>trial %d: ", r->number);
        sb_esc(b, r->topology);
        sb_printf(b, "</title><polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\" points=\"", col);
        for (int i = 0; i < nr; i++)
            if (isfinite(r->m[idx[i]]))
                sb_printf(b, "%.1f,%.1f ", axis_px(&x, rate[i]), axis_px(&y, r->m[idx[i]]));
        sb_puts(b, "\"/>");
        for (int i = 0; i < nr; i++)
            if (isfinite(r->m[idx[i]]))
                sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>", axis_px(&x, rate[i]),
                          axis_px(&y, r->m[idx[i]]), col);
        sb_puts(b, "</g>\n");
        if (legend) {
            int ly = MT + 10 + 22 * c;
            sb_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"/>"
                         "<text x=\"%d\" y=\"%d\" font-size=\"11\">trial %d ",
                      PW, ly, PW + 16, ly, col, PW + 22, ly + 4, r->number);
            char top[40];
            snprintf(top, sizeof top, "%.28s%s", r->topology, strlen(r->topology) > 28 ? "..." : "");
            sb_esc(b, top);
            sb_puts(b, "</text>\n");
        }
        c++;
    }
    sb_puts(b, "</svg>\n");
    free(ys);
}

/* ---- page -------------------------------------------------------------- */

static const char *const css =
    "body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}"
    "h1{font-size:22px;margin-bottom:4px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccc}"
    ".note{background:#fff6d5;border:1px solid #e0c060;padding:8px 12px;border-radius:4px}"
    ".err{background:#fde2e2;border-color:#d08080}"
    "dl.kv{display:grid;grid-template-columns:max-content auto;gap:2px 16px;margin:8px 0}"
    "dl.kv dt{color:#666}dl.kv dd{margin:0}"
    "svg{border:1px solid #ddd;margin:6px 12px 6px 0;background:#fafafa}"
    ".charts{display:flex;flex-wrap:wrap}"
    ".tablewrap{overflow:auto;max-height:900px}"
    "table.trials{border-collapse:collapse;font-size:12px}"
    "table.trials th,table.trials td{border:1px solid #ddd;padding:2px 6px;text-align:right;white-space:nowrap}"
    "table.trials th{background:#eee;position:sticky;top:0}"
    "table.trials td.l{text-align:left}"
    "tr.FAIL td{background:#fde2e2}tr.INVALID td{color:#999}tr.WAITING td,tr.RUNNING td{background:#fff6d5}"
    "tr.front td{font-weight:bold}"
    "pre{background:#f4f4f4;padding:10px;border:1px solid #ddd;overflow:auto}";

static void kv(sbuf *b, const char *k, const char *v) {
    sb_puts(b, "<dt>");
    sb_esc(b, k);
    sb_puts(b, "</dt><dd>");
    sb_esc(b, v);
    sb_puts(b, "</dd>");
}

static void section_summary(sbuf *b, study *S, report_info *info) {
    store_summary *u = &S->sum;
    int done = u->count[TRIAL_COMPLETE] + u->count[TRIAL_FAIL];
    int pending = u->count[TRIAL_WAITING] + u->count[TRIAL_RUNNING];
    char v[256];
    sb_puts(b, "<dl class=\"kv\">");
    kv(b, "study file", S->path);
    kv(b, "strategy", u->strategy);
    snprintf(v, sizeof v, "%016llx", (unsigned long long)u->spec_hash);
    kv(b, "spec hash", v);
    if (S->have_spec) {
        snprintf(v, sizeof v, "%llu", (unsigned long long)S->s.seed);
        kv(b, "seed", v);
        snprintf(v, sizeof v, "%d trials%s", S->s.max_trials, S->s.wall_time > 0 ? ", wall time limit" : "");
        kv(b, "budget", v);
    }
    snprintf(v, sizeof v, "%d complete, %d failed, %d invalid, %d pending", u->count[TRIAL_COMPLETE],
             u->count[TRIAL_FAIL], u->count[TRIAL_INVALID], pending);
    kv(b, "trials", v);
    char hv[32];
    fmt_num(hv, sizeof hv, u->hv);
    snprintf(v, sizeof v, "%d trials, hypervolume %s", u->front, hv);
    kv(b, "Pareto front", v);
    snprintf(v, sizeof v, "%.1f s", u->elapsed);
    kv(b, "search time", v);
    sb_puts(b, "</dl>\n");
    int wall_over = S->have_spec && S->s.wall_time > 0 && u->elapsed >= S->s.wall_time;
    info->unfinished = S->n == 0 || pending > 0 || (S->have_spec && done < S->s.max_trials && !wall_over);
    if (S->n == 0) {
        sb_puts(b, "<p class=\"note\" id=\"state\">This study is empty: it has no trials yet, so there is "
                   "nothing to plot. Start it with <code>bnas resume ");
        sb_esc(b, S->path);
        sb_puts(b, "</code>.</p>\n");
    } else if (info->unfinished) {
        sb_printf(b, "<p class=\"note\" id=\"state\">This study is unfinished: %d of %d trials done, "
                     "%d pending. The charts show the trials done so far; continue it with "
                     "<code>bnas resume ",
                  done, S->have_spec ? S->s.max_trials : done + pending, pending);
        sb_esc(b, S->path);
        sb_puts(b, "</code>.</p>\n");
    }
    if (!S->have_spec) {
        sb_puts(b, "<p class=\"note err\">The study's frozen spec does not parse with this bnas, so the "
                   "objectives are unknown and the front and fault charts are left out: ");
        sb_esc(b, S->spec_err);
        sb_puts(b, "</p>\n");
    }
}

static void section_front(sbuf *b, study *S) {
    sb_puts(b, "<h2 id=\"front\">Pareto front</h2>\n");
    if (!S->have_spec) return;
    if (S->sum.count[TRIAL_COMPLETE] == 0) {
        sb_puts(b, "<p class=\"note\">No completed trials yet: no front to show.</p>\n");
        return;
    }
    int m = S->s.n_obj;
    sb_printf(b, "<p>Grey: every completed trial; large points: the %d trials of the Pareto front over "
                 "all %d objectives%s. Hover a point for its trial.</p>\n<div class=\"charts\">\n",
              S->sum.front, m, m == 3 ? ", coloured by the objective not on the axes" : "");
    if (m == 1) {
        /* One objective: the objective against itself would say nothing; use
           model_bytes or the trial order if absent. */
        chart_front(b, S, 0, 0, -1);
    } else {
        for (int i = 0; i < m; i++)
            for (int j = i + 1; j < m; j++) chart_front(b, S, i, j, m == 3 ? 3 - i - j : -1);
    }
    sb_puts(b, "</div>\n");
}

static void section_hv(sbuf *b, study *const *all, int n_all) {
    sb_puts(b, "<h2 id=\"hypervolume\">Hypervolume over trials</h2>\n");
    int any = 0;
    for (int s = 0; s < n_all; s++) any |= all[s]->n_hv > 0;
    if (!any) {
        sb_puts(b, "<p class=\"note\">No completed trials yet: no hypervolume to show.</p>\n");
        return;
    }
    sb_printf(b, "<p>Hypervolume of the front after each completed trial (reference point from the "
                 "spec's objectives), per strategy%s.</p>\n",
              n_all > 1 ? " (one curve per study file given)" : "; give more study files to "
                                                             "<code>bnas report</code> to compare strategies");
    chart_hv(b, all, n_all);
}

static void section_ber(sbuf *b, study *S, report_info *info) {
    sb_puts(b, "<h2 id=\"ber\">Accuracy over bit error rate (front models)</h2>\n");
    double rate[REP_MAX_RATES];
    int idx[REP_MAX_RATES];
    int nr = S->have_spec ? fault_rates(S, rate, idx) : 0;
    info->ber_rates = nr;
    if (nr < 2) {
        sb_printf(b, "<p class=\"note\" id=\"nober\">No accuracy-over-error-rate curve: the study's "
                     "evaluators recorded fault accuracy of the front's models at %d bit error rate%s; "
                     "a curve needs at least two (give the fault evaluator a list, e.g. "
                     "<code>{name: fault, ber: 0.01, rates: [0.001, 0.05]}</code>).</p>\n",
                  nr, nr == 1 ? "" : "s");
        return;
    }
    sb_printf(b, "<p>Mean accuracy under random weight bit errors (fault evaluator) at %d rates, one "
                 "curve per front model.</p>\n", nr);
    chart_ber(b, S, rate, idx, nr);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void section_table(sbuf *b, study *S) {
    sb_printf(b, "<h2 id=\"trials\">Trials (%d)</h2>\n", S->n);
    if (S->n == 0) {
        sb_puts(b, "<p class=\"note\">No trials yet.</p>\n");
        return;
    }
    /* Columns: objectives first, then the other metrics by name. */
    int order[REP_MAX_NAMES], n_cols = 0;
    if (S->have_spec)
        for (int j = 0; j < S->s.n_obj; j++) {
            int k = name_index(S, S->s.obj[j].metric, 0);
            if (k >= 0) order[n_cols++] = k;
        }
    int n_obj_cols = n_cols;
    const char *rest[REP_MAX_NAMES];
    int n_rest = 0;
    for (int k = 0; k < S->n_names; k++) {
        int is_obj = 0;
        for (int c = 0; c < n_obj_cols; c++) is_obj |= order[c] == k;
        if (!is_obj) rest[n_rest++] = S->names[k];
    }
    qsort(rest, (size_t)n_rest, sizeof *rest, cmp_str);
    for (int i = 0; i < n_rest; i++) order[n_cols++] = name_index(S, rest[i], 0);
    if (S->dropped_names)
        sb_printf(b, "<p class=\"note\">%d further metric names are not shown.</p>\n", S->dropped_names);
    sb_puts(b, "<div class=\"tablewrap\"><table class=\"trials\"><thead><tr><th>#</th><th>batch</th><th>state</th><th>front</th>"
               "<th>origin</th><th>topology</th><th>seconds</th>");
    for (int c = 0; c < n_cols; c++) {
        sb_puts(b, c < n_obj_cols ? "<th title=\"objective\">" : "<th>");
        sb_esc(b, S->names[order[c]]);
        sb_puts(b, c < n_obj_cols ? " *</th>" : "</th>");
    }
    sb_puts(b, "<th>note</th></tr></thead>\n<tbody>\n");
    char v[32];
    for (int i = 0; i < S->n; i++) {
        const rep_trial *r = &S->t[i];
        const char *st = trial_state_name(r->state);
        sb_printf(b, "<tr class=\"%s%s\"><td>%d</td><td>%d</td><td class=\"l\">%s</td><td>%s</td><td class=\"l\">",
                  st, r->front ? " front" : "", r->number, r->batch, st, r->front ? "&#9733;" : "");
        sb_esc(b, r->origin);
        sb_puts(b, "</td><td class=\"l\" title=\"");
        sb_esc(b, r->config);
        sb_puts(b, "\">");
        sb_esc(b, r->topology);
        sb_puts(b, "</td><td>");
        if (r->seconds > 0) sb_printf(b, "%.2f", r->seconds);
        sb_puts(b, "</td>");
        for (int c = 0; c < n_cols; c++) {
            double x = r->m[order[c]];
            if (isfinite(x)) {
                snprintf(v, sizeof v, "%.5g", x);
                sb_printf(b, "<td>%s</td>", v);
            } else {
                sb_puts(b, "<td></td>");
            }
        }
        sb_puts(b, "<td class=\"l\">");
        sb_esc(b, r->fail_reason);
        sb_puts(b, "</td></tr>\n");
    }
    sb_puts(b, "</tbody></table></div>\n<p>* objective. Hover a topology for the full configuration.</p>\n");
}

static void section_spec(sbuf *b, study *S) {
    sb_puts(b, "<h2 id=\"spec\">Spec</h2>\n<p>");
    sb_esc(b, S->spec_path ? S->spec_path : "");
    sb_puts(b, " (frozen copy stored in the study)</p>\n<pre id=\"spectext\">");
    sb_esc(b, S->spec_text ? S->spec_text : "");
    sb_puts(b, "</pre>\n");
    if (S->space_text) {
        sb_puts(b, "<p>search space ");
        sb_esc(b, S->space_path ? S->space_path : "");
        sb_puts(b, "</p>\n<pre>");
        sb_esc(b, S->space_text);
        sb_puts(b, "</pre>\n");
    }
}

int report_write(const char *db, const char *const *more, int n_more, const char *out_path,
                 report_info *info) {
    report_info dummy;
    if (!info) info = &dummy;
    memset(info, 0, sizeof *info);
    int n_all = 1 + (n_more > 0 ? n_more : 0);
    study **all = bn_calloc((size_t)n_all, sizeof *all);
    sbuf b = {0};
    int rc = BN_OK;
    for (int s = 0; s < n_all && !rc; s++) {
        all[s] = bn_calloc(1, sizeof *all[s]);
        rc = study_load(all[s], s == 0 ? db : more[s - 1], s == 0);
    }
    if (rc) goto done;
    study *S = all[0];
    sb_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>bnas report: ");
    sb_esc(&b, S->sum.name);
    sb_printf(&b, "</title>\n<style>%s</style>\n</head><body>\n<h1>Study ", css);
    sb_esc(&b, S->sum.name);
    sb_puts(&b, "</h1>\n");
    section_summary(&b, S, info);
    sb_puts(&b, "<p><a href=\"#front\">Pareto front</a> &middot; <a href=\"#hypervolume\">hypervolume</a> "
                "&middot; <a href=\"#ber\">accuracy over bit error rate</a> &middot; <a href=\"#trials\">"
                "trials</a> &middot; <a href=\"#spec\">spec</a></p>\n");
    section_front(&b, S);
    section_hv(&b, all, n_all);
    section_ber(&b, S, info);
    section_table(&b, S);
    section_spec(&b, S);
    time_t now = time(NULL);
    struct tm tm;
    char when[64] = "";
    if (gmtime_r(&now, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);
    sb_printf(&b, "<p style=\"color:#888\">bnas report, %s</p>\n</body></html>\n", when);
    info->trials = S->n;
    info->complete = S->sum.count[TRIAL_COMPLETE];
    info->pending = S->sum.count[TRIAL_WAITING] + S->sum.count[TRIAL_RUNNING];
    info->front = S->sum.front;
    FILE *f = fopen(out_path, "wb");
    if (!f) {
        rc = bn_error(BN_EIO, "%s: cannot write the report", out_path);
        goto done;
    }
    size_t w = fwrite(b.p, 1, b.n, f);
    if (fclose(f) != 0 || w != b.n) {
        rc = bn_error(BN_EIO, "%s: write failed (disk full?)", out_path);
        goto done;
    }
    info->bytes = b.n;
done:
    for (int s = 0; s < n_all; s++)
        if (all[s]) {
            study_free(all[s]);
            free(all[s]);
        }
    free(all);
    free(b.p);
    return rc;
}
