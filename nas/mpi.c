/*
** Distributed search on MPI: `bnas mpi run SPEC` and `bnas mpi resume DB`
** under mpirun (built with cmake -DBNAS_MPI=ON; without it the command says so).
**
** Rank 0 is the controller and the only process that opens the study file. It
** runs the ordinary search loop (nas/search.c) unchanged, with one OpenMP
** thread per worker slot and a runner (remote_trial, search_opts.remote) that
** ships the trial's ASSIGN frame (nas/worker.h: number, seed, config hash,
** genome) to a free slot and waits for its RESULT frame (metrics, packed model
** or fail reason). Ranks 1.. run --threads slots, one OpenMP thread per slot,
** each relaying its frames to its own `bnas worker` process (the local worker
** pool of nas/worker.h, the same protocol and bytes as `bnas run`), so a trial
** that crashes, exceeds budget.trial_time or its memory limit is a FAIL row
** with the reason and that slot gets a fresh worker; one more thread sends a
** heartbeat to the controller every HB_PERIOD seconds.
**
** Determinism: a trial's result depends only on (configuration, seed), and the
** search proposes in batches and commits in trial-number order whatever the
** thread count, so the database equals that of a single-process run of the
** same spec and seed (timing columns aside), for any number of ranks.
**
** Worker death: a controller thread waiting for a result watches the worker's
** heartbeats; after --timeout seconds without one the rank is declared dead,
** never used again, and the trial is sent to another slot (same seed, so the
** same result). Open MPI aborts the whole job when a rank dies unless mpirun
** gets --enable-recovery; with it the survivors go on, and at the end every
** rank leaves without MPI_Finalize (which would wait for the dead rank).
**
** Messages per trial: one ASSIGN (controller -> worker, ~100 bytes + the
** genome text) and one RESULT (worker -> controller, ~30 bytes per metric +
** the packed model); heartbeats are per worker and second, not per trial. The
** controller's database writes per trial are those of the single-process
** search: one insert (batched per proposal batch), one mark-running update
** and one completion transaction.
**
** The frames hold integers and doubles in host byte order: all ranks must run
** the same bnas binary on the same architecture (a homogeneous cluster).
*/
#define _XOPEN_SOURCE 700
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nas/commands.h"

#ifndef BNAS_MPI

int cmd_mpi(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "bnas mpi: this bnas was built without MPI (cmake -DBNAS_MPI=ON, needs libopenmpi-dev)\n");
    return 2;
}

#else

#include <limits.h>
#include <math.h>
#include <mpi.h>
#include <omp.h>
#include <time.h>
#include <unistd.h>

#include "engine/err.h"
#include "nas/search.h"
#include "nas/spec.h"
#include "nas/store.h"
#include "nas/strategy.h"
#include "nas/trial.h"
#include "nas/worker.h"

enum {
    TAG_HELLO = 1,     /* worker -> controller: int slots (0: the worker could not start) */
    TAG_HB = 2,        /* worker -> controller: int rank, every HB_PERIOD seconds */
    TAG_STOP = 3,      /* controller -> worker: int (1: MPI_Finalize, 0: leave without it) */
    TAG_TRIAL = 100,   /* + slot: controller -> worker: an ASSIGN frame (nas/worker.h) */
    TAG_RESULT = 1100, /* + slot: worker -> controller: a RESULT frame (nas/worker.h) */
};

#define MPI_MAX_SLOTS 256   /* slots per worker */
#define HB_PERIOD 0.5       /* seconds between heartbeats */
#define POLL_NS 1000000L    /* sleep between polls (1 ms): waiting ranks leave the cores to trials */
#define POLL_SLOW_NS 10000000L /* after POLL_SLOW_AFTER s of waiting: 10 ms (many slots, long trials) */
#define POLL_SLOW_AFTER 0.2

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void nap(void) {
    struct timespec ts = {0, POLL_NS};
    nanosleep(&ts, NULL);
}

/* Sleeps 1 ms, or 10 ms once the wait has lasted `waited` >= POLL_SLOW_AFTER s. */
static void nap_waited(double waited) {
    struct timespec ts = {0, waited >= POLL_SLOW_AFTER ? POLL_SLOW_NS : POLL_NS};
    nanosleep(&ts, NULL);
}

