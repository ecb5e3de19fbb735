/*
** Trials in worker processes (nas/worker.h), through the real `bnas` binary
** ($BNAS_BIN) and search_run: a trial that crashes (SIGSEGV), aborts, allocates
** without bound or hangs is one FAIL row with its reason and the study
** finishes; worker, in-process and 1- or 2-thread runs give the same database;
** a SIGKILL while an earlier trial of a batch still runs keeps the later,
** finished ones (they are not trained again); study.elapsed survives SIGKILL;
** the message codec rejects every truncated frame; a failed start leaves no
** study file; a study whose every trial failed exits 1.
*/
#define _XOPEN_SOURCE 700 /* realpath; implies _POSIX_C_SOURCE 200809L */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/err.h"
#include "nas/search.h"
#include "nas/spec.h"
#include "nas/store.h"
#include "nas/worker.h"
#include "tests/testutil.h"

static char dir[256];
static const char *bin;

/* Synthetic study: 30 trials in batches of 6; %s is extra budget keys. */
static const char *synth_fmt =
    "name: w\n"
    "seed: 9\n"
    "threads: 2\n"
    "data: {name: synthetic}\n"
    "search_space:\n"
    "  fc_layers: {type: int, low: 1, high: 3}\n"
    "  fc_width: [16, 24, 32, 48, 64, 96, 128, 192, 256]\n"
    "  loss: [ce, mhl]\n"
    "  mhl_b: [8, 16, 32, 64, 128]\n"
    "  flip_rate: {type: float, low: 0, high: 0.1}\n"
    "  epochs: {type: int, low: 1, high: 10}\n"
    "strategy: {name: evolution, batch: %d, population: 12, sample: 4}\n"
    "budget: {trials: %d%s}\n"
    "constraints: {max_host_memory: 300000000}\n"
    "objectives:\n"
    "  - {metric: val_acc, direction: max}\n"
    "  - {metric: model_bytes, direction: min, ref: 2000000}\n"
    "evaluators: [memory]\n";

/* Writes the synthetic spec to DIR/NAME.yaml; its path in path (400 bytes). */
static void write_synth(const char *name, int batch, int trials, const char *budget_extra, char *path) {
    char text[4096];
    snprintf(text, sizeof text, synth_fmt, batch, trials, budget_extra);
    snprintf(path, 400, "%s/%s.yaml", dir, name);
    write_text(path, text);
}

static void db_of(char *buf, const char *name) {
    snprintf(buf, 400, "%s/%s.db", dir, name);
    store_remove(buf);
}

/* `ENV bnas ARGS` with stderr to DIR/last.err; the exit code. Under the
   sanitizers a worker's SIGSEGV and out-of-memory must stay real signals
   (not ASan reports), so its options say so. */
static int bnas(const char *env, const char *args) {
    char cmd[2000];
    snprintf(cmd, sizeof cmd,
             "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}handle_segv=0:allocator_may_return_null=1 %s '%s' %s "
             "> /dev/null 2> '%s/last.err'", env, bin, args, dir);
    return sh(cmd);
}

static char *last_err(void) {
    char p[400];
    snprintf(p, sizeof p, "%s/last.err", dir);
    char *e = slurp(p, NULL);
    assert_non_null(e);
    return e;
}

/* Rows of trials that are not COMPLETE: "number|state|reason\n" each, malloc'd. */
static char *not_complete(const char *db) {
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT number, state, fail_reason FROM trials WHERE "
                                           "state != 'COMPLETE' ORDER BY number", -1, &q, NULL),
                     SQLITE_OK);
    char *out = calloc(1, 8192);
    size_t used = 0;
    while (sqlite3_step(q) == SQLITE_ROW && used < 8000)
        used += (size_t)snprintf(out + used, 8192 - used, "%d|%s|%s\n", sqlite3_column_int(q, 0),
                                 (const char *)sqlite3_column_text(q, 1),
                                 sqlite3_column_text(q, 2) ? (const char *)sqlite3_column_text(q, 2) : "");
    sqlite3_finalize(q);
    sqlite3_close(h);
    return out;
}

static int done_count(const char *db) {
    store *st = NULL;
    if (store_open(&st, db, 1)) return -1;
    store_summary sum;
    int n = -1;
    if (store_summary_get(st, &sum) == BN_OK) n = sum.count[TRIAL_COMPLETE] + sum.count[TRIAL_FAIL];
    store_close(st);
    return n;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits until db has k finished trials (pid must keep running). */
static void wait_done(pid_t pid, const char *db, int k) {
    for (int i = 0; i < 60000; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) fail_msg("bnas ended before %d trials were done", k);
        if (done_count(db) >= k) return;
        sleep_ms(2);
    }
    kill(pid, SIGKILL); /* a hanging trial must not outlive the test */
    fail_msg("no %d trials done after 120 s", k);
}

