/*
** `bnas report` through the real binary ($BNAS_BIN): the page of a finished
** study has every section (SVG charts, one table row per trial, the spec),
** renders in headless Chromium (the DOM has the SVG elements and rows, the
** screenshot is not blank), empty and unfinished studies say so, a file that
** is not a study fails with a clear message, and a 1,000-trial study is
** reported in under 2 s and 5 MB. Studies are made in-process with the
** synthetic trial function; the fault curves' metrics (fault.acc@R) are
** added with SQL since the synthetic trial reports only fault.acc.
** The Chromium tests skip only if no chromium is installed.
*/
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "engine/err.h"
#include "nas/search.h"
#include "nas/spec.h"
#include "nas/store.h"
#include "tests/testutil.h"

static char dir[256];
static const char *bin;

static const char *spec_fmt =
    "name: %s\n"
    "seed: 7\n"
    "data: {name: synthetic}\n"
    "search_space:\n"
    "  fc_layers: {type: int, low: 1, high: 3}\n"
    "  fc_width: [16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024]\n"
    "  loss: [ce, mhl]\n"
    "  mhl_b: [8, 16, 32, 64, 128]\n"
    "  flip_rate: {type: float, low: 0, high: 0.1}\n"
    "  epochs: {type: int, low: 1, high: 10}\n"
    "strategy: {name: nsga2, batch: %d, population: %d}\n"
    "budget: {trials: %d}\n"
    "objectives:\n"
    "  - {metric: val_acc, direction: max}\n"
    "  - {metric: model_bytes, direction: min, ref: 2000000}\n"
    "  - {metric: fault.acc, direction: max}\n"
    "evaluators: [{name: fault, ber: 0.01, rates: [0.001, 0.05]}, memory]\n";

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void path_of(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", dir, name); }

/* Makes study NAME.db with `trials` budget; stop_after > 0 stops it early;
   run = 0 leaves it empty. */
static void make_study(const char *name, int trials, int batch, int run, int stop_after) {
    char text[4096], db[400];
    snprintf(text, sizeof text, spec_fmt, name, batch, 2 * batch, trials);
    spec s;
    int rc = spec_parse(&s, "report.yaml", text, NULL, NULL);
    if (rc) fprintf(stderr, "%s\n", bn_errmsg());
    assert_int_equal(rc, BN_OK);
    snprintf(db, sizeof db, "%s/%s.db", dir, name);
    store *st = NULL;
    assert_int_equal(store_create(&st, db, &s), BN_OK);
    if (run) {
        search_opts o;
        memset(&o, 0, sizeof o);
        o.fn = trial_synthetic;
        o.threads = 2;
        o.stop_after = stop_after;
        rc = search_run(st, &s, &o);
        assert_int_equal(rc, stop_after > 0 ? BN_EINTR : BN_OK);
    }
    store_close(st);
    spec_free(&s);
}

/* Adds fault.acc@0.001 and fault.acc@0.05 to every COMPLETE trial of NAME.db. */
static void add_fault_rates(const char *name) {
    char db[400];
    snprintf(db, sizeof db, "%s/%s.db", dir, name);
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(h,
        "INSERT INTO metrics(trial,name,value) SELECT trial,'fault.acc@0.001',value*1.02 FROM metrics "
        "WHERE name='fault.acc';"
        "INSERT INTO metrics(trial,name,value) SELECT trial,'fault.acc@0.05',value*0.8 FROM metrics "
        "WHERE name='fault.acc';", NULL, NULL, &msg);
    if (rc) fprintf(stderr, "%s\n", msg);
    assert_int_equal(rc, SQLITE_OK);
    sqlite3_close(h);
}

static int count(const char *text, const char *pat) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, pat)); p += strlen(pat)) n++;
    return n;
}

/* `bnas report NAME.db -o NAME.html`; returns the exit code, stderr in NAME.err. */
static int report(const char *name) {
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "'%s' report '%s/%s.db' -o '%s/%s.html' 2> '%s/%s.err'", bin, dir, name,
             dir, name, dir, name);
    return sh(cmd);
}

static char *page_of(const char *name) {
    char p[400];
    snprintf(p, sizeof p, "%s/%s.html", dir, name);
    char *t = slurp(p, NULL);
    assert_non_null(t);
    return t;
}

static char *err_of(const char *name) {
    char p[400];
    snprintf(p, sizeof p, "%s/%s.err", dir, name);
    char *t = slurp(p, NULL);
    assert_non_null(t);
    return t;
}

