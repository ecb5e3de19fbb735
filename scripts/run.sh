#!/usr/bin/env bash
# The main job: builds bnas and trains FC512-FC512 on FashionMNIST (3 epochs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
mkdir -p out
build/bnas train --topology FC512-FC512 --epochs 3 -o out/fc512.bnm