/* Reads a /proc file (its size reads as 0: read to EOF) into buf (cap bytes); its length. */
static size_t read_proc(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = 0;
    return n;
}

/* Worker processes (`bnas worker`) whose environment holds tag. */
static int workers_with(const char *tag) {
    int n = 0;
    DIR *d = opendir("/proc");
    assert_non_null(d);
    struct dirent *e;
    static char buf[1 << 16];
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char p[300];
        snprintf(p, sizeof p, "/proc/%s/cmdline", e->d_name);
        size_t len = read_proc(p, buf, sizeof buf);
        if (len < 12 || strcmp(buf, "bnas") || strcmp(buf + 5, "worker")) continue;
        snprintf(p, sizeof p, "/proc/%s/environ", e->d_name);
        len = read_proc(p, buf, sizeof buf);
        for (size_t i = 0; i < len; i += strlen(buf + i) + 1)
            if (strstr(buf + i, tag)) {
                n++;
                break;
            }
    }
    closedir(d);
    return n;
}

/* One faulty trial under a trial_time limit of seconds: one FAIL row with the
   expected reason (and also, if not NULL, text in it), the study finished. */
static void check_fault_limit(const char *fault, int number, int seconds, const char *reason, const char *also) {
    char spec_path[400], db[400], env[200], args[1000], limit[40];
    snprintf(limit, sizeof limit, ", trial_time: %d", seconds);
    write_synth("fault", 6, 30, limit, spec_path);
    db_of(db, "fault");
    snprintf(env, sizeof env, "BNAS_TEST_TRIAL_FAULT=%s:%d", fault, number);
    snprintf(args, sizeof args, "run '%s' --db '%s' --quiet", spec_path, db);
    int code = bnas(env, args);
    char *rows = not_complete(db), *err = last_err();
    if (code || !strstr(rows, reason)) fprintf(stderr, "exit %d, rows:\n%s\nstderr:\n%s\n", code, rows, err);
    assert_int_equal(code, 0);
    char want[200];
    snprintf(want, sizeof want, "%d|FAIL|%s", number, reason);
    assert_non_null(strstr(rows, want));
    if (also) assert_non_null(strstr(rows, also));
    assert_null(strchr(strchr(rows, '\n') + 1, '\n')); /* exactly one row that is not COMPLETE */
    assert_int_equal(done_count(db), 30);
    free(rows);
    free(err);
}

static void check_fault(const char *fault, int number, const char *reason, const char *also) {
    check_fault_limit(fault, number, 2, reason, also);
}

static void test_crash(void **state) {
    (void)state;
    check_fault("crash", 3, "killed by signal 11 (SIGSEGV)", NULL);
}

static void test_abort(void **state) {
    (void)state;
    check_fault("abort", 8, "killed by signal 6 (SIGABRT)", NULL);
}

static void test_unbounded_alloc(void **state) {
    (void)state;
    /* RLIMIT_DATA (its data + max_host_memory 300 MB = 286 MiB) stops the worker;
       the time limit is loose so that a loaded host reaches the memory limit first. */
    check_fault_limit("alloc", 13, 60, "killed by signal 6 (SIGABRT); peak RSS ", "memory limit 286 MiB");
}

static void test_hang(void **state) {
    (void)state;
    check_fault("hang", 20, "time limit 2 s", NULL);
}

/* search_run on a fresh db: in-process (exe NULL) or with workers. */
static char *run_lib(const spec *s, const char *name, const char *exe, int threads) {
    char db[400];
    db_of(db, name);
    store *st = NULL;
    assert_int_equal(store_create(&st, db, s), BN_OK);
    search_opts o;
    memset(&o, 0, sizeof o);
    o.fn = trial_synthetic;
    o.worker_exe = exe;
    o.threads = threads;
    int rc = search_run(st, s, &o);
    if (rc) fprintf(stderr, "%s\n", bn_errmsg());
    assert_int_equal(rc, BN_OK);
    char *d = NULL;
    assert_int_equal(store_dump(st, &d), BN_OK);
    store_close(st);
    return d;
}

/* The database does not depend on where trials run: in-process, 1 or 2
   worker processes (library), bnas run with workers or --in-process; with
   failing trials and trials of uneven length (they finish out of order). */
