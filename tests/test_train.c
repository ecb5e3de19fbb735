/*
** Training on real FashionMNIST: a short run must learn, the result must not
** depend on the thread count, and bad recipes are refused. Flip training over
** a range (a flip-rate table): the drawn rates follow the table, a one-row
** table is fixed-rate flip training, and the run is thread-count independent.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <malloc.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/err.h"
#include "engine/parallel.h"
#include "engine/perturb.h"
#include "engine/train.h"
#include "tests/testutil.h"

static dataset g_train, g_test;

static int setup(void **state) {
    (void)state;
    if (load_fashion_mnist(&g_train, &g_test)) return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    data_free(&g_train), data_free(&g_test);
    return 0;
}



static void make_net(net *n, const char *topology, uint64_t seed) {
    arch a;
    assert_int_equal(arch_parse(&a, topology), BN_OK);
    assert_int_equal(net_create(n, &a, 1, 28, 28, 10), BN_OK);
    pcg32 g;
    rng_keyed(&g, seed, 0, RNG_INIT);
    net_init_params(n, &g);
}

/* Trains a fresh net of topology (initialised from init) under r on tr with 1
   thread into *one, and another with 2 threads: they must be bit-identical. */
static void train_thread_checked(net *one, const char *topology, uint64_t init, const dataset *tr,
                                 const train_recipe *r) {
    net two;
    make_net(one, topology, init), make_net(&two, topology, init);
    par_set_threads(1);
    assert_int_equal(train_recipe_run(one, tr, NULL, r, NULL, NULL), BN_OK);
    par_set_threads(2);
    assert_int_equal(train_recipe_run(&two, tr, NULL, r, NULL, NULL), BN_OK);
    assert_memory_equal(one->params, two.params, sizeof(float) * one->n_params);
    assert_memory_equal(one->stats, two.stats, sizeof(float) * one->n_stats);
    net_free(&two);
}

/* One epoch of FC512-FC512 on all 60,000 images reaches 83% on the 10,000 test
   images (measured: about 84-85%; 3 epochs give 86%). */
static void test_fc_learns_fashion_mnist(void **state) {
    (void)state;
    net n;
    make_net(&n, "FC512-FC512", 1);
    train_recipe r = train_recipe_default();
    r.epochs = 1;
    dataset tr = sanitized() ? data_slice(&g_train, 0, 20000) : g_train;
    assert_int_equal(train_recipe_run(&n, &tr, NULL, &r, NULL, NULL), BN_OK);
    double acc = train_accuracy(&n, &g_test);
    print_message("FC512-FC512, 1 epoch on %d images: test accuracy %.4f\n", tr.n, acc);
    assert_true(acc >= (sanitized() ? 0.78 : 0.83));
    net_free(&n);
}

typedef struct { int calls; double last_val; } progress_log;
static int on_epoch(const train_progress *p, void *user) {
    progress_log *log = user;
    log->calls++;
    log->last_val = p->val_acc;
    assert_true(p->images_per_s > 0);
    return 0;
}

/* train_memory_bytes bounds what training really holds: the heap in use at
   the end of the first epoch (training buffers alive), measured with
   mallinfo2 against the heap before net_create, is at most the estimate and
   more than 90% of it without the validation pass. A plan (net_plan) gives
   the same estimate as the created net. Not under the sanitizers (their
   allocator is not malloc's). */
typedef struct { size_t base, used; } heap_watch;
static size_t heap_in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}
static int on_epoch_heap(const train_progress *p, void *user) {
    (void)p;
    heap_watch *h = user;
    h->used = heap_in_use() - h->base;
    return 1; /* stop (train_run returns BN_EINTR) */
}
static void test_memory_estimate(void **state) {
    (void)state;
#if defined(__SANITIZE_ADDRESS__) /* also when run without BNAS_SANITIZED */
    skip();
#endif
    if (sanitized()) skip();
    const char *topos[] = {"FC512-FC512", "C32-MP2-C64-MP2-FC256", "FC2048"};
    dataset tr = data_slice(&g_train, 0, 512);
    for (size_t i = 0; i < sizeof topos / sizeof topos[0]; i++)
        for (int bop = 0; bop < 2; bop++) {
            train_recipe r = train_recipe_default();
            r.epochs = 1, r.batch = 128;
            if (bop) r.optimizer = OPT_BOP;
            arch a;
            net plan, n;
            assert_int_equal(arch_parse(&a, topos[i]), BN_OK);
            assert_int_equal(net_plan(&plan, &a, 1, 28, 28, 10), BN_OK);
            assert_null(plan.params);
            heap_watch h = {heap_in_use(), 0};
            make_net(&n, topos[i], 1);
            size_t est = train_memory_bytes(&plan, &r), eval = net_eval_bytes(&plan, 500);
            assert_int_equal(train_memory_bytes(&n, &r), est);
            assert_int_equal(train_recipe_run(&n, &tr, NULL, &r, on_epoch_heap, &h), BN_EINTR); /* stopped */
            print_message("%s %s: %zu bytes in use in training, estimate %zu (%zu of it a validation pass)\n",
                          topos[i], bop ? "bop" : "adam", h.used, est, eval);
            assert_true(h.used <= est);
            assert_true(h.used > (est - eval) / 10 * 9);
            net_free(&n);
        }
}

