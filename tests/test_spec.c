/* Spec parsing: a full valid spec, named search spaces, and located error messages. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/err.h"
#include "engine/arch.h"
#include "engine/net.h"
#include "engine/rng.h"
#include "engine/train.h"
#include "nas/space.h"
#include "nas/spec.h"
#include "tests/testutil.h"

static const char *good =
    "name: t1\n"
    "seed: 42\n"
    "threads: 2\n"
    "data: {name: synthetic, train: 1000, val: 200, test: 300}\n"
    "search_space:\n"
    "  conv_blocks: {type: int, low: 0, high: 2}\n"
    "  conv_channels: {type: choice, values: [8, 16]}\n"
    "  fc_layers: [1, 2]\n"
    "  fc_width: {type: choice, values: [32, 64, 128]}\n"
    "  loss: {type: choice, values: [ce, mhl]}\n"
    "  mhl_b: {type: log, low: 8, high: 256}\n"
    "  flip_rate: {type: float, low: 0, high: 0.1}\n"
    "  epochs: 3\n"
    "strategy: {name: evolution, batch: 4, population: 10, sample: 3, mutation_prob: 0.3}\n"
    "budget: {trials: 20, wall_time: 10m}\n"
    "objectives:\n"
    "  - {metric: val_acc, direction: max}\n"
    "  - {metric: model_bytes, direction: min, ref: 100000}\n"
    "  - {metric: memory.macs, direction: min, ref: 1e9}\n"
    "constraints: {max_model_bytes: 100000}\n"
    "evaluators:\n"
    "  - accuracy\n"
    "  - {name: memory}\n";

static void test_good_spec(void **state) {
    (void)state;
    spec s;
    int rc = spec_parse(&s, "good.yaml", good, NULL, NULL);
    if (rc) fprintf(stderr, "%s\n", bn_errmsg());
    assert_int_equal(rc, BN_OK);
    assert_string_equal(s.name, "t1");
    assert_int_equal(s.seed, 42);
    assert_int_equal(s.threads, 2);
    assert_string_equal(s.data, "synthetic");
    assert_int_equal(s.n_train, 1000);
    assert_int_equal(s.n_val, 200);
    assert_int_equal(s.n_dims, 8);
    assert_int_equal(s.strategy, STRAT_EVOLUTION);
    assert_int_equal(s.population, 10);
    assert_int_equal(s.max_trials, 20);
    assert_float_equal(s.wall_time, 600, 0);
    assert_int_equal(s.n_obj, 3);
    assert_true(s.obj[0].maximize);
    assert_false(s.obj[1].maximize);
    assert_float_equal(s.obj[1].ref, 100000, 0);
    assert_int_equal(s.n_eval, 2);
    assert_string_equal(s.eval[0].name, "accuracy");
    assert_string_equal(s.eval[1].name, "memory");
    assert_int_equal(s.eval[1].n_params, 0);
    const spec_dim *d = &s.dims[s.knob_dim[KNOB_LOSS]];
    assert_int_equal(d->type, DIM_CHOICE);
    assert_float_equal(d->num[1], 1, 0);
    /* Genome layout: per-block genes for conv_channels (2), per-layer fc_width (2). */
    space sp;
    space_init(&sp, &s);
    assert_int_equal(sp.n_genes, 1 + 2 + 1 + 2 + 1 + 1 + 1 + 1);
    /* Same text, same hash; changed text, other hash. */
    spec s2;
    assert_int_equal(spec_parse(&s2, "other.yaml", good, NULL, NULL), BN_OK);
    assert_true(s.hash == s2.hash);
    spec_free(&s2);
    char *changed = strdup(good);
    changed[strlen(changed) - 3] = 'X'; /* "{name: memory}" -> "{name: memorX}" */
    assert_int_equal(spec_parse(&s2, "other.yaml", changed, NULL, NULL), BN_ESPEC);
    assert_non_null(strstr(bn_errmsg(), "other.yaml:23:12: evaluators[1]: unknown evaluator 'memorX'"));
    changed[strlen(changed) - 3] = 'y';
    memcpy(strstr(changed, "seed: 42"), "seed: 43", 8);
    assert_int_equal(spec_parse(&s2, "other.yaml", changed, NULL, NULL), BN_OK);
    assert_true(s.hash != s2.hash);
    spec_free(&s2);
    free(changed);
    spec_free(&s);
}

/* Replaces the first occurrence of from by to in text and parses it as the
   file name; the parse must fail; returns its message. */
