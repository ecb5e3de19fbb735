/* Model files: bit-exact round trips (memory and file), the documented byte
   layout (version 6, its recipe text), version 1 to 5 files still loading
   (made by this test's own version 5 writer and by the baseline bnas:
   tests/data/baseline_v5.bnm), and refusal of every truncation, flipped byte,
   wrong magic, newer version and checksum-valid but inconsistent content. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "engine/err.h"
#include "engine/model.h"
#include "engine/recipe.h"
#include "tests/testutil.h"

static char tmpdir[256];

static int setup_dir(void **state) {
    (void)state;
    return tmpdir_make(tmpdir, sizeof tmpdir, "model");
}

static int teardown_dir(void **state) {
    (void)state;
    return tmpdir_remove(tmpdir);
}

/* A net of topology s on (h, w, c) with every parameter and statistic a random
   bit pattern-ish float, plus a few special values (-0, inf, NaN, subnormal). */
static void make_net(net *n, const char *s, int c, int h, int w, int classes, uint64_t seed) {
    arch a;
    assert_int_equal(arch_parse(&a, s), BN_OK);
    assert_int_equal(net_create(n, &a, c, h, w, classes), BN_OK);
    pcg32 r;
    rng_keyed(&r, seed, 0, RNG_INIT);
    net_init_params(n, &r);
    for (size_t i = 0; i < n->n_params; i++) n->params[i] = (float)pcg32_normal(&r);
    for (size_t i = 0; i < n->n_stats; i++) n->stats[i] = (float)pcg32_normal(&r) * 3.0f + 5.0f;
    n->params[0] = -0.0f;
    if (n->n_params > 3) {
        n->params[1] = INFINITY;
        uint32_t nan_bits = 0x7fc01234u, sub_bits = 0x00000123u;
        memcpy(&n->params[2], &nan_bits, 4);
        memcpy(&n->params[3], &sub_bits, 4);
    }
}

static train_recipe make_recipe(void) {
    train_recipe r;
    memset(&r, 0, sizeof r);
    r.epochs = 17;
    r.batch = 128;
    r.lr = 3e-4f;
    r.lr_step = 5;
    r.lr_gamma = 0.7f;
    r.clip = 1;
    r.loss = LOSS_MHL;
    r.mhl_b = 96.5f;
    r.flip = FLIP_NAIVE;
    r.p01 = 0.01f;
    r.p10 = 0.025f;
    r.reg_lambda = 1e-3f;
    r.reg_h = 4.0f;
    r.seed = 0xF00DBEEF12345678ull;
    r.optimizer = OPT_BOP;
    r.bop_gamma = 2e-3f;
    r.bop_tau = 3e-7f;
    r.bop_gamma_decay = 0.1f;
    r.mom_e = 5, r.mom_f = 7, r.mom_bias = 20, r.mom_subnormals = 0;
    r.xnor_p01 = 0.0625f, r.xnor_p10 = 0.125f;
    r.lta_n = 64, r.act_p01 = 0.03125f, r.act_p10 = 0.25f;
    r.flip_rows = 3;
    r.flip_t[0] = -40.0f, r.flip_t[1] = 20.0f, r.flip_t[2] = 100.0f;
    r.flip_p01[0] = 1e-4f, r.flip_p01[1] = 3e-4f, r.flip_p01[2] = 1.8e-3f;
    r.flip_p10[0] = 5e-4f, r.flip_p10[1] = 4e-3f, r.flip_p10[2] = 0.04f;
    r.flip_bn0 = BN0_CLEAN;
    return r;
}

static void assert_recipe_equal(const train_recipe *a, const train_recipe *b) {
#define SAME(f) assert_memory_equal(&a->f, &b->f, sizeof a->f)
    SAME(epochs); SAME(batch); SAME(lr); SAME(lr_step); SAME(lr_gamma); SAME(clip); SAME(loss);
    SAME(mhl_b); SAME(flip); SAME(p01); SAME(p10); SAME(reg_lambda); SAME(reg_h); SAME(seed);
    SAME(optimizer); SAME(bop_gamma); SAME(bop_tau); SAME(bop_gamma_decay); SAME(mom_e); SAME(mom_f);
    SAME(mom_bias); SAME(mom_subnormals); SAME(xnor_p01); SAME(xnor_p10);
    SAME(lta_n); SAME(act_p01); SAME(act_p10);
    SAME(flip_rows); SAME(flip_t); SAME(flip_p01); SAME(flip_p10); SAME(flip_bn0);
#undef SAME
}

