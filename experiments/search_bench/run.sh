#!/usr/bin/env bash
# The search benchmark (experiments/search_bench/README.md): bnas's strategies and the
# Optuna peer on bench.yaml, several seeds each, every study given the same budget of
# trial seconds (one trial at a time, two studies at once on 2 cores), then the
# hand-made networks scored with the same recipe; writes results/MODE.csv (every
# trial of every study) and the tables of README.md (summarize.py, between the
# <!-- repro:MODE --> markers).
#
# usage: experiments/search_bench/run.sh [--quick]        (from anywhere)
#   --quick   5,000 training images, 1 epoch, 1,000 fault images x 2 draws, 300 s per study
#             instead of 10,000, 2 epochs, 2,000 x 3, 1,800 s; results/quick.csv
# env: BNAS (build/bnas), SEEDS ("1 2 3 4 5"), BUDGET (trial seconds per study),
#      STRATEGIES ("nsga2 random evolution optuna-nsga2 optuna-tpe"), JOBS (2), KEEP=1
# Needs Optuna (Debian python3-optuna, not a dependency of bnas) for the optuna-* peers.
main() {
set -euo pipefail
cd "$(dirname "$0")/../.."
MODE=full
[ "${1:-}" = --quick ] && MODE=quick
export BNAS=${BNAS:-build/bnas}
SEEDS=${SEEDS:-1 2 3 4 5}
STRATEGIES=${STRATEGIES:-nsga2 random evolution optuna-nsga2 optuna-tpe}
JOBS=${JOBS:-2}
PY=/usr/bin/python3
HERE=experiments/search_bench
[ -x "$BNAS" ] || { echo "run.sh: no $BNAS (build first, or set BNAS)" >&2; exit 2; }
case " $STRATEGIES " in *" optuna-"*)
  $PY -c 'import optuna' 2>/dev/null || { echo "run.sh: the peer needs Optuna: apt-get install python3-optuna" >&2; exit 1; } ;;
esac
OUT=$(mktemp -d "${TMPDIR:-/tmp}/bnas-search-bench-$MODE.XXXXXX")
export OUT
trap 'if [ "${KEEP:-0}" = 1 ]; then echo "outputs kept in $OUT"; else rm -rf "$OUT"; fi' EXIT
if [ $MODE = quick ]; then
  BUDGET=${BUDGET:-300}
  sed -e 's/train: 10000/train: 5000/' -e 's/epochs: 2/epochs: 1/' \
      -e 's/repeats: 3, images: 2000/repeats: 2, images: 1000/' $HERE/bench.yaml > "$OUT/bench.yaml"
  echo "QUICK MODE: 5,000 training images, 1 epoch, 1,000 fault images x 2, $BUDGET s per study"
else
  BUDGET=${BUDGET:-1800}
  cp $HERE/bench.yaml "$OUT/bench.yaml"
fi
echo "== search_bench ($MODE) into $OUT, $(date -u +%FT%TZ), seeds $SEEDS, budget $BUDGET trial s, load $(cut -d' ' -f1-3 /proc/loadavg)"

# One spec per (strategy, seed): name, seed and strategy replaced; bnas stops proposing once
# its wall time passes the budget (plus a margin for the controller), summarize.py cuts every
# study at exactly BUDGET trial seconds.
jobs=()
for seed in $SEEDS; do
  for st in $STRATEGIES; do
    spec=$OUT/${st}_$seed.yaml
    bst=${st#optuna-}; [ "$bst" = "$st" ] || bst=nsga2  # a peer ignores the strategy
    sed -e "s/^name: .*/name: ${st}_$seed/" -e "s/^seed: .*/seed: $seed/" \
        -e "s/strategy: {name: [a-z0-9]*/strategy: {name: $bst/" \
        -e "s/wall_time: [0-9a-z]*/wall_time: $((BUDGET * 11 / 10 + 20))/" "$OUT/bench.yaml" > "$spec"
    jobs+=("$st $seed")
  done
done
one() { # STRATEGY SEED
  local st=$1 seed=$2 spec=$OUT/$1_$2.yaml log=$OUT/$1_$2.log
  if [ "${st#optuna-}" != "$st" ]; then
    $PY $HERE/optuna_peer.py "$spec" --sampler "${st#optuna-}" --budget "$BUDGET" --out "$OUT/${st}_$seed.csv" \
        --bnas "$BNAS" > "$log" 2>&1
  else
    OMP_WAIT_POLICY=passive "$BNAS" run "$spec" --db "$OUT/${st}_$seed.db" --quiet > "$log" 2>&1
  fi
  echo "   done $st seed $seed ($(date -u +%T))"
}
export -f one
export PY HERE BUDGET
printf '%s\n' "${jobs[@]}" | xargs -P "$JOBS" -L 1 bash -c 'one $0 $1'

# The seed papers' FashionMNIST networks, trained and scored with the benchmark's recipe
# (study seed 1, trial 0): VGG3 and an FC 784-1024-1024-10 FCNN, each plainly and with MHL.
hand=$OUT/hand.txt
: > "$hand"
for net in "vgg3 conv_blocks=2 conv_channels=[64,64] conv_pool=[1,1] fc_layers=1 fc_width=[2048]" \
           "fc1024 conv_blocks=0 fc_layers=2 fc_width=[1024,1024]"; do
  set -- $net
  name=$1; shift
  for loss in "ce" "mhl mhl_b=128"; do
    echo "== score $name ${loss%% *}" >> "$hand"
    "$BNAS" score "$OUT/bench.yaml" "$@" loss=$loss flip_rate=0 lr=0.001 >> "$hand"  # unquoted: mhl_b is its own argument
  done
done
mkdir -p $HERE/results
$PY $HERE/summarize.py collect "$OUT" "$BUDGET" > $HERE/results/$MODE.csv
$PY $HERE/summarize.py tables $HERE/results/$MODE.csv > "$OUT/tables.md"
cat "$OUT/tables.md"
$PY experiments/repro.py splice $HERE/README.md $MODE < "$OUT/tables.md"
}
main "$@"
