/*
** Selection only on validation data (issue 17, item 4). Every evaluator that
** chooses something (CapMin's q, LiM's speed settings, FeFET's BERA mask and
** search temperature, the Bop momentum format) is run twice with split=test:
** once with the real test set and once with a poisoned one (labels shifted by
** one class, pixels inverted: every accuracy on it changes). What is chosen
** must be the same both times, while the reported test numbers must differ
** (so the poison reaches what the evaluator reads). Without a validation split
** the selecting evaluators must fail, never fall back to the test set.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/err.h"
#include "engine/train.h"
#include "evaluators/evaluator.h"
#include "tests/testutil.h"

static dataset g_train, g_test, g_poison, g_fit, g_val, g_tst;
static net g_net;

static int setup(void **state) {
    (void)state;
    if (load_fashion_mnist(&g_train, &g_test)) return -1;
    int nfit = sanitized() ? 1000 : 3000, nval = sanitized() ? 300 : 1000;
    if (train_small_on(&g_net, &g_train, "FC64-FC64", nfit, 3)) return -1;
    g_fit = data_slice(&g_train, 0, nfit);
    g_val = data_slice(&g_train, 50000, nval); /* never trained on */
    g_tst = data_slice(&g_test, 0, nval);
    size_t px = (size_t)g_tst.n * g_tst.h * g_tst.w * g_tst.c;
    g_poison = g_tst;
    g_poison.pixels = malloc(px);
    g_poison.labels = malloc((size_t)g_tst.n);
    for (size_t i = 0; i < px; i++) g_poison.pixels[i] = (uint8_t)(255 - g_tst.pixels[i]);
    for (int i = 0; i < g_tst.n; i++) g_poison.labels[i] = (uint8_t)((g_tst.labels[i] + 1) % g_tst.classes);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    free(g_poison.pixels), free(g_poison.labels);
    net_free(&g_net);
    data_free(&g_train), data_free(&g_test);
    return 0;
}

static void set_param(eval_params *p, const char *k, const char *v) {
    snprintf(p->p[p->n].key, EVAL_NAME_MAX, "%s", k);
    snprintf(p->p[p->n].value, EVAL_VALUE_MAX, "%s", v);
    p->n++;
}

/* Runs evaluator name with params on the real and on the poisoned test set;
   every metric named in chosen must be equal, the metric reported must differ. */
static void check_selection(const char *name, const eval_params *params, const char *const *chosen,
                            const char *reported) {
    eval_metrics *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    eval_context real = {&g_net, &g_fit, &g_val, &g_tst, 5}, bad = real;
    bad.test = &g_poison;
    assert_int_equal(eval_run(name, &real, params, a), BN_OK);
    assert_int_equal(eval_run(name, &bad, params, b), BN_OK);
    for (const char *const *c = chosen; *c; c++) {
        double x = eval_metrics_get(a, *c), y = eval_metrics_get(b, *c);
        if (isnan(x) || x != y) fail_msg("%s: %s is %g with the real test set, %g with the poisoned one", name, *c, x, y);
    }
    double x = eval_metrics_get(a, reported), y = eval_metrics_get(b, reported);
    if (!(x != y)) fail_msg("%s: %s is %g both times: the poisoned test set was not read", name, reported, x);
    free(a), free(b);
}

/* The evaluator must refuse to run without a validation split. */
static void check_needs_val(const char *name, const eval_params *params) {
    eval_metrics *m = calloc(1, sizeof *m);
    eval_context ctx = {&g_net, &g_fit, NULL, &g_tst, 5};
    assert_int_not_equal(eval_run(name, &ctx, params, m), BN_OK);
    free(m);
}

static void test_capmin_q_on_val(void **state) {
    (void)state;
    eval_params p = {0};
    set_param(&p, "A", "16"), set_param(&p, "split", "test"), set_param(&p, "hist_images", "500");
    static const char *const chosen[] = {"capmin.q", "capmin.cap_x", "capmin.mass", NULL};
    check_selection("capmin", &p, chosen, "capmin.acc");
    check_needs_val("capmin", &p);
}

static void test_lim_settings_on_val(void **state) {
    (void)state;
    eval_params p = {0};
    set_param(&p, "split", "test"), set_param(&p, "repeats", "1");
    static const char *const chosen[] = {"lim.clean_val",  "lim.reference",  "lim.uniform_speedup", "lim.rt_speedup",
                                         "lim.rt_layer1", "lim.rt_layer2", "lim.uniform_search_acc", NULL};
    check_selection("lim", &p, chosen, "lim.rt_acc");
    check_needs_val("lim", &p);
}

static void test_fefet_bera_on_val(void **state) {
    (void)state;
    eval_params p = {0};
    set_param(&p, "split", "test"), set_param(&p, "repeats", "2"), set_param(&p, "temps", "[20, 80, 100]");
    static const char *const chosen[] = {"fefet.bera_mask", "fefet.bera_search_t", "fefet.bera_search_identity",
                                         "fefet.bera_search_best", NULL};
    check_selection("fefet", &p, chosen, "fefet.bera_acc_min");
    check_needs_val("fefet", &p);
}

static void test_bop_encoding_needs_val(void **state) {
    (void)state;
    eval_params p = {0};
    set_param(&p, "images", "200"), set_param(&p, "val_images", "100"), set_param(&p, "max_confirm", "1");
    check_needs_val("bop_encoding", &p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capmin_q_on_val),
        cmocka_unit_test(test_lim_settings_on_val),
        cmocka_unit_test(test_fefet_bera_on_val),
        cmocka_unit_test(test_bop_encoding_needs_val),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
