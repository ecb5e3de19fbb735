/*
** Evaluator "capmin": CapMin (evaluators/capmin.h). Per layer the histogram of
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
**           circuit      CSV of the capacitor model's circuit (name,value rows v_th, v_u, r,
**                        clock; default: the shipped evaluators/data/capmin_circuit.csv)
**           seed         noise seed (default the context's);  split val|test, images, threads
**   metrics: capmin.exact_acc, capmin.acc@Q (every Q), capmin.q, capmin.acc (at q),
**            capmin.cap_x (capacitor reduction, RC spike-time model), capmin.slot_x (A / (q-1)),
**            capmin.cap_full_pF, capmin.cap_pF, capmin.mass (fraction of chunks inside the windows);
**            with eps: capmin.v_acc@G, capmin.v_eps@G, capmin.v_cap_x@G for every guard G
** The model (level histograms, window selection, clipped and noisy
** evaluation, the capacitor model) is declared in evaluators/capmin.h.
*/
#include "evaluators/capmin.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dmath.h"
#include "engine/err.h"
#include "evaluators/evaluator.h"

int capmin_eligible(const packed_net *p, int l) { return l > 0 && l < p->n_layers && !p->layers[l].first; }

/* ---- Histogram ---- */

typedef struct {
    int A;
    int stride; /* A + 1 rounded up to a cache line of int64 (no false sharing between threads) */
    int64_t *h; /* (threads, stride), the first A + 1 of each row used */
} capmin_hist_user;

static int32_t capmin_hist_fn(void *user, int l, const packed_layer *L, int j, const int32_t *s, const int32_t *len,
                              int K, int thread, uint64_t site) {
    (void)l, (void)L, (void)j, (void)len, (void)site;
    capmin_hist_user *u = user;
    int64_t *h = u->h + (size_t)thread * u->stride;
    int32_t sum = 0;
    for (int k = 0; k < K; k++) {
        sum += s[k];
        h[(s[k] + u->A) / 2]++;
    }
    return sum;
}

int capmin_histogram(const packed_net *p, int A, const dataset *d, int threads, int64_t *hist) {
    if (A < 1) return bn_error(BN_EARG, "capmin: array size A = %d must be >= 1", A);
    int nt = chunk_threads(threads);
    memset(hist, 0, sizeof(int64_t) * (size_t)p->n_layers * (A + 1));
    chunk_config cfg;
    memset(&cfg, 0, sizeof cfg);
    capmin_hist_user u[NET_MAX_LAYERS];
    for (int l = 0; l < p->n_layers; l++) {
        if (!capmin_eligible(p, l)) continue;
        u[l].A = A;
        u[l].stride = (A + 1 + 7) / 8 * 8;
        u[l].h = bn_aligned_alloc(sizeof(int64_t) * (size_t)nt * u[l].stride);
        cfg.n[l] = A, cfg.fn[l] = capmin_hist_fn, cfg.user[l] = &u[l];
    }
    chunk_plan cp;
    int rc = chunk_plan_create(&cp, p, &cfg);
    if (!rc) {
        float *logits = bn_malloc(sizeof(float) * ((size_t)d->n * p->classes + 1));
        chunk_logits(&cp, logits, d->pixels, d->n, nt);
        free(logits);
        chunk_plan_free(&cp);
    }
    for (int l = 0; l < p->n_layers; l++) {
        if (!cfg.n[l]) continue;
        for (int t = 0; t < nt; t++)
            for (int a = 0; a <= A; a++) hist[(size_t)l * (A + 1) + a] += u[l].h[(size_t)t * u[l].stride + a];
        free(u[l].h);
    }
    return rc;
}

int capmin_window(const int64_t *h, int A, int q) {
    BN_ASSERT(q >= 1 && q <= A + 1);
    int64_t best = -1, m = 0;
    int lo = 0;
    for (int a = 0; a < q; a++) m += h[a];
    for (int s = 0; s + q <= A + 1; s++) {
        if (s > 0) m += h[s + q - 1] - h[s - 1];
        if (m > best) best = m, lo = s;
    }
    return lo;
}

/* ---- Clipped evaluation ---- */

typedef struct {
    int A, lo, hi, guard; /* window and grid spacing */
    double eps;           /* confusion probability per side */
    uint64_t seed, key;   /* noise stream: hash of (seed, key=layer, site, neuron, chunk) */
} capmin_map_user;

