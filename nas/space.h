/*
** Search space: genomes, decoding to a trial configuration, canonical hash.
**
** A genome is a vector of genes, one per dimension of the spec's space, except
** the per-item knobs (conv_channels and conv_pool: one gene per possible conv
** block; fc_width: one gene per possible dense layer). A choice gene holds the
** index of its value, an int gene its value, a float or log gene its value.
**
** Decoding gives the topology string (engine/arch.h notation), the training
** knobs, the packed model size and the multiply-accumulates. Genes of blocks or
** layers that the genome does not use are inactive: they do not enter the
** canonical text, so two genomes that build the same network with the same
** recipe have the same hash and the network is never trained twice.
**
** The canonical text is "TOPOLOGY|LOSS|b=MHL_B|flip=RATE|epochs=N|lr=LR|batch=N"
** (mhl_b 0 under cross-entropy), and under Bop "|opt=bop|gamma=G|tau=T|mom=FMT"
** follows, FMT being fpfmt_name's canonical "eXmYbZ[n]". Under Adam the Bop
** genes (bop_gamma, bop_tau, momentum_format) are inactive and the text has no
** optimizer part at all, as before the optimizer knob existed. Real values
** enter with 6 significant digits.
*/
#ifndef BNAS_SPACE_H
#define BNAS_SPACE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/rng.h"
#include "engine/train.h"
#include "nas/spec.h"

#define SPACE_MAX_GENES (SPEC_MAX_DIMS * SPEC_MAX_ITEMS)

typedef struct {
    int n;                          /* genes used */
    double g[SPACE_MAX_GENES];      /* gene values (choice: index; int/float/log: value) */
} genome;

/* The layout of genomes for one spec. */
typedef struct {
    int n_genes;                    /* genes per genome */
    int dim[SPACE_MAX_GENES];       /* spec dimension of each gene */
    int item[SPACE_MAX_GENES];      /* block or layer index of a per-item gene, else -1 */
} space;

/* A decoded genome: everything a trial needs to build and train the network. */
typedef struct {
    char topology[256];     /* e.g. "C32-MP2-C64-MP2-FC256" ("" if invalid) */
    int loss;               /* 0 cross-entropy, 1 MHL */
    double mhl_b;           /* MHL margin b */
    double flip_rate;       /* flip-training probability for both flip directions (0: none) */
    int epochs;             /* training epochs */
    double lr;              /* Adam learning rate */
    int batch;              /* mini-batch size */
    int optimizer;          /* 0 Adam, 1 Bop on the binary weights (Adam lr on batch norm, scale) */
    double bop_gamma;       /* Bop momentum rate (the default when not Bop) */
    double bop_tau;         /* Bop flip threshold (the default when not Bop) */
    fpfmt momentum;         /* Bop momentum format (binary32 when not Bop) */
    train_recipe recipe;    /* the recipe built from the fields above (engine/recipe.h), seed 1:
                               the trial trains with it under its own seed */
    size_t model_bytes;     /* packed model bytes, equal to engine/net.h net_packed_bytes */
    double macs;            /* multiply-accumulates of one forward pass */
    char canon[512];        /* canonical text of the configuration */
    uint64_t hash;          /* FNV-1a 64 of canon: the duplicate key */
    int valid;              /* 1 if buildable and within the spec's hard constraints */
    char reason[160];       /* why not valid */
    unsigned char active[SPACE_MAX_GENES]; /* 1 if the gene affects the configuration */
} space_config;

/* 1 for the knobs with one gene per block or layer: conv_channels, conv_pool, fc_width. */
int space_knob_per_item(spec_knob k);

/* Lays out the genes of s's search space. */
void space_init(space *sp, const spec *s);

/* Draws every gene uniformly (choice: index; int: value; float: uniform; log: log-uniform). */
void space_sample(const space *sp, const spec *s, pcg32 *rng, genome *g);

/* Copies parent into child and redraws each gene with probability p (a redrawn
   choice or int gene always changes when it can); if no active gene changed,
   one active gene is redrawn. cfg is the parent's decoded configuration. */
void space_mutate(const space *sp, const spec *s, pcg32 *rng, const genome *parent,
                  const space_config *cfg, double p, genome *child);

/* Uniform crossover: each gene from a or b with probability 1/2. */
void space_crossover(const space *sp, pcg32 *rng, const genome *a, const genome *b, genome *child);

/* Decodes g and checks the hard constraints of s. Always fills canon and hash. */
void space_decode(const space *sp, const spec *s, const genome *g, space_config *cfg);

/* Genome as text ("1,0,3,0.001") and back. Returns BN_OK or BN_EFORMAT. */
void space_genome_format(const genome *g, char *buf, size_t cap);
int space_genome_parse(genome *g, const char *text);

#endif /* BNAS_SPACE_H */
