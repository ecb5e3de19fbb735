/*
** bnas export: writes chosen trials of a study (the Pareto front, or trials
** by number) as deployable files: for trial N in DIR,
**
**   trial_N.bnm            the model file (engine/model.h), the stored blob
**   bnas_trial_N.h / .c    standalone C99 packed inference (engine/codegen.h)
**   trial_N.md             a card: metrics, topology, recipe, seeds, spec
**                          hash, memory
*/
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/codegen.h"
#include "engine/err.h"
#include "engine/model.h"
#include "engine/packed.h"
#include "nas/commands.h"
#include "nas/spec.h"
#include "nas/store.h"

static const char *export_help =
    "usage: bnas export DB (--pareto | --trial N ...) -o DIR\n"
    "Writes each chosen trial of the study DB into DIR (created if missing):\n"
    "  trial_N.bnm          the model file (load with bnas eval, model_load)\n"
    "  bnas_trial_N.h/.c    standalone C99 packed inference for microcontrollers:\n"
    "                       int bnas_trial_N_predict(const uint8_t *image)\n"
    "  trial_N.md           a card: metrics, topology, recipe, seeds, spec hash, memory\n"
    "--pareto exports the Pareto front; --trial N (repeatable) exports trial N,\n"
    "which must be COMPLETE. Exit codes: 0 ok, 1 runtime error, 2 usage error.\n";

/* Trials of the study gathered in number order. */
typedef struct {
    store_trial *rows; /* (cap) */
    int n, cap;
} rows_ctx;

static int collect(void *user, const store_trial *t) {
    rows_ctx *c = user;
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 16;
        store_trial *nr = realloc(c->rows, (size_t)c->cap * sizeof *nr);
        if (!nr) return 1;
        c->rows = nr;
    }
    c->rows[c->n++] = *t;
    return 0;
}

/* mkdir -p dir. Returns BN_OK or BN_EIO. */
static int make_dir(const char *dir) {
    char buf[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof buf) return bn_error(BN_EIO, "%s: bad output directory", dir);
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char c = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return bn_error(BN_EIO, "%s: cannot create directory (%s)", buf, strerror(errno));
        buf[i] = c;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return bn_error(BN_EIO, "%s: not a directory", dir);
    if (access(dir, W_OK) != 0) return bn_error(BN_EIO, "%s: directory is not writable", dir);
    return BN_OK;
}