static void test_same_database(void **state) {
    (void)state;
    setenv("BNAS_SYNTHETIC_MS", "3", 1);
    setenv("BNAS_SYNTHETIC_FAIL", "5", 1);
    char spec_path[400];
    write_synth("same", 6, 36, "", spec_path);
    spec s;
    assert_int_equal(spec_load(&s, spec_path), BN_OK);
    char *ref = run_lib(&s, "same_inproc", NULL, 2);
    assert_non_null(strstr(ref, "|FAIL|"));
    char *w1 = run_lib(&s, "same_w1", bin, 1), *w2 = run_lib(&s, "same_w2", bin, 2);
    assert_string_equal(ref, w1);
    assert_string_equal(ref, w2);
    char db[400], args[1000];
    db_of(db, "same_cli");
    snprintf(args, sizeof args, "run '%s' --db '%s' --quiet", spec_path, db);
    assert_int_equal(bnas("", args), 0);
    char *cli = study_dump_of(db);
    assert_string_equal(ref, cli);
    db_of(db, "same_cli_inproc");
    snprintf(args, sizeof args, "run '%s' --db '%s' --quiet --in-process --threads 1", spec_path, db);
    assert_int_equal(bnas("", args), 0);
    char *cli1 = study_dump_of(db);
    assert_string_equal(ref, cli1);
    free(ref), free(w1), free(w2), free(cli), free(cli1);
    spec_free(&s);
    unsetenv("BNAS_SYNTHETIC_MS");
    unsetenv("BNAS_SYNTHETIC_FAIL");
}

/* Lines of the training log at path (0 if none); counts[n] per trial number. */
static int log_lines(const char *path, int *counts, int max) {
    char *t = slurp(path, NULL);
    if (!t) return 0;
    int n = 0;
    for (char *p = t; *p;) {
        int v = atoi(p);
        if (v >= 0 && v < max) counts[v]++;
        n++;
        p = strchr(p, '\n');
        if (!p) break;
        p++;
    }
    free(t);
    return n;
}

/* SIGKILL right after the later trials of a batch finished while its first
   one still runs (it hangs): they are in the file at once, the resume trains
   only the unfinished one, and the file equals an uninterrupted run's. Both
   with worker processes and --in-process. */
static void test_kill_keeps_finished(void **state) {
    (void)state;
    char spec_path[400];
    write_synth("keep", 4, 16, "", spec_path);
    char full[400], args[1000];
    db_of(full, "keep_full");
    snprintf(args, sizeof args, "run '%s' --db '%s' --quiet", spec_path, full);
    assert_int_equal(bnas("", args), 0);
    char *want = study_dump_of(full);
    for (int mode = 0; mode < 2; mode++) {
        char db[400], logp[400];
        db_of(db, mode ? "keep_inproc" : "keep_workers");
        snprintf(logp, sizeof logp, "%s/keep_%d.log", dir, mode);
        unlink(logp);
        const char *env[] = {"BNAS_TEST_TRIAL_FAULT", "hang:0", "BNAS_SYNTHETIC_LOG", logp, NULL};
        const char *a_run[] = {"run", spec_path, "--db", db, mode ? "--in-process" : "--quiet", NULL};
        pid_t pid = bnas_spawn(env, a_run);
        wait_done(pid, db, 3); /* trials 1, 2, 3 of batch 0 done; trial 0 runs (hangs) */
        int live = workers_with(logp);
        kill(pid, SIGKILL);
        if (!mode) assert_int_equal(live, 2);
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        char *rows = not_complete(db);
        assert_string_equal(rows, "0|RUNNING|\n"); /* 1..3 COMPLETE, nothing else started */
        free(rows);
        int counts[16] = {0};
        assert_int_equal(log_lines(logp, counts, 16), 3);
        if (!mode) { /* the hung worker noticed its controller is gone */
            sleep_ms(600);
            assert_int_equal(workers_with(logp), 0);
        }
        const char *env2[] = {"BNAS_SYNTHETIC_LOG", logp, NULL};
        const char *a_resume[] = {"resume", db, mode ? "--in-process" : "--quiet", NULL};
        pid = bnas_spawn(env2, a_resume);
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        memset(counts, 0, sizeof counts);
        int trainings = log_lines(logp, counts, 16);
        printf("mode %s: %d trainings for 16 trials\n", mode ? "in-process" : "workers", trainings);
        assert_int_equal(trainings, 16);
        for (int i = 0; i < 16; i++) assert_int_equal(counts[i], 1);
        char *got = study_dump_of(db);
        assert_string_equal(want, got);
        free(got);
    }
    free(want);
}

