/*
** Fuzz target: the spec parser (nas/spec.c spec_parse), then the search space
** a parsed spec describes (nas/space.c).
**
** Input: the spec text, optionally followed by a NUL byte and the text of the
** named search space (as a resume from a frozen copy passes it). A spec that
** names its space without a second part finds it in the repository's
** search_spaces/ (the spec's path is experiments/fuzz.yaml in the source tree).
**
** Contracts: a failure is BN_ESPEC or BN_EIO with a "FILE:LINE:COL: ..."
** message naming one of the two files; a success has its fields in range, and
** every genome drawn, mutated or crossed over from its space decodes, and its
** text form parses back to the same genes.
*/
#include "tests/fuzz/fuzz.h"

#include "nas/space.h"
#include "nas/spec.h"

#define SPEC_PATH BNAS_SOURCE_DIR "/experiments/fuzz.yaml"
#define SPACE_PATH "fuzz_space.yaml"

/* Draws, mutates and crosses genomes of the parsed spec s and checks each. */
static void fuzz_space(const spec *s) {
    space sp;
    space_init(&sp, s);
    FUZZ_CHECK(sp.n_genes >= 0 && sp.n_genes <= SPACE_MAX_GENES);
    pcg32 rng;
    rng_keyed(&rng, s->seed, 0, RNG_INIT);
    genome a, b, c;
    space_config ca, cb;
    space_sample(&sp, s, &rng, &a);
    space_sample(&sp, s, &rng, &b);
    space_decode(&sp, s, &a, &ca);
    space_mutate(&sp, s, &rng, &a, &ca, s->mutation_prob, &c);
    space_decode(&sp, s, &c, &cb);
    space_crossover(&sp, &rng, &a, &b, &c);
    space_decode(&sp, s, &c, &cb);
    FUZZ_CHECK(cb.valid == 0 || cb.valid == 1);
    FUZZ_CHECK(memchr(cb.canon, 0, sizeof cb.canon) && memchr(cb.topology, 0, sizeof cb.topology));
    char text[4096];
    genome back;
    space_genome_format(&c, text, sizeof text);
    FUZZ_CHECK(space_genome_parse(&back, text) == BN_OK && back.n == c.n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 2);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = text[size + 1] = '\0';
    size_t n = strlen(text);
    const char *space_text = n < size ? text + n + 1 : NULL;

    spec s;
    fuzz_clear_error();
    int rc = spec_parse(&s, SPEC_PATH, text, space_text ? SPACE_PATH : NULL, space_text);
    fuzz_note("spec", rc);
    if (rc == BN_OK) {
        FUZZ_CHECK(s.text && strcmp(s.text, text) == 0);
        FUZZ_CHECK(s.threads >= 1 && s.n_obj >= 1 && s.n_obj <= SPEC_MAX_OBJ);
        FUZZ_CHECK(s.n_dims >= 0 && s.n_dims <= SPEC_MAX_DIMS);
        FUZZ_CHECK(s.n_eval >= 0 && s.n_eval <= SPEC_MAX_EVAL && s.max_trials >= 1);
        for (int i = 0; i < s.n_dims; i++) {
            const spec_dim *d = &s.dims[i];
            FUZZ_CHECK(d->knob >= 0 && (d->knob < KNOB_COUNT || (d->knob == KNOB_COUNT && d->recipe > 0)));
            FUZZ_CHECK(d->type != DIM_CHOICE || (d->n >= 1 && d->n <= SPEC_MAX_CHOICES));
        }
        for (int i = 0; i < s.n_eval; i++) {
            eval_params ep;
            spec_eval_params(&s.eval[i], &ep);
        }
        fuzz_space(&s);
        spec_free(&s);
    } else {
        FUZZ_CHECK(rc == BN_ESPEC || rc == BN_EIO);
        const char *m = bn_errmsg();
        FUZZ_CHECK(strncmp(m, SPEC_PATH ":", strlen(SPEC_PATH) + 1) == 0 ||
                   strncmp(m, SPACE_PATH ":", strlen(SPACE_PATH) + 1) == 0 || strstr(m, "search_spaces/"));
        FUZZ_CHECK(s.text == NULL && s.space_text == NULL);
    }
    free(text);
    return 0;
}
