/*
** `bnas encodings`: searches the smallest floating-point formats for the Bop
** momentum whose lost-update fraction and accuracy stay within a budget of
** FP32's, and reports the training-memory model and the time of emulation.
** With --memory FORMAT it only prints the memory model.
*/
#define _POSIX_C_SOURCE 200809L
#include "nas/commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/bop.h"
#include "engine/data.h"
#include "engine/err.h"
#include "engine/parallel.h"
#include "evaluators/bop_encoding.h"

static const char *usage =
    "usage: bnas encodings [options]\n"
    "Bop momentum-encoding search: trains with FP32 momentum (recording a gradient trace), replays\n"
    "the trace in every format F(e, f, bias) from --min-bits to --max-bits bits, and trains the\n"
    "narrowest formats whose lost-update fraction is within --lost-budget of FP32's until one\n"
    "keeps the validation accuracy within --acc-budget. Prints the training-memory model.\n"
    "  --topology STR       hidden layers (default FC2048-FC2048; VGG3: C64-MP2-C64-MP2-FC2048)\n"
    "  --data DIR           FashionMNIST folder (default: the Debian package's)\n"
    "  --images N           training images (default: all but --val)\n"
    "  --val N              validation images carved from the training set (default 5000)\n"
    "  --epochs N (default 1)   --batch N (default 100)   --seed N (default 1)\n"
    "  --lr X               Adam rate of batch norm and scale (default 1e-3)\n"
    "  --bop-gamma X (default 1e-2)   --bop-tau X (default 1e-6)\n"
    "  --lost-budget X      replay lost-update fraction allowed above FP32's (default 0.01)\n"
    "  --acc-budget X       validation accuracy loss allowed (default 0.01 = 1 point)\n"
    "  --min-bits N --max-bits N   candidate widths (default 6..16)\n"
    "  --max-confirm N      candidate trainings at most (default 3)\n"
    "  --trace N            weights sampled into the trace (default 4096)\n"
    "  --no-subnormals      also try formats without subnormals\n"
    "  --mem-batch N        batch of the memory model (default: --batch)\n"
    "  --time-images N      afterwards, time one epoch on N images with fp32 and the result,\n"
    "                       alternately (fp32, F, fp32, F, ...), and report the best of each\n"
    "  --time-reps N        timings of each format (default 3)\n"
    "  --time F             skip the search: only time fp32 against format F (with --time-images,\n"
    "                       default 2000)\n"
    "  --memory F           only print the memory model of format F (e.g. e5m10, fp32) and exit\n"
    "  --threads N          (default: all cores)\n";

static void print_line(void *user, const char *line) {
    (void)user;
    printf("%s\n", line);
    fflush(stdout);
}

static void print_memory(const char *label, const bop_memory *m) {
    printf("  %-8s weights %10.0f  momentum %10.0f  bn %8.0f  activations %10.0f  total %10.0f bytes\n", label,
           m->weights, m->momentum, m->bn, m->activations, m->total);
}

/* CPU time of the process: with one thread, the cost of the work itself,
   whatever else the machine runs (wall time is reported beside it). */
static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Times training with fp32 momentum against F: one epoch on `images` images,
   alternately (fp32, F, fp32, F, ...) reps times each, best of each; then the
   Bop step alone on the net (20 steps, best of 5 rounds each). */
