/*
** Model file writer and reader: the byte layout documented in engine/model.h,
** serialized field by field in little-endian order whatever the host's order,
** so files are portable and bit-exact (floats are copied as their bit patterns).
*/
#define _POSIX_C_SOURCE 200809L
#include "engine/model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "engine/err.h"
#include "engine/fpfmt.h"

#define MODEL_HEAD 28    /* bytes before the topology string */
#define MODEL_FIXED 372  /* bytes of everything but topology, params and stats (version 5) */
#define MODEL_FIXED_V4 176 /* the same in version 4 (no flip-rate table) */
#define MODEL_FIXED_V3 164 /* the same in version 3 (no LTA / activation-flip fields) */
#define MODEL_FIXED_V2 156 /* the same in version 2 (no XNOR product rates) */
#define MODEL_FIXED_V1 124 /* the same in version 1 (no optimizer fields) */
#define MODEL_RECIPE_V1 60 /* recipe block bytes in version 1 */
#define MODEL_RECIPE_V2 92 /* recipe block bytes in version 2 */
#define MODEL_RECIPE_V3 100 /* recipe block bytes in version 3 */
#define MODEL_RECIPE_V4 112 /* recipe block bytes in version 4 */
#define MODEL_RECIPE 308   /* recipe block bytes in version 5 */
#define MODEL_MAX_DIM 65536
#define MODEL_MAX_FILE ((uint64_t)1 << 33) /* larger files are refused, not allocated */

/* ---------------------------------------------------------------------------
** Little-endian put/get
*/

typedef struct {
    uint8_t *p; /* (cap) output buffer */
    size_t at;  /* bytes written */
} model_w;

static void put_u32(model_w *w, uint32_t v) {
    for (int i = 0; i < 4; i++) w->p[w->at++] = (uint8_t)(v >> (8 * i));
}
static void put_u64(model_w *w, uint64_t v) {
    for (int i = 0; i < 8; i++) w->p[w->at++] = (uint8_t)(v >> (8 * i));
}
static void put_i32(model_w *w, int v) { put_u32(w, (uint32_t)v); }
static void put_f32(model_w *w, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    put_u32(w, u);
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const uint8_t *p) {
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}
static int get_i32(const uint8_t *p) {
    uint32_t u = get_u32(p);
    int v;
    memcpy(&v, &u, 4); /* two's complement reinterpretation, no UB */
    return v;
}
static float get_f32(const uint8_t *p) {
    uint32_t u = get_u32(p);
    float v;
    memcpy(&v, &u, 4);
    return v;
}

/* zlib crc32 over any length (crc32 itself takes a uInt length). */
static uint32_t model_crc(const uint8_t *p, size_t len) {
    uLong c = crc32(0L, Z_NULL, 0);
    while (len > 0) {
        uInt chunk = len > (1u << 30) ? (1u << 30) : (uInt)len;
        c = crc32(c, p, chunk);
        p += chunk;
        len -= chunk;
    }
    return (uint32_t)c;
}

/* Parameter and statistics counts of topology a on the given input, computed
   in 64 bits from the shapes, following net_create's layout. Lets the reader
   refuse a file whose counts do not match before net_create allocates or
   multiplies anything in int. Returns 0 if a size is absurd (> 2^40). */
static int model_counts(const arch *a, int in_c, int in_h, int in_w, int classes, uint64_t *np,
                        uint64_t *ns) {
    const uint64_t limit = (uint64_t)1 << 40;
    uint64_t c = (uint64_t)in_c, h = (uint64_t)in_h, w = (uint64_t)in_w;
    uint64_t p = 1, s = 0; /* the scale */
    for (int i = 0; i < a->n; i++) {
        const arch_item *it = &a->items[i];
        if (it->kind == ARCH_POOL) continue;
        uint64_t fan_in = it->kind == ARCH_CONV ? 9 * c : c * h * w;
        if (fan_in > limit) return 0;
        p += (uint64_t)it->size * fan_in + 2 * (uint64_t)it->size;
        s += 2 * (uint64_t)it->size;
        if (it->kind == ARCH_CONV) {
            if (i + 1 < a->n && a->items[i + 1].kind == ARCH_POOL) h /= 2, w /= 2;
        } else {
            h = w = 1;
        }
        c = (uint64_t)it->size;
        if (p > limit) return 0;
    }
    p += (uint64_t)classes * c * h * w;
    if (p > limit) return 0;
    *np = p;
    *ns = s;
    return 1;
}

/* ---------------------------------------------------------------------------
** Serialization
*/

