/*
** Elementary functions that give the same bits on every host.
**
** libm's exp, log, pow, cos and erfc are accurate but not reproducible:
** glibc picks FMA or non-FMA code paths at load time (ifunc) and other libms
** round differently, so the last bit of a loss, a weight initialisation or a
** flip gap could depend on the CPU. These are built from IEEE +, -, *, /,
** sqrt, floor and ldexp/frexp alone (all exactly specified), compiled with
** -ffp-contract=off, so every x86-64 host computes the same double.
**
** Accuracy: within a few ulp of the true value over the ranges used here
** (tests/test_dmath.c checks them against libm); they are not correctly rounded.
*/
#ifndef BNAS_DMATH_H
#define BNAS_DMATH_H

#include <stdint.h>

/* e^x; +inf above 709.78, +0 below -745.2, NaN for NaN. */
double dmath_exp(double x);

/* Natural logarithm; -inf at 0, NaN below 0 or for NaN, +inf at +inf. */
double dmath_log(double x);

/* log(1 + x), accurate for small x; -inf at -1, NaN below -1. */
double dmath_log1p(double x);

/* x^y for x > 0 as exp(y log x); 1 for y = 0; 0 for x = 0 and y > 0. */
double dmath_pow(double x, double y);

/* x^n for an integer n >= 0 by repeated squaring. */
double dmath_powi(double x, int64_t n);

/* cos(2 pi u). */
double dmath_cos2pi(double u);

/* The complementary error function. */
double dmath_erfc(double x);

#endif /* BNAS_DMATH_H */
