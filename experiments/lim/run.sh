#!/usr/bin/env bash
# FeFET XNOR logic-in-memory (issue 5): the achieved XNOR speed-up at a 1-point
# accuracy budget on FashionMNIST, FC512-FC512, for
#   run time:    the plainly trained network, per-layer settings chosen greedily on validation data;
#   design time: a network trained with XNOR product errors (bnas train --xnor-p), one uniform
#                setting, judged against the PLAIN network's clean validation accuracy
#                (and the run-time search on top of it).
# usage: experiments/lim/run.sh     (from the repository root)
# env:   BNAS (build/bnas), OUT (experiments/lim/out), THREADS (2), EPOCHS (5), XNOR_P (0.08, the 80% row),
#        REPEATS (2), SEARCH_IMAGES (2000 validation images), IMAGES (test images reported; default all),
#        TABLE (the speed-up table; default the shipped illustrative one), TRAIN_IMAGES (default all)
# Models already in OUT are not retrained. Raw CSV and tables: experiments/reproduce.sh lim
set -euo pipefail
BNAS=${BNAS:-build/bnas}
OUT=${OUT:-experiments/lim/out}
THREADS=${THREADS:-2}
EPOCHS=${EPOCHS:-5}
XNOR_P=${XNOR_P:-0.08}
REPEATS=${REPEATS:-2}
SEARCH_IMAGES=${SEARCH_IMAGES:-2000}
TABLE=${TABLE:-evaluators/data/lim_speedup.csv}
IMAGES=${IMAGES:-}
mkdir -p "$OUT"

train() { # name extra-flags...
  local name=$1
  shift
  if [ ! -f "$OUT/$name.bnm" ]; then
    set -- ${TRAIN_IMAGES:+--train-images $TRAIN_IMAGES} "$@"
    echo "== $BNAS train --topology FC512-FC512 --epochs $EPOCHS --seed 1 --threads $THREADS $* -o $OUT/$name.bnm"
    "$BNAS" train --topology FC512-FC512 --epochs "$EPOCHS" --seed 1 --threads "$THREADS" "$@" -o "$OUT/$name.bnm" \
      > "$OUT/$name.train.txt"
  fi
}

evaluate() { # name extra key=value parameters...
  local name=$1
  shift
  echo "== $BNAS measure $OUT/$name.bnm lim table=$TABLE split=test budget=0.01 repeats=$REPEATS search_images=$SEARCH_IMAGES ${IMAGES:+images=$IMAGES }$* --threads $THREADS"
  "$BNAS" measure "$OUT/$name.bnm" lim table="$TABLE" split=test budget=0.01 repeats="$REPEATS" \
    search_images="$SEARCH_IMAGES" ${IMAGES:+images="$IMAGES"} "$@" --threads "$THREADS" > "$OUT/$name.lim.txt"
}

train fc-plain
train fc-xnor --xnor-p "$XNOR_P"
evaluate fc-plain
REF=$(awk '$1 == "lim.clean_val" {print $2}' "$OUT/fc-plain.lim.txt")
evaluate fc-xnor reference="$REF"
