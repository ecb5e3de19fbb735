/*
** Device evaluators: the FeFET error table (parsing, log/linear
** interpolation, range errors, the built-in default equal to the shipped
** CSV), BERA never worse than the identity on the data it searched (greedy
** and exhaustive, reproducible), a zero-rate sweep equal to the clean
** accuracy, and the logic-in-memory searches (speed-up weighting, the
** run-time result within budget on its search data), and the command that
** runs them, `bnas measure` (through the real binary, $BNAS_BIN).
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
#include <sys/wait.h>
#include <unistd.h>

#include "engine/err.h"
#include "engine/errmodel.h"
#include "engine/model.h"
#include "engine/packed.h"
#include "engine/train.h"
#include "evaluators/capmin.h"
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

/* The shipped ILLUSTRATIVE files (evaluators/data/) hold exactly the numbers every recorded
   FeFET and LiM result was made with (formerly compiled in): editing them changes the studies. */
static const double fefet_recorded[][3] = {
    {-40, 1.00e-4, 5.00e-4}, {-25, 1.36e-4, 8.41e-4}, {-10, 1.73e-4, 1.41e-3}, {5, 2.21e-4, 2.38e-3},
    {20, 3.00e-4, 4.00e-3}, {35, 4.40e-4, 6.73e-3}, {50, 6.32e-4, 1.10e-2}, {65, 8.85e-4, 1.70e-2},
    {80, 1.20e-3, 2.50e-2}, {100, 1.80e-3, 4.00e-2},
};
static const double lim_recorded[][3] = {
    {0, 0, 0}, {10, 0.0071, 0.0071}, {20, 0.01, 0.01}, {30, 0.0141, 0.0141},
    {40, 0.02, 0.02}, {50, 0.0283, 0.0283}, {60, 0.04, 0.04}, {70, 0.0566, 0.0566},
    {80, 0.08, 0.08}, {90, 0.1131, 0.1131}, {100, 0.16, 0.16}, {110, 0.2263, 0.2263},
    {120, 0.32, 0.32}, {130, 0.4525, 0.4525},
};

static void check_shipped(const fefet_table *a, const double (*rows)[3], int n) {
    assert_int_equal(a->n, n);
    assert_false(a->has_kind[FEFET_CONV] || a->has_kind[FEFET_DENSE]);
    for (int i = 0; i < n; i++) {
        assert_true(a->t[i] == rows[i][0]);
        assert_true(a->p01[i] == rows[i][1]);
        assert_true(a->p10[i] == rows[i][2]);
    }
}

static void test_shipped_files(void **state) {
    (void)state;
    fefet_table a;
    assert_int_equal(fefet_table_default(&a), BN_OK);
    check_shipped(&a, fefet_recorded, (int)(sizeof fefet_recorded / sizeof *fefet_recorded));
    assert_int_equal(lim_table_default(&a), BN_OK);
    check_shipped(&a, lim_recorded, (int)(sizeof lim_recorded / sizeof *lim_recorded));
    /* the folder is found from the environment first, and a missing file names its path */
    const char *old = getenv("BNAS_DATA_DIR");
    char *keep = old ? strdup(old) : NULL;
    setenv("BNAS_DATA_DIR", "/nonexistent/bnas-data", 1);
    assert_int_equal(fefet_table_default(&a), BN_EIO);
    assert_non_null(strstr(bn_errmsg(), "/nonexistent/bnas-data/fefet_temperature.csv"));
    assert_non_null(strstr(bn_errmsg(), "BNAS_DATA_DIR"));
    if (keep) setenv("BNAS_DATA_DIR", keep, 1), free(keep);
    else unsetenv("BNAS_DATA_DIR");
}