static const char *parse_edited(const char *text, const char *name, const char *from, const char *to) {
    static char buf[4096];
    const char *p = strstr(text, from);
    assert_non_null(p);
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(p - text), text, to, p + strlen(from));
    spec s;
    int rc = spec_parse(&s, name, buf, NULL, NULL);
    assert_int_equal(rc, BN_ESPEC);
    return bn_errmsg();
}

/* The edited text's message contains want. */
static void expect_edited_msg(const char *text, const char *name, const char *from, const char *to,
                              const char *want) {
    const char *msg = parse_edited(text, name, from, to);
    if (!strstr(msg, want)) fail_msg("expected '%s' in:\n%s", want, msg);
}

static void expect_msg(const char *from, const char *to, const char *want) {
    expect_edited_msg(good, "bad.yaml", from, to, want);
}

/* Recipe keys beyond the spec's own knobs (engine/recipe.c's spec column):
   a fixed value and a choice of words reach the trial's recipe through the
   table; the canonical text names a key only off its default; mistakes are
   located. */
static void test_recipe_dims(void **state) {
    (void)state;
    char text[4096];
    const char *from = "  epochs: 3\n";
    const char *at = strstr(good, from);
    snprintf(text, sizeof text, "%.*s%s  lr_step: 5\n  flip_bn0: [flipped, clean]\n  xnor_p: 0.1\n%s", (int)(at - good),
             good, from, at + strlen(from));
    spec s;
    assert_int_equal(spec_parse(&s, "r.yaml", text, NULL, NULL), BN_ESPEC); /* xnor_p is an option, not a key */
    assert_non_null(strstr(bn_errmsg(), "r.yaml:16:3: search_space.xnor_p: unknown dimension"));
    if (!strstr(bn_errmsg(), "momentum_format or a recipe key, README)")) fail_msg("%s", bn_errmsg());
    snprintf(text, sizeof text, "%.*s%s  lr_step: 5\n  flip_bn0: [flipped, clean]\n%s", (int)(at - good), good, from,
             at + strlen(from));
    int rc = spec_parse(&s, "r.yaml", text, NULL, NULL);
    if (rc) fprintf(stderr, "%s\n", bn_errmsg());
    assert_int_equal(rc, BN_OK);
    assert_int_equal(s.n_dims, 10);
    assert_int_equal(s.dims[8].knob, KNOB_COUNT);
    space sp;
    space_init(&sp, &s);
    genome g;
    memset(&g, 0, sizeof g);
    g.n = sp.n_genes;
    double v[] = {1, 1, 0, 1, 2, 0, 0, 100, 0.05, 0, 0, 0};
    memcpy(g.g, v, sizeof v);
    space_config c;
    space_decode(&sp, &s, &g, &c);
    assert_true(c.valid);
    assert_int_equal(c.recipe.lr_step, 5);
    assert_int_equal(c.recipe.flip_bn0, BN0_FLIPPED);
    assert_int_equal(c.recipe.flip, FLIP_STE);
    assert_true(c.recipe.p01 == 0.05f && c.recipe.epochs == 3);
    assert_non_null(strstr(c.canon, "|lr_step=5"));
    assert_null(strstr(c.canon, "flip_bn0"));
    g.g[sp.n_genes - 1] = 1; /* flip_bn0 clean */
    space_config c2;
    space_decode(&sp, &s, &g, &c2);
    assert_int_equal(c2.recipe.flip_bn0, BN0_CLEAN);
    assert_non_null(strstr(c2.canon, "|lr_step=5|flip_bn0=clean"));
    assert_true(c.hash != c2.hash);
    spec_free(&s);
    /* located mistakes */
    expect_msg("  epochs: 3\n", "  epochs: 3\n  flip_bn0: sideways\n",
               "bad.yaml:14:13: search_space.flip_bn0: unknown flip_bn0 'sideways' (expected flipped or clean)");
    expect_msg("  epochs: 3\n", "  epochs: 3\n  lta_n: {type: float, low: 1, high: 3}\n",
               "search_space.lta_n: lta_n takes integers: use type int or choice");
    expect_msg("  epochs: 3\n", "  epochs: 3\n  act_p01: 2\n", "search_space.act_p01: 2 is out of range");
    expect_msg("  epochs: 3\n", "  epochs: 3\n  seed: 4\n", "search_space.seed: unknown dimension");
}

