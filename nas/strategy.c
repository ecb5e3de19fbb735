/* Random search, regularized (aging) evolution and NSGA-II as stateless ask functions. */
#include "nas/strategy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/err.h"
#include "engine/rng.h"
#include "nas/pareto.h"

#define DEDUP_TRIES 200
#define RANDOM_TRIES 2000

const char *trial_state_name(int state) {
    switch (state) {
    case TRIAL_WAITING: return "WAITING";
    case TRIAL_RUNNING: return "RUNNING";
    case TRIAL_COMPLETE: return "COMPLETE";
    case TRIAL_FAIL: return "FAIL";
    case TRIAL_INVALID: return "INVALID";
    }
    return "?";
}

void history_init(history *h) { memset(h, 0, sizeof *h); }

void history_free(history *h) {
    free(h->t);
    memset(h, 0, sizeof *h);
}

void history_add(history *h, const hist_trial *t) {
    BN_ASSERT(h->n == 0 || t->number > h->t[h->n - 1].number);
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        hist_trial *nt = realloc(h->t, (size_t)h->cap * sizeof *nt);
        BN_ASSERT(nt != NULL);
        h->t = nt;
    }
    h->t[h->n++] = *t;
}

int history_has_hash(const history *h, uint64_t hash) {
    for (int i = 0; i < h->n; i++)
        if (h->t[i].hash == hash) return 1;
    return 0;
}

double strategy_min_form(const spec_objective *o, double value) {
    return o->maximize ? -value : value;
}

/* Shared state of one batch: what every proposal of the batch selects from. */
typedef struct {
    const spec *s;
    const space *sp;
    const history *h;
    int n_pool;            /* candidates for parents */
    const hist_trial **pool; /* (n_pool) parent candidates */
    int *rank;             /* (n_pool) non-dominated rank */
    double *crowd;         /* (n_pool) crowding distance (nsga2) */
    const proposal *batch; /* proposals already made in this batch */
    int n_batch;           /* how many */
} batch_ctx;

static int seen(const batch_ctx *b, uint64_t hash) {
    if (history_has_hash(b->h, hash)) return 1;
    for (int i = 0; i < b->n_batch; i++)
        if (b->batch[i].cfg.hash == hash) return 1;
    return 0;
}

/* a better than b in the evolution tournament. */
static int evo_better(const batch_ctx *b, int x, int y) {
    if (b->rank[x] != b->rank[y]) return b->rank[x] < b->rank[y];
    if (b->crowd[x] != b->crowd[y]) return b->crowd[x] > b->crowd[y];
    if (b->pool[x]->obj[0] != b->pool[y]->obj[0]) return b->pool[x]->obj[0] < b->pool[y]->obj[0];
    return b->pool[x]->number < b->pool[y]->number;
}

/* a better than b by NSGA-II's crowded comparison. */
static int nsga_better(const batch_ctx *b, int x, int y) {
    if (b->rank[x] != b->rank[y]) return b->rank[x] < b->rank[y];
    if (b->crowd[x] != b->crowd[y]) return b->crowd[x] > b->crowd[y];
    return b->pool[x]->number < b->pool[y]->number;
}

/* Tournament of k distinct members of the pool (partial Fisher-Yates). */
static int tournament(const batch_ctx *b, pcg32 *rng, int k, int (*better)(const batch_ctx *, int, int)) {
    int n = b->n_pool;
    int *idx = bn_malloc((size_t)n * sizeof *idx);
    for (int i = 0; i < n; i++) idx[i] = i;
    if (k > n) k = n;
    int best = -1;
    for (int i = 0; i < k; i++) {
        int j = i + (int)pcg32_bounded(rng, (uint32_t)(n - i));
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
        if (best < 0 || better(b, idx[i], best)) best = idx[i];
    }
    free(idx);
    return best;
}

/* Evolution: a tournament of `sample` parents, the winner mutated. */
static void breed_evolution(const batch_ctx *b, pcg32 *rng, proposal *p) {
    const spec *s = b->s;
    space_config pc;
    int par = tournament(b, rng, s->sample, evo_better);
    space_decode(b->sp, s, &b->pool[par]->g, &pc);
    space_mutate(b->sp, s, rng, &b->pool[par]->g, &pc, s->mutation_prob, &p->g);
    snprintf(p->origin, sizeof p->origin, "mutate %d", b->pool[par]->number);
}

