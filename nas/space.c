/* Search space: gene layout, sampling, mutation, crossover and decoding. */
#include "nas/space.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dmath.h"
#include "engine/err.h"
#include "engine/recipe.h"
#include "engine/train.h"

/* Default value of a knob that the space does not declare. */
static double knob_default(spec_knob k) {
    switch (k) {
    case KNOB_CONV_BLOCKS: return 0;
    case KNOB_CONV_CHANNELS: return 64;
    case KNOB_CONV_POOL: return 1;
    case KNOB_FC_LAYERS: return 1;
    case KNOB_FC_WIDTH: return 256;
    case KNOB_LOSS: return 0;
    case KNOB_MHL_B: return 128;
    case KNOB_FLIP_RATE: return 0;
    case KNOB_EPOCHS: return 1;
    case KNOB_LR: return 1e-3;
    case KNOB_BATCH: return 256;
    case KNOB_OPTIMIZER: return 0; /* adam */
    case KNOB_BOP_GAMMA: return (double)train_recipe_default().bop_gamma;
    case KNOB_BOP_TAU: return (double)train_recipe_default().bop_tau;
    case KNOB_MOMENTUM_FORMAT: {
        fpfmt F = fpfmt_binary32();
        return spec_format_code(&F);
    }
    default: return 0;
    }
}

int space_knob_per_item(spec_knob k) {
    return k == KNOB_CONV_CHANNELS || k == KNOB_CONV_POOL || k == KNOB_FC_WIDTH;
}

static double dim_max(const spec_dim *d) {
    if (d->type == DIM_CHOICE || d->type == DIM_FIXED) {
        double m = d->num[0];
        for (int i = 1; i < d->n; i++)
            if (d->num[i] > m) m = d->num[i];
        return m;
    }
    return d->high;
}

/* Number of items a per-item knob needs genes for. */
static int items_of(const spec *s, spec_knob k) {
    spec_knob count = k == KNOB_FC_WIDTH ? KNOB_FC_LAYERS : KNOB_CONV_BLOCKS;
    int d = s->knob_dim[count];
    return d >= 0 ? (int)dim_max(&s->dims[d]) : (int)knob_default(count);
}

void space_init(space *sp, const spec *s) {
    memset(sp, 0, sizeof *sp);
    for (int d = 0; d < s->n_dims; d++) {
        spec_knob k = s->dims[d].knob;
        int n = space_knob_per_item(k) ? items_of(s, k) : 1;
        for (int i = 0; i < n; i++) {
            BN_ASSERT(sp->n_genes < SPACE_MAX_GENES);
            sp->dim[sp->n_genes] = d;
            sp->item[sp->n_genes] = space_knob_per_item(k) ? i : -1;
            sp->n_genes++;
        }
    }
}

static double draw_gene(const spec_dim *d, pcg32 *rng) {
    switch (d->type) {
    case DIM_FIXED: return 0;
    case DIM_CHOICE: return (double)pcg32_bounded(rng, (uint32_t)d->n);
    case DIM_INT: return d->low + (double)pcg32_bounded(rng, (uint32_t)(d->high - d->low + 1));
    case DIM_FLOAT: return d->low + (d->high - d->low) * pcg32_double(rng);
    case DIM_LOG: return dmath_exp(dmath_log(d->low) + (dmath_log(d->high) - dmath_log(d->low)) * pcg32_double(rng));
    }
    return 0;
}

/* Number of distinct values of a dimension (0 = continuous). */
static double dim_count(const spec_dim *d) {
    switch (d->type) {
    case DIM_FIXED: return 1;
    case DIM_CHOICE: return d->n;
    case DIM_INT: return d->high - d->low + 1;
    default: return d->low == d->high ? 1 : 0;
    }
}

/* A redrawn value that differs from old when the dimension has another value. */
static double redraw_gene(const spec_dim *d, pcg32 *rng, double old) {
    double cnt = dim_count(d);
    if (cnt == 1) return old;
    if (d->type == DIM_CHOICE || d->type == DIM_INT) {
        /* Uniform over the other values. */
        double base = d->type == DIM_CHOICE ? 0 : d->low;
        double r = (double)pcg32_bounded(rng, (uint32_t)(cnt - 1));
        double v = base + r;
        if (v >= old) v += 1;
        return v;
    }
    return draw_gene(d, rng);
}

