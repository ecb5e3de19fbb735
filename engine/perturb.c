/*
** The generic training-time perturbations (engine/perturb.h): weight flips,
** XNOR product errors, activation flips.
*/
#include "engine/perturb.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dmath.h"
#include "engine/err.h"
#include "engine/errmodel.h"
#include "engine/rng.h"

int perturb_add(perturb_set *ps, const perturb *h) {
    if (ps->n >= PERTURB_MAX) return bn_error(BN_EARG, "train: more than %d perturbations", PERTURB_MAX);
    ps->h[ps->n++] = *h;
    return BN_OK;
}

/* ---- Weight flips ---- */

/* Rate between table rows a and b at fraction f: linear in log p, linear in p
   where either end is 0 (as evaluators/fefet.c). */
static double perturb_interp(double a, double b, double f) {
    if (!(a > 0) || !(b > 0)) return a + (b - a) * f;
    return dmath_exp(dmath_log(a) + (dmath_log(b) - dmath_log(a)) * f);
}

void perturb_flip_rates(const train_recipe *r, uint64_t step, float *p01, float *p10, float *t) {
    if (r->flip_rows <= 0) {
        *p01 = r->p01, *p10 = r->p10;
        if (t) *t = 0.0f;
        return;
    }
    int n = r->flip_rows;
    /* key slot 0xFF: the layer slots of the weight flips' streams are < NET_MAX_LAYERS < 255 */
    pcg32 g;
    rng_keyed(&g, r->seed, (step << 8) | 0xFFu, RNG_FLIP);
    double u = pcg32_double(&g), lo = r->flip_t[0], hi = r->flip_t[n - 1];
    double T = lo + (hi - lo) * u;
    int i = 0;
    while (i + 2 < n && T > r->flip_t[i + 1]) i++;
    if (n == 1) {
        *p01 = r->flip_p01[0], *p10 = r->flip_p10[0];
    } else {
        double f = (T - r->flip_t[i]) / ((double)r->flip_t[i + 1] - r->flip_t[i]);
        f = f < 0 ? 0 : f > 1 ? 1 : f;
        *p01 = (float)perturb_interp(r->flip_p01[i], r->flip_p01[i + 1], f);
        *p10 = (float)perturb_interp(r->flip_p10[i], r->flip_p10[i + 1], f);
    }
    if (t) *t = (float)T;
}

/* Flips the binarized weights of layer s->l at this step's rates. */
static void perturb_weight_flips(const perturb *h, const perturb_site *s, float *wb, uint8_t *flipped) {
    const train_recipe *r = h->user;
    int64_t nw = (int64_t)s->L->out_c * s->L->fan_in;
    float p01, p10;
    perturb_flip_rates(r, s->step, &p01, &p10, NULL);
    if (p01 <= 0.0f && p10 <= 0.0f) {
        memset(flipped, 0, (size_t)nw);
        return;
    }
    pcg32 g;
    rng_keyed(&g, r->seed, (s->step << 8) | (uint64_t)s->l, RNG_FLIP);
    for (int64_t i = 0; i < nw; i++) {
        float p = wb[i] > 0 ? p10 : p01;
        int f = pcg32_float(&g) < p;
        flipped[i] = (uint8_t)f;
        if (f) wb[i] = -wb[i];
    }
}

/* Naive flip training: the gradient goes through the flip, dL/dwb = m *
   dL/dwf with m = -1 where flipped. */
static void perturb_weight_flips_backward(const perturb *h, const perturb_site *s, float *dw, const uint8_t *flipped) {
    (void)h;
    int64_t nw = (int64_t)s->L->out_c * s->L->fan_in;
    for (int64_t i = 0; i < nw; i++)
        if (flipped[i]) dw[i] = -dw[i];
}

