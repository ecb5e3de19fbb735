/*
** Search spec files: one YAML file declares a whole study (data, search space,
** strategy, budget, objectives, hard constraints, evaluators, seed, threads).
**
** spec_parse() turns the text into a spec struct and checks every key. Every
** mistake is reported as "FILE:LINE:COL: key.path: message" (line and column
** 1-based, from libfyaml's marks); all mistakes found are listed in one
** BN_ESPEC message, and nothing is half-filled on error.
**
** The search space is either inline (a mapping under `search_space:`) or a name
** (`search_space: fc`) that refers to search_spaces/NAME.yaml. The text of both
** files is kept in the spec (text, space_text) so that a study database can
** store a frozen copy and resume from it without the original files.
*/
#ifndef BNAS_SPEC_H
#define BNAS_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "engine/fpfmt.h"
#include "evaluators/evaluator.h"

#define SPEC_MAX_DIMS 16      /* dimensions of a search space */
#define SPEC_MAX_CHOICES 32   /* values of one choice dimension */
#define SPEC_MAX_OBJ 3        /* objectives (hypervolume is exact for 2 and 3) */
#define SPEC_MAX_EVAL 8       /* evaluators */
#define SPEC_MAX_PARAMS 16    /* parameters of one evaluator */
#define SPEC_MAX_ITEMS 8      /* maximum conv blocks and maximum fc layers */

/* How a dimension's value is chosen. */
typedef enum {
    DIM_FIXED = 0,  /* a constant (the key holds a plain scalar) */
    DIM_CHOICE = 1, /* one of a list of values: {type: choice, values: [...]} */
    DIM_INT = 2,    /* integer in [low, high]: {type: int, low, high} */
    DIM_FLOAT = 3,  /* real in [low, high], uniform: {type: float, low, high} */
    DIM_LOG = 4,    /* real in [low, high], log-uniform: {type: log, low, high} */
} spec_dim_type;

/* The knobs a search space may set; a space names each at most once. */
typedef enum {
    KNOB_CONV_BLOCKS = 0, /* number of conv blocks (0..SPEC_MAX_ITEMS) */
    KNOB_CONV_CHANNELS,   /* output channels, one gene per conv block */
    KNOB_CONV_POOL,       /* 1: a 2x2 max-pool follows the block, one gene per block */
    KNOB_FC_LAYERS,       /* number of hidden dense layers (0..SPEC_MAX_ITEMS) */
    KNOB_FC_WIDTH,        /* units, one gene per dense layer */
    KNOB_LOSS,            /* "ce" or "mhl" */
    KNOB_MHL_B,           /* MHL margin b */
    KNOB_FLIP_RATE,       /* flip-training bit flip probability (0: no flip training) */
    KNOB_EPOCHS,          /* training epochs */
    KNOB_LR,              /* Adam learning rate */
    KNOB_BATCH,           /* mini-batch size */
    KNOB_OPTIMIZER,       /* "adam" (0) or "bop" (1): the optimizer of the binary weights */
    KNOB_BOP_GAMMA,       /* Bop momentum rate gamma in (0, 1] (Bop only) */
    KNOB_BOP_TAU,         /* Bop flip threshold tau >= 0 (Bop only) */
    KNOB_MOMENTUM_FORMAT, /* Bop momentum format, a name fpfmt_parse accepts (Bop only);
                             held as spec_format_code */
    KNOB_COUNT
} spec_knob;

/* One dimension of the search space. */
typedef struct {
    spec_knob knob;                       /* which knob the dimension sets (KNOB_COUNT: a recipe key) */
    int recipe;                           /* > 0: the recipe key recipe_keys[recipe - 1] it sets
                                             (engine/recipe.h; a word's value is its code) */
    spec_dim_type type;                   /* how its value is chosen */
    int n;                                /* number of values (DIM_CHOICE), 1 for DIM_FIXED */
    double num[SPEC_MAX_CHOICES];         /* numeric value of each choice (loss: 0 ce, 1 mhl;
                                             optimizer: 0 adam, 1 bop; momentum_format:
                                             spec_format_code of the format) */
    double low, high;                     /* bounds, inclusive (DIM_INT, DIM_FLOAT, DIM_LOG) */
    int line, col;                        /* where it was declared (1-based) */
    int in_space_file;                    /* 1: declared in the named search space file */
} spec_dim;

/* An objective: an evaluator metric and a direction. */
typedef struct {
    char metric[48];  /* "val_acc", "model_bytes", "ber.acc_1e-02", ... */
    int maximize;     /* 1: larger is better, 0: smaller is better */
    double ref;       /* hypervolume reference point coordinate (a worst value) */
} spec_objective;

/* One evaluator parameter as written: a scalar's text, or a list of scalars
   as "[a, b, c]" (the form evaluators/evaluator.h parses). */
typedef struct {
    char key[64];      /* parameter name */
    char value[256];   /* its value text */
} spec_param;

/* An evaluator to run after training, with its parameters. */
typedef struct {
    char name[32];                        /* registry name (evaluators/registry.c) */
    int n_params;                         /* used entries of params */
    spec_param params[SPEC_MAX_PARAMS];   /* parameters as written */
} spec_evaluator;

typedef enum { STRAT_RANDOM = 0, STRAT_EVOLUTION = 1, STRAT_NSGA2 = 2 } spec_strategy_kind;

