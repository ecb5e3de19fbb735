/*
** C code generation: writes a packed network (engine/packed.h) as a
** standalone C99 source and header with no dependencies beyond <stdint.h>,
** for microcontrollers: the weights as fixed-size static const uint32_t
** arrays, int32 thresholds and invert bits, no malloc, and no floating point
** in the prediction path.
**
** The generated code computes exactly the packed path's integer accumulators
** (first layer: acc = sum_i w_i * p_i on the 8-bit pixels; hidden layers:
** acc = K - 2 * popcount(a XOR w) over the valid bits; 3x3 convolutions with
** zero padding count only taps inside the image; 2x2 max-pool on the
** accumulators before the threshold; out = (acc >= T) ^ inv). Bits are
** re-packed into 32-bit words so the code runs on 32-bit targets:
**
**   activations of a pixel: cw = ceil(C/32) words, channel c at bit c%32 of
**     word c/32, padding bits 0;
**   first dense layer: a row of ceil(fan_in/32) words, weight i at bit i%32 of
**     word i/32 (fan_in in (h, w, c) order);
**   conv layers (first or hidden): a row of 9 * cw words, tap-major (ky, kx),
**     each tap's in_c weights laid out like one pixel's activations;
**   hidden dense layer: a row of in_h * in_w * cw words (the input pixels'
**     padded words in (h, w) order).
**
** The prediction is the argmax (first on ties) of logits = scale * (float)acc,
** which the generated code takes on the integer accumulators when that is
** provably the same (see codegen_argmax_mode); otherwise it multiplies by the
** scale in float as the packed path does.
**
** Generated API for a net named NAME (files bnas_NAME.h, bnas_NAME.c):
**
**   BNAS_NAME_IN_C, _IN_H, _IN_W     input image shape (HWC, 8-bit pixels)
**   BNAS_NAME_CLASSES                number of classes
**   BNAS_NAME_SCRATCH_WORDS          uint32_t words of scratch per call
**   bnas_NAME_scale                  the output scale (float)
**   void bnas_NAME_accumulators(const uint8_t *image, int32_t *acc, uint32_t *scratch)
**   int  bnas_NAME_predict_r(const uint8_t *image, uint32_t *scratch)
**   int  bnas_NAME_predict(const uint8_t *image)        (static scratch)
**   void bnas_NAME_logits(const uint8_t *image, float *logits, uint32_t *scratch)
**
** scratch may be NULL in the _r/_accumulators/_logits functions: a static
** buffer is used then (not reentrant).
*/
#ifndef BNAS_CODEGEN_H
#define BNAS_CODEGEN_H

#include <stddef.h>
#include <stdint.h>

#include "engine/packed.h"

/* How the generated predict function picks the class from the accumulators. */
enum {
    CODEGEN_ARGMAX = 1, /* scale > 0: argmax of acc, first on ties */
    CODEGEN_ARGMIN = 2, /* scale < 0: argmin of acc, first on ties */
    CODEGEN_CLASS0 = 3, /* scale == 0: every logit is +-0, so class 0 */
    CODEGEN_FLOAT = 4,  /* float logits scale * (float)acc, then argmax (rounding could tie) */
};

/* Sizes of the generated network. */
typedef struct {
    size_t weight_bytes;    /* uint32 weight words of every layer, in bytes */
    size_t threshold_bytes; /* int32 thresholds of the hidden layers */
    size_t invert_bytes;    /* uint32 invert words of the hidden layers */
    size_t const_bytes;     /* all constant data: the three above + the 4-byte scale */
    size_t scratch_words;   /* BNAS_NAME_SCRATCH_WORDS (at least 1) */
    int32_t max_abs_acc;    /* largest |accumulator| the classifier can produce */
    int argmax_mode;        /* CODEGEN_ARGMAX .. CODEGEN_FLOAT */
} codegen_info;

/* The selection rule for logits = scale * (float)acc with |acc| <= max_abs:
   CODEGEN_CLASS0 if scale == 0; CODEGEN_ARGMAX (scale > 0) or CODEGEN_ARGMIN
   (scale < 0) if the map acc -> scale * (float)acc is strictly monotone on
   the integers of [-max_abs, max_abs], which holds when |scale| >= FLT_MIN
   (no subnormal products), max_abs <= 2^22 (consecutive products differ by
   |scale|, more than one ulp of the largest product) and |scale| * max_abs <=
   FLT_MAX / 2 (no overflow); CODEGEN_FLOAT otherwise, including a NaN or
   infinite scale. */
int codegen_argmax_mode(float scale, int64_t max_abs);

/* 1 if name is a valid net name: 1..48 characters of [a-z0-9_], starting
   with a letter. */
int codegen_name_ok(const char *name);

/* Sizes and argmax mode of the code codegen_write_c would write for p. */
void codegen_measure(const packed_net *p, codegen_info *info);

/* Writes dir/bnas_NAME.h and dir/bnas_NAME.c for p (each first to .tmp, then
   renamed). info may be NULL. Returns BN_OK, BN_EARG for a bad name or a
   non-finite scale, or BN_EIO naming the file that could not be written. */
int codegen_write_c(const packed_net *p, const char *name, const char *dir, codegen_info *info);

#endif /* BNAS_CODEGEN_H */
