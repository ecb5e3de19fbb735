#!/usr/bin/env bash
# Builds bnas twice (release with -Werror and MPI, and ASan+UBSan) and runs every test in both;
# between them scripts/stress.sh reruns the determinism equalities under load (release build).
# The sanitizer build leaves MPI out (Open MPI's own allocations are not ours to check);
# test_mpi says so and skips there.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBNAS_WERROR=ON -DBNAS_MPI=ON >/dev/null
cmake --build build -j"$jobs"
cmake -S . -B build-san -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBNAS_WERROR=ON -DBNAS_SANITIZE=ON >/dev/null
cmake --build build-san -j"$jobs"
echo "== release tests"
(cd build && ctest --output-on-failure)
echo "== stress: determinism with every core busy and other CPUs' kernels forced"
scripts/stress.sh build
echo "== sanitizer tests (ASan + UBSan)"
(cd build-san && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 BNAS_SANITIZED=1 ctest --output-on-failure)
