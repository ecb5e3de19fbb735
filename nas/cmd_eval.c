/*
** `bnas eval MODEL`: bit-error tolerance of a saved model (clean accuracy, the
** neuron-level tolerance metric, the output margin, accuracy over bit error
** rates with repeats and 95% intervals), and bench_fault(), the fault-injection
** speed lines of `bnas bench`.
*/
#include "nas/commands.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/err.h"
#include "engine/fault.h"
#include "engine/margin.h"
#include "engine/model.h"
#include "engine/packed.h"
#include "engine/parallel.h"
#include "engine/train.h"

#define EVAL_MAX_RATES 64

static const char *eval_usage =
    "usage: bnas eval MODEL [options]\n"
    "Bit-error tolerance of a saved model on the test set: clean accuracy, the\n"
    "neuron-level tolerance metric (margin.mean, per hidden layer margin.layerN;\n"
    "weight flips a neuron tolerates for certain, Buschjaeger et al. 2020), the\n"
    "output margin in flips, and accuracy over bit error rates (mean, sd, 95%\n"
    "t-interval over repeats), evaluated on the bit-packed model.\n"
    "  --ber LIST        rates, comma separated, fractions or with % (default 0,0.005,0.01,0.02,0.05,0.1,0.15,0.2)\n"
    "  --p01 X --p10 Y   also evaluate this asymmetric point (stored 0->1 and 1->0 rates)\n"
    "  --targets LIST    weights (default), thresholds, activations, comma separated\n"
    "  --layer N         inject into layer N only (0 = first; default all)\n"
    "  --repeats R       error patterns per rate (default 10)\n"
    "  --seed N          seed of the error patterns (default 1)\n"
    "  --dataset NAME    fashion or cifar10 (default: from the model's input shape)\n"
    "  --data DIR        data folder\n"
    "  --images N        evaluate on the first N test images (default all)\n"
    "  --predictions FILE  write the packed model's clean prediction of each of those\n"
    "                    images as CSV: a header line \"image,label,predicted\", then\n"
    "                    one line per image (index in the test set, true class, class)\n"
    "  --threads N       (default: all cores)\n"
    "  --bench           print the fault-injection speed lines instead (no MODEL)\n"
    "Exit codes: 0 success, 1 runtime error, 2 usage error.\n";

/* Parses "a,b,c" (optionally in brackets, values optionally with %) into out. */
static int parse_rates(const char *s, double *out, int max, int *n) {
    *n = 0;
    while (isspace((unsigned char)*s) || *s == '[') s++;
    while (*s && *s != ']') {
        char *end;
        double v = strtod(s, &end);
        if (end == s) return bn_error(BN_EARG, "--ber: '%s' is not a list of numbers", s);
        s = end;
        if (*s == '%') v /= 100, s++;
        if (!(v >= 0 && v <= 1)) return bn_error(BN_EARG, "--ber: rate %g is not in [0, 1]", v);
        if (*n >= max) return bn_error(BN_EARG, "--ber: more than %d rates", max);
        out[(*n)++] = v;
        while (isspace((unsigned char)*s)) s++;
        if (*s == ',') s++;
        else if (*s && *s != ']') return bn_error(BN_EARG, "--ber: unexpected '%s'", s);
        while (isspace((unsigned char)*s)) s++;
    }
    if (*n == 0) return bn_error(BN_EARG, "--ber: empty list");
    return BN_OK;
}

/* Parses "weights,thresholds,activations" into flags[FAULT_TARGETS]. */
static int parse_targets(const char *s, int *flags) {
    memset(flags, 0, sizeof(int) * FAULT_TARGETS);
    static const char *names[FAULT_TARGETS] = {"weights", "thresholds", "activations"};
    while (*s) {
        size_t len = strcspn(s, ",");
        int ok = 0;
        for (int t = 0; t < FAULT_TARGETS; t++)
            if (len == strlen(names[t]) && !strncmp(s, names[t], len)) flags[t] = 1, ok = 1;
        if (!ok) return bn_error(BN_EARG, "--targets: unknown target '%.*s' (weights, thresholds, activations)", (int)len, s);
        s += len;
        if (*s == ',') s++;
    }
    return BN_OK;
}

