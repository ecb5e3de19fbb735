/* Data set readers on the real FashionMNIST, every error path on small files
   generated here (plain and gzip), CIFAR-10 layout conversion, split and slice. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "engine/data.h"
#include "engine/err.h"
#include "engine/rng.h"
#include "tests/testutil.h"

/* ---------------------------------------------------------------------------
** Temp files
*/

static char tmpdir[256];

static int setup_dir(void **state) {
    (void)state;
    return tmpdir_make(tmpdir, sizeof tmpdir, "data");
}

static int teardown_dir(void **state) {
    (void)state;
    return tmpdir_remove(tmpdir);
}

/* Path of name inside the temp dir (static buffers, rotated: keep a copy of a
   path that must outlive a few more calls). */
static const char *tpath(const char *name) {
    static char bufs[8][512];
    static int k = 0;
    char *b = bufs[k++ & 7];
    snprintf(b, 512, "%s/%s", tmpdir, name);
    return b;
}

static void write_plain(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void write_gz(const char *path, const void *data, size_t len) {
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, data, (unsigned)len), (int)len);
    assert_int_equal(gzclose(f), Z_OK);
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* An IDX image file of n images h x w, pixel (i, y, x) = (i*7 + y*3 + x) & 255.
   Returns a malloc'd buffer of *len bytes. */
static uint8_t *make_images(uint32_t magic, uint32_t n, uint32_t h, uint32_t w, size_t *len) {
    size_t px = (size_t)n * h * w;
    uint8_t *b = calloc(16 + px, 1);
    put_be32(b, magic);
    put_be32(b + 4, n), put_be32(b + 8, h), put_be32(b + 12, w);
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t y = 0; y < h; y++)
            for (uint32_t x = 0; x < w; x++)
                b[16 + ((size_t)i * h + y) * w + x] = (uint8_t)((i * 7 + y * 3 + x) & 255);
    *len = 16 + px;
    return b;
}

/* An IDX label file of n labels, label i = i % 10. */
static uint8_t *make_labels(uint32_t magic, uint32_t n, size_t *len) {
    uint8_t *b = calloc(8 + n, 1);
    put_be32(b, magic);
    put_be32(b + 4, n);
    for (uint32_t i = 0; i < n; i++) b[8 + i] = (uint8_t)(i % 10);
    *len = 8 + n;
    return b;
}

/* Expects loading (images, labels) to fail with rc and a message containing
   `path` and `needle`, leaving the dataset zeroed. */
static void expect_idx_error(const char *images, const char *labels, int rc, const char *path,
                             const char *needle) {
    dataset d;
    memset(&d, 0xAB, sizeof d);
    int got = data_load_idx(&d, images, labels);
    if (got != rc || !strstr(bn_errmsg(), path) || !strstr(bn_errmsg(), needle))
        print_error("rc %d (want %d), message \"%s\" (want \"%s\" and \"%s\")\n", got, rc,
                    bn_errmsg(), path, needle);
    if (getenv("BNAS_TEST_VERBOSE")) print_message("%s\n", bn_errmsg());
    assert_int_equal(got, rc);
    assert_non_null(strstr(bn_errmsg(), path));
    assert_non_null(strstr(bn_errmsg(), needle));
    assert_null(d.pixels);
    assert_null(d.labels);
    assert_int_equal(d.n, 0);
}

/* ---------------------------------------------------------------------------
** Real FashionMNIST
*/

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static void check_fashion(const dataset *d, int n, int per_class, const uint8_t *first10,
                          uint64_t pixel_sum, uint64_t first_sum, uint64_t last_sum) {
    assert_int_equal(d->n, n);
    assert_int_equal(d->h, 28);
    assert_int_equal(d->w, 28);
    assert_int_equal(d->c, 1);
    assert_int_equal(d->classes, 10);
    int hist[10] = {0};
    for (int i = 0; i < d->n; i++) {
        assert_true(d->labels[i] < 10);
        hist[d->labels[i]]++;
    }
    for (int k = 0; k < 10; k++) assert_int_equal(hist[k], per_class);
    assert_memory_equal(d->labels, first10, 10);
    /* Pixel sums computed independently with Python's gzip module. */
    uint64_t sum = 0, s0 = 0, sl = 0;
    size_t img = 28 * 28;
    for (size_t i = 0; i < (size_t)n * img; i++) sum += d->pixels[i];
    for (size_t i = 0; i < img; i++) s0 += d->pixels[i], sl += d->pixels[(size_t)(n - 1) * img + i];
    assert_true(sum == pixel_sum);
    assert_true(s0 == first_sum);
    assert_true(sl == last_sum);
}