int perturb_add_weight_flips(perturb_set *ps, const train_recipe *r) {
    if (r->flip != FLIP_NONE && (r->p01 < 0 || r->p01 > 1 || r->p10 < 0 || r->p10 > 1))
        return bn_error(BN_EARG, "train: flip probabilities must be in [0, 1] (p01 %g, p10 %g)", r->p01, r->p10);
    if (r->flip_rows < 0 || r->flip_rows > TRAIN_FLIP_ROWS)
        return bn_error(BN_EARG, "train: flip-rate table has %d rows (0..%d)", r->flip_rows, TRAIN_FLIP_ROWS);
    for (int i = 0; i < r->flip_rows; i++) {
        if (!(r->flip_p01[i] >= 0 && r->flip_p01[i] <= 1 && r->flip_p10[i] >= 0 && r->flip_p10[i] <= 1))
            return bn_error(BN_EARG, "train: flip-rate table row %d: rates (%g, %g) not in [0, 1]", i,
                            r->flip_p01[i], r->flip_p10[i]);
        if (!isfinite(r->flip_t[i]) || (i > 0 && !(r->flip_t[i] > r->flip_t[i - 1])))
            return bn_error(BN_EARG, "train: flip-rate table row %d: %g does not increase", i, r->flip_t[i]);
    }
    if (r->flip == FLIP_NONE) return BN_OK;
    perturb h = {perturb_weight_flips, r->flip == FLIP_NAIVE ? perturb_weight_flips_backward : NULL, NULL, NULL, r};
    return perturb_add(ps, &h);
}

/* ---- XNOR product errors ---- */

/* Product errors on z (rows, out_c) of binary layer s->l (not the first):
   each row keyed by (seed, step, row, layer), so results do not depend on
   the thread count. */
static void perturb_xnor_errors(const perturb *h, const perturb_site *s, float *z) {
    const train_recipe *r = h->user;
    const net_layer *L = s->L;
    if (L->first) return;
    double p01 = r->xnor_p01, p10 = r->xnor_p10;
    double *pw01 = errmodel_pow_table(p01, L->fan_in), *pw10 = errmodel_pow_table(p10, L->fan_in);
    int hw = L->in_h * L->in_w;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < s->rows; i++) {
        int N = L->kind == NET_CONV ? errmodel_valid_taps(i % hw / L->in_w, i % hw % L->in_w, L->in_h, L->in_w) * L->in_c
                                    : L->fan_in;
        pcg32 g;
        rng_keyed(&g, r->seed, s->step << 40 | (uint64_t)i << 8 | (uint64_t)s->l, RNG_ACT);
        float *zr = z + (size_t)i * L->out_c;
        for (int o = 0; o < L->out_c; o++) /* exact: |z| < 2^24 */
            zr[o] = (float)errmodel_product_errors(&g, (int32_t)zr[o], N, p01, p10, pw01, pw10);
    }
    free(pw01), free(pw10);
}

int perturb_add_xnor_errors(perturb_set *ps, const train_recipe *r) {
    if (!(r->xnor_p01 >= 0 && r->xnor_p01 <= 1 && r->xnor_p10 >= 0 && r->xnor_p10 <= 1))
        return bn_error(BN_EARG, "train: XNOR product rates must be in [0, 1] (p01 %g, p10 %g)", r->xnor_p01,
                        r->xnor_p10);
    if (!(r->xnor_p01 > 0.0f || r->xnor_p10 > 0.0f)) return BN_OK;
    perturb h = {NULL, NULL, perturb_xnor_errors, NULL, r};
    return perturb_add(ps, &h);
}

/* ---- Activation flips ---- */

/* Flips of hidden layer s->l's outputs a (rows_out, out_c), not the first
   layer's, keyed by (seed, step, layer) in fixed chunks of values, so
   independent of threads. */
static int perturb_act_flips(const perturb *h, const perturb_site *s, float *a) {
    const train_recipe *r = h->user;
    const net_layer *L = s->L;
    if (L->first) return BN_OK;
    const int64_t span = 4096, n = (int64_t)s->B * L->out_h * L->out_w * L->out_c;
#pragma omp parallel for schedule(static)
    for (int64_t c0 = 0; c0 < n; c0 += span) {
        pcg32 g;
        rng_keyed(&g, r->seed, s->step << 40 | (uint64_t)(c0 / span) << 8 | (uint64_t)s->l, RNG_ACT + 64);
        for (int64_t i = c0; i < c0 + span && i < n; i++) {
            float p = a[i] > 0 ? r->act_p10 : r->act_p01;
            if (pcg32_float(&g) < p) a[i] = -a[i];
        }
    }
    return BN_OK;
}

int perturb_add_act_flips(perturb_set *ps, const train_recipe *r) {
    if (!(r->act_p01 >= 0 && r->act_p01 <= 1 && r->act_p10 >= 0 && r->act_p10 <= 1))
        return bn_error(BN_EARG, "train: activation flip rates must be in [0, 1] (%g, %g)", r->act_p01,
                        r->act_p10);
    if (!(r->act_p01 > 0.0f || r->act_p10 > 0.0f)) return BN_OK;
    perturb h = {NULL, NULL, NULL, perturb_act_flips, r};
    return perturb_add(ps, &h);
}
