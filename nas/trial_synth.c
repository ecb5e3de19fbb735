/* Trial results, and the synthetic trial function used by tests and dry runs. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "engine/arch.h"
#include "engine/bop.h"
#include "engine/dmath.h"
#include "engine/err.h"
#include "engine/net.h"
#include "engine/rng.h"
#include "nas/trial.h"

int trial_result_set(trial_result *r, const char *name, double value) {
    return eval_metrics_set(&r->metrics, name, value);
}

int trial_result_get(const trial_result *r, const char *name, double *value) {
    for (int i = 0; i < r->metrics.n; i++)
        if (!strcmp(r->metrics.m[i].name, name)) {
            *value = r->metrics.m[i].value;
            return 1;
        }
    return 0;
}

void trial_result_free(trial_result *r) {
    free(r->model);
    memset(r, 0, sizeof *r);
}

/* BNAS_TEST_TRIAL_FAULT (tests only, see nas/trial.h): the fault named for
   trial `number`, or NULL. The value is a comma-separated list of KIND:NUMBER. */
static const char *test_fault(int number) {
    static const char *const kinds[] = {"crash", "abort", "alloc", "hang"};
    const char *v = getenv("BNAS_TEST_TRIAL_FAULT");
    while (v && *v) {
        for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
            size_t n = strlen(kinds[k]);
            if (!strncmp(v, kinds[k], n) && v[n] == ':' && atoi(v + n + 1) == number) return kinds[k];
        }
        v = strchr(v, ',');
        if (v) v++;
    }
    return NULL;
}

/* Misbehaves as fault says: the process dies, or never returns (hang), or
   returns an error if the memory limit it expected was not there. */
static int do_fault(const char *fault, int number, trial_result *out) {
    if (!strcmp(fault, "crash")) {
        /* A store to a page with no access: a real SIGSEGV (not a null
           pointer, which the compiler or UBSan would turn into something else). */
        volatile int *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if ((void *)p != MAP_FAILED) *p = number;
    } else if (!strcmp(fault, "abort")) {
        abort();
    } else if (!strcmp(fault, "hang")) {
        for (;;) {
            struct timespec ts = {1, 0};
            nanosleep(&ts, NULL);
        }
    } else if (!strcmp(fault, "alloc")) {
        /* Touches 64 MiB blocks until bn_malloc aborts at the memory limit;
           stops at 4 GiB (a safety net: the limit was not enforced). */
        size_t block = (size_t)64 << 20;
        for (int i = 0; i < 64; i++) {
            char *p = bn_malloc(block);
            memset(p, i + 1, block);
        }
    }
    snprintf(out->fail_reason, sizeof out->fail_reason,
             "trial %d: fault '%s' did not end the worker (no memory limit?)", number, fault);
    return bn_error(BN_EARG, "%s", out->fail_reason);
}

int trial_synthetic(void *user, const spec *s, const space_config *cfg, int number, uint64_t seed,
                    trial_result *out) {
    (void)user;
    const char *fault = test_fault(number);
    if (fault) return do_fault(fault, number, out);
    const char *ms = getenv("BNAS_SYNTHETIC_MS");
    if (ms && atoi(ms) > 0) {
        struct timespec ts = {atoi(ms) / 1000, (long)(atoi(ms) % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    const char *fail = getenv("BNAS_SYNTHETIC_FAIL");
    if (fail && atoi(fail) > 0 && number % atoi(fail) == atoi(fail) - 1) {
        snprintf(out->fail_reason, sizeof out->fail_reason,
                 "synthetic failure of trial %d (BNAS_SYNTHETIC_FAIL=%s)", number, fail);
        return bn_error(BN_EDIVERGED, "%s", out->fail_reason);
    }
    pcg32 r;
    rng_keyed(&r, seed, 0, RNG_INIT);
    /* Accuracy grows with capacity and epochs, saturating; MHL and flip
       training trade a little accuracy for tolerance. */
    double cap = dmath_log(1.0 + cfg->macs) / (30.0 * 0.69314718055994530942);
    double acc = 0.95 - 0.5 * dmath_exp(-3.0 * cap) - 0.05 / cfg->epochs - 0.1 * cfg->flip_rate;
    /* Bop loses momentum updates in a narrow format, about half as many per
       extra mantissa bit (papers.md section 7). */
    if (cfg->optimizer == 1) acc -= 0.3 * ldexp(1.0, -cfg->momentum.f);
    acc += 0.01 * (pcg32_double(&r) - 0.5);
    double tol = 0.3 + 0.4 * (cfg->loss == 1) * (1.0 - dmath_exp(-cfg->mhl_b / 64.0)) + 2.0 * cfg->flip_rate;
    tol += 0.02 * (pcg32_double(&r) - 0.5);
    if (tol > 1) tol = 1;
    int rc;
    if ((rc = trial_result_set(out, "val_acc", acc)) ||
        (rc = trial_result_set(out, "test_acc", acc - 0.005)) ||
        (rc = trial_result_set(out, "model_bytes", (double)cfg->model_bytes)) ||
        (rc = trial_result_set(out, "macs", cfg->macs)) ||
        (rc = trial_result_set(out, "train_loss", 1.0 - acc)))
        goto fail;
    /* The training-memory model needs the layer shapes: build the net (no training). */
    arch a;
    net nt;
    rc = arch_parse(&a, cfg->topology);
    if (!rc) rc = net_create(&nt, &a, s->in_c, s->in_h, s->in_w, s->classes);
    if (rc) goto fail;
    bop_memory tm = cfg->optimizer == 1 ? bop_memory_model(&nt, &cfg->momentum, cfg->batch)
                                        : bop_memory_model_adam(&nt, cfg->batch);
    net_free(&nt);
    if ((rc = trial_result_set(out, "train_memory", tm.total))) goto fail;
    for (int e = 0; e < s->n_eval; e++) {
        char name[48];
        snprintf(name, sizeof name, "%.20s.acc", s->eval[e].name);
        if ((rc = trial_result_set(out, name, acc * tol))) goto fail;
    }
    size_t n = strlen(cfg->canon) + 8;
    out->model = bn_malloc(n);
    memcpy(out->model, &seed, 8);
    memcpy((char *)out->model + 8, cfg->canon, n - 8);
    out->model_size = n;
    snprintf(out->model_format, sizeof out->model_format, "synthetic");
    const char *log = getenv("BNAS_SYNTHETIC_LOG");
    if (log && *log) { /* tests count trainings: one line per trained trial, any process */
        FILE *f = fopen(log, "a");
        if (f) {
            fprintf(f, "%d\n", number);
            fclose(f);
        }
    }
    return BN_OK;
fail:
    snprintf(out->fail_reason, sizeof out->fail_reason, "%s", bn_errmsg());
    return rc;
}