static void test_fashion_mnist_real(void **state) {
    (void)state;
    dataset train, test;
    double t0 = now_s();
    int rc = data_load_fashion_mnist(&train, &test, NULL);
    double dt = now_s() - t0;
    if (rc) print_error("%s\n", bn_errmsg());
    assert_int_equal(rc, BN_OK);
    print_message("FashionMNIST loaded in %.3f s\n", dt);
    static const uint8_t tr10[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
    static const uint8_t te10[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
    check_fashion(&train, 60000, 6000, tr10, 3431114169ull, 76247, 16684);
    check_fashion(&test, 10000, 1000, te10, 573469082ull, 33456, 24390);
    data_free(&train);
    data_free(&test);
    assert_null(train.pixels);
}

/* The directory argument wins over the environment, which wins over the
   default; name.gz and plain name are both found. */
static void test_fashion_mnist_dir_resolution(void **state) {
    (void)state;
    char sub[512], sub2[512];
    snprintf(sub, sizeof sub, "%s/fm", tmpdir);
    snprintf(sub2, sizeof sub2, "%s/fm_empty", tmpdir);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(mkdir(sub2, 0700), 0);
    size_t li, ll;
    uint8_t *im = make_images(0x803, 12, 4, 5, &li), *lb = make_labels(0x801, 12, &ll);
    char p[600];
    /* train gzip, test plain */
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", sub), write_gz(p, im, li);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte.gz", sub), write_gz(p, lb, ll);
    free(im), free(lb);
    im = make_images(0x803, 3, 4, 5, &li), lb = make_labels(0x801, 3, &ll);
    snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte", sub), write_plain(p, im, li);
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte", sub), write_plain(p, lb, ll);
    free(im), free(lb);

    dataset tr, te;
    assert_int_equal(data_load_fashion_mnist(&tr, &te, sub), BN_OK);
    assert_int_equal(tr.n, 12);
    assert_int_equal(te.n, 3);
    assert_int_equal(tr.h, 4);
    assert_int_equal(tr.w, 5);
    assert_int_equal(tr.pixels[(size_t)11 * 20 + 1 * 5 + 2], (11 * 7 + 3 + 2) & 255);
    assert_int_equal(tr.labels[11], 1);
    data_free(&tr), data_free(&te);

    const char *old = getenv("BNAS_FASHION_MNIST_DIR");
    char *saved = old ? strdup(old) : NULL;
    setenv("BNAS_FASHION_MNIST_DIR", sub, 1);
    assert_int_equal(data_load_fashion_mnist(&tr, &te, NULL), BN_OK);
    assert_int_equal(tr.n, 12);
    data_free(&tr), data_free(&te);
    /* the argument wins over the environment */
    assert_int_equal(data_load_fashion_mnist(&tr, &te, sub2), BN_EIO);
    assert_non_null(strstr(bn_errmsg(), "fm_empty/train-images-idx3-ubyte"));
    assert_null(tr.pixels);
    assert_null(te.pixels);
    setenv("BNAS_FASHION_MNIST_DIR", sub2, 1);
    assert_int_equal(data_load_fashion_mnist(&tr, &te, NULL), BN_EIO);
    assert_non_null(strstr(bn_errmsg(), "fm_empty"));
    if (saved) setenv("BNAS_FASHION_MNIST_DIR", saved, 1);
    else unsetenv("BNAS_FASHION_MNIST_DIR");
    free(saved);

    /* test set missing while train is present: train is freed, both zeroed */
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte", sub);
    assert_int_equal(remove(p), 0);
    assert_int_equal(data_load_fashion_mnist(&tr, &te, sub), BN_EIO);
    assert_non_null(strstr(bn_errmsg(), "t10k-labels-idx1-ubyte"));
    assert_null(tr.pixels);
    assert_int_equal(tr.n, 0);
}

/* ---------------------------------------------------------------------------
** IDX errors
*/

static void test_idx_valid_plain_and_gz(void **state) {
    (void)state;
    size_t li, ll;
    uint8_t *im = make_images(0x803, 5, 3, 4, &li), *lb = make_labels(0x801, 5, &ll);
    write_plain(tpath("v.img"), im, li);
    write_plain(tpath("v.lbl"), lb, ll);
    write_gz(tpath("v.img.gz"), im, li);
    write_gz(tpath("v.lbl.gz"), lb, ll);
    const char *pairs[2][2] = {{tpath("v.img"), tpath("v.lbl")}, {tpath("v.img.gz"), tpath("v.lbl.gz")}};
    for (int k = 0; k < 2; k++) {
        dataset d;
        assert_int_equal(data_load_idx(&d, pairs[k][0], pairs[k][1]), BN_OK);
        assert_int_equal(d.n, 5);
        assert_int_equal(d.h, 3);
        assert_int_equal(d.w, 4);
        assert_int_equal(d.c, 1);
        assert_memory_equal(d.pixels, im + 16, 60);
        assert_memory_equal(d.labels, lb + 8, 5);
        data_free(&d);
    }
    free(im), free(lb);
}

static void test_idx_errors(void **state) {
    (void)state;
    size_t li, ll;
    uint8_t *im = make_images(0x803, 5, 4, 4, &li), *lb = make_labels(0x801, 5, &ll);
    write_plain(tpath("ok.img"), im, li);
    write_plain(tpath("ok.lbl"), lb, ll);
    char ok_i[512], ok_l[512];
    snprintf(ok_i, sizeof ok_i, "%s", tpath("ok.img"));
    snprintf(ok_l, sizeof ok_l, "%s", tpath("ok.lbl"));

    /* missing files */
    expect_idx_error(tpath("nope.img"), ok_l, BN_EIO, "nope.img", "cannot open");
    expect_idx_error(ok_i, tpath("nope.lbl"), BN_EIO, "nope.lbl", "cannot open");
    expect_idx_error(tmpdir, ok_l, BN_EIO, tmpdir, "directory");

    /* truncated header: 10 of 16 bytes, and a file too short for the magic */
    write_plain(tpath("th.img"), im, 10);
    expect_idx_error(tpath("th.img"), ok_l, BN_EFORMAT, "th.img", "truncated IDX header: 10 of 16");
    write_plain(tpath("th2.img"), im, 2);
    expect_idx_error(tpath("th2.img"), ok_l, BN_EFORMAT, "th2.img", "truncated IDX header");
    write_plain(tpath("empty.img"), im, 0);
    expect_idx_error(tpath("empty.img"), ok_l, BN_EFORMAT, "empty.img", "truncated IDX header: 0 of 16");
    write_plain(tpath("th.lbl"), lb, 6);
    expect_idx_error(ok_i, tpath("th.lbl"), BN_EFORMAT, "th.lbl", "truncated IDX header: 6 of 8");

    /* truncated data: 3 of 5 images plus 5 bytes */
    write_plain(tpath("td.img"), im, 16 + 3 * 16 + 5);
    expect_idx_error(tpath("td.img"), ok_l, BN_EFORMAT, "td.img", "expected 80 bytes (5 images of 4x4), found 53");
    expect_idx_error(tpath("td.img"), ok_l, BN_EFORMAT, "td.img", "(3 whole images)");
    write_plain(tpath("td.lbl"), lb, 8 + 2);
    expect_idx_error(ok_i, tpath("td.lbl"), BN_EFORMAT, "td.lbl", "expected 5 labels, found 2");

    /* trailing data */
    uint8_t *longer = calloc(li + 3, 1);
    memcpy(longer, im, li);
    write_plain(tpath("long.img"), longer, li + 3);
    free(longer);
    expect_idx_error(tpath("long.img"), ok_l, BN_EFORMAT, "long.img", "unexpected data after byte 96");

    /* wrong magic: bad type byte, nonzero leading bytes; wrong dimension count */
    uint8_t *bad = make_images(0x903, 5, 4, 4, &li);
    write_plain(tpath("magic.img"), bad, li);
    free(bad);
    expect_idx_error(tpath("magic.img"), ok_l, BN_EFORMAT, "magic.img", "bad IDX magic 0x00000903");
    bad = make_images(0x01000803, 5, 4, 4, &li);
    write_plain(tpath("magic2.img"), bad, li);
    free(bad);
    expect_idx_error(tpath("magic2.img"), ok_l, BN_EFORMAT, "magic2.img", "bad IDX magic");
    bad = make_images(0x802, 5, 4, 4, &li);
    write_plain(tpath("dims.img"), bad, li);
    free(bad);
    expect_idx_error(tpath("dims.img"), ok_l, BN_EFORMAT, "dims.img", "2 dimensions, expected 3");
    /* labels given an image file and vice versa */
    expect_idx_error(ok_i, ok_i, BN_EFORMAT, "ok.img", "3 dimensions, expected 1");
    expect_idx_error(ok_l, ok_l, BN_EFORMAT, "ok.lbl", "1 dimensions, expected 3");

    /* image/label count mismatch */
    uint8_t *lb4 = make_labels(0x801, 4, &ll);
    write_plain(tpath("four.lbl"), lb4, ll);
    free(lb4);
    expect_idx_error(ok_i, tpath("four.lbl"), BN_EFORMAT, "ok.img", "5 images but");
    expect_idx_error(ok_i, tpath("four.lbl"), BN_EFORMAT, "four.lbl", "has 4 labels");

    /* label out of range */
    uint8_t *lb10 = make_labels(0x801, 5, &ll);
    lb10[8 + 3] = 10;
    write_plain(tpath("ten.lbl"), lb10, ll);
    lb10[8 + 3] = 255;
    write_gz(tpath("ff.lbl.gz"), lb10, ll);
    free(lb10);
    expect_idx_error(ok_i, tpath("ten.lbl"), BN_EFORMAT, "ten.lbl", "label 10 of image 3 is out of range");
    expect_idx_error(ok_i, tpath("ff.lbl.gz"), BN_EFORMAT, "ff.lbl.gz", "label 255 of image 3");

    /* zero images, a zero dimension */
    uint8_t hdr[16];
    put_be32(hdr, 0x803), put_be32(hdr + 4, 0), put_be32(hdr + 8, 28), put_be32(hdr + 12, 28);
    write_plain(tpath("zero.img"), hdr, 16);
    expect_idx_error(tpath("zero.img"), ok_l, BN_EFORMAT, "zero.img", "zero images");
    put_be32(hdr + 4, 5), put_be32(hdr + 12, 0);
    write_plain(tpath("zdim.img"), hdr, 16);
    expect_idx_error(tpath("zdim.img"), ok_l, BN_EFORMAT, "zdim.img", "dimension is 0");

    /* absurd sizes: overflow of n*h*w in 32 bits, a dimension above INT_MAX */
    put_be32(hdr + 4, 100000), put_be32(hdr + 8, 65536), put_be32(hdr + 12, 65536);
    write_plain(tpath("huge.img"), hdr, 16);
    expect_idx_error(tpath("huge.img"), ok_l, BN_EFORMAT, "huge.img", "absurd size");
    put_be32(hdr + 4, 0xFFFFFFFFu), put_be32(hdr + 8, 1), put_be32(hdr + 12, 1);
    write_plain(tpath("huge2.img"), hdr, 16);
    expect_idx_error(tpath("huge2.img"), ok_l, BN_EFORMAT, "huge2.img", "absurd");
    put_be32(hdr + 4, 65536), put_be32(hdr + 8, 65536), put_be32(hdr + 12, 1);
    write_plain(tpath("huge3.img"), hdr, 16);
    expect_idx_error(tpath("huge3.img"), ok_l, BN_EFORMAT, "huge3.img", "absurd size");
    free(im), free(lb);
}

static void test_idx_gzip_errors(void **state) {
    (void)state;
    size_t li, ll, gl;
    uint8_t *im = make_images(0x803, 50, 8, 8, &li), *lb = make_labels(0x801, 50, &ll);
    write_plain(tpath("g.lbl"), lb, ll);
    char ok_l[512];
    snprintf(ok_l, sizeof ok_l, "%s", tpath("g.lbl"));
    write_gz(tpath("full.img.gz"), im, li);
    uint8_t *gz = (uint8_t *)slurp(tpath("full.img.gz"), &gl);
    assert_non_null(gz);
    assert_true(gl > 40);

    /* gzip cut in the middle of the deflate stream: short data */
    write_plain(tpath("cut.img.gz"), gz, gl / 2);
    expect_idx_error(tpath("cut.img.gz"), ok_l, BN_EFORMAT, "cut.img.gz", "truncated");
    /* gzip cut inside the header: no complete IDX header */
    write_plain(tpath("cut2.img.gz"), gz, 12);
    expect_idx_error(tpath("cut2.img.gz"), ok_l, BN_EFORMAT, "cut2.img.gz", "truncated");
    /* the whole payload decompresses, but the 8-byte gzip trailer is cut */
    write_plain(tpath("cut3.img.gz"), gz, gl - 3);
    expect_idx_error(tpath("cut3.img.gz"), ok_l, BN_EFORMAT, "cut3.img.gz", "gzip");
    /* every cut length is refused, none crashes */
    for (size_t cut = 0; cut < gl; cut += (cut < 64 ? 1 : 7)) {
        write_plain(tpath("cutk.img.gz"), gz, cut);
        dataset d;
        int rc = data_load_idx(&d, tpath("cutk.img.gz"), ok_l);
        assert_int_equal(rc, BN_EFORMAT);
        assert_non_null(strstr(bn_errmsg(), "cutk.img.gz"));
        assert_null(d.pixels);
    }

    /* stored CRC-32 wrong: zlib's "incorrect data check" at the end of the stream */
    uint8_t *g2 = malloc(gl);
    memcpy(g2, gz, gl);
    g2[gl - 8] ^= 0x5A;
    write_plain(tpath("crc.img.gz"), g2, gl);
    expect_idx_error(tpath("crc.img.gz"), ok_l, BN_EFORMAT, "crc.img.gz", "corrupt gzip stream");
    /* unknown compression method in the gzip header */
    memcpy(g2, gz, gl);
    g2[2] = 7;
    write_plain(tpath("meth.img.gz"), g2, gl);
    expect_idx_error(tpath("meth.img.gz"), ok_l, BN_EFORMAT, "meth.img.gz", "corrupt gzip stream");
    /* garbage in the deflate stream: refused, whatever zlib's exact complaint */
    memcpy(g2, gz, gl);
    for (size_t i = 20; i < 40; i++) g2[i] ^= 0xFF;
    write_plain(tpath("junk.img.gz"), g2, gl);
    dataset d;
    assert_int_equal(data_load_idx(&d, tpath("junk.img.gz"), ok_l), BN_EFORMAT);
    assert_non_null(strstr(bn_errmsg(), "junk.img.gz"));
    assert_null(d.pixels);
    free(g2), free(gz), free(im), free(lb);
}

/* ---------------------------------------------------------------------------
** CIFAR-10
*/

/* CIFAR record i: label (i*3) % 10, pixel (ch, y, x) = (i + 11*ch + 5*y + x) & 255. */
static uint8_t cifar_px(int i, int ch, int y, int x) { return (uint8_t)((i + 11 * ch + 5 * y + x) & 255); }

static uint8_t *make_cifar(int first, int n, size_t *len) {
    uint8_t *b = malloc((size_t)n * 3073);
    for (int i = 0; i < n; i++) {
        uint8_t *r = b + (size_t)i * 3073;
        r[0] = (uint8_t)(((first + i) * 3) % 10);
        for (int ch = 0; ch < 3; ch++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++) r[1 + ch * 1024 + y * 32 + x] = cifar_px(first + i, ch, y, x);
    }
    *len = (size_t)n * 3073;
    return b;
}

static void check_cifar(const dataset *d, int n) {
    assert_int_equal(d->n, n);
    assert_int_equal(d->h, 32);
    assert_int_equal(d->w, 32);
    assert_int_equal(d->c, 3);
    assert_int_equal(d->classes, 10);
    for (int i = 0; i < n; i++) {
        assert_int_equal(d->labels[i], (i * 3) % 10);
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++)
                for (int ch = 0; ch < 3; ch++)
                    assert_int_equal(d->pixels[(((size_t)i * 32 + y) * 32 + x) * 3 + ch], cifar_px(i, ch, y, x));
    }
}

