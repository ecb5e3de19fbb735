/*
** The training recipe's key table and everything it drives (engine/recipe.h).
*/
#include "engine/recipe.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/err.h"
#include "engine/fpfmt.h"

_Static_assert(sizeof(train_loss) == sizeof(int) && sizeof(train_flip) == sizeof(int) &&
                   sizeof(train_optimizer) == sizeof(int) && sizeof(train_bn0) == sizeof(int),
               "word-valued recipe fields are held as int");

#define OFF(f) offsetof(train_recipe, f)
#define INT_HI 2147483647.0
#define F_HI ((double)FLT_MAX)

/* In the binary order of model formats 1 to 5 (recipe_read_legacy walks it).
   The last column: 1 if a spec's search space may set the key (the spec's own
   knobs, epochs, lr, loss, ..., keep their search ranges in nas/spec.c). */
const recipe_key recipe_keys[] = {
    {"epochs", "epochs", RECIPE_INT, OFF(epochs), 0, 10, 0, INT_HI, {0}, 1, "N", "passes over the training set", 0},
    {"batch", "batch", RECIPE_INT, OFF(batch), 0, 256, 0, INT_HI, {0}, 1, "N", "mini-batch size", 0},
    {"lr", "lr", RECIPE_FLOAT, OFF(lr), 0, 1e-3, 0, F_HI, {0}, 1, "X", "Adam learning rate", 0},
    {"lr_step", "lr-step", RECIPE_INT, OFF(lr_step), 0, 10, 0, INT_HI, {0}, 1, "N",
     "multiply lr by lr-gamma every N epochs (0: never)", 1},
    {"lr_gamma", "lr-gamma", RECIPE_FLOAT, OFF(lr_gamma), 0, 0.5, 0, F_HI, {0}, 1, "X", "step decay factor", 1},
    {"clip", "clip", RECIPE_FLAG, OFF(clip), 0, 0, 0, 1, {0}, 1, NULL, "clip latent weights to [-1, 1]", 1},
    {"loss", "loss", RECIPE_WORD, OFF(loss), 0, LOSS_CE, 0, 1, {"ce", "mhl", NULL}, 1, "ce|mhl",
     "cross-entropy or the modified hinge loss", 0},
    {"mhl_b", "mhl-b", RECIPE_FLOAT, OFF(mhl_b), 0, 128, 0, F_HI, {0}, 1, "X", "MHL margin b", 0},
    {"flip", "flip", RECIPE_WORD, OFF(flip), 0, FLIP_NONE, 0, 2, {"none", "ste", "naive", NULL}, 1,
     "none|ste|naive", "flip training (needs --p, --p01/--p10 or --flip-table)", 0},
    {"p01", "p01", RECIPE_FLOAT, OFF(p01), 0, 0, 0, 1, {0}, 1, "X", "flip training: P(stored -1 reads +1)", 0},
    {"p10", "p10", RECIPE_FLOAT, OFF(p10), 0, 0, 0, 1, {0}, 1, "X", "flip training: P(stored +1 reads -1)", 0},
    {"p", "p", RECIPE_PAIR, OFF(p01), OFF(p10), 0, 0, 1, {0}, 0, "X", "--p01 X --p10 X", 0},
    {"reg_lambda", "reg-lambda", RECIPE_FLOAT, OFF(reg_lambda), 0, 0, 0, F_HI, {0}, 1, "X",
     "direct margin regularizer: lambda * mean max(0, H - margin in flips)", 1},
    {"reg_h", "reg-h", RECIPE_FLOAT, OFF(reg_h), 0, 1, -F_HI, F_HI, {0}, 1, "H", "the regularizer's margin level", 1},
    {"seed", "seed", RECIPE_U64, OFF(seed), 0, 1, 0, 0, {0}, 1, "N", "keys every random stream", 0},
    {"optimizer", "optimizer", RECIPE_WORD, OFF(optimizer), 0, OPT_ADAM, 0, 1, {"adam", "bop", NULL}, 2,
     "adam|bop", "Bop: binary weights by Bop, batch norm and scale by Adam (--lr)", 0},
    {"bop_gamma", "bop-gamma", RECIPE_FLOAT, OFF(bop_gamma), 0, 1e-3, 0, 1, {0}, 2, "X", "Bop momentum rate", 0},
    {"bop_tau", "bop-tau", RECIPE_FLOAT, OFF(bop_tau), 0, 1e-6, 0, F_HI, {0}, 2, "X", "Bop flip threshold", 0},
    {"bop_gamma_decay", "bop-gamma-decay", RECIPE_FLOAT, OFF(bop_gamma_decay), 0, 1, 0, F_HI, {0}, 2, "X",
     "multiply gamma by X every --lr-step epochs", 1},
    {"mom_e", NULL, RECIPE_INT, OFF(mom_e), 0, 8, 0, 64, {0}, 2, NULL, "Bop momentum format: exponent bits", 0},
    {"mom_f", NULL, RECIPE_INT, OFF(mom_f), 0, 23, 0, 64, {0}, 2, NULL, "Bop momentum format: fraction bits", 0},
    {"mom_bias", NULL, RECIPE_INT, OFF(mom_bias), 0, 127, -INT_HI, INT_HI, {0}, 2, NULL,
     "Bop momentum format: exponent bias", 0},
    {"mom_subnormals", NULL, RECIPE_FLAG, OFF(mom_subnormals), 0, 1, 0, 1, {0}, 2, NULL,
     "Bop momentum format: with subnormals", 0},
    {"momentum_format", "momentum-format", RECIPE_FORMAT, OFF(mom_e), 0, 0, 0, 0, {0}, 0, "F",
     "Bop momentum format: fp32, fp16, bf16, eXmY[bZ][n] (e.g. e5m10, e4m7b20n)", 0},
    {"xnor_p01", "xnor-p01", RECIPE_FLOAT, OFF(xnor_p01), 0, 0, 0, 1, {0}, 3, "X",
     "XNOR product errors while training (not the first layer): P(-1 reads +1)", 1},
    {"xnor_p10", "xnor-p10", RECIPE_FLOAT, OFF(xnor_p10), 0, 0, 0, 1, {0}, 3, "X", "P(+1 product reads -1)", 1},
    {"xnor_p", "xnor-p", RECIPE_PAIR, OFF(xnor_p01), OFF(xnor_p10), 0, 0, 1, {0}, 0, "X",
     "--xnor-p01 X --xnor-p10 X", 0},
    {"lta_n", "lta-n", RECIPE_INT, OFF(lta_n), 0, 0, 0, INT_HI, {0}, 4, "N",
     "LTA-aware training: hidden layers after the first threshold columns of N products (evaluators/lta.h)", 1},
    {"act_p01", "act-p01", RECIPE_FLOAT, OFF(act_p01), 0, 0, 0, 1, {0}, 4, "X",
     "activation flips while training (not the first layer): P(-1 reads +1)", 1},
    {"act_p10", "act-p10", RECIPE_FLOAT, OFF(act_p10), 0, 0, 0, 1, {0}, 4, "X", "P(+1 output reads -1)", 1},
    {"act_p", "act-p", RECIPE_PAIR, OFF(act_p01), OFF(act_p10), 0, 0, 1, {0}, 0, "X", "--act-p01 X --act-p10 X", 0},
    {"flip_rows", NULL, RECIPE_INT, OFF(flip_rows), 0, 0, 0, TRAIN_FLIP_ROWS, {0}, 5, NULL,
     "rows of the flip-rate table (0: fixed p01, p10)", 0},
    {"flip_t", NULL, RECIPE_ROWS, OFF(flip_t), 0, 0, -F_HI, F_HI, {0}, 5, NULL, "flip-rate table: abscissa", 0},
    {"flip_p01", NULL, RECIPE_ROWS, OFF(flip_p01), 0, 0, 0, 1, {0}, 5, NULL, "flip-rate table: p01", 0},
    {"flip_p10", NULL, RECIPE_ROWS, OFF(flip_p10), 0, 0, 0, 1, {0}, 5, NULL, "flip-rate table: p10", 0},
    {"flip_bn0", "flip-bn0", RECIPE_WORD, OFF(flip_bn0), 0, BN0_FLIPPED, 0, 1, {"flipped", "clean", NULL}, 6,
     "flipped|clean", "flip training: the first layer's batch-norm statistics from the flipped or the unflipped products", 1},
};
const int recipe_n_keys = (int)(sizeof recipe_keys / sizeof recipe_keys[0]);

