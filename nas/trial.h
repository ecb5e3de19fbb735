/*
** The trial function: what the search calls to train and evaluate one
** configuration. It is a plain function pointer so that the search machinery
** can be tested with a cheap synthetic trial and run with the real one.
**
** A trial function must be deterministic in (configuration, seed), must use
** only the calling thread, and must never print or exit: a failure is a result
** code plus a reason, and the search records the trial as FAIL and goes on.
*/
#ifndef BNAS_TRIAL_H
#define BNAS_TRIAL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "evaluators/evaluator.h"
#include "nas/space.h"
#include "nas/spec.h"

/* A trial's metrics live in the evaluators' container (evaluators/evaluator.h):
   one limit on their count and name length for evaluators, trials, the worker
   messages and the store. */
#define TRIAL_MAX_METRICS EVAL_MAX_METRICS

/* What one trial produced. */
typedef struct {
    eval_metrics metrics;                   /* metric names ("val_acc", "fault.acc", ...) and values */
    void *model;                            /* packed model blob (malloc'd, may be NULL) */
    size_t model_size;                      /* bytes of model */
    char model_format[16];                  /* what the blob is ("bnas-model", "synthetic") */
    char fail_reason[256];                  /* set when the trial failed */
} trial_result;

/* Trains and evaluates configuration cfg (trial `number`, seed `seed`) of spec
   s; user is the trial function's own context. Returns BN_OK and fills out, or
   an error code with out->fail_reason set. */
typedef int (*trial_fn)(void *user, const spec *s, const space_config *cfg, int number,
                        uint64_t seed, trial_result *out);

/* Adds (or replaces) a metric. BN_EARG (with a message naming the metric)
   if the container is full or the name too long: the trial then fails. */
int trial_result_set(trial_result *r, const char *name, double value);

/* Looks a metric up; returns 1 and sets *value if present. */
int trial_result_get(const trial_result *r, const char *name, double *value);

/* Frees the model blob and clears r. */
void trial_result_free(trial_result *r);

/* A cheap deterministic stand-in for training, for tests and dry runs of a
   spec (data name "synthetic"): metrics are smooth functions of the
   configuration plus seed noise, model_bytes is the real packed size and
   train_memory the real training-memory model (as the real trainer's), and the
   blob is a few bytes derived from the configuration. Environment knobs for
   tests: BNAS_SYNTHETIC_MS (sleep per trial, milliseconds, default 0) and
   BNAS_SYNTHETIC_FAIL=N (trials whose number % N == N-1 fail) and
   BNAS_SYNTHETIC_LOG=FILE (appends each completed trial's number, one line
   per training, to FILE: tests count trainings with it). user is unused.
   Test only, for the worker-process tests: BNAS_TEST_TRIAL_FAULT=KIND:N[,...]
   makes trial N misbehave: crash (SIGSEGV), abort (SIGABRT), alloc (allocates
   64 MiB blocks until the memory limit aborts it) or hang (sleeps forever).
   Never set it for a real study: in-process it takes the whole bnas down. */
int trial_synthetic(void *user, const spec *s, const space_config *cfg, int number, uint64_t seed,
                    trial_result *out);

/* Chooses the trial function for s: trial_synthetic for data "synthetic",
   else the trainer of nas/trial.c, whose context (the loaded and split data
   sets, shared read-only by all threads) is made here. Free with
   trial_env_free. Returns BN_OK or the data loading error. */
int trial_env_create(void **env, trial_fn *fn, const spec *s);
void trial_env_free(void *env);

/* Lets the trainer of env stop early when *stop becomes nonzero (checked after
   every epoch); the trial then returns BN_EINTR and the search leaves it
   pending, to be rerun from the start by resume. env may be NULL (synthetic). */
void trial_env_set_stop(void *env, volatile sig_atomic_t *stop);

#endif /* BNAS_TRIAL_H */