/* Waits for request q without spinning; gives up after `limit` seconds (< 0: never). */
static int wait_req(MPI_Request *q, double limit) {
    double t0 = now_s();
    for (;;) {
        int done = 0;
        MPI_Test(q, &done, MPI_STATUS_IGNORE);
        if (done) return 1;
        if (limit >= 0 && now_s() - t0 > limit) return 0;
        nap();
    }
}

/* ---- controller --------------------------------------------------------- */

/* The controller's view of the workers (shared by its OpenMP threads). */
typedef struct {
    int n_ranks;                   /* MPI ranks, controller included */
    int n_slot;                    /* slots over all workers */
    int *slot_rank;                /* (n_slot) worker rank of each slot */
    int *slot_idx;                 /* (n_slot) index of the slot on its worker */
    int *slot_busy;                /* (n_slot) 1 while a trial is out there */
    double *last_hb;               /* (n_ranks) when the rank last gave a sign of life */
    int *dead;                     /* (n_ranks) 1 once declared dead */
    int n_dead;                    /* ranks declared dead */
    int reruns;                    /* trials sent again after a death */
    double timeout;                /* seconds without a heartbeat that mean dead */
    volatile sig_atomic_t *stop;   /* set by SIGINT/SIGTERM */
} mpi_ctl;