/* Same seed, 1 thread and 2 threads: bit-identical parameters, for a conv net
   with flip training (every random stream and every reduction involved). */
static void test_training_is_thread_count_independent(void **state) {
    (void)state;
    dataset tr = data_slice(&g_train, 0, 1000), val = data_slice(&g_train, 1000, 500);
    train_recipe r = train_recipe_default();
    r.epochs = 2, r.batch = 100, r.flip = FLIP_STE, r.p01 = 0.05f, r.p10 = 0.02f, r.seed = 7;
    net a, b;
    make_net(&a, "C8-MP2-FC32", 3);
    make_net(&b, "C8-MP2-FC32", 3);
    progress_log log = {0};
    par_set_threads(1);
    assert_int_equal(train_recipe_run(&a, &tr, &val, &r, on_epoch, &log), BN_OK);
    par_set_threads(2);
    assert_int_equal(train_recipe_run(&b, &tr, &val, &r, NULL, NULL), BN_OK);
    assert_int_equal(log.calls, 2);
    assert_true(log.last_val > 0.3);
    assert_memory_equal(a.params, b.params, sizeof(float) * a.n_params);
    assert_memory_equal(a.stats, b.stats, sizeof(float) * a.n_stats);
    /* a different seed gives a different net */
    net c;
    make_net(&c, "C8-MP2-FC32", 3);
    r.seed = 8;
    assert_int_equal(train_recipe_run(&c, &tr, NULL, &r, NULL, NULL), BN_OK);
    assert_memory_not_equal(a.params, c.params, sizeof(float) * a.n_params);
    net_free(&a), net_free(&b), net_free(&c);
}

/* The naive flip variant and MHL run and learn on a small problem. */
static void test_flip_variants_and_mhl_learn(void **state) {
    (void)state;
    dataset tr = data_slice(&g_train, 0, 5000), te = data_slice(&g_test, 0, 2000);
    const struct { train_loss loss; train_flip flip; } cases[] = {
        {LOSS_CE, FLIP_NAIVE}, {LOSS_MHL, FLIP_NONE}, {LOSS_MHL, FLIP_STE}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        net n;
        make_net(&n, "FC128", 2);
        train_recipe r = train_recipe_default();
        r.epochs = 2, r.batch = 100, r.loss = cases[k].loss, r.flip = cases[k].flip;
        r.p01 = r.p10 = 0.05f;
        assert_int_equal(train_recipe_run(&n, &tr, NULL, &r, NULL, NULL), BN_OK);
        double acc = train_accuracy(&n, &te);
        print_message("loss %d flip %d: accuracy %.4f\n", cases[k].loss, cases[k].flip, acc);
        assert_true(acc > 0.70);
        net_free(&n);
    }
}

/* A three-row table in the shape of the FeFET one (x = temperature). */
static void set_flip_table(train_recipe *r) {
    r->flip = FLIP_STE, r->p01 = r->p10 = 0.0f;
    r->flip_rows = 3;
    r->flip_t[0] = -40.0f, r->flip_t[1] = 20.0f, r->flip_t[2] = 100.0f;
    r->flip_p01[0] = 1e-4f, r->flip_p01[1] = 3e-4f, r->flip_p01[2] = 1.8e-3f;
    r->flip_p10[0] = 5e-4f, r->flip_p10[1] = 4e-3f, r->flip_p10[2] = 4e-2f;
}

/* perturb_flip_rates: fixed rates without a table; with one, a point uniform
   over the table's range per step (reproducible, mean and spread of a uniform
   distribution) and the rates interpolated in log p at it. */
