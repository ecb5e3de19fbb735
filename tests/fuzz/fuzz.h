/*
** Helpers shared by the fuzz targets (header only: each target is one
** executable, linked either with libFuzzer or with replay.c's main()).
**
** A target checks the contracts of the entry point it drives, not only that it
** does not crash: a failure must return an error code with a message (naming
** the input where the contract says so), a success must give a consistent
** result. A broken contract aborts through FUZZ_CHECK, which both libFuzzer and
** the replay test report as a failure.
*/
#ifndef BNAS_FUZZ_H
#define BNAS_FUZZ_H

#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/err.h"

/* Aborts with the file, line and condition when a contract does not hold. */
#define FUZZ_CHECK(x)                                                              \
    do {                                                                           \
        if (!(x)) {                                                                \
            fprintf(stderr, "%s:%d: contract broken: %s (last message: \"%s\")\n", \
                    __FILE__, __LINE__, #x, bn_errmsg());                          \
            abort();                                                               \
        }                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Clears this thread's error message, so a failure that sets none is seen. */
static inline void fuzz_clear_error(void) { bn_error(BN_OK, "%s", ""); }

/* 1 if the last message is not empty and contains what (a file name). */
static inline int fuzz_msg_names(const char *what) {
    const char *m = bn_errmsg();
    return m[0] != '\0' && strstr(m, what) != NULL;
}

/* With FUZZ_VERBOSE set, prints what the entry point returned (to see which
   inputs of a corpus load and which are refused, and why). */
static inline void fuzz_note(const char *what, int rc) {
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("FUZZ_VERBOSE") != NULL;
    if (verbose) fprintf(stderr, "%s: rc %d: %s\n", what, rc, rc ? bn_errmsg() : "ok");
}

static char fuzz_dir_path[256]; /* this process's scratch directory, "" until made */

static inline void fuzz_dir_remove(void) { rmdir(fuzz_dir_path); }

/* A private scratch directory (made once per process, removed at exit when
   empty): targets write their input there as files for path-based loaders. */
static inline const char *fuzz_dir(void) {
    if (!fuzz_dir_path[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/bnas-fuzz-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(fuzz_dir_path)) {
            perror("mkdtemp");
            abort();
        }
        atexit(fuzz_dir_remove);
    }
    return fuzz_dir_path;
}

/* Writes data[0..n) to fuzz_dir()/name and puts that path in path[cap]. */
static inline void fuzz_write(char *path, size_t cap, const char *name, const uint8_t *data, size_t n) {
    snprintf(path, cap, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

/* Little-endian u32 at p. */
static inline uint32_t fuzz_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#endif /* BNAS_FUZZ_H */
