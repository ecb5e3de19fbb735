/*
** Adam as one streaming pass; see engine/optim.h.
*/
#include "engine/optim.h"

#include <math.h>
#include <string.h>

#include "engine/dmath.h"

#define OPTIM_B1 0.9f
#define OPTIM_B2 0.999f
#define OPTIM_EPS 1e-8f

void optim_adam(float *p, float *g, float *m, float *v, const optim_span *spans, int n, float lr, int64_t t,
                int zero_grads) {
    const float b1 = OPTIM_B1, b2 = OPTIM_B2, eps = OPTIM_EPS;
    const float c1 = 1.0f - (float)dmath_powi(b1, t), c2 = 1.0f - (float)dmath_powi(b2, t);
#pragma omp parallel
    for (int k = 0; k < n; k++) {
        /* lim = 1 clamps; lim = inf leaves every value (NaN included) as it is */
        const float lim = spans[k].clip ? 1.0f : INFINITY;
        const int64_t lo = spans[k].lo, hi = spans[k].hi;
#pragma omp for schedule(static) nowait
        for (int64_t i = lo; i < hi; i++) {
            float gi = g[i];
            float mi = b1 * m[i] + (1.0f - b1) * gi;
            float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
            m[i] = mi, v[i] = vi;
            float mh = mi / c1, vh = vi / c2;
            float pi = p[i] - lr * mh / (sqrtf(vh) + eps);
            p[i] = pi > lim ? lim : pi < -lim ? -lim : pi;
            if (zero_grads) g[i] = 0.0f;
        }
    }
}

void optim_adam_ref(float *p, float *g, float *m, float *v, const optim_span *spans, int n, float lr, int64_t t,
                    int zero_grads) {
    const float b1 = OPTIM_B1, b2 = OPTIM_B2, eps = OPTIM_EPS;
    const float c1 = 1.0f - (float)dmath_powi(b1, t), c2 = 1.0f - (float)dmath_powi(b2, t);
    for (int k = 0; k < n; k++) {
        for (int64_t i = spans[k].lo; i < spans[k].hi; i++) {
            m[i] = b1 * m[i] + (1.0f - b1) * g[i];
            v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
            float mh = m[i] / c1, vh = v[i] / c2;
            p[i] -= lr * mh / (sqrtf(vh) + eps);
        }
        if (spans[k].clip)
            for (int64_t i = spans[k].lo; i < spans[k].hi; i++) p[i] = p[i] > 1.0f ? 1.0f : p[i] < -1.0f ? -1.0f : p[i];
        if (zero_grads) memset(g + spans[k].lo, 0, sizeof(float) * (size_t)(spans[k].hi - spans[k].lo));
    }
}
