/*
** Evaluator plugins: each measures a trained network and returns named metrics.
**
** An evaluator is one file in evaluators/ that defines one `evaluator` value,
** plus one line in the registry (evaluators/registry.c). The search runs the
** evaluators a spec lists after training each trial; any metric they return
** can be an objective or a constraint. Evaluators know nothing of the
** database or the spec format: they get the network, the data splits, a seed
** and their parameters as (key, value) strings, and fill an eval_metrics.
**
** Metric names are "<evaluator>.<metric>", e.g. "accuracy.val",
** "memory.bytes", "margin.mean", "fault.acc".
*/
#ifndef BNAS_EVALUATOR_H
#define BNAS_EVALUATOR_H

#include <stdint.h>

#include "engine/data.h"
#include "engine/net.h"
#include "engine/perturb.h"
#include "engine/train.h"

#define EVAL_MAX_PARAMS 32   /* parameters of one evaluator in a spec */
#define EVAL_MAX_METRICS 128 /* metrics of one trial, all evaluators and built-ins together */
#define EVAL_NAME_MAX 64     /* longest metric or parameter name, NUL included */
#define EVAL_VALUE_MAX 256   /* longest parameter value, NUL included */

typedef struct {
    char key[EVAL_NAME_MAX];     /* parameter name, e.g. "ber" */
    char value[EVAL_VALUE_MAX];  /* its value as written in the spec, e.g. "0.01" or "[0, 0.01]" */
} eval_param;

typedef struct {
    int n;                           /* number of parameters */
    eval_param p[EVAL_MAX_PARAMS];   /* in spec order */
} eval_params;

typedef struct {
    char name[EVAL_NAME_MAX]; /* "<evaluator>.<metric>" */
    double value;             /* the measurement */
} eval_metric;

typedef struct {
    int n;                            /* number of metrics */
    eval_metric m[EVAL_MAX_METRICS];  /* in the order they were added */
} eval_metrics;

typedef struct {
    const net *n;          /* the trained network (float form; pack it with packed_from_net if needed) */
    const dataset *train;  /* training split: for evaluators that calibrate (histograms, BERA) */
    const dataset *val;    /* validation split: metrics used for selection */
    const dataset *test;   /* test set: reported, never used for selection */
    uint64_t seed;         /* keys every random stream of the evaluation */
} eval_context;

typedef struct {
    const char *name;               /* registry name, used in spec files */
    const char *summary;            /* one line for `bnas evaluators` */
    const char *const *params;      /* accepted parameter keys, NULL-terminated (NULL: none) */
    /* Measures ctx->n and appends metrics to out. Returns BN_OK or an error
       code with a message; it must not modify the network. */
    int (*run)(const eval_context *ctx, const eval_params *params, eval_metrics *out);
    /* Optional (NULL: nothing to check). Checks params without a network, when
       the spec is read, e.g. that a file a parameter names opens. Returns BN_OK,
       or an error code with a message (not repeating the key) and *key set to
       the parameter at fault. */
    int (*check)(const eval_params *params, const char **key);
} evaluator;

/* The evaluator registered under name, or NULL. */
const evaluator *eval_find(const char *name);

/* All registered evaluators, NULL-terminated. */
const evaluator *const *eval_all(void);

/* BN_OK if every key of p is accepted by e; else BN_EARG naming the key and
   the accepted ones. */
int eval_params_check(const evaluator *e, const eval_params *p);

/* The value of key in p, or NULL if absent. */
const char *eval_param_get(const eval_params *p, const char *key);

/* Parses key as a number into *out (def if absent). BN_EARG if not a number. */
int eval_param_double(const eval_params *p, const char *key, double def, double *out);

/* Parses key as a list of numbers "[a, b, c]" or a single number into
   out[0..max), *count elements (the def list if absent). BN_EARG if malformed. */
int eval_param_list(const eval_params *p, const char *key, const double *def, int n_def,
                    double *out, int max, int *count);

/* The data an evaluator runs on: the split named by param "split" (val, the
   default, or test), limited to its first "images" images (absent: def_images;
   0: all). BN_EARG, naming `who`, for another split name, an empty split or a
   negative count. */
int eval_split(const eval_context *ctx, const eval_params *p, const char *who, double def_images, dataset *out);

/* The folder of the device data files: $BNAS_DATA_DIR if set, else the BNAS_DATA_DIR the
   build compiled in (CMake option; default SOURCE/evaluators/data). */
const char *eval_data_dir(void);

/* The text of file path (at most 1 MiB), NUL-terminated, into *text (the caller frees it).
   BN_EIO naming the path if it cannot be read, BN_EFORMAT if it is larger. */
int eval_file_text(const char *path, char **text);

/* eval_file_text of the shipped data file eval_data_dir()/name, its path into path[n];
   a missing file's error also names BNAS_DATA_DIR. */
int eval_data_text(const char *name, char *path, size_t n, char **text);

/* Appends a metric; BN_EARG if out is full or the name is too long. */
int eval_metrics_add(eval_metrics *out, const char *name, double value);

/* Replaces the value of the metric called name, or appends it as
   eval_metrics_add does (same errors). */
int eval_metrics_set(eval_metrics *out, const char *name, double value);

/* The value of the metric called name, or NaN if absent. */
double eval_metrics_get(const eval_metrics *m, const char *name);

/* Runs one evaluator by name with its parameters. */
int eval_run(const char *name, const eval_context *ctx, const eval_params *params, eval_metrics *out);

/* The training-time perturbations (engine/perturb.h) of recipe r's keys, in
   call order: weight flips, XNOR product errors, the device studies' hooks
   (LTA-aware training), activation flips (errors on the bits the layers
   decided). Every caller of train_run gets its hooks here. ps is
   overwritten; it points into r, which must outlive the training run.
   Returns BN_OK or BN_EARG naming the bad key. */
int eval_perturbs(const train_recipe *r, perturb_set *ps);

#endif /* BNAS_EVALUATOR_H */
