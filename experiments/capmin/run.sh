#!/usr/bin/env bash
# CapMin experiments (issue 6): accuracy over the number q of kept MAC levels
# (A = 32), the smallest q within a 1-point budget and its capacitor reduction,
# and CapMin-V (misread probability eps = 0.02 per side without guard) with
# guard spacings 0, 1, 2. Uses the base models of experiments/lta/run.sh.
# Usage: experiments/capmin/run.sh   (env: BNAS, OUT, THREADS, IMAGES, HIST_IMAGES)
set -euo pipefail
cd "$(dirname "$0")/../.."
BNAS=${BNAS:-build/bnas}
OUT=${OUT:-experiments/out}
THREADS=${THREADS:-2}
IMAGES=${IMAGES:-5000}
HIST_IMAGES=${HIST_IMAGES:-10000}
for m in fc-plain vgg3-plain; do
  for split in val test; do
    echo "== $BNAS measure $OUT/$m.bnm capmin A=32 budget=0.01 hist_images=$HIST_IMAGES eps=0.02 guards=[0,1,2] split=$split images=$IMAGES --threads $THREADS"
    "$BNAS" measure "$OUT/$m.bnm" capmin A=32 budget=0.01 hist_images="$HIST_IMAGES" eps=0.02 "guards=[0,1,2]" \
      split=$split images="$IMAGES" --threads "$THREADS" | tee "$OUT/$m.capmin.$split.txt"
  done
done