typedef struct {
    /* study */
    char name[64];            /* study name (default: spec file name without .yaml) */
    char path[512];           /* spec file path as given (for messages) */
    char *text;               /* the spec file's text (owned) */
    char space_path[512];     /* search space file path, "" if inline */
    char *space_text;         /* its text (owned), NULL if inline */
    uint64_t hash;            /* FNV-1a 64 of text and space_text: the frozen spec's identity */
    uint64_t seed;            /* study seed: keys every random stream */
    int threads;              /* trials run in parallel (>= 1) */
    int determinism_fast;     /* determinism: 0 portable (default, the same database on every
                                 x86-64 host), 1 fast (OpenBLAS: same host, CPU kernel and thread
                                 count only) */

    /* data */
    char data[32];            /* "fashion_mnist", "cifar10" or "synthetic" */
    char data_dir[512];       /* directory of the data files ("" = default) */
    int n_train;              /* training images used (0 = all that remain after val) */
    int n_val;                /* validation images split off the training set */
    int n_test;               /* test images used (0 = all) */
    uint64_t split_seed;      /* keys the train/validation split (default: seed) */
    int in_h, in_w, in_c;     /* image shape of the data set */
    int classes;              /* classes of the data set */

    /* search space */
    int n_dims;                       /* used entries of dims */
    spec_dim dims[SPEC_MAX_DIMS];     /* in declaration order */
    int knob_dim[KNOB_COUNT];         /* index into dims per knob, -1 = default value */

    /* strategy */
    spec_strategy_kind strategy;  /* random, evolution (aging) or nsga2 */
    int batch;                    /* proposals per batch; a batch sees only earlier batches */
    int population;               /* evolution: population (aging window); nsga2: parents */
    int sample;                   /* evolution: tournament size */
    double mutation_prob;         /* per-gene mutation probability */
    double crossover_prob;        /* nsga2: probability of uniform crossover */

    /* budget */
    int max_trials;           /* trials to train (COMPLETE or FAIL) */
    double wall_time;         /* seconds, 0 = unlimited (stops proposing new batches) */
    double trial_time;        /* seconds one trial may run in a worker process, 0 = unlimited;
                                 past it the worker is killed and the trial is FAIL */

    /* objectives and constraints */
    int n_obj;                            /* 1..SPEC_MAX_OBJ */
    spec_objective obj[SPEC_MAX_OBJ];     /* in order */
    double max_model_bytes;               /* hard limit, 0 = none */
    double max_macs;                      /* hard limit, 0 = none */
    double max_host_memory;               /* bytes one trial's training may hold (train_memory_bytes);
                                             default SPEC_HOST_MEMORY_DEFAULT */

    /* evaluators */
    int n_eval;                           /* used entries of eval */
    spec_evaluator eval[SPEC_MAX_EVAL];   /* in order */
} spec;

#define SPEC_HOST_MEMORY_DEFAULT 8589934592.0 /* 8 GiB: two parallel trials fit a 24 GiB machine */

/* Parses the spec text (path is used for messages and to find a named search
   space: first DIR/../search_spaces/NAME.yaml, DIR being the spec's folder,
   then DIR/search_spaces/NAME.yaml, then $BNAS_SEARCH_SPACES/NAME.yaml, then
   BNAS_SOURCE_DIR/search_spaces/NAME.yaml). If space_text is not NULL it is used
   as the named space's text instead of reading a file (resume from a frozen
   copy; space_path then names it in messages). Returns BN_OK, BN_ESPEC with
   every mistake in the message, or BN_EIO. On error s holds nothing to free. */
int spec_parse(spec *s, const char *path, const char *text, const char *space_path,
               const char *space_text);

/* Reads the file at path and parses it. */
int spec_load(spec *s, const char *path);

void spec_free(spec *s);

/* The parameters of ev in the evaluator interface's form. */
void spec_eval_params(const spec_evaluator *ev, eval_params *out);

/* Name of a knob as written in spec files ("conv_blocks", ...). */
const char *spec_knob_name(spec_knob k);

/* Name of dimension d of s as written in spec files ("fc_width", "lr", a
   recipe key). */
const char *spec_dim_name(const spec *s, int d);

/* Reads text, a YAML scalar or a list of scalars ("512", "[256, 128]",
   "mhl"), as values of dimension d of s, each checked as the spec file checks
   a value of that key (words become their codes, as in spec_dim.num). Fills
   v (room for SPEC_MAX_CHOICES) and returns the number of values, or -1 with a
   BN_ESPEC error "LABEL:LINE:COL: KEY: message" (label names the text in the
   message, e.g. the command-line argument). */
int spec_dim_values(const spec *s, int d, const char *label, const char *text, double *v);

/* A momentum format as one exact number for spec_dim.num:
   ((e * 32 + f) * 4096 + bias + 2048) * 2 + subnormals. */
double spec_format_code(const fpfmt *F);

/* The format of a code made by spec_format_code. */
fpfmt spec_format_of_code(double code);

/* FNV-1a 64-bit hash of n bytes, continuing from h (start with SPEC_FNV_INIT). */
#define SPEC_FNV_INIT 0xcbf29ce484222325ULL
uint64_t spec_fnv64(uint64_t h, const void *p, size_t n);

#endif /* BNAS_SPEC_H */
