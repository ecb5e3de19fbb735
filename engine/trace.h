/*
** The hooked forward pass of one image through a packed network: the same
** kernels and layer order as packed_logits (engine/packed.h), with three
** hooks that expose every hidden layer. Every study of the packed network
** that must see or change a layer's accumulators or bits runs on it: the
** tolerance metric (engine/margin.c), activation fault injection
** (engine/fault.c), the chunked-sum driver (engine/chunk.c) and the error
** models (engine/errmodel.c).
**
** Per layer l (hidden or classifier), for one image:
**
**   acc (Q, np)  = layer hook (binary layers, if it returns 1)
**                  or the packed kernels on the input bits in / the pixels
**   acc (P, np)  = maxpool2(acc)                     (conv with pool)
**   classifier:    acc_out = acc, done
**   acc hook       may read / change acc
**   bits (P, cw) = threshold(acc)
**   bits hook      may read / change bits (the next layer's input)
**
** Q = in_h * in_w positions before pooling (1 for dense layers), P = out_h *
** out_w after. With hooks that change nothing, acc_out is exactly
** packed_logits' accumulators.
*/
#ifndef BNAS_TRACE_H
#define BNAS_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/packed.h"

/* Called for hidden layer l of one image with its accumulators after pooling:
   acc is (P, L->np), P = out_h * out_w positions (1 for dense layers). The
   callee may read them; modifying them changes the layer's output. */
typedef void (*trace_acc_hook)(void *user, int l, const packed_layer *L, int32_t *acc, int P);

/* Called for hidden layer l of one image with its output bits (P, L->out_cw)
   words after thresholding; the callee may modify them (e.g. flip bits; keep
   padding bits 0). */
typedef void (*trace_bits_hook)(void *user, int l, const packed_layer *L, uint64_t *bits, int P);

/* Called for binary layer l (not the first) of one image with its input bits
   in (in_h * in_w * in_cw words, or in_h * in_w * in_cw for a dense layer
   after a conv): may compute the accumulators acc (Q, L->np) before pooling
   itself (Q = in_h * in_w output positions of a conv, 1 for dense; padded
   neurons 0) and return 1, or return 0 to let the packed kernels compute
   them. The chunked-sum driver (engine/chunk.c) is written on it. */
typedef int (*trace_layer_hook)(void *user, int l, const packed_layer *L, const uint64_t *in, int32_t *acc);

/* The hooks of trace_forward; NULL entries are skipped. */
typedef struct {
    trace_layer_hook layer; /* replaces a binary layer's accumulators */
    trace_acc_hook acc;     /* sees / changes hidden accumulators after pooling */
    trace_bits_hook bits;   /* sees / changes hidden output bits */
    void *user;             /* passed to all three */
} trace_hooks;

/* Per-thread buffers of trace_forward. */
typedef struct {
    uint64_t *act[2]; /* ping-pong activations, act_words each */
    int32_t *acc;     /* (max positions before pooling, np) accumulators */
    int32_t *pooled;  /* (max positions after pooling, np) */
    uint8_t *xb;      /* first-layer byte rows */
    size_t act_words; /* words of act[i] */
} trace_scratch;

void trace_scratch_init(trace_scratch *s, const packed_net *p);
void trace_scratch_free(trace_scratch *s);

/* Forward pass of one image img (H, W, C) through p with the active packed
   kernels, calling the hooks h (NULL: none) for every hidden layer; writes
   the classifier accumulators acc_out (classes) (logits are p->scale *
   acc_out). */
void trace_forward(const packed_net *p, trace_scratch *s, const uint8_t *img, const trace_hooks *h,
                   int32_t *acc_out);

#endif /* BNAS_TRACE_H */
