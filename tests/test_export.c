/*
** Export: the generated standalone C (engine/codegen.h) compiled with
** `cc -std=c99 -Wall -Wextra -Werror -pedantic -O2` together with a driver
** this test writes, run on the FashionMNIST test images: its predictions must
** equal packed_predict and net_predict, and scale * (float)acc must equal the
** packed logits bit for bit, for an FC net, a small VGG-like conv net, odd
** shapes, and negative, zero and overflowing output scales. Then `bnas export`
** end to end through the real binary ($BNAS_BIN) on a tiny real study, its
** error exits, and `bnas eval --predictions` on the exported model files
** against the compiled C, image by image.
*/
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/codegen.h"
#include "engine/data.h"
#include "engine/err.h"
#include "engine/model.h"
#include "engine/net.h"
#include "engine/packed.h"
#include "engine/rng.h"
#include "engine/train.h"
#include "nas/store.h"
#include "tests/testutil.h"

#define CC_FLAGS "-std=c99 -Wall -Wextra -Werror -pedantic -O2"

static dataset g_train, g_test;
static char g_dir[256];        /* scratch directory of the test group */
static char g_images[300];     /* the FashionMNIST test images, raw (10000, 28, 28, 1) */
static const char *g_bin;      /* the bnas binary */

static void write_raw(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int setup(void **state) {
    (void)state;
    if (load_fashion_mnist(&g_train, &g_test)) return -1;
    g_bin = bnas_bin();
    if (tmpdir_make(g_dir, sizeof g_dir, "export")) return -1;
    snprintf(g_images, sizeof g_images, "%s/fmnist_test.raw", g_dir);
    FILE *f = fopen(g_images, "wb");
    if (!f) return -1;
    size_t len = (size_t)g_test.n * g_test.h * g_test.w * g_test.c;
    if (fwrite(g_test.pixels, 1, len, f) != len) return -1;
    return fclose(f) == 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    data_free(&g_train), data_free(&g_test);
    return tmpdir_remove(g_dir);
}

/* ---- The argmax rule ---- */

/* The integer rule is exact where the mode says so: consecutive integers keep
   a strict order after scale * (float)acc. */
static void check_mode(float s, int64_t A) {
    int mode = codegen_argmax_mode(s, A);
    if (mode != CODEGEN_ARGMAX && mode != CODEGEN_ARGMIN) return;
    for (int64_t a = -A; a < A; a++) {
        float x = s * (float)a, y = s * (float)(a + 1);
        if (mode == CODEGEN_ARGMAX ? !(x < y) : !(x > y))
            fail_msg("scale %a: %lld and %lld give %a and %a", (double)s, (long long)a, (long long)(a + 1),
                     (double)x, (double)y);
    }
}

static void test_argmax_mode(void **state) {
    (void)state;
    const int64_t A = 255 * 784; /* a first-layer classifier on 28x28 images */
    assert_int_equal(codegen_argmax_mode(0.37f, A), CODEGEN_ARGMAX);
    assert_int_equal(codegen_argmax_mode(-0.37f, A), CODEGEN_ARGMIN);
    assert_int_equal(codegen_argmax_mode(0.0f, A), CODEGEN_CLASS0);
    assert_int_equal(codegen_argmax_mode(-0.0f, A), CODEGEN_CLASS0);
    assert_int_equal(codegen_argmax_mode(NAN, A), CODEGEN_FLOAT);
    assert_int_equal(codegen_argmax_mode(INFINITY, A), CODEGEN_FLOAT);
    assert_int_equal(codegen_argmax_mode(1e-42f, A), CODEGEN_FLOAT);  /* subnormal */
    assert_int_equal(codegen_argmax_mode(1e34f, A), CODEGEN_FLOAT);   /* could overflow */
    assert_int_equal(codegen_argmax_mode(1.0f, (int64_t)1 << 24), CODEGEN_FLOAT); /* rounding ties */
    /* overflow really ties: 3e37 * 12 and 3e37 * 13 are both +inf */
    volatile float big = 3e37f;
    assert_true(isinf(big * 12.0f) && big * 12.0f == big * 13.0f);
    /* and beyond 2^24 consecutive integers are no longer distinct floats */
    assert_true((float)16777217 == (float)16777216);
    const float scales[] = {0.37f, 1e-3f, 0.0217763446f, 3.0f, 123.456f, -0.37f, -1e-3f, -7.5f, FLT_MIN, -FLT_MIN,
                            1e-30f, 1e30f, 1.7e32f};
    int n = sanitized() ? 4 : (int)(sizeof scales / sizeof scales[0]);
    for (int i = 0; i < n; i++) {
        check_mode(scales[i], A);
        check_mode(scales[i], 4096);
    }
    check_mode(0.5f, (int64_t)1 << 22); /* the largest range allowed */
}

/* ---- Nets for the generated-C tests ---- */

static void train_net(net *n, const char *topo, int n_train, uint64_t seed) {
    arch a;
    assert_int_equal(arch_parse(&a, topo), BN_OK);
    assert_int_equal(net_create(n, &a, 1, 28, 28, 10), BN_OK);
    pcg32 g;
    rng_keyed(&g, seed, 0, RNG_INIT);
    net_init_params(n, &g);
    train_recipe r = train_recipe_default();
    r.epochs = 1;
    r.batch = 100;
    r.seed = seed;
    dataset tr = data_slice(&g_train, 0, n_train);
    assert_int_equal(train_recipe_run(n, &tr, NULL, &r, NULL, NULL), BN_OK);
}

/* Odd shapes with random weights and batch-norm statistics spread around the
   accumulators (as in test_packed.c), so activations vary. */
static void random_net(net *n, const char *topo, int c, int h, int w, uint64_t seed) {
    arch a;
    assert_int_equal(arch_parse(&a, topo), BN_OK);
    assert_int_equal(net_create(n, &a, c, h, w, 10), BN_OK);
    pcg32 r;
    rng_keyed(&r, seed, 1, RNG_INIT);
    net_init_params(n, &r);
    *n->scale = 0.37f;
    for (int l = 0; l < n->n_layers - 1; l++) {
        net_layer *L = &n->layers[l];
        double spread = L->first ? 0.5 * sqrt((double)L->fan_in) : sqrt((double)L->fan_in);
        for (int o = 0; o < L->out_c; o++) {
            L->gamma[o] = pcg32_float(&r) - 0.25f;
            L->beta[o] = pcg32_float(&r) - 0.5f;
            L->mean[o] = (float)((pcg32_double(&r) - 0.5) * spread + (L->first ? 0.125 * L->fan_in : 0));
            L->var[o] = (float)(spread * spread * (0.2 + pcg32_double(&r)));
        }
    }
}

/* One generated net in the driver. */
typedef struct {
    const char *name;     /* C name */
    net n;                /* float net */
    packed_net p;         /* its packed form */
    const uint8_t *x;     /* images (B, H, W, C) */
    const char *images;   /* the same images as a raw file */
    int B;                /* images run */
    codegen_info info;    /* what codegen reported */
    double seconds;       /* wall time of the last driver run */
} gen_case;

/* The driver: `driver NET IMAGES OUT N` writes, per image, the prediction and
   the classifier accumulators as int32; on the first 200 images it exits 3
   if predict and predict_r disagree, 4 if logits != scale * acc. */
static void write_driver(const char *path, gen_case *cs, int n) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <stdint.h>\n");
    for (int i = 0; i < n; i++) fprintf(f, "#include \"bnas_%s.h\"\n", cs[i].name);
    fprintf(f, "typedef struct {\n    const char *name;\n    size_t img;\n    int classes;\n"
               "    long scratch;\n    float scale;\n"
               "    void (*acc)(const uint8_t *, int32_t *, uint32_t *);\n"
               "    int (*pred)(const uint8_t *);\n"
               "    int (*pred_r)(const uint8_t *, uint32_t *);\n"
               "    void (*logits)(const uint8_t *, float *, uint32_t *);\n} entry;\n");
    fprintf(f, "int main(int argc, char **argv) {\n    entry nets[%d];\n    int k, i, c;\n", n);
    for (int i = 0; i < n; i++) {
        char U[64];
        size_t j = 0;
        for (; cs[i].name[j]; j++) U[j] = (char)(cs[i].name[j] >= 'a' && cs[i].name[j] <= 'z' ? cs[i].name[j] - 32 : cs[i].name[j]);
        U[j] = 0;
        fprintf(f, "    nets[%d].name = \"%s\";\n    nets[%d].img = BNAS_%s_IN_C * BNAS_%s_IN_H * BNAS_%s_IN_W;\n"
                   "    nets[%d].classes = BNAS_%s_CLASSES;\n    nets[%d].scratch = BNAS_%s_SCRATCH_WORDS;\n"
                   "    nets[%d].scale = bnas_%s_scale;\n"
                   "    nets[%d].acc = bnas_%s_accumulators;\n    nets[%d].pred = bnas_%s_predict;\n"
                   "    nets[%d].pred_r = bnas_%s_predict_r;\n    nets[%d].logits = bnas_%s_logits;\n",
                i, cs[i].name, i, U, U, U, i, U, i, U, i, cs[i].name, i, cs[i].name, i, cs[i].name, i,
                cs[i].name, i, cs[i].name);
    }
    fprintf(f,
            "    if (argc != 5) return 2;\n"
            "    for (k = 0; k < %d; k++) if (!strcmp(nets[k].name, argv[1])) break;\n"
            "    if (k == %d) return 2;\n"
            "    {\n"
            "        const entry *e = &nets[k];\n"
            "        long n = atol(argv[4]);\n"
            "        uint8_t *x = malloc(e->img * (size_t)n);\n"
            "        uint32_t *scratch = malloc(sizeof(uint32_t) * (size_t)e->scratch);\n"
            "        int32_t *acc = malloc(sizeof(int32_t) * (size_t)(e->classes + 1));\n"
            "        float *z = malloc(sizeof(float) * (size_t)e->classes);\n"
            "        FILE *in = fopen(argv[2], \"rb\"), *out = fopen(argv[3], \"wb\");\n"
            "        if (!x || !scratch || !acc || !z || !in || !out) return 1;\n"
            "        if (fread(x, e->img, (size_t)n, in) != (size_t)n) return 1;\n"
            "        for (i = 0; i < n; i++) {\n"
            "            const uint8_t *img = x + e->img * (size_t)i;\n"
            "            int p = e->pred(img);\n"
            "            e->acc(img, acc + 1, scratch);\n"
            "            if (i < 200) {\n"
            "                if (e->pred_r(img, scratch) != p || e->pred_r(img, 0) != p) return 3;\n"
            "                e->logits(img, z, 0);\n"
            "                for (c = 0; c < e->classes; c++) {\n"
            "                    float want = e->scale * (float)acc[1 + c];\n"
            "                    if (memcmp(&want, &z[c], sizeof want)) return 4;\n"
            "                }\n"
            "            }\n"
            "            acc[0] = p;\n"
            "            if (fwrite(acc, sizeof(int32_t), (size_t)e->classes + 1, out) != (size_t)e->classes + 1) return 1;\n"
            "        }\n"
            "        if (fclose(out)) return 1;\n"
            "        fclose(in);\n"
            "        free(x), free(scratch), free(acc), free(z);\n"
            "    }\n"
            "    return 0;\n}\n",
            n, n);
    assert_int_equal(fclose(f), 0);
}

