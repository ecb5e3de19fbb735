#!/usr/bin/env bash
# Builds the release bnas binary into build/ (warnings are errors).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBNAS_WERROR=ON >/dev/null
cmake --build build -j"$(nproc)"
