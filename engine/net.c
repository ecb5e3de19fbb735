/* Network construction, parameters and the float evaluation path. */
#include "engine/net.h"

#include <math.h>
#include <string.h>

#include "engine/err.h"
#include "engine/layers.h"

int net_plan(net *n, const arch *a, int in_c, int in_h, int in_w, int classes) {
    memset(n, 0, sizeof *n);
    if (in_c < 1 || in_h < 1 || in_w < 1 || classes < 2)
        return bn_error(BN_EARG, "net: bad input shape %dx%dx%d or class count %d", in_h, in_w,
                        in_c, classes);
    n->arch = *a;
    n->in_c = in_c, n->in_h = in_h, n->in_w = in_w, n->classes = classes;
    int c = in_c, h = in_h, w = in_w, flat = 0; /* flat: inputs are a vector of c*h*w */
    int nl = 0;
    for (int i = 0; i < a->n; i++) {
        const arch_item *it = &a->items[i];
        if (it->kind == ARCH_POOL) continue; /* folded into the preceding conv */
        net_layer *L = &n->layers[nl];
        L->first = nl == 0;
        L->in_c = c, L->in_h = h, L->in_w = w;
        L->out_c = it->size;
        if (it->kind == ARCH_CONV) {
            L->kind = NET_CONV;
            L->fan_in = 9 * c;
            L->pool = (i + 1 < a->n && a->items[i + 1].kind == ARCH_POOL) ? 2 : 0;
            L->out_h = L->pool ? h / 2 : h;
            L->out_w = L->pool ? w / 2 : w;
            if (L->out_h < 1 || L->out_w < 1)
                return bn_error(BN_EARG, "net: too many pooling layers for a %dx%d input", in_h, in_w);
            c = L->out_c, h = L->out_h, w = L->out_w;
        } else {
            L->kind = NET_FC;
            L->fan_in = c * h * w;
            L->out_h = L->out_w = 1;
            c = L->out_c, h = 1, w = 1;
            flat = 1;
        }
        nl++;
    }
    (void)flat;
    net_layer *O = &n->layers[nl];
    O->kind = NET_FC;
    O->first = nl == 0;
    O->last = 1;
    O->in_c = c, O->in_h = h, O->in_w = w;
    O->out_c = classes;
    O->out_h = O->out_w = 1;
    O->fan_in = c * h * w;
    n->n_layers = nl + 1;

    size_t np = 1, ns = 0; /* the scale */
    for (int l = 0; l < n->n_layers; l++) {
        net_layer *L = &n->layers[l];
        if ((double)L->out_c * L->fan_in > 1e9)
            return bn_error(BN_EARG, "net: layer %d has too many weights (%d x %d)", l, L->out_c, L->fan_in);
        np += (size_t)L->out_c * L->fan_in + (L->last ? 0 : 2 * (size_t)L->out_c);
        ns += L->last ? 0 : 2 * (size_t)L->out_c;
    }
    n->n_params = np, n->n_stats = ns;
    return BN_OK;
}

int net_create(net *n, const arch *a, int in_c, int in_h, int in_w, int classes) {
    int rc = net_plan(n, a, in_c, in_h, in_w, classes);
    if (rc) return rc;
    size_t np = n->n_params, ns = n->n_stats;
    n->params = bn_calloc(np, sizeof(float));
    n->stats = bn_calloc(ns ? ns : 1, sizeof(float));
    float *p = n->params, *s = n->stats;
    for (int l = 0; l < n->n_layers; l++) {
        net_layer *L = &n->layers[l];
        L->w = p, p += (size_t)L->out_c * L->fan_in;
        if (!L->last) {
            L->gamma = p, p += L->out_c;
            L->beta = p, p += L->out_c;
            L->mean = s, s += L->out_c;
            L->var = s, s += L->out_c;
        }
    }
    n->scale = p++;
    BN_ASSERT((size_t)(p - n->params) == np && (size_t)(s - n->stats) == ns);
    for (int l = 0; l < n->n_layers - 1; l++)
        for (int j = 0; j < n->layers[l].out_c; j++) n->layers[l].var[j] = 1.0f, n->layers[l].gamma[j] = 1.0f;
    *n->scale = NET_SCALE_INIT;
    return BN_OK;
}

void net_init_params(net *n, pcg32 *rng) {
    for (int l = 0; l < n->n_layers; l++) {
        net_layer *L = &n->layers[l];
        float bound = 1.0f / sqrtf((float)L->fan_in);
        size_t nw = (size_t)L->out_c * L->fan_in;
        for (size_t i = 0; i < nw; i++) L->w[i] = (2.0f * pcg32_float(rng) - 1.0f) * bound;
        if (!L->last)
            for (int j = 0; j < L->out_c; j++) {
                L->gamma[j] = 1.0f, L->beta[j] = 0.0f;
                L->mean[j] = 0.0f, L->var[j] = 1.0f;
            }
    }
    *n->scale = NET_SCALE_INIT;
}

void net_free(net *n) {
    free(n->params);
    free(n->stats);
    memset(n, 0, sizeof *n);
}

int net_copy(net *dst, const net *src) {
    int rc = net_create(dst, &src->arch, src->in_c, src->in_h, src->in_w, src->classes);
    if (rc) return rc;
    memcpy(dst->params, src->params, sizeof(float) * src->n_params);
    memcpy(dst->stats, src->stats, sizeof(float) * (src->n_stats ? src->n_stats : 1));
    return BN_OK;
}

double net_macs(const net *n) {
    double m = 0;
    for (int l = 0; l < n->n_layers; l++) {
        const net_layer *L = &n->layers[l];
        double positions = L->kind == NET_CONV ? (double)L->in_h * L->in_w : 1.0;
        m += positions * L->out_c * L->fan_in;
    }
    return m;
}

