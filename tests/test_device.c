/*
** Device evaluators: the FeFET error table (parsing, log/linear
** interpolation, range errors, the built-in default equal to the shipped
** CSV), BERA never worse than the identity on the data it searched (greedy
** and exhaustive, reproducible), a zero-rate sweep equal to the clean
** accuracy, and the logic-in-memory searches (speed-up weighting, the
** run-time result within budget on its search data), and the command that
** runs them, `bnas measure` (through the real binary, $BNAS_BIN).
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
#include <sys/wait.h>
#include <unistd.h>

#include "engine/err.h"
#include "engine/errmodel.h"
#include "engine/model.h"
#include "engine/packed.h"
#include "engine/train.h"
#include "evaluators/evaluator.h"
#include "evaluators/fefet.h"
#include "evaluators/lim.h"
#include "tests/testutil.h"

static dataset g_train, g_test;
static net g_fc;
static packed_net g_p;

static int setup(void **state) {
    (void)state;
    if (load_fashion_mnist(&g_train, &g_test)) return -1;
    if (train_small_on(&g_fc, &g_train, "FC128-FC64", sanitized() ? 2000 : 6000, 21)) return -1;
    return packed_from_net(&g_p, &g_fc) ? -1 : 0;
}

static int teardown(void **state) {
    (void)state;
    packed_free(&g_p);
    net_free(&g_fc);
    data_free(&g_train), data_free(&g_test);
    return 0;
}

/* ---- Tables ---- */

static void test_table_interpolation(void **state) {
    (void)state;
    fefet_table tb;
    const char *text = "# comment\ntemperature,p01,p10\n0, 1e-4, 1e-2\n\n100,1e-2,0.04 # hot\n200,0,0.04\n";
    assert_int_equal(fefet_table_parse(&tb, text, "t.csv"), BN_OK);
    assert_int_equal(tb.n, 3);
    double a, b;
    assert_int_equal(fefet_table_at(&tb, 0, &a, &b), BN_OK);
    assert_true(a == 1e-4 && b == 1e-2);
    assert_int_equal(fefet_table_at(&tb, 100, &a, &b), BN_OK);
    assert_true(a == 1e-2 && b == 0.04);
    assert_int_equal(fefet_table_at(&tb, 200, &a, &b), BN_OK);
    assert_true(a == 0 && b == 0.04);
    /* log interpolation: the midpoint is the geometric mean */
    assert_int_equal(fefet_table_at(&tb, 50, &a, &b), BN_OK);
    assert_true(fabs(a - 1e-3) < 1e-12);
    assert_true(fabs(b - 0.02) < 1e-12);
    assert_int_equal(fefet_table_at(&tb, 25, &a, &b), BN_OK);
    assert_true(fabs(a - pow(10, -3.5)) < 1e-12);
    /* an end at 0: linear in p */
    assert_int_equal(fefet_table_at(&tb, 150, &a, &b), BN_OK);
    assert_true(fabs(a - 5e-3) < 1e-15);
    assert_true(fabs(b - 0.04) < 1e-15);
    tb.linear = 1;
    assert_int_equal(fefet_table_at(&tb, 50, &a, &b), BN_OK);
    assert_true(fabs(a - 0.00505) < 1e-12);
    assert_true(fabs(b - 0.025) < 1e-12);
    /* outside the range */
    assert_int_equal(fefet_table_at(&tb, -1, &a, &b), BN_EARG);
    assert_non_null(strstr(bn_errmsg(), "outside"));
    assert_int_equal(fefet_table_at(&tb, 200.5, &a, &b), BN_EARG);
    /* malformed tables */
    assert_int_equal(fefet_table_parse(&tb, "0,1e-4\n", "x.csv"), BN_EFORMAT);
    assert_non_null(strstr(bn_errmsg(), "x.csv:1"));
    assert_int_equal(fefet_table_parse(&tb, "0,1e-4,2\n", "x.csv"), BN_EFORMAT);
    assert_int_equal(fefet_table_parse(&tb, "0,1e-4,0.1\n0,1e-4,0.1\n", "x.csv"), BN_EFORMAT);
    assert_non_null(strstr(bn_errmsg(), "does not increase"));
    assert_int_equal(fefet_table_parse(&tb, "# nothing\n", "x.csv"), BN_EFORMAT);
    assert_int_equal(fefet_table_parse(&tb, "0,1e-4,0.1 x\n", "x.csv"), BN_EFORMAT);
    assert_int_equal(fefet_table_load(&tb, "/nonexistent/table.csv"), BN_EIO);
}

static void check_default(const char *rel, void (*def)(fefet_table *)) {
    const char *src = getenv("BNAS_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", src ? src : ".", rel);
    fefet_table a, b;
    assert_int_equal(fefet_table_load(&a, path), BN_OK);
    def(&b);
    assert_int_equal(a.n, b.n);
    for (int i = 0; i < a.n; i++) {
        assert_true(a.t[i] == b.t[i]);
        assert_true(a.p01[i] == b.p01[i]);
        assert_true(a.p10[i] == b.p10[i]);
    }
}

