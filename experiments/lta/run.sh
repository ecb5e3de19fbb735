#!/usr/bin/env bash
# LTA experiments (issue 6): accuracy over the column size n before and after
# LTA-aware retraining at n = 64, on FashionMNIST VGG3 and FC512-FC512, with
# the hardware cost factors of the authors' calculator on the real shapes.
# Usage: experiments/lta/run.sh   (env: BNAS, OUT, THREADS, VGG_EPOCHS, FC_EPOCHS,
#        RETRAIN_EPOCHS, SWEEP_IMAGES)
set -euo pipefail
cd "$(dirname "$0")/../.."
BNAS=${BNAS:-build/bnas}
OUT=${OUT:-experiments/out}
THREADS=${THREADS:-2}
VGG_EPOCHS=${VGG_EPOCHS:-1}
FC_EPOCHS=${FC_EPOCHS:-3}
RETRAIN_EPOCHS=${RETRAIN_EPOCHS:-1}
SWEEP_IMAGES=${SWEEP_IMAGES:-10000}   # VGG3 used 2000 (loaded machine)
mkdir -p "$OUT"
train() { # name topology epochs [flags...]
  local name=$1 topo=$2 ep=$3; shift 3
  [ -f "$OUT/$name.bnm" ] && return 0
  echo "== $BNAS train --topology $topo --epochs $ep --threads $THREADS $* -o $OUT/$name.bnm"
  "$BNAS" train --topology "$topo" --epochs "$ep" --threads "$THREADS" "$@" -o "$OUT/$name.bnm" > "$OUT/$name.train.txt"
}
train vgg3-plain C64-MP2-C64-MP2-FC2048 "$VGG_EPOCHS"
train fc-plain FC512-FC512 "$FC_EPOCHS"
train vgg3-lta64 C64-MP2-C64-MP2-FC2048 "$RETRAIN_EPOCHS" --init "$OUT/vgg3-plain.bnm" --lta-n 64 --train-images 4096 --seed 1
train vgg3-lta64-lr4 C64-MP2-C64-MP2-FC2048 "$RETRAIN_EPOCHS" --init "$OUT/vgg3-plain.bnm" --lta-n 64 --train-images 4096 --lr 1e-4 --seed 1
train fc-lta64 FC512-FC512 "$RETRAIN_EPOCHS" --init "$OUT/fc-plain.bnm" --lta-n 64 --seed 1
# the full-training-set fine-tuning that meets the n = 64 target (3 epochs, lr 3e-4 halved every epoch)
train vgg3-lta64-full C64-MP2-C64-MP2-FC2048 3 --init "$OUT/vgg3-plain.bnm" --lta-n 64 --lr 3e-4 --lr-step 1 --lr-gamma 0.5 --seed 1
echo "== $BNAS measure $OUT/vgg3-lta64-full.bnm lta n=[64,32,128,256] split=test --threads $THREADS"
"$BNAS" measure "$OUT/vgg3-lta64-full.bnm" lta "n=[64,32,128,256]" split=test --threads "$THREADS" | tee "$OUT/vgg3-lta64-full.lta.txt"
for m in fc-plain fc-lta64 vgg3-plain vgg3-lta64 vgg3-lta64-lr4; do
  images=$SWEEP_IMAGES; case $m in vgg3*) images=${VGG_IMAGES:-2000} ;; esac
  echo "== $BNAS measure $OUT/$m.bnm lta n=[64,4,8,16,32,128,256] split=test images=$images --threads $THREADS"
  "$BNAS" measure "$OUT/$m.bnm" lta "n=[64,4,8,16,32,128,256]" split=test images="$images" --threads "$THREADS" \
    | tee "$OUT/$m.lta.txt"
done
# the reference kernel's quirks (floored chunk count, tail threshold 0, sign of gamma ignored)
"$BNAS" measure "$OUT/fc-plain.bnm" lta "n=[64,48,100]" floor_cycles=1 tail_zero=1 ignore_gamma=1 split=test \
  images="$SWEEP_IMAGES" --threads "$THREADS" | tee "$OUT/fc-plain.lta-quirks.txt"
"$BNAS" measure "$OUT/fc-plain.bnm" lta "n=[48,100]" split=test images="$SWEEP_IMAGES" --threads "$THREADS" \
  | tee "$OUT/fc-plain.lta-4800.txt"
# the time target: n = 64 on the 10,000 test images, 2 threads (set BNAS_BEFORE to an older binary to
# time it in the same run)
[ -n "${BNAS_BEFORE:-}" ] && /usr/bin/time -v "$BNAS_BEFORE" measure "$OUT/vgg3-plain.bnm" lta n=64 split=test --threads 2 2>&1 \
  | tee "$OUT/vgg3-plain.lta-time-before.txt"
/usr/bin/time -v "$BNAS" measure "$OUT/vgg3-plain.bnm" lta n=64 split=test --threads 2 2>&1 | tee "$OUT/vgg3-plain.lta-time.txt"
