#!/usr/bin/env bash
# One entry point for the recorded studies (issue 17): runs a study's experiments/STUDY/run.sh
# from scratch into a fresh output folder, writes the raw per-run CSV (every metric of every
# `bnas measure` / `bnas train` output, experiments/repro.py collect) to
# experiments/STUDY/results/MODE.csv, and regenerates the study's tables in its RESULTS.md from
# that CSV (the block between "<!-- repro:MODE -->" and "<!-- /repro:MODE -->").
#
# usage: experiments/reproduce.sh STUDY [--quick] [--check]      (from anywhere)
#   STUDY     tolerance | lim | fefet | approxpop | bop
#   --quick   the reduced run (fewer epochs, images and repeats, printed at the start): at most
#             10 minutes on 2 cores; results/quick.csv
#   (default) the full run of RESULTS.md; results/full.csv
#   --check   rerun and compare with the committed CSV instead of replacing it; exit 1 if any
#             value differs. Exact: every CSV is made in the portable determinism mode (the
#             default), which gives the same digits on every x86-64 host, thread count and load;
#             timing values are not compared. Elsewhere set REPRO_REL_TOL (experiments/repro.py).
# env: BNAS (default build/bnas), THREADS (2), KEEP=1 keeps the output folder (models, raw logs)
# The whole script is one function, read completely before it runs: editing this file while a
# study runs cannot break that run.
main() {
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '2,/^# env/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
STUDY=${1:-}
[ -n "$STUDY" ] || usage
shift
MODE=full CHECK=0
for a in "$@"; do
  case $a in
    --quick) MODE=quick ;;
    --check) CHECK=1 ;;
    *) usage ;;
  esac
done
export BNAS=${BNAS:-build/bnas} THREADS=${THREADS:-2}
[ -x "$BNAS" ] || { echo "reproduce.sh: no $BNAS (build first, or set BNAS)" >&2; exit 2; }
DIR=experiments/$STUDY
RESULTS=$DIR/results
CSV=$RESULTS/$MODE.csv
OUT=$(mktemp -d "${TMPDIR:-/tmp}/bnas-repro-$STUDY-$MODE.XXXXXX")
export OUT
cleanup() { if [ "${KEEP:-0}" = 1 ]; then echo "outputs kept in $OUT"; else rm -rf "$OUT"; fi; }
trap cleanup EXIT

quick() { # what the quick mode reduces, then the env it sets
  echo "QUICK MODE ($STUDY): $1"
  echo "  (not the recorded numbers: compare with results/quick.csv, not with the full tables)"
}

