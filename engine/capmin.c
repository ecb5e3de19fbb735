/*
** CapMin (engine/capmin.h): level histograms, window selection, clipped and
** noisy evaluation, and the capacitor model.
*/
#include "engine/capmin.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dmath.h"
#include "engine/err.h"

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

double capmin_g(int p) { return -dmath_log(1.0 - CAPMIN_V_TH / ((p + 1) * CAPMIN_V_U)); }

double capmin_min_gap(int lo, int hi, int step) {
    double gap = INFINITY;
    for (int a = lo; a + step <= hi; a += step) {
        double gp = capmin_g(a) - capmin_g(a + step);
        if (gp < gap) gap = gp;
    }
    return gap;
}

double capmin_capacitance(double gap) { return isinf(gap) ? 0.0 : CAPMIN_CLOCK / (CAPMIN_R * gap); }

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
