/* The search loop: batches of proposals, parallel trials (threads or worker processes),
   each committed when it finishes, front and hypervolume derived in trial-number order. */
#define _POSIX_C_SOURCE 200809L
#include "nas/search.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/err.h"
#include "engine/rng.h"
#include "nas/pareto.h"
#include "nas/strategy.h"

/* OpenBLAS (OpenMP build): each trial's BLAS calls stay on the calling thread. */
void openblas_set_num_threads(int n);

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One trainable trial of the current batch. */
typedef struct {
    int number;           /* trial number */
    genome g;             /* genome */
    space_config cfg;     /* decoded configuration */
    uint64_t seed;        /* trial seed */
    int state;            /* TRIAL_COMPLETE or TRIAL_FAIL once run */
    trial_result res;     /* metrics and model */
    char reason[256];     /* fail reason */
    double t0, t1;        /* wall clock start and end */
    int committed;        /* 1: its completion is in the store */
} slot;

/* A finished trial whose front and hypervolume update waits for an earlier one. */
typedef struct {
    int number;                /* trial number */
    int state;                 /* TRIAL_COMPLETE, TRIAL_FAIL or TRIAL_INVALID */
    double obj[SPEC_MAX_OBJ];  /* objectives, minimisation form (COMPLETE) */
} fin_trial;

/* The search's in-memory view, rebuilt from the store on every start. */
typedef struct {
    const spec *s;
    space sp;
    history h;               /* committed trials of finished batches */
    hist_trial *cur;         /* committed trials of the unfinished batch */
    int n_cur, cap_cur;
    slot *slots;             /* pending trials of the unfinished batch */
    int n_slots, cap_slots;
    int cur_batch;           /* batch of cur/slots, -1 if none */
    int next_number;         /* number of the next proposal */
    int next_batch;          /* index of the next batch */
    int done, failed, invalid; /* counters over the study (finished in any order) */
    fin_trial *fin;          /* finished trials at or after next_derive, any order */
    int n_fin, cap_fin;
    store_hv_row *rows;      /* (cap_fin) scratch: hypervolume rows of one derivation */
    int next_derive;         /* every trial before it is finished and in the front/hv rows */
    int completed;           /* COMPLETE trials before next_derive */
    int n_front;             /* front members (of the trials before next_derive) */
    int *front_num;          /* (cap) their trial numbers */
    double *front_obj;       /* (cap, n_obj) their objectives, minimisation form */
    int cap_front;
    double hv;               /* hypervolume of the front */
    int bad;                 /* a row could not be read */
    int rc;                  /* its error */
} search_state;

static void cur_add(search_state *S, const hist_trial *t) {
    if (S->n_cur == S->cap_cur) {
        S->cap_cur = S->cap_cur ? S->cap_cur * 2 : 16;
        S->cur = realloc(S->cur, (size_t)S->cap_cur * sizeof *S->cur);
        BN_ASSERT(S->cur != NULL);
    }
    S->cur[S->n_cur++] = *t;
}

static int front_add(search_state *S, int number, const double *obj);

/* Queues a finished trial for the front and hypervolume derivation. */
static void fin_add(search_state *S, int number, int state, const double *obj) {
    if (S->n_fin == S->cap_fin) {
        S->cap_fin = S->cap_fin ? S->cap_fin * 2 : 16;
        S->fin = realloc(S->fin, (size_t)S->cap_fin * sizeof *S->fin);
        S->rows = realloc(S->rows, (size_t)S->cap_fin * sizeof *S->rows);
        BN_ASSERT(S->fin && S->rows);
    }
    fin_trial *f = &S->fin[S->n_fin++];
    memset(f, 0, sizeof *f);
    f->number = number;
    f->state = state;
    if (state == TRIAL_COMPLETE) memcpy(f->obj, obj, (size_t)S->s->n_obj * sizeof *obj);
}

/* Applies the queued trials that extend the finished prefix, in number order:
   the front, and one hypervolume row per COMPLETE trial into S->rows. Returns
   the rows made; *changed is set to 1 if the front changed. The same rows
   come out whatever order the trials finished in. */
static int derive(search_state *S, int *changed) {
    int n = 0;
    for (;;) {
        int i = 0;
        while (i < S->n_fin && S->fin[i].number != S->next_derive) i++;
        if (i == S->n_fin) break;
        fin_trial f = S->fin[i];
        S->fin[i] = S->fin[--S->n_fin];
        S->next_derive++;
        if (f.state != TRIAL_COMPLETE) continue;
        S->completed++;
        if (front_add(S, f.number, f.obj)) *changed = 1;
        store_hv_row *r = &S->rows[n++];
        r->trial = f.number;
        r->completed = S->completed;
        r->front_size = S->n_front;
        r->hv = S->hv;
    }
    return n;
}

