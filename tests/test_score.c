/*
** bnas score through the real binary ($BNAS_BIN), on real FashionMNIST: a
** trial's genome and number give exactly the metrics the search stored for it
** (trial function, seed and evaluators are the study's); a configuration as
** KEY=VALUE arguments equals its genome; values outside the spec's choices
** and dimensions the spec leaves at their default are scored; the saved model
** loads; mistakes exit 2 naming the key.
*/
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"
#include "engine/net.h"
#include "tests/testutil.h"

static char dir[256], spec_path[300], db[300], out[300], err[300];
static char spec_text[4096]; /* real_spec: FC nets of 16..64 units, 2 epochs on 2,000 images */
#define EVALUATORS "[{name: fault, ber: 0.02, repeats: 2, images: 300}, {name: margin, images: 200}]"

static int setup(void **state) {
    (void)state;
    if (tmpdir_make(dir, sizeof dir, "score")) return -1;
    snprintf(spec_path, sizeof spec_path, "%s/score.yaml", dir);
    snprintf(db, sizeof db, "%s/score.db", dir);
    snprintf(out, sizeof out, "%s/out.txt", dir);
    snprintf(err, sizeof err, "%s/err.txt", dir);
    real_spec(spec_text, sizeof spec_text, "score", 7, 4, EVALUATORS);
    write_text(spec_path, spec_text);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    return tmpdir_remove(dir);
}

/* Runs `bnas score SPEC ARGS` with stdout in out and stderr in err; its exit code. */
static int score(const char *args) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' score '%s' %s > '%s' 2> '%s'", bnas_bin(), spec_path, args, out, err);
    return sh(cmd);
}

/* The value printed for metric name in out; fails the test if absent. */
static double printed(const char *name) {
    char *text = slurp(out, NULL);
    assert_non_null(text);
    char key[80];
    snprintf(key, sizeof key, "\n%s ", name);
    char *p = strstr(text, key);
    if (!p) fprintf(stderr, "no '%s' in:\n%s", name, text);
    assert_non_null(p);
    double v = strtod(p + strlen(key), NULL);
    free(text);
    return v;
}

/* out without its timing lines. */
static char *printed_untimed(void) {
    char *text = slurp(out, NULL);
    assert_non_null(text);
    char *t = strstr(text, "\nseconds ");
    assert_non_null(t);
    t[1] = 0;
    return text;
}

static void assert_err_has(const char *what) {
    char *text = slurp(err, NULL);
    assert_non_null(text);
    if (!strstr(text, what)) fprintf(stderr, "expected '%s' in: %s\n", what, text);
    assert_non_null(strstr(text, what));
    free(text);
}

static void test_score_equals_the_search(void **state) {
    (void)state;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' run '%s' --db '%s' --in-process --quiet > /dev/null 2>&1", bnas_bin(),
             spec_path, db);
    assert_int_equal(sh(cmd), 0);

    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT number, genome, config FROM trials WHERE state = 'COMPLETE' "
                                           "ORDER BY number DESC LIMIT 1", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    int number = sqlite3_column_int(q, 0);
    char genome[512], config[512];
    snprintf(genome, sizeof genome, "%s", (const char *)sqlite3_column_text(q, 1));
    snprintf(config, sizeof config, "%s", (const char *)sqlite3_column_text(q, 2));
    sqlite3_finalize(q);
    assert_true(number > 0);

    char args[700];
    snprintf(args, sizeof args, "--genome '%s' --trial %d", genome, number);
    assert_int_equal(score(args), 0);
    char *o = slurp(out, NULL);
    char want[600];
    snprintf(want, sizeof want, "config %s\n", config);
    assert_non_null(strstr(o, want));
    free(o);
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT name, value FROM metrics WHERE trial = ?", -1, &q, NULL), SQLITE_OK);
    sqlite3_bind_int(q, 1, number);
    int n = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(q, 0);
        double v = sqlite3_column_double(q, 1);
        if (printed(name) != v) fprintf(stderr, "%s: score %.17g, search %.17g\n", name, printed(name), v);
        assert_true(printed(name) == v); /* the same bits: same data, seed and evaluators */
        n++;
    }
    sqlite3_finalize(q);
    sqlite3_close(h);
    assert_true(n >= 8); /* val_acc ... train_memory, fault.*, margin.* */

    /* Another trial number is another seed: the same network trains to other weights. */
    snprintf(args, sizeof args, "--genome '%s' --trial %d", genome, number + 100);
    assert_int_equal(score(args), 0);
    (void)printed("val_acc");
}

