/*
** The Bop step over a net's binary weights, its scalar reference twin, and
** the training-memory model (contracts in engine/bop.h).
*/
#include "engine/bop.h"

#include <stdlib.h>

#include "engine/err.h"

int bop_create(bop_state *b, const net *n, const fpfmt *fmt) {
    memset(b, 0, sizeof *b);
    b->fmt = *fmt;
    b->native = fmt->e == 8 && fmt->f == 23 && fmt->bias == 127 && fmt->subnormals;
    for (int l = 0; l < n->n_layers; l++) {
        b->off[l] = b->n;
        b->n += (size_t)n->layers[l].out_c * n->layers[l].fan_in;
    }
    b->m = bn_calloc(b->n ? b->n : 1, sizeof(float));
    return BN_OK;
}

void bop_free(bop_state *b) {
    free(b->m);
    b->m = NULL;
}

void bop_reset_stats(bop_state *b) { b->lost = b->counted = b->flips = 0, b->max_abs = 0; }


/* The update of one weight, written without branches so that the loops
   below vectorize; ROUND(u) is the rounding into the momentum format. */
#define BOP_UPDATE(ROUND)                                                      \
    do {                                                                       \
        double mo = m[i], u = om * mo + gm * (double)g[i], mn = ROUND;         \
        lost += (mn == mo) & (u != mo);                                        \
        m[i] = (float)mn;                                                      \
        double am = fabs(mn);                                                  \
        mx = am > mx ? am : mx;                                                \
        float wi = w[i];                                                       \
        double s = wi > 0 ? 1.0 : -1.0;                                        \
        int flip = s * mn > th;                                                \
        float fw = wi != 0 ? -wi : BOP_ZERO_FLIP;                              \
        w[i] = flip ? fw : wi;                                                 \
        flips += flip;                                                         \
    } while (0)

int64_t bop_step(bop_state *b, net *n, const float *grads, float gamma, float tau) {
    const double gm = (double)gamma, om = 1.0 - (double)gamma, th = (double)tau;
    const fpfmt F = b->fmt;
    const double maxv = F.max;
    const int64_t emin = 1 - F.bias, fb = F.f;
    const int mode = b->native ? 0 : F.subnormals ? 1 : 2;
    int64_t lost = 0, flips = 0;
    double mx = b->max_abs;
    for (int l = 0; l < n->n_layers; l++) {
        net_layer *L = &n->layers[l];
        int64_t nw = (int64_t)L->out_c * L->fan_in;
        const float *g = grads + (L->w - n->params);
        float *m = b->m + b->off[l], *w = L->w;
        if (mode == 0) {
#pragma omp parallel for schedule(static) reduction(+ : lost, flips) reduction(max : mx)
            for (int64_t i = 0; i < nw; i++) BOP_UPDATE((double)(float)u);
        } else if (mode == 1) {
#pragma omp parallel for schedule(static) reduction(+ : lost, flips) reduction(max : mx)
            for (int64_t i = 0; i < nw; i++) BOP_UPDATE(fpfmt_round_core(u, maxv, emin, fb));
        } else {
#pragma omp parallel for schedule(static) reduction(+ : lost, flips) reduction(max : mx)
            for (int64_t i = 0; i < nw; i++) BOP_UPDATE(fpfmt_round(&F, u));
        }
    }
    b->lost += lost;
    b->flips += flips;
    b->counted += (int64_t)b->n;
    b->max_abs = mx;
    return lost;
}

int64_t bop_step_ref(bop_state *b, net *n, const float *grads, float gamma, float tau) {
    int64_t lost = 0;
    for (int l = 0; l < n->n_layers; l++) {
        net_layer *L = &n->layers[l];
        size_t nw = (size_t)L->out_c * L->fan_in;
        for (size_t i = 0; i < nw; i++) {
            float *m = &b->m[b->off[l] + i], *w = &L->w[i];
            float g = grads[(size_t)(L->w - n->params) + i];
            double u = (1.0 - (double)gamma) * (double)*m + (double)gamma * (double)g;
            double mn = fpfmt_round(&b->fmt, u);
            if (mn == (double)*m && u != (double)*m) lost++;
            *m = (float)mn;
            if (fabs(mn) > b->max_abs) b->max_abs = fabs(mn);
            int s = *w > 0 ? 1 : -1;
            if ((double)s * mn > (double)tau) {
                *w = *w != 0 ? -*w : BOP_ZERO_FLIP;
                b->flips++;
            }
        }
    }
    b->lost += lost;
    b->counted += (int64_t)b->n;
    return lost;
}

static double bytes_of_bits(double bits) { return ceil(bits / 8.0); }

int bop_acc_bits(const net_layer *L) {
    int64_t maxabs = (int64_t)L->fan_in * (L->first ? 255 : 1), levels = 2 * maxabs + 1;
    int bits = 0;
    while (((int64_t)1 << bits) < levels) bits++;
    return bits;
}

bop_memory bop_memory_model(const net *n, const fpfmt *fmt, int batch) {
    bop_memory M;
    memset(&M, 0, sizeof M);
    double nw = 0, act = (double)batch * n->in_h * n->in_w * n->in_c; /* pixels, 1 byte each */
    for (int l = 0; l < n->n_layers; l++) {
        const net_layer *L = &n->layers[l];
        nw += (double)L->out_c * L->fan_in;
        if (L->last) continue;
        double outs = (double)batch * L->out_h * L->out_w * L->out_c;
        M.bn += 8.0 * 4 * L->out_c;
        act += bytes_of_bits(outs * bop_acc_bits(L)) + 2.0 * 4 * L->out_c;
        if (L->pool) act += bytes_of_bits(2 * outs);
    }
    M.bn += 3 * 4;
    act += 2.0 * 4 * batch * n->classes;
    M.weights = bytes_of_bits(nw);
    M.momentum = bytes_of_bits(nw * fpfmt_bits(fmt));
    M.activations = act;
    M.total = M.weights + M.momentum + M.bn + M.activations;
    return M;
}

bop_memory bop_memory_model_adam(const net *n, int batch) {
    fpfmt F32 = fpfmt_binary32();
    bop_memory M = bop_memory_model(n, &F32, batch);
    double nw = M.momentum / 4; /* binary weights */
    M.weights = 4 * nw;         /* fp32 latent weights */
    M.momentum = 8 * nw;        /* Adam m and v, fp32 */
    M.total = M.weights + M.momentum + M.bn + M.activations;
    return M;
}