case $STUDY in
  tolerance)
    # the five commands of RESULTS.md: 9 FCNN variants (10 epochs), seed replicates of four of
    # them, 9 VGG3 variants (2 epochs), extras on fc-plain; every model on all 60,000 images
    if [ $MODE = quick ]; then
      quick "FCNNs 2 epochs and VGG3s 1 epoch on 10,000 training images instead of 10 and 2 on 60,000, no seed replicates, 3 / 2 / 3 error patterns (FCNN / VGG3 / extras) instead of 10 / 5 / 10, the first 2,000 test images"
      export FC_EPOCHS=2 VGG_EPOCHS=1 TRAIN_IMAGES=10000 FC_REPEATS=3 VGG_REPEATS=2 EXTRA_REPEATS=3 IMAGES=2000
    fi
    run() {
      local t=experiments/tolerance/run.sh
      bash $t fc
      if [ $MODE = full ]; then
        SEEDS="2 3" ONLY="ste10 naive10" bash $t fc
        SEEDS=2 ONLY="plain mhl128" bash $t fc
      fi
      bash $t vgg3
      bash $t extras
    }
    tables() { python3 experiments/tolerance/summarize.py "$1"; }
    ;;
  lim)
    # run.sh: FC512-FC512 plain and --xnor-p 0.08 (5 epochs), lim on the test set, searches on 2,000
    # validation images with 2 error draws
    if [ $MODE = quick ]; then
      quick "1 training epoch on 10,000 images instead of 5 on 55,000, 1 error draw instead of 2, 500 search images instead of 2,000, the first 2,000 test images instead of 10,000"
      export EPOCHS=1 TRAIN_IMAGES=10000 REPEATS=1 SEARCH_IMAGES=500 IMAGES=2000
    fi
    run() { bash experiments/lim/run.sh; }
    tables() { python3 experiments/lim/summarize.py "$1"; }
    ;;
  fefet)
    # run.sh all: every model of RESULTS.md (hours); the quick mode runs run.sh fc only
    if [ $MODE = quick ]; then
      quick "run.sh fc only (fc-plain, fc-tune, fc-range; no sweep, no VGG3), 1 training epoch instead of 10 (fine-tune 1 instead of 3), 2 error draws instead of 10, the first 2,000 test images and 1,000 BERA search images"
      export FC_EPOCHS=1 TUNE_EPOCHS=1 FC_REPEATS=2 IMAGES=2000 BERA_IMAGES=1000
      run() { bash experiments/fefet/run.sh fc; }
    else
      run() { bash experiments/fefet/run.sh all; }
    fi
    tables() { python3 experiments/fefet/summarize.py "$1"; }
    ;;
  approxpop)
    # the plain FC512-FC512 of experiments/lta/run.sh (3 epochs), then run.sh on 1,000 test images
    FC_EPOCHS=3
    if [ $MODE = quick ]; then
      quick "the plain network trains 1 epoch instead of 3; 300 test images instead of 1,000"
      FC_EPOCHS=1; export IMAGES=300
    fi
    run() {
      echo "== $BNAS train --topology FC512-FC512 --epochs $FC_EPOCHS --threads $THREADS -o $OUT/fc-plain.bnm"
      "$BNAS" train --topology FC512-FC512 --epochs "$FC_EPOCHS" --threads "$THREADS" -o "$OUT/fc-plain.bnm" \
        > "$OUT/fc-plain.train.txt"
      bash experiments/approxpop/run.sh
    }
    tables() { python3 experiments/approxpop/summarize.py "$1"; }
    ;;
  bop)
    # run.sh: FCNN (FC2048-FC2048, 5 epochs) and VGG3 (2 epochs) searches on 20,000 training images;
    # then the memory model of both nets for five formats
    if [ $MODE = quick ]; then
      quick "the FCNN search only (no VGG3), 1 epoch instead of 5, 5,000 training and 1,000 validation images instead of 20,000 and 5,000, at most 2 candidate trainings instead of 3, no timing run; the memory model is exact and complete"
    fi
    run() {
      if [ $MODE = quick ]; then
        echo "== $BNAS encodings --topology FC2048-FC2048 --epochs 1 --batch 100 --bop-gamma 1e-2 --bop-tau 1e-6 --images 5000 --val 1000 --lost-budget 0.03 --max-confirm 2 --threads 1"
        "$BNAS" encodings --topology FC2048-FC2048 --epochs 1 --batch 100 --bop-gamma 1e-2 --bop-tau 1e-6 \
          --images 5000 --val 1000 --lost-budget 0.03 --max-confirm 2 --threads 1 > "$OUT/fcnn.log"
      else
        sh experiments/bop/run.sh
        rm -f "$OUT/memory.log" # its lines are summaries of the mem-* logs below
      fi
      for f in fp32 e4m7 e5m7 e5m8 e5m10; do
        "$BNAS" encodings --memory $f --topology FC2048-FC2048 --batch 100 > "$OUT/mem-FCNN-$f.log"
        "$BNAS" encodings --memory $f --topology C64-MP2-C64-MP2-FC2048 --batch 100 > "$OUT/mem-VGG3-$f.log"
      done
    }
    tables() { python3 experiments/bop/summarize.py "$1"; }
    ;;
  *) echo "reproduce.sh: unknown study '$STUDY'" >&2; usage ;;
esac

echo "== $STUDY ($MODE) into $OUT, $(date -u +%FT%TZ), $(uptime | sed 's/.*load/load/')"
t0=$(date +%s)
run
t1=$(date +%s)
mkdir -p "$RESULTS"
python3 experiments/repro.py collect "$OUT" > "$OUT/results.csv"
echo "== $STUDY ($MODE): $((t1 - t0)) s, $(uptime | sed 's/.*load/load/')"
if [ $CHECK = 1 ]; then
  [ -f "$CSV" ] || { echo "reproduce.sh: no committed $CSV to check against" >&2; exit 2; }
  python3 experiments/repro.py compare "$CSV" "$OUT/results.csv"
else
  cp "$OUT/results.csv" "$CSV"
  tables "$CSV" | python3 experiments/repro.py splice "$DIR/RESULTS.md" "$MODE"
  echo "== wrote $CSV and the '$MODE' tables of $DIR/RESULTS.md:"
  tables "$CSV"
fi
}
main "$@"
