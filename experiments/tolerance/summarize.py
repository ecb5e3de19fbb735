#!/usr/bin/env python3
"""Summarise `bnas eval` outputs of experiments/tolerance/run.sh as markdown.

usage: python3 experiments/tolerance/summarize.py OUTDIR
Reads OUTDIR/<arch>-<variant>.eval.txt and prints, per architecture, accuracy
over bit error rate (mean over repeats, +- sd) with the margin metrics, and the
Spearman rank correlation over the variants between each margin metric and the
accuracy at each error rate.
"""
import glob
import os
import re
import sys

ORDER = ["plain", "ste1", "ste5", "ste10", "ste20", "naive10", "mhl32", "mhl128", "reg"]


def parse(path):
    r = {"rates": {}, "layers": []}
    for line in open(path):
        m = re.match(r"accuracy\s+([\d.]+)%", line)
        if m:
            r["acc"] = float(m.group(1))
        m = re.match(r"margin\.mean\s+([-\d.]+)", line)
        if m:
            r["mean"] = float(m.group(1))
        m = re.match(r"margin\.layer\s*(\d+)\s+([-\d.]+)", line)
        if m:
            r["layers"].append(float(m.group(2)))
        m = re.match(r"margin\.output\s+([-\d.]+)", line)
        if m:
            r["output"] = float(m.group(1))
        m = re.match(r"([\d.e-]+)%\s+([\d.]+)%\s+([\d.]+)\s+([\d.]+)% \.\.\s+([\d.]+)%", line)
        if m:
            r["rates"][float(m.group(1))] = (float(m.group(2)), float(m.group(3)), float(m.group(4)), float(m.group(5)))
    return r


def ranks(xs):
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    rk = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            rk[order[k]] = (i + j) / 2.0 + 1
        i = j + 1
    return rk


def spearman(a, b):
    ra, rb = ranks(a), ranks(b)
    n = len(a)
    ma, mb = sum(ra) / n, sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va = sum((x - ma) ** 2 for x in ra) ** 0.5
    vb = sum((y - mb) ** 2 for y in rb) ** 0.5
    return cov / (va * vb) if va > 0 and vb > 0 else float("nan")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "experiments/tolerance/out"
    archs = {}
    for p in sorted(glob.glob(os.path.join(out, "*.eval.txt"))):
        arch, var = os.path.basename(p)[: -len(".eval.txt")].split("-", 1)
        archs.setdefault(arch, {})[var] = parse(p)
    for arch, vs in archs.items():
        names = [v for v in ORDER if v in vs] + sorted(v for v in vs if v not in ORDER)
        rates = sorted(set().union(*[vs[v]["rates"].keys() for v in names]))
        print(f"### {arch}: test accuracy (%) over weight bit error rate (mean over repeats, sd)\n")
        print("| model | " + " | ".join(f"{r:g}%" for r in rates) + " | margin.mean | per layer | margin.output |")
        print("|---" * (len(rates) + 4) + "|")
        for v in names:
            r = vs[v]
            cells = []
            for rate in rates:
                if rate in r["rates"]:
                    m, sd = r["rates"][rate][0], r["rates"][rate][1]
                    cells.append(f"{m:.2f}" + (f" ±{sd:.2f}" if sd > 0 else ""))
                else:
                    cells.append("-")
            layers = " / ".join(f"{x:.2f}" for x in r["layers"])
            print(f"| {v} | " + " | ".join(cells) + f" | {r.get('mean', float('nan')):.3f} | {layers} | {r.get('output', float('nan')):.2f} |")
        print()
        if len(names) >= 3:
            print(f"Spearman rank correlation over the {len(names)} {arch} models between a metric and the accuracy "
                  "at each rate (acc), and between the metric and the accuracy change from the clean accuracy (drop = acc(p) - acc(0)):\n")
            print("| metric | vs | " + " | ".join(f"{r:g}%" for r in rates if r > 0) + " |")
            print("|---" * (2 + len([r for r in rates if r > 0])) + "|")
            metrics = [("margin.mean", lambda r: r["mean"]), ("margin.output", lambda r: r["output"])]
            nl = min(len(vs[v]["layers"]) for v in names)
            for l in range(nl):
                metrics.append((f"margin.layer{l}", lambda r, l=l: r["layers"][l]))
            for label, f in metrics:
                for kind in ("acc", "drop"):
                    row = []
                    for rate in rates:
                        if rate <= 0:
                            continue
                        sel = [v for v in names if rate in vs[v]["rates"] and 0.0 in vs[v]["rates"]]
                        xs = [f(vs[v]) for v in sel]
                        ys = [vs[v]["rates"][rate][0] - (vs[v]["rates"][0.0][0] if kind == "drop" else 0) for v in sel]
                        row.append(f"{spearman(xs, ys):+.2f}")
                    print(f"| {label} | {kind} | " + " | ".join(row) + " |")
            print()

if __name__ == "__main__":
    main()
