/*
** C code generation for packed networks (see engine/codegen.h): re-packs the
** canonical 64-bit weight rows into 32-bit rows and prints one static const
** array per layer plus one straight-line function per layer.
*/
#include "engine/codegen.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/err.h"

int codegen_argmax_mode(float scale, int64_t max_abs) {
    if (!isfinite(scale)) return CODEGEN_FLOAT;
    if (scale == 0.0f) return CODEGEN_CLASS0;
    double a = fabs((double)scale);
    if (a >= (double)FLT_MIN && max_abs >= 0 && max_abs <= (1 << 22) &&
        a * (double)max_abs <= (double)FLT_MAX / 2)
        return scale > 0 ? CODEGEN_ARGMAX : CODEGEN_ARGMIN;
    return CODEGEN_FLOAT;
}

int codegen_name_ok(const char *name) {
    size_t n = strlen(name);
    if (n < 1 || n > 48 || !(name[0] >= 'a' && name[0] <= 'z')) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
            return 0;
    return 1;
}

/* Words per pixel of C channels packed into 32-bit words. */
static int cw32(int c) { return (c + 31) / 32; }

/* Words of one 32-bit weight row of L. */
static int row_words(const packed_layer *L) {
    if (L->kind == NET_CONV) return 9 * cw32(L->in_c);
    if (L->first) return (L->fan_in + 31) / 32;
    return L->in_h * L->in_w * cw32(L->in_c);
}

/* Canonical bit of weight i of neuron n (engine/packed.h's row layout). */
static int canon_bit(const packed_layer *L, int n, int i) {
    int word, bit;
    if (L->first) {
        word = i / 64, bit = i % 64;
    } else {
        int pix = i / L->in_c, c = i % L->in_c;
        word = pix * L->in_cw + c / 64, bit = c % 64;
    }
    return (int)((L->w[(size_t)n * L->kw + word] >> bit) & 1u);
}

/* Position of weight i in the 32-bit row (see codegen.h). */
static int gen_pos(const packed_layer *L, int i) {
    if (L->first && L->kind == NET_FC) return i;
    int pix = i / L->in_c, c = i % L->in_c; /* tap (conv) or input pixel (dense) */
    return pix * 32 * cw32(L->in_c) + c;
}

/* The 32-bit rows of L: (out_c, row_words) words, malloc'd. */
static uint32_t *gen_rows(const packed_layer *L) {
    int rw = row_words(L);
    uint32_t *w = bn_calloc((size_t)L->out_c * rw + 1, sizeof(uint32_t));
    for (int n = 0; n < L->out_c; n++)
        for (int i = 0; i < L->fan_in; i++)
            if (canon_bit(L, n, i)) {
                int pos = gen_pos(L, i);
                w[(size_t)n * rw + pos / 32] |= 1u << (pos % 32);
            }
    return w;
}

/* Words of a hidden layer's output activations. */
static size_t out_words(const packed_layer *L) { return (size_t)L->out_h * L->out_w * cw32(L->out_c); }

/* Largest |accumulator| of the classifier. */
static int64_t classifier_max_abs(const packed_net *p) {
    const packed_layer *L = &p->layers[p->n_layers - 1];
    return L->first ? 255 * (int64_t)L->fan_in : (int64_t)L->fan_in;
}

void codegen_measure(const packed_net *p, codegen_info *info) {
    memset(info, 0, sizeof *info);
    size_t S = 0;
    for (int l = 0; l < p->n_layers; l++) {
        const packed_layer *L = &p->layers[l];
        info->weight_bytes += 4 * (size_t)L->out_c * row_words(L);
        if (!L->last) {
            info->threshold_bytes += 4 * (size_t)L->out_c;
            info->invert_bytes += 4 * (size_t)cw32(L->out_c);
            if (out_words(L) > S) S = out_words(L);
        }
    }
    int hidden = p->n_layers - 1;
    info->scratch_words = hidden == 0 ? 1 : hidden == 1 ? S : 2 * S;
    info->const_bytes = info->weight_bytes + info->threshold_bytes + info->invert_bytes + 4;
    info->max_abs_acc = (int32_t)classifier_max_abs(p);
    info->argmax_mode = codegen_argmax_mode(p->scale, classifier_max_abs(p));
}

/* ---- Output with sticky error ---- */

typedef struct {
    FILE *f;   /* output file */
    int err;   /* 1 after a failed write */
} out;

