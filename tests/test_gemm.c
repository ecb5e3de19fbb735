/*
** The fixed-order GEMM (engine/gemm.h): every kernel set and every thread
** count gives the reference loop's bits, on real-valued (not only +-1) data,
** for the three transpositions training uses, edge tiles, KC/MC/NC block
** boundaries and accumulation; and the reference is the fmaf chain itself.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gemm.h"
#include "engine/rng.h"

static const char *const sets[] = {"portable", "avx2", "avx512"};

static float *random_floats(pcg32 *g, int64_t n) {
    float *x = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) x[i] = (float)(pcg32_double(g) * 4.0 - 2.0);
    return x;
}

/* One product in layout lay (0: A (M, K) . B^T with B stored (N, K), as
   matmul_forward; 1: A stored (K, M) transposed, as the weight gradient;
   2: both row-major, as the input gradient), on every available set and on
   1 and 2 threads, against gemm_ref. */
static void check_shape(int M, int N, int K, int lay, int accumulate, uint64_t seed) {
    pcg32 g;
    pcg32_seed(&g, seed, 11);
    float *a = random_floats(&g, (int64_t)M * K), *b = random_floats(&g, (int64_t)K * N);
    float *c0 = random_floats(&g, (int64_t)M * N);
    int64_t ars = lay == 1 ? 1 : K, acs = lay == 1 ? M : 1;
    int64_t brs = lay == 0 ? 1 : N, bcs = lay == 0 ? K : 1;
    float *want = malloc(sizeof(float) * (size_t)M * N), *got = malloc(sizeof(float) * (size_t)M * N);
    memcpy(want, c0, sizeof(float) * (size_t)M * N);
    gemm_ref(want, N, a, ars, acs, b, brs, bcs, M, N, K, accumulate);
    int tested = 0;
    for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++) {
        const gemm_kernels *ks = gemm_kernels_named(sets[s]);
        if (!ks) continue;
        for (int threads = 1; threads <= 2; threads++) {
            omp_set_num_threads(threads);
            memcpy(got, c0, sizeof(float) * (size_t)M * N);
            gemm_with(ks, got, N, a, ars, acs, b, brs, bcs, M, N, K, accumulate);
            if (memcmp(got, want, sizeof(float) * (size_t)M * N))
                fail_msg("set %s, %d threads, %dx%dx%d layout %d accumulate %d: differs from gemm_ref", sets[s],
                         threads, M, N, K, lay, accumulate);
            tested++;
        }
    }
    assert_true(tested >= 2); /* the portable set at least */
    free(a), free(b), free(c0), free(want), free(got);
}

static void test_every_set_equals_ref(void **state) {
    (void)state;
    /* sizes around the tiles (6x16, 12x32, 4x8) and the blocks (KC 256, MC 120, NC 512) */
    static const int shapes[][3] = {{1, 1, 1},    {7, 13, 5},    {6, 16, 256}, {12, 32, 257}, {37, 70, 300},
                                    {121, 33, 9}, {130, 515, 40}, {5, 600, 3},  {256, 10, 64}, {64, 40, 700}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int lay = 0; lay < 3; lay++)
            for (int acc = 0; acc < 2; acc++)
                check_shape(shapes[i][0], shapes[i][1], shapes[i][2], lay, acc, 100 + i);
}

/* The reference is the fmaf chain, not a multiply then an add: with
   a = 1 + 2^-13, b = 1 - 2^-13 the product 1 - 2^-26 is not a float; added
   to c = -1 it gives -2^-26 fused and 0 unfused. Every set agrees. */
static void test_chain_is_fused(void **state) {
    (void)state;
    float a = 1.0f + 0x1p-13f, b = 1.0f - 0x1p-13f;
    float c = -1.0f;
    gemm_ref(&c, 1, &a, 1, 1, &b, 1, 1, 1, 1, 1, 1);
    assert_true(c == -0x1p-26f);
    for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++) {
        const gemm_kernels *ks = gemm_kernels_named(sets[s]);
        if (!ks) continue;
        float cs = -1.0f;
        gemm_with(ks, &cs, 1, &a, 1, 1, &b, 1, 1, 1, 1, 1, 1);
        assert_true(cs == -0x1p-26f);
    }
}

/* K = 0 writes zeros (or keeps C when accumulating); empty M or N touch nothing. */
static void test_degenerate_sizes(void **state) {
    (void)state;
    float c[6] = {1, 2, 3, 4, 5, 6}, a = 1, b = 1;
    gemm(c, 3, &a, 1, 1, &b, 1, 1, 2, 3, 0, 1);
    assert_true(c[0] == 1 && c[5] == 6);
    gemm(c, 3, &a, 1, 1, &b, 1, 1, 2, 3, 0, 0);
    for (int i = 0; i < 6; i++) assert_true(c[i] == 0.0f);
    c[0] = 7;
    gemm(c, 3, &a, 1, 1, &b, 1, 1, 0, 3, 4, 0);
    assert_true(c[0] == 7);
}

/* Names: unknown ones are NULL, the active set has one of the known names. */
static void test_kernel_names(void **state) {
    (void)state;
    assert_null(gemm_kernels_named("nope"));
    assert_null(gemm_kernels_named(NULL));
    assert_non_null(gemm_kernels_named("ref"));
    const char *n = gemm_kernels_name(NULL);
    assert_true(!strcmp(n, "portable") || !strcmp(n, "avx2") || !strcmp(n, "avx512") || !strcmp(n, "ref"));
    print_message("active gemm kernel set: %s\n", n);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_set_equals_ref),
        cmocka_unit_test(test_chain_is_fused),
        cmocka_unit_test(test_degenerate_sizes),
        cmocka_unit_test(test_kernel_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
