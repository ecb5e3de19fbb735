/*
** `bnas train` and `bnas bench`: the engine on its own, without a search.
*/
#include "nas/commands.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/data.h"
#include "engine/err.h"
#include "engine/gemm.h"
#include "engine/layers.h"
#include "engine/model.h"
#include "engine/packed.h"
#include "engine/parallel.h"
#include "engine/recipe.h"
#include "engine/train.h"
#include "evaluators/evaluator.h"
#include "evaluators/fefet.h"

/* ---- shared by the engine commands ---- */

static int print_progress(const train_progress *p, void *user) {
    (void)user;
    char val[16] = "     -"; /* no validation split (--val 0) */
    if (p->val_acc >= 0) snprintf(val, sizeof val, "%.2f%%", 100 * p->val_acc);
    printf("epoch %3d/%-3d  loss %.4f  train %.2f%%  val %6s  %8.0f img/s  %6.1f s", p->epoch, p->epochs, p->loss,
           100 * p->train_acc, val, p->images_per_s, p->seconds);
    if (p->lost_updates >= 0) printf("  lost updates %.4f%%", 100 * p->lost_updates);
    printf("\n");
    fflush(stdout);
    return 0;
}

static const char *train_usage =
    "usage: bnas train [options]\n"
    "Trains one binarized network and saves it as a model file.\n"
    "  --topology STR     hidden layers, e.g. FC512-FC512 or C64-MP2-C64-MP2-FC2048 (default FC512-FC512)\n"
    "  --dataset NAME     fashion (default) or cifar10\n"
    "  --data DIR         data folder (default: the Debian package's for fashion)\n"
    "  --val N            validation images carved from the training set (default 5000, 0: none)\n"
    "  --train-images N   train on the first N images of the training split only (default: all)\n"
    "  --threads N        (default: all cores)\n"
    "  --determinism portable|fast  portable (default): the same model on every x86-64 host and\n"
    "                     thread count; fast: OpenBLAS's sgemm, reproducible only on the same\n"
    "                     host, CPU kernel and thread count (README, Reproducibility)\n"
    "  --init MODEL       start from MODEL's parameters (retraining; same topology)\n"
    "  -o FILE            model file to write (default model.bnm)\n"
    "  --flip-table FILE  flip training over a range: every mini-batch draws a point (e.g. a temperature)\n"
    "                     uniformly over the range of FILE's rows 'x,p01,p10' (the fefet evaluator's table\n"
    "                     format, at most 16 rows) and flips at the rates interpolated there (log p)\n"
    "The training recipe (engine/recipe.c's key table; the model file stores it):\n";

/* bnas train's recipe defaults: the table's, but 3 epochs. */
static train_recipe train_cli_defaults(void) {
    train_recipe r = train_recipe_default();
    r.epochs = 3;
    return r;
}

int cmd_train(int argc, char **argv) {
    const char *topology = "FC512-FC512", *dsname = "fashion", *dir = NULL, *out = "model.bnm", *init = NULL;
    const char *flip_table = NULL;
    int n_val = 5000, threads = 0, train_images = 0;
    train_recipe r = train_cli_defaults();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE() do { if (!v) { fprintf(stderr, "bnas train: %s needs a value\n", a); return 2; } i++; } while (0)
        const recipe_key *k = !strncmp(a, "--", 2) ? recipe_find_option(a + 2) : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            train_recipe shown = train_cli_defaults();
            fputs(train_usage, stdout);
            recipe_print_help(stdout, &shown);
            return 0;
        }
        else if (k && k->type == RECIPE_FLAG) { if (recipe_set(&r, k, "1")) goto bad_value; }
        else if (k) { NEED_VALUE(); if (recipe_set(&r, k, v)) goto bad_value; }
        else if (!strcmp(a, "--topology")) { NEED_VALUE(); topology = v; }
        else if (!strcmp(a, "--dataset")) { NEED_VALUE(); dsname = v; }
        else if (!strcmp(a, "--data")) { NEED_VALUE(); dir = v; }
        else if (!strcmp(a, "--flip-table")) { NEED_VALUE(); flip_table = v; }
        else if (!strcmp(a, "--val")) { NEED_VALUE(); n_val = atoi(v); }
        else if (!strcmp(a, "--train-images")) { NEED_VALUE(); train_images = atoi(v); }
        else if (!strcmp(a, "--threads")) { NEED_VALUE(); threads = atoi(v); }
        else if (!strcmp(a, "--determinism")) {
            NEED_VALUE();
            if (strcmp(v, "portable") && strcmp(v, "fast")) {
                fprintf(stderr, "bnas train: --determinism takes portable or fast, not '%s'\n", v);
                return 2;
            }
            matmul_use_blas(!strcmp(v, "fast"));
        }
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) { NEED_VALUE(); out = v; }
        else if (!strcmp(a, "--init")) { NEED_VALUE(); init = v; }
        else { fprintf(stderr, "bnas train: unknown option '%s' (see bnas train --help)\n", a); return 2; }
        continue;
    bad_value:
        fprintf(stderr, "bnas train: %s: %s\n", a, bn_errmsg());
        return 2;
