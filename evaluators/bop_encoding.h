/*
** The momentum-encoding search for Bop (Yayla and Chen, DAC 2022; the
** algorithm is our reconstruction, see papers.md section 7): find the
** smallest floating-point formats F(e, f, bias) for the Bop momentum whose
** lost-update fraction and accuracy stay within a budget of FP32's.
**
**   1. Train the net with Bop and FP32 momentum (the reference), recording
**      the gradient trace of a random sample of binary weights (keyed by the
**      recipe's seed), its validation accuracy and its time.
**   2. Screen: replay the trace through the Bop momentum recursion in every
**      candidate format, narrowest first, and measure the lost-update
**      fraction (engine/bop.h). Candidates: 1 + e + f bits from min_bits to
**      max_bits, e in 2..8; the bias is either IEEE's or fitted to the
**      reference momentum (the largest |m| of the replay gets one binade of
**      headroom, everything below is range); with and, optionally, without
**      subnormals. A candidate passes if its fraction is at most the FP32
**      replay's plus lost_budget.
**   3. Confirm: train with each passing candidate in turn (width first, then
**      the lower replay fraction) until one reaches the FP32 accuracy minus
**      acc_budget; at most max_confirm trainings.
**
** The result carries the training-memory model (engine/bop.h) for FP32 and
** the accepted format, and the time of each training (the cost of emulation).
*/
#ifndef BNAS_BOP_ENCODING_H
#define BNAS_BOP_ENCODING_H

#include "engine/bop.h"
#include "engine/data.h"
#include "engine/train.h"

#define BOPENC_MAX_CONFIRM 16

typedef struct {
    arch topology;        /* hidden layers of the net to train */
    train_recipe recipe;  /* Bop recipe of every training (its momentum format is replaced) */
    double lost_budget;   /* screening: replay fraction <= FP32's + lost_budget */
    double acc_budget;    /* acceptance: val accuracy >= FP32's - acc_budget (0.01 = 1 point) */
    int min_bits, max_bits; /* candidate widths 1 + e + f */
    int max_confirm;      /* candidate trainings at most (<= BOPENC_MAX_CONFIRM) */
    int trace_weights;    /* binary weights sampled into the trace */
    int try_no_subnormals;/* 1: also screen formats without subnormals */
    int mem_batch;        /* batch size of the memory model */
    void (*log)(void *user, const char *line); /* progress lines (may be NULL) */
    void *user;           /* passed to log */
} bopenc_config;

/* Defaults: lost budget 0.01, accuracy budget 0.01, widths 6..16, 3
   confirmations, 4096 traced weights, subnormals only, memory batch = recipe
   batch. The recipe is train_recipe_default() with optimizer Bop. */
bopenc_config bopenc_config_default(void);

typedef struct {
    fpfmt fmt;         /* the format */
    double sim_lost;   /* lost-update fraction replaying the FP32 trace */
    double lost;       /* lost-update fraction of its own training (mean of epochs; -1: not trained) */
    double acc;        /* validation accuracy of its own training (-1: not trained) */
    double seconds;    /* time of its training */
    int accepted;      /* 1 if within the accuracy budget */
} bopenc_candidate;

typedef struct {
    double acc_fp32;       /* validation accuracy with FP32 momentum */
    double lost_fp32;      /* lost-update fraction of the FP32 training */
    double sim_lost_fp32;  /* the same from the replay of the trace sample */
    double seconds_fp32;   /* time of the FP32 training */
    double max_m;          /* largest |m| in the FP32 replay */
    int screened;          /* formats replayed */
    int found;             /* 1 if a format was accepted */
    bopenc_candidate best; /* the accepted format (found only) */
    int n_tried;           /* candidate trainings */
    bopenc_candidate tried[BOPENC_MAX_CONFIRM]; /* in order */
    bop_memory mem_fp32;   /* memory model with FP32 momentum */
    bop_memory mem_best;   /* with the accepted format (found only) */
} bopenc_result;

/* Runs the search on train (training) and val (accuracy). Returns BN_OK (also
   when nothing was accepted: res->found = 0), BN_EARG for a bad config, or a
   training error. */
int bopenc_search(const bopenc_config *c, const dataset *train, const dataset *val, bopenc_result *res);

/* One training of the search: a fresh net of c->topology initialised from
   c->recipe.seed, trained with Bop and momentum format F on train; *acc is
   the accuracy on val, *lost the mean lost-update fraction of the epochs,
   *secs the training time. */
int bopenc_train(const bopenc_config *c, const fpfmt *F, const dataset *train, const dataset *val, double *acc,
                 double *lost, double *secs);

/* Lost-update fraction of replaying the gradient trace g (steps, n) through
   Bop's momentum recursion in format F, with the rate gammas[t] at step t;
   *max_m (may be NULL) gets the largest |m|. */
double bopenc_replay(const fpfmt *F, const float *g, int steps, int n, const float *gammas, double *max_m);

#endif /* BNAS_BOP_ENCODING_H */
