/*
** Non-dominated sorting, crowding distance and exact hypervolume (2-D sweep;
** 3-D by slicing along the third objective and summing 2-D areas).
*/
#include "nas/pareto.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/err.h"

int pareto_dominates(const double *a, const double *b, int m) {
    int better = 0;
    for (int j = 0; j < m; j++) {
        if (a[j] > b[j]) return 0;
        if (a[j] < b[j]) better = 1;
    }
    return better;
}

void pareto_rank(const double *pts, int n, int m, int *rank) {
    if (n <= 0) return;
    int *count = bn_calloc((size_t)n, sizeof *count);      /* how many dominate i */
    int *dom_start = bn_calloc((size_t)n + 1, sizeof *dom_start);
    /* First pass: sizes of the "i dominates" lists. */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (i != j && pareto_dominates(pts + (size_t)i * m, pts + (size_t)j * m, m))
                dom_start[i + 1]++, count[j]++;
    for (int i = 0; i < n; i++) dom_start[i + 1] += dom_start[i];
    int *dom = bn_malloc((size_t)(dom_start[n] ? dom_start[n] : 1) * sizeof *dom);
    int *fill = bn_calloc((size_t)n, sizeof *fill);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (i != j && pareto_dominates(pts + (size_t)i * m, pts + (size_t)j * m, m))
                dom[dom_start[i] + fill[i]++] = j;
    int *front = bn_malloc((size_t)n * sizeof *front), nf = 0;
    for (int i = 0; i < n; i++)
        if (count[i] == 0) front[nf++] = i, rank[i] = 0;
    int head = 0, r = 0;
    while (head < nf) {
        int end = nf;
        for (int q = head; q < end; q++) {
            int i = front[q];
            for (int e = dom_start[i]; e < dom_start[i + 1]; e++) {
                int j = dom[e];
                if (--count[j] == 0) rank[j] = r + 1, front[nf++] = j;
            }
        }
        head = end;
        r++;
    }
    free(count);
    free(dom_start);
    free(dom);
    free(fill);
    free(front);
}

/* Sort context for qsort (single-threaded callers only get their own copy). */
typedef struct {
    double v; /* key */
    int i;    /* position in idx */
} keyed;

static int cmp_keyed(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    if (x->v < y->v) return -1;
    if (x->v > y->v) return 1;
    return x->i - y->i;
}

void pareto_crowding(const double *pts, int m, const int *idx, int k, double *dist) {
    for (int q = 0; q < k; q++) dist[q] = 0;
    if (k <= 2) {
        for (int q = 0; q < k; q++) dist[q] = INFINITY;
        return;
    }
    keyed *s = bn_malloc((size_t)k * sizeof *s);
    for (int j = 0; j < m; j++) {
        for (int q = 0; q < k; q++) s[q].v = pts[(size_t)idx[q] * m + j], s[q].i = q;
        qsort(s, (size_t)k, sizeof *s, cmp_keyed);
        double range = s[k - 1].v - s[0].v;
        dist[s[0].i] = INFINITY;
        dist[s[k - 1].i] = INFINITY;
        if (range <= 0) continue;
        for (int q = 1; q < k - 1; q++)
            if (isfinite(dist[s[q].i])) dist[s[q].i] += (s[q + 1].v - s[q - 1].v) / range;
    }
    free(s);
}

/* 2-D area dominated by pts (k points, stride m, using objectives 0 and 1)
   within ref; points must be strictly inside ref. */
static double hv2(const double *pts, int k, int m, const double *ref) {
    if (k == 0) return 0;
    keyed *s = bn_malloc((size_t)k * sizeof *s);
    for (int q = 0; q < k; q++) s[q].v = pts[(size_t)q * m], s[q].i = q;
    qsort(s, (size_t)k, sizeof *s, cmp_keyed);
    double area = 0, best_y = ref[1];
    /* Sweep in increasing x: each point adds the strip between its y and the
       lowest y seen so far, from its x to the reference x. */
    for (int q = 0; q < k; q++) {
        double y = pts[(size_t)s[q].i * m + 1];
        if (y < best_y) {
            area += (ref[0] - s[q].v) * (best_y - y);
            best_y = y;
        }
    }
    free(s);
    return area;
}

double pareto_hypervolume(const double *pts, int n, int m, const double *ref) {
    BN_ASSERT(m >= 1 && m <= 3);
    /* Keep the points strictly inside the reference box. */
    double *in = bn_malloc((size_t)(n ? n : 1) * m * sizeof *in);
    int k = 0;
    for (int i = 0; i < n; i++) {
        int ok = 1;
        for (int j = 0; j < m; j++)
            if (!(pts[(size_t)i * m + j] < ref[j])) ok = 0;
        if (ok) memcpy(in + (size_t)k++ * m, pts + (size_t)i * m, (size_t)m * sizeof *in);
    }
    double hv = 0;
    if (k == 0) {
        hv = 0;
    } else if (m == 1) {
        double best = in[0];
        for (int i = 1; i < k; i++)
            if (in[i] < best) best = in[i];
        hv = ref[0] - best;
    } else if (m == 2) {
        hv = hv2(in, k, 2, ref);
    } else {
        /* Slices along z: between consecutive distinct z values the dominated
           region's cross-section is the 2-D front of points with z <= slice. */
        keyed *s = bn_malloc((size_t)k * sizeof *s);
        for (int q = 0; q < k; q++) s[q].v = in[(size_t)q * 3 + 2], s[q].i = q;
        qsort(s, (size_t)k, sizeof *s, cmp_keyed);
        double *slice = bn_malloc((size_t)k * 3 * sizeof *slice);
        int ns = 0;
        for (int q = 0; q < k; q++) {
            memcpy(slice + (size_t)ns++ * 3, in + (size_t)s[q].i * 3, 3 * sizeof *slice);
            double z_next = q + 1 < k ? s[q + 1].v : ref[2];
            if (z_next > s[q].v) hv += hv2(slice, ns, 3, ref) * (z_next - s[q].v);
        }
        free(slice);
        free(s);
    }
    free(in);
    return hv;
}