static int group_setup(void **state) {
    (void)state;
    bin = bnas_bin();
    return tmpdir_make(dir, sizeof dir, "report");
}

static int group_teardown(void **state) {
    (void)state;
    return tmpdir_remove(dir);
}

/* A finished study: every section, one row per trial, the fault curves. */
static void test_full(void **state) {
    (void)state;
    make_study("full", 48, 8, 1, 0);
    add_fault_rates("full");
    assert_int_equal(report("full"), 0);
    char *p = page_of("full");
    assert_non_null(strstr(p, "<!DOCTYPE html>"));
    assert_int_equal(count(p, "<svg"), 3 + 1 + 1); /* 3 front pairs, hypervolume, fault curves */
    assert_int_equal(count(p, "class=\"trials\""), 1);
    assert_int_equal(count(p, "<tr class="), 48);
    assert_true(count(p, "class=\"pt\"") >= 1);
    assert_int_equal(count(p, "class=\"trial\"") + count(p, "class=\"pt\""), 3 * 48);
    assert_true(count(p, "class=\"bercurve\"") >= 1);
    assert_null(strstr(p, "id=\"nober\""));
    assert_null(strstr(p, "id=\"state\"")); /* finished: no empty/unfinished note */
    assert_non_null(strstr(p, "rates: [0.001, 0.05]"));  /* the spec */
    assert_null(strstr(p, "<script"));
    /* No network: the only URI is the SVG namespace name. */
    assert_int_equal(count(p, "http"), count(p, "xmlns=\"http://www.w3.org/2000/svg\""));
    assert_int_equal(count(p, "src="), 0);
    free(p);
    /* Several studies: one hypervolume curve each. */
    make_study("other", 16, 4, 1, 0);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "'%s' report '%s/full.db' '%s/other.db' -o '%s/two.html' 2>/dev/null", bin,
             dir, dir, dir);
    assert_int_equal(sh(cmd), 0);
    p = page_of("two");
    assert_int_equal(count(p, "class=\"hvline\""), 2);
    free(p);
}

/* Without fault metrics at several rates the page says so. */
static void test_no_ber(void **state) {
    (void)state;
    make_study("nober", 16, 8, 1, 0);
    assert_int_equal(report("nober"), 0);
    char *p = page_of("nober");
    assert_non_null(strstr(p, "id=\"nober\""));
    assert_null(strstr(p, "class=\"bercurve\""));
    assert_int_equal(count(p, "<svg"), 4);
    free(p);
}

static void test_empty(void **state) {
    (void)state;
    make_study("empty", 16, 8, 0, 0);
    assert_int_equal(report("empty"), 0);
    char *p = page_of("empty"), *e = err_of("empty");
    assert_non_null(strstr(p, "This study is empty"));
    assert_int_equal(count(p, "<svg"), 0);
    assert_non_null(strstr(e, "the study is empty"));
    free(p);
    free(e);
}

static void test_unfinished(void **state) {
    (void)state;
    make_study("half", 40, 8, 1, 11); /* 11 commits, then stop: batch 1 half done */
    assert_int_equal(report("half"), 0);
    char *p = page_of("half"), *e = err_of("half");
    const char *note = strstr(p, "This study is unfinished: ");
    assert_non_null(note);
    int done = -1, budget = -1, pending = -1;
    assert_int_equal(sscanf(note, "This study is unfinished: %d of %d trials done, %d pending", &done,
                            &budget, &pending), 3);
    assert_int_equal(budget, 40);
    assert_true(done >= 11 && done < 16);
    assert_int_equal(done + pending, 16); /* two batches of 8 proposed */
    assert_int_equal(count(p, "<tr class="), 16);
    assert_int_equal(count(p, "<tr class=\"WAITING") + count(p, "<tr class=\"RUNNING"), pending);
    assert_non_null(strstr(e, "unfinished"));
    free(p);
    free(e);
}

static void test_not_a_study(void **state) {
    (void)state;
    char path[400];
    path_of(path, sizeof path, "text.db");
    write_text(path, "name: not a database\n");
    assert_int_equal(report("text"), 1);
    char *e = err_of("text");
    assert_non_null(strstr(e, "text.db: not a bnas study"));
    free(e);
    path_of(path, sizeof path, "text.html");
    assert_int_not_equal(access(path, F_OK), 0); /* no page written */
    path_of(path, sizeof path, "sql.db");
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "CREATE TABLE t(a); INSERT INTO t VALUES(1);", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(h);
    assert_int_equal(report("sql"), 1);
    e = err_of("sql");
    assert_non_null(strstr(e, "sql.db: not a bnas study"));
    free(e);
    assert_int_equal(report("missing"), 1);
    e = err_of("missing");
    assert_non_null(strstr(e, "missing.db: no such study file"));
    free(e);
}

