/*
** Spec files: YAML (libfyaml) -> struct spec, with every mistake located.
**
** The parser walks the document tree by hand. Each value is checked where it
** is read, and a mistake is appended to a list as "FILE:LINE:COL: key.path:
** message" instead of stopping, so one run of `bnas run` shows all of them.
** libfyaml gives marks for scalar tokens only; a mapping or sequence is located
** at its key.
*/
#include "nas/spec.h"

#include <errno.h>
#include <libfyaml.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/arch.h"
#include "engine/data.h"
#include "engine/err.h"
#include "engine/recipe.h"
#include "nas/strategy.h"
#include "evaluators/evaluator.h"

/* ---------------------------------------------------------------------------
** Parsing context and error list.
*/

/* snprintf for key paths and file names: silently truncates (no format-truncation warning). */
static void pathf(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pathf(char *out, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, cap, fmt, ap);
    va_end(ap);
}

#define PERR_MAX 24 /* mistakes kept for the message */

/* One mistake. */
typedef struct {
    int file;           /* 0: the spec, 1: the search space file */
    int line, col;      /* 1-based location */
    char text[240];     /* "key.path: message" */
} perr_entry;

typedef struct {
    spec *s;                    /* the spec being filled */
    const char *file;           /* file named in messages */
    int in_space;               /* 1 while parsing the search space file */
    int have_split_seed;        /* data.split_seed was given */
    perr_entry err[PERR_MAX];   /* mistakes, in the order found */
    int n_err;                  /* mistakes found (may exceed PERR_MAX) */
} pctx;

/* A location in the current file (1-based; 0 = unknown). */
typedef struct {
    int line, col;
} ploc;

