/*
** Topology strings in the seed papers' notation.
**
**   "FC512-FC512"              two binary dense layers of 512 units
**   "C64-MP2-C64-MP2-FC2048"   VGG3: conv 3x3 64, max-pool 2x2, conv 64, pool, dense 2048
**
** Items are separated by '-': Cn is a binary 3x3 convolution (stride 1, same
** padding) with n output channels, MP2 a 2x2 max-pool that follows a
** convolution, FCn a binary dense layer of n units. The classifier layer (dense,
** one unit per class, no batch norm and no sign) is added from the data set and
** is not written in the string. Convolutions must come before dense layers.
*/
#ifndef BNAS_ARCH_H
#define BNAS_ARCH_H

#include <stddef.h>

#define ARCH_MAX_ITEMS 32
#define ARCH_MAX_WIDTH 65536

typedef enum { ARCH_CONV = 1, ARCH_POOL = 2, ARCH_FC = 3 } arch_kind;

typedef struct {
    arch_kind kind; /* what the item is */
    int size;       /* channels (conv), units (fc), window (pool, always 2) */
} arch_item;

typedef struct {
    int n;                             /* number of items */
    arch_item items[ARCH_MAX_ITEMS];   /* in order, input to output */
} arch;

/* Parses s into a. Returns BN_OK, or BN_EARG with a message naming the bad item. */
int arch_parse(arch *a, const char *s);

/* Writes the canonical string of a into buf (at most n bytes, NUL included). */
void arch_format(const arch *a, char *buf, size_t n);

#endif /* BNAS_ARCH_H */
