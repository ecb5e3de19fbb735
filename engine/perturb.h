/*
** Training-time perturbations: hooks that train_run's forward pass
** (engine/train.c) calls on plain float arrays at three points of every
** layer of every mini-batch, so a study of a device's errors can train a
** network that expects them without the training loop knowing the device.
**
**   x -> wb = sign(w)  (a) weights hooks      change wb (out_c, fan_in), mark flips
**     -> z = x . wb^T  (b) accumulator hooks  change z (rows, out_c) before pooling
**     -> pool, batch norm, a = sign(y)
**                      (c) activation hooks   change a (rows_out, out_c) of hidden layers
**
** Hooks run in the order of their perturb_set, every hook on every layer (a
** hook skips the layers it does not model). Random draws must be keyed by
** (seed, step, layer, row) as engine/rng.h does, never by thread, so training
** stays independent of the thread count.
**
** Gradients. The backward pass is the normal one on the unperturbed path
** (straight-through): an accumulator or activation hook's change is ignored
** by the gradient (d z = d z', d y from the pre-sign values). A weights hook
** may pass its gradient through the flips instead (weights_backward).
**
** The hooks of a recipe's perturbation keys are gathered by one function at
** the evaluators layer, eval_perturbs (evaluators/evaluator.h): the generic
** ones below (weight flips, XNOR product errors, activation flips) and those
** a device study supplies (LTA-aware training, evaluators/lta.h).
**
** Generic perturbations of this file, each read from a recipe (the hook's
** user pointer is the recipe, which must outlive the training run):
**
**   Weight flips (recipe flip, p01/p10 or the flip-rate table): every bit of
**   wb flips with p10 (+1) or p01 (-1), rates fixed or drawn per mini-batch
**   (perturb_flip_rates), stream (seed, step, layer, RNG_FLIP). STE: the
**   gradient ignores the flips; naive: it passes through them.
**
**   XNOR product errors (recipe xnor_p01/xnor_p10, engine/errmodel.h): in
**   hidden binary layers and the classifier (not the first layer),
**   z' = z - 2*B1 + 2*B2 per row and neuron before pooling, B1 ~ Bin(P,
**   xnor_p10), B2 ~ Bin(N - P, xnor_p01), P = (z + N) / 2, N the row's
**   product count (errmodel_product_errors); stream (seed, step, row, layer).
**
**   Activation flips (recipe act_p01/act_p10): sign outputs of hidden layers
**   after the first flip with act_p10 (+1) or act_p01 (-1), streams (seed,
**   step, layer) in fixed chunks of 4096 values.
*/
#ifndef BNAS_PERTURB_H
#define BNAS_PERTURB_H

#include <stdint.h>

#include "engine/net.h"
#include "engine/train.h"

/* Where a hook is called: layer l of one mini-batch. */
typedef struct {
    int l;              /* layer index */
    const net_layer *L; /* the layer: shape, latent weights, batch norm, running statistics */
    int B;              /* images in the mini-batch */
    int rows;           /* rows of z: B * in_h * in_w (conv) or B (dense) */
    uint64_t step;      /* training step, 1-based (the Adam step) */
    const float *in;    /* (rows, fan_in) the layer's input rows (the im2col of a conv; 0 in the padding),
                           NULL at the weights stage and for a fused first-layer conv + pool */
    const float *wb;    /* (out_c, fan_in) this step's binarized weights; NULL at the weights stage */
} perturb_site;

typedef struct perturb perturb;

/* One perturbation; NULL hooks are skipped. */
struct perturb {
    /* (a) After binarizing layer l: may change wb (out_c, fan_in) and must set
       flipped[i] to 1 where it negated wb[i], 0 elsewhere. */
    void (*weights)(const perturb *h, const perturb_site *s, float *wb, uint8_t *flipped);
    /* Backward of (a) on the weight gradient dw (out_c, fan_in); NULL: the
       gradient ignores the change (straight-through). */
    void (*weights_backward)(const perturb *h, const perturb_site *s, float *dw, const uint8_t *flipped);
    /* (b) Accumulators z (rows, out_c) of layer l before pooling (exact
       integers for binary layers, raw pixel units for the first layer). Not
       called for a first-layer conv + pool that is computed fused (its z is
       never formed). */
    void (*acc)(const perturb *h, const perturb_site *s, float *z);
    /* (c) Sign outputs a (rows_out, out_c) of hidden layer l (+-1), the next
       layer's input. Returns BN_OK or an error code with a message. */
    int (*act)(const perturb *h, const perturb_site *s, float *a);
    const void *user; /* the hook's parameters (not owned) */
};

#define PERTURB_MAX 8 /* perturbations of one training run */

typedef struct perturb_set {
    int n;                  /* perturbations in use */
    perturb h[PERTURB_MAX]; /* in call order */
} perturb_set;

/* Appends h to ps. BN_EARG if ps is full. */
int perturb_add(perturb_set *ps, const perturb *h);

/* Appends r's weight flips if r->flip != FLIP_NONE. BN_EARG (naming the
   recipe key) for rates outside [0, 1] or a flip-rate table that does not
   increase, whether flips are on or not; else BN_OK. */
int perturb_add_weight_flips(perturb_set *ps, const train_recipe *r);

/* Appends r's XNOR product errors if a rate is > 0. BN_EARG for rates
   outside [0, 1]. */
int perturb_add_xnor_errors(perturb_set *ps, const train_recipe *r);

/* Appends r's activation flips if a rate is > 0. BN_EARG for rates outside
   [0, 1]. */
int perturb_add_act_flips(perturb_set *ps, const train_recipe *r);

/* The flip rates of training step `step` (1-based, the Adam step): r->p01 and
   r->p10 if r->flip_rows == 0; else a point T uniform in [flip_t[0],
   flip_t[flip_rows - 1]] drawn from the keyed stream (seed, step, RNG_FLIP)
   (one draw per mini-batch, shared by all layers; independent of the thread
   count), and the table's rates at T, interpolated linearly in log p between
   the two neighbouring rows (linearly in p where either is 0), as the fefet
   evaluator interpolates its temperature table. *t (may be NULL) receives T
   (0 with fixed rates). */
void perturb_flip_rates(const train_recipe *r, uint64_t step, float *p01, float *p10, float *t);

#endif /* BNAS_PERTURB_H */
