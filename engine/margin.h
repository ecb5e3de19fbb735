/*
** Bit-error tolerance without fault injection: the neuron-level metric of
** Buschjaeger et al., "Towards Explainable Bit Error Tolerance of
** Resistive RAM-Based Binarized Neural Networks" (arXiv 2002.00909, eqs. 2-6),
** and the output-layer margin, both measured exactly on the packed network.
**
** Local tolerance (eq. 2). For hidden neuron n of layer l at output position
** q (after max-pooling) with integer accumulator a and folded threshold T
** (the neuron's bit is (a >= T) ^ inv, engine/packed.h), eta is the number of
** weight flips the neuron tolerates for certain:
**
**     a >= T:  eta = floor((a - T) / step)          (a - step*m >= T for m <= eta)
**     a <  T:  eta = ceil((T - a) / step) - 1       (a + step*m <  T for m <= eta)
**
** where step is the largest change of a one weight flip can make: 2 for
** layers with +-1 inputs (a flip changes one summand from +x to -x), and
** 2*255 for the first layer, whose inputs are 8-bit pixels (the paper's eq. 6
** scales the first layer because its inputs lie in [0, 1] instead of {-1, 1};
** its formula is lost in the text we have, so this is our reconstruction:
** the paper's unit is the pixel value p/255, we count in raw pixels, so its
** per-flip change 2 becomes 2*255). Max-pooling keeps the bound: a flip moves
** every accumulator of the pool window by at most step, hence their maximum
** too. A neuron with a constant output (T = INT32_MIN or INT32_MAX, or
** eta > fan_in) tolerates every flip of its fan_in weights; eta is capped at
** fan_in.
**
** Theorem 1: if eta >= m at every position, flipping any m weights of the
** neuron leaves its output unchanged (tests/test_margin.c checks this, and
** that m = eta + 1 chosen adversarially can change it).
**
** Neuron tolerance (eq. 3): the minimum of eta over the positions of the
** neuron's feature map for one input. Network tolerance (eqs. 4, 5): the mean
** of the neuron tolerance over all hidden neurons and over the data set. We
** also report the mean per hidden layer.
**
** Output margin: for an image with label y and logits z = s * acc, the
** number of output-weight flips (each moves one logit by 2|s|) between the
** prediction and a wrong class: (z_y - max_{c != y} z_c) / (2 |s|), negative
** when the image is misclassified; reported as its mean over the data set.
**
** Every quantity is an integer sum, so results do not depend on the thread
** count.
*/
#ifndef BNAS_MARGIN_H
#define BNAS_MARGIN_H

#include <stdint.h>

#include "engine/data.h"
#include "engine/net.h"
#include "engine/packed.h"

/* The flip unit, the one definition shared by the metric (margin_local) and
   the training regularizer (train_neuron_margin in engine/train.h): the
   largest change of a neuron's accumulator by one weight flip, in raw
   accumulator units (raw pixels p for the first layer): 2 for layers with +-1
   inputs, 2*255 for the first layer (seed 002, eq. 6 and the proof of
   Theorem 1: its inputs p/255 lie in [0, 1], so a flip moves the
   pre-activation by up to 2 in units of p/255). */
static inline int32_t margin_flip_step(int first) { return first ? 2 * 255 : 2; }

/* Step of one weight flip of layer L: margin_flip_step(L->first). */
static inline int32_t margin_step(const packed_layer *L) { return margin_flip_step(L->first); }

/* Continuous margin in weight flips of an accumulator at distance d >= 0
   (raw accumulator units) from the neuron's threshold: d / margin_flip_step.
   The integer eta of margin_local is ceil(m) - 1 when the neuron outputs +1
   (pre-sign value > 0) and floor(m) otherwise, for the real threshold tau of
   the float path (tests/test_margin.c checks this). */
static inline double margin_flips(int first, double d) { return d / margin_flip_step(first); }

/* Local tolerance eta of an accumulator a against threshold T of a neuron of
   L (see the file comment); in [0, fan_in]. */
static inline int32_t margin_local(const packed_layer *L, int32_t a, int32_t T) {
    if (T == INT32_MIN || T == INT32_MAX) return L->fan_in;
    int64_t d = (int64_t)a - T, s = margin_step(L), eta = d >= 0 ? d / s : (-d - 1) / s;
    return eta > L->fan_in ? L->fan_in : (int32_t)eta;
}

/* Result of margin_measure. */
typedef struct {
    int n_images;                 /* images measured */
    int n_hidden;                 /* hidden layers (n_layers - 1) */
    double mean;                  /* eq. 5: mean neuron tolerance over images and all hidden neurons */
    double layer[NET_MAX_LAYERS]; /* mean neuron tolerance of hidden layer l, l < n_hidden */
    double output;                /* mean output margin in flips, (z_y - max_{c!=y} z_c) / (2|s|) */
    double accuracy;              /* clean accuracy of the same pass */
} margin_result;

/* Measures the metrics of p on d with `threads` OpenMP threads (0: default).
   Returns BN_OK, or BN_EARG if d's image shape does not match p. */
int margin_measure_packed(const packed_net *p, const dataset *d, int threads, margin_result *out);

/* margin_measure_packed of the packed form of n. Returns BN_OK or the error
   of packed_from_net / margin_measure_packed. */
int margin_measure(const net *n, const dataset *d, int threads, margin_result *out);

#endif /* BNAS_MARGIN_H */
