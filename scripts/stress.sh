#!/usr/bin/env bash
# Determinism under load: reruns the tests whose results must not depend on the
# thread count, the interruptions or the CPU's kernels while every core is kept
# busy by other processes, once with the default kernels and again with OpenBLAS
# and the GEMM forced to other CPUs' kernels. Usage: scripts/stress.sh [BUILD_DIR]
# (default build; scripts/test.sh runs it on the release build).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
hogs=()
stop_hogs() { for p in "${hogs[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap stop_hogs EXIT
for _ in $(seq "$(nproc)"); do
    nice -n 0 bash -c 'while :; do :; done' &
    hogs+=($!)
done
equalities='^(test_determinism|test_train|test_bop|test_errmodel|test_resume)$'
echo "== stress: $(nproc) busy processes, default kernels"
(cd "$build" && ctest -R "$equalities" --output-on-failure)
for env in OPENBLAS_CORETYPE=Haswell "OPENBLAS_CORETYPE=SkylakeX BNAS_SIMD=avx2"; do
    echo "== stress: $(nproc) busy processes, $env"
    (cd "$build" && env $env ctest -R '^(test_train|test_resume)$' --output-on-failure)
done