static void test_cifar_layout(void **state) {
    (void)state;
    size_t l1, l2;
    uint8_t *a = make_cifar(0, 3, &l1), *b = make_cifar(3, 2, &l2);
    write_plain(tpath("c1.bin"), a, l1);
    write_gz(tpath("c2.bin.gz"), b, l2);
    const char *paths[2] = {tpath("c1.bin"), tpath("c2.bin.gz")};
    dataset d;
    assert_int_equal(data_load_cifar10_files(&d, paths, 2), BN_OK);
    check_cifar(&d, 5);
    /* one explicit pixel: image 1, y 2, x 3, green = 1 + 11 + 10 + 3 */
    assert_int_equal(d.pixels[((1 * 32 + 2) * 32 + 3) * 3 + 1], 25);
    data_free(&d);

    /* the directory form: data_batch_1..5 and test_batch */
    char sub[512], p[600];
    snprintf(sub, sizeof sub, "%s/cifar-10-batches-bin", tmpdir);
    assert_int_equal(mkdir(sub, 0700), 0);
    uint8_t *all = make_cifar(0, 10, &l1);
    for (int k = 0; k < 5; k++) {
        snprintf(p, sizeof p, "%s/data_batch_%d.bin", sub, k + 1);
        write_plain(p, all + (size_t)k * 2 * 3073, 2 * 3073);
    }
    snprintf(p, sizeof p, "%s/test_batch.bin", sub);
    write_plain(p, all, 4 * 3073);
    dataset tr, te;
    assert_int_equal(data_load_cifar10(&tr, &te, sub), BN_OK);
    check_cifar(&tr, 10);
    check_cifar(&te, 4);
    data_free(&tr), data_free(&te);
    /* test batch missing: train freed, both zeroed */
    assert_int_equal(remove(p), 0);
    assert_int_equal(data_load_cifar10(&tr, &te, sub), BN_EIO);
    assert_non_null(strstr(bn_errmsg(), "test_batch.bin"));
    assert_null(tr.pixels);
    assert_null(te.pixels);
    /* a folder that does not exist */
    assert_int_equal(data_load_cifar10(&tr, &te, tpath("no-such-dir")), BN_EIO);
    assert_non_null(strstr(bn_errmsg(), "no-such-dir/data_batch_1.bin"));
    free(a), free(b), free(all);
}

