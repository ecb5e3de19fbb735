/*
** Error models on the packed network: one hooked forward driver for the four
** places a device perturbs (design.md "Error models"), beside the hook-free
** fast path packed_logits, which this file does not touch.
**
**   place               per-layer setting                 where it acts
**   stored weight bits  w_p01, w_p10, w_invert            every layer (first and classifier too)
**   XNOR products       x_p01, x_p10                      hidden binary layers and the classifier,
**                                                         not the first layer (its products are
**                                                         pixel * weight, not binary), before pooling
**   chunked sums        chunk, chunk_fn, decide_fn, user  hidden binary layers and the classifier
**   activations         a_p01, a_p10                      output bits of hidden layers
**
** Stored weight bits. A stored 0 bit reads as 1 with probability w_p01 and a
** stored 1 bit as 0 with w_p10. Weights map +1 -> bit 1 ("direct"); with
** w_invert the layer stores +1 as bit 0 (BERA's inverted assignment), so a +1
** weight flips with w_p01 and a -1 weight with w_p10. The draw is
** fault_draw_mask's nested draw (engine/fault.h) with the same key as
** fault_ctx_draw's weights (repeat, FAULT_WEIGHTS, layer), so a weight-only
** errmodel flips exactly the bits fault_evaluate flips for the same seed, and
** the flips at a lower rate are a subset of those at a higher one (a
** temperature sweep is monotone per draw). Weight errors are a property of
** the chip: one draw per repeat, shared by all images.
**
** XNOR products. Each of a neuron's N products (N = fan_in for dense, the
** valid taps times in_c for a conv position at the border) reads wrong
** independently: a +1 product reads -1 with x_p10 and a -1 product reads +1
** with x_p01. With P = (acc + N) / 2 products at +1, the erroneous sum is
** exactly distributed as acc' = acc - 2*B1 + 2*B2, B1 ~ Bin(P, x_p10),
** B2 ~ Bin(N - P, x_p01), drawn per neuron and position (tests hold this
** against explicit per-product flipping). Errors are per image.
**
** Chunked partial sums (the extension point of LTA, CapMin, approximate
** popcount). With chunk = n > 0 a layer's products are cut, in the float
** path's fan_in order (ky, kx, c) or (h, w, c), into chunks of n (the last one
** shorter); for every neuron, position and chunk k the driver counts the
** chunk's valid products n_valid (border taps of a conv are not products) and
** how many of them are +1, n_pos (after the product errors above, if any),
** and replaces the chunk's exact sum 2*n_pos - n_valid by chunk_fn(...) (NULL:
** the exact sum). The accumulator is the sum of the chunk values; pooling and
** the threshold follow as usual. If decide_fn is set (hidden layers only), the
** output bit at a position is decide_fn(chunk values, T, inv) instead of
** (sum >= T) ^ inv, and a 2x2 max-pool of decided bits pools the decisions
** before the invert bit: out = OR(bit ^ inv) ^ inv (the max of the +-1
** pre-activations, then the sign of gamma; an AND of the bits where gamma < 0),
** as packed inference and engine/chunk.h do. Callbacks run on several threads
** at once: user must be read-only or otherwise thread-safe; the rng they get
** is the image's keyed stream. The chunk sums come from engine/chunk.h
** (chunk_gather, chunk_sums_all, the same kernels as the chunked-sum driver)
** and the forward pass is trace_forward (engine/trace.h).
**
** Activations. Every output bit of a hidden layer that reads 0 becomes 1 with
** a_p01 and one that reads 1 becomes 0 with a_p10 (after the threshold and
** pooling).
**
** Determinism. Per-image draws come from rng_keyed(seed, key, purpose) with
** key = repeat << 40 | image << 8 | layer (image < 2^32, repeat < 2^24) and a
** purpose per place (ERRMODEL_RNG_*), so results do not depend on the thread
** count or on the order images are processed in.
**
** Speed. When a model has only weight errors, errmodel_logits flips a copy of
** the network and runs the fast path packed_logits on it. Otherwise it runs
** the hooked driver, one image at a time (the accumulators and chunk counts
** come from the active SIMD kernels; the per-chunk draws are scalar).
*/
#ifndef BNAS_ERRMODEL_H
#define BNAS_ERRMODEL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/data.h"
#include "engine/fault.h"
#include "engine/net.h"
#include "engine/packed.h"
#include "engine/rng.h"

