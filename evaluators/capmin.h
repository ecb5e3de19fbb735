/*
** CapMin (Yayla et al., "HW/SW Codesign for Robust and Efficient Binarized
** SNNs by Capacitor Minimization", arXiv 2309.02111) on the chunked-sum
** engine (engine/chunk.h). The selection rule and the capacitor model are
** our reconstruction (papers.md section 6 [derived]).
**
** MAC levels. Every binary layer after the first (the classifier included,
** as in the authors' code) is computed on arrays of A XNOR cells: the
** products of a neuron are cut into chunks of A (fan_in order, the last chunk
** shorter) and chunk k's level is p = floor((s_k + A) / 2) in [0, A], the
** number of +1 products when the chunk is full (a short or border chunk
** counts its missing products as half +1, half -1, as the authors' shift by A
** does).
**
** CapMin. From the per-layer histogram H_l(p) over the training set, keep the
** window [lo_l, lo_l + q - 1] of q consecutive levels with the most mass
** (first such window on ties) and clip every level outside it to the nearest
** edge: chunk value s_k becomes s_k + 2 * (clip(p) - p). With q = A + 1
** nothing is clipped and the network is exact.
**
** Capacitor model (stated, ours). An integrate-and-fire neuron encodes level
** p by the time its membrane (R, C) charges to V_th from a drive of
** v(p) = (p + 1) * V_u: t(p) = -RC ln(1 - V_th / v(p)) (the RC charging law;
** with the SPICE netlist's V_th = 0.225 V and V_u = 0.275 V, the shipped
** evaluators/data/capmin_circuit.csv, every level fires). A counter clocked at period D resolves two levels only if their
** spike times differ by at least D, so the kept levels need
** RC * min_gap >= D with min_gap = min over adjacent kept levels of
** g(p) - g(p + 1), g(p) = -ln(1 - V_th / v(p)); g is convex and decreasing,
** so the binding gap is at the top of the window. Hence
** C = D / (R * min_gap), and the reduction of CapMin is
** C(full window) / C(kept windows) = min_gap(kept) / min_gap(0..A), with the
** windows of all layers served by one neuron design (min over layers).
** A second, simpler model is also reported: the capacitor scales with the
** number of spike-time slots, A / (q - 1).
**
** CapMin-V (variation, stated model, ours). Current variation jitters each
** spike time with a Gaussian of deviation sigma; a level is misread as an
** adjacent kept level when the jitter crosses half the separation, with
** probability eps per side. Without guard (separation one clock period D)
** eps = eps0, which fixes sigma = D / (2 Qinv(eps0)). A guard of g extra
** clock periods between adjacent kept levels makes the separation (g + 1) D:
** eps_g = Q((g + 1) Qinv(eps0)), at the price of a capacitor (g + 1) times
** larger (C = (g + 1) D / (R min_gap)). capmin_accuracy evaluates a misread
** probability eps on every chunk (keyed, thread-count independent noise).
**
** The model of the evaluator "capmin": both live in evaluators/capmin.c (its
** parameters and metrics in the comment at the top).
*/
#ifndef BNAS_CAPMIN_H
#define BNAS_CAPMIN_H

#include <stdint.h>

#include "engine/chunk.h"
#include "engine/data.h"
#include "engine/packed.h"

/* The circuit of the capacitor model, read from a data file (default: the shipped
   evaluators/data/capmin_circuit.csv, whose values are the SPICE netlist's). */
typedef struct {
    double v_th;  /* V, comparator threshold */
    double v_u;   /* V, drive per level unit; > v_th, so that every level fires */
    double r;     /* ohm, load resistor R_L */
    double clock; /* s, counter clock period D */
} capmin_circuit;

/* Parses CSV text: a header "name,value", then one row per field above (v_th, v_u, r, clock),
   each exactly once; '#' comments and blank lines are skipped. name is used in messages.
   BN_EFORMAT naming name:line for a malformed line, an unknown or repeated name, a value that
   is not a positive finite number, a missing name, or v_u <= v_th. */
int capmin_circuit_parse(capmin_circuit *c, const char *text, const char *name);

/* capmin_circuit_parse of the file at path (BN_EIO if unreadable). */
int capmin_circuit_load(capmin_circuit *c, const char *path);

/* The shipped circuit, eval_data_dir()/capmin_circuit.csv. */
int capmin_circuit_default(capmin_circuit *c);

/* 1 if CapMin applies to layer l of p (binary inputs: every layer but the first). */
int capmin_eligible(const packed_net *p, int l);

/* Level histograms: hist (n_layers, A + 1) int64 (rows of ineligible layers
   stay 0) of the images of d. Returns BN_OK or BN_EARG (A < 1). */
int capmin_histogram(const packed_net *p, int A, const dataset *d, int threads, int64_t *hist);

/* The window start lo in [0, A + 1 - q] of q consecutive levels with the most
   mass in h (A + 1). */
int capmin_window(const int64_t *h, int A, int q);

/* Accuracy on d with each eligible layer l's levels clipped to
   [lo[l], hi[l]] (noise eps > 0: each chunk's level is then read one kept
   level up or down with probability eps each, from rng keyed by seed; guard:
   levels inside the window rounded to the grid lo + k*(guard+1)). Returns
   BN_OK or BN_EARG. */
int capmin_accuracy(const packed_net *p, int A, const int *lo, const int *hi, int guard, double eps, uint64_t seed,
                    const dataset *d, int threads, double *acc);

/* g(p) = -ln(1 - V_th / ((p + 1) V_u)): spike time of level p in units of RC. */
double capmin_g(const capmin_circuit *c, int p);

/* Smallest spike-time gap (units of RC) between adjacent kept levels of the
   window [lo, hi] with grid step `step` (1: every level); INFINITY if one level. */
double capmin_min_gap(const capmin_circuit *c, int lo, int hi, int step);

/* Capacitance (F) that resolves a minimum gap: D / (R * gap); 0 for an infinite gap. */
double capmin_capacitance(const capmin_circuit *c, double gap);

/* Per-side confusion probability with guard g given eps0 at guard 0:
   Q((g + 1) Qinv(eps0)), Q the standard normal upper tail. */
double capmin_eps_guard(double eps0, int g);

#endif /* BNAS_CAPMIN_H */
