#!/bin/sh
# Bop momentum encodings on FashionMNIST (issue 7): FCNN (FC2048-FC2048) and
# VGG3 (C64-MP2-C64-MP2-FC2048), Bop with FP32 momentum and the narrowest format
# the search accepts, the memory model, and the cost of emulating the format.
# Usage (from the repository root, after a build): sh experiments/bop/run.sh
# Sized for 2 shared cores: 20,000 training images, FCNN 5 epochs, VGG3 2 epochs.
set -eu
BNAS=${BNAS:-build/bnas}
OUT=${OUT:-experiments/bop/out}
mkdir -p "$OUT"
COMMON="--batch 100 --bop-gamma 1e-2 --bop-tau 1e-6 --images 20000 --val 5000 --lost-budget 0.03 --max-confirm 3 --threads 1"
$BNAS encodings --topology FC2048-FC2048 --epochs 5 $COMMON --time-images 5000 | tee "$OUT/fcnn.log" &
$BNAS encodings --topology C64-MP2-C64-MP2-FC2048 --epochs 2 $COMMON --time-images 2000 | tee "$OUT/vgg3.log" &
wait
for f in fp32 e4m7 e5m7 e5m8 e5m10; do
  $BNAS encodings --memory $f --topology FC2048-FC2048 --batch 100 | tail -1 | sed "s/^/FCNN $f: /"
  $BNAS encodings --memory $f --topology C64-MP2-C64-MP2-FC2048 --batch 100 | tail -1 | sed "s/^/VGG3 $f: /"
done | tee "$OUT/memory.log"