static int stored(const recipe_key *k) { return k->since > 0; }

/* Bit equality of floats (-0 is not 0: the text must keep the bits). */
static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

const recipe_key *recipe_find(const char *name) {
    for (int i = 0; i < recipe_n_keys; i++)
        if (!strcmp(recipe_keys[i].name, name)) return &recipe_keys[i];
    return NULL;
}

const recipe_key *recipe_find_option(const char *opt) {
    for (int i = 0; i < recipe_n_keys; i++)
        if (recipe_keys[i].option && !strcmp(recipe_keys[i].option, opt)) return &recipe_keys[i];
    return NULL;
}

static void *field(train_recipe *r, size_t off) { return (char *)r + off; }
static const void *cfield(const train_recipe *r, size_t off) { return (const char *)r + off; }

double recipe_number(const train_recipe *r, const recipe_key *k) {
    switch (k->type) {
    case RECIPE_FLOAT: return *(const float *)cfield(r, k->offset);
    case RECIPE_U64: return (double)*(const uint64_t *)cfield(r, k->offset);
    case RECIPE_INT:
    case RECIPE_WORD:
    case RECIPE_FLAG: return *(const int *)cfield(r, k->offset);
    default: BN_ASSERT(0 && "not a scalar recipe key"); return 0;
    }
}

