/*
** Training a binarized network: mini-batch Adam on the latent weights with
** straight-through estimators, step learning-rate decay, cross-entropy or the
** modified hinge loss (MHL), the direct margin regularizer, Bop.
**
** A run is fully determined by (net initialisation, data, recipe,
** perturbations): the data order comes from the keyed stream (seed, epoch,
** RNG_SHUFFLE) and every perturbation draws from streams keyed by (seed,
** step, ...), so the result does not depend on the thread count.
**
** Perturbations. The training loop knows no device: flip training, XNOR
** product errors, activation flips and LTA-aware training are hooks
** (engine/perturb.h) the caller passes in. The recipe keeps their keys (flip,
** p01/p10, the flip-rate table, xnor_p01/p10, lta_n, act_p01/p10) as data,
** stored in model files; eval_perturbs (evaluators/evaluator.h) turns them
** into the hooks.
*/
#ifndef BNAS_TRAIN_H
#define BNAS_TRAIN_H

#include <stdint.h>

#include "engine/data.h"
#include "engine/net.h"

typedef enum { LOSS_CE = 0, LOSS_MHL = 1 } train_loss;
typedef enum { FLIP_NONE = 0, FLIP_STE = 1, FLIP_NAIVE = 2 } train_flip;
typedef enum { OPT_ADAM = 0, OPT_BOP = 1 } train_optimizer;
typedef enum { BN0_FLIPPED = 0, BN0_CLEAN = 1 } train_bn0;

#define TRAIN_FLIP_ROWS 16 /* rows of a flip-rate table (recipe flip_rows) */

typedef struct {
    int epochs;          /* passes over the training set */
    int batch;           /* mini-batch size */
    float lr;            /* Adam learning rate */
    int lr_step;         /* multiply lr by lr_gamma every lr_step epochs (0: never) */
    float lr_gamma;      /* step decay factor */
    int clip;            /* 1: clip latent weights to [-1, 1] after each step */
    train_loss loss;     /* LOSS_CE or LOSS_MHL */
    float mhl_b;         /* MHL margin b (default 128) */
    train_flip flip;     /* flip training variant */
    float p01, p10;      /* flip probabilities of stored 0 (-1) and stored 1 (+1) (unused if flip_rows > 0) */
    int flip_rows;       /* > 0: flip training over a range (e.g. of temperatures): every mini-batch
                            draws its own rates from this table, see perturb_flip_rates; 0: fixed p01/p10 */
    float flip_t[TRAIN_FLIP_ROWS];   /* (flip_rows) the table's abscissa, strictly increasing (e.g. deg C) */
    float flip_p01[TRAIN_FLIP_ROWS]; /* (flip_rows) p01 at flip_t, in [0, 1]; rows >= flip_rows are 0 */
    float flip_p10[TRAIN_FLIP_ROWS]; /* (flip_rows) p10 at flip_t, in [0, 1] */
    float reg_lambda;    /* direct margin regularizer weight lambda (0: off) */
    float reg_h;         /* margin level h of the regularizer, in weight flips */
    uint64_t seed;       /* keys every random stream of the run */
    train_optimizer optimizer; /* OPT_ADAM: Adam on everything; OPT_BOP: Bop on the
                                  binary weights, Adam (lr) on batch norm and scale */
    float bop_gamma;     /* Bop momentum rate gamma in (0, 1] */
    float bop_tau;       /* Bop flip threshold tau >= 0 */
    float bop_gamma_decay; /* gamma is multiplied by this every lr_step epochs (1: constant) */
    int mom_e, mom_f;    /* Bop momentum format F(e, f, bias) (engine/fpfmt.h); default binary32 */
    int mom_bias;        /* its exponent bias */
    int mom_subnormals;  /* 1: with subnormals */
    float xnor_p01;      /* XNOR product errors while training (hidden binary layers and the
                            classifier, not the first layer): P(-1 product reads +1) */
    float xnor_p10;      /* P(+1 product reads -1); straight-through gradient (engine/errmodel.h) */
    int lta_n;           /* > 0: LTA-aware training, hidden layers after the first decide by local
                            thresholding on columns of lta_n products (evaluators/lta.h), straight-through */
    float act_p01, act_p10; /* activation flips while training (hidden layers after the first):
                               P(-1 output reads +1), P(+1 reads -1); straight-through */
    train_bn0 flip_bn0;  /* flip training: the first layer's batch-norm statistics come from its
                            flipped products (BN0_FLIPPED, the default) or from the products of the
                            unflipped weights (BN0_CLEAN), so the loss sees the shift the flips cause */
} train_recipe;

/* The seed papers' defaults: batch 256, Adam lr 1e-3, step decay 0.5 every 10
   epochs, cross-entropy, no clipping, no flips, MHL b = 128. Optimizer Adam;
   the Bop fields default to gamma 1e-3, tau 1e-6 (Helwegen et al. section
   5.1), decay 1, binary32 momentum. Built from engine/recipe.c's key table
   (defined there). */
