/*
** The search subcommands of bnas: run, resume, status, trials, pareto.
** The only place (with main.c) that prints; everything below returns codes.
*/
#define _XOPEN_SOURCE 700
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/err.h"
#include "nas/commands.h"
#include "nas/search.h"
#include "nas/spec.h"
#include "nas/store.h"
#include "nas/trial.h"

static volatile sig_atomic_t g_stop = 0;

static void on_signal(int sig) {
    if (g_stop) { /* second signal: give up at once */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    g_stop = 1;
}

static void install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void fmt_time(char *buf, size_t cap, double s) {
    if (s < 0 || !isfinite(s)) {
        snprintf(buf, cap, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
}

static void on_progress(const search_progress *p, void *user) {
    (void)user;
    char el[32], eta[32];
    fmt_time(el, sizeof el, p->elapsed);
    fmt_time(eta, sizeof eta, p->eta);
    int tty = isatty(2);
    fprintf(stderr, "%strials %d/%d  running %d  failed %d  invalid %d  front %d  hv %.6g  "
                    "elapsed %s  eta %s%s",
            tty ? "\r\033[K" : "", p->done, p->total, p->running, p->failed, p->invalid, p->front,
            p->hv, el, eta, tty ? "" : "\n");
    fflush(stderr);
}

static int wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    return 0;
}

/* Runs the search on an open store and reports; returns the exit code.
   in_process: trials on threads of this process (else worker processes).
   *ran is set to the number of trials the study has finished or started, so
   that a failed `bnas run` knows whether it left anything worth keeping. */
static int drive(store *st, const spec *s, int threads, int quiet, int in_process, const char *db,
                 int *ran) {
    void *env = NULL;
    trial_fn fn = NULL;
    *ran = 1;
    int rc = store_lock(st);
    if (rc) {
        fprintf(stderr, "bnas: %s\n", bn_errmsg());
        return 1;
    }
    /* Worker processes load the data themselves; in-process trials share one copy. */
    if (in_process && (rc = trial_env_create(&env, &fn, s))) {
        fprintf(stderr, "bnas: %s\n", bn_errmsg());
        *ran = 0;
        return 1;
    }
    search_opts o;
    memset(&o, 0, sizeof o);
    o.fn = fn;
    o.fn_user = env;
    o.worker_exe = in_process ? NULL : "/proc/self/exe";
    o.threads = threads;
    o.stop = &g_stop;
    trial_env_set_stop(env, &g_stop);
    if (!quiet) o.progress = on_progress;
    install_signals();
    rc = search_run(st, s, &o);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", bn_errmsg());
    trial_env_free(env);
    if (!quiet && isatty(2)) fprintf(stderr, "\n");
    store_summary sum;
    int have_sum = store_summary_get(st, &sum) == BN_OK;
    if (have_sum) {
        *ran = 0;
        for (int k = 0; k <= TRIAL_INVALID; k++) *ran += sum.count[k];
    }
    if (have_sum && !quiet)
        fprintf(stderr, "%s: %d complete, %d failed, %d invalid, %d pending; front %d, hv %.6g; "
                        "%.1f s, of which controller %.3f s (%.2f%%)\n",
                db, sum.count[TRIAL_COMPLETE], sum.count[TRIAL_FAIL], sum.count[TRIAL_INVALID],
                sum.count[TRIAL_WAITING] + sum.count[TRIAL_RUNNING], sum.front, sum.hv,
                o.session_seconds, o.controller_seconds,
                o.session_seconds > 0 ? 100.0 * o.controller_seconds / o.session_seconds : 0.0);
    if (rc == BN_EINTR) {
        fprintf(stderr, "bnas: interrupted; continue with `bnas resume %s`\n", db);
        return 1;
    }
    if (rc) {
        fprintf(stderr, "bnas: %s\n", msg);
        return 1;
    }
    if (have_sum && sum.count[TRIAL_COMPLETE] == 0 && sum.count[TRIAL_FAIL] > 0) {
        fprintf(stderr, "bnas: every trial failed (%d FAIL, none complete); the reasons are in "
                        "`bnas trials %s`\n", sum.count[TRIAL_FAIL], db);
        return 1;
    }
    return 0;
}

static int parse_threads(const char *v, int *out) {
    char *end;
    long t = strtol(v, &end, 10);
    if (*end || t < 1 || t > 1024) return 0;
    *out = (int)t;
    return 1;
}

int cmd_run(int argc, char **argv) {
    static const char *help =
        "usage: bnas run SPEC [--db FILE] [--threads N] [--in-process] [--quiet]\n"
        "Starts the search declared in SPEC (YAML). The study is stored in FILE\n"
        "(default: NAME.db, NAME being the spec's name). --threads overrides the\n"
        "spec's thread count; results do not depend on it. Each trial runs in one\n"
        "of N worker processes (N = threads): a trial that crashes, exceeds\n"
        "budget.trial_time or its memory limit (constraints.max_host_memory) is\n"
        "stored as FAIL with the reason and the search goes on. --in-process runs\n"
        "trials on threads of this process instead (debugging; no limits; same\n"
        "results). Each trial is stored the moment it finishes. A run that fails\n"
        "before any trial leaves no study file. Exit code 1 if interrupted, on an\n"
        "error, or if every trial failed.\n"
        "Ctrl-C (or SIGTERM) starts no new trial and ends the running ones: worker\n"
        "processes are killed at once, in-process trials stop at the end of their\n"
        "current epoch. Finished trials are kept; the others stay pending and\n"
        "`bnas resume FILE` reruns them with the same genome and seed. A second\n"
        "Ctrl-C quits at once.\n";
    if (wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    const char *spec_path = NULL, *db = NULL;
    int threads = 0, quiet = 0, in_process = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc) db = argv[++i];
        else if (!strcmp(argv[i], "--in-process")) in_process = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (!parse_threads(argv[++i], &threads)) {
                fprintf(stderr, "bnas run: --threads takes a number from 1 to 1024\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--quiet")) quiet = 1;
        else if (argv[i][0] == '-' || spec_path) {
            fprintf(stderr, "bnas run: unexpected argument '%s'\n%s", argv[i], help);
            return 2;
        } else spec_path = argv[i];
    }
    if (!spec_path) {
        fputs(help, stderr);
        return 2;
    }
    spec s;
    int rc = spec_load(&s, spec_path);
    if (rc) {
        fprintf(stderr, "%s\nbnas run: the search was not started\n", bn_errmsg());
        return 1;
    }
    char abs[PATH_MAX];
    if (realpath(spec_path, abs) && strlen(abs) < sizeof s.path) memcpy(s.path, abs, strlen(abs) + 1);
    char dbname[600];
    if (!db) {
        snprintf(dbname, sizeof dbname, "%s.db", s.name);
        db = dbname;
    }
    store *st = NULL;
    if ((rc = store_create(&st, db, &s))) {
        fprintf(stderr, "bnas: %s\n", bn_errmsg());
        spec_free(&s);
        return 1;
    }
    if (!quiet) fprintf(stderr, "study %s -> %s\n", s.name, db);
    int ran = 1;
    int code = drive(st, &s, threads, quiet, in_process, db, &ran);
    store_close(st);
    if (code && !ran) { /* nothing to keep: `bnas run` can simply be run again */
        if (store_remove(db) == BN_OK) fprintf(stderr, "bnas run: no trial was run; %s removed\n", db);
        else fprintf(stderr, "bnas: %s\n", bn_errmsg());
    }
    spec_free(&s);
    return code;
}

int cmd_resume(int argc, char **argv) {
    static const char *help =
        "usage: bnas resume DB [--force] [--threads N] [--in-process] [--quiet]\n"
        "Continues the search stored in DB: completed trials are kept, trials that\n"
        "were running are run again with the same genome and seed, and the final\n"
        "file equals that of an uninterrupted run. The frozen spec in DB is used;\n"
        "if the spec file (or its search space file) has changed since, resume is\n"
        "refused unless --force, which adopts the changed spec. Trials run in worker\n"
        "processes as with `bnas run` (--in-process: on threads of this process).\n";
    if (wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    const char *db = NULL;
    int threads = 0, quiet = 0, force = 0, in_process = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--force")) force = 1;
        else if (!strcmp(argv[i], "--in-process")) in_process = 1;
        else if (!strcmp(argv[i], "--quiet")) quiet = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (!parse_threads(argv[++i], &threads)) {
                fprintf(stderr, "bnas resume: --threads takes a number from 1 to 1024\n");
                return 2;
            }
        } else if (argv[i][0] == '-' || db) {
            fprintf(stderr, "bnas resume: unexpected argument '%s'\n%s", argv[i], help);
            return 2;
        } else db = argv[i];
    }
    if (!db) {
        fputs(help, stderr);
        return 2;
    }
    store *st = NULL;
    if (store_open(&st, db, 0)) {
        fprintf(stderr, "bnas: %s\n", bn_errmsg());
        return 1;
    }
    spec s;
    if (store_frozen_spec(st, &s, db)) {
        fprintf(stderr, "bnas: %s\n", bn_errmsg());
        store_close(st);
        return 1;
    }
    /* Has the spec on disk changed since the study started? */
    if (access(s.path, R_OK) == 0) {
        spec cur;
        int rc = spec_load(&cur, s.path);
        if (rc || cur.hash != s.hash) {
            if (!force) {
                fprintf(stderr, "bnas resume: %s has changed since the study started%s%s\n"
                                "bnas resume: refused; pass --force to continue with the changed spec\n",
                        s.path, rc ? " and does not parse:\n" : "", rc ? bn_errmsg() : "");
                if (!rc) spec_free(&cur);
                spec_free(&s);
                store_close(st);
                return 1;
            }
            if (rc) {
                fprintf(stderr, "%s\nbnas resume: the changed spec does not parse\n", bn_errmsg());
                spec_free(&s);
                store_close(st);
                return 1;
            }
            if (store_replace_spec(st, &cur)) {
                fprintf(stderr, "bnas: %s\n", bn_errmsg());
                spec_free(&cur);
                spec_free(&s);
                store_close(st);
                return 1;
            }
            fprintf(stderr, "bnas resume: continuing with the changed spec %s (--force)\n", s.path);
            spec_free(&s);
            s = cur;
        } else {
            spec_free(&cur);
        }
    } else if (!quiet) {
        fprintf(stderr, "bnas resume: %s is gone; using the frozen copy in %s\n", s.path, db);
    }
    int ran;
    int code = drive(st, &s, threads, quiet, in_process, db, &ran);
    store_close(st);
    spec_free(&s);
    return code;
}