static int time_formats(const bopenc_config *c, const fpfmt *F, const dataset *tr, const dataset *val, int images,
                        int reps) {
    char name[32];
    fpfmt_name(F, name, sizeof name);
    bopenc_config tc = *c;
    tc.recipe.epochs = 1;
    fpfmt F32 = fpfmt_binary32();
    dataset ts = data_slice(tr, 0, images < tr->n ? images : tr->n);
    double best[2] = {1e300, 1e300}, bcpu[2] = {1e300, 1e300}, acc, lost, secs;
    for (int rep = 0; rep < 2 * (reps > 0 ? reps : 1); rep++) {
        double c0 = cpu_seconds();
        int rc = bopenc_train(&tc, rep % 2 ? F : &F32, &ts, val, &acc, &lost, &secs);
        if (rc) return rc;
        double cs = cpu_seconds() - c0;
        printf("timing: %s wall %.2f s, cpu %.2f s\n", rep % 2 ? name : "fp32", secs, cs);
        fflush(stdout);
        if (secs < best[rep % 2]) best[rep % 2] = secs;
        if (cs < bcpu[rep % 2]) bcpu[rep % 2] = cs;
    }
    printf("result: one training epoch on %d images (best of %d, %d threads): fp32 momentum cpu %.2f s (wall %.2f), "
           "%s cpu %.2f s (wall %.2f): %.3fx cpu time (%.3fx wall)\n",
           ts.n, reps > 0 ? reps : 1, par_threads(), bcpu[0], best[0], name, bcpu[1], best[1], bcpu[1] / bcpu[0],
           best[1] / best[0]);
    /* the optimizer step alone, on random gradients of the size of this net */
    net n;
    int rc = net_create(&n, &c->topology, tr->c, tr->h, tr->w, tr->classes);
    if (rc) return rc;
    pcg32 g;
    rng_keyed(&g, c->recipe.seed, 0, RNG_INIT);
    net_init_params(&n, &g);
    float *grads = bn_malloc(sizeof(float) * n.n_params);
    for (size_t i = 0; i < n.n_params; i++) grads[i] = (float)(2e-5 * (pcg32_normal(&g) + 0.2));
    double step[2] = {1e300, 1e300};
    size_t nw = 0;
    for (int round = 0; round < 10; round++) {
        bop_state b;
        bop_create(&b, &n, round % 2 ? F : &F32);
        nw = b.n;
        double t0 = cpu_seconds();
        for (int k = 0; k < 20; k++) bop_step(&b, &n, grads, c->recipe.bop_gamma, c->recipe.bop_tau);
        double t = (cpu_seconds() - t0) / 20;
        if (t < step[round % 2]) step[round % 2] = t;
        bop_free(&b);
    }
    printf("result: Bop step alone (cpu time) on %zu weights: fp32 %.2f ms (%.2f ns/weight), %s %.2f ms (%.2f ns/weight): %.3fx\n",
           nw, 1e3 * step[0], 1e9 * step[0] / (double)nw, name, 1e3 * step[1], 1e9 * step[1] / (double)nw,
           step[1] / step[0]);
    free(grads);
    net_free(&n);
    return BN_OK;
}

int cmd_encodings(int argc, char **argv) {
    const char *topology = "FC2048-FC2048", *dir = NULL, *memory_only = NULL, *time_only = NULL;
    int images = 0, n_val = 5000, threads = 0, time_images = 0, time_reps = 3;
    bopenc_config c = bopenc_config_default();
    c.recipe.epochs = 1, c.recipe.batch = 100, c.recipe.bop_gamma = 1e-2f, c.recipe.bop_tau = 1e-6f;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE() do { if (!v) { fprintf(stderr, "bnas encodings: %s needs a value\n", a); return 2; } i++; } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(usage, stdout); return 0; }
        else if (!strcmp(a, "--topology")) { NEED_VALUE(); topology = v; }
        else if (!strcmp(a, "--data")) { NEED_VALUE(); dir = v; }
        else if (!strcmp(a, "--images")) { NEED_VALUE(); images = atoi(v); }
        else if (!strcmp(a, "--val")) { NEED_VALUE(); n_val = atoi(v); }
        else if (!strcmp(a, "--epochs")) { NEED_VALUE(); c.recipe.epochs = atoi(v); }
        else if (!strcmp(a, "--batch")) { NEED_VALUE(); c.recipe.batch = atoi(v); }
        else if (!strcmp(a, "--seed")) { NEED_VALUE(); c.recipe.seed = strtoull(v, NULL, 10); }
        else if (!strcmp(a, "--lr")) { NEED_VALUE(); c.recipe.lr = strtof(v, NULL); }
        else if (!strcmp(a, "--bop-gamma")) { NEED_VALUE(); c.recipe.bop_gamma = strtof(v, NULL); }
        else if (!strcmp(a, "--bop-tau")) { NEED_VALUE(); c.recipe.bop_tau = strtof(v, NULL); }
        else if (!strcmp(a, "--lost-budget")) { NEED_VALUE(); c.lost_budget = strtod(v, NULL); }
        else if (!strcmp(a, "--acc-budget")) { NEED_VALUE(); c.acc_budget = strtod(v, NULL); }
        else if (!strcmp(a, "--min-bits")) { NEED_VALUE(); c.min_bits = atoi(v); }
        else if (!strcmp(a, "--max-bits")) { NEED_VALUE(); c.max_bits = atoi(v); }
        else if (!strcmp(a, "--max-confirm")) { NEED_VALUE(); c.max_confirm = atoi(v); }
        else if (!strcmp(a, "--trace")) { NEED_VALUE(); c.trace_weights = atoi(v); }
        else if (!strcmp(a, "--no-subnormals")) c.try_no_subnormals = 1;
        else if (!strcmp(a, "--mem-batch")) { NEED_VALUE(); c.mem_batch = atoi(v); }
        else if (!strcmp(a, "--time-images")) { NEED_VALUE(); time_images = atoi(v); }
        else if (!strcmp(a, "--time-reps")) { NEED_VALUE(); time_reps = atoi(v); }
        else if (!strcmp(a, "--time")) { NEED_VALUE(); time_only = v; }
        else if (!strcmp(a, "--memory")) { NEED_VALUE(); memory_only = v; }
        else if (!strcmp(a, "--threads")) { NEED_VALUE(); threads = atoi(v); }
        else { fprintf(stderr, "bnas encodings: unknown option '%s' (see bnas encodings --help)\n", a); return 2; }
