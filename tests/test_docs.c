/*
** The README says what the code does: the model-file version it names is
** MODEL_VERSION, its Ctrl-C paragraph is the one `bnas run --help` prints (the
** behaviour test_resume.c checks with real signals), and the --predictions
** option it documents is the one `bnas eval --help` lists.
*/
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"
#include "tests/testutil.h"

static char g_dir[256]; /* scratch directory */

/* text with every run of white space made one space, in place; returns text. */
static char *squeeze(char *text) {
    char *w = text;
    for (const char *r = text; *r; r++) {
        if (isspace((unsigned char)*r)) {
            if (w > text && w[-1] != ' ') *w++ = ' ';
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
    return text;
}

/* The README, white space squeezed (the caller frees it). */
static char *readme(void) {
    const char *src = getenv("BNAS_SOURCE_DIR");
    assert_non_null(src);
    char path[600];
    snprintf(path, sizeof path, "%s/README.md", src);
    char *t = slurp(path, NULL);
    if (!t) fail_msg("cannot open %s", path);
    return squeeze(t);
}

/* What `bnas ARGS` prints on stdout, white space squeezed (the caller frees it). */
static char *help_of(const char *args) {
    char cmd[1000], out[400];
    snprintf(out, sizeof out, "%s/help.txt", g_dir);
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>&1", bnas_bin(), args, out);
    assert_int_equal(sh(cmd), 0);
    char *t = slurp(out, NULL);
    assert_non_null(t);
    return squeeze(t);
}

static void test_model_version(void **state) {
    (void)state;
    char *r = readme(), want[64];
    snprintf(want, sizeof want, "the format version (%u;", MODEL_VERSION);
    if (!strstr(r, want)) fail_msg("README.md does not say '%s' (engine/model.h: MODEL_VERSION %u)", want, MODEL_VERSION);
    free(r);
}

static void test_ctrl_c(void **state) {
    (void)state;
    char *r = readme(), *h = help_of("run --help");
    char *p = strstr(h, "Ctrl-C");
    assert_non_null(p);
    size_t len = strlen(p);
    if (len && p[len - 1] == ' ') p[--len] = 0;
    assert_true(strstr(p, "killed at once") && strstr(p, "end of their current epoch") &&
                strstr(p, "A second Ctrl-C quits at once."));
    if (!strstr(r, p)) fail_msg("README.md does not say what `bnas run --help` says:\n%s", p);
    free(r), free(h);
}

static void test_predictions_option(void **state) {
    (void)state;
    char *r = readme(), *h = help_of("eval --help");
    assert_non_null(strstr(h, "--predictions FILE"));
    assert_non_null(strstr(r, "`bnas eval trial_N.bnm --predictions FILE`"));
    free(r), free(h);
}

static int setup(void **state) {
    (void)state;
    return tmpdir_make(g_dir, sizeof g_dir, "docs");
}

static int teardown(void **state) {
    (void)state;
    return tmpdir_remove(g_dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_version),
        cmocka_unit_test(test_ctrl_c),
        cmocka_unit_test(test_predictions_option),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
