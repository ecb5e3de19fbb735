/*
** Results independent of the host, through the real `bnas` binary ($BNAS_BIN):
** training gives byte-identical model files for every GEMM kernel set the CPU
** has (BNAS_SIMD=portable, avx2, avx512: what other x86-64 hosts pick), for 1
** and 2 threads and whatever OpenBLAS kernel OPENBLAS_CORETYPE forces; and a
** real search gives the same database (timing columns excluded) for 1 and 2
** threads and for the portable and the native kernels. scripts/stress.sh runs
** this test again with the cores loaded by other processes.
*/
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
#include "engine/gemm.h"
#include "nas/store.h"
#include "tests/testutil.h"

static char dir[256];

static int setup(void **state) {
    (void)state;
    return tmpdir_make(dir, sizeof dir, "determinism");
}

static int teardown(void **state) {
    (void)state;
    return tmpdir_remove(dir);
}

/* Runs the shell command cmd, whose output goes to the file log; fails the
   test with that output if it exits non-zero. */
static void run_logged(const char *cmd, const char *log) {
    if (sh(cmd) == 0) return;
    char *t = slurp(log, NULL);
    fail_msg("%s failed:\n%s", cmd, t ? t : "(no log)");
}

/* Runs `bnas train` for topology topo under the environment prefix env and
   returns the model file's bytes (size in *n). */
static char *train_model(const char *env, const char *topo, int threads, size_t *n) {
    char out[400], log[420], cmd[1400];
    static int k;
    snprintf(out, sizeof out, "%s/m%d.bnm", dir, k++);
    snprintf(log, sizeof log, "%s.log", out);
    snprintf(cmd, sizeof cmd,
             "env %s '%s' train --topology %s --epochs 2 --batch 100 --train-images 1500 --val 500 "
             "--flip ste --p 0.05 --seed 3 --threads %d -o '%s' > '%s' 2>&1",
             env, bnas_bin(), topo, threads, out, log);
    run_logged(cmd, log);
    char *m = slurp(out, n);
    assert_non_null(m);
    return m;
}

/* Every layer kind's forward and backward: the fused first convolution, a
   binary convolution (im2col, GEMM backward, col2im), binary dense layers; a
   dense first layer (GEMM forward on pixels); flip training throughout. */
static void test_training_same_bits_everywhere(void **state) {
    (void)state;
    static const char *const topos[] = {"C4-MP2-C8-MP2-FC32", "FC48-FC32"};
    const char *envs[8];
    int n_env = 0;
    envs[n_env++] = "BNAS_SIMD=portable";
    if (gemm_kernels_named("avx2")) envs[n_env++] = "BNAS_SIMD=avx2";
    if (gemm_kernels_named("avx512")) envs[n_env++] = "BNAS_SIMD=avx512";
    envs[n_env++] = "OPENBLAS_CORETYPE=Haswell";
    envs[n_env++] = "OPENBLAS_CORETYPE=SkylakeX";
    envs[n_env++] = "OPENBLAS_CORETYPE=Zen";
    for (size_t t = 0; t < sizeof topos / sizeof topos[0]; t++) {
        size_t n0 = 0;
        char *m0 = train_model("BNAS_DETERMINISM_TEST=1", topos[t], 2, &n0);
        for (int e = 0; e < n_env; e++)
            for (int threads = 1; threads <= 2; threads++) {
                size_t n = 0;
                char *m = train_model(envs[e], topos[t], threads, &n);
                if (n != n0 || memcmp(m, m0, n))
                    fail_msg("%s: model trained with %s on %d threads differs from the default's", topos[t], envs[e],
                             threads);
                free(m);
            }
        print_message("%s: %d environments x 1-2 threads, identical model files (%zu bytes)\n", topos[t], n_env, n0);
        free(m0);
    }
}

static char *study_dump(const char *env, int threads, const char *spec) {
    char db[400], log[420], cmd[1400];
    static int k;
    snprintf(db, sizeof db, "%s/s%d.db", dir, k++);
    snprintf(log, sizeof log, "%s.log", db);
    snprintf(cmd, sizeof cmd, "env %s '%s' run '%s' --db '%s' --threads %d --quiet > '%s' 2>&1", env, bnas_bin(),
             spec, db, threads, log);
    run_logged(cmd, log);
    return study_dump_of(db);
}

/* A real search (FashionMNIST training, fault injection, margin metric). */
static void test_search_same_database_everywhere(void **state) {
    (void)state;
    char spec[300], text[4096];
    snprintf(spec, sizeof spec, "%s/det.yaml", dir);
    real_spec(text, sizeof text, "det", 5, 8,
              "[{name: fault, ber: 0.02, repeats: 2, images: 300}, {name: margin, images: 200}]");
    write_text(spec, text);
    char *d1 = study_dump("BNAS_DETERMINISM_TEST=1", 1, spec);
    char *d2 = study_dump("BNAS_DETERMINISM_TEST=1", 2, spec);
    char *dp = study_dump("BNAS_SIMD=portable OPENBLAS_CORETYPE=Haswell", 2, spec);
    assert_true(strstr(d1, "COMPLETE") != NULL);
    assert_string_equal(d1, d2);
    assert_string_equal(d1, dp);
    free(d1), free(d2), free(dp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_training_same_bits_everywhere),
        cmocka_unit_test(test_search_same_database_everywhere),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
