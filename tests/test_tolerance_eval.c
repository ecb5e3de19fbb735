/*
** The "margin" and "fault" evaluators and `bnas eval` (cmd_eval) on a briefly
** trained FashionMNIST network saved as a real model file.
*/
#define _POSIX_C_SOURCE 200809L /* mkstemp */
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
#include "engine/fault.h"
#include "engine/margin.h"
#include "engine/model.h"
#include "engine/train.h"
#include "evaluators/evaluator.h"
#include "nas/commands.h"
#include "tests/testutil.h"

static dataset g_train, g_test, g_val;
static net g_net;
static train_recipe g_recipe;

static int setup(void **state) {
    (void)state;
    if (load_fashion_mnist(&g_train, &g_test)) return -1;
    arch a;
    if (arch_parse(&a, "FC128-FC64") || net_create(&g_net, &a, 1, 28, 28, 10)) return -1;
    pcg32 g;
    rng_keyed(&g, 8, 0, RNG_INIT);
    net_init_params(&g_net, &g);
    g_recipe = train_recipe_default();
    g_recipe.epochs = 1;
    dataset tr = data_slice(&g_train, 0, sanitized() ? 3000 : 10000);
    if (train_recipe_run(&g_net, &tr, NULL, &g_recipe, NULL, NULL)) return -1;
    g_val = data_slice(&g_train, 50000, sanitized() ? 300 : 2000);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    net_free(&g_net);
    data_free(&g_train), data_free(&g_test);
    return 0;
}

static void set_param(eval_params *p, const char *k, const char *v) {
    snprintf(p->p[p->n].key, EVAL_NAME_MAX, "%s", k);
    snprintf(p->p[p->n].value, EVAL_VALUE_MAX, "%s", v);
    p->n++;
}

static void test_margin_evaluator(void **state) {
    (void)state;
    eval_context ctx = {&g_net, &g_train, &g_val, &g_test, 3};
    eval_params p = {0};
    eval_metrics m = {0};
    assert_int_equal(eval_run("margin", &ctx, &p, &m), BN_OK);
    margin_result r;
    assert_int_equal(margin_measure(&g_net, &g_val, 0, &r), BN_OK);
    assert_true(eval_metrics_get(&m, "margin.mean") == r.mean);
    assert_true(eval_metrics_get(&m, "margin.layer0") == r.layer[0]);
    assert_true(eval_metrics_get(&m, "margin.layer1") == r.layer[1]);
    assert_true(isnan(eval_metrics_get(&m, "margin.layer2")));
    assert_true(eval_metrics_get(&m, "margin.output") == r.output);
    set_param(&p, "split", "train");
    assert_int_equal(eval_run("margin", &ctx, &p, &m), BN_EARG);
}

static void test_fault_evaluator(void **state) {
    (void)state;
    eval_context ctx = {&g_net, &g_train, &g_val, &g_test, 3};
    eval_params p = {0};
    eval_metrics m = {0};
    set_param(&p, "ber", "0");
    set_param(&p, "rates", "[0.01, 0.2]");
    set_param(&p, "repeats", "3");
    assert_int_equal(eval_run("fault", &ctx, &p, &m), BN_OK);
    assert_true(fabs(eval_metrics_get(&m, "fault.acc") - train_accuracy(&g_net, &g_val)) < 1e-12);
    assert_true(eval_metrics_get(&m, "fault.sd") == 0);
    double a1 = eval_metrics_get(&m, "fault.acc@0.01"), a20 = eval_metrics_get(&m, "fault.acc@0.2");
    assert_false(isnan(a1) || isnan(a20));
    assert_true(a20 < a1);
    /* The same numbers as the library with the same seed. */
    fault_model fm;
    fault_model_zero(&fm);
    fault_model_set(&fm, FAULT_WEIGHTS, 0.2, 0.2);
    fault_stats s;
    assert_int_equal(fault_evaluate(&g_net, &g_val, &fm, 3, 3, 0, &s, NULL), BN_OK);
    assert_true(s.mean == a20);
    /* Asymmetric, other targets, errors. */
    eval_params q = {0};
    set_param(&q, "p01", "0.05");
    set_param(&q, "p10", "0");
    set_param(&q, "targets", "weights,activations");
    set_param(&q, "images", "100");
    eval_metrics m2 = {0};
    assert_int_equal(eval_run("fault", &ctx, &q, &m2), BN_OK);
    assert_false(isnan(eval_metrics_get(&m2, "fault.ci_hi")));
    eval_params bad = {0};
    set_param(&bad, "targets", "weights,biases");
    assert_int_equal(eval_run("fault", &ctx, &bad, &m2), BN_EARG);
    eval_params bad2 = {0};
    set_param(&bad2, "p01", "0.1");
    assert_int_equal(eval_run("fault", &ctx, &bad2, &m2), BN_EARG);
    eval_params bad3 = {0};
    set_param(&bad3, "ber", "1.5");
    assert_int_equal(eval_run("fault", &ctx, &bad3, &m2), BN_EARG);
}

static void test_cmd_eval(void **state) {
    (void)state;
    char path[] = "/tmp/bnas_test_eval_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(model_save(&g_net, &g_recipe, path), BN_OK);
    char *ok[] = {"eval", path, "--ber", "0,1%,0.05", "--p01", "0.02", "--p10", "0", "--repeats", "2",
                  "--images", "300", "--threads", "2", "--targets", "weights,thresholds", NULL};
    assert_int_equal(cmd_eval(16, ok), 0);
    char *help[] = {"eval", "--help", NULL};
    assert_int_equal(cmd_eval(2, help), 0);
    char *badopt[] = {"eval", path, "--frobnicate", NULL};
    assert_int_equal(cmd_eval(3, badopt), 2);
    char *badber[] = {"eval", path, "--ber", "0.1,2", NULL};
    assert_int_equal(cmd_eval(4, badber), 2);
    char *nomodel[] = {"eval", NULL};
    assert_int_equal(cmd_eval(1, nomodel), 2);
    char *missing[] = {"eval", "/nonexistent/model.bnm", NULL};
    assert_int_equal(cmd_eval(2, missing), 1);
    char *badlayer[] = {"eval", path, "--layer", "7", NULL};
    assert_int_equal(cmd_eval(4, badlayer), 2);
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_margin_evaluator),
        cmocka_unit_test(test_fault_evaluator),
        cmocka_unit_test(test_cmd_eval),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
