#!/usr/bin/env python3
"""Markdown tables of the approxpop study from its raw CSV (experiments/reproduce.sh approxpop writes
experiments/approxpop/results/{full,quick}.csv from the `bnas measure ... approxpop` outputs of run.sh).
usage: python3 experiments/approxpop/summarize.py CSV"""
import os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import repro  # noqa: E402

r = repro.load(sys.argv[1] if len(sys.argv) > 1 else "experiments/approxpop/results/full.csv")
neurons = 512  # fc2 of FC512-FC512, the only approximated layer
print("Error distribution of the tree (fan-in 512, inputs Bernoulli(1/2)), from the plain network's runs:\n")
print("| approximate levels | k_exact | mean error | sd | P(error != 0) | FA replaced per neuron |")
print("|---|---|---|---|---|---|")
for run, label, k in (("fc-plain.approxpop", "all 9", 0), ("fc-plain.approxpop2", "1-2", 7)):
    m = r[run]
    print("| %s | %d | %+.2f | %.2f | %.3f | %d / %d |" % (
        label, k, m["approxpop.err_mean.l1"], m["approxpop.err_sd.l1"], m["approxpop.err_p.l1"],
        m["approxpop.fa_approx"] / neurons, (m["approxpop.fa_approx"] + m["approxpop.fa_exact"]) / neurons))
act_p = r["fc-plain.approxpop-val"]["approxpop.flip"]
print("\nNetwork on the approximate hardware (test images; accuracy %%, decision flip rate of fc2 in brackets);\n"
      "the aware network trains with --act-p %.10g, the plain network's flip rate at k_exact = 7 on the\n"
      "validation split:\n" % act_p)
print("| network | exact popcount | k_exact = 7 (levels 1-2 approx.) | k_exact = 6 (1-3) | k_exact = 0 (all) |")
print("|---|---|---|---|---|")
cell = lambda m, k: "%.1f (%.1f %%)" % (100 * m["approxpop.acc@%d" % k], 100 * m["approxpop.flip.l1@%d" % k])
p = dict(r["fc-plain.approxpop"]), r["fc-plain.approxpop2"]
plain = dict(p[0]); plain.update(p[1])
rows = [("plain (`fc-plain`)", plain)]
for name in ("fc-r1", "fc-aware"):
    if name + ".approxpop" in r:
        rows.append(("`%s` (fc-plain + 1 epoch%s)" % (name, ", aware" if name == "fc-aware" else ""),
                     r[name + ".approxpop"]))
for label, m in rows:
    print("| %s | %.1f | %s | %s | %s |" % (label, 100 * m["approxpop.exact_acc"], cell(m, 7), cell(m, 6), cell(m, 0)))
