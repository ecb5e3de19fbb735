/* The evaluator registry, parameter parsing, and the built-in accuracy and memory evaluators. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "engine/err.h"
#include "engine/train.h"
#include "evaluators/evaluator.h"

static void set_param(eval_params *p, const char *k, const char *v) {
    snprintf(p->p[p->n].key, EVAL_NAME_MAX, "%s", k);
    snprintf(p->p[p->n].value, EVAL_VALUE_MAX, "%s", v);
    p->n++;
}

static void test_registry_finds_builtins(void **state) {
    (void)state;
    assert_non_null(eval_find("accuracy"));
    assert_non_null(eval_find("memory"));
    assert_null(eval_find("nope"));
    int n = 0;
    for (const evaluator *const *e = eval_all(); *e; e++) {
        assert_non_null((*e)->run);
        assert_non_null((*e)->summary);
        n++;
    }
    assert_true(n >= 2);
}

static void test_param_parsing(void **state) {
    (void)state;
    eval_params p = {0};
    set_param(&p, "ber", "0.01");
    set_param(&p, "rates", "[0, 0.5e-2, 1]");
    set_param(&p, "bad", "[1, x]");
    double v, list[8];
    int n;
    assert_int_equal(eval_param_double(&p, "ber", 5, &v), BN_OK);
    assert_true(v == 0.01);
    assert_int_equal(eval_param_double(&p, "absent", 5, &v), BN_OK);
    assert_true(v == 5);
    assert_int_equal(eval_param_double(&p, "rates", 0, &v), BN_EARG);
    assert_int_equal(eval_param_list(&p, "rates", NULL, 0, list, 8, &n), BN_OK);
    assert_int_equal(n, 3);
    assert_true(list[1] == 0.005 && list[2] == 1);
    assert_int_equal(eval_param_list(&p, "ber", NULL, 0, list, 8, &n), BN_OK);
    assert_int_equal(n, 1);
    assert_int_equal(eval_param_list(&p, "bad", NULL, 0, list, 8, &n), BN_EARG);
    assert_non_null(strstr(bn_errmsg(), "bad"));
    assert_int_equal(eval_param_list(&p, "rates", NULL, 0, list, 2, &n), BN_EARG);
    /* unknown keys are refused with the accepted ones named */
    assert_int_equal(eval_params_check(eval_find("memory"), &p), BN_EARG);
    assert_non_null(strstr(bn_errmsg(), "'ber'"));
}

static void test_memory_and_accuracy(void **state) {
    (void)state;
    arch a;
    net n;
    assert_int_equal(arch_parse(&a, "FC64"), BN_OK);
    assert_int_equal(net_create(&n, &a, 1, 28, 28, 10), BN_OK);
    pcg32 g;
    rng_keyed(&g, 1, 0, RNG_INIT);
    net_init_params(&n, &g);
    dataset tr, te;
    assert_int_equal(data_load_fashion_mnist(&tr, &te, NULL), BN_OK);
    dataset val = data_slice(&tr, 0, 1000), test = data_slice(&te, 0, 1000);
    eval_context ctx = {&n, &tr, &val, &test, 1};
    eval_params none = {0};
    eval_metrics m = {0};
    assert_int_equal(eval_run("memory", &ctx, &none, &m), BN_OK);
    /* FC64: 64 x ceil(784/32) words + 64 thresholds, classifier 10 x 2 words, scale */
    assert_true(eval_metrics_get(&m, "memory.bytes") == 64 * 25 * 4 + 64 * 4 + 10 * 2 * 4 + 4);
    assert_true(eval_metrics_get(&m, "memory.weights") == 64 * 784 + 10 * 64);
    assert_int_equal(eval_run("accuracy", &ctx, &none, &m), BN_OK);
    double acc = eval_metrics_get(&m, "accuracy.val");
    assert_true(acc >= 0 && acc <= 1);
    assert_true(isnan(eval_metrics_get(&m, "accuracy.nope")));
    assert_int_equal(eval_run("nope", &ctx, &none, &m), BN_EARG);
    net_free(&n), data_free(&tr), data_free(&te);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_finds_builtins),
        cmocka_unit_test(test_param_parsing),
        cmocka_unit_test(test_memory_and_accuracy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
