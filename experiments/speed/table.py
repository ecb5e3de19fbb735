#!/usr/bin/python3
"""Markdown tables from experiments/speed/results/{speed,accuracy}.csv (run.sh)."""
import csv, statistics, sys

speed = list(csv.DictReader(open(sys.argv[1])))
print("| network | images | bnas s/epoch (median) | PyTorch s/epoch (median) | ratio | per-repeat ratios | load |")
print("|---|---|---|---|---|---|---|")
for net in dict.fromkeys(r["network"] for r in speed):
    rows = [r for r in speed if r["network"] == net]
    b = [float(r["seconds"]) for r in rows if r["impl"] == "bnas"]
    t = [float(r["seconds"]) for r in rows if r["impl"] == "pytorch"]
    reps = ", ".join(f"{x / y:.2f}" for x, y in zip(b, t))
    loads = "-".join(dict.fromkeys(r["load"] for r in rows))
    mb, mt = statistics.median(b), statistics.median(t)
    print(f"| {net} | {rows[0]['images']} | {mb:.2f} | {mt:.2f} | {mb / mt:.2f} | {reps} | {loads} |")
if len(sys.argv) > 2:
    acc = list(csv.DictReader(open(sys.argv[2])))
    print()
    print("| network | epochs | bnas test acc (mean, sd) | PyTorch test acc (mean, sd) | seeds |")
    print("|---|---|---|---|---|")
    for net in dict.fromkeys(r["network"] for r in acc):
        v = {i: [float(r["test_acc"]) for r in acc if r["network"] == net and r["impl"] == i] for i in ("bnas", "pytorch")}
        ep = next(r["epochs"] for r in acc if r["network"] == net)
        f = lambda x: f"{statistics.mean(x):.2f} ({statistics.stdev(x) if len(x) > 1 else 0:.2f})"
        print(f"| {net} | {ep} | {f(v['bnas'])} | {f(v['pytorch'])} | {len(v['bnas'])} |")
