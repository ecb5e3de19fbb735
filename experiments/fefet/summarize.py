#!/usr/bin/env python3
"""Markdown tables from the fefet evaluator outputs (OUT/*.fefet.txt) of experiments/fefet/run.sh.
usage: python3 experiments/fefet/summarize.py [OUT]"""
import glob, os, sys

out = sys.argv[1] if len(sys.argv) > 1 else "experiments/fefet/out"
rows = []
for path in sorted(glob.glob(os.path.join(out, "*.fefet.txt"))):
    m, secs = {}, ""
    for line in open(path):
        if line.startswith("#"):
            secs = line.strip("# \n")
            continue
        k, v = line.split()
        m[k] = float(v)
    rows.append((os.path.basename(path)[: -len(".fefet.txt")], m, secs))
if not rows:
    sys.exit("no *.fefet.txt in " + out)
temps = sorted({float(k.split("@")[1]) for _, m, _ in rows for k in m if k.startswith("fefet.acc@")})
pct = lambda x: "%.2f" % (100 * x)
print("Accuracy (%%) over temperature (deg C), test set; columns 'BERA' use the BERA assignment.\n")
print("| model | storage | clean | " + " | ".join("%g" % t for t in temps) + " | min | drop (pt) |")
print("|---|---|---|" + "---|" * len(temps) + "---|---|")
for name, m, _ in rows:
    for label, key, mn, dr in (("direct", "fefet.acc@", "fefet.acc_min", "fefet.drop"),
                                ("BERA", "fefet.bera_acc@", "fefet.bera_acc_min", "fefet.bera_drop")):
        if mn not in m:
            continue
        cells = [pct(m.get("%s%g" % (key, t), float("nan"))) for t in temps]
        print("| %s | %s | %s | %s | %s | %s |" % (name, label, pct(m["fefet.clean"]), " | ".join(cells), pct(m[mn]),
                                                 "%.2f" % (100 * m[dr])))
print("\nBERA details (search on validation data at the plain network's worst temperature there):\n")
print("| model | search T | assignment (bit l = layer l inverted) | val acc identity | val acc BERA | evaluated |")
print("|---|---|---|---|---|---|")
for name, m, _ in rows:
    if "fefet.bera_mask" in m:
        mask = int(m["fefet.bera_mask"])
        print("| %s | %g | %d (0b%s) | %s | %s | %d |" % (name, m["fefet.bera_search_t"], mask, bin(mask)[2:],
                                                      pct(m["fefet.bera_search_identity"]),
                                                      pct(m["fefet.bera_search_best"]), m["fefet.bera_evaluated"]))
print("\nEvaluator wall time: " + "; ".join("%s %s" % (n, s) for n, _, s in rows))
