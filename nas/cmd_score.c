/*
** bnas score SPEC [KEY=VALUE ...] [--genome G] [--trial N] [--model FILE]:
** trains and scores one configuration with the study's own trial function
** (nas/trial.c: the spec's data split, training and evaluators) and prints
** what the search would record for it: the canonical configuration, the
** topology, every metric ("name value", full precision), then the trial's wall
** time (seconds) and CPU time (cpu_seconds), the data loading excluded as in a study.
**
** The configuration is either a genome of the spec (--genome, as the database and
** `bnas trials --csv` hold it) or one KEY=VALUE per dimension, VALUE written as
** in the spec file (a scalar, or a list for the per-item knobs conv_channels,
** conv_pool and fc_width: one value per block or layer). A KEY=VALUE replaces
** the spec's dimension (any value of the key's range, not only the spec's
** choices) or adds a dimension the spec leaves at its default, so a hand-made
** network can be scored beside a search's finds; every dimension the
** configuration uses and the spec searches must be given. The training seed is
** that of trial N of the study (default 0): with the trial's genome and number
** the metrics are those the search stored for it. Peers (an Optuna driver)
** call this as their objective function.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/err.h"
#include "engine/parallel.h"
#include "engine/recipe.h"
#include "nas/commands.h"
#include "nas/search.h"
#include "nas/space.h"
#include "nas/spec.h"
#include "nas/trial.h"

static const char score_usage[] =
    "usage: bnas score SPEC [KEY=VALUE ...] [--genome G] [--trial N] [--model FILE] [--no-train]\n"
    "Trains one configuration of the spec's study with its data, recipe and evaluators and\n"
    "prints the configuration, the topology, every metric (name value per line), then the\n"
    "wall time (seconds) and the CPU time (cpu_seconds).\n"
    "  KEY=VALUE        a dimension's value as the spec file writes it; a list for per-item\n"
    "                   knobs, e.g. conv_blocks=2 conv_channels=[64,64] conv_pool=[1,1]\n"
    "                   fc_layers=1 fc_width=[2048] loss=mhl mhl_b=128 lr=0.001\n"
    "                   (any value in the key's range; every searched dimension must be given)\n"
    "  --genome G       instead: a genome of the spec (the last column of bnas trials --csv)\n"
    "  --trial N        train with the seed of trial N of the study (default 0)\n"
    "  --model FILE     also save the trained model (a .bnm file, as bnas export writes)\n"
    "  --no-train       only decode: config, topology, model_bytes, macs, valid (0: beyond the\n"
    "                   spec's constraints, with the reason); exit 0 either way\n"
    "Exit codes: 0 success, 1 runtime error (the trial failed or is invalid), 2 usage error.\n";

/* The dimension of s named key, appended (at its default) if s has none;
   -1 if key is no dimension a spec may name. */
static int find_dim(spec *s, const char *key) {
    for (int d = 0; d < s->n_dims; d++)
        if (!strcmp(spec_dim_name(s, d), key)) return d;
    spec_dim D;
    memset(&D, 0, sizeof D);
    int k;
    for (k = 0; k < KNOB_COUNT; k++)
        if (!strcmp(key, spec_knob_name((spec_knob)k))) break;
    const recipe_key *rk = k == KNOB_COUNT ? recipe_find(key) : NULL;
    if (k == KNOB_COUNT && !(rk && rk->spec)) return -1;
    if (s->n_dims >= SPEC_MAX_DIMS) return -1;
    D.knob = (spec_knob)k;
    D.recipe = rk ? (int)(rk - recipe_keys) + 1 : 0;
    D.type = DIM_FIXED;
    D.n = 1;
    if (!rk) s->knob_dim[k] = s->n_dims;
    s->dims[s->n_dims] = D;
    return s->n_dims++;
}

/* Sets dimension d of s to the values of argument arg ("KEY=VALUE"): one
   value fixes it; a list of a per-item knob becomes a choice whose gene of
   item i is i (set in given_n[d]: the number of values). */
static int set_dim(spec *s, int d, const char *arg, const char *value, int *given_n) {
    double v[SPEC_MAX_CHOICES];
    int n = spec_dim_values(s, d, arg, value, v);
    if (n < 0) return BN_ESPEC;
    spec_dim *D = &s->dims[d];
    if (n > 1 && !space_knob_per_item(D->knob))
        return bn_error(BN_ESPEC, "%s: %s takes one value, found a list of %d", arg, spec_dim_name(s, d), n);
    D->type = n > 1 ? DIM_CHOICE : DIM_FIXED;
    D->n = n;
    memcpy(D->num, v, (size_t)n * sizeof *v);
    given_n[d] = n;
    return BN_OK;
}

/* The genome of the configuration given as KEY=VALUE arguments (s already
   holds them): choice genes of per-item lists index their item, every other
   gene is 0 (fixed). Fails naming a searched dimension the configuration uses
   but the arguments do not give, or a list whose length is not the number of
   blocks or layers. */
static int config_genome(const space *sp, const spec *s, const int *given_n, genome *g,
                         space_config *cfg) {
    memset(g, 0, sizeof *g);
    g->n = sp->n_genes;
    for (int i = 0; i < sp->n_genes; i++) {
        const spec_dim *D = &s->dims[sp->dim[i]];
        g->g[i] = D->type == DIM_CHOICE && given_n[sp->dim[i]] ? sp->item[i] : D->type == DIM_INT || D->type == DIM_FLOAT || D->type == DIM_LOG ? D->low : 0;
    }
    space_decode(sp, s, g, cfg);
    for (int d = 0; d < s->n_dims; d++) {
        int used = 0;
        for (int i = 0; i < sp->n_genes; i++) used += sp->dim[i] == d && cfg->active[i];
        if (!used) continue;
        if (!given_n[d] && s->dims[d].type != DIM_FIXED)
            return bn_error(BN_ESPEC, "%s: the spec searches %s and the configuration uses it: give %s=VALUE",
                            s->path, spec_dim_name(s, d), spec_dim_name(s, d));
        if (given_n[d] > 1 && given_n[d] != used)
            return bn_error(BN_ESPEC, "%s: %d values for %d %s", spec_dim_name(s, d), given_n[d], used,
                            s->dims[d].knob == KNOB_FC_WIDTH ? "dense layers" : "conv blocks");
    }
    return BN_OK;
}

