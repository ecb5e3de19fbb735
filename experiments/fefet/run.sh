#!/usr/bin/env bash
# FeFET weight memory over temperature (issue 5): trains FC512-FC512 and VGG3
# plainly and with flip training, then evaluates every model with the fefet
# evaluator (accuracy at every temperature of the table, the worst one, and
# BERA) on the test set. See RESULTS.md for what each model is.
#
# usage: experiments/fefet/run.sh [fc|fc-hot|fc-sweep|fc-cal|fc-extra|fc-seeds|vgg3|vgg3-cal|time|all]
#        (from the repository root)
#   fc        fc-plain, fc-tune, fc-range (the countermeasure study, 10 epochs; fc-tune: 3 more)
#   fc-hot    fc-tune-hot: fc-plain fine-tuned with flips over the upper half (50..100 C) only
#   fc-sweep  the recipe search for flip training (short, low-lr fine-tunes of fc-plain with flips
#             over part of the range, plain fine-tunes as controls, regularizer, MHL, batch-norm
#             recalibration): every model measured on the VALIDATION split only (OUT/NAME.val.txt);
#             the recipe is chosen by validation accuracy at the worst temperature
#   fc-cal    the chosen recipe (fc-h50-e3-lr3e-5-cal80) and the comparisons reported in RESULTS.md,
#             evaluated on the test set (needs fc-sweep's models, trains them if absent)
#   fc-seeds  BERA across training seeds: plain FC512-FC512 at 5 and 10 epochs, seeds 1-5
#             (fcEsS-plain), each evaluated with BERA against its own clean accuracy
#   fc-extra  fc-range-mhl, and fc-worst, fc-mid: fixed-rate flip training at the hottest / the
#             50 C row (comparisons; not run for RESULTS.md this time, see there)
#   vgg3-cal  the chosen FC recipe applied to vgg3-plain (vgg3-h50-e3-lr3e-5-cal80), its first stage
#             recalibrated at other temperatures (chosen on validation: -cal50), and a plain
#             fine-tune of vgg3-plain with the same learning rate and epochs as the control
#   vgg3      vgg3-plain (full training set, with BERA), vgg3-tune (vgg3-plain fine-tuned
#             with flips over the range)
#   time      the speed target (10 temperatures x 10 repeats x 10,000 test images, 2 threads)
#   all       fc, fc-hot, fc-sweep, fc-cal, fc-extra, vgg3, vgg3-cal and time
# env:   BNAS (default build/bnas), OUT (default experiments/fefet/out), THREADS (2),
#        FC_EPOCHS (10), TUNE_EPOCHS (3), VGG_EPOCHS (2), VGG_TUNE_EPOCHS (1),
#        VGG_TUNE_IMAGES (20000 training images), FC_REPEATS (10), VGG_REPEATS (3),
#        VGG_IMAGES (10000 test images), VGG_BERA_IMAGES (2000 validation images)
# Models already in OUT are not retrained. Raw CSV and tables: experiments/reproduce.sh fefet [--quick]
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
TABLE=evaluators/data/fefet_temperature.csv
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

val() { # name [repeats]: the whole range on the 5,000 validation images (the split of seed 1), no BERA
  local name=$1 reps=${2:-10}
  echo "== $BNAS measure $OUT/$name.bnm fefet table=$TABLE split=val repeats=$reps bera=0 --threads $THREADS"
  "$BNAS" measure "$OUT/$name.bnm" fefet table="$TABLE" split=val repeats="$reps" bera=0 --threads "$THREADS" \
    > "$OUT/$name.val.txt"
}