static void expect_cifar_error(const char *path, int rc, const char *needle) {
    dataset d;
    memset(&d, 0xAB, sizeof d);
    const char *paths[1] = {path};
    int got = data_load_cifar10_files(&d, paths, 1);
    if (got != rc || !strstr(bn_errmsg(), path) || !strstr(bn_errmsg(), needle))
        print_error("rc %d (want %d), message \"%s\" (want \"%s\")\n", got, rc, bn_errmsg(), needle);
    if (getenv("BNAS_TEST_VERBOSE")) print_message("%s\n", bn_errmsg());
    assert_int_equal(got, rc);
    assert_non_null(strstr(bn_errmsg(), path));
    assert_non_null(strstr(bn_errmsg(), needle));
    assert_null(d.pixels);
    assert_null(d.labels);
}

static void test_cifar_errors(void **state) {
    (void)state;
    size_t l;
    uint8_t *a = make_cifar(0, 3, &l);
    write_plain(tpath("cw.bin"), a, 2 * 3073 + 5);
    expect_cifar_error(tpath("cw.bin"), BN_EFORMAT, "not a multiple of the 3073-byte");
    expect_cifar_error(tpath("cw.bin"), BN_EFORMAT, "2 whole records and 5 bytes left over");
    write_plain(tpath("ce.bin"), a, 0);
    expect_cifar_error(tpath("ce.bin"), BN_EFORMAT, "zero images");
    a[3073 * 2] = 10;
    write_plain(tpath("cl.bin"), a, l);
    expect_cifar_error(tpath("cl.bin"), BN_EFORMAT, "label 10 of image 2 is out of range");
    expect_cifar_error(tpath("cmissing.bin"), BN_EIO, "cannot open");
    /* a gzip-compressed batch cut short */
    a[3073 * 2] = 1;
    write_gz(tpath("cg.bin.gz"), a, l);
    size_t gl;
    uint8_t *gz = (uint8_t *)slurp(tpath("cg.bin.gz"), &gl);
    assert_non_null(gz);
    write_plain(tpath("cgcut.bin.gz"), gz, gl - 20);
    expect_cifar_error(tpath("cgcut.bin.gz"), BN_EFORMAT, "truncated gzip stream");
    gz[gl - 7] ^= 1; /* stored CRC */
    write_plain(tpath("cgcrc.bin.gz"), gz, gl);
    expect_cifar_error(tpath("cgcrc.bin.gz"), BN_EFORMAT, "corrupt gzip stream");
    /* the second of two files is bad: nothing leaks, the message names it */
    write_plain(tpath("cgood.bin"), a, l);
    const char *paths[2] = {tpath("cgood.bin"), tpath("cw.bin")};
    dataset d;
    assert_int_equal(data_load_cifar10_files(&d, paths, 2), BN_EFORMAT);
    assert_non_null(strstr(bn_errmsg(), "cw.bin"));
    assert_null(d.pixels);
    assert_int_equal(data_load_cifar10_files(&d, paths, 0), BN_EARG);
    free(a), free(gz);
}