void space_sample(const space *sp, const spec *s, pcg32 *rng, genome *g) {
    memset(g, 0, sizeof *g);
    g->n = sp->n_genes;
    for (int i = 0; i < sp->n_genes; i++) g->g[i] = draw_gene(&s->dims[sp->dim[i]], rng);
}

void space_mutate(const space *sp, const spec *s, pcg32 *rng, const genome *parent,
                  const space_config *cfg, double p, genome *child) {
    *child = *parent;
    int changed = 0, n_mutable = 0;
    for (int i = 0; i < sp->n_genes; i++) {
        const spec_dim *d = &s->dims[sp->dim[i]];
        if (dim_count(d) == 1) continue;
        if (cfg->active[i]) n_mutable++;
        if (pcg32_double(rng) < p) {
            child->g[i] = redraw_gene(d, rng, parent->g[i]);
            if (cfg->active[i] && child->g[i] != parent->g[i]) changed = 1;
        }
    }
    if (!changed && n_mutable > 0) {
        int pick = (int)pcg32_bounded(rng, (uint32_t)n_mutable);
        for (int i = 0; i < sp->n_genes; i++) {
            const spec_dim *d = &s->dims[sp->dim[i]];
            if (dim_count(d) == 1 || !cfg->active[i]) continue;
            if (pick-- == 0) {
                child->g[i] = redraw_gene(d, rng, parent->g[i]);
                break;
            }
        }
    }
}

void space_crossover(const space *sp, pcg32 *rng, const genome *a, const genome *b, genome *child) {
    *child = *a;
    for (int i = 0; i < sp->n_genes; i++)
        if (pcg32_next(rng) & 1u) child->g[i] = b->g[i];
}

/* Value of dimension d for item `item` (-1: not a per-item knob), marking the gene active. */
static double dim_value(const space *sp, const spec *s, const genome *g, int d, int item, space_config *cfg) {
    for (int i = 0; i < sp->n_genes; i++) {
        if (sp->dim[i] != d || sp->item[i] != item) continue;
        cfg->active[i] = 1;
        const spec_dim *D = &s->dims[d];
        if (D->type == DIM_FIXED) return D->num[0];
        if (D->type == DIM_CHOICE) {
            int idx = (int)g->g[i];
            if (idx < 0) idx = 0;
            if (idx >= D->n) idx = D->n - 1;
            return D->num[idx];
        }
        return g->g[i];
    }
    BN_ASSERT(0 && "gene missing for knob");
    return 0;
}

/* Value of knob k for item `item` (or -1), marking the gene active. */
static double knob_value(const space *sp, const spec *s, const genome *g, spec_knob k, int item,
                         space_config *cfg) {
    int d = s->knob_dim[k];
    return d < 0 ? knob_default(k) : dim_value(sp, s, g, d, space_knob_per_item(k) ? item : -1, cfg);
}

/* The training recipe of a decoded configuration: the table's defaults, then
   every knob named like a recipe key set through the table (loss, mhl_b,
   epochs, lr, batch, optimizer, bop_gamma, bop_tau), flip_rate as STE flip
   training at p01 = p10 = rate, the momentum format's four fields; then the
   space's recipe-key dimensions (spec_dim.recipe), each appended to the
   canonical text as "|key=value" unless at its default (so specs without
   them keep their hashes). The trial adds its seed. */
