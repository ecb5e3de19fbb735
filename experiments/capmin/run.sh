#!/usr/bin/env bash
# CapMin experiments (issue 6): accuracy over the number q of kept MAC levels
# (A = 32), the smallest q within a 1-point budget and its capacitor reduction,
# and CapMin-V (misread probability eps = 0.02 per side without guard) with
# guard spacings 0, 1, 2. Uses the base models of experiments/lta/run.sh.
# Usage: experiments/capmin/run.sh   (env: BNAS, OUT, THREADS)
set -euo pipefail
cd "$(dirname "$0")/../.."
BNAS=${BNAS:-build/bnas}
OUT=${OUT:-experiments/out}
THREADS=${THREADS:-2}
# model | split | images | histogram images (VGG3 smaller: the machine was loaded)
RUNS=(
  "fc-plain|val|5000|10000"
  "fc-plain|test|10000|10000"
  "vgg3-plain|val|2000|5000"
  "vgg3-plain|test|10000|0"
)
for r in "${RUNS[@]}"; do
  IFS='|' read -r m split images hist <<< "$r"
  [ "$hist" = 0 ] && hist=  # 0: all training images (the evaluator's default)
  echo "== $BNAS measure $OUT/$m.bnm capmin A=32 budget=0.01 hist_images=$hist eps=0.02 guards=[0,1,2] split=$split images=$images --threads $THREADS"
  "$BNAS" measure "$OUT/$m.bnm" capmin A=32 budget=0.01 ${hist:+hist_images="$hist"} eps=0.02 "guards=[0,1,2]" \
    split="$split" images="$images" --threads "$THREADS" | tee "$OUT/$m.capmin.$split.txt"
done