static void assert_net_equal(const net *a, const net *b) {
    char sa[256], sb[256];
    arch_format(&a->arch, sa, sizeof sa);
    arch_format(&b->arch, sb, sizeof sb);
    assert_string_equal(sa, sb);
    assert_int_equal(a->in_c, b->in_c);
    assert_int_equal(a->in_h, b->in_h);
    assert_int_equal(a->in_w, b->in_w);
    assert_int_equal(a->classes, b->classes);
    assert_int_equal(a->n_layers, b->n_layers);
    assert_int_equal(a->n_params, b->n_params);
    assert_int_equal(a->n_stats, b->n_stats);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    if (a->n_stats) assert_memory_equal(a->stats, b->stats, a->n_stats * sizeof(float));
    /* the layer pointers of the loaded net point into its own arrays */
    for (int l = 0; l < b->n_layers; l++) {
        const net_layer *L = &b->layers[l];
        assert_true(L->w >= b->params && L->w < b->params + b->n_params);
        assert_int_equal(L->w - b->params, a->layers[l].w - a->params);
        if (!L->last) assert_int_equal(L->mean - b->stats, a->layers[l].mean - a->stats);
    }
    assert_int_equal(b->scale - b->params, a->scale - a->params);
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }
static void set_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
/* Recomputes the trailing CRC after a deliberate edit. */
static void fix_crc(uint8_t *b, size_t len) {
    set_le32(b + len - 4, (uint32_t)crc32(crc32(0L, Z_NULL, 0), b, (uInt)(len - 4)));
}

static void put32(uint8_t *b, size_t *at, uint32_t v) {
    set_le32(b + *at, v);
    *at += 4;
}
static void putf32(uint8_t *b, size_t *at, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    put32(b, at, u);
}

/* A version 5 file of n and r, written field by field from model.h's table
   of that version (the library writes version 6 only): the reader's legacy
   path is tested against an encoder of its own. */
static void save_v5(const net *n, const train_recipe *r, uint8_t **out, size_t *len) {
    char topo[256];
    arch_format(&n->arch, topo, sizeof topo);
    size_t T = strlen(topo), total = 372 + T + 4 * (n->n_params + n->n_stats), at = 0;
    uint8_t *b = calloc(1, total);
#define U32(v) put32(b, &at, (uint32_t)(v))
#define F32(v) putf32(b, &at, (v))
#define U64(v) (U32((uint64_t)(v) & 0xffffffffu), U32((uint64_t)(v) >> 32))
    memcpy(b, "BNASMDL1", 8), at = 8;
    U32(5), U32(0x01020304u), U64(total), U32(T);
    memcpy(b + at, topo, T), at += T;
    U32(n->in_c), U32(n->in_h), U32(n->in_w), U32(n->classes);
    U32(r->epochs), U32(r->batch), F32(r->lr), U32(r->lr_step), F32(r->lr_gamma), U32(r->clip);
    U32(r->loss), F32(r->mhl_b), U32(r->flip), F32(r->p01), F32(r->p10), F32(r->reg_lambda), F32(r->reg_h);
    U64(r->seed);
    U32(r->optimizer), F32(r->bop_gamma), F32(r->bop_tau), F32(r->bop_gamma_decay);
    U32(r->mom_e), U32(r->mom_f), U32(r->mom_bias), U32(r->mom_subnormals);
    F32(r->xnor_p01), F32(r->xnor_p10), U32(r->lta_n), F32(r->act_p01), F32(r->act_p10), U32(r->flip_rows);
    for (int i = 0; i < TRAIN_FLIP_ROWS; i++) F32(r->flip_t[i]);
    for (int i = 0; i < TRAIN_FLIP_ROWS; i++) F32(r->flip_p01[i]);
    for (int i = 0; i < TRAIN_FLIP_ROWS; i++) F32(r->flip_p10[i]);
    U64(n->n_params), U64(n->n_stats);
    for (size_t i = 0; i < n->n_params; i++) F32(n->params[i]);
    for (size_t i = 0; i < n->n_stats; i++) F32(n->stats[i]);
#undef U32
#undef F32
#undef U64
    assert_int_equal(at + 4, total);
    fix_crc(b, total);
    *out = b;
    *len = total;
}

/* Expects loading buf to fail with BN_EFORMAT and a message containing needle
   (if not NULL) and the name; the net is left zeroed, the recipe untouched. */
static void expect_refused(const uint8_t *buf, size_t len, const char *needle) {
    net n;
    train_recipe r, r0;
    memset(&r, 0x5A, sizeof r);
    memcpy(&r0, &r, sizeof r);
    int rc = model_load_mem(&n, &r, buf, len, "blob-under-test");
    if (rc != BN_EFORMAT || (needle && !strstr(bn_errmsg(), needle)))
        print_error("len %zu: rc %d, message \"%s\" (want \"%s\")\n", len, rc, bn_errmsg(),
                    needle ? needle : "");
    assert_int_equal(rc, BN_EFORMAT);
    assert_non_null(strstr(bn_errmsg(), "blob-under-test"));
    if (needle) assert_non_null(strstr(bn_errmsg(), needle));
    assert_null(n.params);
    assert_null(n.stats);
    assert_memory_equal(&r, &r0, sizeof r);
}

