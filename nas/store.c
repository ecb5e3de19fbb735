/* The SQLite study store: schema, frozen spec, trials, metrics, models, front, hypervolume. */
#define _POSIX_C_SOURCE 200809L
#include "nas/store.h"
#include "nas/strategy.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "engine/err.h"

struct store {
    sqlite3 *db;        /* the connection */
    char path[512];     /* file name for messages */
    int lock_fd;        /* writer lock file descriptor, -1 if none */
    char lock_path[600];/* PATH.lock */
};

static const char *const schema_sql =
    "CREATE TABLE schema_version(version INTEGER NOT NULL, bnas_version TEXT NOT NULL);"
    "CREATE TABLE study(id INTEGER PRIMARY KEY CHECK (id = 1), name TEXT NOT NULL,"
    " spec_path TEXT NOT NULL, spec_text TEXT NOT NULL, space_path TEXT, space_text TEXT,"
    " spec_hash TEXT NOT NULL, seed INTEGER NOT NULL, strategy TEXT NOT NULL,"
    " created REAL NOT NULL, elapsed REAL NOT NULL DEFAULT 0);"
    "CREATE TABLE objectives(idx INTEGER PRIMARY KEY, metric TEXT NOT NULL,"
    " direction TEXT NOT NULL CHECK (direction IN ('max','min')), ref REAL NOT NULL);"
    "CREATE TABLE trials(number INTEGER PRIMARY KEY, batch INTEGER NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN ('WAITING','RUNNING','COMPLETE','FAIL','INVALID')),"
    " genome TEXT NOT NULL, topology TEXT NOT NULL, config TEXT NOT NULL,"
    " config_hash TEXT NOT NULL UNIQUE, origin TEXT NOT NULL, seed INTEGER NOT NULL,"
    " model_bytes INTEGER NOT NULL, macs REAL NOT NULL, fail_reason TEXT,"
    " t_start REAL, t_end REAL, seconds REAL);"
    "CREATE INDEX trials_state ON trials(state);"
    "CREATE TABLE metrics(trial INTEGER NOT NULL REFERENCES trials(number), name TEXT NOT NULL,"
    " value REAL NOT NULL, PRIMARY KEY (trial, name));"
    "CREATE TABLE models(trial INTEGER PRIMARY KEY REFERENCES trials(number),"
    " format TEXT NOT NULL, bytes INTEGER NOT NULL, data BLOB NOT NULL);"
    "CREATE TABLE pareto(trial INTEGER PRIMARY KEY REFERENCES trials(number));"
    "CREATE TABLE hypervolume(trial INTEGER PRIMARY KEY REFERENCES trials(number),"
    " completed INTEGER NOT NULL, front_size INTEGER NOT NULL, hv REAL NOT NULL);";

const char *bnas_version(void);

static int db_err(store *st, const char *what) {
    return bn_error(BN_EDB, "%s: %s: %s", st->path, what, sqlite3_errmsg(st->db));
}

static int exec(store *st, const char *sql) {
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = bn_error(BN_EDB, "%s: %s", st->path, msg ? msg : "error");
        sqlite3_free(msg);
        return rc;
    }
    return BN_OK;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int prepare(store *st, sqlite3_stmt **s, const char *sql) {
    if (sqlite3_prepare_v2(st->db, sql, -1, s, NULL) != SQLITE_OK) return db_err(st, "prepare");
    return BN_OK;
}

static int open_conn(store *st, const char *path, int flags) {
    snprintf(st->path, sizeof st->path, "%s", path);
    st->lock_fd = -1;
    if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
        int rc = bn_error(BN_EDB, "%s: cannot open: %s", path,
                          st->db ? sqlite3_errmsg(st->db) : "out of memory");
        sqlite3_close(st->db);
        st->db = NULL;
        return rc;
    }
    /* Writers wait out a commit of another connection; readers (status) need not wait long. */
    sqlite3_busy_timeout(st->db, flags & SQLITE_OPEN_READONLY ? 2000 : 10000);
    return BN_OK;
}

static void hex64(char *buf, uint64_t v) { snprintf(buf, 17, "%016llx", (unsigned long long)v); }

