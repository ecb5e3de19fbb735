#!/usr/bin/env bash
# Builds one libFuzzer target (clang, ASan + UBSan) into build-fuzz/ and runs it.
# Usage: scripts/fuzz.sh TARGET [SECONDS [LIBFUZZER-FLAGS...]]   TARGET: spec, model, idx,
#        cifar or store (default 600 s; e.g. -runs=1000000 stops after that many inputs). It starts from the committed corpus tests/fuzz/corpus/TARGET/,
#        writes new inputs to build-fuzz/corpus-TARGET/ and a crashing input to
#        build-fuzz/crash-TARGET/ (then stops).
#        scripts/fuzz.sh TARGET merge   minimizes the committed corpus and the new
#        inputs into tests/fuzz/corpus/TARGET/ (libFuzzer -merge=1: the smallest set
#        of inputs with the same coverage).
# Needs clang and libFuzzer (Debian: clang libclang-rt-14-dev libomp-dev; scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:?usage: scripts/fuzz.sh spec|model|idx|cifar|store [SECONDS|merge]}
what=${2:-600}
case $t in spec|model|idx|cifar|store) ;; *) echo "unknown target $t" >&2; exit 2 ;; esac
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBNAS_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "fuzz_$t" >/dev/null
corpus=tests/fuzz/corpus/$t work=build-fuzz/corpus-$t crash=build-fuzz/crash-$t
mkdir -p "$work" "$crash"
# The targets write their input as files: on tmpfs if there is one.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
export BNAS_SOURCE_DIR=$PWD OMP_NUM_THREADS=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fuzz=build-fuzz/fuzz_$t
if [ "$what" = merge ]; then
    # Named inputs (the seeds and the regress-* crash reproducers) always stay; of the
    # rest (named by their SHA-1), only those that add coverage.
    new=$(mktemp -d build-fuzz/merge-XXXXXX)
    find "$corpus" -maxdepth 1 -type f ! -regex '.*/[0-9a-f]\{40\}' -exec cp {} "$new"/ \;
    "$fuzz" -merge=1 -max_len=200000 "$new" "$corpus" "$work"
    rm -f "$corpus"/*
    cp "$new"/* "$corpus"/
    rm -rf "$new"
    echo "$corpus: $(ls "$corpus" | wc -l) files, $(du -sh "$corpus" | cut -f1)"
else
    "$fuzz" -max_total_time="$what" -timeout=20 -print_final_stats=1 -artifact_prefix="$crash/" \
        "${@:3}" "$work" "$corpus"
fi