size_t model_size(const net *n) {
    char topo[MODEL_MAX_TOPO + 1];
    arch_format(&n->arch, topo, sizeof topo);
    return MODEL_FIXED + strlen(topo) + 4 * (n->n_params + n->n_stats);
}

int model_save_mem(const net *n, const train_recipe *r, uint8_t **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    char topo[MODEL_MAX_TOPO + 2];
    arch_format(&n->arch, topo, sizeof topo);
    size_t t = strlen(topo);
    if (t > MODEL_MAX_TOPO)
        return bn_error(BN_EARG, "model: topology string longer than %d bytes", MODEL_MAX_TOPO);
    train_recipe zero;
    memset(&zero, 0, sizeof zero);
    if (!r) r = &zero;

    size_t total = MODEL_FIXED + t + 4 * (n->n_params + n->n_stats);
    model_w w = {bn_malloc(total), 0};
    memcpy(w.p, MODEL_MAGIC, 8);
    w.at = 8;
    put_u32(&w, MODEL_VERSION);
    put_u32(&w, MODEL_ENDIAN);
    put_u64(&w, (uint64_t)total);
    put_u32(&w, (uint32_t)t);
    memcpy(w.p + w.at, topo, t);
    w.at += t;
    put_i32(&w, n->in_c);
    put_i32(&w, n->in_h);
    put_i32(&w, n->in_w);
    put_i32(&w, n->classes);
    put_i32(&w, r->epochs);
    put_i32(&w, r->batch);
    put_f32(&w, r->lr);
    put_i32(&w, r->lr_step);
    put_f32(&w, r->lr_gamma);
    put_i32(&w, r->clip);
    put_i32(&w, (int)r->loss);
    put_f32(&w, r->mhl_b);
    put_i32(&w, (int)r->flip);
    put_f32(&w, r->p01);
    put_f32(&w, r->p10);
    put_f32(&w, r->reg_lambda);
    put_f32(&w, r->reg_h);
    put_u64(&w, r->seed);
    put_i32(&w, (int)r->optimizer);
    put_f32(&w, r->bop_gamma);
    put_f32(&w, r->bop_tau);
    put_f32(&w, r->bop_gamma_decay);
    put_i32(&w, r->mom_e);
    put_i32(&w, r->mom_f);
    put_i32(&w, r->mom_bias);
    put_i32(&w, r->mom_subnormals);
    put_f32(&w, r->xnor_p01);
    put_f32(&w, r->xnor_p10);
    put_i32(&w, r->lta_n);
    put_f32(&w, r->act_p01);
    put_f32(&w, r->act_p10);
    put_i32(&w, r->flip_rows);
    for (int i = 0; i < TRAIN_FLIP_ROWS; i++) put_f32(&w, r->flip_t[i]);
    for (int i = 0; i < TRAIN_FLIP_ROWS; i++) put_f32(&w, r->flip_p01[i]);
    for (int i = 0; i < TRAIN_FLIP_ROWS; i++) put_f32(&w, r->flip_p10[i]);
    put_u64(&w, (uint64_t)n->n_params);
    put_u64(&w, (uint64_t)n->n_stats);
    for (size_t i = 0; i < n->n_params; i++) put_f32(&w, n->params[i]);
    for (size_t i = 0; i < n->n_stats; i++) put_f32(&w, n->stats[i]);
    put_u32(&w, model_crc(w.p, w.at));
    BN_ASSERT(w.at == total);
    *buf = w.p;
    *len = total;
    return BN_OK;
}