static void test_errors_located(void **state) {
    (void)state;
    /* Unknown key at the top (line 3, column 1). */
    expect_msg("threads: 2", "threadz: 2", "bad.yaml:3:1: threadz: unknown key");
    /* Wrong type of value, located at the value. */
    expect_msg("threads: 2", "threads: two", "bad.yaml:3:10: threads: expected a number, found 'two'");
    /* Range error inside a nested mapping. */
    expect_msg("batch: 4,", "batch: 0,", "bad.yaml:14:36: strategy.batch: 0 is out of range");
    /* Bad dimension type with its key path. */
    expect_msg("{type: int, low: 0, high: 2}", "{type: integer, low: 0, high: 2}",
               "bad.yaml:6:23: search_space.conv_blocks.type: unknown type 'integer'");
    /* Bad choice value inside a list. */
    expect_msg("[ce, mhl]", "[ce, hinge]",
               "bad.yaml:10:37: search_space.loss.values[1]: unknown loss 'hinge'");
    /* The training-memory limit must be positive. */
    expect_msg("{max_model_bytes: 100000}", "{max_model_bytes: 100000, max_host_memory: 0}",
               "constraints.max_host_memory: 0 is out of range");
    /* Unknown dimension. */
    expect_msg("  epochs: 3\n", "  epoch: 3\n", "bad.yaml:13:3: search_space.epoch: unknown dimension");
    /* test_acc never selects. */
    expect_msg("metric: val_acc", "metric: test_acc", "objectives[0].metric: test accuracy is recorded");
    /* A minimised objective without a reference point. */
    expect_msg("model_bytes, direction: min, ref: 100000", "model_bytes, direction: min",
               "objectives[1].ref: missing");
    /* Metric of an undeclared evaluator. */
    expect_msg("metric: memory.macs", "metric: fault.acc", "unknown metric 'fault.acc'");
    /* An evaluator on the test split cannot be an objective. */
    {
        spec t;
        const char *txt = "data: {name: synthetic}\nsearch_space: {fc_width: [16, 32]}\n"
                          "strategy: random\nbudget: {trials: 2}\n"
                          "objectives: [{metric: fault.acc, direction: max}]\n"
                          "evaluators: [{name: fault, split: test}]\n";
        assert_int_equal(spec_parse(&t, "f.yaml", txt, NULL, NULL), BN_ESPEC);
        assert_non_null(strstr(bn_errmsg(), "f.yaml:5:23: objectives[0].metric: evaluator fault "
                                            "measures on the test split"));
    }
    /* A parameter the evaluator does not take. */
    expect_msg("{name: memory}", "{name: memory, p: [0.001, 0.01]}",
               "bad.yaml:23:12: evaluators[1]: evaluator memory has no parameter 'p'");
    /* YAML syntax errors, located where libfyaml finds them (not at 1:1). */
    expect_msg("threads: 2\n", "threads: 2: 3\n",
               "bad.yaml:3:11: yaml: "); /* libfyaml's wording is its own */
    expect_msg("name: t1\n", "name: \"t1\n", "bad.yaml:1:7: yaml: ");
    expect_msg("  epochs: 3\n", "  epochs: 3\n    bad: 1\n", "bad.yaml:13:11: yaml:");
    {
        /* ... and in a named search space file, in that file. */
        spec t;
        const char *txt = "data: {name: synthetic}\nsearch_space: mine\nstrategy: random\n"
                          "budget: {trials: 2}\nobjectives: [{metric: val_acc, direction: max}]\n";
        assert_int_equal(spec_parse(&t, "s.yaml", txt, "spaces/mine.yaml", "fc_width: 16\nepochs: [1, 2\n"),
                         BN_ESPEC);
        if (!strstr(bn_errmsg(), "spaces/mine.yaml:3:1: yaml: "))
            fail_msg("got:\n%s", bn_errmsg());
    }
    /* Several mistakes are all reported. */
    const char *msg = parse_edited(good, "bad.yaml", "seed: 42\nthreads: 2", "seed: x\nthreads: 0");
    assert_non_null(strstr(msg, "bad.yaml:2:7: seed:"));
    assert_non_null(strstr(msg, "bad.yaml:3:10: threads:"));
    assert_non_null(strstr(msg, "(2 mistakes)"));
}

/* Over-wide topology items: one message, "width N out of range 1..65536", from
   arch_parse and, located, from the spec (whose values become those items). */