/* SplitMix64 finaliser: a counter-based hash for per-chunk noise. */
static uint64_t capmin_mix(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int32_t capmin_map_fn(void *user, int l, const packed_layer *L, int j, const int32_t *s, const int32_t *len,
                             int K, int thread, uint64_t site) {
    (void)l, (void)L, (void)len, (void)thread;
    const capmin_map_user *u = user;
    int step = u->guard + 1;
    int32_t sum = 0;
    for (int k = 0; k < K; k++) {
        int p = (s[k] + u->A) / 2, c = p < u->lo ? u->lo : p > u->hi ? u->hi : p;
        if (step > 1) { /* nearest grid level lo + m*step inside the window (ties down) */
            int m = (c - u->lo + step / 2) / step, top = (u->hi - u->lo) / step;
            c = u->lo + (m > top ? top : m) * step;
        }
        if (u->eps > 0) {
            uint64_t h = capmin_mix(u->seed ^ capmin_mix(u->key ^ capmin_mix(site ^ capmin_mix(((uint64_t)j << 20) | (uint64_t)k))));
            double r = (double)(h >> 11) * (1.0 / 9007199254740992.0);
            int top = u->lo + (u->hi - u->lo) / step * step;
            if (r < u->eps && c - step >= u->lo) c -= step;
            else if (r >= u->eps && r < 2 * u->eps && c + step <= top) c += step;
        }
        sum += s[k] + 2 * (c - p);
    }
    return sum;
}

int capmin_accuracy(const packed_net *p, int A, const int *lo, const int *hi, int guard, double eps, uint64_t seed,
                    const dataset *d, int threads, double *acc) {
    if (A < 1 || guard < 0 || eps < 0 || eps > 0.5) return bn_error(BN_EARG, "capmin: bad A %d, guard %d or eps %g", A, guard, eps);
    chunk_config cfg;
    memset(&cfg, 0, sizeof cfg);
    capmin_map_user u[NET_MAX_LAYERS];
    for (int l = 0; l < p->n_layers; l++) {
        if (!capmin_eligible(p, l)) continue;
        if (lo[l] < 0 || hi[l] > A || lo[l] > hi[l])
            return bn_error(BN_EARG, "capmin: layer %d window [%d, %d] outside [0, %d]", l, lo[l], hi[l], A);
        u[l] = (capmin_map_user){A, lo[l], hi[l], guard, eps, seed, (uint64_t)l};
        cfg.n[l] = A, cfg.fn[l] = capmin_map_fn, cfg.user[l] = &u[l];
    }
    chunk_plan cp;
    int rc = chunk_plan_create(&cp, p, &cfg);
    if (rc) return rc;
    *acc = chunk_accuracy(&cp, d->pixels, d->labels, d->n, threads);
    chunk_plan_free(&cp);
    return BN_OK;
}

/* ---- Capacitor model ---- */

int capmin_circuit_parse(capmin_circuit *c, const char *text, const char *name) {
    static const char *const keys[] = {"v_th", "v_u", "r", "clock"};
    double *field[] = {&c->v_th, &c->v_u, &c->r, &c->clock};
    int seen[4] = {0}, header = 0, line = 0;
    for (const char *s = text; *s;) {
        const char *e = strchr(s, '\n');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        char buf[256], key[64];
        line++;
        if (len >= sizeof buf) return bn_error(BN_EFORMAT, "%s:%d: line too long", name, line);
        memcpy(buf, s, len), buf[len] = '\0';
        s += len + (e != NULL);
        char *q = buf + strspn(buf, " \t\r");
        if (!*q || *q == '#') continue;
        char *comma = strchr(q, ',');
        if (!comma) return bn_error(BN_EFORMAT, "%s:%d: expected 'name,value'", name, line);
        *comma = '\0';
        char *v = comma + 1, *end;
        snprintf(key, sizeof key, "%.*s", (int)strcspn(q, " \t"), q);
        v += strspn(v, " \t");
        if (!header) {
            if (strcmp(key, "name") || strncmp(v, "value", 5) || v[5 + strspn(v + 5, " \t\r")])
                return bn_error(BN_EFORMAT, "%s:%d: expected the header 'name,value'", name, line);
            header = 1;
            continue;
        }
        int k = 0;
        while (k < 4 && strcmp(key, keys[k])) k++;
        if (k == 4) return bn_error(BN_EFORMAT, "%s:%d: unknown name '%s' (known: v_th, v_u, r, clock)", name, line, key);
        if (seen[k]) return bn_error(BN_EFORMAT, "%s:%d: '%s' given twice", name, line, key);
        double x = strtod(v, &end);
        end += strspn(end, " \t\r");
        if (end == v || *end || !isfinite(x) || !(x > 0))
            return bn_error(BN_EFORMAT, "%s:%d: value of '%s' must be a positive number", name, line, key);
        *field[k] = x, seen[k] = 1;
    }
    for (int k = 0; k < 4; k++)
        if (!seen[k]) return bn_error(BN_EFORMAT, "%s: no '%s' row", name, keys[k]);
    if (!(c->v_u > c->v_th))
        return bn_error(BN_EFORMAT, "%s: v_u (%g V) must exceed v_th (%g V), else level 0 never fires", name, c->v_u,
                        c->v_th);
    return BN_OK;
}

int capmin_circuit_load(capmin_circuit *c, const char *path) {
    char *text;
    int rc = eval_file_text(path, &text);
    if (!rc) rc = capmin_circuit_parse(c, text, path), free(text);
    return rc;
}

int capmin_circuit_default(capmin_circuit *c) {
    char path[4096], *text;
    int rc = eval_data_text("capmin_circuit.csv", path, sizeof path, &text);
    if (!rc) rc = capmin_circuit_parse(c, text, path), free(text);
    return rc;
}

double capmin_g(const capmin_circuit *c, int p) { return -dmath_log(1.0 - c->v_th / ((p + 1) * c->v_u)); }

double capmin_min_gap(const capmin_circuit *c, int lo, int hi, int step) {
    double gap = INFINITY;
    for (int a = lo; a + step <= hi; a += step) {
        double gp = capmin_g(c, a) - capmin_g(c, a + step);
        if (gp < gap) gap = gp;
    }
    return gap;
}

double capmin_capacitance(const capmin_circuit *c, double gap) { return isinf(gap) ? 0.0 : c->clock / (c->r * gap); }

static double capmin_q(double x) { return 0.5 * dmath_erfc(x / sqrt(2.0)); }

double capmin_eps_guard(double eps0, int g) {
    if (eps0 <= 0) return 0;
    if (eps0 >= 0.5) return 0.5;
    double lo = 0, hi = 40; /* Qinv(eps0) by bisection: Q is decreasing */
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (lo + hi);
        if (capmin_q(mid) > eps0) lo = mid; else hi = mid;
    }
    return capmin_q((g + 1) * 0.5 * (lo + hi));
}