train_recipe train_recipe_default(void);

/* Phases of a training step, timed by train_run (train_progress.phase). */
typedef enum {
    TRAIN_PHASE_BATCH = 0, /* gather the shuffled images and labels into the batch */
    TRAIN_PHASE_FORWARD,   /* binarize, forward pass, perturbations */
    TRAIN_PHASE_LOSS,      /* loss, its gradient, margin regularizer, accuracy count */
    TRAIN_PHASE_BACKWARD,  /* backward pass */
    TRAIN_PHASE_OPTIMIZER, /* Adam / Bop step, clipping, zeroing the gradients */
    TRAIN_PHASES
} train_phase;

/* Progress of one epoch, passed to the callback. */
typedef struct {
    int epoch;            /* 1-based */
    int epochs;           /* total */
    double loss;          /* mean training loss of the epoch */
    double train_acc;     /* accuracy on the training batches while training (float path, batch stats) */
    double val_acc;       /* accuracy on val with running statistics (-1 if no val set) */
    double images_per_s;  /* training throughput of the epoch */
    double seconds;       /* wall time of the epoch */
    double lost_updates;  /* Bop: mean over the epoch's steps of the fraction of momentum
                             values whose update the format lost (engine/bop.h); -1 with Adam */
    double phase[TRAIN_PHASES]; /* wall seconds of the epoch in each phase (their sum is
                                   `seconds` minus the validation pass) */
} train_progress;

/* Called after every epoch; return nonzero to stop training early (the net
   keeps the state of the last finished epoch). */
typedef int (*train_callback)(const train_progress *p, void *user);

struct perturb_set; /* engine/perturb.h */

/* Trains n in place under recipe r with the perturbations ps (NULL: none;
   the recipe's perturbation keys are read only through ps). val may be NULL.
   Returns BN_OK, BN_EDIVERGED if the loss becomes NaN or infinite (message
   names epoch and step), BN_EARG for a bad recipe, BN_EINTR if the callback
   asked to stop, or a hook's error. */
int train_run(net *n, const dataset *train, const dataset *val, const train_recipe *r,
              const struct perturb_set *ps, train_callback cb, void *user);

/* Gradient trace: the gradients of n chosen parameters at every step, for
   offline studies (the Bop momentum-encoding search replays them). */
typedef struct {
    int n;               /* traced parameters */
    const int64_t *idx;  /* (n) their indices into net.params */
    int max_steps;       /* capacity in steps */
    float *g;            /* (max_steps, n) the gradients, filled by train_run_traced */
    int steps;           /* steps recorded (at most max_steps; later steps are not kept) */
} train_trace;

/* train_run that also records trace (may be NULL) after every backward. */
int train_run_traced(net *n, const dataset *train, const dataset *val, const train_recipe *r,
                     const struct perturb_set *ps, train_callback cb, void *user, train_trace *trace);

/* The direct margin regularizer (seed 002, section IV-A; a reconstruction,
   see papers.md section 2): for every hidden neuron j and batch input x (and
   every position of a feature map), m_j(x) = train_neuron_margin(...) is the
   neuron's margin in weight flips: the distance of the accumulator a_j(x)
   from the batch-norm threshold tau_j (batch statistics) over the flip step
   of engine/margin.h (2 for hidden layers, 2*255 raw pixel units = 2 units
   of p/255 for the first layer, the metric's convention);
   R = lambda * mean_{j,x} max(0, h - m_j(x)) is added to the loss. Its
   gradient flows through a (and so into the weights and the batch-norm
   shift); the factor 1/(|gamma| * invstd) that converts the pre-sign value y
   into accumulator units is held constant. */

/* The regularizer's margin in weight flips of hidden neuron c of layer L
   whose pre-sign value (after batch norm, before sign) is y, with batch-norm
   inverse standard deviation invstd (batch statistics while training, the
   running ones, net_bn_invstd, for a trained net):
   margin_flips(L->first, |y| / (|gamma_c| * invstd) / in_scale), in_scale =
   1/255 for the first layer and 1 otherwise. Linear in |y|. */
double train_neuron_margin(const net_layer *L, int c, float y, float invstd);

/* Accuracy of the float evaluation path on d (fraction in [0, 1]). */
double train_accuracy(const net *n, const dataset *d);

/* Host memory train_run needs for n under r, in bytes: the parameters and
   statistics, every training buffer (batch r->batch; Bop's momentum if r uses
   Bop) and one validation pass. An upper estimate of the peak, up to a few
   small allocations (the shuffle order, OpenBLAS's own pool); n may be a plan
   (net_plan), so a network can be refused before anything is allocated. */
size_t train_memory_bytes(const net *n, const train_recipe *r);

#endif /* BNAS_TRAIN_H */