/* Purposes of the per-image keyed streams (distinct from engine/rng.h's and
   from fault.c's band streams RNG_INJECT + 256*(k+1) < 2^16). */
#define ERRMODEL_RNG_PRODUCTS ((uint64_t)0x10000 + 1)    /* XNOR product binomials */
#define ERRMODEL_RNG_CHUNKS ((uint64_t)0x10000 + 2)      /* handed to chunk_fn / decide_fn */
#define ERRMODEL_RNG_ACTIVATIONS ((uint64_t)0x10000 + 3) /* activation flips */

/* Value that chunk k of `neuron` in layer l contributes to the neuron's
   accumulator, given that n_pos of its n_valid products are +1 (the exact
   value is 2*n_pos - n_valid). rng: the image's keyed stream for chunks. */
typedef int32_t (*errmodel_chunk_fn)(void *user, int l, int neuron, int chunk, int n_valid, int n_pos,
                                     pcg32 *rng);

/* Output bit (0 or 1) of hidden neuron `neuron` of layer l at one position
   from its chunk values v (n_chunks) and its folded threshold (T, inv); the
   plain rule is ((sum of v) >= T) ^ inv. */
typedef int (*errmodel_decide_fn)(void *user, int l, int neuron, const int32_t *v, int n_chunks, int32_t T,
                                  int inv, pcg32 *rng);

/* Settings of one layer; all zero / NULL means "no error here". */
typedef struct {
    double w_p01, w_p10;         /* stored weight bits: P(stored 0 reads 1), P(stored 1 reads 0) */
    int w_invert;                /* 1: +1 stored as bit 0 (BERA inverted), so +1 weights see w_p01 */
    double x_p01, x_p10;         /* XNOR products: P(-1 product reads +1), P(+1 product reads -1) */
    int chunk;                   /* chunk length n of the partial sums (0: no chunking) */
    errmodel_chunk_fn chunk_fn;  /* chunk value (NULL: exact 2*n_pos - n_valid); needs chunk > 0 */
    errmodel_decide_fn decide_fn;/* output decision replacing the threshold (NULL: threshold); hidden only */
    void *user;                  /* passed to chunk_fn and decide_fn */
    double a_p01, a_p10;         /* activations: P(output 0 reads 1), P(output 1 reads 0); hidden only */
} errmodel_layer;

typedef struct {
    errmodel_layer layer[NET_MAX_LAYERS]; /* input to output; entries past n_layers are ignored */
} errmodel;

/* All settings zero: the clean network. */
void errmodel_zero(errmodel *m);

/* Sets stored-weight rates (p01, p10) in every layer. */
void errmodel_set_weights(errmodel *m, double p01, double p10);

/* Sets XNOR product rates (p01, p10) in every layer (the driver skips the
   first layer). */
void errmodel_set_products(errmodel *m, double p01, double p10);

/* Sets activation rates (p01, p10) in every layer (hidden layers only act). */
void errmodel_set_activations(errmodel *m, double p01, double p10);

/* BN_OK if m fits p: rates in [0, 1], chunk >= 0, chunk_fn/decide_fn only
   with chunk > 0, decide_fn not on the classifier; else BN_EARG naming the
   layer and setting. */
int errmodel_check(const packed_net *p, const errmodel *m);

/* 1 if m has anything besides stored weight errors for p (then the hooked
   driver runs), else 0. */
int errmodel_needs_driver(const packed_net *p, const errmodel *m);

