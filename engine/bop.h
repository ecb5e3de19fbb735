/*
** The Bop optimizer (Helwegen et al., "Latent Weights Do Not Exist",
** NeurIPS 2019) for the binary weights, with its momentum stored in a small
** floating-point format (engine/fpfmt.h; Yayla and Chen, DAC 2022), the
** lost-update metric, and the training-memory model.
**
** For every binary weight w in {-1, +1} with gradient g = dL/dw (what the
** engine's backward leaves in the weights' gradient slots), one step is
**
**     u = (1 - gamma) * m + gamma * g        computed in double
**     m = fl_F(u)                            rounded into the format F (RNE, saturating)
**     flip w  iff  w * m > tau
**
** The momentum starts at 0. The engine keeps its float latent weights: Bop
** only reads their sign (net_sign: > 0 is +1) and a flip negates the latent
** value; a latent value of exactly 0 (sign -1) flips to +BOP_ZERO_FLIP, so a
** flipped weight never sits at 0. Batch norm and the output scale are trained
** by Adam (engine/train.c).
**
** Lost updates: a momentum value is lost in a step if fl_F(u) == m although
** u != m, i.e. the exact update would have changed it but the encoding
** rounded the change away. Values with u == m (e.g. g == m) are trivially
** unchanged and not counted. The lost-update fraction of a step is
** lost / N over all N momentum values.
**
** With F = binary32 the step converts u to float natively ((float)u, the same
** value as fl_F(u) on every finite u below FLT_MAX); any other format is
** emulated with fpfmt_round, the momentum array still holding floats whose
** values are exactly F's.
*/
#ifndef BNAS_BOP_H
#define BNAS_BOP_H

#include <stddef.h>
#include <stdint.h>

#include "engine/fpfmt.h"
#include "engine/net.h"

#define BOP_ZERO_FLIP 1e-3f /* latent magnitude given to a weight flipped away from exactly 0 */

typedef struct {
    fpfmt fmt;                     /* momentum format */
    int native;                    /* 1 if fmt is binary32 (native float conversion) */
    size_t n;                      /* momentum values: binary weights of all layers */
    size_t off[NET_MAX_LAYERS];    /* first momentum value of each layer */
    float *m;                      /* (n) momentum, layer by layer in (out_c, fan_in) order, values of fmt */
    int64_t lost;                  /* lost updates counted since the last bop_reset_stats */
    int64_t counted;               /* momentum updates counted since then (N per step) */
    int64_t flips;                 /* weight flips since then */
    double max_abs;                /* largest |m| since then */
} bop_state;

/* Momentum of zeros for n's binary weights in format fmt. Returns BN_OK. */
int bop_create(bop_state *b, const net *n, const fpfmt *fmt);
void bop_free(bop_state *b);

/* Zeroes lost, counted, flips and max_abs. */
void bop_reset_stats(bop_state *b);

/* One Bop step on every binary weight of n. grads has n->n_params floats in
   the layout of n->params; only the weights' slots are read. Updates the
   momentum, flips latent weights, adds to the statistics; returns the number
   of lost updates of this step. Deterministic for any thread count. */
int64_t bop_step(bop_state *b, net *n, const float *grads, float gamma, float tau);

/* The same step, one weight after the other with fpfmt_round and no
   parallelism: the reference twin of bop_step (bit-equal results). */
int64_t bop_step_ref(bop_state *b, net *n, const float *grads, float gamma, float tau);

/* Training memory of Bop on an edge device, in bytes (bop_memory_model).
   Every field is a whole number of bytes. */
typedef struct {
    double weights;     /* binary weights, 1 bit each (Bop needs no latent weights) */
    double momentum;    /* one momentum value per binary weight, bits(F) each */
    double bn;          /* batch norm and scale: gamma, beta, running mean and var,
                           Adam m and v of gamma and beta (8 floats per hidden
                           channel); scale with its Adam m and v (3 floats) */
    double activations; /* what one batch's backward needs (see bop_memory_model) */
    double total;       /* sum of the above */
} bop_memory;

/* Bits that hold every accumulator value of hidden layer L exactly: the
   accumulator is an integer in [-K, K], K = fan_in (+-1 inputs) or
   255 * fan_in (first layer, 8-bit pixels); bits = ceil(log2(2K + 1)). */
int bop_acc_bits(const net_layer *L);

/* The memory model for n, momentum format fmt and batch size batch:
   weights + momentum + bn as above, and for activations: the batch's input
   pixels (8 bits each); for every hidden layer its (pooled) integer
   accumulators at bop_acc_bits bits each, the 2x2 pool argmax (2 bits per
   pooled value) and the batch mean and 1/std per channel (fp32); the logits
   and their gradient (fp32). The backward recomputes the batch-norm values,
   the signs and the STE masks from the accumulators, so nothing else is
   kept. Per-weight gradients are not counted: a trainer consumes them layer
   by layer as the backward produces them. (This engine itself keeps fp32
   latent weights, caches and gradients: the model is the edge trainer's.) */
bop_memory bop_memory_model(const net *n, const fpfmt *fmt, int batch);

/* The same model for training by Adam, for comparison: each binary weight
   has an fp32 latent weight (in the weights field, 4 bytes) and Adam's two
   fp32 moments (in the momentum field, 8 bytes); batch norm, scale and
   activations as in bop_memory_model. */
bop_memory bop_memory_model_adam(const net *n, int batch);

#endif /* BNAS_BOP_H */
