/*
** bnas measure MODEL EVALUATOR [key=value ...]: runs one registered evaluator
** (evaluators/registry.c: fefet, lim, lta, capmin, approxpop, fault, ...) on
** a saved model and prints its metrics, one "name value" line each, then the
** evaluator's wall time ("seconds") and the process's CPU time during it
** ("cpu_seconds", all threads). The context gets the training split (the
** model's own training images minus --val, carved with the model's seed as by
** `bnas train`), the validation split and the test set; evaluators default to
** the validation split, `split=test` selects the test set.
** bnas measure --list prints the registered evaluators.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/err.h"
#include "engine/model.h"
#include "engine/parallel.h"
#include "evaluators/evaluator.h"
#include "nas/commands.h"

static const char measure_usage[] =
    "usage: bnas measure MODEL EVALUATOR [key=value ...] [options]\n"
    "       bnas measure --list\n"
    "Runs one evaluator on a saved model and prints its metrics (name value per line),\n"
    "then its wall time (seconds) and the process's CPU time during it (cpu_seconds).\n"
    "Parameters are the evaluator's (the file comment in evaluators/NAME.c), e.g.\n"
    "  bnas measure vgg3.bnm lta n=[4,8,64] split=test\n"
    "  bnas measure fc.bnm fefet table=evaluators/data/fefet_temperature.csv split=test repeats=10\n"
    "  --list           list the registered evaluators\n"
    "  --dataset NAME   fashion or cifar10 (default: from the model's input shape)\n"
    "  --data DIR       data folder\n"
    "  --val N          validation images carved from the training set as by bnas train (default 5000;\n"
    "                   0: none; evaluators that select anything then fail: they never select on the test set)\n"
    "  --seed N         the evaluation seed (default 1)\n"
    "  --threads N      (default: all cores)\n"
    "Exit codes: 0 success, 1 runtime error, 2 usage error.\n";

int cmd_measure(int argc, char **argv) {
    const char *path = NULL, *ev = NULL, *dsname = NULL, *dir = NULL;
    int n_val = 5000, threads = 0;
    uint64_t seed = 1;
    eval_params params;
    memset(&params, 0, sizeof params);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(measure_usage, stdout); return 0; }
        if (!strcmp(a, "--list")) {
            for (const evaluator *const *e = eval_all(); *e; e++) printf("%-14s %s\n", (*e)->name, (*e)->summary);
            return 0;
        }
        if (a[0] == '-' && a[1] == '-') {
            if (!v) { fprintf(stderr, "bnas measure: %s needs a value\n", a); return 2; }
            i++;
            if (!strcmp(a, "--dataset")) dsname = v;
            else if (!strcmp(a, "--data")) dir = v;
            else if (!strcmp(a, "--val")) n_val = atoi(v);
            else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
            else if (!strcmp(a, "--threads")) threads = atoi(v);
            else { fprintf(stderr, "bnas measure: unknown option '%s' (bnas measure --help)\n", a); return 2; }
        } else if (!path) path = a;
        else if (!ev) ev = a;
        else {
            const char *eq = strchr(a, '=');
            if (!eq || eq == a || params.n >= EVAL_MAX_PARAMS || (size_t)(eq - a) >= EVAL_NAME_MAX ||
                strlen(eq + 1) >= EVAL_VALUE_MAX) {
                fprintf(stderr, "bnas measure: '%s' is not key=value\n", a);
                return 2;
            }
            snprintf(params.p[params.n].key, EVAL_NAME_MAX, "%.*s", (int)(eq - a), a);
            snprintf(params.p[params.n].value, EVAL_VALUE_MAX, "%s", eq + 1);
            params.n++;
        }
    }
    if (!path || !ev) { fputs(measure_usage, stderr); return 2; }
    const evaluator *e = eval_find(ev);
    if (!e) { fprintf(stderr, "bnas measure: no evaluator '%s' (bnas measure --list)\n", ev); return 2; }
    if (eval_params_check(e, &params)) { fprintf(stderr, "bnas measure: %s\n", bn_errmsg()); return 2; }
    par_set_threads(threads);
    net n = {0};
    train_recipe r;
    dataset full = {0}, test = {0}, train = {0}, val = {0};
    int rc = model_load(&n, &r, path);
    if (rc) goto done;
    if (!dsname) dsname = n.in_c == 3 ? "cifar10" : "fashion";
    if ((rc = data_load_named(dsname, &full, &test, dir))) goto done;
    if (n_val < 0 || n_val >= full.n) { rc = bn_error(BN_EARG, "--val %d: must be in 0..%d", n_val, full.n - 1); goto done; }
    if ((rc = data_split(&train, &val, &full, n_val, r.seed))) goto done; /* the split the trainer used */
    eval_context ctx = {&n, &train, n_val > 0 ? &val : NULL, &test, seed};
    eval_metrics *out = bn_calloc(1, sizeof *out);
    double t0 = par_seconds(), c0 = par_cpu_seconds();
    rc = e->run(&ctx, &params, out);
    double t = par_seconds() - t0, cpu = par_cpu_seconds() - c0;
    for (int i = 0; !rc && i < out->n; i++) printf("%-28s %.10g\n", out->m[i].name, out->m[i].value);
    if (!rc) printf("%-28s %.3f\n%-28s %.3f\n", "seconds", t, "cpu_seconds", cpu);
    free(out);
done:
    if (rc) fprintf(stderr, "bnas measure: %s\n", bn_errmsg());
    net_free(&n);
    data_free(&full), data_free(&test), data_free(&train), data_free(&val);
    return rc ? 1 : 0;
}
