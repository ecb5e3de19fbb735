#!/usr/bin/env bash
# Random search vs. aging evolution vs. NSGA-II on experiments/compare.yaml:
# final hypervolume (val_acc max, model_bytes min, reference (0, 60000)) per
# strategy and seed, and the mean; the hypervolume curves (after every completed
# trial) to experiments/compare_curves.csv and the mean curve per strategy.
# Usage: experiments/compare.sh [BNAS] [SEEDS...]
# Writes its studies to out/compare/ (about 20 minutes on 2 cores for 3 seeds).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bnas=${1:-$here/../build/bnas}
shift || true
seeds=${*:-3 4 5}
out=$here/../out/compare
mkdir -p "$out"
for seed in $seeds; do
  for st in random evolution nsga2; do
    spec=$out/${st}_$seed.yaml
    sed -e "s/^name: .*/name: ${st}_$seed/" -e "s/^seed: .*/seed: $seed/" \
        -e "s/strategy: {name: [a-z0-9]*,/strategy: {name: $st,/" "$here/compare.yaml" > "$spec"
    [ -f "$out/${st}_$seed.db" ] || "$bnas" run "$spec" --db "$out/${st}_$seed.db" --quiet
  done
done
for st in random evolution nsga2; do
  for seed in $seeds; do
    "$bnas" status "$out/${st}_$seed.db" | awk -v s="$st" -v d="$seed" '/^front/ {print s, d, $NF}'
  done
done | awk '{print; sum[$1] += $3; n[$1]++} END {for (s in sum) printf "mean %s %.1f\n", s, sum[s] / n[s]}'
# Curves: strategy,seed,completed,hv with one row per completed trial (bnas trials --csv).
curves=$here/compare_curves.csv
echo "strategy,seed,completed,hv" > "$curves"
for st in random evolution nsga2; do
  for seed in $seeds; do
    "$bnas" trials "$out/${st}_$seed.db" --csv |
      awk -F, -v s="$st" -v d="$seed" 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == "hv") c = i; next}
                                       $2 == "COMPLETE" {n++; print s "," d "," n "," $c}'
  done
done >> "$curves"
# Mean curve over the seeds at every 8th completed trial.
awk -F, 'NR > 1 && $3 % 8 == 0 {sum[$1 "," $3] += $4; cnt[$1 "," $3]++; if ($3 > max) max = $3}
         END {printf "completed"; split("random evolution nsga2", st, " ");
              for (k = 1; k <= 3; k++) printf " %s", st[k]; print "";
              for (x = 8; x <= max; x += 8) {printf "%d", x;
                for (k = 1; k <= 3; k++) {key = st[k] "," x; printf " %.1f", cnt[key] ? sum[key] / cnt[key] : 0}
                print ""}}' "$curves"