#undef NEED_VALUE
    }
    int rc = arch_parse(&c.topology, topology);
    if (rc) { fprintf(stderr, "bnas encodings: %s\n", bn_errmsg()); return 2; }
    if (memory_only) {
        fpfmt F, F32 = fpfmt_binary32();
        net n;
        if (fpfmt_parse(&F, memory_only) || net_create(&n, &c.topology, 1, 28, 28, 10)) {
            fprintf(stderr, "bnas encodings: %s\n", bn_errmsg());
            return 2;
        }
        int mb = c.mem_batch > 0 ? c.mem_batch : c.recipe.batch;
        bop_memory m32 = bop_memory_model(&n, &F32, mb), mf = bop_memory_model(&n, &F, mb);
        printf("training memory of %s on 28x28x1, batch %d:\n", topology, mb);
        print_memory("fp32", &m32);
        print_memory(memory_only, &mf);
        printf("  reduction %.3fx (weights + momentum only: %.3fx)\n", m32.total / mf.total,
               (m32.weights + m32.momentum) / (mf.weights + mf.momentum));
        net_free(&n);
        return 0;
    }
    par_set_threads(threads);
    dataset full = {0}, test = {0}, train = {0}, val = {0};
    rc = data_load_fashion_mnist(&full, &test, dir);
    if (rc) goto done;
    if (n_val < 1 || n_val >= full.n) {
        rc = bn_error(BN_EARG, "--val %d: must be in 1..%d", n_val, full.n - 1);
        goto done;
    }
    rc = data_split(&train, &val, &full, n_val, c.recipe.seed);
    if (rc) goto done;
    dataset tr = images > 0 && images < train.n ? data_slice(&train, 0, images) : train;
    if (time_only) {
        fpfmt F;
        rc = fpfmt_parse(&F, time_only);
        if (rc) goto done;
        printf("bnas encodings: timing %s, batch %d, %d threads\n", topology, c.recipe.batch, par_threads());
        rc = time_formats(&c, &F, &tr, &val, time_images > 0 ? time_images : 2000, time_reps);
        goto done;
    }
    c.log = print_line;
    printf("bnas encodings: %s, %d training and %d validation images, %d epoch(s), batch %d, gamma %g, tau %g, "
           "%d threads\n",
           topology, tr.n, val.n, c.recipe.epochs, c.recipe.batch, c.recipe.bop_gamma, c.recipe.bop_tau, par_threads());
    bopenc_result r;
    rc = bopenc_search(&c, &tr, &val, &r);
    if (rc) goto done;
    printf("\nscreened %d formats\n", r.screened);
    printf("memory model (batch %d):\n", c.mem_batch > 0 ? c.mem_batch : c.recipe.batch);
    print_memory("fp32", &r.mem_fp32);
    if (r.found) {
        char name[32];
        fpfmt_name(&r.best.fmt, name, sizeof name);
        print_memory(name, &r.mem_best);
        printf("result: %s (%d bits): val accuracy %.2f%% vs fp32 %.2f%% (%+.2f points), lost updates %.4f%% vs %.4f%%\n",
               name, fpfmt_bits(&r.best.fmt), 100 * r.best.acc, 100 * r.acc_fp32, 100 * (r.best.acc - r.acc_fp32),
               100 * r.best.lost, 100 * r.lost_fp32);
        printf("result: training memory %.3fx smaller than fp32 momentum (weights + momentum only: %.3fx); "
               "training time %.2fx fp32's (%.1f s vs %.1f s)\n",
               r.mem_fp32.total / r.mem_best.total,
               (r.mem_fp32.weights + r.mem_fp32.momentum) / (r.mem_best.weights + r.mem_best.momentum),
               r.best.seconds / r.seconds_fp32, r.best.seconds, r.seconds_fp32);
        if (time_images > 0) {
            rc = time_formats(&c, &r.best.fmt, &tr, &val, time_images, time_reps);
            if (rc) goto done;
        }
    } else {
        printf("result: no format up to %d bits was accepted\n", c.max_bits);
    }
done:
    if (rc) fprintf(stderr, "bnas encodings: %s\n", bn_errmsg());
    data_free(&train), data_free(&val), data_free(&full), data_free(&test);
    return rc ? 1 : 0;
}