/* ---------------------------------------------------------------------------
** Split and slice
*/

/* n images of 2x1x1 pixels encoding the index (lo, hi), label index % 10. */
static dataset make_indexed(int n) {
    dataset d = {0};
    d.n = n, d.h = 2, d.w = 1, d.c = 1, d.classes = 10;
    d.pixels = malloc((size_t)n * 2);
    d.labels = malloc((size_t)n);
    for (int i = 0; i < n; i++) {
        d.pixels[2 * i] = (uint8_t)(i & 255);
        d.pixels[2 * i + 1] = (uint8_t)(i >> 8);
        d.labels[i] = (uint8_t)(i % 10);
    }
    return d;
}

static int index_of(const dataset *d, int i) { return d->pixels[2 * i] | d->pixels[2 * i + 1] << 8; }

static void test_split(void **state) {
    (void)state;
    const int n = 1000, n_val = 137;
    dataset full = make_indexed(n);
    dataset tr, va, tr2, va2, tr3, va3;
    assert_int_equal(data_split(&tr, &va, &full, n_val, 42), BN_OK);
    assert_int_equal(data_split(&tr2, &va2, &full, n_val, 42), BN_OK);
    assert_int_equal(data_split(&tr3, &va3, &full, n_val, 43), BN_OK);
    assert_int_equal(va.n, n_val);
    assert_int_equal(tr.n, n - n_val);
    assert_int_equal(tr.h, 2);
    assert_int_equal(va.classes, 10);
    /* same seed, same split */
    assert_memory_equal(va.pixels, va2.pixels, (size_t)n_val * 2);
    assert_memory_equal(tr.pixels, tr2.pixels, (size_t)(n - n_val) * 2);
    /* another seed, another split */
    assert_true(memcmp(va.pixels, va3.pixels, (size_t)n_val * 2) != 0);
    /* disjoint, union = all, original order kept, labels follow their images */
    int *seen = calloc((size_t)n, sizeof *seen);
    const dataset *parts[2] = {&tr, &va};
    for (int k = 0; k < 2; k++) {
        int prev = -1;
        for (int i = 0; i < parts[k]->n; i++) {
            int idx = index_of(parts[k], i);
            assert_true(idx > prev);
            prev = idx;
            assert_int_equal(parts[k]->labels[i], idx % 10);
            seen[idx]++;
        }
    }
    for (int i = 0; i < n; i++) assert_int_equal(seen[i], 1);
    free(seen);
    /* the split is the documented one: the first n_val entries of the keyed shuffle */
    int32_t *perm = malloc(sizeof *perm * (size_t)n);
    for (int i = 0; i < n; i++) perm[i] = i;
    pcg32 r;
    rng_keyed(&r, 42, 0, RNG_SPLIT);
    rng_shuffle(&r, perm, n);
    char *in_val = calloc((size_t)n, 1);
    for (int i = 0; i < n_val; i++) in_val[perm[i]] = 1;
    for (int i = 0; i < va.n; i++) assert_true(in_val[index_of(&va, i)]);
    free(perm), free(in_val);

    data_free(&tr), data_free(&va), data_free(&tr2), data_free(&va2), data_free(&tr3), data_free(&va3);

    /* n_val = 0: everything in train */
    assert_int_equal(data_split(&tr, &va, &full, 0, 1), BN_OK);
    assert_int_equal(tr.n, n);
    assert_int_equal(va.n, 0);
    assert_memory_equal(tr.pixels, full.pixels, (size_t)n * 2);
    data_free(&tr), data_free(&va);
    /* out of range */
    assert_int_equal(data_split(&tr, &va, &full, n, 1), BN_EARG);
    assert_int_equal(data_split(&tr, &va, &full, -1, 1), BN_EARG);
    assert_null(tr.pixels);
    data_free(&full);
}

