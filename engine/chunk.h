/*
** Chunked partial sums: a binary layer's accumulator computed chunk by chunk
** over its fan_in products, with a per-layer function combining the chunk
** sums of each neuron. This is the hardware view of a crossbar that holds n
** XNOR cells per column: each column yields the sum of n products, and an
** interface (comparators, ADC, a spike-time neuron, an approximate adder
** tree ...) turns the column sums into the neuron's decision. The LTA, CapMin
** and approximate-popcount evaluators are written on it.
**
** Chunks. The products of neuron j at one output position are taken in the
** float path's fan_in order (ky, kx, c) for a convolution, (h, w, c) for a
** dense layer; chunk k holds products k*n .. min((k+1)*n, N) - 1, N = fan_in,
** so there are K = ceil(N/n) chunks and only the last may be shorter (its
** nominal length is N - (K-1)*n). A product outside the image (zero padding
** of a convolution) contributes 0: chunk sum s_k = v_k - 2*mismatches_k where
** v_k counts the chunk's products inside the image. The sum of the s_k is the
** exact accumulator.
**
** Combining. For every hidden or classifier layer l with n[l] > 0 the driver
** calls fn[l] once per (image, output position before pooling, neuron) with
** the K chunk sums; its int32 result replaces the accumulator, which then
** goes through max-pooling and the neuron's folded threshold exactly as in
** packed inference (engine/packed.h). NULL fn is the identity (sum of the
** chunks), which gives packed_logits' result bit for bit. A function that
** wants to force a neuron's decision d returns T (d = 1) or T - 1 (d = 0),
** T = L->thr[neuron]: max-pooling then ORs the decisions and the invert bit
** applies as usual.
**
** The first layer (8-bit pixels) cannot be chunked. Layers with n[l] == 0 run
** the ordinary packed kernels, so a config without chunked layers costs
** nothing beyond the per-image driver (and packed_logits stays untouched).
**
** The driver is trace_forward (engine/trace.h, the one hooked packed
** forward pass) with a layer hook that computes the chunked layers; the chunk
** sums of all neurons at one position come from one count kernel call
** (chunk_sums_all; engine/chunk_simd.c: AVX-512 VPOPCNTDQ, POPCNT, portable,
** chosen with the packed kernels). engine/errmodel.c's chunked sums use the
** same building blocks (chunk_gather, chunk_sums_all).
**
** Per-image work runs in parallel over images (OpenMP); fn gets the thread
** index so it can keep per-thread statistics. Results do not depend on the
** thread count as long as fn is a pure function of its arguments (and its
** per-thread statistics are summed in a fixed order).
*/
#ifndef BNAS_CHUNK_H
#define BNAS_CHUNK_H

#include <stdint.h>

#include "engine/net.h"
#include "engine/packed.h"

/* Combines the K chunk sums s (K) of neuron `neuron` of layer l at one output
   position into the accumulator the layer continues with. len (K) are the
   chunks' nominal lengths (n, and the tail's length). thread is the OpenMP
   thread index in [0, threads); site = image << 24 | position (the output
   position before pooling, row-major), a key for per-site random draws that
   do not depend on the thread count. */
typedef int32_t (*chunk_fn)(void *user, int l, const packed_layer *L, int neuron, const int32_t *s,
                            const int32_t *len, int K, int thread, uint64_t site);

/* Combines all neurons of layer l at one output position at once: s
   (L->out_c, K) chunk sums -> acc (L->out_c) accumulators; the other
   arguments as for chunk_fn. When set it replaces fn (one call per position
   instead of one per neuron: for combiners with a vector kernel). */
typedef void (*chunk_pos_fn)(void *user, int l, const packed_layer *L, const int32_t *s, const int32_t *len, int K,
                             int32_t *acc, int thread, uint64_t site);

/* Which layers are chunked and how. Zero-initialise, then set entries. */
typedef struct {
    int n[NET_MAX_LAYERS];       /* chunk size of layer l in products; 0: not chunked */
    chunk_fn fn[NET_MAX_LAYERS]; /* combining function of layer l; NULL: sum (exact) */
    chunk_pos_fn pos[NET_MAX_LAYERS]; /* all-neuron combining function (replaces fn); NULL: use fn */
    void *user[NET_MAX_LAYERS];  /* its user pointer (of fn or pos) */
} chunk_config;

/* Count kernel (engine/chunk_simd.c): out (rows, nseg) with out[j][g] =
   base[g] - 2 * popcount((xs[g] ^ ws[j][g]) & vs[g]), ws (rows, nseg). */
typedef void (*chunk_count_kernel)(int32_t *out, const uint64_t *ws, const uint64_t *xs, const uint64_t *vs,
                                   const int32_t *base, int nseg, int rows);

/* Plain reference: one bit at a time. */
void chunk_count_ref(int32_t *out, const uint64_t *ws, const uint64_t *xs, const uint64_t *vs, const int32_t *base,
                     int nseg, int rows);

/* The variant named "ref", "portable", "avx2" or "avx512" ("amx": avx512), or
   NULL if unknown or the CPU lacks it. */
chunk_count_kernel chunk_count_named(const char *name);

/* Vote kernel (engine/chunk_simd.c): for each of rows neurons j, votes[j] =
   #{k < K : s[j][k] >= tau[j][k]} and sums[j] = sum over k of s[j][k]; s and
   tau are (rows, K). The local-threshold majority of LTA. */
typedef void (*chunk_vote_kernel)(int32_t *votes, int32_t *sums, const int32_t *s, const int32_t *tau, int K,
                                  int rows);

/* Plain reference of the vote kernel. */
void chunk_vote_ref(int32_t *votes, int32_t *sums, const int32_t *s, const int32_t *tau, int K, int rows);

