/*
** Fault injection on the packed model: random bit errors in the stored weight
** bits, in the int32 thresholds, and in the output activation bits of hidden
** layers, evaluated with the bit-packed inference path (engine/packed.h).
**
** Error model. Every stored bit flips independently: a 0 bit becomes 1 with
** probability p01, a 1 bit becomes 0 with probability p10 (uniform BER:
** p01 = p10 = p). Weights store +1 as 1 and -1 as 0, so p01 turns -1 into +1.
** Rates are given per target (weights, thresholds, activations) and per layer.
**
** Nested, rate-independent draws. Each candidate bit j of a (seed, key) has
** one fixed uniform u_j in [0, 1) and flips iff u_j < p (p = p01 or p10 by
** the bit's stored value), so the flips at a lower rate are a subset of the
** flips at a higher one, and a draw never depends on the other rates or on
** the thread count. The u_j are generated sparsely: [0, 1) is cut into dyadic
** bands B_k = [2^-(k+1), 2^-k) for k < FAULT_BANDS-1 and B_last = [0, 2^-(FAULT_BANDS-1)).
** Band k has its own PCG stream rng_keyed(seed, key, RNG_INJECT + 256*(k+1))
** which visits the bits with geometric gaps of success
** probability q_k, where 1 - q_k = (1 - 2^-k) / (1 - 2^-(k+1)) (q_last =
** 2^-(FAULT_BANDS-1)), and gives every visited bit a uniform value inside
** B_k. A bit's u_j is the value from the highest band that visits it (bands
** are processed from the highest down); bits no band visits have u_j in
** bands never processed. With these q_k, P(highest band >= k) = 2^-k, so u_j
** is exactly uniform on [0, 1) and independent across bits. A rate p only
** needs the bands whose lower edge is below p, which visit about 2p of all
** bits: at 1% the draw touches ~1.6% of the bits.
**
** Keys: key = (repeat * FAULT_TARGETS + target) * NET_MAX_LAYERS + layer for
** weights and thresholds; activations of image i use key
** 2^63 | repeat << 36 | i << 8 | layer (repeat < 2^27, i < 2^28), so every
** image draws its own errors and results do not depend on the thread count.
**
** Evaluation paths. fault_ctx_evaluate runs the repeats in groups of up to
** FAULT_GROUP through fault_ctx_predict_repeats. The dense path draws,
** applies and predicts one repeat after the other with the packed kernels.
** The delta path (networks whose first layer is dense) draws the group's
** repeats in parallel, then, per block of FAULT_DELTA_B images, computes the
** clean first-layer accumulators once and for every repeat only adds the
** pixels under its flipped first-layer weights (engine/fault_delta.h) before
** running the remaining layers with the packed kernels. Both give the same
** predictions bit for bit (tests/test_fault.c); a cost estimate picks one.
*/
#ifndef BNAS_FAULT_H
#define BNAS_FAULT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/data.h"
#include "engine/fault_delta.h"
#include "engine/net.h"
#include "engine/packed.h"

#define FAULT_BANDS 48 /* dyadic bands of the sparse uniforms; the lowest is [0, 2^-47) */

/* Targets of an error model. */
enum { FAULT_WEIGHTS = 0, FAULT_THRESHOLDS = 1, FAULT_ACTIVATIONS = 2, FAULT_TARGETS = 3 };

/* Per-target, per-layer flip probabilities. Thresholds and activations exist
   for hidden layers only; their rates for the classifier are ignored. */
typedef struct {
    double p01[FAULT_TARGETS][NET_MAX_LAYERS]; /* probability that a stored 0 bit reads as 1 */
    double p10[FAULT_TARGETS][NET_MAX_LAYERS]; /* probability that a stored 1 bit reads as 0 */
} fault_model;

/* All rates 0. */
void fault_model_zero(fault_model *m);

/* Sets (p01, p10) for target t in every layer. */
void fault_model_set(fault_model *m, int t, double p01, double p10);

