/*
** The neuron-level bit-error tolerance metric and the output margin
** (engine/margin.h), on the hooked forward pass of engine/trace.h.
*/
#include "engine/margin.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "engine/err.h"
#include "engine/trace.h"

/* Per-thread integer sums of margin_measure_packed. */
typedef struct {
    int64_t eta[NET_MAX_LAYERS]; /* sum over images and neurons of the neuron tolerance */
    int64_t gap;                 /* sum over images of acc_y - max_{c!=y} acc_c (times sign of scale) */
    int64_t correct;             /* correctly classified images */
} margin_sums;

static void margin_acc_sum(void *user, int l, const packed_layer *L, int32_t *acc, int P) {
    margin_sums *m = user;
    int64_t sum = 0;
    for (int n = 0; n < L->out_c; n++) {
        int32_t T = L->thr[n], best = INT32_MAX;
        for (int q = 0; q < P; q++) {
            int32_t e = margin_local(L, acc[(size_t)q * L->np + n], T);
            if (e < best) best = e;
        }
        sum += best;
    }
    m->eta[l] += sum;
}

int margin_measure_packed(const packed_net *p, const dataset *d, int threads, margin_result *out) {
    memset(out, 0, sizeof *out);
    if (d->h != p->in_h || d->w != p->in_w || d->c != p->in_c)
        return bn_error(BN_EARG, "margin: data images are %dx%dx%d, the network expects %dx%dx%d", d->h, d->w,
                        d->c, p->in_h, p->in_w, p->in_c);
    int nt = threads > 0 ? threads : omp_get_max_threads();
    margin_sums *part = bn_calloc((size_t)nt, sizeof *part);
    size_t img_bytes = (size_t)d->h * d->w * d->c;
    int sgn = p->scale < 0.0f ? -1 : 1;
#pragma omp parallel num_threads(nt)
    {
        margin_sums *m = &part[omp_get_thread_num()];
        trace_scratch s;
        trace_scratch_init(&s, p);
        trace_hooks h = {NULL, margin_acc_sum, NULL, m};
        int32_t *z = bn_malloc(sizeof(int32_t) * (size_t)p->classes);
#pragma omp for schedule(dynamic, 16)
        for (int i = 0; i < d->n; i++) {
            trace_forward(p, &s, d->pixels + (size_t)i * img_bytes, &h, z);
            int y = d->labels[i], best = -1;
            int64_t other = INT64_MIN;
            for (int c = 0; c < p->classes; c++) {
                if (c != y && (int64_t)sgn * z[c] > other) other = (int64_t)sgn * z[c];
                if (best < 0 || (float)z[c] * p->scale > (float)z[best] * p->scale) best = c;
            }
            m->gap += (int64_t)sgn * z[y] - other;
            m->correct += best == y;
        }
        free(z);
        trace_scratch_free(&s);
    }
    margin_sums tot = {0};
    for (int t = 0; t < nt; t++) {
        for (int l = 0; l < NET_MAX_LAYERS; l++) tot.eta[l] += part[t].eta[l];
        tot.gap += part[t].gap, tot.correct += part[t].correct;
    }
    free(part);
    out->n_images = d->n;
    out->n_hidden = p->n_layers - 1;
    double n = d->n > 0 ? d->n : 1;
    int64_t all = 0, neurons = 0;
    for (int l = 0; l < out->n_hidden; l++) {
        out->layer[l] = (double)tot.eta[l] / (n * p->layers[l].out_c);
        all += tot.eta[l], neurons += p->layers[l].out_c;
    }
    out->mean = neurons ? (double)all / (n * (double)neurons) : 0.0;
    out->output = (double)tot.gap / (2.0 * n); /* (s*gap_acc) / (2|s|) = gap_acc/2 in sign-adjusted units */
    out->accuracy = (double)tot.correct / n;
    return BN_OK;
}

int margin_measure(const net *n, const dataset *d, int threads, margin_result *out) {
    packed_net p;
    int rc = packed_from_net(&p, n);
    if (rc) return rc;
    rc = margin_measure_packed(&p, d, threads, out);
    packed_free(&p);
    return rc;
}