/* NSGA-II: two binary tournaments, uniform crossover with crossover_prob, then mutation. */
static void breed_nsga2(const batch_ctx *b, pcg32 *rng, proposal *p) {
    const spec *s = b->s;
    space_config pc;
    int x = tournament(b, rng, 2, nsga_better);
    int y = tournament(b, rng, 2, nsga_better);
    genome child;
    if (pcg32_double(rng) < s->crossover_prob) {
        space_crossover(b->sp, rng, &b->pool[x]->g, &b->pool[y]->g, &child);
        snprintf(p->origin, sizeof p->origin, "cross %d x %d", b->pool[x]->number, b->pool[y]->number);
    } else {
        child = b->pool[x]->g;
        snprintf(p->origin, sizeof p->origin, "mutate %d", b->pool[x]->number);
    }
    space_decode(b->sp, s, &child, &pc);
    space_mutate(b->sp, s, rng, &child, &pc, s->mutation_prob, &p->g);
}

/* The strategies, indexed by spec.strategy (spec_strategy_kind). */
static const struct {
    const char *name;          /* spec name, stored in the study */
    const char *aliases[3];    /* other spec names, NULL-terminated */
    int aging;                 /* parents: the newest `population` COMPLETE trials */
    int elitist;               /* parents: the best `population` by the crowded comparison */
    int uses_sample;           /* `sample` is its tournament size (at most `population`) */
    /* breeds p->g (and p->origin) from the parents; NULL: random search */
    void (*breed)(const batch_ctx *b, pcg32 *rng, proposal *p);
} strategies[] = {
    [STRAT_RANDOM] = {"random", {NULL}, 0, 0, 0, NULL},
    [STRAT_EVOLUTION] = {"evolution", {"regularized_evolution", "aging_evolution", NULL}, 1, 0, 1, breed_evolution},
    [STRAT_NSGA2] = {"nsga2", {"moea", NULL}, 0, 1, 0, breed_nsga2},
};
#define N_STRATEGIES ((int)(sizeof strategies / sizeof strategies[0]))

int strategy_find(const char *name) {
    for (int k = 0; k < N_STRATEGIES; k++) {
        if (!strcmp(name, strategies[k].name)) return k;
        for (int a = 0; strategies[k].aliases[a]; a++)
            if (!strcmp(name, strategies[k].aliases[a])) return k;
    }
    return -1;
}

const char *strategy_name(int k) { return k >= 0 && k < N_STRATEGIES ? strategies[k].name : "?"; }

void strategy_names(char *buf, size_t cap) {
    buf[0] = 0;
    for (int k = 0; k < N_STRATEGIES; k++)
        snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", k == 0 ? "" : k == N_STRATEGIES - 1 ? " or " : ", ",
                 strategies[k].name);
}

int strategy_uses_sample(int k) { return k >= 0 && k < N_STRATEGIES && strategies[k].uses_sample; }

static void propose_one(const batch_ctx *b, int number, proposal *p, int *found) {
    const spec *s = b->s;
    const space *sp = b->sp;
    pcg32 rng;
    *found = 0;
    if (strategies[s->strategy].breed && b->n_pool >= s->population) {
        rng_keyed(&rng, s->seed, (uint64_t)number, RNG_MUTATE);
        for (int t = 0; t < DEDUP_TRIES; t++) {
            strategies[s->strategy].breed(b, &rng, p);
            space_decode(sp, s, &p->g, &p->cfg);
            if (!seen(b, p->cfg.hash)) {
                *found = 1;
                return;
            }
        }
    }
    rng_keyed(&rng, s->seed, (uint64_t)number, RNG_SAMPLE);
    for (int t = 0; t < RANDOM_TRIES; t++) {
        space_sample(sp, s, &rng, &p->g);
        space_decode(sp, s, &p->g, &p->cfg);
        snprintf(p->origin, sizeof p->origin, "random");
        if (!seen(b, p->cfg.hash)) {
            *found = 1;
            return;
        }
    }
}

