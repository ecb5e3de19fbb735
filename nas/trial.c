/*
** The real trial function: decode -> net_create -> train_run on the study's
** split -> metrics (val_acc, test_acc, model_bytes, macs, train_loss,
** train_memory: the edge training-memory model of engine/bop.h for the trial's
** optimizer, momentum format and batch; plus every metric of the spec's
** evaluators) -> packed model blob (engine/model.h).
**
** The data sets are loaded and split once per process (trial_env_create) and
** shared read-only by all trials. Each trial runs on its calling thread only
** (OpenMP and OpenBLAS set to one thread there), so trials parallelise across
** threads and a trial's result does not depend on how many run at once.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/arch.h"
#include "engine/bop.h"
#include "engine/data.h"
#include "engine/err.h"
#include "engine/layers.h"
#include "engine/model.h"
#include "engine/net.h"
#include "engine/parallel.h"
#include "engine/rng.h"
#include "engine/train.h"
#include "evaluators/evaluator.h"
#include "nas/trial.h"

/* The data every trial of a study trains and evaluates on. */
typedef struct {
    dataset full;        /* the whole training file (owned) */
    dataset test_full;   /* the whole test file (owned) */
    dataset train_split; /* full minus validation (owned) */
    dataset val;         /* validation split (owned) */
    dataset train;       /* view: first n_train images of train_split */
    dataset test;        /* view: first n_test images of test_full */
    volatile sig_atomic_t *stop; /* nonzero: stop training after the current epoch */
} trial_data;

/* Progress callback state: the last epoch's loss and the stop flag. */
typedef struct {
    double loss;                   /* mean training loss of the last epoch */
    volatile sig_atomic_t *stop;   /* may be NULL */
} epoch_watch;

static int on_epoch(const train_progress *p, void *user) {
    epoch_watch *w = user;
    w->loss = p->loss;
    return w->stop && *w->stop;
}

static int trial_real(void *user, const spec *s, const space_config *cfg, int number, uint64_t seed,
                      trial_result *out) {
    const trial_data *d = user;
    (void)number;
    par_set_threads(1);
    net n;
    memset(&n, 0, sizeof n);
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    arch a;
    int rc = arch_parse(&a, cfg->topology);
    if (rc) goto done;
    if ((rc = net_create(&n, &a, d->train.c, d->train.h, d->train.w, d->train.classes))) goto done;
    pcg32 g;
    rng_keyed(&g, seed, 0, RNG_INIT);
    net_init_params(&n, &g);
    train_recipe r = cfg->recipe; /* built once, by space_decode */
    r.seed = seed;
    epoch_watch w = {NAN, d->stop};
    perturb_set ps;
    if ((rc = eval_perturbs(&r, &ps)) || (rc = train_run(&n, &d->train, NULL, &r, &ps, on_epoch, &w))) goto done;
    bop_memory tm = r.optimizer == OPT_BOP ? bop_memory_model(&n, &cfg->momentum, r.batch)
                                           : bop_memory_model_adam(&n, r.batch);
    if ((rc = trial_result_set(out, "val_acc", train_accuracy(&n, &d->val))) ||
        (rc = trial_result_set(out, "test_acc", train_accuracy(&n, &d->test))) ||
        (rc = trial_result_set(out, "model_bytes", (double)net_packed_bytes(&n))) ||
        (rc = trial_result_set(out, "macs", net_macs(&n))) ||
        (rc = trial_result_set(out, "train_loss", w.loss)) ||
        (rc = trial_result_set(out, "train_memory", tm.total)))
        goto done;
    for (int e = 0; e < s->n_eval; e++) {
        eval_params ep;
        spec_eval_params(&s->eval[e], &ep);
        eval_context ctx = {&n, &d->train, &d->val, &d->test, seed};
        eval_metrics em;
        memset(&em, 0, sizeof em);
        rc = eval_run(s->eval[e].name, &ctx, &ep, &em);
        for (int i = 0; i < em.n && !rc; i++) rc = trial_result_set(out, em.m[i].name, em.m[i].value);
        if (rc) { /* any evaluator error fails the trial, naming the evaluator */
            char msg[200];
            snprintf(msg, sizeof msg, "%s", bn_errmsg());
            rc = bn_error(rc, "evaluator %s: %s", s->eval[e].name, msg);
            goto done;
        }
    }
    if ((rc = model_save_mem(&n, &r, &blob, &blob_len))) goto done;
    out->model = blob;
    out->model_size = blob_len;
    blob = NULL;
    snprintf(out->model_format, sizeof out->model_format, "%s", "BNASMDL1");
done:
    if (rc) snprintf(out->fail_reason, sizeof out->fail_reason, "%s", bn_errmsg());
    free(blob);
    net_free(&n);
    return rc;
}

int trial_env_create(void **env, trial_fn *fn, const spec *s) {
    *env = NULL;
    *fn = NULL;
    matmul_use_blas(s->determinism_fast); /* the study's determinism mode, in every process */
    if (!strcmp(s->data, "synthetic")) {
        *fn = trial_synthetic;
        return BN_OK;
    }
    trial_data *d = bn_calloc(1, sizeof *d);
    const char *dir = s->data_dir[0] ? s->data_dir : NULL;
    int rc = data_load_named(s->data, &d->full, &d->test_full, dir);
    if (rc) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", bn_errmsg());
        rc = bn_error(rc, "%s: data: %s", s->path, msg);
        goto fail;
    }
    static const char *const keys[3] = {"data.train", "data.val", "data.test"};
    const int asked[3] = {s->n_train, s->n_val, s->n_test};
    if ((rc = data_check_counts(s->data, d->full.n, d->test_full.n, keys, asked))) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", bn_errmsg());
        rc = bn_error(rc, "%s: %s", s->path, msg);
        goto fail;
    }
    if (s->n_val < 1) {
        rc = bn_error(BN_EARG, "%s: data.val %d must be in 1..%d", s->path, s->n_val, d->full.n - 1);
        goto fail;
    }
    if ((rc = data_split(&d->train_split, &d->val, &d->full, s->n_val, s->split_seed))) goto fail;
    int nt = s->n_train > 0 ? s->n_train : d->train_split.n; /* counts checked above */
    int ns = s->n_test > 0 ? s->n_test : d->test_full.n;
    d->train = data_slice(&d->train_split, 0, nt);
    d->test = data_slice(&d->test_full, 0, ns);
    *env = d;
    *fn = trial_real;
    return BN_OK;
fail:
    trial_env_free(d);
    return rc;
}

void trial_env_free(void *env) {
    trial_data *d = env;
    if (!d) return;
    data_free(&d->full);
    data_free(&d->test_full);
    data_free(&d->train_split);
    data_free(&d->val);
    free(d);
}

void trial_env_set_stop(void *env, volatile sig_atomic_t *stop) {
    if (env) ((trial_data *)env)->stop = stop;
}