/* 1,000 trials: under 2 s (the release build; 10 s under the sanitizers) and 5 MB. */
static void test_large(void **state) {
    (void)state;
    make_study("large", 1000, 20, 1, 0);
    add_fault_rates("large");
    double t0 = now_s();
    assert_int_equal(report("large"), 0);
    double t = now_s() - t0;
    char p[400];
    path_of(p, sizeof p, "large.html");
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    fprintf(stderr, "report of 1000 trials: %.3f s, %lld bytes\n", t, (long long)sb.st_size);
    assert_true(sb.st_size < 5 * 1000 * 1000);
    char *page = page_of("large");
    assert_int_equal(count(page, "<tr class="), 1000);
    free(page);
}

/* ---- headless Chromium ----------------------------------------------- */

static int chromium_path(char *buf, size_t cap) {
    const char *cands[] = {"chromium", "chromium-browser", "google-chrome"};
    for (size_t i = 0; i < sizeof cands / sizeof *cands; i++) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "command -v %s > '%s/which' 2>/dev/null", cands[i], dir);
        if (system(cmd) == 0) {
            char w[300];
            snprintf(w, sizeof w, "%s/which", dir);
            char *t = slurp(w, NULL);
            if (!t) continue;
            t[strcspn(t, "\n")] = 0;
            snprintf(buf, cap, "%s", t);
            free(t);
            return buf[0] != 0;
        }
    }
    return 0;
}

/* Runs chromium headless on the page `name` with extra arguments, stdout to out. */
static int chromium(const char *exe, const char *name, const char *args, const char *out) {
    char cmd[2400];
    snprintf(cmd, sizeof cmd,
             "timeout 120 '%s' --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
             "--disable-background-networking --disable-component-update --disable-sync "
             "--user-data-dir='%s/profile_%s' %s 'file://%s/%s.html' > '%s' 2> '%s/chromium_%s.log'",
             exe, dir, name, args, dir, name, out, dir, name);
    return sh(cmd);
}

static void ensure_full_page(void) {
    char p[400];
    path_of(p, sizeof p, "full.html");
    if (access(p, F_OK) != 0) {
        make_study("full", 48, 8, 1, 0);
        add_fault_rates("full");
        assert_int_equal(report("full"), 0);
    }
}

static void test_chromium_dom(void **state) {
    (void)state;
    char exe[300];
    if (!chromium_path(exe, sizeof exe)) skip();
    ensure_full_page();
    char out[400];
    path_of(out, sizeof out, "dom.html");
    assert_int_equal(chromium(exe, "full", "--dump-dom", out), 0);
    char *dom = slurp(out, NULL);
    assert_non_null(dom);
    /* The browser's DOM (parsed and serialised again) has the charts and rows. */
    assert_int_equal(count(dom, "<svg"), 5);
    assert_int_equal(count(dom, "<tr class="), 48);
    assert_true(count(dom, "<circle") >= 3 * 48);
    assert_true(count(dom, "<polyline") >= 2);
    assert_non_null(strstr(dom, "Accuracy over bit error rate"));
    free(dom);
}

