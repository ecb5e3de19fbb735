/*
** The incremental first layer of fault injection (used by engine/fault.c).
**
** The first layer of a dense network sees the raw 8-bit pixels, which weight
** errors do not change. Its clean accumulators acc0[j] = sum_i w_ji * x_i can
** therefore be computed once per block of images and reused by every repeat:
** a flipped weight (neuron j, input i) changes acc[j] by -2 * w_ji * x_i, so a
** repeat only adds, per neuron, the pixels of its flipped weights:
**
**   acc[j] = acc0[j] + 2 * (sum_{i in plus_j} x_i - sum_{i in minus_j} x_i)
**
** where plus_j are the inputs whose weight turned -1 into +1 (stored 0 -> 1)
** and minus_j those that turned +1 into -1. The result is the exact integer
** accumulator of the flipped layer, so thresholding it gives bit for bit the
** same outputs as the dense kernels on the flipped weights.
**
** Layout: a block of FAULT_DELTA_B images is kept transposed, pixel-major
** and with both signs, xT (2 * fan_in, FAULT_DELTA_B) int16 with row i = x_i
** and row fan_in + i = -x_i, and the clean accumulators neuron-major,
** (out_c, FAULT_DELTA_B) int32, so one flip is one vector add over the block
** (no branch on its direction).
** The outputs are thresholded neuron-major (one 64-bit image mask per neuron)
** and transposed back to the image-major bits the next layer reads.
*/
#ifndef BNAS_FAULT_DELTA_H
#define BNAS_FAULT_DELTA_H

#include <stddef.h>
#include <stdint.h>

#define FAULT_DELTA_B 64       /* images per block (one 64-bit mask per neuron) */
#define FAULT_DELTA_CHUNK 128  /* flips summed in int16 before widening: 128 * 255 < 2^15 */

/* First-layer weight flips of one repeat, grouped by neuron: the flips of
   neuron j are rows[off[j] .. off[j+1]), each a row of xT: input i whose
   weight turned -1 into +1 (stored 0 -> 1) is row i, one that turned +1 into
   -1 is row fan_in + i; in ascending order of i. */
typedef struct {
    int out_c;      /* neurons */
    int fan_in;     /* inputs per neuron */
    int32_t *off;   /* (out_c + 1) list boundaries */
    int32_t *rows;  /* (off[out_c]) xT rows */
    size_t cap;     /* allocated entries of rows */
} fault_flips;

/* Empty lists for a first layer of out_c neurons with fan_in inputs. */
void fault_flips_init(fault_flips *f, int out_c, int fan_in);
void fault_flips_free(fault_flips *f);

/* Sets f from a first layer's flip mask (out_c, kw) words and its clean
   weight bits w (out_c, kw): bit i of row j is input i (the first layer's
   canonical order; mask bits at i >= fan_in must be 0). Returns the number
   of flips. */
size_t fault_flips_build(fault_flips *f, const uint64_t *mask, const uint64_t *w, int kw);

/* Output bits of the flipped first layer for one block: bits
   (FAULT_DELTA_B, ldo) words, row b = image b, bit j of word j/64 =
   (acc[j][b] >= thr[j]) ^ inv_j with acc as in the file comment; words
   0 .. ceil(out_c/64)-1 of each row are written, padding bits 0.
   clean (out_c, FAULT_DELTA_B) int32 clean accumulators, xT (2 * fan_in,
   FAULT_DELTA_B) int16 signed pixels as in the file comment, thr (out_c),
   inv (ceil(out_c/64)) words.
   tmp is scratch of ceil(out_c/64) * 64 words. */
void fault_delta_bits_ref(uint64_t *bits, int ldo, const int32_t *clean, const int16_t *xT, const fault_flips *f,
                          const int32_t *thr, const uint64_t *inv, uint64_t *tmp);

/* The same with AVX-512 when the active packed kernels are "avx512" or "amx"
   (engine/packed.h), else the reference. */
void fault_delta_bits(uint64_t *bits, int ldo, const int32_t *clean, const int16_t *xT, const fault_flips *f,
                      const int32_t *thr, const uint64_t *inv, uint64_t *tmp);

/* The shared part of a block: xT (2 * fan_in, FAULT_DELTA_B) int16 from the
   pixel rows x (nb, fan_in) as in the file comment, and clean (out_c,
   FAULT_DELTA_B) from the clean first-layer accumulators acc (nb, np); the
   columns of images nb .. FAULT_DELTA_B-1 are 0. AVX-512 under the same
   condition as fault_delta_bits. */
void fault_delta_prepare(int16_t *xT, int32_t *clean, const uint8_t *x, int fan_in, int nb, const int32_t *acc,
                         int np, int out_c);

/* The plain twin of fault_delta_prepare. */
void fault_delta_prepare_ref(int16_t *xT, int32_t *clean, const uint8_t *x, int fan_in, int nb, const int32_t *acc,
                             int np, int out_c);

/* In-place transpose of a 64 x 64 bit matrix: afterwards bit c of a[r] is
   what bit r of a[c] was. AVX-512 under the same condition as
   fault_delta_bits, else a portable recursive block swap. */
void fault_transpose64(uint64_t *a);

/* The plain twin of fault_transpose64 (bit by bit). */
void fault_transpose64_ref(uint64_t *a);

#endif /* BNAS_FAULT_DELTA_H */
