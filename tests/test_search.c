/*
** The search machinery with the synthetic trial function (nas/trial_synth.c;
** the real trainer is not involved): thread-count independence, stop and
** resume, failing trials, metric limits failing a trial (not aborting),
** space exhaustion, and evolution against random search on final hypervolume.
*/
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/err.h"
#include "engine/model.h"
#include "engine/net.h"
#include "engine/train.h"
#include "nas/search.h"
#include "nas/spec.h"
#include "nas/store.h"
#include "tests/testutil.h"

static const char *spec_fmt =
    "seed: %d\n"
    "data: {name: synthetic}\n"
    "search_space:\n"
    "  conv_blocks: {type: int, low: 0, high: 2}\n"
    "  conv_channels: [8, 16, 32, 64]\n"
    "  conv_pool: [0, 1]\n"
    "  fc_layers: {type: int, low: 0, high: 2}\n"
    "  fc_width: [16, 32, 64, 128, 256, 512]\n"
    "  loss: [ce, mhl]\n"
    "  mhl_b: {type: log, low: 8, high: 256}\n"
    "  flip_rate: [0, 0.02, 0.05]\n"
    "  epochs: [1, 2, 4]\n"
    "strategy: {name: %s, batch: %d, population: %d, sample: 4, mutation_prob: 0.2}\n"
    "budget: {trials: %d}\n"
    "objectives:\n"
    "  - {metric: val_acc, direction: max, ref: 0.5}\n"
    "  - {metric: model_bytes, direction: min, ref: 400000}\n"
    "  - {metric: memory.acc, direction: max, ref: 0}\n"
    "constraints: {max_model_bytes: 400000}\n"
    "evaluators: [{name: memory}]\n";

static void make_spec(spec *s, const char *strategy, int seed, int batch, int pop, int trials) {
    char text[4096];
    snprintf(text, sizeof text, spec_fmt, seed, strategy, batch, pop, trials);
    int rc = spec_parse(s, "search.yaml", text, NULL, NULL);
    if (rc) fprintf(stderr, "%s\n", bn_errmsg());
    assert_int_equal(rc, BN_OK);
}

static char tmpdir[256];

static void db_path(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s.db", tmpdir, name);
    unlink(buf);
    char side[400];
    snprintf(side, sizeof side, "%s-wal", buf);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", buf);
    unlink(side);
}

/* Runs a search to its end (or stop_after commits); returns the rc and the dump. */
static int run_search(const spec *s, const char *name, int threads, int stop_after, char **dump,
                      int fresh) {
    char path[300];
    if (fresh) db_path(path, sizeof path, name);
    else snprintf(path, sizeof path, "%s/%s.db", tmpdir, name);
    store *st = NULL;
    int rc = fresh ? store_create(&st, path, s) : store_open(&st, path, 0);
    assert_int_equal(rc, BN_OK);
    search_opts o;
    memset(&o, 0, sizeof o);
    o.fn = trial_synthetic;
    o.threads = threads;
    o.stop_after = stop_after;
    rc = search_run(st, s, &o);
    if (dump) assert_int_equal(store_dump(st, dump), BN_OK);
    store_close(st);
    return rc;
}

static double final_hv(const char *dump) {
    /* Last line of the hypervolume section: trial|completed|front|hv. */
    const char *sec = strstr(dump, "FROM hypervolume");
    assert_non_null(sec);
    const char *last = NULL;
    for (const char *p = strchr(sec, '\n'); p && p[1]; p = strchr(p + 1, '\n')) last = p + 1;
    assert_non_null(last);
    const char *bar = strrchr(last, '|');
    return atof(bar + 1);
}

static int count_state(const char *dump, const char *state) {
    int n = 0;
    char pat[32];
    snprintf(pat, sizeof pat, "|%s|", state);
    for (const char *p = dump; (p = strstr(p, pat)); p++) n++;
    return n;
}

static void test_threads_equal(void **state) {
    (void)state;
    spec s;
    make_spec(&s, "nsga2", 3, 6, 6, 30);
    char *d1, *d2;
    assert_int_equal(run_search(&s, "t1", 1, 0, &d1, 1), BN_OK);
    assert_int_equal(run_search(&s, "t2", 2, 0, &d2, 1), BN_OK);
    assert_int_equal(count_state(d1, "COMPLETE"), 30);
    assert_string_equal(d1, d2);
    free(d1);
    free(d2);
    spec_free(&s);
}

static void test_stop_and_resume_equal(void **state) {
    (void)state;
    const char *strategies[] = {"random", "evolution", "nsga2"};
    for (int k = 0; k < 3; k++) {
        spec s;
        make_spec(&s, strategies[k], 5, 4, 6, 24);
        char *full, *resumed;
        assert_int_equal(run_search(&s, "full", 2, 0, &full, 1), BN_OK);
        /* Stop after 3, then 7 more commits (mid-batch), then finish with 1 thread. */
        assert_int_equal(run_search(&s, "part", 2, 3, NULL, 1), BN_EINTR);
        assert_int_equal(run_search(&s, "part", 2, 7, NULL, 0), BN_EINTR);
        assert_int_equal(run_search(&s, "part", 1, 0, &resumed, 0), BN_OK);
        assert_string_equal(full, resumed);
        free(full);
        free(resumed);
        spec_free(&s);
    }
}