static void test_flip_rates_follow_the_table(void **state) {
    (void)state;
    train_recipe r = train_recipe_default();
    r.flip = FLIP_STE, r.p01 = 0.01f, r.p10 = 0.02f;
    float a, b, t;
    perturb_flip_rates(&r, 5, &a, &b, &t);
    assert_true(a == 0.01f && b == 0.02f && t == 0.0f);
    set_flip_table(&r);
    double sum = 0, lo = 1e9, hi = -1e9;
    const int steps = 20000;
    for (int s = 1; s <= steps; s++) {
        perturb_flip_rates(&r, (uint64_t)s, &a, &b, &t);
        assert_true(t >= -40.0f && t <= 100.0f);
        int i = t > 20.0f;
        double f = (t - r.flip_t[i]) / (r.flip_t[i + 1] - r.flip_t[i]);
        double want01 = exp(log(r.flip_p01[i]) + f * (log(r.flip_p01[i + 1]) - log(r.flip_p01[i])));
        double want10 = exp(log(r.flip_p10[i]) + f * (log(r.flip_p10[i + 1]) - log(r.flip_p10[i])));
        assert_true(fabs(a - want01) <= 1e-5 * want01 && fabs(b - want10) <= 1e-5 * want10);
        sum += t, lo = t < lo ? t : lo, hi = t > hi ? t : hi;
        float a2, b2, t2;
        perturb_flip_rates(&r, (uint64_t)s, &a2, &b2, &t2);
        assert_true(a2 == a && b2 == b && t2 == t);
    }
    /* uniform on [-40, 100]: mean 30, sd 40.4, so the mean of 20,000 draws is 30 +- 0.3 */
    assert_true(fabs(sum / steps - 30.0) < 1.5);
    assert_true(lo < -39.0 && hi > 99.0);
    r.seed = 2;
    perturb_flip_rates(&r, 1, &a, &b, &t);
    float t1;
    r.seed = 1;
    perturb_flip_rates(&r, 1, &a, &b, &t1);
    assert_true(t != t1);
}

/* A one-row table is fixed-rate flip training at that row (bit-identical);
   a table run is thread-count independent and differs from the fixed run. */
static void test_flip_table_training(void **state) {
    (void)state;
    dataset tr = data_slice(&g_train, 0, 1000);
    train_recipe fixed = train_recipe_default(), one = fixed, range = fixed;
    fixed.epochs = one.epochs = range.epochs = 1;
    fixed.batch = one.batch = range.batch = 100;
    fixed.flip = FLIP_STE, fixed.p01 = 0.003f, fixed.p10 = 0.04f;
    one.flip = FLIP_STE, one.flip_rows = 1, one.flip_t[0] = 20.0f, one.flip_p01[0] = 0.003f, one.flip_p10[0] = 0.04f;
    set_flip_table(&range);
    net a, b, c;
    make_net(&a, "FC64-FC32", 4), make_net(&b, "FC64-FC32", 4);
    assert_int_equal(train_recipe_run(&a, &tr, NULL, &fixed, NULL, NULL), BN_OK);
    assert_int_equal(train_recipe_run(&b, &tr, NULL, &one, NULL, NULL), BN_OK);
    assert_memory_equal(a.params, b.params, sizeof(float) * a.n_params);
    assert_memory_equal(a.stats, b.stats, sizeof(float) * a.n_stats);
    train_thread_checked(&c, "FC64-FC32", 4, &tr, &range);
    assert_memory_not_equal(a.params, c.params, sizeof(float) * a.n_params);
    /* a table whose rows do not increase, or with a rate above 1, is refused */
    range.flip_t[1] = -50.0f;
    assert_int_equal(train_recipe_run(&c, &tr, NULL, &range, NULL, NULL), BN_EARG);
    assert_non_null(strstr(bn_errmsg(), "does not increase"));
    set_flip_table(&range);
    range.flip_p10[2] = 1.5f;
    assert_int_equal(train_recipe_run(&c, &tr, NULL, &range, NULL, NULL), BN_EARG);
    range.flip_p10[2] = 0.04f, range.flip_rows = TRAIN_FLIP_ROWS + 1;
    assert_int_equal(train_recipe_run(&c, &tr, NULL, &range, NULL, NULL), BN_EARG);
    net_free(&a), net_free(&b), net_free(&c);
}