static int write_spec(store *st, const spec *s, int replace) {
    sqlite3_stmt *q = NULL;
    char h[17];
    hex64(h, s->hash);
    int rc = prepare(st, &q, replace
        ? "UPDATE study SET name=?1, spec_path=?2, spec_text=?3, space_path=?4, space_text=?5,"
          " spec_hash=?6, seed=?7, strategy=?8 WHERE id=1"
        : "INSERT INTO study(id,name,spec_path,spec_text,space_path,space_text,spec_hash,seed,"
          "strategy,created) VALUES(1,?1,?2,?3,?4,?5,?6,?7,?8,?9)");
    if (rc) return rc;
    sqlite3_bind_text(q, 1, s->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 2, s->path, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 3, s->text, -1, SQLITE_TRANSIENT);
    if (s->space_text) {
        sqlite3_bind_text(q, 4, s->space_path, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 5, s->space_text, -1, SQLITE_TRANSIENT);
    }
    sqlite3_bind_text(q, 6, h, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, 7, (sqlite3_int64)s->seed);
    sqlite3_bind_text(q, 8, strategy_name(s->strategy), -1, SQLITE_STATIC);
    if (!replace) sqlite3_bind_double(q, 9, now_s());
    if (sqlite3_step(q) != SQLITE_DONE) rc = db_err(st, "writing the spec");
    sqlite3_finalize(q);
    if (rc) return rc;
    if (replace) rc = exec(st, "DELETE FROM objectives");
    if (rc) return rc;
    if ((rc = prepare(st, &q, "INSERT INTO objectives(idx,metric,direction,ref) VALUES(?,?,?,?)")))
        return rc;
    for (int i = 0; i < s->n_obj && !rc; i++) {
        sqlite3_reset(q);
        sqlite3_bind_int(q, 1, i);
        sqlite3_bind_text(q, 2, s->obj[i].metric, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 3, s->obj[i].maximize ? "max" : "min", -1, SQLITE_STATIC);
        sqlite3_bind_double(q, 4, s->obj[i].ref);
        if (sqlite3_step(q) != SQLITE_DONE) rc = db_err(st, "writing objectives");
    }
    sqlite3_finalize(q);
    return rc;
}