static void test_defaults_match_files(void **state) {
    (void)state;
    check_default("experiments/fefet/default_table.csv", fefet_table_default);
    check_default("experiments/lim/default_table.csv", lim_table_default);
}

/* ---- Sweeps and BERA ---- */

static void test_zero_table_is_clean(void **state) {
    (void)state;
    fefet_table tb;
    assert_int_equal(fefet_table_parse(&tb, "0,0,0\n50,0,0\n", "zero"), BN_OK);
    dataset d = data_slice(&g_test, 0, 1000);
    double temps[2] = {0, 25}, acc[2];
    assert_int_equal(fefet_sweep(&g_p, &tb, temps, 2, 0, &d, 2, 1, 0, acc), BN_OK);
    int *pred = malloc(sizeof(int) * d.n);
    packed_predict(&g_p, pred, d.pixels, d.n);
    int correct = 0;
    for (int i = 0; i < d.n; i++) correct += pred[i] == d.labels[i];
    free(pred);
    assert_true(acc[0] == (double)correct / d.n);
    assert_true(acc[1] == acc[0]);
    /* rates grow with temperature: the nested draws make accuracy fall (weakly) */
    fefet_table_default(&tb);
    double t3[3] = {-40, 50, 100}, a3[3];
    assert_int_equal(fefet_sweep(&g_p, &tb, t3, 3, 0, &d, 3, 1, 0, a3), BN_OK);
    assert_true(a3[2] < acc[0]);
    assert_true(a3[0] >= a3[2]);
}

static void test_bera_not_worse(void **state) {
    (void)state;
    dataset d = data_slice(&g_train, 50000, sanitized() ? 500 : 2000);
    const double rates[3][2] = {{0.002, 0.12}, {0.15, 0.001}, {0.05, 0.05}};
    for (int k = 0; k < 3; k++) {
        for (int ex = 0; ex <= 1; ex++) {
            uint32_t mask;
            double id, best;
            int n;
            assert_int_equal(fefet_bera(&g_p, rates[k][0], rates[k][1], &d, 2, 7, 0, ex, &mask, &id, &best, &n),
                             BN_OK);
            assert_true(best >= id);
            assert_true(mask < (1u << g_p.n_layers));
            if (ex) assert_int_equal(n, 1 << g_p.n_layers);
            /* the reported accuracy is reproducible: a sweep at these rates with the mask */
            fefet_table tb;
            char text[128];
            snprintf(text, sizeof text, "0,%.17g,%.17g\n", rates[k][0], rates[k][1]);
            assert_int_equal(fefet_table_parse(&tb, text, "pt"), BN_OK);
            double t0 = 0, a;
            assert_int_equal(fefet_sweep(&g_p, &tb, &t0, 1, mask, &d, 2, 7, 0, &a), BN_OK);
            assert_true(a == best);
            assert_int_equal(fefet_sweep(&g_p, &tb, &t0, 1, 0, &d, 2, 7, 0, &a), BN_OK);
            assert_true(a == id);
        }
    }
}

/* ---- Logic in memory ---- */

static void test_lim_searches(void **state) {
    (void)state;
    fefet_table tb;
    lim_table_default(&tb);
    int setting[NET_MAX_LAYERS] = {0};
    assert_true(lim_speedup(&g_p, &tb, setting) == 0.0);
    /* FC128-FC64-FC10: binary layers 1 (64*128) and 2 (10*64) */
    assert_true(lim_xnor_count(&g_p.layers[0]) == 0.0);
    assert_true(lim_xnor_count(&g_p.layers[1]) == 64.0 * 128);
    setting[1] = 5, setting[2] = 0; /* 50% on layer 1 only */
    assert_true(fabs(lim_speedup(&g_p, &tb, setting) - 50.0 * 8192 / (8192 + 640)) < 1e-9);
    dataset d = data_slice(&g_train, 50000, sanitized() ? 500 : 2000);
    double clean;
    int zero[NET_MAX_LAYERS] = {0};
    assert_int_equal(lim_accuracy(&g_p, &tb, zero, &d, 1, 3, 0, &clean), BN_OK);
    int n;
    double acc;
    assert_int_equal(lim_runtime_search(&g_p, &tb, clean - 0.01, &d, 2, 3, 0, setting, &acc, &n), BN_OK);
    assert_true(acc >= clean - 0.01);
    double again;
    assert_int_equal(lim_accuracy(&g_p, &tb, setting, &d, 2, 3, 0, &again), BN_OK);
    assert_true(again == acc);
    assert_true(lim_speedup(&g_p, &tb, setting) > 0.0);
    int row;
    assert_int_equal(lim_uniform_search(&g_p, &tb, clean - 0.01, &d, 2, 3, 0, &row, &acc), BN_OK);
    assert_true(acc >= clean - 0.01);
    /* a zero budget against an unreachable reference keeps everything nominal */
    assert_int_equal(lim_runtime_search(&g_p, &tb, 2.0, &d, 1, 3, 0, setting, &acc, &n), BN_OK);
    for (int l = 0; l < g_p.n_layers; l++) assert_int_equal(setting[l], 0);
}