/* Runs the driver on case c and compares with the packed and float paths. */
static void check_case(const char *driver, gen_case *c, int B, int32_t **accs_out) {
    char cmd[1200], out[400];
    snprintf(out, sizeof out, "%s/gen/out_%s_%s.bin", g_dir, c->name, strrchr(driver, '/') + 1);
    snprintf(cmd, sizeof cmd, "%s %s %s %s %d", driver, c->name, c->images, out, B);
    double t0 = now_s();
    int rc = sh(cmd);
    c->seconds = now_s() - t0;
    if (rc) fail_msg("%s: driver exited with %d (3: predict_r differs, 4: logits differ)", c->name, rc);
    size_t len;
    int32_t *r = (int32_t *)slurp(out, &len);
    if (!r) fail_msg("cannot open %s", out);
    int K = c->p.classes;
    assert_int_equal(len, sizeof(int32_t) * (size_t)B * (K + 1));
    float *lp = malloc(sizeof(float) * (size_t)B * K);
    int *pp = malloc(sizeof(int) * (size_t)B), *pn = malloc(sizeof(int) * (size_t)B);
    packed_logits(&c->p, lp, c->x, B);
    packed_predict(&c->p, pp, c->x, B);
    net_predict(&c->n, pn, c->x, B);
    int mism_p = 0, mism_n = 0, mism_l = 0;
    for (int i = 0; i < B; i++) {
        const int32_t *row = r + (size_t)i * (K + 1);
        mism_p += row[0] != pp[i];
        mism_n += row[0] != pn[i];
        for (int k = 0; k < K; k++) {
            float z = c->p.scale * (float)row[1 + k];
            mism_l += memcmp(&z, &lp[(size_t)i * K + k], sizeof z) != 0;
        }
    }
    if (mism_p || mism_n || mism_l)
        fail_msg("%s (%s): %d predictions differ from packed_predict, %d from net_predict, %d logits differ",
                 c->name, driver, mism_p, mism_n, mism_l);
    if (accs_out) *accs_out = r;
    else free(r);
    free(lp), free(pp), free(pn);
}