/* Nested flip draw (see the file comment) over rows of kw words: sets bit j of
   mask (rows, kw) iff u_j < (bit j of src ? p10 : p01), only for bits set in
   valid (kw words, the same for every row; NULL: all bits); other mask bits
   are cleared. seen (rows, kw) words is scratch. Counts flips of stored 0 and
   1 bits into *n01, *n10 (either may be NULL). 0 <= p01, p10 <= 1. */
void fault_draw_mask(uint64_t *mask, const uint64_t *src, size_t rows, int kw, const uint64_t *valid,
                     double p01, double p10, uint64_t seed, uint64_t key, uint64_t *seen, size_t *n01,
                     size_t *n10);

/* The plain twin of fault_draw_mask: the same u_j materialised for every bit
   by walking all bands over all bits (slow; for tests). */
void fault_draw_mask_ref(uint64_t *mask, const uint64_t *src, size_t rows, int kw, const uint64_t *valid,
                         double p01, double p10, uint64_t seed, uint64_t key);

/* How fault_ctx_predict_repeats evaluates a group of repeats. */
enum {
    FAULT_PATH_AUTO = 0,  /* the delta path where it applies and its cost estimate is lower, else dense */
    FAULT_PATH_DENSE = 1, /* per repeat: draw, apply, fault_ctx_predict (the reference) */
    FAULT_PATH_DELTA = 2, /* incremental first layer (engine/fault_delta.h); dense first layers only */
};

#define FAULT_GROUP 16 /* repeats evaluated together by fault_ctx_evaluate (bounds the delta path's memory) */

struct fault_slot;

/* Injection state of one network: a clean packed copy, a working copy that
   receives the flips, and the masks of the current draw. */
typedef struct {
    packed_net clean;                  /* packed network, never modified */
    packed_net work;                   /* packed network with the current flips applied */
    uint64_t *wmask[NET_MAX_LAYERS];   /* (out_c, kw) weight flip masks of the current draw */
    uint64_t *tmask[NET_MAX_LAYERS];   /* (out_c) threshold flip masks (low 32 bits); NULL for the classifier */
    uint64_t *seen;                    /* scratch of fault_draw_mask, max over layers of out_c * kw words */
    size_t flips01[FAULT_TARGETS];     /* flips of stored 0 bits: weights and thresholds of the current draw,
                                          activations of the last fault_ctx_predict */
    size_t flips10[FAULT_TARGETS];     /* flips of stored 1 bits */
    double draw_seconds;               /* wall time of the last fault_ctx_draw */
    int path;                          /* FAULT_PATH_*: the path fault_ctx_predict_repeats takes (default AUTO) */
    int last_path;                     /* FAULT_PATH_DENSE or _DELTA: the path the last fault_ctx_predict_repeats took */
    double group_draw_seconds;         /* wall time spent drawing flips in the last fault_ctx_predict_repeats */
    double group_flips;                /* flipped bits (all targets, all repeats) of the last fault_ctx_predict_repeats */
    int n_slots;                       /* per-repeat states allocated for the delta path */
    struct fault_slot *slots;          /* (n_slots) per-repeat states of the delta path */
} fault_ctx;

/* Packs n. Returns BN_OK or packed_from_net's error. */
int fault_ctx_create(fault_ctx *c, const net *n);
void fault_ctx_free(fault_ctx *c);

/* Draws the weight and threshold flips of (seed, repeat) under m into the masks. */
void fault_ctx_draw(fault_ctx *c, const fault_model *m, uint64_t seed, int repeat);

/* Sets work = clean XOR masks (weights, re-synced kernel layouts, thresholds). */
void fault_ctx_apply(fault_ctx *c);

/* Applies the weight masks of the current draw to n, which must hold the
   weights c was created from: each flipped weight's latent value is negated
   (0 becomes a tiny positive value, as sign(0) = -1). Thresholds are not
   mirrored (the float path has none). */