/* The evaluators run through the registry and report their metrics. */
static void test_evaluators_run(void **state) {
    (void)state;
    dataset tr = data_slice(&g_train, 0, 1000), val = data_slice(&g_train, 50000, 500),
            te = data_slice(&g_test, 0, 500);
    eval_context ctx = {&g_fc, &tr, &val, &te, 5};
    eval_params p;
    memset(&p, 0, sizeof p);
    strcpy(p.p[0].key, "repeats"), strcpy(p.p[0].value, "2");
    strcpy(p.p[1].key, "temps"), strcpy(p.p[1].value, "[-40, 50, 100]");
    p.n = 2;
    eval_metrics *m = calloc(1, sizeof *m);
    assert_int_equal(eval_run("fefet", &ctx, &p, m), BN_OK);
    assert_false(isnan(eval_metrics_get(m, "fefet.acc@50")));
    assert_false(isnan(eval_metrics_get(m, "fefet.acc@-40")));
    double mn = eval_metrics_get(m, "fefet.acc_min");
    assert_true(mn <= eval_metrics_get(m, "fefet.acc@100"));
    assert_false(isnan(eval_metrics_get(m, "fefet.bera_acc_min")));
    assert_true(eval_metrics_get(m, "fefet.bera_search_best") >= eval_metrics_get(m, "fefet.bera_search_identity"));
    memset(m, 0, sizeof *m);
    memset(&p, 0, sizeof p);
    strcpy(p.p[0].key, "repeats"), strcpy(p.p[0].value, "1");
    p.n = 1;
    assert_int_equal(eval_run("lim", &ctx, &p, m), BN_OK);
    assert_false(isnan(eval_metrics_get(m, "lim.rt_speedup")));
    assert_true(eval_metrics_get(m, "lim.rt_search_acc") >= eval_metrics_get(m, "lim.reference") - 0.01);
    free(m);
}

/* bnas measure: runs an evaluator on a model file with key=value parameters and
   prints its metrics and timings; --list names the evaluators; an unknown
   evaluator, a parameter the evaluator does not accept or a malformed one is a
   usage error (2); the old `bnas device` command is gone. */
static void test_measure_command(void **state) {
    (void)state;
    const char *bin = bnas_bin();
    char model[128], out[160], cmd[1024];
    snprintf(model, sizeof model, "/tmp/bnas_test_device_%d.bnm", (int)getpid());
    snprintf(out, sizeof out, "%s.out", model);
    train_recipe r = train_recipe_default();
    r.seed = 21;
    assert_int_equal(model_save(&g_fc, &r, model), BN_OK);
    snprintf(cmd, sizeof cmd,
             "%s measure %s fefet split=test images=300 repeats=1 bera=0 'temps=[20,100]' --val 1000 --threads 2 > %s",
             bin, model, out);
    assert_int_equal(sh(cmd), 0);
    char *text = slurp(out, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "fefet.acc@20 "));
    assert_non_null(strstr(text, "fefet.acc@100 "));
    assert_non_null(strstr(text, "fefet.acc_min "));
    assert_null(strstr(text, "fefet.bera_mask"));
    assert_non_null(strstr(text, "\nseconds "));
    assert_non_null(strstr(text, "\ncpu_seconds "));
    free(text);
    snprintf(cmd, sizeof cmd, "%s measure --list > %s", bin, out);
    assert_int_equal(sh(cmd), 0);
    text = slurp(out, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "fefet "));
    assert_non_null(strstr(text, "\nlim "));
    free(text);
    snprintf(cmd, sizeof cmd, "%s measure %s nosuch 2> /dev/null", bin, model);
    assert_int_equal(sh(cmd), 2);
    snprintf(cmd, sizeof cmd, "%s measure %s fefet nosuch=1 2> /dev/null", bin, model);
    assert_int_equal(sh(cmd), 2);
    snprintf(cmd, sizeof cmd, "%s measure %s fefet repeats 2> /dev/null", bin, model);
    assert_int_equal(sh(cmd), 2);
    snprintf(cmd, sizeof cmd, "%s device %s --evaluator fefet 2> /dev/null", bin, model);
    assert_int_equal(sh(cmd), 2);
    remove(model), remove(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_interpolation), cmocka_unit_test(test_defaults_match_files),
        cmocka_unit_test(test_zero_table_is_clean), cmocka_unit_test(test_bera_not_worse),
        cmocka_unit_test(test_lim_searches),        cmocka_unit_test(test_evaluators_run),
        cmocka_unit_test(test_measure_command),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
