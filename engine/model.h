/*
** Model files: a trained network (engine/net.h) and the recipe that trained it
** (engine/train.h), in one versioned, checksummed binary format. The same bytes
** are written to files (bnas export) and stored as SQLite blobs by the search.
**
** Format version 6. Every integer is little-endian, every float an IEEE-754
** binary32 stored little-endian, with no padding anywhere. T is the length of
** the topology string, R the length of the recipe text, P = n_params,
** S = n_stats.
**
**   offset          size  type      field
**   0               8     char[8]   magic "BNASMDL1" (no NUL)
**   8               4     u32       format version, 6
**   12              4     u32       endianness marker 0x01020304 (on disk: 04 03 02 01)
**   16              8     u64       total length of the file in bytes, checksum included
**   24              4     u32       T, topology length in bytes (0..MODEL_MAX_TOPO, no NUL)
**   28              T     char[T]   topology in arch_format's canonical form, ASCII,
**                                   e.g. "C64-MP2-C64-MP2-FC2048"; "" = classifier only
**   28+T            4     i32       in_c   input channels  } input shape (HWC), each
**   32+T            4     i32       in_h   input height    } in 1..65536
**   36+T            4     i32       in_w   input width     }
**   40+T            4     i32       classes                (1..65536)
**   44+T            4     u32       R, recipe text length (0..65536)
**   48+T            R     char[R]   the training recipe as "key=value\n" lines, ASCII, no NUL:
**                                   recipe_to_text of engine/recipe.h (keys at their default
**                                   are left out; e.g. "epochs=3\nflip=ste\np01=0.05\n")
**   48+T+R          8     u64       P, number of parameter floats
**   56+T+R          8     u64       S, number of statistics floats
**   64+T+R          4*P   f32[P]    net.params, in net.h's order (layer 0 w, gamma, beta,
**                                   layer 1 ..., classifier w, scale)
**   64+T+R+4P       4*S   f32[S]    net.stats, in net.h's order (layer 0 running mean,
**                                   running var, layer 1 ..., hidden layers only)
**   64+T+R+4P+4S    4     u32       CRC-32 (zlib crc32, the gzip/PNG polynomial) of
**                                   every byte before it
**
** Total length = 68 + T + R + 4P + 4S. A reader checks magic, version, marker,
** total length against the actual length, the checksum, then the fields; the
** recipe text must be exactly what recipe_to_text writes for the recipe it
** holds (known keys in table order, values in range, nothing at its default);
** it rebuilds the net with net_create(arch_parse(topology), in_c, in_h, in_w,
** classes) and requires that net's n_params and n_stats to equal P and S.
** A recipe saved as NULL is written as the zero recipe (epochs 0: unknown).
** A Bop recipe's momentum format must be valid (fpfmt_init).
**
** Versions 1 to 5 (still read) hold the recipe as a binary block at 44+T in
** place of R and the text: the fields of engine/recipe.c's rows with since <=
** version, in table order, each an i32 (ints, words, flags), f32, u64 (seed)
** or f32[16] (a flip-rate table column). The block is 60 bytes in version 1
** (epochs .. seed), 92 in version 2 (+ optimizer, bop_gamma, bop_tau,
** bop_gamma_decay, mom_e, mom_f, mom_bias, mom_subnormals), 100 in version 3
** (+ xnor_p01, xnor_p10), 112 in version 4 (+ lta_n, act_p01, act_p10) and
** 308 in version 5 (+ flip_rows, flip_t, flip_p01, flip_p10); P follows it,
** and the total is 64 + block + T + 4P + 4S. Fields a version lacks load as 0,
** except that version 1 files load as Adam recipes with the Bop fields at
** train_recipe_default's values.
** Any change to this layout bumps the format version.
*/
#ifndef BNAS_MODEL_H
#define BNAS_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/net.h"
#include "engine/train.h"

#define MODEL_MAGIC "BNASMDL1"  /* first 8 bytes of every model file */
#define MODEL_VERSION 6u        /* format version written by this build (1 to 5 are still read) */
#define MODEL_ENDIAN 0x01020304u /* endianness marker */
#define MODEL_MAX_TOPO 1024      /* longest topology string accepted */

/* Bytes model_save_mem writes for n and r (r may be NULL). */
size_t model_size(const net *n, const train_recipe *r);

/* Serializes n and r (r may be NULL: zero recipe) into a new malloc'd buffer
   *buf of *len bytes; the caller frees it. Returns BN_OK, or BN_EARG if the
   net cannot be described (topology too long). */
int model_save_mem(const net *n, const train_recipe *r, uint8_t **buf, size_t *len);

/* Rebuilds a net from buf[0..len) into *n (created here; free with net_free)
   and the recipe into *r (r may be NULL). name is used in messages ("trial 12
   model", a path); NULL means "model buffer". On failure *n is zeroed, *r is
   untouched, and the result is BN_EFORMAT with a message naming the problem
   (bad magic, newer version, truncated, checksum, inconsistent fields). */
int model_load_mem(net *n, train_recipe *r, const uint8_t *buf, size_t len, const char *name);

/* Writes n and r to path: first to "path.tmp", flushed and synced, then renamed
   over path, so a crash never leaves a half-written file at path. Returns
   BN_OK or BN_EIO naming the file. */
int model_save(const net *n, const train_recipe *r, const char *path);

/* Loads path written by model_save (see model_load_mem). A missing or
   unreadable file is BN_EIO; a malformed one BN_EFORMAT; both name path. */
int model_load(net *n, train_recipe *r, const char *path);

#endif /* BNAS_MODEL_H */