static void test_score_key_value(void **state) {
    (void)state;
    /* The genome of real_spec's FC48-FC16 under MHL b=32 with flip training: fc_layers 2,
       fc_width indices 3 and 0, loss 1 (mhl), mhl_b 0 (32), flip_rate 1 (0.05), epochs, batch. */
    assert_int_equal(score("--genome 2,3,0,1,0,1,0,0"), 0);
    char *by_genome = printed_untimed();
    assert_non_null(strstr(by_genome, "config FC48-FC16|mhl|b=32|flip=0.05|epochs=2|lr=0.001|batch=100\n"));
    assert_int_equal(score("fc_layers=2 fc_width=[48,16] loss=mhl mhl_b=32 flip_rate=0.05"), 0);
    char *by_keys = printed_untimed();
    assert_string_equal(by_genome, by_keys);
    free(by_genome), free(by_keys);

    /* A width outside the choices, a dimension the spec does not have (lr), a saved model. */
    char args[600];
    snprintf(args, sizeof args, "fc_layers=1 fc_width=100 loss=ce flip_rate=0 lr=0.002 --model '%s/m.bnm'", dir);
    assert_int_equal(score(args), 0);
    char *o = slurp(out, NULL);
    assert_non_null(strstr(o, "config FC100|ce|b=0|flip=0|epochs=2|lr=0.002|batch=100\n"));
    free(o);
    assert_true(printed("val_acc") > 0.5);
    assert_true(printed("cpu_seconds") > 0);
    char path[400];
    snprintf(path, sizeof path, "%s/m.bnm", dir);
    net m;
    train_recipe r;
    assert_int_equal(model_load(&m, &r, path), BN_OK);
    assert_int_equal((int)net_packed_bytes(&m), (int)printed("model_bytes"));
    net_free(&m);
}

static void test_score_mistakes(void **state) {
    (void)state;
    assert_int_equal(score("fc_layers=2 fc_width=[48,16] loss=mhl mhl_b=32"), 2);
    assert_err_has("give flip_rate=VALUE");
    assert_int_equal(score("fc_layers=2 fc_width=[48,16,32] loss=ce flip_rate=0"), 2);
    assert_err_has("fc_width: 3 values for 2 dense layers");
    assert_int_equal(score("fc_layers=2 fc_width=[48,0] loss=ce flip_rate=0"), 2);
    assert_err_has("fc_width[1]: width 0 out of range");
    assert_int_equal(score("fc_layers=1 fc_width=48 loss=hinge flip_rate=0"), 2);
    assert_err_has("unknown loss 'hinge'");
    assert_int_equal(score("fc_layers=1 fc_width=48 loss=ce flip_rate=[0,0.1]"), 2);
    assert_err_has("flip_rate takes one value");
    assert_int_equal(score("depth=3"), 2);
    assert_err_has("unknown dimension 'depth'");
    assert_int_equal(score("'lr={a: 1}'"), 2);
    assert_err_has("lr: expected a value or a list of values, found a mapping");
    assert_int_equal(score("--genome 1,2,3"), 2);
    assert_err_has("has 3 genes");
    assert_int_equal(score("--genome 2,3,0,1,0,1,0,0 loss=ce"), 2);
    assert_int_equal(score("--trial -1"), 2);
    /* A configuration beyond the spec's hard constraints is not trained. */
    char limited[4200];
    snprintf(limited, sizeof limited, "%sconstraints: {max_model_bytes: 5000}\n", spec_text);
    write_text(spec_path, limited);
    assert_int_equal(score("fc_layers=2 fc_width=[64,64] loss=ce flip_rate=0"), 1);
    assert_err_has("invalid configuration");
    assert_int_equal(score("fc_layers=2 fc_width=[64,64] loss=ce flip_rate=0 --no-train"), 0);
    assert_true(printed("valid") == 0);
    assert_true(printed("model_bytes") > 5000);
    assert_int_equal(score("fc_layers=1 fc_width=16 loss=ce flip_rate=0 --no-train"), 0);
    assert_true(printed("valid") == 1);
    write_text(spec_path, spec_text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_score_equals_the_search),
        cmocka_unit_test(test_score_key_value),
        cmocka_unit_test(test_score_mistakes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
