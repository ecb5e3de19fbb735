/*
** The training recipe's key table: one row per knob of train_recipe
** (engine/train.h) with its name, type, default, range, `bnas train` option
** and one line of documentation. The table drives
**
**   - train_recipe_default (the defaults),
**   - `bnas train`'s recipe options and their --help lines (nas/cmd_engine.c),
**   - the recipe a search trial trains with (nas/space.c sets it by key name),
**     and the keys a spec's search space may set beyond its own knobs (spec
**     column: e.g. `flip_bn0: [flipped, clean]`, `lr_step: 5`),
**   - the model file: format 6 stores the recipe as "key=value\n" text
**     (recipe_to_text / recipe_from_text), and the binary recipe blocks of
**     formats 1 to 5 are read by walking the table (recipe_read_legacy).
**
** Adding a training knob: a field in train_recipe, a row here (recipe.c), and
** the code that uses it. Nothing else: the option, its help line, the model
** file and the range check follow from the row.
**
** Text form. One line per stored key whose value differs from its default, in
** table order, "name=value\n"; a key that is absent has its default. Integers
** in decimal, floats in the shortest decimal form that reads back to the same
** binary32 ("0.05", "1e-06"), words by name ("mhl"), a flip-rate table column
** as comma-separated floats up to its last nonzero row. So a recipe has exactly
** one text, a file written before a knob existed loads with the knob's default,
** and a file that sets a knob an older build does not know is refused by it.
*/
#ifndef BNAS_RECIPE_H
#define BNAS_RECIPE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/train.h"

typedef enum {
    RECIPE_INT = 0,  /* int */
    RECIPE_FLOAT,    /* float (finite) */
    RECIPE_U64,      /* uint64_t */
    RECIPE_WORD,     /* an enum held as int: code i is words[i] */
    RECIPE_FLAG,     /* int 0 or 1; the option takes no value and sets 1 */
    RECIPE_ROWS,     /* float[TRAIN_FLIP_ROWS], a flip-rate table column */
    RECIPE_PAIR,     /* option only: sets the floats at offset and offset2 to one value */
    RECIPE_FORMAT,   /* option only: a momentum format name (engine/fpfmt.h) setting the
                        four ints mom_e, mom_f, mom_bias, mom_subnormals at offset */
} recipe_type;

#define RECIPE_MAX_WORDS 4

typedef struct {
    const char *name;     /* key in model files and specs, e.g. "lr_step" */
    const char *option;   /* `bnas train` option without "--" ("lr-step"), NULL: none */
    recipe_type type;
    size_t offset;        /* offsetof(train_recipe, field) */
    size_t offset2;       /* RECIPE_PAIR: the second field */
    double def;           /* default (words: the code); RECIPE_ROWS: every row */
    double lo, hi;        /* accepted values, inclusive (ints, floats, every row) */
    const char *words[RECIPE_MAX_WORDS]; /* RECIPE_WORD: names of codes 0, 1, ... (NULL-ended) */
    int since;            /* model format version whose binary recipe block added the field
                             (1..5, read by recipe_read_legacy); 6: text only; 0: not stored */
    const char *arg;      /* --help argument ("N", "X", "ce|mhl"); NULL for flags */
    const char *doc;      /* --help text */
    int spec;             /* 1: a spec's search space may name it (fixed, a choice or a range) */
} recipe_key;

extern const recipe_key recipe_keys[];
extern const int recipe_n_keys;

/* The row named name (a key name, e.g. "mhl_b"), or NULL. */
const recipe_key *recipe_find(const char *name);

/* The row whose option is opt (without "--", e.g. "mhl-b"), or NULL. */
const recipe_key *recipe_find_option(const char *opt);

/* Parses text as key k's value into r (PAIR: both fields; FORMAT: the four
   ints; FLAG: "0" or "1"; ROWS: comma-separated floats, the rest 0). Returns
   BN_OK, or BN_EARG naming the key for a malformed or out-of-range value. */
int recipe_set(train_recipe *r, const recipe_key *k, const char *text);

/* Sets scalar key k (INT, FLOAT, U64, WORD code, FLAG) to v after the range
   check. Returns BN_OK or BN_EARG naming the key. */
int recipe_set_number(train_recipe *r, const recipe_key *k, double v);

/* The value of scalar key k as a number. */
double recipe_number(const train_recipe *r, const recipe_key *k);

/* BN_OK if every stored key of r is in its range (words: a known code,
   ROWS: every row), the flip-rate table's abscissa strictly increases over
   flip_rows rows, and a Bop recipe's momentum format is valid; else BN_EARG
   naming the first bad key. */
int recipe_check(const train_recipe *r);

/* r as text (see the header comment) into a new malloc'd NUL-terminated
   buffer; *len (may be NULL) receives its length without the NUL. */
char *recipe_to_text(const train_recipe *r, size_t *len);

/* Reads text[0..len) (not NUL-terminated) written by recipe_to_text into *r.
   Refuses (BN_EFORMAT, naming `name` and the line) a line without '=', an
   unknown or repeated key, a bad value, keys out of table order, and text
   that recipe_to_text would not write for the recipe read (defaults written
   out, non-shortest numbers), so every recipe has exactly one text. */
int recipe_from_text(train_recipe *r, const char *text, size_t len, const char *name);

/* Bytes of the binary recipe block of model format `version` (1..5). */
size_t recipe_legacy_bytes(uint32_t version);

/* Reads the binary recipe block of format `version` (1..5) at p
   (recipe_legacy_bytes(version) bytes, little-endian): the fields of rows
   with since <= version in table order; the others keep r's values (the
   caller starts from a zero recipe; version 1 files take the Bop fields'
   defaults). */
void recipe_read_legacy(train_recipe *r, const uint8_t *p, uint32_t version);

/* Prints one --help line per row with an option, "  --option ARG  doc
   (default D)", the defaults taken from shown (the command's own). */
void recipe_print_help(FILE *f, const train_recipe *shown);

#endif /* BNAS_RECIPE_H */
