/*
** Bit-packed inference of a binarized network, bit-exact against the float
** evaluation path (net_forward_eval / net_predict).
**
** Conventions (engine/net.h): +1 is stored as bit 1, -1 as bit 0; bits are
** LSB-first in uint64 words; padding bits are 0 in weights and activations,
** so over K valid bits dot(a, w) = K - 2 * popcount(a XOR w).
**
** Activations of a convolution are NHWC with the channels of one pixel packed
** into cw = ceil(C/64) words: image (H, W, cw). A dense layer reads its input
** flattened in (H, W, C) order with that same per-pixel padding, so its row is
** kw = H * W * cw words; after a dense layer H = W = 1.
**
** Every hidden neuron's batch norm and sign are folded into one int32
** threshold T and an invert flag: out = (acc >= T) XOR inv, derived from the
** float path's own function net_bn_value, so the two paths agree for every
** accumulator value (tested exhaustively). Max-pooling works on the integer
** accumulators before the threshold, as in the float path. The first layer
** sees the 8-bit pixels: acc = sum_i w_i * p_i exactly (the 1/255 scale is
** inside net_bn_value, hence inside T). The classifier gives logits
** scale * (float)acc, equal to the float path's logits bit for bit.
**
** Stored weights: each layer keeps its canonical weight bits w (one row of kw
** words per neuron, the deployed format) and kernel layouts derived from them
** by packed_layer_sync(). An error model that flips stored weight bits XORs a
** mask into w (only bits set in wvalid are real weights) and calls
** packed_layer_sync(); packed_flip_weights does that for the p01/p10 model.
** The other error models (flipped XNOR products, chunked partial sums with a
** per-chunk function, flipped activations) belong in a separate driver that
** runs the same per-layer steps (accumulate, pool, threshold) with a hook
** between them, so packed_logits stays the hook-free fast path.
**
** Kernels: every kernel has a plain reference twin (_ref) that works on the
** canonical bits; the fast variants (AVX-512 with VPOPCNTDQ and VNNI, AVX2,
** and AMX-INT8 tiles for the first dense layer) are chosen at run time from
** the CPU (else the portable plain-C set), or forced with the environment
** variable BNAS_SIMD=ref|portable|avx2|avx512|amx.
*/
#ifndef BNAS_PACKED_H
#define BNAS_PACKED_H

#include <stddef.h>
#include <stdint.h>

#include "engine/net.h"

#define PACKED_BLOCK 32 /* images per block of the dense kernels */

struct packed_kernels;

typedef struct {
    net_kind kind;        /* NET_CONV (3x3, zero padding, stride 1) or NET_FC */
    int first;            /* 1: input is the raw 8-bit pixels */
    int last;             /* 1: classifier (no threshold; logits = scale * acc) */
    int in_c, in_h, in_w; /* input shape (HWC) */
    int out_c;            /* output channels or units */
    int pool;             /* 2: 2x2 max-pool on the accumulators, 0: none */
    int out_h, out_w;     /* output spatial size after pooling (1x1 for dense) */
    int fan_in;           /* valid weights per neuron (9*in_c or in_c*in_h*in_w) */
    int np;               /* out_c rounded up to a multiple of 16 (padded neurons have zero weights) */
    int in_cw;            /* words per input pixel: ceil(in_c/64) (hidden layers) */
    int out_cw;           /* words per output pixel or output row: ceil(out_c/64) */
    int kw;               /* words per canonical weight row:
                             first layer: ceil(fan_in/64), bit i = weight i of the (ky,kx,c) or (h,w,c) order;
                             conv: 9*in_cw (tap-major, taps (ky,kx));
                             dense: in_h*in_w*in_cw */
    int k4;               /* first layer: bytes of a pixel row, fan_in rounded up to a multiple of 64
                             (dense) or of 4 (conv); the bytes after fan_in are 0 */
    uint64_t *w;          /* (out_c, kw) canonical weight bits */
    uint64_t *wvalid;     /* (kw) bits that are real weights in every row (the rest is padding) */
    uint64_t *wi;         /* hidden layers: (np/8, kw, 8) weights interleaved 8 neurons per word step; zero pad */
    int8_t *w8;           /* first layer: (np/16, k4/4, 16, 4) weights as +-1 bytes, 0 for padding */
    int32_t *thr;         /* (np) thresholds T (hidden layers; NULL for the classifier) */
    uint64_t *inv;        /* (np/64 rounded up) invert bits: out = (acc >= T) ^ inv */
} packed_layer;