static train_recipe space_recipe(const space *sp, const spec *s, const genome *g, space_config *cfg) {
    train_recipe r = train_recipe_default();
    const struct { spec_knob k; double v; } set[] = {
        {KNOB_LOSS, cfg->loss},         {KNOB_MHL_B, cfg->mhl_b},         {KNOB_EPOCHS, cfg->epochs},
        {KNOB_LR, cfg->lr},             {KNOB_BATCH, cfg->batch},         {KNOB_OPTIMIZER, cfg->optimizer},
        {KNOB_BOP_GAMMA, cfg->bop_gamma}, {KNOB_BOP_TAU, cfg->bop_tau},
    };
    for (size_t i = 0; i < sizeof set / sizeof set[0]; i++) {
        const recipe_key *k = recipe_find(spec_knob_name(set[i].k));
        BN_ASSERT(k);
        if (recipe_set_number(&r, k, set[i].v) && cfg->valid) { /* spec ranges lie inside the table's, */
            cfg->valid = 0;                                       /* a damaged database's genome may not */
            snprintf(cfg->reason, sizeof cfg->reason, "%s", bn_errmsg());
        }
    }
    if (cfg->flip_rate > 0) {
        r.flip = FLIP_STE;
        r.p01 = r.p10 = (float)cfg->flip_rate;
    }
    r.mom_e = cfg->momentum.e, r.mom_f = cfg->momentum.f;
    r.mom_bias = cfg->momentum.bias, r.mom_subnormals = cfg->momentum.subnormals;
    for (int d = 0; d < s->n_dims; d++) {
        if (!s->dims[d].recipe) continue;
        const recipe_key *k = &recipe_keys[s->dims[d].recipe - 1];
        double v = dim_value(sp, s, g, d, -1, cfg);
        if (recipe_set_number(&r, k, v) && cfg->valid) { /* a genome from a damaged database */
            cfg->valid = 0;
            snprintf(cfg->reason, sizeof cfg->reason, "%s", bn_errmsg());
        }
        if (v == k->def) continue;
        size_t used = strlen(cfg->canon);
        if (k->type == RECIPE_WORD && v >= 0 && v < RECIPE_MAX_WORDS && k->words[(int)v])
            snprintf(cfg->canon + used, sizeof cfg->canon - used, "|%s=%s", k->name, k->words[(int)v]);
        else
            snprintf(cfg->canon + used, sizeof cfg->canon - used, "|%s=%.6g", k->name, v);
    }
    return r;
}

/* Packed bytes of one neuron's weights: fan_in bits in whole 32-bit words (net_packed_bytes). */
static size_t words_bytes(long fan_in) { return (size_t)((fan_in + 31) / 32) * 4; }

