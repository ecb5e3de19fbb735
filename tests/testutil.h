/*
** Helpers shared by the cmocka tests (header only: each test is one executable).
*/
#ifndef BNAS_TESTUTIL_H
#define BNAS_TESTUTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/train.h"

/* 1 under the sanitizer build (BNAS_SANITIZED set and not "0"): heavy tests
   shrink their sizes there, never their assertions. */
static inline int sanitized(void) {
    const char *s = getenv("BNAS_SANITIZED");
    return s && *s && strcmp(s, "0") != 0;
}

/* Creates n for FashionMNIST-shaped input with topology topo and trains it one
   epoch (default recipe, seed) on the first n_train images of train. 0 or -1. */
static inline int train_small_on(net *n, const dataset *train, const char *topo, int n_train, uint64_t seed) {
    arch a;
    if (arch_parse(&a, topo) || net_create(n, &a, 1, 28, 28, 10)) return -1;
    pcg32 g;
    rng_keyed(&g, seed, 0, RNG_INIT);
    net_init_params(n, &g);
    train_recipe r = train_recipe_default();
    r.epochs = 1;
    r.seed = seed;
    dataset tr = data_slice(train, 0, n_train);
    return train_run(n, &tr, NULL, &r, NULL, NULL) ? -1 : 0;
}

#endif /* BNAS_TESTUTIL_H */