int store_create(store **out, const char *path, const spec *s) {
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) == 0)
        return bn_error(BN_EIO, "%s: already exists (continue it with `bnas resume %s`)", path, path);
    store *st = bn_calloc(1, sizeof *st);
    int rc = open_conn(st, path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (rc) goto fail;
    if ((rc = exec(st, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"))) goto fail;
    if ((rc = exec(st, "BEGIN IMMEDIATE"))) goto fail;
    if ((rc = exec(st, schema_sql))) goto rollback;
    char sql[200];
    snprintf(sql, sizeof sql, "INSERT INTO schema_version VALUES(%d, '%s')", STORE_SCHEMA_VERSION,
             bnas_version());
    if ((rc = exec(st, sql))) goto rollback;
    if ((rc = write_spec(st, s, 0))) goto rollback;
    if ((rc = exec(st, "COMMIT"))) goto rollback;
    *out = st;
    return BN_OK;
rollback:
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
fail:
    if (st->db) sqlite3_close(st->db);
    free(st);
    return rc;
}

int store_open(store **out, const char *path, int readonly) {
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) return bn_error(BN_EIO, "%s: no such study file", path);
    store *st = bn_calloc(1, sizeof *st);
    int rc = open_conn(st, path, readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE);
    if (rc) goto fail;
    sqlite3_stmt *q = NULL;
    int prc = sqlite3_prepare_v2(st->db, "SELECT version FROM schema_version", -1, &q, NULL);
    int ver = -1, step = prc == SQLITE_OK ? sqlite3_step(q) : prc;
    if (step == SQLITE_ROW) ver = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    if ((step & 0xff) == SQLITE_BUSY || (step & 0xff) == SQLITE_LOCKED) {
        /* Locked, not broken: say who holds it if it is a bnas run. */
        long pid = store_lock_holder(path);
        if (pid > 0)
            rc = bn_error(BN_EIO, "%s: the study is busy: locked by bnas process %ld (%s)", path, pid,
                          sqlite3_errmsg(st->db));
        else
            rc = bn_error(BN_EIO, "%s: the study is busy: locked by another program, not a bnas run (%s)",
                          path, sqlite3_errmsg(st->db));
        goto fail;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        rc = bn_error(BN_EFORMAT, "%s: not a bnas study (%s)", path, sqlite3_errmsg(st->db));
        goto fail;
    }
    if (ver != STORE_SCHEMA_VERSION) {
        rc = bn_error(BN_EFORMAT, "%s: schema version %d, this bnas reads version %d", path, ver,
                      STORE_SCHEMA_VERSION);
        goto fail;
    }
    if (!readonly && (rc = exec(st, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"))) goto fail;
    *out = st;
    return BN_OK;
fail:
    if (st->db) sqlite3_close(st->db);
    free(st);
    return rc;
}

int store_lock(store *st) {
    snprintf(st->lock_path, sizeof st->lock_path, "%s.lock", st->path);
    int fd = open(st->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644); /* not inherited by workers */
    if (fd < 0) return bn_error(BN_EIO, "%s: cannot create the lock file", st->lock_path);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        long pid = store_lock_holder(st->path);
        if (pid > 0)
            return bn_error(BN_EIO, "%s: the study is busy: bnas process %ld is running it", st->path, pid);
        return bn_error(BN_EIO, "%s: the study is busy: another bnas process is running it", st->path);
    }
    /* Who holds it, for the messages of the others. */
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        close(fd);
        return bn_error(BN_EIO, "%s: cannot write the lock file", st->lock_path);
    }
    st->lock_fd = fd;
    return BN_OK;
}

int store_is_running(const char *path) {
    char lp[600];
    snprintf(lp, sizeof lp, "%s.lock", path);
    int fd = open(lp, O_RDONLY);
    if (fd < 0) return 0;
    int busy = flock(fd, LOCK_SH | LOCK_NB) != 0;
    close(fd);
    return busy;
}

long store_lock_holder(const char *path) {
    if (!store_is_running(path)) return 0;
    char lp[600], buf[32] = "";
    snprintf(lp, sizeof lp, "%s.lock", path);
    int fd = open(lp, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    return strtol(buf, NULL, 10);
}

int store_remove(const char *path) {
    static const char *const sfx[] = {"", "-wal", "-shm", ".lock"};
    int rc = BN_OK;
    for (size_t i = 0; i < sizeof sfx / sizeof *sfx; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        if (unlink(p) != 0 && i == 0) rc = bn_error(BN_EIO, "%s: cannot remove", path);
    }
    return rc;
}

void store_close(store *st) {
    if (!st) return;
    /* The lock file stays: unlinking it would let two processes lock two different files. */
    if (st->lock_fd >= 0) close(st->lock_fd);
    sqlite3_close(st->db);
    free(st);
}

static char *col_dup(sqlite3_stmt *q, int i) {
    const unsigned char *t = sqlite3_column_text(q, i);
    if (!t) return NULL;
    size_t n = strlen((const char *)t);
    char *p = bn_malloc(n + 1);
    memcpy(p, t, n + 1);
    return p;
}

int store_get_spec(store *st, char **spec_path, char **spec_text, char **space_path,
                   char **space_text, uint64_t *hash) {
    sqlite3_stmt *q = NULL;
    int rc = prepare(st, &q, "SELECT spec_path, spec_text, space_path, space_text, spec_hash "
                             "FROM study WHERE id=1");
    if (rc) return rc;
    if (sqlite3_step(q) != SQLITE_ROW) {
        sqlite3_finalize(q);
        return bn_error(BN_EFORMAT, "%s: no study row", st->path);
    }
    *spec_path = col_dup(q, 0);
    *spec_text = col_dup(q, 1);
    *space_path = col_dup(q, 2);
    *space_text = col_dup(q, 3);
    const unsigned char *h = sqlite3_column_text(q, 4);
    *hash = h ? strtoull((const char *)h, NULL, 16) : 0;
    sqlite3_finalize(q);
    return BN_OK;
}

int store_replace_spec(store *st, const spec *s) {
    int rc = exec(st, "BEGIN IMMEDIATE");
    if (rc) return rc;
    if ((rc = write_spec(st, s, 1)) || (rc = exec(st, "COMMIT"))) {
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    return BN_OK;
}

static int state_of(const char *t) {
    for (int s = 0; s <= TRIAL_INVALID; s++)
        if (t && !strcmp(t, trial_state_name(s))) return s;
    return -1;
}

static void col_copy(sqlite3_stmt *q, int i, char *buf, size_t cap) {
    const unsigned char *t = sqlite3_column_text(q, i);
    snprintf(buf, cap, "%s", t ? (const char *)t : "");
}

int store_each_trial(store *st, int pareto_only, int (*cb)(void *user, const store_trial *t),
                     void *user) {
    sqlite3_stmt *q = NULL, *m = NULL;
    int rc = prepare(st, &q, pareto_only
        ? "SELECT t.number,batch,state,genome,topology,config,config_hash,origin,seed,model_bytes,"
          "fail_reason,seconds,h.hv FROM trials t JOIN pareto p ON p.trial=t.number"
          " LEFT JOIN hypervolume h ON h.trial=t.number ORDER BY t.number"
        : "SELECT t.number,batch,state,genome,topology,config,config_hash,origin,seed,model_bytes,"
          "fail_reason,seconds,h.hv FROM trials t LEFT JOIN hypervolume h ON h.trial=t.number"
          " ORDER BY t.number");
    if (rc) return rc;
    if ((rc = prepare(st, &m, "SELECT name, value FROM metrics WHERE trial=? ORDER BY name"))) {
        sqlite3_finalize(q);
        return rc;
    }
    store_trial *t = bn_malloc(sizeof *t);
    int step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        memset(t, 0, sizeof *t);
        t->number = sqlite3_column_int(q, 0);
        t->batch = sqlite3_column_int(q, 1);
        t->state = state_of((const char *)sqlite3_column_text(q, 2));
        col_copy(q, 3, t->genome, sizeof t->genome);
        col_copy(q, 4, t->topology, sizeof t->topology);
        col_copy(q, 5, t->config, sizeof t->config);
        const unsigned char *h = sqlite3_column_text(q, 6);
        t->hash = h ? strtoull((const char *)h, NULL, 16) : 0;
        col_copy(q, 7, t->origin, sizeof t->origin);
        t->seed = (uint64_t)sqlite3_column_int64(q, 8);
        t->model_bytes = sqlite3_column_double(q, 9);
        col_copy(q, 10, t->fail_reason, sizeof t->fail_reason);
        t->seconds = sqlite3_column_double(q, 11);
        t->hv = sqlite3_column_double(q, 12);
        sqlite3_reset(m);
        sqlite3_bind_int(m, 1, t->number);
        while (sqlite3_step(m) == SQLITE_ROW && t->n_metrics < TRIAL_MAX_METRICS) {
            col_copy(m, 0, t->mname[t->n_metrics], sizeof t->mname[0]);
            t->mvalue[t->n_metrics++] = sqlite3_column_double(m, 1);
        }
        if (cb(user, t)) break;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE) rc = db_err(st, "reading trials");
    free(t);
    sqlite3_finalize(q);
    sqlite3_finalize(m);
    return rc;
}

int store_each_hv(store *st, int (*cb)(void *user, int trial, int completed, int front_size, double hv),
                  void *user) {
    sqlite3_stmt *q = NULL;
    int rc = prepare(st, &q, "SELECT trial, completed, front_size, hv FROM hypervolume ORDER BY trial");
    if (rc) return rc;
    int step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW)
        if (cb(user, sqlite3_column_int(q, 0), sqlite3_column_int(q, 1), sqlite3_column_int(q, 2),
               sqlite3_column_double(q, 3)))
            break;
    if (step != SQLITE_ROW && step != SQLITE_DONE) rc = db_err(st, "reading the hypervolume");
    sqlite3_finalize(q);
    return rc;
}

int store_insert_batch(store *st, int batch, int first, const proposal *p, const uint64_t *seeds,
                       int n) {
    int rc = exec(st, "BEGIN IMMEDIATE");
    if (rc) return rc;
    sqlite3_stmt *q = NULL;
    if ((rc = prepare(st, &q, "INSERT INTO trials(number,batch,state,genome,topology,config,"
                              "config_hash,origin,seed,model_bytes,macs,fail_reason) "
                              "VALUES(?,?,?,?,?,?,?,?,?,?,?,?)")))
        goto rollback;
    char gtext[2048], h[17];
    for (int i = 0; i < n; i++) {
        const proposal *pp = &p[i];
        sqlite3_reset(q);
        sqlite3_clear_bindings(q);
        space_genome_format(&pp->g, gtext, sizeof gtext);
        hex64(h, pp->cfg.hash);
        sqlite3_bind_int(q, 1, first + i);
        sqlite3_bind_int(q, 2, batch);
        sqlite3_bind_text(q, 3, trial_state_name(pp->cfg.valid ? TRIAL_WAITING : TRIAL_INVALID), -1,
                          SQLITE_STATIC);
        sqlite3_bind_text(q, 4, gtext, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 5, pp->cfg.topology, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 6, pp->cfg.canon, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 7, h, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 8, pp->origin, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(q, 9, (sqlite3_int64)seeds[i]);
        sqlite3_bind_int64(q, 10, (sqlite3_int64)pp->cfg.model_bytes);
        sqlite3_bind_double(q, 11, pp->cfg.macs);
        if (!pp->cfg.valid) sqlite3_bind_text(q, 12, pp->cfg.reason, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(q) != SQLITE_DONE) {
            rc = db_err(st, "inserting a trial");
            goto rollback;
        }
    }
    sqlite3_finalize(q);
    return exec(st, "COMMIT");
rollback:
    sqlite3_finalize(q);
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int store_mark_running(store *st, int number, double t_start) {
    sqlite3_stmt *q = NULL;
    int rc = prepare(st, &q, "UPDATE trials SET state='RUNNING', t_start=? WHERE number=? AND "
                             "state IN ('WAITING','RUNNING')");
    if (rc) return rc;
    sqlite3_bind_double(q, 1, t_start);
    sqlite3_bind_int(q, 2, number);
    if (sqlite3_step(q) != SQLITE_DONE) rc = db_err(st, "marking a trial running");
    else if (sqlite3_changes(st->db) != 1)
        rc = bn_error(BN_EDB, "%s: trial %d is not WAITING", st->path, number);
    sqlite3_finalize(q);
    return rc;
}

int store_commit(store *st, const store_completion *c) {
    int rc = exec(st, "BEGIN IMMEDIATE");
    if (rc) return rc;
    sqlite3_stmt *q = NULL;
    if ((rc = prepare(st, &q, "UPDATE trials SET state=?, fail_reason=?, t_start=?, t_end=?, "
                              "seconds=? WHERE number=? AND state IN ('WAITING','RUNNING')")))
        goto rollback;
    sqlite3_bind_text(q, 1, trial_state_name(c->state), -1, SQLITE_STATIC);
    if (c->state == TRIAL_FAIL) sqlite3_bind_text(q, 2, c->fail_reason, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(q, 3, c->t_start);
    sqlite3_bind_double(q, 4, c->t_end);
    sqlite3_bind_double(q, 5, c->t_end - c->t_start);
    sqlite3_bind_int(q, 6, c->number);
    if (sqlite3_step(q) != SQLITE_DONE || sqlite3_changes(st->db) != 1) {
        rc = sqlite3_changes(st->db) != 1
                 ? bn_error(BN_EDB, "%s: trial %d is not pending", st->path, c->number)
                 : db_err(st, "completing a trial");
        goto rollback;
    }
    sqlite3_finalize(q);
    q = NULL;
    if (c->state == TRIAL_COMPLETE) {
        if ((rc = prepare(st, &q, "INSERT INTO metrics(trial,name,value) VALUES(?,?,?)"))) goto rollback;
        for (int i = 0; i < c->res->metrics.n; i++) {
            sqlite3_reset(q);
            sqlite3_bind_int(q, 1, c->number);
            sqlite3_bind_text(q, 2, c->res->metrics.m[i].name, -1, SQLITE_TRANSIENT);
            sqlite3_bind_double(q, 3, c->res->metrics.m[i].value);
            if (sqlite3_step(q) != SQLITE_DONE) {
                rc = db_err(st, "writing metrics");
                goto rollback;
            }
        }
        sqlite3_finalize(q);
        q = NULL;
        if (c->res->model) {
            if ((rc = prepare(st, &q, "INSERT INTO models(trial,format,bytes,data) VALUES(?,?,?,?)")))
                goto rollback;
            sqlite3_bind_int(q, 1, c->number);
            sqlite3_bind_text(q, 2, c->res->model_format, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(q, 3, (sqlite3_int64)c->res->model_size);
            sqlite3_bind_blob64(q, 4, c->res->model, c->res->model_size, SQLITE_STATIC);
            if (sqlite3_step(q) != SQLITE_DONE) {
                rc = db_err(st, "writing the model");
                goto rollback;
            }
            sqlite3_finalize(q);
            q = NULL;
        }
    }
    if (c->front_changed) {
        if ((rc = exec(st, "DELETE FROM pareto"))) goto rollback;
        if ((rc = prepare(st, &q, "INSERT INTO pareto(trial) VALUES(?)"))) goto rollback;
        for (int i = 0; i < c->n_front; i++) {
            sqlite3_reset(q);
            sqlite3_bind_int(q, 1, c->front[i]);
            if (sqlite3_step(q) != SQLITE_DONE) {
                rc = db_err(st, "writing the front");
                goto rollback;
            }
        }
        sqlite3_finalize(q);
        q = NULL;
    }
    if (c->n_hv > 0) {
        if ((rc = prepare(st, &q, "INSERT INTO hypervolume(trial,completed,front_size,hv) "
                                  "VALUES(?,?,?,?)")))
            goto rollback;
        for (int i = 0; i < c->n_hv; i++) {
            sqlite3_reset(q);
            sqlite3_bind_int(q, 1, c->hv[i].trial);
            sqlite3_bind_int(q, 2, c->hv[i].completed);
            sqlite3_bind_int(q, 3, c->hv[i].front_size);
            sqlite3_bind_double(q, 4, c->hv[i].hv);
            if (sqlite3_step(q) != SQLITE_DONE) {
                rc = db_err(st, "writing the hypervolume");
                goto rollback;
            }
        }
        sqlite3_finalize(q);
        q = NULL;
    }
    if (c->elapsed > 0) {
        if ((rc = prepare(st, &q, "UPDATE study SET elapsed = elapsed + ? WHERE id=1"))) goto rollback;
        sqlite3_bind_double(q, 1, c->elapsed);
        if (sqlite3_step(q) != SQLITE_DONE) {
            rc = db_err(st, "updating elapsed time");
            goto rollback;
        }
        sqlite3_finalize(q);
        q = NULL;
    }
    return exec(st, "COMMIT");
rollback:
    sqlite3_finalize(q);
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int store_add_elapsed(store *st, double seconds) {
    sqlite3_stmt *q = NULL;
    int rc = prepare(st, &q, "UPDATE study SET elapsed = elapsed + ? WHERE id=1");
    if (rc) return rc;
    sqlite3_bind_double(q, 1, seconds);
    if (sqlite3_step(q) != SQLITE_DONE) rc = db_err(st, "updating elapsed time");
    sqlite3_finalize(q);
    return rc;
}

int store_summary_get(store *st, store_summary *sum) {
    memset(sum, 0, sizeof *sum);
    sum->schema = STORE_SCHEMA_VERSION;
    sqlite3_stmt *q = NULL;
    int rc = prepare(st, &q, "SELECT name, strategy, spec_hash, elapsed FROM study WHERE id=1");
    if (rc) return rc;
    if (sqlite3_step(q) == SQLITE_ROW) {
        col_copy(q, 0, sum->name, sizeof sum->name);
        col_copy(q, 1, sum->strategy, sizeof sum->strategy);
        const unsigned char *h = sqlite3_column_text(q, 2);
        sum->spec_hash = h ? strtoull((const char *)h, NULL, 16) : 0;
        sum->elapsed = sqlite3_column_double(q, 3);
    }
    sqlite3_finalize(q);
    if ((rc = prepare(st, &q, "SELECT state, count(*) FROM trials GROUP BY state"))) return rc;
    while (sqlite3_step(q) == SQLITE_ROW) {
        int s = state_of((const char *)sqlite3_column_text(q, 0));
        if (s >= 0) sum->count[s] = sqlite3_column_int(q, 1);
    }
    sqlite3_finalize(q);
    if ((rc = prepare(st, &q, "SELECT count(*) FROM pareto"))) return rc;
    if (sqlite3_step(q) == SQLITE_ROW) sum->front = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    if ((rc = prepare(st, &q, "SELECT hv FROM hypervolume ORDER BY trial DESC LIMIT 1"))) return rc;
    if (sqlite3_step(q) == SQLITE_ROW) sum->hv = sqlite3_column_double(q, 0);
    sqlite3_finalize(q);
    return BN_OK;
}

int store_get_model(store *st, int number, void **data, size_t *size, char *format, size_t fcap) {
    sqlite3_stmt *q = NULL;
    *data = NULL;
    *size = 0;
    int rc = prepare(st, &q, "SELECT format, data FROM models WHERE trial=?");
    if (rc) return rc;
    sqlite3_bind_int(q, 1, number);
    if (sqlite3_step(q) != SQLITE_ROW) {
        sqlite3_finalize(q);
        return bn_error(BN_EARG, "%s: trial %d has no stored model", st->path, number);
    }
    col_copy(q, 0, format, fcap);
    int n = sqlite3_column_bytes(q, 1);
    *data = bn_malloc((size_t)n);
    if (n > 0) memcpy(*data, sqlite3_column_blob(q, 1), (size_t)n); /* an empty blob is NULL */
    *size = (size_t)n;
    sqlite3_finalize(q);
    return BN_OK;
}

int store_dump(store *st, char **text) {
    static const char *const queries[] = {
        "SELECT version, bnas_version FROM schema_version",
        "SELECT name, spec_path, spec_text, space_path, space_text, spec_hash, seed, strategy "
        "FROM study",
        "SELECT idx, metric, direction, ref FROM objectives ORDER BY idx",
        "SELECT number, batch, state, genome, topology, config, config_hash, origin, seed, "
        "model_bytes, macs, fail_reason FROM trials ORDER BY number",
        "SELECT trial, name, value FROM metrics ORDER BY trial, name",
        "SELECT trial, format, bytes, hex(data) FROM models ORDER BY trial",
        "SELECT trial FROM pareto ORDER BY trial",
        "SELECT trial, completed, front_size, hv FROM hypervolume ORDER BY trial",
    };
    *text = NULL;
    sqlite3_str *out = sqlite3_str_new(st->db);
    int rc = BN_OK;
    for (size_t k = 0; k < sizeof queries / sizeof *queries && !rc; k++) {
        sqlite3_stmt *q = NULL;
        if ((rc = prepare(st, &q, queries[k]))) break;
        sqlite3_str_appendf(out, "== %s\n", queries[k]);
        int step;
        while ((step = sqlite3_step(q)) == SQLITE_ROW) {
            for (int c = 0; c < sqlite3_column_count(q); c++) {
                if (c) sqlite3_str_appendall(out, "|");
                switch (sqlite3_column_type(q, c)) {
                case SQLITE_NULL: sqlite3_str_appendall(out, "NULL"); break;
                case SQLITE_INTEGER:
                    sqlite3_str_appendf(out, "%lld", (long long)sqlite3_column_int64(q, c));
                    break;
                case SQLITE_FLOAT: sqlite3_str_appendf(out, "%!.17g", sqlite3_column_double(q, c)); break;
                default: sqlite3_str_appendf(out, "%s", (const char *)sqlite3_column_text(q, c));
                }
            }
            sqlite3_str_appendall(out, "\n");
        }
        if (step != SQLITE_DONE) rc = db_err(st, "dumping");
        sqlite3_finalize(q);
    }
    char *s = sqlite3_str_finish(out);
    if (!rc && s) {
        size_t n = strlen(s);
        *text = bn_malloc(n + 1);
        memcpy(*text, s, n + 1);
    }
    sqlite3_free(s);
    return rc;
}

int store_frozen_spec(store *st, spec *s, const char *db) {
    char *path = NULL, *text = NULL, *space_path = NULL, *space_text = NULL;
    uint64_t hash = 0;
    int rc = store_get_spec(st, &path, &text, &space_path, &space_text, &hash);
    if (rc) return rc;
    rc = spec_parse(s, path ? path : db, text ? text : "", space_path, space_text);
    if (!rc && s->hash != hash) {
        spec_free(s);
        rc = bn_error(BN_EFORMAT, "%s: the frozen spec does not match its stored hash", db);
    }
    free(path);
    free(text);
    free(space_path);
    free(space_text);
    return rc;
}
