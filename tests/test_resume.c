/*
** Resume after SIGKILL and Ctrl-C, through the real `bnas` binary ($BNAS_BIN):
** a search is killed at several points (after k committed trials, found by
** polling the study file), resumed, and its final file must equal that of an
** uninterrupted run (timing columns excluded); worker processes (the default),
** --in-process and one thread give that same file. Also: a changed spec is
** refused unless --force, a running study's lock names its process, and the
** exit codes of the commands.
*/
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/err.h"
#include "nas/store.h"
#include "tests/testutil.h"

static char dir[256], spec_path[300];
static const char *bin;

/* The study (real_spec, 24 trials; set up by setup): small FC nets really
   trained (about 30-80 ms a trial), so kills land mid-search. */
static char spec_text[4096];

static void rm_db(const char *db) {
    char p[512];
    unlink(db);
    snprintf(p, sizeof p, "%s-wal", db);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", db);
    unlink(p);
}

static int wait_exit(pid_t pid) {
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

static int run(const char *const *args) { return wait_exit(bnas_spawn(NULL, args)); }

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Number of COMPLETE + FAIL trials in db (-1 if not readable yet). */
static int done_count(const char *db) {
    store *st = NULL;
    if (store_open(&st, db, 1)) return -1;
    store_summary sum;
    int n = -1;
    if (store_summary_get(st, &sum) == BN_OK) n = sum.count[TRIAL_COMPLETE] + sum.count[TRIAL_FAIL];
    store_close(st);
    return n;
}

/* Lets pid run until db has at least k finished trials, then sends sig. */
static void kill_after(pid_t pid, const char *db, int k, int sig) {
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) fail_msg("bnas ended before %d trials were done", k);
        if (done_count(db) >= k) break;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 300) fail_msg("no %d trials done after 300 s", k);
        sleep_ms(2);
    }
    kill(pid, sig);
}

static void test_kill_and_resume(void **state) {
    (void)state;
    char full[400], part[400];
    snprintf(full, sizeof full, "%s/full.db", dir);
    snprintf(part, sizeof part, "%s/part.db", dir);
    rm_db(full);
    rm_db(part);
    const char *a_full[] = {"run", spec_path, "--db", full, NULL};
    assert_int_equal(run(a_full), 0);
    char *want = study_dump_of(full);
    assert_non_null(strstr(want, "|BNASMDL1|")); /* packed models are stored */

    /* One thread gives the same file as two. */
    char one[400];
    snprintf(one, sizeof one, "%s/one.db", dir);
    rm_db(one);
    const char *a_one[] = {"run", spec_path, "--db", one, "--threads", "1", NULL};
    assert_int_equal(run(a_one), 0);
    char *got1 = study_dump_of(one);
    assert_string_equal(want, got1);
    free(got1);

    /* Trials on threads of one process give the same file as worker processes. */
    char inproc[400];
    snprintf(inproc, sizeof inproc, "%s/inproc.db", dir);
    rm_db(inproc);
    const char *a_in[] = {"run", spec_path, "--db", inproc, "--in-process", NULL};
    assert_int_equal(run(a_in), 0);
    char *got_in = study_dump_of(inproc);
    assert_string_equal(want, got_in);
    free(got_in);

    /* SIGKILL after 3 trials (first batch), then after 9 and 17, SIGINT after 21. */
    const char *a_run[] = {"run", spec_path, "--db", part, NULL};
    const char *a_resume[] = {"resume", part, NULL};
    pid_t pid = bnas_spawn(NULL, a_run);
    kill_after(pid, part, 3, SIGKILL);
    assert_int_equal(wait_exit(pid), 128 + SIGKILL);
    int d1 = done_count(part);
    assert_true(d1 >= 3 && d1 < 24);
    pid = bnas_spawn(NULL, a_resume);
    kill_after(pid, part, 9, SIGKILL);
    assert_int_equal(wait_exit(pid), 128 + SIGKILL);
    pid = bnas_spawn(NULL, a_resume);
    kill_after(pid, part, 17, SIGKILL);
    assert_int_equal(wait_exit(pid), 128 + SIGKILL);
    pid = bnas_spawn(NULL, a_resume);
    kill_after(pid, part, 21, SIGINT);
    int code = wait_exit(pid); /* 1: interrupted; 0 only if it finished before the signal */
    assert_true(code == 1 || (code == 0 && done_count(part) == 24));
    assert_int_equal(run(a_resume), 0);
    char *got = study_dump_of(part);
    assert_string_equal(want, got);
    free(got);

    /* A finished study resumes to itself. */
    assert_int_equal(run(a_resume), 0);
    got = study_dump_of(part);
    assert_string_equal(want, got);
    free(got);
    free(want);
}