/* ---- The evaluator ---- */

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
    capmin_circuit cc;
    const char *circuit = eval_param_get(params, "circuit");
    if ((rc = circuit ? capmin_circuit_load(&cc, circuit) : capmin_circuit_default(&cc))) return rc;
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
    double gap = INFINITY, full = capmin_min_gap(&cc, 0, A, 1);
    int64_t in = 0, all = 0;
    for (int l = 0; l < p.n_layers; l++) {
        if (!capmin_eligible(&p, l)) continue;
        const int64_t *h = hist + (size_t)l * (A + 1);
        lo[l] = capmin_window(h, A, qbest), hi[l] = lo[l] + qbest - 1;
        double g = capmin_min_gap(&cc, lo[l], hi[l], 1);
        if (g < gap) gap = g;
        for (int a = 0; a <= A; a++) all += h[a], in += a >= lo[l] && a <= hi[l] ? h[a] : 0;
    }
    double c_full = capmin_capacitance(&cc, full), c_q = capmin_capacitance(&cc, gap);
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

static const char *const capmin_params[] = {"A", "budget", "hist_images", "eps", "guards", "circuit", "seed",
                                            "split", "images", "threads", NULL};

const evaluator eval_capmin = {
    "capmin",
    "CapMin: MAC-level histograms, accuracy with the q most frequent levels kept (capmin.acc@Q), the smallest q "
    "within the budget (capmin.q) and its capacitor reduction (capmin.cap_x); CapMin-V with eps and guards",
    capmin_params, capmin_run, NULL};