static const char *VGG = "C8-MP2-C16-MP2-FC32";

static void test_roundtrip_mem_and_file(void **state) {
    (void)state;
    net a, b, c;
    make_net(&a, VGG, 1, 28, 28, 10, 1);
    train_recipe ra = make_recipe(), rb, rc_;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(model_save_mem(&a, &ra, &buf, &len), BN_OK);
    assert_int_equal(len, model_size(&a, &ra));
    size_t rl;
    free(recipe_to_text(&ra, &rl));
    assert_int_equal(len, 68 + strlen(VGG) + rl + 4 * (a.n_params + a.n_stats));
    memset(&rb, 0, sizeof rb);
    assert_int_equal(model_load_mem(&b, &rb, buf, len, "mem"), BN_OK);
    assert_net_equal(&a, &b);
    assert_recipe_equal(&ra, &rb);

    /* saving the loaded net gives the same bytes */
    uint8_t *buf2 = NULL;
    size_t len2 = 0;
    assert_int_equal(model_save_mem(&b, &rb, &buf2, &len2), BN_OK);
    assert_int_equal(len2, len);
    assert_memory_equal(buf, buf2, len);

    /* through a file: no .tmp is left behind, the bytes are the same */
    char path[512], tmp[520];
    snprintf(path, sizeof path, "%s/vgg.bnm", tmpdir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_equal(model_save(&a, &ra, path), BN_OK);
    assert_int_equal(access(tmp, F_OK), -1);
    assert_int_equal(model_load(&c, &rc_, path), BN_OK);
    assert_net_equal(&a, &c);
    assert_recipe_equal(&ra, &rc_);
    FILE *f = fopen(path, "rb");
    uint8_t *fb = malloc(len + 1);
    assert_int_equal(fread(fb, 1, len + 1, f), len);
    fclose(f);
    assert_memory_equal(fb, buf, len);
    free(fb);
    net_free(&c);
    /* overwriting an existing file works; a NULL recipe is loaded as zeros */
    assert_int_equal(model_save(&b, NULL, path), BN_OK);
    assert_int_equal(model_load(&c, NULL, path), BN_OK);
    assert_net_equal(&a, &c);
    net_free(&c);
    train_recipe zero, rz;
    memset(&zero, 0, sizeof zero);
    assert_int_equal(model_load(&c, &rz, path), BN_OK);
    assert_recipe_equal(&zero, &rz);
    net_free(&c);

    /* the loaded net computes exactly what the saved one does */
    uint8_t x[3 * 28 * 28];
    pcg32 r;
    rng_keyed(&r, 5, 0, RNG_SAMPLE);
    for (size_t i = 0; i < sizeof x; i++) x[i] = (uint8_t)pcg32_next(&r);
    float la[30], lb[30];
    net_free(&a);
    net_free(&b);
    make_net(&a, VGG, 1, 28, 28, 10, 2);
    a.params[1] = 0.5f, a.params[2] = -0.5f; /* no NaN or inf in a net that must compute */
    for (int l = 0; l < a.n_layers - 1; l++)
        for (int j = 0; j < a.layers[l].out_c; j++) a.layers[l].var[j] = fabsf(a.layers[l].var[j]) + 0.1f;
    free(buf);
    assert_int_equal(model_save_mem(&a, &ra, &buf, &len), BN_OK);
    assert_int_equal(model_load_mem(&b, NULL, buf, len, "mem"), BN_OK);
    net_forward_eval(&a, la, x, 3);
    net_forward_eval(&b, lb, x, 3);
    assert_memory_equal(la, lb, sizeof la);

    net_free(&a);
    net_free(&b);
    free(buf);
    free(buf2);
}

/* The recipe text of make_recipe(): every key, as documented in engine/recipe.h. */
static const char *RECIPE_TEXT =
    "epochs=17\nbatch=128\nlr=0.0003\nlr_step=5\nlr_gamma=0.7\nclip=1\nloss=mhl\nmhl_b=96.5\nflip=naive\n"
    "p01=0.01\np10=0.025\nreg_lambda=0.001\nreg_h=4\nseed=17297691677811824248\noptimizer=bop\n"
    "bop_gamma=0.002\nbop_tau=3e-07\nbop_gamma_decay=0.1\nmom_e=5\nmom_f=7\nmom_bias=20\nmom_subnormals=0\n"
    "xnor_p01=0.0625\nxnor_p10=0.125\nlta_n=64\nact_p01=0.03125\nact_p10=0.25\nflip_rows=3\n"
    "flip_t=-40,20,100\nflip_p01=0.0001,0.0003,0.0018\nflip_p10=0.0005,0.004,0.04\nflip_bn0=clean\n";

/* Checks the bytes against the layout documented in model.h. */
static void test_documented_layout(void **state) {
    (void)state;
    net a;
    make_net(&a, VGG, 1, 28, 28, 10, 3);
    train_recipe ra = make_recipe();
    uint8_t *b = NULL;
    size_t len = 0;
    assert_int_equal(model_save_mem(&a, &ra, &b, &len), BN_OK);
    const size_t T = strlen(VGG), P = a.n_params, S = a.n_stats, R = strlen(RECIPE_TEXT);
    assert_memory_equal(b, "BNASMDL1", 8);
    assert_int_equal(le32(b + 8), 6);
    static const uint8_t marker[4] = {4, 3, 2, 1};
    assert_memory_equal(b + 12, marker, 4);
    assert_true(le64(b + 16) == len);
    assert_int_equal(le32(b + 24), T);
    assert_memory_equal(b + 28, VGG, T);
    assert_int_equal(le32(b + 28 + T), 1);
    assert_int_equal(le32(b + 32 + T), 28);
    assert_int_equal(le32(b + 36 + T), 28);
    assert_int_equal(le32(b + 40 + T), 10);
    assert_int_equal(le32(b + 44 + T), R);
    if (memcmp(b + 48 + T, RECIPE_TEXT, R) != 0) fail_msg("recipe text:\n%.*s", (int)R, (const char *)b + 48 + T);
    assert_true(le64(b + 48 + T + R) == P);
    assert_true(le64(b + 56 + T + R) == S);
    for (size_t i = 0; i < P; i += 97) {
        uint32_t want;
        memcpy(&want, &a.params[i], 4);
        assert_int_equal(le32(b + 64 + T + R + 4 * i), want);
    }
    uint32_t want;
    memcpy(&want, a.scale, 4);
    assert_int_equal(le32(b + 64 + T + R + 4 * (P - 1)), want);
    memcpy(&want, &a.stats[S - 1], 4);
    assert_int_equal(le32(b + 64 + T + R + 4 * P + 4 * (S - 1)), want);
    assert_int_equal(le32(b + len - 4), (uint32_t)crc32(crc32(0L, Z_NULL, 0), b, (uInt)(len - 4)));
    assert_int_equal(len, 68 + T + R + 4 * P + 4 * S);
    /* the default recipe is the empty text */
    train_recipe d = train_recipe_default();
    size_t dl;
    char *dt = recipe_to_text(&d, &dl);
    assert_int_equal(dl, 0);
    free(dt);
    net_free(&a);
    free(b);
}

/* Replaces the recipe text of v6 file buf (topology length T) by text, fixing
   lengths and checksum, into a new buffer. */
static uint8_t *with_recipe_text(const uint8_t *buf, size_t len, size_t T, const char *text, size_t *out_len) {
    size_t R = le32(buf + 44 + T), R2 = strlen(text), n = len - R + R2;
    uint8_t *c = malloc(n);
    memcpy(c, buf, 44 + T);
    set_le32(c + 16, (uint32_t)n), set_le32(c + 20, 0);
    set_le32(c + 44 + T, (uint32_t)R2);
    memcpy(c + 48 + T, text, R2);
    memcpy(c + 48 + T + R2, buf + 48 + T + R, len - 48 - T - R);
    fix_crc(c, n);
    *out_len = n;
    return c;
}

/* Version 6 recipe texts that are refused: every recipe has one text. */
static void test_recipe_text_refusals(void **state) {
    (void)state;
    net a, b;
    make_net(&a, "FC4", 1, 3, 3, 3, 12);
    train_recipe ra = train_recipe_default(), rb;
    ra.epochs = 3, ra.lr = 0.002f;
    uint8_t *buf;
    size_t len;
    assert_int_equal(model_save_mem(&a, &ra, &buf, &len), BN_OK);
    static const struct { const char *text, *needle; } bad[] = {
        {"epochs=3\nlr=0.002", "does not end in a newline"},
        {"epochs=3\nlr:0.002\n", "line 2 'lr:0.002' is not key=value"},
        {"epochs=3\nlr= 0.002\n", "line 2 contains byte 0x20"},
        {"epochs=3\nwarp=9\n", "unknown key 'warp'"},
        {"lr=0.002\nepochs=3\n", "key epochs repeated or out of order"},
        {"epochs=3\nepochs=3\n", "key epochs repeated or out of order"},
        {"epochs=3.5\n", "recipe key epochs: 3.5 is not an integer"},
        {"epochs=-1\n", "recipe key epochs: -1 is not an integer in [0,"},
        {"loss=hinge\n", "recipe key loss: 'hinge' is not ce or mhl"},
        {"p01=1.5\n", "recipe key p01: 1.5"},
        {"lr=nan\n", "recipe key lr: nan"},
        {"epochs=3\nlr=0.0020\n", "not in canonical form"},
        {"epochs=3\nbatch=256\nlr=0.002\n", "not in canonical form"},
        {"epochs=3x\n", "'3x' is not a number"},
        {"epochs=3\tx\n", "contains byte 0x09"},
        {"flip_rows=2\nflip_t=5,4\n", "flip_t: row 1 (4) does not increase"},
        {"optimizer=bop\nmom_e=12\n", "bad Bop momentum format"},
        {"momentum_format=fp16\n", "unknown key 'momentum_format'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n;
        uint8_t *c = with_recipe_text(buf, len, 3, bad[i].text, &n);
        expect_refused(c, n, bad[i].needle);
        free(c);
    }
    /* the same edit with the canonical text loads */
    size_t n;
    uint8_t *c = with_recipe_text(buf, len, 3, "epochs=3\nlr=0.002\n", &n);
    assert_int_equal(n, len);
    assert_memory_equal(c, buf, len);
    assert_int_equal(model_load_mem(&b, &rb, c, n, "ok"), BN_OK);
    assert_recipe_equal(&ra, &rb);
    net_free(&b);
    free(c);
    /* a recipe length beyond the file */
    c = malloc(len);
    memcpy(c, buf, len);
    set_le32(c + 44 + 3, (uint32_t)len);
    fix_crc(c, len);
    expect_refused(c, len, "bad recipe text length");
    free(c);
    free(buf);
    net_free(&a);
}

/* A classifier-only net (empty topology) on a tiny input round-trips too. */
static void test_classifier_only(void **state) {
    (void)state;
    net a, b;
    make_net(&a, "", 1, 3, 3, 2, 4);
    uint8_t *buf;
    size_t len;
    assert_int_equal(model_save_mem(&a, NULL, &buf, &len), BN_OK);
    train_recipe zero;
    memset(&zero, 0, sizeof zero);
    assert_int_equal(len, model_size(&a, &zero));
    assert_int_equal(len, model_size(&a, NULL));
    assert_int_equal(model_load_mem(&b, NULL, buf, len, NULL), BN_OK);
    assert_net_equal(&a, &b);
    net_free(&b);
    /* NULL name: the message says "model buffer" */
    assert_int_equal(model_load_mem(&b, NULL, buf, len - 1, NULL), BN_EFORMAT);
    assert_non_null(strstr(bn_errmsg(), "model buffer"));
    net_free(&a);
    free(buf);
}

static void test_truncation_and_flips(void **state) {
    (void)state;
    const struct { const char *s; int c, h, w, k; } nets[2] = {{"FC4", 1, 3, 3, 3}, {VGG, 1, 28, 28, 10}};
    for (int t = 0; t < 2; t++) {
        net a;
        make_net(&a, nets[t].s, nets[t].c, nets[t].h, nets[t].w, nets[t].k, 10 + t);
        train_recipe ra = make_recipe();
        uint8_t *buf;
        size_t len;
        assert_int_equal(model_save_mem(&a, &ra, &buf, &len), BN_OK);
        /* every proper prefix is refused */
        for (size_t cut = 0; cut < len; cut++) expect_refused(buf, cut, "truncated");
        expect_refused(buf, 100, "truncated model: 100 of");
        /* every byte (small net) or a good sample (large net) flipped: refused */
        uint8_t *c = malloc(len + 8);
        size_t step = len < 2000 ? 1 : 97;
        for (size_t i = 0; i < len; i += step) {
            memcpy(c, buf, len);
            c[i] ^= (uint8_t)(1u << (i % 8));
            expect_refused(c, len, NULL);
            c[i] = (uint8_t)~buf[i];
            expect_refused(c, len, NULL);
        }
        /* a flip in the parameters is a checksum failure */
        memcpy(c, buf, len);
        c[len - 10] ^= 0x10;
        expect_refused(c, len, "checksum mismatch");
        /* a flipped CRC byte, too */
        memcpy(c, buf, len);
        c[len - 1] ^= 0x80;
        expect_refused(c, len, "checksum mismatch");
        /* trailing bytes */
        memcpy(c, buf, len);
        memset(c + len, 0, 8);
        expect_refused(c, len + 8, "unexpected bytes after");
        free(c);
        free(buf);
        net_free(&a);
    }
}

static void test_header_refusals(void **state) {
    (void)state;
    net a;
    make_net(&a, VGG, 1, 28, 28, 10, 20);
    train_recipe ra = make_recipe();
    uint8_t *buf;
    size_t len;
    save_v5(&a, &ra, &buf, &len); /* the binary recipe block's checks: the legacy path */
    uint8_t *c = malloc(len);
    const size_t T = strlen(VGG);

    memcpy(c, buf, len);
    memcpy(c, "BNASMDL0", 8);
    expect_refused(c, len, "bad magic");
    memcpy(c, "\x89PNG\r\n\x1a\n", 8);
    expect_refused(c, len, "not a bnas model");
    expect_refused(c, 3, "bad magic");

    /* a future version, even with a valid checksum */
    memcpy(c, buf, len);
    set_le32(c + 8, 7);
    fix_crc(c, len);
    expect_refused(c, len, "version 7 is newer");
    set_le32(c + 8, 0);
    fix_crc(c, len);
    expect_refused(c, len, "version 0");

    /* big-endian marker */
    memcpy(c, buf, len);
    set_le32(c + 12, 0x04030201u);
    fix_crc(c, len);
    expect_refused(c, len, "endianness");

    /* length field disagreeing with the buffer */
    memcpy(c, buf, len);
    c[16] ^= 4;
    expect_refused(c, len, NULL);

    /* checksum-valid but inconsistent contents */
    memcpy(c, buf, len);
    c[28 + T - 1] = '3'; /* FC32 -> FC33: other parameter count */
    fix_crc(c, len);
    expect_refused(c, len, "does not have the file's");
    memcpy(c, buf, len);
    c[28] = 'X';
    fix_crc(c, len);
    expect_refused(c, len, "bad topology");
    memcpy(c, buf, len);
    c[28 + 2] = '\n';
    fix_crc(c, len);
    expect_refused(c, len, "topology contains byte 0x0a");
    memcpy(c, buf, len);
    set_le32(c + 68 + T, 7);
    fix_crc(c, len);
    expect_refused(c, len, "recipe key loss: unknown code 7");
    memcpy(c, buf, len);
    set_le32(c + 76 + T, 3);
    fix_crc(c, len);
    expect_refused(c, len, "recipe key flip: unknown code 3");
    memcpy(c, buf, len);
    set_le32(c + 28 + T, 0);
    fix_crc(c, len);
    expect_refused(c, len, "bad input shape");
    memcpy(c, buf, len);
    set_le32(c + 40 + T, 11); /* 11 classes: other parameter count */
    fix_crc(c, len);
    expect_refused(c, len, "does not have the file's");
    memcpy(c, buf, len);
    set_le32(c + 32 + T, 2); /* 2x28 input: too small for two pools */
    set_le32(c + 28 + T, 1);
    fix_crc(c, len);
    expect_refused(c, len, NULL);
    memcpy(c, buf, len);
    c[352 + T] ^= 1; /* P off by one, S unchanged */
    fix_crc(c, len);
    expect_refused(c, len, "do not fill");
    memcpy(c, buf, len);
    set_le32(c + 104 + T, 5);
    fix_crc(c, len);
    expect_refused(c, len, "recipe key optimizer: unknown code 5");
    memcpy(c, buf, len);
    set_le32(c + 120 + T, 12); /* 12 exponent bits */
    fix_crc(c, len);
    expect_refused(c, len, "bad Bop momentum format");
    memcpy(c, buf, len);
    set_le32(c + 132 + T, 2);
    fix_crc(c, len);
    expect_refused(c, len, "recipe key mom_subnormals: 2 is not an integer in [0, 1]");
    memcpy(c, buf, len);
    set_le32(c + 140 + T, 0x40000000u); /* xnor_p10 = 2.0 */
    fix_crc(c, len);
    expect_refused(c, len, "recipe key xnor_p10: 2 is not a number in [0, 1]");
    memcpy(c, buf, len);
    set_le32(c + 144 + T, (uint32_t)-3); /* lta_n = -3 */
    fix_crc(c, len);
    expect_refused(c, len, "recipe key lta_n: -3");
    memcpy(c, buf, len);
    set_le32(c + 152 + T, 0x40000000u); /* act_p10 = 2.0 */
    fix_crc(c, len);
    expect_refused(c, len, "recipe key act_p10: 2");
    memcpy(c, buf, len);
    set_le32(c + 156 + T, 17); /* 17 table rows */
    fix_crc(c, len);
    expect_refused(c, len, "recipe key flip_rows: 17");
    memcpy(c, buf, len);
    set_le32(c + 160 + T + 4, 0xC2200000u); /* flip_t[1] = -40 = flip_t[0]: not increasing */
    fix_crc(c, len);
    expect_refused(c, len, "recipe key flip_t: row 1");
    memcpy(c, buf, len);
    set_le32(c + 24, 5000); /* absurd topology length */
    fix_crc(c, len);
    expect_refused(c, len, "bad topology length");
    /* a huge input with a tiny file: refused before anything is allocated */
    memcpy(c, buf, len);
    set_le32(c + 28 + T, 65536), set_le32(c + 32 + T, 65536), set_le32(c + 36 + T, 65536);
    fix_crc(c, len);
    expect_refused(c, len, "does not have the file's");

    free(c);
    free(buf);
    net_free(&a);
}

/* Makes an older version's file from the version 5 bytes of a VGG net (seed
   `seed`) by cutting the `gap` bytes the newer versions added at byte `cut + T`
   (T the topology length), checks that it loads into the same net and a recipe
   equal to `fix(current recipe)`, and that its truncations are refused. */
static void check_old_version(uint32_t version, size_t cut, size_t gap, size_t header, uint64_t seed,
                              void (*fix)(train_recipe *want)) {
    net a, b;
    make_net(&a, VGG, 1, 28, 28, 10, seed);
    train_recipe ra = make_recipe(), rb;
    uint8_t *buf;
    size_t len;
    save_v5(&a, &ra, &buf, &len);
    const size_t T = strlen(VGG), at = cut + T, len_old = len - gap;
    uint8_t *old = malloc(len_old);
    memcpy(old, buf, at);
    memcpy(old + at, buf + at + gap, len - at - gap);
    set_le32(old + 8, version);
    set_le32(old + 16, (uint32_t)len_old), set_le32(old + 20, 0);
    fix_crc(old, len_old);
    assert_int_equal(len_old, header + T + 4 * (a.n_params + a.n_stats));
    assert_int_equal(model_load_mem(&b, &rb, old, len_old, "old"), BN_OK);
    assert_net_equal(&a, &b);
    train_recipe want = ra;
    fix(&want);
    assert_recipe_equal(&want, &rb);
    net_free(&b);
    for (size_t k = 0; k < len_old; k += 7) expect_refused(old, k, NULL);
    free(old);
    free(buf);
    net_free(&a);
}

/* The fields each version added, as an older file loads them. */
static void fields_of_v6(train_recipe *w) { w->flip_bn0 = BN0_FLIPPED; }
static void fields_of_v5(train_recipe *w) {
    fields_of_v6(w);
    w->flip_rows = 0;
    memset(w->flip_t, 0, sizeof w->flip_t);
    memset(w->flip_p01, 0, sizeof w->flip_p01);
    memset(w->flip_p10, 0, sizeof w->flip_p10);
}
static void fields_of_v4(train_recipe *w) {
    w->lta_n = 0, w->act_p01 = w->act_p10 = 0.0f;
    fields_of_v5(w);
}
static void fields_of_v3(train_recipe *w) {
    w->xnor_p01 = w->xnor_p10 = 0.0f;
    fields_of_v4(w);
}
static void fields_of_v2(train_recipe *w) {
    train_recipe d = train_recipe_default();
    w->optimizer = OPT_ADAM, w->bop_gamma = d.bop_gamma, w->bop_tau = d.bop_tau;
    w->bop_gamma_decay = d.bop_gamma_decay, w->mom_e = d.mom_e, w->mom_f = d.mom_f;
    w->mom_bias = d.mom_bias, w->mom_subnormals = d.mom_subnormals;
    fields_of_v3(w);
}

/* A version 1 file (without the eight optimizer fields of version 2 and the
   fields of versions 3 to 5) loads as Adam with the default Bop fields. */
static void test_version1_still_loads(void **state) {
    (void)state;
    check_old_version(1, 104, 52 + 196, 124, 40, fields_of_v2);
}

/* A version 2 file (without the two XNOR product rates of version 3 and the
   fields of versions 4 and 5) loads with them 0. */
static void test_version2_still_loads(void **state) {
    (void)state;
    check_old_version(2, 136, 20 + 196, 156, 41, fields_of_v3);
}

/* A version 3 file (without the LTA and activation-flip fields of version 4
   and the flip-rate table of version 5) loads with them 0. */
static void test_version3_still_loads(void **state) {
    (void)state;
    check_old_version(3, 144, 12 + 196, 164, 42, fields_of_v4);
}

/* A version 4 file (without the flip-rate table of version 5: 4 + 3 * 16 * 4
   bytes) loads with no table. */
static void test_version4_still_loads(void **state) {
    (void)state;
    check_old_version(4, 156, 196, 176, 43, fields_of_v5);
}

/* A version 5 file (this test's writer) loads with all but the version 6 knobs. */
static void test_version5_still_loads(void **state) {
    (void)state;
    check_old_version(5, 156, 0, 372, 44, fields_of_v6);
}

/* A version 5 file written by the baseline bnas (before format 6): `bnas
   train --topology FC8 --epochs 1 --train-images 1000 --val 0 --batch 100
   --loss mhl --mhl-b 64 --flip ste --p01 0.02 --p10 0.05 --seed 7 --threads 1`.
   It loads with that recipe, this test's version 5 writer gives back its
   bytes, and saved as version 6 and loaded again it is the same net. */
static void test_baseline_v5_file(void **state) {
    (void)state;
    net a, b;
    train_recipe ra, rb;
    char path[600];
    snprintf(path, sizeof path, "%s/tests/data/baseline_v5.bnm", getenv("BNAS_SOURCE_DIR") ? getenv("BNAS_SOURCE_DIR") : ".");
    assert_int_equal(model_load(&a, &ra, path), BN_OK);
    train_recipe want = train_recipe_default();
    want.epochs = 1, want.batch = 100, want.loss = LOSS_MHL, want.mhl_b = 64, want.flip = FLIP_STE;
    want.p01 = 0.02f, want.p10 = 0.05f, want.seed = 7;
    assert_recipe_equal(&want, &ra);
    uint8_t *v5, *v6, *file;
    size_t l5, l6;
    save_v5(&a, &ra, &v5, &l5);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    file = malloc(l5 + 1);
    assert_int_equal(fread(file, 1, l5 + 1, f), l5);
    fclose(f);
    assert_memory_equal(file, v5, l5);
    assert_int_equal(model_save_mem(&a, &ra, &v6, &l6), BN_OK);
    assert_int_equal(l6, l5 - 308 + 4 + strlen("epochs=1\nbatch=100\nloss=mhl\nmhl_b=64\nflip=ste\np01=0.02\np10=0.05\nseed=7\n"));
    assert_int_equal(model_load_mem(&b, &rb, v6, l6, "v6"), BN_OK);
    assert_net_equal(&a, &b);
    assert_recipe_equal(&ra, &rb);
    free(v5), free(v6), free(file);
    net_free(&a), net_free(&b);
}

static void test_file_errors(void **state) {
    (void)state;
    net a, b;
    make_net(&a, "FC8", 1, 4, 4, 3, 30);
    char path[512];
    snprintf(path, sizeof path, "%s/missing.bnm", tmpdir);
    assert_int_equal(model_load(&b, NULL, path), BN_EIO);
    assert_non_null(strstr(bn_errmsg(), "missing.bnm"));
    assert_null(b.params);
    snprintf(path, sizeof path, "%s/no/such/dir/m.bnm", tmpdir);
    assert_int_equal(model_save(&a, NULL, path), BN_EIO);
    assert_non_null(strstr(bn_errmsg(), "m.bnm.tmp"));
    assert_int_equal(model_load(&b, NULL, tmpdir), BN_EIO);
    /* a truncated file on disk: the message names the path */
    snprintf(path, sizeof path, "%s/cut.bnm", tmpdir);
    assert_int_equal(model_save(&a, NULL, path), BN_OK);
    assert_int_equal(truncate(path, 50), 0);
    assert_int_equal(model_load(&b, NULL, path), BN_EFORMAT);
    assert_non_null(strstr(bn_errmsg(), "cut.bnm: truncated"));
    assert_null(b.params);
    /* an empty file */
    assert_int_equal(truncate(path, 0), 0);
    assert_int_equal(model_load(&b, NULL, path), BN_EFORMAT);
    assert_non_null(strstr(bn_errmsg(), "cut.bnm"));
    /* an absurdly large (sparse) file is refused without reading it */
    assert_int_equal(truncate(path, (off_t)1 << 34), 0);
    assert_int_equal(model_load(&b, NULL, path), BN_EFORMAT);
    assert_non_null(strstr(bn_errmsg(), "cut.bnm: absurd size"));
    assert_int_equal(remove(path), 0);
    net_free(&a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_mem_and_file),
        cmocka_unit_test(test_documented_layout),
        cmocka_unit_test(test_classifier_only),
        cmocka_unit_test(test_truncation_and_flips),
        cmocka_unit_test(test_header_refusals),
        cmocka_unit_test(test_version1_still_loads), cmocka_unit_test(test_version2_still_loads),
        cmocka_unit_test(test_version3_still_loads), cmocka_unit_test(test_version4_still_loads),
        cmocka_unit_test(test_version5_still_loads), cmocka_unit_test(test_baseline_v5_file),
        cmocka_unit_test(test_recipe_text_refusals),
        cmocka_unit_test(test_file_errors),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
