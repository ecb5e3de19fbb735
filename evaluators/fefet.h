/*
** FeFET weight memory under temperature-dependent, asymmetric bit errors
** (Yayla et al., IEEE TC 71(7), 2022; papers.md section 3), and BERA, the
** layer-wise bit error rate assignment countermeasure.
**
** Error table. Rows (temperature in deg C, p01, p10): a stored 0 bit reads 1
** with p01 and a stored 1 bit reads 0 with p10 (engine/errmodel.h, stored
** weight bits; weights store +1 as bit 1 unless a layer is inverted). Between
** two rows the rates are interpolated linearly in log(p) (geometric), which
** follows the roughly exponential (Arrhenius-like) growth of retention errors
** with temperature; where either end is 0 the interpolation is linear in p.
** Outside the table's range a rate is an error (BN_EARG), never extrapolated.
** The real device tables of the paper are not public (papers.md section 3):
** the default, evaluators/data/fefet_temperature.csv, read at run time, is
** ILLUSTRATIVE, chosen so that the experiment is a meaningful test (see
** experiments/fefet/RESULTS.md), not device data; a table with measured rates
** (per layer type if the device differs) replaces it without recompiling.
**
** BERA (our reconstruction; the paper's algorithm text was not available):
** each layer l stores its weights either directly (+1 -> bit 1, so +1 weights
** see p10) or inverted (+1 -> bit 0, so +1 weights see p01), chosen to
** maximise validation accuracy under the error model at the worst
** temperature, exhaustively over all 2^L assignments when L is small, else
** greedily (coordinate ascent from the identity, one layer at a time, until no
** single change improves). Every candidate is evaluated on the same images
** with the same keyed error draws (common random numbers), and a candidate
** replaces the incumbent only if strictly better, so the result is never worse
** than the identity (all direct) on the data searched. No flips are injected
** in training.
*/
#ifndef BNAS_FEFET_H
#define BNAS_FEFET_H

#include <stdint.h>

#include "engine/data.h"
#include "engine/packed.h"

#define FEFET_MAX_ROWS 256 /* rows of an error table */

/* Layer types a table may give their own rates (columns p01_conv,p10_conv / p01_dense,p10_dense). */
enum { FEFET_CONV = 0, FEFET_DENSE = 1, FEFET_KINDS = 2 };

typedef struct {
    int n;                         /* rows, temperatures strictly increasing */
    double t[FEFET_MAX_ROWS];      /* temperature in deg C */
    double p01[FEFET_MAX_ROWS];    /* P(stored 0 reads 1) */
    double p10[FEFET_MAX_ROWS];    /* P(stored 1 reads 0) */
    int has_kind[FEFET_KINDS];     /* 1: the layer type has its own columns below (else p01/p10) */
    double kp01[FEFET_KINDS][FEFET_MAX_ROWS], kp10[FEFET_KINDS][FEFET_MAX_ROWS];
    int linear;                    /* 1: interpolate linearly in p; 0 (default): linearly in log p */
} fefet_table;

/* Loads the shipped ILLUSTRATIVE table eval_data_dir()/name (fefet_table_load),
   e.g. "fefet_temperature.csv"; the error names the path and BNAS_DATA_DIR. */
int fefet_table_load_data(fefet_table *tb, const char *name);

/* The shipped ILLUSTRATIVE FeFET table, evaluators/data/fefet_temperature.csv. */
int fefet_table_default(fefet_table *tb);

/* Parses CSV text: lines "temperature,p01,p10"; '#' comments and blank lines
   are skipped. An optional header line (starting with a letter) names the
   columns: the temperature, p01, p10, then optionally p01_conv,p10_conv and/or
   p01_dense,p10_dense (rates of convolution / fully connected layers, the
   classifier included; without them every layer uses p01, p10). name is used
   in messages. BN_EFORMAT naming name:line (and the column) for a malformed
   line, an unknown column, a rate outside [0, 1], fewer than one row, or
   temperatures not strictly increasing. */
int fefet_table_parse(fefet_table *tb, const char *text, const char *name);

/* fefet_table_parse of the file at path (BN_EIO if unreadable). */
int fefet_table_load(fefet_table *tb, const char *path);

/* Rates at temperature T (see the file comment). BN_EARG outside the range. */
int fefet_table_at(const fefet_table *tb, double T, double *p01, double *p10);

/* The same for layers of type kind (FEFET_CONV, FEFET_DENSE): its own columns
   if the table has them, else p01, p10. */
int fefet_table_at_kind(const fefet_table *tb, int kind, double T, double *p01, double *p10);

/* Accuracy acc[k] (mean over repeats 0..R-1) of p on d at temperatures
   temps[k], k < nt, with layer l stored inverted iff bit l of invert is set.
   Stored-weight errors only; draws keyed by (seed, repeat) as in
   engine/errmodel.h, so the flips at a cooler (lower-rate) temperature are a
   subset of those at a hotter one. threads 0: default. */
int fefet_sweep(const packed_net *p, const fefet_table *tb, const double *temps, int nt, uint32_t invert,
                const dataset *d, int repeats, uint64_t seed, int threads, double *acc);

/* BERA at temperature T of tb: the assignment *best (bit l: layer l inverted)
   maximising the mean accuracy over repeats on d; exhaustive if 1, greedy if
   0. *acc_identity and *acc_best are the accuracies of the identity and of
   the result on d (acc_best >= acc_identity). *evaluated counts the
   assignments evaluated (may be NULL). */
int fefet_bera(const packed_net *p, const fefet_table *tb, double T, const dataset *d, int repeats, uint64_t seed,
               int threads, int exhaustive, uint32_t *best, double *acc_identity, double *acc_best, int *evaluated);

#endif /* BNAS_FEFET_H */
