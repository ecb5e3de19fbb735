/*
** bench_errmodel(), the error-model lines of `bnas bench`: images/s of the
** hooked driver (engine/errmodel.h) against the hook-free fast path, on
** FC512-FC512 and VGG3 with random weights.
*/
#include "nas/commands.h"

#include <stdio.h>

#include "engine/arch.h"
#include "engine/err.h"
#include "engine/errmodel.h"
#include "engine/net.h"
#include "engine/packed.h"
#include "engine/parallel.h"
#include "engine/rng.h"

/* One line: images/s of topo (random weights, seed 1) under m, hooked against fast path. */
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
