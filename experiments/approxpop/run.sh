#!/usr/bin/env bash
# Approximate popcount experiments (issue 6): the plain FC512-FC512 on
# majority-gate popcount hardware (k_exact = 0, 2, 4, 6, 7, 8 exact top levels), its
# per-layer decision flip rate (the abstraction), approximation-aware
# retraining with that flip rate (bnas train --act-p), and the accuracy of the
# aware network against a plain network retrained for the same epoch.
# Usage: experiments/approxpop/run.sh   (env: BNAS, OUT, THREADS, IMAGES, ACT_P)
set -euo pipefail
cd "$(dirname "$0")/../.."
BNAS=${BNAS:-build/bnas}
OUT=${OUT:-experiments/out}
THREADS=${THREADS:-2}
IMAGES=${IMAGES:-1000}
"$BNAS" measure "$OUT/fc-plain.bnm" approxpop "k_exact=[0,2,4]" split=test images="$IMAGES" --threads "$THREADS" \
  | tee "$OUT/fc-plain.approxpop.txt"
# fan-in 512 has L = 9 levels: k_exact = 7 leaves levels 1-2 approximate, 6 levels 1-3
"$BNAS" measure "$OUT/fc-plain.bnm" approxpop "k_exact=[7,8,6]" split=test images="$IMAGES" --threads "$THREADS" \
  | tee "$OUT/fc-plain.approxpop2.txt"
# the abstraction: the measured flip rate of the approximated layer at k_exact = 7, on the
# VALIDATION split (it selects the training flip rate: never measured on the test set)
"$BNAS" measure "$OUT/fc-plain.bnm" approxpop k_exact=7 split=val images="$IMAGES" --threads "$THREADS" \
  > "$OUT/fc-plain.approxpop-val.txt"
ACT_P=${ACT_P:-$(awk '$1 == "approxpop.flip" {print $2}' "$OUT/fc-plain.approxpop-val.txt")}
for v in "r1|" "aware|--act-p $ACT_P"; do
  name=${v%%|*} flags=${v#*|}
  if [ ! -f "$OUT/fc-$name.bnm" ]; then
    echo "== $BNAS train --topology FC512-FC512 --init $OUT/fc-plain.bnm --epochs 1 --threads $THREADS $flags -o $OUT/fc-$name.bnm"
    # shellcheck disable=SC2086
    "$BNAS" train --topology FC512-FC512 --init "$OUT/fc-plain.bnm" --epochs 1 --threads 1 $flags \
      -o "$OUT/fc-$name.bnm" > "$OUT/fc-$name.train.txt"
  fi
  "$BNAS" measure "$OUT/fc-$name.bnm" approxpop "k_exact=[7,6,0]" split=test images="$IMAGES" --threads 1 \
    | tee "$OUT/fc-$name.approxpop.txt"
done
