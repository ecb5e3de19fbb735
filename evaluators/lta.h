/*
** LTA, local thresholding approximation (Yayla et al., "Unlocking Efficiency
** in BNNs: Global by Local Thresholding for Analog-Based HW Accelerators",
** IEEE JETCAS 2023; algorithm from the authors' CUDA kernel, papers.md
** section 5), on the chunked-sum engine (engine/chunk.h), and the port of the
** authors' public hardware calculator.
**
** A hidden neuron with N = fan_in products and folded threshold T (its bit is
** (acc >= T) ^ inv, engine/packed.h) is computed on crossbar columns of n
** XNOR cells: chunk k gives the column sum s_k, a comparator votes
** (s_k >= tau_k), and the neuron outputs the majority: d = votes > M/2
** (integer division), then the invert bit applies. Max-pooling (our layer
** order: pool before the threshold) ORs the decisions of the pool window,
** which is exactly what pooling the accumulators does for the global
** threshold.
**
** Corrected behaviour (default): K = ceil(N/n) chunks, tau_k = round(T *
** len_k / N) (round half away from zero, len_k the chunk's nominal length),
** majority over M = K votes, the invert bit (gamma < 0) honoured. With one
** chunk (n >= N) this is the global threshold exactly.
**
** The authors' kernel, selectable as quirks:
**   floor_cycles  M = cycles = max(1, floor(N/n)) and tau = round(T / cycles)
**                 for the full chunks (the tail still votes, so up to M + 1 votes);
**   tail_zero     the tail chunk's threshold is 0 (their (N%n)/n is integer division);
**   ignore_gamma  the invert bit is ignored (their tau = mu - sigma*beta/gamma
**                 and the vote s >= tau are used whatever the sign of gamma).
** Differences that remain: we split the integer threshold T (the exact folded
** decision boundary) instead of the real tau; chunks follow our fan_in order
** (ky, kx, c) instead of PyTorch's unfold order (c, ky, kx); padding is zero
** in both paths.
**
** LTA is applied to hidden layers that see binary inputs (not the first
** layer, not the classifier), as in the authors' code.
**
** The model of the evaluator "lta": both live in evaluators/lta.c (its
** parameters and metrics in the comment at the top).
*/
#ifndef BNAS_LTA_H
#define BNAS_LTA_H

#include <stdint.h>

#include "engine/chunk.h"
#include "engine/data.h"
#include "engine/packed.h"
#include "engine/perturb.h"

typedef struct {
    int n;            /* XNOR cells per column = products per chunk (>= 1) */
    int floor_cycles; /* quirk: floored chunk count (see the file comment) */
    int tail_zero;    /* quirk: tail chunk threshold 0 */
    int ignore_gamma; /* quirk: invert bit ignored */
    uint32_t layers;  /* bit l set: apply to layer l; 0: every eligible layer */
} lta_options;

/* Per-layer LTA state, the user pointer of lta_combine. */
typedef struct {
    int K;            /* chunks per neuron */
    int M;            /* votes needed: decision = votes > M / 2 */
    int32_t *tau;     /* (out_c, K) local thresholds */
    int64_t *stats;   /* (threads, 8) per thread: [0] decisions, [1] agreeing with the global threshold */
    int threads;      /* rows of stats */
    int out_c;        /* neurons */
    int32_t *buf;     /* (threads, 2, out_c) votes and sums of one position, lta_combine_all's scratch */
    chunk_vote_kernel vote; /* vote kernel (chunk_vote_active()) */
} lta_layer;

/* The LTA form of a packed network: a copy of the network (invert bits
   cleared under ignore_gamma) and its chunk plan. */
typedef struct {
    packed_net p;                    /* owned copy */
    chunk_plan plan;                 /* chunked layers */
    lta_layer layers[NET_MAX_LAYERS];/* LTA state of the chunked layers */
    lta_options opt;                 /* the options */
} lta_net;

