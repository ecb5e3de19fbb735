/*
** Model files: a trained network (engine/net.h) and the recipe that trained it
** (engine/train.h), in one versioned, checksummed binary format. The same bytes
** are written to files (bnas export) and stored as SQLite blobs by the search.
**
** Format version 5. Every integer is little-endian, every float an IEEE-754
** binary32 stored little-endian, with no padding anywhere. T is the length of
** the topology string, P = n_params, S = n_stats.
**
**   offset        size  type      field
**   0             8     char[8]   magic "BNASMDL1" (no NUL)
**   8             4     u32       format version, 5
**   12            4     u32       endianness marker 0x01020304 (on disk: 04 03 02 01)
**   16            8     u64       total length of the file in bytes, checksum included
**   24            4     u32       T, topology length in bytes (0..MODEL_MAX_TOPO, no NUL)
**   28            T     char[T]   topology in arch_format's canonical form, ASCII,
**                                 e.g. "C64-MP2-C64-MP2-FC2048"; "" = classifier only
**   28+T          4     i32       in_c   input channels  } input shape (HWC), each
**   32+T          4     i32       in_h   input height    } in 1..65536
**   36+T          4     i32       in_w   input width     }
**   40+T          4     i32       classes                (1..65536)
**   44+T          308             training recipe (train_recipe):
**     44+T        4     i32         epochs
**     48+T        4     i32         batch
**     52+T        4     f32         lr
**     56+T        4     i32         lr_step
**     60+T        4     f32         lr_gamma
**     64+T        4     i32         clip (0 or 1)
**     68+T        4     i32         loss (0 cross-entropy, 1 MHL)
**     72+T        4     f32         mhl_b
**     76+T        4     i32         flip (0 none, 1 STE, 2 naive)
**     80+T        4     f32         p01
**     84+T        4     f32         p10
**     88+T        4     f32         reg_lambda
**     92+T        4     f32         reg_h
**     96+T        8     u64         seed
**     104+T       4     i32         optimizer (0 Adam, 1 Bop)             } new in
**     108+T       4     f32         bop_gamma                             } version 2
**     112+T       4     f32         bop_tau                               }
**     116+T       4     f32         bop_gamma_decay                       }
**     120+T       4     i32         mom_e     } Bop momentum format       }
**     124+T       4     i32         mom_f     } F(e, f, bias),            }
**     128+T       4     i32         mom_bias  } engine/fpfmt.h            }
**     132+T       4     i32         mom_subnormals (0 or 1)               }
**     136+T       4     f32         xnor_p01  } XNOR product error rates, new in version 3
**     140+T       4     f32         xnor_p10  } (each in [0, 1])
**     144+T       4     i32         lta_n     LTA-aware training column size (0: off) } new in
**     148+T       4     f32         act_p01   } activation flips while training     } version 4
**     152+T       4     f32         act_p10   } (each in [0, 1])                    }
**     156+T       4     i32         flip_rows (0..16)  } flip-rate table of flip    } new in
**     160+T       64    f32[16]     flip_t             } training over a range     } version 5
**     224+T       64    f32[16]     flip_p01           } (train_flip_rates); rows  }
**     288+T       64    f32[16]     flip_p10           } >= flip_rows are 0        }
**   352+T         8     u64       P, number of parameter floats
**   360+T         8     u64       S, number of statistics floats
**   368+T         4*P   f32[P]    net.params, in net.h's order (layer 0 w, gamma, beta,
**                                 layer 1 ..., classifier w, scale)
**   368+T+4P      4*S   f32[S]    net.stats, in net.h's order (layer 0 running mean,
**                                 running var, layer 1 ..., hidden layers only)
**   368+T+4P+4S   4     u32       CRC-32 (zlib crc32, the gzip/PNG polynomial) of
**                                 every byte before it
**
** Total length = 372 + T + 4P + 4S. A reader checks magic, version, marker,
** total length against the actual length, the checksum, then the fields; it
** rebuilds the net with net_create(arch_parse(topology), in_c, in_h, in_w,
** classes) and requires that net's n_params and n_stats to equal P and S.
** A recipe saved as NULL is written as all zero fields (epochs 0: unknown).
** A Bop recipe's momentum format must be valid (fpfmt_init).
**
** Version 1 files (still read) lack the eight fields at 104+T..135+T: the
** recipe block is 60 bytes, P is at 104+T, and the total is 124 + T + 4P + 4S.
** They load as Adam recipes with the Bop fields at train_recipe_default's
** values. Version 2 files (still read) lack the two fields at 136+T..143+T:
** the recipe block is 92 bytes, P is at 136+T, the total is 156 + T + 4P + 4S;
** they load with xnor_p01 = xnor_p10 = 0 (versions 1 and 2 alike). Version 3
** files (still read) lack the three fields at 144+T..155+T: the recipe block is
** 100 bytes, P is at 144+T, the total is 164 + T + 4P + 4S; they load with
** lta_n = 0 and act_p01 = act_p10 = 0 (versions 1 to 3 alike). Version 4 files
** (still read) lack the 196 bytes at 156+T..351+T: the recipe block is 112
** bytes, P is at 156+T, the total is 176 + T + 4P + 4S; they load with
** flip_rows = 0 and a zero table (versions 1 to 4 alike).
** Any change to this layout bumps the format version.
*/
#ifndef BNAS_MODEL_H
#define BNAS_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/net.h"
#include "engine/train.h"

#define MODEL_MAGIC "BNASMDL1"  /* first 8 bytes of every model file */
#define MODEL_VERSION 5u        /* format version written by this build (1 to 4 are still read) */
#define MODEL_ENDIAN 0x01020304u /* endianness marker */
#define MODEL_MAX_TOPO 1024      /* longest topology string accepted */

/* Bytes model_save_mem writes for n. */
size_t model_size(const net *n);

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
