/*
** Fuzz target: opening a study database (nas/store.c store_open) and reading
** it the way `bnas status`, `trials`, `pareto`, `report` and `resume` do.
**
** Input: the bytes of a SQLite file, written as DIR/study.db. It is opened
** read-only and read through every reader of the store API (summary, trials,
** front, hypervolume, frozen spec, each trial's model blob through the model
** reader, the canonical dump), then opened read-write as resume does.
**
** Contracts: store_open fails on anything that is not a bnas study of this
** schema with BN_EFORMAT, BN_EDB or BN_EIO and a message naming the file; on a
** study it opens, every later failure returns an error code with a message.
*/
#include "tests/fuzz/fuzz.h"

#include "engine/model.h"
#include "nas/store.h"

/* Checks an API result: BN_OK, or an error with a message. */
#define FUZZ_RESULT(call)                                 \
    do {                                                  \
        fuzz_clear_error();                               \
        int r_ = (call);                                  \
        FUZZ_CHECK(r_ == BN_OK || bn_errmsg()[0] != '\0'); \
    } while (0)

typedef struct {
    store *st;   /* the open study */
    int trials;  /* trials seen */
} reader;

/* store_each_trial callback: reads the trial's model as `bnas export` does. */
static int read_trial(void *user, const store_trial *t) {
    reader *R = user;
    FUZZ_CHECK(t->state >= -1 && t->state <= TRIAL_INVALID);
    FUZZ_CHECK(t->n_metrics >= 0 && t->n_metrics <= TRIAL_MAX_METRICS);
    FUZZ_CHECK(memchr(t->genome, 0, sizeof t->genome) && memchr(t->topology, 0, sizeof t->topology));
    void *blob = NULL;
    size_t size = 0;
    char format[32];
    fuzz_clear_error();
    if (store_get_model(R->st, t->number, &blob, &size, format, sizeof format) == BN_OK) {
        net n;
        int rc = model_load_mem(&n, NULL, blob, size, "stored model");
        fuzz_note("stored model", rc);
        if (rc == BN_OK) net_free(&n);
        free(blob);
    } else {
        FUZZ_CHECK(bn_errmsg()[0] != '\0' && blob == NULL);
    }
    return ++R->trials >= 64; /* enough rows: a huge table must not make one input slow */
}

static int read_hv(void *user, int trial, int completed, int front_size, double hv) {
    (void)trial, (void)completed, (void)front_size, (void)hv;
    return ++*(int *)user >= 64;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512], side[600];
    fuzz_write(path, sizeof path, "study.db", data, size);
    store *st = NULL;
    fuzz_clear_error();
    int rc = store_open(&st, path, 1);
    fuzz_note("store", rc);
    if (rc == BN_OK) {
        store_summary sum;
        FUZZ_RESULT(store_summary_get(st, &sum));
        reader R = {st, 0};
        FUZZ_RESULT(store_each_trial(st, 0, read_trial, &R));
        R.trials = 0;
        FUZZ_RESULT(store_each_trial(st, 1, read_trial, &R));
        int n_hv = 0;
        FUZZ_RESULT(store_each_hv(st, read_hv, &n_hv));
        spec s;
        fuzz_clear_error();
        rc = store_frozen_spec(st, &s, path);
        fuzz_note("frozen spec", rc);
        if (rc == BN_OK) spec_free(&s);
        else FUZZ_CHECK(bn_errmsg()[0] != '\0');
        char *text = NULL;
        fuzz_clear_error();
        if (store_dump(st, &text) == BN_OK) FUZZ_CHECK(text != NULL);
        else FUZZ_CHECK(bn_errmsg()[0] != '\0');
        free(text);
        store_close(st);
        /* resume opens it read-write (switching it to WAL) */
        fuzz_write(path, sizeof path, "study.db", data, size);
        fuzz_clear_error();
        if (store_open(&st, path, 0) == BN_OK) store_close(st);
        else FUZZ_CHECK(fuzz_msg_names(path));
    } else {
        FUZZ_CHECK(rc == BN_EFORMAT || rc == BN_EDB || rc == BN_EIO);
        FUZZ_CHECK(fuzz_msg_names(path) && st == NULL);
    }
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    return 0;
}