static int integral(const recipe_key *k) {
    return k->type == RECIPE_INT || k->type == RECIPE_WORD || k->type == RECIPE_FLAG;
}

static int in_range(const recipe_key *k, double v) {
    if (k->type == RECIPE_U64) return 1;
    if (!isfinite(v) || v < k->lo || v > k->hi) return 0;
    if (integral(k) && v != floor(v)) return 0;
    return 1;
}

static int range_error(const recipe_key *k, double v) {
    if (k->type == RECIPE_WORD) return bn_error(BN_EARG, "recipe key %s: unknown code %g", k->name, v);
    return bn_error(BN_EARG, "recipe key %s: %g is not %s in [%g, %g]", k->name, v,
                    integral(k) ? "an integer" : "a number", k->lo, k->hi);
}

int recipe_set_number(train_recipe *r, const recipe_key *k, double v) {
    if (!in_range(k, v)) return range_error(k, v);
    switch (k->type) {
    case RECIPE_FLOAT: *(float *)field(r, k->offset) = (float)v; break;
    case RECIPE_U64: *(uint64_t *)field(r, k->offset) = (uint64_t)v; break;
    case RECIPE_INT:
    case RECIPE_WORD:
    case RECIPE_FLAG: *(int *)field(r, k->offset) = (int)v; break;
    case RECIPE_PAIR: *(float *)field(r, k->offset) = *(float *)field(r, k->offset2) = (float)v; break;
    default: return bn_error(BN_EARG, "recipe key %s is not a number", k->name);
    }
    return BN_OK;
}

/* Strict number parsing: the whole text, no blanks. */
static int parse_double(const char *s, double *v) {
    char *end;
    if (!*s || *s == ' ' || *s == '\t') return 0;
    *v = strtod(s, &end);
    return *end == 0;
}

