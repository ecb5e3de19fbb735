/*
** Search strategies behind one ask/tell interface.
**
** A strategy keeps no state of its own: `ask` is a pure function of the
** committed history (what `tell` appended), the spec and the trial numbers, and
** every random draw comes from a stream keyed by (study seed, trial number,
** RNG_SAMPLE or RNG_MUTATE). So a resumed search proposes exactly what an
** uninterrupted one would, whatever the number of threads.
**
**   random     every gene uniform.
**   evolution  regularized (aging) evolution (Real et al. 2019): the population
**              is the `population` most recent COMPLETE trials; a tournament of
**              `sample` members picks the parent with the best non-dominated
**              rank within the population (ties: larger crowding distance, then
**              first objective, then the older trial), which for one objective
**              is plain aging evolution (Syne Tune's MOREA ranks the same way);
**              the child is the parent mutated (per-gene `mutation_prob`, at
**              least one active gene). Random until `population` trials are
**              COMPLETE.
**   nsga2      NSGA-II (Deb et al. 2002) with elitist survival over all COMPLETE
**              trials: the parents are the best `population` by (non-dominated
**              rank, crowding distance); children come from binary tournaments,
**              uniform crossover (`crossover_prob`) and mutation. Random until
**              `population` trials are COMPLETE.
**
** Duplicates: a proposal whose canonical hash matches any trial of the history
** (in any state) or an earlier proposal of the same batch is redrawn from the
** same keyed stream (up to 200 times, then random sampling is tried up to 2000
** times). A proposal that breaks a hard constraint is returned as invalid; the
** search records it as an INVALID trial without training it.
*/
#ifndef BNAS_STRATEGY_H
#define BNAS_STRATEGY_H

#include <stddef.h>
#include <stdint.h>

#include "nas/space.h"
#include "nas/spec.h"

/* Trial states as stored. */
typedef enum {
    TRIAL_WAITING = 0,  /* proposed, not started */
    TRIAL_RUNNING = 1,  /* being trained */
    TRIAL_COMPLETE = 2, /* trained and evaluated */
    TRIAL_FAIL = 3,     /* training or evaluation failed (reason stored) */
    TRIAL_INVALID = 4,  /* rejected by a hard constraint, never trained */
} trial_state;

const char *trial_state_name(int state);

/* One committed trial as the strategies see it. */
typedef struct {
    int number;                   /* trial number (0-based, dense) */
    int state;                    /* trial_state */
    genome g;                     /* its genome */
    uint64_t hash;                /* canonical configuration hash */
    double obj[SPEC_MAX_OBJ];     /* objectives, minimisation form (COMPLETE only) */
} hist_trial;

/* The committed history, in trial-number order. */
typedef struct {
    int n, cap;                   /* used and allocated entries */
    hist_trial *t;                /* (cap) */
} history;

void history_init(history *h);
void history_free(history *h);

/* tell: appends a committed trial (numbers must increase). */
void history_add(history *h, const hist_trial *t);

/* 1 if a trial with this configuration hash is in the history. */
int history_has_hash(const history *h, uint64_t hash);

/* Objective value in minimisation form: maximised objectives are negated. */
double strategy_min_form(const spec_objective *o, double value);

/* The strategy table (nas/strategy.c): the index of the strategy a spec
   names (its name or an alias: "evolution", "aging_evolution", ...), or -1;
   the name of index k (stored in the study); the names as "a, b or c" for
   messages; 1 if strategy k takes `sample` as its tournament size. */
int strategy_find(const char *name);
const char *strategy_name(int k);
void strategy_names(char *buf, size_t cap);
int strategy_uses_sample(int k);

/* One proposal. */
typedef struct {
    genome g;            /* the genome */
    space_config cfg;    /* its decoded configuration (cfg.valid: passes hard constraints) */
    char origin[64];     /* "random", "mutate 12", "cross 3x7", ... */
} proposal;

/* ask: proposes trials first, first+1, ... from the history h (which must
   hold only trials numbered below first) until want_valid proposals pass the
   hard constraints or max_count proposals were made; out has room for
   max_count. *made is the number of proposals made. Returns BN_OK, or BN_EARG
   when no new configuration could be found (the space is exhausted). */
int strategy_ask(const spec *s, const space *sp, const history *h, int first, int max_count,
                 int want_valid, proposal *out, int *made);

#endif /* BNAS_STRATEGY_H */