evaluate() { # name extra key=value parameters...
  local name=$1
  shift
  # IMAGES / BERA_IMAGES (env, default unset: all) cut the test and BERA search images (reproduce.sh --quick)
  set -- ${IMAGES:+images=$IMAGES} ${BERA_IMAGES:+bera_images=$BERA_IMAGES} "$@"
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
# the recipe search (fc-sweep) and the chosen recipe (fc-cal). All are fine-tunes of fc-plain
# (--init), named fc-KIND-eEPOCHS-lrLR: KIND h50 / h35 / h20 = flips drawn over the table's rows from
# 50 / 35 / 20 C up (the draws then cover 50..100, 35..100, 20..100 C), full = the whole range, worst
# = fixed 100 C rates, noflip = no flips (the control: what the extra low-lr epochs alone give).
# -calT: a second stage that only recalibrates the batch-norm running statistics at the fixed rates
# of T C (lr 1e-9, so no weight changes sign; 30 mini-batches of 256, the running statistics'
# momentum is 0.1), because after range training they hold the rates of the last few mini-batches'
# random temperatures.
INIT="--init $OUT/fc-plain.bnm"
HOT="--flip ste --flip-table $OUT/hot_table.csv"
calibrate() { # base T p01 p10: base-calT
  train "$1-cal$2" $FC 1 --flip ste --p01 "$3" --p10 "$4" --lr 1e-9 --train-images 7680 --init "$OUT/$1.bnm"
}
if [ "$WHICH" = fc-sweep ] || [ "$WHICH" = fc-cal ] || [ "$WHICH" = all ]; then
  awk -F, '/^#/ || /^[a-z]/ || $1 >= 50' "$TABLE" > "$OUT/hot_table.csv"
  for t in 20 35; do awk -F, -v t=$t '/^#/ || /^[a-z]/ || $1 >= t' "$TABLE" > "$OUT/hot${t}_table.csv"; done
  train fc-h50-e3-lr3e-5 $FC 3 $HOT --lr 3e-5 $INIT
  calibrate fc-h50-e3-lr3e-5 80 1.2e-3 2.5e-2
fi
if [ "$WHICH" = fc-sweep ] || [ "$WHICH" = all ]; then
  SWEEP=(fc-plain fc-tune fc-tune-hot fc-range)
  for e in 1 3 5 10; do
    for lr in 3e-4 1e-4 3e-5 1e-5; do
      case $e-$lr in 1-1e-5|3-3e-4|5-3e-4|5-1e-4|10-3e-4|10-1e-4) continue ;; esac
      train fc-noflip-e$e-lr$lr $FC $e --lr $lr $INIT; SWEEP+=(fc-noflip-e$e-lr$lr)
    done
  done
  for k in h50 h35 h20 full; do
    case $k in h50) f=$OUT/hot_table.csv ;; h35|h20) f=$OUT/hot${k#h}_table.csv ;; full) f=$TABLE ;; esac
    for lr in 1e-3 3e-4 1e-4 3e-5; do
      for e in 1 3; do train fc-$k-e$e-lr$lr $FC $e --flip ste --flip-table "$f" --lr $lr $INIT; SWEEP+=(fc-$k-e$e-lr$lr); done
    done
  done
  for e in 5 10; do
    for lr in 1e-4 3e-5 1e-5; do train fc-h50-e$e-lr$lr $FC $e $HOT --lr $lr $INIT; SWEEP+=(fc-h50-e$e-lr$lr); done
  done
  train fc-h50-e3-lr1e-5 $FC 3 $HOT --lr 1e-5 $INIT; SWEEP+=(fc-h50-e3-lr1e-5)
  for lr in 3e-4 1e-4 3e-5; do
    train fc-worst-e1-lr$lr $FC 1 --flip ste --p01 "$P01" --p10 "$P10" --lr $lr $INIT; SWEEP+=(fc-worst-e1-lr$lr)
  done
  # margin regularizer (engine/train.h) and MHL on top of the h50 fine-tune
  for e in 3 5; do
    train fc-h50reg-e$e-lr3e-5 $FC $e $HOT --lr 3e-5 --reg-lambda 0.1 --reg-h 4 $INIT; SWEEP+=(fc-h50reg-e$e-lr3e-5)
  done
  for h in 8 16; do
    for lam in 0.1 0.3 1; do
      train fc-h50reg-h$h-l$lam-e3-lr3e-5 $FC 3 $HOT --lr 3e-5 --reg-lambda $lam --reg-h $h $INIT
      SWEEP+=(fc-h50reg-h$h-l$lam-e3-lr3e-5)
    done
    train fc-noflipreg-h$h-l0.3-e3-lr3e-5 $FC 3 --lr 3e-5 --reg-lambda 0.3 --reg-h $h $INIT
    SWEEP+=(fc-noflipreg-h$h-l0.3-e3-lr3e-5)
  done
  train fc-h50mhl-e3-lr3e-5 $FC 3 $HOT --lr 3e-5 --loss mhl $INIT; SWEEP+=(fc-h50mhl-e3-lr3e-5)
  # batch-norm recalibration of the best single-stage recipe at four temperatures (50 C, 65 C,
  # 72 C = the log-interpolated rates between the 65 and 80 C rows, 80 C)
  calibrate fc-h50-e3-lr3e-5 50 6.32e-4 1.10e-2
  calibrate fc-h50-e3-lr3e-5 65 8.85e-4 1.70e-2
  calibrate fc-h50-e3-lr3e-5 72 1.03e-3 2.06e-2
  SWEEP+=(fc-h50-e3-lr3e-5-cal50 fc-h50-e3-lr3e-5-cal65 fc-h50-e3-lr3e-5-cal72 fc-h50-e3-lr3e-5-cal80)
  for m in "${SWEEP[@]}"; do val "$m"; done
fi
if [ "$WHICH" = fc-cal ] || [ "$WHICH" = all ]; then
  # test evaluation of the chosen recipe and of the comparisons in RESULTS.md
  train fc-h50-e1-lr1e-4 $FC 1 $HOT --lr 1e-4 $INIT
  train fc-h50-e1-lr3e-4 $FC 1 $HOT --lr 3e-4 $INIT
  train fc-h50reg-e3-lr3e-5 $FC 3 $HOT --lr 3e-5 --reg-lambda 0.1 --reg-h 4 $INIT
  train fc-noflip-e1-lr1e-4 $FC 1 --lr 1e-4 $INIT
  train fc-noflip-e3-lr3e-5 $FC 3 --lr 3e-5 $INIT
  calibrate fc-h50-e3-lr3e-5 72 1.03e-3 2.06e-2
  for m in fc-h50-e3-lr3e-5-cal80 fc-h50-e3-lr3e-5 fc-h50-e3-lr3e-5-cal72 fc-h50-e1-lr1e-4 fc-h50-e1-lr3e-4 \
      fc-h50reg-e3-lr3e-5 fc-noflip-e1-lr1e-4 fc-noflip-e3-lr3e-5; do
    evaluate "$m" repeats="$FC_REPEATS"
  done
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
if [ "$WHICH" = vgg3-cal ] || [ "$WHICH" = all ]; then
  # the chosen FC recipe on VGG3 (same flags), and the plain fine-tune with the same lr and epochs
  V=C64-MP2-C64-MP2-FC2048
  awk -F, '/^#/ || /^[a-z]/ || $1 >= 50' "$TABLE" > "$OUT/hot_table.csv"
  train vgg3-h50-e3-lr3e-5 $V 3 $HOT --lr 3e-5 --init "$OUT/vgg3-plain.bnm"
  train vgg3-h50-e3-lr3e-5-cal80 $V 1 --flip ste --p01 1.2e-3 --p10 2.5e-2 --lr 1e-9 --train-images 7680 \
    --init "$OUT/vgg3-h50-e3-lr3e-5.bnm"
  train vgg3-noflip-e3-lr3e-5 $V 3 --lr 3e-5 --init "$OUT/vgg3-plain.bnm"
  # the recalibration stage at 80 C hurt on VGG3's validation split, so the temperature of the
  # recalibration was swept (-40, 20, 50 C) and chosen on validation too (cal50)
  for row in -40,1.00e-4,5.00e-4 20,3.00e-4,4.00e-3 50,6.32e-4,1.10e-2; do
    IFS=, read -r t a b <<< "$row"
    train vgg3-h50-e3-lr3e-5-cal$t $V 1 --flip ste --p01 "$a" --p10 "$b" --lr 1e-9 --train-images 7680 \
      --init "$OUT/vgg3-h50-e3-lr3e-5.bnm"
  done
  val vgg3-h50-e3-lr3e-5-cal-40 "$VGG_REPEATS"
  for m in vgg3-plain vgg3-h50-e3-lr3e-5-cal80 vgg3-h50-e3-lr3e-5 vgg3-noflip-e3-lr3e-5 vgg3-h50-e3-lr3e-5-cal50 \
      vgg3-h50-e3-lr3e-5-cal20; do
    val "$m" "$VGG_REPEATS"
    [ "$m" = vgg3-plain ] || evaluate "$m" repeats="$VGG_REPEATS" images="$VGG_IMAGES" bera_images="$VGG_BERA_IMAGES" bera_repeats=2
  done
fi
if [ "$WHICH" = fc-seeds ] || [ "$WHICH" = all ]; then
  # BERA needs no training, so its success is a property of the plain network: five training
  # seeds at 5 and at 10 epochs (seed 1 at 10 epochs is fc-plain's recipe)
  for e in 5 10; do
    for s in 1 2 3 4 5; do
      name=fc${e}s${s}-plain
      if [ ! -f "$OUT/$name.bnm" ]; then
        echo "== $BNAS train --topology $FC --epochs $e --seed $s --threads $THREADS -o $OUT/$name.bnm"
        "$BNAS" train --topology "$FC" --epochs "$e" --seed "$s" --threads "$THREADS" -o "$OUT/$name.bnm" \
          > "$OUT/$name.train.txt"
      fi
      evaluate "$name" repeats="$FC_REPEATS"
    done
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
