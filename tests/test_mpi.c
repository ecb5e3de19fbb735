/*
** Distributed search: `mpirun -np 3 bnas mpi run` (one controller, two
** workers) through the real binary ($BNAS_BIN) must give the same database as
** `bnas run` of the same spec (timing columns excluded, store_dump): with real
** training on FashionMNIST, when a worker is killed mid-search (its trial is
** rerun elsewhere), when an MPI run resumes a half-finished study, and with a
** trial that crashes and one that hangs (FAIL rows, as in `bnas run`).
** Skips only in a build without -DBNAS_MPI=ON.
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
#include <sys/wait.h>
#include <unistd.h>

#include "engine/err.h"
#include "nas/search.h"
#include "nas/spec.h"
#include "nas/store.h"
#include "tests/testutil.h"

static char dir[256];
static const char *bin;

/* Synthetic trials (BNAS_SYNTHETIC_MS sets their duration). */
static const char *synth_spec =
    "name: mpi_synth\n"
    "seed: 5\n"
    "threads: 2\n"
    "data: {name: synthetic}\n"
    "search_space:\n"
    "  fc_layers: {type: int, low: 1, high: 3}\n"
    "  fc_width: [16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024]\n"
    "  loss: [ce, mhl]\n"
    "  mhl_b: [8, 16, 32, 64, 128]\n"
    "  flip_rate: {type: float, low: 0, high: 0.1}\n"
    "  epochs: {type: int, low: 1, high: 10}\n"
    "strategy: {name: evolution, batch: 6, population: 12, sample: 4}\n"
    "budget: {trials: %d}\n"
    "objectives:\n"
    "  - {metric: val_acc, direction: max}\n"
    "  - {metric: model_bytes, direction: min, ref: 2000000}\n"
    "evaluators: [memory]\n";

/* Writes text to DIR/NAME.yaml. */
static void write_spec(const char *name, const char *text) {
    char path[400];
    snprintf(path, sizeof path, "%s/%s.yaml", dir, name);
    write_text(path, text);
}

/* The synthetic study with a budget of trials, written to DIR/synth.yaml; its
   text in text (cap bytes). */
static void write_synth(char *text, size_t cap, int trials) {
    snprintf(text, cap, synth_spec, trials);
    write_spec("synth", text);
}

/* The dump of study DIR/NAME.db. */
static char *dump_of(const char *name) {
    char path[400];
    snprintf(path, sizeof path, "%s/%s.db", dir, name);
    return study_dump_of(path);
}

/* `bnas run SPEC --db DB` in one process. */
static void run_single(const char *spec, const char *db) {
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "'%s' run '%s/%s.yaml' --db '%s/%s.db' --quiet", bin, dir, spec, dir, db);
    assert_int_equal(sh(cmd), 0);
}

/* mpirun -np 3 bnas mpi ARGS; stderr to DB.err; returns the exit code.
   Under the sanitizers LeakSanitizer is off in the ranks: Open MPI 4.1's
   MPI_Init/MPI_Finalize leave ~120 KB of its own allocations (every leak
   stack goes through them); memory errors are still caught. */
static int run_mpi(const char *env, const char *mpirun_flags, const char *args, const char *errname) {
    char cmd[2400];
    snprintf(cmd, sizeof cmd,
             "ASAN_OPTIONS=detect_leaks=0 %s timeout 300 mpirun --allow-run-as-root --oversubscribe "
             "-x ASAN_OPTIONS %s -np 3 '%s' mpi %s "
             "> '%s/%s.out' 2> '%s/%s.err'",
             env, mpirun_flags, bin, args, dir, errname, dir, errname);
    int rc = sh(cmd);
    if (rc) {
        char p[400];
        snprintf(p, sizeof p, "%s/%s.err", dir, errname);
        char *e = slurp(p, NULL);
        fprintf(stderr, "mpirun exit %d:\n%s\n", rc, e ? e : "");
        free(e);
    }
    return rc;
}

static int group_setup(void **state) {
    (void)state;
    bin = bnas_bin();
    return tmpdir_make(dir, sizeof dir, "mpi");
}

static int group_teardown(void **state) {
    (void)state;
    return tmpdir_remove(dir);
}

#ifdef BNAS_MPI
static const int have_mpi = 1;
#else
static const int have_mpi = 0;
#endif

/* Real training: the MPI database equals the single-process one. */
static void test_real_equal(void **state) {
    (void)state;
    if (!have_mpi) skip();
    int trials = sanitized() ? 8 : 16;
    char text[4096];
    real_spec(text, sizeof text, "mpi_real", 21, trials,
              "[accuracy, memory, {name: fault, ber: 0.02, repeats: 2, images: 200}]");
    write_spec("real", text);
    run_single("real", "real_single");
    char args[1200];
    snprintf(args, sizeof args, "run '%s/real.yaml' --db '%s/real_mpi.db'", dir, dir);
    assert_int_equal(run_mpi("", "", args, "real_mpi"), 0);
    char *a = dump_of("real_single"), *b = dump_of("real_mpi");
    assert_non_null(strstr(a, "|COMPLETE|"));
    assert_string_equal(a, b);
    free(a);
    free(b);
}

