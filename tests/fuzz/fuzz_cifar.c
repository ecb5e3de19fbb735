/*
** Fuzz target: the CIFAR-10 batch reader (engine/data.c
** data_load_cifar10_files), gzip or plain, over one to three batch files.
**
** Input: a byte k (1 + k % 3 files), then k - 1 little-endian u32 lengths of
** the first files (each taken modulo the bytes left), then the files' bytes;
** the last file takes what remains.
**
** Contracts: a failure is BN_EFORMAT (or BN_EIO) with a message naming one of
** the files, and leaves the data set zeroed; a success holds every record of
** every file (32x32x3, labels below 10), the first one's pixels converted from
** planar to interleaved.
*/
#include "tests/fuzz/fuzz.h"

#include "engine/data.h"

#define MAX_FILES 3

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int k = 1 + data[0] % MAX_FILES;
    size_t at = 1;
    size_t len[MAX_FILES];
    for (int i = 0; i < k - 1; i++) {
        if (size - at < 4) return 0;
        len[i] = fuzz_le32(data + at);
        at += 4;
    }
    char names[MAX_FILES][512];
    const char *paths[MAX_FILES];
    const uint8_t *p[MAX_FILES];
    for (int i = 0; i < k; i++) {
        size_t left = size - at;
        len[i] = i < k - 1 ? len[i] % (left + 1) : left;
        p[i] = data + at;
        char base[32];
        snprintf(base, sizeof base, "data_batch_%d.bin", i + 1);
        fuzz_write(names[i], sizeof names[i], base, p[i], len[i]);
        paths[i] = names[i];
        at += len[i];
    }
    dataset d;
    fuzz_clear_error();
    int rc = data_load_cifar10_files(&d, paths, k);
    fuzz_note("cifar", rc);
    if (rc == BN_OK) {
        FUZZ_CHECK(d.n >= k && d.h == 32 && d.w == 32 && d.c == 3 && d.classes == 10);
        for (int i = 0; i < d.n; i++) FUZZ_CHECK(d.labels[i] < 10);
        /* A plain first file (no gzip magic): its first record is at p[0]. */
        if (len[0] >= 2 && !(p[0][0] == 0x1f && p[0][1] == 0x8b)) {
            FUZZ_CHECK(d.labels[0] == p[0][0]);
            for (int q = 0; q < 1024; q++)
                for (int c = 0; c < 3; c++) FUZZ_CHECK(d.pixels[3 * q + c] == p[0][1 + 1024 * c + q]);
        }
        data_free(&d);
    } else {
        FUZZ_CHECK(rc == BN_EFORMAT || rc == BN_EIO);
        int named = 0;
        for (int i = 0; i < k; i++) named |= fuzz_msg_names(paths[i]);
        FUZZ_CHECK(named);
        FUZZ_CHECK(d.n == 0 && d.pixels == NULL && d.labels == NULL);
    }
    for (int i = 0; i < k; i++) unlink(paths[i]);
    return 0;
}