static int cmp_hist(const void *a, const void *b) {
    return ((const hist_trial *)a)->number - ((const hist_trial *)b)->number;
}

/* Moves the finished batch into the history, in number order. */
static void close_batch(search_state *S) {
    qsort(S->cur, (size_t)S->n_cur, sizeof *S->cur, cmp_hist);
    for (int i = 0; i < S->n_cur; i++) history_add(&S->h, &S->cur[i]);
    S->n_cur = 0;
    S->n_slots = 0;
    S->cur_batch = -1;
}

/* Adds a COMPLETE trial to the front; returns 1 if the front changed. */
static int front_add(search_state *S, int number, const double *obj) {
    int m = S->s->n_obj;
    for (int i = 0; i < S->n_front; i++)
        if (pareto_dominates(S->front_obj + (size_t)i * m, obj, m)) return 0;
    int k = 0;
    for (int i = 0; i < S->n_front; i++) {
        if (pareto_dominates(obj, S->front_obj + (size_t)i * m, m)) continue;
        S->front_num[k] = S->front_num[i];
        memmove(S->front_obj + (size_t)k * m, S->front_obj + (size_t)i * m, (size_t)m * sizeof(double));
        k++;
    }
    if (k == S->cap_front) {
        S->cap_front = S->cap_front ? S->cap_front * 2 : 64;
        S->front_num = realloc(S->front_num, (size_t)S->cap_front * sizeof *S->front_num);
        S->front_obj = realloc(S->front_obj, (size_t)S->cap_front * m * sizeof *S->front_obj);
        BN_ASSERT(S->front_num && S->front_obj);
    }
    S->front_num[k] = number;
    memcpy(S->front_obj + (size_t)k * m, obj, (size_t)m * sizeof(double));
    S->n_front = k + 1;
    double ref[SPEC_MAX_OBJ];
    for (int j = 0; j < m; j++) ref[j] = strategy_min_form(&S->s->obj[j], S->s->obj[j].ref);
    S->hv = pareto_hypervolume(S->front_obj, S->n_front, m, ref);
    return 1;
}

/* Objectives of a completed trial in minimisation form; 0 with a reason if one is missing. */
static int objectives_of(const spec *s, const char *const *names, const double *values, int n,
                         double *obj, char *reason, size_t cap) {
    for (int j = 0; j < s->n_obj; j++) {
        int found = 0;
        for (int i = 0; i < n; i++)
            if (!strcmp(names[i], s->obj[j].metric)) {
                found = 1;
                obj[j] = strategy_min_form(&s->obj[j], values[i]);
            }
        if (!found) {
            snprintf(reason, cap, "objective metric '%s' was not reported", s->obj[j].metric);
            return 0;
        }
        if (!isfinite(obj[j])) {
            snprintf(reason, cap, "objective metric '%s' is not finite", s->obj[j].metric);
            return 0;
        }
    }
    return 1;
}

