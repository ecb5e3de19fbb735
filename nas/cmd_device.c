/*
** `bnas device MODEL --evaluator NAME [--param key=value ...]`: runs one
** evaluator plugin (evaluators/evaluator.h; e.g. fefet, lim) on a saved model
** with the same train/validation split as `bnas train` (validation images
** carved from the training set with the recipe's seed), and prints its
** metrics, one "name value" line each. And bench_errmodel(), the error-model
** lines of `bnas bench`: the hooked driver against the fast path.
*/
#include "nas/commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "engine/err.h"
#include "engine/errmodel.h"
#include "engine/model.h"
#include "engine/packed.h"
#include "engine/parallel.h"
#include "engine/train.h"
#include "evaluators/evaluator.h"

static const char *device_usage =
    "usage: bnas device MODEL --evaluator NAME [options]\n"
    "Runs one evaluator (e.g. fefet, lim, fault) on a saved model and prints its metrics.\n"
    "  --evaluator NAME   registered evaluator (bnas device --list shows them)\n"
    "  --param KEY=VALUE  evaluator parameter, repeatable (e.g. --param split=test --param repeats=10)\n"
    "  --val N            validation images carved from the training set with the model's seed (default 5000)\n"
    "  --seed N           seed of the evaluation (default 1)\n"
    "  --data DIR         FashionMNIST folder (default: the Debian package's)\n"
    "  --threads N        (default: all cores)\n"
    "  --list             list the evaluators\n"
    "  --bench [--quick]  print the error-model speed lines (hooked driver vs fast path; no MODEL)\n"
    "Exit codes: 0 success, 1 runtime error, 2 usage error.\n";

/* User + system CPU seconds of the process (all threads). */
static double device_cpu_seconds(void) {
    struct rusage u;
    if (getrusage(RUSAGE_SELF, &u)) return 0.0;
    return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec * 1e-6 + (double)u.ru_stime.tv_sec + u.ru_stime.tv_usec * 1e-6;
}

int cmd_device(int argc, char **argv) {
    const char *path = NULL, *name = NULL, *dir = NULL;
    int n_val = 5000, threads = 0, bench = 0, quick = 0;
    uint64_t seed = 1;
    eval_params params;
    memset(&params, 0, sizeof params);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE() do { if (!v) { fprintf(stderr, "bnas device: %s needs a value\n", a); return 2; } i++; } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(device_usage, stdout); return 0; }
        else if (!strcmp(a, "--list")) {
            for (const evaluator *const *e = eval_all(); *e; e++) printf("%-14s %s\n", (*e)->name, (*e)->summary);
            return 0;
        }
        else if (!strcmp(a, "--evaluator")) { NEED_VALUE(); name = v; }
        else if (!strcmp(a, "--bench")) bench = 1;
        else if (!strcmp(a, "--quick")) quick = 1;
        else if (!strcmp(a, "--param")) {
            NEED_VALUE();
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || (size_t)(eq - v) >= EVAL_NAME_MAX || strlen(eq + 1) >= EVAL_VALUE_MAX ||
                params.n >= EVAL_MAX_PARAMS) {
                fprintf(stderr, "bnas device: --param wants KEY=VALUE (got '%s')\n", v);
                return 2;
            }
            memcpy(params.p[params.n].key, v, (size_t)(eq - v));
            params.p[params.n].key[eq - v] = '\0';
            strcpy(params.p[params.n].value, eq + 1);
            params.n++;
        }
        else if (!strcmp(a, "--val")) { NEED_VALUE(); n_val = atoi(v); }
        else if (!strcmp(a, "--seed")) { NEED_VALUE(); seed = strtoull(v, NULL, 10); }
        else if (!strcmp(a, "--data")) { NEED_VALUE(); dir = v; }
        else if (!strcmp(a, "--threads")) { NEED_VALUE(); threads = atoi(v); }
        else if (a[0] == '-' && a[1]) { fprintf(stderr, "bnas device: unknown option '%s'\n", a); return 2; }
        else if (!path) path = a;
        else { fprintf(stderr, "bnas device: more than one model given ('%s')\n", a); return 2; }
