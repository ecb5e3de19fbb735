#!/bin/sh
# Cost of emulating the accepted momentum formats: one training epoch with
# FP32 momentum and with the format, alternately, best of 2 each, one thread,
# CPU time of the process (the machine is shared; wall time is printed too),
# and the Bop step alone.
# Usage (from the repository root): sh experiments/bop/timing.sh
set -eu
BNAS=${BNAS:-build/bnas}
OUT=${OUT:-experiments/bop/out}
mkdir -p "$OUT"
$BNAS encodings --topology FC2048-FC2048 --time e4m7b28 --time-images 2000 --time-reps 2 --threads 1 | tee "$OUT/timing_fcnn.log"
$BNAS encodings --topology C64-MP2-C64-MP2-FC2048 --time e4m8b28 --time-images 1000 --time-reps 2 --threads 1 | tee "$OUT/timing_vgg3.log"
