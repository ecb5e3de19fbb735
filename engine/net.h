/*
** A binarized network in its training form: float latent weights, batch norm,
** and a learnable output scale.
**
** Layer order (the seed authors' "order A"): every hidden layer is
**
**     binary conv 3x3 or binary dense  ->  [2x2 max-pool]  ->  batch norm  ->  sign
**
** and the classifier is a binary dense layer followed by the scale s:
** logits = s * (W_out . x). Weights are binarized as sign(w) with w > 0 -> +1
** and w <= 0 -> -1; stored bit 1 means +1 and bit 0 means -1. The first layer
** sees the raw 8-bit pixels p and computes sum_i w_i * p_i exactly as an
** integer, then multiplies by 1/255 (pixels in [0,1], as in the seed code).
** Every later layer sees +-1 values, so its accumulator is an exact integer in
** float arithmetic as well; that is what lets packed inference match the float
** path bit for bit.
**
** Tensors are row-major. Activations are NHWC: (B, H, W, C). A convolution's
** weights are (OC, 3, 3, IC), i.e. (OC, fan_in) with fan_in ordered (ky, kx, ic).
** A dense layer after a convolution reads the (H, W, C) activations flattened
** in that order. Padding of convolutions is zero (an absent input contributes
** nothing to the sum).
**
** All trainable parameters live in one allocation (params), in the order
** layer 0 w, gamma, beta, layer 1 w, gamma, beta, ..., scale; the running
** statistics live in a second allocation (stats). net_layer pointers point
** into them.
*/
#ifndef BNAS_NET_H
#define BNAS_NET_H

#include <stddef.h>
#include <stdint.h>

#include "engine/arch.h"
#include "engine/rng.h"

#define NET_MAX_LAYERS ARCH_MAX_ITEMS
#define NET_BN_EPS 1e-5f       /* batch-norm epsilon (PyTorch default) */
#define NET_BN_MOMENTUM 0.1f   /* running-statistics momentum (PyTorch default) */
#define NET_SCALE_INIT 1e-3f   /* initial output scale (seed code) */

typedef enum { NET_CONV = 1, NET_FC = 2 } net_kind;

typedef struct {
    net_kind kind;        /* binary conv 3x3 or binary dense */
    int in_c, in_h, in_w; /* input shape; a dense layer has in_h = in_w = 1 only if it follows a dense layer */
    int out_c;            /* output channels or units */
    int pool;             /* 2: a 2x2 max-pool follows the layer (conv only); 0: none */
    int out_h, out_w;     /* output spatial size (after pooling); 1x1 for dense */
    int fan_in;           /* weights per neuron: 9*in_c (conv) or in_c*in_h*in_w (dense) */
    int first;            /* 1 if the layer sees the raw pixels */
    int last;             /* 1 for the classifier: no batch norm, no sign */
    float *w;             /* (out_c, fan_in) latent weights */
    float *gamma, *beta;  /* (out_c) batch-norm affine; NULL for the classifier */
    float *mean, *var;    /* (out_c) batch-norm running statistics; NULL for the classifier */
} net_layer;

typedef struct {
    arch arch;                        /* hidden layers as parsed */
    int in_c, in_h, in_w;             /* input image shape (HWC) */
    int classes;                      /* number of classes */
    int n_layers;                     /* hidden layers + classifier */
    net_layer layers[NET_MAX_LAYERS]; /* input to output */
    float *scale;                     /* (1) learnable output scale s */
    size_t n_params;                  /* floats in params */
    float *params;                    /* all trainable parameters, one allocation */
    size_t n_stats;                   /* floats in stats */
    float *stats;                     /* running means and variances, one allocation */
} net;

/* Builds the layers of a for inputs (in_h, in_w, in_c) and `classes` outputs,
   and allocates zeroed parameters. Returns BN_OK or BN_EARG (shape too small
   for the pools, too many layers). */
int net_create(net *n, const arch *a, int in_c, int in_h, int in_w, int classes);

/* The layers and parameter counts net_create would build, without allocating
   anything (params, stats and the layer pointers stay NULL; nothing to free):
   for estimates before committing memory, e.g. train_memory_bytes. */
int net_plan(net *n, const arch *a, int in_c, int in_h, int in_w, int classes);

/* Initialises parameters: latent weights U(-1/sqrt(fan_in), 1/sqrt(fan_in))
   from rng, gamma 1, beta 0, running mean 0, running var 1, scale 1e-3. */
void net_init_params(net *n, pcg32 *rng);

void net_free(net *n);

/* Deep copy: dst gets its own allocations. */
int net_copy(net *dst, const net *src);

/* Number of multiply-accumulates of one forward pass of one image. */
double net_macs(const net *n);

/* Bytes of the deployed packed model: each neuron's fan_in weight bits rounded
   up to whole 32-bit words, one int32 threshold per hidden neuron, and the
   4-byte scale. This is the model-size objective of the search. */
size_t net_packed_bytes(const net *n);

/* Bytes net_forward_eval (and net_predict) allocates for B images. */
size_t net_eval_bytes(const net *n, int B);

/* Float evaluation path (inference, running statistics). x is (B, H, W, C)
   raw pixels, logits is (B, classes). */
void net_forward_eval(const net *n, float *logits, const uint8_t *x, int B);

/* Predicted class of each of the B images (argmax of the logits, first on ties). */
void net_predict(const net *n, int *pred, const uint8_t *x, int B);

/* The float path's pre-sign value of hidden neuron c of layer l for an integer
   accumulator value acc: BN(acc * in_scale) with running statistics, where
   in_scale is 1/255 for the first layer and 1 otherwise. The packed path's
   thresholds are derived from exactly this function. */
float net_bn_value(const net_layer *L, int c, float acc);

/* The two halves of net_bn_value, for loops that hoist the per-channel part:
   net_bn_value(L, c, acc) == net_bn_apply(L, c, net_bn_invstd(L, c), acc). */
float net_bn_invstd(const net_layer *L, int c);
float net_bn_apply(const net_layer *L, int c, float invstd, float acc);

/* Binarization used everywhere: x > 0 -> +1, otherwise -1. */
static inline float net_sign(float x) { return x > 0.0f ? 1.0f : -1.0f; }

#endif /* BNAS_NET_H */