static void test_width_range(void **state) {
    (void)state;
    static const struct {
        const char *topo, *want;
    } bad[] = {
        {"FC1000000", "topology \"FC1000000\": width 1000000 out of range 1..65536"},
        {"FC65537", "width 65537 out of range 1..65536"},
        {"FC0", "width 0 out of range 1..65536"},
        {"FC123456789012345678901234", "width 123456789012345678901234 out of range 1..65536"},
        {"C1000000-FC10", "topology \"C1000000-FC10\": channels 1000000 out of range 1..65536"},
        {"C8-MP2-FC2000000", "width 2000000 out of range"},
        {"FCx", "bad item \"FCx\""},
    };
    arch a;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(arch_parse(&a, bad[i].topo), BN_EARG);
        if (!strstr(bn_errmsg(), bad[i].want)) fail_msg("%s: expected '%s' in '%s'", bad[i].topo, bad[i].want, bn_errmsg());
    }
    assert_int_equal(arch_parse(&a, "C65536-FC65536"), BN_OK);
    assert_int_equal(a.items[0].size, 65536);
    assert_int_equal(a.items[1].size, 65536);
    expect_msg("values: [32, 64, 128]", "values: [32, 1000000, 128]",
               "bad.yaml:9:41: search_space.fc_width.values[1]: width 1000000 out of range 1..65536");
    expect_msg("fc_width: {type: choice, values: [32, 64, 128]}", "fc_width: 1000000",
               "bad.yaml:9:13: search_space.fc_width: width 1000000 out of range 1..65536");
    expect_msg("fc_width: {type: choice, values: [32, 64, 128]}", "fc_width: {type: int, low: 16, high: 2000000}",
               "bad.yaml:9:40: search_space.fc_width.high: width 2000000 out of range 1..65536");
    expect_msg("values: [8, 16]", "values: [8, 1000000]",
               "bad.yaml:7:45: search_space.conv_channels.values[1]: channels 1000000 out of range 1..65536");
    expect_msg("values: [8, 16]", "values: [8, 0]", "search_space.conv_channels.values[1]: channels 0 out of range");
    expect_msg("values: [8, 16]", "values: [8, 16.5]", "search_space.conv_channels.values[1]: conv_channels takes integers");
}

/* determinism: portable (the default) or fast; anything else is a located error. */
static void test_determinism_mode(void **state) {
    (void)state;
    spec s;
    assert_int_equal(spec_parse(&s, "good.yaml", good, NULL, NULL), BN_OK);
    assert_int_equal(s.determinism_fast, 0);
    spec_free(&s);
    static const char *const modes[] = {"portable", "fast"};
    for (int m = 0; m < 2; m++) {
        char text[4096];
        snprintf(text, sizeof text, "%sdeterminism: %s\n", good, modes[m]);
        assert_int_equal(spec_parse(&s, "good.yaml", text, NULL, NULL), BN_OK);
        assert_int_equal(s.determinism_fast, m);
        spec_free(&s);
    }
    expect_msg("threads: 2\n", "threads: 2\ndeterminism: exact\n",
               "bad.yaml:4:14: determinism: unknown mode 'exact' (expected portable or fast)");
}

/* An evaluator's table file is checked when the spec is read: a missing or
   malformed one is a located spec error, not a failure of every trial. */
static void test_evaluator_files(void **state) {
    (void)state;
    char dir[256], good_csv[300], one_row[300], text[2048];
    assert_int_equal(tmpdir_make(dir, sizeof dir, "spec_eval"), 0);
    snprintf(good_csv, sizeof good_csv, "%s/t.csv", dir);
    snprintf(one_row, sizeof one_row, "%s/one.csv", dir);
    write_text(good_csv, "temperature,p01,p10\n25,0,0\n85,0.001,0.01\n");
    write_text(one_row, "25,0,0\n");
    const char *head = "data: {name: synthetic}\nsearch_space: {fc_width: [16, 32]}\nstrategy: random\n"
                       "budget: {trials: 2}\nobjectives: [{metric: val_acc, direction: max}]\n";
    spec t;
    snprintf(text, sizeof text, "%sevaluators:\n  - {name: fefet, table: %s}\n  - {name: lim, table: %s}\n", head,
             good_csv, good_csv);
    if (spec_parse(&t, "e.yaml", text, NULL, NULL)) fail_msg("%s", bn_errmsg());
    spec_free(&t);
    snprintf(text, sizeof text, "%sevaluators:\n  - {name: fefet, repeats: 2, table: %s/missing.csv}\n", head, dir);
    assert_int_equal(spec_parse(&t, "e.yaml", text, NULL, NULL), BN_ESPEC);
    char want[600];
    snprintf(want, sizeof want, "e.yaml:7:38: evaluators[0].table: cannot open '%s/missing.csv': No such file", dir);
    if (!strstr(bn_errmsg(), want)) fail_msg("expected '%s' in:\n%s", want, bn_errmsg());
    /* A file that is no table, and a table lim cannot use, each located. */
    snprintf(text, sizeof text, "%sevaluators:\n  - {name: fefet, table: %s}\n  - {name: lim, table: %s}\n", head,
             dir, one_row);
    assert_int_equal(spec_parse(&t, "e.yaml", text, NULL, NULL), BN_ESPEC);
    const char *msg = bn_errmsg();
    if (!strstr(msg, "e.yaml:7:26: evaluators[0].table: ") || !strstr(msg, "e.yaml:8:24: evaluators[1].table: ") ||
        !strstr(msg, "at least one faster one"))
        fail_msg("got:\n%s", msg);
    assert_int_equal(tmpdir_remove(dir), 0);
}

