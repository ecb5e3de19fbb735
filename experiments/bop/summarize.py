#!/usr/bin/env python3
"""Markdown tables of the bop study from its raw CSV (experiments/reproduce.sh bop writes
experiments/bop/results/{full,quick}.csv from the `bnas encodings` logs: the searches NET.log and the
memory model mem-NET-FORMAT.log).
usage: python3 experiments/bop/summarize.py CSV"""
import os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import repro  # noqa: E402

r = repro.load(sys.argv[1] if len(sys.argv) > 1 else "experiments/bop/results/full.csv")
fmt = lambda m, p: "e%dm%d%s" % (m[p + ".e"], m[p + ".f"], "b%d" % m[p + ".bias"] if p + ".bias" in m else "")
print("Encoding search (validation accuracy; ok = accepted within the budget):\n")
print("| search | fp32 val % | formats screened | accepted format | bits | val % | candidates trained |")
print("|---|---|---|---|---|---|---|")
for run, m in r.items():
    if run.startswith("mem-") or "screened" not in m:
        continue
    tried = ", ".join("%s %.2f%% %s" % (k[6:-8], 100 * v, "ok" if m["train.%s.accepted" % k[6:-8]] else "no")
                      for k, v in m.items() if k.startswith("train.") and k.endswith(".val_acc"))
    found = m.get("result.found") == 1
    print("| %s | %.2f | %d | %s | %s | %s | %s |" % (
        run, 100 * m["fp32.val_acc"], m["screened"], fmt(m, "result") if found else "none",
        "%d" % m["result.bits"] if found else "-", "%.2f" % m["result.val_acc"] if found else "-", tried or "-"))
print("\nTraining-memory model (engine/bop.h, batch 100), bytes:\n")
print("| network | momentum | weights | momentum bytes | bn | activations | total | reduction vs fp32 |")
print("|---|---|---|---|---|---|---|---|")
for run, m in r.items():
    if not run.startswith("mem-"):
        continue
    _, net, f = run.split("-", 2)
    print("| %s | %s | %d | %d | %d | %d | %d | %.3fx |" % (
        net, f, m["memory.%s.weights" % f], m["memory.%s.momentum" % f], m["memory.%s.bn" % f],
        m["memory.%s.activations" % f], m["memory.%s.total" % f], m["memory.reduction"]))