int model_load_mem(net *n, train_recipe *r, const uint8_t *buf, size_t len, const char *name) {
    memset(n, 0, sizeof *n);
    if (!name) name = "model buffer";
    if (!buf) return bn_error(BN_EARG, "%s: no data", name);
    size_t m = len < 8 ? len : 8;
    if (memcmp(buf, MODEL_MAGIC, m) != 0)
        return bn_error(BN_EFORMAT, "%s: not a bnas model (bad magic, expected \"%s\")", name, MODEL_MAGIC);
    if (len < MODEL_HEAD)
        return bn_error(BN_EFORMAT, "%s: truncated model header: %zu of %d bytes", name, len, MODEL_HEAD);
    uint32_t version = get_u32(buf + 8);
    if (version == 0)
        return bn_error(BN_EFORMAT, "%s: invalid model format version 0", name);
    if (version > MODEL_VERSION)
        return bn_error(BN_EFORMAT,
                        "%s: model format version %u is newer than this build supports (%u); "
                        "update bnas",
                        name, (unsigned)version, MODEL_VERSION);
    uint32_t marker = get_u32(buf + 12);
    if (marker != MODEL_ENDIAN)
        return bn_error(BN_EFORMAT, "%s: bad endianness marker 0x%08x (expected 0x%08x)", name,
                        (unsigned)marker, MODEL_ENDIAN);
    uint64_t total = get_u64(buf + 16);
    if ((uint64_t)len < total)
        return bn_error(BN_EFORMAT, "%s: truncated model: %zu of %llu bytes", name, len,
                        (unsigned long long)total);
    if ((uint64_t)len > total)
        return bn_error(BN_EFORMAT, "%s: %llu unexpected bytes after the model's %llu bytes", name,
                        (unsigned long long)(len - total), (unsigned long long)total);
    const uint64_t fixed = version == 1 ? MODEL_FIXED_V1 : version == 2 ? MODEL_FIXED_V2 : version == 3 ? MODEL_FIXED_V3
                         : version == 4 ? MODEL_FIXED_V4 : MODEL_FIXED;
    if (total < fixed)
        return bn_error(BN_EFORMAT, "%s: model length %llu is below the minimum %llu", name,
                        (unsigned long long)total, (unsigned long long)fixed);
    uint32_t want_crc = get_u32(buf + len - 4), crc = model_crc(buf, len - 4);
    if (crc != want_crc)
        return bn_error(BN_EFORMAT, "%s: checksum mismatch (stored 0x%08x, computed 0x%08x): file is corrupt",
                        name, (unsigned)want_crc, (unsigned)crc);

    /* The checksum holds; the fields must still be consistent. */
    uint32_t t = get_u32(buf + 24);
    if (t > MODEL_MAX_TOPO || (uint64_t)t > total - fixed)
        return bn_error(BN_EFORMAT, "%s: bad topology length %u", name, (unsigned)t);
    char topo[MODEL_MAX_TOPO + 1];
    memcpy(topo, buf + MODEL_HEAD, t);
    topo[t] = '\0';
    for (uint32_t i = 0; i < t; i++)
        if (topo[i] < 0x21 || topo[i] > 0x7e)
            return bn_error(BN_EFORMAT, "%s: topology contains byte 0x%02x at %u", name,
                            (unsigned)(uint8_t)topo[i], (unsigned)i);
    const uint8_t *p = buf + MODEL_HEAD + t;
    int in_c = get_i32(p), in_h = get_i32(p + 4), in_w = get_i32(p + 8), classes = get_i32(p + 12);
    p += 16;
    if (in_c < 1 || in_c > MODEL_MAX_DIM || in_h < 1 || in_h > MODEL_MAX_DIM || in_w < 1 ||
        in_w > MODEL_MAX_DIM || classes < 1 || classes > MODEL_MAX_DIM)
        return bn_error(BN_EFORMAT, "%s: bad input shape %dx%dx%d or class count %d", name, in_h,
                        in_w, in_c, classes);
    train_recipe rec;
    memset(&rec, 0, sizeof rec);
    rec.epochs = get_i32(p);
    rec.batch = get_i32(p + 4);
    rec.lr = get_f32(p + 8);
    rec.lr_step = get_i32(p + 12);
    rec.lr_gamma = get_f32(p + 16);
    rec.clip = get_i32(p + 20);
    int loss = get_i32(p + 24);
    rec.mhl_b = get_f32(p + 28);
    int flip = get_i32(p + 32);
    rec.p01 = get_f32(p + 36);
    rec.p10 = get_f32(p + 40);
    rec.reg_lambda = get_f32(p + 44);
    rec.reg_h = get_f32(p + 48);
    rec.seed = get_u64(p + 52);
    p += MODEL_RECIPE_V1;
    int optimizer = OPT_ADAM;
    if (version >= 2) {
        optimizer = get_i32(p);
        rec.bop_gamma = get_f32(p + 4);
        rec.bop_tau = get_f32(p + 8);
        rec.bop_gamma_decay = get_f32(p + 12);
        rec.mom_e = get_i32(p + 16);
        rec.mom_f = get_i32(p + 20);
        rec.mom_bias = get_i32(p + 24);
        rec.mom_subnormals = get_i32(p + 28);
        p += MODEL_RECIPE_V2 - MODEL_RECIPE_V1;
    } else { /* version 1: Adam; the Bop fields take their defaults */
        train_recipe d = train_recipe_default();
        rec.bop_gamma = d.bop_gamma, rec.bop_tau = d.bop_tau, rec.bop_gamma_decay = d.bop_gamma_decay;
        rec.mom_e = d.mom_e, rec.mom_f = d.mom_f, rec.mom_bias = d.mom_bias, rec.mom_subnormals = d.mom_subnormals;
    }
    if (version >= 3) { /* XNOR product error rates of training; versions 1-2: none (0) */
        rec.xnor_p01 = get_f32(p);
        rec.xnor_p10 = get_f32(p + 4);
        p += MODEL_RECIPE_V3 - MODEL_RECIPE_V2;
        if (!(rec.xnor_p01 >= 0.0f && rec.xnor_p01 <= 1.0f && rec.xnor_p10 >= 0.0f && rec.xnor_p10 <= 1.0f))
            return bn_error(BN_EFORMAT, "%s: XNOR product rates (%g, %g) in the recipe are not in [0, 1]", name,
                            (double)rec.xnor_p01, (double)rec.xnor_p10);
    }
    if (version >= 4) { /* LTA-aware training and activation flips; versions 1-3: none (0) */
        rec.lta_n = get_i32(p);
        rec.act_p01 = get_f32(p + 4);
        rec.act_p10 = get_f32(p + 8);
        p += MODEL_RECIPE_V4 - MODEL_RECIPE_V3;
        if (rec.lta_n < 0)
            return bn_error(BN_EFORMAT, "%s: LTA column size %d in the recipe is negative", name, rec.lta_n);
        if (!(rec.act_p01 >= 0.0f && rec.act_p01 <= 1.0f && rec.act_p10 >= 0.0f && rec.act_p10 <= 1.0f))
            return bn_error(BN_EFORMAT, "%s: activation flip rates (%g, %g) in the recipe are not in [0, 1]", name,
                            (double)rec.act_p01, (double)rec.act_p10);
    }
    if (version >= 5) { /* flip-rate table of flip training over a range; versions 1-4: none (0 rows) */
        rec.flip_rows = get_i32(p);
        for (int i = 0; i < TRAIN_FLIP_ROWS; i++) {
            rec.flip_t[i] = get_f32(p + 4 + 4 * i);
            rec.flip_p01[i] = get_f32(p + 4 + 4 * TRAIN_FLIP_ROWS + 4 * i);
            rec.flip_p10[i] = get_f32(p + 4 + 8 * TRAIN_FLIP_ROWS + 4 * i);
        }
        p += MODEL_RECIPE - MODEL_RECIPE_V4;
        if (rec.flip_rows < 0 || rec.flip_rows > TRAIN_FLIP_ROWS)
            return bn_error(BN_EFORMAT, "%s: flip-rate table of %d rows in the recipe (0..%d)", name, rec.flip_rows,
                            TRAIN_FLIP_ROWS);
        for (int i = 0; i < rec.flip_rows; i++)
            if (!(rec.flip_p01[i] >= 0.0f && rec.flip_p01[i] <= 1.0f && rec.flip_p10[i] >= 0.0f &&
                  rec.flip_p10[i] <= 1.0f) || !isfinite(rec.flip_t[i]) || (i > 0 && !(rec.flip_t[i] > rec.flip_t[i - 1])))
                return bn_error(BN_EFORMAT, "%s: flip-rate table row %d (%g, %g, %g) in the recipe is invalid", name, i,
                                (double)rec.flip_t[i], (double)rec.flip_p01[i], (double)rec.flip_p10[i]);
    }
    if (loss != LOSS_CE && loss != LOSS_MHL)
        return bn_error(BN_EFORMAT, "%s: unknown loss code %d in the recipe", name, loss);
    if (flip != FLIP_NONE && flip != FLIP_STE && flip != FLIP_NAIVE)
        return bn_error(BN_EFORMAT, "%s: unknown flip-training code %d in the recipe", name, flip);
    if (optimizer != OPT_ADAM && optimizer != OPT_BOP)
        return bn_error(BN_EFORMAT, "%s: unknown optimizer code %d in the recipe", name, optimizer);
    if (optimizer == OPT_BOP) {
        fpfmt F;
        if (fpfmt_init(&F, rec.mom_e, rec.mom_f, rec.mom_bias, rec.mom_subnormals))
            return bn_error(BN_EFORMAT, "%s: bad Bop momentum format in the recipe: %s", name, bn_errmsg());
    }
    if (rec.mom_subnormals != 0 && rec.mom_subnormals != 1)
        return bn_error(BN_EFORMAT, "%s: momentum subnormals flag %d is not 0 or 1", name, rec.mom_subnormals);
    rec.loss = (train_loss)loss;
    rec.flip = (train_flip)flip;
    rec.optimizer = (train_optimizer)optimizer;
    uint64_t np = get_u64(p), ns = get_u64(p + 8);
    p += 16;
    uint64_t room = (total - fixed - t) / 4;
    if (np > room || ns > room || np + ns != room || (total - fixed - t) % 4 != 0)
        return bn_error(BN_EFORMAT,
                        "%s: %llu parameters and %llu statistics do not fill the model's %llu bytes",
                        name, (unsigned long long)np, (unsigned long long)ns, (unsigned long long)total);

    arch a;
    int rc = arch_parse(&a, topo);
    if (rc) return bn_error(BN_EFORMAT, "%s: bad topology: %s", name, bn_errmsg());
    uint64_t want_np = 0, want_ns = 0;
    if (!model_counts(&a, in_c, in_h, in_w, classes, &want_np, &want_ns) || want_np != np ||
        want_ns != ns)
        return bn_error(BN_EFORMAT,
                        "%s: topology \"%s\" on input %dx%dx%d with %d classes does not have the "
                        "file's %llu parameters and %llu statistics",
                        name, topo, in_h, in_w, in_c, classes, (unsigned long long)np,
                        (unsigned long long)ns);
    net tmp;
    memset(&tmp, 0, sizeof tmp);
    rc = net_create(&tmp, &a, in_c, in_h, in_w, classes);
    if (rc)
        return bn_error(BN_EFORMAT, "%s: topology \"%s\" does not fit input %dx%dx%d, %d classes: %s",
                        name, topo, in_h, in_w, in_c, classes, bn_errmsg());
    if ((uint64_t)tmp.n_params != np || (uint64_t)tmp.n_stats != ns) {
        rc = bn_error(BN_EFORMAT,
                      "%s: topology \"%s\" has %zu parameters and %zu statistics, the file holds "
                      "%llu and %llu",
                      name, topo, tmp.n_params, tmp.n_stats, (unsigned long long)np,
                      (unsigned long long)ns);
        net_free(&tmp);
        return rc;
    }
    for (size_t i = 0; i < tmp.n_params; i++) tmp.params[i] = get_f32(p + 4 * i);
    p += 4 * tmp.n_params;
    for (size_t i = 0; i < tmp.n_stats; i++) tmp.stats[i] = get_f32(p + 4 * i);
    p += 4 * tmp.n_stats;
    BN_ASSERT((size_t)(p - buf) == len - 4);
    *n = tmp; /* layer pointers point into the heap allocations, so the copy stays valid */
    if (r) *r = rec;
    return BN_OK;
}