/* Image counts beyond the standard files are located spec errors (before a
   study file exists); the files actually loaded are checked in test_data.c. */
static void test_data_counts(void **state) {
    (void)state;
    const char *fm = "data: {name: fashion_mnist, train: 1000, val: 200, test: 300}\n";
    const char *from = "data: {name: synthetic, train: 1000, val: 200, test: 300}\n";
    char text[4096];
    const char *p = strstr(good, from);
    assert_non_null(p);
    snprintf(text, sizeof text, "%.*s%s%s", (int)(p - good), good, fm, p + strlen(from));
    spec s;
    if (spec_parse(&s, "c.yaml", text, NULL, NULL)) fail_msg("%s", bn_errmsg());
    spec_free(&s);
    expect_edited_msg(text, "c.yaml", "train: 1000", "train: 70000",
                      "c.yaml:4:36: data.train: 70000 images asked, fashion_mnist has 60000 training images");
    expect_edited_msg(text, "c.yaml", "train: 1000, val: 200", "train: 59000, val: 5000",
                      "c.yaml:4:36: data.train + data.val: 59000 + 5000 images asked, fashion_mnist has 60000 training images");
    expect_edited_msg(text, "c.yaml", "val: 200", "val: 60000",
                      "c.yaml:4:47: data.val: 60000 images asked, fashion_mnist has 60000 training images");
    expect_edited_msg(text, "c.yaml", "test: 300", "test: 10001",
                      "c.yaml:4:58: data.test: 10001 images asked, fashion_mnist has 10000 test images");
    expect_edited_msg(text, "c.yaml", "fashion_mnist, train: 1000", "cifar10, dir: x, train: 50001",
                      "c.yaml:4:38: data.train: 50001 images asked, cifar10 has 50000 training images");
    /* Both too many alone: two mistakes, not a third for their sum. */
    const char *msg = parse_edited(text, "c.yaml", "train: 1000, val: 200, test: 300", "train: 70000, val: 200, test: 10001");
    assert_non_null(strstr(msg, "(2 mistakes)"));
    /* The whole training file, without validation, is allowed by the spec. */
    snprintf(text, sizeof text, "%.*sdata: {name: fashion_mnist, train: 55000, val: 5000, test: 10000}\n%s",
             (int)(p - good), good, p + strlen(from));
    if (spec_parse(&s, "c.yaml", text, NULL, NULL)) fail_msg("%s", bn_errmsg());
    spec_free(&s);
}

static void test_named_space(void **state) {
    (void)state;
    const char *src = getenv("BNAS_SOURCE_DIR");
    char path[1024], text[4096];
    spec s;
    int rc;
    /* Every shipped experiment parses. */
    const char *shipped[] = {"quick", "fc", "vgg", "bop/search"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/experiments/%s.yaml", src ? src : "..", shipped[i]);
        rc = spec_load(&s, path);
        if (rc) fprintf(stderr, "%s\n", bn_errmsg());
        assert_int_equal(rc, BN_OK);
        spec_free(&s);
    }
    /* A spec naming search_spaces/vgg.yaml, written next to the experiments folder. */
    snprintf(text, sizeof text,
             "data: {name: synthetic}\nsearch_space: vgg\nstrategy: random\n"
             "budget: {trials: 5}\nobjectives: [{metric: val_acc, direction: max}]\n");
    snprintf(path, sizeof path, "%s/experiments/named.yaml", src ? src : "..");
    rc = spec_parse(&s, path, text, NULL, NULL);
    if (rc) fprintf(stderr, "%s\n", bn_errmsg());
    assert_int_equal(rc, BN_OK);
    assert_non_null(s.space_text);
    assert_non_null(strstr(s.space_path, "search_spaces/vgg.yaml"));
    assert_true(s.knob_dim[KNOB_CONV_BLOCKS] >= 0);
    /* The frozen copy parses without the file, to the same hash. */
    spec f;
    assert_int_equal(spec_parse(&f, "/nowhere/named.yaml", text, s.space_path, s.space_text), BN_OK);
    assert_true(f.hash == s.hash);
    spec_free(&f);
    spec_free(&s);
    /* An unknown space is reported at its name. */
    snprintf(text, sizeof text,
             "data: {name: synthetic}\nsearch_space: nosuch\nstrategy: random\n"
             "budget: {trials: 5}\nobjectives: [{metric: val_acc, direction: max}]\n");
    assert_int_equal(spec_parse(&s, path, text, NULL, NULL), BN_ESPEC);
    assert_non_null(strstr(bn_errmsg(), "named.yaml:2:15: search_space: no search space 'nosuch'"));
}