void space_decode(const space *sp, const spec *s, const genome *g, space_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    BN_ASSERT(g->n == sp->n_genes);
    int blocks = (int)knob_value(sp, s, g, KNOB_CONV_BLOCKS, -1, cfg);
    int layers = (int)knob_value(sp, s, g, KNOB_FC_LAYERS, -1, cfg);
    int h = s->in_h, w = s->in_w, c = s->in_c;
    size_t bytes = 0;
    double macs = 0;
    char *t = cfg->topology;
    size_t cap = sizeof cfg->topology, len = 0;
    cfg->valid = 1;
    for (int b = 0; b < blocks; b++) {
        int oc = (int)knob_value(sp, s, g, KNOB_CONV_CHANNELS, b, cfg);
        int pool = (int)knob_value(sp, s, g, KNOB_CONV_POOL, b, cfg);
        macs += (double)h * w * oc * 9.0 * c;
        bytes += (size_t)oc * (words_bytes(9L * c) + 4);
        len += (size_t)snprintf(t + len, cap - len, "%sC%d%s", len ? "-" : "", oc, pool ? "-MP2" : "");
        if (pool) {
            h /= 2, w /= 2;
            if ((h < 1 || w < 1) && cfg->valid) {
                cfg->valid = 0;
                snprintf(cfg->reason, sizeof cfg->reason, "pool %d leaves no pixels of the %dx%d input",
                         b + 1, s->in_h, s->in_w);
            }
        }
        c = oc;
    }
    long flat = (long)h * w * c;
    for (int l = 0; l < layers; l++) {
        int units = (int)knob_value(sp, s, g, KNOB_FC_WIDTH, l, cfg);
        macs += (double)flat * units;
        bytes += (size_t)units * (words_bytes(flat) + 4);
        len += (size_t)snprintf(t + len, cap - len, "%sFC%d", len ? "-" : "", units);
        flat = units;
    }
    macs += (double)flat * s->classes;
    bytes += (size_t)s->classes * words_bytes(flat) + 4;
    if (len >= cap) BN_ASSERT(0 && "topology string overflow");
    if (blocks + layers == 0 && cfg->valid) {
        cfg->valid = 0;
        snprintf(cfg->reason, sizeof cfg->reason, "no hidden layer");
    }
    cfg->loss = (int)knob_value(sp, s, g, KNOB_LOSS, -1, cfg);
    cfg->mhl_b = cfg->loss == 1 ? knob_value(sp, s, g, KNOB_MHL_B, -1, cfg) : knob_default(KNOB_MHL_B);
    cfg->flip_rate = knob_value(sp, s, g, KNOB_FLIP_RATE, -1, cfg);
    cfg->epochs = (int)knob_value(sp, s, g, KNOB_EPOCHS, -1, cfg);
    cfg->lr = knob_value(sp, s, g, KNOB_LR, -1, cfg);
    cfg->batch = (int)knob_value(sp, s, g, KNOB_BATCH, -1, cfg);
    /* Bop's knobs are read (and their genes active) only under Bop. */
    cfg->optimizer = (int)knob_value(sp, s, g, KNOB_OPTIMIZER, -1, cfg);
    int bop = cfg->optimizer == 1;
    cfg->bop_gamma = bop ? knob_value(sp, s, g, KNOB_BOP_GAMMA, -1, cfg) : knob_default(KNOB_BOP_GAMMA);
    cfg->bop_tau = bop ? knob_value(sp, s, g, KNOB_BOP_TAU, -1, cfg) : knob_default(KNOB_BOP_TAU);
    cfg->momentum = spec_format_of_code(bop ? knob_value(sp, s, g, KNOB_MOMENTUM_FORMAT, -1, cfg)
                                            : knob_default(KNOB_MOMENTUM_FORMAT));
    cfg->model_bytes = bytes;
    cfg->macs = macs;
    /* Real values enter the canonical text with 6 significant digits: closer
       values are the same configuration. */
    snprintf(cfg->canon, sizeof cfg->canon, "%s|%s|b=%.6g|flip=%.6g|epochs=%d|lr=%.6g|batch=%d",
             cfg->topology, cfg->loss ? "mhl" : "ce", cfg->loss ? cfg->mhl_b : 0.0, cfg->flip_rate,
             cfg->epochs, cfg->lr, cfg->batch);
    if (bop) {
        /* Adam's text is the one of configurations before the optimizer knob,
           so older studies keep their hashes. The format by its canonical
           name: fp32 and e8m23b127 are one configuration. */
        char fmt[32];
        size_t used = strlen(cfg->canon);
        fpfmt_name(&cfg->momentum, fmt, sizeof fmt);
        snprintf(cfg->canon + used, sizeof cfg->canon - used, "|opt=bop|gamma=%.6g|tau=%.6g|mom=%s",
                 cfg->bop_gamma, cfg->bop_tau, fmt);
    }
    cfg->recipe = space_recipe(sp, s, g, cfg);
    cfg->hash = spec_fnv64(SPEC_FNV_INIT, cfg->canon, strlen(cfg->canon));
    if (cfg->valid && s->max_model_bytes > 0 && (double)bytes > s->max_model_bytes) {
        cfg->valid = 0;
        snprintf(cfg->reason, sizeof cfg->reason, "model_bytes %zu exceeds max_model_bytes %.0f",
                 bytes, s->max_model_bytes);
    }
    if (cfg->valid && s->max_macs > 0 && macs > s->max_macs) {
        cfg->valid = 0;
        snprintf(cfg->reason, sizeof cfg->reason, "macs %.0f exceeds max_macs %.0f", macs, s->max_macs);
    }
    /* Training memory from the plan of the network (nothing allocated): a
       configuration that would exhaust the machine fails here, recorded,
       instead of killing the process (and every resume after it). */
    arch a;
    net plan;
    if (cfg->valid && arch_parse(&a, cfg->topology) == BN_OK &&
        net_plan(&plan, &a, s->in_c, s->in_h, s->in_w, s->classes) == BN_OK) {
        double mem = (double)train_memory_bytes(&plan, &cfg->recipe);
        if (mem > s->max_host_memory) {
            cfg->valid = 0;
            snprintf(cfg->reason, sizeof cfg->reason, "training memory %.0f bytes exceeds max_host_memory %.0f",
                     mem, s->max_host_memory);
        }
    }
}

void space_genome_format(const genome *g, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < g->n && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%.17g", i ? "," : "", g->g[i]);
    BN_ASSERT(len < cap);
}

int space_genome_parse(genome *g, const char *text) {
    memset(g, 0, sizeof *g);
    const char *p = text;
    if (!*p) return BN_OK;
    for (;;) {
        char *end;
        if (g->n >= SPACE_MAX_GENES) return bn_error(BN_EFORMAT, "genome '%.60s': too many genes", text);
        g->g[g->n++] = strtod(p, &end);
        if (end == p) return bn_error(BN_EFORMAT, "genome '%.60s': not a number at '%.10s'", text, p);
        if (*end == 0) return BN_OK;
        if (*end != ',') return bn_error(BN_EFORMAT, "genome '%.60s': expected ',' at '%.10s'", text, end);
        p = end + 1;
    }
}
