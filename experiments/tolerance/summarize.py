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


def base(v):
    """Variant name without the training-seed suffix -sN."""
    return re.sub(r"-s\d+$", "", v)


def order_key(v):
    b = base(v)
    return (ORDER.index(b) if b in ORDER else len(ORDER), b, v)


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
        names = sorted(vs, key=order_key)
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
            groups = [("all", names)]
            fam = [v for v in names if base(v) == "plain" or base(v).startswith("ste")]
            if 3 <= len(fam) < len(names):
                groups.append(("plain+STE", fam))
            for gname, sel_names in groups:
                print(f"Spearman rank correlation over {len(sel_names)} {arch} models ({gname}: {', '.join(sel_names)}) "
                      "between a metric and the accuracy at each rate (acc), and between the metric and the "
                      "accuracy change from the clean accuracy (drop = acc(p) - acc(0)):\n")
                print("| metric | vs | " + " | ".join(f"{r:g}%" for r in rates if r > 0) + " |")
                print("|---" * (2 + len([r for r in rates if r > 0])) + "|")
                metrics = [("margin.mean", lambda r: r["mean"]), ("margin.output", lambda r: r["output"])]
                nl = min(len(vs[v]["layers"]) for v in sel_names)
                for l in range(nl):
                    metrics.append((f"margin.layer{l}", lambda r, l=l: r["layers"][l]))
                for label, f in metrics:
                    for kind in ("acc", "drop"):
                        row = []
                        for rate in rates:
                            if rate <= 0:
                                continue
                            sel = [v for v in sel_names if rate in vs[v]["rates"] and 0.0 in vs[v]["rates"]]
                            xs = [f(vs[v]) for v in sel]
                            ys = [vs[v]["rates"][rate][0] - (vs[v]["rates"][0.0][0] if kind == "drop" else 0) for v in sel]
                            row.append(f"{spearman(xs, ys):+.2f}")
                        print(f"| {label} | {kind} | " + " | ".join(row) + " |")
                print()
        seed_table(arch, vs, names, rates)
        claims(arch, vs, rates)


def seed_table(arch, vs, names, rates):
    """Mean +- sd over training seeds of the per-seed mean accuracies, for variants with several seeds."""
    groups = {}
    for v in names:
        groups.setdefault(base(v), []).append(v)
    multi = {b: g for b, g in groups.items() if len(g) > 1}
    if not multi:
        return
    print(f"### {arch}: over training seeds (mean ± sd over the seeds of each seed's mean accuracy)\n")
    print("| model | seeds | " + " | ".join(f"{r:g}%" for r in rates) + " |")
    print("|---" * (2 + len(rates)) + "|")
    for b, g in multi.items():
        cells = []
        for rate in rates:
            xs = [vs[v]["rates"][rate][0] for v in g if rate in vs[v]["rates"]]
            m = sum(xs) / len(xs)
            sd = (sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5 if len(xs) > 1 else 0.0
            cells.append(f"{m:.2f} ±{sd:.2f}")
        print(f"| {b} | {len(g)} | " + " | ".join(cells) + " |")
    print()
    pairs = [("ste10", "naive10"), ("mhl128", "plain")]
    pairs = [(a, c) for a, c in pairs if a in multi and c in multi]
    if pairs:
        print("Differences of the seed means in points (paired by seed where both have it; * : all seeds agree in sign):\n")
        print("| models | " + " | ".join(f"{r:g}%" for r in rates) + " |")
        print("|---" * (1 + len(rates)) + "|")
        for a, c in pairs:
            cells = []
            for rate in rates:
                ds = []
                for va in multi[a]:
                    vc = va.replace(a, c, 1)
                    if vc in vs and rate in vs[va]["rates"] and rate in vs[vc]["rates"]:
                        ds.append(vs[va]["rates"][rate][0] - vs[vc]["rates"][rate][0])
                if not ds:
                    cells.append("-")
                    continue
                d = sum(ds) / len(ds)
                cells.append(f"{d:+.2f}" + ("*" if all(x > 0 for x in ds) or all(x < 0 for x in ds) else "")
                             + f" (n={len(ds)})")
            print(f"| {a} - {c} | " + " | ".join(cells) + " |")
        print()


def diff_row(vs, a, b, rates):
    """Cells 'acc(a) - acc(b)' per rate with a marker when |diff| exceeds both sds."""
    cells = []
    for rate in rates:
        if rate not in vs[a]["rates"] or rate not in vs[b]["rates"]:
            cells.append("-")
            continue
        (ma, sa, *_), (mb, sb, *_) = vs[a]["rates"][rate], vs[b]["rates"][rate]
        d = ma - mb
        cells.append(f"{d:+.2f}" + ("*" if abs(d) > max(sa, sb) and (sa > 0 or sb > 0) else ""))
    return cells


def claims(arch, vs, rates):
    pairs = [("ste10", "naive10"), ("ste20", "naive10"), ("mhl128", "plain"), ("mhl32", "plain"), ("reg", "plain"),
             ("ste10", "plain")]
    pairs = [(a, b) for a, b in pairs if a in vs and b in vs]
    if not pairs:
        return
    print(f"Accuracy differences between {arch} models in points (* : larger than both models' sd over error patterns):\n")
    print("| models | " + " | ".join(f"{r:g}%" for r in rates) + " |")
    print("|---" * (1 + len(rates)) + "|")
    for a, b in pairs:
        print(f"| {a} - {b} | " + " | ".join(diff_row(vs, a, b, rates)) + " |")
    print()


if __name__ == "__main__":
    main()