static void test_failures_recorded(void **state) {
    (void)state;
    setenv("BNAS_SYNTHETIC_FAIL", "4", 1);
    spec s;
    make_spec(&s, "evolution", 7, 4, 6, 20);
    char *d;
    assert_int_equal(run_search(&s, "fail", 2, 0, &d, 1), BN_OK);
    unsetenv("BNAS_SYNTHETIC_FAIL");
    int fails = count_state(d, "FAIL"), done = count_state(d, "COMPLETE");
    assert_true(fails >= 4);
    assert_int_equal(fails + done, 20); /* failures count against the budget, the search goes on */
    assert_non_null(strstr(d, "synthetic failure of trial "));
    free(d);
    spec_free(&s);
}

/* A trial function that reports too many metrics (trial 1), a too-long
   metric name (trial 2) or otherwise the synthetic metrics. */
static int metric_abuse(void *user, const spec *s, const space_config *cfg, int number, uint64_t seed,
                        trial_result *out) {
    int rc = trial_synthetic(user, s, cfg, number, seed, out);
    if (rc || number > 2 || number == 0) return rc;
    char name[200];
    for (int i = 0; i < (number == 1 ? 300 : 1) && !rc; i++) {
        if (number == 1) snprintf(name, sizeof name, "extra.m%d", i);
        else memset(name, 'x', 150), name[150] = 0;
        rc = trial_result_set(out, name, i);
    }
    if (rc) snprintf(out->fail_reason, sizeof out->fail_reason, "%s", bn_errmsg());
    return rc;
}

/* Too many metrics or a too-long name: a FAIL row with the reason, not an abort. */
static void test_metric_limits_fail_trial(void **state) {
    (void)state;
    spec s;
    make_spec(&s, "random", 4, 3, 6, 6);
    char path[300];
    db_path(path, sizeof path, "metrics");
    store *st = NULL;
    assert_int_equal(store_create(&st, path, &s), BN_OK);
    search_opts o;
    memset(&o, 0, sizeof o);
    o.fn = metric_abuse;
    o.threads = 2;
    assert_int_equal(search_run(st, &s, &o), BN_OK);
    char *d;
    assert_int_equal(store_dump(st, &d), BN_OK);
    store_close(st);
    assert_int_equal(count_state(d, "FAIL"), 2);
    assert_non_null(strstr(d, "|FAIL|"));
    assert_non_null(strstr(d, "too many metrics: 'extra.m"));
    assert_non_null(strstr(d, "(at most 128)"));
    assert_non_null(strstr(d, "is longer than 63 characters"));
    free(d);
    spec_free(&s);
}

static void test_exhaustion_and_no_duplicates(void **state) {
    (void)state;
    /* 2 widths x 2 losses = 4 configurations; a budget of 10 cannot be met. */
    const char *text =
        "data: {name: synthetic}\n"
        "search_space: {fc_width: [16, 32], loss: [ce, mhl], mhl_b: 64}\n"
        "strategy: {name: evolution, batch: 2, population: 2, sample: 2}\n"
        "budget: {trials: 10}\n"
        "objectives: [{metric: val_acc, direction: max}]\n";
    spec s;
    assert_int_equal(spec_parse(&s, "small.yaml", text, NULL, NULL), BN_OK);
    char *d;
    int rc = run_search(&s, "small", 2, 0, &d, 1);
    assert_int_equal(rc, BN_EARG);
    assert_non_null(strstr(bn_errmsg(), "exhausted"));
    assert_int_equal(count_state(d, "COMPLETE"), 4);
    free(d);
    spec_free(&s);
}

static void test_evolution_beats_random(void **state) {
    (void)state;
    const int seeds = 3, trials = 160;
    double hv[3] = {0, 0, 0};
    const char *strategies[] = {"random", "evolution", "nsga2"};
    for (int k = 0; k < 3; k++)
        for (int seed = 1; seed <= seeds; seed++) {
            spec s;
            make_spec(&s, strategies[k], seed, 8, 16, trials);
            char *d;
            assert_int_equal(run_search(&s, "cmp", 2, 0, &d, 1), BN_OK);
            hv[k] += final_hv(d) / seeds;
            free(d);
            spec_free(&s);
        }
    printf("mean final hypervolume over %d seeds, %d trials: random %.6g, evolution %.6g, nsga2 %.6g\n",
           seeds, trials, hv[0], hv[1], hv[2]);
    assert_true(hv[1] > hv[0]);
    assert_true(hv[2] > hv[0]);
}


/* What the Bop test reads back from the store. */
typedef struct {
    store *st;
    int complete, bop, adam, narrow; /* trials COMPLETE; with Bop, Adam; with e4m7b28 momentum */
    double mem[3];                   /* train_memory of Adam, Bop fp32, Bop e4m7b28 */
} bop_seen;