typedef struct {
    int in_c, in_h, in_w;                /* input image shape (HWC) */
    int classes;                         /* outputs of the classifier */
    int n_layers;                        /* hidden layers + classifier */
    packed_layer layers[NET_MAX_LAYERS]; /* input to output */
    float scale;                         /* output scale s: logits = s * acc */
} packed_net;

/* Packs n: weight bits, folded thresholds, kernel layouts. Returns BN_OK, or
   BN_EARG if a batch-norm parameter is not finite (or makes the float path
   produce NaN) or an accumulator could exceed 2^24 (where the float path
   itself stops being exact). On error p is left freed. */
int packed_from_net(packed_net *p, const net *n);

void packed_free(packed_net *p);

/* Deep copy: dst gets its own allocations (for example to flip bits of a
   copy while keeping the original). Returns BN_OK. */
int packed_copy(packed_net *dst, const packed_net *src);

/* Stored-weight bit errors of layer l (the seed authors' fault model): every
   real weight bit stored as 0 (-1) becomes 1 with probability p01 and every
   bit stored as 1 (+1) becomes 0 with probability p10, independently, drawn
   from rng (geometric gaps, so the cost is in the number of flips). Syncs the
   kernel layouts. Returns the number of flipped bits. */
int64_t packed_flip_weights(packed_net *p, int l, double p01, double p10, pcg32 *rng);

/* Allocates L for the shape of N (canonical bits, kernel layout; no
   thresholds) with its weights from N->w. Used where something other than
   packed_logits drives the kernels: the training forward pass. Returns BN_OK
   or BN_EARG (accumulators could reach 2^24). */
int packed_layer_init(packed_layer *L, const net_layer *N);

/* Sets L's weights from w (out_c, fan_in): bit 1 where w > 0, as the float
   path binarizes; rebuilds the kernel layout. */
void packed_layer_set_weights(packed_layer *L, const float *w);

void packed_layer_free(packed_layer *L);

/* Packs n rows of C values x (n, C) into bits (n, ceil(C/64)) words: bit 1
   where x > 0 (the sign's +1), padding bits 0. */
void packed_pack_signs(uint64_t *bits, const float *x, int64_t n, int C);

/* Rebuilds L's kernel layouts (wi or w8) from its canonical bits w. Call after
   changing w (for example flipping stored bits). */
void packed_layer_sync(packed_layer *L);

/* Folds BN + sign of neuron c of L into (T, inv) such that for every integer
   acc in [lo, hi]: (net_bn_value(L, c, acc) > 0) == ((acc >= T) ^ inv).
   Constant neurons get T = INT32_MIN (always acc >= T) or INT32_MAX (never,
   as hi < INT32_MAX). Returns BN_OK, or BN_EARG if a parameter is not finite,
   the value is NaN at an end of the range, or hi >= INT32_MAX. */
int packed_fold_threshold(const net_layer *L, int c, int32_t lo, int32_t hi, int32_t *T, int *inv);

/* Reachable accumulator range of a hidden layer: +-fan_in, or +-255*fan_in for
   the first layer. */
void packed_acc_range(const net_layer *L, int32_t *lo, int32_t *hi);

/* Logits (B, classes) of the images x (B, H, W, C); parallel over images with
   OpenMP, identical results for any thread count. */
void packed_logits(const packed_net *p, float *logits, const uint8_t *x, int B);

/* Predicted class (argmax of the logits, first on ties) of each image. */
void packed_predict(const packed_net *p, int *pred, const uint8_t *x, int B);

/* packed_predict on exactly `threads` OpenMP threads (0: the default). */
void packed_predict_threads(const packed_net *p, int *pred, const uint8_t *x, int B, int threads);

/* Plain scalar reference of the whole forward pass on the canonical bits and
   the thresholds, one image at a time: logits (B, classes). */
