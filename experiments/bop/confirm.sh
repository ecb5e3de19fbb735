#!/bin/sh
# Full-data confirmation of the formats found by run.sh: Bop on all 55,000
# training images (5,000 carved off for validation), test accuracy on the
# 10,000 test images, FP32 momentum vs the accepted format; all four runs side
# by side (one thread each), so each pair's epoch times are comparable.
# Usage (from the repository root): sh experiments/bop/confirm.sh
set -eu
BNAS=${BNAS:-build/bnas}
OUT=${OUT:-experiments/bop/out}
FCNN_FMT=${FCNN_FMT:-e4m7b28}
VGG3_FMT=${VGG3_FMT:-e4m8b28}
mkdir -p "$OUT"
COMMON="--optimizer bop --batch 100 --bop-gamma 1e-2 --bop-tau 1e-6 --val 5000 --threads 1"
$BNAS train --topology FC2048-FC2048 --epochs 5 $COMMON --momentum-format fp32 -o "$OUT/fcnn_fp32.bnm" > "$OUT/fcnn_fp32.log" &
$BNAS train --topology FC2048-FC2048 --epochs 5 $COMMON --momentum-format $FCNN_FMT -o "$OUT/fcnn_$FCNN_FMT.bnm" > "$OUT/fcnn_$FCNN_FMT.log" &
$BNAS train --topology C64-MP2-C64-MP2-FC2048 --epochs 2 $COMMON --momentum-format fp32 -o "$OUT/vgg3_fp32.bnm" > "$OUT/vgg3_fp32.log" &
$BNAS train --topology C64-MP2-C64-MP2-FC2048 --epochs 2 $COMMON --momentum-format $VGG3_FMT -o "$OUT/vgg3_$VGG3_FMT.bnm" > "$OUT/vgg3_$VGG3_FMT.log" &
wait
tail -n 4 "$OUT"/fcnn_*.log "$OUT"/vgg3_*.log
