#!/usr/bin/env bash
# FeFET weight memory over temperature (issue 5): trains FC512-FC512 and VGG3
# plainly and with flip training, then evaluates every model with the fefet
# evaluator (accuracy at every temperature of the table, the worst one, and
# BERA) on the test set. See RESULTS.md for what each model is.
#
# usage: experiments/fefet/run.sh [fc|fc-extra|vgg3|time|all]   (from the repository root)
#   fc        fc-plain, fc-tune, fc-range (the countermeasure study, 10 epochs; fc-tune: 3 more)
#   fc-hot    fc-tune-hot: fc-plain fine-tuned with flips over the upper half (50..100 C) only
#   fc-extra  fc-range-mhl, and fc-worst, fc-mid: fixed-rate flip training at the hottest / the
#             50 C row (comparisons; not run for RESULTS.md this time, see there)
#   vgg3      vgg3-plain (full training set, with BERA), vgg3-tune (vgg3-plain fine-tuned
#             with flips over the range)
#   time      the speed target (10 temperatures x 10 repeats x 10,000 test images, 2 threads)
#   all       fc, fc-extra, vgg3 and time
# env:   BNAS (default build/bnas), OUT (default experiments/fefet/out), THREADS (2),
#        FC_EPOCHS (10), TUNE_EPOCHS (3), VGG_EPOCHS (2), VGG_TUNE_EPOCHS (1),
#        VGG_TUNE_IMAGES (20000 training images), FC_REPEATS (10), VGG_REPEATS (3),
#        VGG_IMAGES (10000 test images), VGG_BERA_IMAGES (2000 validation images)
# Models already in OUT are not retrained. Tables: python3 experiments/fefet/summarize.py OUT
set -euo pipefail
BNAS=${BNAS:-build/bnas}
OUT=${OUT:-experiments/fefet/out}
THREADS=${THREADS:-2}
FC_EPOCHS=${FC_EPOCHS:-10}
TUNE_EPOCHS=${TUNE_EPOCHS:-3}
VGG_EPOCHS=${VGG_EPOCHS:-2}
VGG_TUNE_EPOCHS=${VGG_TUNE_EPOCHS:-1}
VGG_TUNE_IMAGES=${VGG_TUNE_IMAGES:-20000}
FC_REPEATS=${FC_REPEATS:-10}
VGG_REPEATS=${VGG_REPEATS:-3}
VGG_IMAGES=${VGG_IMAGES:-10000}
VGG_BERA_IMAGES=${VGG_BERA_IMAGES:-2000}
TABLE=experiments/fefet/default_table.csv
# worst-case (hottest) rates of the table
WORST=$(grep -v '^#' "$TABLE" | grep -v '^[a-z]' | tail -n 1)
P01=$(echo "$WORST" | cut -d, -f2)
P10=$(echo "$WORST" | cut -d, -f3)
# the 50 C row
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

evaluate() { # name extra key=value parameters...
  local name=$1
  shift
  echo "== $BNAS measure $OUT/$name.bnm fefet table=$TABLE split=test $* --threads $THREADS"
  "$BNAS" measure "$OUT/$name.bnm" fefet table="$TABLE" split=test "$@" --threads "$THREADS" > "$OUT/$name.fefet.txt"
}

FC=FC512-FC512
if [ "$WHICH" = fc ] || [ "$WHICH" = all ]; then
  train fc-plain $FC "$FC_EPOCHS"
  # countermeasure (a), flip training over the table's range: every mini-batch at a temperature
  # drawn uniformly from -40..100 C, the rates log-interpolated from the table.
  # fc-tune: fc-plain fine-tuned so; fc-range: trained so from scratch
  train fc-tune $FC "$TUNE_EPOCHS" --flip ste --flip-table "$TABLE" --init "$OUT/fc-plain.bnm"
  train fc-range $FC "$FC_EPOCHS" --flip ste --flip-table "$TABLE"
  for m in fc-plain fc-tune fc-range; do evaluate "$m" repeats="$FC_REPEATS"; done
fi
if [ "$WHICH" = fc-hot ] || [ "$WHICH" = all ]; then
  # the table's rows from 50 C up: the draws then cover the hot half of the range only
  awk -F, '/^#/ || /^[a-z]/ || $1 >= 50' "$TABLE" > "$OUT/hot_table.csv"
  train fc-tune-hot $FC "$TUNE_EPOCHS" --flip ste --flip-table "$OUT/hot_table.csv" --init "$OUT/fc-plain.bnm"
  evaluate fc-tune-hot repeats="$FC_REPEATS"
fi
if [ "$WHICH" = fc-extra ] || [ "$WHICH" = all ]; then
  train fc-range-mhl $FC "$FC_EPOCHS" --flip ste --flip-table "$TABLE" --loss mhl
  train fc-worst $FC "$FC_EPOCHS" --flip ste --p01 "$P01" --p10 "$P10"
  train fc-mid $FC "$FC_EPOCHS" --flip ste --p01 "$M01" --p10 "$M10"
  for m in fc-range-mhl fc-worst fc-mid; do evaluate "$m" repeats="$FC_REPEATS"; done
fi
if [ "$WHICH" = vgg3 ] || [ "$WHICH" = all ]; then
  V=C64-MP2-C64-MP2-FC2048
  train vgg3-plain $V "$VGG_EPOCHS"
  train vgg3-tune $V "$VGG_TUNE_EPOCHS" --flip ste --flip-table "$TABLE" --init "$OUT/vgg3-plain.bnm" \
    --train-images "$VGG_TUNE_IMAGES"
  for m in vgg3-plain vgg3-tune; do
    evaluate "$m" repeats="$VGG_REPEATS" images="$VGG_IMAGES" bera_images="$VGG_BERA_IMAGES" bera_repeats=2
  done
fi
if [ "$WHICH" = time ] || [ "$WHICH" = all ]; then
  # the speed target: 10 temperatures x 10 repeats on the 10,000 test images, FC512-FC512, 2 threads
  echo "== time $BNAS measure $OUT/fc-plain.bnm fefet split=test repeats=10 bera=0 --threads 2"
  TIMEFORMAT='whole command %R s wall'
  for k in 1 2 3; do
    { time "$BNAS" measure "$OUT/fc-plain.bnm" fefet split=test repeats=10 bera=0 --threads 2 |
        awk '$1 == "seconds" || $1 == "cpu_seconds" {printf "%s %s s, ", $1, $2}'; } 2>&1
  done | tee "$OUT/timing.txt"
fi
