/* Trial results, and the synthetic trial function used by tests and dry runs. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/arch.h"
#include "engine/bop.h"
#include "engine/dmath.h"
#include "engine/err.h"
#include "engine/net.h"
#include "engine/rng.h"
#include "nas/trial.h"

void trial_result_set(trial_result *r, const char *name, double value) {
    for (int i = 0; i < r->n_metrics; i++)
        if (!strcmp(r->name[i], name)) {
            r->value[i] = value;
            return;
        }
    BN_ASSERT(r->n_metrics < TRIAL_MAX_METRICS);
    snprintf(r->name[r->n_metrics], sizeof r->name[0], "%s", name);
    r->value[r->n_metrics++] = value;
}

int trial_result_get(const trial_result *r, const char *name, double *value) {
    for (int i = 0; i < r->n_metrics; i++)
        if (!strcmp(r->name[i], name)) {
            *value = r->value[i];
            return 1;
        }
    return 0;
}

void trial_result_free(trial_result *r) {
    free(r->model);
    memset(r, 0, sizeof *r);
}

int trial_synthetic(void *user, const spec *s, const space_config *cfg, int number, uint64_t seed,
                    trial_result *out) {
    (void)user;
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
    trial_result_set(out, "val_acc", acc);
    trial_result_set(out, "test_acc", acc - 0.005);
    trial_result_set(out, "model_bytes", (double)cfg->model_bytes);
    trial_result_set(out, "macs", cfg->macs);
    trial_result_set(out, "train_loss", 1.0 - acc);
    /* The training-memory model needs the layer shapes: build the net (no training). */
    arch a;
    net nt;
    int rc = arch_parse(&a, cfg->topology);
    if (!rc) rc = net_create(&nt, &a, s->in_c, s->in_h, s->in_w, s->classes);
    if (rc) {
        snprintf(out->fail_reason, sizeof out->fail_reason, "%s", bn_errmsg());
        return rc;
    }
    bop_memory tm = cfg->optimizer == 1 ? bop_memory_model(&nt, &cfg->momentum, cfg->batch)
                                        : bop_memory_model_adam(&nt, cfg->batch);
    trial_result_set(out, "train_memory", tm.total);
    net_free(&nt);
    for (int e = 0; e < s->n_eval; e++) {
        char name[48];
        snprintf(name, sizeof name, "%.20s.acc", s->eval[e].name);
        trial_result_set(out, name, acc * tol);
    }
    size_t n = strlen(cfg->canon) + 8;
    out->model = bn_malloc(n);
    memcpy(out->model, &seed, 8);
    memcpy((char *)out->model + 8, cfg->canon, n - 8);
    out->model_size = n;
    snprintf(out->model_format, sizeof out->model_format, "synthetic");
    return BN_OK;
}
