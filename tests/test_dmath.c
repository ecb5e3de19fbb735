/*
** Host-independent elementary functions (engine/dmath.h): within a few ulp
** of libm over the ranges the engine uses, the special values, and fixed
** bit patterns that hold on every host (the point of the module).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "engine/dmath.h"
#include "engine/rng.h"

static double rel(double got, double want) {
    if (got == want) return 0;
    return fabs(got - want) / fmax(fabs(want), 1e-300);
}

static void test_exp_log_against_libm(void **state) {
    (void)state;
    pcg32 g;
    pcg32_seed(&g, 5, 6);
    double worst_exp = 0, worst_log = 0, worst_l1p = 0;
    for (int i = 0; i < 200000; i++) {
        double x = (pcg32_double(&g) - 0.5) * 1400.0; /* [-700, 700] */
        double e = rel(dmath_exp(x), exp(x));
        if (e > worst_exp) worst_exp = e;
        double y = ldexp(0.5 + pcg32_double(&g), (int)(pcg32_next(&g) % 2000) - 1000);
        double l = fabs(dmath_log(y) - log(y)) / fmax(fabs(log(y)), 1.0);
        if (l > worst_log) worst_log = l;
        double s = ldexp(pcg32_double(&g), -(int)(pcg32_next(&g) % 60)) * (i & 1 ? 1 : -1) * 0.999;
        double p = rel(dmath_log1p(s), log1p(s));
        if (p > worst_l1p) worst_l1p = p;
    }
    print_message("worst relative error: exp %.2e, log %.2e, log1p %.2e\n", worst_exp, worst_log, worst_l1p);
    assert_true(worst_exp < 1e-15);
    assert_true(worst_log < 1e-15);
    assert_true(worst_l1p < 1e-15);
}

static void test_cos2pi_pow_erfc_against_libm(void **state) {
    (void)state;
    pcg32 g;
    pcg32_seed(&g, 7, 8);
    double worst_cos = 0, worst_pow = 0, worst_erfc = 0;
    for (int i = 0; i < 100000; i++) {
        double u = pcg32_double(&g);
        double c = fabs(dmath_cos2pi(u) - cos(6.283185307179586 * u));
        if (c > worst_cos) worst_cos = c;
        double x = 1e-3 + pcg32_double(&g) * 10, y = (pcg32_double(&g) - 0.5) * 40;
        double p = rel(dmath_pow(x, y), pow(x, y));
        if (p > worst_pow) worst_pow = p;
        double z = (pcg32_double(&g) - 0.2) * 12; /* [-2.4, 9.6] */
        double e = rel(dmath_erfc(z), erfc(z));
        if (e > worst_erfc) worst_erfc = e;
    }
    print_message("worst error: cos2pi %.2e (absolute), pow %.2e, erfc %.2e\n", worst_cos, worst_pow, worst_erfc);
    assert_true(worst_cos < 2e-15);
    assert_true(worst_pow < 5e-14); /* y log x amplifies log's rounding by up to |y log x| */
    assert_true(worst_erfc < 1e-12);
    for (int n = 0; n < 64; n++) assert_true(rel(dmath_powi(0.999, n), pow(0.999, n)) < 1e-14);
}

static void test_special_values(void **state) {
    (void)state;
    assert_true(dmath_exp(0) == 1.0);
    assert_true(dmath_exp(1000) == INFINITY);
    assert_true(dmath_exp(-1000) == 0.0);
    assert_true(isnan(dmath_exp(NAN)));
    assert_true(dmath_log(1.0) == 0.0);
    assert_true(dmath_log(0.0) == -INFINITY);
    assert_true(isnan(dmath_log(-1.0)));
    assert_true(dmath_log(INFINITY) == INFINITY);
    assert_true(dmath_log1p(0.0) == 0.0);
    assert_true(dmath_log1p(-1.0) == -INFINITY);
    assert_true(isnan(dmath_log1p(-2.0)));
    assert_true(dmath_log1p(1e-300) == 1e-300);
    assert_true(dmath_pow(2.0, 0.0) == 1.0 && dmath_pow(0.0, 2.0) == 0.0);
    assert_true(dmath_powi(3.0, 0) == 1.0 && dmath_powi(2.0, 10) == 1024.0);
    assert_true(dmath_cos2pi(0.0) == 1.0 && dmath_cos2pi(0.5) == -1.0);
    assert_true(fabs(dmath_cos2pi(0.25)) < 1e-300 || dmath_cos2pi(0.25) == 0.0);
    assert_true(dmath_erfc(0.0) == 1.0 && dmath_erfc(30.0) == 0.0 && dmath_erfc(-30.0) == 2.0);
}

/* Fixed bits: these values are computed by IEEE operations alone, so they
   are the same on every host; if one changes, a host or compiler broke the
   contract (or the algorithm was changed on purpose: then update them and
   say so, every recorded result changes with them). */
static void test_fixed_bits(void **state) {
    (void)state;
    const struct { double x; uint64_t exp_bits, log_bits; } cases[] = {
        {0.5, 0x3FFA61298E1E069CULL, 0xBFE62E42FEFA39EFULL},
        {3.0, 0x403415E5BF6FB106ULL, 0x3FF193EA7AAD030BULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double e = dmath_exp(cases[i].x), l = dmath_log(cases[i].x);
        uint64_t eb, lb;
        memcpy(&eb, &e, 8), memcpy(&lb, &l, 8);
        print_message("x %g: exp %016llx log %016llx\n", cases[i].x, (unsigned long long)eb, (unsigned long long)lb);
        assert_true(eb == cases[i].exp_bits);
        assert_true(lb == cases[i].log_bits);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exp_log_against_libm),
        cmocka_unit_test(test_cos2pi_pow_erfc_against_libm),
        cmocka_unit_test(test_special_values),
        cmocka_unit_test(test_fixed_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