/* Loader: one stored trial. */
static int load_row(void *user, const store_trial *t) {
    search_state *S = user;
    const spec *s = S->s;
    hist_trial ht;
    memset(&ht, 0, sizeof ht);
    ht.number = t->number;
    ht.state = t->state;
    ht.hash = t->hash;
    int rc = space_genome_parse(&ht.g, t->genome);
    if (rc == BN_OK && ht.g.n != S->sp.n_genes)
        rc = bn_error(BN_EFORMAT, "trial %d: genome has %d genes, the spec's space has %d", t->number,
                      ht.g.n, S->sp.n_genes);
    if (rc) {
        S->bad = 1;
        S->rc = rc;
        return 1;
    }
    if (t->number + 1 > S->next_number) S->next_number = t->number + 1;
    if (t->batch + 1 > S->next_batch) S->next_batch = t->batch + 1;
    if (t->state == TRIAL_COMPLETE) {
        const char *names[TRIAL_MAX_METRICS];
        for (int i = 0; i < t->n_metrics; i++) names[i] = t->mname[i];
        char reason[128];
        if (!objectives_of(s, names, t->mvalue, t->n_metrics, ht.obj, reason, sizeof reason)) {
            S->bad = 1;
            S->rc = bn_error(BN_EFORMAT, "trial %d: %s", t->number, reason);
            return 1;
        }
        S->done++;
    } else if (t->state == TRIAL_FAIL) {
        S->done++;
        S->failed++;
    } else if (t->state == TRIAL_INVALID) {
        S->invalid++;
    }
    /* Finished trials enter the front in number order, up to the first
       pending one: exactly those whose hypervolume rows are stored. */
    if (t->state == TRIAL_COMPLETE || t->state == TRIAL_FAIL || t->state == TRIAL_INVALID) {
        int changed = 0;
        fin_add(S, t->number, t->state, ht.obj);
        derive(S, &changed);
    }
    /* A new batch starts: the previous one is complete unless it has pending trials. */
    if (S->cur_batch >= 0 && t->batch != S->cur_batch) {
        if (S->n_slots > 0) {
            S->bad = 1;
            S->rc = bn_error(BN_EFORMAT, "trial %d: batch %d starts while batch %d has pending trials",
                             t->number, t->batch, S->cur_batch);
            return 1;
        }
        close_batch(S);
    }
    S->cur_batch = t->batch;
    if (t->state == TRIAL_WAITING || t->state == TRIAL_RUNNING) {
        if (S->n_slots == S->cap_slots) {
            S->cap_slots = S->cap_slots ? S->cap_slots * 2 : 16;
            S->slots = realloc(S->slots, (size_t)S->cap_slots * sizeof *S->slots);
            BN_ASSERT(S->slots != NULL);
        }
        slot *sl = &S->slots[S->n_slots++];
        memset(sl, 0, sizeof *sl);
        sl->number = t->number;
        sl->g = ht.g;
        sl->seed = t->seed;
        space_decode(&S->sp, s, &sl->g, &sl->cfg);
        if (sl->cfg.hash != t->hash) {
            S->bad = 1;
            S->rc = bn_error(BN_EFORMAT, "trial %d: stored configuration '%s' does not decode from "
                             "its genome under this spec", t->number, t->config);
            return 1;
        }
    } else {
        cur_add(S, &ht);
    }
    return 0;
}

/* Expected cost of a trial, for the execution order only. */
static double slot_cost(const slot *sl) { return (sl->cfg.macs + 1.0) * sl->cfg.epochs; }

uint64_t search_trial_seed(uint64_t study_seed, int number) {
    pcg32 r;
    rng_keyed(&r, study_seed, (uint64_t)number, RNG_TRIAL);
    uint64_t hi = pcg32_next(&r);
    return (hi << 32) | pcg32_next(&r);
}

/* Commits slot sl as soon as it finished, with the front and hypervolume
   rows it lets us derive (caller holds the store lock). *t_acct is when
   elapsed time was last added to the study; the time since goes with this
   commit, so a killed session loses at most the time since its last commit. */
static int commit_slot(search_state *S, store *st, slot *sl, double *t_acct) {
    const spec *s = S->s;
    hist_trial ht;
    memset(&ht, 0, sizeof ht);
    ht.number = sl->number;
    ht.g = sl->g;
    ht.hash = sl->cfg.hash;
    if (sl->state == TRIAL_COMPLETE) {
        const char *names[TRIAL_MAX_METRICS];
        for (int i = 0; i < sl->res.metrics.n; i++) names[i] = sl->res.metrics.m[i].name;
        double values[TRIAL_MAX_METRICS];
        for (int i = 0; i < sl->res.metrics.n; i++) values[i] = sl->res.metrics.m[i].value;
        if (!objectives_of(s, names, values, sl->res.metrics.n, ht.obj, sl->reason, sizeof sl->reason))
            sl->state = TRIAL_FAIL;
    }
    ht.state = sl->state;
    if (sl->state == TRIAL_FAIL) { /* no metrics or model from a failed trial */
        free(sl->res.model);
        sl->res.model = NULL;
        sl->res.metrics.n = 0;
        S->failed++;
    }
    S->done++;
    fin_add(S, sl->number, sl->state, ht.obj);
    store_completion c;
    memset(&c, 0, sizeof c);
    c.number = sl->number;
    c.state = sl->state;
    c.res = &sl->res;
    c.fail_reason = sl->reason;
    c.t_start = sl->t0;
    c.t_end = sl->t1;
    c.n_hv = derive(S, &c.front_changed);
    c.hv = S->rows;
    c.front = S->front_num;
    c.n_front = S->n_front;
    double now = now_s();
    c.elapsed = now - *t_acct;
    int rc = store_commit(st, &c);
    if (!rc) *t_acct = now;
    trial_result_free(&sl->res);
    sl->committed = 1;
    cur_add(S, &ht);
    return rc;
}

/* Runs slot sl's trial: in this thread (o->fn), on worker process k or o->remote slot k.
   Returns BN_OK when the trial has an outcome in sl (state, result, reason),
   BN_EINTR when it was stopped (it stays pending), or a study error. */
