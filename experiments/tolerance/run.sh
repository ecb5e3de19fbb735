#!/usr/bin/env bash
# Bit-error tolerance experiments on FashionMNIST (issue 3): trains an FCNN and
# VGG3 plainly, with STE / naive flip training, with MHL and (if bnas train has
# it) the direct regularizer, then evaluates each model with `bnas eval`
# (accuracy over weight bit error rates on the packed model + margin metrics).
#
# usage: experiments/tolerance/run.sh [fc|vgg3|all]     (from the repository root)
# env:   BNAS (default build/bnas), OUT (default experiments/tolerance/out),
#        THREADS (2), FC_EPOCHS (5), VGG_EPOCHS (2), FC_REPEATS (10), VGG_REPEATS (5),
#        ONLY (space-separated variant names to run; default all)
# Models that already exist in OUT are not retrained. Summarise with
# python3 experiments/tolerance/summarize.py OUT > experiments/tolerance/tables.md
set -euo pipefail
BNAS=${BNAS:-build/bnas}
OUT=${OUT:-experiments/tolerance/out}
THREADS=${THREADS:-2}
FC_EPOCHS=${FC_EPOCHS:-5}
VGG_EPOCHS=${VGG_EPOCHS:-2}
FC_REPEATS=${FC_REPEATS:-10}
VGG_REPEATS=${VGG_REPEATS:-5}
BER=0,0.005,0.01,0.02,0.05,0.1,0.15,0.2
WHICH=${1:-all}
mkdir -p "$OUT"

# name | bnas train flags
VARIANTS=(
  "plain|"
  "ste1|--flip ste --p 0.01"
  "ste5|--flip ste --p 0.05"
  "ste10|--flip ste --p 0.10"
  "ste20|--flip ste --p 0.20"
  "naive10|--flip naive --p 0.10"
  "mhl32|--loss mhl --mhl-b 32"
  "mhl128|--loss mhl --mhl-b 128"
)
if "$BNAS" train --help | grep -q -- --reg-lambda; then
  VARIANTS+=("reg|--reg-lambda 0.1 --reg-h 4")
fi

run_arch() { # arch-name topology epochs repeats
  local an=$1 topo=$2 epochs=$3 repeats=$4
  for v in "${VARIANTS[@]}"; do
    local name=${v%%|*} flags=${v#*|}
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then continue; fi
    local model="$OUT/$an-$name.bnm"
    if [ ! -f "$model" ]; then
      echo "== train $an $name: $BNAS train --topology $topo --epochs $epochs --threads $THREADS $flags -o $model"
      # shellcheck disable=SC2086
      "$BNAS" train --topology "$topo" --epochs "$epochs" --threads "$THREADS" $flags -o "$model" \
        > "$OUT/$an-$name.train.txt"
    fi
    echo "== eval $an $name: $BNAS eval $model --ber $BER --repeats $repeats --threads $THREADS"
    "$BNAS" eval "$model" --ber "$BER" --repeats "$repeats" --seed 1 --threads "$THREADS" > "$OUT/$an-$name.eval.txt"
  done
}

case "$WHICH" in
  fc) run_arch fc FC512-FC512 "$FC_EPOCHS" "$FC_REPEATS" ;;
  vgg3) run_arch vgg3 C64-MP2-C64-MP2-FC2048 "$VGG_EPOCHS" "$VGG_REPEATS" ;;
  all)
    run_arch fc FC512-FC512 "$FC_EPOCHS" "$FC_REPEATS"
    run_arch vgg3 C64-MP2-C64-MP2-FC2048 "$VGG_EPOCHS" "$VGG_REPEATS" ;;
  *) echo "usage: $0 [fc|vgg3|all]" >&2; exit 2 ;;
esac
