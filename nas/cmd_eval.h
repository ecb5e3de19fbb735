/* `bnas eval`: bit-error tolerance of a saved model; and the fault-injection speed lines of `bnas bench`. */
#ifndef BNAS_CMD_EVAL_H
#define BNAS_CMD_EVAL_H

#include "engine/data.h"

/* bnas eval MODEL [options]: clean accuracy, margin metrics and accuracy over
   bit error rates. Returns the exit code: 0 success, 1 runtime error (file,
   data, evaluation), 2 usage error. */
int cmd_eval(int argc, char **argv);

/* Prints the fault-injection speed lines (packed vs float path with injected
   flips, images/s and ratio; FC512-FC512 10 repeats x test set at 1% BER on 2
   threads; share of time spent drawing flips) for FC512-FC512 and VGG3 on the
   images of test. quick: fewer images for the float path. Returns 0, or 1 on
   error (message printed). */
int bench_fault(const dataset *test, int quick);

#endif /* BNAS_CMD_EVAL_H */
