#!/usr/bin/env python3
"""Markdown table from the lim evaluator outputs (OUT/*.lim.txt) of experiments/lim/run.sh.
usage: python3 experiments/lim/summarize.py [OUT]"""
import glob, os, sys

out = sys.argv[1] if len(sys.argv) > 1 else "experiments/lim/out"
rows = []
for path in sorted(glob.glob(os.path.join(out, "*.lim.txt"))):
    m = {}
    for line in open(path):
        if line.startswith("#"):
            continue
        k, v = line.split()
        m[k] = float(v)
    rows.append((os.path.basename(path)[: -len(".lim.txt")], m))
if not rows:
    sys.exit("no *.lim.txt in " + out)
pct = lambda x: "%.2f" % (100 * x)
print("| model | clean val | reference | clean test | uniform speed-up % | test acc | run-time speed-up % | test acc | per layer % |")
print("|---|---|---|---|---|---|---|---|---|")
for name, m in rows:
    layers = ", ".join("L%s: %g" % (k[len("lim.rt_layer"):], v) for k, v in m.items() if k.startswith("lim.rt_layer"))
    print("| %s | %s | %s | %s | %g | %s | %.1f | %s | %s |" % (
        name, pct(m["lim.clean_val"]), pct(m["lim.reference"]), pct(m["lim.clean"]), m["lim.uniform_speedup"],
        pct(m["lim.uniform_acc"]), m["lim.rt_speedup"], pct(m["lim.rt_acc"]), layers))