static int argmax_int(const int32_t *a, int K, int sign) {
    int best = 0;
    for (int k = 1; k < K; k++)
        if (sign > 0 ? a[k] > a[best] : a[k] < a[best]) best = k;
    return best;
}

static void test_generated_c_equals_packed(void **state) {
    (void)state;
    int san = sanitized();
    int B = san ? 1000 : 10000;
    double t_start = now_s();
    char gdir[300], cmd[2400];
    snprintf(gdir, sizeof gdir, "%s/gen", g_dir);
    assert_int_equal(mkdir(gdir, 0777), 0);

    enum { FC, CONV, SMALL, NEG, ZERO, HUGE, LIN, ODD, NCASE };
    static gen_case cs[NCASE];
    memset(cs, 0, sizeof cs);
    const char *names[NCASE] = {"fc", "conv", "small", "neg", "zero", "huge", "lin", "odd"};
    train_net(&cs[FC].n, "FC512-FC512", san ? 2000 : 5000, 31);
    train_net(&cs[CONV].n, "C16-MP2-C16-MP2-FC64", san ? 2000 : 3000, 32);
    train_net(&cs[SMALL].n, "FC32-FC40", 2000, 33);
    train_net(&cs[LIN].n, "", 2000, 34);
    for (int k = NEG; k <= HUGE; k++) assert_int_equal(net_copy(&cs[k].n, &cs[SMALL].n), BN_OK);
    *cs[NEG].n.scale = -*cs[SMALL].n.scale;
    *cs[ZERO].n.scale = 0.0f;
    *cs[HUGE].n.scale = 3e37f; /* 3e37 * acc overflows to +-inf for |acc| >= 12: ties */
    /* odd shapes: 3 channels, 9x7 (pool floors to 4x3), 40 channels = 2 words per pixel,
       a dense layer reading padded pixels, 33 units = 2 words */
    random_net(&cs[ODD].n, "C7-C40-MP2-FC33", 3, 9, 7, 35);
    const int n_odd = 500;
    uint8_t *xodd = malloc((size_t)n_odd * 3 * 9 * 7);
    pcg32 r;
    rng_keyed(&r, 36, 2, RNG_INIT); /* test images */
    for (size_t k = 0; k < (size_t)n_odd * 3 * 9 * 7; k++) {
        uint32_t u = pcg32_next(&r);
        xodd[k] = (u & 3) == 0 ? 0 : (uint8_t)(u >> 8);
    }
    char odd_path[400];
    snprintf(odd_path, sizeof odd_path, "%s/odd.raw", gdir);
    write_raw(odd_path, xodd, (size_t)n_odd * 3 * 9 * 7);

    char srcs[1500] = "";
    for (int k = 0; k < NCASE; k++) {
        gen_case *c = &cs[k];
        c->name = names[k];
        c->x = k == ODD ? xodd : g_test.pixels;
        c->images = k == ODD ? odd_path : g_images;
        c->B = k == ODD ? n_odd : B;
        assert_int_equal(packed_from_net(&c->p, &c->n), BN_OK);
        int rc = codegen_write_c(&c->p, c->name, gdir, &c->info);
        if (rc) fail_msg("%s", bn_errmsg());
        size_t len = strlen(srcs);
        snprintf(srcs + len, sizeof srcs - len, " %s/bnas_%s.c", gdir, c->name);
    }
    assert_int_equal(cs[FC].info.argmax_mode, CODEGEN_ARGMAX);
    assert_int_equal(cs[CONV].info.argmax_mode, CODEGEN_ARGMAX);
    assert_int_equal(cs[NEG].info.argmax_mode, CODEGEN_ARGMIN);
    assert_int_equal(cs[ZERO].info.argmax_mode, CODEGEN_CLASS0);
    assert_int_equal(cs[HUGE].info.argmax_mode, CODEGEN_FLOAT);
    /* sizes: FC512-FC512 rows are whole 32-bit words, so the constants equal
       net_packed_bytes plus the invert words */
    assert_int_equal(cs[FC].info.const_bytes, net_packed_bytes(&cs[FC].n) + 4 * (16 + 16));
    assert_int_equal(cs[FC].info.scratch_words, 2 * 16);

    print_message("trained and generated in %.1f s\n", now_s() - t_start);
    t_start = now_s();
    char driver_c[400], driver[400], portable[400];
    snprintf(driver_c, sizeof driver_c, "%s/driver.c", gdir);
    snprintf(driver, sizeof driver, "%s/driver", gdir);
    snprintf(portable, sizeof portable, "%s/driver_portable", gdir);
    write_driver(driver_c, cs, NCASE);
    /* under the sanitizer run the generated code is checked for undefined
       behaviour and bad accesses too */
    const char *san_flags = san ? " -fsanitize=address,undefined -fno-sanitize-recover=all" : "";
    snprintf(cmd, sizeof cmd, "cc " CC_FLAGS "%s -I%s -o %s %s%s", san_flags, gdir, driver, driver_c, srcs);
    if (sh(cmd)) fail_msg("compile failed: %s", cmd);
    snprintf(cmd, sizeof cmd, "cc " CC_FLAGS "%s -DBNAS_PORTABLE_POPCOUNT -I%s -o %s %s%s", san_flags, gdir,
             portable, driver_c, srcs);
    if (sh(cmd)) fail_msg("compile failed: %s", cmd);
    print_message("compiled twice in %.1f s\n", now_s() - t_start);

    for (int k = 0; k < NCASE; k++) {
        gen_case *c = &cs[k];
        int32_t *acc = NULL;
        check_case(driver, c, c->B, &acc);
        double secs = c->seconds;
        check_case(portable, c, c->B < 500 ? c->B : 500, NULL);
        int K = c->p.classes, correct = 0, used[16] = {0}, n_used = 0, int_differs = 0;
        for (int i = 0; i < c->B; i++) {
            const int32_t *row = acc + (size_t)i * (K + 1);
            correct += c->images == g_images && row[0] == g_test.labels[i];
            used[row[0]] = 1;
            if (k == NEG) assert_int_equal(row[0], argmax_int(row + 1, K, -1));
            if (k == ZERO) assert_int_equal(row[0], 0);
            if (k == FC || k == CONV || k == SMALL || k == LIN)
                assert_int_equal(row[0], argmax_int(row + 1, K, 1));
            int_differs += row[0] != argmax_int(row + 1, K, 1);
        }
        for (int i = 0; i < 10; i++) n_used += used[i];
        if (k == HUGE) assert_true(int_differs > 0); /* the float argmax was needed */
        if (k != ZERO) assert_true(n_used >= 3);
        if (k == FC || k == CONV) assert_true(correct > 0.5 * c->B); /* really trained */
        char topo[128];
        arch_format(&c->n.arch, topo, sizeof topo);
        print_message("%-6s %-22s %5d images: generated C == packed == float; accuracy %.4f, "
                      "%zu const bytes, %zu scratch bytes, mode %d, driver %.2f s\n",
                      c->name, k == ODD ? "C7-C40-MP2-FC33 (3x9x7)" : topo[0] ? topo : "(classifier only)", c->B,
                      c->images == g_images ? (double)correct / c->B : 0.0, c->info.const_bytes,
                      4 * c->info.scratch_words, c->info.argmax_mode, secs);
        free(acc);
    }

    /* the generator is deterministic */
    char again[300];
    snprintf(again, sizeof again, "%s/again", g_dir);
    assert_int_equal(mkdir(again, 0777), 0);
    assert_int_equal(codegen_write_c(&cs[CONV].p, "conv", again, NULL), BN_OK);
    snprintf(cmd, sizeof cmd, "cmp -s %s/bnas_conv.c %s/bnas_conv.c && cmp -s %s/bnas_conv.h %s/bnas_conv.h",
             gdir, again, gdir, again);
    assert_int_equal(sh(cmd), 0);
    /* errors */
    assert_int_equal(codegen_write_c(&cs[CONV].p, "Conv", again, NULL), BN_EARG);
    assert_int_equal(codegen_write_c(&cs[CONV].p, "9lives", again, NULL), BN_EARG);
    assert_int_equal(codegen_write_c(&cs[CONV].p, "conv-x", again, NULL), BN_EARG);
    assert_int_equal(codegen_write_c(&cs[CONV].p, "conv", "/nonexistent/dir", NULL), BN_EIO);
    assert_non_null(strstr(bn_errmsg(), "/nonexistent/dir"));
    float keep = cs[SMALL].p.scale;
    cs[SMALL].p.scale = INFINITY;
    assert_int_equal(codegen_write_c(&cs[SMALL].p, "small", again, NULL), BN_EARG);
    cs[SMALL].p.scale = keep;

    for (int k = 0; k < NCASE; k++) packed_free(&cs[k].p), net_free(&cs[k].n);
    free(xodd);
}

