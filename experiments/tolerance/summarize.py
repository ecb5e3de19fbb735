#!/usr/bin/env python3
"""The tables of experiments/tolerance/RESULTS.md from the raw CSV of experiments/reproduce.sh.

usage: python3 experiments/tolerance/summarize.py experiments/tolerance/results/full.csv
Reads the runs ARCH-VARIANT.eval (`bnas eval` of experiments/tolerance/run.sh; repro.py collect
OUT makes the CSV of any run.sh output folder) and prints, per architecture, accuracy over bit
error rate (mean over repeats, +- sd) with the margin metrics, the Spearman rank correlation over
the variants between each margin metric and the accuracy at each error rate, the training-seed
tables and the differences behind RESULTS.md's claims; then the extras runs (other targets, one
layer, asymmetric errors on fc-plain) if the CSV has them.
"""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import repro  # noqa: E402

ORDER = ["plain", "ste1", "ste5", "ste10", "ste20", "naive10", "mhl32", "mhl128", "reg"]


def base(v):
    """Variant name without the training-seed suffix -sN."""
    return re.sub(r"-s\d+$", "", v)


def order_key(v):
    b = base(v)
    return (ORDER.index(b) if b in ORDER else len(ORDER), b, v)


def rates_of(m):
    """{rate in %: (acc, sd)} of the symmetric rows of one eval run's metrics."""
    r = {}
    for k, v in m.items():
        g = re.match(r"acc@([\d.e-]+)%$", k)
        if g:
            r[float(g.group(1))] = (v, m["sd@%s%%" % g.group(1)])
    return r


def as_model(m):
    nl = len([k for k in m if re.match(r"margin\.layer\d+$", k)])
    return {"acc": m.get("accuracy"), "mean": m.get("margin.mean", float("nan")),
            "output": m.get("margin.output", float("nan")),
            "layers": [m["margin.layer%d" % i] for i in range(nl)], "rates": rates_of(m)}


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
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    res = repro.load(sys.argv[1])
    archs = {}
    for run, m in res.items():
        if run.endswith(".eval"):
            arch, var = run[: -len(".eval")].split("-", 1)
            archs.setdefault(arch, {})[var] = as_model(m)
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
                const = [lab for lab, f in metrics if len({f(vs[v]) for v in sel_names}) == 1]
                for label, f in metrics:
                    if label in const:
                        continue
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
                if const:
                    print(f"\n({', '.join(const)}: the same value for every model, no rank correlation.)")
                print()
        seed_table(arch, vs, names, rates)
        claims(arch, vs, rates)
    extras(res)


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


def cell(m, r):
    """'acc ±sd' of row r of one eval run (no ± when the sd is 0), '-' if the row is missing."""
    if "acc@" + r not in m:
        return "-"
    sd = m["sd@" + r]
    return "%.2f" % m["acc@" + r] + (" ±%.2f" % sd if sd > 0 else "")


def extras(res):
    t = {k[len("targets-fc-plain-"):]: v for k, v in res.items() if k.startswith("targets-fc-plain-")}
    if t:
        rs = ["0.01%", "0.1%", "1%", "5%"]
        print("| target | " + " | ".join(rs) + " |\n|---" * 1 + "|---" * len(rs) + "|")
        label = {"weights": "weights", "thresholds": "thresholds (32 bits each)",
                 "activations": "activations (hidden outputs)"}
        for k in ("weights", "thresholds", "activations"):
            if k in t:
                print("| %s | " % label[k] + " | ".join(cell(t[k], r) for r in rs) + " |")
        print()
    layers = sorted(k for k in res if k.startswith("layer-fc-plain-"))
    if layers:
        print("| weights of one layer only | 5% | 20% |\n|---|---|---|")
        names = ["layer 0 (784→512, 8-bit inputs)", "layer 1 (512→512)", "layer 2 (classifier)"]
        for k in layers:
            i = int(k.rsplit("-", 1)[1])
            print("| %s | %s | %s |" % (names[i] if i < len(names) else "layer %d" % i, cell(res[k], "5%"),
                                        cell(res[k], "20%")))
        print()
    a01, a10 = res.get("asym-fc-plain-01"), res.get("asym-fc-plain-10")
    if a01 and a10:
        print("| weight errors (fc-plain) | accuracy |\n|---|---|")
        print("| p01 = p10 = 5%% | %s |" % cell(a01, "5%"))
        print("| p01 = 5%%, p10 = 0 | %s |" % cell(a01, "p01=5%,p10=0%"))
        print("| p01 = 0, p10 = 5%% | %s |" % cell(a10, "p01=0%,p10=5%"))
        print()


if __name__ == "__main__":
    main()