static void test_slice(void **state) {
    (void)state;
    dataset full = make_indexed(50);
    dataset s = data_slice(&full, 10, 15);
    assert_int_equal(s.n, 15);
    assert_ptr_equal(s.pixels, full.pixels + 20);
    assert_ptr_equal(s.labels, full.labels + 10);
    assert_int_equal(index_of(&s, 0), 10);
    assert_int_equal(index_of(&s, 14), 24);
    dataset e = data_slice(&full, 50, 0);
    assert_int_equal(e.n, 0);
    data_free(&full);
}

/* ---------------------------------------------------------------------------
** Asking for more images than there are: an error naming the key and both
** numbers, never a silent reduction (data_check_counts, and through the real
** binary: a study's data.train/val/test against the files loaded, bnas train
** and bnas eval).
*/

static void expect_counts(const char *const keys[3], int tr, int va, int te, const char *want) {
    const int asked[3] = {tr, va, te};
    int rc = data_check_counts("fashion_mnist", 60000, 10000, keys, asked);
    if (!want) {
        if (rc) fail_msg("%d %d %d: %s", tr, va, te, bn_errmsg());
        return;
    }
    assert_int_equal(rc, BN_EARG);
    if (!strstr(bn_errmsg(), want)) fail_msg("expected '%s' in '%s'", want, bn_errmsg());
}