/* Opens a study read-only for the listing commands; parses its frozen spec. */
static int open_ro(const char *cmd, int argc, char **argv, const char *help, store **st, spec *s,
                   int *csv, const char **db) {
    *db = NULL;
    *csv = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--csv") && csv) *csv = 1;
        else if (argv[i][0] == '-' || *db) {
            fprintf(stderr, "bnas %s: unexpected argument '%s'\n%s", cmd, argv[i], help);
            return 2;
        } else *db = argv[i];
    }
    if (!*db) {
        fputs(help, stderr);
        return 2;
    }
    if (store_open(st, *db, 1)) {
        fprintf(stderr, "bnas: %s\n", bn_errmsg());
        return 1;
    }
    if (store_frozen_spec(*st, s, *db)) {
        fprintf(stderr, "bnas: %s\n", bn_errmsg());
        store_close(*st);
        return 1;
    }
    return 0;
}

int cmd_status(int argc, char **argv) {
    static const char *help = "usage: bnas status DB\nPrints the study's counts, front size and "
                              "hypervolume.\n";
    if (wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    store *st;
    spec s;
    int csv;
    const char *db;
    int code = open_ro("status", argc, argv, help, &st, &s, &csv, &db);
    if (code) return code;
    store_summary sum;
    if (store_summary_get(st, &sum)) {
        fprintf(stderr, "bnas: %s\n", bn_errmsg());
        store_close(st);
        spec_free(&s);
        return 1;
    }
    char el[32];
    fmt_time(el, sizeof el, sum.elapsed);
    int done = sum.count[TRIAL_COMPLETE] + sum.count[TRIAL_FAIL];
    printf("study      %s (%s)\n", sum.name, db);
    printf("spec       %s  hash %016llx\n", s.path, (unsigned long long)sum.spec_hash);
    printf("strategy   %s, batch %d, seed %llu, threads %d\n", sum.strategy, s.batch,
           (unsigned long long)s.seed, s.threads);
    printf("trials     %d/%d done: %d complete, %d failed; %d invalid; %d waiting, %d running\n", done,
           s.max_trials, sum.count[TRIAL_COMPLETE], sum.count[TRIAL_FAIL], sum.count[TRIAL_INVALID],
           sum.count[TRIAL_WAITING], sum.count[TRIAL_RUNNING]);
    printf("objectives");
    for (int j = 0; j < s.n_obj; j++)
        printf("%s%s (ref %g)", j ? ", " : " ", s.obj[j].metric, s.obj[j].ref);
    printf("\nfront      %d trials, hypervolume %.6g\n", sum.front, sum.hv);
    printf("elapsed    %s\n", el);
    printf("state      %s\n", store_is_running(db) ? "running (another bnas process holds it)"
                              : done >= s.max_trials ? "finished"
                              : sum.count[TRIAL_WAITING] + sum.count[TRIAL_RUNNING] || done
                                  ? "interrupted (bnas resume continues it)"
                                  : "not started");
    store_close(st);
    spec_free(&s);
    return 0;
}

/* Listing context for trials and pareto. */
typedef struct {
    const spec *s;
    int csv;
} list_ctx;

static double metric_of(const store_trial *t, const char *name, int *found) {
    for (int i = 0; i < t->n_metrics; i++)
        if (!strcmp(t->mname[i], name)) {
            *found = 1;
            return t->mvalue[i];
        }
    *found = 0;
    return 0;
}

static void csv_text(const char *t) {
    putchar('"');
    for (; *t; t++) {
        if (*t == '"') putchar('"');
        putchar(*t);
    }
    putchar('"');
}

static int is_objective(const spec *s, const char *metric) {
    for (int j = 0; j < s->n_obj; j++)
        if (!strcmp(s->obj[j].metric, metric)) return 1;
    return 0;
}

static void list_header(const list_ctx *c) {
    const spec *s = c->s;
    if (c->csv) {
        printf("number,state,topology,config");
        for (int j = 0; j < s->n_obj; j++) printf(",%s", s->obj[j].metric);
        printf(",test_acc%s,seconds,hv,origin,fail_reason,genome\n", is_objective(s, "model_bytes") ? "" : ",model_bytes");
    } else {
        printf("%6s %-8s %-32s", "trial", "state", "topology");
        for (int j = 0; j < s->n_obj; j++) printf(" %14s", s->obj[j].metric);
        printf(" %9s  %s\n", "test_acc", "notes");
    }
}

static int list_row(void *user, const store_trial *t) {
    const list_ctx *c = user;
    const spec *s = c->s;
    int found;
    if (c->csv) {
        printf("%d,%s,", t->number, trial_state_name(t->state));
        csv_text(t->topology);
        putchar(',');
        csv_text(t->config);
        for (int j = 0; j < s->n_obj; j++) {
            double v = metric_of(t, s->obj[j].metric, &found);
            if (found) printf(",%.9g", v);
            else printf(",");
        }
        double ta = metric_of(t, "test_acc", &found);
        if (found) printf(",%.9g", ta);
        else printf(",");
        if (!is_objective(s, "model_bytes")) printf(",%.0f", t->model_bytes);
        printf(",%.3f,", t->seconds);
        if (t->state == TRIAL_COMPLETE) printf("%.9g", t->hv);
        putchar(',');
        csv_text(t->origin);
        putchar(',');
        csv_text(t->fail_reason);
        putchar(',');
        csv_text(t->genome); /* bnas score SPEC --genome G --trial NUMBER retrains it */
        putchar('\n');
    } else {
        printf("%6d %-8s %-32.32s", t->number, trial_state_name(t->state), t->topology);
        for (int j = 0; j < s->n_obj; j++) {
            double v = metric_of(t, s->obj[j].metric, &found);
            if (found) printf(" %14.6g", v);
            else printf(" %14s", "-");
        }
        double ta = metric_of(t, "test_acc", &found);
        if (found) printf(" %9.4f", ta);
        else printf(" %9s", "-");
        printf("  %s%s%s\n", t->origin, t->fail_reason[0] ? ": " : "", t->fail_reason);
    }
    return 0;
}

/* Front rows gathered for sorting. */
typedef struct {
    store_trial *rows; /* (cap) */
    int n, cap;
} collect_ctx;

static int collect_row(void *user, const store_trial *t) {
    collect_ctx *c = user;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        store_trial *nr = realloc(c->rows, (size_t)c->cap * sizeof *nr);
        if (!nr) return 1;
        c->rows = nr;
    }
    c->rows[c->n++] = *t;
    return 0;
}