#undef NEED_VALUE
    }
    if (flip_table) {
        fefet_table tb;
        if (r.flip == FLIP_NONE || r.p01 != 0 || r.p10 != 0) {
            fprintf(stderr, "bnas train: --flip-table needs --flip ste|naive and no --p/--p01/--p10\n");
            return 2;
        }
        if (fefet_table_load(&tb, flip_table)) { fprintf(stderr, "bnas train: %s\n", bn_errmsg()); return 2; }
        if (tb.has_kind[FEFET_CONV] || tb.has_kind[FEFET_DENSE]) {
            fprintf(stderr, "bnas train: %s: per-layer-type columns are not used by --flip-table\n", flip_table);
            return 2;
        }
        if (tb.n > TRAIN_FLIP_ROWS) {
            fprintf(stderr, "bnas train: %s: %d rows, at most %d\n", flip_table, tb.n, TRAIN_FLIP_ROWS);
            return 2;
        }
        r.flip_rows = tb.n;
        for (int i = 0; i < tb.n; i++)
            r.flip_t[i] = (float)tb.t[i], r.flip_p01[i] = (float)tb.p01[i], r.flip_p10[i] = (float)tb.p10[i];
    }
    if (r.flip != FLIP_NONE && r.p01 == 0 && r.p10 == 0 && r.flip_rows == 0) {
        fprintf(stderr, "bnas train: --flip needs --p, --p01/--p10 or --flip-table\n");
        return 2;
    }
    par_set_threads(threads);
    dataset full = {0}, test = {0}, train = {0}, val = {0};
    net n = {0};
    arch a;
    int rc = arch_parse(&a, topology);
    if (rc) goto done;
    rc = data_load_named(dsname, &full, &test, dir);
    if (rc) goto done;
    static const char *const keys[3] = {"--train-images", "--val", NULL};
    const int asked[3] = {train_images, n_val, 0};
    if ((rc = data_check_counts(dsname, full.n, test.n, keys, asked))) goto done;
    rc = data_split(&train, &val, &full, n_val, r.seed);
    if (rc) goto done;
    net plan;
    if ((rc = net_plan(&plan, &a, full.c, full.h, full.w, full.classes))) goto done;
    double need = (double)train_memory_bytes(&plan, &r), have = (double)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE);
    if (have > 0 && need > have) { /* refuse rather than be killed half-way */
        rc = bn_error(BN_EARG, "training %s needs about %.1f GiB of memory, the machine has %.1f GiB", topology,
                      need / 1073741824.0, have / 1073741824.0);
        goto done;
    }
    rc = net_create(&n, &a, full.c, full.h, full.w, full.classes);
    if (rc) goto done;
    pcg32 g;
    rng_keyed(&g, r.seed, 0, RNG_INIT);
    net_init_params(&n, &g);
    if (init) { /* retraining: start from a saved model's parameters and statistics */
        net m = {0};
        if ((rc = model_load(&m, NULL, init))) goto done;
        if (m.n_params != n.n_params || m.n_stats != n.n_stats || m.in_c != n.in_c || m.in_h != n.in_h ||
            m.in_w != n.in_w || m.classes != n.classes) {
            net_free(&m);
            rc = bn_error(BN_EARG, "--init %s: the model does not have topology %s on this data set", init, topology);
            goto done;
        }
        memcpy(n.params, m.params, sizeof(float) * n.n_params);
        memcpy(n.stats, m.stats, sizeof(float) * n.n_stats);
        net_free(&m);
    }
    printf("training %s on %s: %d train, %d val, %d test images, %d threads\n", topology, dsname,
           train.n, val.n, test.n, par_threads());
    dataset used = train_images > 0 ? data_slice(&train, 0, train_images) : train; /* counts checked above */
    if (used.n != train.n) printf("training on the first %d images of the training split\n", used.n);
    perturb_set ps;
    if ((rc = eval_perturbs(&r, &ps))) goto done;
    rc = train_run(&n, &used, n_val ? &val : NULL, &r, &ps, print_progress, NULL);
    if (rc) goto done;
    printf("test accuracy %.2f%%  (%zu bytes packed)\n", 100 * train_accuracy(&n, &test), net_packed_bytes(&n));
    rc = model_save(&n, &r, out);
    if (rc) goto done;
    printf("saved %s\n", out);
