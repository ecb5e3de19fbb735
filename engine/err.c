/* Thread-local error messages and checked allocation. */
#include "engine/err.h"

#include <stdarg.h>
#include <string.h>

static _Thread_local char bn_errbuf[1024];

int bn_error(int rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(bn_errbuf, sizeof bn_errbuf, fmt, ap);
    va_end(ap);
    return rc;
}

const char *bn_errmsg(void) { return bn_errbuf; }

const char *bn_strerror(int rc) {
    switch (rc) {
    case BN_OK: return "ok";
    case BN_EARG: return "invalid argument";
    case BN_ENOMEM: return "out of memory";
    case BN_EIO: return "i/o error";
    case BN_EFORMAT: return "format error";
    case BN_EDIVERGED: return "training diverged";
    case BN_EDB: return "database error";
    case BN_ESPEC: return "spec error";
    case BN_EINTR: return "interrupted";
    case BN_ECHANGED: return "spec changed";
    default: return "unknown error";
    }
}

void *bn_malloc_check(size_t size, const char *file, int line) {
    void *p = malloc(size ? size : 1);
    if (!p) {
        fprintf(stderr, "%s:%d: out of memory allocating %zu bytes\n", file, line, size);
        abort();
    }
    return p;
}

void *bn_calloc_check(size_t n, size_t size, const char *file, int line) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "%s:%d: out of memory allocating %zu x %zu bytes\n", file, line, n, size);
        abort();
    }
    return p;
}

void *bn_aligned_alloc(size_t size) {
    size_t rounded = (size + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) {
        fprintf(stderr, "out of memory allocating %zu aligned bytes\n", size);
        abort();
    }
    memset(p, 0, rounded ? rounded : 64);
    return p;
}