/* study.elapsed after SIGKILL covers the trials committed before it. */
static void test_elapsed_after_kill(void **state) {
    (void)state;
    char spec_path[400], db[400];
    write_synth("elapsed", 6, 60, "", spec_path);
    db_of(db, "elapsed");
    const char *env[] = {"BNAS_SYNTHETIC_MS", "40", NULL};
    const char *a_run[] = {"run", spec_path, "--db", db, "--quiet", NULL};
    pid_t pid = bnas_spawn(env, a_run);
    wait_done(pid, db, 14);
    kill(pid, SIGKILL);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT (SELECT elapsed FROM study), max(t_end) - min(t_start), "
                                           "sum(seconds) FROM trials WHERE state IN ('COMPLETE','FAIL')",
                                        -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    double elapsed = sqlite3_column_double(q, 0), span = sqlite3_column_double(q, 1),
           busy = sqlite3_column_double(q, 2);
    sqlite3_finalize(q);
    sqlite3_close(h);
    printf("after SIGKILL: elapsed %.3f s, committed trials span %.3f s (%.3f s of trials)\n", elapsed,
           span, busy);
    assert_true(span > 0.2);
    assert_true(elapsed >= span - 1e-3);
}

/* The codec: a result survives the trip; every truncation of it is an error. */
static void test_codec(void **state) {
    (void)state;
    trial_result r;
    memset(&r, 0, sizeof r);
    for (int i = 0; i < 40; i++) {
        char name[40];
        snprintf(name, sizeof name, "m%d.x", i);
        assert_int_equal(trial_result_set(&r, name, i * 0.25 - 3), BN_OK);
    }
    snprintf(r.model_format, sizeof r.model_format, "BNASMDL1");
    r.model_size = 1000;
    r.model = malloc(r.model_size);
    for (size_t i = 0; i < r.model_size; i++) ((uint8_t *)r.model)[i] = (uint8_t)(i * 7);
    uint8_t *msg;
    size_t len;
    worker_encode_result(17, BN_OK, &r, &msg, &len);
    int number, trc;
    trial_result b;
    assert_int_equal(worker_decode_result(msg, len, &number, &trc, &b), BN_OK);
    assert_int_equal(number, 17);
    assert_int_equal(trc, BN_OK);
    assert_int_equal(b.metrics.n, 40);
    assert_string_equal(b.metrics.m[39].name, "m39.x");
    assert_true(b.metrics.m[39].value == 39 * 0.25 - 3);
    assert_int_equal(b.model_size, 1000);
    assert_memory_equal(b.model, r.model, 1000);
    trial_result_free(&b);
    for (size_t cut = 0; cut < len; cut += 1 + cut / 8) {
        uint32_t n = (uint32_t)(cut >= 4 ? cut - 4 : 0);
        uint8_t *t = malloc(len);
        memcpy(t, msg, len);
        if (cut >= 4) memcpy(t, &n, 4); /* a consistent length field, short payload */
        assert_int_not_equal(worker_decode_result(t, cut, &number, &trc, &b), BN_OK);
        free(t);
    }
    worker_assign a = {5, 99, 0x1234, "1 2 3"}, a2;
    uint8_t *am;
    size_t alen;
    worker_encode_assign(&a, &am, &alen);
    char g[16];
    assert_int_equal(worker_decode_assign(am, alen, &a2, g, sizeof g), BN_OK);
    assert_int_equal(a2.number, 5);
    assert_string_equal(a2.genome, "1 2 3");
    assert_int_not_equal(worker_decode_assign(am, alen, &a2, g, 4), BN_OK); /* genome too long */
    assert_int_not_equal(worker_decode_result(am, alen, &number, &trc, &b), BN_OK); /* wrong type */
    free(am);
    free(msg);
    trial_result_free(&r);
}

/* A run whose data does not load stores nothing and leaves no file; once
   the data is there the same command works (no --force). */
