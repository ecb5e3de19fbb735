/*
** Fuzz target: the model reader (engine/model.c model_load_mem).
**
** Each input is read twice: as given (magic, version, length and checksum
** checks), and with its length field and CRC-32 rewritten to match the bytes,
** so that mutations reach the field checks behind the checksum.
**
** Contracts: a failure is BN_EFORMAT with a message naming the buffer and
** leaves the net zeroed; a success gives a net whose sizes match the bytes,
** saving it and loading that again succeeds with the same parameters, and a
** current-version file with a canonical topology is saved back byte for byte.
*/
#include "tests/fuzz/fuzz.h"

#include <zlib.h>

#include "engine/model.h"

#define NAME "fuzz model"

/* Loads buf[0..len) and checks the contracts of model_load_mem. */
static void fuzz_load(const uint8_t *buf, size_t len) {
    net n;
    train_recipe r;
    fuzz_clear_error();
    int rc = model_load_mem(&n, &r, buf, len, NAME);
    fuzz_note("model", rc);
    if (rc != BN_OK) {
        FUZZ_CHECK(rc == BN_EFORMAT && fuzz_msg_names(NAME));
        FUZZ_CHECK(n.params == NULL && n.stats == NULL && n.n_params == 0);
        return;
    }
    uint8_t *out = NULL;
    size_t out_len = 0;
    FUZZ_CHECK(model_save_mem(&n, &r, &out, &out_len) == BN_OK && out_len == model_size(&n, &r));
    /* A current-version file whose topology is already in canonical form is
       written back byte for byte. */
    uint32_t t = fuzz_le32(buf + 24);
    if (fuzz_le32(buf + 8) == MODEL_VERSION && out_len == len && memcmp(out + 24, buf + 24, 4 + t) == 0)
        FUZZ_CHECK(memcmp(out, buf, len) == 0);
    net back;
    train_recipe rb;
    FUZZ_CHECK(model_load_mem(&back, &rb, out, out_len, NAME) == BN_OK);
    FUZZ_CHECK(back.n_params == n.n_params && back.n_stats == n.n_stats);
    FUZZ_CHECK(memcmp(back.params, n.params, n.n_params * sizeof *n.params) == 0);
    FUZZ_CHECK(n.n_stats == 0 || memcmp(back.stats, n.stats, n.n_stats * sizeof *n.stats) == 0);
    net_free(&back);
    free(out);
    net_free(&n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_load(data, size);
    if (size < 28) return 0;
    uint8_t *buf = malloc(size);
    if (!buf) return 0;
    memcpy(buf, data, size);
    for (int i = 0; i < 8; i++) buf[16 + i] = (uint8_t)((uint64_t)size >> (8 * i));
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), buf, (uInt)(size - 4));
    for (int i = 0; i < 4; i++) buf[size - 4 + i] = (uint8_t)(crc >> (8 * i));
    fuzz_load(buf, size);
    free(buf);
    return 0;
}