void packed_forward_ref(const packed_net *p, float *logits, const uint8_t *x, int B);

/* packed_logits with an explicit kernel set (tests compare the sets). */
void packed_logits_with(const packed_net *p, const struct packed_kernels *k, float *logits,
                        const uint8_t *x, int B, int threads);

/* Images per second of packed_predict_threads over the n images x (repeated
   until at least ~0.5 s have passed). */
double packed_bench_images_per_s(const packed_net *p, const uint8_t *x, int n, int threads);

/* ---- Kernels. Each exists as a _ref twin and in every SIMD variant. ---- */

/* u8dense: first layer on pixel rows. acc (R, np) int32 = w . x for x (R, ldx)
   8-bit rows of L->k4 bytes (bytes k4 - fan_in .. are 0); padded neurons get 0.
   bdense: hidden dense. acc (R, np) = dot of a (R, kw) packed rows with each
   neuron (K = fan_in); padded neurons get 0.
   bconv: hidden conv. acc (ny, in_w, np) for output rows y0 .. y0+ny-1 of one
   image a (in_h, in_w, in_cw); out-of-image taps contribute nothing.
   pool2: out (W/2, np) = max over 2x2 of acc (2, W, np) (rows given by acc0, acc1).
   thresh: bits (M, ldo words) from acc (M, np): bit n of row m = (acc >= T) ^ inv
   for n < out_c; words 0 .. out_cw-1 of each row are written, padding bits 0.
   bdense_thresh: a hidden dense layer straight to its output bits, equal to
   thresh(bits, ldo, bdense(a)) without forming the accumulators. */
typedef struct packed_kernels {
    const char *name; /* "ref", "portable", "avx2", "avx512" or "amx" */
    void (*u8dense)(int32_t *acc, const uint8_t *x, int ldx, const packed_layer *L, int R);
    void (*bdense)(int32_t *acc, const uint64_t *a, const packed_layer *L, int R);
    void (*bconv)(int32_t *acc, const uint64_t *a, const packed_layer *L, int y0, int ny);
    void (*pool2)(int32_t *out, const int32_t *acc0, const int32_t *acc1, int W, int np);
    void (*thresh)(uint64_t *bits, int ldo, const int32_t *acc, const packed_layer *L, int M);
    void (*bdense_thresh)(uint64_t *bits, int ldo, const uint64_t *a, const packed_layer *L, int R);
} packed_kernels;

void packed_u8dense_ref(int32_t *acc, const uint8_t *x, int ldx, const packed_layer *L, int R);
void packed_bdense_ref(int32_t *acc, const uint64_t *a, const packed_layer *L, int R);
void packed_bconv_ref(int32_t *acc, const uint64_t *a, const packed_layer *L, int y0, int ny);
void packed_pool2_ref(int32_t *out, const int32_t *acc0, const int32_t *acc1, int W, int np);
void packed_thresh_ref(uint64_t *bits, int ldo, const int32_t *acc, const packed_layer *L, int M);
void packed_bdense_thresh_ref(uint64_t *bits, int ldo, const uint64_t *a, const packed_layer *L, int R);

/* The kernel set named name, or NULL if the CPU lacks it or the name is
   unknown: "ref" (the _ref twins), "portable" (plain C on the derived layouts,
   no intrinsics), "avx2", "avx512", "amx". */
const packed_kernels *packed_kernels_named(const char *name);

/* The kernel set in use: BNAS_SIMD if set and supported, else the best the CPU
   has. Chosen once. */
const packed_kernels *packed_kernels_active(void);

/* Name of the active kernel set. */
const char *packed_simd_name(void);

/* SIMD variants (engine/packed_simd.c); NULL where the compiler cannot build them. */
const packed_kernels *packed_kernels_avx512(void);
const packed_kernels *packed_kernels_avx2(void);
/* avx512 with the first dense layer on AMX-INT8 tiles (tdpbusd); NULL without
   AMX or if the kernel refuses the tile-data permission (arch_prctl). */
const packed_kernels *packed_kernels_amx(void);

#endif /* BNAS_PACKED_H */
