/*
** The study store: one SQLite file per study, and the only SQLite user in bnas.
**
** Schema (version STORE_SCHEMA_VERSION):
**
**   schema_version(version, bnas_version)
**   study(id = 1, name, spec_path, spec_text, space_path, space_text, spec_hash,
**         seed, strategy, created, elapsed)
**   objectives(idx, metric, direction 'max'|'min', ref)
**   trials(number PK, batch, state WAITING|RUNNING|COMPLETE|FAIL|INVALID,
**          genome, topology, config, config_hash UNIQUE, origin, seed,
**          model_bytes, macs, fail_reason, t_start, t_end, seconds)
**   metrics(trial, name, value)               PK (trial, name)
**   models(trial PK, format, bytes, data BLOB)  packed model of a COMPLETE trial
**   pareto(trial PK)                          the current Pareto front
**   hypervolume(trial PK, completed, front_size, hv)  after each COMPLETE trial
**
** Timing columns (study.created, study.elapsed, trials.t_start, t_end, seconds)
** are the only ones that differ between two runs of the same spec.
**
** WAL mode; every write is one BEGIN IMMEDIATE transaction; a trial's
** completion (state, metrics, model, the front and hypervolume rows it lets
** the search derive, elapsed time) is one transaction, written when the trial
** finishes, whatever the state of the earlier trials of its batch.
** A store handle is not thread-safe: the search serialises calls.
*/
#ifndef BNAS_STORE_H
#define BNAS_STORE_H

#include <stdint.h>

#include "nas/spec.h"
#include "nas/strategy.h"
#include "nas/trial.h"

#define STORE_SCHEMA_VERSION 1

typedef struct store store;

/* A trial row as read back. */
typedef struct {
    int number;                  /* trial number */
    int batch;                   /* proposal batch */
    int state;                   /* trial_state */
    char genome[2048];           /* genome text (space_genome_format) */
    char topology[256];          /* topology string */
    char config[512];            /* canonical configuration text */
    uint64_t hash;               /* canonical configuration hash */
    char origin[64];             /* how the strategy made it */
    uint64_t seed;               /* the trial's seed */
    double model_bytes;          /* packed model size from the configuration */
    char fail_reason[256];       /* FAIL / INVALID reason, "" otherwise */
    double seconds;              /* wall time of the trial (0 if not run) */
    double hv;                   /* hypervolume after its completion (COMPLETE only, else 0) */
    int n_metrics;               /* metrics stored */
    char mname[TRIAL_MAX_METRICS][EVAL_NAME_MAX]; /* their names, sorted */
    double mvalue[TRIAL_MAX_METRICS];  /* their values */
} store_trial;

/* Counts for `bnas status` and the progress line. */
typedef struct {
    char name[64];          /* study name */
    char strategy[16];      /* strategy name */
    uint64_t spec_hash;     /* frozen spec hash */
    int schema;             /* schema version of the file */
    int count[5];           /* trials per trial_state */
    int front;              /* Pareto front size */
    double hv;              /* latest hypervolume (0 if none) */
    double elapsed;         /* seconds spent searching, over all sessions */
} store_summary;

/* Creates path with the schema and the frozen spec s. Fails with BN_EIO if the
   file already exists (use resume), BN_EDB on SQLite errors. */
int store_create(store **out, const char *path, const spec *s);

/* Opens an existing study file (readonly: for status/trials/pareto). Fails if
   the file is missing, not a study or of another schema version; BN_EIO
   "the study is busy: locked by ..." if SQLite finds it locked. */
int store_open(store **out, const char *path, int readonly);

/* Takes the study's writer lock (an flock on PATH.lock, released when the
   process ends, even by SIGKILL; the file stays): only one bnas process runs
   a study at once. Writes this process's pid into PATH.lock.
   BN_EIO ("the study is busy: bnas process PID is running it") if another
   process holds it. */
int store_lock(store *st);