/* Columns per layer type: named by the header, checked, and used by layer kind. */
static void test_table_layer_types(void **state) {
    (void)state;
    fefet_table tb;
    const char *text = "t,p01,p10,p01_dense,p10_dense\n0,0.1,0.2,0.01,0.02\n10,0.1,0.2,0.03,0.04\n";
    assert_int_equal(fefet_table_parse(&tb, text, "k.csv"), BN_OK);
    assert_true(tb.has_kind[FEFET_DENSE] && !tb.has_kind[FEFET_CONV]);
    double a, b;
    assert_int_equal(fefet_table_at_kind(&tb, FEFET_DENSE, 10, &a, &b), BN_OK);
    assert_true(a == 0.03 && b == 0.04);
    assert_int_equal(fefet_table_at_kind(&tb, FEFET_CONV, 10, &a, &b), BN_OK);
    assert_true(a == 0.1 && b == 0.2);
    assert_int_equal(fefet_table_parse(&tb, "t,p01,p10,p01_fc,p10_fc\n0,0,0,0,0\n", "k.csv"), BN_EFORMAT);
    assert_non_null(strstr(bn_errmsg(), "k.csv:1: unknown column 'p01_fc'"));
    assert_int_equal(fefet_table_parse(&tb, "t,p01,p10,p01_conv\n0,0,0,0\n", "k.csv"), BN_EFORMAT);
    assert_non_null(strstr(bn_errmsg(), "p01_conv"));
    assert_int_equal(fefet_table_parse(&tb, "t,p10,p01\n0,0,0\n", "k.csv"), BN_EFORMAT);
    assert_int_equal(fefet_table_parse(&tb, "t,p01,p10,p01_conv,p10_conv\n0,0,0,0\n", "k.csv"), BN_EFORMAT);
    assert_non_null(strstr(bn_errmsg(), "k.csv:2"));
    assert_int_equal(fefet_table_parse(&tb, "t,p01,p10,p01_conv,p10_conv\n0,0,0,0,1.5\n", "k.csv"), BN_EFORMAT);
    assert_non_null(strstr(bn_errmsg(), "k.csv:2: column 5"));
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
    assert_int_equal(fefet_table_default(&tb), BN_OK);
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
            fefet_table tb;
            char text[128];
            snprintf(text, sizeof text, "0,%.17g,%.17g\n", rates[k][0], rates[k][1]);
            assert_int_equal(fefet_table_parse(&tb, text, "pt"), BN_OK);
            assert_int_equal(fefet_bera(&g_p, &tb, 0, &d, 2, 7, 0, ex, &mask, &id, &best, &n), BN_OK);
            assert_true(best >= id);
            assert_true(mask < (1u << g_p.n_layers));
            if (ex) assert_int_equal(n, 1 << g_p.n_layers);
            /* the reported accuracy is reproducible: a sweep at these rates with the mask */
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
    assert_int_equal(lim_table_default(&tb), BN_OK);
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

/* A second device table changes the results as computed by hand: per-layer-type FeFET columns
   (zero rates for dense layers: an FC network is then exactly clean although p01/p10 are high),
   and, through the real binary, a LiM curve whose 30% row is free and whose 60% row destroys the
   products (both searches must stop at exactly 30%), named by table= and, as the default, found
   through BNAS_DATA_DIR. */
static void test_second_table(void **state) {
    (void)state;
    dataset d = data_slice(&g_test, 0, 500);
    int *pred = malloc(sizeof(int) * d.n), correct = 0;
    packed_predict(&g_p, pred, d.pixels, d.n);
    for (int i = 0; i < d.n; i++) correct += pred[i] == d.labels[i];
    free(pred);
    fefet_table tb;
    assert_int_equal(fefet_table_parse(&tb, "t,p01,p10,p01_dense,p10_dense\n0,0.3,0.3,0,0\n", "kinds"), BN_OK);
    double t0 = 0, acc, acc_all;
    assert_int_equal(fefet_sweep(&g_p, &tb, &t0, 1, 0, &d, 2, 1, 0, &acc), BN_OK);
    assert_true(acc == (double)correct / d.n);
    assert_int_equal(fefet_table_parse(&tb, "t,p01,p10\n0,0.3,0.3\n", "all"), BN_OK);
    assert_int_equal(fefet_sweep(&g_p, &tb, &t0, 1, 0, &d, 2, 1, 0, &acc_all), BN_OK);
    assert_true(acc_all < acc - 0.1);

    char dir[256], model[300], table[300], cmd[2048];
    assert_int_equal(tmpdir_make(dir, sizeof dir, "device"), 0);
    snprintf(model, sizeof model, "%s/fc.bnm", dir);
    snprintf(table, sizeof table, "%s/lim_speedup.csv", dir);
    train_recipe r = train_recipe_default();
    r.seed = 21;
    assert_int_equal(model_save(&g_fc, &r, model), BN_OK);
    write_text(table, "# a second curve\nspeedup_percent,p01,p10\n0,0,0\n30,0,0\n60,0.5,0.5\n");
    const char *bin = bnas_bin();
    for (int how = 0; how < 2; how++) {
        if (how == 0)
            snprintf(cmd, sizeof cmd, "%s measure %s lim table=%s repeats=1 split=test images=500 --val 1000 --threads 2"
                     " > %s/out.txt", bin, model, table, dir);
        else
            snprintf(cmd, sizeof cmd, "BNAS_DATA_DIR=%s %s measure %s lim repeats=1 split=test images=500 --val 1000"
                     " --threads 2 > %s/out.txt", dir, bin, model, dir);
        assert_int_equal(sh(cmd), 0);
        char out[300];
        snprintf(out, sizeof out, "%s/out.txt", dir);
        char *text = slurp(out, NULL);
        assert_non_null(text);
        assert_non_null(strstr(text, "lim.uniform_speedup          30\n"));
        assert_non_null(strstr(text, "lim.rt_speedup               30\n"));
        assert_non_null(strstr(text, "lim.rt_layer1                30\n"));
        free(text);
    }
    /* the shipped curve gives another result; a bad file is named with its line */
    snprintf(cmd, sizeof cmd, "%s measure %s lim repeats=1 split=test images=500 --val 1000 --threads 2 | grep -q "
             "'^lim.rt_speedup  *30$'", bin, model);
    assert_int_not_equal(sh(cmd), 0);
    write_text(table, "speedup_percent,p01,p10\n0,0,0\n50,0,x\n");
    snprintf(cmd, sizeof cmd, "%s measure %s lim table=%s 2> %s/err.txt", bin, model, table, dir);
    assert_int_equal(sh(cmd), 1);
    snprintf(cmd, sizeof cmd, "grep -q 'lim_speedup.csv:3: column 3' %s/err.txt", dir);
    assert_int_equal(sh(cmd), 0);
    tmpdir_remove(dir);
}

/* The CapMin circuit file: the shipped values are the recorded ones; a bad file is refused naming
   file, line and key; a second circuit, named by the evaluator's circuit= parameter, changes the
   capacitances as the model says (C = D / (R gap): twice the clock, twice the pF, the same
   reduction) and a lower drive changes the reduction. */
static void test_capmin_circuit(void **state) {
    (void)state;
    capmin_circuit c;
    assert_int_equal(capmin_circuit_default(&c), BN_OK);
    assert_true(c.v_th == 0.225 && c.v_u == 0.275 && c.r == 1e5 && c.clock == 5e-9);
    static const char *const bad[][2] = {
        {"v_th,0.225\n", "x:1: expected the header"},
        {"name,value\nv_th,0.225\nv_u,0.275\nr,1e5\n", "x: no 'clock' row"},
        {"name,value\nv_th,0.225\nvu,0.275\n", "x:3: unknown name 'vu'"},
        {"name,value\n# c\nv_th,0.225\nv_th,0.2\n", "x:4: 'v_th' given twice"},
        {"name,value\nv_th,-1\n", "x:2: value of 'v_th'"},
        {"name,value\nr,1e5 ohm\n", "x:2: value of 'r'"},
        {"name,value\nv_th\n", "x:2: expected 'name,value'"},
        {"name,value\nv_th,0.3\nv_u,0.275\nr,1e5\nclock,5e-9\n", "v_u (0.275 V) must exceed v_th"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(capmin_circuit_parse(&c, bad[i][0], "x"), BN_EFORMAT);
        if (!strstr(bn_errmsg(), bad[i][1])) fail_msg("case %zu: '%s' lacks '%s'", i, bn_errmsg(), bad[i][1]);
    }
    assert_int_equal(capmin_circuit_load(&c, "/nonexistent/circuit.csv"), BN_EIO);
    assert_non_null(strstr(bn_errmsg(), "/nonexistent/circuit.csv"));

    dataset tr = data_slice(&g_train, 0, 1000), val = data_slice(&g_train, 50000, 300);
    eval_context ctx = {&g_fc, &tr, &val, NULL, 5};
    char dir[128], file[200];
    assert_int_equal(tmpdir_make(dir, sizeof dir, "capmin"), 0);
    snprintf(file, sizeof file, "%s/circuit.csv", dir);
    double pf[3], capx[3];
    for (int k = 0; k < 3; k++) {
        eval_params p;
        memset(&p, 0, sizeof p);
        if (k > 0) {
            write_text(file, k == 1 ? "name,value\nv_th,0.225\nv_u,0.275\nr,1e5\nclock,1e-8\n"
                                    : "name,value\nv_th,0.225\nv_u,0.25\nr,1e5\nclock,5e-9\n");
            strcpy(p.p[0].key, "circuit"), snprintf(p.p[0].value, sizeof p.p[0].value, "%s", file), p.n = 1;
        }
        eval_metrics *m = calloc(1, sizeof *m);
        assert_int_equal(eval_run("capmin", &ctx, &p, m), BN_OK);
        pf[k] = eval_metrics_get(m, "capmin.cap_full_pF"), capx[k] = eval_metrics_get(m, "capmin.cap_x");
        free(m);
    }
    assert_true(pf[0] > 0 && isfinite(capx[0]));
    assert_true(fabs(pf[1] - 2 * pf[0]) < 1e-12 * pf[0]);
    assert_true(capx[1] == capx[0]);
    assert_true(capx[2] != capx[0]);
    write_text(file, "name,value\nv_th,0.225\n");
    eval_params p;
    memset(&p, 0, sizeof p);
    strcpy(p.p[0].key, "circuit"), snprintf(p.p[0].value, sizeof p.p[0].value, "%s", file), p.n = 1;
    eval_metrics *m = calloc(1, sizeof *m);
    assert_int_equal(eval_run("capmin", &ctx, &p, m), BN_EFORMAT);
    assert_non_null(strstr(bn_errmsg(), "circuit.csv: no 'v_u' row"));
    free(m);
    tmpdir_remove(dir);
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
        cmocka_unit_test(test_table_interpolation), cmocka_unit_test(test_shipped_files),
        cmocka_unit_test(test_table_layer_types),
        cmocka_unit_test(test_zero_table_is_clean), cmocka_unit_test(test_bera_not_worse),
        cmocka_unit_test(test_lim_searches),        cmocka_unit_test(test_evaluators_run),
        cmocka_unit_test(test_measure_command),     cmocka_unit_test(test_second_table),
        cmocka_unit_test(test_capmin_circuit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