/* The error model: (p01, p10) on the chosen targets, in every layer or only in `layer`. */
static void make_model(fault_model *m, const int *targets, int layer, double p01, double p10) {
    fault_model_zero(m);
    for (int t = 0; t < FAULT_TARGETS; t++) {
        if (!targets[t]) continue;
        for (int l = 0; l < NET_MAX_LAYERS; l++)
            if (layer < 0 || l == layer) m->p01[t][l] = p01, m->p10[t][l] = p10;
    }
}

/* Writes the packed model's clean prediction of every image of d to path as
   CSV (image,label,predicted). BN_OK, or BN_EIO naming the file. */
static int write_predictions(const net *n, const dataset *d, const char *path) {
    packed_net p;
    int rc = packed_from_net(&p, n);
    if (rc) return rc;
    int *pred = bn_malloc(sizeof(int) * (size_t)(d->n > 0 ? d->n : 1));
    packed_predict(&p, pred, d->pixels, d->n);
    packed_free(&p);
    FILE *f = fopen(path, "w");
    if (!f) rc = bn_error(BN_EIO, "--predictions: cannot open '%s': %s", path, strerror(errno));
    else {
        int bad = fprintf(f, "image,label,predicted\n") < 0;
        for (int i = 0; i < d->n && !bad; i++) bad = fprintf(f, "%d,%d,%d\n", i, d->labels[i], pred[i]) < 0;
        if (fclose(f) != 0 || bad) rc = bn_error(BN_EIO, "--predictions: cannot write '%s': %s", path, strerror(errno));
    }
    free(pred);
    return rc;
}

static void print_row(const char *label, const fault_stats *s) {
    printf("%-22s %7.2f%% %7.2f %7.2f%% .. %6.2f%% %7.2f%% %7.2f%% %10.1f\n", label, 100 * s->mean, 100 * s->sd,
           100 * s->ci_lo, 100 * s->ci_hi, 100 * s->min, 100 * s->max, s->flips);
}