done:
    if (rc) fprintf(stderr, "bnas train: %s\n", bn_errmsg());
    net_free(&n);
    data_free(&train), data_free(&val), data_free(&full), data_free(&test);
    return rc ? 1 : 0;
}

/* ---- bench ---- */

/* GFLOP/s of the fixed-order gemm (engine/gemm.h) on square n x n matrices. */
static double bench_gemm(int n) {
    float *a = bn_aligned_alloc(sizeof(float) * (size_t)n * n);
    float *b = bn_aligned_alloc(sizeof(float) * (size_t)n * n);
    float *c = bn_aligned_alloc(sizeof(float) * (size_t)n * n);
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = (float)(i % 7) - 3, b[i] = (float)(i % 5) - 2;
    gemm(c, n, a, n, 1, b, n, 1, n, n, n, 0);
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = par_seconds();
        gemm(c, n, a, n, 1, b, n, 1, n, n, n, 0);
        double g = 2.0 * n * n * (double)n / (par_seconds() - t0) / 1e9;
        if (g > best) best = g;
    }
    free(a), free(b), free(c);
    return best;
}

/* OpenBLAS sgemm GFLOP/s on square n x n matrices at the current thread count. */
static double bench_sgemm(int n) {
    float *a = bn_aligned_alloc(sizeof(float) * (size_t)n * n);
    float *b = bn_aligned_alloc(sizeof(float) * (size_t)n * n);
    float *c = bn_aligned_alloc(sizeof(float) * (size_t)n * n);
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = (float)(i % 7) - 3, b[i] = (float)(i % 5) - 2;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = par_seconds();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        double g = 2.0 * n * n * (double)n / (par_seconds() - t0) / 1e9;
        if (g > best) best = g;
    }
    free(a), free(b), free(c);
    return best;
}

/* Seconds for each of `threads` threads to run the same fixed integer loop at once
   (registers only: no memory traffic, no sharing). The ratio of the 1-thread
   time to the all-threads time, times the thread count, is the best speed-up any
   parallel work can reach on this machine (hyperthread siblings or a busy host
   show up here, not as a flaw of the code that runs on them). */
static double bench_spin(int threads) {
    double t = 0;
    unsigned long sink = 0;
#pragma omp parallel num_threads(threads) reduction(max : t) reduction(^ : sink)
    {
        double t0 = par_seconds();
        unsigned long x = 1, y = 2, z = 3;
        for (long i = 0; i < 400000000L; i++) {
            x = x * 6364136223846793005UL + 1442695040888963407UL;
            y ^= y << 13, y ^= y >> 7;
            z += x >> 33;
        }
        sink ^= x + y + z;
        t = par_seconds() - t0;
    }
    if (sink == 42) printf(" "); /* keeps the loop alive */
    return t;
}