int recipe_set(train_recipe *r, const recipe_key *k, const char *text) {
    double v;
    switch (k->type) {
    case RECIPE_WORD:
        for (int i = 0; k->words[i]; i++)
            if (!strcmp(text, k->words[i])) return recipe_set_number(r, k, i);
        {
            char list[64] = "";
            for (int i = 0; k->words[i]; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? (k->words[i + 1] ? ", " : " or ") : "",
                         k->words[i]);
            return bn_error(BN_EARG, "recipe key %s: '%s' is not %s", k->name, text, list);
        }
    case RECIPE_U64: {
        char *end;
        if (*text < '0' || *text > '9') return bn_error(BN_EARG, "recipe key %s: '%s' is not an unsigned integer", k->name, text);
        errno = 0;
        unsigned long long u = strtoull(text, &end, 10);
        if (*end || errno) return bn_error(BN_EARG, "recipe key %s: '%s' is not an unsigned integer", k->name, text);
        *(uint64_t *)field(r, k->offset) = (uint64_t)u;
        return BN_OK;
    }
    case RECIPE_FORMAT: {
        fpfmt F;
        if (fpfmt_parse(&F, text)) {
            char msg[200];
            snprintf(msg, sizeof msg, "%s", bn_errmsg());
            return bn_error(BN_EARG, "recipe key %s: %s", k->name, msg);
        }
        r->mom_e = F.e, r->mom_f = F.f, r->mom_bias = F.bias, r->mom_subnormals = F.subnormals;
        return BN_OK;
    }
    case RECIPE_ROWS: {
        float rows[TRAIN_FLIP_ROWS] = {0};
        const char *p = text;
        for (int i = 0;; i++) {
            char *end;
            if (i == TRAIN_FLIP_ROWS)
                return bn_error(BN_EARG, "recipe key %s: more than %d values", k->name, TRAIN_FLIP_ROWS);
            v = strtod(p, &end);
            if (end == p || !in_range(k, v))
                return bn_error(BN_EARG, "recipe key %s: value %d of '%s' is not a number in [%g, %g]", k->name, i + 1,
                                text, k->lo, k->hi);
            rows[i] = (float)v;
            if (!*end) break;
            if (*end != ',') return bn_error(BN_EARG, "recipe key %s: expected ',' in '%s'", k->name, text);
            p = end + 1;
        }
        memcpy(field(r, k->offset), rows, sizeof rows);
        return BN_OK;
    }
    default:
        if (!parse_double(text, &v))
            return bn_error(BN_EARG, "recipe key %s: '%s' is not a number", k->name, text);
        return recipe_set_number(r, k, v);
    }
}

int recipe_check(const train_recipe *r) {
    for (int i = 0; i < recipe_n_keys; i++) {
        const recipe_key *k = &recipe_keys[i];
        if (!stored(k)) continue;
        if (k->type == RECIPE_ROWS) {
            const float *row = cfield(r, k->offset);
            for (int j = 0; j < TRAIN_FLIP_ROWS; j++)
                if (!in_range(k, row[j]))
                    return bn_error(BN_EARG, "recipe key %s: row %d value %g is not in [%g, %g]", k->name, j,
                                    (double)row[j], k->lo, k->hi);
        } else if (!in_range(k, recipe_number(r, k))) {
            return range_error(k, recipe_number(r, k));
        }
    }
    for (int i = 1; i < r->flip_rows; i++)
        if (!(r->flip_t[i] > r->flip_t[i - 1]))
            return bn_error(BN_EARG, "recipe key flip_t: row %d (%g) does not increase", i, (double)r->flip_t[i]);
    if (r->optimizer == OPT_BOP) {
        fpfmt F;
        if (fpfmt_init(&F, r->mom_e, r->mom_f, r->mom_bias, r->mom_subnormals)) {
            char msg[200];
            snprintf(msg, sizeof msg, "%s", bn_errmsg());
            return bn_error(BN_EARG, "recipe: bad Bop momentum format: %s", msg);
        }
    }
    return BN_OK;
}

train_recipe train_recipe_default(void) {
    train_recipe r;
    memset(&r, 0, sizeof r);
    for (int i = 0; i < recipe_n_keys; i++) {
        const recipe_key *k = &recipe_keys[i];
        if (!stored(k)) continue;
        if (k->type == RECIPE_ROWS) {
            float *row = field(&r, k->offset);
            for (int j = 0; j < TRAIN_FLIP_ROWS; j++) row[j] = (float)k->def;
        } else {
            BN_ASSERT(recipe_set_number(&r, k, k->def) == BN_OK);
        }
    }
    return r;
}

/* ---------------------------------------------------------------------------
** Text
*/

/* An integral value as an integer ("-40"), else the shortest "%.Ng" that
   reads back as f ("0.05", "3e-07"). */
static void format_float(char *buf, size_t cap, float f) {
    if (f == truncf(f) && fabsf(f) < 1e9f) {
        snprintf(buf, cap, "%.0f", (double)f);
        return;
    }
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, cap, "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f) return;
    }
}