/* ---------------------------------------------------------------------------
** Files
*/

int model_save(const net *n, const train_recipe *r, const char *path) {
    if (!path || !*path) return bn_error(BN_EARG, "model_save: no path");
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = model_save_mem(n, r, &buf, &len);
    if (rc) return rc;
    size_t plen = strlen(path);
    char *tmp = bn_malloc(plen + 5);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        rc = bn_error(BN_EIO, "%s: cannot create: %s", tmp, strerror(errno));
        goto cleanup;
    }
    if (fwrite(buf, 1, len, f) != len || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        rc = bn_error(BN_EIO, "%s: write failed: %s", tmp, strerror(errno));
        fclose(f);
        remove(tmp);
        goto cleanup;
    }
    if (fclose(f) != 0) {
        rc = bn_error(BN_EIO, "%s: write failed: %s", tmp, strerror(errno));
        remove(tmp);
        goto cleanup;
    }
    if (rename(tmp, path) != 0) {
        rc = bn_error(BN_EIO, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
        remove(tmp);
        goto cleanup;
    }
cleanup:
    free(tmp);
    free(buf);
    return rc;
}

int model_load(net *n, train_recipe *r, const char *path) {
    memset(n, 0, sizeof *n);
    if (!path || !*path) return bn_error(BN_EARG, "model_load: no path");
    int rc = BN_OK;
    uint8_t *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return bn_error(BN_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = bn_error(BN_EIO, "%s: not a regular file", path);
        goto cleanup;
    }
    if ((uint64_t)st.st_size > MODEL_MAX_FILE) {
        rc = bn_error(BN_EFORMAT, "%s: absurd size for a model file: %lld bytes", path,
                      (long long)st.st_size);
        goto cleanup;
    }
    size_t cap = (size_t)st.st_size, len = 0;
    buf = bn_malloc(cap + 1);
    /* Read one byte past the stat size so a file that grew is noticed, not cut. */
    len = fread(buf, 1, cap + 1, f);
    if (ferror(f)) {
        rc = bn_error(BN_EIO, "%s: read error: %s", path, strerror(errno));
        goto cleanup;
    }
    if (len > cap) {
        rc = bn_error(BN_EIO, "%s: file changed while being read", path);
        goto cleanup;
    }
    rc = model_load_mem(n, r, buf, len, path);
cleanup:
    fclose(f);
    free(buf);
    return rc;
}
