/*
** Fuzz target: the IDX reader (engine/data.c data_load_idx), gzip or plain.
**
** Input: a little-endian u32 L, then the image file's bytes, then the label
** file's L bytes (L is taken modulo the bytes left). Both are written as files
** and loaded.
**
** Contracts: a failure is BN_EFORMAT (or BN_EIO) with a message naming one of
** the two files, and leaves the data set zeroed; a success gives n images of
** h x w x 1 with every label below 10.
*/
#include "tests/fuzz/fuzz.h"

#include "engine/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    size_t rest = size - 4;
    size_t nl = fuzz_le32(data) % (rest + 1), ni = rest - nl;
    char ip[512], lp[512];
    fuzz_write(ip, sizeof ip, "images-idx3-ubyte", data + 4, ni);
    fuzz_write(lp, sizeof lp, "labels-idx1-ubyte", data + 4 + ni, nl);
    dataset d;
    fuzz_clear_error();
    int rc = data_load_idx(&d, ip, lp);
    fuzz_note("idx", rc);
    if (rc == BN_OK) {
        FUZZ_CHECK(d.n >= 1 && d.h >= 1 && d.w >= 1 && d.c == 1 && d.classes == 10);
        FUZZ_CHECK(d.pixels && d.labels);
        for (int i = 0; i < d.n; i++) FUZZ_CHECK(d.labels[i] < 10);
        data_free(&d);
    } else {
        FUZZ_CHECK(rc == BN_EFORMAT || rc == BN_EIO);
        FUZZ_CHECK(fuzz_msg_names(ip) || fuzz_msg_names(lp));
        FUZZ_CHECK(d.n == 0 && d.pixels == NULL && d.labels == NULL);
    }
    unlink(ip);
    unlink(lp);
    return 0;
}