/* Value text of stored key k of r into buf; 0 if it equals the default. */
static int format_value(const train_recipe *r, const recipe_key *k, char *buf, size_t cap) {
    if (k->type == RECIPE_ROWS) {
        const float *row = cfield(r, k->offset);
        int n = TRAIN_FLIP_ROWS;
        while (n > 0 && same_bits(row[n - 1], (float)k->def)) n--;
        if (n == 0) return 0;
        size_t at = 0;
        for (int j = 0; j < n; j++) {
            char one[32];
            format_float(one, sizeof one, row[j]);
            at += (size_t)snprintf(buf + at, cap - at, "%s%s", j ? "," : "", one);
        }
        return 1;
    }
    switch (k->type) {
    case RECIPE_FLOAT: {
        float f = *(const float *)cfield(r, k->offset);
        if (same_bits(f, (float)k->def)) return 0;
        format_float(buf, cap, f);
        return 1;
    }
    case RECIPE_U64: {
        uint64_t u = *(const uint64_t *)cfield(r, k->offset);
        if (u == (uint64_t)k->def) return 0;
        snprintf(buf, cap, "%llu", (unsigned long long)u);
        return 1;
    }
    default: {
        int v = *(const int *)cfield(r, k->offset);
        if (v == (int)k->def) return 0;
        int nw = 0;
        while (k->type == RECIPE_WORD && nw < RECIPE_MAX_WORDS && k->words[nw]) nw++;
        if (k->type == RECIPE_WORD && v >= 0 && v < nw) snprintf(buf, cap, "%s", k->words[v]);
        else snprintf(buf, cap, "%d", v); /* an unknown code: recipe_check refuses it */
        return 1;
    }
    }
}

char *recipe_to_text(const train_recipe *r, size_t *len) {
    size_t cap = 64, at = 0;
    char *out = bn_malloc(cap);
    out[0] = 0;
    for (int i = 0; i < recipe_n_keys; i++) {
        const recipe_key *k = &recipe_keys[i];
        char v[TRAIN_FLIP_ROWS * 20];
        if (!stored(k) || !format_value(r, k, v, sizeof v)) continue;
        size_t need = strlen(k->name) + strlen(v) + 3;
        if (at + need > cap) {
            while (at + need > cap) cap *= 2;
            char *grown = bn_malloc(cap);
            memcpy(grown, out, at + 1);
            free(out);
            out = grown;
        }
        at += (size_t)snprintf(out + at, cap - at, "%s=%s\n", k->name, v);
    }
    if (len) *len = at;
    return out;
}

int recipe_from_text(train_recipe *r, const char *text, size_t len, const char *name) {
    train_recipe rec = train_recipe_default();
    int last = -1, line = 0;
    size_t at = 0;
    while (at < len) {
        line++;
        const char *nl = memchr(text + at, '\n', len - at);
        if (!nl) return bn_error(BN_EFORMAT, "%s: recipe line %d does not end in a newline", name, line);
        size_t n = (size_t)(nl - (text + at));
        char buf[TRAIN_FLIP_ROWS * 20 + 64];
        if (n >= sizeof buf) return bn_error(BN_EFORMAT, "%s: recipe line %d is too long", name, line);
        memcpy(buf, text + at, n);
        buf[n] = 0;
        at += n + 1;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)buf[i] < 0x21 || (unsigned char)buf[i] > 0x7e)
                return bn_error(BN_EFORMAT, "%s: recipe line %d contains byte 0x%02x", name, line,
                                (unsigned)(unsigned char)buf[i]);
        char *eq = strchr(buf, '=');
        if (!eq) return bn_error(BN_EFORMAT, "%s: recipe line %d '%.40s' is not key=value", name, line, buf);
        *eq = 0;
        const recipe_key *k = recipe_find(buf);
        if (!k || !stored(k))
            return bn_error(BN_EFORMAT, "%s: recipe line %d: unknown key '%.40s' (written by a newer bnas?)", name,
                            line, buf);
        int idx = (int)(k - recipe_keys);
        if (idx <= last)
            return bn_error(BN_EFORMAT, "%s: recipe line %d: key %s repeated or out of order", name, line, k->name);
        last = idx;
        if (recipe_set(&rec, k, eq + 1)) {
            char msg[300];
            snprintf(msg, sizeof msg, "%s", bn_errmsg());
            return bn_error(BN_EFORMAT, "%s: recipe line %d: %s", name, line, msg);
        }
    }
    if (recipe_check(&rec)) {
        char msg[300];
        snprintf(msg, sizeof msg, "%s", bn_errmsg());
        return bn_error(BN_EFORMAT, "%s: %s", name, msg);
    }
    size_t back_len;
    char *back = recipe_to_text(&rec, &back_len);
    int same = back_len == len && memcmp(back, text, len) == 0;
    free(back);
    if (!same) return bn_error(BN_EFORMAT, "%s: recipe text is not in canonical form (defaults written out or a "
                               "number not in its shortest form)", name);
    *r = rec;
    return BN_OK;
}