/* Logits (B, classes) of images x (B, H, W, C) under m for draw `repeat` of
   seed; the images are numbered 0..B-1 in the keys (use errmodel_logits_at to
   offset them). Parallel over images (OpenMP, `threads`, 0: default); results
   do not depend on the thread count. Returns BN_OK or errmodel_check's error. */
int errmodel_logits(const packed_net *p, const errmodel *m, uint64_t seed, int repeat, float *logits,
                    const uint8_t *x, int B);

/* errmodel_logits with an explicit thread count and the first image's number
   first_image in the keys. */
int errmodel_logits_at(const packed_net *p, const errmodel *m, uint64_t seed, int repeat, float *logits,
                       const uint8_t *x, int B, int first_image, int threads);

/* Predicted classes (argmax of the logits, first on ties) under m. */
int errmodel_predict(const packed_net *p, const errmodel *m, uint64_t seed, int repeat, int *pred,
                     const uint8_t *x, int B, int threads);

/* Accuracy (fraction) of p under m on d for draw `repeat`. */
int errmodel_accuracy(const packed_net *p, const errmodel *m, uint64_t seed, int repeat, const dataset *d,
                      int threads, double *acc);

/* Accuracy for repeats 0..R-1 (acc: R values, may be NULL) and their summary
   (fault_stats; flips is 0). */
int errmodel_evaluate(const packed_net *p, const errmodel *m, const dataset *d, int repeats, uint64_t seed,
                      int threads, fault_stats *out, double *acc);

/* Applies m's stored-weight errors of draw (seed, repeat) to p in place
   (fault_draw_mask per layer, key of fault_ctx_draw, p01/p10 swapped where
   w_invert) and re-syncs the kernel layouts. Returns the number of flips. */
int64_t errmodel_flip_weights(packed_net *p, const errmodel *m, uint64_t seed, int repeat);

/* Sets work's stored weights to clean's with m's stored-weight errors of
   draw (seed, repeat) applied (the draw of errmodel_flip_weights), re-syncing
   only the layers whose bits changed since work's previous state. work must
   be a packed_copy of clean (or a previous result of this function). For
   sweeps over many rates without re-copying the network. Returns the flips. */
int64_t errmodel_redraw_weights(packed_net *work, const packed_net *clean, const errmodel *m, uint64_t seed,
                                int repeat);

/* Binomial(n, prob) from rng; pw (n+1 values, may be NULL) holds (1-prob)^k
   for k = 0..n, which makes the inversion for small n*prob cheap. Exact in
   distribution in every case (pcg32_binomial for n*prob >= 16). */
uint32_t errmodel_binomial(pcg32 *rng, uint32_t n, double prob, const double *pw);

/* XNOR product errors of one accumulator acc of N +-1 products (P = (acc + N)
   / 2 of them +1): acc - 2*B1 + 2*B2 with B1 ~ Bin(P, p10) drawn from g
   first, then B2 ~ Bin(N - P, p01); pw01, pw10 from errmodel_pow_table (may
   be NULL). The product errors of the driver and of training
   (engine/perturb.h). */
int32_t errmodel_product_errors(pcg32 *g, int32_t acc, int N, double p01, double p10, const double *pw01,
                                const double *pw10);

/* The table (1 - prob)^k, k = 0..n, of errmodel_binomial (n + 1 values; the
   caller frees it), or NULL where errmodel_binomial does not use one (prob
   <= 0 or > 0.5). */
double *errmodel_pow_table(double prob, int n);

/* Taps of a 3x3 convolution with zero padding at output position (y, x) of
   an H x W map that fall inside the map (1 to 9): a conv position has
   valid_taps * in_c products. */
int errmodel_valid_taps(int y, int x, int H, int W);

/* Images per second of the hooked driver (repeat 0) and of the fast path on
   the n images x with `threads` threads (each timed for ~0.5 s). */
void errmodel_bench(const packed_net *p, const errmodel *m, const uint8_t *x, int n, int threads,
                    double *hooked_ips, double *fast_ips);

#endif /* BNAS_ERRMODEL_H */