static void test_decode(void **state) {
    (void)state;
    spec s;
    assert_int_equal(spec_parse(&s, "good.yaml", good, NULL, NULL), BN_OK);
    space sp;
    space_init(&sp, &s);
    genome g;
    memset(&g, 0, sizeof g);
    g.n = sp.n_genes;
    /* conv_blocks=1, ch[0]=idx1 (16), ch[1]=idx0, fc_layers idx1 (2), width idx 2 (128), idx 0 (32),
       loss ce, mhl_b 100 (inactive), flip 0.05 */
    double v[] = {1, 1, 0, 1, 2, 0, 0, 100, 0.05, 0};
    memcpy(g.g, v, sizeof v);
    space_config c;
    space_decode(&sp, &s, &g, &c);
    assert_string_equal(c.topology, "C16-MP2-FC128-FC32");
    assert_true(c.valid);
    /* 32-bit words per neuron plus a 4-byte threshold per hidden neuron: conv 16 ch, fan_in 9:
       1 word; FC128 after 14x14x16 = 3136 inputs: 98 words; FC32: 4 words; classifier 10 x
       1 word; scale. */
    size_t want = 16 * (4 + 4) + 128 * (98 * 4 + 4) + 32 * (4 * 4 + 4) + 10 * 4 + 4;
    assert_int_equal(c.model_bytes, want);
    /* mhl_b does not matter under cross-entropy: same hash. */
    genome g2 = g;
    g2.g[7] = 200;
    space_config c2;
    space_decode(&sp, &s, &g2, &c2);
    assert_true(c.hash == c2.hash);
    /* Genes of the unused second conv block do not matter either. */
    g2.g[2] = 1;
    space_decode(&sp, &s, &g2, &c2);
    assert_true(c.hash == c2.hash);
    /* The training-memory constraint: the plan's estimate against
       max_host_memory (default 8 GiB), the reason recorded. */
    assert_true(s.max_host_memory == SPEC_HOST_MEMORY_DEFAULT);
    arch a;
    net plan;
    assert_int_equal(arch_parse(&a, c.topology), BN_OK);
    assert_int_equal(net_plan(&plan, &a, s.in_c, s.in_h, s.in_w, s.classes), BN_OK);
    train_recipe r = train_recipe_default();
    r.batch = c.batch;
    double mem = (double)train_memory_bytes(&plan, &r);
    s.max_host_memory = mem;
    space_decode(&sp, &s, &g, &c2);
    assert_true(c2.valid);
    s.max_host_memory = mem - 1;
    space_decode(&sp, &s, &g, &c2);
    assert_false(c2.valid);
    assert_non_null(strstr(c2.reason, "exceeds max_host_memory"));
    s.max_host_memory = SPEC_HOST_MEMORY_DEFAULT;
    /* Round trip of the genome text. */
    char text[1024];
    genome back;
    space_genome_format(&g, text, sizeof text);
    assert_int_equal(space_genome_parse(&back, text), BN_OK);
    assert_memory_equal(&back, &g, sizeof g);
    spec_free(&s);
}

/* The decoded size and MACs equal the engine's for the network it builds. */
static void test_decode_matches_engine(void **state) {
    (void)state;
    const char *text =
        "data: {name: synthetic}\n"
        "search_space: {conv_blocks: {type: int, low: 0, high: 4}, conv_channels: [3, 16, 33],\n"
        "  conv_pool: [0, 1], fc_layers: {type: int, low: 0, high: 2}, fc_width: [10, 64, 100]}\n"
        "strategy: random\nbudget: {trials: 1}\nobjectives: [{metric: val_acc, direction: max}]\n";
    spec s;
    assert_int_equal(spec_parse(&s, "m.yaml", text, NULL, NULL), BN_OK);
    space sp;
    space_init(&sp, &s);
    pcg32 r;
    rng_keyed(&r, 3, 0, RNG_SAMPLE);
    int checked = 0, invalid = 0;
    for (int t = 0; t < 200; t++) {
        genome g;
        space_sample(&sp, &s, &r, &g);
        space_config c;
        space_decode(&sp, &s, &g, &c);
        arch a;
        if (!c.valid) {
            invalid++;
            continue;
        }
        assert_int_equal(arch_parse(&a, c.topology), BN_OK);
        net n;
        assert_int_equal(net_create(&n, &a, 1, 28, 28, 10), BN_OK);
        assert_int_equal(c.model_bytes, net_packed_bytes(&n));
        assert_float_equal(c.macs, net_macs(&n), 0);
        net_free(&n);
        checked++;
    }
    assert_true(checked > 100);
    assert_true(invalid > 0); /* empty nets and five pools of a 28x28 input */
    spec_free(&s);
}


