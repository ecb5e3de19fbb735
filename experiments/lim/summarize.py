#!/usr/bin/env python3
"""Markdown table of the lim study from its raw CSV (experiments/reproduce.sh lim writes
experiments/lim/results/{full,quick}.csv from the `bnas measure ... lim` outputs of run.sh).
usage: python3 experiments/lim/summarize.py CSV"""
import os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import repro  # noqa: E402

rows = repro.load(sys.argv[1] if len(sys.argv) > 1 else "experiments/lim/results/full.csv", "lim")
if not rows:
    sys.exit("no lim runs in the CSV")
pct = lambda x: "%.2f" % (100 * x)
print("| model | clean val | reference | clean test | uniform speed-up % | test acc | run-time speed-up % | test acc | per layer % |")
print("|---|---|---|---|---|---|---|---|---|")
for name, m in rows.items():
    layers = ", ".join("L%s: %g" % (k[len("lim.rt_layer"):], v) for k, v in m.items() if k.startswith("lim.rt_layer"))
    print("| %s | %s | %s | %s | %g | %s | %.1f | %s | %s |" % (
        name, pct(m["lim.clean_val"]), pct(m["lim.reference"]), pct(m["lim.clean"]), m["lim.uniform_speedup"],
        pct(m["lim.uniform_acc"]), m["lim.rt_speedup"], pct(m["lim.rt_acc"]), layers))