/* ---- bnas export end to end ---- */

/* A tiny real study: FC16/FC32 (FC512 breaks the size constraint: INVALID;
   seed 1 draws it), one epoch on 2000 images. */
static const char *spec_text =
    "name: tiny\n"
    "seed: 1\n"
    "threads: 2\n"
    "data: {name: fashion_mnist, train: 2000, val: 500, test: 500}\n"
    "search_space:\n"
    "  fc_layers: 1\n"
    "  fc_width: [16, 32, 512]\n"
    "  epochs: 1\n"
    "  loss: [ce, mhl]\n"
    "  batch: 100\n"
    "strategy: {name: random, batch: 3}\n"
    "budget: {trials: 3}\n"
    "objectives:\n"
    "  - {metric: val_acc, direction: max}\n"
    "  - {metric: model_bytes, direction: min, ref: 300000}\n"
    "constraints: {max_model_bytes: 20000}\n"
    "evaluators: [accuracy, memory]\n";

/* Runs bnas with args (NULL-terminated), stderr to err_path; returns the exit code. */
static int bnas(const char *err_path, const char *const *args) {
    char cmd[4096];
    size_t n = (size_t)snprintf(cmd, sizeof cmd, "%s", g_bin);
    for (int i = 0; args[i]; i++) n += (size_t)snprintf(cmd + n, sizeof cmd - n, " '%s'", args[i]);
    snprintf(cmd + n, sizeof cmd - n, " >%s.out 2>%s", err_path, err_path);
    return sh(cmd);
}