static int write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return bn_error(BN_EIO, "%s: cannot write", path);
    int ok = fwrite(p, 1, n, f) == n;
    ok &= fclose(f) == 0;
    return ok ? BN_OK : bn_error(BN_EIO, "%s: write failed", path);
}

int cmd_score(int argc, char **argv) {
    const char *path = NULL, *genome_text = NULL, *model_path = NULL;
    int number = 0, no_train = 0;
    const char *args[SPEC_MAX_DIMS * 2];
    int n_args = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(score_usage, stdout); return 0; }
        if (!strcmp(a, "--genome") && v) genome_text = v, i++;
        else if (!strcmp(a, "--no-train")) no_train = 1;
        else if (!strcmp(a, "--model") && v) model_path = v, i++;
        else if (!strcmp(a, "--trial") && v) {
            char *end;
            long t = strtol(v, &end, 10);
            if (*end || end == v || t < 0 || t > 1000000000) {
                fprintf(stderr, "bnas score: --trial takes a trial number >= 0, found '%s'\n", v);
                return 2;
            }
            number = (int)t, i++;
        } else if (a[0] != '-' && !path) path = a;
        else if (a[0] != '-' && strchr(a, '=') && n_args < (int)(sizeof args / sizeof *args)) args[n_args++] = a;
        else {
            fprintf(stderr, "bnas score: unexpected argument '%s'\n%s", a, score_usage);
            return 2;
        }
    }
    if (!path) { fputs(score_usage, stderr); return 2; }
    if (genome_text && n_args) {
        fprintf(stderr, "bnas score: give either --genome or KEY=VALUE arguments, not both\n");
        return 2;
    }
    spec s;
    if (spec_load(&s, path)) {
        fprintf(stderr, "bnas: %s\n", bn_errmsg());
        return 2;
    }
    int rc = BN_OK, given_n[SPEC_MAX_DIMS] = {0};
    for (int i = 0; i < n_args && !rc; i++) {
        char key[64];
        size_t kl = (size_t)(strchr(args[i], '=') - args[i]);
        snprintf(key, sizeof key, "%.*s", (int)(kl < sizeof key ? kl : sizeof key - 1), args[i]);
        int d = find_dim(&s, key);
        if (d < 0) rc = bn_error(BN_ESPEC, "%s: unknown dimension '%s' (a spec file's search_space keys, README)", args[i], key);
        else rc = set_dim(&s, d, args[i], args[i] + kl + 1, given_n);
    }
    space sp;
    space_init(&sp, &s);
    genome g;
    space_config cfg;
    if (!rc && genome_text) {
        rc = space_genome_parse(&g, genome_text);
        if (!rc && g.n != sp.n_genes)
            rc = bn_error(BN_ESPEC, "genome '%.60s' has %d genes, the spec's space %d", genome_text, g.n, sp.n_genes);
        if (!rc) space_decode(&sp, &s, &g, &cfg);
    } else if (!rc) {
        rc = config_genome(&sp, &s, given_n, &g, &cfg);
    }
    if (rc) {
        fprintf(stderr, "bnas score: %s\n", bn_errmsg());
        spec_free(&s);
        return 2;
    }
    printf("config %s\ntopology %s\n", cfg.canon, cfg.topology);
    if (no_train) {
        printf("model_bytes %zu\nmacs %.17g\nvalid %d\n", cfg.model_bytes, cfg.macs, cfg.valid);
        if (!cfg.valid) printf("reason %s\n", cfg.reason);
        spec_free(&s);
        return 0;
    }
    fflush(stdout);
    if (!cfg.valid) {
        fprintf(stderr, "bnas score: invalid configuration: %s\n", cfg.reason);
        spec_free(&s);
        return 1;
    }
    void *env = NULL;
    trial_fn fn = NULL;
    trial_result res;
    memset(&res, 0, sizeof res);
    if ((rc = trial_env_create(&env, &fn, &s))) fprintf(stderr, "bnas: %s\n", bn_errmsg());
    double w0 = par_seconds(), c0 = par_cpu_seconds(); /* the trial's own time, without loading the data */
    if (!rc && (rc = fn(env, &s, &cfg, number, search_trial_seed(s.seed, number), &res)))
        fprintf(stderr, "bnas score: the trial failed: %s\n", res.fail_reason);
    double wall = par_seconds() - w0, cpu = par_cpu_seconds() - c0;
    for (int i = 0; i < res.metrics.n && !rc; i++) printf("%s %.17g\n", res.metrics.m[i].name, res.metrics.m[i].value);
    if (!rc) printf("seconds %.3f\ncpu_seconds %.3f\n", wall, cpu);
    if (!rc && model_path) {
        if (!res.model || strcmp(res.model_format, "BNASMDL1"))
            rc = bn_error(BN_EARG, "--model: data '%s' trains no model to save", s.data);
        else rc = write_file(model_path, res.model, res.model_size);
        if (rc) fprintf(stderr, "bnas score: %s\n", bn_errmsg());
    }
    trial_result_free(&res);
    trial_env_free(env);
    spec_free(&s);
    return rc ? 1 : 0;
}
