/* Thread control for OpenMP and OpenBLAS, and a monotonic clock. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime: with clang and libomp no header defines it for us */
#include "engine/parallel.h"

#include <cblas.h>
#include <omp.h>
#include <sys/resource.h>
#include <time.h>

void par_set_threads(int n) {
    if (n < 1) n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int par_threads(void) { return omp_get_max_threads(); }

double par_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double par_cpu_seconds(void) {
    struct rusage u;
    if (getrusage(RUSAGE_SELF, &u)) return 0.0;
    return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec * 1e-6 + (double)u.ru_stime.tv_sec +
           u.ru_stime.tv_usec * 1e-6;
}
