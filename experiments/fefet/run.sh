#!/usr/bin/env bash
# FeFET weight memory over temperature (issue 5): trains FC512-FC512 and VGG3
# plainly and with flip training at the worst-case rates of the table, then
# evaluates every model with the fefet evaluator (accuracy at every temperature
# of the table, the worst one, and BERA) on the test set.
#
# usage: experiments/fefet/run.sh [fc|vgg3|all|time]   (from the repository root)
# env:   BNAS (default build/bnas), OUT (default experiments/fefet/out), THREADS (2),
#        FC_EPOCHS (5), VGG_EPOCHS (2), VGG_TRAIN (6000 training images),
#        FC_REPEATS (10), VGG_REPEATS (3), VGG_IMAGES (2000 test images)
# Models already in OUT are not retrained. Tables: python3 experiments/fefet/summarize.py OUT
set -euo pipefail
BNAS=${BNAS:-build/bnas}
OUT=${OUT:-experiments/fefet/out}
THREADS=${THREADS:-2}
FC_EPOCHS=${FC_EPOCHS:-5}
VGG_EPOCHS=${VGG_EPOCHS:-2}
VGG_TRAIN=${VGG_TRAIN:-6000}
FC_REPEATS=${FC_REPEATS:-10}
VGG_REPEATS=${VGG_REPEATS:-3}
VGG_IMAGES=${VGG_IMAGES:-2000}
TABLE=experiments/fefet/default_table.csv
# worst-case (hottest) rates of the table, for flip training
WORST=$(grep -v '^#' "$TABLE" | grep -v '^[a-z]' | tail -n 1)
P01=$(echo "$WORST" | cut -d, -f2)
P10=$(echo "$WORST" | cut -d, -f3)
# a mid-range row (50 C), for flip training at a middle rate instead of the worst
MID=$(grep '^50,' "$TABLE")
M01=$(echo "$MID" | cut -d, -f2)
M10=$(echo "$MID" | cut -d, -f3)
WHICH=${1:-all}
mkdir -p "$OUT"

train() { # name topology epochs extra-flags...
  local name=$1 topo=$2 epochs=$3
  shift 3
  if [ ! -f "$OUT/$name.bnm" ]; then
    echo "== $BNAS train --topology $topo --epochs $epochs --seed 1 --threads $THREADS $* -o $OUT/$name.bnm"
    "$BNAS" train --topology "$topo" --epochs "$epochs" --seed 1 --threads "$THREADS" "$@" -o "$OUT/$name.bnm" \
      > "$OUT/$name.train.txt"
  fi
}

evaluate() { # name extra --param flags...
  local name=$1
  shift
  echo "== $BNAS device $OUT/$name.bnm --evaluator fefet --param table=$TABLE --param split=test $* --threads $THREADS"
  "$BNAS" device "$OUT/$name.bnm" --evaluator fefet --param table="$TABLE" --param split=test "$@" \
    --threads "$THREADS" > "$OUT/$name.fefet.txt"
}

if [ "$WHICH" = fc ] || [ "$WHICH" = all ]; then
  train fc-plain FC512-FC512 "$FC_EPOCHS"
  train fc-flip FC512-FC512 "$FC_EPOCHS" --flip ste --p01 "$P01" --p10 "$P10"
  train fc-flipmid FC512-FC512 "$FC_EPOCHS" --flip ste --p01 "$M01" --p10 "$M10"
  for m in fc-plain fc-flip fc-flipmid; do evaluate "$m" --param repeats="$FC_REPEATS"; done
fi
if [ "$WHICH" = vgg3 ] || [ "$WHICH" = all ]; then
  V=C64-MP2-C64-MP2-FC2048
  train vgg3-plain $V "$VGG_EPOCHS" --train-images "$VGG_TRAIN"
  train vgg3-flip $V "$VGG_EPOCHS" --train-images "$VGG_TRAIN" --flip ste --p01 "$P01" --p10 "$P10"
  train vgg3-flipmid $V "$VGG_EPOCHS" --train-images "$VGG_TRAIN" --flip ste --p01 "$M01" --p10 "$M10"
  for m in vgg3-plain vgg3-flip vgg3-flipmid; do
    evaluate "$m" --param repeats="$VGG_REPEATS" --param images="$VGG_IMAGES" --param bera_images=1000 \
      --param bera_repeats=2
  done
fi
if [ "$WHICH" = time ] || [ "$WHICH" = all ]; then
  # the speed target: 10 temperatures x 10 repeats on the 10,000 test images, FC512-FC512, 2 threads
  echo "== time $BNAS device $OUT/fc-plain.bnm --evaluator fefet --param split=test --param repeats=10 --param bera=0 --threads 2"
  for k in 1 2 3; do
    "$BNAS" device "$OUT/fc-plain.bnm" --evaluator fefet --param split=test --param repeats=10 --param bera=0 \
      --threads 2 | tail -n 1
  done | tee "$OUT/timing.txt"
fi
