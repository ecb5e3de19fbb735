/*
** Pareto dominance, non-dominated sorting, crowding distance and exact
** hypervolume. Every function works on minimisation: the caller negates
** maximised objectives (and their reference coordinates) first.
**
** Points are row-major: pts is (n, m), point i is pts[i*m .. i*m+m).
*/
#ifndef BNAS_PARETO_H
#define BNAS_PARETO_H

/* 1 if a dominates b: a <= b in every objective and a < b in at least one. */
int pareto_dominates(const double *a, const double *b, int m);

/* Fast non-dominated sort (Deb et al. 2002): rank[i] = 0 for the first front,
   1 for the next, ... O(m n^2) time. pts is (n, m), rank is (n). */
void pareto_rank(const double *pts, int n, int m, int *rank);

/* Crowding distance of the k points idx[0..k) (one front) as in NSGA-II: per
   objective, sort, boundary points get INFINITY, inner points add the gap
   between their neighbours divided by the objective's range (an objective with
   zero range adds nothing). dist is (k). */
void pareto_crowding(const double *pts, int m, const int *idx, int k, double *dist);

/* Exact hypervolume dominated by the n points and bounded by ref, for m = 1, 2
   or 3. Points not strictly better than ref in every objective add nothing.
   Dominated and repeated points are allowed. */
double pareto_hypervolume(const double *pts, int n, int m, const double *ref);

#endif /* BNAS_PARETO_H */