typedef struct {
    double images_per_s;
    double seconds;
    double phase[TRAIN_PHASES];
} bench_train_result;

static int bench_epoch(const train_progress *p, void *user) {
    bench_train_result *res = user;
    res->images_per_s = p->images_per_s;
    res->seconds = p->seconds;
    memcpy(res->phase, p->phase, sizeof res->phase);
    return 0;
}

/* Trains `epochs` epochs of topology on the first `images` training images with
   the default recipe (Adam, batch 256) and reports the last epoch (the first pays
   for page faults) in *res; *macs is the network's MACs per image. */
static int bench_train_epochs(const char *topology, const dataset *train, int images, int epochs,
                              bench_train_result *res, double *macs) {
    arch a;
    net n;
    int rc = arch_parse(&a, topology);
    if (rc) return rc;
    rc = net_create(&n, &a, train->c, train->h, train->w, train->classes);
    if (rc) return rc;
    pcg32 g;
    rng_keyed(&g, 1, 0, RNG_INIT);
    net_init_params(&n, &g);
    train_recipe r = train_recipe_default();
    r.epochs = epochs;
    dataset sub = data_slice(train, 0, images < train->n ? images : train->n);
    memset(res, 0, sizeof *res);
    rc = train_run(&n, &sub, NULL, &r, NULL, bench_epoch, res); /* the default recipe: no perturbations */
    *macs = net_macs(&n);
    net_free(&n);
    return rc;
}

/* Training images/s of one epoch over `images` training images. */
static int bench_train(const char *topology, const dataset *train, int images, double *ips, double *macs) {
    bench_train_result res;
    int rc = bench_train_epochs(topology, train, images, 2, &res, macs);
    *ips = res.images_per_s;
    return rc;
}

static const char *bench_train_usage =
    "usage: bnas bench train [--quick] [--data DIR] [--images N] [--topology T ...] [--threads N]\n"
    "Where training time goes on this machine. Measures the sgemm roof (OpenBLAS, 2048^3, at\n"
    "the thread count) first, then trains each network (default FC512-FC512, FC2048-FC2048 and\n"
    "VGG3 = C64-MP2-C64-MP2-FC2048; --topology repeats) for two epochs over the first N\n"
    "training images (default 60000, the whole set; 10240 with --quick; VGG3 a tenth) with the\n"
    "default recipe (Adam, batch 256, portable products) and reports the second epoch: seconds,\n"
    "seconds scaled to a 60000-image epoch, images/s, effective GFLOP/s (6 x MACs per image)\n"
    "and its fraction of the roof, and the share of each phase of a step: batch (gather the\n"
    "shuffled images), forward, loss, backward, optimizer.\n";