static int run_slot(const spec *s, search_opts *o, worker_pool *pool, int k, slot *sl) {
    memset(&sl->res, 0, sizeof sl->res);
    sl->t0 = now_s();
    int trc;
    if (pool || o->remote) {
        char gtext[2048];
        space_genome_format(&sl->g, gtext, sizeof gtext);
        worker_assign a = {sl->number, sl->seed, sl->cfg.hash, gtext};
        int rc = pool ? worker_pool_run(pool, k, &a, &sl->res, &trc)
                      : o->remote(o->remote_user, k, &a, &sl->res, &trc);
        sl->t1 = now_s();
        if (rc) {
            trial_result_free(&sl->res);
            return rc;
        }
    } else {
        trc = o->fn(o->fn_user, s, &sl->cfg, sl->number, sl->seed, &sl->res);
        sl->t1 = now_s();
        if (trc == BN_EINTR && o->stop && *o->stop) { /* stopped by the user: not a failure */
            trial_result_free(&sl->res);
            return BN_EINTR;
        }
    }
    if (trc == BN_OK) {
        sl->state = TRIAL_COMPLETE;
    } else {
        sl->state = TRIAL_FAIL;
        snprintf(sl->reason, sizeof sl->reason, "%s",
                 sl->res.fail_reason[0] ? sl->res.fail_reason : bn_errmsg());
        if (!sl->reason[0]) snprintf(sl->reason, sizeof sl->reason, "%s", bn_strerror(trc));
    }
    return BN_OK;
}

