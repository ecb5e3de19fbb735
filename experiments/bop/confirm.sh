#!/bin/sh
# Full-data confirmation of the momentum formats found by the encoding search:
# Bop on all 55,000 training images (5,000 carved off for validation), test
# accuracy on the 10,000 test images, FP32 momentum and then the format, one
# run at a time with 2 threads; then the training-memory model of both and the
# time of the emulated format against FP32 momentum, measured in one process
# (bnas encodings --time: alternating one-epoch trainings, best of 2 CPU times).
# Usage (from the repository root):
#   sh experiments/bop/confirm.sh                      # FCNN 10 epochs, VGG3 2 epochs
#   ONLY=fcnn FCNN_EPOCHS=3 sh experiments/bop/confirm.sh
#   ONLY=vgg3 TRAIN=0 sh experiments/bop/confirm.sh    # memory model and timing only
set -eu
BNAS=${BNAS:-build/bnas}
OUT=${OUT:-experiments/bop/out}
ONLY=${ONLY:-fcnn vgg3}
TRAIN=${TRAIN:-1}
FCNN=FC512-FC512
VGG3=C64-MP2-C64-MP2-FC2048
FCNN_FMT=${FCNN_FMT:-e4m7b27}     # the screening result for FC512-FC512 (out/fcnn512_search.log)
VGG3_FMT=${VGG3_FMT:-e4m8b28}     # the search's accepted format for VGG3 (out/vgg3.log)
FCNN_EPOCHS=${FCNN_EPOCHS:-10}
VGG3_EPOCHS=${VGG3_EPOCHS:-2}
mkdir -p "$OUT"
COMMON="--optimizer bop --batch 100 --bop-gamma 1e-2 --bop-tau 1e-6 --val 5000 --threads 2"
confirm() { # name topology epochs format time_images
  [ "$TRAIN" = 1 ] && for f in fp32 "$4"; do
    nice -n 5 $BNAS train --topology "$2" --epochs "$3" $COMMON --momentum-format "$f" \
      -o "$OUT/confirm_$1_$f.bnm" > "$OUT/confirm_$1_$f.log"
    tail -n 2 "$OUT/confirm_$1_$f.log"
  done
  $BNAS encodings --memory "$4" --topology "$2" --batch 100 > "$OUT/confirm_$1_memory.log"
  cat "$OUT/confirm_$1_memory.log"
  nice -n 5 $BNAS encodings --topology "$2" --time "$4" --time-images "$5" --time-reps 2 --threads 2 \
    > "$OUT/confirm_$1_timing.log"
  grep result "$OUT/confirm_$1_timing.log"
}
for net in $ONLY; do
  case $net in
  fcnn) confirm fcnn "$FCNN" "$FCNN_EPOCHS" "$FCNN_FMT" 2000 ;;
  vgg3) confirm vgg3 "$VGG3" "$VGG3_EPOCHS" "$VGG3_FMT" 1000 ;;
  esac
done