static void test_changed_spec_refused(void **state) {
    (void)state;
    char db[400];
    snprintf(db, sizeof db, "%s/changed.db", dir);
    rm_db(db);
    const char *a_run[] = {"run", spec_path, "--db", db, NULL};
    pid_t pid = bnas_spawn(NULL, a_run);
    kill_after(pid, db, 2, SIGKILL);
    wait_exit(pid);
    /* Change the budget in the spec file. */
    char *changed = malloc(strlen(spec_text) + 8);
    strcpy(changed, spec_text);
    char *b = strstr(changed, "trials: 24");
    memcpy(b, "trials: 12", 10);
    write_text(spec_path, changed);
    const char *a_resume[] = {"resume", db, NULL};
    assert_int_equal(run(a_resume), 1);
    const char *a_force[] = {"resume", db, "--force", NULL};
    assert_int_equal(run(a_force), 0);
    assert_int_equal(done_count(db), 12);
    write_text(spec_path, spec_text);
    free(changed);
}

static void test_one_writer(void **state) {
    (void)state;
    char db[400];
    snprintf(db, sizeof db, "%s/locked.db", dir);
    rm_db(db);
    const char *a_run[] = {"run", spec_path, "--db", db, NULL};
    pid_t pid = bnas_spawn(NULL, a_run);
    kill_after(pid, db, 1, 0); /* signal 0: just wait for the first trial */
    char cmd[1200], errp[400];
    snprintf(errp, sizeof errp, "%s/locked.err", dir);
    snprintf(cmd, sizeof cmd, "'%s' resume '%s' 2> '%s'", bin, db, errp);
    assert_int_equal(sh(cmd), 1); /* another process is running the study: it says which */
    char *e = slurp(errp, NULL), want[200];
    assert_non_null(e);
    snprintf(want, sizeof want, "the study is busy: bnas process %ld is running it", (long)pid);
    assert_non_null(strstr(e, want));
    free(e);
    assert_int_equal(wait_exit(pid), 0);
    assert_int_equal(done_count(db), 24);
}

static void test_exit_codes(void **state) {
    (void)state;
    const char *none[] = {NULL};
    assert_int_equal(run(none), 2);
    const char *unknown[] = {"frobnicate", NULL};
    assert_int_equal(run(unknown), 2);
    const char *run_noarg[] = {"run", NULL};
    assert_int_equal(run(run_noarg), 2);
    const char *help[] = {"run", "--help", NULL};
    assert_int_equal(run(help), 0);
    const char *help2[] = {"pareto", "--help", NULL};
    assert_int_equal(run(help2), 0);
    char bad[400];
    snprintf(bad, sizeof bad, "%s/bad.yaml", dir);
    write_text(bad, "data: {name: synthetic}\nstrategy: random\n");
    const char *run_bad[] = {"run", bad, NULL};
    assert_int_equal(run(run_bad), 1);
    const char *status_missing[] = {"status", "/nonexistent/x.db", NULL};
    assert_int_equal(run(status_missing), 1);
    char full[400];
    snprintf(full, sizeof full, "%s/full.db", dir);
    const char *status[] = {"status", full, NULL};
    assert_int_equal(run(status), 0);
    const char *pareto[] = {"pareto", full, "--csv", NULL};
    assert_int_equal(run(pareto), 0);
    const char *trials[] = {"trials", full, NULL};
    assert_int_equal(run(trials), 0);
    /* run refuses to overwrite an existing study. */
    const char *again[] = {"run", spec_path, "--db", full, NULL};
    assert_int_equal(run(again), 1);
}

static int setup(void **state) {
    (void)state;
    bin = bnas_bin();
    if (tmpdir_make(dir, sizeof dir, "resume")) return -1;
    real_spec(spec_text, sizeof spec_text, "resume", 11, 24,
              "[accuracy, memory, {name: fault, ber: 0.02, rates: [0.05], repeats: 2, images: 200},\n"
              "             {name: margin, images: 200}]");
    snprintf(spec_path, sizeof spec_path, "%s/resume.yaml", dir);
    write_text(spec_path, spec_text);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    return tmpdir_remove(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_and_resume),
        cmocka_unit_test(test_changed_spec_refused),
        cmocka_unit_test(test_one_writer),
        cmocka_unit_test(test_exit_codes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
