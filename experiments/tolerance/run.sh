#!/usr/bin/env bash
# Bit-error tolerance experiments on FashionMNIST (issue 3): trains an FCNN and
# VGG3 plainly, with STE / naive flip training, with MHL and (if bnas train has
# it) the direct regularizer, then evaluates each model with `bnas eval`
# (accuracy over weight bit error rates on the packed model + margin metrics).
#
# usage: experiments/tolerance/run.sh [fc|vgg3|extras|all]     (from the repository root)
#        extras: other error targets, per-layer and asymmetric errors on fc-plain
# env:   BNAS (default build/bnas), OUT (default experiments/tolerance/out),
#        THREADS (2), FC_EPOCHS (10), VGG_EPOCHS (2), FC_REPEATS (10), VGG_REPEATS (5),
#        ONLY (space-separated variant names to run, in this order; default all),
#        NICE (5: every run is niced), SEEDS (training seeds, default 1; a model
#        trained with seed N != 1 is named ARCH-NAME-sN), EXTRA_REPEATS (10, extras),
#        TRAIN_IMAGES (default all 60,000), IMAGES (test images, default all 10,000):
#        the last two for experiments/reproduce.sh tolerance --quick
# Every model trains on the full FashionMNIST training set (--val 0) with the
# fixed seed 1, every evaluation uses the 10,000 test images and error-pattern
# seed 1, so every number in RESULTS.md is reproduced bit for bit (results do
# not depend on the thread count).
# Models that already exist in OUT are not retrained. Summarise with
# python3 experiments/repro.py collect OUT > t.csv; python3 experiments/tolerance/summarize.py t.csv
# (experiments/reproduce.sh tolerance runs everything and does both).
# The whole script is one function, read completely before it runs (editing it cannot break a run).
main() {
set -euo pipefail
BNAS=${BNAS:-build/bnas}
OUT=${OUT:-experiments/tolerance/out}
THREADS=${THREADS:-2}
FC_EPOCHS=${FC_EPOCHS:-10}
NICE=${NICE:-5}
# Passive OpenMP waiting: on a shared machine spinning threads waste their time
# slices waiting for a descheduled partner (25x slower training measured here).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
VGG_EPOCHS=${VGG_EPOCHS:-2}
FC_REPEATS=${FC_REPEATS:-10}
VGG_REPEATS=${VGG_REPEATS:-5}
SEEDS=${SEEDS:-1}
EXTRA_REPEATS=${EXTRA_REPEATS:-10}
SUBSET=()
[ -n "${TRAIN_IMAGES:-}" ] && SUBSET+=(--train-images "$TRAIN_IMAGES")
EVAL_SUBSET=()
[ -n "${IMAGES:-}" ] && EVAL_SUBSET+=(--images "$IMAGES")
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
VARIANTS+=("reg|--reg-lambda 0.1 --reg-h 4")

run_arch() { # arch-name topology epochs repeats
  local an=$1 topo=$2 epochs=$3 repeats=$4
  local names=${ONLY:-}
  if [ -z "$names" ]; then for v in "${VARIANTS[@]}"; do names+=" ${v%%|*}"; done; fi
  for name in $names; do
    local flags="" found=0
    for v in "${VARIANTS[@]}"; do
      if [ "${v%%|*}" = "$name" ]; then flags=${v#*|}; found=1; fi
    done
    if [ $found = 0 ]; then echo "unknown variant $name" >&2; exit 2; fi
    for seed in $SEEDS; do
      local tag=$an-$name
      if [ "$seed" != 1 ]; then tag=$an-$name-s$seed; fi
      local model="$OUT/$tag.bnm"
      if [ ! -f "$model" ]; then
        echo "== train $tag: $BNAS train --topology $topo --epochs $epochs --val 0 --seed $seed --threads $THREADS ${SUBSET[*]} $flags -o $model"
        # shellcheck disable=SC2086
        nice -n "$NICE" "$BNAS" train --topology "$topo" --epochs "$epochs" --val 0 --seed "$seed" --threads "$THREADS" \
          "${SUBSET[@]}" $flags -o "$model.tmp" > "$OUT/$tag.train.txt"
        mv "$model.tmp" "$model"
      fi
      echo "== eval $tag: $BNAS eval $model --ber $BER --repeats $repeats --seed 1 --threads $THREADS ${EVAL_SUBSET[*]}"
      nice -n "$NICE" "$BNAS" eval "$model" --ber "$BER" --repeats "$repeats" --seed 1 --threads "$THREADS" \
        "${EVAL_SUBSET[@]}" > "$OUT/$tag.eval.txt"
    done
  done
}

run_extras() { # needs $OUT/fc-plain.bnm (run.sh fc)
  local m="$OUT/fc-plain.bnm" e=(nice -n "$NICE" "$BNAS" eval "$OUT/fc-plain.bnm" --repeats "$EXTRA_REPEATS" --seed 1 --threads "$THREADS" "${EVAL_SUBSET[@]}")
  for t in weights thresholds activations; do
    echo "== $BNAS eval $m --targets $t --ber 0.0001,0.001,0.01,0.05 --repeats $EXTRA_REPEATS --seed 1"
    "${e[@]}" --targets "$t" --ber 0.0001,0.001,0.01,0.05 > "$OUT/targets-fc-plain-$t.txt"
  done
  for l in 0 1 2; do
    echo "== $BNAS eval $m --layer $l --ber 0.05,0.2 --repeats $EXTRA_REPEATS --seed 1"
    "${e[@]}" --layer "$l" --ber 0.05,0.2 > "$OUT/layer-fc-plain-$l.txt"
  done
  echo "== $BNAS eval $m --ber 0.05 --p01 0.05 --p10 0 (and --p01 0 --p10 0.05) --repeats $EXTRA_REPEATS --seed 1"
  "${e[@]}" --ber 0.05 --p01 0.05 --p10 0 > "$OUT/asym-fc-plain-01.txt"
  "${e[@]}" --ber 0.05 --p01 0 --p10 0.05 > "$OUT/asym-fc-plain-10.txt"
}

case "$WHICH" in
  fc) run_arch fc FC512-FC512 "$FC_EPOCHS" "$FC_REPEATS" ;;
  vgg3) run_arch vgg3 C64-MP2-C64-MP2-FC2048 "$VGG_EPOCHS" "$VGG_REPEATS" ;;
  extras) run_extras ;;
  all)
    run_arch fc FC512-FC512 "$FC_EPOCHS" "$FC_REPEATS"
    run_arch vgg3 C64-MP2-C64-MP2-FC2048 "$VGG_EPOCHS" "$VGG_REPEATS"
    run_extras ;;
  *) echo "usage: $0 [fc|vgg3|extras|all]" >&2; exit 2 ;;
esac
}
main "$@"