/* Reads every heartbeat that arrived (one thread at a time). */
static void drain_heartbeats(mpi_ctl *C) {
#pragma omp critical(bnas_mpi_hb)
    {
        for (;;) {
            int flag = 0;
            MPI_Status st;
            MPI_Iprobe(MPI_ANY_SOURCE, TAG_HB, MPI_COMM_WORLD, &flag, &st);
            if (!flag) break;
            int who;
            MPI_Recv(&who, 1, MPI_INT, st.MPI_SOURCE, TAG_HB, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            C->last_hb[st.MPI_SOURCE] = now_s();
        }
    }
}

/* A free slot on a live worker: its index, -1 if all are busy, -2 if no worker lives. */
static int grab_slot(mpi_ctl *C) {
    int k = -1;
#pragma omp critical(bnas_mpi_slots)
    {
        int live = 0;
        for (int i = 0; i < C->n_slot; i++) {
            if (C->dead[C->slot_rank[i]]) continue;
            live = 1;
            if (!C->slot_busy[i]) {
                C->slot_busy[i] = 1;
                k = i;
                break;
            }
        }
        if (!live) k = -2;
    }
    return k;
}

static void release_slot(mpi_ctl *C, int k) {
#pragma omp critical(bnas_mpi_slots)
    C->slot_busy[k] = 0;
}

/* Declares rank r dead (once). */
static void declare_dead(mpi_ctl *C, int r) {
#pragma omp critical(bnas_mpi_slots)
    {
        if (!C->dead[r]) {
            C->dead[r] = 1;
            C->n_dead++;
        }
    }
}

/* The search's runner on the controller (search_opts.remote): sends the
   ASSIGN frame of nas/worker.h to a free slot and waits for its RESULT frame. */
static int remote_trial(void *user, int k_search, const worker_assign *a, trial_result *out, int *trc) {
    (void)k_search;
    mpi_ctl *C = user;
    int number = a->number;
    uint8_t *msg = NULL;
    size_t len = 0;
    worker_encode_assign(a, &msg, &len);
    for (int attempt = 0;; attempt++) {
        int k;
        while ((k = grab_slot(C)) == -1) {
            if (C->stop && *C->stop) {
                free(msg);
                return bn_error(BN_EINTR, "trial %d: stopped", number);
            }
            drain_heartbeats(C);
            nap();
        }
        if (k == -2) {
            /* Not the trial's fault: leave it pending (a resume reruns it). */
            if (C->stop) *C->stop = 1;
            free(msg);
            return bn_error(BN_EINTR, "trial %d: every MPI worker has died", number);
        }
        if (attempt > 0) {
#pragma omp atomic
            C->reruns++;
        }
        int r = C->slot_rank[k], idx = C->slot_idx[k];
        MPI_Request q;
        MPI_Isend(msg, (int)len, MPI_BYTE, r, TAG_TRIAL + idx, MPI_COMM_WORLD, &q);
        double last_check = now_s(), sent_at = last_check;
        for (;;) {
            int flag = 0;
            MPI_Status st;
            MPI_Iprobe(r, TAG_RESULT + idx, MPI_COMM_WORLD, &flag, &st);
            if (flag) {
                int n = 0;
                MPI_Get_count(&st, MPI_BYTE, &n);
                uint8_t *buf = bn_malloc(n > 0 ? (size_t)n : 1);
                MPI_Recv(buf, n, MPI_BYTE, r, TAG_RESULT + idx, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                int got = -1;
                int drc = worker_decode_result(buf, (size_t)n, &got, trc, out);
                free(buf);
                wait_req(&q, -1);
                release_slot(C, k);
                free(msg);
                if (!drc && got != number)
                    drc = bn_error(BN_EFORMAT, "rank %d answered trial %d with trial %d", r, number, got);
                if (drc) { /* a broken message fails the trial, not the study */
                    trial_result_free(out);
                    snprintf(out->fail_reason, sizeof out->fail_reason, "%s", bn_errmsg());
                    *trc = BN_EFORMAT;
                }
                return BN_OK;
            }
            double t = now_s();
            if (t - last_check > 0.1) {
                last_check = t;
                drain_heartbeats(C);
                double hb;
#pragma omp critical(bnas_mpi_hb)
                hb = C->last_hb[r];
                if (C->dead[r] || t - hb > C->timeout) break;
            }
            nap_waited(t - sent_at);
        }
        /* The worker is gone: its trial goes to another slot. The send to it
           may never complete; drop the request. */
        declare_dead(C, r);
        MPI_Request_free(&q);
    }
}

static volatile sig_atomic_t g_stop = 0;

static void on_signal(int sig) {
    if (g_stop) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    g_stop = 1;
}

static void on_progress(const search_progress *p, void *user) {
    (void)user;
    fprintf(stderr, "trials %d/%d  running %d  failed %d  invalid %d  front %d  hv %.6g  elapsed %.0f s\n",
            p->done, p->total, p->running, p->failed, p->invalid, p->front, p->hv, p->elapsed);
}

/* Sends the spec to the workers: a status int, then four strings (length, bytes). */
static void bcast_str(const char *s) {
    int n = s ? (int)strlen(s) + 1 : 0;
    MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (n) MPI_Bcast((void *)s, n, MPI_CHAR, 0, MPI_COMM_WORLD);
}

static char *recv_str(void) {
    int n = 0;
    MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (!n) return NULL;
    char *s = bn_malloc((size_t)n);
    MPI_Bcast(s, n, MPI_CHAR, 0, MPI_COMM_WORLD);
    return s;
}

/* Tells every worker to stop; finalize = 0 when some rank died. */
static void stop_workers(int n_ranks, const int *dead, int finalize) {
    for (int r = 1; r < n_ranks; r++) {
        MPI_Request q;
        MPI_Isend(&finalize, 1, MPI_INT, r, TAG_STOP, MPI_COMM_WORLD, &q);
        if (dead && dead[r]) MPI_Request_free(&q);
        else if (!wait_req(&q, 10.0)) MPI_Request_free(&q);
    }
}

typedef struct {
    const char *mode;      /* "run" or "resume" */
    const char *target;    /* SPEC (run) or DB (resume) */
    const char *db;        /* --db */
    int threads;           /* slots per worker */
    double timeout;        /* heartbeat timeout */
    int quiet;             /* no progress lines */
} mpi_args;

static int controller(const mpi_args *a, int n_ranks) {
    spec s;
    int have_spec = 0, code = 1, rc;
    store *st = NULL;
    char dbname[600];
    const char *db = a->db;
    if (!strcmp(a->mode, "run")) {
        rc = spec_load(&s, a->target);
        if (!rc) {
            have_spec = 1;
            char abs[PATH_MAX];
            if (realpath(a->target, abs) && strlen(abs) < sizeof s.path) memcpy(s.path, abs, strlen(abs) + 1);
            if (!db) {
                snprintf(dbname, sizeof dbname, "%s.db", s.name);
                db = dbname;
            }
            rc = store_create(&st, db, &s);
        }
    } else {
        db = a->target;
        rc = store_open(&st, db, 0);
        if (!rc) {
            rc = store_frozen_spec(st, &s, db);
            have_spec = rc == BN_OK;
        }
    }
    if (!rc) rc = store_lock(st);
    int status = rc ? 1 : 0;
    if (rc) fprintf(stderr, "bnas mpi: %s\n", bn_errmsg());
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (status) {
        store_close(st);
        if (have_spec) spec_free(&s);
        return 1;
    }
    bcast_str(s.path);
    bcast_str(s.text);
    bcast_str(s.space_text ? s.space_path : NULL);
    bcast_str(s.space_text);

    mpi_ctl C;
    memset(&C, 0, sizeof C);
    C.n_ranks = n_ranks;
    C.timeout = a->timeout;
    C.stop = &g_stop;
    C.last_hb = bn_calloc((size_t)n_ranks, sizeof *C.last_hb);
    C.dead = bn_calloc((size_t)n_ranks, sizeof *C.dead);
    int *slots = bn_calloc((size_t)n_ranks, sizeof *slots);
    /* Hello from every worker (polled: the workers are loading data). */
    int bad = 0;
    for (int got = 0; got < n_ranks - 1;) {
        int flag = 0;
        MPI_Status mst;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_HELLO, MPI_COMM_WORLD, &flag, &mst);
        if (!flag) {
            nap();
            continue;
        }
        MPI_Recv(&slots[mst.MPI_SOURCE], 1, MPI_INT, mst.MPI_SOURCE, TAG_HELLO, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (slots[mst.MPI_SOURCE] <= 0) bad = 1;
        C.n_slot += slots[mst.MPI_SOURCE];
        got++;
    }
    if (bad) {
        fprintf(stderr, "bnas mpi: a worker could not start (its message is above); nothing was run\n");
        stop_workers(n_ranks, NULL, 1);
        goto out;
    }
    C.slot_rank = bn_malloc((size_t)C.n_slot * sizeof *C.slot_rank);
    C.slot_idx = bn_malloc((size_t)C.n_slot * sizeof *C.slot_idx);
    C.slot_busy = bn_calloc((size_t)C.n_slot, sizeof *C.slot_busy);
    /* Slot order: slot 0 of every worker, then slot 1, ...: spreads a
       partial batch over the workers. */
    for (int i = 0, k = 0; k < C.n_slot; i++)
        for (int r = 1; r < n_ranks; r++)
            if (i < slots[r]) C.slot_rank[k] = r, C.slot_idx[k++] = i;
    double t0 = now_s();
    for (int r = 0; r < n_ranks; r++) C.last_hb[r] = t0;
    if (!a->quiet)
        fprintf(stderr, "study %s -> %s: controller rank 0, %d workers, %d trial slots\n", s.name, db,
                n_ranks - 1, C.n_slot);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    search_opts o;
    memset(&o, 0, sizeof o);
    o.remote = remote_trial;
    o.remote_user = &C;
    o.threads = C.n_slot;
    o.stop = &g_stop;
    if (!a->quiet) o.progress = on_progress;
    rc = search_run(st, &s, &o);
    store_summary sum;
    if (store_summary_get(st, &sum) == BN_OK && !a->quiet)
        fprintf(stderr, "%s: %d complete, %d failed, %d invalid, %d pending; front %d, hv %.6g; %.1f s, of "
                        "which controller %.3f s; workers %d, died %d, trials rerun %d\n",
                db, sum.count[TRIAL_COMPLETE], sum.count[TRIAL_FAIL], sum.count[TRIAL_INVALID],
                sum.count[TRIAL_WAITING] + sum.count[TRIAL_RUNNING], sum.front, sum.hv, o.session_seconds,
                o.controller_seconds, n_ranks - 1, C.n_dead, C.reruns);
    if (rc == BN_EINTR) fprintf(stderr, "bnas mpi: interrupted; continue with `bnas mpi resume %s`\n", db);
    else if (rc) fprintf(stderr, "bnas mpi: %s\n", bn_errmsg());
    else code = 0;
    stop_workers(n_ranks, C.dead, C.n_dead == 0);
out:
    store_close(st);
    spec_free(&s);
    int died = C.n_dead;
    free(C.slot_rank);
    free(C.slot_idx);
    free(C.slot_busy);
    free(C.last_hb);
    free(C.dead);
    free(slots);
    if (died) { /* MPI_Finalize would wait for the dead rank */
        fflush(stdout);
        fflush(stderr);
        _exit(code);
    }
    return code;
}

/* ---- worker ------------------------------------------------------------- */

/* BNAS_MPI_DIE=RANK:TRIAL (tests): rank RANK kills itself when it gets a
   trial numbered TRIAL or later. */
static void maybe_die(int rank, int number) {
    const char *d = getenv("BNAS_MPI_DIE");
    int r, t;
    if (d && sscanf(d, "%d:%d", &r, &t) == 2 && r == rank && number >= t) raise(SIGKILL);
}

/* Returns 1 if the worker should call MPI_Finalize. */
static int worker(const mpi_args *a, int rank) {
    int status = 1;
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (status) return 1;
    char *path = recv_str(), *text = recv_str(), *space_path = recv_str(), *space_text = recv_str();
    spec s;
    worker_pool *pool = NULL;
    int slots = a->threads, rc = spec_parse(&s, path ? path : "spec", text ? text : "", space_path, space_text);
    /* Each slot trains in its own worker process (nas/worker.h), so a trial
       that crashes or passes a limit is a FAIL row, as in `bnas run`. */
    if (!rc) {
        rc = worker_pool_start(&pool, "/proc/self/exe", slots, &s, NULL);
        if (rc) spec_free(&s);
    }
    if (rc) {
        fprintf(stderr, "bnas mpi: worker rank %d: %s\n", rank, bn_errmsg());
        slots = 0;
    }
    free(path);
    free(text);
    free(space_path);
    free(space_text);
    MPI_Send(&slots, 1, MPI_INT, 0, TAG_HELLO, MPI_COMM_WORLD);
    if (rc) { /* wait for the controller's stop */
        int fin = 1;
        MPI_Request q;
        MPI_Irecv(&fin, 1, MPI_INT, 0, TAG_STOP, MPI_COMM_WORLD, &q);
        wait_req(&q, -1);
        return 1;
    }
    omp_set_max_active_levels(1);
    volatile int quit = 0;
    int finalize = 1;
#pragma omp parallel num_threads(slots + 1)
    {
        int t = omp_get_thread_num();
        if (t == 0) { /* heartbeat, and the stop message */
            double last = -1;
            while (!quit) {
                double now = now_s();
                if (now - last >= HB_PERIOD) {
                    MPI_Request q;
                    MPI_Isend(&rank, 1, MPI_INT, 0, TAG_HB, MPI_COMM_WORLD, &q);
                    MPI_Request_free(&q);
                    last = now;
                }
                int flag = 0;
                MPI_Iprobe(0, TAG_STOP, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
                if (flag) {
                    MPI_Recv(&finalize, 1, MPI_INT, 0, TAG_STOP, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
#pragma omp atomic write
                    quit = 1;
                }
                struct timespec ts = {0, 20000000L};
                nanosleep(&ts, NULL);
            }
        } else if (t <= slots) {
            int slot = t - 1;
            double idle_since = now_s();
            while (!quit) {
                int flag = 0;
                MPI_Status mst;
                MPI_Iprobe(0, TAG_TRIAL + slot, MPI_COMM_WORLD, &flag, &mst);
                if (!flag) {
                    nap_waited(now_s() - idle_since);
                    continue;
                }
                int n = 0;
                MPI_Get_count(&mst, MPI_BYTE, &n);
                uint8_t *in = bn_malloc(n > 0 ? (size_t)n : 1);
                MPI_Recv(in, n, MPI_BYTE, 0, TAG_TRIAL + slot, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                worker_assign wa;
                char genome[2048];
                trial_result res;
                memset(&res, 0, sizeof res);
                int number = -1, trc = BN_EFORMAT;
                if (worker_decode_assign(in, (size_t)n, &wa, genome, sizeof genome) == BN_OK) {
                    number = wa.number;
                    maybe_die(rank, number);
                    if (worker_pool_run(pool, slot, &wa, &res, &trc) != BN_OK) {
                        /* no fresh worker could start on this rank: the trial fails with why */
                        trc = BN_EIO;
                        snprintf(res.fail_reason, sizeof res.fail_reason, "rank %d: %s", rank, bn_errmsg());
                    }
                } else {
                    snprintf(res.fail_reason, sizeof res.fail_reason, "rank %d: %s", rank, bn_errmsg());
                }
                free(in);
                uint8_t *buf;
                size_t len;
                worker_encode_result(number, trc, &res, &buf, &len);
                trial_result_free(&res);
                if (len > INT_MAX) { /* cannot go in one MPI message: fail the trial instead */
                    free(buf);
                    memset(&res, 0, sizeof res);
                    snprintf(res.fail_reason, sizeof res.fail_reason, "trial %d: result of %zu bytes is too "
                             "large for one MPI message", number, len);
                    worker_encode_result(number, BN_EARG, &res, &buf, &len);
                }
                MPI_Request q;
                MPI_Isend(buf, (int)len, MPI_BYTE, 0, TAG_RESULT + slot, MPI_COMM_WORLD, &q);
                /* Poll, so that a stop (the controller gave up on us) ends the wait. */
                int sent = 0;
                while (!sent && !quit) {
                    MPI_Test(&q, &sent, MPI_STATUS_IGNORE);
                    if (!sent) nap();
                }
                if (!sent) MPI_Request_free(&q);
                else free(buf);
                idle_since = now_s();
            }
        }
    }
    worker_pool_stop(pool);
    spec_free(&s);
    return finalize;
}

/* ---- command ------------------------------------------------------------ */

int cmd_mpi(int argc, char **argv) {
    static const char *help =
        "usage: mpirun -np N bnas mpi run SPEC [--db FILE] [--threads T] [--timeout S] [--quiet]\n"
        "       mpirun -np N bnas mpi resume DB [--threads T] [--timeout S] [--quiet]\n"
        "Distributed search: rank 0 runs the search and writes the study file; ranks\n"
        "1..N-1 train trials, T at a time each (default 1). The study file equals that\n"
        "of `bnas run SPEC` (timings aside). A worker silent for S seconds (default 30)\n"
        "is taken as dead and its trial rerun elsewhere; with Open MPI this needs\n"
        "`mpirun --enable-recovery`, else the job aborts and `bnas mpi resume` continues.\n";
    mpi_args a;
    memset(&a, 0, sizeof a);
    a.threads = 1;
    a.timeout = 30;
    if (argc < 3 || (strcmp(argv[1], "run") && strcmp(argv[1], "resume"))) {
        for (int i = 1; i < argc; i++)
            if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                fputs(help, stdout);
                return 0;
            }
        fputs(help, stderr);
        return 2;
    }
    a.mode = argv[1];
    for (int i = 2; i < argc; i++) {
        char *end = NULL;
        if (!strcmp(argv[i], "--db") && i + 1 < argc && !strcmp(a.mode, "run")) a.db = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            long t = strtol(argv[++i], &end, 10);
            if (*end || t < 1 || t > MPI_MAX_SLOTS) {
                fprintf(stderr, "bnas mpi: --threads takes a number from 1 to %d\n", MPI_MAX_SLOTS);
                return 2;
            }
            a.threads = (int)t;
        } else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
            a.timeout = strtod(argv[++i], &end);
            if (*end || !(a.timeout > 0)) {
                fprintf(stderr, "bnas mpi: --timeout takes seconds > 0\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--quiet")) a.quiet = 1;
        else if (argv[i][0] == '-' || a.target) {
            fprintf(stderr, "bnas mpi: unexpected argument '%s'\n%s", argv[i], help);
            return 2;
        } else a.target = argv[i];
    }
    if (!a.target) {
        fputs(help, stderr);
        return 2;
    }
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    int rank = 0, n_ranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n_ranks);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (provided < MPI_THREAD_MULTIPLE || n_ranks < 2) {
        if (rank == 0)
            fprintf(stderr, "bnas mpi: %s\n", n_ranks < 2 ? "needs at least 2 ranks (mpirun -np 3 ...): "
                                                            "rank 0 controls, the others train"
                                                          : "the MPI library lacks MPI_THREAD_MULTIPLE");
        MPI_Finalize();
        return 2;
    }
    int code;
    if (rank == 0) {
        code = controller(&a, n_ranks);
    } else {
        int fin = worker(&a, rank);
        code = 0;
        if (!fin) {
            fflush(stdout);
            fflush(stderr);
            _exit(0);
        }
    }
    MPI_Finalize();
    return code;
}

#endif /* BNAS_MPI */