int strategy_ask(const spec *s, const space *sp, const history *h, int first, int max_count,
                 int want_valid, proposal *out, int *made) {
    BN_ASSERT(h->n == 0 || h->t[h->n - 1].number < first);
    batch_ctx b;
    memset(&b, 0, sizeof b);
    b.s = s;
    b.sp = sp;
    b.h = h;
    b.batch = out;
    int m = s->n_obj;
    if (strategies[s->strategy].breed) {
        /* Parent candidates: COMPLETE trials (aging: the newest `population`). */
        int n_complete = 0;
        for (int i = 0; i < h->n; i++) n_complete += h->t[i].state == TRIAL_COMPLETE;
        int skip = strategies[s->strategy].aging && n_complete > s->population
                       ? n_complete - s->population : 0;
        b.pool = bn_malloc((size_t)(n_complete ? n_complete : 1) * sizeof *b.pool);
        for (int i = 0; i < h->n; i++)
            if (h->t[i].state == TRIAL_COMPLETE) {
                if (skip > 0) skip--;
                else b.pool[b.n_pool++] = &h->t[i];
            }
        int n = b.n_pool;
        double *pts = bn_malloc((size_t)(n ? n : 1) * m * sizeof *pts);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++) pts[(size_t)i * m + j] = b.pool[i]->obj[j];
        b.rank = bn_calloc((size_t)(n ? n : 1), sizeof *b.rank);
        b.crowd = bn_calloc((size_t)(n ? n : 1), sizeof *b.crowd);
        pareto_rank(pts, n, m, b.rank);
        {
            /* Crowding distance per front. */
            int *idx = bn_malloc((size_t)(n ? n : 1) * sizeof *idx);
            double *d = bn_malloc((size_t)(n ? n : 1) * sizeof *d);
            for (int r = 0;; r++) {
                int k = 0;
                for (int i = 0; i < n; i++)
                    if (b.rank[i] == r) idx[k++] = i;
                if (k == 0) break;
                pareto_crowding(pts, m, idx, k, d);
                for (int q = 0; q < k; q++) b.crowd[idx[q]] = d[q];
            }
            free(idx);
            free(d);
        }
        if (strategies[s->strategy].elitist && n >= s->population) {
            /* Elitist survival of the best `population` by the crowded comparison. */
            /* Selection sort by the crowded comparison keeps it simple and stable. */
            int *order = bn_malloc((size_t)n * sizeof *order);
            for (int i = 0; i < n; i++) order[i] = i;
            for (int i = 0; i < s->population; i++) {
                int best = i;
                for (int j = i + 1; j < n; j++)
                    if (nsga_better(&b, order[j], order[best])) best = j;
                int t = order[i];
                order[i] = order[best];
                order[best] = t;
            }
            const hist_trial **np = bn_malloc((size_t)s->population * sizeof *np);
            int *nr = bn_malloc((size_t)s->population * sizeof *nr);
            double *nc = bn_malloc((size_t)s->population * sizeof *nc);
            for (int i = 0; i < s->population; i++) {
                np[i] = b.pool[order[i]];
                nr[i] = b.rank[order[i]];
                nc[i] = b.crowd[order[i]];
            }
            free(b.pool);
            free(b.rank);
            free(b.crowd);
            b.pool = np;
            b.rank = nr;
            b.crowd = nc;
            b.n_pool = s->population;
            free(order);
        }
        free(pts);
    }
    int rc = BN_OK;
    *made = 0;
    int valid = 0;
    for (int i = 0; i < max_count && valid < want_valid; i++) {
        int found;
        b.n_batch = i;
        propose_one(&b, first + i, &out[i], &found);
        if (!found) {
            rc = bn_error(BN_EARG, "search space exhausted: no new configuration for trial %d "
                                   "after %d draws", first + i, DEDUP_TRIES + RANDOM_TRIES);
            break;
        }
        (*made)++;
        valid += out[i].cfg.valid;
    }
    free(b.pool);
    free(b.rank);
    free(b.crowd);
    return rc;
}
