/*
** Helpers shared by the cmocka tests (header only: each test is one executable).
** Include it after <cmocka.h>: some helpers assert. tmpdir_make needs the test
** to define _POSIX_C_SOURCE 200809L before its first include (mkdtemp).
*/
#ifndef BNAS_TESTUTIL_H
#define BNAS_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "engine/data.h"
#include "engine/err.h"
#include "engine/train.h"
#include "evaluators/evaluator.h"
#include "nas/store.h"

/* 1 under the sanitizer build (BNAS_SANITIZED set and not "0"): heavy tests
   shrink their sizes there, never their assertions. */
static inline int sanitized(void) {
    const char *s = getenv("BNAS_SANITIZED");
    return s && *s && strcmp(s, "0") != 0;
}

/* train_run with the perturbations of r's keys (eval_perturbs), as the
   bnas commands train: BN_EARG for bad perturbation keys. */
static inline int train_recipe_run(net *n, const dataset *train, const dataset *val, const train_recipe *r,
                                   train_callback cb, void *user) {
    perturb_set ps;
    int rc = eval_perturbs(r, &ps);
    return rc ? rc : train_run(n, train, val, r, &ps, cb, user);
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
    return train_run(n, &tr, NULL, &r, NULL, NULL, NULL) ? -1 : 0;
}

/* Loads FashionMNIST into train and test; on failure prints the error to
   stderr (a group setup has no other way to say why). 0 or -1. */
static inline int load_fashion_mnist(dataset *train, dataset *test) {
    if (data_load_fashion_mnist(train, test, NULL) == BN_OK) return 0;
    fprintf(stderr, "%s\n", bn_errmsg());
    return -1;
}

/* ---- Files, directories and the bnas binary ---- */

/* The bnas binary under test: $BNAS_BIN (ctest sets it), else ./bnas (a test
   run by hand from the build folder). */
static inline const char *bnas_bin(void) {
    const char *bin = getenv("BNAS_BIN");
    return bin && *bin ? bin : "./bnas";
}

/* Exit code of the shell command cmd; fails the test if it did not exit
   normally (killed by a signal, or no shell). */
static inline int sh(const char *cmd) {
    int st = system(cmd);
    assert_true(st != -1 && WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* The whole file at path in a malloc'd buffer with a NUL after its last byte
   (the caller frees it); its length in *size unless size is NULL (0 if NULL is
   returned). NULL if the file cannot be opened; a short read fails the test. */
static inline char *slurp(const char *path, size_t *size) {
    if (size) *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    assert_true(n >= 0);
    char *p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    p[n] = 0;
    fclose(f);
    if (size) *size = (size_t)n;
    return p;
}

/* Writes text to path (replacing it); any error fails the test. */
static inline void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

#if defined(_POSIX_C_SOURCE) && _POSIX_C_SOURCE >= 200809L
/* Makes a new empty directory $TMPDIR/bnas_test_<tag>_XXXXXX (/tmp if TMPDIR
   is unset or empty) and puts its path in dir (cap bytes). 0 or -1. */
static inline int tmpdir_make(char *dir, size_t cap, const char *tag) {
    const char *base = getenv("TMPDIR");
    int len = snprintf(dir, cap, "%s/bnas_test_%s_XXXXXX", base && *base ? base : "/tmp", tag);
    if (len < 0 || (size_t)len >= cap) return -1;
    return mkdtemp(dir) ? 0 : -1;
}
#endif

#if defined(_POSIX_C_SOURCE) && _POSIX_C_SOURCE >= 200809L
#include <unistd.h>
/* Starts `bnas args...` (the binary under test) with the environment pairs
   env (NAME, VALUE, ..., NULL; env itself may be NULL) set, stdout and stderr
   to /dev/null; returns its pid. args ends with NULL, at most 14 entries. */
static inline pid_t bnas_spawn(const char *const *env, const char *const *args) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        for (int i = 0; env && env[i]; i += 2) setenv(env[i], env[i + 1], 1);
        const char *argv[16];
        int n = 0;
        argv[n++] = bnas_bin();
        for (int i = 0; args[i] && n < 15; i++) argv[n++] = args[i];
        argv[n] = NULL;
        FILE *devnull = fopen("/dev/null", "w");
        if (devnull) {
            dup2(fileno(devnull), 1);
            dup2(fileno(devnull), 2);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}
#endif

/* The study file db as text (store_dump: every row but the timing columns);
   the caller frees it. Any error fails the test. */
static inline char *study_dump_of(const char *db) {
    store *st = NULL;
    assert_int_equal(store_open(&st, db, 1), BN_OK);
    char *d = NULL;
    assert_int_equal(store_dump(st, &d), BN_OK);
    store_close(st);
    return d;
}

/* Removes the directory dir and everything in it. 0 or -1. */
static inline int tmpdir_remove(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- Study specs ---- */

/* Writes into buf (cap bytes) the spec of a real-training study: small FC
   nets (1-2 layers, 16-64 wide, ce or mhl loss, flip_rate 0 or 0.05) trained
   2 epochs on 2000 FashionMNIST images (about 30-80 ms a trial), NSGA-II in
   batches of 4, objectives val_acc, model_bytes and fault.acc. name, seed,
   trials and the evaluators list (YAML flow text) are the caller's. */
static inline void real_spec(char *buf, size_t cap, const char *name, int seed, int trials,
                             const char *evaluators) {
    int len = snprintf(buf, cap,
                       "name: %s\n"
                       "seed: %d\n"
                       "threads: 2\n"
                       "data: {name: fashion_mnist, train: 2000, val: 500, test: 500}\n"
                       "search_space:\n"
                       "  fc_layers: {type: int, low: 1, high: 2}\n"
                       "  fc_width: [16, 24, 32, 48, 64]\n"
                       "  loss: [ce, mhl]\n"
                       "  mhl_b: [32, 128]\n"
                       "  flip_rate: [0, 0.05]\n"
                       "  epochs: 2\n"
                       "  batch: 100\n"
                       "strategy: {name: nsga2, batch: 4, population: 6}\n"
                       "budget: {trials: %d}\n"
                       "objectives:\n"
                       "  - {metric: val_acc, direction: max}\n"
                       "  - {metric: model_bytes, direction: min, ref: 300000}\n"
                       "  - {metric: fault.acc, direction: max}\n"
                       "evaluators: %s\n",
                       name, seed, trials, evaluators);
    assert_true(len > 0 && (size_t)len < cap);
}

#endif /* BNAS_TESTUTIL_H */
