/*
** Error codes and messages shared by every part of bnas.
**
** Library code never prints and never exits: a function that can fail returns
** an int result code (BN_OK on success) and, on failure, leaves a message for
** the caller in a thread-local buffer. Only the command line prints it.
**
**     if (x < 0) return bn_error(BN_EARG, "%s: negative size %d", path, x);
**     ...
**     fprintf(stderr, "bnas: %s\n", bn_errmsg());
**
** Programmer errors (broken invariants) are not result codes: they abort with
** file and line through BN_ASSERT.
*/
#ifndef BNAS_ERR_H
#define BNAS_ERR_H

#include <stdio.h>
#include <stdlib.h>

enum {
    BN_OK = 0,       /* success */
    BN_EARG = 1,     /* invalid argument or configuration */
    BN_ENOMEM = 2,   /* out of memory */
    BN_EIO = 3,      /* file missing, unreadable or unwritable */
    BN_EFORMAT = 4,  /* file present but malformed: bad magic, truncated, checksum */
    BN_EDIVERGED = 5,/* training produced NaN or Inf */
    BN_EDB = 6,      /* database error */
    BN_ESPEC = 7,    /* spec file error */
    BN_EINTR = 8,    /* interrupted by a signal */
    BN_ECHANGED = 9, /* resume refused: the spec changed */
};

/* Sets this thread's message from a printf format and returns rc. */
int bn_error(int rc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* This thread's last message ("" if none). */
const char *bn_errmsg(void);

/* Short name of a result code ("format error", ...). */
const char *bn_strerror(int rc);

/* Aborts with file and line when an invariant does not hold. */
#define BN_ASSERT(x)                                                            \
    do {                                                                        \
        if (!(x)) {                                                             \
            fprintf(stderr, "%s:%d: BN_ASSERT(%s) failed\n", __FILE__, __LINE__, \
                    #x);                                                        \
            abort();                                                            \
        }                                                                       \
    } while (0)

/* malloc/calloc that abort with file and line on out-of-memory. */
void *bn_malloc_check(size_t size, const char *file, int line);
void *bn_calloc_check(size_t n, size_t size, const char *file, int line);
#define bn_malloc(size) bn_malloc_check((size), __FILE__, __LINE__)
#define bn_calloc(n, size) bn_calloc_check((n), (size), __FILE__, __LINE__)

/* 64-byte aligned allocation for SIMD buffers; free with free(). Aborts on OOM. */
void *bn_aligned_alloc(size_t size);

#endif /* BNAS_ERR_H */