static void emit(out *o, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void emit(out *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (vfprintf(o->f, fmt, ap) < 0) o->err = 1;
    va_end(ap);
}

static void emit_u32_array(out *o, const char *decl, const uint32_t *v, size_t n) {
    emit(o, "%s = {", decl);
    for (size_t i = 0; i < n; i++) emit(o, "%s0x%08lxu,", i % 8 ? " " : "\n    ", (unsigned long)v[i]);
    emit(o, "\n};\n");
}

static void emit_thr(out *o, int l, const packed_layer *L) {
    emit(o, "static const int32_t L%d_t[%d] = {", l, L->out_c);
    for (int n = 0; n < L->out_c; n++) {
        int32_t t = L->thr[n];
        const char *sep = n % 8 ? " " : "\n    ";
        if (t == INT32_MIN) emit(o, "%sINT32_MIN,", sep);
        else if (t == INT32_MAX) emit(o, "%sINT32_MAX,", sep);
        else emit(o, "%s%ld,", sep, (long)t);
    }
    emit(o, "\n};\n");
}

/* ---- The header ---- */

static void write_header(out *o, const packed_net *p, const char *name, const char *NAME,
                         const codegen_info *info) {
    emit(o, "/*\n** bnas_%s.h: packed inference of a binarized network, generated by bnas\n"
            "** (engine/codegen.c). Standalone C99, needs only <stdint.h>; no malloc.\n**\n",
         name);
    emit(o, "** Input: one image of %d x %d x %d 8-bit pixels in (H, W, C) order.\n", p->in_h,
         p->in_w, p->in_c);
    emit(o, "** Layers:");
    for (int l = 0; l < p->n_layers; l++) {
        const packed_layer *L = &p->layers[l];
        emit(o, "%s%s%d%s", l ? ", " : " ", L->kind == NET_CONV ? "conv3x3 " : "dense ", L->out_c,
             L->pool ? " + maxpool2" : "");
    }
    emit(o, " (classifier).\n");
    emit(o, "** Constant data %lu bytes; scratch %lu bytes per call.\n*/\n",
         (unsigned long)info->const_bytes, (unsigned long)(4 * info->scratch_words));
    emit(o, "#ifndef BNAS_%s_H\n#define BNAS_%s_H\n\n#include <stdint.h>\n\n", NAME, NAME);
    emit(o, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    emit(o, "#define BNAS_%s_IN_C %d\n#define BNAS_%s_IN_H %d\n#define BNAS_%s_IN_W %d\n", NAME,
         p->in_c, NAME, p->in_h, NAME, p->in_w);
    emit(o, "#define BNAS_%s_CLASSES %d\n", NAME, p->classes);
    emit(o, "#define BNAS_%s_SCRATCH_WORDS %lu /* uint32_t words of scratch per call */\n\n", NAME,
         (unsigned long)info->scratch_words);
    emit(o, "/* Output scale s: logits = s * (float)acc. */\nextern const float bnas_%s_scale;\n\n",
         name);
    emit(o, "/* Classifier accumulators acc[BNAS_%s_CLASSES] of image\n"
            "   [BNAS_%s_IN_H][BNAS_%s_IN_W][BNAS_%s_IN_C]. scratch: BNAS_%s_SCRATCH_WORDS\n"
            "   words, or NULL for a static buffer (then not reentrant). */\n"
            "void bnas_%s_accumulators(const uint8_t *image, int32_t *acc, uint32_t *scratch);\n\n",
         NAME, NAME, NAME, NAME, NAME, name);
    emit(o, "/* Predicted class: argmax of the logits, first on ties (integer arithmetic\n"
            "   only). scratch as for bnas_%s_accumulators. */\n"
            "int bnas_%s_predict_r(const uint8_t *image, uint32_t *scratch);\n\n",
         name, name);
    emit(o, "/* bnas_%s_predict_r with the static scratch buffer (not reentrant). */\n"
            "int bnas_%s_predict(const uint8_t *image);\n\n",
         name, name);
    emit(o, "/* Logits logits[BNAS_%s_CLASSES] = bnas_%s_scale * (float)acc. */\n"
            "void bnas_%s_logits(const uint8_t *image, float *logits, uint32_t *scratch);\n\n",
         NAME, name, name);
    emit(o, "#ifdef __cplusplus\n}\n#endif\n\n#endif /* BNAS_%s_H */\n", NAME);
}

/* ---- The source ---- */

static void write_helpers(out *o, const packed_net *p) {
    int any_binary = 0; /* a hidden-input layer exists: popcount needed */
    for (int l = 0; l < p->n_layers; l++)
        if (!p->layers[l].first) any_binary = 1;
    emit(o, "/* sum_i (bit i of w ? x[i] : -x[i]) over n 8-bit inputs. */\n"
            "static int32_t px_dot(const uint8_t *x, const uint32_t *w, int32_t n) {\n"
            "    int32_t s = 0, t = 0, i;\n"
            "    for (i = 0; i < n; i++) {\n"
            "        int32_t v = x[i];\n"
            "        t += v;\n"
            "        s += v & -(int32_t)((w[i >> 5] >> (i & 31)) & 1u);\n"
            "    }\n"
            "    return 2 * s - t;\n"
            "}\n\n");
    if (!any_binary) return;
    emit(o, "static uint32_t popcount32(uint32_t v) {\n"
            "#if defined(__GNUC__) && !defined(BNAS_PORTABLE_POPCOUNT)\n"
            "    return (uint32_t)__builtin_popcountl((unsigned long)v);\n"
            "#else\n"
            "    v = v - ((v >> 1) & 0x55555555u);\n"
            "    v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);\n"
            "    v = (v + (v >> 4)) & 0x0f0f0f0fu;\n"
            "    return (v * 0x01010101u) >> 24;\n"
            "#endif\n"
            "}\n\n"
            "/* popcount(a XOR w) over nw words. */\n"
            "static int32_t xor_pop(const uint32_t *a, const uint32_t *w, int32_t nw) {\n"
            "    uint32_t c = 0;\n"
            "    int32_t j;\n"
            "    for (j = 0; j < nw; j++) c += popcount32(a[j] ^ w[j]);\n"
            "    return (int32_t)c;\n"
            "}\n\n");
}

/* The accumulator of neuron row at position (y, x) of conv layer l. */
static void write_conv_at(out *o, int l, const packed_layer *L) {
    int cw = cw32(L->in_c);
    emit(o, "static int32_t L%d_at(const %s *in, const uint32_t *row, int32_t y, int32_t x) {\n"
            "    int32_t s = 0, t;\n"
            "    for (t = 0; t < 9; t++) {\n"
            "        int32_t iy = y + t / 3 - 1, ix = x + t %% 3 - 1;\n"
            "        if (iy < 0 || iy >= %d || ix < 0 || ix >= %d) continue;\n",
         l, L->first ? "uint8_t" : "uint32_t", L->in_h, L->in_w);
    if (L->first)
        emit(o, "        s += px_dot(in + (iy * %d + ix) * %d, row + t * %d, %d);\n", L->in_w, L->in_c,
             cw, L->in_c);
    else
        emit(o, "        s += %d - 2 * xor_pop(in + (iy * %d + ix) * %d, row + t * %d, %d);\n", L->in_c,
             L->in_w, cw, cw, cw);
    emit(o, "    }\n    return s;\n}\n\n");
}

static void write_layer(out *o, int l, const packed_layer *L) {
    int rw = row_words(L), ocw = cw32(L->out_c);
    const char *in_t = L->first ? "uint8_t" : "uint32_t";
    emit(o, "/* Layer %d: %s, input (%d, %d, %d)%s, %d outputs%s. */\n", l,
         L->kind == NET_CONV ? "conv 3x3" : "dense", L->in_h, L->in_w, L->in_c,
         L->first ? " 8-bit pixels" : " bits", L->out_c,
         L->last ? ", classifier" : L->pool ? ", 2x2 max-pool" : "");
    if (L->kind == NET_CONV) write_conv_at(o, l, L);
    if (L->last) {
        emit(o, "static void L%d(const %s *in, int32_t *acc) {\n    int32_t n;\n", l, in_t);
        emit(o, "    for (n = 0; n < %d; n++) {\n        const uint32_t *row = L%d_w + n * %d;\n",
             L->out_c, l, rw);
        if (L->first) emit(o, "        acc[n] = px_dot(in, row, %d);\n", L->fan_in);
        else emit(o, "        acc[n] = %d - 2 * xor_pop(in, row, %d);\n", L->fan_in, rw);
        emit(o, "    }\n}\n\n");
        return;
    }
    emit(o, "static void L%d(const %s *in, uint32_t *out) {\n", l, in_t);
    if (L->kind == NET_CONV) {
        emit(o, "    int32_t oy, ox, n, j;\n"
                "    for (oy = 0; oy < %d; oy++)\n"
                "        for (ox = 0; ox < %d; ox++) {\n"
                "            uint32_t *o = out + (oy * %d + ox) * %d;\n"
                "            for (j = 0; j < %d; j++) o[j] = 0;\n"
                "            for (n = 0; n < %d; n++) {\n"
                "                const uint32_t *row = L%d_w + n * %d;\n",
             L->out_h, L->out_w, L->out_w, ocw, ocw, L->out_c, l, rw);
        if (L->pool)
            emit(o, "                int32_t m = L%d_at(in, row, 2 * oy, 2 * ox), v;\n"
                    "                v = L%d_at(in, row, 2 * oy, 2 * ox + 1);\n"
                    "                if (v > m) m = v;\n"
                    "                v = L%d_at(in, row, 2 * oy + 1, 2 * ox);\n"
                    "                if (v > m) m = v;\n"
                    "                v = L%d_at(in, row, 2 * oy + 1, 2 * ox + 1);\n"
                    "                if (v > m) m = v;\n",
                 l, l, l, l);
        else emit(o, "                int32_t m = L%d_at(in, row, oy, ox);\n", l);
        emit(o, "                o[n >> 5] |= ((uint32_t)(m >= L%d_t[n]) ^ ((L%d_i[n >> 5] >> (n & 31)) & 1u))\n"
                "                             << (n & 31);\n"
                "            }\n"
                "        }\n}\n\n",
             l, l);
    } else {
        emit(o, "    int32_t n, j;\n"
                "    for (j = 0; j < %d; j++) out[j] = 0;\n"
                "    for (n = 0; n < %d; n++) {\n"
                "        const uint32_t *row = L%d_w + n * %d;\n",
             ocw, L->out_c, l, rw);
        if (L->first) emit(o, "        int32_t m = px_dot(in, row, %d);\n", L->fan_in);
        else emit(o, "        int32_t m = %d - 2 * xor_pop(in, row, %d);\n", L->fan_in, rw);
        emit(o, "        out[n >> 5] |= ((uint32_t)(m >= L%d_t[n]) ^ ((L%d_i[n >> 5] >> (n & 31)) & 1u))\n"
                "                       << (n & 31);\n"
                "    }\n}\n\n",
             l, l);
    }
}

static void write_source(out *o, const packed_net *p, const char *name, const char *NAME,
                         const codegen_info *info) {
    emit(o, "/*\n** bnas_%s.c: packed inference, generated by bnas (engine/codegen.c); see\n"
            "** bnas_%s.h. Bits: +1 is bit 1, -1 is bit 0, LSB first in 32-bit words.\n"
            "** Hidden layer: out = (acc >= T) ^ inv; classifier: logits = scale * acc.\n*/\n",
         name, name);
    emit(o, "#include \"bnas_%s.h\"\n\n", name);
    /* scale: hexadecimal float literal, exact */
    emit(o, "const float bnas_%s_scale = %af;\n\n", name, (double)p->scale);
    for (int l = 0; l < p->n_layers; l++) {
        const packed_layer *L = &p->layers[l];
        uint32_t *w = gen_rows(L);
        char decl[96];
        snprintf(decl, sizeof decl, "static const uint32_t L%d_w[%d * %d]", l, L->out_c, row_words(L));
        emit(o, "/* Layer %d weights: (%d, %d) words. */\n", l, L->out_c, row_words(L));
        emit_u32_array(o, decl, w, (size_t)L->out_c * row_words(L));
        free(w);
        if (!L->last) {
            emit_thr(o, l, L);
            int ocw = cw32(L->out_c);
            uint32_t *inv = bn_calloc((size_t)ocw, sizeof(uint32_t));
            for (int n = 0; n < L->out_c; n++)
                if ((L->inv[n / 64] >> (n % 64)) & 1u) inv[n / 32] |= 1u << (n % 32);
            snprintf(decl, sizeof decl, "static const uint32_t L%d_i[%d]", l, ocw);
            emit_u32_array(o, decl, inv, (size_t)ocw);
            free(inv);
        }
        emit(o, "\n");
    }
    write_helpers(o, p);
    for (int l = 0; l < p->n_layers; l++) write_layer(o, l, &p->layers[l]);

    /* accumulators: ping-pong through the two halves of scratch */
    int hidden = p->n_layers - 1;
    size_t S = hidden == 1 ? info->scratch_words : info->scratch_words / 2;
    emit(o, "void bnas_%s_accumulators(const uint8_t *image, int32_t *acc, uint32_t *scratch) {\n", name);
    if (hidden == 0) {
        emit(o, "    (void)scratch;\n    L0(image, acc);\n}\n\n");
    } else {
        emit(o, "    static uint32_t own[BNAS_%s_SCRATCH_WORDS];\n"
                "    uint32_t *buf[2];\n"
                "    buf[0] = scratch ? scratch : own;\n",
             NAME);
        if (hidden > 1) emit(o, "    buf[1] = buf[0] + %lu;\n", (unsigned long)S);
        emit(o, "    L0(image, buf[0]);\n");
        for (int l = 1; l < hidden; l++) emit(o, "    L%d(buf[%d], buf[%d]);\n", l, (l - 1) % 2, l % 2);
        emit(o, "    L%d(buf[%d], acc);\n}\n\n", hidden, (hidden - 1) % 2);
    }
    emit(o, "int bnas_%s_predict_r(const uint8_t *image, uint32_t *scratch) {\n", name);
    switch (info->argmax_mode) {
    case CODEGEN_CLASS0:
        emit(o, "    /* scale == 0: every logit is +-0, the first class wins */\n"
                "    (void)image;\n    (void)scratch;\n    return 0;\n}\n\n");
        break;
    case CODEGEN_FLOAT:
        emit(o, "    /* the scale is too small or too large for an exact integer argmax:\n"
                "       compare the float logits as the packed path does */\n"
                "    float z[BNAS_%s_CLASSES];\n    int c, best = 0;\n"
                "    bnas_%s_logits(image, z, scratch);\n"
                "    for (c = 1; c < BNAS_%s_CLASSES; c++)\n"
                "        if (z[c] > z[best]) best = c;\n    return best;\n}\n\n",
             NAME, name, NAME);
        break;
    default:
        emit(o, "    /* logits = scale * acc with scale %s 0 and exact, strictly monotone\n"
                "       products: the %s of acc, first on ties */\n"
                "    int32_t acc[BNAS_%s_CLASSES];\n    int c, best = 0;\n"
                "    bnas_%s_accumulators(image, acc, scratch);\n"
                "    for (c = 1; c < BNAS_%s_CLASSES; c++)\n"
                "        if (acc[c] %s acc[best]) best = c;\n    return best;\n}\n\n",
             info->argmax_mode == CODEGEN_ARGMAX ? ">" : "<",
             info->argmax_mode == CODEGEN_ARGMAX ? "argmax" : "argmin", NAME, name, NAME,
             info->argmax_mode == CODEGEN_ARGMAX ? ">" : "<");
    }
    emit(o, "int bnas_%s_predict(const uint8_t *image) { return bnas_%s_predict_r(image, 0); }\n\n",
         name, name);
    emit(o, "void bnas_%s_logits(const uint8_t *image, float *logits, uint32_t *scratch) {\n"
            "    int32_t acc[BNAS_%s_CLASSES];\n    int c;\n"
            "    bnas_%s_accumulators(image, acc, scratch);\n"
            "    for (c = 0; c < BNAS_%s_CLASSES; c++) logits[c] = bnas_%s_scale * (float)acc[c];\n}\n",
         name, NAME, name, NAME, name);
}

/* Writes one file through path.tmp and a rename. */
static int write_file(const char *path, const packed_net *p, const char *name, const char *NAME,
                      const codegen_info *info, int header) {
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return bn_error(BN_EARG, "%s: path too long", path);
    out o = {fopen(tmp, "w"), 0};
    if (!o.f) return bn_error(BN_EIO, "%s: cannot create (%s)", tmp, strerror(errno));
    if (header) write_header(&o, p, name, NAME, info);
    else write_source(&o, p, name, NAME, info);
    if (fclose(o.f) != 0) o.err = 1;
    if (o.err) {
        remove(tmp);
        return bn_error(BN_EIO, "%s: write failed", tmp);
    }
    if (rename(tmp, path) != 0) {
        remove(tmp);
        return bn_error(BN_EIO, "%s: cannot rename to %s", tmp, path);
    }
    return BN_OK;
}

int codegen_write_c(const packed_net *p, const char *name, const char *dir, codegen_info *info) {
    if (!codegen_name_ok(name))
        return bn_error(BN_EARG, "codegen: bad net name '%s' (1..48 of [a-z0-9_], starting with a letter)",
                        name);
    if (!isfinite(p->scale)) return bn_error(BN_EARG, "codegen: %s: the output scale is not finite", name);
    codegen_info local;
    codegen_measure(p, &local);
    if (info) *info = local;
    char NAME[64], path[4096];
    size_t k = 0;
    for (; name[k]; k++) NAME[k] = (char)toupper((unsigned char)name[k]);
    NAME[k] = 0;
    if (snprintf(path, sizeof path, "%s/bnas_%s.h", dir, name) >= (int)sizeof path)
        return bn_error(BN_EARG, "codegen: %s: directory path too long", dir);
    int rc = write_file(path, p, name, NAME, &local, 1);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/bnas_%s.c", dir, name);
    return write_file(path, p, name, NAME, &local, 0);
}