/* ---------------------------------------------------------------------------
** Binary recipe blocks of model formats 1 to 5
*/

static size_t legacy_size(const recipe_key *k) {
    return k->type == RECIPE_U64 ? 8 : k->type == RECIPE_ROWS ? 4 * TRAIN_FLIP_ROWS : 4;
}

size_t recipe_legacy_bytes(uint32_t version) {
    size_t n = 0;
    for (int i = 0; i < recipe_n_keys; i++)
        if (stored(&recipe_keys[i]) && (uint32_t)recipe_keys[i].since <= version) n += legacy_size(&recipe_keys[i]);
    return n;
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void recipe_read_legacy(train_recipe *r, const uint8_t *p, uint32_t version) {
    for (int i = 0; i < recipe_n_keys; i++) {
        const recipe_key *k = &recipe_keys[i];
        if (!stored(k) || (uint32_t)k->since > version) {
            /* version 1 predates the optimizer: its files load as Adam with Bop's defaults */
            if (version == 1 && k->since == 2) BN_ASSERT(recipe_set_number(r, k, k->def) == BN_OK);
            continue;
        }
        uint32_t u = le32(p);
        switch (k->type) {
        case RECIPE_U64: *(uint64_t *)field(r, k->offset) = (uint64_t)u | (uint64_t)le32(p + 4) << 32; break;
        case RECIPE_FLOAT: memcpy(field(r, k->offset), &u, 4); break;
        case RECIPE_ROWS:
            for (int j = 0; j < TRAIN_FLIP_ROWS; j++) {
                uint32_t w = le32(p + 4 * j);
                memcpy((float *)field(r, k->offset) + j, &w, 4);
            }
            break;
        default: memcpy(field(r, k->offset), &u, 4); break; /* two's complement int */
        }
        p += legacy_size(k);
    }
}

/* ---------------------------------------------------------------------------
** Help
*/

void recipe_print_help(FILE *f, const train_recipe *shown) {
    for (int i = 0; i < recipe_n_keys; i++) {
        const recipe_key *k = &recipe_keys[i];
        if (!k->option) continue;
        char head[64], def[64] = "";
        snprintf(head, sizeof head, "--%s%s%s", k->option, k->arg ? " " : "", k->arg ? k->arg : "");
        if (k->type == RECIPE_WORD) {
            int v = (int)recipe_number(shown, k);
            snprintf(def, sizeof def, " (default %s)", v >= 0 && v < RECIPE_MAX_WORDS && k->words[v] ? k->words[v] : "?");
        } else if (k->type == RECIPE_FORMAT) {
            fpfmt F;
            if (fpfmt_init(&F, shown->mom_e, shown->mom_f, shown->mom_bias, shown->mom_subnormals) == BN_OK) {
                char name[32];
                fpfmt_name(&F, name, sizeof name);
                snprintf(def, sizeof def, " (default %s)", name);
            }
        } else if (k->type == RECIPE_PAIR) {
            def[0] = 0;
        } else if (k->type != RECIPE_FLAG) {
            char v[32];
            if (k->type == RECIPE_FLOAT) format_float(v, sizeof v, (float)recipe_number(shown, k));
            else if (k->type == RECIPE_U64) snprintf(v, sizeof v, "%llu", *(const unsigned long long *)cfield(shown, k->offset));
            else snprintf(v, sizeof v, "%d", (int)recipe_number(shown, k));
            snprintf(def, sizeof def, " (default %s)", v);
        }
        fprintf(f, "  %-22s %s%s\n", head, k->doc, def);
    }
}