static void test_bad_data_leaves_no_file(void **state) {
    (void)state;
    char spec_path[400], db[400], args[1000], text[1024], empty[400];
    snprintf(empty, sizeof empty, "%s/empty", dir);
    snprintf(args, sizeof args, "mkdir -p '%s'", empty);
    assert_int_equal(sh(args), 0);
    snprintf(text, sizeof text,
             "name: nodata\ndata: {name: fashion_mnist, dir: '%s', train: 200, val: 100, test: 100}\n"
             "search_space: {fc_width: [16, 32]}\nstrategy: {name: random, batch: 2}\n"
             "budget: {trials: 2}\nobjectives: [{metric: val_acc, direction: max}]\n", empty);
    snprintf(spec_path, sizeof spec_path, "%s/nodata.yaml", dir);
    write_text(spec_path, text);
    for (int mode = 0; mode < 2; mode++) {
        db_of(db, "nodata");
        snprintf(args, sizeof args, "run '%s' --db '%s' %s", spec_path, db, mode ? "--in-process" : "");
        assert_int_equal(bnas("", args), 1);
        char *e = last_err();
        assert_non_null(strstr(e, empty));     /* the error names the data folder */
        assert_non_null(strstr(e, "removed")); /* and says the file is gone */
        free(e);
        assert_int_not_equal(access(db, F_OK), 0);
    }
}

/* Every trial failing is exit code 1 with a message; the rows stay. Also a
   real evaluator error (a bad split) in every trial: FAIL rows naming it. */
static void test_all_failed_exit(void **state) {
    (void)state;
    char spec_path[400], db[400], args[1000];
    write_synth("allfail", 6, 12, "", spec_path);
    db_of(db, "allfail");
    snprintf(args, sizeof args, "run '%s' --db '%s' --quiet", spec_path, db);
    assert_int_equal(bnas("BNAS_SYNTHETIC_FAIL=1", args), 1);
    char *e = last_err();
    assert_non_null(strstr(e, "every trial failed (12 FAIL"));
    free(e);
    assert_int_equal(done_count(db), 12);
    /* One trial of the study completing is success. */
    db_of(db, "allfail");
    assert_int_equal(bnas("BNAS_SYNTHETIC_FAIL=2", args), 0);
    /* The real trainer with an evaluator that fails at run time. */
    char text[1024];
    snprintf(text, sizeof text,
             "name: evalfail\ndata: {name: fashion_mnist, train: 300, val: 100, test: 100}\n"
             "search_space: {fc_width: [16, 24], batch: 100}\nstrategy: {name: random, batch: 2}\n"
             "budget: {trials: 2}\nobjectives: [{metric: val_acc, direction: max}]\n"
             "evaluators: [{name: margin, split: bogus}]\n");
    snprintf(spec_path, sizeof spec_path, "%s/evalfail.yaml", dir);
    write_text(spec_path, text);
    db_of(db, "evalfail");
    snprintf(args, sizeof args, "run '%s' --db '%s' --quiet", spec_path, db);
    assert_int_equal(bnas("", args), 1);
    char *rows = not_complete(db);
    assert_non_null(strstr(rows, "0|FAIL|evaluator margin: "));
    assert_non_null(strstr(rows, "1|FAIL|evaluator margin: "));
    assert_non_null(strstr(rows, "bogus"));
    free(rows);
}

/* A study locked by another SQLite user: "busy", never "not a bnas study". */
static void test_locked_message(void **state) {
    (void)state;
    char spec_path[400], db[400], args[1000];
    write_synth("locked", 6, 6, "", spec_path);
    db_of(db, "locked");
    snprintf(args, sizeof args, "run '%s' --db '%s' --quiet", spec_path, db);
    assert_int_equal(bnas("", args), 0);
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE; "
                                     "UPDATE study SET elapsed = elapsed WHERE id=1;", NULL, NULL, NULL),
                     SQLITE_OK);
    snprintf(args, sizeof args, "status '%s'", db);
    assert_int_equal(bnas("", args), 1);
    char *e = last_err();
    assert_null(strstr(e, "not a bnas study"));
    assert_non_null(strstr(e, "the study is busy: locked by another program"));
    free(e);
    sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(h);
    snprintf(args, sizeof args, "status '%s'", db);
    assert_int_equal(bnas("", args), 0);
}

static int setup(void **state) {
    (void)state;
    bin = bnas_bin();
    if (bin[0] != '/') { /* workers are started by path */
        static char abs[1024];
        if (!realpath(bin, abs)) return -1;
        bin = abs;
    }
    return tmpdir_make(dir, sizeof dir, "worker");
}

static int teardown(void **state) {
    (void)state;
    return tmpdir_remove(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec),
        cmocka_unit_test(test_crash),
        cmocka_unit_test(test_abort),
        cmocka_unit_test(test_unbounded_alloc),
        cmocka_unit_test(test_hang),
        cmocka_unit_test(test_same_database),
        cmocka_unit_test(test_kill_keeps_finished),
        cmocka_unit_test(test_elapsed_after_kill),
        cmocka_unit_test(test_bad_data_leaves_no_file),
        cmocka_unit_test(test_all_failed_exit),
        cmocka_unit_test(test_locked_message),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