/* Writes len bytes to path through path.tmp and a rename. */
static int write_bytes(const char *path, const void *data, size_t len) {
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return bn_error(BN_EIO, "%s: path too long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return bn_error(BN_EIO, "%s: cannot create (%s)", tmp, strerror(errno));
    int bad = fwrite(data, 1, len, f) != len;
    if (fclose(f) != 0) bad = 1;
    if (bad || rename(tmp, path) != 0) {
        remove(tmp);
        return bn_error(BN_EIO, "%s: write failed", path);
    }
    return BN_OK;
}

/* Prints text for a markdown table cell: '|' escaped. */
static void cell(FILE *f, const char *text) {
    for (; *text; text++) {
        if (*text == '|') fputc('\\', f);
        fputc(*text, f);
    }
}

static const char *loss_name(int loss) { return loss == 1 ? "MHL" : "cross-entropy"; }
static const char *flip_name(int f) { return f == 1 ? "STE" : f == 2 ? "naive" : "none"; }

/* Study facts shown on every card. */
typedef struct {
    const char *db;          /* study file */
    store_summary sum;       /* name, strategy, spec hash */
    int have_spec;           /* 1: spec parsed */
    spec s;                  /* the frozen spec (objectives, study seed) */
} study_info;

static int write_card(const char *path, const study_info *si, const store_trial *t, const net *n,
                      const train_recipe *r, const codegen_info *ci, size_t blob_bytes) {
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return bn_error(BN_EIO, "%s: path too long", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return bn_error(BN_EIO, "%s: cannot create (%s)", tmp, strerror(errno));
    fprintf(f, "# Trial %d of study %s\n\n", t->number, si->sum.name);
    fprintf(f, "| field | value |\n| --- | --- |\n");
    fprintf(f, "| study file | %s |\n", si->db);
    fprintf(f, "| spec hash | %016llx |\n", (unsigned long long)si->sum.spec_hash);
    if (si->have_spec) fprintf(f, "| study seed | %llu |\n", (unsigned long long)si->s.seed);
    fprintf(f, "| strategy | %s (origin: %s, batch %d) |\n", si->sum.strategy, t->origin, t->batch);
    fprintf(f, "| trial | %d |\n| trial seed | %llu |\n", t->number, (unsigned long long)t->seed);
    fprintf(f, "| training seed | %llu |\n", (unsigned long long)r->seed);
    fprintf(f, "| topology | %s |\n", t->topology[0] ? t->topology : "(classifier only)");
    fprintf(f, "| input | %d x %d x %d (H x W x C), %d classes |\n", n->in_h, n->in_w, n->in_c,
            n->classes);
    fprintf(f, "| configuration | `");
    cell(f, t->config);
    fprintf(f, "` |\n| config hash | %016llx |\n| genome | `", (unsigned long long)t->hash);
    cell(f, t->genome);
    fprintf(f, "` |\n");
    fprintf(f, "| MACs per image | %.0f |\n", net_macs(n));
    fprintf(f, "| training wall time | %.1f s |\n\n", t->seconds);

    fprintf(f, "## Metrics\n\n| metric | value | objective |\n| --- | --- | --- |\n");
    for (int i = 0; i < t->n_metrics; i++) {
        const char *obj = "";
        if (si->have_spec)
            for (int j = 0; j < si->s.n_obj; j++)
                if (!strcmp(si->s.obj[j].metric, t->mname[i])) obj = si->s.obj[j].maximize ? "max" : "min";
        fprintf(f, "| %s | %.9g | %s |\n", t->mname[i], t->mvalue[i], obj);
    }

    fprintf(f, "\n## Layers\n\n| # | kind | input (H x W x C) | outputs | pool | fan-in |\n"
               "| --- | --- | --- | --- | --- | --- |\n");
    for (int l = 0; l < n->n_layers; l++) {
        const net_layer *L = &n->layers[l];
        fprintf(f, "| %d | %s%s | %d x %d x %d | %d | %s | %d |\n", l, L->kind == NET_CONV ? "conv 3x3" : "dense",
                L->last ? " (classifier)" : "", L->in_h, L->in_w, L->in_c, L->out_c, L->pool ? "2x2 max" : "-",
                L->fan_in);
    }

    fprintf(f, "\n## Training recipe\n\n| field | value |\n| --- | --- |\n");
    fprintf(f, "| epochs | %d |\n| batch | %d |\n", r->epochs, r->batch);
    if (r->optimizer == OPT_BOP)
        fprintf(f, "| optimizer | Bop (gamma %g, tau %g, gamma decay %g; momentum F(%d, %d, %d)%s), "
                   "Adam lr %g on batch norm and scale |\n",
                (double)r->bop_gamma, (double)r->bop_tau, (double)r->bop_gamma_decay, r->mom_e, r->mom_f,
                r->mom_bias, r->mom_subnormals ? " with subnormals" : "", (double)r->lr);
    else fprintf(f, "| optimizer | Adam, lr %g |\n", (double)r->lr);
    fprintf(f, "| lr schedule | x%g every %d epochs |\n", (double)r->lr_gamma, r->lr_step);
    fprintf(f, "| loss | %s |\n", loss_name(r->loss));
    if (r->loss == 1) fprintf(f, "| MHL b | %g |\n", (double)r->mhl_b);
    fprintf(f, "| flip training | %s (p01 %g, p10 %g) |\n", flip_name(r->flip), (double)r->p01, (double)r->p10);
    fprintf(f, "| margin regularizer | lambda %g, h %g |\n", (double)r->reg_lambda, (double)r->reg_h);
    fprintf(f, "| weight clipping | %s |\n", r->clip ? "yes" : "no");

    fprintf(f, "\n## Memory\n\n| item | bytes |\n| --- | --- |\n");
    fprintf(f, "| packed model (search objective, net_packed_bytes) | %zu |\n", net_packed_bytes(n));
    fprintf(f, "| generated C: weights (32-bit words) | %zu |\n", ci->weight_bytes);
    fprintf(f, "| generated C: thresholds (int32) | %zu |\n", ci->threshold_bytes);
    fprintf(f, "| generated C: invert bits | %zu |\n", ci->invert_bytes);
    fprintf(f, "| generated C: all constant data (incl. 4-byte scale) | %zu |\n", ci->const_bytes);
    fprintf(f, "| generated C: scratch RAM per call | %zu |\n", 4 * ci->scratch_words);
    fprintf(f, "| model file | %zu |\n", blob_bytes);
    fprintf(f, "\nOutput scale %.9g; the generated predict function uses %s.\n", (double)n->scale[0],
            ci->argmax_mode == CODEGEN_ARGMAX   ? "the integer argmax of the accumulators"
            : ci->argmax_mode == CODEGEN_ARGMIN ? "the integer argmin of the accumulators (negative scale)"
            : ci->argmax_mode == CODEGEN_CLASS0 ? "class 0 (zero scale)"
                                                : "float logits (scale outside the exact integer range)");
    fprintf(f, "\nFiles: trial_%d.bnm, bnas_trial_%d.h, bnas_trial_%d.c, this card.\n", t->number,
            t->number, t->number);
    int bad = ferror(f);
    if (fclose(f) != 0) bad = 1;
    if (bad || rename(tmp, path) != 0) {
        remove(tmp);
        return bn_error(BN_EIO, "%s: write failed", path);
    }
    return BN_OK;
}

/* Exports one COMPLETE trial into dir. */
static int export_trial(store *st, const study_info *si, const store_trial *t, const char *dir) {
    void *blob = NULL;
    size_t size = 0;
    char fmt[32], what[64], path[4200], name[32];
    net n;
    train_recipe r;
    packed_net p;
    codegen_info ci;
    int rc, have_net = 0, have_packed = 0;
    memset(&n, 0, sizeof n);
    if ((rc = store_get_model(st, t->number, &blob, &size, fmt, sizeof fmt))) goto done;
    snprintf(what, sizeof what, "trial %d model", t->number);
    if ((rc = model_load_mem(&n, &r, blob, size, what))) goto done;
    have_net = 1;
    if (snprintf(path, sizeof path, "%s/trial_%d.bnm", dir, t->number) >= (int)sizeof path) {
        rc = bn_error(BN_EIO, "%s: path too long", dir);
        goto done;
    }
    if ((rc = write_bytes(path, blob, size))) goto done;
    if ((rc = packed_from_net(&p, &n))) goto done;
    have_packed = 1;
    snprintf(name, sizeof name, "trial_%d", t->number);
    if ((rc = codegen_write_c(&p, name, dir, &ci))) goto done;
    snprintf(path, sizeof path, "%s/trial_%d.md", dir, t->number);
    if ((rc = write_card(path, si, t, &n, &r, &ci, size))) goto done;
    printf("trial %d -> %s/trial_%d.bnm, bnas_trial_%d.{h,c}, trial_%d.md (%s, %zu bytes of constants)\n",
           t->number, dir, t->number, t->number, t->number, t->topology[0] ? t->topology : "classifier only",
           ci.const_bytes);
done:
    if (have_packed) packed_free(&p);
    if (have_net) net_free(&n);
    free(blob);
    return rc;
}

static int parse_number(const char *v, int *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < 0 || x > 1000000000L) return 0;
    *out = (int)x;
    return 1;
}

int cmd_export(int argc, char **argv) {
    const char *db = NULL, *dir = NULL;
    int pareto = 0, n_want = 0;
    int *want = calloc((size_t)argc + 1, sizeof(int));
    int code = 2;
    store *st = NULL;
    study_info si;
    rows_ctx all = {NULL, 0, 0}, front = {NULL, 0, 0};
    memset(&si, 0, sizeof si);
    if (!want) {
        fprintf(stderr, "bnas export: out of memory\n");
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(export_help, stdout);
            code = 0;
            goto done;
        } else if (!strcmp(a, "--pareto")) pareto = 1;
        else if (!strcmp(a, "--trial")) {
            if (i + 1 >= argc || !parse_number(argv[i + 1], &want[n_want])) {
                fprintf(stderr, "bnas export: --trial takes a trial number\n%s", export_help);
                goto done;
            }
            n_want++, i++;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "bnas export: %s takes a directory\n%s", a, export_help);
                goto done;
            }
            dir = argv[++i];
        } else if (a[0] == '-' || db) {
            fprintf(stderr, "bnas export: unexpected argument '%s'\n%s", a, export_help);
            goto done;
        } else db = a;
    }
    if (!db || !dir || (!pareto && n_want == 0)) {
        fprintf(stderr, "bnas export: %s\n%s",
                !db ? "no study file given" : !dir ? "no output directory given (-o DIR)"
                                               : "nothing chosen (--pareto or --trial N)",
                export_help);
        goto done;
    }
    code = 1;
    si.db = db;
    if (store_open(&st, db, 1) || store_summary_get(st, &si.sum)) {
        fprintf(stderr, "bnas export: %s\n", bn_errmsg());
        goto done;
    }
    {
        char *path = NULL, *text = NULL, *space_path = NULL, *space_text = NULL;
        uint64_t hash = 0;
        if (store_get_spec(st, &path, &text, &space_path, &space_text, &hash) == BN_OK &&
            spec_parse(&si.s, path ? path : db, text ? text : "", space_path, space_text) == BN_OK)
            si.have_spec = 1;
        free(path), free(text), free(space_path), free(space_text);
    }
    if (store_each_trial(st, 0, collect, &all) || (pareto && store_each_trial(st, 1, collect, &front))) {
        fprintf(stderr, "bnas export: %s\n", bn_errmsg());
        goto done;
    }
    /* The chosen trials, checked before anything is written. */
    int n_pick = 0;
    const store_trial **pick = calloc((size_t)(front.n + n_want + 1), sizeof *pick);
    if (!pick) goto done;
    for (int i = 0; i < front.n; i++) pick[n_pick++] = &front.rows[i];
    for (int k = 0; k < n_want; k++) {
        const store_trial *t = NULL;
        for (int i = 0; i < all.n; i++)
            if (all.rows[i].number == want[k]) t = &all.rows[i];
        if (!t) {
            fprintf(stderr, "bnas export: %s has no trial %d (it has %d trials)\n", db, want[k], all.n);
            free(pick);
            goto done;
        }
        if (t->state != TRIAL_COMPLETE) {
            fprintf(stderr, "bnas export: trial %d of %s is %s; only COMPLETE trials have a model\n",
                    want[k], db, trial_state_name(t->state));
            free(pick);
            goto done;
        }
        int dup = 0;
        for (int j = 0; j < n_pick; j++) dup |= pick[j]->number == t->number;
        if (!dup) pick[n_pick++] = t;
    }
    if (n_pick == 0) {
        fprintf(stderr, "bnas export: %s has no Pareto front yet (no COMPLETE trial)\n", db);
        free(pick);
        goto done;
    }
    if (make_dir(dir)) {
        fprintf(stderr, "bnas export: %s\n", bn_errmsg());
        free(pick);
        goto done;
    }
    for (int i = 0; i < n_pick; i++)
        if (export_trial(st, &si, pick[i], dir)) {
            fprintf(stderr, "bnas export: trial %d: %s\n", pick[i]->number, bn_errmsg());
            free(pick);
            goto done;
        }
    free(pick);
    code = 0;
done:
    if (si.have_spec) spec_free(&si.s);
    if (st) store_close(st);
    free(all.rows);
    free(front.rows);
    free(want);
    return code;
}