int cmd_eval(int argc, char **argv) {
    const char *path = NULL, *dsname = NULL, *dir = NULL, *pred_path = NULL;
    double rates[EVAL_MAX_RATES] = {0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2};
    int n_rates = 8, repeats = 10, threads = 0, layer = -1, images = 0, bench = 0;
    int targets[FAULT_TARGETS] = {1, 0, 0};
    double p01 = -1, p10 = -1;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE() do { if (!v) { fprintf(stderr, "bnas eval: %s needs a value\n", a); return 2; } i++; } while (0)
#define USAGE_FAIL() do { fprintf(stderr, "bnas eval: %s\n", bn_errmsg()); return 2; } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(eval_usage, stdout); return 0; }
        else if (!strcmp(a, "--ber")) { NEED_VALUE(); if (parse_rates(v, rates, EVAL_MAX_RATES, &n_rates)) USAGE_FAIL(); }
        else if (!strcmp(a, "--p01")) { NEED_VALUE(); p01 = strtod(v, NULL); }
        else if (!strcmp(a, "--p10")) { NEED_VALUE(); p10 = strtod(v, NULL); }
        else if (!strcmp(a, "--targets")) { NEED_VALUE(); if (parse_targets(v, targets)) USAGE_FAIL(); }
        else if (!strcmp(a, "--layer")) { NEED_VALUE(); layer = atoi(v); }
        else if (!strcmp(a, "--repeats")) { NEED_VALUE(); repeats = atoi(v); }
        else if (!strcmp(a, "--seed")) { NEED_VALUE(); seed = strtoull(v, NULL, 10); }
        else if (!strcmp(a, "--dataset")) { NEED_VALUE(); dsname = v; }
        else if (!strcmp(a, "--data")) { NEED_VALUE(); dir = v; }
        else if (!strcmp(a, "--images")) { NEED_VALUE(); images = atoi(v); }
        else if (!strcmp(a, "--predictions")) { NEED_VALUE(); pred_path = v; }
        else if (!strcmp(a, "--threads")) { NEED_VALUE(); threads = atoi(v); }
        else if (!strcmp(a, "--bench")) bench = 1;
        else if (a[0] == '-' && a[1]) { fprintf(stderr, "bnas eval: unknown option '%s' (see bnas eval --help)\n", a); return 2; }
        else if (!path) path = a;
        else { fprintf(stderr, "bnas eval: more than one model given ('%s')\n", a); return 2; }
#undef NEED_VALUE
#undef USAGE_FAIL
    }
    if (repeats < 1) { fprintf(stderr, "bnas eval: --repeats must be >= 1\n"); return 2; }
    if ((p01 >= 0) != (p10 >= 0) || (p01 >= 0 && (p01 > 1 || p10 > 1))) {
        fprintf(stderr, "bnas eval: --p01 and --p10 go together, each in [0, 1]\n");
        return 2;
    }
    if (layer >= NET_MAX_LAYERS) { fprintf(stderr, "bnas eval: --layer %d is too large\n", layer); return 2; }
    par_set_threads(threads);
    dataset train = {0}, test = {0};
    if (bench) {
        if (data_load_fashion_mnist(&train, &test, dir)) {
            fprintf(stderr, "bnas eval: %s\n", bn_errmsg());
            return 1;
        }
        int rc = bench_fault(&test, 0);
        data_free(&train), data_free(&test);
        return rc;
    }
    if (!path) { fprintf(stderr, "bnas eval: no model given\n%s", eval_usage); return 2; }

    net n = {0};
    train_recipe r;
    fault_ctx c = {0};
    int have_ctx = 0;
    int rc = model_load(&n, &r, path);
    if (rc) goto done;
    if (layer >= n.n_layers) {
        fprintf(stderr, "bnas eval: --layer %d: the model has %d layers\n", layer, n.n_layers);
        net_free(&n);
        return 2;
    }
    if (!dsname) dsname = n.in_c == 3 ? "cifar10" : "fashion";
    if ((rc = data_load_named(dsname, &train, &test, dir))) goto done;
    static const char *const keys[3] = {NULL, NULL, "--images"};
    const int asked[3] = {0, 0, images};
    if ((rc = data_check_counts(dsname, train.n, test.n, keys, asked))) goto done;
    dataset d = images > 0 ? data_slice(&test, 0, images) : test;
    char topo[MODEL_MAX_TOPO + 1];
    arch_format(&n.arch, topo, sizeof topo);
    printf("model          %s: %s, %dx%dx%d -> %d\n", path, topo[0] ? topo : "(classifier only)", n.in_c, n.in_h,
           n.in_w, n.classes);
    printf("trained        %d epochs, loss %s%s", r.epochs, r.loss == LOSS_MHL ? "MHL" : "CE",
           r.loss == LOSS_MHL ? "" : "");
    if (r.loss == LOSS_MHL) printf(" (b %g)", (double)r.mhl_b);
    if (r.flip != FLIP_NONE)
        printf(", flip training %s p01 %g p10 %g", r.flip == FLIP_STE ? "STE" : "naive", (double)r.p01, (double)r.p10);
    if (r.reg_lambda > 0) printf(", regularizer lambda %g h %g", (double)r.reg_lambda, (double)r.reg_h);
    printf(", seed %llu\n", (unsigned long long)r.seed);
    printf("data           %s test set, %d images, %d threads\n", dsname, d.n, par_threads());
    if (pred_path) {
        if ((rc = write_predictions(&n, &d, pred_path))) goto done;
        printf("predictions    %s (%d images)\n", pred_path, d.n);
        fflush(stdout);
    }
    margin_result mr;
    rc = margin_measure(&n, &d, threads, &mr);
    if (rc) goto done;
    printf("accuracy       %.2f%%\n", 100 * mr.accuracy);
    printf("margin.mean    %.4f   (mean over images and hidden neurons of the weight flips a neuron tolerates)\n", mr.mean);
    for (int l = 0; l < mr.n_hidden; l++) printf("margin.layer%-2d %.4f\n", l, mr.layer[l]);
    printf("margin.output  %.4f   (mean (z_y - max other) / (2|s|), output-layer flips)\n", mr.output);
    rc = fault_ctx_create(&c, &n);
    if (rc) goto done;
    have_ctx = 1;
    printf("\nerror model    p01 = p10 = rate on");
    static const char *tn[FAULT_TARGETS] = {"weights", "thresholds", "activations"};
    for (int t = 0; t < FAULT_TARGETS; t++) if (targets[t]) printf(" %s", tn[t]);
    if (layer >= 0) printf(" of layer %d", layer); else printf(" of every layer");
    printf(", %d repeats, seed %llu\n", repeats, (unsigned long long)seed);
    printf("%-22s %8s %7s %19s %8s %8s %10s\n", "rate", "acc", "sd", "95% CI", "min", "max", "flips");
    for (int i = 0; i < n_rates; i++) {
        fault_model m;
        make_model(&m, targets, layer, rates[i], rates[i]);
        fault_stats s;
        rc = fault_ctx_evaluate(&c, &d, &m, repeats, seed, threads, &s, NULL);
        if (rc) goto done;
        char label[64];
        snprintf(label, sizeof label, "%g%%", 100 * rates[i]);
        print_row(label, &s);
        fflush(stdout);
    }
    if (p01 >= 0) {
        fault_model m;
        make_model(&m, targets, layer, p01, p10);
        fault_stats s;
        rc = fault_ctx_evaluate(&c, &d, &m, repeats, seed, threads, &s, NULL);
        if (rc) goto done;
        char label[64];
        snprintf(label, sizeof label, "p01 %g%% p10 %g%%", 100 * p01, 100 * p10);
        print_row(label, &s);
    }