/* Bop as a search dimension: optimizer, bop_gamma, bop_tau, momentum_format. */
static const char *bop_text =
    "data: {name: synthetic}\n"
    "search_space:\n"
    "  fc_width: [32, 64]\n"
    "  optimizer: {type: choice, values: [adam, bop]}\n"
    "  bop_gamma: {type: log, low: 0.001, high: 0.01}\n"
    "  bop_tau: [1e-6, 1e-7]\n"
    "  momentum_format: {type: choice, values: [fp32, e4m7b28, e8m23, fp16, e5m6b30n]}\n"
    "strategy: random\n"
    "budget: {trials: 4}\n"
    "objectives: [{metric: val_acc, direction: max}]\n";

static void expect_bop_msg(const char *from, const char *to, const char *want) {
    expect_edited_msg(bop_text, "bop.yaml", from, to, want);
}

static void test_bop_dims(void **state) {
    (void)state;
    spec s;
    int rc = spec_parse(&s, "bop.yaml", bop_text, NULL, NULL);
    if (rc) fprintf(stderr, "%s\n", bn_errmsg());
    assert_int_equal(rc, BN_OK);
    assert_int_equal(s.n_dims, 5);
    const spec_dim *od = &s.dims[s.knob_dim[KNOB_OPTIMIZER]];
    assert_int_equal(od->type, DIM_CHOICE);
    assert_float_equal(od->num[0], 0, 0);
    assert_float_equal(od->num[1], 1, 0);
    assert_int_equal(s.dims[s.knob_dim[KNOB_BOP_GAMMA]].type, DIM_LOG);
    /* Format names are parsed by fpfmt_parse and held as exact codes. */
    const spec_dim *fd = &s.dims[s.knob_dim[KNOB_MOMENTUM_FORMAT]];
    assert_int_equal(fd->n, 5);
    const char *want[] = {"e8m23b127", "e4m7b28", "e8m23b127", "e5m10b15", "e5m6b30n"};
    for (int i = 0; i < 5; i++) {
        char name[32];
        fpfmt F = spec_format_of_code(fd->num[i]);
        fpfmt_name(&F, name, sizeof name);
        assert_string_equal(name, want[i]);
    }
    /* Genes: fc_width (1 layer), optimizer, gamma, tau, format. */
    space sp;
    space_init(&sp, &s);
    assert_int_equal(sp.n_genes, 5);
    genome g;
    memset(&g, 0, sizeof g);
    g.n = 5;
    double adam[] = {1, 0, 0.005, 1, 1};
    memcpy(g.g, adam, sizeof adam);
    space_config a, b;
    space_decode(&sp, &s, &g, &a);
    assert_true(a.valid);
    assert_int_equal(a.optimizer, 0);
    /* Under Adam the text is the one without the knob, and the Bop genes are inactive. */
    assert_string_equal(a.canon, "FC64|ce|b=0|flip=0|epochs=1|lr=0.001|batch=256");
    assert_false(a.active[2] || a.active[3] || a.active[4]);
    genome g2 = g;
    g2.g[2] = 0.002, g2.g[3] = 0, g2.g[4] = 3;
    space_decode(&sp, &s, &g2, &b);
    assert_true(a.hash == b.hash);
    /* Under Bop they count, with the format's canonical name. */
    g.g[1] = 1;
    space_decode(&sp, &s, &g, &a);
    assert_int_equal(a.optimizer, 1);
    assert_true(a.active[2] && a.active[3] && a.active[4]);
    assert_string_equal(a.canon, "FC64|ce|b=0|flip=0|epochs=1|lr=0.001|batch=256|opt=bop|gamma=0.005|tau=1e-07|mom=e4m7b28");
    assert_int_equal(a.momentum.e, 4);
    assert_int_equal(a.momentum.f, 7);
    assert_int_equal(a.momentum.bias, 28);
    assert_float_equal(a.bop_gamma, 0.005, 0);
    assert_float_equal(a.bop_tau, 1e-7, 0);
    g2 = g;
    g2.g[4] = 3; /* fp16: another configuration */
    space_decode(&sp, &s, &g2, &b);
    assert_true(a.hash != b.hash);
    assert_non_null(strstr(b.canon, "|mom=e5m10b15"));
    /* fp32 and e8m23 are the same format: one configuration. */
    g.g[4] = 0;
    space_decode(&sp, &s, &g, &a);
    g2 = g;
    g2.g[4] = 2;
    space_decode(&sp, &s, &g2, &b);
    assert_true(a.hash == b.hash);
    assert_non_null(strstr(a.canon, "|mom=e8m23b127"));
    spec_free(&s);
    /* A fixed Bop optimizer without the other knobs takes the recipe defaults. */
    const char *fixed = "data: {name: synthetic}\nsearch_space: {fc_width: 32, optimizer: bop}\n"
                        "strategy: random\nbudget: {trials: 1}\n"
                        "objectives: [{metric: val_acc, direction: max}]\n";
    assert_int_equal(spec_parse(&s, "f.yaml", fixed, NULL, NULL), BN_OK);
    space_init(&sp, &s);
    memset(&g, 0, sizeof g);
    g.n = sp.n_genes;
    space_decode(&sp, &s, &g, &a);
    assert_string_equal(a.canon, "FC32|ce|b=0|flip=0|epochs=1|lr=0.001|batch=256|opt=bop|gamma=0.001|tau=1e-06|mom=e8m23b127");
    spec_free(&s);
}

