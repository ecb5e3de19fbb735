/*
** Approximate popcount (after Dave et al., "HW/SW Codesign for
** Approximation-Aware Binary Neural Networks", IEEE JETCAS 2023; the tree and
** the abstraction are our reconstruction, papers.md section 9 [derived]).
**
** Approximate full adder: carry = MAJ(a, b, c) (exact), sum = NOT MAJ(a, b, c),
** wrong exactly for a = b = c (2 of the 8 input patterns: 000 gives sum 1,
** 111 gives sum 0). It saves the XOR3 of an exact full adder.
**
** Adder tree (ours). Level 1 reduces the n input bits in triples with full
** adders to 2-bit numbers (a leftover pair goes through an exact half adder,
** a single bit passes). Each further level adds the numbers in pairs with a
** ripple-carry adder: an exact half adder at the least significant bit, a
** full adder wherever three live signals meet, a half adder where one
** operand has no bit at that weight; an unpaired number passes. The tree has
** L = levels(n) levels; full adders in levels > L - k_exact are exact, the
** others approximate. Half adders are always exact (a full adder with a
** constant 0 input would be wrong for 00 under the majority sum).
**
** Network use: a hidden binary layer's accumulator 2*count - N_valid is
** computed from the approximate popcount of its valid XNOR outputs (in
** fan_in order), then the usual threshold. approxpop_flips measures the
** resulting decision flips per layer against the exact popcount on the same
** inputs: that rate is the layer's abstracted activation flip probability,
** used for approximation-aware training (train recipe act_p01/act_p10).
**
** The model of the evaluator "approxpop": both live in evaluators/approxpop.c (its
** parameters and metrics in the comment at the top).
*/
#ifndef BNAS_APPROXPOP_H
#define BNAS_APPROXPOP_H

#include <stdint.h>

#include "engine/data.h"
#include "engine/packed.h"
#include "engine/rng.h"

/* The approximate full adder: *sum = !MAJ, *carry = MAJ (inputs 0/1). */
static inline void approxpop_fa(int a, int b, int c, int *sum, int *carry) {
    int m = (a & b) | (a & c) | (b & c);
    *carry = m, *sum = !m;
}

/* Levels of the tree for n inputs (0 for n <= 1). */
int approxpop_levels(int n);

/* Adders of the tree: approximate and exact full adders, half adders. */
void approxpop_adders(int n, int k_exact, int64_t *fa_approx, int64_t *fa_exact, int64_t *ha);

/* Approximate popcount of the n bits x (0/1 bytes) with the top k_exact
   levels exact. */
int approxpop_count(const uint8_t *x, int n, int k_exact);

/* Error distribution of approxpop_count - popcount: hist (2n+1) counts of
   error e at hist[e + n]. Exhaustive over all 2^n inputs if n <= 24 and
   samples == 0, else `samples` inputs with each bit 1 with probability 1/2
   from rng. */
void approxpop_error_hist(int n, int k_exact, int64_t samples, pcg32 *rng, int64_t *hist);

/* Accuracy of p on d with every binary hidden layer (not the first) computed
   by the approximate popcount (top k_exact levels exact), and per layer the
   fraction of its neuron decisions (before pooling) that differ from the
   exact popcount's on the same inputs: flip (n_layers), 0 where not applied.
   Returns BN_OK. */
int approxpop_accuracy(const packed_net *p, int k_exact, const dataset *d, int threads, double *acc, double *flip);

#endif /* BNAS_APPROXPOP_H */