/* Runs `bnas ARGS` with stderr into the temp dir; the exit code, and the stderr in err. */
static int run_bnas(const char *args, char **err) {
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>%s", bnas_bin(), args, tpath("bnas.out"), tpath("bnas.err"));
    int rc = sh(cmd);
    *err = slurp(tpath("bnas.err"), NULL);
    assert_non_null(*err);
    return rc;
}

static void test_counts(void **state) {
    (void)state;
    static const char *const spec_keys[3] = {"data.train", "data.val", "data.test"};
    expect_counts(spec_keys, 70000, 5000, 0, "data.train: 70000 images asked, fashion_mnist has 60000 training images");
    expect_counts(spec_keys, 0, 60000, 0, "data.val: 60000 images asked, fashion_mnist has 60000 training images");
    expect_counts(spec_keys, 56000, 5000, 0,
                  "data.train + data.val: 56000 + 5000 images asked, fashion_mnist has 60000 training images");
    expect_counts(spec_keys, 0, 5000, 10001, "data.test: 10001 images asked, fashion_mnist has 10000 test images");
    expect_counts(spec_keys, -1, 5000, 0, "data.train: -1 images asked");
    expect_counts(spec_keys, 55000, 5000, 10000, NULL); /* exactly all */
    expect_counts(spec_keys, 0, 59999, 0, NULL);
    expect_counts(spec_keys, 60000, 0, 0, NULL); /* no validation: the whole file trains */
    static const char *const train_keys[3] = {"--train-images", "--val", NULL};
    expect_counts(train_keys, 58000, 5000, 99999, "--train-images + --val: 58000 + 5000 images asked");

    /* A study on files smaller than the standard set (the spec checks against
       the standard sizes, test_spec.c): refused when the files are loaded,
       before any trial, naming the spec, the key and both numbers. */
    char sub[600], p[700];
    snprintf(sub, sizeof sub, "%s/small_fm", tmpdir);
    assert_int_equal(mkdir(sub, 0700), 0);
    size_t li, ll;
    uint8_t *im = make_images(0x803, 300, 28, 28, &li), *lb = make_labels(0x801, 300, &ll);
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", sub), write_plain(p, im, li);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte", sub), write_plain(p, lb, ll);
    free(im), free(lb);
    im = make_images(0x803, 50, 28, 28, &li), lb = make_labels(0x801, 50, &ll);
    snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte", sub), write_plain(p, im, li);
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte", sub), write_plain(p, lb, ll);
    free(im), free(lb);
    static const struct {
        const char *data, *want;
    } studies[] = {
        {"train: 400, val: 50", "small.yaml: data.train: 400 images asked, fashion_mnist has 300 training images"},
        {"train: 260, val: 50", "data.train + data.val: 260 + 50 images asked, fashion_mnist has 300 training images"},
        {"val: 300", "data.val: 300 images asked, fashion_mnist has 300 training images"},
        {"train: 100, val: 50, test: 60", "data.test: 60 images asked, fashion_mnist has 50 test images"},
    };
    char text[1200], args[1200], *err;
    for (size_t i = 0; i < sizeof studies / sizeof *studies; i++) {
        snprintf(text, sizeof text,
                 "data: {name: fashion_mnist, dir: %s, %s}\n"
                 "search_space: {fc_layers: 1, fc_width: 16, epochs: 1, batch: 100}\n"
                 "strategy: random\nbudget: {trials: 1}\nobjectives: [{metric: val_acc, direction: max}]\n",
                 sub, studies[i].data);
        write_text(tpath("small.yaml"), text);
        snprintf(args, sizeof args, "run %s --db %s/small%zu.db --quiet", tpath("small.yaml"), tmpdir, i);
        assert_int_equal(run_bnas(args, &err), 1);
        if (!strstr(err, studies[i].want)) fail_msg("expected '%s' in: %s", studies[i].want, err);
        free(err);
    }
    /* ... and within the files' counts it trains. */
    snprintf(text, sizeof text,
             "data: {name: fashion_mnist, dir: %s, train: 250, val: 50, test: 50}\n"
             "search_space: {fc_layers: 1, fc_width: 16, epochs: 1, batch: 100}\n"
             "strategy: random\nbudget: {trials: 1}\nobjectives: [{metric: val_acc, direction: max}]\n",
             sub);
    write_text(tpath("small.yaml"), text);
    snprintf(args, sizeof args, "run %s --db %s/small_ok.db --quiet", tpath("small.yaml"), tmpdir);
    if (run_bnas(args, &err) != 0) fail_msg("%s", err);
    free(err);

    /* bnas train: before any training. */
    snprintf(args, sizeof args, "train --topology FC16 --epochs 1 --train-images 70000 -o %s", tpath("m.bnm"));
    assert_int_equal(run_bnas(args, &err), 1);
    if (!strstr(err, "--train-images: 70000 images asked, fashion has 60000 training images")) fail_msg("got: %s", err);
    free(err);
    snprintf(args, sizeof args, "train --topology FC16 --epochs 1 --val 5000 --train-images 56000 -o %s", tpath("m.bnm"));
    assert_int_equal(run_bnas(args, &err), 1);
    if (!strstr(err, "--train-images + --val: 56000 + 5000 images asked, fashion has 60000 training images"))
        fail_msg("got: %s", err);
    free(err);
    struct stat sb;
    assert_int_not_equal(stat(tpath("m.bnm"), &sb), 0); /* nothing trained, nothing written */

    /* bnas eval --images: a model to evaluate, trained on a few images. */
    snprintf(args, sizeof args, "train --topology FC16 --epochs 1 --val 0 --train-images 500 --batch 100 -o %s",
             tpath("m.bnm"));
    assert_int_equal(run_bnas(args, &err), 0);
    free(err);
    snprintf(args, sizeof args, "eval %s --images 10001 --ber 0 --repeats 1", tpath("m.bnm"));
    assert_int_equal(run_bnas(args, &err), 1);
    if (!strstr(err, "--images: 10001 images asked, fashion has 10000 test images")) fail_msg("got: %s", err);
    free(err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fashion_mnist_real),
        cmocka_unit_test(test_fashion_mnist_dir_resolution),
        cmocka_unit_test(test_idx_valid_plain_and_gz),
        cmocka_unit_test(test_idx_errors),
        cmocka_unit_test(test_idx_gzip_errors),
        cmocka_unit_test(test_cifar_layout),
        cmocka_unit_test(test_cifar_errors),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_slice),
        cmocka_unit_test(test_counts),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