/* `bnas bench train`: the per-phase breakdown of a training epoch. */
static int cmd_bench_train(int argc, char **argv) {
    const char *dir = NULL, *topos[16];
    int n_topo = 0, quick = 0, images = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(bench_train_usage, stdout); return 0; }
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--images") && i + 1 < argc && (images = atoi(argv[++i])) > 0) continue;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc && (threads = atoi(argv[++i])) > 0) continue;
        else if (!strcmp(argv[i], "--topology") && i + 1 < argc && n_topo < 16) topos[n_topo++] = argv[++i];
        else { fprintf(stderr, "bnas bench train: bad or unknown option '%s' (see --help)\n", argv[i]); return 2; }
    }
    static const char *defaults[] = {"FC512-FC512", "FC2048-FC2048", "C64-MP2-C64-MP2-FC2048"};
    if (!n_topo)
        for (int k = 0; k < 3; k++) topos[n_topo++] = defaults[k];
    dataset train = {0}, test = {0};
    if (data_load_fashion_mnist(&train, &test, dir)) {
        fprintf(stderr, "bnas bench train: %s\n", bn_errmsg());
        return 1;
    }
    par_set_threads(threads);
    double roof = bench_sgemm(2048);
    printf("bnas bench train: FashionMNIST, batch 256, %d thread%s, sgemm roof %.1f GFLOP/s (OpenBLAS 2048^3), "
           "%s kernels\n\n", par_threads(), par_threads() > 1 ? "s" : "", roof, gemm_kernels_name(NULL));
    static const char *phase_names[TRAIN_PHASES] = {"batch", "forward", "loss", "backward", "optimizer"};
    printf("%-24s %7s %8s %9s %10s %11s %7s", "network", "images", "epoch s", "s/60k img", "img/s", "eff GFLOP/s",
           "of roof");
    for (int p = 0; p < TRAIN_PHASES; p++) printf(" %9s", phase_names[p]);
    printf("\n");
    int rc = 0;
    for (int k = 0; k < n_topo && !rc; k++) {
        int conv = topos[k][0] == 'C';
        int m = images ? images : quick ? 10240 : 60000;
        if (conv && !images) m /= 10;
        bench_train_result res;
        double macs = 0;
        if ((rc = bench_train_epochs(topos[k], &train, m, 2, &res, &macs))) {
            fprintf(stderr, "bnas bench train: %s: %s\n", topos[k], bn_errmsg());
            break;
        }
        double gf = 6.0 * macs * res.images_per_s / 1e9, sum = 0;
        for (int p = 0; p < TRAIN_PHASES; p++) sum += res.phase[p];
        printf("%-24s %7d %8.3f %9.2f %10.0f %11.1f %6.1f%%", topos[k], m < train.n ? m : train.n, res.seconds,
               60000.0 / res.images_per_s, res.images_per_s, gf, 100.0 * gf / roof);
        for (int p = 0; p < TRAIN_PHASES; p++) printf(" %8.1f%%", sum > 0 ? 100.0 * res.phase[p] / sum : 0.0);
        printf("\n");
    }
    par_set_threads(0);
    data_free(&train), data_free(&test);
    return rc ? 1 : 0;
}

/* Float evaluation path images/s over `images` images. */
static double bench_float_eval(const net *n, const dataset *d, int images) {
    int *pred = bn_malloc(sizeof(int) * 500);
    size_t img = (size_t)d->h * d->w * d->c;
    double t0 = par_seconds();
    for (int i = 0; i < images; i += 500) net_predict(n, pred, d->pixels + (size_t)i * img, 500);
    double t = par_seconds() - t0;
    free(pred);
    return images / t;
}

static const char *bench_usage =
    "usage: bnas bench [--quick] [--data DIR]\n"
    "       bnas bench train [--help]   the per-phase breakdown of a training epoch\n"
    "Measures in one run, at 1 thread and at all threads: the sgemm roof (GFLOP/s);\n"
    "the parallel ceiling (speed-up of a register-only loop: what the cores can give);\n"
    "the fixed-order gemm that training uses (engine/gemm.h) beside it;\n"
    "for FC512-FC512 and VGG3 (C64-MP2-C64-MP2-FC2048): training images/s at batch 256\n"
    "and effective GFLOP/s (6 x MACs per image), the same epoch with OpenBLAS's sgemm in\n"
    "place of the fixed-order gemm (faster on some CPUs, but not reproducible) and the\n"
    "cost of reproducibility (time with gemm / time with OpenBLAS - 1), the float evaluation path's and the\n"
    "packed inference's images/s and their ratio; then fault injection on the packed\n"
    "model against the float path with the same flips.\n";

