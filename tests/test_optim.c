/*
** The streaming Adam step (engine/optim.h): optim_adam gives optim_adam_ref's
** bits on 1 and 2 threads over many steps, with clipped and unclipped spans,
** spans of every size (0, 1, odd, larger than a thread's share), gradients
** zeroed or kept, and non-finite values passing through the clamp as the
** reference's comparisons pass them; and the step is Adam (a hand-computed
** first step).
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

#include "engine/optim.h"
#include "engine/rng.h"

#define N_PARAMS 5003

typedef struct {
    float p[N_PARAMS], g[N_PARAMS], m[N_PARAMS], v[N_PARAMS];
} optim_arrays;

static void fill(optim_arrays *a, pcg32 *r) {
    for (int i = 0; i < N_PARAMS; i++) {
        a->p[i] = (float)(pcg32_double(r) * 3.0 - 1.5);
        a->g[i] = (float)(pcg32_double(r) * 0.2 - 0.1);
        a->m[i] = 0, a->v[i] = 0;
    }
    a->p[7] = INFINITY, a->p[8] = -INFINITY, a->p[9] = NAN, a->g[10] = 1e30f;
}

static void test_equals_ref(void **state) {
    (void)state;
    const optim_span spans[] = {{0, 0, 1}, {0, 1, 0}, {1, 17, 1}, {17, 18, 0}, {18, 3001, 1}, {3001, 4000, 0},
                                {4000, N_PARAMS, 1}};
    const int n = (int)(sizeof spans / sizeof spans[0]);
    optim_arrays *want = malloc(sizeof *want), *got = malloc(sizeof *got);
    for (int threads = 1; threads <= 2; threads++)
        for (int zero = 0; zero <= 1; zero++) {
            pcg32 r;
            pcg32_seed(&r, 42, 1);
            fill(want, &r);
            memcpy(got, want, sizeof *got);
            omp_set_num_threads(threads);
            for (int t = 1; t <= 20; t++) {
                float lr = 0.01f / (float)t;
                optim_adam_ref(want->p, want->g, want->m, want->v, spans, n, lr, t, zero);
                optim_adam(got->p, got->g, got->m, got->v, spans, n, lr, t, zero);
                if (memcmp(want, got, sizeof *got))
                    fail_msg("%d threads, zero_grads %d: step %d differs from optim_adam_ref", threads, zero, t);
                if (t == 1) /* in a clipped span: infinities clamped, NaN kept */
                    assert_true(got->p[7] == 1.0f && got->p[8] == -1.0f && isnan(got->p[9]));
                if (zero) /* zeroed; then new gradients, as the next backward pass writes them */
                    for (int i = 0; i < N_PARAMS; i++) {
                        assert_true(got->g[i] == 0.0f);
                        want->g[i] = got->g[i] = (float)(pcg32_double(&r) * 0.2 - 0.1);
                    }
            }
            for (int i = 1; i < 17; i++) assert_true(i == 9 || (got->p[i] >= -1.0f && got->p[i] <= 1.0f));
        }
    free(want), free(got);
}

/* One step by hand: m = 0.1 g, v = 0.001 g^2, m/c1 = g, v/c2 = g^2, so
   p -= lr g / (|g| + eps) = lr sign(g) for |g| >> eps. */
static void test_first_step(void **state) {
    (void)state;
    float p[3] = {0.5f, 0.5f, 0.99f}, g[3] = {0.25f, -2.0f, -1.0f}, m[3] = {0}, v[3] = {0};
    const optim_span spans[] = {{0, 2, 0}, {2, 3, 1}};
    optim_adam(p, g, m, v, spans, 2, 0.1f, 1, 1);
    assert_float_equal(p[0], 0.4f, 1e-6);
    assert_float_equal(p[1], 0.6f, 1e-6);
    assert_true(p[2] == 1.0f); /* 1.09 clamped */
    assert_float_equal(m[1], -0.2f, 1e-7);
    assert_float_equal(v[1], 0.004f, 1e-6); /* (1 - 0.999f) is 0.00100005 in float */
    for (int i = 0; i < 3; i++) assert_true(g[i] == 0.0f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equals_ref),
        cmocka_unit_test(test_first_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