void fault_apply_to_net(const fault_ctx *c, net *n);

/* Predictions (d->n) of the working network on d with activation flips of
   (seed, repeat) under m when m has activation rates, else plain
   packed_predict_threads. */
void fault_ctx_predict(fault_ctx *c, const fault_model *m, uint64_t seed, int repeat, const dataset *d,
                       int threads, int *pred);

/* Predictions pred (nr, d->n) of the repeats r0 .. r0+nr-1 of seed under m:
   row r holds exactly what fault_ctx_draw(r0 + r), fault_ctx_apply and
   fault_ctx_predict give, whichever path c->path selects. The delta path
   (dense first layer, at least one hidden layer) computes the first layer's
   clean accumulators once per block of images and adds each repeat's flipped
   weights (engine/fault_delta.h); AUTO takes it when nr >= 2 and its cost
   estimate beats the dense kernels; it draws the repeats in parallel.
   Afterwards the masks and flips01/flips10 of c are those of repeat
   r0+nr-1 (weights and thresholds; on the dense path also activations), and
   c->work holds that repeat's network on the dense path only. Returns BN_OK,
   or BN_EARG for nr < 1, r0 < 0, a shape mismatch, bad rates, or
   FAULT_PATH_DELTA on a network whose first layer is not dense. */
int fault_ctx_predict_repeats(fault_ctx *c, const dataset *d, const fault_model *m, uint64_t seed, int r0, int nr,
                              int threads, int *pred);

/* Predictions pred (nr, d->n) of the networks nets[0..nr) on d by the delta
   path, for callers that flip stored bits themselves (for example an error
   model's per-repeat redraws): each nets[r] is clean with some weight bits and
   thresholds changed, its layers >= 1 synced (packed_layer_sync; layer 0's
   kernel layout is not used). Row r equals packed_predict_threads(nets[r]).
   Pays clean's first layer once per block of images and per network only the
   first-layer weights that differ from clean, so it is fastest for many
   networks with few first-layer differences. Returns BN_OK, or BN_EARG if
   clean's first layer is not dense or has no hidden layer after it, the
   shapes differ, or nr < 1. */
int fault_delta_predict(const packed_net *clean, const packed_net *const *nets, int nr, const dataset *d,
                        int threads, int *pred);

/* Summary of R repeats. */
typedef struct {
    int repeats;        /* R */
    double mean;        /* mean accuracy over repeats */
    double sd;          /* sample standard deviation (0 if R == 1) */
    double ci_lo, ci_hi;/* 95% t-interval of the mean (mean +- t_{0.975,R-1} sd / sqrt(R); = mean if R == 1) */
    double min, max;    /* extreme accuracies */
    double flips;       /* mean number of flipped bits per repeat (weights, thresholds, activations) */
} fault_stats;

/* Two-sided 95% Student t quantile t_{0.975, df}, df >= 1. */
double fault_t975(int df);

/* Mean, sd and t-interval of acc[0..R). */
void fault_stats_of(const double *acc, int R, fault_stats *s);

/* Accuracy of n on d under m for repeats 0..R-1 of seed (acc: R values, may
   be NULL) and their summary. Returns BN_OK, or BN_EARG for a shape mismatch
   or bad rates, or packed_from_net's error. */
int fault_evaluate(const net *n, const dataset *d, const fault_model *m, int repeats, uint64_t seed,
                   int threads, fault_stats *out, double *acc);

/* fault_evaluate on an existing context (reuses its packing); repeats go
   through fault_ctx_predict_repeats in groups of FAULT_GROUP. */
int fault_ctx_evaluate(fault_ctx *c, const dataset *d, const fault_model *m, int repeats, uint64_t seed,
                       int threads, fault_stats *out, double *acc);

/* BN_OK if every rate of m is in [0, 1], else BN_EARG naming it. */
int fault_model_check(const fault_model *m);

#endif /* BNAS_FAULT_H */