/* flip_bn0 clean (the first layer normalised with the unflipped products'
   statistics). Without flips (rates 0) the two paths compute the same
   function, so the first step's gradients of the first layer (weights, gamma,
   beta) agree with the ordinary batch norm's up to rounding, for a dense, a
   fused conv + pool and an unfused conv first layer: the clean path's
   wiring into the weight gradient is checked. With flips, the run is
   thread-count independent and differs from flipped statistics. */
static void test_flip_bn0_clean(void **state) {
    (void)state;
    dataset tr = data_slice(&g_train, 0, 200);
    const char *topos[] = {"FC64-FC32", "C8-MP2-FC32", "C8-FC16"};
    for (size_t t = 0; t < sizeof topos / sizeof topos[0]; t++) {
        net a, b;
        make_net(&a, topos[t], 5), make_net(&b, topos[t], 5);
        const net_layer *L = &a.layers[0];
        int64_t idx[96];
        int n = 0;
        for (int i = 0; i < 64; i++) idx[n++] = (L->w - a.params) + (int64_t)i * 37 % ((int64_t)L->out_c * L->fan_in);
        for (int i = 0; i < 8; i++) idx[n++] = L->gamma - a.params + i, idx[n++] = L->beta - a.params + i;
        float ga[96], gb[96];
        train_trace ta = {n, idx, 1, ga, 0}, tb = {n, idx, 1, gb, 0};
        train_recipe r = train_recipe_default();
        r.epochs = 1, r.batch = 100, r.flip = FLIP_STE, r.p01 = r.p10 = 0.0f;
        assert_int_equal(train_run_traced(&a, &tr, NULL, &r, NULL, NULL, NULL, &ta) /* rate 0: no hooks needed */, BN_OK);
        r.flip_bn0 = BN0_CLEAN;
        assert_int_equal(train_run_traced(&b, &tr, NULL, &r, NULL, NULL, NULL, &tb), BN_OK);
        double big = 0, diff = 0;
        for (int i = 0; i < n; i++) {
            big = fmax(big, fabs(ga[i]));
            diff = fmax(diff, fabs((double)ga[i] - gb[i]));
        }
        print_message("%s: first-step gradients, clean vs flipped statistics without flips: largest %.3e, "
                      "largest difference %.3e\n", topos[t], big, diff);
        assert_true(big > 0);
        assert_true(diff <= 1e-4 * big);
        net_free(&a), net_free(&b);
    }
    /* with flips */
    dataset tr2 = data_slice(&g_train, 0, 1000);
    train_recipe r = train_recipe_default();
    r.epochs = 1, r.batch = 100, r.flip = FLIP_STE, r.p01 = r.p10 = 0.1f, r.seed = 3;
    net a, b;
    make_net(&a, "C8-MP2-FC32", 6);
    assert_int_equal(train_recipe_run(&a, &tr2, NULL, &r, NULL, NULL), BN_OK);
    r.flip_bn0 = BN0_CLEAN;
    train_thread_checked(&b, "C8-MP2-FC32", 6, &tr2, &r);
    assert_memory_not_equal(a.stats, b.stats, sizeof(float) * a.n_stats);
    net_free(&a), net_free(&b);
}

static void test_bad_recipes_are_refused(void **state) {
    (void)state;
    net n;
    make_net(&n, "FC8", 1);
    dataset tr = data_slice(&g_train, 0, 10);
    train_recipe r = train_recipe_default();
    r.batch = 0;
    assert_int_equal(train_recipe_run(&n, &tr, NULL, &r, NULL, NULL), BN_EARG);
    assert_non_null(strstr(bn_errmsg(), "batch"));
    r = train_recipe_default();
    r.loss = LOSS_MHL, r.mhl_b = 0;
    assert_int_equal(train_recipe_run(&n, &tr, NULL, &r, NULL, NULL), BN_EARG);
    r = train_recipe_default();
    r.flip = FLIP_STE, r.p01 = 1.5f;
    assert_int_equal(train_recipe_run(&n, &tr, NULL, &r, NULL, NULL), BN_EARG);
    net_free(&n);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fc_learns_fashion_mnist),
        cmocka_unit_test(test_training_is_thread_count_independent),
        cmocka_unit_test(test_flip_variants_and_mhl_learn),
        cmocka_unit_test(test_bad_recipes_are_refused),
        cmocka_unit_test(test_flip_rates_follow_the_table),
        cmocka_unit_test(test_flip_table_training),
        cmocka_unit_test(test_flip_bn0_clean),
        cmocka_unit_test(test_memory_estimate),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