int search_run(store *st, const spec *s, search_opts *o) {
    double t_begin = now_s(), ctl = 0, t_acct = t_begin;
    search_state S;
    memset(&S, 0, sizeof S);
    S.s = s;
    S.cur_batch = -1;
    space_init(&S.sp, s);
    history_init(&S.h);
    proposal *props = NULL;
    worker_pool *pool = NULL;
    int rc = store_each_trial(st, 0, load_row, &S);
    if (!rc && S.bad) rc = S.rc;
    if (rc) goto done;
    if (S.n_slots == 0 && S.cur_batch >= 0) close_batch(&S);
    store_summary sum;
    if ((rc = store_summary_get(st, &sum))) goto done;
    double prev_elapsed = sum.elapsed;
    int threads = o->threads > 0 ? o->threads : s->threads;
    if (threads > s->batch && !o->remote) threads = s->batch; /* no batch keeps more busy */
    openblas_set_num_threads(1);
    omp_set_max_active_levels(1);
    int session_commits = 0, session_done0 = S.done, running = 0;
    int max_props = s->batch * 8 + 16;
    props = bn_malloc((size_t)max_props * sizeof *props);
    ctl += now_s() - t_begin;
    /* Worker processes start (and load the data) before anything is
       proposed: a spec whose data cannot load stores no trial. */
    if (o->worker_exe && S.done < s->max_trials &&
        (rc = worker_pool_start(&pool, o->worker_exe, threads, s, o->stop)))
        goto done;
    for (;;) {
        if (S.n_slots == 0) {
            double t0 = now_s();
            int stop = (o->stop && *o->stop) || (o->stop_after > 0 && session_commits >= o->stop_after);
            if (stop) {
                rc = BN_EINTR;
                break;
            }
            if (S.done >= s->max_trials) break;
            if (s->wall_time > 0 && prev_elapsed + (now_s() - t_begin) >= s->wall_time) break;
            int want = s->batch < s->max_trials - S.done ? s->batch : s->max_trials - S.done;
            int made = 0;
            int arc = strategy_ask(s, &S.sp, &S.h, S.next_number, max_props, want, props, &made);
            if (made == 0) {
                if (arc) rc = arc;
                break;
            }
            uint64_t *seeds = bn_malloc((size_t)made * sizeof *seeds);
            for (int i = 0; i < made; i++) seeds[i] = search_trial_seed(s->seed, S.next_number + i);
            rc = store_insert_batch(st, S.next_batch, S.next_number, props, seeds, made);
            if (rc) {
                free(seeds);
                break;
            }
            S.cur_batch = S.next_batch++;
            if (S.cap_slots < made) {
                S.cap_slots = made;
                S.slots = realloc(S.slots, (size_t)S.cap_slots * sizeof *S.slots);
                BN_ASSERT(S.slots != NULL);
            }
            for (int i = 0; i < made; i++) {
                if (!props[i].cfg.valid) {
                    hist_trial ht;
                    memset(&ht, 0, sizeof ht);
                    ht.number = S.next_number + i;
                    ht.state = TRIAL_INVALID;
                    ht.g = props[i].g;
                    ht.hash = props[i].cfg.hash;
                    cur_add(&S, &ht);
                    fin_add(&S, ht.number, TRIAL_INVALID, NULL);
                    S.invalid++;
                    continue;
                }
                slot *sl = &S.slots[S.n_slots++];
                memset(sl, 0, sizeof *sl);
                sl->number = S.next_number + i;
                sl->g = props[i].g;
                sl->cfg = props[i].cfg;
                sl->seed = seeds[i];
            }
            free(seeds);
            S.next_number += made;
            ctl += now_s() - t0;
            if (S.n_slots == 0) { /* a batch of invalid proposals only */
                int changed = 0;
                derive(&S, &changed);
                close_batch(&S);
                if (arc) {
                    rc = arc;
                    break;
                }
                continue;
            }
        }
        /* Run the pending trials of the batch in a fixed order by expected cost
           (MACs x epochs) and commit each as it finishes: on several threads
           longest first, which balances them; on one thread the order balances
           nothing, so cheapest first, which has the most trials finished at any
           moment (a wall-time stop, Ctrl-C or SIGKILL mid-batch loses less). */
        int n = S.n_slots, err = BN_OK, cheapest_first = threads == 1;
        char errmsg[1024] = "";
        int *order = bn_malloc((size_t)n * sizeof *order);
        for (int i = 0; i < n; i++) order[i] = i;
        for (int i = 1; i < n; i++) { /* insertion sort: stable, n is a batch */
            int v = order[i], j = i;
            double cv = slot_cost(&S.slots[v]);
            while (j > 0 && (cheapest_first ? slot_cost(&S.slots[order[j - 1]]) > cv
                                            : slot_cost(&S.slots[order[j - 1]]) < cv))
                order[j] = order[j - 1], j--;
            order[j] = v;
        }
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
        for (int q = 0; q < n; q++) {
            slot *sl = &S.slots[order[q]];
            int skip = 0;
#pragma omp critical(bnas_store)
            {
                if (err || (o->stop && *o->stop) ||
                    (o->stop_after > 0 && session_commits >= o->stop_after))
                    skip = 1;
                else {
                    double t0 = now_s();
                    int mrc = store_mark_running(st, sl->number, t0);
                    if (mrc) {
                        err = mrc;
                        snprintf(errmsg, sizeof errmsg, "%s", bn_errmsg());
                        skip = 1;
                    } else {
                        running++;
                    }
                    ctl += now_s() - t0;
                }
            }
            if (!skip) {
                int rrc = run_slot(s, o, pool, omp_get_thread_num(), sl);
#pragma omp critical(bnas_store)
                {
                    double t0 = now_s();
                    running--;
                    if (rrc && rrc != BN_EINTR && !err) {
                        err = rrc;
                        snprintf(errmsg, sizeof errmsg, "%s", bn_errmsg());
                    }
                    if (!rrc && !err) {
                        int crc = commit_slot(&S, st, sl, &t_acct);
                        if (crc) {
                            err = crc;
                            snprintf(errmsg, sizeof errmsg, "%s", bn_errmsg());
                        }
                        session_commits++;
                    } else {
                        trial_result_free(&sl->res);
                    }
                    ctl += now_s() - t0;
                    if (o->progress && !rrc) {
                        search_progress p;
                        memset(&p, 0, sizeof p);
                        p.done = S.done;
                        p.total = s->max_trials;
                        p.running = running;
                        p.failed = S.failed;
                        p.invalid = S.invalid;
                        p.front = S.n_front;
                        p.hv = S.hv;
                        p.elapsed = now_s() - t_begin;
                        int sd = S.done - session_done0;
                        p.eta = sd > 0 ? p.elapsed / sd * (s->max_trials - S.done) : -1;
                        o->progress(&p, o->progress_user);
                    }
                }
            }
        }
        free(order);
        if (err) {
            rc = bn_error(err, "%s", errmsg);
            break;
        }
        int left = 0;
        for (int i = 0; i < n; i++) left += !S.slots[i].committed;
        if (left) { /* stopped: the uncommitted trials stay pending in the file */
            rc = BN_EINTR;
            break;
        }
        close_batch(&S);
    }
done:
    worker_pool_stop(pool);
    o->session_seconds = now_s() - t_begin;
    o->controller_seconds = ctl;
    if (st && rc != BN_EDB) {
        int erc = store_add_elapsed(st, now_s() - t_acct);
        if (!rc) rc = erc;
    }
    free(props);
    history_free(&S.h);
    free(S.cur);
    free(S.slots);
    free(S.fin);
    free(S.rows);
    free(S.front_num);
    free(S.front_obj);
    return rc;
}
