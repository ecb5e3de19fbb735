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
#include "engine/recipe.h"

#define MODEL_HEAD 28    /* bytes before the topology string */
#define MODEL_FIXED 68   /* bytes of everything but topology, recipe text, params and stats (version 6) */
#define MODEL_FIXED_OLD 64 /* the same in versions 1 to 5, without their binary recipe block */
#define MODEL_MAX_RECIPE 65536 /* longest recipe text accepted */
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

/* The recipe as saved: NULL is the zero recipe. */
static char *model_recipe_text(const train_recipe *r, size_t *len) {
    train_recipe zero;
    memset(&zero, 0, sizeof zero);
    return recipe_to_text(r ? r : &zero, len);
}

size_t model_size(const net *n, const train_recipe *r) {
    char topo[MODEL_MAX_TOPO + 1];
    arch_format(&n->arch, topo, sizeof topo);
    size_t rl;
    free(model_recipe_text(r, &rl));
    return MODEL_FIXED + strlen(topo) + rl + 4 * (n->n_params + n->n_stats);
}

int model_save_mem(const net *n, const train_recipe *r, uint8_t **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    char topo[MODEL_MAX_TOPO + 2];
    arch_format(&n->arch, topo, sizeof topo);
    size_t t = strlen(topo);
    if (t > MODEL_MAX_TOPO)
        return bn_error(BN_EARG, "model: topology string longer than %d bytes", MODEL_MAX_TOPO);
    size_t rl;
    char *text = model_recipe_text(r, &rl);

    size_t total = MODEL_FIXED + t + rl + 4 * (n->n_params + n->n_stats);
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
    put_u32(&w, (uint32_t)rl);
    memcpy(w.p + w.at, text, rl);
    w.at += rl;
    free(text);
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
    /* everything but topology, params and stats; version 6 adds its recipe text below */
    uint64_t fixed = version >= 6 ? MODEL_FIXED : MODEL_FIXED_OLD + recipe_legacy_bytes(version);
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
    int rc;
    int in_c = get_i32(p), in_h = get_i32(p + 4), in_w = get_i32(p + 8), classes = get_i32(p + 12);
    p += 16;
    if (in_c < 1 || in_c > MODEL_MAX_DIM || in_h < 1 || in_h > MODEL_MAX_DIM || in_w < 1 ||
        in_w > MODEL_MAX_DIM || classes < 1 || classes > MODEL_MAX_DIM)
        return bn_error(BN_EFORMAT, "%s: bad input shape %dx%dx%d or class count %d", name, in_h,
                        in_w, in_c, classes);
    train_recipe rec;
    memset(&rec, 0, sizeof rec);
    if (version >= 6) { /* u32 length, then the key=value text (engine/recipe.h) */
        uint32_t rl = get_u32(p);
        if (rl > MODEL_MAX_RECIPE || (uint64_t)rl > total - fixed - t)
            return bn_error(BN_EFORMAT, "%s: bad recipe text length %u", name, (unsigned)rl);
        if ((rc = recipe_from_text(&rec, (const char *)p + 4, rl, name))) return rc;
        p += 4 + rl;
        fixed += rl;
    } else { /* the binary recipe block of versions 1 to 5 */
        recipe_read_legacy(&rec, p, version);
        p += recipe_legacy_bytes(version);
        if ((rc = recipe_check(&rec))) {
            char msg[300];
            snprintf(msg, sizeof msg, "%s", bn_errmsg());
            return bn_error(BN_EFORMAT, "%s: %s", name, msg);
        }
    }
    uint64_t np = get_u64(p), ns = get_u64(p + 8);
    p += 16;
    uint64_t room = (total - fixed - t) / 4;
    if (np > room || ns > room || np + ns != room || (total - fixed - t) % 4 != 0)
        return bn_error(BN_EFORMAT,
                        "%s: %llu parameters and %llu statistics do not fill the model's %llu bytes",
                        name, (unsigned long long)np, (unsigned long long)ns, (unsigned long long)total);

    arch a;
    rc = arch_parse(&a, topo);
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