static void test_bop_errors_located(void **state) {
    (void)state;
    /* A bad format name, located at the value, with fpfmt_parse's reason. */
    expect_bop_msg("e4m7b28", "e9m3",
                   "bop.yaml:7:50: search_space.momentum_format.values[1]: float format 'e9m3': expected fp32");
    expect_bop_msg("e5m6b30n", "e5m6x",
                   "bop.yaml:7:72: search_space.momentum_format.values[4]: float format 'e5m6x'");
    /* A format whose range binary32 cannot hold. */
    expect_bop_msg("e4m7b28", "e8m7b200", "search_space.momentum_format.values[1]: float format e8m7b200");
    /* A plain value is a fixed format and is checked the same way. */
    expect_bop_msg("{type: choice, values: [fp32, e4m7b28, e8m23, fp16, e5m6b30n]}", "fp8",
                   "bop.yaml:7:20: search_space.momentum_format: float format 'fp8'");
    /* Unknown optimizer. */
    expect_bop_msg("[adam, bop]", "[adam, sgd]",
                   "bop.yaml:4:44: search_space.optimizer.values[1]: unknown optimizer 'sgd' (expected adam or bop)");
    /* Words are choices, not ranges. */
    expect_bop_msg("{type: choice, values: [fp32, e4m7b28, e8m23, fp16, e5m6b30n]}", "{type: int, low: 1, high: 2}",
                   "bop.yaml:7:27: search_space.momentum_format: momentum_format is a choice of format names, not int");
    /* Range of gamma and tau. */
    expect_bop_msg("low: 0.001", "low: 0", "bop.yaml:5:31: search_space.bop_gamma.low: 0 is out of range");
    expect_bop_msg("[1e-6, 1e-7]", "[1e-6, -1]", "bop.yaml:6:19: search_space.bop_tau[1]: -1 is out of range");
    /* Bop knobs without an optimizer that can be bop. */
    const char *msg = parse_edited(bop_text, "bop.yaml", "[adam, bop]", "[adam]");
    assert_non_null(strstr(msg, "bop.yaml:5:3: search_space.bop_gamma: set, but optimizer is never bop"));
    assert_non_null(strstr(msg, "bop.yaml:7:3: search_space.momentum_format: set, but optimizer is never bop"));
    expect_bop_msg("  optimizer: {type: choice, values: [adam, bop]}\n", "", /* lines move up by one */
                   "bop.yaml:4:3: search_space.bop_gamma: set, but optimizer is never bop");
    /* ... located in the named search space file when declared there. */
    spec t;
    const char *txt = "data: {name: synthetic}\nsearch_space: mine\nstrategy: random\n"
                      "budget: {trials: 2}\nobjectives: [{metric: val_acc, direction: max}]\n";
    assert_int_equal(spec_parse(&t, "s.yaml", txt, "spaces/mine.yaml", "fc_width: 16\nbop_tau: 1e-6\n"), BN_ESPEC);
    msg = bn_errmsg();
    if (!strstr(msg, "spaces/mine.yaml:2:1: search_space.bop_tau: set, but optimizer is never bop"))
        fail_msg("got:\n%s", msg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_spec),
        cmocka_unit_test(test_errors_located),
        cmocka_unit_test(test_width_range),
        cmocka_unit_test(test_determinism_mode),
        cmocka_unit_test(test_evaluator_files),
        cmocka_unit_test(test_data_counts),
        cmocka_unit_test(test_named_space),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_decode_matches_engine),
        cmocka_unit_test(test_bop_dims),
        cmocka_unit_test(test_recipe_dims),
        cmocka_unit_test(test_bop_errors_located),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