static int check_bop_trial(void *user, const store_trial *t) {
    bop_seen *b = user;
    assert_int_equal(t->state, TRIAL_COMPLETE);
    b->complete++;
    void *blob = NULL;
    size_t size = 0;
    char fmt[32];
    assert_int_equal(store_get_model(b->st, t->number, &blob, &size, fmt, sizeof fmt), BN_OK);
    net n;
    train_recipe r;
    assert_int_equal(model_load_mem(&n, &r, blob, size, "trial"), BN_OK);
    /* The stored configuration and the recipe the trial trained with agree. */
    if (strstr(t->config, "|opt=bop|")) {
        b->bop++;
        assert_int_equal(r.optimizer, OPT_BOP);
        assert_float_equal(r.bop_gamma, 0.01f, 0);
        assert_non_null(strstr(t->config, "|gamma=0.01|tau=1e-06|"));
        if (strstr(t->config, "|mom=e4m7b28")) {
            b->narrow++;
            assert_int_equal(r.mom_e, 4);
            assert_int_equal(r.mom_f, 7);
            assert_int_equal(r.mom_bias, 28);
        } else {
            assert_non_null(strstr(t->config, "|mom=e8m23b127"));
            assert_int_equal(r.mom_e, 8);
            assert_int_equal(r.mom_f, 23);
        }
    } else {
        b->adam++;
        assert_int_equal(r.optimizer, OPT_ADAM);
        assert_null(strstr(t->config, "opt="));
    }
    double mem = -1;
    for (int i = 0; i < t->n_metrics; i++)
        if (!strcmp(t->mname[i], "train_memory")) mem = t->mvalue[i];
    assert_true(mem > 0);
    b->mem[!strstr(t->config, "|opt=bop|") ? 0 : strstr(t->config, "|mom=e4m7b28") ? 2 : 1] = mem;
    net_free(&n);
    free(blob);
    return 0;
}

/* A tiny real search (FashionMNIST, the real trainer) with the optimizer as a
   dimension: the three configurations (Adam; Bop with fp32 and e4m7b28
   momentum) all train, and each stored trial records its optimizer in its
   configuration and in the recipe of its model. */
static void test_bop_search(void **state) {
    (void)state;
    const char *text =
        "data: {name: fashion_mnist, train: 400, val: 200, test: 200}\n"
        "search_space:\n"
        "  fc_width: 16\n"
        "  optimizer: [adam, bop]\n"
        "  bop_gamma: 0.01\n"
        "  momentum_format: [fp32, e4m7b28]\n"
        "  batch: 100\n"
        "strategy: {name: random, batch: 3}\n"
        "budget: {trials: 3}\n"
        "objectives: [{metric: val_acc, direction: max}]\n";
    spec s;
    int rc = spec_parse(&s, "bop.yaml", text, NULL, NULL);
    if (rc) fprintf(stderr, "%s\n", bn_errmsg());
    assert_int_equal(rc, BN_OK);
    void *env = NULL;
    trial_fn fn = NULL;
    assert_int_equal(trial_env_create(&env, &fn, &s), BN_OK);
    char path[300];
    db_path(path, sizeof path, "bop");
    store *st = NULL;
    assert_int_equal(store_create(&st, path, &s), BN_OK);
    search_opts o;
    memset(&o, 0, sizeof o);
    o.fn = fn;
    o.fn_user = env;
    o.threads = 2;
    rc = search_run(st, &s, &o);
    if (rc) fprintf(stderr, "%s\n", bn_errmsg());
    assert_int_equal(rc, BN_OK);
    bop_seen b = {st, 0, 0, 0, 0, {0, 0, 0}};
    assert_int_equal(store_each_trial(st, 0, check_bop_trial, &b), BN_OK);
    assert_int_equal(b.complete, 3);
    assert_int_equal(b.adam, 1);
    assert_int_equal(b.bop, 2);
    assert_int_equal(b.narrow, 1);
    /* Training memory: Adam (latent weights and two moments) > Bop fp32 > Bop 12 bits. The
       momentum of FC16's 784*16 + 16*10 binary weights shrinks by 20 bits each. */
    assert_true(b.mem[0] > b.mem[1] && b.mem[1] > b.mem[2]);
    assert_float_equal(b.mem[1] - b.mem[2], ceil((784 * 16 + 16 * 10) * 32 / 8.0) - ceil((784 * 16 + 16 * 10) * 12 / 8.0), 0);
    store_close(st);
    trial_env_free(env);
    spec_free(&s);
}

static int setup(void **state) {
    (void)state;
    return tmpdir_make(tmpdir, sizeof tmpdir, "search");
}

static int teardown(void **state) {
    (void)state;
    return tmpdir_remove(tmpdir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_equal),
        cmocka_unit_test(test_stop_and_resume_equal),
        cmocka_unit_test(test_failures_recorded),
        cmocka_unit_test(test_metric_limits_fail_trial),
        cmocka_unit_test(test_exhaustion_and_no_duplicates),
        cmocka_unit_test(test_evolution_beats_random),
        cmocka_unit_test(test_bop_search),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
