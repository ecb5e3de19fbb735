/*
** The Adam step as one streaming pass (Kingma and Ba, ICLR 2015; beta1 0.9,
** beta2 0.999, eps 1e-8, bias-corrected):
**
**     m = b1 m + (1 - b1) g        v = b2 v + (1 - b2) g^2
**     p = p - lr (m / c1) / (sqrt(v / c2) + eps),   c1 = 1 - b1^t, c2 = 1 - b2^t
**
** then, on spans marked clip, p clamped to [-1, 1] (seed 002 clips the latent
** weights after each update), and, if asked, g set to 0 for the next backward.
** One read and one write of each array per step, one OpenMP region for all
** spans (no barrier between them). optim_adam_ref is the plain twin: the
** update loop, then the clip loop, then the zeroing, one span at a time; the
** two give the same bits (tests/test_optim.c), since no operation is
** reordered or contracted (-ffp-contract=off).
*/
#ifndef BNAS_OPTIM_H
#define BNAS_OPTIM_H

#include <stdint.h>

/* Parameters [lo, hi) of the arrays, clamped to [-1, 1] after the update if clip. */
typedef struct {
    int64_t lo, hi;
    int clip;
} optim_span;

/* One Adam step, number t >= 1, on the n spans of p, g, m, v (same layout). */
void optim_adam(float *p, float *g, float *m, float *v, const optim_span *spans, int n, float lr, int64_t t,
                int zero_grads);
void optim_adam_ref(float *p, float *g, float *m, float *v, const optim_span *spans, int n, float lr, int64_t t,
                    int zero_grads);

#endif