done:
    if (rc) fprintf(stderr, "bnas eval: %s\n", bn_errmsg());
    if (have_ctx) fault_ctx_free(&c);
    net_free(&n);
    data_free(&train), data_free(&test);
    return rc ? 1 : 0;
}

/* ---- bench_fault ---- */

#define BENCH_RUNS 5 /* timed runs of each path; the median counts */

/* Median of the n values v (sorted in place). */
static double median_of(double *v, int n) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1], v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Float path predictions of n on d in chunks (bounded memory). */
static void float_predict(const net *n, int *pred, const dataset *d) {
    size_t img = (size_t)d->h * d->w * d->c;
    for (int i = 0; i < d->n; i += 500) net_predict(n, pred + i, d->pixels + (size_t)i * img, d->n - i < 500 ? d->n - i : 500);
}

static int bench_fault_net(const char *name, const char *topo, const dataset *test, int float_images) {
    arch a;
    net n = {0};
    int rc = arch_parse(&a, topo);
    if (!rc) rc = net_create(&n, &a, test->c, test->h, test->w, test->classes);
    if (rc) {
        fprintf(stderr, "bnas bench: %s\n", bn_errmsg());
        return 1;
    }
    pcg32 g;
    rng_keyed(&g, 1, 0, RNG_INIT);
    net_init_params(&n, &g);
    fault_ctx c;
    if (fault_ctx_create(&c, &n)) {
        fprintf(stderr, "bnas bench: %s\n", bn_errmsg());
        net_free(&n);
        return 1;
    }
    const int threads = 2, R = 10;
    par_set_threads(threads);
    fault_model m;
    fault_model_zero(&m);
    fault_model_set(&m, FAULT_WEIGHTS, 0.01, 0.01);
    int *pred = bn_malloc(sizeof(int) * (size_t)R * test->n), *fp = bn_malloc(sizeof(int) * (size_t)test->n);
    /* Packed: R repeats over the whole test set in one group, as fault_ctx_evaluate runs them. */
    dataset warm = data_slice(test, 0, test->n < 640 ? test->n : 640);
    fault_ctx_predict_repeats(&c, &warm, &m, 1, 0, R, threads, pred); /* warm-up: allocations, page faults */
    /* Both paths: the median of BENCH_RUNS runs (one run of the packed path is
       tens of milliseconds; a single one catches every hiccup of a shared host). */
    double tp[BENCH_RUNS], td[BENCH_RUNS];
    for (int k = 0; k < BENCH_RUNS; k++) {
        double t0 = par_seconds();
        if (fault_ctx_predict_repeats(&c, test, &m, 1, 0, R, threads, pred)) {
            fprintf(stderr, "bnas bench: %s\n", bn_errmsg());
            free(pred), free(fp), fault_ctx_free(&c), net_free(&n);
            return 1;
        }
        tp[k] = par_seconds() - t0, td[k] = c.group_draw_seconds;
    }
    double t_packed = median_of(tp, BENCH_RUNS), t_draw = median_of(td, BENCH_RUNS), t_pred = t_packed - t_draw;
    double ips_packed = (double)R * test->n / t_packed;
    const int *last = pred + (size_t)(R - 1) * test->n; /* c's masks are the last repeat's */
    /* Float path with the same flips (last repeat's), on float_images images. */
    dataset fd = data_slice(test, 0, float_images < test->n ? float_images : test->n);
    double tf[BENCH_RUNS];
    for (int k = 0; k < BENCH_RUNS && !rc; k++) {
        double f0 = par_seconds();
        net f;
        rc = net_copy(&f, &n);
        if (!rc) {
            fault_apply_to_net(&c, &f);
            float_predict(&f, fp, &fd);
            net_free(&f);
        }
        tf[k] = par_seconds() - f0;
    }
    double t_float = median_of(tf, BENCH_RUNS);
    double ips_float = fd.n / t_float;
    int same = 1;
    for (int i = 0; i < fd.n; i++) same &= fp[i] == last[i];
    printf("%-12s packed+flips %10.0f img/s   float+flips %8.0f img/s   ratio %6.1fx   (%s)\n", name, ips_packed,
           ips_float, ips_packed / ips_float, same ? "same predictions" : "PREDICTIONS DIFFER");
    printf("%-12s %d repeats x %d images at 1%% BER on %d threads: %.4f s (%s path; draw %.1f%%, evaluate %.1f%%)\n",
           name, R, test->n, threads, t_packed, c.last_path == FAULT_PATH_DELTA ? "delta" : "dense",
           100 * t_draw / t_packed, 100 * t_pred / t_packed);
    printf("%-12s drawing flips costs %.1f%% of one evaluation (%.2f ms per draw, %.2f ms per evaluation)\n", name,
           100 * t_draw / t_pred, 1e3 * t_draw / R, 1e3 * t_pred / R);
    free(pred), free(fp);
    fault_ctx_free(&c);
    net_free(&n);
    return rc ? 1 : (same ? 0 : 1);
}

int bench_fault(const dataset *test, int quick) {
    printf("fault injection: packed model vs float path with the same injected weight flips (1%% BER), kernels %s\n",
           packed_simd_name());
    int rc = bench_fault_net("FC512-FC512", "FC512-FC512", test, quick ? 2000 : 10000);
    if (!rc) rc = bench_fault_net("VGG3", "C64-MP2-C64-MP2-FC2048", test, quick ? 200 : 1000);
    return rc;
}