size_t net_packed_bytes(const net *n) {
    size_t bytes = 4; /* scale */
    for (int l = 0; l < n->n_layers; l++) {
        const net_layer *L = &n->layers[l];
        bytes += (size_t)L->out_c * (((size_t)L->fan_in + 31) / 32) * 4;
        if (!L->last) bytes += (size_t)L->out_c * 4;
    }
    return bytes;
}

float net_bn_invstd(const net_layer *L, int c) { return 1.0f / sqrtf(L->var[c] + NET_BN_EPS); }

float net_bn_apply(const net_layer *L, int c, float invstd, float acc) {
    float v = L->first ? acc * (1.0f / 255.0f) : acc;
    return L->gamma[c] * ((v - L->mean[c]) * invstd) + L->beta[c];
}

float net_bn_value(const net_layer *L, int c, float acc) {
    return net_bn_apply(L, c, net_bn_invstd(L, c), acc);
}

/* Writes wb (out_c, fan_in) = sign(w). */
static void net_binarize_weights(float *wb, const net_layer *L) {
    int64_t nw = (int64_t)L->out_c * L->fan_in;
    for (int64_t i = 0; i < nw; i++) wb[i] = net_sign(L->w[i]);
}

/* Element counts of net_forward_eval's buffers for B images: the largest
   activation, column, accumulator and weight buffers over the layers. */
typedef struct {
    size_t act, col, z, w;
} net_eval_sizes;

static net_eval_sizes net_eval_sizes_of(const net *n, int B) {
    net_eval_sizes e = {(size_t)B * n->in_h * n->in_w * n->in_c, 1, 1, 1};
    for (int l = 0; l < n->n_layers; l++) {
        const net_layer *L = &n->layers[l];
        size_t pos = L->kind == NET_CONV ? (size_t)L->in_h * L->in_w : 1;
        if (L->kind == NET_CONV && (size_t)B * pos * L->fan_in > e.col) e.col = (size_t)B * pos * L->fan_in;
        if ((size_t)B * pos * L->out_c > e.z) e.z = (size_t)B * pos * L->out_c;
        if ((size_t)B * L->out_h * L->out_w * L->out_c > e.act) e.act = (size_t)B * L->out_h * L->out_w * L->out_c;
        if ((size_t)L->out_c * L->fan_in > e.w) e.w = (size_t)L->out_c * L->fan_in;
    }
    return e;
}

size_t net_eval_bytes(const net *n, int B) {
    net_eval_sizes e = net_eval_sizes_of(n, B);
    size_t inv = 0, logits = (size_t)B * n->classes;
    for (int l = 0; l < n->n_layers; l++)
        if ((size_t)n->layers[l].out_c > inv) inv = (size_t)n->layers[l].out_c;
    return sizeof(float) * (e.act + e.col + 2 * e.z + e.w + inv + logits) + sizeof(int32_t) * e.z;
}

void net_forward_eval(const net *n, float *logits, const uint8_t *x, int B) {
    net_eval_sizes e = net_eval_sizes_of(n, B);
    size_t max_act = e.act, max_col = e.col, max_z = e.z, max_w = e.w;
    float *act = bn_malloc(sizeof(float) * max_act);
    float *col = bn_malloc(sizeof(float) * max_col);
    float *z = bn_malloc(sizeof(float) * max_z);
    float *zp = bn_malloc(sizeof(float) * max_z);
    int32_t *idx = bn_malloc(sizeof(int32_t) * max_z);
    float *wb = bn_malloc(sizeof(float) * max_w);
    size_t npix = (size_t)B * n->in_h * n->in_w * n->in_c;
    for (size_t i = 0; i < npix; i++) act[i] = (float)x[i];

    for (int l = 0; l < n->n_layers; l++) {
        const net_layer *L = &n->layers[l];
        net_binarize_weights(wb, L);
        int rows = L->kind == NET_CONV ? B * L->in_h * L->in_w : B;
        if (L->kind == NET_CONV) {
            im2col3x3(col, act, B, L->in_h, L->in_w, L->in_c);
            matmul_forward(z, col, wb, rows, L->fan_in, L->out_c);
        } else {
            matmul_forward(z, act, wb, rows, L->fan_in, L->out_c);
        }
        const float *acc = z;
        if (L->pool) {
            maxpool2_forward(zp, idx, z, B, L->in_h, L->in_w, L->out_c);
            acc = zp;
        }
        int64_t nout = (int64_t)B * L->out_h * L->out_w * L->out_c;
        if (L->last) {
            for (int64_t i = 0; i < nout; i++) logits[i] = *n->scale * acc[i];
        } else {
            float *invstd = bn_malloc(sizeof(float) * (size_t)L->out_c);
            for (int c = 0; c < L->out_c; c++) invstd[c] = net_bn_invstd(L, c);
            int64_t rows_out = nout / L->out_c;
            for (int64_t r = 0; r < rows_out; r++)
                for (int c = 0; c < L->out_c; c++)
                    act[r * L->out_c + c] = net_sign(net_bn_apply(L, c, invstd[c], acc[r * L->out_c + c]));
            free(invstd);
        }
    }
    free(act), free(col), free(z), free(zp), free(idx), free(wb);
}

void net_predict(const net *n, int *pred, const uint8_t *x, int B) {
    float *logits = bn_malloc(sizeof(float) * (size_t)B * n->classes);
    net_forward_eval(n, logits, x, B);
    for (int b = 0; b < B; b++) {
        const float *z = logits + (int64_t)b * n->classes;
        int best = 0;
        for (int c = 1; c < n->classes; c++)
            if (z[c] > z[best]) best = c;
        pred[b] = best;
    }
    free(logits);
}
