#!/usr/bin/env python3
"""Markdown tables of the strategy comparison from its raw CSV experiments/compare_curves.csv
(strategy,seed,completed,hv; written by experiments/compare.sh): the final hypervolume per seed and
strategy with the mean, and the mean curve over the seeds at every 8th completed trial.
usage: python3 experiments/compare_tables.py [CSV]"""
import csv, sys

rows = list(csv.DictReader(open(sys.argv[1] if len(sys.argv) > 1 else "experiments/compare_curves.csv")))
st = ["random", "evolution", "nsga2"]
seeds = sorted({r["seed"] for r in rows}, key=int)
final, curve = {}, {}
for r in rows:
    k = (r["strategy"], r["seed"])
    c = int(r["completed"])
    if c >= final.get(k, (0, 0))[0]:
        final[k] = (c, float(r["hv"]))
    curve[(r["strategy"], r["seed"], c)] = float(r["hv"])
print("| seed | random | evolution (aging) | nsga2 |\n|---|---|---|---|")
for s in seeds:
    print("| %s | %s |" % (s, " | ".join("%.1f" % final[(t, s)][1] for t in st)))
print("| mean | %s |" % " | ".join("%.1f" % (sum(final[(t, s)][1] for s in seeds) / len(seeds)) for t in st))
print("\n| completed trials | random | evolution (aging) | nsga2 |\n|---|---|---|---|")
top = max(c for (_, _, c) in curve)
for x in range(8, top + 1, 8):
    print("| %d | %s |" % (x, " | ".join("%.1f" % (sum(curve[(t, s, x)] for s in seeds) / len(seeds)) for t in st)))