/* Decodes an 8-bit RGB or RGBA, non-interlaced PNG into rgb (w*h*3, malloc'd). */
static int png_decode(const unsigned char *p, size_t n, int *w, int *h, unsigned char **rgb) {
    static const unsigned char sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    if (n < 8 || memcmp(p, sig, 8)) return -1;
    size_t off = 8, zn = 0;
    unsigned char *z = malloc(n);
    int depth = 0, ctype = -1, interlace = 0;
    while (off + 12 <= n) {
        uint32_t len = (uint32_t)p[off] << 24 | p[off + 1] << 16 | p[off + 2] << 8 | p[off + 3];
        const unsigned char *type = p + off + 4, *d = p + off + 8;
        if (off + 12 + len > n) break;
        if (!memcmp(type, "IHDR", 4)) {
            *w = (int)((uint32_t)d[0] << 24 | d[1] << 16 | d[2] << 8 | d[3]);
            *h = (int)((uint32_t)d[4] << 24 | d[5] << 16 | d[6] << 8 | d[7]);
            depth = d[8], ctype = d[9], interlace = d[12];
        } else if (!memcmp(type, "IDAT", 4)) {
            memcpy(z + zn, d, len);
            zn += len;
        }
        off += 12 + len;
    }
    if (depth != 8 || (ctype != 2 && ctype != 6) || interlace) {
        free(z);
        return -1;
    }
    int bpp = ctype == 6 ? 4 : 3;
    size_t stride = (size_t)*w * bpp;
    uLongf rn = (uLongf)((stride + 1) * (size_t)*h);
    unsigned char *raw = malloc(rn);
    int zr = uncompress(raw, &rn, z, (uLong)zn);
    free(z);
    if (zr != Z_OK || rn != (stride + 1) * (size_t)*h) {
        free(raw);
        return -1;
    }
    unsigned char *img = malloc(stride * (size_t)*h);
    for (int y = 0; y < *h; y++) {
        const unsigned char *src = raw + (size_t)y * (stride + 1);
        unsigned char *row = img + (size_t)y * stride, *up = y ? row - stride : NULL;
        for (size_t x = 0; x < stride; x++) {
            int a = x >= (size_t)bpp ? row[x - bpp] : 0, b = up ? up[x] : 0,
                c = up && x >= (size_t)bpp ? up[x - bpp] : 0, v = src[1 + x];
            switch (src[0]) {
            case 0: break;
            case 1: v += a; break;
            case 2: v += b; break;
            case 3: v += (a + b) / 2; break;
            case 4: {
                int pp = a + b - c, pa = abs(pp - a), pb = abs(pp - b), pc = abs(pp - c);
                v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
                break;
            }
            default: free(raw); free(img); return -1;
            }
            row[x] = (unsigned char)v;
        }
    }
    free(raw);
    *rgb = malloc((size_t)*w * *h * 3);
    for (size_t i = 0; i < (size_t)*w * *h; i++) memcpy(*rgb + 3 * i, img + bpp * i, 3);
    free(img);
    return 0;
}

static void test_chromium_screenshot(void **state) {
    (void)state;
    char exe[300];
    if (!chromium_path(exe, sizeof exe)) skip();
    ensure_full_page();
    char png[400], args[600];
    path_of(png, sizeof png, "shot.png");
    snprintf(args, sizeof args, "--hide-scrollbars --window-size=1280,1600 --screenshot='%s'", png);
    assert_int_equal(chromium(exe, "full", args, "/dev/null"), 0);
    size_t n = 0;
    unsigned char *data = (unsigned char *)slurp(png, &n);
    assert_non_null(data);
    int w = 0, h = 0;
    unsigned char *rgb = NULL;
    assert_int_equal(png_decode(data, n, &w, &h, &rgb), 0);
    assert_int_equal(w, 1280);
    assert_int_equal(h, 1600);
    /* Not blank: many non-white pixels, many colours, and the viridis
       colours of the front points (dark violet to yellow) are there. */
    long nonwhite = 0, violet = 0, yellow = 0;
    static unsigned char seen[1 << 15];
    memset(seen, 0, sizeof seen);
    int colours = 0;
    for (long i = 0; i < (long)w * h; i++) {
        const unsigned char *c = rgb + 3 * i;
        if (c[0] < 240 || c[1] < 240 || c[2] < 240) nonwhite++;
        if (c[0] < 110 && c[1] < 60 && c[2] > 70 && c[2] < 160) violet++;
        if (c[0] > 200 && c[1] > 190 && c[2] < 90) yellow++;
        int q = (c[0] >> 3) << 10 | (c[1] >> 3) << 5 | (c[2] >> 3);
        if (!seen[q]) seen[q] = 1, colours++;
    }
    fprintf(stderr, "screenshot %dx%d: %.1f%% non-white, %d colours, %ld violet, %ld yellow pixels\n", w,
            h, 100.0 * nonwhite / ((double)w * h), colours, violet, yellow);
    assert_true(nonwhite > (long)w * h / 100);
    assert_true(colours > 50);
    assert_true(violet > 20);
    assert_true(yellow > 20);
    free(rgb);
    free(data);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),        cmocka_unit_test(test_no_ber),
        cmocka_unit_test(test_empty),       cmocka_unit_test(test_unfinished),
        cmocka_unit_test(test_not_a_study), cmocka_unit_test(test_large),
        cmocka_unit_test(test_chromium_dom), cmocka_unit_test(test_chromium_screenshot),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