/* Builds the LTA form of src for opt, with statistics for `threads` threads
   (0: default). Returns BN_OK or BN_EARG (n < 1, no eligible layer). */
int lta_create(lta_net *a, const packed_net *src, const lta_options *opt, int threads);

void lta_free(lta_net *a);

/* Accuracy on d; *agree (may be NULL) receives the fraction of LTA neuron
   decisions (before pooling) equal to the global threshold's decision on the
   same (LTA-computed) inputs. Resets the statistics first. */
double lta_accuracy(lta_net *a, const dataset *d, int threads, double *agree);

/* The chunk_fn of LTA (user = lta_layer). */
int32_t lta_combine(void *user, int l, const packed_layer *L, int j, const int32_t *s, const int32_t *len, int K,
                    int thread, uint64_t site);

/* The chunk_pos_fn of LTA (user = lta_layer): lta_combine for all neurons of
   a position with the vote kernel; the same results. lta_create uses it. */
void lta_combine_all(void *user, int l, const packed_layer *L, const int32_t *s, const int32_t *len, int K,
                     int32_t *acc, int thread, uint64_t site);

/* LTA-aware training (straight-through): overwrites the sign outputs a
   (rows_out, out_c) of hidden layer L with the LTA outputs computed from the
   layer's input rows in (rows, fan_in) (+-1, 0 for zero padding; the im2col
   of a convolution), its binarized weights wb (out_c, fan_in) and the
   thresholds folded from L's current running statistics (as the authors'
   training re-extracts them every forward pass). rows = B * in_h * in_w
   (conv) or B; a 2x2 pool ORs the decisions before the invert bit, as in
   inference. The backward pass is left to the normal path (the caller keeps
   its pre-sign values), which makes this a straight-through estimator.
   Returns BN_OK or packed_fold_threshold's error. */
int lta_train_layer(const net_layer *L, const lta_options *opt, const float *in, const float *wb, int B, float *a);

/* LTA-aware training, the perturbation (engine/perturb.h) of recipe r's
   lta_n: if r->lta_n > 0, appends an activation hook that overwrites the sign
   outputs of hidden layers after the first with lta_train_layer's decisions
   at n = lta_n (no quirks, every layer). BN_EARG if lta_n < 0. r must
   outlive the training run. */
int lta_add_training(perturb_set *ps, const train_recipe *r);

/* ---- Hardware cost model (port of resource_calculator.py, LTA-BNN) ---- */

/* One layer's workload: alpha neurons, beta weights per neuron, delta input vectors. */
typedef struct {
    int64_t alpha, beta, delta;
} lta_shape;

/* Area (um^2), energy (pJ) and latency (ps) of one design. */
typedef struct {
    double area, energy, latency;
} lta_cost;

typedef struct {
    lta_cost sota;       /* analog/digital-path interface (comparator + ADC per column, digital accumulation) */
    lta_cost lta;        /* LTA: comparators per column + majority (ADC path only where beta > m*n) */
    lta_cost lta_mu;     /* LTA-MU: several neurons per crossbar */
    double analog_frac;  /* fraction of LTA decisions (alpha * delta) on the pure analog path (beta <= m*n) */
    int vgg7_set;        /* 1: the script's VGG7 constants and formulas were used (max beta > m*n) */
} lta_costs;

/* Costs of the layers (shapes, n_layers) on an m-column crossbar with n XNOR
   cells per column. The script has two constant sets (synthesised for beta =
   3136 and 8192) and two formula variants; we use the VGG3 ones when every
   beta <= m*n and the VGG7 ones otherwise, so the VGG3 and VGG7 shapes give
   the script's outputs. */
void lta_cost_model(const lta_shape *shapes, int n_layers, int m, int n, lta_costs *out);

/* Shapes of the layers LTA applies to (hidden, not first): alpha = out_c,
   beta = fan_in, delta = output positions before pooling. Returns the count. */
int lta_shapes_of(const packed_net *p, lta_shape *shapes);

#endif /* BNAS_LTA_H */
