#!/usr/bin/env bash
# The main job: builds bnas, runs the quick multi-objective search on FashionMNIST
# (experiments/quick.yaml) into out/quick.db, and prints the Pareto front.
# Interrupted? `build/bnas resume out/quick.db` carries on where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
mkdir -p out
if [ -f out/quick.db ]; then
    build/bnas resume out/quick.db
else
    build/bnas run experiments/quick.yaml --db out/quick.db
fi
build/bnas pareto out/quick.db
