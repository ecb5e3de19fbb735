/*
** The search loop: propose, train in parallel, commit in order.
**
** Determinism rule. Trials are numbered 0, 1, 2, ... and proposed in batches
** of `strategy.batch` trainable proposals (a spec parameter, independent of
** the thread count). Batch k is proposed from the trials of batches < k only,
** all of which are committed before batch k is proposed, and every draw is
** keyed by (study seed, trial number, purpose). The trials of a batch run in
** parallel (`threads` at a time, OpenMP dynamic schedule, longest expected
** first; on one thread cheapest first), in this process or in as many worker processes (nas/worker.h). Each
** result is committed the moment it arrives, in whatever order the trials
** finish; the front and the hypervolume rows are derived from them in
** trial-number order, as far as the finished prefix reaches, in the same
** transaction. So the rows evolve identically, and the database (timings
** aside) is the same for any thread count, for in-process and worker trials,
** and for a run that was interrupted (even by SIGKILL) and resumed; a finished
** trial is never trained again.
**
** Proposals that break a hard constraint are stored as INVALID in their batch
** and do not count against the budget; a batch keeps proposing until it has
** `batch` trainable trials (or the remaining budget).
**
** Resume: trials WAITING or RUNNING in the file are run again with their
** stored genome and seed before anything new is proposed.
**
** Elapsed time: each commit adds the session's time since the previous one
** to study.elapsed (and the end of the session the rest), so a killed session
** loses only the time since its last commit from `budget.wall_time`.
*/
#ifndef BNAS_SEARCH_H
#define BNAS_SEARCH_H

#include <signal.h>

#include "nas/spec.h"
#include "nas/store.h"
#include "nas/trial.h"
#include "nas/worker.h"

/* A snapshot for the progress line, taken after every commit. */
typedef struct {
    int done;          /* trials COMPLETE or FAIL */
    int total;         /* budget (trials) */
    int running;       /* trials being trained now */
    int failed;        /* FAIL trials */
    int invalid;       /* INVALID proposals */
    int front;         /* Pareto front size */
    double hv;         /* current hypervolume */
    double elapsed;    /* seconds in this session */
    double eta;        /* estimated seconds to finish (-1: unknown) */
} search_progress;

typedef struct {
    trial_fn fn;                     /* trains one trial in this process (unused with worker_exe) */
    void *fn_user;                   /* its context */
    const char *worker_exe;          /* non-NULL: run each trial in a worker process, `threads`
                                        of them started by exec of this binary (`EXE worker`):
                                        a crash, a time limit (budget.trial_time) or the memory
                                        limit is a FAIL row and a fresh worker */
    /* Or any other runner of assignments (the MPI controller, nas/mpi.c): runs a on
       slot k (the OpenMP thread number, < threads), with worker_pool_run's contract. */
    int (*remote)(void *user, int k, const worker_assign *a, trial_result *out, int *trc);
    void *remote_user;               /* its context */
    int threads;                     /* parallel trials (0: the spec's `threads`) */
    volatile sig_atomic_t *stop;     /* when set: start no new trial, return BN_EINTR (worker
                                        processes' running trials are killed and stay pending) */
    int stop_after;                  /* > 0: stop after this many commits in this session (tests) */
    void (*progress)(const search_progress *p, void *user); /* called after every commit */
    void *progress_user;             /* passed to progress */
    double controller_seconds;       /* out: time spent proposing and committing */
    double session_seconds;          /* out: wall time of search_run */
} search_opts;

/* Runs (or continues) the study in st with spec s until the budget is spent,
   the wall time is over, *stop is set or the space is exhausted. Returns
   BN_OK, BN_EINTR (stopped; resume later) or an error. */
int search_run(store *st, const spec *s, search_opts *o);

/* The training seed of trial `number` of a study with seed study_seed (keyed
   by both: the same for every run, thread count and resume). */
uint64_t search_trial_seed(uint64_t study_seed, int number);

#endif /* BNAS_SEARCH_H */
