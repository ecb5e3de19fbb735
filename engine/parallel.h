/* Thread count of the engine: OpenMP loops and OpenBLAS together. */
#ifndef BNAS_PARALLEL_H
#define BNAS_PARALLEL_H

/* Sets the threads used by the calling thread's OpenMP regions and by BLAS. n < 1 means all cores. */
void par_set_threads(int n);

/* Threads the engine currently uses. */
int par_threads(void);

/* Wall-clock seconds from a monotonic clock. */
double par_seconds(void);

/* User + system CPU seconds of the process so far, all threads (0 if unknown). */
double par_cpu_seconds(void);

#endif /* BNAS_PARALLEL_H */