static int file_has(const char *path, const char *text) {
    char *b = slurp(path, NULL);
    if (!b) fail_msg("cannot open %s", path);
    int has = strstr(b, text) != NULL;
    free(b);
    return has;
}

typedef struct {
    int number[64]; /* trial numbers */
    int state[64];  /* their states */
    int n;
} trial_list;

static int list_cb(void *user, const store_trial *t) {
    trial_list *l = user;
    if (l->n < 64) l->number[l->n] = t->number, l->state[l->n] = t->state, l->n++;
    return 0;
}

static void test_export_command(void **state) {
    (void)state;
    char spec[300], db[300], out[300], err[300], path[600], cmd[4096];
    snprintf(spec, sizeof spec, "%s/tiny.yaml", g_dir);
    snprintf(db, sizeof db, "%s/tiny.db", g_dir);
    snprintf(out, sizeof out, "%s/export/deep", g_dir); /* created with its parent */
    snprintf(err, sizeof err, "%s/stderr.txt", g_dir);
    write_text(spec, spec_text);
    const char *a_run[] = {"run", spec, "--db", db, "--quiet", NULL};
    assert_int_equal(bnas(err, a_run), 0);

    store *st = NULL;
    assert_int_equal(store_open(&st, db, 1), BN_OK);
    trial_list all = {{0}, {0}, 0}, front = {{0}, {0}, 0};
    assert_int_equal(store_each_trial(st, 0, list_cb, &all), BN_OK);
    assert_int_equal(store_each_trial(st, 1, list_cb, &front), BN_OK);
    assert_true(front.n >= 1);
    int not_complete = -1;
    for (int i = 0; i < all.n; i++)
        if (all.state[i] != TRIAL_COMPLETE) not_complete = all.number[i];
    assert_true(not_complete >= 0); /* the FC512 proposal is INVALID */

    const char *a_exp[] = {"export", db, "--pareto", "-o", out, NULL};
    if (bnas(err, a_exp) != 0) fail_msg("bnas export failed; see %s", err);

    char drv[600], srcs[2000] = "";
    snprintf(drv, sizeof drv, "%s/driver.c", out);
    FILE *f = fopen(drv, "w");
    assert_non_null(f);
    fprintf(f, "#include <stdio.h>\n#include <stdlib.h>\n#include <stdint.h>\n");
    for (int i = 0; i < front.n; i++) fprintf(f, "#include \"bnas_trial_%d.h\"\n", front.number[i]);
    fprintf(f, "int main(int argc, char **argv) {\n"
               "    static uint8_t x[1000 * 784];\n    int i;\n    FILE *in;\n"
               "    if (argc != 2 || !(in = fopen(argv[1], \"rb\")) || fread(x, 784, 1000, in) != 1000) return 1;\n"
               "    for (i = 0; i < 1000; i++) {\n");
    for (int i = 0; i < front.n; i++)
        fprintf(f, "        printf(\"%%d \", bnas_trial_%d_predict(x + 784 * i));\n", front.number[i]);
    fprintf(f, "        printf(\"\\n\");\n    }\n    fclose(in);\n    return 0;\n}\n");
    assert_int_equal(fclose(f), 0);

    int *want = malloc(sizeof(int) * 1000 * (size_t)front.n);
    for (int i = 0; i < front.n; i++) {
        int t = front.number[i];
        const char *ext[] = {"trial_%d.bnm", "bnas_trial_%d.c", "bnas_trial_%d.h", "trial_%d.md"};
        for (int e = 0; e < 4; e++) {
            char name[64];
            snprintf(name, sizeof name, ext[e], t);
            snprintf(path, sizeof path, "%s/%s", out, name);
            struct stat sb;
            if (stat(path, &sb) != 0 || sb.st_size == 0) fail_msg("%s is missing or empty", path);
        }
        /* the model file is the stored blob and loads */
        snprintf(path, sizeof path, "%s/trial_%d.bnm", out, t);
        size_t len;
        uint8_t *file = (uint8_t *)slurp(path, &len);
        if (!file) fail_msg("cannot open %s", path);
        void *blob = NULL;
        size_t blen = 0;
        char fmt[32];
        assert_int_equal(store_get_model(st, t, &blob, &blen, fmt, sizeof fmt), BN_OK);
        assert_int_equal(len, blen);
        assert_memory_equal(file, blob, len);
        free(file), free(blob);
        net n;
        train_recipe r;
        assert_int_equal(model_load(&n, &r, path), BN_OK);
        packed_net p;
        assert_int_equal(packed_from_net(&p, &n), BN_OK);
        int pp[1000];
        packed_predict(&p, pp, g_test.pixels, 1000);
        for (int k = 0; k < 1000; k++) want[(size_t)k * front.n + i] = pp[k];
        packed_free(&p);
        net_free(&n);
        /* the card names the trial, its spec hash and its memory */
        snprintf(path, sizeof path, "%s/trial_%d.md", out, t);
        char line[64];
        snprintf(line, sizeof line, "| trial | %d |", t);
        assert_true(file_has(path, line));
        assert_true(file_has(path, "| spec hash |"));
        assert_true(file_has(path, "all constant data"));
        assert_true(file_has(path, "| val_acc |"));
        size_t l0 = strlen(srcs);
        snprintf(srcs + l0, sizeof srcs - l0, " %s/bnas_trial_%d.c", out, t);
    }
    store_close(st);
    snprintf(cmd, sizeof cmd, "cc " CC_FLAGS " -I%s -o %s/driver %s%s", out, out, drv, srcs);
    if (sh(cmd)) fail_msg("compile failed: %s", cmd);
    snprintf(cmd, sizeof cmd, "%s/driver %s > %s/pred.txt", out, g_images, out);
    assert_int_equal(sh(cmd), 0);
    snprintf(path, sizeof path, "%s/pred.txt", out);
    f = fopen(path, "r");
    assert_non_null(f);
    for (int k = 0; k < 1000 * front.n; k++) {
        int v;
        assert_int_equal(fscanf(f, "%d", &v), 1);
        assert_int_equal(v, want[k]);
    }
    fclose(f);

    /* `bnas eval --predictions` on the exported model file agrees with the
       compiled C image by image (want now holds the C driver's output). */
    for (int i = 0; i < front.n; i++) {
        char model[400], csv[400], a_pred[400];
        snprintf(model, sizeof model, "%s/trial_%d.bnm", out, front.number[i]);
        snprintf(csv, sizeof csv, "%s/eval_%d.csv", out, front.number[i]);
        snprintf(a_pred, sizeof a_pred, "%s", csv);
        const char *a_eval[] = {"eval", model, "--images", "1000", "--ber", "0", "--repeats", "1",
                                "--predictions", a_pred, NULL};
        if (bnas(err, a_eval) != 0) fail_msg("bnas eval --predictions failed; see %s", err);
        f = fopen(csv, "r");
        assert_non_null(f);
        char header[64];
        assert_non_null(fgets(header, sizeof header, f));
        assert_string_equal(header, "image,label,predicted\n");
        int rows = 0, idx, label, pred, differ = 0;
        while (fscanf(f, "%d,%d,%d", &idx, &label, &pred) == 3) {
            assert_int_equal(idx, rows);
            assert_true(rows < 1000);
            assert_int_equal(label, g_test.labels[rows]);
            differ += pred != want[(size_t)rows * front.n + i];
            rows++;
        }
        assert_true(feof(f));
        fclose(f);
        assert_int_equal(rows, 1000);
        if (differ) fail_msg("trial %d: %d of 1000 predictions of bnas eval differ from the exported C", front.number[i], differ);
    }
    /* An unwritable predictions file is a runtime error naming it. */
    char unw[400];
    snprintf(unw, sizeof unw, "%s/sub/p.csv", spec); /* under a regular file */
    snprintf(path, sizeof path, "%s/trial_%d.bnm", out, front.number[0]);
    const char *a_unw[] = {"eval", path, "--images", "10", "--ber", "0", "--repeats", "1", "--predictions", unw, NULL};
    assert_int_equal(bnas(err, a_unw), 1);
    assert_true(file_has(err, "--predictions: cannot open"));
    free(want);

    /* --trial, repeated, into the same directory again */
    char num[16];
    snprintf(num, sizeof num, "%d", front.number[0]);
    const char *a_t[] = {"export", db, "--trial", num, "--trial", num, "-o", out, NULL};
    assert_int_equal(bnas(err, a_t), 0);

    /* runtime errors: exit 1 with a message */
    const char *a_unknown[] = {"export", db, "--trial", "999", "-o", out, NULL};
    assert_int_equal(bnas(err, a_unknown), 1);
    assert_true(file_has(err, "no trial 999"));
    char nc[16];
    snprintf(nc, sizeof nc, "%d", not_complete);
    const char *a_nc[] = {"export", db, "--trial", nc, "-o", out, NULL};
    assert_int_equal(bnas(err, a_nc), 1);
    assert_true(file_has(err, "only COMPLETE trials"));
    char notdb[300];
    snprintf(notdb, sizeof notdb, "%s/not_a_study.db", g_dir);
    write_text(notdb, "hello, I am not a SQLite file at all, but long enough to look like one maybe\n");
    const char *a_notdb[] = {"export", notdb, "--pareto", "-o", out, NULL};
    assert_int_equal(bnas(err, a_notdb), 1);
    assert_true(file_has(err, "bnas export:"));
    const char *a_missing[] = {"export", "/nonexistent/x.db", "--pareto", "-o", out, NULL};
    assert_int_equal(bnas(err, a_missing), 1);
    char blocked[400];
    snprintf(blocked, sizeof blocked, "%s/sub", spec); /* under a regular file */
    const char *a_blocked[] = {"export", db, "--pareto", "-o", blocked, NULL};
    assert_int_equal(bnas(err, a_blocked), 1);
    assert_true(file_has(err, blocked));

    /* usage errors: exit 2 */
    const char *u1[] = {"export", NULL};
    const char *u2[] = {"export", db, "--pareto", NULL};
    const char *u3[] = {"export", db, "-o", out, NULL};
    const char *u4[] = {"export", db, "--trial", "abc", "-o", out, NULL};
    const char *u5[] = {"export", db, "--pareto", "-o", out, "--bogus", NULL};
    const char *u6[] = {"export", db, "--pareto", "-o", NULL};
    const char *const *usage[] = {u1, u2, u3, u4, u5, u6};
    for (int i = 0; i < 6; i++) assert_int_equal(bnas(err, usage[i]), 2);
    const char *h[] = {"export", "--help", NULL};
    assert_int_equal(bnas(err, h), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_argmax_mode),
        cmocka_unit_test(test_generated_c_equals_packed),
        cmocka_unit_test(test_export_command),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