static void perr(pctx *c, ploc at, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void perr(pctx *c, ploc at, const char *path, const char *fmt, ...) {
    if (c->n_err >= PERR_MAX) {
        c->n_err++;
        return;
    }
    perr_entry *e = &c->err[c->n_err++];
    char text[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    e->file = c->in_space;
    e->line = at.line;
    e->col = at.col;
    pathf(e->text, sizeof e->text, "%.60s: %s", path, text);
}

static int cmp_perr(const void *a, const void *b) {
    const perr_entry *x = a, *y = b;
    if (x->file != y->file) return x->file - y->file;
    if (x->line != y->line) return x->line - y->line;
    return x->col - y->col;
}

/* All mistakes, sorted by file and position, one per line, into a BN_ESPEC error. */
static int perr_report(pctx *c, const char *spec_file, const char *space_file) {
    int n = c->n_err < PERR_MAX ? c->n_err : PERR_MAX;
    /* Stable: insertion sort keeps the order of mistakes found at one place. */
    for (int i = 1; i < n; i++) {
        perr_entry t = c->err[i];
        int j = i;
        while (j > 0 && cmp_perr(&c->err[j - 1], &t) > 0) c->err[j] = c->err[j - 1], j--;
        c->err[j] = t;
    }
    char msg[1000];
    size_t len = 0;
    msg[0] = 0;
    for (int i = 0; i < n && len + 1 < sizeof msg; i++) {
        const perr_entry *e = &c->err[i];
        int w = snprintf(msg + len, sizeof msg - len, "%s%s:%d:%d: %s", i ? "\n" : "",
                         e->file ? space_file : spec_file, e->line, e->col, e->text);
        if (w < 0) break;
        len += (size_t)w;
    }
    if (len >= sizeof msg) len = sizeof msg - 1;
    if (c->n_err > 1 && len + 40 < sizeof msg)
        snprintf(msg + len, sizeof msg - len, "\n(%d mistakes)", c->n_err);
    return bn_error(BN_ESPEC, "%s", msg);
}

/* Location of a node: its scalar token's start, else the fallback. */
static ploc node_loc(struct fy_node *n, ploc fallback) {
    if (n && fy_node_get_type(n) == FYNT_SCALAR) {
        struct fy_token *t = fy_node_get_scalar_token(n);
        const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
        if (m) return (ploc){m->line + 1, m->column + 1};
    }
    return fallback;
}

static const char *type_name(struct fy_node *n) {
    if (!n) return "nothing";
    switch (fy_node_get_type(n)) {
    case FYNT_SCALAR: return "a scalar";
    case FYNT_SEQUENCE: return "a list";
    case FYNT_MAPPING: return "a mapping";
    }
    return "?";
}

/* Scalar text of n, NUL-terminated into buf; 0 if n is not a scalar. */
static int scalar_text(struct fy_node *n, char *buf, size_t cap) {
    if (!n || fy_node_get_type(n) != FYNT_SCALAR) return 0;
    size_t len = 0;
    const char *p = fy_node_get_scalar(n, &len);
    if (!p) return 0;
    if (len >= cap) len = cap - 1;
    memcpy(buf, p, len);
    buf[len] = 0;
    return 1;
}

/* Parses a number: plain decimal/float syntax, "inf" not accepted. */
static int parse_number(const char *t, double *out) {
    if (!*t) return 0;
    char *end = NULL;
    errno = 0;
    double v = strtod(t, &end);
    if (errno || *end || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

static int get_number(pctx *c, struct fy_node *n, ploc at, const char *path, double lo,
                      double hi, double *out) {
    char buf[128];
    ploc l = node_loc(n, at);
    double v;
    if (!scalar_text(n, buf, sizeof buf)) {
        perr(c, l, path, "expected a number, found %s", type_name(n));
        return 0;
    }
    if (!parse_number(buf, &v)) {
        perr(c, l, path, "expected a number, found '%s'", buf);
        return 0;
    }
    if (v < lo || v > hi) {
        perr(c, l, path, "%g is out of range [%g, %g]", v, lo, hi);
        return 0;
    }
    *out = v;
    return 1;
}

static int get_int(pctx *c, struct fy_node *n, ploc at, const char *path, double lo, double hi,
                   int *out) {
    double v;
    if (!get_number(c, n, at, path, lo, hi, &v)) return 0;
    if (v != floor(v)) {
        perr(c, node_loc(n, at), path, "expected an integer, found %g", v);
        return 0;
    }
    *out = (int)v;
    return 1;
}

static int get_word(pctx *c, struct fy_node *n, ploc at, const char *path, char *buf, size_t cap) {
    char tmp[600];
    if (!scalar_text(n, tmp, sizeof tmp)) {
        perr(c, node_loc(n, at), path, "expected a string, found %s", type_name(n));
        return 0;
    }
    if (strlen(tmp) >= cap) {
        perr(c, node_loc(n, at), path, "'%.40s...' is longer than %zu characters", tmp, cap - 1);
        return 0;
    }
    memcpy(buf, tmp, strlen(tmp) + 1);
    return 1;
}

/* Duration: a number of seconds, optionally followed by s, m or h. */
static int get_duration(pctx *c, struct fy_node *n, ploc at, const char *path, double *out) {
    char buf[64];
    ploc l = node_loc(n, at);
    if (!scalar_text(n, buf, sizeof buf)) {
        perr(c, l, path, "expected a duration, found %s", type_name(n));
        return 0;
    }
    size_t len = strlen(buf);
    double mul = 1;
    if (len > 1 && strchr("smh", buf[len - 1])) {
        mul = buf[len - 1] == 's' ? 1 : buf[len - 1] == 'm' ? 60 : 3600;
        buf[len - 1] = 0;
    }
    double v;
    if (!parse_number(buf, &v) || v < 0) {
        perr(c, l, path, "expected a duration such as 90, 30m or 2h");
        return 0;
    }
    *out = v * mul;
    return 1;
}

/* Iterates the key/value pairs of a mapping: key text into kbuf, key location into kat. */
static struct fy_node_pair *next_pair(struct fy_node *map, void **it, char *kbuf, size_t cap,
                                      ploc *kat) {
    struct fy_node_pair *p = fy_node_mapping_iterate(map, it);
    if (!p) return NULL;
    struct fy_node *k = fy_node_pair_key(p);
    if (!scalar_text(k, kbuf, cap)) snprintf(kbuf, cap, "?");
    *kat = node_loc(k, *kat);
    return p;
}

static int expect_mapping(pctx *c, struct fy_node *n, ploc at, const char *path) {
    if (!n || fy_node_get_type(n) != FYNT_MAPPING) {
        perr(c, node_loc(n, at), path, "expected a mapping, found %s", type_name(n));
        return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------------------
** Knobs of the search space.
*/

static const char *const knob_names[KNOB_COUNT] = {
    "conv_blocks", "conv_channels", "conv_pool", "fc_layers", "fc_width", "loss",
    "mhl_b",       "flip_rate",     "epochs",    "lr",        "batch",
    "optimizer",   "bop_gamma",     "bop_tau",   "momentum_format",
};

const char *spec_knob_name(spec_knob k) { return k < KNOB_COUNT ? knob_names[k] : "?"; }

/* Range and integrality of each knob's values. */
static const struct {
    double lo, hi;
    int integer;
} knob_range[KNOB_COUNT] = {
    [KNOB_CONV_BLOCKS] = {0, SPEC_MAX_ITEMS, 1}, [KNOB_CONV_CHANNELS] = {1, ARCH_MAX_WIDTH, 1},
    [KNOB_CONV_POOL] = {0, 1, 1},                [KNOB_FC_LAYERS] = {0, SPEC_MAX_ITEMS, 1},
    [KNOB_FC_WIDTH] = {1, ARCH_MAX_WIDTH, 1},       [KNOB_LOSS] = {0, 1, 1},
    [KNOB_MHL_B] = {1e-6, 1e6, 0},               [KNOB_FLIP_RATE] = {0, 0.5, 0},
    [KNOB_EPOCHS] = {1, 10000, 1},               [KNOB_LR] = {1e-9, 1, 0},
    [KNOB_BATCH] = {1, 65536, 1},                [KNOB_OPTIMIZER] = {0, 1, 1},
    [KNOB_BOP_GAMMA] = {1e-12, 1, 0},            [KNOB_BOP_TAU] = {0, 1, 0},
    [KNOB_MOMENTUM_FORMAT] = {0, 1e9, 1},
};

double spec_format_code(const fpfmt *F) {
    return (double)(((F->e * 32 + F->f) * 4096 + F->bias + 2048) * 2 + F->subnormals);
}

fpfmt spec_format_of_code(double code) {
    long c = (long)code;
    int sub = (int)(c % 2), bias = (int)((c / 2) % 4096) - 2048, ef = (int)(c / 2 / 4096);
    fpfmt F;
    int rc = fpfmt_init(&F, ef / 32, ef % 32, bias, sub);
    BN_ASSERT(rc == BN_OK); /* codes come from formats fpfmt_parse accepted */
    return F;
}

/* Knobs whose values are words, never numbers: loss, optimizer, momentum_format. */
static int knob_is_word(spec_knob k) {
    return k == KNOB_LOSS || k == KNOB_OPTIMIZER || k == KNOB_MOMENTUM_FORMAT;
}

/* A word-valued knob: names[i] (a NULL-terminated list) stands for values[i]. */
static int knob_word(pctx *c, struct fy_node *n, ploc at, const char *path, const char *what,
                     const char *const *names, const double *values, const char *expected, double *out) {
    char w[16];
    if (!get_word(c, n, at, path, w, sizeof w)) return 0;
    for (int i = 0; names[i]; i++)
        if (!strcmp(w, names[i])) {
            *out = values[i];
            return 1;
        }
    perr(c, node_loc(n, at), path, "unknown %s '%s' (expected %s)", what, w, expected);
    return 0;
}

/* One value of a knob (a choice entry or a fixed value). */
static int knob_value(pctx *c, spec_knob k, struct fy_node *n, ploc at, const char *path,
                      double *out) {
    if (k == KNOB_LOSS) {
        static const char *const names[] = {"ce", "cross_entropy", "mhl", NULL};
        static const double values[] = {0, 0, 1};
        return knob_word(c, n, at, path, "loss", names, values, "ce or mhl", out);
    }
    if (k == KNOB_OPTIMIZER) {
        static const char *const names[] = {"adam", "bop", NULL};
        static const double values[] = {0, 1};
        return knob_word(c, n, at, path, "optimizer", names, values, "adam or bop", out);
    }
    if (k == KNOB_MOMENTUM_FORMAT) {
        char w[32];
        fpfmt F;
        if (!get_word(c, n, at, path, w, sizeof w)) return 0;
        if (fpfmt_parse(&F, w)) {
            perr(c, node_loc(n, at), path, "%s", bn_errmsg());
            return 0;
        }
        *out = spec_format_code(&F);
        return 1;
    }
    double v;
    if (k == KNOB_FC_WIDTH || k == KNOB_CONV_CHANNELS) {
        /* Topology items: arch_parse's words and range (engine/arch.h). */
        if (!get_number(c, n, at, path, -1e300, 1e300, &v)) return 0;
        if (v != floor(v)) {
            perr(c, node_loc(n, at), path, "%s takes integers, found %g", knob_names[k], v);
            return 0;
        }
        if (v < 1 || v > ARCH_MAX_WIDTH) {
            perr(c, node_loc(n, at), path, "%s %.0f out of range 1..%d",
                 k == KNOB_FC_WIDTH ? "width" : "channels", v, ARCH_MAX_WIDTH);
            return 0;
        }
        *out = v;
        return 1;
    }
    if (!get_number(c, n, at, path, knob_range[k].lo, knob_range[k].hi, &v)) return 0;
    if (knob_range[k].integer && v != floor(v)) {
        perr(c, node_loc(n, at), path, "%s takes integers, found %g", knob_names[k], v);
        return 0;
    }
    *out = v;
    return 1;
}

/* One value of recipe key rk (engine/recipe.h) named in a search space: a
   word of a word-valued key (held as its code), else a number in the
   table's range, an integer for integer keys. */
static int recipe_value(pctx *c, const recipe_key *rk, struct fy_node *n, ploc at, const char *path, double *out) {
    if (rk->type == RECIPE_WORD) {
        char expected[64] = "";
        for (int i = 0; rk->words[i]; i++)
            snprintf(expected + strlen(expected), sizeof expected - strlen(expected), "%s%s", i ? " or " : "", rk->words[i]);
        return knob_word(c, n, at, path, rk->name, rk->words, (const double[]){0, 1, 2, 3}, expected, out);
    }
    double v;
    if (!get_number(c, n, at, path, rk->lo, rk->hi, &v)) return 0;
    if (rk->type != RECIPE_FLOAT && v != floor(v)) {
        perr(c, node_loc(n, at), path, "%s takes integers, found %g", rk->name, v);
        return 0;
    }
    *out = v;
    return 1;
}

/* A value of knob k, or of recipe key rk if not NULL. */
static int dim_value(pctx *c, spec_knob k, const recipe_key *rk, struct fy_node *n, ploc at, const char *path,
                     double *out) {
    return rk ? recipe_value(c, rk, n, at, path, out) : knob_value(c, k, n, at, path, out);
}

/* A dimension of knob k, or (k == KNOB_COUNT) of recipe key rk. */
static void parse_dim(pctx *c, spec_knob k, const recipe_key *rk, struct fy_node *n, ploc at, const char *path) {
    spec *s = c->s;
    int dup = rk ? 0 : s->knob_dim[k] >= 0;
    for (int i = 0; rk && i < s->n_dims; i++) dup |= s->dims[i].recipe == (int)(rk - recipe_keys) + 1;
    if (dup) {
        perr(c, at, path, "declared twice");
        return;
    }
    const char *kname = rk ? rk->name : knob_names[k];
    int is_word = rk ? rk->type == RECIPE_WORD : knob_is_word(k);
    int integer = rk ? rk->type != RECIPE_FLOAT : knob_range[k].integer;
    if (s->n_dims >= SPEC_MAX_DIMS) {
        perr(c, at, path, "too many dimensions (at most %d)", SPEC_MAX_DIMS);
        return;
    }
    spec_dim d;
    memset(&d, 0, sizeof d);
    d.knob = k;
    d.recipe = rk ? (int)(rk - recipe_keys) + 1 : 0;
    d.line = at.line;
    d.col = at.col;
    d.in_space_file = c->in_space;
    int ok = 1;
    char sub[160];
    if (fy_node_get_type(n) == FYNT_SCALAR) {
        d.type = DIM_FIXED;
        d.n = 1;
        ok = dim_value(c, k, rk, n, at, path, &d.num[0]);
    } else if (fy_node_get_type(n) == FYNT_SEQUENCE) {
        d.type = DIM_CHOICE; /* shorthand: a plain list is a choice */
        void *it = NULL;
        struct fy_node *v;
        while ((v = fy_node_sequence_iterate(n, &it))) {
            pathf(sub, sizeof sub, "%s[%d]", path, d.n);
            if (d.n >= SPEC_MAX_CHOICES) {
                perr(c, node_loc(v, at), sub, "too many values (at most %d)", SPEC_MAX_CHOICES);
                ok = 0;
                break;
            }
            ok &= dim_value(c, k, rk, v, at, sub, &d.num[d.n]);
            d.n++;
        }
    } else {
        char key[64], type[16] = "";
        ploc kat = at, type_at = at;
        struct fy_node *values = NULL, *low = NULL, *high = NULL;
        ploc values_at = at, low_at = at, high_at = at;
        void *it = NULL;
        struct fy_node_pair *p;
        while ((p = next_pair(n, &it, key, sizeof key, &kat))) {
            struct fy_node *v = fy_node_pair_value(p);
            pathf(sub, sizeof sub, "%s.%s", path, key);
            if (!strcmp(key, "type")) {
                ok &= get_word(c, v, kat, sub, type, sizeof type);
                type_at = node_loc(v, kat);
            } else if (!strcmp(key, "values")) values = v, values_at = kat;
            else if (!strcmp(key, "low")) low = v, low_at = kat;
            else if (!strcmp(key, "high")) high = v, high_at = kat;
            else {
                perr(c, kat, sub, "unknown key (expected type, values, low, high)");
                ok = 0;
            }
        }
        if (!strcmp(type, "choice")) d.type = DIM_CHOICE;
        else if (!strcmp(type, "int")) d.type = DIM_INT;
        else if (!strcmp(type, "float") || !strcmp(type, "uniform")) d.type = DIM_FLOAT;
        else if (!strcmp(type, "log") || !strcmp(type, "loguniform")) d.type = DIM_LOG;
        else {
            pathf(sub, sizeof sub, "%s.type", path);
            if (!type[0]) perr(c, at, sub, "missing (expected choice, int, float or log)");
            else perr(c, type_at, sub, "unknown type '%s' (expected choice, int, float or log)", type);
            return;
        }
        if (d.type == DIM_CHOICE) {
            pathf(sub, sizeof sub, "%s.values", path);
            if (low || high) {
                perr(c, low ? low_at : high_at, path, "a choice takes values, not low/high");
                ok = 0;
            }
            if (!values || fy_node_get_type(values) != FYNT_SEQUENCE) {
                perr(c, values ? values_at : at, sub, "expected a list of values");
                return;
            }
            void *it2 = NULL;
            struct fy_node *v;
            while ((v = fy_node_sequence_iterate(values, &it2))) {
                char sub2[180];
                pathf(sub2, sizeof sub2, "%s[%d]", sub, d.n);
                if (d.n >= SPEC_MAX_CHOICES) {
                    perr(c, node_loc(v, values_at), sub2, "too many values (at most %d)",
                         SPEC_MAX_CHOICES);
                    ok = 0;
                    break;
                }
                ok &= dim_value(c, k, rk, v, values_at, sub2, &d.num[d.n]);
                d.n++;
            }
        } else {
            if (values) {
                perr(c, values_at, path, "type %s takes low and high, not values", type);
                ok = 0;
            }
            if (is_word) {
                perr(c, type_at, path, "%s is a choice of %s, not %s", kname,
                     k == KNOB_MOMENTUM_FORMAT ? "format names" : "words", type);
                return;
            }
            if (integer && d.type != DIM_INT) {
                perr(c, type_at, path, "%s takes integers: use type int or choice", kname);
                return;
            }
            char sl[180], sh[180];
            pathf(sl, sizeof sl, "%s.low", path);
            pathf(sh, sizeof sh, "%s.high", path);
            if (!low) perr(c, at, sl, "missing"), ok = 0;
            if (!high) perr(c, at, sh, "missing"), ok = 0;
            if (!ok) return;
            ok &= dim_value(c, k, rk, low, low_at, sl, &d.low);
            ok &= dim_value(c, k, rk, high, high_at, sh, &d.high);
            if (ok && d.low > d.high) {
                perr(c, node_loc(low, low_at), path, "low %g is above high %g", d.low, d.high);
                ok = 0;
            }
            if (ok && d.type == DIM_LOG && d.low <= 0) {
                perr(c, node_loc(low, low_at), path, "a log dimension needs low > 0");
                ok = 0;
            }
        }
        if (d.type == DIM_CHOICE && ok && d.n == 0) {
            perr(c, values_at, path, "empty list of values");
            ok = 0;
        }
    }
    if (fy_node_get_type(n) == FYNT_SEQUENCE && ok && d.n == 0) {
        perr(c, at, path, "empty list of values");
        ok = 0;
    }
    if (!ok) return;
    if (!rk) s->knob_dim[k] = s->n_dims;
    s->dims[s->n_dims++] = d;
}

static void parse_space_map(pctx *c, struct fy_node *map, ploc at, const char *prefix) {
    if (!expect_mapping(c, map, at, prefix)) return;
    char key[64], path[160];
    ploc kat = at;
    void *it = NULL;
    struct fy_node_pair *p;
    while ((p = next_pair(map, &it, key, sizeof key, &kat))) {
        pathf(path, sizeof path, "%s.%s", prefix, key);
        int k;
        for (k = 0; k < KNOB_COUNT; k++)
            if (!strcmp(key, knob_names[k])) break;
        const recipe_key *rk = k == KNOB_COUNT ? recipe_find(key) : NULL;
        if (k == KNOB_COUNT && !(rk && rk->spec)) {
            perr(c, kat, path,
                 "unknown dimension (expected conv_blocks, conv_channels, conv_pool, fc_layers, "
                 "fc_width, loss, mhl_b, flip_rate, epochs, lr, batch, optimizer, bop_gamma, "
                 "bop_tau, momentum_format or a recipe key, README)");
            continue;
        }
        parse_dim(c, (spec_knob)k, rk, fy_node_pair_value(p), kat, path);
    }
}

/* ---------------------------------------------------------------------------
** Document loading.
*/

static void diag_quiet(struct fy_diag *diag, void *user, const char *buf, size_t len) {
    (void)diag, (void)user, (void)buf, (void)len;
}

/* Builds a document; on a YAML syntax error reports it located and returns NULL. */
/* Offset of the first byte of text that does not belong to valid UTF-8 (no
   overlong forms, surrogates or code points above U+10FFFF), or -1. */
static long utf8_bad_at(const char *text) {
    const unsigned char *s = (const unsigned char *)text, *p = s;
    while (*p) {
        unsigned b = *p;
        int n = b < 0x80 ? 0 : b >= 0xc2 && b <= 0xdf ? 1 : b >= 0xe0 && b <= 0xef ? 2 : b >= 0xf0 && b <= 0xf4 ? 3 : -1;
        if (n < 0) return (long)(p - s);
        unsigned lo = b == 0xe0 ? 0xa0 : b == 0xf0 ? 0x90 : 0x80, hi = b == 0xed ? 0x9f : b == 0xf4 ? 0x8f : 0xbf;
        for (int i = 1; i <= n; i++, lo = 0x80, hi = 0xbf)
            if (p[i] < lo || p[i] > hi) return (long)(p - s); /* the NUL ends a cut sequence here */
        p += n + 1;
    }
    return -1;
}

static struct fy_document *build_doc(pctx *c, const char *text) {
    /* YAML text is Unicode, and libfyaml 0.7.12 loops forever on some invalid
       UTF-8 (in a directive line): refuse it before parsing. */
    long bad = utf8_bad_at(text);
    if (bad >= 0) {
        ploc at = {1, 1};
        for (long i = 0; i < bad; i++) at = text[i] == '\n' ? (ploc){at.line + 1, 1} : (ploc){at.line, at.col + 1};
        perr(c, at, "yaml", "invalid UTF-8 byte 0x%02x (spec files are UTF-8 text)", (unsigned)(unsigned char)text[bad]);
        return NULL;
    }
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = diag_quiet;
    dcfg.colorize = false;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    /* Keep errors (with their 1-based line and column) for fy_diag_errors_iterate;
       without this libfyaml only prints them, and FYPCF_COLLECT_DIAG alone does
       not turn it on for a diag object of our own. */
    if (diag) fy_diag_set_collect_errors(diag, true);
    struct fy_parse_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.flags = FYPCF_QUIET | FYPCF_COLLECT_DIAG;
    cfg.diag = diag;
    struct fy_document *d = fy_document_build_from_string(&cfg, text, FY_NT);
    if (!d || fy_document_root(d) == NULL) {
        void *it = NULL;
        struct fy_diag_error *e;
        int n = 0;
        while (diag && (e = fy_diag_errors_iterate(diag, &it))) {
            perr(c, (ploc){e->line > 0 ? e->line : 1, e->column > 0 ? e->column : 1}, "yaml", "%s", e->msg);
            n++;
            break;
        }
        if (!n) perr(c, (ploc){1, 1}, "yaml", d ? "empty document" : "not valid YAML");
        if (d) fy_document_destroy(d);
        d = NULL;
    }
    if (diag) fy_diag_destroy(diag);
    return d;
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = bn_malloc(cap);
    for (;;) {
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[len] = 0;
    return buf;
}

static char *dup_text(const char *t) {
    size_t n = strlen(t);
    char *p = bn_malloc(n + 1);
    memcpy(p, t, n + 1);
    return p;
}

/* Finds search_spaces/NAME.yaml near the spec file; fills out (cap bytes). */
static int find_space(const char *spec_path, const char *name, char *out, size_t cap) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s", spec_path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    const char *env = getenv("BNAS_SEARCH_SPACES");
    char cand[4][1100];
    pathf(cand[0], sizeof cand[0], "%s/../search_spaces/%s.yaml", dir, name);
    pathf(cand[1], sizeof cand[1], "%s/search_spaces/%s.yaml", dir, name);
    pathf(cand[2], sizeof cand[2], "%s/%s.yaml", env ? env : "", name);
#ifdef BNAS_SOURCE_DIR
    pathf(cand[3], sizeof cand[3], "%s/search_spaces/%s.yaml", BNAS_SOURCE_DIR, name);
#else
    cand[3][0] = 0;
#endif
    for (int i = 0; i < 4; i++) {
        if (i == 2 && !env) continue;
        if (!cand[i][0]) continue;
        FILE *f = fopen(cand[i], "rb");
        if (f) {
            fclose(f);
            pathf(out, cap, "%s", cand[i]);
            return 1;
        }
    }
    return 0;
}

uint64_t spec_fnv64(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* ---------------------------------------------------------------------------
** Sections.
*/

static void parse_data(pctx *c, struct fy_node *n, ploc at) {
    spec *s = c->s;
    if (!expect_mapping(c, n, at, "data")) return;
    char key[64], path[160];
    ploc kat = at, count_at[3] = {at, at, at}; /* where train, val and test are */
    void *it = NULL;
    struct fy_node_pair *p;
    while ((p = next_pair(n, &it, key, sizeof key, &kat))) {
        struct fy_node *v = fy_node_pair_value(p);
        pathf(path, sizeof path, "data.%s", key);
        for (int k = 0; k < 3; k++)
            if (!strcmp(key, (const char *const[]){"train", "val", "test"}[k])) count_at[k] = node_loc(v, kat);
        if (!strcmp(key, "name") || !strcmp(key, "set")) {
            if (get_word(c, v, kat, path, s->data, sizeof s->data) &&
                strcmp(s->data, "fashion_mnist") && strcmp(s->data, "cifar10") &&
                strcmp(s->data, "synthetic")) {
                perr(c, node_loc(v, kat), path,
                     "unknown data set '%s' (expected fashion_mnist, cifar10 or synthetic)",
                     s->data);
                s->data[0] = 0;
            }
        } else if (!strcmp(key, "dir")) get_word(c, v, kat, path, s->data_dir, sizeof s->data_dir);
        else if (!strcmp(key, "train")) get_int(c, v, kat, path, 0, 1e8, &s->n_train);
        else if (!strcmp(key, "val")) get_int(c, v, kat, path, 0, 1e8, &s->n_val);
        else if (!strcmp(key, "test")) get_int(c, v, kat, path, 0, 1e8, &s->n_test);
        else if (!strcmp(key, "split_seed")) {
            double sd;
            if (get_number(c, v, kat, path, 0, 9007199254740992.0, &sd)) {
                if (sd != floor(sd)) perr(c, node_loc(v, kat), path, "expected an integer");
                s->split_seed = (uint64_t)sd;
                c->have_split_seed = 1;
            }
        } else perr(c, kat, path, "unknown key (expected name, dir, train, val, test, split_seed)");
    }
    if (!s->data[0]) perr(c, at, "data.name", "missing (fashion_mnist, cifar10 or synthetic)");
    if (!strcmp(s->data, "cifar10")) s->in_h = 32, s->in_w = 32, s->in_c = 3;
    else s->in_h = 28, s->in_w = 28, s->in_c = 1;
    s->classes = 10;
    /* Counts beyond the standard files, located (trial_env_create checks
       against the files actually loaded). One key set at a time, to know
       where each mistake is: val, train, test, then train + val (at train)
       if each alone fits. */
    int fm = !strcmp(s->data, "fashion_mnist"), cf = !strcmp(s->data, "cifar10");
    if (!fm && !cf) return;
    static const char *const sets[4][3] = {{NULL, "data.val", NULL},
                                           {"data.train", NULL, NULL},
                                           {NULL, NULL, "data.test"},
                                           {"data.train", "data.val", NULL}};
    static const int where[4] = {1, 0, 2, 0};
    const int asked[3] = {s->n_train, s->n_val, s->n_test};
    int bad_alone = 0;
    for (int k = 0; k < 4 && !(k == 3 && bad_alone); k++) {
        if (!data_check_counts(s->data, fm ? DATA_FASHION_MNIST_TRAIN : DATA_CIFAR10_TRAIN,
                               fm ? DATA_FASHION_MNIST_TEST : DATA_CIFAR10_TEST, sets[k], asked))
            continue;
        char msg[400]; /* "KEY: text", KEY being one key or "data.train + data.val" */
        pathf(msg, sizeof msg, "%s", bn_errmsg());
        char *text = strstr(msg, ": ");
        if (text) *text = 0, text += 2;
        perr(c, count_at[where[k]], msg, "%s", text ? text : "");
        bad_alone |= k < 2;
    }
}

static void parse_strategy(pctx *c, struct fy_node *n, ploc at) {
    spec *s = c->s;
    char name[32] = "";
    if (fy_node_get_type(n) == FYNT_SCALAR) {
        get_word(c, n, at, "strategy", name, sizeof name);
    } else {
        if (!expect_mapping(c, n, at, "strategy")) return;
        char key[64], path[160];
        ploc kat = at;
        void *it = NULL;
        struct fy_node_pair *p;
        while ((p = next_pair(n, &it, key, sizeof key, &kat))) {
            struct fy_node *v = fy_node_pair_value(p);
            pathf(path, sizeof path, "strategy.%s", key);
            if (!strcmp(key, "name")) get_word(c, v, kat, path, name, sizeof name), at = node_loc(v, kat);
            else if (!strcmp(key, "batch")) get_int(c, v, kat, path, 1, 4096, &s->batch);
            else if (!strcmp(key, "population")) get_int(c, v, kat, path, 2, 100000, &s->population);
            else if (!strcmp(key, "sample")) get_int(c, v, kat, path, 1, 100000, &s->sample);
            else if (!strcmp(key, "mutation_prob")) get_number(c, v, kat, path, 0, 1, &s->mutation_prob);
            else if (!strcmp(key, "crossover_prob")) get_number(c, v, kat, path, 0, 1, &s->crossover_prob);
            else perr(c, kat, path, "unknown key (expected name, batch, population, sample, "
                                    "mutation_prob, crossover_prob)");
        }
    }
    int k = name[0] ? strategy_find(name) : -1;
    char names[128];
    strategy_names(names, sizeof names);
    if (k >= 0) s->strategy = (spec_strategy_kind)k;
    else if (!name[0]) perr(c, at, "strategy.name", "missing (%s)", names);
    else perr(c, at, "strategy.name", "unknown strategy '%s' (expected %s)", name, names);
    if (strategy_uses_sample(s->strategy) && s->sample > s->population)
        perr(c, at, "strategy.sample", "tournament size %d exceeds population %d", s->sample,
             s->population);
}

static void parse_budget(pctx *c, struct fy_node *n, ploc at) {
    spec *s = c->s;
    if (!expect_mapping(c, n, at, "budget")) return;
    int have_trials = 0;
    char key[64], path[160];
    ploc kat = at;
    void *it = NULL;
    struct fy_node_pair *p;
    while ((p = next_pair(n, &it, key, sizeof key, &kat))) {
        struct fy_node *v = fy_node_pair_value(p);
        pathf(path, sizeof path, "budget.%s", key);
        if (!strcmp(key, "trials")) get_int(c, v, kat, path, 1, 1e7, &s->max_trials), have_trials = 1;
        else if (!strcmp(key, "wall_time")) get_duration(c, v, kat, path, &s->wall_time);
        else if (!strcmp(key, "trial_time")) get_duration(c, v, kat, path, &s->trial_time);
        else perr(c, kat, path, "unknown key (expected trials, wall_time, trial_time)");
    }
    if (!have_trials) perr(c, at, "budget.trials", "missing (number of trials to train)");
}

static void parse_constraints(pctx *c, struct fy_node *n, ploc at) {
    spec *s = c->s;
    if (!expect_mapping(c, n, at, "constraints")) return;
    char key[64], path[160];
    ploc kat = at;
    void *it = NULL;
    struct fy_node_pair *p;
    while ((p = next_pair(n, &it, key, sizeof key, &kat))) {
        struct fy_node *v = fy_node_pair_value(p);
        pathf(path, sizeof path, "constraints.%s", key);
        if (!strcmp(key, "max_model_bytes")) get_number(c, v, kat, path, 1, 1e15, &s->max_model_bytes);
        else if (!strcmp(key, "max_macs")) get_number(c, v, kat, path, 1, 1e18, &s->max_macs);
        else if (!strcmp(key, "max_host_memory")) get_number(c, v, kat, path, 1, 1e15, &s->max_host_memory);
        else perr(c, kat, path, "unknown key (expected max_model_bytes, max_macs, max_host_memory)");
    }
}

static void parse_evaluators(pctx *c, struct fy_node *n, ploc at) {
    spec *s = c->s;
    if (!n || fy_node_get_type(n) != FYNT_SEQUENCE) {
        perr(c, node_loc(n, at), "evaluators", "expected a list, found %s", type_name(n));
        return;
    }
    void *it = NULL;
    struct fy_node *e;
    while ((e = fy_node_sequence_iterate(n, &it))) {
        char path[160];
        pathf(path, sizeof path, "evaluators[%d]", s->n_eval);
        if (s->n_eval >= SPEC_MAX_EVAL) {
            perr(c, at, path, "too many evaluators (at most %d)", SPEC_MAX_EVAL);
            return;
        }
        spec_evaluator *ev = &s->eval[s->n_eval++];
        if (fy_node_get_type(e) == FYNT_SCALAR) {
            if (get_word(c, e, at, path, ev->name, sizeof ev->name) && !eval_find(ev->name))
                perr(c, node_loc(e, at), path, "unknown evaluator '%s'", ev->name);
            continue;
        }
        if (!expect_mapping(c, e, at, path)) continue;
        char key[64], sub[200];
        ploc kat = at, name_at = at;
        ploc param_at[SPEC_MAX_PARAMS]; /* where each parameter's value is */
        void *it2 = NULL;
        struct fy_node_pair *p;
        while ((p = next_pair(e, &it2, key, sizeof key, &kat))) {
            struct fy_node *v = fy_node_pair_value(p);
            pathf(sub, sizeof sub, "%s.%s", path, key);
            if (!strcmp(key, "name")) {
                get_word(c, v, kat, sub, ev->name, sizeof ev->name);
                name_at = node_loc(v, kat);
                continue;
            }
            if (ev->n_params >= SPEC_MAX_PARAMS) {
                perr(c, kat, sub, "too many parameters (at most %d)", SPEC_MAX_PARAMS);
                continue;
            }
            spec_param *pa = &ev->params[ev->n_params];
            memset(pa, 0, sizeof *pa);
            if (strlen(key) >= sizeof pa->key) {
                perr(c, kat, sub, "parameter name too long");
                continue;
            }
            strcpy(pa->key, key);
            param_at[ev->n_params] = node_loc(v, kat);
            if (fy_node_get_type(v) == FYNT_SEQUENCE) {
                void *it3 = NULL;
                struct fy_node *x;
                size_t len = 0;
                int k = 0, ok = 1;
                len += (size_t)snprintf(pa->value, sizeof pa->value, "[");
                while ((x = fy_node_sequence_iterate(v, &it3))) {
                    char sub2[220], item[64];
                    pathf(sub2, sizeof sub2, "%s[%d]", sub, k);
                    if (!get_word(c, x, kat, sub2, item, sizeof item)) {
                        ok = 0;
                        break;
                    }
                    len += (size_t)snprintf(pa->value + len, sizeof pa->value - len, "%s%s",
                                            k++ ? ", " : "", item);
                    if (len + 2 >= sizeof pa->value) {
                        perr(c, node_loc(x, kat), sub2, "list too long");
                        ok = 0;
                        break;
                    }
                }
                if (!ok) continue;
                snprintf(pa->value + len, sizeof pa->value - len, "]");
            } else if (!get_word(c, v, kat, sub, pa->value, sizeof pa->value)) {
                continue;
            }
            ev->n_params++;
        }
        if (!ev->name[0]) {
            perr(c, at, path, "missing name");
            continue;
        }
        const evaluator *e = eval_find(ev->name);
        if (!e) {
            char names[300] = "";
            size_t used = 0;
            const evaluator *const *all = eval_all();
            for (int k = 0; all[k] && used + 40 < sizeof names; k++)
                used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", k ? ", " : "",
                                         all[k]->name);
            perr(c, name_at, path, "unknown evaluator '%s' (known: %s)", ev->name, names);
            continue;
        }
        eval_params ep;
        spec_eval_params(ev, &ep);
        const char *bad = NULL;
        if (eval_params_check(e, &ep)) perr(c, name_at, path, "%s", bn_errmsg());
        else if (e->check && e->check(&ep, &bad)) {
            ploc bat = name_at;
            for (int q = 0; bad && q < ev->n_params; q++)
                if (!strcmp(ev->params[q].key, bad)) bat = param_at[q];
            pathf(sub, sizeof sub, "%s.%s", path, bad ? bad : "?");
            perr(c, bat, sub, "%s", bn_errmsg());
        }
    }
}

/* Metrics every trial reports (besides evaluator metrics "EVALUATOR.metric"). */
static const char *const builtin_metrics[] = {"val_acc",    "test_acc",      "model_bytes", "macs",
                                              "train_loss", "train_seconds", "train_memory"};

static void parse_objectives(pctx *c, struct fy_node *n, ploc at) {
    spec *s = c->s;
    if (!n || fy_node_get_type(n) != FYNT_SEQUENCE) {
        perr(c, node_loc(n, at), "objectives", "expected a list, found %s", type_name(n));
        return;
    }
    void *it = NULL;
    struct fy_node *o;
    int i = 0;
    while ((o = fy_node_sequence_iterate(n, &it))) {
        char path[160];
        pathf(path, sizeof path, "objectives[%d]", i++);
        if (s->n_obj >= SPEC_MAX_OBJ) {
            perr(c, at, path, "too many objectives (at most %d)", SPEC_MAX_OBJ);
            return;
        }
        if (!expect_mapping(c, o, at, path)) continue;
        spec_objective ob;
        memset(&ob, 0, sizeof ob);
        char key[64], sub[200], dir[16] = "";
        ploc kat = at, oat = at, dat = at;
        int have_ref = 0, ok = 1;
        void *it2 = NULL;
        struct fy_node_pair *p;
        while ((p = next_pair(o, &it2, key, sizeof key, &kat))) {
            struct fy_node *v = fy_node_pair_value(p);
            pathf(sub, sizeof sub, "%s.%s", path, key);
            if (!strcmp(key, "metric")) {
                ok &= get_word(c, v, kat, sub, ob.metric, sizeof ob.metric);
                oat = node_loc(v, kat);
            } else if (!strcmp(key, "direction")) {
                ok &= get_word(c, v, kat, sub, dir, sizeof dir);
                dat = node_loc(v, kat);
            } else if (!strcmp(key, "ref")) {
                have_ref = get_number(c, v, kat, sub, -1e300, 1e300, &ob.ref);
                ok &= have_ref;
            } else {
                perr(c, kat, sub, "unknown key (expected metric, direction, ref)");
                ok = 0;
            }
        }
        pathf(sub, sizeof sub, "%s.metric", path);
        if (!ob.metric[0]) {
            perr(c, oat, sub, "missing");
            continue;
        }
        if (!strcmp(ob.metric, "test_acc")) {
            perr(c, oat, sub, "test accuracy is recorded but never used for selection; use val_acc");
            ok = 0;
        } else if (!strcmp(ob.metric, "train_seconds")) {
            perr(c, oat, sub, "train_seconds depends on the machine and cannot be an objective");
            ok = 0;
        } else {
            int known = 0;
            for (size_t b = 0; b < sizeof builtin_metrics / sizeof *builtin_metrics; b++)
                if (!strcmp(ob.metric, builtin_metrics[b])) known = 1;
            const char *dot = strchr(ob.metric, '.');
            if (!known && dot) {
                for (int e = 0; e < s->n_eval; e++)
                    if (strlen(s->eval[e].name) == (size_t)(dot - ob.metric) &&
                        !strncmp(s->eval[e].name, ob.metric, (size_t)(dot - ob.metric)))
                        known = 1;
            }
            if (!known) {
                perr(c, oat, sub,
                     "unknown metric '%s' (expected val_acc, model_bytes, macs, train_loss, "
                     "train_memory or EVALUATOR.metric of a declared evaluator)",
                     ob.metric);
                ok = 0;
            }
            /* An evaluator measuring on the test split must not select. */
            for (int e = 0; known && dot && e < s->n_eval; e++) {
                if (strlen(s->eval[e].name) != (size_t)(dot - ob.metric) ||
                    strncmp(s->eval[e].name, ob.metric, (size_t)(dot - ob.metric)))
                    continue;
                for (int q = 0; q < s->eval[e].n_params; q++)
                    if (!strcmp(s->eval[e].params[q].key, "split") &&
                        !strcmp(s->eval[e].params[q].value, "test")) {
                        perr(c, oat, sub, "evaluator %s measures on the test split, which is "
                                          "recorded but never used for selection", s->eval[e].name);
                        ok = 0;
                    }
            }
        }
        pathf(sub, sizeof sub, "%s.direction", path);
        if (!strcmp(dir, "max") || !strcmp(dir, "maximize")) ob.maximize = 1;
        else if (!strcmp(dir, "min") || !strcmp(dir, "minimize")) ob.maximize = 0;
        else if (!dir[0]) perr(c, at, sub, "missing (max or min)"), ok = 0;
        else perr(c, dat, sub, "unknown direction '%s' (expected max or min)", dir), ok = 0;
        if (!have_ref && ok) {
            if (ob.maximize && (strstr(ob.metric, "acc"))) ob.ref = 0;
            else {
                pathf(sub, sizeof sub, "%s.ref", path);
                perr(c, at, sub, "missing: the hypervolume reference point (a worst value) must "
                                 "be fixed in the spec");
                ok = 0;
            }
        }
        for (int j = 0; j < s->n_obj; j++)
            if (!strcmp(s->obj[j].metric, ob.metric)) {
                perr(c, oat, path, "metric '%s' listed twice", ob.metric);
                ok = 0;
            }
        if (ok) s->obj[s->n_obj++] = ob;
    }
    if (i == 0) perr(c, at, "objectives", "empty list");
}

/* Largest value a dimension can take. */
static double dim_max(const spec_dim *d) {
    if (d->type == DIM_CHOICE || d->type == DIM_FIXED) {
        double m = d->num[0];
        for (int i = 1; i < d->n; i++)
            if (d->num[i] > m) m = d->num[i];
        return m;
    }
    return d->high;
}

static void spec_defaults(spec *s) {
    memset(s, 0, sizeof *s);
    s->seed = 1;
    s->threads = 1;
    s->n_val = 5000;
    s->batch = 8;
    s->population = 16;
    s->sample = 4;
    s->mutation_prob = 0.2;
    s->crossover_prob = 0.9;
    s->max_host_memory = SPEC_HOST_MEMORY_DEFAULT;
    s->strategy = STRAT_RANDOM;
    for (int k = 0; k < KNOB_COUNT; k++) s->knob_dim[k] = -1;
}

int spec_parse(spec *s, const char *path, const char *text, const char *space_path,
               const char *space_text) {
    pctx c;
    memset(&c, 0, sizeof c);
    spec_defaults(s);
    c.s = s;
    c.file = path;
    snprintf(s->path, sizeof s->path, "%s", path);
    struct fy_document *doc = build_doc(&c, text), *sdoc = NULL;
    struct fy_node *space = NULL, *data = NULL, *objectives = NULL, *evaluators = NULL;
    ploc space_at = {1, 1}, data_at = {1, 1}, obj_at = {1, 1}, eval_at = {1, 1};
    int have_budget = 0, have_strategy = 0;
    if (!doc) goto done;
    struct fy_node *root = fy_document_root(doc);
    if (!expect_mapping(&c, root, (ploc){1, 1}, "(top)")) goto done;
    char key[64];
    ploc kat = {1, 1};
    void *it = NULL;
    struct fy_node_pair *p;
    while ((p = next_pair(root, &it, key, sizeof key, &kat))) {
        struct fy_node *v = fy_node_pair_value(p);
        if (!strcmp(key, "name")) get_word(&c, v, kat, key, s->name, sizeof s->name);
        else if (!strcmp(key, "seed")) {
            double sd;
            if (get_number(&c, v, kat, key, 0, 9007199254740992.0, &sd)) {
                if (sd != floor(sd)) perr(&c, node_loc(v, kat), key, "expected an integer");
                s->seed = (uint64_t)sd;
            }
        } else if (!strcmp(key, "threads")) get_int(&c, v, kat, key, 1, 1024, &s->threads);
        else if (!strcmp(key, "determinism")) {
            char mode[16] = "";
            if (get_word(&c, v, kat, key, mode, sizeof mode)) {
                if (!strcmp(mode, "portable")) s->determinism_fast = 0;
                else if (!strcmp(mode, "fast")) s->determinism_fast = 1;
                else perr(&c, node_loc(v, kat), key, "unknown mode '%s' (expected portable or fast)", mode);
            }
        } else if (!strcmp(key, "data")) data = v, data_at = kat;
        else if (!strcmp(key, "search_space")) space = v, space_at = kat;
        else if (!strcmp(key, "strategy")) parse_strategy(&c, v, kat), have_strategy = 1;
        else if (!strcmp(key, "budget")) parse_budget(&c, v, kat), have_budget = 1;
        else if (!strcmp(key, "objectives")) objectives = v, obj_at = kat;
        else if (!strcmp(key, "constraints")) parse_constraints(&c, v, kat);
        else if (!strcmp(key, "evaluators")) evaluators = v, eval_at = kat;
        else
            perr(&c, kat, key, "unknown key (expected name, seed, threads, determinism, data, search_space, "
                               "strategy, budget, objectives, constraints, evaluators)");
    }
    if (data) parse_data(&c, data, data_at);
    else perr(&c, (ploc){1, 1}, "data", "missing");
    if (evaluators) parse_evaluators(&c, evaluators, eval_at); /* before objectives: names */
    if (objectives) parse_objectives(&c, objectives, obj_at);
    else perr(&c, (ploc){1, 1}, "objectives", "missing");
    if (!have_budget) perr(&c, (ploc){1, 1}, "budget", "missing (budget: {trials: N})");
    if (!have_strategy) perr(&c, (ploc){1, 1}, "strategy", "missing (random, evolution or nsga2)");
    if (!space) {
        perr(&c, (ploc){1, 1}, "search_space", "missing");
    } else if (fy_node_get_type(space) == FYNT_SCALAR) {
        char name[128];
        if (get_word(&c, space, space_at, "search_space", name, sizeof name)) {
            ploc nat = node_loc(space, space_at);
            if (space_text) {
                s->space_text = dup_text(space_text);
                snprintf(s->space_path, sizeof s->space_path, "%s", space_path ? space_path : name);
            } else if (!strchr(name, '/') && find_space(path, name, s->space_path, sizeof s->space_path)) {
                s->space_text = read_text(s->space_path);
                if (!s->space_text)
                    perr(&c, nat, "search_space", "cannot read %s", s->space_path);
            } else {
                perr(&c, nat, "search_space",
                     "no search space '%s' (looked for search_spaces/%s.yaml next to the spec, "
                     "in $BNAS_SEARCH_SPACES and in the source tree)", name, name);
            }
            if (s->space_text) {
                c.in_space = 1;
                sdoc = build_doc(&c, s->space_text);
                if (sdoc) parse_space_map(&c, fy_document_root(sdoc), (ploc){1, 1}, "search_space");
                c.in_space = 0;
            }
        }
    } else {
        parse_space_map(&c, space, space_at, "search_space");
    }
    if (c.n_err == 0) {
        /* Cross-checks that need the whole space. */
        int cb = s->knob_dim[KNOB_CONV_BLOCKS], fl = s->knob_dim[KNOB_FC_LAYERS];
        double max_conv = cb >= 0 ? dim_max(&s->dims[cb]) : 0;
        double max_fc = fl >= 0 ? dim_max(&s->dims[fl]) : 1;
        if (max_conv + max_fc < 1)
            perr(&c, space_at, "search_space", "every architecture is empty (conv_blocks and "
                                               "fc_layers are both 0)");
        if (max_conv == 0 && s->knob_dim[KNOB_CONV_CHANNELS] >= 0) {
            spec_dim *d = &s->dims[s->knob_dim[KNOB_CONV_CHANNELS]];
            c.in_space = d->in_space_file;
            perr(&c, (ploc){d->line, d->col}, "search_space.conv_channels",
                 "set, but conv_blocks is never above 0");
        }
        /* Bop's knobs need an optimizer dimension that can be bop. */
        int od = s->knob_dim[KNOB_OPTIMIZER];
        if (!(od >= 0 && dim_max(&s->dims[od]) >= 1))
            for (int k = KNOB_BOP_GAMMA; k <= KNOB_MOMENTUM_FORMAT; k++)
                if (s->knob_dim[k] >= 0) {
                    spec_dim *d = &s->dims[s->knob_dim[k]];
                    char kp[64];
                    pathf(kp, sizeof kp, "search_space.%s", knob_names[k]);
                    c.in_space = d->in_space_file;
                    perr(&c, (ploc){d->line, d->col}, kp, "set, but optimizer is never bop");
                }
        c.in_space = 0;
    }
done:
    if (sdoc) fy_document_destroy(sdoc);
    if (doc) fy_document_destroy(doc);
    if (c.n_err) {
        free(s->space_text);
        s->space_text = NULL;
        return perr_report(&c, path, s->space_path);
    }
    if (!c.have_split_seed) s->split_seed = s->seed;
    s->text = dup_text(text);
    if (!s->name[0]) {
        const char *b = strrchr(path, '/');
        b = b ? b + 1 : path;
        snprintf(s->name, sizeof s->name, "%s", b);
        char *dot = strrchr(s->name, '.');
        if (dot && dot != s->name) *dot = 0;
    }
    uint64_t h = spec_fnv64(SPEC_FNV_INIT, text, strlen(text));
    if (s->space_text) h = spec_fnv64(h ^ 0x9e3779b97f4a7c15ULL, s->space_text, strlen(s->space_text));
    s->hash = h;
    return BN_OK;
}

int spec_load(spec *s, const char *path) {
    char *text = read_text(path);
    if (!text) {
        spec_defaults(s);
        return bn_error(BN_EIO, "%s: cannot read spec file", path);
    }
    int rc = spec_parse(s, path, text, NULL, NULL);
    free(text);
    return rc;
}

void spec_free(spec *s) {
    free(s->text);
    free(s->space_text);
    s->text = NULL;
    s->space_text = NULL;
}

void spec_eval_params(const spec_evaluator *ev, eval_params *out) {
    memset(out, 0, sizeof *out);
    for (int i = 0; i < ev->n_params && i < EVAL_MAX_PARAMS; i++) {
        snprintf(out->p[i].key, sizeof out->p[i].key, "%s", ev->params[i].key);
        snprintf(out->p[i].value, sizeof out->p[i].value, "%s", ev->params[i].value);
        out->n++;
    }
}

const char *spec_dim_name(const spec *s, int d) {
    const spec_dim *D = &s->dims[d];
    return D->recipe > 0 ? recipe_keys[D->recipe - 1].name : spec_knob_name(D->knob);
}

int spec_dim_values(const spec *s, int d, const char *label, const char *text, double *v) {
    pctx c;
    memset(&c, 0, sizeof c);
    c.s = (spec *)s; /* read only: values are checked, nothing is stored in s */
    c.file = label;
    const spec_dim *D = &s->dims[d];
    const recipe_key *rk = D->recipe > 0 ? &recipe_keys[D->recipe - 1] : NULL;
    char path[96];
    pathf(path, sizeof path, "%s", spec_dim_name(s, d));
    int n = 0;
    struct fy_document *doc = build_doc(&c, text);
    struct fy_node *root = doc ? fy_document_root(doc) : NULL;
    ploc at = {1, 1};
    if (root && fy_node_get_type(root) == FYNT_SEQUENCE) {
        void *it = NULL;
        struct fy_node *x;
        while ((x = fy_node_sequence_iterate(root, &it))) {
            char sub[112];
            pathf(sub, sizeof sub, "%s[%d]", path, n);
            if (n >= SPEC_MAX_CHOICES) {
                perr(&c, node_loc(x, at), sub, "too many values (at most %d)", SPEC_MAX_CHOICES);
                break;
            }
            if (fy_node_get_type(x) != FYNT_SCALAR) perr(&c, node_loc(x, at), sub, "expected a value, found %s", type_name(x));
            else dim_value(&c, D->knob, rk, x, at, sub, &v[n]);
            n++;
        }
        if (n == 0 && !c.n_err) perr(&c, at, path, "empty list of values");
    } else if (root && fy_node_get_type(root) == FYNT_SCALAR) {
        dim_value(&c, D->knob, rk, root, at, path, &v[n++]);
    } else if (root) {
        perr(&c, at, path, "expected a value or a list of values, found %s", type_name(root));
    }
    if (doc) fy_document_destroy(doc);
    return c.n_err ? (perr_report(&c, label, label), -1) : n;
}