static const spec *g_sort_spec; /* qsort has no user pointer; single-threaded CLI only */

static int cmp_front(const void *a, const void *b) {
    const spec_objective *o = &g_sort_spec->obj[0];
    int fa, fb;
    double va = metric_of(a, o->metric, &fa), vb = metric_of(b, o->metric, &fb);
    if (o->maximize) va = -va, vb = -vb;
    if (va != vb) return va < vb ? -1 : 1;
    return ((const store_trial *)a)->number - ((const store_trial *)b)->number;
}

static int list_cmd(const char *cmd, int pareto_only, int argc, char **argv, const char *help) {
    if (wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    store *st;
    spec s;
    int csv;
    const char *db;
    int code = open_ro(cmd, argc, argv, help, &st, &s, &csv, &db);
    if (code) return code;
    list_ctx c = {&s, csv};
    list_header(&c);
    int rc;
    if (pareto_only) { /* the front, best first objective first */
        collect_ctx cc = {NULL, 0, 0};
        rc = store_each_trial(st, 1, collect_row, &cc);
        g_sort_spec = &s;
        qsort(cc.rows, (size_t)cc.n, sizeof *cc.rows, cmp_front);
        for (int i = 0; i < cc.n; i++) list_row(&c, &cc.rows[i]);
        free(cc.rows);
    } else {
        rc = store_each_trial(st, 0, list_row, &c);
    }
    if (rc) fprintf(stderr, "bnas: %s\n", bn_errmsg());
    store_close(st);
    spec_free(&s);
    return rc ? 1 : 0;
}

int cmd_trials(int argc, char **argv) {
    return list_cmd("trials", 0, argc, argv,
                    "usage: bnas trials DB [--csv]\nLists every trial: state, topology, objectives, "
                    "test accuracy, origin and fail reason; the CSV also has the\n"
                    "hypervolume after each completed trial (the search's curve).\n");
}

int cmd_pareto(int argc, char **argv) {
    return list_cmd("pareto", 1, argc, argv,
                    "usage: bnas pareto DB [--csv]\nLists the Pareto-optimal trials (validation "
                    "objectives; test accuracy is shown, never used).\n");
}
