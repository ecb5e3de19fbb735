#!/usr/bin/env bash
# Search speed-up from 1 to 2 threads (issue 4's trials-per-hour target): the quick
# search (experiments/quick.yaml) cut to 32 trials, run once with --threads 1 and
# once with --threads 2; prints both wall times, the trials-per-hour ratio, and
# whether the two databases hold the same trials and metrics (they must).
# Compare the ratio with `bnas bench`'s "parallel ceiling" line, the speed-up the
# machine itself gives a register-only loop.
# Usage: experiments/speedup.sh [BNAS]   (about 1.5 minutes on 2 quiet cores)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bnas=${1:-$here/../build/bnas}
out=$here/../out/speedup
mkdir -p "$out"
sed -e 's/^name: quick/name: speedup/' -e 's/^\(  trials:\) 64 /\1 32 /' -e 's/^\(  wall_time:\) 15m/\1 2h/' \
  "$here/quick.yaml" > "$out/speedup.yaml"
for t in 1 2; do
  rm -f "$out/t$t.db" "$out/t$t.db-wal" "$out/t$t.db-shm" "$out/t$t.db.lock"
  s0=$(date +%s.%N)
  "$bnas" run "$out/speedup.yaml" --db "$out/t$t.db" --threads "$t" --quiet
  s1=$(date +%s.%N)
  awk -v t="$t" -v a="$s0" -v b="$s1" 'BEGIN {print t, b - a}'
done | awk '{w[$1] = $2; printf "%d thread%s %.1f s\n", $1, ($1 > 1 ? "s" : " "), $2}
            END {printf "speed-up %.2fx (trials per hour, 2 threads over 1)\n", w[1] / w[2]}'
# Same search whatever the thread count: trials, states, configurations, metrics.
q="SELECT number, state, config, seed FROM trials ORDER BY number;
   SELECT trial, name, value FROM metrics ORDER BY trial, name;"
if [ "$(sqlite3 "$out/t1.db" "$q" | md5sum)" = "$(sqlite3 "$out/t2.db" "$q" | md5sum)" ]; then
  echo "databases: same trials and metrics"
else
  echo "databases: DIFFER" >&2
  exit 1
fi