/* The vote variant named "ref", "portable", "avx2" (portable) or "avx512" ("amx": avx512), or NULL. */
chunk_vote_kernel chunk_vote_named(const char *name);

/* The vote variant matching chunk_count_active's choice. */
chunk_vote_kernel chunk_vote_active(void);

/* The variant matching the active packed kernel set (packed_simd_name(), so
   BNAS_SIMD selects both), portable if that has no count kernel. */
chunk_count_kernel chunk_count_active(void);

/* One chunked layer prepared for the driver. */
typedef struct {
    int n;          /* chunk size */
    int K;          /* chunks per neuron, ceil(fan_in / n) */
    int fw;         /* words of a flat row: ceil(fan_in / 64) */
    uint64_t *wf;   /* (out_c, fw) weight bits in flat fan_in order, bit i of the row = weight i */
    int nseg;       /* segments of the chunk partition */
    int32_t *seg_word;  /* (nseg) word of segment s */
    uint64_t *seg_mask; /* (nseg) bits of that word in the segment */
    int32_t *seg_chunk; /* (nseg) chunk the segment belongs to (nondecreasing) */
    int32_t *len;   /* (K) nominal chunk lengths */
    int out_c;      /* neurons */
    uint64_t *ws;   /* (out_c, nseg) weight word of each segment (bits outside the segment arbitrary);
                       NULL for n < CHUNK_SEG_MIN, where the per-word path is used */
} chunk_layer;

/* Chunk sizes from which chunk_layer keeps per-segment weight words and the
   count kernels run (smaller chunks have about one segment per product). */
#define CHUNK_SEG_MIN 16

/* Per-thread work buffers of chunk_sums_all, grown by chunk_work_reserve. */
typedef struct {
    uint64_t *x, *v;    /* (fw) flat input row and its validity: the caller's input */
    uint64_t *xs, *vs;  /* (nseg) input word of each segment, validity masked to the segment */
    uint64_t *d;        /* (fw) mismatch scratch of the per-word path */
    int32_t *vk;        /* (K) valid products per chunk */
    int32_t *zero;      /* (nseg) zeros */
    int32_t *m;         /* (out_c, nseg) segment sums when a chunk has several segments */
    size_t cap_w, cap_g, cap_k, cap_m; /* capacities (elements) of x/v/d, xs/vs/zero, vk, m */
    chunk_count_kernel kern; /* count kernel in use (chunk_count_active() after the first reserve) */
} chunk_work;

/* A packed network with its chunked layers prepared. */
typedef struct {
    const packed_net *p;                /* the network (not owned; must outlive the plan) */
    chunk_config cfg;                   /* copy of the configuration */
    chunk_layer layers[NET_MAX_LAYERS]; /* prepared layers (zero where not chunked) */
} chunk_plan;

/* Prepares p for cfg. Returns BN_OK, or BN_EARG if a chunked layer is the
   first layer or n is negative. */
int chunk_plan_create(chunk_plan *cp, const packed_net *p, const chunk_config *cfg);

void chunk_plan_free(chunk_plan *cp);

/* Logits (B, classes) of the images x (B, H, W, C) through the chunked
   network, on `threads` OpenMP threads (0: default). */
void chunk_logits(const chunk_plan *cp, float *logits, const uint8_t *x, int B, int threads);

/* Accuracy (fraction correct, argmax first on ties) on the labelled images. */
double chunk_accuracy(const chunk_plan *cp, const uint8_t *x, const uint8_t *labels, int B, int threads);

/* The thread count chunk_logits uses for `threads` (0: default). */
int chunk_threads(int threads);

/* ---- Building blocks, shared with training ---- */

/* Chunk sums of one flat input row: x (fw) input bits in fan_in order, v (fw)
   1 where the product exists (inside the image), for neuron j of C:
   s (C->K). */
void chunk_sums(const chunk_layer *C, int j, const uint64_t *x, const uint64_t *v, int32_t *s);

/* Makes w's buffers large enough for C (w zero-initialised before the first
   call); sets w->kern to chunk_count_active() if it is NULL. */
void chunk_work_reserve(chunk_work *w, const chunk_layer *C);

void chunk_work_free(chunk_work *w);

/* Chunk sums s (C->out_c, C->K) of every neuron for the input row in w->x with
   validity w->v (C->fw words each, bits past fan_in 0); also leaves the valid
   products per chunk in w->vk (K). Bit-equal to chunk_sums_ref per neuron. */
void chunk_sums_all(const chunk_layer *C, chunk_work *w, int32_t *s);

/* Fills w->x and w->v (C->fw words) with the flat input row of output
   position q (row-major, conv) of layer L from its packed input bits in, or
   with the whole input (dense; q ignored). w must be reserved for C. */
void chunk_gather(const chunk_layer *C, const packed_layer *L, const uint64_t *in, int q, chunk_work *w);

/* Plain reference of chunk_sums: one product at a time. */
void chunk_sums_ref(const chunk_layer *C, int fan_in, int j, const uint64_t *x, const uint64_t *v, int32_t *s);

/* Prepares a chunked layer from flat weight bits wf (out_c, ceil(fan_in/64)),
   copied. Returns BN_OK or BN_EARG (n < 1). */
int chunk_layer_init(chunk_layer *C, int n, int fan_in, int out_c, const uint64_t *wf);

void chunk_layer_free(chunk_layer *C);

/* Round half away from zero of a / b for b > 0 (CUDA's round of a double
   quotient, computed exactly on integers). */
int64_t chunk_round_div(int64_t a, int64_t b);

#endif /* BNAS_CHUNK_H */