#undef NEED_VALUE
    }
    if (bench) {
        par_set_threads(threads);
        dataset tr = {0}, te = {0};
        int rc = data_load_fashion_mnist(&tr, &te, dir);
        if (rc) fprintf(stderr, "bnas device: %s\n", bn_errmsg());
        else rc = bench_errmodel(&te, quick);
        data_free(&tr), data_free(&te);
        return rc ? 1 : 0;
    }
    if (!path || !name) { fprintf(stderr, "bnas device: need MODEL and --evaluator\n%s", device_usage); return 2; }
    const evaluator *e = eval_find(name);
    if (!e) { fprintf(stderr, "bnas device: no evaluator '%s' (bnas device --list)\n", name); return 2; }
    if (eval_params_check(e, &params)) { fprintf(stderr, "bnas device: %s\n", bn_errmsg()); return 2; }
    par_set_threads(threads);
    net n = {0};
    train_recipe r;
    dataset full = {0}, test = {0}, train = {0}, val = {0};
    eval_metrics *out = bn_calloc(1, sizeof *out);
    int rc = model_load(&n, &r, path);
    if (!rc) rc = data_load_fashion_mnist(&full, &test, dir);
    if (!rc && (n_val < 1 || n_val >= full.n)) rc = bn_error(BN_EARG, "--val %d: must be in 1..%d", n_val, full.n - 1);
    if (!rc) rc = data_split(&train, &val, &full, n_val, r.seed);
    if (!rc) {
        eval_context ctx = {&n, &train, &val, &test, seed};
        double t0 = par_seconds(), c0 = device_cpu_seconds();
        rc = e->run(&ctx, &params, out);
        double secs = par_seconds() - t0, cpu = device_cpu_seconds() - c0;
        for (int i = 0; !rc && i < out->n; i++) printf("%s %.6g\n", out->m[i].name, out->m[i].value);
        if (!rc) printf("# %s on %s: %.2f s wall, %.2f s cpu, %d threads\n", name, path, secs, cpu, par_threads());
    }
    if (rc) fprintf(stderr, "bnas device: %s\n", bn_errmsg());
    free(out);
    net_free(&n);
    data_free(&train), data_free(&val), data_free(&full), data_free(&test);
    return rc ? 1 : 0;
}

/* ---- bench ---- */

static int bench_one(const char *topo, const dataset *test, int images, const char *label, const errmodel *m) {
    arch a;
    net n = {0};
    packed_net p;
    int rc = arch_parse(&a, topo);
    if (!rc) rc = net_create(&n, &a, test->c, test->h, test->w, test->classes);
    if (rc) return rc;
    pcg32 g;
    rng_keyed(&g, 1, 0, RNG_INIT);
    net_init_params(&n, &g);
    rc = packed_from_net(&p, &n);
    net_free(&n);
    if (rc) return rc;
    int threads = par_threads();
    double hooked, fast;
    errmodel_bench(&p, m, test->pixels, images < test->n ? images : test->n, threads, &hooked, &fast);
    printf("%-24s %-26s %12.0f %12.0f %8.1fx\n", topo, label, hooked, fast, fast / hooked);
    packed_free(&p);
    return BN_OK;
}

int bench_errmodel(const dataset *test, int quick) {
    printf("\nerror models (engine/errmodel.h), images/s on %d threads: errmodel_logits vs packed_logits\n",
           par_threads());
    printf("%-24s %-26s %12s %12s %9s\n", "network", "error model", "with model", "fast path", "ratio");
    const char *nets[2] = {"FC512-FC512", "C64-MP2-C64-MP2-FC2048"};
    for (int k = 0; k < 2; k++) {
        int images = k == 0 ? (quick ? 2000 : 10000) : (quick ? 200 : 1000);
        errmodel m;
        errmodel_zero(&m);
        errmodel_set_weights(&m, 0.01, 0.02);
        int rc = bench_one(nets[k], test, images, "weights 1%/2% (fast path)", &m);
        errmodel_zero(&m);
        errmodel_set_products(&m, 0.01, 0.01);
        if (!rc) rc = bench_one(nets[k], test, images, "XNOR products 1%", &m);
        errmodel_zero(&m);
        errmodel_set_activations(&m, 0.01, 0.01);
        if (!rc) rc = bench_one(nets[k], test, images, "activations 1%", &m);
        if (rc) {
            fprintf(stderr, "bnas bench: %s\n", bn_errmsg());
            return 1;
        }
    }
    return 0;
}
