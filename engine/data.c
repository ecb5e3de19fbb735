/*
** Image data set readers: IDX files (FashionMNIST, MNIST) and CIFAR-10 binary
** batches, both read through zlib so gzip-compressed and plain files work the
** same, plus the deterministic train/validation split.
**
** Every reader validates what it reads before trusting it: header length,
** magic, dimension count, sizes (guarded against overflow), payload length,
** labels. A failure frees whatever was allocated, leaves the output dataset
** zeroed and returns BN_EIO (cannot open or read) or BN_EFORMAT (malformed),
** with a message naming the file.
*/
#define _POSIX_C_SOURCE 200809L
#include "engine/data.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "engine/err.h"
#include "engine/rng.h"

/* Largest pixel payload accepted (bytes); also bounds n*h*w*c arithmetic. */
#define DATA_MAX_BYTES ((uint64_t)1 << 31)
#define DATA_CLASSES 10
#define IDX_TYPE_UBYTE 0x08
#define CIFAR_SIDE 32
#define CIFAR_PLANE (CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_RECORD (1 + 3 * CIFAR_PLANE)

/* ---------------------------------------------------------------------------
** Reading through zlib
*/

/* Opens path for reading (gzip or plain). BN_EIO with a message if it cannot. */
static int data_open(gzFile *out, const char *path) {
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return bn_error(BN_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return bn_error(BN_EIO, "%s: is a directory, expected a file", path);
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return bn_error(BN_EIO, "%s: cannot open: %s", path,
                        errno ? strerror(errno) : "zlib could not allocate its state");
    gzbuffer(f, 1u << 17);
    *out = f;
    return BN_OK;
}

/* zlib's message for f's last error, without the "path: " prefix zlib adds;
   *zerr receives the zlib error code. */
static const char *data_gzmsg(gzFile f, const char *path, int *zerr) {
    const char *msg = gzerror(f, zerr);
    size_t n = strlen(path);
    if (strncmp(msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ') msg += n + 2;
    return msg;
}

/* " (gzip stream ends early)" if the last read of f hit the end of a cut gzip
   stream, else "": appended to truncation messages. */
static const char *data_cut_note(gzFile f) {
    int zerr = 0;
    gzerror(f, &zerr);
    return zerr == Z_BUF_ERROR && !gzdirect(f) ? " (gzip stream ends early)" : "";
}

/* Reads up to len bytes into buf, looping over gzread's int-sized calls.
   *got receives the bytes read. Returns BN_OK (short reads included: the caller
   decides whether that is truncation) or BN_EFORMAT/BN_EIO for a corrupt gzip
   stream or a read error. A gzip stream that ends early is reported as a short
   read, not an error. */
static int data_read(gzFile f, const char *path, void *buf, size_t len, size_t *got) {
    uint8_t *p = buf;
    size_t done = 0;
    *got = 0;
    while (done < len) {
        size_t chunk = len - done;
        if (chunk > (1u << 30)) chunk = 1u << 30;
        int r = gzread(f, p + done, (unsigned)chunk);
        if (r < 0) {
            int zerr = 0;
            const char *msg = data_gzmsg(f, path, &zerr);
            if (zerr == Z_ERRNO)
                return bn_error(BN_EIO, "%s: read error: %s", path, strerror(errno));
            return bn_error(BN_EFORMAT, "%s: corrupt gzip stream: %s", path, msg);
        }
        if (r == 0) break;
        done += (size_t)r;
    }
    *got = done;
    /* Data errors can also surface on the call that returned the last bytes. */
    int zerr = 0;
    const char *msg = data_gzmsg(f, path, &zerr);
    if (zerr != Z_OK && zerr != Z_BUF_ERROR) {
        if (zerr == Z_ERRNO) return bn_error(BN_EIO, "%s: read error: %s", path, strerror(errno));
        return bn_error(BN_EFORMAT, "%s: corrupt gzip stream: %s", path, msg);
    }
    return BN_OK;
}

/* Reads up to want bytes into a new malloc'd *out (freed by the caller; NULL on
   error), growing it as the data arrives, so a header that claims more than the
   file holds never allocates the claim. *got receives the bytes read (fewer
   than want: the file is short). Errors as data_read. */
static int data_read_alloc(gzFile f, const char *path, size_t want, uint8_t **out, size_t *got) {
    size_t cap = want < ((size_t)1 << 20) ? want : (size_t)1 << 20, len = 0, n = 0;
    uint8_t *buf = bn_malloc(cap);
    int rc;
    *out = NULL;
    *got = 0;
    while ((rc = data_read(f, path, buf + len, cap - len, &n)) == BN_OK) {
        len += n;
        if (len < cap || cap == want) break; /* end of file, or all of it */
        cap = cap > want / 2 ? want : 2 * cap;
        uint8_t *nb = realloc(buf, cap);
        if (!nb) {
            rc = bn_error(BN_ENOMEM, "%s: out of memory reading %zu bytes", path, cap);
            break;
        }
        buf = nb;
    }
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    *got = len;
    return BN_OK;
}

/* After the expected payload, checks that the file ends there. Reading past the
   payload also makes zlib verify the gzip trailer (CRC32 and length). */
static int data_expect_end(gzFile f, const char *path, size_t payload_end) {
    uint8_t extra[64];
    size_t got = 0;
    int rc = data_read(f, path, extra, sizeof extra, &got);
    if (rc) return rc;
    if (*data_cut_note(f))
        return bn_error(BN_EFORMAT, "%s: gzip stream is cut after the data (its trailer is missing)", path);
    if (got)
        return bn_error(BN_EFORMAT, "%s: unexpected data after byte %zu (file longer than its header says)",
                        path, payload_end);
    return BN_OK;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* ---------------------------------------------------------------------------
** IDX
*/

/* Reads an IDX header with `want_dims` dimensions of unsigned bytes into dims
   and checks the sizes; *payload receives the product of the dimensions. */
static int idx_header(gzFile f, const char *path, int want_dims, uint32_t *dims, uint64_t *payload) {
    uint8_t hdr[4 + 4 * 3];
    size_t hdr_len = 4 + 4 * (size_t)want_dims, got = 0;
    int rc = data_read(f, path, hdr, hdr_len, &got);
    if (rc) return rc;
    if (got < 4)
        return bn_error(BN_EFORMAT, "%s: truncated IDX header: %zu of %zu bytes%s", path, got, hdr_len,
                        data_cut_note(f));
    uint32_t magic = be32(hdr);
    uint32_t want_magic = (uint32_t)IDX_TYPE_UBYTE << 8 | (uint32_t)want_dims;
    if (hdr[0] != 0 || hdr[1] != 0 || hdr[2] != IDX_TYPE_UBYTE)
        return bn_error(BN_EFORMAT,
                        "%s: bad IDX magic 0x%08x (expected 0x%08x: unsigned bytes, %d dimensions)",
                        path, (unsigned)magic, (unsigned)want_magic, want_dims);
    if (hdr[3] != want_dims)
        return bn_error(BN_EFORMAT, "%s: IDX file has %d dimensions, expected %d (magic 0x%08x, expected 0x%08x)",
                        path, hdr[3], want_dims, (unsigned)magic, (unsigned)want_magic);
    if (got < hdr_len)
        return bn_error(BN_EFORMAT, "%s: truncated IDX header: %zu of %zu bytes%s", path, got, hdr_len,
                        data_cut_note(f));
    uint64_t total = 1;
    for (int i = 0; i < want_dims; i++) {
        dims[i] = be32(hdr + 4 + 4 * i);
        if (dims[i] == 0)
            return bn_error(BN_EFORMAT, "%s: %s", path,
                            i == 0 ? "zero images (item count is 0)" : "an image dimension is 0");
        if (dims[i] > INT_MAX)
            return bn_error(BN_EFORMAT, "%s: dimension %d is absurd (%u)", path, i, (unsigned)dims[i]);
        total *= dims[i]; /* each factor < 2^31 and total <= 2^31 before: no overflow */
        if (total > DATA_MAX_BYTES)
            return bn_error(BN_EFORMAT, "%s: absurd size: dimensions give more than %llu bytes",
                            path, (unsigned long long)DATA_MAX_BYTES);
    }
    *payload = total;
    return BN_OK;
}

int data_load_idx(dataset *d, const char *images_path, const char *labels_path) {
    memset(d, 0, sizeof *d);
    if (!images_path || !labels_path) return bn_error(BN_EARG, "data_load_idx: missing path");
    int rc = BN_OK;
    gzFile fi = NULL, fl = NULL;
    uint8_t *pixels = NULL, *labels = NULL;
    uint32_t idim[3] = {0}, ldim[1] = {0};
    uint64_t ibytes = 0, lbytes = 0;
    size_t got = 0;

    if ((rc = data_open(&fi, images_path))) goto cleanup;
    if ((rc = idx_header(fi, images_path, 3, idim, &ibytes))) goto cleanup;
    if ((rc = data_open(&fl, labels_path))) goto cleanup;
    if ((rc = idx_header(fl, labels_path, 1, ldim, &lbytes))) goto cleanup;
    if (idim[0] != ldim[0]) {
        rc = bn_error(BN_EFORMAT, "%s: %u images but %s has %u labels", images_path,
                      (unsigned)idim[0], labels_path, (unsigned)ldim[0]);
        goto cleanup;
    }

    if ((rc = data_read_alloc(fi, images_path, (size_t)ibytes, &pixels, &got))) goto cleanup;
    if (got < ibytes) {
        size_t per = (size_t)idim[1] * idim[2];
        rc = bn_error(BN_EFORMAT,
                      "%s: truncated pixel data: expected %llu bytes (%u images of %ux%u), found %zu "
                      "(%zu whole images)%s",
                      images_path, (unsigned long long)ibytes, (unsigned)idim[0], (unsigned)idim[1],
                      (unsigned)idim[2], got, got / per, data_cut_note(fi));
        goto cleanup;
    }
    if ((rc = data_expect_end(fi, images_path, 16 + (size_t)ibytes))) goto cleanup;

    if ((rc = data_read_alloc(fl, labels_path, (size_t)lbytes, &labels, &got))) goto cleanup;
    if (got < lbytes) {
        rc = bn_error(BN_EFORMAT, "%s: truncated label data: expected %llu labels, found %zu%s",
                      labels_path, (unsigned long long)lbytes, got, data_cut_note(fl));
        goto cleanup;
    }
    if ((rc = data_expect_end(fl, labels_path, 8 + (size_t)lbytes))) goto cleanup;
    for (size_t i = 0; i < (size_t)lbytes; i++) {
        if (labels[i] >= DATA_CLASSES) {
            rc = bn_error(BN_EFORMAT, "%s: label %d of image %zu is out of range (must be < %d)",
                          labels_path, labels[i], i, DATA_CLASSES);
            goto cleanup;
        }
    }

    d->n = (int)idim[0];
    d->h = (int)idim[1];
    d->w = (int)idim[2];
    d->c = 1;
    d->classes = DATA_CLASSES;
    d->pixels = pixels;
    d->labels = labels;
    pixels = labels = NULL;

cleanup:
    if (fi) gzclose(fi);
    if (fl) gzclose(fl);
    free(pixels);
    free(labels);
    return rc;
}

/* Writes dir/name.gz into buf if it exists, else dir/name (which may not exist:
   the loader then reports it missing, naming both). */
static int data_pick(char *buf, size_t n, const char *dir, const char *name) {
    int w = snprintf(buf, n, "%s/%s.gz", dir, name);
    if (w < 0 || (size_t)w >= n) return bn_error(BN_EARG, "%s: directory path too long", dir);
    struct stat st;
    if (stat(buf, &st) == 0) return BN_OK;
    snprintf(buf, n, "%s/%s", dir, name);
    if (stat(buf, &st) == 0) return BN_OK;
    return bn_error(BN_EIO, "%s/%s[.gz]: not found (FashionMNIST directory %s)", dir, name, dir);
}

int data_load_fashion_mnist(dataset *train, dataset *test, const char *dir) {
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (!dir) dir = getenv("BNAS_FASHION_MNIST_DIR");
    if (!dir || !*dir) dir = DATA_FASHION_MNIST_DIR;
    char ip[4096], lp[4096];
    int rc;
    if ((rc = data_pick(ip, sizeof ip, dir, "train-images-idx3-ubyte"))) return rc;
    if ((rc = data_pick(lp, sizeof lp, dir, "train-labels-idx1-ubyte"))) return rc;
    if ((rc = data_load_idx(train, ip, lp))) return rc;
    if ((rc = data_pick(ip, sizeof ip, dir, "t10k-images-idx3-ubyte")) ||
        (rc = data_pick(lp, sizeof lp, dir, "t10k-labels-idx1-ubyte")) ||
        (rc = data_load_idx(test, ip, lp))) {
        data_free(train);
        return rc;
    }
    if (train->h != test->h || train->w != test->w) {
        rc = bn_error(BN_EFORMAT, "%s: train images are %dx%d but test images are %dx%d", dir,
                      train->h, train->w, test->h, test->w);
        data_free(train);
        data_free(test);
        return rc;
    }
    return BN_OK;
}

/* ---------------------------------------------------------------------------
** CIFAR-10
*/

/* Reads the whole of path (gzip or plain) into a malloc'd buffer of at most
   max bytes. */
static int data_read_all(uint8_t **out, size_t *out_len, const char *path, size_t max) {
    *out = NULL;
    *out_len = 0;
    gzFile f = NULL;
    int rc = data_open(&f, path);
    if (rc) return rc;
    struct stat st;
    size_t cap = 1u << 16;
    if (stat(path, &st) == 0 && st.st_size > 0 && (uint64_t)st.st_size < max) cap = (size_t)st.st_size + 1;
    uint8_t *buf = bn_malloc(cap);
    size_t len = 0;
    for (;;) {
        if (len == cap) {
            if (cap > max) {
                rc = bn_error(BN_EFORMAT, "%s: absurd size: more than %zu bytes", path, max);
                goto cleanup;
            }
            cap = cap > max / 2 ? max + 1 : cap * 2;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                rc = bn_error(BN_ENOMEM, "%s: out of memory reading %zu bytes", path, cap);
                goto cleanup;
            }
            buf = nb;
        }
        size_t got = 0;
        if ((rc = data_read(f, path, buf + len, cap - len, &got))) goto cleanup;
        len += got;
        if (len < cap) break; /* end of file */
    }
    if (*data_cut_note(f)) {
        rc = bn_error(BN_EFORMAT, "%s: truncated gzip stream (it ends after %zu bytes of data)", path, len);
        goto cleanup;
    }
    if (len > max) {
        rc = bn_error(BN_EFORMAT, "%s: absurd size: more than %zu bytes", path, max);
        goto cleanup;
    }
    *out = buf;
    *out_len = len;
    buf = NULL;
cleanup:
    gzclose(f);
    free(buf);
    return rc;
}

int data_load_cifar10_files(dataset *d, const char *const *paths, int n_paths) {
    memset(d, 0, sizeof *d);
    if (!paths || n_paths <= 0) return bn_error(BN_EARG, "CIFAR-10: no batch files given");
    int rc = BN_OK;
    uint8_t *raw = NULL, *pixels = NULL, *labels = NULL;
    size_t n_total = 0, cap = 0;
    const size_t img_bytes = 3 * (size_t)CIFAR_PLANE;
    for (int k = 0; k < n_paths; k++) {
        size_t len = 0;
        const char *path = paths[k];
        if (!path) {
            rc = bn_error(BN_EARG, "CIFAR-10: batch path %d is NULL", k);
            goto cleanup;
        }
        if ((rc = data_read_all(&raw, &len, path, (size_t)DATA_MAX_BYTES))) goto cleanup;
        if (len == 0) {
            rc = bn_error(BN_EFORMAT, "%s: empty file (zero images)", path);
            goto cleanup;
        }
        if (len % CIFAR_RECORD != 0) {
            rc = bn_error(BN_EFORMAT,
                          "%s: size %zu bytes is not a multiple of the %d-byte CIFAR-10 record "
                          "(%zu whole records and %zu bytes left over)",
                          path, len, CIFAR_RECORD, len / CIFAR_RECORD, len % CIFAR_RECORD);
            goto cleanup;
        }
        size_t n = len / CIFAR_RECORD;
        if ((n_total + n) * img_bytes > DATA_MAX_BYTES) {
            rc = bn_error(BN_EFORMAT, "%s: absurd size: CIFAR-10 files hold more than %llu pixel bytes",
                          path, (unsigned long long)DATA_MAX_BYTES);
            goto cleanup;
        }
        if (n_total + n > cap) {
            size_t ncap = cap ? cap : n;
            while (ncap < n_total + n) ncap *= 2;
            if (ncap * img_bytes > DATA_MAX_BYTES) ncap = n_total + n;
            uint8_t *np = realloc(pixels, ncap * img_bytes), *nl = NULL;
            if (np) pixels = np;
            if (np) nl = realloc(labels, ncap);
            if (!np || !nl) {
                rc = bn_error(BN_ENOMEM, "%s: out of memory for %zu images", path, ncap);
                goto cleanup;
            }
            labels = nl;
            cap = ncap;
        }
        for (size_t i = 0; i < n; i++) {
            const uint8_t *rec = raw + i * CIFAR_RECORD;
            if (rec[0] >= DATA_CLASSES) {
                rc = bn_error(BN_EFORMAT, "%s: label %d of image %zu is out of range (must be < %d)",
                              path, rec[0], i, DATA_CLASSES);
                goto cleanup;
            }
            labels[n_total + i] = rec[0];
            /* planar (C, H, W) -> interleaved (H, W, C) */
            uint8_t *dst = pixels + (n_total + i) * img_bytes;
            const uint8_t *src = rec + 1;
            for (int p = 0; p < CIFAR_PLANE; p++) {
                dst[3 * p + 0] = src[p];
                dst[3 * p + 1] = src[CIFAR_PLANE + p];
                dst[3 * p + 2] = src[2 * CIFAR_PLANE + p];
            }
        }
        n_total += n;
        free(raw);
        raw = NULL;
    }
    d->n = (int)n_total;
    d->h = d->w = CIFAR_SIDE;
    d->c = 3;
    d->classes = DATA_CLASSES;
    d->pixels = pixels;
    d->labels = labels;
    pixels = labels = NULL;
cleanup:
    free(raw);
    free(pixels);
    free(labels);
    return rc;
}

int data_load_named(const char *name, dataset *train, dataset *test, const char *dir) {
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (!strcmp(name, "fashion") || !strcmp(name, "fashion-mnist") || !strcmp(name, "fashion_mnist"))
        return data_load_fashion_mnist(train, test, dir);
    if (!strcmp(name, "cifar10") || !strcmp(name, "cifar-10")) {
        if (!dir || !*dir) return bn_error(BN_EARG, "cifar10 needs a data folder (the cifar-10-batches-bin folder)");
        return data_load_cifar10(train, test, dir);
    }
    return bn_error(BN_EARG, "unknown data set '%s' (expected fashion or cifar10)", name);
}

int data_load_cifar10(dataset *train, dataset *test, const char *dir) {
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (!dir || !*dir)
        return bn_error(BN_EARG, "CIFAR-10: no directory given (the cifar-10-batches-bin folder)");
    char names[6][4096];
    const char *paths[6];
    for (int k = 0; k < 6; k++) {
        int w = k < 5 ? snprintf(names[k], sizeof names[k], "%s/data_batch_%d.bin", dir, k + 1)
                      : snprintf(names[k], sizeof names[k], "%s/test_batch.bin", dir);
        if (w < 0 || (size_t)w >= sizeof names[k])
            return bn_error(BN_EARG, "%s: directory path too long", dir);
        paths[k] = names[k];
    }
    int rc = data_load_cifar10_files(train, paths, 5);
    if (rc) return rc;
    if ((rc = data_load_cifar10_files(test, paths + 5, 1))) data_free(train);
    return rc;
}

/* ---------------------------------------------------------------------------
** Split, slice, free
*/

int data_split(dataset *train, dataset *val, const dataset *full, int n_val, uint64_t seed) {
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    if (!full || full->n <= 0 || !full->pixels || !full->labels)
        return bn_error(BN_EARG, "data_split: empty data set");
    if (n_val < 0 || n_val >= full->n)
        return bn_error(BN_EARG, "data_split: validation size %d must be in 0..%d", n_val, full->n - 1);
    const int n = full->n;
    const size_t img = (size_t)full->h * full->w * full->c;
    int32_t *perm = bn_malloc(sizeof *perm * (size_t)n);
    uint8_t *is_val = bn_calloc((size_t)n, 1);
    for (int i = 0; i < n; i++) perm[i] = i;
    pcg32 r;
    rng_keyed(&r, seed, 0, RNG_SPLIT);
    rng_shuffle(&r, perm, n);
    for (int i = 0; i < n_val; i++) is_val[perm[i]] = 1;
    free(perm);

    dataset *parts[2] = {train, val};
    int counts[2] = {n - n_val, n_val};
    for (int k = 0; k < 2; k++) {
        dataset *p = parts[k];
        p->n = counts[k];
        p->h = full->h;
        p->w = full->w;
        p->c = full->c;
        p->classes = full->classes;
        p->pixels = bn_malloc(img * (size_t)counts[k]);
        p->labels = bn_malloc((size_t)counts[k]);
    }
    int at[2] = {0, 0};
    for (int i = 0; i < n; i++) {
        int k = is_val[i];
        dataset *p = parts[k];
        memcpy(p->pixels + (size_t)at[k] * img, full->pixels + (size_t)i * img, img);
        p->labels[at[k]] = full->labels[i];
        at[k]++;
    }
    BN_ASSERT(at[0] == counts[0] && at[1] == counts[1]);
    free(is_val);
    return BN_OK;
}

int data_check_counts(const char *name, int n_full, int n_test_have, const char *const keys[3],
                      const int asked[3]) {
    for (int k = 0; k < 3; k++)
        if (keys[k] && asked[k] < 0) return bn_error(BN_EARG, "%s: %d images asked, at least 0", keys[k], asked[k]);
    int tr = keys[0] ? asked[0] : 0, va = keys[1] ? asked[1] : 0;
    if (va >= n_full && keys[1])
        return bn_error(BN_EARG, "%s: %d images asked, %s has %d training images and validation must leave "
                                 "some to train", keys[1], va, name, n_full);
    if (tr > n_full)
        return bn_error(BN_EARG, "%s: %d images asked, %s has %d training images", keys[0], tr, name, n_full);
    if (tr > 0 && va > 0 && (long)tr + va > n_full)
        return bn_error(BN_EARG, "%s + %s: %d + %d images asked, %s has %d training images to split", keys[0],
                        keys[1], tr, va, name, n_full);
    if (keys[2] && asked[2] > n_test_have)
        return bn_error(BN_EARG, "%s: %d images asked, %s has %d test images", keys[2], asked[2], name,
                        n_test_have);
    return BN_OK;
}

dataset data_slice(const dataset *d, int start, int n) {
    BN_ASSERT(start >= 0 && n >= 0 && start <= d->n && n <= d->n - start);
    dataset s = *d;
    const size_t img = (size_t)d->h * d->w * d->c;
    s.n = n;
    s.pixels = d->pixels ? d->pixels + (size_t)start * img : NULL;
    s.labels = d->labels ? d->labels + start : NULL;
    return s;
}

void data_free(dataset *d) {
    if (!d) return;
    free(d->pixels);
    free(d->labels);
    memset(d, 0, sizeof *d);
}