/* 1 if a bnas process holds the writer lock of the study at path. */
int store_is_running(const char *path);

/* The pid of the bnas process holding the writer lock of path (store_lock
   writes it into PATH.lock), 0 if none or unknown. */
long store_lock_holder(const char *path);

/* Deletes the study file at path with its -wal, -shm and .lock companions
   (a `bnas run` that failed before any trial). Close it first. */
int store_remove(const char *path);

void store_close(store *st);

/* The frozen spec: texts are malloc'd (space_* NULL if the space was inline). */
int store_get_spec(store *st, char **spec_path, char **spec_text, char **space_path,
                   char **space_text, uint64_t *hash);

/* Parses the study's frozen spec into s (free with spec_free). db names the
   study in messages. BN_EFORMAT if the text no longer matches its stored hash. */
int store_frozen_spec(store *st, spec *s, const char *db);

/* Replaces the frozen spec (bnas resume --force). */
int store_replace_spec(store *st, const spec *s);

/* Calls cb for every trial in number order (pareto_only: front members only).
   cb returns nonzero to stop. */
int store_each_trial(store *st, int pareto_only, int (*cb)(void *user, const store_trial *t),
                     void *user);

/* Calls cb for every hypervolume row (one per COMPLETE trial) in trial
   order: the trial, COMPLETE trials so far, front size and hypervolume.
   cb returns nonzero to stop. */
int store_each_hv(store *st, int (*cb)(void *user, int trial, int completed, int front_size, double hv),
                  void *user);

/* Inserts proposals p[0..n) as trials first.. of batch `batch` (valid ones
   WAITING, the others INVALID with their reason), one transaction. */
int store_insert_batch(store *st, int batch, int first, const proposal *p, const uint64_t *seeds,
                       int n);

/* WAITING -> RUNNING with its start time. */
int store_mark_running(store *st, int number, double t_start);

/* A hypervolume row: derived, in trial-number order, once every earlier trial is finished. */
typedef struct {
    int trial;                  /* a COMPLETE trial */
    int completed;              /* COMPLETE trials up to and including it */
    int front_size;             /* front size after it */
    double hv;                  /* hypervolume after it */
} store_hv_row;

/* The completion of one trial, stored as soon as it finished (in any order),
   with the rows it lets the search derive: the hypervolume rows of the trials
   whose ordered prefix it completed, and the front as of the last of them. */
typedef struct {
    int number;                 /* trial */
    int state;                  /* TRIAL_COMPLETE or TRIAL_FAIL */
    const trial_result *res;    /* metrics and model (COMPLETE) */
    const char *fail_reason;    /* FAIL reason */
    double t_start, t_end;      /* wall clock, seconds since the epoch */
    int n_hv;                   /* derived hypervolume rows */
    const store_hv_row *hv;     /* (n_hv) them, in trial order */
    int front_changed;          /* 1: replace the pareto table by front[0..n_front) */
    const int *front;           /* front trial numbers */
    int n_front;                /* their count */
    double elapsed;             /* seconds to add to study.elapsed (this session since the last commit) */
} store_completion;

/* Commits a trial's completion, its derived rows and elapsed time in one
   transaction. Invariant kept by the search: a COMPLETE trial has its
   hypervolume row iff every trial before it is finished. */
int store_commit(store *st, const store_completion *c);

/* Adds seconds to the study's elapsed time. */
int store_add_elapsed(store *st, double seconds);

int store_summary_get(store *st, store_summary *sum);

/* Reads the model blob of a trial (malloc'd). BN_EARG if it has none. */
int store_get_model(store *st, int number, void **data, size_t *size, char *format, size_t fcap);

/* A canonical text of the whole study without the timing columns (study
   created/elapsed, trial t_start/t_end/seconds): two runs of the same spec give
   equal texts. *text is malloc'd. */
int store_dump(store *st, char **text);

#endif /* BNAS_STORE_H */