int cmd_bench(int argc, char **argv) {
    const char *dir = NULL;
    int quick = 0;
    if (argc > 1 && !strcmp(argv[1], "train")) return cmd_bench_train(argc - 1, argv + 1);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(bench_usage, stdout); return 0; }
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) dir = argv[++i];
        else { fprintf(stderr, "bnas bench: unknown option '%s'\n", argv[i]); return 2; }
    }
    dataset train = {0}, test = {0};
    if (data_load_fashion_mnist(&train, &test, dir)) {
        fprintf(stderr, "bnas bench: %s\n", bn_errmsg());
        return 1;
    }
    int all = 0;
    par_set_threads(0);
    all = par_threads();
    const struct { const char *name, *topo; int train_images, float_images; } nets[] = {
        {"FC512-FC512", "FC512-FC512", quick ? 5120 : 20480, quick ? 2000 : 10000},
        {"VGG3", "C64-MP2-C64-MP2-FC2048", quick ? 512 : 2560, quick ? 500 : 2000},
    };
    int thread_counts[2] = {1, all};
    int n_tc = all > 1 ? 2 : 1;
    printf("bnas bench: FashionMNIST, batch 256, %d cores\n\n", all);
    double roof[2];
    for (int t = 0; t < n_tc; t++) {
        par_set_threads(thread_counts[t]);
        roof[t] = bench_sgemm(quick ? 1024 : 2048);
        printf("sgemm roof          %d thread%s  %8.1f GFLOP/s (OpenBLAS)\n", thread_counts[t], thread_counts[t] > 1 ? "s" : " ", roof[t]);
        printf("fixed-order gemm    %d thread%s  %8.1f GFLOP/s (%s kernels)\n", thread_counts[t], thread_counts[t] > 1 ? "s" : " ",
               bench_gemm(quick ? 1024 : 2048), gemm_kernels_name(NULL));
    }
    if (n_tc > 1) {
        double t1 = bench_spin(1), tn = bench_spin(all);
        printf("parallel ceiling    %d threads  %8.2fx  (register-only loop: %d threads' work in %.2f s, 1 thread's in %.2f s)\n",
               all, all * t1 / tn, all, tn, t1);
    }
    printf("\n%-12s %-7s %11s %11s %9s %10s %6s %11s %12s %8s\n", "network", "threads", "train img/s", "eff GFLOP/s",
           "of roof", "blas img/s", "cost", "float img/s", "packed img/s", "ratio");
    for (size_t k = 0; k < sizeof nets / sizeof nets[0]; k++) {
        arch a;
        net n;
        if (arch_parse(&a, nets[k].topo) || net_create(&n, &a, 1, 28, 28, 10)) {
            fprintf(stderr, "bnas bench: %s\n", bn_errmsg());
            return 1;
        }
        pcg32 g;
        rng_keyed(&g, 1, 0, RNG_INIT);
        net_init_params(&n, &g);
        packed_net p;
        if (packed_from_net(&p, &n)) {
            fprintf(stderr, "bnas bench: %s\n", bn_errmsg());
            return 1;
        }
        for (int t = 0; t < n_tc; t++) {
            par_set_threads(thread_counts[t]);
            double ips = 0, macs = 0, blas_ips = 0;
            matmul_use_blas(1);
            int brc = bench_train(nets[k].topo, &train, nets[k].train_images, &blas_ips, &macs);
            matmul_use_blas(0);
            if (brc || bench_train(nets[k].topo, &train, nets[k].train_images, &ips, &macs)) {
                fprintf(stderr, "bnas bench: %s\n", bn_errmsg());
                return 1;
            }
            double fe = bench_float_eval(&n, &test, nets[k].float_images);
            double pk = packed_bench_images_per_s(&p, test.pixels, test.n, thread_counts[t]);
            double gf = 6.0 * macs * ips / 1e9;
            printf("%-12s %-7d %11.0f %11.1f %8.1f%% %10.0f %5.1f%% %11.0f %12.0f %7.1fx\n", nets[k].name,
                   thread_counts[t], ips, gf, 100.0 * gf / roof[t], blas_ips, 100.0 * (blas_ips / ips - 1.0), fe, pk,
                   pk / fe);
        }
        packed_free(&p);
        net_free(&n);
    }
    par_set_threads(0);
    printf("\n");
    if (bench_fault(&test, quick)) return 1;
    printf("\n");
    if (bench_errmodel(&test, quick)) return 1;
    data_free(&train), data_free(&test);
    return 0;
}