/* A worker killed mid-search: its trial is rerun elsewhere, the file is the same. */
static void test_worker_death(void **state) {
    (void)state;
    if (!have_mpi) skip();
    char text[4096];
    write_synth(text, sizeof text, 36);
    run_single("synth", "synth_single");
    char args[1200];
    snprintf(args, sizeof args, "run '%s/synth.yaml' --db '%s/synth_die.db' --timeout 2", dir, dir);
    assert_int_equal(run_mpi("BNAS_SYNTHETIC_MS=30 BNAS_MPI_DIE=2:10",
                             "--enable-recovery -x BNAS_SYNTHETIC_MS -x BNAS_MPI_DIE", args, "synth_die"),
                     0);
    char p[400];
    snprintf(p, sizeof p, "%s/synth_die.err", dir);
    char *e = slurp(p, NULL);
    assert_non_null(e);
    assert_non_null(strstr(e, "workers 2, died 1, trials rerun 1"));
    free(e);
    char *a = dump_of("synth_single"), *b = dump_of("synth_die");
    assert_string_equal(a, b);
    free(a);
    free(b);
}

/* An MPI resume of a half-finished study ends with the single-process file. */
static void test_resume(void **state) {
    (void)state;
    if (!have_mpi) skip();
    char text[4096], path[400], sp[400];
    write_synth(text, sizeof text, 36);
    char single[400];
    snprintf(single, sizeof single, "%s/synth_single.db", dir);
    if (access(single, F_OK) != 0) run_single("synth", "synth_single");
    /* Half of it in-process: stop after 14 commits (batch 2 of 6 half done). */
    snprintf(sp, sizeof sp, "%s/synth.yaml", dir);
    spec s;
    assert_int_equal(spec_parse(&s, sp, text, NULL, NULL), BN_OK);
    snprintf(path, sizeof path, "%s/synth_half.db", dir);
    store *st = NULL;
    assert_int_equal(store_create(&st, path, &s), BN_OK);
    search_opts o;
    memset(&o, 0, sizeof o);
    o.fn = trial_synthetic;
    o.threads = 2;
    o.stop_after = 14;
    assert_int_equal(search_run(st, &s, &o), BN_EINTR);
    store_close(st);
    spec_free(&s);
    char args[1200];
    snprintf(args, sizeof args, "resume '%s'", path);
    assert_int_equal(run_mpi("", "", args, "synth_half"), 0);
    char *a = dump_of("synth_single"), *b = dump_of("synth_half");
    assert_string_equal(a, b);
    free(a);
    free(b);
}

/* A trial that crashes and one that hangs past budget.trial_time on an MPI
   rank are FAIL rows with the reasons of `bnas run` (the ranks relay to
   worker processes), and the file equals the single-process one. */
static void test_faults(void **state) {
    (void)state;
    if (!have_mpi) skip();
    char text[4096];
    snprintf(text, sizeof text, synth_spec, 24);
    char *b = strstr(text, "budget: {trials: 24}");
    assert_non_null(b);
    const char *nb = "budget: {trials: 24, trial_time: 2}";
    memmove(b + strlen(nb), b + strlen("budget: {trials: 24}"), strlen(b) - strlen("budget: {trials: 24}") + 1);
    memcpy(b, nb, strlen(nb));
    write_spec("faults", text);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "BNAS_TEST_TRIAL_FAULT=crash:3,hang:9 '%s' run '%s/faults.yaml' --db "
             "'%s/faults_single.db' --quiet", bin, dir, dir);
    assert_int_equal(sh(cmd), 0);
    char args[1200];
    snprintf(args, sizeof args, "run '%s/faults.yaml' --db '%s/faults_mpi.db'", dir, dir);
    assert_int_equal(run_mpi("BNAS_TEST_TRIAL_FAULT=crash:3,hang:9", "-x BNAS_TEST_TRIAL_FAULT", args,
                             "faults_mpi"), 0);
    char *a = dump_of("faults_single"), *m = dump_of("faults_mpi");
    assert_non_null(strstr(m, "|FAIL|"));
    assert_non_null(strstr(m, "killed by signal 11 (SIGSEGV)"));
    assert_non_null(strstr(m, "time limit 2 s"));
    assert_string_equal(a, m);
    free(a);
    free(m);
}

/* Usage errors: one rank only. */
static void test_one_rank(void **state) {
    (void)state;
    if (!have_mpi) skip();
    char cmd[1400];
    snprintf(cmd, sizeof cmd,
             "timeout 60 mpirun --allow-run-as-root --oversubscribe -np 1 '%s' mpi run '%s/none.yaml' "
             "> /dev/null 2> '%s/one.err'", bin, dir, dir);
    assert_int_not_equal(sh(cmd), 0);
    char p[400];
    snprintf(p, sizeof p, "%s/one.err", dir);
    char *e = slurp(p, NULL);
    assert_non_null(e);
    assert_non_null(strstr(e, "needs at least 2 ranks"));
    free(e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_equal),
        cmocka_unit_test(test_worker_death),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_faults),
        cmocka_unit_test(test_one_rank),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
